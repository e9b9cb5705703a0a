/*
 * test_store_hooks.c - the webhook outbox and idempotency keys on a real
 * SQLite database: every path into a terminal state (finish, cancel of a
 * queued job, requeue of a canceled one, recovery as canceled or crashed)
 * writes exactly one outbox row with a stable webhook-id, in the same
 * transaction (rolled back with it); jobs without notify_url write none;
 * attempts are recorded and the first body is frozen; idempotency keys go
 * free -> pending -> done, are per tenant, expire after 24 h, and are done
 * in the job's own transaction; the sweep removes expired ones.
 */
#include "config.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store-int.h"
#include "tap.h"
#include "store_testlib.h"

#define SPEC_HOOK "{\"speedup\":4,\"notify_url\":\"https://example.com/h\"}"
#define SPEC_PLAIN "{\"speedup\":4}"

static const char *fp_a =
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char *fp_b =
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

static int create(lr_store *st, const char *spec, const char *model,
		  char id[LR_STORE_ID_LEN + 1])
{
	lr_store_job_new nj = { .tenant = "alice", .spec_json = spec,
				.model_sha = model, .max_attempts = 1 };

	return lr_store_job_create(st, &nj, id, NULL);
}

static long long outbox_rows(lr_store *st)
{
	return q_int(st, "SELECT count(*) FROM webhook_outbox");
}

/* Claims the oldest queued job; returns its fence (0 on failure). */
static int64_t claim(lr_store *st, int64_t epoch, const char *want)
{
	lr_store_job job = { 0 };
	int claimed = 0;
	int64_t fence = 0;

	if (lr_store_job_claim(st, "t:1:w", epoch, 60000, &job, &claimed, NULL) == 0 &&
	    claimed && strcmp(job.id, want) == 0)
		fence = job.fence;
	lr_store_job_fini(&job);
	return fence;
}

