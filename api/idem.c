/*
 * idem.c - Idempotency-Key on POST /v1/jobs and PUT /v1/blobs
 * (draft-ietf-httpapi-idempotency-key-header), and the webhook counters
 * of /metrics.
 *
 * DESIGN. On the first call of a body route (headers only) the key is
 * parsed and taken in the store (lr_store_idem_begin): free -> this
 * request holds it; held by a request in flight -> 409 at once, before
 * the body; already answered -> the body is still read (the fingerprint
 * needs it) and, at its end, the same request gets the first answer
 * replayed (status, Location, body, plus "Idempotent-Replayed: true") and
 * a different one gets 422. The fingerprint is SHA-256 over the method,
 * the path and the body's digest: the blob's SHA-256 for PUT /v1/blobs; for
 * POST /v1/jobs the raw JSON body, or for multipart the model's and the
 * calibration's SHA-256 and the spec part, so a client that retries with a
 * new multipart boundary (curl draws one per run) is still recognised. A
 * held key is marked done with the answer on success (for jobs in the
 * job's own transaction); an error answer releases it as the answer is
 * queued (not when the response has been sent: a client retrying the
 * moment it read a 4xx got 409 "in use"), and a dropped connection when
 * the request ends, so the client may retry.
 */
#include "config.h"

#include "api/api-int.h"

#include <nettle/sha2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/log.h"
#include "api/webhook.h"

static atomic_llong metric_hooks[LR_API_HOOK_NOUTCOMES];

void lr_api_observe_webhook(enum lr_api_hook_outcome outcome)
{
	if ((int)outcome >= 0 && outcome < LR_API_HOOK_NOUTCOMES)
		atomic_fetch_add(&metric_hooks[outcome], 1);
}

char *lr__hooks_metrics(lr_store *st)
{
	static const char *const names[LR_API_HOOK_NOUTCOMES] = {
		"delivered", "http_error", "network_error", "refused", "gave_up"
	};
	int64_t counts[3] = { 0, 0, 0 };
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (f == NULL)
		return NULL;
	fputs("# HELP lowrankd_webhook_attempts_total Webhook delivery attempts this process made, by outcome (gave_up: retries exhausted, counted besides the last attempt's outcome).\n"
	      "# TYPE lowrankd_webhook_attempts_total counter\n", f);
	for (int i = 0; i < LR_API_HOOK_NOUTCOMES; i++)
		fprintf(f, "lowrankd_webhook_attempts_total{outcome=\"%s\"} %lld\n", names[i],
			(long long)atomic_load(&metric_hooks[i]));
	if (st != NULL && lr_store_hooks_count(st, counts, NULL) == 0)
		fprintf(f, "# HELP lowrankd_webhooks Webhook deliveries in the outbox by state.\n"
			   "# TYPE lowrankd_webhooks gauge\n"
			   "lowrankd_webhooks{state=\"pending\"} %lld\n"
			   "lowrankd_webhooks{state=\"delivered\"} %lld\n"
			   "lowrankd_webhooks{state=\"failed\"} %lld\n",
			(long long)counts[0], (long long)counts[1], (long long)counts[2]);
	fclose(f);
	return out;
}

