/*
 * fuzz_npy.c - fuzz target for the .npy reader, in both modes (float32/int64
 * and typed, lr_npy_read_mem_typed). Any input must either load
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

	for (int typed = 0; typed < 2; typed++) {
		memset(&msg, 0, sizeof(msg));
		t = NULL;
		rc = typed ? lr_npy_read_mem_typed(size ? data : NULL, size, "fuzz.npy", &t, &msg)
			   : lr_npy_read_mem(size ? data : NULL, size, "fuzz.npy", &t, &msg);
		if (rc == 0) {
			/* A loaded tensor is consistent with its shape. */
			if (t == NULL || t->data == NULL ||
			    lr_shape_nelem(t->ndim, t->dims, &n) != 0 ||
			    n != t->nelem ||
			    t->nelem > (int64_t)size) /* >= 1 file byte each */
				abort();
			if (!typed && t->dtype != LR_DT_FLOAT && t->dtype != LR_DT_INT64)
				abort();
			if (lr_dtype_name(t->dtype)[0] == 'u' && lr_dtype_name(t->dtype)[1] == 'n')
				abort(); /* "unknown": not an lr_dtype */
			if (t->dtype == LR_DT_BOOL)
				for (int64_t k = 0; k < t->nelem; k++)
					if (((const uint8_t *)t->data)[k] > 1)
						abort();
		} else if (t != NULL || msg.text[0] == '\0' ||
			   strncmp(msg.text, "fuzz.npy: ", 10) != 0) {
			abort();
		}
		lr_tensor_free(t);
	}
	t = NULL;
	lr_tensor_free(t);
	return 0;
}
