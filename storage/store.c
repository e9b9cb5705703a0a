/*
 * store.c - opening the store: directories, the SQLite connection, pragmas,
 * schema migrations, transactions and error mapping.
 *
 * DESIGN. The database is the single source of truth for jobs and for which
 * blobs exist; the file system only holds blob bytes. Durability comes from
 * WAL with synchronous=FULL: a COMMIT that returned is on disk, so "202
 * Accepted" is never answered for a job a power cut could lose. Writers
 * serialise on SQLite's write lock: every write transaction starts with
 * BEGIN IMMEDIATE, which takes the lock up front, so a transaction never
 * fails half-way with SQLITE_BUSY when it upgrades from read to write (the
 * WAL pitfall). Waiting for the lock is done by our busy handler
 * (lr_busy_wait(), up to LR__BUSY_TIMEOUT_MS) inside a loop that retries
 * until LR__BUSY_DEADLINE_S, so callers never see SQLITE_BUSY. Reads are single
 * statements in autocommit mode; WAL gives them a consistent snapshot
 * without blocking writers. Threads of one process also queue on a mutex
 * before BEGIN IMMEDIATE (see lr__tx_begin()).
 *
 * Schema migrations are an ordered list of SQL scripts; script i moves
 * PRAGMA user_version from i to i + 1. They run inside one BEGIN IMMEDIATE
 * transaction, so several processes opening a new state_dir at once
 * serialise and the second one finds the work done. A database whose
 * user_version is newer than this build is refused untouched.
 */
#include "config.h"

#include "storage/store-int.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- schema --------------------------------------------------------- */

/*
 * Version 1. Times are Unix milliseconds. JSON columns must hold objects
 * (json_type = 'object'), enforced here as a second line of defence. The
 * foreign keys make it impossible to delete a blob row that a job or an
 * owner row still names.
 */
static const char *const lr_schema_v1 =
	"CREATE TABLE meta ("
	"  key TEXT PRIMARY KEY,"
	"  value INTEGER NOT NULL"
	") STRICT;"
	"INSERT INTO meta(key, value) VALUES ('epoch', 0);"
	"CREATE TABLE blobs ("
	"  sha TEXT PRIMARY KEY CHECK (length(sha) = 64),"
	"  size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),"
	"  created_ms INTEGER NOT NULL,"
	"  touched_ms INTEGER NOT NULL"
	") STRICT;"
	"CREATE TABLE blob_owners ("
	"  tenant TEXT NOT NULL,"
	"  sha TEXT NOT NULL REFERENCES blobs(sha),"
	"  created_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (tenant, sha)"
	") STRICT;"
	"CREATE INDEX blob_owners_sha ON blob_owners(sha);"
	"CREATE TABLE jobs ("
	"  id TEXT PRIMARY KEY CHECK (length(id) = 32),"
	"  tenant TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN"
	"    ('queued','running','succeeded','failed','canceled')),"
	"  spec_json TEXT NOT NULL CHECK (json_valid(spec_json)"
	"    AND json_type(spec_json) = 'object'),"
	"  model_sha TEXT NOT NULL REFERENCES blobs(sha),"
	"  calib_sha TEXT REFERENCES blobs(sha),"
	"  created_ms INTEGER NOT NULL,"
	"  started_ms INTEGER,"
	"  finished_ms INTEGER,"
	"  updated_ms INTEGER NOT NULL,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),"
	"  lease_owner TEXT,"
	"  lease_epoch INTEGER,"
	"  lease_expires_ms INTEGER,"
	"  fence INTEGER NOT NULL DEFAULT 0,"
	"  progress_json TEXT CHECK (progress_json IS NULL OR"
	"    (json_valid(progress_json) AND json_type(progress_json) = 'object')),"
	"  result_sha TEXT REFERENCES blobs(sha),"
	"  report_sha TEXT REFERENCES blobs(sha),"
	"  error_json TEXT CHECK (error_json IS NULL OR"
	"    (json_valid(error_json) AND json_type(error_json) = 'object')),"
	"  cancel_requested INTEGER NOT NULL DEFAULT 0"
	"    CHECK (cancel_requested IN (0, 1)),"
	"  CHECK ((state = 'running') = (lease_owner IS NOT NULL))"
	") STRICT;"
	"CREATE INDEX jobs_tenant_created ON jobs(tenant, created_ms, id);"
	"CREATE INDEX jobs_tenant_state_created ON jobs(tenant, state, created_ms, id);"
	"CREATE INDEX jobs_state_created ON jobs(state, created_ms, id);"
	"CREATE INDEX jobs_model_sha ON jobs(model_sha);"
	"CREATE INDEX jobs_calib_sha ON jobs(calib_sha);"
	"CREATE INDEX jobs_result_sha ON jobs(result_sha);"
	"CREATE INDEX jobs_report_sha ON jobs(report_sha);";

