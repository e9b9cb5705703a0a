/*
 * jobs.c - the handlers of /v1/blobs and /v1/jobs.
 *
 * DESIGN. Uploads stream: PUT /v1/blobs writes each piece of body into a
 * blob writer (SHA-256 computed on the way), and POST /v1/jobs with
 * multipart/form-data runs the streaming multipart parser whose file parts
 * go into blob writers the same way; only the spec part or a JSON body
 * (at most LR_JSON_BODY_MAX bytes) is held in memory. A problem found while
 * the body streams is remembered (lr__api_defer) and answered at the end.
 * Before a job is queued its inputs are loaded and checked (api/inputs.c),
 * so a malformed model or calibration is a 4xx now rather than a failed job
 * later. Every lookup goes through the store with the request's tenant, so
 * another tenant's job or blob is a 404 exactly like a missing one. The job
 * resource follows AIP-151 (done, exactly one of error/response when done)
 * with RFC 3339 times; the event stream sends the whole resource whenever
 * it changes and ends after a terminal state.
 */
#include "config.h"

#include "api/api-int.h"

#include <errno.h>
#include <nettle/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "api/inputs.h"
#include "api/log.h"
#include "api/range.h"
#include "api/spec.h"

enum { PART_NONE, PART_MODEL, PART_CALIB, PART_SPEC };

