/*
 * webhook.c - Standard Webhooks signatures, the delivery address policy,
 * CIDR lists and the Idempotency-Key header.
 *
 * DESIGN. Everything here is a pure function of its input so it can be
 * unit-tested and fuzzed without a network. The signature follows the
 * Standard Webhooks spec: the key is the base64-decoded part of the
 * "whsec_" secret, the signed content is "{webhook-id}.{webhook-timestamp}.
 * {body}", and the header value is "v1," plus the standard base64 of the
 * HMAC-SHA256. Nettle (already linked for SHA-256 and base64) computes the
 * HMAC. The address policy is a deny list of special-purpose ranges
 * (IANA IPv4/IPv6 special-purpose registries), applied to the address
 * the delivery will connect to after DNS, with v4 addresses carried in v6
 * forms (mapped, compatible, NAT64) judged as v4, so "::ffff:127.0.0.1"
 * cannot sneak past. The allow list (webhook_allow) overrides it.
 */
#include "config.h"

#include "api/webhook.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <nettle/base64.h>
#include <nettle/hmac.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- secret and signature ------------------------------------------- */

int lr_webhook_secret_parse(const char *text, size_t len,
			    uint8_t key[LR_WEBHOOK_KEY_MAX], size_t *keylen,
			    lr_msg *msg)
{
	struct base64_decode_ctx ctx;
	uint8_t buf[BASE64_DECODE_LENGTH(256)];
	size_t n = sizeof(buf);

	*keylen = 0;
	while (len > 0 && (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')) {
		text++;
		len--;
	}
	while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t' ||
			   text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	if (len < 6 || memcmp(text, "whsec_", 6) != 0)
		return lr_fail(msg, LR_EINVAL,
			       "the secret must have the form whsec_<base64> (Standard Webhooks)");
	text += 6;
	len -= 6;
	if (len == 0 || len > 256)
		return lr_fail(msg, LR_EINVAL,
			       "the base64 part of the secret must be 1 to 256 characters");
	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '='))
			return lr_fail(msg, LR_EINVAL,
				       "the secret's base64 part has a character outside A-Z a-z 0-9 + / = at offset %zu",
				       i + 6);
	}
	base64_decode_init(&ctx);
	if (!base64_decode_update(&ctx, &n, buf, len, text) || !base64_decode_final(&ctx))
		return lr_fail(msg, LR_EINVAL, "the secret's base64 part does not decode");
	if (n < LR_WEBHOOK_KEY_MIN || n > LR_WEBHOOK_KEY_MAX)
		return lr_fail(msg, LR_EINVAL,
			       "the secret decodes to %zu bytes; Standard Webhooks needs %d to %d",
			       n, LR_WEBHOOK_KEY_MIN, LR_WEBHOOK_KEY_MAX);
	memcpy(key, buf, n);
	*keylen = n;
	memset(buf, 0, sizeof(buf));
	return 0;
}

int lr_webhook_secret_load(const char *path, uint8_t key[LR_WEBHOOK_KEY_MAX],
			   size_t *keylen, lr_msg *msg)
{
	char buf[4097];
	struct stat sb;
	ssize_t n;
	int fd, rc;

	*keylen = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return lr_fail(msg, -errno, "webhook_secret_file: cannot open %s: %s", path,
			       strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		rc = lr_fail(msg, LR_EINVAL, "webhook_secret_file: %s is not a regular file", path);
		goto out;
	}
	if ((sb.st_mode & 027) != 0) {
		rc = lr_fail(msg, LR_EINVAL,
			     "webhook_secret_file: %s has mode %03o; it must not be writable by its group nor readable by others (chmod 600 or 640)",
			     path, (unsigned)(sb.st_mode & 0777));
		goto out;
	}
	n = read(fd, buf, sizeof(buf));
	if (n < 0 || n == (ssize_t)sizeof(buf)) {
		rc = lr_fail(msg, n < 0 ? -errno : LR_EINVAL,
			     "webhook_secret_file: cannot read %s (or larger than 4 KiB)", path);
		goto out;
	}
	rc = lr_webhook_secret_parse(buf, (size_t)n, key, keylen, msg);
	if (rc != 0)
		lr_msg_prefix(msg, "webhook_secret_file: %s", path);
out:
	memset(buf, 0, sizeof(buf));
	close(fd);
	return rc;
}

void lr_webhook_sign(const uint8_t *key, size_t keylen, const char *id,
		     int64_t timestamp, const char *body, size_t bodylen,
		     char out[LR_WEBHOOK_SIG_MAX])
{
	struct hmac_sha256_ctx ctx;
	uint8_t mac[SHA256_DIGEST_SIZE];
	char ts[24];

	snprintf(ts, sizeof(ts), "%lld", (long long)timestamp);
	hmac_sha256_set_key(&ctx, keylen, key);
	hmac_sha256_update(&ctx, strlen(id), (const uint8_t *)id);
	hmac_sha256_update(&ctx, 1, (const uint8_t *)".");
	hmac_sha256_update(&ctx, strlen(ts), (const uint8_t *)ts);
	hmac_sha256_update(&ctx, 1, (const uint8_t *)".");
	hmac_sha256_update(&ctx, bodylen, (const uint8_t *)body);
	hmac_sha256_digest(&ctx, sizeof(mac), mac);
	memcpy(out, "v1,", 3);
	base64_encode_raw(out + 3, sizeof(mac), mac);
	out[3 + BASE64_ENCODE_RAW_LENGTH(sizeof(mac))] = '\0';
}

