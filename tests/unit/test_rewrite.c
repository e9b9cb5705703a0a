/*
 * test_rewrite.c - BatchNorm folding, activation analysis and low-rank
 * Conv replacement (solver/rewrite.h).
 *
 * DESIGN. Fixture models are built at test time by a python script
 * (embedded below, using onnx.helper) into a mkdtemp directory, plus the
 * committed torch export tests/data/tiny_cnn.onnx. Each rewrite is judged
 * numerically: folding must not change any graph output (our engine,
 * before and after, 1e-5 relative to the largest output); a decomposition
 * with factors WA = Q^T W, BA = Q^T b, WB = P, BB = b2 must make the
 * rewritten layer output P Q^T y + b2, where y is the original layer's
 * output captured by an engine observer (1e-4 relative). The tiny CNN's
 * rewritten model is also run by ONNX Runtime (tests/ort/ort_run.js) and
 * compared with our engine by tests/ort/compare.py, and every saved result
 * must pass onnx.checker.check_model(full_check=True).
 *
 * python3 with python3-onnx (and node with onnxruntime-node for the ORT
 * check) are declared dependencies: when missing, the tests that need them
 * FAIL rather than skip. $PYTHON3 and $NODE (set by `make check`) win over
 * /usr/bin/python3 and /usr/bin/node; $top_srcdir locates the sources
 * (falling back to this file's own path). Random factors and inputs come
 * from a seed printed as a TAP comment; set LR_TEST_SEED to replay one.
 */
#include "config.h"

#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model/engine.h"
#include "model/npy.h"
#include "model/onnx.h"
#include "solver/rewrite.h"
#include "solver/spatial.h"
#include "tests/unit/tap.h"
#include "tests/unit/testenv.h"

static char tmpdir[4096];
static char srcdir[4096];
static const char *python;
static const char *node_bin;
static uint64_t rng_state;

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static double urand(double lo, double hi)
{
	return lo + (hi - lo) * (double)(rng_next() >> 11) / 9007199254740992.0;
}

/* Runs prog with args (NULL-terminated); its stdout goes to stderr. */
static int run_prog(const char *prog, const char *const *args)
{
	return tenv_run(prog, args);
}

static int run_python(const char *const *args)
{
	return run_prog(python, args);
}

