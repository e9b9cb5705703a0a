/*
 * hooks.c - the webhook outbox and idempotency keys.
 *
 * DESIGN. Both are tables in the job database, so they share its
 * durability (WAL, synchronous=FULL) and its single-writer ordering.
 *
 * Outbox: lr__outbox_add() is called by jobs.c inside every transaction
 * that can make a job terminal; it is one INSERT ... SELECT from the job
 * row, which writes nothing unless the job is now terminal and its spec
 * has a string "notify_url". UNIQUE(job_id) with INSERT OR IGNORE makes it
 * idempotent, so recovery can call it for every job it ended at once. The
 * webhook-id is drawn by SQLite (randomblob) at insert and never changes,
 * so receivers can deduplicate retries. The delivery thread only reads due
 * rows and records attempts; a row whose attempt was in flight at kill -9
 * is still pending and is sent again after restart (at least once).
 *
 * Idempotency: a key moves free -> pending (held by one request) -> done
 * (answer recorded) and is forgotten after LR_STORE_IDEM_TTL_MS. Taking it
 * is one BEGIN IMMEDIATE transaction (drop the expired row, INSERT OR
 * IGNORE, read back), so two concurrent requests cannot both hold it. Job
 * creation marks the key done in the job's own transaction, so a crash
 * between the two cannot leave a job whose retry would create another.
 */
#include "config.h"

#include "storage/store-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- outbox ---------------------------------------------------------- */

int lr__outbox_add(lr_store *st, const char *id, int64_t finished_ms,
		   int64_t now, lr_msg *msg)
{
	/* ?1 = one job id, or NULL with ?2 = the finished_ms of the jobs a
	 * bulk transition (recovery) ended. */
	static const char *const sql =
		"INSERT OR IGNORE INTO webhook_outbox (id, job_id, tenant, "
		"event, url, event_ms, next_ms, created_ms, updated_ms) "
		"SELECT 'msg_' || lower(hex(randomblob(16))), id, tenant, "
		"'job.' || state, json_extract(spec_json, '$.notify_url'), "
		"finished_ms, ?3, ?3, ?3 FROM jobs "
		"WHERE (id = ?1 OR (?1 IS NULL AND finished_ms = ?2)) "
		"AND state IN ('succeeded', 'failed', 'canceled') "
		"AND json_type(spec_json, '$.notify_url') = 'text'";
	sqlite3_stmt *stmt = NULL;
	int err, rc;

	LR_ASSERT(st->in_write);
	if (st->pg != NULL)
		return lr__pg_outbox_add(st, id, finished_ms, now, msg);
	err = lr__prepare(st, sql, &stmt, msg);
	if (err)
		return err;
	lr__bind_text_or_null(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, finished_ms);
	sqlite3_bind_int64(stmt, 3, now);
	rc = lr__step(st, stmt);
	if (rc != SQLITE_DONE)
		err = lr__db_fail(st, rc, msg, "webhook outbox");
	lr__finalize(st, stmt);
	return err;
}

void lr_store_hook_fini(lr_store_hook *h)
{
	if (h == NULL)
		return;
	free(h->url);
	free(h->body);
	free(h->last_error);
	memset(h, 0, sizeof(*h));
}

void lr_store_hooks_free(lr_store_hook *h, size_t n)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		lr_store_hook_fini(&h[i]);
	free(h);
}

#define LR_HOOK_COLS \
	"id, job_id, tenant, event, url, body, event_ms, created_ms, " \
	"attempts, state, next_ms, last_status, last_error"

