/* test_range.c - the Range header parser: the cases of h2o's
 * t/50file-range.t (closed, open-ended, suffix, past the end,
 * unsatisfiable) plus the ones RFC 9110 says to ignore. */
#include "config.h"

#include "api/range.h"
#include "tests/unit/tap.h"

static void check(const char *v, uint64_t size, lr_range_result want,
		  uint64_t wstart, uint64_t wlen)
{
	uint64_t s = 12345, l = 12345;
	lr_range_result r = lr_range_parse(v, size, &s, &l);

	if (want == LR_RANGE_PARTIAL)
		tap_ok(r == want && s == wstart && l == wlen,
		       "'%s' of %llu -> 206 [%llu, +%llu] (got %d [%llu, +%llu])",
		       v ? v : "(none)", (unsigned long long)size,
		       (unsigned long long)wstart, (unsigned long long)wlen, (int)r,
		       (unsigned long long)s, (unsigned long long)l);
	else
		tap_ok(r == want, "'%s' of %llu -> %s (got %d)", v ? v : "(none)",
		       (unsigned long long)size,
		       want == LR_RANGE_FULL ? "200" : "416", (int)r);
}

int main(void)
{
	check(NULL, 100, LR_RANGE_FULL, 0, 0);
	check("bytes=0-9", 100, LR_RANGE_PARTIAL, 0, 10);
	check("bytes=10-", 100, LR_RANGE_PARTIAL, 10, 90);
	check("bytes=-10", 100, LR_RANGE_PARTIAL, 90, 10);
	check("bytes=-1000", 100, LR_RANGE_PARTIAL, 0, 100);
	check("bytes=99-99", 100, LR_RANGE_PARTIAL, 99, 1);
	check("bytes=50-5000", 100, LR_RANGE_PARTIAL, 50, 50);
	check("bytes=100-", 100, LR_RANGE_UNSATISFIABLE, 0, 0);
	check("bytes=100-200", 100, LR_RANGE_UNSATISFIABLE, 0, 0);
	check("bytes=-0", 100, LR_RANGE_UNSATISFIABLE, 0, 0);
	check("bytes=0-", 0, LR_RANGE_UNSATISFIABLE, 0, 0);
	check("bytes=-5", 0, LR_RANGE_UNSATISFIABLE, 0, 0);
	check("bytes=5-1", 100, LR_RANGE_FULL, 0, 0);
	check("bytes=0-1,5-6", 100, LR_RANGE_FULL, 0, 0);
	check("items=0-1", 100, LR_RANGE_FULL, 0, 0);
	check("bytes=", 100, LR_RANGE_FULL, 0, 0);
	check("bytes=-", 100, LR_RANGE_FULL, 0, 0);
	check("bytes=a-b", 100, LR_RANGE_FULL, 0, 0);
	check("bytes=1-2x", 100, LR_RANGE_FULL, 0, 0);
	check("bytes=99999999999999999999999-", 100, LR_RANGE_FULL, 0, 0);
	check("bytes=9223372036854775807-", 100, LR_RANGE_UNSATISFIABLE, 0, 0);
	check("Bytes= 1-2 ", 100, LR_RANGE_PARTIAL, 1, 2);
	return tap_done();
}
