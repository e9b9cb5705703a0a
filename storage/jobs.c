/*
 * jobs.c - the job queue: creation, tenant-checked reads, claims with
 * leases and fencing tokens, worker writes, cancel, requeue, recovery.
 *
 * DESIGN. A job row is the whole truth about a job; every transition is one
 * BEGIN IMMEDIATE transaction whose WHERE clause states the precondition
 * (for example "state = 'running' AND fence = ?"), so a transition either
 * happens completely or not at all, and two racing callers cannot both win:
 * SQLite's single writer lock orders them and the loser's WHERE no longer
 * matches. Claiming is one UPDATE ... WHERE id = (oldest queued) RETURNING,
 * so two workers never get the same job. The fence is a per-job counter
 * bumped by every claim; worker writes carry it, and a write with an old
 * fence changes nothing and returns LR_STORE_ESTALE. Recovery is the only
 * path that takes a job away from a live-looking worker, and it only does
 * so when the lease expired or the lease belongs to an older daemon epoch.
 * Client-facing lookups always include the tenant in the WHERE clause, so a
 * foreign id is indistinguishable from a missing one. Ids from clients are
 * checked to be exactly 32 lowercase hex digits before they reach SQL.
 *
 * Transitions (who calls them):
 *   create (API)              -> queued
 *   claim (worker)            queued -> running, fence+1, attempts+1
 *   heartbeat/progress (worker, fenced)  running -> running
 *   finish (worker, fenced)   running -> succeeded | failed | canceled
 *   requeue (worker, fenced, graceful stop)  running -> queued, attempts-1
 *   cancel (API)              queued -> canceled; running: flag only
 *   recover (daemon)          dead running -> queued | failed | canceled
 *   delete (API)              terminal -> gone
 */
#include "config.h"

#include "storage/store-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- records -------------------------------------------------------- */

void lr_store_job_fini(lr_store_job *job)
{
	if (job == NULL)
		return;
	free(job->spec_json);
	free(job->progress_json);
	free(job->error_json);
	memset(job, 0, sizeof(*job));
}

void lr_store_job_page_fini(lr_store_job_page *page)
{
	size_t i;

	if (page == NULL)
		return;
	for (i = 0; i < page->count; i++)
		lr_store_job_fini(&page->jobs[i]);
	free(page->jobs);
	memset(page, 0, sizeof(*page));
}

/* strdup of a text column, NULL for SQL NULL; *oom set on failure. */
static char *lr_col_dup(sqlite3_stmt *stmt, int col, int *oom)
{
	const unsigned char *t = sqlite3_column_text(stmt, col);
	char *s;

	if (t == NULL)
		return NULL;
	s = strdup((const char *)t);
	if (s == NULL)
		*oom = 1;
	return s;
}

int lr__job_from_row(sqlite3_stmt *stmt, lr_store_job *job)
{
	char state[16];
	enum lr_job_state s = LR_JOB_STATE_QUEUED;
	int oom = 0;

	memset(job, 0, sizeof(*job));
	lr__col_copy(stmt, 0, job->id, sizeof(job->id));
	lr__col_copy(stmt, 1, job->tenant, sizeof(job->tenant));
	lr__col_copy(stmt, 2, state, sizeof(state));
	LR_ASSERT(lr_job_state_parse(state, &s) == 0); /* CHECK constraint */
	job->state = s;
	job->spec_json = lr_col_dup(stmt, 3, &oom);
	lr__col_copy(stmt, 4, job->model_sha, sizeof(job->model_sha));
	lr__col_copy(stmt, 5, job->calib_sha, sizeof(job->calib_sha));
	job->created_ms = sqlite3_column_int64(stmt, 6);
	job->started_ms = sqlite3_column_int64(stmt, 7);
	job->finished_ms = sqlite3_column_int64(stmt, 8);
	job->updated_ms = sqlite3_column_int64(stmt, 9);
	job->attempts = sqlite3_column_int(stmt, 10);
	job->max_attempts = sqlite3_column_int(stmt, 11);
	lr__col_copy(stmt, 12, job->lease_owner, sizeof(job->lease_owner));
	job->lease_epoch = sqlite3_column_int64(stmt, 13);
	job->lease_expires_ms = sqlite3_column_int64(stmt, 14);
	job->fence = sqlite3_column_int64(stmt, 15);
	job->progress_json = lr_col_dup(stmt, 16, &oom);
	lr__col_copy(stmt, 17, job->result_sha, sizeof(job->result_sha));
	lr__col_copy(stmt, 18, job->report_sha, sizeof(job->report_sha));
	job->error_json = lr_col_dup(stmt, 19, &oom);
	job->cancel_requested = sqlite3_column_int(stmt, 20);
	if (oom) {
		lr_store_job_fini(job);
		return LR_ENOMEM;
	}
	return 0;
}

