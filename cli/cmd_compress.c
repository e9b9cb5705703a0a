/*
 * cmd_compress.c - `lowrank compress`: the solver from the command line.
 * Progress goes to stderr: a bar redrawn in place on a terminal, plain
 * lines otherwise (logs, CI). The report is written atomically as JSON.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <nettle/sha2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "model/npy.h"
#include "model/onnx.h"
#include "solver/compress.h"

static const char help[] =
	"usage: lowrank compress MODEL.onnx --calib CALIB.npy -o OUT.onnx [options]\n"
	"\n"
	"Replaces expensive convolutions by low-rank pairs (k x k with d' filters,\n"
	"then 1 x 1 back to d) and fully connected layers (Gemm, MatMul) by two\n"
	"thinner ones, fitted to the model's own responses on CALIB.npy,\n"
	"which holds N inputs shaped like the model's first input (N x C x H x W).\n"
	"\n"
	"  --calib F             calibration inputs (.npy, required)\n"
	"  -o, --output F        the compressed model (required)\n"
	"  --speedup X           target speedup (default 4): of the whole model's\n"
	"                        time in lowrank's engine at --deploy-batch and\n"
	"                        --deploy-threads, or of the layers' FLOPs\n"
	"  --objective O         time (measured; default) or flops (the paper's)\n"
	"  --deploy-batch N      batch size the time is measured at (default 1)\n"
	"  --deploy-threads N    threads it is measured with (default 1)\n"
	"  --timing-cache F      file of cached timings (default\n"
	"                        $XDG_CACHE_HOME/lowrank/timings.tsv; none: off)\n"
	"  --report F            write the JSON report to F\n"
	"  --method M            nonlinear-asymmetric (default), nonlinear,\n"
	"                        linear-asymmetric or linear\n"
	"  --ranks NAME=R,...    fixed ranks for layers (node or output names)\n"
	"  --exclude NAME,...    layers never to decompose\n"
	"  --samples-per-input N positions sampled per input and layer (default 10)\n"
	"  --fc-fit F            fully connected layers: auto (default: data when\n"
	"                        there are 10 inputs per output feature, else\n"
	"                        shrinkage), shrinkage, weight-svd or data\n"
	"  --rank-multiple N     ranks are multiples of N (default: the CPU's\n"
	"                        vector block, 16 with AVX-512, 8 with AVX2, for\n"
	"                        the time objective; every rank for flops)\n"
	"  --holdout F           fraction of inputs kept for evaluation (default 0.1)\n"
	"  --seed N              seed of every random choice (default 0)\n"
	"  --threads N           threads (default: all cores)\n"
	"  --memory-budget MIB   memory for sampled responses and cached\n"
	"                        activations (default 2048); past it the network\n"
	"                        is rerun from the input, and responses that do\n"
	"                        not fit half of it mean fewer inputs are fitted\n";

static volatile int cancel_flag;

static void on_signal(int sig)
{
	(void)sig;
	cancel_flag = 1;
}

static void progress(void *ud, const lr_progress *p)
{
	int tty = *(int *)ud;
	char eta[32] = "";

	if (p->eta_seconds >= 0)
		snprintf(eta, sizeof(eta), " ETA %.0fs", p->eta_seconds);
	if (tty) {
		int w = (int)(p->fraction * 30.0);

		fprintf(stderr, "\r[%.*s%*s] %3.0f%% %-10s", w, "##############################",
			30 - w, "", 100.0 * p->fraction, p->stage);
		if (p->layer > 0)
			fprintf(stderr, " layer %d/%d %-24.24s", p->layer, p->nlayers,
				p->layer_name ? p->layer_name : "");
		if (p->iterations > 0)
			fprintf(stderr, " it %d/%d", p->iteration, p->iterations);
		fprintf(stderr, "%s   ", eta);
		if (p->fraction >= 1.0)
			fputc('\n', stderr);
	} else {
		if (p->iterations > 0)
			return; /* plain lines: one per stage or layer, not per iteration */
		fprintf(stderr, "lowrank compress: %3.0f%% %s", 100.0 * p->fraction, p->stage);
		if (p->layer > 0)
			fprintf(stderr, " layer %d/%d %s", p->layer, p->nlayers,
				p->layer_name ? p->layer_name : "");
		fprintf(stderr, "%s\n", eta);
	}
	fflush(stderr);
}