void lr__jobs_req_free(lr_req *r)
{
	lr__idem_free(r);
	lr_store_blob_writer_abort(r->bw);
	r->bw = NULL;
	lr_mp_free(r->mp);
	r->mp = NULL;
	free(r->text);
	r->text = NULL;
	free(r->sse_buf);
	r->sse_buf = NULL;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int text_append(lr_req *r, const char *d, size_t n, size_t max)
{
	if (r->text_len + n > max)
		return -1;
	if (r->text_len + n + 1 > r->text_cap) {
		size_t cap = r->text_cap ? r->text_cap : 1024;
		char *g;

		while (cap < r->text_len + n + 1)
			cap *= 2;
		g = realloc(r->text, cap);
		if (g == NULL)
			return -1;
		r->text = g;
		r->text_cap = cap;
	}
	memcpy(r->text + r->text_len, d, n);
	r->text_len += n;
	r->text[r->text_len] = '\0';
	return 0;
}

static enum MHD_Result answer_deferred(lr_req *r)
{
	return lr__api_problem(r, (unsigned)r->err_status, r->err_slug, "%s", r->err_detail);
}

/* Defers the answer for a blob writer failure; returns the MHD result. */
static enum MHD_Result writer_failed(lr_req *r, int rc, const char *what, const lr_msg *msg)
{
	if (rc == LR_STORE_ETOOBIG)
		return MHD_NO; /* chunked body past the cap: drop the connection */
	if (rc == -ENOSPC)
		lr__api_defer(r, 507, "insufficient-storage", "the server's disk is full");
	else {
		lr_log(LR_LOG_ERR, "blob write failed", "request_id", r->rid, "error",
		       msg->text[0] ? msg->text : lr_store_strerror(rc), NULL);
		lr__api_defer(r, 500, "internal", "%s: the upload could not be stored", what);
	}
	r->bw = lr_store_blob_writer_abort(r->bw);
	return MHD_YES;
}

/* ------------------------------------------------------------------ */
/* PUT /v1/blobs                                                       */

/* Parses "sha-256=:BASE64:" out of a Repr-Digest value into hex. */
static int parse_repr_digest(const char *v, char hex[LR_STORE_SHA_LEN + 1])
{
	struct base64_decode_ctx ctx;
	const char *p = strstr(v, "sha-256=:"), *e;
	uint8_t dig[64];
	size_t n = sizeof(dig);

	if (p == NULL)
		return -1;
	p += 9;
	e = strchr(p, ':');
	if (e == NULL || e - p != 44)
		return -1;
	base64_decode_init(&ctx);
	if (!base64_decode_update(&ctx, &n, dig, (size_t)(e - p), p) ||
	    !base64_decode_final(&ctx) || n != 32)
		return -1;
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", dig[i]);
	return 0;
}

static cJSON *blob_json(const lr_store_blob_info *b)
{
	cJSON *o = cJSON_CreateObject();
	char t[40];

	lr__api_time(b->created_ms, t, sizeof(t));
	cJSON_AddStringToObject(o, "id", b->sha);
	cJSON_AddStringToObject(o, "sha256", b->sha);
	cJSON_AddNumberToObject(o, "size_bytes", (double)b->size_bytes);
	cJSON_AddStringToObject(o, "create_time", t);
	return o;
}

enum MHD_Result lr__jobs_blob_put(lr_req *r, int first, const char *data, size_t *size)
{
	lr_store *st = lr__api_store(r->api);
	lr_msg msg = { { 0 } };
	int rc;

	if (st == NULL)
		return lr__api_problem(r, 503, "not-ready", "the job store is not available");
	if (first) {
		const char *d = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Repr-Digest");
		enum MHD_Result ret;
		int answered;

		if (d != NULL && parse_repr_digest(d, r->expected_sha) != 0)
			return lr__api_problem(r, 400, "bad-request",
					       "Repr-Digest: expected sha-256=:BASE64-OF-32-BYTES:");
		ret = lr__idem_first(r, &answered);
		if (answered)
			return ret;
		rc = lr_store_blob_writer_open(st, r->size_cap, &r->bw, &msg);
		if (rc != 0)
			return lr__api_store_error(r, rc, &msg);
		return MHD_YES;
	}
	if (*size > 0) {
		if (r->bw != NULL) {
			rc = lr_store_blob_writer_write(r->bw, data, *size, &msg);
			if (rc != 0 && writer_failed(r, rc, "body", &msg) == MHD_NO)
				return MHD_NO;
		}
		*size = 0;
		return MHD_YES;
	}
	if (r->err_status)
		return answer_deferred(r);
	if (r->idem == LR_REQ_IDEM_REPLAY) {
		/* Same key answered before: store nothing new. Committing with
		 * the first blob's digest as the expected one refuses other
		 * content and stores identical content once (deduplicated). */
		char fp[LR_STORE_SHA_LEN + 1];

		rc = lr_store_blob_writer_commit(st, r->bw, r->tenant, r->idem_rec.resource,
						 &r->blob, &msg);
		r->bw = NULL;
		if (rc != 0 && rc != LR_STORE_EDIGEST && rc != LR_STORE_ENOTFOUND)
			return lr__api_store_error(r, rc, &msg);
		lr__idem_fingerprint(r, rc == 0 ? r->blob.sha : "other", fp);
		return lr__idem_replay(r, fp);
	}
	rc = lr_store_blob_writer_commit(st, r->bw, r->tenant,
					 r->expected_sha[0] ? r->expected_sha : NULL, &r->blob, &msg);
	r->bw = NULL;
	if (rc == LR_STORE_EDIGEST)
		return lr__api_problem(r, 400, "digest-mismatch",
				       "the body's SHA-256 differs from Repr-Digest");
	if (rc != 0)
		return lr__api_store_error(r, rc, &msg);
	{
		char loc[128], fp[LR_STORE_SHA_LEN + 1];
		cJSON *body = blob_json(&r->blob);

		snprintf(loc, sizeof(loc), "/v1/blobs/%s", r->blob.sha);
		if (r->idem == LR_REQ_IDEM_HELD) {
			lr__idem_fingerprint(r, r->blob.sha, fp);
			lr__idem_complete(r, 201, r->blob.sha, loc, fp, body);
		}
		return lr__api_json(r, 201, body, "Location", loc, NULL);
	}
}

/* ------------------------------------------------------------------ */
/* The job resource                                                    */

static void add_time(cJSON *o, const char *k, int64_t ms)
{
	char t[40];

	if (ms <= 0)
		return;
	lr__api_time(ms, t, sizeof(t));
	cJSON_AddStringToObject(o, k, t);
}

/* Adds the parsed JSON text `text` as member `k` (skipped when invalid). */
static void add_raw(cJSON *o, const char *k, const char *text)
{
	cJSON *v = text ? cJSON_Parse(text) : NULL;

	if (v != NULL)
		cJSON_AddItemToObject(o, k, v);
}

/* One summary per HTTP thread: a report never changes (its name is its
 * SHA-256), so polling a finished job reads and parses it once. */
typedef struct summary_cache {
	char sha[LR_STORE_SHA_LEN + 1]; /* report blob the summary is of */
	cJSON *summary;                 /* owned */
} summary_cache;

void lr__jobs_cache_free(void *p)
{
	summary_cache *c = p;

	if (c != NULL)
		cJSON_Delete(c->summary);
	free(c);
}

static cJSON *report_summary_read(lr_store *st, const char *tenant, const char *sha);

/* Picks the headline numbers out of a report for the job resource. */
static cJSON *report_summary(lr_req *r, const char *sha)
{
	summary_cache *c = pthread_getspecific(r->api->cache_key);
	cJSON *s;

	/* `sha` comes from the tenant's own job record, so the tenant may
	 * see that report: the cache needs no access check of its own. */
	if (c != NULL && strcmp(c->sha, sha) == 0)
		return cJSON_Duplicate(c->summary, 1);
	s = report_summary_read(lr__api_store(r->api), r->tenant, sha);
	if (s == NULL)
		return NULL;
	if (c == NULL && (c = calloc(1, sizeof(*c))) != NULL)
		pthread_setspecific(r->api->cache_key, c);
	if (c != NULL) {
		cJSON_Delete(c->summary);
		c->summary = cJSON_Duplicate(s, 1);
		strcpy(c->sha, c->summary ? sha : "");
	}
	return s;
}

static cJSON *report_summary_read(lr_store *st, const char *tenant, const char *sha)
{
	static const char *const keys[] = { "theoretical_speedup", "target_speedup",
		"conv_mflops_before", "conv_mflops_after", "mflops_before", "mflops_after",
		"model_bytes_before", "model_bytes_after", "seconds", "method" };
	cJSON *rep = NULL, *sum = NULL, *h;
	char *text = NULL;
	int64_t size;
	ssize_t n;
	int fd = -1;

	if (st == NULL || lr_store_blob_open(st, tenant, sha, &fd, &size, NULL) != 0 ||
	    size > (1 << 22))
		goto out;
	text = malloc((size_t)size + 1);
	if (text == NULL || (n = read(fd, text, (size_t)size)) != (ssize_t)size)
		goto out;
	text[size] = '\0';
	rep = cJSON_Parse(text);
	if (rep == NULL)
		goto out;
	sum = cJSON_CreateObject();
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		cJSON *v = cJSON_GetObjectItemCaseSensitive(rep, keys[i]);

		if (v != NULL)
			cJSON_AddItemToObject(sum, keys[i], cJSON_Duplicate(v, 1));
	}
	h = cJSON_GetObjectItemCaseSensitive(rep, "holdout");
	if (h != NULL)
		cJSON_AddItemToObject(sum, "holdout", cJSON_Duplicate(h, 1));
out:
	if (fd >= 0)
		close(fd);
	free(text);
	cJSON_Delete(rep);
	return sum;
}

