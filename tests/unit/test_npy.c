/*
 * test_npy.c - the .npy reader and writer against files written by the
 * real numpy (generated at test time with python3), hand-made malformed
 * buffers, and numpy loading what lr_npy_write wrote.
 *
 * python3 with numpy is a declared dependency: when it is missing the
 * numpy tests FAIL rather than skip. $PYTHON3 (set by `make check`) wins
 * over /usr/bin/python3.
 */
#include "config.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/npy.h"
#include "tests/unit/tap.h"
#include "tests/unit/testenv.h"

static char tmpdir[4096];
static const char *python;

/* Runs `python -c code arg`; the child's stdout goes to stderr (not TAP). */
static int run_python(const char *code, const char *arg)
{
	const char *args[] = { "-c", code, arg, NULL };

	return tenv_run(python, args);
}

static const char *fx(const char *name)
{
	static char path[8192];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

/* Writes fixtures with numpy's own writer. */
static const char gen_script[] =
	"import sys, numpy as np\n"
	"d = sys.argv[1]\n"
	"def save(n, a):\n"
	"    np.save(d + '/' + n, a)\n"
	"save('f4c.npy', (np.arange(24, dtype='<f4') * 0.5 - 3).reshape(2, 3, 4))\n"
	"a = np.asfortranarray(np.arange(6, dtype='<f4').reshape(2, 3))\n"
	"assert a.flags.f_contiguous and not a.flags.c_contiguous\n"
	"save('f4f2.npy', a)\n"
	"save('f4f3.npy', np.asfortranarray(np.arange(24, dtype='<f4').reshape(2, 3, 4)))\n"
	"save('f4fbig.npy', np.asfortranarray(np.arange(301 * 257, dtype='<f4').reshape(301, 257)))\n"
	"save('f8f.npy', np.asfortranarray(np.arange(60, dtype='<f8').reshape(3, 4, 5) / 4))\n"
	"save('i8f.npy', np.asfortranarray(np.arange(12, dtype='<i8').reshape(3, 4) * -10**12))\n"
	"save('f8.npy', np.array([1/3, -0.0, 1e300, -1e300, 1e-50, np.nan, 2.5, 16777217.0], dtype='<f8'))\n"
	"save('f2.npy', np.array([1, -2.5, 65504, np.inf, -np.inf, np.nan, 2.0**-24, 2.0**-14,"
	" 3 * 2.0**-24, -0.0, 0.1, -1023 * 2.0**-24], dtype='<f2'))\n"
	"h = np.arange(65536, dtype='<u2').view('<f2')\n"
	"save('f2all.npy', h)\n"
	"save('f2all_f4.npy', h.astype('<f4'))\n"
	"save('f2big.npy', (np.arange(100000) % 2048).astype('<f2'))\n"
	"save('u1.npy', np.arange(256, dtype='u1').reshape(16, 16))\n"
	"save('i8.npy', np.array([-2**63, 2**63 - 1, -1, 0, 1234567890123], dtype='<i8'))\n"
	"save('scalar.npy', np.array(3.25, dtype='<f4'))\n"
	"save('empty.npy', np.zeros((0, 3), dtype='<f4'))\n"
	"for v in (2, 3):\n"
	"    with open(d + '/v%d.npy' % v, 'wb') as f:\n"
	"        np.lib.format.write_array(f, np.arange(10, dtype='<f4').reshape(2, 5), version=(v, 0))\n"
	"save('be.npy', np.arange(3, dtype='>f4'))\n"
	"save('obj.npy', np.array([1, 'a'], dtype=object))\n"
	"save('str.npy', np.array(['abc', 'de']))\n"
	"save('rec.npy', np.zeros(2, dtype=[('a', '<f4'), ('b', '<i8')]))\n"
	"save('bool.npy', np.array([True, False]))\n"
	"save('i4.npy', np.arange(3, dtype='<i4'))\n";

/* Loads what lr_npy_write wrote and compares with the expected values. */
static const char check_script[] =
	"import sys, numpy as np\n"
	"d = sys.argv[1]\n"
	"def load(n, dt, shape):\n"
	"    with open(d + '/' + n, 'rb') as f:\n"
	"        assert np.lib.format.read_magic(f) == (1, 0)\n"
	"        s, fo, t = np.lib.format.read_array_header_1_0(f)\n"
	"        assert s == shape and not fo and t == np.dtype(dt), (n, s, fo, t)\n"
	"        assert f.tell() % 64 == 0, f.tell()\n"
	"    a = np.load(d + '/' + n, allow_pickle=False)\n"
	"    assert a.dtype == np.dtype(dt) and a.shape == shape, (n, a.dtype, a.shape)\n"
	"    return a\n"
	"a = load('w_f4.npy', '<f4', (2, 3, 4))\n"
	"e = (np.arange(24, dtype='<f4') * 0.25 - 1.5).reshape(2, 3, 4)\n"
	"e[1, 2, 3] = -np.inf\n"
	"assert np.array_equal(a, e), a\n"
	"a = load('w_i8.npy', '<i8', (5,))\n"
	"assert a.tolist() == [-2**63, 2**63 - 1, -1, 0, 1234567890123], a\n"
	"a = load('w_scalar.npy', '<f4', ())\n"
	"assert a.item() == -7.5, a\n"
	"a = load('w_empty.npy', '<f4', (0, 3))\n"
	"a = load('w_8d.npy', '<f4', (1, 2, 1, 2, 1, 2, 1, 2))\n"
	"assert a.ravel().tolist() == list(range(16)), a\n";

static lr_tensor *load(const char *name, lr_msg *m)
{
	lr_tensor *t = NULL;
	int rc;

	memset(m, 0, sizeof(*m));
	rc = lr_npy_read(fx(name), &t, m);
	if (rc != 0) {
		tap_ok(0, "read %s: %s (%s)", name, lr_strerror(rc), m->text);
		return NULL;
	}
	return t;
}

static int shape_is(const lr_tensor *t, lr_dtype dt, int ndim,
		    const int64_t *dims)
{
	if (t->dtype != dt || t->ndim != ndim)
		return 0;
	for (int i = 0; i < ndim; i++)
		if (t->dims[i] != dims[i])
			return 0;
	return 1;
}

/* Every element equals `a * i + b` (i = C-order index). */
static int ramp_is(const lr_tensor *t, double a, double b)
{
	const float *f = t->data;

	for (int64_t i = 0; i < t->nelem; i++)
		if (f[i] != (float)(a * (double)i + b))
			return 0;
	return 1;
}

static void test_numpy_fixtures(void)
{
	lr_msg m;
	lr_tensor *t, *u;
	const float *f;
	const int64_t *q;

	t = load("f4c.npy", &m);
	if (t) {
		tap_ok(shape_is(t, LR_DT_FLOAT, 3, (int64_t[]){ 2, 3, 4 }) &&
		       ramp_is(t, 0.5, -3), "f4 C order: shape and values");
		lr_tensor_free(t);
	}
	t = load("f4f2.npy", &m);
	if (t) {
		f = t->data;
		tap_ok(shape_is(t, LR_DT_FLOAT, 2, (int64_t[]){ 2, 3 }) &&
		       ramp_is(t, 1, 0),
		       "f4 Fortran 2-D transposed to C order: %g %g %g %g %g %g",
		       f[0], f[1], f[2], f[3], f[4], f[5]);
		lr_tensor_free(t);
	}
	t = load("f4f3.npy", &m);
	if (t) {
		tap_ok(shape_is(t, LR_DT_FLOAT, 3, (int64_t[]){ 2, 3, 4 }) &&
		       ramp_is(t, 1, 0), "f4 Fortran 3-D transposed to C order");
		lr_tensor_free(t);
	}
	t = load("f4fbig.npy", &m);
	if (t) {
		tap_ok(shape_is(t, LR_DT_FLOAT, 2, (int64_t[]){ 301, 257 }) &&
		       ramp_is(t, 1, 0),
		       "f4 Fortran 301x257 (several chunks) in C order");
		lr_tensor_free(t);
	}
	t = load("f8f.npy", &m);
	if (t) {
		tap_ok(shape_is(t, LR_DT_FLOAT, 3, (int64_t[]){ 3, 4, 5 }) &&
		       ramp_is(t, 0.25, 0), "f8 Fortran 3-D converted and transposed");
		lr_tensor_free(t);
	}
	t = load("i8f.npy", &m);
	if (t) {
		int ok = shape_is(t, LR_DT_INT64, 2, (int64_t[]){ 3, 4 });

		q = t->data;
		for (int i = 0; ok && i < 12; i++)
			ok = q[i] == (int64_t)i * -1000000000000LL;
		tap_ok(ok, "i8 Fortran 2-D stays int64, C order");
		lr_tensor_free(t);
	}
	t = load("f8.npy", &m);
	if (t) {
		f = t->data;
		tap_ok(shape_is(t, LR_DT_FLOAT, 1, (int64_t[]){ 8 }) &&
		       f[0] == (float)(1.0 / 3) && f[1] == 0 && signbit(f[1]) &&
		       isinf(f[2]) && f[2] > 0 && isinf(f[3]) && f[3] < 0 &&
		       f[4] == 0 && isnan(f[5]) && f[6] == 2.5f &&
		       f[7] == 16777216.0f,
		       "f8 -> f32: rounding, -0, overflow to inf, underflow, nan");
		lr_tensor_free(t);
	}
	t = NULL;
	if (lr_npy_map(fx("f8.npy"), &t, &m) == 0) {
		f = t->data;
		tap_ok(t->map_base == NULL && t->owns_data && f[6] == 2.5f,
		       "lr_npy_map converts an '<f8' file in memory instead of mapping it");
		lr_tensor_free(t);
	} else {
		tap_ok(0, "lr_npy_map f8.npy: %s", m.text);
	}
	t = load("f2.npy", &m);
	if (t) {
		f = t->data;
		tap_ok(shape_is(t, LR_DT_FLOAT, 1, (int64_t[]){ 12 }) &&
		       f[0] == 1 && f[1] == -2.5f && f[2] == 65504 &&
		       isinf(f[3]) && f[3] > 0 && isinf(f[4]) && f[4] < 0 &&
		       isnan(f[5]) && f[6] == ldexpf(1, -24) &&
		       f[7] == ldexpf(1, -14) && f[8] == ldexpf(3, -24) &&
		       f[9] == 0 && signbit(f[9]) &&
		       f[10] == 0.0999755859375f &&
		       f[11] == -ldexpf(1023, -24),
		       "f2 -> f32: normals, inf, nan, subnormals, -0");
		lr_tensor_free(t);
	}
	t = load("f2all.npy", &m);
	u = load("f2all_f4.npy", &m);
	if (t && u) {
		const uint32_t *a = t->data, *b = u->data;
		int bad = -1;

		for (int i = 0; i < 65536 && bad < 0; i++)
			if (a[i] != b[i])
				bad = i;
		tap_ok(t->nelem == 65536 && u->nelem == 65536 && bad < 0,
		       "all 65536 f2 bit patterns convert bit-exactly like numpy (first mismatch %d)",
		       bad);
	}
	lr_tensor_free(t);
	lr_tensor_free(u);
	t = load("f2big.npy", &m);
	if (t) {
		int ok = shape_is(t, LR_DT_FLOAT, 1, (int64_t[]){ 100000 });

		f = t->data;
		for (int i = 0; ok && i < 100000; i++)
			ok = f[i] == (float)(i % 2048);
		tap_ok(ok, "f2 100000 elements across chunk boundaries");
		lr_tensor_free(t);
	}
	t = load("u1.npy", &m);
	if (t) {
		tap_ok(shape_is(t, LR_DT_FLOAT, 2, (int64_t[]){ 16, 16 }) &&
		       ramp_is(t, 1, 0), "u1 -> f32 0..255");
		lr_tensor_free(t);
	}
	t = load("i8.npy", &m);
	if (t) {
		q = t->data;
		tap_ok(shape_is(t, LR_DT_INT64, 1, (int64_t[]){ 5 }) &&
		       q[0] == INT64_MIN && q[1] == INT64_MAX && q[2] == -1 &&
		       q[3] == 0 && q[4] == 1234567890123LL,
		       "i8 stays int64 with extreme values");
		lr_tensor_free(t);
	}
	t = load("scalar.npy", &m);
	if (t) {
		tap_ok(t->ndim == 0 && t->nelem == 1 && t->dtype == LR_DT_FLOAT &&
		       *(float *)t->data == 3.25f, "0-d scalar");
		lr_tensor_free(t);
	}
	t = load("empty.npy", &m);
	if (t) {
		tap_ok(shape_is(t, LR_DT_FLOAT, 2, (int64_t[]){ 0, 3 }) &&
		       t->nelem == 0 && t->data != NULL, "empty shape (0, 3)");
		lr_tensor_free(t);
	}
	for (int v = 2; v <= 3; v++) {
		char name[32];

		snprintf(name, sizeof(name), "v%d.npy", v);
		t = load(name, &m);
		if (t) {
			tap_ok(shape_is(t, LR_DT_FLOAT, 2, (int64_t[]){ 2, 5 }) &&
			       ramp_is(t, 1, 0), "version %d.0 file", v);
			lr_tensor_free(t);
		}
	}

	static const struct {
		const char *file, *word;
	} refused[] = {
		{ "be.npy", "big-endian" }, { "obj.npy", "object" },
		{ "str.npy", "unsupported dtype '<U3'" },
		{ "rec.npy", "structured" },
		{ "bool.npy", "unsupported dtype '|b1'" },
		{ "i4.npy", "unsupported dtype '<i4'" },
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		int rc;

		memset(&m, 0, sizeof(m));
		t = NULL;
		rc = lr_npy_read(fx(refused[i].file), &t, &m);
		tap_ok(rc == LR_ENPY && t == NULL &&
		       strstr(m.text, refused[i].word) != NULL &&
		       strncmp(m.text, fx(refused[i].file),
			       strlen(fx(refused[i].file))) == 0,
		       "numpy %s refused: %s", refused[i].file, m.text);
		lr_tensor_free(t);
	}
}

/* prefix (magic, version, header length) + header text + ndata bytes. */
static unsigned char *mk(int major, const char *hdr, size_t ndata,
			 const void *data, size_t *len)
{
	size_t hl = strlen(hdr), off = major == 1 ? 10 : 12;
	unsigned char *b = malloc(off + hl + ndata + 1);

	memcpy(b, "\x93NUMPY", 6);
	b[6] = (unsigned char)major;
	b[7] = 0;
	b[8] = (unsigned char)(hl & 0xff);
	b[9] = (unsigned char)(hl >> 8);
	if (major != 1) {
		b[10] = (unsigned char)(hl >> 16);
		b[11] = (unsigned char)(hl >> 24);
	}
	memcpy(b + off, hdr, hl);
	if (data)
		memcpy(b + off + hl, data, ndata);
	else
		memset(b + off + hl, 0, ndata);
	*len = off + hl + ndata;
	return b;
}

static void bad_buf(const char *what, const void *buf, size_t len,
		    const char *word)
{
	/* An exact-size copy so ASan sees any read past the end. */
	void *copy = malloc(len ? len : 1);
	lr_tensor *t = NULL;
	lr_msg m;
	int rc;

	memcpy(copy, buf, len);
	memset(&m, 0, sizeof(m));
	rc = lr_npy_read_mem(len ? copy : NULL, len, "bad.npy", &t, &m);
	tap_ok(rc == LR_ENPY && t == NULL && strstr(m.text, word) != NULL &&
	       strncmp(m.text, "bad.npy: ", 9) == 0,
	       "refuses %s (\"%s\"): %s", what, word, m.text);
	lr_tensor_free(t);
	free(copy);
}

static void bad(const char *what, int major, const char *hdr, size_t ndata,
		const char *word)
{
	size_t len;
	unsigned char *b = mk(major, hdr, ndata, NULL, &len);

	bad_buf(what, b, len, word);
	free(b);
}

#define H(d, f, s) "{'descr': '" d "', 'fortran_order': " f ", 'shape': " s ", }\n"

static void test_bad_mem(void)
{
	unsigned char raw[64];
	char big[12000];
	lr_tensor *t = NULL;
	lr_msg m;
	size_t len;
	unsigned char *b;
	int rc;

	bad_buf("an empty buffer", "", 0, "too short to be a .npy file (0 bytes)");
	bad_buf("bad magic", "\x93NUMPZ\x01\x00\x10\x00", 10, "bad magic");
	bad_buf("a PNG", "\x89PNG\r\n\x1a\n", 8, "bad magic");
	bad_buf("the magic alone", "\x93NUMPY", 6, "too short");
	bad_buf("a v2 prefix cut short", "\x93NUMPY\x02\x00\x10\x00", 10,
		"too short");
	b = mk(1, H("<f4", "False", "(1,)"), 4, NULL, &len);
	b[6] = 4;
	bad_buf("version 4.0", b, len, "version 4.0");
	b[6] = 1;
	b[7] = 1;
	bad_buf("version 1.1", b, len, "version 1.1");
	free(b);

	memcpy(raw, "\x93NUMPY\x02\x00\x11\x27\x00\x00", 12); /* 10001 */
	bad_buf("a 10001-byte header length", raw, 12, "header is 10001 bytes");
	memcpy(raw, "\x93NUMPY\x03\x00\xff\xff\xff\xff", 12);
	bad_buf("a 4 GiB header length", raw, 12, "more than the 10000");
	memcpy(raw, "\x93NUMPY\x01\x00\x50\x00{}\n", 13);
	bad_buf("a header longer than the file", raw, 13,
		"header is truncated");
	memset(big, ' ', sizeof(big));
	memcpy(big, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 55);
	big[10000] = '\n';
	big[10001] = '\0';
	bad("a 10001-byte v2 header", 2, big, 4, "more than the 10000");
	big[9999] = '\n';
	big[10000] = '\0';
	b = mk(2, big, 4, "\0\0\x80\x3f", &len);
	rc = lr_npy_read_mem(b, len, "big.npy", &t, &m);
	tap_ok(rc == 0 && t && t->ndim == 0 && *(float *)t->data == 1.0f,
	       "a 10000-byte v2 header is accepted");
	lr_tensor_free(t);
	free(b);

	bad("a header without a newline", 1,
	    "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 4,
	    "newline");
	bad("an empty header", 1, "", 0, "newline");
	bad("a header that is not a dict", 1, "[1, 2]\n", 0, "expected '{'");
	bad("a missing shape", 1, "{'descr': '<f4', 'fortran_order': False}\n",
	    4, "missing the 'shape' key");
	bad("a missing descr", 1, "{'fortran_order': False, 'shape': ()}\n",
	    4, "missing the 'descr' key");
	bad("a missing fortran_order", 1, "{'descr': '<f4', 'shape': ()}\n",
	    4, "missing the 'fortran_order' key");
	bad("an empty dict", 1, "{}\n", 0, "missing");
	bad("a duplicate key", 1,
	    "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}\n",
	    4, "duplicate key 'descr'");
	bad("a duplicate shape", 1,
	    "{'shape': (), 'descr': '<f4', 'fortran_order': False, 'shape': ()}\n",
	    4, "duplicate key 'shape'");
	bad("an unknown key", 1,
	    "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}\n",
	    4, "unexpected key 'x'");
	bad("an unquoted key", 1,
	    "{descr: '<f4', 'fortran_order': False, 'shape': ()}\n", 4,
	    "expected a quoted key");
	bad("a missing colon", 1,
	    "{'descr' '<f4', 'fortran_order': False, 'shape': ()}\n", 4,
	    "expected ':'");
	bad("a missing comma", 1,
	    "{'descr': '<f4' 'fortran_order': False, 'shape': ()}\n", 4,
	    "expected ',' or '}'");
	bad("a double comma", 1,
	    "{'descr': '<f4',, 'fortran_order': False, 'shape': ()}\n", 4,
	    "expected a quoted key");
	bad("an unterminated string", 1, "{'descr': '<f4\n", 4,
	    "header: unsupported character");
	bad("an escape in a string", 1,
	    "{'descr': '<f\\x34', 'fortran_order': False, 'shape': ()}\n", 4,
	    "unsupported character");
	bad("mismatched quotes", 1,
	    "{'descr\": '<f4', 'fortran_order': False, 'shape': ()}\n", 4,
	    "header");
	bad("garbage after the dict", 1, H("<f4", "False", "()") "x\n", 4,
	    "unexpected bytes after the dict");
	bad("two dicts", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()} {}\n",
	    4, "unexpected bytes after the dict");
	bad("a control byte in the header", 1, "{'descr': '<f4'\x01}\n", 4, "header");
	bad("a non-ASCII string", 1, "{'descr': '<f4\xc3\xa9'}\n", 4,
	    "unsupported character");

	bad("big-endian f4", 1, H(">f4", "False", "(1,)"), 4, "big-endian");
	bad("big-endian i8", 1, H(">i8", "False", "(1,)"), 8,
	    "arr.astype(\"<i8\")");
	bad("network-order f8", 1, H("!f8", "False", "(1,)"), 8, "big-endian");
	b = mk(1, H(">f4", "False", "(1,)"), 4, NULL, &len);
	memset(&m, 0, sizeof(m));
	lr_npy_read_mem(b, len, "x.npy", &t, &m);
	tap_ok(strcmp(m.text, "x.npy: big-endian data is not supported; "
		      "convert with arr.astype(\"<f4\")") == 0,
	       "big-endian message is exact: %s", m.text);
	free(b);
	bad("an object dtype", 1, H("|O", "False", "(1,)"), 8, "object");
	bad("an object dtype '<O8'", 1, H("<O8", "False", "(1,)"), 8, "object");
	bad("a structured dtype", 1,
	    "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }\n",
	    4, "structured");
	bad("a dict descr", 1,
	    "{'descr': {'names': ['a']}, 'fortran_order': False, 'shape': (1,), }\n",
	    4, "expected a quoted descr");
	bad("a unicode dtype", 1, H("<U3", "False", "(1,)"), 12,
	    "unsupported dtype '<U3'");
	bad("a void dtype", 1, H("|V4", "False", "(1,)"), 4,
	    "unsupported dtype '|V4'");
	bad("an int32 dtype", 1, H("<i4", "False", "(1,)"), 4,
	    "unsupported dtype");
	bad("'|f4'", 1, H("|f4", "False", "(1,)"), 4, "unsupported dtype");
	bad("an empty descr", 1, H("", "False", "(1,)"), 4, "unsupported dtype");
	bad("a 40-char descr", 1,
	    H("<f4aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "False", "(1,)"), 4,
	    "too long");

	bad("fortran_order: 1", 1, H("<f4", "1", "(1,)"), 4, "fortran_order");
	bad("fortran_order: 'False'", 1, H("<f4", "'False'", "(1,)"), 4,
	    "fortran_order");
	bad("fortran_order: false", 1, H("<f4", "false", "(1,)"), 4,
	    "fortran_order");
	bad("fortran_order: Falsey", 1, H("<f4", "Falsey", "(1,)"), 4,
	    "fortran_order");

	bad("a negative dim", 1, H("<f4", "False", "(-1, 3)"), 4, "negative");
	bad("a float dim", 1, H("<f4", "False", "(3.0,)"), 12, "non-integer");
	bad("a None dim", 1, H("<f4", "False", "(None,)"), 4, "non-integer");
	bad("a hex dim", 1, H("<f4", "False", "(0x3,)"), 12, "non-integer");
	bad("a list shape", 1, H("<f4", "False", "[3]"), 12, "tuple");
	bad("a bare int shape", 1, H("<f4", "False", "3"), 12, "tuple");
	bad("a parenthesised int shape", 1, H("<f4", "False", "(3)"), 12,
	    "not a tuple");
	bad("an unclosed shape", 1, H("<f4", "False", "(3,"), 12, "shape");
	bad("a shape (,)", 1, H("<f4", "False", "(,)"), 4, "non-integer");
	bad("9 dimensions", 1, H("<f4", "False", "(1,1,1,1,1,1,1,1,1)"), 4,
	    "more than 8 dimensions");
	bad("a dim beyond int64", 1,
	    H("<f4", "False", "(9223372036854775808,)"), 4, "overflow");
	bad("shape (2**62, 8)", 1,
	    H("<f4", "False", "(4611686018427387904, 8)"), 4, "overflow");
	bad("shape (2**62,) of f4", 1,
	    H("<f4", "False", "(4611686018427387904,)"), 4, "overflow");
	bad("shape (2**61,) of u1 (f32 tensor too big)", 1,
	    H("|u1", "False", "(2305843009213693952,)"), 4, "overflow");
	bad("a huge shape with little data", 1,
	    H("<f4", "False", "(1000000000, 1000)"), 4, "truncated");

	bad("truncated data", 1, H("<f4", "False", "(2, 3)"), 23, "truncated");
	bad("no data", 1, H("<f8", "False", "(1,)"), 0, "truncated");
	bad("trailing data", 1, H("<f4", "False", "(2, 3)"), 25, "trailing");
	bad("data after an empty array", 1, H("<f4", "False", "(0, 3)"), 1,
	    "data has 1 trailing byte:");
	bad("data after a scalar", 2, H("<i8", "False", "()"), 16, "trailing");

	b = mk(1, H("<f4", "False", "(1, 3, 224, 224)"), 1000, NULL, &len);
	memset(&m, 0, sizeof(m));
	rc = lr_npy_read_mem(b, len, "calib.npy", &t, &m);
	tap_ok(rc == LR_ENPY && strcmp(m.text,
		"calib.npy: data is truncated: expected 602112 bytes for shape "
		"[1,3,224,224] '<f4', found 1000") == 0,
	       "truncated message is exact: %s", m.text);
	free(b);

	b = mk(1, H("<f4", "False", "(2,)"), 9, NULL, &len);
	memset(&m, 0, sizeof(m));
	lr_npy_read_mem(b, len, NULL, &t, &m);
	tap_ok(strcmp(m.text, "<memory>: data has 1 trailing byte: "
		      "expected 8 bytes for shape [2] '<f4', found 9") == 0,
	       "trailing message names <memory> and the counts: %s", m.text);
	free(b);
}

/* Reads a hand-made buffer that must load; returns the tensor or NULL. */
static lr_tensor *good(const char *what, int major, const char *hdr,
		       size_t ndata, const void *data)
{
	size_t len;
	unsigned char *b = mk(major, hdr, ndata, data, &len);
	lr_tensor *t = NULL;
	lr_msg m;
	int rc;

	memset(&m, 0, sizeof(m));
	rc = lr_npy_read_mem(b, len, "good.npy", &t, &m);
	free(b);
	if (rc != 0) {
		tap_ok(0, "%s: %s", what, m.text);
		return NULL;
	}
	return t;
}

static void test_good_mem(void)
{
	static const float two[2] = { 1.5f, -2.0f };
	static const float four[4] = { 1, 2, 3, 4 };
	static const unsigned char bytes[3] = { 0, 7, 255 };
	static const uint16_t halves[3] = { 0x3c00, 0x0001, 0xfc00 };
	lr_tensor *t;
	const float *f;

	t = good("double quotes, any key order", 1,
		 "{\"shape\": (2,), \"fortran_order\": False, \"descr\": \"<f4\"}\n",
		 8, two);
	if (t) {
		f = t->data;
		tap_ok(t->ndim == 1 && t->dims[0] == 2 && f[0] == 1.5f &&
		       f[1] == -2.0f, "double quotes and any key order");
		lr_tensor_free(t);
	}
	t = good("no spaces, no trailing comma, '='", 1,
		 "{'descr':'=f4','fortran_order':False,'shape':(2,)}      \n",
		 8, two);
	if (t) {
		f = t->data;
		tap_ok(f[0] == 1.5f && f[1] == -2.0f,
		       "compact dict with '=f4' (little-endian host)");
		lr_tensor_free(t);
	}
	t = good("newlines and tabs, Fortran 2x2", 1,
		 "{\n\t'descr': '<f4',\n 'fortran_order': True,\n 'shape': ( 2 , 2 , ) ,\n}\n",
		 16, four);
	if (t) {
		f = t->data;
		tap_ok(t->ndim == 2 && f[0] == 1 && f[1] == 3 && f[2] == 2 &&
		       f[3] == 4, "whitespace everywhere; Fortran 2x2 -> [1,3,2,4]");
		lr_tensor_free(t);
	}
	t = good("'|u1' with a Python 2 long", 1, H("|u1", "False", "(3L,)"),
		 3, bytes);
	if (t) {
		f = t->data;
		tap_ok(t->dims[0] == 3 && f[0] == 0 && f[1] == 7 && f[2] == 255,
		       "'|u1' and (3L,) shape");
		lr_tensor_free(t);
	}
	t = good("'<u1'", 3, H("<u1", "False", "(3,)"), 3, bytes);
	if (t) {
		tap_ok(((float *)t->data)[2] == 255, "'<u1' in a version 3.0 header");
		lr_tensor_free(t);
	}
	t = good("'<f2' v2", 2, H("<f2", "True", "(3,)"), 6, halves);
	if (t) {
		f = t->data;
		tap_ok(f[0] == 1 && f[1] == ldexpf(1, -24) && isinf(f[2]) &&
		       f[2] < 0, "'<f2' 1-D Fortran in a version 2.0 header");
		lr_tensor_free(t);
	}
	t = good("shape ( )", 1, H("<f4", "False", "( )"), 4, four);
	if (t) {
		tap_ok(t->ndim == 0 && t->nelem == 1 &&
		       *(float *)t->data == 1, "shape ( ) is a scalar");
		lr_tensor_free(t);
	}
	t = good("8 dimensions", 1, H("<f4", "False", "(1,1,1,1,1,1,2,2)"), 16,
		 four);
	if (t) {
		tap_ok(t->ndim == 8 && t->nelem == 4, "8 dimensions accepted");
		lr_tensor_free(t);
	}
	t = good("empty with a huge dim", 1,
		 H("<f4", "True", "(0, 4611686018427387904, 3)"), 0, NULL);
	if (t) {
		tap_ok(t->nelem == 0, "(0, 2**62, 3) Fortran is empty");
		lr_tensor_free(t);
	}
}

static int count_tmp_files(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, ".tmp-") != NULL)
			n++;
	closedir(d);
	return n;
}

