/*
 * onnx.c - ONNX model loading, validation and saving. See onnx.h.
 *
 * DESIGN. Loading is a pipeline in which each stage trusts only what the
 * previous one checked:
 *   1. read   - mmap the file (or take the caller's buffer);
 *   2. scan   - walk the protobuf wire format with the generated
 *               descriptors, iteratively, refusing nesting deeper than
 *               LR_ONNX_MAX_DEPTH and length fields past the end;
 *   3. unpack - protobuf-c with a budgeted allocator (every byte counted);
 *   4. index  - build the value table (initializers, graph inputs, node
 *               outputs) with a hash from names, refusing duplicates and
 *               dangling references;
 *   5. order  - Kahn's topological sort, the ready node first in the
 *               file first (the file's order when it is sorted, as ONNX
 *               requires); leftovers mean a cycle;
 *   6. check  - opset range, operator support (all unsupported operators
 *               are listed in one message), input/output counts.
 * Initializers are converted by lr_tensor_from_proto(), which validates
 * types and sizes, keeps each numeric type as it is (bfloat16 becomes
 * float32) and borrows aligned buffers from the proto.
 */
#include "config.h"

#include "model/onnx.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/openat2.h>
#endif

#include "model/ops.h"

#define DEFAULT_MAX_NODES 100000
#define MAX_INITIALIZERS 1000000

/* ---- budgeted allocator ------------------------------------------------ */

struct budget {
	size_t used;       /* bytes currently allocated */
	size_t limit;      /* refuse allocations beyond this */
	int exceeded;      /* 1 once an allocation was refused */
};

#define HDR 16 /* keeps 16-byte alignment of the returned pointer */

static void *budget_alloc(void *ud, size_t size)
{
	struct budget *b = ud;
	unsigned char *p;

	if (size > b->limit - b->used || size > SIZE_MAX - HDR) {
		b->exceeded = 1;
		return NULL;
	}
	p = malloc(size + HDR);
	if (p == NULL) {
		b->exceeded = 1;
		return NULL;
	}
	memcpy(p, &size, sizeof(size));
	b->used += size;
	return p + HDR;
}

static void budget_free(void *ud, void *ptr)
{
	struct budget *b = ud;
	unsigned char *p = ptr;
	size_t size;

	if (p == NULL)
		return;
	p -= HDR;
	memcpy(&size, p, sizeof(size));
	b->used -= size;
	free(p);
}

/* ---- loader state -------------------------------------------------------- */

struct priv {
	struct budget budget;          /* protobuf allocations */
	ProtobufCAllocator alloc;      /* wraps budget */
	int *hash;                     /* open addressing: value index or -1 */
	size_t hash_cap;               /* power of two */
	size_t vcap;                   /* room in lr_model.values */
	char *dir;                     /* model directory, or NULL */
	const char *file;              /* name used in messages */
	char *where;                   /* a subgraph's: file, then the subgraph chain */
};

static uint64_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static const char *str_or_empty(const char *s)
{
	return s ? s : "";
}

int lr_model_find_value(const lr_model *m, const char *name)
{
	const struct priv *pv = m->priv;
	size_t mask = pv->hash_cap - 1;

	for (size_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
		int v = pv->hash[i];

		if (v < 0)
			return -1;
		if (strcmp(m->values[v].name, name) == 0)
			return v;
	}
}

/* Adds a value; returns its index, -1 if the name exists, -2 on OOM. */
static int add_value(lr_model *m, const char *name)
{
	struct priv *pv = m->priv;
	size_t mask, i;
	lr_value *v;

	/* Room: a subgraph takes outer values in after it was sized. */
	if ((size_t)m->nvalues + 1 >= pv->vcap) {
		lr_value *nv = realloc(m->values, 2 * pv->vcap * sizeof(*nv));

		if (nv == NULL)
			return -2;
		m->values = nv;
		pv->vcap *= 2;
	}
	if (2 * ((size_t)m->nvalues + 1) > pv->hash_cap) {
		size_t cap = 2 * pv->hash_cap;
		int *h = malloc(cap * sizeof(int));

		if (h == NULL)
			return -2;
		memset(h, 0xff, cap * sizeof(int));
		for (int k = 0; k < m->nvalues; k++) {
			for (i = name_hash(m->values[k].name) & (cap - 1); h[i] >= 0;
			     i = (i + 1) & (cap - 1))
				;
			h[i] = k;
		}
		free(pv->hash);
		pv->hash = h;
		pv->hash_cap = cap;
	}
	mask = pv->hash_cap - 1;

	for (i = name_hash(name) & mask; pv->hash[i] >= 0; i = (i + 1) & mask)
		if (strcmp(m->values[pv->hash[i]].name, name) == 0)
			return -1;
	v = &m->values[m->nvalues];
	memset(v, 0, sizeof(*v));
	v->name = name;
	v->producer = -1;
	v->ndim = -1;
	pv->hash[i] = m->nvalues;
	return m->nvalues++;
}

/* ---- wire-format depth scan -------------------------------------------- */

static int read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		uint8_t b;

		if (*pos >= len)
			return -1;
		b = p[(*pos)++];
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

/*
 * Walks the message at buf[0..len) as `desc` without recursion. Sub-message
 * fields known to the schema are entered (depth + 1); everything else is
 * skipped by its wire length. Unknown fields are skipped, as protobuf does.
 */
static int scan_depth(const uint8_t *buf, size_t len,
		      const ProtobufCMessageDescriptor *desc, const char *file,
		      lr_msg *msg)
{
	struct frame {
		const ProtobufCMessageDescriptor *desc;
		size_t end;
	} stack[LR_ONNX_MAX_DEPTH + 1];
	int depth = 0;
	size_t pos = 0;

	stack[0].desc = desc;
	stack[0].end = len;
	for (;;) {
		uint64_t key, n;
		unsigned field, wire;

		while (depth > 0 && pos == stack[depth].end)
			depth--;
		if (depth == 0 && pos == len)
			return 0;
		if (read_varint(buf, stack[depth].end, &pos, &key) != 0)
			goto bad;
		field = (unsigned)(key >> 3);
		wire = (unsigned)(key & 7);
		if (field == 0)
			goto bad;
		switch (wire) {
		case 0:
			if (read_varint(buf, stack[depth].end, &pos, &n) != 0)
				goto bad;
			break;
		case 1:
			if (stack[depth].end - pos < 8)
				goto bad;
			pos += 8;
			break;
		case 5:
			if (stack[depth].end - pos < 4)
				goto bad;
			pos += 4;
			break;
		case 2: {
			const ProtobufCFieldDescriptor *fd = NULL;

			if (read_varint(buf, stack[depth].end, &pos, &n) != 0 ||
			    n > stack[depth].end - pos)
				goto bad;
			if (stack[depth].desc != NULL)
				fd = protobuf_c_message_descriptor_get_field(
					stack[depth].desc, field);
			if (fd != NULL && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
				if (depth + 1 > LR_ONNX_MAX_DEPTH)
					return lr_fail(msg, LR_EMODEL,
						       "%s: protobuf messages are nested deeper than %d levels",
						       file, LR_ONNX_MAX_DEPTH);
				depth++;
				stack[depth].desc = fd->descriptor;
				stack[depth].end = pos + (size_t)n;
			} else {
				pos += (size_t)n;
			}
			break;
		}
		default:
			goto bad;
		}
	}
bad:
	return lr_fail(msg, LR_EMODEL,
		       "%s: not an ONNX model (invalid protobuf encoding at byte %zu)",
		       file, pos);
}

