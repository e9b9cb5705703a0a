/*
 * npy.c - NumPy .npy reader and writer. See npy.h for the rules.
 *
 * Reading is three steps shared by the file and memory readers:
 * npy_parse_prefix() checks the magic, version and header length,
 * npy_parse_header() tokenizes the header dict into a struct npy_hdr, and
 * npy_check_size() compares the data length with the shape. Only then is
 * the tensor allocated and filled, either by one read straight into its
 * buffer or by npy_convert() on chunks, which also scatters Fortran-order
 * elements into C order.
 */
#include "config.h"

#include "model/npy.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_PREFIX_MAX 12        /* magic, version, 4-byte header length */
#define NPY_CHUNK (64 * 1024)    /* conversion buffer; a multiple of 8 */
#define NPY_STR_MAX 32           /* longest string literal kept, with NUL */
#define NPY_SUPPORTED "'<f4', '<f8', '<f2', '|u1', '<i8'"
#define NPY_SUPPORTED_TYPED "'<f4', '<f8', '<f2', '|b1', '|u1', '|i1', '<u2', '<i2', '<u4', '<i4', '<u8', '<i8'"

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NPY_HOST_LE 1
#endif
#endif
#ifndef NPY_HOST_LE
#define NPY_HOST_LE 0
#endif

enum npy_kind { NPY_F4, NPY_F8, NPY_F2, NPY_U1, NPY_I8, NPY_RAW };

/* What the header says, validated. */
struct npy_hdr {
	enum npy_kind kind;
	size_t itemsize;            /* bytes per element in the file */
	lr_dtype dtype;             /* tensor dtype after conversion */
	int typed;                  /* 1: keep the file's type (NPY_RAW) */
	int fortran;                /* fortran_order: True */
	int ndim;
	int64_t dims[LR_MAX_DIMS];
	int64_t nelem;
	size_t data_off;            /* offset of the first data byte */
	size_t data_bytes;          /* nelem * itemsize */
	char descr[NPY_STR_MAX];    /* as written in the file, for messages */
	char shape[256];            /* "[1,3,224,224]", for messages */
};

/* A cursor over the header dict text. */
struct npy_lex {
	const char *start, *p, *end;
	const char *name;
	lr_msg *msg;
};

/* Where converted elements go: sequentially, or scattered from F order. */
struct npy_sink {
	void *dst;
	int fortran;
	int ndim;
	int64_t dims[LR_MAX_DIMS];
	int64_t cstride[LR_MAX_DIMS]; /* C-order stride of each axis */
	int64_t idx[LR_MAX_DIMS];     /* F-order odometer */
	int64_t pos;                  /* C-order index of the next element */
};

static uint16_t ld_le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static uint32_t ld_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t ld_le64(const unsigned char *p)
{
	return (uint64_t)ld_le32(p) | (uint64_t)ld_le32(p + 4) << 32;
}

static float f32_from_bits(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

/* IEEE half -> float, exact: subnormals are renormalised, inf/NaN kept. */
static float half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t exp = (h >> 10) & 0x1fu;
	uint32_t mant = h & 0x3ffu;
	int e = -1;

	if (exp == 0x1f)
		return f32_from_bits(sign | 0x7f800000u | mant << 13);
	if (exp != 0)
		return f32_from_bits(sign | (exp + 112) << 23 | mant << 13);
	if (mant == 0)
		return f32_from_bits(sign);
	do {
		e++;
		mant <<= 1;
	} while ((mant & 0x400u) == 0);
	return f32_from_bits(sign | (uint32_t)(112 - e) << 23 |
			     (mant & 0x3ffu) << 13);
}

static void sink_init(struct npy_sink *s, const struct npy_hdr *hd,
		      void *dst)
{
	memset(s, 0, sizeof(*s));
	s->dst = dst;
	s->ndim = hd->ndim;
	s->fortran = hd->fortran && hd->ndim > 1 && hd->nelem > 0;
	if (!s->fortran)
		return;
	memcpy(s->dims, hd->dims, sizeof(s->dims));
	/* nelem > 0, so no stride can exceed it: no overflow. */
	s->cstride[hd->ndim - 1] = 1;
	for (int k = hd->ndim - 2; k >= 0; k--)
		s->cstride[k] = s->cstride[k + 1] * hd->dims[k + 1];
}

