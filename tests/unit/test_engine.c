/*
 * test_engine.c - whole-model runs and segment runs (lr_engine_run_segment)
 * on the shipped tiny CNN: a segment seeded with an intermediate value must
 * give bit-identical results to the full run, run only the nodes it needs,
 * and name a value it cannot compute.
 */
#include <stdlib.h>
#include <string.h>

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

	lr_tensor_free(s.captured);
	lr_tensor_free(full);
	lr_tensor_free(x);
	lr_engine_free(e);
	lr_model_free(m);
	return tap_done();
}
