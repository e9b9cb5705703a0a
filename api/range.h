/*
 * range.h - the HTTP Range request header (RFC 9110 section 14.2), for one
 * byte range: "bytes=a-b", "bytes=a-" and "bytes=-n".
 */
#ifndef LR_RANGE_H
#define LR_RANGE_H

#include <stdint.h>

/* What to answer. */
typedef enum lr_range_result {
	LR_RANGE_FULL = 0,      /* ignore the header: 200 with the whole body */
	LR_RANGE_PARTIAL = 1,   /* 206 with [*start, *start + *len) */
	LR_RANGE_UNSATISFIABLE = 2, /* 416 with Content-Range: bytes * / size */
} lr_range_result;

/*
 * Interprets the Range header `value` (NULL when absent) for a
 * representation of `size` bytes. A header that does not parse, a unit
 * other than bytes, or several ranges give LR_RANGE_FULL (RFC 9110 allows
 * ignoring Range). A range whose first byte is at or past the end, or a
 * zero-length suffix, gives LR_RANGE_UNSATISFIABLE. Otherwise *start and
 * *len (>= 1) are set, with the last byte clamped to size - 1. Never
 * fails; pure.
 */
lr_range_result lr_range_parse(const char *value, uint64_t size,
			       uint64_t *start, uint64_t *len);

#endif /* LR_RANGE_H */
