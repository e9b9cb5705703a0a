/*
 * spec.h - the job spec: the JSON a client sends to say how to compress,
 * parsed into solver options.
 *
 * A spec is a JSON object with these optional members (anything else, and
 * any member of the wrong type or out of range, is refused with a message
 * naming the member):
 *   "speedup": number > 1 and <= 1000 (default 4 unless "ranks" is given)
 *   "objective": "time" (measured in lowrank's engine; default) | "flops"
 *   "deploy_batch": integer 1..65536, the batch "time" measures at (1)
 *   "deploy_threads": integer 1..256, the threads it measures with (1)
 *   "ranks": { "<layer>": integer >= 1, ... } fixed ranks per layer
 *   "method": "nonlinear-asymmetric" | "nonlinear" | "linear-asymmetric" | "linear"
 *   "decomposition": "spatial-channel" (default) | "channel"
 *   "samples_per_input": integer 1..10000 (10)
 *   "seed": integer 0..2^53 (0)
 *   "rank_multiple": integer 1..4096 (the CPU's vector block for "time",
 *                    every rank for "flops")
 *   "exclude": [ "<layer>", ... ] layers never decomposed
 *   "holdout": number in [0, 1) (0.1)
 *   "memory_budget_mib": integer 64..1048576, memory for sampled responses
 *                 and cached activations (default: the daemon's
 *                 job_memory_mib, which is also the most it may be)
 *   "notify_url": "http(s)://host[:port]/path", where lowrankd POSTs a
 *                 signed webhook when the job ends (no default: none);
 *                 see lr_spec_notify_url_check()
 */
#ifndef LR_SPEC_H
#define LR_SPEC_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "model/lr.h"
#include "solver/compress.h"

#define LR_SPEC_MAX_BYTES 65536   /* largest spec text accepted */
#define LR_SPEC_MAX_LAYERS 4096   /* entries in "ranks" or "exclude" */
#define LR_SPEC_MAX_NAME 256      /* bytes in a layer name */

/* A parsed spec. `opts` points into the struct's own storage. */
typedef struct lr_spec {
	lr_compress_opts opts;   /* ready for lr_compress (progress/cancel unset) */
	lr_rank_req *ranks;      /* owned; opts.ranks == ranks */
	char **exclude;          /* owned; opts.exclude == exclude */
	int speedup_given;       /* 1 when "speedup" was in the text */
	char *notify_url;        /* owned; NULL when not given */
	int64_t memory_mib;      /* "memory_budget_mib"; 0 = the daemon's job_memory_mib */
} lr_spec;

#define LR_SPEC_MAX_URL 2048      /* bytes in notify_url */

/*
 * Checks a notify_url: 1..LR_SPEC_MAX_URL bytes of printable ASCII without
 * spaces; scheme http or https (any case) followed by "//"; a non-empty
 * host; no user:password@ part; a port, if any, 1..65535. Whether the host
 * may be reached is decided at delivery time, after DNS (daemon/hooks.c).
 * Returns 0, or LR_EINVAL with msg starting "notify_url: ".
 */
int lr_spec_notify_url_check(const char *url, lr_msg *msg);

/*
 * Parses the spec from `len` bytes of JSON text (not NUL-terminated). On
 * success *out is owned by the caller (lr_spec_free). Errors: LR_EINVAL
 * with `msg` naming the member and what it must be, LR_ENOMEM.
 */
int lr_spec_parse(const char *text, size_t len, lr_spec **out, lr_msg *msg);

/* Same from an already parsed cJSON object (borrowed). */
int lr_spec_from_json(const cJSON *obj, lr_spec **out, lr_msg *msg);

/*
 * Returns the spec as a canonical JSON object with every member, defaults
 * filled in (caller frees with cJSON_Delete), or NULL when out of memory.
 * Parsing the printed object gives the same options.
 */
cJSON *lr_spec_to_json(const lr_spec *s);

/* Frees a spec; NULL is a no-op. */
void lr_spec_free(lr_spec *s);

#endif /* LR_SPEC_H */
