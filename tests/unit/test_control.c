/*
 * test_control.c - control flow (model/ops_control.c) and subgraph
 * loading (model/onnx.c): names read from enclosing scopes, through two
 * levels; If, Loop with loop-carried values and scan outputs, Scan
 * backwards; the errors: a name no scope defines, a loop that does not
 * end (LR_LOOP_MAX_ITER), a dry run; LR_PROFILE listing the top graph's
 * nodes only. Graphs are built here with
 * protobuf-c and loaded from memory as files are; the backend cases of
 * libonnx-testdata (tests/conformance) cover the operators' other forms.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/engine.h"
#include "tests/unit/opcheck.h"
#include "tests/unit/tap.h"

/* A graph under construction: nodes with attributes, inputs, outputs. */
struct gb {
	Onnx__GraphProto g;
	Onnx__NodeProto node[8];
	Onnx__NodeProto *nodep[8];
	lrt_node attrs[8];
	char *io[8][8];          /* node i's inputs then outputs */
	int nn;
	struct lrt_vi in[4], out[4];
	Onnx__ValueInfoProto *inp[4], *outp[4];
};

static void gb_init(struct gb *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	onnx__graph_proto__init(&b->g);
	b->g.name = (char *)name;
	b->g.node = b->nodep;
	b->g.input = b->inp;
	b->g.output = b->outp;
}

/* Adds node `op` reading ins (NULL-terminated, "" = omitted) writing outs. */
static lrt_node *gb_node(struct gb *b, const char *op, const char *const *ins,
			 const char *const *outs)
{
	Onnx__NodeProto *n = &b->node[b->nn];
	lrt_node *a = &b->attrs[b->nn];
	int k = 0, ni = 0, no = 0;

	onnx__node_proto__init(n);
	lrt_init(a, op, 13);
	n->op_type = a->op_type;
	for (; ins[ni] != NULL; ni++)
		b->io[b->nn][k++] = (char *)ins[ni];
	for (; outs[no] != NULL; no++)
		b->io[b->nn][k++] = (char *)outs[no];
	n->n_input = (size_t)ni;
	n->input = b->io[b->nn];
	n->n_output = (size_t)no;
	n->output = b->io[b->nn] + ni;
	n->attribute = a->attrp;
	b->nodep[b->nn] = n;
	b->g.n_node = (size_t)++b->nn;
	return a;
}

/* Sets the attribute count of the last node (after lrt_attr_* calls). */
static void gb_done(struct gb *b)
{
	b->node[b->nn - 1].n_attribute = (size_t)b->attrs[b->nn - 1].nattr;
}

/* A graph input named `name` typed and shaped like t (NULL: untyped). */
static void gb_input(struct gb *b, const char *name, const lr_tensor *t)
{
	lrt_vi_fill(&b->in[b->g.n_input], (char *)name, t);
	b->inp[b->g.n_input] = &b->in[b->g.n_input].vi;
	b->g.n_input++;
}

static void gb_output(struct gb *b, const char *name)
{
	lrt_vi_fill(&b->out[b->g.n_output], (char *)name, NULL);
	b->outp[b->g.n_output] = &b->out[b->g.n_output].vi;
	b->g.n_output++;
}

static void gb_graph_attr(lrt_node *a, const char *name, struct gb *sub)
{
	lrt_attr(a, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH)->g = &sub->g;
}

static int close_to(const lr_tensor *t, const float *want, int64_t n)
{
	if (t == NULL || t->dtype != LR_DT_FLOAT || t->nelem != n)
		return 0;
	for (int64_t i = 0; i < n; i++)
		if (fabsf(((const float *)t->data)[i] - want[i]) > 1e-5f)
			return 0;
	return 1;
}

#define L(...) ((const char *const[]){ __VA_ARGS__, NULL })

/*
 * y, scan = Loop(3, "", x) whose body runs If(c) on then: v + k, else:
 * v - k, with k (a Constant node of the top graph) and c (a top graph
 * input) read two scopes down.
 */
