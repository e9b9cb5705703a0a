/*
 * test_store_blobs.c - the content-addressed blob store and the retention
 * sweep on a real state directory: streaming writes and digests, dedup,
 * size limit, digest mismatch, abort, tenant isolation, safe opening
 * (symlinks planted in blobs/), artifacts without owners, and what the
 * sweep removes and keeps.
 */
#include "config.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "storage/store-int.h"
#include "tap.h"
#include "store_testlib.h"

#define SHA_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static char *dir;

static void q_exec(lr_store *st, const char *sql)
{
	if (t_exec(st, sql) != 0)
		tap_diag("exec failed: %s", sql);
}



static int file_exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

/* Reads all of fd into buf; returns the length or -1. */
static ssize_t read_all(int fd, char *buf, size_t len)
{
	ssize_t n, total = 0;

	while ((size_t)total < len &&
	       (n = read(fd, buf + total, len - (size_t)total)) > 0)
		total += n;
	return total;
}

static void test_writer(lr_store *st)
{
	lr_store_blob_writer *w = NULL;
	lr_store_blob_info info = { "", 0, 0 }, info2;
	unsigned char *big;
	char expect[LR_STORE_SHA_LEN + 1], path[4096];
	lr_msg msg = { "" };
	size_t off, total = 3 * 1000 * 1000 + 17;
	struct stat sb;
	int err, fd;
	int64_t size;

	/* Known vectors, in odd chunks. */
	err = lr_store_blob_writer_open(st, 0, &w, &msg);
	tap_ok(err == 0 && t_count_sub(dir, "tmp") == 1,
	       "writer open makes one temp file (%s)", msg.text);
	lr_store_blob_writer_write(w, "a", 1, NULL);
	lr_store_blob_writer_write(w, "", 0, NULL);
	lr_store_blob_writer_write(w, "bc", 2, NULL);
	tap_ok(lr_store_blob_writer_size(w) == 3, "size counts bytes");
	err = lr_store_blob_writer_commit(st, w, "alice", SHA_ABC, &info, &msg);
	tap_ok(err == 0 && strcmp(info.sha, SHA_ABC) == 0 &&
		       info.size_bytes == 3 && info.created_ms > 0,
	       "\"abc\" has the known SHA-256 and passes the digest check");
	t_blob_file(dir, SHA_ABC, path, sizeof(path));
	tap_ok(stat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
		       (sb.st_mode & 0777) == 0600 && sb.st_size == 3,
	       "stored at blobs/ba/<sha>, mode 0600");
	tap_ok(t_count_sub(dir, "tmp") == 0, "no temp file left");
	err = lr_store_blob_put(st, "alice", "", 0, &info, NULL);
	tap_ok(err == 0 && strcmp(info.sha, SHA_EMPTY) == 0 &&
		       info.size_bytes == 0,
	       "empty blob has the known SHA-256");

	/* Large streaming write with random chunk sizes. */
	big = malloc(total);
	for (off = 0; off < total; off++)
		big[off] = (unsigned char)(off * 2654435761u >> 13);
	t_sha_mem(big, total, expect);
	lr_store_blob_writer_open(st, (int64_t)total, &w, NULL);
	for (off = 0; off < total;) {
		size_t n = 1 + (off * 7919 % 65521);

		if (n > total - off)
			n = total - off;
		if (lr_store_blob_writer_write(w, big + off, n, NULL) != 0)
			break;
		off += n;
	}
	err = lr_store_blob_writer_commit(st, w, "alice", NULL, &info, NULL);
	tap_ok(err == 0 && strcmp(info.sha, expect) == 0 &&
		       info.size_bytes == (int64_t)total,
	       "3 MB in uneven chunks: digest and size match an independent "
	       "SHA-256, at exactly the size limit");
	t_blob_file(dir, expect, path, sizeof(path));
	{
		char got[LR_STORE_SHA_LEN + 1] = "";

		t_sha_file(path, got);
		tap_ok(strcmp(got, expect) == 0, "file content hashes the same");
	}

	/* Dedup: the same bytes from another tenant. */
	{
		int before = t_count_sub(dir, "blobs");

		lr_store_blob_writer_open(st, 0, &w, NULL);
		lr_store_blob_writer_write(w, big, total, NULL);
		err = lr_store_blob_writer_commit(st, w, "bob", NULL, &info2,
						  NULL);
		tap_ok(err == 0 && strcmp(info2.sha, expect) == 0 &&
			       t_count_sub(dir, "blobs") == before &&
			       t_count_sub(dir, "tmp") == 0,
		       "identical upload stored once, temp dropped");
		tap_ok(info2.created_ms == info.created_ms,
		       "created_ms is the first store time");
	}

	/* Size limit. */
	lr_store_blob_writer_open(st, 10, &w, NULL);
	err = lr_store_blob_writer_write(w, "0123456789", 10, NULL);
	tap_ok(err == 0, "10 bytes under a 10-byte limit");
	msg.text[0] = '\0';
	err = lr_store_blob_writer_write(w, "x", 1, &msg);
	tap_ok(err == LR_STORE_ETOOBIG, "11th byte: ETOOBIG (%s)", msg.text);
	err = lr_store_blob_writer_write(w, "x", 1, NULL);
	tap_ok(err == LR_STORE_ETOOBIG, "the error is sticky");
	err = lr_store_blob_writer_commit(st, w, "alice", NULL, NULL, NULL);
	tap_ok(err == LR_STORE_ETOOBIG && t_count_sub(dir, "tmp") == 0,
	       "commit after ETOOBIG fails and removes the temp file");
	{
		char s10[LR_STORE_SHA_LEN + 1], q[200];

		t_sha_mem("0123456789", 10, s10);
		snprintf(q, sizeof(q),
			 "SELECT count(*) FROM blobs WHERE sha = '%s'", s10);
		tap_ok(q_int(st, q) == 0, "no row for the refused blob");
	}

	/* Digest mismatch. */
	{
		int before = t_count_sub(dir, "blobs");
		long long rows = q_int(st, "SELECT count(*) FROM blobs");

		lr_store_blob_writer_open(st, 0, &w, NULL);
		lr_store_blob_writer_write(w, "abd", 3, NULL);
		msg.text[0] = '\0';
		err = lr_store_blob_writer_commit(st, w, "alice", SHA_ABC, NULL,
						  &msg);
		tap_ok(err == LR_STORE_EDIGEST && t_count_sub(dir, "tmp") == 0 &&
			       t_count_sub(dir, "blobs") == before &&
			       q_int(st, "SELECT count(*) FROM blobs") == rows,
		       "digest mismatch: EDIGEST, nothing stored (%s)",
		       msg.text);
		lr_store_blob_writer_open(st, 0, &w, NULL);
		err = lr_store_blob_writer_commit(st, w, "alice", "../x", NULL,
						  NULL);
		tap_ok(err == LR_STORE_ENOTFOUND && t_count_sub(dir, "tmp") == 0,
		       "malformed expected digest refused");
		lr_store_blob_writer_open(st, 0, &w, NULL);
		err = lr_store_blob_writer_commit(st, w, "bad/tenant", NULL,
						  NULL, NULL);
		tap_ok(err == LR_EINVAL && t_count_sub(dir, "tmp") == 0,
		       "bad tenant refused, temp removed");
	}

	/* Abort. */
	lr_store_blob_writer_open(st, 0, &w, NULL);
	lr_store_blob_writer_write(w, "partial", 7, NULL);
	tap_ok(t_count_sub(dir, "tmp") == 1, "temp file exists while writing");
	w = lr_store_blob_writer_abort(w);
	tap_ok(w == NULL && t_count_sub(dir, "tmp") == 0,
	       "abort removes the temp file");
	lr_store_blob_writer_abort(NULL);

	/* Reading back. */
	err = lr_store_blob_open(st, "alice", expect, &fd, &size, &msg);
	if (err == 0) {
		char *back = malloc(total + 1);
		ssize_t n = read_all(fd, back, total + 1);

		tap_ok(size == (int64_t)total && n == (ssize_t)total &&
			       memcmp(back, big, total) == 0,
		       "open returns the bytes");
		free(back);
		close(fd);
	} else {
		tap_ok(0, "open returns the bytes (%s)", msg.text);
	}
	err = lr_store_blob_open(st, "carol", expect, &fd, &size, NULL);
	tap_ok(err == LR_STORE_ENOTFOUND && fd == -1,
	       "a tenant that did not upload it: not found, though the bytes "
	       "exist");
	err = lr_store_blob_stat(st, "bob", expect, &info2, NULL);
	tap_ok(err == 0 && info2.size_bytes == (int64_t)total,
	       "both uploaders see it");
	{
		const char *bad[] = { "../../../../etc/passwd", "",
				      SHA_ABC "/..", "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD" };
		size_t k;
		int ok = 1;

		for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
			if (lr_store_blob_open(st, "alice", bad[k], &fd, &size,
					       NULL) != LR_STORE_ENOTFOUND)
				ok = 0;
		tap_ok(ok, "malformed digests are not found");
	}
	free(big);
}

