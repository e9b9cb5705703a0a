/*
 * fuzz_range.c - fuzz target for the Range header parser. The first 8
 * bytes of the input are the representation size (little-endian, reduced
 * to 48 bits), the rest is the header value. Any answer must be
 * consistent: a partial range lies inside the representation.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t total = 0, start = 0, len = 0;
	char *v;
	lr_range_result r;

	if (size < 8)
		return 0;
	for (int i = 7; i >= 0; i--)
		total = total << 8 | data[i];
	total &= (UINT64_C(1) << 48) - 1;
	v = malloc(size - 8 + 1);
	if (v == NULL)
		return 0;
	memcpy(v, data + 8, size - 8);
	v[size - 8] = '\0';
	r = lr_range_parse(v, total, &start, &len);
	if (r == LR_RANGE_PARTIAL && (len == 0 || start >= total || len > total - start))
		abort();
	if (r != LR_RANGE_FULL && r != LR_RANGE_PARTIAL && r != LR_RANGE_UNSATISFIABLE)
		abort();
	free(v);
	return 0;
}
