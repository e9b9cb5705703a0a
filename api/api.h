/*
 * api.h - the HTTP API of lowrankd, served with libmicrohttpd.
 *
 * The API answers on its own threads (libmicrohttpd's epoll thread pool)
 * and touches only the job store (one SQLite connection per HTTP thread)
 * and the blob store; it never runs the solver. The daemon starts it after
 * the store is ready, calls lr_api_tick() from its event loop, and tells it
 * when the process is ready or stopping. Routes and their answers are
 * documented in api/openapi.yaml, which is compiled into the binary and
 * served at /v1/openapi.yaml.
 */
#ifndef LR_API_H
#define LR_API_H

#include <stdint.h>

#include "api/tokens.h"
#include "model/lr.h"

typedef struct lr_api lr_api;

/* Everything the API needs to know; copied by lr_api_start(). */
typedef struct lr_api_opts {
	const char *listen;             /* HOST:PORT, for messages */
	const void *addr;               /* the address to bind: a struct sockaddr_in
					   or sockaddr_in6 (daemon/conf.h parses it) */
	const char *state_dir;          /* the store's directory */
	lr_tokens *tokens;              /* NULL: no auth (tenant "local"); owned by
					   the API once lr_api_start succeeds */
	int64_t max_upload_bytes;       /* 413 above */
	int max_concurrent_uploads;     /* 503 above */
	int64_t max_queued_per_tenant;  /* 429 above */
	int64_t max_stored_bytes_per_tenant; /* 507 above; 0 = no quota */
	int max_attempts;               /* crash budget per job */
	int64_t job_memory_mib;         /* the most a spec's memory_budget_mib may ask */
	int http_threads;               /* MHD thread pool size */
	int connection_limit;           /* MHD_OPTION_CONNECTION_LIMIT */
	int per_ip_connection_limit;    /* MHD_OPTION_PER_IP_CONNECTION_LIMIT */
	int connection_timeout_seconds; /* MHD_OPTION_CONNECTION_TIMEOUT */
	int64_t upload_min_bytes_per_second; /* slow bodies cut off; 0 = off */
	void (*on_job_created)(void *ud); /* called (any thread) after a job is queued */
	int webhooks;                   /* 1 when webhooks are delivered (a secret is
					   configured); else a spec's notify_url is
					   refused */
	void *ud;                       /* its argument */
} lr_api_opts;

/* The limits the server runs with (H2): the values handed to MHD, and
 * whether MHD polls with epoll as read back from it. tests/daemon/test_api
 * checks that the per-address limit is really enforced. */
typedef struct lr_api_limits {
	unsigned connection_limit;        /* total connections */
	unsigned per_ip_connection_limit; /* per client address */
	unsigned connection_timeout_seconds;
	int epoll;                        /* 1 when MHD polls with epoll */
	int http_threads;                 /* thread pool size */
} lr_api_limits;

/*
 * Binds o->addr and starts serving. On success *out is owned by
 * the caller (lr_api_stop). /readyz answers 503 until lr_api_set_ready(1).
 * Errors: LR_EINVAL (bad address or options), -errno when the socket cannot
 * be bound, LR_ENOMEM; msg says which.
 */
int lr_api_start(const lr_api_opts *o, lr_api **out, lr_msg *msg);

/* The bound TCP port (useful with port 0). */
int lr_api_port(const lr_api *a);

/* Fills *out with the running server's limits (see lr_api_limits). */
void lr_api_get_limits(const lr_api *a, lr_api_limits *out);

/* Connections the server holds open now, over all its threads (closed
 * ones count until their thread has cleaned them up). Any thread. */
unsigned lr_api_connections(const lr_api *a);

/* Marks the daemon ready (1) or not (0) for /readyz. Any thread. */
void lr_api_set_ready(lr_api *a, int ready);

/*
 * Wakes waiting event streams (GET /v1/jobs/{id}/events) so they look for
 * news. Call about twice a second from one thread (the event loop).
 */
void lr_api_tick(lr_api *a);

/* Replaces the tokens (SIGHUP); takes ownership of `t` (NULL = no auth
 * allowed only when the API was started without tokens). Any thread. */
void lr_api_set_tokens(lr_api *a, lr_tokens *t);

/* Records a finished job for /metrics: outcome 2 succeeded, 3 failed,
 * 4 canceled (enum lr_job_state), and its run time. Any thread. */
void lr_api_observe_job(int outcome, double seconds);

/*
 * The job resource of `tenant`'s job `id` as GET /v1/jobs/{id} answers it,
 * printed compactly, read through `st` (the caller's connection; any
 * thread). Caller frees with free(). NULL when the job does not exist or
 * out of memory. Used for webhook payloads (daemon/hooks.c).
 */
struct lr_store;
char *lr_api_job_resource(struct lr_store *st, const char *tenant, const char *id);

/* Webhook delivery outcomes counted in /metrics. */
enum lr_api_hook_outcome {
	LR_API_HOOK_DELIVERED,  /* 2xx */
	LR_API_HOOK_HTTP_ERROR, /* answered, not 2xx */
	LR_API_HOOK_NET_ERROR,  /* DNS, connect, TLS, timeout */
	LR_API_HOOK_REFUSED,    /* address not allowed (SSRF policy) */
	LR_API_HOOK_GAVE_UP,    /* retries exhausted (24 h): final */
	LR_API_HOOK_NOUTCOMES
};

/* Counts one webhook attempt with its outcome for /metrics (gave_up is
 * counted in addition to the attempt's own outcome). Any thread. */
void lr_api_observe_webhook(enum lr_api_hook_outcome outcome);

/* Stops accepting new connections and makes /readyz answer 503; current
 * requests finish. Call before stopping the workers. */
void lr_api_quiesce(lr_api *a);

/* Ends every event stream, stops the server and frees everything
 * (NULL is a no-op). */
void lr_api_stop(lr_api *a);

#endif /* LR_API_H */
