/*
 * lr.h - project-wide basics shared by every lowrankd module.
 *
 * DESIGN. Every fallible function in lowrankd returns an int: 0 on success,
 * a negative code on failure (negative errno values, then the project codes
 * below). When a failure needs words for a human (a bad file, a bad node), the
 * function also takes an optional `lr_msg *` and writes one sentence into it
 * that names the problem: the file, node, tensor or field. lr_fail() formats
 * that sentence and returns the code in one statement, so error sites stay
 * one line. Programming errors (broken invariants) abort through LR_ASSERT,
 * which stays on in release builds; runtime errors never assert.
 */
#ifndef LR_LR_H
#define LR_LR_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define LR_VERSION_STRING PACKAGE_VERSION

/* Error codes: 0 is success; -errno values pass through unchanged. */
enum lr_err {
	LR_OK = 0,
	LR_ENOMEM = -ENOMEM,     /* allocation failed or budget exceeded */
	LR_EIO = -EIO,           /* read or write failed */
	LR_EINVAL = -EINVAL,     /* bad argument from the caller */
	LR_EMODEL = -4096,       /* the ONNX model is malformed */
	LR_EUNSUPPORTED = -4097, /* valid ONNX we do not implement */
	LR_ESHAPE = -4098,       /* tensor shapes do not fit together */
	LR_ENPY = -4099,         /* the .npy file is malformed or unsupported */
	LR_ELAPACK = -4100,      /* LAPACK reported a failure (info != 0) */
	LR_ENUMERIC = -4101,     /* NaN/Inf or another numerical failure */
	LR_ECANCELED = -4102,    /* the operation was canceled */
	LR_ELIMIT = -4103,       /* a configured limit was exceeded */
};

/* A human-readable error message: one sentence naming the problem. */
typedef struct lr_msg {
	char text[1024]; /* NUL-terminated; empty when no message was set */
} lr_msg;

/*
 * Formats a message into `m` (when m is not NULL) and returns `code`.
 * Use as: return lr_fail(msg, LR_EMODEL, "node '%s': ...", name);
 * A message already set is kept as a prefix context is not added: the first
 * failure wins, later callers may use lr_msg_prefix() to add context.
 */
int lr_fail(lr_msg *m, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepends "<context>: " to the message in `m` (no-op when m is NULL). */
void lr_msg_prefix(lr_msg *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Returns a static description of an error code. Never NULL. */
const char *lr_strerror(int code);

/* Aborts with file:line when `x` is false. For invariants, not input checks. */
#define LR_ASSERT(x)                                                        \
	do {                                                                \
		if (!(x))                                                   \
			lr_assert_fail(#x, __FILE__, __LINE__);             \
	} while (0)
_Noreturn void lr_assert_fail(const char *expr, const char *file, int line);

/* Checked arithmetic: return 0 and set *out, or LR_ELIMIT on overflow. */
static inline int lr_mul_i64(int64_t a, int64_t b, int64_t *out)
{
	return __builtin_mul_overflow(a, b, out) ? LR_ELIMIT : 0;
}
static inline int lr_mul_size(size_t a, size_t b, size_t *out)
{
	return __builtin_mul_overflow(a, b, out) ? LR_ELIMIT : 0;
}

/* Monotonic clock in seconds. */
double lr_now(void);

/* Peak resident set size of this process in bytes (0 when unknown). */
size_t lr_peak_rss_bytes(void);

/*
 * A name of this build: the first 16 hex digits of the program's GNU
 * build-id (it changes with every change to the binary), or
 * "v" PACKAGE_VERSION when the program has none. Measured timings are
 * keyed by it, since a new engine times layers differently. Static,
 * never NULL; thread-safe after the first call.
 */
const char *lr_build_id(void);

#endif /* LR_LR_H */
