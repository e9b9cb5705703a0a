/*
 * main.c - the `lowrank` command-line tool: subcommand dispatch and the
 * small parsing helpers the subcommands share.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "model/tensor.h"

static const char usage[] =
	"usage: lowrank <command> [options]\n"
	"\n"
	"commands:\n"
	"  inspect MODEL.onnx    list Conv/Gemm layers, their cost and decomposability\n"
	"  run MODEL.onnx IN.npy -o OUT.npy   run the model on an input\n"
	"  bench MODEL.onnx      time the forward pass\n"
	"  compress MODEL.onnx --calib X.npy --speedup 4 -o OUT.onnx   make it faster\n"
	"\n"
	"Run 'lowrank <command> --help' for the options of a command.\n"
	"  --version             print the version\n";

void lr_cli_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "lowrank %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int lr_cli_parse_shape(const char *s, int64_t *dims, int max)
{
	int n = 0;
	const char *p = s;

	if (s == NULL || *s == '\0')
		return -1;
	while (*p) {
		char *end;
		long long v;

		if (n >= max)
			return -1;
		errno = 0;
		v = strtoll(p, &end, 10);
		if (errno || end == p || v < 1 || v > (1LL << 31))
			return -1;
		dims[n++] = v;
		if (*end == ',' || *end == 'x')
			end++;
		else if (*end != '\0')
			return -1;
		p = end;
	}
	return n;
}

int lr_cli_parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	if (s == NULL)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("lowrank %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "inspect") == 0)
		return lr_cmd_inspect(argc - 1, argv + 1);
	if (strcmp(argv[1], "run") == 0)
		return lr_cmd_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "bench") == 0)
		return lr_cmd_bench(argc - 1, argv + 1);
	if (strcmp(argv[1], "compress") == 0)
		return lr_cmd_compress(argc - 1, argv + 1);
	fprintf(stderr, "lowrank: unknown command '%s'\n\n%s", argv[1], usage);
	return 2;
}
