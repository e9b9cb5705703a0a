/*
 * ops_pool.c - MaxPool, AveragePool, LpPool and their Global forms.
 *
 * DESIGN. Pooling windows share the convolution geometry code
 * (lr__window_geom: pads, auto_pad, strides, dilations, ceil_mode). Work is
 * split over (batch x channel) planes across the pool's threads. For each
 * output position the window is clipped to the input once, so the inner
 * loops carry no bounds checks. AveragePool's divisor follows ONNX:
 * count_include_pad=0 divides by the number of input elements in the
 * window; count_include_pad=1 by the window clipped to the padded input
 * (windows that ceil_mode pushes past the padding are not charged for
 * positions outside it, as in ONNX Runtime and PyTorch). Sums accumulate
 * in double.
 *
 * The 1-D and 2-D paths above are the fast ones. Everything else goes
 * through one general N-D path (nd_*): 3-D and deeper pooling, MaxPool's
 * Indices output (storage_order 0 or 1), and LpPool. It walks each output
 * position's window with an odometer over the spatial axes, skipping
 * positions in the padding; MaxPool keeps the first maximum (strict >), as
 * ONNX Runtime does, and its index is the flat offset into X: row-major
 * within the plane for storage_order=0, column-major for storage_order=1,
 * plus plane * (plane size). LpPool treats the padding as zeros. Indices
 * are int64 and so are computed in dry runs too when X has data; without
 * data they are zeros (unlike Cast to int64, which refuses: indices never
 * decide shapes in a CNN, and failing would stop `lowrank inspect` on
 * SegNet-style models). A plane's output positions times window positions
 * are bounded (2^40), so a hostile kernel_shape fails instead of hanging.
 */
#include "config.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "model/ops.h"

struct pool_job {
	const float *x;
	float *y;
	const struct lr_geom *g;
	int is_max;             /* 1 max, 0 average */
	int include_pad;        /* AveragePool count_include_pad */
	int avx512;             /* mp_avx512(), read once per node, not per row */
	int max2x2;             /* 1: MaxPool 2x2 stride 2, no pads, whole
				   windows, on AVX-512 (maxpool2x2_512) */
};

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
#define MP_X86 1

/* AVX-512 and no LR_CONV_ISA cap (the kernels' ISA switch). */
static int mp_avx512(void)
{
	static int cpu = -1;

	if (cpu < 0) {
		__builtin_cpu_init();
		cpu = __builtin_cpu_supports("avx512f") != 0;
	}
	return cpu && getenv("LR_CONV_ISA") == NULL;
}

/*
 * Stride 2, window kw (2 or 3) over column maxima col[0..w): out[ox] =
 * max of col[2 ox .. 2 ox + kw), 16 outputs per step while every load
 * stays inside col. Returns how many outputs it wrote; the caller's
 * scalar loop does the rest and the left edge.
 */
__attribute__((target("avx512f")))
static int64_t maxpool_row2_512(const float *col, int64_t w, int64_t kw, float *out, int64_t ow)
{
	const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16,
					    14, 12, 10, 8, 6, 4, 2, 0);
	const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
	int64_t ox = 0;

	/* window of ox + 15 reads up to 2 * (ox + 15) + 2 + 16 (full loads) */
	for (; ox + 16 <= ow && 2 * ox + 34 <= w; ox += 16) {
		const float *c = col + 2 * ox;
		__m512 a = _mm512_loadu_ps(c), b = _mm512_loadu_ps(c + 16);
		__m512 best = _mm512_permutex2var_ps(a, ev, b);

		best = _mm512_max_ps(_mm512_permutex2var_ps(a, od, b), best);
		if (kw == 3) {
			__m512 e = _mm512_loadu_ps(c + 2), f = _mm512_loadu_ps(c + 18);

			best = _mm512_max_ps(_mm512_permutex2var_ps(e, ev, f), best);
		}
		_mm512_storeu_ps(out + ox, best);
	}
	return ox;
}

/*
 * Stride 1, window kw: out[ox] = max of col[ox .. ox + kw), 16 outputs a
 * step, the last masked, for ow outputs whose windows lie inside col (the
 * caller's bounds): the scalar loop's steps in its order, max_ps(next,
 * best). GoogLeNet's nine 3x3 stride 1 pools ran these a float at a time:
 * 3.1 ms of its 22, where ONNX Runtime's pools took 0.43.
 */
