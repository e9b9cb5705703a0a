/*
 * test_webhook.c - the pure parts of webhooks and idempotent submission
 * (api/webhook.c, notify_url in api/spec.c): the Standard Webhooks
 * published test vector, secret refusals, the address policy on a table
 * of v4/v6 addresses (including v4 hidden in v6), CIDR lists and their
 * matching, the Idempotency-Key header, notify_url checks.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "api/spec.h"
#include "api/webhook.h"
#include "tests/unit/tap.h"

/* The class of a textual address (NULL = public). */
static const char *cls(const char *text)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;

	memset(&s4, 0, sizeof(s4));
	memset(&s6, 0, sizeof(s6));
	if (inet_pton(AF_INET, text, &s4.sin_addr) == 1) {
		s4.sin_family = AF_INET;
		return lr_addr_class((struct sockaddr *)&s4);
	}
	if (inet_pton(AF_INET6, text, &s6.sin6_addr) == 1) {
		s6.sin6_family = AF_INET6;
		return lr_addr_class((struct sockaddr *)&s6);
	}
	return "parse error";
}

static int in_list(const lr_cidr *l, int n, const char *text)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;

	memset(&s4, 0, sizeof(s4));
	memset(&s6, 0, sizeof(s6));
	if (inet_pton(AF_INET, text, &s4.sin_addr) == 1) {
		s4.sin_family = AF_INET;
		return lr_cidr_list_match(l, n, (struct sockaddr *)&s4);
	}
	inet_pton(AF_INET6, text, &s6.sin6_addr);
	s6.sin6_family = AF_INET6;
	return lr_cidr_list_match(l, n, (struct sockaddr *)&s6);
}

