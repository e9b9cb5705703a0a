/*
 * ops_conv.c - Conv, Gemm and MatMul: the kernels that dominate CNN time.
 *
 * DESIGN. Convolution is lowered to SGEMM per image and group: the input
 * patch matrix ("im2col", rows = Cg*kh*kw, cols = OH*OW) is built in a
 * scratch buffer and multiplied by the group's filters (Mg x Cg*kh*kw)
 * with OpenBLAS. A 1x1 convolution with unit stride and no padding needs
 * no im2col: the input plane already is the patch matrix. Depthwise
 * convolution (one input and one output channel per group) would make
 * GEMMs with a single row, so it has a direct kernel, parallel over
 * channel planes (3x3 with AVX-512: 16 outputs per step on a zero-padded
 * copy of the plane, no edge checks). One- and two-dimensional convolutions are supported
 * (1-D runs as 2-D with height 1). Bias is added while the output is
 * still in cache. Accumulation is float32 inside SGEMM, as in every
 * runtime this engine is compared with.
 *
 * A Relu or Clip the engine fused into the node (c->act, engine.c) is
 * applied by the direct and depthwise kernels as they store, and by a
 * pass over the output after Winograd and im2col. A residual the engine
 * fused (c->res, the other operand of the Add that alone reads the Conv's
 * output) comes first: the blocked direct kernels add it as they store,
 * every other path adds it, then applies the activation, in one pass
 * over Y (conv_add_res); a residual of another shape is not added, and
 * the engine then runs the Add and the activation as nodes.
 *
 * Group-1, undilated convolutions (any stride) go first to the direct
 * kernels of conv_direct.c (AVX-512/AVX2, shaped like ONNX Runtime's so
 * that thin layers cost what they cost there), then to Winograd
 * (conv_winograd.c) when the CPU has neither; im2col takes the rest.
 * Gemm with 3..16 rows and transB streams B through an AVX-512 kernel
 * (skinny_tb) instead of letting OpenBLAS repack B on every call.
 */
#include "config.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "model/ops.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#define DW_X86 1
#endif

int lr__window_geom(lr_opctx *c, const lr_tensor *x, const int64_t *kernel,
		    int ceil_mode, struct lr_geom *g)
{
	int nsp = x->ndim - 2, cnt;
	int64_t strides[2] = { 1, 1 }, dil[2] = { 1, 1 }, pads[4] = { 0, 0, 0, 0 };
	int64_t in[2], k[2], pb[2], pe[2], out[2];
	char ap[32];
	const char *auto_pad;

	if (nsp < 1 || nsp > 2)
		return lr_op_fail(c, LR_EUNSUPPORTED,
				  "input has %d spatial dimensions; only 1-D and 2-D are supported",
				  nsp < 0 ? 0 : nsp);
	if (lr_node_attr_ints(c->node, "strides", strides, nsp, &cnt) < 0 ||
	    (cnt != 0 && cnt != nsp))
		return lr_op_fail(c, LR_EMODEL, "attribute 'strides' must have %d entries", nsp);
	if (lr_node_attr_ints(c->node, "dilations", dil, nsp, &cnt) < 0 ||
	    (cnt != 0 && cnt != nsp))
		return lr_op_fail(c, LR_EMODEL, "attribute 'dilations' must have %d entries", nsp);
	if (lr_node_attr_ints(c->node, "pads", pads, 2 * nsp, &cnt) < 0 ||
	    (cnt != 0 && cnt != 2 * nsp))
		return lr_op_fail(c, LR_EMODEL, "attribute 'pads' must have %d entries", 2 * nsp);
	auto_pad = lr_node_attr_str(c->node, "auto_pad", "NOTSET", ap, sizeof(ap));
	for (int i = 0; i < nsp; i++) {
		int64_t ext;

		in[i] = x->dims[2 + i];
		k[i] = kernel[i];
		pb[i] = pads[i];
		pe[i] = pads[nsp + i];
		if (k[i] < 1 || strides[i] < 1 || dil[i] < 1 || pb[i] < 0 || pe[i] < 0 ||
		    k[i] > (1 << 20) || strides[i] > (1 << 20) || dil[i] > (1 << 20) ||
		    pb[i] > (1 << 20) || pe[i] > (1 << 20))
			return lr_op_fail(c, LR_EMODEL,
					  "kernel %lld, stride %lld, dilation %lld, pads %lld/%lld are invalid",
					  (long long)k[i], (long long)strides[i], (long long)dil[i],
					  (long long)pb[i], (long long)pe[i]);
		ext = dil[i] * (k[i] - 1) + 1;
		if (strcmp(auto_pad, "SAME_UPPER") == 0 || strcmp(auto_pad, "SAME_LOWER") == 0) {
			int64_t total;

			out[i] = (in[i] + strides[i] - 1) / strides[i];
			total = (out[i] - 1) * strides[i] + ext - in[i];
			if (total < 0)
				total = 0;
			if (auto_pad[5] == 'U') {
				pb[i] = total / 2;
				pe[i] = total - pb[i];
			} else {
				pe[i] = total / 2;
				pb[i] = total - pe[i];
			}
		} else if (strcmp(auto_pad, "VALID") == 0) {
			pb[i] = pe[i] = 0;
			out[i] = in[i] >= ext ? (in[i] - ext) / strides[i] + 1 : 0;
		} else if (strcmp(auto_pad, "NOTSET") == 0) {
			int64_t span = in[i] + pb[i] + pe[i] - ext;

			if (span < 0)
				out[i] = 0;
			else if (ceil_mode) {
				out[i] = (span + strides[i] - 1) / strides[i] + 1;
				/* The last window must start inside the input or left pad. */
				if ((out[i] - 1) * strides[i] >= in[i] + pb[i])
					out[i]--;
			} else {
				out[i] = span / strides[i] + 1;
			}
		} else {
			return lr_op_fail(c, LR_EMODEL, "unknown auto_pad '%s'", auto_pad);
		}
		if (out[i] < 1)
			return lr_op_fail(c, LR_ESHAPE,
					  "the window (%lld with dilation %lld) does not fit the input extent %lld plus padding",
					  (long long)k[i], (long long)dil[i], (long long)in[i]);
	}
	g->n = x->dims[0];
	g->c = x->dims[1];
	if (nsp == 1) {
		g->h = 1; g->kh = 1; g->sh = 1; g->dh = 1; g->pt = 0; g->pb = 0; g->oh = 1;
		g->w = in[0]; g->kw = k[0]; g->sw = strides[0]; g->dw = dil[0];
		g->pl = pb[0]; g->pr = pe[0]; g->ow = out[0];
	} else {
		g->h = in[0]; g->kh = k[0]; g->sh = strides[0]; g->dh = dil[0];
		g->pt = pb[0]; g->pb = pe[0]; g->oh = out[0];
		g->w = in[1]; g->kw = k[1]; g->sw = strides[1]; g->dw = dil[1];
		g->pl = pb[1]; g->pr = pe[1]; g->ow = out[1];
	}
	return 0;
}

int lr__window_output(lr_opctx *c, const lr_tensor *x, const struct lr_geom *g,
		      int64_t channels, lr_tensor **y)
{
	int64_t odims[4] = { g->n, channels, g->oh, g->ow };

	if (x->ndim == 3)
		odims[2] = g->ow;
	return lr_op_output(c, y, LR_DT_FLOAT, x->ndim, odims);
}

/* ---- im2col -------------------------------------------------------------- */

/*
 * Writes columns [j0, j0+cols) of the patch matrix of one image/group into
 * col (row-major, rows = cg*kh*kw, leading dimension cols). Column j is
 * output position (j / ow, j % ow).
 */
static void im2col_tile(const float *x, float *col, const struct lr_geom *g,
			int64_t krows, int64_t j0, int64_t cols)
{
	int64_t oy0 = j0 / g->ow, oy1 = (j0 + cols - 1) / g->ow;

	for (int64_t r = 0; r < krows; r++) {
		int64_t ch = r / (g->kh * g->kw);
		int64_t ki = (r / g->kw) % g->kh;
		int64_t kj = r % g->kw;
		const float *plane = x + ch * g->h * g->w;
		float *dst = col + r * cols - j0;
		int64_t ix0 = -g->pl + kj * g->dw;

		for (int64_t oy = oy0; oy <= oy1; oy++) {
			int64_t iy = oy * g->sh - g->pt + ki * g->dh;
			int64_t a = oy == oy0 ? j0 - oy * g->ow : 0;
			int64_t b = oy == oy1 ? j0 + cols - oy * g->ow : g->ow;
			float *d = dst + oy * g->ow;
			const float *src;

			if (iy < 0 || iy >= g->h) {
				memset(d + a, 0, (size_t)(b - a) * sizeof(float));
				continue;
			}
			src = plane + iy * g->w;
			if (g->sw == 1) {
				/* ox in [a, b) reads src[ix0 + ox]; valid when 0 <= ix0+ox < w */
				int64_t lo = -ix0 > a ? -ix0 : a;
				int64_t hi = g->w - ix0 < b ? g->w - ix0 : b;

				if (lo > b)
					lo = b;
				if (hi < lo)
					hi = lo;
				if (lo > a)
					memset(d + a, 0, (size_t)(lo - a) * sizeof(float));
				if (hi > lo)
					memcpy(d + lo, src + ix0 + lo, (size_t)(hi - lo) * sizeof(float));
				if (b > hi)
					memset(d + hi, 0, (size_t)(b - hi) * sizeof(float));
			} else {
				for (int64_t ox = a; ox < b; ox++) {
					int64_t ix = ix0 + ox * g->sw;

					d[ox] = (ix >= 0 && ix < g->w) ? src[ix] : 0.0f;
				}
			}
		}
	}
}

/* ---- fused activations --------------------------------------------------- */

/* Relu as lr_op_relu computes it (NaN -> 0), Clip as lr_op_clip (NaN stays). */
LR_CLONES
void lr__act_apply(int act, float lo, float hi, float *y, int64_t n)
{
	/* LR_EACH: vectorised (the Add the engine fuses a Relu into runs
	 * this on every piece it writes). */
	if (act == LR_ACT_RELU)
		LR_EACH(n, i, y[i] = y[i] > 0.f ? y[i] : 0.f);
	else if (act == LR_ACT_CLIP)
		LR_EACH(n, i, y[i] = (y[i] < lo ? lo : y[i]) > hi ? hi : (y[i] < lo ? lo : y[i]));
}

struct res_job {
	float *y;
	const float *r;
	int64_t planes, plane;  /* planes of `plane` floats (a block's: 16 per position) */
	int64_t unit, ntask;    /* floats per position; tasks */
	int by_planes;          /* tasks take planes, not positions */
	int act;
	float lo, hi;
};

/* Task t: positions [t * P / ntask, (t + 1) * P / ntask) of every plane,
 * or planes [t * planes / ntask, ...) whole. */
LR_CLONES
static void res_tasks(void *arg, int64_t begin, int64_t end)
{
	const struct res_job *j = arg;
	int64_t np = j->plane / j->unit;

	for (int64_t t = begin; t < end; t++) {
		int64_t a = t * np / j->ntask * j->unit, e = (t + 1) * np / j->ntask * j->unit;
		int64_t p0 = 0, p1 = j->planes;

		if (j->by_planes) {
			a = 0;
			e = j->plane;
			p0 = t * j->planes / j->ntask;
			p1 = (t + 1) * j->planes / j->ntask;
		}
		for (int64_t pl = p0; pl < p1; pl++) {
			float *d = j->y + pl * j->plane + a;
			const float *r = j->r + pl * j->plane + a;

			LR_EACH(e - a, i, d[i] += r[i]);
			lr__act_apply(j->act, j->lo, j->hi, d, e - a);
		}
	}
}

/*
 * y = act(y + res) for the residual Add the engine fused into a Conv
 * (c->res), where the kernel did not add it as it stored: res of y's
 * dims, copied into y's layout first when the two differ. Threads take
 * ranges of positions, as the kernels that wrote y did on maps of 14 x 14
 * and more, or on smaller maps ranges of planes (channels), as the direct
 * kernel's filter groups did: by positions, a 7 x 7 layer of 2048 filters
 * took 0.4 ms for this pass, 2048 pieces of 6 positions per task.
 * 0 or LR_ENOMEM.
 */
static int conv_add_res(lr_opctx *c, lr_tensor *y, const lr_tensor *res, int act, float lo,
			float hi)
{
	lr_tensor *conv = NULL;
	struct res_job j;
	int64_t unit = y->blocked ? y->blocked : 1, units;
	int rc = 0;

	if (res->blocked != y->blocked) {
		rc = y->blocked ? lr_tensor_block(&conv, res, y->blocked) : lr_tensor_unblock(&conv, res);
		if (rc != 0)
			return rc;
		res = conv;
	}
	j.y = y->data;
	j.r = res->data;
	j.planes = y->dims[0] * y->dims[1] / unit;
	j.plane = j.planes > 0 ? y->nelem / j.planes : 0;
	j.unit = unit;
	j.ntask = 4 * (int64_t)lr_pool_size(c->pool);
	j.by_planes = j.plane / unit < 196;
	units = j.by_planes ? j.planes : j.plane / unit; /* what tasks split */
	if (j.ntask > units)
		j.ntask = units;
	if (j.ntask < 1)
		j.ntask = 1;
	j.act = act;
	j.lo = lo;
	j.hi = hi;
	if (j.planes > 0)
		lr_pool_run(c->pool, j.ntask, 1, res_tasks, &j);
	lr_tensor_free(conv);
	return 0;
}