__attribute__((target("avx512f")))
static void maxpool_row1_512(const float *col, int64_t kw, float *out, int64_t ow)
{
	for (int64_t ox = 0; ox < ow; ox += 16) {
		__mmask16 m = ow - ox >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (ow - ox)) - 1);
		__m512 best = _mm512_maskz_loadu_ps(m, col + ox);

		for (int64_t j = 1; j < kw; j++)
			best = _mm512_max_ps(_mm512_maskz_loadu_ps(m, col + ox + j), best);
		_mm512_mask_storeu_ps(out + ox, m, best);
	}
}

/*
 * MaxPool 2x2 stride 2 without pads on one plane whose windows all lie
 * inside it (VGG's pools, any width): input rows 2 oy and 2 oy + 1 give
 * output row oy, 32 inputs to 16 outputs a step, the last step of a row
 * masked, so narrow maps (28, 14, 7 wide) take it too. The operations are
 * the separable scalar path's, in its order: the column maximum
 * max_ps(r1, r0) (r1 > r0 ? r1 : r0), then max_ps(odd, even).
 */
__attribute__((target("avx512f")))
static void maxpool2x2_512(const float *x, int64_t w, float *y, int64_t oh, int64_t ow)
{
	const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16,
					    14, 12, 10, 8, 6, 4, 2, 0);
	const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));

	for (int64_t oy = 0; oy < oh; oy++) {
		const float *r0 = x + 2 * oy * w, *r1 = r0 + w;
		float *yo = y + oy * ow;

		for (int64_t ox = 0; ox < ow; ox += 16) {
			int64_t n = ow - ox < 16 ? ow - ox : 16, ni = 2 * n;
			__mmask16 mlo = ni >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << ni) - 1);
			__mmask16 mhi = ni >= 32 ? (__mmask16)0xFFFF
				      : ni > 16 ? (__mmask16)((1u << (ni - 16)) - 1) : (__mmask16)0;
			__mmask16 mo = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
			const float *p0 = r0 + 2 * ox, *p1 = r1 + 2 * ox;
			__m512 a = _mm512_max_ps(_mm512_maskz_loadu_ps(mlo, p1), _mm512_maskz_loadu_ps(mlo, p0));
			__m512 b = _mm512_max_ps(_mm512_maskz_loadu_ps(mhi, p1 + 16),
						 _mm512_maskz_loadu_ps(mhi, p0 + 16));
			__m512 best = _mm512_max_ps(_mm512_permutex2var_ps(a, od, b),
						    _mm512_permutex2var_ps(a, ev, b));

			_mm512_mask_storeu_ps(yo + ox, mo, best);
		}
	}
}
#endif

#define MAXPOOL_ROW_MAX 4096 /* widest input row of the separable path */

/*
 * MaxPool without dilation, separably: the max over the window's rows for
 * every input column (a loop the compiler vectorises), then the max over
 * each window's columns. Windows are clipped to the input; a window with
 * no input element (only possible with large pads) gives -FLT_MAX as the
 * general path does.
 */
