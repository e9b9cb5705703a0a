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
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

size_t lr_dtype_size(lr_dtype dt)
{
	switch (dt) {
	case LR_DT_UINT8: case LR_DT_INT8: case LR_DT_BOOL: return 1;
	case LR_DT_UINT16: case LR_DT_INT16: case LR_DT_FLOAT16: return 2;
	case LR_DT_INT64: case LR_DT_DOUBLE: case LR_DT_UINT64: return 8;
	case LR_DT_STRING: return 8; /* its offsets; see lr_tensor_bytes */
	default: return 4; /* float, int32, uint32 */
	}
}

const char *lr_dtype_name(lr_dtype dt)
{
	switch (dt) {
	case LR_DT_FLOAT: return "float";
	case LR_DT_UINT8: return "uint8";
	case LR_DT_INT8: return "int8";
	case LR_DT_UINT16: return "uint16";
	case LR_DT_INT16: return "int16";
	case LR_DT_INT32: return "int32";
	case LR_DT_INT64: return "int64";
	case LR_DT_BOOL: return "bool";
	case LR_DT_FLOAT16: return "float16";
	case LR_DT_DOUBLE: return "double";
	case LR_DT_UINT32: return "uint32";
	case LR_DT_UINT64: return "uint64";
	case LR_DT_STRING: return "string";
	}
	return "unknown";
}

lr_dtype lr_dtype_from_onnx(int onnx_type)
{
	switch (onnx_type) {
	case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 9:
	case 10: case 11: case 12: case 13:
		return (lr_dtype)onnx_type;
	default:
		return (lr_dtype)0;
	}
}

int lr_dtype_is_float(lr_dtype dt)
{
	return dt == LR_DT_FLOAT || dt == LR_DT_DOUBLE || dt == LR_DT_FLOAT16;
}

int lr_dtype_is_unsigned(lr_dtype dt)
{
	return dt == LR_DT_UINT8 || dt == LR_DT_UINT16 || dt == LR_DT_UINT32 ||
	       dt == LR_DT_UINT64 || dt == LR_DT_BOOL;
}

float lr_half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
	float f;

	if (exp == 0) {
		if (man == 0) {
			bits = sign;
		} else { /* subnormal: normalise */
			exp = 127 - 15 + 1;
			while (!(man & 0x400)) {
				man <<= 1;
				exp--;
			}
			man &= 0x3ff;
			bits = sign | (exp << 23) | (man << 13);
		}
	} else if (exp == 31) {
		bits = sign | 0x7f800000u | (man << 13);
	} else {
		bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
	}
	memcpy(&f, &bits, sizeof(f));
	return f;
}

/* Rounds a non-negative finite double to an integer, ties to even. */
static double round_even(double a)
{
	double f = floor(a), r = a - f;

	if (r > 0.5 || (r == 0.5 && fmod(f, 2.0) != 0.0))
		f += 1.0;
	return f;
}

uint16_t lr_double_to_half(double x)
{
	uint16_t sign = signbit(x) ? 0x8000u : 0u;
	double a = fabs(x), m;
	int e;

	if (isnan(x))
		return (uint16_t)(sign | 0x7e00u);
	if (a >= 65520.0) /* includes infinity */
		return (uint16_t)(sign | 0x7c00u);
	if (a < 6.103515625e-05) { /* below 2^-14: subnormal, quantum 2^-24 */
		m = round_even(a * 16777216.0);
		return (uint16_t)(sign | (uint16_t)m); /* 0x400 = smallest normal */
	}
	(void)frexp(a, &e);                    /* a = f * 2^e, f in [0.5, 1) */
	e -= 1;                                /* a = (1 + t) * 2^e */
	m = round_even((ldexp(a, -e) - 1.0) * 1024.0);
	if (m >= 1024.0) {
		m = 0.0;
		e++;
	}
	if (e > 15)
		return (uint16_t)(sign | 0x7c00u);
	return (uint16_t)(sign | (uint16_t)((e + 15) << 10) | (uint16_t)m);
}