/* ---- depthwise ---------------------------------------------------------- */

struct dw_job {
	lr_opctx *c;             /* for per-thread scratch (padded planes) */
	const float *x, *w, *b;  /* input, filters [C*mult, 1, kh, kw], bias */
	float *y;
	const struct lr_geom *g;
	int64_t mult;            /* output channels per input channel */
	int act;                 /* fused activation (LR_ACT_*) */
	float lo, hi;
	int64_t band;            /* depthwise_c16: output rows per task */
	int xblk, yblk;          /* depthwise_c16: X, Y channel-blocked (16) */
	_Atomic int failed;      /* depthwise_c16, blocked: no scratch */
};

#if defined(DW_X86)
/*
 * The interior [lo, hi) of one output row of a 3x3 depthwise filter with
 * AVX-512: 16 outputs per step, nr kernel rows r[k] (already offset by
 * -pl), every tap an FMA in the order the scalar loop adds them
 * (bias, then row by row, column by column). Stride 1 loads each tap's
 * 16 inputs unaligned; stride 2 takes the even and odd columns of two
 * loads with one permute each. Returns the first q it did not do.
 */
__attribute__((target("avx512f")))
static int64_t dw3_row512(const float *const *r, const float (*w)[3], int nr, float bias,
			  float *out, int64_t lo, int64_t hi, int64_t sw, int overread,
			  int act, float alo, float ahi)
{
	int64_t q = lo;
	/* Fused activation as cd_store512: Relu max(v, 0), Clip min(hi, max(lo, v)). */
	const __m512 vlo = _mm512_set1_ps(act == LR_ACT_CLIP ? alo : 0.f);
	const __m512 vhi = _mm512_set1_ps(ahi);
#define DW_ACT(v) (act == LR_ACT_RELU ? _mm512_max_ps((v), vlo) \
		   : act == LR_ACT_CLIP ? _mm512_min_ps(vhi, _mm512_max_ps(vlo, (v))) : (v))

	if (sw == 1) {
		for (; q + 16 <= hi; q += 16) {
			__m512 acc = _mm512_set1_ps(bias);

			for (int k = 0; k < nr; k++) {
				const float *rr = r[k] + q;

				acc = _mm512_fmadd_ps(_mm512_set1_ps(w[k][0]), _mm512_loadu_ps(rr), acc);
				acc = _mm512_fmadd_ps(_mm512_set1_ps(w[k][1]), _mm512_loadu_ps(rr + 1), acc);
				acc = _mm512_fmadd_ps(_mm512_set1_ps(w[k][2]), _mm512_loadu_ps(rr + 2), acc);
			}
			_mm512_storeu_ps(out + q, DW_ACT(acc));
		}
		if (q < hi) {
			__mmask16 mk = (__mmask16)((1u << (hi - q)) - 1u);
			__m512 acc = _mm512_set1_ps(bias);

			for (int k = 0; k < nr; k++) {
				const float *rr = r[k] + q;

				acc = _mm512_fmadd_ps(_mm512_set1_ps(w[k][0]),
						      _mm512_maskz_loadu_ps(mk, rr), acc);
				acc = _mm512_fmadd_ps(_mm512_set1_ps(w[k][1]),
						      _mm512_maskz_loadu_ps(mk, rr + 1), acc);
				acc = _mm512_fmadd_ps(_mm512_set1_ps(w[k][2]),
						      _mm512_maskz_loadu_ps(mk, rr + 2), acc);
			}
			_mm512_mask_storeu_ps(out + q, mk, DW_ACT(acc));
			q = hi;
		}
	} else if (sw == 2) {
		const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16,
						    14, 12, 10, 8, 6, 4, 2, 0);
		const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));

		for (; q + 16 <= hi; q += 16) {
			__m512 acc = _mm512_set1_ps(bias);

			for (int k = 0; k < nr; k++) {
				const float *rr = r[k] + 2 * q;
				__m512 a = _mm512_loadu_ps(rr), b = _mm512_loadu_ps(rr + 16);
				__m512 c = _mm512_loadu_ps(rr + 2), d = _mm512_loadu_ps(rr + 18);

				acc = _mm512_fmadd_ps(_mm512_set1_ps(w[k][0]),
						      _mm512_permutex2var_ps(a, ev, b), acc);
				acc = _mm512_fmadd_ps(_mm512_set1_ps(w[k][1]),
						      _mm512_permutex2var_ps(a, od, b), acc);
				acc = _mm512_fmadd_ps(_mm512_set1_ps(w[k][2]),
						      _mm512_permutex2var_ps(c, ev, d), acc);
			}
			_mm512_storeu_ps(out + q, DW_ACT(acc));
		}
		/* The last partial step: full loads (the caller's rows may be
		 * read up to 31 floats past 2 * hi + 1), masked store. */
		if (overread && q < hi) {
			__mmask16 mk = (__mmask16)((1u << (hi - q)) - 1u);
			__m512 acc = _mm512_set1_ps(bias);

			for (int k = 0; k < nr; k++) {
				const float *rr = r[k] + 2 * q;
				__m512 a = _mm512_loadu_ps(rr), b = _mm512_loadu_ps(rr + 16);
				__m512 c = _mm512_loadu_ps(rr + 2), d = _mm512_loadu_ps(rr + 18);

				acc = _mm512_fmadd_ps(_mm512_set1_ps(w[k][0]),
						      _mm512_permutex2var_ps(a, ev, b), acc);
				acc = _mm512_fmadd_ps(_mm512_set1_ps(w[k][1]),
						      _mm512_permutex2var_ps(a, od, b), acc);
				acc = _mm512_fmadd_ps(_mm512_set1_ps(w[k][2]),
						      _mm512_permutex2var_ps(c, ev, d), acc);
			}
			_mm512_mask_storeu_ps(out + q, mk, DW_ACT(acc));
			q = hi;
		}
	}
#undef DW_ACT
	return q;
}

#endif

/* Whether dw3_row512 runs here: AVX-512 and no LR_CONV_ISA cap. */
static int dw_avx512(void)
{
#if defined(DW_X86)
	static int cpu = -1;

	if (cpu < 0) {
		__builtin_cpu_init();
		cpu = __builtin_cpu_supports("avx512f") != 0;
	}
	return cpu && getenv("LR_CONV_ISA") == NULL;
#else
	return 0;
#endif
}

#if defined(DW_X86)
/*
 * One output plane of a 3x3 undilated depthwise filter with AVX-512 on a
 * zero-padded copy of the input plane (pad, of (h + pt + pb) x wp floats
 * plus 32 of slack): every output is interior, so each row is
 * dw3_row512's 16-wide steps (the last one masked, its loads running
 * into the next row or the slack) plus, at stride > 2, scalar taps on
 * the padded rows. The fused activation is applied as each step stores. The padded zeros add
 * 0 * w as ONNX's zero padding does.
 */
static void depthwise_3x3_pad512(const struct lr_geom *g, const float *xp, const float *wk,
				 float bias, float *yp, float *pad, int act, float lo, float hi)
{
	int64_t wp = g->w + g->pl + g->pr, hp = g->h + g->pt + g->pb;
	const float(*w)[3] = (const float(*)[3])wk;

	lr__phase_plane(xp, g->h, g->w, 1, 1, -g->pt, -g->pl, pad, hp, wp);
	memset(pad + hp * wp, 0, 32 * sizeof(float));
	for (int64_t oy = 0; oy < g->oh; oy++) {
		const float *r[3];
		float *out = yp + oy * g->ow;
		int64_t q;

		for (int k = 0; k < 3; k++)
			r[k] = pad + (oy * g->sh + k) * wp;
		q = dw3_row512(r, w, 3, bias, out, 0, g->ow, g->sw, 1, act, lo, hi);
		for (int64_t q0 = q; q < g->ow; q++) {
			float v = bias;

			for (int k = 0; k < 3; k++) {
				const float *rr = r[k] + q * g->sw;

				v += w[k][0] * rr[0] + w[k][1] * rr[1] + w[k][2] * rr[2];
			}
			out[q] = v;
			if (q + 1 == g->ow)
				lr__act_apply(act, lo, hi, out + q0, g->ow - q0);
		}
	}
}
#endif

/*
 * One output plane of a 3x3 undilated depthwise filter (MobileNet's case),
 * each output written once: interior outputs sum the valid kernel rows
 * without bounds checks (a loop over ox the compiler vectorises for stride
 * 1); the left and right edges check every tap.
 */
LR_CLONES
static void depthwise_3x3(const struct lr_geom *g, const float *xp, const float *wk,
			  float bias, float *yp, int v512)
{
	int64_t sw = g->sw;
	/* Interior ox: every tap column 0 <= ox*sw - pl + kj < w for kj = 0..2. */
	int64_t lo = g->pl > 0 ? (g->pl + sw - 1) / sw : 0;
	int64_t hi = g->w - 3 + g->pl >= 0 ? (g->w - 3 + g->pl) / sw + 1 : 0;

	if (hi > g->ow)
		hi = g->ow;
	if (lo > hi)
		lo = hi;
	for (int64_t oy = 0; oy < g->oh; oy++) {
		float *out = yp + oy * g->ow;
		const float *r[3];
		float w[3][3];
		int nr = 0;

		for (int ki = 0; ki < 3; ki++) {
			int64_t iy = oy * g->sh - g->pt + ki;

			if (iy < 0 || iy >= g->h)
				continue;
			r[nr] = xp + iy * g->w - g->pl;
			for (int kj = 0; kj < 3; kj++)
				w[nr][kj] = wk[ki * 3 + kj];
			nr++;
		}
		for (int64_t ox = 0; ox < g->ow; ox++) {
			float acc = bias;

			if (ox == lo) {
				int64_t q0 = lo;

#if defined(DW_X86)
				/* AVX-512: all taps of 16 outputs at once. */
				if (v512)
					q0 = dw3_row512(r, (const float (*)[3])w, nr, bias, out,
							lo, hi, sw, 0, LR_ACT_NONE, 0.f, 0.f);
#endif
				/* The interior: no bounds checks; stride 1 in one
				 * vectorisable sweep per kernel row. */
				if (sw == 1) {
					for (int64_t q = q0; q < hi; q++)
						out[q] = bias;
					for (int k = 0; k < nr; k++) {
						const float *rr = r[k];
						float a = w[k][0], b = w[k][1], c = w[k][2];

						for (int64_t q = q0; q < hi; q++)
							out[q] += a * rr[q] + b * rr[q + 1] + c * rr[q + 2];
					}
				} else {
					for (int64_t q = q0; q < hi; q++) {
						float v = bias;

						for (int k = 0; k < nr; k++) {
							const float *rr = r[k] + q * sw;

							v += w[k][0] * rr[0] + w[k][1] * rr[1] + w[k][2] * rr[2];
						}
						out[q] = v;
					}
				}
				if (hi > lo) {
					ox = hi - 1;
					continue;
				}
			}
			/* Edges: check every tap. */
			for (int k = 0; k < nr; k++)
				for (int kj = 0; kj < 3; kj++) {
					int64_t ix = ox * sw + kj;

					if (ix >= g->pl && ix < g->w + g->pl)
						acc += w[k][kj] * r[k][ix];
				}
			out[ox] = acc;
		}
	}
}

#if defined(DW_X86)
/*
 * Depthwise 3x3 on 16 channels at once (AVX-512; MobileNet's layers have
 * multiples of 16 channels). The 16 planes' rows are transposed in
 * registers into rows of pixels of 16 channels ([wp][16], zero-padded
 * left and right; rows above and below the image are a zero row), kept in
 * a ring of 3 rows; each output pixel is then 9 aligned FMAs with the 9
 * taps' weight vectors held in registers, so every lane works whatever
 * the map's width (the plane-wise kernel above fills 7 of 16 lanes on a
 * 7x7 map), and the output row is transposed back into the 16 planes with
 * the fused activation. Per output the FMAs run in the plane-wise
 * kernel's order (bias, then row by row, column by column, padded zeros
 * included), so both give the same bits. The same kernel runs 5x5
 * windows (EfficientNet's) with a ring of 5 rows and 25 taps: they went
 * to the generic plane loop, 11-16x slower than ONNX Runtime per layer
 * (EfficientNet-b0, 1 thread: 14.9 -> 8.9 ms), which rounds each product
 * apart and so differs from this kernel in the last bits.
 */