static void test_outbox(lr_store *st, const char *model, int64_t epoch)
{
	char a[33], b[33], c[33], d[33], e[33], first_id[LR_STORE_HOOK_ID_MAX];
	lr_store_job_result ok = { LR_JOB_STATE_SUCCEEDED, NULL, NULL, NULL };
	lr_store_hook h, *due = NULL;
	int64_t fence, counts[3];
	size_t n = 0;
	int state = -1, err;

	memset(&h, 0, sizeof(h));
	ok.result_sha = model;
	/* finish */
	tap_ok(create(st, SPEC_HOOK, model, a) == 0, "job a with notify_url");
	fence = claim(st, epoch, a);
	tap_ok(fence > 0, "claim a");
	tap_ok(outbox_rows(st) == 0, "no outbox row while running");
	tap_ok(lr_store_job_finish(st, a, fence, &ok, NULL) == 0, "finish a");
	err = lr_store_hook_of_job(st, a, &h, &state, NULL);
	tap_ok(err == 0 && state == 0 && strcmp(h.event, "job.succeeded") == 0 &&
		       strcmp(h.url, "https://example.com/h") == 0 &&
		       strncmp(h.id, "msg_", 4) == 0 && strlen(h.id) == 36 &&
		       h.body == NULL && h.attempts == 0 && h.event_ms > 0,
	       "finish wrote one pending job.succeeded row (%s, %s)", h.id, h.event);
	snprintf(first_id, sizeof(first_id), "%s", h.id);
	lr_store_hook_fini(&h);

	/* no notify_url: no row */
	tap_ok(create(st, SPEC_PLAIN, model, b) == 0, "job b without notify_url");
	fence = claim(st, epoch, b);
	tap_ok(lr_store_job_finish(st, b, fence, &ok, NULL) == 0 && outbox_rows(st) == 1,
	       "a job without notify_url writes no row");

	/* cancel of a queued job */
	tap_ok(create(st, SPEC_HOOK, model, c) == 0 &&
		       lr_store_job_cancel(st, "alice", c, NULL, NULL) == 0,
	       "cancel queued job c");
	err = lr_store_hook_of_job(st, c, &h, &state, NULL);
	tap_ok(err == 0 && strcmp(h.event, "job.canceled") == 0, "cancel wrote job.canceled");
	lr_store_hook_fini(&h);
	tap_ok(lr_store_job_cancel(st, "alice", c, NULL, NULL) == 0 && outbox_rows(st) == 2,
	       "a second cancel of a terminal job writes nothing more");

	/* requeue of a running job with cancel requested */
	tap_ok(create(st, SPEC_HOOK, model, d) == 0, "job d");
	fence = claim(st, epoch, d);
	tap_ok(lr_store_job_cancel(st, "alice", d, NULL, NULL) == 0 && outbox_rows(st) == 2,
	       "cancel of running d only sets the flag: no row yet");
	tap_ok(lr_store_job_requeue(st, d, fence, NULL) == 0, "requeue d (graceful stop)");
	err = lr_store_hook_of_job(st, d, &h, &state, NULL);
	tap_ok(err == 0 && strcmp(h.event, "job.canceled") == 0,
	       "requeue of a canceled job wrote job.canceled");
	lr_store_hook_fini(&h);

	/* recovery: crashed (max_attempts 1) under an older epoch */
	tap_ok(create(st, SPEC_HOOK, model, e) == 0, "job e");
	fence = claim(st, epoch, e);
	if (t_pg()) /* PostgreSQL: the claimer's session is gone */
		t_exec(st, "SELECT pg_advisory_unlock_all()");
	tap_ok(fence > 0 && lr_store_jobs_recover(st, epoch + 1, NULL, NULL) == 0, "recover e");
	err = lr_store_hook_of_job(st, e, &h, &state, NULL);
	tap_ok(err == 0 && strcmp(h.event, "job.failed") == 0,
	       "recovery of a crashed job wrote job.failed");
	lr_store_hook_fini(&h);
	tap_ok(outbox_rows(st) == 4, "4 rows for the 4 jobs that ended with a notify_url");

	/* same transaction: a finish rolled back leaves no row */
	{
		char f[33];

		tap_ok(create(st, SPEC_HOOK, model, f) == 0, "job f");
		fence = claim(st, epoch + 1, f);
		ok.report_sha = "0000000000000000000000000000000000000000000000000000000000000000";
		err = lr_store_job_finish(st, f, fence, &ok, NULL);
		ok.report_sha = NULL;
		tap_ok(err == LR_STORE_ENOTFOUND && outbox_rows(st) == 4,
		       "a failed finish (missing report) writes no row (%d)", err);
		tap_ok(lr_store_job_finish(st, f, fence, &ok, NULL) == 0 && outbox_rows(st) == 5,
		       "the finish that commits writes it");
	}

	/* due rows and attempts */
	tap_ok(lr_store_hooks_due(st, lr_store_now_ms(), 100, 0, &due, &n, NULL) == 0 && n == 5,
	       "5 rows due (%zu)", n);
	lr_store_hooks_free(due, n);
	err = lr_store_hook_attempt(st, first_id, "{\"v\":1}", LR_HOOK_RETRY,
				    lr_store_now_ms() + 3600000, 500, "HTTP 500", NULL);
	tap_ok(err == 0, "record a failed attempt");
	tap_ok(lr_store_hooks_due(st, lr_store_now_ms(), 100, 0, &due, &n, NULL) == 0 && n == 4,
	       "the retried row is not due before next_ms");
	lr_store_hooks_free(due, n);
	tap_ok(lr_store_hooks_due(st, lr_store_now_ms() + 3600001, 100, 0, &due, &n, NULL) == 0 &&
		       n == 5,
	       "it is due after next_ms");
	for (size_t i = 0; i < n; i++)
		if (strcmp(due[i].id, first_id) == 0) {
			tap_ok(due[i].attempts == 1 && due[i].body != NULL &&
				       strcmp(due[i].body, "{\"v\":1}") == 0,
			       "same webhook-id, 1 attempt, body frozen");
			tap_ok(due[i].last_status == 500 && due[i].last_error != NULL &&
				       strcmp(due[i].last_error, "HTTP 500") == 0 &&
				       due[i].next_ms > lr_store_now_ms() + 3500000,
			       "the row keeps the last status, error and next attempt (%d, %s)",
			       due[i].last_status, due[i].last_error ? due[i].last_error : "NULL");
		}
	lr_store_hooks_free(due, n);
	err = lr_store_hook_attempt(st, first_id, "{\"v\":2}", LR_HOOK_DELIVERED, 0, 204, NULL, NULL);
	tap_ok(err == 0, "record delivery");
	err = lr_store_hook_of_job(st, a, &h, &state, NULL);
	tap_ok(err == 0 && state == 1 && h.attempts == 2 && strcmp(h.body, "{\"v\":1}") == 0 &&
		       strcmp(h.id, first_id) == 0,
	       "delivered after 2 attempts; the first body stays");
	tap_ok(err == 0 && h.last_status == 204 && h.last_error == NULL,
	       "the delivery's status replaces the failure's, and the error is cleared (%d, %s)",
	       h.last_status, h.last_error ? h.last_error : "NULL");
	lr_store_hook_fini(&h);
	tap_ok(lr_store_hook_attempt(st, first_id, NULL, LR_HOOK_RETRY, 0, 0, NULL, NULL) ==
		       LR_STORE_ENOTFOUND,
	       "a delivered row takes no more attempts");
	tap_ok(lr_store_hooks_count(st, counts, NULL) == 0 && counts[0] == 4 && counts[1] == 1 &&
		       counts[2] == 0,
	       "counts: 4 pending, 1 delivered");
	/* deleting the job keeps its delivery */
	tap_ok(lr_store_job_delete(st, "alice", c, NULL) == 0 &&
		       lr_store_hook_of_job(st, c, &h, &state, NULL) == 0,
	       "deleting a job keeps its pending delivery");
	lr_store_hook_fini(&h);
}

