/*
 * cost.h - the measured cost model: how long a convolution, and the
 * low-rank pair that would replace it, take in lowrank's engine, and a
 * timing cache so that repeated jobs do not measure again.
 *
 * DESIGN. A layer is timed alone: lr_conv_alone() builds a one-node model
 * holding exactly that Conv (its attributes and weights) fed by an input
 * of the deployment shape, and lr_conv_pair() turns it into the pair at a
 * given rank with the same rewrite the solver uses (seeded random factors:
 * speed does not depend on their values). lr_time_forward() runs a model
 * on seeded random input: after a warm-up (which also packs the weights)
 * it repeats the run until one sample takes about 1 ms, takes 3 x
 * `samples` samples (fewer for slow models: about 3 s, at least 5) and
 * reports their 10th percentile, which is robust to the other processes
 * of a shared machine: they only ever add time, and under load the median
 * drifts with them (measured: 4.9 to 9.2 ms for one model across runs
 * while the 10th percentile stayed within 2%). Models that are compared
 * (a layer and its candidates, the original model and the folded or
 * compressed one) are timed together by lr_time_models(): one sample of
 * each in turn, and each one's time is a median ratio to the first's
 * within the same rounds, so a load that comes and goes between two
 * separate measurements does not decide which candidate looks faster.
 *
 * The timing cache maps a text key (CPU, vector block, batch, threads and
 * the layer's full geometry, or a model's SHA-256) to seconds. It lives in
 * memory and, when given a path, in a small text file, one "seconds<TAB>
 * key" line per entry. Saving merges with what the file holds by then
 * (another job may have added entries) and replaces it atomically (a
 * temporary file in the same directory, fsync, rename, fsync of the
 * directory), so a reader sees the old or the new file, never a torn one.
 * Unparseable lines are skipped: a cache is never a reason to fail.
 * A cache handle is not thread-safe; give each job its own.
 */
#ifndef LR_SOLVER_COST_H
#define LR_SOLVER_COST_H

#include <stddef.h>
#include <stdint.h>

#include "model/lr.h"
#include "model/onnx.h"

typedef struct lr_timing_cache lr_timing_cache;

/*
 * Opens a cache backed by `path` (NULL: memory only). A missing file is an
 * empty cache. On success *out is the caller's (lr_timing_cache_free).
 * Errors: LR_ENOMEM; LR_EIO when the file exists but cannot be read.
 */
int lr_timing_cache_open(const char *path, lr_timing_cache **out, lr_msg *msg);

/* Looks `key` up: returns 1 and sets *seconds, or 0 when absent. */
int lr_timing_cache_get(const lr_timing_cache *c, const char *key, double *seconds);

/* Sets `key` (copied; tabs and newlines are replaced by blanks) to
 * `seconds`. Returns 0 or LR_ENOMEM. */
int lr_timing_cache_put(lr_timing_cache *c, const char *key, double seconds);

/* Entries in memory. */
int lr_timing_cache_count(const lr_timing_cache *c);

/*
 * Writes the entries added since opening (merged with the file's current
 * entries; ours win) to the file atomically. A memory-only cache or one
 * without new entries is a no-op. Errors: LR_EIO naming the path, LR_ENOMEM.
 */
int lr_timing_cache_save(lr_timing_cache *c, lr_msg *msg);

/* Frees the cache (without saving). NULL is a no-op. Returns NULL. */
lr_timing_cache *lr_timing_cache_free(lr_timing_cache *c);

/*
 * Seconds of one forward pass of `m` on a seeded random float input of
 * shape (ndim, dims) fed to its first graph input, with `threads` engine
 * threads: the 10th percentile of 3 x `samples` samples (>= 1; fewer when
 * that would take over 3 s, but at least 5) after a warm-up. Each sample
 * averages enough runs to take about 1 ms. `cancel` (may be
 * NULL) is polled between runs. Errors: the engine's, LR_ECANCELED.
 */
int lr_time_forward(const lr_model *m, int ndim, const int64_t *dims, int threads,
		    int samples, volatile int *cancel, double *seconds, lr_msg *msg);

/*
 * Times the n models ms[0..n) (all fed the same input, as lr_time_forward
 * does) interleaved, so that what the machine's other load does to one it
 * does to all: after each model's warm-up, 3 x `samples` rounds (more for
 * fast models, so that they cover at least `span` seconds, up to 100
 * times more; fewer for slow models: about 3 s per model, at least 5) each
 * take one sample of every model (after one untimed run when a sample
 * repeats the model, i.e. below 1 ms a run), starting one
 * model further along each round. sec[0] is
 * model 0's 10th percentile, as lr_time_forward() gives it; sec[i] is
 * sec[0] times the median over the rounds of model i's sample over model
 * 0's in the same round. A load that comes and goes between measurements
 * of separately timed models moved a candidate's time by 10-25% against
 * its layer's on this project's VM; in ratios taken within one round it
 * cancels. Holds all n engines at once. On error every sec[i] is -1.
 * Errors as lr_time_forward().
 */
