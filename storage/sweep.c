/*
 * sweep.c - retention and garbage collection.
 *
 * DESIGN. The sweep works in three steps, each safe against concurrent
 * users of the store (other threads and processes):
 *   1. One BEGIN IMMEDIATE transaction deletes terminal jobs past
 *      retention, upload owner rows past retention that no job of that
 *      tenant uses, and blob rows that no job and no owner row references
 *      and that were last stored more than tmp_age_ms ago (a worker may be
 *      between storing an artifact and naming it in finish). Foreign keys
 *      make it impossible to delete a blob row a job still names, so a
 *      queued or running job never loses its inputs.
 *   2. Files are removed under the write lock by lr__blob_unlink_orphans():
 *      first those of the rows just deleted, then every file in blobs/
 *      found without a row (a crash between rename and commit). Writers
 *      only rename into blobs/ while holding the same lock, so a file
 *      without a row seen under the lock is never an upload in progress.
 *   3. Temp files in tmp/ not modified for tmp_age_ms are deleted. A live
 *      upload keeps touching its file; at startup (tmp_age_ms = 0) nothing
 *      can be in flight, so everything goes.
 * Files are deleted after the rows: a crash in between leaves orphans for
 * the next sweep, never a row without its file.
 */
#include "config.h"

#include "storage/store-int.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A growable array of digests. */
typedef struct lr_sha_list {
	char (*v)[LR_STORE_SHA_LEN + 1]; /* the digests */
	size_t n;                        /* used */
	size_t cap;                      /* allocated */
} lr_sha_list;

static int lr_sha_list_add(lr_sha_list *l, const char *sha)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		void *v = realloc(l->v, cap * sizeof(*l->v));

		if (v == NULL)
			return LR_ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	memcpy(l->v[l->n++], sha, LR_STORE_SHA_LEN + 1);
	return 0;
}

/* Step 1: rows. Collects the digests of deleted blob rows in `gone`. */
static int lr_sweep_rows(lr_store *st, const lr_store_sweep_opts *opts,
			 int64_t now, lr_store_sweep_report *rep,
			 lr_sha_list *gone, lr_msg *msg)
{
	static const char *const sql_jobs =
		"DELETE FROM jobs WHERE state IN ('succeeded', 'failed', "
		"'canceled') AND finished_ms < ?1";
	static const char *const sql_owners =
		"DELETE FROM blob_owners WHERE created_ms < ?1 AND NOT EXISTS "
		"(SELECT 1 FROM jobs j WHERE j.tenant = blob_owners.tenant AND "
		"(j.model_sha = blob_owners.sha OR j.calib_sha = blob_owners.sha "
		"OR j.result_sha = blob_owners.sha OR "
		"j.report_sha = blob_owners.sha))";
	static const char *const sql_blobs =
		"DELETE FROM blobs WHERE touched_ms <= ?1 "
		"AND NOT EXISTS (SELECT 1 FROM blob_owners o WHERE o.sha = blobs.sha) "
		"AND NOT EXISTS (SELECT 1 FROM jobs j WHERE "
		"j.model_sha = blobs.sha OR j.calib_sha = blobs.sha OR "
		"j.result_sha = blobs.sha OR j.report_sha = blobs.sha) "
		"RETURNING sha, size_bytes";
	sqlite3_stmt *stmt = NULL;
	char sha[LR_STORE_SHA_LEN + 1];
	int err, rc;

	err = lr__tx_begin(st, msg);
	if (err)
		return err;
	if (opts->retention_ms > 0) {
		err = lr__prepare(st, sql_jobs, &stmt, msg);
		if (err)
			goto out;
		sqlite3_bind_int64(stmt, 1, now - opts->retention_ms);
		rc = lr__step(st, stmt);
		if (rc != SQLITE_DONE) {
			err = lr__db_fail(st, rc, msg, "sweep jobs");
			goto out;
		}
		rep->jobs_deleted = sqlite3_changes(st->db);
		lr__finalize(st, stmt);
		stmt = NULL;
		err = lr__prepare(st, sql_owners, &stmt, msg);
		if (err)
			goto out;
		sqlite3_bind_int64(stmt, 1, now - opts->retention_ms);
		rc = lr__step(st, stmt);
		if (rc != SQLITE_DONE) {
			err = lr__db_fail(st, rc, msg, "sweep blob owners");
			goto out;
		}
		rep->owners_deleted = sqlite3_changes(st->db);
		lr__finalize(st, stmt);
		stmt = NULL;
	}
	err = lr__prepare(st, sql_blobs, &stmt, msg);
	if (err)
		goto out;
	sqlite3_bind_int64(stmt, 1, now - opts->tmp_age_ms);
	while ((rc = lr__step(st, stmt)) == SQLITE_ROW) {
		lr__col_copy(stmt, 0, sha, sizeof(sha));
		err = lr_sha_list_add(gone, sha);
		if (err) {
			lr_fail(msg, err, "out of memory");
			goto out;
		}
		rep->blobs_deleted++;
		rep->blob_bytes_freed += sqlite3_column_int64(stmt, 1);
	}
	if (rc != SQLITE_DONE) {
		err = lr__db_fail(st, rc, msg, "sweep blobs");
		goto out;
	}
	lr__finalize(st, stmt);
	stmt = NULL;
	err = lr__hooks_sweep(st, now, opts->retention_ms, opts->tmp_age_ms,
			      rep, msg);
	if (err)
		goto out;
	return lr__tx_commit(st, msg);
out:
	lr__finalize(st, stmt);
	lr__tx_rollback(st);
	rep->idem_deleted = rep->hooks_deleted = 0;
	rep->jobs_deleted = rep->owners_deleted = 0;
	rep->blobs_deleted = rep->blob_bytes_freed = 0;
	return err;
}

