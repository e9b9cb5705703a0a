/*
 * test_store_contention.c - many writers on one database (reliability Q2,
 * scaled for CI): worker threads in this process and in a forked second
 * process, each with its own connection, claim jobs and run them through
 * heartbeat, progress and finish, while a producer thread adds jobs and a
 * reader thread lists, reads and counts. Checks: every job claimed exactly
 * once (0 double claims), 0 errors and 0 SQLITE_BUSY surfaced (which would
 * be -ETIMEDOUT), every job succeeded with fence 1 and attempts 1, and
 * integrity_check ok. Sizes: LR_STORE_CONTENTION_JOBS (pre-queued jobs,
 * default 240; the producer adds a quarter more) and
 * LR_STORE_CONTENTION_THREADS (default 6; the child runs 2 more).
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "storage/store-int.h"
#include "tap.h"
#include "store_testlib.h"

#define CHILD_THREADS 2
#define MAX_THREADS 64

static char *dir;
static char model[LR_STORE_SHA_LEN + 1];
static int64_t epoch;
static atomic_int producer_done;
static atomic_int consumers_done;
static int in_child;

/* What one worker thread did. */
typedef struct worker {
	pthread_t thread;    /* the thread */
	char owner[32];      /* lease owner name */
	char (*ids)[33];     /* ids it claimed */
	size_t n, cap;       /* used and allocated ids */
	int errors;          /* calls that returned an error */
	int timeouts;        /* of which -ETIMEDOUT (busy surfaced) */
	double op_max_s;     /* slowest single call */
	int64_t calls;       /* store calls made */
	lr_msg msg;          /* first error message */
} worker;

static void note(worker *w, int err, double t0)
{
	double dt = lr_now() - t0;

	w->calls++;
	if (dt > w->op_max_s)
		w->op_max_s = dt;
	if (err) {
		w->errors++;
		if (err == -ETIMEDOUT)
			w->timeouts++;
	}
}

static void *consumer(void *arg)
{
	worker *w = arg;
	lr_store *st = NULL;
	lr_store_job job = { 0 };
	lr_store_job_result res = { .state = LR_JOB_STATE_SUCCEEDED,
				    .result_sha = model };
	int claimed, err, empty = 0, cancel;
	double t0;

	if (t_open(dir, &st, &w->msg) != 0) {
		w->errors++;
		return NULL;
	}
	for (;;) {
		t0 = lr_now();
		err = lr_store_job_claim(st, w->owner, epoch, 60000, &job,
					 &claimed, &w->msg);
		note(w, err, t0);
		if (err)
			continue;
		if (!claimed) {
			/* Done when the producer is done (parent) or after a
			 * few empty polls (child, which cannot see it). */
			if (in_child ? ++empty > 20
				     : atomic_load(&producer_done) && ++empty > 1)
				break;
			t_sleep_ms(5);
			continue;
		}
		empty = 0;
		if (w->n == w->cap) {
			w->cap = w->cap ? 2 * w->cap : 64;
			w->ids = realloc(w->ids, w->cap * sizeof(*w->ids));
		}
		memcpy(w->ids[w->n++], job.id, 33);
		t0 = lr_now();
		err = lr_store_job_heartbeat(st, job.id, job.fence, 60000,
					     &cancel, &w->msg);
		note(w, err, t0);
		t0 = lr_now();
		err = lr_store_job_progress(st, job.id, job.fence,
					    "{\"stage\":\"svd\"}", NULL,
					    &w->msg);
		note(w, err, t0);
		t0 = lr_now();
		err = lr_store_job_finish(st, job.id, job.fence, &res, &w->msg);
		note(w, err, t0);
		lr_store_job_fini(&job);
	}
	lr_store_close(st);
	return NULL;
}

typedef struct producer_arg {
	worker w;  /* error accounting */
	int jobs;  /* how many to add */
} producer_arg;

static void *producer(void *arg)
{
	producer_arg *p = arg;
	lr_store *st = NULL;
	lr_store_job_new nj = { .tenant = "t0", .spec_json = "{\"n\":2}",
				.model_sha = model };
	char id[33];
	int i, err;
	double t0;

	if (t_open(dir, &st, &p->w.msg) == 0) {
		for (i = 0; i < p->jobs; i++) {
			t0 = lr_now();
			err = lr_store_job_create(st, &nj, id, &p->w.msg);
			note(&p->w, err, t0);
		}
	} else {
		p->w.errors++;
	}
	lr_store_close(st);
	atomic_store(&producer_done, 1);
	return NULL;
}

