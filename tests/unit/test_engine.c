/*
 * test_engine.c - whole-model runs and segment runs (lr_engine_run_segment)
 * on the shipped tiny CNN: a segment seeded with an intermediate value must
 * give bit-identical results to the full run, run only the nodes it needs,
 * and name a value it cannot compute. LR_PROFILE's dump names every node
 * in order and counts only full runs after the first. Once a 1-thread
 * engine exists the process has one thread: OpenBLAS's server threads,
 * started when it loaded, are stopped (they spun in sched_yield).
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/engine.h"
#include "model/npy.h"
#include "model/onnx.h"
#include "tests/unit/tap.h"

struct seen {
	int count;              /* nodes run */
	int want;               /* value to capture */
	lr_tensor *captured;
};

static int observe(void *ud, const lr_model *m, int ni, lr_tensor *const *outs, int nout)
{
	struct seen *s = ud;

	s->count++;
	for (int k = 0; k < nout && k < m->nodes[ni].nout; k++)
		if (m->nodes[ni].out[k] == s->want && outs[k] != NULL && s->captured == NULL)
			if (lr_tensor_clone(&s->captured, outs[k]) != 0)
				return LR_ENOMEM;
	return 0;
}

/* Threads of this process (entries of /proc/self/task), or -1. */
static int nthreads_now(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static int same(const lr_tensor *a, const lr_tensor *b)
{
	return a != NULL && b != NULL && a->nelem == b->nelem && a->ndim == b->ndim &&
	       memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->ndim) == 0 &&
	       memcmp(a->data, b->data, lr_tensor_bytes(a)) == 0;
}

