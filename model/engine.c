/*
 * engine.c - executes a loaded model node by node. See engine.h.
 *
 * DESIGN. A run keeps one slot per value of the model. Slots of
 * initializers and graph inputs borrow tensors (never freed here); slots
 * of node outputs own theirs. Before the run every value gets a count of
 * its remaining readers; after each node the counts of its inputs drop
 * and a tensor whose count reaches zero is freed at once (unless it is a
 * graph output). A kernel may take over the buffer of an input for which
 * this node is the last reader (see ops.h), which makes activations like
 * Relu and Reshape free of copies. `live` tracks the bytes of tensors the
 * engine owns; its maximum over the run is the reported peak. Constant
 * nodes run once, when the engine is created (hoist_constants), and their
 * outputs are borrowed like initializers.
 *
 * With LR_PROFILE set when the engine is created, every node of a full
 * (non-dry, non-segment) run is timed with CLOCK_MONOTONIC around its
 * kernel; each node's median over the runs, without the first (which
 * packs weights into the node caches), is written as JSON lines when the
 * engine is freed. Medians, not means: on a shared machine one run in ten
 * can stall for tens of milliseconds, and a mean puts that stall on
 * whichever node it hit.
 */
#include "config.h"

#include "model/engine.h"

#include <cblas.h>
#include <float.h>
#include <stdio.h>
#include <time.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/ops.h"
#include "model/pool.h"

#define LR_PROF_RUNS 1024 /* LR_PROFILE keeps this many runs' node times */

struct lr_engine {
	const lr_model *m;              /* borrowed */
	lr_pool *pool;                  /* worker threads */
	int nthreads;                   /* pool size */
	lr_engine_observer observer;    /* optional per-node callback */
	void *observer_ud;              /* its argument */
	size_t peak_bytes;              /* peak live bytes of the last run */
	int fused_nodes;                /* nodes a Conv computed in the last run */
	int blocked_nodes;              /* nodes that wrote channel-blocked values in it */
	struct lr_scratch scratch;      /* per-thread kernel scratch */
	struct lr_node_cache *cache;    /* per node: derived constant data */
	struct lr_fold *fold;           /* per node: a BatchNormalization folded in */
	lr_tensor **konst;              /* per value: a Constant node's output, or NULL */
	double *prof_ns;                /* LR_PROFILE: per node, this run's ns */
	double *prof_samp;              /* LR_PROFILE: [run][node] ns, runs 2.. */
	char **prof_shape;              /* LR_PROFILE: per node, shapes seen */
	int prof_runs;                  /* LR_PROFILE: timed full runs */
	char *prof_path;                /* LR_PROFILE at creation */
	int *cut;                       /* image by image: values the prefix hands on */
	int ncut;                       /* how many (0: runs never split) */
	size_t img_peak;                /* one image's activation peak (0: not yet run) */
	size_t split_min;               /* split when n * img_peak exceeds it */
	int img_par;                    /* split runs may run images in parallel */
	int split_warm;                 /* a split run filled the node caches */
	int pricing;                    /* lr_engine_set_pricing */
	char *blk;                      /* per value: channel-blocked in full runs (plan_blocked) */
	int64_t *conv_hw;               /* per node: a Conv's input map (H x W) in a dry run
					 * of the declared input (plan_shapes), 0 unknown;
					 * only while plan_blocked runs */
	struct lr_scratch *iscratch;    /* [nthreads]: each image runner's scratch */
};

/*
 * What one run_graph call runs with besides the engine's plan, and what
 * it reports: a serial run uses the engine's pool and scratch; an image
 * runner of a parallel split run (run_split) none and its own.
 */
struct lr_run {
	lr_pool *pool;                  /* the kernels' threads (NULL: inline) */
	struct lr_scratch *scratch;     /* their scratch */
	int cache_ro;                   /* node caches are read, never stored */
	int prof;                       /* add node times to the engine's profile */
	size_t peak_bytes;              /* out: peak of the live activations */
	int fused_nodes;                /* out: nodes computed by the node before */
	int blocked_nodes;              /* out: nodes that wrote blocked values */
};

/* A serial run's context; `prof`: profile its nodes (LR_PROFILE). */
static struct lr_run run_serial(lr_engine *e, int prof)
{
	struct lr_run r = { e->pool, &e->scratch, 0, prof && e->prof_ns != NULL, 0, 0, 0 };

	return r;
}

/*
 * A BatchNormalization folded into the Conv before it, as every runtime
 * does at load (ONNX Runtime's basic graph optimizations): models
 * exported in training layout or by older exporters keep them, and each
 * one cost a pass over its Conv's output (7% of the Fashion-MNIST ResNet
 * here), which also made lowrank's speedups from compressing such a
 * model, whose layers the solver folds, larger than ONNX Runtime's.
 */
struct lr_fold {
	int bn;                 /* the BatchNormalization node, or -1 */
	lr_tensor *w, *b;       /* the Conv's weights and bias, BN folded in */
};

/* The first node after node `from` that reads value v, or -1. */
static int reader_of(const lr_model *m, int from, int v)
{
	for (int r = from + 1; r < m->nnodes; r++)
		for (int k = 0; k < m->nodes[r].nin; k++)
			if (m->nodes[r].in[k] == v)
				return r;
	return -1;
}

/* A float initializer (a constant the user cannot feed), or NULL. */
static const lr_tensor *const_float(const lr_model *m, int v)
{
	const lr_tensor *t = v >= 0 ? m->values[v].init : NULL;

	return t != NULL && t->dtype == LR_DT_FLOAT && t->data != NULL ? t : NULL;
}

/*
 * Folds, where it can, the BatchNormalization that alone reads a Conv's
 * output into copies of that Conv's weights and bias: W'[k] = W[k] a[k],
 * B'[k] = beta[k] + (B[k] - mean[k]) a[k], a = scale / sqrt(var + eps), in
 * double. Weights, bias and the BN's four parameters must be constants
 * of the right shapes, and the BN an inference one (opset < 7: is_test;
 * opset 14+: training_mode 0; opset < 9: spatial) with one output. Whether
 * a run uses the fold is decided per run (an observer sees the unfolded
 * Conv); LR_NO_FOLD (set when the engine is created) folds nothing.
 * Returns 0 or LR_ENOMEM.
 */
static int fold_batchnorms(lr_engine *e)
{
	const lr_model *m = e->m;
	int off = getenv("LR_NO_FOLD") != NULL;

	for (int i = 0; i < m->nnodes; i++) {
		const lr_node *n = &m->nodes[i], *bn = NULL;
		const lr_tensor *w, *b = NULL, *p[4];
		int v = n->nout == 1 ? n->out[0] : -1, ok = 1, r;
		int64_t M, per;
		double eps;

		e->fold[i].bn = -1;
		if (off || n->op->run != lr_op_conv || v < 0 || n->nin < 2 ||
		    m->values[v].nconsumers != 1 || m->values[v].graph_output ||
		    (w = const_float(m, n->in[1])) == NULL || w->ndim < 3)
			continue;
		M = w->dims[0];
		if (n->nin > 2 && n->in[2] >= 0 &&
		    ((b = const_float(m, n->in[2])) == NULL || b->ndim != 1 || b->dims[0] != M))
			continue;
		if ((r = reader_of(m, i, v)) >= 0)
			bn = &m->nodes[r];
		if (bn == NULL || bn->op->run != lr_op_batchnorm || bn->in[0] != v || bn->nin != 5 ||
		    bn->nout < 1 || bn->out[0] < 0)
			continue;
		for (int k = 1; k < bn->nout; k++)
			ok &= bn->out[k] < 0;
		for (int k = 0; k < 4; k++) {
			p[k] = const_float(m, bn->in[1 + k]);
			ok &= p[k] != NULL && p[k]->ndim == 1 && p[k]->dims[0] == M;
		}
		if (!ok || (m->opset < 7 && lr_node_attr_int(bn, "is_test", 0) == 0) ||
		    (m->opset >= 14 && lr_node_attr_int(bn, "training_mode", 0) != 0) ||
		    (m->opset < 9 && lr_node_attr_int(bn, "spatial", 1) == 0))
			continue;
		eps = lr_node_attr_float(bn, "epsilon", 1e-5f);
		if (lr_tensor_create(&e->fold[i].w, LR_DT_FLOAT, w->ndim, w->dims, 1) != 0 ||
		    lr_tensor_create(&e->fold[i].b, LR_DT_FLOAT, 1, &M, 1) != 0)
			return LR_ENOMEM;
		per = M > 0 ? w->nelem / M : 0;
		for (int64_t k = 0; k < M; k++) {
			const float *sc = p[0]->data, *beta = p[1]->data, *mu = p[2]->data,
				    *va = p[3]->data, *wk = (const float *)w->data + k * per;
			float *fk = (float *)e->fold[i].w->data + k * per;
			double a = (double)sc[k] / sqrt((double)va[k] + eps);

			for (int64_t j = 0; j < per; j++)
				fk[j] = (float)((double)wk[j] * a);
			((float *)e->fold[i].b->data)[k] = (float)((double)beta[k] +
				((b != NULL ? (double)((const float *)b->data)[k] : 0.0) - (double)mu[k]) * a);
		}
		e->fold[i].bn = (int)(bn - m->nodes);
	}
	return 0;
}

/*
 * Image by image. A batch of n images whose activations outgrow the
 * caches runs slower per image than one image does: MobileNet-v2 at
 * batch 8 took 6.7 ms per image against 5.0 at batch 1 (1 thread; 3.6
 * against 2.65 with 2), since every layer streamed 8 images' maps
 * through L3 and memory. ONNX Runtime's time per image does not grow
 * with the batch. So a run of n > 1 images executes the graph's longest
 * prefix of per-image nodes once per image (batch-1 activations, reused
 * in cache) and the rest, typically Flatten and the fully connected
 * layers whose weights are then read once per batch (VGG-16's fc6, 411
 * MB), on the whole batch. The values the prefix hands on (`cut`) are
 * gathered into batch tensors between the two.
 *
 * A node belongs to the prefix when its result for one image depends on
 * that image only: an op of the list below, all of whose batch-carrying
 * inputs come from the graph input or the prefix and all of whose other
 * inputs are constants that do not vary along the batch axis (rank below
 * the input's, or a first extent of 1). The prefix stops at the first
 * node that is not such a node. It applies only to models with one graph
 * input whose first dimension is declared symbolic (a model declaring a
 * fixed batch may reshape with it), to runs without an observer, and
 * LR_NO_SPLIT (set at creation) turns it off. Results are the same as a
 * batched run's: every kernel computes images independently.
 *
 * Only batches whose activations outgrow the caches gain: a run splits
 * when n times one image's activation peak (learnt from the engine's
 * last run) exceeds 8 MiB (LR_SPLIT_MIN=BYTES at creation sets another
 * limit), or when that peak is not known yet.
 * The Fashion-MNIST models (0.2-0.3 MB per image) at batch 8 gained
 * nothing split with 1 thread and lost 2-5% with 2 (each op then has one
 * small image to share between threads); at batch 64, 1 thread, split
 * was 22% faster. The ImageNet models (6-26 MB per image) gain at batch
 * 8 with 1 and 2 threads (docs/benchmarks.md).
 */