__attribute__((target("avx512f"), always_inline))
static inline void dw_tr16(__m512 *r)
{
	__m512 t[16];

	_Pragma("GCC unroll 8")
	for (int k = 0; k < 8; k++) {
		t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
		t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
	}
	_Pragma("GCC unroll 4")
	for (int k = 0; k < 4; k++) {
		__m512d a0 = _mm512_castps_pd(t[4 * k]), a1 = _mm512_castps_pd(t[4 * k + 1]);
		__m512d a2 = _mm512_castps_pd(t[4 * k + 2]), a3 = _mm512_castps_pd(t[4 * k + 3]);

		r[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
		r[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
		r[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
		r[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
	}
	_Pragma("GCC unroll 4")
	for (int m = 0; m < 4; m++) {
		__m512 x0 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x88);
		__m512 x1 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xdd);
		__m512 y0 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x88);
		__m512 y1 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xdd);

		t[m] = _mm512_shuffle_f32x4(x0, y0, 0x88);
		t[8 + m] = _mm512_shuffle_f32x4(x0, y0, 0xdd);
		t[4 + m] = _mm512_shuffle_f32x4(x1, y1, 0x88);
		t[12 + m] = _mm512_shuffle_f32x4(x1, y1, 0xdd);
	}
	_Pragma("GCC unroll 16")
	for (int k = 0; k < 16; k++)
		r[k] = t[k];
}

/* Input row iy of 16 planes (x: plane 0's row, planes hw apart) into
 * dst[(pl + ix) * 16 + c]; the padding columns are left as they are. */
__attribute__((target("avx512f")))
static void dw_pack_row(const float *x, int64_t hw, int64_t w, float *dst)
{
	for (int64_t x0 = 0; x0 < w; x0 += 16) {
		int64_t nx = w - x0 < 16 ? w - x0 : 16;
		__mmask16 mk = (__mmask16)(nx == 16 ? 0xffffu : (1u << nx) - 1u);
		__m512 r[16];

		_Pragma("GCC unroll 16")
		for (int c = 0; c < 16; c++)
			r[c] = _mm512_maskz_loadu_ps(mk, x + c * hw + x0);
		dw_tr16(r);
		for (int64_t i = 0; i < nx; i++)
			_mm512_store_ps(dst + (x0 + i) * 16, r[i]);
	}
}

/* Output rows [oy0, oy1) of 16 channels of one image, K x K window (K = 3
 * or 5): xc points at the first plane, yc at the first output plane, wk at
 * the 16 filters, bias at 16 biases or NULL. buf: (K + 2) * wp * 16
 * floats (ring of K rows, zero row, output row of ow <= wp pixels),
 * 64-byte aligned. */
__attribute__((target("avx512f"), always_inline))
static inline void dwk_c16(const struct lr_geom *g, const float *xc, const float *wk,
			   const float *bias, float *yc, int64_t oy0, int64_t oy1, int act,
			   float lo, float hi, float *buf, const int K, int xblk, int yblk)
{
	int64_t wp = g->w + g->pl + g->pr, hw = g->h * g->w, ohw = g->oh * g->ow;
	float *ring = buf, *zero = buf + K * wp * 16, *orow = buf + (K + 1) * wp * 16;
	int64_t slot_row[5] = { -1, -1, -1, -1, -1 };
	__m512 wv[25], bv;
	const __m512 vlo = _mm512_set1_ps(act == LR_ACT_CLIP ? lo : 0.f);
	const __m512 vhi = _mm512_set1_ps(hi);

	for (int t = 0; t < K * K; t++) {
		float tmp[16];

		for (int c = 0; c < 16; c++)
			tmp[c] = wk[c * K * K + t];
		wv[t] = _mm512_loadu_ps(tmp);
	}
	bv = bias != NULL ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
	memset(zero, 0, (size_t)(wp * 16) * sizeof(float));
	for (int s = 0; s < K; s++) {
		/* padding columns of each ring slot: zero once */
		memset(ring + s * wp * 16, 0, (size_t)(g->pl * 16) * sizeof(float));
		memset(ring + (s * wp + g->pl + g->w) * 16, 0, (size_t)(g->pr * 16) * sizeof(float));
	}
	for (int64_t oy = oy0; oy < oy1; oy++) {
		const float *r[5];

		for (int k = 0; k < K; k++) {
			int64_t iy = oy * g->sh - g->pt + k;

			if (iy < 0 || iy >= g->h) {
				r[k] = zero;
				continue;
			}
			int s = (int)(iy % K);

			if (slot_row[s] != iy) {
				if (xblk) /* the row is already 16 channels per pixel */
					memcpy(ring + (s * wp + g->pl) * 16, xc + iy * g->w * 16,
					       (size_t)(g->w * 16) * sizeof(float));
				else
					dw_pack_row(xc + iy * g->w, hw, g->w, ring + (s * wp + g->pl) * 16);
				slot_row[s] = iy;
			}
			r[k] = ring + s * wp * 16;
		}
		int64_t sw16 = g->sw * 16, ox = 0;

		for (; ox + 4 <= g->ow; ox += 4) {
			__m512 a0 = bv, a1 = bv, a2 = bv, a3 = bv;

			_Pragma("GCC unroll 5")
			for (int k = 0; k < K; k++) {
				const float *p = r[k] + ox * sw16;

				_Pragma("GCC unroll 5")
				for (int j = 0; j < K; j++) {
					a0 = _mm512_fmadd_ps(_mm512_load_ps(p + j * 16), wv[k * K + j], a0);
					a1 = _mm512_fmadd_ps(_mm512_load_ps(p + sw16 + j * 16), wv[k * K + j], a1);
					a2 = _mm512_fmadd_ps(_mm512_load_ps(p + 2 * sw16 + j * 16), wv[k * K + j], a2);
					a3 = _mm512_fmadd_ps(_mm512_load_ps(p + 3 * sw16 + j * 16), wv[k * K + j], a3);
				}
			}
			_mm512_store_ps(orow + ox * 16, a0);
			_mm512_store_ps(orow + (ox + 1) * 16, a1);
			_mm512_store_ps(orow + (ox + 2) * 16, a2);
			_mm512_store_ps(orow + (ox + 3) * 16, a3);
		}
		for (; ox < g->ow; ox++) {
			__m512 a0 = bv;

			_Pragma("GCC unroll 5")
			for (int k = 0; k < K; k++)
				_Pragma("GCC unroll 5")
				for (int j = 0; j < K; j++)
					a0 = _mm512_fmadd_ps(_mm512_load_ps(r[k] + ox * sw16 + j * 16),
							     wv[k * K + j], a0);
			_mm512_store_ps(orow + ox * 16, a0);
		}
		if (yblk) { /* pixels of 16 channels, as computed */
			float *yr = yc + oy * g->ow * 16;

			for (int64_t x = 0; x < g->ow; x++) {
				__m512 v = _mm512_load_ps(orow + x * 16);

				if (act == LR_ACT_RELU)
					v = _mm512_max_ps(v, vlo);
				else if (act == LR_ACT_CLIP)
					v = _mm512_min_ps(vhi, _mm512_max_ps(vlo, v));
				_mm512_storeu_ps(yr + x * 16, v);
			}
			continue;
		}
		/* back to 16 planes, with the fused activation as cd_store512 */
		for (int64_t x0 = 0; x0 < g->ow; x0 += 16) {
			int64_t nx = g->ow - x0 < 16 ? g->ow - x0 : 16;
			__mmask16 mk = (__mmask16)(nx == 16 ? 0xffffu : (1u << nx) - 1u);
			__m512 v[16];

			_Pragma("GCC unroll 16")
			for (int i = 0; i < 16; i++)
				v[i] = i < nx ? _mm512_load_ps(orow + (x0 + i) * 16) : _mm512_setzero_ps();
			dw_tr16(v);
			_Pragma("GCC unroll 16")
			for (int c = 0; c < 16; c++) {
				if (act == LR_ACT_RELU)
					v[c] = _mm512_max_ps(v[c], vlo);
				else if (act == LR_ACT_CLIP)
					v[c] = _mm512_min_ps(vhi, _mm512_max_ps(vlo, v[c]));
				_mm512_mask_storeu_ps(yc + c * ohw + oy * g->ow + x0, mk, v[c]);
			}
		}
	}
}

__attribute__((target("avx512f")))
static void dw3_c16(const struct lr_geom *g, const float *xc, const float *wk, const float *bias,
		    float *yc, int64_t oy0, int64_t oy1, int act, float lo, float hi, float *buf,
		    int xblk, int yblk)
{
	dwk_c16(g, xc, wk, bias, yc, oy0, oy1, act, lo, hi, buf, 3, xblk, yblk);
}

__attribute__((target("avx512f")))
static void dw5_c16(const struct lr_geom *g, const float *xc, const float *wk, const float *bias,
		    float *yc, int64_t oy0, int64_t oy1, int act, float lo, float hi, float *buf,
		    int xblk, int yblk)
{
	dwk_c16(g, xc, wk, bias, yc, oy0, oy1, act, lo, hi, buf, 5, xblk, yblk);
}
#endif

static void depthwise_planes(void *arg, int64_t begin, int64_t end, int thread);

/*
 * Register allocation for the kernels with 24-28 live vector registers:
 * GCC 12's default (-fira-region=mixed) kept one input vector of
 * pw_tile's 8 x 3 tile in a stack slot, storing it once and reading it
 * back in 8 of every 24 FMAs although registers were free; allocating
 * over the whole function keeps them all in registers.
 */
#if defined(__GNUC__) && !defined(__clang__)
#define LR_IRA_ALL __attribute__((optimize("ira-region=all")))
#else
#define LR_IRA_ALL
#endif

/* ---- pointwise (1x1, stride 1) in NCHW ----------------------------------- */

#if defined(DW_X86)
/*
 * A 1x1 stride-1 convolution is Y[m][p] = b[m] + sum_c W[m][c] X[c][p] for
 * each image, with X and Y already row-major in NCHW: no packing, no
 * padding and no transposes (the direct kernel's NCHWc tiles spent as long
 * transposing into NCHW as computing on MobileNet-v2's thin layers). A
 * tile is MR filters x NV vectors of 16 positions, MR * NV accumulators
 * in registers; every step over c loads NV vectors of X and broadcasts MR
 * weights, packed once per engine as [c][8] per tile of 8 filters (rows
 * of W 1-4 KiB apart fell on the same L1 sets). A task is a band of
 * strips of PW_NV vectors, which each tile sweeps before the next, and
 * blocks of PW_KC input channels keep the band's X in L2. Each output adds b, then c = 0,
 * 1, ... in order, one FMA each. The fused activation is applied as
 * cd_store512 does (Relu max(v, 0): NaN -> 0; Clip min(hi, max(lo, v))).
 */
struct pw_job {
	const float *x, *w, *b;
	float *y;
	const float *res;       /* a residual to add before the activation (C order), or NULL */
	int64_t c, m, p;        /* input channels, filters, positions per image */
	int64_t nvec, nstrip;   /* vectors of 16 positions, strips of PW_NV */
	int64_t nband;          /* bands per image: band b is strips
				 * [b * nstrip / nband, (b + 1) * nstrip / nband) */
	int64_t mchunk, nmc;    /* filters per task, chunks */
	int act;
	float lo, hi;
	int prefetch;           /* prefetch the strip after next's input */
};

#define PW_NV 3
#define PW_KC 128
#define PW_BAND 32                   /* most strips per band */
#define PW_BAND_BYTES ((int64_t)128 << 10) /* most input per band */