/* 1 when `s` is 1..LR_STORE_OWNER_MAX printable ASCII characters. */
static int lr_owner_valid(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0')
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (i >= LR_STORE_OWNER_MAX || s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

/* Maps a failed write step: constraint failures on JSON are LR_EINVAL. */
static int lr_write_fail(lr_store *st, int rc, lr_msg *msg, const char *what)
{
	if (rc == SQLITE_CONSTRAINT_CHECK)
		return lr_fail(msg, LR_EINVAL,
			       "%s: a JSON field is not a valid JSON object",
			       what);
	return lr__db_fail(st, rc, msg, what);
}

/* ---- create, get, list ---------------------------------------------- */

/* 0 when `tenant` owns blob `sha`, LR_STORE_ENOTFOUND otherwise. */
static int lr_owner_check(lr_store *st, const char *tenant, const char *sha,
			  const char *what, lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	int err, rc;

	if (!lr_store_sha_valid(sha))
		return lr_fail(msg, LR_STORE_ENOTFOUND,
			       "%s blob id is not a SHA-256 hex digest", what);
	err = lr__prepare(st,
			  "SELECT 1 FROM blob_owners WHERE tenant = ?1 AND sha = ?2",
			  &stmt, msg);
	if (err)
		return err;
	sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, sha, -1, SQLITE_STATIC);
	rc = lr__step(st, stmt);
	if (rc == SQLITE_DONE)
		err = lr_fail(msg, LR_STORE_ENOTFOUND, "%s blob %s not found",
			      what, sha);
	else if (rc != SQLITE_ROW)
		err = lr__db_fail(st, rc, msg, "blob owner lookup");
	lr__finalize(st, stmt);
	return err;
}

/* Count of `tenant`'s queued + running jobs. */
static int lr_active_count(lr_store *st, const char *tenant, int64_t *n,
			   lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	int err, rc;

	err = lr__prepare(st,
			  "SELECT count(*) FROM jobs WHERE tenant = ?1 AND "
			  "state IN ('queued', 'running')",
			  &stmt, msg);
	if (err)
		return err;
	sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC);
	rc = lr__step(st, stmt);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(stmt, 0);
	else
		err = lr__db_fail(st, rc, msg, "count active jobs");
	lr__finalize(st, stmt);
	return err;
}

int lr_store_job_create(lr_store *st, const lr_store_job_new *nj,
			char id_out[LR_STORE_ID_LEN + 1], lr_msg *msg)
{
	unsigned char raw[LR_STORE_ID_LEN / 2];
	char id[LR_STORE_ID_LEN + 1];
	sqlite3_stmt *stmt = NULL;
	int64_t now, active;
	int max_attempts, err, rc;

	id_out[0] = '\0';
	if (!lr_store_tenant_valid(nj->tenant))
		return lr_fail(msg, LR_EINVAL, "invalid tenant name");
	if (nj->spec_json == NULL)
		return lr_fail(msg, LR_EINVAL, "the job spec is missing");
	max_attempts = nj->max_attempts == 0 ? LR_STORE_MAX_ATTEMPTS_DEFAULT
					     : nj->max_attempts;
	if (max_attempts < 1 || max_attempts > 1000)
		return lr_fail(msg, LR_EINVAL,
			       "max_attempts %d is out of range 1..1000",
			       max_attempts);
	err = lr__random(raw, sizeof(raw));
	if (err)
		return lr_fail(msg, err, "getrandom failed");
	lr__hex(raw, sizeof(raw), id);
	if (st->pg != NULL) {
		err = lr__pg_job_create(st, nj, id, max_attempts, msg);
		if (err == 0)
			memcpy(id_out, id, sizeof(id));
		return err;
	}

	err = lr__tx_begin(st, msg);
	if (err)
		return err;
	if (nj->queued_max > 0) {
		err = lr_active_count(st, nj->tenant, &active, msg);
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
	err = lr_owner_check(st, nj->tenant, nj->model_sha, "model", msg);
	if (err)
		goto out;
	if (nj->calib_sha != NULL) {
		err = lr_owner_check(st, nj->tenant, nj->calib_sha,
				     "calibration", msg);
		if (err)
			goto out;
	}
	err = lr__prepare(st,
			  "INSERT INTO jobs (id, tenant, state, spec_json, "
			  "model_sha, calib_sha, created_ms, updated_ms, "
			  "max_attempts) VALUES (?1, ?2, 'queued', ?3, ?4, ?5, "
			  "?6, ?6, ?7)",
			  &stmt, msg);
	if (err)
		goto out;
	now = lr_store_now_ms();
	sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, nj->tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, nj->spec_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, nj->model_sha, -1, SQLITE_STATIC);
	lr__bind_text_or_null(stmt, 5, nj->calib_sha);
	sqlite3_bind_int64(stmt, 6, now);
	sqlite3_bind_int(stmt, 7, max_attempts);
	rc = lr__step(st, stmt);
	if (rc != SQLITE_DONE) {
		err = lr_write_fail(st, rc, msg, "job spec");
		goto out;
	}
	lr__finalize(st, stmt);
	stmt = NULL;
	if (nj->idem_key != NULL) {
		char loc[LR_STORE_ID_LEN + 16];

		snprintf(loc, sizeof(loc), "/v1/jobs/%s", id);
		err = lr__idem_mark_done(st, nj->tenant, nj->idem_key,
					 nj->idem_fingerprint, 202, id, loc,
					 NULL, msg);
		if (err)
			goto out;
	}
	err = lr__tx_commit(st, msg);
	if (err == 0)
		memcpy(id_out, id, sizeof(id));
	return err;
out:
	lr__finalize(st, stmt);
	lr__tx_rollback(st);
	return err;
}

int lr_store_job_get(lr_store *st, const char *tenant, const char *id,
		     lr_store_job *job, lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	int err, rc;

	memset(job, 0, sizeof(*job));
	if (!lr_store_id_valid(id) || !lr_store_tenant_valid(tenant))
		return lr_fail(msg, LR_STORE_ENOTFOUND, "job not found");
	if (st->pg != NULL)
		return lr__pg_job_get(st, tenant, id, job, msg);
	err = lr__prepare(st,
			  "SELECT " LR__JOB_COLS " FROM jobs "
			  "WHERE id = ?1 AND tenant = ?2",
			  &stmt, msg);
	if (err)
		return err;
	sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, tenant, -1, SQLITE_STATIC);
	rc = lr__step(st, stmt);
	if (rc == SQLITE_ROW)
		err = lr__job_from_row(stmt, job);
	else if (rc == SQLITE_DONE)
		err = lr_fail(msg, LR_STORE_ENOTFOUND, "job %s not found", id);
	else
		err = lr__db_fail(st, rc, msg, "read job");
	lr__finalize(st, stmt);
	return err;
}