/*
 * Version 2: the webhook outbox and idempotency keys (storage/hooks.c).
 * An outbox row is written in the transaction that makes its job
 * terminal, at most one per job (UNIQUE job_id); it has no foreign key, so
 * deleting the job does not lose a delivery. `body` is frozen at the first
 * attempt, so every retry signs the same bytes. Idempotency rows are per
 * (tenant, key); 'pending' while the first request runs, 'done' once it
 * has an answer.
 */
static const char *const lr_schema_v2 =
	"CREATE TABLE webhook_outbox ("
	"  id TEXT PRIMARY KEY,"
	"  job_id TEXT NOT NULL UNIQUE,"
	"  tenant TEXT NOT NULL,"
	"  event TEXT NOT NULL CHECK (event IN"
	"    ('job.succeeded','job.failed','job.canceled')),"
	"  url TEXT NOT NULL,"
	"  event_ms INTEGER NOT NULL,"
	"  body TEXT CHECK (body IS NULL OR json_valid(body)),"
	"  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN"
	"    ('pending','delivered','failed')),"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_ms INTEGER NOT NULL,"
	"  last_status INTEGER,"
	"  last_error TEXT,"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL"
	") STRICT;"
	"CREATE INDEX webhook_outbox_due ON webhook_outbox(state, next_ms);"
	"CREATE TABLE idempotency ("
	"  tenant TEXT NOT NULL,"
	"  key TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),"
	"  state TEXT NOT NULL CHECK (state IN ('pending','done')),"
	"  fingerprint TEXT,"
	"  status INTEGER,"
	"  resource TEXT,"
	"  location TEXT,"
	"  body TEXT,"
	"  created_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (tenant, key)"
	") STRICT;"
	"CREATE INDEX idempotency_created ON idempotency(created_ms);";

/* lr_migrations[i] moves user_version from i to i + 1. */
static const char *const lr_migrations[] = { lr_schema_v1, lr_schema_v2 };
_Static_assert(sizeof(lr_migrations) / sizeof(lr_migrations[0]) ==
		       LR_STORE_SCHEMA_VERSION,
	       "one migration per schema version");

/* ---- small helpers -------------------------------------------------- */

void (*lr__fault_hook)(const char *point);

int64_t lr_store_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int lr__random(void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

void lr__hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int lr_is_lower_hex(const char *s, size_t len)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0; /* also stops at the NUL of a short string */
	}
	return s[len] == '\0';
}

int lr_store_id_valid(const char *s)
{
	return lr_is_lower_hex(s, LR_STORE_ID_LEN);
}

int lr_store_sha_valid(const char *s)
{
	return lr_is_lower_hex(s, LR_STORE_SHA_LEN);
}

int lr_store_tenant_valid(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];

		if (i >= LR_STORE_TENANT_MAX)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

static const char *const lr_state_names[LR_JOB_STATE_COUNT] = {
	"queued", "running", "succeeded", "failed", "canceled",
};

const char *lr_job_state_name(enum lr_job_state s)
{
	if ((int)s < 0 || (int)s >= LR_JOB_STATE_COUNT)
		return NULL;
	return lr_state_names[s];
}

int lr_job_state_parse(const char *name, enum lr_job_state *out)
{
	int i;

	if (name == NULL)
		return LR_EINVAL;
	for (i = 0; i < LR_JOB_STATE_COUNT; i++) {
		if (strcmp(name, lr_state_names[i]) == 0) {
			*out = (enum lr_job_state)i;
			return 0;
		}
	}
	return LR_EINVAL;
}

