/*
 * test_strings.c - string tensors (model/tensor.c: one buffer of offsets
 * and bytes) and the kernels that take them (model/ops_types.c): Cast and
 * CastLike from strings, StringNormalizer, Constant (ConstantOfShape
 * refuses them); the engine refusing strings to
 * every other kernel, naming the node and the input. Each case is a
 * one-node model loaded from memory and run on the engine.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/engine.h"
#include "tests/unit/opcheck.h"
#include "tests/unit/tap.h"

static lr_tensor *strs(int ndim, const int64_t *dims, const char *const *s)
{
	size_t len[16];
	int64_t n = 1;
	lr_tensor *t = NULL;

	for (int d = 0; d < ndim; d++)
		n *= dims[d];
	for (int64_t k = 0; k < n; k++)
		len[k] = strlen(s[k]);
	lr_tensor_create_strings(&t, ndim, dims, s, len);
	return t;
}

/* t holds exactly the strings want[0..n) in shape dims. */
static int same_strs(const lr_tensor *t, int ndim, const int64_t *dims, const char *const *want)
{
	int64_t n = 1;

	if (t == NULL || t->dtype != LR_DT_STRING || t->ndim != ndim)
		return 0;
	for (int d = 0; d < ndim; d++) {
		if (t->dims[d] != dims[d])
			return 0;
		n *= dims[d];
	}
	for (int64_t k = 0; k < n; k++) {
		size_t len;
		const char *s = lr_tensor_str(t, k, &len);

		if (len != strlen(want[k]) || memcmp(s, want[k], len) != 0)
			return 0;
	}
	return 1;
}

static void tensors(void)
{
	const char *s[3] = { "ab", "", "c\0d" };
	size_t len[3] = { 2, 0, 3 }, l1 = 9, l2 = 9;
	int64_t d[1] = { 3 };
	lr_tensor *t = NULL, *c = NULL, *e = NULL;
	int rc = lr_tensor_create_strings(&t, 1, d, s, len);

	tap_ok(rc == 0 && lr_tensor_bytes(t) == 4 * 8 + 5,
	       "a string tensor is its offsets and its bytes (%zu bytes)",
	       rc == 0 ? lr_tensor_bytes(t) : 0);
	rc = rc == 0 ? lr_tensor_clone(&c, t) : rc;
	tap_ok(rc == 0 && lr_tensor_bytes(c) == lr_tensor_bytes(t) &&
	       memcmp(lr_tensor_str(c, 2, &l2), "c\0d", 3) == 0 && l2 == 3 &&
	       lr_tensor_str(c, 1, &l1) != NULL && l1 == 0,
	       "a clone keeps every string, empty ones and NUL bytes included");
	rc = lr_tensor_create(&e, LR_DT_STRING, 1, d, 1);
	tap_ok(rc == 0 && lr_tensor_bytes(e) == 4 * 8 && lr_tensor_str(e, 2, &l1) != NULL && l1 == 0,
	       "lr_tensor_create makes empty strings");
	lr_tensor_free(t);
	lr_tensor_free(c);
	lr_tensor_free(e);
}

/* Runs Cast(x, to); *y gets the output (freed first), msg the error. */
static int cast_to(lr_tensor *x, int to, lr_tensor **y, lr_msg *msg)
{
	lrt_node n;

	lr_tensor_free(*y);
	*y = NULL;
	msg->text[0] = '\0';
	lrt_init(&n, "Cast", 13);
	lrt_input(&n, x);
	lrt_attr_int(&n, "to", to);
	return lrt_run(&n, 1, y, msg);
}

static void cast(void)
{
	static const char *const num[6] = { "1.5", " -2e3 ", "NaN", "-INF", "+inf", "0.1" };
	static const char *const ints[2] = { "42", "-7" };
	static const char *const junk[2] = { "1.5", "1.5abc" };
	int64_t d6[1] = { 6 }, d2[1] = { 2 };
	lr_tensor *x = strs(1, d6, num), *xi = strs(1, d2, ints), *xj = strs(1, d2, junk);
	lr_tensor *y = NULL;
	lr_msg msg = { { 0 } };
	lrt_node n;
	int rc;

	rc = cast_to(x, 1, &y, &msg);
	tap_ok(rc == 0 && y->dtype == LR_DT_FLOAT && ((float *)y->data)[0] == 1.5f &&
	       ((float *)y->data)[1] == -2000.f && isnan(((float *)y->data)[2]) &&
	       ((float *)y->data)[3] == -INFINITY && ((float *)y->data)[4] == INFINITY &&
	       ((float *)y->data)[5] == 0.1f,
	       "Cast strings to float: decimals, blanks around, NaN and infinities (%s)", msg.text);

	rc = cast_to(x, 10, &y, &msg);
	tap_ok(rc == 0 && y->dtype == LR_DT_FLOAT16 &&
	       ((uint16_t *)y->data)[5] == lr_double_to_half(0.1),
	       "Cast strings to float16 rounds the decimal once (0.1 -> 0x%04x)",
	       rc == 0 ? ((uint16_t *)y->data)[5] : 0);

	rc = cast_to(xi, 6, &y, &msg);
	tap_ok(rc == 0 && y->dtype == LR_DT_INT32 && ((int32_t *)y->data)[0] == 42 &&
	       ((int32_t *)y->data)[1] == -7, "Cast strings to int32");

	rc = cast_to(xj, 1, &y, &msg);
	tap_ok(rc == LR_EINVAL && strstr(msg.text, "element 1") != NULL &&
	       strstr(msg.text, "\"1.5abc\"") != NULL,
	       "a string that is not a number is an error naming the element: %s", msg.text);
	lr_tensor_free(y);
	y = NULL;

	/* Strings reach only the kernels that take them. */
	lrt_init(&n, "Add", 13);
	lrt_input(&n, xi);
	lrt_input(&n, xi);
	msg.text[0] = '\0';
	rc = lrt_run(&n, 1, &y, &msg);
	tap_ok(rc == LR_EUNSUPPORTED && strstr(msg.text, "(Add)") != NULL &&
	       strstr(msg.text, "input 0 ('in0') holds strings") != NULL,
	       "Add refuses strings, naming the node and the input: %s", msg.text);
	lr_tensor_free(y);
	lr_tensor_free(x);
	lr_tensor_free(xi);
	lr_tensor_free(xj);
}

