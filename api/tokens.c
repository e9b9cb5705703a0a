/*
 * tokens.c - the tokens file and constant-time token checks.
 *
 * DESIGN. Each line becomes (tenant, 32-byte hash). A check hashes the
 * presented token once with SHA-256 (nettle) and then visits every entry,
 * OR-ing the XOR of the bytes into a difference and selecting the match
 * with masks instead of branches, so neither an early exit nor the
 * position of the matching entry shows in the timing. Comparing hashes
 * rather than tokens also hides the token's length.
 */
#include "config.h"

#include "api/tokens.h"

#include <errno.h>
#include <nettle/sha2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tok_entry {
	uint8_t hash[SHA256_DIGEST_SIZE]; /* sha256(token) */
	char tenant[LR_TENANT_MAX + 1];   /* NUL-terminated */
} tok_entry;

struct lr_tokens {
	tok_entry *e; /* n entries */
	int n;
};

void lr_tokens_free(lr_tokens *t)
{
	if (t == NULL)
		return;
	free(t->e);
	free(t);
}

int lr_tokens_count(const lr_tokens *t)
{
	return t ? t->n : 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int tenant_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int lr_tokens_parse(const char *text, size_t len, const char *name,
		    lr_tokens **out, lr_msg *msg)
{
	lr_tokens *t = calloc(1, sizeof(*t));
	size_t pos = 0, cap = 0;
	int line = 0, rc = 0;

	*out = NULL;
	if (name == NULL)
		name = "tokens";
	if (t == NULL)
		return LR_ENOMEM;
	while (pos < len) {
		const char *l = text + pos, *nl = memchr(l, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - l) : len - pos, i = 0, tl;
		tok_entry ent;

		pos += ll + (nl != NULL);
		line++;
		if (ll > 0 && l[ll - 1] == '\r')
			ll--;
		while (i < ll && (l[i] == ' ' || l[i] == '\t'))
			i++;
		if (i == ll || l[i] == '#')
			continue;
		memset(&ent, 0, sizeof(ent));
		for (tl = 0; i < ll && tenant_char((unsigned char)l[i]); i++, tl++) {
			if (tl >= LR_TENANT_MAX)
				break;
			ent.tenant[tl] = l[i];
		}
		if (tl == 0 || tl >= LR_TENANT_MAX || i == ll || (l[i] != ' ' && l[i] != '\t')) {
			rc = lr_fail(msg, LR_EINVAL,
				     "%s:%d: expected 'TENANT SHA256-HEX' with TENANT of 1-%d characters [A-Za-z0-9._-]",
				     name, line, LR_TENANT_MAX - 1);
			goto fail;
		}
		while (i < ll && (l[i] == ' ' || l[i] == '\t'))
			i++;
		for (int k = 0; k < SHA256_DIGEST_SIZE; k++) {
			int hi = i + 1 < ll ? hexval((unsigned char)l[i]) : -1;
			int lo = i + 1 < ll ? hexval((unsigned char)l[i + 1]) : -1;

			if (hi < 0 || lo < 0) {
				rc = lr_fail(msg, LR_EINVAL,
					     "%s:%d: the hash must be 64 hex digits (sha256 of the token)",
					     name, line);
				goto fail;
			}
			ent.hash[k] = (uint8_t)(hi << 4 | lo);
			i += 2;
		}
		while (i < ll && (l[i] == ' ' || l[i] == '\t'))
			i++;
		if (i != ll) {
			rc = lr_fail(msg, LR_EINVAL, "%s:%d: unexpected text after the hash",
				     name, line);
			goto fail;
		}
		for (int k = 0; k < t->n; k++)
			if (memcmp(t->e[k].hash, ent.hash, sizeof(ent.hash)) == 0) {
				rc = lr_fail(msg, LR_EINVAL, "%s:%d: this token hash is listed twice",
					     name, line);
				goto fail;
			}
		if ((size_t)t->n == cap) {
			tok_entry *g;

			if (t->n >= LR_TOKENS_MAX) {
				rc = lr_fail(msg, LR_ELIMIT, "%s: more than %d tokens", name,
					     LR_TOKENS_MAX);
				goto fail;
			}
			cap = cap ? 2 * cap : 8;
			g = realloc(t->e, cap * sizeof(*g));
			if (g == NULL) {
				rc = LR_ENOMEM;
				goto fail;
			}
			t->e = g;
		}
		t->e[t->n++] = ent;
	}
	*out = t;
	return 0;
fail:
	lr_tokens_free(t);
	return rc;
}

int lr_tokens_load(const char *path, lr_tokens **out, lr_msg *msg)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	if (f == NULL)
		return lr_fail(msg, -errno, "tokens_file: cannot open %s: %s", path,
			       strerror(errno));
	buf = malloc(16 << 20);
	if (buf == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	n = fread(buf, 1, 16 << 20, f);
	if (ferror(f) || !feof(f)) {
		rc = lr_fail(msg, LR_EIO, "tokens_file: cannot read %s (or larger than 16 MiB)", path);
		goto out;
	}
	rc = lr_tokens_parse(buf, n, path, out, msg);
out:
	free(buf);
	fclose(f);
	return rc;
}

const char *lr_tokens_check(const lr_tokens *t, const char *token, size_t len)
{
	struct sha256_ctx ctx;
	uint8_t h[SHA256_DIGEST_SIZE];
	uintptr_t found = 0;

	if (t == NULL || token == NULL)
		return NULL;
	sha256_init(&ctx);
	sha256_update(&ctx, len, (const uint8_t *)token);
	sha256_digest(&ctx, sizeof(h), h);
	for (int k = 0; k < t->n; k++) {
		unsigned diff = 0;
		uintptr_t mask;

		for (int b = 0; b < SHA256_DIGEST_SIZE; b++)
			diff |= (unsigned)(t->e[k].hash[b] ^ h[b]);
		/* mask = all ones when diff == 0, else 0, without a branch. */
		mask = (uintptr_t)0 - (uintptr_t)(((diff | (0u - diff)) >> 31) ^ 1u);
		found |= mask & (uintptr_t)t->e[k].tenant;
	}
	return (const char *)found;
}