/* Page tokens: base64url (no padding) of "v1.<filter>.<created_ms>.<id>",
 * where filter is the state filter (-1 for all). */
static const char lr_b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void lr_b64url_encode(const char *in, size_t n, char *out,
			     size_t outlen)
{
	size_t i, o = 0;

	LR_ASSERT((n + 2) / 3 * 4 + 1 <= outlen);
	for (i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)in[i] << 16;
		size_t k = n - i < 3 ? n - i : 3;

		if (k > 1)
			v |= (unsigned char)in[i + 1] << 8;
		if (k > 2)
			v |= (unsigned char)in[i + 2];
		out[o++] = lr_b64[(v >> 18) & 63];
		out[o++] = lr_b64[(v >> 12) & 63];
		if (k > 1)
			out[o++] = lr_b64[(v >> 6) & 63];
		if (k > 2)
			out[o++] = lr_b64[v & 63];
	}
	out[o] = '\0';
}

/* Decodes into out (NUL-terminated). 0, or LR_EINVAL for anything that is
 * not canonical base64url without padding. */
static int lr_b64url_decode(const char *in, char *out, size_t outlen)
{
	size_t n = strlen(in), i, o = 0;
	unsigned v = 0;
	int bits = 0;

	if (n % 4 == 1)
		return LR_EINVAL;
	for (i = 0; i < n; i++) {
		const char *p = in[i] ? strchr(lr_b64, in[i]) : NULL;

		if (p == NULL)
			return LR_EINVAL;
		v = (v << 6) | (unsigned)(p - lr_b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o + 1 >= outlen)
				return LR_EINVAL;
			out[o++] = (char)((v >> bits) & 0xff);
		}
	}
	if (bits > 0 && (v & ((1u << bits) - 1)) != 0)
		return LR_EINVAL; /* non-zero padding bits: not canonical */
	out[o] = '\0';
	return 0;
}

/* Parses a decimal integer that spans exactly [s, end). */
static int lr_parse_i64(const char *s, const char *end, int64_t *out)
{
	int64_t v = 0;
	int neg = 0;

	if (s < end && *s == '-') {
		neg = 1;
		s++;
	}
	if (s == end || end - s > 18)
		return LR_EINVAL;
	if (*s == '0' && end - s > 1)
		return LR_EINVAL;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return LR_EINVAL;
		v = v * 10 + (*s - '0');
	}
	*out = neg ? -v : v;
	return 0;
}

/* Decodes a page token; checks it was made for `filter`. */
static int lr_token_decode(const char *token, int filter, int64_t *created,
			   char id[LR_STORE_ID_LEN + 1])
{
	char buf[LR_STORE_TOKEN_MAX];
	char *f, *c, *i;
	int64_t tf;

	if (strlen(token) >= LR_STORE_TOKEN_MAX ||
	    lr_b64url_decode(token, buf, sizeof(buf)) != 0)
		return LR_EINVAL;
	if (strncmp(buf, "v1.", 3) != 0)
		return LR_EINVAL;
	f = buf + 3;
	c = strchr(f, '.');
	if (c == NULL)
		return LR_EINVAL;
	i = strchr(c + 1, '.');
	if (i == NULL)
		return LR_EINVAL;
	if (lr_parse_i64(f, c, &tf) != 0 || tf != filter)
		return LR_EINVAL;
	if (lr_parse_i64(c + 1, i, created) != 0 || *created < 0)
		return LR_EINVAL;
	if (!lr_store_id_valid(i + 1))
		return LR_EINVAL;
	memcpy(id, i + 1, LR_STORE_ID_LEN + 1);
	return 0;
}

static void lr_token_encode(int filter, const lr_store_job *last,
			    char out[LR_STORE_TOKEN_MAX])
{
	char raw[80];
	int n;

	n = snprintf(raw, sizeof(raw), "v1.%d.%lld.%s", filter,
		     (long long)last->created_ms, last->id);
	LR_ASSERT(n > 0 && (size_t)n < sizeof(raw));
	lr_b64url_encode(raw, (size_t)n, out, LR_STORE_TOKEN_MAX);
}

