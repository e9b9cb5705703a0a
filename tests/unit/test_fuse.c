/*
 * test_fuse.c - the engine's Conv + activation fusion (model/engine.c,
 * fusable_act): a Conv whose one reader is a Relu or a Clip with constant
 * bounds writes the activation itself and the activation node passes the
 * tensor on. Each two-node model (Conv -> Relu, Conv -> Clip-6 with
 * attribute bounds, Conv -> Clip-13 with initializer bounds and with one
 * bound omitted) runs fused and with LR_NO_FUSE, and the outputs must be
 * bit-identical, NaN included (the input carries NaN and infinities:
 * Relu maps NaN to 0, Clip keeps it). Every Conv path is covered: direct
 * 1x1 and 3x3 (AVX-512 and LR_CONV_ISA=avx2), the NCHW pointwise 1x1
 * (ops_conv.c, conv_pw1x1), the few-channel kernel (conv_smallc), strided
 * direct, depthwise (16-channel and
 * plane-wise),
 * Winograd and im2col (dilation 2). With an observer installed nothing is
 * fused: the observer must see the Conv's own output (negative values).
 * lr_engine_fused_nodes shows that the fusion happened (and did not with
 * an observer or LR_NO_FUSE). A BatchNormalization with constant
 * parameters after a Conv is folded into it (and the Relu after it fused):
 * the result agrees with the nodes run one by one to 1e-5 (rounding moves),
 * and it is not folded when its mean is fed at run time, in training
 * mode, when the Conv's output is a graph output, or with an observer.
 * An Add followed by a Relu or Clip computes it too (float only: an
 * int64 Add -> Relu is not fused), bit-identical to the nodes run apart.
 * A Conv whose one reader is an Add of a tensor of its shape adds it and
 * the activation after it (run_res): either operand order, C-order and
 * blocked residuals, AVX2 kernels, LR_NO_BLOCKED, a folded
 * BatchNormalization between, the Add as graph output; not a
 * per-channel constant, nor, in an engine that prices layers for the
 * solver, where the Conv cannot compute it in the residual's own buffer
 * (a graph input); there it is fused where it can. Bit-identical to the
 * nodes run apart.
 * A Sigmoid whose one reader is Mul(x, Sigmoid(x)) writes the product
 * (SiLU) and the Mul passes it on, bit-identical, in either operand order;
 * not when the Mul's other operand is another tensor or the Sigmoid's
 * output is kept.
 * Constant nodes run once, when the engine is created.
 * Random values come from a fixed seed.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/engine.h"
#include "tests/unit/opcheck.h"
#include "tests/unit/tap.h"

static uint64_t rng = 20261203u;

static float frand(void)
{
	return lrt_frand(&rng);
}

struct fcase {
	const char *label;
	int64_t c, h, m, k, stride, dil, group;
	int act;                /* 1 Relu, 2 Clip-6, 3 Clip-13, 4 Clip-13 min only,
				 * 5 Clip-13 with bounds from Constant nodes between
				 * the Conv and the Clip (torchvision's MobileNet-v2) */
	const char *env;        /* extra environment for this case, or NULL */
};

struct seen {
	int conv_node;
	float min;              /* smallest value of the Conv's output seen */
};

static int observe(void *ud, const lr_model *m, int node_index, lr_tensor *const *outs,
		   int nout)
{
	struct seen *s = ud;

	(void)m;
	if (node_index == s->conv_node && nout > 0 && outs[0] != NULL) {
		const float *v = outs[0]->data;

		for (int64_t i = 0; i < outs[0]->nelem; i++)
			if (v[i] < s->min)
				s->min = v[i];
	}
	return 0;
}

static Onnx__TensorProto *init_tp(Onnx__TensorProto *tp, char *name, lr_tensor *t)
{
	onnx__tensor_proto__init(tp);
	tp->name = name;
	tp->n_dims = (size_t)t->ndim;
	tp->dims = t->dims;
	tp->has_data_type = 1;
	tp->data_type = 1;
	tp->has_raw_data = 1;
	tp->raw_data.data = t->data;
	tp->raw_data.len = lr_tensor_bytes(t);
	return tp;
}

/* Builds and runs Conv -> act on x; *y gets the output. obs: install an observer. */
static int run2(const struct fcase *k, lr_tensor *x, lr_tensor *w, lr_tensor *b,
		lr_tensor *lo, lr_tensor *hi, int threads, struct seen *obs, lr_tensor **y,
		int *fused, lr_msg *msg)
{
	char xn[] = "x", wn[] = "w", bn[] = "b", cn[] = "c", yn[] = "y", lon[] = "lo",
	     hin[] = "hi", empty[] = "";
	char *conv_in[3] = { xn, wn, bn }, *conv_out[1] = { cn };
	char *act_in[3] = { cn, lon, hin }, *act_out[1] = { yn };
	lrt_node cv, ac, k1, k2;
	char *k1_out[1] = { lon }, *k2_out[1] = { hin };
	Onnx__NodeProto nodes[4], *nodep[4] = { &nodes[0], &nodes[1], &nodes[2], &nodes[3] };
	int nn = 2;
	Onnx__TensorProto init[4], *initp[4];
	struct lrt_vi gin, gout;
	Onnx__ValueInfoProto *ginp = &gin.vi, *goutp = &gout.vi;
	lr_model *m = NULL;
	lr_engine *e = NULL;
	int ninit = 0, rc;
	int64_t pad = (k->k / 2) * k->dil;

	*y = NULL;
	lrt_init(&cv, "Conv", k->act == 2 ? 6 : 13);
	lrt_attr_ints(&cv, "kernel_shape", 2, (int64_t[]){ k->k, k->k });
	lrt_attr_ints(&cv, "pads", 4, (int64_t[]){ pad, pad, pad, pad });
	lrt_attr_ints(&cv, "strides", 2, (int64_t[]){ k->stride, k->stride });
	lrt_attr_ints(&cv, "dilations", 2, (int64_t[]){ k->dil, k->dil });
	lrt_attr_int(&cv, "group", k->group);
	lrt_init(&ac, k->act == 1 ? "Relu" : "Clip", 13);
	if (k->act == 2) {
		lrt_attr_float(&ac, "min", -0.25f);
		lrt_attr_float(&ac, "max", 0.5f);
	}
	onnx__node_proto__init(&nodes[0]);
	nodes[0].op_type = cv.op_type;
	nodes[0].n_input = 3;
	nodes[0].input = conv_in;
	nodes[0].n_output = 1;
	nodes[0].output = conv_out;
	nodes[0].n_attribute = (size_t)cv.nattr;
	nodes[0].attribute = cv.attrp;
	if (k->act == 5) {
		lrt_init(&k1, "Constant", 13);
		lrt_attr_tensor(&k1, "value", lo);
		lrt_init(&k2, "Constant", 13);
		lrt_attr_tensor(&k2, "value", hi);
		onnx__node_proto__init(&nodes[1]);
		nodes[1].op_type = k1.op_type;
		nodes[1].n_output = 1;
		nodes[1].output = k1_out;
		nodes[1].n_attribute = (size_t)k1.nattr;
		nodes[1].attribute = k1.attrp;
		onnx__node_proto__init(&nodes[2]);
		nodes[2].op_type = k2.op_type;
		nodes[2].n_output = 1;
		nodes[2].output = k2_out;
		nodes[2].n_attribute = (size_t)k2.nattr;
		nodes[2].attribute = k2.attrp;
		nn = 4;
	}
	onnx__node_proto__init(&nodes[nn - 1]);
	nodes[nn - 1].op_type = ac.op_type;
	nodes[nn - 1].n_input = k->act >= 3 ? (k->act == 4 ? 2 : 3) : 1;
	nodes[nn - 1].input = act_in;
	nodes[nn - 1].n_output = 1;
	nodes[nn - 1].output = act_out;
	nodes[nn - 1].n_attribute = (size_t)ac.nattr;
	nodes[nn - 1].attribute = ac.attrp;
	initp[ninit] = init_tp(&init[ninit], wn, w), ninit++;
	initp[ninit] = init_tp(&init[ninit], bn, b), ninit++;
	if (k->act == 3 || k->act == 4)
		initp[ninit] = init_tp(&init[ninit], lon, lo), ninit++;
	if (k->act == 3)
		initp[ninit] = init_tp(&init[ninit], hin, hi), ninit++;
	(void)empty;
	lrt_vi_fill(&gin, xn, x);
	lrt_vi_fill(&gout, yn, NULL);
	rc = lrt_load_nodes(nodep, nn, &ginp, 1, &goutp, 1, initp, ninit, k->act == 2 ? 6 : 13,
			    "fuse", &m, msg);
	if (rc == 0)
		rc = lr_engine_create(&e, m, threads);
	if (rc == 0 && obs != NULL) {
		obs->conv_node = 0;
		obs->min = INFINITY;
		lr_engine_set_observer(e, observe, obs);
	}
	/* Twice: the second run uses the packed weights in the node cache. */
	for (int r = 0; rc == 0 && r < 2; r++) {
		lr_tensor_free(*y);
		*y = NULL;
		rc = lr_engine_run(e, &x, 1, y, 1, 0, msg);
	}
	*fused = e != NULL ? lr_engine_fused_nodes(e) : -1;
	lr_engine_free(e);
	lr_model_free(m);
	return rc;
}