/* ---- tensors ----------------------------------------------------------- */

static const char *onnx_type_name(int dt)
{
	static const char *names[] = {
		"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16",
		"INT32", "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE",
		"UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16",
		"FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ",
		"UINT4", "INT4",
	};

	if (dt >= 0 && dt < (int)(sizeof(names) / sizeof(names[0])))
		return names[dt];
	return "unknown";
}

const char *lr_onnx_type_name(int dt)
{
	static const char *names[] = {
		"undefined", "float", "uint8", "int8", "uint16", "int16",
		"int32", "int64", "string", "bool", "float16", "double",
		"uint32", "uint64", "complex64", "complex128", "bfloat16",
		"float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz",
		"uint4", "int4",
	};

	if (dt >= 0 && dt < (int)(sizeof(names) / sizeof(names[0])))
		return names[dt];
	return "an unknown type";
}

/* Bytes per element in raw_data for the types we convert; 0 otherwise. */
static size_t raw_elem_size(int dt)
{
	switch (dt) {
	case 1: case 6: case 12: return 4;
	case 2: case 3: case 9: return 1;
	case 4: case 5: case 10: case 16: return 2;
	case 7: case 11: case 13: return 8;
	default: return 0;
	}
}

static float bf16_to_float(uint16_t h)
{
	uint32_t bits = (uint32_t)h << 16;
	float f;

	memcpy(&f, &bits, sizeof(f));
	return f;
}

/*
 * Copies n elements of raw little-endian bytes of ONNX type dt into t:
 * bytes as they are for the types lowrank holds (bool normalised to 0/1),
 * bfloat16 widened to float32.
 */
static void convert_raw(const uint8_t *src, int dt, int64_t n, lr_tensor *t)
{
	if (dt == 16) {
		float *fo = t->data;

		for (int64_t i = 0; i < n; i++) {
			uint16_t h;

			memcpy(&h, src + 2 * i, 2);
			fo[i] = bf16_to_float(h);
		}
		return;
	}
	memcpy(t->data, src, (size_t)n * lr_dtype_size(t->dtype));
	if (dt == 9)
		for (int64_t i = 0; i < n; i++)
			((uint8_t *)t->data)[i] = src[i] != 0;
}

/* The lr_dtype a TensorProto of ONNX type dt becomes (bfloat16: float). */
static lr_dtype target_dtype(int dt)
{
	return dt == 16 ? LR_DT_FLOAT : lr_dtype_from_onnx(dt);
}

/* 1 when a path has a ".." component. */
static int has_dotdot(const char *p)
{
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return 1;
		p += n;
		if (*p == '/')
			p++;
	}
	return 0;
}

/*
 * Opens `location` below `dir` without following symlinks or leaving the
 * directory. Returns an fd or a negative code with a message.
 */
