/*
 * blobs.c - the content-addressed blob store: streaming writer, put from
 * memory, tenant-checked stat and open.
 *
 * DESIGN. A blob's name is the SHA-256 of its bytes, so a file in blobs/
 * never changes once written and identical uploads are stored once. Bytes
 * first go to a private temp file in tmp/ (O_EXCL, 0600) while the digest
 * is computed; nothing in blobs/ or the database refers to it, so a crash
 * mid-upload leaves only a temp file that the sweep deletes. Commit fsyncs
 * the temp file, then - holding SQLite's write lock (BEGIN IMMEDIATE) -
 * renames it to blobs/ab/<sha>, fsyncs that directory and inserts the blob
 * and owner rows, then COMMITs. A committed row therefore always names a
 * durable file. A crash between rename and COMMIT leaves a file without a
 * row; because renames only happen under the write lock, anyone holding
 * that lock who sees a file without a row knows it is such an orphan and
 * may delete it (lr__blob_unlink_orphans(), the sweep, job delete). Rows
 * are the only thing access checks look at, so an orphan file is never
 * served. Reads build the path only from a validated hex digest and open
 * it with O_NOFOLLOW at both levels (the "ab" folder and the file), then
 * check it is a regular file of the recorded size and that its bytes hash
 * to its name (lr_store_blob_verify_fd): with state_dir shared by several
 * nodes over NFS or CephFS, a torn or half-replicated file must never be
 * served or computed on. On PostgreSQL the rename and the row commit hold
 * the digest's advisory lock instead of SQLite's write lock (storage/pg.c).
 */
#include "config.h"

#include "storage/store-int.h"

#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct lr_store_blob_writer {
	int tmp_dirfd;         /* own dup of the store's tmp/ fd */
	int fd;                /* the temp file, -1 once closed */
	char name[64];         /* temp file name inside tmp/ */
	struct sha256_ctx sha; /* running digest */
	int64_t size_bytes;    /* bytes written so far */
	int64_t size_max;      /* limit, <= 0 for none */
	int err;               /* first error, 0 if none; sticky */
};

void lr__blob_relpath(const char *sha, char *buf, size_t len)
{
	snprintf(buf, len, "%.2s/%s", sha, sha);
}

int lr_store_blob_path(lr_store *st, const char *sha, char *buf, size_t len)
{
	int n;

	if (!lr_store_sha_valid(sha))
		return LR_STORE_ENOTFOUND;
	n = snprintf(buf, len, "%s/blobs/%.2s/%s", st->dir, sha, sha);
	if (n < 0 || (size_t)n >= len)
		return LR_EINVAL;
	return 0;
}

/* ---- writer --------------------------------------------------------- */

int lr_store_blob_writer_open(lr_store *st, int64_t size_max_bytes,
			      lr_store_blob_writer **out, lr_msg *msg)
{
	unsigned char raw[16];
	char hex[33];
	lr_store_blob_writer *w;
	int err;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return lr_fail(msg, LR_ENOMEM, "out of memory");
	w->fd = -1;
	w->tmp_dirfd = fcntl(st->tmp_fd, F_DUPFD_CLOEXEC, 3);
	if (w->tmp_dirfd < 0) {
		err = lr_fail(msg, -errno, "dup tmp dir: %s", strerror(errno));
		goto fail;
	}
	err = lr__random(raw, sizeof(raw));
	if (err) {
		lr_fail(msg, err, "getrandom failed");
		goto fail;
	}
	lr__hex(raw, sizeof(raw), hex);
	snprintf(w->name, sizeof(w->name), "upload-%s.part", hex);
	w->fd = openat(w->tmp_dirfd, w->name,
		       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		       0600);
	if (w->fd < 0) {
		err = lr_fail(msg, -errno, "%s/tmp/%s: %s", st->dir, w->name,
			      strerror(errno));
		goto fail;
	}
	sha256_init(&w->sha);
	w->size_max = size_max_bytes;
	*out = w;
	return 0;
fail:
	if (w->tmp_dirfd >= 0)
		close(w->tmp_dirfd);
	free(w);
	return err;
}

