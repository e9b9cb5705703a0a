/*
 * test_store_crash.c - kill -9 at chosen and at random moments, then check
 * that the store is consistent (reliability Q3, scaled for CI).
 *
 * Chosen moments: a child process is SIGKILLed in the middle of a slow
 * upload, after an upload is fsynced but before its transaction, between
 * the rename into blobs/ and COMMIT, right after COMMIT, inside a claim
 * transaction and inside a finish transaction (fault hook points raise
 * SIGKILL there). Then the parent "restarts": it opens the store, starts an
 * epoch, recovers and sweeps, and checks that no partial blob is visible,
 * no orphan file remains, interrupted jobs are queued again and
 * integrity_check is ok.
 *
 * A frozen worker (reliability Q5): a child is SIGSTOPped for twice its
 * lease; the job is recovered and reclaimed; once thawed, its heartbeat
 * and finish are rejected by the fence.
 *
 * Write errors (reliability Q7): a child with a 512 KiB file size limit
 * fills the database and then streams an upload; both fail with an error
 * (never a crash), the temp file is removed, and afterwards the store is
 * intact and usable.
 *
 * Random moments: a child runs upload/create/claim/progress/finish cycles
 * and reports every acknowledged job id through a pipe; it is SIGKILLed
 * after a random delay, ITERATIONS times. After each kill the invariants
 * are: every acknowledged job exists; after recovery no job is running;
 * every blob row has a file with that size and SHA-256; after the startup
 * sweep tmp/ is empty and every file in blobs/ has a row; every succeeded
 * job's result blob exists; integrity_check is ok.
 */
#include "config.h"

#include <dirent.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "storage/store-int.h"
#include "tap.h"
#include "store_testlib.h"

#define ITERATIONS_DEFAULT 25

static char *dir;
static const char *kill_at; /* fault point where the child dies */

static void die_here(const char *point)
{
	if (kill_at != NULL && strcmp(point, kill_at) == 0)
		raise(SIGKILL);
}

/* Forks; the child runs fn(arg) and exits with its return value. No store
 * is open in the parent at this point (no connection crosses fork). */
static pid_t spawn(int (*fn)(void *), void *arg)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(fn(arg));
	return pid;
}

/* Waits for pid; 1 when it was killed by SIGKILL. */
static int reaped_by_sigkill(pid_t pid)
{
	int status = 0;

	if (waitpid(pid, &status, 0) != pid)
		return 0;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

/* ---- chosen moments ------------------------------------------------- */

/* Writes 4 KiB every 2 ms forever. */
static int child_slow_upload(void *arg)
{
	lr_store *st = NULL;
	lr_store_blob_writer *w = NULL;
	char chunk[4096];

	(void)arg;
	memset(chunk, 'u', sizeof(chunk));
	if (t_open(dir, &st, NULL) != 0 ||
	    lr_store_blob_writer_open(st, 0, &w, NULL) != 0)
		return 2;
	for (;;) {
		if (lr_store_blob_writer_write(w, chunk, sizeof(chunk), NULL))
			return 3;
		t_sleep_ms(2);
	}
}

/* Puts `arg` (a string) as alice's blob, dying at kill_at. */
static int child_put(void *arg)
{
	lr_store *st = NULL;
	char sha[LR_STORE_SHA_LEN + 1];

	lr__fault_hook = die_here;
	if (t_open(dir, &st, NULL) != 0)
		return 2;
	if (t_put(st, "alice", arg, sha) != 0)
		return 3;
	lr_store_close(st);
	return 0;
}

/* Claims one job, dying at kill_at ("claim-updated"), or claims and then
 * finishes it, dying in finish ("finish-updated"). */
static int child_claim(void *arg)
{
	lr_store *st = NULL;
	lr_store_job job = { 0 };
	lr_store_job_result res = { .state = LR_JOB_STATE_FAILED };
	int64_t epoch = *(int64_t *)arg;
	int claimed;

	lr__fault_hook = die_here;
	if (t_open(dir, &st, NULL) != 0)
		return 2;
	if (lr_store_job_claim(st, "crash-child", epoch, 60000, &job,
			       &claimed, NULL) != 0 || !claimed)
		return 3;
	lr_store_job_finish(st, job.id, job.fence, &res, NULL);
	return 4;
}

/* Size of the only file in tmp/, or -1. */
static long long tmp_file_size(void)
{
	char path[4096];
	struct dirent *de;
	struct stat sb;
	long long size = -1;
	DIR *d;

	snprintf(path, sizeof(path), "%s/tmp", dir);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/tmp/%s", dir, de->d_name);
		if (stat(path, &sb) == 0)
			size = sb.st_size;
	}
	closedir(d);
	return size;
}