static int build_nested(lr_model **m, lr_msg *msg, const char *undefined)
{
	static struct gb top, body, thn, els;
	int64_t d2[1] = { 2 };
	float kv[2] = { 10.f, 20.f };
	int64_t three = 3;
	static lr_tensor *kt, *mt, *xt, *bt;
	lrt_node *a;
	uint8_t one = 1;

	lr_tensor_free(kt);
	lr_tensor_free(mt);
	lr_tensor_free(xt);
	lr_tensor_free(bt);
	kt = lrt_f(1, d2, kv);
	mt = lrt_i(0, NULL, &three);
	xt = lrt_f(1, d2, kv);
	lr_tensor_create(&bt, LR_DT_BOOL, 0, NULL, 1);
	memcpy(bt->data, &one, 1);

	gb_init(&thn, "then");
	gb_node(&thn, "Add", L("v", undefined ? undefined : "k"), L("t"));
	gb_output(&thn, "t");
	gb_init(&els, "else");
	gb_node(&els, "Sub", L("v", "k"), L("e"));
	gb_output(&els, "e");

	gb_init(&body, "body");
	gb_input(&body, "i", mt);
	gb_input(&body, "cin", bt);
	gb_input(&body, "v", xt);
	gb_node(&body, "Identity", L("cin"), L("cout"));
	a = gb_node(&body, "If", L("c"), L("w"));
	gb_graph_attr(a, "then_branch", &thn);
	gb_graph_attr(a, "else_branch", &els);
	gb_done(&body);
	gb_node(&body, "Identity", L("w"), L("s"));
	gb_output(&body, "cout");
	gb_output(&body, "w");
	gb_output(&body, "s");

	gb_init(&top, "top");
	gb_input(&top, "x", xt);
	gb_input(&top, "c", bt);
	a = gb_node(&top, "Constant", L(NULL), L("k"));
	(void)a;
	lrt_attr_tensor(a, "value", kt);
	gb_done(&top);
	a = gb_node(&top, "Constant", L(NULL), L("m"));
	lrt_attr_tensor(a, "value", mt);
	gb_done(&top);
	a = gb_node(&top, "Loop", L("m", "", "x"), L("y", "scan"));
	gb_graph_attr(a, "body", &body);
	gb_done(&top);
	gb_output(&top, "y");
	gb_output(&top, "scan");
	return lrt_load_graph(&top.g, 13, "nested.onnx", m, msg);
}

static void nested(void)
{
	lr_model *m = NULL;
	lr_msg msg = { { 0 } };
	int64_t d2[1] = { 2 };
	float xv[2] = { 1.f, 2.f };
	lr_tensor *x = lrt_f(1, d2, xv), *c = NULL, *outs[2] = { NULL, NULL };
	lr_engine *e = NULL;
	int rc = build_nested(&m, &msg, NULL);

	tap_ok(rc == 0, "Loop with an If inside, reading two scopes out, loads: %s", msg.text);
	if (rc != 0)
		goto out;
	lr_tensor_create(&c, LR_DT_BOOL, 0, NULL, 1);
	rc = lr_engine_create(&e, m, 1);
	for (int cond = 1; rc == 0 && cond >= 0; cond--) {
		lr_tensor *ins[2] = { x, c };
		float s = cond ? 1.f : -1.f;
		float y[2] = { 1 + s * 30, 2 + s * 60 };
		float scan[6] = { 1 + s * 10, 2 + s * 20, 1 + s * 20, 2 + s * 40, 1 + s * 30,
				  2 + s * 60 };

		*(uint8_t *)c->data = (uint8_t)cond;
		msg.text[0] = '\0';
		rc = lr_engine_run(e, ins, 2, outs, 2, 0, &msg);
		tap_ok(rc == 0 && close_to(outs[0], y, 2),
		       "cond %d: the loop-carried value is x %c 3k (%s)", cond, cond ? '+' : '-',
		       msg.text);
		tap_ok(rc == 0 && outs[1] != NULL && outs[1]->ndim == 2 && outs[1]->dims[0] == 3 &&
		       close_to(outs[1], scan, 6),
		       "cond %d: the scan output stacks the 3 iterations", cond);
		for (int k = 0; k < 2; k++) {
			lr_tensor_free(outs[k]);
			outs[k] = NULL;
		}
		if (cond == 1) {
			/* the top Loop node's hidden inputs: k and c */
			const lr_node *loop = NULL;

			for (int i = 0; i < m->nnodes; i++)
				if (strcmp(m->nodes[i].op_type, "Loop") == 0)
					loop = &m->nodes[i];
			tap_ok(loop != NULL && loop->nhidden == 2 && loop->nsub == 1 &&
			       loop->sub[0]->nouter == 2,
			       "the Loop node reads k and c as hidden inputs (%d), its body as outer inputs",
			       loop ? loop->nhidden : -1);
		}
	}
	{
		lr_tensor *ins[2] = { x, c };

		msg.text[0] = '\0';
		rc = lr_engine_run(e, ins, 2, outs, 2, 1, &msg);
		tap_ok(rc == LR_EUNSUPPORTED && strstr(msg.text, "dry run") != NULL,
		       "a dry run is refused as unsupported: %s", msg.text);
		lr_tensor_free(outs[0]);
		lr_tensor_free(outs[1]);
	}
	lr_engine_free(e);
	lr_model_free(m);
	m = NULL;
	msg.text[0] = '\0';
	rc = build_nested(&m, &msg, "nope");
	tap_ok(rc == LR_EMODEL && strstr(msg.text, "subgraph 'then_branch'") != NULL &&
	       strstr(msg.text, "'nope'") != NULL,
	       "a name no scope defines is refused, naming the subgraph and the name: %s",
	       msg.text);
out:
	lr_model_free(m);
	lr_tensor_free(x);
	lr_tensor_free(c);
}