/* Symlinks planted in blobs/ are never followed. */
static void test_symlinks(lr_store *st)
{
	char sha[LR_STORE_SHA_LEN + 1], path[4096], sub[4096];
	int fd = -1, err;
	int64_t size;

	t_put(st, "alice", "root:x:0:0:root:/root:/bin/bash\n", sha);
	t_blob_file(dir, sha, path, sizeof(path));
	unlink(path);
	if (symlink("/etc/passwd", path) != 0)
		tap_diag("symlink failed");
	err = lr_store_blob_open(st, "alice", sha, &fd, &size, NULL);
	tap_ok(err < 0 && fd == -1, "a symlinked blob file is refused (%s)",
	       lr_store_strerror(err));
	unlink(path);

	/* The "ab" folder itself replaced by a symlink. */
	t_put(st, "alice", "second", sha);
	snprintf(sub, sizeof(sub), "%s/blobs/%.2s", dir, sha);
	t_blob_file(dir, sha, path, sizeof(path));
	{
		char moved[4096], target[4096];

		snprintf(moved, sizeof(moved), "%s/elsewhere", dir);
		rename(sub, moved);
		snprintf(target, sizeof(target), "%s", moved);
		if (symlink(target, sub) != 0)
			tap_diag("symlink failed");
		err = lr_store_blob_open(st, "alice", sha, &fd, &size, NULL);
		tap_ok(err < 0 && fd == -1,
		       "a symlinked blob folder is refused (%s)",
		       lr_store_strerror(err));
		unlink(sub);
		rename(moved, sub);
	}
	err = lr_store_blob_open(st, "alice", sha, &fd, &size, NULL);
	tap_ok(err == 0 && size == 6, "restored folder opens again");
	if (fd >= 0)
		close(fd);

	/* A blob file truncated behind our back is detected, not served. */
	t_put(st, "alice", "will be truncated", sha);
	t_blob_file(dir, sha, path, sizeof(path));
	if (truncate(path, 4) != 0)
		tap_diag("truncate failed");
	err = lr_store_blob_open(st, "alice", sha, &fd, &size, NULL);
	tap_ok(err == LR_STORE_EDB && fd == -1,
	       "size mismatch is reported as a damaged store");
}

