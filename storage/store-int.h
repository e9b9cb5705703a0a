/*
 * store-int.h - internals shared by the storage/ source files. Not part of
 * the public interface; nothing outside storage/ includes it.
 */
#ifndef LR_STORE_INT_H
#define LR_STORE_INT_H

#include <libpq-fe.h>
#include <sqlite3.h>

#include "storage/store.h"

/* One connection plus the directories it manages. */
/* Prepared statements kept per connection, keyed by their constant SQL. */
#define LR__STMT_CACHE 64

struct lr__stmt_slot {
	const char *sql;        /* the caller's constant (pointer identity) */
	sqlite3_stmt *stmt;
	int busy;               /* handed out and not yet released */
};

struct lr_store {
	sqlite3 *db;     /* the connection; used by one thread at a time */
	struct lr__stmt_slot stmts[LR__STMT_CACHE];
	int nstmts;
	char *dir;       /* absolute state_dir, no trailing slash */
	int blobs_fd;    /* O_DIRECTORY fd of state_dir/blobs */
	int tmp_fd;      /* O_DIRECTORY fd of state_dir/tmp */
	int in_write;    /* 1 between lr__tx_begin() and commit/rollback */
	double busy_since; /* lr_now() when the current busy wait began */
	PGconn *pg;        /* PostgreSQL backend (storage/pg.c) when not
			      NULL; then db is NULL */
	int64_t pg_epoch;  /* epoch whose advisory lock this session holds */
	int listening;     /* LISTEN lowrankd_jobs issued (lr_store_wait) */
};

#define LR__BUSY_DEADLINE_S 60.0 /* give up on SQLITE_BUSY after this */
#define LR__BUSY_TIMEOUT_MS 10000 /* busy handler wait per lock request */

/* Maps an SQLite result code to an lr code, writes "<what>: <sqlite text>"
 * into msg and returns the code. */
int lr__db_fail(lr_store *st, int rc, lr_msg *msg, const char *what);

/* BEGIN IMMEDIATE, retrying SQLITE_BUSY until the deadline. Takes a
 * process-wide mutex first (released by commit or rollback), so threads of
 * one process queue without polling. */
int lr__tx_begin(lr_store *st, lr_msg *msg);
/* COMMIT, retrying SQLITE_BUSY; on failure rolls back. Either way the
 * transaction and the mutex are released. */
int lr__tx_commit(lr_store *st, lr_msg *msg);
/* ROLLBACK and release the mutex if a write transaction is open (no-op
 * otherwise). */
void lr__tx_rollback(lr_store *st);

/* Prepares `sql` (a constant) or hands out the connection's cached
 * statement for it. Returns 0 or an lr code. Release with lr__finalize(). */
int lr__prepare(lr_store *st, const char *sql, sqlite3_stmt **stmt,
		lr_msg *msg);

/* Releases a statement from lr__prepare(): a cached one is reset (ending
 * any read it holds) and its bindings cleared; others are finalized.
 * NULL is a no-op. */
void lr__finalize(lr_store *st, sqlite3_stmt *stmt);

/* sqlite3_step() that, outside a transaction, retries SQLITE_BUSY on the
 * first step of a statement until the deadline. Returns the SQLite code. */
int lr__step(lr_store *st, sqlite3_stmt *stmt);

/* Binds text or NULL (when s is NULL or empty). */
int lr__bind_text_or_null(sqlite3_stmt *stmt, int idx, const char *s);

/* Copies column `col` (text or NULL) into buf of size len ("" for NULL). */
void lr__col_copy(sqlite3_stmt *stmt, int col, char *buf, size_t len);

/* Fills `job` from a row whose first columns are LR__JOB_COLS. */
int lr__job_from_row(sqlite3_stmt *stmt, lr_store_job *job);

/* The column list every job SELECT / RETURNING uses, in this order. */
#define LR__JOB_COLS                                                      \
	"id, tenant, state, spec_json, model_sha, calib_sha, created_ms, "  \
	"started_ms, finished_ms, updated_ms, attempts, max_attempts, "     \
	"lease_owner, lease_epoch, lease_expires_ms, fence, progress_json, " \
	"result_sha, report_sha, error_json, cancel_requested"