static int split_op(const lr_node *nd, int rank)
{
	static const char *const ops[] = {
		"Conv", "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid",
		"HardSwish", "Elu", "Selu", "Softplus", "Identity", "Dropout", "Add", "Sub",
		"Mul", "Div", "Max", "Min", "MaxPool", "AveragePool", "GlobalAveragePool",
		"GlobalMaxPool", "BatchNormalization", "LRN", "Concat", "PRelu",
	};
	size_t i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(nd->op_type, ops[i]) == 0)
			break;
	if (i == sizeof(ops) / sizeof(ops[0]))
		return 0;
	/* One output: MaxPool's Indices count across the batch, Dropout's
	 * mask and BatchNormalization's training statistics are not per
	 * image. */
	for (int k = 1; k < nd->nout; k++)
		if (nd->out[k] >= 0)
			return 0;
	if (strcmp(nd->op_type, "BatchNormalization") == 0 &&
	    lr_node_attr_int(nd, "training_mode", 0) != 0)
		return 0;
	if (strcmp(nd->op_type, "Concat") == 0) {
		int64_t axis = lr_node_attr_int(nd, "axis", 1);

		if (axis == 0 || axis == -rank)
			return 0;
	}
	return 1;
}

/*
 * Runs every Constant node once and keeps its output in e->konst, which
 * runs then borrow like an initializer: torchvision's MobileNet-v2 has
 * two Constant nodes (Clip bounds) per Clip, 70 in all, which allocated
 * and filled a scalar each on every run (66 us of a 5.4 ms run, 1 thread).
 * A Constant that fails here (an attribute lowrank does not take) is left
 * to run in the graph, where its error names the node. Returns 0 or
 * LR_ENOMEM.
 */
static int hoist_constants(lr_engine *e)
{
	const lr_model *m = e->m;

	for (int ni = 0; ni < m->nnodes; ni++) {
		const lr_node *nd = &m->nodes[ni];
		lr_tensor *t = NULL;
		lr_msg msg = { { 0 } };
		lr_opctx c;
		int rc;

		if (nd->op->run != lr_op_constant || nd->nout != 1 || nd->out[0] < 0 ||
		    e->konst[nd->out[0]] != NULL)
			continue;
		memset(&c, 0, sizeof(c));
		c.node = nd;
		c.opset = m->opset;
		c.msg = &msg;
		rc = nd->op->run(&c, NULL, 0, &t, 1);
		if (rc == LR_ENOMEM)
			return rc;
		if (rc == 0)
			e->konst[nd->out[0]] = t;
		else
			lr_tensor_free(t);
	}
	return 0;
}

static int plan_split(lr_engine *e)
{
	const lr_model *m = e->m;
	const lr_value *in;
	char *inb = NULL;
	int k, rank, rc = 0;

	e->split_min = (size_t)8 << 20;
	if (getenv("LR_SPLIT_MIN") != NULL)
		e->split_min = (size_t)strtoull(getenv("LR_SPLIT_MIN"), NULL, 10);
	e->img_par = getenv("LR_NO_IMAGE_PARALLEL") == NULL;
	if (getenv("LR_NO_SPLIT") != NULL || m->ninputs != 1)
		return 0;
	in = &m->values[m->inputs[0]];
	rank = in->ndim;
	if (rank < 2 || in->dims[0] >= 0)
		return 0;
	inb = calloc((size_t)m->nvalues + 1, 1); /* carries the batch */
	if (inb == NULL)
		return LR_ENOMEM;
	inb[m->inputs[0]] = 1;
	for (k = 0; k < m->nnodes; k++) {
		const lr_node *nd = &m->nodes[k];
		int ok = split_op(nd, rank), fed = 0;
		int ew = strcmp(nd->op_type, "Add") == 0 || strcmp(nd->op_type, "Sub") == 0 ||
			 strcmp(nd->op_type, "Mul") == 0 || strcmp(nd->op_type, "Div") == 0 ||
			 strcmp(nd->op_type, "Max") == 0 || strcmp(nd->op_type, "Min") == 0 ||
			 strcmp(nd->op_type, "PRelu") == 0;
		int cat = strcmp(nd->op_type, "Concat") == 0;

		/* Nodes that read no batch value (Constant nodes: torchvision's
		 * Clip bounds; Identity on weights) run in whichever part reads
		 * them, unless they draw random numbers. */
		for (int j = 0; j < nd->nin; j++)
			fed |= nd->in[j] >= 0 && inb[nd->in[j]];
		if (!fed && strstr(nd->op_type, "Random") == NULL &&
		    strcmp(nd->op_type, "Multinomial") != 0 && strcmp(nd->op_type, "Bernoulli") != 0)
			continue;

		for (int j = 0; ok && j < nd->nin; j++) {
			int v = nd->in[j];
			const lr_tensor *c = v >= 0 ? m->values[v].init : NULL;
			int p = v >= 0 ? m->values[v].producer : -1;

			if (v < 0)
				continue;
			if (inb[v]) {
				/* Elementwise and Concat inputs pair images;
				 * other ops take the batch in input 0 only. */
				ok = j == 0 || ew || cat;
				continue;
			}
			if (c == NULL && p >= 0 && p < k && !ew && !cat)
				continue; /* made by a node skipped above */
			/* Otherwise a constant (an initializer; a skipped
			 * node's output, whose shape is not known here, outside
			 * elementwise ops): parameters (weights, bounds)
			 * any shape; an elementwise operand must be constant
			 * along the batch axis (before opset 7, broadcasting
			 * ran from an axis: scalars only); Concat none. */
			ok = c != NULL && !cat &&
			     (!ew || (m->opset < 7 ? c->nelem == 1
				      : c->ndim < rank || (c->ndim == rank && c->dims[0] == 1)));
		}
		if (!ok)
			break;
		inb[nd->out[0]] = 1;
	}
	/* The cut: prefix values read after it or returned. */
	for (int pass = 0; pass < 2; pass++) {
		int n = 0;

		for (int v = 0; v < m->nvalues; v++) {
			int p = m->values[v].producer, after = m->values[v].graph_output;

			if (!inb[v] || p < 0)
				continue;
			for (int r = k; !after && r < m->nnodes; r++)
				for (int j = 0; j < m->nodes[r].nin; j++)
					after |= m->nodes[r].in[j] == v;
			if (after && pass == 1)
				e->cut[n] = v;
			n += after;
		}
		if (pass == 0) {
			if (n == 0 || k == 0)
				break;
			e->cut = calloc((size_t)n, sizeof(int));
			if (e->cut == NULL) {
				rc = LR_ENOMEM;
				break;
			}
			e->ncut = n;
		}
	}
	free(inb);
	return rc;
}

/*
 * OpenBLAS starts its server threads when it is loaded (one per core),
 * and they kept waking: with the engine's SGEMMs single-threaded one of
 * them still spun in sched_yield for 9% of a Fashion-MNIST ResNet run's
 * samples, a core taken from the engine's second thread and from other
 * jobs. Once OpenBLAS is single-threaded they are stopped
 * (blas_thread_shutdown_, which OpenBLAS's own fork handler calls; it
 * starts them again should anything ask for more threads). Weak: another
 * BLAS without it is left as it is.
 */
extern int blas_thread_shutdown_(void) __attribute__((weak));

/*
 * Channel-blocked activations. ONNX Runtime keeps the activations between
 * its NCHWc convolutions in blocks of 16 channels ([N][C/16][H][W][16]),
 * where a thread's share of a layer's output is whole cache lines of
 * whole positions and the next layer reads them in runs of a line; in
 * C order the direct kernels transpose every tile into planes and read
 * their input a plane apart per channel, and on 2 threads every layer
 * read the half its neighbour wrote that way, from the other core's
 * cache (docs/benchmarks.md, 2026-12-05). So a value is kept blocked
 * when the Conv writing it and every node reading it take that layout:
 * the direct kernels' Convs (group 1, undilated, constant 4-D weights,
 * channels in 16s, more than BLK_LANES_M filters, which the lanes kernel
 * takes in C order; strided ones of fewer filters, and 1x1s on small
 * maps, read blocks too, see blk_conv), the 16-channel depthwise kernel's
 * (3x3 and 5x5, which then skips its transposes), and Add, Relu and Clip,
 * which do not care where a channel is as long as all their tensor inputs
 * agree (the engine checks that at run time, as any node it does not plan
 * for gets a C-order copy), GlobalAveragePool and GlobalMaxPool, which
 * read blocks (blk_pool),
 * and a BatchNormalization folded into its Conv (blk_passes): with it in
 * the way, the Fashion-MNIST ResNet, exported with its BatchNormalizations,
 * kept nothing blocked (now 12 nodes; 3-6% faster, 1 thread).
 * What a run returns (graph outputs, a segment's values) is in C order,
 * and runs with an observer block nothing. The direct kernels compute
 * the same values in either layout; a 1x1 layer that writes blocks runs
 * on them rather than on the pointwise kernel, which sums in another
 * order (outputs then differ by roundings).
 * LR_NO_BLOCKED (read per run): none.
 */
#define BLK_LANES_M 32          /* Convs of up to this many filters: lanes kernel, C order */

static int blk_layout_free(const lr_node *n)
{
	return n->op->run == lr_op_add || n->op->run == lr_op_relu || n->op->run == lr_op_clip;
}

/*
 * 1 if node n reads a blocked input 0 itself: GlobalAveragePool and
 * GlobalMaxPool pool 16 channels a vector at a time (ops_pool.c), so the
 * Conv before a network's head writes blocks instead of transposing its
 * output into planes: the compressed Fashion-MNIST ResNet's pool 0.019 ->
 * 0.003 ms at batch 8 (ONNX Runtime's 0.005-0.008), the model 2.4% faster
 * (bench --ab-create, pricing kernels; its original 1.4%).
 * LR_NO_BLK_POOL (set when the engine is made): C order for them.
 */
static int blk_pool(const lr_node *n)
{
	return n->op->run == lr_op_globalaveragepool || n->op->run == lr_op_globalmaxpool;
}

