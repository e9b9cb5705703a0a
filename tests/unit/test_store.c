/*
 * test_store.c - the job store on a real SQLite database: opening and
 * migrations, ids and tenancy, listing and page tokens, claim, heartbeat,
 * progress, finish, cancel, requeue, recovery (poison pill), fencing after
 * a lease expires, delete, counts.
 */
#include "config.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/store-int.h"
#include "tap.h"
#include "store_testlib.h"

#define SPEC "{\"speedup\":4}"

static char *dir;


static void q_exec(lr_store *st, const char *sql)
{
	if (t_exec(st, sql) != 0)
		tap_diag("exec failed: %s", sql);
}

static int create_job(lr_store *st, const char *tenant, const char *model,
		      int max_attempts, char id[LR_STORE_ID_LEN + 1])
{
	lr_store_job_new nj = { .tenant = tenant, .spec_json = SPEC,
				.model_sha = model,
				.max_attempts = max_attempts };

	return lr_store_job_create(st, &nj, id, NULL);
}

static void test_open(void)
{
	lr_store *st = NULL;
	lr_msg msg = { "" };
	char path[4096], mode[16] = "";
	sqlite3 *raw;
	struct stat sb;
	int err;

	err = t_open(dir, &st, &msg);
	tap_ok(err == 0 && st != NULL, "open a new state_dir (%s)", msg.text);
	snprintf(path, sizeof(path), "%s/lowrankd.db", dir);
	tap_ok(stat(path, &sb) == 0 && S_ISREG(sb.st_mode), "db file created");
	snprintf(path, sizeof(path), "%s/blobs", dir);
	tap_ok(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) &&
		       (sb.st_mode & 0777) == 0700,
	       "blobs/ created with mode 0700");
	snprintf(path, sizeof(path), "%s/tmp", dir);
	tap_ok(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode), "tmp/ created");
	{
		sqlite3_stmt *s;

		sqlite3_prepare_v2(st->db, "PRAGMA journal_mode", -1, &s, NULL);
		if (sqlite3_step(s) == SQLITE_ROW)
			snprintf(mode, sizeof(mode), "%s",
				 (const char *)sqlite3_column_text(s, 0));
		sqlite3_finalize(s);
	}
	tap_ok(strcmp(mode, "wal") == 0, "journal_mode is wal (%s)", mode);
	tap_ok(q_int(st, "PRAGMA synchronous") == 2, "synchronous is FULL");
	tap_ok(q_int(st, "PRAGMA foreign_keys") == 1, "foreign_keys is on");
	tap_ok(q_int(st, "PRAGMA user_version") == LR_STORE_SCHEMA_VERSION,
	       "user_version is %d", LR_STORE_SCHEMA_VERSION);
	tap_ok(lr_store_integrity_check(st, NULL) == 0, "integrity ok");
	st = lr_store_close(st);

	/* Reopening runs no migration twice (it would fail on CREATE). */
	err = t_open(dir, &st, &msg);
	tap_ok(err == 0, "reopen is idempotent (%s)", msg.text);
	tap_ok(q_int(st, "SELECT count(*) FROM meta") == 1,
	       "migration did not run twice");
	st = lr_store_close(st);

	/* A newer schema is refused and left untouched. */
	snprintf(path, sizeof(path), "%s/lowrankd.db", dir);
	sqlite3_open(path, &raw);
	sqlite3_exec(raw, "PRAGMA user_version=99", NULL, NULL, NULL);
	sqlite3_close(raw);
	msg.text[0] = '\0';
	err = t_open(dir, &st, &msg);
	tap_ok(err == LR_STORE_ESCHEMA && st == NULL,
	       "newer schema refused: %s", msg.text);
	tap_ok(strstr(msg.text, "99") != NULL, "message names the version");
	sqlite3_open(path, &raw);
	{
		sqlite3_stmt *s;
		int v = -1;

		sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &s, NULL);
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
		tap_ok(v == 99, "refused database untouched (user_version %d)",
		       v);
	}
	{
		char restore[64];

		snprintf(restore, sizeof(restore), "PRAGMA user_version=%d",
			 LR_STORE_SCHEMA_VERSION);
		sqlite3_exec(raw, restore, NULL, NULL, NULL);
	}
	sqlite3_close(raw);

	err = t_open("", &st, NULL);
	tap_ok(err == LR_EINVAL, "empty state_dir refused");
	snprintf(path, sizeof(path), "%s/lowrankd.db/x", dir);
	err = t_open(path, &st, NULL);
	tap_ok(err < 0 && st == NULL, "state_dir under a file refused (%s)",
	       lr_store_strerror(err));
}

/* Holds SQLite's write lock from a raw connection for hold_ms. */
typedef struct holder {
	const char *path;   /* database file */
	long hold_ms;       /* how long to hold the lock */
	atomic_int locked;  /* set once BEGIN IMMEDIATE succeeded */
	double released;    /* lr_now() just before the COMMIT */
} holder;

static void *hold_lock(void *arg)
{
	holder *h = arg;
	sqlite3 *raw = NULL;

	sqlite3_open(h->path, &raw);
	if (sqlite3_exec(raw, "BEGIN IMMEDIATE", NULL, NULL, NULL) ==
	    SQLITE_OK) {
		atomic_store(&h->locked, 1);
		t_sleep_ms(h->hold_ms);
		h->released = lr_now();
		sqlite3_exec(raw, "COMMIT", NULL, NULL, NULL);
	} else {
		atomic_store(&h->locked, -1);
	}
	sqlite3_close(raw);
	return NULL;
}

/* Reliability Q1: a writer waits for the lock (at least 5 s) instead of
 * failing with SQLITE_BUSY. It must end after the holder let go; how long
 * it waited is only reported, since this thread may be scheduled late on
 * a busy machine and start waiting well after the lock was taken. */
