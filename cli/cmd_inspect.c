/*
 * cmd_inspect.c - `lowrank inspect`: the layers that cost time, and which
 * of them the solver can decompose.
 */
#include "config.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "model/inspect.h"
#include "model/onnx.h"

static const char help[] =
	"usage: lowrank inspect MODEL.onnx [--input-shape 1,3,224,224] [--json]\n"
	"\n"
	"Lists every Conv, Gemm and constant-weight MatMul layer with its kernel, input channels c, output\n"
	"channels d, stride, output size, cost in MFLOPs (2 x multiply-accumulates)\n"
	"and share of the total, and whether the low-rank solver can decompose it\n"
	"(and if not, why).\n"
	"\n"
	"  --input-shape S   shape of the first input (default: the declared shape,\n"
	"                    unknown dimensions set to 1)\n"
	"  --json            print one JSON object instead of a table\n";

static cJSON *layers_json(const lr_layer_info *L, int n, double total)
{
	cJSON *arr = cJSON_CreateArray();

	for (int i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "name", L[i].name);
		cJSON_AddStringToObject(o, "op_type", L[i].op_type);
		if (L[i].weight)
			cJSON_AddStringToObject(o, "weight", L[i].weight);
		cJSON_AddNumberToObject(o, "kh", (double)L[i].kh);
		cJSON_AddNumberToObject(o, "kw", (double)L[i].kw);
		cJSON_AddNumberToObject(o, "c", (double)L[i].c);
		cJSON_AddNumberToObject(o, "d", (double)L[i].d);
		cJSON_AddNumberToObject(o, "group", (double)L[i].group);
		cJSON_AddNumberToObject(o, "stride_h", (double)L[i].sh);
		cJSON_AddNumberToObject(o, "stride_w", (double)L[i].sw);
		cJSON_AddNumberToObject(o, "out_h", (double)L[i].oh);
		cJSON_AddNumberToObject(o, "out_w", (double)L[i].ow);
		cJSON_AddNumberToObject(o, "mflops", 2.0 * L[i].macs / 1e6);
		cJSON_AddNumberToObject(o, "share", L[i].share);
		cJSON_AddBoolToObject(o, "decomposable", L[i].decomposable);
		if (L[i].decomposable)
			cJSON_AddNumberToObject(o, "max_rank", (double)L[i].max_rank);
		else
			cJSON_AddStringToObject(o, "reason", L[i].reason);
		cJSON_AddItemToArray(arr, o);
	}
	(void)total;
	return arr;
}

int lr_cmd_inspect(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "input-shape", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t dims[LR_MAX_DIMS];
	int ndim = -1, json = 0, opt, rc, n = 0, status = 1;
	lr_model *m = NULL;
	lr_layer_info *L = NULL;
	double total = 0;
	lr_msg msg = { { 0 } };
	char sbuf[160];

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			ndim = lr_cli_parse_shape(optarg, dims, LR_MAX_DIMS);
			if (ndim < 1) {
				lr_cli_err("inspect", "--input-shape '%s' is not a list of positive integers like 1,3,224,224",
					   optarg);
				return 2;
			}
			break;
		case 'j': json = 1; break;
		case 'h': fputs(help, stdout); return 0;
		default: fputs(help, stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		fputs(help, stderr);
		return 2;
	}
	rc = lr_model_load(argv[optind], NULL, &m, &msg);
	if (rc != 0) {
		lr_cli_err("inspect", "%s", msg.text[0] ? msg.text : lr_strerror(rc));
		return 1;
	}
	if (m->ninputs < 1) {
		lr_cli_err("inspect", "the model has no graph input");
		goto out;
	}
	if (ndim < 0) {
		ndim = lr_input_shape(m, 0, 1, dims);
		if (ndim < 0) {
			lr_cli_err("inspect", "the model does not declare the shape of input '%s'; pass --input-shape",
				   m->values[m->inputs[0]].name);
			goto out;
		}
	}
	rc = lr_inspect(m, ndim, dims, &L, &n, &total, &msg);
	if (rc != 0) {
		lr_cli_err("inspect", "%s", msg.text[0] ? msg.text : lr_strerror(rc));
		goto out;
	}
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON *shape = cJSON_CreateArray();
		char *text;
		int ndec = 0;
		double dec = 0;

		for (int i = 0; i < ndim; i++)
			cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)dims[i]));
		for (int i = 0; i < n; i++)
			if (L[i].decomposable) {
				ndec++;
				dec += L[i].macs;
			}
		cJSON_AddStringToObject(o, "model", argv[optind]);
		cJSON_AddNumberToObject(o, "ir_version", (double)m->ir_version);
		cJSON_AddNumberToObject(o, "opset", (double)m->opset);
		cJSON_AddStringToObject(o, "input", m->values[m->inputs[0]].name);
		cJSON_AddItemToObject(o, "input_shape", shape);
		cJSON_AddNumberToObject(o, "total_mflops", 2.0 * total / 1e6);
		cJSON_AddNumberToObject(o, "decomposable_layers", ndec);
		cJSON_AddNumberToObject(o, "decomposable_share", total > 0 ? dec / total : 0);
		cJSON_AddItemToObject(o, "layers", layers_json(L, n, total));
		text = cJSON_Print(o);
		if (text)
			puts(text);
		free(text);
		cJSON_Delete(o);
	} else {
		int ndec = 0;
		double dec = 0;

		printf("model %s: IR %lld, opset %lld, input '%s' %s\n", argv[optind],
		       (long long)m->ir_version, (long long)m->opset,
		       m->values[m->inputs[0]].name, lr_shape_str(ndim, dims, sbuf, sizeof(sbuf)));
		printf("%-4s %-28s %-6s %-7s %6s %6s %-6s %-9s %10s %6s  %s\n", "#", "layer", "op",
		       "kernel", "c", "d", "stride", "output", "MFLOPs", "share", "decomposable");
		for (int i = 0; i < n; i++) {
			char k[32], s[32], o[32];

			snprintf(k, sizeof(k), "%lldx%lld", (long long)L[i].kh, (long long)L[i].kw);
			snprintf(s, sizeof(s), "%lldx%lld", (long long)L[i].sh, (long long)L[i].sw);
			snprintf(o, sizeof(o), "%lldx%lld", (long long)L[i].oh, (long long)L[i].ow);
			printf("%-4d %-28.28s %-6s %-7s %6lld %6lld %-6s %-9s %10.1f %5.1f%%  %s%s\n", i,
			       L[i].name, L[i].op_type, k, (long long)L[i].c, (long long)L[i].d, s, o,
			       2.0 * L[i].macs / 1e6, 100.0 * L[i].share,
			       L[i].decomposable ? "yes" : "no: ", L[i].decomposable ? "" : L[i].reason);
			if (L[i].decomposable) {
				ndec++;
				dec += L[i].macs;
			}
		}
		printf("total %.1f MFLOPs in %d Conv/Gemm/MatMul layers; %d decomposable, covering %.1f%% of the cost\n",
		       2.0 * total / 1e6, n, ndec, total > 0 ? 100.0 * dec / total : 0.0);
	}
	status = 0;
out:
	free(L);
	lr_model_free(m);
	return status;
}
