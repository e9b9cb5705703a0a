/*
 * pool.c - worker threads for data-parallel loops. See pool.h.
 *
 * Each run publishes (fn, arg, n, chunk) under the mutex and bumps a
 * generation counter; workers wake, take their fixed chunk index, run it,
 * and count down `pending`. The caller runs chunk 0 and waits for zero.
 */
#include "config.h"

#include "model/pool.h"

#include <pthread.h>
#include <stdlib.h>

struct lr_pool {
	int nthreads;           /* including the caller */
	pthread_t *threads;     /* nthreads - 1 workers */
	pthread_mutex_t mu;     /* guards everything below */
	pthread_cond_t wake;    /* workers wait for a new generation */
	pthread_cond_t done;    /* caller waits for pending == 0 */
	uint64_t generation;    /* bumped per run */
	int stop;               /* 1: workers exit */
	int pending;            /* workers still running this generation */
	int active;             /* chunks in this run (<= nthreads) */
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

static void *worker_main(void *vp)
{
	struct worker_arg *wa = vp;
	lr_pool *p = wa->p;
	int index = wa->index;
	uint64_t seen = 0;

	free(wa);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && p->generation == seen)
			pthread_cond_wait(&p->wake, &p->mu);
		if (p->stop)
			break;
		seen = p->generation;
		if (index < p->active) {
			lr_pool_fn fn = p->fn;
			lr_pool_ifn ifn = p->ifn;
			void *arg = p->arg;
			int64_t b, e;

			chunk_range(p->n, p->active, index, &b, &e);
			pthread_mutex_unlock(&p->mu);
			if (ifn != NULL)
				ifn(arg, b, e, index);
			else
				fn(arg, b, e);
			pthread_mutex_lock(&p->mu);
			if (--p->pending == 0)
				pthread_cond_signal(&p->done);
		}
	}
	pthread_mutex_unlock(&p->mu);
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
	p->stop = 1;
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
	int64_t b, e;

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
	p->pending = parts - 1;
	p->generation++;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);

	chunk_range(n, parts, 0, &b, &e);
	if (ifn != NULL)
		ifn(arg, b, e, 0);
	else
		fn(arg, b, e);

	pthread_mutex_lock(&p->mu);
	while (p->pending > 0)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
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