/* Artifacts: stored without owner, visible through the job only. */
static void test_artifacts(lr_store *st)
{
	char model[LR_STORE_SHA_LEN + 1], out[LR_STORE_SHA_LEN + 1];
	char id[LR_STORE_ID_LEN + 1];
	lr_store_job_new nj = { .tenant = "alice", .spec_json = "{}" };
	lr_store_job job = { 0 };
	lr_store_job_result res = { .state = LR_JOB_STATE_SUCCEEDED };
	lr_store_blob_info bi;
	int64_t epoch;
	int claimed, err;

	t_put(st, "alice", "artifact test model", model);
	t_put(st, NULL, "artifact test output", out);
	tap_ok(lr_store_blob_stat(st, "alice", out, &bi, NULL) ==
		       LR_STORE_ENOTFOUND,
	       "an unowned artifact is invisible before finish");
	nj.model_sha = model;
	lr_store_job_create(st, &nj, id, NULL);
	lr_store_epoch_begin(st, &epoch, NULL);
	err = lr_store_job_claim(st, "w", epoch, 60000, &job, &claimed, NULL);
	while (err == 0 && claimed && strcmp(job.id, id) != 0) {
		lr_store_job_fini(&job);
		err = lr_store_job_claim(st, "w", epoch, 60000, &job, &claimed,
					 NULL);
	}
	res.result_sha = out;
	err = lr_store_job_finish(st, job.id, job.fence, &res, NULL);
	tap_ok(err == 0 && lr_store_blob_stat(st, "alice", out, &bi, NULL) == 0,
	       "after finish the job's tenant sees the artifact");
	tap_ok(lr_store_blob_stat(st, "bob", out, &bi, NULL) ==
		       LR_STORE_ENOTFOUND,
	       "other tenants still do not");
	lr_store_job_fini(&job);
}