static int same_bits(const lr_tensor *a, const lr_tensor *b, int64_t *where)
{
	if (a == NULL || b == NULL || a->nelem != b->nelem)
		return 0;
	for (int64_t i = 0; i < a->nelem; i++) {
		float u = ((const float *)a->data)[i], v = ((const float *)b->data)[i];

		if (memcmp(&u, &v, sizeof(u)) != 0 && !(isnan(u) && isnan(v))) {
			*where = i;
			return 0;
		}
	}
	return 1;
}

static void run_case(const struct fcase *k)
{
	int64_t cg = k->c / k->group;
	int64_t xd[4] = { 2, k->c, k->h, k->h }, wd[4] = { k->m, cg, k->k, k->k };
	lr_tensor *x = lrt_f(4, xd, NULL), *w = lrt_f(4, wd, NULL);
	lr_tensor *b = lrt_f(1, (int64_t[]){ k->m }, NULL);
	lr_tensor *lo = lrt_f(0, NULL, (float[]){ -0.25f }), *hi = lrt_f(0, NULL, (float[]){ 0.5f });
	lr_tensor *yf = NULL, *yu = NULL, *yo = NULL;
	lr_msg msg = { { 0 } };
	struct seen s;
	int64_t where = -1, nnan = 0;
	int rc1, rc2, rc3, nf = -1, no = -1, nu = -1;

	for (int64_t i = 0; i < x->nelem; i++)
		((float *)x->data)[i] = frand();
	/* NaN and infinities in the first image's first channel. */
	((float *)x->data)[3] = NAN;
	((float *)x->data)[k->h * 2 + 5] = INFINITY;
	((float *)x->data)[k->h * 4 + 1] = -INFINITY;
	for (int64_t i = 0; i < w->nelem; i++)
		((float *)w->data)[i] = frand();
	for (int64_t i = 0; i < b->nelem; i++)
		((float *)b->data)[i] = frand();
	if (k->env != NULL) {
		char name[64];
		const char *eq = strchr(k->env, '=');

		snprintf(name, sizeof(name), "%.*s", (int)(eq - k->env), k->env);
		setenv(name, eq + 1, 1);
		if (strcmp(name, "LR_NO_CONV_DIRECT") == 0)
			setenv("LR_WINOGRAD_FORCE", "1", 1);
	}
	unsetenv("LR_NO_FUSE");
	rc1 = run2(k, x, w, b, lo, hi, 2, NULL, &yf, &nf, &msg);
	rc3 = run2(k, x, w, b, lo, hi, 2, &s, &yo, &no, &msg);
	setenv("LR_NO_FUSE", "1", 1);
	rc2 = run2(k, x, w, b, lo, hi, 2, NULL, &yu, &nu, &msg);
	unsetenv("LR_NO_FUSE");
	unsetenv("LR_CONV_ISA");
	unsetenv("LR_NO_CONV_DIRECT");
	unsetenv("LR_NO_PW1X1");
	unsetenv("LR_NO_DW_C16");
	if (rc1 != 0 || rc2 != 0 || rc3 != 0)
		tap_diag("run failed: %s", msg.text);
	for (int64_t i = 0; yf != NULL && i < yf->nelem; i++)
		nnan += isnan(((float *)yf->data)[i]);
	tap_ok(rc1 == 0 && rc2 == 0 && same_bits(yf, yu, &where),
	       "%s: fused output bit-identical to unfused (%lld NaN; first difference at %lld)",
	       k->label, (long long)nnan, (long long)where);
	tap_ok(nf == 1 && no == 0 && nu == 0,
	       "%s: the activation ran in the Conv (%d node passed on; with an observer %d, with LR_NO_FUSE %d)",
	       k->label, nf, no, nu);
	tap_ok(rc3 == 0 && same_bits(yo, yu, &where) && s.min < -0.25f,
	       "%s: with an observer the Conv's own output is seen (min %g) and the result is the same",
	       k->label, (double)s.min);
	lr_tensor_free(x);
	lr_tensor_free(w);
	lr_tensor_free(b);
	lr_tensor_free(lo);
	lr_tensor_free(hi);
	lr_tensor_free(yf);
	lr_tensor_free(yu);
	lr_tensor_free(yo);
}

/* ---- BatchNormalization folded into the Conv before it (engine.c) ------ */

