/*
 * ops_detect.c - the detection and spatial-transformer operators:
 * NonMaxSuppression (10, 11), RoiAlign (10, 16) and GridSample (16).
 *
 * DESIGN. These follow ONNX Runtime's CPU kernels where the specification
 * leaves room, since that is what exported detectors are validated
 * against:
 *
 * - NonMaxSuppression, per batch and class: boxes whose score exceeds
 *   score_threshold (when given) are visited by descending score (equal
 *   scores: lower box index first); a box is kept unless its IoU with a
 *   box already kept exceeds iou_threshold; at most
 *   max_output_boxes_per_class are kept (absent or 0: none). Boxes are
 *   [y1, x1, y2, x2] in either corner order, or with center_point_box=1
 *   [x_center, y_center, width, height]. The int64 output [K, 3] holds
 *   (batch, class, box) in that order; its size depends on the values, so
 *   a dry run without the boxes and scores reports LR_EUNSUPPORTED.
 * - RoiAlign averages (or takes the maximum of, as ONNX Runtime does it:
 *   the largest weighted corner) bilinear samples on a regular grid in
 *   each bin; sampling_ratio 0 means ceil(roi size / bins) samples.
 *   coordinate_transformation_mode is output_half_pixel (no shift, rois at
 *   least one pixel) in opset 10 and half_pixel (shift by -0.5) by default
 *   from 16. Samples more than one pixel outside the image count as 0.
 *   The sampling grid is capped at 1024 x 1024 per bin, so a hostile roi
 *   cannot turn into an endless loop (real rois need a handful).
 * - GridSample maps normalised grid coordinates to pixels (align_corners
 *   decides whether -1/1 are the centres or the outer edges of the corner
 *   pixels), handles out-of-range coordinates by padding_mode (zeros,
 *   border clamps, reflection mirrors about the edges), then samples
 *   nearest (half to even), bilinear or bicubic (A = -0.75, 4x4 taps, each
 *   tap read through the padding rule).
 *
 * All inputs are float except NMS's max_output_boxes_per_class and
 * RoiAlign's batch_indices (int64); every batch index and shape is
 * checked before use. Work is small next to the convolutions around
 * these ops, so the loops are plain.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/ops.h"

#define SHP(nd, d) lr_shape_str((nd), (d), (char[200]){ 0 }, 200)
#define TSHP(t) SHP((t)->ndim, (t)->dims)

/* ---- NonMaxSuppression -------------------------------------------------- */

struct cand { float s; int64_t i; };

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->s != y->s)
		return x->s > y->s ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* Box k of a batch as (ymin, xmin, ymax, xmax). */
static void box_corners(const float *b, int center, float *o)
{
	if (center) {
		o[0] = b[1] - b[3] / 2;
		o[1] = b[0] - b[2] / 2;
		o[2] = b[1] + b[3] / 2;
		o[3] = b[0] + b[2] / 2;
	} else {
		o[0] = fminf(b[0], b[2]);
		o[1] = fminf(b[1], b[3]);
		o[2] = fmaxf(b[0], b[2]);
		o[3] = fmaxf(b[1], b[3]);
	}
}

static int iou_exceeds(const float *a, const float *b, float thr)
{
	float ih = fminf(a[2], b[2]) - fmaxf(a[0], b[0]);
	float iw = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
	float inter, aa, ab;

	if (ih <= 0 || iw <= 0)
		return 0;
	inter = ih * iw;
	aa = (a[2] - a[0]) * (a[3] - a[1]);
	ab = (b[2] - b[0]) * (b[3] - b[1]);
	if (aa <= 0 || ab <= 0)
		return 0;
	return inter / (aa + ab - inter) > thr;
}

/* Reads the one-element float input i, or keeps *v when absent. */
static int scalar_f(lr_opctx *c, lr_tensor **in, int nin, int i, const char *name, float *v)
{
	if (i >= nin || in[i] == NULL)
		return 0;
	if (in[i]->dtype != LR_DT_FLOAT || in[i]->nelem != 1)
		return lr_op_fail(c, LR_EMODEL, "input %d (%s) must be one float, got %s %s",
				  i, name, lr_dtype_name(in[i]->dtype), TSHP(in[i]));
	if (in[i]->data == NULL)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input %d (%s) has no data", i, name);
	*v = *(const float *)in[i]->data;
	return 0;
}