/* The job resource. `r` is the request (its thread's summary cache is
 * used), or NULL outside a request: then the report is read through `st`. */
static cJSON *job_json_st(lr_req *r, lr_store *st, const lr_store_job *j)
{
	cJSON *o = cJSON_CreateObject(), *links, *inputs;
	char buf[160];
	int done = lr_job_state_is_terminal(j->state);

	snprintf(buf, sizeof(buf), "jobs/%s", j->id);
	cJSON_AddStringToObject(o, "name", buf);
	cJSON_AddStringToObject(o, "id", j->id);
	cJSON_AddStringToObject(o, "state", lr_job_state_name(j->state));
	cJSON_AddBoolToObject(o, "done", done);
	add_time(o, "create_time", j->created_ms);
	add_time(o, "start_time", j->started_ms);
	add_time(o, "end_time", j->finished_ms);
	add_time(o, "update_time", j->updated_ms);
	cJSON_AddNumberToObject(o, "attempts", j->attempts);
	cJSON_AddBoolToObject(o, "cancel_requested", j->cancel_requested);
	if (j->progress_json != NULL)
		add_raw(o, "progress", j->progress_json);
	add_raw(o, "spec", j->spec_json);
	inputs = cJSON_AddObjectToObject(o, "inputs");
	cJSON_AddStringToObject(inputs, "model_sha256", j->model_sha);
	if (j->calib_sha[0])
		cJSON_AddStringToObject(inputs, "calibration_sha256", j->calib_sha);
	links = cJSON_AddObjectToObject(o, "links");
	snprintf(buf, sizeof(buf), "/v1/jobs/%s", j->id);
	cJSON_AddStringToObject(links, "self", buf);
	snprintf(buf, sizeof(buf), "/v1/jobs/%s/events", j->id);
	cJSON_AddStringToObject(links, "events", buf);
	if (j->state == LR_JOB_STATE_SUCCEEDED) {
		cJSON *resp = cJSON_AddObjectToObject(o, "response"), *s;

		snprintf(buf, sizeof(buf), "/v1/jobs/%s/model", j->id);
		cJSON_AddStringToObject(resp, "model", buf);
		cJSON_AddStringToObject(resp, "model_sha256", j->result_sha);
		if (j->report_sha[0]) {
			snprintf(buf, sizeof(buf), "/v1/jobs/%s/report", j->id);
			cJSON_AddStringToObject(resp, "report", buf);
			s = r != NULL ? report_summary(r, j->report_sha)
				      : report_summary_read(st, j->tenant, j->report_sha);
			if (s != NULL)
				cJSON_AddItemToObject(resp, "summary", s);
		}
	} else if (done) {
		cJSON *err = j->error_json ? cJSON_Parse(j->error_json) : NULL, *code;
		cJSON *p = cJSON_CreateObject();

		code = err ? cJSON_GetObjectItemCaseSensitive(err, "code") : NULL;
		snprintf(buf, sizeof(buf), "https://lowrankd.invalid/problems/%s",
			 cJSON_IsString(code) ? code->valuestring
			 : j->state == LR_JOB_STATE_CANCELED ? "canceled" : "job-failed");
		cJSON_AddStringToObject(p, "type", buf);
		if (err != NULL) {
			cJSON *t = cJSON_GetObjectItemCaseSensitive(err, "title");
			cJSON *d = cJSON_GetObjectItemCaseSensitive(err, "detail");

			if (cJSON_IsString(t))
				cJSON_AddStringToObject(p, "title", t->valuestring);
			if (cJSON_IsString(d))
				cJSON_AddStringToObject(p, "detail", d->valuestring);
		} else {
			cJSON_AddStringToObject(p, "title", j->state == LR_JOB_STATE_CANCELED
							    ? "Canceled" : "Job failed");
		}
		snprintf(buf, sizeof(buf), "/v1/jobs/%s", j->id);
		cJSON_AddStringToObject(p, "instance", buf);
		cJSON_AddItemToObject(o, "error", p);
		cJSON_Delete(err);
	}
	return o;
}

static cJSON *job_json(lr_req *r, const lr_store_job *j)
{
	return job_json_st(r, NULL, j);
}

char *lr_api_job_resource(lr_store *st, const char *tenant, const char *id)
{
	lr_store_job job;
	cJSON *o;
	char *text = NULL;

	memset(&job, 0, sizeof(job));
	if (lr_store_job_get(st, tenant, id, &job, NULL) != 0)
		return NULL;
	o = job_json_st(NULL, st, &job);
	if (o != NULL)
		text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	lr_store_job_fini(&job);
	return text;
}

/* ------------------------------------------------------------------ */
/* POST /v1/jobs                                                       */