int main(void)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	lr_model *m = NULL;
	lr_tensor *x = NULL, *full = NULL, *seg[2] = { NULL, NULL };
	lr_engine *e = NULL;
	lr_msg msg = { { 0 } };
	struct seen s = { 0, -1, NULL };
	int mid, conv2, out, rc;

	snprintf(path, sizeof(path), "%s/tests/data/tiny_cnn.onnx", top ? top : ".");
	rc = lr_model_load(path, NULL, &m, &msg);
	if (!tap_ok(rc == 0, "load tiny_cnn: %s", msg.text))
		return tap_done();
	snprintf(path, sizeof(path), "%s/tests/data/tiny_input.npy", top ? top : ".");
	rc = lr_npy_read(path, &x, &msg);
	tap_ok(rc == 0, "read tiny_input: %s", msg.text);
	mid = lr_model_find_value(m, "/features/features.5/MaxPool_output_0");
	conv2 = lr_model_find_value(m, "/features/features.3/Conv_output_0");
	out = m->outputs[0];
	tap_ok(mid >= 0 && conv2 >= 0, "values found by name");

	{
		int before = nthreads_now(), after;

		rc = lr_engine_create(&e, m, 1);
		after = nthreads_now();
		tap_ok(rc == 0 && after == 1, "a 1-thread engine leaves one thread in the process "
		       "(%d before it, %d after: OpenBLAS's servers stopped)", before, after);
		lr_engine_free(e);
		e = NULL;
	}
	/* The full run, capturing the pooled value in the middle. */
	rc = lr_engine_create(&e, m, 2);
	s.want = mid;
	lr_engine_set_observer(e, observe, &s);
	if (rc == 0)
		rc = lr_engine_run(e, &x, 1, &full, 1, 0, &msg);
	tap_ok(rc == 0 && s.count == m->nnodes && s.captured != NULL,
	       "full run: %d of %d nodes observed: %s", s.count, m->nnodes, msg.text);

	/* From the middle value to the output: only the nodes after it run. */
	s.count = 0;
	s.want = -1;
	{
		lr_tensor *none[1] = { NULL };

		rc = lr_engine_run_segment(e, none, 1, &mid, &s.captured, 1, &out, 1, seg, &msg);
	}
	tap_ok(rc == 0 && same(seg[0], full), "segment from the pooled value: bit-identical output: %s",
	       msg.text);
	tap_ok(s.count == 10, "segment ran the 10 nodes after the cut (ran %d)", s.count);
	lr_tensor_free(seg[0]);
	seg[0] = NULL;

	/* From the input to two inner values: only their ancestors run. */
	s.count = 0;
	{
		int want[2] = { conv2, mid };

		rc = lr_engine_run_segment(e, &x, 1, NULL, NULL, 0, want, 2, seg, &msg);
		tap_ok(rc == 0 && s.count == 5 && seg[0] != NULL && same(seg[1], s.captured),
		       "segment from the input to two inner values: 5 nodes, same values: %s", msg.text);
		tap_ok(seg[0] != NULL && seg[0]->ndim == 4 && seg[0]->dims[1] == 32,
		       "the earlier wanted value is kept though a later node read it");
	}
	lr_tensor_free(seg[0]);
	lr_tensor_free(seg[1]);
	seg[0] = seg[1] = NULL;

	/* Without the input or a seed the segment cannot run: the value is named. */
	{
		lr_tensor *none[1] = { NULL };

		msg.text[0] = '\0';
		rc = lr_engine_run_segment(e, none, 1, NULL, NULL, 0, &out, 1, seg, &msg);
		tap_ok(rc == LR_EMODEL && strstr(msg.text, "graph input 'input' was not given") != NULL && seg[0] == NULL,
		       "a missing input is named: %s", msg.text);
		msg.text[0] = '\0';
		rc = lr_engine_run_segment(e, none, 1, NULL, NULL, 0, (int[]){ m->nvalues }, 1, seg, &msg);
		tap_ok(rc == LR_EINVAL, "a wanted value out of range is refused: %s", msg.text);
	}

	lr_engine_free(e);
	e = NULL;

	/*
	 * LR_PROFILE: three full runs (the first not counted), a segment run
	 * and a dry run (neither counted) write, at lr_engine_free, one line
	 * per node in order, one per op type and the total over 2 runs.
	 */
	{
		char prof[] = "/tmp/lr_test_profileXXXXXX", line[1024];
		int fd = mkstemp(prof), nodes = 0, inorder = 1, convs = 0, tot = 0, runs = -1, medians = 1;
		double conv_ms = -1, sum = 0, total = -1;
		lr_tensor *y = NULL;
		FILE *f;

		if (fd >= 0)
			close(fd);
		msg.text[0] = '\0';
		setenv("LR_PROFILE", prof, 1);
		rc = lr_engine_create(&e, m, 1);
		unsetenv("LR_PROFILE");
		for (int i = 0; rc == 0 && i < 3; i++) {
			rc = lr_engine_run(e, &x, 1, &y, 1, 0, &msg);
			lr_tensor_free(y);
			y = NULL;
		}
		if (rc == 0)
			rc = lr_engine_run_segment(e, &x, 1, NULL, NULL, 0, &mid, 1, &y, &msg);
		lr_tensor_free(y);
		y = NULL;
		if (rc == 0)
			rc = lr_engine_run(e, &x, 1, &y, 1, 1, &msg);
		lr_tensor_free(y);
		lr_engine_free(e);
		e = NULL;
		f = fopen(prof, "r");
		while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
			char *p;

			if ((p = strstr(line, "{\"node\":\"")) == line) {
				if (nodes < m->nnodes &&
				    strncmp(line + 9, m->nodes[nodes].name, strlen(m->nodes[nodes].name)) != 0)
					inorder = 0;
				nodes++;
				sum += strtod(strstr(line, "\"ms\":") + 5, NULL);
				/* two runs: their median is their mean */
				if ((p = strstr(line, "\"mean_ms\":")) == NULL ||
				    fabs(strtod(p + 10, NULL) - strtod(strstr(line, "\"ms\":") + 5, NULL)) > 2e-4)
					medians = 0;
			} else if (strstr(line, "{\"op_total\":\"Conv\"") == line) {
				conv_ms = strtod(strstr(line, "\"ms\":") + 5, NULL);
				convs++;
			} else if (strstr(line, "{\"total_ms\":") == line) {
				total = strtod(line + 12, NULL);
				runs = atoi(strstr(line, "\"runs\":") + 7);
				tot++;
			}
		}
		if (f != NULL)
			fclose(f);
		remove(prof);
		tap_ok(rc == 0 && nodes == m->nnodes && inorder && convs == 1 && tot == 1 && runs == 2 &&
		       medians && conv_ms > 0 && total >= conv_ms && total > 0.99 * sum &&
		       total < 1.01 * sum + 0.001,
		       "LR_PROFILE: %d of %d nodes in order (%d), medians = means (%d), Conv total %.4f ms, total %.4f ms = sum %.4f, runs %d: %s",
		       nodes, m->nnodes, inorder, medians, conv_ms, total, sum, runs, msg.text);
	}

	lr_tensor_free(s.captured);
	lr_tensor_free(full);
	lr_tensor_free(x);
	lr_model_free(m);
	return tap_done();
}