/*
 * Checks the blob invariants: every row has a file of that size whose
 * content hashes to the name; when `all_files_have_rows`, also every file
 * has a row. Returns the number of violations (details as diagnostics).
 */
static int check_blobs(lr_store *st, int all_files_have_rows)
{
	sqlite3_stmt *s;
	char path[4096], got[LR_STORE_SHA_LEN + 1];
	struct dirent *de, *fe;
	struct stat sb;
	DIR *top, *sub;
	int bad = 0;

	sqlite3_prepare_v2(st->db, "SELECT sha, size_bytes FROM blobs", -1, &s,
			   NULL);
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *sha = (const char *)sqlite3_column_text(s, 0);

		t_blob_file(dir, sha, path, sizeof(path));
		if (stat(path, &sb) != 0 ||
		    sb.st_size != sqlite3_column_int64(s, 1) ||
		    t_sha_file(path, got) != 0 || strcmp(got, sha) != 0) {
			tap_diag("blob row %s: file missing or wrong", sha);
			bad++;
		}
	}
	sqlite3_finalize(s);
	if (!all_files_have_rows)
		return bad;
	snprintf(path, sizeof(path), "%s/blobs", dir);
	top = opendir(path);
	while (top != NULL && (de = readdir(top)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/blobs/%s", dir, de->d_name);
		sub = opendir(path);
		while (sub != NULL && (fe = readdir(sub)) != NULL) {
			char q[200];

			if (fe->d_name[0] == '.')
				continue;
			snprintf(q, sizeof(q),
				 "SELECT count(*) FROM blobs WHERE sha = '%.64s'",
				 fe->d_name);
			if (q_int(st, q) != 1) {
				tap_diag("file %s has no row", fe->d_name);
				bad++;
			}
		}
		if (sub != NULL)
			closedir(sub);
	}
	if (top != NULL)
		closedir(top);
	return bad;
}