static void test_idem(lr_store *st, const char *model)
{
	lr_store_idem r = { 0 };
	lr_store_job_new nj = { .tenant = "alice", .spec_json = SPEC_PLAIN,
				.model_sha = model, .max_attempts = 1 };
	char id[33];
	long long njobs;
	int err;

	err = lr_store_idem_begin(st, "alice", "k1", &r, NULL);
	tap_ok(err == 0 && r.state == LR_IDEM_NEW, "a new key is taken");
	lr_store_idem_fini(&r);
	err = lr_store_idem_begin(st, "alice", "k1", &r, NULL);
	tap_ok(err == 0 && r.state == LR_IDEM_BUSY, "the same key in flight is busy");
	lr_store_idem_fini(&r);
	err = lr_store_idem_begin(st, "bob", "k1", &r, NULL);
	tap_ok(err == 0 && r.state == LR_IDEM_NEW, "keys are per tenant");
	lr_store_idem_fini(&r);
	tap_ok(lr_store_idem_release(st, "alice", "k1", NULL) == 0, "release");
	err = lr_store_idem_begin(st, "alice", "k1", &r, NULL);
	tap_ok(err == 0 && r.state == LR_IDEM_NEW, "a released key can be taken again");
	lr_store_idem_fini(&r);
	/* done in the job's transaction */
	nj.idem_key = "k1";
	nj.idem_fingerprint = fp_a;
	tap_ok(lr_store_job_create(st, &nj, id, NULL) == 0, "create a job holding k1");
	err = lr_store_idem_begin(st, "alice", "k1", &r, NULL);
	tap_ok(err == 0 && r.state == LR_IDEM_DONE && r.status == 202 &&
		       strcmp(r.resource, id) == 0 && strcmp(r.fingerprint, fp_a) == 0 &&
		       r.body == NULL && r.location != NULL && strstr(r.location, id) != NULL,
	       "the job's transaction marked k1 done (202, the job)");
	lr_store_idem_fini(&r);
	tap_ok(lr_store_idem_complete(st, "alice", "k1", fp_a, 202, id, NULL, "{\"x\":1}", NULL) == 0,
	       "the body is added after");
	tap_ok(lr_store_idem_complete(st, "alice", "k1", fp_b, 201, id, NULL, "{}", NULL) ==
		       LR_STORE_ENOTFOUND,
	       "another fingerprint cannot overwrite a done key");
	err = lr_store_idem_begin(st, "alice", "k1", &r, NULL);
	tap_ok(err == 0 && r.state == LR_IDEM_DONE && r.body && strcmp(r.body, "{\"x\":1}") == 0,
	       "replay record has the body");
	lr_store_idem_fini(&r);
	tap_ok(lr_store_idem_release(st, "alice", "k1", NULL) == 0 &&
		       q_int(st, "SELECT count(*) FROM idempotency WHERE key = 'k1' AND "
				 "tenant = 'alice'") == 1,
	       "release leaves a done key alone");
	/* a job create whose key is done for another request fails and
	 * rolls back */
	nj.idem_fingerprint = fp_b;
	njobs = q_int(st, "SELECT count(*) FROM jobs");
	tap_ok(lr_store_job_create(st, &nj, id, NULL) == LR_STORE_ENOTFOUND &&
		       q_int(st, "SELECT count(*) FROM jobs") == njobs,
	       "a create whose key is done for another request creates nothing");
	/* a key swept while its (slow) request ran is written again */
	nj.idem_key = "swept";
	nj.idem_fingerprint = fp_a;
	tap_ok(lr_store_job_create(st, &nj, id, NULL) == 0 &&
		       q_int(st, "SELECT count(*) FROM idempotency WHERE key = 'swept' AND "
				 "state = 'done'") == 1,
	       "a create whose key was swept meanwhile records it again");
	nj.idem_key = "k1";
	tap_ok(lr_store_idem_begin(st, "alice", "bad\nkey", &r, NULL) == LR_EINVAL,
	       "a key with control characters is refused");
	/* expiry: age k1 past 24 h */
	t_exec(st, "UPDATE idempotency SET created_ms = created_ms - 86400001 "
			     "WHERE key = 'k1' AND tenant = 'alice'");
	err = lr_store_idem_begin(st, "alice", "k1", &r, NULL);
	tap_ok(err == 0 && r.state == LR_IDEM_NEW, "a key older than 24 h is free again");
	lr_store_idem_fini(&r);
	{
		lr_store_sweep_opts o = { 0, 0 };
		lr_store_sweep_report rep;

		memset(&rep, 0, sizeof(rep));
		t_exec(st, "UPDATE idempotency SET created_ms = created_ms - 86400001 "
				     "WHERE tenant = 'bob'");
		o.tmp_age_ms = 3600000;
		tap_ok(lr_store_sweep(st, &o, &rep, NULL) == 0 && rep.idem_deleted == 1,
		       "the sweep removes expired keys (%lld)", (long long)rep.idem_deleted);
		o.tmp_age_ms = 0;
		tap_ok(lr_store_sweep(st, &o, &rep, NULL) == 0 && rep.idem_deleted == 1 &&
			       q_int(st, "SELECT count(*) FROM idempotency WHERE state = 'pending'") == 0,
		       "the startup sweep drops pending keys of dead requests");
	}
}