static const char *path_in(const char *name)
{
	static char path[8][8400];
	static int k;

	k = (k + 1) % 8;
	snprintf(path[k], sizeof(path[k]), "%s/%s", tmpdir, name);
	return path[k];
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static lr_model *load_path(const char *path)
{
	lr_model *m = NULL;
	lr_msg msg = { { 0 } };
	int rc = lr_model_load(path, NULL, &m, &msg);

	if (rc != 0)
		tap_diag("loading %s: rc %d: %s", path, rc, msg.text);
	return m;
}

static lr_model *load_fixture(const char *name)
{
	char file[256];

	snprintf(file, sizeof(file), "%s.onnx", name);
	return load_path(path_in(file));
}

/* A random input of the declared shape of graph input 0 (unknown dims 1). */
static lr_tensor *rand_input(const lr_model *m)
{
	const lr_value *v = &m->values[m->inputs[0]];
	int64_t dims[LR_MAX_DIMS];
	lr_tensor *t = NULL;

	for (int i = 0; i < v->ndim; i++)
		dims[i] = v->dims[i] > 0 ? v->dims[i] : 1;
	if (lr_tensor_create(&t, LR_DT_FLOAT, v->ndim, dims, 1) != 0)
		abort();
	for (int64_t i = 0; i < t->nelem; i++)
		((float *)t->data)[i] = (float)urand(-1, 1);
	return t;
}

struct grab {
	int node;
	lr_tensor *t;
};

static int grab_cb(void *ud, const lr_model *m, int node_index,
		   lr_tensor *const *outs, int nout)
{
	struct grab *g = ud;

	(void)m;
	if (node_index == g->node && nout > 0 && outs[0] != NULL && g->t == NULL)
		return lr_tensor_clone(&g->t, outs[0]);
	return 0;
}

/*
 * Runs `m` on x; outs[0..m->noutputs) receive the outputs. With grab_node
 * >= 0, *grabbed receives a copy of that node's first output.
 */
static int run_model(const lr_model *m, lr_tensor *x, lr_tensor **outs,
		     int grab_node, lr_tensor **grabbed)
{
	lr_engine *e = NULL;
	lr_msg msg = { { 0 } };
	struct grab g = { grab_node, NULL };
	int rc;

	for (int i = 0; i < m->noutputs; i++)
		outs[i] = NULL;
	rc = lr_engine_create(&e, m, 2);
	if (rc == 0) {
		if (grab_node >= 0)
			lr_engine_set_observer(e, grab_cb, &g);
		rc = lr_engine_run(e, &x, 1, outs, m->noutputs, 0, &msg);
	}
	if (rc != 0)
		tap_diag("run failed: rc %d: %s", rc, msg.text);
	lr_engine_free(e);
	if (grabbed != NULL)
		*grabbed = g.t;
	else
		lr_tensor_free(g.t);
	return rc;
}

static void free_outs(lr_tensor **outs, int n)
{
	for (int i = 0; i < n; i++) {
		lr_tensor_free(outs[i]);
		outs[i] = NULL;
	}
}

/* max|a-b| / max|b|; INFINITY on a shape mismatch or NaN. */
static double rel_err(const lr_tensor *a, const lr_tensor *b)
{
	double md = 0, mb = 0;

	if (a == NULL || b == NULL || a->ndim != b->ndim || a->nelem != b->nelem)
		return INFINITY;
	for (int i = 0; i < a->ndim; i++)
		if (a->dims[i] != b->dims[i])
			return INFINITY;
	for (int64_t i = 0; i < a->nelem; i++) {
		double x = ((const float *)a->data)[i], y = ((const float *)b->data)[i];

		if (isnan(x) || isnan(y))
			return INFINITY;
		md = fmax(md, fabs(x - y));
		mb = fmax(mb, fabs(y));
	}
	return mb > 0 ? md / mb : md;
}

static int count_op(const lr_model *m, const char *op)
{
	int n = 0;

	for (int i = 0; i < m->nnodes; i++)
		n += strcmp(m->nodes[i].op_type, op) == 0;
	return n;
}

static int find_node(const lr_model *m, const char *name)
{
	for (int i = 0; i < m->nnodes; i++)
		if (strcmp(m->nodes[i].name, name) == 0)
			return i;
	return -1;
}

static int first_op(const lr_model *m, const char *op)
{
	for (int i = 0; i < m->nnodes; i++)
		if (strcmp(m->nodes[i].op_type, op) == 0)
			return i;
	return -1;
}

/* 1 when both models have the same graph input and output names. */
static int same_io(const lr_model *a, const lr_model *b)
{
	if (a->ninputs != b->ninputs || a->noutputs != b->noutputs)
		return 0;
	for (int i = 0; i < a->ninputs; i++)
		if (strcmp(a->values[a->inputs[i]].name, b->values[b->inputs[i]].name) != 0)
			return 0;
	for (int i = 0; i < a->noutputs; i++)
		if (strcmp(a->values[a->outputs[i]].name, b->values[b->outputs[i]].name) != 0)
			return 0;
	return 1;
}

/* 1 when no two nodes of the proto share a non-empty name. */
static int node_names_unique(const lr_model *m)
{
	const Onnx__GraphProto *g = m->proto->graph;

	for (size_t i = 0; i < g->n_node; i++)
		for (size_t j = i + 1; j < g->n_node; j++)
			if (g->node[i]->name && g->node[i]->name[0] && g->node[j]->name &&
			    strcmp(g->node[i]->name, g->node[j]->name) == 0)
				return 0;
	return 1;
}

static const char *meta_get(const lr_model *m, const char *key)
{
	for (size_t i = 0; i < m->proto->n_metadata_props; i++)
		if (strcmp(m->proto->metadata_props[i]->key, key) == 0)
			return m->proto->metadata_props[i]->value;
	return NULL;
}

static int has_value_info(const lr_model *m, const char *name)
{
	const Onnx__GraphProto *g = m->proto->graph;

	for (size_t i = 0; i < g->n_value_info; i++)
		if (strcmp(g->value_info[i]->name, name) == 0)
			return 1;
	return 0;
}

/* Packs m and compares with an earlier packing (the model is untouched). */
static int same_bytes(const lr_model *m, const uint8_t *buf, size_t len)
{
	uint8_t *b2 = NULL;
	size_t l2 = 0;
	int same;

	if (lr_model_pack(m, &b2, &l2) != 0)
		return 0;
	same = l2 == len && memcmp(buf, b2, len) == 0;
	free(b2);
	return same;
}

static int save_model(const lr_model *m, const char *name)
{
	lr_msg msg = { { 0 } };
	int rc = lr_model_save(m, path_in(name), &msg);

	if (rc != 0)
		tap_diag("saving %s: %s", name, msg.text);
	return rc;
}

/* ---- fixtures ----------------------------------------------------------- */

static const char gen_py[] =
	"import os, sys\n"
	"import numpy as np\n"
	"import onnx\n"
	"from onnx import helper as h, numpy_helper as nh, TensorProto as T\n"
	"out, seed = sys.argv[1], int(sys.argv[2])\n"
	"rng = np.random.default_rng(seed)\n"
	"def f(*s): return rng.uniform(-1, 1, s).astype(np.float32)\n"
	"def U(lo, hi, d): return rng.uniform(lo, hi, d).astype(np.float32)\n"
	"def I(name, a): return nh.from_array(a, name)\n"
	"def V(name, shape): return h.make_tensor_value_info(name, T.FLOAT, shape)\n"
	"S4 = ['n', 'c', 'h', 'w']\n"
	"def bnp(p, d): return [I(p + '.scale', U(0.5, 1.5, d)), I(p + '.B', U(-.5, .5, d)),\n"
	"                       I(p + '.mean', U(-.5, .5, d)), I(p + '.var', U(.5, 2, d))]\n"
	"def bn(p, x, y, **kw): return h.make_node('BatchNormalization',\n"
	"    [x, p + '.scale', p + '.B', p + '.mean', p + '.var'], [y], name=p, **kw)\n"
	"def conv(name, ins, y, **kw): return h.make_node('Conv', ins, [y], name=name, **kw)\n"
	"def save(name, nodes, inits, ins, outs):\n"
	"    g = h.make_graph(nodes, name, ins, outs, inits, doc_string='graph doc')\n"
	"    m = h.make_model(g, opset_imports=[h.make_opsetid('', 13)],\n"
	"                     producer_name='rewrite-test', producer_version='7')\n"
	"    m.ir_version = 8\n"
	"    m.doc_string = 'model doc'\n"
	"    m.metadata_props.add(key='model_author', value='test')\n"
	"    m.metadata_props.add(key='lrd.job_id', value='old')\n"
	"    onnx.checker.check_model(m, full_check=True)\n"
	"    onnx.save(m, os.path.join(out, name + '.onnx'))\n"
	"# Conv(bias) -> BN -> Relu\n"
	"save('bn_basic', [conv('c', ['X', 'w', 'b'], 'c', pads=[1, 1, 1, 1]),\n"
	"                  bn('bn', 'c', 'n', epsilon=1e-3), h.make_node('Relu', ['n'], ['Y'])],\n"
	"     [I('w', f(4, 3, 3, 3)), I('b', f(4))] + bnp('bn', 4), [V('X', [1, 3, 8, 8])], [V('Y', S4)])\n"
	"# Conv without bias, stride 2\n"
	"save('bn_nobias', [conv('c', ['X', 'w'], 'c', strides=[2, 2]), bn('bn', 'c', 'n'),\n"
	"                   h.make_node('Relu', ['n'], ['Y'])],\n"
	"     [I('w', f(5, 3, 3, 3))] + bnp('bn', 5), [V('X', [1, 3, 9, 9])], [V('Y', S4)])\n"
	"# grouped Conv; the BN output is the graph output\n"
	"save('bn_group', [conv('c', ['X', 'w', 'b'], 'c', group=2, pads=[1, 1, 1, 1]), bn('bn', 'c', 'Y')],\n"
	"     [I('w', f(6, 2, 3, 3)), I('b', f(6))] + bnp('bn', 6), [V('X', [1, 4, 7, 7])], [V('Y', S4)])\n"
	"# BN after Relu stays; BN on a Conv that also feeds Add stays\n"
	"save('bn_mixed', [conv('c1', ['X', 'w1', 'b1'], 'c1', pads=[1, 1, 1, 1]), bn('bn1', 'c1', 'n1'),\n"
	"                  h.make_node('Relu', ['n1'], ['r1']), bn('bn2', 'r1', 'n2'),\n"
	"                  conv('c2', ['n2', 'w2', 'b2'], 'c2', pads=[1, 1, 1, 1]), bn('bn3', 'c2', 'n3'),\n"
	"                  h.make_node('Add', ['c2', 'n3'], ['Y'])],\n"
	"     [I('w1', f(3, 3, 3, 3)), I('b1', f(3)), I('w2', f(3, 3, 3, 3)), I('b2', f(3))]\n"
	"     + bnp('bn1', 3) + bnp('bn2', 3) + bnp('bn3', 3), [V('X', [1, 3, 8, 8])], [V('Y', S4)])\n"
	"# two Convs share W and b; a Conv that is a graph output feeds a BN\n"
	"save('bn_shared', [conv('ca', ['X', 'w', 'b'], 'ca'), bn('bna', 'ca', 'Ya'),\n"
	"                   conv('cb', ['X', 'w', 'b'], 'cb', pads=[1, 1, 1, 1]), bn('bnb', 'cb', 'Yb'),\n"
	"                   conv('cc', ['X', 'w3'], 'C3'), bn('bnc', 'C3', 'Yc')],\n"
	"     [I('w', f(4, 3, 3, 3)), I('b', f(4)), I('w3', f(2, 3, 1, 1))] + bnp('bna', 4)\n"
	"     + bnp('bnb', 4) + bnp('bnc', 2), [V('X', [1, 3, 6, 6])],\n"
	"     [V('Ya', S4), V('Yb', S4), V('C3', S4), V('Yc', S4)])\n"
	"# decomposition targets: Conv -> Relu -> MaxPool\n"
	"def dec(name, xs, ws, bias, **kw):\n"
	"    ins = ['X', 'W'] + (['B'] if bias else [])\n"
	"    inits = [I('W', f(*ws))] + ([I('B', f(ws[0]))] if bias else [])\n"
	"    save(name, [conv('conv', ins, 'y', **kw), h.make_node('Relu', ['y'], ['r']),\n"
	"                h.make_node('MaxPool', ['r'], ['Y'], kernel_shape=[2, 2], strides=[2, 2])],\n"
	"         inits, [V('X', xs)], [V('Y', S4)])\n"
	"dec('dec_s2', [2, 4, 11, 13], (6, 4, 3, 3), True, strides=[2, 2], pads=[1, 0, 1, 2])\n"
	"dec('dec_dil', [1, 3, 12, 12], (8, 3, 3, 3), True, dilations=[2, 2], pads=[2, 2, 2, 2], strides=[1, 2])\n"
	"dec('dec_same', [1, 3, 9, 9], (5, 3, 3, 3), True, auto_pad='SAME_UPPER', strides=[2, 2])\n"
	"dec('dec_nobias', [1, 3, 8, 8], (4, 3, 1, 3), False, pads=[0, 1, 0, 1], kernel_shape=[1, 3])\n"
	"# names the decomposition of node 'conv' wants are taken\n"
	"save('dec_collide', [conv('conv', ['X', 'w', 'b'], 'y'),\n"
	"                     conv('conv.lr_a', ['y', 'w.lr_a', 'w.lr_b'], 'y.lr_mid', pads=[1, 1, 1, 1]),\n"
	"                     h.make_node('Relu', ['y.lr_mid'], ['Y'])],\n"
	"     [I('w', f(4, 3, 3, 3)), I('b', f(4)), I('w.lr_a', f(4, 4, 3, 3)), I('w.lr_b', f(4))],\n"
	"     [V('X', [1, 3, 6, 6])], [V('Y', S4)])\n"
	"# dec_s2 with every tensor in external data\n"
	"onnx.save_model(onnx.load(os.path.join(out, 'dec_s2.onnx')), os.path.join(out, 'dec_ext.onnx'),\n"
	"                save_as_external_data=True, all_tensors_to_one_file=True,\n"
	"                location='dec_ext.data', size_threshold=0)\n"
	"# activation analysis\n"
	"acts = []\n"
	"inits = []\n"
	"for i in range(1, 10):\n"
	"    acts.append(conv('c%d' % i, ['X', 'w%d' % i, 'b%d' % i], 'c%d' % i))\n"
	"    inits += [I('w%d' % i, f(4, 4, 1, 1)), I('b%d' % i, f(4))]\n"
	"acts += [h.make_node('Add', ['c1', 'X'], ['o1']),\n"
	"         h.make_node('Concat', ['c2', 'X'], ['o2'], axis=1),\n"
	"         h.make_node('Relu', ['c4'], ['o4a']), h.make_node('Sigmoid', ['c4'], ['o4b']),\n"
	"         h.make_node('Clip', ['c5', 'lo', 'hi'], ['o5']),\n"
	"         h.make_node('Relu', ['c6'], ['o6']),\n"
	"         h.make_node('Add', ['c7', 'c7'], ['o7']), bn('bn8', 'c8', 'o8')]\n"
	"inits += [nh.from_array(np.array(0, np.float32), 'lo'), nh.from_array(np.array(6, np.float32), 'hi')]\n"
	"inits += bnp('bn8', 4)\n"
	"save('act', acts, inits, [V('X', [1, 4, 5, 5])],\n"
	"     [V(n, S4) for n in ['o1', 'o2', 'c3', 'o4a', 'o4b', 'o5', 'o6', 'o7', 'o8']])\n";

static const char check_py[] =
	"import sys\n"
	"import onnx\n"
	"for p in sys.argv[1:]:\n"
	"    m = onnx.load(p)\n"
	"    onnx.checker.check_model(m, full_check=True)\n"
	"    print('checker accepts', p)\n";

/* Runs onnx.checker.check_model(full_check=True) on a saved file. */
static int checker_ok(const char *file)
{
	const char *args[] = { "-c", check_py, path_in(file), NULL };

	return run_python(args) == 0;
}

/* ---- BatchNormalization folding ------------------------------------------ */

static void test_fold(const char *name, int want_folded, int want_bn)
{
	lr_model *m = load_fixture(name), *r = NULL;
	lr_tensor *x = NULL, *o1[8] = { 0 }, *o2[8] = { 0 };
	lr_msg msg = { { 0 } };
	uint8_t *before = NULL;
	size_t blen = 0;
	int nf = -1, rc;
	double worst = 0;
	char file[256];

	if (!tap_ok(m != NULL, "fold %s: fixture loads", name))
		return;
	if (lr_model_pack(m, &before, &blen) != 0)
		abort();
	x = rand_input(m);
	rc = lr_rewrite_fold_bn(m, &r, &nf, &msg);
	tap_ok(rc == 0 && r != NULL, "fold %s: lr_rewrite_fold_bn succeeds (%s)", name, msg.text);
	if (r == NULL)
		goto out;
	tap_ok(same_bytes(m, before, blen), "fold %s: the input model is untouched", name);
	tap_ok(nf == want_folded, "fold %s: %d BatchNormalization folded (want %d)", name, nf,
	       want_folded);
	tap_ok(count_op(r, "BatchNormalization") == want_bn,
	       "fold %s: %d BatchNormalization left (want %d)", name,
	       count_op(r, "BatchNormalization"), want_bn);
	tap_ok(same_io(m, r), "fold %s: graph input and output names unchanged", name);
	rc = run_model(m, x, o1, -1, NULL);
	if (rc == 0)
		rc = run_model(r, x, o2, -1, NULL);
	for (int i = 0; rc == 0 && i < m->noutputs; i++)
		worst = fmax(worst, rel_err(o2[i], o1[i]));
	tap_ok(rc == 0 && worst <= 1e-5, "fold %s: outputs unchanged (max rel error %.3g)", name,
	       worst);
	tap_ok(r->proto->doc_string && strcmp(r->proto->doc_string, "model doc") == 0 &&
		       meta_get(r, "model_author") && r->proto->producer_name &&
		       strcmp(r->proto->producer_name, "rewrite-test") == 0,
	       "fold %s: doc string, producer and metadata kept", name);
	snprintf(file, sizeof(file), "%s.folded.onnx", name);
	tap_ok(save_model(r, file) == 0 && checker_ok(file),
	       "fold %s: onnx.checker accepts the result", name);
out:
	free_outs(o1, 8);
	free_outs(o2, 8);
	lr_tensor_free(x);
	free(before);
	lr_model_free(r);
	lr_model_free(m);
}

static void test_fold_details(void)
{
	lr_model *m = load_fixture("bn_shared"), *r = NULL;
	lr_model *n = load_fixture("bn_nobias"), *rn = NULL;
	lr_msg msg = { { 0 } };
	int nf;

	if (m == NULL || n == NULL) {
		tap_ok(0, "fold details: fixtures load");
		goto out;
	}
	if (lr_rewrite_fold_bn(m, &r, &nf, &msg) != 0 ||
	    lr_rewrite_fold_bn(n, &rn, &nf, &msg) != 0) {
		tap_ok(0, "fold details: folding succeeds (%s)", msg.text);
		goto out;
	}
	/* Shared W/b: both folds get new names; the originals become unused. */
	tap_ok(lr_model_find_value(r, "w.folded") >= 0 && lr_model_find_value(r, "w.folded.1") >= 0 &&
		       lr_model_find_value(r, "b.folded") >= 0 &&
		       lr_model_find_value(r, "w") < 0 && lr_model_find_value(r, "b") < 0,
	       "fold shared weights: new collision-free names, originals dropped");
	tap_ok(lr_model_find_value(r, "bna.mean") < 0 && lr_model_find_value(r, "bnc.mean") >= 0 &&
		       lr_model_find_value(r, "ca") < 0 && lr_model_find_value(r, "C3") >= 0,
	       "fold shared weights: statistics of folded BNs dropped, the unfoldable BN kept");
	/* No bias: the BN's B initializer becomes the Conv's bias. */
	{
		int c = first_op(rn, "Conv");

		tap_ok(c >= 0 && rn->nodes[c].nin == 3 &&
			       strcmp(rn->values[rn->nodes[c].in[2]].name, "bn.B") == 0 &&
			       strcmp(rn->values[rn->nodes[c].out[0]].name, "n") == 0 &&
			       lr_model_find_value(rn, "bn.scale") < 0,
		       "fold without bias: Conv reads bias 'bn.B' and writes 'n'");
	}
out:
	lr_model_free(r);
	lr_model_free(rn);
	lr_model_free(m);
	lr_model_free(n);
}

/* ---- decomposition -------------------------------------------------------- */

/* Random factors for Conv node `ci`: WA = Q^T W, BA = Q^T b, WB = P, BB = b2. */
struct factors {
	int64_t d, r, ckk;
	int has_bias;
	double *M;      /* d x d: P Q^T */
	double *b2;     /* d */
	float *wa, *ba, *wb, *bb;
};

static void factors_free(struct factors *f)
{
	free(f->M);
	free(f->b2);
	free(f->wa);
	free(f->ba);
	free(f->wb);
	free(f->bb);
	memset(f, 0, sizeof(*f));
}

/* Orthonormal columns (Gram-Schmidt) of a random d x r matrix, row-major. */
static void rand_orthonormal(double *u, int64_t d, int64_t r)
{
	for (int64_t i = 0; i < d * r; i++)
		u[i] = urand(-1, 1);
	for (int64_t j = 0; j < r; j++) {
		for (int pass = 0; pass < 2; pass++)
			for (int64_t k = 0; k < j; k++) {
				double dot = 0;

				for (int64_t i = 0; i < d; i++)
					dot += u[i * r + j] * u[i * r + k];
				for (int64_t i = 0; i < d; i++)
					u[i * r + j] -= dot * u[i * r + k];
			}
		{
			double nrm = 0;

			for (int64_t i = 0; i < d; i++)
				nrm += u[i * r + j] * u[i * r + j];
			nrm = sqrt(nrm);
			for (int64_t i = 0; i < d; i++)
				u[i * r + j] /= nrm;
		}
	}
}

/*
 * kind 0: P, Q random uniform, b2 random; kind 1: P = Q = U orthonormal
 * (r = d gives the identity), b2 = 0; kind 2: P = U S, Q^T = S^-1 U^T
 * with random S, b2 = b - P Q^T b. use_bb 0 passes no second bias.
 */
static void make_factors(const lr_model *m, int ci, int64_t r, int kind, int use_bb,
			 struct factors *f)
{
	const lr_node *n = &m->nodes[ci];
	const lr_tensor *w = m->values[n->in[1]].init;
	const float *wd = w->data;
	const float *b = n->nin >= 3 && n->in[2] >= 0 ? m->values[n->in[2]].init->data : NULL;
	int64_t d = w->dims[0], ckk = w->nelem / d;
	double *P, *Q, *s;

	memset(f, 0, sizeof(*f));
	f->d = d;
	f->r = r;
	f->ckk = ckk;
	f->has_bias = b != NULL;
	P = calloc((size_t)(d * r), sizeof(double));
	Q = calloc((size_t)(d * r), sizeof(double));
	s = calloc((size_t)r, sizeof(double));
	f->M = calloc((size_t)(d * d), sizeof(double));
	f->b2 = calloc((size_t)d, sizeof(double));
	f->wa = calloc((size_t)(r * ckk), sizeof(float));
	f->ba = calloc((size_t)r, sizeof(float));
	f->wb = calloc((size_t)(d * r), sizeof(float));
	f->bb = calloc((size_t)d, sizeof(float));
	if (!P || !Q || !s || !f->M || !f->b2 || !f->wa || !f->ba || !f->wb || !f->bb)
		abort();
	if (kind == 0) {
		for (int64_t i = 0; i < d * r; i++) {
			P[i] = urand(-1, 1);
			Q[i] = urand(-1, 1);
		}
	} else {
		rand_orthonormal(P, d, r);
		for (int64_t j = 0; j < r; j++)
			s[j] = kind == 2 ? urand(0.5, 2) : 1.0;
		for (int64_t i = 0; i < d; i++)
			for (int64_t j = 0; j < r; j++) {
				Q[i * r + j] = P[i * r + j] / s[j];
				P[i * r + j] *= s[j];
			}
	}
	/* Round the factors to float first: the test's reference uses what the
	 * model stores. */
	for (int64_t i = 0; i < d * r; i++) {
		f->wb[i] = (float)P[i];
		P[i] = f->wb[i];
	}
	for (int64_t i = 0; i < d; i++)
		for (int64_t k = 0; k < d; k++) {
			double acc = 0;

			for (int64_t j = 0; j < r; j++)
				acc += P[i * r + j] * Q[k * r + j];
			f->M[i * d + k] = acc;
		}
	for (int64_t j = 0; j < r; j++) {
		double acc = 0;

		for (int64_t t = 0; t < ckk; t++) {
			double a = 0;

			for (int64_t i = 0; i < d; i++)
				a += Q[i * r + j] * wd[i * ckk + t];
			f->wa[j * ckk + t] = (float)a;
		}
		for (int64_t i = 0; b != NULL && i < d; i++)
			acc += Q[i * r + j] * b[i];
		f->ba[j] = (float)acc;
	}
	for (int64_t i = 0; i < d; i++) {
		double v = 0;

		if (kind == 0) {
			v = urand(-1, 1);
		} else if (kind == 2 && b != NULL) {
			v = b[i];
			for (int64_t k = 0; k < d; k++)
				v -= f->M[i * d + k] * b[k];
		}
		f->bb[i] = use_bb ? (float)v : 0.0f;
		f->b2[i] = f->bb[i];
	}
	if (!use_bb) {
		free(f->bb);
		f->bb = NULL;
	}
	free(P);
	free(Q);
	free(s);
}

static lr_decomp decomp_of(const struct factors *f, int node)
{
	lr_decomp dc;

	memset(&dc, 0, sizeof(dc));
	dc.node = node;
	dc.r = f->r;
	dc.wa = f->wa;
	dc.nwa = (size_t)(f->r * f->ckk);
	dc.wb = f->wb;
	dc.nwb = (size_t)(f->d * f->r);
	if (f->has_bias) {
		dc.ba = f->ba;
		dc.nba = (size_t)f->r;
	}
	if (f->bb != NULL) {
		dc.bb = f->bb;
		dc.nbb = (size_t)f->d;
	}
	return dc;
}

/* expected = M y + b2 over the channel axis of y (N, d, ...). */
static lr_tensor *apply_m(const struct factors *f, const lr_tensor *y)
{
	lr_tensor *z = NULL;
	int64_t n = y->dims[0], sp = y->nelem / (y->dims[0] * f->d);
	const float *yd = y->data;
	float *zd;

	if (y->ndim < 2 || y->dims[1] != f->d || lr_tensor_clone(&z, y) != 0)
		return NULL;
	zd = z->data;
	for (int64_t b = 0; b < n; b++)
		for (int64_t i = 0; i < f->d; i++)
			for (int64_t s = 0; s < sp; s++) {
				double acc = f->b2[i];

				for (int64_t k = 0; k < f->d; k++)
					acc += f->M[i * f->d + k] * yd[(b * f->d + k) * sp + s];
				zd[(b * f->d + i) * sp + s] = (float)acc;
			}
	return z;
}

/* MaxPool(2x2, stride 2)(Relu(z)) for 4-D z. */
static lr_tensor *relu_pool(const lr_tensor *z)
{
	int64_t dims[4] = { z->dims[0], z->dims[1], z->dims[2] / 2, z->dims[3] / 2 };
	lr_tensor *p = NULL;
	const float *zd = z->data;
	float *pd;

	if (lr_tensor_create(&p, LR_DT_FLOAT, 4, dims, 1) != 0)
		abort();
	pd = p->data;
	for (int64_t nc = 0; nc < dims[0] * dims[1]; nc++)
		for (int64_t i = 0; i < dims[2]; i++)
			for (int64_t j = 0; j < dims[3]; j++) {
				float mx = 0;

				for (int a = 0; a < 2; a++)
					for (int b = 0; b < 2; b++)
						mx = fmaxf(mx, zd[(nc * z->dims[2] + 2 * i + a) * z->dims[3] + 2 * j + b]);
				pd[(nc * dims[2] + i) * dims[3] + j] = mx;
			}
	return p;
}

static int producer_of(const lr_model *m, const char *value)
{
	int v = lr_model_find_value(m, value);

	return v >= 0 ? m->values[v].producer : -1;
}

/* Decomposes the Conv of a dec_* fixture at rank r and checks everything. */
static void test_decompose(const char *name, int64_t r, int kind, int use_bb)
{
	lr_model *m = load_fixture(name), *res = NULL;
	lr_tensor *x = NULL, *o1[1] = { 0 }, *o2[1] = { 0 }, *y = NULL, *z = NULL;
	lr_tensor *want = NULL, *want_out = NULL;
	struct factors f;
	lr_decomp dc;
	lr_meta meta[] = { { "lrd.version", "0.1.0" }, { "lrd.job_id", "job-42" } };
	lr_msg msg = { { 0 } };
	uint8_t *before = NULL;
	size_t blen = 0;
	int ci, rc;
	char file[256];

	memset(&f, 0, sizeof(f));
	if (!tap_ok(m != NULL, "decompose %s: fixture loads", name))
		return;
	if (lr_model_pack(m, &before, &blen) != 0)
		abort();
	ci = first_op(m, "Conv");
	make_factors(m, ci, r, kind, use_bb, &f);
	dc = decomp_of(&f, ci);
	x = rand_input(m);
	rc = lr_rewrite_decompose(m, &dc, 1, meta, 2, &res, &msg);
	if (!tap_ok(rc == 0 && res != NULL, "decompose %s: rank %lld succeeds (%s)", name,
		    (long long)r, msg.text))
		goto out;
	tap_ok(same_bytes(m, before, blen), "decompose %s: the input model is untouched", name);
	tap_ok(res->nnodes == m->nnodes + 1 && count_op(res, "Conv") == 2,
	       "decompose %s: one Conv became two", name);
	tap_ok(same_io(m, res), "decompose %s: graph input and output names unchanged", name);
	tap_ok(lr_model_find_value(res, "W") < 0 && lr_model_find_value(res, "B") < 0 &&
		       lr_model_find_value(res, "W.lr_a") >= 0 && lr_model_find_value(res, "W.lr_b") >= 0 &&
		       (lr_model_find_value(res, "W.lr_a_bias") >= 0) == f.has_bias &&
		       (lr_model_find_value(res, "W.lr_b_bias") >= 0) == use_bb,
	       "decompose %s: new initializers named after W, original W and B dropped", name);
	{
		int a = find_node(res, "conv.lr_a"), b = find_node(res, "conv.lr_b");
		int mid = lr_model_find_value(res, "y.lr_mid");

		tap_ok(a >= 0 && b >= 0 && mid >= 0 && res->nodes[a].out[0] == mid &&
			       res->nodes[b].in[0] == mid &&
			       strcmp(res->values[res->nodes[b].out[0]].name, "y") == 0 &&
			       has_value_info(res, "y.lr_mid") &&
			       res->values[res->nodes[a].in[1]].init->dims[0] == r &&
			       res->values[res->nodes[b].in[1]].init->dims[1] == r &&
			       res->values[res->nodes[b].in[1]].init->dims[2] == 1,
		       "decompose %s: conv.lr_a -> y.lr_mid -> conv.lr_b -> y with value_info", name);
	}
	tap_ok(meta_get(res, "lrd.version") && strcmp(meta_get(res, "lrd.version"), "0.1.0") == 0 &&
		       meta_get(res, "lrd.job_id") && strcmp(meta_get(res, "lrd.job_id"), "job-42") == 0 &&
		       meta_get(res, "model_author") && res->proto->n_metadata_props == 3 &&
		       strcmp(res->proto->metadata_props[1]->key, "lrd.job_id") == 0,
	       "decompose %s: metadata set, existing key replaced in place, others kept", name);

	/* Numbers: the new layer computes P Q^T y + b2. */
	rc = run_model(m, x, o1, ci, &y);
	if (rc == 0)
		rc = run_model(res, x, o2, producer_of(res, "y"), &z);
	if (!tap_ok(rc == 0 && y != NULL && z != NULL, "decompose %s: both models run", name))
		goto out;
	want = apply_m(&f, y);
	tap_ok(want != NULL && rel_err(z, want) <= 1e-4,
	       "decompose %s: layer output equals P Q^T y + b2 (rel error %.3g)", name,
	       want ? rel_err(z, want) : INFINITY);
	want_out = relu_pool(want);
	tap_ok(rel_err(o2[0], want_out) <= 1e-4,
	       "decompose %s: graph output equals MaxPool(Relu(P Q^T y + b2)) (rel error %.3g)",
	       name, rel_err(o2[0], want_out));
	snprintf(file, sizeof(file), "%s.lr.onnx", name);
	tap_ok(save_model(res, file) == 0 && checker_ok(file),
	       "decompose %s: onnx.checker accepts the result", name);
out:
	free(before);
	lr_tensor_free(x);
	lr_tensor_free(y);
	lr_tensor_free(z);
	lr_tensor_free(want);
	lr_tensor_free(want_out);
	free_outs(o1, 1);
	free_outs(o2, 1);
	factors_free(&f);
	lr_model_free(res);
	lr_model_free(m);
}

static void test_collide(void)
{
	lr_model *m = load_fixture("dec_collide"), *res = NULL;
	lr_tensor *x = NULL, *o1[1] = { 0 }, *o2[1] = { 0 }, *y = NULL, *z = NULL, *want = NULL;
	struct factors f;
	lr_decomp dc;
	lr_msg msg = { { 0 } };
	int ci;

	memset(&f, 0, sizeof(f));
	if (!tap_ok(m != NULL, "collide: fixture loads"))
		return;
	ci = find_node(m, "conv");
	make_factors(m, ci, 2, 0, 1, &f);
	dc = decomp_of(&f, ci);
	if (!tap_ok(lr_rewrite_decompose(m, &dc, 1, NULL, 0, &res, &msg) == 0,
		    "collide: decomposition succeeds (%s)", msg.text))
		goto out;
	tap_ok(lr_model_find_value(res, "w.lr_a.1") >= 0 && lr_model_find_value(res, "w.lr_b.1") >= 0 &&
		       lr_model_find_value(res, "w.lr_a_bias") >= 0 &&
		       lr_model_find_value(res, "w.lr_b_bias") >= 0 &&
		       lr_model_find_value(res, "y.lr_mid.1") >= 0 &&
		       lr_model_find_value(res, "w.lr_a") >= 0 && lr_model_find_value(res, "w") < 0,
	       "collide: taken names get a counter ('w.lr_a.1', 'w.lr_b.1', 'y.lr_mid.1')");
	tap_ok(find_node(res, "conv.lr_a.1") >= 0 && find_node(res, "conv.lr_b") >= 0 &&
		       find_node(res, "conv.lr_a") >= 0 && node_names_unique(res),
	       "collide: node names unique ('conv.lr_a.1', 'conv.lr_b')");
	x = rand_input(m);
	if (run_model(m, x, o1, ci, &y) == 0 &&
	    run_model(res, x, o2, producer_of(res, "y"), &z) == 0 && y && z) {
		want = apply_m(&f, y);
		tap_ok(want && rel_err(z, want) <= 1e-4, "collide: layer output correct (rel %.3g)",
		       want ? rel_err(z, want) : INFINITY);
	} else {
		tap_ok(0, "collide: both models run");
	}
	tap_ok(save_model(res, "collide.lr.onnx") == 0 && checker_ok("collide.lr.onnx"),
	       "collide: onnx.checker accepts the result");
out:
	lr_tensor_free(x);
	lr_tensor_free(y);
	lr_tensor_free(z);
	lr_tensor_free(want);
	free_outs(o1, 1);
	free_outs(o2, 1);
	factors_free(&f);
	lr_model_free(res);
	lr_model_free(m);
}

/* Writes ours, runs ORT on `model` and compares with compare.py. */
static int ort_agrees(const char *model, const char *xfile, const lr_tensor *ours,
		      const char *tag)
{
	char script[8400], cmp[8400], ofile[256], rfile[256];
	lr_msg msg = { { 0 } };
	int rc;

	const char *ortdir = getenv("LR_ORT_DIR"); /* where node_modules is installed */

	if (ortdir != NULL && ortdir[0] != '\0')
		snprintf(script, sizeof(script), "%s/ort_run.js", ortdir);
	else
		snprintf(script, sizeof(script), "%s/tests/ort/ort_run.js", srcdir);
	snprintf(cmp, sizeof(cmp), "%s/tests/ort/compare.py", srcdir);
	snprintf(ofile, sizeof(ofile), "%s.ours.npy", tag);
	snprintf(rfile, sizeof(rfile), "%s.ort.npy", tag);
	if (lr_npy_write(path_in(ofile), ours, &msg) != 0) {
		tap_diag("%s", msg.text);
		return 0;
	}
	{
		const char *args[] = { script, "run", path_in(model), path_in(xfile),
				       path_in(rfile), "--threads", "1", NULL };

		rc = run_prog(node_bin, args);
		if (rc != 0) {
			tap_diag("%s %s run failed with status %d (node with onnxruntime-node is required)",
				 node_bin, script, rc);
			return 0;
		}
	}
	{
		const char *args[] = { cmp, path_in(ofile), path_in(rfile), "--rtol", "1e-4",
				       "--atol", "1e-5", NULL };

		return run_python(args) == 0;
	}
}

static void test_tiny(void)
{
	char path[8400];
	lr_model *m = NULL, *full = NULL, *low = NULL, *again = NULL;
	lr_tensor *x = NULL, *o0[1] = { 0 }, *o1[1] = { 0 }, *o2[1] = { 0 }, *o3[1] = { 0 };
	lr_tensor *y = NULL, *z = NULL, *want = NULL;
	struct factors f3, f8, g3, g8, h;
	lr_decomp dc[2], dh;
	lr_meta meta[] = { { "lrd.params", "{\"method\":\"zhang2016\",\"ranks\":[8,16]}" },
			   { "lrd.version", "0.1.0" } };
	lr_msg msg = { { 0 } };
	int n3, n8, nf = -1;
	const char *w3 = "features.3.weight", *y3 = "/features/features.3/Conv_output_0";

	memset(&f3, 0, sizeof(f3));
	memset(&f8, 0, sizeof(f8));
	memset(&g3, 0, sizeof(g3));
	memset(&g8, 0, sizeof(g8));
	memset(&h, 0, sizeof(h));
	snprintf(path, sizeof(path), "%s/tests/data/tiny_cnn.onnx", srcdir);
	m = load_path(path);
	snprintf(path, sizeof(path), "%s/tests/data/tiny_input.npy", srcdir);
	if (!tap_ok(m != NULL && lr_npy_read(path, &x, &msg) == 0, "tiny: model and input load"))
		goto out;
	if (lr_npy_write(path_in("tiny_x.npy"), x, &msg) != 0)
		abort();
	n3 = find_node(m, "/features/features.3/Conv");
	n8 = find_node(m, "/features/features.8/Conv");
	if (!tap_ok(n3 >= 0 && n8 >= 0, "tiny: features.3 and features.8 Convs found"))
		goto out;

	/* Activation analysis: every Conv feeds a Relu. */
	{
		int nconv = 0, nrelu = 0;
		char why[64];

		for (int i = 0; i < m->nnodes; i++)
			if (strcmp(m->nodes[i].op_type, "Conv") == 0) {
				nconv++;
				nrelu += lr_conv_activation(m, i, why, sizeof(why)) == LR_ACT_RELU;
			}
		tap_ok(nconv == 5 && nrelu == 5, "tiny: all %d Convs are followed by Relu (%d)", nconv,
		       nrelu);
	}
	/* Folding: nothing to fold (torch already folded the BN). */
	{
		lr_model *r = NULL;

		tap_ok(lr_rewrite_fold_bn(m, &r, &nf, &msg) == 0 && nf == 0 && r != NULL &&
			       r->nnodes == m->nnodes,
		       "tiny: fold_bn finds nothing to fold");
		lr_model_free(r);
	}

	if (run_model(m, x, o0, n3, &y) != 0)
		goto out;
	/* Full rank with orthonormal P = Q: the network output is unchanged. */
	make_factors(m, n3, 32, 1, 0, &f3);
	make_factors(m, n8, 64, 1, 0, &f8);
	dc[0] = decomp_of(&f3, n3);
	dc[1] = decomp_of(&f8, n8);
	if (!tap_ok(lr_rewrite_decompose(m, dc, 2, NULL, 0, &full, &msg) == 0,
		    "tiny: full-rank decomposition of two Convs succeeds (%s)", msg.text))
		goto out;
	{
		int rc = run_model(full, x, o1, -1, NULL);
		double e = rel_err(o1[0], o0[0]);

		tap_ok(rc == 0 && e <= 1e-4,
		       "tiny: full-rank orthonormal factors leave the output unchanged (rel %.3g)", e);
	}

	/* Low rank, P = U S, Q^T = S^-1 U^T, b2 = b - P Q^T b. */
	make_factors(m, n3, 8, 2, 1, &g3);
	make_factors(m, n8, 16, 2, 1, &g8);
	dc[0] = decomp_of(&g3, n3);
	dc[1] = decomp_of(&g8, n8);
	if (!tap_ok(lr_rewrite_decompose(m, dc, 2, meta, 2, &low, &msg) == 0,
		    "tiny: rank 8 and 16 decomposition succeeds (%s)", msg.text))
		goto out;
	tap_ok(low->nnodes == m->nnodes + 2 && same_io(m, low) &&
		       lr_model_find_value(low, w3) < 0 &&
		       lr_model_find_value(low, "features.3.bias") < 0 &&
		       lr_model_find_value(low, "features.8.weight") < 0 &&
		       lr_model_find_value(low, "features.6.weight") >= 0,
	       "tiny: two more nodes, I/O names kept, replaced weights dropped, others kept");
	tap_ok(meta_get(low, "lrd.params") && meta_get(low, "lrd.version") &&
		       low->proto->producer_name && strcmp(low->proto->producer_name, "pytorch") == 0 &&
		       low->ir_version == m->ir_version && low->opset == m->opset,
	       "tiny: metadata added; producer, IR version and opset kept");
	if (run_model(low, x, o2, producer_of(low, y3), &z) != 0 || z == NULL) {
		tap_ok(0, "tiny: the low-rank model runs");
		goto out;
	}
	want = apply_m(&g3, y);
	tap_ok(want && rel_err(z, want) <= 1e-4,
	       "tiny: features.3 output equals P Q^T y + b2 (rel %.3g)",
	       want ? rel_err(z, want) : INFINITY);
	tap_diag("tiny: low-rank output differs from the original by rel %.3g",
		 rel_err(o2[0], o0[0]));
	tap_ok(save_model(low, "tiny.lr.onnx") == 0, "tiny: result saved");
	tap_ok(ort_agrees("tiny.lr.onnx", "tiny_x.npy", o2[0], "tiny"),
	       "tiny: ONNX Runtime agrees with our engine on the rewritten model");
	tap_ok(checker_ok("tiny.lr.onnx"), "tiny: onnx.checker accepts the rewritten model");

	/* Decompose the 1x1 B conv again: "<y3>.lr_mid" is taken. */
	{
		int nb = find_node(low, "/features/features.3/Conv.lr_b");
		char mid1[256];

		if (!tap_ok(nb >= 0, "tiny: node '/features/features.3/Conv.lr_b' exists"))
			goto out;
		make_factors(low, nb, 4, 0, 1, &h);
		dh = decomp_of(&h, nb);
		if (!tap_ok(lr_rewrite_decompose(low, &dh, 1, NULL, 0, &again, &msg) == 0,
			    "tiny: second decomposition succeeds (%s)", msg.text))
			goto out;
		snprintf(mid1, sizeof(mid1), "%s.lr_mid.1", y3);
		tap_ok(lr_model_find_value(again, mid1) >= 0 &&
			       lr_model_find_value(again, "features.3.weight.lr_b.lr_a") >= 0 &&
			       lr_model_find_value(again, "features.3.weight.lr_b") < 0 &&
			       find_node(again, "/features/features.3/Conv.lr_b.lr_a") >= 0 &&
			       node_names_unique(again) && same_io(m, again),
		       "tiny: second decomposition names are collision-free ('%s')", mid1);
		tap_ok(run_model(again, x, o3, -1, NULL) == 0 && save_model(again, "tiny.lr2.onnx") == 0 &&
			       ort_agrees("tiny.lr2.onnx", "tiny_x.npy", o3[0], "tiny2") && checker_ok("tiny.lr2.onnx"),
		       "tiny: twice-decomposed model runs, ORT agrees, checker accepts");
	}
out:
	lr_tensor_free(x);
	lr_tensor_free(y);
	lr_tensor_free(z);
	lr_tensor_free(want);
	free_outs(o0, 1);
	free_outs(o1, 1);
	free_outs(o2, 1);
	free_outs(o3, 1);
	factors_free(&f3);
	factors_free(&f8);
	factors_free(&g3);
	factors_free(&g8);
	factors_free(&h);
	lr_model_free(again);
	lr_model_free(low);
	lr_model_free(full);
	lr_model_free(m);
}

/* A model with external data: kept initializers are written inline. */
/* ---- spatial + channel ("3d") ------------------------------------------- */

/* y = conv(x, w) + b for 4-D x and w with the node's strides, pads, dilations. */
static lr_tensor *ref_conv(const lr_node *n, const lr_tensor *x, const float *w,
			   const float *b, int64_t d, int64_t kh, int64_t kw)
{
	int64_t st[2] = { 1, 1 }, dl[2] = { 1, 1 }, pd[4] = { 0, 0, 0, 0 }, dims[4];
	int64_t N = x->dims[0], c = x->dims[1], H = x->dims[2], W = x->dims[3];
	const float *xd = x->data;
	lr_tensor *y = NULL;
	int cnt;

	lr_node_attr_ints(n, "strides", st, 2, &cnt);
	lr_node_attr_ints(n, "dilations", dl, 2, &cnt);
	lr_node_attr_ints(n, "pads", pd, 4, &cnt);
	dims[0] = N;
	dims[1] = d;
	dims[2] = (H + pd[0] + pd[2] - dl[0] * (kh - 1) - 1) / st[0] + 1;
	dims[3] = (W + pd[1] + pd[3] - dl[1] * (kw - 1) - 1) / st[1] + 1;
	if (lr_tensor_create(&y, LR_DT_FLOAT, 4, dims, 1) != 0)
		abort();
	for (int64_t i = 0; i < N; i++)
		for (int64_t o = 0; o < d; o++)
			for (int64_t oy = 0; oy < dims[2]; oy++)
				for (int64_t ox = 0; ox < dims[3]; ox++) {
					double acc = b != NULL ? b[o] : 0.0;

					for (int64_t ci = 0; ci < c; ci++)
						for (int64_t h = 0; h < kh; h++)
							for (int64_t v = 0; v < kw; v++) {
								int64_t iy = oy * st[0] - pd[0] + h * dl[0];
								int64_t ix = ox * st[1] - pd[1] + v * dl[1];

								if (iy < 0 || iy >= H || ix < 0 || ix >= W)
									continue;
								acc += (double)w[((o * c + ci) * kh + h) * kw + v] *
								       xd[((i * c + ci) * H + iy) * W + ix];
							}
					((float *)y->data)[((i * d + o) * dims[2] + oy) * dims[3] + ox] = (float)acc;
				}
	return y;
}

/*
 * Splits the Conv of a dec_* fixture into (kh x 1, r2) -> (1 x kw, r) ->
 * (1 x 1, d) with the filter reconstruction and random channel factors
 * P, Q (identity = 1: r = d, P = Q = I), and checks the graph computes
 * what the factors predict: M (conv(x, W_s) + b) + b2 with W_s the
 * composite kernel of the split and M = P Q^T.
 */
static void test_spatial(const char *name, int64_t r2, int64_t r, int identity)
{
	lr_model *m = load_fixture(name), *res = NULL;
	lr_tensor *x = NULL, *o1[1] = { 0 }, *o2[1] = { 0 }, *y = NULL, *z = NULL;
	lr_tensor *ys = NULL, *want = NULL, *want_out = NULL;
	struct factors f;
	float *wv = NULL, *wh = NULL, *ws = NULL;
	double *P = NULL, *Q = NULL;
	lr_decomp dc;
	lr_msg msg = { { 0 } };
	const lr_tensor *w;
	const float *b0 = NULL;
	int64_t d, c, kh, kw;
	int ci, rc;
	char file[256], xfile[256], tag[128];

	memset(&f, 0, sizeof(f));
	if (!tap_ok(m != NULL, "spatial %s: fixture loads", name))
		return;
	ci = first_op(m, "Conv");
	w = m->values[m->nodes[ci].in[1]].init;
	if (m->nodes[ci].nin >= 3 && m->nodes[ci].in[2] >= 0)
		b0 = m->values[m->nodes[ci].in[2]].init->data;
	d = w->dims[0];
	c = w->dims[1];
	kh = w->dims[2];
	kw = w->dims[3];
	if (identity)
		r = d;
	wv = calloc((size_t)(r2 * c * kh), sizeof(float));
	wh = calloc((size_t)(d * r2 * kw), sizeof(float));
	ws = calloc((size_t)(d * c * kh * kw), sizeof(float));
	P = calloc((size_t)(d * r), sizeof(double));
	Q = calloc((size_t)(d * r), sizeof(double));
	f.d = d;
	f.r = r;
	f.M = calloc((size_t)(d * d), sizeof(double));
	f.b2 = calloc((size_t)d, sizeof(double));
	f.wa = calloc((size_t)(r * r2 * kw), sizeof(float));
	f.ba = calloc((size_t)r, sizeof(float));
	f.wb = calloc((size_t)(d * r), sizeof(float));
	f.bb = calloc((size_t)d, sizeof(float));
	if (!wv || !wh || !ws || !P || !Q || !f.M || !f.b2 || !f.wa || !f.ba || !f.wb || !f.bb)
		abort();
	rc = lr_spatial_split(w->data, d, c, kh, kw, r2, wv, wh, NULL, &msg);
	if (!tap_ok(rc == 0, "spatial %s: d'' = %lld split (%s)", name, (long long)r2, msg.text))
		goto out;
	lr_spatial_compose(wv, wh, d, c, kh, kw, r2, ws);
	for (int64_t i = 0; i < d * r; i++) {
		P[i] = identity ? (i / r == i % r) : urand(-1, 1);
		Q[i] = identity ? (i / r == i % r) : urand(-1, 1);
		f.wb[i] = (float)P[i]; /* wb: d x r, row i = output channel */
		P[i] = f.wb[i];
	}
	for (int64_t i = 0; i < d; i++) {
		for (int64_t k = 0; k < d; k++) {
			double acc = 0;

			for (int64_t j = 0; j < r; j++)
				acc += P[i * r + j] * Q[k * r + j];
			f.M[i * d + k] = acc;
		}
		f.bb[i] = identity ? 0.0f : (float)urand(-1, 1);
		f.b2[i] = f.bb[i];
	}
	/* wa = Q^T wh: (r, r2, 1, kw); ba = Q^T b */
	for (int64_t j = 0; j < r; j++) {
		double bacc = 0;

		for (int64_t t = 0; t < r2 * kw; t++) {
			double a = 0;

			for (int64_t i = 0; i < d; i++)
				a += Q[i * r + j] * wh[i * r2 * kw + t];
			f.wa[j * r2 * kw + t] = (float)a;
		}
		for (int64_t i = 0; b0 != NULL && i < d; i++)
			bacc += Q[i * r + j] * b0[i];
		f.ba[j] = (float)bacc;
	}
	memset(&dc, 0, sizeof(dc));
	dc.node = ci;
	dc.r = r;
	dc.wa = f.wa;
	dc.nwa = (size_t)(r * r2 * kw);
	dc.wb = f.wb;
	dc.nwb = (size_t)(d * r);
	dc.ba = b0 != NULL ? f.ba : NULL;
	dc.nba = b0 != NULL ? (size_t)r : 0;
	dc.bb = f.bb;
	dc.nbb = (size_t)d;
	dc.r2 = r2;
	dc.wv = wv;
	dc.nwv = (size_t)(r2 * c * kh);
	rc = lr_rewrite_decompose(m, &dc, 1, NULL, 0, &res, &msg);
	if (!tap_ok(rc == 0 && res != NULL, "spatial %s: d'' %lld, d' %lld rewrite succeeds (%s)",
		    name, (long long)r2, (long long)r, msg.text))
		goto out;
	{
		int v = find_node(res, "conv.lr_v"), a = find_node(res, "conv.lr_a");
		int b = find_node(res, "conv.lr_b");
		int64_t ks[2] = { 0, 0 }, ka[2] = { 0, 0 };
		int cnt;

		if (v >= 0)
			lr_node_attr_ints(&res->nodes[v], "kernel_shape", ks, 2, &cnt);
		if (a >= 0)
			lr_node_attr_ints(&res->nodes[a], "kernel_shape", ka, 2, &cnt);
		tap_ok(count_op(res, "Conv") == 3 && v >= 0 && a >= 0 && b >= 0 &&
			       res->nodes[a].in[0] == res->nodes[v].out[0] &&
			       res->nodes[b].in[0] == res->nodes[a].out[0] &&
			       ks[0] == kh && ks[1] == 1 && ka[0] == 1 && ka[1] == kw &&
			       res->nodes[v].nin == 2 && has_value_info(res, "y.lr_vmid"),
		       "spatial %s: conv.lr_v (%lldx1) -> conv.lr_a (1x%lld) -> conv.lr_b, no bias on V",
		       name, (long long)kh, (long long)kw);
	}
	x = rand_input(m);
	rc = run_model(m, x, o1, ci, &y);
	if (rc == 0)
		rc = run_model(res, x, o2, producer_of(res, "y"), &z);
	if (!tap_ok(rc == 0 && y != NULL && z != NULL, "spatial %s: both models run", name))
		goto out;
	ys = ref_conv(&m->nodes[ci], x, ws, b0, d, kh, kw);
	want = apply_m(&f, ys);
	tap_ok(want != NULL && rel_err(z, want) <= 1e-4,
	       "spatial %s: the three layers compute M (conv(x, W_s) + b) + b2 (rel error %.3g)",
	       name, want ? rel_err(z, want) : INFINITY);
	if (identity)
		tap_ok(rel_err(z, y) <= 1e-4,
		       "spatial %s: at full d'' with P = Q = I the split equals the original layer (rel error %.3g)",
		       name, rel_err(z, y));
	want_out = relu_pool(want);
	tap_ok(rel_err(o2[0], want_out) <= 1e-4,
	       "spatial %s: graph output equals MaxPool(Relu(prediction)) (rel error %.3g)", name,
	       rel_err(o2[0], want_out));
	snprintf(file, sizeof(file), "%s.3d.onnx", name);
	snprintf(xfile, sizeof(xfile), "%s_x.npy", name);
	snprintf(tag, sizeof(tag), "%s3d", name);
	tap_ok(save_model(res, file) == 0 && checker_ok(file) &&
		       lr_npy_write(path_in(xfile), x, &msg) == 0 &&
		       ort_agrees(file, xfile, o2[0], tag),
	       "spatial %s: onnx.checker accepts the result and ONNX Runtime agrees", name);
out:
	free(wv);
	free(wh);
	free(ws);
	free(P);
	free(Q);
	lr_tensor_free(x);
	lr_tensor_free(y);
	lr_tensor_free(z);
	lr_tensor_free(ys);
	lr_tensor_free(want);
	lr_tensor_free(want_out);
	free_outs(o1, 1);
	free_outs(o2, 1);
	factors_free(&f);
	lr_model_free(res);
	lr_model_free(m);
}

/* What the spatial rewrite refuses: SAME padding, bad factor sizes. */
static void test_spatial_errors(void)
{
	lr_model *m = load_fixture("dec_same"), *res = NULL;
	float wv[64] = { 0 }, wa[256] = { 0 }, wb[64] = { 0 };
	lr_decomp dc;
	lr_msg msg = { { 0 } };
	int rc;

	if (!tap_ok(m != NULL, "spatial errors: fixture loads"))
		return;
	memset(&dc, 0, sizeof(dc));
	dc.node = first_op(m, "Conv");
	dc.r = 2;
	dc.r2 = 2;
	dc.wv = wv;
	dc.nwv = 2 * 3 * 3;
	dc.wa = wa;
	dc.nwa = 2 * 2 * 3;
	dc.wb = wb;
	dc.nwb = 5 * 2;
	rc = lr_rewrite_decompose(m, &dc, 1, NULL, 0, &res, &msg);
	tap_ok(rc == LR_EUNSUPPORTED && strstr(msg.text, "auto_pad SAME_UPPER") && res == NULL,
	       "spatial: auto_pad SAME_UPPER is refused naming it: %s", msg.text);
	lr_model_free(m);
	m = load_fixture("dec_s2");
	dc.node = first_op(m, "Conv");
	dc.nwv = 5;
	memset(&msg, 0, sizeof(msg));
	rc = lr_rewrite_decompose(m, &dc, 1, NULL, 0, &res, &msg);
	tap_ok(rc == LR_EINVAL && strstr(msg.text, "kh x 1 factor has 5 values"),
	       "spatial: a kh x 1 factor of the wrong size is refused: %s", msg.text);
	lr_model_free(res);
	lr_model_free(m);
}

static void test_external(void)
{
	lr_model *m = load_fixture("dec_ext"), *r = NULL;
	lr_tensor *x = NULL, *o1[1] = { 0 }, *o2[1] = { 0 };
	lr_msg msg = { { 0 } };
	int nf = -1, rc, inline_ok = 1;
	double e;

	if (!tap_ok(m != NULL, "external: fixture with external data loads"))
		return;
	rc = lr_rewrite_fold_bn(m, &r, &nf, &msg);
	if (!tap_ok(rc == 0 && nf == 0, "external: rewriting succeeds (%s)", msg.text))
		goto out;
	for (size_t i = 0; i < r->proto->graph->n_initializer; i++) {
		const Onnx__TensorProto *tp = r->proto->graph->initializer[i];

		inline_ok &= tp->n_external_data == 0 && tp->has_raw_data &&
			     tp->raw_data.len > 0;
	}
	tap_ok(inline_ok && r->proto->graph->n_initializer == 2,
	       "external: both initializers are stored inline in the result");
	x = rand_input(m);
	rc = run_model(m, x, o1, -1, NULL);
	if (rc == 0)
		rc = run_model(r, x, o2, -1, NULL);
	e = rel_err(o2[0], o1[0]);
	tap_ok(rc == 0 && e == 0, "external: outputs identical (rel %.3g)", e);
out:
	lr_tensor_free(x);
	free_outs(o1, 1);
	free_outs(o2, 1);
	lr_model_free(r);
	lr_model_free(m);
}

/* ---- activation analysis ---------------------------------------------------- */

static void test_activation(void)
{
	static const struct {
		const char *node;
		int act;
		const char *why;
	} cases[] = {
		{ "c1", LR_ACT_NONE, "feeds Add" },
		{ "c2", LR_ACT_NONE, "feeds Concat" },
		{ "c3", LR_ACT_NONE, "graph output" },
		{ "c4", LR_ACT_NONE, "feeds 2 nodes" },
		{ "c5", LR_ACT_NONE, "feeds Clip" },
		{ "c6", LR_ACT_RELU, "" },
		{ "c7", LR_ACT_NONE, "feeds Add" },
		{ "c8", LR_ACT_NONE, "feeds BatchNormalization" },
		{ "c9", LR_ACT_NONE, "unused" },
	};
	lr_model *m = load_fixture("act");
	char why[64];

	if (!tap_ok(m != NULL, "activation: fixture loads"))
		return;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = find_node(m, cases[i].node), a;

		strcpy(why, "junk");
		a = n >= 0 ? lr_conv_activation(m, n, why, sizeof(why)) : -1;
		tap_ok(a == cases[i].act && strcmp(why, cases[i].why) == 0,
		       "activation: %s -> %s '%s' (got %d '%s')", cases[i].node,
		       cases[i].act == LR_ACT_RELU ? "RELU" : "NONE", cases[i].why, a, why);
	}
	{
		int a = lr_conv_activation(m, first_op(m, "Relu"), why, sizeof(why));

		tap_ok(a == LR_ACT_NONE && strcmp(why, "not a Conv, Gemm or MatMul") == 0,
		       "activation: a Relu node is 'not a Conv, Gemm or MatMul' (%s)", why);
	}
	tap_ok(lr_conv_activation(m, -1, NULL, 0) == LR_EINVAL &&
		       lr_conv_activation(m, m->nnodes, NULL, 0) == LR_EINVAL,
	       "activation: node index out of range is LR_EINVAL");
	/* After folding, c8's output goes straight to the graph output. */
	{
		lr_model *r = NULL;
		lr_msg msg = { { 0 } };
		int nf = 0;

		if (lr_rewrite_fold_bn(m, &r, &nf, &msg) == 0) {
			int n = find_node(r, "c8");
			int a = n >= 0 ? lr_conv_activation(r, n, why, sizeof(why)) : -1;

			tap_ok(nf == 1 && a == LR_ACT_NONE && strcmp(why, "graph output") == 0,
			       "activation: after folding, c8 is a 'graph output' (%s)", why);
		} else {
			tap_ok(0, "activation: folding act succeeds (%s)", msg.text);
		}
		lr_model_free(r);
	}
	lr_model_free(m);
}

