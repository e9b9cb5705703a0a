/*
 * pool.c - worker threads for data-parallel loops. See pool.h.
 *
 * Each run publishes (fn, arg, n, nchunks) under the mutex, resets the
 * count of finished chunks and every thread's claim word, which holds the
 * run's generation (low 32 bits) above the next chunk of that thread's
 * range, and bumps the generation counter. The chunks are dealt in
 * contiguous ranges, one per thread (the caller's first): a thread takes
 * its own range's chunks in order and then helps with the others' from
 * their fronts. A thread claims a chunk by a compare-and-swap of a claim
 * word that keeps the generation it saw: a worker that wakes late, after
 * its run is over, finds another generation there and claims nothing,
 * and a successful claim proves the run is not over (its chunk is not
 * finished), so the run's parameters stay put while it runs the chunk.
 * Own ranges first, because the kernels cut their work the same way from
 * one node to the next (the top rows first), so a thread mostly reads
 * what it wrote: on this VM, whose two cores are ~470 ns apart (a cache
 * line's round trip), MobileNet-v2 at batch 1 on 2 threads ran in 4.42-4.60
 * ms with ranges against 4.80-4.94 with every chunk taken in turn (8
 * rounds). The caller takes chunks too and waits until every chunk is
 * finished, not for every worker to check in: a worker that the
 * machine's other work keeps off a core delays nobody (two threads were
 * slower than one on MobileNet-v2 under load when the caller waited for
 * the late worker at every node). Up to 4 chunks per thread. Loop bodies
 * only map indices to outputs, so how a range is cut does not change a
 * result.
 *
 * Waiting spins first, then blocks: a model runs one parallel loop per
 * node, often well under 100 us apart, and a futex wake-up costs tens of
 * microseconds (more on a loaded machine), which on MobileNet-v2 made two
 * threads slower than one. Workers poll the generation and the caller
 * polls the finished chunks for up to LR_POOL_SPIN_US (the environment variable of
 * that name overrides it per pool; 0 sleeps at once) before sleeping on the
 * condition variables, so between the nodes of one run nobody sleeps and
 * between runs (or when idle) nobody spins for long; after the first
 * LR_POOL_PAUSE_US the spin yields the core on each poll, so a spinning
 * thread does not keep a descheduled one (or other processes) off a
 * shared core. ONNX Runtime's pool spins the same way (longer).
 */
#include "config.h"

#include "model/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define POOL_PAUSE() _mm_pause()
#else
#define POOL_PAUSE() ((void)0)
#endif

#ifndef LR_POOL_SPIN_US
#define LR_POOL_SPIN_US 200     /* spin this long before sleeping */
#endif
#ifndef LR_POOL_PAUSE_US
#define LR_POOL_PAUSE_US 20     /* then yield the core between polls */
#endif
#define LR_POOL_CHUNKS 4        /* chunks per thread */

struct lr_pool {
	int nthreads;           /* including the caller */
	int64_t spin_us;        /* spin budget (LR_POOL_SPIN_US, env overrides) */
	pthread_t *threads;     /* nthreads - 1 workers */
	pthread_mutex_t mu;     /* guards the sleeps and the run's parameters */
	pthread_cond_t wake;    /* workers wait for a new generation */
	pthread_cond_t done;    /* caller waits for finished == nchunks */
	_Atomic uint64_t generation; /* bumped per run (after the parameters) */
	_Atomic int stop;       /* 1: workers exit */
	int sleepers;           /* workers blocked on `wake` (under mu) */
	_Atomic int64_t nchunks; /* chunks of [0, n) (read before a claim) */
	struct pool_claim *claim; /* per thread: its range's next chunk */
	_Atomic int64_t finished; /* chunks of this run finished */
	lr_pool_fn fn;          /* current loop body (plain) */
	lr_pool_ifn ifn;        /* current loop body (indexed), or NULL */
	void *arg;              /* its argument */
	int64_t n;              /* range size */
};

/* Thread t's range of chunks, [t * nchunks / nthreads, (t + 1) * ...),
 * next chunk << 32 | generation (low 32 bits); a cache line each. */
struct pool_claim {
	_Alignas(64) _Atomic uint64_t w;
};

struct worker_arg {
	lr_pool *p;
	int index; /* 1 .. nthreads-1 */
};

