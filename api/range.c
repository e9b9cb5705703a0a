/*
 * range.c - the Range header parser.
 *
 * DESIGN. A hand-written scanner over the grammar of RFC 9110 14.1.1
 * restricted to one range: optional whitespace around the range, digits
 * checked for overflow while they are read (a value above 2^63 makes the
 * header unparsable, so it is ignored). libmicrohttpd does not parse
 * Range, so this is the only code that reads it.
 */
#include "config.h"

#include "api/range.h"

#include <stddef.h>
#include <strings.h>

/* Reads decimal digits at *s into *out; returns 0 if none or overflow. */
static int digits(const char **s, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = *s;

	if (*p < '0' || *p > '9')
		return 0;
	while (*p >= '0' && *p <= '9') {
		if (v > (UINT64_C(1) << 62) / 5) /* v * 10 may pass 2^63 */
			return 0;
		v = v * 10 + (uint64_t)(*p - '0');
		p++;
	}
	*s = p;
	*out = v;
	return 1;
}

static const char *ows(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

lr_range_result lr_range_parse(const char *value, uint64_t size,
			       uint64_t *start, uint64_t *len)
{
	const char *s = value;
	uint64_t a = 0, b = 0;
	int have_a, have_b;

	if (s == NULL || strncasecmp(s, "bytes=", 6) != 0)
		return LR_RANGE_FULL;
	s = ows(s + 6);
	have_a = digits(&s, &a);
	if (*s != '-')
		return LR_RANGE_FULL;
	s++;
	have_b = digits(&s, &b);
	s = ows(s);
	if (*s != '\0') /* several ranges or junk: serve the whole body */
		return LR_RANGE_FULL;
	if (!have_a && !have_b)
		return LR_RANGE_FULL;
	if (!have_a) { /* suffix: the last b bytes */
		if (b == 0 || size == 0)
			return LR_RANGE_UNSATISFIABLE;
		if (b > size)
			b = size;
		*start = size - b;
		*len = b;
		return LR_RANGE_PARTIAL;
	}
	if (have_b && b < a)
		return LR_RANGE_FULL; /* invalid range-spec: ignore */
	if (a >= size)
		return LR_RANGE_UNSATISFIABLE;
	if (!have_b || b >= size)
		b = size - 1;
	*start = a;
	*len = b - a + 1;
	return LR_RANGE_PARTIAL;
}
