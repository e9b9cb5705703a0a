/*
 * store.h - lowrankd's durable state: the SQLite job queue and the
 * content-addressed blob store. No HTTP, no libuv.
 *
 * DESIGN. Everything lives under one state directory:
 *
 *   state_dir/lowrankd.db      SQLite database (WAL, synchronous=FULL)
 *   state_dir/blobs/ab/abcd..  blob files named by their full SHA-256
 *                              (hex) in a folder named by its first two
 *                              hex digits
 *   state_dir/tmp/             uploads in flight (deleted by the sweep)
 *
 * An lr_store is ONE SQLite connection. It is not thread-safe: open one
 * lr_store per thread (each HTTP thread, the loop thread, each worker) and
 * never use one from two threads at once or carry it across fork(). Opening
 * many stores on the same state_dir, in this process or others, is the
 * intended use; SQLite serialises writers. Every write transaction is
 * BEGIN IMMEDIATE and SQLITE_BUSY is retried inside the store, so callers
 * never see it (after 60 s of continuous contention a call returns
 * -ETIMEDOUT). Writers of one process queue first come, first served on a
 * process-wide ticket before taking SQLite's lock; so a write call may
 * block for as long as the writes queued before it (milliseconds each:
 * one fsync). Reads never wait for writers (WAL).
 *
 * Jobs. A job belongs to one tenant and moves through a closed set of
 * states; only this module changes them:
 *
 *   queued --claim--> running --finish--> succeeded | failed | canceled
 *   queued --cancel--> canceled
 *   running --requeue (graceful stop)--> queued   (attempt not counted)
 *   running --recover (lease expired or previous epoch)--> queued,
 *           or failed "crashed" once attempts >= max_attempts,
 *           or canceled when a cancel was requested
 *
 * A claim takes a lease (owner, epoch, expiry) and a fencing token: an
 * integer that grows by one at every claim of that job. Every worker write
 * (heartbeat, progress, finish, requeue) names the job id AND the fence; a
 * worker whose job was recovered and claimed again holds an old fence and
 * gets LR_STORE_ESTALE, so a stale worker can never overwrite the result.
 * A write whose fence still matches is accepted even if the lease expired,
 * as long as nobody recovered the job in between.
 *
 * Tenancy. Every lookup that starts from a client-supplied id takes the
 * tenant and answers LR_STORE_ENOTFOUND for another tenant's object,
 * exactly as for a missing one. Ids and digests from clients are validated
 * (strict lowercase hex, fixed length) before any SQL or path is built;
 * a malformed one is LR_STORE_ENOTFOUND, never LR_EINVAL, so the API can
 * answer 404 without an oracle.
 *
 * Blobs. A blob is written to tmp/ while its SHA-256 is computed, fsynced,
 * then renamed into blobs/ and recorded in the same BEGIN IMMEDIATE
 * transaction that records the uploading tenant as an owner, and the
 * directory is fsynced. Identical content is stored once. A tenant may read
 * a blob it uploaded (an owner row) or one referenced by one of its jobs
 * (results, reports). After kill -9 at any moment an upload is either
 * complete (file + rows) or absent (no rows; leftover files are removed by
 * lr_store_sweep()).
 *
 * Artifacts. A worker stores its outputs with tenant = NULL (no owner row)
 * and then names them in lr_store_job_finish(). Until a job references it,
 * such a blob is protected from the sweep for tmp_age_ms after it was last
 * stored, as an upload in tmp/ is.
 *
 * Messages. Functions that take `lr_msg *msg` (may be NULL) write one
 * sentence on failure. It may contain paths and SQLite text: log it, do not
 * send it to clients.
 */
#ifndef LR_STORE_H
#define LR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "model/lr.h"

/* Storage error codes, after model/lr.h's project codes. */
enum lr_store_err {
	LR_STORE_ENOTFOUND = -4200,  /* no such job/blob for this tenant, or a
					malformed id or digest (answer 404) */
	LR_STORE_ESTALE = -4201,     /* the fencing token no longer matches:
					this worker lost the job */
	LR_STORE_ECONFLICT = -4202,  /* the job is in the wrong state for the
					operation (e.g. delete while running) */
	LR_STORE_EDIGEST = -4203,    /* blob content does not match the
					expected SHA-256 */
	LR_STORE_ETOOBIG = -4204,    /* blob larger than the writer's limit */
	LR_STORE_EQUEUEFULL = -4205, /* tenant already has queued_max queued or
					running jobs (answer 429) */
	LR_STORE_ESCHEMA = -4206,    /* database schema is newer than this
					build, or unrecognised */
	LR_STORE_EDB = -4207,        /* SQLite failed (corruption, misuse) */
	LR_STORE_EUNAVAIL = -4208,   /* the PostgreSQL server is unreachable
					(answer 503 + Retry-After; the call
					may be retried later) */
};
/* Also returned: LR_EINVAL (bad argument, e.g. a malformed page token or
 * invalid JSON), LR_ENOMEM, -ENOSPC (disk or database full), -EIO and other
 * -errno values from the file system, -ETIMEDOUT (busy for 60 s). */

