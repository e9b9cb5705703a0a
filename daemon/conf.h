/*
 * conf.h - lowrankd's configuration: keys, defaults, and the four layers
 * that set them (built-in defaults < config file < LOWRANKD_* environment
 * < command-line flags).
 */
#ifndef LR_CONF_H
#define LR_CONF_H

#include <stdint.h>
#include <stdio.h>

#include "model/lr.h"

#define LR_CONFIG_PATH_MAX 4096

/* The effective configuration. Every field is one key of etc/lowrankd.conf. */
typedef struct lr_config {
	char listen[256];                 /* HOST:PORT or [V6]:PORT; port 0 = any free port */
	char state_dir[LR_CONFIG_PATH_MAX]; /* database, blobs, temporary uploads */
	char database[LR_CONFIG_PATH_MAX];  /* "sqlite" or a postgresql:// URI */
	char tokens_file[LR_CONFIG_PATH_MAX]; /* "TENANT SHA256HEX" lines; empty = no auth */
	int64_t workers;                  /* solver worker threads */
	int64_t blas_threads;             /* engine threads per job; 0 = number of cores */
	int64_t job_memory_mib;           /* a job's solver memory budget, and the most a spec may ask */
	int64_t max_upload_bytes;         /* largest accepted request body, bytes */
	int64_t max_concurrent_uploads;   /* bodies being received at once; more -> 503 */
	int64_t max_queued_per_tenant;    /* queued + running jobs per tenant; more -> 429 */
	int64_t max_stored_bytes_per_tenant; /* blobs a tenant may keep, bytes; 0 = no quota */
	int64_t retention_days;           /* finished jobs kept this long; 0 = forever */
	int64_t http_threads;             /* libmicrohttpd worker threads (epoll each) */
	int64_t connection_limit;         /* open HTTP connections in total */
	int64_t per_ip_connection_limit;  /* open HTTP connections per client address */
	int64_t connection_timeout_seconds; /* idle connection closed after, seconds */
	int64_t upload_min_bytes_per_second; /* slower request bodies are cut off */
	int64_t heartbeat_seconds;        /* lease renewal period of running jobs, seconds */
	int64_t lease_seconds;            /* a job whose lease is older is requeued, seconds */
	int64_t max_attempts;             /* claims of one job before it fails as crashed */
	char webhook_secret_file[LR_CONFIG_PATH_MAX]; /* whsec_<base64>; empty = no webhooks */
	char webhook_allow[1024];         /* CIDR blocks deliveries may reach besides public ones */
	int64_t webhook_timeout_seconds;  /* one delivery attempt, seconds */
	int64_t webhook_retry_base_ms;    /* first retry delay; doubles up to an hour */
	int64_t webhook_jitter_seed;      /* retry jitter seed; 0 = random */
	char log_level[16];               /* error, warning, info or debug */
	char log_format[16];              /* json or text */
} lr_config;

/* Fills every key with its built-in default (see etc/lowrankd.conf). */
void lr_config_defaults(lr_config *c);

/*
 * Sets one key from its text form. `key` may use '-' for '_'. Errors:
 * LR_EINVAL for an unknown key or a bad value; `msg` names the key, the
 * accepted range or form.
 */
int lr_config_set(lr_config *c, const char *key, const char *value, lr_msg *msg);

/*
 * Reads a `key = value` file (# comments, blank lines; the last setting of
 * a key wins). Errors: negative errno when the file cannot be read,
 * LR_EINVAL with "PATH:LINE: ..." in `msg` for a syntax error, an unknown
 * key or a bad value.
 */
int lr_config_load_file(lr_config *c, const char *path, lr_msg *msg);

/*
 * Applies every LOWRANKD_<KEY> variable found through `get` (getenv in the
 * daemon; tests pass their own). Unknown LOWRANKD_ variables are ignored,
 * except that LOWRANKD_CONFIG is the config file and is not a key.
 * Errors as lr_config_set(), with the variable named.
 */
int lr_config_load_env(lr_config *c, const char *(*get)(const char *name),
		       lr_msg *msg);

/*
 * Checks the keys against each other: the listen address parses, and a
 * non-loopback address has a tokens_file. Returns 0 or LR_EINVAL.
 */
int lr_config_validate(const lr_config *c, lr_msg *msg);

/*
 * Splits c->listen into a socket address. `*v6` is set for IPv6, and
 * `*loopback` when the address is 127.0.0.0/8 or ::1. `sa` must hold a
 * struct sockaddr_in6. Returns 0 or LR_EINVAL.
 */
int lr_config_listen_addr(const char *listen, void *sa, unsigned *salen,
			  int *v6, int *loopback, lr_msg *msg);

/* Writes the effective configuration as a config file to `f`. */
void lr_config_print(const lr_config *c, FILE *f);

/* Writes the key list with defaults and units (for --help) to `f`. */
void lr_config_print_help(FILE *f);

#endif /* LR_CONF_H */
