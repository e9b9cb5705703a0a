/*
 * worker.c - the solver threads.
 *
 * DESIGN. Each worker is a dedicated pthread (never libuv's shared pool:
 * a solve takes minutes) running at SCHED_IDLE, or nice 19 where that is
 * refused, so the HTTP threads keep answering while jobs use every core;
 * the engine's own threads inherit the policy. A worker owns one store
 * connection and loops: claim the oldest queued job (lease + fencing
 * token), load and check its inputs, run lr_compress with a progress
 * callback that stores progress at most twice a second, then store the
 * model and report as blobs and finish the job under its fence. The lease
 * is renewed by the loop thread (lr_workers_heartbeat), not by the
 * compute thread, so a long LAPACK call never lets it lapse. Stopping is
 * one flag per running job that lr_compress polls: a client's cancel ends
 * the job canceled; a graceful daemon stop requeues it without counting
 * the attempt, so the next start runs it again. Idle workers sleep on a
 * condition variable that lr_workers_kick() signals when the API queues a
 * job, with a timeout as a fallback for jobs requeued by recovery.
 *
 * Threads and what they touch: slots[i] (job id, fence, flags) is written
 * by worker i and read by the loop thread under `lock`; the cancel flags
 * are read by the solver without the lock (volatile int, set-only).
 */
#include "config.h"

#include "daemon/daemon.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "api/api.h"
#include "api/inputs.h"
#include "api/log.h"
#include "api/spec.h"
#include "solver/compress.h"

typedef struct slot {
	struct lr_workers *w;            /* back pointer */
	int index;                       /* worker number */
	pthread_t thread;                /* the worker thread */
	int started;                     /* 1 once the thread exists */
	char id[LR_STORE_ID_LEN + 1];    /* running job, "" when idle */
	int64_t fence;                   /* its fencing token */
	volatile int cancel;             /* stop the solver now */
	volatile int user_cancel;        /* the client asked to cancel */
	volatile int lost;               /* the job was taken from us (stale) */
	double last_progress;            /* monotonic seconds of last write */
	double renewed;                  /* monotonic seconds of the claim or
					    the last successful heartbeat */
	lr_store *st;                    /* this worker's connection */
	char owner[LR_STORE_OWNER_MAX + 1]; /* lease owner name */
} slot;

struct lr_workers {
	lr_workers_opts o;               /* copied options */
	char *state_dir;                 /* owned copy */
	pthread_mutex_t lock;            /* guards slots' ids, wake, stopping */
	pthread_cond_t wake;             /* signalled by lr_workers_kick */
	int kicks;                       /* pending kicks */
	int stopping;                    /* 1: finish up and exit */
	int joined;                      /* 1 once the threads are joined */
	slot *slots;                     /* o.count of them */
};

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void lower_priority(void)
{
	struct sched_param sp = { 0 };

	if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0 &&
	    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) != 0)
		lr_log(LR_LOG_WARNING, "cannot lower the worker's CPU priority", NULL);
}

static void on_progress(void *ud, const lr_progress *p)
{
	slot *s = ud;
	double now = mono();
	cJSON *o;
	char *text;
	int cancel = 0, rc;

	if (now - s->last_progress < 0.5 && p->fraction < 1.0)
		return;
	s->last_progress = now;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "stage", p->stage ? p->stage : "");
	cJSON_AddNumberToObject(o, "fraction", p->fraction);
	if (p->layer > 0) {
		cJSON_AddNumberToObject(o, "layer", p->layer);
		cJSON_AddNumberToObject(o, "layers", p->nlayers);
		if (p->layer_name)
			cJSON_AddStringToObject(o, "layer_name", p->layer_name);
	}
	if (p->eta_seconds >= 0)
		cJSON_AddNumberToObject(o, "eta_seconds", p->eta_seconds);
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (text == NULL)
		return;
	rc = lr_store_job_progress(s->st, s->id, s->fence, text, &cancel, NULL);
	free(text);
	if (rc == LR_STORE_ESTALE) {
		s->lost = 1;
		s->cancel = 1;
	} else if (rc == 0 && cancel) {
		s->user_cancel = 1;
		s->cancel = 1;
	}
}

/* Builds the error JSON {title, detail, code} for a failed job. */
static char *error_json(const char *code, const char *title, const char *detail)
{
	cJSON *o = cJSON_CreateObject();
	char *t;

	cJSON_AddStringToObject(o, "title", title);
	cJSON_AddStringToObject(o, "detail", detail);
	cJSON_AddStringToObject(o, "code", code);
	t = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return t;
}

