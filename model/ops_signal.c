/*
 * ops_signal.c - the signal operators: HannWindow, HammingWindow,
 * BlackmanWindow, DFT, STFT and MelWeightMatrix (opset 17).
 *
 * DESIGN. Everything is computed in double and stored in the output type
 * once. The transforms are plain O(n^2) DFTs per signal (lengths up to
 * 65536), with the angle reduced as (f * k) mod n before scaling so long
 * transforms keep their accuracy; real inputs have an imaginary part of
 * 0, inverse transforms divide by the length, onesided keeps the first
 * length / 2 + 1 bins. Sizes, steps and lengths must be known scalars.
 * Shared helpers are in ops_types.c.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/ops.h"

#define SHP(t) lr_shape_str((t)->ndim, (t)->dims, (char[200]){ 0 }, 200)

/* ---- HannWindow, HammingWindow, BlackmanWindow ------------------------------ */

enum window_kind { WIN_HANN, WIN_HAMMING, WIN_BLACKMAN };

/*
 * The windows (17): `size` values (input 0, a known integer scalar) of
 * the window, periodic (default) over size points or symmetric over
 * size - 1, computed in double and stored as 'output_datatype' (float by
 * default): Hann 0.5 - 0.5 cos, Hamming 25/46 - 21/46 cos, Blackman
 * 0.42 - 0.5 cos + 0.08 cos(2x), all of x = 2 pi n / N.
 */
static int run_window(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, enum window_kind k)
{
	int periodic = lr_node_attr_int(c->node, "periodic", 1) != 0;
	int64_t odt = lr_node_attr_int(c->node, "output_datatype", 1), size;
	lr_dtype dt;
	double den;
	int rc;

	if ((rc = lr__need_input(c, in, nin, 0)) != 0)
		return rc;
	if (lr_dtype_is_float(in[0]->dtype) || in[0]->dtype == LR_DT_BOOL || in[0]->nelem != 1 ||
	    in[0]->data == NULL)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 (size) must be a known integer scalar, got %s %s",
				  lr_dtype_name(in[0]->dtype), SHP(in[0]));
	dt = odt > 0 && odt < 1000 ? lr_dtype_from_onnx((int)odt) : (lr_dtype)0;
	if (dt == 0)
		return lr_op_fail(c, LR_EUNSUPPORTED, "output_datatype %lld is not supported", (long long)odt);
	size = lr_tensor_get_i64(in[0], 0);
	if (size < 0 || size > ((int64_t)1 << 28))
		return lr_op_fail(c, LR_EMODEL, "input 0 (size) is %lld", (long long)size);
	rc = lr__ty_out(c, &out[0], dt, 1, &size, 1);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	den = (double)(periodic ? size : size - 1);
	for (int64_t i = 0; i < size; i++) {
		double x = den > 0 ? 2.0 * M_PI * (double)i / den : 0.0, v;

		switch (k) {
		case WIN_HANN: v = 0.5 - 0.5 * cos(x); break;
		case WIN_HAMMING: v = 25.0 / 46.0 - 21.0 / 46.0 * cos(x); break;
		default: v = 0.42 - 0.5 * cos(x) + 0.08 * cos(2.0 * x); break;
		}
		lr__put_f64(dt, out[0]->data, i, v);
	}
	return 0;
}

int lr_op_hannwindow(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return run_window(c, in, nin, out, WIN_HANN);
}

int lr_op_hammingwindow(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return run_window(c, in, nin, out, WIN_HAMMING);
}

int lr_op_blackmanwindow(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	(void)nout;
	return run_window(c, in, nin, out, WIN_BLACKMAN);
}

/* ---- DFT, STFT, MelWeightMatrix ---------------------------------------------- */

/*
 * One DFT of length n of the (re, im) samples src[k * stride] for k < m
 * (zero beyond m), into dst as n_out (re, im) pairs; inverse divides by n.
 * Plain O(n^2) in double.
 */