int lr_store_blob_writer_write(lr_store_blob_writer *w, const void *buf,
			       size_t len, lr_msg *msg)
{
	const unsigned char *p = buf;
	size_t left = len;

	if (w->err)
		return w->err;
	if (len > (size_t)INT64_MAX - (size_t)w->size_bytes ||
	    (w->size_max > 0 &&
	     w->size_bytes + (int64_t)len > w->size_max)) {
		w->err = LR_STORE_ETOOBIG;
		return lr_fail(msg, w->err, "blob larger than %lld bytes",
			       (long long)w->size_max);
	}
	while (left > 0) {
		ssize_t n = write(w->fd, p, left);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			w->err = -errno;
			return lr_fail(msg, w->err, "write %s: %s", w->name,
				       strerror(errno));
		}
		p += n;
		left -= (size_t)n;
	}
	sha256_update(&w->sha, len, buf);
	w->size_bytes += (int64_t)len;
	return 0;
}

int64_t lr_store_blob_writer_size(const lr_store_blob_writer *w)
{
	return w->size_bytes;
}

lr_store_blob_writer *lr_store_blob_writer_abort(lr_store_blob_writer *w)
{
	if (w == NULL)
		return NULL;
	if (w->fd >= 0)
		close(w->fd);
	(void)unlinkat(w->tmp_dirfd, w->name, 0);
	close(w->tmp_dirfd);
	free(w);
	return NULL;
}

/* fsync of a directory (or file) by fd; -errno on failure. */
static int lr_fsync(int fd)
{
	return fsync(fd) == 0 ? 0 : -errno;
}

/*
 * Inside the write transaction: makes blobs/ab/<sha> hold the temp file's
 * bytes. When the blob row and file both exist the temp file is dropped;
 * otherwise it is renamed into place (this also repairs a row whose file
 * went missing). Sets *renamed when a new file was put in place.
 */
