/*
 * spec.c - the job spec parser.
 *
 * DESIGN. cJSON parses the text (its own length-bounded parse, so the text
 * need not be NUL-terminated); then one pass over the object's members
 * dispatches each name to its checker, so an unknown member, a duplicate
 * member or a wrong type is reported with the member's name. Defaults come
 * from lr_compress_opts_init(), so the solver and the API agree on them.
 * The result owns copies of every string, so the cJSON tree is freed before
 * returning. lr_spec_to_json() prints every member, defaults included, so
 * the stored spec says exactly what ran.
 */
#include "config.h"

#include "api/spec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SEED_MAX 9007199254740992.0 /* 2^53: exact in a JSON number */

void lr_spec_free(lr_spec *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < s->opts.nranks; i++)
		free((char *)s->ranks[i].layer);
	for (int i = 0; i < s->opts.nexclude; i++)
		free(s->exclude[i]);
	free(s->ranks);
	free(s->exclude);
	free(s->notify_url);
	free(s);
}

static int integer_in(const cJSON *v, double lo, double hi, double *out)
{
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
	    v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
	    v->valuedouble > hi)
		return 0;
	*out = v->valuedouble;
	return 1;
}

static int name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > LR_SPEC_MAX_NAME)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20)
			return 0;
	return 1;
}

static int parse_ranks(lr_spec *s, const cJSON *v, lr_msg *msg)
{
	int n = cJSON_GetArraySize(v);
	const cJSON *e;
	double r;

	if (!cJSON_IsObject(v))
		return lr_fail(msg, LR_EINVAL,
			       "ranks: must be an object mapping layer names to integer ranks");
	if (n > LR_SPEC_MAX_LAYERS)
		return lr_fail(msg, LR_EINVAL, "ranks: more than %d layers", LR_SPEC_MAX_LAYERS);
	s->ranks = calloc((size_t)(n > 0 ? n : 1), sizeof(*s->ranks));
	if (s->ranks == NULL)
		return LR_ENOMEM;
	s->opts.ranks = s->ranks;
	cJSON_ArrayForEach(e, v) {
		if (!name_ok(e->string))
			return lr_fail(msg, LR_EINVAL,
				       "ranks: layer names must be 1 to %d bytes without control characters",
				       LR_SPEC_MAX_NAME);
		for (int i = 0; i < s->opts.nranks; i++)
			if (strcmp(s->ranks[i].layer, e->string) == 0)
				return lr_fail(msg, LR_EINVAL, "ranks: layer '%s' given twice",
					       e->string);
		if (!integer_in(e, 1, 1 << 20, &r))
			return lr_fail(msg, LR_EINVAL,
				       "ranks.%s: must be an integer from 1 to 1048576", e->string);
		s->ranks[s->opts.nranks].layer = strdup(e->string);
		if (s->ranks[s->opts.nranks].layer == NULL)
			return LR_ENOMEM;
		s->ranks[s->opts.nranks++].rank = (int64_t)r;
	}
	return 0;
}

static int parse_exclude(lr_spec *s, const cJSON *v, lr_msg *msg)
{
	int n = cJSON_GetArraySize(v);
	const cJSON *e;

	if (!cJSON_IsArray(v))
		return lr_fail(msg, LR_EINVAL, "exclude: must be an array of layer names");
	if (n > LR_SPEC_MAX_LAYERS)
		return lr_fail(msg, LR_EINVAL, "exclude: more than %d layers", LR_SPEC_MAX_LAYERS);
	s->exclude = calloc((size_t)(n > 0 ? n : 1), sizeof(*s->exclude));
	if (s->exclude == NULL)
		return LR_ENOMEM;
	s->opts.exclude = (const char *const *)s->exclude;
	cJSON_ArrayForEach(e, v) {
		int i = s->opts.nexclude;

		if (!cJSON_IsString(e) || !name_ok(e->valuestring))
			return lr_fail(msg, LR_EINVAL,
				       "exclude[%d]: must be a layer name of 1 to %d bytes without control characters",
				       i, LR_SPEC_MAX_NAME);
		s->exclude[i] = strdup(e->valuestring);
		if (s->exclude[i] == NULL)
			return LR_ENOMEM;
		s->opts.nexclude++;
	}
	return 0;
}