/* Inputs of layout-free node n that carry its tensor (Clip's bounds do not). */
static int blk_data_inputs(const lr_node *n)
{
	return n->op->run == lr_op_add ? 2 : 1;
}

/*
 * 1 if node ni passes its input 0's layout on in plan_blocked: a
 * layout-free node, or a BatchNormalization folded into the Conv before it
 * (fold_batchnorms), which passes that Conv's buffer on. A run that does
 * not fold it (a segment keeping the Conv's output) gives it a C-order
 * copy, as any node (layout_inputs). LR_NO_BLK_BN (set when the engine is
 * made): only layout-free nodes.
 */
static int blk_passes(const lr_engine *e, int ni)
{
	const lr_node *n = &e->m->nodes[ni];
	int p;

	if (blk_layout_free(n))
		return 1;
	return n->op->run == lr_op_batchnorm && n->nin >= 1 && n->in[0] >= 0 &&
	       (p = e->m->values[n->in[0]].producer) >= 0 && e->fold[p].bn == ni &&
	       getenv("LR_NO_BLK_BN") == NULL;
}

#define BLK_THIN_1X1_HW (14 * 14) /* thin 1x1 Convs on maps up to this read blocks */

/* 1 if Conv node ni can read (dir 0) or write (dir 1) blocked values. */
static int blk_conv(const lr_engine *e, int ni, int dir)
{
	const lr_model *m = e->m;
	const lr_node *n = &m->nodes[ni];
	const lr_tensor *w;
	int64_t d[4];
	int cnt = 0;

	if (n->op->run != lr_op_conv || n->nin < 2 || n->in[1] < 0 ||
	    (w = m->values[n->in[1]].init) == NULL || w->ndim != 4)
		return 0;
	if (lr_node_attr_ints(n, "dilations", d, 4, &cnt) == 0)
		for (int i = 0; i < cnt; i++)
			if (d[i] != 1)
				return 0;
	/* The 16-channel depthwise kernel: 3x3 or 5x5, one filter per channel. */
	if (lr_node_attr_int(n, "group", 1) == w->dims[0] && w->dims[1] == 1 &&
	    w->dims[0] % 16 == 0 && w->dims[2] == w->dims[3] && (w->dims[2] == 3 || w->dims[2] == 5))
		return 1;
	if (lr_node_attr_int(n, "group", 1) != 1)
		return 0;
	/*
	 * Fewer filters: C order out (the lanes kernel's), but a strided one,
	 * which the lanes kernel does not take, reads blocks: its padded copy
	 * and its reads then go in runs of whole lines, where in C order they
	 * went a plane apart per channel. A compressed ResNet-50's 16-filter
	 * 3x3 stride 2 over 128 x 56 x 56, in-network: 0.40 -> 0.30 ms, 1
	 * thread (ONNX Runtime's: 0.21). LR_NO_BLK_STRIDED_THIN (set): C order.
	 * So does a 1x1 on a map of up to BLK_THIN_1X1_HW (known from
	 * plan_shapes): the direct kernel on blocks beat the C-order copy the
	 * pointwise kernel needs, where on larger maps the pointwise kernel
	 * wins. A compressed ResNet-50's 1024 -> 32 at 14x14: 0.10 -> 0.08 ms
	 * (ONNX Runtime's 0.078); its 512 -> 16 at 28x28 would go 0.08 ->
	 * 0.11. LR_NO_BLK_SMALL_THIN (set): C order.
	 * Engines that price (lr_engine_set_pricing) run the thin layers the
	 * lanes kernel does not take for them (strided, or on maps below
	 * LR_PRICE_MAP) on blocks in and out, as ONNX Runtime runs its
	 * one-block NCHWc layers: in C order, a compressed ResNet-50's
	 * 3-node and stride-2 pairs cost, relative to their original layer,
	 * 23-50% more than in ONNX Runtime, on blocks -2..+5% (bench/pairs.sh),
	 * and the 2x Fashion-MNIST ResNet ran 5% faster, its prediction nearer
	 * ONNX Runtime's; on 2 threads 6-9 of its 52 pairs beyond 20%, not
	 * 17-19. LR_NO_BLK_PRICE_THIN (set when the engine is made or its
	 * pricing switched): as other engines.
	 */
	if (w->dims[0] <= BLK_LANES_M) {
		int64_t st[2] = { 1, 1 }, hw = e->conv_hw != NULL ? e->conv_hw[ni] : 0;
		int sc = 0, strided, priced;

		if (lr_node_attr_ints(n, "strides", st, 2, &sc) < 0)
			return 0;
		strided = sc == 2 && (st[0] != 1 || st[1] != 1);
		priced = e->pricing && (strided || (hw > 0 && hw < LR_PRICE_MAP)) &&
			 getenv("LR_NO_BLK_PRICE_THIN") == NULL; /* blocks in and out */
		if (!priced && (dir || (strided ? getenv("LR_NO_BLK_STRIDED_THIN") != NULL :
					w->dims[2] != 1 || w->dims[3] != 1 || hw <= 0 ||
					hw > BLK_THIN_1X1_HW ||
					getenv("LR_NO_BLK_SMALL_THIN") != NULL)))
			return 0;
	}
	return dir ? w->dims[0] % 16 == 0 : w->dims[1] % 16 == 0;
}

static int run_full(lr_engine *e, lr_tensor *const *inputs, int ninputs,
		    lr_tensor **outputs, int dry, lr_msg *msg);

/*
 * Map sizes for plan_blocked's choices that depend on them: a dry run
 * (shapes only) of the declared input at batch 1 records each Conv's
 * input H x W. Nothing is recorded when the input's shape is not declared
 * or the dry run fails (the plan then does without), and an engine later
 * run at another size keeps the plan (layouts decide speed, not values).
 */
static void plan_shapes(lr_engine *e)
{
	const lr_model *m = e->m;
	const lr_value *in;
	lr_tensor *x = NULL, **outs = NULL;
	int64_t dims[4];
	lr_msg msg;

	if (m->parent != NULL || m->ninputs != 1 || m->noutputs < 1)
		return;
	in = &m->values[m->inputs[0]];
	if (in->ndim != 4 || in->elem_type != LR_DT_FLOAT || in->dims[1] <= 0 || in->dims[2] <= 0 ||
	    in->dims[3] <= 0)
		return;
	dims[0] = 1;
	memcpy(dims + 1, in->dims + 1, 3 * sizeof(int64_t));
	e->conv_hw = calloc((size_t)m->nnodes + 1, sizeof(*e->conv_hw));
	outs = calloc((size_t)m->noutputs, sizeof(*outs));
	memset(&msg, 0, sizeof(msg));
	if (e->conv_hw != NULL && (outs == NULL ||
				   lr_tensor_create(&x, LR_DT_FLOAT, 4, dims, 0) != 0 ||
				   run_full(e, &x, 1, outs, 1, &msg) != 0)) {
		free(e->conv_hw); /* no map sizes: the plan does without */
		e->conv_hw = NULL;
	}
	for (int i = 0; outs != NULL && i < m->noutputs; i++)
		lr_tensor_free(outs[i]);
	free(outs);
	lr_tensor_free(x);
}

static int plan_blocked(lr_engine *e)
{
	const lr_model *m = e->m;
	int changed = 1;

	if (lr__conv_direct_isa() != 2)
		return 0;
	plan_shapes(e);
	e->blk = calloc((size_t)m->nvalues + 1, 1);
	if (e->blk == NULL)
		return LR_ENOMEM;
	/* Candidates: what those Convs and layout-free nodes write. */
	for (int ni = 0; ni < m->nnodes; ni++) {
		const lr_node *n = &m->nodes[ni];
		int v = n->nout >= 1 ? n->out[0] : -1;

		if (v >= 0 && !m->values[v].graph_output && (blk_conv(e, ni, 1) || blk_passes(e, ni)))
			e->blk[v] = 1;
	}
	/* Then drop, until none changes, each value read by a node that
	 * cannot take it blocked, and each layout-free node's output whose
	 * tensor inputs are not all blocked (and their inputs with it). */
	while (changed) {
		changed = 0;
		for (int ni = 0; ni < m->nnodes; ni++) {
			const lr_node *n = &m->nodes[ni];
			int v = n->nout >= 1 ? n->out[0] : -1;
			int all = v >= 0 && e->blk[v];

			if (blk_passes(e, ni)) {
				for (int k = 0; k < n->nin && k < blk_data_inputs(n); k++)
					all &= n->in[k] >= 0 && e->blk[n->in[k]];
				for (int k = 0; k < n->nin; k++) {
					int u = n->in[k];

					if (u >= 0 && e->blk[u] && (!all || k >= blk_data_inputs(n))) {
						e->blk[u] = 0;
						changed = 1;
					}
				}
				if (v >= 0 && e->blk[v] && !all) {
					e->blk[v] = 0;
					changed = 1;
				}
				continue;
			}
			for (int k = 0; k < n->nin; k++) {
				int u = n->in[k];

				if (u >= 0 && e->blk[u] && !(k == 0 && (blk_conv(e, ni, 0) ||
									 (blk_pool(n) &&
									  getenv("LR_NO_BLK_POOL") == NULL)))) {
					e->blk[u] = 0;
					changed = 1;
				}
			}
		}
	}
	free(e->conv_hw); /* later dry runs record nothing */
	e->conv_hw = NULL;
	return 0;
}

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_servers_stop(void)
{
	if (blas_thread_shutdown_ != NULL && getenv("LR_KEEP_BLAS_THREADS") == NULL)
		blas_thread_shutdown_();
}

