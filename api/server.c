/*
 * server.c - the libmicrohttpd side of the API: limits, the request life
 * cycle, routing, auth, answers, metrics, health and the OpenAPI document.
 *
 * DESIGN. libmicrohttpd runs a pool of http_threads threads, each with its
 * own epoll loop, with every limit set explicitly (total and per-address
 * connections, idle timeout, strict request parsing), because its defaults
 * are "unlimited". A request is handled in the access handler, which MHD
 * calls once when the headers are in and again for each piece of body.
 * The first call does everything that needs no body: it assigns a request
 * id, routes, authenticates (Bearer token -> tenant, constant time),
 * rejects duplicate Content-Length and Content-Length with
 * Transfer-Encoding (request smuggling), and refuses oversized bodies with
 * 413, uploads past the tenant's quota with 507 and excess concurrent
 * uploads with 503 before a single body byte is stored. Such an early
 * answer goes out at once to a client that waits for 100 Continue (it
 * then sends no body); any other client is still sending, so the answer is
 * held and the body read and discarded first (lr__api_queue), because
 * closing a socket with unread data resets the connection and the client
 * loses the answer. Body calls stream into the handler (api/jobs.c), which
 * writes to the blob store and never buffers more than a small JSON text.
 * Any failure found mid-body is remembered and answered when the body
 * ends, except size overruns, which drop the connection. Every error is an RFC
 * 9457 problem with a detail that names the field but never a path; the
 * internal message goes to the log under the same request id. Each HTTP
 * thread opens its own store connection on first use (a pthread key closes
 * it when the thread exits). Event streams suspend their connection when
 * there is nothing new, and lr_api_tick() resumes them all.
 */
#include "config.h"

#include "api/api-int.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "api/log.h"
#include "api/range.h"
#include "api/ui.h"

/* The OpenAPI document, compiled in from api/openapi.yaml. */
__asm__(".section .rodata\n"
	".global lr_openapi_yaml\n"
	".type lr_openapi_yaml, @object\n"
	"lr_openapi_yaml:\n"
	".incbin \"" LR_OPENAPI_PATH "\"\n"
	".global lr_openapi_yaml_end\n"
	"lr_openapi_yaml_end:\n"
	".byte 0\n"
	".previous\n");
extern const char lr_openapi_yaml[], lr_openapi_yaml_end[];

atomic_llong lr__metric_upload_bytes;
atomic_llong lr__metric_jobs_submitted;
static atomic_llong metric_http[6][100];   /* requests by status class and rest */
static atomic_llong metric_jobs_finished[5]; /* by terminal state */
static const double job_buckets[] = { 1, 5, 15, 60, 300, 900, 3600, 14400 };
#define NBUCKETS (sizeof(job_buckets) / sizeof(job_buckets[0]))
static atomic_llong metric_job_bucket[NBUCKETS + 1];
static atomic_llong metric_job_count;
static _Atomic double metric_job_sum;

void lr_api_observe_job(int outcome, double seconds)
{
	size_t b = 0;
	double cur;

	if (outcome >= 0 && outcome < 5)
		atomic_fetch_add(&metric_jobs_finished[outcome], 1);
	while (b < NBUCKETS && seconds > job_buckets[b])
		b++;
	atomic_fetch_add(&metric_job_bucket[b], 1);
	atomic_fetch_add(&metric_job_count, 1);
	cur = atomic_load(&metric_job_sum);
	while (!atomic_compare_exchange_weak(&metric_job_sum, &cur, cur + seconds))
		;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void lr__api_time(int64_t ms, char *buf, size_t len)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(ms % 1000));
}

static void store_destroy(void *p)
{
	lr_store_close(p);
}

lr_store *lr__api_store(lr_api *a)
{
	lr_store *st = pthread_getspecific(a->store_key);
	lr_msg msg = { { 0 } };
	int rc;

	if (st != NULL)
		return st;
	rc = lr_store_open(a->state_dir, &st, &msg);
	if (rc != 0) {
		lr_log(LR_LOG_ERR, "cannot open the store on an HTTP thread", "error",
		       msg.text[0] ? msg.text : lr_strerror(rc), NULL);
		return NULL;
	}
	pthread_setspecific(a->store_key, st);
	return st;
}

/* 1 when an answer must wait for the end of the body (see api-int.h). */
static int must_hold(const lr_req *r)
{
	if (r->body_done || r->declared == 0)
		return 0;
	if (r->in_first && (r->expect_continue || r->declared > LR_DRAIN_MAX))
		return 0; /* MHD answers instead of 100 Continue, then closes */
	return 1;
}