/* Quota accounting: each distinct blob counts once per tenant. */
static void test_tenant_bytes(lr_store *st)
{
	char a[65], b[65], id[33];
	lr_store_job_new nj = { .tenant = "quota", .spec_json = "{}" };
	int64_t before = -1, after = -1, other = -1;

	lr_store_tenant_bytes(st, "quota", &before, NULL);
	t_put(st, "quota", "1234567890", a);
	t_put(st, "quota", "1234567890", a); /* again: counted once */
	t_put(st, "quota", "12345", b);
	nj.model_sha = a;
	nj.calib_sha = b;
	lr_store_job_create(st, &nj, id, NULL);
	lr_store_tenant_bytes(st, "quota", &after, NULL);
	lr_store_tenant_bytes(st, "quota2", &other, NULL);
	tap_ok(before == 0 && after == 15 && other == 0,
	       "tenant bytes: 0 before, 15 after two blobs, 0 for another "
	       "tenant (%lld %lld %lld)",
	       (long long)before, (long long)after, (long long)other);
}

/* Backdates rows so the sweep sees them as old. */
static void age_all(lr_store *st, long long days)
{
	char q[256];

	snprintf(q, sizeof(q),
		 "UPDATE jobs SET finished_ms = finished_ms - %lld "
		 "WHERE finished_ms IS NOT NULL",
		 days * 86400000LL);
	q_exec(st, q);
	snprintf(q, sizeof(q),
		 "UPDATE blob_owners SET created_ms = created_ms - %lld",
		 days * 86400000LL);
	q_exec(st, q);
	snprintf(q, sizeof(q),
		 "UPDATE blobs SET touched_ms = touched_ms - %lld",
		 days * 86400000LL);
	q_exec(st, q);
}