int lr_time_models(const lr_model *const *ms, int n, int ndim, const int64_t *dims, int threads,
		   int samples, double span, volatile int *cancel, double *sec, lr_msg *msg);

/*
 * Seconds each node of `m` takes inside the model: the model runs as in
 * lr_time_forward() (same input and threads; 3 x `samples` runs, more
 * for fast models so that the runs span at least 0.5 s (up to 2000), fewer
 * when that would take over 3 s, at least 5) with an observer that marks
 * the time after each node; a node's
 * time is the span since the previous mark (its kernel plus the engine's
 * bookkeeping around it), and node_sec[i] (caller's array of m->nnodes)
 * receives the 10th percentile over the runs. Errors as lr_time_forward().
 */
int lr_time_nodes(const lr_model *m, int ndim, const int64_t *dims, int threads,
		  int samples, volatile int *cancel, double *node_sec, lr_msg *msg);

struct Onnx__NodeProto;
struct Onnx__TensorProto;

/*
 * Packs the nodes and initializers (none of them owned) into a serialized
 * ONNX model (IR version `ir`, default-domain opset `opset`, graph name
 * `gname`) with one float graph input `in` of shape dims[0..ndim) and one
 * float graph output `out`: *buf (malloc'd, the caller frees it) of *len
 * bytes, for lr_model_load_mem. The timing models of this module and of
 * solver/fc.c are built this way. Returns 0, LR_EINVAL (ndim not 1..8) or
 * LR_ENOMEM.
 */
int lr_cost_model_pack(struct Onnx__NodeProto **nodes, size_t nnodes,
		       struct Onnx__TensorProto **inits, size_t ninits, const char *in,
		       const int64_t *dims, int ndim, const char *out, int64_t ir, int64_t opset,
		       const char *gname, uint8_t **buf, size_t *len);

/*
 * A model holding only Conv node `node` of `m` (borrowed; its weight and
 * bias must be initializers), reading a graph input of shape
 * in_dims[0..4) (N, C, H, W) and writing the Conv's output. *out is the
 * caller's (lr_model_free). Errors: LR_EINVAL (not a 2-D Conv with
 * constant weights), LR_ENOMEM, the loader's.
 */
int lr_conv_alone(const lr_model *m, int node, const int64_t in_dims[4], lr_model **out,
		  lr_msg *msg);

/*
 * The low-rank pair at rank r in place of the Conv of a model from
 * lr_conv_alone() (node 0), with factors drawn from `seed`. *out is the
 * caller's. Errors as lr_rewrite_decompose().
 */
int lr_conv_pair(const lr_model *alone, int64_t r, uint64_t seed, lr_model **out, lr_msg *msg);

struct lr_decomp;

/*
 * Seeded random factors for node `node` with d outputs, c inputs and a
 * kh x kw kernel (a fully connected layer: kh = kw = 1) at rank r, or the
 * spatial triple at (r2, r) when r2 > 0: sets dc's ranks, arrays (pointing
 * into f) and their sizes. With f NULL it only counts: returns how many
 * floats f must hold; with f, fills them (uniform in +-0.01, from *seed)
 * first. Speed does not depend on the values: the timing models use them.
 */
int64_t lr_decomp_random(struct lr_decomp *dc, int node, int64_t d, int64_t c, int64_t kh,
			 int64_t kw, int64_t r, int64_t r2, float *f, uint64_t *seed);

/*
 * The spatial + channel triple (spatial.h) at d'' = r2 and d' = r in
 * place of the 2-D Conv of a model from lr_conv_alone(), factors drawn
 * from `seed`. *out is the caller's. Errors as lr_rewrite_decompose().
 */
int lr_conv_triple(const lr_model *alone, int64_t r2, int64_t r, uint64_t seed, lr_model **out,
		   lr_msg *msg);

/*
 * The cache key of Conv node `node` of `m` at input in_dims[0..4) and rank
 * r (0: the original layer): "<prefix>|conv|c=..|d=..|in=HxW|k=..|s=..|
 * p=..|dl=..|g=..|ap=..|b=N|r=R". Written into buf (len bytes).
 */
void lr_conv_cost_key(const lr_model *m, int node, const int64_t in_dims[4], int64_t r,
		      const char *prefix, char *buf, size_t len);

#endif /* LR_SOLVER_COST_H */
