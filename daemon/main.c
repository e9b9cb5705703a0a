/*
 * main.c - the lowrankd process.
 *
 * DESIGN. main() builds the configuration in four layers (built-in
 * defaults < --config file < LOWRANKD_* environment < --key flags), then
 * initialises in dependency order and finalises in exact reverse: log,
 * state directory lock, store (new epoch, recovery of jobs a previous
 * process left running, a startup sweep of temporary files), tokens,
 * solver workers, HTTP API; only then READY=1 goes to systemd. One libuv
 * loop on the main thread owns signals and timers:
 *   - every 0.5 s: wake event streams; read the cancel flags of running
 *     jobs (so a cancel takes effect within a second); watchdog ping;
 *   - every heartbeat_seconds: renew the leases of running jobs and send
 *     STATUS= with the queue counts;
 *   - every lease_seconds / 2: requeue jobs whose lease lapsed;
 *   - hourly: the retention sweep.
 * SIGTERM/SIGINT stop gracefully: STOPPING=1, stop accepting connections,
 * stop the loop, stop the solvers (running jobs are requeued, not failed),
 * then tear down: the API (requests in flight finish) before the workers'
 * memory, since a request that queues a job kicks the workers. SIGHUP re-reads the tokens file and the log
 * settings (the other keys need a restart, which is logged).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uv.h>

#include "api/api.h"
#include "api/log.h"
#include "api/tokens.h"
#include "api/webhook.h"
#include "daemon/conf.h"
#include "daemon/daemon.h"
#include "storage/store.h"

static const char usage_text[] =
	"usage: lowrankd [--config FILE] [--check-config] [--KEY VALUE | --KEY=VALUE]...\n"
	"       lowrankd --version | --help\n"
	"\n"
	"The lowrankd daemon: a REST API that queues low-rank compression jobs for\n"
	"ONNX CNNs and runs them on worker threads. With no options it serves\n"
	"http://127.0.0.1:8080 with its state in ./var.\n"
	"\n"
	"  --config FILE    read KEY = VALUE settings (see etc/lowrankd.conf);\n"
	"                   also LOWRANKD_CONFIG\n"
	"  --check-config   validate the configuration, print it, exit 0 or 1\n"
	"  --version        print the version\n"
	"  --help           this text\n"
	"\n"
	"Every key is a flag (--state-dir or --state_dir) and an environment\n"
	"variable (LOWRANKD_STATE_DIR); precedence: defaults < file < environment\n"
	"< flags. Keys:\n";

/* The process, as the loop callbacks see it. */
typedef struct daemon_ctx {
	lr_config cfg;             /* effective configuration */
	char config_path[LR_CONFIG_PATH_MAX]; /* the --config file, or "" */
	int argc;                  /* for re-reading flags on SIGHUP */
	char **argv;
	lr_store *st;              /* the loop thread's store connection */
	lr_workers *workers;       /* solver threads */
	lr_hooks *hooks;           /* webhook delivery thread, or NULL */
	lr_api *api;               /* HTTP */
	int64_t epoch;             /* this process's epoch */
	uv_loop_t loop;            /* the event loop */
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t tick, heartbeat, recover, sweep;
	uint64_t watchdog_usec;    /* from WATCHDOG_USEC; 0 = off */
	uint64_t last_watchdog_ms; /* loop time of the last ping */
	int stopping;              /* 1 once a stop signal arrived */
} daemon_ctx;

/*
 * Checks (and, given somewhere to put them, returns) the webhook keys: the
 * webhook_allow list must parse and webhook_secret_file, when set, must be
 * a private file holding a whsec_ secret. 0 or an error in msg.
 */