/* Writes "ab/abcdef..." for `sha` into buf (64 + 4 bytes is enough). */
void lr__blob_relpath(const char *sha, char *buf, size_t len);

/*
 * Removes the files of the given blobs whose rows are gone. Takes the write
 * lock while checking and unlinking, so it can never remove a file that a
 * concurrent writer just renamed into place (writers rename under the same
 * lock). Adds the number of files removed to *removed (may be NULL).
 */
int lr__blob_unlink_orphans(lr_store *st, char (*shas)[LR_STORE_SHA_LEN + 1],
			    size_t n, int64_t *removed, lr_msg *msg);

/*
 * Fault injection for the crash tests: when not NULL, called at named
 * points ("blob-synced", "blob-renamed", "blob-committed", "claim-updated",
 * "finish-updated"), e.g. to raise SIGKILL there. Always NULL in lowrankd.
 */
extern void (*lr__fault_hook)(const char *point);
#define LR__FAULT(point)                                                   \
	do {                                                               \
		if (lr__fault_hook != NULL)                                \
			lr__fault_hook(point);                             \
	} while (0)

/*
 * Inside a write transaction (storage/hooks.c): writes the webhook outbox
 * row of job `id` if it is now terminal and has a notify_url; with id NULL,
 * of every such job whose finished_ms is `finished_ms` (a bulk transition).
 * Idempotent (one row per job).
 */
int lr__outbox_add(lr_store *st, const char *id, int64_t finished_ms,
		   int64_t now, lr_msg *msg);

/* Inside a write transaction: marks `key` done (see
 * lr_store_idem_complete()). */
int lr__idem_mark_done(lr_store *st, const char *tenant, const char *key,
		       const char *fingerprint, int status,
		       const char *resource, const char *location,
		       const char *body, lr_msg *msg);

/* Inside the sweep's write transaction: expired idempotency keys and
 * finished outbox rows (storage/hooks.c). */
int lr__hooks_sweep(lr_store *st, int64_t now, int64_t retention_ms,
		    int64_t tmp_age_ms, lr_store_sweep_report *rep,
		    lr_msg *msg);

/* Fills buf with n random bytes (getrandom). 0 or -errno. */
int lr__random(void *buf, size_t n);

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void lr__hex(const unsigned char *in, size_t n, char *out);

/* Problem objects stored in error_json when the caller gives none. */
#define LR_PROBLEM_CANCELED                                               \
	"{\"title\":\"Job canceled\",\"detail\":\"The job was canceled at "  \
	"the client's request.\",\"code\":\"canceled\"}"
#define LR_PROBLEM_CRASHED                                                \
	"{\"title\":\"Job crashed\",\"detail\":\"The worker stopped while "   \
	"running this job on every allowed attempt; it will not be "         \
	"retried.\",\"code\":\"crashed\"}"
#define LR_PROBLEM_FAILED                                                 \
	"{\"title\":\"Job failed\",\"detail\":\"The job failed.\","           \
	"\"code\":\"failed\"}"

/* ---- PostgreSQL backend (storage/pg.c) -------------------------------
 * Each public function of store.h checks st->pg and calls the function
 * here; arguments are validated by the caller as for SQLite. */
int lr__pg_open(lr_store *st, const char *uri, lr_msg *msg);
void lr__pg_close(lr_store *st);
int lr__pg_ping(lr_store *st, lr_msg *msg);
int lr__pg_begin(lr_store *st, lr_msg *msg);
int lr__pg_commit(lr_store *st, lr_msg *msg);
void lr__pg_rollback(lr_store *st);
int lr__pg_blob_lock(lr_store *st, const char *sha, lr_msg *msg);
int lr__pg_integrity_check(lr_store *st, lr_msg *msg);
int lr__pg_epoch_begin(lr_store *st, int64_t *epoch, lr_msg *msg);
int lr__pg_tenant_active(lr_store *st, const char *tenant, int64_t *n,
			 lr_msg *msg);