int lr_store_jobs_list(lr_store *st, const char *tenant, int state,
		       size_t limit, const char *page_token,
		       lr_store_job_page *page, lr_msg *msg)
{
	/* [has state filter][has cursor]; constant SQL so each uses its
	 * index (tenant, [state,] created_ms, id). */
	static const char *const sql[2][2] = {
		{ "SELECT " LR__JOB_COLS " FROM jobs WHERE tenant = ?1 "
		  "ORDER BY created_ms DESC, id DESC LIMIT ?5",
		  "SELECT " LR__JOB_COLS " FROM jobs WHERE tenant = ?1 "
		  "AND (created_ms, id) < (?3, ?4) "
		  "ORDER BY created_ms DESC, id DESC LIMIT ?5" },
		{ "SELECT " LR__JOB_COLS " FROM jobs WHERE tenant = ?1 "
		  "AND state = ?2 ORDER BY created_ms DESC, id DESC LIMIT ?5",
		  "SELECT " LR__JOB_COLS " FROM jobs WHERE tenant = ?1 "
		  "AND state = ?2 AND (created_ms, id) < (?3, ?4) "
		  "ORDER BY created_ms DESC, id DESC LIMIT ?5" },
	};
	char cursor_id[LR_STORE_ID_LEN + 1];
	int64_t cursor_created = 0;
	sqlite3_stmt *stmt = NULL;
	int has_cursor, err, rc;
	lr_store_job *jobs;

	memset(page, 0, sizeof(*page));
	if (!lr_store_tenant_valid(tenant))
		return lr_fail(msg, LR_EINVAL, "invalid tenant name");
	if (state < -1 || state >= LR_JOB_STATE_COUNT)
		return lr_fail(msg, LR_EINVAL, "invalid state filter");
	if (limit == 0)
		limit = LR_STORE_LIST_DEFAULT;
	if (limit > LR_STORE_LIST_MAX)
		limit = LR_STORE_LIST_MAX;
	has_cursor = page_token != NULL && page_token[0] != '\0';
	if (has_cursor &&
	    lr_token_decode(page_token, state, &cursor_created, cursor_id) != 0)
		return lr_fail(msg, LR_EINVAL,
			       "page token is malformed or was issued for "
			       "another filter");
	jobs = calloc(limit + 1, sizeof(*jobs));
	if (jobs == NULL)
		return lr_fail(msg, LR_ENOMEM, "out of memory");
	page->jobs = jobs;
	if (st->pg != NULL) {
		err = lr__pg_jobs_list(st, tenant, state, limit, has_cursor,
				       cursor_created, cursor_id, page, msg);
		if (err)
			goto fail;
		goto paged;
	}
	err = lr__prepare(st, sql[state >= 0][has_cursor], &stmt, msg);
	if (err)
		goto fail;
	sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC);
	if (state >= 0)
		sqlite3_bind_text(stmt, 2,
				  lr_job_state_name((enum lr_job_state)state),
				  -1, SQLITE_STATIC);
	if (has_cursor) {
		sqlite3_bind_int64(stmt, 3, cursor_created);
		sqlite3_bind_text(stmt, 4, cursor_id, -1, SQLITE_STATIC);
	}
	/* One more than asked, to know whether a next page exists. */
	sqlite3_bind_int64(stmt, 5, (sqlite3_int64)limit + 1);
	while ((rc = lr__step(st, stmt)) == SQLITE_ROW) {
		err = lr__job_from_row(stmt, &jobs[page->count]);
		if (err) {
			lr_fail(msg, err, "out of memory");
			goto fail;
		}
		page->count++;
	}
	if (rc != SQLITE_DONE) {
		err = lr__db_fail(st, rc, msg, "list jobs");
		goto fail;
	}
paged:
	if (page->count > limit) {
		lr_store_job_fini(&jobs[limit]);
		page->count = limit;
		lr_token_encode(state, &jobs[limit - 1], page->next_token);
	}
	lr__finalize(st, stmt);
	return 0;
fail:
	lr__finalize(st, stmt);
	lr_store_job_page_fini(page);
	return err;
}

/* ---- worker side ---------------------------------------------------- */

int lr_store_job_claim(lr_store *st, const char *owner, int64_t epoch,
		       int64_t lease_ms, lr_store_job *job, int *claimed,
		       lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	int64_t now;
	int err, rc;

	memset(job, 0, sizeof(*job));
	*claimed = 0;
	if (!lr_owner_valid(owner))
		return lr_fail(msg, LR_EINVAL, "invalid lease owner");
	if (lease_ms <= 0 || epoch < 0)
		return lr_fail(msg, LR_EINVAL,
			       "lease_ms must be > 0 and epoch >= 0");
	if (st->pg != NULL) {
		err = lr__pg_job_claim(st, owner, epoch, lease_ms, job, msg);
		if (err) {
			lr_store_job_fini(job);
			return err;
		}
		*claimed = job->id[0] != '\0';
		return 0;
	}
	err = lr__tx_begin(st, msg);
	if (err)
		return err;
	err = lr__prepare(st,
			  "UPDATE jobs SET state = 'running', lease_owner = ?1, "
			  "lease_epoch = ?2, lease_expires_ms = ?3 + ?4, "
			  "fence = fence + 1, attempts = attempts + 1, "
			  "started_ms = ?3, updated_ms = ?3 "
			  "WHERE id = (SELECT id FROM jobs WHERE state = 'queued' "
			  "ORDER BY created_ms, id LIMIT 1) "
			  "RETURNING " LR__JOB_COLS,
			  &stmt, msg);
	if (err)
		goto out;
	now = lr_store_now_ms();
	sqlite3_bind_text(stmt, 1, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, epoch);
	sqlite3_bind_int64(stmt, 3, now);
	sqlite3_bind_int64(stmt, 4, lease_ms);
	rc = lr__step(st, stmt);
	if (rc == SQLITE_ROW) {
		err = lr__job_from_row(stmt, job);
		if (err) {
			lr_fail(msg, err, "out of memory");
			goto out;
		}
		rc = lr__step(st, stmt);
	}
	if (rc != SQLITE_DONE) {
		err = lr__db_fail(st, rc, msg, "claim");
		goto out;
	}
	lr__finalize(st, stmt);
	stmt = NULL;
	LR__FAULT("claim-updated");
	err = lr__tx_commit(st, msg);
	if (err)
		goto out;
	*claimed = job->id[0] != '\0';
	return 0;
out:
	lr__finalize(st, stmt);
	lr__tx_rollback(st);
	lr_store_job_fini(job);
	return err;
}