int lr_cli_sha256_file(const char *path, char hex[65])
{
	struct sha256_ctx ctx;
	uint8_t buf[65536], dig[SHA256_DIGEST_SIZE];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL)
		return LR_EIO;
	sha256_init(&ctx);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sha256_update(&ctx, n, buf);
	if (ferror(f)) {
		fclose(f);
		return LR_EIO;
	}
	fclose(f);
	sha256_digest(&ctx, sizeof(dig), dig);
	for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
		snprintf(hex + 2 * i, 3, "%02x", dig[i]);
	return 0;
}

/*
 * The timing cache's path: the one given ("none": no file), else
 * $XDG_CACHE_HOME/lowrank/timings.tsv or ~/.cache/lowrank/timings.tsv,
 * creating the directory; NULL (memory only) when there is no home.
 */
static const char *default_cache(const char *given, char *buf, size_t len)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	if (given != NULL)
		return strcmp(given, "none") == 0 ? NULL : given;
	if (xdg != NULL && xdg[0] == '/')
		snprintf(buf, len, "%s/lowrank", xdg);
	else if (home != NULL && home[0] == '/')
		snprintf(buf, len, "%s/.cache/lowrank", home);
	else
		return NULL;
	if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
		/* ~/.cache itself may be missing. */
		char parent[4096];
		char *slash;

		snprintf(parent, sizeof(parent), "%s", buf);
		slash = strrchr(parent, '/');
		if (slash != NULL)
			*slash = '\0';
		if (mkdir(parent, 0755) != 0 && errno != EEXIST)
			return NULL;
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return NULL;
	}
	if (strlen(buf) + sizeof("/timings.tsv") > len)
		return NULL;
	strcat(buf, "/timings.tsv");
	return buf;
}

/* Splits "a=1,b=2" into rank requests (pointers into the modified string). */
static int parse_ranks(char *s, lr_rank_req **out, int *n)
{
	int cap = 1;

	for (char *p = s; *p; p++)
		cap += *p == ',';
	*out = calloc((size_t)cap, sizeof(lr_rank_req));
	if (*out == NULL)
		return -1;
	*n = 0;
	for (char *tok = strtok(s, ","); tok != NULL; tok = strtok(NULL, ",")) {
		char *eq = strrchr(tok, '=');
		long r;

		if (eq == NULL || eq == tok || lr_cli_parse_int(eq + 1, 1, 1 << 20, &r) != 0)
			return -1;
		*eq = '\0';
		(*out)[*n].layer = tok;
		(*out)[*n].rank = r;
		(*n)++;
	}
	return 0;
}

static int parse_list(char *s, const char ***out, int *n)
{
	int cap = 1;

	for (char *p = s; *p; p++)
		cap += *p == ',';
	*out = calloc((size_t)cap, sizeof(char *));
	if (*out == NULL)
		return -1;
	*n = 0;
	for (char *tok = strtok(s, ","); tok != NULL; tok = strtok(NULL, ","))
		(*out)[(*n)++] = tok;
	return 0;
}

