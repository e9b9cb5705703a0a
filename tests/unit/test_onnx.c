/*
 * test_onnx.c - the ONNX loader and saver through the public API.
 *
 * DESIGN. The fixtures come from three places. (1) The fuzz corpus
 * generator tests/fuzz/make_onnx_corpus.py is run into a temporary
 * directory; every file it writes has an expectation in the tables
 * below: the exact return code and words the message must contain (the
 * node, tensor or field, and the word that names the problem), both for
 * lr_model_load() and for lr_model_load_mem(). The generated files must
 * also equal the checked-in corpus tests/fuzz/onnx.in, so the corpus
 * cannot go stale. (2) Small python scripts make what only python can
 * (external data written by onnx.save, symlinks) and check what only
 * python should judge (that a saved model keeps metadata, doc strings
 * and foreign opset imports). (3) Hand-assembled protobuf bytes (the
 * `pb` builder) cover unknown fields at every level, nesting at the
 * depth limit, float16 corner values and synthesized node names.
 *
 * python3 with python3-onnx is a declared dependency: when it is missing
 * the tests that need it FAIL rather than skip. $PYTHON3 (set by `make
 * check`) wins over /usr/bin/python3; $top_srcdir locates the generator
 * and the corpus (falling back to this file's own path).
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/engine.h"
#include "model/inspect.h"
#include "model/onnx.h"
#include "tests/unit/tap.h"
#include "tests/unit/testenv.h"

static char tmpdir[4096];
static char corpus[4200];      /* generated corpus: tmpdir/corpus */
static char srcdir[4096];      /* top of the source tree */
static const char *python;

/* ---- helpers ------------------------------------------------------------ */

/* Runs python with argv[] (script or -c code first); stdout goes to stderr. */
static int run_python(const char *const *args)
{
	return tenv_run(python, args);
}