enum MHD_Result lr__api_queue(lr_req *r, unsigned status, struct MHD_Response *resp)
{
	enum MHD_Result ret;

	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "X-Request-Id", r->rid);
	if (r->held != NULL) { /* answered already: the first answer wins */
		MHD_destroy_response(resp);
		return MHD_YES;
	}
	r->status = (int)status;
	if (must_hold(r)) {
		r->held = resp;
		r->held_status = status;
		return MHD_YES;
	}
	ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Queues the held answer once the whole body has been read. */
static enum MHD_Result release_held(lr_req *r)
{
	struct MHD_Response *resp = r->held;
	enum MHD_Result ret;

	r->held = NULL;
	ret = MHD_queue_response(r->conn, r->held_status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static struct MHD_Response *text_response(const char *text, size_t len, const char *ctype)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)text,
								    MHD_RESPMEM_MUST_COPY);

	if (resp != NULL)
		MHD_add_response_header(resp, "Content-Type", ctype);
	return resp;
}

static enum MHD_Result queue_printed(lr_req *r, unsigned status, char *text,
				     const char *ctype, va_list ap)
{
	struct MHD_Response *resp;
	const char *k, *v;

	if (text == NULL)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", ctype);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		if (v != NULL)
			MHD_add_response_header(resp, k, v);
	}
	return lr__api_queue(r, status, resp);
}

enum MHD_Result lr__api_json(lr_req *r, unsigned status, cJSON *body, ...)
{
	enum MHD_Result ret;
	char *text = body ? cJSON_PrintUnformatted(body) : NULL;
	va_list ap;

	cJSON_Delete(body);
	if (text == NULL)
		return MHD_NO;
	{
		/* One trailing newline: friendlier for curl users. */
		size_t n = strlen(text);
		char *t2 = realloc(text, n + 2);

		if (t2 != NULL) {
			text = t2;
			text[n] = '\n';
			text[n + 1] = '\0';
		}
	}
	va_start(ap, body);
	ret = queue_printed(r, status, text, "application/json", ap);
	va_end(ap);
	return ret;
}

static const char *problem_title(const char *slug)
{
	static const char *const t[][2] = {
		{ "bad-request", "Bad request" },
		{ "unauthorized", "Unauthorized" },
		{ "not-found", "Not found" },
		{ "method-not-allowed", "Method not allowed" },
		{ "payload-too-large", "Content too large" },
		{ "unsupported-media-type", "Unsupported media type" },
		{ "invalid-spec", "Invalid job spec" },
		{ "invalid-model", "Invalid model" },
		{ "unsupported-model", "Unsupported model" },
		{ "invalid-calibration", "Invalid calibration data" },
		{ "shape-mismatch", "Calibration does not fit the model" },
		{ "digest-mismatch", "Digest mismatch" },
		{ "queue-full", "Too many queued jobs" },
		{ "busy", "Too many uploads in progress" },
		{ "job-not-finished", "Job not finished" },
		{ "not-ready", "Not ready" },
		{ "no-result", "No result" },
		{ "insufficient-storage", "Insufficient storage" },
		{ "internal", "Internal error" },
		{ "idempotency-key-in-use", "Idempotency key in use" },
		{ "idempotency-key-reused", "Idempotency key reused" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i][0], slug) == 0)
			return t[i][1];
	return "Error";
}

static enum MHD_Result problem_v(lr_req *r, unsigned status, const char *slug,
				 const char *detail, const char *retry_after,
				 const char *www_auth, const char *allow)
{
	cJSON *p = cJSON_CreateObject();
	char type[96], *text;
	const char *url = NULL;

	lr__idem_release(r); /* this answer is final: the key is free for a retry */
	snprintf(type, sizeof(type), "https://lowrankd.invalid/problems/%s", slug);
	cJSON_AddStringToObject(p, "type", type);
	cJSON_AddStringToObject(p, "title", problem_title(slug));
	cJSON_AddNumberToObject(p, "status", status);
	cJSON_AddStringToObject(p, "detail", detail);
	url = r->route_name;
	if (url != NULL)
		cJSON_AddStringToObject(p, "instance", url);
	cJSON_AddStringToObject(p, "request_id", r->rid);
	text = cJSON_PrintUnformatted(p);
	cJSON_Delete(p);
	lr_log(status >= 500 ? LR_LOG_ERR : LR_LOG_DEBUG, "problem", "request_id", r->rid,
	       "type", slug, "detail", detail, NULL);
	{
		enum MHD_Result ret;
		struct MHD_Response *resp;

		if (text == NULL)
			return MHD_NO;
		resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
		if (resp == NULL) {
			free(text);
			return MHD_NO;
		}
		MHD_add_response_header(resp, "Content-Type", "application/problem+json");
		MHD_add_response_header(resp, "Cache-Control", "no-store");
		if (retry_after)
			MHD_add_response_header(resp, "Retry-After", retry_after);
		if (www_auth)
			MHD_add_response_header(resp, "WWW-Authenticate", www_auth);
		if (allow)
			MHD_add_response_header(resp, "Allow", allow);
		ret = lr__api_queue(r, status, resp);
		return ret;
	}
}