static void test_chosen_moments(void)
{
	lr_store *st = NULL;
	lr_store_sweep_opts startup = { .retention_ms = 0, .tmp_age_ms = 0 };
	lr_store_sweep_report rep;
	lr_store_recover_report rec;
	lr_store_blob_info bi;
	lr_store_job job = { 0 };
	char s_synced[65], s_renamed[65], s_committed[65], path[4096];
	char model[65], id_claim[33], id_finish[33];
	lr_store_job_new nj = { .tenant = "alice", .spec_json = "{}" };
	int64_t epoch = 0;
	long long size = -1;
	pid_t pid;
	int killed;

	/* 1. Mid-upload. */
	pid = spawn(child_slow_upload, NULL);
	{
		double t0 = lr_now(); /* wait (at most 30 s) for 64 KiB */

		while (size < 64 * 1024 && lr_now() - t0 < 30) {
			t_sleep_ms(2);
			size = tmp_file_size();
		}
	}
	kill(pid, SIGKILL);
	tap_ok(reaped_by_sigkill(pid) && size >= 64 * 1024,
	       "child killed mid-upload with %lld bytes written", size);

	/* 2-4. Around the commit of an upload. */
	t_sha_mem("synced, not committed", 21, s_synced);
	t_sha_mem("renamed, not committed", 22, s_renamed);
	t_sha_mem("committed", 9, s_committed);
	kill_at = "blob-synced";
	pid = spawn(child_put, "synced, not committed");
	killed = reaped_by_sigkill(pid);
	kill_at = "blob-renamed";
	pid = spawn(child_put, "renamed, not committed");
	killed += reaped_by_sigkill(pid);
	kill_at = "blob-committed";
	pid = spawn(child_put, "committed");
	killed += reaped_by_sigkill(pid);
	tap_ok(killed == 3, "three children killed around blob commit");
	t_blob_file(dir, s_renamed, path, sizeof(path));
	tap_ok(access(path, F_OK) == 0,
	       "the renamed-but-uncommitted file is in blobs/ (as a crash "
	       "leaves it)");

	/* 5-6. Inside the claim and finish transactions. */
	if (t_open(dir, &st, NULL) != 0) {
		tap_ok(0, "open after kills");
		return;
	}
	lr_store_epoch_begin(st, &epoch, NULL);
	t_put(st, "alice", "crash model", model);
	nj.model_sha = model;
	lr_store_job_create(st, &nj, id_claim, NULL);
	st = lr_store_close(st);
	kill_at = "claim-updated";
	pid = spawn(child_claim, &epoch);
	killed = reaped_by_sigkill(pid);
	t_open(dir, &st, NULL);
	lr_store_job_get(st, "alice", id_claim, &job, NULL);
	tap_ok(killed && job.state == LR_JOB_STATE_QUEUED &&
		       job.attempts == 0 && job.fence == 0,
	       "killed inside the claim transaction: job still queued, "
	       "attempts 0, fence 0");
	lr_store_job_fini(&job);
	st = lr_store_close(st);
	kill_at = "finish-updated";
	pid = spawn(child_claim, &epoch);
	killed = reaped_by_sigkill(pid);
	t_open(dir, &st, NULL);
	lr_store_job_get(st, "alice", id_claim, &job, NULL);
	tap_ok(killed && job.state == LR_JOB_STATE_RUNNING &&
		       job.attempts == 1 && job.fence == 1 &&
		       job.error_json == NULL,
	       "killed inside the finish transaction: still running, the "
	       "failure was not recorded");
	lr_store_job_fini(&job);
	(void)id_finish;

	/* Restart. */
	tap_ok(lr_store_integrity_check(st, NULL) == 0,
	       "integrity_check ok after the kills");
	tap_ok(lr_store_blob_stat(st, "alice", s_synced, &bi, NULL) ==
			       LR_STORE_ENOTFOUND &&
		       lr_store_blob_stat(st, "alice", s_renamed, &bi, NULL) ==
			       LR_STORE_ENOTFOUND,
	       "uncommitted uploads are not visible");
	tap_ok(lr_store_blob_stat(st, "alice", s_committed, &bi, NULL) == 0 &&
		       bi.size_bytes == 9,
	       "the committed upload is complete");
	lr_store_epoch_begin(st, &epoch, NULL);
	lr_store_jobs_recover(st, epoch, &rec, NULL);
	tap_ok(rec.requeued == 1 && rec.failed == 0,
	       "recovery requeues the interrupted job");
	tap_ok(q_int(st, "SELECT count(*) FROM jobs WHERE state = 'running'") ==
		       0,
	       "no job left running");
	lr_store_sweep(st, &startup, &rep, NULL);
	tap_ok(rep.tmp_files_deleted == 2 && rep.orphan_files_deleted == 1,
	       "startup sweep removes 2 temp files and 1 orphan (%lld, %lld)",
	       (long long)rep.tmp_files_deleted,
	       (long long)rep.orphan_files_deleted);
	tap_ok(access(path, F_OK) != 0, "the orphan file is gone");
	tap_ok(t_count_sub(dir, "tmp") == 0 && check_blobs(st, 1) == 0,
	       "tmp/ empty; every blob file has a row and every row a "
	       "matching file");
	{
		/* The lost uploads can be retried. */
		char sha[65];

		tap_ok(t_put(st, "alice", "renamed, not committed", sha) == 0 &&
			       strcmp(sha, s_renamed) == 0 &&
			       check_blobs(st, 1) == 0,
		       "the interrupted upload succeeds on retry");
	}
	lr_store_close(st);
}