static int part_begin(void *ud, const char *name, const char *filename, const char *ct)
{
	lr_req *r = ud;
	lr_store *st = lr__api_store(r->api);
	lr_msg msg = { { 0 } };
	int kind, rc;

	(void)filename;
	(void)ct;
	kind = strcmp(name, "model") == 0 ? PART_MODEL
	       : strcmp(name, "calibration") == 0 ? PART_CALIB
	       : strcmp(name, "spec") == 0 ? PART_SPEC : PART_NONE;
	if (kind == PART_NONE) {
		lr__api_defer(r, 400, "bad-request",
			      "unknown form field '%.64s' (expected model, calibration and spec)", name);
		return LR_EINVAL;
	}
	if (r->parts_seen & (1 << kind)) {
		lr__api_defer(r, 400, "bad-request", "form field '%s' given twice", name);
		return LR_EINVAL;
	}
	r->parts_seen |= 1 << kind;
	r->part = kind;
	if (kind == PART_SPEC)
		return 0;
	if (st == NULL) {
		lr__api_defer(r, 503, "not-ready", "the job store is not available");
		return LR_EIO;
	}
	rc = lr_store_blob_writer_open(st, r->size_cap, &r->bw, &msg);
	if (rc != 0) {
		writer_failed(r, rc, name, &msg);
		return rc;
	}
	return 0;
}

static int part_data(void *ud, const char *d, size_t n)
{
	lr_req *r = ud;
	lr_msg msg = { { 0 } };
	int rc;

	if (r->part == PART_SPEC) {
		if (text_append(r, d, n, LR_SPEC_MAX_BYTES) != 0) {
			lr__api_defer(r, 413, "payload-too-large", "spec: longer than %d bytes",
				      LR_SPEC_MAX_BYTES);
			return LR_ELIMIT;
		}
		return 0;
	}
	rc = lr_store_blob_writer_write(r->bw, d, n, &msg);
	if (rc != 0) {
		if (rc != LR_STORE_ETOOBIG)
			writer_failed(r, rc, r->part == PART_MODEL ? "model" : "calibration", &msg);
		return rc;
	}
	return 0;
}

static int part_end(void *ud)
{
	lr_req *r = ud;
	lr_store *st = lr__api_store(r->api);
	lr_store_blob_info info;
	lr_msg msg = { { 0 } };
	int rc;

	if (r->part == PART_SPEC || r->bw == NULL)
		return 0;
	rc = lr_store_blob_writer_commit(st, r->bw, r->tenant, NULL, &info, &msg);
	r->bw = NULL;
	if (rc != 0) {
		writer_failed(r, rc, r->part == PART_MODEL ? "model" : "calibration", &msg);
		return rc;
	}
	strcpy(r->part == PART_MODEL ? r->model_sha : r->calib_sha, info.sha);
	r->part = PART_NONE;
	return 0;
}

/* 1 when `name` is a node name or a node output name of `m`. */
static int layer_exists(const lr_model *m, const char *name)
{
	for (int i = 0; i < m->nnodes; i++) {
		if (strcmp(m->nodes[i].name, name) == 0)
			return 1;
		for (int k = 0; k < m->nodes[i].nout; k++)
			if (m->nodes[i].out[k] >= 0 &&
			    strcmp(m->values[m->nodes[i].out[k]].name, name) == 0)
				return 1;
	}
	return 0;
}

