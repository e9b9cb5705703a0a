/* test_config.c - lowrankd's configuration: defaults, the file parser
 * with file:line errors, the environment layer, precedence, validation,
 * and that etc/lowrankd.conf documents every key with its default. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/conf.h"
#include "tests/unit/tap.h"

static const char *fake_env(const char *name)
{
	if (strcmp(name, "LOWRANKD_WORKERS") == 0)
		return "3";
	if (strcmp(name, "LOWRANKD_LISTEN") == 0)
		return "127.0.0.1:9999";
	return NULL;
}

static const char *bad_env(const char *name)
{
	return strcmp(name, "LOWRANKD_HTTP_THREADS") == 0 ? "lots" : NULL;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f);
}

int main(void)
{
	lr_config c, d;
	lr_msg m;
	char path[] = "/tmp/lrconfXXXXXX", conf[4200];
	const char *srcdir = getenv("top_srcdir");
	int fd = mkstemp(path), rc;

	lr_config_defaults(&c);
	tap_ok(strcmp(c.listen, "127.0.0.1:8080") == 0 && strcmp(c.state_dir, "./var") == 0 &&
	       c.workers == 1 && c.blas_threads == 0 && c.tokens_file[0] == '\0',
	       "defaults: listen, state_dir, workers, blas_threads, tokens_file");
	memset(&m, 0, sizeof(m));
	tap_ok(lr_config_validate(&c, &m) == 0, "the defaults validate (%s)", m.text);

	close(fd);
	write_file(path, "# comment\n\n  workers = 2  \nlisten=127.0.0.1:7000\nstate_dir = \"/tmp/x y\"\nworkers = 4\n");
	rc = lr_config_load_file(&c, path, &m);
	tap_ok(rc == 0 && c.workers == 4 && strcmp(c.listen, "127.0.0.1:7000") == 0 &&
	       strcmp(c.state_dir, "/tmp/x y") == 0, "file: comments, blanks, quotes, last value wins");
	rc = lr_config_load_env(&c, fake_env, &m);
	tap_ok(rc == 0 && c.workers == 3 && strcmp(c.listen, "127.0.0.1:9999") == 0,
	       "environment overrides the file");
	rc = lr_config_set(&c, "max-upload-bytes", "4096", &m);
	tap_ok(rc == 0 && c.max_upload_bytes == 4096, "flags may spell keys with dashes");

	memset(&m, 0, sizeof(m));
	write_file(path, "workers = 1\nwrokers = 2\n");
	rc = lr_config_load_file(&c, path, &m);
	tap_ok(rc == LR_EINVAL && strstr(m.text, ":2: unknown key 'wrokers'"),
	       "unknown key with file:line (%s)", m.text);
	memset(&m, 0, sizeof(m));
	write_file(path, "workers = 0\n");
	rc = lr_config_load_file(&c, path, &m);
	tap_ok(rc == LR_EINVAL && strstr(m.text, ":1: workers: must be an integer from 1"),
	       "out of range with the range (%s)", m.text);
	memset(&m, 0, sizeof(m));
	write_file(path, "just words\n");
	rc = lr_config_load_file(&c, path, &m);
	tap_ok(rc == LR_EINVAL && strstr(m.text, "expected 'key = value'"), "syntax error (%s)", m.text);
	memset(&m, 0, sizeof(m));
	rc = lr_config_set(&c, "log_format", "xml", &m);
	tap_ok(rc == LR_EINVAL && strstr(m.text, "json|text"), "enum keys list their choices (%s)", m.text);
	memset(&m, 0, sizeof(m));
	rc = lr_config_load_env(&c, bad_env, &m);
	tap_ok(rc == LR_EINVAL && strstr(m.text, "LOWRANKD_HTTP_THREADS"), "a bad env value names the variable (%s)", m.text);
	memset(&m, 0, sizeof(m));
	rc = lr_config_load_file(&c, "/nonexistent/lowrankd.conf", &m);
	tap_ok(rc == -ENOENT, "a missing file is -ENOENT");

	lr_config_defaults(&d);
	memset(&m, 0, sizeof(m));
	strcpy(d.listen, "0.0.0.0:8080");
	tap_ok(lr_config_validate(&d, &m) == LR_EINVAL && strstr(m.text, "tokens_file"),
	       "a non-loopback address needs tokens (%s)", m.text);
	strcpy(d.tokens_file, "/etc/lowrankd/tokens");
	memset(&m, 0, sizeof(m));
	tap_ok(lr_config_validate(&d, &m) == 0, "... and passes with them");
	strcpy(d.listen, "[::1]:0");
	d.tokens_file[0] = '\0';
	tap_ok(lr_config_validate(&d, &m) == 0, "[::1]:0 is loopback");
	strcpy(d.listen, "localhost:80");
	tap_ok(lr_config_validate(&d, &m) == 0, "localhost is loopback");
	memset(&m, 0, sizeof(m));
	strcpy(d.listen, "127.0.0.1:70000");
	tap_ok(lr_config_validate(&d, &m) == LR_EINVAL && strstr(m.text, "listen:"), "bad port (%s)", m.text);
	strcpy(d.listen, "example.com:80");
	tap_ok(lr_config_validate(&d, &m) == LR_EINVAL, "host names are refused (numeric only)");

	/* The shipped file: parses, and sets every key to its default except
	 * the installed state_dir. */
	if (srcdir != NULL) {
		snprintf(conf, sizeof(conf), "%s/etc/lowrankd.conf", srcdir);
		lr_config_defaults(&c);
		memset(&m, 0, sizeof(m));
		rc = lr_config_load_file(&c, conf, &m);
		tap_ok(rc == 0, "etc/lowrankd.conf parses (%s)", m.text);
		lr_config_defaults(&d);
		strcpy(d.state_dir, c.state_dir);
		tap_ok(memcmp(&c, &d, sizeof(c)) == 0 && strcmp(c.state_dir, "/var/lib/lowrankd") == 0,
		       "etc/lowrankd.conf matches the built-in defaults, state_dir /var/lib/lowrankd");
	}
	unlink(path);
	return tap_done();
}