/* ---- a frozen worker (reliability Q5) -------------------------------- */

typedef struct frozen_arg {
	int fd;        /* pipe: the child writes one byte once it has the job */
	int go_fd;     /* pipe: the parent writes one byte after SIGCONT */
	int64_t epoch; /* epoch to claim under */
} frozen_arg;

/* Claims with a 200 ms lease, reports, waits for the parent (SIGSTOP comes
 * meanwhile), then tries to heartbeat and finish. Exit 0 when both were rejected as stale,
 * 1 when the lost job was written to, 2.. on setup errors. */
static int child_frozen(void *arg)
{
	frozen_arg *a = arg;
	lr_store *st = NULL;
	lr_store_job job = { 0 };
	lr_store_job_result res = { .state = LR_JOB_STATE_FAILED,
				    .error_json = "{\"title\":\"stale\"}" };
	int claimed, hb, fin;
	char go;

	if (t_open(dir, &st, NULL) != 0)
		return 2;
	if (lr_store_job_claim(st, "frozen", a->epoch, 200, &job, &claimed,
			       NULL) != 0 || !claimed)
		return 3;
	if (write(a->fd, "c", 1) != 1)
		return 4;
	if (read(a->go_fd, &go, 1) != 1) /* stopped and resumed meanwhile */
		return 5;
	hb = lr_store_job_heartbeat(st, job.id, job.fence, 200, NULL, NULL);
	fin = lr_store_job_finish(st, job.id, job.fence, &res, NULL);
	lr_store_close(st);
	return hb == LR_STORE_ESTALE && fin == LR_STORE_ESTALE ? 0 : 1;
}

static void test_frozen_worker(void)
{
	lr_store *st = NULL;
	lr_store_job job = { 0 }, got = { 0 };
	lr_store_job_new nj = { .tenant = "alice", .spec_json = "{}" };
	lr_store_job_result res = { .state = LR_JOB_STATE_SUCCEEDED };
	lr_store_recover_report rec = { 0, 0, 0 };
	frozen_arg a;
	char model[65], out[65], id[33], c = 0;
	int fds[2], go[2], status = -1, claimed = 0, err;
	pid_t pid;

	t_open(dir, &st, NULL);
	lr_store_epoch_begin(st, &a.epoch, NULL);
	t_put(st, "alice", "frozen model", model);
	nj.model_sha = model;
	lr_store_job_create(st, &nj, id, NULL);
	st = lr_store_close(st);
	if (pipe(fds) != 0 || pipe(go) != 0)
		return;
	a.fd = fds[1];
	a.go_fd = go[0];
	pid = spawn(child_frozen, &a);
	close(fds[1]);
	close(go[0]);
	if (read(fds[0], &c, 1) != 1)
		tap_diag("child did not claim");
	close(fds[0]);
	kill(pid, SIGSTOP);
	t_sleep_ms(2 * 200 + 50); /* frozen for 2x the lease */
	t_open(dir, &st, NULL);
	lr_store_jobs_recover(st, a.epoch, &rec, NULL);
	err = lr_store_job_claim(st, "rescuer", a.epoch, 60000, &job, &claimed,
				 NULL);
	tap_ok(c == 'c' && rec.requeued == 1 && err == 0 && claimed &&
		       strcmp(job.id, id) == 0 && job.fence == 2,
	       "worker frozen (SIGSTOP) for 2x its lease: job requeued and "
	       "reclaimed with fence 2");
	kill(pid, SIGCONT);
	if (write(go[1], "g", 1) != 1)
		tap_diag("cannot resume the child");
	close(go[1]);
	waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "the thawed worker's heartbeat and finish are both rejected "
	       "as stale (exit %d)",
	       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	t_put(st, NULL, "rescued output", out);
	res.result_sha = out;
	err = lr_store_job_finish(st, job.id, job.fence, &res, NULL);
	lr_store_job_get(st, "alice", id, &got, NULL);
	tap_ok(err == 0 && got.state == LR_JOB_STATE_SUCCEEDED &&
		       strcmp(got.result_sha, out) == 0 && got.error_json == NULL,
	       "the job ends once, with the rescuer's result");
	lr_store_job_fini(&got);
	lr_store_job_fini(&job);
	lr_store_close(st);
}