static void dft1(const double *re, const double *im, int64_t m, int64_t n, int64_t n_out,
		 int inverse, double *dst)
{
	for (int64_t f = 0; f < n_out; f++) {
		double sr = 0.0, si = 0.0;

		for (int64_t k = 0; k < m && k < n; k++) {
			double a = 2.0 * M_PI * (double)((f * k) % n) / (double)n * (inverse ? 1.0 : -1.0);
			double c = cos(a), s = sin(a);

			sr += re[k] * c - im[k] * s;
			si += re[k] * s + im[k] * c;
		}
		dst[2 * f] = inverse ? sr / (double)n : sr;
		dst[2 * f + 1] = inverse ? si / (double)n : si;
	}
}

/* A known integer scalar input i (any integer type), or `def` when absent. */
static int int_scalar_in(lr_opctx *c, lr_tensor **in, int nin, int i, int64_t def, int64_t *v)
{
	if (i >= nin || in[i] == NULL) {
		*v = def;
		return 0;
	}
	if (lr_dtype_is_float(in[i]->dtype) || in[i]->nelem != 1 || in[i]->data == NULL)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input %d must be a known integer scalar", i);
	*v = lr_tensor_get_i64(in[i], 0);
	return 0;
}

/*
 * DFT (17; 20 takes the axis as input 2): x [..., n, 1 or 2] (real, or
 * complex as (re, im) pairs) along 'axis' (not the last), zero-padded or
 * cut to dft_length, inverse (divided by the length) and onesided (the
 * first length / 2 + 1 bins) as attributes; float32 or double, computed
 * in double.
 */
int lr_op_dft(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int inverse = lr_node_attr_int(c->node, "inverse", 0) != 0;
	int onesided = lr_node_attr_int(c->node, "onesided", 0) != 0;
	int64_t axis = lr_node_attr_int(c->node, "axis", 1), len, nbin, outer = 1, inner = 1;
	int64_t dims[LR_MAX_DIMS];
	const lr_tensor *x;
	int a, rc, cplx;
	double *buf;

	(void)nout;
	if ((rc = lr__need_input(c, in, nin, 0)) != 0)
		return rc;
	x = in[0];
	if (c->opset >= 20)
		return lr_op_fail(c, LR_EUNSUPPORTED, "DFT-%lld (axis as an input) is not supported",
				  (long long)c->opset);
	if (x->dtype != LR_DT_FLOAT && x->dtype != LR_DT_DOUBLE)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 has type %s; float and double are supported",
				  lr_dtype_name(x->dtype));
	if (x->ndim < 2 || (x->dims[x->ndim - 1] != 1 && x->dims[x->ndim - 1] != 2))
		return lr_op_fail(c, LR_ESHAPE, "input 0 of shape %s must end in an axis of 1 (real) or 2 (complex)",
				  SHP(x));
	if ((rc = lr_op_axis(c, axis, x->ndim - 1, &a)) != 0)
		return rc;
	if ((rc = int_scalar_in(c, in, nin, 1, x->dims[a], &len)) != 0)
		return rc;
	if (len < 1 || len > (1 << 16))
		return lr_op_fail(c, LR_EMODEL, "dft_length %lld is out of range", (long long)len);
	if (onesided && inverse)
		return lr_op_fail(c, LR_EMODEL, "onesided and inverse cannot both be set");
	cplx = x->dims[x->ndim - 1] == 2;
	nbin = onesided ? len / 2 + 1 : len;
	memcpy(dims, x->dims, sizeof(dims));
	dims[a] = nbin;
	dims[x->ndim - 1] = 2;
	rc = lr__ty_out(c, &out[0], x->dtype, x->ndim, dims, x->data != NULL);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	for (int d = 0; d < a; d++)
		outer *= x->dims[d];
	for (int d = a + 1; d < x->ndim - 1; d++)
		inner *= x->dims[d];
	buf = malloc((size_t)(2 * x->dims[a] + 2 * nbin + 2) * sizeof(double));
	if (buf == NULL) {
		lr_tensor_free(out[0]);
		out[0] = NULL;
		return lr_op_fail(c, LR_ENOMEM, "out of memory");
	}
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			double *re = buf, *im = buf + x->dims[a], *res = im + x->dims[a];
			int64_t m = x->dims[a];

			for (int64_t k = 0; k < m; k++) {
				int64_t e = ((o * m + k) * inner + i) * (cplx ? 2 : 1);

				re[k] = lr_tensor_get_f64(x, e);
				im[k] = cplx ? lr_tensor_get_f64(x, e + 1) : 0.0;
			}
			dft1(re, im, m, len, nbin, inverse, res);
			for (int64_t f = 0; f < nbin; f++) {
				int64_t e = ((o * nbin + f) * inner + i) * 2;

				lr__put_f64(x->dtype, out[0]->data, e, res[2 * f]);
				lr__put_f64(x->dtype, out[0]->data, e + 1, res[2 * f + 1]);
			}
		}
	free(buf);
	return 0;
}