static inline void sink_next(struct npy_sink *s)
{
	if (!s->fortran) {
		s->pos++;
		return;
	}
	for (int k = 0; k < s->ndim; k++) {
		s->pos += s->cstride[k];
		if (++s->idx[k] < s->dims[k])
			return;
		s->pos -= s->idx[k] * s->cstride[k];
		s->idx[k] = 0;
	}
}

/* Converts `n` elements at `src` (file layout) into the sink. */
static void npy_convert(const struct npy_hdr *hd, const unsigned char *src,
			size_t n, struct npy_sink *s)
{
	float *f = s->dst;
	int64_t *q = s->dst;
	uint64_t u;
	double d;

	for (size_t i = 0; i < n; i++, src += hd->itemsize) {
		switch (hd->kind) {
		case NPY_F4:
			f[s->pos] = f32_from_bits(ld_le32(src));
			break;
		case NPY_F8:
			u = ld_le64(src);
			memcpy(&d, &u, sizeof(d));
			f[s->pos] = (float)d;
			break;
		case NPY_F2:
			f[s->pos] = half_to_float(ld_le16(src));
			break;
		case NPY_U1:
			f[s->pos] = (float)src[0];
			break;
		case NPY_I8:
			u = ld_le64(src);
			memcpy(&q[s->pos], &u, sizeof(u));
			break;
		case NPY_RAW: /* the file's type, stored in host order */
			for (size_t b = 0; b < hd->itemsize; b++)
				((unsigned char *)s->dst)[(size_t)s->pos * hd->itemsize + b] =
					src[NPY_HOST_LE ? b : hd->itemsize - 1 - b];
			if (hd->dtype == LR_DT_BOOL)
				((unsigned char *)s->dst)[s->pos] = src[0] != 0;
			break;
		}
		sink_next(s);
	}
}

/* True when the file bytes can be copied into the tensor unchanged. */
static int npy_is_direct(const struct npy_hdr *hd)
{
	return NPY_HOST_LE && (!hd->fortran || hd->ndim <= 1) &&
	       (hd->kind == NPY_F4 || hd->kind == NPY_I8 ||
		(hd->kind == NPY_RAW && hd->dtype != LR_DT_BOOL));
}

/*
 * Checks the magic and version in the first `n` bytes of an input of
 * `total` bytes; sets the header offset and length.
 */
static int npy_parse_prefix(const unsigned char *p, size_t n, size_t total,
			    const char *name, size_t *hoff, size_t *hlen,
			    lr_msg *msg)
{
	size_t m = n < NPY_MAGIC_LEN ? n : NPY_MAGIC_LEN;
	size_t off;
	uint32_t len;

	if (memcmp(p, NPY_MAGIC, m) != 0)
		return lr_fail(msg, LR_ENPY,
			       "%s: not a .npy file (bad magic, expected \"\\x93NUMPY\")",
			       name);
	if (n < 8)
		return lr_fail(msg, LR_ENPY,
			       "%s: file is too short to be a .npy file (%zu bytes)",
			       name, total);
	if (p[6] == 1 && p[7] == 0) {
		off = 10;
	} else if ((p[6] == 2 || p[6] == 3) && p[7] == 0) {
		off = 12;
	} else {
		return lr_fail(msg, LR_ENPY,
			       "%s: unsupported .npy format version %u.%u (supported: 1.0, 2.0, 3.0)",
			       name, p[6], p[7]);
	}
	if (n < off)
		return lr_fail(msg, LR_ENPY,
			       "%s: file is too short to be a .npy file (%zu bytes)",
			       name, total);
	len = off == 10 ? ld_le16(p + 8) : ld_le32(p + 8);
	if (len > LR_NPY_MAX_HEADER)
		return lr_fail(msg, LR_ENPY,
			       "%s: header is %lu bytes, more than the %d allowed",
			       name, (unsigned long)len, LR_NPY_MAX_HEADER);
	if (len > total - off)
		return lr_fail(msg, LR_ENPY,
			       "%s: header is truncated: it declares %lu bytes, found %zu",
			       name, (unsigned long)len, total - off);
	*hoff = off;
	*hlen = len;
	return 0;
}

