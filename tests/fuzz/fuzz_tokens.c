/*
 * fuzz_tokens.c - fuzz target for the tokens file parser. Any input must
 * parse into a table whose every lookup is consistent, or be refused with
 * a message naming the line; never crash, leak or read past the buffer.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/tokens.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lr_tokens *t = NULL;
	lr_msg msg;
	const char *who;
	int rc;

	memset(&msg, 0, sizeof(msg));
	rc = lr_tokens_parse((const char *)data, size, "fuzz", &t, &msg);
	if (rc != 0) {
		if (t != NULL || strncmp(msg.text, "fuzz", 4) != 0)
			abort();
		return 0;
	}
	/* The input itself as a token: a hit must name a listed tenant. */
	who = lr_tokens_check(t, (const char *)data, size);
	if (who != NULL && (who[0] == '\0' || strlen(who) >= LR_TENANT_MAX))
		abort();
	lr_tokens_free(t);
	return 0;
}