/* Checks the inputs, queues the job and answers 202 (or a problem). */
static enum MHD_Result create_job(lr_req *r, const char *spec_text, size_t spec_len,
				  const cJSON *spec_obj)
{
	lr_store *st = lr__api_store(r->api);
	lr_spec *spec = NULL;
	lr_model *model = NULL;
	lr_msg msg = { { 0 } };
	enum lr_inputs_fault fault;
	char mpath[4200], cpath[4200], id[LR_STORE_ID_LEN + 1], loc[64];
	char fp[LR_STORE_SHA_LEN + 1] = "";
	lr_store_job job;
	lr_store_job_new nj;
	cJSON *sj = NULL;
	char *spec_json = NULL;
	enum MHD_Result ret;
	int rc;

	memset(&job, 0, sizeof(job));
	if (spec_obj != NULL)
		rc = lr_spec_from_json(spec_obj, &spec, &msg);
	else
		rc = lr_spec_parse(spec_text ? spec_text : "{}", spec_text ? spec_len : 2, &spec, &msg);
	if (rc != 0) {
		ret = rc == LR_ENOMEM ? MHD_NO
				      : lr__api_problem(r, 422, "invalid-spec", "%s", msg.text);
		goto out;
	}
	if (spec->notify_url != NULL && !r->api->o.webhooks) {
		ret = lr__api_problem(r, 422, "invalid-spec",
				      "notify_url: this server sends no webhooks (its webhook_secret_file is not set)");
		goto out;
	}
	if (spec->memory_mib > 0 && r->api->o.job_memory_mib > 0 &&
	    spec->memory_mib > r->api->o.job_memory_mib) {
		ret = lr__api_problem(r, 422, "invalid-spec",
				      "memory_budget_mib: %lld is more than this server allows a job (job_memory_mib = %lld)",
				      (long long)spec->memory_mib, (long long)r->api->o.job_memory_mib);
		goto out;
	}
	if (lr_store_blob_path(st, r->model_sha, mpath, sizeof(mpath)) != 0 ||
	    lr_store_blob_path(st, r->calib_sha, cpath, sizeof(cpath)) != 0) {
		ret = lr__api_problem(r, 500, "internal", "the inputs could not be located");
		goto out;
	}
	rc = lr_inputs_load(mpath, cpath, &model, NULL, &fault, &msg);
	if (rc != 0) {
		static const char *const slug[] = { "internal", "invalid-model", "unsupported-model",
						    "invalid-calibration", "shape-mismatch" };

		if (rc == LR_ENOMEM || rc == LR_EIO) {
			lr_log(LR_LOG_ERR, "cannot load job inputs", "request_id", r->rid,
			       "error", msg.text, NULL);
			ret = lr__api_problem(r, rc == LR_ENOMEM ? 503 : 500,
					      rc == LR_ENOMEM ? "not-ready" : "internal",
					      "the inputs could not be loaded (out of memory or I/O error)");
		} else {
			ret = lr__api_problem(r, 422, slug[fault], "%s", msg.text);
		}
		goto out;
	}
	for (int i = 0; i < spec->opts.nranks + spec->opts.nexclude; i++) {
		const char *name = i < spec->opts.nranks ? spec->opts.ranks[i].layer
							 : spec->opts.exclude[i - spec->opts.nranks];

		if (!layer_exists(model, name)) {
			ret = lr__api_problem(r, 422, "invalid-spec",
					      "%s: the model has no layer '%.200s' (a Conv node name or its output name)",
					      i < spec->opts.nranks ? "ranks" : "exclude", name);
			goto out;
		}
	}
	sj = lr_spec_to_json(spec);
	spec_json = sj ? cJSON_PrintUnformatted(sj) : NULL;
	if (spec_json == NULL) {
		ret = MHD_NO;
		goto out;
	}
	memset(&nj, 0, sizeof(nj));
	nj.tenant = r->tenant;
	nj.spec_json = spec_json;
	nj.model_sha = r->model_sha;
	nj.calib_sha = r->calib_sha;
	nj.max_attempts = r->api->o.max_attempts;
	nj.queued_max = r->api->o.max_queued_per_tenant;
	if (r->idem == LR_REQ_IDEM_HELD) {
		lr__idem_fingerprint(r, NULL, fp);
		nj.idem_key = r->idem_key;
		nj.idem_fingerprint = fp;
	}
	rc = lr_store_job_create(st, &nj, id, &msg);
	if (rc == LR_STORE_ENOTFOUND) {
		ret = lr__api_problem(r, 422, "bad-request", "an input blob is gone; upload it again");
		goto out;
	}
	if (rc != 0) {
		ret = lr__api_store_error(r, rc, &msg);
		goto out;
	}
	atomic_fetch_add(&lr__metric_jobs_submitted, 1);
	memcpy(r->job_id, id, sizeof(id));
	lr_log(LR_LOG_INFO, "job queued", "request_id", r->rid, "job_id", id, "tenant", r->tenant,
	       "model_sha256", r->model_sha, NULL);
	if (r->api->o.on_job_created)
		r->api->o.on_job_created(r->api->o.ud);
	rc = lr_store_job_get(st, r->tenant, id, &job, &msg);
	if (rc != 0) {
		ret = lr__api_store_error(r, rc, &msg);
		goto out;
	}
	snprintf(loc, sizeof(loc), "/v1/jobs/%s", id);
	{
		cJSON *body = job_json(r, &job);

		if (r->idem == LR_REQ_IDEM_HELD)
			lr__idem_complete(r, 202, id, loc, fp, body);
		ret = lr__api_json(r, 202, body, "Location", loc, "Retry-After", "2", NULL);
	}
out:
	lr_model_free(model);
	lr_store_job_fini(&job);
	cJSON_Delete(sj);
	free(spec_json);
	lr_spec_free(spec);
	return ret;
}

/* The JSON form: {"model": SHA, "calibration": SHA, "spec": {...}}. */
static enum MHD_Result create_from_json(lr_req *r)
{
	lr_store *st = lr__api_store(r->api);
	const char *end = NULL;
	cJSON *root = r->text ? cJSON_ParseWithLengthOpts(r->text, r->text_len, &end, 0) : NULL;
	const cJSON *v, *spec = NULL;
	lr_store_blob_info info;
	enum MHD_Result ret;

	while (root != NULL && end < r->text + r->text_len && strchr(" \t\r\n", *end) && *end)
		end++;
	if (!cJSON_IsObject(root) || end != r->text + r->text_len) {
		ret = lr__api_problem(r, 400, "bad-request",
				      "the body must be a JSON object {\"model\", \"calibration\", \"spec\"}");
		goto out;
	}
	cJSON_ArrayForEach(v, root) {
		char *dst = strcmp(v->string, "model") == 0 ? r->model_sha
			    : strcmp(v->string, "calibration") == 0 ? r->calib_sha : NULL;

		if (strcmp(v->string, "spec") == 0) {
			spec = v;
			continue;
		}
		if (dst == NULL) {
			ret = lr__api_problem(r, 400, "bad-request",
					      "%.64s: unknown member (expected model, calibration and spec)",
					      v->string);
			goto out;
		}
		if (!cJSON_IsString(v) || !lr_store_sha_valid(v->valuestring)) {
			ret = lr__api_problem(r, 400, "bad-request",
					      "%s: must be a blob id (64 lowercase hex digits from PUT /v1/blobs)",
					      v->string);
			goto out;
		}
		strcpy(dst, v->valuestring);
		if (lr_store_blob_stat(st, r->tenant, dst, &info, NULL) != 0) {
			ret = lr__api_problem(r, 422, "bad-request",
					      "%s: no blob with this id was uploaded by you", v->string);
			goto out;
		}
	}
	if (!r->model_sha[0] || !r->calib_sha[0]) {
		ret = lr__api_problem(r, 400, "bad-request", "%s: required",
				      r->model_sha[0] ? "calibration" : "model");
		goto out;
	}
	ret = create_job(r, NULL, 0, spec);
out:
	cJSON_Delete(root);
	return ret;
}

