/*
 * conv_lanes.c - stride-1 convolutions with few filters, output positions
 * in the vector lanes: no padded copy, no transposes (AVX-512).
 *
 * DESIGN. The direct kernels (conv_direct.c) hold 16 filters of one
 * position per register, as ONNX Runtime's NCHWc kernels do, and pay for
 * it around every layer: a zero-padded copy of the input before, a 16 x 16
 * transpose into NCHW after, and a thin layer (one block of 16 filters)
 * runs one FMA per broadcast input. Here a register holds 16 output
 * positions of one filter instead, which is what NCHW stores, and a tile
 * is 8 filters x CL_NV vectors (24 accumulators): per tap and input
 * channel, CL_NV vector loads of X and 8 broadcast weights feed 24 FMAs.
 *
 * The lanes of a vector are consecutive outputs. When the output is as
 * wide as the input (horizontal padding kw - 1, "same" convolutions and
 * every kx1 layer) they are 16 consecutive outputs of the plane, rows
 * included, so a 7x7 map is 4 vectors, not 7 half-empty ones; otherwise a
 * vector is a piece of one output row. Either way, lane l of vector v
 * reads X at base[v] + l + ki * w + kj for tap (ki, kj), one contiguous
 * (unaligned) load of the unpadded plane; the lanes whose read falls in
 * the padding, in the row above or below or past the plane, are masked
 * off (AVX-512 masked loads read zeros there and fault on nothing). The
 * masks depend only on the geometry: one 16-bit mask per (vector, tap),
 * computed once per engine and kept with the packed weights in the node's
 * cache (revalidated against the geometry on every call).
 *
 * Each output adds the bias, then the products in the order tap, input
 * channel, one FMA each: a running sum, which is why only reductions of
 * up to CL_KMAX products take this path (conv_direct.c sums in blocks).
 * The fused activation is applied as cd_store512 does (Relu max(v, 0):
 * NaN -> 0; Clip min(hi, max(lo, v))).
 *
 * Which layers: see lr__conv_lanes_worth.
 * LR_NO_CONV_LANES (set) disables it, as does LR_NO_CONV_DIRECT (set:
 * every Conv by im2col or Winograd) and an engine that prices layers
 * (lr_engine_set_pricing).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/ops.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#define CL_X86 1
#endif

#define CL_NV 3                 /* vectors of 16 outputs per tile */
#define CL_MR 8                 /* filters per tile */
#define CL_KMAX 1152            /* most products per output (running sum) */
#define CL_TAG 5                /* cache size tag (conv_direct 1, 2; pw 3) */

/*
 * The node cache's layout: the geometry the tables were built for, then
 * packed weights [mt][taps][c][CL_MR], bias [mt * CL_MR], per vector
 * base[] and out[] (int32) and lanes[] (uint16), then masks [nv][taps].
 */
struct cl_head {
	int64_t c, h, w, oh, ow, m, kh, kw, pt, pl; /* what the tables are for */
	int64_t nv;                                 /* vectors */
	int64_t pad[5];                             /* to 128 bytes */
};

struct cl_tabs {
	const float *w, *bias;
	const int32_t *base, *out;
	const uint16_t *lanes, *mask;
};

static size_t cl_bytes(int64_t c, int64_t m, int64_t taps, int64_t nv)
{
	int64_t mt = (m + CL_MR - 1) / CL_MR;
	size_t b = sizeof(struct cl_head);

	b += (size_t)(mt * taps * c * CL_MR + mt * CL_MR) * sizeof(float);
	b += (size_t)nv * (2 * sizeof(int32_t) + sizeof(uint16_t) * (size_t)(1 + taps));
	return (b + 63) & ~(size_t)63;
}

