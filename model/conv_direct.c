/*
 * conv_direct.c - direct convolution for group-1, undilated Conv of any
 * stride: no im2col, weights packed once per engine, AVX-512 or AVX2
 * microkernels chosen at run time, Relu/Clip fused into the stores.
 *
 * DESIGN. The image is copied once into a zero-padded buffer (skipped
 * when the node has no padding) of width wp = w + pl + pr. Outputs are
 * computed on that padded grid: output q = oy * wp + ox reads input
 * q + ki * wp + kj for tap (ki, kj), so every tap of every output is one
 * contiguous run of the padded plane and a convolution is a GEMM
 *     out[m][q] = sum_k W[m][k] * xpad[q + off[k]]
 * whose B operand is read in place through the offset table off[k]
 * (k = (c * kh + ki) * kw + kj, off[k] = c * plane + ki * wp + kj).
 * Only real outputs are computed: a microkernel call takes its
 * positions' grid offsets (pos[p] = oy * wp + ox, the positions of a call
 * may span rows), so the grid's padding columns cost nothing; computing
 * and dropping them cost wp / ow extra, 2/7 on 7x7 maps (8% of a
 * Fashion-MNIST ResNet, 3-5% of ResNet-50).
 * At stride (sy, sx) output (oy, ox) sits at oy * sy * wp + ox * sx of the
 * grid and the offset table is the stride-1 one: the positions' table
 * carries the stride, so a strided layer copies no more than a stride-1
 * one (nothing when unpadded, as ResNet-50's 1x1 stride 2). Splitting the
 * image into s x s phases first, so that taps read each phase at stride 1,
 * cost more than it saved: in-network on ResNet-50 every strided layer ran
 * 3-8% slower that way, and the thin ones of a compressed ResNet-50
 * 20-40% (32 1x1 stride 2 at 14x14 alone: 0.034 ms here, 0.060 with
 * phases).
 *
 * The microkernels are shaped like ONNX Runtime's NCHWc convolution
 * kernels (MLAS), so that layers cost, relative to each other, what they
 * cost there (what rank selection needs): filters in blocks of 16 with
 * AVX-512 (8 with AVX2) packed as [M/16][K][16], zero-padded past M (a
 * layer of 10 filters costs one of 16, as in ORT); up to 4 blocks x 6
 * positions (AVX2: 4 x 3) of accumulators, which per tap load the blocks'
 * weight vectors and broadcast one input per position. A thin layer
 * (one block) does one FMA per broadcast and runs at about half the rate
 * of a wide one, as ORT's does; with AVX-512 its kernels take 12
 * positions, so that 12 sums are in flight rather than 6 (FMA latency 4,
 * 2 per cycle): a 16-filter 3x3 stride 2 at 56x56 ran 18% faster alone
 * and 15-25% in-network (LR_CD_NP6: the 6-position kernels).
 * Accumulators hold 16 filters of one position, so tiles are transposed
 * into Y (NCHW) as they are stored (16 x 16 register transposes with
 * AVX-512), where ORT reorders its blocked layout once per chain of
 * layers. A Relu or Clip the engine fused into the node (c->act) is
 * applied to the transposed vectors. Where the engine keeps activations
 * in blocks of 16 channels (x->blocked, c->out_blocked; engine.c,
 * plan_blocked), X is read through the same tables with channel c as lane
 * c % 16 of block c / 16 (offsets and positions times 16), and the
 * microkernels store the last chunk's sums into Y themselves (struct
 * cd_out), one vector per position and block, without transposes or a
 * tile pass.
 *
 * Blocked X is read in place, padded or not, as ONNX Runtime's NCHWc
 * kernels do: no padded copy (a copy per image was 5-7% of a compressed
 * Fashion-MNIST ResNet, twice its share of the original). Outputs fall
 * into classes by the window of taps inside the image along each axis
 * (cd_windows; interior, top row, left column, corners...), taps are
 * ordered (ki, kj, c), so that a class's taps are one run (full columns)
 * or one run per kernel row (cd_pieces), and each output sums only
 * those: a 3x3 at 7x7 does 18% fewer products. Each strip's outputs are
 * listed grouped by class (struct cd_job lpos / ldst: where each reads,
 * where it is stored), so that a call's positions share their taps;
 * engines that price keep them in row order and group runs of one class
 * only, as ONNX Runtime goes row by row, an edge output on its own. The
 * sums differ from the padded copy's by roundings (other order); with
 * LR_BLK_PAD_COPY the copy is made and blocked runs are bit-identical
 * to C-order ones (tests/blocked.sh checks both).
 *
 * Packed weights and bias live in the node's cache (struct lr_node_cache)
 * for constant weights and are packed per call otherwise. Work is split
 * into (image, strip of 8 x 6 positions, group of filter blocks) tasks;
 * strips are of equal length and a map of up to CD_TILEP outputs
 * is one strip, so that weights stream once per strip and never for a
 * short remainder; small images get several filter groups (then, if
 * still needed, shorter strips) so that every thread has work, except
 * thin layers (up to CD_THIN_BLOCKS blocks), which take shorter strips
 * only, so that each thread reads only its own rows. Layers
 * whose weights would not stay in L2 from one strip to the next take
 * long strips (up to CD_LONGP positions, the tile in L2), so that the
 * weights stream once per thousand outputs instead of once per 48, the
 * way ONNX Runtime's NCHWc kernels accumulate a row range in their
 * output. Tiles are per-thread scratch. Within a strip, taps run in chunks of CD_KC
 * (32 KiB of weights for 4 blocks, kept in L1 across the strip), each
 * summed from zero and added to a strip-sized tile: a blocked sum, 2-4x
 * closer to double precision than one running sum over all taps.
 *
 * Every group-1, undilated Conv takes this path when the CPU
 * has AVX2 and FMA (lr__conv_direct_worth): measured with
 * bench/layers.sh and bench/engine.sh, it beat im2col and Winograd on
 * OpenBLAS's Haswell kernels (what Debian's OpenBLAS 0.3.21 picks on
 * this Zen CPU) for every VGG and ResNet shape tried; strided ones beat
 * im2col on ResNet-50 (66 -> 56 ms, with the transposed stores).
 * LR_NO_CONV_DIRECT (set) disables it, LR_NO_CONV_DIRECT_STRIDED strided
 * shapes only;
 * LR_CONV_DIRECT_FORCE (set) takes it for every eligible shape;
 * LR_CONV_ISA=avx2 restricts the kernels to AVX2 (tests cover both).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/ops.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#define CD_X86 1
#endif

#define CD_FB 4                 /* most filter blocks per microkernel */
#define CD_NP512 6              /* positions per AVX-512 microkernel */
#define CD_NP256 3              /* positions per AVX2 microkernel */
#define CD_NP1 12               /* positions per one-block AVX-512 microkernel */
#define CD_NPMAX 12
#ifndef CD_STRIP
#define CD_STRIP 8              /* microkernel calls per strip of positions */
#endif
#ifndef CD_TILEP
#define CD_TILEP 72             /* most positions per strip (one strip up to 72) */
#endif
#ifndef CD_KC
#define CD_KC 128               /* taps per chunk (weights stay in L1) */
#endif
#ifndef CD_LONGP
#define CD_LONGP 1008           /* most positions per long strip (252 KiB tile) */
#endif
#define CD_LONGW (512 << 10)    /* weights above this take long strips */
#define CD_THIN_BLOCKS 8        /* layers of up to this many blocks: no filter groups */

enum { CD_NONE = 0, CD_AVX2 = 1, CD_AVX512 = 2 };