int lr_engine_create(lr_engine **out, const lr_model *m, int nthreads)
{
	lr_engine *e;

	*out = NULL;
	if (nthreads <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		nthreads = n > 0 ? (int)n : 1;
	}
	if (nthreads > 256)
		nthreads = 256;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return LR_ENOMEM;
	e->m = m;
	e->nthreads = nthreads;
	e->pool = lr_pool_create(nthreads);
	if (e->pool == NULL) {
		free(e);
		return LR_ENOMEM;
	}
	e->scratch.n = nthreads;
	e->scratch.buf = calloc((size_t)nthreads, sizeof(void *));
	e->scratch.bytes = calloc((size_t)nthreads, sizeof(size_t));
	e->cache = calloc((size_t)m->nnodes + 1, sizeof(*e->cache));
	e->fold = calloc((size_t)m->nnodes + 1, sizeof(*e->fold));
	e->konst = calloc((size_t)m->nvalues + 1, sizeof(*e->konst));
	if (e->fold == NULL || e->konst == NULL || fold_batchnorms(e) != 0 ||
	    hoist_constants(e) != 0 || plan_split(e) != 0 || plan_blocked(e) != 0) {
		lr_engine_free(e);
		return LR_ENOMEM;
	}
	/* Subgraphs (If, Loop, Scan bodies) are timed inside their node. */
	if (getenv("LR_PROFILE") != NULL && *getenv("LR_PROFILE") != '\0' && m->parent == NULL) {
		e->prof_ns = calloc((size_t)m->nnodes + 1, sizeof(*e->prof_ns));
		e->prof_samp = calloc((size_t)(m->nnodes + 1) * LR_PROF_RUNS, sizeof(*e->prof_samp));
		e->prof_shape = calloc((size_t)m->nnodes + 1, sizeof(*e->prof_shape));
		e->prof_path = strdup(getenv("LR_PROFILE"));
		if (e->prof_ns == NULL || e->prof_samp == NULL || e->prof_shape == NULL ||
		    e->prof_path == NULL) {
			lr_engine_free(e);
			return LR_ENOMEM;
		}
	}
	if (e->scratch.buf == NULL || e->scratch.bytes == NULL || e->cache == NULL) {
		lr_engine_free(e);
		return LR_ENOMEM;
	}
	/*
	 * Kernels parallelise with the engine's own pool and call SGEMM on
	 * per-thread tiles, so OpenBLAS itself runs single-threaded.
	 */
	openblas_set_num_threads(1);
	pthread_once(&blas_once, blas_servers_stop);
	/*
	 * Keep freed activation buffers in the heap instead of returning them
	 * to the kernel: every run allocates the same sizes again, and fresh
	 * mmap'd pages cost a page fault each.
	 */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	*out = e;
	return 0;
}

/*
 * LR_PROFILE=FILE ("-" or "1": stderr; read when the engine is created):
 * at lr_engine_free, one JSON line
 * per node with data, {"node","op","shape","ms","mean_ms"} (ms: median
 * per full run, over the engine's non-dry full runs but the first, which
 * fills caches, up to LR_PROF_RUNS of them; a Relu/Clip fused into its
 * Conv shows ~0 and its time is in the Conv's), then per op type totals
 * of the medians.
 */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void profile_dump(const lr_engine *e)
{
	const char *path = e->prof_path;
	FILE *f = stderr;
	double tot = 0;
	const char *types[512];
	double tms[512], v[LR_PROF_RUNS];
	int nt = 0, runs = e->prof_runs - 1 < LR_PROF_RUNS ? e->prof_runs - 1 : LR_PROF_RUNS;

	if (e->prof_ns == NULL || e->prof_path == NULL || e->prof_runs < 2)
		return;
	if (strcmp(path, "-") != 0 && strcmp(path, "1") != 0 && (f = fopen(path, "w")) == NULL) {
		fprintf(stderr, "LR_PROFILE: cannot write '%s'\n", path);
		return;
	}
	for (int i = 0; i < e->m->nnodes; i++) {
		const lr_node *n = &e->m->nodes[i];
		double ms, mean = 0;
		int k;

		for (k = 0; k < runs; k++) {
			v[k] = e->prof_samp[(size_t)k * (size_t)e->m->nnodes + (size_t)i];
			mean += v[k];
		}
		qsort(v, (size_t)runs, sizeof(v[0]), cmp_double);
		ms = (runs % 2 ? v[runs / 2] : (v[runs / 2 - 1] + v[runs / 2]) / 2) / 1e6;
		mean /= 1e6 * runs;
		tot += ms;
		fprintf(f, "{\"node\":\"%s\",\"op\":\"%s\",\"shape\":\"%s\",\"ms\":%.4f,\"mean_ms\":%.4f}\n",
			n->name, n->op_type, e->prof_shape[i] ? e->prof_shape[i] : "", ms, mean);
		for (k = 0; k < nt && strcmp(types[k], n->op_type) != 0; k++)
			;
		if (k == nt && nt < 512) {
			types[nt] = n->op_type;
			tms[nt++] = 0;
		}
		if (k < nt)
			tms[k] += ms;
	}
	for (int k = 0; k < nt; k++)
		fprintf(f, "{\"op_total\":\"%s\",\"ms\":%.4f}\n", types[k], tms[k]);
	fprintf(f, "{\"total_ms\":%.4f,\"runs\":%d}\n", tot, runs);
	if (f != stderr)
		fclose(f);
}

void lr_engine_free(lr_engine *e)
{
	if (e == NULL)
		return;
	profile_dump(e);
	for (int i = 0; e->prof_shape != NULL && i < e->m->nnodes; i++)
		free(e->prof_shape[i]);
	free(e->prof_shape);
	free(e->prof_ns);
	free(e->prof_samp);
	free(e->prof_path);
	lr_pool_free(e->pool);
	for (int i = 0; i < e->scratch.n && e->scratch.buf != NULL; i++)
		lr_free_aligned(e->scratch.buf[i]);
	free(e->scratch.buf);
	free(e->scratch.bytes);
	for (int t = 0; e->iscratch != NULL && t < e->nthreads; t++) {
		if (e->iscratch[t].buf != NULL)
			lr_free_aligned(e->iscratch[t].buf[0]);
		free(e->iscratch[t].buf);
		free(e->iscratch[t].bytes);
	}
	free(e->iscratch);
	for (int i = 0; e->cache != NULL && i < e->m->nnodes; i++)
		lr_free_aligned(e->cache[i].data);
	free(e->cache);
	for (int i = 0; e->fold != NULL && i < e->m->nnodes; i++) {
		lr_tensor_free(e->fold[i].w);
		lr_tensor_free(e->fold[i].b);
	}
	free(e->fold);
	for (int v = 0; e->konst != NULL && v < e->m->nvalues; v++)
		lr_tensor_free(e->konst[v]);
	free(e->konst);
	free(e->cut);
	free(e->blk);
	free(e->conv_hw);
	free(e);
}

void lr_engine_set_observer(lr_engine *e, lr_engine_observer fn, void *ud)
{
	e->observer = fn;
	e->observer_ud = ud;
}

/* Its plan is made again: pricing engines block more (blk_conv). */
void lr_engine_set_pricing(lr_engine *e, int on)
{
	if (e->pricing == (on != 0))
		return;
	e->pricing = on != 0;
	free(e->blk);
	e->blk = NULL;
	(void)plan_blocked(e); /* out of memory: nothing blocked, still correct */
}

size_t lr_engine_peak_bytes(const lr_engine *e)
{
	return e->peak_bytes;
}

int lr_engine_fused_nodes(const lr_engine *e)
{
	return e->fused_nodes;
}

int lr_engine_blocked_nodes(const lr_engine *e)
{
	return e->blocked_nodes;
}

int lr_engine_threads(const lr_engine *e)
{
	return e->nthreads;
}

static size_t owned_bytes(const lr_tensor *t)
{
	return (t != NULL && t->data != NULL && t->owns_data) ? lr_tensor_bytes(t) : 0;
}

/* Checks a fed tensor against the graph input's declared type and shape. */
static int check_input(const lr_value *v, const lr_tensor *t, lr_msg *msg)
{
	char got[160], wantshape[160];

	if (t == NULL)
		return lr_fail(msg, LR_EINVAL, "graph input '%s' was not given", v->name);
	if (v->elem_type != 0 && lr_dtype_from_onnx(v->elem_type) == 0 &&
	    v->elem_type != LR_DT_STRING)
		return lr_fail(msg, LR_EUNSUPPORTED,
			       "graph input '%s' has type %s, which lowrank does not support",
			       v->name, lr_onnx_type_name(v->elem_type));
	if (v->elem_type != 0 && (int)t->dtype != v->elem_type)
		return lr_fail(msg, LR_ESHAPE, "graph input '%s' expects element type %s, got %s",
			       v->name, lr_onnx_type_name(v->elem_type), lr_dtype_name(t->dtype));
	if (v->ndim < 0)
		return 0;
	if (v->ndim != t->ndim)
		goto bad;
	for (int i = 0; i < t->ndim; i++)
		if (v->dims[i] >= 0 && v->dims[i] != t->dims[i])
			goto bad;
	return 0;
bad:
	{
		size_t off = 0;

		off += (size_t)snprintf(wantshape + off, sizeof(wantshape) - off, "[");
		for (int i = 0; i < v->ndim && off < sizeof(wantshape); i++) {
			if (v->dims[i] >= 0)
				off += (size_t)snprintf(wantshape + off, sizeof(wantshape) - off,
							"%s%lld", i ? "," : "", (long long)v->dims[i]);
			else
				off += (size_t)snprintf(wantshape + off, sizeof(wantshape) - off,
							"%s?", i ? "," : "");
		}
		if (off < sizeof(wantshape))
			snprintf(wantshape + off, sizeof(wantshape) - off, "]");
	}
	return lr_fail(msg, LR_ESHAPE, "graph input '%s' expects shape %s, got %s", v->name,
		       wantshape, lr_shape_str(t->ndim, t->dims, got, sizeof(got)));
}

/*
 * A constant float scalar: an initializer, or the output of a Constant
 * node (torchvision's Clip bounds). Returns 1 and sets *f, else 0.
 */
static int const_scalar(const lr_model *m, int v, float *f)
{
	const lr_tensor *t = m->values[v].init;
	int p = m->values[v].producer, ok = 0;

	if (t != NULL) {
		if (t->dtype != LR_DT_FLOAT || t->nelem != 1 || t->data == NULL)
			return 0;
		*f = *(const float *)t->data;
		return 1;
	}
	if (p >= 0 && m->nodes[p].op->run == lr_op_constant) {
		const Onnx__AttributeProto *a = lr_node_attr(&m->nodes[p], "value");
		lr_tensor *c = NULL;

		if (a != NULL && a->t != NULL && lr_tensor_from_proto(a->t, NULL, &c, NULL) == 0 &&
		    c->dtype == LR_DT_FLOAT && c->nelem == 1 && c->data != NULL) {
			*f = *(const float *)c->data;
			ok = 1;
		}
		lr_tensor_free(c);
		if (a == NULL && (a = lr_node_attr(&m->nodes[p], "value_float")) != NULL) {
			*f = a->f;
			ok = 1;
		}
	}
	return ok;
}

/*
 * The node that alone reads node `from`'s first output, when the engine
 * may fuse across them: no observer (the solver reads outputs as they
 * are), no LR_NO_FUSE, the output not kept (graph output or wanted) and
 * read once, by a node that runs. Returns its index, or -1.
 */
