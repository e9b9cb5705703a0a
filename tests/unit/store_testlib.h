/*
 * store_testlib.h - helpers shared by the storage/ unit tests: temporary
 * state directories, file counting and hashing, sleeping.
 */
#ifndef LR_STORE_TESTLIB_H
#define LR_STORE_TESTLIB_H

#include <fcntl.h>
#include <ftw.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/store-int.h"
#include "storage/store.h"

/*
 * Backends. With LR_TEST_DATABASE unset (or "sqlite") every store is the
 * SQLite file in its state directory. With LR_TEST_DATABASE set to a
 * PostgreSQL URI of a throwaway server (tests/pg.sh starts one), every
 * t_mkdtemp() also creates a fresh database on that server, and t_open()
 * opens the directory's store on it, so each test still starts empty.
 */
#define T_MAXDIRS 256
static struct {
	char *dir, *uri;
} t_dbs[T_MAXDIRS];
static int t_ndbs;

/* 1 when the tests run against PostgreSQL. */
static inline int t_pg(void)
{
	const char *d = getenv("LR_TEST_DATABASE");

	return d != NULL && d[0] != '\0' && strcmp(d, "sqlite") != 0;
}

/* Creates database `name` through the server's maintenance database. */
static inline void t_pg_createdb(const char *name)
{
	char sql[128];
	PGconn *c = PQconnectdb(getenv("LR_TEST_DATABASE"));
	PGresult *r;

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "LR_TEST_DATABASE: %s", PQerrorMessage(c));
		abort();
	}
	snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", name);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
		abort();
	}
	PQclear(r);
	PQfinish(c);
}

/* Opens the store of state directory `dir` on the test's backend. */
static inline int t_open(const char *dir, lr_store **out, lr_msg *msg)
{
	const char *uri = NULL;
	int i;

	for (i = 0; i < t_ndbs; i++)
		if (strcmp(t_dbs[i].dir, dir) == 0)
			uri = t_dbs[i].uri;
	if (t_pg() && uri == NULL)
		uri = getenv("LR_TEST_DATABASE");
	if (lr_store_set_database(uri, msg) != 0)
		abort();
	return lr_store_open(dir, out, msg);
}

/* A fresh directory under $TMPDIR (or /tmp); caller frees the string. */
static inline char *t_mkdtemp(void)
{
	const char *base = getenv("TMPDIR");
	char *p;

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	if (asprintf(&p, "%s/lrstore-XXXXXX", base) < 0)
		abort();
	if (mkdtemp(p) == NULL) {
		perror("mkdtemp");
		abort();
	}
	if (t_pg() && t_ndbs < T_MAXDIRS) {
		/* lrt_<pid>_<suffix>, lowercase so it needs no quoting. */
		char name[64], *u;
		const char *base_uri = getenv("LR_TEST_DATABASE");
		const char *q = strchr(strstr(base_uri, "://") + 3, '/'), *qs;
		size_t k;

		snprintf(name, sizeof(name), "lrt_%d_%s", (int)getpid(),
			 strrchr(p, '-') + 1);
		for (k = 0; name[k]; k++)
			if (name[k] >= 'A' && name[k] <= 'Z')
				name[k] = (char)(name[k] - 'A' + 'a') ;
		/* Case-folding may collide: add a counter. */
		snprintf(name + strlen(name), sizeof(name) - strlen(name),
			 "_%d", t_ndbs);
		t_pg_createdb(name);
		/* Replace the path of the URI (".../postgres?host=x") by the
		 * new database name, keeping the query string. */
		qs = strchr(q, '?');
		if (asprintf(&u, "%.*s/%s%s", (int)(q - base_uri), base_uri,
			     name, qs ? qs : "") < 0)
			abort();
		t_dbs[t_ndbs].dir = strdup(p);
		t_dbs[t_ndbs].uri = u;
		t_ndbs++;
	}
	return p;
}

static inline int t_rm_cb(const char *path, const struct stat *sb, int flag,
			  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* rm -rf `dir`. */
static inline void t_rmrf(const char *dir)
{
	nftw(dir, t_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int t_count_n;
static inline int t_count_cb(const char *path, const struct stat *sb,
			     int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F && S_ISREG(sb->st_mode))
		t_count_n++;
	else if (flag == FTW_SL)
		t_count_n++;
	return 0;
}

/* Number of regular files and symlinks below `dir` (recursively). */
static inline int t_count_files(const char *dir)
{
	t_count_n = 0;
	if (nftw(dir, t_count_cb, 16, FTW_PHYS) != 0)
		return -1;
	return t_count_n;
}

/* Same for state_dir/<sub>. */
static inline int t_count_sub(const char *state_dir, const char *sub)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", state_dir, sub);
	return t_count_files(path);
}

/* SHA-256 hex of a file's content into out; 0 or -1. */
static inline int t_sha_file(const char *path, char out[65])
{
	struct sha256_ctx c;
	unsigned char buf[65536], d[SHA256_DIGEST_SIZE];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), i;

	if (fd < 0)
		return -1;
	sha256_init(&c);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		sha256_update(&c, (size_t)n, buf);
	close(fd);
	if (n < 0)
		return -1;
	sha256_digest(&c, sizeof(d), d);
	for (i = 0; i < SHA256_DIGEST_SIZE; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
	return 0;
}

/* SHA-256 hex of memory. */
static inline void t_sha_mem(const void *buf, size_t len, char out[65])
{
	struct sha256_ctx c;
	unsigned char d[SHA256_DIGEST_SIZE];
	int i;

	sha256_init(&c);
	sha256_update(&c, len, buf);
	sha256_digest(&c, sizeof(d), d);
	for (i = 0; i < SHA256_DIGEST_SIZE; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static inline void t_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Stores a string as a blob owned by `tenant`; returns the digest. */
static inline int t_put(lr_store *st, const char *tenant, const char *s,
			char sha[LR_STORE_SHA_LEN + 1])
{
	lr_store_blob_info info;
	int err = lr_store_blob_put(st, tenant, s, strlen(s), &info, NULL);

	if (err == 0)
		memcpy(sha, info.sha, LR_STORE_SHA_LEN + 1);
	else
		sha[0] = '\0';
	return err;
}

/* Integer result of a query on the store's own connection (-998: the SQL
 * did not prepare, -999: no row). */
static inline long long q_int(lr_store *st, const char *sql)
{
	sqlite3_stmt *s;
	long long v = -999;

	if (st->pg != NULL) {
		PGresult *r = PQexec(st->pg, sql);

		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			v = -998;
		else if (PQntuples(r) > 0)
			v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
		return v;
	}
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
		return -998;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* Runs `sql` (no result needed) on the store's own connection; 0 when it
 * worked. */
static inline int t_exec(lr_store *st, const char *sql)
{
	if (st->pg != NULL) {
		PGresult *r = PQexec(st->pg, sql);
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
			 PQresultStatus(r) == PGRES_TUPLES_OK;

		PQclear(r);
		return ok ? 0 : -1;
	}
	return sqlite3_exec(st->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* Where the blob store keeps blob `sha` under state dir `dir`. */
static inline void t_blob_file(const char *dir, const char *sha, char *buf, size_t len)
{
	snprintf(buf, len, "%s/blobs/%.2s/%s", dir, sha, sha);
}

#endif /* LR_STORE_TESTLIB_H */