int lr_cmd_compress(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "calib", required_argument, NULL, 'c' },
		{ "output", required_argument, NULL, 'o' },
		{ "speedup", required_argument, NULL, 's' },
		{ "report", required_argument, NULL, 'r' },
		{ "method", required_argument, NULL, 'm' },
		{ "ranks", required_argument, NULL, 'R' },
		{ "exclude", required_argument, NULL, 'x' },
		{ "samples-per-input", required_argument, NULL, 'n' },
		{ "rank-multiple", required_argument, NULL, 'M' },
		{ "holdout", required_argument, NULL, 'H' },
		{ "seed", required_argument, NULL, 'S' },
		{ "threads", required_argument, NULL, 't' },
		{ "memory-budget", required_argument, NULL, 'B' },
		{ "objective", required_argument, NULL, 'O' },
		{ "deploy-batch", required_argument, NULL, 'b' },
		{ "deploy-threads", required_argument, NULL, 'T' },
		{ "timing-cache", required_argument, NULL, 'C' },
		{ "fc-fit", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *calib_path = NULL, *out_path = NULL, *report_path = NULL, *cache_path = NULL;
	char cache_buf[4096];
	lr_compress_opts o;
	lr_rank_req *ranks = NULL;
	const char **exclude = NULL;
	lr_model *m = NULL, *out = NULL;
	lr_tensor *calib = NULL;
	cJSON *report = NULL;
	lr_msg msg = { { 0 } };
	char msha[65], csha[65];
	int opt, rc, status = 1, tty = isatty(2), speedup_given = 0;
	long v;
	char *end;

	lr_compress_opts_init(&o);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': calib_path = optarg; break;
		case 'o': out_path = optarg; break;
		case 'r': report_path = optarg; break;
		case 's':
			speedup_given = 1;
			errno = 0;
			o.speedup = strtod(optarg, &end);
			if (errno || *end || !(o.speedup > 1.0)) {
				lr_cli_err("compress", "--speedup must be a number greater than 1");
				return 2;
			}
			break;
		case 'H':
			errno = 0;
			o.holdout = strtod(optarg, &end);
			if (errno || *end || !(o.holdout >= 0 && o.holdout < 1)) {
				lr_cli_err("compress", "--holdout must be in [0, 1)");
				return 2;
			}
			break;
		case 'm':
			if (lr_method_parse(optarg, &o.method) != 0) {
				lr_cli_err("compress", "--method must be nonlinear-asymmetric, nonlinear, linear-asymmetric or linear");
				return 2;
			}
			break;
		case 'R':
			if (parse_ranks(optarg, &ranks, &o.nranks) != 0) {
				lr_cli_err("compress", "--ranks must look like NAME=R,NAME=R with R >= 1");
				free(ranks);
				return 2;
			}
			o.ranks = ranks;
			break;
		case 'x':
			if (parse_list(optarg, &exclude, &o.nexclude) != 0) {
				free(ranks);
				return 2;
			}
			o.exclude = exclude;
			break;
		case 'n':
			if (lr_cli_parse_int(optarg, 1, 10000, &v) != 0) {
				lr_cli_err("compress", "--samples-per-input must be 1..10000");
				goto usage;
			}
			o.samples_per_input = (int)v;
			break;
		case 'M':
			if (lr_cli_parse_int(optarg, 1, 4096, &v) != 0) {
				lr_cli_err("compress", "--rank-multiple must be 1..4096");
				goto usage;
			}
			o.rank_multiple = (int)v;
			break;
		case 'S':
			if (lr_cli_parse_int(optarg, 0, 2147483647L, &v) != 0) {
				lr_cli_err("compress", "--seed must be a non-negative integer");
				goto usage;
			}
			o.seed = (uint64_t)v;
			break;
		case 't':
			if (lr_cli_parse_int(optarg, 1, 256, &v) != 0) {
				lr_cli_err("compress", "--threads must be 1..256");
				goto usage;
			}
			o.threads = (int)v;
			break;
		case 'B':
			if (lr_cli_parse_int(optarg, 0, 1L << 30, &v) != 0) {
				lr_cli_err("compress", "--memory-budget must be 0..1073741824 (MiB)");
				goto usage;
			}
			o.memory_budget = (size_t)v << 20;
			break;
		case 'F':
			if (lr_fc_fit_parse(optarg, &o.fc_fit) != 0) {
				lr_cli_err("compress", "--fc-fit must be auto, shrinkage, weight-svd or data");
				goto usage;
			}
			break;
		case 'O':
			if (lr_objective_parse(optarg, &o.objective) != 0) {
				lr_cli_err("compress", "--objective must be time or flops");
				goto usage;
			}
			break;
		case 'b':
			if (lr_cli_parse_int(optarg, 1, 65536, &v) != 0) {
				lr_cli_err("compress", "--deploy-batch must be 1..65536");
				goto usage;
			}
			o.deploy_batch = (int)v;
			break;
		case 'T':
			if (lr_cli_parse_int(optarg, 1, 256, &v) != 0) {
				lr_cli_err("compress", "--deploy-threads must be 1..256");
				goto usage;
			}
			o.deploy_threads = (int)v;
			break;
		case 'C':
			cache_path = optarg;
			break;
		case 'h':
			fputs(help, stdout);
			free(ranks);
			free(exclude);
			return 0;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1 || calib_path == NULL || out_path == NULL)
		goto usage;
	/* Ranks without --speedup: decompose exactly the layers named. */
	if (o.nranks > 0 && !speedup_given)
		o.speedup = 0;
	o.timing_cache = default_cache(cache_path, cache_buf, sizeof(cache_buf));
	o.progress = progress;
	o.progress_ud = &tty;
	o.cancel = &cancel_flag;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	rc = lr_model_load(argv[optind], NULL, &m, &msg);
	if (rc == 0)
		rc = lr_npy_map(calib_path, &calib, &msg);
	if (rc == 0 && (lr_cli_sha256_file(argv[optind], msha) != 0 ||
			lr_cli_sha256_file(calib_path, csha) != 0))
		rc = lr_fail(&msg, LR_EIO, "cannot read the inputs to hash them");
	if (rc == 0)
		rc = lr_compress(m, calib, &o, msha, csha, &out, &report, &msg);
	if (rc == 0)
		rc = lr_model_save(out, out_path, &msg);
	if (rc == 0 && report_path != NULL) {
		char *text = cJSON_Print(report);
		char tmp[4200];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", report_path);
		int bad;

		f = text ? fopen(tmp, "w") : NULL;
		bad = f == NULL || fputs(text, f) < 0 || fputc('\n', f) < 0;
		if (f != NULL && fclose(f) != 0)
			bad = 1;
		if (bad || rename(tmp, report_path) != 0) {
			rc = lr_fail(&msg, LR_EIO, "cannot write the report %s", report_path);
			unlink(tmp);
		}
		free(text);
	}
	if (rc != 0) {
		lr_cli_err("compress", "%s", msg.text[0] ? msg.text : lr_strerror(rc));
		goto out;
	}
	{
		cJSON *ts = cJSON_GetObjectItem(report, "theoretical_speedup");
		cJSON *h = cJSON_GetObjectItem(report, "holdout");

		cJSON *dep = cJSON_GetObjectItem(report, "deploy");
		cJSON *ps = dep ? cJSON_GetObjectItem(dep, "predicted_speedup") : NULL;
		cJSON *ms = dep ? cJSON_GetObjectItem(dep, "measured_speedup") : NULL;

		cJSON *b0 = cJSON_GetObjectItem(report, "model_bytes_before");
		cJSON *b1 = cJSON_GetObjectItem(report, "model_bytes_after");

		printf("wrote %s: theoretical speedup (FLOPs) %.2fx", out_path,
		       ts ? ts->valuedouble : 0.0);
		if (b0 != NULL && b1 != NULL)
			printf(", file %.1f -> %.1f MB", b0->valuedouble / 1e6, b1->valuedouble / 1e6);
		if (ps != NULL && ms != NULL)
			printf(", in lowrank's engine at batch %d predicted %.2fx, measured %.2fx",
			       o.deploy_batch, ps->valuedouble, ms->valuedouble);
		if (h != NULL)
			printf(", held-out top-1 agreement %.1f%%, relative output error %.4f",
			       100.0 * cJSON_GetObjectItem(h, "top1_agreement")->valuedouble,
			       cJSON_GetObjectItem(h, "relative_output_error")->valuedouble);
		printf("\n");
	}
	status = 0;
out:
	cJSON_Delete(report);
	lr_model_free(out);
	lr_model_free(m);
	lr_tensor_free(calib);
	free(ranks);
	free(exclude);
	return status;
usage:
	fputs(help, stderr);
	free(ranks);
	free(exclude);
	return 2;
}
