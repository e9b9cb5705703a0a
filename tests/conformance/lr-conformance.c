/*
 * lr-conformance.c - runs ONNX's official backend test cases (Debian's
 * libonnx-testdata) through the loader and the engine, and reports TAP.
 *
 *   lr-conformance [--verbose] [--list-failures] [--only SUBSTR]
 *                  [--threads N] [--timeout SEC] [--no-fork] [--no-dry]
 *                  [--expect-pass FILE] [--judge FILE] DIR...
 *
 * DESIGN. Every DIR holds test case folders test_* with a model.onnx and data sets
 * test_data_set_N/{input_K,output_K}.pb (serialized TensorProto). Cases run
 * sorted by name, each in a forked child: a crash, an abort or a hang
 * (--timeout) fails that one case instead of the whole run, memory goes back
 * to the system after every case, and under the sanitizers a leak makes the
 * child exit nonzero, which fails the case too. The child sends its verdict
 * through a pipe as one fixed-size record.
 *
 * A case is skipped, never failed, when it tests something lowrankd does not
 * claim: the loader or a kernel returns LR_EUNSUPPORTED (an operator, an
 * opset or an attribute value we do not implement; the reason is the
 * unsupported op types, found by scanning the model with lr_op_find(), or
 * else the engine's own message), a graph input or output is not a tensor
 * or not float32/int64 (checked on the graph's declared types and on the
 * original data_type of every .pb, before any conversion), or the data set
 * feeds a different number of inputs than the graph declares (optional
 * inputs left out). Everything else is a failure: wrong numbers or shapes,
 * LR_EMODEL or LR_ESHAPE from a valid model, a crash, a graph input that the
 * run modified (inputs are borrowed), or a dry run (shapes only) whose
 * output shapes differ from the real ones.
 *
 * --expect-pass FILE names cases (one label such as node/test_add a line,
 * '#' starts a comment) that must pass: a skip of one of them is a failure,
 * so support once gained is never lost silently. --judge FILE names the
 * cases ONNX Runtime passes (tests/ort/ort_cases.js): the run ends with how
 * many of those lowrank passes, and lists the ones it refuses.
 *
 * Inputs feed m->inputs in order: input_K.pb goes to the K-th graph input
 * that is not an initializer, unless the .pb names a graph input. Floats
 * match when |got - want| <= 1e-4 + 1e-4 * |want| (NaN matches NaN, equal
 * infinities match); int64 must be equal.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/engine.h"
#include "model/lr.h"
#include "model/onnx.h"
#include "model/ops.h"
#include "model/tensor.h"

#define ATOL 1e-4
#define RTOL 1e-4
#define MAX_IO 4096          /* input_K.pb / output_K.pb files probed per set */
#define MAX_PB_BYTES (1u << 30)

enum { R_PASS, R_FAIL, R_SKIP };

/* One case's verdict; a fixed-size record so it can cross a pipe as is. */
struct result {
	int status;             /* R_PASS, R_FAIL or R_SKIP */
	char reason[1024];      /* why it failed or was skipped */
	char key[160];          /* skip class, for the --list-failures tally */
	char detail[2048];      /* --verbose notes, one per line */
};

struct opts {
	int verbose;
	int list_failures;
	int fork;
	int dry;
	int threads;
	int timeout;
	const char *only;
	char **expect;          /* sorted labels that must pass (--expect-pass) */
	size_t nexpect;
	char **judge;           /* sorted labels ONNX Runtime passes (--judge) */
	size_t njudge;
};

/* A counted string, for the failure list and the skip tally. */
struct tally {
	char *text;
	char *label;
	int count;
};

struct tallies {
	struct tally *v;
	size_t n, cap;
};