static void cl_map(void *data, int64_t c, int64_t m, int64_t taps, int64_t nv, struct cl_tabs *t)
{
	int64_t mt = (m + CL_MR - 1) / CL_MR;
	char *p = (char *)data + sizeof(struct cl_head);

	t->w = (const float *)(void *)p;
	p += (size_t)(mt * taps * c * CL_MR) * sizeof(float);
	t->bias = (const float *)(void *)p;
	p += (size_t)(mt * CL_MR) * sizeof(float);
	t->base = (const int32_t *)(void *)p;
	p += (size_t)nv * sizeof(int32_t);
	t->out = (const int32_t *)(void *)p;
	p += (size_t)nv * sizeof(int32_t);
	t->lanes = (const uint16_t *)(void *)p;
	p += (size_t)nv * sizeof(uint16_t);
	t->mask = (const uint16_t *)(void *)p;
}

/* Vectors of outputs: 16 consecutive outputs of the plane when ow == w,
 * else pieces of rows. */
static int64_t cl_nvec(const struct lr_geom *g)
{
	return g->ow == g->w ? (g->oh * g->ow + 15) / 16 : g->oh * ((g->ow + 15) / 16);
}

/* Builds the tables of a cache block of cl_bytes() bytes. */
static void cl_build(void *data, const struct lr_geom *g, const float *w, const float *b,
		     int64_t m, int64_t nv)
{
	struct cl_head *h = data;
	struct cl_tabs t;
	int64_t taps = g->kh * g->kw, mt = (m + CL_MR - 1) / CL_MR, ohw = g->oh * g->ow;
	int64_t per_row = (g->ow + 15) / 16;
	float *wp, *bp;
	int32_t *base, *out;
	uint16_t *lanes, *mask;

	memset(h, 0, sizeof(*h));
	h->c = g->c;
	h->h = g->h;
	h->w = g->w;
	h->oh = g->oh;
	h->ow = g->ow;
	h->m = m;
	h->kh = g->kh;
	h->kw = g->kw;
	h->pt = g->pt;
	h->pl = g->pl;
	h->nv = nv;
	cl_map(data, g->c, m, taps, nv, &t);
	wp = (float *)(uintptr_t)t.w;
	bp = (float *)(uintptr_t)t.bias;
	base = (int32_t *)(uintptr_t)t.base;
	out = (int32_t *)(uintptr_t)t.out;
	lanes = (uint16_t *)(uintptr_t)t.lanes;
	mask = (uint16_t *)(uintptr_t)t.mask;

	/* W [m][c][kh][kw] -> [tile][tap][c][CL_MR], zeros past m */
	for (int64_t ti = 0; ti < mt; ti++)
		for (int64_t tp = 0; tp < taps; tp++)
			for (int64_t ch = 0; ch < g->c; ch++)
				for (int64_t r = 0; r < CL_MR; r++) {
					int64_t f = ti * CL_MR + r;

					wp[((ti * taps + tp) * g->c + ch) * CL_MR + r] =
						f < m ? w[(f * g->c + ch) * taps + tp] : 0.f;
				}
	for (int64_t f = 0; f < mt * CL_MR; f++)
		bp[f] = f < m && b != NULL ? b[f] : 0.f;

	for (int64_t v = 0; v < nv; v++) {
		int64_t oy, ox, nl;

		if (g->ow == g->w) {
			int64_t q0 = v * 16;

			oy = q0 / g->ow;
			ox = q0 % g->ow;
			nl = ohw - q0 < 16 ? ohw - q0 : 16;
			out[v] = (int32_t)q0;
		} else {
			oy = v / per_row;
			ox = v % per_row * 16;
			nl = g->ow - ox < 16 ? g->ow - ox : 16;
			out[v] = (int32_t)(oy * g->ow + ox);
		}
		/* lane l reads (oy_l + ki - pt) * w + ox_l + kj - pl = base + l + ki * w + kj */
		base[v] = (int32_t)((oy - g->pt) * g->w + ox - g->pl);
		lanes[v] = (uint16_t)(nl == 16 ? 0xffffu : (1u << nl) - 1u);
		for (int64_t ki = 0; ki < g->kh; ki++)
			for (int64_t kj = 0; kj < g->kw; kj++) {
				unsigned mk = 0;
				int64_t ly = oy, lx = ox;

				for (int64_t l = 0; l < nl; l++) {
					int64_t iy = ly + ki - g->pt, ix = lx + kj - g->pl;

					if (iy >= 0 && iy < g->h && ix >= 0 && ix < g->w)
						mk |= 1u << l;
					if (++lx == g->ow) {
						lx = 0;
						ly++;
					}
				}
				mask[v * taps + ki * g->kw + kj] = (uint16_t)mk;
			}
	}
}