static void maxpool_rows(const struct pool_job *j, int64_t p)
{
	const struct lr_geom *g = j->g;
	const float *xp = j->x + p * g->h * g->w;
	float *yp = j->y + p * g->oh * g->ow;
	float col[MAXPOOL_ROW_MAX];

	for (int64_t oy = 0; oy < g->oh; oy++) {
		int64_t y0 = oy * g->sh - g->pt, ya = y0 < 0 ? 0 : y0;
		int64_t yb = y0 + g->kh < g->h ? y0 + g->kh : g->h;

		if (ya >= yb) {
			for (int64_t ox = 0; ox < g->ow; ox++)
				yp[oy * g->ow + ox] = -FLT_MAX;
			continue;
		}
		memcpy(col, xp + ya * g->w, sizeof(float) * (size_t)g->w);
		for (int64_t iy = ya + 1; iy < yb; iy++) {
			const float *rp = xp + iy * g->w;

			for (int64_t ix = 0; ix < g->w; ix++)
				col[ix] = rp[ix] > col[ix] ? rp[ix] : col[ix];
		}
		/* [v0, v1): outputs of the vector kernel (none without it) */
		int64_t v0 = g->ow, v1 = g->ow;
#if defined(MP_X86)
		/* Stride 2, width 2 or 3: windows wholly inside the row, 16 at a
		 * time (even/odd permutes); max_ps(c, b) is c > b ? c : b, the
		 * scalar loop's step, in its order. */
		if (g->sw == 2 && (g->kw == 2 || g->kw == 3) && g->pl <= 2 && j->avx512) {
			v0 = (g->pl + 1) / 2;
			v1 = v0 >= g->ow ? v0 : v0 + maxpool_row2_512(col + 2 * v0 - g->pl, g->w - (2 * v0 - g->pl),
								       g->kw, yp + oy * g->ow + v0, g->ow - v0);
		}
		/* Stride 1: outputs [pl, w - kw + pl] have whole windows. */
		if (g->sw == 1 && j->avx512 && g->pl < g->ow && g->kw <= g->w) {
			v0 = g->pl;
			v1 = g->w - g->kw + g->pl + 1 < g->ow ? g->w - g->kw + g->pl + 1 : g->ow;
			if (v1 > v0)
				maxpool_row1_512(col + v0 - g->pl, g->kw, yp + oy * g->ow + v0, v1 - v0);
			else
				v1 = v0;
		}
#endif
		for (int64_t ox = 0; ox < g->ow; ox++) {
			if (ox == v0)
				ox = v1;
			if (ox >= g->ow)
				break;
			int64_t x0 = ox * g->sw - g->pl, xa = x0 < 0 ? 0 : x0;
			int64_t xb = x0 + g->kw < g->w ? x0 + g->kw : g->w;
			float best = xa < xb ? col[xa] : -FLT_MAX;

			for (int64_t ix = xa + 1; ix < xb; ix++)
				best = col[ix] > best ? col[ix] : best;
			yp[oy * g->ow + ox] = best;
		}
	}
}

static void pool_planes(void *arg, int64_t begin, int64_t end)
{
	const struct pool_job *j = arg;
	const struct lr_geom *g = j->g;

#if defined(MP_X86)
	if (j->max2x2) {
		for (int64_t p = begin; p < end; p++)
			maxpool2x2_512(j->x + p * g->h * g->w, g->w, j->y + p * g->oh * g->ow, g->oh,
				       g->ow);
		return;
	}
#endif
	if (j->is_max && g->dh == 1 && g->dw == 1 && g->w <= MAXPOOL_ROW_MAX) {
		for (int64_t p = begin; p < end; p++)
			maxpool_rows(j, p);
		return;
	}
	for (int64_t p = begin; p < end; p++) {
		const float *xp = j->x + p * g->h * g->w;
		float *yp = j->y + p * g->oh * g->ow;

		for (int64_t oy = 0; oy < g->oh; oy++) {
			int64_t y0 = oy * g->sh - g->pt;

			int64_t iy_last = y0 + (g->kh - 1) * g->dh;

			for (int64_t ox = 0; ox < g->ow; ox++) {
				int64_t x0 = ox * g->sw - g->pl;

				if (j->is_max && y0 >= 0 && x0 >= 0 && iy_last < g->h &&
				    x0 + (g->kw - 1) * g->dw < g->w) {
					/* Interior window: no bounds checks. */
					const float *wp = xp + y0 * g->w + x0;
					float best = wp[0];

					for (int64_t ki = 0; ki < g->kh; ki++) {
						const float *rp = wp + ki * g->dh * g->w;

						for (int64_t kj = 0; kj < g->kw; kj++)
							best = rp[kj * g->dw] > best ? rp[kj * g->dw] : best;
					}
					yp[oy * g->ow + ox] = best;
					continue;
				}
				double acc = j->is_max ? -INFINITY : 0.0;
				int64_t count = 0;
				float best = -FLT_MAX;
				int any = 0;

				for (int64_t ki = 0; ki < g->kh; ki++) {
					int64_t iy = y0 + ki * g->dh;

					if (iy < 0 || iy >= g->h)
						continue;
					for (int64_t kj = 0; kj < g->kw; kj++) {
						int64_t ix = x0 + kj * g->dw;
						float v;

						if (ix < 0 || ix >= g->w)
							continue;
						v = xp[iy * g->w + ix];
						if (j->is_max) {
							if (!any || v > best)
								best = v;
							any = 1;
						} else {
							acc += v;
							count++;
						}
					}
				}
				if (j->is_max) {
					yp[oy * g->ow + ox] = any ? best : -FLT_MAX;
					continue;
				}
				if (j->include_pad) {
					/* Window clipped to the padded extent. */
					int64_t hs = y0, he = y0 + (g->kh - 1) * g->dh + 1;
					int64_t ws = x0, we = x0 + (g->kw - 1) * g->dw + 1;
					int64_t hmax = g->h + g->pb, wmax = g->w + g->pr;
					int64_t nh = 0, nw = 0;

					for (int64_t t = hs; t < he; t += g->dh)
						nh += (t >= -g->pt && t < hmax);
					for (int64_t t = ws; t < we; t += g->dw)
						nw += (t >= -g->pl && t < wmax);
					count = nh * nw;
				}
				yp[oy * g->ow + ox] = count > 0 ? (float)(acc / (double)count) : 0.0f;
			}
		}
	}
}

