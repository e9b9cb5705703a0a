/*
 * hooks.c - the webhook delivery thread.
 *
 * DESIGN. One dedicated thread (never the libuv loop, whose callbacks must
 * not block on the network, nor libuv's shared pool) with its own store
 * connection polls the outbox (storage/hooks.c) twice a second and sends
 * every due row with libcurl, one at a time: deliveries are rare (one per
 * finished job) and each is bounded by webhook_timeout_seconds. The
 * payload is {"type", "timestamp", "data": the job resource} and is
 * frozen in the row at the first attempt, so every retry carries the same
 * bytes and the same webhook-id; only webhook-timestamp and the signature
 * change per attempt, as Standard Webhooks prescribes.
 *
 * Before each attempt the URL's host is resolved here and every address is
 * judged by lr_addr_class() and webhook_allow; the first acceptable one is
 * pinned with CURLOPT_RESOLVE, so curl connects to exactly the address
 * that was checked (a DNS answer that changes between check and connect,
 * "DNS rebinding", cannot redirect it). Redirects are not followed,
 * proxies from the environment are ignored (they would bypass the pin),
 * and only http and https are allowed. A refused target fails the
 * delivery for good (the policy will not change by retrying); a network
 * error, a timeout or a non-2xx answer is retried after
 * base * 2^(attempts-1) ms, capped at an hour, with equal jitter (half
 * fixed, half random from a seeded xorshift generator), until 24 h after
 * the row was written.
 */
#include "config.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "api/api.h"
#include "api/log.h"
#include "api/webhook.h"
#include "daemon/daemon.h"

#define LR_HOOKS_POLL_MS 500
#define LR_HOOKS_BATCH 8
#define LR_HOOKS_RETRY_MAX_MS (3600 * 1000LL)
#define LR_HOOKS_GIVE_UP_MS (24 * 3600 * 1000LL)
#define LR_HOOKS_ANSWER_MAX 65536 /* response bytes read, then dropped */

struct lr_hooks {
	lr_hooks_opts o;              /* copied; key and allow list owned */
	uint8_t key[LR_WEBHOOK_KEY_MAX];
	lr_cidr allow[LR_CIDR_MAX];
	lr_store *st;                 /* the thread's connection */
	pthread_t thread;
	int started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	atomic_int stop;
	uint64_t rng;                 /* xorshift64 state */
};

static uint64_t rng_next(lr_hooks *h)
{
	uint64_t x = h->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	h->rng = x;
	return x;
}

int64_t lr_hooks_backoff_ms(lr_hooks *h, int attempts)
{
	int64_t d = h->o.retry_base_ms;

	for (int i = 1; i < attempts && d < LR_HOOKS_RETRY_MAX_MS; i++)
		d *= 2;
	if (d > LR_HOOKS_RETRY_MAX_MS)
		d = LR_HOOKS_RETRY_MAX_MS;
	return d / 2 + (int64_t)(rng_next(h) % (uint64_t)(d / 2 + 1));
}

static void rfc3339(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
		 (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
		 tm.tm_sec % 100, (int)(ms % 1000));
}

/* The payload of row `r`, printed compactly; NULL when out of memory. */
static char *payload(lr_hooks *h, const lr_store_hook *r)
{
	cJSON *o = cJSON_CreateObject(), *data = NULL;
	char ts[64], *text = lr_api_job_resource(h->st, r->tenant, r->job_id), *out = NULL;

	if (o == NULL)
		goto out;
	data = text ? cJSON_Parse(text) : NULL;
	if (data == NULL) {
		/* The job was deleted before the first attempt. */
		data = cJSON_CreateObject();
		cJSON_AddStringToObject(data, "id", r->job_id);
		cJSON_AddStringToObject(data, "state", r->event + 4);
		cJSON_AddBoolToObject(data, "deleted", 1);
	}
	rfc3339(r->event_ms, ts, sizeof(ts));
	cJSON_AddStringToObject(o, "type", r->event);
	cJSON_AddStringToObject(o, "timestamp", ts);
	cJSON_AddItemToObject(o, "data", data);
	out = cJSON_PrintUnformatted(o);
out:
	cJSON_Delete(o);
	free(text);
	return out;
}

/*
 * Resolves `host` and picks the first address the policy accepts, as text
 * in `addr` (v6 in brackets, for CURLOPT_RESOLVE). Returns 0; 1 when every
 * address is refused (why in err); -1 when DNS fails (err).
 */