static void fail_code(int rc, enum lr_inputs_fault fault, const char **code, const char **title)
{
	switch (rc) {
	case LR_EINVAL: *code = "invalid-spec"; *title = "Invalid job spec"; return;
	case LR_EMODEL: *code = "invalid-model"; *title = "Invalid model"; return;
	case LR_EUNSUPPORTED: *code = "unsupported-model"; *title = "Unsupported model"; return;
	case LR_ENPY: *code = "invalid-calibration"; *title = "Invalid calibration data"; return;
	case LR_ESHAPE: *code = "shape-mismatch"; *title = "Calibration does not fit the model"; return;
	case LR_ENUMERIC:
		*code = fault == LR_INPUTS_CALIB ? "invalid-calibration" : "numerical-failure";
		*title = "Numerical failure";
		return;
	case LR_ELAPACK: *code = "svd-no-convergence"; *title = "Decomposition failed"; return;
	case LR_ENOMEM: *code = "out-of-memory"; *title = "Out of memory"; return;
	default: *code = "internal"; *title = "Internal error"; return;
	}
}

/* Runs the claimed job in s->id; ends it in the store one way or another. */
static void run_job(slot *s, lr_store_job *job)
{
	lr_workers *w = s->w;
	lr_spec *spec = NULL;
	lr_model *m = NULL, *out = NULL;
	lr_tensor *calib = NULL;
	cJSON *report = NULL;
	lr_msg msg = { { 0 } };
	lr_store_job_result res;
	lr_store_blob_info model_blob, report_blob;
	enum lr_inputs_fault fault = LR_INPUTS_OK;
	char mpath[4200], cpath[4200], tcache[4200];
	uint8_t *packed = NULL;
	size_t packed_len = 0;
	char *rep_text = NULL, *err = NULL;
	const char *code = "internal", *title = "Internal error";
	double t0 = mono();
	int rc;

	memset(&res, 0, sizeof(res));
	lr_log(LR_LOG_INFO, "job started", "job_id", s->id, "worker", s->owner, NULL);
	rc = lr_spec_parse(job->spec_json, strlen(job->spec_json), &spec, &msg);
	if (rc == 0 && (lr_store_blob_path(s->st, job->model_sha, mpath, sizeof(mpath)) != 0 ||
			lr_store_blob_path(s->st, job->calib_sha, cpath, sizeof(cpath)) != 0))
		rc = lr_fail(&msg, LR_EIO, "the inputs could not be located");
	/* A torn file on a shared state_dir must not be computed on. */
	if (rc == 0) {
		lr_msg vm = { { 0 } };

		if (lr_store_blob_verify(s->st, job->model_sha, &vm) != 0 ||
		    (job->calib_sha[0] != '\0' &&
		     lr_store_blob_verify(s->st, job->calib_sha, &vm) != 0))
			rc = lr_fail(&msg, LR_EIO, "an input blob is damaged: %s", vm.text);
	}
	if (rc == 0)
		rc = lr_inputs_load(mpath, cpath, &m, &calib, &fault, &msg);
	if (rc == 0) {
		spec->opts.threads = w->o.engine_threads;
		spec->opts.memory_budget =
			(size_t)(spec->memory_mib > 0 ? spec->memory_mib : w->o.memory_mib) << 20;
		/* Measured timings are shared by all jobs of this daemon; each
		 * job reads and merges the file itself (solver/cost.h). */
		snprintf(tcache, sizeof(tcache), "%s/timing-cache.tsv", w->state_dir);
		spec->opts.timing_cache = tcache;
		/* Reports go to API clients: no server paths in them. */
		spec->opts.timing_cache_label = "the daemon's timing cache (state_dir/timing-cache.tsv)";
		spec->opts.progress = on_progress;
		spec->opts.progress_ud = s;
		spec->opts.cancel = (volatile int *)&s->cancel;
		rc = lr_compress(m, calib, &spec->opts, job->model_sha, job->calib_sha, &out,
				 &report, &msg);
	}
	if (s->lost) {
		lr_log(LR_LOG_WARNING, "job was taken over (lease lost); result dropped",
		       "job_id", s->id, NULL);
		goto out;
	}
	if (rc == LR_ECANCELED && !s->user_cancel) {
		rc = lr_store_job_requeue(s->st, s->id, s->fence, &msg);
		lr_log(rc == 0 ? LR_LOG_INFO : LR_LOG_WARNING, "job requeued (daemon stopping)",
		       "job_id", s->id, "error", rc ? msg.text : NULL, NULL);
		goto out;
	}
	if (rc == 0) {
		rc = lr_model_pack(out, &packed, &packed_len);
		if (rc == 0)
			rc = lr_store_blob_put(s->st, NULL, packed, packed_len, &model_blob, &msg);
		rep_text = rc == 0 ? cJSON_Print(report) : NULL;
		if (rc == 0 && rep_text != NULL)
			rc = lr_store_blob_put(s->st, NULL, rep_text, strlen(rep_text), &report_blob, &msg);
		if (rc == 0) {
			res.state = LR_JOB_STATE_SUCCEEDED;
			res.result_sha = model_blob.sha;
			res.report_sha = rep_text ? report_blob.sha : NULL;
		} else {
			lr_log(LR_LOG_ERR, "cannot store the job's result", "job_id", s->id,
			       "error", msg.text[0] ? msg.text : lr_strerror(rc), NULL);
			msg.text[0] = '\0';
			lr_fail(&msg, rc, "the result could not be stored");
		}
	}
	if (rc == LR_ECANCELED) {
		res.state = LR_JOB_STATE_CANCELED;
		err = error_json("canceled", "Canceled", "the job was canceled by request");
		res.error_json = err;
	} else if (rc != 0) {
		fail_code(rc, fault, &code, &title);
		res.state = LR_JOB_STATE_FAILED;
		err = error_json(code, title, msg.text[0] ? msg.text : lr_strerror(rc));
		res.error_json = err;
	}
	rc = lr_store_job_finish(s->st, s->id, s->fence, &res, &msg);
	if (rc != 0) {
		lr_log(LR_LOG_WARNING, "cannot finish the job", "job_id", s->id, "error",
		       msg.text[0] ? msg.text : lr_store_strerror(rc), NULL);
		goto out;
	}
	{
		char secs[32];

		snprintf(secs, sizeof(secs), "%.3f", mono() - t0);
		lr_log(res.state == LR_JOB_STATE_FAILED ? LR_LOG_WARNING : LR_LOG_INFO, "job finished",
		       "job_id", s->id, "state", lr_job_state_name(res.state), "seconds", secs,
		       "error", res.state == LR_JOB_STATE_FAILED ? msg.text : NULL, NULL);
		lr_api_observe_job((int)res.state, mono() - t0);
	}
out:
	free(err);
	free(rep_text);
	free(packed);
	cJSON_Delete(report);
	lr_model_free(out);
	lr_model_free(m);
	lr_tensor_free(calib);
	lr_spec_free(spec);
}