/* Copies a string, truncating it to fit. */
static void copy_str(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Formats a path; returns 0, or -ENAMETOOLONG when it does not fit. */
static int pathf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int pathf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int set_result(struct result *r, int status, const char *key,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void note(struct result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Records the first verdict that is not a pass; later ones are ignored. */
static int set_result(struct result *r, int status, const char *key,
		      const char *fmt, ...)
{
	va_list ap;

	if (r->status != R_PASS)
		return 1;
	r->status = status;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	copy_str(r->key, sizeof(r->key), key != NULL ? key : r->reason);
	return 1;
}

static void note(struct result *r, const char *fmt, ...)
{
	size_t used = strlen(r->detail);
	va_list ap;

	if (used + 2 >= sizeof(r->detail))
		return;
	va_start(ap, fmt);
	vsnprintf(r->detail + used, sizeof(r->detail) - used - 1, fmt, ap);
	va_end(ap);
	used = strlen(r->detail);
	r->detail[used] = '\n';
	r->detail[used + 1] = '\0';
}

/* Replaces line breaks and tabs so a message fits on one TAP line. */
static void one_line(char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '\n' || *s == '\r' || *s == '\t')
			*s = ' ';
}

static const char *onnx_type_name(int dt)
{
	static const char *const names[] = {
		"undefined", "float", "uint8", "int8", "uint16", "int16",
		"int32", "int64", "string", "bool", "float16", "double",
		"uint32", "uint64", "complex64", "complex128", "bfloat16",
	};
	static const char *const newer[] = {
		"float8e4m3fn", "float8e4m3fnuz", "float8e5m2",
		"float8e5m2fnuz", "uint4", "int4",
	};

	if (dt >= 0 && dt < (int)(sizeof(names) / sizeof(names[0])))
		return names[dt];
	if (dt >= 17 && dt < 17 + (int)(sizeof(newer) / sizeof(newer[0])))
		return newer[dt - 17];
	return "unknown type";
}

static const char *value_case_name(Onnx__TypeProto__ValueCase vc)
{
	switch (vc) {
	case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE: return "a sequence";
	case ONNX__TYPE_PROTO__VALUE_MAP_TYPE: return "a map";
	case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE: return "an optional";
	case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE: return "a sparse tensor";
	default: return "not a tensor";
	}
}

/* The element types lowrank holds (tensor.h); bfloat16 is not one. */
static int dtype_claimed(int dt)
{
	return lr_dtype_from_onnx(dt) != 0 || dt == LR_DT_STRING;
}

/* Reads a whole file. Returns 0 or a negative errno; *buf is malloc'd. */
static int read_file(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f;
	uint8_t *p = NULL;
	size_t cap = 0, n = 0;
	int rc = 0;

	*buf = NULL;
	*len = 0;
	f = fopen(path, "rb");
	if (f == NULL)
		return -errno;
	for (;;) {
		size_t got;

		if (n == cap) {
			uint8_t *q;

			if (cap >= MAX_PB_BYTES) {
				rc = -EFBIG;
				goto out;
			}
			cap = cap ? cap * 2 : 65536;
			q = realloc(p, cap);
			if (q == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			p = q;
		}
		got = fread(p + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f))
				rc = -EIO;
			break;
		}
	}
out:
	fclose(f);
	if (rc != 0) {
		free(p);
		return rc;
	}
	*buf = p;
	*len = n;
	return 0;
}

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Lists the subdirectories of `dir` whose names start with `prefix`, sorted.
 * Returns the count (>= 0) or a negative errno; *names is malloc'd.
 */
static int list_dirs(const char *dir, const char *prefix, char ***names)
{
	DIR *d;
	struct dirent *de;
	char **v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	*names = NULL;
	d = opendir(dir);
	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		char path[4096];

		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		if (pathf(path, sizeof(path), "%s/%s", dir, de->d_name) != 0 ||
		    !is_dir(path))
			continue;
		if (n == cap) {
			char **q;

			cap = cap ? cap * 2 : 64;
			q = realloc(v, cap * sizeof(*v));
			if (q == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			v = q;
		}
		v[n] = strdup(de->d_name);
		if (v[n] == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		n++;
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_str);
out:
	closedir(d);
	if (rc != 0) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return rc;
	}
	*names = v;
	return (int)n;
}

static void free_names(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * Writes the distinct op types of the model at `path` that have no kernel
 * ("Op" or "domain::Op") into out as a comma-separated list; empty when
 * every op has one or the file cannot be parsed here.
 */
static void unsupported_ops(const char *path, char *out, size_t len)
{
	Onnx__ModelProto *mp = NULL;
	uint8_t *buf = NULL;
	size_t n = 0, used = 0;

	out[0] = '\0';
	if (read_file(path, &buf, &n) != 0)
		goto out;
	mp = onnx__model_proto__unpack(NULL, n, buf);
	if (mp == NULL || mp->graph == NULL)
		goto out;
	for (size_t i = 0; i < mp->graph->n_node; i++) {
		const Onnx__NodeProto *nd = mp->graph->node[i];
		const char *dom = nd->domain != NULL ? nd->domain : "";
		char name[256];

		if (nd->op_type == NULL || lr_op_find(dom, nd->op_type) != NULL)
			continue;
		if (dom[0] != '\0' && strcmp(dom, "ai.onnx") != 0)
			snprintf(name, sizeof(name), "%s::%s", dom, nd->op_type);
		else
			snprintf(name, sizeof(name), "%s", nd->op_type);
		/* Already listed? Match whole items only. */
		{
			const char *p = out;
			size_t nl = strlen(name);
			int dup = 0;

			while ((p = strstr(p, name)) != NULL) {
				if ((p == out || p[-1] == ' ') &&
				    (p[nl] == ',' || p[nl] == '\0')) {
					dup = 1;
					break;
				}
				p += nl;
			}
			if (dup)
				continue;
		}
		if (used + strlen(name) + 3 >= len)
			break;
		used += (size_t)snprintf(out + used, len - used, "%s%s",
					 used ? ", " : "", name);
	}
out:
	if (mp != NULL)
		onnx__model_proto__free_unpacked(mp, NULL);
	free(buf);
}

static const Onnx__ValueInfoProto *find_vi(Onnx__ValueInfoProto **v, size_t n,
					   const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] != NULL && v[i]->name != NULL &&
		    strcmp(v[i]->name, name) == 0)
			return v[i];
	return NULL;
}