static int pick_address(lr_hooks *h, const char *host, char *addr, size_t addrlen, char *err,
			size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	char text[INET6_ADDRSTRLEN], first_refused[INET6_ADDRSTRLEN + 64] = "";
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve %.200s: %s", host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		const void *a = ai->ai_family == AF_INET
					? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
					: (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
		const char *why;

		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		inet_ntop(ai->ai_family, a, text, sizeof(text));
		why = lr_addr_class(ai->ai_addr);
		if (why == NULL || lr_cidr_list_match(h->allow, h->o.nallow, ai->ai_addr)) {
			snprintf(addr, addrlen, ai->ai_family == AF_INET6 ? "[%s]" : "%s", text);
			freeaddrinfo(res);
			return 0;
		}
		if (first_refused[0] == '\0')
			snprintf(first_refused, sizeof(first_refused), "%s (%s)", text, why);
	}
	freeaddrinfo(res);
	snprintf(err, errlen,
		 "refused: %.200s resolves only to addresses outside the public internet, e.g. %s; list it in webhook_allow to allow it",
		 host, first_refused[0] ? first_refused : "none");
	return 1;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	size_t *got = ud;

	(void)p;
	*got += size * n;
	return *got > LR_HOOKS_ANSWER_MAX ? 0 : size * n;
}

static int xfer_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	lr_hooks *h = ud;

	(void)a;
	(void)b;
	(void)c;
	(void)d;
	return atomic_load(&h->stop) ? 1 : 0;
}

/*
 * One attempt: returns LR_API_HOOK_* and sets *status (HTTP status or 0)
 * and err.
 */
static int send_once(lr_hooks *h, const lr_store_hook *r, const char *body, int *status,
		     char *err, size_t errlen)
{
	CURLU *u = curl_url();
	CURL *c = NULL;
	struct curl_slist *hdrs = NULL, *resolve = NULL;
	char *host = NULL, *port = NULL, addr[INET6_ADDRSTRLEN + 3], line[512];
	char sig[LR_WEBHOOK_SIG_MAX], hostbuf[300], cerr[CURL_ERROR_SIZE] = "";
	int64_t ts = (int64_t)time(NULL);
	size_t got = 0;
	long code = 0;
	int outcome = LR_API_HOOK_NET_ERROR, pr;
	CURLcode cc;

	*status = 0;
	err[0] = '\0';
	if (u == NULL || curl_url_set(u, CURLUPART_URL, r->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		snprintf(err, errlen, "refused: notify_url cannot be parsed");
		outcome = LR_API_HOOK_REFUSED;
		goto out;
	}
	/* getaddrinfo wants an IPv6 literal without its brackets. */
	snprintf(hostbuf, sizeof(hostbuf), "%s", host);
	if (hostbuf[0] == '[') {
		char *e = strchr(hostbuf, ']');

		if (e != NULL)
			*e = '\0';
		memmove(hostbuf, hostbuf + 1, strlen(hostbuf));
		/* A zone id ("%25eth0") makes the address link-local anyway. */
	}
	pr = pick_address(h, hostbuf, addr, sizeof(addr), err, errlen);
	if (pr != 0) {
		outcome = pr > 0 ? LR_API_HOOK_REFUSED : LR_API_HOOK_NET_ERROR;
		goto out;
	}
	snprintf(line, sizeof(line), "%s:%s:%s", host, port, addr);
	resolve = curl_slist_append(NULL, line);
	lr_webhook_sign(h->key, h->o.keylen, r->id, ts, body, strlen(body), sig);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	snprintf(line, sizeof(line), "webhook-id: %s", r->id);
	hdrs = curl_slist_append(hdrs, line);
	snprintf(line, sizeof(line), "webhook-timestamp: %lld", (long long)ts);
	hdrs = curl_slist_append(hdrs, line);
	snprintf(line, sizeof(line), "webhook-signature: %s", sig);
	hdrs = curl_slist_append(hdrs, line);
	hdrs = curl_slist_append(hdrs, "Expect:");
	c = curl_easy_init();
	if (c == NULL || resolve == NULL || hdrs == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_CURLU, u);
	curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->o.timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->o.timeout_ms);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "lowrankd/" PACKAGE_VERSION " (webhooks)");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xfer_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	*status = (int)code;
	if (code >= 200 && code < 300 && (cc == CURLE_OK || cc == CURLE_WRITE_ERROR)) {
		outcome = LR_API_HOOK_DELIVERED;
	} else if (code > 0) {
		outcome = LR_API_HOOK_HTTP_ERROR;
		snprintf(err, errlen, "HTTP %ld from %s", code, addr);
	} else {
		outcome = LR_API_HOOK_NET_ERROR;
		snprintf(err, errlen, "%s: %s", addr, cerr[0] ? cerr : curl_easy_strerror(cc));
	}
out:
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	curl_slist_free_all(resolve);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return outcome;
}