/* ---- the general N-D path ------------------------------------------------ */

#define ND_MAX LR_ND_MAX

enum nd_kind { ND_MAX_K, ND_AVG, ND_LP };

/*
 * The window geometry of any rank, with the rules of lr__window_geom
 * (auto_pad, ceil_mode whose last window must start inside the input or
 * the left padding, extents bounded by 2^20).
 */
int lr__nd_geom(lr_opctx *c, const lr_tensor *x, const int64_t *kernel, int ceil_mode,
		struct lr_ndgeom *g)
{
	int nsp = x->ndim - 2, cnt;
	int64_t strides[ND_MAX], dil[ND_MAX], pads[2 * ND_MAX];
	char ap[32];
	const char *auto_pad;

	for (int i = 0; i < ND_MAX; i++) {
		strides[i] = dil[i] = 1;
		pads[i] = pads[ND_MAX + i] = 0;
	}
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
	g->nsp = nsp;
	g->n = x->dims[0];
	g->c = x->dims[1];
	for (int i = 0; i < nsp; i++) {
		int64_t ext, in = x->dims[2 + i], k = kernel[i], st = strides[i];
		int64_t pb = pads[i], pe = pads[nsp + i], out;

		if (k < 1 || st < 1 || dil[i] < 1 || pb < 0 || pe < 0 ||
		    k > (1 << 20) || st > (1 << 20) || dil[i] > (1 << 20) ||
		    pb > (1 << 20) || pe > (1 << 20))
			return lr_op_fail(c, LR_EMODEL,
					  "kernel %lld, stride %lld, dilation %lld, pads %lld/%lld of axis %d are invalid",
					  (long long)k, (long long)st, (long long)dil[i],
					  (long long)pb, (long long)pe, i);
		ext = dil[i] * (k - 1) + 1;
		if (strcmp(auto_pad, "SAME_UPPER") == 0 || strcmp(auto_pad, "SAME_LOWER") == 0) {
			int64_t total;

			out = (in + st - 1) / st;
			total = (out - 1) * st + ext - in;
			if (total < 0)
				total = 0;
			if (auto_pad[5] == 'U') {
				pb = total / 2;
				pe = total - pb;
			} else {
				pe = total / 2;
				pb = total - pe;
			}
		} else if (strcmp(auto_pad, "VALID") == 0) {
			pb = pe = 0;
			out = in >= ext ? (in - ext) / st + 1 : 0;
		} else if (strcmp(auto_pad, "NOTSET") == 0) {
			int64_t span = in + pb + pe - ext;

			if (span < 0) {
				out = 0;
			} else if (ceil_mode) {
				out = (span + st - 1) / st + 1;
				if ((out - 1) * st >= in + pb)
					out--;
			} else {
				out = span / st + 1;
			}
		} else {
			return lr_op_fail(c, LR_EMODEL, "unknown auto_pad '%s'", auto_pad);
		}
		if (out < 1)
			return lr_op_fail(c, LR_ESHAPE,
					  "the window (%lld with dilation %lld) does not fit the input extent %lld plus padding on axis %d",
					  (long long)k, (long long)dil[i], (long long)in, 2 + i);
		g->in[i] = in;
		g->k[i] = k;
		g->s[i] = st;
		g->d[i] = dil[i];
		g->pb[i] = pb;
		g->pe[i] = pe;
		g->out[i] = out;
	}
	g->plane = 1;
	g->oplane = 1;
	for (int i = nsp - 1; i >= 0; i--) {
		g->istr[i] = g->plane;
		g->plane *= g->in[i];     /* no overflow: X exists */
	}
	{
		/* output positions times window positions: bounded work */
		int64_t work = 1;

		for (int i = 0; i < nsp; i++)
			if (lr_mul_i64(g->oplane, g->out[i], &g->oplane) != 0 ||
			    lr_mul_i64(work, g->out[i], &work) != 0 ||
			    lr_mul_i64(work, g->k[i], &work) != 0 || work > ((int64_t)1 << 40))
				return lr_op_fail(c, LR_ELIMIT,
						  "the windows of shape %s over input %s are too much work (over 2^40 window positions per plane)",
						  lr_shape_str(nsp, g->k, (char[120]){ 0 }, 120),
						  lr_shape_str(x->ndim, x->dims, (char[160]){ 0 }, 160));
	}
	{
		int64_t cs = 1;

		for (int i = 0; i < nsp; i++) {
			g->cstr[i] = cs;
			cs *= g->in[i];
		}
	}
	return 0;
}