/* Skips the case when a declared graph input/output is not a claimed type. */
static int check_declared(const Onnx__ValueInfoProto *vi, const char *what,
			  const char *name, struct result *r)
{
	char key[64];

	if (vi == NULL || vi->type == NULL ||
	    vi->type->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET)
		return 0;
	if (vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
		snprintf(key, sizeof(key), "%s is %s", what,
			 value_case_name(vi->type->value_case));
		return set_result(r, R_SKIP, key, "graph %s '%s' is %s", what,
				  name, value_case_name(vi->type->value_case));
	}
	if (vi->type->tensor_type != NULL &&
	    vi->type->tensor_type->has_elem_type &&
	    !dtype_claimed(vi->type->tensor_type->elem_type)) {
		const char *tn = onnx_type_name(vi->type->tensor_type->elem_type);

		snprintf(key, sizeof(key), "type %s", tn);
		return set_result(r, R_SKIP, key, "graph %s '%s' has type %s",
				  what, name, tn);
	}
	return 0;
}

/*
 * Reads one .pb into *tp and converts it into *t (which may borrow from
 * *tp). Sets a skip or failure verdict and returns nonzero when the case
 * cannot go on.
 */
static int load_pb(const char *path, const char *what, Onnx__TensorProto **tp,
		   lr_tensor **t, struct result *r)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	lr_msg msg = { { 0 } };
	int dt, rc;

	*tp = NULL;
	*t = NULL;
	rc = read_file(path, &buf, &len);
	if (rc != 0)
		return set_result(r, R_FAIL, NULL, "%s: %s", path, strerror(-rc));
	*tp = onnx__tensor_proto__unpack(NULL, len, buf);
	free(buf);
	if (*tp == NULL)
		return set_result(r, R_FAIL, NULL,
				  "%s: not a serialized TensorProto", path);
	dt = (*tp)->has_data_type ? (*tp)->data_type : 0;
	if (!dtype_claimed(dt)) {
		char key[64];

		snprintf(key, sizeof(key), "type %s", onnx_type_name(dt));
		return set_result(r, R_SKIP, key, "%s has type %s", what,
				  onnx_type_name(dt));
	}
	rc = lr_tensor_from_proto(*tp, NULL, t, &msg);
	if (rc == LR_EUNSUPPORTED)
		return set_result(r, R_SKIP, NULL, "%s: %s", what, msg.text);
	if (rc != 0)
		return set_result(r, R_FAIL, NULL, "%s: %s: %s", what,
				  lr_strerror(rc), msg.text);
	return 0;
}

/* Formats flat index `k` of a tensor with `dims` as "[i,j,k]". */
static void index_str(const lr_tensor *t, int64_t k, char *buf, size_t len)
{
	int64_t idx[LR_MAX_DIMS];
	size_t used = 0;

	for (int d = t->ndim - 1; d >= 0; d--) {
		idx[d] = t->dims[d] > 0 ? k % t->dims[d] : 0;
		k = t->dims[d] > 0 ? k / t->dims[d] : 0;
	}
	used += (size_t)snprintf(buf, len, "[");
	for (int d = 0; d < t->ndim && used < len; d++)
		used += (size_t)snprintf(buf + used, len - used, "%s%lld",
					 d ? "," : "", (long long)idx[d]);
	if (used < len)
		snprintf(buf + used, len - used, "]");
}

/*
 * Tolerances per float type: float32 as always; double is computed in
 * double, so it gets a far tighter bound; float16 results are rounded to
 * 11 significant bits, so about 2 units in the last place.
 */
static int same_float(double a, double b, lr_dtype dt)
{
	double atol = ATOL, rtol = RTOL;

	if (dt == LR_DT_DOUBLE)
		atol = rtol = 1e-9;
	else if (dt == LR_DT_FLOAT16)
		atol = rtol = 1e-3;
	if (a == b || (isnan(a) && isnan(b)))
		return 1;
	return fabs(a - b) <= atol + rtol * fabs(b);
}

/*
 * Compares output k against the expectation: type, shape, then (unless
 * shape_only) every element. Sets a failure verdict and returns nonzero on
 * the first difference.
 */
static int compare(const lr_tensor *got, const lr_tensor *want, int k,
		   const char *name, int shape_only, const char *pre,
		   struct result *r)
{
	char gs[160], ws[160], is[160];
	int64_t bad = 0, first = -1;
	double maxerr = 0;