static int lr_blob_install(lr_store *st, lr_store_blob_writer *w,
			   const char *sha, int *renamed, lr_msg *msg)
{
	char sub[3], rel[LR_STORE_SHA_LEN + 8];
	struct stat sb;
	int subfd = -1, created_sub = 0, err = 0;

	*renamed = 0;
	memcpy(sub, sha, 2);
	sub[2] = '\0';
	lr__blob_relpath(sha, rel, sizeof(rel));
	if (mkdirat(st->blobs_fd, sub, 0700) == 0)
		created_sub = 1;
	else if (errno != EEXIST)
		return lr_fail(msg, -errno, "mkdir blobs/%s: %s", sub,
			       strerror(errno));
	subfd = openat(st->blobs_fd, sub,
		       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (subfd < 0)
		return lr_fail(msg, -errno, "open blobs/%s: %s", sub,
			       strerror(errno));
	if (fstatat(subfd, sha, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(sb.st_mode) && sb.st_size == w->size_bytes) {
		/* Same name, same size: by SHA-256 the same bytes. It may be
		 * an orphan whose directory entry was never synced: sync. */
		(void)unlinkat(w->tmp_dirfd, w->name, 0);
		err = lr_fsync(subfd);
		if (err)
			lr_fail(msg, err, "fsync blobs/%s: %s", sub,
				strerror(-err));
		goto out;
	}
	if (renameat(w->tmp_dirfd, w->name, subfd, sha) != 0) {
		err = lr_fail(msg, -errno, "rename into blobs/%s: %s", rel,
			      strerror(errno));
		goto out;
	}
	*renamed = 1;
	err = lr_fsync(subfd);
	if (err == 0 && created_sub)
		err = lr_fsync(st->blobs_fd);
	if (err)
		lr_fail(msg, err, "fsync blobs/%s: %s", sub, strerror(-err));
out:
	close(subfd);
	return err;
}

/* Inserts or refreshes the blob row and, when tenant != NULL, the owner
 * row. Created time is kept; touched time is now. */
static int lr_blob_record(lr_store *st, const char *tenant, const char *sha,
			  int64_t size, int64_t now, lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	int err, rc;

	err = lr__prepare(st,
			  "INSERT INTO blobs (sha, size_bytes, created_ms, "
			  "touched_ms) VALUES (?1, ?2, ?3, ?3) "
			  "ON CONFLICT (sha) DO UPDATE SET touched_ms = ?3",
			  &stmt, msg);
	if (err)
		return err;
	sqlite3_bind_text(stmt, 1, sha, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, size);
	sqlite3_bind_int64(stmt, 3, now);
	rc = lr__step(st, stmt);
	lr__finalize(st, stmt);
	if (rc != SQLITE_DONE)
		return lr__db_fail(st, rc, msg, "record blob");
	if (tenant == NULL)
		return 0;
	err = lr__prepare(st,
			  "INSERT INTO blob_owners (tenant, sha, created_ms) "
			  "VALUES (?1, ?2, ?3) ON CONFLICT (tenant, sha) "
			  "DO UPDATE SET created_ms = ?3",
			  &stmt, msg);
	if (err)
		return err;
	sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, sha, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, now);
	rc = lr__step(st, stmt);
	lr__finalize(st, stmt);
	if (rc != SQLITE_DONE)
		return lr__db_fail(st, rc, msg, "record blob owner");
	return 0;
}

int lr_store_blob_writer_commit(lr_store *st, lr_store_blob_writer *w,
				const char *tenant, const char *expected_sha,
				lr_store_blob_info *info, lr_msg *msg)
{
	unsigned char digest[SHA256_DIGEST_SIZE];
	char sha[LR_STORE_SHA_LEN + 1];
	int64_t now;
	int err, renamed = 0, in_tx = 0;

	err = w->err;
	if (err)
		goto out;
	if (tenant != NULL && !lr_store_tenant_valid(tenant)) {
		err = lr_fail(msg, LR_EINVAL, "invalid tenant name");
		goto out;
	}
	if (expected_sha != NULL && !lr_store_sha_valid(expected_sha)) {
		err = lr_fail(msg, LR_STORE_ENOTFOUND,
			      "expected digest is not SHA-256 hex");
		goto out;
	}
	sha256_digest(&w->sha, sizeof(digest), digest);
	lr__hex(digest, sizeof(digest), sha);
	if (expected_sha != NULL && strcmp(sha, expected_sha) != 0) {
		err = lr_fail(msg, LR_STORE_EDIGEST,
			      "content has SHA-256 %s, expected %s", sha,
			      expected_sha);
		goto out;
	}
	/* The slow part, outside the lock: the bytes reach the disk. */
	err = lr_fsync(w->fd);
	if (err) {
		lr_fail(msg, err, "fsync %s: %s", w->name, strerror(-err));
		goto out;
	}
	close(w->fd);
	w->fd = -1;
	LR__FAULT("blob-synced");
	err = lr__tx_begin(st, msg);
	if (err)
		goto out;
	in_tx = 1;
	if (st->pg != NULL) {
		/* Other nodes: the orphan remover takes this lock too. */
		err = lr__pg_blob_lock(st, sha, msg);
		if (err)
			goto out;
	}
	err = lr_blob_install(st, w, sha, &renamed, msg);
	if (err)
		goto out;
	now = lr_store_now_ms();
	err = st->pg != NULL
		      ? lr__pg_blob_record(st, tenant, sha, w->size_bytes, now, msg)
		      : lr_blob_record(st, tenant, sha, w->size_bytes, now, msg);
	if (err)
		goto out;
	LR__FAULT("blob-renamed");
	in_tx = 0;
	err = lr__tx_commit(st, msg);
	if (err)
		goto out;
	LR__FAULT("blob-committed");
	if (info != NULL) {
		sqlite3_stmt *stmt = NULL;

		memcpy(info->sha, sha, sizeof(sha));
		info->size_bytes = w->size_bytes;
		info->created_ms = now;
		/* The first store time, when the content was already there. */
		if (st->pg != NULL)
			(void)lr__pg_blob_created(st, sha, &info->created_ms);
		else if (lr__prepare(st, "SELECT created_ms FROM blobs WHERE sha = ?1",
				&stmt, NULL) == 0) {
			sqlite3_bind_text(stmt, 1, sha, -1, SQLITE_STATIC);
			if (lr__step(st, stmt) == SQLITE_ROW)
				info->created_ms = sqlite3_column_int64(stmt, 0);
			lr__finalize(st, stmt);
		}
	}
	lr_store_blob_writer_abort(w); /* frees; the temp name is gone */
	return 0;
out:
	if (in_tx)
		lr__tx_rollback(st);
	if (renamed) {
		/* A file we put in place has no committed row: remove it
		 * under the lock, as any orphan. */
		char one[1][LR_STORE_SHA_LEN + 1];

		memcpy(one[0], sha, sizeof(sha));
		(void)lr__blob_unlink_orphans(st, one, 1, NULL, NULL);
	}
	lr_store_blob_writer_abort(w);
	return err;
}

int lr_store_blob_put(lr_store *st, const char *tenant, const void *buf,
		      size_t len, lr_store_blob_info *info, lr_msg *msg)
{
	lr_store_blob_writer *w = NULL;
	int err;

	err = lr_store_blob_writer_open(st, 0, &w, msg);
	if (err)
		return err;
	if (len > 0) {
		err = lr_store_blob_writer_write(w, buf, len, msg);
		if (err) {
			lr_store_blob_writer_abort(w);
			return err;
		}
	}
	return lr_store_blob_writer_commit(st, w, tenant, NULL, info, msg);
}

/* ---- reading -------------------------------------------------------- */

int lr_store_blob_stat(lr_store *st, const char *tenant, const char *sha,
		       lr_store_blob_info *info, lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	lr_store_blob_info unused;
	int err, rc;

	if (info == NULL)
		info = &unused; /* a plain existence check */
	memset(info, 0, sizeof(*info));
	if (!lr_store_sha_valid(sha) || !lr_store_tenant_valid(tenant))
		return lr_fail(msg, LR_STORE_ENOTFOUND, "blob not found");
	if (st->pg != NULL)
		return lr__pg_blob_stat(st, tenant, sha, info, msg);
	err = lr__prepare(st,
			  "SELECT size_bytes, created_ms FROM blobs b "
			  "WHERE b.sha = ?1 AND ("
			  "  EXISTS (SELECT 1 FROM blob_owners o "
			  "    WHERE o.tenant = ?2 AND o.sha = ?1) OR "
			  "  EXISTS (SELECT 1 FROM jobs j WHERE j.tenant = ?2 "
			  "    AND (j.model_sha = ?1 OR j.calib_sha = ?1 OR "
			  "         j.result_sha = ?1 OR j.report_sha = ?1)))",
			  &stmt, msg);
	if (err)
		return err;
	sqlite3_bind_text(stmt, 1, sha, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, tenant, -1, SQLITE_STATIC);
	rc = lr__step(st, stmt);
	if (rc == SQLITE_ROW) {
		memcpy(info->sha, sha, LR_STORE_SHA_LEN + 1);
		info->size_bytes = sqlite3_column_int64(stmt, 0);
		info->created_ms = sqlite3_column_int64(stmt, 1);
	} else if (rc == SQLITE_DONE) {
		err = lr_fail(msg, LR_STORE_ENOTFOUND, "blob %s not found", sha);
	} else {
		err = lr__db_fail(st, rc, msg, "blob lookup");
	}
	lr__finalize(st, stmt);
	return err;
}

int lr_store_blob_verify_fd(int fd, const char *sha, lr_msg *msg)
{
	unsigned char buf[1 << 16], digest[SHA256_DIGEST_SIZE];
	char hex[LR_STORE_SHA_LEN + 1];
	struct sha256_ctx c;
	off_t off = 0;
	ssize_t n;

	sha256_init(&c);
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		sha256_update(&c, (size_t)n, buf);
		off += n;
	}
	if (n < 0)
		return lr_fail(msg, -errno, "read blob %s: %s", sha,
			       strerror(errno));
	sha256_digest(&c, sizeof(digest), digest);
	lr__hex(digest, sizeof(digest), hex);
	if (strcmp(hex, sha) != 0)
		return lr_fail(msg, LR_STORE_EDB,
			       "blob %s: content hashes to %s (torn or damaged "
			       "file)", sha, hex);
	return 0;
}