#if defined(CL_X86)
struct cl_job {
	const float *x;
	float *y;
	struct cl_tabs t;
	int64_t c, hw, ohw, m, taps, kw, w;
	int64_t nv, nstrip, mchunk, nmc;
	int act;
	float lo, hi;
};

__attribute__((target("avx512f"), always_inline))
static inline void cl_tile(const struct cl_job *j, const float *x, float *y, int64_t v0,
			   const float *w, const float *bias, const int MR, const int NV)
{
	__m512 acc[CL_MR][CL_NV];
	const float *xb[CL_NV];
	const uint16_t *mrow[CL_NV];

	_Pragma("GCC unroll 8")
	for (int r = 0; r < MR; r++) {
		_Pragma("GCC unroll 3")
		for (int v = 0; v < NV; v++)
			acc[r][v] = _mm512_set1_ps(bias[r]);
	}
	_Pragma("GCC unroll 3")
	for (int v = 0; v < NV; v++) {
		xb[v] = lr__masked_at(x, j->t.base[v0 + v]);
		mrow[v] = j->t.mask + (v0 + v) * j->taps;
	}
	for (int64_t tp = 0; tp < j->taps; tp++) {
		int64_t d = tp / j->kw * j->w + tp % j->kw;
		__mmask16 mk[CL_NV];
		const float *xp[CL_NV];
		const float *wt = w + tp * j->c * CL_MR;

		_Pragma("GCC unroll 3")
		for (int v = 0; v < NV; v++) {
			mk[v] = (__mmask16)mrow[v][tp];
			xp[v] = lr__masked_at(xb[v], d);
		}
		for (int64_t ch = 0; ch < j->c; ch++) {
			__m512 xv[CL_NV];

			_Pragma("GCC unroll 3")
			for (int v = 0; v < NV; v++)
				xv[v] = _mm512_maskz_loadu_ps(mk[v], lr__masked_at(xp[v], ch * j->hw));
			_Pragma("GCC unroll 8")
			for (int r = 0; r < MR; r++) {
				__m512 wv = _mm512_set1_ps(wt[ch * CL_MR + r]);

				_Pragma("GCC unroll 3")
				for (int v = 0; v < NV; v++)
					acc[r][v] = _mm512_fmadd_ps(wv, xv[v], acc[r][v]);
			}
		}
	}
	{
		const __m512 vlo = _mm512_set1_ps(j->act == LR_ACT_CLIP ? j->lo : 0.f);
		const __m512 vhi = _mm512_set1_ps(j->hi);

		_Pragma("GCC unroll 8")
		for (int r = 0; r < MR; r++) {
			_Pragma("GCC unroll 3")
			for (int v = 0; v < NV; v++) {
				__m512 t = acc[r][v];

				if (j->act == LR_ACT_RELU)
					t = _mm512_max_ps(t, vlo);
				else if (j->act == LR_ACT_CLIP)
					t = _mm512_min_ps(vhi, _mm512_max_ps(vlo, t));
				_mm512_mask_storeu_ps(y + r * j->ohw + j->t.out[v0 + v],
						      (__mmask16)j->t.lanes[v0 + v], t);
			}
		}
	}
}