	if (got == NULL)
		return set_result(r, R_FAIL, NULL, "%soutput %d ('%s') was not produced",
				  pre, k, name);
	if (got->dtype != want->dtype)
		return set_result(r, R_FAIL, NULL,
				  "%soutput %d ('%s') has type %s, expected %s",
				  pre, k, name, lr_dtype_name(got->dtype),
				  lr_dtype_name(want->dtype));
	if (got->ndim != want->ndim ||
	    memcmp(got->dims, want->dims, (size_t)want->ndim * sizeof(int64_t)) != 0)
		return set_result(r, R_FAIL, NULL,
				  "%soutput %d ('%s') has shape %s, expected %s",
				  pre, k, name,
				  lr_shape_str(got->ndim, got->dims, gs, sizeof(gs)),
				  lr_shape_str(want->ndim, want->dims, ws, sizeof(ws)));
	if (shape_only)
		return 0;
	if (got->data == NULL && got->nelem > 0)
		return set_result(r, R_FAIL, NULL, "%soutput %d ('%s') has no data",
				  pre, k, name);
	if (want->dtype == LR_DT_STRING) {
		/* Strings: byte for byte. */
		size_t lg = 0, lw = 0;
		const char *sg = NULL, *sw = NULL;

		for (int64_t i = 0; i < want->nelem; i++) {
			const char *a = lr_tensor_str(got, i, &lg), *b = lr_tensor_str(want, i, &lw);

			if ((lg != lw || memcmp(a, b, lw) != 0) && bad++ == 0) {
				first = i;
				sg = a;
				sw = b;
			}
		}
		if (bad == 0)
			return 0;
		lr_tensor_str(got, first, &lg);
		lr_tensor_str(want, first, &lw);
		index_str(want, first, is, sizeof(is));
		return set_result(r, R_FAIL, NULL,
				  "%soutput %d ('%s'): %lld of %lld strings differ; first at %s: got \"%.*s\", expected \"%.*s\"",
				  pre, k, name, (long long)bad, (long long)want->nelem, is,
				  (int)(lg < 60 ? lg : 60), sg, (int)(lw < 60 ? lw : 60), sw);
	}
	if (!lr_dtype_is_float(want->dtype)) {
		/* Integers and bool: exact (uint64 compares as its bits). */
		for (int64_t i = 0; i < want->nelem; i++)
			if (lr_tensor_get_i64(got, i) != lr_tensor_get_i64(want, i) && bad++ == 0)
				first = i;
		if (bad == 0)
			return 0;
		index_str(want, first, is, sizeof(is));
		return set_result(r, R_FAIL, NULL,
				  "%soutput %d ('%s'): %lld of %lld elements differ; first at %s: got %lld, expected %lld",
				  pre, k, name, (long long)bad,
				  (long long)want->nelem, is,
				  (long long)lr_tensor_get_i64(got, first),
				  (long long)lr_tensor_get_i64(want, first));
	} else {
		for (int64_t i = 0; i < want->nelem; i++) {
			double g = lr_tensor_get_f64(got, i), w = lr_tensor_get_f64(want, i), e;

			if (same_float(g, w, want->dtype))
				continue;
			if (bad++ == 0)
				first = i;
			e = fabs(g - w);
			if (isnan(e) || e > maxerr)
				maxerr = isnan(e) ? INFINITY : e;
		}
		if (bad == 0)
			return 0;
		index_str(want, first, is, sizeof(is));
		return set_result(r, R_FAIL, NULL,
				  "%soutput %d ('%s'): %lld of %lld elements differ; first at %s: got %.17g, expected %.17g; max abs error %.3g",
				  pre, k, name, (long long)bad,
				  (long long)want->nelem, is, lr_tensor_get_f64(got, first),
				  lr_tensor_get_f64(want, first), maxerr);
	}
}

/* Tensors of one data set, all freed by free_set(). */
struct dataset {
	int nin, nout;
	Onnx__TensorProto **in_pb, **out_pb;
	lr_tensor **in, **in_copy, **want, **got;
};

static void free_set(struct dataset *s)
{
	for (int i = 0; i < s->nin; i++) {
		lr_tensor_free(s->in ? s->in[i] : NULL);
		lr_tensor_free(s->in_copy ? s->in_copy[i] : NULL);
		if (s->in_pb && s->in_pb[i])
			onnx__tensor_proto__free_unpacked(s->in_pb[i], NULL);
	}
	for (int i = 0; i < s->nout; i++) {
		lr_tensor_free(s->want ? s->want[i] : NULL);
		lr_tensor_free(s->got ? s->got[i] : NULL);
		if (s->out_pb && s->out_pb[i])
			onnx__tensor_proto__free_unpacked(s->out_pb[i], NULL);
	}
	free(s->in_pb);
	free(s->out_pb);
	free(s->in);
	free(s->in_copy);
	free(s->want);
	free(s->got);
	memset(s, 0, sizeof(*s));
}

static int count_files(const char *dir, const char *stem)
{
	char path[4096];
	int n = 0;

	while (n < MAX_IO) {
		if (pathf(path, sizeof(path), "%s/%s_%d.pb", dir, stem, n) != 0 ||
		    !exists(path))
			break;
		n++;
	}
	return n;
}

static void free_outputs(lr_tensor **v, int n)
{
	for (int i = 0; i < n; i++) {
		lr_tensor_free(v[i]);
		v[i] = NULL;
	}
}

