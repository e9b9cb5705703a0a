/*
 * opcheck.h - build a one-node ONNX model in memory and run it, for
 * operator unit tests. The model goes through the real path: protobuf-c
 * packing, lr_model_load_mem() validation, and the engine.
 *
 *   lrt_node n;
 *   lrt_init(&n, "Conv", 13);            // op_type, default-domain opset
 *   lrt_attr_ints(&n, "pads", 4, (int64_t[]){1, 1, 1, 1});
 *   lrt_input(&n, x);                    // graph input (fed at run time)
 *   lrt_const(&n, w);                    // initializer
 *   lrt_skip(&n);                        // omitted optional input ("")
 *   rc = lrt_run(&n, 1, outs, &msg);     // 1 output; caller frees outs[]
 *   lrt_fini(&n);
 */
#ifndef LR_OPCHECK_H
#define LR_OPCHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/engine.h"
#include "model/onnx.h"

#define LRT_MAX 16

typedef struct lrt_node {
	char op_type[64];
	int64_t opset;
	int nin;                        /* inputs so far */
	int kind[LRT_MAX];              /* 0 graph input, 1 initializer, 2 omitted */
	lr_tensor *t[LRT_MAX];          /* borrowed tensors */
	int nattr;
	Onnx__AttributeProto attr[LRT_MAX];
	Onnx__AttributeProto *attrp[LRT_MAX];
	char attr_name[LRT_MAX][32];
	int64_t attr_ints[LRT_MAX][16];
	float attr_floats[LRT_MAX][16];
	char attr_str[LRT_MAX][32];
	Onnx__TensorProto attr_tensor[LRT_MAX];
	int out_type[LRT_MAX];          /* declared ONNX type of output i; 0: none */
	int open_shapes;                /* graph inputs declare their type only */
} lrt_node;

/* Seeded xorshift64 (*s is the state, never 0): uniform in [-1, 1). */
static inline float lrt_frand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (float)((double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static inline void lrt_init(lrt_node *n, const char *op_type, int64_t opset)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->op_type, sizeof(n->op_type), "%s", op_type);
	n->opset = opset;
}

static inline Onnx__AttributeProto *lrt_attr(lrt_node *n, const char *name,
					     Onnx__AttributeProto__AttributeType ty)
{
	Onnx__AttributeProto *a = &n->attr[n->nattr];

	onnx__attribute_proto__init(a);
	snprintf(n->attr_name[n->nattr], 32, "%s", name);
	a->name = n->attr_name[n->nattr];
	a->has_type = 1;
	a->type = ty;
	n->attrp[n->nattr] = a;
	n->nattr++;
	return a;
}

static inline void lrt_attr_int(lrt_node *n, const char *name, int64_t v)
{
	Onnx__AttributeProto *a = lrt_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);

	a->has_i = 1;
	a->i = v;
}

static inline void lrt_attr_float(lrt_node *n, const char *name, float v)
{
	Onnx__AttributeProto *a = lrt_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);

	a->has_f = 1;
	a->f = v;
}

static inline void lrt_attr_ints(lrt_node *n, const char *name, int count,
				 const int64_t *v)
{
	int k = n->nattr;
	Onnx__AttributeProto *a = lrt_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);

	memcpy(n->attr_ints[k], v, (size_t)count * sizeof(int64_t));
	a->n_ints = (size_t)count;
	a->ints = n->attr_ints[k];
}

static inline void lrt_attr_floats(lrt_node *n, const char *name, int count,
				   const float *v)
{
	int k = n->nattr;
	Onnx__AttributeProto *a = lrt_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);

	memcpy(n->attr_floats[k], v, (size_t)count * sizeof(float));
	a->n_floats = (size_t)count;
	a->floats = n->attr_floats[k];
}

static inline void lrt_attr_str(lrt_node *n, const char *name, const char *v)
{
	int k = n->nattr;
	Onnx__AttributeProto *a = lrt_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);

	snprintf(n->attr_str[k], 32, "%s", v);
	a->has_s = 1;
	a->s.data = (uint8_t *)n->attr_str[k];
	a->s.len = strlen(n->attr_str[k]);
}

/* Tensor-valued attribute (Constant's "value"); t is borrowed. */
static inline void lrt_attr_tensor(lrt_node *n, const char *name, lr_tensor *t)
{
	int k = n->nattr;
	Onnx__AttributeProto *a = lrt_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
	Onnx__TensorProto *tp = &n->attr_tensor[k];

	onnx__tensor_proto__init(tp);
	tp->n_dims = (size_t)t->ndim;
	tp->dims = t->dims;
	tp->has_data_type = 1;
	tp->data_type = (int32_t)t->dtype;
	tp->has_raw_data = 1;
	tp->raw_data.data = t->data;
	tp->raw_data.len = lr_tensor_bytes(t);
	a->t = tp;
}