struct nd_job {
	const struct lr_ndgeom *g;
	const float *x;
	float *y;
	int64_t *ind;           /* MaxPool Indices, or NULL */
	enum nd_kind kind;
	int include_pad;
	int col_major;          /* storage_order=1 */
	double p;               /* LpPool */
};

static void nd_planes(void *arg, int64_t begin, int64_t end)
{
	const struct nd_job *j = arg;
	const struct lr_ndgeom *g = j->g;
	int nsp = g->nsp;

	for (int64_t pl = begin; pl < end; pl++) {
		const float *xp = j->x + pl * g->plane;
		int64_t o[ND_MAX] = { 0 };

		for (int64_t oi = 0; oi < g->oplane; oi++) {
			int64_t st[ND_MAX], w[ND_MAX] = { 0 };
			double acc = 0.0;
			int64_t count = 0, best_at = -1;
			float best = 0.f;

			for (int a = 0; a < nsp; a++)
				st[a] = o[a] * g->s[a] - g->pb[a];
			/* odometer over the window */
			for (;;) {
				int inside = 1;
				int64_t off = 0, coff = 0;

				for (int a = 0; a < nsp; a++) {
					int64_t t = st[a] + w[a] * g->d[a];

					if (t < 0 || t >= g->in[a]) {
						inside = 0;
						break;
					}
					off += t * g->istr[a];
					coff += t * g->cstr[a];
				}
				if (inside) {
					float v = xp[off];

					if (j->kind == ND_MAX_K) {
						if (best_at < 0 || v > best) {
							best = v;
							best_at = j->col_major ? coff : off;
						}
					} else if (j->kind == ND_AVG) {
						acc += v;
						count++;
					} else {
						acc += pow(fabs((double)v), j->p);
					}
				}
				{
					int a = nsp - 1;

					for (; a >= 0; a--) {
						if (++w[a] < g->k[a])
							break;
						w[a] = 0;
					}
					if (a < 0)
						break;
				}
			}
			if (j->kind == ND_MAX_K) {
				j->y[pl * g->oplane + oi] = best_at >= 0 ? best : -FLT_MAX;
				if (j->ind != NULL)
					j->ind[pl * g->oplane + oi] =
						pl * g->plane + (best_at >= 0 ? best_at : 0);
			} else if (j->kind == ND_LP) {
				j->y[pl * g->oplane + oi] = (float)pow(acc, 1.0 / j->p);
			} else {
				if (j->include_pad) {
					count = 1;
					for (int a = 0; a < nsp; a++) {
						int64_t m = 0;

						for (int64_t kk = 0; kk < g->k[a]; kk++) {
							int64_t t = st[a] + kk * g->d[a];

							m += (t >= -g->pb[a] && t < g->in[a] + g->pe[a]);
						}
						count *= m;
					}
				}
				j->y[pl * g->oplane + oi] =
					count > 0 ? (float)(acc / (double)count) : 0.0f;
			}
			for (int a = nsp - 1; a >= 0; a--) {
				if (++o[a] < g->out[a])
					break;
				o[a] = 0;
			}
		}
	}
}