int lr__pg_idem_mark_done(lr_store *st, const char *tenant, const char *key,
			  const char *fingerprint, int status,
			  const char *resource, const char *location,
			  const char *body, lr_msg *msg);
int lr__pg_job_create(lr_store *st, const lr_store_job_new *nj,
		      const char *id, int max_attempts, lr_msg *msg);
int lr__pg_job_get(lr_store *st, const char *tenant, const char *id,
		   lr_store_job *job, lr_msg *msg);
int lr__pg_jobs_list(lr_store *st, const char *tenant, int state,
		     size_t limit, int has_cursor, int64_t cursor_created,
		     const char *cursor_id, lr_store_job_page *page,
		     lr_msg *msg);
int lr__pg_job_claim(lr_store *st, const char *owner, int64_t epoch,
		     int64_t lease_ms, lr_store_job *job, lr_msg *msg);
int lr__pg_outbox_add(lr_store *st, const char *id, int64_t finished_ms,
		      int64_t now, lr_msg *msg);
/* kind: 0 heartbeat (num = lease_ms), 1 progress (text), 2 requeue. */
int lr__pg_fenced_write(lr_store *st, int kind, const char *id,
			int64_t fence, int64_t num, const char *text,
			int *cancel_requested, lr_msg *msg);
int lr__pg_cancel_check(lr_store *st, const char *id, int64_t fence,
			int *flag, lr_msg *msg);
int lr__pg_job_finish(lr_store *st, const char *id, int64_t fence,
		      const lr_store_job_result *res, const char *error_json,
		      lr_msg *msg);
int lr__pg_job_cancel(lr_store *st, const char *tenant, const char *id,
		      enum lr_job_state *state_out, lr_msg *msg);
int lr__pg_job_delete(lr_store *st, const char *tenant, const char *id,
		      lr_msg *msg);
int lr__pg_jobs_recover(lr_store *st, int64_t epoch,
			lr_store_recover_report *rep, lr_msg *msg);
int lr__pg_jobs_count(lr_store *st, int64_t counts[LR_JOB_STATE_COUNT],
		      lr_msg *msg);
int lr__pg_blob_record(lr_store *st, const char *tenant, const char *sha,
		       int64_t size, int64_t now, lr_msg *msg);
int lr__pg_blob_created(lr_store *st, const char *sha, int64_t *created);
int lr__pg_blob_stat(lr_store *st, const char *tenant, const char *sha,
		     lr_store_blob_info *info, lr_msg *msg);
int lr__pg_tenant_bytes(lr_store *st, const char *tenant, int64_t *bytes,
			lr_msg *msg);
int lr__pg_blob_row_exists(lr_store *st, const char *sha, lr_msg *msg);
int lr__pg_hooks_due(lr_store *st, int64_t now_ms, size_t max, int64_t lease_ms,
		     lr_store_hook *v, size_t *n, lr_msg *msg);
int lr__pg_hook_of_job(lr_store *st, const char *job_id, lr_store_hook *h,
		       int *state, lr_msg *msg);
int lr__pg_hook_attempt(lr_store *st, const char *id, const char *body,
			const char *outcome, int64_t next_ms, int status,
			const char *error, lr_msg *msg);
int lr__pg_hooks_count(lr_store *st, int64_t counts[3], lr_msg *msg);
int lr__pg_idem_begin(lr_store *st, const char *tenant, const char *key,
		      lr_store_idem *rec, lr_msg *msg);
int lr__pg_idem_release(lr_store *st, const char *tenant, const char *key,
			lr_msg *msg);
int lr__pg_sweep_try_lock(lr_store *st, int *got, lr_msg *msg);
void lr__pg_sweep_unlock(lr_store *st);
int lr__pg_sweep_rows(lr_store *st, const lr_store_sweep_opts *opts,
		      int64_t now, lr_store_sweep_report *rep,
		      int (*add)(void *ctx, const char *sha), void *ctx,
		      lr_msg *msg);

#endif /* LR_STORE_INT_H */