/*
 * NonMaxSuppression: boxes [B, S, 4], scores [B, C, S], optional
 * max_output_boxes_per_class (int64), iou_threshold, score_threshold
 * (floats); selected_indices [K, 3] int64. See DESIGN.
 */
int lr_op_nms(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *bx, *sc;
	int center = lr_node_attr_int(c->node, "center_point_box", 0) != 0;
	int64_t maxo = 0, nb, ns, ncls, total = 0, od[2];
	float iou = 0, sthr = 0;
	int has_sthr = nin > 4 && in[4] != NULL;
	struct cand *cd = NULL;
	int64_t *sel = NULL, *res = NULL;
	float *corners = NULL;
	int rc;

	(void)nout;
	if (nin < 2 || in[0] == NULL || in[1] == NULL)
		return lr_op_fail(c, LR_EMODEL, "inputs 0 (boxes) and 1 (scores) are required");
	bx = in[0];
	sc = in[1];
	if (bx->dtype != LR_DT_FLOAT || sc->dtype != LR_DT_FLOAT)
		return lr_op_fail(c, LR_EUNSUPPORTED, "inputs 0 (boxes) and 1 (scores) must be float");
	if (bx->ndim != 3 || bx->dims[2] != 4 || sc->ndim != 3 || sc->dims[0] != bx->dims[0] ||
	    sc->dims[2] != bx->dims[1])
		return lr_op_fail(c, LR_ESHAPE, "input 0 (boxes) %s must be [B,S,4] and input 1 (scores) %s [B,C,S]",
				  TSHP(bx), TSHP(sc));
	if (nin > 2 && in[2] != NULL) {
		int64_t v[1];
		int cnt;

		if (in[2]->dtype != LR_DT_INT64)
			return lr_op_fail(c, LR_EMODEL, "input 2 (max_output_boxes_per_class) must be int64");
		cnt = lr_op_ints_input(c, in, nin, 2, v, 1);
		if (cnt < 0)
			return cnt;
		maxo = cnt == 1 ? v[0] : 0;
	}
	if ((rc = scalar_f(c, in, nin, 3, "iou_threshold", &iou)) != 0 ||
	    (rc = scalar_f(c, in, nin, 4, "score_threshold", &sthr)) != 0)
		return rc;
	if (iou < 0 || iou > 1)
		return lr_op_fail(c, LR_EMODEL, "input 3 (iou_threshold) %g is outside [0, 1]", (double)iou);
	if (bx->data == NULL || sc->data == NULL)
		return lr_op_fail(c, c->dry ? LR_EUNSUPPORTED : LR_EINVAL,
				  "the output size depends on the values of inputs 0 (boxes) and 1 (scores)");
	nb = bx->dims[0];
	ns = bx->dims[1];
	ncls = sc->dims[1];
	if (maxo < 0)
		maxo = 0;
	if (maxo > ns)
		maxo = ns;
	cd = malloc((size_t)(ns > 0 ? ns : 1) * sizeof(*cd));
	sel = malloc((size_t)(ns > 0 ? ns : 1) * sizeof(*sel));
	corners = malloc((size_t)(ns > 0 ? ns : 1) * 4 * sizeof(float));
	/* at most maxo per (batch, class): bounded by the scores' size */
	res = malloc((size_t)(nb * ncls * maxo > 0 ? nb * ncls * maxo : 1) * 3 * sizeof(int64_t));
	if (cd == NULL || sel == NULL || corners == NULL || res == NULL) {
		rc = lr_op_fail(c, LR_ENOMEM, "out of memory for %lld boxes", (long long)ns);
		goto out;
	}
	for (int64_t b = 0; b < nb; b++) {
		for (int64_t k = 0; k < ns; k++)
			box_corners((const float *)bx->data + (b * ns + k) * 4, center, corners + k * 4);
		for (int64_t cl = 0; cl < ncls && maxo > 0; cl++) {
			const float *s = (const float *)sc->data + (b * ncls + cl) * ns;
			int64_t nc = 0, nsel = 0;

			for (int64_t k = 0; k < ns; k++)
				if (!has_sthr || s[k] > sthr) {
					cd[nc].s = s[k];
					cd[nc++].i = k;
				}
			qsort(cd, (size_t)nc, sizeof(*cd), cand_cmp);
			for (int64_t q = 0; q < nc && nsel < maxo; q++) {
				int keep = 1;

				for (int64_t p = 0; p < nsel && keep; p++)
					keep = !iou_exceeds(corners + cd[q].i * 4, corners + sel[p] * 4, iou);
				if (!keep)
					continue;
				sel[nsel++] = cd[q].i;
				res[total * 3] = b;
				res[total * 3 + 1] = cl;
				res[total * 3 + 2] = cd[q].i;
				total++;
			}
		}
	}
	od[0] = total;
	od[1] = 3;
	rc = lr_op_output(c, out, LR_DT_INT64, 2, od);
	if (rc == 0 && total > 0)
		memcpy((*out)->data, res, (size_t)total * 3 * sizeof(int64_t));
out:
	free(cd);
	free(sel);
	free(corners);
	free(res);
	return rc;
}