static int lr_sha_list_add_cb(void *ctx, const char *sha)
{
	return lr_sha_list_add(ctx, sha);
}

/* 1 when blob `sha` has a row (a plain read, no lock). */
static int lr_blob_row_exists(lr_store *st, const char *sha)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	if (st->pg != NULL)
		return lr__pg_blob_row_exists(st, sha, NULL) != 0;
	if (lr__prepare(st, "SELECT 1 FROM blobs WHERE sha = ?1", &stmt,
			NULL) != 0)
		return 1; /* when in doubt, keep the file */
	sqlite3_bind_text(stmt, 1, sha, -1, SQLITE_STATIC);
	rc = lr__step(st, stmt);
	lr__finalize(st, stmt);
	return rc != SQLITE_DONE;
}

static int lr_is_hex2(const char *s)
{
	return strlen(s) == 2 &&
	       ((s[0] >= '0' && s[0] <= '9') || (s[0] >= 'a' && s[0] <= 'f')) &&
	       ((s[1] >= '0' && s[1] <= '9') || (s[1] >= 'a' && s[1] <= 'f'));
}

/* Opens a directory fd as a DIR stream without giving up `fd`. */
static DIR *lr_opendir_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (d == NULL)
		close(fd);
	return d;
}

/* Step 2b: files in blobs/ab/ whose name is a digest without a row. */
static int lr_scan_orphans(lr_store *st, lr_sha_list *cand, lr_msg *msg)
{
	DIR *top = NULL, *sub = NULL;
	struct dirent *de, *fe;
	int err = 0;

	top = lr_opendir_at(st->blobs_fd, ".");
	if (top == NULL)
		return lr_fail(msg, -errno, "open blobs/: %s", strerror(errno));
	while ((de = readdir(top)) != NULL) {
		if (!lr_is_hex2(de->d_name))
			continue;
		sub = lr_opendir_at(st->blobs_fd, de->d_name);
		if (sub == NULL)
			continue; /* not a directory, or a symlink */
		while ((fe = readdir(sub)) != NULL) {
			if (!lr_store_sha_valid(fe->d_name) ||
			    strncmp(fe->d_name, de->d_name, 2) != 0)
				continue;
			if (lr_blob_row_exists(st, fe->d_name))
				continue;
			err = lr_sha_list_add(cand, fe->d_name);
			if (err) {
				lr_fail(msg, err, "out of memory");
				goto out;
			}
		}
		closedir(sub);
		sub = NULL;
	}
out:
	if (sub != NULL)
		closedir(sub);
	closedir(top);
	return err;
}

/* Step 3: stale temp files. */
static int lr_sweep_tmp(lr_store *st, int64_t age_ms, int64_t now,
			int64_t *removed, lr_msg *msg)
{
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int err = 0;

	d = lr_opendir_at(st->tmp_fd, ".");
	if (d == NULL)
		return lr_fail(msg, -errno, "open tmp/: %s", strerror(errno));
	while ((de = readdir(d)) != NULL) {
		int64_t mtime_ms;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(st->tmp_fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW))
			continue; /* raced with a commit or abort */
		if (S_ISDIR(sb.st_mode))
			continue;
		mtime_ms = (int64_t)sb.st_mtim.tv_sec * 1000 +
			   sb.st_mtim.tv_nsec / 1000000;
		if (age_ms > 0 && now - mtime_ms < age_ms)
			continue;
		if (unlinkat(st->tmp_fd, de->d_name, 0) == 0)
			(*removed)++;
		else if (errno != ENOENT && err == 0)
			err = lr_fail(msg, -errno, "unlink tmp/%s: %s",
				      de->d_name, strerror(errno));
	}
	closedir(d);
	return err;
}

int lr_store_sweep(lr_store *st, const lr_store_sweep_opts *opts,
		   lr_store_sweep_report *rep_out, lr_msg *msg)
{
	lr_store_sweep_report rep;
	lr_sha_list gone = { NULL, 0, 0 }, cand = { NULL, 0, 0 };
	int64_t now = lr_store_now_ms(), unlinked = 0;
	int err, locked = 0;

	memset(&rep, 0, sizeof(rep));
	if (opts->tmp_age_ms < 0) {
		err = lr_fail(msg, LR_EINVAL, "tmp_age_ms must be >= 0");
		goto out;
	}
	if (st->pg != NULL) {
		/* One node at a time; the others skip this round. */
		err = lr__pg_sweep_try_lock(st, &locked, msg);
		if (err || !locked)
			goto out;
		err = lr__pg_sweep_rows(st, opts, now, &rep, lr_sha_list_add_cb,
					&gone, msg);
	} else {
		err = lr_sweep_rows(st, opts, now, &rep, &gone, msg);
	}
	if (err)
		goto out;
	err = lr__blob_unlink_orphans(st, gone.v, gone.n, &unlinked, msg);
	if (err)
		goto out;
	err = lr_scan_orphans(st, &cand, msg);
	if (err)
		goto out;
	err = lr__blob_unlink_orphans(st, cand.v, cand.n,
				      &rep.orphan_files_deleted, msg);
	if (err)
		goto out;
	err = lr_sweep_tmp(st, opts->tmp_age_ms, now, &rep.tmp_files_deleted,
			   msg);
out:
	if (locked)
		lr__pg_sweep_unlock(st);
	free(gone.v);
	free(cand.v);
	if (rep_out != NULL)
		*rep_out = rep;
	return err;
}