int main(void)
{
	static const struct {
		const char *addr, *want; /* want NULL = public */
	} table[] = {
		{ "8.8.8.8", NULL }, { "1.1.1.1", NULL }, { "2606:4700:4700::1111", NULL },
		{ "127.0.0.1", "loopback" }, { "127.255.0.9", "loopback" }, { "::1", "loopback" },
		{ "10.1.2.3", "private" }, { "172.16.0.1", "private" }, { "172.31.255.255", "private" },
		{ "172.32.0.1", NULL }, { "192.168.1.1", "private" },
		{ "169.254.169.254", "link-local" }, { "fe80::1", "link-local" },
		{ "100.64.0.1", "cgnat" }, { "100.127.255.255", "cgnat" }, { "100.128.0.1", NULL },
		{ "0.0.0.0", "unspecified" }, { "::", "unspecified" },
		{ "224.0.0.1", "multicast" }, { "ff02::1", "multicast" },
		{ "255.255.255.255", "broadcast" }, { "240.0.0.1", "reserved" },
		{ "fd00:ec2::254", "unique-local" }, { "fc00::1", "unique-local" },
		{ "::ffff:127.0.0.1", "loopback" }, { "::ffff:169.254.169.254", "link-local" },
		{ "::ffff:8.8.8.8", NULL }, { "64:ff9b::10.0.0.1", "private" },
		{ "::127.0.0.1", "loopback" }, { "2002:7f00:1::", "loopback" },
		{ "2001:db8::1", "documentation" }, { "192.0.2.1", "documentation" },
		{ "198.18.0.1", "benchmarking" },
	};
	uint8_t key[LR_WEBHOOK_KEY_MAX];
	char sig[LR_WEBHOOK_SIG_MAX], k[300];
	lr_cidr l[LR_CIDR_MAX];
	size_t kl = 0;
	lr_msg m;
	int n = 0, rc;

	/* Standard Webhooks' published vector. */
	memset(&m, 0, sizeof(m));
	rc = lr_webhook_secret_parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", 39, key, &kl, &m);
	tap_ok(rc == 0 && kl == 24, "the spec's example secret parses to 24 bytes (%s)", m.text);
	lr_webhook_sign(key, kl, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
			"{\"test\": 2432232314}", 20, sig);
	tap_ok(strcmp(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") == 0,
	       "signature equals the Standard Webhooks test vector (%s)", sig);
	lr_webhook_sign(key, kl, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331,
			"{\"test\": 2432232314}", 20, sig);
	tap_ok(strcmp(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") != 0,
	       "another timestamp signs differently");
	rc = lr_webhook_secret_parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 32, key, &kl, &m);
	tap_ok(rc == LR_EINVAL && strstr(m.text, "whsec_"), "a secret without whsec_ is refused");
	memset(&m, 0, sizeof(m));
	rc = lr_webhook_secret_parse("whsec_c2hvcnQ=", 14, key, &kl, &m);
	tap_ok(rc == LR_EINVAL && strstr(m.text, "5 bytes"), "a 5-byte secret is refused (%s)", m.text);
	memset(&m, 0, sizeof(m));
	rc = lr_webhook_secret_parse("whsec_MfKQ9r8G*YqrTwjUPD8ILPZIo2LaLaSw", 38, key, &kl, &m);
	tap_ok(rc == LR_EINVAL && strstr(m.text, "offset 14") && !strstr(m.text, "MfKQ"),
	       "a bad base64 character is located, the secret not echoed (%s)", m.text);

	/* Address policy. */
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const char *got = cls(table[i].addr);

		tap_ok(table[i].want == NULL ? got == NULL
					     : got != NULL && strcmp(got, table[i].want) == 0,
		       "%s is %s (%s)", table[i].addr, table[i].want ? table[i].want : "public",
		       got ? got : "public");
	}

	/* CIDR lists. */
	memset(&m, 0, sizeof(m));
	rc = lr_cidr_list_parse(" 10.0.0.0/8 ,127.0.0.1, fd00::/8,::1", l, &n, &m);
	tap_ok(rc == 0 && n == 4 && l[0].prefix == 8 && l[1].prefix == 32 && l[2].prefix == 8 &&
		       l[3].prefix == 128,
	       "a list of 4 blocks parses (%s)", m.text);
	tap_ok(in_list(l, n, "10.200.1.1") && !in_list(l, n, "11.0.0.1") &&
		       in_list(l, n, "127.0.0.1") && !in_list(l, n, "127.0.0.2") &&
		       in_list(l, n, "fd12::1") && in_list(l, n, "::1") && !in_list(l, n, "fe80::1"),
	       "membership");
	tap_ok(in_list(l, n, "::ffff:10.9.9.9"), "a v4-mapped v6 address matches its v4 block");
	tap_ok(lr_cidr_list_parse("", l, &n, &m) == 0 && n == 0, "the empty list");
	memset(&m, 0, sizeof(m));
	tap_ok(lr_cidr_list_parse("10.0.0.0/8,", l, &n, &m) == LR_EINVAL && strstr(m.text, "item 2"),
	       "a trailing comma is refused (%s)", m.text);
	memset(&m, 0, sizeof(m));
	tap_ok(lr_cidr_list_parse("10.0.0.0/33", l, &n, &m) == LR_EINVAL, "prefix 33 refused");
	tap_ok(lr_cidr_list_parse("10.0.0.1/24", l, &n, &m) == LR_EINVAL, "host bits refused");
	tap_ok(lr_cidr_list_parse("example.com", l, &n, &m) == LR_EINVAL, "names refused");
	tap_ok(lr_cidr_list_parse("10.0.0.0/08", l, &n, &m) == LR_EINVAL, "a leading zero refused");
	tap_ok(lr_cidr_list_parse("0.0.0.0/0", l, &n, &m) == 0 && n == 1 && in_list(l, n, "10.0.0.1"),
	       "0.0.0.0/0 allows every v4 address");

	/* Idempotency-Key. */
	tap_ok(lr_idem_key_parse("\"abc-123\"", k, sizeof(k), &m) == 0 && strcmp(k, "abc-123") == 0,
	       "a quoted key");
	tap_ok(lr_idem_key_parse("\"a\\\"b\\\\c\"", k, sizeof(k), &m) == 0 && strcmp(k, "a\"b\\c") == 0,
	       "escapes in a quoted key");
	tap_ok(lr_idem_key_parse("8e03978e-40d5-43e8-bc93-6894a57f9324", k, sizeof(k), &m) == 0 &&
		       strcmp(k, "8e03978e-40d5-43e8-bc93-6894a57f9324") == 0,
	       "a bare key (as many clients send)");
	tap_ok(lr_idem_key_parse("\"abc", k, sizeof(k), &m) == LR_EINVAL, "unterminated refused");
	tap_ok(lr_idem_key_parse("\"\"", k, sizeof(k), &m) == LR_EINVAL, "empty refused");
	tap_ok(lr_idem_key_parse("\"a\\n\"", k, sizeof(k), &m) == LR_EINVAL, "bad escape refused");
	tap_ok(lr_idem_key_parse("a, b", k, sizeof(k), &m) == LR_EINVAL, "two keys refused");
	tap_ok(lr_idem_key_parse("\"a\";p=1", k, sizeof(k), &m) == LR_EINVAL, "parameters refused");
	{
		char big[300];

		memset(big, 'x', 256);
		big[256] = '\0';
		tap_ok(lr_idem_key_parse(big, k, sizeof(k), &m) == LR_EINVAL, "256 characters refused");
		big[255] = '\0';
		tap_ok(lr_idem_key_parse(big, k, sizeof(k), &m) == 0 && strlen(k) == 255,
		       "255 characters accepted");
	}

	/* notify_url. */
	{
		static const char *const good[] = { "https://hooks.example.com/x?y=1",
			"http://10.0.0.1:8080/", "HTTPS://EXAMPLE.COM", "http://[::1]:9/p" };
		static const char *const bad[] = { "ftp://example.com/", "file:///etc/passwd",
			"http://", "https://user:pw@example.com/", "http://example.com:0/",
			"http://example.com:65536/", "http://exa mple.com/", "http://[::1/",
			"gopher://x", "http://:80/", "//example.com" };

		for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
			memset(&m, 0, sizeof(m));
			tap_ok(lr_spec_notify_url_check(good[i], &m) == 0, "notify_url %s accepted (%s)",
			       good[i], m.text);
		}
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			memset(&m, 0, sizeof(m));
			tap_ok(lr_spec_notify_url_check(bad[i], &m) == LR_EINVAL &&
				       strncmp(m.text, "notify_url: ", 12) == 0,
			       "notify_url %s refused (%s)", bad[i], m.text);
		}
	}
	return tap_done();
}