static void chunk_range(int64_t n, int parts, int i, int64_t *b, int64_t *e)
{
	int64_t base = n / parts, rem = n % parts;

	*b = (int64_t)i * base + (i < rem ? i : rem);
	*e = *b + base + (i < rem ? 1 : 0);
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * One poll of a spin that started at *t0 (0: not yet): pauses, or after
 * LR_POOL_PAUSE_US yields the core. Returns 0 once LR_POOL_SPIN_US passed.
 */
static int spin_step(const lr_pool *p, unsigned i, int64_t *t0, int *yield)
{
	if (p->spin_us <= 0)
		return 0;
	if ((i & 15u) == 0 || *yield) {
		int64_t t = now_us();

		if (*t0 == 0)
			*t0 = t;
		else if (t - *t0 > p->spin_us)
			return 0;
		else if (t - *t0 > LR_POOL_PAUSE_US)
			*yield = 1;
	}
	if (*yield)
		sched_yield();
	else
		POOL_PAUSE();
	return 1;
}

/* Spins until *gen != seen or stop, for at most LR_POOL_SPIN_US; 1 if it changed. */
static int spin_generation(lr_pool *p, uint64_t seen)
{
	int64_t t0 = 0;
	int yield = 0;

	for (unsigned i = 0;; i++) {
		if (atomic_load_explicit(&p->generation, memory_order_acquire) != seen ||
		    atomic_load_explicit(&p->stop, memory_order_relaxed))
			return 1;
		if (!spin_step(p, i, &t0, &yield))
			return 0;
	}
}

/*
 * Takes and runs chunks of run `gen` until none is left (or that run is
 * over); the thread that finishes the last chunk wakes a sleeping caller.
 */
static void take_chunks(lr_pool *p, int index, uint64_t gen)
{
	/* Its own range first, then the others' from their fronts. */
	for (int k = 0; k < p->nthreads; k++) {
		int r = (index + k) % p->nthreads;
		_Atomic uint64_t *cw = &p->claim[r].w;
		uint64_t c = atomic_load_explicit(cw, memory_order_acquire);

		for (;;) {
			int64_t i = (int64_t)(c >> 32), b, e;
			int64_t nch = atomic_load_explicit(&p->nchunks, memory_order_acquire);

			if ((uint32_t)c != (uint32_t)gen)
				return; /* the run is over */
			if (i >= (int64_t)(r + 1) * nch / p->nthreads)
				break;  /* range r is taken */
			if (!atomic_compare_exchange_weak_explicit(cw, &c, c + ((uint64_t)1 << 32),
								   memory_order_acq_rel,
								   memory_order_acquire))
				continue; /* c now holds the current word */
			/* Chunk i of run gen is ours: the run cannot end before it. */
			chunk_range(p->n, (int)nch, (int)i, &b, &e);
			if (p->ifn != NULL)
				p->ifn(p->arg, b, e, index);
			else
				p->fn(p->arg, b, e);
			if (atomic_fetch_add_explicit(&p->finished, 1, memory_order_acq_rel) == nch - 1) {
				pthread_mutex_lock(&p->mu);
				pthread_cond_signal(&p->done);
				pthread_mutex_unlock(&p->mu);
				return;
			}
			c = atomic_load_explicit(cw, memory_order_acquire);
		}
	}
}

static void *worker_main(void *vp)
{
	struct worker_arg *wa = vp;
	lr_pool *p = wa->p;
	int index = wa->index;
	uint64_t seen = 0;

	free(wa);
	for (;;) {
		if (!spin_generation(p, seen)) {
			pthread_mutex_lock(&p->mu);
			p->sleepers++;
			while (!atomic_load(&p->stop) && atomic_load(&p->generation) == seen)
				pthread_cond_wait(&p->wake, &p->mu);
			p->sleepers--;
			pthread_mutex_unlock(&p->mu);
		}
		if (atomic_load(&p->stop))
			break;
		seen = atomic_load_explicit(&p->generation, memory_order_acquire);
		take_chunks(p, index, seen);
	}
	return NULL;
}

lr_pool *lr_pool_create(int nthreads)
{
	lr_pool *p;

	if (nthreads < 1)
		nthreads = 1;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->nthreads = 1;
	p->claim = aligned_alloc(64, (size_t)nthreads * sizeof(*p->claim));
	if (p->claim == NULL) {
		free(p);
		return NULL;
	}
	for (int i = 0; i < nthreads; i++)
		atomic_init(&p->claim[i].w, 0);
	p->spin_us = LR_POOL_SPIN_US;
	if (getenv("LR_POOL_SPIN_US") != NULL)
		p->spin_us = strtoll(getenv("LR_POOL_SPIN_US"), NULL, 10);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->done, NULL);
	if (nthreads > 1) {
		p->threads = calloc((size_t)nthreads - 1, sizeof(pthread_t));
		if (p->threads == NULL)
			goto fail;
		for (int i = 1; i < nthreads; i++) {
			struct worker_arg *wa = malloc(sizeof(*wa));

			if (wa == NULL)
				goto fail;
			wa->p = p;
			wa->index = i;
			if (pthread_create(&p->threads[i - 1], NULL,
					   worker_main, wa) != 0) {
				free(wa);
				goto fail;
			}
			p->nthreads++;
		}
	}
	return p;
fail:
	lr_pool_free(p);
	return NULL;
}

