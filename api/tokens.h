/*
 * tokens.h - bearer tokens: which tenant a token belongs to.
 *
 * The tokens file holds one "TENANT SHA256-HEX-OF-TOKEN" per line; '#'
 * starts a comment line, blank lines are ignored. Only the hashes are
 * stored, so the file (and memory) never hold a usable token. A tenant may
 * have several tokens (rotation). Make a line with:
 *   printf '%s' "$TOKEN" | sha256sum   # then "TENANT <hex>"
 */
#ifndef LR_TOKENS_H
#define LR_TOKENS_H

#include <stddef.h>

#include "model/lr.h"

#define LR_TENANT_MAX 64      /* bytes in a tenant name: [A-Za-z0-9._-] */
#define LR_TOKENS_MAX 100000  /* lines with a token */

typedef struct lr_tokens lr_tokens;

/*
 * Parses `len` bytes of tokens-file text. `name` (may be NULL) prefixes
 * messages. On success *out is owned by the caller (lr_tokens_free).
 * Errors: LR_EINVAL with "NAME:LINE: ..." in msg (bad tenant name, a hash
 * that is not 64 hex digits, a hash listed twice, extra fields), LR_ENOMEM.
 */
int lr_tokens_parse(const char *text, size_t len, const char *name,
		    lr_tokens **out, lr_msg *msg);

/* Reads and parses the file at `path` (at most 16 MiB). Errors as
 * lr_tokens_parse, or a negative errno when it cannot be read. */
int lr_tokens_load(const char *path, lr_tokens **out, lr_msg *msg);

/* Number of tokens. */
int lr_tokens_count(const lr_tokens *t);

/*
 * Returns the tenant whose token is the `len` bytes at `token`, or NULL.
 * The SHA-256 of the token is compared with every stored hash in constant
 * time (the time depends only on the number of tokens). The string is
 * owned by `t`.
 */
const char *lr_tokens_check(const lr_tokens *t, const char *token, size_t len);

/* Frees; NULL is a no-op. */
void lr_tokens_free(lr_tokens *t);

#endif /* LR_TOKENS_H */