/*
 * One fenced worker write: `sql` is an UPDATE with ?1 = id, ?2 = fence,
 * ?3 = now, optionally ?4 = `num` and ?5 = `text`, whose WHERE requires
 * state = 'running' AND fence = ?2 and which RETURNs cancel_requested.
 * No row means the worker lost the job: LR_STORE_ESTALE.
 */
static int lr_fenced_write(lr_store *st, const char *what, const char *sql,
			   const char *id, int64_t fence, int64_t num,
			   const char *text, int may_end, int *cancel_requested,
			   lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	int64_t now = lr_store_now_ms();
	int err, rc, cancel = 0;

	if (!lr_store_id_valid(id))
		return lr_fail(msg, LR_STORE_ENOTFOUND, "job not found");
	err = lr__tx_begin(st, msg);
	if (err)
		return err;
	err = lr__prepare(st, sql, &stmt, msg);
	if (err)
		goto out;
	sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, fence);
	sqlite3_bind_int64(stmt, 3, now);
	if (sqlite3_bind_parameter_count(stmt) >= 4)
		sqlite3_bind_int64(stmt, 4, num);
	if (sqlite3_bind_parameter_count(stmt) >= 5)
		sqlite3_bind_text(stmt, 5, text, -1, SQLITE_STATIC);
	rc = lr__step(st, stmt);
	if (rc == SQLITE_ROW) {
		cancel = sqlite3_column_int(stmt, 0);
		rc = lr__step(st, stmt);
	} else if (rc == SQLITE_DONE) {
		err = lr_fail(msg, LR_STORE_ESTALE,
			      "%s: job %s is no longer running under fence %lld",
			      what, id, (long long)fence);
		goto out;
	}
	if (rc != SQLITE_DONE) {
		err = lr_write_fail(st, rc, msg, what);
		goto out;
	}
	lr__finalize(st, stmt);
	stmt = NULL;
	/* A requeue of a canceled job ends it: its webhook, same tx. */
	if (may_end && cancel) {
		err = lr__outbox_add(st, id, 0, now, msg);
		if (err)
			goto out;
	}
	err = lr__tx_commit(st, msg);
	if (err == 0 && cancel_requested != NULL)
		*cancel_requested = cancel;
	return err;
out:
	lr__finalize(st, stmt);
	lr__tx_rollback(st);
	return err;
}

int lr_store_job_heartbeat(lr_store *st, const char *id, int64_t fence,
			   int64_t lease_ms, int *cancel_requested,
			   lr_msg *msg)
{
	if (lease_ms <= 0)
		return lr_fail(msg, LR_EINVAL, "lease_ms must be > 0");
	if (st->pg != NULL)
		return lr_store_id_valid(id)
			       ? lr__pg_fenced_write(st, 0, id, fence, lease_ms,
						     NULL, cancel_requested, msg)
			       : lr_fail(msg, LR_STORE_ENOTFOUND, "job not found");
	return lr_fenced_write(
		st, "heartbeat",
		"UPDATE jobs SET lease_expires_ms = ?3 + ?4 "
		"WHERE id = ?1 AND fence = ?2 AND state = 'running' "
		"RETURNING cancel_requested",
		id, fence, lease_ms, NULL, 0, cancel_requested, msg);
}

int lr_store_job_progress(lr_store *st, const char *id, int64_t fence,
			  const char *progress_json, int *cancel_requested,
			  lr_msg *msg)
{
	if (progress_json == NULL)
		return lr_fail(msg, LR_EINVAL, "progress is missing");
	if (st->pg != NULL)
		return lr_store_id_valid(id)
			       ? lr__pg_fenced_write(st, 1, id, fence, 0,
						     progress_json,
						     cancel_requested, msg)
			       : lr_fail(msg, LR_STORE_ENOTFOUND, "job not found");
	return lr_fenced_write(
		st, "progress",
		"UPDATE jobs SET progress_json = ?5, updated_ms = ?3 "
		"WHERE id = ?1 AND fence = ?2 AND state = 'running' "
		"RETURNING cancel_requested",
		id, fence, 0, progress_json, 0, cancel_requested, msg);
}

int lr_store_job_requeue(lr_store *st, const char *id, int64_t fence,
			 lr_msg *msg)
{
	if (st->pg != NULL)
		return lr_store_id_valid(id)
			       ? lr__pg_fenced_write(st, 2, id, fence, 0,
						     LR_PROBLEM_CANCELED, NULL,
						     msg)
			       : lr_fail(msg, LR_STORE_ENOTFOUND, "job not found");
	return lr_fenced_write(
		st, "requeue",
		"UPDATE jobs SET "
		"state = CASE WHEN cancel_requested THEN 'canceled' "
		"  ELSE 'queued' END, "
		"attempts = CASE WHEN cancel_requested THEN attempts "
		"  ELSE max(attempts - 1, 0) END, "
		"finished_ms = CASE WHEN cancel_requested THEN ?3 END, "
		"error_json = CASE WHEN cancel_requested THEN ?5 END, "
		"lease_owner = NULL, lease_epoch = NULL, "
		"lease_expires_ms = NULL, updated_ms = ?3 "
		"WHERE id = ?1 AND fence = ?2 AND state = 'running' "
		"RETURNING cancel_requested",
		id, fence, 0, LR_PROBLEM_CANCELED, 1, NULL, msg);
}