static void test_busy_wait(void)
{
	lr_store *st = NULL;
	holder h = { .hold_ms = 5500 };
	char path[4096];
	pthread_t t;
	int64_t epoch = 0;
	lr_msg msg = { "" };
	double t0, t1, waited;
	int err;

	snprintf(path, sizeof(path), "%s/lowrankd.db", dir);
	h.path = path;
	t_open(dir, &st, NULL);
	atomic_init(&h.locked, 0);
	pthread_create(&t, NULL, hold_lock, &h);
	while (atomic_load(&h.locked) == 0)
		t_sleep_ms(1);
	t0 = lr_now();
	err = lr_store_epoch_begin(st, &epoch, &msg);
	t1 = lr_now();
	waited = t1 - t0;
	pthread_join(t, NULL);
	tap_ok(atomic_load(&h.locked) == 1 && err == 0 && t1 >= h.released,
	       "a write waits %.2f s for a lock held 5.5 s by another "
	       "connection, then succeeds (%s)",
	       waited, msg.text);
	st = lr_store_close(st);
}

/* Many threads opening a brand-new state_dir at once: one creates the
 * schema, the others find it done; nobody fails. */
static void *open_one(void *arg)
{
	const char *d = arg;
	lr_store *st = NULL;
	int err = t_open(d, &st, NULL);

	lr_store_close(st);
	return (void *)(intptr_t)err;
}

static void test_concurrent_open(void)
{
	enum { N = 8 };
	pthread_t t[N];
	char sub[4096];
	int i, failed = 0;
	lr_store *st = NULL;

	snprintf(sub, sizeof(sub), "%s/fresh", dir);
	if (t_pg()) { /* a fresh database too */
		char *d = t_mkdtemp();

		snprintf(sub, sizeof(sub), "%s", d);
		free(d);
	}
	for (i = 0; i < N; i++)
		pthread_create(&t[i], NULL, open_one, sub);
	for (i = 0; i < N; i++) {
		void *r;

		pthread_join(t[i], &r);
		if ((intptr_t)r != 0)
			failed++;
	}
	tap_ok(failed == 0 && t_open(sub, &st, NULL) == 0 &&
		       q_int(st, t_pg() ? "SELECT max(version) FROM lr_schema"
					: "PRAGMA user_version") ==
			       LR_STORE_SCHEMA_VERSION &&
		       q_int(st, "SELECT value FROM meta WHERE key = 'epoch'") ==
			       0,
	       "8 threads open a new state_dir at once: all succeed, one "
	       "schema (%d failed)",
	       failed);
	lr_store_close(st);
}

/* Passwords never reach a log line or --check-config. */
static void test_redact(void)
{
	char b[256];

	lr_store_redact_uri("postgresql://u:secret@h:5432/db?password=x&sslmode=require",
			    b, sizeof(b));
	tap_ok(strcmp(b, "postgresql://u:***@h:5432/db?password=***&sslmode=require") == 0,
	       "URI redacted: %s", b);
	lr_store_redact_uri("postgresql://lowrank@/db?host=/tmp/x", b, sizeof(b));
	tap_ok(strcmp(b, "postgresql://lowrank@/db?host=/tmp/x") == 0,
	       "a URI without a password is unchanged: %s", b);
	lr_store_redact_uri("postgresql://u:pw@h/db", b, 12);
	tap_ok(strlen(b) == 11 && strstr(b, "pw") == NULL,
	       "truncation keeps the password out: %s", b);
	tap_ok(lr_store_set_database("mysql://x", NULL) == LR_EINVAL &&
		       lr_store_set_database("sqlite", NULL) == 0 &&
		       !lr_store_is_shared(),
	       "database: only sqlite or a postgresql:// URI");
}

static void test_validators(void)
{
	tap_ok(lr_store_id_valid("0123456789abcdef0123456789abcdef"),
	       "32 lowercase hex is an id");
	tap_ok(!lr_store_id_valid("0123456789ABCDEF0123456789abcdef"),
	       "uppercase is not an id");
	tap_ok(!lr_store_id_valid("0123456789abcdef0123456789abcde"),
	       "31 chars is not an id");
	tap_ok(!lr_store_id_valid("0123456789abcdef0123456789abcdef0"),
	       "33 chars is not an id");
	tap_ok(!lr_store_id_valid("../../../../etc/passwd") &&
		       !lr_store_id_valid("") && !lr_store_id_valid(NULL),
	       "path-like, empty and NULL ids are rejected");
	tap_ok(!lr_store_id_valid("0123456789abcdef0123456789abcde%"),
	       "percent is not an id");
	tap_ok(!lr_store_sha_valid("abc") &&
		       lr_store_sha_valid("ba7816bf8f01cfea414140de5dae2223"
					  "b00361a396177a9cb410ff61f20015ad"),
	       "sha validation");
	{
		char t64[65], t65[66];

		memset(t64, 'x', 64);
		t64[64] = '\0';
		memset(t65, 'x', 65);
		t65[65] = '\0';
		tap_ok(lr_store_tenant_valid("team-a.prod_1") &&
			       lr_store_tenant_valid(t64) &&
			       !lr_store_tenant_valid(t65) &&
			       !lr_store_tenant_valid("") &&
			       !lr_store_tenant_valid("a/b") &&
			       !lr_store_tenant_valid("a b"),
		       "tenant validation (charset, empty, 64 ok, 65 not)");
	}
	{
		enum lr_job_state s;

		tap_ok(lr_job_state_parse("canceled", &s) == 0 &&
			       s == LR_JOB_STATE_CANCELED &&
			       lr_job_state_parse("RUNNING", &s) == LR_EINVAL &&
			       strcmp(lr_job_state_name(LR_JOB_STATE_RUNNING),
				      "running") == 0 &&
			       lr_job_state_name((enum lr_job_state)7) == NULL,
		       "state names round-trip, strictly");
	}
	tap_ok(strcmp(lr_store_strerror(LR_STORE_ESTALE),
		      "unknown error") != 0 &&
		       strcmp(lr_store_strerror(LR_EINVAL),
			      "Invalid argument") == 0,
	       "strerror knows store and errno codes");
}