/*
 * A microkernel: sums k taps from zero, then stores tile[p][64] = sum +
 * (accum ? tile[p][64] : bias). Summing each chunk of taps apart and
 * adding it to the tile is a blocked sum, as in SGEMM's K blocks and
 * ONNX Runtime's channel blocks: one running sum over 4608 taps was
 * measured 2.5x further from a double-precision result.
 */
struct cd_out;
typedef void (*cd_kernel)(const float *x, const int32_t *pos, const int32_t *off, int64_t k,
			  const float *w, int64_t wstride, const float *bias, float *tile,
			  int accum, const struct cd_out *out);

/*
 * Where a microkernel's last chunk of taps goes when Y is channel-blocked:
 * position p's block f at dst + dpos[p] * 16 + f * fstride, after the fused
 * activation, instead of back into the tile for a pass that copies it to
 * Y: one store per vector instead of a store, a load and a store.
 * MobileNet-v2 ran 4% faster on 1 thread and 8% on 2, ResNet-50 3% and 6%
 * (bench --ab, docs/benchmarks.md); its 16 -> 96 1x1 at 112x112 has 16
 * taps per output, where the copy was a third of the layer's time.
 */
struct cd_out {
	float *dst;             /* output 0 of the call's first filter block */
	const float *res;       /* the same place in a residual to add before
				 * the activation (lr_opctx.res), or NULL */
	const int32_t *dpos;    /* position p's output index: dst + dpos[p] * 16 */
	int64_t fstride;        /* floats between filter blocks (16 * oh * ow) */
	int act;                /* LR_ACT_* */
	float lo, hi;           /* Clip bounds */
};

/* Outputs of one class in a strip: its list slots [start, start + n),
 * counted from the strip's first (struct cd_job lpos / ldst). */
struct cd_grp {
	int32_t cls, start, n;
};

/* A run of taps summed by one microkernel call: off + k0, kc taps. */
struct cd_piece {
	int32_t k0, kc;
};

struct cd_job {
	const float *xp;        /* padded image (or the image) */
	const float *wpk;       /* packed weights [mb][K][blk] */
	const float *bias;      /* packed bias [mb * blk] */
	const int32_t *off;     /* [K] */
	const int32_t *lpos;    /* [q]: grid offsets (times pmul), each strip's
				 * outputs grouped by class */
	const int32_t *ldst;    /* [q]: their output indices */
	const struct cd_grp *grp; /* strip st's groups: grp[gofs[st]..gofs[st + 1]) */
	const int32_t *gofs;
	const struct cd_piece *piece; /* class c's taps: piece[cofs[c]..cofs[c + 1]) */
	const int32_t *cofs;
	float *y;               /* this image's output [M][oh * ow] */
	const float *res;       /* this image's residual (blocked, as Y), or NULL */
	int64_t k, m, mb, blk;  /* taps, filters, filter blocks, block size */
	int64_t q;              /* outputs per image (oh * ow) */
	int64_t wp, ow, ohw;    /* grid width, output width, outputs/plane */
	int64_t sy, sx;         /* stride: grid rows, columns between outputs */
	int64_t np;             /* positions per microkernel call */
	int64_t nstrips, strip; /* strips of `strip` positions */
	int64_t mgroups, mper;  /* filter groups per strip, blocks per group */
	int64_t pmul;           /* grid offset to float offset: 1, or 16 blocked */
	int yblk;               /* 1: Y is channel-blocked (NCHW16c) */
	const cd_kernel *kern;  /* [CD_FB][np]: FB blocks x NP positions */
	char *tiles;            /* per thread: tile and vidx of a strip */
	size_t tbytes;          /* bytes per thread in `tiles` */
	int act;                /* fused activation (LR_ACT_*) */
	float lo, hi;           /* its bounds (LR_ACT_CLIP) */
	int prefetch;           /* prefetch the stores' lines (LR_NO_PREFETCH: off) */
};

#if defined(CD_X86)
/*
 * AVX-512 microkernel: FB blocks of 16 filters x NP positions in
 * FB * NP accumulators; per tap, FB weight vectors and NP broadcasts.
 */
#define CD512(FB, NP)                                                       \
__attribute__((target("avx512f")))                                          \
static void cd512_##FB##_##NP(const float *x, const int32_t *pos,          \
			      const int32_t *off, int64_t k,                \
			      const float *w, int64_t ws, const float *bias, \
			      float *tile, int accum, const struct cd_out *out) \
{                                                                           \
	__m512 acc[FB][NP];                                                 \
	const float *xq[NP];                                                \
                                                                            \
	_Pragma("GCC unroll 4")                                             \
	for (int f = 0; f < FB; f++) {                                      \
		_Pragma("GCC unroll 12")                                    \
		for (int p = 0; p < NP; p++)                                \
			acc[f][p] = _mm512_setzero_ps();                    \
	}                                                                   \
	_Pragma("GCC unroll 12")                                            \
	for (int p = 0; p < NP; p++)                                        \
		xq[p] = x + pos[p];                                         \
	for (int64_t t = 0; t < k; t++) {                                   \
		const int64_t o = off[t];                                   \
		__m512 wv[FB];                                              \
                                                                            \
		_Pragma("GCC unroll 4")                                     \
		for (int f = 0; f < FB; f++)                                \
			wv[f] = _mm512_load_ps(w + f * ws + t * 16);        \
		_Pragma("GCC unroll 12")                                    \
		for (int p = 0; p < NP; p++) {                              \
			__m512 xb = _mm512_set1_ps(xq[p][o]);               \
                                                                            \
			_Pragma("GCC unroll 4")                             \
			for (int f = 0; f < FB; f++)                        \
				acc[f][p] = _mm512_fmadd_ps(wv[f], xb, acc[f][p]); \
		}                                                           \
	}                                                                   \
	if (out != NULL) { /* the last chunk, into blocked Y */             \
		/* One branch per step, not per vector: K = 16-48 layers    \
		 * spend a fifth of a call here. */                         \
		float *dst = out->dst;                                      \
		const float *res = out->res;                                \
		const int32_t *dp = out->dpos;                              \
		const int64_t fs = out->fstride;                            \
                                                                            \
		if (accum) {                                                \
			_Pragma("GCC unroll 12")                            \
			for (int p = 0; p < NP; p++)                        \
				_Pragma("GCC unroll 4")                     \
				for (int f = 0; f < FB; f++)                \
					acc[f][p] = _mm512_add_ps(acc[f][p], \
						_mm512_load_ps(tile + p * 64 + 16 * f)); \
		} else {                                                    \
			_Pragma("GCC unroll 4")                             \
			for (int f = 0; f < FB; f++) {                      \
				const __m512 bv = _mm512_loadu_ps(bias + 16 * f); \
                                                                            \
				_Pragma("GCC unroll 12")                    \
				for (int p = 0; p < NP; p++)                \
					acc[f][p] = _mm512_add_ps(acc[f][p], bv); \
			}                                                   \
		}                                                           \
		if (res != NULL) {                                          \
			_Pragma("GCC unroll 12")                            \
			for (int p = 0; p < NP; p++)                        \
				_Pragma("GCC unroll 4")                     \
				for (int f = 0; f < FB; f++)                \
					acc[f][p] = _mm512_add_ps(acc[f][p], \
						_mm512_loadu_ps(res + (int64_t)dp[p] * 16 + f * fs)); \
		}                                                           \
		if (out->act == LR_ACT_RELU) {                              \
			const __m512 z = _mm512_setzero_ps();               \
                                                                            \
			_Pragma("GCC unroll 12")                            \
			for (int p = 0; p < NP; p++)                        \
				_Pragma("GCC unroll 4")                     \
				for (int f = 0; f < FB; f++)                \
					acc[f][p] = _mm512_max_ps(acc[f][p], z); \
		} else if (out->act == LR_ACT_CLIP) {                       \
			const __m512 vlo = _mm512_set1_ps(out->lo);         \
			const __m512 vhi = _mm512_set1_ps(out->hi);         \
                                                                            \
			_Pragma("GCC unroll 12")                            \
			for (int p = 0; p < NP; p++)                        \
				_Pragma("GCC unroll 4")                     \
				for (int f = 0; f < FB; f++)                \
					acc[f][p] = _mm512_min_ps(vhi,      \
						_mm512_max_ps(vlo, acc[f][p])); \
		}                                                           \
		_Pragma("GCC unroll 12")                                    \
		for (int p = 0; p < NP; p++)                                \
			_Pragma("GCC unroll 4")                             \
			for (int f = 0; f < FB; f++)                        \
				_mm512_storeu_ps(dst + (int64_t)dp[p] * 16 + f * fs, acc[f][p]); \
		return;                                                     \
	}                                                                   \
	_Pragma("GCC unroll 12")                                            \
	for (int p = 0; p < NP; p++) {                                      \
		_Pragma("GCC unroll 4")                                     \
		for (int f = 0; f < FB; f++) {                              \
			float *tp = tile + p * 64 + 16 * f;                 \
			__m512 base = accum ? _mm512_load_ps(tp)            \
					     : _mm512_loadu_ps(bias + 16 * f); \
                                                                            \
			_mm512_store_ps(tp, _mm512_add_ps(acc[f][p], base)); \
		}                                                           \
	}                                                                   \
}