/* ---- RoiAlign ----------------------------------------------------------- */

/*
 * One bilinear sample of plane p [H, W] at (y, x), at most a pixel
 * outside (clamped to the edge as ONNX Runtime does); with is_max the
 * largest of the four weighted corners instead of their sum.
 */
static float roi_sample(const float *p, int64_t H, int64_t W, float y, float x, int is_max)
{
	int64_t yl, xl, yh, xh;
	float ly, lx;

	y = y <= 0 ? 0 : y;
	x = x <= 0 ? 0 : x;
	yl = (int64_t)y;
	xl = (int64_t)x;
	if (yl >= H - 1) {
		yh = yl = H - 1;
		y = (float)yl;
	} else {
		yh = yl + 1;
	}
	if (xl >= W - 1) {
		xh = xl = W - 1;
		x = (float)xl;
	} else {
		xh = xl + 1;
	}
	ly = y - (float)yl;
	lx = x - (float)xl;
	if (is_max)
		return fmaxf(fmaxf(fmaxf((1 - ly) * (1 - lx) * p[yl * W + xl], (1 - ly) * lx * p[yl * W + xh]),
				   ly * (1 - lx) * p[yh * W + xl]), ly * lx * p[yh * W + xh]);
	return (1 - ly) * (1 - lx) * p[yl * W + xl] + (1 - ly) * lx * p[yl * W + xh] +
	       ly * (1 - lx) * p[yh * W + xl] + ly * lx * p[yh * W + xh];
}

/*
 * RoiAlign: X [N, C, H, W], rois [R, 4] (x1, y1, x2, y2), batch_indices
 * [R] int64 -> [R, C, output_height, output_width]. See DESIGN.
 */