int lr_job_state_is_terminal(enum lr_job_state s)
{
	return s == LR_JOB_STATE_SUCCEEDED || s == LR_JOB_STATE_FAILED ||
	       s == LR_JOB_STATE_CANCELED;
}

const char *lr_store_strerror(int code)
{
	switch (code) {
	case LR_STORE_ENOTFOUND: return "not found";
	case LR_STORE_ESTALE: return "stale fencing token: the job was taken over";
	case LR_STORE_ECONFLICT: return "the job is in the wrong state";
	case LR_STORE_EDIGEST: return "content does not match the expected digest";
	case LR_STORE_ETOOBIG: return "content larger than the limit";
	case LR_STORE_EQUEUEFULL: return "too many queued or running jobs";
	case LR_STORE_ESCHEMA: return "database schema newer than this build";
	case LR_STORE_EDB: return "database failure";
	case LR_STORE_EUNAVAIL: return "database unreachable";
	default: return lr_strerror(code);
	}
}

/* ---- SQLite plumbing ------------------------------------------------ */

int lr__db_fail(lr_store *st, int rc, lr_msg *msg, const char *what)
{
	int code;

	switch (rc & 0xff) {
	case SQLITE_FULL: code = -ENOSPC; break;
	case SQLITE_NOMEM: code = LR_ENOMEM; break;
	case SQLITE_IOERR: code = -EIO; break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: code = -ETIMEDOUT; break;
	case SQLITE_CONSTRAINT: code = LR_EINVAL; break;
	default: code = LR_STORE_EDB; break;
	}
	return lr_fail(msg, code, "%s: %s", what,
		       st != NULL && st->db != NULL ? sqlite3_errmsg(st->db)
						    : sqlite3_errstr(rc));
}

/* Sleeps a random 1..8 ms so that retrying writers do not move in step. */
static void lr_backoff(void)
{
	unsigned char r = 0;
	struct timespec ts;

	(void)lr__random(&r, 1);
	ts.tv_sec = 0;
	ts.tv_nsec = (long)(1 + (r & 7)) * 1000000L;
	nanosleep(&ts, NULL);
}

/* Runs a statement without results, retrying SQLITE_BUSY until the
 * deadline. Only for constant SQL with no user data. */
static int lr_exec_retry(lr_store *st, const char *sql)
{
	double deadline = lr_now() + LR__BUSY_DEADLINE_S;
	int rc;

	for (;;) {
		rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
		if ((rc & 0xff) != SQLITE_BUSY || lr_now() > deadline)
			return rc;
		lr_backoff();
	}
}

/*
 * Threads of one process take a ticket before BEGIN IMMEDIATE, so they
 * queue here in order and wake as soon as the writer before them commits,
 * and only one thread per process polls SQLite's lock. Processes then take
 * turns at SQLite's lock through lr_busy_wait(). Measured in the contention
 * test (6 threads + a process with 2 threads): SQLite's default
 * busy_timeout alone gave ~220 jobs/s with 330 ms stalls and a second
 * process that sometimes got almost no turns; with a plain mutex instead
 * of the ticket queue, the second process was starved for the whole run.
 * The queue is process-wide, not per database: write transactions are
 * short and a thread never holds two. Never fork() while a store is in use.
 */
static pthread_mutex_t lr_write_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t lr_write_turn = PTHREAD_COND_INITIALIZER;
static unsigned long lr_write_next;    /* next ticket to hand out */
static unsigned long lr_write_serving; /* ticket that may write now */

/* Waits for this thread's turn to write: first come, first served, so no
 * thread of this process waits behind more than the writers before it. */
static void lr_writer_enter(void)
{
	unsigned long me;

	pthread_mutex_lock(&lr_write_mutex);
	me = lr_write_next++;
	while (me != lr_write_serving)
		pthread_cond_wait(&lr_write_turn, &lr_write_mutex);
	pthread_mutex_unlock(&lr_write_mutex);
}

