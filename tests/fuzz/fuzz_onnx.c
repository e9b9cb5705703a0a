/*
 * fuzz_onnx.c - fuzz target for the ONNX loader and the engine's dry run.
 *
 * DESIGN. Each input is loaded with lr_model_load_mem() under a small
 * budget (64 MiB, 10000 nodes). A refused input must come back with no
 * model, one of the loader's error codes and a message that starts with
 * the file name. A loaded model must satisfy the index invariants the
 * engine relies on (value indices in range, producers before consumers,
 * a kernel for every node). Then an engine does a dry run, fed from the
 * declared input shapes (unknown dimensions -> 1): float inputs are
 * shape-only, integer inputs zero-filled int64. Models whose inputs have
 * no declared rank or more than FEED_MAX elements are not run. When the
 * dry run succeeds and every tensor it saw is small (RUN_MAX elements),
 * the model is also run for real and its output shapes must equal the
 * dry run's: that exercises the kernels' loops under ASan and checks
 * that shape propagation agrees with computation. Every failure must
 * leave a message. Nothing may crash, leak, or read outside the buffer;
 * the invariant checks abort(), which libFuzzer reports as a crash.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/engine.h"
#include "model/inspect.h"
#include "model/ops.h" /* lr_op_def, for the node count checks */
#include "model/onnx.h"

#define FUZZ_NAME "fuzz.onnx"
#define FEED_MAX 1000000   /* elements per fed input */
#define RUN_MAX 4096       /* elements per tensor for the real run */
#define RUN_MAX_NODES 256  /* nodes for the real run */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Largest element count of any node output seen by the observer. */
static int observe(void *ud, const lr_model *m, int node_index,
		   lr_tensor *const *outs, int nout)
{
	int64_t *biggest = ud, n;

	(void)m;
	(void)node_index;
	for (int k = 0; k < nout; k++) {
		if (outs[k] == NULL)
			continue;
		if (lr_shape_nelem(outs[k]->ndim, outs[k]->dims, &n) != 0 ||
		    n != outs[k]->nelem)
			abort(); /* a kernel produced an inconsistent tensor */
		if (n > *biggest)
			*biggest = n;
	}
	return 0;
}

/* The loader's refusal contract. */
static void check_refusal(int rc, const lr_model *m, const lr_msg *msg)
{
	if (m != NULL)
		abort();
	if (rc != LR_EMODEL && rc != LR_EUNSUPPORTED && rc != LR_ELIMIT &&
	    rc != LR_ENOMEM)
		abort();
	if (rc != LR_ENOMEM &&
	    strncmp(msg->text, FUZZ_NAME ": ", sizeof(FUZZ_NAME ": ") - 1) != 0)
		abort();
}

/* The index invariants the engine relies on. */
static void check_model(const lr_model *m)
{
	if (m->nvalues < 0 || m->nnodes < 0 || m->ninputs < 0 ||
	    m->noutputs < 0 || m->opset < LR_ONNX_MIN_OPSET ||
	    m->opset > LR_ONNX_MAX_OPSET)
		abort();
	for (int i = 0; i < m->ninputs; i++)
		if (m->inputs[i] < 0 || m->inputs[i] >= m->nvalues ||
		    !m->values[m->inputs[i]].graph_input ||
		    m->values[m->inputs[i]].init != NULL)
			abort();
	for (int i = 0; i < m->noutputs; i++)
		if (m->outputs[i] < 0 || m->outputs[i] >= m->nvalues)
			abort();
	for (int v = 0; v < m->nvalues; v++) {
		const lr_value *val = &m->values[v];

		if (val->name == NULL || val->producer < -1 ||
		    val->producer >= m->nnodes || val->ndim > LR_MAX_DIMS ||
		    lr_model_find_value(m, val->name) != v)
			abort();
	}
	for (int i = 0; i < m->nnodes; i++) {
		const lr_node *n = &m->nodes[i];

		if (n->op == NULL || n->name == NULL || n->name[0] == '\0' ||
		    n->nin < n->op->min_in || n->nin > n->op->max_in ||
		    n->nout < n->op->min_out || n->nout > n->op->max_out)
			abort();
		for (int k = 0; k < n->nin; k++) {
			int v = n->in[k];

			if (v < -1 || v >= m->nvalues)
				abort();
			/* topological: a producer runs before its readers */
			if (v >= 0 && m->values[v].producer >= i)
				abort();
		}
		for (int k = 0; k < n->nout; k++) {
			int v = n->out[k];

			if (v < -1 || v >= m->nvalues ||
			    (v >= 0 && m->values[v].producer != i))
				abort();
		}
	}
}

/* ONNX element types lowrank holds as integers or bool (see tensor.h). */
static int is_int_type(int et)
{
	return lr_dtype_from_onnx(et) != 0 && !lr_dtype_is_float(lr_dtype_from_onnx(et));
}