/* Loop("", c, v) whose body passes its condition on: never ends. */
static void endless(void)
{
	static struct gb top, body;
	int64_t d1[1] = { 1 }, zero = 0;
	float v0 = 0.f;
	lr_tensor *v = lrt_f(1, d1, &v0), *it = lrt_i(0, NULL, &zero), *c = NULL, *y = NULL;
	lr_model *m = NULL;
	lr_engine *e = NULL;
	lr_msg msg = { { 0 } };
	lrt_node *a;
	int rc;

	lr_tensor_create(&c, LR_DT_BOOL, 0, NULL, 1);
	*(uint8_t *)c->data = 1;
	gb_init(&body, "body");
	gb_input(&body, "i", it);
	gb_input(&body, "cin", c);
	gb_input(&body, "vin", v);
	gb_node(&body, "Identity", L("cin"), L("cout"));
	gb_node(&body, "Identity", L("vin"), L("vout"));
	gb_output(&body, "cout");
	gb_output(&body, "vout");
	gb_init(&top, "top");
	gb_input(&top, "c", c);
	gb_input(&top, "v", v);
	a = gb_node(&top, "Loop", L("", "c", "v"), L("y"));
	gb_graph_attr(a, "body", &body);
	gb_done(&top);
	gb_output(&top, "y");
	rc = lrt_load_graph(&top.g, 13, "endless.onnx", &m, &msg);
	if (rc == 0)
		rc = lr_engine_create(&e, m, 1);
	if (rc == 0) {
		lr_tensor *ins[2] = { c, v };

		setenv("LR_LOOP_MAX_ITER", "50", 1);
		rc = lr_engine_run(e, ins, 2, &y, 1, 0, &msg);
		unsetenv("LR_LOOP_MAX_ITER");
	}
	tap_ok(rc == LR_ELIMIT && strstr(msg.text, "50 iterations") != NULL,
	       "a loop that does not end stops at LR_LOOP_MAX_ITER with an error: %s", msg.text);
	*(uint8_t *)c->data = 0;
	msg.text[0] = '\0';
	if (e != NULL) {
		lr_tensor *ins[2] = { c, v };

		lr_tensor_free(y);
		y = NULL;
		rc = lr_engine_run(e, ins, 2, &y, 1, 0, &msg);
		tap_ok(rc == 0 && close_to(y, &v0, 1),
		       "with a false condition the body never runs: v comes out as it went in");
	}
	lr_tensor_free(y);
	lr_engine_free(e);
	lr_model_free(m);
	lr_tensor_free(v);
	lr_tensor_free(it);
	lr_tensor_free(c);
}