int lr_store_job_cancel_check(lr_store *st, const char *id, int64_t fence,
			      int *flag, lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	int err, rc;

	if (!lr_store_id_valid(id))
		return lr_fail(msg, LR_STORE_ENOTFOUND, "job not found");
	if (st->pg != NULL)
		return lr__pg_cancel_check(st, id, fence, flag, msg);
	err = lr__prepare(st,
			  "SELECT cancel_requested FROM jobs WHERE id = ?1 "
			  "AND fence = ?2 AND state = 'running'",
			  &stmt, msg);
	if (err)
		return err;
	sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, fence);
	rc = lr__step(st, stmt);
	if (rc == SQLITE_ROW)
		*flag = sqlite3_column_int(stmt, 0);
	else if (rc == SQLITE_DONE)
		err = lr_fail(msg, LR_STORE_ESTALE,
			      "job %s is no longer running under fence %lld",
			      id, (long long)fence);
	else
		err = lr__db_fail(st, rc, msg, "cancel check");
	lr__finalize(st, stmt);
	return err;
}

/* 0 when blob `sha` exists, LR_STORE_ENOTFOUND otherwise. */
static int lr_blob_exists(lr_store *st, const char *sha, const char *what,
			  lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	int err, rc;

	if (!lr_store_sha_valid(sha))
		return lr_fail(msg, LR_EINVAL, "%s: not a SHA-256 hex digest",
			       what);
	err = lr__prepare(st, "SELECT 1 FROM blobs WHERE sha = ?1", &stmt,
			  msg);
	if (err)
		return err;
	sqlite3_bind_text(stmt, 1, sha, -1, SQLITE_STATIC);
	rc = lr__step(st, stmt);
	if (rc == SQLITE_DONE)
		err = lr_fail(msg, LR_STORE_ENOTFOUND, "%s blob %s not stored",
			      what, sha);
	else if (rc != SQLITE_ROW)
		err = lr__db_fail(st, rc, msg, "blob lookup");
	lr__finalize(st, stmt);
	return err;
}

int lr_store_job_finish(lr_store *st, const char *id, int64_t fence,
			const lr_store_job_result *res, lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	const char *error_json = res->error_json;
	int64_t now;
	int err, rc;

	if (!lr_store_id_valid(id))
		return lr_fail(msg, LR_STORE_ENOTFOUND, "job not found");
	switch (res->state) {
	case LR_JOB_STATE_SUCCEEDED:
		if (res->result_sha == NULL || res->error_json != NULL)
			return lr_fail(msg, LR_EINVAL,
				       "a succeeded job needs a result and no "
				       "error");
		break;
	case LR_JOB_STATE_FAILED:
	case LR_JOB_STATE_CANCELED:
		if (res->result_sha != NULL)
			return lr_fail(msg, LR_EINVAL,
				       "only a succeeded job has a result");
		if (error_json == NULL)
			error_json = res->state == LR_JOB_STATE_FAILED
					     ? LR_PROBLEM_FAILED
					     : LR_PROBLEM_CANCELED;
		break;
	default:
		return lr_fail(msg, LR_EINVAL, "finish needs a terminal state");
	}
	if (st->pg != NULL)
		return lr__pg_job_finish(st, id, fence, res, error_json, msg);
	err = lr__tx_begin(st, msg);
	if (err)
		return err;
	if (res->result_sha != NULL) {
		err = lr_blob_exists(st, res->result_sha, "result", msg);
		if (err)
			goto out;
	}
	if (res->report_sha != NULL) {
		err = lr_blob_exists(st, res->report_sha, "report", msg);
		if (err)
			goto out;
	}
	err = lr__prepare(st,
			  "UPDATE jobs SET state = ?3, finished_ms = ?4, "
			  "updated_ms = ?4, result_sha = ?5, report_sha = ?6, "
			  "error_json = ?7, lease_owner = NULL, "
			  "lease_epoch = NULL, lease_expires_ms = NULL "
			  "WHERE id = ?1 AND fence = ?2 AND state = 'running'",
			  &stmt, msg);
	if (err)
		goto out;
	now = lr_store_now_ms();
	sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, fence);
	sqlite3_bind_text(stmt, 3, lr_job_state_name(res->state), -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, now);
	lr__bind_text_or_null(stmt, 5, res->result_sha);
	lr__bind_text_or_null(stmt, 6, res->report_sha);
	lr__bind_text_or_null(stmt, 7, error_json);
	rc = lr__step(st, stmt);
	if (rc != SQLITE_DONE) {
		err = lr_write_fail(st, rc, msg, "finish");
		goto out;
	}
	if (sqlite3_changes(st->db) == 0) {
		err = lr_fail(msg, LR_STORE_ESTALE,
			      "finish: job %s is no longer running under "
			      "fence %lld",
			      id, (long long)fence);
		goto out;
	}
	lr__finalize(st, stmt);
	stmt = NULL;
	err = lr__outbox_add(st, id, 0, now, msg);
	if (err)
		goto out;
	LR__FAULT("finish-updated");
	return lr__tx_commit(st, msg);
out:
	lr__finalize(st, stmt);
	lr__tx_rollback(st);
	return err;
}

/* ---- client side: cancel, delete ------------------------------------ */

/* Reads the state of `tenant`'s job `id` inside the current transaction. */
static int lr_job_state_of(lr_store *st, const char *tenant, const char *id,
			   enum lr_job_state *state, lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	char name[16];
	int err, rc;

	err = lr__prepare(st,
			  "SELECT state FROM jobs WHERE id = ?1 AND tenant = ?2",
			  &stmt, msg);
	if (err)
		return err;
	sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, tenant, -1, SQLITE_STATIC);
	rc = lr__step(st, stmt);
	if (rc == SQLITE_ROW) {
		lr__col_copy(stmt, 0, name, sizeof(name));
		LR_ASSERT(lr_job_state_parse(name, state) == 0);
	} else if (rc == SQLITE_DONE) {
		err = lr_fail(msg, LR_STORE_ENOTFOUND, "job %s not found", id);
	} else {
		err = lr__db_fail(st, rc, msg, "read job state");
	}
	lr__finalize(st, stmt);
	return err;
}