__attribute__((target("avx512f"), always_inline))
static inline void pw_tile(const float *x, int64_t p, const float *w, int64_t cin,
			   const float *b, float *y, const float *res, int64_t q0, const int MR,
			   int nv, __mmask16 mlast, int act, float lo, float hi, int64_t k0,
			   int64_t k1, const int full)
{
	__m512 acc[8][PW_NV];
	__mmask16 mk[PW_NV];

	_Pragma("GCC unroll 8")
	for (int v = 0; v < PW_NV; v++)
		mk[v] = v < nv - 1 ? (__mmask16)0xffffu : v == nv - 1 ? mlast : 0;
	_Pragma("GCC unroll 8")
	for (int r = 0; r < MR; r++) {
		_Pragma("GCC unroll 8")
		for (int v = 0; v < PW_NV; v++)
			acc[r][v] = k0 > 0 ? (full ? _mm512_loadu_ps(y + r * p + q0 + 16 * v)
					      : _mm512_maskz_loadu_ps(mk[v], y + r * p + q0 + 16 * v))
				: b != NULL ? _mm512_set1_ps(b[r]) : _mm512_setzero_ps();
	}
	if (k1 < cin) {
		act = LR_ACT_NONE; /* a partial sum: the residual and the activation come last */
		res = NULL;
	}
	for (int64_t k = k0; k < k1; k++) {
		const float *xr = x + k * p + q0;
		__m512 xv[PW_NV];

		_Pragma("GCC unroll 8")
		for (int v = 0; v < PW_NV; v++)
			xv[v] = full ? _mm512_loadu_ps(xr + 16 * v) : _mm512_maskz_loadu_ps(mk[v], xr + 16 * v);
		_Pragma("GCC unroll 8")
		for (int r = 0; r < MR; r++) {
			__m512 wv = _mm512_set1_ps(w[k * 8 + r]);

			_Pragma("GCC unroll 8")
			for (int v = 0; v < PW_NV; v++)
				acc[r][v] = _mm512_fmadd_ps(wv, xv[v], acc[r][v]);
		}
	}
	const __m512 vlo = _mm512_set1_ps(act == LR_ACT_CLIP ? lo : 0.f);
	const __m512 vhi = _mm512_set1_ps(hi);

	_Pragma("GCC unroll 8")
	for (int r = 0; r < MR; r++) {
		_Pragma("GCC unroll 8")
		for (int v = 0; v < PW_NV; v++) {
			__m512 t = acc[r][v];

			if (res != NULL)
				t = _mm512_add_ps(t, full ? _mm512_loadu_ps(res + r * p + q0 + 16 * v)
						      : _mm512_maskz_loadu_ps(mk[v], res + r * p + q0 + 16 * v));
			if (act == LR_ACT_RELU)
				t = _mm512_max_ps(t, vlo);
			else if (act == LR_ACT_CLIP)
				t = _mm512_min_ps(vhi, _mm512_max_ps(vlo, t));
			if (full)
				_mm512_storeu_ps(y + r * p + q0 + 16 * v, t);
			else
				_mm512_mask_storeu_ps(y + r * p + q0 + 16 * v, mk[v], t);
		}
	}
}

#define PW_TILE_FN(MR)                                                             \
__attribute__((target("avx512f"))) LR_IRA_ALL                                      \
static void pw_tile_##MR(const float *x, int64_t p, const float *w, int64_t cin,   \
			 const float *b, float *y, const float *res, int64_t q0,    \
			 int nv, __mmask16 mlast, int act, float lo, float hi,      \
			 int64_t k0, int64_t k1)                                    \
{                                                                                  \
	if (nv == PW_NV && mlast == 0xffffu)                                        \
		pw_tile(x, p, w, cin, b, y, res, q0, MR, nv, mlast, act, lo, hi, k0, k1, 1); \
	else                                                                       \
		pw_tile(x, p, w, cin, b, y, res, q0, MR, nv, mlast, act, lo, hi, k0, k1, 0); \
}
PW_TILE_FN(1) PW_TILE_FN(2) PW_TILE_FN(3) PW_TILE_FN(4)
PW_TILE_FN(5) PW_TILE_FN(6) PW_TILE_FN(7) PW_TILE_FN(8)

typedef void (*pw_tile_fn)(const float *, int64_t, const float *, int64_t, const float *,
			   float *, const float *, int64_t, int, __mmask16, int, float, float,
			   int64_t, int64_t);
static const pw_tile_fn pw_tiles[9] = { NULL, pw_tile_1, pw_tile_2, pw_tile_3, pw_tile_4,
					pw_tile_5, pw_tile_6, pw_tile_7, pw_tile_8 };

/* Tasks: (image, band of strips of PW_NV vectors, chunk of filters). */
static void pw_tasks(void *arg, int64_t begin, int64_t end)
{
	const struct pw_job *j = arg;

	for (int64_t t = begin; t < end; t++) {
		int64_t n = t / (j->nband * j->nmc), bd = t / j->nmc % j->nband, mc = t % j->nmc;
		int64_t s0 = bd * j->nstrip / j->nband, s1 = (bd + 1) * j->nstrip / j->nband;
		int64_t m0 = mc * j->mchunk, m1 = m0 + j->mchunk < j->m ? m0 + j->mchunk : j->m;
		const float *x = j->x + n * j->c * j->p;
		float *y = j->y + n * j->m * j->p;
		const float *res = j->res != NULL ? j->res + n * j->m * j->p : NULL;

		/* Input channels in blocks of PW_KC, so that a band's block of X
		 * stays in L2 across the filter tiles; a later block continues
		 * the sums in Y, in the same order. */
		for (int64_t k0 = 0; k0 < j->c; k0 += PW_KC) {
			int64_t k1 = k0 + PW_KC < j->c ? k0 + PW_KC : j->c;

			for (int64_t r = m0; r < m1; r += 8) {
				int mr = m1 - r < 8 ? (int)(m1 - r) : 8;

				for (int64_t s = s0; s < s1; s++) {
					int64_t v0 = s * PW_NV, nv = j->nvec - v0 < PW_NV ? j->nvec - v0 : PW_NV;
					int64_t q0 = v0 * 16, last = j->p - (v0 + nv - 1) * 16;
					__mmask16 mlast = (__mmask16)(last >= 16 ? 0xffffu : (1u << last) - 1u);

					if (j->prefetch && r == m0 && k0 == 0 && mc == 0 &&
					    v0 + 2 * PW_NV < j->nvec) {
						/*
						 * The strip after next: its input lines, every channel.
						 * A strip reads c rows of X a plane apart, more streams
						 * than the hardware prefetcher follows: MobileNet-v2's
						 * 32 -> 16 1x1 at 112 x 112 (1.6 MB of input per image)
						 * went from 1.1-1.2 to 0.78-0.88 ms at batch 8, 1 thread;
						 * prefetching the output's lines too changed nothing.
						 */
						const float *xn = x + q0 + 2 * PW_NV * 16;

						for (int64_t k = 0; k < j->c; k++)
							for (int v = 0; v < PW_NV; v++)
								__builtin_prefetch(xn + k * j->p + 16 * v, 0, 3);
					}
					pw_tiles[mr](x, j->p, j->w + r * j->c, j->c, j->b ? j->b + r : NULL,
						     y + r * j->p, res != NULL ? res + r * j->p : NULL, q0,
						     (int)nv, mlast, j->act, j->lo, j->hi, k0, k1);
				}
			}
		}
	}
}
#endif

/*
 * Runs a 1x1 stride-1 unpadded group-1 Conv with pw_tasks where AVX-512 is
 * allowed (LR_NO_PW1X1 or LR_NO_CONV_DIRECT: never). Returns 1 if it ran, 0 if not taken,
 * LR_ENOMEM.
 */
static int conv_pw1x1(lr_opctx *c, const lr_tensor *x, const lr_tensor *w, const lr_tensor *b,
		      lr_tensor *y, const struct lr_geom *g, int64_t m)
{
#if defined(DW_X86)
	struct pw_job j;
	int64_t nt, tasks, mt = (m + 7) / 8;
	size_t wbytes = (size_t)(mt * 8) * (size_t)g->c * sizeof(float);
	float *packed, *own = NULL;

	/*
	 * Thin layers (fewer than 64 input channels or filters) on maps of
	 * 14 x 14 and more, and every layer on maps of 56 x 56 and more,
	 * where the direct kernel's NCHWc tiles cost more to transpose than
	 * to compute: MobileNet-v2's 16-144 channel layers at 28 x 28 to
	 * 112 x 112 ran 1.2-2.7x faster here (1 thread, AVX-512), and
	 * ResNet-50's 64-256 channel layers at 56 x 56 1.05-1.9x in-network
	 * (64 -> 64: 0.295 -> 0.158 ms at batch 1, ONNX Runtime 0.155; the
	 * model 3% faster at batch 1 and 6% at batch 8). On 7 x 7 maps a row
	 * of 49 positions fills 49 of 64 lanes, and wide layers at 14 x 14
	 * ran 1.3x slower here than on the direct kernel (at 28 x 28 from 5%
	 * faster to 8% slower).
	 */
	if (g->kh != 1 || g->kw != 1 || g->sh != 1 || g->sw != 1 || g->pt || g->pl || g->pb ||
	    g->pr || g->oh * g->ow < 196 || (g->c >= 64 && m >= 64 && g->oh * g->ow < 3136) ||
	    !dw_avx512() ||
	    getenv("LR_NO_PW1X1") != NULL || getenv("LR_NO_CONV_DIRECT") != NULL)
		return 0;
	/* Packed weights from the node's cache when the weights are constant;
	 * tag 3 on the size (a 32-byte multiple), unlike conv_direct.c's 1, 2. */
	if (c->cache != NULL && c->cache->key == w->data && c->cache->bytes == wbytes + 3) {
		packed = c->cache->data;
	} else {
		const float *wf = w->data;

		packed = lr_alloc_aligned(wbytes);
		if (packed == NULL)
			return LR_ENOMEM;
		for (int64_t t = 0; t < mt; t++)
			for (int64_t k = 0; k < g->c; k++)
				for (int64_t r = 0; r < 8; r++)
					packed[(t * g->c + k) * 8 + r] =
						t * 8 + r < m ? wf[(t * 8 + r) * g->c + k] : 0.f;
		if (c->cache != NULL && !c->cache_ro) {
			lr_free_aligned(c->cache->data);
			c->cache->data = packed;
			c->cache->key = w->data;
			c->cache->bytes = wbytes + 3;
		} else {
			own = packed;
		}
	}
	j.x = x->data;
	j.w = packed;
	j.b = b ? b->data : NULL;
	j.y = y->data;
	j.c = g->c;
	j.m = m;
	j.p = g->oh * g->ow;
	j.nvec = (j.p + 15) / 16;
	j.nstrip = (j.nvec + PW_NV - 1) / PW_NV;
	/*
	 * Bands of strips, each filter tile over the whole band before the
	 * next: a tile writes 8 planes a band long instead of every filter's
	 * plane 48 floats at a time, and the band's input (at most
	 * PW_BAND_BYTES of it) stays in L2 for the next tile. VGG-16's
	 * rank-16 16 -> 64 expansion at 224 x 224: 0.87 -> 0.66 ms (1 thread).
	 */
	{
		int64_t band = PW_BAND_BYTES / ((g->c < PW_KC ? g->c : PW_KC) * PW_NV * 16 *
						(int64_t)sizeof(float));

		band = band < 1 ? 1 : band > PW_BAND ? PW_BAND : band;
		j.nband = (j.nstrip + band - 1) / band;
	}
	j.act = c->act;
	j.lo = c->act_lo;
	j.hi = c->act_hi;
	/* A residual the engine fused (c->res), in C order like Y: added in
	 * the last channel block's stores, then the activation. */
	j.res = c->res != NULL && !c->res->blocked ? c->res->data : NULL;
	/* In the residual's own buffer when the engine offers it, with one
	 * channel block (earlier blocks store partial sums into Y). */
	if (j.res != NULL && g->c <= PW_KC) {
		j.res = lr__res_inplace(c, y, 0);
		j.y = y->data;
	}
	if (c->res != NULL && j.res == NULL)
		j.act = LR_ACT_NONE; /* the caller adds it, then the activation */
	/* Inputs of 512 KiB and more per image (half of L2; LR_NO_PREFETCH: never). */
	j.prefetch = g->c * j.p * (int64_t)sizeof(float) >= (512 << 10) &&
		     getenv("LR_NO_PREFETCH") == NULL;
	nt = lr_pool_size(c->pool);
	/*
	 * Bands of equal length, at least 4 per thread, so that each thread
	 * takes a contiguous range of positions, as the other kernels do:
	 * then a layer reads what the same thread wrote in the layer before.
	 * With bands of the cache bound alone (32 strips: 32, 32 and 2 at
	 * 56 x 56) and the filters split to make up the count, consecutive
	 * layers cut the map differently and a thread read the other core's
	 * lines: a compressed ResNet-50's layer1 ran no faster on 2 threads
	 * than on 1; now 15% faster than that (bench --ab, 2026-12-05).
	 */
	if (j.nband < 4 * nt)
		j.nband = j.nstrip < 4 * nt ? j.nstrip : 4 * nt;
	/* Filters split in chunks of 8s when strips alone leave threads idle. */
	j.mchunk = (m + 7) / 8 * 8;
	tasks = g->n * j.nband;
	while (tasks * ((m + j.mchunk - 1) / j.mchunk) < 4 * nt && j.mchunk > 8)
		j.mchunk = ((j.mchunk / 2) + 7) / 8 * 8;
	j.nmc = (m + j.mchunk - 1) / j.mchunk;
	lr_pool_run(c->pool, tasks * j.nmc, 1, pw_tasks, &j);
	if (j.res != NULL)
		c->res_done = 1;
	lr_free_aligned(own);
	return 1;
#else
	(void)c; (void)x; (void)w; (void)b; (void)y; (void)g; (void)m;
	return 0;
#endif
}

/* ---- few input channels, any stride: positions in lanes ----------------- */