static void lr_writer_leave(void)
{
	pthread_mutex_lock(&lr_write_mutex);
	lr_write_serving++;
	pthread_cond_broadcast(&lr_write_turn);
	pthread_mutex_unlock(&lr_write_mutex);
}

int lr__tx_begin(lr_store *st, lr_msg *msg)
{
	if (st->pg != NULL)
		return lr__pg_begin(st, msg);
	int rc;

	LR_ASSERT(!st->in_write); /* no nested write transactions */
	lr_writer_enter();
	rc = lr_exec_retry(st, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK) {
		lr_writer_leave();
		return lr__db_fail(st, rc, msg, "start write transaction");
	}
	st->in_write = 1;
	return 0;
}

int lr__tx_commit(lr_store *st, lr_msg *msg)
{
	if (st->pg != NULL)
		return lr__pg_commit(st, msg);
	int rc = lr_exec_retry(st, "COMMIT");

	if (rc != SQLITE_OK) {
		int err = lr__db_fail(st, rc, msg, "commit");

		lr__tx_rollback(st);
		return err;
	}
	st->in_write = 0;
	lr_writer_leave();
	return 0;
}

void lr__tx_rollback(lr_store *st)
{
	if (st->pg != NULL) {
		lr__pg_rollback(st);
		return;
	}
	if (st == NULL || !st->in_write)
		return;
	if (!sqlite3_get_autocommit(st->db))
		(void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	st->in_write = 0;
	lr_writer_leave();
}

int lr__prepare(lr_store *st, const char *sql, sqlite3_stmt **stmt,
		lr_msg *msg)
{
	const char *tail = NULL;
	int cache = st->nstmts < LR__STMT_CACHE, rc;

	/* Preparing costs more than most of our queries: reuse. The text is
	 * compared too, in case a caller's buffer was reused for other SQL. */
	for (int i = 0; i < st->nstmts; i++) {
		struct lr__stmt_slot *s = &st->stmts[i];

		if (s->sql == sql && !s->busy && strcmp(sqlite3_sql(s->stmt), sql) == 0) {
			s->busy = 1;
			*stmt = s->stmt;
			return 0;
		}
	}
	rc = sqlite3_prepare_v3(st->db, sql, -1, cache ? SQLITE_PREPARE_PERSISTENT : 0, stmt, &tail);
	if (rc != SQLITE_OK) {
		*stmt = NULL;
		return lr__db_fail(st, rc, msg, "prepare");
	}
	if (cache && tail != NULL && *tail == '\0') {
		st->stmts[st->nstmts].sql = sql;
		st->stmts[st->nstmts].stmt = *stmt;
		st->stmts[st->nstmts].busy = 1;
		st->nstmts++;
	}
	return 0;
}

void lr__finalize(lr_store *st, sqlite3_stmt *stmt)
{
	if (stmt == NULL)
		return;
	for (int i = 0; i < st->nstmts; i++)
		if (st->stmts[i].stmt == stmt) {
			sqlite3_reset(stmt);
			sqlite3_clear_bindings(stmt);
			st->stmts[i].busy = 0;
			return;
		}
	sqlite3_finalize(stmt);
}

int lr__step(lr_store *st, sqlite3_stmt *stmt)
{
	double deadline = 0;
	int first = !sqlite3_stmt_busy(stmt), rc;

	for (;;) {
		rc = sqlite3_step(stmt);
		if ((rc & 0xff) != SQLITE_BUSY || !first ||
		    !sqlite3_get_autocommit(st->db))
			return rc;
		/* A busy first step in autocommit mode has returned no row;
		 * reset and try again. Later steps are never retried, since a
		 * reset would return rows twice. */
		if (deadline == 0)
			deadline = lr_now() + LR__BUSY_DEADLINE_S;
		else if (lr_now() > deadline)
			return rc;
		sqlite3_reset(stmt);
		lr_backoff();
	}
}

int lr__bind_text_or_null(sqlite3_stmt *stmt, int idx, const char *s)
{
	if (s == NULL || s[0] == '\0')
		return sqlite3_bind_null(stmt, idx);
	return sqlite3_bind_text(stmt, idx, s, -1, SQLITE_TRANSIENT);
}

void lr__col_copy(sqlite3_stmt *stmt, int col, char *buf, size_t len)
{
	const unsigned char *t = sqlite3_column_text(stmt, col);

	buf[0] = '\0';
	if (t != NULL)
		snprintf(buf, len, "%s", (const char *)t);
}

/* Runs `sql` (a constant returning one integer row) into *out. */
static int lr_query_int(lr_store *st, const char *sql, int64_t *out,
			lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	int err, rc;

	err = lr__prepare(st, sql, &stmt, msg);
	if (err)
		goto out;
	rc = lr__step(st, stmt);
	if (rc != SQLITE_ROW) {
		err = lr__db_fail(st, rc, msg, sql);
		goto out;
	}
	*out = sqlite3_column_int64(stmt, 0);
out:
	lr__finalize(st, stmt);
	return err;
}

/* Like lr_query_int() for a pragma whose value is text. */
static int lr_query_text(lr_store *st, const char *sql, char *buf,
			 size_t len, lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	int err, rc;

	err = lr__prepare(st, sql, &stmt, msg);
	if (err)
		goto out;
	rc = lr__step(st, stmt);
	if (rc != SQLITE_ROW) {
		err = lr__db_fail(st, rc, msg, sql);
		goto out;
	}
	lr__col_copy(stmt, 0, buf, len);
out:
	lr__finalize(st, stmt);
	return err;
}

/* ---- opening -------------------------------------------------------- */

/* mkdir that accepts an existing directory (but not a symlink to one). */
static int lr_mkdir(const char *path, lr_msg *msg)
{
	struct stat sb;

	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return lr_fail(msg, -errno, "%s: cannot create: %s", path,
			       strerror(errno));
	if (lstat(path, &sb) != 0)
		return lr_fail(msg, -errno, "%s: %s", path, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return lr_fail(msg, -ENOTDIR, "%s: not a directory", path);
	return 0;
}

/* Opens dir/name as a directory fd, refusing symlinks. */
static int lr_open_dir(const char *dir, const char *name, int *fd,
		       lr_msg *msg)
{
	char path[PATH_MAX];
	int err;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path))
		return lr_fail(msg, -ENAMETOOLONG, "%s: path too long", dir);
	err = lr_mkdir(path, msg);
	if (err)
		return err;
	*fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd < 0)
		return lr_fail(msg, -errno, "%s: %s", path, strerror(errno));
	return 0;
}