int lr_store_job_cancel(lr_store *st, const char *tenant, const char *id,
			enum lr_job_state *state_out, lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	enum lr_job_state state;
	int err, rc;

	if (!lr_store_id_valid(id) || !lr_store_tenant_valid(tenant))
		return lr_fail(msg, LR_STORE_ENOTFOUND, "job not found");
	if (st->pg != NULL)
		return lr__pg_job_cancel(st, tenant, id, state_out, msg);
	err = lr__tx_begin(st, msg);
	if (err)
		return err;
	err = lr_job_state_of(st, tenant, id, &state, msg);
	if (err)
		goto out;
	if (state == LR_JOB_STATE_QUEUED) {
		err = lr__prepare(st,
				  "UPDATE jobs SET state = 'canceled', "
				  "cancel_requested = 1, finished_ms = ?2, "
				  "updated_ms = ?2, error_json = ?3 "
				  "WHERE id = ?1 AND state = 'queued'",
				  &stmt, msg);
		state = LR_JOB_STATE_CANCELED;
	} else if (state == LR_JOB_STATE_RUNNING) {
		err = lr__prepare(st,
				  "UPDATE jobs SET cancel_requested = 1, "
				  "updated_ms = ?2 "
				  "WHERE id = ?1 AND state = 'running' "
				  "AND cancel_requested = 0",
				  &stmt, msg);
	}
	if (err)
		goto out;
	if (stmt != NULL) {
		sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 2, lr_store_now_ms());
		if (sqlite3_bind_parameter_count(stmt) >= 3)
			sqlite3_bind_text(stmt, 3, LR_PROBLEM_CANCELED, -1,
					  SQLITE_STATIC);
		rc = lr__step(st, stmt);
		if (rc != SQLITE_DONE) {
			err = lr__db_fail(st, rc, msg, "cancel");
			goto out;
		}
		lr__finalize(st, stmt);
		stmt = NULL;
		if (state == LR_JOB_STATE_CANCELED) {
			err = lr__outbox_add(st, id, 0, lr_store_now_ms(), msg);
			if (err)
				goto out;
		}
	}
	err = lr__tx_commit(st, msg);
	if (err == 0 && state_out != NULL)
		*state_out = state;
	return err;
out:
	lr__finalize(st, stmt);
	lr__tx_rollback(st);
	return err;
}

int lr_store_job_delete(lr_store *st, const char *tenant, const char *id,
			lr_msg *msg)
{
	char shas[4][LR_STORE_SHA_LEN + 1];
	char gone[4][LR_STORE_SHA_LEN + 1];
	sqlite3_stmt *stmt = NULL;
	size_t i, n_gone = 0;
	int err, rc;
	enum lr_job_state state;

	if (!lr_store_id_valid(id) || !lr_store_tenant_valid(tenant))
		return lr_fail(msg, LR_STORE_ENOTFOUND, "job not found");
	if (st->pg != NULL)
		return lr__pg_job_delete(st, tenant, id, msg);
	err = lr__tx_begin(st, msg);
	if (err)
		return err;
	err = lr__prepare(st,
			  "DELETE FROM jobs WHERE id = ?1 AND tenant = ?2 AND "
			  "state IN ('succeeded', 'failed', 'canceled') "
			  "RETURNING model_sha, calib_sha, result_sha, report_sha",
			  &stmt, msg);
	if (err)
		goto out;
	sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, tenant, -1, SQLITE_STATIC);
	rc = lr__step(st, stmt);
	if (rc == SQLITE_DONE) {
		/* Missing, foreign, or not terminal: tell which. */
		lr__finalize(st, stmt);
		stmt = NULL;
		err = lr_job_state_of(st, tenant, id, &state, msg);
		if (err == 0)
			err = lr_fail(msg, LR_STORE_ECONFLICT,
				      "job %s is %s; cancel it before deleting",
				      id, lr_job_state_name(state));
		goto out;
	}
	if (rc != SQLITE_ROW) {
		err = lr__db_fail(st, rc, msg, "delete job");
		goto out;
	}
	for (i = 0; i < 4; i++)
		lr__col_copy(stmt, (int)i, shas[i], sizeof(shas[i]));
	rc = lr__step(st, stmt);
	if (rc != SQLITE_DONE) {
		err = lr__db_fail(st, rc, msg, "delete job");
		goto out;
	}
	lr__finalize(st, stmt);
	stmt = NULL;
	/* Drop the rows of blobs nothing uses any more, except fresh ones. */
	err = lr__prepare(st,
			  "DELETE FROM blobs WHERE sha = ?1 AND touched_ms < ?2 "
			  "AND NOT EXISTS (SELECT 1 FROM blob_owners o "
			  "  WHERE o.sha = ?1) "
			  "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE "
			  "  j.model_sha = ?1 OR j.calib_sha = ?1 OR "
			  "  j.result_sha = ?1 OR j.report_sha = ?1)",
			  &stmt, msg);
	if (err)
		goto out;
	for (i = 0; i < 4; i++) {
		if (shas[i][0] == '\0')
			continue;
		sqlite3_reset(stmt);
		sqlite3_bind_text(stmt, 1, shas[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 2,
				   lr_store_now_ms() - LR_STORE_BLOB_GRACE_MS);
		rc = lr__step(st, stmt);
		if (rc != SQLITE_DONE) {
			err = lr__db_fail(st, rc, msg, "delete blob row");
			goto out;
		}
		if (sqlite3_changes(st->db) > 0)
			memcpy(gone[n_gone++], shas[i], sizeof(shas[i]));
	}
	lr__finalize(st, stmt);
	stmt = NULL;
	err = lr__tx_commit(st, msg);
	if (err)
		return err;
	/* The job is gone; a failure to unlink only leaves files for the
	 * sweep, so it is not reported to the caller. */
	(void)lr__blob_unlink_orphans(st, gone, n_gone, NULL, NULL);
	return 0;
out:
	lr__finalize(st, stmt);
	lr__tx_rollback(st);
	return err;
}