enum MHD_Result lr__api_problem(lr_req *r, unsigned status, const char *slug,
				const char *detail, ...)
{
	char d[1024];
	va_list ap;
	const char *retry = NULL;

	va_start(ap, detail);
	vsnprintf(d, sizeof(d), detail, ap);
	va_end(ap);
	if (status == 429 || status == 503)
		retry = status == 429 ? "30" : "5";
	return problem_v(r, status, slug, d, retry, NULL, NULL);
}

void lr__api_defer(lr_req *r, unsigned status, const char *slug, const char *fmt, ...)
{
	va_list ap;

	if (r->err_status != 0)
		return;
	r->err_status = (int)status;
	r->err_slug = slug;
	va_start(ap, fmt);
	vsnprintf(r->err_detail, sizeof(r->err_detail), fmt, ap);
	va_end(ap);
}

enum MHD_Result lr__api_store_error(lr_req *r, int rc, const lr_msg *msg)
{
	switch (rc) {
	case LR_STORE_ENOTFOUND:
		return lr__api_problem(r, 404, "not-found", "no such job");
	case LR_STORE_ECONFLICT:
		return lr__api_problem(r, 409, "job-not-finished",
				       "the job is queued or running: cancel it first");
	case LR_STORE_EQUEUEFULL:
		return lr__api_problem(r, 429, "queue-full",
				       "this tenant already has %lld queued or running jobs",
				       (long long)r->api->o.max_queued_per_tenant);
	case -ENOSPC:
		return lr__api_problem(r, 507, "insufficient-storage", "the server's disk is full");
	case -ETIMEDOUT:
		return lr__api_problem(r, 503, "not-ready", "the job store is busy; retry");
	case LR_STORE_EUNAVAIL:
		lr_log(LR_LOG_WARNING, "database unreachable", "request_id", r->rid, "error",
		       msg && msg->text[0] ? msg->text : lr_store_strerror(rc), NULL);
		return lr__api_problem(r, 503, "database-unavailable",
				       "the job database is unreachable; retry");
	default:
		lr_log(LR_LOG_ERR, "store error", "request_id", r->rid, "error",
		       msg && msg->text[0] ? msg->text : lr_store_strerror(rc), NULL);
		return lr__api_problem(r, 500, "internal",
				       "an internal error occurred; see the server log for request %s",
				       r->rid);
	}
}

/* ------------------------------------------------------------------ */
/* Health, metrics, OpenAPI                                            */

static enum MHD_Result handle_readyz(lr_req *r)
{
	lr_api *a = r->api;
	int ready = atomic_load(&a->ready) && !atomic_load(&a->stopping);
	lr_store *st = lr__api_store(a);
	int db = st != NULL && lr_store_ping(st, NULL) == 0; /* PostgreSQL: reachable */
	int ok = ready && db;
	char text[256];
	const char *verbose = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "verbose");

	if (verbose != NULL)
		snprintf(text, sizeof(text), "[%c]store ok\n[%c]workers started\n[%c]not stopping\n%s\n",
			 db ? '+' : '-', atomic_load(&a->ready) ? '+' : '-',
			 atomic_load(&a->stopping) ? '-' : '+', ok ? "ready" : "not ready");
	else
		snprintf(text, sizeof(text), "%s\n", ok ? "ready" : "not ready");
	return lr__api_queue(r, ok ? 200 : 503, text_response(text, strlen(text), "text/plain; charset=utf-8"));
}

typedef struct buf {
	char *p;
	size_t n, cap;
} buf;

static void bprintf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (b->p != NULL && b->n + (size_t)n < b->cap) {
			b->n += (size_t)n;
			return;
		}
		{
			size_t cap = b->cap ? b->cap * 2 : 4096;
			char *g;

			while (cap < b->n + (size_t)n + 1)
				cap *= 2;
			g = realloc(b->p, cap);
			if (g == NULL)
				return;
			b->p = g;
			b->cap = cap;
		}
	}
}

static enum MHD_Result handle_metrics(lr_req *r)
{
	static const char *const states[] = { "queued", "running", "succeeded", "failed", "canceled" };
	int64_t counts[LR_JOB_STATE_COUNT] = { 0 };
	lr_store *st = lr__api_store(r->api);
	buf b = { NULL, 0, 0 };
	long long cum = 0;
	struct MHD_Response *resp;