/* AVX2 microkernel: FB blocks of 8 filters x NP positions. */
#define CD256(FB, NP)                                                       \
__attribute__((target("avx2,fma")))                                         \
static void cd256_##FB##_##NP(const float *x, const int32_t *pos,          \
			      const int32_t *off, int64_t k,                \
			      const float *w, int64_t ws, const float *bias, \
			      float *tile, int accum, const struct cd_out *out) \
{                                                                           \
	__m256 acc[FB][NP];                                                 \
	const float *xq[NP];                                                \
                                                                            \
	(void)out; /* Y is blocked with AVX-512 only */                     \
	_Pragma("GCC unroll 4")                                             \
	for (int f = 0; f < FB; f++) {                                      \
		_Pragma("GCC unroll 3")                                     \
		for (int p = 0; p < NP; p++)                                \
			acc[f][p] = _mm256_setzero_ps();                    \
	}                                                                   \
	_Pragma("GCC unroll 3")                                             \
	for (int p = 0; p < NP; p++)                                        \
		xq[p] = x + pos[p];                                         \
	for (int64_t t = 0; t < k; t++) {                                   \
		const int64_t o = off[t];                                   \
		__m256 wv[FB];                                              \
                                                                            \
		_Pragma("GCC unroll 4")                                     \
		for (int f = 0; f < FB; f++)                                \
			wv[f] = _mm256_load_ps(w + f * ws + t * 8);         \
		_Pragma("GCC unroll 3")                                     \
		for (int p = 0; p < NP; p++) {                              \
			__m256 xb = _mm256_set1_ps(xq[p][o]);               \
                                                                            \
			_Pragma("GCC unroll 4")                             \
			for (int f = 0; f < FB; f++)                        \
				acc[f][p] = _mm256_fmadd_ps(wv[f], xb, acc[f][p]); \
		}                                                           \
	}                                                                   \
	_Pragma("GCC unroll 3")                                             \
	for (int p = 0; p < NP; p++) {                                      \
		_Pragma("GCC unroll 4")                                     \
		for (int f = 0; f < FB; f++) {                              \
			float *tp = tile + p * 64 + 8 * f;                  \
			__m256 base = accum ? _mm256_load_ps(tp)            \
					     : _mm256_loadu_ps(bias + 8 * f); \
                                                                            \
			_mm256_store_ps(tp, _mm256_add_ps(acc[f][p], base)); \
		}                                                           \
	}                                                                   \
}

#define CD512_ROW(FB) CD512(FB, 1) CD512(FB, 2) CD512(FB, 3) CD512(FB, 4) CD512(FB, 5) CD512(FB, 6)
#define CD256_ROW(FB) CD256(FB, 1) CD256(FB, 2) CD256(FB, 3)
CD512_ROW(1) CD512_ROW(2) CD512_ROW(3) CD512_ROW(4)
CD512(1, 7) CD512(1, 8) CD512(1, 9) CD512(1, 10) CD512(1, 11) CD512(1, 12)
CD256_ROW(1) CD256_ROW(2) CD256_ROW(3) CD256_ROW(4)

#define CD512_PTRS(FB) { cd512_##FB##_1, cd512_##FB##_2, cd512_##FB##_3, \
			 cd512_##FB##_4, cd512_##FB##_5, cd512_##FB##_6 }
#define CD256_PTRS(FB) { cd256_##FB##_1, cd256_##FB##_2, cd256_##FB##_3 }
static const cd_kernel cd512_k[CD_FB][CD_NP512] = {
	CD512_PTRS(1), CD512_PTRS(2), CD512_PTRS(3), CD512_PTRS(4)
};
static const cd_kernel cd512_k1[CD_NP1] = {
	cd512_1_1, cd512_1_2, cd512_1_3, cd512_1_4, cd512_1_5, cd512_1_6,
	cd512_1_7, cd512_1_8, cd512_1_9, cd512_1_10, cd512_1_11, cd512_1_12
};
static const cd_kernel cd256_k[CD_FB][CD_NP256] = {
	CD256_PTRS(1), CD256_PTRS(2), CD256_PTRS(3), CD256_PTRS(4)
};
#endif /* CD_X86 */

/* The best kernel set this CPU runs, capped by LR_CONV_ISA. */
static int cd_isa(void)
{
	static int cpu = -1;
	const char *cap = getenv("LR_CONV_ISA");

	if (cpu < 0) {
		int v = CD_NONE;
#if defined(CD_X86)
		__builtin_cpu_init();
		if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
			v = CD_AVX2;
		if (v == CD_AVX2 && __builtin_cpu_supports("avx512f"))
			v = CD_AVX512;
#endif
		cpu = v;
	}
	if (cap != NULL && strcmp(cap, "none") == 0)
		return CD_NONE;
	if (cap != NULL && strcmp(cap, "avx2") == 0 && cpu > CD_AVX2)
		return CD_AVX2;
	return cpu;
}

#if defined(CD_X86)
/*
 * Whether the CPU has AVX-512F, for the copies that pad and split rows:
 * they run per row, where cd_isa's getenv would cost more than the copy,
 * and LR_CONV_ISA caps the microkernels, not these.
 */
static int cd_cpu512(void)
{
	static int v = -1;

	if (v < 0) {
		__builtin_cpu_init();
		v = __builtin_cpu_supports("avx512f") ? 1 : 0;
	}
	return v;
}
#endif

int lr__conv_direct_isa(void)
{
	return cd_isa();
}

#if defined(CD_X86)
/* Lanes i of 16 with lo <= i < hi. */
static inline __mmask16 cd_lanes(int64_t lo, int64_t hi)
{
	unsigned lo_m = lo <= 0 ? 0u : lo >= 16 ? 0xffffu : (1u << lo) - 1u;
	unsigned hi_m = hi <= 0 ? 0u : hi >= 16 ? 0xffffu : (1u << hi) - 1u;

	return (__mmask16)(hi_m & ~lo_m);
}
#endif

/*
 * One row of a stride phase: dst[cc] = src[cc * s + off] where 0 <= cc * s
 * + off < w, else 0, for cc in [0, n); lr__phase_plane's path where
 * cd_phase_rows512 does not apply.
 */