/* ---- daemon side: recovery and counts ------------------------------- */

int lr_store_jobs_recover(lr_store *st, int64_t epoch,
			  lr_store_recover_report *rep, lr_msg *msg)
{
	/* "Dead": running under another epoch, or with an expired lease.
	 * Order matters: cancel wins over crash, crash over requeue. */
	static const char *const sql[3] = {
		"UPDATE jobs SET state = 'canceled', finished_ms = ?2, "
		"updated_ms = ?2, error_json = ?3, lease_owner = NULL, "
		"lease_epoch = NULL, lease_expires_ms = NULL "
		"WHERE state = 'running' AND (lease_epoch IS NOT ?1 OR "
		"lease_expires_ms <= ?2) AND cancel_requested = 1",
		"UPDATE jobs SET state = 'failed', finished_ms = ?2, "
		"updated_ms = ?2, error_json = ?4, lease_owner = NULL, "
		"lease_epoch = NULL, lease_expires_ms = NULL "
		"WHERE state = 'running' AND (lease_epoch IS NOT ?1 OR "
		"lease_expires_ms <= ?2) AND attempts >= max_attempts",
		"UPDATE jobs SET state = 'queued', updated_ms = ?2, "
		"lease_owner = NULL, lease_epoch = NULL, "
		"lease_expires_ms = NULL "
		"WHERE state = 'running' AND (lease_epoch IS NOT ?1 OR "
		"lease_expires_ms <= ?2)",
	};
	int64_t counts[3] = { 0, 0, 0 };
	sqlite3_stmt *stmt = NULL;
	int64_t now = lr_store_now_ms();
	int err, rc, i;

	if (st->pg != NULL)
		return lr__pg_jobs_recover(st, epoch, rep, msg);
	err = lr__tx_begin(st, msg);
	if (err)
		return err;
	for (i = 0; i < 3; i++) {
		err = lr__prepare(st, sql[i], &stmt, msg);
		if (err)
			goto out;
		sqlite3_bind_int64(stmt, 1, epoch);
		sqlite3_bind_int64(stmt, 2, now);
		/* Only the parameters a statement has are bound. */
		if (sqlite3_bind_parameter_count(stmt) >= 3)
			sqlite3_bind_text(stmt, 3, LR_PROBLEM_CANCELED, -1,
					  SQLITE_STATIC);
		if (sqlite3_bind_parameter_count(stmt) >= 4)
			sqlite3_bind_text(stmt, 4, LR_PROBLEM_CRASHED, -1,
					  SQLITE_STATIC);
		rc = lr__step(st, stmt);
		if (rc != SQLITE_DONE) {
			err = lr__db_fail(st, rc, msg, "recover jobs");
			goto out;
		}
		counts[i] = sqlite3_changes(st->db);
		lr__finalize(st, stmt);
		stmt = NULL;
	}
	/* The jobs just ended (canceled, failed) have finished_ms = now. */
	if (counts[0] + counts[1] > 0) {
		err = lr__outbox_add(st, NULL, now, now, msg);
		if (err)
			goto out;
	}
	err = lr__tx_commit(st, msg);
	if (err == 0 && rep != NULL) {
		rep->canceled = counts[0];
		rep->failed = counts[1];
		rep->requeued = counts[2];
	}
	return err;
out:
	lr__finalize(st, stmt);
	lr__tx_rollback(st);
	return err;
}

int lr_store_jobs_count(lr_store *st, int64_t counts[LR_JOB_STATE_COUNT],
			lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	enum lr_job_state s;
	char name[16];
	int err, rc, i;

	for (i = 0; i < LR_JOB_STATE_COUNT; i++)
		counts[i] = 0;
	if (st->pg != NULL)
		return lr__pg_jobs_count(st, counts, msg);
	err = lr__prepare(st, "SELECT state, count(*) FROM jobs GROUP BY state",
			  &stmt, msg);
	if (err)
		return err;
	while ((rc = lr__step(st, stmt)) == SQLITE_ROW) {
		lr__col_copy(stmt, 0, name, sizeof(name));
		if (lr_job_state_parse(name, &s) == 0)
			counts[s] = sqlite3_column_int64(stmt, 1);
	}
	if (rc != SQLITE_DONE)
		err = lr__db_fail(st, rc, msg, "count jobs");
	lr__finalize(st, stmt);
	return err;
}

int lr_store_tenant_active(lr_store *st, const char *tenant, int64_t *n,
			   lr_msg *msg)
{
	*n = 0;
	if (!lr_store_tenant_valid(tenant))
		return lr_fail(msg, LR_EINVAL, "invalid tenant name");
	if (st->pg != NULL)
		return lr__pg_tenant_active(st, tenant, n, msg);
	return lr_active_count(st, tenant, n, msg);
}
