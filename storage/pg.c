/*
 * pg.c - the PostgreSQL backend of store.h (database = postgresql://...).
 *
 * DESIGN. The public functions of jobs.c, hooks.c, blobs.c and sweep.c
 * check st->pg first and hand over to the lr__pg_* functions here, so the
 * API, the workers and the sweep never know which database they talk to.
 * The blob FILES stay where they are on SQLite (state_dir/blobs, now a
 * directory every node shares); only their rows move to PostgreSQL. One
 * lr_store is one libpq connection, used by one thread at a time, exactly
 * as one SQLite connection was.
 *
 * The guarantees of store.h carry over this way:
 *   - claim is one UPDATE whose sub-select takes the oldest queued row
 *     FOR UPDATE SKIP LOCKED, so nodes claiming at once never wait for or
 *     double-claim each other's row;
 *   - every worker write names id AND fence in its WHERE, as on SQLite;
 *   - recovery treats a running job as dead when its lease expired, or
 *     when no session holds its epoch's advisory lock: lr_store_epoch_begin
 *     takes pg_advisory_lock(LR_PG_EPOCH, epoch) on its connection for the
 *     daemon's lifetime, so a node killed with SIGKILL loses its lock with
 *     its session and any other node requeues its jobs at once (a node
 *     that lives keeps its jobs, whatever epoch they carry);
 *   - a job's create checks the tenant's queue limit under a per-tenant
 *     transaction advisory lock, so concurrent submissions on different
 *     nodes cannot overshoot it;
 *   - a blob's rename into blobs/ and its row commit under a per-digest
 *     advisory lock, which the orphan remover takes too (the SQLite write
 *     lock played that role);
 *   - the retention sweep runs on one node at a time (pg_try_advisory_lock;
 *     a node that does not get it skips that round);
 *   - migrations are versioned (table lr_schema) and applied in one
 *     transaction under an advisory lock, so N nodes starting together
 *     apply each once;
 *   - job creation NOTIFYs channel lowrankd_jobs; lr_store_wait() LISTENs,
 *     and callers keep their polling as the fallback.
 * A lost connection (server restarted, network) is reset on the next call;
 * until it is back, calls fail with LR_STORE_EUNAVAIL, which the API turns
 * into 503 + Retry-After and /readyz into "not ready". Passwords never
 * appear in messages: the URI is redacted (lr_store_redact_uri) before it
 * is logged, and libpq reads passwords from PGPASSFILE or a service file.
 */
#include "config.h"

#include "storage/store-int.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

/* Advisory lock namespaces (the first key of the two-int form). */
#define LR_PG_EPOCH 0x4c52  /* (ns, epoch): held by a live daemon */
#define LR_PG_BLOB 0x4c53   /* (ns, first 31 bits of the digest) */
#define LR_PG_ONCE 0x4c54   /* (ns, 1) sweep, (ns, 2) migrations */
#define LR_PG_TENANT 0x4c55 /* (ns, hashtext(tenant)) queue limit */

static const char *const lr_pg_schema_v1 =
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);"
	"INSERT INTO meta(key, value) VALUES ('epoch', 0);"
	"CREATE TABLE blobs ("
	"  sha TEXT PRIMARY KEY CHECK (length(sha) = 64),"
	"  size_bytes BIGINT NOT NULL CHECK (size_bytes >= 0),"
	"  created_ms BIGINT NOT NULL, touched_ms BIGINT NOT NULL);"
	"CREATE TABLE blob_owners ("
	"  tenant TEXT NOT NULL, sha TEXT NOT NULL REFERENCES blobs(sha),"
	"  created_ms BIGINT NOT NULL, PRIMARY KEY (tenant, sha));"
	"CREATE INDEX blob_owners_sha ON blob_owners(sha);"
	"CREATE TABLE jobs ("
	"  id TEXT PRIMARY KEY CHECK (length(id) = 32),"
	"  tenant TEXT NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN"
	"    ('queued','running','succeeded','failed','canceled')),"
	"  spec_json TEXT NOT NULL CHECK (jsonb_typeof(spec_json::jsonb) = 'object'),"
	"  model_sha TEXT NOT NULL REFERENCES blobs(sha),"
	"  calib_sha TEXT REFERENCES blobs(sha),"
	"  created_ms BIGINT NOT NULL, started_ms BIGINT, finished_ms BIGINT,"
	"  updated_ms BIGINT NOT NULL,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),"
	"  lease_owner TEXT, lease_epoch BIGINT, lease_expires_ms BIGINT,"
	"  fence BIGINT NOT NULL DEFAULT 0,"
	"  progress_json TEXT CHECK (progress_json IS NULL OR"
	"    jsonb_typeof(progress_json::jsonb) = 'object'),"
	"  result_sha TEXT REFERENCES blobs(sha),"
	"  report_sha TEXT REFERENCES blobs(sha),"
	"  error_json TEXT CHECK (error_json IS NULL OR"
	"    jsonb_typeof(error_json::jsonb) = 'object'),"
	"  cancel_requested INTEGER NOT NULL DEFAULT 0"
	"    CHECK (cancel_requested IN (0, 1)),"
	"  CHECK ((state = 'running') = (lease_owner IS NOT NULL)));"
	"CREATE INDEX jobs_tenant_created ON jobs(tenant, created_ms, id);"
	"CREATE INDEX jobs_tenant_state_created ON jobs(tenant, state, created_ms, id);"
	"CREATE INDEX jobs_state_created ON jobs(state, created_ms, id);"
	"CREATE INDEX jobs_model_sha ON jobs(model_sha);"
	"CREATE INDEX jobs_calib_sha ON jobs(calib_sha);"
	"CREATE INDEX jobs_result_sha ON jobs(result_sha);"
	"CREATE INDEX jobs_report_sha ON jobs(report_sha);";

static const char *const lr_pg_schema_v2 =
	"CREATE TABLE webhook_outbox ("
	"  id TEXT PRIMARY KEY, job_id TEXT NOT NULL UNIQUE,"
	"  tenant TEXT NOT NULL,"
	"  event TEXT NOT NULL CHECK (event IN"
	"    ('job.succeeded','job.failed','job.canceled')),"
	"  url TEXT NOT NULL, event_ms BIGINT NOT NULL,"
	"  body TEXT CHECK (body IS NULL OR body::jsonb IS NOT NULL),"
	"  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN"
	"    ('pending','delivered','failed')),"
	"  attempts INTEGER NOT NULL DEFAULT 0, next_ms BIGINT NOT NULL,"
	"  last_status INTEGER, last_error TEXT,"
	"  created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);"
	"CREATE INDEX webhook_outbox_due ON webhook_outbox(state, next_ms);"
	"CREATE TABLE idempotency ("
	"  tenant TEXT NOT NULL,"
	"  key TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),"
	"  state TEXT NOT NULL CHECK (state IN ('pending','done')),"
	"  fingerprint TEXT, status INTEGER, resource TEXT, location TEXT,"
	"  body TEXT, created_ms BIGINT NOT NULL, PRIMARY KEY (tenant, key));"
	"CREATE INDEX idempotency_created ON idempotency(created_ms);";

static const char *const lr_pg_migrations[] = { lr_pg_schema_v1,
						lr_pg_schema_v2 };
_Static_assert(sizeof(lr_pg_migrations) / sizeof(lr_pg_migrations[0]) ==
		       LR_STORE_SCHEMA_VERSION,
	       "one PostgreSQL migration per schema version");

/* ---- connection and errors ------------------------------------------ */

/* Appends n bytes of src to buf (size len) at *o, truncating. */
static void lr_put(char *buf, size_t len, size_t *o, const char *src,
		   size_t n)
{
	while (n-- > 0 && *o + 1 < len)
		buf[(*o)++] = *src++;
	buf[*o] = '\0';
}

void lr_store_redact_uri(const char *uri, char *buf, size_t len)
{
	const char *p, *end, *at, *colon, *q;
	size_t o = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (uri == NULL) {
		lr_put(buf, len, &o, "(none)", 6);
		return;
	}
	p = strstr(uri, "://");
	p = p != NULL ? p + 3 : uri;
	/* user:password@ before the host: keep the user only. */
	end = p + strcspn(p, "/?");
	at = memchr(p, '@', (size_t)(end - p));
	colon = at != NULL ? memchr(p, ':', (size_t)(at - p)) : NULL;
	if (colon != NULL) {
		lr_put(buf, len, &o, uri, (size_t)(colon - uri));
		lr_put(buf, len, &o, ":***", 4);
		p = at;
	} else {
		lr_put(buf, len, &o, uri, (size_t)(p - uri));
	}
	/* password=... in the query string. */
	while ((q = strstr(p, "password=")) != NULL) {
		lr_put(buf, len, &o, p, (size_t)(q - p) + 9);
		lr_put(buf, len, &o, "***", 3);
		p = q + 9 + strcspn(q + 9, "&");
	}
	lr_put(buf, len, &o, p, strlen(p));
}