static void phase_row(const float *src, int64_t w, int64_t s, int64_t off, float *dst, int64_t n)
{
	int64_t c0, c1, cc;

	/* cc in [c0, c1) read inside the row: 0 <= cc * s + off < w */
	c0 = off >= 0 ? 0 : (-off + s - 1) / s;
	c1 = w - off > 0 ? (w - off + s - 1) / s : 0;
	if (c1 > n)
		c1 = n;
	if (c0 > c1)
		c0 = c1;
	memset(dst, 0, (size_t)c0 * sizeof(float));
	cc = c0;
	if (s == 1) {
		memcpy(dst + c0, src + c0 + off, (size_t)(c1 - c0) * sizeof(float));
		cc = c1;
	}
	for (; cc < c1; cc++)
		dst[cc] = src[cc * s + off];
	memset(dst + c1, 0, (size_t)(n - c1) * sizeof(float));
}

#if defined(CD_X86)
/*
 * lr__phase_plane's rows [r0, r1) at sx = 1 or 2, column chunks outside:
 * lanes whose source lies outside [0, w) are zeros and are not read. Row
 * by row with libc calls (memset, memcpy, memset) or a scalar loop, the
 * 7-56 float rows of small maps were 15% of a compressed Fashion-MNIST
 * VGG's time.
 */
__attribute__((target("avx512f")))
static void cd_phase_rows512(const float *src, int64_t w, int64_t sy, int64_t sx,
			     int64_t ro, int64_t co, float *dst, int64_t r0, int64_t r1,
			     int64_t wq)
{
	const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16,
					    14, 12, 10, 8, 6, 4, 2, 0);

	for (int64_t c0 = 0; c0 < wq; c0 += 16) {
		int64_t b = sx * c0 + co; /* source column of lane 0 */
		__mmask16 st = cd_lanes(0, wq - c0);
		__mmask16 m0 = cd_lanes(-b, w - b), m1 = cd_lanes(-b - 16, w - b - 16);

		for (int64_t r = r0; r < r1; r++) {
			const float *row = src + (r * sy + ro) * w;
			__m512 v = _mm512_maskz_loadu_ps(m0, lr__masked_at(row, b));

			if (sx == 2)
				v = _mm512_permutex2var_ps(v, ev, _mm512_maskz_loadu_ps(m1, lr__masked_at(row, b + 16)));
			_mm512_mask_storeu_ps(dst + r * wq + c0, st, v);
		}
	}
}
#endif

void lr__phase_plane(const float *src, int64_t h, int64_t w, int64_t sy, int64_t sx,
		     int64_t ro, int64_t co, float *dst, int64_t hq, int64_t wq)
{
	/* Rows [r0, r1) read the image: 0 <= r * sy + ro < h. */
	int64_t r0 = ro >= 0 ? 0 : (-ro + sy - 1) / sy;
	int64_t r1 = h - ro > 0 ? (h - ro + sy - 1) / sy : 0;

	if (r1 > hq)
		r1 = hq;
	if (r0 > r1)
		r0 = r1;
	memset(dst, 0, (size_t)(r0 * wq) * sizeof(float));
#if defined(CD_X86)
	if ((sx == 1 || sx == 2) && cd_cpu512())
		cd_phase_rows512(src, w, sy, sx, ro, co, dst, r0, r1, wq);
	else
#endif
	for (int64_t r = r0; r < r1; r++)
		phase_row(src + (r * sy + ro) * w, w, sx, co, dst + r * wq, wq);
	memset(dst + r1 * wq, 0, (size_t)((hq - r1) * wq) * sizeof(float));
}


#if defined(CD_X86)
/*
 * Runs filter blocks [b0, b1) over outputs [q0, q0 + n) (n <= strip):
 * per group of FB blocks, taps in chunks of CD_KC so that the chunk's
 * weights (CD_KC x FB x 16 floats, 32 KiB) stay in L1 across the strip's
 * microkernel calls, accumulating in a strip-sized tile; then the tile
 * goes into Y (NCHW).
 */
/*
 * Stores rows [0, rows) of a strip's tile into Y: row r of filter m0 + r
 * goes to yr = y + (m0 + r) * ohw, at yr[d0 + i] for the i-th output,
 * tile row vidx[i] / 64 (i < nv). A strip's outputs are consecutive, so
 * each row is one contiguous store of values gathered from the tile's
 * column r.
 */
__attribute__((target("avx512f")))
static void cd_store512(const float *tile, const int32_t *vidx, int64_t nv, float *y,
			int64_t ohw, int64_t rows, int act, float lo, float hi)
{
	/* Fused activation: Relu as max(v, 0) (NaN -> 0, as lr_op_relu),
	 * Clip as min(hi, max(lo, v)) (NaN stays, as lr_op_clip). */
	const __m512 vlo = _mm512_set1_ps(act == LR_ACT_CLIP ? lo : 0.f);
	const __m512 vhi = _mm512_set1_ps(hi);

	/*
	 * 16 positions x 16 filters at a time: 16 tile rows (one position's
	 * filters each) transposed in registers into 16 filter rows of 16
	 * consecutive outputs (unpack, unpack by pairs, then 128-bit lanes).
	 */
	for (int64_t i0 = 0; i0 < nv; i0 += 16) {
		int64_t ni = nv - i0 < 16 ? nv - i0 : 16;
		__mmask16 mi = (__mmask16)(ni == 16 ? 0xffffu : (1u << ni) - 1u);

		for (int64_t f0 = 0; f0 < rows; f0 += 16) {
			int64_t nf = rows - f0 < 16 ? rows - f0 : 16;
			__m512 r[16], t[16];

			/* vidx is padded with 0 (a real tile row) past nv */
			_Pragma("GCC unroll 16")
			for (int i = 0; i < 16; i++)
				r[i] = _mm512_load_ps(tile + vidx[i0 + i] + f0);
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
			if (act == LR_ACT_RELU) {
				_Pragma("GCC unroll 16")
				for (int f = 0; f < 16; f++)
					t[f] = _mm512_max_ps(t[f], vlo);
			} else if (act == LR_ACT_CLIP) {
				_Pragma("GCC unroll 16")
				for (int f = 0; f < 16; f++)
					t[f] = _mm512_min_ps(vhi, _mm512_max_ps(vlo, t[f]));
			}
			if (nf == 16) {
				_Pragma("GCC unroll 16")
				for (int f = 0; f < 16; f++)
					_mm512_mask_storeu_ps(y + (f0 + f) * ohw + i0, mi, t[f]);
			} else {
				for (int64_t f = 0; f < nf; f++)
					_mm512_mask_storeu_ps(y + (f0 + f) * ohw + i0, mi, t[f]);
			}
		}
	}
}

__attribute__((target("avx2")))
static void cd_store256(const float *tile, const int32_t *vidx, int64_t nv, float *y,
			int64_t ohw, int64_t rows, int act, float lo, float hi)
{
	for (int64_t r = 0; r < rows; r++) {
		float *yr = y + r * ohw;
		int64_t i = 0;

		for (; i + 8 <= nv; i += 8) {
			__m256i ix = _mm256_loadu_si256((const void *)(vidx + i));

			_mm256_storeu_ps(yr + i, _mm256_i32gather_ps(tile + r, ix, 4));
		}
		for (; i < nv; i++)
			yr[i] = tile[vidx[i] + r];
		lr__act_apply(act, lo, hi, yr, nv);
	}
}

/*
 * Bytes of one thread's strip buffers for strips of `strip` positions:
 * whole pages and a page apart. Threads' tiles 64 bytes apart made
 * ResNet-50 3% slower on 2 threads than tiles on each thread's stack
 * (the cores prefetch each other's lines).
 */
static size_t cd_tile_bytes(int64_t strip)
{
	size_t b = (size_t)strip * 64 * sizeof(float) + (size_t)(strip + 16) * sizeof(int32_t);

	return (b + 4095) / 4096 * 4096 + 4096;
}