/* ---- errors ------------------------------------------------------------------ */

static void expect_fail(const lr_model *m, const lr_decomp *dc, int nd, const lr_meta *meta,
			int nmeta, int want, const char *words, const char *what)
{
	lr_model *r = NULL;
	lr_msg msg = { { 0 } };
	int rc = lr_rewrite_decompose(m, dc, nd, meta, nmeta, &r, &msg);

	tap_ok(rc == want && r == NULL && strstr(msg.text, words) != NULL,
	       "error %s: rc %d (want %d), message '%s' names '%s'", what, rc, want, msg.text, words);
	lr_model_free(r);
}

static void test_errors(void)
{
	lr_model *m = load_fixture("dec_s2"), *g = load_fixture("bn_group");
	struct factors f;
	lr_decomp dc, two[2];
	lr_meta bad = { "", "x" };
	float nanv[64];

	memset(&f, 0, sizeof(f));
	if (!tap_ok(m != NULL && g != NULL, "errors: fixtures load"))
		goto out;
	make_factors(m, first_op(m, "Conv"), 3, 0, 1, &f);

	dc = decomp_of(&f, first_op(m, "Relu"));
	expect_fail(m, &dc, 1, NULL, 0, LR_EINVAL, "not a Conv", "Relu node");
	dc = decomp_of(&f, first_op(m, "Relu"));
	expect_fail(m, &dc, 1, NULL, 0, LR_EINVAL, "node '", "Relu node named");
	dc = decomp_of(&f, first_op(g, "Conv"));
	expect_fail(g, &dc, 1, NULL, 0, LR_EUNSUPPORTED, "node 'c'", "group 2");
	dc = decomp_of(&f, first_op(g, "Conv"));
	expect_fail(g, &dc, 1, NULL, 0, LR_EUNSUPPORTED, "group 2", "group 2 says so");
	dc = decomp_of(&f, first_op(m, "Conv"));
	dc.nwa--;
	expect_fail(m, &dc, 1, NULL, 0, LR_EINVAL, "node 'conv'", "first factor size");
	dc = decomp_of(&f, first_op(m, "Conv"));
	dc.nwb++;
	expect_fail(m, &dc, 1, NULL, 0, LR_EINVAL, "1x1 factor has 19 values", "1x1 factor size");
	dc = decomp_of(&f, first_op(m, "Conv"));
	dc.nbb = 2;
	expect_fail(m, &dc, 1, NULL, 0, LR_EINVAL, "bias sizes", "bias size");
	dc = decomp_of(&f, first_op(m, "Conv"));
	dc.r = 0;
	expect_fail(m, &dc, 1, NULL, 0, LR_EINVAL, "rank 0", "rank 0");
	dc = decomp_of(&f, first_op(m, "Conv"));
	dc.wb = NULL;
	expect_fail(m, &dc, 1, NULL, 0, LR_EINVAL, "NULL", "NULL factor");
	dc = decomp_of(&f, m->nnodes);
	expect_fail(m, &dc, 1, NULL, 0, LR_EINVAL, "out of range", "node index");
	two[0] = two[1] = decomp_of(&f, first_op(m, "Conv"));
	expect_fail(m, two, 2, NULL, 0, LR_EINVAL, "twice", "node listed twice");
	for (int i = 0; i < 64; i++)
		nanv[i] = NAN;
	dc = decomp_of(&f, first_op(m, "Conv"));
	dc.ba = nanv;
	expect_fail(m, &dc, 1, NULL, 0, LR_EINVAL, "NaN", "NaN factor");
	dc = decomp_of(&f, first_op(m, "Conv"));
	expect_fail(m, &dc, 1, &bad, 1, LR_EINVAL, "no key", "empty metadata key");
out:
	factors_free(&f);
	lr_model_free(m);
	lr_model_free(g);
}