/*
 * Builds feeds for every graph input; real == 0: floats are shape-only.
 * Returns 0, or 1 when some input cannot be fed (the model is not run).
 */
static int make_feeds(const lr_model *m, lr_tensor **feeds, int real)
{
	for (int i = 0; i < m->ninputs; i++) {
		const lr_value *v = &m->values[m->inputs[i]];
		int64_t dims[LR_MAX_DIMS], n;
		int nd = lr_input_shape(m, i, 1, dims);
		int isint = is_int_type(v->elem_type);

		feeds[i] = NULL;
		if (nd < 0 || lr_shape_nelem(nd, dims, &n) != 0 || n > FEED_MAX)
			return 1;
		lr_dtype dt = v->elem_type == 0 ? LR_DT_FLOAT : lr_dtype_from_onnx(v->elem_type);

		if (dt == 0 || lr_tensor_create(&feeds[i], dt, nd, dims, isint || real) != 0)
			return 1;
		if (isint) {
			memset(feeds[i]->data, 0, lr_tensor_bytes(feeds[i]));
		} else if (real) {
			float *f = malloc((size_t)n * sizeof(float) + 1);
			lr_tensor ft = { .dtype = LR_DT_FLOAT, .nelem = n, .data = f };

			if (f == NULL)
				return 1;
			for (int64_t k = 0; k < n; k++)
				f[k] = (float)((k % 7) - 3) * 0.25f;
			lr_tensor_convert(&ft, dt, feeds[i]->data);
			free(f);
		}
	}
	return 0;
}

static void free_tensors(lr_tensor **t, int n)
{
	for (int i = 0; i < n; i++) {
		lr_tensor_free(t[i]);
		t[i] = NULL;
	}
}

/* Dry run, then (small models) a real run with the same output shapes. */
static void run_model(const lr_model *m)
{
	lr_engine *e = NULL;
	lr_tensor **feeds, **dry, **real;
	int64_t biggest = 0;
	lr_msg msg;
	int rc, nf = m->ninputs, no = m->noutputs;

	feeds = calloc((size_t)nf + 1, sizeof(*feeds));
	dry = calloc((size_t)no + 1, sizeof(*dry));
	real = calloc((size_t)no + 1, sizeof(*real));
	if (feeds == NULL || dry == NULL || real == NULL)
		abort();
	if (make_feeds(m, feeds, 0) != 0)
		goto out;
	if (lr_engine_create(&e, m, 1) != 0)
		abort();
	lr_engine_set_observer(e, observe, &biggest);
	memset(&msg, 0, sizeof(msg));
	rc = lr_engine_run(e, feeds, nf, dry, no, 1, &msg);
	if (rc != 0) {
		if (msg.text[0] == '\0' || rc >= 0)
			abort();
		for (int i = 0; i < no; i++)
			if (dry[i] != NULL)
				abort();
		goto out;
	}
	for (int i = 0; i < no; i++) {
		if (dry[i] == NULL)
			abort();
		if (dry[i]->nelem > biggest)
			biggest = dry[i]->nelem;
	}
	for (int i = 0; i < nf; i++)
		if (feeds[i]->nelem > biggest)
			biggest = feeds[i]->nelem;
	if (biggest > RUN_MAX || m->nnodes > RUN_MAX_NODES)
		goto out;

	free_tensors(feeds, nf);
	if (make_feeds(m, feeds, 1) != 0)
		abort(); /* fed fine a moment ago */
	memset(&msg, 0, sizeof(msg));
	rc = lr_engine_run(e, feeds, nf, real, no, 0, &msg);
	if (rc != 0) {
		/* Only value-dependent failures may differ from the dry run. */
		if (msg.text[0] == '\0' || rc >= 0)
			abort();
		goto out;
	}
	for (int i = 0; i < no; i++) {
		if (real[i] == NULL || real[i]->data == NULL ||
		    real[i]->dtype != dry[i]->dtype ||
		    real[i]->ndim != dry[i]->ndim ||
		    memcmp(real[i]->dims, dry[i]->dims,
			   (size_t)real[i]->ndim * sizeof(int64_t)) != 0)
			abort(); /* the dry run predicted another shape */
	}
out:
	free_tensors(real, no);
	free_tensors(dry, no);
	free_tensors(feeds, nf);
	free(real);
	free(dry);
	free(feeds);
	lr_engine_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lr_load_opts opts;
	lr_model *m = NULL;
	lr_msg msg;
	int rc;

	memset(&opts, 0, sizeof(opts));
	opts.budget_bytes = (size_t)64 << 20;
	opts.max_nodes = 10000;
	memset(&msg, 0, sizeof(msg));
	rc = lr_model_load_mem(data, size, FUZZ_NAME, &opts, &m, &msg);
	if (rc != 0) {
		check_refusal(rc, m, &msg);
		return 0;
	}
	if (m == NULL)
		abort();
	check_model(m);
	run_model(m);
	lr_model_free(m);
	return 0;
}