enum { BN_FOLD = 1, BN_FED = 2, BN_TRAIN = 3, BN_NOBIAS = 4, BN_KEPT = 5 };

/* A node of op n with nin inputs and one output. */
static void node_of(Onnx__NodeProto *p, lrt_node *n, int nin, char **in, char **out)
{
	onnx__node_proto__init(p);
	p->op_type = n->op_type;
	p->n_input = (size_t)nin;
	p->input = in;
	p->n_output = 1;
	p->output = out;
	p->n_attribute = (size_t)n->nattr;
	p->attribute = n->attrp;
}

/*
 * Conv -> BatchNormalization -> Relu on x: BN_FOLD constant parameters
 * (folded), BN_NOBIAS the same with a Conv without bias, BN_FED the mean a
 * graph input (not a constant: not folded), BN_TRAIN training_mode=1
 * (batch statistics: not folded), BN_KEPT the Conv's output also a graph
 * output (not folded). *y: the Relu's output; *fused: nodes passed on.
 */
static int run_bn(int kind, lr_tensor *x, lr_tensor *w, lr_tensor *b, lr_tensor *const p[4],
		  struct seen *obs, lr_tensor **y, int *fused, lr_msg *msg)
{
	char xn[] = "x", wn[] = "w", bn[] = "b", cn[] = "c", nn_[] = "n", yn[] = "y",
	     sn[] = "scale", bbn[] = "beta", mn[] = "mean", vn[] = "var";
	char *conv_in[3] = { xn, wn, bn }, *conv_out[1] = { cn };
	char *bn_in[5] = { cn, sn, bbn, mn, vn }, *bn_out[1] = { nn_ };
	char *act_in[1] = { nn_ }, *act_out[1] = { yn }, *pname[4] = { sn, bbn, mn, vn };
	lrt_node cv, bnn, ac;
	Onnx__NodeProto nodes[3], *nodep[3] = { &nodes[0], &nodes[1], &nodes[2] };
	Onnx__TensorProto init[6], *initp[6];
	struct lrt_vi gin[2], gout[2];
	Onnx__ValueInfoProto *ginp[2] = { &gin[0].vi, &gin[1].vi }, *goutp[2] = { &gout[0].vi, &gout[1].vi };
	lr_tensor *inputs[2] = { x, p[2] }, *outs[2] = { NULL, NULL };
	lr_model *m = NULL;
	lr_engine *e = NULL;
	int ninit = 0, rc;

	*y = NULL;
	*fused = -1;
	lrt_init(&cv, "Conv", 15);
	lrt_attr_ints(&cv, "pads", 4, (int64_t[]){ 1, 1, 1, 1 });
	lrt_init(&bnn, "BatchNormalization", 15);
	lrt_attr_float(&bnn, "epsilon", 1e-3f);
	if (kind == BN_TRAIN)
		lrt_attr_int(&bnn, "training_mode", 1);
	lrt_init(&ac, "Relu", 15);
	node_of(&nodes[0], &cv, kind == BN_NOBIAS ? 2 : 3, conv_in, conv_out);
	node_of(&nodes[1], &bnn, 5, bn_in, bn_out);
	node_of(&nodes[2], &ac, 1, act_in, act_out);
	initp[ninit] = init_tp(&init[ninit], wn, w), ninit++;
	if (kind != BN_NOBIAS)
		initp[ninit] = init_tp(&init[ninit], bn, b), ninit++;
	for (int i = 0; i < 4; i++)
		if (!(kind == BN_FED && i == 2))
			initp[ninit] = init_tp(&init[ninit], pname[i], p[i]), ninit++;
	lrt_vi_fill(&gin[0], xn, x);
	lrt_vi_fill(&gin[1], mn, p[2]);
	lrt_vi_fill(&gout[0], yn, NULL);
	lrt_vi_fill(&gout[1], cn, NULL);
	rc = lrt_load_nodes(nodep, 3, ginp, kind == BN_FED ? 2 : 1, goutp, kind == BN_KEPT ? 2 : 1,
			    initp, ninit, 15, "fold", &m, msg);
	if (rc == 0)
		rc = lr_engine_create(&e, m, 2);
	if (rc == 0 && obs != NULL) {
		obs->conv_node = 0;
		obs->min = INFINITY;
		lr_engine_set_observer(e, observe, obs);
	}
	for (int run = 0; rc == 0 && run < 2; run++) {
		lr_tensor_free(outs[0]);
		lr_tensor_free(outs[1]);
		outs[0] = outs[1] = NULL;
		rc = lr_engine_run(e, inputs, kind == BN_FED ? 2 : 1, outs, kind == BN_KEPT ? 2 : 1, 0, msg);
	}
	*fused = e != NULL ? lr_engine_fused_nodes(e) : -1;
	*y = outs[0];
	lr_tensor_free(outs[1]);
	lr_engine_free(e);
	lr_model_free(m);
	return rc;
}

/* Largest |a - b| / (1 + |b|) over the elements, or INFINITY. */
static double max_rel(const lr_tensor *a, const lr_tensor *b)
{
	double worst = 0;

	if (a == NULL || b == NULL || a->nelem != b->nelem)
		return INFINITY;
	for (int64_t i = 0; i < a->nelem; i++) {
		double u = ((const float *)a->data)[i], v = ((const float *)b->data)[i],
		       d = fabs(u - v) / (1 + fabs(v));

		worst = d > worst || isnan(d) ? d : worst;
	}
	return worst;
}