static int lex_fail(struct npy_lex *lx, const char *what)
{
	return lr_fail(lx->msg, LR_ENPY, "%s: header: %s at byte %td",
		       lx->name, what, lx->p - lx->start);
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_ident(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '_' || c == '.';
}

static void lex_ws(struct npy_lex *lx)
{
	while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' ||
				   *lx->p == '\n' || *lx->p == '\r'))
		lx->p++;
}

static int lex_peek(struct npy_lex *lx, char c)
{
	return lx->p < lx->end && *lx->p == c;
}

/* A '...' or "..." literal of printable ASCII without escapes. */
static int lex_string(struct npy_lex *lx, char *buf, const char *what)
{
	char q, c;
	size_t n = 0;

	if (!lex_peek(lx, '\'') && !lex_peek(lx, '"')) {
		char m[64];

		snprintf(m, sizeof(m), "expected a quoted %s", what);
		return lex_fail(lx, m);
	}
	q = *lx->p++;
	while (lx->p < lx->end && *lx->p != q) {
		c = *lx->p;
		if (c == '\\' || c < 0x20 || c > 0x7e)
			return lex_fail(lx, "unsupported character in a string");
		if (n + 1 >= NPY_STR_MAX)
			return lex_fail(lx, "string is too long");
		buf[n++] = c;
		lx->p++;
	}
	if (lx->p >= lx->end)
		return lex_fail(lx, "unterminated string");
	lx->p++;
	buf[n] = '\0';
	return 0;
}

static int lex_bool(struct npy_lex *lx, int *out)
{
	const char *s = lx->p;
	size_t n;

	while (lx->p < lx->end && is_ident(*lx->p))
		lx->p++;
	n = (size_t)(lx->p - s);
	if (n == 4 && memcmp(s, "True", 4) == 0) {
		*out = 1;
		return 0;
	}
	if (n == 5 && memcmp(s, "False", 5) == 0) {
		*out = 0;
		return 0;
	}
	lx->p = s;
	return lex_fail(lx, "fortran_order must be True or False");
}

static int lex_dim(struct npy_lex *lx, int64_t *out)
{
	int64_t v = 0;

	if (lex_peek(lx, '-'))
		return lex_fail(lx, "shape has a negative dimension");
	if (lx->p >= lx->end || !is_digit(*lx->p))
		return lex_fail(lx, "shape has a non-integer dimension");
	while (lx->p < lx->end && is_digit(*lx->p)) {
		int d = *lx->p - '0';

		if (v > (INT64_MAX - d) / 10)
			return lex_fail(lx, "shape dimension overflows int64");
		v = v * 10 + d;
		lx->p++;
	}
	if (lex_peek(lx, 'L')) /* Python 2 long literal, e.g. (3L,) */
		lx->p++;
	if (lx->p < lx->end && is_ident(*lx->p))
		return lex_fail(lx, "shape has a non-integer dimension");
	*out = v;
	return 0;
}

/* A tuple of non-negative integers: (), (3,), (2, 3), (2, 3,). */
static int lex_shape(struct npy_lex *lx, struct npy_hdr *hd)
{
	int rc, commas = 0;
	int64_t v = 0;

	if (!lex_peek(lx, '('))
		return lex_fail(lx, "shape must be a tuple");
	lx->p++;
	lex_ws(lx);
	hd->ndim = 0;
	if (lex_peek(lx, ')')) {
		lx->p++;
		return 0;
	}
	for (;;) {
		rc = lex_dim(lx, &v);
		if (rc != 0)
			return rc;
		if (hd->ndim == LR_MAX_DIMS) {
			char m[64];

			snprintf(m, sizeof(m),
				 "shape has more than %d dimensions",
				 LR_MAX_DIMS);
			return lex_fail(lx, m);
		}
		hd->dims[hd->ndim++] = v;
		lex_ws(lx);
		if (lex_peek(lx, ',')) {
			lx->p++;
			commas++;
			lex_ws(lx);
			if (lex_peek(lx, ')'))
				break;
			continue;
		}
		if (lex_peek(lx, ')')) {
			if (hd->ndim == 1 && commas == 0)
				return lex_fail(lx,
						"shape (n) is not a tuple, expected (n,)");
			break;
		}
		return lex_fail(lx, "expected ',' or ')' in shape");
	}
	lx->p++;
	return 0;
}

