/*
 * tap.h - a minimal Test Anything Protocol emitter for unit tests.
 * Each test program prints "1..N" at the end (plan last) via tap_done(),
 * whose return value is main()'s exit status.
 */
#ifndef LR_TAP_H
#define LR_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

static int tap_n, tap_failed;

static inline __attribute__((format(printf, 2, 3))) int
tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	if (!cond)
		tap_failed++;
	printf("%s %d - ", cond ? "ok" : "not ok", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

/* |a - b| <= atol + rtol * |b| */
static inline int tap_close(double a, double b, double atol, double rtol)
{
	return fabs(a - b) <= atol + rtol * fabs(b) && !isnan(a) && !isnan(b);
}

static inline void tap_diag(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static inline void tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif /* LR_TAP_H */