/* ---- main ------------------------------------------------------------------- */

int main(void)
{
	const char *s = getenv("LR_TEST_SEED");
	uint64_t seed;
	char seedstr[32];

	python = tenv_python();
	node_bin = getenv("NODE");
	if (node_bin == NULL || node_bin[0] == '\0')
		node_bin = "/usr/bin/node";
	seed = s != NULL && s[0] ? strtoull(s, NULL, 10) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
	seed %= 1000000007ULL;
	rng_state = seed;
	snprintf(seedstr, sizeof(seedstr), "%llu", (unsigned long long)seed);
	tenv_srcdir(srcdir, sizeof(srcdir), __FILE__, "/tests/unit/test_rewrite.c");
	if (tenv_mkdtemp(tmpdir, sizeof(tmpdir), "lr-test-rewrite") != 0) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	tap_diag("seed %s (LR_TEST_SEED=%s replays), python: %s, node: %s, sources: %s, scratch: %s",
		 seedstr, seedstr, python, node_bin, srcdir, tmpdir);
	{
		const char *args[] = { "-c", gen_py, tmpdir, seedstr, NULL };

		if (!tap_ok(run_python(args) == 0,
			    "fixtures built by python3 with onnx.helper (python3-onnx is required)")) {
			tap_diag("kept %s for inspection", tmpdir);
			return tap_done();
		}
	}

	test_fold("bn_basic", 1, 0);
	test_fold("bn_nobias", 1, 0);
	test_fold("bn_group", 1, 0);
	test_fold("bn_mixed", 1, 2);
	test_fold("bn_shared", 2, 1);
	test_fold_details();

	test_decompose("dec_s2", 3, 0, 1);
	test_decompose("dec_dil", 5, 0, 1);
	test_decompose("dec_same", 2, 2, 1);
	test_decompose("dec_nobias", 2, 0, 0);
	test_decompose("dec_ext", 4, 1, 1);
	test_collide();
	test_external();
	test_tiny();
	test_spatial("dec_s2", 5, 3, 0);
	test_spatial("dec_dil", 9, 8, 1);
	test_spatial("dec_dil", 4, 5, 0);
	test_spatial("dec_nobias", 3, 2, 0);
	test_spatial_errors();
	test_activation();
	test_errors();

	if (tap_failed == 0)
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	else
		tap_diag("kept %s for inspection", tmpdir);
	return tap_done();
}