int lr_op_roialign(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x, *rois, *bi;
	int64_t ph = lr_node_attr_int(c->node, "output_height", 1);
	int64_t pw = lr_node_attr_int(c->node, "output_width", 1);
	int64_t sr = lr_node_attr_int(c->node, "sampling_ratio", 0), od[4], nr, H, W, C;
	float scale = lr_node_attr_float(c->node, "spatial_scale", 1.0f);
	char mb[8], cb[24];
	const char *mode = lr_node_attr_str(c->node, "mode", "avg", mb, sizeof(mb));
	const char *ctm = lr_node_attr_str(c->node, "coordinate_transformation_mode",
					   c->opset >= 16 ? "half_pixel" : "output_half_pixel", cb, sizeof(cb));
	int is_max, half;
	float *y;
	int rc;

	(void)nout;
	for (int i = 0; i < 3; i++)
		if (i >= nin || in[i] == NULL)
			return lr_op_fail(c, LR_EMODEL, "inputs 0 (X), 1 (rois) and 2 (batch_indices) are required");
	x = in[0];
	rois = in[1];
	bi = in[2];
	if (x->dtype != LR_DT_FLOAT || rois->dtype != LR_DT_FLOAT)
		return lr_op_fail(c, LR_EUNSUPPORTED, "inputs 0 (X) and 1 (rois) must be float");
	if (bi->dtype != LR_DT_INT64)
		return lr_op_fail(c, LR_EMODEL, "input 2 (batch_indices) must be int64");
	if (strcmp(mode, "avg") != 0 && strcmp(mode, "max") != 0)
		return lr_op_fail(c, LR_EMODEL, "attribute 'mode' must be avg or max, got '%s'", mode);
	is_max = mode[0] == 'm';
	if (strcmp(ctm, "half_pixel") != 0 && strcmp(ctm, "output_half_pixel") != 0)
		return lr_op_fail(c, LR_EMODEL, "attribute 'coordinate_transformation_mode' '%s' is not half_pixel or output_half_pixel", ctm);
	half = ctm[0] == 'h';
	if (x->ndim != 4 || rois->ndim != 2 || rois->dims[1] != 4 || bi->ndim != 1 ||
	    bi->dims[0] != rois->dims[0])
		return lr_op_fail(c, LR_ESHAPE, "input 0 (X) %s must be [N,C,H,W], input 1 (rois) %s [R,4], input 2 (batch_indices) %s [R]",
				  TSHP(x), TSHP(rois), TSHP(bi));
	if (ph < 1 || pw < 1 || ph > (1 << 16) || pw > (1 << 16) || sr < 0 || sr > (1 << 10))
		return lr_op_fail(c, LR_EMODEL, "output_height %lld, output_width %lld or sampling_ratio %lld is invalid",
				  (long long)ph, (long long)pw, (long long)sr);
	nr = rois->dims[0];
	C = x->dims[1];
	H = x->dims[2];
	W = x->dims[3];
	od[0] = nr;
	od[1] = C;
	od[2] = ph;
	od[3] = pw;
	rc = lr_op_output(c, out, LR_DT_FLOAT, 4, od);
	if (rc != 0 || (*out)->data == NULL || (*out)->nelem == 0)
		return rc;
	if (bi->data == NULL || rois->data == NULL || x->data == NULL) {
		rc = lr_op_fail(c, LR_EINVAL, "an input has no data");
		goto fail;
	}
	y = (*out)->data;
	for (int64_t r = 0; r < nr; r++) {
		const float *roi = (const float *)rois->data + r * 4;
		int64_t b = ((const int64_t *)bi->data)[r], gh, gw;
		float off = half ? 0.5f : 0.0f;
		float sw = roi[0] * scale - off, sh = roi[1] * scale - off;
		float rw = roi[2] * scale - off - sw, rh = roi[3] * scale - off - sh;
		float bh, bw;

		if (b < 0 || b >= x->dims[0]) {
			rc = lr_op_fail(c, LR_EMODEL, "input 2 (batch_indices) element %lld is %lld, outside [0, %lld)",
					(long long)r, (long long)b, (long long)x->dims[0]);
			goto fail;
		}
		if (!(fabsf(sw) < 1e9f && fabsf(sh) < 1e9f && fabsf(rw) < 1e9f && fabsf(rh) < 1e9f)) {
			rc = lr_op_fail(c, LR_EMODEL, "input 1 (rois) row %lld is not finite or too large", (long long)r);
			goto fail;
		}
		if (!half) {
			rw = fmaxf(rw, 1.0f);
			rh = fmaxf(rh, 1.0f);
		}
		bh = rh / (float)ph;
		bw = rw / (float)pw;
		gh = sr > 0 ? sr : (int64_t)ceilf(rh / (float)ph);
		gw = sr > 0 ? sr : (int64_t)ceilf(rw / (float)pw);
		if (gh > 1024)
			gh = 1024; /* a hostile roi must not turn into a huge loop */
		if (gw > 1024)
			gw = 1024;
		for (int64_t ch = 0; ch < C; ch++) {
			const float *p = (const float *)x->data + (b * C + ch) * H * W;

			for (int64_t py = 0; py < ph; py++)
				for (int64_t px = 0; px < pw; px++) {
					double acc = 0;
					float best = 0;
					int any = 0;
					int64_t cnt = gh * gw > 1 ? gh * gw : 1;

					for (int64_t iy = 0; iy < gh; iy++)
						for (int64_t ix = 0; ix < gw; ix++) {
							float yy = sh + (float)py * bh + ((float)iy + 0.5f) * bh / (float)gh;
							float xx = sw + (float)px * bw + ((float)ix + 0.5f) * bw / (float)gw;
							float v;

							if (yy < -1.0f || yy > (float)H || xx < -1.0f || xx > (float)W) {
								v = 0; /* more than a pixel outside */
							} else {
								v = roi_sample(p, H, W, yy, xx, is_max);
							}
							if (is_max) {
								best = any ? fmaxf(best, v) : v;
								any = 1;
							} else {
								acc += v;
							}
						}
					y[((r * C + ch) * ph + py) * pw + px] =
						is_max ? best : (float)(acc / (double)cnt);
				}
		}
	}
	return 0;
fail:
	lr_tensor_free(*out);
	*out = NULL;
	return rc;
}

/* ---- GridSample --------------------------------------------------------- */

enum gs_pad { GS_ZEROS, GS_BORDER, GS_REFLECT };