	if (st == NULL || lr_store_jobs_count(st, counts, NULL) != 0)
		return lr__api_problem(r, 503, "not-ready", "the job store is not available");
	bprintf(&b, "# HELP lowrankd_build_info Version of the running daemon.\n"
		    "# TYPE lowrankd_build_info gauge\nlowrankd_build_info{version=\"%s\"} 1\n",
		PACKAGE_VERSION);
	bprintf(&b, "# HELP lowrankd_jobs Jobs in the store by state.\n# TYPE lowrankd_jobs gauge\n");
	for (int s = 0; s < 5; s++)
		bprintf(&b, "lowrankd_jobs{state=\"%s\"} %lld\n", states[s], (long long)counts[s]);
	bprintf(&b, "# HELP lowrankd_jobs_submitted_total Jobs accepted since start.\n"
		    "# TYPE lowrankd_jobs_submitted_total counter\nlowrankd_jobs_submitted_total %lld\n",
		(long long)atomic_load(&lr__metric_jobs_submitted));
	bprintf(&b, "# HELP lowrankd_jobs_finished_total Jobs this process finished, by outcome.\n"
		    "# TYPE lowrankd_jobs_finished_total counter\n");
	for (int s = 2; s < 5; s++)
		bprintf(&b, "lowrankd_jobs_finished_total{outcome=\"%s\"} %lld\n", states[s],
			(long long)atomic_load(&metric_jobs_finished[s]));
	bprintf(&b, "# HELP lowrankd_job_duration_seconds Run time of finished jobs.\n"
		    "# TYPE lowrankd_job_duration_seconds histogram\n");
	for (size_t i = 0; i <= NBUCKETS; i++) {
		cum += atomic_load(&metric_job_bucket[i]);
		if (i < NBUCKETS)
			bprintf(&b, "lowrankd_job_duration_seconds_bucket{le=\"%g\"} %lld\n", job_buckets[i], cum);
		else
			bprintf(&b, "lowrankd_job_duration_seconds_bucket{le=\"+Inf\"} %lld\n", cum);
	}
	bprintf(&b, "lowrankd_job_duration_seconds_sum %.6f\nlowrankd_job_duration_seconds_count %lld\n",
		atomic_load(&metric_job_sum), (long long)atomic_load(&metric_job_count));
	bprintf(&b, "# HELP lowrankd_http_requests_total HTTP requests answered, by status code.\n"
		    "# TYPE lowrankd_http_requests_total counter\n");
	for (int c = 1; c < 6; c++)
		for (int k = 0; k < 100; k++) {
			long long n = atomic_load(&metric_http[c][k]);

			if (n > 0)
				bprintf(&b, "lowrankd_http_requests_total{code=\"%d\"} %lld\n", c * 100 + k, n);
		}
	bprintf(&b, "# HELP lowrankd_upload_bytes_total Request body bytes received.\n"
		    "# TYPE lowrankd_upload_bytes_total counter\nlowrankd_upload_bytes_total %lld\n",
		(long long)atomic_load(&lr__metric_upload_bytes));
	bprintf(&b, "# HELP lowrankd_uploads_in_progress Request bodies being received.\n"
		    "# TYPE lowrankd_uploads_in_progress gauge\nlowrankd_uploads_in_progress %d\n",
		atomic_load(&r->api->uploads));
	{
		char *hooks = lr__hooks_metrics(st);

		if (hooks != NULL)
			bprintf(&b, "%s", hooks);
		free(hooks);
	}
	bprintf(&b, "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n"
		    "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n",
		r->api->start_time);
	if (b.p == NULL)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(b.n, b.p, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(b.p);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	return lr__api_queue(r, 200, resp);
}

/* ------------------------------------------------------------------ */
/* Routing and the request life cycle                                  */

typedef struct hdr_count {
	int content_length;     /* Content-Length headers */
	int transfer_encoding;  /* Transfer-Encoding headers */
} hdr_count;

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	hdr_count *c = cls;

	(void)kind;
	(void)value;
	if (strcasecmp(key, "Content-Length") == 0)
		c->content_length++;
	else if (strcasecmp(key, "Transfer-Encoding") == 0)
		c->transfer_encoding++;
	return MHD_YES;
}