/* Maps a descr string to a kind, or refuses it with a reason. */
static int npy_descr(struct npy_hdr *hd, const char *name, lr_msg *msg)
{
	static const struct npy_type {
		const char *code;
		enum npy_kind kind;
		size_t size;
		lr_dtype dtype;
	} types[] = {
		{ "f4", NPY_F4, 4, LR_DT_FLOAT },
		{ "f8", NPY_F8, 8, LR_DT_FLOAT },
		{ "f2", NPY_F2, 2, LR_DT_FLOAT },
		{ "u1", NPY_U1, 1, LR_DT_FLOAT },
		{ "i8", NPY_I8, 8, LR_DT_INT64 },
	}, typed[] = { /* lr_npy_read_typed(): every type keeps its own */
		{ "f4", NPY_F4, 4, LR_DT_FLOAT },
		{ "i8", NPY_I8, 8, LR_DT_INT64 },
		{ "f8", NPY_RAW, 8, LR_DT_DOUBLE },
		{ "f2", NPY_RAW, 2, LR_DT_FLOAT16 },
		{ "b1", NPY_RAW, 1, LR_DT_BOOL },
		{ "u1", NPY_RAW, 1, LR_DT_UINT8 },
		{ "i1", NPY_RAW, 1, LR_DT_INT8 },
		{ "u2", NPY_RAW, 2, LR_DT_UINT16 },
		{ "i2", NPY_RAW, 2, LR_DT_INT16 },
		{ "u4", NPY_RAW, 4, LR_DT_UINT32 },
		{ "i4", NPY_RAW, 4, LR_DT_INT32 },
		{ "u8", NPY_RAW, 8, LR_DT_UINT64 },
	};
	const struct npy_type *tab = hd->typed ? typed : types;
	size_t ntab = hd->typed ? sizeof(typed) / sizeof(typed[0])
				: sizeof(types) / sizeof(types[0]);
	const char *d = hd->descr;
	char order = 0;

	if (d[0] != '\0' && strchr("<>=|!", d[0]) != NULL)
		order = *d++;
	if (d[0] == 'O')
		return lr_fail(msg, LR_ENPY,
			       "%s: object arrays (descr '%s') are not supported: they hold pickled Python objects",
			       name, hd->descr);
	for (size_t i = 0; i < ntab; i++) {
		if (strcmp(d, tab[i].code) != 0)
			continue;
		if (tab[i].size > 1) {
			if (order == '>' || order == '!')
				return lr_fail(msg, LR_ENPY,
					       "%s: big-endian data is not supported; convert with arr.astype(\"<%s\")",
					       name, hd->typed ? tab[i].code :
					       tab[i].kind == NPY_I8 ? "i8" : "f4");
			if (order == '|' ||
			    ((order == '=' || order == 0) && !NPY_HOST_LE))
				break;
		}
		hd->kind = tab[i].kind;
		hd->itemsize = tab[i].size;
		hd->dtype = tab[i].dtype;
		return 0;
	}
	return lr_fail(msg, LR_ENPY,
		       "%s: unsupported dtype '%s' (supported: %s)",
		       name, hd->descr, hd->typed ? NPY_SUPPORTED_TYPED : NPY_SUPPORTED);
}

/*
 * Parses the header dict (`n` bytes, ending in '\n') into `hd` and checks
 * the shape for overflow.
 */
static int npy_parse_header(const char *h, size_t n, const char *name,
			    struct npy_hdr *hd, lr_msg *msg)
{
	struct npy_lex lx = { h, h, h + n, name, msg };
	char key[NPY_STR_MAX];
	int seen_descr = 0, seen_fortran = 0, seen_shape = 0;
	int *seen, rc;
	int64_t bytes;

