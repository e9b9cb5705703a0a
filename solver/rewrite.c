/*
 * rewrite.c - BatchNorm folding, activation analysis and low-rank Conv
 * replacement on ONNX graphs. See rewrite.h.
 *
 * DESIGN. The loaded model's protobuf (m->proto) is never modified. A
 * rewrite builds an "edit": shallow copies of the ModelProto and
 * GraphProto structs whose pointer arrays (nodes, initializers, inputs,
 * value_info, metadata_props) point at the ORIGINAL sub-messages wherever
 * nothing changed and at new messages where something did. Everything
 * new (messages, pointer arrays, strings, weight bytes) comes from a
 * small arena owned by the edit: a list of calloc'd blocks freed in one
 * call. The edited copy is packed with onnx__model_proto__pack() and the
 * bytes are loaded again with lr_model_load_mem(), which validates the
 * result and gives it its own memory; then the arena is freed. The copy
 * is never passed to free_unpacked(): it owns nothing but arena blocks.
 *
 * An edit records, per original node (in file order), whether it is
 * kept, removed or replaced by one or two new nodes, so replacements take
 * the original's place and a topological file order stays topological.
 * Per original initializer it may record a replacement message with the
 * same name. Finishing the edit counts, for every original value, how
 * many inputs of the new node list read it; an initializer that had
 * readers before and has none now is dropped together with its graph
 * input and value_info entries (models of IR < 4 list initializers as
 * inputs). Nothing is dropped when some node carries a subgraph
 * attribute, since subgraphs may read outer initializers by name.
 * Initializers kept from external data are written inline (float32 or
 * int64), because a model loaded from memory has no directory to read
 * external files from.
 */
#include "config.h"

#include "solver/rewrite.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena --------------------------------------------------------------- */

struct arena {
	void **blk;    /* calloc'd blocks */
	size_t n, cap;
};

/* Zeroed memory that lives until ar_free(); NULL on failure. */
static void *ar_alloc(struct arena *a, size_t size)
{
	void *p;

	if (a->n == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 64;
		void **nb = realloc(a->blk, cap * sizeof(*nb));

		if (nb == NULL)
			return NULL;
		a->blk = nb;
		a->cap = cap;
	}
	p = calloc(1, size ? size : 1);
	if (p != NULL)
		a->blk[a->n++] = p;
	return p;
}

static void *ar_array(struct arena *a, size_t n, size_t size)
{
	size_t bytes;

	if (lr_mul_size(n, size, &bytes) != 0)
		return NULL;
	return ar_alloc(a, bytes);
}