/*
 * Claiming: on PostgreSQL a second node's read skips the rows the first
 * claimed until the lease runs out; SQLite (one node) does not claim.
 */
static void test_claim(const char *dir, lr_store *st)
{
	lr_store *st2 = NULL;
	lr_store_hook *a = NULL, *b = NULL, *c = NULL;
	size_t na = 0, nb = 0, nc = 0;
	int64_t now = lr_store_now_ms() + 2 * 3600000, lease = 60000;
	int ok2;

	if (!tap_ok(t_open(dir, &st2, NULL) == 0, "a second connection (another node)"))
		return;
	ok2 = lr_store_hooks_due(st, now, 100, lease, &a, &na, NULL) == 0 &&
	      lr_store_hooks_due(st2, now, 100, lease, &b, &nb, NULL) == 0;
	tap_ok(ok2 && na == 4, "the first node gets the 4 due rows (%zu)", na);
	if (t_pg()) {
		int leased = 1;

		for (size_t i = 0; i < na; i++)
			leased &= a[i].next_ms == now + lease;
		tap_ok(nb == 0 && leased, "PostgreSQL: claimed until now + lease, the second node gets none (%zu)",
		       nb);
		tap_ok(lr_store_hooks_due(st2, now + lease + 1, 100, lease, &c, &nc, NULL) == 0 && nc == 4,
		       "after the lease the rows are due again, on any node (%zu)", nc);
	} else {
		tap_ok(nb == na, "SQLite: one node, nothing claimed (%zu)", nb);
	}
	lr_store_hooks_free(a, na);
	lr_store_hooks_free(b, nb);
	lr_store_hooks_free(c, nc);
	lr_store_close(st2);
}

int main(void)
{
	char *dir = t_mkdtemp();
	char model[LR_STORE_SHA_LEN + 1];
	lr_store *st = NULL;
	int64_t epoch = 0;

	if (t_open(dir, &st, NULL) != 0 || lr_store_epoch_begin(st, &epoch, NULL) != 0) {
		tap_ok(0, "open");
		return tap_done();
	}
	tap_ok(q_int(st, t_pg() ? "SELECT max(version) FROM lr_schema" : "PRAGMA user_version") == 2, "schema version 2");
	t_put(st, "alice", "model", model);
	test_outbox(st, model, epoch);
	test_claim(dir, st);
	test_idem(st, model);
	lr_store_close(st);
	t_rmrf(dir);
	free(dir);
	return tap_done();
}