static int open_beneath(const char *dir, const char *location,
			const char *tname, lr_msg *msg)
{
	int dfd, fd;

	if (location[0] == '\0' || location[0] == '/' || has_dotdot(location))
		return lr_fail(msg, LR_EMODEL,
			       "tensor '%s': external data location '%s' must be a plain relative path inside the model's directory",
			       tname, location);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return lr_fail(msg, LR_EIO, "tensor '%s': cannot open the model directory",
			       tname);
#if defined(__linux__) && defined(SYS_openat2)
	{
		struct open_how how;

		memset(&how, 0, sizeof(how));
		how.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW;
		how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
		fd = (int)syscall(SYS_openat2, dfd, location, &how, sizeof(how));
		if (fd < 0 && errno == ENOSYS)
			fd = openat(dfd, location, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
#else
	fd = openat(dfd, location, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
#endif
	close(dfd);
	if (fd < 0)
		return lr_fail(msg, LR_EMODEL,
			       "tensor '%s': cannot open external data '%s' inside the model's directory (missing, or a symlink)",
			       tname, location);
	return fd;
}

static int read_external(const Onnx__TensorProto *tp, const char *dir,
			 size_t want, uint8_t **out, lr_msg *msg)
{
	const char *tname = str_or_empty(tp->name);
	const char *location = NULL;
	int64_t offset = 0, length = -1;
	struct stat st;
	uint8_t *buf = NULL;
	int fd, rc = 0;
	size_t got = 0;

	*out = NULL;
	if (dir == NULL)
		return lr_fail(msg, LR_EMODEL,
			       "tensor '%s': external data is not allowed here (no model directory)",
			       tname);
	for (size_t i = 0; i < tp->n_external_data; i++) {
		const char *k = str_or_empty(tp->external_data[i]->key);
		const char *v = str_or_empty(tp->external_data[i]->value);
		char *end;

		if (strcmp(k, "location") == 0) {
			location = v;
		} else if (strcmp(k, "offset") == 0 || strcmp(k, "length") == 0) {
			long long x;

			errno = 0;
			x = strtoll(v, &end, 10);
			if (errno || *end || end == v || x < 0)
				return lr_fail(msg, LR_EMODEL,
					       "tensor '%s': external data %s '%s' is not a non-negative integer",
					       tname, k, v);
			if (k[0] == 'o')
				offset = x;
			else
				length = x;
		} else if (strcmp(k, "checksum") != 0) {
			return lr_fail(msg, LR_EMODEL,
				       "tensor '%s': unknown external data key '%s'", tname, k);
		}
	}
	if (location == NULL)
		return lr_fail(msg, LR_EMODEL, "tensor '%s': external data has no location",
			       tname);
	if (length >= 0 && (uint64_t)length != want)
		return lr_fail(msg, LR_EMODEL,
			       "tensor '%s': external data length %lld does not match its shape (%zu bytes)",
			       tname, (long long)length, want);
	fd = open_beneath(dir, location, tname, msg);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = lr_fail(msg, LR_EMODEL, "tensor '%s': external data '%s' is not a regular file",
			     tname, location);
		goto out;
	}
	if ((uint64_t)offset > (uint64_t)st.st_size ||
	    want > (uint64_t)st.st_size - (uint64_t)offset) {
		rc = lr_fail(msg, LR_EMODEL,
			     "tensor '%s': external data '%s' is too short (%lld bytes, need %zu at offset %lld)",
			     tname, location, (long long)st.st_size, want, (long long)offset);
		goto out;
	}
	buf = malloc(want ? want : 1);
	if (buf == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	while (got < want) {
		ssize_t r = pread(fd, buf + got, want - got, (off_t)(offset + (int64_t)got));

		if (r <= 0) {
			rc = lr_fail(msg, LR_EIO, "tensor '%s': reading external data '%s' failed",
				     tname, location);
			goto out;
		}
		got += (size_t)r;
	}
	*out = buf;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

/*
 * A STRING tensor of shape dims (nelem elements, validated by the
 * caller): string_data only (ONNX has no raw form for strings).
 */
static int strings_from_proto(const Onnx__TensorProto *tp, const int64_t *dims, int64_t nelem,
			      lr_tensor **out, lr_msg *msg)
{
	const char *tname = str_or_empty(tp->name);
	const char **sv;
	size_t *lv;
	int rc;

	if ((tp->has_raw_data && tp->raw_data.len > 0) || (tp->has_data_location &&
	    tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL))
		return lr_fail(msg, LR_EMODEL, "tensor '%s' of strings must hold them in string_data",
			       tname);
	if (tp->n_string_data != (size_t)nelem)
		return lr_fail(msg, LR_EMODEL,
			       "tensor '%s': string_data has %zu values but its shape %s needs %lld",
			       tname, tp->n_string_data,
			       lr_shape_str((int)tp->n_dims, dims, (char[160]){0}, 160),
			       (long long)nelem);
	sv = calloc((size_t)nelem + 1, sizeof(*sv));
	lv = calloc((size_t)nelem + 1, sizeof(*lv));
	if (sv == NULL || lv == NULL) {
		free(sv);
		free(lv);
		return lr_fail(msg, LR_ENOMEM, "tensor '%s': out of memory", tname);
	}
	for (int64_t i = 0; i < nelem; i++) {
		sv[i] = (const char *)tp->string_data[i].data;
		lv[i] = tp->string_data[i].len;
	}
	rc = lr_tensor_create_strings(out, (int)tp->n_dims, dims, sv, lv);
	free(sv);
	free(lv);
	if (rc != 0)
		return lr_fail(msg, rc, "tensor '%s': out of memory for its strings", tname);
	return 0;
}

int lr_tensor_from_proto(const Onnx__TensorProto *tp, const char *dir,
			 lr_tensor **out, lr_msg *msg)
{
	const char *tname = str_or_empty(tp->name);
	int dt = tp->has_data_type ? tp->data_type : 0;
	size_t esz = raw_elem_size(dt);
	int64_t dims[LR_MAX_DIMS], nelem;
	size_t want;
	uint8_t *ext = NULL;
	lr_tensor *t = NULL;
	lr_dtype tdt;
	int rc;

	*out = NULL;
	if (esz == 0 && dt != 8)
		return lr_fail(msg, LR_EUNSUPPORTED,
			       "tensor '%s' has data type %s (%d), which lowrank does not support",
			       tname, onnx_type_name(dt), dt);
	if (tp->n_dims > LR_MAX_DIMS)
		return lr_fail(msg, LR_EUNSUPPORTED, "tensor '%s' has rank %zu; at most %d is supported",
			       tname, tp->n_dims, LR_MAX_DIMS);
	for (size_t i = 0; i < tp->n_dims; i++) {
		if (tp->dims[i] < 0)
			return lr_fail(msg, LR_EMODEL, "tensor '%s': dimension %zu is negative (%lld)",
				       tname, i, (long long)tp->dims[i]);
		dims[i] = tp->dims[i];
	}
	if (lr_shape_nelem((int)tp->n_dims, dims, &nelem) != 0 ||
	    lr_mul_size((size_t)nelem, esz, &want) != 0 || want > ((size_t)1 << 40))
		return lr_fail(msg, LR_EMODEL, "tensor '%s': its shape is too large", tname);
	if (tp->segment != NULL)
		return lr_fail(msg, LR_EUNSUPPORTED, "tensor '%s' is segmented, which is not supported",
			       tname);
	if (dt == 8)
		return strings_from_proto(tp, dims, nelem, out, msg);
	tdt = target_dtype(dt);

	if (tp->has_data_location &&
	    tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
		rc = read_external(tp, dir, want, &ext, msg);
		if (rc != 0)
			return rc;
		rc = lr_tensor_create(&t, tdt, (int)tp->n_dims, dims, 1);
		if (rc != 0)
			goto fail;
		convert_raw(ext, dt, nelem, t);
		free(ext);
		*out = t;
		return 0;
	}

	if (tp->has_raw_data && tp->raw_data.len > 0) {
		if (tp->raw_data.len != want)
			return lr_fail(msg, LR_EMODEL,
				       "tensor '%s': raw_data holds %zu bytes but shape %s of %s needs %zu",
				       tname, tp->raw_data.len,
				       lr_shape_str((int)tp->n_dims, dims, (char[160]){0}, 160),
				       onnx_type_name(dt), want);
		if (dt != 16 && dt != 9 && nelem > 0 &&
		    ((uintptr_t)tp->raw_data.data % esz) == 0)
			return lr_tensor_wrap(out, tdt, (int)tp->n_dims, dims,
					      tp->raw_data.data);
		rc = lr_tensor_create(&t, tdt, (int)tp->n_dims, dims, 1);
		if (rc != 0)
			goto fail;
		convert_raw(tp->raw_data.data, dt, nelem, t);
		*out = t;
		return 0;
	}

	/* Typed fields. */
	{
		size_t have;
		const char *field;

		switch (dt) {
		case 1: have = tp->n_float_data; field = "float_data"; break;
		case 11: have = tp->n_double_data; field = "double_data"; break;
		case 7: have = tp->n_int64_data; field = "int64_data"; break;
		case 12: case 13: have = tp->n_uint64_data; field = "uint64_data"; break;
		default: have = tp->n_int32_data; field = "int32_data"; break;
		}
		if (have != (size_t)nelem)
			return lr_fail(msg, LR_EMODEL,
				       "tensor '%s': %s has %zu values but its shape %s needs %lld",
				       tname, field, have,
				       lr_shape_str((int)tp->n_dims, dims, (char[160]){0}, 160),
				       (long long)nelem);
		if (dt == 1 && nelem > 0)
			return lr_tensor_wrap(out, tdt, (int)tp->n_dims, dims, tp->float_data);
		if (dt == 7 && nelem > 0)
			return lr_tensor_wrap(out, tdt, (int)tp->n_dims, dims, tp->int64_data);
		rc = lr_tensor_create(&t, tdt, (int)tp->n_dims, dims, 1);
		if (rc != 0)
			goto fail;
		for (int64_t i = 0; i < nelem; i++) {
			void *o = t->data;

			switch (dt) {
			case 11: ((double *)o)[i] = tp->double_data[i]; break;
			case 10: ((uint16_t *)o)[i] = (uint16_t)tp->int32_data[i]; break;
			case 16: ((float *)o)[i] = bf16_to_float((uint16_t)tp->int32_data[i]); break;
			case 12: ((uint32_t *)o)[i] = (uint32_t)tp->uint64_data[i]; break;
			case 13: ((uint64_t *)o)[i] = tp->uint64_data[i]; break;
			case 9: ((uint8_t *)o)[i] = tp->int32_data[i] != 0; break;
			case 2: case 3: ((uint8_t *)o)[i] = (uint8_t)tp->int32_data[i]; break;
			case 4: case 5: ((uint16_t *)o)[i] = (uint16_t)tp->int32_data[i]; break;
			case 6: ((int32_t *)o)[i] = tp->int32_data[i]; break;
			default: break;
			}
		}
		*out = t;
		return 0;
	}
fail:
	free(ext);
	lr_tensor_free(t);
	if (rc == LR_ENOMEM)
		return lr_fail(msg, rc, "tensor '%s': out of memory", tname);
	return lr_fail(msg, rc, "tensor '%s': invalid shape", tname);
}

/* ---- attributes -------------------------------------------------------- */

const Onnx__AttributeProto *lr_node_attr(const lr_node *n, const char *name)
{
	const Onnx__NodeProto *p = n->proto;

	for (size_t i = 0; i < p->n_attribute; i++)
		if (p->attribute[i]->name && strcmp(p->attribute[i]->name, name) == 0)
			return p->attribute[i];
	return NULL;
}

int64_t lr_node_attr_int(const lr_node *n, const char *name, int64_t def)
{
	const Onnx__AttributeProto *a = lr_node_attr(n, name);

	return (a && a->has_i) ? a->i : def;
}

float lr_node_attr_float(const lr_node *n, const char *name, float def)
{
	const Onnx__AttributeProto *a = lr_node_attr(n, name);

	return (a && a->has_f) ? a->f : def;
}

const char *lr_node_attr_str(const lr_node *n, const char *name,
			     const char *def, char *buf, size_t len)
{
	const Onnx__AttributeProto *a = lr_node_attr(n, name);
	size_t k;

	if (a == NULL || !a->has_s || len == 0)
		return def;
	k = a->s.len < len - 1 ? a->s.len : len - 1;
	if (k > 0)
		memcpy(buf, a->s.data, k);
	buf[k] = '\0';
	return buf;
}

int lr_node_attr_ints(const lr_node *n, const char *name, int64_t *buf,
		      int max, int *count)
{
	const Onnx__AttributeProto *a = lr_node_attr(n, name);

	*count = 0;
	if (a == NULL)
		return 1;
	if (a->n_ints > (size_t)max)
		return LR_EMODEL;
	for (size_t i = 0; i < a->n_ints; i++)
		buf[i] = a->ints[i];
	*count = (int)a->n_ints;
	return 0;
}

/* ---- graph index ------------------------------------------------------- */

static void read_value_info(lr_value *v, const Onnx__ValueInfoProto *vi)
{
	const Onnx__TypeProto *tp = vi->type;
	const Onnx__TensorShapeProto *sh;

	if (tp == NULL || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
	    tp->tensor_type == NULL)
		return;
	if (tp->tensor_type->has_elem_type)
		v->elem_type = tp->tensor_type->elem_type;
	sh = tp->tensor_type->shape;
	if (sh == NULL || sh->n_dim > LR_MAX_DIMS)
		return;
	v->ndim = (int)sh->n_dim;
	for (size_t i = 0; i < sh->n_dim; i++)
		v->dims[i] = (sh->dim[i]->value_case ==
				      ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
			      sh->dim[i]->dim_value >= 0)
				     ? sh->dim[i]->dim_value
				     : -1;
}

static void node_set_name(lr_node *n, int index)
{
	const Onnx__NodeProto *p = n->proto;

	if (p->name != NULL && p->name[0] != '\0') {
		n->name = p->name;
		return;
	}
	if (p->n_output > 0 && p->output[0] != NULL && p->output[0][0] != '\0')
		snprintf(n->name_buf, sizeof(n->name_buf), "#%d producing '%s'",
			 index, p->output[0]);
	else
		snprintf(n->name_buf, sizeof(n->name_buf), "#%d", index);
	n->name = n->name_buf;
}

/* Appends "Op (nodes: a, b, ...)" entries for unsupported operators. */
static int check_ops(lr_model *m, lr_node *raw, int nraw, lr_msg *msg)
{
	char text[900];
	size_t off = 0;
	int nbad = 0;
	char *seen = calloc((size_t)nraw + 1, 1);

	if (seen == NULL)
		return LR_ENOMEM;
	text[0] = '\0';
	for (int i = 0; i < nraw; i++) {
		const char *op = raw[i].op_type;
		const char *dom = str_or_empty(raw[i].proto->domain);
		int shown = 0, count = 0;

		if (seen[i] || raw[i].op != NULL)
			continue;
		nbad++;
		if (off < sizeof(text))
			off += (size_t)snprintf(text + off, sizeof(text) - off, "%s%s%s%s (nodes: ",
						nbad > 1 ? "; " : "", dom[0] ? dom : "",
						dom[0] ? "." : "", op);
		for (int j = i; j < nraw; j++) {
			if (raw[j].op != NULL || strcmp(raw[j].op_type, op) != 0 ||
			    strcmp(str_or_empty(raw[j].proto->domain), dom) != 0)
				continue;
			seen[j] = 1;
			count++;
			if (shown < 4 && off < sizeof(text)) {
				off += (size_t)snprintf(text + off, sizeof(text) - off, "%s'%s'",
							shown ? ", " : "", raw[j].name);
				shown++;
			}
		}
		if (off < sizeof(text))
			off += (size_t)snprintf(text + off, sizeof(text) - off, "%s)",
						count > shown ? ", ..." : "");
	}
	free(seen);
	(void)m;
	if (nbad == 0)
		return 0;
	return lr_fail(msg, LR_EUNSUPPORTED, "unsupported operator%s: %s",
		       nbad > 1 ? "s" : "", text);
}

/*
 * Subgraph m reads `name`, which it does not define: the value of that
 * name in the nearest enclosing scope (which may itself take it from its
 * own enclosing scope), added to m as an outer input. Returns its index
 * in m, -1 when no scope defines it, -2 when out of memory.
 */
static int import_outer(lr_model *m, const char *name)
{
	int v, pv, *ins, *from;

	if (m->parent == NULL)
		return -1;
	pv = lr_model_find_value(m->parent, name);
	if (pv < 0)
		pv = import_outer(m->parent, name);
	if (pv < 0)
		return pv;
	ins = realloc(m->inputs, ((size_t)m->ninputs + 2) * sizeof(int));
	if (ins == NULL)
		return -2;
	m->inputs = ins;
	from = realloc(m->outer_from, ((size_t)m->nouter + 2) * sizeof(int));
	if (from == NULL)
		return -2;
	m->outer_from = from;
	v = add_value(m, name);
	if (v < 0)
		return -2;
	m->values[v].graph_input = 1;
	m->values[v].elem_type = m->parent->values[pv].elem_type;
	m->inputs[m->ninputs++] = v;
	m->outer_from[m->nouter++] = -1; /* set by build_subgraphs */
	return v;
}

static int build_index(lr_model *m, const lr_load_opts *opts, lr_msg *msg);

static void free_subgraphs(lr_node *n)
{
	for (int i = 0; i < n->nsub; i++)
		lr_model_free(n->sub[i]);
	free(n->sub);
	n->sub = NULL;
	n->nsub = 0;
}

const lr_model *lr_node_subgraph(const lr_node *n, const char *attr)
{
	const Onnx__AttributeProto *a = lr_node_attr(n, attr);

	for (int i = 0; a != NULL && i < n->nsub; i++)
		if (n->sub[i]->graph == a->g)
			return n->sub[i];
	return NULL;
}

/*
 * Indexes the GRAPH attributes of node n of m as subgraph models, then
 * gives n a hidden input for every outer value they read (each once, in
 * the order first read), and each subgraph the map to them.
 */
static int build_subgraphs(lr_model *m, lr_node *n, const lr_load_opts *opts, lr_msg *msg)
{
	struct priv *pv = m->priv;
	const Onnx__NodeProto *p = n->proto;
	int depth = 0;

	for (const lr_model *q = m; q->parent != NULL; q = q->parent)
		depth++;
	for (size_t a = 0; a < p->n_attribute; a++) {
		const Onnx__AttributeProto *at = p->attribute[a];
		lr_model *s, **subs;
		struct priv *sp;
		size_t len;
		int rc;

		if (at->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH || at->g == NULL)
			continue;
		if (depth >= 16)
			return lr_fail(msg, LR_ELIMIT, "%s: node '%s' (%s): subgraphs nest deeper than 16",
				       pv->file, n->name, n->op_type);
		subs = realloc(n->sub, ((size_t)n->nsub + 1) * sizeof(*subs));
		if (subs == NULL)
			return LR_ENOMEM;
		n->sub = subs;
		s = calloc(1, sizeof(*s));
		sp = calloc(1, sizeof(*sp));
		if (s == NULL || sp == NULL) {
			free(s);
			free(sp);
			return LR_ENOMEM;
		}
		s->priv = sp;
		s->proto = m->proto;
		s->graph = at->g;
		s->parent = m;
		s->graph_attr = str_or_empty(at->name);
		s->ir_version = m->ir_version;
		s->opset = m->opset;
		n->sub[n->nsub++] = s;
		/* Messages name the file, then the chain of subgraphs. */
		len = strlen(pv->file) + strlen(s->graph_attr) + strlen(n->name) +
		      strlen(n->op_type) + 40;
		if ((sp->where = malloc(len)) == NULL ||
		    (pv->dir != NULL && (sp->dir = strdup(pv->dir)) == NULL))
			return LR_ENOMEM;
		snprintf(sp->where, len, "%s: subgraph '%s' of node '%s' (%s)", pv->file,
			 s->graph_attr, n->name, n->op_type);
		sp->file = sp->where;
		rc = build_index(s, opts, msg);
		if (rc != 0)
			return rc;
	}
	/* Hidden inputs: the subgraphs' outer values, as values of m. */
	for (int i = 0; i < n->nsub; i++) {
		lr_model *s = n->sub[i];

		for (int j = 0; j < s->nouter; j++) {
			const char *name = s->values[s->inputs[s->ninputs - s->nouter + j]].name;
			int v = lr_model_find_value(m, name), h;
			int *in;

			if (v < 0)
				return LR_EMODEL; /* import_outer made it exist */
			for (h = 0; h < n->nhidden; h++)
				if (n->in[n->nin - n->nhidden + h] == v)
					break;
			if (h == n->nhidden) {
				in = realloc(n->in, ((size_t)n->nin + 2) * sizeof(int));
				if (in == NULL)
					return LR_ENOMEM;
				n->in = in;
				n->in[n->nin++] = v;
				n->nhidden++;
				m->values[v].nconsumers++;
			}
			s->outer_from[j] = h;
		}
	}
	return 0;
}

/*
 * The ready nodes of the topological sort: a binary min-heap of file
 * indices, so that the sort takes the ready node first in the file. With
 * a first-in first-out queue it ran branches breadth first: ResNet-50's
 * downsample Conv right after each stage's first 1x1, between that 1x1
 * writing 1.6 MB and the 3x3 reading it, where ONNX Runtime runs the
 * file's order. The solver times layers inside the whole model to price
 * them as they run where the model is deployed, so the order should be
 * the same (whole models: no change beyond noise; docs/benchmarks.md).
 */
static void heap_push(int *h, int *n, int v)
{
	int i = (*n)++;

	while (i > 0 && h[(i - 1) / 2] > v) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = v;
}

static int heap_pop(int *h, int *n)
{
	int top = h[0], v = h[--*n], i = 0;

	for (;;) {
		int c = 2 * i + 1;

		if (c >= *n)
			break;
		if (c + 1 < *n && h[c + 1] < h[c])
			c++;
		if (h[c] >= v)
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = v;
	return top;
}

static int build_index(lr_model *m, const lr_load_opts *opts, lr_msg *msg)
{
	struct priv *pv = m->priv;
	const Onnx__GraphProto *g = m->graph;
	size_t cap;
	lr_node *raw = NULL;
	int *indeg = NULL, *queue = NULL, *order_of = NULL;
	int nraw, rc = 0, max_nodes;
	size_t nvals;

	max_nodes = opts && opts->max_nodes > 0 ? opts->max_nodes : DEFAULT_MAX_NODES;
	if (g->n_node > (size_t)max_nodes)
		return lr_fail(msg, LR_ELIMIT, "%s: the graph has %zu nodes; the limit is %d",
			       pv->file, g->n_node, max_nodes);
	if (g->n_initializer > MAX_INITIALIZERS)
		return lr_fail(msg, LR_ELIMIT, "%s: the graph has too many initializers (%zu)",
			       pv->file, g->n_initializer);
	nraw = (int)g->n_node;
	nvals = g->n_initializer + g->n_input;
	for (size_t i = 0; i < g->n_node; i++) {
		if (g->node[i]->n_output > 4096 || g->node[i]->n_input > 4096)
			return lr_fail(msg, LR_ELIMIT, "%s: node #%zu has too many inputs or outputs",
				       pv->file, i);
		nvals += g->node[i]->n_output;
	}
	m->values = calloc(nvals + 2, sizeof(lr_value));
	pv->vcap = nvals + 2;
	for (cap = 16; cap < 2 * (nvals + 2); cap *= 2)
		;
	pv->hash = malloc(cap * sizeof(int));
	pv->hash_cap = cap;
	raw = calloc((size_t)nraw + 1, sizeof(lr_node));
	if (m->values == NULL || pv->hash == NULL || raw == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	memset(pv->hash, 0xff, cap * sizeof(int));

	/* Initializers. */
	for (size_t i = 0; i < g->n_initializer; i++) {
		Onnx__TensorProto *tp = g->initializer[i];
		const char *name = str_or_empty(tp->name);
		int v;

		if (name[0] == '\0') {
			rc = lr_fail(msg, LR_EMODEL, "%s: initializer #%zu has no name", pv->file, i);
			goto out;
		}
		v = add_value(m, name);
		if (v < 0) {
			rc = lr_fail(msg, LR_EMODEL, "%s: initializer '%s' is defined twice",
				     pv->file, name);
			goto out;
		}
		if (tp->has_data_type && tp->data_type == 8) {
			/* Strings flow only from graph inputs and nodes. */
			rc = lr_fail(msg, LR_EUNSUPPORTED,
				     "%s: tensor '%s' has data type STRING (8); lowrank does not take string initializers",
				     pv->file, name);
			goto out;
		}
		rc = lr_tensor_from_proto(tp, pv->dir, &m->values[v].init, msg);
		if (rc != 0) {
			lr_msg_prefix(msg, "%s", pv->file);
			goto out;
		}
		m->values[v].elem_type = tp->data_type;
	}
	/* Graph inputs (an input that is also an initializer has a default). */
	m->inputs = calloc(g->n_input + 1, sizeof(int));
	m->outputs = calloc(g->n_output + 1, sizeof(int));
	if (m->inputs == NULL || m->outputs == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < g->n_input; i++) {
		const char *name = str_or_empty(g->input[i]->name);
		int v = lr_model_find_value(m, name);

		if (name[0] == '\0') {
			rc = lr_fail(msg, LR_EMODEL, "%s: graph input #%zu has no name", pv->file, i);
			goto out;
		}
		if (v >= 0 && m->values[v].init != NULL)
			continue;
		if (v >= 0) {
			rc = lr_fail(msg, LR_EMODEL, "%s: graph input '%s' is declared twice",
				     pv->file, name);
			goto out;
		}
		v = add_value(m, name);
		m->values[v].graph_input = 1;
		read_value_info(&m->values[v], g->input[i]);
		m->inputs[m->ninputs++] = v;
	}
	/* Node outputs. */
	for (int i = 0; i < nraw; i++) {
		Onnx__NodeProto *p = g->node[i];
		lr_node *n = &raw[i];

		n->proto = p;
		n->proto_index = i;
		n->op_type = str_or_empty(p->op_type);
		node_set_name(n, i);
		if (n->op_type[0] == '\0') {
			rc = lr_fail(msg, LR_EMODEL, "%s: node '%s' has no op_type", pv->file, n->name);
			goto out;
		}
		n->nin = (int)p->n_input;
		n->nout = (int)p->n_output;
		n->in = calloc((size_t)n->nin + 1, sizeof(int));
		n->out = calloc((size_t)n->nout + 1, sizeof(int));
		if (n->in == NULL || n->out == NULL) {
			rc = LR_ENOMEM;
			goto out;
		}
		for (int k = 0; k < n->nout; k++) {
			const char *name = str_or_empty(p->output[k]);
			int v;

			n->out[k] = -1;
			if (name[0] == '\0')
				continue;
			v = add_value(m, name);
			if (v < 0) {
				int prev = lr_model_find_value(m, name);

				rc = lr_fail(msg, LR_EMODEL,
					     "%s: node '%s' (%s): output '%s' is already defined%s%s%s",
					     pv->file, n->name, n->op_type, name,
					     m->values[prev].producer >= 0 ? " by node '" : " as an initializer or graph input",
					     m->values[prev].producer >= 0 ? raw[m->values[prev].producer].name : "",
					     m->values[prev].producer >= 0 ? "'" : "");
				goto out;
			}
			m->values[v].producer = i;
			n->out[k] = v;
		}
		n->op = lr_op_find(p->domain, n->op_type);
	}
	/* Node inputs. */
	for (int i = 0; i < nraw; i++) {
		lr_node *n = &raw[i];

		for (int k = 0; k < n->nin; k++) {
			const char *name = str_or_empty(n->proto->input[k]);
			int v;

			n->in[k] = -1;
			if (name[0] == '\0')
				continue;
			v = lr_model_find_value(m, name);
			if (v < 0)
				v = import_outer(m, name);
			if (v == -2) {
				rc = LR_ENOMEM;
				goto out;
			}
			if (v < 0) {
				rc = lr_fail(msg, LR_EMODEL,
					     "%s: node '%s' (%s): input '%s' is not produced by any node, initializer or graph input%s",
					     pv->file, n->name, n->op_type, name,
					     m->parent != NULL ? " (of this graph or an enclosing one)" : "");
				goto out;
			}
			n->in[k] = v;
			m->values[v].nconsumers++;
		}
	}
	/* Graph outputs. */
	for (size_t i = 0; i < g->n_output; i++) {
		const char *name = str_or_empty(g->output[i]->name);
		int v = lr_model_find_value(m, name);

		if (v < 0)
			v = import_outer(m, name);
		if (v == -2) {
			rc = LR_ENOMEM;
			goto out;
		}
		if (v < 0) {
			rc = lr_fail(msg, LR_EMODEL,
				     "%s: graph output '%s' is not produced by any node, initializer or input",
				     pv->file, name);
			goto out;
		}
		m->values[v].graph_output = 1;
		if (m->values[v].elem_type == 0)
			read_value_info(&m->values[v], g->output[i]);
		m->outputs[m->noutputs++] = v;
	}
	for (size_t i = 0; i < g->n_value_info; i++) {
		int v = lr_model_find_value(m, str_or_empty(g->value_info[i]->name));

		if (v >= 0 && m->values[v].ndim < 0 && m->values[v].init == NULL)
			read_value_info(&m->values[v], g->value_info[i]);
	}

	/* Subgraphs, and the outer values they read as hidden inputs. */
	for (int i = 0; i < nraw; i++) {
		rc = build_subgraphs(m, &raw[i], opts, msg);
		if (rc != 0)
			goto out;
	}

	/* Topological order (Kahn), the file's where it is one. */
	indeg = calloc((size_t)nraw + 1, sizeof(int));
	queue = calloc((size_t)nraw + 1, sizeof(int));
	order_of = calloc((size_t)nraw + 1, sizeof(int));
	m->nodes = calloc((size_t)nraw + 1, sizeof(lr_node));
	if (indeg == NULL || queue == NULL || order_of == NULL || m->nodes == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	for (int i = 0; i < nraw; i++)
		for (int k = 0; k < raw[i].nin; k++)
			if (raw[i].in[k] >= 0 && m->values[raw[i].in[k]].producer >= 0)
				indeg[i]++;
	{
		int nready = 0, done = 0;
		size_t nocc = 0;
		int *start = calloc((size_t)m->nvalues + 2, sizeof(int));
		int *occ;

		/* CSR of consumers: occ[start[v] .. start[v+1]) are node indices. */
		if (start == NULL) {
			rc = LR_ENOMEM;
			goto out;
		}
		for (int i = 0; i < nraw; i++)
			for (int k = 0; k < raw[i].nin; k++)
				if (raw[i].in[k] >= 0) {
					start[raw[i].in[k] + 1]++;
					nocc++;
				}
		for (int v = 0; v < m->nvalues; v++)
			start[v + 1] += start[v];
		occ = malloc((nocc + 1) * sizeof(int));
		if (occ == NULL) {
			free(start);
			rc = LR_ENOMEM;
			goto out;
		}
		{
			int *cur = calloc((size_t)m->nvalues + 1, sizeof(int));

			if (cur == NULL) {
				free(start);
				free(occ);
				rc = LR_ENOMEM;
				goto out;
			}
			for (int i = 0; i < nraw; i++)
				for (int k = 0; k < raw[i].nin; k++) {
					int v = raw[i].in[k];

					if (v >= 0)
						occ[start[v] + cur[v]++] = i;
				}
			free(cur);
		}
		for (int i = 0; i < nraw; i++)
			if (indeg[i] == 0)
				heap_push(queue, &nready, i);
		while (nready > 0) {
			int i = heap_pop(queue, &nready);

			order_of[i] = done++;
			for (int k = 0; k < raw[i].nout; k++) {
				int v = raw[i].out[k];

				if (v < 0)
					continue;
				for (int q = start[v]; q < start[v + 1]; q++)
					if (--indeg[occ[q]] == 0)
						heap_push(queue, &nready, occ[q]);
			}
		}
		free(start);
		free(occ);
		if (done < nraw) {
			for (int i = 0; i < nraw; i++)
				if (indeg[i] > 0) {
					rc = lr_fail(msg, LR_EMODEL,
						     "%s: the graph has a cycle through node '%s' (%s)",
						     pv->file, raw[i].name, raw[i].op_type);
					goto out;
				}
		}
	}
	for (int i = 0; i < nraw; i++) {
		int pos = order_of[i];

		m->nodes[pos] = raw[i];
		if (raw[i].name == raw[i].name_buf)
			m->nodes[pos].name = m->nodes[pos].name_buf;
		raw[i].in = raw[i].out = NULL; /* moved */
		raw[i].sub = NULL;
		raw[i].nsub = 0;
	}
	m->nnodes = nraw;
	for (int v = 0; v < m->nvalues; v++)
		if (m->values[v].producer >= 0)
			m->values[v].producer = order_of[m->values[v].producer];

	if (!(opts && opts->skip_op_check)) {
		rc = check_ops(m, m->nodes, m->nnodes, msg);
		if (rc != 0) {
			lr_msg_prefix(msg, "%s", pv->file);
			goto out;
		}
		for (int i = 0; i < m->nnodes; i++) {
			const lr_node *n = &m->nodes[i];

			if (n->nin - n->nhidden < n->op->min_in ||
			    n->nin - n->nhidden > n->op->max_in ||
			    n->nout < n->op->min_out || n->nout > n->op->max_out) {
				rc = lr_fail(msg, LR_EMODEL,
					     "%s: node '%s' (%s) has %d inputs and %d outputs; expected %d..%d inputs and %d..%d outputs",
					     pv->file, n->name, n->op_type, n->nin - n->nhidden, n->nout,
					     n->op->min_in, n->op->max_in, n->op->min_out,
					     n->op->max_out);
				goto out;
			}
			for (int k = 0; k < n->op->min_in; k++)
				if (n->in[k] < 0) {
					rc = lr_fail(msg, LR_EMODEL,
						     "%s: node '%s' (%s): required input %d is omitted (empty name)",
						     pv->file, n->name, n->op_type, k);
					goto out;
				}
		}
	}
out:
	if (raw != NULL) {
		for (int i = 0; i < nraw; i++) {
			free(raw[i].in);
			free(raw[i].out);
			free_subgraphs(&raw[i]);
		}
		free(raw);
	}
	free(indeg);
	free(queue);
	free(order_of);
	return rc;
}

/* ---- load / free / save ------------------------------------------------ */

/* Turns a copy of a path into its directory ("." when it has none). */
static void to_dirname(char *path)
{
	char *slash = strrchr(path, '/');

	if (slash == NULL)
		strcpy(path, ".");
	else if (slash == path)
		path[1] = '\0';
	else
		*slash = '\0';
}

static int load_common(const uint8_t *buf, size_t len, const char *file,
		       const char *dir, const lr_load_opts *opts,
		       lr_model **out, lr_msg *msg)
{
	lr_model *m;
	struct priv *pv;
	int rc;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	pv = calloc(1, sizeof(*pv));
	if (m == NULL || pv == NULL) {
		free(m);
		free(pv);
		return LR_ENOMEM;
	}
	m->priv = pv;
	pv->file = file;
	if (dir != NULL && (pv->dir = strdup(dir)) == NULL) {
		rc = LR_ENOMEM;
		goto fail;
	}
	pv->budget.limit = opts && opts->budget_bytes
				   ? opts->budget_bytes
				   : (len > SIZE_MAX / 4 ? SIZE_MAX / 2 : 2 * len + ((size_t)64 << 20));
	pv->alloc.alloc = budget_alloc;
	pv->alloc.free = budget_free;
	pv->alloc.allocator_data = &pv->budget;

	rc = scan_depth(buf, len, &onnx__model_proto__descriptor, file, msg);
	if (rc != 0)
		goto fail;
	m->proto = onnx__model_proto__unpack(&pv->alloc, len, buf);
	if (m->proto == NULL) {
		if (pv->budget.exceeded)
			rc = lr_fail(msg, LR_ELIMIT,
				     "%s: parsing needs more than the memory budget of %zu bytes",
				     file, pv->budget.limit);
		else
			rc = lr_fail(msg, LR_EMODEL,
				     "%s: not an ONNX model (the protobuf does not decode as onnx.ModelProto)",
				     file);
		goto fail;
	}
	if (m->proto->graph == NULL) {
		rc = lr_fail(msg, LR_EMODEL, "%s: the model has no graph", file);
		goto fail;
	}
	m->ir_version = m->proto->has_ir_version ? m->proto->ir_version : 0;
	if (m->ir_version < 3) {
		rc = lr_fail(msg, LR_EUNSUPPORTED,
			     "%s: IR version %lld is not supported (need 3 or newer)", file,
			     (long long)m->ir_version);
		goto fail;
	}
	m->opset = -1;
	for (size_t i = 0; i < m->proto->n_opset_import; i++) {
		const Onnx__OperatorSetIdProto *os = m->proto->opset_import[i];
		const char *d = str_or_empty(os->domain);

		if (d[0] == '\0' || strcmp(d, "ai.onnx") == 0)
			m->opset = os->has_version ? os->version : 1;
	}
	if (m->opset < 0) {
		/* Valid ONNX (e.g. only a training or vendor domain), not ours. */
		rc = lr_fail(msg, m->proto->n_opset_import ? LR_EUNSUPPORTED : LR_EMODEL,
			     "%s: the model imports no default-domain (ai.onnx) opset%s", file,
			     m->proto->n_opset_import ? "; only other operator domains" : "");
		goto fail;
	}
	if (m->opset < LR_ONNX_MIN_OPSET || m->opset > LR_ONNX_MAX_OPSET) {
		rc = lr_fail(msg, LR_EUNSUPPORTED,
			     "%s: default-domain opset %lld is not supported (supported: %d to %d)",
			     file, (long long)m->opset, LR_ONNX_MIN_OPSET, LR_ONNX_MAX_OPSET);
		goto fail;
	}
	m->graph = m->proto->graph;
	rc = build_index(m, opts, msg);
	if (rc != 0)
		goto fail;
	*out = m;
	return 0;
fail:
	lr_model_free(m);
	return rc;
}

int lr_model_load_mem(const void *buf, size_t len, const char *name,
		      const lr_load_opts *opts, lr_model **out, lr_msg *msg)
{
	return load_common(buf, len, name ? name : "model", NULL, opts, out, msg);
}

int lr_model_load(const char *path, const lr_load_opts *opts, lr_model **out,
		  lr_msg *msg)
{
	struct stat st;
	void *map = MAP_FAILED;
	char *dir = NULL;
	const char *base;
	int fd, rc;

	*out = NULL;
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return lr_fail(msg, LR_EIO, "%s: cannot open: %s", base, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return lr_fail(msg, LR_EIO, "%s: not a regular file", base);
	}
	if (st.st_size == 0) {
		close(fd);
		return lr_fail(msg, LR_EMODEL, "%s: the file is empty", base);
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return lr_fail(msg, LR_EIO, "%s: cannot map: %s", base, strerror(errno));
	dir = strdup(path);
	if (dir == NULL) {
		munmap(map, (size_t)st.st_size);
		return LR_ENOMEM;
	}
	to_dirname(dir);
	rc = load_common(map, (size_t)st.st_size, base, dir, opts, out, msg);
	munmap(map, (size_t)st.st_size);
	free(dir);
	return rc;
}

void lr_model_free(lr_model *m)
{
	struct priv *pv;

	if (m == NULL)
		return;
	pv = m->priv;
	for (int i = 0; i < m->nvalues; i++)
		lr_tensor_free(m->values[i].init);
	for (int i = 0; i < m->nnodes; i++) {
		free(m->nodes[i].in);
		free(m->nodes[i].out);
		free_subgraphs(&m->nodes[i]);
	}
	free(m->values);
	free(m->nodes);
	free(m->inputs);
	free(m->outputs);
	free(m->outer_from);
	if (m->proto != NULL && m->parent == NULL)
		onnx__model_proto__free_unpacked(m->proto, &pv->alloc);
	if (pv != NULL) {
		free(pv->hash);
		free(pv->dir);
		free(pv->where);
		free(pv);
	}
	free(m);
}

int lr_model_pack(const lr_model *m, uint8_t **buf, size_t *len)
{
	size_t n = onnx__model_proto__get_packed_size(m->proto);
	uint8_t *b = malloc(n ? n : 1);

	if (b == NULL)
		return LR_ENOMEM;
	*len = onnx__model_proto__pack(m->proto, b);
	*buf = b;
	return 0;
}

int lr_model_save(const lr_model *m, const char *path, lr_msg *msg)
{
	uint8_t *buf = NULL;
	size_t len = 0, off = 0;
	char *tmp = NULL, *dir = NULL;
	int fd = -1, rc;

	rc = lr_model_pack(m, &buf, &len);
	if (rc != 0)
		return lr_fail(msg, rc, "out of memory serialising the model");
	tmp = malloc(strlen(path) + 16);
	dir = strdup(path);
	if (tmp == NULL || dir == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	sprintf(tmp, "%s.tmpXXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0) {
		rc = lr_fail(msg, LR_EIO, "cannot create %s: %s", path, strerror(errno));
		goto out;
	}
	while (off < len) {
		ssize_t w = write(fd, buf + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = lr_fail(msg, LR_EIO, "writing %s failed: %s", path, strerror(errno));
			goto out;
		}
		off += (size_t)w;
	}
	if (fchmod(fd, 0644) != 0 || fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		rc = lr_fail(msg, LR_EIO, "writing %s failed: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = lr_fail(msg, LR_EIO, "cannot rename into %s: %s", path, strerror(errno));
		goto out;
	}
	to_dirname(dir);
	{
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
	}
	free(tmp);
	tmp = NULL;
out:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL)
		unlink(tmp);
	free(tmp);
	free(dir);
	free(buf);
	return rc;
}