/*
 * The busy handler: SQLite calls it while another connection holds the lock
 * it needs; returning 1 means "try again". It sleeps 50-550 us (random) per
 * try, up to LR__BUSY_TIMEOUT_MS per lock request; lr_exec_retry() then
 * retries whole statements until LR__BUSY_DEADLINE_S. This replaces
 * sqlite3_busy_timeout(), whose back-off sleeps up to 100 ms between tries:
 * in the contention test that starved a second process for seconds, since
 * the lock is only free in short gaps. With short random sleeps, every
 * process gets its turn. PRAGMA busy_timeout therefore reads 0; the wait
 * is LR__BUSY_TIMEOUT_MS (tests/unit/test_store.c measures it).
 */
static int lr_busy_wait(void *arg, int count)
{
	lr_store *st = arg;
	unsigned short r = 0;
	struct timespec ts;
	double now = lr_now();

	if (count == 0)
		st->busy_since = now;
	else if (now - st->busy_since > LR__BUSY_TIMEOUT_MS / 1000.0)
		return 0;
	(void)lr__random(&r, sizeof(r));
	ts.tv_sec = 0;
	ts.tv_nsec = 50000L + (long)(r % 500) * 1000L;
	nanosleep(&ts, NULL);
	return 1;
}

/* Applies the pragmas of reliability Q1 and checks they took effect. */
static int lr_set_pragmas(lr_store *st, lr_msg *msg)
{
	char mode[16];
	int64_t v;
	int err, rc;

	rc = sqlite3_busy_handler(st->db, lr_busy_wait, st);
	if (rc != SQLITE_OK)
		return lr__db_fail(st, rc, msg, "busy handler");
	/* Changing to WAL needs a brief exclusive lock: retry on busy. */
	rc = lr_exec_retry(st, "PRAGMA journal_mode=WAL");
	if (rc != SQLITE_OK)
		return lr__db_fail(st, rc, msg, "journal_mode=WAL");
	err = lr_query_text(st, "PRAGMA journal_mode", mode, sizeof(mode),
			    msg);
	if (err)
		return err;
	if (strcmp(mode, "wal") != 0)
		return lr_fail(msg, LR_STORE_EDB,
			       "journal_mode is '%s', not 'wal'", mode);
	rc = sqlite3_exec(st->db,
			  "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
			  NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return lr__db_fail(st, rc, msg, "pragmas");
	err = lr_query_int(st, "PRAGMA synchronous", &v, msg);
	if (err)
		return err;
	if (v != 2)
		return lr_fail(msg, LR_STORE_EDB, "synchronous is %lld, not FULL",
			       (long long)v);
	err = lr_query_int(st, "PRAGMA foreign_keys", &v, msg);
	if (err)
		return err;
	if (v != 1)
		return lr_fail(msg, LR_STORE_EDB, "foreign_keys is off");
	return 0;
}

/* Brings the schema to LR_STORE_SCHEMA_VERSION in one transaction. */
static int lr_migrate(lr_store *st, lr_msg *msg)
{
	char sql[64];
	int64_t version;
	int err, rc;

	err = lr__tx_begin(st, msg);
	if (err)
		return err;
	err = lr_query_int(st, "PRAGMA user_version", &version, msg);
	if (err)
		goto out;
	if (version > LR_STORE_SCHEMA_VERSION || version < 0) {
		err = lr_fail(msg, LR_STORE_ESCHEMA,
			      "%s/lowrankd.db: schema version %lld is newer than "
			      "this build understands (%d); upgrade lowrankd",
			      st->dir, (long long)version,
			      LR_STORE_SCHEMA_VERSION);
		goto out;
	}
	for (; version < LR_STORE_SCHEMA_VERSION; version++) {
		rc = sqlite3_exec(st->db, lr_migrations[version], NULL, NULL,
				  NULL);
		if (rc != SQLITE_OK) {
			err = lr__db_fail(st, rc, msg, "schema migration");
			goto out;
		}
	}
	/* PRAGMA takes no parameters; the value is our own constant. */
	snprintf(sql, sizeof(sql), "PRAGMA user_version=%d",
		 LR_STORE_SCHEMA_VERSION);
	rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		err = lr__db_fail(st, rc, msg, "set user_version");
		goto out;
	}
	err = lr__tx_commit(st, msg);
	return err;
out:
	lr__tx_rollback(st);
	return err;
}

