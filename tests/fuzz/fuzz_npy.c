/*
 * fuzz_npy.c - fuzz target for the .npy reader. Any input must either load
 * into a consistent tensor or be refused with a message; never crash, leak
 * or read outside the buffer.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lr_tensor *t = NULL;
	lr_msg msg;
	int64_t n;
	int rc;

	memset(&msg, 0, sizeof(msg));
	rc = lr_npy_read_mem(size ? data : NULL, size, "fuzz.npy", &t, &msg);
	if (rc == 0) {
		/* A loaded tensor is consistent with its shape. */
		if (t == NULL || t->data == NULL ||
		    lr_shape_nelem(t->ndim, t->dims, &n) != 0 ||
		    n != t->nelem ||
		    t->nelem > (int64_t)size) /* >= 1 file byte each */
			abort();
		if (t->dtype != LR_DT_FLOAT && t->dtype != LR_DT_INT64)
			abort();
	} else if (t != NULL || msg.text[0] == '\0' ||
		   strncmp(msg.text, "fuzz.npy: ", 10) != 0) {
		abort();
	}
	lr_tensor_free(t);
	return 0;
}