static void test_create_get(lr_store *st, const char *model_a,
			    const char *model_b)
{
	char id[LR_STORE_ID_LEN + 1], id2[LR_STORE_ID_LEN + 1], bad[40];
	lr_store_job job = { 0 };
	lr_store_job_new nj = { 0 };
	lr_msg msg = { "" };
	int64_t before = lr_store_now_ms();
	int err;

	err = create_job(st, "alice", model_a, 0, id);
	tap_ok(err == 0 && lr_store_id_valid(id), "create returns an id %s",
	       id);
	err = create_job(st, "alice", model_a, 0, id2);
	tap_ok(err == 0 && strcmp(id, id2) != 0, "ids differ");
	err = lr_store_job_get(st, "alice", id, &job, &msg);
	tap_ok(err == 0, "get own job (%s)", msg.text);
	tap_ok(strcmp(job.id, id) == 0 && strcmp(job.tenant, "alice") == 0 &&
		       job.state == LR_JOB_STATE_QUEUED &&
		       strcmp(job.spec_json, SPEC) == 0 &&
		       strcmp(job.model_sha, model_a) == 0 &&
		       job.calib_sha[0] == '\0',
	       "fields as created");
	tap_ok(job.created_ms >= before &&
		       job.created_ms <= lr_store_now_ms() &&
		       job.updated_ms == job.created_ms &&
		       job.started_ms == 0 && job.finished_ms == 0,
	       "timestamps");
	tap_ok(job.attempts == 0 &&
		       job.max_attempts == LR_STORE_MAX_ATTEMPTS_DEFAULT &&
		       job.fence == 0 && job.lease_owner[0] == '\0' &&
		       job.progress_json == NULL && job.error_json == NULL &&
		       job.cancel_requested == 0,
	       "queue fields start empty, max_attempts defaults to 3");
	lr_store_job_fini(&job);

	err = lr_store_job_get(st, "bob", id, &job, NULL);
	tap_ok(err == LR_STORE_ENOTFOUND && job.spec_json == NULL,
	       "another tenant's job is not found");
	err = lr_store_job_get(st, "alice", "../../etc/passwd", &job, NULL);
	tap_ok(err == LR_STORE_ENOTFOUND, "path-like id is not found");
	memcpy(bad, id, sizeof(id));
	bad[0] = bad[0] == 'a' ? 'A' : (bad[0] >= 'a' ? 'B' : 'C');
	err = lr_store_job_get(st, "alice", bad, &job, NULL);
	tap_ok(err == LR_STORE_ENOTFOUND, "uppercased id is not found");
	snprintf(bad, sizeof(bad), "%s' OR '1'='1", "x");
	err = lr_store_job_get(st, "alice", bad, &job, NULL);
	tap_ok(err == LR_STORE_ENOTFOUND, "SQL-looking id is not found");
	err = lr_store_job_get(st, "alice", "00000000000000000000000000000000",
			       &job, NULL);
	tap_ok(err == LR_STORE_ENOTFOUND, "well-formed unknown id not found");

	/* Blob ownership is checked at creation. */
	msg.text[0] = '\0';
	err = create_job(st, "alice", model_b, 0, id2);
	tap_ok(err == LR_STORE_ENOTFOUND && id2[0] == '\0',
	       "cannot create a job on another tenant's blob: %s", msg.text);
	nj = (lr_store_job_new){ .tenant = "alice", .spec_json = SPEC,
				 .model_sha = model_a, .calib_sha = model_b };
	msg.text[0] = '\0';
	err = lr_store_job_create(st, &nj, id2, &msg);
	tap_ok(err == LR_STORE_ENOTFOUND && strstr(msg.text, "calibration"),
	       "foreign calibration blob refused: %s", msg.text);
	nj.calib_sha = "nothex";
	err = lr_store_job_create(st, &nj, id2, NULL);
	tap_ok(err == LR_STORE_ENOTFOUND, "malformed calibration id refused");
	nj.calib_sha = NULL;
	nj.spec_json = "{\"speedup\":";
	msg.text[0] = '\0';
	err = lr_store_job_create(st, &nj, id2, &msg);
	tap_ok(err == LR_EINVAL, "invalid JSON spec refused: %s", msg.text);
	nj.spec_json = "[1,2]";
	err = lr_store_job_create(st, &nj, id2, NULL);
	tap_ok(err == LR_EINVAL, "non-object JSON spec refused");
	nj.spec_json = SPEC;
	nj.tenant = "a/b";
	err = lr_store_job_create(st, &nj, id2, NULL);
	tap_ok(err == LR_EINVAL, "bad tenant refused");
	nj.tenant = "alice";
	nj.max_attempts = -1;
	err = lr_store_job_create(st, &nj, id2, NULL);
	tap_ok(err == LR_EINVAL, "bad max_attempts refused");
}

