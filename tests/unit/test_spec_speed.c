/*
 * test_spec_speed.c - the job spec's measured-speed members: objective,
 * deploy_batch, deploy_threads (and memory_budget_mib) parse into the solver options, keep
 * lr_compress_opts_init()'s defaults when absent, are refused out of
 * range naming the member, and survive the canonical round trip.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "api/spec.h"
#include "tests/unit/tap.h"

static int parse(const char *t, lr_spec **s, lr_msg *m)
{
	memset(m, 0, sizeof(*m));
	*s = NULL;
	return lr_spec_parse(t, strlen(t), s, m);
}

static void refuse(const char *text, const char *word)
{
	lr_spec *s;
	lr_msg m;
	int rc = parse(text, &s, &m);

	tap_ok(rc == LR_EINVAL && s == NULL && strstr(m.text, word) != NULL,
	       "%s refused naming '%s' (%s)", text, word, m.text);
}

int main(void)
{
	lr_compress_opts d;
	lr_spec *s = NULL, *s2 = NULL;
	lr_msg m;
	cJSON *j;
	char *txt;
	int rc;

	lr_compress_opts_init(&d);
	rc = parse("{\"speedup\": 2}", &s, &m);
	tap_ok(rc == 0 && s->opts.objective == d.objective && s->opts.deploy_batch == 1 &&
	       s->opts.deploy_threads == 1 && s->opts.timing_cache == NULL,
	       "absent members keep the solver's defaults (objective %s, batch 1, 1 thread)",
	       lr_objective_name(d.objective));
	lr_spec_free(s);
	rc = parse("{\"speedup\": 2.5, \"objective\": \"time\", \"deploy_batch\": 8, \"deploy_threads\": 4}", &s, &m);
	tap_ok(rc == 0 && s->opts.objective == LR_OBJECTIVE_TIME && s->opts.deploy_batch == 8 &&
	       s->opts.deploy_threads == 4, "objective, deploy_batch and deploy_threads parse");
	j = rc == 0 ? lr_spec_to_json(s) : NULL;
	txt = j ? cJSON_PrintUnformatted(j) : NULL;
	rc = txt ? parse(txt, &s2, &m) : -1;
	tap_ok(rc == 0 && s2->opts.objective == LR_OBJECTIVE_TIME && s2->opts.deploy_batch == 8 &&
	       s2->opts.deploy_threads == 4 && strstr(txt, "\"objective\":\"time\"") != NULL,
	       "the canonical form carries them and parses back: %s", txt ? txt : "(null)");
	free(txt);
	cJSON_Delete(j);
	lr_spec_free(s);
	lr_spec_free(s2);
	rc = parse("{\"objective\": \"flops\"}", &s, &m);
	tap_ok(rc == 0 && s->opts.objective == LR_OBJECTIVE_FLOPS, "objective flops");
	lr_spec_free(s);
	tap_ok(d.objective == LR_OBJECTIVE_TIME, "the default objective is measured time");
	rc = parse("{\"speedup\": 999.5, \"fc_fit\": \"weight-svd\"}", &s, &m);
	j = rc == 0 ? lr_spec_to_json(s) : NULL;
	txt = j ? cJSON_PrintUnformatted(j) : NULL;
	tap_ok(rc == 0 && s->opts.fc_fit == LR_FC_FIT_SVD && txt != NULL &&
	       strstr(txt, "\"fc_fit\":\"weight-svd\"") != NULL,
	       "speedup just below 1000 and fc_fit parse and round-trip: %s", txt ? txt : "(null)");
	free(txt);
	cJSON_Delete(j);
	lr_spec_free(s);
	rc = parse("{\"memory_budget_mib\": 300}", &s, &m);
	j = rc == 0 ? lr_spec_to_json(s) : NULL;
	txt = j ? cJSON_PrintUnformatted(j) : NULL;
	tap_ok(rc == 0 && s->memory_mib == 300 && s->opts.memory_budget == (size_t)300 << 20 &&
	       txt != NULL && strstr(txt, "\"memory_budget_mib\":300") != NULL,
	       "memory_budget_mib sets the solver's budget in bytes and round-trips: %s",
	       txt ? txt : "(null)");
	free(txt);
	cJSON_Delete(j);
	lr_spec_free(s);
	rc = parse("{}", &s, &m);
	j = rc == 0 ? lr_spec_to_json(s) : NULL;
	txt = j ? cJSON_PrintUnformatted(j) : NULL;
	tap_ok(rc == 0 && s->memory_mib == 0 && txt != NULL && strstr(txt, "memory_budget_mib") == NULL,
	       "without memory_budget_mib the daemon's default applies and none is echoed");
	free(txt);
	cJSON_Delete(j);
	lr_spec_free(s);
	refuse("{\"memory_budget_mib\": 63}", "memory_budget_mib:");
	refuse("{\"memory_budget_mib\": 1048577}", "memory_budget_mib:");
	refuse("{\"memory_budget_mib\": 100.5}", "memory_budget_mib:");
	/* compress refuses 1000 (speedup < 1000): the spec must refuse it up front */
	refuse("{\"speedup\": 1000}", "speedup:");
	refuse("{\"fc_fit\": \"svd\"}", "fc_fit:");
	refuse("{\"objective\": \"speed\"}", "objective:");
	refuse("{\"objective\": 1}", "objective:");
	refuse("{\"deploy_batch\": 0}", "deploy_batch:");
	refuse("{\"deploy_batch\": 2.5}", "deploy_batch:");
	refuse("{\"deploy_threads\": 257}", "deploy_threads:");
	refuse("{\"deploy_threads\": \"1\"}", "deploy_threads:");
	refuse("{\"deploy\": 1}", "deploy_batch, deploy_threads");
	return tap_done();
}
