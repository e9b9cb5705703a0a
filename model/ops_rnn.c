/*
 * ops_rnn.c - the recurrent layers RNN, GRU and LSTM (opsets 1 to 14:
 * forward, reverse and bidirectional, sequence_lens, initial states,
 * clip, the activation lists, GRU's linear_before_reset, LSTM's
 * peepholes, and the batch-major layout=1 of opset 14).
 *
 * DESIGN. One driver reads the common signature and runs each direction
 * over the batch, one time step after another: the gate pre-activations
 * are dot products of the input and previous hidden state with the rows
 * of W and R (accumulated in double), plus both biases, then clipped and
 * activated as ONNX writes the equations (gate order z, r, h for GRU and
 * i, o, f, c for LSTM). A batch entry stops at its sequence length: its
 * later Y rows are zeros and its final state is the last valid one; a
 * reverse direction starts at the last valid step. Recurrent layers in
 * CNN exports are small (CRNN heads), so plain loops suffice. Unsupported
 * on purpose, with a message: LSTM input_forget=1 and unknown activation
 * names. The work is bounded by the sizes of X, W and R, which exist.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model/ops.h"

#define SHP(nd, d) lr_shape_str((nd), (d), (char[200]){ 0 }, 200)
#define TSHP(t) SHP((t)->ndim, (t)->dims)

enum act { A_SIGMOID, A_TANH, A_RELU, A_HARDSIGMOID, A_LEAKYRELU, A_THRELU,
	   A_SCALEDTANH, A_AFFINE, A_ELU, A_SOFTSIGN, A_SOFTPLUS };

struct actf {
	enum act k;
	double a, b;
};

static double act1(const struct actf *f, double x)
{
	switch (f->k) {
	case A_SIGMOID: return 1.0 / (1.0 + exp(-x));
	case A_TANH: return tanh(x);
	case A_RELU: return x > 0 ? x : 0;
	case A_HARDSIGMOID: return fmax(0.0, fmin(1.0, f->a * x + f->b));
	case A_LEAKYRELU: return x >= 0 ? x : f->a * x;
	case A_THRELU: return x > f->a ? x : 0;
	case A_SCALEDTANH: return f->a * tanh(f->b * x);
	case A_AFFINE: return f->a * x + f->b;
	case A_ELU: return x >= 0 ? x : f->a * (exp(x) - 1);
	case A_SOFTSIGN: return x / (1 + fabs(x));
	case A_SOFTPLUS: return log1p(exp(-fabs(x))) + (x > 0 ? x : 0);
	}
	return x;
}

/*
 * Parses the 'activations' list into fs (per direction: nper functions),
 * defaults when absent; alphas and betas are consumed in order by the
 * functions that take them (ONNX Runtime's convention), with each
 * function's default when the lists run out.
 */