/* SHA-256 hex of the parts given (NULL-terminated list of strings). */
static void fingerprint(char out[LR_STORE_SHA_LEN + 1], ...)
{
	struct sha256_ctx ctx;
	uint8_t d[SHA256_DIGEST_SIZE];
	const char *s;
	va_list ap;

	sha256_init(&ctx);
	va_start(ap, out);
	while ((s = va_arg(ap, const char *)) != NULL) {
		sha256_update(&ctx, strlen(s), (const uint8_t *)s);
		sha256_update(&ctx, 1, (const uint8_t *)"\n");
	}
	va_end(ap);
	sha256_digest(&ctx, sizeof(d), d);
	for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The fingerprint of this request, from what the body gave. For PUT
 * /v1/blobs `blob_sha` is the body's digest. */
void lr__idem_fingerprint(lr_req *r, const char *blob_sha, char out[LR_STORE_SHA_LEN + 1])
{
	char body[LR_STORE_SHA_LEN + 1];

	if (r->route == R_BLOB_PUT) {
		fingerprint(out, "PUT", "/v1/blobs", blob_sha, NULL);
		return;
	}
	fingerprint(body, r->text ? r->text : "", NULL);
	if (r->mp != NULL)
		fingerprint(out, "POST", "/v1/jobs", "multipart", r->model_sha, r->calib_sha, body,
			    NULL);
	else
		fingerprint(out, "POST", "/v1/jobs", "json", body, NULL);
}

enum MHD_Result lr__idem_first(lr_req *r, int *answered)
{
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Idempotency-Key");
	lr_store *st = lr__api_store(r->api);
	lr_msg msg = { { 0 } };
	int rc;

	*answered = 0;
	if (h == NULL)
		return MHD_YES;
	*answered = 1;
	if (lr_idem_key_parse(h, r->idem_key, sizeof(r->idem_key), &msg) != 0)
		return lr__api_problem(r, 400, "bad-request", "%s", msg.text);
	if (st == NULL)
		return lr__api_problem(r, 503, "not-ready", "the job store is not available");
	rc = lr_store_idem_begin(st, r->tenant, r->idem_key, &r->idem_rec, &msg);
	if (rc != 0)
		return lr__api_store_error(r, rc, &msg);
	if (r->idem_rec.state == LR_IDEM_BUSY) {
		r->idem_key[0] = '\0';
		return lr__api_problem(r, 409, "idempotency-key-in-use",
				       "a request with this Idempotency-Key is still being processed; retry after it has been answered");
	}
	r->idem = r->idem_rec.state == LR_IDEM_NEW ? LR_REQ_IDEM_HELD : LR_REQ_IDEM_REPLAY;
	*answered = 0;
	return MHD_YES;
}

enum MHD_Result lr__idem_replay(lr_req *r, const char *fp)
{
	lr_store *st = lr__api_store(r->api);
	lr_store_idem *rec = &r->idem_rec;
	cJSON *body = NULL;

	if (strcmp(fp, rec->fingerprint) != 0)
		return lr__api_problem(r, 422, "idempotency-key-reused",
				       "this Idempotency-Key was used for a different request (another body, or another endpoint) in the last 24 h");
	if (rec->body != NULL)
		body = cJSON_Parse(rec->body);
	if (body == NULL && st != NULL && r->route == R_JOB_CREATE) {
		char *text = lr_api_job_resource(st, r->tenant, rec->resource);

		body = text ? cJSON_Parse(text) : NULL;
		free(text);
	}
	if (body == NULL)
		body = cJSON_CreateObject();
	if (r->route == R_JOB_CREATE && lr_store_id_valid(rec->resource))
		memcpy(r->job_id, rec->resource, sizeof(r->job_id));
	lr_log(LR_LOG_INFO, "idempotent replay", "request_id", r->rid, "tenant", r->tenant,
	       "resource", rec->resource, NULL);
	return lr__api_json(r, (unsigned)(rec->status ? rec->status : 200), body, "Location",
			    rec->location, "Idempotent-Replayed", "true", NULL);
}

void lr__idem_complete(lr_req *r, int status, const char *resource, const char *location,
		       const char *fp, const cJSON *body)
{
	lr_store *st = lr__api_store(r->api);
	char *text = body ? cJSON_PrintUnformatted(body) : NULL;
	lr_msg msg = { { 0 } };

	if (r->idem != LR_REQ_IDEM_HELD || st == NULL) {
		free(text);
		return;
	}
	if (lr_store_idem_complete(st, r->tenant, r->idem_key, fp, status, resource, location,
				   text, &msg) != 0)
		lr_log(LR_LOG_WARNING, "idempotency key not recorded", "request_id", r->rid,
		       "error", msg.text, NULL);
	r->idem = LR_REQ_IDEM_NONE;
	free(text);
}

void lr__idem_release(lr_req *r)
{
	lr_store *st;

	if (r->idem == LR_REQ_IDEM_HELD && (st = lr__api_store(r->api)) != NULL)
		(void)lr_store_idem_release(st, r->tenant, r->idem_key, NULL);
	r->idem = LR_REQ_IDEM_NONE;
}

void lr__idem_free(lr_req *r)
{
	lr__idem_release(r);
	lr_store_idem_fini(&r->idem_rec);
}