/* ---- address policy -------------------------------------------------- */

/* 1 when the first `bits` bits of a and b agree. */
static int prefix_eq(const uint8_t *a, const uint8_t *b, int bits)
{
	int full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[full] ^ b[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

static const char *v4_class(const uint8_t a[4])
{
	static const struct {
		uint8_t net[4];
		int prefix;
		const char *name;
	} deny[] = {
		{ { 0, 0, 0, 0 }, 8, "unspecified" },
		{ { 10, 0, 0, 0 }, 8, "private" },
		{ { 100, 64, 0, 0 }, 10, "cgnat" },
		{ { 127, 0, 0, 0 }, 8, "loopback" },
		{ { 169, 254, 0, 0 }, 16, "link-local" },
		{ { 172, 16, 0, 0 }, 12, "private" },
		{ { 192, 0, 0, 0 }, 24, "ietf-protocol" },
		{ { 192, 0, 2, 0 }, 24, "documentation" },
		{ { 192, 88, 99, 0 }, 24, "reserved" },
		{ { 192, 168, 0, 0 }, 16, "private" },
		{ { 198, 18, 0, 0 }, 15, "benchmarking" },
		{ { 198, 51, 100, 0 }, 24, "documentation" },
		{ { 203, 0, 113, 0 }, 24, "documentation" },
		{ { 224, 0, 0, 0 }, 4, "multicast" },
		{ { 255, 255, 255, 255 }, 32, "broadcast" },
		{ { 240, 0, 0, 0 }, 4, "reserved" },
	};

	for (size_t i = 0; i < sizeof(deny) / sizeof(deny[0]); i++)
		if (prefix_eq(a, deny[i].net, deny[i].prefix))
			return deny[i].name;
	return NULL;
}

/* When the v6 address carries a v4 one (mapped, compatible, NAT64),
 * copies it to v4 and returns 1. */
static int v6_embedded_v4(const uint8_t a[16], uint8_t v4[4])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t compat[12] = { 0 };
	static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b };

	if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0 ||
	    (memcmp(a, compat, 12) == 0 && (a[12] | a[13]) != 0)) {
		memcpy(v4, a + 12, 4);
		return 1;
	}
	return 0;
}

static const char *v6_class(const uint8_t a[16])
{
	static const struct {
		uint8_t net[16];
		int prefix;
		const char *name;
	} deny[] = {
		{ { 0 }, 128, "unspecified" },
		{ { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }, 128, "loopback" },
		{ { 0xfe, 0x80 }, 10, "link-local" },
		{ { 0xfe, 0xc0 }, 10, "site-local" },
		{ { 0xfc }, 7, "unique-local" },
		{ { 0xff }, 8, "multicast" },
		{ { 0x01 }, 64, "discard" },
		{ { 0x20, 0x01, 0x0d, 0xb8 }, 32, "documentation" },
		{ { 0x20, 0x01, 0x00, 0x00 }, 23, "ietf-protocol" },
		{ { 0 }, 96, "reserved" }, /* ::/96 left after compat v4 */
	};
	uint8_t v4[4];

	if (v6_embedded_v4(a, v4))
		return v4_class(v4);
	for (size_t i = 0; i < sizeof(deny) / sizeof(deny[0]); i++)
		if (prefix_eq(a, deny[i].net, deny[i].prefix))
			return deny[i].name;
	/* 6to4 (2002::/16) embeds a v4 address in bits 16..47. */
	if (a[0] == 0x20 && a[1] == 0x02)
		return v4_class(a + 2);
	return NULL;
}

const char *lr_addr_class(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		return v4_class((const uint8_t *)&s4->sin_addr);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		return v6_class(s6->sin6_addr.s6_addr);
	}
	return "unsupported-family";
}