static void run_bn_case(int kind, const char *label, int want)
{
	lr_tensor *x = lrt_f(4, (int64_t[]){ 2, 16, 12, 12 }, NULL);
	lr_tensor *w = lrt_f(4, (int64_t[]){ 24, 16, 3, 3 }, NULL);
	lr_tensor *b = lrt_f(1, (int64_t[]){ 24 }, NULL), *p[4];
	lr_tensor *yf = NULL, *yu = NULL, *yo = NULL;
	lr_msg msg = { { 0 } };
	struct seen s;
	int nf, nu, no, rc1, rc2, rc3;
	double d, d2;

	for (int i = 0; i < 4; i++)
		p[i] = lrt_f(1, (int64_t[]){ 24 }, NULL);
	for (int64_t i = 0; i < x->nelem; i++)
		((float *)x->data)[i] = frand();
	for (int64_t i = 0; i < w->nelem; i++)
		((float *)w->data)[i] = frand() * 0.3f;
	for (int64_t i = 0; i < 24; i++) {
		((float *)b->data)[i] = frand();
		((float *)p[0]->data)[i] = 1.0f + 0.5f * frand();  /* scale */
		((float *)p[1]->data)[i] = frand();                /* beta */
		((float *)p[2]->data)[i] = 0.5f * frand();         /* mean */
		((float *)p[3]->data)[i] = 1.0f + 0.5f * frand();  /* var */
	}
	unsetenv("LR_NO_FOLD");
	rc1 = run_bn(kind, x, w, b, p, NULL, &yf, &nf, &msg);
	rc3 = run_bn(kind, x, w, b, p, &s, &yo, &no, &msg);
	setenv("LR_NO_FOLD", "1", 1);
	setenv("LR_NO_FUSE", "1", 1);
	rc2 = run_bn(kind, x, w, b, p, NULL, &yu, &nu, &msg);
	unsetenv("LR_NO_FOLD");
	unsetenv("LR_NO_FUSE");
	if (rc1 != 0 || rc2 != 0 || rc3 != 0)
		tap_diag("run failed: %s", msg.text);
	d = max_rel(yf, yu);
	d2 = max_rel(yo, yu);
	tap_ok(rc1 == 0 && rc2 == 0 && d < 1e-5,
	       "%s: the output agrees with the nodes run one by one (largest relative difference %.2g)",
	       label, d);
	tap_ok(nf == want && nu == 0, "%s: %d node(s) passed on (want %d; %d with LR_NO_FOLD/FUSE)",
	       label, nf, want, nu);
	tap_ok(rc3 == 0 && no == 0 && d2 < 1e-5 && s.min < -0.5f,
	       "%s: with an observer nothing is folded and the Conv's own output is seen (min %g)",
	       label, (double)s.min);
	lr_tensor_free(x);
	lr_tensor_free(w);
	lr_tensor_free(b);
	for (int i = 0; i < 4; i++)
		lr_tensor_free(p[i]);
	lr_tensor_free(yf);
	lr_tensor_free(yu);
	lr_tensor_free(yo);
}

/*
 * Add -> act: x (graph input, [2,24,9,11], NaN and infinities in it) plus
 * a constant k ([24,1,1], or a second graph input of x's shape when
 * `fed`), then Relu (act 1) or Clip-13 with initializer bounds (act 3).
 * `dt`: the inputs' element type (LR_DT_INT64: Relu on int64, which the
 * Add does not compute, so nothing may be fused). Runs fused or with
 * LR_NO_FUSE (nofuse); *fused gets lr_engine_fused_nodes.
 */
/* A node proto of op_type with nin inputs and one output. */
static void proto_node(Onnx__NodeProto *p, char *op_type, int nin, char **in, char **out)
{
	onnx__node_proto__init(p);
	p->op_type = op_type;
	p->n_input = (size_t)nin;
	p->input = in;
	p->n_output = 1;
	p->output = out;
}

static int run_add(int act, int fed, int dt, int nofuse, lr_tensor **y, int *fused, lr_msg *msg)
{
	int64_t xd[4] = { 2, 24, 9, 11 }, kd[3] = { 24, 1, 1 };
	lr_tensor *x = lrt_f(4, xd, NULL), *k = fed ? lrt_f(4, xd, NULL) : lrt_f(3, kd, NULL);
	lr_tensor *lo = lrt_f(0, NULL, (float[]){ -0.25f }), *hi = lrt_f(0, NULL, (float[]){ 0.5f });
	char xn[] = "x", kn[] = "k", sn[] = "s", yn[] = "y", lon[] = "lo", hin[] = "hi";
	char *add_in[2] = { xn, kn }, *add_out[1] = { sn }, *act_in[3] = { sn, lon, hin },
	     *act_out[1] = { yn };
	Onnx__NodeProto nodes[2], *nodep[2] = { &nodes[0], &nodes[1] };
	Onnx__TensorProto init[3], *initp[3];
	struct lrt_vi gin[2], gout;
	Onnx__ValueInfoProto *ginp[2] = { &gin[0].vi, &gin[1].vi }, *goutp = &gout.vi;
	lr_tensor *feeds[2];
	lr_model *m = NULL;
	lr_engine *e = NULL;
	int ninit = 0, rc;

	*y = NULL;
	for (int64_t i = 0; i < x->nelem; i++)
		((float *)x->data)[i] = frand();
	for (int64_t i = 0; i < k->nelem; i++)
		((float *)k->data)[i] = frand();
	((float *)x->data)[5] = NAN;
	((float *)x->data)[40] = INFINITY;
	((float *)x->data)[77] = -INFINITY;
	if (dt == LR_DT_INT64) { /* int64 inputs in [-100, 100] */
		lr_tensor *xi = lrt_i(4, xd, NULL), *ki = lrt_i(k->ndim, k->dims, NULL);

		for (int64_t i = 0; i < x->nelem; i++)
			((int64_t *)xi->data)[i] = (int64_t)(frand() * 100);
		for (int64_t i = 0; i < k->nelem; i++)
			((int64_t *)ki->data)[i] = (int64_t)(frand() * 100);
		lr_tensor_free(x);
		lr_tensor_free(k);
		x = xi;
		k = ki;
	}
	proto_node(&nodes[0], "Add", 2, add_in, add_out);
	proto_node(&nodes[1], act == 1 ? "Relu" : "Clip", act == 1 ? 1 : 3, act_in, act_out);
	if (!fed)
		initp[ninit] = init_tp(&init[ninit], kn, k), ninit++;
	if (act == 3) {
		initp[ninit] = init_tp(&init[ninit], lon, lo), ninit++;
		initp[ninit] = init_tp(&init[ninit], hin, hi), ninit++;
	}
	if (dt == LR_DT_INT64)
		for (int i = 0; i < ninit; i++)
			init[i].data_type = 7;
	lrt_vi_fill(&gin[0], xn, x);
	lrt_vi_fill(&gin[1], kn, k);
	lrt_vi_fill(&gout, yn, NULL);
	if (nofuse)
		setenv("LR_NO_FUSE", "1", 1);
	rc = lrt_load_nodes(nodep, 2, ginp, fed ? 2 : 1, &goutp, 1, initp, ninit, 13, "fuse-add",
			    &m, msg);
	if (rc == 0)
		rc = lr_engine_create(&e, m, 2);
	feeds[0] = x;
	feeds[1] = k;
	for (int r = 0; rc == 0 && r < 2; r++) {
		lr_tensor_free(*y);
		*y = NULL;
		rc = lr_engine_run(e, feeds, fed ? 2 : 1, y, 1, 0, msg);
	}
	unsetenv("LR_NO_FUSE");
	*fused = e != NULL ? lr_engine_fused_nodes(e) : -1;
	lr_engine_free(e);
	lr_model_free(m);
	lr_tensor_free(x);
	lr_tensor_free(k);
	lr_tensor_free(lo);
	lr_tensor_free(hi);
	return rc;
}

/*
 * The fused run's output yf (rc1, nf nodes passed on) against the unfused
 * one's yu (rc2, nu): bit-identical (floats by bits, other types by
 * bytes), want nodes passed on and none with LR_NO_FUSE. Frees both.
 */
