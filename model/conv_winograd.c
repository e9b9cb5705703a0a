/*
 * conv_winograd.c - 3x3 stride-1 convolution by Winograd's minimal
 * filtering, with the element-wise products done as OpenBLAS SGEMMs.
 *
 * DESIGN. Winograd's F(m x m, 3x3) turns each (m+2)x(m+2) input tile d
 * and 3x3 filter g into an m x m output tile
 *     Y = A^T [ (G g G^T) .* (B^T d B) ] A.
 * Summed over input channels, the element-wise product for each of the
 * E = (m+2)^2 tile elements e becomes one matrix product
 *     Mo[e] (M x T) = U[e] (M x C) * V[e] (C x T)
 * over T tiles, which is what OpenBLAS does well. F(2x2,3x3) is used
 * (E = 16, 2.25x fewer multiplications than direct convolution): its
 * transforms need only additions and halvings, so its float32 error stays
 * within 1.5x of im2col's. F(4x4,3x3) (E = 36, 4x fewer) was tried and
 * measured 1e-4 .. 3e-4 relative error for C = 64 .. 256, 10x im2col's,
 * too much for deep networks checked against ONNX Runtime at 1e-4.
 *
 * Steps of one call:
 *  1. U = G g G^T for all M x C filters, into thread 0's scratch as
 *     [E][M][C] (row-major A operands), in parallel over output channels,
 *     8 input channels at a time in vector lanes. The weights are
 *     transformed on every call; it costs about as much as OpenBLAS's
 *     own packing of U and is why tiny spatial sizes are declined.
 *  2. Tiles (all images, row-major tile order) are cut into blocks of T
 *     (a multiple of 8) tiles, shared over the pool's threads. For a
 *     block, each thread (a) gathers 8 tiles at a time into lanes and
 *     transforms them with 8-wide vector arithmetic (GCC vector
 *     extensions, lowered to whatever SIMD the target has), writing
 *     V[e][c][8 tiles] contiguously ([E][C][ldt], row-major B operands).
 *     Eight tiles of one tile row inside the input load as 4 rows of 18
 *     floats split into even/odd lanes; edge groups go through a zero-
 *     padded copy, groups spanning two tile rows gather lane by lane.
 *     The channel loop is outermost so each V[e][c] row is written in
 *     order (writing all channels of one group first missed the caches
 *     on every store and cost a third of the time);
 *     (b) runs the E SGEMMs into Mo ([E][M][ldt]); (c) reads 8 tiles of
 *     Mo[e][m] as one vector per e, applies A^T . A and the bias, and
 *     scatters the m x m outputs (clipped at the bottom/right edges).
 *  T is chosen so that V and Mo of one block fill about
 *  LR_WINO_BLOCK_BYTES (they are reused per thread across blocks) but
 *  no fewer than LR_WINO_MIN_T tiles, because OpenBLAS repacks U[e]
 *  (M x C) on every call and needs a few hundred columns to amortise it.
 *  The leading dimension ldt of V and Mo is T padded off multiples of
 *  256 floats so the rows of one operand do not alias in the caches.
 *
 * Shapes with too few tiles per thread or too few channels go to im2col
 * (return 1): there the per-call filter transform and packing dominate.
 * LR_WINOGRAD_FORCE (set to anything) skips that check; tests use it to
 * cover small shapes.
 */
#include "config.h"

#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/ops.h"

/*
 * 8 floats in vector lanes; GCC and clang lower it to the target's SIMD.
 * Only static functions pass it by value, so the ABI note GCC gives for
 * 32-byte vectors without AVX does not matter here.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float wv8 __attribute__((vector_size(32), aligned(32)));

#define WG_M 2                  /* output tile side */
#define WG_A 4                  /* input tile side */
#define WG_E 16                 /* tile elements = GEMMs per block */
#define WG_L 8                  /* tiles per vector */

/* Target bytes of one block's transformed input plus products. */
#define LR_WINO_BLOCK_BYTES (6u * 1024u * 1024u)
/* Fewest tiles per block (GEMM columns) worth OpenBLAS's packing. */
#define LR_WINO_MIN_T 128

/* The transforms get an AVX2 clone (LR_CLONES, ops.h). */
#define WG_CLONES LR_CLONES