static void *worker_main(void *arg)
{
	slot *s = arg;
	lr_workers *w = s->w;
	lr_msg msg = { { 0 } };
	char host[64] = "host";

	lower_priority();
	gethostname(host, sizeof(host) - 1);
	snprintf(s->owner, sizeof(s->owner), "%.40s:%d:w%d", host, (int)getpid(), s->index);
	if (lr_store_open(w->state_dir, &s->st, &msg) != 0) {
		lr_log(LR_LOG_ERR, "worker cannot open the store", "error", msg.text, NULL);
		return NULL;
	}
	for (;;) {
		lr_store_job job;
		int claimed = 0, rc;

		pthread_mutex_lock(&w->lock);
		if (w->stopping) {
			pthread_mutex_unlock(&w->lock);
			break;
		}
		pthread_mutex_unlock(&w->lock);
		memset(&job, 0, sizeof(job));
		rc = lr_store_job_claim(s->st, s->owner, w->o.epoch, w->o.lease_ms, &job, &claimed, &msg);
		if (rc != 0)
			lr_log(LR_LOG_ERR, "claim failed", "error", msg.text, NULL);
		if (rc != 0 || !claimed) {
			struct timespec until;

			lr_store_job_fini(&job);
			if (rc == 0 && lr_store_is_shared()) {
				/* Other nodes queue jobs too: their NOTIFY (and
				 * ours) wakes this connection's LISTEN. Waits
				 * of 0.5 s keep a stop prompt; the claim every
				 * 2 s is the fallback for a lost notification. */
				for (int k = 0; k < 4; k++) {
					int stop;

					pthread_mutex_lock(&w->lock);
					stop = w->stopping || w->kicks > 0;
					pthread_mutex_unlock(&w->lock);
					if (stop || lr_store_wait(s->st, 500, NULL) != 0)
						break;
				}
				pthread_mutex_lock(&w->lock);
				if (w->kicks > 0)
					w->kicks--;
				pthread_mutex_unlock(&w->lock);
				continue;
			}
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 2;
			pthread_mutex_lock(&w->lock);
			while (!w->stopping && w->kicks == 0)
				if (pthread_cond_timedwait(&w->wake, &w->lock, &until) == ETIMEDOUT)
					break;
			if (w->kicks > 0)
				w->kicks--;
			pthread_mutex_unlock(&w->lock);
			continue;
		}
		pthread_mutex_lock(&w->lock);
		memcpy(s->id, job.id, sizeof(s->id));
		s->fence = job.fence;
		s->cancel = w->stopping;
		s->user_cancel = 0;
		s->lost = 0;
		s->last_progress = 0;
		s->renewed = mono();
		pthread_mutex_unlock(&w->lock);
		run_job(s, &job);
		pthread_mutex_lock(&w->lock);
		s->id[0] = '\0';
		pthread_mutex_unlock(&w->lock);
		lr_store_job_fini(&job);
	}
	s->st = lr_store_close(s->st);
	return NULL;
}