static void check_fused(const char *label, int rc1, int rc2, lr_tensor *yf, lr_tensor *yu,
			int nf, int nu, int want, const lr_msg *msg)
{
	int64_t where = -1;

	if (rc1 != 0 || rc2 != 0)
		tap_diag("run failed: %s", msg->text);
	tap_ok(rc1 == 0 && rc2 == 0 && yf != NULL && yu != NULL && yf->dtype == yu->dtype &&
	       (yf->dtype == LR_DT_FLOAT ? same_bits(yf, yu, &where)
		: memcmp(yf->data, yu->data, lr_tensor_bytes(yf)) == 0),
	       "%s: fused and unfused outputs are bit-identical (first difference at %lld)",
	       label, (long long)where);
	tap_ok(nf == want && nu == 0, "%s: %d node(s) passed on (want %d; %d with LR_NO_FUSE)",
	       label, nf, want, nu);
	lr_tensor_free(yf);
	lr_tensor_free(yu);
}

static void run_add_case(int act, int fed, int dt, const char *label)
{
	lr_tensor *yf = NULL, *yu = NULL;
	lr_msg msg = { { 0 } };
	int nf = -1, nu = -1, rc1, rc2, want = dt == LR_DT_FLOAT;
	uint64_t seed = rng;

	rc1 = run_add(act, fed, dt, 0, &yf, &nf, &msg);
	rng = seed; /* the same inputs */
	rc2 = run_add(act, fed, dt, 1, &yu, &nu, &msg);
	check_fused(label, rc1, rc2, yf, yu, nf, nu, want, &msg);
}

/*
 * SiLU (fusable_silu): x -> Sigmoid -> s, y = Mul(x, s) (order 0) or
 * Mul(s, x) (order 1). variant 1: the Mul's other operand is a second
 * input z, not x (not fused); variant 2: s is also a graph output (not
 * fused). Runs twice on one engine (the fusion is decided per run).
 */
static int run_silu(int order, int variant, int nofuse, lr_tensor **y, int *fused, lr_msg *msg)
{
	int64_t xd[4] = { 2, 16, 9, 13 };
	lr_tensor *x = lrt_f(4, xd, NULL), *z = lrt_f(4, xd, NULL), *outs[2] = { NULL, NULL };
	char xn[] = "x", zn[] = "z", sn[] = "s", yn[] = "y";
	char *sig_in[1] = { xn }, *sig_out[1] = { sn }, *mul_in[2], *mul_out[1] = { yn };
	Onnx__NodeProto nodes[2], *nodep[2] = { &nodes[0], &nodes[1] };
	struct lrt_vi gin[2], gout[2];
	Onnx__ValueInfoProto *ginp[2] = { &gin[0].vi, &gin[1].vi };
	Onnx__ValueInfoProto *goutp[2] = { &gout[0].vi, &gout[1].vi };
	lr_tensor *feeds[2] = { x, z };
	lr_model *m = NULL;
	lr_engine *e = NULL;
	int nin = variant == 1 ? 2 : 1, nout = variant == 2 ? 2 : 1, rc;

	*y = NULL;
	for (int64_t i = 0; i < x->nelem; i++) {
		((float *)x->data)[i] = frand() * 12.f;
		((float *)z->data)[i] = frand();
	}
	((float *)x->data)[3] = NAN;
	((float *)x->data)[50] = INFINITY;
	((float *)x->data)[99] = -INFINITY;
	mul_in[order] = variant == 1 ? zn : xn;
	mul_in[1 - order] = sn;
	proto_node(&nodes[0], "Sigmoid", 1, sig_in, sig_out);
	proto_node(&nodes[1], "Mul", 2, mul_in, mul_out);
	lrt_vi_fill(&gin[0], xn, x);
	lrt_vi_fill(&gin[1], zn, z);
	lrt_vi_fill(&gout[0], yn, NULL);
	lrt_vi_fill(&gout[1], sn, NULL);
	if (nofuse)
		setenv("LR_NO_FUSE", "1", 1);
	rc = lrt_load_nodes(nodep, 2, ginp, nin, goutp, nout, NULL, 0, 13, "fuse-silu", &m, msg);
	if (rc == 0)
		rc = lr_engine_create(&e, m, 2);
	for (int r = 0; rc == 0 && r < 2; r++) {
		lr_tensor_free(outs[0]);
		lr_tensor_free(outs[1]);
		outs[0] = outs[1] = NULL;
		rc = lr_engine_run(e, feeds, nin, outs, nout, 0, msg);
	}
	unsetenv("LR_NO_FUSE");
	*fused = e != NULL ? lr_engine_fused_nodes(e) : -1;
	*y = outs[0];
	lr_tensor_free(outs[1]);
	lr_engine_free(e);
	lr_model_free(m);
	lr_tensor_free(x);
	lr_tensor_free(z);
	return rc;
}

static void run_silu_case(int order, int variant, const char *label)
{
	lr_tensor *yf = NULL, *yu = NULL;
	lr_msg msg = { { 0 } };
	int nf = -1, nu = -1, rc1, rc2, want = variant == 0;
	uint64_t seed = rng;

	rc1 = run_silu(order, variant, 0, &yf, &nf, &msg);
	rng = seed; /* the same inputs */
	rc2 = run_silu(order, variant, 1, &yu, &nu, &msg);
	check_fused(label, rc1, rc2, yf, yu, nf, nu, want, &msg);
}

/*
 * Conv -> Add -> act (fusable_res): the Conv adds the Add's other operand
 * as it stores and the Add and the activation pass its output on.
 * variant 0: Add(conv, r) -> Relu, r a second graph input of Y's shape
 *   (C order: the blocked kernels copy it into blocks first);
 * variant 1: Add(r, conv) -> Clip-13, 24 filters (a C-order Y);
 * variant 2: a = Relu(ConvA(x)), Add(ConvB(a), a) -> Relu -> a 1x1
 *   Conv: a residual in blocks, added inside the blocked kernels
 *   (AVX-512; the last Conv keeps the graph output's C order away);
 * variant 3: Add(conv, per-channel constant) -> Relu: not Y's shape, so
 *   not fused into the Conv (the Add still computes the Relu);
 * variant 4: Add(conv, r) is the graph output, no activation;
 * variant 5: Conv -> BatchNormalization (folded) -> Add(r) -> Relu;
 * variant 6: a = Relu(ConvA(x)), Add(ConvC(ConvB(a)), a) -> Relu -> a
 *   1x1 Conv, on 14x14 maps: the Add is a's last reader, so ConvC, a
 *   1x1 (the pointwise kernel in C order, the blocked direct kernel in
 *   blocks), computes Y in a's buffer (lr__res_inplace).
 * Batch 2, `threads` threads, under `env` (NULL, or NAME=VALUE); fused
 * or with LR_NO_FUSE; *fused gets lr_engine_fused_nodes.
 */
static int res_pricing; /* run_res: engines that price layers (lr_engine_set_pricing) */

