/*
 * pool.h - a fixed set of worker threads for data-parallel loops.
 *
 * DESIGN. Kernels that OpenBLAS does not cover (im2col, depthwise
 * convolution, pooling, elementwise maps) split an index range into
 * contiguous chunks (up to 4 per thread), dealt in one contiguous range
 * per thread: each thread runs its own range first (thread 0, the
 * caller, the front of the index range), then helps with the others'.
 * The pool owns nthreads-1 threads; the calling thread takes chunks too,
 * so a pool of one thread runs everything inline with no synchronisation.
 * A thread may run several chunks, one at a time; loop bodies must not
 * depend on where the range is cut. One lr_pool_run() at a time per pool
 * (the engine runs nodes sequentially).
 */
#ifndef LR_POOL_H
#define LR_POOL_H

#include <stdint.h>

typedef struct lr_pool lr_pool;

/* Body of a parallel loop: process indices [begin, end). */
typedef void (*lr_pool_fn)(void *arg, int64_t begin, int64_t end);

/* Creates a pool of `nthreads` (>= 1). Returns NULL on failure. */
lr_pool *lr_pool_create(int nthreads);

/* Joins the threads and frees the pool. NULL is a no-op. */
void lr_pool_free(lr_pool *p);

/* Number of threads (including the caller). A NULL pool has 1. */
int lr_pool_size(const lr_pool *p);

/*
 * Runs fn over [0, n) split in contiguous chunks and returns when all are
 * done. Ranges smaller than `grain` per thread use fewer threads. A NULL
 * pool runs fn(arg, 0, n) inline.
 */
void lr_pool_run(lr_pool *p, int64_t n, int64_t grain, lr_pool_fn fn,
		 void *arg);

/* Body of an indexed parallel loop: also gets the chunk's thread index. */
typedef void (*lr_pool_ifn)(void *arg, int64_t begin, int64_t end, int thread);

/*
 * Like lr_pool_run(), but fn also receives the index (0 .. size-1) of the
 * thread running the chunk, e.g. to pick a per-thread scratch buffer.
 */
void lr_pool_run_indexed(lr_pool *p, int64_t n, int64_t grain, lr_pool_ifn fn,
			 void *arg);

#endif /* LR_POOL_H */
