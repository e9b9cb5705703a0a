/*
 * multipart.h - a streaming multipart/form-data (RFC 7578) parser.
 *
 * The body is fed in chunks of any size, as libmicrohttpd hands them over;
 * part contents go straight to callbacks (the API writes file parts to
 * disk), so the body is never held in memory. Only part headers are
 * buffered, up to a limit.
 */
#ifndef LR_MULTIPART_H
#define LR_MULTIPART_H

#include <stddef.h>

#include "model/lr.h"

#define LR_MP_MAX_BOUNDARY 70 /* RFC 2046 */

/* Callbacks; each returns 0 to go on or a negative code to stop. */
typedef struct lr_mp_callbacks {
	/* A part starts. `name` is its form field name, `filename` NULL for a
	 * plain field, `content_type` NULL when absent; all valid only
	 * during the call. */
	int (*part_begin)(void *ud, const char *name, const char *filename,
			  const char *content_type);
	/* The next `len` bytes (len > 0) of the current part. */
	int (*part_data)(void *ud, const char *data, size_t len);
	/* The current part is complete. */
	int (*part_end)(void *ud);
} lr_mp_callbacks;

typedef struct lr_mp_limits {
	int max_parts;          /* parts in the body (default 8) */
	size_t max_header_bytes; /* header block of one part (default 4096) */
} lr_mp_limits;

typedef struct lr_mp lr_mp;

/*
 * Creates a parser for a body whose Content-Type header is `content_type`
 * (must be multipart/form-data with a valid boundary parameter). `limits`
 * may be NULL for the defaults. `cb` and `ud` are borrowed for the parser's
 * life. On success *out is owned by the caller (lr_mp_free). Errors:
 * LR_EINVAL (msg says what is wrong with the header), LR_ENOMEM.
 */
int lr_mp_new(const char *content_type, const lr_mp_limits *limits,
	      const lr_mp_callbacks *cb, void *ud, lr_mp **out, lr_msg *msg);

/*
 * Feeds the next `len` bytes of the body. Returns 0, LR_EINVAL for a
 * malformed body (msg says where), LR_ELIMIT when a limit is exceeded, or
 * the negative code a callback returned. After an error every later call
 * returns the same error.
 */
int lr_mp_feed(lr_mp *p, const char *data, size_t len, lr_msg *msg);

/* The body is complete: returns 0 when the closing boundary was seen,
 * otherwise LR_EINVAL (truncated body). */
int lr_mp_finish(lr_mp *p, lr_msg *msg);

/* Frees the parser; NULL is a no-op. */
void lr_mp_free(lr_mp *p);

#endif /* LR_MULTIPART_H */