static const char *path_in(const char *dir, const char *name)
{
	static char path[4][8400];
	static int k;

	k = (k + 1) % 4;
	snprintf(path[k], sizeof(path[k]), "%s/%s", dir, name);
	return path[k];
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	*len = 0;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc(n > 0 ? (size_t)n : 1);
		if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else {
			*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

static int write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (f == NULL)
		return -1;
	ok = fwrite(p, 1, n, f) == n;
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int contains(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

static int mem_contains(const uint8_t *hay, size_t n, const uint8_t *needle,
			size_t k)
{
	return memmem(hay, n, needle, k) != NULL;
}

static lr_model *load_ok(const char *path, const char *what)
{
	lr_model *m = NULL;
	lr_msg msg = { { 0 } };
	int rc = lr_model_load(path, NULL, &m, &msg);

	if (!tap_ok(rc == 0 && m != NULL, "%s loads", what))
		tap_diag("rc %d: %s", rc, msg.text);
	return m;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int rm_rf(const char *path)
{
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Builds feeds from the declared input shapes (unknown dims -> 1). */
static int make_feeds(const lr_model *m, lr_tensor **feeds, int max)
{
	if (m->ninputs > max)
		return -1;
	for (int i = 0; i < m->ninputs; i++) {
		const lr_value *v = &m->values[m->inputs[i]];
		int64_t dims[LR_MAX_DIMS];
		int nd = lr_input_shape(m, i, 1, dims);
		int isint = v->elem_type == 7;

		feeds[i] = NULL;
		if (nd < 0 || lr_tensor_create(&feeds[i], isint ? LR_DT_INT64 : LR_DT_FLOAT,
					       nd, dims, isint) != 0)
			return -1;
		if (isint)
			memset(feeds[i]->data, 0, lr_tensor_bytes(feeds[i]));
	}
	return 0;
}

/* Dry-runs m; returns the engine's code, outputs freed. */
static int dry_run(const lr_model *m, lr_msg *msg, int check_shapes)
{
	lr_tensor *feeds[8] = { NULL }, *outs[8] = { NULL };
	lr_engine *e = NULL;
	int rc, nout = m->noutputs < 8 ? m->noutputs : 8;

	if (make_feeds(m, feeds, 8) != 0) {
		rc = lr_fail(msg, LR_EINVAL, "cannot build feeds");
		goto out;
	}
	rc = lr_engine_create(&e, m, 1);
	if (rc != 0)
		goto out;
	rc = lr_engine_run(e, feeds, m->ninputs, outs, nout, 1, msg);
	/* Outputs must have the declared shape (declared -1 = anything). */
	for (int i = 0; rc == 0 && check_shapes && i < nout; i++) {
		const lr_value *v = &m->values[m->outputs[i]];
		int bad = outs[i] == NULL || (v->ndim >= 0 && v->ndim != outs[i]->ndim);

		for (int k = 0; !bad && v->ndim >= 0 && k < v->ndim; k++)
			if (v->dims[k] >= 0 && v->dims[k] != outs[i]->dims[k])
				bad = 1;
		if (bad)
			rc = lr_fail(msg, LR_ESHAPE, "output '%s' does not have its declared shape",
				     v->name);
	}
out:
	lr_engine_free(e);
	for (int i = 0; i < 8; i++) {
		lr_tensor_free(feeds[i]);
		lr_tensor_free(outs[i]);
	}
	return rc;
}

/* ---- a protobuf byte builder -------------------------------------------- */

typedef struct pb {
	uint8_t *p;
	size_t n, cap;
} pb;

static void pb_put(pb *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL)
			abort();
	}
	if (n > 0)
		memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void pb_varint(pb *b, uint64_t v)
{
	uint8_t c;

	do {
		c = v & 0x7f;
		v >>= 7;
		if (v)
			c |= 0x80;
		pb_put(b, &c, 1);
	} while (v);
}

static void pb_vint(pb *b, unsigned field, uint64_t v)
{
	pb_varint(b, (uint64_t)field << 3);
	pb_varint(b, v);
}

static void pb_bytes(pb *b, unsigned field, const void *p, size_t n)
{
	pb_varint(b, (uint64_t)field << 3 | 2);
	pb_varint(b, n);
	pb_put(b, p, n);
}

static void pb_str(pb *b, unsigned field, const char *s)
{
	pb_bytes(b, field, s, strlen(s));
}

/* Appends sub as a length-delimited field and frees it. */
static void pb_msg(pb *b, unsigned field, pb *sub)
{
	pb_bytes(b, field, sub->p, sub->n);
	free(sub->p);
	memset(sub, 0, sizeof(*sub));
}

/* NodeProto with comma-separated inputs and outputs ("" entries allowed). */
static void pb_node(pb *g, const char *op, const char *name, const char *ins,
		    const char *outs)
{
	pb n = { 0 };
	char tmp[256], *save = NULL, *tok;
	const char *lists[2] = { ins, outs };

	for (int l = 0; l < 2; l++) {
		if (lists[l] == NULL)
			continue;
		snprintf(tmp, sizeof(tmp), "%s", lists[l]);
		for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			pb_str(&n, (unsigned)l + 1, strcmp(tok, "-") == 0 ? "" : tok);
	}
	if (name != NULL)
		pb_str(&n, 3, name);
	pb_str(&n, 4, op);
	pb_msg(g, 1, &n);
}

/* ValueInfoProto of a float tensor [dims] as graph input (11)/output (12). */
static void pb_vi(pb *g, unsigned field, const char *name, int nd, const int64_t *dims)
{
	pb vi = { 0 }, tp = { 0 }, tt = { 0 }, sh = { 0 };

	for (int i = 0; i < nd; i++) {
		pb d = { 0 };

		pb_vint(&d, 1, (uint64_t)dims[i]);
		pb_msg(&sh, 1, &d);
	}
	pb_vint(&tt, 1, 1);
	pb_msg(&tt, 2, &sh);
	pb_msg(&tp, 1, &tt);
	pb_str(&vi, 1, name);
	pb_msg(&vi, 2, &tp);
	pb_msg(g, field, &vi);
}

/* ModelProto (ir 8, default opset `opset`) around graph g (consumed). */
static void pb_model(pb *m, pb *g, int64_t opset)
{
	pb os = { 0 };

	pb_vint(m, 1, 8);
	pb_msg(m, 7, g);
	pb_str(&os, 1, "");
	pb_vint(&os, 2, (uint64_t)opset);
	pb_msg(m, 8, &os);
}

static int load_pb(const pb *b, const char *name, lr_model **m, lr_msg *msg)
{
	memset(msg, 0, sizeof(*msg));
	*m = NULL;
	return lr_model_load_mem(b->p, b->n, name, NULL, m, msg);
}

/* ---- corpus expectations ------------------------------------------------- */

struct expect {
	const char *file;          /* without .onnx */
	int rc;
	const char *words[5];      /* all must be in the message */
};

/* Refused by the loader. */
static const struct expect refused[] = {
	{ "bad_100k_empty_nodes", LR_ELIMIT, { "100001 nodes", "limit is 100000" } },
	{ "bad_cycle", LR_EMODEL, { "cycle", "'loop_" } },
	{ "bad_dangling_input", LR_EMODEL, { "node 'add'", "'nowhere'", "not produced" } },
	{ "bad_dangling_output", LR_EMODEL, { "graph output 'ghost'", "not produced" } },
	{ "bad_deep_nesting", LR_EMODEL, { "nested", "64" } },
	{ "bad_dims_overflow", LR_EMODEL, { "tensor 'w'", "too large" } },
	{ "bad_duplicate_initializer", LR_EMODEL, { "initializer 'w'", "defined twice" } },
	{ "bad_duplicate_node_output", LR_EMODEL,
	  { "node 'second'", "output 'y'", "already defined", "node 'first'" } },
	{ "bad_empty", LR_EMODEL, { "empty" } },
	{ "bad_extdata_absolute", LR_EMODEL, { "tensor 'w'", "'/etc/passwd'", "relative path" } },
	{ "bad_extdata_dotdot", LR_EMODEL, { "tensor 'w'", "'../outside.bin'", "relative path" } },
	{ "bad_extdata_missing", LR_EMODEL, { "tensor 'w'", "'missing_weights.bin'", "cannot open" } },
	{ "bad_field_number_zero", LR_EMODEL, { "not an ONNX model", "invalid protobuf" } },
	{ "bad_graph_input_twice", LR_EMODEL, { "graph input 'x'", "declared twice" } },
	{ "bad_initializer_no_name", LR_EMODEL, { "initializer #0", "no name" } },
	{ "bad_ir_version2", LR_EUNSUPPORTED, { "IR version 2" } },
	{ "bad_length_lie_100k", LR_EMODEL, { "not an ONNX model", "invalid protobuf" } },
	{ "bad_negative_dim", LR_EMODEL, { "tensor 'w'", "negative", "-1" } },
	{ "bad_no_default_opset", LR_EUNSUPPORTED, { "no default-domain", "opset", "other operator domains" } },
	{ "bad_no_graph", LR_EMODEL, { "no graph" } },
	{ "bad_no_opset_import", LR_EMODEL, { "no default-domain", "opset" } },
	{ "bad_node_no_op_type", LR_EMODEL, { "blank", "op_type" } },
	{ "bad_omitted_required_input", LR_EMODEL, { "node 'slice'", "input 0" } },
	{ "bad_opset0", LR_EUNSUPPORTED, { "opset 0", "1 to 21" } },
	{ "bad_opset99", LR_EUNSUPPORTED, { "opset 99" } },
	{ "bad_output_is_initializer", LR_EMODEL, { "node 'relu'", "output 'w'", "already defined" } },
	{ "bad_random_bytes", LR_EMODEL, { "not an ONNX model" } },
	{ "bad_rank9_initializer", LR_EUNSUPPORTED, { "tensor 'w'", "rank 9" } },
	{ "bad_raw_data_size", LR_EMODEL, { "tensor 'w'", "raw_data", "20 bytes", "[2,3]", "24" } },
	{ "bad_segmented_initializer", LR_EUNSUPPORTED, { "tensor 'w'", "segmented" } },
	{ "bad_string_initializer", LR_EUNSUPPORTED, { "tensor 'w'", "STRING" } },
	{ "bad_subgraph_undefined_name", LR_EMODEL,
	  { "subgraph 'body' of node 'loop' (Loop)", "subgraph 'then_branch' of node 'branch'",
	    "node 'add_nope'", "'nope'", "not produced" } },
	{ "bad_text_file", LR_EMODEL, { "not an ONNX model" } },
	{ "bad_too_many_inputs", LR_EMODEL, { "node 'relu2'", "2 inputs", "1..1" } },
	{ "bad_truncated", LR_EMODEL, { "not an ONNX model" } },
	{ "bad_typed_data_count", LR_EMODEL, { "tensor 'w'", "float_data", "5 values", "6" } },
	{ "bad_unknown_data_type", LR_EUNSUPPORTED, { "tensor 'w'", "(99)" } },
	{ "bad_unterminated_varint", LR_EMODEL, { "not an ONNX model" } },
	{ "bad_wire_type_graph_varint", LR_EMODEL, { "not an ONNX model" } },
	{ "bad_wire_type_group", LR_EMODEL, { "not an ONNX model" } },
	{ "bad_wire_type_ir_fixed64", LR_EMODEL, { "not an ONNX model" } },
	{ "unsup_random", LR_EUNSUPPORTED,
	  { "unsupported operator:", "RandomUniformLike (nodes: 'random_like')" } },
	{ "unsup_ops", LR_EUNSUPPORTED,
	  { "unsupported operators:", "RandomNormalLike (nodes: 'random')",
	    "RegexFullMatch (nodes: 'regex_a', 'regex_b')", "StringSplit (nodes: 'strsplit')",
	    "com.example.MyFancyOp (nodes: 'custom')" } },
};

/* Load, then fail in a dry run. */
static const struct expect run_fails[] = {
	{ "bad_run_conv_weight_shape", LR_ESHAPE, { "node 'conv'", "channels", "[4,2," } },
	{ "bad_run_gather_out_of_range", LR_EMODEL, { "node 'gather'", "index 10", "out of range" } },
	{ "bad_run_reshape_impossible", LR_ESHAPE, { "node 'reshape'", "[5,7]" } },
};

/*
 * Shape arithmetic asking for 2^40 int64 values must hit a limit instead
 * of an allocation (run last: without that limit ASan aborts here).
 */
static const struct expect blowup = {
	"bad_run_int64_blowup", LR_ELIMIT, { "node 'pad'" }
};

/* Load and dry-run to the declared output shapes. */
static const char *const good[] = {
	"good_cnn_classifier", "good_constants", "good_conv_bn_relu",
	"good_conv_relu", "good_elementwise", "good_gemm",
	"good_initializer_input", "good_ir10_unknown_fields",
	"good_matmul_softmax", "good_metadata_domains", "good_no_nodes",
	"good_opset3_legacy", "good_opset7_legacy", "good_out_of_order", "good_shape_chain",
	"good_shape_ops", "good_typed_data", "good_unnamed_nodes",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int words_ok(const char *text, const char *const *words, int n)
{
	for (int i = 0; i < n && words[i] != NULL; i++)
		if (!contains(text, words[i]))
			return 0;
	return 1;
}

static void test_generate(void)
{
	const char *args[] = { NULL, corpus, NULL };
	char script[8400];
	DIR *d;
	struct dirent *e;
	int n = 0, stale = 0, rc;

	snprintf(script, sizeof(script), "%s/tests/fuzz/make_onnx_corpus.py", srcdir);
	args[0] = script;
	rc = run_python(args);
	tap_ok(rc == 0, "make_onnx_corpus.py runs (python3 with python3-onnx is required)");

	/* The checked-in corpus is what the script writes. */
	d = opendir(corpus);
	while (d != NULL && (e = readdir(d)) != NULL) {
		char in_tree[8400];
		uint8_t *a, *b;
		size_t na, nb;

		if (e->d_name[0] == '.')
			continue;
		n++;
		snprintf(in_tree, sizeof(in_tree), "%s/tests/fuzz/onnx.in/%s", srcdir, e->d_name);
		a = read_file(path_in(corpus, e->d_name), &na);
		b = read_file(in_tree, &nb);
		if (a == NULL || b == NULL || na != nb || (na > 0 && memcmp(a, b, na) != 0)) {
			tap_diag("%s differs from tests/fuzz/onnx.in (rerun make_onnx_corpus.py)",
				 e->d_name);
			stale++;
		}
		free(a);
		free(b);
	}
	if (d != NULL)
		closedir(d);
	tap_ok(n >= 40, "the generator wrote %d files (>= 40)", n);
	tap_ok(n > 0 && stale == 0, "tests/fuzz/onnx.in matches the generator (%d stale)", stale);
}

/* Every generated file has exactly one expectation. */
static void test_coverage(void)
{
	DIR *d = opendir(corpus);
	struct dirent *e;
	int missing = 0;

	while (d != NULL && (e = readdir(d)) != NULL) {
		char base[256];
		size_t l = strlen(e->d_name);
		int found = 0;

		if (e->d_name[0] == '.' || l < 6 || l >= sizeof(base))
			continue;
		memcpy(base, e->d_name, l - 5);
		base[l - 5] = '\0';
		for (size_t i = 0; i < COUNT(refused); i++)
			found += strcmp(refused[i].file, base) == 0;
		for (size_t i = 0; i < COUNT(run_fails); i++)
			found += strcmp(run_fails[i].file, base) == 0;
		for (size_t i = 0; i < COUNT(good); i++)
			found += strcmp(good[i], base) == 0;
		found += strcmp(blowup.file, base) == 0;
		if (found != 1) {
			tap_diag("%s has %d expectations", e->d_name, found);
			missing++;
		}
	}
	if (d != NULL)
		closedir(d);
	tap_ok(d != NULL && missing == 0, "every generated corpus file has one expectation");
}

static void test_refused(void)
{
	for (size_t i = 0; i < COUNT(refused); i++) {
		const struct expect *x = &refused[i];
		char file[300], prefix[310];
		lr_model *m = NULL;
		lr_msg msg = { { 0 } };
		uint8_t *buf;
		size_t len;
		int rc;

		snprintf(file, sizeof(file), "%s.onnx", x->file);
		snprintf(prefix, sizeof(prefix), "%s: ", file);
		rc = lr_model_load(path_in(corpus, file), NULL, &m, &msg);
		if (!tap_ok(rc == x->rc && m == NULL && strncmp(msg.text, prefix, strlen(prefix)) == 0 &&
			    words_ok(msg.text, x->words, 5),
			    "%s: refused with %s and the message names the problem", file,
			    lr_strerror(x->rc)))
			tap_diag("rc %d (want %d): %s", rc, x->rc, msg.text);
		lr_model_free(m);

		/* The same bytes from memory: same code, the given name. */
		buf = read_file(path_in(corpus, file), &len);
		m = NULL;
		memset(&msg, 0, sizeof(msg));
		rc = lr_model_load_mem(buf ? buf : (const uint8_t *)"", len, "mem", NULL, &m, &msg);
		if (!tap_ok(buf != NULL && rc == x->rc && m == NULL &&
			    strncmp(msg.text, "mem: ", 5) == 0,
			    "%s from memory: %s too", file, lr_strerror(x->rc)))
			tap_diag("rc %d: %s", rc, msg.text);
		lr_model_free(m);
		free(buf);
	}
}

static void test_run_fails(size_t count, const struct expect *table)
{
	for (size_t i = 0; i < count; i++) {
		const struct expect *x = &table[i];
		char file[300];
		lr_model *m;
		lr_msg msg = { { 0 } };
		int rc;

		snprintf(file, sizeof(file), "%s.onnx", x->file);
		m = load_ok(path_in(corpus, file), file);
		if (m == NULL)
			continue;
		rc = dry_run(m, &msg, 0);
		if (!tap_ok(rc == x->rc && words_ok(msg.text, x->words, 5),
			    "%s: the dry run fails with %s naming the node", file,
			    lr_strerror(x->rc)))
			tap_diag("rc %d: %s", rc, msg.text);
		lr_model_free(m);
	}
}

/* Good models load, dry-run, and survive save + reload byte for byte. */
static void test_good(void)
{
	for (size_t i = 0; i < COUNT(good); i++) {
		char file[300], saved[8400];
		lr_model *m, *m2 = NULL;
		lr_msg msg = { { 0 } };
		uint8_t *p1 = NULL, *p2 = NULL, *orig;
		size_t n1 = 0, n2 = 0, no;
		int rc;

		snprintf(file, sizeof(file), "%s.onnx", good[i]);
		m = load_ok(path_in(corpus, file), file);
		if (m == NULL)
			continue;
		rc = dry_run(m, &msg, 1);
		if (!tap_ok(rc == 0, "%s: dry run gives the declared output shapes", file))
			tap_diag("rc %d: %s", rc, msg.text);

		snprintf(saved, sizeof(saved), "%s/saved_%s", tmpdir, file);
		rc = lr_model_save(m, saved, &msg);
		tap_ok(rc == 0, "%s: lr_model_save", file);
		rc = lr_model_load(saved, NULL, &m2, &msg);
		tap_ok(rc == 0, "%s: the saved model loads", file);
		if (m2 != NULL && lr_model_pack(m, &p1, &n1) == 0 &&
		    lr_model_pack(m2, &p2, &n2) == 0)
			tap_ok(n1 == n2 && memcmp(p1, p2, n1) == 0,
			       "%s: saved and reloaded packs are byte-identical (%zu bytes)",
			       file, n1);
		else
			tap_ok(0, "%s: packs", file);
		orig = read_file(path_in(corpus, file), &no);
		tap_ok(orig != NULL && no == n1 && memcmp(orig, p1, no) == 0,
		       "%s: packing reproduces the python-written file", file);
		free(orig);
		free(p1);
		free(p2);
		lr_model_free(m2);
		lr_model_free(m);
	}
}

/* ---- structure of loaded models ----------------------------------------- */

static lr_model *load_corpus(const char *name)
{
	return load_ok(path_in(corpus, name), name);
}

static const lr_tensor *init_of(const lr_model *m, const char *name)
{
	int v = lr_model_find_value(m, name);

	return v >= 0 ? m->values[v].init : NULL;
}

/* Values of a float32, float16 or double tensor, compared as float32. */
static int floats_are(const lr_tensor *t, int n, const float *want)
{
	if (t == NULL || !lr_dtype_is_float(t->dtype) || t->nelem != n ||
	    (n > 0 && t->data == NULL))
		return 0;
	for (int i = 0; i < n; i++) {
		float got = (float)lr_tensor_get_f64(t, i);

		if (!(got == want[i] || (isnan(got) && isnan(want[i]))) ||
		    signbit(got) != signbit(want[i]))
			return 0;
	}
	return 1;
}

/* Values of an integer or bool tensor (uint64 as its bits). */
static int ints_are(const lr_tensor *t, int n, const int64_t *want)
{
	if (t == NULL || lr_dtype_is_float(t->dtype) || t->nelem != n ||
	    (n > 0 && t->data == NULL))
		return 0;
	for (int i = 0; i < n; i++)
		if (lr_tensor_get_i64(t, i) != want[i])
			return 0;
	return 1;
}

static int dtype_is(const lr_tensor *t, lr_dtype dt)
{
	return t != NULL && t->dtype == dt;
}

static void test_typed_data(void)
{
	lr_model *m = load_corpus("good_typed_data.onnx");
	const lr_tensor *t;

	if (m == NULL)
		return;
	tap_ok(floats_are(init_of(m, "f_raw"), 3, (float[]){ 1.5f, -2.0f, 3.25f }),
	       "float raw_data");
	tap_ok(floats_are(init_of(m, "f_data"), 3, (float[]){ 0.5f, 1.0f, -7.0f }),
	       "float_data");
	tap_ok(dtype_is(init_of(m, "d_data"), LR_DT_DOUBLE) &&
	       floats_are(init_of(m, "d_data"), 3, (float[]){ (float)0.1, 2.5f, -1e10f }),
	       "double_data -> double");
	tap_ok(dtype_is(init_of(m, "d_raw"), LR_DT_DOUBLE) &&
	       floats_are(init_of(m, "d_raw"), 2, (float[]){ 0.25f, -3.0f }),
	       "double raw_data -> double");
	tap_ok(dtype_is(init_of(m, "h_data"), LR_DT_FLOAT16) &&
	       floats_are(init_of(m, "h_data"), 3, (float[]){ 1.0f, -2.5f, 65504.0f }),
	       "float16 in int32_data -> float16");
	tap_ok(dtype_is(init_of(m, "h_raw"), LR_DT_FLOAT16) &&
	       floats_are(init_of(m, "h_raw"), 3, (float[]){ 1.0f, -2.5f, 65504.0f }),
	       "float16 raw_data -> float16");
	tap_ok(dtype_is(init_of(m, "bf_data"), LR_DT_FLOAT) &&
	       floats_are(init_of(m, "bf_data"), 2, (float[]){ 1.0f, -2.5f }),
	       "bfloat16 in int32_data -> float");
	tap_ok(ints_are(init_of(m, "i64_data"), 3, (int64_t[]){ -1, (int64_t)1 << 40, 7 }),
	       "int64_data");
	tap_ok(ints_are(init_of(m, "i64_raw"), 2, (int64_t[]){ -((int64_t)1 << 62), 5 }),
	       "int64 raw_data");
	tap_ok(dtype_is(init_of(m, "i32_data"), LR_DT_INT32) &&
	       ints_are(init_of(m, "i32_data"), 3, (int64_t[]){ -5, 0, 2147483647 }),
	       "int32_data -> int32");
	tap_ok(dtype_is(init_of(m, "i32_raw"), LR_DT_INT32) &&
	       ints_are(init_of(m, "i32_raw"), 2, (int64_t[]){ -7, 9 }),
	       "int32 raw_data -> int32");
	tap_ok(dtype_is(init_of(m, "u8_raw"), LR_DT_UINT8) &&
	       ints_are(init_of(m, "u8_raw"), 3, (int64_t[]){ 0, 200, 255 }),
	       "uint8 raw_data -> uint8");
	tap_ok(dtype_is(init_of(m, "i8_data"), LR_DT_INT8) &&
	       ints_are(init_of(m, "i8_data"), 3, (int64_t[]){ -128, 0, 127 }),
	       "int8 in int32_data -> int8");
	tap_ok(dtype_is(init_of(m, "b_data"), LR_DT_BOOL) &&
	       ints_are(init_of(m, "b_data"), 3, (int64_t[]){ 0, 1, 1 }),
	       "bool in int32_data -> bool 0/1");
	tap_ok(dtype_is(init_of(m, "u64_data"), LR_DT_UINT64) &&
	       ints_are(init_of(m, "u64_data"), 2, (int64_t[]){ 3, (int64_t)1 << 40 }),
	       "uint64_data -> uint64");
	tap_ok(dtype_is(init_of(m, "u32_data"), LR_DT_UINT32) &&
	       ints_are(init_of(m, "u32_data"), 2, (int64_t[]){ 1, 4000000000 }),
	       "uint32 in uint64_data -> uint32");
	t = init_of(m, "d_data");
	tap_ok(t != NULL && t->dtype == LR_DT_DOUBLE && ((const double *)t->data)[0] == 0.1,
	       "double keeps its precision (0.1 is not rounded to float32)");
	t = init_of(m, "scalar");
	tap_ok(t != NULL && t->ndim == 0 && floats_are(t, 1, (float[]){ 42.0f }),
	       "rank-0 initializer");
	t = init_of(m, "empty");
	tap_ok(t != NULL && t->ndim == 2 && t->dims[0] == 0 && t->dims[1] == 3 &&
	       t->nelem == 0, "initializer with a zero dimension and no data");
	tap_ok(m->values[lr_model_find_value(m, "h_raw")].elem_type == 10,
	       "the value keeps the ONNX element type");
	lr_model_free(m);
}

/* float16 corner values from hand-made raw_data. */
static void test_float16(void)
{
	static const uint16_t h[] = { 0x0001, 0x03ff, 0x0400, 0x8000, 0x7c00, 0xfc00,
				      0x7e00, 0x3555 };
	const float want[] = { 0x1p-24f, 1023 * 0x1p-24f, 0x1p-14f, -0.0f, INFINITY,
			       -INFINITY, NAN, 0.333251953125f };
	pb t = { 0 }, g = { 0 }, m = { 0 };
	uint8_t raw[16];
	lr_model *mod;
	lr_msg msg;
	int rc;

	for (int i = 0; i < 8; i++) {
		raw[2 * i] = (uint8_t)(h[i] & 0xff);
		raw[2 * i + 1] = (uint8_t)(h[i] >> 8);
	}
	pb_vint(&t, 1, 8);
	pb_vint(&t, 2, 10);
	pb_str(&t, 8, "h");
	pb_bytes(&t, 9, raw, sizeof(raw));
	pb_msg(&g, 5, &t);
	pb_vi(&g, 12, "h", 1, (int64_t[]){ 8 });
	pb_model(&m, &g, 13);
	rc = load_pb(&m, "f16", &mod, &msg);
	tap_ok(rc == 0 && floats_are(init_of(mod, "h"), 8, want),
	       "float16 subnormals, signed zero, infinities, NaN and rounding convert exactly");
	if (rc != 0)
		tap_diag("%s", msg.text);
	lr_model_free(mod);
	free(m.p);
}

/*
 * Branches run in the file's order: a sorted file keeps its order (ONNX
 * Runtime's), and an unsorted one takes the ready node first in the file.
 * A first-in first-out Kahn queue ran "d" (ready from the start) second
 * in both graphs.
 */
static void test_branch_order(void)
{
	static const char *const files[2][5][3] = {
		{ { "n0", "x", "a" }, { "n1", "a", "b" }, { "n2", "b", "c" }, { "n3", "x", "d" },
		  { "n4", "c,d", "y" } },
		{ { "n4", "c,d", "y" }, { "n2", "b", "c" }, { "n1", "a", "b" }, { "n0", "x", "a" },
		  { "n3", "x", "d" } },
	};
	static const char *const want[2] = { "n0 n1 n2 n3 n4", "n0 n1 n2 n3 n4" };

	for (int f = 0; f < 2; f++) {
		pb g = { 0 }, m = { 0 };
		lr_model *mod;
		lr_msg msg;
		char got[64] = "";
		int rc;

		pb_vi(&g, 11, "x", 1, (int64_t[]){ 4 });
		for (int i = 0; i < 5; i++)
			pb_node(&g, i == (f ? 0 : 4) ? "Add" : "Relu", files[f][i][0], files[f][i][1],
				files[f][i][2]);
		pb_vi(&g, 12, "y", 1, (int64_t[]){ 4 });
		pb_model(&m, &g, 13);
		rc = load_pb(&m, "order", &mod, &msg);
		for (int i = 0; rc == 0 && i < mod->nnodes; i++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? " " : "",
				 mod->nodes[i].name);
		if (!tap_ok(rc == 0 && strcmp(got, want[f]) == 0, "%s: nodes run %s (got '%s')",
			    f ? "nodes out of order, a branch" : "a sorted file with a branch",
			    want[f], got))
			tap_diag("rc %d: %s", rc, msg.text);
		lr_model_free(mod);
		free(m.p);
	}
}

static void test_structure(void)
{
	lr_model *m;
	int64_t ints[8];
	int count;

	m = load_corpus("good_initializer_input.onnx");
	if (m != NULL) {
		tap_ok(m->ninputs == 1 && strcmp(m->values[m->inputs[0]].name, "x") == 0,
		       "graph inputs that are initializers are not in m->inputs");
		tap_ok(m->values[lr_model_find_value(m, "w")].init != NULL &&
		       !m->values[lr_model_find_value(m, "w")].graph_input,
		       "such an input is an initializer value");
		tap_ok(m->ir_version == 3 && m->opset == 9, "ir_version 3, opset 9");
		lr_model_free(m);
	}

	m = load_corpus("good_out_of_order.onnx");
	if (m != NULL) {
		tap_ok(m->nnodes == 3 && strcmp(m->nodes[0].name, "n1") == 0 &&
		       strcmp(m->nodes[1].name, "n2") == 0 && strcmp(m->nodes[2].name, "n3") == 0,
		       "nodes listed out of order are sorted topologically");
		tap_ok(m->nnodes == 3 && m->nodes[0].proto_index == 2 &&
		       m->nodes[1].proto_index == 1 && m->nodes[2].proto_index == 0,
		       "proto_index keeps the file position");
		tap_ok(m->values[lr_model_find_value(m, "a")].producer == 0 &&
		       m->values[lr_model_find_value(m, "b")].producer == 1 &&
		       m->values[lr_model_find_value(m, "a")].nconsumers == 2,
		       "producers point into the sorted order; consumers counted per input");
		lr_model_free(m);
	}

	m = load_corpus("good_unnamed_nodes.onnx");
	if (m != NULL) {
		tap_ok(m->nnodes == 4 && strcmp(m->nodes[3].name, "#3 producing 'y'") == 0 &&
		       strcmp(m->nodes[0].name, "#0 producing 'a'") == 0,
		       "unnamed nodes are named \"#<index> producing '<output>'\" (got '%s')",
		       m->nnodes == 4 ? m->nodes[3].name : "?");
		lr_model_free(m);
	}

	m = load_corpus("good_conv_relu.onnx");
	if (m != NULL) {
		const lr_node *conv = &m->nodes[0];

		tap_ok(strcmp(conv->op_type, "Conv") == 0 &&
		       lr_node_attr_ints(conv, "pads", ints, 8, &count) == 0 && count == 4 &&
		       ints[0] == 1 && ints[3] == 1, "Conv pads attribute");
		tap_ok(lr_node_attr_ints(conv, "strides", ints, 8, &count) == 1 && count == 0 &&
		       lr_node_attr_int(conv, "group", 1) == 1 &&
		       lr_node_attr(conv, "dilations") == NULL, "absent attributes give defaults");
		tap_ok(lr_node_attr_ints(conv, "pads", ints, 2, &count) == LR_EMODEL,
		       "an ints attribute longer than the buffer is refused");
		tap_ok(m->ninputs == 1 && m->noutputs == 1 &&
		       m->values[m->inputs[0]].ndim == 4 && m->values[m->inputs[0]].dims[1] == 3 &&
		       m->values[m->inputs[0]].elem_type == 1, "declared input shape and type");
		lr_model_free(m);
	}

	m = load_corpus("good_shape_chain.onnx");
	if (m != NULL) {
		int64_t dims[LR_MAX_DIMS];

		tap_ok(lr_input_shape(m, 0, 5, dims) == 4 && dims[0] == 5 && dims[1] == 3,
		       "symbolic batch dimension is unknown (-1) and filled by lr_input_shape");
		lr_model_free(m);
	}
}

/* Names synthesized for unnamed nodes appear in messages. */
static void test_unnamed_messages(void)
{
	pb g = { 0 }, m = { 0 };
	lr_model *mod;
	lr_msg msg;
	int rc;

	pb_vi(&g, 11, "x", 1, (int64_t[]){ 4 });
	pb_node(&g, "Relu", NULL, "x", "a");
	pb_node(&g, "RandomNormalLike", NULL, "a", "v");
	pb_node(&g, "StringSplit", "", "v", NULL);
	pb_vi(&g, 12, "a", 1, (int64_t[]){ 4 });
	pb_model(&m, &g, 13);
	rc = load_pb(&m, "unnamed", &mod, &msg);
	if (!tap_ok(rc == LR_EUNSUPPORTED && contains(msg.text, "RandomNormalLike (nodes: '#1 producing 'v'')") &&
		    contains(msg.text, "StringSplit (nodes: '#2')"),
		    "unsupported unnamed nodes are listed as '#1 producing 'v'' and '#2'"))
		tap_diag("rc %d: %s", rc, msg.text);
	lr_model_free(mod);
	free(m.p);

	memset(&g, 0, sizeof(g));
	memset(&m, 0, sizeof(m));
	pb_vi(&g, 11, "x", 1, (int64_t[]){ 4 });
	pb_node(&g, "Relu", NULL, "x", "a");
	pb_node(&g, "Relu", NULL, "a", "b");
	pb_node(&g, "Relu", NULL, "b,x", "c");
	pb_vi(&g, 12, "c", 1, (int64_t[]){ 4 });
	pb_model(&m, &g, 13);
	rc = load_pb(&m, "unnamed", &mod, &msg);
	if (!tap_ok(rc == LR_EMODEL && contains(msg.text, "node '#2 producing 'c'' (Relu)"),
		    "a bad unnamed node is named in the message"))
		tap_diag("rc %d: %s", rc, msg.text);
	lr_model_free(mod);
	free(m.p);

	memset(&g, 0, sizeof(g));
	memset(&m, 0, sizeof(m));
	pb_vi(&g, 11, "x", 1, (int64_t[]){ 4 });
	pb_node(&g, "Relu", NULL, "x", "a");
	pb_node(&g, "Relu", NULL, "missing", "b");
	pb_vi(&g, 12, "b", 1, (int64_t[]){ 4 });
	pb_model(&m, &g, 13);
	rc = load_pb(&m, "unnamed", &mod, &msg);
	if (!tap_ok(rc == LR_EMODEL && contains(msg.text, "node '#1 producing 'b'' (Relu)") &&
		    contains(msg.text, "'missing'") && contains(msg.text, "not produced"),
		    "dangling input of an unnamed node"))
		tap_diag("rc %d: %s", rc, msg.text);
	lr_model_free(mod);
	free(m.p);
}

/* GraphProto -> NodeProto -> AttributeProto -> GraphProto, `levels` times. */
static void nested_model(pb *m, int levels, int innermost_node)
{
	pb inner = { 0 };

	if (innermost_node)
		pb_node(&inner, "Relu", "deepest", "x", "y");
	for (int i = 0; i < levels; i++) {
		pb attr = { 0 }, node = { 0 }, graph = { 0 };

		pb_str(&attr, 1, "then_branch");
		pb_vint(&attr, 20, 5);
		pb_msg(&attr, 6, &inner);
		pb_str(&node, 4, "If");
		pb_str(&node, 3, "if");
		pb_msg(&node, 5, &attr);
		pb_msg(&graph, 1, &node);
		inner = graph;
	}
	pb_model(m, &inner, 13);
}

static void test_nesting(void)
{
	pb m = { 0 };
	lr_model *mod;
	lr_msg msg;
	int rc;

	/* model(0) > graph(1) > [node, attribute, graph] x 21 = depth 64 */
	nested_model(&m, 21, 0);
	rc = load_pb(&m, "deep64", &mod, &msg);
	if (!tap_ok(rc == LR_ELIMIT && contains(msg.text, "subgraphs nest deeper than 16") &&
		    contains(msg.text, "subgraph 'then_branch' of node 'if' (If)"),
		    "nesting of exactly %d levels is parsed (then refused: 21 subgraph levels, "
		    "more than 16)", LR_ONNX_MAX_DEPTH))
		tap_diag("rc %d: %s", rc, msg.text);
	lr_model_free(mod);
	free(m.p);

	memset(&m, 0, sizeof(m));
	nested_model(&m, 21, 1);
	rc = load_pb(&m, "deep65", &mod, &msg);
	if (!tap_ok(rc == LR_EMODEL && contains(msg.text, "nested deeper than 64"),
		    "nesting of %d levels is refused before parsing", LR_ONNX_MAX_DEPTH + 1))
		tap_diag("rc %d: %s", rc, msg.text);
	lr_model_free(mod);
	free(m.p);

	memset(&m, 0, sizeof(m));
	nested_model(&m, 2000, 0);
	rc = load_pb(&m, "deep6000", &mod, &msg);
	tap_ok(rc == LR_EMODEL && contains(msg.text, "nested"),
	       "6000 levels are refused without recursion");
	lr_model_free(mod);
	free(m.p);
}

/* Unknown fields at every level survive load + pack + save + reload. */
static void test_unknown_fields(void)
{
	static const float w[4] = { 1, 2, 3, 4 };
	pb t = { 0 }, g = { 0 }, m = { 0 }, n = { 0 }, meta = { 0 };
	pb want_model = { 0 }, want_graph = { 0 }, want_node = { 0 }, want_tensor = { 0 };
	lr_model *mod = NULL, *mod2 = NULL;
	uint8_t *p = NULL, *p2 = NULL;
	size_t np = 0, np2 = 0;
	lr_msg msg;
	char saved[8400];
	int rc;

	/* initializer with an unknown field 3002 */
	pb_vint(&t, 1, 4);
	pb_vint(&t, 2, 1);
	pb_str(&t, 8, "w");
	pb_bytes(&t, 9, w, sizeof(w));
	pb_str(&want_tensor, 3002, "tensor-future-field");
	pb_put(&t, want_tensor.p, want_tensor.n);
	/* node with IR 10 metadata_props (9) */
	pb_str(&n, 1, "x");
	pb_str(&n, 1, "w");
	pb_str(&n, 2, "y");
	pb_str(&n, 3, "add");
	pb_str(&n, 4, "Add");
	pb_str(&meta, 1, "node-key");
	pb_str(&meta, 2, "node-value");
	pb_bytes(&want_node, 9, meta.p, meta.n);
	pb_put(&n, want_node.p, want_node.n);
	pb_msg(&g, 1, &n);
	pb_msg(&g, 5, &t);
	pb_vi(&g, 11, "x", 1, (int64_t[]){ 4 });
	pb_vi(&g, 12, "y", 1, (int64_t[]){ 4 });
	/* graph with IR 10 metadata_props (16) and a varint field 3001 */
	pb_bytes(&want_graph, 16, meta.p, meta.n);
	pb_vint(&want_graph, 3001, 987654321);
	pb_put(&g, want_graph.p, want_graph.n);
	pb_model(&m, &g, 13);
	/* model: IR 11 configuration (27) and a fixed64 field 2001 */
	pb_str(&want_model, 27, "device-configuration");
	pb_varint(&want_model, 2001u << 3 | 1);
	pb_put(&want_model, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	pb_put(&m, want_model.p, want_model.n);

	rc = load_pb(&m, "unknown", &mod, &msg);
	tap_ok(rc == 0, "a model with unknown fields at four levels loads");
	if (rc != 0) {
		tap_diag("%s", msg.text);
		goto out;
	}
	tap_ok(floats_are(init_of(mod, "w"), 4, w), "the initializer with an unknown field is intact");
	rc = lr_model_pack(mod, &p, &np);
	tap_ok(rc == 0 && mem_contains(p, np, want_model.p, want_model.n) &&
	       mem_contains(p, np, want_graph.p, want_graph.n) &&
	       mem_contains(p, np, want_node.p, want_node.n) &&
	       mem_contains(p, np, want_tensor.p, want_tensor.n),
	       "lr_model_pack keeps the unknown fields of model, graph, node and tensor");
	tap_ok(rc == 0 && np == m.n && memcmp(p, m.p, np) == 0,
	       "pack reproduces the input bytes exactly");
	snprintf(saved, sizeof(saved), "%s/unknown_saved.onnx", tmpdir);
	rc = lr_model_save(mod, saved, &msg);
	tap_ok(rc == 0, "lr_model_save");
	rc = lr_model_load(saved, NULL, &mod2, &msg);
	tap_ok(rc == 0 && lr_model_pack(mod2, &p2, &np2) == 0 && np2 == np &&
	       memcmp(p, p2, np) == 0, "save + reload gives the same bytes");
out:
	lr_model_free(mod);
	lr_model_free(mod2);
	free(p);
	free(p2);
	free(m.p);
	free(meta.p);
	free(want_model.p);
	free(want_graph.p);
	free(want_node.p);
	free(want_tensor.p);
}

static void test_ir10_corpus_file(void)
{
	lr_model *m = load_corpus("good_ir10_unknown_fields.onnx");
	/* what make_onnx_corpus.py appended: ld(27, ...) and field 1000 */
	static const uint8_t cfg[] = "lowrank-device-config";
	static const uint8_t node_meta[] = "node-meta-value";
	static const uint8_t f1000[] = { 0xc0, 0x3e, 0x95, 0x9a, 0xef, 0x3a };
	uint8_t *p = NULL;
	size_t n = 0;

	if (m == NULL)
		return;
	tap_ok(m->ir_version == 10 && m->opset == 21, "IR 10 / opset 21 model");
	tap_ok(lr_model_pack(m, &p, &n) == 0 && mem_contains(p, n, cfg, sizeof(cfg) - 1) &&
	       mem_contains(p, n, node_meta, sizeof(node_meta) - 1) &&
	       mem_contains(p, n, f1000, sizeof(f1000)),
	       "IR 10/11 fields unknown to our onnx.proto survive packing");
	free(p);
	lr_model_free(m);
}

/* metadata_props, doc strings and foreign opsets after a save, per python. */
static void test_metadata_python(void)
{
	static const char check[] =
		"import sys, onnx\n"
		"m = onnx.load(sys.argv[1])\n"
		"assert {p.key: p.value for p in m.metadata_props} == "
		"{'author': 'lowrank', 'license': 'MIT'}, m.metadata_props\n"
		"assert m.doc_string == 'model doc'\n"
		"assert m.graph.doc_string == 'graph doc'\n"
		"assert m.graph.node[0].doc_string == 'node doc'\n"
		"assert [(o.domain, o.version) for o in m.opset_import] == "
		"[('', 13), ('com.microsoft', 1), ('ai.onnx.ml', 3)], m.opset_import\n"
		"assert m.producer_name == 'make_onnx_corpus' and m.producer_version == '1'\n"
		"assert m.model_version == 7 and m.ir_version == 8\n"
		"onnx.checker.check_model(m)\n";
	lr_model *m = load_corpus("good_metadata_domains.onnx");
	char saved[8400];
	lr_msg msg = { { 0 } };
	const char *args[] = { "-c", check, saved, NULL };

	if (m == NULL)
		return;
	snprintf(saved, sizeof(saved), "%s/metadata_saved.onnx", tmpdir);
	tap_ok(lr_model_save(m, saved, &msg) == 0, "save the metadata model");
	tap_ok(run_python(args) == 0,
	       "python onnx sees metadata_props, doc strings, opset imports of other domains after the save");
	lr_model_free(m);
}

/* ---- external data ------------------------------------------------------- */

static const char ext_script[] =
	"import os, shutil, sys, onnx\n"
	"src, d = sys.argv[1], sys.argv[2]\n"
	"m = onnx.load(src)\n"
	"os.makedirs(d + '/ext')\n"
	"onnx.save(m, d + '/ext/model.onnx', save_as_external_data=True,\n"
	"          all_tensors_to_one_file=True, location='weights.bin', size_threshold=0)\n"
	"base = onnx.load(d + '/ext/model.onnx', load_external_data=False)\n"
	"assert all(t.data_location == onnx.TensorProto.EXTERNAL for t in base.graph.initializer)\n"
	"def variant(name, edit, weights=True):\n"
	"    mm = onnx.ModelProto()\n"
	"    mm.CopyFrom(base)\n"
	"    for t in mm.graph.initializer:\n"
	"        kv = {e.key: e.value for e in t.external_data}\n"
	"        kv = edit(t.name, kv)\n"
	"        del t.external_data[:]\n"
	"        for k, v in kv.items():\n"
	"            e = t.external_data.add()\n"
	"            e.key, e.value = k, v\n"
	"    os.makedirs(d + '/' + name)\n"
	"    if weights:\n"
	"        shutil.copy(d + '/ext/weights.bin', d + '/' + name + '/weights.bin')\n"
	"    with open(d + '/' + name + '/model.onnx', 'wb') as f:\n"
	"        f.write(mm.SerializeToString())\n"
	"def setkv(**kw):\n"
	"    return lambda n, kv: dict(kv, **kw)\n"
	"variant('subdir', setkv(location='data/weights.bin'), False)\n"
	"os.makedirs(d + '/subdir/data')\n"
	"shutil.copy(d + '/ext/weights.bin', d + '/subdir/data/weights.bin')\n"
	"variant('abs', setkv(location=os.path.abspath(d + '/ext/weights.bin')), False)\n"
	"variant('dotdot', setkv(location='../ext/weights.bin'), False)\n"
	"variant('dotdot_inner', setkv(location='data/../weights.bin'))\n"
	"variant('link', lambda n, kv: kv, False)\n"
	"os.symlink('../ext/weights.bin', d + '/link/weights.bin')\n"
	"variant('dirlink', setkv(location='sub/weights.bin'), False)\n"
	"os.symlink('../ext', d + '/dirlink/sub')\n"
	"variant('innerlink', setkv(location='alias.bin'))\n"
	"os.symlink('weights.bin', d + '/innerlink/alias.bin')\n"
	"size = os.path.getsize(d + '/ext/weights.bin')\n"
	"variant('short', lambda n, kv: dict(kv, offset=str(size - 4)) if n == 'w' else kv)\n"
	"variant('badlen', lambda n, kv: dict(kv, length='5') if n == 'w' else kv)\n"
	"variant('noloc', lambda n, kv: {k: v for k, v in kv.items() if k != 'location'})\n"
	"variant('badkey', setkv(color='blue'))\n"
	"variant('negoff', setkv(offset='-4'))\n"
	"variant('isdir', setkv(location='adir'))\n"
	"os.makedirs(d + '/isdir/adir')\n";

static void ext_refused(const char *sub, int want, const char *w1, const char *w2,
			const char *what)
{
	char path[8400];
	lr_model *m = NULL;
	lr_msg msg = { { 0 } };
	int rc;

	snprintf(path, sizeof(path), "%s/%s/model.onnx", tmpdir, sub);
	rc = lr_model_load(path, NULL, &m, &msg);
	if (!tap_ok(rc == want && m == NULL && contains(msg.text, w1) &&
		    (w2 == NULL || contains(msg.text, w2)), "external data: %s is refused", what))
		tap_diag("rc %d: %s", rc, msg.text);
	lr_model_free(m);
}

static int same_initializers(const lr_model *a, const lr_model *b)
{
	int n = 0;

	for (int v = 0; v < a->nvalues; v++) {
		const lr_tensor *x = a->values[v].init, *y;

		if (x == NULL)
			continue;
		y = init_of(b, a->values[v].name);
		if (y == NULL || y->dtype != x->dtype || y->ndim != x->ndim ||
		    memcmp(y->dims, x->dims, sizeof(int64_t) * (size_t)x->ndim) != 0 ||
		    memcmp(y->data, x->data, lr_tensor_bytes(x)) != 0)
			return 0;
		n++;
	}
	return n;
}

static void test_external_data(void)
{
	const char *args[] = { "-c", ext_script, NULL, tmpdir, NULL };
	char src[8400], path[8400], cwd[4096];
	lr_model *inl, *m = NULL;
	lr_msg msg = { { 0 } };
	uint8_t *buf;
	size_t len;
	int rc;

	snprintf(src, sizeof(src), "%s/good_conv_relu.onnx", corpus);
	args[2] = src;
	tap_ok(run_python(args) == 0, "python writes models with external data");
	inl = load_corpus("good_conv_relu.onnx");

	snprintf(path, sizeof(path), "%s/ext/model.onnx", tmpdir);
	m = load_ok(path, "model saved by onnx.save(save_as_external_data=True)");
	tap_ok(m != NULL && inl != NULL && same_initializers(inl, m) == 2,
	       "external weights equal the inline ones");
	lr_model_free(m);
	m = NULL;

	snprintf(path, sizeof(path), "%s/subdir/model.onnx", tmpdir);
	m = load_ok(path, "external data in a subdirectory of the model's directory");
	tap_ok(m != NULL && inl != NULL && same_initializers(inl, m) == 2,
	       "subdirectory weights equal the inline ones");
	lr_model_free(m);
	m = NULL;

	/* A bare file name: the directory is ".". */
	snprintf(path, sizeof(path), "%s/ext", tmpdir);
	if (getcwd(cwd, sizeof(cwd)) != NULL && chdir(path) == 0) {
		rc = lr_model_load("model.onnx", NULL, &m, &msg);
		tap_ok(rc == 0 && inl != NULL && same_initializers(inl, m) == 2,
		       "a path without a directory finds external data in the current directory");
		lr_model_free(m);
		m = NULL;
		if (chdir(cwd) != 0)
			tap_diag("cannot return to %s", cwd);
	} else {
		tap_ok(0, "chdir into the external data directory");
	}

	ext_refused("abs", LR_EMODEL, "relative path", "weights.bin", "an absolute location");
	ext_refused("dotdot", LR_EMODEL, "relative path", "'../ext/weights.bin'", "a '..' location");
	ext_refused("dotdot_inner", LR_EMODEL, "relative path", "'data/../weights.bin'",
		    "a location with an inner '..'");
	ext_refused("link", LR_EMODEL, "symlink", "'weights.bin'",
		    "a symlink pointing outside the directory");
	ext_refused("dirlink", LR_EMODEL, "symlink", "'sub/weights.bin'",
		    "a path through a symlinked directory");
	ext_refused("innerlink", LR_EMODEL, "symlink", "'alias.bin'",
		    "any symlink, even one inside the directory,");
	ext_refused("short", LR_EMODEL, "too short", "tensor 'w'", "data past the end of the file");
	ext_refused("badlen", LR_EMODEL, "length 5", "tensor 'w'", "a length that contradicts the shape");
	ext_refused("noloc", LR_EMODEL, "no location", NULL, "a missing location");
	ext_refused("badkey", LR_EMODEL, "unknown external data key 'color'", NULL, "an unknown key");
	ext_refused("negoff", LR_EMODEL, "offset '-4'", NULL, "a negative offset");
	ext_refused("isdir", LR_EMODEL, "'adir'", "not a regular file", "a directory");

	snprintf(path, sizeof(path), "%s/ext/model.onnx", tmpdir);
	buf = read_file(path, &len);
	memset(&msg, 0, sizeof(msg));
	rc = lr_model_load_mem(buf ? buf : (const uint8_t *)"", len, "extmem", NULL, &m, &msg);
	tap_ok(buf != NULL && rc == LR_EMODEL && m == NULL && contains(msg.text, "not allowed"),
	       "lr_model_load_mem refuses external data");
	free(buf);
	lr_model_free(inl);
}

/* ---- limits and I/O ------------------------------------------------------ */

static void test_limits_io(void)
{
	lr_load_opts opts;
	lr_model *m = NULL;
	lr_msg msg = { { 0 } };
	char path[8400];
	int rc;

	memset(&opts, 0, sizeof(opts));
	opts.budget_bytes = 1024;
	rc = lr_model_load(path_in(corpus, "good_cnn_classifier.onnx"), &opts, &m, &msg);
	if (!tap_ok(rc == LR_ELIMIT && m == NULL && contains(msg.text, "budget"),
		    "a 1 KiB budget refuses a 1.7 kB model with LR_ELIMIT"))
		tap_diag("rc %d: %s", rc, msg.text);

	memset(&opts, 0, sizeof(opts));
	opts.max_nodes = 4;
	memset(&msg, 0, sizeof(msg));
	rc = lr_model_load(path_in(corpus, "good_shape_chain.onnx"), &opts, &m, &msg);
	if (!tap_ok(rc == LR_ELIMIT && contains(msg.text, "5 nodes") &&
		    contains(msg.text, "limit is 4"), "max_nodes"))
		tap_diag("rc %d: %s", rc, msg.text);
	opts.max_nodes = 5;
	rc = lr_model_load(path_in(corpus, "good_shape_chain.onnx"), &opts, &m, &msg);
	tap_ok(rc == 0, "max_nodes equal to the node count loads");
	lr_model_free(m);
	m = NULL;

	memset(&opts, 0, sizeof(opts));
	opts.skip_op_check = 1;
	rc = lr_model_load(path_in(corpus, "unsup_ops.onnx"), &opts, &m, &msg);
	tap_ok(rc == 0 && m != NULL && m->nnodes == 5 && m->nodes[0].op == NULL,
	       "skip_op_check loads unsupported operators (op == NULL)");
	lr_model_free(m);
	m = NULL;

	memset(&msg, 0, sizeof(msg));
	rc = lr_model_load(path_in(tmpdir, "does-not-exist.onnx"), NULL, &m, &msg);
	tap_ok(rc == LR_EIO && m == NULL && contains(msg.text, "does-not-exist.onnx") &&
	       contains(msg.text, "cannot open"), "a missing file is LR_EIO naming it");
	memset(&msg, 0, sizeof(msg));
	rc = lr_model_load(tmpdir, NULL, &m, &msg);
	tap_ok(rc == LR_EIO && contains(msg.text, "not a regular file"),
	       "a directory is LR_EIO");

	m = load_corpus("good_gemm.onnx");
	if (m != NULL) {
		memset(&msg, 0, sizeof(msg));
		snprintf(path, sizeof(path), "%s/no/such/dir/out.onnx", tmpdir);
		rc = lr_model_save(m, path, &msg);
		tap_ok(rc == LR_EIO && contains(msg.text, "out.onnx"),
		       "saving into a missing directory is LR_EIO naming the file");
		snprintf(path, sizeof(path), "%s/over.onnx", tmpdir);
		tap_ok(write_file(path, "old", 3) == 0 && lr_model_save(m, path, &msg) == 0,
		       "saving over an existing file");
		lr_model_free(m);
		m = NULL;
		rc = lr_model_load(path, NULL, &m, &msg);
		tap_ok(rc == 0, "the overwritten file is the new model");
		lr_model_free(m);
	}
}

/* ---- main ---------------------------------------------------------------- */

int main(void)
{
	python = tenv_python();
	tenv_srcdir(srcdir, sizeof(srcdir), __FILE__, "/tests/unit/test_onnx.c");
	if (tenv_mkdtemp(tmpdir, sizeof(tmpdir), "lr-test-onnx") != 0) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	snprintf(corpus, sizeof(corpus), "%s/corpus", tmpdir);
	tap_diag("python: %s, sources: %s, scratch: %s", python, srcdir, tmpdir);

	test_generate();
	test_coverage();
	test_refused();
	test_run_fails(COUNT(run_fails), run_fails);
	test_good();
	test_typed_data();
	test_float16();
	test_structure();
	test_branch_order();
	test_unnamed_messages();
	test_nesting();
	test_unknown_fields();
	test_ir10_corpus_file();
	test_metadata_python();
	test_external_data();
	test_limits_io();
	test_run_fails(1, &blowup);

	if (tap_failed == 0)
		rm_rf(tmpdir);
	else
		tap_diag("kept %s for inspection", tmpdir);
	return tap_done();
}