	if (n == 0 || h[n - 1] != '\n')
		return lr_fail(msg, LR_ENPY,
			       "%s: header does not end in a newline", name);
	lex_ws(&lx);
	if (!lex_peek(&lx, '{'))
		return lex_fail(&lx, "expected '{' (the header is a dict literal)");
	lx.p++;
	for (;;) {
		lex_ws(&lx);
		if (lex_peek(&lx, '}'))
			break;
		rc = lex_string(&lx, key, "key");
		if (rc != 0)
			return rc;
		if (strcmp(key, "descr") == 0)
			seen = &seen_descr;
		else if (strcmp(key, "fortran_order") == 0)
			seen = &seen_fortran;
		else if (strcmp(key, "shape") == 0)
			seen = &seen_shape;
		else
			return lr_fail(msg, LR_ENPY,
				       "%s: header has an unexpected key '%s'",
				       name, key);
		if (*seen)
			return lr_fail(msg, LR_ENPY,
				       "%s: header has a duplicate key '%s'",
				       name, key);
		*seen = 1;
		lex_ws(&lx);
		if (!lex_peek(&lx, ':'))
			return lex_fail(&lx, "expected ':' after a key");
		lx.p++;
		lex_ws(&lx);
		if (seen == &seen_descr) {
			if (lex_peek(&lx, '['))
				return lr_fail(msg, LR_ENPY,
					       "%s: structured dtypes (a list descr) are not supported",
					       name);
			rc = lex_string(&lx, hd->descr, "descr");
			if (rc == 0)
				rc = npy_descr(hd, name, msg);
		} else if (seen == &seen_fortran) {
			rc = lex_bool(&lx, &hd->fortran);
		} else {
			rc = lex_shape(&lx, hd);
		}
		if (rc != 0)
			return rc;
		lex_ws(&lx);
		if (lex_peek(&lx, ',')) {
			lx.p++;
			continue;
		}
		if (!lex_peek(&lx, '}'))
			return lex_fail(&lx, "expected ',' or '}'");
		break;
	}
	lx.p++;
	lex_ws(&lx);
	if (lx.p != lx.end)
		return lex_fail(&lx, "unexpected bytes after the dict");
	if (!seen_descr || !seen_fortran || !seen_shape)
		return lr_fail(msg, LR_ENPY,
			       "%s: header is missing the '%s' key", name,
			       !seen_descr ? "descr" :
			       !seen_fortran ? "fortran_order" : "shape");

	lr_shape_str(hd->ndim, hd->dims, hd->shape, sizeof(hd->shape));
	if (lr_shape_nelem(hd->ndim, hd->dims, &hd->nelem) != 0)
		return lr_fail(msg, LR_ENPY,
			       "%s: shape %s overflows: the element count does not fit in 64 bits",
			       name, hd->shape);
	/* Both the file bytes and the tensor bytes must fit in memory. */
	if (lr_mul_i64(hd->nelem, 8, &bytes) != 0 ||
	    (uint64_t)bytes > SIZE_MAX / 2)
		return lr_fail(msg, LR_ENPY,
			       "%s: shape %s '%s' overflows: the data would not fit in memory",
			       name, hd->shape, hd->descr);
	hd->data_bytes = (size_t)hd->nelem * hd->itemsize;
	return 0;
}

/* `avail` is the number of bytes after the header. */
static int npy_check_size(const struct npy_hdr *hd, size_t avail,
			  const char *name, lr_msg *msg)
{
	if (avail < hd->data_bytes)
		return lr_fail(msg, LR_ENPY,
			       "%s: data is truncated: expected %zu bytes for shape %s '%s', found %zu",
			       name, hd->data_bytes, hd->shape, hd->descr,
			       avail);
	if (avail > hd->data_bytes)
		return lr_fail(msg, LR_ENPY,
			       "%s: data has %zu trailing byte%s: expected %zu bytes for shape %s '%s', found %zu",
			       name, avail - hd->data_bytes,
			       avail - hd->data_bytes == 1 ? "" : "s",
			       hd->data_bytes, hd->shape, hd->descr, avail);
	return 0;
}