static int parse_acts(lr_opctx *c, int ndir, int nper, const enum act *def, struct actf *fs)
{
	static const struct { const char *name; enum act k; int na, nb; double da, db; } tab[] = {
		{ "Sigmoid", A_SIGMOID, 0, 0, 0, 0 }, { "Tanh", A_TANH, 0, 0, 0, 0 },
		{ "Relu", A_RELU, 0, 0, 0, 0 }, { "HardSigmoid", A_HARDSIGMOID, 1, 1, 0.2, 0.5 },
		{ "LeakyRelu", A_LEAKYRELU, 1, 0, 0.01, 0 }, { "ThresholdedRelu", A_THRELU, 1, 0, 1.0, 0 },
		{ "ScaledTanh", A_SCALEDTANH, 1, 1, 1.0, 1.0 }, { "Affine", A_AFFINE, 1, 1, 1.0, 0 },
		{ "Elu", A_ELU, 1, 0, 1.0, 0 }, { "Softsign", A_SOFTSIGN, 0, 0, 0, 0 },
		{ "Softplus", A_SOFTPLUS, 0, 0, 0, 0 },
	};
	const Onnx__AttributeProto *al = lr_node_attr(c->node, "activations");
	const Onnx__AttributeProto *aa = lr_node_attr(c->node, "activation_alpha");
	const Onnx__AttributeProto *ab = lr_node_attr(c->node, "activation_beta");
	size_t ia = 0, ib = 0;

	if (al == NULL || al->n_strings == 0) {
		for (int d = 0; d < ndir; d++)
			for (int k = 0; k < nper; k++) {
				fs[d * nper + k].k = def[k];
				fs[d * nper + k].a = fs[d * nper + k].b = 0;
			}
		return 0;
	}
	if (al->n_strings != (size_t)(ndir * nper))
		return lr_op_fail(c, LR_EMODEL, "attribute 'activations' has %zu names, expected %d",
				  al->n_strings, ndir * nper);
	for (int i = 0; i < ndir * nper; i++) {
		const ProtobufCBinaryData *s = &al->strings[i];
		size_t t;

		for (t = 0; t < sizeof(tab) / sizeof(tab[0]); t++)
			if (strlen(tab[t].name) == s->len &&
			    strncasecmp(tab[t].name, (const char *)s->data, s->len) == 0)
				break;
		if (t == sizeof(tab) / sizeof(tab[0]))
			return lr_op_fail(c, LR_EUNSUPPORTED, "activation '%.*s' is not supported",
					  (int)(s->len > 40 ? 40 : s->len), (const char *)s->data);
		fs[i].k = tab[t].k;
		fs[i].a = tab[t].da;
		fs[i].b = tab[t].db;
		if (tab[t].na && aa != NULL && ia < aa->n_floats)
			fs[i].a = aa->floats[ia++];
		if (tab[t].nb && ab != NULL && ib < ab->n_floats)
			fs[i].b = ab->floats[ib++];
	}
	return 0;
}

enum cell { C_RNN, C_GRU, C_LSTM };

/* sum_k a[k] * w[k] in double */
static double dot(const float *a, const float *w, int64_t n)
{
	double s = 0;

	for (int64_t k = 0; k < n; k++)
		s += (double)a[k] * w[k];
	return s;
}

static int run_rnn(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout,
		   enum cell cell)
{
	static const enum act defs[3][3] = {
		{ A_TANH }, { A_SIGMOID, A_TANH }, { A_SIGMOID, A_TANH, A_TANH },
	};
	const int nper = cell == C_RNN ? 1 : cell == C_GRU ? 2 : 3;
	const int G = cell == C_RNN ? 1 : cell == C_GRU ? 3 : 4;
	char dbuf[16];
	const char *dir = lr_node_attr_str(c->node, "direction", "forward", dbuf, sizeof(dbuf));
	int64_t H = lr_node_attr_int(c->node, "hidden_size", 0);
	int layout = c->opset >= 14 ? (int)lr_node_attr_int(c->node, "layout", 0) : 0;
	int lbr = cell == C_GRU && lr_node_attr_int(c->node, "linear_before_reset", 0) != 0;
	const Onnx__AttributeProto *clipa = lr_node_attr(c->node, "clip");
	double clip = clipa != NULL && clipa->has_f ? clipa->f : INFINITY;
	const lr_tensor *x, *w, *r, *b = NULL, *sl = NULL, *h0 = NULL, *c0 = NULL, *pp = NULL;
	struct actf fs[6];
	int64_t T, Bn, I, od[4];
	int ndir, rc;
	double *g = NULL;
	float *hs = NULL, *cs = NULL;
	lr_tensor *outs[3] = { NULL, NULL, NULL };