/* Mirrors x into [lo, hi] (ONNX Runtime's GsReflect). */
static float gs_reflect(float x, float lo, float hi)
{
	float range = hi - lo, d, r;
	long n;

	if (range <= 0)
		return lo;
	if (x < lo) {
		d = lo - x;
		n = (long)(d / range);
		r = d - (float)n * range;
		return n % 2 == 0 ? lo + r : hi - r;
	}
	if (x > hi) {
		d = x - hi;
		n = (long)(d / range);
		r = d - (float)n * range;
		return n % 2 == 0 ? hi - r : lo + r;
	}
	return x;
}

struct gs {
	const float *p;  /* one plane */
	int64_t H, W;
	enum gs_pad pad;
	float lo_x, hi_x, lo_y, hi_y; /* reflection bounds */
};

static float gs_pixel(const struct gs *g, int64_t r, int64_t col)
{
	if (g->pad == GS_ZEROS) {
		if (col < 0 || col >= g->W || r < 0 || r >= g->H)
			return 0;
	} else if (g->pad == GS_BORDER) {
		col = col < 0 ? 0 : col >= g->W ? g->W - 1 : col;
		r = r < 0 ? 0 : r >= g->H ? g->H - 1 : r;
	} else {
		col = (int64_t)gs_reflect((float)col, g->lo_x, g->hi_x);
		r = (int64_t)gs_reflect((float)r, g->lo_y, g->hi_y);
		col = col < 0 ? 0 : col >= g->W ? g->W - 1 : col;
		r = r < 0 ? 0 : r >= g->H ? g->H - 1 : r;
	}
	return g->p[r * g->W + col];
}

static void cubic_coeffs(float x, float *k)
{
	const float a = -0.75f;

	x = fabsf(x);
	k[0] = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a;
	k[1] = ((a + 2) * x - (a + 3)) * x * x + 1;
	k[2] = ((a + 2) * (1 - x) - (a + 3)) * (1 - x) * (1 - x) + 1;
	k[3] = ((a * (2 - x) - 5 * a) * (2 - x) + 8 * a) * (2 - x) - 4 * a;
}

/*
 * GridSample (16): X [N, C, H, W], grid [N, Ho, Wo, 2] of (x, y) in
 * [-1, 1] -> [N, C, Ho, Wo]; mode bilinear (default), nearest, bicubic;
 * padding_mode zeros (default), border, reflection; align_corners 0/1.
 */