enum MHD_Result lr__jobs_create(lr_req *r, int first, const char *data, size_t *size)
{
	static const lr_mp_callbacks cb = { part_begin, part_data, part_end };
	lr_store *st = lr__api_store(r->api);
	lr_msg msg = { { 0 } };
	int rc;

	if (st == NULL)
		return lr__api_problem(r, 503, "not-ready", "the job store is not available");
	if (first) {
		const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
		int64_t active = 0;
		enum MHD_Result ret;
		int answered;

		ret = lr__idem_first(r, &answered);
		if (answered)
			return ret;
		if (r->idem != LR_REQ_IDEM_REPLAY &&
		    lr_store_tenant_active(st, r->tenant, &active, NULL) == 0 &&
		    active >= r->api->o.max_queued_per_tenant)
			return lr__api_store_error(r, LR_STORE_EQUEUEFULL, NULL);
		if (ct != NULL && strncasecmp(ct, "multipart/form-data", 19) == 0) {
			lr_mp_limits lim = { 8, 4096 };

			rc = lr_mp_new(ct, &lim, &cb, r, &r->mp, &msg);
			if (rc != 0)
				return lr__api_problem(r, 400, "bad-request", "%s", msg.text);
			return MHD_YES;
		}
		if (ct != NULL && strncasecmp(ct, "application/json", 16) == 0)
			return MHD_YES;
		return lr__api_problem(r, 415, "unsupported-media-type",
				       "send multipart/form-data (model, calibration, spec) or application/json naming blobs");
	}
	if (*size > 0) {
		if (r->err_status == 0) {
			if (r->mp != NULL) {
				rc = lr_mp_feed(r->mp, data, *size, &msg);
				if (rc == LR_STORE_ETOOBIG)
					return MHD_NO;
				if (rc != 0)
					lr__api_defer(r, rc == LR_ELIMIT ? 413 : 400,
						      rc == LR_ELIMIT ? "payload-too-large" : "bad-request",
						      "%s", msg.text);
			} else if (text_append(r, data, *size, LR_JSON_BODY_MAX) != 0) {
				lr__api_defer(r, 413, "payload-too-large",
					      "a JSON job request is limited to %d bytes", LR_JSON_BODY_MAX);
			}
		}
		*size = 0;
		return MHD_YES;
	}
	if (r->err_status == 0 && r->mp != NULL && lr_mp_finish(r->mp, &msg) != 0)
		lr__api_defer(r, 400, "bad-request", "%s", msg.text);
	if (r->err_status)
		return answer_deferred(r);
	if (r->idem == LR_REQ_IDEM_REPLAY) {
		char fp[LR_STORE_SHA_LEN + 1];

		lr__idem_fingerprint(r, NULL, fp);
		return lr__idem_replay(r, fp);
	}
	if (r->mp == NULL)
		return create_from_json(r);
	if (!r->model_sha[0] || !r->calib_sha[0])
		return lr__api_problem(r, 400, "bad-request",
				       "%s: required form field (curl -F %s=@FILE)",
				       r->model_sha[0] ? "calibration" : "model",
				       r->model_sha[0] ? "calibration" : "model");
	return create_job(r, r->text, r->text_len, NULL);
}

/* ------------------------------------------------------------------ */
/* Reading jobs                                                        */

/*
 * Adds "notify" to a job resource whose spec has a notify_url and whose
 * webhook has been written (the job ended): the delivery's state, attempts,
 * the last attempt's HTTP status and error, and when the next attempt is
 * due. Only GET /v1/jobs/{id} shows it: the webhook's own payload is the
 * job resource without it, and lists would cost a query per job.
 */
static void add_notify(lr_store *st, cJSON *o, const lr_store_job *j)
{
	static const char *const states[] = { "pending", "delivered", "failed" };
	lr_store_hook h;
	cJSON *n;
	int state = -1;

	if (j->spec_json == NULL || strstr(j->spec_json, "\"notify_url\"") == NULL ||
	    lr_store_hook_of_job(st, j->id, &h, &state, NULL) != 0)
		return;
	n = cJSON_AddObjectToObject(o, "notify");
	if (n != NULL && state >= 0 && state <= 2) {
		cJSON_AddStringToObject(n, "webhook_id", h.id);
		cJSON_AddStringToObject(n, "event", h.event);
		cJSON_AddStringToObject(n, "state", states[state]);
		cJSON_AddNumberToObject(n, "attempts", h.attempts);
		if (h.last_status > 0)
			cJSON_AddNumberToObject(n, "last_status", h.last_status);
		if (h.last_error != NULL)
			cJSON_AddStringToObject(n, "last_error", h.last_error);
		if (state == 0)
			add_time(n, "next_attempt_time", h.next_ms);
	}
	lr_store_hook_fini(&h);
}

enum MHD_Result lr__jobs_get(lr_req *r)
{
	lr_store *st = lr__api_store(r->api);
	lr_store_job job;
	lr_msg msg = { { 0 } };
	enum MHD_Result ret;
	int rc;

	if (st == NULL)
		return lr__api_problem(r, 503, "not-ready", "the job store is not available");
	memset(&job, 0, sizeof(job));
	rc = lr_store_job_get(st, r->tenant, r->job_id, &job, &msg);
	if (rc != 0)
		return lr__api_store_error(r, rc, &msg);
	{
		cJSON *o = job_json(r, &job);

		if (o != NULL)
			add_notify(st, o, &job);
		ret = lr__api_json(r, 200, o, "Retry-After",
				   lr_job_state_is_terminal(job.state) ? NULL : "2", NULL);
	}
	lr_store_job_fini(&job);
	return ret;
}

