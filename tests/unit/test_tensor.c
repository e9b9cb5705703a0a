/*
 * test_tensor.c - tensor creation limits, cloning, shape strings, and the
 * thread pool's coverage of index ranges.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/pool.h"
#include "model/tensor.h"
#include "tests/unit/tap.h"

static void mark(void *arg, int64_t b, int64_t e)
{
	int *hits = arg;

	for (int64_t i = b; i < e; i++)
		__atomic_add_fetch(&hits[i], 1, __ATOMIC_RELAXED);
}

/* Indexed body: counts hits, and fails if two chunks run at once with one
 * thread index (per-thread scratch would be shared) or an index >= 4. */
struct ixarg {
	int *hits;
	int busy[8];
	int bad;
};

static void mark_ix(void *arg, int64_t b, int64_t e, int thread)
{
	struct ixarg *a = arg;

	if (thread < 0 || thread >= 4 || __atomic_exchange_n(&a->busy[thread], 1, __ATOMIC_ACQ_REL)) {
		__atomic_store_n(&a->bad, 1, __ATOMIC_RELAXED);
		return;
	}
	for (int64_t i = b; i < e; i++)
		__atomic_add_fetch(&a->hits[i], 1, __ATOMIC_RELAXED);
	__atomic_store_n(&a->busy[thread], 0, __ATOMIC_RELEASE);
}