/* Parses prefix and header of an input whose first `n` bytes are `p`. */
static int npy_parse(const unsigned char *p, size_t n, size_t total,
		     const char *hdr, const char *name, struct npy_hdr *hd,
		     lr_msg *msg)
{
	size_t hoff = 0, hlen = 0;
	int rc;

	rc = npy_parse_prefix(p, n, total, name, &hoff, &hlen, msg);
	if (rc != 0)
		return rc;
	if (hdr == NULL)
		hdr = (const char *)p + hoff;
	rc = npy_parse_header(hdr, hlen, name, hd, msg);
	if (rc != 0)
		return rc;
	hd->data_off = hoff + hlen;
	return npy_check_size(hd, total - hd->data_off, name, msg);
}

static int npy_tensor_new(const struct npy_hdr *hd, lr_tensor **out,
			  const char *name, lr_msg *msg)
{
	int rc = lr_tensor_create(out, hd->dtype, hd->ndim, hd->dims, 1);

	if (rc != 0)
		return lr_fail(msg, rc,
			       "%s: cannot allocate a %s tensor of shape %s",
			       name, lr_dtype_name(hd->dtype), hd->shape);
	return 0;
}

static int npy_read_mem(const void *buf, size_t len, const char *name, int typed,
			lr_tensor **out, lr_msg *msg)
{
	static const unsigned char empty[1];
	const unsigned char *p = buf ? buf : empty;
	struct npy_hdr hd;
	struct npy_sink sink;
	lr_tensor *t = NULL;
	int rc;

	LR_ASSERT(out != NULL);
	LR_ASSERT(buf != NULL || len == 0);
	*out = NULL;
	if (name == NULL)
		name = "<memory>";
	memset(&hd, 0, sizeof(hd));
	hd.typed = typed;
	rc = npy_parse(p, len, len, NULL, name, &hd, msg);
	if (rc != 0)
		return rc;
	rc = npy_tensor_new(&hd, &t, name, msg);
	if (rc != 0)
		return rc;
	if (npy_is_direct(&hd)) {
		if (hd.data_bytes > 0)
			memcpy(t->data, p + hd.data_off, hd.data_bytes);
	} else {
		sink_init(&sink, &hd, t->data);
		npy_convert(&hd, p + hd.data_off, (size_t)hd.nelem, &sink);
	}
	*out = t;
	return 0;
}

int lr_npy_read_mem(const void *buf, size_t len, const char *name,
		    lr_tensor **out, lr_msg *msg)
{
	return npy_read_mem(buf, len, name, 0, out, msg);
}

int lr_npy_read_mem_typed(const void *buf, size_t len, const char *name,
			  lr_tensor **out, lr_msg *msg)
{
	return npy_read_mem(buf, len, name, 1, out, msg);
}

/* Reads exactly `n` bytes at `off`; a short file is LR_ENPY. */
static int read_at(int fd, void *buf, size_t n, size_t off, const char *name,
		   lr_msg *msg)
{
	unsigned char *p = buf;
	ssize_t r;

	while (n > 0) {
		r = pread(fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			return lr_fail(msg, -e, "%s: read failed: %s", name,
				       strerror(e));
		}
		if (r == 0)
			return lr_fail(msg, LR_ENPY,
				       "%s: data is truncated: the file shrank while it was read",
				       name);
		p += r;
		off += (size_t)r;
		n -= (size_t)r;
	}
	return 0;
}