/* Reads while others write: reads must never fail either. */
static void *reader(void *arg)
{
	worker *w = arg;
	lr_store *st = NULL;
	lr_store_job_page page = { 0 };
	int64_t counts[LR_JOB_STATE_COUNT], n;
	int err;
	double t0;

	if (t_open(dir, &st, &w->msg) != 0) {
		w->errors++;
		return NULL;
	}
	while (!atomic_load(&consumers_done)) {
		t0 = lr_now();
		err = lr_store_jobs_list(st, "t0", -1, 20, NULL, &page,
					 &w->msg);
		note(w, err, t0);
		if (err == 0 && page.count > 0) {
			lr_store_job j = { 0 };

			t0 = lr_now();
			err = lr_store_job_get(st, "t0", page.jobs[0].id, &j,
					       &w->msg);
			note(w, err, t0);
			lr_store_job_fini(&j);
		}
		lr_store_job_page_fini(&page);
		t0 = lr_now();
		err = lr_store_jobs_count(st, counts, &w->msg);
		note(w, err, t0);
		t0 = lr_now();
		err = lr_store_tenant_active(st, "t0", &n, &w->msg);
		note(w, err, t0);
		t_sleep_ms(1);
	}
	lr_store_close(st);
	return NULL;
}

/* Runs `n` consumers; returns the sums in *total. */
static void run_consumers(worker *ws, int n, const char *prefix)
{
	int i;

	for (i = 0; i < n; i++) {
		snprintf(ws[i].owner, sizeof(ws[i].owner), "%s-%d", prefix, i);
		pthread_create(&ws[i].thread, NULL, consumer, &ws[i]);
	}
}

/* The second process: CHILD_THREADS consumers; reports claimed ids and
 * error counts on fd as text lines. */
static int child_main(int fd)
{
	worker ws[CHILD_THREADS];
	FILE *f = fdopen(fd, "w");
	int i;
	size_t k;

	in_child = 1;
	memset(ws, 0, sizeof(ws));
	run_consumers(ws, CHILD_THREADS, "proc2");
	for (i = 0; i < CHILD_THREADS; i++) {
		pthread_join(ws[i].thread, NULL);
		for (k = 0; k < ws[i].n; k++)
			fprintf(f, "C %s\n", ws[i].ids[k]);
		fprintf(f, "E %d %d %.6f %lld\n", ws[i].errors, ws[i].timeouts,
			ws[i].op_max_s, (long long)ws[i].calls);
		if (ws[i].errors)
			fprintf(f, "M %s\n", ws[i].msg.text);
		free(ws[i].ids);
	}
	fclose(f);
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}