	for (int i = 0; i < 3; i++)
		if (i >= nin || in[i] == NULL)
			return lr_op_fail(c, LR_EMODEL, "inputs 0 (X), 1 (W) and 2 (R) are required");
	for (int i = 0; i < nin && i < 8; i++)
		if (in[i] != NULL && i != 4 && in[i]->dtype != LR_DT_FLOAT)
			return lr_op_fail(c, LR_EUNSUPPORTED, "input %d has type %s, only float is supported",
					  i, lr_dtype_name(in[i]->dtype));
	x = in[0];
	w = in[1];
	r = in[2];
	if (nin > 3)
		b = in[3];
	if (nin > 4)
		sl = in[4];
	if (nin > 5)
		h0 = in[5];
	if (nin > 6)
		c0 = in[6];
	if (nin > 7)
		pp = in[7];
	if (strcmp(dir, "forward") == 0 || strcmp(dir, "reverse") == 0)
		ndir = 1;
	else if (strcmp(dir, "bidirectional") == 0)
		ndir = 2;
	else
		return lr_op_fail(c, LR_EMODEL, "attribute 'direction' '%s' is not forward, reverse or bidirectional", dir);
	if (cell == C_LSTM && lr_node_attr_int(c->node, "input_forget", 0) != 0)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input_forget=1 is not supported");
	if (layout != 0 && layout != 1)
		return lr_op_fail(c, LR_EMODEL, "attribute 'layout' must be 0 or 1");
	if (x->ndim != 3)
		return lr_op_fail(c, LR_ESHAPE, "input 0 (X) %s must be 3-D", TSHP(x));
	T = x->dims[layout ? 1 : 0];
	Bn = x->dims[layout ? 0 : 1];
	I = x->dims[2];
	if (H < 1 || H > (1 << 20))
		return lr_op_fail(c, LR_EMODEL, "attribute 'hidden_size' must be 1 to 2^20, got %lld", (long long)H);
	if (w->ndim != 3 || w->dims[0] != ndir || w->dims[1] != G * H || w->dims[2] != I)
		return lr_op_fail(c, LR_ESHAPE, "input 1 (W) %s must be [%d,%lld,%lld]", TSHP(w), ndir,
				  (long long)(G * H), (long long)I);
	if (r->ndim != 3 || r->dims[0] != ndir || r->dims[1] != G * H || r->dims[2] != H)
		return lr_op_fail(c, LR_ESHAPE, "input 2 (R) %s must be [%d,%lld,%lld]", TSHP(r), ndir,
				  (long long)(G * H), (long long)H);
	if (b != NULL && (b->ndim != 2 || b->dims[0] != ndir || b->dims[1] != 2 * G * H))
		return lr_op_fail(c, LR_ESHAPE, "input 3 (B) %s must be [%d,%lld]", TSHP(b), ndir,
				  (long long)(2 * G * H));
	if (sl != NULL && (sl->dtype != LR_DT_INT64 || sl->ndim != 1 || sl->dims[0] != Bn))
		return lr_op_fail(c, LR_ESHAPE, "input 4 (sequence_lens) %s must be [%lld] integers",
				  TSHP(sl), (long long)Bn);
	if (h0 != NULL && (h0->ndim != 3 || h0->dims[0] != ndir || h0->dims[1] != Bn || h0->dims[2] != H))
		return lr_op_fail(c, LR_ESHAPE, "input 5 (initial_h) %s must be [%d,%lld,%lld]", TSHP(h0),
				  ndir, (long long)Bn, (long long)H);
	if (c0 != NULL && (c0->ndim != 3 || c0->dims[0] != ndir || c0->dims[1] != Bn || c0->dims[2] != H))
		return lr_op_fail(c, LR_ESHAPE, "input 6 (initial_c) %s must be [%d,%lld,%lld]", TSHP(c0),
				  ndir, (long long)Bn, (long long)H);
	if (pp != NULL && (pp->ndim != 2 || pp->dims[0] != ndir || pp->dims[1] != 3 * H))
		return lr_op_fail(c, LR_ESHAPE, "input 7 (P) %s must be [%d,%lld]", TSHP(pp), ndir,
				  (long long)(3 * H));
	if ((rc = parse_acts(c, ndir, nper, defs[cell], fs)) != 0)
		return rc;
	/* outputs: Y, Y_h, (LSTM) Y_c */
	for (int o = 0; o < nout && o < 3; o++) {
		if (c->node->out[o] < 0)
			continue;
		if (o == 0) {
			if (layout) {
				od[0] = Bn; od[1] = T; od[2] = ndir; od[3] = H;
			} else {
				od[0] = T; od[1] = ndir; od[2] = Bn; od[3] = H;
			}
			rc = lr_op_output(c, &outs[0], LR_DT_FLOAT, 4, od);
		} else {
			if (layout) {
				od[0] = Bn; od[1] = ndir; od[2] = H;
			} else {
				od[0] = ndir; od[1] = Bn; od[2] = H;
			}
			rc = lr_op_output(c, &outs[o], LR_DT_FLOAT, 3, od);
		}
		if (rc != 0)
			goto out;
	}
	if (c->dry && (outs[0] == NULL || outs[0]->data == NULL) &&
	    (outs[1] == NULL || outs[1]->data == NULL))
		goto out;
	for (int o = 0; o < 3; o++)
		if (outs[o] != NULL && outs[o]->data == NULL && (rc = lr_tensor_alloc_data(outs[o])) != 0) {
			rc = lr_op_fail(c, rc, "out of memory");
			goto out;
		}
	for (int i = 0; i < nin && i < 8; i++)
		if (in[i] != NULL && in[i]->data == NULL) {
			rc = lr_op_fail(c, LR_EINVAL, "input %d has no data", i);
			goto out;
		}
	if (sl != NULL)
		for (int64_t bb = 0; bb < Bn; bb++) {
			int64_t v = ((const int64_t *)sl->data)[bb];

			if (v < 0 || v > T) {
				rc = lr_op_fail(c, LR_EMODEL, "input 4 (sequence_lens) element %lld is %lld, outside [0, %lld]",
						(long long)bb, (long long)v, (long long)T);
				goto out;
			}
		}
	g = malloc((size_t)(G * H) * sizeof(double));
	hs = malloc((size_t)(2 * H) * sizeof(float));
	cs = malloc((size_t)(H > 0 ? H : 1) * sizeof(float));
	if (g == NULL || hs == NULL || cs == NULL) {
		rc = lr_op_fail(c, LR_ENOMEM, "out of memory");
		goto out;
	}
	if (outs[0] != NULL)
		memset(outs[0]->data, 0, lr_tensor_bytes(outs[0]));
	for (int d = 0; d < ndir; d++) {
		int rev = ndir == 2 ? d == 1 : dir[0] == 'r';
		const float *W = (const float *)w->data + d * G * H * I;
		const float *R = (const float *)r->data + d * G * H * H;
		const float *Wb = b != NULL ? (const float *)b->data + d * 2 * G * H : NULL;
		const float *Rb = Wb != NULL ? Wb + G * H : NULL;
		const float *P = pp != NULL ? (const float *)pp->data + d * 3 * H : NULL;
		const struct actf *f = fs + d * nper;

		for (int64_t bb = 0; bb < Bn; bb++) {
			int64_t len = sl != NULL ? ((const int64_t *)sl->data)[bb] : T;
			float *h = hs, *hn = hs + H;

			for (int64_t j = 0; j < H; j++) {
				h[j] = h0 != NULL ? ((const float *)h0->data)[(d * Bn + bb) * H + j] : 0.f;
				cs[j] = c0 != NULL ? ((const float *)c0->data)[(d * Bn + bb) * H + j] : 0.f;
			}
			for (int64_t s = 0; s < len; s++) {
				int64_t t = rev ? len - 1 - s : s;
				const float *xt = (const float *)x->data + (layout ? bb * T + t : t * Bn + bb) * I;

				for (int64_t q = 0; q < G * H; q++) {
					double v = dot(xt, W + q * I, I) + (Wb != NULL ? Wb[q] : 0);
					int recur_later = cell == C_GRU && q >= 2 * H; /* GRU's h gate */

					if (!recur_later)
						v += dot(h, R + q * H, H) + (Rb != NULL ? Rb[q] : 0);
					g[q] = v;
				}
				if (cell == C_RNN) {
					for (int64_t j = 0; j < H; j++)
						hn[j] = (float)act1(&f[0], fmax(-clip, fmin(clip, g[j])));
				} else if (cell == C_GRU) {
					/* z and r for every unit first: (r . Ht-1) needs all of r */
					for (int64_t j = 0; j < 2 * H; j++)
						g[j] = act1(&f[0], fmax(-clip, fmin(clip, g[j])));
					for (int64_t j = 0; j < H; j++) {
						const float *rh = R + (2 * H + j) * H;
						double rb = Rb != NULL ? Rb[2 * H + j] : 0, hh = g[2 * H + j];

						if (lbr) {
							hh += g[H + j] * (dot(h, rh, H) + rb);
						} else {
							double sacc = rb;

							for (int64_t k = 0; k < H; k++)
								sacc += g[H + k] * h[k] * rh[k];
							hh += sacc;
						}
						hh = act1(&f[1], fmax(-clip, fmin(clip, hh)));
						hn[j] = (float)((1 - g[j]) * hh + g[j] * h[j]);
					}
				} else {
					for (int64_t j = 0; j < H; j++) {
						double cprev = cs[j];
						double ig = g[j] + (P ? P[j] * cprev : 0);
						double fg = g[2 * H + j] + (P ? P[2 * H + j] * cprev : 0);
						double cg = g[3 * H + j], og, ct;

						ig = act1(&f[0], fmax(-clip, fmin(clip, ig)));
						fg = act1(&f[0], fmax(-clip, fmin(clip, fg)));
						cg = act1(&f[1], fmax(-clip, fmin(clip, cg)));
						ct = fg * cprev + ig * cg;
						og = g[H + j] + (P ? P[H + j] * ct : 0);
						og = act1(&f[0], fmax(-clip, fmin(clip, og)));
						cs[j] = (float)ct;
						hn[j] = (float)(og * act1(&f[2], ct));
					}
				}
				{
					float *tmp = h;

					h = hn;
					hn = tmp;
				}
				if (outs[0] != NULL)
					memcpy((float *)outs[0]->data +
					       (layout ? ((bb * T + t) * ndir + d) * H : ((t * ndir + d) * Bn + bb) * H),
					       h, (size_t)H * sizeof(float));
			}
			if (outs[1] != NULL)
				memcpy((float *)outs[1]->data + (layout ? (bb * ndir + d) * H : (d * Bn + bb) * H),
				       h, (size_t)H * sizeof(float));
			if (outs[2] != NULL)
				memcpy((float *)outs[2]->data + (layout ? (bb * ndir + d) * H : (d * Bn + bb) * H),
				       cs, (size_t)H * sizeof(float));
		}
	}
out:
	if (rc == 0) {
		for (int o = 0; o < nout && o < 3; o++)
			out[o] = outs[o];
	} else {
		for (int o = 0; o < 3; o++)
			lr_tensor_free(outs[o]);
	}
	free(g);
	free(hs);
	free(cs);
	return rc;
}

/* RNN (1, 7, 14): Ht = f(Xt W^T + Ht-1 R^T + Wb + Rb), f default Tanh. */
int lr_op_rnn(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	return run_rnn(c, in, nin, out, nout, C_RNN);
}

/* GRU (1, 3, 7, 14): gates z, r, h; linear_before_reset. */
int lr_op_gru(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	return run_rnn(c, in, nin, out, nout, C_GRU);
}

/* LSTM (1, 7, 14): gates i, o, f, c; peepholes P; outputs Y, Y_h, Y_c. */
int lr_op_lstm(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	return run_rnn(c, in, nin, out, nout, C_LSTM);
}