enum MHD_Result lr__jobs_list(lr_req *r)
{
	lr_store *st = lr__api_store(r->api);
	const char *state = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "state");
	const char *ps = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "page_size");
	const char *tok = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "page_token");
	lr_store_job_page page;
	lr_msg msg = { { 0 } };
	enum lr_job_state s;
	cJSON *o, *arr;
	enum MHD_Result ret;
	long size = 0;
	int rc, filter = -1;
	char link[512];

	if (st == NULL)
		return lr__api_problem(r, 503, "not-ready", "the job store is not available");
	if (state != NULL && state[0] != '\0') {
		if (lr_job_state_parse(state, &s) != 0)
			return lr__api_problem(r, 400, "bad-request",
					       "state: must be queued, running, succeeded, failed or canceled");
		filter = (int)s;
	}
	if (ps != NULL) {
		char *end;

		size = strtol(ps, &end, 10);
		if (*end != '\0' || end == ps || size < 1)
			return lr__api_problem(r, 400, "bad-request",
					       "page_size: must be a positive integer (at most %d are returned)",
					       LR_STORE_LIST_MAX);
	}
	memset(&page, 0, sizeof(page));
	rc = lr_store_jobs_list(st, r->tenant, filter, (size_t)size, tok, &page, &msg);
	if (rc == LR_EINVAL)
		return lr__api_problem(r, 400, "bad-request",
				       "page_token: invalid, or issued for another state filter");
	if (rc != 0)
		return lr__api_store_error(r, rc, &msg);
	o = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(o, "jobs");
	for (size_t i = 0; i < page.count; i++)
		cJSON_AddItemToArray(arr, job_json(r, &page.jobs[i]));
	cJSON_AddStringToObject(o, "next_page_token", page.next_token);
	snprintf(link, sizeof(link), "</v1/jobs?page_token=%s%s%s>; rel=\"next\"", page.next_token,
		 filter >= 0 ? "&state=" : "", filter >= 0 ? state : "");
	ret = lr__api_json(r, 200, o, "Link", page.next_token[0] ? link : NULL, NULL);
	lr_store_job_page_fini(&page);
	return ret;
}

enum MHD_Result lr__jobs_cancel(lr_req *r)
{
	lr_store *st = lr__api_store(r->api);
	lr_msg msg = { { 0 } };
	int rc;

	if (st == NULL)
		return lr__api_problem(r, 503, "not-ready", "the job store is not available");
	rc = lr_store_job_cancel(st, r->tenant, r->job_id, NULL, &msg);
	if (rc != 0)
		return lr__api_store_error(r, rc, &msg);
	lr_log(LR_LOG_INFO, "job cancel requested", "request_id", r->rid, "job_id", r->job_id, NULL);
	return lr__jobs_get(r);
}

enum MHD_Result lr__jobs_delete(lr_req *r)
{
	lr_store *st = lr__api_store(r->api);
	lr_msg msg = { { 0 } };
	struct MHD_Response *resp;
	int rc;

	if (st == NULL)
		return lr__api_problem(r, 503, "not-ready", "the job store is not available");
	rc = lr_store_job_delete(st, r->tenant, r->job_id, &msg);
	if (rc != 0)
		return lr__api_store_error(r, rc, &msg);
	resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	return lr__api_queue(r, 204, resp);
}

/* ------------------------------------------------------------------ */
/* Downloads                                                           */