double lr_tensor_get_f64(const lr_tensor *t, int64_t k)
{
	const void *p = t->data;

	switch (t->dtype) {
	case LR_DT_FLOAT: return ((const float *)p)[k];
	case LR_DT_DOUBLE: return ((const double *)p)[k];
	case LR_DT_FLOAT16: return lr_half_to_float(((const uint16_t *)p)[k]);
	case LR_DT_UINT8: return ((const uint8_t *)p)[k];
	case LR_DT_BOOL: return ((const uint8_t *)p)[k] != 0;
	case LR_DT_INT8: return ((const int8_t *)p)[k];
	case LR_DT_UINT16: return ((const uint16_t *)p)[k];
	case LR_DT_INT16: return ((const int16_t *)p)[k];
	case LR_DT_INT32: return ((const int32_t *)p)[k];
	case LR_DT_UINT32: return ((const uint32_t *)p)[k];
	case LR_DT_INT64: return (double)((const int64_t *)p)[k];
	case LR_DT_UINT64: return (double)((const uint64_t *)p)[k];
	case LR_DT_STRING: break; /* no number: the engine keeps strings away */
	}
	return 0.0;
}

/* A double truncated toward zero as int64 bits (see lr_tensor_get_i64). */
static int64_t f64_to_i64(double d, int to_u64)
{
	if (d >= -9223372036854775808.0 && d < 9223372036854775808.0)
		return (int64_t)d;
	if (to_u64 && d >= 9223372036854775808.0 && d < 18446744073709551616.0)
		return (int64_t)(uint64_t)d;
	return INT64_MIN;
}

int64_t lr_tensor_get_i64(const lr_tensor *t, int64_t k)
{
	const void *p = t->data;

	switch (t->dtype) {
	case LR_DT_FLOAT: case LR_DT_DOUBLE: case LR_DT_FLOAT16:
		return f64_to_i64(lr_tensor_get_f64(t, k), 0);
	case LR_DT_UINT8: return ((const uint8_t *)p)[k];
	case LR_DT_BOOL: return ((const uint8_t *)p)[k] != 0;
	case LR_DT_INT8: return ((const int8_t *)p)[k];
	case LR_DT_UINT16: return ((const uint16_t *)p)[k];
	case LR_DT_INT16: return ((const int16_t *)p)[k];
	case LR_DT_INT32: return ((const int32_t *)p)[k];
	case LR_DT_UINT32: return ((const uint32_t *)p)[k];
	case LR_DT_INT64: return ((const int64_t *)p)[k];
	case LR_DT_UINT64: return (int64_t)((const uint64_t *)p)[k];
	case LR_DT_STRING: break;
	}
	return 0;
}

void lr_tensor_convert(const lr_tensor *t, lr_dtype dt, void *dst)
{
	int from_float = lr_dtype_is_float(t->dtype);
	int from_u64 = t->dtype == LR_DT_UINT64;

	for (int64_t k = 0; k < t->nelem; k++) {
		double d = 0.0;
		uint64_t v = 0; /* two's complement bits of the integer value */

		if (from_float)
			d = lr_tensor_get_f64(t, k);
		else
			v = (uint64_t)lr_tensor_get_i64(t, k);
		switch (dt) {
		case LR_DT_FLOAT:
			((float *)dst)[k] = from_float ? (float)d
					    : from_u64 ? (float)v : (float)(int64_t)v;
			break;
		case LR_DT_DOUBLE:
			((double *)dst)[k] = from_float ? d
					     : from_u64 ? (double)v : (double)(int64_t)v;
			break;
		case LR_DT_FLOAT16:
			((uint16_t *)dst)[k] = lr_double_to_half(
				from_float ? d : from_u64 ? (double)v : (double)(int64_t)v);
			break;
		case LR_DT_BOOL:
			((uint8_t *)dst)[k] = from_float ? d != 0.0 : v != 0;
			break;
		default:
			if (from_float)
				v = (uint64_t)f64_to_i64(d, dt == LR_DT_UINT64);
			switch (dt) {
			case LR_DT_UINT8: case LR_DT_INT8: ((uint8_t *)dst)[k] = (uint8_t)v; break;
			case LR_DT_UINT16: case LR_DT_INT16: ((uint16_t *)dst)[k] = (uint16_t)v; break;
			case LR_DT_INT32: case LR_DT_UINT32: ((uint32_t *)dst)[k] = (uint32_t)v; break;
			default: ((uint64_t *)dst)[k] = v; break;
			}
			break;
		}
	}
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
	size_t bytes = lr_tensor_bytes(t); /* before data: strings read it */

	LR_ASSERT(t->data == NULL);
	t->data = lr_alloc_aligned(bytes);
	if (t->data == NULL)
		return LR_ENOMEM;
	t->owns_data = 1;
	if (t->dtype == LR_DT_STRING) /* empty strings: every offset 0 */
		memset(t->data, 0, bytes);
	return 0;
}