static int webhook_config(const lr_config *c, uint8_t *key, size_t *keylen, lr_cidr *allow,
			  int *nallow, lr_msg *msg)
{
	uint8_t k[LR_WEBHOOK_KEY_MAX];
	lr_cidr a[LR_CIDR_MAX];
	size_t kl = 0;
	int n = 0, rc;

	rc = lr_cidr_list_parse(c->webhook_allow, a, &n, msg);
	if (rc != 0) {
		lr_msg_prefix(msg, "webhook_allow");
		return rc;
	}
	if (c->webhook_secret_file[0] != '\0') {
		rc = lr_webhook_secret_load(c->webhook_secret_file, k, &kl, msg);
		if (rc != 0)
			return rc;
	}
	if (key != NULL) {
		memcpy(key, k, kl);
		*keylen = kl;
		memcpy(allow, a, (size_t)n * sizeof(*a));
		*nallow = n;
	}
	memset(k, 0, sizeof(k));
	return 0;
}

static const char *env_get(const char *name)
{
	return getenv(name);
}

/*
 * Builds the configuration from argv. Returns 0 to run, 1 when the
 * process should exit 0 (--help, --version, --check-config ok), or -1
 * on an error (already printed). `check` is set for --check-config.
 */
static int parse_config(int argc, char **argv, lr_config *c, char *config_path,
			int *check, int quiet)
{
	lr_msg msg = { { 0 } };
	const char *path = getenv("LOWRANKD_CONFIG");
	int rc;

	*check = 0;
	lr_config_defaults(c);
	/* First pass: the flags that are not keys. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage_text, stdout);
			lr_config_print_help(stdout);
			return 1;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("lowrankd %s\n", PACKAGE_VERSION);
			return 1;
		}
		if (strcmp(argv[i], "--check-config") == 0)
			*check = 1;
		else if (strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "lowrankd: --config needs a file\n");
				return -1;
			}
			path = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			path = argv[i] + 9;
		}
	}
	config_path[0] = '\0';
	if (path != NULL && path[0] != '\0') {
		snprintf(config_path, LR_CONFIG_PATH_MAX, "%s", path);
		rc = lr_config_load_file(c, path, &msg);
		if (rc != 0)
			goto bad;
	}
	rc = lr_config_load_env(c, env_get, &msg);
	if (rc != 0)
		goto bad;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq, *val;
		char key[64];

		if (strcmp(a, "--check-config") == 0)
			continue;
		if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
			i++;
			continue;
		}
		if (strncmp(a, "--config=", 9) == 0)
			continue;
		if (strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "lowrankd: unexpected argument '%s' (see --help)\n", a);
			return -1;
		}
		a += 2;
		eq = strchr(a, '=');
		if (eq != NULL) {
			snprintf(key, sizeof(key), "%.*s", (int)(eq - a), a);
			val = eq + 1;
		} else {
			if (i + 1 >= argc) {
				fprintf(stderr, "lowrankd: --%s needs a value\n", a);
				return -1;
			}
			snprintf(key, sizeof(key), "%s", a);
			val = argv[++i];
		}
		rc = lr_config_set(c, key, val, &msg);
		if (rc != 0) {
			lr_msg_prefix(&msg, "flag --%s", key);
			goto bad;
		}
	}
	rc = lr_config_validate(c, &msg);
	if (rc == 0)
		rc = webhook_config(c, NULL, NULL, NULL, NULL, &msg);
	if (rc != 0)
		goto bad;
	if (*check) {
		if (!quiet)
			lr_config_print(c, stdout);
		return 1;
	}
	return 0;
bad:
	fprintf(stderr, "lowrankd: configuration: %s\n", msg.text);
	return -1;
}

static void send_status(daemon_ctx *d)
{
	int64_t counts[LR_JOB_STATE_COUNT] = { 0 };
	char text[128];

	if (d->st == NULL || lr_store_jobs_count(d->st, counts, NULL) != 0)
		return;
	snprintf(text, sizeof(text), "STATUS=queued=%lld running=%lld",
		 (long long)counts[LR_JOB_STATE_QUEUED], (long long)counts[LR_JOB_STATE_RUNNING]);
	lr_notify(text);
}

static void on_tick(uv_timer_t *t)
{
	daemon_ctx *d = t->data;
	uint64_t now = uv_now(&d->loop);

	if (d->stopping)
		return;
	lr_api_tick(d->api);
	lr_workers_heartbeat(d->workers, d->st, 1);
	if (d->watchdog_usec > 0 && now - d->last_watchdog_ms >= d->watchdog_usec / 2000) {
		lr_notify("WATCHDOG=1");
		d->last_watchdog_ms = now;
	}
}

static void on_heartbeat(uv_timer_t *t)
{
	daemon_ctx *d = t->data;

	if (d->stopping)
		return;
	lr_workers_heartbeat(d->workers, d->st, 0);
	send_status(d);
}

static void on_recover(uv_timer_t *t)
{
	daemon_ctx *d = t->data;
	lr_store_recover_report rep = { 0, 0, 0 };
	lr_msg msg = { { 0 } };

	if (lr_store_jobs_recover(d->st, d->epoch, &rep, &msg) != 0)
		lr_log(LR_LOG_ERR, "job recovery failed", "error", msg.text, NULL);
	else if (rep.requeued || rep.failed || rep.canceled)
		lr_logf(LR_LOG_WARNING, "jobs with lapsed leases: %lld requeued, %lld failed, %lld canceled",
			(long long)rep.requeued, (long long)rep.failed, (long long)rep.canceled);
}

static void sweep(daemon_ctx *d, int64_t tmp_age_ms)
{
	lr_store_sweep_opts o;
	lr_store_sweep_report rep;
	lr_msg msg = { { 0 } };

	memset(&rep, 0, sizeof(rep));
	o.retention_ms = d->cfg.retention_days * 86400000LL;
	o.tmp_age_ms = tmp_age_ms;
	if (lr_store_sweep(d->st, &o, &rep, &msg) != 0)
		lr_log(LR_LOG_ERR, "retention sweep failed", "error", msg.text, NULL);
	else if (rep.jobs_deleted || rep.blobs_deleted || rep.tmp_files_deleted || rep.orphan_files_deleted)
		lr_logf(LR_LOG_INFO, "sweep: %lld jobs, %lld blobs (%lld bytes), %lld temporary and %lld orphan files deleted",
			(long long)rep.jobs_deleted, (long long)rep.blobs_deleted,
			(long long)rep.blob_bytes_freed, (long long)rep.tmp_files_deleted,
			(long long)rep.orphan_files_deleted);
}

static void on_sweep(uv_timer_t *t)
{
	sweep(t->data, 3600 * 1000LL);
}

static void on_stop_signal(uv_signal_t *s, int signum)
{
	daemon_ctx *d = s->data;

	if (d->stopping)
		return;
	d->stopping = 1;
	lr_logf(LR_LOG_INFO, "signal %d: stopping (running jobs are requeued)", signum);
	lr_notify("STOPPING=1");
	lr_api_set_ready(d->api, 0);
	lr_api_quiesce(d->api);
	uv_stop(&d->loop);
}

static void on_hup(uv_signal_t *s, int signum)
{
	daemon_ctx *d = s->data;
	lr_config c;
	char path[LR_CONFIG_PATH_MAX];
	lr_tokens *t = NULL;
	lr_msg msg = { { 0 } };
	int check;

	(void)signum;
	lr_notify("RELOADING=1");
	if (parse_config(d->argc, d->argv, &c, path, &check, 1) != 0) {
		lr_log(LR_LOG_ERR, "reload: the configuration is invalid; keeping the old one", NULL);
		goto out;
	}
	lr_log_setup(c.log_level, c.log_format);
	if (c.tokens_file[0] != '\0') {
		if (lr_tokens_load(c.tokens_file, &t, &msg) != 0) {
			lr_log(LR_LOG_ERR, "reload: tokens file refused; keeping the old tokens",
			       "error", msg.text, NULL);
			goto out;
		}
		lr_logf(LR_LOG_INFO, "reload: %d tokens", lr_tokens_count(t));
		lr_api_set_tokens(d->api, t);
	}
	if (strcmp(c.listen, d->cfg.listen) != 0 || strcmp(c.state_dir, d->cfg.state_dir) != 0 ||
	    c.workers != d->cfg.workers || c.http_threads != d->cfg.http_threads)
		lr_log(LR_LOG_WARNING, "reload: listen, state_dir, workers and http_threads change only on restart", NULL);
	if (strcmp(c.webhook_secret_file, d->cfg.webhook_secret_file) != 0 ||
	    strcmp(c.webhook_allow, d->cfg.webhook_allow) != 0)
		lr_log(LR_LOG_WARNING, "reload: the webhook keys (and the secret file's content) change only on restart", NULL);
out:
	lr_notify("READY=1");
}

/* Creates state_dir and takes its lock file; returns the fd or -1. */
static int lock_state_dir(const char *dir)
{
	char path[LR_CONFIG_PATH_MAX + 32];
	int fd;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		lr_logf(LR_LOG_ERR, "cannot create state_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/lowrankd.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		lr_logf(LR_LOG_ERR, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		lr_logf(LR_LOG_ERR, "another lowrankd uses state_dir %s", dir);
		close(fd);
		return -1;
	}
	return fd;
}

static void on_job_created(void *ud)
{
	daemon_ctx *d = ud;

	if (d->workers != NULL)
		lr_workers_kick(d->workers);
}

int main(int argc, char **argv)
{
	static daemon_ctx d;
	lr_tokens *tokens = NULL;
	lr_msg msg = { { 0 } };
	lr_store_recover_report rep = { 0, 0, 0 };
	lr_api_opts ao;
	lr_api_limits lim;
	lr_workers_opts wo;
	struct sockaddr_in6 sa;
	char port[16], text[256];
	const char *wd;
	int check, lock_fd = -1, status = 1, rc;

	rc = parse_config(argc, argv, &d.cfg, d.config_path, &check, 0);
	if (rc != 0)
		return rc > 0 ? 0 : 1;
	d.argc = argc;
	d.argv = argv;
	signal(SIGPIPE, SIG_IGN);
	/* Before any thread: curl_global_init is not thread-safe. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "lowrankd: libcurl failed to initialise\n");
		return 1;
	}
	lr_log_setup(d.cfg.log_level, d.cfg.log_format);

	if (lr_store_set_database(d.cfg.database, &msg) != 0) {
		lr_log(LR_LOG_ERR, "bad database setting", "error", msg.text, NULL);
		goto out;
	}
	if (lr_store_is_shared()) {
		/* Several nodes share state_dir: no lock file; liveness is
		 * the epoch's advisory lock in PostgreSQL. */
		char red[LR_CONFIG_PATH_MAX];

		lr_store_redact_uri(d.cfg.database, red, sizeof(red));
		lr_log(LR_LOG_INFO, "database", "database", red, NULL);
		if (mkdir(d.cfg.state_dir, 0700) != 0 && errno != EEXIST) {
			lr_logf(LR_LOG_ERR, "cannot create state_dir %s: %s", d.cfg.state_dir,
				strerror(errno));
			goto out;
		}
	} else {
		lock_fd = lock_state_dir(d.cfg.state_dir);
		if (lock_fd < 0)
			goto out;
	}
	rc = lr_store_open(d.cfg.state_dir, &d.st, &msg);
	if (rc == 0)
		rc = lr_store_epoch_begin(d.st, &d.epoch, &msg);
	if (rc == 0) {
		lr_notify("EXTEND_TIMEOUT_USEC=60000000");
		rc = lr_store_jobs_recover(d.st, d.epoch, &rep, &msg);
	}
	if (rc != 0) {
		lr_log(LR_LOG_ERR, "cannot open the job store", "error", msg.text, NULL);
		goto out;
	}
	lr_logf(LR_LOG_INFO, "store open, epoch %lld: %lld interrupted jobs requeued, %lld failed after too many attempts, %lld canceled",
		(long long)d.epoch, (long long)rep.requeued, (long long)rep.failed, (long long)rep.canceled);
	/* Alone on state_dir: every temp file is a dead upload. Shared with
	 * other nodes: theirs may be in flight, so only old ones go. */
	sweep(&d, lr_store_is_shared() ? 3600 * 1000LL : 0);
	if (d.cfg.tokens_file[0] != '\0') {
		rc = lr_tokens_load(d.cfg.tokens_file, &tokens, &msg);
		if (rc != 0) {
			lr_log(LR_LOG_ERR, "cannot load the tokens", "error", msg.text, NULL);
			goto out;
		}
	}
	memset(&wo, 0, sizeof(wo));
	wo.state_dir = d.cfg.state_dir;
	wo.count = (int)d.cfg.workers;
	wo.engine_threads = (int)d.cfg.blas_threads;
	wo.memory_mib = d.cfg.job_memory_mib;
	wo.epoch = d.epoch;
	wo.lease_ms = d.cfg.lease_seconds * 1000;
	rc = lr_workers_start(&wo, &d.workers, &msg);
	if (rc != 0) {
		lr_log(LR_LOG_ERR, "cannot start the workers", "error", msg.text, NULL);
		goto out;
	}
	if (d.cfg.webhook_secret_file[0] != '\0') {
		static lr_cidr allow[LR_CIDR_MAX];
		uint8_t key[LR_WEBHOOK_KEY_MAX];
		lr_hooks_opts ho;

		memset(&ho, 0, sizeof(ho));
		rc = webhook_config(&d.cfg, key, &ho.keylen, allow, &ho.nallow, &msg);
		if (rc == 0) {
			ho.state_dir = d.cfg.state_dir;
			ho.key = key;
			ho.allow = allow;
			ho.timeout_ms = d.cfg.webhook_timeout_seconds * 1000;
			ho.retry_base_ms = d.cfg.webhook_retry_base_ms;
			ho.seed = (uint64_t)d.cfg.webhook_jitter_seed;
			rc = lr_hooks_start(&ho, &d.hooks, &msg);
		}
		memset(key, 0, sizeof(key));
		if (rc != 0) {
			lr_log(LR_LOG_ERR, "cannot start webhook delivery", "error", msg.text, NULL);
			goto out;
		}
	}
	memset(&ao, 0, sizeof(ao));
	{
		unsigned salen;
		int v6, loopback;

		/* Validated by parse_config(); cannot fail here. */
		lr_config_listen_addr(d.cfg.listen, &sa, &salen, &v6, &loopback, NULL);
	}
	ao.listen = d.cfg.listen;
	ao.addr = &sa;
	ao.state_dir = d.cfg.state_dir;
	ao.tokens = tokens;
	ao.max_upload_bytes = d.cfg.max_upload_bytes;
	ao.max_concurrent_uploads = (int)d.cfg.max_concurrent_uploads;
	ao.max_queued_per_tenant = d.cfg.max_queued_per_tenant;
	ao.max_stored_bytes_per_tenant = d.cfg.max_stored_bytes_per_tenant;
	ao.max_attempts = (int)d.cfg.max_attempts;
	ao.job_memory_mib = d.cfg.job_memory_mib;
	ao.http_threads = (int)d.cfg.http_threads;
	ao.connection_limit = (int)d.cfg.connection_limit;
	ao.per_ip_connection_limit = (int)d.cfg.per_ip_connection_limit;
	ao.connection_timeout_seconds = (int)d.cfg.connection_timeout_seconds;
	ao.upload_min_bytes_per_second = d.cfg.upload_min_bytes_per_second;
	ao.on_job_created = on_job_created;
	ao.webhooks = d.hooks != NULL;
	ao.ud = &d;
	rc = lr_api_start(&ao, &d.api, &msg);
	if (rc != 0) {
		lr_log(LR_LOG_ERR, "cannot start the HTTP server", "error", msg.text, NULL);
		goto out;
	}
	tokens = NULL; /* the API owns them */
	lr_api_get_limits(d.api, &lim);
	snprintf(port, sizeof(port), "%d", lr_api_port(d.api));
	snprintf(text, sizeof(text), "connections=%u per_ip=%u timeout_s=%u epoll=%d http_threads=%d workers=%d auth=%s",
		 lim.connection_limit, lim.per_ip_connection_limit, lim.connection_timeout_seconds,
		 lim.epoll, lim.http_threads, (int)d.cfg.workers,
		 d.cfg.tokens_file[0] ? "tokens" : "none (loopback)");
	lr_log(LR_LOG_INFO, "listening", "listen", d.cfg.listen, "port", port, "limits", text,
	       "version", PACKAGE_VERSION, NULL);

	uv_loop_init(&d.loop);
	uv_signal_init(&d.loop, &d.sig_term);
	uv_signal_init(&d.loop, &d.sig_int);
	uv_signal_init(&d.loop, &d.sig_hup);
	d.sig_term.data = d.sig_int.data = d.sig_hup.data = &d;
	uv_signal_start(&d.sig_term, on_stop_signal, SIGTERM);
	uv_signal_start(&d.sig_int, on_stop_signal, SIGINT);
	uv_signal_start(&d.sig_hup, on_hup, SIGHUP);
	uv_timer_init(&d.loop, &d.tick);
	uv_timer_init(&d.loop, &d.heartbeat);
	uv_timer_init(&d.loop, &d.recover);
	uv_timer_init(&d.loop, &d.sweep);
	d.tick.data = d.heartbeat.data = d.recover.data = d.sweep.data = &d;
	wd = getenv("WATCHDOG_USEC");
	d.watchdog_usec = wd ? strtoull(wd, NULL, 10) : 0;
	uv_timer_start(&d.tick, on_tick, 500, 500);
	uv_timer_start(&d.heartbeat, on_heartbeat, (uint64_t)d.cfg.heartbeat_seconds * 1000,
		       (uint64_t)d.cfg.heartbeat_seconds * 1000);
	uv_timer_start(&d.recover, on_recover, (uint64_t)d.cfg.lease_seconds * 500,
		       (uint64_t)d.cfg.lease_seconds * 500);
	uv_timer_start(&d.sweep, on_sweep, 3600 * 1000, 3600 * 1000);

	lr_api_set_ready(d.api, 1);
	lr_notify("READY=1");
	send_status(&d);
	uv_run(&d.loop, UV_RUN_DEFAULT);

	/* Stopping: the solvers first (running jobs are requeued), then the
	 * loop's handles, then the rest in reverse order of creation. */
	lr_workers_stop(d.workers);
	/* After the workers: their last writes may add outbox rows, which
	 * stay pending for the next start. */
	lr_hooks_stop(d.hooks);
	d.hooks = NULL;
	uv_close((uv_handle_t *)&d.sig_term, NULL);
	uv_close((uv_handle_t *)&d.sig_int, NULL);
	uv_close((uv_handle_t *)&d.sig_hup, NULL);
	uv_close((uv_handle_t *)&d.tick, NULL);
	uv_close((uv_handle_t *)&d.heartbeat, NULL);
	uv_close((uv_handle_t *)&d.recover, NULL);
	uv_close((uv_handle_t *)&d.sweep, NULL);
	uv_run(&d.loop, UV_RUN_DEFAULT);
	uv_loop_close(&d.loop);
	status = 0;
out:
	lr_api_stop(d.api);
	lr_hooks_stop(d.hooks);
	lr_workers_free(d.workers);
	lr_tokens_free(tokens);
	curl_global_cleanup();
	d.st = lr_store_close(d.st);
	if (lock_fd >= 0)
		close(lock_fd);
	lr_log(LR_LOG_INFO, status == 0 ? "stopped" : "failed to start", NULL);
	return status;
}