static inline wv8 wv_load(const float *p)
{
	wv8 v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void wv_store(float *p, wv8 v)
{
	memcpy(p, &v, sizeof(v));
}

/* Lane shuffles: even/odd lanes of (lo, hi), and interleaving of (a, b). */
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define WG_SHUFFLEVECTOR 1
#endif
#endif
#if defined(WG_SHUFFLEVECTOR)
#define WV_EVEN(lo, hi) __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14)
#define WV_ODD(lo, hi) __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15)
#define WV_ZIPLO(a, b) __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11)
#define WV_ZIPHI(a, b) __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15)
#else
typedef int32_t wi8 __attribute__((vector_size(32)));
#define WV_EVEN(lo, hi) __builtin_shuffle(lo, hi, (wi8){ 0, 2, 4, 6, 8, 10, 12, 14 })
#define WV_ODD(lo, hi) __builtin_shuffle(lo, hi, (wi8){ 1, 3, 5, 7, 9, 11, 13, 15 })
#define WV_ZIPLO(a, b) __builtin_shuffle(a, b, (wi8){ 0, 8, 1, 9, 2, 10, 3, 11 })
#define WV_ZIPHI(a, b) __builtin_shuffle(a, b, (wi8){ 4, 12, 5, 13, 6, 14, 7, 15 })
#endif

static inline wv8 wv_set1(float f)
{
	wv8 v = { f, f, f, f, f, f, f, f };

	return v;
}

/* ---- transforms on 8 lanes ----------------------------------------------- */

/* Input transform B^T applied to 4 values: out[k*os] from in[j*is]. */
static inline void bt4(const wv8 *in, int is, wv8 *out, int os)
{
	wv8 d0 = in[0], d1 = in[is], d2 = in[2 * is], d3 = in[3 * is];

	out[0] = d0 - d2;
	out[os] = d1 + d2;
	out[2 * os] = d2 - d1;
	out[3 * os] = d1 - d3;
}

/* Filter transform G applied to 3 values: 4 outputs. */
static inline void g3(const wv8 *in, int is, wv8 *out, int os)
{
	wv8 g0 = in[0], g1 = in[is], g2 = in[2 * is];
	wv8 s = (g0 + g2) * 0.5f, t = g1 * 0.5f;

	out[0] = g0;
	out[os] = s + t;
	out[2 * os] = s - t;
	out[3 * os] = g2;
}

/* Output transform A^T applied to 4 values: 2 outputs. */
static inline void at4(const wv8 *in, int is, wv8 *out, int os)
{
	wv8 m0 = in[0], m1 = in[is], m2 = in[2 * is], m3 = in[3 * is];

	out[0] = m0 + m1 + m2;
	out[os] = m1 - m2 - m3;
}

/* ---- filters ------------------------------------------------------------- */

struct wg_filt_job {
	const float *w;          /* [M][C][3][3] */
	float *u;                /* [E][M][C] */
	int64_t m, c;
};

/* U[e][o][c] for output channels [begin, end), 8 input channels per step. */
WG_CLONES static void wg_filters(void *arg, int64_t begin, int64_t end)
{
	const struct wg_filt_job *j = arg;
	int64_t mc = j->m * j->c;

	for (int64_t o = begin; o < end; o++) {
		for (int64_t c0 = 0; c0 < j->c; c0 += WG_L) {
			int nl = j->c - c0 < WG_L ? (int)(j->c - c0) : WG_L;
			float gl[9][WG_L], ul[WG_L];
			wv8 g[9], t[WG_A * 3], r[WG_E];
			const float *src = j->w + (o * j->c + c0) * 9;
			float *dst = j->u + o * j->c + c0;

			memset(gl, 0, sizeof(gl));
			for (int l = 0; l < nl; l++)
				for (int k = 0; k < 9; k++)
					gl[k][l] = src[l * 9 + k];
			for (int k = 0; k < 9; k++)
				g[k] = wv_load(gl[k]);
			for (int k = 0; k < 3; k++)      /* columns: t = G g (6x3) */
				g3(g + k, 3, t + k, 3);
			for (int i = 0; i < WG_A; i++)   /* rows: r = t G^T (6x6) */
				g3(t + i * 3, 1, r + i * WG_A, 1);
			for (int e = 0; e < WG_E; e++) {
				if (nl == WG_L) {
					wv_store(dst + e * mc, r[e]);
				} else {
					wv_store(ul, r[e]);
					memcpy(dst + e * mc, ul, (size_t)nl * sizeof(float));
				}
			}
		}
	}
}

/* ---- tiles --------------------------------------------------------------- */

struct wg_job {
	const float *x, *b;      /* input, bias (may be NULL) */
	const float *u;          /* transformed filters [E][M][C] */
	float *y;
	const struct lr_geom *g;
	int64_t m, cin;          /* output and input channels */
	int64_t th, tw, tpi;     /* tiles per image: rows, columns, total */
	int64_t total;           /* tiles over all images */
	int64_t tb, ldt;         /* tiles per block, leading dim of V and Mo */
	float **work;            /* per-thread V + Mo */
};

/*
 * Where the 8 tiles of one vector group sit, computed once per block.
 * Offsets are in floats from the start of the input or output tensor;
 * the input ones may point into the padding, so they stay integers.
 */
struct wg_grp {
	int in_mode;             /* WG_ROW_INNER, WG_ROW_EDGE or WG_LANES */
	int out_inner;           /* 1: one row inside the output: vector stores */
	int64_t iy0[WG_L], ix0[WG_L];  /* input tile origin (may be negative) */
	int64_t xoff[WG_L];      /* n*C*H*W + iy0*W + ix0, channel 0 */
	int64_t yoff[WG_L];      /* n*M*OH*OW + oy*OW + ox, channel 0 */
	int rows[WG_L], cols[WG_L];  /* output rows/columns kept (0: unused) */
	int in_inner[WG_L];      /* lane's input tile lies inside the input */
};

enum { WG_ROW_INNER, WG_ROW_EDGE, WG_LANES };

/* Row span of one 8-tile row group: 2*8 + 2 input columns. */
#define WG_SPAN (WG_M * WG_L + 2)

/* Describes the groups of tiles [t0, t0+nt) into grp[0 .. (nt+7)/8). */
static void wg_groups(const struct wg_job *j, int64_t t0, int64_t nt, struct wg_grp *grp)
{
	const struct lr_geom *g = j->g;
	int64_t n = t0 / j->tpi, r = t0 % j->tpi;
	int64_t ty = r / j->tw, tx = r % j->tw;

	for (int64_t q = 0; q < nt; q += WG_L) {
		struct wg_grp *G = &grp[q / WG_L];
		int row = 1, used = 0;

		for (int l = 0; l < WG_L; l++) {
			int64_t oy = ty * WG_M, ox = tx * WG_M;

			G->rows[l] = G->cols[l] = 0;
			G->in_inner[l] = 0;
			G->iy0[l] = G->ix0[l] = G->xoff[l] = G->yoff[l] = 0;
			if (q + l >= nt) {
				row = 0;
				continue;
			}
			used++;
			if (l > 0 && tx == 0)
				row = 0;        /* the group wraps to the next tile row */
			G->iy0[l] = oy - g->pt;
			G->ix0[l] = ox - g->pl;
			G->xoff[l] = n * j->cin * g->h * g->w + G->iy0[l] * g->w + G->ix0[l];
			G->yoff[l] = n * j->m * g->oh * g->ow + oy * g->ow + ox;
			G->rows[l] = (int)(g->oh - oy < WG_M ? g->oh - oy : WG_M);
			G->cols[l] = (int)(g->ow - ox < WG_M ? g->ow - ox : WG_M);
			G->in_inner[l] = G->iy0[l] >= 0 && G->ix0[l] >= 0 &&
					 G->iy0[l] + WG_A <= g->h && G->ix0[l] + WG_A <= g->w;
			if (++tx == j->tw) {
				tx = 0;
				if (++ty == j->th) {
					ty = 0;
					n++;
				}
			}
		}
		if (row && used == WG_L)
			G->in_mode = G->iy0[0] >= 0 && G->ix0[0] >= 0 &&
				     G->iy0[0] + WG_A <= g->h && G->ix0[0] + WG_SPAN <= g->w
				     ? WG_ROW_INNER : WG_ROW_EDGE;
		else
			G->in_mode = WG_LANES;
		G->out_inner = G->in_mode != WG_LANES && G->rows[0] == WG_M &&
			       G->cols[WG_L - 1] == WG_M;
	}
}

/* d[a][k][lane] = rows[a][2 lane + k] for a, k < 4: 18 floats per row. */
static inline void wg_load_rows(const float *const rows[WG_A], wv8 *dv)
{
	for (int a = 0; a < WG_A; a++) {
		wv8 lo = wv_load(rows[a]), hi = wv_load(rows[a] + 8);
		wv8 lo2 = wv_load(rows[a] + 2), hi2 = wv_load(rows[a] + 10);

		dv[a * WG_A + 0] = WV_EVEN(lo, hi);
		dv[a * WG_A + 1] = WV_ODD(lo, hi);
		dv[a * WG_A + 2] = WV_EVEN(lo2, hi2);
		dv[a * WG_A + 3] = WV_ODD(lo2, hi2);
	}
}

/* B^T d B of the 8 tiles in dv, stored to dst + e * es. */
static inline void wg_in_tf(const wv8 *dv, float *dst, int64_t es)
{
	wv8 t[WG_E], r[WG_E];

	for (int k = 0; k < WG_A; k++)       /* columns: t = B^T d */
		bt4(dv + k, WG_A, t + k, WG_A);
	for (int a = 0; a < WG_A; a++)       /* rows: r = t B */
		bt4(t + a * WG_A, 1, r + a * WG_A, 1);
	for (int e = 0; e < WG_E; e++)
		wv_store(dst + e * es, r[e]);
}

/*
 * Transforms the input of the block's ng groups into v ([E][C][ldt]).
 * Channels outside, groups inside: each V[e][c] row is written in order.
 */
WG_CLONES static void wg_input(const struct wg_job *j, const struct wg_grp *grp,
			       int64_t ng, float *v)
{
	const struct lr_geom *g = j->g;
	int64_t hw = g->h * g->w, es = j->cin * j->ldt;

	for (int64_t c = 0; c < j->cin; c++) {
		const float *xc = j->x + c * hw;

		for (int64_t gi = 0; gi < ng; gi++) {
			const struct wg_grp *G = &grp[gi];
			float d[WG_E][WG_L] __attribute__((aligned(32)));
			float buf[WG_A][WG_SPAN + 6];
			const float *rows[WG_A];
			wv8 dv[WG_E];

			if (G->in_mode == WG_ROW_INNER) {
				for (int a = 0; a < WG_A; a++)
					rows[a] = xc + G->xoff[0] + a * g->w;
				wg_load_rows(rows, dv);
			} else if (G->in_mode == WG_ROW_EDGE) {
				/* an edge group: copy its rows with zero padding */
				int64_t lo = -G->ix0[0] > 0 ? -G->ix0[0] : 0;
				int64_t hi = g->w - G->ix0[0] < WG_SPAN ? g->w - G->ix0[0] : WG_SPAN;

				for (int a = 0; a < WG_A; a++) {
					int64_t iy = G->iy0[0] + a;
					const float *sr = xc + G->xoff[0] + a * g->w;

					rows[a] = buf[a];
					memset(buf[a], 0, sizeof(buf[a]));
					if (iy < 0 || iy >= g->h)
						continue;
					for (int64_t k = lo; k < hi; k++)
						buf[a][k] = sr[k];
				}
				wg_load_rows(rows, dv);
			} else {
				for (int l = 0; l < WG_L; l++) {
					if (G->rows[l] == 0) {
						for (int e = 0; e < WG_E; e++)
							d[e][l] = 0.0f;
						continue;
					}
					for (int a = 0; a < WG_A; a++) {
						int64_t iy = G->iy0[l] + a;

						for (int k = 0; k < WG_A; k++) {
							int64_t ix = G->ix0[l] + k;

							d[a * WG_A + k][l] =
								G->in_inner[l] ||
								(iy >= 0 && iy < g->h && ix >= 0 && ix < g->w)
								? xc[G->xoff[l] + a * g->w + k] : 0.0f;
						}
					}
				}
				for (int e = 0; e < WG_E; e++)
					dv[e] = wv_load(d[e]);
			}
			wg_in_tf(dv, v + c * j->ldt + gi * WG_L, es);
		}
	}
}

/* Output transform of the block's ng groups from mo ([E][M][ldt]) into y. */
WG_CLONES static void wg_output(const struct wg_job *j, const struct wg_grp *grp,
				int64_t ng, const float *mo)
{
	const struct lr_geom *g = j->g;
	int64_t ohw = g->oh * g->ow, es = j->m * j->ldt;

	for (int64_t o = 0; o < j->m; o++) {
		float *yo = j->y + o * ohw;
		wv8 bias = wv_set1(j->b ? j->b[o] : 0.0f);

		for (int64_t gi = 0; gi < ng; gi++) {
			const struct wg_grp *G = &grp[gi];
			float res[WG_M * WG_M][WG_L] __attribute__((aligned(32)));
			wv8 mv[WG_E], t[WG_M * WG_A], r[WG_M * WG_M];
			const float *src = mo + o * j->ldt + gi * WG_L;

			for (int e = 0; e < WG_E; e++)
				mv[e] = wv_load(src + e * es);
			for (int k = 0; k < WG_A; k++)       /* columns: t = A^T m */
				at4(mv + k, WG_A, t + k, WG_A);
			for (int a = 0; a < WG_M; a++)       /* rows: r = t A */
				at4(t + a * WG_A, 1, r + a * WG_M, 1);
			if (G->out_inner) {
				float *d = yo + G->yoff[0];

				for (int a = 0; a < WG_M; a++) {
					wv8 e0 = r[a * WG_M] + bias, e1 = r[a * WG_M + 1] + bias;

					wv_store(d + a * g->ow, WV_ZIPLO(e0, e1));
					wv_store(d + a * g->ow + 8, WV_ZIPHI(e0, e1));
				}
				continue;
			}
			for (int e = 0; e < WG_M * WG_M; e++)
				wv_store(res[e], r[e] + bias);
			for (int l = 0; l < WG_L; l++) {
				float *d = yo + G->yoff[l];

				for (int a = 0; a < G->rows[l]; a++)
					for (int k = 0; k < G->cols[l]; k++)
						d[a * g->ow + k] = res[a * WG_M + k][l];
			}
		}
	}
}

static void wg_blocks(void *arg, int64_t begin, int64_t end, int thread)
{
	const struct wg_job *j = arg;
	float *v = j->work[thread];
	float *mo = v + WG_E * j->cin * j->ldt;
	struct wg_grp *grp = (struct wg_grp *)(void *)(mo + WG_E * j->m * j->ldt);

	for (int64_t blk = begin; blk < end; blk++) {
		int64_t t0 = blk * j->tb;
		int64_t nt = j->total - t0 < j->tb ? j->total - t0 : j->tb;
		int64_t nt8 = (nt + WG_L - 1) & ~(int64_t)(WG_L - 1);

		wg_groups(j, t0, nt, grp);
		wg_input(j, grp, nt8 / WG_L, v);
		for (int e = 0; e < WG_E; e++)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)j->m,
				    (int)nt8, (int)j->cin, 1.0f, j->u + (size_t)e * j->m * j->cin,
				    (int)j->cin, v + (size_t)e * j->cin * j->ldt, (int)j->ldt, 0.0f,
				    mo + (size_t)e * j->m * j->ldt, (int)j->ldt);
		wg_output(j, grp, nt8 / WG_L, mo);
	}
}