static void deliver(lr_hooks *h, const lr_store_hook *r)
{
	static const char *const names[] = { "delivered", "http_error", "network_error",
					     "refused", "gave_up" };
	char err[600], status_text[16], attempt[16];
	char *body = r->body ? strdup(r->body) : payload(h, r);
	enum lr_hook_outcome next_state;
	int64_t now, next = 0;
	lr_msg msg = { { 0 } };
	int status = 0, outcome;

	if (body == NULL)
		return; /* out of memory: try again at the next poll */
	outcome = send_once(h, r, body, &status, err, sizeof(err));
	now = lr_store_now_ms();
	lr_api_observe_webhook((enum lr_api_hook_outcome)outcome);
	if (outcome == LR_API_HOOK_DELIVERED) {
		next_state = LR_HOOK_DELIVERED;
	} else if (outcome == LR_API_HOOK_REFUSED) {
		next_state = LR_HOOK_FAILED;
	} else {
		next = now + lr_hooks_backoff_ms(h, r->attempts + 1);
		next_state = LR_HOOK_RETRY;
		if (next > r->created_ms + LR_HOOKS_GIVE_UP_MS) {
			next_state = LR_HOOK_FAILED;
			lr_api_observe_webhook(LR_API_HOOK_GAVE_UP);
		}
	}
	snprintf(status_text, sizeof(status_text), "%d", status);
	snprintf(attempt, sizeof(attempt), "%d", r->attempts + 1);
	lr_log(outcome == LR_API_HOOK_DELIVERED ? LR_LOG_INFO : LR_LOG_WARNING,
	       next_state == LR_HOOK_DELIVERED ? "webhook delivered"
	       : next_state == LR_HOOK_RETRY  ? "webhook attempt failed; will retry"
					      : "webhook failed for good",
	       "webhook_id", r->id, "job_id", r->job_id, "event", r->event, "attempt", attempt,
	       "outcome", names[outcome], "status", status ? status_text : NULL,
	       "error", err[0] ? err : NULL, NULL);
	if (lr_store_hook_attempt(h->st, r->id, body, next_state, next, status,
				  err[0] ? err : NULL, &msg) != 0)
		lr_log(LR_LOG_ERR, "cannot record a webhook attempt", "webhook_id", r->id, "error",
		       msg.text, NULL);
	free(body);
}

static void *run(void *arg)
{
	lr_hooks *h = arg;

	while (!atomic_load(&h->stop)) {
		lr_store_hook *due = NULL;
		size_t n = 0;
		lr_msg msg = { { 0 } };

		/* Claimed (several nodes on PostgreSQL) for the whole batch's
		 * worst case, plus a margin. */
		if (lr_store_hooks_due(h->st, lr_store_now_ms(), LR_HOOKS_BATCH,
				       LR_HOOKS_BATCH * (h->o.timeout_ms + 5000), &due, &n, &msg) != 0)
			lr_log(LR_LOG_ERR, "cannot read the webhook outbox", "error", msg.text, NULL);
		for (size_t i = 0; i < n && !atomic_load(&h->stop); i++)
			deliver(h, &due[i]);
		lr_store_hooks_free(due, n);
		if (n == LR_HOOKS_BATCH)
			continue; /* more may be due */
		pthread_mutex_lock(&h->lock);
		if (!atomic_load(&h->stop)) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += LR_HOOKS_POLL_MS * 1000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&h->wake, &h->lock, &ts);
		}
		pthread_mutex_unlock(&h->lock);
	}
	return NULL;
}

int lr_hooks_start(const lr_hooks_opts *o, lr_hooks **out, lr_msg *msg)
{
	lr_hooks *h;
	int rc;

	*out = NULL;
	if (o->keylen < LR_WEBHOOK_KEY_MIN || o->keylen > LR_WEBHOOK_KEY_MAX || o->nallow < 0 ||
	    o->nallow > LR_CIDR_MAX || o->timeout_ms <= 0 || o->retry_base_ms <= 0)
		return lr_fail(msg, LR_EINVAL, "webhooks: bad options");
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return lr_fail(msg, LR_ENOMEM, "out of memory");
	h->o = *o;
	memcpy(h->key, o->key, o->keylen);
	if (o->nallow > 0)
		memcpy(h->allow, o->allow, (size_t)o->nallow * sizeof(*o->allow));
	h->o.key = h->key;
	h->o.allow = h->allow;
	h->rng = o->seed;
	if (h->rng == 0 && getrandom(&h->rng, sizeof(h->rng), 0) != (ssize_t)sizeof(h->rng))
		h->rng = (uint64_t)time(NULL);
	if (h->rng == 0)
		h->rng = 0x9e3779b97f4a7c15ULL;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->wake, NULL);
	rc = lr_store_open(o->state_dir, &h->st, msg);
	if (rc != 0)
		goto fail;
	rc = pthread_create(&h->thread, NULL, run, h);
	if (rc != 0) {
		rc = lr_fail(msg, -rc, "webhooks: cannot start the delivery thread");
		goto fail;
	}
	h->started = 1;
	h->o.state_dir = NULL;
	*out = h;
	return 0;
fail:
	lr_hooks_stop(h);
	return rc;
}

void lr_hooks_kick(lr_hooks *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	pthread_cond_signal(&h->wake);
	pthread_mutex_unlock(&h->lock);
}

void lr_hooks_stop(lr_hooks *h)
{
	if (h == NULL)
		return;
	if (h->started) {
		pthread_mutex_lock(&h->lock);
		atomic_store(&h->stop, 1);
		pthread_cond_signal(&h->wake);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->thread, NULL);
	}
	lr_store_close(h->st);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->wake);
	memset(h->key, 0, sizeof(h->key));
	free(h);
}