/* Runs one data set of a loaded case. Returns nonzero once a verdict is set. */
static int run_set(const lr_model *m, lr_engine *e, const char *setdir,
		   const char *setname, const struct opts *o, struct result *r)
{
	struct dataset s = { 0 };
	char path[4096], what[160];
	lr_msg msg = { { 0 } };
	int nin_files, nout_files, rc, stop = 0;
	double t0;

	nin_files = count_files(setdir, "input");
	nout_files = count_files(setdir, "output");
	if (nin_files != m->ninputs) {
		stop = set_result(r, R_SKIP, "input count differs",
				  "%s feeds %d inputs, the graph has %d (optional inputs left out)",
				  setname, nin_files, m->ninputs);
		goto out;
	}
	if (nout_files > m->noutputs || nout_files == 0) {
		stop = set_result(r, R_FAIL, NULL,
				  "%s has %d expected outputs, the graph has %d",
				  setname, nout_files, m->noutputs);
		goto out;
	}
	s.nin = m->ninputs;
	s.nout = m->noutputs;
	s.in_pb = calloc((size_t)s.nin + 1, sizeof(*s.in_pb));
	s.in = calloc((size_t)s.nin + 1, sizeof(*s.in));
	s.in_copy = calloc((size_t)s.nin + 1, sizeof(*s.in_copy));
	s.out_pb = calloc((size_t)s.nout, sizeof(*s.out_pb));
	s.want = calloc((size_t)s.nout, sizeof(*s.want));
	s.got = calloc((size_t)s.nout, sizeof(*s.got));
	if (!s.in_pb || !s.in || !s.in_copy || !s.out_pb || !s.want || !s.got) {
		stop = set_result(r, R_FAIL, NULL, "out of memory");
		goto out;
	}

	/* Inputs: input_K.pb feeds the K-th graph input, unless it names one. */
	for (int k = 0; k < nin_files; k++) {
		Onnx__TensorProto *tp;
		lr_tensor *t;
		int slot = k;

		pathf(path, sizeof(path), "%s/input_%d.pb", setdir, k);
		snprintf(what, sizeof(what), "%s/input_%d", setname, k);
		stop = load_pb(path, what, &tp, &t, r);
		if (tp != NULL && tp->name != NULL && tp->name[0] != '\0')
			for (int j = 0; j < m->ninputs; j++)
				if (strcmp(m->values[m->inputs[j]].name, tp->name) == 0)
					slot = j;
		if (s.in_pb[slot] != NULL) {
			/* A .pb name collided with a positional slot. */
			lr_tensor_free(t);
			if (tp != NULL)
				onnx__tensor_proto__free_unpacked(tp, NULL);
			if (!stop)
				stop = set_result(r, R_FAIL, NULL,
						  "%s: graph input %d is fed twice",
						  what, slot);
			goto out;
		}
		s.in_pb[slot] = tp;
		s.in[slot] = t;
		if (stop)
			goto out;
	}
	for (int k = 0; k < s.nin; k++) {
		rc = lr_tensor_clone(&s.in_copy[k], s.in[k]);
		if (rc != 0) {
			stop = set_result(r, R_FAIL, NULL, "cloning input %d: %s",
					  k, lr_strerror(rc));
			goto out;
		}
	}
	for (int k = 0; k < nout_files; k++) {
		pathf(path, sizeof(path), "%s/output_%d.pb", setdir, k);
		snprintf(what, sizeof(what), "%s/output_%d", setname, k);
		stop = load_pb(path, what, &s.out_pb[k], &s.want[k], r);
		if (stop)
			goto out;
	}

	t0 = lr_now();
	rc = lr_engine_run(e, s.in, s.nin, s.got, s.nout, 0, &msg);
	if (o->verbose)
		note(r, "%s: run %.3f ms, peak activations %zu bytes", setname,
		     (lr_now() - t0) * 1e3, lr_engine_peak_bytes(e));
	if (rc == LR_EUNSUPPORTED) {
		/* Tally by "(Op): text", without the node's name. */
		const char *key = msg.text;

		if (strncmp(key, "node '", 6) == 0 && strstr(key, "' (") != NULL)
			key = strstr(key, "' (") + 2;
		stop = set_result(r, R_SKIP, key, "%s", msg.text);
		goto out;
	}
	if (rc != 0) {
		stop = set_result(r, R_FAIL, NULL, "%s: %s", lr_strerror(rc),
				  msg.text);
		goto out;
	}
	for (int k = 0; k < nout_files; k++) {
		stop = compare(s.got[k], s.want[k], k,
			       m->values[m->outputs[k]].name, 0, "", r);
		if (stop)
			goto out;
	}
	for (int k = 0; k < s.nin; k++) {
		if (s.in[k]->data != NULL &&
		    memcmp(s.in[k]->data, s.in_copy[k]->data,
			   lr_tensor_bytes(s.in[k])) != 0) {
			stop = set_result(r, R_FAIL, NULL,
					  "graph input %d ('%s') was modified by the run",
					  k, m->values[m->inputs[k]].name);
			goto out;
		}
	}

	if (o->dry) {
		free_outputs(s.got, s.nout);
		msg.text[0] = '\0';
		rc = lr_engine_run(e, s.in, s.nin, s.got, s.nout, 1, &msg);
		if (rc == LR_EUNSUPPORTED) {
			if (o->verbose)
				note(r, "%s: dry run unsupported: %s", setname,
				     msg.text);
		} else if (rc != 0) {
			stop = set_result(r, R_FAIL, NULL,
					  "dry run: %s: %s", lr_strerror(rc),
					  msg.text);
			goto out;
		} else {
			for (int k = 0; k < nout_files; k++) {
				stop = compare(s.got[k], s.want[k], k,
					       m->values[m->outputs[k]].name, 1,
					       "dry run: ", r);
				if (stop)
					goto out;
			}
		}
	}
out:
	free_set(&s);
	return stop;
}