static inline void lrt_input(lrt_node *n, lr_tensor *t)
{
	n->kind[n->nin] = 0;
	n->t[n->nin++] = t;
}

static inline void lrt_const(lrt_node *n, lr_tensor *t)
{
	n->kind[n->nin] = 1;
	n->t[n->nin++] = t;
}

static inline void lrt_skip(lrt_node *n)
{
	n->kind[n->nin] = 2;
	n->t[n->nin++] = NULL;
}

static inline void lrt_fini(lrt_node *n)
{
	(void)n;
}

/* Fills a ValueInfoProto for a tensor (type + shape). Storage in *s. */
struct lrt_vi {
	Onnx__ValueInfoProto vi;
	Onnx__TypeProto tp;
	Onnx__TypeProto__Tensor tt;
	Onnx__TensorShapeProto sh;
	Onnx__TensorShapeProto__Dimension dim[LR_MAX_DIMS];
	Onnx__TensorShapeProto__Dimension *dimp[LR_MAX_DIMS];
};

static inline void lrt_vi_fill(struct lrt_vi *s, char *name, const lr_tensor *t)
{
	onnx__value_info_proto__init(&s->vi);
	onnx__type_proto__init(&s->tp);
	onnx__type_proto__tensor__init(&s->tt);
	s->vi.name = name;
	s->vi.type = &s->tp;
	s->tp.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	s->tp.tensor_type = &s->tt;
	s->tt.has_elem_type = t != NULL; /* outputs: type left to the engine */
	s->tt.elem_type = t ? (int32_t)t->dtype : 0;
	if (t != NULL) {
		onnx__tensor_shape_proto__init(&s->sh);
		for (int i = 0; i < t->ndim; i++) {
			onnx__tensor_shape_proto__dimension__init(&s->dim[i]);
			s->dim[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
			s->dim[i].dim_value = t->dims[i];
			s->dimp[i] = &s->dim[i];
		}
		s->sh.n_dim = (size_t)t->ndim;
		s->sh.dim = s->dimp;
		s->tt.shape = &s->sh;
	}
}

/*
 * Wraps `graph` in a model of the default domain at `opset` (IR 8), packs
 * it with protobuf-c and loads it with lr_model_load_mem() under `name`,
 * as a file would be. Returns 0 with *m set, or the loader's error.
 */
static inline int lrt_load_graph(Onnx__GraphProto *graph, int64_t opset, const char *name,
				 lr_model **m, lr_msg *msg)
{
	char dom[] = "";
	Onnx__OperatorSetIdProto os, *osp = &os;
	Onnx__ModelProto model;
	uint8_t *buf;
	size_t len;
	int rc;

	onnx__operator_set_id_proto__init(&os);
	os.domain = dom;
	os.has_version = 1;
	os.version = opset;
	onnx__model_proto__init(&model);
	model.has_ir_version = 1;
	model.ir_version = 8;
	model.n_opset_import = 1;
	model.opset_import = &osp;
	model.graph = graph;
	len = onnx__model_proto__get_packed_size(&model);
	buf = malloc(len ? len : 1);
	if (buf == NULL)
		return LR_ENOMEM;
	onnx__model_proto__pack(&model, buf);
	rc = lr_model_load_mem(buf, len, name, NULL, m, msg);
	free(buf);
	return rc;
}

/*
 * lrt_load_graph on a graph "g" of `nn` nodes with graph inputs `in`,
 * outputs `out` and initializers `init` (all borrowed).
 */
static inline int lrt_load_nodes(Onnx__NodeProto **nodes, int nn, Onnx__ValueInfoProto **in,
				 int nin, Onnx__ValueInfoProto **out, int nout,
				 Onnx__TensorProto **init, int ninit, int64_t opset,
				 const char *name, lr_model **m, lr_msg *msg)
{
	char gname[] = "g";
	Onnx__GraphProto graph;

	onnx__graph_proto__init(&graph);
	graph.name = gname;
	graph.n_node = (size_t)nn;
	graph.node = nodes;
	graph.n_input = (size_t)nin;
	graph.input = in;
	graph.n_output = (size_t)nout;
	graph.output = out;
	graph.n_initializer = (size_t)ninit;
	graph.initializer = init;
	return lrt_load_graph(&graph, opset, name, m, msg);
}

/*
 * Builds the one-node model of n with `nout` outputs (its graph inputs
 * are the kind-0 inputs, in order) and loads it with lr_model_load_mem()
 * into *m. Returns the loader's code, with the message in *msg.
 */
static inline int lrt_load(lrt_node *n, int nout, lr_model **m, lr_msg *msg)
{
	static char in_names[LRT_MAX][16], out_names[LRT_MAX][16];
	char *node_in[LRT_MAX], *node_out[LRT_MAX];
	struct lrt_vi gin[LRT_MAX], gout[LRT_MAX];
	Onnx__ValueInfoProto *ginp[LRT_MAX], *goutp[LRT_MAX];
	Onnx__TensorProto init[LRT_MAX], *initp[LRT_MAX];
	Onnx__NodeProto node;
	Onnx__NodeProto *nodep = &node;
	char empty[1] = "";
	int ngin = 0, ninit = 0;

	for (int i = 0; i < n->nin; i++) {
		snprintf(in_names[i], 16, "in%d", i);
		if (n->kind[i] == 2) {
			node_in[i] = empty;
			continue;
		}
		node_in[i] = in_names[i];
		if (n->kind[i] == 0) {
			lrt_vi_fill(&gin[ngin], in_names[i], n->open_shapes ? NULL : n->t[i]);
			gin[ngin].tt.has_elem_type = 1;
			gin[ngin].tt.elem_type = (int32_t)n->t[i]->dtype;
			ginp[ngin] = &gin[ngin].vi;
			ngin++;
		} else {
			Onnx__TensorProto *tp = &init[ninit];

			onnx__tensor_proto__init(tp);
			tp->name = in_names[i];
			tp->n_dims = (size_t)n->t[i]->ndim;
			tp->dims = n->t[i]->dims;
			tp->has_data_type = 1;
			tp->data_type = (int32_t)n->t[i]->dtype;
			tp->has_raw_data = 1;
			tp->raw_data.data = n->t[i]->data;
			tp->raw_data.len = lr_tensor_bytes(n->t[i]);
			initp[ninit] = tp;
			ninit++;
		}
	}
	for (int i = 0; i < nout; i++) {
		snprintf(out_names[i], 16, "out%d", i);
		node_out[i] = out_names[i];
		lrt_vi_fill(&gout[i], out_names[i], NULL);
		if (n->out_type[i] != 0) {
			gout[i].tt.has_elem_type = 1;
			gout[i].tt.elem_type = n->out_type[i];
		}
		goutp[i] = &gout[i].vi;
	}
	onnx__node_proto__init(&node);
	node.op_type = n->op_type;
	node.n_input = (size_t)n->nin;
	node.input = node_in;
	node.n_output = (size_t)nout;
	node.output = node_out;
	node.n_attribute = (size_t)n->nattr;
	node.attribute = n->attrp;
	return lrt_load_nodes(&nodep, 1, ginp, ngin, goutp, nout, initp, ninit, n->opset,
			      "opcheck", m, msg);
}

/*
 * Builds the model (lrt_load), runs it `runs` times (>= 1) on one engine
 * with `threads` threads and stores the last run's `nout` outputs in
 * outs[] (caller frees them). Returns the first failing code (from loading
 * or running) with the message in *msg.
 */
static inline int lrt_run_n(lrt_node *n, int nout, lr_tensor **outs, lr_msg *msg,
			    int threads, int runs)
{
	lr_tensor *feeds[LRT_MAX];
	int nfeed = 0, rc;
	lr_model *m = NULL;
	lr_engine *e = NULL;

	for (int i = 0; i < nout; i++)
		outs[i] = NULL;
	for (int i = 0; i < n->nin; i++)
		if (n->kind[i] == 0)
			feeds[nfeed++] = n->t[i];
	rc = lrt_load(n, nout, &m, msg);
	if (rc != 0)
		goto out;
	rc = lr_engine_create(&e, m, threads);
	if (rc != 0)
		goto out;
	for (int r = 0; r < runs && rc == 0; r++) {
		for (int i = 0; r > 0 && i < nout; i++) {
			lr_tensor_free(outs[i]);
			outs[i] = NULL;
		}
		rc = lr_engine_run(e, feeds, nfeed, outs, nout, 0, msg);
	}
out:
	lr_engine_free(e);
	lr_model_free(m);
	return rc;
}

/* lrt_run_n with 2 threads and one run. */
static inline int lrt_run(lrt_node *n, int nout, lr_tensor **outs, lr_msg *msg)
{
	return lrt_run_n(n, nout, outs, msg, 2, 1);
}

/* Makes a float tensor from values (copied). Caller frees. */
static inline lr_tensor *lrt_f(int ndim, const int64_t *dims, const float *v)
{
	lr_tensor *t = NULL;

	if (lr_tensor_create(&t, LR_DT_FLOAT, ndim, dims, 1) != 0)
		abort();
	if (v != NULL)
		memcpy(t->data, v, lr_tensor_bytes(t));
	return t;
}

/* Makes an int64 tensor from values (copied). Caller frees. */
static inline lr_tensor *lrt_i(int ndim, const int64_t *dims, const int64_t *v)
{
	lr_tensor *t = NULL;

	if (lr_tensor_create(&t, LR_DT_INT64, ndim, dims, 1) != 0)
		abort();
	if (v != NULL)
		memcpy(t->data, v, lr_tensor_bytes(t));
	return t;
}

#endif /* LR_OPCHECK_H */
