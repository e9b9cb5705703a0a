/*
 * webhook.h - the pure parts of webhooks and idempotent submission: the
 * Standard Webhooks secret and signature, the address policy that keeps
 * deliveries off internal networks (SSRF), the CIDR list of the
 * webhook_allow key, and the Idempotency-Key header. No I/O but
 * lr_webhook_secret_load(); no libcurl (daemon/hooks.c sends).
 */
#ifndef LR_WEBHOOK_H
#define LR_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "model/lr.h"

#define LR_WEBHOOK_KEY_MIN 24  /* secret bytes (Standard Webhooks) */
#define LR_WEBHOOK_KEY_MAX 64
#define LR_WEBHOOK_SIG_MAX 64  /* "v1," + base64 of 32 bytes + NUL */
#define LR_CIDR_MAX 64         /* entries in a webhook_allow list */

/*
 * Parses a secret in the "whsec_<base64>" form (surrounding white space,
 * e.g. a final newline, is ignored) into key[] (the decoded bytes) and
 * *keylen. Errors: LR_EINVAL with msg saying what is wrong (missing
 * prefix, bad base64, decoded length outside 24..64 bytes); the secret
 * itself is never copied into msg.
 */
int lr_webhook_secret_parse(const char *text, size_t len,
			    uint8_t key[LR_WEBHOOK_KEY_MAX], size_t *keylen,
			    lr_msg *msg);

/*
 * Reads the secret file `path` (at most 4 KiB): it must be a regular file
 * not writable by its group and not accessible by others (mode & 027 == 0),
 * like an SSH key, then lr_webhook_secret_parse(). Errors: -errno when it
 * cannot be opened, LR_EPERM-like LR_EINVAL for permissions or format;
 * msg names the file (prefix "webhook_secret_file: ").
 */
int lr_webhook_secret_load(const char *path, uint8_t key[LR_WEBHOOK_KEY_MAX],
			   size_t *keylen, lr_msg *msg);

/*
 * Writes the webhook-signature header value "v1,<base64 HMAC-SHA256 of
 * '{id}.{timestamp}.{body}'>" into out (NUL-terminated).
 */
void lr_webhook_sign(const uint8_t *key, size_t keylen, const char *id,
		     int64_t timestamp, const char *body, size_t bodylen,
		     char out[LR_WEBHOOK_SIG_MAX]);

/* One CIDR block: family AF_INET or AF_INET6, the address bytes (4 or
 * 16, v4 in the first 4) and the prefix length. */
typedef struct lr_cidr {
	int family;
	uint8_t addr[16];
	int prefix;
} lr_cidr;

/*
 * Parses a comma-separated list of CIDR blocks ("10.0.0.0/8, ::1/128";
 * an address without /N is a single host; blanks around items ignored;
 * the empty string is the empty list) into out[0..*n). Host bits set
 * below the prefix are refused (a typo, e.g. 10.1.2.3/8). Errors:
 * LR_EINVAL naming the item (by position and text, cut to 64 bytes).
 */
int lr_cidr_list_parse(const char *text, lr_cidr out[LR_CIDR_MAX], int *n,
		       lr_msg *msg);

/*
 * Classifies a resolved address: NULL when it is a public unicast
 * address, else a static name of why it is refused: "unspecified",
 * "loopback", "private", "link-local" (includes the 169.254.169.254 cloud
 * metadata service), "cgnat", "multicast", "broadcast", "reserved",
 * "documentation", "benchmarking", "unique-local", "site-local",
 * "discard", "ietf-protocol". IPv4-mapped (::ffff:a.b.c.d),
 * IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::/96) v6 addresses are
 * judged by the v4 address inside.
 */
const char *lr_addr_class(const struct sockaddr *sa);

/* 1 when `sa` lies in one of the n blocks (v4-mapped v6 also matches a
 * v4 block), else 0. */
int lr_cidr_list_match(const lr_cidr *list, int n, const struct sockaddr *sa);

/*
 * Parses an Idempotency-Key header value (draft-ietf-httpapi-idempotency-
 * key-header: a Structured Field sf-string, "..." with \" and \\
 * escapes; a bare token without quotes is accepted too, as many clients
 * send one) into out (NUL-terminated). The key is 1..255 bytes of
 * printable ASCII. Errors: LR_EINVAL with msg saying why.
 */
int lr_idem_key_parse(const char *value, char *out, size_t outlen, lr_msg *msg);

#endif /* LR_WEBHOOK_H */
