/*
 * conf.c - lowrankd's configuration keys.
 *
 * DESIGN. One table lists every key once: its name, type, field, range,
 * default and the one-line help with the unit. Everything else is driven
 * by the table: defaults, the file parser, the LOWRANKD_<KEY> environment,
 * the --key flags (parsed in daemon/main.c, which calls lr_config_set), the
 * --check-config printout and --help. The four layers are applied in
 * order by the caller, so a later layer simply overwrites a key: built-in
 * defaults < file < environment < flags. Values are validated when they
 * are set, and lr_config_validate() checks what involves several keys.
 */
#include "config.h"

#include "daemon/conf.h"
#include "storage/store.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum key_type { KEY_STR, KEY_INT, KEY_ENUM };

typedef struct key_def {
	const char *name;     /* key name in files; flags use --name */
	enum key_type type;
	size_t off;           /* field offset in lr_config */
	size_t size;          /* field size for strings */
	int64_t min, max;     /* range for integers */
	const char *def;      /* default, as text */
	const char *choices;  /* KEY_ENUM: "a|b|c" */
	const char *help;     /* one line, with the unit */
} key_def;

#define STR(f) KEY_STR, offsetof(lr_config, f), sizeof(((lr_config *)0)->f)
#define INT(f) KEY_INT, offsetof(lr_config, f), 0
#define ENUM(f) KEY_ENUM, offsetof(lr_config, f), sizeof(((lr_config *)0)->f)

static const key_def keys[] = {
	{ "listen", STR(listen), 0, 0, "127.0.0.1:8080", NULL,
	  "address and port to serve HTTP on (HOST:PORT, [V6]:PORT; port 0 picks a free one)" },
	{ "state_dir", STR(state_dir), 0, 0, "./var", NULL,
	  "directory for the job database, blobs and uploads in progress" },
	{ "database", STR(database), 0, 0, "sqlite", NULL,
	  "'sqlite' (the file in state_dir) or a postgresql:// URI shared by several nodes, which then share state_dir's blobs/ too (password: PGPASSFILE or a service file, never in the URI)" },
	{ "tokens_file", STR(tokens_file), 0, 0, "", NULL,
	  "bearer tokens, one 'TENANT SHA256-HEX-OF-TOKEN' per line; empty = no auth (loopback only)" },
	{ "workers", INT(workers), 1, 256, "1", NULL,
	  "solver worker threads (jobs run at once)" },
	{ "blas_threads", INT(blas_threads), 0, 1024, "0", NULL,
	  "engine threads per job; 0 = number of cores" },
	{ "job_memory_mib", INT(job_memory_mib), 64, 1048576, "2048", NULL,
	  "memory for one job's sampled responses and cached activations, MiB (the CLI's --memory-budget); also the most a job spec's memory_budget_mib may ask" },
	{ "max_upload_bytes", INT(max_upload_bytes), 1024, INT64_C(1) << 40, "2147483647", NULL,
	  "largest request body, bytes (413 above; checked before the body is read)" },
	{ "max_concurrent_uploads", INT(max_concurrent_uploads), 1, 1024, "4", NULL,
	  "request bodies received at once; more get 503 with Retry-After" },
	{ "max_queued_per_tenant", INT(max_queued_per_tenant), 1, 1000000, "16", NULL,
	  "queued plus running jobs per tenant; more get 429 with Retry-After" },
	{ "max_stored_bytes_per_tenant", INT(max_stored_bytes_per_tenant), 0, INT64_C(1) << 50, "0", NULL,
	  "bytes of uploads and results one tenant may keep; more get 507; 0 = no quota" },
	{ "retention_days", INT(retention_days), 0, 36500, "7", NULL,
	  "finished jobs and their files are deleted after this many days; 0 = keep" },
	{ "http_threads", INT(http_threads), 1, 64, "4", NULL,
	  "HTTP threads (each runs its own epoll loop)" },
	{ "connection_limit", INT(connection_limit), 1, 100000, "256", NULL,
	  "open HTTP connections in total" },
	{ "per_ip_connection_limit", INT(per_ip_connection_limit), 1, 100000, "64", NULL,
	  "open HTTP connections per client address" },
	{ "connection_timeout_seconds", INT(connection_timeout_seconds), 1, 3600, "30", NULL,
	  "an idle HTTP connection is closed after this many seconds" },
	{ "upload_min_bytes_per_second", INT(upload_min_bytes_per_second), 0, INT64_C(1) << 40, "1024", NULL,
	  "a request body slower than this on average (after 10 s) is cut off, bytes/s; 0 = off" },
	{ "heartbeat_seconds", INT(heartbeat_seconds), 1, 3600, "10", NULL,
	  "how often a running job's lease is renewed, seconds" },
	{ "lease_seconds", INT(lease_seconds), 2, 86400, "60", NULL,
	  "a running job whose lease is older than this is requeued, seconds" },
	{ "max_attempts", INT(max_attempts), 1, 100, "3", NULL,
	  "claims of one job before it fails as crashed" },
	{ "webhook_secret_file", STR(webhook_secret_file), 0, 0, "", NULL,
	  "file with the webhook signing secret, whsec_<base64> (Standard Webhooks); empty = notify_url refused" },
	{ "webhook_allow", STR(webhook_allow), 0, 0, "", NULL,
	  "comma-separated CIDR blocks webhooks may reach although not public (e.g. 10.0.0.0/8, ::1/128)" },
	{ "webhook_timeout_seconds", INT(webhook_timeout_seconds), 1, 300, "10", NULL,
	  "one webhook delivery attempt (connect and answer), seconds" },
	{ "webhook_retry_base_ms", INT(webhook_retry_base_ms), 10, 3600000, "5000", NULL,
	  "delay before the first webhook retry, ms; doubles per attempt up to an hour, for 24 h" },
	{ "webhook_jitter_seed", INT(webhook_jitter_seed), 0, INT64_MAX, "0", NULL,
	  "seed of the retry jitter (for reproducible tests); 0 = random" },
	{ "log_level", ENUM(log_level), 0, 0, "info", "error|warning|info|debug",
	  "least severe message logged" },
	{ "log_format", ENUM(log_format), 0, 0, "json", "json|text",
	  "json: one JSON object per line; text: for people" },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const key_def *key_find(const char *name)
{
	char norm[64];
	size_t i;

	for (i = 0; name[i] != '\0' && i + 1 < sizeof(norm); i++)
		norm[i] = name[i] == '-' ? '_' : name[i];
	if (name[i] != '\0')
		return NULL;
	norm[i] = '\0';
	for (size_t k = 0; k < NKEYS; k++)
		if (strcmp(keys[k].name, norm) == 0)
			return &keys[k];
	return NULL;
}

static int choice_ok(const char *choices, const char *v)
{
	size_t n = strlen(v);

	for (const char *p = choices; *p;) {
		const char *e = strchr(p, '|');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == n && strncmp(p, v, n) == 0)
			return 1;
		p += len + (e != NULL);
	}
	return 0;
}