/* Returns a static description of a store or lr.h code. Never NULL. */
const char *lr_store_strerror(int code);

#define LR_STORE_ID_LEN 32      /* job id: 128 random bits, lowercase hex */
#define LR_STORE_SHA_LEN 64     /* SHA-256, lowercase hex */
#define LR_STORE_TENANT_MAX 64  /* tenant: 1..64 of [A-Za-z0-9._-] */
#define LR_STORE_OWNER_MAX 64   /* lease owner: 1..64 printable ASCII */
#define LR_STORE_TOKEN_MAX 128  /* page token buffer, including the NUL */
#define LR_STORE_LIST_DEFAULT 50   /* list limit used when 0 is passed */
#define LR_STORE_LIST_MAX 1000     /* larger list limits are coerced down */
#define LR_STORE_MAX_ATTEMPTS_DEFAULT 3
#define LR_STORE_BLOB_GRACE_MS 60000 /* see lr_store_job_delete() */

/* The database schema version this build creates and understands. */
#define LR_STORE_SCHEMA_VERSION 2

/* Returns 1 when `s` is a well-formed job id (32 lowercase hex), else 0. */
int lr_store_id_valid(const char *s);
/* Returns 1 when `s` is a well-formed SHA-256 (64 lowercase hex), else 0. */
int lr_store_sha_valid(const char *s);
/* Returns 1 when `s` is a well-formed tenant name, else 0. */
int lr_store_tenant_valid(const char *s);

/* Wall-clock time in Unix milliseconds (the unit of every *_ms field). */
int64_t lr_store_now_ms(void);

/* ------------------------------------------------------------------ */
/* Opening                                                              */

typedef struct lr_store lr_store; /* opaque: one database connection */

/*
 * Chooses the database of every lr_store_open() that follows, process-wide:
 * NULL, "" or "sqlite" is the embedded SQLite file in state_dir (the
 * default); "postgresql://..." or "postgres://..." (a libpq URI; the
 * password comes from PGPASSFILE or a service file, never from logs) is a
 * PostgreSQL server shared by several nodes, with only the blob files in
 * state_dir (a directory all nodes share). Call before the stores are
 * opened; a call racing an lr_store_open() is safe (the open connects with
 * the string in effect when it started), but the pointer
 * lr_store_database() returned before it is not. Errors: LR_EINVAL for
 * anything else.
 */
int lr_store_set_database(const char *database, lr_msg *msg);

/* The database string in effect ("sqlite" by default). Static storage. */
const char *lr_store_database(void);

/* 1 when the database in effect is PostgreSQL (shared by nodes), else 0. */
int lr_store_is_shared(void);

/* Copies `uri` into buf with any password replaced by "***", for logs. */
void lr_store_redact_uri(const char *uri, char *buf, size_t len);

/* Checks that the database answers (SELECT 1 on PostgreSQL; always 0 on
 * SQLite). LR_STORE_EUNAVAIL when it does not: /readyz fails. */
int lr_store_ping(lr_store *st, lr_msg *msg);

/*
 * Waits up to timeout_ms for a job to be queued by any node: returns 1
 * when PostgreSQL NOTIFYed one (LISTEN lowrankd_jobs), 0 on timeout (and
 * always after sleeping on SQLite), or a negative code. Callers poll as
 * the fallback, since a notification may be lost with a connection.
 */
int lr_store_wait(lr_store *st, int timeout_ms, lr_msg *msg);

/*
 * Opens (creating when needed) the store in `state_dir`: creates the
 * directory (0700), blobs/, tmp/ and the database, sets journal_mode=WAL,
 * synchronous=FULL, foreign_keys=ON, a busy handler that waits up to 10 s
 * per lock request (polling every 0.05-0.55 ms; it replaces
 * sqlite3_busy_timeout(), see store.c), and migrates the
 * schema to LR_STORE_SCHEMA_VERSION (idempotent; concurrent openers are
 * safe). On success *out is owned by the caller (free with
 * lr_store_close()). Errors: LR_STORE_ESCHEMA when the database was
 * written by a newer build (it is left untouched), -errno when a directory
 * cannot be created, LR_STORE_EDB, LR_ENOMEM. Does NOT recover jobs or
 * clean tmp/: the daemon calls lr_store_epoch_begin(),
 * lr_store_jobs_recover() and lr_store_sweep() at startup.
 * With lr_store_set_database() naming PostgreSQL, the database is not in
 * state_dir (only blobs/ and tmp/ are) and LR_STORE_EUNAVAIL means the
 * server could not be reached.
 */