static int sole_reader(const lr_engine *e, int from, const char *need, const char *keep,
		       const int *remaining)
{
	const lr_model *m = e->m;
	const lr_node *n = &m->nodes[from];
	int v = n->nout >= 1 ? n->out[0] : -1, r;

	if (e->observer != NULL || v < 0 || keep[v] || remaining[v] != 1 ||
	    m->values[v].nconsumers != 1 || getenv("LR_NO_FUSE") != NULL ||
	    (r = reader_of(m, from, v)) < 0 || !need[r])
		return -1;
	return r;
}

/*
 * Whether node `ni` (a Conv, or an Add with float inputs: ResNet's
 * residual Add -> Relu, 0.4 ms of ResNet-50's 42 ms as a second pass) can
 * write its reader's activation: the output of node `from` (the node, or
 * the BatchNormalization folded into a Conv) is read once, as the data input of a later node that runs, a Relu
 * or a Clip with constant scalar bounds, and is not kept (graph output or
 * wanted). Sets *act, the bounds and *reader. With an observer installed
 * nothing is fused: observers (the solver) read the Conv's own output.
 * LR_NO_FUSE (set) turns fusion off.
 */
static int fusable_act(const lr_engine *e, int ni, int from, const char *need, const char *keep,
		       const int *remaining, int *act, float *lo, float *hi, int *reader)
{
	const lr_model *m = e->m;
	const lr_node *n = &m->nodes[from], *a;
	int r;

	if ((m->nodes[ni].op->run != lr_op_conv && m->nodes[ni].op->run != lr_op_add) ||
	    (from == ni && n->nout != 1) || (r = sole_reader(e, from, need, keep, remaining)) < 0)
		return 0;
	a = &m->nodes[r];
	if (a->in[0] != n->out[0] || a->nout != 1)
		return 0;
	*reader = r;
	if (a->op->run == lr_op_relu) {
		*act = LR_ACT_RELU;
		*lo = 0.f;
		*hi = INFINITY;
		return 1;
	}
	if (a->op->run != lr_op_clip)
		return 0;
	*lo = -FLT_MAX;
	*hi = FLT_MAX;
	if (m->opset < 11) {
		if (a->nin > 1)
			return 0;
		*lo = lr_node_attr_float(a, "min", -FLT_MAX);
		*hi = lr_node_attr_float(a, "max", FLT_MAX);
	} else {
		if (a->nin > 3)
			return 0;
		if (a->nin > 1 && a->in[1] >= 0 && !const_scalar(m, a->in[1], lo))
			return 0;
		if (a->nin > 2 && a->in[2] >= 0 && !const_scalar(m, a->in[2], hi))
			return 0;
	}
	*act = LR_ACT_CLIP;
	return 1;
}

/* Whether the engine owns value v's buffer and the node now running is
 * its last reader: a kernel may then take the buffer. */
static int last_use(const char *owned, const int *remaining, const char *keep, int v)
{
	return owned[v] && remaining[v] == 1 && !keep[v];
}

/*
 * Whether the Conv whose output node `from` writes (the Conv, or the
 * BatchNormalization folded into it) can also compute the Add that alone
 * reads it: an Add of two distinct values (sole_reader: no observer, not
 * kept, read once) whose other operand is already computed, in float.
 * Sets *reader (the Add) and *k (the Add's input that is the Conv's
 * output). The Conv adds it only when its dims are Y's (lr_opctx.res);
 * ONNX Runtime fuses the same Add into its Conv. ResNet-50: 16 Adds,
 * 1-2 ms of 40 as passes of their own. LR_NO_FUSE_ADD (set, read per
 * run): off. The engine offers the residual's buffer to the Conv when
 * the Add is its last reader (lr_opctx.res_take, lr__res_inplace), as
 * ONNX Runtime's Conv accumulates into its Sum input. Engines that price
 * layers for the solver (lr_engine_set_pricing) fuse only then: the
 * fusion's third stream costs more than ONNX Runtime's in-place sum, and
 * with it the 4x ResNet-50 chosen on lowrank's timings ran 5.07x faster
 * in ONNX Runtime instead of 4.29x; in place, 4.36x, with lowrank's own
 * measurement 4.16x for 4.00x predicted (docs/benchmarks.md, 2026-12-05).
 */
static int fusable_res(const lr_engine *e, int from, const char *need, const char *keep,
		       const char *owned, const int *remaining, lr_tensor *const *slot,
		       int *reader, int *k)
{
	const lr_model *m = e->m;
	const lr_node *a;
	int r, v = m->nodes[from].nout >= 1 ? m->nodes[from].out[0] : -1, o;

	if (v < 0 || (r = sole_reader(e, from, need, keep, remaining)) < 0 ||
	    getenv("LR_NO_FUSE_ADD") != NULL)
		return 0;
	a = &m->nodes[r];
	if (a->op->run != lr_op_add || a->nin != 2 || a->nout != 1 || a->in[0] == a->in[1] ||
	    (a->in[0] != v && a->in[1] != v))
		return 0;
	*k = a->in[0] == v ? 0 : 1;
	o = a->in[1 - *k];
	if (o < 0 || slot[o] == NULL || slot[o]->dtype != LR_DT_FLOAT)
		return 0;
	if (e->pricing && !last_use(owned, remaining, keep, o))
		return 0;
	*reader = r;
	return 1;
}

/*
 * Whether Sigmoid node `ni` can write SiLU: its output is read once, by a
 * Mul that runs, whose other input is the Sigmoid's own input (x *
 * sigmoid(x), EfficientNet's and MobileNetV3-style exports), and is not
 * kept (sole_reader). Sets *reader and *k, the Mul's input that is the
 * Sigmoid's output.
 */
static int fusable_silu(const lr_engine *e, int ni, const char *need, const char *keep,
			const int *remaining, int *reader, int *k)
{
	const lr_model *m = e->m;
	const lr_node *n = &m->nodes[ni], *a;
	int v, r;

	if (n->op->run != lr_op_sigmoid || n->nin < 1 || n->in[0] < 0 || n->nout != 1 ||
	    (r = sole_reader(e, ni, need, keep, remaining)) < 0)
		return 0;
	v = n->out[0];
	a = &m->nodes[r];
	if (a->op->run != lr_op_mul || a->nin != 2 || a->nout != 1)
		return 0;
	if (a->in[0] == v && a->in[1] == n->in[0])
		*k = 0;
	else if (a->in[1] == v && a->in[0] == n->in[0])
		*k = 1;
	else
		return 0;
	*reader = r;
	return 1;
}

/*
 * The one run loop. Full run (want == NULL): every node runs and the graph
 * outputs are returned. Segment run: seeds are fed by value (borrowed),
 * only the nodes needed for the wanted values run, and those are returned.
 */
/*
 * Gives a kernel that takes only float32 and int64 in input k (see
 * lr_op_def.native_in) what it expects: another integer type or bool is
 * widened to an int64 copy in conv[k], which is not takeable; double and
 * float16 are refused, and so is a shape-only tensor in a dry run.
 */
static int widen_inputs(const lr_node *node, lr_tensor **inp, lr_tensor **conv,
			unsigned *takeable, int dry, lr_msg *msg)
{
	for (int k = 0; k < node->nin; k++) {
		lr_tensor *t = inp[k];
		/* hidden inputs (a subgraph's outer values) have no proto name */
		const char *name = k < (int)node->proto->n_input ? node->proto->input[k]
							       : "(outer value)";
		int rc;

		if (t != NULL && t->dtype == LR_DT_STRING && !lr_op_strings(node->op))
			return lr_fail(msg, LR_EUNSUPPORTED,
				       "node '%s' (%s): input %d ('%s') holds strings; this operator does not take them",
				       node->name, node->op_type, k, name);
		if (t == NULL || lr_dtype_is_legacy(t->dtype) || lr_op_native(node->op, k, t->dtype))
			continue;
		if (lr_dtype_is_float(t->dtype))
			return lr_fail(msg, LR_EUNSUPPORTED,
				       "node '%s' (%s): input %d ('%s') has type %s; this operator computes in float32 only",
				       node->name, node->op_type, k, name, lr_dtype_name(t->dtype));
		if (t->data == NULL && dry)
			/* int64 reaching these kernels always had values before. */
			return lr_fail(msg, LR_EUNSUPPORTED,
				       "node '%s' (%s): input %d ('%s') of type %s has no values in a dry run, and this operator reads it as int64",
				       node->name, node->op_type, k, name, lr_dtype_name(t->dtype));
		rc = lr_tensor_create(&conv[k], LR_DT_INT64, t->ndim, t->dims, t->data != NULL);
		if (rc != 0)
			return lr_fail(msg, rc, "node '%s' (%s): input %d: out of memory",
				       node->name, node->op_type, k);
		if (t->data != NULL)
			lr_tensor_convert(t, LR_DT_INT64, conv[k]->data);
		inp[k] = conv[k];
		if (k < 32)
			*takeable &= ~(1u << k);
	}
	return 0;
}

/*
 * A graph output must come out in its declared type: a value computed
 * through a float32/int64-only kernel (int64 where int32 is declared) is
 * refused rather than returned in a type the model does not promise.
 */
/*
 * Gives node n its inputs in the layouts it runs with (plan_blocked): a
 * layout-free node whose tensor inputs are all blocked and of one shape
 * takes them so, a Conv its input 0 (lr_op_conv copies it when its
 * kernels decline), a global pool its input 0 (blk_pool), a node that
 * passes an input on (passon) takes it as
 * it is; every other blocked input is replaced by a C-order copy in
 * conv[k], which is not takeable. 0, or LR_ENOMEM naming the node.
 */
static int layout_inputs(const lr_node *n, int passon, lr_tensor **inp, lr_tensor **conv,
			 unsigned *takeable, lr_msg *msg)
{
	int nd = blk_layout_free(n) ? blk_data_inputs(n) : 0, keep = nd > 0;

	if (passon)
		return 0;
	for (int k = 0; k < nd; k++)
		keep &= k < n->nin && inp[k] != NULL && inp[k]->blocked != 0 &&
			inp[k]->ndim == inp[0]->ndim &&
			memcmp(inp[k]->dims, inp[0]->dims, (size_t)inp[0]->ndim * sizeof(int64_t)) == 0;
	for (int k = 0; k < n->nin; k++) {
		lr_tensor *t = NULL;
		int rc;

		if (inp[k] == NULL || !inp[k]->blocked || (keep && k < nd) ||
		    (k == 0 && (n->op->run == lr_op_conv || blk_pool(n))))
			continue;
		rc = lr_tensor_unblock(&t, inp[k]);
		if (rc != 0)
			return lr_fail(msg, rc, "node '%s' (%s): cannot copy input %d into C order",
				       n->name, n->op_type, k);
		lr_tensor_free(conv[k]);
		conv[k] = t;
		inp[k] = t;
		if (k < 32)
			*takeable &= ~(1u << k);
	}
	return 0;
}

