/*
 * testenv.h - what unit tests that generate fixtures share: the source
 * tree, the python3 with numpy/onnx (Debian's, see README), a scratch
 * directory, and running a helper program with its stdout sent to stderr
 * (stdout carries TAP).
 */
#ifndef LR_TESTENV_H
#define LR_TESTENV_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* $PYTHON3 (set by `make check`) or Debian's /usr/bin/python3. */
static inline const char *tenv_python(void)
{
	const char *p = getenv("PYTHON3");

	return p != NULL && p[0] != '\0' ? p : "/usr/bin/python3";
}

/*
 * The top of the source tree: $top_srcdir, else derived from `file`
 * (__FILE__) by removing `suffix` (e.g. "/tests/unit/test_onnx.c"),
 * else ".".
 */
static inline void tenv_srcdir(char *buf, size_t len, const char *file, const char *suffix)
{
	const char *env = getenv("top_srcdir");

	if (env != NULL && env[0] != '\0') {
		snprintf(buf, len, "%s", env);
		return;
	}
	snprintf(buf, len, "%s", file);
	if (strlen(buf) > strlen(suffix) && strcmp(buf + strlen(buf) - strlen(suffix), suffix) == 0)
		buf[strlen(buf) - strlen(suffix)] = '\0';
	else
		snprintf(buf, len, ".");
}

/* Makes $TMPDIR/NAME-XXXXXX (or under /tmp); 0 or -1. */
static inline int tenv_mkdtemp(char *buf, size_t len, const char *name)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(buf, len, "%s/%s-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", name);
	return mkdtemp(buf) != NULL ? 0 : -1;
}

/* Runs prog with args (NULL-terminated, at most 22); its exit status or -1. */
static inline int tenv_run(const char *prog, const char *const *args)
{
	const char *argv[24];
	pid_t pid;
	int st, n = 0;

	argv[n++] = prog;
	for (int i = 0; args[i] != NULL && n < 23; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(2, 1);
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif /* LR_TESTENV_H */