int lr_store_open(const char *state_dir, lr_store **out, lr_msg *msg);

/* Closes the connection and frees `st` (NULL is a no-op). Returns NULL. */
lr_store *lr_store_close(lr_store *st);

/* Runs PRAGMA integrity_check: 0 when "ok", LR_STORE_EDB (with the first
 * problem in msg) otherwise. */
int lr_store_integrity_check(lr_store *st, lr_msg *msg);

/*
 * Starts a new daemon epoch: atomically increments the stored epoch counter
 * and writes the new value to *epoch (>= 1). Call once per daemon start,
 * before claiming; pass it to lr_store_job_claim() and
 * lr_store_jobs_recover(). Jobs still running under an older epoch belong
 * to a dead daemon.
 */
int lr_store_epoch_begin(lr_store *st, int64_t *epoch, lr_msg *msg);

/* ------------------------------------------------------------------ */
/* Jobs                                                                 */

enum lr_job_state {
	LR_JOB_STATE_QUEUED = 0,
	LR_JOB_STATE_RUNNING = 1,
	LR_JOB_STATE_SUCCEEDED = 2,
	LR_JOB_STATE_FAILED = 3,
	LR_JOB_STATE_CANCELED = 4,
};
#define LR_JOB_STATE_COUNT 5

/* "queued", "running", "succeeded", "failed", "canceled"; NULL when out of
 * range. */
const char *lr_job_state_name(enum lr_job_state s);
/* Parses one of the names above (exact, lowercase). 0 or LR_EINVAL. */
int lr_job_state_parse(const char *name, enum lr_job_state *out);
/* 1 for succeeded, failed and canceled; 0 otherwise. */
int lr_job_state_is_terminal(enum lr_job_state s);

/*
 * A job record as read from the database. The char arrays are NUL-terminated
 * and empty ("") when unset; the char pointers are heap strings owned by the
 * record (NULL when unset) and freed by lr_store_job_fini(). Zero-initialise
 * before the first use; a filled record must be finalised before it is
 * filled again.
 */
typedef struct lr_store_job {
	char id[LR_STORE_ID_LEN + 1];             /* 32 lowercase hex */
	char tenant[LR_STORE_TENANT_MAX + 1];     /* owning tenant */
	enum lr_job_state state;                  /* current state */
	char *spec_json;                          /* job spec, valid JSON */
	char model_sha[LR_STORE_SHA_LEN + 1];     /* input model blob */
	char calib_sha[LR_STORE_SHA_LEN + 1];     /* calibration blob, or "" */
	int64_t created_ms;                       /* submission time */
	int64_t started_ms;                       /* latest claim, 0 if never */
	int64_t finished_ms;                      /* terminal time, 0 if not */
	int64_t updated_ms;                       /* last change that clients
						     see (state, progress,
						     result, cancel flag);
						     heartbeats do not count */
	int attempts;                             /* claims counted so far */
	int max_attempts;                         /* crash budget, default 3 */
	char lease_owner[LR_STORE_OWNER_MAX + 1]; /* "" unless running */
	int64_t lease_epoch;                      /* claimer's epoch, 0 if none */
	int64_t lease_expires_ms;                 /* 0 unless running */
	int64_t fence;                            /* number of claims so far */
	char *progress_json;                      /* last progress, or NULL */
	char result_sha[LR_STORE_SHA_LEN + 1];    /* compressed model, or "" */
	char report_sha[LR_STORE_SHA_LEN + 1];    /* JSON report blob, or "" */
	char *error_json;                         /* problem JSON {title,
						     detail, code}, or NULL */
	int cancel_requested;                     /* 1 once cancel was asked */
} lr_store_job;

/* Frees the heap strings of `job` and zeroes it (NULL is a no-op). */
void lr_store_job_fini(lr_store_job *job);

/* What lr_store_job_create() needs. */
typedef struct lr_store_job_new {
	const char *tenant;    /* required, lr_store_tenant_valid() */
	const char *spec_json; /* required, must be valid JSON */
	const char *model_sha; /* required; a blob this tenant owns */
	const char *calib_sha; /* NULL or a blob this tenant owns */
	int max_attempts;      /* 0 means LR_STORE_MAX_ATTEMPTS_DEFAULT */
	int64_t queued_max;    /* > 0: refuse when the tenant already has this
				  many queued + running jobs; 0: no limit */
	const char *idem_key;  /* NULL, or an Idempotency-Key this request
				  holds pending (lr_store_idem_begin()): it is
				  marked done (202, the new job) in the same
				  transaction as the insert */
	const char *idem_fingerprint; /* its request fingerprint (64 hex) */
} lr_store_job_new;