/*
 * Strip st of filter blocks [b0, b1): its outputs' classes in turn, each
 * class's pieces of taps in turn, its outputs np at a time (a piece's
 * weights stay in L1 across them).
 */
static void cd_strip(const struct cd_job *j, int thread, int64_t st, int64_t b0, int64_t b1)
{
	float *tile = (float *)(void *)(j->tiles + (size_t)thread * j->tbytes);
	int32_t *vidx = (int32_t *)(void *)(tile + j->strip * 64);
	int64_t q0 = st * j->strip, n = j->q - q0 < j->strip ? j->q - q0 : j->strip;
	int64_t d0 = q0, nv = n;
	struct cd_out out = { NULL, NULL, NULL, 16 * j->ohw, j->act, j->lo, j->hi };

	/* C-order Y: output q0 + i's row in the tile, for cd_store*, which
	 * reads 16 rows at a time (past nv, row 0). */
	if (!j->yblk) {
		memset(vidx + n, 0, 16 * sizeof(int32_t));
		for (int64_t s = 0; s < n; s++)
			vidx[j->ldst[q0 + s] - q0] = (int32_t)(s * 64);
	}
	for (int64_t bi = b0; bi < b1; bi += CD_FB) {
		int fb = b1 - bi < CD_FB ? (int)(b1 - bi) : CD_FB;
		int64_t m0 = bi * j->blk, rows = fb * j->blk;
		const float *w = j->wpk + bi * j->k * j->blk;

		if (rows > j->m - m0)
			rows = j->m - m0;
		/*
		 * The lines the stores below write are fetched while the
		 * microkernels run, when the output does not fit in L2: the
		 * stores go to `rows` planes a strip at a time, too many
		 * streams for the hardware prefetcher, and each missed line was
		 * waited for. See j.prefetch.
		 */
		if (nv > 0 && j->prefetch) {
			float *yy = j->y + m0 * j->ohw + d0;

			for (int64_t r = 0; r < rows; r++, yy += j->ohw) {
				for (int64_t i = 0; i < nv; i += 16)
					__builtin_prefetch(yy + i, 1, 3);
				__builtin_prefetch(yy + nv - 1, 1, 3);
			}
		}
		out.dst = j->y + m0 * j->ohw;
		out.res = j->res != NULL ? j->res + m0 * j->ohw : NULL;
		for (int32_t g = j->gofs[st]; g < j->gofs[st + 1]; g++) {
			const struct cd_grp *gr = &j->grp[g];
			const struct cd_piece *p0 = j->piece + j->cofs[gr->cls];
			const struct cd_piece *pe = j->piece + j->cofs[gr->cls + 1];

			for (const struct cd_piece *pc = p0; pc < pe; pc++) {
				int last = pc + 1 == pe && j->yblk;

				for (int64_t p = 0; p < gr->n; p += j->np) {
					int np = gr->n - p < j->np ? (int)(gr->n - p) : (int)j->np;
					int64_t sl = gr->start + p;

					out.dpos = j->ldst + q0 + sl;
					j->kern[(fb - 1) * j->np + (np - 1)](
						j->xp, j->lpos + q0 + sl, j->off + pc->k0, pc->kc,
						w + pc->k0 * j->blk, j->k * j->blk, j->bias + m0,
						tile + sl * 64, pc > p0, last ? &out : NULL);
				}
			}
		}
		if (nv == 0 || j->yblk) /* blocked Y: stored by the last piece */
			continue;
		if (j->blk == 16)
			cd_store512(tile, vidx, nv, j->y + m0 * j->ohw + d0, j->ohw, rows,
				    j->act, j->lo, j->hi);
		else
			cd_store256(tile, vidx, nv, j->y + m0 * j->ohw + d0, j->ohw, rows,
				    j->act, j->lo, j->hi);
	}
}

static void cd_tiles(void *arg, int64_t begin, int64_t end, int thread)
{
	const struct cd_job *j = arg;

	for (int64_t t = begin; t < end; t++) {
		int64_t st = t / j->mgroups, grp = t % j->mgroups;
		int64_t b0 = grp * j->mper, b1 = b0 + j->mper < j->mb ? b0 + j->mper : j->mb;

		cd_strip(j, thread, st, b0, b1);
	}
}

struct cd_pad_job {
	const float *x;         /* image [C][h][w] */
	float *xp;              /* padded [C][plane] */
	const struct lr_geom *g;
	int64_t wp, plane;      /* grid width and plane size */
};

/* Padded copy of channels [begin, end), one plane each. */
static void cd_pad(void *arg, int64_t begin, int64_t end)
{
	const struct cd_pad_job *j = arg;
	const struct lr_geom *g = j->g;
	int64_t hp = g->h + g->pt + g->pb;

	for (int64_t ch = begin; ch < end; ch++) {
		const float *src = j->x + ch * g->h * g->w;
		float *dst = j->xp + ch * j->plane;

		if (g->pl == 0 && g->pr == 0) { /* rows are contiguous */
			memset(dst, 0, (size_t)(g->pt * j->wp) * sizeof(float));
			memcpy(dst + g->pt * j->wp, src, (size_t)(g->h * g->w) * sizeof(float));
			memset(dst + (g->pt + g->h) * j->wp, 0,
			       (size_t)(g->pb * j->wp) * sizeof(float));
		} else {
			lr__phase_plane(src, g->h, g->w, 1, 1, -g->pt, -g->pl, dst, hp, j->wp);
		}
		memset(dst + hp * j->wp, 0, (size_t)(j->plane - hp * j->wp) * sizeof(float));
	}
}

/* Padded copy of channel blocks [begin, end) of a blocked image: each
 * padded position's 16 channels together, zeros around. */
static void cd_pad_blk(void *arg, int64_t begin, int64_t end)
{
	const struct cd_pad_job *j = arg;
	const struct lr_geom *g = j->g;
	int64_t wp = j->wp;

	for (int64_t cb = begin; cb < end; cb++) {
		const float *src = j->x + cb * g->h * g->w * 16;
		float *dst = j->xp + cb * j->plane * 16;

		memset(dst, 0, (size_t)(g->pt * wp * 16) * sizeof(float));
		for (int64_t r = 0; r < g->h; r++) {
			float *row = dst + (g->pt + r) * wp * 16;

			memset(row, 0, (size_t)(g->pl * 16) * sizeof(float));
			memcpy(row + g->pl * 16, src + r * g->w * 16, (size_t)(g->w * 16) * sizeof(float));
			memset(row + (g->pl + g->w) * 16, 0, (size_t)(g->pr * 16) * sizeof(float));
		}
		memset(dst + (g->pt + g->h) * wp * 16, 0,
		       (size_t)((j->plane - (g->pt + g->h) * wp) * 16) * sizeof(float));
	}
}

struct cd_pack_job {
	const float *w, *b;     /* [M][K], [M] or NULL */
	float *wpk, *bias;
	int64_t m, k, blk;
	int64_t ch, win;        /* tap-major (ch > 0): C and kh * kw */
};

/* Packs filter blocks [begin, end): [K][blk] each, zeros past M; taps in
 * ONNX's (c, ki, kj) order, or (ki, kj, c) when j->ch > 0. */
static void cd_pack(void *arg, int64_t begin, int64_t end)
{
	const struct cd_pack_job *j = arg;

	for (int64_t bi = begin; bi < end; bi++) {
		float *dst = j->wpk + bi * j->k * j->blk;

		for (int64_t i = 0; i < j->blk; i++) {
			int64_t m = bi * j->blk + i;

			j->bias[m] = m < j->m && j->b != NULL ? j->b[m] : 0.0f;
			for (int64_t t = 0; t < j->k; t++) {
				int64_t src = j->ch > 0 ? t % j->ch * j->win + t / j->ch : t;

				dst[t * j->blk + i] = m < j->m ? j->w[m * j->k + src] : 0.0f;
			}
		}
	}
}