#if defined(DW_X86)
/*
 * Convolutions with few input channels (the RGB stems of ResNet-50 and
 * MobileNet-v2: 3 channels, 7x7 or 3x3, stride 2), where the direct
 * kernel's NCHWc tiles are short in the reduction (27-147 products) and
 * their transposes into NCHW cost as much as the FMAs. The zero-padded
 * input is split into stride x stride phases (so every tap reads a
 * stride-1 plane), and outputs are computed on a grid of the phases'
 * width wq: grid position q = oy * wq + ox, and tap t reads the phases at
 * q + off[t], so 16 consecutive grid positions are one vector load per
 * tap. Like pw_tile, a tile is 8 filters x PW_NV vectors, weights
 * broadcast from the packed [tap][8] layout; each output adds the bias
 * then the taps in the order phase, channel, row, column. Grid columns ox
 * >= ow are not outputs: each vector's valid lanes are compressed and
 * stored at their place in Y (valid outputs of a strip are consecutive);
 * a vector whose 16 lanes are all outputs, most of them, is stored as it
 * is.
 */
#define GC_BAND 32 /* most strips per band */

struct gc_job {
	const float *ph, *w, *b;  /* phases [n][s*s][c][hq][wq], packed W, bias */
	float *y;
	const int32_t *off;       /* per tap: offset in one image's phases */
	int64_t kk, m, wq, imgsz; /* taps, filters, grid width, floats/image */
	int64_t oh, ow, ngrid;    /* output size, grid positions oh * wq */
	int64_t nstrip, band, nband, mchunk, nmc;
	int act;
	float lo, hi;
};

__attribute__((target("avx512f"), always_inline))
static inline void gc_tile(const float *x, const int32_t *off, int64_t kk, const float *w,
			   const float *b, float *y, int64_t ohw, int64_t q0, const int MR,
			   const __mmask16 *mk, const int64_t *dst, int act, float lo, float hi)
{
	__m512 acc[8][PW_NV];

	_Pragma("GCC unroll 8")
	for (int r = 0; r < MR; r++) {
		_Pragma("GCC unroll 8")
		for (int v = 0; v < PW_NV; v++)
			acc[r][v] = b != NULL ? _mm512_set1_ps(b[r]) : _mm512_setzero_ps();
	}
	for (int64_t k = 0; k < kk; k++) {
		const float *xr = x + off[k] + q0;
		__m512 xv[PW_NV];

		_Pragma("GCC unroll 8")
		for (int v = 0; v < PW_NV; v++)
			xv[v] = _mm512_loadu_ps(xr + 16 * v);
		_Pragma("GCC unroll 8")
		for (int r = 0; r < MR; r++) {
			__m512 wv = _mm512_set1_ps(w[k * 8 + r]);

			_Pragma("GCC unroll 8")
			for (int v = 0; v < PW_NV; v++)
				acc[r][v] = _mm512_fmadd_ps(wv, xv[v], acc[r][v]);
		}
	}
	const __m512 vlo = _mm512_set1_ps(act == LR_ACT_CLIP ? lo : 0.f);
	const __m512 vhi = _mm512_set1_ps(hi);

	_Pragma("GCC unroll 8")
	for (int r = 0; r < MR; r++) {
		_Pragma("GCC unroll 8")
		for (int v = 0; v < PW_NV; v++) {
			__m512 t = acc[r][v];
			int cnt = __builtin_popcount(mk[v]);

			if (act == LR_ACT_RELU)
				t = _mm512_max_ps(t, vlo);
			else if (act == LR_ACT_CLIP)
				t = _mm512_min_ps(vhi, _mm512_max_ps(vlo, t));
			if (mk[v] == 0xffffu) { /* every lane an output: no compress */
				_mm512_storeu_ps(y + r * ohw + dst[v], t);
				continue;
			}
			t = _mm512_maskz_compress_ps(mk[v], t);
			_mm512_mask_storeu_ps(y + r * ohw + dst[v], (__mmask16)((1u << cnt) - 1u), t);
		}
	}
}

#define GC_TILE_FN(MR)                                                             \
__attribute__((target("avx512f")))                                                 \
static void gc_tile_##MR(const float *x, const int32_t *off, int64_t kk,           \
			 const float *w, const float *b, float *y, int64_t ohw,     \
			 int64_t q0, const __mmask16 *mk, const int64_t *dst,        \
			 int act, float lo, float hi)                               \
{                                                                                  \
	gc_tile(x, off, kk, w, b, y, ohw, q0, MR, mk, dst, act, lo, hi);           \
}
GC_TILE_FN(1) GC_TILE_FN(2) GC_TILE_FN(3) GC_TILE_FN(4)
GC_TILE_FN(5) GC_TILE_FN(6) GC_TILE_FN(7) GC_TILE_FN(8)

typedef void (*gc_tile_fn)(const float *, const int32_t *, int64_t, const float *,
			   const float *, float *, int64_t, int64_t, const __mmask16 *,
			   const int64_t *, int, float, float);
static const gc_tile_fn gc_tiles[9] = { NULL, gc_tile_1, gc_tile_2, gc_tile_3, gc_tile_4,
					gc_tile_5, gc_tile_6, gc_tile_7, gc_tile_8 };

/* Tasks: (image, band of strips of PW_NV * 16 grid positions, chunk of
 * filters); each filter tile sweeps the band before the next, as in
 * pw_tasks, so that a tile writes its 8 planes in runs a band long. The
 * lanes' masks are worked out once per band, without a division per lane
 * (48 of them per strip cost a third of the stem's time). */
static void gc_tasks(void *arg, int64_t begin, int64_t end)
{
	const struct gc_job *j = arg;
	int64_t ohw = j->oh * j->ow;
	__mmask16 mk[GC_BAND][PW_NV];
	int64_t dst[GC_BAND][PW_NV];

	for (int64_t t = begin; t < end; t++) {
		int64_t n = t / (j->nband * j->nmc), bd = t / j->nmc % j->nband, mc = t % j->nmc;
		int64_t s0 = bd * j->band, s1 = s0 + j->band < j->nstrip ? s0 + j->band : j->nstrip;
		int64_t m0 = mc * j->mchunk, m1 = m0 + j->mchunk < j->m ? m0 + j->mchunk : j->m;

		/* Each vector's valid lanes and where the first goes in Y. */
		for (int64_t s = s0; s < s1; s++) {
			for (int v = 0; v < PW_NV; v++) {
				int64_t q = s * PW_NV * 16 + 16 * v, oy = q / j->wq, ox = q % j->wq;
				unsigned msk = 0;

				dst[s - s0][v] = -1;
				for (int i = 0; i < 16; i++, q++, ox++) {
					if (ox == j->wq) {
						ox = 0;
						oy++;
					}
					if (q < j->ngrid && ox < j->ow) {
						msk |= 1u << i;
						if (dst[s - s0][v] < 0)
							dst[s - s0][v] = oy * j->ow + ox;
					}
				}
				mk[s - s0][v] = (__mmask16)msk;
				if (dst[s - s0][v] < 0)
					dst[s - s0][v] = 0;
			}
		}
		for (int64_t r = m0; r < m1; r += 8) {
			int mr = m1 - r < 8 ? (int)(m1 - r) : 8;

			for (int64_t s = s0; s < s1; s++)
				gc_tiles[mr](j->ph + n * j->imgsz, j->off, j->kk, j->w + r * j->kk,
					     j->b ? j->b + r : NULL, j->y + (n * j->m + r) * ohw, ohw,
					     s * PW_NV * 16, mk[s - s0], dst[s - s0], j->act, j->lo, j->hi);
		}
	}
}

struct gc_split {
	const float *x;
	float *ph;
	const struct lr_geom *g;
	int64_t s, hq, wq, plane;  /* stride, phase rows/cols (+ slack rows), floats */
};

/* Zero-padded phases of planes [begin, end) (plane = n * c + ci). */
static void gc_split_planes(void *arg, int64_t begin, int64_t end)
{
	const struct gc_split *sp = arg;
	const struct lr_geom *g = sp->g;

	for (int64_t pl = begin; pl < end; pl++) {
		int64_t n = pl / g->c, ci = pl % g->c;
		const float *xp = sp->x + pl * g->h * g->w;

		for (int64_t a = 0; a < sp->s; a++)
			for (int64_t bb = 0; bb < sp->s; bb++) {
				float *d = sp->ph + ((n * sp->s * sp->s + a * sp->s + bb) * g->c + ci) *
						    sp->plane;

				lr__phase_plane(xp, g->h, g->w, sp->s, sp->s, a - g->pt, bb - g->pl,
						d, sp->hq, sp->wq);
				memset(d + sp->hq * sp->wq, 0,
				       (size_t)(sp->plane - sp->hq * sp->wq) * sizeof(float));
			}
	}
}
#endif

/*
 * Runs a group-1 2-D Conv with at most 4 input channels (dilation 1, any
 * stride and padding) with gc_tasks where AVX-512 is allowed
 * (LR_NO_SMALLC or LR_NO_CONV_DIRECT: never). Returns 1 if it ran, 0 if
 * not taken, LR_ENOMEM.
 */
static int conv_smallc(lr_opctx *c, const lr_tensor *x, const lr_tensor *w, const lr_tensor *b,
		       lr_tensor *y, const struct lr_geom *g, int64_t m)
{
#if defined(DW_X86)
	struct gc_job j;
	struct gc_split sp;
	int64_t s = g->sh, kq, kk, mt = (m + 7) / 8, nt, tasks, maxoff;
	int32_t *off = NULL;
	float *packed, *own = NULL, *ph = NULL;
	size_t wbytes;

	if (g->c > 4 || g->sh != g->sw || g->dh != 1 || g->dw != 1 || x->ndim != 4 ||
	    g->oh * g->ow < 196 || g->c * g->kh * g->kw > 256 || !dw_avx512() ||
	    getenv("LR_NO_SMALLC") != NULL || getenv("LR_NO_CONV_DIRECT") != NULL)
		return 0;
	kq = (g->kh + s - 1) / s > (g->kw + s - 1) / s ? (g->kh + s - 1) / s : (g->kw + s - 1) / s;
	/* Phases: rows and columns of the padded image / s, plus kq - 1 for
	 * the taps and one extra row for the last strip's grid overrun. */
	sp.s = s;
	sp.wq = g->ow + kq - 1;
	sp.hq = g->oh + kq - 1;
	sp.plane = (sp.hq + 1) * sp.wq + PW_NV * 16 + 16;
	sp.x = x->data;
	sp.g = g;
	j.imgsz = s * s * g->c * sp.plane;
	if (j.imgsz > INT32_MAX)
		return 0;
	kk = g->c * g->kh * g->kw;
	wbytes = (size_t)(mt * 8) * (size_t)kk * sizeof(float);
	/* Taps in the order of W's layout (channel, row, column): the sums
	 * add them in that order, as the reference does. */
	off = malloc((size_t)kk * sizeof(*off));
	ph = lr_alloc_aligned((size_t)(g->n * j.imgsz) * sizeof(float));
	if (off == NULL || ph == NULL) {
		free(off);
		lr_free_aligned(ph);
		return LR_ENOMEM;
	}
	maxoff = 0;
	for (int64_t ci = 0; ci < g->c; ci++)
		for (int64_t ki = 0; ki < g->kh; ki++)
			for (int64_t kj = 0; kj < g->kw; kj++) {
				int64_t a = ki % s, bb = kj % s, t = (ci * g->kh + ki) * g->kw + kj;

				off[t] = (int32_t)(((a * s + bb) * g->c + ci) * sp.plane +
						   (ki / s) * sp.wq + kj / s);
				if (off[t] > maxoff)
					maxoff = off[t];
			}
	(void)maxoff;
	if (c->cache != NULL && c->cache->key == w->data && c->cache->bytes == wbytes + 3) {
		packed = c->cache->data;
	} else {
		const float *wf = w->data;

		packed = lr_alloc_aligned(wbytes);
		if (packed == NULL) {
			free(off);
			lr_free_aligned(ph);
			return LR_ENOMEM;
		}
		for (int64_t t = 0; t < mt; t++)
			for (int64_t k = 0; k < kk; k++)
				for (int64_t r = 0; r < 8; r++)
					packed[(t * kk + k) * 8 + r] =
						t * 8 + r < m ? wf[(t * 8 + r) * kk + k] : 0.f;
		if (c->cache != NULL && !c->cache_ro) {
			lr_free_aligned(c->cache->data);
			c->cache->data = packed;
			c->cache->key = w->data;
			c->cache->bytes = wbytes + 3;
		} else {
			own = packed;
		}
	}
	sp.ph = ph;
	lr_pool_run(c->pool, g->n * g->c, 1, gc_split_planes, &sp);
	j.ph = ph;
	j.w = packed;
	j.b = b ? b->data : NULL;
	j.y = y->data;
	j.off = off;
	j.kk = kk;
	j.m = m;
	j.wq = sp.wq;
	j.oh = g->oh;
	j.ow = g->ow;
	j.ngrid = g->oh * sp.wq;
	j.nstrip = (j.ngrid + PW_NV * 16 - 1) / (PW_NV * 16);
	/* Bands of GC_BAND strips: VGG-16's 3 -> 64 stem at 224 x 224 took
	 * 1.16 ms in bands against 1.26-1.33 strip by strip (1 thread). */
	j.band = GC_BAND;
	if (j.band > j.nstrip)
		j.band = j.nstrip;
	j.nband = (j.nstrip + j.band - 1) / j.band;
	j.act = c->act;
	j.lo = c->act_lo;
	j.hi = c->act_hi;
	nt = lr_pool_size(c->pool);
	j.mchunk = mt * 8;
	tasks = g->n * j.nband;
	while (tasks * ((m + j.mchunk - 1) / j.mchunk) < 4 * nt && j.mchunk > 8)
		j.mchunk = ((j.mchunk / 2) + 7) / 8 * 8;
	j.nmc = (m + j.mchunk - 1) / j.mchunk;
	lr_pool_run(c->pool, tasks * j.nmc, 1, gc_tasks, &j);
	lr_free_aligned(own);
	lr_free_aligned(ph);
	free(off);
	return 1;
#else
	(void)c; (void)x; (void)w; (void)b; (void)y; (void)g; (void)m;
	return 0;
#endif
}