/* Sets r->route, r->job_id; returns 0, or 404/405 with *allow set. */
static int route(lr_req *r, const char *url, const char *method, const char **allow)
{
	static const char jobs[] = "/v1/jobs/";
	int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	const char *rest, *slash, *colon;
	size_t idlen;

	*allow = NULL;
	if (strcmp(url, "/livez") == 0 || strcmp(url, "/readyz") == 0 ||
	    strcmp(url, "/metrics") == 0 || strcmp(url, "/v1/openapi.yaml") == 0) {
		r->route = url[1] == 'l' ? R_LIVEZ : url[1] == 'r' ? R_READYZ
			   : url[1] == 'm' ? R_METRICS : R_OPENAPI;
		r->route_name = url;
		*allow = "GET, HEAD";
		return get ? 0 : 405;
	}
	if (strcmp(url, "/v1/blobs") == 0) {
		r->route = R_BLOB_PUT;
		r->route_name = "/v1/blobs";
		*allow = "PUT";
		return strcmp(method, "PUT") == 0 ? 0 : 405;
	}
	if (strcmp(url, "/v1/jobs") == 0) {
		r->route_name = "/v1/jobs";
		*allow = "GET, HEAD, POST";
		if (strcmp(method, "POST") == 0)
			r->route = R_JOB_CREATE;
		else if (get)
			r->route = R_JOB_LIST;
		else
			return 405;
		return 0;
	}
	if ((r->ui = lr__ui_lookup(url)) != NULL) { /* the dashboard: api/ui.c */
		r->route = R_UI;
		r->route_name = lr__ui_route_name(r->ui);
		*allow = "GET, HEAD";
		return get ? 0 : 405;
	}
	if (strncmp(url, jobs, sizeof(jobs) - 1) != 0)
		return 404;
	rest = url + sizeof(jobs) - 1;
	slash = strchr(rest, '/');
	colon = strchr(rest, ':');
	idlen = slash ? (size_t)(slash - rest) : colon ? (size_t)(colon - rest) : strlen(rest);
	if (idlen != LR_STORE_ID_LEN)
		return 404;
	memcpy(r->job_id, rest, idlen);
	r->job_id[idlen] = '\0';
	if (!lr_store_id_valid(r->job_id))
		return 404;
	rest += idlen;
	if (*rest == '\0') {
		r->route_name = "/v1/jobs/{id}";
		*allow = "GET, HEAD, DELETE";
		if (get)
			r->route = R_JOB_GET;
		else if (strcmp(method, "DELETE") == 0)
			r->route = R_JOB_DELETE;
		else
			return 405;
		return 0;
	}
	if (strcmp(rest, ":cancel") == 0) {
		r->route_name = "/v1/jobs/{id}:cancel";
		r->route = R_JOB_CANCEL;
		*allow = "POST";
		return strcmp(method, "POST") == 0 ? 0 : 405;
	}
	if (strcmp(rest, "/events") == 0 || strcmp(rest, "/model") == 0 ||
	    strcmp(rest, "/report") == 0) {
		r->route = rest[1] == 'e' ? R_JOB_EVENTS : rest[1] == 'm' ? R_JOB_MODEL : R_JOB_REPORT;
		r->route_name = rest[1] == 'e' ? "/v1/jobs/{id}/events"
			      : rest[1] == 'm' ? "/v1/jobs/{id}/model" : "/v1/jobs/{id}/report";
		*allow = "GET, HEAD";
		return get ? 0 : 405;
	}
	return 404;
}

/* Returns 0 with r->tenant set, or the status to answer (400/401). */
static int authenticate(lr_req *r)
{
	lr_api *a = r->api;
	const char *h, *tenant = NULL;
	int have_tokens;

	if (MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "access_token") != NULL)
		return 400;
	pthread_rwlock_rdlock(&a->tokens_lock);
	have_tokens = a->tokens != NULL;
	if (have_tokens) {
		h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
		if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
			h += 7;
			while (*h == ' ')
				h++;
			tenant = lr_tokens_check(a->tokens, h, strlen(h));
			if (tenant != NULL)
				snprintf(r->tenant, sizeof(r->tenant), "%s", tenant);
		}
	}
	pthread_rwlock_unlock(&a->tokens_lock);
	if (!have_tokens) {
		strcpy(r->tenant, LR_TENANT_LOCAL);
		return 0;
	}
	return tenant != NULL ? 0 : 401;
}