/* ---- write errors (reliability Q7, by file size limit) --------------- */

/* With RLIMIT_FSIZE at 512 KiB, creates jobs with 16 KiB specs until the
 * database cannot grow, then streams a 1 MiB upload. Reports on fd: the
 * number of jobs created, the create error, the upload error, and the
 * number of files left in tmp/. */
static int child_small_disk(void *arg)
{
	int fd = *(int *)arg;
	struct rlimit rl = { 512 * 1024, 512 * 1024 };
	lr_store *st = NULL;
	lr_store_blob_writer *w = NULL;
	lr_store_job_new nj = { .tenant = "alice" };
	char *spec, model[65], id[33], chunk[4096], line[128];
	int created = 0, cerr = 0, werr = 0, i;

	signal(SIGXFSZ, SIG_IGN);
	if (t_open(dir, &st, NULL) != 0 ||
	    t_put(st, "alice", "small disk model", model) != 0)
		return 2;
	spec = malloc(16 * 1024 + 16);
	strcpy(spec, "{\"pad\":\"");
	memset(spec + 8, 'p', 16 * 1024);
	strcpy(spec + 8 + 16 * 1024, "\"}");
	nj.spec_json = spec;
	nj.model_sha = model;
	if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
		return 3;
	for (i = 0; i < 1000 && cerr == 0; i++) {
		cerr = lr_store_job_create(st, &nj, id, NULL);
		if (cerr == 0)
			created++;
	}
	memset(chunk, 'w', sizeof(chunk));
	werr = lr_store_blob_writer_open(st, 0, &w, NULL);
	for (i = 0; werr == 0 && i < 256; i++)
		werr = lr_store_blob_writer_write(w, chunk, sizeof(chunk), NULL);
	if (w != NULL) {
		int c = lr_store_blob_writer_commit(st, w, "alice", NULL, NULL,
						    NULL);

		if (werr == 0)
			werr = c;
	}
	snprintf(line, sizeof(line), "%d %d %d %d", created, cerr, werr,
		 t_count_sub(dir, "tmp"));
	if (write(fd, line, strlen(line)) < 0)
		return 4;
	lr_store_close(st);
	free(spec);
	return 0;
}

static void test_small_disk(void)
{
	lr_store *st = NULL;
	char line[128] = "";
	int fds[2], created = -1, cerr = 0, werr = 0, left = -1, status = -1;
	long long jobs;
	char model[65], id[33];
	lr_store_job_new nj = { .tenant = "alice", .spec_json = "{}" };
	pid_t pid;
	ssize_t n;

	if (pipe(fds) != 0)
		return;
	pid = spawn(child_small_disk, &fds[1]);
	close(fds[1]);
	n = read(fds[0], line, sizeof(line) - 1);
	close(fds[0]);
	waitpid(pid, &status, 0);
	if (n > 0)
		line[n] = '\0';
	sscanf(line, "%d %d %d %d", &created, &cerr, &werr, &left);
	tap_diag("file size limit: %d jobs created, then create -> %s, "
		 "upload -> %s",
		 created, lr_store_strerror(cerr), lr_store_strerror(werr));
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && created > 0 &&
		       cerr < 0 && cerr != LR_EINVAL && cerr != -ETIMEDOUT,
	       "a full disk makes create fail with an I/O error, no crash");
	tap_ok(werr == -EFBIG && left == 0,
	       "an upload that cannot be written fails (%s) and its temp "
	       "file is removed",
	       lr_store_strerror(werr));
	t_open(dir, &st, NULL);
	tap_ok(st != NULL && lr_store_integrity_check(st, NULL) == 0,
	       "after space is back: integrity_check ok");
	jobs = q_int(st, "SELECT count(*) FROM jobs");
	t_put(st, "alice", "after the disk was full", model);
	nj.model_sha = model;
	tap_ok(jobs == created && lr_store_job_create(st, &nj, id, NULL) == 0,
	       "every acknowledged job is there (%lld) and the store works "
	       "again without a restart of anything",
	       jobs);
	lr_store_close(st);
}