#define CL_TILE_FN(MR, NV)                                                          \
__attribute__((target("avx512f")))                                                  \
static void cl_tile_##MR##_##NV(const struct cl_job *j, const float *x, float *y,    \
				int64_t v0, const float *w, const float *bias)        \
{                                                                                   \
	cl_tile(j, x, y, v0, w, bias, MR, NV);                                       \
}
#define CL_TILE_ROW(MR) CL_TILE_FN(MR, 1) CL_TILE_FN(MR, 2) CL_TILE_FN(MR, 3)
CL_TILE_ROW(1) CL_TILE_ROW(2) CL_TILE_ROW(3) CL_TILE_ROW(4)
CL_TILE_ROW(5) CL_TILE_ROW(6) CL_TILE_ROW(7) CL_TILE_ROW(8)

typedef void (*cl_tile_fn)(const struct cl_job *, const float *, float *, int64_t,
			   const float *, const float *);
#define CL_PTRS(MR) { cl_tile_##MR##_1, cl_tile_##MR##_2, cl_tile_##MR##_3 }
/* [filters - 1][vectors - 1] */
static const cl_tile_fn cl_tiles[CL_MR][CL_NV] = {
	CL_PTRS(1), CL_PTRS(2), CL_PTRS(3), CL_PTRS(4),
	CL_PTRS(5), CL_PTRS(6), CL_PTRS(7), CL_PTRS(8)
};

/* Tasks: (image, strip of CL_NV vectors, chunk of filters). */
static void cl_tasks(void *arg, int64_t begin, int64_t end)
{
	const struct cl_job *j = arg;

	for (int64_t t = begin; t < end; t++) {
		int64_t n = t / (j->nstrip * j->nmc), s = t / j->nmc % j->nstrip, mc = t % j->nmc;
		int64_t m0 = mc * j->mchunk, m1 = m0 + j->mchunk < j->m ? m0 + j->mchunk : j->m;
		const float *x = j->x + n * j->c * j->hw;
		float *y = j->y + n * j->m * j->ohw;

		/* strips of nv / nstrip vectors, the first nv % nstrip one more
		 * (4 vectors are 2 + 2, not 3 + 1: a 1-vector tile is
		 * load-bound) */
		int64_t per = j->nv / j->nstrip, extra = j->nv % j->nstrip;
		int64_t v0 = s * per + (s < extra ? s : extra);
		int nv = (int)(per + (s < extra));

		for (int64_t r = m0; r < m1; r += CL_MR) {
			int mr = m1 - r < CL_MR ? (int)(m1 - r) : CL_MR;

			cl_tiles[mr - 1][nv - 1](j, x, y + r * j->ohw, v0,
						 j->t.w + r * j->taps * j->c, j->t.bias + r);
		}
	}
}
#endif

int lr__conv_lanes_worth(const struct lr_geom *g, int64_t m)
{
	/*
	 * Stride 1 and dilation 1 (one contiguous load per tap), reductions
	 * short enough for a running sum, and at most 32 filters: up to 64
	 * the original Fashion-MNIST ResNet did not change, up to 128 (its
	 * 128-filter 7x7 layers) it ran 17% slower.
	 *
	 * Rank selection does not time layers on this kernel: ONNX
	 * Runtime's one-block (16-filter) NCHWc layers run as the direct
	 * kernels here do, 1.3-1.6x slower than these, and timed here the
	 * rank-16 pairs of a compressed ResNet-50 and the Fashion-MNIST
	 * models came out 20-40% cheaper, relative to their original
	 * layer, than in ONNX Runtime (in-network, bench/pairs.sh); on the
	 * direct kernels all but a few within 20%. So engines that price
	 * (lr_engine_set_pricing) skip it on maps below LR_PRICE_MAP
	 * outputs, and the others, which run the solver's passes and
	 * `lowrank run`, take it for speed. On large maps ONNX Runtime's
	 * one-block kernels run at their full rate and the direct kernels,
	 * with a padded copy of a large input, do not: VGG-16's 16-filter
	 * 3x3 at 224x224 (64 channels) took 5.7 ms in ONNX Runtime, 5.9 here
	 * and 8.8 on the direct kernels, where at 28x28 (128 channels) the
	 * three took 0.203, 0.134-0.144 and 0.203-0.205 ms, and at 56x56
	 * (64 channels) about 0.36, 0.285 and 0.45.
	 */
	if (g->sh != 1 || g->sw != 1 || g->dh != 1 || g->dw != 1 ||
	    g->c * g->kh * g->kw > CL_KMAX || g->kh * g->kw > 64)
		return 0;
	return m <= 32;
}