static enum MHD_Result first_call(lr_req *r, const char *url, const char *method,
				  const char *version)
{
	lr_api *a = r->api;
	hdr_count hc = { 0, 0 };
	const char *allow, *cl, *expect;
	unsigned long long clen = 0;
	int rc, body_route;

	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_header, &hc);
	if (hc.content_length > 1 || (hc.content_length && hc.transfer_encoding))
		return lr__api_problem(r, 400, "bad-request",
				       hc.content_length > 1 ? "more than one Content-Length header"
							     : "both Content-Length and Transfer-Encoding");
	cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
	if (cl != NULL) {
		char *end;

		errno = 0;
		clen = strtoull(cl, &end, 10);
		if (errno != 0 || end == cl || *end != '\0' || cl[0] == '-')
			return lr__api_problem(r, 400, "bad-request", "Content-Length is not a number");
	}
	/* The framing is known and sound from here on: answers given now
	 * wait for the body (lr__api_queue). */
	r->declared = hc.transfer_encoding ? -1 : clen > (unsigned long long)INT64_MAX ? INT64_MAX
										       : (int64_t)clen;
	expect = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Expect");
	r->expect_continue = expect != NULL && strcasecmp(expect, "100-continue") == 0 &&
			     strncmp(version, "HTTP/1.", 7) == 0 && strcmp(version, "HTTP/1.0") != 0;
	rc = route(r, url, method, &allow);
	if (rc == 404)
		return lr__api_problem(r, 404, "not-found", "no such resource");
	if (rc == 405)
		return problem_v(r, 405, "method-not-allowed",
				 "this resource does not accept that method", NULL, NULL, allow);
	if (r->route == R_LIVEZ || r->route == R_READYZ || r->route == R_UI)
		return MHD_YES; /* answered on the next call: no auth (the UI's
				 * static files hold no data; it sends the token) */
	rc = authenticate(r);
	if (rc == 400)
		return lr__api_problem(r, 400, "bad-request",
				       "tokens are accepted only in the Authorization header, never in the URL");
	if (rc == 401)
		return problem_v(r, 401, "unauthorized",
				 "a valid bearer token is required (Authorization: Bearer TOKEN)",
				 NULL, "Bearer realm=\"lowrankd\"", NULL);
	body_route = r->route == R_BLOB_PUT || r->route == R_JOB_CREATE;
	if (cl != NULL) {
		if (clen > (unsigned long long)a->o.max_upload_bytes)
			return lr__api_problem(r, 413, "payload-too-large",
					       "the body is %llu bytes; the limit is %lld bytes",
					       clen, (long long)a->o.max_upload_bytes);
		if (!body_route && clen > 0 && r->route != R_JOB_CANCEL)
			return lr__api_problem(r, 400, "bad-request", "this request takes no body");
	}
	r->size_cap = a->o.max_upload_bytes;
	if (body_route && a->o.max_stored_bytes_per_tenant > 0) {
		lr_store *st = lr__api_store(a);
		int64_t used = 0, want = r->declared > 0 ? r->declared : 0;

		if (st == NULL || lr_store_tenant_bytes(st, r->tenant, &used, NULL) != 0)
			return lr__api_problem(r, 503, "not-ready", "the job store is not available");
		if (used + want > a->o.max_stored_bytes_per_tenant || used >= a->o.max_stored_bytes_per_tenant)
			return lr__api_problem(r, 507, "insufficient-storage",
					       "this tenant stores %lld bytes; with this upload it would pass its quota of %lld bytes (delete finished jobs)",
					       (long long)used, (long long)a->o.max_stored_bytes_per_tenant);
		if (a->o.max_stored_bytes_per_tenant - used < r->size_cap)
			r->size_cap = a->o.max_stored_bytes_per_tenant - used;
	}
	if (body_route) {
		if (atomic_fetch_add(&a->uploads, 1) >= a->o.max_concurrent_uploads) {
			atomic_fetch_sub(&a->uploads, 1);
			return lr__api_problem(r, 503, "busy",
					       "%d uploads are already in progress; retry later",
					       a->o.max_concurrent_uploads);
		}
		r->upload_slot = 1;
	}
	return MHD_YES;
}

