/*
 * main.c - corpus replay driver shared by the fuzz targets when they are
 * not linked with libFuzzer. Each argument is a directory (its regular
 * files are replayed in sorted name order) or a single file. Every input is
 * passed to LLVMFuzzerTestOneInput() and reported as one TAP line; the plan
 * comes last. A crash kills the process, which the TAP driver reports.
 *
 * Exit status: 0 when every input was replayed, 1 when an input could not
 * be read or no input was found, 2 for a usage error.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int n_tests, n_failed;

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads `path` into an exact-size buffer, so ASan flags any overread. */
static int replay(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long len;
	int ok = 0;

	if (f == NULL)
		goto out;
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto out;
	buf = malloc(len > 0 ? (size_t)len : 1);
	if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len)
		goto out;
	fclose(f);
	f = NULL;
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	ok = 1;
out:
	if (f != NULL)
		fclose(f);
	free(buf);
	n_tests++;
	if (!ok)
		n_failed++;
	printf("%s %d - %s%s\n", ok ? "ok" : "not ok", n_tests, path,
	       ok ? "" : ": cannot read");
	fflush(stdout);
	return ok;
}

/* Replays every regular file of directory `dir` in sorted order. */
static int replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL, **grown, path[4096];
	size_t n = 0, cap = 0;
	struct stat st;
	int rc = 0;

	if (d == NULL) {
		printf("Bail out! cannot open %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			grown = realloc(names, cap * sizeof(*names));
			if (grown == NULL) {
				rc = -1;
				goto out;
			}
			names = grown;
		}
		names[n] = strdup(e->d_name);
		if (names[n] == NULL) {
			rc = -1;
			goto out;
		}
		n++;
	}
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			replay(path);
	}
out:
	if (rc != 0)
		printf("Bail out! out of memory\n");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	struct stat st;

	if (argc < 2) {
		fprintf(stderr,
			"usage: %s DIR|FILE...\n"
			"Replays each file (directories: their files in sorted "
			"order) through the fuzz target; prints TAP.\n",
			argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		if (stat(argv[i], &st) != 0) {
			printf("Bail out! cannot stat %s: %s\n", argv[i],
			       strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			if (replay_dir(argv[i]) != 0)
				return 1;
		} else {
			replay(argv[i]);
		}
	}
	if (n_tests == 0) {
		printf("not ok 1 - no inputs found\n");
		n_tests = n_failed = 1;
	}
	printf("1..%d\n", n_tests);
	return n_failed ? 1 : 0;
}