/* Fills *h from a row of LR_HOOK_COLS; *state from the last column. */
static int lr_hook_from_row(sqlite3_stmt *stmt, lr_store_hook *h, int *state)
{
	const unsigned char *url = sqlite3_column_text(stmt, 4);
	const unsigned char *body = sqlite3_column_text(stmt, 5);
	const unsigned char *s = sqlite3_column_text(stmt, 9);

	memset(h, 0, sizeof(*h));
	lr__col_copy(stmt, 0, h->id, sizeof(h->id));
	lr__col_copy(stmt, 1, h->job_id, sizeof(h->job_id));
	lr__col_copy(stmt, 2, h->tenant, sizeof(h->tenant));
	lr__col_copy(stmt, 3, h->event, sizeof(h->event));
	h->url = strdup(url != NULL ? (const char *)url : "");
	h->body = body != NULL ? strdup((const char *)body) : NULL;
	h->event_ms = sqlite3_column_int64(stmt, 6);
	h->created_ms = sqlite3_column_int64(stmt, 7);
	h->attempts = sqlite3_column_int(stmt, 8);
	h->next_ms = sqlite3_column_int64(stmt, 10);
	h->last_status = sqlite3_column_int(stmt, 11);
	if (sqlite3_column_type(stmt, 12) != SQLITE_NULL) {
		h->last_error = strdup((const char *)sqlite3_column_text(stmt, 12));
		if (h->last_error == NULL) {
			lr_store_hook_fini(h);
			return LR_ENOMEM;
		}
	}
	if (state != NULL)
		*state = s == NULL ? -1
			 : strcmp((const char *)s, "pending") == 0 ? 0
			 : strcmp((const char *)s, "delivered") == 0 ? 1 : 2;
	if (h->url == NULL || (body != NULL && h->body == NULL)) {
		lr_store_hook_fini(h);
		return LR_ENOMEM;
	}
	return 0;
}

int lr_store_hooks_due(lr_store *st, int64_t now_ms, size_t max, int64_t lease_ms,
		       lr_store_hook **out, size_t *n, lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	lr_store_hook *v = NULL;
	size_t k = 0;
	int err, rc;

	*out = NULL;
	*n = 0;
	if (max == 0)
		return 0;
	if (max > 1000)
		max = 1000;
	v = calloc(max, sizeof(*v));
	if (v == NULL)
		return lr_fail(msg, LR_ENOMEM, "out of memory");
	if (st->pg != NULL) {
		err = lr__pg_hooks_due(st, now_ms, max, lease_ms, v, &k, msg);
		if (err)
			goto out;
		if (k == 0) {
			free(v);
			return 0;
		}
		*out = v;
		*n = k;
		return 0;
	}
	err = lr__prepare(st,
			  "SELECT " LR_HOOK_COLS " FROM webhook_outbox "
			  "WHERE state = 'pending' AND next_ms <= ?1 "
			  "ORDER BY next_ms, id LIMIT ?2",
			  &stmt, msg);
	if (err)
		goto out;
	sqlite3_bind_int64(stmt, 1, now_ms);
	sqlite3_bind_int64(stmt, 2, (int64_t)max);
	while ((rc = lr__step(st, stmt)) == SQLITE_ROW) {
		err = lr_hook_from_row(stmt, &v[k], NULL);
		if (err) {
			lr_fail(msg, err, "out of memory");
			goto out;
		}
		k++;
	}
	if (rc != SQLITE_DONE) {
		err = lr__db_fail(st, rc, msg, "read webhook outbox");
		goto out;
	}
	lr__finalize(st, stmt);
	if (k == 0) {
		free(v);
		return 0;
	}
	*out = v;
	*n = k;
	return 0;
out:
	lr__finalize(st, stmt);
	lr_store_hooks_free(v, k);
	return err;
}

int lr_store_hook_of_job(lr_store *st, const char *job_id, lr_store_hook *h,
			 int *state, lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	int err, rc;

	memset(h, 0, sizeof(*h));
	if (!lr_store_id_valid(job_id))
		return lr_fail(msg, LR_STORE_ENOTFOUND, "job not found");
	if (st->pg != NULL)
		return lr__pg_hook_of_job(st, job_id, h, state, msg);
	err = lr__prepare(st,
			  "SELECT " LR_HOOK_COLS " FROM webhook_outbox "
			  "WHERE job_id = ?1",
			  &stmt, msg);
	if (err)
		return err;
	sqlite3_bind_text(stmt, 1, job_id, -1, SQLITE_STATIC);
	rc = lr__step(st, stmt);
	if (rc == SQLITE_ROW)
		err = lr_hook_from_row(stmt, h, state);
	else if (rc == SQLITE_DONE)
		err = lr_fail(msg, LR_STORE_ENOTFOUND,
			      "job %s has no webhook delivery", job_id);
	else
		err = lr__db_fail(st, rc, msg, "read webhook outbox");
	lr__finalize(st, stmt);
	return err;
}