int lr_store_blob_verify(lr_store *st, const char *sha, lr_msg *msg)
{
	char rel[LR_STORE_SHA_LEN + 8];
	int fd, err;

	if (!lr_store_sha_valid(sha))
		return lr_fail(msg, LR_STORE_ENOTFOUND, "blob not found");
	lr__blob_relpath(sha, rel, sizeof(rel));
	fd = openat(st->blobs_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return lr_fail(msg, errno == ENOENT ? LR_STORE_EDB : -errno,
			       "blobs/%s: %s", rel, strerror(errno));
	err = lr_store_blob_verify_fd(fd, sha, msg);
	close(fd);
	return err;
}

int lr_store_blob_open(lr_store *st, const char *tenant, const char *sha,
		       int *fd, int64_t *size_bytes, lr_msg *msg)
{
	lr_store_blob_info info;
	struct stat sb;
	char sub[3];
	int subfd = -1, f = -1, err;

	*fd = -1;
	*size_bytes = 0;
	err = lr_store_blob_stat(st, tenant, sha, &info, msg);
	if (err)
		return err;
	memcpy(sub, sha, 2);
	sub[2] = '\0';
	subfd = openat(st->blobs_fd, sub,
		       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (subfd < 0) {
		err = lr_fail(msg, errno == ENOENT ? LR_STORE_EDB : -errno,
			      "blobs/%s: %s", sub, strerror(errno));
		goto out;
	}
	f = openat(subfd, sha, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (f < 0) {
		err = lr_fail(msg, errno == ENOENT ? LR_STORE_EDB : -errno,
			      "blobs/%s/%s: %s", sub, sha, strerror(errno));
		goto out;
	}
	if (fstat(f, &sb) != 0) {
		err = lr_fail(msg, -errno, "fstat blob %s: %s", sha,
			      strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size != info.size_bytes) {
		err = lr_fail(msg, LR_STORE_EDB,
			      "blob %s: not a regular file of %lld bytes", sha,
			      (long long)info.size_bytes);
		goto out;
	}
	err = lr_store_blob_verify_fd(f, sha, msg);
	if (err)
		goto out;
	*fd = f;
	f = -1;
	*size_bytes = info.size_bytes;
out:
	if (f >= 0)
		close(f);
	if (subfd >= 0)
		close(subfd);
	return err;
}

int lr_store_tenant_bytes(lr_store *st, const char *tenant, int64_t *bytes,
			  lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	int err, rc;

	*bytes = 0;
	if (!lr_store_tenant_valid(tenant))
		return lr_fail(msg, LR_EINVAL, "invalid tenant name");
	if (st->pg != NULL)
		return lr__pg_tenant_bytes(st, tenant, bytes, msg);
	err = lr__prepare(st,
			  "SELECT coalesce(sum(size_bytes), 0) FROM blobs "
			  "WHERE sha IN ("
			  "  SELECT sha FROM blob_owners WHERE tenant = ?1 "
			  "  UNION SELECT model_sha FROM jobs WHERE tenant = ?1 "
			  "  UNION SELECT calib_sha FROM jobs WHERE tenant = ?1 "
			  "  UNION SELECT result_sha FROM jobs WHERE tenant = ?1 "
			  "  UNION SELECT report_sha FROM jobs WHERE tenant = ?1)",
			  &stmt, msg);
	if (err)
		return err;
	sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC);
	rc = lr__step(st, stmt);
	if (rc == SQLITE_ROW)
		*bytes = sqlite3_column_int64(stmt, 0);
	else
		err = lr__db_fail(st, rc, msg, "tenant bytes");
	lr__finalize(st, stmt);
	return err;
}

/* ---- orphans -------------------------------------------------------- */

int lr__blob_unlink_orphans(lr_store *st, char (*shas)[LR_STORE_SHA_LEN + 1],
			    size_t n, int64_t *removed, lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	char rel[LR_STORE_SHA_LEN + 8];
	size_t i;
	int err, rc;

	if (n == 0)
		return 0;
	/* Holding the write lock: no writer is between rename and commit. */
	err = lr__tx_begin(st, msg);
	if (err)
		return err;
	if (st->pg == NULL) {
		err = lr__prepare(st, "SELECT 1 FROM blobs WHERE sha = ?1",
				  &stmt, msg);
		if (err)
			goto out;
	}
	for (i = 0; i < n; i++) {
		if (!lr_store_sha_valid(shas[i]))
			continue;
		if (st->pg != NULL) {
			/* The digest's lock: no node is between its rename
			 * and its commit. */
			err = lr__pg_blob_lock(st, shas[i], msg);
			if (err)
				goto out;
			rc = lr__pg_blob_row_exists(st, shas[i], msg);
			if (rc < 0) {
				err = LR_STORE_EDB;
				goto out;
			}
			if (rc == 1)
				continue;
			goto unlink;
		}
		sqlite3_reset(stmt);
		sqlite3_bind_text(stmt, 1, shas[i], -1, SQLITE_STATIC);
		rc = lr__step(st, stmt);
		if (rc == SQLITE_ROW)
			continue; /* stored again meanwhile: keep it */
		if (rc != SQLITE_DONE) {
			err = lr__db_fail(st, rc, msg, "orphan check");
			goto out;
		}
unlink:
		lr__blob_relpath(shas[i], rel, sizeof(rel));
		if (unlinkat(st->blobs_fd, rel, 0) == 0) {
			if (removed != NULL)
				(*removed)++;
		} else if (errno != ENOENT) {
			err = lr_fail(msg, -errno, "unlink blobs/%s: %s", rel,
				      strerror(errno));
			goto out;
		}
	}
out:
	lr__finalize(st, stmt);
	/* Nothing was written: ending the transaction just drops the lock. */
	lr__tx_rollback(st);
	return err;
}
