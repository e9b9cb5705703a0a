/*
 * test_spec_decomp.c - the job spec's "decomposition" member:
 * "spatial-channel" (the default, as in lr_compress_opts_init()) or "channel"
 * parses into the solver options, anything else is refused naming the
 * member, and the canonical form carries it back; the CLI/solver name
 * functions agree with the parser.
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

static void refuse(const char *text)
{
	lr_spec *s;
	lr_msg m;
	int rc = parse(text, &s, &m);

	tap_ok(rc == LR_EINVAL && s == NULL && strstr(m.text, "decomposition:") != NULL &&
		       strstr(m.text, "spatial-channel") != NULL,
	       "%s refused naming the member and the choices (%s)", text, m.text);
}

int main(void)
{
	lr_compress_opts d;
	lr_decomposition dec = LR_DECOMP_CHANNEL;
	lr_spec *s = NULL, *s2 = NULL;
	lr_msg m;
	cJSON *j;
	char *txt;
	int rc;

	lr_compress_opts_init(&d);
	tap_ok(d.decomposition == LR_DECOMP_SPATIAL_CHANNEL, "the solver's default is spatial-channel");
	rc = parse("{\"speedup\": 2}", &s, &m);
	tap_ok(rc == 0 && s->opts.decomposition == LR_DECOMP_SPATIAL_CHANNEL,
	       "an absent decomposition keeps the default");
	lr_spec_free(s);
	rc = parse("{\"speedup\": 5, \"decomposition\": \"channel\"}", &s, &m);
	tap_ok(rc == 0 && s->opts.decomposition == LR_DECOMP_CHANNEL,
	       "decomposition channel parses (%s)", m.text);
	j = rc == 0 ? lr_spec_to_json(s) : NULL;
	txt = j ? cJSON_PrintUnformatted(j) : NULL;
	rc = txt ? parse(txt, &s2, &m) : -1;
	tap_ok(rc == 0 && s2->opts.decomposition == LR_DECOMP_CHANNEL &&
		       strstr(txt, "\"decomposition\":\"channel\"") != NULL,
	       "the canonical form carries it and parses back: %s", txt ? txt : "(null)");
	free(txt);
	cJSON_Delete(j);
	lr_spec_free(s);
	lr_spec_free(s2);
	rc = parse("{\"decomposition\": \"spatial-channel\"}", &s, &m);
	tap_ok(rc == 0 && s->opts.decomposition == LR_DECOMP_SPATIAL_CHANNEL,
	       "decomposition spatial-channel parses");
	lr_spec_free(s);
	refuse("{\"decomposition\": \"3d\"}");
	refuse("{\"decomposition\": 1}");
	tap_ok(lr_decomposition_parse("spatial-channel", &dec) == 0 && dec == LR_DECOMP_SPATIAL_CHANNEL &&
		       strcmp(lr_decomposition_name(dec), "spatial-channel") == 0 &&
		       strcmp(lr_decomposition_name(LR_DECOMP_CHANNEL), "channel") == 0 &&
		       lr_decomposition_parse("Channel", &dec) == LR_EINVAL,
	       "names and parser agree; parsing is case-sensitive");
	return tap_done();
}