int lr__conv_lanes(lr_opctx *c, const lr_tensor *x, const lr_tensor *w, const lr_tensor *b,
		   lr_tensor *y, const struct lr_geom *g)
{
#if defined(CL_X86)
	struct cl_job j;
	int64_t m = w->dims[0], taps = g->kh * g->kw, nv, tasks, nt;
	size_t bytes;
	void *data, *own = NULL;
	const struct cl_head *h;

	if ((c->pricing && g->oh * g->ow < LR_PRICE_MAP) || lr__conv_direct_isa() != 2 ||
	    getenv("LR_NO_CONV_LANES") != NULL ||
	    getenv("LR_NO_CONV_DIRECT") != NULL ||
	    !lr__conv_lanes_worth(g, m) ||
	    g->h * g->w + 2 * (g->kh * g->w + g->kw) > INT32_MAX / 2)
		return 0;
	nv = cl_nvec(g);
	bytes = cl_bytes(g->c, m, taps, nv);
	h = c->cache != NULL && c->cache->key == w->data && c->cache->bytes == bytes + CL_TAG ?
	    c->cache->data : NULL;
	if (h == NULL || h->c != g->c || h->h != g->h || h->w != g->w || h->oh != g->oh ||
	    h->ow != g->ow || h->m != m || h->kh != g->kh || h->kw != g->kw ||
	    h->pt != g->pt || h->pl != g->pl || h->nv != nv) {
		data = lr_alloc_aligned(bytes);
		if (data == NULL)
			return LR_ENOMEM;
		cl_build(data, g, w->data, b != NULL ? b->data : NULL, m, nv);
		if (c->cache != NULL && !c->cache_ro) {
			lr_free_aligned(c->cache->data);
			c->cache->data = data;
			c->cache->key = w->data;
			c->cache->bytes = bytes + CL_TAG;
		} else {
			own = data;
		}
	} else {
		data = c->cache->data;
	}
	memset(&j, 0, sizeof(j));
	cl_map(data, g->c, m, taps, nv, &j.t);
	j.x = x->data;
	j.y = y->data;
	j.c = g->c;
	j.hw = g->h * g->w;
	j.ohw = g->oh * g->ow;
	j.m = m;
	j.taps = taps;
	j.kw = g->kw;
	j.w = g->w;
	j.nv = nv;
	j.nstrip = (nv + CL_NV - 1) / CL_NV;
	j.act = c->act;
	j.lo = c->act_lo;
	j.hi = c->act_hi;
	nt = lr_pool_size(c->pool);
	/* Filters split in chunks of CL_MR when strips alone leave threads idle. */
	j.mchunk = (m + CL_MR - 1) / CL_MR * CL_MR;
	tasks = g->n * j.nstrip;
	while (tasks * ((m + j.mchunk - 1) / j.mchunk) < 4 * nt && j.mchunk > CL_MR)
		j.mchunk = (j.mchunk / 2 + CL_MR - 1) / CL_MR * CL_MR;
	j.nmc = (m + j.mchunk - 1) / j.mchunk;
	lr_pool_run(c->pool, tasks * j.nmc, 1, cl_tasks, &j);
	lr_free_aligned(own);
	return 1;
#else
	(void)c; (void)x; (void)w; (void)b; (void)y; (void)g;
	return 0;
#endif
}