int lr_store_hook_attempt(lr_store *st, const char *id, const char *body,
			  enum lr_hook_outcome outcome, int64_t next_ms,
			  int status, const char *error, lr_msg *msg)
{
	static const char *const names[] = { "delivered", "pending", "failed" };
	sqlite3_stmt *stmt = NULL;
	int err, rc;

	if (id == NULL || (int)outcome < 0 || outcome > LR_HOOK_FAILED)
		return lr_fail(msg, LR_EINVAL, "bad webhook attempt");
	if (st->pg != NULL)
		return lr__pg_hook_attempt(st, id, body, names[outcome],
					   next_ms, status, error, msg);
	err = lr__tx_begin(st, msg);
	if (err)
		return err;
	err = lr__prepare(st,
			  "UPDATE webhook_outbox SET attempts = attempts + 1, "
			  "state = ?2, next_ms = CASE WHEN ?2 = 'pending' THEN ?3 "
			  "  ELSE next_ms END, "
			  "last_status = ?4, last_error = ?5, updated_ms = ?6, "
			  "body = coalesce(body, ?7) "
			  "WHERE id = ?1 AND state = 'pending'",
			  &stmt, msg);
	if (err)
		goto out;
	sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, names[outcome], -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, next_ms);
	if (status > 0)
		sqlite3_bind_int(stmt, 4, status);
	else
		sqlite3_bind_null(stmt, 4);
	lr__bind_text_or_null(stmt, 5, error);
	sqlite3_bind_int64(stmt, 6, lr_store_now_ms());
	lr__bind_text_or_null(stmt, 7, body);
	rc = lr__step(st, stmt);
	if (rc != SQLITE_DONE) {
		err = lr__db_fail(st, rc, msg, "record webhook attempt");
		goto out;
	}
	if (sqlite3_changes(st->db) == 0) {
		err = lr_fail(msg, LR_STORE_ENOTFOUND,
			      "webhook %s is not pending", id);
		goto out;
	}
	lr__finalize(st, stmt);
	stmt = NULL;
	return lr__tx_commit(st, msg);
out:
	lr__finalize(st, stmt);
	lr__tx_rollback(st);
	return err;
}

int lr_store_hooks_count(lr_store *st, int64_t counts[3], lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	int err, rc;

	counts[0] = counts[1] = counts[2] = 0;
	if (st->pg != NULL)
		return lr__pg_hooks_count(st, counts, msg);
	err = lr__prepare(st,
			  "SELECT state, count(*) FROM webhook_outbox GROUP BY state",
			  &stmt, msg);
	if (err)
		return err;
	while ((rc = lr__step(st, stmt)) == SQLITE_ROW) {
		const unsigned char *s = sqlite3_column_text(stmt, 0);
		int i = s == NULL ? -1
			: strcmp((const char *)s, "pending") == 0 ? 0
			: strcmp((const char *)s, "delivered") == 0 ? 1 : 2;

		if (i >= 0)
			counts[i] = sqlite3_column_int64(stmt, 1);
	}
	if (rc != SQLITE_DONE)
		err = lr__db_fail(st, rc, msg, "count webhooks");
	lr__finalize(st, stmt);
	return err;
}

/* ---- idempotency ----------------------------------------------------- */

/* 1 when `k` is 1..LR_STORE_IDEM_KEY_MAX printable ASCII bytes. */
static int lr_idem_key_valid(const char *k)
{
	size_t i;

	if (k == NULL || k[0] == '\0')
		return 0;
	for (i = 0; k[i] != '\0'; i++)
		if (i >= LR_STORE_IDEM_KEY_MAX || k[i] < 0x20 || k[i] > 0x7e)
			return 0;
	return 1;
}

