/*
 * fuzz_spec.c - fuzz target for the job spec parser. Any input must either
 * parse into options that survive a print/parse round trip unchanged, or
 * be refused with a message; never crash, leak or read past the buffer.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lr_spec *s = NULL, *s2 = NULL;
	lr_msg msg;
	cJSON *j;
	char *text;
	int rc;

	memset(&msg, 0, sizeof(msg));
	rc = lr_spec_parse((const char *)data, size, &s, &msg);
	if (rc != 0) {
		if (s != NULL || msg.text[0] == '\0')
			abort();
		return 0;
	}
	j = lr_spec_to_json(s);
	text = j ? cJSON_PrintUnformatted(j) : NULL;
	if (text == NULL || lr_spec_parse(text, strlen(text), &s2, &msg) != 0)
		abort();
	if (s2->opts.speedup != s->opts.speedup || s2->opts.method != s->opts.method ||
	    s2->opts.nranks != s->opts.nranks || s2->opts.nexclude != s->opts.nexclude ||
	    s2->opts.seed != s->opts.seed || s2->opts.holdout != s->opts.holdout ||
	    s2->opts.samples_per_input != s->opts.samples_per_input)
		abort();
	for (int i = 0; i < s->opts.nranks; i++)
		if (strcmp(s->ranks[i].layer, s2->ranks[i].layer) != 0 ||
		    s->ranks[i].rank != s2->ranks[i].rank)
			abort();
	free(text);
	cJSON_Delete(j);
	lr_spec_free(s2);
	lr_spec_free(s);
	return 0;
}