/* 1 when the connection looks lost (so the call may be retried later). */
static int lr_pg_conn_lost(lr_store *st, const PGresult *r)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	if (PQstatus(st->pg) == CONNECTION_BAD)
		return 1;
	if (state == NULL)
		return r == NULL;
	return strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
	       strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0;
}

/* Maps a failed result to an lr code and writes "<what>: <text>". */
static int lr_pg_fail(lr_store *st, PGresult *r, lr_msg *msg,
		      const char *what)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *text = r ? PQresultErrorMessage(r) : PQerrorMessage(st->pg);
	char clean[256];
	size_t n;

	snprintf(clean, sizeof(clean), "%s", text ? text : "");
	n = strlen(clean);
	while (n > 0 && (clean[n - 1] == '\n' || clean[n - 1] == ' '))
		clean[--n] = '\0';
	if (lr_pg_conn_lost(st, r))
		return lr_fail(msg, LR_STORE_EUNAVAIL,
			       "%s: database unreachable: %s", what, clean);
	if (state != NULL && (strcmp(state, "23514") == 0 ||
			      strncmp(state, "22", 2) == 0))
		return lr_fail(msg, LR_EINVAL,
			       "%s: a JSON field is not a valid JSON object",
			       what);
	if (state != NULL && strcmp(state, "53100") == 0)
		return lr_fail(msg, -ENOSPC, "%s: %s", what, clean);
	return lr_fail(msg, LR_STORE_EDB, "%s: %s", what, clean);
}

/* Resets a lost connection and re-takes this store's epoch lock. */
static int lr_pg_reset(lr_store *st, int force, lr_msg *msg)
{
	char sql[96];
	PGresult *r;

	if (!force && PQstatus(st->pg) == CONNECTION_OK)
		return 0;
	PQreset(st->pg);
	if (PQstatus(st->pg) != CONNECTION_OK)
		return lr_fail(msg, LR_STORE_EUNAVAIL,
			       "database unreachable: %s",
			       PQerrorMessage(st->pg));
	st->in_write = 0;
	st->listening = 0;
	if (st->pg_epoch > 0) {
		snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%d, %d)",
			 LR_PG_EPOCH, (int)st->pg_epoch);
		r = PQexec(st->pg, sql);
		PQclear(r);
	}
	return 0;
}

static int lr_pg_ensure(lr_store *st, lr_msg *msg)
{
	return lr_pg_reset(st, 0, msg);
}

/*
 * Runs `sql` with n text parameters (NULL pointers are SQL NULL). Returns
 * the result (caller PQclear()s) or NULL with *err set. A lost connection
 * is reset first; a statement is never retried, since it may have run.
 */
static PGresult *lr_pg_q(lr_store *st, const char *sql, int n,
			 const char *const *v, lr_msg *msg, const char *what,
			 int *err)
{
	PGresult *r;
	ExecStatusType s;

	*err = lr_pg_ensure(st, msg);
	if (*err)
		return NULL;
	r = PQexecParams(st->pg, sql, n, NULL, v, NULL, NULL, 0);
	s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK && !st->in_write &&
	    lr_pg_conn_lost(st, r) &&
	    (strncmp(sql, "BEGIN", 5) == 0 || strncmp(sql, "SELECT", 6) == 0)) {
		/* The server restarted since this connection's last call:
		 * a BEGIN or a read outside a transaction changed nothing,
		 * so reconnect and run it once more. */
		PQclear(r);
		*err = lr_pg_reset(st, 1, msg);
		if (*err)
			return NULL;
		r = PQexecParams(st->pg, sql, n, NULL, v, NULL, NULL, 0);
		s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	}
	if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) {
		*err = 0;
		return r;
	}
	*err = lr_pg_fail(st, r, msg, what);
	PQclear(r);
	return NULL;
}

/* Like lr_pg_q for a statement whose result is not needed. */
static int lr_pg_x(lr_store *st, const char *sql, int n,
		   const char *const *v, lr_msg *msg, const char *what)
{
	int err;
	PGresult *r = lr_pg_q(st, sql, n, v, msg, what, &err);

	PQclear(r);
	return err;
}

static int64_t lr_pg_i64(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return 0;
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void lr_pg_copy(const PGresult *r, int row, int col, char *buf,
		       size_t len)
{
	buf[0] = '\0';
	if (!PQgetisnull(r, row, col))
		snprintf(buf, len, "%s", PQgetvalue(r, row, col));
}

static char *lr_pg_dup(const PGresult *r, int row, int col, int *oom)
{
	char *s;

	if (PQgetisnull(r, row, col))
		return NULL;
	s = strdup(PQgetvalue(r, row, col));
	if (s == NULL)
		*oom = 1;
	return s;
}

static int64_t lr_pg_changes(const PGresult *r)
{
	const char *t = PQcmdTuples((PGresult *)r);

	return t && *t ? strtoll(t, NULL, 10) : 0;
}

/* Decimal text of v in buf (24 bytes). */
static const char *lr_pg_num(char *buf, int64_t v)
{
	snprintf(buf, 24, "%" PRId64, v);
	return buf;
}

static const char *lr_pg_nz(const char *s)
{
	return s == NULL || s[0] == '\0' ? NULL : s;
}

static int lr_pg_job_from_row(const PGresult *r, int row, lr_store_job *job)
{
	int oom = 0;

	memset(job, 0, sizeof(*job));
	lr_pg_copy(r, row, 0, job->id, sizeof(job->id));
	lr_pg_copy(r, row, 1, job->tenant, sizeof(job->tenant));
	if (lr_job_state_parse(PQgetvalue(r, row, 2), &job->state) != 0)
		return LR_STORE_EDB;
	job->spec_json = lr_pg_dup(r, row, 3, &oom);
	lr_pg_copy(r, row, 4, job->model_sha, sizeof(job->model_sha));
	lr_pg_copy(r, row, 5, job->calib_sha, sizeof(job->calib_sha));
	job->created_ms = lr_pg_i64(r, row, 6);
	job->started_ms = lr_pg_i64(r, row, 7);
	job->finished_ms = lr_pg_i64(r, row, 8);
	job->updated_ms = lr_pg_i64(r, row, 9);
	job->attempts = (int)lr_pg_i64(r, row, 10);
	job->max_attempts = (int)lr_pg_i64(r, row, 11);
	lr_pg_copy(r, row, 12, job->lease_owner, sizeof(job->lease_owner));
	job->lease_epoch = lr_pg_i64(r, row, 13);
	job->lease_expires_ms = lr_pg_i64(r, row, 14);
	job->fence = lr_pg_i64(r, row, 15);
	job->progress_json = lr_pg_dup(r, row, 16, &oom);
	lr_pg_copy(r, row, 17, job->result_sha, sizeof(job->result_sha));
	lr_pg_copy(r, row, 18, job->report_sha, sizeof(job->report_sha));
	job->error_json = lr_pg_dup(r, row, 19, &oom);
	job->cancel_requested = (int)lr_pg_i64(r, row, 20);
	if (oom) {
		lr_store_job_fini(job);
		return LR_ENOMEM;
	}
	return 0;
}

/* ---- transactions ---------------------------------------------------- */

int lr__pg_begin(lr_store *st, lr_msg *msg)
{
	int err = lr_pg_x(st, "BEGIN", 0, NULL, msg, "begin");

	if (err == 0)
		st->in_write = 1;
	return err;
}

int lr__pg_commit(lr_store *st, lr_msg *msg)
{
	int err = lr_pg_x(st, "COMMIT", 0, NULL, msg, "commit");

	if (err)
		(void)lr_pg_x(st, "ROLLBACK", 0, NULL, NULL, "rollback");
	st->in_write = 0;
	return err;
}

void lr__pg_rollback(lr_store *st)
{
	if (!st->in_write)
		return;
	if (PQstatus(st->pg) == CONNECTION_OK)
		(void)lr_pg_x(st, "ROLLBACK", 0, NULL, NULL, "rollback");
	st->in_write = 0;
}

/* Inside a transaction: the advisory lock of one digest. */
int lr__pg_blob_lock(lr_store *st, const char *sha, lr_msg *msg)
{
	char key[24], ns[24];
	const char *v[2];
	unsigned long k = strtoul((char[9]){ sha[0], sha[1], sha[2], sha[3],
					    sha[4], sha[5], sha[6], sha[7], 0 },
				  NULL, 16) & 0x7fffffffUL;

	v[0] = lr_pg_num(ns, LR_PG_BLOB);
	v[1] = lr_pg_num(key, (int64_t)k);
	return lr_pg_x(st, "SELECT pg_advisory_xact_lock($1::int, $2::int)",
		       2, v, msg, "blob lock");
}

/* ---- opening ---------------------------------------------------------- */

static int lr_pg_migrate(lr_store *st, lr_msg *msg)
{
	PGresult *r = NULL;
	int64_t version;
	char buf[24];
	const char *v[1];
	int err;

	err = lr__pg_begin(st, msg);
	if (err)
		return err;
	err = lr_pg_x(st, "SELECT pg_advisory_xact_lock(19540, 2)", 0, NULL,
		      msg, "migration lock");
	if (err)
		goto out;
	err = lr_pg_x(st,
		      "CREATE TABLE IF NOT EXISTS lr_schema (version INTEGER NOT NULL)",
		      0, NULL, msg, "schema table");
	if (err)
		goto out;
	r = lr_pg_q(st, "SELECT coalesce(max(version), 0) FROM lr_schema", 0,
		    NULL, msg, "schema version", &err);
	if (err)
		goto out;
	version = lr_pg_i64(r, 0, 0);
	PQclear(r);
	r = NULL;
	if (version > LR_STORE_SCHEMA_VERSION || version < 0) {
		err = lr_fail(msg, LR_STORE_ESCHEMA,
			      "database schema version %lld is newer than this "
			      "build understands (%d); upgrade lowrankd",
			      (long long)version, LR_STORE_SCHEMA_VERSION);
		goto out;
	}
	for (; version < LR_STORE_SCHEMA_VERSION; version++) {
		r = PQexec(st->pg, lr_pg_migrations[version]);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			err = lr_pg_fail(st, r, msg, "schema migration");
			goto out;
		}
		PQclear(r);
		r = NULL;
		v[0] = lr_pg_num(buf, version + 1);
		err = lr_pg_x(st, "INSERT INTO lr_schema (version) VALUES ($1)",
			      1, v, msg, "schema version");
		if (err)
			goto out;
	}
	return lr__pg_commit(st, msg);
out:
	PQclear(r);
	lr__pg_rollback(st);
	return err;
}