/* Reads an attribute that is a float in early opsets and an int later. */
static double attr_num(const lr_node *n, const char *name, double def)
{
	const Onnx__AttributeProto *a = lr_node_attr(n, name);

	if (a == NULL)
		return def;
	if (a->has_i)
		return (double)a->i;
	if (a->has_f)
		return (double)a->f;
	return def;
}

static int nd_pool(lr_opctx *c, const lr_tensor *x, const int64_t *kernel,
		   enum nd_kind kind, lr_tensor **out, int nout)
{
	struct lr_ndgeom g;
	struct nd_job j;
	int64_t od[LR_MAX_DIMS];
	lr_tensor *y = NULL, *ind = NULL;
	int want_ind = kind == ND_MAX_K && c->node->nout > 1 && c->node->out[1] >= 0;
	int rc;

	memset(&j, 0, sizeof(j));
	rc = lr__nd_geom(c, x, kernel, (int)lr_node_attr_int(c->node, "ceil_mode", 0), &g);
	if (rc != 0)
		return rc;
	if (kind == ND_LP) {
		j.p = attr_num(c->node, "p", 2.0);
		if (!(j.p >= 1.0 && j.p <= 64.0))
			return lr_op_fail(c, LR_EUNSUPPORTED,
					  "attribute 'p' is %g; only 1 to 64 is supported", j.p);
	}
	if (kind == ND_MAX_K) {
		int64_t so = lr_node_attr_int(c->node, "storage_order", 0);

		if (so != 0 && so != 1)
			return lr_op_fail(c, LR_EMODEL, "attribute 'storage_order' must be 0 or 1, got %lld",
					  (long long)so);
		j.col_major = (int)so;
	}
	od[0] = g.n;
	od[1] = g.c;
	for (int i = 0; i < g.nsp; i++)
		od[2 + i] = g.out[i];
	rc = lr_op_output(c, &y, LR_DT_FLOAT, x->ndim, od);
	if (rc != 0)
		return rc;
	if (want_ind && nout > 1) {
		rc = lr_op_output(c, &ind, LR_DT_INT64, x->ndim, od);
		if (rc != 0)
			goto fail;
	}
	if (x->data == NULL && (y->data != NULL || ind != NULL)) {
		if (!c->dry) {
			rc = lr_op_fail(c, LR_EINVAL, "input 0 (X) has no data");
			goto fail;
		}
		if (ind != NULL)
			memset(ind->data, 0, lr_tensor_bytes(ind));
	} else if (y->data != NULL || ind != NULL) {
		if (y->data == NULL && (rc = lr_tensor_alloc_data(y)) != 0) {
			rc = lr_op_fail(c, rc, "out of memory for the output");
			goto fail;
		}
		j.g = &g;
		j.x = x->data;
		j.y = y->data;
		j.ind = ind != NULL ? ind->data : NULL;
		j.kind = kind;
		j.include_pad = (int)lr_node_attr_int(c->node, "count_include_pad", 0);
		lr_pool_run(c->pool, g.n * g.c, 1, nd_planes, &j);
	}
	out[0] = y;
	if (nout > 1)
		out[1] = ind;
	return 0;
fail:
	lr_tensor_free(y);
	lr_tensor_free(ind);
	return rc;
}

static int pool_common(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		       int nout, enum nd_kind kind)
{
	const lr_tensor *x;
	int64_t kernel[ND_MAX];
	struct lr_geom g;
	lr_tensor *y = NULL;
	int rc, cnt, nsp, is_max = kind == ND_MAX_K;

	if ((rc = lr_op_need(c, in, nin, 0, LR_DT_FLOAT)) != 0)
		return rc;
	x = in[0];
	if (x->ndim < 3)
		return lr_op_fail(c, LR_ESHAPE, "input 0 (X) must have rank >= 3, got %d", x->ndim);
	nsp = x->ndim - 2;
	if (lr_node_attr_ints(c->node, "kernel_shape", kernel, nsp, &cnt) != 0 || cnt != nsp)
		return lr_op_fail(c, LR_EMODEL, "attribute 'kernel_shape' must have %d entries", nsp);
	if (nsp > 2 || kind == ND_LP ||
	    (is_max && c->node->nout > 1 && c->node->out[1] >= 0))
		return nd_pool(c, x, kernel, kind, out, nout);
	rc = lr__window_geom(c, x, kernel, (int)lr_node_attr_int(c->node, "ceil_mode", 0), &g);
	if (rc != 0)
		return rc;
	rc = lr__window_output(c, x, &g, g.c, &y);
	if (rc != 0)
		return rc;
	if (y->data != NULL) {
		struct pool_job j = { x->data, y->data, &g, is_max,
				      (int)lr_node_attr_int(c->node, "count_include_pad", 0), 0, 0 };

#if defined(MP_X86)
		j.avx512 = mp_avx512();
		j.max2x2 = is_max && g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 &&
			   g.dh == 1 && g.dw == 1 && g.pt == 0 && g.pl == 0 &&
			   2 * g.oh <= g.h && 2 * g.ow <= g.w && j.avx512;
#endif

		lr_pool_run(c->pool, g.n * g.c, 1, pool_planes, &j);
	}
	out[0] = y;
	return 0;
}