static int run_res(int variant, int threads, const char *env, int nofuse, lr_tensor **y,
		   int *fused, lr_msg *msg)
{
	int64_t c = 32, m = variant == 1 ? 24 : 48, hw = variant == 6 ? 14 : 10;
	int64_t xd[4] = { 2, c, hw, variant == 6 ? 14 : 9 };
	int64_t yd[4] = { 2, m, hw, xd[3] }, wd[4] = { m, c, 3, 3 }, w2d[4] = { m, m, 3, 3 };
	int64_t bd[1] = { m }, kd[3] = { m, 1, 1 };
	lr_tensor *x = lrt_f(4, xd, NULL), *r = lrt_f(4, yd, NULL), *w = lrt_f(4, wd, NULL);
	lr_tensor *w2 = lrt_f(4, w2d, NULL), *b = lrt_f(1, bd, NULL), *k = lrt_f(3, kd, NULL);
	lr_tensor *w3 = lrt_f(4, (int64_t[]){ m, m, 1, 1 }, NULL);
	lr_tensor *lo = lrt_f(0, NULL, (float[]){ -0.25f }), *hi = lrt_f(0, NULL, (float[]){ 0.5f });
	lr_tensor *sc = lrt_f(1, bd, NULL), *mean = lrt_f(1, bd, NULL), *var = lrt_f(1, bd, NULL);
	char xn[] = "x", rn[] = "r", wn[] = "w", w2n[] = "w2", bn[] = "b", kn[] = "k", cn[] = "c",
	     an[] = "a", a0n[] = "a0", sn[] = "s", yn[] = "y", lon[] = "lo", hin[] = "hi",
	     scn[] = "sc", mn[] = "mean", vn[] = "var", bnn[] = "bn", tn[] = "t", w3n[] = "w3";
	char *conv_in[3] = { xn, wn, bn }, *conv_out[1] = { cn };
	char *cva_out[1] = { a0n }, *rla_in[1] = { a0n }, *rla_out[1] = { an };
	char *cvb_in[3] = { an, w2n, bn };
	char *bn_in[5] = { cn, scn, bn, mn, vn }, *bn_out[1] = { bnn };
	char *add_in[2], *add_out[1] = { variant == 4 ? yn : sn };
	char *act_in[3] = { sn, lon, hin }, *act_out[1] = { variant == 2 || variant == 6 ? tn : yn };
	char *cvc_in[2] = { tn, w3n }, *cvc_out[1] = { yn };
	char t2n[] = "t2", *cv6b_out[1] = { t2n }, *cv6c_in[2] = { t2n, w3n };
	lrt_node cva, cvb;
	Onnx__NodeProto nodes[7], *nodep[7];
	Onnx__TensorProto init[9], *initp[9];
	struct lrt_vi gin[2], gout;
	Onnx__ValueInfoProto *ginp[2] = { &gin[0].vi, &gin[1].vi }, *goutp = &gout.vi;
	lr_tensor *feeds[2] = { x, r };
	lr_model *mo = NULL;
	lr_engine *e = NULL;
	int nn = 0, ninit = 0, nin = variant == 2 || variant == 3 || variant == 6 ? 1 : 2, rc;
	char *conv_operand = variant == 5 ? bnn : cn;

	*y = NULL;
	for (int64_t i = 0; i < x->nelem; i++)
		((float *)x->data)[i] = frand();
	for (int64_t i = 0; i < r->nelem; i++)
		((float *)r->data)[i] = frand();
	for (int64_t i = 0; i < w->nelem; i++)
		((float *)w->data)[i] = frand() * 0.1f;
	for (int64_t i = 0; i < w2->nelem; i++)
		((float *)w2->data)[i] = frand() * 0.1f;
	for (int64_t i = 0; i < w3->nelem; i++)
		((float *)w3->data)[i] = frand() * 0.1f;
	for (int64_t i = 0; i < m; i++) {
		((float *)b->data)[i] = frand();
		((float *)k->data)[i] = frand();
		((float *)sc->data)[i] = 1.f + 0.5f * frand();
		((float *)mean->data)[i] = frand();
		((float *)var->data)[i] = 1.f + 0.5f * frand();
	}
	((float *)x->data)[7] = NAN;
	((float *)r->data)[11] = INFINITY;
	((float *)r->data)[300] = NAN;
	lrt_init(&cva, "Conv", 13);
	lrt_attr_ints(&cva, "kernel_shape", 2, (int64_t[]){ 3, 3 });
	lrt_attr_ints(&cva, "pads", 4, (int64_t[]){ 1, 1, 1, 1 });
	lrt_init(&cvb, "Conv", 13);
	lrt_attr_ints(&cvb, "kernel_shape", 2, (int64_t[]){ 3, 3 });
	lrt_attr_ints(&cvb, "pads", 4, (int64_t[]){ 1, 1, 1, 1 });
	for (int i = 0; i < 7; i++)
		nodep[i] = &nodes[i];
	if (variant == 2 || variant == 6) {
		/* a = Relu(ConvA(x)); c = ConvB(a) (variant 2) or
		 * ConvC(ConvB(a)) (variant 6); residual a */
		proto_node(&nodes[nn], "Conv", 3, conv_in, cva_out);
		nodes[nn].n_attribute = (size_t)cva.nattr;
		nodes[nn++].attribute = cva.attrp;
		proto_node(&nodes[nn++], "Relu", 1, rla_in, rla_out);
		proto_node(&nodes[nn], "Conv", 3, cvb_in, variant == 6 ? cv6b_out : conv_out);
		nodes[nn].n_attribute = (size_t)cvb.nattr;
		nodes[nn++].attribute = cvb.attrp;
		if (variant == 6)
			proto_node(&nodes[nn++], "Conv", 2, cv6c_in, conv_out);
		initp[ninit] = init_tp(&init[ninit], w2n, w2), ninit++;
	} else {
		proto_node(&nodes[nn], "Conv", 3, conv_in, conv_out);
		nodes[nn].n_attribute = (size_t)cva.nattr;
		nodes[nn++].attribute = cva.attrp;
	}
	if (variant == 5) {
		proto_node(&nodes[nn++], "BatchNormalization", 5, bn_in, bn_out);
		initp[ninit] = init_tp(&init[ninit], scn, sc), ninit++;
		initp[ninit] = init_tp(&init[ninit], mn, mean), ninit++;
		initp[ninit] = init_tp(&init[ninit], vn, var), ninit++;
	}
	add_in[variant == 1 ? 1 : 0] = conv_operand;
	add_in[variant == 1 ? 0 : 1] = variant == 2 || variant == 6 ? an : variant == 3 ? kn : rn;
	proto_node(&nodes[nn++], "Add", 2, add_in, add_out);
	if (variant != 4)
		proto_node(&nodes[nn++], variant == 1 ? "Clip" : "Relu", variant == 1 ? 3 : 1,
			   act_in, act_out);
	if (variant == 2 || variant == 6) {
		proto_node(&nodes[nn++], "Conv", 2, cvc_in, cvc_out);
		initp[ninit] = init_tp(&init[ninit], w3n, w3), ninit++;
	}
	initp[ninit] = init_tp(&init[ninit], wn, w), ninit++;
	initp[ninit] = init_tp(&init[ninit], bn, b), ninit++;
	if (variant == 3)
		initp[ninit] = init_tp(&init[ninit], kn, k), ninit++;
	if (variant == 1) {
		initp[ninit] = init_tp(&init[ninit], lon, lo), ninit++;
		initp[ninit] = init_tp(&init[ninit], hin, hi), ninit++;
	}
	lrt_vi_fill(&gin[0], xn, x);
	lrt_vi_fill(&gin[1], rn, r);
	lrt_vi_fill(&gout, yn, NULL);
	if (nofuse)
		setenv("LR_NO_FUSE", "1", 1);
	if (env != NULL)
		putenv((char *)env);
	rc = lrt_load_nodes(nodep, nn, ginp, nin, &goutp, 1, initp, ninit, 13, "fuse-res", &mo, msg);
	if (rc == 0)
		rc = lr_engine_create(&e, mo, threads);
	if (rc == 0)
		lr_engine_set_pricing(e, res_pricing);
	for (int i = 0; rc == 0 && i < 2; i++) { /* the second run: packed weights cached */
		lr_tensor_free(*y);
		*y = NULL;
		rc = lr_engine_run(e, feeds, nin, y, 1, 0, msg);
	}
	unsetenv("LR_NO_FUSE");
	if (env != NULL) {
		char name[64];

		snprintf(name, sizeof(name), "%.*s", (int)strcspn(env, "="), env);
		unsetenv(name);
	}
	*fused = e != NULL ? lr_engine_fused_nodes(e) : -1;
	lr_engine_free(e);
	lr_model_free(mo);
	lrt_fini(&cva);
	lrt_fini(&cvb);
	lr_tensor_free(x);
	lr_tensor_free(r);
	lr_tensor_free(w);
	lr_tensor_free(w2);
	lr_tensor_free(w3);
	lr_tensor_free(b);
	lr_tensor_free(k);
	lr_tensor_free(lo);
	lr_tensor_free(hi);
	lr_tensor_free(sc);
	lr_tensor_free(mean);
	lr_tensor_free(var);
	return rc;
}

