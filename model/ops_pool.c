/*
 * ops_pool.c - MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.
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
};

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
		for (int64_t ox = 0; ox < g->ow; ox++) {
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

static int pool_common(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
		       int is_max)
{
	const lr_tensor *x;
	int64_t kernel[2];
	struct lr_geom g;
	lr_tensor *y = NULL;
	int rc, cnt, nsp;

	if ((rc = lr_op_need(c, in, nin, 0, LR_DT_FLOAT)) != 0)
		return rc;
	x = in[0];
	if (x->ndim < 3)
		return lr_op_fail(c, LR_ESHAPE, "input X must have rank >= 3, got %d", x->ndim);
	nsp = x->ndim - 2;
	if (nsp > 2)
		return lr_op_fail(c, LR_EUNSUPPORTED,
				  "input has %d spatial dimensions; only 1-D and 2-D are supported", nsp);
	if (lr_node_attr_ints(c->node, "kernel_shape", kernel, 2, &cnt) != 0 || cnt != nsp)
		return lr_op_fail(c, LR_EMODEL, "attribute 'kernel_shape' must have %d entries", nsp);
	if (is_max && c->node->nout > 1 && c->node->out[1] >= 0)
		return lr_op_fail(c, LR_EUNSUPPORTED, "the Indices output is not supported");
	if (is_max && lr_node_attr_int(c->node, "storage_order", 0) != 0)
		return lr_op_fail(c, LR_EUNSUPPORTED, "storage_order=1 is not supported");
	rc = lr__window_geom(c, x, kernel, (int)lr_node_attr_int(c->node, "ceil_mode", 0), &g);
	if (rc != 0)
		return rc;
	rc = lr__window_output(c, x, &g, g.c, &y);
	if (rc != 0)
		return rc;
	if (y->data != NULL) {
		struct pool_job j = { x->data, y->data, &g, is_max,
				      (int)lr_node_attr_int(c->node, "count_include_pad", 0) };

		lr_pool_run(c->pool, g.n * g.c, 1, pool_planes, &j);
	}
	out[0] = y;
	return 0;
}

int lr_op_maxpool(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	return pool_common(c, in, nin, out, 1);
}

int lr_op_averagepool(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out, int nout)
{
	return pool_common(c, in, nin, out, 0);
}

struct global_job {
	const float *x;
	float *y;
	int64_t plane;
	int is_max;
};

static void global_planes(void *arg, int64_t begin, int64_t end)
{
	const struct global_job *j = arg;

	for (int64_t p = begin; p < end; p++) {
		const float *xp = j->x + p * j->plane;

		if (j->is_max) {
			float best = j->plane > 0 ? xp[0] : -FLT_MAX;

			for (int64_t i = 1; i < j->plane; i++)
				if (xp[i] > best)
					best = xp[i];
			j->y[p] = best;
		} else {
			double acc = 0.0;

			for (int64_t i = 0; i < j->plane; i++)
				acc += xp[i];
			j->y[p] = j->plane > 0 ? (float)(acc / (double)j->plane) : 0.0f;
		}
	}
}

static int global_common(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
			 int is_max)
{
	const lr_tensor *x;
	int64_t odims[LR_MAX_DIMS], plane = 1;
	lr_tensor *y = NULL;
	int rc;

	if ((rc = lr_op_need(c, in, nin, 0, LR_DT_FLOAT)) != 0)
		return rc;
	x = in[0];
	if (x->ndim < 2)
		return lr_op_fail(c, LR_ESHAPE, "input X must have rank >= 2, got %d", x->ndim);
	odims[0] = x->dims[0];
	odims[1] = x->dims[1];
	for (int i = 2; i < x->ndim; i++) {
		odims[i] = 1;
		plane *= x->dims[i];
	}
	rc = lr_op_output(c, &y, LR_DT_FLOAT, x->ndim, odims);
	if (rc != 0)
		return rc;
	if (y->data != NULL) {
		struct global_job j = { x->data, y->data, plane, is_max };

		lr_pool_run(c->pool, x->dims[0] * x->dims[1], 16, global_planes, &j);
	}
	out[0] = y;
	return 0;
}

int lr_op_globalaveragepool(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
			    int nout)
{
	return global_common(c, in, nin, out, 0);
}

int lr_op_globalmaxpool(lr_opctx *c, lr_tensor **in, int nin, lr_tensor **out,
			int nout)
{
	return global_common(c, in, nin, out, 1);
}