/* A StringNormalizer node over x with the given stopwords. */
static int normalize(lr_tensor *x, const char *action, int sensitive, const char *const *stop,
		     int nstop, lr_tensor **y, lr_msg *msg)
{
	lrt_node n;
	ProtobufCBinaryData sw[4];
	Onnx__AttributeProto *a;

	lrt_init(&n, "StringNormalizer", 10);
	lrt_input(&n, x);
	lrt_attr_str(&n, "case_change_action", action);
	lrt_attr_int(&n, "is_case_sensitive", sensitive);
	a = lrt_attr(&n, "stopwords", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
	for (int i = 0; i < nstop; i++) {
		sw[i].data = (uint8_t *)stop[i];
		sw[i].len = strlen(stop[i]);
	}
	a->n_strings = (size_t)nstop;
	a->strings = sw;
	*y = NULL;
	return lrt_run(&n, 1, y, msg);
}

static void normalizer(void)
{
	static const char *const days[3] = { "Monday", "tuesday", "MONDAY" };
	static const char *const stop[1] = { "monday" };
	static const char *const upper[1] = { "TUESDAY" };
	static const char *const lower[3] = { "monday", "tuesday", "monday" };
	static const char *const mondays[2] = { "Monday", "MONDAY" };
	static const char *const empty[1] = { "" };
	int64_t d3[1] = { 3 }, d1[1] = { 1 }, d12[2] = { 1, 2 }, d11[2] = { 1, 1 };
	lr_tensor *x = strs(1, d3, days), *x2 = strs(2, d12, mondays), *y;
	lr_msg msg = { { 0 } };
	int rc;

	rc = normalize(x, "UPPER", 0, stop, 1, &y, &msg);
	tap_ok(rc == 0 && same_strs(y, 1, d1, upper),
	       "StringNormalizer: stopwords ignoring case, then UPPER (%s)", msg.text);
	lr_tensor_free(y);
	rc = normalize(x, "LOWER", 1, stop, 1, &y, &msg);
	tap_ok(rc == 0 && same_strs(y, 1, d3, lower),
	       "StringNormalizer: case-sensitive stopwords keep Monday and MONDAY, then LOWER");
	lr_tensor_free(y);
	rc = normalize(x2, "NONE", 0, stop, 1, &y, &msg);
	tap_ok(rc == 0 && same_strs(y, 2, d11, empty),
	       "StringNormalizer: everything dropped from [1, 2] gives [1, 1] of one empty string");
	lr_tensor_free(y);
	rc = normalize(x, "TITLE", 0, stop, 1, &y, &msg);
	tap_ok(rc == LR_EMODEL && strstr(msg.text, "\"TITLE\"") != NULL,
	       "an unknown case_change_action is named: %s", msg.text);
	lr_tensor_free(y);
	lr_tensor_free(x);
	lr_tensor_free(x2);
}

/* A Constant of strings (string_data), and ConstantOfShape refusing one. */
static void constants(void)
{
	static const char *const want[2] = { "x", "yz" };
	ProtobufCBinaryData sd[2] = { { 1, (uint8_t *)"x" }, { 2, (uint8_t *)"yz" } };
	int64_t d2[1] = { 2 }, d1[1] = { 1 }, shp = 3;
	Onnx__TensorProto tp;
	lr_tensor *y = NULL, *shape = lrt_i(1, d1, &shp);
	lr_msg msg = { { 0 } };
	lrt_node n;
	int rc;

	onnx__tensor_proto__init(&tp);
	tp.n_dims = 1;
	tp.dims = d2;
	tp.has_data_type = 1;
	tp.data_type = 8;
	tp.n_string_data = 2;
	tp.string_data = sd;
	lrt_init(&n, "Constant", 13);
	lrt_attr(&n, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR)->t = &tp;
	rc = lrt_run(&n, 1, &y, &msg);
	tap_ok(rc == 0 && same_strs(y, 1, d2, want), "a Constant of strings (%s)", msg.text);
	lr_tensor_free(y);
	y = NULL;
	tp.n_dims = 0;
	tp.n_string_data = 1;
	lrt_init(&n, "ConstantOfShape", 13);
	lrt_const(&n, shape);
	lrt_attr(&n, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR)->t = &tp;
	msg.text[0] = '\0';
	rc = lrt_run(&n, 1, &y, &msg);
	tap_ok(rc == LR_EUNSUPPORTED && strstr(msg.text, "string") != NULL,
	       "ConstantOfShape refuses a string value: %s", msg.text);
	lr_tensor_free(y);
	lr_tensor_free(shape);
}

int main(void)
{
	tensors();
	cast();
	normalizer();
	constants();
	return tap_done();
}