/*
 * Output classes. Along one axis, output o's taps k in [a, b) fall inside
 * the image (all of them when the image is read padded). cd_windows gives
 * each output its window's index (id[o]) among the distinct ones (win[],
 * up to nout of them) and returns how many there are.
 */
struct cd_win {
	int64_t a, b;
};

static int64_t cd_windows(int64_t nout, int64_t stride, int64_t pad, int64_t size, int64_t k,
			  int skip, struct cd_win *win, int32_t *id)
{
	int64_t nw = 0;

	for (int64_t o = 0; o < nout; o++) {
		int64_t i0 = o * stride - pad, a = 0, b = k, i;

		if (skip) {
			a = i0 < 0 ? -i0 : 0;
			b = size - i0 < k ? size - i0 : k;
			if (b < a)
				b = a;
		}
		for (i = 0; i < nw && (win[i].a != a || win[i].b != b); i++)
			;
		if (i == nw)
			win[nw++] = (struct cd_win){ a, b };
		id[o] = (int32_t)i;
	}
	return nw;
}

/*
 * The pieces (<= CD_KC taps) that an output of row window r and column
 * window cl sums, into pc (NULL: count only); returns their number. Read
 * padded, every tap; else taps are tap-major ((ki * kw + kj) * C + c),
 * so the rows r.a..r.b of full columns are one run and each row of a
 * column window is one. No tap inside: one empty piece, which stores
 * bias (+ residual, activation).
 */
static int64_t cd_pieces(struct cd_win r, struct cd_win cl, int64_t kw, int64_t ch, int64_t kk,
			 int skip, struct cd_piece *pc)
{
	int64_t n = 0, runs = 1, lo = 0, hi = kk;

	if (skip && (cl.a != 0 || cl.b != kw))
		runs = r.b - r.a;
	for (int64_t i = 0; i < runs; i++) {
		if (skip && runs == 1 && cl.a == 0 && cl.b == kw) {
			lo = r.a * kw * ch;
			hi = r.b * kw * ch;
		} else if (skip) {
			lo = ((r.a + i) * kw + cl.a) * ch;
			hi = ((r.a + i) * kw + cl.b) * ch;
		}
		for (int64_t k0 = lo; k0 < hi; k0 += CD_KC, n++)
			if (pc != NULL)
				pc[n] = (struct cd_piece){ (int32_t)k0,
							   (int32_t)(hi - k0 < CD_KC ? hi - k0 : CD_KC) };
	}
	if (n == 0 && pc != NULL)
		pc[0] = (struct cd_piece){ 0, 0 };
	return n > 0 ? n : 1;
}

/*
 * Cuts one image's work into tasks for nthr threads: strips of j->strip
 * positions (j->nstrips of them) and filter groups of j->mper blocks
 * (j->mgroups). long_strips: the weights do not stay in L2 between
 * strips (see below).
 */
static void cd_plan(struct cd_job *j, int nthr, int long_strips)
{
	/*
	 * Strips of at most CD_STRIP calls, all of one length (a last strip
	 * of a few positions would stream every weight again for them), and
	 * one strip for up to CD_TILEP outputs: ResNet-50's 7x7 layers
	 * (49 outputs, up to 9 MiB of weights) read their weights once
	 * instead of twice.
	 *
	 * Every strip streams the weights of its filter blocks once, so
	 * weights that do not stay in L2 between strips (more than CD_LONGW)
	 * take long strips instead, of up to CD_LONGP positions, whose tile
	 * (up to 252 KiB) lives in L2: the weights are read once per CD_LONGP
	 * outputs rather than once per 48, as ONNX Runtime's NCHWc
	 * convolution reads a filter block's weights once per row range and
	 * accumulates over the image in its output. VGG-16's 512 -> 512 3x3 at
	 * 28x28 (9.4 MiB of weights, 17 strips before, one now): 21.8 ->
	 * 19.8 ms, 1 thread (docs/benchmarks.md). LR_NO_LONG_STRIPS: off.
	 */
	{
		int64_t cap = CD_STRIP * j->np, one = CD_TILEP;

		if (long_strips) {
			cap = CD_LONGP / j->np * j->np;
			one = cap;
			j->prefetch = 0; /* a strip's stores are too far ahead */
		}
		j->nstrips = j->q <= one ? 1 : (j->q + cap - 1) / cap;
		j->strip = ((j->q + j->nstrips - 1) / j->nstrips + j->np - 1) / j->np * j->np;
		if (j->strip > one)
			j->strip = one / j->np * j->np;
		j->nstrips = (j->q + j->strip - 1) / j->strip;
	}
	/*
	 * Enough tasks for every thread: filter groups first (each reads its
	 * share of the weights once), then shorter strips. Groups of long
	 * strips keep CD_FB blocks (a group of one block runs the one-block
	 * kernels, at about half the rate: ResNet-50's 128 -> 128 3x3 at 28x28
	 * made ResNet-50 12% slower on 2 threads that way). Layers of up to
	 * CD_THIN_BLOCKS blocks take strips only, so that each thread reads
	 * the rows of its own strips rather than every row for a share of
	 * the filters: a compressed ResNet-50's 32-filter 3x3 at 14x14 alone,
	 * 2 threads, 0.150 -> 0.121 ms; the whole model 2-5% faster on 2
	 * threads (docs/benchmarks.md, 2026-12-05). LR_CD_THIN_GROUPS (set):
	 * groups for them too.
	 */
	{
		int64_t gmax = long_strips ? (j->mb / CD_FB > 1 ? j->mb / CD_FB : 1) : j->mb;

		/* Tasks per thread wanted: 4 to balance, but 1 for long strips,
		 * whose groups then split the filters (each thread streams its
		 * share of the weights once): with 4, ResNet-50's 14x14 layers
		 * went on to split positions, every thread streaming every
		 * weight, and six 256 -> 256 3x3 at 14x14 ran 10% slower on 2
		 * threads; ResNet-50 2% (bench --ab, 2026-12-05). */
		int64_t per = long_strips ? 1 : 4;

		if (!long_strips && j->mb <= CD_THIN_BLOCKS && getenv("LR_CD_THIN_GROUPS") == NULL)
			gmax = 1;

		j->mgroups = 1;
		while (nthr > 1 && j->nstrips * j->mgroups < per * (int64_t)nthr && j->mgroups < gmax)
			j->mgroups++;
		/* Strips stay of equal length: shortening them by one call at
		 * a time cut ResNet-50's 256 -> 256 3x3 stride 2 (196 outputs)
		 * into strips of 192 and 4 positions, and that layer ran no
		 * faster on 2 threads than on 1 (1.1 ms alone; 0.91-0.99 ms
		 * with two strips of 102 and 94). */
		for (int64_t ns = j->nstrips;
		     nthr > 1 && j->nstrips * j->mgroups < per * (int64_t)nthr && j->strip > j->np;) {
			ns++;
			j->strip = ((j->q + ns - 1) / ns + j->np - 1) / j->np * j->np;
			j->nstrips = (j->q + j->strip - 1) / j->strip;
		}
	}
	j->mper = (j->mb + j->mgroups - 1) / j->mgroups;
	j->mgroups = (j->mb + j->mper - 1) / j->mper;
}

int lr__conv_direct_worth(int isa, const struct lr_geom *g, int64_t m)
{
	/* Every shape, when there are kernels (see DESIGN); kept as the one
	 * place to decline shapes should a CPU favour the other paths. */
	(void)g;
	(void)m;
	return isa != CD_NONE;
}