static void test_sweep(lr_store *st)
{
	char model_q[LR_STORE_SHA_LEN + 1], model_f[LR_STORE_SHA_LEN + 1];
	char out_f[LR_STORE_SHA_LEN + 1], fresh[LR_STORE_SHA_LEN + 1];
	char orphan[LR_STORE_SHA_LEN + 1], path[4096], id_q[33], id_f[33];
	lr_store_job_new nj = { .tenant = "dora", .spec_json = "{}" };
	lr_store_job job = { 0 };
	lr_store_job_result res = { .state = LR_JOB_STATE_SUCCEEDED };
	lr_store_sweep_opts opts = { .retention_ms = 7 * 86400000LL,
				     .tmp_age_ms = 10 * 60000 };
	lr_store_sweep_report rep;
	lr_store_blob_writer *live = NULL;
	int64_t epoch, counts[LR_JOB_STATE_COUNT];
	int claimed, err, fd;
	lr_msg msg = { "" };

	/* Start from a clean slate: everything so far expires. */
	lr_store_epoch_begin(st, &epoch, NULL);
	lr_store_jobs_recover(st, epoch, NULL, NULL);
	{
		lr_store_job_result fail = { .state = LR_JOB_STATE_FAILED };

		while (lr_store_job_claim(st, "c", epoch, 60000, &job, &claimed,
					  NULL) == 0 && claimed) {
			lr_store_job_finish(st, job.id, job.fence, &fail, NULL);
			lr_store_job_fini(&job);
		}
	}
	age_all(st, 30);
	err = lr_store_sweep(st, &opts, &rep, &msg);
	tap_ok(err == 0 && rep.jobs_deleted > 0 && rep.blobs_deleted > 0,
	       "sweep of old state: %lld jobs, %lld owners, %lld blobs "
	       "(%lld bytes), %lld orphans (%s)",
	       (long long)rep.jobs_deleted, (long long)rep.owners_deleted,
	       (long long)rep.blobs_deleted, (long long)rep.blob_bytes_freed,
	       (long long)rep.orphan_files_deleted, msg.text);
	tap_ok(q_int(st, "SELECT count(*) FROM jobs") == 0 &&
		       q_int(st, "SELECT count(*) FROM blobs") == 0 &&
		       t_count_sub(dir, "blobs") == 0,
	       "nothing left: no jobs, no blob rows, no blob files "
	       "(%d files)", t_count_sub(dir, "blobs"));

	/* A queued job on an old upload; a finished job with an artifact. */
	t_put(st, "dora", "queued model", model_q);
	t_put(st, "dora", "finished model", model_f);
	nj.model_sha = model_f;
	lr_store_job_create(st, &nj, id_f, NULL);
	lr_store_job_claim(st, "w", epoch, 60000, &job, &claimed, NULL);
	t_put(st, NULL, "finished output", out_f);
	res.result_sha = out_f;
	lr_store_job_finish(st, job.id, job.fence, &res, NULL);
	lr_store_job_fini(&job);
	nj.model_sha = model_q;
	lr_store_job_create(st, &nj, id_q, NULL);
	age_all(st, 30);
	/* Fresh things the sweep must keep. */
	t_put(st, "dora", "fresh upload", fresh);
	lr_store_blob_writer_open(st, 0, &live, NULL);
	lr_store_blob_writer_write(live, "in flight", 9, NULL);
	/* A stale temp file (an upload abandoned an hour ago). */
	snprintf(path, sizeof(path), "%s/tmp/upload-stale.part", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	if (fd >= 0) {
		struct timespec ts[2];

		if (write(fd, "xx", 2) != 2)
			tap_diag("write failed");
		close(fd);
		clock_gettime(CLOCK_REALTIME, &ts[0]);
		ts[0].tv_sec -= 3600;
		ts[1] = ts[0];
		utimensat(AT_FDCWD, path, ts, 0);
	}
	/* An orphan blob file: as if killed between rename and commit. */
	t_sha_mem("orphan bytes", 12, orphan);
	snprintf(path, sizeof(path), "%s/blobs/%.2s", dir, orphan);
	mkdir(path, 0700);
	t_blob_file(dir, orphan, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	if (fd >= 0) {
		if (write(fd, "orphan bytes", 12) != 12)
			tap_diag("write failed");
		close(fd);
	}

	err = lr_store_sweep(st, &opts, &rep, &msg);
	tap_ok(err == 0, "sweep runs (%s)", msg.text);
	tap_ok(rep.jobs_deleted == 1, "the old finished job is deleted (%lld)",
	       (long long)rep.jobs_deleted);
	tap_ok(rep.blobs_deleted == 2 &&
		       rep.blob_bytes_freed ==
			       (int64_t)(strlen("finished model") +
					 strlen("finished output")),
	       "its model and output are deleted: %lld blobs, %lld bytes",
	       (long long)rep.blobs_deleted, (long long)rep.blob_bytes_freed);
	tap_ok(rep.owners_deleted == 1,
	       "the old owner row no job uses is dropped (%lld)",
	       (long long)rep.owners_deleted);
	tap_ok(rep.orphan_files_deleted == 1 && !file_exists(path),
	       "the orphan blob file is deleted");
	tap_ok(rep.tmp_files_deleted == 1 && t_count_sub(dir, "tmp") == 1,
	       "the stale temp file is deleted, the live upload kept");
	{
		lr_store_job got = { 0 };

		err = lr_store_job_get(st, "dora", id_q, &got, NULL);
		tap_ok(err == 0 && got.state == LR_JOB_STATE_QUEUED,
		       "the queued job stays");
		lr_store_job_fini(&got);
	}
	t_blob_file(dir, model_q, path, sizeof(path));
	tap_ok(file_exists(path),
	       "the queued job's old model blob is kept (job reference)");
	t_blob_file(dir, fresh, path, sizeof(path));
	tap_ok(file_exists(path), "a fresh upload is kept");
	t_blob_file(dir, out_f, path, sizeof(path));
	tap_ok(!file_exists(path), "the deleted job's output file is gone");
	err = lr_store_blob_writer_commit(st, live, "dora", NULL, NULL, NULL);
	tap_ok(err == 0, "the live upload still commits after the sweep");

	/* Startup sweep: all temp files go, no grace for artifacts. */
	lr_store_blob_writer_open(st, 0, &live, NULL);
	lr_store_blob_writer_write(live, "x", 1, NULL);
	t_put(st, NULL, "unreferenced artifact", out_f);
	opts.retention_ms = 0;
	opts.tmp_age_ms = 0;
	err = lr_store_sweep(st, &opts, &rep, NULL);
	tap_ok(err == 0 && rep.tmp_files_deleted == 1 &&
		       rep.blobs_deleted == 1 && rep.jobs_deleted == 0 &&
		       t_count_sub(dir, "tmp") == 0,
	       "startup sweep: all temp files and unreferenced artifacts go, "
	       "retention 0 keeps jobs");
	lr_store_blob_writer_abort(live);

	/* Job delete removes unreferenced artifacts past the grace time. */
	nj.model_sha = model_q;
	lr_store_job_cancel(st, "dora", id_q, NULL, NULL);
	q_exec(st, "UPDATE blobs SET touched_ms = 0");
	q_exec(st, "DELETE FROM blob_owners");
	t_blob_file(dir, model_q, path, sizeof(path));
	err = lr_store_job_delete(st, "dora", id_q, NULL);
	{
		char q[200];

		snprintf(q, sizeof(q),
			 "SELECT count(*) FROM blobs WHERE sha = '%s'", model_q);
		tap_ok(err == 0 && !file_exists(path) && q_int(st, q) == 0,
		       "delete removes the job's blobs nothing else uses");
	}
	lr_store_jobs_count(st, counts, NULL);
	tap_ok(lr_store_integrity_check(st, NULL) == 0, "integrity ok");
	(void)id_f;
}

/* Foreign keys stop a blob row that a job names from being deleted. */
static void test_foreign_keys(lr_store *st)
{
	char model[LR_STORE_SHA_LEN + 1], id[33], q[256];
	lr_store_job_new nj = { .tenant = "erin", .spec_json = "{}" };
	int rc;

	t_put(st, "erin", "fk model", model);
	nj.model_sha = model;
	lr_store_job_create(st, &nj, id, NULL);
	snprintf(q, sizeof(q), "DELETE FROM blobs WHERE sha = '%s'", model);
	if (t_pg()) /* the refusal is what matters; codes differ */
		rc = t_exec(st, q) != 0 ? SQLITE_CONSTRAINT : SQLITE_OK;
	else
		rc = sqlite3_exec(st->db, q, NULL, NULL, NULL);
	tap_ok((rc & 0xff) == SQLITE_CONSTRAINT,
	       "a referenced blob row cannot be deleted (rc %d)", rc);
}

/* A torn file (same size, other bytes: e.g. a shared directory that
 * replicated half a write) is never served nor handed to a worker. */
static void test_torn(lr_store *st)
{
	char sha[LR_STORE_SHA_LEN + 1], path[4096];
	lr_msg m = { "" };
	int64_t size = 0;
	int fd = -1, err, f;

	t_put(st, "frank", "the original bytes of a model", sha);
	tap_ok(lr_store_blob_verify(st, sha, NULL) == 0,
	       "an intact blob verifies");
	err = lr_store_blob_open(st, "frank", sha, &fd, &size, NULL);
	tap_ok(err == 0 && fd >= 0, "an intact blob opens");
	if (fd >= 0)
		close(fd);
	t_blob_file(dir, sha, path, sizeof(path));
	f = open(path, O_WRONLY);
	if (f >= 0) {
		(void)!pwrite(f, "X", 1, 5);
		close(f);
	}
	fd = -1;
	err = lr_store_blob_open(st, "frank", sha, &fd, &size, &m);
	tap_ok(err == LR_STORE_EDB && fd < 0 && strstr(m.text, "hashes to"),
	       "a torn blob of the right size is refused (%s)", m.text);
	tap_ok(lr_store_blob_verify(st, sha, NULL) == LR_STORE_EDB,
	       "lr_store_blob_verify refuses it too");
}

int main(void)
{
	lr_store *st = NULL;
	lr_msg msg = { "" };

	dir = t_mkdtemp();
	if (t_open(dir, &st, &msg) != 0) {
		tap_ok(0, "open: %s", msg.text);
		return tap_done();
	}
	test_writer(st);
	test_symlinks(st);
	test_artifacts(st);
	test_tenant_bytes(st);
	test_sweep(st);
	test_foreign_keys(st);
	test_torn(st);
	lr_store_close(st);
	t_rmrf(dir);
	free(dir);
	return tap_done();
}