/* Runs one case in this process and fills *r. */
static void run_case(const char *casedir, const struct opts *o,
		     struct result *r)
{
	char path[4096], setdir[4096];
	lr_model *m = NULL;
	lr_engine *e = NULL;
	lr_msg msg = { { 0 } };
	char **sets = NULL;
	int nsets = 0, rc;

	memset(r, 0, sizeof(*r));
	r->status = R_PASS;
	if (pathf(path, sizeof(path), "%s/model.onnx", casedir) != 0) {
		set_result(r, R_FAIL, NULL, "path too long: %s", casedir);
		goto out;
	}
	rc = lr_model_load(path, NULL, &m, &msg);
	if (rc == LR_EUNSUPPORTED) {
		char ops[512], key[600];

		unsupported_ops(path, ops, sizeof(ops));
		if (ops[0] != '\0') {
			snprintf(key, sizeof(key), "unsupported op: %s", ops);
			set_result(r, R_SKIP, key, "unsupported op: %s", ops);
		} else {
			/* Drop the "<path>: " prefix: the label names the case. */
			const char *t = msg.text;
			size_t pl = strlen(path);

			if (strncmp(t, path, pl) == 0 && strncmp(t + pl, ": ", 2) == 0)
				t += pl + 2;
			else if (strncmp(t, "model.onnx: ", 12) == 0)
				t += 12;
			set_result(r, R_SKIP, NULL, "%s", t);
		}
		goto out;
	}
	if (rc != 0) {
		set_result(r, R_FAIL, NULL, "loading model.onnx: %s: %s",
			   lr_strerror(rc), msg.text);
		goto out;
	}
	if (o->verbose)
		note(r, "opset %lld, %d nodes, %d inputs, %d outputs",
		     (long long)m->opset, m->nnodes, m->ninputs, m->noutputs);

	/* Declared graph types decide before any data is read. */
	if (m->proto != NULL && m->proto->graph != NULL) {
		const Onnx__GraphProto *g = m->proto->graph;

		for (int k = 0; k < m->ninputs; k++) {
			const char *name = m->values[m->inputs[k]].name;

			if (check_declared(find_vi(g->input, g->n_input, name),
					   "input", name, r))
				goto out;
		}
		for (int k = 0; k < m->noutputs; k++) {
			const char *name = m->values[m->outputs[k]].name;

			if (check_declared(find_vi(g->output, g->n_output, name),
					   "output", name, r))
				goto out;
		}
	}

	nsets = list_dirs(casedir, "test_data_set_", &sets);
	if (nsets < 0) {
		set_result(r, R_FAIL, NULL, "listing %s: %s", casedir,
			   strerror(-nsets));
		nsets = 0;
		goto out;
	}
	if (nsets == 0) {
		set_result(r, R_SKIP, "no test data", "no test_data_set_* folder");
		goto out;
	}
	rc = lr_engine_create(&e, m, o->threads);
	if (rc != 0) {
		set_result(r, R_FAIL, NULL, "creating the engine: %s",
			   lr_strerror(rc));
		goto out;
	}
	for (int i = 0; i < nsets; i++) {
		if (pathf(setdir, sizeof(setdir), "%s/%s", casedir, sets[i]) != 0) {
			set_result(r, R_FAIL, NULL, "path too long: %s/%s",
				   casedir, sets[i]);
			break;
		}
		if (run_set(m, e, setdir, sets[i], o, r))
			break;
	}
out:
	free_names(sets, nsets);
	lr_engine_free(e);
	lr_model_free(m);
	one_line(r->reason);
	one_line(r->key);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Runs one case in a child process so that a crash fails only that case. */
static void run_case_isolated(const char *casedir, const struct opts *o,
			      struct result *r)
{
	int fds[2], status = 0;
	size_t got = 0;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	if (!o->fork) {
		run_case(casedir, o, r);
		return;
	}
	if (pipe(fds) != 0) {
		set_result(r, R_FAIL, NULL, "pipe: %s", strerror(errno));
		return;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		set_result(r, R_FAIL, NULL, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		struct result *cr = calloc(1, sizeof(*cr));
		int ok;

		close(fds[0]);
		if (o->timeout > 0)
			alarm((unsigned)o->timeout);
		if (cr == NULL)
			_exit(3);
		run_case(casedir, o, cr);
		ok = write_all(fds[1], cr, sizeof(*cr)) == 0;
		free(cr);
		close(fds[1]);
		/* exit(), not _exit(): lets LeakSanitizer check the case. */
		exit(ok ? 0 : 3);
	}
	close(fds[1]);
	while (got < sizeof(*r)) {
		ssize_t n = read(fds[0], (char *)r + got, sizeof(*r) - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (got < sizeof(*r))
		memset(r, 0, sizeof(*r));
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);

		r->status = R_PASS;
		if (sig == SIGALRM)
			set_result(r, R_FAIL, "timeout", "timed out after %d s",
				   o->timeout);
		else
			set_result(r, R_FAIL, NULL, "crashed: signal %d (%s)",
				   sig, strsignal(sig));
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		char prev[sizeof(r->reason)];

		snprintf(prev, sizeof(prev), "%s", r->reason);
		r->status = R_PASS;
		set_result(r, R_FAIL, NULL,
			   "the case process exited with status %d (sanitizer report on stderr?)%s%s",
			   WEXITSTATUS(status), prev[0] ? "; verdict was: " : "",
			   prev);
	} else if (got < sizeof(*r)) {
		set_result(r, R_FAIL, NULL, "no verdict from the case process");
	}
	r->reason[sizeof(r->reason) - 1] = '\0';
	r->key[sizeof(r->key) - 1] = '\0';
	r->detail[sizeof(r->detail) - 1] = '\0';
}

static int tally_add(struct tallies *t, const char *text, const char *label)
{
	for (size_t i = 0; label == NULL && i < t->n; i++) {
		if (strcmp(t->v[i].text, text) == 0) {
			t->v[i].count++;
			return 0;
		}
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct tally *q = realloc(t->v, cap * sizeof(*q));

		if (q == NULL)
			return -1;
		t->v = q;
		t->cap = cap;
	}
	t->v[t->n].text = strdup(text);
	t->v[t->n].label = label != NULL ? strdup(label) : NULL;
	t->v[t->n].count = 1;
	if (t->v[t->n].text == NULL || (label != NULL && t->v[t->n].label == NULL)) {
		free(t->v[t->n].text);
		free(t->v[t->n].label);
		return -1;
	}
	t->n++;
	return 0;
}

static int cmp_tally(const void *a, const void *b)
{
	const struct tally *x = a, *y = b;

	if (x->count != y->count)
		return y->count - x->count;
	return strcmp(x->text, y->text);
}

static void tally_free(struct tallies *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].text);
		free(t->v[i].label);
	}
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* The last path component of `dir`, without trailing slashes, into buf. */
static const char *dir_label(const char *dir, char *buf, size_t len)
{
	size_t n = strlen(dir);
	const char *s;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	s = dir + n;
	while (s > dir && s[-1] != '/')
		s--;
	snprintf(buf, len, "%.*s", (int)(n - (size_t)(s - dir)), s);
	return buf;
}