/* Tasks of the 16-channel kernel: (image, block of 16 channels, band of
 * output rows), bands of j->band rows; see dw3_c16. */
static void depthwise_c16(void *arg, int64_t begin, int64_t end, int thread)
{
#if defined(DW_X86)
	struct dw_job *j = arg;
	const struct lr_geom *g = j->g;
	int64_t nblk = g->c / 16, nband = (g->oh + j->band - 1) / j->band;
	int64_t wp = g->w + g->pl + g->pr;
	int64_t K = g->kh;
	float *buf = lr_op_scratch(j->c, thread, (size_t)((K + 2) * wp * 16) * sizeof(float));

	for (int64_t t = begin; t < end; t++) {
		int64_t n = t / (nblk * nband), cb = t / nband % nblk, band = t % nband;
		int64_t oy0 = band * j->band, oy1 = oy0 + j->band < g->oh ? oy0 + j->band : g->oh;
		int64_t c0 = cb * 16;

		if (buf == NULL && !j->xblk && !j->yblk) { /* no scratch: the plane-wise kernel */
			struct dw_job k = *j;

			k.band = 0;
			if (band == 0)
				depthwise_planes(&k, n * g->c + c0, n * g->c + c0 + 16, thread);
			continue;
		}
		if (buf == NULL) {
			j->failed = 1;
			return;
		}
		/* (16 planes or one block of 16 channels: the same offset) */
		(K == 5 ? dw5_c16 : dw3_c16)(g, j->x + (n * g->c + c0) * g->h * g->w,
					    j->w + c0 * K * K, j->b ? j->b + c0 : NULL,
					    j->y + (n * g->c + c0) * g->oh * g->ow, oy0, oy1,
					    j->act, j->lo, j->hi, buf, j->xblk, j->yblk);
	}
#else
	(void)arg; (void)begin; (void)end; (void)thread;
#endif
}

static void depthwise_planes(void *arg, int64_t begin, int64_t end, int thread)
{
	const struct dw_job *j = arg;
	const struct lr_geom *g = j->g;
	int64_t cout = g->c * j->mult;

	if (g->kh == 3 && g->kw == 3 && g->dh == 1 && g->dw == 1 && g->h > 0 && g->w > 0) {
		int v512 = dw_avx512();

#if defined(DW_X86)
		if (v512) {
			size_t bytes = (size_t)((g->h + g->pt + g->pb) * (g->w + g->pl + g->pr) + 32) *
				       sizeof(float);
			float *pad = lr_op_scratch(j->c, thread, bytes);

			if (pad != NULL) {
				for (int64_t p = begin; p < end; p++) {
					int64_t n = p / cout, oc = p % cout, ic = oc / j->mult;

					depthwise_3x3_pad512(g, j->x + (n * g->c + ic) * g->h * g->w,
							     j->w + oc * 9, j->b ? j->b[oc] : 0.0f,
							     j->y + p * g->oh * g->ow, pad, j->act,
							     j->lo, j->hi);
				}
				return;
			}
		}
#endif

		for (int64_t p = begin; p < end; p++) {
			int64_t n = p / cout, oc = p % cout, ic = oc / j->mult;

			depthwise_3x3(g, j->x + (n * g->c + ic) * g->h * g->w, j->w + oc * 9,
				      j->b ? j->b[oc] : 0.0f, j->y + p * g->oh * g->ow, v512);
			lr__act_apply(j->act, j->lo, j->hi, j->y + p * g->oh * g->ow, g->oh * g->ow);
		}
		return;
	}
	for (int64_t p = begin; p < end; p++) {
		int64_t n = p / cout, oc = p % cout, ic = oc / j->mult;
		const float *xp = j->x + (n * g->c + ic) * g->h * g->w;
		const float *wk = j->w + oc * g->kh * g->kw;
		float *yp = j->y + p * g->oh * g->ow;
		float bias = j->b ? j->b[oc] : 0.0f;

		for (int64_t oy = 0; oy < g->oh; oy++) {
			for (int64_t ox = 0; ox < g->ow; ox++)
				yp[oy * g->ow + ox] = bias;
			for (int64_t ki = 0; ki < g->kh; ki++) {
				int64_t iy = oy * g->sh - g->pt + ki * g->dh;

				if (iy < 0 || iy >= g->h)
					continue;
				const float *row = xp + iy * g->w;
				float *out = yp + oy * g->ow;

				for (int64_t kj = 0; kj < g->kw; kj++) {
					float wv = wk[ki * g->kw + kj];
					int64_t off = -g->pl + kj * g->dw;
					/* ox range with 0 <= ox*sw + off < w */
					int64_t lo = off < 0 ? (-off + g->sw - 1) / g->sw : 0;
					int64_t hi = (g->w - off + g->sw - 1) / g->sw;

					if (hi > g->ow)
						hi = g->ow;
					if (g->sw == 1) {
						const float *src = row + off;

						for (int64_t ox = lo; ox < hi; ox++)
							out[ox] += wv * src[ox];
					} else {
						for (int64_t ox = lo; ox < hi; ox++)
							out[ox] += wv * row[ox * g->sw + off];
					}
				}
			}
		}
		lr__act_apply(j->act, j->lo, j->hi, yp, g->oh * g->ow);
	}
}

/*
 * Bytes of the per-thread im2col tile. OpenBLAS packs the filter matrix
 * again for every SGEMM call, so tiles must be wide enough to amortise it.
 */
#define LR_CONV_TILE_BYTES (8u * 1024u * 1024u)

struct conv_job {
	lr_opctx *c;             /* for per-thread scratch */
	const float *x, *w, *b;  /* input, filters, bias (may be NULL) */
	float *y;                /* output */
	const struct lr_geom *g;
	int64_t group, cg, mg, m;  /* groups, channels per group in/out, out total */
	int64_t krows, ohw;      /* patch rows (cg*kh*kw), output positions */
	int64_t nb, ntiles;      /* tile width and tiles per image-group */
	int direct;              /* 1x1 stride 1 unpadded: no im2col */
	int failed;              /* set when a scratch allocation failed */
};

static void conv_tiles(void *arg, int64_t begin, int64_t end, int thread)
{
	struct conv_job *j = arg;
	const struct lr_geom *g = j->g;

	for (int64_t t = begin; t < end; t++) {
		int64_t tile = t % j->ntiles, ng = t / j->ntiles;
		int64_t gi = ng % j->group, n = ng / j->group;
		int64_t j0 = tile * j->nb;
		int64_t cols = j->ohw - j0 < j->nb ? j->ohw - j0 : j->nb;
		const float *xg = j->x + (n * g->c + gi * j->cg) * g->h * g->w;
		const float *wg = j->w + gi * j->mg * j->krows;
		float *yg = j->y + (n * j->m + gi * j->mg) * j->ohw + j0;
		const float *bm;
		int64_t ldb;

		if (j->direct) {
			bm = xg + j0;
			ldb = j->ohw;
		} else {
			float *col = lr_op_scratch(j->c, thread,
						   (size_t)(j->krows * cols) * sizeof(float));

			if (col == NULL) {
				j->failed = 1;
				return;
			}
			im2col_tile(xg, col, g, j->krows, j0, cols);
			bm = col;
			ldb = cols;
		}
		/* With a bias the output starts as the bias and SGEMM adds to it
		 * (beta 1): one pass over the output instead of OpenBLAS's
		 * zeroing pass (beta 0) plus a bias pass. */
		if (j->b != NULL) {
			for (int64_t r = 0; r < j->mg; r++) {
				float bv = j->b[gi * j->mg + r];
				float *row = yg + r * j->ohw;

				for (int64_t q = 0; q < cols; q++)
					row[q] = bv;
			}
		}
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)j->mg, (int)cols,
			    (int)j->krows, 1.0f, wg, (int)j->krows, bm, (int)ldb,
			    j->b != NULL ? 1.0f : 0.0f, yg, (int)j->ohw);
	}
}

/* ---- N-D (3-D and deeper) convolution ------------------------------------- */

struct ndc_job {
	const struct lr_ndgeom *g;
	const float *x, *w, *b;
	float *y;
	int64_t m, cg, mg, kvol;  /* filters, channels per group in/out, window size */
	int act;
	float lo, hi;
};

/*
 * Output planes [begin, end) of an N-D convolution, directly: per output
 * position, the bias plus every in-bounds tap of the group's channels,
 * summed in float in channel-then-window order. No fast path: 3-D
 * convolutions are rare in the models this engine serves (the ONNX
 * backend cases), and correctness is what they need.
 */
static void ndc_planes(void *arg, int64_t begin, int64_t end)
{
	const struct ndc_job *j = arg;
	const struct lr_ndgeom *g = j->g;
	int nsp = g->nsp;

	for (int64_t p = begin; p < end; p++) {
		int64_t n = p / j->m, oc = p % j->m, grp = oc / j->mg;
		float *yp = j->y + p * g->oplane;
		const float *wk = j->w + oc * j->cg * j->kvol;

		for (int64_t q = 0; q < g->oplane; q++) {
			int64_t o[LR_ND_MAX], r = q;
			float acc = j->b != NULL ? j->b[oc] : 0.0f;

			for (int i = nsp - 1; i >= 0; i--) {
				o[i] = r % g->out[i];
				r /= g->out[i];
			}
			for (int64_t ci = 0; ci < j->cg; ci++) {
				const float *xp = j->x + (n * g->c + grp * j->cg + ci) * g->plane;

				for (int64_t t = 0; t < j->kvol; t++) {
					int64_t kr = t, off = 0;
					int inside = 1;

					for (int i = nsp - 1; i >= 0; i--) {
						int64_t ki = kr % g->k[i], pos;

						kr /= g->k[i];
						pos = o[i] * g->s[i] - g->pb[i] + ki * g->d[i];
						if (pos < 0 || pos >= g->in[i]) {
							inside = 0;
							break;
						}
						off += pos * g->istr[i];
					}
					if (inside)
						acc += xp[off] * wk[ci * j->kvol + t];
				}
			}
			yp[q] = acc;
		}
		lr__act_apply(j->act, j->lo, j->hi, yp, g->oplane);
	}
}

/* Conv over 3 or more spatial axes (X of rank >= 5). */
static int conv_nd(lr_opctx *c, const lr_tensor *x, const lr_tensor *w, const lr_tensor *b,
		   int64_t group, lr_tensor **out)
{
	struct lr_ndgeom g;
	struct ndc_job j;
	int64_t kernel[LR_ND_MAX], ks[LR_ND_MAX], dims[LR_MAX_DIMS];
	int nsp = x->ndim - 2, cnt, rc;
	lr_tensor *y = NULL;

	if (nsp > LR_ND_MAX)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input X has rank %d; at most %d is supported",
				  x->ndim, LR_MAX_DIMS);
	for (int i = 0; i < nsp; i++)
		kernel[i] = w->dims[2 + i];
	if (lr_node_attr_ints(c->node, "kernel_shape", ks, nsp, &cnt) == 0 && cnt == nsp)
		for (int i = 0; i < nsp; i++)
			if (ks[i] != kernel[i])
				return lr_op_fail(c, LR_ESHAPE,
						  "attribute kernel_shape does not match the weight's shape");
	rc = lr__nd_geom(c, x, kernel, 0, &g);
	if (rc != 0)
		return rc;
	dims[0] = g.n;
	dims[1] = w->dims[0];
	for (int i = 0; i < nsp; i++)
		dims[2 + i] = g.out[i];
	rc = lr_op_output(c, &y, LR_DT_FLOAT, x->ndim, dims);
	if (rc != 0)
		return rc;
	if (y->data != NULL && y->nelem > 0) {
		memset(&j, 0, sizeof(j));
		j.g = &g;
		j.x = x->data;
		j.w = w->data;
		j.b = b != NULL ? b->data : NULL;
		j.y = y->data;
		j.m = w->dims[0];
		j.cg = x->dims[1] / group;
		j.mg = j.m / group;
		j.kvol = 1;
		for (int i = 0; i < nsp; i++)
			j.kvol *= kernel[i];
		j.act = c->act;
		j.lo = c->act_lo;
		j.hi = c->act_hi;
		lr_pool_run(c->pool, g.n * j.m, 1, ndc_planes, &j);
	}
	out[0] = y;
	return 0;
}

