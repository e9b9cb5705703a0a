/*
 * fuzz_webhook.c - fuzz target for the webhook and idempotency parsers of
 * untrusted or operator text: the first byte picks the parser (CIDR list
 * of webhook_allow, Idempotency-Key header, whsec_ secret, notify_url),
 * the rest is its input. Results must be consistent: a parsed list has
 * valid prefixes, a parsed key is 1..255 printable bytes, a secret 24..64
 * bytes.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "api/spec.h"
#include "api/webhook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lr_cidr l[LR_CIDR_MAX];
	uint8_t key[LR_WEBHOOK_KEY_MAX];
	char out[300], *v;
	size_t kl;
	int n;

	if (size < 1)
		return 0;
	v = malloc(size);
	if (v == NULL)
		return 0;
	memcpy(v, data + 1, size - 1);
	v[size - 1] = '\0';
	switch (data[0] % 4) {
	case 0:
		if (lr_cidr_list_parse(v, l, &n, NULL) == 0) {
			if (n < 0 || n > LR_CIDR_MAX)
				abort();
			for (int i = 0; i < n; i++)
				if (l[i].prefix < 0 || l[i].prefix > (l[i].family == AF_INET ? 32 : 128))
					abort();
		}
		break;
	case 1:
		if (lr_idem_key_parse(v, out, sizeof(out), NULL) == 0) {
			size_t len = strlen(out);

			if (len == 0 || len > 255)
				abort();
			for (size_t i = 0; i < len; i++)
				if (out[i] < 0x20 || out[i] > 0x7e)
					abort();
		}
		break;
	case 2:
		if (lr_webhook_secret_parse(v, size - 1, key, &kl, NULL) == 0 &&
		    (kl < LR_WEBHOOK_KEY_MIN || kl > LR_WEBHOOK_KEY_MAX))
			abort();
		break;
	default:
		(void)lr_spec_notify_url_check(v, NULL);
		break;
	}
	free(v);
	return 0;
}
