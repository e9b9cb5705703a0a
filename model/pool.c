/*
 * pool.c - worker threads for data-parallel loops. See pool.h.
 *
 * Each run publishes (fn, arg, n, active, nchunks) under the mutex and
 * bumps a generation counter; every worker notices the new generation,
 * and when its index is below `active` takes chunks from a shared counter
 * until none is left, then counts down `pending` (all workers count down,
 * active or not, so none can mistake the next run's parameters for this
 * one's). The caller takes chunks too and waits for zero. Up to 4 chunks
 * per thread, taken in turn: a thread that the machine's other work
 * delays leaves its share to the others instead of making them wait.
 * Loop bodies only map indices to outputs, so how a range is cut does
 * not change a result.
 *
 * Waiting spins first, then blocks: a model runs one parallel loop per
 * node, often well under 100 us apart, and a futex wake-up costs tens of
 * microseconds (more on a loaded machine), which on MobileNet-v2 made two
 * threads slower than one. Workers poll the generation and the caller
 * polls `pending` for up to LR_POOL_SPIN_US (the environment variable of
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
	pthread_cond_t done;    /* caller waits for pending == 0 */
	_Atomic uint64_t generation; /* bumped per run (after the parameters) */
	_Atomic int stop;       /* 1: workers exit */
	_Atomic int pending;    /* workers yet to finish this generation */
	int sleepers;           /* workers blocked on `wake` (under mu) */
	int active;             /* threads in this run (<= nthreads) */
	int64_t nchunks;        /* chunks of [0, n) */
	_Atomic int64_t next;   /* next chunk to take */
	lr_pool_fn fn;          /* current loop body (plain) */
	lr_pool_ifn ifn;        /* current loop body (indexed), or NULL */
	void *arg;              /* its argument */
	int64_t n;              /* range size */
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

/* Takes and runs chunks of the current run until none is left. */
static void take_chunks(lr_pool *p, int index)
{
	for (;;) {
		int64_t i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed), b, e;

		if (i >= p->nchunks)
			return;
		chunk_range(p->n, (int)p->nchunks, (int)i, &b, &e);
		if (p->ifn != NULL)
			p->ifn(p->arg, b, e, index);
		else
			p->fn(p->arg, b, e);
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
		if (index < p->active)
			take_chunks(p, index);
		if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
			pthread_mutex_lock(&p->mu);
			pthread_cond_signal(&p->done);
			pthread_mutex_unlock(&p->mu);
		}
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
	p->fn = fn;
	p->ifn = ifn;
	p->arg = arg;
	p->n = n;
	p->active = parts;
	p->nchunks = n / grain < (int64_t)parts * LR_POOL_CHUNKS ? n / grain
								 : (int64_t)parts * LR_POOL_CHUNKS;
	atomic_store_explicit(&p->next, 0, memory_order_relaxed);
	atomic_store_explicit(&p->pending, p->nthreads - 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
	if (p->sleepers > 0)
		pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);

	take_chunks(p, 0);
	{
		int64_t t0 = 0;
		int yield = 0;

		for (unsigned i = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; i++)
			if (!spin_step(p, i, &t0, &yield))
				break;
	}
	if (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
		pthread_mutex_lock(&p->mu);
		while (atomic_load(&p->pending) > 0)
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
