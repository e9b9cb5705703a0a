/*
 * tensor.c - creation, copying and freeing of lr_tensor. See tensor.h.
 */
#include "config.h"

#include "model/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

size_t lr_dtype_size(lr_dtype dt)
{
	return dt == LR_DT_INT64 ? 8u : 4u;
}

const char *lr_dtype_name(lr_dtype dt)
{
	return dt == LR_DT_INT64 ? "int64" : "float";
}

void *lr_alloc_aligned(size_t bytes)
{
	void *p = NULL;

	if (bytes == 0)
		bytes = 64;
	bytes = (bytes + 63u) & ~(size_t)63u;
	if (posix_memalign(&p, 64, bytes) != 0)
		return NULL;
	return p;
}

void lr_free_aligned(void *p)
{
	free(p);
}

int lr_shape_nelem(int ndim, const int64_t *dims, int64_t *nelem)
{
	int64_t n = 1;

	if (ndim < 0 || ndim > LR_MAX_DIMS)
		return LR_EINVAL;
	for (int i = 0; i < ndim; i++) {
		if (dims[i] < 0)
			return LR_EINVAL;
		if (lr_mul_i64(n, dims[i], &n) != 0)
			return LR_ELIMIT;
	}
	*nelem = n;
	return 0;
}

static int tensor_init(lr_tensor **out, lr_dtype dt, int ndim,
		       const int64_t *dims)
{
	lr_tensor *t;
	int64_t n, bytes;
	int rc;

	*out = NULL;
	rc = lr_shape_nelem(ndim, dims, &n);
	if (rc != 0)
		return rc;
	if (lr_mul_i64(n, (int64_t)lr_dtype_size(dt), &bytes) != 0 ||
	    (uint64_t)bytes > (uint64_t)SIZE_MAX / 2)
		return LR_ELIMIT;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return LR_ENOMEM;
	t->dtype = dt;
	t->ndim = ndim;
	if (ndim > 0)
		memcpy(t->dims, dims, (size_t)ndim * sizeof(int64_t));
	t->nelem = n;
	*out = t;
	return 0;
}

int lr_tensor_create(lr_tensor **out, lr_dtype dt, int ndim,
		     const int64_t *dims, int alloc)
{
	int rc = tensor_init(out, dt, ndim, dims);

	if (rc != 0 || !alloc)
		return rc;
	rc = lr_tensor_alloc_data(*out);
	if (rc != 0) {
		lr_tensor_free(*out);
		*out = NULL;
	}
	return rc;
}

int lr_tensor_alloc_data(lr_tensor *t)
{
	LR_ASSERT(t->data == NULL);
	t->data = lr_alloc_aligned(lr_tensor_bytes(t));
	if (t->data == NULL)
		return LR_ENOMEM;
	t->owns_data = 1;
	return 0;
}

int lr_tensor_wrap(lr_tensor **out, lr_dtype dt, int ndim,
		   const int64_t *dims, void *data)
{
	int rc = tensor_init(out, dt, ndim, dims);

	if (rc == 0) {
		(*out)->data = data;
		(*out)->owns_data = 0;
	}
	return rc;
}

int lr_tensor_clone(lr_tensor **out, const lr_tensor *src)
{
	int rc = lr_tensor_create(out, src->dtype, src->ndim, src->dims,
				  src->data != NULL);

	if (rc == 0 && src->data != NULL)
		memcpy((*out)->data, src->data, lr_tensor_bytes(src));
	return rc;
}

void lr_tensor_free(lr_tensor *t)
{
	if (t == NULL)
		return;
	if (t->owns_data)
		lr_free_aligned(t->data);
	if (t->map_base != NULL)
		munmap(t->map_base, t->map_len);
	free(t);
}

size_t lr_tensor_bytes(const lr_tensor *t)
{
	return (size_t)t->nelem * lr_dtype_size(t->dtype);
}

char *lr_shape_str(int ndim, const int64_t *dims, char *buf, size_t len)
{
	size_t off = 0;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	off += (size_t)snprintf(buf + off, len - off, "[");
	for (int i = 0; i < ndim && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%lld",
					i ? "," : "", (long long)dims[i]);
	if (off < len)
		snprintf(buf + off, len - off, "]");
	return buf;
}