static int check_output(const lr_value *v, const lr_tensor *t, lr_msg *msg)
{
	if (v->elem_type == 0 || (int)t->dtype == v->elem_type)
		return 0;
	if (lr_dtype_from_onnx(v->elem_type) == 0)
		return lr_fail(msg, LR_EUNSUPPORTED,
			       "graph output '%s' has type %s, which lowrank does not support",
			       v->name, lr_onnx_type_name(v->elem_type));
	return lr_fail(msg, LR_EUNSUPPORTED,
		       "graph output '%s' is declared %s, but lowrank computes it as %s (an operator on its path takes only float32 and int64)",
		       v->name, lr_onnx_type_name(v->elem_type), lr_dtype_name(t->dtype));
}

static int run_graph(lr_engine *e, struct lr_run *r, lr_tensor *const *inputs, int ninputs,
		     const int *seed_values, lr_tensor *const *seeds, int nseeds,
		     const int *want, int nwant, lr_tensor **outputs, int dry, lr_msg *msg)
{
	const lr_model *m = e->m;
	lr_tensor **slot = NULL;
	char *owned = NULL, *keep = NULL, *need = NULL;
	int *remaining = NULL, *stack = NULL;
	const int *outv = want ? want : m->outputs;
	int noutputs = want ? nwant : m->noutputs;
	lr_tensor *in[64], *out[64], *cv[64] = { NULL };
	lr_tensor **inp = in, **outp = out, **conv = cv;
	size_t live = 0;
	char *passon = NULL;
	int rc = 0, maxio = 0;
	/* Blocked values only in runs nobody observes (plan_blocked); what
	 * a run returns is in C order. */
	const char *blk = !dry && e->observer == NULL && getenv("LR_NO_BLOCKED") == NULL ? e->blk
											: NULL;

	r->peak_bytes = 0;
	r->fused_nodes = 0;
	r->blocked_nodes = 0;
	for (int i = 0; i < noutputs; i++)
		outputs[i] = NULL;
	if (ninputs != m->ninputs)
		return lr_fail(msg, LR_EINVAL, "the model has %d inputs, %d were given",
			       m->ninputs, ninputs);
	slot = calloc((size_t)m->nvalues + 1, sizeof(*slot));
	owned = calloc((size_t)m->nvalues + 1, 1);
	keep = calloc((size_t)m->nvalues + 1, 1);
	need = calloc((size_t)m->nnodes + 1, 1);
	remaining = calloc((size_t)m->nvalues + 1, sizeof(int));
	stack = calloc((size_t)m->nnodes + 1, sizeof(int));
	passon = calloc((size_t)m->nnodes + 1, 1);
	for (int i = 0; i < m->nnodes; i++) {
		if (m->nodes[i].nin > maxio)
			maxio = m->nodes[i].nin;
		if (m->nodes[i].nout > maxio)
			maxio = m->nodes[i].nout;
	}
	if (maxio > 64) {
		inp = calloc((size_t)maxio, sizeof(*inp));
		outp = calloc((size_t)maxio, sizeof(*outp));
		conv = calloc((size_t)maxio, sizeof(*conv));
	}
	if (slot == NULL || owned == NULL || keep == NULL || need == NULL ||
	    remaining == NULL || stack == NULL || passon == NULL || inp == NULL || outp == NULL ||
	    conv == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	for (int v = 0; v < m->nvalues; v++)
		slot[v] = e->konst[v] != NULL ? e->konst[v] : m->values[v].init;
	for (int i = 0; i < nseeds; i++)
		slot[seed_values[i]] = seeds[i];
	for (int i = 0; i < ninputs; i++) {
		const lr_value *v = &m->values[m->inputs[i]];

		if (want != NULL && inputs[i] == NULL)
			continue; /* a segment may not need it; checked when read */
		rc = check_input(v, inputs[i], msg);
		if (rc != 0)
			goto out;
		slot[m->inputs[i]] = inputs[i];
	}
	/* Which nodes run, who reads each value, which values are kept. */
	if (want == NULL && nseeds == 0) {
		/* Every node but the hoisted Constants (their outputs are in). */
		for (int ni = 0; ni < m->nnodes; ni++)
			need[ni] = m->nodes[ni].nout < 1 || m->nodes[ni].out[0] < 0 ||
				   e->konst[m->nodes[ni].out[0]] == NULL;
		for (int v = 0; v < m->nvalues; v++) {
			remaining[v] = m->values[v].nconsumers;
			keep[v] = m->values[v].graph_output;
		}
	} else {
		int sp = 0;

		/* Walk producers back from the wanted values to what is fed. A node
		 * is marked when pushed, so each is pushed once: the stack holds
		 * at most nnodes entries however many readers a value has. */
		for (int i = 0; i < noutputs; i++) {
			int p = m->values[outv[i]].producer;

			keep[outv[i]] = 1;
			if (slot[outv[i]] == NULL && p >= 0 && !need[p]) {
				need[p] = 1;
				stack[sp++] = p;
			}
		}
		while (sp > 0) {
			const lr_node *q = &m->nodes[stack[--sp]];

			for (int k = 0; k < q->nin; k++) {
				int u = q->in[k], p = u >= 0 ? m->values[u].producer : -1;

				if (p >= 0 && slot[u] == NULL && !need[p]) {
					need[p] = 1;
					stack[sp++] = p;
				}
			}
		}
		for (int ni = 0; ni < m->nnodes; ni++)
			for (int k = 0; need[ni] && k < m->nodes[ni].nin; k++)
				if (m->nodes[ni].in[k] >= 0)
					remaining[m->nodes[ni].in[k]]++;
	}

	for (int ni = 0; ni < m->nnodes; ni++) {
		const lr_node *node = &m->nodes[ni];
		lr_opctx c;
		size_t taken = 0;

		if (!need[ni])
			continue;

		memset(&c, 0, sizeof(c));
		c.node = node;
		c.opset = m->opset;
		c.dry = dry;
		c.pool = r->pool;
		c.msg = msg;
		c.scratch = r->scratch;
		c.cache_ro = r->cache_ro;
		c.pricing = e->pricing;
		c.cache = !dry && node->nin > 1 && node->in[1] >= 0 && m->values[node->in[1]].init != NULL
			  ? &e->cache[ni] : NULL;
		for (int k = 0; k < node->nin; k++) {
			int v = node->in[k];

			inp[k] = NULL;
			if (v < 0)
				continue;
			if (slot[v] == NULL) {
				rc = lr_fail(msg, LR_EMODEL, m->values[v].producer < 0
					     ? "node '%s' (%s): graph input '%s' was not given"
					     : "node '%s' (%s): input '%s' was not computed (an optional output nobody produced)",
					     node->name, node->op_type, m->values[v].name);
				goto out;
			}
			inp[k] = slot[v];
			if (k < 32 && last_use(owned, remaining, keep, v))
				c.takeable |= 1u << k;
		}
		for (int k = 0; k < node->nout; k++)
			outp[k] = NULL;
		rc = widen_inputs(node, inp, conv, &c.takeable, dry, msg);
		if (rc == 0)
			rc = layout_inputs(node, passon[ni], inp, conv, &c.takeable, msg);
		if (rc != 0)
			goto out;
		c.out_blocked = blk != NULL && node->nout >= 1 && node->out[0] >= 0 &&
				blk[node->out[0]];
		/* A Conv runs with the BatchNormalization after it folded in
		 * (struct lr_fold), which then passes its buffer on (passon 2). */
		int from = ni, nrun = node->nin;

		if (!dry && e->fold[ni].bn >= 0 && e->observer == NULL && need[e->fold[ni].bn] &&
		    !keep[node->out[0]] && remaining[node->out[0]] == 1) {
			inp[1] = e->fold[ni].w;
			inp[2] = e->fold[ni].b;
			nrun = nrun < 3 ? 3 : nrun;
			from = e->fold[ni].bn;
			passon[from] = 2;
		}
		int res_add = -1, res_k = 0, res_act = -1;
		{
			int reader, k_silu;

			/* A Conv computes the residual Add after it and the
			 * activation after that; the Add and the activation
			 * pass its output on if it did (c.res_done). */
			if (!dry && node->op->run == lr_op_conv &&
			    fusable_res(e, from, need, keep, owned, remaining, slot, &res_add, &res_k)) {
				int o = m->nodes[res_add].in[1 - res_k];

				c.res = slot[o];
				/* Its buffer, when the Add is its last reader. */
				if (last_use(owned, remaining, keep, o))
					c.res_take = slot[o];
				if (!fusable_act(e, res_add, res_add, need, keep, remaining, &c.act,
						 &c.act_lo, &c.act_hi, &res_act))
					res_act = -1;
			}
			/* An Add computes the activation after it only in
			 * float (its other types run elsewhere). */
			else if (!dry && (node->op->run != lr_op_add ||
				     (nrun >= 2 && inp[0] != NULL && inp[1] != NULL &&
				      inp[0]->dtype == LR_DT_FLOAT && inp[1]->dtype == LR_DT_FLOAT)) &&
			    fusable_act(e, ni, from, need, keep, remaining, &c.act, &c.act_lo,
					&c.act_hi, &reader))
				passon[reader] = 1;
			/* SiLU: the Mul passes on its input k (passon 3 + k). */
			else if (!dry && nrun >= 1 && inp[0] != NULL && inp[0]->dtype == LR_DT_FLOAT &&
				 fusable_silu(e, ni, need, keep, remaining, &reader, &k_silu)) {
				c.act = LR_ACT_SILU;
				passon[reader] = (char)(3 + k_silu);
			}
		}
		struct timespec t0, t1;
		int prof = r->prof && !dry;
		char sa[96] = "-", sb[96] = "-";

		if (prof && e->prof_shape[ni] == NULL) {
			/* Shapes before the run: a kernel may take its input. */
			if (node->nin > 0 && inp[0] != NULL)
				lr_shape_str(inp[0]->ndim, inp[0]->dims, sa, sizeof(sa));
			if (node->nin > 1 && inp[1] != NULL)
				lr_shape_str(inp[1]->ndim, inp[1]->dims, sb, sizeof(sb));
		}
		/* (the kernel may take inp[0]: its layout, for a layout-free
		 * node's output) */
		int blocked_in0 = node->nin >= 1 && inp[0] != NULL ? inp[0]->blocked : 0;

		if (prof)
			clock_gettime(CLOCK_MONOTONIC, &t0);
		/* A Conv before wrote this activation, folded this
		 * BatchNormalization or added this Add's other operand, or a
		 * Sigmoid wrote this Mul's product (SiLU): pass its buffer on.
		 * An activation that cannot take it runs again, which changes
		 * nothing; a BatchNormalization, an Add or a Mul must not. */
		int pk = passon[ni] >= 3 ? passon[ni] - 3 : 0;

		if (passon[ni] && (outp[0] = lr_op_take(&c, inp, pk)) != NULL) {
			rc = 0;
			r->fused_nodes++;
		} else if (passon[ni] >= 2 && inp[pk] != NULL && inp[pk]->nelem > 0) {
			rc = lr_fail(msg, LR_EINVAL,
				     "node '%s' (%s): the output of the %s it was fused into cannot be passed on",
				     node->name, node->op_type,
				     passon[ni] == 2 || node->op->run == lr_op_add ? "Conv" : "Sigmoid");
		} else {
			rc = node->op->run(&c, inp, nrun, outp, node->nout);
		}
		if (rc == 0 && dry && e->conv_hw != NULL && node->op->run == lr_op_conv &&
		    inp[0] != NULL && inp[0]->ndim == 4)
			e->conv_hw[ni] = inp[0]->dims[2] * inp[0]->dims[3];
		if (rc == 0 && res_add >= 0 && c.res_done) {
			passon[res_add] = (char)(3 + res_k);
			if (res_act >= 0)
				passon[res_act] = 1;
		}
		if (rc == 0 && blocked_in0 && blk_layout_free(node) && node->nout >= 1 &&
		    outp[0] != NULL)
			outp[0]->blocked = blocked_in0;
		if (rc == 0 && node->nout >= 1 && outp[0] != NULL && outp[0]->blocked)
			r->blocked_nodes++;
		for (int k = 0; k < node->nin; k++) {
			lr_tensor_free(conv[k]); /* never taken: not takeable */
			conv[k] = NULL;
		}
		if (prof && rc == 0) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			e->prof_ns[ni] += (double)(t1.tv_sec - t0.tv_sec) * 1e9 +
					  (double)(t1.tv_nsec - t0.tv_nsec);
			if (e->prof_shape[ni] == NULL) {
				char buf[320], sc[96] = "-";

				if (node->nout > 0 && outp[0] != NULL)
					lr_shape_str(outp[0]->ndim, outp[0]->dims, sc, sizeof(sc));
				snprintf(buf, sizeof(buf), "in %s w %s out %s", sa, sb, sc);
				e->prof_shape[ni] = strdup(buf);
			}
		}
		if (rc != 0) {
			for (int k = 0; k < node->nout; k++)
				lr_tensor_free(outp[k]);
			/* A kernel that took an input and failed has freed it. */
			for (int k = 0; k < node->nin; k++)
				if (node->in[k] >= 0 && inp[k] == NULL && owned[node->in[k]]) {
					slot[node->in[k]] = NULL;
					owned[node->in[k]] = 0;
				}
			if (msg != NULL && msg->text[0] == '\0')
				lr_fail(msg, rc, "node '%s' (%s): %s", node->name,
					node->op_type, lr_strerror(rc));
			goto out;
		}
		/* Inputs the kernel took now live on as outputs. */
		for (int k = 0; k < node->nin; k++) {
			int v = node->in[k];

			if (v >= 0 && inp[k] == NULL && slot[v] != NULL) {
				taken += owned_bytes(slot[v]);
				slot[v] = NULL;
				owned[v] = 0;
			}
		}
		live -= taken;
		for (int k = 0; k < node->nout; k++) {
			int v = node->out[k];

			if (outp[k] == NULL) {
				if (v >= 0 && (remaining[v] > 0 || keep[v])) {
					rc = lr_fail(msg, LR_EUNSUPPORTED,
						     "node '%s' (%s): output %d is not produced by lowrank's kernel",
						     node->name, node->op_type, k);
					goto out;
				}
				continue;
			}
			if (!dry && outp[k]->data == NULL) {
				rc = lr_fail(msg, LR_EMODEL, "node '%s' (%s): internal error: output %d has no data",
					     node->name, node->op_type, k);
				lr_tensor_free(outp[k]);
				outp[k] = NULL;
				goto out;
			}
			if (v < 0) {
				lr_tensor_free(outp[k]);
				outp[k] = NULL;
				continue;
			}
			live += owned_bytes(outp[k]);
			slot[v] = outp[k];
			owned[v] = 1;
			outp[k] = NULL;
		}
		if (live > r->peak_bytes)
			r->peak_bytes = live;
		if (e->observer != NULL) {
			lr_tensor *obs[64];
			int nobs = node->nout < 64 ? node->nout : 64;

			for (int k = 0; k < nobs; k++)
				obs[k] = node->out[k] >= 0 ? slot[node->out[k]] : NULL;
			rc = e->observer(e->observer_ud, m, ni, obs, nobs);
			if (rc != 0)
				goto out;
		}
		/* Release inputs whose last reader this was, and dead outputs. */
		for (int k = 0; k < node->nin; k++) {
			int v = node->in[k];

			if (v < 0 || --remaining[v] > 0 || !owned[v] || keep[v])
				continue;
			live -= owned_bytes(slot[v]);
			lr_tensor_free(slot[v]);
			slot[v] = NULL;
			owned[v] = 0;
		}
		for (int k = 0; k < node->nout; k++) {
			int v = node->out[k];

			if (v >= 0 && owned[v] && remaining[v] == 0 && !keep[v]) {
				live -= owned_bytes(slot[v]);
				lr_tensor_free(slot[v]);
				slot[v] = NULL;
				owned[v] = 0;
			}
		}
	}

	if (e->prof_ns != NULL && !dry && want == NULL && rc == 0) {
		/* The first run fills the per-node caches: not counted. */
		if (e->prof_runs > 0 && e->prof_runs <= LR_PROF_RUNS)
			memcpy(e->prof_samp + (size_t)(e->prof_runs - 1) * (size_t)m->nnodes,
			       e->prof_ns, (size_t)m->nnodes * sizeof(*e->prof_ns));
		e->prof_runs++;
		memset(e->prof_ns, 0, (size_t)m->nnodes * sizeof(*e->prof_ns));
	}
	for (int i = 0; i < noutputs; i++) {
		int v = outv[i];
		int dup = 0;

		for (int j = 0; j < i; j++)
			dup |= outv[j] == v;
		if (slot[v] == NULL) {
			rc = lr_fail(msg, LR_EMODEL, "%s '%s' was not computed",
				     want ? "value" : "graph output", m->values[v].name);
			goto out;
		}
		if (want == NULL && (rc = check_output(&m->values[v], slot[v], msg)) != 0)
			goto out;
		if (slot[v]->blocked) {
			rc = lr_tensor_unblock(&outputs[i], slot[v]);
			if (rc != 0)
				goto out;
		} else if (owned[v] && !dup) {
			outputs[i] = slot[v];
			slot[v] = NULL;
			owned[v] = 0;
		} else {
			rc = lr_tensor_clone(&outputs[i], slot[v]);
			if (rc != 0)
				goto out;
		}
	}
out:
	if (slot != NULL)
		for (int v = 0; v < m->nvalues; v++)
			if (owned[v])
				lr_tensor_free(slot[v]);
	if (rc != 0)
		for (int i = 0; i < noutputs; i++) {
			lr_tensor_free(outputs[i]);
			outputs[i] = NULL;
		}
	if (inp != in)
		free(inp);
	if (outp != out)
		free(outp);
	if (conv != cv && conv != NULL) {
		for (int k = 0; k < maxio; k++)
			lr_tensor_free(conv[k]);
		free(conv);
	} else {
		for (int k = 0; k < 64; k++)
			lr_tensor_free(cv[k]);
	}
	free(slot);
	free(owned);
	free(keep);
	free(need);
	free(remaining);
	free(stack);
	free(passon);
	return rc;
}