int main(void)
{
	lr_tensor *t = NULL, *u = NULL;
	int64_t d[3] = { 2, 3, 4 }, big[2] = { INT64_C(1) << 40, INT64_C(1) << 40 };
	int64_t neg[2] = { 2, -1 }, n;
	char buf[64];
	int hits[1000];

	tap_ok(lr_tensor_create(&t, LR_DT_FLOAT, 3, d, 1) == 0 && t->nelem == 24 &&
	       t->data != NULL && ((uintptr_t)t->data % 64) == 0,
	       "create [2,3,4] float: 24 elements, 64-byte aligned");
	for (int i = 0; i < 24; i++)
		((float *)t->data)[i] = (float)i * 0.5f;
	tap_ok(lr_tensor_clone(&u, t) == 0 && u->data != t->data &&
	       memcmp(u->data, t->data, 96) == 0 && u->ndim == 3 && u->dims[2] == 4,
	       "clone copies shape and data");
	tap_ok(strcmp(lr_shape_str(3, d, buf, sizeof(buf)), "[2,3,4]") == 0, "shape string");
	lr_tensor_free(u);
	tap_ok(lr_tensor_block(&u, t, 16) == LR_EINVAL && u == NULL,
	       "a 3-D tensor is not channel-blocked");
	lr_tensor_free(t);
	{
		/* [2, 32, 3, 5] into blocks of 16 and back: element (n, c, q)
		 * at ((n * 2 + c / 16) * 15 + q) * 16 + c % 16 */
		int64_t d4[4] = { 2, 32, 3, 5 };
		lr_tensor *b = NULL, *back = NULL;
		int at = 1;

		if (lr_tensor_create(&t, LR_DT_FLOAT, 4, d4, 1) != 0)
			return 1;
		for (int i = 0; i < 960; i++)
			((float *)t->data)[i] = (float)i;
		tap_ok(lr_tensor_block(&b, t, 16) == 0 && b->blocked == 16 && b->dims[1] == 32,
		       "block [2,32,3,5] in 16s");
		for (int nn = 0; b != NULL && nn < 2; nn++)
			for (int c = 0; c < 32; c++)
				for (int q = 0; q < 15; q++)
					at &= ((float *)b->data)[((nn * 2 + c / 16) * 15 + q) * 16 + c % 16] ==
					      (float)((nn * 32 + c) * 15 + q);
		tap_ok(at, "each value sits in lane c %% 16 of block c / 16, position by position");
		tap_ok(b != NULL && lr_tensor_clone(&u, b) == 0 && u->blocked == 16,
		       "a clone keeps the layout");
		lr_tensor_free(u);
		u = NULL;
		tap_ok(b != NULL && lr_tensor_unblock(&back, b) == 0 && back->blocked == 0 &&
		       memcmp(back->data, t->data, 960 * sizeof(float)) == 0,
		       "unblocking gives the C-order tensor back");
		tap_ok(lr_tensor_unblock(&u, t) == LR_EINVAL && lr_tensor_block(&u, t, 64) == LR_EINVAL,
		       "a C-order tensor is not unblocked, nor blocked in 64s (32 channels)");
		lr_tensor_free(b);
		lr_tensor_free(back);
		lr_tensor_free(t);
	}
	tap_ok(lr_tensor_create(&t, LR_DT_FLOAT, 2, big, 1) == LR_ELIMIT && t == NULL,
	       "overflowing byte size is refused with LR_ELIMIT");
	tap_ok(lr_tensor_create(&t, LR_DT_FLOAT, 2, neg, 1) == LR_EINVAL, "negative dim refused");
	tap_ok(lr_tensor_create(&t, LR_DT_FLOAT, LR_MAX_DIMS + 1, d, 0) == LR_EINVAL,
	       "rank above LR_MAX_DIMS refused");
	tap_ok(lr_tensor_create(&t, LR_DT_INT64, 0, NULL, 1) == 0 && t->nelem == 1 &&
	       lr_tensor_bytes(t) == 8, "scalar int64 has one element");
	lr_tensor_free(t);
	tap_ok(lr_tensor_create(&t, LR_DT_FLOAT, 3, d, 0) == 0 && t->data == NULL,
	       "shape-only tensor has no data");
	lr_tensor_free(t);
	tap_ok(lr_shape_nelem(2, (int64_t[]){ 0, 5 }, &n) == 0 && n == 0, "empty dimension");

	for (int threads = 1; threads <= 4; threads++) {
		lr_pool *p = lr_pool_create(threads);
		int okc = 1;

		memset(hits, 0, sizeof(hits));
		for (int rep = 0; rep < 50; rep++)
			lr_pool_run(p, 1000, 1, mark, hits);
		lr_pool_run(p, 3, 1, mark, hits); /* fewer items than threads */
		for (int i = 0; i < 1000; i++)
			okc &= hits[i] == 50 + (i < 3);
		tap_ok(p != NULL && lr_pool_size(p) == threads && okc,
		       "pool of %d threads covers every index exactly once per run", threads);
		lr_pool_free(p);
	}
	/*
	 * Workers that wake late (LR_POOL_SPIN_US=0: they sleep between runs)
	 * must claim nothing of a run that is over and never run a chunk with
	 * the next run's body: runs of 1..9 items alternate two bodies and
	 * two targets, 3000 times, and every count must be exact.
	 */
	setenv("LR_POOL_SPIN_US", "0", 1);
	for (int threads = 2; threads <= 4; threads += 2) {
		lr_pool *p = lr_pool_create(threads);
		static int h2[16];
		struct ixarg ia;
		int okc = 1;
		int64_t want1[16] = { 0 }, want2[16] = { 0 };

		memset(hits, 0, sizeof(hits));
		memset(h2, 0, sizeof(h2));
		memset(&ia, 0, sizeof(ia));
		ia.hits = h2;
		for (int rep = 0; rep < 3000; rep++) {
			int64_t nn = 1 + rep % 9;

			if (rep % 2 == 0) {
				lr_pool_run(p, nn, 1, mark, hits);
				for (int64_t i = 0; i < nn; i++)
					want1[i]++;
			} else {
				lr_pool_run_indexed(p, nn, 1, mark_ix, &ia);
				for (int64_t i = 0; i < nn; i++)
					want2[i]++;
			}
		}
		for (int i = 0; i < 16; i++)
			okc &= hits[i] == want1[i] && h2[i] == want2[i];
		tap_ok(p != NULL && okc && !ia.bad,
		       "pool of %d threads, late workers: 3000 alternating runs exact, thread indices unique",
		       threads);
		lr_pool_free(p);
	}
	unsetenv("LR_POOL_SPIN_US");
	lr_pool_free(NULL);
	lr_tensor_free(NULL);
	{
		/*
		 * Large-buffer recycling (tensor.c): a freed 40 MiB block comes
		 * back for a request of the same or a slightly smaller size, not
		 * for one over 1/4 smaller; every block is 64-byte aligned and
		 * writable to its end; 9 blocks freed at once (over the 8 kept)
		 * and a block larger than the whole budget are simply freed.
		 */
		size_t mib = (size_t)1 << 20;
		char *a = lr_alloc_aligned(40 * mib), *b, *c2;
		void *many[9];
		int ok = a != NULL && ((uintptr_t)a & 63u) == 0;

		if (ok)
			memset(a, 1, 40 * mib);
		lr_free_aligned(a);
		b = lr_alloc_aligned(36 * mib);
		tap_ok(ok && b == a, "a freed 40 MiB block is reused for 36 MiB");
		c2 = lr_alloc_aligned(36 * mib);
		tap_ok(c2 != NULL && c2 != b && ((uintptr_t)c2 & 63u) == 0,
		       "a second 36 MiB request gets a new aligned block");
		if (c2 != NULL)
			memset(c2, 2, 36 * mib);
		lr_free_aligned(c2);
		{
			/* kept now: c2 (36 MiB); 48 MiB is over 1/4 more than 33 MiB */
			char *f = lr_alloc_aligned(48 * mib), *g, *h;

			lr_free_aligned(f);
			g = lr_alloc_aligned(33 * mib);
			h = lr_alloc_aligned(33 * mib);
			tap_ok(f != NULL && g == c2 && h != f && h != NULL,
			       "33 MiB reuses the kept 36 MiB block, never the 48 MiB one");
			lr_free_aligned(g);
			lr_free_aligned(h);
		}
		lr_free_aligned(b);
		for (int i = 0; i < 9; i++) {
			many[i] = lr_alloc_aligned(33 * mib);
			if (many[i] != NULL)
				memset(many[i], 3, 33 * mib);
		}
		for (int i = 0; i < 9; i++)
			lr_free_aligned(many[i]);
		{
			char *huge = lr_alloc_aligned(800 * mib);

			if (huge != NULL)
				huge[800 * mib - 1] = 1;
			lr_free_aligned(huge);
			tap_ok(huge != NULL, "a block over the recycling budget is allocated and freed");
		}
		lr_free_aligned(NULL);
	}
	return tap_done();
}