/* Server notices (e.g. "relation already exists, skipping") are not
 * errors and must not reach stderr, which is the daemon's log. */
static void lr_pg_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

int lr__pg_open(lr_store *st, const char *uri, lr_msg *msg)
{
	char red[256];
	PGresult *r;

	st->pg = PQconnectdb(uri);
	if (st->pg == NULL)
		return lr_fail(msg, LR_ENOMEM, "out of memory");
	if (PQstatus(st->pg) != CONNECTION_OK) {
		lr_store_redact_uri(uri, red, sizeof(red));
		return lr_fail(msg, LR_STORE_EUNAVAIL,
			       "database %s unreachable: %s", red,
			       PQerrorMessage(st->pg));
	}
	PQsetNoticeProcessor(st->pg, lr_pg_notice, NULL);
	r = PQexec(st->pg, "SET client_min_messages = warning");
	PQclear(r);
	return lr_pg_migrate(st, msg);
}

void lr__pg_close(lr_store *st)
{
	if (st->pg != NULL)
		PQfinish(st->pg);
	st->pg = NULL;
}

int lr__pg_ping(lr_store *st, lr_msg *msg)
{
	return lr_pg_x(st, "SELECT 1", 0, NULL, msg, "ping");
}

int lr__pg_integrity_check(lr_store *st, lr_msg *msg)
{
	int err;
	PGresult *r = lr_pg_q(
		st,
		"SELECT (SELECT count(*) FROM jobs WHERE (state = 'running') <> "
		"(lease_owner IS NOT NULL)) + (SELECT count(*) FROM jobs j "
		"WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha = j.model_sha))",
		0, NULL, msg, "integrity check", &err);

	if (err)
		return err;
	if (lr_pg_i64(r, 0, 0) != 0)
		err = lr_fail(msg, LR_STORE_EDB, "integrity_check: %lld bad rows",
			      (long long)lr_pg_i64(r, 0, 0));
	PQclear(r);
	return err;
}

int lr__pg_epoch_begin(lr_store *st, int64_t *epoch, lr_msg *msg)
{
	char buf[24], ns[24];
	const char *v[2];
	PGresult *r;
	int err;

	r = lr_pg_q(st,
		    "UPDATE meta SET value = value + 1 WHERE key = 'epoch' "
		    "RETURNING value",
		    0, NULL, msg, "epoch", &err);
	if (err)
		return err;
	*epoch = lr_pg_i64(r, 0, 0);
	PQclear(r);
	v[0] = lr_pg_num(ns, LR_PG_EPOCH);
	if (st->pg_epoch > 0) {
		v[1] = lr_pg_num(buf, st->pg_epoch);
		(void)lr_pg_x(st, "SELECT pg_advisory_unlock($1::int, $2::int)",
			      2, v, NULL, "epoch unlock");
	}
	v[1] = lr_pg_num(buf, *epoch);
	err = lr_pg_x(st, "SELECT pg_advisory_lock($1::int, $2::int)", 2, v,
		      msg, "epoch lock");
	if (err == 0)
		st->pg_epoch = *epoch;
	return err;
}

/* ---- jobs ------------------------------------------------------------- */

#define LR_PG_JOB_COLS LR__JOB_COLS

static int lr_pg_owner_check(lr_store *st, const char *tenant,
			     const char *sha, const char *what, lr_msg *msg)
{
	const char *v[2] = { tenant, sha };
	PGresult *r;
	int err;

	if (!lr_store_sha_valid(sha))
		return lr_fail(msg, LR_STORE_ENOTFOUND,
			       "%s blob id is not a SHA-256 hex digest", what);
	r = lr_pg_q(st, "SELECT 1 FROM blob_owners WHERE tenant = $1 AND sha = $2",
		    2, v, msg, "blob owner lookup", &err);
	if (err)
		return err;
	if (PQntuples(r) == 0)
		err = lr_fail(msg, LR_STORE_ENOTFOUND, "%s blob %s not found",
			      what, sha);
	PQclear(r);
	return err;
}

