/*
 * cmd_bench.c - `lowrank bench`: wall-clock time of the forward pass on
 * random input (seeded), after warm-up runs, with median and percentiles
 * and the process's peak resident memory.
 */
#include "config.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "model/engine.h"
#include "model/inspect.h"
#include "model/onnx.h"

static const char help[] =
	"usage: lowrank bench MODEL.onnx [--input-shape 1,3,224,224] [--batch N]\n"
	"                     [--threads N] [--repeat N] [--warmup N] [--seed N] [--pricing]\n"
	"                     [--json]\n"
	"\n"
	"Times the forward pass on random input (uniform in [-1, 1), seeded) after\n"
	"warm-up runs and prints the median, 10th and 90th percentile in ms and the\n"
	"peak resident memory of the process.\n"
	"\n"
	"  --input-shape S   shape of the first input (default: declared, batch 1)\n"
	"  --batch N         override the first dimension of the input shape\n"
	"  --threads N       threads (default: all cores)\n"
	"  --repeat N        timed runs (default 10)\n"
	"  --warmup N        untimed runs first (default 2)\n"
	"  --seed N          seed of the random input (default 0)\n"
	"  --pricing         only kernels shaped like ONNX Runtime's, as the solver's\n"
	"                    cost model times layers (thin convolutions not on the\n"
	"                    faster positions-in-lanes kernel)\n"
	"  --ab NAME[=VALUE] A/B of an environment switch in one process: --repeat\n"
	"                    rounds, each timing 5 runs without NAME and 5 with it\n"
	"                    (in turns, ABBA), a round's figure their median; prints\n"
	"                    both p10s and the median over rounds of with / without.\n"
	"                    One engine: for switches the kernels read while running\n"
	"                    (README: the A/B switches)\n"
	"  --ab-create NAME[=VALUE]  the same for switches read when an engine is\n"
	"                    created: the runs with it use a second engine created\n"
	"                    with NAME set (its own activations and threads)\n"
	"  --json            one JSON object: median_ms, p10_ms, p90_ms, peak_rss_bytes, ...\n"
	"\n"
	"Environment: LR_PROFILE=FILE (1: stderr) writes per-node and per-op-type\n"
	"times as JSON lines at exit (README: What the engine runs).\n";

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, int n, double p)
{
	double pos = p * (double)(n - 1);
	int lo = (int)pos;
	double frac = pos - lo;

	if (lo + 1 >= n)
		return sorted[n - 1];
	return sorted[lo] * (1.0 - frac) + sorted[lo + 1] * frac;
}

/* One variant's figure for a round: the median of AB_RUNS runs after one
 * untimed run (the other variant's last run left the caches). */
#define AB_RUNS 5

static int ab_figure(lr_engine *e, lr_tensor *x, double *ms, lr_msg *msg)
{
	double t[AB_RUNS];
	lr_tensor *y = NULL;
	int rc = 0;

	for (int i = -1; i < AB_RUNS && rc == 0; i++) {
		double t0 = lr_now();

		rc = lr_engine_run(e, &x, 1, &y, 1, 0, msg);
		if (i >= 0)
			t[i] = (lr_now() - t0) * 1e3;
		lr_tensor_free(y);
		y = NULL;
	}
	qsort(t, AB_RUNS, sizeof(double), cmp_double);
	*ms = t[AB_RUNS / 2];
	return rc;
}

/*
 * --ab: rounds of both variants in one process, in turns (A B, then B A),
 * so that what the machine does meanwhile falls on both: `e` runs without
 * `name` in the environment, `eb` (e itself, or one created with it set)
 * with it. Sets and unsets `name` in this process's environment.
 */