/*
 * MaxPool: any number of spatial axes; output 1 (Indices, int64) when the
 * graph uses it, flattened as storage_order says. Float only.
 */
int lr_op_maxpool(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	return pool_common(c, in, nin, out, nout, ND_MAX_K);
}

/* AveragePool: any number of spatial axes, count_include_pad, ceil_mode. */
int lr_op_averagepool(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	return pool_common(c, in, nin, out, nout, ND_AVG);
}

/*
 * LpPool: y = (sum over the window of |x|^p)^(1/p), padding counting as
 * zero; p is a float attribute in LpPool-1 and an int from 2 on (1..64).
 */
int lr_op_lppool(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	return pool_common(c, in, nin, out, nout, ND_LP);
}

struct global_job {
	const float *x;
	float *y;
	int64_t plane;
	int is_max;
	double p;               /* GlobalLpPool when > 0 */
};

#define GP_SUMS 32 /* running sums per plane of GlobalAveragePool */

LR_CLONES512
static void global_planes(void *arg, int64_t begin, int64_t end)
{
	const struct global_job *j = arg;

	for (int64_t p = begin; p < end; p++) {
		const float *xp = j->x + p * j->plane;

		if (j->p > 0) {
			double acc = 0.0;

			for (int64_t i = 0; i < j->plane; i++)
				acc += pow(fabs((double)xp[i]), j->p);
			j->y[p] = (float)pow(acc, 1.0 / j->p);
		} else if (j->is_max) {
			float best = j->plane > 0 ? xp[0] : -FLT_MAX;

			for (int64_t i = 1; i < j->plane; i++)
				if (xp[i] > best)
					best = xp[i];
			j->y[p] = best;
		} else {
			/* Running sums in double, GP_SUMS of them: one chain of
			 * dependent adds ran 4 cycles per value (2.8 us for a
			 * 128 x 7 x 7 ResNet head, 2% of a compressed
			 * Fashion-MNIST ResNet); 32, four AVX-512 vectors of
			 * doubles, keep the adds' latency covered
			 * (EfficientNet-b0's 16 squeeze-and-excitation pools on
			 * up to 96 x 112 x 112: 0.81 -> 0.35 ms). */
			double acc[GP_SUMS] = { 0 }, sum = 0.0;
			int64_t i = 0;

			for (; i + GP_SUMS <= j->plane; i += GP_SUMS)
				for (int k = 0; k < GP_SUMS; k++)
					acc[k] += xp[i + k];
			for (; i < j->plane; i++)
				acc[0] += xp[i];
			for (int k = 0; k < GP_SUMS; k++)
				sum += acc[k];
			j->y[p] = j->plane > 0 ? (float)(sum / (double)j->plane) : 0.0f;
		}
	}
}

#if defined(MP_X86)
/*
 * GlobalAveragePool and GlobalMaxPool of a channel-blocked X (NCHW16c,
 * engine.c plan_blocked): task t is image t / nb's channel block t % nb,
 * 16 channels a vector at a time. Y is [N][C] in C order. The Conv before
 * it then writes blocks rather than transposing its output into planes;
 * ONNX Runtime pools its NCHWc blocks the same way. Each lane sums and
 * divides exactly as global_planes does (GP_SUMS running sums in double,
 * the tail into the first, then added in order; max as `>`), so blocked
 * and C-order runs stay bit-identical.
 */
struct global_blk_job {
	const float *x;
	float *y;
	int64_t plane, nb;
	int is_max;
};