/* lr__conv_direct for undilated g: 0 done, 1 not taken, or the error
 * (reported). */
static int conv_try_direct(lr_opctx *c, const lr_tensor *x, const lr_tensor *w,
			   const lr_tensor *b, lr_tensor *y, const struct lr_geom *g)
{
	int rc;

	if (g->dh != 1 || g->dw != 1)
		return 1;
	rc = lr__conv_direct(c, x, w, b, y, g);
	return rc < 0 ? lr_op_fail(c, rc, "out of memory for the direct convolution") : rc;
}

int lr_op_conv(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x, *w, *b = NULL;
	lr_tensor *xplain = NULL;
	int dwc16;
	int64_t kernel[2], group, m, cg, mg, odims[4];
	struct lr_geom g;
	int rc, nsp, cnt, fact = LR_ACT_NONE;
	lr_tensor *y = NULL;

	if ((rc = lr_op_need(c, in, nin, 0, LR_DT_FLOAT)) != 0 ||
	    (rc = lr_op_need(c, in, nin, 1, LR_DT_FLOAT)) != 0)
		return rc;
	x = in[0];
	w = in[1];
	if (nin > 2 && in[2] != NULL) {
		if ((rc = lr_op_need(c, in, nin, 2, LR_DT_FLOAT)) != 0)
			return rc;
		b = in[2];
	}
	if (x->ndim < 3)
		return lr_op_fail(c, LR_ESHAPE, "input X must have rank >= 3, got %d", x->ndim);
	nsp = x->ndim - 2;
	if (w->ndim != x->ndim)
		return lr_op_fail(c, LR_ESHAPE, "weight W has rank %d but X has rank %d",
				  w->ndim, x->ndim);
	group = lr_node_attr_int(c->node, "group", 1);
	m = w->dims[0];
	if (group < 1 || x->dims[1] % group != 0 || m % group != 0 ||
	    w->dims[1] * group != x->dims[1])
		return lr_op_fail(c, LR_ESHAPE,
				  "X has %lld channels, W has shape [%lld,%lld,...] and group is %lld: they do not fit",
				  (long long)x->dims[1], (long long)w->dims[0],
				  (long long)w->dims[1], (long long)group);
	for (int i = 0; i < nsp && i < 2; i++)
		kernel[i] = w->dims[2 + i];
	if (nsp <= 2 && lr_node_attr_ints(c->node, "kernel_shape", odims, nsp, &cnt) == 0 &&
	    cnt == nsp)
		for (int i = 0; i < nsp; i++)
			if (odims[i] != kernel[i])
				return lr_op_fail(c, LR_ESHAPE,
						  "attribute kernel_shape does not match the weight's shape");
	if (b != NULL && (b->ndim != 1 || b->dims[0] != m))
		return lr_op_fail(c, LR_ESHAPE, "bias B must have shape [%lld]", (long long)m);
	if (nsp > 2) {
		(void)nout;
		if (c->res != NULL) { /* not fused: the Add and its activation run */
			c->res = NULL;
			c->act = LR_ACT_NONE;
		}
		return conv_nd(c, x, w, b, group, out);
	}
	rc = lr__window_geom(c, x, kernel, 0, &g);
	if (rc != 0)
		return rc;
	rc = lr__window_output(c, x, &g, m, &y);
	if (rc != 0)
		return rc;
	/* A residual fused into the node (c->res): only of Y's dims, else
	 * neither it nor the activation after it (the engine then runs the
	 * Add and the activation as nodes). */
	if (c->res != NULL && (c->res->dtype != LR_DT_FLOAT || c->res->ndim != y->ndim ||
			       memcmp(c->res->dims, y->dims, (size_t)y->ndim * sizeof(int64_t)) != 0 ||
			       y->nelem == 0)) {
		c->res = NULL;
		c->act = LR_ACT_NONE;
	}
	fact = c->act;
	if (y->data == NULL || y->nelem == 0)
		goto done;
	cg = x->dims[1] / group;
	mg = m / group;

	/*
	 * Channel-blocked X, or Y wanted blocked (the engine's plan, see
	 * engine.c): the direct kernels read and write both layouts. Where
	 * they decline, X is first copied into C order and Y comes out in C
	 * order (the engine converts for readers that need it).
	 */
	dwc16 = cg == 1 && group == x->dims[1] && m == group && group % 16 == 0 && g.kh == g.kw &&
		(g.kh == 3 || g.kh == 5) && g.dh == 1 && g.dw == 1 && dw_avx512() &&
		getenv("LR_NO_DW_C16") == NULL;
	if (x->blocked || c->out_blocked) {
		if (group == 1 && (rc = conv_try_direct(c, x, w, b, y, &g)) != 1) {
			if (rc < 0)
				goto fail;
			goto done; /* the direct kernels applied c->act (and c->res if
				    * c->res_done) */
		}
		if (x->blocked && !dwc16) { /* (the 16-channel depthwise reads blocks) */
			rc = lr_tensor_unblock(&xplain, x);
			if (rc != 0) {
				rc = lr_op_fail(c, rc, "cannot copy the channel-blocked input into C order");
				goto fail;
			}
			x = xplain;
		}
	}

	/*
	 * Group 1 first: with one input channel (a grayscale stem) it is also
	 * a depthwise conv with multiplier m, but the few-channel kernel
	 * computes 8 filters per load of the input (Fashion-MNIST's 1 -> 32
	 * 3x3 stem took 20 us plane by plane, X padded once per filter).
	 */
	/* With c->res the kernels below compute the sums only, and the
	 * residual and the activation are added at done:, but for the
	 * pointwise kernel, which adds both in its stores. */
	if (c->res != NULL)
		c->act = LR_ACT_NONE;
	if (group == 1) {
		rc = conv_smallc(c, x, w, b, y, &g, m);
		if (rc < 0) {
			rc = lr_op_fail(c, rc, "out of memory for the few-channel convolution");
			goto fail;
		}
		if (rc == 1)
			goto done; /* applied c->act */
		c->act = fact; /* conv_pw1x1 adds c->res itself */
		rc = conv_pw1x1(c, x, w, b, y, &g, m);
		if (c->res != NULL)
			c->act = LR_ACT_NONE;
		if (rc < 0) {
			rc = lr_op_fail(c, rc, "out of memory for the 1x1 convolution's packed weights");
			goto fail;
		}
		if (rc == 1)
			goto done; /* applied c->act */
		rc = lr__conv_lanes(c, x, w, b, y, &g);
		if (rc < 0) {
			rc = lr_op_fail(c, rc, "out of memory for the convolution's packed weights");
			goto fail;
		}
		if (rc == 1)
			goto done; /* applied c->act */
		rc = 0;
	}
	if (cg == 1 && group == x->dims[1]) {
		struct dw_job j = { c, x->data, w->data, b ? b->data : NULL, y->data, &g,
				    m / group, c->act, c->act_lo, c->act_hi, 0, 0, 0, 0 };

		/*
		 * 16 channels at a time where they come in 16s, any map size and
		 * stride (LR_NO_DW_C16: off). With its transposes and taps
		 * unrolled in registers it beat the plane-wise kernel on every
		 * MobileNet-v2 layer: 1.3-1.7x on the 56- and 112-wide maps
		 * (which the plane-wise kernel, rows filling its lanes, used to
		 * win), about 2x on 7-28 wide maps.
		 */
		if (dwc16) {
			int64_t tasks = g.n * (group / 16), nt = lr_pool_size(c->pool);

			/* Bands of rows when blocks alone would leave a thread idle. */
			j.band = g.oh;
			while (nt > 1 && tasks * ((g.oh + j.band - 1) / j.band) < 4 * nt && j.band > 4)
				j.band = (j.band + 1) / 2;
			j.xblk = x->blocked != 0;
			j.yblk = c->out_blocked && x->ndim == 4;
			lr_pool_run_indexed(c->pool, tasks * ((g.oh + j.band - 1) / j.band), 1,
					    depthwise_c16, &j);
			if (j.failed) {
				rc = lr_op_fail(c, LR_ENOMEM, "out of memory for the depthwise rows");
				goto fail;
			}
			y->blocked = j.yblk ? 16 : 0;
			goto done;
		}
		lr_pool_run_indexed(c->pool, g.n * m, 1, depthwise_planes, &j);
		goto done;
	}
	if (group == 1 && (rc = conv_try_direct(c, x, w, b, y, &g)) != 1) {
		if (rc < 0)
			goto fail;
		goto done; /* the direct kernels applied c->act */
	}
	if (group == 1 && nsp == 2 && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 &&
	    g.dh == 1 && g.dw == 1 && getenv("LR_NO_WINOGRAD") == NULL) {
		rc = lr__conv_winograd(c, x, w, b, y, &g);
		if (rc < 0) {
			rc = lr_op_fail(c, rc, "out of memory for the Winograd buffers");
			goto fail;
		}
		if (rc == 0)
			goto post;
	}
	{
		struct conv_job j;
		int64_t per;

		memset(&j, 0, sizeof(j));
		j.c = c;
		j.x = x->data;
		j.w = w->data;
		j.b = b ? b->data : NULL;
		j.y = y->data;
		j.g = &g;
		j.group = group;
		j.cg = cg;
		j.mg = mg;
		j.m = m;
		j.ohw = g.oh * g.ow;
		j.krows = cg * g.kh * g.kw;
		j.direct = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 &&
			   g.pl == 0 && g.pb == 0 && g.pr == 0 && g.dh == 1 && g.dw == 1;
		/* Tile width: the patch tile stays near L2 size; at least 64 columns. */
		per = (int64_t)(LR_CONV_TILE_BYTES / sizeof(float)) / j.krows;
		if (j.direct)
			per = 4096;
		per = per < 64 ? 64 : per & ~(int64_t)15;
		/*
		 * Enough tiles for every thread when the batch is small; with one
		 * thread, splitting would only repack the filters more often.
		 */
		while (lr_pool_size(c->pool) > 1 && per > 64 &&
		       g.n * group * ((j.ohw + per - 1) / per) < 2 * (int64_t)lr_pool_size(c->pool))
			per /= 2;
		j.nb = per < j.ohw ? per : j.ohw;
		j.ntiles = (j.ohw + j.nb - 1) / j.nb;
		lr_pool_run_indexed(c->pool, g.n * group * j.ntiles, 1, conv_tiles, &j);
		if (j.failed) {
			rc = lr_op_fail(c, LR_ENOMEM, "out of memory for the im2col buffer");
			goto fail;
		}
	}
post:
	lr__act_apply(c->act, c->act_lo, c->act_hi, y->data, y->nelem);
done:
	if (c->res != NULL && !c->res_done) {
		rc = conv_add_res(c, y, c->res, fact, c->act_lo, c->act_hi);
		if (rc != 0) {
			rc = lr_op_fail(c, rc, "out of memory for the residual's layout copy");
			goto fail;
		}
		c->res_done = 1;
	}
	lr_tensor_free(xplain);
	out[0] = y;
	return 0;
fail:
	lr_tensor_free(xplain);
	lr_tensor_free(y);
	return rc;
}

/* ---- Gemm ---------------------------------------------------------------- */

struct gemm_job {
	const float *a, *b;      /* operands as stored */
	float *y;                /* M x N, may hold beta*C already */
	int64_t m, n, k;         /* product sizes after transposition */
	int lda, ldb;            /* leading dimensions as stored */
	int ta, tb;              /* transA, transB */
	float alpha, beta;
	int skinny;              /* skinny_tb instead of OpenBLAS */
};

/*
 * Gemm with a few rows (3..16: a batch of images through a Linear layer)
 * and transB (torchvision's export): each row of B is one output's
 * weights, contiguous in k. OpenBLAS would first copy all of B into its
 * packed layout on every call (ONNX Runtime packs constant B once, at
 * load); here B streams once from memory instead. Per 4 rows of B, 4
 * rows of A at a time give 16 accumulators (each A vector feeds 4 FMAs,
 * and 4 streams of B are in flight); A's block of rows (LR_SKINNY_KB
 * floats, 128 KiB for 4 rows) and B's 4 row pieces stay in L2 while the
 * other rows of A pass over them. B streams in pieces of LR_SKINNY_KB
 * floats per row: pieces of 2048 (8 KiB) kept the memory streams so short
 * that VGG-16's classifier at batch 8 ran at 9 GB/s; pieces of 8192 made
 * it 20-27% faster (16384 about the same, whole rows slower), and 4 rows of
 * B with 4 of A instead of 2 with 8 another 25-35% (43-57 -> 28-40 ms,
 * ONNX Runtime 30.5). AVX-512 only; elsewhere OpenBLAS.
 */