int lr_spec_notify_url_check(const char *url, lr_msg *msg)
{
	size_t n = strlen(url), skip;
	const char *auth, *end, *host_end, *p;

	if (n == 0 || n > LR_SPEC_MAX_URL)
		return lr_fail(msg, LR_EINVAL, "notify_url: must be 1 to %d characters",
			       LR_SPEC_MAX_URL);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
			return lr_fail(msg, LR_EINVAL,
				       "notify_url: character %zu is not printable ASCII (percent-encode it)",
				       i);
	if (strncasecmp(url, "https://", 8) == 0)
		skip = 8;
	else if (strncasecmp(url, "http://", 7) == 0)
		skip = 7;
	else
		return lr_fail(msg, LR_EINVAL, "notify_url: only http:// and https:// URLs are accepted");
	auth = url + skip;
	end = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', (size_t)(end - auth)) != NULL)
		return lr_fail(msg, LR_EINVAL,
			       "notify_url: user information (user:password@) is not accepted");
	if (*auth == '[') {
		host_end = memchr(auth, ']', (size_t)(end - auth));
		if (host_end == NULL || host_end == auth + 1)
			return lr_fail(msg, LR_EINVAL, "notify_url: bad IPv6 literal host");
		host_end++;
	} else {
		host_end = memchr(auth, ':', (size_t)(end - auth));
		if (host_end == NULL)
			host_end = end;
	}
	if (host_end == auth)
		return lr_fail(msg, LR_EINVAL, "notify_url: the host is missing");
	if (host_end < end) {
		long port = 0;

		if (*host_end != ':' || host_end + 1 == end || end - host_end > 6)
			return lr_fail(msg, LR_EINVAL, "notify_url: bad port");
		for (p = host_end + 1; p < end; p++) {
			if (*p < '0' || *p > '9')
				return lr_fail(msg, LR_EINVAL, "notify_url: bad port");
			port = port * 10 + (*p - '0');
		}
		if (port < 1 || port > 65535)
			return lr_fail(msg, LR_EINVAL, "notify_url: port must be 1 to 65535");
	}
	return 0;
}

