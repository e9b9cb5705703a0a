/*
 * cli.h - shared pieces of the `lowrank` command-line tool.
 *
 * DESIGN. Each subcommand is one function taking (argc, argv) after the
 * subcommand name and returning the process exit status: 0 success,
 * 1 failure of the work (bad model, bad input), 2 bad usage. Errors go to
 * stderr as one line "lowrank <cmd>: <message>".
 */
#ifndef LR_CLI_H
#define LR_CLI_H

#include <stdint.h>

#include "model/lr.h"

int lr_cmd_inspect(int argc, char **argv);
int lr_cmd_run(int argc, char **argv);
int lr_cmd_bench(int argc, char **argv);
int lr_cmd_compress(int argc, char **argv);

/* Prints "lowrank <cmd>: <fmt...>" to stderr. */
void lr_cli_err(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Parses "1,3,224,224"; returns the rank or -1. */
int lr_cli_parse_shape(const char *s, int64_t *dims, int max);

/* Parses a positive int in [lo, hi]; returns 0 or -1. */
int lr_cli_parse_int(const char *s, long lo, long hi, long *out);

/* SHA-256 of a file's bytes as 64 lowercase hex digits; 0 or -1 (errno). */
int lr_cli_sha256_file(const char *path, char hex[65]);

#endif /* LR_CLI_H */