int lr_op_gridsample(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	const lr_tensor *x, *gr;
	char mb[16], pb[16];
	const char *mode = lr_node_attr_str(c->node, "mode", "bilinear", mb, sizeof(mb));
	const char *pm = lr_node_attr_str(c->node, "padding_mode", "zeros", pb, sizeof(pb));
	int align = lr_node_attr_int(c->node, "align_corners", 0) != 0;
	int m; /* 0 bilinear, 1 nearest, 2 bicubic */
	int64_t od[4], H, W, Ho, Wo;
	struct gs g;
	int rc;

	(void)nout;
	if (nin < 2 || in[0] == NULL || in[1] == NULL)
		return lr_op_fail(c, LR_EMODEL, "inputs 0 (X) and 1 (grid) are required");
	x = in[0];
	gr = in[1];
	if (x->dtype != LR_DT_FLOAT || gr->dtype != LR_DT_FLOAT)
		return lr_op_fail(c, LR_EUNSUPPORTED, "inputs 0 (X) and 1 (grid) must be float");
	if (strcmp(mode, "bilinear") == 0 || strcmp(mode, "linear") == 0)
		m = 0;
	else if (strcmp(mode, "nearest") == 0)
		m = 1;
	else if (strcmp(mode, "bicubic") == 0 || strcmp(mode, "cubic") == 0)
		m = 2;
	else
		return lr_op_fail(c, LR_EMODEL, "attribute 'mode' '%s' is not bilinear, nearest or bicubic", mode);
	if (strcmp(pm, "zeros") == 0)
		g.pad = GS_ZEROS;
	else if (strcmp(pm, "border") == 0)
		g.pad = GS_BORDER;
	else if (strcmp(pm, "reflection") == 0)
		g.pad = GS_REFLECT;
	else
		return lr_op_fail(c, LR_EMODEL, "attribute 'padding_mode' '%s' is not zeros, border or reflection", pm);
	if (x->ndim != 4)
		return lr_op_fail(c, LR_EUNSUPPORTED, "input 0 (X) %s: only 4-D [N,C,H,W] is supported", TSHP(x));
	if (gr->ndim != 4 || gr->dims[0] != x->dims[0] || gr->dims[3] != 2)
		return lr_op_fail(c, LR_ESHAPE, "input 1 (grid) %s must be [N,Ho,Wo,2] for input 0 (X) %s",
				  TSHP(gr), TSHP(x));
	H = x->dims[2];
	W = x->dims[3];
	Ho = gr->dims[1];
	Wo = gr->dims[2];
	od[0] = x->dims[0];
	od[1] = x->dims[1];
	od[2] = Ho;
	od[3] = Wo;
	rc = lr_op_output(c, out, LR_DT_FLOAT, 4, od);
	if (rc != 0 || (*out)->data == NULL || (*out)->nelem == 0)
		return rc;
	if (x->data == NULL || gr->data == NULL) {
		lr_tensor_free(*out);
		*out = NULL;
		return lr_op_fail(c, LR_EINVAL, "an input has no data");
	}
	if (H == 0 || W == 0) {
		memset((*out)->data, 0, lr_tensor_bytes(*out));
		return 0;
	}
	g.H = H;
	g.W = W;
	g.lo_x = align ? 0.0f : -0.5f;
	g.hi_x = align ? (float)W - 1 : (float)W - 0.5f;
	g.lo_y = align ? 0.0f : -0.5f;
	g.hi_y = align ? (float)H - 1 : (float)H - 0.5f;
	for (int64_t n = 0; n < x->dims[0]; n++)
		for (int64_t ch = 0; ch < x->dims[1]; ch++) {
			float *y = (float *)(*out)->data + (n * x->dims[1] + ch) * Ho * Wo;

			g.p = (const float *)x->data + (n * x->dims[1] + ch) * H * W;
			for (int64_t o = 0; o < Ho * Wo; o++) {
				const float *gp = (const float *)gr->data + (n * Ho * Wo + o) * 2;
				float fx = align ? (gp[0] + 1) / 2 * (float)(W - 1) : ((gp[0] + 1) * (float)W - 1) / 2;
				float fy = align ? (gp[1] + 1) / 2 * (float)(H - 1) : ((gp[1] + 1) * (float)H - 1) / 2;

				if (!(fabsf(fx) < 1e9f && fabsf(fy) < 1e9f)) {
					y[o] = 0; /* non-finite or absurd coordinates sample nothing */
					continue;
				}
				if (m == 1) {
					fx = nearbyintf(fx);
					fy = nearbyintf(fy);
				}
				if (fx < g.lo_x || fx > g.hi_x || fy < g.lo_y || fy > g.hi_y) {
					if (g.pad == GS_BORDER) {
						fx = fminf(fmaxf(fx, 0), (float)(W - 1));
						fy = fminf(fmaxf(fy, 0), (float)(H - 1));
					} else if (g.pad == GS_REFLECT) {
						fx = gs_reflect(fx, g.lo_x, g.hi_x);
						fy = gs_reflect(fy, g.lo_y, g.hi_y);
					}
				}
				if (m == 1) {
					y[o] = gs_pixel(&g, (int64_t)fy, (int64_t)fx);
				} else if (m == 0) {
					int64_t x1 = (int64_t)floorf(fx), y1 = (int64_t)floorf(fy);
					float dx1 = fx - (float)x1, dx2 = (float)(x1 + 1) - fx;
					float dy1 = fy - (float)y1, dy2 = (float)(y1 + 1) - fy;

					y[o] = dy2 * (dx2 * gs_pixel(&g, y1, x1) + dx1 * gs_pixel(&g, y1, x1 + 1)) +
					       dy1 * (dx2 * gs_pixel(&g, y1 + 1, x1) + dx1 * gs_pixel(&g, y1 + 1, x1 + 1));
				} else {
					int64_t x0 = (int64_t)floorf(fx) - 1, y0 = (int64_t)floorf(fy) - 1;
					float kx[4], ky[4], v = 0;

					cubic_coeffs(fx - (float)x0 - 1, kx);
					cubic_coeffs(fy - (float)y0 - 1, ky);
					for (int i = 0; i < 4; i++) {
						float row = 0;

						for (int j = 0; j < 4; j++)
							row += kx[j] * gs_pixel(&g, y0 + i, x0 + j);
						v += ky[i] * row;
					}
					y[o] = v;
				}
			}
		}
	return 0;
}