/* ---- random moments ------------------------------------------------- */

/* Cycles forever; writes each acknowledged job id (33 bytes) to fd. */
static int child_cycles(void *arg)
{
	int fd = *(int *)arg;
	lr_store *st = NULL;
	lr_store_job job = { 0 };
	lr_store_job_new nj = { .tenant = "alice", .spec_json = "{\"k\":1}" };
	lr_store_job_result res = { .state = LR_JOB_STATE_SUCCEEDED };
	unsigned char buf[48 * 1024];
	char id[33], model[65], out[65];
	lr_store_blob_info bi;
	int64_t epoch;
	unsigned r = (unsigned)getpid();
	int claimed;

	if (t_open(dir, &st, NULL) != 0 ||
	    lr_store_epoch_begin(st, &epoch, NULL) != 0 ||
	    lr_store_jobs_recover(st, epoch, NULL, NULL) != 0)
		return 2;
	for (;;) {
		size_t n = 1 + (r = r * 1103515245u + 12345u) % sizeof(buf), i;

		for (i = 0; i < n; i++)
			buf[i] = (unsigned char)(r >> (i % 24));
		if (lr_store_blob_put(st, "alice", buf, n, &bi, NULL))
			return 3;
		memcpy(model, bi.sha, sizeof(model));
		nj.model_sha = model;
		if (lr_store_job_create(st, &nj, id, NULL))
			return 4;
		if (write(fd, id, sizeof(id)) != (ssize_t)sizeof(id))
			return 5;
		if (lr_store_job_claim(st, "cycler", epoch, 60000, &job,
				       &claimed, NULL))
			return 6;
		if (!claimed)
			continue;
		lr_store_job_progress(st, job.id, job.fence, "{\"p\":0.5}",
				      NULL, NULL);
		buf[0] ^= 0x5a;
		if (lr_store_blob_put(st, NULL, buf, n, &bi, NULL))
			return 7;
		memcpy(out, bi.sha, sizeof(out));
		res.result_sha = out;
		if (lr_store_job_finish(st, job.id, job.fence, &res, NULL))
			return 8;
		lr_store_job_fini(&job);
	}
}