static enum MHD_Result dispatch(lr_req *r, int first, const char *data, size_t *size)
{
	switch (r->route) {
	case R_LIVEZ:
		return lr__api_queue(r, 200, text_response("ok\n", 3, "text/plain; charset=utf-8"));
	case R_READYZ:
		return handle_readyz(r);
	case R_METRICS:
		return handle_metrics(r);
	case R_OPENAPI:
		return lr__api_queue(r, 200, text_response(lr_openapi_yaml,
							   (size_t)(lr_openapi_yaml_end - lr_openapi_yaml),
							   "application/yaml"));
	case R_BLOB_PUT:
		return lr__jobs_blob_put(r, first, data, size);
	case R_JOB_CREATE:
		return lr__jobs_create(r, first, data, size);
	case R_JOB_LIST:
		return lr__jobs_list(r);
	case R_JOB_GET:
		return lr__jobs_get(r);
	case R_JOB_CANCEL:
		return lr__jobs_cancel(r);
	case R_JOB_DELETE:
		return lr__jobs_delete(r);
	case R_JOB_EVENTS:
		return lr__jobs_events(r);
	case R_JOB_MODEL:
		return lr__jobs_download(r, 0);
	case R_JOB_REPORT:
		return lr__jobs_download(r, 1);
	case R_UI:
		return lr__ui_serve(r, r->ui);
	default:
		return lr__api_problem(r, 404, "not-found", "no such resource");
	}
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *data, size_t *size, void **req_cls)
{
	lr_api *a = cls;
	lr_req *r = *req_cls;
	uint8_t rnd[16];
	enum MHD_Result ret;

	if (r == NULL) {
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			return MHD_NO;
		*req_cls = r;
		r->api = a;
		r->conn = conn;
		r->method = method;
		r->t0 = mono_now();
		r->sse_updated_ms = -1;
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			memset(rnd, 0, sizeof(rnd));
		for (int i = 0; i < 16; i++)
			snprintf(r->rid + 2 * i, 3, "%02x", rnd[i]);
		r->in_first = 1;
		ret = first_call(r, url, method, version);
		/* Body routes set up now; the others answer on the next call,
		 * once MHD knows the request is complete (so it keeps the
		 * connection alive). */
		if (r->status == 0 && ret == MHD_YES &&
		    (r->route == R_BLOB_PUT || r->route == R_JOB_CREATE))
			ret = dispatch(r, 1, NULL, size);
		r->in_first = 0;
		return ret;
	}
	if (*size == 0) { /* the whole request is in */
		r->body_done = 1;
		if (r->held != NULL)
			return release_held(r);
		if (r->status != 0)
			return MHD_YES;
	} else {
		double el = mono_now() - r->t0;

		r->body_bytes += (int64_t)*size;
		atomic_fetch_add(&lr__metric_upload_bytes, (long long)*size);
		if (a->o.upload_min_bytes_per_second > 0 && el > 10.0 &&
		    (double)r->body_bytes / el < (double)a->o.upload_min_bytes_per_second) {
			lr_log(LR_LOG_WARNING, "request body too slow: connection dropped",
			       "request_id", r->rid, NULL);
			return MHD_NO;
		}
		/* A declared body is cut off by MHD at its length (at most
		 * LR_DRAIN_MAX when a 413 is held); a chunked one here. */
		if (r->body_bytes > a->o.max_upload_bytes && !(r->held != NULL && r->declared > 0)) {
			lr_log(LR_LOG_WARNING, "request body over the limit: connection dropped",
			       "request_id", r->rid, NULL);
			return MHD_NO;
		}
		if (r->status != 0) { /* answered (held): read and discard */
			*size = 0;
			return MHD_YES;
		}
	}
	if (r->route != R_BLOB_PUT && r->route != R_JOB_CREATE && *size > 0) {
		*size = 0; /* e.g. the {} of :cancel (AIP-136): read and ignored */
		return MHD_YES;
	}
	return dispatch(r, 0, data, size);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	lr_api *a = cls;
	lr_req *r = *req_cls;
	char ms[32], status[8];

	(void)conn;
	if (r == NULL)
		return;
	*req_cls = NULL;
	if (r->sse_suspended) { /* cannot happen: MHD completes only resumed ones */
		pthread_mutex_lock(&a->sse_lock);
		for (lr_req **p = &a->sse_waiting; *p; p = &(*p)->sse_next)
			if (*p == r) {
				*p = r->sse_next;
				break;
			}
		pthread_mutex_unlock(&a->sse_lock);
	}
	if (r->upload_slot)
		atomic_fetch_sub(&a->uploads, 1);
	if (r->held != NULL) /* the body never ended */
		MHD_destroy_response(r->held);
	if (r->status >= 100 && r->status < 600)
		atomic_fetch_add(&metric_http[r->status / 100][r->status % 100], 1);
	if (r->route != R_LIVEZ && r->route != R_READYZ && r->route != R_METRICS) {
		snprintf(ms, sizeof(ms), "%.3f", 1e3 * (mono_now() - r->t0));
		snprintf(status, sizeof(status), "%d", r->status);
		lr_log(LR_LOG_INFO, "request", "request_id", r->rid, "method", r->method,
		       "route", r->route_name ? r->route_name : "(unknown)", "status", status,
		       "duration_ms", ms, "tenant", r->tenant[0] ? r->tenant : NULL,
		       "job_id", r->job_id[0] ? r->job_id : NULL,
		       "outcome", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? NULL : "aborted", NULL);
	}
	lr__jobs_req_free(r);
	free(r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char text[1024];
	size_t n;

	(void)cls;
	vsnprintf(text, sizeof(text), fmt, ap);
	n = strlen(text);
	while (n > 0 && text[n - 1] == '\n')
		text[--n] = '\0';
	lr_log(LR_LOG_WARNING, "libmicrohttpd", "detail", text, NULL);
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                          */

int lr_api_start(const lr_api_opts *o, lr_api **out, lr_msg *msg)
{
	lr_api *a = NULL;
	const union MHD_DaemonInfo *info;
	unsigned flags;
	int v6, rc;

	*out = NULL;
	if (o->addr == NULL)
		return lr_fail(msg, LR_EINVAL, "no listen address");
	v6 = ((const struct sockaddr *)o->addr)->sa_family == AF_INET6;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return LR_ENOMEM;
	a->o = *o;
	a->state_dir = strdup(o->state_dir);
	a->listen = strdup(o->listen);
	if (a->state_dir == NULL || a->listen == NULL) {
		rc = LR_ENOMEM;
		goto fail;
	}
	a->o.state_dir = a->state_dir;
	a->o.listen = a->listen;
	a->o.addr = NULL;
	a->o.tokens = NULL;
	a->start_time = (double)time(NULL);
	pthread_rwlock_init(&a->tokens_lock, NULL);
	pthread_mutex_init(&a->sse_lock, NULL);
	if (pthread_key_create(&a->store_key, store_destroy) != 0) {
		rc = LR_ENOMEM;
		goto fail;
	}
	if (pthread_key_create(&a->cache_key, lr__jobs_cache_free) != 0) {
		pthread_key_delete(a->store_key);
		rc = LR_ENOMEM;
		goto fail;
	}
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
		MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
	a->mhd = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, a,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a,
		MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)o->addr,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)o->http_threads,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->connection_limit,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)o->per_ip_connection_limit,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->connection_timeout_seconds,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
		MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)128,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
		MHD_OPTION_END);
	if (a->mhd == NULL) {
		rc = lr_fail(msg, -EADDRINUSE, "cannot listen on %s (in use, or not an address of this host)",
			     o->listen);
		goto fail;
	}
	info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
	a->port = info ? info->port : 0;
	a->tokens = o->tokens;
	a->auth_required = o->tokens != NULL;
	*out = a;
	return 0;
