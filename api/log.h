/*
 * log.h - lowrankd's one logging module: JSON lines (or text) on stderr.
 *
 * api/ and daemon/ log at their boundaries; library modules (model/,
 * solver/, storage/) return codes and messages and never log.
 */
#ifndef LR_LOG_H
#define LR_LOG_H

/* Syslog severities, so journald's <N> prefixes line up. */
enum lr_log_level {
	LR_LOG_ERR = 3,
	LR_LOG_WARNING = 4,
	LR_LOG_INFO = 6,
	LR_LOG_DEBUG = 7,
};

/*
 * Sets the least severe level logged and the format: `level` is "error",
 * "warning", "info" or "debug"; `format` "json" or "text". Unknown names
 * keep the current setting. Thread-safe; may be called again (SIGHUP).
 */
void lr_log_setup(const char *level, const char *format);

/* 1 when messages of `level` are written (check before costly formatting). */
int lr_log_enabled(int level);

/*
 * Writes one line: the message `msg` and then NULL-terminated pairs of
 * field name and string value (a NULL value skips the pair), e.g.
 *   lr_log(LR_LOG_INFO, "job started", "job_id", id, NULL);
 * JSON: {"ts":"<RFC 3339 UTC, microseconds>","level":"info","msg":...,
 * "job_id":...}. Each line is written with one write(2), so lines from
 * different threads never interleave. Never fails visibly.
 */
void lr_log(int level, const char *msg, ...) __attribute__((sentinel));

/* Like lr_log() with a printf-formatted message and no fields. */
void lr_logf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* LR_LOG_H */
