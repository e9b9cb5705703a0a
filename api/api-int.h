/*
 * api-int.h - internals shared by api/server.c (the libmicrohttpd side:
 * request life cycle, auth, limits, responses, metrics) and api/jobs.c
 * (the handlers of /v1/jobs and /v1/blobs). Not for other modules.
 */
#ifndef LR_API_INT_H
#define LR_API_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "api/api.h"
#include "api/multipart.h"
#include "storage/store.h"

#define LR_TENANT_LOCAL "local" /* the tenant when there is no auth */
#define LR_JSON_BODY_MAX 65536  /* largest JSON request body, bytes */
/* Largest declared body that is read and discarded so that an answer
 * given before it (413, 507, 503, 429, 401...) reaches the client; see
 * lr__api_queue(). */
#define LR_DRAIN_MAX ((int64_t)64 << 20)

struct lr_req;

struct lr_api {
	lr_api_opts o;                   /* copied options (tokens owned below) */
	char *state_dir;                 /* owned copy */
	char *listen;                    /* owned copy */
	struct MHD_Daemon *mhd;          /* the server */
	int port;                        /* bound port */
	pthread_rwlock_t tokens_lock;    /* guards tokens */
	lr_tokens *tokens;               /* owned; NULL = no auth */
	int auth_required;               /* 1 when started with tokens */
	atomic_int ready;                /* /readyz */
	atomic_int stopping;             /* quiesced or stopping */
	atomic_int uploads;              /* bodies being received */
	pthread_key_t store_key;         /* per-thread lr_store */
	pthread_key_t cache_key;         /* per-thread report summary cache */
	pthread_mutex_t sse_lock;        /* guards the waiting list */
	struct lr_req *sse_waiting;      /* suspended event streams */
	double start_time;               /* Unix seconds, for /metrics */
};

/* What a request is, once routed. */
enum lr_route {
	R_NONE, R_LIVEZ, R_READYZ, R_METRICS, R_OPENAPI, R_BLOB_PUT,
	R_JOB_CREATE, R_JOB_LIST, R_JOB_GET, R_JOB_CANCEL, R_JOB_DELETE,
	R_JOB_EVENTS, R_JOB_MODEL, R_JOB_REPORT, R_UI
};

/* Per-request state, freed when MHD reports the request completed. */
typedef struct lr_req {
	lr_api *api;                    /* the server */
	struct MHD_Connection *conn;    /* the connection */
	enum lr_route route;            /* what was asked */
	const char *route_name;         /* path template for logs */
	const char *method;             /* borrowed from MHD */
	char rid[33];                   /* request id, hex */
	char tenant[LR_TENANT_MAX + 1]; /* authenticated tenant */
	char job_id[LR_STORE_ID_LEN + 1]; /* from the path, when any */
	const struct lr_ui_file *ui;    /* R_UI: the dashboard file (api/ui.c) */
	double t0;                      /* start, monotonic seconds */
	int status;                     /* status sent, for logs and metrics */
	int upload_slot;                /* 1 when counted in api->uploads */
	int64_t body_bytes;             /* body bytes received */
	int64_t size_cap;               /* largest blob this request may store */
	int body_seen;                  /* 1 after the first body call */
	/* The body's framing, for answers given before the body has ended. */
	int in_first;                   /* 1 during the first handler call */
	int body_done;                  /* 1 once MHD has the whole request */
	int expect_continue;            /* the client waits for 100 Continue */
	int64_t declared;               /* Content-Length, -1 chunked, 0 none */
	struct MHD_Response *held;      /* answer held until the body ends */
	unsigned held_status;           /* its status */
	/* A failure found while the body streams in, answered at its end. */
	int err_status;                 /* 0 = none */
	const char *err_slug;           /* problem type */
	char err_detail[512];           /* problem detail (no paths) */
	/* PUT /v1/blobs and multipart file parts. */
	lr_store_blob_writer *bw;       /* current blob writer */
	char expected_sha[LR_STORE_SHA_LEN + 1]; /* from Repr-Digest, or "" */
	lr_store_blob_info blob;        /* committed blob */
	/* POST /v1/jobs. */
	lr_mp *mp;                      /* multipart parser, or NULL for JSON */
	int part;                       /* current part: 0 none, 1 model, 2 calibration, 3 spec */
	int parts_seen;                 /* bit per part kind */
	char model_sha[LR_STORE_SHA_LEN + 1]; /* committed model blob */
	char calib_sha[LR_STORE_SHA_LEN + 1]; /* committed calibration blob */
	char *text;                     /* buffered JSON body or spec part */
	size_t text_len, text_cap;      /* its length and capacity */
	/* GET /v1/jobs/{id}/events. */
	struct lr_req *sse_next;        /* waiting list link */
	int sse_suspended;              /* 1 while in the waiting list */
	int sse_done;                   /* 1 after the terminal event */
	int64_t sse_updated_ms;         /* last updated_ms sent, -1 none */
	double sse_last_send;           /* monotonic seconds of last bytes */
	char *sse_buf;                  /* pending event bytes */
	size_t sse_len, sse_off;        /* their length and bytes sent */
	/* Idempotency-Key (api/idem.c). */
	char idem_key[LR_STORE_IDEM_KEY_MAX + 1]; /* parsed key, or "" */
	int idem;                       /* enum lr_req_idem */
	lr_store_idem idem_rec;         /* the key's record when replaying */
} lr_req;