int main(void)
{
	const char *env_jobs = getenv("LR_STORE_CONTENTION_JOBS");
	const char *env_thr = getenv("LR_STORE_CONTENTION_THREADS");
	int jobs = env_jobs ? atoi(env_jobs) : 240;
	int nthreads = env_thr ? atoi(env_thr) : 6;
	worker ws[MAX_THREADS], rd;
	producer_arg prod;
	lr_store *st = NULL;
	lr_store_job_new nj = { .tenant = "t0", .spec_json = "{\"n\":1}" };
	char (*all)[33] = NULL, line[128], id[33];
	size_t n_all = 0, cap, k;
	int i, errors = 0, timeouts = 0, fds[2], status, dups = 0;
	int child_lines = 0;
	double t_start, t_total, op_max = 0, op_max_child = 0;
	int64_t calls = 0;
	pid_t pid;
	FILE *f;

	if (jobs < 1)
		jobs = 1;
	if (nthreads < 1 || nthreads > MAX_THREADS)
		nthreads = 6;
	dir = t_mkdtemp();
	if (t_open(dir, &st, NULL) != 0) {
		tap_ok(0, "open");
		return tap_done();
	}
	lr_store_epoch_begin(st, &epoch, NULL);
	t_put(st, "t0", "contention model", model);
	nj.model_sha = model;
	for (i = 0; i < jobs; i++)
		lr_store_job_create(st, &nj, id, NULL);
	st = lr_store_close(st); /* no connection crosses fork() */
	tap_diag("%d jobs queued, %d threads + a process with %d threads, "
		 "producer adds %d",
		 jobs, nthreads, CHILD_THREADS, jobs / 4);

	if (pipe(fds) != 0)
		return 1;
	fflush(stdout);
	t_start = lr_now();
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		_exit(child_main(fds[1]));
	}
	close(fds[1]);
	memset(ws, 0, sizeof(ws));
	memset(&prod, 0, sizeof(prod));
	memset(&rd, 0, sizeof(rd));
	prod.jobs = jobs / 4;
	run_consumers(ws, nthreads, "proc1");
	{
		pthread_t tp, tr;

		pthread_create(&tp, NULL, producer, &prod);
		pthread_create(&tr, NULL, reader, &rd);
		pthread_join(tp, NULL);
		for (i = 0; i < nthreads; i++)
			pthread_join(ws[i].thread, NULL);
		atomic_store(&consumers_done, 1);
		pthread_join(tr, NULL);
	}
	cap = (size_t)jobs * 2 + 16;
	all = calloc(cap, sizeof(*all));
	for (i = 0; i < nthreads; i++) {
		for (k = 0; k < ws[i].n && n_all < cap; k++)
			memcpy(all[n_all++], ws[i].ids[k], 33);
		errors += ws[i].errors;
		timeouts += ws[i].timeouts;
		calls += ws[i].calls;
		if (ws[i].op_max_s > op_max)
			op_max = ws[i].op_max_s;
		if (ws[i].errors)
			tap_diag("%s: %s", ws[i].owner, ws[i].msg.text);
		free(ws[i].ids);
	}
	errors += prod.w.errors + rd.errors;
	timeouts += prod.w.timeouts + rd.timeouts;
	calls += prod.w.calls + rd.calls;
	if (prod.w.errors)
		tap_diag("producer: %s", prod.w.msg.text);
	if (rd.errors)
		tap_diag("reader: %s", rd.msg.text);
	f = fdopen(fds[0], "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		int e, t;
		double m;
		long long c;

		if (sscanf(line, "C %32s", id) == 1 && n_all < cap) {
			memcpy(all[n_all++], id, 33);
			child_lines++;
		} else if (sscanf(line, "E %d %d %lf %lld", &e, &t, &m, &c) ==
			   4) {
			errors += e;
			timeouts += t;
			calls += c;
			if (m > op_max_child)
				op_max_child = m;
		} else if (line[0] == 'M') {
			tap_diag("child: %s", line + 2);
		}
	}
	if (f != NULL)
		fclose(f);
	waitpid(pid, &status, 0);
	t_total = lr_now() - t_start;

	qsort(all, n_all, sizeof(*all), cmp_id);
	for (k = 1; k < n_all; k++)
		if (strcmp(all[k - 1], all[k]) == 0)
			dups++;
	tap_diag("%zu claims (%d by the second process) in %.2f s: %.0f "
		 "jobs/s, %lld store calls; slowest call %.1f ms in this "
		 "process, %.1f ms in the second",
		 n_all, child_lines, t_total, (double)n_all / t_total,
		 (long long)calls, op_max * 1000, op_max_child * 1000);
	tap_diag("reader: %lld calls, slowest %.1f ms; producer: slowest "
		 "%.1f ms",
		 (long long)rd.calls, rd.op_max_s * 1000,
		 prod.w.op_max_s * 1000);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "second process exited cleanly");
	tap_ok(child_lines > 0, "the second process claimed jobs too (%d)",
	       child_lines);
	tap_ok(dups == 0, "0 double claims (%d)", dups);
	tap_ok(n_all == (size_t)(jobs + jobs / 4),
	       "every job claimed: %zu of %d", n_all, jobs + jobs / 4);
	tap_ok(timeouts == 0, "0 SQLITE_BUSY surfaced (%d)", timeouts);
	tap_ok(errors == 0, "0 errors from the store (%d)", errors);

	t_open(dir, &st, NULL);
	tap_ok(q_int(st, "SELECT count(*) FROM jobs WHERE state = 'succeeded' "
			 "AND fence = 1 AND attempts = 1") ==
		       jobs + jobs / 4,
	       "every job succeeded once, with fence 1 and attempts 1");
	tap_ok(q_int(st, "SELECT count(*) FROM jobs WHERE state != 'succeeded'") ==
		       0,
	       "no job in another state");
	tap_ok(lr_store_integrity_check(st, NULL) == 0, "integrity_check ok");
	lr_store_close(st);
	free(all);
	t_rmrf(dir);
	free(dir);
	return tap_done();
}