/* Reads a list of case labels into *v, sorted; 0 or -errno. */
static int read_labels(const char *path, char ***vp, size_t *np)
{
	FILE *f = fopen(path, "r");
	char line[700];
	size_t cap = 0;
	int rc = 0;

	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t len = strcspn(line, "#\r\n");

		while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
			len--;
		line[len] = '\0';
		if (len == 0)
			continue;
		if (*np == cap) {
			char **v = realloc(*vp, (cap = cap ? 2 * cap : 512) * sizeof(*v));

			if (v == NULL) {
				rc = -ENOMEM;
				break;
			}
			*vp = v;
		}
		if (((*vp)[*np] = strdup(line)) == NULL) {
			rc = -ENOMEM;
			break;
		}
		(*np)++;
	}
	fclose(f);
	if (*np > 0)
		qsort(*vp, *np, sizeof(**vp), cmp_str);
	return rc;
}

static int listed(char *const *v, size_t n, const char *label)
{
	return n > 0 && bsearch(&label, v, n, sizeof(*v), cmp_str) != NULL;
}

static void free_labels(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: lr-conformance [--verbose] [--list-failures] [--only SUBSTR]\n"
		"                      [--threads N] [--timeout SEC] [--no-fork] [--no-dry]\n"
		"                      [--expect-pass FILE] [--judge FILE] DIR...\n"
		"Runs the ONNX backend test cases DIR/test_*/ and prints TAP.\n");
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct tallies fails = { 0 }, skips = { 0 }, refused = { 0 };
	int njudged = 0, njpass = 0;
	struct result *r = NULL;
	int ndirs = 0, n = 0, npass = 0, nfail = 0, nskip = 0, rc = 1;
	char **dirs;

	o.fork = 1;
	o.dry = 1;
	o.threads = 2;
	o.timeout = 300;
	dirs = calloc((size_t)argc, sizeof(*dirs));
	r = calloc(1, sizeof(*r));
	if (dirs == NULL || r == NULL) {
		fprintf(stderr, "lr-conformance: out of memory\n");
		goto out;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
			o.verbose = 1;
		} else if (strcmp(a, "--list-failures") == 0) {
			o.list_failures = 1;
		} else if (strcmp(a, "--no-fork") == 0) {
			o.fork = 0;
		} else if (strcmp(a, "--no-dry") == 0) {
			o.dry = 0;
		} else if ((strcmp(a, "--expect-pass") == 0 || strcmp(a, "--judge") == 0) &&
			   i + 1 < argc) {
			int erc = a[2] == 'e' ? read_labels(argv[++i], &o.expect, &o.nexpect)
					      : read_labels(argv[++i], &o.judge, &o.njudge);

			if (erc != 0) {
				fprintf(stderr, "lr-conformance: %s: %s\n", argv[i], strerror(-erc));
				goto out;
			}
		} else if ((strcmp(a, "--only") == 0 || strcmp(a, "--threads") == 0 ||
			    strcmp(a, "--timeout") == 0) && i + 1 < argc) {
			const char *v = argv[++i];
			char *end;
			long l;

			if (strcmp(a, "--only") == 0) {
				o.only = v;
				continue;
			}
			errno = 0;
			l = strtol(v, &end, 10);
			if (errno != 0 || *end != '\0' || l < 0 || l > 100000) {
				fprintf(stderr, "lr-conformance: bad value for %s: %s\n",
					a, v);
				rc = 2;
				goto out;
			}
			if (strcmp(a, "--threads") == 0)
				o.threads = (int)l;
			else
				o.timeout = (int)l;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			rc = 0;
			goto out;
		} else if (a[0] == '-' && a[1] != '\0') {
			usage(stderr);
			rc = 2;
			goto out;
		} else {
			dirs[ndirs++] = argv[i];
		}
	}
	if (ndirs == 0) {
		usage(stderr);
		rc = 2;
		goto out;
	}

	for (int d = 0; d < ndirs; d++) {
		char **cases = NULL, top[256];
		int ncases = list_dirs(dirs[d], "test_", &cases);

		dir_label(dirs[d], top, sizeof(top));
		if (ncases < 0) {
			printf("not ok %d - %s: cannot read the test directory: %s\n",
			       ++n, dirs[d], strerror(-ncases));
			nfail++;
			if (o.list_failures)
				tally_add(&fails, strerror(-ncases), dirs[d]);
			continue;
		}
		for (int c = 0; c < ncases; c++) {
			char label[600], casedir[4096];
			double t0 = lr_now();

			pathf(label, sizeof(label), "%s/%s", top, cases[c]);
			if (o.only != NULL && strstr(label, o.only) == NULL)
				continue;
			if (pathf(casedir, sizeof(casedir), "%s/%s", dirs[d],
				  cases[c]) != 0) {
				memset(r, 0, sizeof(*r));
				set_result(r, R_FAIL, NULL, "path too long");
			} else {
				run_case_isolated(casedir, &o, r);
			}
			n++;
			if (listed(o.judge, o.njudge, label)) {
				njudged++;
				if (r->status == R_PASS)
					njpass++;
				else if (o.list_failures)
					tally_add(&refused, r->reason, label);
			}
			if (r->status == R_SKIP && listed(o.expect, o.nexpect, label)) {
				r->status = R_FAIL;
				snprintf(r->reason + strlen(r->reason),
					 sizeof(r->reason) - strlen(r->reason),
					 " (refused, but listed in --expect-pass as passing)");
			}
			if (r->status == R_PASS) {
				npass++;
				printf("ok %d - %s\n", n, label);
			} else if (r->status == R_SKIP) {
				nskip++;
				printf("ok %d - %s # SKIP %s\n", n, label,
				       r->reason);
				tally_add(&skips, r->key, NULL);
			} else {
				nfail++;
				printf("not ok %d - %s: %s\n", n, label,
				       r->reason);
				if (o.list_failures)
					tally_add(&fails, r->reason, label);
			}
			if (o.verbose) {
				char *line = r->detail, *nl;

				while ((nl = strchr(line, '\n')) != NULL) {
					*nl = '\0';
					printf("#   %s\n", line);
					line = nl + 1;
				}
				printf("#   %.3f s\n", lr_now() - t0);
			}
			fflush(stdout);
		}
		free_names(cases, ncases);
	}

	if (o.list_failures) {
		printf("# failures (%zu):\n", fails.n);
		for (size_t i = 0; i < fails.n; i++)
			printf("#   %s: %s\n", fails.v[i].label, fails.v[i].text);
		if (skips.n > 0)
			qsort(skips.v, skips.n, sizeof(*skips.v), cmp_tally);
		printf("# skip reasons (%zu distinct):\n", skips.n);
		for (size_t i = 0; i < skips.n; i++)
			printf("#   %4d  %s\n", skips.v[i].count, skips.v[i].text);
	}
	if (o.njudge > 0) {
		if (o.list_failures) {
			printf("# refused although ONNX Runtime passes them (%zu):\n", refused.n);
			for (size_t i = 0; i < refused.n; i++)
				printf("#   %s: %s\n", refused.v[i].label, refused.v[i].text);
		}
		printf("# ONNX Runtime passes %d of these cases; lowrank passes %d of them\n",
		       njudged, njpass);
	}
	printf("1..%d\n", n);
	printf("# conformance: %d passed, %d failed, %d skipped\n", npass, nfail,
	       nskip);
	fflush(stdout);
	fprintf(stderr, "conformance: %d passed, %d failed, %d skipped\n", npass,
		nfail, nskip);
	rc = nfail == 0 ? 0 : 1;
out:
	tally_free(&fails);
	tally_free(&skips);
	tally_free(&refused);
	free_labels(o.expect, o.nexpect);
	free_labels(o.judge, o.njudge);
	free(r);
	free(dirs);
	return rc;
}
