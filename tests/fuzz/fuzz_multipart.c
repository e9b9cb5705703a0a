/*
 * fuzz_multipart.c - fuzz target for the streaming multipart/form-data
 * parser. The input is "Content-Type value\n" then the body. The body is
 * fed twice, whole and then in chunks whose sizes come from the body's own
 * bytes; both runs must agree on the outcome, the parts and their bytes
 * (a hash of every callback), so chunk boundaries never change a result.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct run_state {
	uint64_t h;       /* FNV-1a of every callback and byte */
	int open;         /* inside a part */
	size_t bytes;     /* data bytes seen */
} run_state;

static void mix(run_state *s, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		s->h = (s->h ^ b[i]) * 1099511628211ull;
}

static int on_begin(void *ud, const char *name, const char *filename, const char *ct)
{
	run_state *s = ud;

	if (s->open || name == NULL || name[0] == '\0')
		abort();
	s->open = 1;
	mix(s, "B", 1);
	mix(s, name, strlen(name) + 1);
	if (filename)
		mix(s, filename, strlen(filename) + 1);
	if (ct)
		mix(s, ct, strlen(ct) + 1);
	return 0;
}

static int on_data(void *ud, const char *d, size_t n)
{
	run_state *s = ud;

	if (!s->open || n == 0)
		abort();
	s->bytes += n;
	mix(s, d, n);
	return 0;
}

static int on_end(void *ud)
{
	run_state *s = ud;

	if (!s->open)
		abort();
	s->open = 0;
	mix(s, "E", 1);
	return 0;
}

static int run(const char *ct, const uint8_t *body, size_t n, int chunked, run_state *s)
{
	static const lr_mp_callbacks cb = { on_begin, on_data, on_end };
	lr_mp_limits lim = { 4, 512 };
	lr_mp *p = NULL;
	lr_msg msg;
	size_t off = 0;
	int rc;

	memset(&msg, 0, sizeof(msg));
	memset(s, 0, sizeof(*s));
	s->h = 1469598103934665603ull;
	rc = lr_mp_new(ct, &lim, &cb, s, &p, &msg);
	if (rc != 0)
		return rc;
	while (rc == 0 && off < n) {
		size_t c = chunked ? (size_t)(body[off] % 7) + 1 : n - off;

		if (c > n - off)
			c = n - off;
		rc = lr_mp_feed(p, (const char *)body + off, c, &msg);
		off += c;
	}
	if (rc == 0)
		rc = lr_mp_finish(p, &msg);
	if (rc != 0 && msg.text[0] == '\0')
		abort();
	lr_mp_free(p);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	run_state a, b;
	char ct[256];
	size_t cl;
	int ra, rb;

	if (nl == NULL || (cl = (size_t)(nl - data)) >= sizeof(ct))
		return 0;
	memcpy(ct, data, cl);
	ct[cl] = '\0';
	ra = run(ct, nl + 1, size - cl - 1, 0, &a);
	rb = run(ct, nl + 1, size - cl - 1, 1, &b);
	if (ra != rb || (ra == 0 && (a.h != b.h || a.bytes != b.bytes)))
		abort();
	if (ra == 0 && a.bytes > size)
		abort();
	return 0;
}