static void run_res_case(int variant, int threads, const char *env, int want, int want_nofuse,
			 const char *label)
{
	lr_tensor *yf = NULL, *yu = NULL;
	lr_msg msg = { { 0 } };
	int nf = -1, nu = -1, rc1, rc2;
	uint64_t seed = rng;
	char full[200];

	snprintf(full, sizeof(full), "%s, %d thread(s)%s%s", label, threads, env ? ", " : "",
		 env ? env : "");
	rc1 = run_res(variant, threads, env, 0, &yf, &nf, &msg);
	rng = seed; /* the same inputs */
	rc2 = run_res(variant, threads, env, 1, &yu, &nu, &msg);
	/* (a BatchNormalization is folded with LR_NO_FUSE too) */
	check_fused(full, rc1, rc2, yf, yu, nf, nu - want_nofuse, want, &msg);
}

/*
 * Constant nodes run once, when the engine is created (hoist_constants):
 * Constant k -> Add(x, k) -> y, with k also a graph output. Over three
 * runs y = x + k and the k returned equals the attribute's, although the
 * caller scribbles over each returned k (outputs are copies of the
 * engine's tensor); an observer sees the Add run and not the Constant.
 */
struct count_obs {
	int nodes;
	int constant_seen;
};

static int count_nodes(void *ud, const lr_model *m, int ni, lr_tensor *const *outs, int nout)
{
	struct count_obs *o = ud;

	(void)outs;
	(void)nout;
	o->nodes++;
	o->constant_seen |= strcmp(m->nodes[ni].op_type, "Constant") == 0;
	return 0;
}

static void run_hoist_case(void)
{
	int64_t xd[2] = { 3, 5 };
	lr_tensor *x = lrt_f(2, xd, NULL), *k = lrt_f(2, xd, NULL), *out[2] = { NULL, NULL };
	char xn[] = "x", kn[] = "k", yn[] = "y";
	char *add_in[2] = { xn, kn }, *add_out[1] = { yn }, *k_out[1] = { kn };
	lrt_node kc, ad;
	Onnx__NodeProto nodes[2], *nodep[2] = { &nodes[0], &nodes[1] };
	struct lrt_vi gin, gout[2];
	Onnx__ValueInfoProto *ginp = &gin.vi, *goutp[2] = { &gout[0].vi, &gout[1].vi };
	struct count_obs obs = { 0, 0 };
	lr_model *m = NULL;
	lr_engine *e = NULL;
	lr_msg msg = { { 0 } };
	int rc, bad = 0, runs = 0;

	for (int64_t i = 0; i < x->nelem; i++) {
		((float *)x->data)[i] = frand();
		((float *)k->data)[i] = frand();
	}
	lrt_init(&kc, "Constant", 13);
	lrt_attr_tensor(&kc, "value", k);
	lrt_init(&ad, "Add", 13);
	node_of(&nodes[0], &kc, 0, NULL, k_out);
	node_of(&nodes[1], &ad, 2, add_in, add_out);
	lrt_vi_fill(&gin, xn, x);
	lrt_vi_fill(&gout[0], yn, NULL);
	lrt_vi_fill(&gout[1], kn, NULL);
	rc = lrt_load_nodes(nodep, 2, &ginp, 1, goutp, 2, NULL, 0, 13, "hoist", &m, &msg);
	if (rc == 0)
		rc = lr_engine_create(&e, m, 2);
	if (rc == 0)
		lr_engine_set_observer(e, count_nodes, &obs);
	for (int r = 0; rc == 0 && r < 3; r++) {
		rc = lr_engine_run(e, &x, 1, out, 2, 0, &msg);
		if (rc != 0)
			break;
		runs++;
		for (int64_t i = 0; i < x->nelem; i++) {
			float want = ((float *)x->data)[i] + ((float *)k->data)[i];

			bad += ((float *)out[0]->data)[i] != want;
			bad += ((float *)out[1]->data)[i] != ((float *)k->data)[i];
			((float *)out[1]->data)[i] = -1e30f; /* the caller's copy */
		}
		lr_tensor_free(out[0]);
		lr_tensor_free(out[1]);
		out[0] = out[1] = NULL;
	}
	if (rc != 0)
		tap_diag("hoist: %s", msg.text);
	tap_ok(rc == 0 && runs == 3 && bad == 0,
	       "hoisted Constant: 3 runs give x + k and k (%d wrong values)", bad);
	tap_ok(obs.nodes == 3 && !obs.constant_seen,
	       "hoisted Constant: it runs once at engine creation, not in a run (%d nodes observed in 3 runs)",
	       obs.nodes);
	lr_engine_free(e);
	lr_model_free(m);
	lr_tensor_free(x);
	lr_tensor_free(k);
}