static void test_random_kills(int iterations)
{
	lr_store_sweep_opts startup = { .retention_ms = 0, .tmp_age_ms = 0 };
	char (*acked)[33] = NULL;
	size_t n_acked = 0, cap = 0;
	int it, lost = 0, running = 0, blob_bad = 0, orphan_bad = 0;
	int tmp_left = 0, integrity_bad = 0, result_bad = 0, not_killed = 0;
	long long total_jobs = 0, succeeded = 0, orphans = 0, temps = 0;
	unsigned seed = (unsigned)time(NULL);

	tap_diag("random kill seed %u", seed);
	srand(seed);
	for (it = 0; it < iterations; it++) {
		lr_store *st = NULL;
		lr_store_sweep_report rep;
		int fds[2], status;
		char id[33];
		pid_t pid;
		int64_t epoch;
		size_t k;

		if (pipe(fds) != 0)
			break;
		pid = spawn(child_cycles, &fds[1]);
		close(fds[1]);
		t_sleep_ms(10 + rand() % 150);
		kill(pid, SIGKILL);
		if (waitpid(pid, &status, 0) != pid || !WIFSIGNALED(status)) {
			tap_diag("child exited %d instead of being killed",
				 WEXITSTATUS(status));
			not_killed++;
		}
		while (read(fds[0], id, sizeof(id)) == (ssize_t)sizeof(id)) {
			if (n_acked == cap) {
				cap = cap ? 2 * cap : 256;
				acked = realloc(acked, cap * sizeof(*acked));
			}
			memcpy(acked[n_acked++], id, sizeof(id));
		}
		close(fds[0]);

		/* The restart. */
		if (t_open(dir, &st, NULL) != 0) {
			integrity_bad++;
			continue;
		}
		if (lr_store_integrity_check(st, NULL) != 0)
			integrity_bad++;
		blob_bad += check_blobs(st, 0);
		/* PostgreSQL ends a killed client's session (and commits or
		 * rolls back what it had sent) asynchronously: a claim
		 * committed after the recovery below would count as running.
		 * A restarted daemon's periodic lease pass catches that; here
		 * the recovery waits, at most 5 s, for the session to end. */
		for (int w = 0; t_pg() && w < 500 &&
		     q_int(st, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
			       "current_database() AND pid <> pg_backend_pid()") > 0; w++)
			t_sleep_ms(10);
		lr_store_epoch_begin(st, &epoch, NULL);
		lr_store_jobs_recover(st, epoch, NULL, NULL);
		running += (int)q_int(
			st, "SELECT count(*) FROM jobs WHERE state = 'running'");
		lr_store_sweep(st, &startup, &rep, NULL);
		orphans += rep.orphan_files_deleted;
		temps += rep.tmp_files_deleted;
		tmp_left += t_count_sub(dir, "tmp");
		orphan_bad += check_blobs(st, 1);
		result_bad += (int)q_int(
			st, "SELECT count(*) FROM jobs WHERE state = 'succeeded' "
			    "AND (result_sha IS NULL OR result_sha NOT IN "
			    "(SELECT sha FROM blobs))");
		for (k = 0; k < n_acked; k++) {
			lr_store_job j = { 0 };

			if (lr_store_job_get(st, "alice", acked[k], &j, NULL))
				lost++;
			lr_store_job_fini(&j);
		}
		total_jobs = q_int(st, "SELECT count(*) FROM jobs");
		succeeded = q_int(
			st, "SELECT count(*) FROM jobs WHERE state = 'succeeded'");
		lr_store_close(st);
	}
	tap_diag("%d kills: %zu acknowledged jobs, %lld in the db, %lld "
		 "succeeded; the sweeps removed %lld temp files and %lld "
		 "orphan blob files",
		 iterations, n_acked, total_jobs, succeeded, temps, orphans);
	tap_ok(not_killed == 0, "every child was killed mid-cycle");
	tap_ok(n_acked > 0 && succeeded > 0, "children made progress");
	tap_ok(lost == 0, "0 acknowledged jobs lost (%d)", lost);
	tap_ok(running == 0, "0 jobs running after recovery (%d)", running);
	tap_ok(blob_bad == 0,
	       "every blob row has its complete file before the sweep (%d)",
	       blob_bad);
	tap_ok(orphan_bad == 0 && tmp_left == 0,
	       "after each startup sweep: 0 orphan files, 0 temp files");
	tap_ok(result_bad == 0, "every succeeded job has its result blob");
	tap_ok(integrity_bad == 0, "integrity_check ok after every kill");
	free(acked);
}

int main(void)
{
	const char *env = getenv("LR_STORE_CRASH_ITERATIONS");
	int iterations = env ? atoi(env) : ITERATIONS_DEFAULT;

	dir = t_mkdtemp();
	test_chosen_moments();
	t_rmrf(dir);
	free(dir);
	dir = t_mkdtemp();
	test_frozen_worker();
	t_rmrf(dir);
	free(dir);
	if (t_pg()) {
		/* RLIMIT_FSIZE limits this process's files: the SQLite file,
		 * not a PostgreSQL server's. */
		tap_diag("backend: PostgreSQL; the small-disk test is "
			 "SQLite-only");
	} else {
		dir = t_mkdtemp();
		test_small_disk();
		t_rmrf(dir);
		free(dir);
	}
	dir = t_mkdtemp();
	test_random_kills(iterations > 0 ? iterations : 1);
	t_rmrf(dir);
	free(dir);
	return tap_done();
}