static void test_queue_limit(lr_store *st, const char *model_b)
{
	char id[LR_STORE_ID_LEN + 1];
	lr_store_job_new nj = { .tenant = "bob", .spec_json = SPEC,
				.model_sha = model_b, .queued_max = 2 };
	int64_t n = -1;
	int e1, e2, e3;

	e1 = lr_store_job_create(st, &nj, id, NULL);
	e2 = lr_store_job_create(st, &nj, id, NULL);
	e3 = lr_store_job_create(st, &nj, id, NULL);
	tap_ok(e1 == 0 && e2 == 0 && e3 == LR_STORE_EQUEUEFULL,
	       "queued_max 2: third job refused with EQUEUEFULL (%d %d %d)",
	       e1, e2, e3);
	tap_ok(lr_store_tenant_active(st, "bob", &n, NULL) == 0 && n == 2,
	       "tenant_active counts 2 (%lld)", (long long)n);
	tap_ok(lr_store_tenant_active(st, "carol", &n, NULL) == 0 && n == 0,
	       "other tenant has 0");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static void test_list(lr_store *st, const char *model_c)
{
	enum { N = 7 };
	char ids[N][LR_STORE_ID_LEN + 1], seen[N + 2][LR_STORE_ID_LEN + 1];
	char token[LR_STORE_TOKEN_MAX];
	lr_store_job_page page = { 0 };
	int i, err, pages = 0, nseen = 0, ordered = 1, dup = 0, match = 1;
	int64_t last_created = INT64_MAX;

	for (i = 0; i < N; i++) {
		create_job(st, "carol", model_c, 0, ids[i]);
		if (i == 3)
			t_sleep_ms(3); /* some equal, some distinct times */
	}
	token[0] = '\0';
	do {
		err = lr_store_jobs_list(st, "carol", -1, 3, token, &page,
					 NULL);
		if (err)
			break;
		pages++;
		for (i = 0; i < (int)page.count && nseen < N + 2; i++) {
			if (page.jobs[i].created_ms > last_created)
				ordered = 0;
			last_created = page.jobs[i].created_ms;
			memcpy(seen[nseen++], page.jobs[i].id,
			       LR_STORE_ID_LEN + 1);
		}
		snprintf(token, sizeof(token), "%s", page.next_token);
		lr_store_job_page_fini(&page);
	} while (token[0] != '\0' && pages < 10);
	tap_ok(err == 0 && pages == 3 && nseen == N,
	       "7 jobs in pages of 3: 3 pages, 7 jobs (%d pages, %d jobs)",
	       pages, nseen);
	tap_ok(ordered, "newest first");
	qsort(seen, (size_t)nseen, sizeof(seen[0]), cmp_str);
	qsort(ids, N, sizeof(ids[0]), cmp_str);
	for (i = 0; i + 1 < nseen; i++)
		if (strcmp(seen[i], seen[i + 1]) == 0)
			dup = 1;
	for (i = 0; i < N && i < nseen; i++)
		if (strcmp(seen[i], ids[i]) != 0)
			match = 0;
	tap_ok(!dup && match, "every job exactly once across pages");

	err = lr_store_jobs_list(st, "carol", -1, 0, NULL, &page, NULL);
	tap_ok(err == 0 && page.count == N && page.next_token[0] == '\0',
	       "default limit returns all 7 and no next token");
	lr_store_job_page_fini(&page);
	err = lr_store_jobs_list(st, "carol", -1, 7, NULL, &page, NULL);
	tap_ok(err == 0 && page.count == N && page.next_token[0] == '\0',
	       "limit equal to the count: no next token");
	lr_store_job_page_fini(&page);

	err = lr_store_jobs_list(st, "carol", LR_JOB_STATE_RUNNING, 10, NULL,
				 &page, NULL);
	tap_ok(err == 0 && page.count == 0, "state filter running: none");
	lr_store_job_page_fini(&page);
	err = lr_store_jobs_list(st, "carol", LR_JOB_STATE_QUEUED, 2, NULL,
				 &page, NULL);
	tap_ok(err == 0 && page.count == 2 && page.next_token[0] != '\0' &&
		       page.jobs[0].state == LR_JOB_STATE_QUEUED,
	       "state filter queued pages");
	snprintf(token, sizeof(token), "%s", page.next_token);
	lr_store_job_page_fini(&page);
	err = lr_store_jobs_list(st, "carol", -1, 2, token, &page, NULL);
	tap_ok(err == LR_EINVAL && page.count == 0 && page.jobs == NULL,
	       "token from another filter refused");
	err = lr_store_jobs_list(st, "carol", LR_JOB_STATE_QUEUED, 2, token,
				 &page, NULL);
	tap_ok(err == 0 && page.count == 2, "token with its own filter works");
	lr_store_job_page_fini(&page);
	{
		const char *bad[] = { "x", "!!!!", "djEuLTEuMTIz", "====",
				      "../../etc", "djEuLTEuLTUuMDAwMDAwMDAwMDAw"
						   "MDAwMDAwMDAwMDAwMDAwMDAwMDAw" };
		int ok = 1;
		size_t k;

		for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			err = lr_store_jobs_list(st, "carol", -1, 2, bad[k],
						 &page, NULL);
			if (err != LR_EINVAL)
				ok = 0;
			lr_store_job_page_fini(&page);
		}
		tap_ok(ok, "malformed tokens are LR_EINVAL");
	}
	err = lr_store_jobs_list(st, "dave", -1, 100, NULL, &page, NULL);
	tap_ok(err == 0 && page.count == 0, "other tenant lists nothing");
	lr_store_job_page_fini(&page);
	err = lr_store_jobs_list(st, "carol", 9, 10, NULL, &page, NULL);
	tap_ok(err == LR_EINVAL, "bad state filter refused");
}

/* Claims until the queue is empty, finishing each job as failed. */
static void drain(lr_store *st, int64_t epoch)
{
	lr_store_job job = { 0 };
	lr_store_job_result res = { .state = LR_JOB_STATE_FAILED };
	int claimed = 1;

	while (claimed) {
		if (lr_store_job_claim(st, "drain", epoch, 60000, &job,
				       &claimed, NULL) != 0)
			break;
		if (claimed)
			lr_store_job_finish(st, job.id, job.fence, &res, NULL);
		lr_store_job_fini(&job);
	}
}