void lr_pool_free(lr_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->stop, 1);
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	for (int i = 1; i < p->nthreads; i++)
		pthread_join(p->threads[i - 1], NULL);
	free(p->threads);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->wake);
	pthread_cond_destroy(&p->done);
	free(p->claim);
	free(p);
}

int lr_pool_size(const lr_pool *p)
{
	return p ? p->nthreads : 1;
}

static void run_common(lr_pool *p, int64_t n, int64_t grain, lr_pool_fn fn,
		       lr_pool_ifn ifn, void *arg)
{
	int parts;
	int64_t nch;
	uint64_t gen;

	if (n <= 0)
		return;
	if (grain < 1)
		grain = 1;
	parts = p ? p->nthreads : 1;
	if ((int64_t)parts > n / grain)
		parts = (int)(n / grain);
	if (parts <= 1) {
		if (ifn != NULL)
			ifn(arg, 0, n, 0);
		else
			fn(arg, 0, n);
		return;
	}
	pthread_mutex_lock(&p->mu);
	gen = atomic_load_explicit(&p->generation, memory_order_relaxed) + 1;
	/*
	 * The claim words move to the new generation before anything else
	 * changes: a worker still holding the previous run's word (all of
	 * whose chunks are taken) fails its compare-and-swap from here on,
	 * and one that sees the new chunk count (acquire, below) also sees
	 * these words. Otherwise a late worker could read the new count, pass
	 * its bound check with an old word and claim a chunk of the new run
	 * that the new run hands out again.
	 */
	nch = n / grain < (int64_t)parts * LR_POOL_CHUNKS ? n / grain
							  : (int64_t)parts * LR_POOL_CHUNKS;
	for (int r = 0; r < p->nthreads; r++)
		atomic_store_explicit(&p->claim[r].w,
				      (uint64_t)((int64_t)r * nch / p->nthreads) << 32 | (uint32_t)gen,
				      memory_order_seq_cst);
	p->fn = fn;
	p->ifn = ifn;
	p->arg = arg;
	p->n = n;
	atomic_store_explicit(&p->finished, 0, memory_order_relaxed);
	atomic_store_explicit(&p->nchunks, nch, memory_order_release);
	atomic_store_explicit(&p->generation, gen, memory_order_release);
	if (p->sleepers > 0)
		pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);

	take_chunks(p, 0, gen);
	{
		int64_t t0 = 0;
		int yield = 0;

		for (unsigned i = 0; atomic_load_explicit(&p->finished, memory_order_acquire) < nch; i++)
			if (!spin_step(p, i, &t0, &yield))
				break;
	}
	if (atomic_load_explicit(&p->finished, memory_order_acquire) < nch) {
		pthread_mutex_lock(&p->mu);
		while (atomic_load(&p->finished) < nch)
			pthread_cond_wait(&p->done, &p->mu);
		pthread_mutex_unlock(&p->mu);
	}
}

void lr_pool_run(lr_pool *p, int64_t n, int64_t grain, lr_pool_fn fn,
		 void *arg)
{
	run_common(p, n, grain, fn, NULL, arg);
}

void lr_pool_run_indexed(lr_pool *p, int64_t n, int64_t grain, lr_pool_ifn fn,
			 void *arg)
{
	run_common(p, n, grain, NULL, fn, arg);
}
