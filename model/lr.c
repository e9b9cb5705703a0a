/*
 * lr.c - error messages, assertions and small process utilities shared by
 * all modules. See lr.h for the error convention.
 */
#include "config.h"

#include "model/lr.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

int lr_fail(lr_msg *m, int code, const char *fmt, ...)
{
	va_list ap;

	if (m == NULL || m->text[0] != '\0')
		return code;
	va_start(ap, fmt);
	vsnprintf(m->text, sizeof(m->text), fmt, ap);
	va_end(ap);
	return code;
}

void lr_msg_prefix(lr_msg *m, const char *fmt, ...)
{
	char pre[512];
	size_t pl, tl;
	va_list ap;

	if (m == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	pl = strlen(pre);
	if (pl + 3 >= sizeof(m->text))
		return;
	tl = strlen(m->text);
	if (tl > sizeof(m->text) - pl - 3)
		tl = sizeof(m->text) - pl - 3;
	memmove(m->text + pl + 2, m->text, tl);
	m->text[pl + 2 + tl] = '\0';
	memcpy(m->text, pre, pl);
	m->text[pl] = ':';
	m->text[pl + 1] = ' ';
}

const char *lr_strerror(int code)
{
	switch (code) {
	case LR_OK: return "success";
	case LR_EMODEL: return "malformed ONNX model";
	case LR_EUNSUPPORTED: return "unsupported model feature";
	case LR_ESHAPE: return "tensor shape mismatch";
	case LR_ENPY: return "malformed or unsupported .npy file";
	case LR_ELAPACK: return "LAPACK failure";
	case LR_ENUMERIC: return "numerical failure";
	case LR_ECANCELED: return "canceled";
	case LR_ELIMIT: return "limit exceeded";
	default:
		if (code < 0 && code > -4096)
			return strerror(-code);
		return "unknown error";
	}
}

void lr_assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "lowrank: assertion failed: %s (%s:%d)\n", expr, file,
		line);
	abort();
}

double lr_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

size_t lr_peak_rss_bytes(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (size_t)ru.ru_maxrss * 1024u; /* Linux reports KiB */
}
