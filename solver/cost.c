/*
 * cost.c - measured layer costs and the timing cache. See cost.h.
 */
#include "config.h"

#include "solver/cost.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/engine.h"
#include "solver/rewrite.h"

/* ---- timing cache -------------------------------------------------------- */

struct lr_timing_cache {
	char *path;              /* NULL: memory only */
	int n, cap;
	char **keys;
	double *sec;
	unsigned char *fresh;    /* added since opening: to be saved */
};

static int find(const lr_timing_cache *c, const char *key)
{
	for (int i = 0; i < c->n; i++)
		if (strcmp(c->keys[i], key) == 0)
			return i;
	return -1;
}

static int put(lr_timing_cache *c, const char *key, double seconds, int fresh)
{
	int i = find(c, key);

	if (i < 0) {
		if (c->n == c->cap) {
			int cap = c->cap ? 2 * c->cap : 64;
			char **k = realloc(c->keys, sizeof(*k) * (size_t)cap);
			double *s;
			unsigned char *f;

			if (k == NULL)
				return LR_ENOMEM;
			c->keys = k;
			s = realloc(c->sec, sizeof(*s) * (size_t)cap);
			if (s == NULL)
				return LR_ENOMEM;
			c->sec = s;
			f = realloc(c->fresh, (size_t)cap);
			if (f == NULL)
				return LR_ENOMEM;
			c->fresh = f;
			c->cap = cap;
		}
		c->keys[c->n] = strdup(key);
		if (c->keys[c->n] == NULL)
			return LR_ENOMEM;
		for (char *p = c->keys[c->n]; *p; p++)
			if (*p == '\t' || *p == '\n' || *p == '\r')
				*p = ' ';
		i = c->n++;
		c->fresh[i] = 0;
	}
	c->sec[i] = seconds;
	c->fresh[i] |= (unsigned char)fresh;
	return 0;
}

/* Adds the file's entries (not fresh). A missing file adds nothing. */
static int load(lr_timing_cache *c, const char *path, lr_msg *msg)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;

	if (f == NULL)
		return errno == ENOENT ? 0 : lr_fail(msg, LR_EIO, "timing cache %s: %s", path, strerror(errno));
	while (rc == 0 && getline(&line, &cap, f) > 0) {
		char *end;
		double s = strtod(line, &end);

		if (line[0] == '#' || end == line || *end != '\t' || !isfinite(s) || s < 0)
			continue;
		end++;
		end[strcspn(end, "\r\n")] = '\0';
		if (*end != '\0' && find(c, end) < 0)
			rc = put(c, end, s, 0);
	}
	free(line);
	fclose(f);
	return rc;
}