/* Scan (opset 9) of x [3,2] backwards: running sums from the end. */
static void scan_backwards(void)
{
	static struct gb top, body;
	int64_t d2[1] = { 2 }, d32[2] = { 3, 2 };
	float s0[2] = { 0.f, 100.f }, xv[6] = { 1, 2, 3, 4, 5, 6 };
	float fin[2] = { 9, 112 }, sc[6] = { 5, 106, 8, 110, 9, 112 };
	lr_tensor *s = lrt_f(1, d2, s0), *x = lrt_f(2, d32, xv), *outs[2] = { NULL, NULL };
	lr_model *m = NULL;
	lr_engine *e = NULL;
	lr_msg msg = { { 0 } };
	lrt_node *a;
	int rc;

	gb_init(&body, "body");
	gb_input(&body, "sin", s);
	gb_input(&body, "xi", s);
	gb_node(&body, "Add", L("sin", "xi"), L("sout"));
	gb_node(&body, "Identity", L("sout"), L("o"));
	gb_output(&body, "sout");
	gb_output(&body, "o");
	gb_init(&top, "top");
	gb_input(&top, "s", s);
	gb_input(&top, "x", x);
	a = gb_node(&top, "Scan", L("s", "x"), L("fin", "sc"));
	gb_graph_attr(a, "body", &body);
	lrt_attr_int(a, "num_scan_inputs", 1);
	lrt_attr_ints(a, "scan_input_directions", 1, (int64_t[]){ 1 });
	gb_done(&top);
	gb_output(&top, "fin");
	gb_output(&top, "sc");
	rc = lrt_load_graph(&top.g, 11, "scan.onnx", &m, &msg);
	if (rc == 0)
		rc = lr_engine_create(&e, m, 1);
	if (rc == 0) {
		lr_tensor *ins[2] = { s, x };

		rc = lr_engine_run(e, ins, 2, outs, 2, 0, &msg);
	}
	tap_ok(rc == 0 && close_to(outs[0], fin, 2), "Scan backwards: the final state (%s)",
	       msg.text);
	tap_ok(rc == 0 && outs[1] != NULL && outs[1]->ndim == 2 && close_to(outs[1], sc, 6),
	       "Scan backwards: running sums from the last row, in the order computed");
	lr_tensor_free(outs[0]);
	lr_tensor_free(outs[1]);
	lr_engine_free(e);
	lr_model_free(m);
	lr_tensor_free(s);
	lr_tensor_free(x);
}

/*
 * With LR_PROFILE=1 (stderr) the profile lists the top graph's nodes only:
 * a Loop body's engine (3 runs per call) does not write one of its own.
 */
static void profile_top_only(void)
{
	char path[] = "/tmp/lr-test-control-XXXXXX", line[512];
	int fd = mkstemp(path), saved = dup(2), loop = 0, body = 0;
	lr_model *m = NULL;
	lr_engine *e = NULL;
	lr_msg msg = { { 0 } };
	int64_t d2[1] = { 2 };
	float xv[2] = { 1.f, 2.f };
	lr_tensor *x = lrt_f(1, d2, xv), *c = NULL, *outs[2] = { NULL, NULL };
	FILE *f;
	int rc = build_nested(&m, &msg, NULL);

	lr_tensor_create(&c, LR_DT_BOOL, 0, NULL, 1);
	*(uint8_t *)c->data = 1;
	fflush(stderr);
	dup2(fd, 2);
	setenv("LR_PROFILE", "1", 1);
	if (rc == 0)
		rc = lr_engine_create(&e, m, 1);
	for (int run = 0; rc == 0 && run < 2; run++) { /* bodies' engines see it too */
		lr_tensor *ins[2] = { x, c };

		rc = lr_engine_run(e, ins, 2, outs, 2, 0, &msg);
		lr_tensor_free(outs[0]);
		lr_tensor_free(outs[1]);
	}
	lr_engine_free(e);
	unsetenv("LR_PROFILE");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	f = fdopen(fd, "r");
	rewind(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		loop += strstr(line, "\"op\":\"Loop\"") != NULL;
		body += strstr(line, "\"op\":\"If\"") != NULL;
	}
	fclose(f);
	unlink(path);
	tap_ok(rc == 0 && loop == 1 && body == 0,
	       "LR_PROFILE lists the Loop node (%d) and none of its body's nodes (%d)", loop, body);
	lr_model_free(m);
	lr_tensor_free(x);
	lr_tensor_free(c);
}

int main(void)
{
	nested();
	profile_top_only();
	endless();
	scan_backwards();
	return tap_done();
}
