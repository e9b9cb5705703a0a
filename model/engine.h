/*
 * engine.h - running an ONNX model (float32 NCHW activations, and every
 * element type of tensor.h where the model uses them).
 *
 * DESIGN. An engine binds a loaded model to a thread pool. A run feeds the
 * graph inputs, executes nodes in the loader's topological order, and frees
 * every intermediate tensor right after its last consumer has run, so peak
 * memory is the widest cut of the graph, not the sum of all activations.
 * The engine counts the bytes of live activations and reports the peak.
 * Convolutions and matrix products go through OpenBLAS SGEMM; OpenBLAS's
 * thread count is set to the engine's thread count at creation (OpenBLAS
 * keeps one process-wide setting, so engines in one process should agree).
 *
 * Before each kernel the engine hands it its inputs in the types it takes
 * (lr_op_def.native_in: other integer and bool types are widened to int64
 * copies, double and float16 refused with a message), and graph inputs
 * and outputs must have the element type the model declares (types
 * lowrank does not hold, such as string or bfloat16, are refused naming
 * the tensor).
 *
 * A dry run propagates shapes only: float tensors carry no data, int64
 * shape arithmetic is computed for real (small tensors of other types are
 * computed when their inputs are known). It costs microseconds and gives
 * every tensor's shape for a given input shape (used by `lowrank inspect`
 * and the solver's cost model).
 *
 * A batch of several images runs the graph's longest prefix of per-image
 * nodes (convolutions, pooling, activations, ...) once per image and the
 * rest on the whole batch, with the same results (engine.c, plan_split):
 * activations stay in cache, and the peak is one image's.
 *
 * An optional observer is called after each node with its outputs, which
 * is how the solver collects layer responses without a second engine
 * (observed runs are never split: the observer sees whole batches).
 */
#ifndef LR_ENGINE_H
#define LR_ENGINE_H

#include <stddef.h>

#include "model/lr.h"
#include "model/onnx.h"
#include "model/tensor.h"

typedef struct lr_engine lr_engine;

/*
 * Called after node `node_index` ran; `outs` are its outputs (NULL where
 * omitted). Return 0 to continue, negative to abort the run with that code.
 * The tensors are owned by the engine and valid only during the call,
 * except that the observer may keep a reference by cloning.
 */
typedef int (*lr_engine_observer)(void *ud, const lr_model *m, int node_index,
				  lr_tensor *const *outs, int nout);

/*
 * Creates an engine for `m` (borrowed; must outlive the engine) using
 * `nthreads` threads (<= 0: number of online CPUs). Returns 0 or LR_ENOMEM.
 */
int lr_engine_create(lr_engine **out, const lr_model *m, int nthreads);

/* Frees the engine. NULL is a no-op. */
void lr_engine_free(lr_engine *e);

/* Installs (or with fn == NULL removes) the per-node observer. */
void lr_engine_set_observer(lr_engine *e, lr_engine_observer fn, void *ud);

/*
 * With `on`, runs only kernels shaped like ONNX Runtime's, for timings
 * that rank selection compares (solver/cost.c): thin stride-1
 * convolutions on maps below 112 x 112 go to the direct NCHWc kernels
 * instead of the faster positions-in-lanes kernel (model/conv_lanes.c),
 * which ran them 1.3-1.6x faster than ONNX Runtime does and so priced
 * rank-16 pairs 20-40% too cheap against their original layer
 * (bench/pairs.sh, docs/benchmarks.md), and those layers, and strided
 * thin ones, read and write channel blocks as ONNX Runtime's do (the
 * layout plan is made again, with a dry run of the declared input).
 * Results are the same either way (within float rounding). Set it before
 * the first run: packed weights are kept per kernel.
 */
void lr_engine_set_pricing(lr_engine *e, int on);

/*
 * Runs the model. `inputs[i]` feeds m->inputs[i] (borrowed, not modified);
 * all m->ninputs must be given. On success outputs[i] receives a new
 * tensor for m->outputs[i] (caller frees each with lr_tensor_free); at most
 * `noutputs` are returned. With `dry` set only shapes are computed.
 * Errors name the failing node: LR_ESHAPE, LR_EMODEL, LR_EUNSUPPORTED,
 * LR_ENOMEM, or an observer's code.
 */
int lr_engine_run(lr_engine *e, lr_tensor *const *inputs, int ninputs,
		  lr_tensor **outputs, int noutputs, int dry, lr_msg *msg);

/*
 * Runs part of the model: `seeds[i]` (borrowed) stand for the values with
 * index `seed_values[i]`, and only the nodes needed to compute the values
 * `want[0..nwant)` from the seeds, the initializers and the graph inputs
 * run. Graph inputs the segment does not need may be NULL in `inputs`.
 * On success wanted[i] receives a new tensor for want[i] (caller frees).
 * The observer sees the nodes that run. This is how the solver advances a
 * cached cut of the network layer by layer instead of rerunning it from
 * the input. Errors as lr_engine_run; a needed value that is neither
 * seeded nor computable gives LR_EMODEL naming it.
 */
int lr_engine_run_segment(lr_engine *e, lr_tensor *const *inputs, int ninputs,
			  const int *seed_values, lr_tensor *const *seeds, int nseeds,
			  const int *want, int nwant, lr_tensor **wanted, lr_msg *msg);

/* Peak bytes of live activations during the last run (split image by
 * image: the largest image's peak plus the batch tensors handed from the
 * per-image part to the rest). */
size_t lr_engine_peak_bytes(const lr_engine *e);

/* Nodes of the last run whose work a Conv did (a fused activation, a
 * folded BatchNormalization). */
int lr_engine_fused_nodes(const lr_engine *e);

/* Nodes of the last run that wrote channel-blocked values (engine.c,
 * plan_blocked), as lr_engine_fused_nodes counts: a batch run image by
 * image counts one image's part once. 0 with LR_NO_BLOCKED, an observer,
 * or no AVX-512 direct kernels. */
int lr_engine_blocked_nodes(const lr_engine *e);

/* Number of threads the engine uses. */
int lr_engine_threads(const lr_engine *e);

#endif /* LR_ENGINE_H */
