/*
 * cmd_run.c - `lowrank run`: the model's first output for an input .npy.
 * The input is split along its first (batch) dimension into chunks of
 * --batch items, each chunk is run, and the outputs are concatenated, so
 * memory is bounded by the chunk size, not by the file.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "model/engine.h"
#include "model/npy.h"
#include "model/onnx.h"

static const char help[] =
	"usage: lowrank run MODEL.onnx INPUT.npy -o OUTPUT.npy [--threads N] [--batch N]\n"
	"                  [--pricing]\n"
	"\n"
	"Runs the model on INPUT.npy fed to its first graph input and writes the\n"
	"first graph output to OUTPUT.npy, each in the type the model declares\n"
	"(.npy dtypes <f4 <f8 <f2 |b1 |u1 |i1 <u2 <i2 <u4 <i4 <u8 <i8). A float32\n"
	"input also accepts <f8, <f2 and |u1 files, converted to float32.\n"
	"\n"
	"  -o, --output F    where to write the output (required)\n"
	"  --threads N       threads to use (default: all cores)\n"
	"  --batch N         run N items of the input's first dimension at a time\n"
	"                    (default: all at once)\n"
	"  --pricing         run on the kernels and layouts rank selection times\n"
	"                    with (as `bench --pricing`), to check their results\n";

int lr_cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "threads", required_argument, NULL, 't' },
		{ "batch", required_argument, NULL, 'b' },
		{ "pricing", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *outpath = NULL;
	long threads = 0, batch = 0;
	int opt, rc, status = 1, pricing = 0;
	lr_model *m = NULL;
	lr_engine *e = NULL;
	lr_tensor *x = NULL, *y = NULL, *chunk = NULL, *part = NULL;
	lr_msg msg = { { 0 } };

	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'o': outpath = optarg; break;
		case 't':
			if (lr_cli_parse_int(optarg, 1, 256, &threads) != 0) {
				lr_cli_err("run", "--threads must be an integer from 1 to 256");
				return 2;
			}
			break;
		case 'b':
			if (lr_cli_parse_int(optarg, 1, 1 << 30, &batch) != 0) {
				lr_cli_err("run", "--batch must be a positive integer");
				return 2;
			}
			break;
		case 'p': pricing = 1; break;
		case 'h': fputs(help, stdout); return 0;
		default: fputs(help, stderr); return 2;
		}
	}
	if (optind != argc - 2 || outpath == NULL) {
		fputs(help, stderr);
		return 2;
	}
	rc = lr_model_load(argv[optind], NULL, &m, &msg);
	if (rc == 0 && m->ninputs != 1)
		rc = lr_fail(&msg, LR_EUNSUPPORTED,
			     "the model has %d graph inputs; `lowrank run` feeds exactly one",
			     m->ninputs);
	if (rc == 0 && m->noutputs < 1)
		rc = lr_fail(&msg, LR_EMODEL, "the model has no graph output");
	if (rc == 0)
		rc = lr_npy_read_typed(argv[optind + 1], &x, &msg);
	if (rc == 0 && m->values[m->inputs[0]].elem_type == LR_DT_FLOAT &&
	    (x->dtype == LR_DT_DOUBLE || x->dtype == LR_DT_FLOAT16 || x->dtype == LR_DT_UINT8)) {
		/* What lr_npy_read() accepts for float32 inputs, as before. */
		lr_tensor *f = NULL;

		rc = lr_tensor_create(&f, LR_DT_FLOAT, x->ndim, x->dims, 1);
		if (rc == 0) {
			lr_tensor_convert(x, LR_DT_FLOAT, f->data);
			lr_tensor_free(x);
			x = f;
		} else {
			rc = lr_fail(&msg, rc, "%s: out of memory", argv[optind + 1]);
		}
	}
	if (rc == 0 && x->ndim < 1)
		rc = lr_fail(&msg, LR_ESHAPE, "%s: the input must have a batch dimension",
			     argv[optind + 1]);
	if (rc == 0)
		rc = lr_engine_create(&e, m, (int)threads);
	if (rc != 0)
		goto fail;
	lr_engine_set_pricing(e, pricing);
	if (batch <= 0 || batch >= x->dims[0]) {
		rc = lr_engine_run(e, &x, 1, &y, 1, 0, &msg);
		if (rc != 0)
			goto fail;
	} else {
		int64_t n = x->dims[0], item = x->nelem / (n ? n : 1), out_item = 0;

		for (int64_t b0 = 0; b0 < n; b0 += batch) {
			int64_t bn = n - b0 < batch ? n - b0 : batch;
			int64_t d[LR_MAX_DIMS];

			memcpy(d, x->dims, sizeof(d));
			d[0] = bn;
			rc = lr_tensor_wrap(&chunk, x->dtype, x->ndim, d,
					    (char *)x->data + (size_t)(b0 * item) * lr_dtype_size(x->dtype));
			if (rc == 0)
				rc = lr_engine_run(e, &chunk, 1, &part, 1, 0, &msg);
			lr_tensor_free(chunk);
			chunk = NULL;
			if (rc != 0)
				goto fail;
			if (y == NULL) {
				memcpy(d, part->dims, sizeof(d));
				if (part->ndim < 1 || part->dims[0] != bn) {
					rc = lr_fail(&msg, LR_EUNSUPPORTED,
						     "the output's first dimension is not the batch; run without --batch");
					goto fail;
				}
				d[0] = n;
				out_item = part->nelem / bn;
				rc = lr_tensor_create(&y, part->dtype, part->ndim, d, 1);
				if (rc != 0)
					goto fail;
			}
			if (part->nelem != out_item * bn) {
				rc = lr_fail(&msg, LR_ESHAPE, "the output shape changed between batches");
				goto fail;
			}
			memcpy((char *)y->data + (size_t)(b0 * out_item) * lr_dtype_size(y->dtype),
			       part->data, lr_tensor_bytes(part));
			lr_tensor_free(part);
			part = NULL;
		}
	}
	rc = lr_npy_write(outpath, y, &msg);
	if (rc != 0)
		goto fail;
	status = 0;
	goto out;
fail:
	lr_cli_err("run", "%s", msg.text[0] ? msg.text : lr_strerror(rc));
out:
	lr_tensor_free(part);
	lr_tensor_free(x);
	lr_tensor_free(y);
	lr_engine_free(e);
	lr_model_free(m);
	return status;
}