int lr_workers_start(const lr_workers_opts *o, lr_workers **out, lr_msg *msg)
{
	lr_workers *w = calloc(1, sizeof(*w));
	int rc = 0;

	*out = NULL;
	if (w == NULL)
		return LR_ENOMEM;
	w->o = *o;
	w->state_dir = strdup(o->state_dir);
	w->slots = calloc((size_t)o->count, sizeof(*w->slots));
	if (w->state_dir == NULL || w->slots == NULL) {
		free(w->state_dir);
		free(w->slots);
		free(w);
		return LR_ENOMEM;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	for (int i = 0; i < o->count; i++) {
		w->slots[i].w = w;
		w->slots[i].index = i;
		rc = -pthread_create(&w->slots[i].thread, NULL, worker_main, &w->slots[i]);
		if (rc != 0) {
			lr_fail(msg, rc, "cannot start worker thread %d", i);
			lr_workers_free(w);
			return rc;
		}
		w->slots[i].started = 1;
	}
	*out = w;
	return 0;
}

void lr_workers_kick(lr_workers *w)
{
	pthread_mutex_lock(&w->lock);
	w->kicks++;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

void lr_workers_heartbeat(lr_workers *w, lr_store *st, int cancel_only)
{
	for (int i = 0; i < w->o.count; i++) {
		slot *s = &w->slots[i];
		char id[LR_STORE_ID_LEN + 1];
		int64_t fence;
		int cancel = 0, rc;

		pthread_mutex_lock(&w->lock);
		memcpy(id, s->id, sizeof(id));
		fence = s->fence;
		pthread_mutex_unlock(&w->lock);
		if (id[0] == '\0')
			continue;
		if (cancel_only)
			rc = lr_store_job_cancel_check(st, id, fence, &cancel, NULL);
		else
			rc = lr_store_job_heartbeat(st, id, fence, w->o.lease_ms, &cancel, NULL);
		pthread_mutex_lock(&w->lock);
		if (strcmp(s->id, id) == 0 && s->fence == fence) {
			if (rc == LR_STORE_ESTALE) {
				s->lost = 1;
				s->cancel = 1;
			} else if (rc != 0 && !cancel_only && !s->lost &&
				   mono() - s->renewed > w->o.lease_ms / 1000.0) {
				/* The database did not renew the lease for a
				 * whole lease (e.g. unreachable): another node
				 * may recover the job now. Stop and write
				 * nothing (run_job drops a lost job). */
				s->lost = 1;
				s->cancel = 1;
				lr_log(LR_LOG_WARNING, "lease could not be renewed; stopping the job",
				       "job_id", id, "error", lr_store_strerror(rc), NULL);
			} else if (rc == 0 && !cancel_only) {
				s->renewed = mono();
			}
			if (rc == 0 && cancel) {
				s->user_cancel = 1;
				s->cancel = 1;
			}
		}
		pthread_mutex_unlock(&w->lock);
	}
}

int lr_workers_busy(lr_workers *w)
{
	int n = 0;

	pthread_mutex_lock(&w->lock);
	for (int i = 0; i < w->o.count; i++)
		n += w->slots[i].id[0] != '\0';
	pthread_mutex_unlock(&w->lock);
	return n;
}

void lr_workers_stop(lr_workers *w)
{
	if (w == NULL || w->joined)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = 1;
	for (int i = 0; i < w->o.count; i++)
		if (w->slots[i].id[0] != '\0')
			w->slots[i].cancel = 1;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	for (int i = 0; i < w->o.count; i++)
		if (w->slots[i].started)
			pthread_join(w->slots[i].thread, NULL);
	w->joined = 1;
}

void lr_workers_free(lr_workers *w)
{
	if (w == NULL)
		return;
	lr_workers_stop(w);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w->slots);
	free(w->state_dir);
	free(w);
}
