/*
 * daemon.h - internals of the lowrankd process shared by daemon/main.c
 * (configuration, the libuv loop, signals, timers) and daemon/worker.c
 * (the solver threads) and daemon/notify.c (systemd readiness).
 */
#ifndef LR_DAEMON_H
#define LR_DAEMON_H

#include <stdint.h>

#include "model/lr.h"
#include "storage/store.h"

typedef struct lr_workers lr_workers;

/* What the worker threads need; copied by lr_workers_start(). */
typedef struct lr_workers_opts {
	const char *state_dir;  /* the store's directory */
	int count;              /* worker threads */
	int engine_threads;     /* threads per job (0 = all cores) */
	int64_t memory_mib;     /* a job's memory budget unless its spec sets one */
	int64_t epoch;          /* this daemon's epoch (lr_store_epoch_begin) */
	int64_t lease_ms;       /* lease taken at claim */
} lr_workers_opts;

/*
 * Starts `count` dedicated threads (never libuv's pool) at the lowest CPU
 * priority (SCHED_IDLE, else nice 19), each with its own store
 * connection, that claim queued jobs and run lr_compress on them. On
 * success *out is owned by the caller (lr_workers_stop). Errors: -errno
 * from pthread_create, LR_ENOMEM.
 */
int lr_workers_start(const lr_workers_opts *o, lr_workers **out, lr_msg *msg);

/* Wakes an idle worker: a job was queued. Any thread. */
void lr_workers_kick(lr_workers *w);

/*
 * From the loop thread: renews the lease of every running job through
 * `st` (the loop's own connection) and, when `cancel_only` is 1, only
 * reads their cancel flags. A job canceled by its client, or lost to
 * recovery, has its solver stopped.
 */
void lr_workers_heartbeat(lr_workers *w, lr_store *st, int cancel_only);

/* Jobs running now (for STATUS=). */
int lr_workers_busy(lr_workers *w);

/*
 * Graceful stop: tells every running job to stop and waits for the
 * threads (each requeues its job without counting the attempt). `w` stays
 * valid, so lr_workers_kick() from an HTTP thread that is finishing a
 * request remains harmless; free it with lr_workers_free() once the API
 * has stopped. Idempotent; NULL is a no-op.
 */
void lr_workers_stop(lr_workers *w);

/* Stops (if needed) and frees `w`; NULL is a no-op. */
void lr_workers_free(lr_workers *w);

/*
 * Sends `state` ("READY=1", "STATUS=...", "STOPPING=1", "WATCHDOG=1") to
 * systemd over $NOTIFY_SOCKET, written by hand (the datagram protocol of
 * sd_notify(3)); a no-op without the variable. Returns 0 or -errno.
 */
int lr_notify(const char *state);

/* ---- webhooks (daemon/hooks.c) ----------------------------------- */

struct lr_cidr;
typedef struct lr_hooks lr_hooks;

/* What the delivery thread needs; copied by lr_hooks_start(). */
typedef struct lr_hooks_opts {
	const char *state_dir;       /* the store's directory */
	const uint8_t *key;          /* HMAC key (decoded whsec_ secret) */
	size_t keylen;               /* 24..64 bytes */
	const struct lr_cidr *allow; /* webhook_allow blocks */
	int nallow;                  /* their number */
	int64_t timeout_ms;          /* connect + whole request */
	int64_t retry_base_ms;       /* first retry delay (doubles, max 1 h) */
	uint64_t seed;               /* jitter seed; 0 = random */
} lr_hooks_opts;

/*
 * Starts the delivery thread with its own store connection: it sends due
 * outbox rows (signed, address-checked, pinned) and records every
 * attempt; see the design note in daemon/hooks.c. On success *out is
 * owned by the caller (lr_hooks_stop). Errors: LR_EINVAL, store errors,
 * -errno from pthread_create.
 */
int lr_hooks_start(const lr_hooks_opts *o, lr_hooks **out, lr_msg *msg);

/* Wakes the delivery thread (a job ended). Any thread; NULL is a no-op. */
void lr_hooks_kick(lr_hooks *h);

/* Stops the thread (an attempt in flight is aborted and stays pending),
 * closes its store and frees `h` (NULL is a no-op). */
void lr_hooks_stop(lr_hooks *h);

/* The delay before retry number `attempts` (>= 1): retry_base_ms *
 * 2^(attempts-1), at most an hour, half of it random (equal jitter).
 * Exposed for tests. */
int64_t lr_hooks_backoff_ms(lr_hooks *h, int attempts);

#endif /* LR_DAEMON_H */