void lr_store_idem_fini(lr_store_idem *r)
{
	if (r == NULL)
		return;
	free(r->location);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

int lr_store_idem_begin(lr_store *st, const char *tenant, const char *key,
			lr_store_idem *r, lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	int64_t now = lr_store_now_ms();
	const unsigned char *t;
	int err, rc;

	memset(r, 0, sizeof(*r));
	if (!lr_store_tenant_valid(tenant) || !lr_idem_key_valid(key))
		return lr_fail(msg, LR_EINVAL, "invalid tenant or idempotency key");
	if (st->pg != NULL)
		return lr__pg_idem_begin(st, tenant, key, r, msg);
	err = lr__tx_begin(st, msg);
	if (err)
		return err;
	err = lr__prepare(st,
			  "DELETE FROM idempotency WHERE tenant = ?1 AND key = ?2 "
			  "AND created_ms < ?3",
			  &stmt, msg);
	if (err)
		goto out;
	sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, now - LR_STORE_IDEM_TTL_MS);
	rc = lr__step(st, stmt);
	if (rc != SQLITE_DONE) {
		err = lr__db_fail(st, rc, msg, "expire idempotency key");
		goto out;
	}
	lr__finalize(st, stmt);
	stmt = NULL;
	err = lr__prepare(st,
			  "INSERT OR IGNORE INTO idempotency (tenant, key, state, "
			  "created_ms) VALUES (?1, ?2, 'pending', ?3)",
			  &stmt, msg);
	if (err)
		goto out;
	sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, now);
	rc = lr__step(st, stmt);
	if (rc != SQLITE_DONE) {
		err = lr__db_fail(st, rc, msg, "take idempotency key");
		goto out;
	}
	lr__finalize(st, stmt);
	stmt = NULL;
	if (sqlite3_changes(st->db) == 1) {
		r->state = LR_IDEM_NEW;
		return lr__tx_commit(st, msg);
	}
	err = lr__prepare(st,
			  "SELECT state, fingerprint, status, resource, location, "
			  "body FROM idempotency WHERE tenant = ?1 AND key = ?2",
			  &stmt, msg);
	if (err)
		goto out;
	sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
	rc = lr__step(st, stmt);
	if (rc != SQLITE_ROW) {
		err = lr__db_fail(st, rc, msg, "read idempotency key");
		goto out;
	}
	t = sqlite3_column_text(stmt, 0);
	r->state = t != NULL && strcmp((const char *)t, "done") == 0
			   ? LR_IDEM_DONE : LR_IDEM_BUSY;
	lr__col_copy(stmt, 1, r->fingerprint, sizeof(r->fingerprint));
	r->status = sqlite3_column_int(stmt, 2);
	lr__col_copy(stmt, 3, r->resource, sizeof(r->resource));
	if ((t = sqlite3_column_text(stmt, 4)) != NULL)
		r->location = strdup((const char *)t);
	if ((t = sqlite3_column_text(stmt, 5)) != NULL)
		r->body = strdup((const char *)t);
	if ((sqlite3_column_type(stmt, 4) != SQLITE_NULL && r->location == NULL) ||
	    (sqlite3_column_type(stmt, 5) != SQLITE_NULL && r->body == NULL)) {
		err = lr_fail(msg, LR_ENOMEM, "out of memory");
		goto out;
	}
	lr__finalize(st, stmt);
	stmt = NULL;
	return lr__tx_commit(st, msg);
out:
	lr__finalize(st, stmt);
	lr__tx_rollback(st);
	lr_store_idem_fini(r);
	return err;
}

int lr__idem_mark_done(lr_store *st, const char *tenant, const char *key,
		       const char *fingerprint, int status,
		       const char *resource, const char *location,
		       const char *body, lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	int err, rc;

	LR_ASSERT(st->in_write);
	if (!lr_idem_key_valid(key) || !lr_store_sha_valid(fingerprint))
		return lr_fail(msg, LR_EINVAL, "invalid idempotency key or fingerprint");
	if (st->pg != NULL)
		return lr__pg_idem_mark_done(st, tenant, key, fingerprint,
					     status, resource, location, body,
					     msg);
	/* A pending key takes everything; a done one (created with its job)
	 * only gains the body. A key the sweep removed while its request
	 * was still running (an upload slower than tmp_age_ms) is written
	 * again; one another request took since then is left alone. */
	err = lr__prepare(st,
			  "INSERT INTO idempotency (tenant, key, state, fingerprint, "
			  "status, resource, location, body, created_ms) "
			  "VALUES (?1, ?2, 'done', ?3, ?4, ?5, ?6, ?7, ?8) "
			  "ON CONFLICT (tenant, key) DO UPDATE SET "
			  "fingerprint = CASE WHEN state = 'pending' THEN ?3 ELSE fingerprint END, "
			  "status = CASE WHEN state = 'pending' THEN ?4 ELSE status END, "
			  "resource = CASE WHEN state = 'pending' THEN ?5 ELSE resource END, "
			  "location = CASE WHEN state = 'pending' THEN ?6 ELSE location END, "
			  "body = coalesce(?7, body), state = 'done' "
			  "WHERE state = 'pending' OR fingerprint = ?3",
			  &stmt, msg);
	if (err)
		return err;
	sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, fingerprint, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 4, status);
	lr__bind_text_or_null(stmt, 5, resource);
	lr__bind_text_or_null(stmt, 6, location);
	lr__bind_text_or_null(stmt, 7, body);
	sqlite3_bind_int64(stmt, 8, lr_store_now_ms());
	rc = lr__step(st, stmt);
	if (rc != SQLITE_DONE)
		err = lr__db_fail(st, rc, msg, "record idempotency key");
	else if (sqlite3_changes(st->db) == 0)
		err = lr_fail(msg, LR_STORE_ENOTFOUND,
			      "idempotency key is not held by this request");
	lr__finalize(st, stmt);
	return err;
}