static int ab_rounds(lr_engine *e, lr_engine *eb, lr_tensor *x, const char *name, const char *val,
		     long warmup, long rounds, int json, lr_msg *msg)
{
	double *a = calloc((size_t)rounds, sizeof(double));
	double *b = calloc((size_t)rounds, sizeof(double));
	double *r = calloc((size_t)rounds, sizeof(double));
	int rc = 0;

	if (a == NULL || b == NULL || r == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	for (long i = 0; i < warmup && rc == 0; i++) {
		double ms;

		unsetenv(name);
		rc = ab_figure(e, x, &ms, msg);
		setenv(name, val, 1);
		rc = rc == 0 ? ab_figure(eb, x, &ms, msg) : rc;
	}
	for (long i = 0; i < rounds && rc == 0; i++) {
		for (int k = 0; k < 2 && rc == 0; k++) {
			int with = (int)((i + k) & 1);

			if (with)
				setenv(name, val, 1);
			else
				unsetenv(name);
			rc = ab_figure(with ? eb : e, x, with ? &b[i] : &a[i], msg);
		}
		r[i] = b[i] / a[i];
	}
	unsetenv(name);
	if (rc != 0)
		goto out;
	qsort(a, (size_t)rounds, sizeof(double), cmp_double);
	qsort(b, (size_t)rounds, sizeof(double), cmp_double);
	qsort(r, (size_t)rounds, sizeof(double), cmp_double);
	if (json)
		printf("{\"ab\":\"%s=%s\",\"rounds\":%ld,\"without_p10_ms\":%.4f,\"with_p10_ms\":%.4f,"
		       "\"ratio\":%.4f,\"ratio_p25\":%.4f,\"ratio_p75\":%.4f}\n",
		       name, val, rounds, percentile(a, (int)rounds, 0.1), percentile(b, (int)rounds, 0.1),
		       percentile(r, (int)rounds, 0.5), percentile(r, (int)rounds, 0.25),
		       percentile(r, (int)rounds, 0.75));
	else
		printf("%s=%s, %ld rounds: without p10 %.3f ms, with p10 %.3f ms, "
		       "with / without %.3f (quartiles %.3f-%.3f)\n",
		       name, val, rounds, percentile(a, (int)rounds, 0.1), percentile(b, (int)rounds, 0.1),
		       percentile(r, (int)rounds, 0.5), percentile(r, (int)rounds, 0.25),
		       percentile(r, (int)rounds, 0.75));
out:
	free(a);
	free(b);
	free(r);
	return rc;
}

int lr_cmd_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "input-shape", required_argument, NULL, 's' },
		{ "batch", required_argument, NULL, 'b' },
		{ "threads", required_argument, NULL, 't' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "seed", required_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "pricing", no_argument, NULL, 'P' },
		{ "ab", required_argument, NULL, 'A' },
		{ "ab-create", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t dims[LR_MAX_DIMS];
	long batch = 0, threads = 0, repeat = 10, warmup = 2, seed = 0;
	int ndim = -1, json = 0, pricing = 0, abcreate = 0, opt, rc, status = 1;
	lr_model *m = NULL;
	lr_engine *e = NULL, *eb = NULL;
	lr_tensor *x = NULL, *y = NULL;
	double *times = NULL;
	lr_msg msg = { { 0 } };
	char sbuf[160], abname[128] = "";
	const char *abval = "1";

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			ndim = lr_cli_parse_shape(optarg, dims, LR_MAX_DIMS);
			if (ndim < 1) {
				lr_cli_err("bench", "--input-shape '%s' is not a list of positive integers",
					   optarg);
				return 2;
			}
			break;
		case 'b':
			if (lr_cli_parse_int(optarg, 1, 1 << 20, &batch) != 0) {
				lr_cli_err("bench", "--batch must be a positive integer");
				return 2;
			}
			break;
		case 't':
			if (lr_cli_parse_int(optarg, 1, 256, &threads) != 0) {
				lr_cli_err("bench", "--threads must be an integer from 1 to 256");
				return 2;
			}
			break;
		case 'r':
			if (lr_cli_parse_int(optarg, 1, 100000, &repeat) != 0) {
				lr_cli_err("bench", "--repeat must be a positive integer");
				return 2;
			}
			break;
		case 'w':
			if (lr_cli_parse_int(optarg, 0, 100000, &warmup) != 0) {
				lr_cli_err("bench", "--warmup must be a non-negative integer");
				return 2;
			}
			break;
		case 'S':
			if (lr_cli_parse_int(optarg, 0, 2147483647L, &seed) != 0) {
				lr_cli_err("bench", "--seed must be a non-negative integer");
				return 2;
			}
			break;
		case 'j': json = 1; break;
		case 'P': pricing = 1; break;
		case 'C':
			abcreate = 1;
			/* fall through */
		case 'A': {
			const char *eq = strchr(optarg, '=');
			size_t len = eq != NULL ? (size_t)(eq - optarg) : strlen(optarg);

			if (len == 0 || len >= sizeof(abname)) {
				lr_cli_err("bench", "%s needs NAME or NAME=VALUE, not '%s'",
					   opt == 'C' ? "--ab-create" : "--ab", optarg);
				return 2;
			}
			memcpy(abname, optarg, len);
			abname[len] = '\0';
			if (eq != NULL)
				abval = eq + 1;
			break;
		}
		case 'h': fputs(help, stdout); return 0;
		default: fputs(help, stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		fputs(help, stderr);
		return 2;
	}
	rc = lr_model_load(argv[optind], NULL, &m, &msg);
	if (rc != 0)
		goto fail;
	if (m->ninputs != 1) {
		rc = lr_fail(&msg, LR_EUNSUPPORTED, "the model has %d graph inputs; bench feeds exactly one",
			     m->ninputs);
		goto fail;
	}
	if (ndim < 0 && (ndim = lr_input_shape(m, 0, 1, dims)) < 0) {
		rc = lr_fail(&msg, LR_EINVAL, "the model does not declare its input shape; pass --input-shape");
		goto fail;
	}
	if (batch > 0)
		dims[0] = batch;
	rc = lr_tensor_create(&x, LR_DT_FLOAT, ndim, dims, 1);
	if (rc != 0) {
		lr_fail(&msg, rc, "cannot allocate an input of shape %s",
			lr_shape_str(ndim, dims, sbuf, sizeof(sbuf)));
		goto fail;
	}
	{
		uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(seed + 1);
		float *xd = x->data;

		for (int64_t i = 0; i < x->nelem; i++) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			xd[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
		}
	}
	rc = lr_engine_create(&e, m, (int)threads);
	if (rc != 0)
		goto fail;
	lr_engine_set_pricing(e, pricing);
	times = calloc((size_t)repeat, sizeof(double));
	if (times == NULL) {
		rc = LR_ENOMEM;
		goto fail;
	}
	if (abname[0] != '\0') {
		/* --ab-create: the variant with the switch on its own engine,
		 * created with it; --ab: the same engine, the switch set and
		 * unset between runs. Two engines keep apart what one shares
		 * (activations, which core last touched them, the threads), so
		 * --ab is the one for switches read while running: it showed a
		 * partition change that made two threads 18% faster, where two
		 * engines showed none. */
		if (abcreate) {
			setenv(abname, abval, 1);
			rc = lr_engine_create(&eb, m, (int)threads);
			if (rc == 0) /* its plan is made again for pricing */
				lr_engine_set_pricing(eb, pricing);
			unsetenv(abname);
			if (rc != 0)
				goto fail;
		}
		rc = ab_rounds(e, eb != NULL ? eb : e, x, abname, abval, warmup, repeat, json, &msg);
		if (rc != 0)
			goto fail;
		status = 0;
		goto out;
	}
	for (long i = 0; i < warmup + repeat; i++) {
		double t0 = lr_now();

		rc = lr_engine_run(e, &x, 1, &y, 1, 0, &msg);
		if (rc != 0)
			goto fail;
		if (i >= warmup)
			times[i - warmup] = (lr_now() - t0) * 1e3;
		lr_tensor_free(y);
		y = NULL;
	}
	qsort(times, (size_t)repeat, sizeof(double), cmp_double);
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON *shape = cJSON_CreateArray();
		char *text;

		for (int i = 0; i < ndim; i++)
			cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)dims[i]));
		cJSON_AddStringToObject(o, "model", argv[optind]);
		cJSON_AddItemToObject(o, "input_shape", shape);
		cJSON_AddNumberToObject(o, "threads", lr_engine_threads(e));
		cJSON_AddNumberToObject(o, "repeat", (double)repeat);
		cJSON_AddNumberToObject(o, "warmup", (double)warmup);
		cJSON_AddNumberToObject(o, "seed", (double)seed);
		cJSON_AddBoolToObject(o, "pricing", pricing);
		cJSON_AddNumberToObject(o, "median_ms", percentile(times, (int)repeat, 0.5));
		cJSON_AddNumberToObject(o, "p10_ms", percentile(times, (int)repeat, 0.1));
		cJSON_AddNumberToObject(o, "p90_ms", percentile(times, (int)repeat, 0.9));
		cJSON_AddNumberToObject(o, "min_ms", times[0]);
		cJSON_AddNumberToObject(o, "peak_rss_bytes", (double)lr_peak_rss_bytes());
		cJSON_AddNumberToObject(o, "peak_activation_bytes",
					(double)lr_engine_peak_bytes(e));
		cJSON_AddNumberToObject(o, "blocked_nodes", lr_engine_blocked_nodes(e));
		text = cJSON_PrintUnformatted(o);
		if (text)
			puts(text);
		free(text);
		cJSON_Delete(o);
	} else {
		printf("model %s, input %s, %d threads, %ld runs after %ld warm-up (seed %ld)\n",
		       argv[optind], lr_shape_str(ndim, dims, sbuf, sizeof(sbuf)),
		       lr_engine_threads(e), repeat, warmup, seed);
		printf("median %.2f ms  p10 %.2f ms  p90 %.2f ms\n", percentile(times, (int)repeat, 0.5),
		       percentile(times, (int)repeat, 0.1), percentile(times, (int)repeat, 0.9));
		printf("peak RSS %.1f MiB, peak activations %.1f MiB\n",
		       (double)lr_peak_rss_bytes() / 1048576.0,
		       (double)lr_engine_peak_bytes(e) / 1048576.0);
	}
	status = 0;
	goto out;
fail:
	lr_cli_err("bench", "%s", msg.text[0] ? msg.text : lr_strerror(rc));
out:
	free(times);
	lr_tensor_free(x);
	lr_tensor_free(y);
	lr_engine_free(e);
	lr_engine_free(eb);
	lr_model_free(m);
	return status;
}