/*
 * Creates a queued job and writes its new random id to `id_out`. The limit
 * check and the insert are one transaction, so concurrent submissions
 * cannot overshoot queued_max. The job is durable (synchronous=FULL) when
 * this returns 0. Errors: LR_EINVAL (bad tenant, invalid JSON, bad
 * max_attempts), LR_STORE_ENOTFOUND (model or calibration blob not owned by
 * the tenant; msg says which), LR_STORE_EQUEUEFULL, -ENOSPC, LR_STORE_EDB.
 */
int lr_store_job_create(lr_store *st, const lr_store_job_new *nj,
			char id_out[LR_STORE_ID_LEN + 1], lr_msg *msg);

/*
 * Reads job `id` of `tenant` into *job (zeroed by the caller or finalised;
 * caller finalises with lr_store_job_fini()). LR_STORE_ENOTFOUND when the id
 * is malformed, missing or another tenant's.
 */
int lr_store_job_get(lr_store *st, const char *tenant, const char *id,
		     lr_store_job *job, lr_msg *msg);

/* One page of lr_store_jobs_list(). Zero-initialise; free with
 * lr_store_job_page_fini(). */
typedef struct lr_store_job_page {
	lr_store_job *jobs;                  /* `count` records, newest first */
	size_t count;                        /* number of records */
	char next_token[LR_STORE_TOKEN_MAX]; /* "" on the last page */
} lr_store_job_page;

/* Frees every record and the array, and zeroes the page (NULL-safe). */
void lr_store_job_page_fini(lr_store_job_page *page);

/*
 * Lists `tenant`'s jobs newest first (by creation time, then id), at most
 * `limit` of them (0 means LR_STORE_LIST_DEFAULT; larger than
 * LR_STORE_LIST_MAX is coerced down). `state` is a filter: one
 * enum lr_job_state value, or -1 for all. `page_token` is NULL or "" for the
 * first page, else a next_token from a previous call with the SAME state
 * filter. Keyset pagination: jobs created while paging never shift pages.
 * Errors: LR_EINVAL for a malformed token or one issued for another filter;
 * LR_EINVAL for a bad tenant or state. On error *page is left empty.
 */
int lr_store_jobs_list(lr_store *st, const char *tenant, int state,
		       size_t limit, const char *page_token,
		       lr_store_job_page *page, lr_msg *msg);

/*
 * Claims the oldest queued job: in one transaction it becomes running with
 * lease_owner = `owner`, lease_epoch = `epoch`, lease_expires_ms = now +
 * lease_ms, fence + 1, attempts + 1 and started_ms = now. On success returns
 * 0 and sets *claimed to 1 with the job in *job (caller finalises), or sets
 * *claimed to 0 when no job is queued. The fence to pass to later calls is
 * job->fence. `owner` is 1..LR_STORE_OWNER_MAX printable ASCII (e.g.
 * "host:pid:worker-2"), lease_ms > 0. Errors: LR_EINVAL, LR_STORE_EDB.
 */
int lr_store_job_claim(lr_store *st, const char *owner, int64_t epoch,
		       int64_t lease_ms, lr_store_job *job, int *claimed,
		       lr_msg *msg);

/*
 * Extends the lease of running job `id` to now + lease_ms, if `fence` still
 * matches. *cancel_requested (may be NULL) is set to 1 when a client asked
 * to cancel: the worker should stop and finish the job as canceled.
 * Errors: LR_STORE_ESTALE when the job is no longer running under `fence`
 * (recovered, reclaimed, finished or deleted); LR_STORE_ENOTFOUND for a
 * malformed id.
 */
int lr_store_job_heartbeat(lr_store *st, const char *id, int64_t fence,
			   int64_t lease_ms, int *cancel_requested,
			   lr_msg *msg);

/*
 * Stores `progress_json` (valid JSON, replaces the previous one) for
 * running job `id` under `fence`; does not extend the lease.
 * *cancel_requested as in lr_store_job_heartbeat() (may be NULL).
 * Errors: LR_STORE_ESTALE, LR_STORE_ENOTFOUND (malformed id), LR_EINVAL
 * (invalid JSON).
 */
int lr_store_job_progress(lr_store *st, const char *id, int64_t fence,
			  const char *progress_json, int *cancel_requested,
			  lr_msg *msg);

/* Reads the cancel flag of running job `id` under `fence` into *flag.
 * Errors: LR_STORE_ESTALE, LR_STORE_ENOTFOUND (malformed id). */
int lr_store_job_cancel_check(lr_store *st, const char *id, int64_t fence,
			      int *flag, lr_msg *msg);