static void test_worker_cycle(lr_store *st, const char *model_a,
			      int64_t epoch)
{
	char id[LR_STORE_ID_LEN + 1], result[LR_STORE_SHA_LEN + 1];
	char report[LR_STORE_SHA_LEN + 1];
	lr_store_job job = { 0 }, got = { 0 };
	lr_store_job_result res = { 0 };
	lr_msg msg = { "" };
	int claimed = -1, cancel = -1, err;
	int64_t t0, counts[LR_JOB_STATE_COUNT];

	drain(st, epoch);
	err = lr_store_job_claim(st, "w1", epoch, 60000, &job, &claimed, NULL);
	tap_ok(err == 0 && claimed == 0 && job.id[0] == '\0',
	       "claim on an empty queue: claimed = 0");
	create_job(st, "alice", model_a, 0, id);
	t0 = lr_store_now_ms();
	err = lr_store_job_claim(st, "w1", epoch, 60000, &job, &claimed, &msg);
	tap_ok(err == 0 && claimed == 1 && strcmp(job.id, id) == 0,
	       "claim returns the queued job (%s)", msg.text);
	tap_ok(job.state == LR_JOB_STATE_RUNNING && job.fence == 1 &&
		       job.attempts == 1 && strcmp(job.lease_owner, "w1") == 0 &&
		       job.lease_epoch == epoch &&
		       job.lease_expires_ms >= t0 + 60000 &&
		       job.started_ms >= t0,
	       "claim sets running, fence 1, attempts 1, lease");
	err = lr_store_job_claim(st, "w2", epoch, 60000, &got, &claimed, NULL);
	tap_ok(err == 0 && claimed == 0, "a running job is not claimed twice");

	err = lr_store_job_heartbeat(st, job.id, job.fence, 120000, &cancel,
				     NULL);
	lr_store_job_get(st, "alice", id, &got, NULL);
	tap_ok(err == 0 && cancel == 0 &&
		       got.lease_expires_ms >= t0 + 120000,
	       "heartbeat extends the lease");
	lr_store_job_fini(&got);
	err = lr_store_job_progress(st, job.id, job.fence,
				    "{\"stage\":\"svd\",\"layer\":2,\"of\":5}",
				    &cancel, NULL);
	lr_store_job_get(st, "alice", id, &got, NULL);
	tap_ok(err == 0 && got.progress_json != NULL &&
		       strstr(got.progress_json, "\"layer\":2") != NULL,
	       "progress is stored");
	lr_store_job_fini(&got);
	err = lr_store_job_progress(st, job.id, job.fence, "not json", NULL,
				    NULL);
	tap_ok(err == LR_EINVAL, "invalid progress JSON refused");
	err = lr_store_job_heartbeat(st, job.id, job.fence + 1, 1000, NULL,
				     NULL);
	tap_ok(err == LR_STORE_ESTALE, "heartbeat with a wrong fence: ESTALE");
	err = lr_store_job_heartbeat(st, "zz", job.fence, 1000, NULL, NULL);
	tap_ok(err == LR_STORE_ENOTFOUND, "heartbeat with a malformed id");

	res.state = LR_JOB_STATE_SUCCEEDED;
	res.result_sha = "0000000000000000000000000000000000000000000000000000000000000000";
	err = lr_store_job_finish(st, job.id, job.fence, &res, &msg);
	tap_ok(err == LR_STORE_ENOTFOUND, "finish with an unknown result blob");
	t_put(st, NULL, "compressed model bytes", result);
	t_put(st, NULL, "{\"report\":1}", report);
	res.result_sha = result;
	res.report_sha = report;
	res.error_json = "{\"title\":\"x\"}";
	err = lr_store_job_finish(st, job.id, job.fence, &res, NULL);
	tap_ok(err == LR_EINVAL, "succeeded with an error refused");
	res.error_json = NULL;
	res.state = LR_JOB_STATE_RUNNING;
	err = lr_store_job_finish(st, job.id, job.fence, &res, NULL);
	tap_ok(err == LR_EINVAL, "finish to a non-terminal state refused");
	res.state = LR_JOB_STATE_SUCCEEDED;
	err = lr_store_job_finish(st, job.id, job.fence, &res, &msg);
	tap_ok(err == 0, "finish succeeded (%s)", msg.text);
	lr_store_job_get(st, "alice", id, &got, NULL);
	tap_ok(got.state == LR_JOB_STATE_SUCCEEDED &&
		       strcmp(got.result_sha, result) == 0 &&
		       strcmp(got.report_sha, report) == 0 &&
		       got.finished_ms >= got.started_ms &&
		       got.lease_owner[0] == '\0' && got.lease_expires_ms == 0 &&
		       got.error_json == NULL,
	       "succeeded job has result, report, no lease");
	lr_store_job_fini(&got);
	err = lr_store_job_finish(st, job.id, job.fence, &res, NULL);
	tap_ok(err == LR_STORE_ESTALE, "a second finish is rejected");
	err = lr_store_job_heartbeat(st, job.id, job.fence, 1000, NULL, NULL);
	tap_ok(err == LR_STORE_ESTALE, "heartbeat after finish: ESTALE");
	{
		lr_store_blob_info bi;

		tap_ok(lr_store_blob_stat(st, "alice", result, &bi, NULL) == 0 &&
			       bi.size_bytes == 22,
		       "the job's tenant can read the result blob");
		tap_ok(lr_store_blob_stat(st, "bob", result, &bi, NULL) ==
			       LR_STORE_ENOTFOUND,
		       "another tenant cannot");
	}
	lr_store_job_fini(&job);
	lr_store_jobs_count(st, counts, NULL);
	tap_ok(counts[LR_JOB_STATE_SUCCEEDED] == 1 &&
		       counts[LR_JOB_STATE_RUNNING] == 0 &&
		       counts[LR_JOB_STATE_QUEUED] == 0,
	       "counts: 1 succeeded, 0 running, 0 queued (%lld %lld %lld)",
	       (long long)counts[LR_JOB_STATE_SUCCEEDED],
	       (long long)counts[LR_JOB_STATE_RUNNING],
	       (long long)counts[LR_JOB_STATE_QUEUED]);

	/* Delete: only terminal jobs, only the owner's. */
	err = lr_store_job_delete(st, "bob", id, NULL);
	tap_ok(err == LR_STORE_ENOTFOUND, "delete of another tenant's job");
	err = lr_store_job_delete(st, "alice", id, NULL);
	tap_ok(err == 0 && lr_store_job_get(st, "alice", id, &got, NULL) ==
				   LR_STORE_ENOTFOUND,
	       "delete of a finished job");
	err = lr_store_job_delete(st, "alice", id, NULL);
	tap_ok(err == LR_STORE_ENOTFOUND, "second delete: not found");
	{
		lr_store_blob_info bi;

		tap_ok(lr_store_blob_stat(st, "alice", result, &bi, NULL) ==
			       LR_STORE_ENOTFOUND,
		       "result is unreachable after delete");
	}
	create_job(st, "alice", model_a, 0, id);
	err = lr_store_job_delete(st, "alice", id, NULL);
	tap_ok(err == LR_STORE_ECONFLICT, "delete of a queued job: ECONFLICT");
}