/*
 * Runs image i's prefix (run context r); keep[0..ncut) gets the cut values
 * it hands on (see assemble).
 */
static int split_image(lr_engine *e, struct lr_run *r, const lr_tensor *x, int64_t i,
		       lr_tensor **keep, lr_msg *msg)
{
	int64_t n = x->dims[0], step = x->nelem / n * (int64_t)lr_dtype_size(x->dtype);
	int64_t dims[LR_MAX_DIMS];
	lr_tensor *view = NULL;
	int rc;

	memcpy(dims, x->dims, sizeof(dims));
	dims[0] = 1;
	rc = lr_tensor_wrap(&view, x->dtype, x->ndim, dims, (char *)x->data + i * step);
	if (rc == 0)
		rc = run_graph(e, r, &view, 1, NULL, NULL, 0, e->cut, e->ncut, keep, 0, msg);
	lr_tensor_free(view);
	return rc;
}

/* Images [first, n) of a parallel split run, taken in turn by the pool's threads. */
struct split_job {
	lr_engine *e;
	const lr_tensor *x;
	int64_t first;          /* 1 after image 0 ran alone, else 0 */
	lr_tensor **parts;      /* [n][ncut]: each image's cut values */
	int *fused;             /* [nthreads]: nodes fused in an image's run */
	int *blocked;           /* [nthreads]: nodes that wrote blocks in it */
	size_t *peak;           /* [nthreads]: each runner's activation peak */
	int *rc;                /* [nthreads]: each runner's first error */
	lr_msg *msg;            /* [nthreads]: and its message */
};

static void split_runner(void *arg, int64_t begin, int64_t end, int thread)
{
	struct split_job *j = arg;
	struct lr_run r = { NULL, &j->e->iscratch[thread], 1, 0, 0, 0, 0 };

	for (int64_t i = begin + j->first; i < end + j->first && j->rc[thread] == 0; i++) {
		j->rc[thread] = split_image(j->e, &r, j->x, i, j->parts + i * j->e->ncut,
					    &j->msg[thread]);
		j->fused[thread] = r.fused_nodes;
		j->blocked[thread] = r.blocked_nodes;
		if (r.peak_bytes > j->peak[thread])
			j->peak[thread] = r.peak_bytes;
	}
}

/*
 * full[] (the batch's cut values) from the n images' parts[n][ncut], which
 * are freed: each image's result in its place along the batch axis.
 */
