/*
 * test_store_lint.c - source checks for storage/ (reliability Q1):
 *   - every SQL "BEGIN" in a string literal is "BEGIN IMMEDIATE" (a
 *     deferred transaction that later writes can fail with SQLITE_BUSY
 *     without waiting, which is the WAL pitfall); pg.c, the PostgreSQL
 *     backend, is exempt (see below);
 *   - no SQL is built with sqlite3_mprintf() and friends (user data goes
 *     through bound parameters only);
 *   - the durability pragmas are set.
 * The checker is first run on samples, so a broken checker fails too.
 * Reads $top_srcdir/storage/ (set by the test harness; "." otherwise).
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

/*
 * Returns the contents of every C string literal in `src`, outside
 * comments. Literals separated only by white space (C concatenation) are
 * joined; others are separated by '\n'. Caller frees.
 */
static char *literals(const char *src)
{
	size_t n = strlen(src), o = 0;
	char *out = malloc(n + 2);
	const char *p = src;
	int joinable = 0;

	while (*p) {
		if (p[0] == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");

			p = e ? e + 2 : p + strlen(p);
		} else if (p[0] == '/' && p[1] == '/') {
			while (*p && *p != '\n')
				p++;
		} else if (*p == '\'') {
			p++;
			while (*p && *p != '\'') {
				if (*p == '\\' && p[1])
					p++;
				p++;
			}
			if (*p)
				p++;
			joinable = 0;
		} else if (*p == '"') {
			if (!joinable)
				out[o++] = '\n';
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				out[o++] = *p++;
			}
			if (*p)
				p++;
			joinable = 1;
		} else {
			if (!isspace((unsigned char)*p))
				joinable = 0;
			p++;
		}
	}
	out[o] = '\0';
	return out;
}

/* Number of "begin" words (any case) in the literals of `src` that are
 * not followed by "immediate". */
static int bare_begins(const char *src)
{
	char *lit = literals(src), *p;
	int bad = 0;

	for (p = lit; *p; p++) {
		if (strncasecmp(p, "begin", 5) != 0)
			continue;
		if (p > lit && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
			continue;
		if (isalnum((unsigned char)p[5]) || p[5] == '_')
			continue;
		{
			const char *q = p + 5;

			while (*q == ' ' || *q == '\t' || *q == '\n')
				q++;
			if (strncasecmp(q, "immediate", 9) != 0)
				bad++;
		}
	}
	free(lit);
	return bad;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		n = 0;
	buf[n] = '\0';
	fclose(f);
	return buf;
}

int main(void)
{
	const char *top = getenv("top_srcdir");
	char dirpath[4096], path[8192];
	struct dirent *de;
	DIR *d;
	int files = 0, begins_bad = 0, printf_sql = 0, pragmas = 0;

	/* The checker itself. */
	tap_ok(bare_begins("x(\"BEGIN\");") == 1 &&
		       bare_begins("x(\"BEGIN;\");") == 1 &&
		       bare_begins("x(\"begin deferred\");") == 1 &&
		       bare_begins("x(\"BEGIN TRANSACTION\");") == 1 &&
		       bare_begins("x(\"BEGIN EXCLUSIVE\");") == 1 &&
		       bare_begins("x(\"BEGIN \"\n   \"TRANSACTION\");") == 1,
	       "checker flags bare, deferred, exclusive and split BEGINs");
	tap_ok(bare_begins("x(\"BEGIN IMMEDIATE\");") == 0 &&
		       bare_begins("x(\"BEGIN \"\n \"IMMEDIATE\");") == 0 &&
		       bare_begins("/* BEGIN */ x(\"COMMIT\");") == 0 &&
		       bare_begins("x(\"BEGINNING\");") == 0,
	       "checker accepts IMMEDIATE, comments and other words");

	snprintf(dirpath, sizeof(dirpath), "%s/storage",
		 top && *top ? top : ".");
	d = opendir(dirpath);
	tap_ok(d != NULL, "open %s", dirpath);
	if (d == NULL)
		return tap_done();
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		char *src;
		int b;

		if (len < 3 || (strcmp(de->d_name + len - 2, ".c") != 0 &&
				strcmp(de->d_name + len - 2, ".h") != 0))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dirpath, de->d_name);
		src = slurp(path);
		if (src == NULL)
			continue;
		files++;
		/* PostgreSQL (pg.c) has no BEGIN IMMEDIATE and needs none: a
		 * transaction there takes row locks as it writes and waits
		 * for them, rather than failing on a read-to-write upgrade
		 * as an SQLite deferred transaction does. Its "BEGIN"s are
		 * lr__pg_begin's and the reconnect check. */
		b = strcmp(de->d_name, "pg.c") == 0 ? 0 : bare_begins(src);
		if (b)
			tap_diag("%s: %d BEGIN without IMMEDIATE", de->d_name, b);
		begins_bad += b;
		if (strstr(src, "sqlite3_mprintf") ||
		    strstr(src, "sqlite3_vmprintf") ||
		    strstr(src, "sqlite3_snprintf") ||
		    strstr(src, "sqlite3_str_appendf")) {
			tap_diag("%s builds SQL text with printf", de->d_name);
			printf_sql++;
		}
		if (strstr(src, "journal_mode=WAL"))
			pragmas |= 1;
		if (strstr(src, "synchronous=FULL"))
			pragmas |= 2;
		if (strstr(src, "foreign_keys=ON"))
			pragmas |= 4;
		free(src);
	}
	closedir(d);
	tap_ok(files >= 5, "scanned %d storage/ source files", files);
	tap_ok(begins_bad == 0, "every BEGIN is BEGIN IMMEDIATE");
	tap_ok(printf_sql == 0, "no SQL built with sqlite3_mprintf & co.");
	tap_ok(pragmas == 7, "WAL, synchronous=FULL and foreign_keys=ON set");
	return tap_done();
}