static void test_cancel(lr_store *st, const char *model_a, int64_t epoch)
{
	char id[LR_STORE_ID_LEN + 1], id2[LR_STORE_ID_LEN + 1];
	lr_store_job job = { 0 }, got = { 0 };
	lr_store_job_result res = { .state = LR_JOB_STATE_CANCELED };
	enum lr_job_state s = LR_JOB_STATE_QUEUED;
	int claimed, cancel = -1, err;

	drain(st, epoch);
	create_job(st, "alice", model_a, 0, id);
	err = lr_store_job_cancel(st, "bob", id, &s, NULL);
	tap_ok(err == LR_STORE_ENOTFOUND, "cancel of another tenant's job");
	err = lr_store_job_cancel(st, "alice", id, &s, NULL);
	lr_store_job_get(st, "alice", id, &got, NULL);
	tap_ok(err == 0 && s == LR_JOB_STATE_CANCELED &&
		       got.state == LR_JOB_STATE_CANCELED &&
		       got.finished_ms > 0 && got.error_json != NULL &&
		       strstr(got.error_json, "\"code\":\"canceled\""),
	       "cancel of a queued job is immediate");
	lr_store_job_fini(&got);
	err = lr_store_job_claim(st, "w", epoch, 60000, &job, &claimed, NULL);
	tap_ok(err == 0 && claimed == 0, "a canceled job is never claimed");
	err = lr_store_job_cancel(st, "alice", id, &s, NULL);
	tap_ok(err == 0 && s == LR_JOB_STATE_CANCELED,
	       "cancel of a terminal job changes nothing");

	create_job(st, "alice", model_a, 0, id2);
	lr_store_job_claim(st, "w", epoch, 60000, &job, &claimed, NULL);
	err = lr_store_job_cancel_check(st, job.id, job.fence, &cancel, NULL);
	tap_ok(err == 0 && cancel == 0, "no cancel requested yet");
	err = lr_store_job_cancel(st, "alice", id2, &s, NULL);
	tap_ok(err == 0 && s == LR_JOB_STATE_RUNNING,
	       "cancel of a running job sets the flag, state stays running");
	err = lr_store_job_heartbeat(st, job.id, job.fence, 60000, &cancel,
				     NULL);
	tap_ok(err == 0 && cancel == 1, "heartbeat reports the cancel");
	cancel = 0;
	lr_store_job_progress(st, job.id, job.fence, "{}", &cancel, NULL);
	tap_ok(cancel == 1, "progress reports the cancel");
	cancel = 0;
	lr_store_job_cancel_check(st, job.id, job.fence, &cancel, NULL);
	tap_ok(cancel == 1, "cancel_check reports the cancel");
	err = lr_store_job_finish(st, job.id, job.fence, &res, NULL);
	lr_store_job_get(st, "alice", id2, &got, NULL);
	tap_ok(err == 0 && got.state == LR_JOB_STATE_CANCELED &&
		       got.error_json && strstr(got.error_json, "canceled"),
	       "worker finishes it as canceled with a default problem");
	lr_store_job_fini(&got);
	lr_store_job_fini(&job);
}

static void test_requeue(lr_store *st, const char *model_a, int64_t epoch)
{
	char id[LR_STORE_ID_LEN + 1];
	lr_store_job job = { 0 }, job2 = { 0 }, got = { 0 };
	int claimed, err;

	drain(st, epoch);
	create_job(st, "alice", model_a, 0, id);
	lr_store_job_claim(st, "w", epoch, 60000, &job, &claimed, NULL);
	err = lr_store_job_requeue(st, job.id, job.fence, NULL);
	lr_store_job_get(st, "alice", id, &got, NULL);
	tap_ok(err == 0 && got.state == LR_JOB_STATE_QUEUED &&
		       got.attempts == 0 && got.fence == 1 &&
		       got.lease_owner[0] == '\0',
	       "requeue: queued again, attempt given back, fence kept");
	lr_store_job_fini(&got);
	err = lr_store_job_requeue(st, job.id, job.fence, NULL);
	tap_ok(err == LR_STORE_ESTALE, "second requeue: ESTALE");
	lr_store_job_claim(st, "w2", epoch, 60000, &job2, &claimed, NULL);
	tap_ok(claimed && strcmp(job2.id, id) == 0 && job2.fence == 2 &&
		       job2.attempts == 1,
	       "reclaimed with fence 2, attempts 1");
	err = lr_store_job_heartbeat(st, job.id, job.fence, 1000, NULL, NULL);
	tap_ok(err == LR_STORE_ESTALE, "old fence rejected after reclaim");
	/* Requeue of a job with a pending cancel cancels it. */
	lr_store_job_cancel(st, "alice", id, NULL, NULL);
	err = lr_store_job_requeue(st, job2.id, job2.fence, NULL);
	lr_store_job_get(st, "alice", id, &got, NULL);
	tap_ok(err == 0 && got.state == LR_JOB_STATE_CANCELED,
	       "requeue with a pending cancel ends canceled");
	lr_store_job_fini(&got);
	lr_store_job_fini(&job);
	lr_store_job_fini(&job2);
}