static int etag_matches(const char *header, const char *etag)
{
	size_t n = strlen(etag);

	for (const char *p = header; p && *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '*')
			return 1;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (strncmp(p, etag, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return 1;
		p = strchr(p, ',');
	}
	return 0;
}

enum MHD_Result lr__jobs_download(lr_req *r, int report)
{
	lr_store *st = lr__api_store(r->api);
	lr_store_job job;
	lr_msg msg = { { 0 } };
	struct MHD_Response *resp = NULL;
	char etag[80], disp[128], cr[96];
	const char *sha, *inm, *range, *ifr;
	uint64_t start = 0, len = 0;
	int64_t size = 0;
	enum MHD_Result ret;
	lr_range_result rr;
	int fd = -1, rc;

	if (st == NULL)
		return lr__api_problem(r, 503, "not-ready", "the job store is not available");
	memset(&job, 0, sizeof(job));
	rc = lr_store_job_get(st, r->tenant, r->job_id, &job, &msg);
	if (rc != 0)
		return lr__api_store_error(r, rc, &msg);
	sha = report ? job.report_sha : job.result_sha;
	if (sha[0] == '\0') {
		ret = lr__api_problem(r, 409, "no-result", "the job is %s; the %s exists once it has succeeded",
				      lr_job_state_name(job.state), report ? "report" : "model");
		goto out;
	}
	snprintf(etag, sizeof(etag), "\"%s\"", sha);
	inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-None-Match");
	if (inm != NULL && etag_matches(inm, etag)) {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(resp, "ETag", etag);
		ret = lr__api_queue(r, 304, resp);
		goto out;
	}
	rc = lr_store_blob_open(st, r->tenant, sha, &fd, &size, &msg);
	if (rc != 0) {
		ret = lr__api_store_error(r, rc == LR_STORE_ENOTFOUND ? LR_STORE_EDB : rc, &msg);
		goto out;
	}
	range = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Range");
	ifr = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-Range");
	if (ifr != NULL && strcmp(ifr, etag) != 0)
		range = NULL;
	rr = lr_range_parse(range, (uint64_t)size, &start, &len);
	if (rr == LR_RANGE_UNSATISFIABLE) {
		close(fd);
		fd = -1;
		snprintf(cr, sizeof(cr), "bytes */%lld", (long long)size);
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(resp, "Content-Range", cr);
		MHD_add_response_header(resp, "ETag", etag);
		ret = lr__api_queue(r, 416, resp);
		goto out;
	}
	if (rr == LR_RANGE_PARTIAL) {
		resp = MHD_create_response_from_fd_at_offset64(len, fd, start);
		snprintf(cr, sizeof(cr), "bytes %llu-%llu/%lld", (unsigned long long)start,
			 (unsigned long long)(start + len - 1), (long long)size);
		if (resp != NULL)
			MHD_add_response_header(resp, "Content-Range", cr);
	} else {
		resp = MHD_create_response_from_fd64((uint64_t)size, fd);
	}
	if (resp == NULL) {
		close(fd);
		ret = MHD_NO;
		goto out;
	}
	fd = -1; /* the response owns it */
	snprintf(disp, sizeof(disp), "attachment; filename=\"%s.lowrank.%s\"", job.id,
		 report ? "report.json" : "onnx");
	MHD_add_response_header(resp, "Content-Type", report ? "application/json" : "application/octet-stream");
	MHD_add_response_header(resp, "Content-Disposition", disp);
	MHD_add_response_header(resp, "ETag", etag);
	MHD_add_response_header(resp, "Accept-Ranges", "bytes");
	MHD_add_response_header(resp, "Cache-Control", "private, max-age=31536000, immutable");
	ret = lr__api_queue(r, rr == LR_RANGE_PARTIAL ? 206 : 200, resp);
out:
	if (fd >= 0)
		close(fd);
	lr_store_job_fini(&job);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Event stream                                                        */

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	lr_req *r = cls;
	lr_api *a = r->api;
	lr_store *st;
	lr_store_job job;
	double now = mono();

	(void)pos;
	if (r->sse_off < r->sse_len) {
		size_t n = r->sse_len - r->sse_off;

		if (n > max)
			n = max;
		memcpy(buf, r->sse_buf + r->sse_off, n);
		r->sse_off += n;
		r->sse_last_send = now;
		return (ssize_t)n;
	}
	if (r->sse_done || atomic_load(&a->stopping))
		return MHD_CONTENT_READER_END_OF_STREAM;
	st = lr__api_store(a);
	if (st == NULL)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	memset(&job, 0, sizeof(job));
	if (lr_store_job_get(st, r->tenant, r->job_id, &job, NULL) != 0)
		return MHD_CONTENT_READER_END_OF_STREAM; /* deleted */
	if (job.updated_ms != r->sse_updated_ms) {
		cJSON *o = job_json(r, &job);
		char *text = cJSON_PrintUnformatted(o);
		int term = lr_job_state_is_terminal(job.state);
		size_t n;

		cJSON_Delete(o);
		if (text == NULL) {
			lr_store_job_fini(&job);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		n = strlen(text) + 64;
		free(r->sse_buf);
		r->sse_buf = malloc(n);
		if (r->sse_buf == NULL) {
			free(text);
			lr_store_job_fini(&job);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		r->sse_len = (size_t)snprintf(r->sse_buf, n, "id: %lld\nevent: %s\ndata: %s\n\n",
					      (long long)job.updated_ms, term ? "done" : "job", text);
		r->sse_off = 0;
		r->sse_updated_ms = job.updated_ms;
		r->sse_done = term;
		free(text);
		lr_store_job_fini(&job);
		return sse_read(cls, pos, buf, max);
	}
	lr_store_job_fini(&job);
	if (now - r->sse_last_send > 15.0) {
		static const char ka[] = ": keep-alive\n\n";

		memcpy(buf, ka, sizeof(ka) - 1);
		r->sse_last_send = now;
		return (ssize_t)(sizeof(ka) - 1);
	}
	/* Nothing new: wait for the next lr_api_tick(). */
	pthread_mutex_lock(&a->sse_lock);
	if (atomic_load(&a->stopping)) {
		pthread_mutex_unlock(&a->sse_lock);
		return MHD_CONTENT_READER_END_OF_STREAM;
	}
	r->sse_next = a->sse_waiting;
	a->sse_waiting = r;
	r->sse_suspended = 1;
	MHD_suspend_connection(r->conn);
	pthread_mutex_unlock(&a->sse_lock);
	return 0;
}

enum MHD_Result lr__jobs_events(lr_req *r)
{
	lr_store *st = lr__api_store(r->api);
	lr_store_job job;
	lr_msg msg = { { 0 } };
	struct MHD_Response *resp;
	int rc;

	if (st == NULL)
		return lr__api_problem(r, 503, "not-ready", "the job store is not available");
	memset(&job, 0, sizeof(job));
	rc = lr_store_job_get(st, r->tenant, r->job_id, &job, &msg);
	lr_store_job_fini(&job);
	if (rc != 0)
		return lr__api_store_error(r, rc, &msg);
	r->sse_last_send = mono();
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, r, NULL);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "text/event-stream");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	return lr__api_queue(r, 200, resp);
}
