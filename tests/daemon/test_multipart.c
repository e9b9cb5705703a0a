/* test_multipart.c - the streaming multipart/form-data parser: a curl-like
 * body fed whole and one byte at a time gives the same parts; refusals
 * name the problem. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "api/multipart.h"
#include "tests/unit/tap.h"

typedef struct rec {
	char log[4096]; /* "name|filename|ctype=data;" per part */
	size_t n;
} rec;

static void put(rec *r, const char *s, size_t n)
{
	if (r->n + n < sizeof(r->log)) {
		memcpy(r->log + r->n, s, n);
		r->n += n;
		r->log[r->n] = '\0';
	}
}

static int on_begin(void *ud, const char *name, const char *fn, const char *ct)
{
	rec *r = ud;

	put(r, name, strlen(name));
	put(r, "|", 1);
	if (fn)
		put(r, fn, strlen(fn));
	put(r, "|", 1);
	if (ct)
		put(r, ct, strlen(ct));
	put(r, "=", 1);
	return 0;
}

static int on_data(void *ud, const char *d, size_t n)
{
	put(ud, d, n);
	return 0;
}

static int on_end(void *ud)
{
	put(ud, ";", 1);
	return 0;
}

static int refuse_calib(void *ud, const char *name, const char *fn, const char *ct)
{
	return strcmp(name, "calibration") == 0 ? LR_ELIMIT : on_begin(ud, name, fn, ct);
}

static int parse(const char *ct, const char *body, size_t len, size_t chunk,
		 rec *r, lr_msg *m, int refuse)
{
	lr_mp_callbacks cb = { refuse ? refuse_calib : on_begin, on_data, on_end };
	lr_mp *p = NULL;
	int rc;

	memset(r, 0, sizeof(*r));
	memset(m, 0, sizeof(*m));
	rc = lr_mp_new(ct, NULL, &cb, r, &p, m);
	for (size_t off = 0; rc == 0 && off < len; off += chunk)
		rc = lr_mp_feed(p, body + off, off + chunk > len ? len - off : chunk, m);
	if (rc == 0)
		rc = lr_mp_finish(p, m);
	lr_mp_free(p);
	return rc;
}

static const char ct[] = "multipart/form-data; boundary=------------------------abc123";
static const char body[] =
	"--------------------------abc123\r\n"
	"Content-Disposition: form-data; name=\"model\"; filename=\"m.onnx\"\r\n"
	"Content-Type: application/octet-stream\r\n\r\n"
	"\x08\x07\r\n--------------------------abc12\r\n\r\r\n"
	"\r\n--------------------------abc123\r\n"
	"Content-Disposition: form-data; name=\"spec\"\r\n\r\n"
	"{\"speedup\":4}\r\n"
	"--------------------------abc123--\r\n";
static const char want[] =
	"model|m.onnx|application/octet-stream=\x08\x07\r\n--------------------------abc12\r\n\r\r\n;"
	"spec||={\"speedup\":4};";

int main(void)
{
	rec r;
	lr_msg m;
	int rc;

	for (size_t chunk = 1; chunk <= sizeof(body); chunk = chunk < 8 ? chunk + 1 : chunk * 3) {
		rc = parse(ct, body, sizeof(body) - 1, chunk, &r, &m, 0);
		tap_ok(rc == 0 && strcmp(r.log, want) == 0, "chunks of %zu: parts and bytes exact (%s)",
		       chunk, m.text);
	}
	rc = parse("multipart/form-data", body, sizeof(body) - 1, 100, &r, &m, 0);
	tap_ok(rc == LR_EINVAL && strstr(m.text, "boundary"), "no boundary parameter (%s)", m.text);
	rc = parse("application/json", body, sizeof(body) - 1, 100, &r, &m, 0);
	tap_ok(rc == LR_EINVAL && strstr(m.text, "multipart/form-data"), "wrong media type (%s)", m.text);
	rc = parse(ct, body, sizeof(body) - 20, 7, &r, &m, 0);
	tap_ok(rc == LR_EINVAL && strstr(m.text, "ends before"), "truncated body (%s)", m.text);
	rc = parse("multipart/form-data; boundary=zzz", body, sizeof(body) - 1, 64, &r, &m, 0);
	tap_ok(rc == LR_EINVAL && strstr(m.text, "no part"), "wrong boundary (%s)", m.text);
	rc = parse(ct, body, sizeof(body) - 1, 5, &r, &m, 1);
	tap_ok(rc == 0, "refusing no part passes");
	{
		char b2[sizeof(body) + 64];
		const char *at = strstr(body, "name=\"spec\"");

		snprintf(b2, sizeof(b2), "%.*sname=\"calibration\"%s", (int)(at - body), body,
			 at + strlen("name=\"spec\""));
		rc = parse(ct, b2, strlen(b2), 5, &r, &m, 1);
		tap_ok(rc == LR_ELIMIT, "a callback's refusal stops the parse with its code");
	}
	{
		char big[12000];
		int n = snprintf(big, sizeof(big), "--b\r\nContent-Disposition: form-data; name=\"a\"\r\nX: ");

		memset(big + n, 'x', 6000);
		memcpy(big + n + 6000, "\r\n\r\nv\r\n--b--", 13);
		rc = parse("multipart/form-data; boundary=b", big, (size_t)n + 6012, 512, &r, &m, 0);
		tap_ok(rc == LR_ELIMIT && strstr(m.text, "headers are too long"), "header limit (%s)", m.text);
	}
	{
		char many[4096];
		size_t n = 0;

		for (int i = 0; i < 9; i++)
			n += (size_t)snprintf(many + n, sizeof(many) - n,
				"--b\r\nContent-Disposition: form-data; name=\"p%d\"\r\n\r\nx\r\n", i);
		n += (size_t)snprintf(many + n, sizeof(many) - n, "--b--\r\n");
		rc = parse("multipart/form-data; boundary=b", many, n, 100, &r, &m, 0);
		tap_ok(rc == LR_ELIMIT && strstr(m.text, "too many parts"), "part limit (%s)", m.text);
	}
	{
		const char *b = "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\r\n--b--";

		rc = parse("multipart/form-data; boundary=\"b\"", b, strlen(b), 3, &r, &m, 0);
	}
	tap_ok(rc == 0 && strcmp(r.log, "a||=;") == 0, "quoted boundary, empty part, no final CRLF (%s)", r.log);
	{
		const char *b = "--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--";

		rc = parse("multipart/form-data; boundary=b", b, strlen(b), 3, &r, &m, 0);
	}
	tap_ok(rc == LR_EINVAL && strstr(m.text, "name"), "a part without a name (%s)", m.text);
	return tap_done();
}