static int assemble(lr_engine *e, int64_t n, lr_tensor **parts, lr_tensor **full, lr_msg *msg)
{
	int rc = 0;

	for (int c = 0; c < e->ncut && rc == 0; c++) {
		const lr_tensor *t0 = parts[c];
		size_t bytes = lr_tensor_bytes(t0);
		int64_t fd[LR_MAX_DIMS];

		if (t0->ndim < 1 || t0->dims[0] != 1) {
			rc = lr_fail(msg, LR_EMODEL, "value '%s': an image's result does not have batch 1",
				     e->m->values[e->cut[c]].name);
			break;
		}
		memcpy(fd, t0->dims, sizeof(fd));
		fd[0] = n;
		rc = lr_tensor_create(&full[c], t0->dtype, t0->ndim, fd, 1);
		for (int64_t i = 0; i < n && rc == 0; i++) {
			const lr_tensor *t = parts[i * e->ncut + c];

			if (t->dtype != t0->dtype || lr_tensor_bytes(t) != bytes)
				rc = lr_fail(msg, LR_EMODEL, "value '%s': image %lld of %lld gave a "
					     "result of another shape than image 0",
					     e->m->values[e->cut[c]].name, (long long)i, (long long)n);
			else
				memcpy((char *)full[c]->data + (size_t)i * bytes, t->data, bytes);
		}
	}
	for (int64_t k = 0; k < n * e->ncut; k++) {
		lr_tensor_free(parts[k]);
		parts[k] = NULL;
	}
	return rc;
}

/*
 * Whether a split run of n images may run them in parallel, one per
 * thread (see run_split). Measured, 2 threads, images in parallel against
 * one at a time with both threads on each: the Fashion-MNIST ResNet (0.3
 * MB per image) at batch 256 0.77, compressed 0.64; at batch 8 (which
 * before ran batched) 0.57 and 0.84. Large images were first measured
 * 1.03-1.17x slower in parallel and kept to one at a time (images of at
 * most 1 MiB only); measured again (ABBA, 4 rounds each) they gain as
 * much: MobileNet-v2 (6 MB per image) 0.62 at batch 8 and 0.63 at batch
 * 4, ResNet-50 0.84 and 0.81, GoogLeNet 0.72, VGG-16 (27 MB) 0.96 at
 * batch 8. So every image size runs in parallel.
 */
static int img_parallel(const lr_engine *e, int64_t n)
{
	return e->img_par && e->nthreads > 1 && n - 1 >= e->nthreads && e->prof_ns == NULL;
}

/*
 * A run of n > 1 images as the prefix once per image, then the rest on
 * the batch (see plan_split); outputs as run_graph's.
 *
 * With a pool of t threads and at least t images after the first, images
 * run in parallel, one per thread, each of its kernels inline (see
 * img_parallel): a 28 x 28 image's maps are too small to give two
 * threads work without their synchronisation costing, and larger ones
 * scale better as whole images than kernel by kernel. On the engine's
 * first split run image 0 runs first, alone with the whole pool: it
 * fills the node caches (packed weights), which the runners only ever
 * read (lr_opctx.cache_ro), and measures the image's peak; later runs
 * take every image in parallel. Each image keeps its cut values, which
 * are then copied into the batch (assemble). Every
 * kernel computes an image the same way with any number of threads, so
 * the results are the serial run's (test_split). LR_NO_IMAGE_PARALLEL
 * (set at creation) runs images one after the other; LR_PROFILE too (a
 * profile times nodes one at a time).
 */
static int run_split(lr_engine *e, const lr_tensor *x, lr_tensor **outputs, lr_msg *msg)
{
	int64_t n = x->dims[0];
	int nt = e->nthreads;
	lr_tensor **full = calloc((size_t)e->ncut, sizeof(*full));
	lr_tensor **parts = calloc((size_t)(n * e->ncut), sizeof(*parts));
	size_t peak = 0, cutbytes = 0, *tpeak = calloc((size_t)nt, sizeof(size_t));
	int *trc = calloc((size_t)nt, sizeof(int)), *tfused = calloc((size_t)nt, sizeof(int));
	int *tblk = calloc((size_t)nt, sizeof(int));
	lr_msg *tmsg = calloc((size_t)nt, sizeof(lr_msg));
	struct lr_run r = run_serial(e, 1);
	int rc = 0, fused = 0, blocked = 0, par = img_parallel(e, n);
	/* Image 0 alone first unless the caches are filled: every image in
	 * parallel then. */
	int all = par && e->split_warm;

	if (full == NULL || parts == NULL || tpeak == NULL || trc == NULL || tfused == NULL ||
	    tblk == NULL || tmsg == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	if (!all) {
		rc = split_image(e, &r, x, 0, parts, msg);
		if (rc != 0)
			goto out;
		fused = r.fused_nodes;
		blocked = r.blocked_nodes;
		peak = r.peak_bytes;
	}
	if (par && e->iscratch == NULL) {
		/* Each runner's scratch: one slot (its kernels run inline). */
		e->iscratch = calloc((size_t)nt, sizeof(*e->iscratch));
		for (int t = 0; e->iscratch != NULL && t < nt; t++) {
			e->iscratch[t].buf = calloc(1, sizeof(void *));
			e->iscratch[t].bytes = calloc(1, sizeof(size_t));
			e->iscratch[t].n = e->iscratch[t].buf != NULL && e->iscratch[t].bytes != NULL;
		}
		if (e->iscratch == NULL) {
			rc = LR_ENOMEM;
			goto out;
		}
	}
	if (par) {
		struct split_job j = { e, x, all ? 0 : 1, parts, tfused, tblk, tpeak, trc, tmsg };

		lr_pool_run_indexed(e->pool, n - j.first, 1, split_runner, &j);
		for (int t = 0; t < nt; t++) {
			if (trc[t] != 0 && rc == 0) {
				rc = trc[t];
				if (msg != NULL)
					*msg = tmsg[t];
			}
			if (tpeak[t] > peak)
				peak = tpeak[t];
			if (all && tfused[t] > fused)
				fused = tfused[t];
			if (all && tblk[t] > blocked)
				blocked = tblk[t];
		}
	} else {
		for (int64_t i = 1; i < n && rc == 0; i++) {
			rc = split_image(e, &r, x, i, parts + i * e->ncut, msg);
			if (r.peak_bytes > peak)
				peak = r.peak_bytes;
		}
	}
	if (rc == 0)
		rc = assemble(e, n, parts, full, msg);
	if (rc != 0)
		goto out;
	e->img_peak = peak;
	/* In parallel, what t images in flight may hold (however the threads
	 * took them this time: a busy machine may leave one doing all). */
	if (par)
		peak *= (size_t)nt;
	for (int c = 0; c < e->ncut; c++)
		cutbytes += lr_tensor_bytes(full[c]);
	r = run_serial(e, 1);
	rc = run_graph(e, &r, (lr_tensor *const *)&x, 1, e->cut, full, e->ncut, NULL, 0,
		       outputs, 0, msg);
	e->fused_nodes = r.fused_nodes + fused;
	e->blocked_nodes = r.blocked_nodes + blocked;
	e->peak_bytes = (r.peak_bytes > peak ? r.peak_bytes : peak) + cutbytes;
	if (rc == 0)
		e->split_warm = 1;
out:
	for (int c = 0; full != NULL && c < e->ncut; c++)
		lr_tensor_free(full[c]);
	for (int64_t k = 0; parts != NULL && k < n * e->ncut; k++)
		lr_tensor_free(parts[k]);
	free(parts);
	free(full);
	free(tpeak);
	free(trc);
	free(tfused);
	free(tblk);
	free(tmsg);
	return rc;
}

/* One full run: split image by image where plan_split allowed it. */
static int run_full(lr_engine *e, lr_tensor *const *inputs, int ninputs,
		    lr_tensor **outputs, int dry, lr_msg *msg)
{
	const lr_tensor *x = ninputs == 1 ? inputs[0] : NULL;
	int rc, can = e->ncut > 0 && !dry && e->observer == NULL && x != NULL &&
		      x->ndim == e->m->values[e->m->inputs[0]].ndim && x->ndim >= 1 &&
		      x->dims[0] > 1 && x->data != NULL && x->dtype != LR_DT_STRING &&
		      check_input(&e->m->values[e->m->inputs[0]], x, NULL) == 0;

	if (can && (e->img_peak == 0 || e->img_peak > e->split_min / (size_t)x->dims[0] ||
		    img_parallel(e, x->dims[0])))
		return run_split(e, x, outputs, msg);
	{
		struct lr_run r = run_serial(e, 1);

		rc = run_graph(e, &r, inputs, ninputs, NULL, NULL, 0, NULL, 0, outputs, dry, msg);
		e->peak_bytes = r.peak_bytes;
		e->fused_nodes = r.fused_nodes;
		e->blocked_nodes = r.blocked_nodes;
	}
	if (can && rc == 0)
		e->img_peak = e->peak_bytes / (size_t)x->dims[0];
	return rc;
}

int lr_engine_run(lr_engine *e, lr_tensor *const *inputs, int ninputs,
		  lr_tensor **outputs, int noutputs, int dry, lr_msg *msg)
{
	int n = e->m->noutputs, rc;
	lr_tensor **all;

	for (int i = n; i < noutputs; i++)
		outputs[i] = NULL;
	if (noutputs >= n)
		return run_full(e, inputs, ninputs, outputs, dry, msg);
	all = calloc((size_t)n, sizeof(*all));
	if (all == NULL)
		return LR_ENOMEM;
	rc = run_full(e, inputs, ninputs, all, dry, msg);
	for (int i = 0; i < n; i++) {
		if (rc == 0 && i < noutputs)
			outputs[i] = all[i];
		else
			lr_tensor_free(all[i]);
	}
	for (int i = 0; rc != 0 && i < noutputs; i++)
		outputs[i] = NULL;
	free(all);
	return rc;
}

int lr_engine_run_segment(lr_engine *e, lr_tensor *const *inputs, int ninputs,
			  const int *seed_values, lr_tensor *const *seeds, int nseeds,
			  const int *want, int nwant, lr_tensor **wanted, lr_msg *msg)
{
	const lr_model *m = e->m;

	for (int i = 0; i < nseeds; i++)
		if (seed_values[i] < 0 || seed_values[i] >= m->nvalues || seeds[i] == NULL)
			return lr_fail(msg, LR_EINVAL, "segment seed %d is not a value of the model", i);
	for (int i = 0; i < nwant; i++)
		if (want[i] < 0 || want[i] >= m->nvalues)
			return lr_fail(msg, LR_EINVAL, "segment output %d is not a value of the model", i);
	{
		struct lr_run r = run_serial(e, 0);
		int rc = run_graph(e, &r, inputs, ninputs, seed_values, seeds, nseeds, want, nwant,
				   wanted, 0, msg);

		e->peak_bytes = r.peak_bytes;
		e->fused_nodes = r.fused_nodes;
		e->blocked_nodes = r.blocked_nodes;
		return rc;
	}
}