static void test_recover(lr_store *st, const char *model_a, int64_t *epoch)
{
	char id[LR_STORE_ID_LEN + 1], id2[LR_STORE_ID_LEN + 1];
	lr_store_job job = { 0 }, got = { 0 };
	lr_store_recover_report rep = { -1, -1, -1 };
	int claimed, err, i;
	int64_t e0 = *epoch;

	drain(st, *epoch);
	/* Poison pill: max_attempts 2, the daemon "dies" after each claim. */
	create_job(st, "alice", model_a, 2, id);
	for (i = 0; i < 2; i++) {
		lr_store_job_claim(st, "w", *epoch, 60000, &job, &claimed,
				   NULL);
		lr_store_job_fini(&job);
		lr_store_epoch_begin(st, epoch, NULL); /* restart */
		err = lr_store_jobs_recover(st, *epoch, &rep, NULL);
		lr_store_job_get(st, "alice", id, &got, NULL);
		if (i == 0)
			tap_ok(err == 0 && rep.requeued == 1 && rep.failed == 0 &&
				       got.state == LR_JOB_STATE_QUEUED &&
				       got.attempts == 1,
			       "restart 1: requeued, attempts 1");
		else
			tap_ok(err == 0 && rep.requeued == 0 && rep.failed == 1 &&
				       got.state == LR_JOB_STATE_FAILED &&
				       got.error_json &&
				       strstr(got.error_json,
					      "\"code\":\"crashed\"") &&
				       got.finished_ms > 0,
			       "restart 2: failed \"crashed\" (attempts %d)",
			       got.attempts);
		lr_store_job_fini(&got);
	}
	tap_ok(*epoch == e0 + 2, "epochs increase by one per start");

	/* A live job of the current epoch is left alone. */
	create_job(st, "alice", model_a, 0, id);
	lr_store_job_claim(st, "w", *epoch, 60000, &job, &claimed, NULL);
	err = lr_store_jobs_recover(st, *epoch, &rep, NULL);
	tap_ok(err == 0 && rep.requeued == 0 && rep.failed == 0 &&
		       rep.canceled == 0,
	       "recover leaves a live lease alone");
	/* A dead job with a pending cancel ends canceled. On PostgreSQL a
	 * job is dead when its daemon's session (holding the epoch's
	 * advisory lock) is gone, not because another epoch asks. */
	lr_store_job_cancel(st, "alice", id, NULL, NULL);
	if (t_pg())
		t_exec(st, "SELECT pg_advisory_unlock_all()");
	err = lr_store_jobs_recover(st, *epoch + 1, &rep, NULL);
	lr_store_job_get(st, "alice", id, &got, NULL);
	tap_ok(err == 0 && rep.canceled == 1 &&
		       got.state == LR_JOB_STATE_CANCELED,
	       "dead job with a cancel request ends canceled");
	lr_store_job_fini(&got);
	lr_store_job_fini(&job);
	if (t_pg()) {
		char sql[96];

		snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(19538, %lld)",
			 (long long)*epoch);
		t_exec(st, sql);
	}
	(void)id2;
}

/* Reliability Q5: a worker that stops heartbeating loses the job and its
 * late writes are rejected by the fence. */
static void test_fencing(lr_store *st, const char *model_a, int64_t epoch)
{
	char id[LR_STORE_ID_LEN + 1], result[LR_STORE_SHA_LEN + 1];
	lr_store_job w1 = { 0 }, w2 = { 0 }, got = { 0 };
	lr_store_recover_report rep = { 0 };
	lr_store_job_result res = { .state = LR_JOB_STATE_SUCCEEDED };
	int claimed, err, cancel;

	drain(st, epoch);
	create_job(st, "alice", model_a, 0, id);
	/* The lease is long enough that the next call comes before it
	 * expires even on a busy machine; then recovery is polled until the
	 * lease has expired (at most 30 s). */
	lr_store_job_claim(st, "worker-1", epoch, 2000, &w1, &claimed, NULL);
	tap_ok(claimed && w1.fence >= 1, "worker-1 claims with a 2 s lease");
	err = lr_store_jobs_recover(st, epoch, &rep, NULL);
	tap_ok(err == 0 && rep.requeued == 0, "not recovered before expiry");
	{
		double t0 = lr_now();

		do {
			t_sleep_ms(50);
			err = lr_store_jobs_recover(st, epoch, &rep, NULL);
		} while (err == 0 && rep.requeued == 0 && lr_now() - t0 < 30);
	}
	tap_ok(err == 0 && rep.requeued == 1, "expired lease is requeued");
	err = lr_store_job_heartbeat(st, w1.id, w1.fence, 60000, &cancel, NULL);
	tap_ok(err == LR_STORE_ESTALE,
	       "worker-1 heartbeat after recovery: ESTALE");
	lr_store_job_claim(st, "worker-2", epoch, 60000, &w2, &claimed, NULL);
	tap_ok(claimed && strcmp(w2.id, id) == 0 && w2.fence == w1.fence + 1 &&
		       w2.attempts == 2,
	       "worker-2 reclaims with fence %lld, attempts 2",
	       (long long)w2.fence);
	err = lr_store_job_heartbeat(st, w1.id, w1.fence, 60000, NULL, NULL);
	tap_ok(err == LR_STORE_ESTALE, "worker-1 heartbeat: ESTALE");
	err = lr_store_job_progress(st, w1.id, w1.fence, "{\"stale\":1}", NULL,
				    NULL);
	tap_ok(err == LR_STORE_ESTALE, "worker-1 progress: ESTALE");
	t_put(st, NULL, "stale worker output", result);
	res.result_sha = result;
	err = lr_store_job_finish(st, w1.id, w1.fence, &res, NULL);
	tap_ok(err == LR_STORE_ESTALE, "worker-1 finish: ESTALE");
	err = lr_store_job_requeue(st, w1.id, w1.fence, NULL);
	tap_ok(err == LR_STORE_ESTALE, "worker-1 requeue: ESTALE");
	lr_store_job_get(st, "alice", id, &got, NULL);
	tap_ok(got.state == LR_JOB_STATE_RUNNING &&
		       strcmp(got.lease_owner, "worker-2") == 0 &&
		       got.result_sha[0] == '\0' && got.progress_json == NULL,
	       "the job is still worker-2's and untouched by worker-1");
	lr_store_job_fini(&got);
	t_put(st, NULL, "good output", result);
	err = lr_store_job_finish(st, w2.id, w2.fence, &res, NULL);
	lr_store_job_get(st, "alice", id, &got, NULL);
	tap_ok(err == 0 && got.state == LR_JOB_STATE_SUCCEEDED &&
		       strcmp(got.result_sha, result) == 0,
	       "worker-2 finishes with its own result");
	lr_store_job_fini(&got);
	lr_store_job_fini(&w1);
	lr_store_job_fini(&w2);
	/* The state CHECK keeps lease columns consistent with the state. */
	q_exec(st, "SELECT 1");
	tap_ok(q_int(st, "SELECT count(*) FROM jobs WHERE (state = 'running') "
			 "!= (lease_owner IS NOT NULL)") == 0,
	       "lease set exactly on running jobs");
}