static int npy_load(const char *path, int map, int typed, lr_tensor **out, lr_msg *msg)
{
	unsigned char pre[NPY_PREFIX_MAX];
	unsigned char *chunk = NULL;
	char *hbuf = NULL;
	lr_tensor *t = NULL;
	struct npy_hdr hd;
	struct npy_sink sink;
	struct stat st;
	size_t total, n, hlen = 0, hoff = 0, done, step;
	int fd, rc;

	LR_ASSERT(out != NULL && path != NULL);
	*out = NULL;
	memset(&hd, 0, sizeof(hd));
	hd.typed = typed;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		return lr_fail(msg, -e, "%s: cannot open: %s", path,
			       strerror(e));
	}
	if (fstat(fd, &st) != 0) {
		int e = errno;

		rc = lr_fail(msg, -e, "%s: cannot stat: %s", path,
			     strerror(e));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = lr_fail(msg, LR_ENPY, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > SIZE_MAX / 2) {
		rc = lr_fail(msg, LR_ENPY, "%s: file is too large", path);
		goto out;
	}
	total = (size_t)st.st_size;
	n = total < sizeof(pre) ? total : sizeof(pre);
	rc = read_at(fd, pre, n, 0, path, msg);
	if (rc != 0)
		goto out;
	/* Validate the prefix before allocating the header buffer. */
	rc = npy_parse_prefix(pre, n, total, path, &hoff, &hlen, msg);
	if (rc != 0)
		goto out;
	hbuf = malloc(hlen + 1);
	if (hbuf == NULL) {
		rc = lr_fail(msg, LR_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	rc = read_at(fd, hbuf, hlen, hoff, path, msg);
	if (rc != 0)
		goto out;
	rc = npy_parse(pre, n, total, hbuf, path, &hd, msg);
	if (rc != 0)
		goto out;
	if (map && npy_is_direct(&hd) && hd.data_off % 64 == 0 && hd.data_bytes > 0) {
		void *base = mmap(NULL, total, PROT_READ, MAP_PRIVATE, fd, 0);

		if (base != MAP_FAILED) {
			rc = lr_tensor_create(&t, hd.dtype, hd.ndim, hd.dims, 0);
			if (rc != 0) {
				munmap(base, total);
				rc = lr_fail(msg, rc, "%s: out of memory", path);
				goto out;
			}
			t->data = (unsigned char *)base + hd.data_off;
			t->map_base = base;
			t->map_len = total;
			goto out;
		}
		/* Mapping refused (e.g. a pipe-like file system): read instead. */
	}
	rc = npy_tensor_new(&hd, &t, path, msg);
	if (rc != 0)
		goto out;
	if (npy_is_direct(&hd)) {
		rc = read_at(fd, t->data, hd.data_bytes, hd.data_off, path,
			     msg);
		goto out;
	}
	chunk = malloc(NPY_CHUNK);
	if (chunk == NULL) {
		rc = lr_fail(msg, LR_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	sink_init(&sink, &hd, t->data);
	for (done = 0; done < hd.data_bytes; done += step) {
		step = hd.data_bytes - done;
		if (step > NPY_CHUNK)
			step = NPY_CHUNK;
		rc = read_at(fd, chunk, step, hd.data_off + done, path, msg);
		if (rc != 0)
			goto out;
		npy_convert(&hd, chunk, step / hd.itemsize, &sink);
	}
out:
	free(chunk);
	free(hbuf);
	close(fd);
	if (rc != 0)
		lr_tensor_free(t);
	else
		*out = t;
	return rc;
}

int lr_npy_read(const char *path, lr_tensor **out, lr_msg *msg)
{
	return npy_load(path, 0, 0, out, msg);
}

int lr_npy_read_typed(const char *path, lr_tensor **out, lr_msg *msg)
{
	return npy_load(path, 0, 1, out, msg);
}

int lr_npy_map(const char *path, lr_tensor **out, lr_msg *msg)
{
	return npy_load(path, 1, 0, out, msg);
}

static int write_all(int fd, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	ssize_t r;

	while (n > 0) {
		r = write(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Writes the data of `t` little-endian. */
static int write_data(int fd, const lr_tensor *t)
{
	const unsigned char *src = t->data;
	size_t bytes = lr_tensor_bytes(t), isz = lr_dtype_size(t->dtype);
	unsigned char buf[4096];
	size_t step;
	int rc;

	if (NPY_HOST_LE)
		return write_all(fd, src, bytes);
	for (size_t done = 0; done < bytes; done += step) {
		step = bytes - done < sizeof(buf) ? bytes - done : sizeof(buf);
		for (size_t i = 0; i < step; i += isz)
			for (size_t b = 0; b < isz; b++)
				buf[i + b] = src[done + i + isz - 1 - b];
		rc = write_all(fd, buf, step);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The descr numpy writes for dt. */
static const char *npy_descr_of(lr_dtype dt)
{
	switch (dt) {
	case LR_DT_FLOAT: return "<f4";
	case LR_DT_INT64: return "<i8";
	case LR_DT_BOOL: return "|b1";
	case LR_DT_UINT8: return "|u1";
	case LR_DT_INT8: return "|i1";
	case LR_DT_UINT16: return "<u2";
	case LR_DT_INT16: return "<i2";
	case LR_DT_UINT32: return "<u4";
	case LR_DT_INT32: return "<i4";
	case LR_DT_UINT64: return "<u8";
	case LR_DT_DOUBLE: return "<f8";
	case LR_DT_FLOAT16: return "<f2";
	case LR_DT_STRING: break; /* not written (numpy's strings are fixed width) */
	}
	return NULL;
}

/* Formats the version 1.0 prefix and header; returns the total length. */
static size_t npy_format_header(const lr_tensor *t, char *h, size_t cap)
{
	size_t n = 10, hl;

	n += (size_t)snprintf(h + n, cap - n,
			      "{'descr': '%s', 'fortran_order': False, 'shape': (",
			      npy_descr_of(t->dtype));
	for (int i = 0; i < t->ndim; i++)
		n += (size_t)snprintf(h + n, cap - n, "%s%lld", i ? ", " : "",
				      (long long)t->dims[i]);
	n += (size_t)snprintf(h + n, cap - n, "%s), }",
			      t->ndim == 1 ? "," : "");
	while ((n + 1) % 64 != 0)
		h[n++] = ' ';
	h[n++] = '\n';
	LR_ASSERT(n <= cap);
	memcpy(h, NPY_MAGIC, NPY_MAGIC_LEN);
	h[6] = 1;
	h[7] = 0;
	hl = n - 10;
	h[8] = (char)(hl & 0xff);
	h[9] = (char)(hl >> 8);
	return n;
}

int lr_npy_write(const char *path, const lr_tensor *t, lr_msg *msg)
{
	static atomic_uint seq;
	char hdr[512];
	char *tmp = NULL;
	size_t hlen, tmplen;
	int fd = -1, created = 0, rc;

	LR_ASSERT(path != NULL && t != NULL);
	if (t->data == NULL)
		return lr_fail(msg, LR_EINVAL,
			       "%s: cannot write a shape-only tensor", path);
	if (npy_descr_of(t->dtype) == NULL)
		return lr_fail(msg, LR_EINVAL, "%s: unsupported dtype %d",
			       path, (int)t->dtype);
	hlen = npy_format_header(t, hdr, sizeof(hdr));
	tmplen = strlen(path) + 64;
	tmp = malloc(tmplen);
	if (tmp == NULL)
		return lr_fail(msg, LR_ENOMEM, "%s: out of memory", path);
	for (int tries = 0; fd < 0; tries++) {
		snprintf(tmp, tmplen, "%s.tmp-%ld-%u", path, (long)getpid(),
			 atomic_fetch_add(&seq, 1u));
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd < 0 && (errno != EEXIST || tries == 100)) {
			int e = errno;

			rc = lr_fail(msg, -e,
				     "%s: cannot create a temporary file: %s",
				     path, strerror(e));
			goto out;
		}
	}
	created = 1;
	rc = write_all(fd, hdr, hlen);
	if (rc == 0)
		rc = write_data(fd, t);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	fd = -1;
	if (rc != 0) {
		rc = lr_fail(msg, rc, "%s: write failed: %s", path,
			     strerror(-rc));
		goto out;
	}
	if (rename(tmp, path) != 0) {
		int e = errno;

		rc = lr_fail(msg, -e, "%s: cannot rename the temporary file: %s",
			     path, strerror(e));
		goto out;
	}
	created = 0;
out:
	if (fd >= 0)
		close(fd);
	if (created)
		unlink(tmp);
	free(tmp);
	return rc;
}