int lr__conv_direct(lr_opctx *c, const lr_tensor *x, const lr_tensor *w,
		    const lr_tensor *b, lr_tensor *y, const struct lr_geom *g)
{
	struct cd_job j;
	int isa = cd_isa();
	int64_t hp = g->h + g->pt + g->pb, wp = g->w + g->pl + g->pr;
	int64_t plane, ntasks, m = w->dims[0], mb, kk, blk, tag, nrw, ncw, ncls, npc = 0, ngrp;
	int nthr = lr_pool_size(c->pool);
	int pad = g->pt != 0 || g->pl != 0 || g->pb != 0 || g->pr != 0, skip;
	size_t wbytes, sbytes;
	float *packed = NULL, *own = NULL;
	char *s, *sown = NULL;
	const float *resd;
	int32_t *off, *rid = NULL, *cid = NULL, *cnt = NULL;
	struct cd_win *rw = NULL, *cw = NULL;
	int rc = 0, long_strips, xblk, yblk, inres, rows;

	if (isa == CD_NONE || getenv("LR_NO_CONV_DIRECT") != NULL ||
	    g->sh < 1 || g->sw < 1 || g->dh != 1 || g->dw != 1)
		return 1;
	/* Channel-blocked input or output: 16 channels, 4-D only. */
	xblk = x->blocked != 0;
	yblk = c->out_blocked && x->ndim == 4 && m % 16 == 0;
	if ((xblk || yblk) && (isa != CD_AVX512 || x->ndim != 4 || (xblk && (x->blocked != 16 ||
							       g->c % 16 != 0))))
		return 1;
	if ((g->sh != 1 || g->sw != 1) && getenv("LR_NO_CONV_DIRECT_STRIDED") != NULL)
		return 1;
	if (!xblk && !yblk && !lr__conv_direct_worth(isa, g, m) &&
	    getenv("LR_CONV_DIRECT_FORCE") == NULL)
		return 1;
	plane = hp * wp;
	kk = g->c * g->kh * g->kw;
	/* Offsets are int32. */
	if (g->c * plane + 64 > INT32_MAX || kk > INT32_MAX / 16 || g->oh * g->ow > INT32_MAX / 2)
		return 1;
	blk = isa == CD_AVX512 ? 16 : 8;
	mb = (m + blk - 1) / blk;
	/* Blocked X is read in place, padded or not (see DESIGN);
	 * LR_BLK_PAD_COPY (set): through a padded copy, as C order. */
	skip = xblk && pad && getenv("LR_BLK_PAD_COPY") == NULL;
	if (skip)
		pad = 0;

	/*
	 * Packed weights, then bias: from the cache when the weights are
	 * constant. The cache's `bytes` is the size plus 1 (16-wide blocks)
	 * or 2 (8-wide): a 32-byte multiple never matches it, and Winograd's
	 * U (a 64-byte multiple) never matches ours.
	 */
	wbytes = (size_t)(mb * blk) * (size_t)(kk + 1) * sizeof(float);
	tag = skip ? 3 : blk == 16 ? 1 : 2; /* 3: tap-major */
	if (c->cache != NULL && c->cache->key == w->data &&
	    c->cache->bytes == wbytes + (size_t)tag) {
		packed = c->cache->data;
	} else {
		struct cd_pack_job pj;

		packed = lr_alloc_aligned(wbytes);
		if (packed == NULL)
			return LR_ENOMEM;
		pj.w = w->data;
		pj.b = b != NULL ? b->data : NULL;
		pj.wpk = packed;
		pj.bias = packed + mb * blk * kk;
		pj.m = m;
		pj.k = kk;
		pj.blk = blk;
		pj.ch = skip ? g->c : 0;
		pj.win = g->kh * g->kw;
		lr_pool_run(c->pool, mb, 1, cd_pack, &pj);
		if (c->cache != NULL && !c->cache_ro) {
			lr_free_aligned(c->cache->data);
			c->cache->data = packed;
			c->cache->key = w->data;
			c->cache->bytes = wbytes + (size_t)tag;
		} else {
			own = packed;
		}
	}

	memset(&j, 0, sizeof(j));
	j.wpk = packed;
	j.bias = packed + mb * blk * kk;
	j.k = kk;
	j.m = m;
	j.mb = mb;
	j.blk = blk;
	j.wp = pad ? wp : g->w;
	j.sy = g->sh;
	j.sx = g->sw;
	j.ow = g->ow;
	j.ohw = g->oh * g->ow;
	j.q = g->oh * g->ow;
	j.np = isa == CD_AVX512 ? CD_NP512 : CD_NP256;
	j.kern = isa == CD_AVX512 ? &cd512_k[0][0] : &cd256_k[0][0];
	if (isa == CD_AVX512 && mb == 1 && getenv("LR_CD_NP6") == NULL) {
		j.np = CD_NP1;
		j.kern = cd512_k1;
	}
	j.act = c->act;
	j.lo = c->act_lo;
	j.hi = c->act_hi;
	/* A fused residual (c->res) is added as the sums are stored into
	 * blocked Y; otherwise the caller adds it, and the activation after
	 * it, to what this returns (lr_op_conv). */
	inres = c->res != NULL && yblk && c->res->blocked == 16;
	if (c->res != NULL && !inres)
		j.act = LR_ACT_NONE;
	/*
	 * Outputs of 1 MiB and more per image (LR_NO_PREFETCH: never): 1
	 * thread, AVX-512, ResNet-50 1-2.5% and VGG-16 2.4% faster; on
	 * small outputs, which stay in cache, the prefetches only cost (a
	 * compressed Fashion-MNIST ResNet 4% slower when every layer did).
	 */
	j.prefetch = m * j.ohw * (int64_t)sizeof(float) >= (1 << 20) && !yblk &&
		     getenv("LR_NO_PREFETCH") == NULL;
	j.yblk = yblk;
	j.pmul = xblk ? 16 : 1;
	long_strips = (int64_t)wbytes > CD_LONGW && getenv("LR_NO_LONG_STRIPS") == NULL;
	cd_plan(&j, nthr, long_strips);

	/*
	 * Output classes: the distinct (row, column) windows of taps inside
	 * the image; one class of every tap when the image is read padded.
	 */
	rid = malloc((size_t)(g->oh + g->ow) * sizeof(*rid));
	rw = malloc((size_t)(g->oh + g->ow) * sizeof(*rw));
	if (rid == NULL || rw == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	cid = rid + g->oh;
	cw = rw + g->oh;
	nrw = cd_windows(g->oh, g->sh, g->pt, g->h, g->kh, skip, rw, rid);
	ncw = cd_windows(g->ow, g->sw, g->pl, g->w, g->kw, skip, cw, cid);
	ncls = nrw * ncw;
	for (int64_t r = 0; r < nrw; r++)
		for (int64_t cl = 0; cl < ncw; cl++)
			npc += cd_pieces(rw[r], cw[cl], g->kw, g->c, kk, skip, NULL);
	/*
	 * Engines that price (c->pricing) keep outputs in row order and
	 * group only runs of one class, as ONNX Runtime's NCHWc kernels go
	 * row by row, an output with left or right padding on its own: on
	 * 7x7 maps, outputs of a column class gathered across rows ran a
	 * 3x3 over 128 channels 15-18% faster than ONNX Runtime, where the
	 * pricing kernels are to cost what its kernels cost.
	 * LR_NO_PRICE_ROWS (set): gathered there too.
	 */
	rows = skip && c->pricing && getenv("LR_NO_PRICE_ROWS") == NULL;
	ngrp = rows ? j.q : j.nstrips * (ncls < j.strip ? ncls : j.strip);
	cnt = malloc((size_t)(ncls + 1 + 2 * j.q) * sizeof(*cnt));
	if (cnt == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}

	/*
	 * Scratch: the padded image (when padded), the tables (offsets,
	 * output lists, groups, class pieces) and each thread's strip
	 * buffers.
	 */
	{
		size_t xbytes = pad ? ((size_t)(g->c * plane + 64) * sizeof(float) + 63) /
				      64 * 64 : 0;
		size_t obytes = ((size_t)(kk + 2 * j.q + j.nstrips + 1 + ncls + 1) * sizeof(int32_t) +
				 (size_t)ngrp * sizeof(struct cd_grp) +
				 (size_t)npc * sizeof(struct cd_piece) + 63) / 64 * 64;

		j.tbytes = cd_tile_bytes(j.strip);
		sbytes = xbytes + obytes + (size_t)nthr * j.tbytes;
		s = lr_op_scratch(c, 0, sbytes);
		if (s == NULL) {
			s = sown = lr_alloc_aligned(sbytes);
			if (s == NULL) {
				rc = LR_ENOMEM;
				goto out;
			}
		}
		off = (int32_t *)(void *)(s + xbytes);
		j.tiles = s + xbytes + obytes;
	}
	if (skip) {
		/* Tap (ki, kj, ch) of the image itself: channel ch is lane
		 * ch % 16 of block ch / 16. */
		for (int64_t ki = 0, t = 0; ki < g->kh; ki++)
			for (int64_t kj = 0; kj < g->kw; kj++)
				for (int64_t ch = 0; ch < g->c; ch++, t++)
					off[t] = (int32_t)(((ki * g->w + kj) + (ch / 16) * g->h * g->w) *
							   16 + ch % 16);
	} else {
		/* Tap (ch, ki, kj): a kernel window's offsets first, then
		 * one add per tap. */
		int64_t pstride = pad ? plane : g->h * g->w, row = pad ? wp : g->w;
		int64_t win = g->kh * g->kw;

		for (int64_t ki = 0, t = 0; ki < g->kh; ki++)
			for (int64_t kj = 0; kj < g->kw; kj++, t++)
				off[t] = (int32_t)((ki * row + kj) * j.pmul);
		/* Blocked: channel ch is lane ch % 16 of block ch / 16. */
		for (int64_t ch = 1; ch < g->c; ch++)
			for (int64_t t = 0; t < win; t++)
				off[ch * win + t] = (int32_t)(off[t] + (xblk ? (ch / 16) * pstride * 16 +
									ch % 16 : ch * pstride));
	}
	j.off = off;
	{
		/*
		 * Each strip's outputs grouped by class, with where each reads
		 * the grid: ((oy * sy - pt) * w + ox * sx - pl) * 16 read in
		 * place (negative for the top rows: their taps above the image
		 * are not read), (oy * sy * wp + ox * sx) * pmul padded. The
		 * same for every image. Made once per call, by adds: made per
		 * strip with multiplies it was 7% of a compressed Fashion-MNIST
		 * ResNet at batch 8.
		 */
		int32_t *lpos = off + kk, *ldst = lpos + j.q, *gofs = ldst + j.q;
		int32_t *cofs = gofs + j.nstrips + 1;
		struct cd_grp *grp = (struct cd_grp *)(void *)(cofs + ncls + 1);
		struct cd_piece *piece = (struct cd_piece *)(void *)(grp + ngrp);
		int64_t step = g->sw * j.pmul, down = g->sh * j.wp * j.pmul;
		int64_t org = skip ? -(g->pt * g->w + g->pl) * 16 : 0, ng = 0;

		cofs[0] = 0;
		for (int64_t r = 0, k = 0; r < nrw; r++)
			for (int64_t cl = 0; cl < ncw; cl++, k++)
				cofs[k + 1] = cofs[k] + (int32_t)cd_pieces(rw[r], cw[cl], g->kw, g->c, kk,
									   skip, piece + cofs[k]);
		/* Output q's class and where it reads, walked once in row order. */
		int32_t *qc = cnt + ncls + 1, *qp = qc + j.q;

		for (int64_t q = 0, oy = 0, ox = 0; q < j.q; q++) {
			qc[q] = rid[oy] * (int32_t)ncw + cid[ox];
			qp[q] = (int32_t)(org + oy * down + ox * step);
			if (++ox == g->ow) {
				ox = 0;
				oy++;
			}
		}
		gofs[0] = 0;
		for (int64_t st = 0; st < j.nstrips; st++) {
			int64_t q0 = st * j.strip, n = j.q - q0 < j.strip ? j.q - q0 : j.strip;

			if (rows) { /* runs of one class, in row order */
				for (int64_t q = q0; q < q0 + n; q++) {
					if (q == q0 || grp[ng - 1].cls != qc[q])
						grp[ng++] = (struct cd_grp){ qc[q], (int32_t)(q - q0), 0 };
					grp[ng - 1].n++;
					lpos[q] = qp[q];
					ldst[q] = (int32_t)q;
				}
				gofs[st + 1] = (int32_t)ng;
				continue;
			}
			memset(cnt, 0, (size_t)(ncls + 1) * sizeof(*cnt));
			for (int64_t q = q0; q < q0 + n; q++)
				cnt[qc[q] + 1]++;
			for (int64_t k = 0; k < ncls; k++) {
				if (cnt[k + 1] > 0)
					grp[ng++] = (struct cd_grp){ (int32_t)k, cnt[k], cnt[k + 1] };
				cnt[k + 1] += cnt[k]; /* now: class k + 1's first slot */
			}
			gofs[st + 1] = (int32_t)ng;
			for (int64_t q = q0; q < q0 + n; q++) {
				int64_t sl = q0 + cnt[qc[q]]++;

				lpos[sl] = qp[q];
				ldst[sl] = (int32_t)q;
			}
		}
		j.lpos = lpos;
		j.ldst = ldst;
		j.gofs = gofs;
		j.grp = grp;
		j.cofs = cofs;
		j.piece = piece;
	}
	ntasks = j.nstrips * j.mgroups;
	/* In the residual's own buffer when the engine offers it: each
	 * element is read just before the last chunk stores it. */
	resd = inres ? lr__res_inplace(c, y, 16) : NULL;
	for (int64_t n = 0; n < g->n; n++) {
		const float *xn = (const float *)x->data + n * g->c * g->h * g->w;

		if (pad) {
			struct cd_pad_job pj = { xn, (float *)(void *)s, g, wp, plane };

			if (xblk)
				lr_pool_run(c->pool, g->c / 16, 1, cd_pad_blk, &pj);
			else
				lr_pool_run(c->pool, g->c, 1, cd_pad, &pj);
			j.xp = (float *)(void *)s;
		} else {
			j.xp = xn;
		}
		j.y = (float *)y->data + n * m * j.ohw;
		j.res = inres ? resd + n * m * j.ohw : NULL;
		lr_pool_run_indexed(c->pool, ntasks, 1, cd_tiles, &j);
	}
	y->blocked = yblk ? 16 : 0;
	c->res_done = inres;
out:
	free(rid);
	free(rw);
	free(cnt);
	lr_free_aligned(sown);
	lr_free_aligned(own);
	return rc;
}
#else /* !CD_X86: no kernels; the other paths run every Conv */
int lr__conv_direct_worth(int isa, const struct lr_geom *g, int64_t m)
{
	(void)isa;
	(void)g;
	(void)m;
	return 0;
}

int lr__conv_direct(lr_opctx *c, const lr_tensor *x, const lr_tensor *w,
		    const lr_tensor *b, lr_tensor *y, const struct lr_geom *g)
{
	(void)c; (void)x; (void)w; (void)b; (void)y; (void)g;
	return 1;
}
#endif