enum lr_req_idem {
	LR_REQ_IDEM_NONE = 0,   /* no key, or done with it */
	LR_REQ_IDEM_HELD = 1,   /* this request took the key */
	LR_REQ_IDEM_REPLAY = 2, /* the key was answered: compare, replay */
};

/* api/idem.c. On a body route's first call: parses and takes the
 * Idempotency-Key; *answered = 1 when a problem (400, 409, 503) was
 * queued. */
enum MHD_Result lr__idem_first(lr_req *r, int *answered);
/* The request's fingerprint once its body is in (blob_sha: PUT's digest). */
void lr__idem_fingerprint(lr_req *r, const char *blob_sha, char out[LR_STORE_SHA_LEN + 1]);
/* For LR_REQ_IDEM_REPLAY at the body's end: the first answer, or 422. */
enum MHD_Result lr__idem_replay(lr_req *r, const char *fp);
/* Records the answer of a request that holds its key. */
void lr__idem_complete(lr_req *r, int status, const char *resource, const char *location,
		       const char *fp, const cJSON *body);
/* An error answer: releases a key still held, so that an immediate retry
 * finds it free (no-op when the request holds none). */
void lr__idem_release(lr_req *r);
/* Request end: releases a key still held (failure or dropped). */
void lr__idem_free(lr_req *r);
/* The webhook lines of /metrics (caller frees), or NULL. */
char *lr__hooks_metrics(lr_store *st);

/* The calling thread's store connection (opened on first use), or NULL
 * after logging why. */
lr_store *lr__api_store(lr_api *a);

/* Queues a JSON response (takes `body`); returns MHD_YES/NO. `extra`
 * header pairs (name, value, ..., NULL) are added. */
enum MHD_Result lr__api_json(lr_req *r, unsigned status, cJSON *body, ...)
	__attribute__((sentinel));

/* Queues an RFC 9457 problem: `slug` names the type (api/openapi.yaml
 * lists them), `detail` a printf format. */
enum MHD_Result lr__api_problem(lr_req *r, unsigned status, const char *slug,
				const char *detail, ...)
	__attribute__((format(printf, 4, 5)));

/* Adds X-Request-Id and queues `resp` (destroyed here; MHD keeps its own
 * reference). Every answer goes through here. An answer given while a
 * request body is still on its way is held, and the rest of the body is
 * read and discarded, so that the client, which is still sending, gets
 * the answer instead of a reset: closing a socket with unread data makes
 * the kernel send RST, and the client then loses the answer. Only a
 * client that waits for 100 Continue (it gets the answer instead), or
 * one that declares a body over LR_DRAIN_MAX, is answered at once, with
 * Connection: close. */
enum MHD_Result lr__api_queue(lr_req *r, unsigned status, struct MHD_Response *resp);

/* Records a failure found mid-body, answered when the body has ended.
 * The first one wins. */
void lr__api_defer(lr_req *r, unsigned status, const char *slug, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Maps a store error to an answer (404, 409, 429, 507, 503, 500) and
 * queues it, logging the internal message. */
enum MHD_Result lr__api_store_error(lr_req *r, int rc, const lr_msg *msg);

/* RFC 3339 UTC from Unix milliseconds into buf (>= 32 bytes). */
void lr__api_time(int64_t ms, char *buf, size_t len);

/* Handlers (api/jobs.c). Each is called on every access-handler call of
 * its request; first == 1 on the call before any body. */
enum MHD_Result lr__jobs_blob_put(lr_req *r, int first, const char *data, size_t *size);
enum MHD_Result lr__jobs_create(lr_req *r, int first, const char *data, size_t *size);
enum MHD_Result lr__jobs_list(lr_req *r);
enum MHD_Result lr__jobs_get(lr_req *r);
enum MHD_Result lr__jobs_cancel(lr_req *r);
enum MHD_Result lr__jobs_delete(lr_req *r);
enum MHD_Result lr__jobs_events(lr_req *r);
enum MHD_Result lr__jobs_download(lr_req *r, int report);
/* Frees a thread's report summary cache (the cache_key destructor). */
void lr__jobs_cache_free(void *cache);

/* Frees a request's handler state (writers, parser, buffers). */
void lr__jobs_req_free(lr_req *r);

/* Metrics counters shared by the handlers. */
extern atomic_llong lr__metric_upload_bytes;
extern atomic_llong lr__metric_jobs_submitted;

#endif /* LR_API_INT_H */
