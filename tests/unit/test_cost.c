/*
 * test_cost.c - the measured cost model: the timing cache round-trips,
 * merges with entries another job wrote meanwhile, skips damaged lines and
 * leaves no temporary file; a Conv of a real model (tests/data/tiny_cnn)
 * alone and as its low-rank pair builds, runs and times, and so does every
 * node inside the model; cache keys tell
 * ranks, batches and shapes apart. No absolute speed is checked: the
 * machine is shared.
 */
#include "config.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/engine.h"
#include "model/onnx.h"
#include "solver/cost.h"
#include "tests/unit/tap.h"
#include "tests/unit/testenv.h"

static char dir[4096], path[4200];

static int count_files(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d != NULL && (e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	if (d != NULL)
		closedir(d);
	return n;
}

static void test_cache(void)
{
	lr_timing_cache *a = NULL, *b = NULL, *c = NULL;
	lr_msg msg = { { 0 } };
	double v = 0;
	FILE *f;
	int rc;

	rc = lr_timing_cache_open(path, &a, &msg);
	tap_ok(rc == 0 && lr_timing_cache_count(a) == 0, "a missing cache file is an empty cache");
	tap_ok(lr_timing_cache_save(a, &msg) == 0 && access(path, F_OK) != 0,
	       "nothing new: saving writes no file");
	lr_timing_cache_put(a, "cpu=x|conv|r=0", 0.25);
	lr_timing_cache_put(a, "cpu=x|conv|r=16", 1.5e-5);
	lr_timing_cache_put(a, "with\ttab", 3);
	/* Another job saves its own entry meanwhile. */
	rc = lr_timing_cache_open(path, &b, &msg);
	lr_timing_cache_put(b, "cpu=y|other", 7);
	lr_timing_cache_put(b, "cpu=x|conv|r=0", 9);
	rc |= lr_timing_cache_save(b, &msg);
	rc |= lr_timing_cache_save(a, &msg);
	tap_ok(rc == 0, "two handles save one after the other");
	rc = lr_timing_cache_open(path, &c, &msg);
	tap_ok(rc == 0 && lr_timing_cache_count(c) == 4, "the file holds both jobs' entries (%d)",
	       lr_timing_cache_count(c));
	rc = lr_timing_cache_get(c, "cpu=x|conv|r=0", &v);
	tap_ok(rc == 1 && v == 0.25, "the later save wins for a key both wrote (%g)", v);
	tap_ok(lr_timing_cache_get(c, "cpu=x|conv|r=16", &v) && v == 1.5e-5 &&
	       lr_timing_cache_get(c, "cpu=y|other", &v) && v == 7 &&
	       lr_timing_cache_get(c, "with tab", &v) && v == 3,
	       "values round-trip exactly; a tab in a key became a blank");
	tap_ok(!lr_timing_cache_get(c, "cpu=x|conv|r=32", &v), "an absent key is absent");
	tap_ok(count_files() == 1, "no temporary file is left behind");
	c = lr_timing_cache_free(c);
	/* Damaged lines are skipped, the rest is kept. */
	f = fopen(path, "a");
	fputs("garbage line\n-1\tnegative\nnan\tnotanumber\n0.5\n2\tgood\n", f);
	fclose(f);
	rc = lr_timing_cache_open(path, &c, &msg);
	tap_ok(rc == 0 && lr_timing_cache_count(c) == 5 && lr_timing_cache_get(c, "good", &v) && v == 2,
	       "damaged lines are skipped (%d entries)", lr_timing_cache_count(c));
	lr_timing_cache_free(a);
	lr_timing_cache_free(b);
	lr_timing_cache_free(c);
	rc = lr_timing_cache_open(NULL, &a, &msg);
	lr_timing_cache_put(a, "k", 1);
	tap_ok(rc == 0 && lr_timing_cache_save(a, &msg) == 0 && lr_timing_cache_get(a, "k", &v),
	       "a memory-only cache works and saves nowhere");
	lr_timing_cache_free(a);
}

static void test_layers(const char *srcdir)
{
	char model[4200], k0[1024], k16[1024], kb[1024];
	lr_model *m = NULL, *one = NULL, *pair = NULL;
	lr_msg msg = { { 0 } };
	int64_t in[4] = { 1, 32, 16, 16 }, in8[4] = { 8, 32, 16, 16 };
	double t1 = 0, t2 = 0;
	int node = -1, rc;

	snprintf(model, sizeof(model), "%s/tests/data/tiny_cnn.onnx", srcdir);
	rc = lr_model_load(model, NULL, &m, &msg);
	tap_ok(rc == 0, "load tiny_cnn: %s", msg.text);
	if (rc != 0)
		return;
	/* The third Conv: 32 -> 64, 3x3, 16x16 (lowrank inspect). */
	for (int i = 0, n = 0; i < m->nnodes; i++)
		if (strcmp(m->nodes[i].op_type, "Conv") == 0 && ++n == 3)
			node = i;
	rc = lr_conv_alone(m, node, in, &one, &msg);
	tap_ok(rc == 0 && one->nnodes == 1 && one->ninputs == 1, "one Conv alone: %s", msg.text);
	rc = rc == 0 ? lr_conv_pair(one, 16, 1, &pair, &msg) : rc;
	tap_ok(rc == 0 && pair->nnodes == 2, "its pair at rank 16: %s", msg.text);
	if (rc == 0) {
		const lr_tensor *wa = pair->values[pair->nodes[0].in[1]].init;
		const lr_tensor *wb = pair->values[pair->nodes[1].in[1]].init;

		tap_ok(wa != NULL && wb != NULL && wa->dims[0] == 16 && wa->dims[1] == 32 &&
		       wb->dims[0] == 64 && wb->dims[1] == 16 && wb->dims[2] == 1,
		       "the pair is 3x3 32->16 then 1x1 16->64");
	}
	rc = lr_time_forward(one, 4, in, 1, 2, NULL, &t1, &msg);
	if (rc == 0)
		rc = lr_time_forward(pair, 4, in, 1, 2, NULL, &t2, &msg);
	tap_ok(rc == 0 && t1 > 0 && t2 > 0 && isfinite(t1) && isfinite(t2),
	       "both time (%.3g ms and %.3g ms)", t1 * 1e3, t2 * 1e3);
	{
		volatile int stop = 1;

		tap_ok(lr_time_forward(one, 4, in, 1, 2, &stop, &t1, &msg) == LR_ECANCELED,
		       "timing stops when canceled");
	}
	if (pair != NULL) {
		/* Interleaved: the layer, its pair, the layer again. */
		const lr_model *three[3] = { one, pair, one };
		double s3[3] = { 0, 0, 0 };
		volatile int stop = 1;

		int tries = 0, near = 0;

		/* The same model twice is compared within rounds, so a 2x gap
		 * is a bug. But make check runs other tests beside this one,
		 * and a 2-thread run of 2 ms loses whole time slices when a
		 * neighbour takes a core (CI saw 2.9 once, under ASan): a
		 * gap in each of three timings fails, one in one does not. */
		do {
			rc = lr_time_models(three, 3, 4, in, 1, 2, 0.05, NULL, s3, &msg);
			near = rc == 0 && s3[2] / s3[0] > 0.5 && s3[2] / s3[0] < 2;
		} while (rc == 0 && !near && ++tries < 3);
		tap_ok(rc == 0 && s3[0] > 0 && s3[1] > 0 && isfinite(s3[1]) && s3[2] > 0,
		       "three models time interleaved (%.3g, %.3g, %.3g ms)", s3[0] * 1e3, s3[1] * 1e3,
		       s3[2] * 1e3);
		tap_ok(near, "the same model twice: ratio %.3f (timing %d of at most 3)",
		       s3[2] / s3[0], tries + 1 > 3 ? 3 : tries + 1);
		rc = lr_time_models(three, 3, 4, in, 1, 2, 0, &stop, s3, &msg);
		tap_ok(rc == LR_ECANCELED && s3[0] == -1 && s3[1] == -1 && s3[2] == -1,
		       "interleaved timing stops when canceled, with no times");
		tap_ok(lr_time_models(three, 0, 4, in, 1, 2, 0, NULL, s3, &msg) == 0,
		       "no models: nothing to time");
	}
	{
		double *ns = calloc((size_t)m->nnodes, sizeof(double));
		int64_t full[4] = { 1, 3, 32, 32 };
		int allpos = 1, convpos = 1;

		rc = lr_time_nodes(m, 4, full, 1, 2, NULL, ns, &msg);
		for (int i = 0; i < m->nnodes; i++) {
			allpos &= ns[i] >= 0 && isfinite(ns[i]);
			if (strcmp(m->nodes[i].op_type, "Conv") == 0)
				convpos &= ns[i] > 0;
		}
		tap_ok(rc == 0 && allpos && convpos, "per-node times inside the model: every Conv takes time (%.3g ms for the third)",
		       ns[node] * 1e3);
		{
			/* The nodes' times add up to about the model's: the runs
			 * past the first few (grown to span 0.5 s) start from
			 * zero, not from whatever their memory held. */
			double sum = 0, whole = 0;

			for (int i = 0; i < m->nnodes; i++)
				sum += ns[i];
			/* (Two timings apart: a busy neighbour may slow one;
			 * as above, a gap must hold in three.) */
			for (int tries = 0; tries < 3; tries++) {
				rc = lr_time_forward(m, 4, full, 1, 2, NULL, &whole, &msg);
				if (rc != 0 || (sum > 0.3 * whole && sum < 3 * whole))
					break;
			}
			tap_ok(rc == 0 && sum > 0.3 * whole && sum < 3 * whole,
			       "the nodes' times add up to the model's (%.3g ms against %.3g ms)", sum * 1e3,
			       whole * 1e3);
		}
		free(ns);
	}
	lr_conv_cost_key(m, node, in, 0, "cpu=t", k0, sizeof(k0));
	lr_conv_cost_key(m, node, in, 16, "cpu=t", k16, sizeof(k16));
	lr_conv_cost_key(m, node, in8, 0, "cpu=t", kb, sizeof(kb));
	tap_diag("key: %s", k0);
	tap_ok(strstr(k0, "c=32|d=64|in=16x16") != NULL && strstr(k0, "k=3,3") != NULL &&
	       strcmp(k0, k16) != 0 && strcmp(k0, kb) != 0 && strncmp(k0, "cpu=t|", 6) == 0,
	       "keys carry the shape and tell rank and batch apart");
	lr_model_free(pair);
	lr_model_free(one);
	lr_model_free(m);
}

int main(void)
{
	char srcdir[4096];

	tenv_srcdir(srcdir, sizeof(srcdir), __FILE__, "/tests/unit/test_cost.c");
	if (tenv_mkdtemp(dir, sizeof(dir), "test_cost") != 0) {
		tap_ok(0, "mkdtemp");
		return tap_done();
	}
	snprintf(path, sizeof(path), "%s/timings.tsv", dir);
	test_cache();
	test_layers(srcdir);
	unlink(path);
	rmdir(dir);
	return tap_done();
}