static char *ar_strdup(struct arena *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = ar_alloc(a, n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

static void ar_free(struct arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->blk[i]);
	free(a->blk);
	a->blk = NULL;
	a->n = a->cap = 0;
}

/* ---- edits --------------------------------------------------------------- */

struct edit {
	const lr_model *m;
	const Onnx__GraphProto *g;      /* the original graph */
	struct arena ar;
	int *nrep;                      /* per proto node: -1 keep, else count */
	Onnx__NodeProto *(*rep)[3];     /* per proto node: replacements */
	Onnx__TensorProto **init_rep;   /* per initializer: same-name replacement */
	int *init_of;                   /* per value: initializer index or -1 */
	Onnx__TensorProto **add_init;   /* new initializers */
	size_t n_add_init;
	Onnx__ValueInfoProto **add_vi;  /* new value_info entries */
	size_t n_add_vi;
	const char **gone;              /* value names that no longer exist */
	size_t n_gone;
	const char **names;             /* names created by this edit */
	size_t n_names;
	size_t cap;                     /* capacity of each list above */
	Onnx__StringStringEntryProto **meta;
	size_t n_meta;
};

static const char *str0(const char *s)
{
	return s != NULL ? s : "";
}

static int is_default_domain(const char *d)
{
	return d == NULL || d[0] == '\0' || strcmp(d, "ai.onnx") == 0;
}

static int is_op(const lr_node *n, const char *op)
{
	return strcmp(n->op_type, op) == 0 && is_default_domain(n->proto->domain);
}

/* Prepares an edit with room for `cap` new names, initializers, etc. */
static int edit_init(struct edit *ed, const lr_model *m, size_t cap)
{
	const Onnx__GraphProto *g = m->proto->graph;

	memset(ed, 0, sizeof(*ed));
	ed->m = m;
	ed->g = g;
	ed->cap = cap;
	ed->nrep = ar_array(&ed->ar, g->n_node + 1, sizeof(int));
	ed->rep = ar_array(&ed->ar, g->n_node + 1, sizeof(*ed->rep));
	ed->init_rep = ar_array(&ed->ar, g->n_initializer + 1, sizeof(*ed->init_rep));
	ed->init_of = ar_array(&ed->ar, (size_t)m->nvalues + 1, sizeof(int));
	ed->add_init = ar_array(&ed->ar, cap, sizeof(*ed->add_init));
	ed->add_vi = ar_array(&ed->ar, cap, sizeof(*ed->add_vi));
	ed->gone = ar_array(&ed->ar, cap + g->n_initializer, sizeof(*ed->gone));
	ed->names = ar_array(&ed->ar, cap, sizeof(*ed->names));
	ed->meta = ar_array(&ed->ar, m->proto->n_metadata_props + cap,
			    sizeof(*ed->meta));
	if (ed->nrep == NULL || ed->rep == NULL || ed->init_rep == NULL ||
	    ed->init_of == NULL || ed->add_init == NULL || ed->add_vi == NULL ||
	    ed->gone == NULL || ed->names == NULL || ed->meta == NULL)
		return LR_ENOMEM;
	for (size_t i = 0; i < g->n_node; i++)
		ed->nrep[i] = -1;
	for (int v = 0; v < m->nvalues; v++)
		ed->init_of[v] = -1;
	for (size_t i = 0; i < g->n_initializer; i++) {
		int v = lr_model_find_value(m, str0(g->initializer[i]->name));

		if (v >= 0)
			ed->init_of[v] = (int)i;
	}
	for (size_t i = 0; i < m->proto->n_metadata_props; i++)
		ed->meta[ed->n_meta++] = m->proto->metadata_props[i];
	return 0;
}

/* 1 when `s` names a value, node, value_info entry or new name. */
static int name_taken(const struct edit *ed, const char *s)
{
	if (lr_model_find_value(ed->m, s) >= 0)
		return 1;
	for (size_t i = 0; i < ed->g->n_node; i++)
		if (strcmp(str0(ed->g->node[i]->name), s) == 0)
			return 1;
	for (size_t i = 0; i < ed->g->n_value_info; i++)
		if (strcmp(str0(ed->g->value_info[i]->name), s) == 0)
			return 1;
	for (size_t i = 0; i < ed->n_names; i++)
		if (strcmp(ed->names[i], s) == 0)
			return 1;
	return 0;
}

/* A free name "<base><suffix>", else "<base><suffix>.<n>"; NULL on ENOMEM. */
static char *unique_name(struct edit *ed, const char *base, const char *suffix)
{
	size_t len = strlen(base) + strlen(suffix) + 24;
	char *s = ar_alloc(&ed->ar, len);

	if (s == NULL || ed->n_names == ed->cap)
		return NULL;
	snprintf(s, len, "%s%s", base, suffix);
	for (unsigned long k = 1; name_taken(ed, s); k++)
		snprintf(s, len, "%s%s.%lu", base, suffix, k);
	ed->names[ed->n_names++] = s;
	return s;
}

static void put_f32(uint8_t *p, float v)
{
	uint32_t u;

	memcpy(&u, &v, sizeof(u));
	p[0] = (uint8_t)u;
	p[1] = (uint8_t)(u >> 8);
	p[2] = (uint8_t)(u >> 16);
	p[3] = (uint8_t)(u >> 24);
}

/*
 * A new float32 TensorProto with zeroed raw_data of the given shape; the
 * caller fills raw_data with put_f32(). NULL on ENOMEM.
 */
static Onnx__TensorProto *new_tensor(struct edit *ed, char *name, int ndim,
				     const int64_t *dims)
{
	Onnx__TensorProto *tp = ar_alloc(&ed->ar, sizeof(*tp));
	int64_t n = 1;

	if (tp == NULL)
		return NULL;
	onnx__tensor_proto__init(tp);
	tp->name = name;
	tp->n_dims = (size_t)ndim;
	tp->dims = ar_array(&ed->ar, (size_t)ndim + 1, sizeof(int64_t));
	if (tp->dims == NULL)
		return NULL;
	for (int i = 0; i < ndim; i++) {
		tp->dims[i] = dims[i];
		if (lr_mul_i64(n, dims[i], &n) != 0 || n > INT64_MAX / 4)
			return NULL;
	}
	tp->has_data_type = 1;
	tp->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	tp->has_raw_data = 1;
	tp->raw_data.len = (size_t)n * 4;
	tp->raw_data.data = ar_alloc(&ed->ar, tp->raw_data.len);
	return tp->raw_data.data != NULL ? tp : NULL;
}

/* A ValueInfoProto with a tensor type of `elem` and optional shape. */
static Onnx__ValueInfoProto *new_value_info(struct edit *ed, char *name,
					    int elem, int ndim,
					    const int64_t *dims)
{
	Onnx__ValueInfoProto *vi = ar_alloc(&ed->ar, sizeof(*vi));
	Onnx__TypeProto *tp = ar_alloc(&ed->ar, sizeof(*tp));
	Onnx__TypeProto__Tensor *tt = ar_alloc(&ed->ar, sizeof(*tt));
	Onnx__TensorShapeProto *sh;

	if (vi == NULL || tp == NULL || tt == NULL)
		return NULL;
	onnx__value_info_proto__init(vi);
	onnx__type_proto__init(tp);
	onnx__type_proto__tensor__init(tt);
	vi->name = name;
	vi->type = tp;
	tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	tp->tensor_type = tt;
	tt->has_elem_type = 1;
	tt->elem_type = elem;
	if (ndim < 0)
		return vi;
	sh = ar_alloc(&ed->ar, sizeof(*sh));
	if (sh == NULL)
		return NULL;
	onnx__tensor_shape_proto__init(sh);
	sh->n_dim = (size_t)ndim;
	sh->dim = ar_array(&ed->ar, (size_t)ndim + 1, sizeof(*sh->dim));
	if (sh->dim == NULL)
		return NULL;
	for (int i = 0; i < ndim; i++) {
		Onnx__TensorShapeProto__Dimension *d = ar_alloc(&ed->ar, sizeof(*d));

		if (d == NULL)
			return NULL;
		onnx__tensor_shape_proto__dimension__init(d);
		d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
		d->dim_value = dims[i];
		sh->dim[i] = d;
	}
	tt->shape = sh;
	return vi;
}

/* Registers a new initializer (and, for IR < 4, its graph input later). */
static void add_init(struct edit *ed, Onnx__TensorProto *tp)
{
	LR_ASSERT(ed->n_add_init < ed->cap);
	ed->add_init[ed->n_add_init++] = tp;
}

static void add_gone(struct edit *ed, const char *name)
{
	LR_ASSERT(ed->n_gone < ed->cap + ed->g->n_initializer);
	ed->gone[ed->n_gone++] = name;
}

static int is_gone(const struct edit *ed, const char *name)
{
	for (size_t i = 0; i < ed->n_gone; i++)
		if (strcmp(ed->gone[i], name) == 0)
			return 1;
	return 0;
}

/* Sets metadata `key` to `value`, replacing an existing entry's value. */
static int set_meta(struct edit *ed, const char *key, const char *value)
{
	Onnx__StringStringEntryProto *e = ar_alloc(&ed->ar, sizeof(*e));
	size_t i;

	if (e == NULL)
		return LR_ENOMEM;
	onnx__string_string_entry_proto__init(e);
	e->key = ar_strdup(&ed->ar, key);
	e->value = ar_strdup(&ed->ar, value);
	if (e->key == NULL || e->value == NULL)
		return LR_ENOMEM;
	for (i = 0; i < ed->n_meta; i++)
		if (strcmp(str0(ed->meta[i]->key), key) == 0)
			break;
	if (i == ed->n_meta) {
		LR_ASSERT(ed->n_meta < ed->m->proto->n_metadata_props + ed->cap);
		ed->n_meta++;
	}
	ed->meta[i] = e;
	return 0;
}

static int has_subgraph(const Onnx__NodeProto *p)
{
	for (size_t i = 0; i < p->n_attribute; i++)
		if (p->attribute[i]->g != NULL || p->attribute[i]->n_graphs > 0)
			return 1;
	return 0;
}

/*
 * An initializer stored as external data, re-encoded inline from the
 * loaded tensor. Only float32 and int64 tensors round-trip unchanged.
 */
static int inline_external(struct edit *ed, const Onnx__TensorProto *tp,
			   Onnx__TensorProto **res, lr_msg *msg)
{
	int v = lr_model_find_value(ed->m, str0(tp->name));
	const lr_tensor *t = v >= 0 ? ed->m->values[v].init : NULL;
	Onnx__TensorProto *c;

	if (t == NULL || t->data == NULL || (int)t->dtype != tp->data_type)
		return lr_fail(msg, LR_EUNSUPPORTED,
			       "initializer '%s' is stored as external data of a type other than float32 or int64; it cannot be rewritten inline",
			       str0(tp->name));
	c = ar_alloc(&ed->ar, sizeof(*c));
	if (c == NULL)
		return LR_ENOMEM;
	*c = *tp;
	c->n_external_data = 0;
	c->external_data = NULL;
	c->has_data_location = 0;
	c->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT;
	c->n_float_data = c->n_int64_data = c->n_int32_data = 0;
	c->n_double_data = c->n_uint64_data = c->n_string_data = 0;
	c->has_raw_data = 1;
	c->raw_data.len = lr_tensor_bytes(t);
	c->raw_data.data = t->data; /* host order; little-endian hosts only */
	*res = c;
	return 0;
}

/* Packs the edited model and loads it into *out. */
static int edit_finish(struct edit *ed, lr_model **out, lr_msg *msg)
{
	const lr_model *m = ed->m;
	const Onnx__GraphProto *g = ed->g;
	Onnx__ModelProto model = *m->proto;
	Onnx__GraphProto graph = *g;
	int *uses = NULL, subgraphs = 0, rc = 0;
	size_t nn = 0, ni = 0, nin = 0, nvi = 0, len;
	uint8_t *buf = NULL;

	*out = NULL;
	/* Nodes in file order, replacements in place of their originals. */
	graph.node = ar_array(&ed->ar, 3 * g->n_node + 1, sizeof(*graph.node));
	uses = calloc((size_t)m->nvalues + 1, sizeof(int));
	if (graph.node == NULL || uses == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < g->n_node; i++) {
		if (ed->nrep[i] < 0)
			graph.node[nn++] = g->node[i];
		else
			for (int k = 0; k < ed->nrep[i]; k++)
				graph.node[nn++] = ed->rep[i][k];
	}
	graph.n_node = nn;
	for (size_t i = 0; i < nn; i++) {
		const Onnx__NodeProto *p = graph.node[i];

		subgraphs |= has_subgraph(p);
		for (size_t k = 0; k < p->n_input; k++) {
			int v = p->input[k] && p->input[k][0]
					? lr_model_find_value(m, p->input[k])
					: -1;

			if (v >= 0)
				uses[v]++;
		}
	}

	/* Initializers: kept (maybe replaced or inlined), dropped, added. */
	graph.initializer = ar_array(&ed->ar, g->n_initializer + ed->n_add_init + 1,
				     sizeof(*graph.initializer));
	if (graph.initializer == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < g->n_initializer; i++) {
		Onnx__TensorProto *tp = ed->init_rep[i] ? ed->init_rep[i] : g->initializer[i];
		int v = lr_model_find_value(m, str0(tp->name));

		if (!subgraphs && v >= 0 && m->values[v].nconsumers > 0 && uses[v] == 0 &&
		    !m->values[v].graph_output) {
			add_gone(ed, m->values[v].name);
			continue;
		}
		if (tp->has_data_location &&
		    tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
			rc = inline_external(ed, tp, &tp, msg);
			if (rc != 0)
				goto out;
		}
		graph.initializer[ni++] = tp;
	}
	for (size_t i = 0; i < ed->n_add_init; i++)
		graph.initializer[ni++] = ed->add_init[i];
	graph.n_initializer = ni;

	/* Graph inputs: drop the dropped; IR < 4 lists initializers too. */
	graph.input = ar_array(&ed->ar, g->n_input + ed->n_add_init + 1, sizeof(*graph.input));
	graph.value_info = ar_array(&ed->ar, g->n_value_info + ed->n_add_vi + 1,
				    sizeof(*graph.value_info));
	if (graph.input == NULL || graph.value_info == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < g->n_input; i++)
		if (!is_gone(ed, str0(g->input[i]->name)))
			graph.input[nin++] = g->input[i];
	if (m->ir_version < 4)
		for (size_t i = 0; i < ed->n_add_init; i++) {
			Onnx__TensorProto *tp = ed->add_init[i];
			Onnx__ValueInfoProto *vi =
				new_value_info(ed, tp->name, tp->data_type, (int)tp->n_dims, tp->dims);

			if (vi == NULL) {
				rc = LR_ENOMEM;
				goto out;
			}
			graph.input[nin++] = vi;
		}
	graph.n_input = nin;
	for (size_t i = 0; i < g->n_value_info; i++)
		if (!is_gone(ed, str0(g->value_info[i]->name)))
			graph.value_info[nvi++] = g->value_info[i];
	for (size_t i = 0; i < ed->n_add_vi; i++)
		graph.value_info[nvi++] = ed->add_vi[i];
	graph.n_value_info = nvi;

	model.graph = &graph;
	model.n_metadata_props = ed->n_meta;
	model.metadata_props = ed->meta;

	len = onnx__model_proto__get_packed_size(&model);
	buf = malloc(len ? len : 1);
	if (buf == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	len = onnx__model_proto__pack(&model, buf);
	rc = lr_model_load_mem(buf, len, "rewritten model", NULL, out, msg);
out:
	free(buf);
	free(uses);
	return rc;
}

/* ---- BatchNormalization folding ------------------------------------------ */

/* The float data of initializer input k of n with nelem == want, or NULL. */
static const float *init_vec(const lr_model *m, const lr_node *n, int k, int64_t want)
{
	const lr_tensor *t;

	if (k >= n->nin || n->in[k] < 0)
		return NULL;
	t = m->values[n->in[k]].init;
	if (t == NULL || t->dtype != LR_DT_FLOAT || t->data == NULL || t->nelem != want)
		return NULL;
	return t->data;
}

/* The Conv feeding BN node `bi` when the pair can be folded, else -1. */
static int foldable_conv(const lr_model *m, int bi)
{
	const lr_node *bn = &m->nodes[bi], *cv;
	const lr_value *x;
	const lr_tensor *w;
	int64_t d;

	if (!is_op(bn, "BatchNormalization") || bn->nin != 5 || bn->nout < 1 ||
	    bn->out[0] < 0 || bn->in[0] < 0)
		return -1;
	for (int k = 1; k < bn->nout; k++)
		if (bn->out[k] >= 0)
			return -1; /* training outputs requested */
	if (lr_node_attr_int(bn, "training_mode", 0) != 0 ||
	    lr_node_attr_int(bn, "spatial", 1) != 1)
		return -1;
	x = &m->values[bn->in[0]];
	if (x->producer < 0 || x->nconsumers != 1 || x->graph_output)
		return -1;
	cv = &m->nodes[x->producer];
	if (!is_op(cv, "Conv") || cv->nout != 1 || cv->out[0] != bn->in[0] ||
	    cv->nin < 2 || cv->in[1] < 0)
		return -1;
	w = m->values[cv->in[1]].init;
	if (w == NULL || w->dtype != LR_DT_FLOAT || w->data == NULL || w->ndim < 3 ||
	    w->dims[0] < 1)
		return -1;
	d = w->dims[0];
	for (int k = 1; k <= 4; k++)
		if (init_vec(m, bn, k, d) == NULL)
			return -1;
	if (cv->nin >= 3 && cv->in[2] >= 0 && init_vec(m, cv, 2, d) == NULL)
		return -1;
	return x->producer;
}

/*
 * A tensor for a folded weight or bias: the original initializer's name
 * and place when only `users` nodes read it (1: the Conv itself), else a
 * new initializer named "<orig>.folded".
 */
static Onnx__TensorProto *fold_target(struct edit *ed, int v, int ndim,
				      const int64_t *dims)
{
	const lr_model *m = ed->m;
	Onnx__TensorProto *tp;
	char *name;

	if (m->values[v].nconsumers == 1 && !m->values[v].graph_output &&
	    ed->init_of[v] >= 0 && ed->init_rep[ed->init_of[v]] == NULL) {
		const Onnx__TensorProto *orig = ed->g->initializer[ed->init_of[v]];

		tp = new_tensor(ed, orig->name, ndim, dims);
		if (tp != NULL) {
			tp->doc_string = orig->doc_string;
			ed->init_rep[ed->init_of[v]] = tp;
		}
		return tp;
	}
	name = unique_name(ed, m->values[v].name, ".folded");
	if (name == NULL)
		return NULL;
	tp = new_tensor(ed, name, ndim, dims);
	if (tp != NULL)
		add_init(ed, tp);
	return tp;
}

static int fold_one(struct edit *ed, int bi, int ci)
{
	const lr_model *m = ed->m;
	const lr_node *bn = &m->nodes[bi], *cv = &m->nodes[ci];
	const lr_tensor *w = m->values[cv->in[1]].init;
	int64_t d = w->dims[0], per = w->nelem / d;
	const float *scale = init_vec(m, bn, 1, d), *bias = init_vec(m, bn, 2, d);
	const float *mean = init_vec(m, bn, 3, d), *var = init_vec(m, bn, 4, d);
	const float *cb = cv->nin >= 3 && cv->in[2] >= 0 ? init_vec(m, cv, 2, d) : NULL;
	double eps = lr_node_attr_float(bn, "epsilon", 1e-5f);
	Onnx__TensorProto *wt, *bt;
	Onnx__NodeProto *np;
	const float *wd = w->data;

	wt = fold_target(ed, cv->in[1], w->ndim, w->dims);
	bt = fold_target(ed, cb != NULL ? cv->in[2] : bn->in[2], 1, &d);
	np = ar_alloc(&ed->ar, sizeof(*np));
	if (wt == NULL || bt == NULL || np == NULL)
		return LR_ENOMEM;
	for (int64_t o = 0; o < d; o++) {
		double s = (double)scale[o] / sqrt((double)var[o] + eps);
		double b0 = cb != NULL ? cb[o] : 0.0;

		for (int64_t j = 0; j < per; j++)
			put_f32(wt->raw_data.data + 4 * (o * per + j),
				(float)((double)wd[o * per + j] * s));
		put_f32(bt->raw_data.data + 4 * o,
			(float)((b0 - (double)mean[o]) * s + (double)bias[o]));
	}

	/* The Conv reads W', b' and produces the BN's output. */
	*np = *cv->proto;
	np->n_input = 3;
	np->input = ar_array(&ed->ar, 3, sizeof(char *));
	np->output = ar_array(&ed->ar, np->n_output, sizeof(char *));
	if (np->input == NULL || np->output == NULL)
		return LR_ENOMEM;
	np->input[0] = cv->proto->input[0];
	np->input[1] = wt->name;
	np->input[2] = bt->name;
	np->output[0] = bn->proto->output[0];
	ed->nrep[cv->proto_index] = 1;
	ed->rep[cv->proto_index][0] = np;
	ed->nrep[bn->proto_index] = 0;
	add_gone(ed, m->values[cv->out[0]].name);
	return 0;
}

int lr_rewrite_fold_bn(const lr_model *m, lr_model **out, int *nfolded,
		       lr_msg *msg)
{
	struct edit ed;
	int count = 0, rc;

	*out = NULL;
	if (nfolded != NULL)
		*nfolded = 0;
	rc = edit_init(&ed, m, 4 * (size_t)m->nnodes + 8);
	if (rc != 0)
		goto out;
	for (int i = 0; i < m->nnodes; i++) {
		int ci = foldable_conv(m, i);

		if (ci < 0)
			continue;
		rc = fold_one(&ed, i, ci);
		if (rc != 0)
			goto out;
		count++;
	}
	rc = edit_finish(&ed, out, msg);
	if (rc != 0) {
		lr_msg_prefix(msg, "folding BatchNormalization");
		goto out;
	}
	if (nfolded != NULL)
		*nfolded = count;
out:
	if (rc == LR_ENOMEM)
		lr_fail(msg, rc, "out of memory folding BatchNormalization");
	ar_free(&ed.ar);
	return rc;
}

/* ---- activation analysis ------------------------------------------------- */

int lr_conv_activation(const lr_model *m, int node, char *why, size_t len)
{
	const lr_node *n, *first = NULL;
	const lr_value *v;
	int ndistinct = 0;
	char tmp[160];

	if (node < 0 || node >= m->nnodes)
		return LR_EINVAL;
	n = &m->nodes[node];
	tmp[0] = '\0';
	if ((!is_op(n, "Conv") && !is_op(n, "Gemm") && !is_op(n, "MatMul")) || n->nout < 1 ||
	    n->out[0] < 0) {
		snprintf(tmp, sizeof(tmp), "not a Conv, Gemm or MatMul");
		goto none;
	}
	v = &m->values[n->out[0]];
	if (v->graph_output) {
		snprintf(tmp, sizeof(tmp), "graph output");
		goto none;
	}
	for (int i = 0; i < m->nnodes; i++) {
		const lr_node *c = &m->nodes[i];

		for (int k = 0; k < c->nin; k++)
			if (c->in[k] == n->out[0]) {
				if (ndistinct++ == 0)
					first = c;
				break;
			}
	}
	if (ndistinct == 0) {
		snprintf(tmp, sizeof(tmp), "unused");
		goto none;
	}
	if (ndistinct > 1) {
		snprintf(tmp, sizeof(tmp), "feeds %d nodes", ndistinct);
		goto none;
	}
	if (is_op(first, "Relu") && v->nconsumers == 1) {
		if (why != NULL && len > 0)
			why[0] = '\0';
		return LR_ACT_RELU;
	}
	snprintf(tmp, sizeof(tmp), "feeds %s", first->op_type);
none:
	if (why != NULL && len > 0)
		snprintf(why, len, "%s", tmp);
	return LR_ACT_NONE;
}

/* ---- low-rank replacement ------------------------------------------------ */

static int all_finite(const float *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(p[i]))
			return 0;
	return 1;
}

/* The in/out features of FC node n with weight w (2-D). */
static void fc_dims(const lr_node *n, const lr_tensor *w, int64_t *c, int64_t *d)
{
	int tb = is_op(n, "Gemm") && lr_node_attr_int(n, "transB", 0) != 0;

	*d = tb ? w->dims[0] : w->dims[1];
	*c = tb ? w->dims[1] : w->dims[0];
}

/* Checks a decomposition of a Gemm or MatMul (fully connected) node. */
static int check_fc(const lr_model *m, const lr_decomp *dc, const lr_tensor **wout, lr_msg *msg)
{
	const lr_node *n = &m->nodes[dc->node];
	const lr_tensor *w;
	int64_t c, d, na, nb;

	if (n->nin < 2 || n->in[0] < 0 || n->in[1] < 0 || n->nout != 1 || n->out[0] < 0)
		return lr_fail(msg, LR_EINVAL, "node '%s' (%s) lacks its input, weight or output",
			       n->name, n->op_type);
	if (is_op(n, "Gemm") && lr_node_attr_int(n, "transA", 0) != 0)
		return lr_fail(msg, LR_EUNSUPPORTED, "node '%s' (Gemm): transA = 1 is not decomposed",
			       n->name);
	w = m->values[n->in[1]].init;
	if (w == NULL || w->dtype != LR_DT_FLOAT || w->ndim != 2 || w->data == NULL)
		return lr_fail(msg, LR_EUNSUPPORTED,
			       "node '%s' (%s): weight '%s' is not a 2-D float initializer",
			       n->name, n->op_type, m->values[n->in[1]].name);
	fc_dims(n, w, &c, &d);
	if (dc->r < 1 || dc->r2 != 0)
		return lr_fail(msg, LR_EINVAL, "node '%s' (%s): rank %lld must be at least 1 (and no spatial split)",
			       n->name, n->op_type, (long long)dc->r);
	if (lr_mul_i64(dc->r, c, &na) != 0 || lr_mul_i64(dc->r, d, &nb) != 0)
		return lr_fail(msg, LR_EINVAL, "node '%s' (%s): rank %lld is too large", n->name,
			       n->op_type, (long long)dc->r);
	if (dc->wa == NULL || dc->wb == NULL || dc->nwa != (size_t)na || dc->nwb != (size_t)nb)
		return lr_fail(msg, LR_EINVAL,
			       "node '%s' (%s): the factors have %zu and %zu values; rank %lld needs %lld (%lld x %lld) and %lld (%lld x %lld)",
			       n->name, n->op_type, dc->wa ? dc->nwa : 0, dc->wb ? dc->nwb : 0,
			       (long long)dc->r, (long long)na, (long long)dc->r, (long long)c,
			       (long long)nb, (long long)d, (long long)dc->r);
	if (dc->nba != (dc->ba != NULL ? (size_t)dc->r : 0) ||
	    dc->nbb != (dc->bb != NULL ? (size_t)d : 0))
		return lr_fail(msg, LR_EINVAL,
			       "node '%s' (%s): bias sizes %zu and %zu do not match rank %lld and %lld outputs",
			       n->name, n->op_type, dc->nba, dc->nbb, (long long)dc->r, (long long)d);
	if (!all_finite(dc->wa, dc->nwa) || !all_finite(dc->wb, dc->nwb) ||
	    (dc->ba != NULL && !all_finite(dc->ba, dc->nba)) ||
	    (dc->bb != NULL && !all_finite(dc->bb, dc->nbb)))
		return lr_fail(msg, LR_EINVAL, "node '%s' (%s): a factor holds NaN or infinity",
			       n->name, n->op_type);
	*wout = w;
	return 0;
}

/* Checks decomposition `k`; on success *w is the Conv's weight. */
static int check_decomp(const lr_model *m, const lr_decomp *dc, int k,
			const char *seen, const lr_tensor **wout, lr_msg *msg)
{
	const lr_node *n;
	const lr_tensor *w;
	int64_t d, c, kprod = 1, na, nb;

	if (dc->node < 0 || dc->node >= m->nnodes)
		return lr_fail(msg, LR_EINVAL,
			       "decomposition #%d: node index %d is out of range (the model has %d nodes)",
			       k, dc->node, m->nnodes);
	n = &m->nodes[dc->node];
	if (seen[dc->node])
		return lr_fail(msg, LR_EINVAL, "node '%s' is listed for decomposition twice",
			       n->name);
	if (is_op(n, "Gemm") || is_op(n, "MatMul"))
		return check_fc(m, dc, wout, msg);
	if (!is_op(n, "Conv"))
		return lr_fail(msg, LR_EINVAL, "node '%s' is a %s, not a Conv; only Conv, Gemm and MatMul can be decomposed",
			       n->name, n->op_type);
	if (lr_node_attr_int(n, "group", 1) != 1)
		return lr_fail(msg, LR_EUNSUPPORTED,
			       "node '%s' (Conv): group %lld is not supported; only group 1 can be decomposed",
			       n->name, (long long)lr_node_attr_int(n, "group", 1));
	if (n->nin < 2 || n->in[0] < 0 || n->in[1] < 0 || n->nout != 1 || n->out[0] < 0)
		return lr_fail(msg, LR_EINVAL, "node '%s' (Conv) lacks its input, weight or output",
			       n->name);
	w = m->values[n->in[1]].init;
	if (w == NULL)
		return lr_fail(msg, LR_EUNSUPPORTED,
			       "node '%s' (Conv): weight '%s' is not an initializer",
			       n->name, m->values[n->in[1]].name);
	if (w->dtype != LR_DT_FLOAT || w->ndim < 3 || w->data == NULL)
		return lr_fail(msg, LR_EUNSUPPORTED,
			       "node '%s' (Conv): weight '%s' is not a float tensor with at least 3 dimensions",
			       n->name, m->values[n->in[1]].name);
	d = w->dims[0];
	c = w->dims[1];
	for (int i = 2; i < w->ndim; i++)
		kprod *= w->dims[i];
	if (dc->r < 1)
		return lr_fail(msg, LR_EINVAL, "node '%s' (Conv): rank %lld must be at least 1",
			       n->name, (long long)dc->r);
	if (dc->r2 != 0) {
		char ap[32];
		const char *autopad = lr_node_attr_str(n, "auto_pad", "NOTSET", ap, sizeof(ap));

		if (w->ndim != 4 || dc->r2 < 1)
			return lr_fail(msg, LR_EINVAL,
				       "node '%s' (Conv): a spatial split needs a 2-D kernel and d'' >= 1 (got %dD, d'' %lld)",
				       n->name, w->ndim - 2, (long long)dc->r2);
		if (strcmp(autopad, "NOTSET") != 0 && strcmp(autopad, "VALID") != 0)
			return lr_fail(msg, LR_EUNSUPPORTED,
				       "node '%s' (Conv): auto_pad %s cannot be split into kh x 1 and 1 x kw; only explicit pads",
				       n->name, autopad);
		if (dc->wv == NULL || dc->nwv != (size_t)(dc->r2 * c * w->dims[2]))
			return lr_fail(msg, LR_EINVAL,
				       "node '%s' (Conv): the kh x 1 factor has %zu values; d'' %lld needs %lld",
				       n->name, dc->wv ? dc->nwv : 0, (long long)dc->r2,
				       (long long)(dc->r2 * c * w->dims[2]));
		if (!all_finite(dc->wv, dc->nwv))
			return lr_fail(msg, LR_EINVAL, "node '%s' (Conv): a factor holds NaN or infinity",
				       n->name);
		/* the channel split then acts on the (1 x kw, d'' -> d) layer */
		c = dc->r2;
		kprod = w->dims[3];
	}
	if (lr_mul_i64(dc->r, c * kprod, &na) != 0 || lr_mul_i64(dc->r, d, &nb) != 0)
		return lr_fail(msg, LR_EINVAL, "node '%s' (Conv): rank %lld is too large",
			       n->name, (long long)dc->r);
	if (dc->wa == NULL || dc->wb == NULL)
		return lr_fail(msg, LR_EINVAL, "node '%s' (Conv): a factor array is NULL", n->name);
	if (dc->nwa != (size_t)na)
		return lr_fail(msg, LR_EINVAL,
			       "node '%s' (Conv): the first factor has %zu values; rank %lld needs %lld (%lld x %lld x %lld)",
			       n->name, dc->nwa, (long long)dc->r, (long long)na, (long long)dc->r,
			       (long long)c, (long long)kprod);
	if (dc->nwb != (size_t)nb)
		return lr_fail(msg, LR_EINVAL,
			       "node '%s' (Conv): the 1x1 factor has %zu values; rank %lld needs %lld (%lld x %lld)",
			       n->name, dc->nwb, (long long)dc->r, (long long)nb, (long long)d,
			       (long long)dc->r);
	if (dc->nba != (dc->ba != NULL ? (size_t)dc->r : 0) ||
	    dc->nbb != (dc->bb != NULL ? (size_t)d : 0))
		return lr_fail(msg, LR_EINVAL,
			       "node '%s' (Conv): bias sizes %zu and %zu do not match rank %lld and %lld output channels",
			       n->name, dc->nba, dc->nbb, (long long)dc->r, (long long)d);
	if (!all_finite(dc->wa, dc->nwa) || !all_finite(dc->wb, dc->nwb) ||
	    (dc->ba != NULL && !all_finite(dc->ba, dc->nba)) ||
	    (dc->bb != NULL && !all_finite(dc->bb, dc->nbb)))
		return lr_fail(msg, LR_EINVAL, "node '%s' (Conv): a factor holds NaN or infinity",
			       n->name);
	*wout = w;
	return 0;
}

static Onnx__TensorProto *factor_tensor(struct edit *ed, const char *base,
					const char *suffix, int ndim,
					const int64_t *dims, const float *vals)
{
	char *name = unique_name(ed, base, suffix);
	Onnx__TensorProto *tp = name ? new_tensor(ed, name, ndim, dims) : NULL;

	if (tp == NULL)
		return NULL;
	for (size_t i = 0; i < tp->raw_data.len / 4; i++)
		put_f32(tp->raw_data.data + 4 * i, vals[i]);
	add_init(ed, tp);
	return tp;
}

/* An INTS attribute in the edit's arena; NULL when out of memory. */
static Onnx__AttributeProto *ints_attr(struct edit *ed, const char *name, int n,
				       const int64_t *v)
{
	Onnx__AttributeProto *a = ar_alloc(&ed->ar, sizeof(*a));
	int64_t *vals = ar_array(&ed->ar, (size_t)n, sizeof(int64_t));

	if (a == NULL || vals == NULL)
		return NULL;
	onnx__attribute_proto__init(a);
	a->name = ar_strdup(&ed->ar, name);
	a->has_type = 1;
	a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
	memcpy(vals, v, (size_t)n * sizeof(int64_t));
	a->ints = vals;
	a->n_ints = (size_t)n;
	return a->name != NULL ? a : NULL;
}

/*
 * Gives node p (a copy of the original Conv) the geometry of one half of a
 * spatial split: vertical (kh x 1: the original's vertical stride, dilation
 * and pads) or horizontal (1 x kw: the horizontal ones). Other attributes
 * of the original (group, doc) are kept; auto_pad VALID becomes pads 0.
 */
static int split_attrs(struct edit *ed, const lr_node *n, Onnx__NodeProto *p,
		       const lr_tensor *w, int vertical)
{
	int64_t st[2] = { 1, 1 }, dl[2] = { 1, 1 }, pd[4] = { 0, 0, 0, 0 };
	int64_t ks[2], s2[2], d2[2], p4[4];
	Onnx__AttributeProto **attrs;
	size_t na = 0;
	int cnt;

	lr_node_attr_ints(n, "strides", st, 2, &cnt);
	lr_node_attr_ints(n, "dilations", dl, 2, &cnt);
	lr_node_attr_ints(n, "pads", pd, 4, &cnt);
	ks[0] = vertical ? w->dims[2] : 1;
	ks[1] = vertical ? 1 : w->dims[3];
	s2[0] = vertical ? st[0] : 1;
	s2[1] = vertical ? 1 : st[1];
	d2[0] = vertical ? dl[0] : 1;
	d2[1] = vertical ? 1 : dl[1];
	p4[0] = vertical ? pd[0] : 0;
	p4[1] = vertical ? 0 : pd[1];
	p4[2] = vertical ? pd[2] : 0;
	p4[3] = vertical ? 0 : pd[3];
	attrs = ar_array(&ed->ar, p->n_attribute + 4, sizeof(*attrs));
	if (attrs == NULL)
		return LR_ENOMEM;
	for (size_t i = 0; i < p->n_attribute; i++) {
		const char *an = str0(p->attribute[i]->name);

		if (strcmp(an, "strides") != 0 && strcmp(an, "dilations") != 0 &&
		    strcmp(an, "pads") != 0 && strcmp(an, "kernel_shape") != 0 &&
		    strcmp(an, "auto_pad") != 0)
			attrs[na++] = p->attribute[i];
	}
	attrs[na++] = ints_attr(ed, "kernel_shape", 2, ks);
	attrs[na++] = ints_attr(ed, "strides", 2, s2);
	attrs[na++] = ints_attr(ed, "dilations", 2, d2);
	attrs[na++] = ints_attr(ed, "pads", 4, p4);
	for (size_t i = na - 4; i < na; i++)
		if (attrs[i] == NULL)
			return LR_ENOMEM;
	p->attribute = attrs;
	p->n_attribute = na;
	return 0;
}

/* A Gemm (transB = 1) node in the arena: in -> out with weight and bias. */
static Onnx__NodeProto *gemm_node(struct edit *ed, const lr_node *n, char *name, char *in,
				  const Onnx__TensorProto *wt, const Onnx__TensorProto *bt,
				  char *out)
{
	Onnx__NodeProto *p = ar_alloc(&ed->ar, sizeof(*p));
	Onnx__AttributeProto *a = ar_alloc(&ed->ar, sizeof(*a));

	if (p == NULL || a == NULL || name == NULL)
		return NULL;
	onnx__node_proto__init(p);
	onnx__attribute_proto__init(a);
	a->name = ar_strdup(&ed->ar, "transB");
	a->has_type = 1;
	a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
	a->has_i = 1;
	a->i = 1;
	p->name = name;
	p->op_type = ar_strdup(&ed->ar, "Gemm");
	p->domain = n->proto->domain;
	p->n_attribute = 1;
	p->attribute = ar_array(&ed->ar, 1, sizeof(*p->attribute));
	p->n_input = bt != NULL ? 3 : 2;
	p->input = ar_array(&ed->ar, 3, sizeof(char *));
	p->n_output = 1;
	p->output = ar_array(&ed->ar, 1, sizeof(char *));
	if (a->name == NULL || p->op_type == NULL || p->attribute == NULL || p->input == NULL ||
	    p->output == NULL)
		return NULL;
	p->attribute[0] = a;
	p->input[0] = in;
	p->input[1] = wt->name;
	p->input[2] = bt != NULL ? bt->name : NULL;
	p->output[0] = out;
	return p;
}

/*
 * A fully connected node X -> Y (Gemm or MatMul, 2-D X) becomes
 * Gemm(X, Wa (r x c), ba) -> mid -> Gemm(mid, Wb (d x r), bb) -> Y, both
 * with transB = 1; the original's alpha, beta and transB are in the
 * factors the caller computed.
 */
static int decompose_fc_one(struct edit *ed, const lr_decomp *dc, const lr_tensor *w)
{
	const lr_model *m = ed->m;
	const lr_node *n = &m->nodes[dc->node];
	const char *wname = m->values[n->in[1]].name;
	const char *yname = m->values[n->out[0]].name;
	const char *base = n->proto->name && n->proto->name[0] ? n->proto->name : yname;
	int64_t c, d, da[2], db[2];
	Onnx__TensorProto *wa, *ba = NULL, *wb, *bb = NULL;
	Onnx__NodeProto *na, *nb;
	Onnx__ValueInfoProto *vi;
	char *mid;

	fc_dims(n, w, &c, &d);
	da[0] = dc->r;
	da[1] = c;
	db[0] = d;
	db[1] = dc->r;
	wa = factor_tensor(ed, wname, ".lr_a", 2, da, dc->wa);
	if (dc->ba != NULL)
		ba = factor_tensor(ed, wname, ".lr_a_bias", 1, &dc->r, dc->ba);
	wb = factor_tensor(ed, wname, ".lr_b", 2, db, dc->wb);
	if (dc->bb != NULL)
		bb = factor_tensor(ed, wname, ".lr_b_bias", 1, &d, dc->bb);
	mid = unique_name(ed, yname, ".lr_mid");
	if (wa == NULL || wb == NULL || (dc->ba != NULL && ba == NULL) ||
	    (dc->bb != NULL && bb == NULL) || mid == NULL)
		return LR_ENOMEM;
	na = gemm_node(ed, n, unique_name(ed, base, ".lr_a"), n->proto->input[0], wa, ba, mid);
	nb = gemm_node(ed, n, unique_name(ed, base, ".lr_b"), mid, wb, bb, n->proto->output[0]);
	vi = new_value_info(ed, mid, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, -1, NULL);
	if (na == NULL || nb == NULL || vi == NULL)
		return LR_ENOMEM;
	LR_ASSERT(ed->n_add_vi < ed->cap);
	ed->add_vi[ed->n_add_vi++] = vi;
	ed->nrep[n->proto_index] = 0;
	ed->rep[n->proto_index][ed->nrep[n->proto_index]++] = na;
	ed->rep[n->proto_index][ed->nrep[n->proto_index]++] = nb;
	return 0;
}

static int decompose_one(struct edit *ed, const lr_decomp *dc, const lr_tensor *w)
{
	const lr_model *m = ed->m;
	const lr_node *n = &m->nodes[dc->node];
	const char *wname = m->values[n->in[1]].name;
	const char *yname = m->values[n->out[0]].name;
	const char *base = n->proto->name && n->proto->name[0] ? n->proto->name : yname;
	int64_t da[LR_MAX_DIMS], db[LR_MAX_DIMS], dv[LR_MAX_DIMS];
	Onnx__TensorProto *wa, *ba = NULL, *wb, *bb = NULL, *wv = NULL;
	Onnx__NodeProto *na, *nb, *nv = NULL;
	Onnx__ValueInfoProto *vi, *viv = NULL;
	char *mid, *vmid = NULL;
	int rc;

	for (int i = 0; i < w->ndim; i++) {
		da[i] = w->dims[i];
		db[i] = 1;
		dv[i] = w->dims[i];
	}
	da[0] = dc->r;
	db[0] = w->dims[0];
	db[1] = dc->r;
	if (dc->r2 > 0) {
		/* V: (kh x 1, c -> r2); A then is (1 x kw, r2 -> r) */
		dv[0] = dc->r2;
		dv[3] = 1;
		da[1] = dc->r2;
		da[2] = 1;
		wv = factor_tensor(ed, wname, ".lr_v", w->ndim, dv, dc->wv);
		vmid = unique_name(ed, yname, ".lr_vmid");
		nv = ar_alloc(&ed->ar, sizeof(*nv));
		if (wv == NULL || vmid == NULL || nv == NULL)
			return LR_ENOMEM;
	}
	wa = factor_tensor(ed, wname, ".lr_a", w->ndim, da, dc->wa);
	if (dc->ba != NULL)
		ba = factor_tensor(ed, wname, ".lr_a_bias", 1, &dc->r, dc->ba);
	wb = factor_tensor(ed, wname, ".lr_b", w->ndim, db, dc->wb);
	if (dc->bb != NULL)
		bb = factor_tensor(ed, wname, ".lr_b_bias", 1, &w->dims[0], dc->bb);
	mid = unique_name(ed, yname, ".lr_mid");
	na = ar_alloc(&ed->ar, sizeof(*na));
	nb = ar_alloc(&ed->ar, sizeof(*nb));
	if (wa == NULL || wb == NULL || (dc->ba != NULL && ba == NULL) ||
	    (dc->bb != NULL && bb == NULL) || mid == NULL || na == NULL || nb == NULL)
		return LR_ENOMEM;

	/* A: the original node with new filters, writing the intermediate. */
	*na = *n->proto;
	na->name = unique_name(ed, base, ".lr_a");
	na->n_input = ba != NULL ? 3 : 2;
	na->input = ar_array(&ed->ar, 3, sizeof(char *));
	na->n_output = 1;
	na->output = ar_array(&ed->ar, 1, sizeof(char *));
	/* B: a plain 1x1 Conv writing the original output. */
	onnx__node_proto__init(nb);
	nb->name = unique_name(ed, base, ".lr_b");
	nb->op_type = ar_strdup(&ed->ar, "Conv");
	nb->domain = n->proto->domain;
	nb->n_input = bb != NULL ? 3 : 2;
	nb->input = ar_array(&ed->ar, 3, sizeof(char *));
	nb->n_output = 1;
	nb->output = ar_array(&ed->ar, 1, sizeof(char *));
	vi = new_value_info(ed, mid, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, -1, NULL);
	if (na->name == NULL || na->input == NULL || na->output == NULL ||
	    nb->name == NULL || nb->op_type == NULL || nb->input == NULL ||
	    nb->output == NULL || vi == NULL)
		return LR_ENOMEM;
	na->input[0] = n->proto->input[0];
	if (nv != NULL) {
		/* V reads X with the vertical geometry; A the horizontal one */
		*nv = *n->proto;
		nv->name = unique_name(ed, base, ".lr_v");
		nv->n_input = 2;
		nv->input = ar_array(&ed->ar, 2, sizeof(char *));
		nv->n_output = 1;
		nv->output = ar_array(&ed->ar, 1, sizeof(char *));
		viv = new_value_info(ed, vmid, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, -1, NULL);
		if (nv->name == NULL || nv->input == NULL || nv->output == NULL || viv == NULL)
			return LR_ENOMEM;
		nv->input[0] = n->proto->input[0];
		nv->input[1] = wv->name;
		nv->output[0] = vmid;
		if ((rc = split_attrs(ed, n, nv, w, 1)) != 0 ||
		    (rc = split_attrs(ed, n, na, w, 0)) != 0)
			return rc;
		na->input[0] = vmid;
		LR_ASSERT(ed->n_add_vi < ed->cap);
		ed->add_vi[ed->n_add_vi++] = viv;
	}
	na->input[1] = wa->name;
	na->input[2] = ba != NULL ? ba->name : NULL;
	na->output[0] = mid;
	nb->input[0] = mid;
	nb->input[1] = wb->name;
	nb->input[2] = bb != NULL ? bb->name : NULL;
	nb->output[0] = n->proto->output[0];
	LR_ASSERT(ed->n_add_vi < ed->cap);
	ed->add_vi[ed->n_add_vi++] = vi;
	ed->nrep[n->proto_index] = 0;
	if (nv != NULL)
		ed->rep[n->proto_index][ed->nrep[n->proto_index]++] = nv;
	ed->rep[n->proto_index][ed->nrep[n->proto_index]++] = na;
	ed->rep[n->proto_index][ed->nrep[n->proto_index]++] = nb;
	return 0;
}

int lr_rewrite_decompose(const lr_model *m, const lr_decomp *d, int nd,
			 const lr_meta *meta, int nmeta, lr_model **out,
			 lr_msg *msg)
{
	struct edit ed;
	char *seen = NULL;
	const lr_tensor **w = NULL;
	int rc;

	*out = NULL;
	memset(&ed, 0, sizeof(ed));
	if (nd < 0 || nmeta < 0 || (nd > 0 && d == NULL) || (nmeta > 0 && meta == NULL))
		return lr_fail(msg, LR_EINVAL, "bad decomposition or metadata list");
	seen = calloc((size_t)m->nnodes + 1, 1);
	w = calloc((size_t)nd + 1, sizeof(*w));
	if (seen == NULL || w == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	for (int k = 0; k < nd; k++) {
		rc = check_decomp(m, &d[k], k, seen, &w[k], msg);
		if (rc != 0)
			goto out;
		seen[d[k].node] = 1;
	}
	for (int k = 0; k < nmeta; k++)
		if (meta[k].key == NULL || meta[k].key[0] == '\0') {
			rc = lr_fail(msg, LR_EINVAL, "metadata entry #%d has no key", k);
			goto out;
		}
	rc = edit_init(&ed, m, 12 * (size_t)nd + (size_t)nmeta + 8);
	if (rc != 0)
		goto out;
	for (int k = 0; k < nd; k++) {
		const lr_node *n = &m->nodes[d[k].node];

		rc = is_op(n, "Gemm") || is_op(n, "MatMul") ? decompose_fc_one(&ed, &d[k], w[k])
							    : decompose_one(&ed, &d[k], w[k]);
		if (rc != 0)
			goto out;
	}
	for (int k = 0; k < nmeta; k++) {
		rc = set_meta(&ed, meta[k].key, meta[k].value ? meta[k].value : "");
		if (rc != 0)
			goto out;
	}
	rc = edit_finish(&ed, out, msg);
	if (rc != 0 && rc != LR_ENOMEM)
		lr_msg_prefix(msg, "decomposing");
out:
	if (rc == LR_ENOMEM)
		lr_fail(msg, rc, "out of memory decomposing the model");
	ar_free(&ed.ar);
	free(seen);
	free(w);
	return rc;
}