static int key_set(lr_config *c, const key_def *k, const char *v, lr_msg *msg)
{
	char *field = (char *)c + k->off;
	char *end;
	long long n;

	switch (k->type) {
	case KEY_STR:
		if (strlen(v) >= k->size)
			return lr_fail(msg, LR_EINVAL, "%s: value is longer than %zu bytes",
				       k->name, k->size - 1);
		strcpy(field, v);
		return 0;
	case KEY_ENUM:
		if (!choice_ok(k->choices, v))
			return lr_fail(msg, LR_EINVAL, "%s: must be one of %s", k->name,
				       k->choices);
		strcpy(field, v);
		return 0;
	case KEY_INT:
		errno = 0;
		n = strtoll(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0' || n < k->min || n > k->max)
			return lr_fail(msg, LR_EINVAL,
				       "%s: must be an integer from %lld to %lld",
				       k->name, (long long)k->min, (long long)k->max);
		*(int64_t *)(void *)field = n;
		return 0;
	}
	return LR_EINVAL;
}

void lr_config_defaults(lr_config *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t k = 0; k < NKEYS; k++)
		LR_ASSERT(key_set(c, &keys[k], keys[k].def, NULL) == 0);
}

int lr_config_set(lr_config *c, const char *key, const char *value, lr_msg *msg)
{
	const key_def *k = key_find(key);

	if (k == NULL)
		return lr_fail(msg, LR_EINVAL, "unknown key '%.64s'", key);
	return key_set(c, k, value, msg);
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
			 e[-1] == '\n'))
		*--e = '\0';
	return s;
}