int lr_store_idem_complete(lr_store *st, const char *tenant, const char *key,
			   const char *fingerprint, int status,
			   const char *resource, const char *location,
			   const char *body, lr_msg *msg)
{
	int err;

	if (!lr_store_tenant_valid(tenant))
		return lr_fail(msg, LR_EINVAL, "invalid tenant name");
	err = lr__tx_begin(st, msg);
	if (err)
		return err;
	err = lr__idem_mark_done(st, tenant, key, fingerprint, status,
				 resource, location, body, msg);
	if (err) {
		lr__tx_rollback(st);
		return err;
	}
	return lr__tx_commit(st, msg);
}

int lr_store_idem_release(lr_store *st, const char *tenant, const char *key,
			  lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	int err, rc;

	if (!lr_store_tenant_valid(tenant) || !lr_idem_key_valid(key))
		return lr_fail(msg, LR_EINVAL, "invalid tenant or idempotency key");
	if (st->pg != NULL)
		return lr__pg_idem_release(st, tenant, key, msg);
	err = lr__tx_begin(st, msg);
	if (err)
		return err;
	err = lr__prepare(st,
			  "DELETE FROM idempotency WHERE tenant = ?1 AND key = ?2 "
			  "AND state = 'pending'",
			  &stmt, msg);
	if (err)
		goto out;
	sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
	rc = lr__step(st, stmt);
	if (rc != SQLITE_DONE) {
		err = lr__db_fail(st, rc, msg, "release idempotency key");
		goto out;
	}
	lr__finalize(st, stmt);
	stmt = NULL;
	return lr__tx_commit(st, msg);
out:
	lr__finalize(st, stmt);
	lr__tx_rollback(st);
	return err;
}

/* Runs one sweep DELETE with up to two int64 parameters; *deleted = rows. */
static int sweep_delete(lr_store *st, const char *sql, int64_t p1, int64_t p2, const char *what,
			int64_t *deleted, lr_msg *msg)
{
	sqlite3_stmt *stmt = NULL;
	int err, rc;

	err = lr__prepare(st, sql, &stmt, msg);
	if (err)
		return err;
	sqlite3_bind_int64(stmt, 1, p1);
	if (sqlite3_bind_parameter_count(stmt) >= 2)
		sqlite3_bind_int64(stmt, 2, p2);
	rc = lr__step(st, stmt);
	if (rc != SQLITE_DONE)
		err = lr__db_fail(st, rc, msg, what);
	else
		*deleted = sqlite3_changes(st->db);
	lr__finalize(st, stmt);
	return err;
}

int lr__hooks_sweep(lr_store *st, int64_t now, int64_t retention_ms,
		    int64_t tmp_age_ms, lr_store_sweep_report *rep,
		    lr_msg *msg)
{
	int err;

	LR_ASSERT(st->in_write);
	err = sweep_delete(st,
			   "DELETE FROM idempotency WHERE created_ms < ?1 OR "
			   "(state = 'pending' AND created_ms <= ?2)",
			   now - LR_STORE_IDEM_TTL_MS, now - tmp_age_ms, "sweep idempotency keys",
			   &rep->idem_deleted, msg);
	if (err == 0 && retention_ms > 0)
		err = sweep_delete(st,
				   "DELETE FROM webhook_outbox WHERE state != 'pending' "
				   "AND updated_ms < ?1",
				   now - retention_ms, 0, "sweep webhook outbox", &rep->hooks_deleted,
				   msg);
	return err;
}