static int parse_member(lr_spec *s, const cJSON *v, lr_msg *msg)
{
	const char *k = v->string;
	double d;

	if (strcmp(k, "speedup") == 0) {
		if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
		    !(v->valuedouble > 1.0) || !(v->valuedouble < 1000.0))
			return lr_fail(msg, LR_EINVAL,
				       "speedup: must be a number greater than 1 and less than 1000");
		s->opts.speedup = v->valuedouble;
		s->speedup_given = 1;
	} else if (strcmp(k, "ranks") == 0) {
		return parse_ranks(s, v, msg);
	} else if (strcmp(k, "exclude") == 0) {
		return parse_exclude(s, v, msg);
	} else if (strcmp(k, "method") == 0) {
		if (!cJSON_IsString(v) || lr_method_parse(v->valuestring, &s->opts.method) != 0)
			return lr_fail(msg, LR_EINVAL,
				       "method: must be \"nonlinear-asymmetric\", \"nonlinear\", \"linear-asymmetric\" or \"linear\"");
	} else if (strcmp(k, "samples_per_input") == 0) {
		if (!integer_in(v, 1, 10000, &d))
			return lr_fail(msg, LR_EINVAL,
				       "samples_per_input: must be an integer from 1 to 10000");
		s->opts.samples_per_input = (int)d;
	} else if (strcmp(k, "seed") == 0) {
		if (!integer_in(v, 0, SEED_MAX, &d))
			return lr_fail(msg, LR_EINVAL,
				       "seed: must be an integer from 0 to 9007199254740992");
		s->opts.seed = (uint64_t)d;
	} else if (strcmp(k, "rank_multiple") == 0) {
		if (!integer_in(v, 1, 4096, &d))
			return lr_fail(msg, LR_EINVAL,
				       "rank_multiple: must be an integer from 1 to 4096");
		s->opts.rank_multiple = (int)d;
	} else if (strcmp(k, "objective") == 0) {
		if (!cJSON_IsString(v) || lr_objective_parse(v->valuestring, &s->opts.objective) != 0)
			return lr_fail(msg, LR_EINVAL, "objective: must be \"time\" or \"flops\"");
	} else if (strcmp(k, "fc_fit") == 0) {
		if (!cJSON_IsString(v) || lr_fc_fit_parse(v->valuestring, &s->opts.fc_fit) != 0)
			return lr_fail(msg, LR_EINVAL,
				       "fc_fit: must be \"auto\", \"shrinkage\", \"weight-svd\" or \"data\"");
	} else if (strcmp(k, "decomposition") == 0) {
		if (!cJSON_IsString(v) ||
		    lr_decomposition_parse(v->valuestring, &s->opts.decomposition) != 0)
			return lr_fail(msg, LR_EINVAL,
				       "decomposition: must be \"channel\" or \"spatial-channel\"");
	} else if (strcmp(k, "deploy_batch") == 0) {
		if (!integer_in(v, 1, 65536, &d))
			return lr_fail(msg, LR_EINVAL, "deploy_batch: must be an integer from 1 to 65536");
		s->opts.deploy_batch = (int)d;
	} else if (strcmp(k, "deploy_threads") == 0) {
		if (!integer_in(v, 1, 256, &d))
			return lr_fail(msg, LR_EINVAL, "deploy_threads: must be an integer from 1 to 256");
		s->opts.deploy_threads = (int)d;
	} else if (strcmp(k, "notify_url") == 0) {
		int rc;

		if (!cJSON_IsString(v))
			return lr_fail(msg, LR_EINVAL, "notify_url: must be a string (an http or https URL)");
		rc = lr_spec_notify_url_check(v->valuestring, msg);
		if (rc != 0)
			return rc;
		s->notify_url = strdup(v->valuestring);
		if (s->notify_url == NULL)
			return LR_ENOMEM;
	} else if (strcmp(k, "memory_budget_mib") == 0) {
		if (!integer_in(v, 64, 1048576, &d))
			return lr_fail(msg, LR_EINVAL,
				       "memory_budget_mib: must be an integer from 64 to 1048576");
		s->memory_mib = (int64_t)d;
		s->opts.memory_budget = (size_t)s->memory_mib << 20;
	} else if (strcmp(k, "holdout") == 0) {
		if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0.0 && v->valuedouble < 1.0))
			return lr_fail(msg, LR_EINVAL, "holdout: must be a number in [0, 1)");
		s->opts.holdout = v->valuedouble;
	} else {
		return lr_fail(msg, LR_EINVAL,
			       "%.64s: unknown member (expected speedup, objective, decomposition, deploy_batch, deploy_threads, ranks, method, fc_fit, samples_per_input, seed, rank_multiple, exclude, holdout, memory_budget_mib or notify_url)",
			       k);
	}
	return 0;
}

int lr_spec_from_json(const cJSON *obj, lr_spec **out, lr_msg *msg)
{
	lr_spec *s = NULL;
	const cJSON *v, *w;
	int rc;

	*out = NULL;
	if (!cJSON_IsObject(obj)) {
		rc = lr_fail(msg, LR_EINVAL, "spec: must be a JSON object");
		goto fail;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		rc = LR_ENOMEM;
		goto fail;
	}
	lr_compress_opts_init(&s->opts);
	cJSON_ArrayForEach(v, obj) {
		if (v->string == NULL) {
			rc = lr_fail(msg, LR_EINVAL, "spec: member without a name");
			goto fail;
		}
		for (w = obj->child; w != v; w = w->next)
			if (strcmp(w->string, v->string) == 0) {
				rc = lr_fail(msg, LR_EINVAL, "%.64s: given twice", v->string);
				goto fail;
			}
		rc = parse_member(s, v, msg);
		if (rc != 0)
			goto fail;
	}
	/* Ranks without a speedup: decompose exactly the layers named. */
	if (s->opts.nranks > 0 && !s->speedup_given)
		s->opts.speedup = 0;
	*out = s;
	return 0;
fail:
	lr_spec_free(s);
	return rc;
}

