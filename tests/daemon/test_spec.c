/* test_spec.c - the job spec parser: defaults, every member, refusals
 * that name the member, and the canonical round trip. */
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
	lr_spec *s, *s2;
	lr_msg m;
	cJSON *j;
	char *txt;
	int rc;

	rc = parse("{}", &s, &m);
	tap_ok(rc == 0 && s->opts.speedup == 4.0 && s->opts.method == LR_METHOD_NONLINEAR_ASYM &&
	       s->opts.samples_per_input == 10 && s->opts.holdout == 0.1 && s->opts.nranks == 0,
	       "{} gives the solver's defaults");
	lr_spec_free(s);
	rc = parse("{\"speedup\": 2.5, \"method\": \"linear\", \"samples_per_input\": 5, \"seed\": 7,"
		   " \"rank_multiple\": 8, \"exclude\": [\"conv1\", \"conv2\"], \"holdout\": 0.25}", &s, &m);
	tap_ok(rc == 0 && s->opts.speedup == 2.5 && s->opts.method == LR_METHOD_LINEAR &&
	       s->opts.samples_per_input == 5 && s->opts.seed == 7 && s->opts.rank_multiple == 8 &&
	       s->opts.nexclude == 2 && strcmp(s->opts.exclude[1], "conv2") == 0 &&
	       s->opts.holdout == 0.25, "every member is applied (%s)", m.text);
	j = lr_spec_to_json(s);
	txt = cJSON_PrintUnformatted(j);
	rc = parse(txt, &s2, &m);
	tap_ok(rc == 0 && s2->opts.speedup == 2.5 && s2->opts.nexclude == 2 && s2->opts.seed == 7,
	       "the canonical form parses back: %s", txt);
	free(txt);
	cJSON_Delete(j);
	lr_spec_free(s2);
	lr_spec_free(s);
	rc = parse("{\"ranks\": {\"conv1\": 4, \"conv2\": 8}}", &s, &m);
	tap_ok(rc == 0 && s->opts.nranks == 2 && s->opts.speedup == 0 &&
	       strcmp(s->opts.ranks[1].layer, "conv2") == 0 && s->opts.ranks[1].rank == 8,
	       "ranks alone: exactly those layers, no speedup target");
	lr_spec_free(s);
	rc = parse("{\"ranks\": {\"c\": 4}, \"speedup\": 3}", &s, &m);
	tap_ok(rc == 0 && s->opts.nranks == 1 && s->opts.speedup == 3, "ranks and speedup together");
	lr_spec_free(s);

	refuse("{\"sped\": 3}", "sped: unknown member");
	refuse("{\"speedup\": \"4\"}", "speedup:");
	refuse("{\"speedup\": 1}", "speedup:");
	refuse("{\"speedup\": true}", "speedup:");
	refuse("{\"method\": \"magic\"}", "method:");
	refuse("{\"method\": 1}", "method:");
	refuse("{\"ranks\": [1]}", "ranks:");
	refuse("{\"ranks\": {\"c\": 0}}", "ranks.c:");
	refuse("{\"ranks\": {\"c\": 2.5}}", "ranks.c:");
	refuse("{\"ranks\": {\"c\": 1, \"c\": 2}}", "twice");
	refuse("{\"seed\": 1, \"seed\": 2}", "seed: given twice");
	refuse("{\"seed\": -1}", "seed:");
	refuse("{\"samples_per_input\": 0}", "samples_per_input:");
	refuse("{\"rank_multiple\": 5000}", "rank_multiple:");
	refuse("{\"holdout\": 1}", "holdout:");
	refuse("{\"holdout\": null}", "holdout:");
	refuse("{\"exclude\": \"conv1\"}", "exclude:");
	refuse("{\"exclude\": [\"a\", 2]}", "exclude[1]:");
	refuse("[1]", "spec: must be a JSON object");
	refuse("{\"speedup\": 4", "not valid JSON");
	refuse("{\"speedup\": 4} trailing", "not valid JSON");
	refuse("", "not valid JSON");
	{
		char *big = malloc(LR_SPEC_MAX_BYTES + 10);

		memset(big, ' ', LR_SPEC_MAX_BYTES + 9);
		big[0] = '{';
		big[LR_SPEC_MAX_BYTES + 8] = '}';
		rc = lr_spec_parse(big, LR_SPEC_MAX_BYTES + 9, &s, &m);
		tap_ok(rc == LR_EINVAL && strstr(m.text, "longer than"), "an oversized spec is refused");
		free(big);
	}
	/* Not NUL-terminated: the parser stays inside the length. */
	rc = lr_spec_parse("{\"seed\": 5}garbage", 11, &s, &m);
	tap_ok(rc == 0 && s->opts.seed == 5, "length-bounded parse");
	lr_spec_free(s);
	return tap_done();
}
