/*
 * winograd_ab.c - interleaved A/B timing of lr_op_conv with and without
 * the Winograd path (model/conv_winograd.c) on VGG-16 and ResNet 3x3
 * layer shapes, at 1 and 2 threads. Not built by make. From a configured
 * build directory B (after `make`), with S the source tree:
 *
 *   gcc -std=c11 -O2 -D_GNU_SOURCE -DHAVE_CONFIG_H -I$B -I$S \
 *       $(pkg-config --cflags openblas) \
 *       $S/bench/winograd_ab.c $B/model/liblrmodel.a \
 *       -lprotobuf-c $(pkg-config --libs openblas) -lm -lpthread \
 *       -o winograd_ab
 *   ./winograd_ab [alternations (default 6)] [max threads (default 2)]
 *
 * DESIGN. The machine is shared, so absolute times drift; only
 * interleaved comparisons are meaningful. For each shape and thread count
 * the two variants alternate in one process (LR_NO_WINOGRAD is set and
 * unset between runs, as lr_op_conv reads it on every call) and the
 * minimum of each over the alternations is reported, with the speedup
 * and the direct-convolution-equivalent GFLOP/s. The kernel gets an
 * lr_opctx like the engine's: a thread pool and per-thread scratch kept
 * across calls.
 */
#include "config.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/ops.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 12345;

static float frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static lr_tensor *rand_tensor(int ndim, const int64_t *dims)
{
	lr_tensor *t = NULL;

	if (lr_tensor_create(&t, LR_DT_FLOAT, ndim, dims, 1) != 0)
		abort();
	for (int64_t i = 0; i < t->nelem; i++)
		((float *)t->data)[i] = frand();
	return t;
}

/* One timed lr_op_conv call; returns seconds (exits on failure). */
static double run_once(lr_opctx *c, lr_tensor **in, int wino)
{
	lr_tensor *y = NULL;
	double t0;
	int rc;

	if (wino)
		unsetenv("LR_NO_WINOGRAD");
	else
		setenv("LR_NO_WINOGRAD", "1", 1);
	t0 = now();
	rc = lr_op_conv(c, in, 3, &y, 1);
	t0 = now() - t0;
	if (rc != 0) {
		fprintf(stderr, "conv failed: %s\n", c->msg->text);
		exit(1);
	}
	lr_tensor_free(y);
	return t0;
}

int main(int argc, char **argv)
{
	static const struct { int64_t c, m, h; const char *net; } shapes[] = {
		{ 64, 64, 224, "vgg" }, { 64, 128, 112, "vgg" }, { 128, 128, 112, "vgg" },
		{ 128, 256, 56, "vgg" }, { 256, 256, 56, "vgg" }, { 256, 512, 28, "vgg" },
		{ 512, 512, 28, "vgg" }, { 512, 512, 14, "vgg" },
		{ 64, 64, 56, "resnet" }, { 128, 128, 28, "resnet" }, { 256, 256, 14, "resnet" },
		{ 512, 512, 7, "resnet" },
	};
	int alts = argc > 1 ? atoi(argv[1]) : 6, maxthr = argc > 2 ? atoi(argv[2]) : 2;
	Onnx__NodeProto proto = ONNX__NODE_PROTO__INIT;
	Onnx__AttributeProto pads = ONNX__ATTRIBUTE_PROTO__INIT, *attrs[1] = { &pads };
	int64_t padv[4] = { 1, 1, 1, 1 };
	char pname[] = "pads", opname[] = "Conv";
	lr_node node;
	lr_msg msg;
	double tot_i[3] = { 0, 0, 0 }, tot_w[3] = { 0, 0, 0 };

	if (alts < 1 || maxthr < 1 || maxthr > 2) {
		fprintf(stderr, "usage: %s [alternations] [max threads 1..2]\n", argv[0]);
		return 2;
	}
	openblas_set_num_threads(1);
	pads.name = pname;
	pads.has_type = 1;
	pads.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
	pads.n_ints = 4;
	pads.ints = padv;
	proto.op_type = opname;
	proto.n_attribute = 1;
	proto.attribute = attrs;
	memset(&node, 0, sizeof(node));
	node.proto = &proto;
	node.name = "conv";
	node.op_type = opname;
	memset(&msg, 0, sizeof(msg));
	printf("%-7s %4s %4s %4s thr  im2col_ms  wino_ms  speedup  GF/s(im2col,wino)\n",
	       "net", "C", "M", "H");
	for (int thr = 1; thr <= maxthr; thr++) {
		lr_pool *pool = lr_pool_create(thr);
		void *bufs[2] = { NULL, NULL };
		size_t bytes[2] = { 0, 0 };
		struct lr_scratch scr = { thr, bufs, bytes };
		lr_opctx c;

		memset(&c, 0, sizeof(c));
		c.node = &node;
		c.opset = 13;
		c.pool = pool;
		c.msg = &msg;
		c.scratch = &scr;
		for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
			int64_t cc = shapes[s].c, m = shapes[s].m, h = shapes[s].h;
			lr_tensor *in[3];
			double bi = 1e30, bw = 1e30, gf = 2.0 * (double)(cc * m * 9 * h * h) * 1e-9;

			in[0] = rand_tensor(4, (int64_t[]){ 1, cc, h, h });
			in[1] = rand_tensor(4, (int64_t[]){ m, cc, 3, 3 });
			in[2] = rand_tensor(1, (int64_t[]){ m });
			run_once(&c, in, 0);
			run_once(&c, in, 1);
			for (int a = 0; a < alts; a++) {
				double ti = run_once(&c, in, 0), tw = run_once(&c, in, 1);

				bi = ti < bi ? ti : bi;
				bw = tw < bw ? tw : bw;
			}
			printf("%-7s %4lld %4lld %4lld %3d %10.2f %8.2f %8.2fx %6.1f %6.1f\n",
			       shapes[s].net, (long long)cc, (long long)m, (long long)h, thr,
			       bi * 1e3, bw * 1e3, bi / bw, gf / bi, gf / bw);
			fflush(stdout);
			tot_i[thr] += bi;
			tot_w[thr] += bw;
			for (int k = 0; k < 3; k++)
				lr_tensor_free(in[k]);
		}
		printf("all shapes, %d thread(s): im2col %.1f ms, winograd %.1f ms, %.2fx\n", thr,
		       tot_i[thr] * 1e3, tot_w[thr] * 1e3, tot_i[thr] / tot_w[thr]);
		for (int k = 0; k < thr; k++)
			lr_free_aligned(bufs[k]);
		lr_pool_free(pool);
	}
	return 0;
}