/*
 * Whether Winograd beats im2col for this shape (measured with
 * bench/winograd_ab.c on Zen3): enough channels for the GEMMs and enough
 * tiles per thread to amortise the filter transform and U's packing.
 */
static int wg_worth(int64_t cin, int64_t m, int64_t total, int nthreads)
{
	if (cin < 16 || m < 16)
		return 0;
	return total >= 64 * (int64_t)nthreads;
}

int lr__conv_winograd(lr_opctx *c, const lr_tensor *x, const lr_tensor *w,
		      const lr_tensor *b, lr_tensor *y, const struct lr_geom *g)
{
	struct wg_job j;
	struct wg_filt_job fj;
	int nthr = lr_pool_size(c->pool);
	int64_t nblocks, per;
	size_t ubytes, wbytes;
	float *own = NULL, *u = NULL, *work[64];

	memset(&j, 0, sizeof(j));
	j.x = x->data;
	j.b = b ? b->data : NULL;
	j.y = y->data;
	j.g = g;
	j.m = w->dims[0];
	j.cin = w->dims[1];
	j.th = (g->oh + WG_M - 1) / WG_M;
	j.tw = (g->ow + WG_M - 1) / WG_M;
	j.tpi = j.th * j.tw;
	j.total = g->n * j.tpi;
	if (nthr > 64)
		return 1;               /* work[] below holds 64 threads */
	if (!wg_worth(j.cin, j.m, j.total, nthr) && getenv("LR_WINOGRAD_FORCE") == NULL)
		return 1;

	/* Block size: V + Mo near LR_WINO_BLOCK_BYTES, at least MIN_T tiles. */
	per = (int64_t)(LR_WINO_BLOCK_BYTES / sizeof(float)) / (WG_E * (j.cin + j.m));
	if (per < LR_WINO_MIN_T)
		per = LR_WINO_MIN_T;
	nblocks = (j.total + per - 1) / per;
	/* Even blocks, a multiple of the thread count when it costs little. */
	if (nblocks < nthr)
		nblocks = nthr;
	else if (nblocks % nthr != 0 && nblocks < 4 * nthr)
		nblocks += nthr - nblocks % nthr;
	per = (j.total + nblocks - 1) / nblocks;
	per = (per + WG_L - 1) & ~(int64_t)(WG_L - 1);
	j.tb = per;
	nblocks = (j.total + per - 1) / per;
	j.ldt = per % 256 == 0 ? per + 16 : per;

	ubytes = (size_t)(WG_E * j.m * j.cin) * sizeof(float);
	ubytes = (ubytes + 63) & ~(size_t)63;
	wbytes = (size_t)(WG_E * (j.cin + j.m) * j.ldt) * sizeof(float) +
		 (size_t)(j.tb / WG_L) * sizeof(struct wg_grp);
	wbytes = (wbytes + 63) & ~(size_t)63;
	if (c->cache != NULL && c->scratch != NULL && c->scratch->n >= nthr &&
	    (!c->cache_ro || (c->cache->key == w->data && c->cache->bytes == ubytes))) {
		/* U is kept with the node: constant weights transform once. */
		struct lr_node_cache *nc = c->cache;

		for (int t = 0; t < nthr; t++)
			if ((work[t] = lr_op_scratch(c, t, wbytes)) == NULL)
				return LR_ENOMEM;
		if (nc->key != w->data || nc->bytes != ubytes) {
			lr_free_aligned(nc->data);
			nc->key = NULL;
			nc->bytes = 0;
			nc->data = lr_alloc_aligned(ubytes);
			if (nc->data == NULL)
				return LR_ENOMEM;
			fj.w = w->data;
			fj.u = nc->data;
			fj.m = j.m;
			fj.c = j.cin;
			lr_pool_run(c->pool, j.m, 1, wg_filters, &fj);
			nc->key = w->data;
			nc->bytes = ubytes;
		}
		j.u = nc->data;
		j.work = work;
		lr_pool_run_indexed(c->pool, nblocks, 1, wg_blocks, &j);
		return 0;
	}
	if (c->scratch != NULL && c->scratch->n >= nthr) {
		/* Thread 0's scratch holds U and its work area. */
		for (int t = 0; t < nthr; t++) {
			char *p = lr_op_scratch(c, t, t == 0 ? ubytes + wbytes : wbytes);

			if (p == NULL)
				return LR_ENOMEM;
			work[t] = (float *)(void *)(p + (t == 0 ? ubytes : 0));
			if (t == 0)
				u = (float *)(void *)p;
		}
	} else {
		char *p = lr_alloc_aligned(ubytes + (size_t)nthr * wbytes);

		if (p == NULL)
			return LR_ENOMEM;
		own = u = (float *)(void *)p;
		for (int t = 0; t < nthr; t++)
			work[t] = (float *)(void *)(p + ubytes + (size_t)t * wbytes);
	}
	j.work = work;

	fj.w = w->data;
	j.u = fj.u = u;
	fj.m = j.m;
	fj.c = j.cin;
	lr_pool_run(c->pool, j.m, 1, wg_filters, &fj);
	lr_pool_run_indexed(c->pool, nblocks, 1, wg_blocks, &j);
	lr_free_aligned(own);
	return 0;
}