/* How a worker ends a job (lr_store_job_finish()). */
typedef struct lr_store_job_result {
	enum lr_job_state state; /* SUCCEEDED, FAILED or CANCELED */
	const char *result_sha;  /* SUCCEEDED: required, the output model blob
				    (already committed); otherwise NULL */
	const char *report_sha;  /* optional report blob (any state), or NULL */
	const char *error_json;  /* FAILED/CANCELED: problem JSON with title,
				    detail, code; NULL gives a default one.
				    Must be NULL for SUCCEEDED. */
} lr_store_job_result;

/*
 * Ends running job `id` under `fence`: sets the terminal state, finished_ms,
 * the result/report shas and the error, and clears the lease. Blobs named
 * must exist in the store (lr_store_blob_writer_commit() or
 * lr_store_blob_put(), normally with tenant NULL). Errors: LR_STORE_ESTALE (a
 * stale worker: nothing is written), LR_STORE_ENOTFOUND (malformed id, or
 * a named blob does not exist), LR_EINVAL (bad state/sha/JSON combination).
 */
int lr_store_job_finish(lr_store *st, const char *id, int64_t fence,
			const lr_store_job_result *res, lr_msg *msg);

/*
 * Graceful stop: puts running job `id` back to queued under `fence`,
 * clearing the lease and giving back the attempt this claim counted
 * (reliability Q8). A job whose cancel was requested becomes canceled
 * instead. Errors: LR_STORE_ESTALE, LR_STORE_ENOTFOUND (malformed id).
 */
int lr_store_job_requeue(lr_store *st, const char *id, int64_t fence,
			 lr_msg *msg);

/*
 * Client cancel of `tenant`'s job `id`. Queued: becomes canceled at once.
 * Running: cancel_requested is set; the worker sees it through heartbeat,
 * progress or cancel_check and finishes the job as canceled. Already
 * terminal: nothing changes. *state_out (may be NULL) receives the state
 * after the call. Errors: LR_STORE_ENOTFOUND.
 */
int lr_store_job_cancel(lr_store *st, const char *tenant, const char *id,
			enum lr_job_state *state_out, lr_msg *msg);

/*
 * Deletes `tenant`'s terminal job `id`. Its blobs (result, report, inputs)
 * that nothing references any more (no other job, no owner row) become
 * unreachable at once and are removed now, except those stored within the
 * last LR_STORE_BLOB_GRACE_MS (another worker may be about to reference the
 * same content); lr_store_sweep() removes those later. Errors:
 * LR_STORE_ENOTFOUND; LR_STORE_ECONFLICT when the job is queued or running
 * (cancel it first; the API answers 409).
 */
int lr_store_job_delete(lr_store *st, const char *tenant, const char *id,
			lr_msg *msg);

/* What lr_store_jobs_recover() did. */
typedef struct lr_store_recover_report {
	int64_t requeued; /* running -> queued */
	int64_t failed;   /* running -> failed "crashed" (attempts used up) */
	int64_t canceled; /* running with cancel requested -> canceled */
} lr_store_recover_report;

/*
 * Recovers jobs whose worker is gone: every running job whose lease_epoch
 * differs from `epoch` (a previous daemon) or whose lease has expired goes
 * back to queued; or to failed with error code "crashed" when attempts >=
 * max_attempts (poison pill, reliability Q6); or to canceled when a cancel
 * was requested. Their fence stays, so the old worker's next write is
 * rejected once the job is claimed again. Call at startup after
 * lr_store_epoch_begin(), then periodically (e.g. every lease_ms / 2) to
 * catch frozen workers. On SQLite only ONE daemon may use a state_dir at
 * a time (the daemon should hold a lock file), since jobs of other epochs
 * are taken as dead. On PostgreSQL (several nodes) `epoch` is not
 * compared: a job is dead when its lease expired or when no session holds
 * its epoch's advisory lock, which lr_store_epoch_begin() took on the
 * claiming daemon's connection (so a node that died loses it at once).
 * `rep` may be NULL.
 */
int lr_store_jobs_recover(lr_store *st, int64_t epoch,
			  lr_store_recover_report *rep, lr_msg *msg);

/* Counts all jobs by state: counts[LR_JOB_STATE_QUEUED] etc. (/metrics). */
int lr_store_jobs_count(lr_store *st, int64_t counts[LR_JOB_STATE_COUNT],
			lr_msg *msg);

/* Number of `tenant`'s jobs that are queued or running, in *n (for 429
 * decisions before an upload; lr_store_job_create() re-checks atomically). */
int lr_store_tenant_active(lr_store *st, const char *tenant, int64_t *n,
			   lr_msg *msg);

/* Total size of the distinct blobs `tenant` owns or its jobs reference,
 * in *bytes (for a per-tenant storage quota, reliability A3). */