__attribute__((target("avx512f")))
static void global_blocks(void *arg, int64_t begin, int64_t end)
{
	const struct global_blk_job *j = arg;

	for (int64_t t = begin; t < end; t++) {
		const float *xp = j->x + t * j->plane * 16;
		float *yp = j->y + t * 16;

		if (j->is_max) {
			__m512 best = j->plane > 0 ? _mm512_loadu_ps(xp) : _mm512_set1_ps(-FLT_MAX);

			for (int64_t i = 1; i < j->plane; i++) /* x > best ? x : best */
				best = _mm512_max_ps(_mm512_loadu_ps(xp + i * 16), best);
			_mm512_storeu_ps(yp, best);
		} else {
			__m512d acc[GP_SUMS][2], lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();

			for (int k = 0; k < GP_SUMS; k++)
				acc[k][0] = acc[k][1] = _mm512_setzero_pd();
			for (int64_t i = 0; i < j->plane; i++) {
				int k = i - i % GP_SUMS + GP_SUMS <= j->plane ? (int)(i % GP_SUMS) : 0;
				__m512 v = _mm512_loadu_ps(xp + i * 16);

				acc[k][0] = _mm512_add_pd(acc[k][0], _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
				acc[k][1] = _mm512_add_pd(acc[k][1], _mm512_cvtps_pd(_mm256_castpd_ps(
					_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
			}
			for (int k = 0; k < GP_SUMS; k++) {
				lo = _mm512_add_pd(lo, acc[k][0]);
				hi = _mm512_add_pd(hi, acc[k][1]);
			}
			if (j->plane > 0) {
				const __m512d n = _mm512_set1_pd((double)j->plane);

				lo = _mm512_div_pd(lo, n);
				hi = _mm512_div_pd(hi, n);
			}
			_mm256_storeu_ps(yp, _mm512_cvtpd_ps(lo));
			_mm256_storeu_ps(yp + 8, _mm512_cvtpd_ps(hi));
		}
	}
}
#endif

static int global_common(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
			 int is_max, double lp)
{
	const lr_tensor *x;
	int64_t odims[LR_MAX_DIMS], plane = 1;
	lr_tensor *y = NULL;
	int rc;

	if ((rc = lr_op_need(c, in, nin, 0, LR_DT_FLOAT)) != 0)
		return rc;
	x = in[0];
	if (x->ndim < 2)
		return lr_op_fail(c, LR_ESHAPE, "input 0 (X) must have rank >= 2, got %d", x->ndim);
	odims[0] = x->dims[0];
	odims[1] = x->dims[1];
	for (int i = 2; i < x->ndim; i++) {
		odims[i] = 1;
		plane *= x->dims[i];
	}
	rc = lr_op_output(c, &y, LR_DT_FLOAT, x->ndim, odims);
	if (rc != 0)
		return rc;
	if (y->data != NULL && x->blocked) { /* only where plan_blocked gives it */
#if defined(MP_X86)
		struct global_blk_job j = { x->data, y->data, plane, x->dims[1] / 16, is_max };

		if (x->blocked == 16 && x->ndim == 4 && x->dims[1] % 16 == 0 && lp == 0) {
			lr_pool_run(c->pool, x->dims[0] * j.nb, 4, global_blocks, &j);
			out[0] = y;
			return 0;
		}
#endif
		lr_tensor_free(y);
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 (X) is channel-blocked");
	}
	if (y->data != NULL) {
		struct global_job j = { x->data, y->data, plane, is_max, lp };

		lr_pool_run(c->pool, x->dims[0] * x->dims[1], 16, global_planes, &j);
	}
	out[0] = y;
	return 0;
}

int lr_op_globalaveragepool(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
			    int nout)
{
	return global_common(c, in, nin, out, 0, 0);
}

int lr_op_globalmaxpool(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
			int nout)
{
	return global_common(c, in, nin, out, 1, 0);
}

/* GlobalLpPool: (sum of |x|^p over each plane)^(1/p); p float in opset 1. */
int lr_op_globallppool(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		       int nout)
{
	double p = attr_num(c->node, "p", 2.0);

	if (!(p >= 1.0 && p <= 64.0))
		return lr_op_fail(c, LR_EUNSUPPORTED,
				  "attribute 'p' is %g; only 1 to 64 is supported", p);
	return global_common(c, in, nin, out, 0, p);
}