int lr_cidr_list_match(const lr_cidr *list, int n, const struct sockaddr *sa)
{
	uint8_t a[16], v4[4];
	int fam = sa->sa_family, has_v4 = 0;

	if (fam == AF_INET) {
		memcpy(v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		has_v4 = 1;
	} else if (fam == AF_INET6) {
		memcpy(a, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, 16);
		has_v4 = v6_embedded_v4(a, v4);
	} else {
		return 0;
	}
	for (int i = 0; i < n; i++) {
		if (list[i].family == AF_INET && has_v4 &&
		    prefix_eq(v4, list[i].addr, list[i].prefix))
			return 1;
		if (list[i].family == AF_INET6 && fam == AF_INET6 &&
		    prefix_eq(a, list[i].addr, list[i].prefix))
			return 1;
	}
	return 0;
}

/* Parses one item [start, end) into *c. */
static int cidr_parse_one(const char *s, size_t len, lr_cidr *c)
{
	char buf[64];
	const char *slash;
	int maxp, prefix;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	slash = strchr(buf, '/');
	if (slash != NULL)
		buf[slash - buf] = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, buf, c->addr) == 1) {
		c->family = AF_INET;
		maxp = 32;
	} else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		c->family = AF_INET6;
		maxp = 128;
	} else {
		return -1;
	}
	prefix = maxp;
	if (slash != NULL) {
		const char *p = slash + 1;

		if (*p == '\0' || strlen(p) > 3)
			return -1;
		prefix = 0;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			prefix = prefix * 10 + (*p - '0');
		}
		if (prefix > maxp || (slash[1] == '0' && slash[2] != '\0'))
			return -1;
	}
	c->prefix = prefix;
	/* Host bits must be zero. */
	for (int b = prefix; b < maxp; b++)
		if (c->addr[b / 8] & (0x80 >> (b % 8)))
			return -2;
	return 0;
}

int lr_cidr_list_parse(const char *text, lr_cidr out[LR_CIDR_MAX], int *n,
		       lr_msg *msg)
{
	const char *p = text;
	int k = 0, item = 0;

	*n = 0;
	while (*p) {
		const char *e = strchr(p, ','), *s = p, *t;
		size_t len;
		int rc;

		if (e == NULL)
			e = p + strlen(p);
		t = e;
		while (s < t && (*s == ' ' || *s == '\t'))
			s++;
		while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		len = (size_t)(t - s);
		item++;
		if (len == 0) {
			if (*e == '\0' && item > 1)
				return lr_fail(msg, LR_EINVAL, "item %d is empty (a trailing comma)", item);
			return lr_fail(msg, LR_EINVAL, "item %d is empty", item);
		}
		if (k == LR_CIDR_MAX)
			return lr_fail(msg, LR_EINVAL, "more than %d CIDR blocks", LR_CIDR_MAX);
		rc = cidr_parse_one(s, len, &out[k]);
		if (rc == -2)
			return lr_fail(msg, LR_EINVAL,
				       "item %d '%.64s': address has bits set below the prefix length",
				       item, s);
		if (rc != 0)
			return lr_fail(msg, LR_EINVAL,
				       "item %d '%.*s': not an IPv4 or IPv6 address or CIDR block (e.g. 10.0.0.0/8, fd00::/8)",
				       item, (int)(len > 64 ? 64 : len), s);
		k++;
		p = *e ? e + 1 : e;
		if (*e == ',' && *p == '\0')
			return lr_fail(msg, LR_EINVAL, "item %d is empty (a trailing comma)", item + 1);
	}
	*n = k;
	return 0;
}

/* ---- Idempotency-Key ------------------------------------------------- */

int lr_idem_key_parse(const char *value, char *out, size_t outlen, lr_msg *msg)
{
	const char *p = value;
	size_t o = 0;

	if (outlen == 0)
		return LR_EINVAL;
	out[0] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '"') {
		p++;
		for (;;) {
			char c = *p++;

			if (c == '\0')
				return lr_fail(msg, LR_EINVAL,
					       "Idempotency-Key: the quoted string is not closed");
			if (c == '"')
				break;
			if (c == '\\') {
				c = *p++;
				if (c != '"' && c != '\\')
					return lr_fail(msg, LR_EINVAL,
						       "Idempotency-Key: only \\\" and \\\\ may be escaped");
			}
			if (c < 0x20 || c > 0x7e)
				return lr_fail(msg, LR_EINVAL,
					       "Idempotency-Key: only printable ASCII is allowed");
			if (o + 1 >= outlen || o >= 255)
				return lr_fail(msg, LR_EINVAL,
					       "Idempotency-Key: longer than 255 characters");
			out[o++] = c;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '\0')
			return lr_fail(msg, LR_EINVAL,
				       "Idempotency-Key: text after the quoted string (parameters are not supported)");
	} else {
		for (; *p && *p != ' ' && *p != '\t'; p++) {
			if (*p < 0x21 || *p > 0x7e || *p == '"' || *p == '\\' || *p == ',' || *p == ';')
				return lr_fail(msg, LR_EINVAL,
					       "Idempotency-Key: must be a quoted string (\"...\") or a token of printable ASCII without , ; \" \\");
			if (o + 1 >= outlen || o >= 255)
				return lr_fail(msg, LR_EINVAL,
					       "Idempotency-Key: longer than 255 characters");
			out[o++] = *p;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '\0')
			return lr_fail(msg, LR_EINVAL, "Idempotency-Key: one key only");
	}
	out[o] = '\0';
	if (o == 0)
		return lr_fail(msg, LR_EINVAL, "Idempotency-Key: empty");
	return 0;
}