/*
 * PostgreSQL only: what several nodes rely on. Two stores on one database
 * stand for two nodes: a node's jobs survive another node's recovery
 * while it lives, and come back at once when its session dies (no lease
 * wait); the sweep runs on one node at a time; a schema newer than the
 * build is refused; a job created on one node wakes another's LISTEN.
 */
static void test_pg_nodes(void)
{
	char *d = t_mkdtemp(), id[LR_STORE_ID_LEN + 1], m[LR_STORE_SHA_LEN + 1];
	lr_store *a = NULL, *b = NULL, *c = NULL;
	lr_store_recover_report rep = { 0 };
	lr_store_sweep_opts o = { 0, 3600000 };
	lr_store_sweep_report sr;
	lr_store_job job = { 0 }, got = { 0 };
	int64_t ea = 0, eb = 0;
	int claimed = 0, err, woke;
	lr_msg msg = { "" };

	if (t_open(d, &a, NULL) != 0 || t_open(d, &b, NULL) != 0) {
		tap_ok(0, "two nodes open one database");
		goto out;
	}
	lr_store_epoch_begin(a, &ea, NULL);
	lr_store_epoch_begin(b, &eb, NULL);
	tap_ok(ea >= 1 && eb == ea + 1, "each node gets its own epoch (%lld, %lld)",
	       (long long)ea, (long long)eb);
	t_put(a, "alice", "pg model", m);
	woke = lr_store_wait(b, 0, NULL); /* LISTEN now */
	create_job(a, "alice", m, 0, id);
	woke = lr_store_wait(b, 2000, NULL);
	tap_ok(woke == 1, "a job queued on node a wakes node b (NOTIFY)");
	lr_store_job_claim(a, "node-a", ea, 600000, &job, &claimed, NULL);
	err = lr_store_jobs_recover(b, eb, &rep, NULL);
	tap_ok(claimed && err == 0 && rep.requeued == 0,
	       "node b leaves node a's running job alone (another epoch, alive)");
	a = lr_store_close(a); /* node a dies: its session and lock go */
	/* The server ends the closed session's backend (and frees its epoch
	 * lock) asynchronously: on a loaded machine that took longer than
	 * one call. Recovery is retried, as the daemon's periodic pass would,
	 * for at most 5 s, still far inside the 600 s lease. */
	for (int tries = 0; tries < 100; tries++) {
		err = lr_store_jobs_recover(b, eb, &rep, NULL);
		if (err != 0 || rep.requeued > 0)
			break;
		usleep(50000);
	}
	lr_store_job_get(b, "alice", id, &got, NULL);
	tap_ok(err == 0 && rep.requeued == 1 && got.state == LR_JOB_STATE_QUEUED,
	       "node a gone: node b requeues its job at once, lease unexpired");
	lr_store_job_fini(&got);
	lr_store_job_fini(&job);

	/* One sweeper at a time. */
	t_open(d, &c, NULL);
	t_exec(c, "SELECT pg_advisory_lock(19540, 1)");
	t_exec(b, "UPDATE blob_owners SET created_ms = 0");
	t_exec(b, "DELETE FROM jobs");
	memset(&sr, 0, sizeof(sr));
	o.retention_ms = 1;
	err = lr_store_sweep(b, &o, &sr, NULL);
	tap_ok(err == 0 && sr.owners_deleted == 0,
	       "the sweep skips its round while another node sweeps");
	t_exec(c, "SELECT pg_advisory_unlock(19540, 1)");
	err = lr_store_sweep(b, &o, &sr, NULL);
	tap_ok(err == 0 && sr.owners_deleted == 1,
	       "and runs once that node is done (%lld owner rows)",
	       (long long)sr.owners_deleted);

	/* Schema newer than this build: refused, left alone. */
	t_exec(c, "INSERT INTO lr_schema (version) VALUES (99)");
	c = lr_store_close(c);
	err = t_open(d, &c, &msg);
	tap_ok(err == LR_STORE_ESCHEMA && c == NULL && strstr(msg.text, "99"),
	       "a newer schema is refused: %s", msg.text);
	t_exec(b, "DELETE FROM lr_schema WHERE version = 99");
out:
	lr_store_close(a);
	lr_store_close(b);
	lr_store_close(c);
	t_rmrf(d);
	free(d);
}

int main(void)
{
	lr_store *st = NULL;
	char model_a[LR_STORE_SHA_LEN + 1], model_b[LR_STORE_SHA_LEN + 1];
	char model_c[LR_STORE_SHA_LEN + 1];
	int64_t epoch = 0;

	dir = t_mkdtemp();
	if (t_pg()) {
		/* SQLite's file, pragmas and busy handler; PostgreSQL runs
		 * the rest of this file. */
		tap_diag("backend: PostgreSQL (LR_TEST_DATABASE); the SQLite "
			 "file, pragma and lock-wait tests are SQLite-only");
	} else {
		test_open();
		test_busy_wait();
	}
	test_concurrent_open();
	test_validators();
	test_redact();
	if (t_pg())
		test_pg_nodes();
	if (t_open(dir, &st, NULL) != 0) {
		tap_ok(0, "reopen");
		return tap_done();
	}
	tap_ok(lr_store_epoch_begin(st, &epoch, NULL) == 0 &&
		       epoch == (t_pg() ? 1 : 2),
	       "epochs count up (the busy test took epoch 1)");
	t_put(st, "alice", "model a", model_a);
	t_put(st, "bob", "model b", model_b);
	t_put(st, "carol", "model c", model_c);
	test_create_get(st, model_a, model_b);
	test_queue_limit(st, model_b);
	test_list(st, model_c);
	test_worker_cycle(st, model_a, epoch);
	test_cancel(st, model_a, epoch);
	test_requeue(st, model_a, epoch);
	test_recover(st, model_a, &epoch);
	test_fencing(st, model_a, epoch);
	tap_ok(lr_store_integrity_check(st, NULL) == 0, "integrity ok at end");
	lr_store_close(st);
	t_rmrf(dir);
	free(dir);
	return tap_done();
}