static int write_t(const char *name, lr_tensor *t)
{
	lr_msg m;
	int rc;

	memset(&m, 0, sizeof(m));
	rc = lr_npy_write(fx(name), t, &m);
	if (rc != 0)
		tap_diag("write %s: %s", name, m.text);
	return rc;
}

static int same(const lr_tensor *a, const lr_tensor *b)
{
	return a->dtype == b->dtype && a->ndim == b->ndim &&
	       memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->ndim) == 0 &&
	       a->nelem == b->nelem &&
	       memcmp(a->data, b->data, lr_tensor_bytes(a)) == 0;
}

static void test_write(int have_numpy)
{
	lr_tensor *w = NULL, *r;
	lr_msg m;
	float *f;
	int64_t *q;
	FILE *fp;
	unsigned char h[128];
	size_t n;
	int rc;

	lr_tensor_create(&w, LR_DT_FLOAT, 3, (int64_t[]){ 2, 3, 4 }, 1);
	f = w->data;
	for (int i = 0; i < 24; i++)
		f[i] = (float)i * 0.25f - 1.5f;
	f[23] = -INFINITY;
	rc = write_t("w_f4.npy", w);
	r = rc == 0 ? load("w_f4.npy", &m) : NULL;
	tap_ok(r && same(w, r), "f32 [2,3,4] write + read roundtrip");
	lr_tensor_free(r);

	fp = fopen(fx("w_f4.npy"), "rb");
	n = fp ? fread(h, 1, sizeof(h), fp) : 0;
	if (fp)
		fclose(fp);
	tap_ok(n == 128 && memcmp(h, "\x93NUMPY\x01\x00", 8) == 0 &&
	       h[8] + 256 * h[9] + 10 == 128 && h[127] == '\n' &&
	       memcmp(h + 10, "{'descr': '<f4', 'fortran_order': False, "
		      "'shape': (2, 3, 4), }", 60) == 0,
	       "written header is numpy's v1.0 format, data at offset 128");

	/* Mapped instead of read: same tensor, backed by the file. */
	r = NULL;
	rc = lr_npy_map(fx("w_f4.npy"), &r, &m);
	tap_ok(rc == 0 && r && same(w, r) && r->map_base != NULL && !r->owns_data &&
	       (unsigned char *)r->data == (unsigned char *)r->map_base + 128,
	       "lr_npy_map maps a '<f4' file: same values, data at offset 128 of the mapping");
	lr_tensor_free(r);

	/* Overwrite with other values: the reader sees the new file. */
	f[0] = 42;
	rc = write_t("w_f4b.npy", w);
	f[0] = -1.5f;
	if (rc == 0)
		rc = write_t("w_f4b.npy", w);
	r = rc == 0 ? load("w_f4b.npy", &m) : NULL;
	tap_ok(r && same(w, r), "overwriting an existing file");
	lr_tensor_free(r);
	lr_tensor_free(w);

	w = NULL;
	lr_tensor_create(&w, LR_DT_INT64, 1, (int64_t[]){ 5 }, 1);
	q = w->data;
	q[0] = INT64_MIN;
	q[1] = INT64_MAX;
	q[2] = -1;
	q[3] = 0;
	q[4] = 1234567890123LL;
	rc = write_t("w_i8.npy", w);
	r = rc == 0 ? load("w_i8.npy", &m) : NULL;
	tap_ok(r && same(w, r), "int64 [5] write + read roundtrip");
	lr_tensor_free(r);
	lr_tensor_free(w);

	w = NULL;
	lr_tensor_create(&w, LR_DT_FLOAT, 0, NULL, 1);
	*(float *)w->data = -7.5f;
	rc = write_t("w_scalar.npy", w);
	r = rc == 0 ? load("w_scalar.npy", &m) : NULL;
	tap_ok(r && same(w, r), "0-d scalar write + read roundtrip");
	lr_tensor_free(r);
	lr_tensor_free(w);

	w = NULL;
	lr_tensor_create(&w, LR_DT_FLOAT, 2, (int64_t[]){ 0, 3 }, 1);
	rc = write_t("w_empty.npy", w);
	r = rc == 0 ? load("w_empty.npy", &m) : NULL;
	tap_ok(r && same(w, r), "empty (0, 3) write + read roundtrip");
	lr_tensor_free(r);
	lr_tensor_free(w);

	w = NULL;
	lr_tensor_create(&w, LR_DT_FLOAT, 8,
			 (int64_t[]){ 1, 2, 1, 2, 1, 2, 1, 2 }, 1);
	for (int i = 0; i < 16; i++)
		((float *)w->data)[i] = (float)i;
	rc = write_t("w_8d.npy", w);
	r = rc == 0 ? load("w_8d.npy", &m) : NULL;
	tap_ok(r && same(w, r), "8-D write + read roundtrip");
	lr_tensor_free(r);

	tap_ok(count_tmp_files() == 0, "no temporary files are left behind");

	memset(&m, 0, sizeof(m));
	rc = lr_npy_write(fx("no/such/dir/x.npy"), w, &m);
	tap_ok(rc == -ENOENT && strstr(m.text, "no/such/dir/x.npy") != NULL,
	       "write into a missing directory fails: %s", m.text);
	lr_tensor_free(w);

	w = NULL;
	lr_tensor_create(&w, LR_DT_FLOAT, 1, (int64_t[]){ 3 }, 0);
	memset(&m, 0, sizeof(m));
	rc = lr_npy_write(fx("w_shape_only.npy"), w, &m);
	tap_ok(rc == LR_EINVAL && access(fx("w_shape_only.npy"), F_OK) != 0,
	       "a shape-only tensor is refused: %s", m.text);
	lr_tensor_free(w);

	if (have_numpy)
		tap_ok(run_python(check_script, tmpdir) == 0,
		       "numpy loads the written files with the same values");
	else
		tap_ok(0, "numpy loads the written files (python3/numpy missing)");
}