/* The database of lr_store_set_database(): NULL for SQLite. The lock
 * lets a set race an open (tests open stores of several databases from
 * several threads); lr_store_open() connects with its own copy. */
static char *lr_database;
static pthread_mutex_t lr_database_lock = PTHREAD_MUTEX_INITIALIZER;

int lr_store_set_database(const char *database, lr_msg *msg)
{
	char *copy = NULL;

	if (database != NULL && database[0] != '\0' &&
	    strcmp(database, "sqlite") != 0) {
		if (strncmp(database, "postgresql://", 13) != 0 &&
		    strncmp(database, "postgres://", 11) != 0)
			return lr_fail(msg, LR_EINVAL,
				       "database: expected \"sqlite\" or a "
				       "postgresql:// URI");
		copy = strdup(database);
		if (copy == NULL)
			return lr_fail(msg, LR_ENOMEM, "out of memory");
	}
	pthread_mutex_lock(&lr_database_lock);
	free(lr_database);
	lr_database = copy;
	pthread_mutex_unlock(&lr_database_lock);
	return 0;
}

const char *lr_store_database(void)
{
	return lr_database != NULL ? lr_database : "sqlite";
}

int lr_store_is_shared(void)
{
	return lr_database != NULL;
}

int lr_store_ping(lr_store *st, lr_msg *msg)
{
	if (st->pg == NULL)
		return 0;
	return lr__pg_ping(st, msg);
}