int lr_tensor_create_strings(lr_tensor **out, int ndim, const int64_t *dims,
			     const char *const *s, const size_t *len)
{
	size_t total = 0, head;
	uint64_t *off;
	int rc = tensor_init(out, LR_DT_STRING, ndim, dims);

	if (rc != 0)
		return rc;
	head = (size_t)((*out)->nelem + 1) * sizeof(uint64_t);
	for (int64_t k = 0; k < (*out)->nelem; k++) {
		if (len[k] > SIZE_MAX / 4 - total - head) {
			lr_tensor_free(*out);
			*out = NULL;
			return LR_ELIMIT;
		}
		total += len[k];
	}
	(*out)->data = lr_alloc_aligned(head + total + 1);
	if ((*out)->data == NULL) {
		lr_tensor_free(*out);
		*out = NULL;
		return LR_ENOMEM;
	}
	(*out)->owns_data = 1;
	off = (*out)->data;
	off[0] = 0;
	for (int64_t k = 0; k < (*out)->nelem; k++) {
		if (len[k] > 0)
			memcpy((char *)(*out)->data + head + off[k], s[k], len[k]);
		off[k + 1] = off[k] + len[k];
	}
	return 0;
}

const char *lr_tensor_str(const lr_tensor *t, int64_t k, size_t *len)
{
	const uint64_t *off = t->data;

	*len = (size_t)(off[k + 1] - off[k]);
	return (const char *)t->data + (size_t)(t->nelem + 1) * sizeof(uint64_t) + off[k];
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
	int rc = tensor_init(out, src->dtype, src->ndim, src->dims);

	if (rc != 0 || src->data == NULL)
		return rc;
	/* lr_tensor_bytes of the source: a string tensor's depends on its data */
	(*out)->data = lr_alloc_aligned(lr_tensor_bytes(src));
	if ((*out)->data == NULL) {
		lr_tensor_free(*out);
		*out = NULL;
		return LR_ENOMEM;
	}
	(*out)->owns_data = 1;
	(*out)->blocked = src->blocked;
	memcpy((*out)->data, src->data, lr_tensor_bytes(src));
	return 0;
}

/* dir 1: C order -> blocks of blk; dir 0: blocks -> C order. */
static int tensor_reblock(lr_tensor **out, const lr_tensor *src, int blk, int dir)
{
	int64_t n, cb, hw;
	const float *s;
	float *d;
	int rc;

	*out = NULL;
	if (src->dtype != LR_DT_FLOAT || src->ndim != 4 || src->data == NULL || blk < 1 ||
	    src->dims[1] % blk != 0 || (dir == 0) != (src->blocked == blk))
		return LR_EINVAL;
	rc = lr_tensor_create(out, LR_DT_FLOAT, 4, src->dims, 1);
	if (rc != 0)
		return rc;
	n = src->dims[0];
	cb = src->dims[1] / blk;
	hw = src->dims[2] * src->dims[3];
	s = src->data;
	d = (*out)->data;
	/* image i, block b, position q, lane l: C order (i, b * blk + l, q),
	 * blocked (i, b, q, l); both images are nelem / n apart */
	for (int64_t i = 0; i < n * cb; i++) {
		const float *sb = s + i * hw * blk;
		float *db = d + i * hw * blk;

		for (int64_t q = 0; q < hw; q++)
			for (int l = 0; l < blk; l++) {
				if (dir)
					db[q * blk + l] = sb[l * hw + q];
				else
					db[l * hw + q] = sb[q * blk + l];
			}
	}
	(*out)->blocked = dir ? blk : 0;
	return 0;
}

int lr_tensor_unblock(lr_tensor **out, const lr_tensor *src)
{
	return tensor_reblock(out, src, src->blocked, 0);
}

int lr_tensor_block(lr_tensor **out, const lr_tensor *src, int blk)
{
	return tensor_reblock(out, src, blk, 1);
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
	if (t->dtype == LR_DT_STRING)
		return (size_t)(t->nelem + 1) * sizeof(uint64_t) +
		       (t->data != NULL ? (size_t)((const uint64_t *)t->data)[t->nelem] : 0);
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