static int lr_pg_active(lr_store *st, const char *tenant, int64_t *n,
			lr_msg *msg)
{
	const char *v[1] = { tenant };
	PGresult *r;
	int err;

	r = lr_pg_q(st,
		    "SELECT count(*) FROM jobs WHERE tenant = $1 AND "
		    "state IN ('queued', 'running')",
		    1, v, msg, "count active jobs", &err);
	if (err)
		return err;
	*n = lr_pg_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

int lr__pg_tenant_active(lr_store *st, const char *tenant, int64_t *n,
			 lr_msg *msg)
{
	return lr_pg_active(st, tenant, n, msg);
}

/* Inside a transaction: marks the key done (lr__idem_mark_done). */
int lr__pg_idem_mark_done(lr_store *st, const char *tenant, const char *key,
			  const char *fingerprint, int status,
			  const char *resource, const char *location,
			  const char *body, lr_msg *msg)
{
	char sbuf[24], nbuf[24];
	const char *v[8];
	PGresult *r;
	int err;

	v[0] = tenant;
	v[1] = key;
	v[2] = fingerprint;
	v[3] = lr_pg_num(sbuf, status);
	v[4] = lr_pg_nz(resource);
	v[5] = lr_pg_nz(location);
	v[6] = body;
	v[7] = lr_pg_num(nbuf, lr_store_now_ms());
	r = lr_pg_q(st,
		    "INSERT INTO idempotency AS i (tenant, key, state, fingerprint, "
		    "status, resource, location, body, created_ms) "
		    "VALUES ($1, $2, 'done', $3, $4, $5, $6, $7, $8) "
		    "ON CONFLICT (tenant, key) DO UPDATE SET "
		    "fingerprint = CASE WHEN i.state = 'pending' THEN $3 ELSE i.fingerprint END, "
		    "status = CASE WHEN i.state = 'pending' THEN $4::int ELSE i.status END, "
		    "resource = CASE WHEN i.state = 'pending' THEN $5 ELSE i.resource END, "
		    "location = CASE WHEN i.state = 'pending' THEN $6 ELSE i.location END, "
		    "body = coalesce($7, i.body), state = 'done' "
		    "WHERE i.state = 'pending' OR i.fingerprint = $3",
		    8, v, msg, "record idempotency key", &err);
	if (err)
		return err;
	if (lr_pg_changes(r) == 0)
		err = lr_fail(msg, LR_STORE_ENOTFOUND,
			      "idempotency key is not held by this request");
	PQclear(r);
	return err;
}

int lr__pg_job_create(lr_store *st, const lr_store_job_new *nj,
		      const char *id, int max_attempts, lr_msg *msg)
{
	char now[24], ma[24], ns[24];
	const char *v[7];
	int64_t active;
	int err;

	err = lr__pg_begin(st, msg);
	if (err)
		return err;
	if (nj->queued_max > 0) {
		v[0] = lr_pg_num(ns, LR_PG_TENANT);
		v[1] = nj->tenant;
		err = lr_pg_x(st,
			      "SELECT pg_advisory_xact_lock($1::int, hashtext($2))",
			      2, v, msg, "tenant lock");
		if (err)
			goto out;
		err = lr_pg_active(st, nj->tenant, &active, msg);
		if (err)
			goto out;
		if (active >= nj->queued_max) {
			err = lr_fail(msg, LR_STORE_EQUEUEFULL,
				      "tenant has %lld queued or running jobs "
				      "(limit %lld)",
				      (long long)active,
				      (long long)nj->queued_max);
			goto out;
		}
	}
	err = lr_pg_owner_check(st, nj->tenant, nj->model_sha, "model", msg);
	if (err)
		goto out;
	if (nj->calib_sha != NULL) {
		err = lr_pg_owner_check(st, nj->tenant, nj->calib_sha,
					"calibration", msg);
		if (err)
			goto out;
	}
	v[0] = id;
	v[1] = nj->tenant;
	v[2] = nj->spec_json;
	v[3] = nj->model_sha;
	v[4] = lr_pg_nz(nj->calib_sha);
	v[5] = lr_pg_num(now, lr_store_now_ms());
	v[6] = lr_pg_num(ma, max_attempts);
	err = lr_pg_x(st,
		      "INSERT INTO jobs (id, tenant, state, spec_json, "
		      "model_sha, calib_sha, created_ms, updated_ms, "
		      "max_attempts) VALUES ($1, $2, 'queued', $3, $4, $5, "
		      "$6, $6, $7)",
		      7, v, msg, "job spec");
	if (err)
		goto out;
	if (nj->idem_key != NULL) {
		char loc[LR_STORE_ID_LEN + 16];

		snprintf(loc, sizeof(loc), "/v1/jobs/%s", id);
		err = lr__pg_idem_mark_done(st, nj->tenant, nj->idem_key,
					    nj->idem_fingerprint, 202, id, loc,
					    NULL, msg);
		if (err)
			goto out;
	}
	err = lr_pg_x(st, "NOTIFY lowrankd_jobs", 0, NULL, msg, "notify");
	if (err)
		goto out;
	return lr__pg_commit(st, msg);
out:
	lr__pg_rollback(st);
	return err;
}

int lr__pg_job_get(lr_store *st, const char *tenant, const char *id,
		   lr_store_job *job, lr_msg *msg)
{
	const char *v[2] = { id, tenant };
	PGresult *r;
	int err;

	r = lr_pg_q(st,
		    "SELECT " LR_PG_JOB_COLS " FROM jobs WHERE id = $1 AND tenant = $2",
		    2, v, msg, "read job", &err);
	if (err)
		return err;
	if (PQntuples(r) == 0)
		err = lr_fail(msg, LR_STORE_ENOTFOUND, "job %s not found", id);
	else
		err = lr_pg_job_from_row(r, 0, job);
	PQclear(r);
	return err;
}

int lr__pg_jobs_list(lr_store *st, const char *tenant, int state,
		     size_t limit, int has_cursor, int64_t cursor_created,
		     const char *cursor_id, lr_store_job_page *page,
		     lr_msg *msg)
{
	static const char *const sql =
		"SELECT " LR__JOB_COLS " FROM jobs WHERE tenant = $1 "
		"AND ($2::text IS NULL OR state = $2) "
		"AND ($3::bigint IS NULL OR (created_ms, id) < ($3, $4::text)) "
		"ORDER BY created_ms DESC, id DESC LIMIT $5";
	char cbuf[24], lbuf[24];
	const char *v[5];
	PGresult *r;
	int err, i, n;

	v[0] = tenant;
	v[1] = state >= 0 ? lr_job_state_name((enum lr_job_state)state) : NULL;
	v[2] = has_cursor ? lr_pg_num(cbuf, cursor_created) : NULL;
	v[3] = has_cursor ? cursor_id : NULL;
	v[4] = lr_pg_num(lbuf, (int64_t)limit + 1);
	r = lr_pg_q(st, sql, 5, v, msg, "list jobs",
		    &err);
	if (err)
		return err;
	n = PQntuples(r);
	for (i = 0; i < n && (size_t)i <= limit; i++) {
		err = lr_pg_job_from_row(r, i, &page->jobs[page->count]);
		if (err) {
			lr_fail(msg, err, "out of memory");
			break;
		}
		page->count++;
	}
	PQclear(r);
	return err;
}

int lr__pg_job_claim(lr_store *st, const char *owner, int64_t epoch,
		     int64_t lease_ms, lr_store_job *job, lr_msg *msg)
{
	char e[24], now[24], l[24];
	const char *v[4];
	PGresult *r;
	int err;

	v[0] = owner;
	v[1] = lr_pg_num(e, epoch);
	v[2] = lr_pg_num(now, lr_store_now_ms());
	v[3] = lr_pg_num(l, lease_ms);
	/* A transaction only so that a crash test can stop between the
	 * UPDATE and the COMMIT (LR__FAULT below); the UPDATE is atomic. */
	err = lr__pg_begin(st, msg);
	if (err)
		return err;
	r = lr_pg_q(st,
		    "UPDATE jobs SET state = 'running', lease_owner = $1, "
		    "lease_epoch = $2, lease_expires_ms = $3::bigint + $4::bigint, "
		    "fence = fence + 1, attempts = attempts + 1, "
		    "started_ms = $3, updated_ms = $3 "
		    "WHERE id = (SELECT id FROM jobs WHERE state = 'queued' "
		    "ORDER BY created_ms, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
		    "RETURNING " LR__JOB_COLS,
		    4, v, msg, "claim", &err);
	if (err)
		goto out;
	if (PQntuples(r) == 1) {
		err = lr_pg_job_from_row(r, 0, job);
		if (err) {
			lr_fail(msg, err, "out of memory");
			goto out;
		}
	}
	PQclear(r);
	r = NULL;
	LR__FAULT("claim-updated");
	err = lr__pg_commit(st, msg);
	if (err)
		lr_store_job_fini(job);
	return err;
out:
	PQclear(r);
	lr__pg_rollback(st);
	return err;
}

/* Inside a transaction: outbox rows of job id, or (id NULL) of the jobs
 * whose finished_ms is finished_ms. */
int lr__pg_outbox_add(lr_store *st, const char *id, int64_t finished_ms,
		      int64_t now, lr_msg *msg)
{
	char f[24], n[24];
	const char *v[3] = { id, lr_pg_num(f, finished_ms), lr_pg_num(n, now) };

	return lr_pg_x(
		st,
		"INSERT INTO webhook_outbox (id, job_id, tenant, "
		"event, url, event_ms, next_ms, created_ms, updated_ms) "
		"SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), "
		"id, tenant, 'job.' || state, "
		"spec_json::jsonb ->> 'notify_url', finished_ms, $3, $3, $3 "
		"FROM jobs WHERE (id = $1 OR ($1::text IS NULL AND finished_ms = $2)) "
		"AND state IN ('succeeded', 'failed', 'canceled') "
		"AND jsonb_typeof(spec_json::jsonb -> 'notify_url') = 'string' "
		"ON CONFLICT DO NOTHING",
		3, v, msg, "webhook outbox");
}

int lr__pg_fenced_write(lr_store *st, int kind, const char *id,
			int64_t fence, int64_t num, const char *text,
			int *cancel_requested, lr_msg *msg)
{
	static const char *const sql[3] = {
		"UPDATE jobs SET lease_expires_ms = $3::bigint + $4::bigint "
		"WHERE id = $1 AND fence = $2 AND state = 'running' "
		"RETURNING cancel_requested",
		"UPDATE jobs SET progress_json = $4, updated_ms = $3 "
		"WHERE id = $1 AND fence = $2 AND state = 'running' "
		"RETURNING cancel_requested",
		"UPDATE jobs SET "
		"state = CASE WHEN cancel_requested = 1 THEN 'canceled' "
		"  ELSE 'queued' END, "
		"attempts = CASE WHEN cancel_requested = 1 THEN attempts "
		"  ELSE greatest(attempts - 1, 0) END, "
		"finished_ms = CASE WHEN cancel_requested = 1 THEN $3::bigint END, "
		"error_json = CASE WHEN cancel_requested = 1 THEN $4 END, "
		"lease_owner = NULL, lease_epoch = NULL, "
		"lease_expires_ms = NULL, updated_ms = $3 "
		"WHERE id = $1 AND fence = $2 AND state = 'running' "
		"RETURNING cancel_requested",
	};
	static const char *const what[3] = { "heartbeat", "progress",
					     "requeue" };
	char f[24], now[24], nb[24];
	int64_t t = lr_store_now_ms();
	const char *v[4];
	PGresult *r = NULL;
	int err, cancel = 0;

	v[0] = id;
	v[1] = lr_pg_num(f, fence);
	v[2] = lr_pg_num(now, t);
	v[3] = kind == 0 ? lr_pg_num(nb, num) : text;
	err = lr__pg_begin(st, msg);
	if (err)
		return err;
	r = lr_pg_q(st, sql[kind], 4, v, msg, what[kind], &err);
	if (err)
		goto out;
	if (PQntuples(r) == 0) {
		err = lr_fail(msg, LR_STORE_ESTALE,
			      "%s: job %s is no longer running under fence %lld",
			      what[kind], id, (long long)fence);
		goto out;
	}
	cancel = (int)lr_pg_i64(r, 0, 0);
	if (kind == 2 && !cancel)
		err = lr_pg_x(st, "NOTIFY lowrankd_jobs", 0, NULL, msg, "notify");
	if (err)
		goto out;
	if (kind == 2 && cancel) {
		err = lr__pg_outbox_add(st, id, 0, t, msg);
		if (err)
			goto out;
	}
	PQclear(r);
	r = NULL;
	err = lr__pg_commit(st, msg);
	if (err == 0 && cancel_requested != NULL)
		*cancel_requested = cancel;
	return err;
out:
	PQclear(r);
	lr__pg_rollback(st);
	return err;
}

int lr__pg_cancel_check(lr_store *st, const char *id, int64_t fence,
			int *flag, lr_msg *msg)
{
	char f[24];
	const char *v[2] = { id, lr_pg_num(f, fence) };
	PGresult *r;
	int err;

	r = lr_pg_q(st,
		    "SELECT cancel_requested FROM jobs WHERE id = $1 "
		    "AND fence = $2 AND state = 'running'",
		    2, v, msg, "cancel check", &err);
	if (err)
		return err;
	if (PQntuples(r) == 0)
		err = lr_fail(msg, LR_STORE_ESTALE,
			      "job %s is no longer running under fence %lld",
			      id, (long long)fence);
	else
		*flag = (int)lr_pg_i64(r, 0, 0);
	PQclear(r);
	return err;
}

static int lr_pg_blob_exists(lr_store *st, const char *sha,
			     const char *what, lr_msg *msg)
{
	const char *v[1] = { sha };
	PGresult *r;
	int err;

	if (!lr_store_sha_valid(sha))
		return lr_fail(msg, LR_EINVAL, "%s: not a SHA-256 hex digest",
			       what);
	r = lr_pg_q(st, "SELECT 1 FROM blobs WHERE sha = $1", 1, v, msg,
		    "blob lookup", &err);
	if (err)
		return err;
	if (PQntuples(r) == 0)
		err = lr_fail(msg, LR_STORE_ENOTFOUND, "%s blob %s not stored",
			      what, sha);
	PQclear(r);
	return err;
}

int lr__pg_job_finish(lr_store *st, const char *id, int64_t fence,
		      const lr_store_job_result *res, const char *error_json,
		      lr_msg *msg)
{
	char f[24], now[24];
	int64_t t;
	const char *v[7];
	PGresult *r = NULL;
	int err;

	err = lr__pg_begin(st, msg);
	if (err)
		return err;
	if (res->result_sha != NULL) {
		err = lr_pg_blob_exists(st, res->result_sha, "result", msg);
		if (err)
			goto out;
	}
	if (res->report_sha != NULL) {
		err = lr_pg_blob_exists(st, res->report_sha, "report", msg);
		if (err)
			goto out;
	}
	t = lr_store_now_ms();
	v[0] = id;
	v[1] = lr_pg_num(f, fence);
	v[2] = lr_job_state_name(res->state);
	v[3] = lr_pg_num(now, t);
	v[4] = lr_pg_nz(res->result_sha);
	v[5] = lr_pg_nz(res->report_sha);
	v[6] = error_json;
	r = lr_pg_q(st,
		    "UPDATE jobs SET state = $3, finished_ms = $4, "
		    "updated_ms = $4, result_sha = $5, report_sha = $6, "
		    "error_json = $7, lease_owner = NULL, "
		    "lease_epoch = NULL, lease_expires_ms = NULL "
		    "WHERE id = $1 AND fence = $2 AND state = 'running'",
		    7, v, msg, "finish", &err);
	if (err)
		goto out;
	if (lr_pg_changes(r) == 0) {
		err = lr_fail(msg, LR_STORE_ESTALE,
			      "finish: job %s is no longer running under "
			      "fence %lld",
			      id, (long long)fence);
		goto out;
	}
	PQclear(r);
	r = NULL;
	err = lr__pg_outbox_add(st, id, 0, t, msg);
	if (err)
		goto out;
	LR__FAULT("finish-updated");
	return lr__pg_commit(st, msg);
out:
	PQclear(r);
	lr__pg_rollback(st);
	return err;
}

static int lr_pg_state_of(lr_store *st, const char *tenant, const char *id,
			  int lock, enum lr_job_state *state, lr_msg *msg)
{
	const char *v[2] = { id, tenant };
	PGresult *r;
	int err;

	r = lr_pg_q(st,
		    lock ? "SELECT state FROM jobs WHERE id = $1 AND tenant = $2 "
			   "FOR UPDATE"
			 : "SELECT state FROM jobs WHERE id = $1 AND tenant = $2",
		    2, v, msg, "read job state", &err);
	if (err)
		return err;
	if (PQntuples(r) == 0)
		err = lr_fail(msg, LR_STORE_ENOTFOUND, "job %s not found", id);
	else if (lr_job_state_parse(PQgetvalue(r, 0, 0), state) != 0)
		err = lr_fail(msg, LR_STORE_EDB, "job %s: bad state", id);
	PQclear(r);
	return err;
}

int lr__pg_job_cancel(lr_store *st, const char *tenant, const char *id,
		      enum lr_job_state *state_out, lr_msg *msg)
{
	enum lr_job_state state;
	char now[24];
	int64_t t;
	const char *v[3];
	int err;

	err = lr__pg_begin(st, msg);
	if (err)
		return err;
	err = lr_pg_state_of(st, tenant, id, 1, &state, msg);
	if (err)
		goto out;
	t = lr_store_now_ms();
	v[0] = id;
	v[1] = lr_pg_num(now, t);
	v[2] = LR_PROBLEM_CANCELED;
	if (state == LR_JOB_STATE_QUEUED) {
		err = lr_pg_x(st,
			      "UPDATE jobs SET state = 'canceled', "
			      "cancel_requested = 1, finished_ms = $2, "
			      "updated_ms = $2, error_json = $3 "
			      "WHERE id = $1 AND state = 'queued'",
			      3, v, msg, "cancel");
		if (err)
			goto out;
		state = LR_JOB_STATE_CANCELED;
		err = lr__pg_outbox_add(st, id, 0, t, msg);
	} else if (state == LR_JOB_STATE_RUNNING) {
		err = lr_pg_x(st,
			      "UPDATE jobs SET cancel_requested = 1, "
			      "updated_ms = $2 WHERE id = $1 AND "
			      "state = 'running' AND cancel_requested = 0",
			      2, v, msg, "cancel");
	}
	if (err)
		goto out;
	err = lr__pg_commit(st, msg);
	if (err == 0 && state_out != NULL)
		*state_out = state;
	return err;
out:
	lr__pg_rollback(st);
	return err;
}

int lr__pg_job_delete(lr_store *st, const char *tenant, const char *id,
		      lr_msg *msg)
{
	char shas[4][LR_STORE_SHA_LEN + 1];
	char gone[4][LR_STORE_SHA_LEN + 1];
	char g[24];
	enum lr_job_state state;
	const char *v[2] = { id, tenant };
	PGresult *r = NULL;
	size_t i, n_gone = 0;
	int err;

	err = lr__pg_begin(st, msg);
	if (err)
		return err;
	r = lr_pg_q(st,
		    "DELETE FROM jobs WHERE id = $1 AND tenant = $2 AND "
		    "state IN ('succeeded', 'failed', 'canceled') "
		    "RETURNING model_sha, calib_sha, result_sha, report_sha",
		    2, v, msg, "delete job", &err);
	if (err)
		goto out;
	if (PQntuples(r) == 0) {
		err = lr_pg_state_of(st, tenant, id, 0, &state, msg);
		if (err == 0)
			err = lr_fail(msg, LR_STORE_ECONFLICT,
				      "job %s is %s; cancel it before deleting",
				      id, lr_job_state_name(state));
		goto out;
	}
	for (i = 0; i < 4; i++)
		lr_pg_copy(r, 0, (int)i, shas[i], sizeof(shas[i]));
	PQclear(r);
	r = NULL;
	for (i = 0; i < 4; i++) {
		const char *w[2];

		if (shas[i][0] == '\0')
			continue;
		err = lr__pg_blob_lock(st, shas[i], msg);
		if (err)
			goto out;
		w[0] = shas[i];
		w[1] = lr_pg_num(g, lr_store_now_ms() - LR_STORE_BLOB_GRACE_MS);
		r = lr_pg_q(st,
			    "DELETE FROM blobs WHERE sha = $1 AND touched_ms < $2 "
			    "AND NOT EXISTS (SELECT 1 FROM blob_owners o "
			    "  WHERE o.sha = $1) "
			    "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE "
			    "  j.model_sha = $1 OR j.calib_sha = $1 OR "
			    "  j.result_sha = $1 OR j.report_sha = $1)",
			    2, w, msg, "delete blob row", &err);
		if (err)
			goto out;
		if (lr_pg_changes(r) > 0)
			memcpy(gone[n_gone++], shas[i], sizeof(shas[i]));
		PQclear(r);
		r = NULL;
	}
	err = lr__pg_commit(st, msg);
	if (err)
		return err;
	(void)lr__blob_unlink_orphans(st, gone, n_gone, NULL, NULL);
	return 0;
out:
	PQclear(r);
	lr__pg_rollback(st);
	return err;
}

int lr__pg_jobs_recover(lr_store *st, int64_t epoch,
			lr_store_recover_report *rep, lr_msg *msg)
{
	/* Dead: lease expired, or its epoch's lock is held by no session
	 * (the daemon that claimed it is gone). Cancel wins over crash,
	 * crash over requeue. */
#define LR_PG_DEAD                                                        \
	"state = 'running' AND (lease_expires_ms <= $2 OR NOT EXISTS ("    \
	"SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND "       \
	"l.granted AND l.classid = 19538 AND l.objid::text::bigint = lease_epoch "        \
	"AND l.objsubid = 2))"
	static const char *const sql[3] = {
		"UPDATE jobs SET state = 'canceled', finished_ms = $2, "
		"updated_ms = $2, error_json = $3, lease_owner = NULL, "
		"lease_epoch = NULL, lease_expires_ms = NULL "
		"WHERE " LR_PG_DEAD " AND cancel_requested = 1 AND $1::bigint >= 0",
		"UPDATE jobs SET state = 'failed', finished_ms = $2, "
		"updated_ms = $2, error_json = $4, lease_owner = NULL, "
		"lease_epoch = NULL, lease_expires_ms = NULL "
		"WHERE " LR_PG_DEAD " AND attempts >= max_attempts "
		"AND $1::bigint >= 0 AND $3::text IS NOT NULL",
		"UPDATE jobs SET state = 'queued', updated_ms = $2, "
		"lease_owner = NULL, lease_epoch = NULL, "
		"lease_expires_ms = NULL WHERE " LR_PG_DEAD
		" AND $1::bigint >= 0 AND $3::text IS NOT NULL "
		"AND $4::text IS NOT NULL",
	};
#undef LR_PG_DEAD
	int64_t counts[3] = { 0, 0, 0 }, t = lr_store_now_ms();
	char e[24], now[24];
	const char *v[4];
	PGresult *r;
	int err, i, any = 0;

	v[0] = lr_pg_num(e, epoch);
	v[1] = lr_pg_num(now, t);
	v[2] = LR_PROBLEM_CANCELED;
	v[3] = LR_PROBLEM_CRASHED;
	err = lr__pg_begin(st, msg);
	if (err)
		return err;
	for (i = 0; i < 3; i++) {
		r = lr_pg_q(st, sql[i], i == 0 ? 3 : 4, v, msg, "recover jobs",
			    &err);
		if (err)
			goto out;
		counts[i] = lr_pg_changes(r);
		PQclear(r);
	}
	if (counts[0] + counts[1] > 0) {
		err = lr__pg_outbox_add(st, NULL, t, t, msg);
		if (err)
			goto out;
	}
	any = counts[2] > 0;
	if (any)
		(void)lr_pg_x(st, "NOTIFY lowrankd_jobs", 0, NULL, NULL, "notify");
	err = lr__pg_commit(st, msg);
	if (err == 0 && rep != NULL) {
		rep->canceled = counts[0];
		rep->failed = counts[1];
		rep->requeued = counts[2];
	}
	return err;
out:
	lr__pg_rollback(st);
	return err;
}

int lr__pg_jobs_count(lr_store *st, int64_t counts[LR_JOB_STATE_COUNT],
		      lr_msg *msg)
{
	enum lr_job_state s;
	PGresult *r;
	int err, i;

	r = lr_pg_q(st, "SELECT state, count(*) FROM jobs GROUP BY state", 0,
		    NULL, msg, "count jobs", &err);
	if (err)
		return err;
	for (i = 0; i < PQntuples(r); i++)
		if (lr_job_state_parse(PQgetvalue(r, i, 0), &s) == 0)
			counts[s] = lr_pg_i64(r, i, 1);
	PQclear(r);
	return 0;
}

/* ---- blobs ------------------------------------------------------------ */

int lr__pg_blob_record(lr_store *st, const char *tenant, const char *sha,
		       int64_t size, int64_t now, lr_msg *msg)
{
	char sz[24], n[24];
	const char *v[3] = { sha, lr_pg_num(sz, size), lr_pg_num(n, now) };
	const char *w[3] = { tenant, sha, n };
	int err;

	err = lr_pg_x(st,
		      "INSERT INTO blobs (sha, size_bytes, created_ms, "
		      "touched_ms) VALUES ($1, $2, $3, $3) "
		      "ON CONFLICT (sha) DO UPDATE SET touched_ms = $3",
		      3, v, msg, "record blob");
	if (err || tenant == NULL)
		return err;
	return lr_pg_x(st,
		       "INSERT INTO blob_owners (tenant, sha, created_ms) "
		       "VALUES ($1, $2, $3) ON CONFLICT (tenant, sha) "
		       "DO UPDATE SET created_ms = $3",
		       3, w, msg, "record blob owner");
}

int lr__pg_blob_created(lr_store *st, const char *sha, int64_t *created)
{
	const char *v[1] = { sha };
	PGresult *r;
	int err;

	r = lr_pg_q(st, "SELECT created_ms FROM blobs WHERE sha = $1", 1, v,
		    NULL, "blob", &err);
	if (err)
		return err;
	if (PQntuples(r) == 1)
		*created = lr_pg_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

int lr__pg_blob_stat(lr_store *st, const char *tenant, const char *sha,
		     lr_store_blob_info *info, lr_msg *msg)
{
	const char *v[2] = { sha, tenant };
	PGresult *r;
	int err;

	r = lr_pg_q(st,
		    "SELECT size_bytes, created_ms FROM blobs b "
		    "WHERE b.sha = $1 AND ("
		    "  EXISTS (SELECT 1 FROM blob_owners o "
		    "    WHERE o.tenant = $2 AND o.sha = $1) OR "
		    "  EXISTS (SELECT 1 FROM jobs j WHERE j.tenant = $2 "
		    "    AND (j.model_sha = $1 OR j.calib_sha = $1 OR "
		    "         j.result_sha = $1 OR j.report_sha = $1)))",
		    2, v, msg, "blob lookup", &err);
	if (err)
		return err;
	if (PQntuples(r) == 0) {
		err = lr_fail(msg, LR_STORE_ENOTFOUND, "blob %s not found", sha);
	} else {
		memcpy(info->sha, sha, LR_STORE_SHA_LEN + 1);
		info->size_bytes = lr_pg_i64(r, 0, 0);
		info->created_ms = lr_pg_i64(r, 0, 1);
	}
	PQclear(r);
	return err;
}

int lr__pg_tenant_bytes(lr_store *st, const char *tenant, int64_t *bytes,
			lr_msg *msg)
{
	const char *v[1] = { tenant };
	PGresult *r;
	int err;

	r = lr_pg_q(st,
		    "SELECT coalesce(sum(size_bytes), 0) FROM blobs "
		    "WHERE sha IN ("
		    "  SELECT sha FROM blob_owners WHERE tenant = $1 "
		    "  UNION SELECT model_sha FROM jobs WHERE tenant = $1 "
		    "  UNION SELECT calib_sha FROM jobs WHERE tenant = $1 "
		    "  UNION SELECT result_sha FROM jobs WHERE tenant = $1 "
		    "  UNION SELECT report_sha FROM jobs WHERE tenant = $1)",
		    1, v, msg, "tenant bytes", &err);
	if (err)
		return err;
	*bytes = lr_pg_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

/* 1 when blob `sha` has a row; -1 on error. */
int lr__pg_blob_row_exists(lr_store *st, const char *sha, lr_msg *msg)
{
	const char *v[1] = { sha };
	PGresult *r;
	int err, n;

	r = lr_pg_q(st, "SELECT 1 FROM blobs WHERE sha = $1", 1, v, msg,
		    "orphan check", &err);
	if (err)
		return -1;
	n = PQntuples(r) > 0;
	PQclear(r);
	return n;
}

/* ---- webhooks and idempotency ------------------------------------------ */

#define LR_PG_HOOK_COLS                                                      \
	"id, job_id, tenant, event, url, body, event_ms, created_ms, "     \
	"attempts, state, next_ms, last_status, last_error"

static int lr_pg_hook_from_row(const PGresult *r, int row, lr_store_hook *h,
			       int *state)
{
	const char *s = PQgetvalue(r, row, 9);
	int oom = 0;

	memset(h, 0, sizeof(*h));
	lr_pg_copy(r, row, 0, h->id, sizeof(h->id));
	lr_pg_copy(r, row, 1, h->job_id, sizeof(h->job_id));
	lr_pg_copy(r, row, 2, h->tenant, sizeof(h->tenant));
	lr_pg_copy(r, row, 3, h->event, sizeof(h->event));
	h->url = strdup(PQgetvalue(r, row, 4));
	h->body = lr_pg_dup(r, row, 5, &oom);
	h->event_ms = lr_pg_i64(r, row, 6);
	h->created_ms = lr_pg_i64(r, row, 7);
	h->attempts = (int)lr_pg_i64(r, row, 8);
	h->next_ms = lr_pg_i64(r, row, 10);
	h->last_status = (int)lr_pg_i64(r, row, 11);
	h->last_error = lr_pg_dup(r, row, 12, &oom);
	if (state != NULL)
		*state = strcmp(s, "pending") == 0     ? 0
			 : strcmp(s, "delivered") == 0 ? 1 : 2;
	if (h->url == NULL || oom) {
		lr_store_hook_fini(h);
		return LR_ENOMEM;
	}
	return 0;
}

int lr__pg_hooks_due(lr_store *st, int64_t now_ms, size_t max, int64_t lease_ms,
		     lr_store_hook *v, size_t *n, lr_msg *msg)
{
	char a[24], b[24], c[24];
	const char *p[3] = { lr_pg_num(a, now_ms), lr_pg_num(b, (int64_t)max),
			     lr_pg_num(c, now_ms + (lease_ms > 0 ? lease_ms : 0)) };
	PGresult *r;
	int err, i;

	if (lease_ms > 0)
		/* Claimed rows come back with their new next_ms; RETURNING
		 * keeps no order, which only the batch's order would use. */
		r = lr_pg_q(st,
			    "UPDATE webhook_outbox SET next_ms = $3 WHERE id IN ("
			    "SELECT id FROM webhook_outbox "
			    "WHERE state = 'pending' AND next_ms <= $1 "
			    "ORDER BY next_ms, id LIMIT $2 FOR UPDATE SKIP LOCKED) "
			    "RETURNING " LR_PG_HOOK_COLS,
			    3, p, msg, "claim webhook outbox rows", &err);
	else
		r = lr_pg_q(st,
			    "SELECT " LR_PG_HOOK_COLS " FROM webhook_outbox "
			    "WHERE state = 'pending' AND next_ms <= $1 "
			    "ORDER BY next_ms, id LIMIT $2",
			    2, p, msg, "read webhook outbox", &err);
	if (err)
		return err;
	for (i = 0; i < PQntuples(r); i++) {
		err = lr_pg_hook_from_row(r, i, &v[*n], NULL);
		if (err) {
			lr_fail(msg, err, "out of memory");
			break;
		}
		(*n)++;
	}
	PQclear(r);
	return err;
}

int lr__pg_hook_of_job(lr_store *st, const char *job_id, lr_store_hook *h,
		       int *state, lr_msg *msg)
{
	const char *p[1] = { job_id };
	PGresult *r;
	int err;

	r = lr_pg_q(st,
		    "SELECT " LR_PG_HOOK_COLS " FROM webhook_outbox WHERE job_id = $1",
		    1, p, msg, "read webhook outbox", &err);
	if (err)
		return err;
	if (PQntuples(r) == 0)
		err = lr_fail(msg, LR_STORE_ENOTFOUND,
			      "job %s has no webhook delivery", job_id);
	else
		err = lr_pg_hook_from_row(r, 0, h, state);
	PQclear(r);
	return err;
}

int lr__pg_hook_attempt(lr_store *st, const char *id, const char *body,
			const char *outcome, int64_t next_ms, int status,
			const char *error, lr_msg *msg)
{
	char nm[24], sb[24], now[24];
	const char *p[7];
	PGresult *r;
	int err;

	p[0] = id;
	p[1] = outcome;
	p[2] = lr_pg_num(nm, next_ms);
	p[3] = status > 0 ? lr_pg_num(sb, status) : NULL;
	p[4] = lr_pg_nz(error);
	p[5] = lr_pg_num(now, lr_store_now_ms());
	p[6] = lr_pg_nz(body);
	r = lr_pg_q(st,
		    "UPDATE webhook_outbox SET attempts = attempts + 1, "
		    "state = $2, next_ms = CASE WHEN $2 = 'pending' THEN $3::bigint "
		    "  ELSE next_ms END, "
		    "last_status = $4, last_error = $5, updated_ms = $6, "
		    "body = coalesce(body, $7) "
		    "WHERE id = $1 AND state = 'pending'",
		    7, p, msg, "record webhook attempt", &err);
	if (err)
		return err;
	if (lr_pg_changes(r) == 0)
		err = lr_fail(msg, LR_STORE_ENOTFOUND,
			      "webhook %s is not pending", id);
	PQclear(r);
	return err;
}

int lr__pg_hooks_count(lr_store *st, int64_t counts[3], lr_msg *msg)
{
	PGresult *r;
	int err, i;

	r = lr_pg_q(st, "SELECT state, count(*) FROM webhook_outbox GROUP BY state",
		    0, NULL, msg, "count webhooks", &err);
	if (err)
		return err;
	for (i = 0; i < PQntuples(r); i++) {
		const char *s = PQgetvalue(r, i, 0);
		int k = strcmp(s, "pending") == 0     ? 0
			: strcmp(s, "delivered") == 0 ? 1 : 2;

		counts[k] = lr_pg_i64(r, i, 1);
	}
	PQclear(r);
	return 0;
}

int lr__pg_idem_begin(lr_store *st, const char *tenant, const char *key,
		      lr_store_idem *rec, lr_msg *msg)
{
	char old[24], now[24];
	int64_t t = lr_store_now_ms();
	const char *p[3] = { tenant, key, lr_pg_num(old, t - LR_STORE_IDEM_TTL_MS) };
	PGresult *r = NULL;
	int err, oom = 0;

	err = lr__pg_begin(st, msg);
	if (err)
		return err;
	err = lr_pg_x(st,
		      "DELETE FROM idempotency WHERE tenant = $1 AND key = $2 "
		      "AND created_ms < $3",
		      3, p, msg, "expire idempotency key");
	if (err)
		goto out;
	p[2] = lr_pg_num(now, t);
	r = lr_pg_q(st,
		    "INSERT INTO idempotency (tenant, key, state, created_ms) "
		    "VALUES ($1, $2, 'pending', $3) ON CONFLICT DO NOTHING",
		    3, p, msg, "take idempotency key", &err);
	if (err)
		goto out;
	if (lr_pg_changes(r) == 1) {
		PQclear(r);
		rec->state = LR_IDEM_NEW;
		return lr__pg_commit(st, msg);
	}
	PQclear(r);
	r = lr_pg_q(st,
		    "SELECT state, fingerprint, status, resource, location, "
		    "body FROM idempotency WHERE tenant = $1 AND key = $2",
		    2, p, msg, "read idempotency key", &err);
	if (err)
		goto out;
	if (PQntuples(r) != 1) {
		/* Deleted between our insert and read: busy, retry later. */
		rec->state = LR_IDEM_BUSY;
	} else {
		rec->state = strcmp(PQgetvalue(r, 0, 0), "done") == 0
				     ? LR_IDEM_DONE : LR_IDEM_BUSY;
		lr_pg_copy(r, 0, 1, rec->fingerprint, sizeof(rec->fingerprint));
		rec->status = (int)lr_pg_i64(r, 0, 2);
		lr_pg_copy(r, 0, 3, rec->resource, sizeof(rec->resource));
		rec->location = lr_pg_dup(r, 0, 4, &oom);
		rec->body = lr_pg_dup(r, 0, 5, &oom);
		if (oom) {
			err = lr_fail(msg, LR_ENOMEM, "out of memory");
			goto out;
		}
	}
	PQclear(r);
	return lr__pg_commit(st, msg);
out:
	PQclear(r);
	lr__pg_rollback(st);
	lr_store_idem_fini(rec);
	return err;
}

int lr__pg_idem_release(lr_store *st, const char *tenant, const char *key,
			lr_msg *msg)
{
	const char *p[2] = { tenant, key };

	return lr_pg_x(st,
		       "DELETE FROM idempotency WHERE tenant = $1 AND key = $2 "
		       "AND state = 'pending'",
		       2, p, msg, "release idempotency key");
}

/* ---- sweep ----------------------------------------------------------- */

int lr__pg_sweep_try_lock(lr_store *st, int *got, lr_msg *msg)
{
	PGresult *r;
	int err;

	*got = 0;
	r = lr_pg_q(st, "SELECT pg_try_advisory_lock(19540, 1)", 0, NULL, msg,
		    "sweep lock", &err);
	if (err)
		return err;
	*got = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	return 0;
}

void lr__pg_sweep_unlock(lr_store *st)
{
	(void)lr_pg_x(st, "SELECT pg_advisory_unlock(19540, 1)", 0, NULL, NULL,
		      "sweep unlock");
}

/* The row part of lr_store_sweep: one transaction; calls add(sha) for
 * every blob row removed. */
int lr__pg_sweep_rows(lr_store *st, const lr_store_sweep_opts *opts,
		      int64_t now, lr_store_sweep_report *rep,
		      int (*add)(void *ctx, const char *sha), void *ctx,
		      lr_msg *msg)
{
	char a[24], b[24], c[24];
	const char *p[2];
	PGresult *r = NULL;
	int err, i;

	err = lr__pg_begin(st, msg);
	if (err)
		return err;
	if (opts->retention_ms > 0) {
		p[0] = lr_pg_num(a, now - opts->retention_ms);
		r = lr_pg_q(st,
			    "DELETE FROM jobs WHERE state IN ('succeeded', "
			    "'failed', 'canceled') AND finished_ms < $1",
			    1, p, msg, "sweep jobs", &err);
		if (err)
			goto out;
		rep->jobs_deleted = lr_pg_changes(r);
		PQclear(r);
		r = lr_pg_q(st,
			    "DELETE FROM blob_owners bo WHERE created_ms < $1 AND "
			    "NOT EXISTS (SELECT 1 FROM jobs j WHERE "
			    "j.tenant = bo.tenant AND (j.model_sha = bo.sha OR "
			    "j.calib_sha = bo.sha OR j.result_sha = bo.sha OR "
			    "j.report_sha = bo.sha))",
			    1, p, msg, "sweep blob owners", &err);
		if (err)
			goto out;
		rep->owners_deleted = lr_pg_changes(r);
		PQclear(r);
		r = NULL;
	}
	/* Blob rows: each under its digest lock, so no writer is between
	 * its rename and its commit. Candidates first, then lock + delete. */
	p[0] = lr_pg_num(b, now - opts->tmp_age_ms);
	r = lr_pg_q(st,
		    "SELECT sha FROM blobs WHERE touched_ms <= $1 "
		    "AND NOT EXISTS (SELECT 1 FROM blob_owners o WHERE o.sha = blobs.sha) "
		    "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE "
		    "j.model_sha = blobs.sha OR j.calib_sha = blobs.sha OR "
		    "j.result_sha = blobs.sha OR j.report_sha = blobs.sha)",
		    1, p, msg, "sweep blobs", &err);
	if (err)
		goto out;
	for (i = 0; i < PQntuples(r); i++) {
		const char *sha = PQgetvalue(r, i, 0);
		const char *q[2] = { sha, b };
		PGresult *d;

		err = lr__pg_blob_lock(st, sha, msg);
		if (err)
			goto out;
		d = lr_pg_q(st,
			    "DELETE FROM blobs WHERE sha = $1 AND touched_ms <= $2 "
			    "AND NOT EXISTS (SELECT 1 FROM blob_owners o WHERE o.sha = $1) "
			    "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE "
			    "j.model_sha = $1 OR j.calib_sha = $1 OR "
			    "j.result_sha = $1 OR j.report_sha = $1) "
			    "RETURNING size_bytes",
			    2, q, msg, "sweep blobs", &err);
		if (err)
			goto out;
		if (PQntuples(d) == 1) {
			rep->blobs_deleted++;
			rep->blob_bytes_freed += lr_pg_i64(d, 0, 0);
			err = add(ctx, sha);
		}
		PQclear(d);
		if (err) {
			lr_fail(msg, err, "out of memory");
			goto out;
		}
	}
	PQclear(r);
	r = NULL;
	p[0] = lr_pg_num(a, now - LR_STORE_IDEM_TTL_MS);
	p[1] = lr_pg_num(c, now - opts->tmp_age_ms);
	r = lr_pg_q(st,
		    "DELETE FROM idempotency WHERE created_ms < $1 OR "
		    "(state = 'pending' AND created_ms <= $2)",
		    2, p, msg, "sweep idempotency keys", &err);
	if (err)
		goto out;
	rep->idem_deleted = lr_pg_changes(r);
	PQclear(r);
	r = NULL;
	if (opts->retention_ms > 0) {
		p[0] = lr_pg_num(a, now - opts->retention_ms);
		r = lr_pg_q(st,
			    "DELETE FROM webhook_outbox WHERE state != 'pending' "
			    "AND updated_ms < $1",
			    1, p, msg, "sweep webhook outbox", &err);
		if (err)
			goto out;
		rep->hooks_deleted = lr_pg_changes(r);
		PQclear(r);
		r = NULL;
	}
	return lr__pg_commit(st, msg);
out:
	PQclear(r);
	lr__pg_rollback(st);
	rep->idem_deleted = rep->hooks_deleted = 0;
	rep->jobs_deleted = rep->owners_deleted = 0;
	rep->blobs_deleted = rep->blob_bytes_freed = 0;
	return err;
}

/* ---- wake-ups --------------------------------------------------------- */

int lr_store_wait(lr_store *st, int timeout_ms, lr_msg *msg)
{
	struct pollfd pfd;
	PGnotify *n;
	int err, got = 0;

	if (st->pg == NULL) {
		if (timeout_ms > 0)
			usleep((useconds_t)timeout_ms * 1000);
		return 0;
	}
	err = lr_pg_ensure(st, msg);
	if (err)
		return err;
	if (!st->listening) {
		err = lr_pg_x(st, "LISTEN lowrankd_jobs", 0, NULL, msg, "listen");
		if (err)
			return err;
		st->listening = 1;
	}
	PQconsumeInput(st->pg);
	while ((n = PQnotifies(st->pg)) != NULL) {
		PQfreemem(n);
		got = 1;
	}
	if (got)
		return 1;
	pfd.fd = PQsocket(st->pg);
	pfd.events = POLLIN;
	if (pfd.fd < 0)
		return lr_fail(msg, LR_STORE_EUNAVAIL, "database connection lost");
	if (poll(&pfd, 1, timeout_ms) > 0) {
		if (!PQconsumeInput(st->pg))
			return lr_fail(msg, LR_STORE_EUNAVAIL,
				       "database connection lost: %s",
				       PQerrorMessage(st->pg));
		while ((n = PQnotifies(st->pg)) != NULL) {
			PQfreemem(n);
			got = 1;
		}
	}
	return got;
}