int lr_config_load_file(lr_config *c, const char *path, lr_msg *msg)
{
	FILE *f = fopen(path, "r");
	char line[8192];
	int lineno = 0, rc = 0;

	if (f == NULL)
		return lr_fail(msg, -errno, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		char *s, *eq, *key, *val;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			rc = lr_fail(msg, LR_EINVAL, "%s:%d: line too long", path, lineno);
			goto out;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (eq == NULL) {
			rc = lr_fail(msg, LR_EINVAL, "%s:%d: expected 'key = value'",
				     path, lineno);
			goto out;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		/* A value may be quoted to keep surrounding blanks or a '#'. */
		if (val[0] == '"' && strlen(val) >= 2 && val[strlen(val) - 1] == '"') {
			val[strlen(val) - 1] = '\0';
			val++;
		}
		rc = lr_config_set(c, key, val, msg);
		if (rc != 0) {
			lr_msg_prefix(msg, "%s:%d", path, lineno);
			goto out;
		}
	}
	if (ferror(f))
		rc = lr_fail(msg, LR_EIO, "%s: read error", path);
out:
	fclose(f);
	return rc;
}

int lr_config_load_env(lr_config *c, const char *(*get)(const char *name),
		       lr_msg *msg)
{
	char var[96];

	for (size_t k = 0; k < NKEYS; k++) {
		const char *v;
		size_t i;
		int rc;

		snprintf(var, sizeof(var), "LOWRANKD_");
		for (i = 0; keys[k].name[i] != '\0'; i++)
			var[9 + i] = (char)toupper((unsigned char)keys[k].name[i]);
		var[9 + i] = '\0';
		v = get(var);
		if (v == NULL)
			continue;
		rc = key_set(c, &keys[k], v, msg);
		if (rc != 0) {
			lr_msg_prefix(msg, "environment %s", var);
			return rc;
		}
	}
	return 0;
}

int lr_config_listen_addr(const char *listen, void *sa, unsigned *salen,
			  int *v6, int *loopback, lr_msg *msg)
{
	char host[128];
	const char *colon, *h = listen;
	size_t hl;
	char *end;
	long port;

	if (listen[0] == '[') {
		const char *rb = strchr(listen, ']');

		if (rb == NULL || rb[1] != ':')
			goto bad;
		h = listen + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(listen, ':');
		if (colon == NULL)
			goto bad;
		hl = (size_t)(colon - listen);
	}
	if (hl == 0 || hl >= sizeof(host))
		goto bad;
	memcpy(host, h, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
		goto bad;
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	memset(sa, 0, sizeof(struct sockaddr_in6));
	if (strchr(host, ':') == NULL) {
		struct sockaddr_in *a = sa;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			goto bad;
		*salen = sizeof(*a);
		*v6 = 0;
		*loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	} else {
		struct sockaddr_in6 *a = sa;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			goto bad;
		*salen = sizeof(*a);
		*v6 = 1;
		*loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
	}
	return 0;
bad:
	return lr_fail(msg, LR_EINVAL,
		       "listen: '%.200s' is not HOST:PORT with a numeric IPv4 or [IPv6] host and port 0-65535",
		       listen);
}

int lr_config_validate(const lr_config *c, lr_msg *msg)
{
	struct sockaddr_in6 sa;
	unsigned salen;
	int v6, loopback, rc;

	rc = lr_config_listen_addr(c->listen, &sa, &salen, &v6, &loopback, msg);
	if (rc != 0)
		return rc;
	if (!loopback && c->tokens_file[0] == '\0')
		return lr_fail(msg, LR_EINVAL,
			       "listen: %s is not a loopback address, so tokens_file must be set (auth is required)",
			       c->listen);
	if (c->state_dir[0] == '\0')
		return lr_fail(msg, LR_EINVAL, "state_dir: must not be empty");
	if (strcmp(c->database, "sqlite") != 0 &&
	    strncmp(c->database, "postgresql://", 13) != 0 &&
	    strncmp(c->database, "postgres://", 11) != 0)
		return lr_fail(msg, LR_EINVAL,
			       "database: expected 'sqlite' or a postgresql:// URI");
	if (c->heartbeat_seconds * 2 > c->lease_seconds)
		return lr_fail(msg, LR_EINVAL,
			       "lease_seconds: must be at least twice heartbeat_seconds");
	return 0;
}

static void print_value(const lr_config *c, const key_def *k, FILE *f)
{
	const char *field = (const char *)c + k->off;

	if (k->type == KEY_INT)
		fprintf(f, "%lld", (long long)*(const int64_t *)(const void *)field);
	else
		fputs(field, f);
}

void lr_config_print(const lr_config *c, FILE *f)
{
	fputs("# lowrankd effective configuration\n", f);
	for (size_t k = 0; k < NKEYS; k++) {
		fprintf(f, "%s = ", keys[k].name);
		if (strcmp(keys[k].name, "database") == 0) {
			char red[LR_CONFIG_PATH_MAX];

			/* never print a password given in the URI */
			lr_store_redact_uri(c->database, red, sizeof(red));
			fputs(red, f);
		} else {
			print_value(c, &keys[k], f);
		}
		fputc('\n', f);
	}
}

void lr_config_print_help(FILE *f)
{
	for (size_t k = 0; k < NKEYS; k++) {
		char flag[64];

		snprintf(flag, sizeof(flag), "--%s", keys[k].name);
		for (char *p = flag + 2; *p; p++)
			if (*p == '_')
				*p = '-';
		fprintf(f, "  %-32s %s\n  %-32s (default: %s)\n", flag, keys[k].help,
			"", keys[k].def[0] ? keys[k].def : "unset");
	}
}