int main(void)
{
	static const struct fcase cases[] = {
		/* label, c, h, m, k, stride, dil, group, act, env */
		{ "pointwise 1x1 Relu", 24, 20, 40, 1, 1, 1, 1, 1, NULL },
		{ "pointwise 1x1 Clip-6, 8 filters and a tail", 17, 15, 13, 1, 1, 1, 1, 2, NULL },
		{ "direct 1x1 Relu", 64, 20, 64, 1, 1, 1, 1, 1, NULL },
		{ "direct 1x1 Clip-13 (LR_NO_PW1X1)", 24, 20, 40, 1, 1, 1, 1, 3, "LR_NO_PW1X1=1" },
		{ "direct 3x3 Clip-6", 16, 19, 33, 3, 1, 1, 1, 2, NULL },
		{ "direct 3x3 Clip-13", 16, 19, 33, 3, 1, 1, 1, 3, NULL },
		{ "direct 3x3 Clip-13 min only", 16, 19, 33, 3, 1, 1, 1, 4, NULL },
		{ "direct AVX2 3x3 Clip-13", 16, 19, 20, 3, 1, 1, 1, 3, "LR_CONV_ISA=avx2" },
		{ "direct AVX2 1x1 Relu", 16, 19, 20, 1, 1, 1, 1, 1, "LR_CONV_ISA=avx2" },
		{ "direct stride 2 Relu", 8, 23, 64, 3, 2, 1, 1, 1, NULL },
		{ "few-channel stride 2 Clip-6", 3, 33, 20, 3, 2, 1, 1, 2, NULL },
		{ "few-channel 7x7 stride 2 Relu", 3, 40, 16, 7, 2, 1, 1, 1, NULL },
		{ "few-channel 1-channel stem (Fashion-MNIST) Relu", 1, 28, 32, 3, 1, 1, 1, 1, NULL },
		{ "depthwise 3x3 Clip-13", 32, 28, 32, 3, 1, 1, 32, 3, NULL },
		{ "depthwise 3x3 (40 wide) Clip-6", 32, 40, 32, 3, 1, 1, 32, 2, NULL },
		{ "depthwise 3x3 plane-wise stride 2 Relu", 8, 37, 8, 3, 2, 1, 8, 1, NULL },
		{ "depthwise 3x3 16 channels, 56 wide, stride 2 Relu", 16, 56, 16, 3, 2, 1, 16, 1, NULL },
		{ "depthwise 3x3 plane-wise stride 3 Clip-13", 8, 37, 8, 3, 3, 1, 8, 3, NULL },
		{ "depthwise 3x3 plane-wise (LR_NO_DW_C16) Relu", 32, 28, 32, 3, 1, 1, 32, 1, "LR_NO_DW_C16=1" },
		{ "depthwise 3x3 stride 2 Relu", 32, 28, 32, 3, 2, 1, 32, 1, NULL },
		{ "depthwise AVX2 Clip-6", 8, 15, 8, 3, 1, 1, 8, 2, "LR_CONV_ISA=avx2" },
		{ "Winograd 3x3 Relu", 16, 18, 24, 3, 1, 1, 1, 1, "LR_NO_CONV_DIRECT=1" },
		{ "im2col dilation 2 Clip-13", 12, 17, 10, 3, 1, 2, 1, 3, NULL },
		{ "grouped im2col Relu", 12, 17, 12, 3, 1, 1, 3, 1, NULL },
		{ "direct 1x1 Clip-13 bounds from Constant nodes", 24, 20, 40, 1, 1, 1, 1, 5, NULL },
		{ "depthwise Clip-13 bounds from Constant nodes", 16, 14, 16, 3, 2, 1, 16, 5, NULL },
	};

	/* Winograd wherever the direct kernels are off (its case only). */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
	run_bn_case(BN_FOLD, "Conv -> BatchNormalization -> Relu: BN folded, Relu fused", 2);
	run_bn_case(BN_NOBIAS, "Conv without bias -> BN -> Relu: folded, fused", 2);
	run_bn_case(BN_FED, "BN mean fed at run time: not folded", 0);
	run_bn_case(BN_TRAIN, "BN training_mode=1: not folded", 0);
	run_bn_case(BN_KEPT, "the Conv's output also a graph output: not folded", 0);
	run_add_case(1, 0, LR_DT_FLOAT, "Add of a per-channel constant -> Relu");
	run_add_case(3, 1, LR_DT_FLOAT, "Add of two inputs -> Clip-13 with initializer bounds");
	run_add_case(1, 1, LR_DT_INT64, "int64 Add -> Relu: not fused");
	for (int t = 1; t <= 2; t++) {
		static const char *envs[] = { NULL, "LR_CONV_ISA=avx2", "LR_NO_BLOCKED=1" };

		for (int i = 0; i < 3; i++) {
			run_res_case(0, t, envs[i], 2, 0, "Conv -> Add(conv, r) -> Relu: one pass");
			run_res_case(1, t, envs[i], 2, 0, "Conv (24 filters) -> Add(r, conv) -> Clip-13: one pass");
			run_res_case(2, t, envs[i], 3, 0, "Add(ConvB(a), a) -> Relu, a blocked: one pass");
			run_res_case(6, t, envs[i], 3, 0,
				     "Add(ConvC(ConvB(a)), a) -> Relu: Y in a's buffer");
		}
	}
	run_res_case(3, 2, NULL, 1, 0, "Add(conv, per-channel constant) -> Relu: not in the Conv");
	run_res_case(4, 2, NULL, 1, 0, "Conv -> Add(conv, r) as the graph output");
	run_res_case(5, 2, NULL, 3, 1, "Conv -> BN (folded) -> Add(bn, r) -> Relu: one pass");
	res_pricing = 1;
	run_res_case(0, 2, NULL, 1, 0, "pricing engine: the Add stays a node (and computes its Relu)");
	run_res_case(6, 2, NULL, 3, 0, "pricing engine, the Add the residual's last reader: fused");
	run_res_case(6, 1, NULL, 3, 0, "pricing engine, the Add the residual's last reader: fused");
	res_pricing = 0;
	run_silu_case(0, 0, "x -> Sigmoid -> Mul(x, s): SiLU in one pass");
	run_silu_case(1, 0, "x -> Sigmoid -> Mul(s, x): SiLU in one pass");
	run_silu_case(0, 1, "Mul(z, Sigmoid(x)): not fused");
	run_silu_case(1, 2, "Sigmoid's output also a graph output: not fused");
	run_hoist_case();
	return tap_done();
}