static void write_file(const char *name, const void *buf, size_t len)
{
	FILE *fp = fopen(fx(name), "wb");

	if (fp) {
		fwrite(buf, 1, len, fp);
		fclose(fp);
	}
}

static void test_read_file_errors(void)
{
	lr_tensor *t = NULL;
	lr_msg m;
	unsigned char *b;
	size_t len;
	int rc;

	memset(&m, 0, sizeof(m));
	rc = lr_npy_read(fx("missing.npy"), &t, &m);
	tap_ok(rc == -ENOENT && t == NULL &&
	       strstr(m.text, "missing.npy: cannot open") != NULL,
	       "a missing file: %s", m.text);

	memset(&m, 0, sizeof(m));
	rc = lr_npy_read(tmpdir, &t, &m);
	tap_ok(rc == LR_ENPY && strstr(m.text, "not a regular file") != NULL,
	       "a directory: %s", m.text);

	/* 4 TB declared, 4 bytes present: must fail on size, not allocate. */
	b = mk(1, H("<f4", "False", "(1000000000, 1000)"), 4, NULL, &len);
	write_file("huge.npy", b, len);
	free(b);
	memset(&m, 0, sizeof(m));
	rc = lr_npy_read(fx("huge.npy"), &t, &m);
	tap_ok(rc == LR_ENPY && strstr(m.text, "truncated: expected 4000000000000 bytes") != NULL,
	       "a huge declared shape fails before allocating: %s", m.text);

	b = mk(1, H("<f8", "False", "(3,)"), 25, NULL, &len);
	write_file("trail.npy", b, len);
	free(b);
	memset(&m, 0, sizeof(m));
	rc = lr_npy_read(fx("trail.npy"), &t, &m);
	tap_ok(rc == LR_ENPY && strstr(m.text, "trail.npy: data has 1 trailing byte: expected 24 bytes for shape [3] '<f8', found 25") != NULL,
	       "a file with trailing bytes: %s", m.text);

	write_file("short.npy", "\x93NUMPY\x01", 7);
	memset(&m, 0, sizeof(m));
	rc = lr_npy_read(fx("short.npy"), &t, &m);
	tap_ok(rc == LR_ENPY && strstr(m.text, "too short") != NULL,
	       "a 7-byte file: %s", m.text);

	write_file("hdrcut.npy", "\x93NUMPY\x02\x00\x00\x01\x00\x00{'", 14);
	memset(&m, 0, sizeof(m));
	rc = lr_npy_read(fx("hdrcut.npy"), &t, &m);
	tap_ok(rc == LR_ENPY && strstr(m.text, "header is truncated") != NULL,
	       "a file cut inside the header: %s", m.text);
	tap_ok(t == NULL, "no tensor is returned on failure");
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Every file of the checked-in fuzz corpus through lr_npy_read(): ok_*
 * must load, bad_* must be refused with LR_ENPY and a message; typed_*
 * are refused there but load with lr_npy_read_typed(), which also loads
 * every ok_* file.
 */
static void test_corpus(void)
{
	const char *src = getenv("top_srcdir");
	char dir[4096], path[8192], *names[512];
	struct dirent *e;
	int n = 0, nok = 0, nbad = 0, failed = 0;
	DIR *d;

	if (src == NULL || src[0] == '\0') {
		tap_diag("top_srcdir is not set: fuzz corpus check skipped");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/tests/fuzz/npy.in", src);
	d = opendir(dir);
	if (!tap_ok(d != NULL, "open the fuzz corpus %s", dir))
		return;
	while ((e = readdir(d)) != NULL && n < 512)
		if (e->d_name[0] != '.')
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, (size_t)n, sizeof(names[0]), cmp_name);
	for (int i = 0; i < n; i++) {
		int want_ok = strncmp(names[i], "ok_", 3) == 0;
		int want_typed = strncmp(names[i], "typed_", 6) == 0;
		int want_bad = strncmp(names[i], "bad_", 4) == 0 || want_typed;
		lr_tensor *t = NULL, *tt = NULL;
		lr_msg m, mt;
		int rc, rct;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		memset(&m, 0, sizeof(m));
		memset(&mt, 0, sizeof(mt));
		rc = lr_npy_read(path, &t, &m);
		rct = lr_npy_read_typed(path, &tt, &mt);
		if ((want_ok && (rc != 0 || t == NULL)) ||
		    (want_bad && (rc != LR_ENPY || t != NULL ||
				  strncmp(m.text, path, strlen(path)) != 0)) ||
		    ((want_ok || want_typed) && (rct != 0 || tt == NULL)) ||
		    (!want_ok && !want_bad)) {
			tap_diag("corpus %s: rc %d: %s; typed rc %d: %s", names[i], rc, m.text,
				 rct, mt.text);
			failed++;
		}
		nok += want_ok || want_typed;
		nbad += want_bad && !want_typed;
		lr_tensor_free(t);
		lr_tensor_free(tt);
		free(names[i]);
	}
	tap_ok(failed == 0 && nok >= 10 && nbad >= 25,
	       "fuzz corpus: %d ok_* files load, %d bad_* files are refused (%d wrong)",
	       nok, nbad, failed);
}

static void rm_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			unlink(fx(e->d_name));
	closedir(d);
	rmdir(tmpdir);
}

int main(void)
{
	int have_numpy;

	python = tenv_python();
	if (tenv_mkdtemp(tmpdir, sizeof(tmpdir), "test_npy") != 0) {
		printf("Bail out! mkdtemp %s failed\n", tmpdir);
		return 1;
	}

	have_numpy = access(python, X_OK) == 0 &&
		     run_python("import numpy", NULL) == 0;
	tap_ok(have_numpy, "%s with numpy is available (a declared dependency)",
	       python);
	if (have_numpy) {
		int rc = run_python(gen_script, tmpdir);

		tap_ok(rc == 0, "numpy wrote the fixtures (exit %d)", rc);
		if (rc == 0)
			test_numpy_fixtures();
	}
	test_bad_mem();
	test_good_mem();
	test_write(have_numpy);
	test_read_file_errors();
	test_corpus();

	if (tap_failed)
		tap_diag("fixtures kept in %s", tmpdir);
	else
		rm_tmpdir();
	return tap_done();
}