/*
 * STFT (17): signal [batch, length, 1 or 2], frame_step (input 1), the
 * optional window (input 2) and frame_length (input 3, else the window's
 * length); frames = (length - frame_length) / frame_step + 1, each frame
 * times the window, transformed; onesided (default 1) keeps
 * frame_length / 2 + 1 bins. Output [batch, frames, bins, 2].
 */
int lr_op_stft(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int onesided = lr_node_attr_int(c->node, "onesided", 1) != 0;
	const lr_tensor *x, *w = nin > 2 ? in[2] : NULL;
	int64_t step, flen, frames, nbin, dims[4];
	double *buf;
	int rc, cplx;

	(void)nout;
	if ((rc = lr__need_input(c, in, nin, 0)) != 0 || (rc = lr__need_input(c, in, nin, 1)) != 0)
		return rc;
	x = in[0];
	if (x->dtype != LR_DT_FLOAT && x->dtype != LR_DT_DOUBLE)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 has type %s; float and double are supported",
				  lr_dtype_name(x->dtype));
	if (x->ndim != 3 || (x->dims[2] != 1 && x->dims[2] != 2))
		return lr_op_fail(c, LR_ESHAPE, "input 0 (signal) of shape %s must be [batch, length, 1 or 2]",
				  SHP(x));
	if (w != NULL && (w->ndim != 1 || w->dtype != x->dtype || w->data == NULL))
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 2 (window) must be a known 1-D tensor of the signal's type");
	if ((rc = int_scalar_in(c, in, nin, 1, 0, &step)) != 0 ||
	    (rc = int_scalar_in(c, in, nin, 3, w != NULL ? w->dims[0] : -1, &flen)) != 0)
		return rc;
	if (step < 1 || flen < 1 || flen > (1 << 16) || flen > x->dims[1] ||
	    (w != NULL && w->dims[0] != flen))
		return lr_op_fail(c, LR_EMODEL, "frame_step %lld and frame_length %lld do not fit signal %s",
				  (long long)step, (long long)flen, SHP(x));
	cplx = x->dims[2] == 2;
	if (onesided && cplx)
		return lr_op_fail(c, LR_EMODEL, "onesided needs a real signal");
	frames = (x->dims[1] - flen) / step + 1;
	nbin = onesided ? flen / 2 + 1 : flen;
	dims[0] = x->dims[0];
	dims[1] = frames;
	dims[2] = nbin;
	dims[3] = 2;
	rc = lr__ty_out(c, &out[0], x->dtype, 4, dims, x->data != NULL);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	buf = malloc((size_t)(2 * flen + 2 * nbin) * sizeof(double));
	if (buf == NULL) {
		lr_tensor_free(out[0]);
		out[0] = NULL;
		return lr_op_fail(c, LR_ENOMEM, "out of memory");
	}
	for (int64_t b = 0; b < x->dims[0]; b++)
		for (int64_t f = 0; f < frames; f++) {
			double *re = buf, *im = buf + flen, *res = im + flen;

			for (int64_t k = 0; k < flen; k++) {
				int64_t e = (b * x->dims[1] + f * step + k) * x->dims[2];
				double wk = w != NULL ? lr_tensor_get_f64(w, k) : 1.0;

				re[k] = lr_tensor_get_f64(x, e) * wk;
				im[k] = cplx ? lr_tensor_get_f64(x, e + 1) * wk : 0.0;
			}
			dft1(re, im, flen, flen, nbin, 0, res);
			for (int64_t q = 0; q < nbin; q++) {
				int64_t e = ((b * frames + f) * nbin + q) * 2;

				lr__put_f64(x->dtype, out[0]->data, e, res[2 * q]);
				lr__put_f64(x->dtype, out[0]->data, e + 1, res[2 * q + 1]);
			}
		}
	free(buf);
	return 0;
}