int lr_store_tenant_bytes(lr_store *st, const char *tenant, int64_t *bytes,
			  lr_msg *msg);

/* ------------------------------------------------------------------ */
/* Blobs                                                                */

/* Blob metadata. */
typedef struct lr_store_blob_info {
	char sha[LR_STORE_SHA_LEN + 1]; /* SHA-256 of the content, hex */
	int64_t size_bytes;             /* content length */
	int64_t created_ms;             /* first time the content was stored */
} lr_store_blob_info;

typedef struct lr_store_blob_writer lr_store_blob_writer; /* opaque */

/*
 * Starts a streaming upload: creates a temp file in state_dir/tmp (O_EXCL,
 * mode 0600). `size_max_bytes` > 0 caps the content length. The writer does
 * not keep `st`: it may be used from another thread than the one that
 * opened it, but by one thread at a time. On success *out must be ended by
 * exactly one of lr_store_blob_writer_commit() or
 * lr_store_blob_writer_abort(). Errors: LR_EINVAL, -errno, LR_ENOMEM.
 */
int lr_store_blob_writer_open(lr_store *st, int64_t size_max_bytes,
			      lr_store_blob_writer **out, lr_msg *msg);

/*
 * Appends `len` bytes and updates the running SHA-256. Errors:
 * LR_STORE_ETOOBIG when the total would pass size_max_bytes (nothing is
 * written), -ENOSPC, -EIO. After an error the writer only accepts abort
 * (commit returns the same error and cleans up).
 */
int lr_store_blob_writer_write(lr_store_blob_writer *w, const void *buf,
			       size_t len, lr_msg *msg);

/*
 * Finishes the upload for `tenant` (NULL for a worker's artifact: no owner
 * row, see "Artifacts" above): checks `expected_sha` (NULL = no check),
 * fsyncs the file, then in one BEGIN IMMEDIATE transaction renames it into
 * blobs/ (or drops it when that content is already stored), fsyncs the
 * directory and records the blob and, when tenant is not NULL, the
 * (tenant, sha) owner row. `info`
 * (may be NULL) receives sha, size and created_ms. ALWAYS frees `w` and
 * removes the temp file, on success and failure. Errors: LR_STORE_EDIGEST
 * (content differs from expected_sha), LR_STORE_ENOTFOUND (expected_sha
 * malformed), LR_EINVAL (bad tenant), the writer's earlier error, -ENOSPC,
 * -EIO, LR_STORE_EDB.
 */
int lr_store_blob_writer_commit(lr_store *st, lr_store_blob_writer *w,
				const char *tenant, const char *expected_sha,
				lr_store_blob_info *info, lr_msg *msg);

/* Cancels the upload, removes the temp file and frees `w` (NULL-safe).
 * Returns NULL. */
lr_store_blob_writer *lr_store_blob_writer_abort(lr_store_blob_writer *w);

/* Bytes written so far (for progress and metrics). */
int64_t lr_store_blob_writer_size(const lr_store_blob_writer *w);

/*
 * Stores `len` bytes from memory as a blob owned by `tenant` (NULL: an
 * artifact with no owner row), for small artifacts such as reports; same
 * guarantees and errors as the streaming writer. `info` may be NULL.
 */
int lr_store_blob_put(lr_store *st, const char *tenant, const void *buf,
		      size_t len, lr_store_blob_info *info, lr_msg *msg);

/*
 * Metadata of blob `sha` as seen by `tenant`: found when the tenant owns
 * it (uploaded it) or one of its jobs references it. LR_STORE_ENOTFOUND
 * otherwise, including a malformed sha. `info` may be NULL (existence only).
 */
int lr_store_blob_stat(lr_store *st, const char *tenant, const char *sha,
		       lr_store_blob_info *info, lr_msg *msg);

/*
 * Opens blob `sha` for reading, with the access rule of
 * lr_store_blob_stat(). The path is built only from the validated digest;
 * the file is opened O_RDONLY|O_NOFOLLOW|O_CLOEXEC and must be a regular
 * file whose size matches the database and whose bytes hash to `sha`
 * (read once, lr_store_blob_verify_fd). On success *fd (caller closes) and
 * *size_bytes are set. Errors: LR_STORE_ENOTFOUND, LR_STORE_EDB (file
 * missing or wrong size: the store is damaged), -errno.
 */
int lr_store_blob_open(lr_store *st, const char *tenant, const char *sha,
		       int *fd, int64_t *size_bytes, lr_msg *msg);

/* Reads the whole file behind open `fd` and checks its SHA-256 is `sha`:
 * 0, LR_STORE_EDB (a torn or damaged file; msg names both digests), or
 * -errno. Does not move the file offset (pread). */
