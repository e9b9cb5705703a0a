/*
 * compress.c - the whole-model compression pipeline. See compress.h.
 *
 * Data flow. Calibration inputs are split once (seeded) into a fitting set
 * and a held-out set. Every decomposable layer gets, for every fitting
 * input, `samples_per_input` output positions (seeded per layer and input,
 * the outermost ring skipped), so targets and regressors are paired by
 * construction. Responses are gathered with an engine observer while the
 * model runs in batches:
 *   - targets T_l (n x d_l floats per layer) from the original model, all
 *     layers in one pass;
 *   - regressors S_l for an asymmetric method from the current, partly
 *     decomposed model; the pass stops right after layer l.
 * Ranks come from the eigenvalues of each T_l's covariance. A layer is
 * identified by its conv output name, which the rewrite keeps, so it is
 * found again in every rewritten model.
 */
#include "config.h"

#include "solver/compress.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/engine.h"
#include "solver/cost.h"
#include "solver/fc.h"
#include "model/inspect.h"
#include "solver/lowrank.h"
#include "solver/rewrite.h"
#include "solver/select.h"
#include "solver/spatial.h"


/* The option enums' names, in enum order; one lookup serves them all. */
#define NNAMES(a) ((int)(sizeof(a) / sizeof((a)[0])))
static const char *const method_names[] = {
	"nonlinear-asymmetric", "nonlinear", "linear-asymmetric", "linear",
};
static const char *const decomposition_names[] = { "channel", "spatial-channel" };
static const char *const objective_names[] = { "time", "flops" };
static const char *const fc_fit_names[] = { "auto", "shrinkage", "weight-svd", "data" };