int lr_spec_parse(const char *text, size_t len, lr_spec **out, lr_msg *msg)
{
	const char *end = NULL;
	cJSON *root;
	int rc;

	*out = NULL;
	if (len > LR_SPEC_MAX_BYTES)
		return lr_fail(msg, LR_EINVAL, "spec: longer than %d bytes", LR_SPEC_MAX_BYTES);
	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	/* Only blanks may follow the object. */
	while (root != NULL && end < text + len &&
	       (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
		end++;
	if (root == NULL || end != text + len) {
		cJSON_Delete(root);
		return lr_fail(msg, LR_EINVAL, "spec: not valid JSON");
	}
	rc = lr_spec_from_json(root, out, msg);
	cJSON_Delete(root);
	return rc;
}

cJSON *lr_spec_to_json(const lr_spec *s)
{
	cJSON *o = cJSON_CreateObject(), *r = NULL, *x = NULL;
	int ok = o != NULL;

	if (ok && s->opts.speedup > 0)
		ok = cJSON_AddNumberToObject(o, "speedup", s->opts.speedup) != NULL;
	if (ok && s->opts.nranks > 0) {
		ok = (r = cJSON_AddObjectToObject(o, "ranks")) != NULL;
		for (int i = 0; ok && i < s->opts.nranks; i++)
			ok = cJSON_AddNumberToObject(r, s->ranks[i].layer,
						     (double)s->ranks[i].rank) != NULL;
	}
	ok = ok && cJSON_AddStringToObject(o, "objective", lr_objective_name(s->opts.objective));
	ok = ok && cJSON_AddNumberToObject(o, "deploy_batch", s->opts.deploy_batch);
	ok = ok && cJSON_AddNumberToObject(o, "deploy_threads", s->opts.deploy_threads);
	ok = ok && cJSON_AddStringToObject(o, "method", lr_method_name(s->opts.method));
	if (ok && s->opts.fc_fit != LR_FC_FIT_AUTO)
		ok = cJSON_AddStringToObject(o, "fc_fit", lr_fc_fit_name(s->opts.fc_fit)) != NULL;
	ok = ok && cJSON_AddStringToObject(o, "decomposition",
					   lr_decomposition_name(s->opts.decomposition));
	ok = ok && cJSON_AddNumberToObject(o, "samples_per_input", s->opts.samples_per_input);
	ok = ok && cJSON_AddNumberToObject(o, "seed", (double)s->opts.seed);
	if (ok && s->opts.rank_multiple > 1)
		ok = cJSON_AddNumberToObject(o, "rank_multiple", s->opts.rank_multiple) != NULL;
	ok = ok && (x = cJSON_AddArrayToObject(o, "exclude")) != NULL;
	for (int i = 0; ok && i < s->opts.nexclude; i++) {
		cJSON *e = cJSON_CreateString(s->exclude[i]);

		ok = e != NULL && cJSON_AddItemToArray(x, e);
	}
	ok = ok && cJSON_AddNumberToObject(o, "holdout", s->opts.holdout);
	if (ok && s->memory_mib > 0)
		ok = cJSON_AddNumberToObject(o, "memory_budget_mib", (double)s->memory_mib) != NULL;
	if (ok && s->notify_url != NULL)
		ok = cJSON_AddStringToObject(o, "notify_url", s->notify_url) != NULL;
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}
