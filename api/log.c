/*
 * log.c - JSON-lines and text logging.
 *
 * DESIGN. A line is built in a stack buffer (fields are escaped as JSON
 * strings and truncated to fit) and written with one write(2) to fd 2, so
 * concurrent lines stay whole without a lock. Under systemd, stderr goes to
 * the journal; the text format, and the JSON format when $JOURNAL_STREAM
 * says stderr is the journal, start each line with the "<N>" priority
 * prefix that journald turns into PRIORITY=. The level and format are atomics so
 * SIGHUP can change them while other threads log.
 */
#include "config.h"

#include "api/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = LR_LOG_INFO;
static atomic_int log_json = 1;
static atomic_int log_journal = -1; /* 1 when stderr is journald's stream */

void lr_log_setup(const char *level, const char *format)
{
	if (level != NULL) {
		if (strcmp(level, "error") == 0)
			atomic_store(&log_level, LR_LOG_ERR);
		else if (strcmp(level, "warning") == 0)
			atomic_store(&log_level, LR_LOG_WARNING);
		else if (strcmp(level, "info") == 0)
			atomic_store(&log_level, LR_LOG_INFO);
		else if (strcmp(level, "debug") == 0)
			atomic_store(&log_level, LR_LOG_DEBUG);
	}
	if (format != NULL && (strcmp(format, "json") == 0 || strcmp(format, "text") == 0))
		atomic_store(&log_json, strcmp(format, "json") == 0);
	atomic_store(&log_journal, getenv("JOURNAL_STREAM") != NULL);
}

int lr_log_enabled(int level)
{
	return level <= atomic_load(&log_level);
}

typedef struct line {
	char buf[8192];
	size_t n;
} line;

static void put(line *l, const char *s, size_t n)
{
	if (n > sizeof(l->buf) - 2 - l->n)
		n = sizeof(l->buf) - 2 - l->n;
	memcpy(l->buf + l->n, s, n);
	l->n += n;
}

static void put_json_str(line *l, const char *s)
{
	put(l, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(l, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			put(l, esc, 6);
		} else {
			put(l, (const char *)&c, 1);
		}
	}
	put(l, "\"", 1);
}

static const char *level_name(int level)
{
	switch (level) {
	case LR_LOG_ERR: return "error";
	case LR_LOG_WARNING: return "warning";
	case LR_LOG_INFO: return "info";
	default: return "debug";
	}
}

static void vlog(int level, const char *msg, va_list ap)
{
	line l;
	struct timeval tv;
	struct tm tm;
	char ts[64];
	const char *k, *v;
	ssize_t w;

	l.n = 0;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec);
	if (atomic_load(&log_json)) {
		if (atomic_load(&log_journal) == 1) {
			/* journald takes the priority from the prefix and keeps
			 * the JSON as MESSAGE. */
			char pre[8];

			snprintf(pre, sizeof(pre), "<%d>", level);
			put(&l, pre, strlen(pre));
		}
		put(&l, "{\"ts\":\"", 7);
		put(&l, ts, strlen(ts));
		put(&l, "\",\"level\":\"", 11);
		put(&l, level_name(level), strlen(level_name(level)));
		put(&l, "\",\"msg\":", 8);
		put_json_str(&l, msg);
		while ((k = va_arg(ap, const char *)) != NULL) {
			v = va_arg(ap, const char *);
			if (v == NULL)
				continue;
			put(&l, ",", 1);
			put_json_str(&l, k);
			put(&l, ":", 1);
			put_json_str(&l, v);
		}
		put(&l, "}", 1);
	} else {
		char pre[8];

		snprintf(pre, sizeof(pre), "<%d>", level);
		put(&l, pre, strlen(pre));
		put(&l, msg, strlen(msg));
		while ((k = va_arg(ap, const char *)) != NULL) {
			v = va_arg(ap, const char *);
			if (v == NULL)
				continue;
			put(&l, " ", 1);
			put(&l, k, strlen(k));
			put(&l, "=", 1);
			put(&l, v, strlen(v));
		}
	}
	l.buf[l.n++] = '\n';
	w = write(2, l.buf, l.n);
	(void)w;
}

void lr_log(int level, const char *msg, ...)
{
	va_list ap;

	if (!lr_log_enabled(level))
		return;
	va_start(ap, msg);
	vlog(level, msg, ap);
	va_end(ap);
}

static void log_none(int level, const char *msg, ...)
{
	va_list ap;

	va_start(ap, msg);
	vlog(level, msg, ap);
	va_end(ap);
}

void lr_logf(int level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (!lr_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_none(level, msg, NULL);
}