int lr_store_blob_verify_fd(int fd, const char *sha, lr_msg *msg);

/* Same for blob `sha` in the store (no access check: for digests taken
 * from a job record, before a worker loads them by path). */
int lr_store_blob_verify(lr_store *st, const char *sha, lr_msg *msg);

/*
 * Writes the absolute path of blob `sha` into buf (for loaders that take a
 * path, e.g. the worker loading job->model_sha). Does no access check: use
 * only with digests taken from a job record. Errors: LR_STORE_ENOTFOUND
 * (malformed sha), LR_EINVAL (buffer too small).
 */
int lr_store_blob_path(lr_store *st, const char *sha, char *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Webhook outbox (storage/hooks.c)                                     */

/*
 * Every transition of a job into a terminal state whose spec has a string
 * member "notify_url" writes one outbox row in the SAME transaction
 * (finish, cancel of a queued job, requeue of a canceled one, recovery),
 * so a terminal state is never committed without its delivery, and at
 * most one row exists per job. The delivery thread reads due rows, sends
 * them, and records each attempt; rows survive restarts and kill -9.
 */

enum lr_hook_outcome {
	LR_HOOK_DELIVERED = 0, /* 2xx: done */
	LR_HOOK_RETRY = 1,     /* failed, another attempt at next_ms */
	LR_HOOK_FAILED = 2,    /* failed for good (gave up or refused) */
};

#define LR_STORE_HOOK_ID_MAX 48

/* One outbox row. Strings are heap copies freed by lr_store_hooks_free. */
typedef struct lr_store_hook {
	char id[LR_STORE_HOOK_ID_MAX];        /* webhook-id: "msg_" + 32 hex,
						 fixed at insert */
	char job_id[LR_STORE_ID_LEN + 1];     /* the job (may be deleted) */
	char tenant[LR_STORE_TENANT_MAX + 1]; /* its tenant */
	char event[16];                       /* "job.succeeded", "job.failed"
						 or "job.canceled" */
	char *url;                            /* the spec's notify_url */
	char *body;                           /* frozen payload, or NULL
						 before the first attempt */
	int64_t event_ms;                     /* when the job ended */
	int64_t created_ms;                   /* when the row was written */
	int attempts;                         /* attempts made so far */
	int64_t next_ms;                      /* next attempt (pending rows) */
	int last_status;                      /* HTTP status of the last attempt,
						 0 when none */
	char *last_error;                     /* its error sentence, or NULL */
} lr_store_hook;

/*
 * Reads up to `max` pending rows with next_ms <= now_ms, oldest due first,
 * into a new array *out of *n rows (caller frees with lr_store_hooks_free;
 * *out is NULL when none). On PostgreSQL, where several nodes deliver from
 * one outbox, the rows are also claimed: their next_ms becomes now_ms +
 * lease_ms in the same statement (FOR UPDATE SKIP LOCKED), so no other
 * node takes them until the attempt is recorded or the lease runs out (a
 * node that dies mid-delivery). lease_ms <= 0, or SQLite (one node), reads
 * without claiming. Errors: LR_ENOMEM, LR_STORE_EDB.
 */
int lr_store_hooks_due(lr_store *st, int64_t now_ms, size_t max, int64_t lease_ms,
		       lr_store_hook **out, size_t *n, lr_msg *msg);

/* Frees `n` rows from lr_store_hooks_due() and the array (NULL-safe). */
void lr_store_hooks_free(lr_store_hook *h, size_t n);

/*
 * Records one attempt of pending row `id`: attempts + 1, the outcome,
 * next_ms (for LR_HOOK_RETRY), the HTTP status (0 when none) and an error
 * sentence (NULL when none). `body` (may be NULL) is stored only when the
 * row has none yet, so the first attempt freezes the payload. Errors:
 * LR_STORE_ENOTFOUND (no such pending row), LR_EINVAL, LR_STORE_EDB.
 */
int lr_store_hook_attempt(lr_store *st, const char *id, const char *body,
			  enum lr_hook_outcome outcome, int64_t next_ms,
			  int status, const char *error, lr_msg *msg);

/* Outbox rows by state: counts[0] pending, [1] delivered, [2] failed. */
int lr_store_hooks_count(lr_store *st, int64_t counts[3], lr_msg *msg);

/* Reads the outbox row of job `job_id` (any state) into *h; the caller
 * frees its strings with lr_store_hook_fini(). *state (may be NULL)
 * receives 0 pending, 1 delivered, 2 failed. LR_STORE_ENOTFOUND when the
 * job has none. For tests and tools. */
int lr_store_hook_of_job(lr_store *st, const char *job_id, lr_store_hook *h,
			 int *state, lr_msg *msg);

/* Frees the strings of one row and zeroes it (NULL-safe). */
void lr_store_hook_fini(lr_store_hook *h);

/* ------------------------------------------------------------------ */
/* Idempotency keys (storage/hooks.c)                                   */

#define LR_STORE_IDEM_KEY_MAX 255            /* bytes in a key */
#define LR_STORE_IDEM_TTL_MS (24LL * 3600 * 1000) /* keys kept this long */

enum lr_idem_state {
	LR_IDEM_NEW = 0,  /* the key was free: this request now holds it */
	LR_IDEM_BUSY = 1, /* another request holding the key is in flight */
	LR_IDEM_DONE = 2, /* a request with this key was answered */
};

/* An idempotency record. Strings: heap copies, NULL when unset. */
typedef struct lr_store_idem {
	enum lr_idem_state state;
	char fingerprint[LR_STORE_SHA_LEN + 1]; /* DONE: the first request's */
	int status;                             /* DONE: its HTTP status */
	char resource[LR_STORE_SHA_LEN + 1];    /* DONE: job id or blob sha */
	char *location;                         /* DONE: Location, or NULL */
	char *body;                             /* DONE: the answer's body, or
						   NULL when not stored yet */
} lr_store_idem;

/* Frees the strings of `r` and zeroes it (NULL-safe). */
void lr_store_idem_fini(lr_store_idem *r);

/*
 * Looks up `tenant`'s `key` (1..LR_STORE_IDEM_KEY_MAX printable ASCII) and,
 * when it is free or older than LR_STORE_IDEM_TTL_MS, takes it (a pending
 * row) in one transaction: r->state says which case it is (zero r first;
 * finalise with lr_store_idem_fini). A holder must end with
 * lr_store_idem_complete() or lr_store_idem_release(). Errors: LR_EINVAL
 * (bad tenant or key), LR_STORE_EDB.
 */
int lr_store_idem_begin(lr_store *st, const char *tenant, const char *key,
			lr_store_idem *r, lr_msg *msg);

/*
 * Marks the held key done with the answer given: fingerprint (64 hex),
 * status, resource id, Location (may be NULL) and body (may be NULL).
 * A key already done by lr_store_job_create() only gets its body (and the
 * rest is kept); a key the sweep dropped meanwhile is written again.
 * Errors: LR_STORE_ENOTFOUND (the key is done for another request),
 * LR_EINVAL.
 */
int lr_store_idem_complete(lr_store *st, const char *tenant, const char *key,
			   const char *fingerprint, int status,
			   const char *resource, const char *location,
			   const char *body, lr_msg *msg);

/* Gives up a held (pending) key, so a retry may take it; a done key is
 * left alone. */
int lr_store_idem_release(lr_store *st, const char *tenant, const char *key,
			  lr_msg *msg);

/* ------------------------------------------------------------------ */
/* Retention                                                            */

typedef struct lr_store_sweep_opts {
	int64_t retention_ms; /* delete terminal jobs finished longer ago, and
				 owner rows of uploads older than this that no
				 job uses; <= 0 keeps all jobs and uploads */
	int64_t tmp_age_ms;   /* delete tmp/ files not modified for this long,
				 and unowned blobs no job references that were
				 last stored longer ago than this; 0 deletes
				 all (only at startup, before any upload or
				 worker can be in flight) */
} lr_store_sweep_opts;

typedef struct lr_store_sweep_report {
	int64_t jobs_deleted;        /* terminal jobs past retention */
	int64_t owners_deleted;      /* expired (tenant, sha) upload rows */
	int64_t blobs_deleted;       /* unreferenced blobs (file and row) */
	int64_t blob_bytes_freed;    /* their total size */
	int64_t orphan_files_deleted;/* files in blobs/ with no row (crash
					between rename and commit) */
	int64_t tmp_files_deleted;   /* stale uploads in tmp/ */
	int64_t idem_deleted;        /* idempotency keys past 24 h, or pending
					ones older than tmp_age_ms */
	int64_t hooks_deleted;       /* delivered or failed outbox rows past
					retention */
} lr_store_sweep_report;

/*
 * Retention and garbage collection, safe to run while other threads and
 * processes use the store: deletes terminal jobs past retention, expired
 * owner rows, idempotency keys past LR_STORE_IDEM_TTL_MS (pending ones
 * past tmp_age_ms: their request died with a previous process), finished
 * outbox rows past retention, blobs referenced by no job and no owner row (never one used by
 * a queued or running job), files in blobs/ without a row, and stale temp
 * files. `rep` (may be NULL) says what was removed.
 */
int lr_store_sweep(lr_store *st, const lr_store_sweep_opts *opts,
		   lr_store_sweep_report *rep, lr_msg *msg);

#endif /* LR_STORE_H */