fail:
	free(a->state_dir);
	free(a->listen);
	free(a);
	return rc;
}

int lr_api_port(const lr_api *a)
{
	return a->port;
}

void lr_api_get_limits(const lr_api *a, lr_api_limits *out)
{
	const union MHD_DaemonInfo *fl = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_FLAGS);

	out->connection_limit = (unsigned)a->o.connection_limit;
	out->per_ip_connection_limit = (unsigned)a->o.per_ip_connection_limit;
	out->connection_timeout_seconds = (unsigned)a->o.connection_timeout_seconds;
	out->epoll = fl != NULL && (fl->flags & MHD_USE_EPOLL) != 0;
	out->http_threads = a->o.http_threads;
}

unsigned lr_api_connections(const lr_api *a)
{
	const union MHD_DaemonInfo *info =
		MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

	return info != NULL ? info->num_connections : 0;
}

void lr_api_set_ready(lr_api *a, int ready)
{
	atomic_store(&a->ready, ready);
}

void lr_api_set_tokens(lr_api *a, lr_tokens *t)
{
	lr_tokens *old;

	if (t == NULL && a->auth_required) /* never drop auth by reloading */
		return;
	pthread_rwlock_wrlock(&a->tokens_lock);
	old = a->tokens;
	a->tokens = t;
	pthread_rwlock_unlock(&a->tokens_lock);
	lr_tokens_free(old);
}

void lr_api_tick(lr_api *a)
{
	lr_req *r;

	pthread_mutex_lock(&a->sse_lock);
	while ((r = a->sse_waiting) != NULL) {
		a->sse_waiting = r->sse_next;
		r->sse_next = NULL;
		r->sse_suspended = 0;
		MHD_resume_connection(r->conn);
	}
	pthread_mutex_unlock(&a->sse_lock);
}

void lr_api_quiesce(lr_api *a)
{
	MHD_socket fd;

	if (a == NULL || atomic_exchange(&a->stopping, 1))
		return;
	fd = MHD_quiesce_daemon(a->mhd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	lr_api_tick(a);
}

void lr_api_stop(lr_api *a)
{
	if (a == NULL)
		return;
	atomic_store(&a->stopping, 1);
	lr_api_tick(a);
	MHD_stop_daemon(a->mhd);
	pthread_key_delete(a->store_key);
	pthread_key_delete(a->cache_key);
	pthread_rwlock_destroy(&a->tokens_lock);
	pthread_mutex_destroy(&a->sse_lock);
	lr_tokens_free(a->tokens);
	free(a->state_dir);
	free(a->listen);
	free(a);
}