int lr_store_open(const char *state_dir, lr_store **out, lr_msg *msg)
{
	char path[PATH_MAX], *uri = NULL;
	lr_store *st = NULL;
	int err, rc;

	*out = NULL;
	if (state_dir == NULL || state_dir[0] == '\0')
		return lr_fail(msg, LR_EINVAL, "state_dir is empty");
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return lr_fail(msg, LR_ENOMEM, "out of memory");
	st->blobs_fd = -1;
	st->tmp_fd = -1;
	err = lr_mkdir(state_dir, msg);
	if (err)
		goto fail;
	if (realpath(state_dir, path) == NULL) {
		err = lr_fail(msg, -errno, "%s: %s", state_dir,
			      strerror(errno));
		goto fail;
	}
	st->dir = strdup(path);
	if (st->dir == NULL) {
		err = lr_fail(msg, LR_ENOMEM, "out of memory");
		goto fail;
	}
	err = lr_open_dir(st->dir, "blobs", &st->blobs_fd, msg);
	if (err)
		goto fail;
	err = lr_open_dir(st->dir, "tmp", &st->tmp_fd, msg);
	if (err)
		goto fail;
	pthread_mutex_lock(&lr_database_lock);
	if (lr_database != NULL && (uri = strdup(lr_database)) == NULL)
		err = LR_ENOMEM;
	pthread_mutex_unlock(&lr_database_lock);
	if (err) {
		err = lr_fail(msg, LR_ENOMEM, "out of memory");
		goto fail;
	}
	if (uri != NULL) {
		err = lr__pg_open(st, uri, msg);
		free(uri);
		if (err)
			goto fail;
		*out = st;
		return 0;
	}
	if (snprintf(path, sizeof(path), "%s/lowrankd.db", st->dir) >=
	    (int)sizeof(path)) {
		err = lr_fail(msg, -ENAMETOOLONG, "%s: path too long", st->dir);
		goto fail;
	}
	rc = sqlite3_open_v2(path, &st->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOFOLLOW |
				     SQLITE_OPEN_FULLMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		err = lr__db_fail(st, rc, msg, path);
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	err = lr_set_pragmas(st, msg);
	if (err)
		goto fail;
	err = lr_migrate(st, msg);
	if (err)
		goto fail;
	*out = st;
	return 0;
fail:
	lr_store_close(st);
	return err;
}

lr_store *lr_store_close(lr_store *st)
{
	if (st == NULL)
		return NULL;
	for (int i = 0; i < st->nstmts; i++)
		sqlite3_finalize(st->stmts[i].stmt);
	st->nstmts = 0;
	lr__pg_close(st);
	if (st->db != NULL)
		sqlite3_close_v2(st->db);
	if (st->blobs_fd >= 0)
		close(st->blobs_fd);
	if (st->tmp_fd >= 0)
		close(st->tmp_fd);
	free(st->dir);
	free(st);
	return NULL;
}

int lr_store_integrity_check(lr_store *st, lr_msg *msg)
{
	char res[256];
	int err;

	if (st->pg != NULL)
		return lr__pg_integrity_check(st, msg);
	err = lr_query_text(st, "PRAGMA integrity_check", res, sizeof(res),
			    msg);
	if (err)
		return err;
	if (strcmp(res, "ok") != 0)
		return lr_fail(msg, LR_STORE_EDB, "integrity_check: %s", res);
	return 0;
}

int lr_store_epoch_begin(lr_store *st, int64_t *epoch, lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	int err, rc;

	if (st->pg != NULL)
		return lr__pg_epoch_begin(st, epoch, msg);
	err = lr__tx_begin(st, msg);
	if (err)
		return err;
	err = lr__prepare(st,
			  "UPDATE meta SET value = value + 1 WHERE key = 'epoch' "
			  "RETURNING value",
			  &stmt, msg);
	if (err)
		goto out;
	rc = lr__step(st, stmt);
	if (rc != SQLITE_ROW) {
		err = lr__db_fail(st, rc, msg, "epoch");
		goto out;
	}
	*epoch = sqlite3_column_int64(stmt, 0);
	lr__finalize(st, stmt);
	stmt = NULL;
	return lr__tx_commit(st, msg);
out:
	lr__finalize(st, stmt);
	lr__tx_rollback(st);
	return err;
}