/*
 * MelWeightMatrix (17): [dft_length / 2 + 1, num_mel_bins] triangular
 * filters between lower_edge_hertz and upper_edge_hertz, spaced evenly on
 * the mel scale (2595 log10(1 + f / 700)) and mapped to bins
 * floor((dft_length + 1) * f / sample_rate), as the ONNX reference does
 * (its mel step is the range over num_mel_bins + 2; filters whose edges
 * fall beyond the spectrum are left out).
 */
int lr_op_melweightmatrix(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	int64_t odt = lr_node_attr_int(c->node, "output_datatype", 1), nmel, dftl, rate, nspec;
	int64_t dims[2], *fb = NULL;
	double lo, hi, mlo, mhi, step;
	lr_dtype dt;
	int rc;

	(void)nout;
	for (int i = 0; i < 5; i++)
		if ((rc = lr__need_input(c, in, nin, i)) != 0)
			return rc;
	if ((rc = int_scalar_in(c, in, nin, 0, 0, &nmel)) != 0 ||
	    (rc = int_scalar_in(c, in, nin, 1, 0, &dftl)) != 0 ||
	    (rc = int_scalar_in(c, in, nin, 2, 0, &rate)) != 0)
		return rc;
	for (int i = 3; i < 5; i++)
		if (!lr_dtype_is_float(in[i]->dtype) || in[i]->nelem != 1 || in[i]->data == NULL)
			return lr_op_fail(c, LR_EUNSUPPORTED, "input %d must be a known float scalar", i);
	lo = lr_tensor_get_f64(in[3], 0);
	hi = lr_tensor_get_f64(in[4], 0);
	dt = odt > 0 && odt < 1000 ? lr_dtype_from_onnx((int)odt) : (lr_dtype)0;
	if (dt == 0)
		return lr_op_fail(c, LR_EUNSUPPORTED, "output_datatype %lld is not supported", (long long)odt);
	if (nmel < 1 || nmel > 4096 || dftl < 1 || dftl > (1 << 16) || rate < 1 || !(lo >= 0) || !(hi > lo))
		return lr_op_fail(c, LR_EMODEL, "num_mel_bins %lld, dft_length %lld, sample_rate %lld, edges %g..%g are invalid",
				  (long long)nmel, (long long)dftl, (long long)rate, lo, hi);
	nspec = dftl / 2 + 1;
	dims[0] = nspec;
	dims[1] = nmel;
	rc = lr__ty_out(c, &out[0], dt, 2, dims, 1);
	if (rc != 0 || out[0]->data == NULL)
		return rc;
	fb = malloc((size_t)(nmel + 2) * sizeof(int64_t));
	if (fb == NULL) {
		lr_tensor_free(out[0]);
		out[0] = NULL;
		return lr_op_fail(c, LR_ENOMEM, "out of memory");
	}
	mlo = 2595.0 * log10(1.0 + lo / 700.0);
	mhi = 2595.0 * log10(1.0 + hi / 700.0);
	step = (mhi - mlo) / (double)(nmel + 2);
	for (int64_t i = 0; i < nmel + 2; i++) {
		double f = 700.0 * (pow(10.0, ((double)i * step + mlo) / 2595.0) - 1.0);

		fb[i] = (int64_t)floor((double)(dftl + 1) * f / (double)rate);
	}
	for (int64_t k = 0; k < nspec * nmel; k++)
		lr__put_f64(dt, out[0]->data, k, 0.0);
	for (int64_t i = 0; i < nmel; i++) {
		int64_t l = fb[i], ce = fb[i + 1], r = fb[i + 2];

		if (l < 0 || r >= nspec + 1 || ce >= nspec)
			continue; /* an edge beyond the spectrum: no filter */
		if (ce - l == 0)
			lr__put_f64(dt, out[0]->data, ce * nmel + i, 1.0);
		else
			for (int64_t j = l; j <= ce; j++)
				lr__put_f64(dt, out[0]->data, j * nmel + i, (double)(j - l) / (double)(ce - l));
		for (int64_t j = ce; r - ce > 0 && j < r && j < nspec; j++)
			lr__put_f64(dt, out[0]->data, j * nmel + i, (double)(r - j) / (double)(r - ce));
	}
	free(fb);
	return 0;
}