/* The index of `s` in names[0..n), or -1. */
static int name_index(const char *const *names, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

/* names[i], or "unknown" when i is out of range. */
static const char *name_of(const char *const *names, int n, unsigned i)
{
	return i < (unsigned)n ? names[i] : "unknown";
}

/*
 * Each option enum has a parse and a name function over its name table;
 * one definition serves all four.
 */
#define ENUM_FUNCS(type, parse, name, names)                               \
	int parse(const char *s, type *out)                                \
	{                                                                  \
		int i = name_index(names, NNAMES(names), s);               \
                                                                           \
		if (i < 0)                                                 \
			return LR_EINVAL;                                  \
		*out = (type)i;                                            \
		return 0;                                                  \
	}                                                                  \
	const char *name(type v)                                           \
	{                                                                  \
		return name_of(names, NNAMES(names), (unsigned)v);         \
	}

ENUM_FUNCS(lr_method, lr_method_parse, lr_method_name, method_names)
ENUM_FUNCS(lr_decomposition, lr_decomposition_parse, lr_decomposition_name, decomposition_names)
ENUM_FUNCS(lr_objective, lr_objective_parse, lr_objective_name, objective_names)
ENUM_FUNCS(lr_fc_fit_kind, lr_fc_fit_parse, lr_fc_fit_name, fc_fit_names)
#undef ENUM_FUNCS

void lr_compress_opts_init(lr_compress_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->speedup = 4.0;
	/* --speedup means measured whole-model speedup (issue 8, item 5);
	 * LR_OBJECTIVE_FLOPS reproduces the paper. */
	o->objective = LR_OBJECTIVE_TIME;
	o->deploy_batch = 1;
	o->deploy_threads = 1;
	o->timing_cache = NULL;
	o->measure_samples = 7;
	o->method = LR_METHOD_NONLINEAR_ASYM;
	o->samples_per_input = 10;
	o->rank_multiple = 0;
	o->seed = 0;
	o->threads = 0;
	o->holdout = 0.1;
	o->batch = 8;
	o->time_runs = 5;
	o->memory_budget = (size_t)2 << 30;
	/* The spatial + channel scheme is the default: on the Fashion-MNIST
	 * test models it lost less top-1 than the channel scheme at every
	 * FLOP target from 2x to 6x and at equal speed measured in ONNX
	 * Runtime (docs/benchmarks.md); the selection keeps the channel
	 * scheme wherever that keeps more energy for its cost. */
	o->decomposition = LR_DECOMP_SPATIAL_CHANNEL;
}

/* ---- small utilities ---------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static int canceled(const lr_compress_opts *o)
{
	return o->cancel != NULL && *o->cancel;
}

/* One layer the pipeline works on. */
struct layer {
	char *out_name;          /* conv output value name: stable id */
	char *node_name;         /* for reports */
	int64_t d, c, kh, kw;    /* output channels, input channels, kernel */
	int64_t oh, ow;          /* output size at batch 1 */
	double macs;             /* per input */
	int decomposable;        /* per inspect + options */
	int relu;                /* followed only by ReLU */
	char why[160];           /* skip reason, or the activation note */
	int64_t rank;            /* chosen d' (0: not decomposed) */
	int64_t fixed_rank;      /* from the user, 0 if none */
	int32_t *pos;            /* n_fit * spi positions (oy * ow + ox) */
	float *T;                /* n x d targets (original model) */
	double *eig;             /* d eigenvalues of cov(T), descending */
	double energy;           /* kept energy at the chosen rank */
	double err_before;       /* nonlinear response error of the init */
	double err_after;        /* after the solve */
	double seconds;          /* solve time */
	const char *solution;    /* "nonlinear" or "linear" */
	int cached;              /* regressors came from the cached cut */
	lr_mck_choice *ch;       /* selection choices: [0] keeps the layer */
	int nch;
	double cost0;            /* cost of the layer as it is (cost model unit) */
	double cost;             /* cost at the chosen rank */
	int node;                /* conv node in the folded model */
	int timed;               /* 1: t0 and the candidates were measured */
	double t0;               /* measured seconds of the layer as it is (in the model) */
	double alpha;            /* in-model / alone time of the layer as it is */
	int64_t *cand_rank;      /* measured candidates: rank and seconds */
	double *cand_sec;
	int ncand;
	/* Fully connected layers (Gemm, MatMul; solver/fc.h): kh = kw = oh =
	 * ow = 1, c input and d output features, one response per input. */
	int fc;
	int64_t rpi;             /* response rows per input: spi, or 1 for fc */
	lr_fc_cov fcov;          /* the shrunk covariance (fits other than "data") */
	const char *fit;         /* fc: "shrinkage", "weight-svd" or "data" */
	double fc_alpha;         /* fc: the shrinkage applied */
	/* The spatial + channel scheme (spatial-channel decomposition). */
	int spatial;             /* 1: may take it (k x k, k > 1, enough c) */
	int64_t win;             /* input width: the k x 1 layer's output width */
	int64_t kmax;            /* min(c kh, d kw): the largest d'' */
	double *fen;             /* kmax + 1: weight energy the best d'' = j split keeps */
	int64_t rank2;           /* chosen d'' (0: the channel scheme) */
	double err_split;        /* response error after the split alone (-1: none) */
	double pen;              /* the chosen split's energy in the kept directions */
	double *patch;           /* spatial: input patches at the sampled positions of
				    the first patch_imgs fitting inputs, rows x kw x
				    c kh doubles (split_energies) */
	int64_t patch_imgs;
	int64_t patch_filled;    /* images whose patches patch_fill() wrote */
	int in_node, in_slot;    /* producer (node, output) of the layer's input;
				    in_node -1: the graph's first input */
	int64_t *scand_r2, *scand_r; /* measured (d'', d') candidates and seconds */
	double *scand_sec;
	int nscand;
};

struct collect {
	struct layer *L;         /* all layers */
	int nl;
	const lr_model *m;       /* model being run */
	int *node_layer;         /* per node of m: layer index or -1 */
	float **dst;             /* per layer: destination (T or S), or NULL */
	int64_t first;           /* fitting index of the batch's first input */
	int spi;                 /* samples per input */
	int patches;             /* 1: also fill the layers' patch arrays */
};

/*
 * Copies the input patches of layer Y at its sampled positions, for the
 * images of batch x (fitting indices first..) below Y->patch_imgs, into
 * Y->patch: row (i spi + s) holds kw x (c kh) values, column x of the
 * window then channel and row, zero where the window leaves the input.
 */
static int patch_fill(const lr_model *m, struct layer *Y, const lr_tensor *x, int64_t first,
		      int spi)
{
	const lr_node *nd = &m->nodes[Y->node];
	int64_t st[2] = { 1, 1 }, dl[2] = { 1, 1 }, pd[4] = { 0, 0, 0, 0 }, H, W, ckh;
	int cnt;

	if (x->ndim != 4 || x->dtype != LR_DT_FLOAT || x->dims[1] != Y->c)
		return LR_ESHAPE;
	H = x->dims[2];
	W = x->dims[3];
	ckh = Y->c * Y->kh;
	lr_node_attr_ints(nd, "strides", st, 2, &cnt);
	lr_node_attr_ints(nd, "dilations", dl, 2, &cnt);
	lr_node_attr_ints(nd, "pads", pd, 4, &cnt);
	for (int64_t b = 0; b < x->dims[0] && first + b < Y->patch_imgs; b++) {
		const float *img = (const float *)x->data + b * Y->c * H * W;

		if (first + b + 1 > Y->patch_filled)
			Y->patch_filled = first + b + 1;
		for (int s = 0; s < spi; s++) {
			int64_t row = (first + b) * spi + s;
			int64_t oy = Y->pos[row] / Y->ow, ox = Y->pos[row] % Y->ow;

			for (int64_t xx = 0; xx < Y->kw; xx++) {
				int64_t ix = ox * st[1] - pd[1] + xx * dl[1];
				double *dst = Y->patch + (row * Y->kw + xx) * ckh;

				for (int64_t ci = 0; ci < Y->c; ci++)
					for (int64_t h = 0; h < Y->kh; h++) {
						int64_t iy = oy * st[0] - pd[0] + h * dl[0];

						dst[ci * Y->kh + h] = iy >= 0 && iy < H && ix >= 0 && ix < W
									      ? (double)img[(ci * H + iy) * W + ix]
									      : 0.0;
					}
			}
		}
	}
	return 0;
}

static int collect_observer(void *ud, const lr_model *m, int ni,
			    lr_tensor *const *outs, int nout)
{
	struct collect *cl = ud;
	int li = cl->node_layer[ni];
	const lr_tensor *y;
	struct layer *L;
	int64_t plane;

	/* Patches of layers whose input this node produces (stage_sample). */
	for (int l = 0; cl->patches && l < cl->nl; l++) {
		struct layer *Y = &cl->L[l];
		int rc;

		if (Y->patch == NULL || Y->in_node != ni || Y->in_slot >= nout || outs[Y->in_slot] == NULL ||
		    cl->first >= Y->patch_imgs)
			continue;
		rc = patch_fill(m, Y, outs[Y->in_slot], cl->first, cl->spi);
		if (rc != 0)
			return rc;
	}
	if (li < 0 || cl->dst[li] == NULL || nout < 1 || outs[0] == NULL)
		return 0;
	y = outs[0];
	L = &cl->L[li];
	if (L->fc) {
		if (y->ndim != 2 || y->dims[1] != L->d)
			return LR_ESHAPE;
		memcpy(cl->dst[li] + cl->first * L->d, y->data,
		       (size_t)(y->dims[0] * L->d) * sizeof(float));
		return 0;
	}
	if (y->ndim != 4 || y->dims[1] != L->d || y->dims[2] != L->oh || y->dims[3] != L->ow)
		return LR_ESHAPE;
	plane = L->oh * L->ow;
	for (int64_t b = 0; b < y->dims[0]; b++) {
		int64_t i = cl->first + b;
		const float *img = (const float *)y->data + b * L->d * plane;

		for (int s = 0; s < cl->spi; s++) {
			int64_t row = i * cl->spi + s;
			int32_t p = L->pos[row];
			float *dst = cl->dst[li] + row * L->d;

			for (int64_t ch = 0; ch < L->d; ch++)
				dst[ch] = img[ch * plane + p];
		}
	}
	(void)m;
	return 0;
}

/* Maps every layer to its current conv node in `m` (by output name). */
static int map_layers(const lr_model *m, struct layer *L, int nl, int *node_layer,
		      lr_msg *msg)
{
	for (int i = 0; i < m->nnodes; i++)
		node_layer[i] = -1;
	for (int l = 0; l < nl; l++) {
		int v = lr_model_find_value(m, L[l].out_name);

		if (v < 0 || m->values[v].producer < 0)
			return lr_fail(msg, LR_EMODEL, "internal: layer output '%s' vanished",
				       L[l].out_name);
		node_layer[m->values[v].producer] = l;
	}
	return 0;
}

/* A batch tensor of inputs idx[b0 .. b0 + bn) of `calib`. */
static int gather_batch(const lr_tensor *calib, const int64_t *idx, int64_t b0, int64_t bn,
			lr_tensor **x)
{
	int64_t item = calib->nelem / calib->dims[0];
	int64_t dims[LR_MAX_DIMS];
	int rc;

	memcpy(dims, calib->dims, sizeof(dims));
	dims[0] = bn;
	rc = lr_tensor_create(x, LR_DT_FLOAT, calib->ndim, dims, 1);
	if (rc != 0)
		return rc;
	for (int64_t b = 0; b < bn; b++)
		memcpy((float *)(*x)->data + b * item,
		       (const float *)calib->data + idx[b0 + b] * item,
		       (size_t)item * sizeof(float));
	return 0;
}

/*
 * An engine for `m` whose observer samples the layers whose dst[] is set
 * into dst. cl->node_layer is malloc'ed: free it with the engine.
 */
static int collect_engine(const lr_model *m, struct layer *L, int nl, float **dst,
			  const lr_compress_opts *o, struct collect *cl, lr_engine **e,
			  lr_msg *msg)
{
	int rc;

	memset(cl, 0, sizeof(*cl));
	*e = NULL;
	cl->node_layer = malloc(sizeof(int) * (size_t)(m->nnodes + 1));
	if (cl->node_layer == NULL)
		return LR_ENOMEM;
	rc = map_layers(m, L, nl, cl->node_layer, msg);
	if (rc != 0)
		return rc;
	cl->L = L;
	cl->nl = nl;
	cl->m = m;
	cl->dst = dst;
	cl->spi = o->samples_per_input;
	rc = lr_engine_create(e, m, o->threads);
	if (rc == 0)
		lr_engine_set_observer(*e, collect_observer, cl);
	return rc;
}

/*
 * Runs `m` over fitting inputs [0, nfit) in batches and stores sampled
 * responses of the layers whose dst[] is set.
 */
static int run_collect(const lr_model *m, const lr_tensor *calib, const int64_t *order,
		       int64_t nfit, struct layer *L, int nl, float **dst, int patches,
		       const lr_compress_opts *o, lr_msg *msg)
{
	struct collect cl;
	lr_engine *e = NULL;
	lr_tensor *x = NULL, *y = NULL;
	int rc;

	rc = collect_engine(m, L, nl, dst, o, &cl, &e, msg);
	if (rc != 0)
		goto out;
	cl.patches = patches;
	for (int64_t b0 = 0; b0 < nfit; b0 += o->batch) {
		int64_t bn = nfit - b0 < o->batch ? nfit - b0 : o->batch;

		if (canceled(o)) {
			rc = lr_fail(msg, LR_ECANCELED, "canceled");
			goto out;
		}
		rc = gather_batch(calib, order, b0, bn, &x);
		if (rc != 0)
			goto out;
		cl.first = b0;
		/* a layer on the graph input takes its patches from the batch */
		for (int l = 0; patches && l < nl && rc == 0; l++)
			if (L[l].patch != NULL && L[l].in_node < 0 && b0 < L[l].patch_imgs)
				rc = patch_fill(m, &L[l], x, b0, o->samples_per_input);
		if (rc == 0)
			rc = lr_engine_run(e, &x, 1, &y, 1, 0, msg);
		lr_tensor_free(y);
		y = NULL;
		lr_tensor_free(x);
		x = NULL;
		if (rc != 0)
			goto out;
	}
out:
	lr_tensor_free(x);
	lr_engine_free(e);
	free(cl.node_layer);
	return rc;
}

/*
 * The activations at a cut of the (partly approximated) network for every
 * fitting input, by value name, batch by batch. Asymmetric reconstruction
 * advances this cut layer by layer instead of rerunning the network from
 * the input for every layer, as long as it fits the memory budget.
 */
struct cut_cache {
	int nv;                  /* values per batch (0: no cache) */
	char **names;            /* nv value names (stable across rewrites) */
	lr_tensor **t;           /* nbatches * nv tensors */
	int64_t nbatches;
	size_t bytes;
};

static void cache_free(struct cut_cache *c)
{
	for (int64_t i = 0; c->t != NULL && i < c->nbatches * c->nv; i++)
		lr_tensor_free(c->t[i]);
	for (int i = 0; c->names != NULL && i < c->nv; i++)
		free(c->names[i]);
	free(c->t);
	free(c->names);
	memset(c, 0, sizeof(*c));
}

/*
 * The cut in front of node `ni`: values produced by its ancestors and read
 * by any node that is not one (ni included). *out is malloc'ed.
 */
static int cut_values(const lr_model *m, int ni, int **out, int *nout)
{
	char *anc = calloc((size_t)m->nnodes + 1, 1);
	char *live = calloc((size_t)m->nvalues + 1, 1);
	int *stack = malloc(sizeof(int) * (size_t)(m->nnodes + 1));
	int sp = 0, n = 0, rc = 0;

	*out = NULL;
	*nout = 0;
	if (anc == NULL || live == NULL || stack == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	stack[sp++] = ni;
	while (sp > 0) {
		const lr_node *q = &m->nodes[stack[--sp]];

		for (int k = 0; k < q->nin; k++) {
			int p = q->in[k] >= 0 ? m->values[q->in[k]].producer : -1;

			if (p >= 0 && !anc[p]) {
				anc[p] = 1;
				stack[sp++] = p;
			}
		}
	}
	for (int q = 0; q < m->nnodes; q++)
		for (int k = 0; !anc[q] && k < m->nodes[q].nin; k++) {
			int u = m->nodes[q].in[k];

			if (u >= 0 && m->values[u].producer >= 0 && anc[m->values[u].producer] &&
			    !live[u]) {
				live[u] = 1;
				n++;
			}
		}
	*out = malloc(sizeof(int) * (size_t)(n + 1));
	if (*out == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	for (int v = 0; v < m->nvalues; v++)
		if (live[v])
			(*out)[(*nout)++] = v;
out:
	free(anc);
	free(live);
	free(stack);
	return rc;
}

/*
 * Asymmetric regressors of layer `l`: the original filters of layer l
 * (still in `m`) applied to the input the approximated shallower layers
 * give, sampled at the layer's positions into S. Starts from `cache` (the
 * cut before the previous solved layer) when it has one, and leaves in it
 * the cut before layer l if that fits `o->memory_budget` with the old one.
 */
static int collect_regressors(const lr_model *m, const lr_tensor *calib, const int64_t *order,
			      int64_t nfit, struct layer *L, int nl, int l, float *S,
			      struct cut_cache *cache, const lr_compress_opts *o,
			      int *used_cache, lr_msg *msg)
{
	struct collect cl;
	struct cut_cache nc;
	lr_engine *e = NULL;
	lr_tensor *x = NULL, **got = NULL;
	float **dst = calloc((size_t)nl + 1, sizeof(float *));
	int *want = NULL, *seed_idx = NULL, ncut = 0, keep = 1, rc, ni;
	int64_t nb = (nfit + o->batch - 1) / o->batch;

	memset(&nc, 0, sizeof(nc));
	memset(&cl, 0, sizeof(cl));
	*used_cache = 0;
	if (dst == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	dst[l] = S;
	rc = collect_engine(m, L, nl, dst, o, &cl, &e, msg);
	if (rc != 0)
		goto out;
	ni = m->values[lr_model_find_value(m, L[l].out_name)].producer;
	rc = cut_values(m, ni, &want, &ncut);
	if (rc != 0)
		goto out;
	/* Want the cut plus the layer's own output (which the observer samples). */
	{
		int *w = realloc(want, sizeof(int) * (size_t)(ncut + 1));

		if (w == NULL) {
			rc = LR_ENOMEM;
			goto out;
		}
		want = w;
		want[ncut] = m->nodes[ni].out[0];
	}
	got = calloc((size_t)ncut + 1, sizeof(*got));
	seed_idx = calloc((size_t)cache->nv + 1, sizeof(int));
	nc.names = calloc((size_t)ncut + 1, sizeof(char *));
	nc.t = calloc((size_t)(nb * ncut) + 1, sizeof(lr_tensor *));
	if (got == NULL || seed_idx == NULL || nc.names == NULL || nc.t == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	nc.nv = ncut;
	nc.nbatches = nb;
	for (int i = 0; i < ncut; i++)
		if ((nc.names[i] = strdup(m->values[want[i]].name)) == NULL) {
			rc = LR_ENOMEM;
			goto out;
		}
	for (int i = 0; i < cache->nv; i++)
		if ((seed_idx[i] = lr_model_find_value(m, cache->names[i])) < 0)
			cache_free(cache); /* cannot happen: names survive rewrites */
	*used_cache = cache->nv > 0;

	for (int64_t b = 0; b < nb; b++) {
		int64_t b0 = b * o->batch, bn = nfit - b0 < o->batch ? nfit - b0 : o->batch;

		if (canceled(o)) {
			rc = lr_fail(msg, LR_ECANCELED, "canceled");
			goto out;
		}
		rc = gather_batch(calib, order, b0, bn, &x);
		if (rc != 0)
			goto out;
		cl.first = b0;
		rc = lr_engine_run_segment(e, &x, 1, seed_idx, cache->nv ? cache->t + b * cache->nv : NULL,
					   cache->nv, want, ncut + 1, got, msg);
		lr_tensor_free(x);
		x = NULL;
		if (rc != 0)
			goto out;
		lr_tensor_free(got[ncut]);
		for (int i = 0; i < cache->nv; i++) {
			cache->bytes -= lr_tensor_bytes(cache->t[b * cache->nv + i]);
			lr_tensor_free(cache->t[b * cache->nv + i]);
			cache->t[b * cache->nv + i] = NULL;
		}
		for (int i = 0; i < ncut; i++) {
			if (keep) {
				nc.t[b * ncut + i] = got[i];
				nc.bytes += lr_tensor_bytes(got[i]);
			} else {
				lr_tensor_free(got[i]);
			}
			got[i] = NULL;
		}
		if (keep && nc.bytes + cache->bytes > o->memory_budget) {
			keep = 0;
			for (int64_t i = 0; i < nb * ncut; i++) {
				lr_tensor_free(nc.t[i]);
				nc.t[i] = NULL;
			}
			nc.bytes = 0;
		}
	}
	cache_free(cache);
	if (keep) {
		*cache = nc;
		memset(&nc, 0, sizeof(nc));
	}
out:
	if (rc != 0)
		cache_free(cache);
	cache_free(&nc);
	lr_tensor_free(x);
	lr_engine_free(e);
	free(got);
	free(want);
	free(seed_idx);
	free(dst);
	free(cl.node_layer);
	return rc;
}

/* Runs a model over the given inputs and returns the first output (N x ...). */
static int run_all(const lr_model *m, const lr_tensor *calib, const int64_t *idx, int64_t n,
		   const lr_compress_opts *o, lr_tensor **out, lr_msg *msg)
{
	lr_engine *e = NULL;
	lr_tensor *x = NULL, *y = NULL, *all = NULL;
	int64_t oitem = 0;
	int rc;

	*out = NULL;
	rc = lr_engine_create(&e, m, o->threads);
	if (rc != 0)
		return rc;
	for (int64_t b0 = 0; b0 < n; b0 += o->batch) {
		int64_t bn = n - b0 < o->batch ? n - b0 : o->batch;
		int64_t dims[LR_MAX_DIMS];

		rc = gather_batch(calib, idx, b0, bn, &x);
		if (rc != 0)
			goto out;
		rc = lr_engine_run(e, &x, 1, &y, 1, 0, msg);
		lr_tensor_free(x);
		x = NULL;
		if (rc != 0)
			goto out;
		if (y->dtype != LR_DT_FLOAT || y->ndim < 1 || y->dims[0] != bn) {
			rc = lr_fail(msg, LR_EUNSUPPORTED,
				     "the model's first output is not a float tensor with the batch first");
			goto out;
		}
		if (all == NULL) {
			memcpy(dims, y->dims, sizeof(dims));
			dims[0] = n;
			oitem = y->nelem / bn;
			rc = lr_tensor_create(&all, LR_DT_FLOAT, y->ndim, dims, 1);
			if (rc != 0)
				goto out;
		}
		memcpy((float *)all->data + b0 * oitem, y->data, (size_t)(bn * oitem) * sizeof(float));
		lr_tensor_free(y);
		y = NULL;
	}
	*out = all;
	all = NULL;
out:
	lr_tensor_free(x);
	lr_tensor_free(y);
	lr_tensor_free(all);
	lr_engine_free(e);
	return rc;
}

/* Wall time per stage, for the report. */
struct stage_clock {
	const char *name[12];
	double sec[12];
	int n;
	double t;
};

/* Ends the current stage (if any) and starts `name` (NULL: just end). */
static void stage_mark(struct stage_clock *c, const char *name)
{
	double now = lr_now();

	if (c->n > 0 && c->sec[c->n - 1] < 0)
		c->sec[c->n - 1] = now - c->t;
	if (name != NULL && c->n < 12) {
		c->name[c->n] = name;
		c->sec[c->n++] = -1;
	}
	c->t = now;
}

static void report_progress(const lr_compress_opts *o, const char *stage, int layer,
			    int nlayers, const char *name, double fraction, double t0,
			    struct stage_clock *clk)
{
	lr_progress p;
	double el = lr_now() - t0;

	if (clk != NULL && (clk->n == 0 || strcmp(clk->name[clk->n - 1], stage) != 0))
		stage_mark(clk, stage);
	if (o->progress == NULL)
		return;
	p.stage = stage;
	p.layer = layer;
	p.nlayers = nlayers;
	p.layer_name = name;
	p.iteration = 0;
	p.iterations = 0;
	p.fraction = fraction;
	p.eta_seconds = fraction > 0.02 ? el * (1.0 - fraction) / fraction : -1.0;
	o->progress(o->progress_ud, &p);
}

/* Solver iterations as progress within the "solving" stage. */
struct iter_progress {
	const lr_compress_opts *o;
	const char *name;
	int layer, nlayers;
	double f0, f1, t0;
	double last;
};

static void on_iteration(void *ud, int iter, int total)
{
	struct iter_progress *ip = ud;
	lr_progress p;
	double now = lr_now(), el = now - ip->t0, f;

	if (ip->o->progress == NULL || (now - ip->last < 0.2 && iter < total))
		return;
	ip->last = now;
	f = ip->f0 + (ip->f1 - ip->f0) * (total > 0 ? (double)iter / total : 0);
	p.stage = "solving";
	p.layer = ip->layer;
	p.nlayers = ip->nlayers;
	p.layer_name = ip->name;
	p.iteration = iter;
	p.iterations = total;
	p.fraction = f;
	p.eta_seconds = f > 0.02 ? el * (1.0 - f) / f : -1.0;
	ip->o->progress(ip->o->progress_ud, &p);
}

static int layer_excluded(const lr_compress_opts *o, const struct layer *L)
{
	for (int i = 0; i < o->nexclude; i++)
		if (strcmp(o->exclude[i], L->node_name) == 0 ||
		    strcmp(o->exclude[i], L->out_name) == 0)
			return 1;
	return 0;
}

/* ---- the pipeline -------------------------------------------------------- */

/*
 * The state the stages share. Each stage reads what earlier stages wrote
 * and adds its own part (marked below); none writes back into an earlier
 * stage's part, so data flows one way: check -> split -> fold -> inspect
 * -> cost -> sample -> select -> solve -> report -> evaluate -> time ->
 * finish. Everything owned here is freed by pipe_free().
 */
/* Rounds of trial_speedup() that may correct the selection's target. */
#define CALIBRATE_ROUNDS 3
/* A trial this close to the request (relative) ends them. */
#define CALIBRATE_TOL 0.05
/* Seconds a whole-model comparison (a trial, the report's measured
 * speedup) covers at least: a small model's 2 x 21 samples take 50 ms,
 * within one swing of the machine's load. */
#define TRIAL_SPAN 1.0

struct pipe {
	/* The caller's (borrowed). */
	const lr_model *m0;
	const lr_tensor *calib;
	const lr_compress_opts *o;
	const char *model_sha256, *calib_sha256;
	lr_msg *msg;
	int asym, nonlin, spi;
	double t0;
	struct stage_clock clk;
	/* split: a seeded order of the inputs; the first nfit_all are for
	 * fitting, the last nhold held out. */
	int64_t *order, ncal, nfit_all, nhold;
	/* fold: the working model (BN folded; later rewritten layer by layer). */
	lr_model *m;
	int nfolded;
	/* inspect: the Conv layers, their shapes, FLOP costs and decisions. */
	lr_layer_info *info;
	int ninfo, nl;
	double total_macs;
	struct layer *L;
	/* sample: inputs fitted (<= nfit_all, memory budget), positions,
	 * targets and eigenvalues per decomposable layer (in L). */
	int64_t nfit;
	/* cost: per layer the choices the selection has (L[l].ch), in the
	 * unit of the objective, and the budget they must fit. */
	int rank_multiple;       /* the rank grid's step */
	double cost_before;      /* the cost of all layers as they are */
	double cost_budget;      /* what the layers' choices may cost in all */
	/* ... with the time objective: whole-model times at the deployment
	 * batch and threads, and what measuring took. */
	double t_model;          /* the original model (m0) */
	double t_folded;         /* the folded model before any decomposition */
	double t_rest;           /* t_folded minus the timed layers as they are */
	/* select, time objective: the trials of calibrate() (target asked of
	 * the knapsack, its predicted and the trial's measured speedup) and
	 * the one kept. */
	double cal_target[CALIBRATE_ROUNDS], cal_pred[CALIBRATE_ROUNDS], cal_meas[CALIBRATE_ROUNDS];
	int ntrial, cal_best;
	int budget_raised;       /* the budget is the fastest ranks' (fastest_trial) */
	char prefix[256];        /* the timing cache's key prefix (cost_time) */
	double measure_seconds;
	int nmeasured, ncached;
	int vector_block;
	char cpu[128];
	/* select: L[l].rank, L[l].energy and L[l].cost. */
	lr_mck_result sel;
	/* solve: the asymmetric regressors and the cached cut. */
	float *S;
	struct cut_cache cache;
	size_t cache_peak;
	/* report, evaluate, time: the report; finish: the final model. */
	cJSON *rep;
};

static void pipe_free(struct pipe *p)
{
	cJSON_Delete(p->rep);
	free(p->S);
	cache_free(&p->cache);
	for (int l = 0; p->L != NULL && l < p->nl; l++) {
		free(p->L[l].out_name);
		free(p->L[l].node_name);
		free(p->L[l].pos);
		free(p->L[l].T);
		free(p->L[l].eig);
		free(p->L[l].ch);
		free(p->L[l].cand_rank);
		free(p->L[l].cand_sec);
		lr_fc_cov_free(&p->L[l].fcov);
		free(p->L[l].fen);
		free(p->L[l].patch);
		free(p->L[l].scand_r2);
		free(p->L[l].scand_r);
		free(p->L[l].scand_sec);
	}
	free(p->L);
	free(p->info);
	free(p->order);
	lr_model_free(p->m);
	memset(p, 0, sizeof(*p));
}

static int check_canceled(struct pipe *p)
{
	return canceled(p->o) ? lr_fail(p->msg, LR_ECANCELED, "canceled") : 0;
}

/* Options and input checks, before any work. */
static int stage_check(struct pipe *p)
{
	const lr_compress_opts *o = p->o;
	const lr_tensor *calib = p->calib;
	const lr_model *m0 = p->m0;
	lr_msg *msg = p->msg;
	int spi = o->samples_per_input;

	if (o->speedup != 0 && !(o->speedup > 1.0 && o->speedup < 1000.0))
		return lr_fail(msg, LR_EINVAL, "speedup must be greater than 1 (got %g)", o->speedup);
	if (o->speedup == 0 && o->nranks == 0)
		return lr_fail(msg, LR_EINVAL, "give a target speedup or per-layer ranks");
	if (spi < 1 || spi > 10000)
		return lr_fail(msg, LR_EINVAL, "samples_per_input must be 1..10000 (got %d)", spi);
	if (!(o->holdout >= 0.0 && o->holdout < 1.0))
		return lr_fail(msg, LR_EINVAL, "holdout must be in [0, 1) (got %g)", o->holdout);
	if (o->batch < 1)
		return lr_fail(msg, LR_EINVAL, "batch must be positive");
	if (o->deploy_batch < 1 || o->deploy_batch > 65536)
		return lr_fail(msg, LR_EINVAL, "deploy_batch must be 1..65536 (got %d)", o->deploy_batch);
	if (o->deploy_threads < 1 || o->deploy_threads > 256)
		return lr_fail(msg, LR_EINVAL, "deploy_threads must be 1..256 (got %d)", o->deploy_threads);
	if (o->measure_samples < 1 || o->measure_samples > 1000)
		return lr_fail(msg, LR_EINVAL, "measure_samples must be 1..1000 (got %d)", o->measure_samples);
	if ((unsigned)o->objective > LR_OBJECTIVE_FLOPS)
		return lr_fail(msg, LR_EINVAL, "unknown objective %d", (int)o->objective);
	if ((unsigned)o->decomposition > LR_DECOMP_SPATIAL_CHANNEL)
		return lr_fail(msg, LR_EINVAL, "unknown decomposition %d", (int)o->decomposition);
	if (m0->ninputs != 1)
		return lr_fail(msg, LR_EUNSUPPORTED, "the model has %d graph inputs; compress needs exactly one",
			       m0->ninputs);
	if (calib->dtype != LR_DT_FLOAT || calib->ndim < 2 || calib->data == NULL)
		return lr_fail(msg, LR_ESHAPE, "the calibration data must be a float array N x input shape");
	{
		const lr_value *v = &m0->values[m0->inputs[0]];
		char a[160], b[160];

		if (v->ndim >= 0 && v->ndim != calib->ndim)
			return lr_fail(msg, LR_ESHAPE, "calibration data has shape %s but input '%s' has rank %d",
				       lr_shape_str(calib->ndim, calib->dims, a, sizeof(a)), v->name, v->ndim);
		for (int i = 1; v->ndim >= 0 && i < v->ndim; i++)
			if (v->dims[i] >= 0 && v->dims[i] != calib->dims[i])
				return lr_fail(msg, LR_ESHAPE,
					       "calibration data has shape %s but input '%s' needs %s (batch first)",
					       lr_shape_str(calib->ndim, calib->dims, a, sizeof(a)), v->name,
					       lr_shape_str(v->ndim, v->dims, b, sizeof(b)));
	}
	for (int64_t i = 0; i < calib->nelem; i++)
		if (!isfinite(((const float *)calib->data)[i]))
			return lr_fail(msg, LR_ENUMERIC,
				       "calibration data has a NaN or infinite value at flat index %lld",
				       (long long)i);
	return 0;
}

/* Seeded split into fitting and held-out inputs. */
static int stage_split(struct pipe *p)
{
	const lr_compress_opts *o = p->o;
	uint64_t s = o->seed;

	p->ncal = p->calib->dims[0];
	p->nhold = (int64_t)floor(o->holdout * (double)p->ncal + 0.5);
	if (o->holdout > 0 && p->nhold < 1 && p->ncal >= 2)
		p->nhold = 1;
	p->nfit_all = p->ncal - p->nhold;
	if (p->nfit_all < 1)
		return lr_fail(p->msg, LR_EINVAL,
			       "no calibration inputs left for fitting (%lld inputs, holdout %g)",
			       (long long)p->ncal, o->holdout);
	p->order = malloc(sizeof(int64_t) * (size_t)p->ncal);
	if (p->order == NULL)
		return LR_ENOMEM;
	for (int64_t i = 0; i < p->ncal; i++)
		p->order[i] = i;
	for (int64_t i = p->ncal - 1; i > 0; i--) {
		int64_t j = (int64_t)(splitmix(&s) % (uint64_t)(i + 1)), t = p->order[i];

		p->order[i] = p->order[j];
		p->order[j] = t;
	}
	return 0;
}

/* BatchNormalization after a conv goes into the conv. */
static int stage_fold(struct pipe *p)
{
	report_progress(p->o, "folding", 0, 0, NULL, 0.0, p->t0, &p->clk);
	return lr_rewrite_fold_bn(p->m0, &p->m, &p->nfolded, p->msg);
}

/* Records the input shape of every value a dry run produces. */
struct shapes {
	int64_t (*dims)[LR_MAX_DIMS];
	int *ndim;
};

static int shape_observer(void *ud, const lr_model *m, int ni, lr_tensor *const *outs, int nout)
{
	struct shapes *sh = ud;

	for (int k = 0; k < nout && k < m->nodes[ni].nout; k++) {
		int v = m->nodes[ni].out[k];

		if (v >= 0 && outs[k] != NULL) {
			sh->ndim[v] = outs[k]->ndim;
			memcpy(sh->dims[v], outs[k]->dims, sizeof(sh->dims[v]));
		}
	}
	return 0;
}

static int layer_node_cmp(const void *a, const void *b)
{
	const struct layer *x = a, *y = b;

	return (x->node > y->node) - (x->node < y->node);
}

/*
 * The fully connected layers, appended to L: every Gemm or MatMul whose
 * second input is a constant 2-D weight (MatMuls of two activations are
 * not layers). Those solver/fc.h can decompose (2-D input, Gemm with
 * transA = 0 and a constant bias) are decomposable when some rank is
 * cheaper, r (c + d) < c d; the others are listed with the reason. Shapes
 * come from a dry run at batch 1.
 */
static int inspect_fc(struct pipe *p)
{
	const lr_model *m = p->m;
	struct shapes sh = { NULL, NULL };
	lr_engine *e = NULL;
	lr_tensor *x = NULL, *y = NULL;
	int64_t dims[LR_MAX_DIMS];
	int rc;

	memcpy(dims, p->calib->dims, sizeof(dims));
	dims[0] = 1;
	sh.dims = calloc((size_t)m->nvalues + 1, sizeof(*sh.dims));
	sh.ndim = calloc((size_t)m->nvalues + 1, sizeof(int));
	if (sh.dims == NULL || sh.ndim == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	sh.ndim[m->inputs[0]] = p->calib->ndim;
	memcpy(sh.dims[m->inputs[0]], dims, sizeof(dims));
	rc = lr_engine_create(&e, m, 1);
	if (rc == 0)
		rc = lr_tensor_create(&x, LR_DT_FLOAT, p->calib->ndim, dims, 0);
	if (rc == 0) {
		lr_engine_set_observer(e, shape_observer, &sh);
		rc = lr_engine_run(e, &x, 1, &y, 1, 1, p->msg);
	}
	if (rc != 0)
		goto out;
	for (int i = 0; i < m->nnodes && rc == 0; i++) {
		const lr_node *n = &m->nodes[i];
		const lr_tensor *w;
		struct layer *Y;
		lr_fc fc;
		char why[128];
		int a, yo;

		if ((strcmp(n->op_type, "Gemm") != 0 && strcmp(n->op_type, "MatMul") != 0) ||
		    n->nin < 2 || n->in[0] < 0 || n->in[1] < 0 || n->nout < 1 || n->out[0] < 0)
			continue;
		w = m->values[n->in[1]].init;
		a = n->in[0];
		yo = n->out[0];
		if (w == NULL || w->ndim != 2 || sh.ndim[yo] < 1)
			continue;
		Y = &p->L[p->nl++];
		Y->fc = 1;
		Y->rpi = 1;
		Y->out_name = strdup(m->values[yo].name);
		Y->node_name = strdup(n->name);
		if (Y->out_name == NULL || Y->node_name == NULL) {
			rc = LR_ENOMEM;
			break;
		}
		Y->node = i;
		Y->kh = Y->kw = Y->oh = Y->ow = 1;
		Y->d = sh.dims[yo][sh.ndim[yo] - 1];
		rc = lr_fc_extract(m, i, sh.ndim[a], &fc, why, sizeof(why));
		if (rc == LR_EUNSUPPORTED) {
			int64_t rows = 1;

			rc = 0;
			for (int k = 0; k + 1 < sh.ndim[yo]; k++)
				rows *= sh.dims[yo][k];
			Y->c = w->dims[0] == Y->d ? w->dims[1] : w->dims[0];
			Y->macs = (double)rows * (double)Y->c * (double)Y->d;
			snprintf(Y->why, sizeof(Y->why), "fully connected layer: %s", why);
			continue;
		}
		if (rc != 0)
			break;
		Y->c = fc.c;
		Y->d = fc.d;
		lr_fc_free(&fc);
		Y->macs = (double)Y->c * (double)Y->d;
		Y->decomposable = lr_fc_max_rank(Y->c, Y->d) > 0;
		if (!Y->decomposable)
			snprintf(Y->why, sizeof(Y->why), "no rank r < d makes it faster");
		else if (layer_excluded(p->o, Y)) {
			Y->decomposable = 0;
			snprintf(Y->why, sizeof(Y->why), "excluded by the user");
		} else {
			char w2[128] = "";

			Y->relu = lr_conv_activation(m, i, w2, sizeof(w2)) == LR_ACT_RELU;
			if (!Y->relu)
				snprintf(Y->why, sizeof(Y->why), "linear solution: %s", w2);
		}
	}
	/* Shallow to deep, as the solve stage needs. */
	if (rc == 0)
		qsort(p->L, (size_t)p->nl, sizeof(*p->L), layer_node_cmp);
out:
	free(sh.dims);
	free(sh.ndim);
	lr_tensor_free(x);
	lr_tensor_free(y);
	lr_engine_free(e);
	return rc;
}

/* The Conv layers, their costs at batch 1 and what to do with each. */
static int stage_inspect(struct pipe *p)
{
	const lr_compress_opts *o = p->o;
	const lr_model *m = p->m;
	lr_msg *msg = p->msg;
	int64_t dims[LR_MAX_DIMS];
	struct layer *L;
	int rc;

	memcpy(dims, p->calib->dims, sizeof(dims));
	dims[0] = 1;
	rc = lr_inspect(m, p->calib->ndim, dims, &p->info, &p->ninfo, &p->total_macs, msg);
	if (rc != 0)
		return rc;
	L = p->L = calloc((size_t)(p->ninfo + m->nnodes) + 1, sizeof(*L));
	if (L == NULL)
		return LR_ENOMEM;
	for (int i = 0; i < p->ninfo; i++) {
		const lr_layer_info *li = &p->info[i];
		const lr_node *n = &m->nodes[li->node];
		struct layer *Y;

		if (strcmp(li->op_type, "Conv") != 0)
			continue;
		Y = &L[p->nl++];
		Y->rpi = p->spi;
		Y->out_name = strdup(m->values[n->out[0]].name);
		Y->node_name = strdup(n->name);
		if (Y->out_name == NULL || Y->node_name == NULL)
			return LR_ENOMEM;
		Y->d = li->d;
		Y->c = li->c;
		Y->kh = li->kh;
		Y->kw = li->kw;
		Y->oh = li->oh;
		Y->ow = li->ow;
		Y->macs = li->macs;
		Y->node = li->node;
		Y->decomposable = li->decomposable && li->oh * li->ow > 0;
		snprintf(Y->why, sizeof(Y->why), "%s", li->reason);
		if (Y->decomposable && layer_excluded(o, Y)) {
			Y->decomposable = 0;
			snprintf(Y->why, sizeof(Y->why), "excluded by the user");
		}
		if (Y->decomposable) {
			char why[128] = "";

			Y->relu = lr_conv_activation(m, li->node, why, sizeof(why)) == LR_ACT_RELU;
			if (!Y->relu)
				snprintf(Y->why, sizeof(Y->why), "linear solution: %s", why);
		}
		for (int r = 0; r < o->nranks; r++)
			if (strcmp(o->ranks[r].layer, Y->node_name) == 0 ||
			    strcmp(o->ranks[r].layer, Y->out_name) == 0)
				Y->fixed_rank = o->ranks[r].rank;
	}
	rc = inspect_fc(p);
	if (rc != 0)
		return rc;
	for (int l = 0; l < p->nl; l++)
		for (int r = 0; L[l].fc && r < o->nranks; r++)
			if (strcmp(o->ranks[r].layer, L[l].node_name) == 0 ||
			    strcmp(o->ranks[r].layer, L[l].out_name) == 0)
				L[l].fixed_rank = o->ranks[r].rank;
	for (int r = 0; r < o->nranks; r++) {
		int found = 0;

		for (int l = 0; l < p->nl; l++)
			found |= strcmp(o->ranks[r].layer, L[l].node_name) == 0 ||
				 strcmp(o->ranks[r].layer, L[l].out_name) == 0;
		if (!found)
			return lr_fail(msg, LR_EINVAL, "ranks: no Conv, Gemm or MatMul layer is named '%s'", o->ranks[r].layer);
	}
	/* Never decompose into something slower, even when asked to. */
	for (int l = 0; l < p->nl; l++) {
		int64_t k2c = L[l].kh * L[l].kw * L[l].c, mr = lr_layer_max_rank(L[l].d, k2c);

		if (L[l].fixed_rank > 0 && L[l].decomposable && L[l].fixed_rank > mr)
			return mr > 0 ? lr_fail(msg, LR_EINVAL,
						"ranks: rank %lld for layer '%s' would be slower than the layer itself (ranks up to %lld are faster)",
						(long long)L[l].fixed_rank, L[l].node_name, (long long)mr)
				      : lr_fail(msg, LR_EINVAL, "ranks: no rank makes layer '%s' faster",
						L[l].node_name);
	}
	return 0;
}

/*
 * The spectrum rank selection weighs for fully connected layer Y, and the
 * fit it will get: with the "data" fit (or "auto" with at least
 * LR_FC_DATA_RATIO responses per output feature) the responses' own
 * covariance, as for a conv; otherwise the shrunk covariance of fc.h
 * (alpha = 1 for "weight-svd", data-driven for "shrinkage"), kept for the
 * solve. With N < d calibration inputs the responses' spectrum has at
 * most N - 1 nonzero eigenvalues, so it would call every rank >= N - 1
 * free.
 */
static int fc_spectrum(struct pipe *p, struct layer *Y)
{
	lr_fc_fit_kind f = p->o->fc_fit;
	lr_fc fc;
	char why[160];
	int rc;

	if (f == LR_FC_FIT_AUTO)
		f = p->nfit >= (int64_t)LR_FC_DATA_RATIO * Y->d ? LR_FC_FIT_DATA : LR_FC_FIT_SHRINK;
	Y->fit = lr_fc_fit_name(f);
	if (f == LR_FC_FIT_DATA)
		return lr_response_eigenvalues(Y->T, p->nfit, Y->d, Y->eig, p->msg);
	rc = lr_fc_extract(p->m, Y->node, 2, &fc, why, sizeof(why));
	if (rc != 0)
		return rc == LR_EUNSUPPORTED ? lr_fail(p->msg, LR_EMODEL, "internal: layer '%s': %s",
							 Y->node_name, why) : rc;
	rc = lr_fc_cov_build(&fc, Y->T, p->nfit, f == LR_FC_FIT_SVD ? 1.0 : -1.0, p->o->cancel,
			     &Y->fcov, p->msg);
	lr_fc_free(&fc);
	Y->fc_alpha = Y->fcov.alpha;
	if (rc == 0)
		rc = lr_fc_cov_eigenvalues(&Y->fcov, Y->eig, p->msg);
	if (rc != 0)
		lr_msg_prefix(p->msg, "layer '%s'", Y->node_name);
	return rc;
}

/*
 * Sampled responses: seeded positions and the original model's targets of
 * every decomposable layer, then their covariance spectra. The sampled
 * responses (targets of every layer, one layer's regressors, positions)
 * get at most half the memory budget; with more inputs than that holds,
 * the first ones of the seeded order are fitted and the report says so.
 */
/* What the input patches of all split candidates may hold together. */
#define SPLIT_PATCH_BYTES (256.0 * 1024 * 1024)

/*
 * Plans the patches split_energies() needs of layer Y (one of nspatial with
 * spatial choices): the first patch_imgs <= 32 fitting inputs, within an
 * even share of SPLIT_PATCH_BYTES and of a quarter of the memory budget,
 * collected in the sampling pass from the output of the node that feeds
 * the layer. Layers fed by anything but a node or the first graph input,
 * or when the memory is not there, get none, and split_energies() runs
 * the network to the layer instead.
 */
static void patch_plan(struct pipe *p, struct layer *Y, int nspatial)
{
	const lr_model *m = p->m;
	int v = m->nodes[Y->node].in[0];
	double row = 8.0 * (double)(Y->c * Y->kh * Y->kw) * (double)p->spi;
	double share = SPLIT_PATCH_BYTES < (double)p->o->memory_budget / 4
			       ? SPLIT_PATCH_BYTES : (double)p->o->memory_budget / 4;
	int64_t imgs = p->nfit < 32 ? p->nfit : 32;

	share /= nspatial > 0 ? nspatial : 1;
	if (row * (double)imgs > share)
		imgs = (int64_t)(share / row);
	/* LR_SPLIT_NO_PATCHES: always the fallback (tests compare the two) */
	if (imgs < 1 || v < 0 || getenv("LR_SPLIT_NO_PATCHES") != NULL)
		return;
	Y->in_slot = 0;
	Y->in_node = m->values[v].producer;
	if (Y->in_node >= 0) {
		const lr_node *pn = &m->nodes[Y->in_node];

		while (Y->in_slot < pn->nout && pn->out[Y->in_slot] != v)
			Y->in_slot++;
		if (Y->in_slot >= pn->nout)
			return;
	} else if (m->ninputs < 1 || m->inputs[0] != v) {
		return;
	}
	Y->patch = malloc(sizeof(double) * (size_t)imgs * (size_t)(row / 8.0));
	Y->patch_imgs = Y->patch != NULL ? imgs : 0;
}

static int stage_sample(struct pipe *p)
{
	const lr_compress_opts *o = p->o;
	struct layer *L = p->L;
	int nl = p->nl, spi = p->spi, rc, nspatial = 0;
	float **dst = NULL;
	int64_t sumd = 0, maxd = 0;
	double per_input, cap;

	p->nfit = p->nfit_all;
	for (int l = 0; l < nl; l++)
		if (L[l].decomposable) {
			/* conv: d floats and a position per sample; fc: d per input */
			sumd += L[l].fc ? L[l].d : spi * (L[l].d + 1);
			maxd = L[l].rpi * L[l].d > maxd ? L[l].rpi * L[l].d : maxd;
		}
	per_input = (double)(sumd + (p->asym ? maxd : 0)) * sizeof(float);
	cap = per_input > 0 ? floor((double)o->memory_budget / 2.0 / per_input) : (double)p->nfit;
	if (cap < (double)p->nfit) {
		if (cap < 1)
			return lr_fail(p->msg, LR_EINVAL,
				       "memory budget of %zu bytes is too small for one input's sampled responses (%.0f bytes)",
				       o->memory_budget, 2.0 * per_input);
		p->nfit = (int64_t)cap;
	}
	dst = calloc((size_t)nl + 1, sizeof(*dst));
	if (dst == NULL)
		return LR_ENOMEM;
	for (int l = 0; l < nl; l++)
		nspatial += L[l].decomposable && L[l].fen != NULL && !L[l].fc;
	for (int l = 0; l < nl; l++) {
		struct layer *Y = &L[l];
		uint64_t s = o->seed ^ (0xA5A5ull << 32) ^ (uint64_t)l * 0x100000001B3ull;
		int64_t y0 = Y->oh > 2 ? 1 : 0, y1 = Y->oh > 2 ? Y->oh - 1 : Y->oh;
		int64_t x0 = Y->ow > 2 ? 1 : 0, x1 = Y->ow > 2 ? Y->ow - 1 : Y->ow;
		size_t rows = (size_t)(p->nfit * Y->rpi);

		if (!Y->decomposable)
			continue;
		Y->pos = malloc(rows * sizeof(int32_t));
		Y->T = malloc(rows * (size_t)Y->d * sizeof(float));
		if (Y->pos == NULL || Y->T == NULL) {
			rc = lr_fail(p->msg, LR_ENOMEM,
				     "out of memory for %zu sampled responses of layer '%s'; use fewer samples per input",
				     rows, Y->node_name);
			goto out;
		}
		for (size_t r = 0; r < rows && !Y->fc; r++) {
			int64_t oy = y0 + (int64_t)(splitmix(&s) % (uint64_t)(y1 - y0));
			int64_t ox = x0 + (int64_t)(splitmix(&s) % (uint64_t)(x1 - x0));

			Y->pos[r] = (int32_t)(oy * Y->ow + ox);
		}
		dst[l] = Y->T;
		if (Y->fen != NULL && !Y->fc)
			patch_plan(p, Y, nspatial);
	}
	report_progress(o, "collecting", 0, nl, NULL, 0.02, p->t0, &p->clk);
	rc = run_collect(p->m, p->calib, p->order, p->nfit, L, nl, dst, 1, o, p->msg);
	if (rc != 0)
		goto out;
	report_progress(o, "ranks", 0, nl, NULL, 0.1, p->t0, &p->clk);
	for (int l = 0; l < nl && rc == 0; l++) {
		struct layer *Y = &L[l];

		if (!Y->decomposable)
			continue;
		Y->eig = calloc((size_t)Y->d, sizeof(double));
		if (Y->eig == NULL) {
			rc = LR_ENOMEM;
			break;
		}
		if (Y->fc)
			rc = fc_spectrum(p, Y);
		else
			rc = lr_response_eigenvalues(Y->T, p->nfit * spi, Y->d, Y->eig, p->msg);
	}
out:
	free(dst);
	return rc;
}

/* log of the PCA energy kept at rank r: the paper's objective per layer. */
static double log_energy(const double *eig, int64_t d, int64_t r)
{
	double kept = 0, all = 0;

	for (int64_t a = 0; a < d; a++) {
		all += eig[a] > 0 ? eig[a] : 0;
		if (a < r)
			kept += eig[a] > 0 ? eig[a] : 0;
	}
	if (!(all > 0))
		return 0;
	return kept > 0 ? log(kept / all) : -745.0; /* log of the smallest double */
}

/* Most points of a layer's energy curve in the report. */
#define LR_CURVE_POINTS 256

/*
 * A layer's cumulative PCA energy against rank for the report (the paper's
 * Fig. 2): {"rank": [...], "energy": [...]}, where energy[i] is the
 * fraction of the response energy the top rank[i] components keep. Ranks
 * run from 1 to d, every one when d <= LR_CURVE_POINTS, else that many
 * spread evenly, plus `chosen` (when in 1..d) so the chosen point lies on
 * the curve. Values are rounded to 6 decimals to keep reports small.
 * Returns a new object (the caller owns it), or NULL when out of memory or
 * when the layer has no energy.
 */
static cJSON *energy_curve(const double *eig, int64_t d, int64_t chosen)
{
	cJSON *o = NULL, *ra, *ea;
	double all = 0, kept = 0;
	int64_t n = d < LR_CURVE_POINTS ? d : LR_CURVE_POINTS, prev = 0, next = 1;

	for (int64_t a = 0; a < d; a++)
		all += eig[a] > 0 ? eig[a] : 0;
	if (!(all > 0) || d < 1)
		return NULL;
	o = cJSON_CreateObject();
	ra = cJSON_AddArrayToObject(o, "rank");
	ea = cJSON_AddArrayToObject(o, "energy");
	if (ra == NULL || ea == NULL)
		return cJSON_Delete(o), NULL;
	for (int64_t i = 0; i < n; i++) {
		int64_t r = n > 1 ? 1 + (i * (d - 1) + (n - 1) / 2) / (n - 1) : d;
		int64_t at[2] = { chosen, r };

		/* at[0], the chosen rank, goes in when it falls in (prev, r). */
		for (int k = chosen > prev && chosen < r ? 0 : 1; k < 2; k++) {
			for (; next <= at[k]; next++)
				kept += eig[next - 1] > 0 ? eig[next - 1] : 0;
			cJSON_AddItemToArray(ra, cJSON_CreateNumber((double)at[k]));
			cJSON_AddItemToArray(ea, cJSON_CreateNumber(round(kept / all * 1e6) / 1e6));
		}
		prev = r;
	}
	return o;
}

/* Bytes of a model's initializers: what a timing engine holds. */
static double init_bytes(const lr_model *m)
{
	double b = 0;

	for (int v = 0; v < m->nvalues; v++)
		if (m->values[v].init != NULL)
			b += (double)lr_tensor_bytes(m->values[v].init);
	return b;
}

/* Models timed interleaved at once, the reference included: their
 * engines are all alive together, so a group also closes before its
 * weights pass TIME_GROUP_BYTES (but holds at least two models). */
#define TIME_GROUP 8
#define TIME_GROUP_BYTES (512.0 * 1024 * 1024)

/* Builds timing model i (0: the reference) into *out. */
typedef int (*model_builder)(void *ud, int i, lr_model **out);

/* A builder's ud for models that exist already (borrowed, not freed). */
struct given_models {
	const lr_model *const *ms;
};

/*
 * Seconds of n timing models at `dims`, interleaved with reference model
 * 0 (lr_time_models): sec[i] from the cache under keys[i] when there (a
 * key NULL: always measured), else measured and cached. Only the missing
 * ones are built (build(ud, i, &m); the reference always; with build NULL,
 * ud is a struct given_models and they are borrowed from it): they are timed
 * in groups with the reference, each relative to the reference in the
 * same group and scaled to the reference's time (cached, else the lowest
 * of its measurements), so that each value compares to sec[0] as it would
 * within one measurement. A group's models are freed before the next is built.
 */
static int timed_group(struct pipe *p, lr_timing_cache *tc, char *const *keys, int n,
		       model_builder build, void *ud, int ndim, const int64_t *dims, double *sec)
{
	const struct given_models *given = build == NULL ? ud : NULL;
	lr_model **g = NULL, *next = NULL;
	double *gs = NULL, *rel = NULL, ref = INFINITY;
	int *gi = NULL, *todo = NULL, ntodo = 0, have0, k = 0, ng = 0, rc = 0;

	have0 = keys[0] != NULL && lr_timing_cache_get(tc, keys[0], &sec[0]);
	g = calloc((size_t)TIME_GROUP, sizeof(*g));
	gs = calloc((size_t)TIME_GROUP, sizeof(*gs));
	gi = calloc((size_t)TIME_GROUP, sizeof(*gi));
	rel = calloc((size_t)n + 1, sizeof(*rel));
	todo = calloc((size_t)n + 1, sizeof(*todo));
	if (g == NULL || gs == NULL || rel == NULL || gi == NULL || todo == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	for (int i = 1; i < n; i++) {
		if (keys[i] != NULL && lr_timing_cache_get(tc, keys[i], &sec[i]))
			p->ncached++;
		else
			todo[ntodo++] = i;
	}
	p->ncached += have0;
	if (have0 && ntodo == 0)
		goto out;
	if (given != NULL)
		g[0] = (lr_model *)given->ms[0];
	else if ((rc = build(ud, 0, &g[0])) != 0)
		goto out;
	do {
		double bytes = init_bytes(g[0]);

		for (ng = 1; ng < TIME_GROUP && k < ntodo; ng++, k++) {
			if (given != NULL)
				next = (lr_model *)given->ms[todo[k]];
			else if (next == NULL && (rc = build(ud, todo[k], &next)) != 0)
				goto out;
			if (ng >= 2 && bytes + init_bytes(next) > TIME_GROUP_BYTES)
				break;
			bytes += init_bytes(next);
			gi[ng] = todo[k];
			g[ng] = next;
			next = NULL;
		}
		rc = lr_time_models((const lr_model *const *)g, ng, ndim, dims, p->o->deploy_threads,
				    p->o->measure_samples, 0, p->o->cancel, gs, p->msg);
		if (rc != 0)
			goto out;
		ref = gs[0] < ref ? gs[0] : ref;
		for (int j = 1; j < ng; j++) {
			rel[gi[j]] = gs[j] / gs[0];
			if (given == NULL)
				lr_model_free(g[j]);
			g[j] = NULL;
		}
	} while (k < ntodo);
	p->nmeasured += ntodo + !have0;
	if (!have0) {
		sec[0] = ref;
		if (keys[0] != NULL)
			rc = lr_timing_cache_put(tc, keys[0], sec[0]);
	}
	for (int j = 0; j < ntodo && rc == 0; j++) {
		sec[todo[j]] = sec[0] * rel[todo[j]];
		if (keys[todo[j]] != NULL)
			rc = lr_timing_cache_put(tc, keys[todo[j]], sec[todo[j]]);
	}
out:
	for (int j = 0; given == NULL && g != NULL && j < TIME_GROUP; j++)
		lr_model_free(g[j]);
	if (given == NULL)
		lr_model_free(next);
	free(g);
	free(gs);
	free(rel);
	free(gi);
	free(todo);
	return rc;
}

/* What the builders of the one-layer timing models need. */
struct layer_models {
	const struct pipe *p;
	const struct layer *Y;
	const int64_t *in_dims;  /* the conv's input; NULL for FC */
	int64_t batch;           /* FC */
	const lr_model *alone;   /* the conv alone, which pairs rewrite */
	const int64_t *r, *r2;   /* per model i >= 1: ranks (r2 NULL or 0: a pair) */
};

/* The conv alone (0), else its pair at r[i], or triple at (r2[i], r[i]). */
static int build_conv(void *ud, int i, lr_model **out)
{
	struct layer_models *u = ud;

	if (i == 0)
		return lr_conv_alone(u->p->m, u->Y->node, u->in_dims, out, u->p->msg);
	if (u->r2 != NULL && u->r2[i] > 0)
		return lr_conv_triple(u->alone, u->r2[i], u->r[i],
				      0x3D + (uint64_t)(u->r2[i] * 4099 + u->r[i]), out, u->p->msg);
	return lr_conv_pair(u->alone, u->r[i], 0x9A1 + (uint64_t)u->r[i], out, u->p->msg);
}

/* The FC layer alone (0), else its pair at r[i] (seeded weights). */
static int build_fc(void *ud, int i, lr_model **out)
{
	struct layer_models *u = ud;
	int64_t r = i == 0 ? 0 : u->r[i];

	return lr_fc_timing_model(u->batch, u->Y->c, u->Y->d, r, u->p->m->opset, 0x9A1 + (uint64_t)r,
				  out, u->p->msg);
}

/* n cache keys of `len` bytes each, in one block (free keys[0] and keys). */
static char **key_table(int n, size_t len)
{
	char **k = calloc((size_t)n + 1, sizeof(*k));
	char *b = malloc((size_t)(n + 1) * len);

	if (k == NULL || b == NULL) {
		free(k);
		free(b);
		return NULL;
	}
	for (int i = 0; i < n; i++)
		k[i] = b + (size_t)i * len;
	return k;
}

static void key_table_free(char **k)
{
	if (k != NULL)
		free(k[0]);
	free(k);
}

/* At most this many measured candidates per layer: past it the grid step
 * grows (in multiples of the rank multiple). */
#define MAX_TIMED_CANDIDATES 32
#define KEY_LEN 1024

/*
 * The ranks timed for layer Y, into *grid (malloc'ed, count + 2 entries):
 * grid[0] = 0, the layer as it is, then the user's rank or the multiples of
 * the rank multiple up to the no-speedup bound mr (the step growing past
 * `maxc` of them). Returns the count after grid[0], or LR_ENOMEM.
 */
static int64_t timed_ranks(const struct pipe *p, const struct layer *Y, int64_t mr, int maxc,
			   int64_t **grid)
{
	int64_t ng = 1, step = p->rank_multiple;

	if (Y->fixed_rank == 0) {
		ng = lr_rank_grid(mr, (int)step, NULL, 0);
		if (ng > maxc && step > 1) {
			step *= (ng + maxc - 1) / maxc;
			ng = lr_rank_grid(mr, (int)step, NULL, 0);
		}
	}
	*grid = calloc((size_t)(ng + 2), sizeof(int64_t));
	if (*grid == NULL)
		return LR_ENOMEM;
	if (Y->fixed_rank > 0)
		(*grid)[1] = Y->fixed_rank;
	else
		lr_rank_grid(mr, (int)step, *grid + 1, ng);
	return ng;
}

/* Fewer for fully connected layers: each timing model holds the whole
 * weight (VGG-16's fc6: 411 MB), and their time is linear in the rank. */
#define MAX_TIMED_FC_CANDIDATES 20

/*
 * Times fully connected layer Y alone (one Gemm) and as the pair at every
 * candidate rank, at the deployment batch and threads, interleaved, from
 * timing models with seeded weights (solver/fc.h).
 */
static int time_fc_layer(struct pipe *p, lr_timing_cache *tc, struct layer *Y, int64_t batch,
			 const char *prefix)
{
	int64_t mr = lr_fc_max_rank(Y->c, Y->d), ng, *grid = NULL, dims[2] = { batch, Y->c };
	struct layer_models u = { p, Y, NULL, batch, NULL, NULL, NULL };
	char **keys = NULL;
	double *sec = NULL;
	int rc = 0;

	ng = timed_ranks(p, Y, mr, MAX_TIMED_FC_CANDIDATES, &grid);
	if (ng < 0)
		return (int)ng;
	sec = calloc((size_t)(ng + 2), sizeof(double));
	keys = key_table((int)ng + 1, KEY_LEN);
	Y->cand_rank = malloc(sizeof(int64_t) * (size_t)(ng + 1));
	Y->cand_sec = malloc(sizeof(double) * (size_t)(ng + 1));
	if (sec == NULL || keys == NULL || Y->cand_rank == NULL || Y->cand_sec == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	for (int64_t i = 0; i <= ng; i++)
		lr_fc_cost_key(batch, Y->c, Y->d, grid[i], prefix, keys[i], KEY_LEN);
	u.r = grid;
	rc = timed_group(p, tc, keys, (int)ng + 1, build_fc, &u, 2, dims, sec);
	if (rc != 0)
		goto out;
	Y->t0 = sec[0];
	for (int64_t i = 1; i <= ng; i++) {
		Y->cand_rank[Y->ncand] = grid[i];
		Y->cand_sec[Y->ncand++] = sec[i];
	}
	Y->timed = 1;
out:
	key_table_free(keys);
	free(grid);
	free(sec);
	return rc;
}

/* ---- the spatial + channel scheme: candidates (TPAMI 3.5) ---------------- */

/* Layers with fewer input channels keep the channel scheme: their k x 1
 * layer would be nearly as wide as the original (footnote 3 of TPAMI). */
#define SPATIAL_MIN_C 8
/* At most this many d'' and d' values per layer for the FLOP objective
 * (and SPATIAL_TIMED each for the measured one). */
#define SPATIAL_GRID 16
#define SPATIAL_TIMED 6

/* Whether layer Y may take the spatial + channel scheme. */
static int spatial_eligible(const struct pipe *p, const struct layer *Y)
{
	const lr_node *n = &p->m->nodes[Y->node];
	const lr_tensor *w = n->nin > 1 && n->in[1] >= 0 ? p->m->values[n->in[1]].init : NULL;
	char ap[32];
	const char *autopad = lr_node_attr_str(n, "auto_pad", "NOTSET", ap, sizeof(ap));

	return p->o->decomposition == LR_DECOMP_SPATIAL_CHANNEL && p->o->speedup > 0 &&
	       Y->decomposable && Y->fixed_rank == 0 && Y->kh > 1 && Y->kw > 1 &&
	       Y->c >= SPATIAL_MIN_C && w != NULL && w->ndim == 4 && w->dtype == LR_DT_FLOAT &&
	       (strcmp(autopad, "NOTSET") == 0 || strcmp(autopad, "VALID") == 0);
}

/* Up to `cap` ranks from 1 .. max: multiples of `step`, spread evenly
 * (the step grows when there are more). *out is malloc'ed. */
static int64_t spatial_grid(int64_t max, int step, int cap, int64_t **out)
{
	int64_t ng = lr_rank_grid(max, step, NULL, 0);

	if (ng > cap && step >= 1) {
		step *= (int)((ng + cap - 1) / cap);
		ng = lr_rank_grid(max, step, NULL, 0);
	}
	*out = malloc(sizeof(int64_t) * (size_t)(ng + 1));
	if (*out == NULL)
		return -1;
	return lr_rank_grid(max, step, *out, ng);
}

/* The input width of layer Y from its output width and geometry (the k x 1
 * layer neither pads nor strides horizontally, so it runs that wide). */
static int64_t layer_input_width(const struct pipe *p, const struct layer *Y)
{
	const lr_node *n = &p->m->nodes[Y->node];
	int64_t st[2] = { 1, 1 }, dl[2] = { 1, 1 }, pd[4] = { 0, 0, 0, 0 }, w;
	int cnt;

	lr_node_attr_ints(n, "strides", st, 2, &cnt);
	lr_node_attr_ints(n, "dilations", dl, 2, &cnt);
	lr_node_attr_ints(n, "pads", pd, 4, &cnt);
	w = (Y->ow - 1) * st[1] + dl[1] * (Y->kw - 1) + 1 - pd[1] - pd[3];
	return w > 0 ? w : 1;
}

/* The input height of layer Y from its output height and geometry. */
static int64_t layer_input_height(const struct pipe *p, const struct layer *Y)
{
	const lr_node *n = &p->m->nodes[Y->node];
	int64_t st[2] = { 1, 1 }, dl[2] = { 1, 1 }, pd[4] = { 0, 0, 0, 0 }, h;
	int cnt;

	lr_node_attr_ints(n, "strides", st, 2, &cnt);
	lr_node_attr_ints(n, "dilations", dl, 2, &cnt);
	lr_node_attr_ints(n, "pads", pd, 4, &cnt);
	h = (Y->oh - 1) * st[0] + dl[0] * (Y->kh - 1) + 1 - pd[0] - pd[2];
	return h > 0 ? h : 1;
}

/* What the split's measured energy may hold of one layer's input. */
#define SPLIT_INPUT_BYTES (128.0 * 1024 * 1024)

/*
 * Room for the weight energy every d'' keeps (Y->fen, kmax + 1 values),
 * which split_energies() fills from the split's singular values:
 * fen[j] = sum_{i<j} s_i^2 / sum s_i^2. Until then it marks a layer with
 * spatial choices.
 */
static int spatial_energies(struct pipe *p, struct layer *Y)
{
	(void)p;
	Y->kmax = Y->c * Y->kh < Y->d * Y->kw ? Y->c * Y->kh : Y->d * Y->kw;
	Y->fen = calloc((size_t)Y->kmax + 1, sizeof(double));
	return Y->fen != NULL ? 0 : LR_ENOMEM;
}

/* Fills Y->fen from the kmax singular values sv of the split. */
static void fill_energies(struct layer *Y, const double *sv)
{
	double all = 0, acc = 0;

	for (int64_t j = 0; j < Y->kmax; j++)
		all += sv[j] * sv[j];
	for (int64_t j = 0; j <= Y->kmax; j++) {
		Y->fen[j] = all > 0 ? acc / all : 1.0;
		if (j < Y->kmax)
			acc += sv[j] * sv[j];
	}
	Y->fen[Y->kmax] = 1.0;
}

/*
 * The (d'', d') triples to time for layer Y when it may take the spatial
 * + channel scheme: on a SPATIAL_TIMED x SPATIAL_TIMED grid, those cheaper
 * than the layer in FLOPs, into r2[], r[] (room for SPATIAL_TIMED^2).
 * Sets Y->spatial, Y->win and Y->kmax. Returns how many, or LR_ENOMEM.
 */
static int spatial_triples(struct pipe *p, struct layer *Y, const int64_t in_dims[4], int64_t *r2,
			   int64_t *r)
{
	int64_t *g2 = NULL, *g1 = NULL, n2, n1;
	double c0 = (double)Y->d * (double)(Y->c * Y->kh * Y->kw) * (double)(Y->oh * Y->ow);
	int n = 0;

	Y->spatial = spatial_eligible(p, Y);
	if (!Y->spatial)
		return 0;
	Y->win = in_dims[3];
	Y->kmax = Y->c * Y->kh < Y->d * Y->kw ? Y->c * Y->kh : Y->d * Y->kw;
	n2 = spatial_grid(Y->kmax, p->rank_multiple, SPATIAL_TIMED, &g2);
	n1 = spatial_grid(Y->d - 1, p->rank_multiple, SPATIAL_TIMED, &g1);
	for (int64_t a = 0; a < n2; a++)
		for (int64_t b = 0; b < n1 && n < SPATIAL_TIMED * SPATIAL_TIMED; b++)
			if (lr_spatial_macs(Y->d, Y->c, Y->kh, Y->kw, g2[a], g1[b], Y->oh, Y->ow, Y->win) < c0) {
				r2[n] = g2[a];
				r[n++] = g1[b];
			}
	free(g2);
	free(g1);
	return n2 < 0 || n1 < 0 ? LR_ENOMEM : n;
}

/*
 * Times layer Y alone, as the pair at every candidate rank and, when it
 * may take the spatial + channel scheme, as the triples of
 * spatial_triples(): all interleaved with the layer (timed_group), at
 * the deployment batch and threads (in_dims: the conv's input).
 */
static int time_layer(struct pipe *p, lr_timing_cache *tc, struct layer *Y,
		      const int64_t in_dims[4], const char *prefix)
{
	int64_t k2c = Y->kh * Y->kw * Y->c, mr = lr_layer_max_rank(Y->d, k2c), ng;
	int64_t *r = NULL, *r2 = NULL, *grid = NULL;
	struct layer_models u = { p, Y, in_dims, 0, NULL, NULL, NULL };
	lr_model *alone = NULL;
	char **keys = NULL;
	double *sec = NULL;
	int rc, ns, n;

	/* Model 0 is the layer as it is (rank 0 in its key), then ng pairs,
	 * then ns triples. */
	ng = timed_ranks(p, Y, mr, MAX_TIMED_CANDIDATES, &grid);
	if (ng < 0)
		return (int)ng;
	n = 1 + (int)ng + SPATIAL_TIMED * SPATIAL_TIMED;
	r = realloc(grid, sizeof(int64_t) * (size_t)n);
	if (r == NULL) {
		free(grid);
		return LR_ENOMEM;
	}
	r2 = calloc((size_t)n, sizeof(int64_t));
	sec = calloc((size_t)n, sizeof(double));
	keys = key_table(n, KEY_LEN);
	Y->cand_rank = malloc(sizeof(int64_t) * (size_t)(ng + 1));
	Y->cand_sec = malloc(sizeof(double) * (size_t)(ng + 1));
	Y->scand_r2 = malloc(sizeof(int64_t) * (size_t)(SPATIAL_TIMED * SPATIAL_TIMED + 1));
	Y->scand_r = malloc(sizeof(int64_t) * (size_t)(SPATIAL_TIMED * SPATIAL_TIMED + 1));
	Y->scand_sec = malloc(sizeof(double) * (size_t)(SPATIAL_TIMED * SPATIAL_TIMED + 1));
	if (r2 == NULL || sec == NULL || keys == NULL || Y->cand_rank == NULL ||
	    Y->cand_sec == NULL || Y->scand_r2 == NULL || Y->scand_r == NULL || Y->scand_sec == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	ns = spatial_triples(p, Y, in_dims, r2 + 1 + ng, r + 1 + ng);
	if (ns < 0) {
		rc = ns;
		goto out;
	}
	n = 1 + (int)ng + ns;
	for (int i = 0; i < n; i++) {
		lr_conv_cost_key(p->m, Y->node, in_dims, r[i], prefix, keys[i], KEY_LEN);
		if (r2[i] > 0) {
			size_t kl = strlen(keys[i]);

			snprintf(keys[i] + kl, KEY_LEN - kl, "|r2=%lld", (long long)r2[i]);
		}
	}
	rc = lr_conv_alone(p->m, Y->node, in_dims, &alone, p->msg);
	if (rc != 0)
		goto out;
	u.alone = alone;
	u.r = r;
	u.r2 = r2;
	rc = timed_group(p, tc, keys, n, build_conv, &u, 4, in_dims, sec);
	if (rc != 0)
		goto out;
	Y->t0 = sec[0];
	for (int i = 1; i < n; i++) {
		if (r2[i] == 0) {
			Y->cand_rank[Y->ncand] = r[i];
			Y->cand_sec[Y->ncand++] = sec[i];
		} else {
			Y->scand_r2[Y->nscand] = r2[i];
			Y->scand_r[Y->nscand] = r[i];
			Y->scand_sec[Y->nscand++] = sec[i];
		}
	}
	Y->timed = 1;
	if (Y->spatial)
		rc = spatial_energies(p, Y);
out:
	lr_model_free(alone);
	key_table_free(keys);
	free(r);
	free(r2);
	free(sec);
	return rc;
}

/*
 * The measured cost model: the original model, the folded one and every
 * decomposable layer alone and as the pair at each candidate rank, at the
 * deployment batch and threads, from the timing cache where it has them.
 * Each timed layer's choices are keeping it (its time) or a candidate
 * rank that is faster than that; what is not timed (other layers, pooling,
 * activations, the effect of folding) is t_rest, a constant.
 */
static int cost_time(struct pipe *p)
{
	const lr_compress_opts *o = p->o;
	lr_timing_cache *tc = NULL;
	lr_engine *e = NULL;
	lr_tensor *x = NULL, *y = NULL;
	struct shapes sh = { NULL, NULL };
	int64_t dims[LR_MAX_DIMS];
	char prefix[256], key[512];
	double t_start = lr_now(), sum0 = 0;
	int rc, ntime = 0, done = 0;

	p->vector_block = lr_cpu_vector_block();
	lr_cpu_name(p->cpu, sizeof(p->cpu));
	/* The build is part of the key: another engine times layers
	 * differently, and a daemon's cache outlives its binary. */
	snprintf(prefix, sizeof(prefix), "cpu=%s|vb=%d|t=%d|build=%s", p->cpu, p->vector_block,
		 o->deploy_threads, lr_build_id());
	memcpy(p->prefix, prefix, sizeof(prefix));
	rc = lr_timing_cache_open(o->timing_cache, &tc, p->msg);
	if (rc != 0)
		goto out;
	memcpy(dims, p->calib->dims, sizeof(dims));
	dims[0] = o->deploy_batch;

	/* Conv input shapes at the deployment batch, from a dry run. */
	sh.dims = calloc((size_t)p->m->nvalues + 1, sizeof(*sh.dims));
	sh.ndim = calloc((size_t)p->m->nvalues + 1, sizeof(int));
	if (sh.dims == NULL || sh.ndim == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	sh.ndim[p->m->inputs[0]] = p->calib->ndim;
	memcpy(sh.dims[p->m->inputs[0]], dims, sizeof(dims));
	rc = lr_engine_create(&e, p->m, 1);
	if (rc == 0)
		rc = lr_tensor_create(&x, LR_DT_FLOAT, p->calib->ndim, dims, 0);
	if (rc == 0) {
		lr_engine_set_observer(e, shape_observer, &sh);
		rc = lr_engine_run(e, &x, 1, &y, 1, 1, p->msg);
	}
	if (rc != 0)
		goto out;

	for (int l = 0; l < p->nl; l++)
		ntime += p->L[l].decomposable;
	report_progress(o, "measuring", 0, ntime, NULL, 0.01, p->t0, &p->clk);
	/* The original and the folded model, interleaved: the rank selection
	 * compares the two (its target is the original's time over S, its
	 * costs are on the folded model's scale). Nothing folded: the same
	 * model, so the same time (not a second, noisy measurement of it). */
	{
		const lr_model *both[2] = { p->m0, p->m };
		struct given_models gm = { both };
		char kf[512], *keys[2] = { NULL, NULL };
		double t[2];

		if (p->model_sha256 != NULL) {
			snprintf(key, sizeof(key), "%s|model=%s|in=%lld", prefix, p->model_sha256,
				 (long long)dims[0]);
			snprintf(kf, sizeof(kf), "%s|folded=%s|in=%lld", prefix, p->model_sha256,
				 (long long)dims[0]);
			keys[0] = key;
			keys[1] = kf;
		}
		rc = timed_group(p, tc, keys, p->nfolded > 0 ? 2 : 1, NULL, &gm, p->calib->ndim, dims, t);
		p->t_model = t[0];
		p->t_folded = p->nfolded > 0 ? t[1] : t[0];
	}
	for (int l = 0; l < p->nl && rc == 0; l++) {
		struct layer *Y = &p->L[l];
		int v = p->m->nodes[Y->node].in[0];

		if (!Y->decomposable)
			continue;
		done++;
		report_progress(o, "measuring", done, ntime, Y->node_name,
				0.01 + 0.01 * (double)done / (double)ntime, p->t0, &p->clk);
		if (Y->fc) {
			rc = time_fc_layer(p, tc, Y, dims[0], prefix);
			continue;
		}
		if (sh.ndim[v] != 4) {
			/* Its time stays in t_rest. */
			Y->decomposable = 0;
			snprintf(Y->why, sizeof(Y->why), "the time objective times 2-D convolutions only");
			continue;
		}
		rc = time_layer(p, tc, Y, sh.dims[v], prefix);
	}
	if (rc != 0)
		goto out;

	/*
	 * Alone, a layer runs with its weights hot in cache; inside the model
	 * it does not, which matters for weight-heavy layers at small sizes
	 * (ResNet-50's last stages: predicted 2.5x, measured 3.97x, when only
	 * timed alone). Each layer's share of the folded model's time (per
	 * node, cached by the model's hash; scaled to t_folded so that a
	 * profile taken under another load still fits) replaces its time
	 * alone, and its candidates are scaled by the same factor, so the
	 * rest of the model is what the layers really leave.
	 */
	{
		double *ns = calloc((size_t)p->m->nnodes + 1, sizeof(double)), others = 0;
		int have = p->model_sha256 != NULL;

		if (ns == NULL) {
			rc = LR_ENOMEM;
			goto out;
		}
		for (int l = 0; l < p->nl && have; l++) {
			if (!p->L[l].timed)
				continue;
			snprintf(key, sizeof(key), "%s|inmodel=%s|in=%lld|node=%s", prefix, p->model_sha256,
				 (long long)dims[0], p->L[l].node_name);
			have = lr_timing_cache_get(tc, key, &ns[p->L[l].node]);
		}
		/* ... and the other nodes' sum, kept on the first node. */
		if (have) {
			snprintf(key, sizeof(key), "%s|inmodel=%s|in=%lld|others", prefix, p->model_sha256,
				 (long long)dims[0]);
			have = lr_timing_cache_get(tc, key, &others);
		}
		if (have) {
			int first = -1;

			for (int i = 0; i < p->m->nnodes && first < 0; i++) {
				int is_layer = 0;

				for (int l = 0; l < p->nl; l++)
					is_layer |= p->L[l].timed && p->L[l].node == i;
				first = is_layer ? -1 : i;
			}
			if (first >= 0)
				ns[first] += others;
		}
		if (have) {
			p->ncached++;
		} else {
			rc = lr_time_nodes(p->m, p->calib->ndim, dims, o->deploy_threads, o->measure_samples,
					   o->cancel, ns, p->msg);
			p->nmeasured++;
			others = 0;
			for (int i = 0; i < p->m->nnodes && rc == 0; i++)
				others += ns[i];
			for (int l = 0; l < p->nl && rc == 0; l++) {
				if (!p->L[l].timed)
					continue;
				others -= ns[p->L[l].node];
				if (p->model_sha256 == NULL)
					continue;
				snprintf(key, sizeof(key), "%s|inmodel=%s|in=%lld|node=%s", prefix,
					 p->model_sha256, (long long)dims[0], p->L[l].node_name);
				rc = lr_timing_cache_put(tc, key, ns[p->L[l].node]);
			}
			if (rc == 0 && p->model_sha256 != NULL) {
				snprintf(key, sizeof(key), "%s|inmodel=%s|in=%lld|others", prefix,
					 p->model_sha256, (long long)dims[0]);
				rc = lr_timing_cache_put(tc, key, others > 0 ? others : 0);
			}
		}
		/* The profile may be from another time (the cache) or load
		 * than t_folded: use its proportions, at t_folded's scale. */
		{
			double tot = 0, scale;

			for (int i = 0; i < p->m->nnodes; i++)
				tot += ns[i];
			scale = tot > 0 ? p->t_folded / tot : 1;
			for (int i = 0; i < p->m->nnodes; i++)
				ns[i] *= scale;
		}
		for (int l = 0; l < p->nl && rc == 0; l++) {
			struct layer *Y = &p->L[l];
			double a = Y->t0 > 0 && ns[Y->node] > 0 ? ns[Y->node] / Y->t0 : 1;

			if (!Y->timed)
				continue;
			a = a < 0.25 ? 0.25 : a > 4 ? 4 : a;
			Y->alpha = a;
			Y->t0 *= a;
			for (int i = 0; i < Y->ncand; i++)
				Y->cand_sec[i] *= a;
			for (int i = 0; i < Y->nscand; i++)
				Y->scand_sec[i] *= a;
			sum0 += Y->t0;
		}
		free(ns);
		if (rc != 0)
			goto out;
	}
	p->t_rest = p->t_folded - sum0 > 0 ? p->t_folded - sum0 : 0;
	p->measure_seconds = lr_now() - t_start;
	/* A cache that cannot be written costs time later, not this result. */
	if (lr_timing_cache_save(tc, p->msg) != 0)
		p->msg->text[0] = '\0';
out:
	free(sh.dims);
	free(sh.ndim);
	lr_tensor_free(x);
	lr_tensor_free(y);
	lr_engine_free(e);
	lr_timing_cache_free(tc);
	return rc;
}

/*
 * Appends layer Y's spatial + channel choices (rank2 = d'' > 0, rank = d')
 * to Y->ch: with the FLOP objective the triple's multiply-accumulates on a
 * grid of d'' and d', with the time objective the measured triples; only
 * those cheaper than the layer as it is. Values come in select.
 */
static int add_spatial_choices(struct pipe *p, struct layer *Y, int time_obj)
{
	int64_t *g2 = NULL, *g1 = NULL, n2 = 0, n1 = 0;
	lr_mck_choice *ch;
	int rc = 0;

	if (time_obj) {
		if (!Y->spatial || !Y->decomposable)
			return 0;
	} else {
		Y->spatial = spatial_eligible(p, Y);
		if (!Y->spatial)
			return 0;
		Y->win = layer_input_width(p, Y);
		rc = spatial_energies(p, Y);
		if (rc != 0)
			return rc;
		n2 = spatial_grid(Y->kmax, p->rank_multiple, SPATIAL_GRID, &g2);
		n1 = spatial_grid(Y->d - 1, p->rank_multiple, SPATIAL_GRID, &g1);
		if (n2 < 0 || n1 < 0) {
			rc = LR_ENOMEM;
			goto out;
		}
	}
	ch = realloc(Y->ch, sizeof(*ch) * (size_t)(Y->nch + n2 * n1 + Y->nscand + Y->ncand + 2));
	if (ch == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	Y->ch = ch;
	/* stage_cost appends the measured channel candidates after these */
	memset(ch + Y->nch, 0, sizeof(*ch) * (size_t)(n2 * n1 + Y->nscand + Y->ncand + 2));
	for (int64_t a = 0; a < n2; a++)
		for (int64_t b = 0; b < n1; b++) {
			double c = lr_spatial_macs(Y->d, Y->c, Y->kh, Y->kw, g2[a], g1[b], Y->oh, Y->ow, Y->win);

			if (c < Y->cost0)
				ch[Y->nch++] = (lr_mck_choice){ .rank = g1[b], .rank2 = g2[a], .cost = c };
		}
	for (int i = 0; i < Y->nscand; i++)
		if (Y->scand_sec[i] < Y->cost0)
			ch[Y->nch++] = (lr_mck_choice){ .rank = Y->scand_r[i], .rank2 = Y->scand_r2[i],
							.cost = Y->scand_sec[i] };
out:
	free(g2);
	free(g1);
	return rc;
}

/* The constant bias of Conv node ni (through Identity nodes, as exporters
 * share one bias that way), or NULL without one; LR_EUNSUPPORTED in *rc
 * when it is not constant. */
static const lr_tensor *conv_bias(const lr_model *m, int ni, int *rc)
{
	int bv = m->nodes[ni].nin > 2 ? m->nodes[ni].in[2] : -1;

	*rc = 0;
	if (bv < 0)
		return NULL;
	for (int hop = 0; bv >= 0 && hop < 8 && m->values[bv].init == NULL; hop++) {
		int q = m->values[bv].producer;

		bv = q >= 0 && strcmp(m->nodes[q].op_type, "Identity") == 0 ? m->nodes[q].in[0] : -1;
	}
	if (bv < 0 || m->values[bv].init == NULL || m->values[bv].init->dtype != LR_DT_FLOAT) {
		*rc = LR_EUNSUPPORTED;
		return NULL;
	}
	return m->values[bv].init;
}

/*
 * The eigenvectors of the covariance of the n x d responses T, in
 * descending order of eigenvalue, into U (d x d column-major), in double.
 */
static int response_eigvecs(const float *T, int64_t n, int64_t d, double *U, lr_msg *msg)
{
	const int64_t blk = 1024;
	double *mean = calloc((size_t)d, sizeof(double)), *x = malloc(sizeof(double) * (size_t)(blk * d));
	double *ev = malloc(sizeof(double) * (size_t)d), *cv = calloc((size_t)(d * d), sizeof(double));
	lapack_int info;
	int rc = 0;

	if (mean == NULL || x == NULL || ev == NULL || cv == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	for (int64_t i = 0; i < n; i++)
		for (int64_t j = 0; j < d; j++)
			mean[j] += (double)T[i * d + j] / (double)n;
	for (int64_t i0 = 0; i0 < n; i0 += blk) {
		int64_t bn = n - i0 < blk ? n - i0 : blk;

		for (int64_t i = 0; i < bn; i++)
			for (int64_t j = 0; j < d; j++)
				x[i * d + j] = (double)T[(i0 + i) * d + j] - mean[j];
		/* x is d x bn column-major: C += x x^T */
		cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, (int)d, (int)bn, 1.0, x, (int)d, 1.0,
			    cv, (int)d);
	}
	info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', (lapack_int)d, cv, (lapack_int)d, ev);
	if (info != 0) {
		rc = lr_fail(msg, LR_ELAPACK, "LAPACK dsyevd on a %lld x %lld response covariance returned info %d",
			     (long long)d, (long long)d, (int)info);
		goto out;
	}
	for (int64_t a = 0; a < d; a++) /* ascending -> descending */
		memcpy(U + a * d, cv + (d - 1 - a) * d, sizeof(double) * (size_t)d);
out:
	free(mean);
	free(x);
	free(ev);
	free(cv);
	return rc;
}

/*
 * The split's energy in response space, measured: for each d'' of r2s and
 * d' of rs, E = 1 - |U_d'^T (S - T)|^2 / |U_d'^T (T - tbar)|^2 over the
 * sampled positions of the first fitting inputs (at most 32, and at most
 * SPLIT_INPUT_BYTES of the layer's input; at least one), where S are
 * the responses of the split layer V -> H at d'' on the original network's
 * input of the layer and U the responses' principal directions. The
 * weights' own energy would badly overstate the split's error: layer
 * inputs are strongly correlated, and only the error within the d' kept
 * directions survives the channel split.
 *
 * S - T is linear in the input patch at each sampled position (the bias
 * cancels), so it is computed on those patches alone, in double: with the
 * patches P (rows x kw x c kh), V = P wv^T once (the vertical filters at
 * every column of every patch, all kmax of them), then per d'' the
 * horizontal filters' sum over columns, S = V_d'' wh_d''^T, and T = P W^T.
 * (Running the split layer over whole maps for every d'' cost minutes on
 * VGG-16's 224 x 224 layers, for ten positions an image.)
 * E is nr x n2 (E[i * n2 + j] for rs[i], r2s[j]).
 */
static int split_energies(struct pipe *p, struct layer *Y, const double *U, const int64_t *rs,
			  int nr, const int64_t *r2s, int n2, double *E)
{
	const lr_model *m = p->m;
	const lr_node *nd = &m->nodes[Y->node];
	const lr_tensor *W = m->values[nd->in[1]].init;
	int64_t d = Y->d, c = Y->c, kh = Y->kh, kw = Y->kw, km = Y->kmax, ckh = c * kh;
	int64_t rows, K = ckh * kw;
	int rc = 0;
	double *tbar = NULL, *dif = NULL, *du = NULL, *den = NULL, *num = NULL;
	double *P, *V = NULL, *Vr = NULL, *T0 = NULL, *wd = NULL, *whd = NULL;
	float *wv = NULL, *wh = NULL;
	double *sv = NULL;

	if (Y->patch != NULL && Y->patch_filled < Y->patch_imgs) {
		/* the producer never ran observed (it cannot happen today) */
		free(Y->patch);
		Y->patch = NULL;
	}
	if (Y->patch == NULL) {
		/* Not collected in the sampling pass: run the original network
		 * to the layer's input for the first nb inputs. */
		int64_t nb = p->nfit < 32 ? p->nfit : 32;
		double in_bytes = 4.0 * (double)Y->c * (double)layer_input_height(p, Y) * (double)Y->win;
		int want = nd->in[0];
		lr_engine *e = NULL;
		lr_tensor *x = NULL, *xin = NULL;

		if (in_bytes * (double)nb > SPLIT_INPUT_BYTES)
			nb = in_bytes >= SPLIT_INPUT_BYTES ? 1 : (int64_t)(SPLIT_INPUT_BYTES / in_bytes);
		Y->patch = malloc(sizeof(double) * (size_t)(nb * p->spi * K));
		Y->patch_imgs = nb;
		Y->patch_filled = 0;
		rc = Y->patch != NULL ? gather_batch(p->calib, p->order, 0, nb, &x) : LR_ENOMEM;
		if (rc == 0)
			rc = lr_engine_create(&e, m, p->o->threads);
		if (rc == 0)
			rc = lr_engine_run_segment(e, &x, 1, NULL, NULL, 0, &want, 1, &xin, p->msg);
		if (rc == 0 && patch_fill(m, Y, xin, 0, p->spi) != 0)
			rc = lr_fail(p->msg, LR_EUNSUPPORTED,
				     "layer '%s': its input is not a 4-D float tensor of %lld channels",
				     Y->node_name, (long long)c);
		lr_engine_free(e);
		lr_tensor_free(x);
		lr_tensor_free(xin);
		if (rc != 0)
			goto out;
	}
	P = Y->patch;
	rows = Y->patch_imgs * p->spi;
	tbar = calloc((size_t)d, sizeof(double));
	dif = malloc(sizeof(double) * (size_t)(rows * d));
	du = malloc(sizeof(double) * (size_t)(rows * d));
	den = calloc((size_t)d + 1, sizeof(double));
	num = calloc((size_t)d + 1, sizeof(double));
	wv = malloc(sizeof(float) * (size_t)(km * ckh));
	wh = malloc(sizeof(float) * (size_t)(d * km * kw));
	sv = malloc(sizeof(double) * (size_t)km);
	V = malloc(sizeof(double) * (size_t)(rows * kw * km));
	Vr = malloc(sizeof(double) * (size_t)(rows * kw * km));
	T0 = malloc(sizeof(double) * (size_t)(rows * d));
	wd = malloc(sizeof(double) * (size_t)(d * K > km * ckh ? d * K : km * ckh));
	whd = malloc(sizeof(double) * (size_t)(d * kw * km));
	if (tbar == NULL || dif == NULL || du == NULL || den == NULL || num == NULL || wv == NULL ||
	    wh == NULL || sv == NULL || V == NULL || Vr == NULL || T0 == NULL || wd == NULL ||
	    whd == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	/* denominators: the targets' variance within the top d' directions */
	for (int64_t i = 0; i < p->nfit * p->spi; i++)
		for (int64_t j = 0; j < d; j++)
			tbar[j] += Y->T[i * d + j];
	for (int64_t j = 0; j < d; j++)
		tbar[j] /= (double)(p->nfit * p->spi);
	for (int64_t i = 0; i < rows; i++)
		for (int64_t j = 0; j < d; j++)
			dif[i * d + j] = Y->T[i * d + j] - tbar[j];
	cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)rows, (int)d, (int)d, 1.0, dif,
		    (int)d, U, (int)d, 0.0, du, (int)rows);
	for (int64_t a = 0; a < d; a++) {
		double acc = 0;

		for (int64_t i = 0; i < rows; i++)
			acc += du[i + a * rows] * du[i + a * rows];
		den[a + 1] = den[a] + acc;
	}
	/* T0 = P W^T, with W's columns reordered to the patches' (x, ci, h) */
	for (int64_t o = 0; o < d; o++)
		for (int64_t xx = 0; xx < kw; xx++)
			for (int64_t ci = 0; ci < c; ci++)
				for (int64_t h = 0; h < kh; h++)
					wd[o * K + xx * ckh + ci * kh + h] =
						((const float *)W->data)[((o * c + ci) * kh + h) * kw + xx];
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)d, (int)K, 1.0, P,
		    (int)K, wd, (int)K, 0.0, T0, (int)d);
	/*
	 * Self-check: the patches must reproduce the sampled responses the
	 * engine computed, T = P W^T + b, up to the engine's float rounding.
	 * A wrong patch (geometry, layout) would otherwise just lower the
	 * energies and steer the selection away from the split, silently.
	 */
	{
		const lr_tensor *B = conv_bias(m, Y->node, &rc);
		double worst = 0, scale = 0;

		if (rc != 0)
			goto out;
		for (int64_t i = 0; i < rows; i++)
			for (int64_t o = 0; o < d; o++) {
				double t = Y->T[i * d + o];
				double e = T0[i * d + o] + (B != NULL ? ((const float *)B->data)[o] : 0.0) - t;

				worst = fabs(e) > worst ? fabs(e) : worst;
				scale = fabs(t) > scale ? fabs(t) : scale;
			}
		if (worst > 1e-3 * (scale > 0 ? scale : 1.0)) {
			rc = lr_fail(p->msg, LR_ENUMERIC,
				     "internal: layer '%s': the input patches do not reproduce its responses (error %.3g of %.3g)",
				     Y->node_name, worst, scale);
			goto out;
		}
	}
	/* One SVD: the split at d'' is its first d'' components. */
	rc = lr_spatial_split(W->data, d, c, kh, kw, km, wv, wh, sv, p->msg);
	if (rc != 0)
		goto out;
	fill_energies(Y, sv);
	/* V = P wv^T: rows kw x km, the vertical filters at each patch column */
	for (int64_t i = 0; i < km * ckh; i++)
		wd[i] = wv[i];
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(rows * kw), (int)km, (int)ckh, 1.0,
		    P, (int)ckh, wd, (int)ckh, 0.0, V, (int)km);
	for (int j2 = 0; j2 < n2; j2++) {
		int64_t r2 = r2s[j2] < km ? r2s[j2] : km, kr = kw * r2;

		/* Vr[i, x r2 + j] = V[i kw + x, j]; whd[o, x r2 + j] = wh[o, j, x] */
		for (int64_t i = 0; i < rows; i++)
			for (int64_t xx = 0; xx < kw; xx++)
				memcpy(Vr + i * kr + xx * r2, V + (i * kw + xx) * km, sizeof(double) * (size_t)r2);
		for (int64_t o = 0; o < d; o++)
			for (int64_t xx = 0; xx < kw; xx++)
				for (int64_t j = 0; j < r2; j++)
					whd[o * kr + xx * r2 + j] = wh[(o * km + j) * kw + xx];
		/* dif = S - T0 = Vr whd^T - T0 */
		memcpy(dif, T0, sizeof(double) * (size_t)(rows * d));
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)d, (int)kr, 1.0, Vr,
			    (int)kr, whd, (int)kr, -1.0, dif, (int)d);
		cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)rows, (int)d, (int)d, 1.0, dif,
			    (int)d, U, (int)d, 0.0, du, (int)rows);
		for (int64_t a = 0; a < d; a++) {
			double acc = 0;

			for (int64_t i = 0; i < rows; i++)
				acc += du[i + a * rows] * du[i + a * rows];
			num[a + 1] = num[a] + acc;
		}
		for (int i = 0; i < nr; i++) {
			int64_t r = rs[i] < 1 ? 1 : rs[i] > d ? d : rs[i];

			E[i * n2 + j2] = den[r] > 0 ? 1.0 - num[r] / den[r] : 1.0;
		}
	}
out:
	/* the patches are not needed after this */
	free(Y->patch);
	Y->patch = NULL;
	Y->patch_imgs = Y->patch_filled = 0;
	free(tbar);
	free(dif);
	free(du);
	free(den);
	free(num);
	free(wv);
	free(wh);
	free(sv);
	free(V);
	free(Vr);
	free(T0);
	free(wd);
	free(whd);
	return rc;
}

/*
 * Completes the values of a layer that has spatial choices and drops the
 * dominated ones. A triple (d'', d') keeps the response energy of its d'
 * (the paper's PCA energy) times the share of the response variance within
 * those d' principal directions that the split at d'' keeps, measured
 * (split_energies): the product of energies, one factor per
 * approximation. Then every choice that another one of the layer beats in
 * both cost and value is dropped, which cannot change the knapsack's
 * optimum but keeps it small.
 */
static int finish_spatial_choices(struct pipe *p, struct layer *Y)
{
	int64_t *rs = NULL, *r2s = NULL;
	double *U = NULL, *E = NULL;
	int n = 0, nr = 0, n2 = 0, rc = 0;

	if (Y->fen == NULL || Y->T == NULL)
		return 0;
	rs = malloc(sizeof(int64_t) * (size_t)(Y->nch + 1));
	r2s = malloc(sizeof(int64_t) * (size_t)(Y->nch + 1));
	U = malloc(sizeof(double) * (size_t)(Y->d * Y->d));
	if (rs == NULL || r2s == NULL || U == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	for (int j = 0; j < Y->nch; j++) {
		int seen = 0, seen2 = 0;

		if (Y->ch[j].rank2 <= 0)
			continue;
		for (int i = 0; i < nr && !seen; i++)
			seen = rs[i] == Y->ch[j].rank;
		for (int i = 0; i < n2 && !seen2; i++)
			seen2 = r2s[i] == Y->ch[j].rank2;
		if (!seen)
			rs[nr++] = Y->ch[j].rank;
		if (!seen2)
			r2s[n2++] = Y->ch[j].rank2;
	}
	E = malloc(sizeof(double) * (size_t)(nr * n2 + 1));
	if (E == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	rc = response_eigvecs(Y->T, p->nfit * p->spi, Y->d, U, p->msg);
	if (rc == 0 && nr > 0) /* without spatial choices fen is never read */
		rc = split_energies(p, Y, U, rs, nr, r2s, n2, E);
	if (rc != 0) {
		lr_msg_prefix(p->msg, "layer '%s'", Y->node_name);
		goto out;
	}
	for (int j = 0; j < Y->nch; j++) {
		double f = 1.0;

		if (Y->ch[j].rank2 <= 0)
			continue;
		for (int i = 0; i < nr; i++)
			for (int i2 = 0; i2 < n2; i2++)
				if (rs[i] == Y->ch[j].rank && r2s[i2] == Y->ch[j].rank2)
					f = E[i * n2 + i2];
		Y->ch[j].pen = f;
		Y->ch[j].value += f > 1e-300 ? log(f) : -745.0;
	}
	/* insertion sort by cost, then value descending (a few hundred) */
	for (int i = 1; i < Y->nch; i++)
		for (int j = i; j > 0; j--) {
			lr_mck_choice *a = &Y->ch[j - 1], *b = &Y->ch[j], t;

			if (a->cost < b->cost || (a->cost == b->cost && a->value >= b->value))
				break;
			t = *a;
			*a = *b;
			*b = t;
		}
	for (int j = 0; j < Y->nch; j++)
		if (n == 0 || Y->ch[j].value > Y->ch[n - 1].value)
			Y->ch[n++] = Y->ch[j];
	Y->nch = n;
out:
	free(rs);
	free(r2s);
	free(U);
	free(E);
	return rc;
}

static int trial_speedup(struct pipe *p, lr_timing_cache *tc, const int *pick, double *speedup);

/* The measured speedup (trial_speedup) with every layer at its cheapest
 * choice: the fastest the whole model gets, which the predicted bound
 * may miss. */
static int fastest_trial(struct pipe *p, double *speedup)
{
	int *pick = calloc((size_t)p->nl + 1, sizeof(int)), rc;
	lr_timing_cache *tc = NULL;

	if (pick == NULL)
		return LR_ENOMEM;
	for (int l = 0; l < p->nl; l++)
		for (int i = 1; i < p->L[l].nch; i++)
			if (p->L[l].ch[i].cost < p->L[l].ch[pick[l]].cost)
				pick[l] = i;
	rc = lr_timing_cache_open(p->o->timing_cache, &tc, p->msg);
	if (rc == 0)
		rc = trial_speedup(p, tc, pick, speedup);
	/* A cache that cannot be written costs time later, not this result. */
	if (rc == 0 && lr_timing_cache_save(tc, p->msg) != 0)
		p->msg->text[0] = '\0';
	lr_timing_cache_free(tc);
	free(pick);
	return rc;
}

/*
 * The cost model the selection works with: every layer's choices, keep
 * it or one of the candidate ranks, with their costs (values, the log
 * energies, come after sampling). FLOP objective: the paper's d'(k^2 c + d)
 * H'W' against d k^2 c H'W', candidates every multiple of the rank
 * multiple below the no-speedup bound. Time objective: measured seconds
 * (cost_time); candidates that are not faster than the layer are dropped,
 * and a layer left without any is not decomposed, which the report says.
 * A user's fixed rank is the only choice of its layer. An unreachable
 * target fails here, before any sampling.
 */
static int stage_cost(struct pipe *p)
{
	const lr_compress_opts *o = p->o;
	int time_obj = o->objective == LR_OBJECTIVE_TIME && o->speedup > 0, rc;
	double cheapest = 0, base = 0, full;

	if (o->rank_multiple > 0)
		p->rank_multiple = o->rank_multiple;
	else
		p->rank_multiple = time_obj ? lr_cpu_vector_block() : 1;
	if (time_obj) {
		rc = cost_time(p);
		if (rc != 0)
			return rc;
	}
	p->cost_before = 0;
	for (int l = 0; l < p->nl; l++) {
		struct layer *Y = &p->L[l];
		int64_t k2c = Y->kh * Y->kw * Y->c, hw = Y->oh * Y->ow;
		int64_t mr = lr_layer_max_rank(Y->d, k2c), ng = 0, *grid = NULL;
		int free_layer = Y->decomposable && Y->fixed_rank == 0 && hw > 0;

		/* A grouped conv reads c / group channels per filter: its
		 * cost, which the speedup counts, comes from inspect. */
		if (!Y->decomposable && Y->d > 0 && hw > 0)
			k2c = (int64_t)llround(Y->macs / (double)(Y->d * hw));
		Y->cost0 = time_obj ? (Y->timed ? Y->t0 : 0) : (double)Y->d * (double)k2c * (double)hw;
		p->cost_before += Y->cost0;
		if (free_layer && !time_obj) {
			ng = lr_rank_grid(mr, p->rank_multiple, NULL, 0);
			grid = malloc(sizeof(int64_t) * (size_t)(ng + 1));
			if (grid == NULL)
				return LR_ENOMEM;
			lr_rank_grid(mr, p->rank_multiple, grid, ng);
		}
		Y->ch = calloc((size_t)(ng + Y->ncand) + 2, sizeof(*Y->ch));
		if (Y->ch == NULL) {
			free(grid);
			return LR_ENOMEM;
		}
		Y->nch = 0;
		if (Y->decomposable && Y->fixed_rank > 0 && o->speedup > 0) {
			/* The user's rank is the only choice. */
			Y->ch[0].rank = Y->fixed_rank;
			Y->ch[0].cost = time_obj ? Y->cand_sec[0]
				: (double)Y->fixed_rank * (double)(k2c + Y->d) * (double)hw;
			Y->nch = 1;
		} else {
			Y->ch[0].rank = 0;
			Y->ch[0].cost = Y->cost0;
			Y->nch = 1;
		}
		for (int64_t i = 0; i < ng; i++, Y->nch++) {
			Y->ch[Y->nch].rank = grid[i];
			Y->ch[Y->nch].cost = (double)grid[i] * (double)(k2c + Y->d) * (double)hw;
		}
		free(grid);
		if (free_layer && (rc = add_spatial_choices(p, Y, time_obj)) != 0)
			return rc;
		if (free_layer && time_obj) {
			int64_t best = 0;
			double tb = 0;

			for (int i = 0; i < Y->ncand; i++) {
				if (Y->cand_sec[i] < Y->t0) {
					Y->ch[Y->nch].rank = Y->cand_rank[i];
					Y->ch[Y->nch++].cost = Y->cand_sec[i];
				}
				if (best == 0 || Y->cand_sec[i] < tb) {
					best = Y->cand_rank[i];
					tb = Y->cand_sec[i];
				}
			}
			if (Y->nch == 1) {
				Y->decomposable = 0;
				if (best > 0)
					snprintf(Y->why, sizeof(Y->why),
						 "not faster at any rank in lowrank's engine: %.3g ms as it is, at best %.3g ms (rank %lld)",
						 Y->t0 * 1e3, tb * 1e3, (long long)best);
				else
					snprintf(Y->why, sizeof(Y->why),
						 "no candidate rank (a multiple of %d) is below the layer's no-speedup bound %lld",
						 p->rank_multiple, (long long)mr);
			}
		}
		{
			double mn = Y->ch[0].cost;

			for (int i = 1; i < Y->nch; i++)
				mn = Y->ch[i].cost < mn ? Y->ch[i].cost : mn;
			cheapest += mn;
		}
	}
	if (o->speedup <= 0)
		return 0;
	if (time_obj) {
		base = p->t_rest;
		full = p->t_model;
	} else {
		full = p->cost_before;
	}
	p->cost_budget = full / o->speedup - base;
	if (cheapest > p->cost_budget * (1 + 1e-12) || p->cost_budget < 0) {
		double best = base + cheapest > 0 ? full / (base + cheapest) : 0.0;

		if (time_obj) {
			double meas = 0;

			/* The prediction is a sum of parts, and the whole model
			 * runs faster or slower than that: the fastest ranks are
			 * tried on the whole model before refusing. Within
			 * CALIBRATE_TOL of the request counts as reaching it, as
			 * calibrate() counts a trial (two measurements of one
			 * model differ by about that): a 3x request was refused
			 * with "the fastest reachable is 3.00x" (2.998). */
			rc = fastest_trial(p, &meas);
			if (rc != 0)
				return rc;
			if (meas >= o->speedup / (1 + CALIBRATE_TOL)) {
				p->cost_budget = cheapest;
				p->budget_raised = 1;
				return 0;
			}
			return lr_fail(p->msg, LR_EINVAL,
				       "a %.3gx speedup cannot be reached in lowrank's engine at batch %d with %d thread%s: the fastest reachable is %.2fx (measured with every layer at its fastest rank, %.2fx predicted; %.3g of %.3g ms are in layers that are not decomposed)",
				       o->speedup, o->deploy_batch, o->deploy_threads,
				       o->deploy_threads == 1 ? "" : "s", meas, best, base * 1e3, full * 1e3);
		}
		return lr_fail(p->msg, LR_EINVAL,
			       "a %.3gx speedup cannot be reached: with the smallest rank (%s) in every free layer it is %.3fx",
			       o->speedup, p->rank_multiple > 1 ? "one multiple" : "1", best);
	}
	return 0;
}

/*
 * The folded model with every layer decomposed as pick[] chooses (seeded
 * random factors: speed does not depend on their values), timed
 * interleaved with the original model at the deployment batch and
 * threads: *speedup is the original's time over it.
 */
static int trial_speedup(struct pipe *p, lr_timing_cache *tc, const int *pick, double *speedup)
{
	lr_decomp *dc = calloc((size_t)p->nl + 1, sizeof(*dc));
	size_t klen = strlen(p->prefix) + 160 + 48 * (size_t)p->nl, ko;
	char *key = malloc(klen);
	lr_model *trial = NULL;
	float *f = NULL;
	int64_t dims[LR_MAX_DIMS];
	uint64_t s = p->o->seed ^ 0x7A1A;
	int nd = 0, rc;

	*speedup = 0;
	if (dc == NULL || key == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	/* Cached by the model's hash and the ranks: a repeated job gets the
	 * same trials, so the same ranks. */
	ko = (size_t)snprintf(key, klen, "%s|trial=%s|in=%lld|ranks=", p->prefix,
			      p->model_sha256 != NULL ? p->model_sha256 : "-", (long long)p->o->deploy_batch);
	for (int l = 0; l < p->nl && ko < klen; l++)
		ko += (size_t)snprintf(key + ko, klen - ko, "%s%lld/%lld", l ? "," : "",
				       (long long)p->L[l].ch[pick[l]].rank, (long long)p->L[l].ch[pick[l]].rank2);
	if (p->model_sha256 != NULL && lr_timing_cache_get(tc, key, speedup)) {
		p->ncached++;
		rc = 0;
		goto out;
	}
	/* Each decomposed layer's factors, in one block. */
	for (int pass = 0; pass < 2; pass++) {
		int64_t at = 0;

		for (int l = 0; l < p->nl; l++) {
			const struct layer *Y = &p->L[l];
			const lr_mck_choice *c = &Y->ch[pick[l]];
			int64_t kh = Y->fc ? 1 : Y->kh, kw = Y->fc ? 1 : Y->kw;

			if (c->rank <= 0)
				continue;
			at += lr_decomp_random(&dc[nd], p->m->values[lr_model_find_value(p->m, Y->out_name)].producer,
					       Y->d, Y->c, kh, kw, c->rank, c->rank2, pass ? f + at : NULL, &s);
			nd += pass;
		}
		if (pass == 0 && (f = malloc(sizeof(float) * (size_t)(at + 1))) == NULL) {
			rc = LR_ENOMEM;
			goto out;
		}
	}
	rc = lr_rewrite_decompose(p->m, dc, nd, NULL, 0, &trial, p->msg);
	if (rc == 0) {
		const lr_model *both[2] = { p->m0, trial };
		double t[2];

		memcpy(dims, p->calib->dims, sizeof(dims));
		dims[0] = p->o->deploy_batch;
		rc = lr_time_models(both, 2, p->calib->ndim, dims, p->o->deploy_threads,
				    p->o->measure_samples, TRIAL_SPAN, p->o->cancel, t, p->msg);
		*speedup = rc == 0 && t[1] > 0 ? t[0] / t[1] : 0;
		p->nmeasured++;
	}
	if (rc == 0 && p->model_sha256 != NULL && *speedup > 0)
		rc = lr_timing_cache_put(tc, key, *speedup);
out:
	lr_model_free(trial);
	free(key);
	free(f);
	free(dc);
	return rc;
}

/*
 * The target for the next trial after the n trials so far. With trials on
 * both sides of the request S: interpolated between the closest two that
 * bracket it (predicted against measured speedup). Otherwise the last
 * trial's ratio: the whole model ran meas / pred times the predicted
 * speed, so aim where that makes it S; but a step of at most 25%, and not
 * below 1.01, since that ratio holds near the trial, not far from it (the
 * fastest ranks of a 0.05 ms MLP under the sanitizers measured 1.69x for
 * 1.23x predicted, and the plain ratio then aimed at 0.94x).
 */
static double next_target(const struct pipe *p, int n, double S)
{
	double lo_p = 0, lo_m = 0, hi_p = 0, hi_m = INFINITY, t, last = p->cal_pred[n - 1];

	for (int k = 0; k < n; k++) {
		double pr = p->cal_pred[k], me = p->cal_meas[k];

		if (me < S && me > lo_m) {
			lo_p = pr;
			lo_m = me;
		} else if (me >= S && me < hi_m) {
			hi_p = pr;
			hi_m = me;
		}
	}
	if (lo_m > 0 && hi_m < INFINITY && hi_m > lo_m) {
		t = lo_p + (S - lo_m) * (hi_p - lo_p) / (hi_m - lo_m);
	} else {
		t = S * last / p->cal_meas[n - 1];
		t = t > last * 1.25 ? last * 1.25 : t < last / 1.25 ? last / 1.25 : t;
	}
	return t > 1.01 ? t : 1.01;
}

/*
 * With the time objective: the selection's prediction is checked on the
 * whole model. The layers were timed alone and the rest of the model
 * from a profile, and inside the model they run faster or slower than
 * that (caches, the layers around them; the Fashion-MNIST models ran
 * 5-10% faster than predicted), so the model at the chosen ranks is built
 * with random factors and timed against the original (trial_speedup). When
 * it misses the request by more than CALIBRATE_TOL (5%: about what two
 * such measurements of one model differ by here), the target the
 * selection aims at is corrected by the ratio of predicted to measured
 * and the knapsack solved again, up to CALIBRATE_ROUNDS trials; the pick
 * whose trial came closest to the request is kept (pick[], p->sel).
 */
static int calibrate(struct pipe *p, const lr_mck_layer *ml, int *pick)
{
	const double S = p->o->speedup;
	double target = p->budget_raised ? p->t_model / (p->t_rest + p->cost_budget) : S,
	       budget = p->cost_budget, cheapest = lr_mck_min_cost(ml, p->nl),
	       best_err = INFINITY, best_budget = budget;
	int *try = malloc(sizeof(int) * (size_t)(p->nl + 1));
	lr_mck_result res = p->sel, best_res = p->sel;
	lr_timing_cache *tc = NULL;
	int rc;

	if (try == NULL)
		return LR_ENOMEM;
	report_progress(p->o, "calibrating", 0, 0, NULL, 0.12, p->t0, &p->clk);
	rc = lr_timing_cache_open(p->o->timing_cache, &tc, p->msg);
	if (rc != 0)
		goto out;
	memcpy(try, pick, sizeof(int) * (size_t)p->nl);
	for (int k = 0; k < CALIBRATE_ROUNDS; k++) {
		double pred = p->t_model / (p->t_rest + res.cost), meas, err;

		rc = trial_speedup(p, tc, try, &meas);
		if (rc != 0 || !(meas > 0))
			break;
		p->cal_target[k] = target;
		p->cal_pred[k] = pred;
		p->cal_meas[k] = meas;
		p->ntrial = k + 1;
		err = fabs(log(meas / S));
		if (err < best_err) {
			best_err = err;
			best_res = res;
			best_budget = budget;
			p->cal_best = k;
			memcpy(pick, try, sizeof(int) * (size_t)p->nl);
		}
		if (err <= log1p(CALIBRATE_TOL) || k == CALIBRATE_ROUNDS - 1)
			break;
		target = next_target(p, k + 1, S);
		budget = p->t_model / target - p->t_rest;
		if (budget < cheapest) {
			if (res.cost <= cheapest * (1 + 1e-12))
				break;      /* already the fastest there is */
			budget = cheapest;
			target = p->t_model / (p->t_rest + cheapest);
		}
		rc = lr_mck_solve(ml, p->nl, budget, try, &res, p->msg);
		if (rc != 0)
			break;
	}
	p->sel = best_res;
	p->cost_budget = best_budget;   /* the kept trial's (the report's cost_budget) */
	/* A cache that cannot be written costs time later, not this result. */
	if (rc == 0 && lr_timing_cache_save(tc, p->msg) != 0)
		p->msg->text[0] = '\0';
out:
	lr_timing_cache_free(tc);
	free(try);
	return rc;
}

/*
 * Ranks: the multiple-choice knapsack over the layers' choices for the
 * target speedup (select.h), or exactly the user's ranks without one.
 */
static int stage_select(struct pipe *p)
{
	struct layer *L = p->L;
	int nl = p->nl, rc = 0;
	int64_t *ranks = calloc((size_t)nl + 1, sizeof(int64_t));
	int *pick = calloc((size_t)nl + 1, sizeof(int));
	lr_mck_layer *ml = calloc((size_t)nl + 1, sizeof(*ml));

	if (ranks == NULL || pick == NULL || ml == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	for (int l = 0; l < nl; l++) {
		if (L[l].fixed_rank > 0 && !L[l].decomposable) {
			rc = lr_fail(p->msg, LR_EINVAL, "ranks: layer '%s' cannot be decomposed: %s",
				     L[l].node_name, L[l].why);
			goto out;
		}
		if (L[l].fixed_rank >= L[l].d) {
			rc = lr_fail(p->msg, LR_EINVAL, "ranks: layer '%s' has d=%lld; its rank must be smaller",
				     L[l].node_name, (long long)L[l].d);
			goto out;
		}
	}
	if (p->o->speedup > 0) {
		/* The paper's objective: log of the energy each choice keeps. */
		for (int l = 0; l < nl; l++) {
			for (int j = 0; j < L[l].nch; j++)
				L[l].ch[j].value = L[l].ch[j].rank > 0 && L[l].eig != NULL
					? log_energy(L[l].eig, L[l].d, L[l].ch[j].rank) : 0;
			if ((rc = finish_spatial_choices(p, &L[l])) != 0)
				goto out;
			ml[l].choices = L[l].ch;
			ml[l].n = L[l].nch;
		}
		rc = lr_mck_solve(ml, nl, p->cost_budget, pick, &p->sel, p->msg);
		if (rc == 0 && p->o->objective == LR_OBJECTIVE_TIME)
			rc = calibrate(p, ml, pick);
		for (int l = 0; l < nl && rc == 0; l++) {
			ranks[l] = L[l].ch[pick[l]].rank;
			L[l].rank2 = L[l].ch[pick[l]].rank2;
			L[l].pen = L[l].ch[pick[l]].pen;
			L[l].cost = L[l].ch[pick[l]].cost;
		}
	} else {
		/* Only the layers given ranks are decomposed. */
		for (int l = 0; l < nl; l++)
			ranks[l] = L[l].fixed_rank;
	}
	for (int l = 0; l < nl && rc == 0; l++) {
		L[l].rank = ranks[l];
		if (L[l].rank > 0 && L[l].eig != NULL) {
			double kept = 0, all = 0;

			for (int64_t a = 0; a < L[l].d; a++) {
				all += L[l].eig[a] > 0 ? L[l].eig[a] : 0;
				if (a < L[l].rank)
					kept += L[l].eig[a] > 0 ? L[l].eig[a] : 0;
			}
			L[l].energy = all > 0 ? kept / all : 1.0;
		}
	}
out:
	free(ranks);
	free(pick);
	free(ml);
	return rc;
}

/*
 * Writes a solved layer into the graph: A = Qt W (r x k2c) with bias Qt b0,
 * then B = P (d x r) with bias b. p->m is replaced by the rewritten model.
 */
static int rewrite_layer(struct pipe *p, const struct layer *Y, const lr_solve_result *res)
{
	const lr_model *m = p->m;
	lr_model *next = NULL;
	int64_t k2c = Y->kh * Y->kw * Y->c, r = Y->rank;
	int v = lr_model_find_value(m, Y->out_name), ni = m->values[v].producer, rc = 0;
	const lr_tensor *W = m->values[m->nodes[ni].in[1]].init, *B = NULL;
	float *wa = malloc(sizeof(float) * (size_t)(r * k2c));
	double *rowacc = malloc(sizeof(double) * (size_t)k2c);
	float *ba = malloc(sizeof(float) * (size_t)r);
	float *wb = malloc(sizeof(float) * (size_t)(Y->d * r));
	float *bb = malloc(sizeof(float) * (size_t)Y->d);
	lr_decomp dc;

	if (m->nodes[ni].nin > 2 && m->nodes[ni].in[2] >= 0) {
		/* The bias may come through Identity nodes (exporters share one
		 * bias tensor that way); without it the first factor's bias
		 * Qt b0 would be lost (../shared/docs/method.md §8.3). */
		int bv = m->nodes[ni].in[2];

		for (int hop = 0; bv >= 0 && hop < 8 && m->values[bv].init == NULL; hop++) {
			int q = m->values[bv].producer;

			bv = q >= 0 && strcmp(m->nodes[q].op_type, "Identity") == 0 ? m->nodes[q].in[0] : -1;
		}
		if (bv < 0 || m->values[bv].init == NULL) {
			rc = lr_fail(p->msg, LR_EUNSUPPORTED, "layer '%s': the bias is not constant",
				     Y->node_name);
			goto out;
		}
		B = m->values[bv].init;
	}
	if (wa == NULL || ba == NULL || wb == NULL || bb == NULL || rowacc == NULL || W == NULL) {
		rc = W == NULL ? lr_fail(p->msg, LR_EUNSUPPORTED, "layer '%s': weights are not constant",
					 Y->node_name) : LR_ENOMEM;
		goto out;
	}
	for (int64_t i = 0; i < r; i++) {
		double acc = 0;

		/* Row i of Qt W, summed over j in order, along W's rows. */
		memset(rowacc, 0, sizeof(double) * (size_t)k2c);
		for (int64_t j = 0; j < Y->d; j++) {
			double q = res->Qt[i + j * r];
			const float *wr = (const float *)W->data + j * k2c;

			for (int64_t k = 0; k < k2c; k++)
				rowacc[k] += q * wr[k];
		}
		for (int64_t k = 0; k < k2c; k++)
			wa[i * k2c + k] = (float)rowacc[k];
		for (int64_t j = 0; j < Y->d && B != NULL; j++)
			acc += res->Qt[i + j * r] * ((const float *)B->data)[j];
		ba[i] = (float)acc;
	}
	for (int64_t j = 0; j < Y->d; j++) {
		for (int64_t i = 0; i < r; i++)
			wb[j * r + i] = (float)res->P[j + i * Y->d];
		bb[j] = (float)res->b[j];
	}
	memset(&dc, 0, sizeof(dc));
	dc.node = ni;
	dc.r = r;
	dc.wa = wa;
	dc.nwa = (size_t)(r * k2c);
	dc.ba = ba;
	dc.nba = (size_t)r;
	dc.wb = wb;
	dc.nwb = (size_t)(Y->d * r);
	dc.bb = bb;
	dc.nbb = (size_t)Y->d;
	rc = lr_rewrite_decompose(m, &dc, 1, NULL, 0, &next, p->msg);
	if (rc == 0) {
		lr_model_free(p->m);
		p->m = next;
	}
out:
	free(rowacc);
	free(wa);
	free(ba);
	free(wb);
	free(bb);
	return rc;
}

/*
 * Writes a solved fully connected layer into the graph: Gemm (Qt W, Qt b)
 * then Gemm (P, b), with W and b the layer's effective weight and bias
 * (alpha, beta and transB folded in). p->m is replaced.
 */
static int rewrite_fc_layer(struct pipe *p, const struct layer *Y, const lr_solve_result *res)
{
	const lr_model *m = p->m;
	lr_model *next = NULL;
	int v = lr_model_find_value(m, Y->out_name), ni = m->values[v].producer, rc;
	int64_t r = Y->rank, c, d;
	float *wa = NULL, *ba = NULL, *wb = NULL, *bb = NULL;
	lr_decomp dc;
	lr_fc fc;
	char why[160];

	rc = lr_fc_extract(m, ni, 2, &fc, why, sizeof(why));
	if (rc != 0)
		return rc == LR_EUNSUPPORTED ? lr_fail(p->msg, LR_EMODEL, "internal: layer '%s': %s",
						       Y->node_name, why) : rc;
	c = fc.c;
	d = fc.d;
	wa = malloc(sizeof(float) * (size_t)(r * c));
	ba = malloc(sizeof(float) * (size_t)r);
	wb = malloc(sizeof(float) * (size_t)(d * r));
	bb = malloc(sizeof(float) * (size_t)d);
	if (wa == NULL || ba == NULL || wb == NULL || bb == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	rc = lr_fc_factors(&fc, res, wa, ba, wb, bb);
	if (rc != 0)
		goto out;
	memset(&dc, 0, sizeof(dc));
	dc.node = ni;
	dc.r = r;
	dc.wa = wa;
	dc.nwa = (size_t)(r * c);
	dc.ba = ba;
	dc.nba = (size_t)r;
	dc.wb = wb;
	dc.nwb = (size_t)(d * r);
	dc.bb = bb;
	dc.nbb = (size_t)d;
	rc = lr_rewrite_decompose(m, &dc, 1, NULL, 0, &next, p->msg);
	if (rc == 0) {
		lr_model_free(p->m);
		p->m = next;
	}
out:
	lr_fc_free(&fc);
	free(wa);
	free(ba);
	free(wb);
	free(bb);
	return rc;
}

/*
 * Fits layer l (1-based `done` of `nsolve`): for an asymmetric method its
 * regressors come from the current, partly rewritten model.
 */
static int solve_layer(struct pipe *p, int l, int done, int nsolve, lr_solve_result *res)
{
	const lr_compress_opts *o = p->o;
	struct layer *Y = &p->L[l];
	int64_t n = p->nfit * Y->rpi;
	lr_solve_opts so;
	struct iter_progress ip;
	int rc;

	if (Y->fc && Y->fcov.A != NULL) {
		/* The shrunk fit (fc_spectrum); the covariance is not needed after. */
		rc = lr_fc_fit_cov(&Y->fcov, Y->T, n, Y->rank, res, p->msg);
		lr_fc_cov_free(&Y->fcov);
		if (rc != 0) {
			lr_msg_prefix(p->msg, "layer '%s'", Y->node_name);
			return rc;
		}
		Y->solution = "linear";
		Y->err_before = res->err_before;
		Y->err_after = res->err_after;
		return 0;
	}
	if (p->asym) {
		free(p->S);
		p->S = malloc((size_t)(n * Y->d) * sizeof(float));
		if (p->S == NULL)
			return LR_ENOMEM;
		rc = collect_regressors(p->m, p->calib, p->order, p->nfit, p->L, p->nl, l, p->S,
					&p->cache, o, &Y->cached, p->msg);
		if (rc != 0)
			return rc;
		if (p->cache.bytes > p->cache_peak)
			p->cache_peak = p->cache.bytes;
	}
	memset(&so, 0, sizeof(so));
	lr_solve_opts_init(&so);
	so.nonlinear = p->nonlin && Y->relu;
	so.cancel = o->cancel;
	ip.o = o;
	ip.name = Y->node_name;
	ip.layer = done;
	ip.nlayers = nsolve;
	/* Collection and solve share the layer's slice of progress. */
	ip.f0 = 0.15 + 0.7 * ((double)done - 0.5) / (double)nsolve;
	ip.f1 = 0.15 + 0.7 * (double)done / (double)nsolve;
	ip.t0 = p->t0;
	ip.last = 0;
	so.progress = on_iteration;
	so.progress_ud = &ip;
	rc = lr_lowrank_solve(Y->T, p->asym ? p->S : Y->T, n, Y->d, Y->rank, &so, res, p->msg);
	if (rc != 0) {
		lr_msg_prefix(p->msg, "layer '%s'", Y->node_name);
		return rc;
	}
	Y->solution = so.nonlinear ? "nonlinear" : "linear";
	Y->err_before = res->err_before;
	Y->err_after = res->err_after;
	return 0;
}

/* ---- the spatial + channel scheme: solving (TPAMI 3.5) ------------------ */

/*
 * Layer l under the spatial + channel scheme, solved and written into
 * p->m (done of nsolve, for progress):
 *  1. filter reconstruction: the (kh x kw, c -> d) weights W become
 *     V (kh x 1, c -> d'') and H (1 x kw, d'' -> d) by the truncated SVD
 *     (spatial.h), the best pair in the weights' Frobenius norm;
 *  2. the channel solver on the (1 x kw, d) layer: targets are the original
 *     responses T, regressors (asymmetric methods) the responses of V -> H
 *     (with the original bias) on the partly approximated network's input,
 *     sampled at the same positions, so the fit also absorbs the split's
 *     error. They come from a copy of the model with layer l replaced by
 *     V -> H; the cut cache stays valid because V and its output name are
 *     the same in that copy and in the final model. Symmetric methods fit
 *     on T alone, as in the channel scheme.
 *  3. M = P Qt gives A = Qt H (1 x kw, d'' -> d') with bias Qt b0 and
 *     B = P (1 x 1, d' -> d) with the solver's b, so V -> A -> B computes
 *     M (H V x + b0) + b: exactly the solver's prediction M s + b.
 */
static int solve_spatial(struct pipe *p, int l, int done, int nsolve)
{
	const lr_compress_opts *o = p->o;
	struct layer *Y = &p->L[l];
	const lr_model *m = p->m;
	int v = lr_model_find_value(m, Y->out_name), ni = m->values[v].producer, rc;
	const lr_tensor *W = m->values[m->nodes[ni].in[1]].init, *B = conv_bias(m, ni, &rc);
	int64_t n = p->nfit * p->spi, d = Y->d, r = Y->rank, r2 = Y->rank2;
	int64_t nv = r2 * Y->c * Y->kh, nh = d * r2 * Y->kw;
	float *wv = NULL, *wh = NULL, *wa = NULL, *ba = NULL, *wb = NULL, *bb = NULL;
	lr_model *tmp = NULL, *next = NULL;
	lr_solve_result res;
	lr_solve_opts so;
	struct iter_progress ip;
	lr_decomp dc;

	memset(&res, 0, sizeof(res));
	if (rc != 0)
		return lr_fail(p->msg, rc, "layer '%s': the bias is not constant", Y->node_name);
	if (W == NULL || W->dtype != LR_DT_FLOAT || W->nelem != d * Y->c * Y->kh * Y->kw)
		return lr_fail(p->msg, LR_EUNSUPPORTED, "layer '%s': weights are not constant",
			       Y->node_name);
	wv = malloc(sizeof(float) * (size_t)nv);
	wh = malloc(sizeof(float) * (size_t)nh);
	wa = malloc(sizeof(float) * (size_t)(r * r2 * Y->kw));
	ba = malloc(sizeof(float) * (size_t)r);
	wb = malloc(sizeof(float) * (size_t)(d * r));
	bb = malloc(sizeof(float) * (size_t)d);
	if (wv == NULL || wh == NULL || wa == NULL || ba == NULL || wb == NULL || bb == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	/* 1. filter reconstruction */
	rc = lr_spatial_split(W->data, d, Y->c, Y->kh, Y->kw, r2, wv, wh, NULL, p->msg);
	if (rc != 0)
		goto out;
	/* 2. regressors from V -> H in place of the layer */
	Y->err_split = -1;
	if (p->asym) {
		memset(&dc, 0, sizeof(dc));
		dc.node = ni;
		dc.r = d;
		dc.r2 = r2;
		dc.wv = wv;
		dc.nwv = (size_t)nv;
		dc.wa = wh;
		dc.nwa = (size_t)nh;
		dc.ba = B != NULL ? B->data : NULL;
		dc.nba = B != NULL ? (size_t)d : 0;
		rc = lr_rewrite_decompose(m, &dc, 1, NULL, 0, &tmp, p->msg);
		if (rc != 0)
			goto out;
		free(p->S);
		p->S = malloc((size_t)(n * d) * sizeof(float));
		if (p->S == NULL) {
			rc = LR_ENOMEM;
			goto out;
		}
		rc = collect_regressors(tmp, p->calib, p->order, p->nfit, p->L, p->nl, l, p->S,
					&p->cache, o, &Y->cached, p->msg);
		if (rc != 0)
			goto out;
		if (p->cache.bytes > p->cache_peak)
			p->cache_peak = p->cache.bytes;
	}
	lr_solve_opts_init(&so);
	so.nonlinear = p->nonlin && Y->relu;
	so.cancel = o->cancel;
	ip.o = o;
	ip.name = Y->node_name;
	ip.layer = done;
	ip.nlayers = nsolve;
	ip.f0 = 0.15 + 0.7 * ((double)done - 0.5) / (double)nsolve;
	ip.f1 = 0.15 + 0.7 * (double)done / (double)nsolve;
	ip.t0 = p->t0;
	ip.last = 0;
	so.progress = on_iteration;
	so.progress_ud = &ip;
	rc = lr_lowrank_solve(Y->T, p->asym ? p->S : Y->T, n, d, r, &so, &res, p->msg);
	if (rc != 0) {
		lr_msg_prefix(p->msg, "layer '%s'", Y->node_name);
		goto out;
	}
	Y->solution = so.nonlinear ? "nonlinear" : "linear";
	Y->err_before = res.err_before;
	Y->err_after = res.err_after;
	if (p->asym)
		Y->err_split = res.err_regressor;
	/* 3. A = Qt H, B = P */
	lr_spatial_project(res.Qt, r, wh, d, r2, Y->kw, B != NULL ? B->data : NULL, wa, ba);
	for (int64_t j = 0; j < d; j++) {
		for (int64_t i = 0; i < r; i++)
			wb[j * r + i] = (float)res.P[j + i * d];
		bb[j] = (float)res.b[j];
	}
	memset(&dc, 0, sizeof(dc));
	dc.node = ni;
	dc.r = r;
	dc.r2 = r2;
	dc.wv = wv;
	dc.nwv = (size_t)nv;
	dc.wa = wa;
	dc.nwa = (size_t)(r * r2 * Y->kw);
	dc.ba = ba;
	dc.nba = (size_t)r;
	dc.wb = wb;
	dc.nwb = (size_t)(d * r);
	dc.bb = bb;
	dc.nbb = (size_t)d;
	rc = lr_rewrite_decompose(m, &dc, 1, NULL, 0, &next, p->msg);
	if (rc == 0) {
		lr_model_free(p->m);
		p->m = next;
	}
out:
	lr_solve_result_free(&res);
	lr_model_free(tmp);
	free(wv);
	free(wh);
	free(wa);
	free(ba);
	free(wb);
	free(bb);
	return rc;
}

/* Multiply-accumulates of layer Y after the solve, per input. */
static double layer_macs_after(const struct layer *Y)
{
	double k2c = (double)(Y->kh * Y->kw * Y->c);

	if (Y->rank > 0 && Y->rank2 > 0)
		return lr_spatial_macs(Y->d, Y->c, Y->kh, Y->kw, Y->rank2, Y->rank, Y->oh, Y->ow, Y->win);
	if (Y->rank > 0)
		return (double)Y->rank * (k2c + (double)Y->d) * (double)(Y->oh * Y->ow);
	return Y->macs;
}

/* The report's scheme fields of a decomposed layer. */
static void report_scheme(cJSON *j, const struct layer *Y)
{
	cJSON_AddStringToObject(j, "scheme", Y->rank2 > 0 ? "spatial-channel" : "channel");
	if (Y->rank2 <= 0)
		return;
	cJSON_AddNumberToObject(j, "rank2", (double)Y->rank2);
	cJSON_AddNumberToObject(j, "filter_energy", Y->fen[Y->rank2]);
	/* stage 1: the split's relative weight error, and (asymmetric) the
	 * response error of the split alone on the approximated input */
	cJSON_AddNumberToObject(j, "filter_error", sqrt(fmax(0.0, 1.0 - Y->fen[Y->rank2])));
	cJSON_AddNumberToObject(j, "split_energy", Y->pen);
	if (Y->err_split >= 0)
		cJSON_AddNumberToObject(j, "error_split", Y->err_split);
}

/* Solves the layers shallow to deep, rewriting each into the graph at once. */
static int stage_solve(struct pipe *p)
{
	int nsolve = 0, done = 0, rc = 0;

	for (int l = 0; l < p->nl; l++)
		nsolve += p->L[l].rank > 0;
	for (int l = 0; l < p->nl && rc == 0; l++) {
		struct layer *Y = &p->L[l];
		lr_solve_result res;
		double ts = lr_now();

		if (Y->rank <= 0)
			continue;
		rc = check_canceled(p);
		if (rc != 0)
			break;
		done++;
		report_progress(p->o, "solving", done, nsolve, Y->node_name,
				0.15 + 0.7 * (double)(done - 1) / (double)nsolve, p->t0, &p->clk);
		memset(&res, 0, sizeof(res));
		if (Y->rank2 > 0) {
			rc = solve_spatial(p, l, done, nsolve);
		} else {
			rc = solve_layer(p, l, done, nsolve, &res);
			if (rc == 0)
				rc = Y->fc ? rewrite_fc_layer(p, Y, &res) : rewrite_layer(p, Y, &res);
		}
		lr_solve_result_free(&res);
		Y->seconds = lr_now() - ts;
	}
	return rc;
}

/* The report: per layer what was done, and the model's FLOPs. */
static int stage_report(struct pipe *p)
{
	const lr_compress_opts *o = p->o;
	cJSON *rep, *layers;
	double before = 0, after = 0, cbefore = 0, cafter = 0;

	rep = p->rep = cJSON_CreateObject();
	layers = cJSON_AddArrayToObject(rep, "layers");
	for (int l = 0; l < p->nl; l++) {
		struct layer *Y = &p->L[l];
		cJSON *j = cJSON_CreateObject();
		double cost = Y->macs, newcost = layer_macs_after(Y);

		before += cost;
		after += newcost;
		if (!Y->fc) {
			cbefore += cost;
			cafter += newcost;
		}
		cJSON_AddStringToObject(j, "name", Y->node_name);
		cJSON_AddStringToObject(j, "kind", Y->fc ? "fc" : "conv");
		cJSON_AddStringToObject(j, "output", Y->out_name);
		cJSON_AddNumberToObject(j, "k", (double)Y->kh);
		cJSON_AddNumberToObject(j, "c", (double)Y->c);
		cJSON_AddNumberToObject(j, "d", (double)Y->d);
		if (Y->rank > 0) {
			cJSON_AddNumberToObject(j, "rank", (double)Y->rank);
			report_scheme(j, Y);
			cJSON_AddStringToObject(j, "solution", Y->solution);
			if (Y->fc && Y->fit != NULL) {
				cJSON_AddStringToObject(j, "fit", Y->fit);
				if (strcmp(Y->fit, "data") != 0)
					cJSON_AddNumberToObject(j, "shrinkage", Y->fc_alpha);
			}
			cJSON_AddNumberToObject(j, "energy", Y->energy);
			cJSON_AddNumberToObject(j, "error_before", Y->err_before);
			cJSON_AddNumberToObject(j, "error_after", Y->err_after);
			cJSON_AddNumberToObject(j, "speedup", cost / newcost);
			if (Y->timed && Y->cost > 0)
				cJSON_AddNumberToObject(j, "measured_speedup", Y->t0 / Y->cost);
			cJSON_AddNumberToObject(j, "seconds", Y->seconds);
			if (p->asym)
				cJSON_AddBoolToObject(j, "from_cached_cut", Y->cached);
			if (!Y->relu)
				cJSON_AddStringToObject(j, "note", Y->why);
		} else {
			cJSON_AddStringToObject(j, "skipped",
						Y->decomposable ? "kept as it is: the target costs less PCA energy in other layers"
								: Y->why);
		}
		cJSON_AddNumberToObject(j, "mflops_before", 2.0 * cost / 1e6);
		cJSON_AddNumberToObject(j, "mflops_after", 2.0 * newcost / 1e6);
		if (Y->eig != NULL)
			cJSON_AddItemToObject(j, "energy_curve", energy_curve(Y->eig, Y->d, Y->rank));
		if (Y->timed) {
			cJSON *cand = cJSON_CreateArray();

			cJSON_AddNumberToObject(j, "time_ms_before", Y->t0 * 1e3);
			cJSON_AddNumberToObject(j, "in_model_factor", Y->alpha);
			cJSON_AddNumberToObject(j, "time_ms_after", (Y->rank > 0 ? Y->cost : Y->t0) * 1e3);
			for (int i = 0; i < Y->ncand; i++) {
				cJSON *c = cJSON_CreateObject();

				cJSON_AddNumberToObject(c, "rank", (double)Y->cand_rank[i]);
				cJSON_AddNumberToObject(c, "ms", Y->cand_sec[i] * 1e3);
				cJSON_AddNumberToObject(c, "log_energy",
							Y->eig ? log_energy(Y->eig, Y->d, Y->cand_rank[i]) : 0);
				cJSON_AddItemToArray(cand, c);
			}
			/* The spatial + channel triples timed, with their d''. */
			for (int i = 0; i < Y->nscand; i++) {
				cJSON *c = cJSON_CreateObject();

				cJSON_AddNumberToObject(c, "rank", (double)Y->scand_r[i]);
				cJSON_AddNumberToObject(c, "rank2", (double)Y->scand_r2[i]);
				cJSON_AddNumberToObject(c, "ms", Y->scand_sec[i] * 1e3);
				cJSON_AddItemToArray(cand, c);
			}
			cJSON_AddItemToObject(j, "candidates", cand);
		}
		cJSON_AddItemToArray(layers, j);
	}
	cJSON_AddNumberToObject(rep, "conv_mflops_before", 2.0 * cbefore / 1e6);
	cJSON_AddNumberToObject(rep, "conv_mflops_after", 2.0 * cafter / 1e6);
	cJSON_AddNumberToObject(rep, "mflops_before", 2.0 * before / 1e6);
	cJSON_AddNumberToObject(rep, "mflops_after", 2.0 * after / 1e6);
	cJSON_AddNumberToObject(rep, "theoretical_speedup", after > 0 ? before / after : 1.0);
	cJSON_AddStringToObject(rep, "method", lr_method_name(o->method));
	cJSON_AddStringToObject(rep, "objective", lr_objective_name(o->objective));
	cJSON_AddStringToObject(rep, "decomposition", lr_decomposition_name(o->decomposition));
	cJSON_AddNumberToObject(rep, "target_speedup", o->speedup);
	{
		cJSON *dep = cJSON_AddObjectToObject(rep, "deploy");

		cJSON_AddNumberToObject(dep, "batch", o->deploy_batch);
		cJSON_AddNumberToObject(dep, "threads", o->deploy_threads);
		cJSON_AddNumberToObject(dep, "flop_ratio", after > 0 ? before / after : 1.0);
		if (p->t_model > 0) {
			double pred = p->t_rest;

			for (int l = 0; l < p->nl; l++)
				if (p->L[l].timed)
					pred += p->L[l].rank > 0 ? p->L[l].cost : p->L[l].t0;
			cJSON_AddNumberToObject(dep, "original_ms", p->t_model * 1e3);
			cJSON_AddNumberToObject(dep, "rest_ms", p->t_rest * 1e3);
			cJSON_AddNumberToObject(dep, "predicted_ms", pred * 1e3);
			cJSON_AddNumberToObject(dep, "predicted_speedup", pred > 0 ? p->t_model / pred : 0);
		}
	}
	if (p->t_model > 0) {
		cJSON *cm = cJSON_AddObjectToObject(rep, "cost_model");

		cJSON_AddStringToObject(cm, "unit", "seconds in lowrank's engine");
		cJSON_AddStringToObject(cm, "cpu", p->cpu);
		cJSON_AddNumberToObject(cm, "vector_block", p->vector_block);
		cJSON_AddStringToObject(cm, "build", lr_build_id());
		cJSON_AddNumberToObject(cm, "measure_seconds", p->measure_seconds);
		cJSON_AddNumberToObject(cm, "measured", p->nmeasured);
		cJSON_AddNumberToObject(cm, "from_cache", p->ncached);
		if (o->timing_cache != NULL)
			cJSON_AddStringToObject(cm, "timing_cache", o->timing_cache_label != NULL
						? o->timing_cache_label : o->timing_cache);
		else
			cJSON_AddNullToObject(cm, "timing_cache");
	}
	if (o->speedup > 0) {
		cJSON *sel = cJSON_AddObjectToObject(rep, "selection");

		cJSON_AddStringToObject(sel, "algorithm", "multiple-choice knapsack");
		cJSON_AddNumberToObject(sel, "rank_multiple", p->rank_multiple);
		cJSON_AddBoolToObject(sel, "exact", p->sel.exact);
		cJSON_AddNumberToObject(sel, "sum_log_energy", p->sel.value);
		cJSON_AddNumberToObject(sel, "cost_before", p->cost_before);
		cJSON_AddNumberToObject(sel, "cost_budget", p->cost_budget);
		cJSON_AddNumberToObject(sel, "cost_after", p->sel.cost);
		if (p->ntrial > 0) {
			cJSON *ca = cJSON_AddArrayToObject(sel, "calibration");

			for (int k = 0; k < p->ntrial; k++) {
				cJSON *j = cJSON_CreateObject();

				cJSON_AddNumberToObject(j, "target", p->cal_target[k]);
				cJSON_AddNumberToObject(j, "predicted_speedup", p->cal_pred[k]);
				cJSON_AddNumberToObject(j, "trial_speedup", p->cal_meas[k]);
				cJSON_AddBoolToObject(j, "kept", k == p->cal_best);
				cJSON_AddItemToArray(ca, j);
			}
		}
	}
	cJSON_AddNumberToObject(rep, "seed", (double)o->seed);
	cJSON_AddNumberToObject(rep, "samples_per_input", p->spi);
	cJSON_AddNumberToObject(rep, "fit_inputs", (double)p->nfit);
	if (p->nfit < p->nfit_all)
		cJSON_AddStringToObject(rep, "note", "the sampled responses of all fitting inputs would exceed half the memory budget; the first fit_inputs of the seeded order were used");
	cJSON_AddNumberToObject(rep, "holdout_inputs", (double)p->nhold);
	cJSON_AddNumberToObject(rep, "batchnorm_folded", p->nfolded);
	cJSON_AddNumberToObject(rep, "memory_budget_bytes", (double)o->memory_budget);
	cJSON_AddNumberToObject(rep, "cache_peak_bytes", (double)p->cache_peak);
	return 0;
}

/* Fidelity on the held-out inputs: top-1 agreement and output error. */
static int stage_evaluate(struct pipe *p)
{
	const int64_t *hold = p->order + p->nfit_all;
	int64_t nhold = p->nhold, per, agree = 0;
	lr_tensor *yref = NULL, *yapp = NULL;
	double num = 0, den = 0;
	const float *a, *b;
	cJSON *f;
	int rc;

	if (nhold <= 0)
		return 0;
	report_progress(p->o, "evaluating", 0, 0, NULL, 0.88, p->t0, &p->clk);
	rc = run_all(p->m0, p->calib, hold, nhold, p->o, &yref, p->msg);
	if (rc == 0)
		rc = run_all(p->m, p->calib, hold, nhold, p->o, &yapp, p->msg);
	if (rc != 0)
		goto out;
	per = yref->nelem / nhold;
	a = yref->data;
	b = yapp->data;
	for (int64_t i = 0; i < nhold; i++) {
		int64_t ia = 0, ib = 0;

		for (int64_t k = 0; k < per; k++) {
			double dd = (double)a[i * per + k] - (double)b[i * per + k];

			num += dd * dd;
			den += (double)a[i * per + k] * (double)a[i * per + k];
			if (a[i * per + k] > a[i * per + ia])
				ia = k;
			if (b[i * per + k] > b[i * per + ib])
				ib = k;
		}
		agree += ia == ib;
	}
	f = cJSON_AddObjectToObject(p->rep, "holdout");
	cJSON_AddNumberToObject(f, "inputs", (double)nhold);
	cJSON_AddNumberToObject(f, "top1_agreement", (double)agree / (double)nhold);
	cJSON_AddNumberToObject(f, "relative_output_error", den > 0 ? sqrt(num / den) : 0);
out:
	lr_tensor_free(yref);
	lr_tensor_free(yapp);
	return rc;
}

/* Both models timed in lowrank's engine at batch 1 and 8. */
static int stage_time(struct pipe *p)
{
	int64_t bs[2] = { 1, 8 };
	cJSON *t;

	if (p->o->time_runs <= 0)
		return 0;
	t = cJSON_AddArrayToObject(p->rep, "measured");
	report_progress(p->o, "timing", 0, 0, NULL, 0.94, p->t0, &p->clk);
	/* Both models interleaved (lr_time_models), so that they see the
	 * machine's load alike: with the solver's threads at batch 1 and 8,
	 * then at the deployment batch and threads, as the cost model. */
	for (int i = 0; i < 3; i++) {
		const lr_model *both[2] = { p->m0, p->m };
		int64_t dims[LR_MAX_DIMS];
		double ab[2];
		cJSON *j;
		int rc;

		memcpy(dims, p->calib->dims, sizeof(dims));
		dims[0] = i < 2 ? bs[i] : p->o->deploy_batch;
		rc = lr_time_models(both, 2, p->calib->ndim, dims, i < 2 ? p->o->threads : p->o->deploy_threads,
				    i < 2 ? (p->o->time_runs + 2) / 3 : p->o->measure_samples,
				    i < 2 ? 0 : TRIAL_SPAN, p->o->cancel, ab, p->msg);
		if (rc != 0)
			return rc;
		if (i == 2) {
			j = cJSON_GetObjectItem(p->rep, "deploy");
			cJSON_AddNumberToObject(j, "measured_original_ms", ab[0] * 1e3);
			cJSON_AddNumberToObject(j, "measured_compressed_ms", ab[1] * 1e3);
			cJSON_AddNumberToObject(j, "measured_speedup", ab[1] > 0 ? ab[0] / ab[1] : 0);
			break;
		}
		j = cJSON_CreateObject();
		cJSON_AddNumberToObject(j, "batch", (double)bs[i]);
		cJSON_AddNumberToObject(j, "original_ms", ab[0] * 1e3);
		cJSON_AddNumberToObject(j, "compressed_ms", ab[1] * 1e3);
		cJSON_AddNumberToObject(j, "speedup", ab[1] > 0 ? ab[0] / ab[1] : 0);
		cJSON_AddItemToArray(t, j);
	}
	return 0;
}

/* Stage times into the report, provenance into the model. */
static int stage_finish(struct pipe *p)
{
	const lr_compress_opts *o = p->o;
	char params[512], *ranks = NULL;
	lr_meta meta[5];
	int nm = 0, rc;
	lr_model *next = NULL;
	cJSON *rj, *st;

	stage_mark(&p->clk, NULL);
	st = cJSON_AddObjectToObject(p->rep, "stage_seconds");
	for (int i = 0; i < p->clk.n; i++)
		cJSON_AddNumberToObject(st, p->clk.name[i], p->clk.sec[i]);
	cJSON_AddNumberToObject(p->rep, "seconds", lr_now() - p->t0);

	rj = cJSON_CreateObject();
	for (int l = 0; l < p->nl; l++)
		if (p->L[l].rank > 0)
			cJSON_AddNumberToObject(rj, p->L[l].node_name, (double)p->L[l].rank);
	ranks = cJSON_PrintUnformatted(rj);
	cJSON_Delete(rj);
	snprintf(params, sizeof(params),
		 "{\"method\":\"%s\",\"decomposition\":\"%s\",\"target_speedup\":%g,\"objective\":\"%s\",\"deploy_batch\":%d,\"deploy_threads\":%d,\"samples_per_input\":%d,\"seed\":%llu}",
		 lr_method_name(o->method), lr_decomposition_name(o->decomposition), o->speedup,
		 lr_objective_name(o->objective),
		 o->deploy_batch, o->deploy_threads, p->spi, (unsigned long long)o->seed);
	meta[nm++] = (lr_meta){ "lowrank.version", PACKAGE_VERSION };
	meta[nm++] = (lr_meta){ "lowrank.params", params };
	meta[nm++] = (lr_meta){ "lowrank.ranks", ranks ? ranks : "{}" };
	if (p->model_sha256)
		meta[nm++] = (lr_meta){ "lowrank.source_sha256", p->model_sha256 };
	if (p->calib_sha256)
		meta[nm++] = (lr_meta){ "lowrank.calibration_sha256", p->calib_sha256 };
	rc = lr_rewrite_decompose(p->m, NULL, 0, meta, nm, &next, p->msg);
	free(ranks);
	if (rc != 0)
		return rc;
	lr_model_free(p->m);
	p->m = next;
	/* The model file's size before and after: what saving writes. */
	{
		size_t b0 = onnx__model_proto__get_packed_size(p->m0->proto);
		size_t b1 = onnx__model_proto__get_packed_size(p->m->proto);

		cJSON_AddNumberToObject(p->rep, "model_bytes_before", (double)b0);
		cJSON_AddNumberToObject(p->rep, "model_bytes_after", (double)b1);
	}
	report_progress(o, "done", 0, 0, NULL, 1.0, p->t0, &p->clk);
	return 0;
}

static const struct {
	const char *name;
	int (*run)(struct pipe *p);
} stages[] = {
	{ "check", stage_check },     { "split", stage_split },   { "fold", stage_fold },
	{ "inspect", stage_inspect }, { "cost", stage_cost },     { "sample", stage_sample },
	{ "select", stage_select },   { "solve", stage_solve },   { "report", stage_report },
	{ "evaluate", stage_evaluate }, { "time", stage_time },   { "finish", stage_finish },
};

int lr_compress(const lr_model *m0, const lr_tensor *calib, const lr_compress_opts *o,
		const char *model_sha256, const char *calib_sha256, lr_model **out,
		cJSON **report, lr_msg *msg)
{
	struct pipe p;
	int rc = 0;

	*out = NULL;
	*report = NULL;
	memset(&p, 0, sizeof(p));
	p.m0 = m0;
	p.calib = calib;
	p.o = o;
	p.model_sha256 = model_sha256;
	p.calib_sha256 = calib_sha256;
	p.msg = msg;
	p.spi = o->samples_per_input;
	p.asym = o->method == LR_METHOD_NONLINEAR_ASYM || o->method == LR_METHOD_LINEAR_ASYM;
	p.nonlin = o->method == LR_METHOD_NONLINEAR_ASYM || o->method == LR_METHOD_NONLINEAR;
	p.t0 = lr_now();
	for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]) && rc == 0; i++)
		rc = stages[i].run(&p);
	if (rc == 0) {
		*out = p.m;
		p.m = NULL;
		*report = p.rep;
		p.rep = NULL;
	}
	pipe_free(&p);
	return rc;
}