int lr_timing_cache_open(const char *path, lr_timing_cache **out, lr_msg *msg)
{
	lr_timing_cache *c = calloc(1, sizeof(*c));
	int rc = 0;

	*out = NULL;
	if (c == NULL)
		return LR_ENOMEM;
	if (path != NULL && (c->path = strdup(path)) == NULL)
		rc = LR_ENOMEM;
	if (rc == 0 && path != NULL)
		rc = load(c, path, msg);
	if (rc != 0) {
		lr_timing_cache_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int lr_timing_cache_get(const lr_timing_cache *c, const char *key, double *seconds)
{
	int i = c != NULL ? find(c, key) : -1;

	if (i < 0)
		return 0;
	*seconds = c->sec[i];
	return 1;
}

int lr_timing_cache_put(lr_timing_cache *c, const char *key, double seconds)
{
	return put(c, key, seconds, 1);
}

int lr_timing_cache_count(const lr_timing_cache *c)
{
	return c != NULL ? c->n : 0;
}

lr_timing_cache *lr_timing_cache_free(lr_timing_cache *c)
{
	if (c == NULL)
		return NULL;
	for (int i = 0; i < c->n; i++)
		free(c->keys[i]);
	free(c->keys);
	free(c->sec);
	free(c->fresh);
	free(c->path);
	free(c);
	return NULL;
}

int lr_timing_cache_save(lr_timing_cache *c, lr_msg *msg)
{
	lr_timing_cache *disk = NULL;
	char *tmp = NULL, *dir = NULL, *slash;
	static unsigned counter;
	FILE *f = NULL;
	int rc = 0, nfresh = 0, fd;
	size_t len;

	if (c == NULL || c->path == NULL)
		return 0;
	for (int i = 0; i < c->n; i++)
		nfresh += c->fresh[i];
	if (nfresh == 0)
		return 0;
	/* Merge with what the file holds now; ours win. */
	rc = lr_timing_cache_open(NULL, &disk, msg);
	if (rc == 0)
		rc = load(disk, c->path, msg);
	for (int i = 0; rc == 0 && i < c->n; i++)
		if (c->fresh[i] || find(disk, c->keys[i]) < 0)
			rc = put(disk, c->keys[i], c->sec[i], 0);
	if (rc != 0)
		goto out;
	len = strlen(c->path) + 64;
	tmp = malloc(len);
	dir = strdup(c->path);
	if (tmp == NULL || dir == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	snprintf(tmp, len, "%s.tmp.%ld.%u", c->path, (long)getpid(),
		 __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
	f = fopen(tmp, "w");
	if (f == NULL) {
		rc = lr_fail(msg, LR_EIO, "timing cache %s: %s", tmp, strerror(errno));
		goto out;
	}
	fprintf(f, "# lowrank timing cache v1: seconds<TAB>key\n");
	for (int i = 0; i < disk->n; i++)
		fprintf(f, "%.17g\t%s\n", disk->sec[i], disk->keys[i]);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0 || ferror(f)) {
		rc = lr_fail(msg, LR_EIO, "timing cache %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		rc = lr_fail(msg, LR_EIO, "timing cache %s: %s", tmp, strerror(errno));
		goto out;
	}
	f = NULL;
	if (rename(tmp, c->path) != 0) {
		rc = lr_fail(msg, LR_EIO, "timing cache %s: %s", c->path, strerror(errno));
		goto out;
	}
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	memset(c->fresh, 0, (size_t)c->n);
out:
	if (f != NULL) {
		fclose(f);
		unlink(tmp);
	} else if (rc != 0 && tmp != NULL) {
		unlink(tmp);
	}
	free(tmp);
	free(dir);
	lr_timing_cache_free(disk);
	return rc;
}

/* ---- timing -------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Runs engine e once on x (the output is dropped), polling `cancel`. */
static int run_once(lr_engine *e, lr_tensor *x, volatile int *cancel, lr_msg *msg)
{
	lr_tensor *y = NULL;
	int rc;

	if (cancel != NULL && *cancel)
		return lr_fail(msg, LR_ECANCELED, "canceled");
	rc = lr_engine_run(e, &x, 1, &y, 1, 0, msg);
	lr_tensor_free(y);
	return rc;
}

int lr_time_models(const lr_model *const *ms, int n, int ndim, const int64_t *dims, int threads,
		   int samples, double span, volatile int *cancel, double *sec, lr_msg *msg)
{
	lr_engine **e = NULL;
	lr_tensor *x = NULL;
	double *t = NULL, *ratio = NULL, *one = NULL, round_sec = 0;
	int64_t *inner = NULL;
	uint64_t s = 0x7133;
	int rc = 0, rounds;

	for (int i = 0; i < n; i++)
		sec[i] = -1;
	if (n < 1)
		return 0;
	rounds = 3 * (samples < 1 ? 1 : samples);
	e = calloc((size_t)n, sizeof(*e));
	one = calloc((size_t)n, sizeof(*one));
	inner = calloc((size_t)n, sizeof(*inner));
	if (e == NULL || one == NULL || inner == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	rc = lr_tensor_create(&x, LR_DT_FLOAT, ndim, dims, 1);
	if (rc != 0)
		goto out;
	for (int64_t i = 0; i < x->nelem; i++)
		((float *)x->data)[i] = (float)((double)(splitmix(&s) >> 11) / 9007199254740992.0 - 0.5);
	/* Warm-up (packs weights, faults pages in, wakes the cores): at
	 * least 3 runs and 20 ms each; the last run's time sizes the
	 * model's samples to about 1 ms of repeated runs. */
	for (int i = 0; i < n && rc == 0; i++) {
		double tw = lr_now();

		rc = lr_engine_create(&e[i], ms[i], threads);
		if (rc == 0)
			lr_engine_set_pricing(e[i], 1);
		/* (Past 50 ms a run, two do.) */
		for (int w = 0; rc == 0 && (w < 3 || lr_now() - tw < 0.02) && !(w >= 2 && one[i] > 0.05); w++) {
			double t0 = lr_now();

			rc = run_once(e[i], x, cancel, msg);
			one[i] = lr_now() - t0;
		}
		inner[i] = one[i] > 0 ? (int64_t)ceil(0.001 / one[i]) : 1000;
		inner[i] = inner[i] < 1 ? 1 : inner[i] > 1000 ? 1000 : inner[i];
		round_sec += one[i] * (double)inner[i];
	}
	if (rc != 0)
		goto out;
	/* Fast models: rounds over at least `span` seconds (up to 100 x the
	 * asked). Slow models: about 3 s of rounds per model, at least 5. */
	if (round_sec > 0 && span > round_sec * rounds) {
		double want = ceil(span / round_sec);

		rounds = want < 100.0 * rounds ? (int)want : 100 * rounds;
	}
	if ((double)rounds * round_sec > 3.0 * n) {
		int fit = (int)(3.0 * n / round_sec);

		rounds = fit > 5 ? fit : 5;
	}
	t = calloc((size_t)rounds * (size_t)n, sizeof(double));
	ratio = calloc((size_t)rounds, sizeof(double));
	if (t == NULL || ratio == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	/* Every round runs each model once, starting one further along, so
	 * that no model always follows the same one. */
	for (int r = 0; r < rounds; r++)
		for (int j = 0; j < n; j++) {
			int i = (r + j) % n;
			double t0;

			/* One run untimed: the model before left the caches
			 * holding its weights and activations. (Not for models
			 * of 1 ms and more a run, whose samples are single runs:
			 * it would double their cost for a small effect.) */
			rc = n > 1 && inner[i] > 1 ? run_once(e[i], x, cancel, msg) : 0;
			t0 = lr_now();
			for (int64_t k = 0; k < inner[i] && rc == 0; k++)
				rc = run_once(e[i], x, cancel, msg);
			if (rc != 0)
				goto out;
			t[(size_t)i * (size_t)rounds + (size_t)r] = (lr_now() - t0) / (double)inner[i];
		}
	for (int i = 1; i < n; i++) {
		for (int r = 0; r < rounds; r++)
			ratio[r] = t[(size_t)i * (size_t)rounds + (size_t)r] / t[r];
		qsort(ratio, (size_t)rounds, sizeof(double), cmp_double);
		sec[i] = ratio[rounds / 2];
	}
	/* Model 0: the 10th percentile. Other processes only ever add time,
	 * and on a busy machine the median drifts with their load (seen: 4.9
	 * to 9.2 ms for one model while the 10th percentile stayed within 2%). */
	qsort(t, (size_t)rounds, sizeof(double), cmp_double);
	sec[0] = t[rounds / 10];
	for (int i = 1; i < n; i++)
		sec[i] *= sec[0];
out:
	for (int i = 0; e != NULL && i < n; i++)
		lr_engine_free(e[i]);
	free(e);
	free(one);
	free(inner);
	free(t);
	free(ratio);
	lr_tensor_free(x);
	if (rc != 0)
		for (int i = 0; i < n; i++)
			sec[i] = -1;
	return rc;
}

int lr_time_forward(const lr_model *m, int ndim, const int64_t *dims, int threads,
		    int samples, volatile int *cancel, double *seconds, lr_msg *msg)
{
	return lr_time_models(&m, 1, ndim, dims, threads, samples, 0, cancel, seconds, msg);
}

/* lr_time_nodes: the span its runs cover at least, and their most. */
#define NODE_SPAN 0.5
#define NODE_RUNS 2000

struct node_clock {
	double mark;
	double *row;             /* this run's per-node seconds */
};

static int node_observer(void *ud, const lr_model *m, int ni, lr_tensor *const *outs, int nout)
{
	struct node_clock *c = ud;
	double now = lr_now();

	(void)m;
	(void)outs;
	(void)nout;
	c->row[ni] += now - c->mark;
	c->mark = now;
	return 0;
}

int lr_time_nodes(const lr_model *m, int ndim, const int64_t *dims, int threads,
		  int samples, volatile int *cancel, double *node_sec, lr_msg *msg)
{
	lr_engine *e = NULL;
	lr_tensor *x = NULL, *y = NULL;
	double *t = NULL, *col = NULL;
	struct node_clock c = { 0, NULL };
	uint64_t s = 0x7133;
	int rc, runs = samples < 1 ? 5 : 3 * samples, nn = m->nnodes, cap;

	runs = runs < 5 ? 5 : runs;
	cap = runs;
	t = calloc((size_t)runs * (size_t)nn + 1, sizeof(double));
	col = calloc((size_t)runs + 1, sizeof(double));
	if (t == NULL || col == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	rc = lr_engine_create(&e, m, threads);
	if (rc == 0) {
		lr_engine_set_pricing(e, 1);
		rc = lr_tensor_create(&x, LR_DT_FLOAT, ndim, dims, 1);
	}
	if (rc != 0)
		goto out;
	for (int64_t i = 0; i < x->nelem; i++)
		((float *)x->data)[i] = (float)((double)(splitmix(&s) >> 11) / 9007199254740992.0 - 0.5);
	lr_engine_set_observer(e, node_observer, &c);
	for (int r = -2; r < runs; r++) { /* two warm-up runs; the second sizes the rest */
		double t0 = lr_now();

		if (cancel != NULL && *cancel) {
			rc = lr_fail(msg, LR_ECANCELED, "canceled");
			goto out;
		}
		c.row = t + (size_t)(r < 0 ? 0 : r) * (size_t)nn;
		memset(c.row, 0, sizeof(double) * (size_t)nn);  /* realloc'd rows are not */
		c.mark = lr_now();
		rc = lr_engine_run(e, &x, 1, &y, 1, 0, msg);
		lr_tensor_free(y);
		y = NULL;
		if (rc != 0)
			goto out;
		if (r < 0)
			memset(c.row, 0, sizeof(double) * (size_t)nn);
		/* Fast models: runs over at least NODE_SPAN seconds (up to
		 * NODE_RUNS), so that a load that comes and goes finds some
		 * runs in a quiet moment. Slow models: about 3 s of runs,
		 * but at least 5. */
		if (r == -1) {
			double one = lr_now() - t0;
			int fit = one > 0 ? (int)(NODE_SPAN / one) : NODE_RUNS;

			if (fit > runs)
				runs = fit < NODE_RUNS ? fit : NODE_RUNS;
			if (one * runs > 3.0) {
				fit = (int)(3.0 / one);
				runs = fit > 5 ? fit : 5;
			}
			if (runs > cap) {
				double *tt = realloc(t, ((size_t)runs * (size_t)nn + 1) * sizeof(double));
				double *cc = realloc(col, ((size_t)runs + 1) * sizeof(double));

				if (tt != NULL)
					t = tt;
				if (cc != NULL)
					col = cc;
				if (tt == NULL || cc == NULL) {
					rc = LR_ENOMEM;
					goto out;
				}
				cap = runs;
			}
		}
	}
	for (int i = 0; i < nn; i++) {
		for (int r = 0; r < runs; r++)
			col[r] = t[(size_t)r * (size_t)nn + (size_t)i];
		qsort(col, (size_t)runs, sizeof(double), cmp_double);
		node_sec[i] = col[runs / 10];
	}
out:
	free(t);
	free(col);
	lr_tensor_free(x);
	lr_tensor_free(y);
	lr_engine_free(e);
	return rc;
}

/* ---- one-layer models ---------------------------------------------------- */

static Onnx__TensorProto *find_init(const lr_model *m, const char *name)
{
	const Onnx__GraphProto *g = m->proto->graph;

	for (size_t i = 0; name != NULL && name[0] != '\0' && i < g->n_initializer; i++)
		if (g->initializer[i]->name != NULL && strcmp(g->initializer[i]->name, name) == 0)
			return g->initializer[i];
	return NULL;
}

int lr_cost_model_pack(struct Onnx__NodeProto **nodes, size_t nnodes,
		       struct Onnx__TensorProto **inits, size_t ninits, const char *in,
		       const int64_t *dims, int ndim, const char *out, int64_t ir, int64_t opset,
		       const char *gname, uint8_t **buf, size_t *len)
{
	Onnx__TensorShapeProto__Dimension dim[8], *dimp[8];
	Onnx__TensorShapeProto shape = ONNX__TENSOR_SHAPE_PROTO__INIT;
	Onnx__TypeProto__Tensor tt = ONNX__TYPE_PROTO__TENSOR__INIT, tto = ONNX__TYPE_PROTO__TENSOR__INIT;
	Onnx__TypeProto tp = ONNX__TYPE_PROTO__INIT, tpo = ONNX__TYPE_PROTO__INIT;
	Onnx__ValueInfoProto vin = ONNX__VALUE_INFO_PROTO__INIT, vout = ONNX__VALUE_INFO_PROTO__INIT;
	Onnx__ValueInfoProto *vinp = &vin, *voutp = &vout;
	Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
	Onnx__OperatorSetIdProto os = ONNX__OPERATOR_SET_ID_PROTO__INIT, *osp = &os;
	Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;

	*buf = NULL;
	*len = 0;
	if (ndim < 1 || ndim > 8)
		return LR_EINVAL;
	for (int i = 0; i < ndim; i++) {
		Onnx__TensorShapeProto__Dimension d0 = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;

		dim[i] = d0;
		dim[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
		dim[i].dim_value = dims[i];
		dimp[i] = &dim[i];
	}
	shape.n_dim = (size_t)ndim;
	shape.dim = dimp;
	tt.has_elem_type = 1;
	tt.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	tt.shape = &shape;
	tp.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	tp.tensor_type = &tt;
	tto.has_elem_type = 1;
	tto.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	tpo.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	tpo.tensor_type = &tto;
	vin.name = (char *)in;
	vin.type = &tp;
	vout.name = (char *)out;
	vout.type = &tpo;
	g.n_node = nnodes;
	g.node = nodes;
	g.name = (char *)gname;
	g.n_initializer = ninits;
	g.initializer = inits;
	g.n_input = 1;
	g.input = &vinp;
	g.n_output = 1;
	g.output = &voutp;
	os.domain = (char *)"";
	os.has_version = 1;
	os.version = opset;
	mp.has_ir_version = 1;
	mp.ir_version = ir;
	mp.n_opset_import = 1;
	mp.opset_import = &osp;
	mp.producer_name = (char *)"lowrank-cost";
	mp.graph = &g;
	*len = onnx__model_proto__get_packed_size(&mp);
	*buf = malloc(*len + 1);
	if (*buf == NULL)
		return LR_ENOMEM;
	onnx__model_proto__pack(&mp, *buf);
	return 0;
}

int lr_conv_alone(const lr_model *m, int node, const int64_t in_dims[4], lr_model **out,
		  lr_msg *msg)
{
	const lr_node *n;
	Onnx__NodeProto *np, copy;
	char *ins[3];
	Onnx__TensorProto *inits[2];
	uint8_t *buf = NULL;
	size_t len, ni = 0;
	int rc;

	*out = NULL;
	if (node < 0 || node >= m->nnodes || strcmp(m->nodes[node].op_type, "Conv") != 0)
		return lr_fail(msg, LR_EINVAL, "node %d is not a Conv", node);
	n = &m->nodes[node];
	if (n->proto->n_input < 2 || (inits[ni++] = find_init(m, n->proto->input[1])) == NULL)
		return lr_fail(msg, LR_EINVAL, "node '%s': the weight is not an initializer", n->name);
	/* A copy of the node (sharing its attributes) whose bias, if any, is
	 * an initializer: exporters may pass it through Identity nodes (one
	 * zero bias shared by many layers), which are followed here. */
	copy = *n->proto;
	np = &copy;
	ins[0] = n->proto->input[0];
	ins[1] = n->proto->input[1];
	copy.input = ins;
	copy.n_input = 2;
	if (n->proto->n_input > 2 && n->proto->input[2][0] != '\0') {
		int v = n->in[2];

		for (int hop = 0; v >= 0 && hop < 8 && m->values[v].init == NULL; hop++) {
			int q = m->values[v].producer;

			v = q >= 0 && strcmp(m->nodes[q].op_type, "Identity") == 0 ? m->nodes[q].in[0] : -1;
		}
		if (v < 0 || (inits[ni] = find_init(m, m->values[v].name)) == NULL)
			return lr_fail(msg, LR_EINVAL, "node '%s': the bias is not constant", n->name);
		ins[2] = inits[ni++]->name;
		copy.n_input = 3;
	}
	rc = lr_cost_model_pack(&np, 1, inits, ni, np->input[0], in_dims, 4, np->output[0],
				m->ir_version, m->opset, "lowrank_cost", &buf, &len);
	if (rc == 0)
		rc = lr_model_load_mem(buf, len, "timing model", NULL, out, msg);
	free(buf);
	return rc;
}

int64_t lr_decomp_random(lr_decomp *dc, int node, int64_t d, int64_t c, int64_t kh, int64_t kw,
			 int64_t r, int64_t r2, float *f, uint64_t *seed)
{
	int64_t nv = r2 > 0 ? r2 * c * kh : 0, na = r2 > 0 ? r * r2 * kw : r * c * kh * kw,
		n = nv + na + r + d * r + d;

	if (f == NULL)
		return n;
	for (int64_t i = 0; i < n; i++)
		f[i] = (float)(0.02 * ((double)(splitmix(seed) >> 11) / 9007199254740992.0 - 0.5));
	memset(dc, 0, sizeof(*dc));
	dc->node = node;
	dc->r = r;
	dc->r2 = r2 > 0 ? r2 : 0;
	dc->wv = r2 > 0 ? f : NULL;
	dc->nwv = (size_t)nv;
	dc->wa = f + nv;
	dc->nwa = (size_t)na;
	dc->ba = dc->wa + na;
	dc->nba = (size_t)r;
	dc->wb = dc->ba + r;
	dc->nwb = (size_t)(d * r);
	dc->bb = dc->wb + d * r;
	dc->nbb = (size_t)d;
	return n;
}

/* The one-Conv timing model's layer decomposed at (r2, r) (r2 0: the
 * pair) with factors drawn from `seed`. */
static int conv_random(const lr_model *alone, int64_t r2, int64_t r, uint64_t seed, lr_model **out,
		       lr_msg *msg)
{
	const lr_tensor *W;
	float *f = NULL;
	lr_decomp dc;
	uint64_t s = seed;
	int rc;

	*out = NULL;
	if (alone->nnodes < 1 || alone->nodes[0].nin < 2 ||
	    (W = alone->values[alone->nodes[0].in[1]].init) == NULL || W->ndim < 3 ||
	    (r2 > 0 && W->ndim != 4))
		return lr_fail(msg, LR_EINVAL, "not a one-Conv %stiming model", r2 > 0 ? "2-D " : "");
	if (r < 1)
		return r2 > 0 ? lr_fail(msg, LR_EINVAL, "ranks d'' %lld, d' %lld must be >= 1",
					(long long)r2, (long long)r)
			      : lr_fail(msg, LR_EINVAL, "rank %lld < 1", (long long)r);
	{
		int64_t d = W->dims[0], c = W->dims[1], kh = W->dims[2],
			kw = W->nelem / (d * c * kh);

		f = malloc(sizeof(float) * (size_t)lr_decomp_random(&dc, 0, d, c, kh, kw, r, r2, NULL, &s));
		if (f == NULL)
			return LR_ENOMEM;
		lr_decomp_random(&dc, 0, d, c, kh, kw, r, r2, f, &s);
	}
	rc = lr_rewrite_decompose(alone, &dc, 1, NULL, 0, out, msg);
	free(f);
	return rc;
}

int lr_conv_pair(const lr_model *alone, int64_t r, uint64_t seed, lr_model **out, lr_msg *msg)
{
	return conv_random(alone, 0, r, seed, out, msg);
}

int lr_conv_triple(const lr_model *alone, int64_t r2, int64_t r, uint64_t seed, lr_model **out,
		   lr_msg *msg)
{
	if (r2 < 1)
		return lr_fail(msg, LR_EINVAL, "ranks d'' %lld, d' %lld must be >= 1", (long long)r2,
			       (long long)r);
	return conv_random(alone, r2, r, seed, out, msg);
}

static void ints_str(const lr_node *n, const char *name, char *buf, size_t len)
{
	int64_t v[16];
	int cnt = 0;
	size_t o = 0;

	buf[0] = '\0';
	if (lr_node_attr_ints(n, name, v, 16, &cnt) != 0) {
		snprintf(buf, len, "-");
		return;
	}
	for (int i = 0; i < cnt && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? "," : "", (long long)v[i]);
}

void lr_conv_cost_key(const lr_model *m, int node, const int64_t in_dims[4], int64_t r,
		      const char *prefix, char *buf, size_t len)
{
	const lr_node *n = &m->nodes[node];
	const lr_tensor *W = n->nin > 1 && n->in[1] >= 0 ? m->values[n->in[1]].init : NULL;
	char k[64], s[64], p[64], dl[64], apb[32];
	const char *ap;

	ints_str(n, "kernel_shape", k, sizeof(k));
	ints_str(n, "strides", s, sizeof(s));
	ints_str(n, "pads", p, sizeof(p));
	ints_str(n, "dilations", dl, sizeof(dl));
	ap = lr_node_attr_str(n, "auto_pad", "NOTSET", apb, sizeof(apb));
	snprintf(buf, len, "%s|conv|c=%lld|d=%lld|in=%lldx%lld|w=%s|k=%s|s=%s|p=%s|dl=%s|g=%lld|ap=%s|bias=%d|b=%lld|r=%lld",
		 prefix, (long long)in_dims[1], W ? (long long)W->dims[0] : -1LL,
		 (long long)in_dims[2], (long long)in_dims[3],
		 W && W->ndim == 4 ? "4d" : "?", k, s, p, dl,
		 (long long)lr_node_attr_int(n, "group", 1), ap,
		 n->nin > 2 && n->in[2] >= 0, (long long)in_dims[0], (long long)r);
}