#define LR_SKINNY_KB 8192
#define LR_SKINNY_MAX_M 16

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f")))
static void skinny_tb(const float *a, int64_t lda, const float *b, int64_t ldb, float *y,
		      int64_t ldy, int64_t m, int64_t n0, int64_t n1, int64_t k, float alpha)
{
	for (int64_t kb = 0; kb < k; kb += LR_SKINNY_KB) {
		int64_t kl = k - kb < LR_SKINNY_KB ? k - kb : LR_SKINNY_KB;
		int64_t full = kl & ~(int64_t)15;
		__mmask16 tm = (__mmask16)((1u << (kl - full)) - 1u);

		for (int64_t n = n0; n < n1; n += 4) {
			int64_t nj = n1 - n < 4 ? n1 - n : 4;
			const float *w[4];

			/* rows past n1 (and below, past m) repeat the last one;
			 * their results are dropped */
			_Pragma("GCC unroll 4")
			for (int jj = 0; jj < 4; jj++)
				w[jj] = b + (n + (jj < nj ? jj : nj - 1)) * ldb + kb;
			for (int64_t i0 = 0; i0 < m; i0 += 4) {
				const float *ar[4];
				__m512 c[4][4];
				int64_t mi = m - i0 < 4 ? m - i0 : 4;

				_Pragma("GCC unroll 4")
				for (int i = 0; i < 4; i++) {
					ar[i] = a + (i0 + (i < mi ? i : mi - 1)) * lda + kb;
					_Pragma("GCC unroll 4")
					for (int jj = 0; jj < 4; jj++)
						c[jj][i] = _mm512_setzero_ps();
				}
				for (int64_t t = 0; t < full; t += 16) {
					__m512 v[4];

					_Pragma("GCC unroll 4")
					for (int jj = 0; jj < 4; jj++)
						v[jj] = _mm512_loadu_ps(w[jj] + t);
					_Pragma("GCC unroll 4")
					for (int i = 0; i < 4; i++) {
						__m512 av = _mm512_loadu_ps(ar[i] + t);

						_Pragma("GCC unroll 4")
						for (int jj = 0; jj < 4; jj++)
							c[jj][i] = _mm512_fmadd_ps(v[jj], av, c[jj][i]);
					}
				}
				if (tm != 0) {
					__m512 v[4];

					_Pragma("GCC unroll 4")
					for (int jj = 0; jj < 4; jj++)
						v[jj] = _mm512_maskz_loadu_ps(tm, w[jj] + full);
					_Pragma("GCC unroll 4")
					for (int i = 0; i < 4; i++) {
						__m512 av = _mm512_maskz_loadu_ps(tm, ar[i] + full);

						_Pragma("GCC unroll 4")
						for (int jj = 0; jj < 4; jj++)
							c[jj][i] = _mm512_fmadd_ps(v[jj], av, c[jj][i]);
					}
				}
				for (int i = 0; i < mi; i++)
					for (int jj = 0; jj < nj; jj++)
						y[(i0 + i) * ldy + n + jj] += alpha * _mm512_reduce_add_ps(c[jj][i]);
			}
		}
	}
}

static int skinny_ok(void)
{
	static int ok = -1;

	if (ok < 0) {
		__builtin_cpu_init();
		ok = __builtin_cpu_supports("avx512f") ? 1 : 0;
	}
	return ok && getenv("LR_NO_SKINNY_GEMM") == NULL;
}
#else
static void skinny_tb(const float *a, int64_t lda, const float *b, int64_t ldb, float *y,
		      int64_t ldy, int64_t m, int64_t n0, int64_t n1, int64_t k, float alpha)
{
	(void)a; (void)lda; (void)b; (void)ldb; (void)y; (void)ldy; (void)m;
	(void)n0; (void)n1; (void)k; (void)alpha;
}

static int skinny_ok(void)
{
	return 0;
}
#endif

/* Computes output columns [64*begin, 64*end) of the Gemm. */
static void gemm_cols(void *arg, int64_t begin, int64_t end)
{
	const struct gemm_job *j = arg;
	int64_t c0 = begin * 64, c1 = end * 64 < j->n ? end * 64 : j->n;
	const float *bp = j->tb ? j->b + c0 * j->ldb : j->b + c0;

	if (j->m <= 2) {
		/*
		 * A batch of one or two rows is a matrix-vector product: SGEMV
		 * streams the weights once, where SGEMM would first copy them
		 * into its packed layout (measured 3x slower on AlexNet's FC).
		 */
		for (int64_t i = 0; i < j->m; i++) {
			const float *ai = j->ta ? j->a + i : j->a + i * j->lda;
			int inca = j->ta ? j->lda : 1;

			if (j->tb)
				cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)(c1 - c0), (int)j->k,
					    j->alpha, bp, j->ldb, ai, inca, j->beta,
					    j->y + i * j->n + c0, 1);
			else
				cblas_sgemv(CblasRowMajor, CblasTrans, (int)j->k, (int)(c1 - c0),
					    j->alpha, bp, j->ldb, ai, inca, j->beta,
					    j->y + i * j->n + c0, 1);
		}
		return;
	}
	if (j->skinny) {
		/* y holds C when beta != 0, else nothing: make it beta*C */
		for (int64_t i = 0; i < j->m; i++) {
			float *yr = j->y + i * j->n;

			if (j->beta == 0.0f)
				memset(yr + c0, 0, (size_t)(c1 - c0) * sizeof(float));
			else if (j->beta != 1.0f)
				for (int64_t q = c0; q < c1; q++)
					yr[q] *= j->beta;
		}
		skinny_tb(j->a, j->lda, j->b, j->ldb, j->y, j->n, j->m, c0, c1, j->k, j->alpha);
		return;
	}
	cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans,
		    j->tb ? CblasTrans : CblasNoTrans, (int)j->m, (int)(c1 - c0), (int)j->k,
		    j->alpha, j->a, j->lda, bp, j->ldb, j->beta, j->y + c0, (int)j->n);
}

int lr_op_gemm(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *a, *b, *cc = NULL;
	int64_t ta, tb, m, k, kb, n, dims[2];
	float alpha, beta;
	lr_tensor *y = NULL;
	int rc;

	if ((rc = lr_op_need(c, in, nin, 0, LR_DT_FLOAT)) != 0 ||
	    (rc = lr_op_need(c, in, nin, 1, LR_DT_FLOAT)) != 0)
		return rc;
	a = in[0];
	b = in[1];
	if (nin > 2 && in[2] != NULL) {
		if ((rc = lr_op_need(c, in, nin, 2, LR_DT_FLOAT)) != 0)
			return rc;
		cc = in[2];
	}
	if (a->ndim != 2 || b->ndim != 2)
		return lr_op_fail(c, LR_ESHAPE, "inputs A and B must be 2-D (got ranks %d and %d)",
				  a->ndim, b->ndim);
	ta = lr_node_attr_int(c->node, "transA", 0);
	tb = lr_node_attr_int(c->node, "transB", 0);
	alpha = lr_node_attr_float(c->node, "alpha", 1.0f);
	beta = lr_node_attr_float(c->node, "beta", 1.0f);
	m = ta ? a->dims[1] : a->dims[0];
	k = ta ? a->dims[0] : a->dims[1];
	kb = tb ? b->dims[1] : b->dims[0];
	n = tb ? b->dims[0] : b->dims[1];
	if (k != kb)
		return lr_op_fail(c, LR_ESHAPE,
				  "A is %lldx%lld and B is %lldx%lld after transposition: inner sizes differ",
				  (long long)m, (long long)k, (long long)kb, (long long)n);
	if (cc != NULL) {
		int64_t cm = cc->ndim == 2 ? cc->dims[0] : 1;
		int64_t cn = cc->ndim >= 1 ? cc->dims[cc->ndim - 1] : 1;

		if (cc->ndim > 2 || (cm != 1 && cm != m) || (cn != 1 && cn != n))
			return lr_op_fail(c, LR_ESHAPE, "input C does not broadcast to [%lld,%lld]",
					  (long long)m, (long long)n);
	}
	dims[0] = m;
	dims[1] = n;
	rc = lr_op_output(c, &y, LR_DT_FLOAT, 2, dims);
	if (rc != 0)
		return rc;
	if (y->data == NULL || y->nelem == 0)
		goto done;
	{
		float *yd = y->data;
		float bet = 0.0f;

		if (cc != NULL && beta != 0.0f) {
			const float *cd = cc->data;
			int64_t cm = cc->ndim == 2 ? cc->dims[0] : 1;
			int64_t cn = cc->ndim >= 1 ? cc->dims[cc->ndim - 1] : 1;

			for (int64_t i = 0; i < m; i++)
				for (int64_t j = 0; j < n; j++)
					yd[i * n + j] = cd[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
			bet = beta;
		}
		if (k == 0) {
			if (bet == 0.0f)
				memset(yd, 0, lr_tensor_bytes(y));
			else
				for (int64_t i = 0; i < m * n; i++)
					yd[i] *= bet;
		} else {
			struct gemm_job j = { a->data, b->data, yd, m, n, k, (int)a->dims[1],
					      (int)b->dims[1], (int)ta, (int)tb, alpha, bet, 0 };

			j.skinny = m > 2 && m <= LR_SKINNY_MAX_M && !ta && tb && k >= 16 &&
				   skinny_ok();

			/* Column blocks of B per thread; OpenBLAS runs single-threaded. */
			lr_pool_run(c->pool, (n + 63) / 64, 1, gemm_cols, &j);
		}
	}
done:
	out[0] = y;
	return 0;
}

/* ---- MatMul (numpy semantics) -------------------------------------------- */

int lr_op_matmul(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *a, *b;
	int64_t ad[LR_MAX_DIMS + 1], bd[LR_MAX_DIMS + 1], od[LR_MAX_DIMS];
	int an, bn, bat_n, on = 0, rc;
	int64_t m, k, n, bat[LR_MAX_DIMS], batch = 1;
	lr_tensor *y = NULL;

	if ((rc = lr_op_need(c, in, nin, 0, LR_DT_FLOAT)) != 0 ||
	    (rc = lr_op_need(c, in, nin, 1, LR_DT_FLOAT)) != 0)
		return rc;
	a = in[0];
	b = in[1];
	if (a->ndim < 1 || b->ndim < 1)
		return lr_op_fail(c, LR_ESHAPE, "inputs must have rank >= 1");
	/* Promote 1-D operands to matrices as numpy does. */
	an = a->ndim;
	bn = b->ndim;
	memcpy(ad, a->dims, sizeof(int64_t) * (size_t)an);
	memcpy(bd, b->dims, sizeof(int64_t) * (size_t)bn);
	if (an == 1) {
		ad[1] = ad[0];
		ad[0] = 1;
		an = 2;
	}
	if (bn == 1) {
		bd[1] = 1;
		bn = 2;
	}
	m = ad[an - 2];
	k = ad[an - 1];
	n = bd[bn - 1];
	if (bd[bn - 2] != k)
		return lr_op_fail(c, LR_ESHAPE, "inner dimensions differ: %lld vs %lld",
				  (long long)k, (long long)bd[bn - 2]);
	rc = lr_broadcast_shape(an - 2, ad, bn - 2, bd, &bat_n, bat);
	if (rc != 0)
		return lr_op_fail(c, LR_ESHAPE, "batch dimensions do not broadcast");
	for (int i = 0; i < bat_n; i++) {
		od[on++] = bat[i];
		batch *= bat[i];
	}
	if (a->ndim > 1)
		od[on++] = m;
	if (b->ndim > 1)
		od[on++] = n;
	if (on > LR_MAX_DIMS)
		return lr_op_fail(c, LR_ESHAPE, "result rank is too large");
	rc = lr_op_output(c, &y, LR_DT_FLOAT, on, od);
	if (rc != 0)
		return rc;
	if (y->data == NULL || y->nelem == 0)
		goto done;
	for (int64_t bi = 0; bi < batch; bi++) {
		/* Map the flat batch index to offsets in a and b (broadcast). */
		int64_t rem = bi, aoff = 0, boff = 0, astride = 1, bstride = 1;

		for (int d = bat_n - 1; d >= 0; d--) {
			int64_t idx = rem % bat[d];
			int ai = d - (bat_n - (an - 2)), bj = d - (bat_n - (bn - 2));

			rem /= bat[d];
			if (ai >= 0) {
				if (ad[ai] != 1)
					aoff += idx * astride;
				astride *= ad[ai];
			}
			if (bj >= 0) {
				if (bd[bj] != 1)
					boff += idx * bstride;
				bstride *= bd[bj];
			}
		}
		if (k == 0) {
			memset((float *)y->data + bi * m * n, 0, (size_t)(m * n) * sizeof(float));
			continue;
		}
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k,
			    1.0f, (const float *)a->data + aoff * m * k, (int)k,
			    (const float *)b->data + boff * k * n, (int)n, 0.0f,
			    (float *)y->data + bi * m * n, (int)n);
	}
done:
	out[0] = y;
	return 0;
}
