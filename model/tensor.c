/*
 * tensor.c - creation, copying and freeing of lr_tensor. See tensor.h.
 *
 * Large buffers are recycled. glibc serves blocks of 32 MiB and more
 * (the most M_MMAP_THRESHOLD can be raised to) with a fresh mmap, so
 * every run of a model with such activations (VGG-16 at batch 8: 102 MiB
 * per conv1 output; MobileNet-v2 at batch 8: 38 MiB) paid a page fault
 * and a zeroed page per 4 KiB, 25-30% of the run. lr_free_aligned keeps
 * up to LR_RECYCLE_MAX such blocks, LR_RECYCLE_BYTES in all, and
 * lr_alloc_aligned hands out the smallest kept block that is big enough
 * and at most 1/4 bigger. Process-wide, under a mutex (engines run on
 * several threads in the daemon); blocks beyond the bounds are freed.
 */
#include "config.h"

#include "model/tensor.h"

#include <malloc.h>
#include <pthread.h>
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

#define LR_RECYCLE_MIN ((size_t)32 << 20)    /* glibc mmaps from here on */
#define LR_RECYCLE_MAX 8                      /* blocks kept */
#define LR_RECYCLE_BYTES ((size_t)256 << 20)  /* bytes kept */

static struct {
	pthread_mutex_t mu;
	void *p[LR_RECYCLE_MAX];
	size_t size[LR_RECYCLE_MAX];          /* usable sizes */
	int n;
	size_t total;
} recycle = { PTHREAD_MUTEX_INITIALIZER, { NULL }, { 0 }, 0, 0 };

void *lr_alloc_aligned(size_t bytes)
{
	void *p = NULL;

	if (bytes == 0)
		bytes = 64;
	bytes = (bytes + 63u) & ~(size_t)63u;
	if (bytes >= LR_RECYCLE_MIN) {
		int best = -1;

		pthread_mutex_lock(&recycle.mu);
		for (int i = 0; i < recycle.n; i++)
			if (recycle.size[i] >= bytes && recycle.size[i] - bytes <= bytes / 4 &&
			    (best < 0 || recycle.size[i] < recycle.size[best]))
				best = i;
		if (best >= 0) {
			p = recycle.p[best];
			recycle.total -= recycle.size[best];
			recycle.n--;
			recycle.p[best] = recycle.p[recycle.n];
			recycle.size[best] = recycle.size[recycle.n];
		}
		pthread_mutex_unlock(&recycle.mu);
		if (p != NULL)
			return p;
	}
	if (posix_memalign(&p, 64, bytes) != 0)
		return NULL;
	return p;
}

void lr_free_aligned(void *p)
{
	size_t size;

	if (p == NULL)
		return;
	size = malloc_usable_size(p);
	if (size >= LR_RECYCLE_MIN && size <= LR_RECYCLE_BYTES) {
		void *drop = NULL;

		pthread_mutex_lock(&recycle.mu);
		/* Make room: drop the largest kept block while over a bound. */
		while (recycle.n > 0 && (recycle.n == LR_RECYCLE_MAX ||
					 recycle.total + size > LR_RECYCLE_BYTES)) {
			int big = 0;

			for (int i = 1; i < recycle.n; i++)
				if (recycle.size[i] > recycle.size[big])
					big = i;
			if (recycle.size[big] < size)
				break;  /* keep the smaller ones; free this one below */
			free(recycle.p[big]);
			recycle.total -= recycle.size[big];
			recycle.n--;
			recycle.p[big] = recycle.p[recycle.n];
			recycle.size[big] = recycle.size[recycle.n];
		}
		if (recycle.n < LR_RECYCLE_MAX && recycle.total + size <= LR_RECYCLE_BYTES) {
			recycle.p[recycle.n] = p;
			recycle.size[recycle.n] = size;
			recycle.n++;
			recycle.total += size;
		} else {
			drop = p;
		}
		pthread_mutex_unlock(&recycle.mu);
		free(drop);
		return;
	}
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
