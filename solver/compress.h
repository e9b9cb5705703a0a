/*
 * compress.h - the whole-model pipeline: ONNX + calibration inputs in, a
 * faster ONNX model and a report out.
 *
 * DESIGN. lr_compress() folds BatchNormalization into the convolutions
 * before it, lists the convolutions (model/inspect.h) and the fully
 * connected layers (Gemm, MatMul with a constant 2-D weight: solver/fc.h,
 * one response per input instead of sampled positions, fitted by the
 * shrunk weight SVD unless there are LR_FC_DATA_RATIO inputs per output),
 * samples their pre-activation responses on the calibration inputs held for fitting,
 * selects ranks for the target speedup from the responses' PCA energy
 * (solver/lowrank.h), and then solves the layers shallow to deep. For an
 * asymmetric method each layer's regressors are collected from the model
 * in which all shallower layers are already replaced, at the same sampled
 * positions as the targets, so errors do not pile up. Each solved layer is
 * written into the graph at once (solver/rewrite.h) and the next layer's
 * data comes from that graph. Finally the result is compared with the
 * original on the held-out inputs and both are timed in lowrank's engine.
 *
 * What the speedup means. With the time objective the
 * target is the whole model's time in lowrank's engine at the deployment
 * batch and thread count: every decomposable layer is timed alone as it
 * is and as the pair at each candidate rank (solver/cost.h; timings are
 * cached), the rest of the model counts at its measured time, and the
 * selection keeps within original time / speedup. Layers that are not
 * faster at any rank stay as they are. With the FLOP objective the cost
 * is the paper's d'(k^2 c + d) H'W' over the convolutions, and r (c + d)
 * for a fully connected layer. Either way the
 * selection maximises the product of kept PCA energies exactly
 * (solver/select.h). A target that cannot be reached fails before any
 * response is sampled, naming the fastest reachable speedup.
 *
 * Inside, the pipeline is a fixed list of named stages (check, split,
 * fold, inspect, cost, sample, select, solve, report, evaluate, time,
 * finish) that share one state struct. Each stage reads what the earlier
 * ones wrote and adds its own part, so data flows one way and a new step
 * is a new stage, not a branch in an existing one.
 */
#ifndef LR_COMPRESS_H
#define LR_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "model/lr.h"
#include "model/onnx.h"
#include "model/tensor.h"

/* The four methods of the paper. */
typedef enum lr_method {
	LR_METHOD_NONLINEAR_ASYM = 0, /* default */
	LR_METHOD_NONLINEAR,
	LR_METHOD_LINEAR_ASYM,
	LR_METHOD_LINEAR,
} lr_method;

/* Parses "nonlinear-asymmetric" etc.; returns 0 or LR_EINVAL. */
int lr_method_parse(const char *s, lr_method *out);
const char *lr_method_name(lr_method m);

/* What --speedup counts. */
typedef enum lr_objective {
	LR_OBJECTIVE_TIME = 0,   /* measured time in lowrank's engine (default) */
	LR_OBJECTIVE_FLOPS,      /* the paper's: multiply-accumulates of the conv
				    and fully connected layers */
} lr_objective;

/* Parses "time" or "flops"; returns 0 or LR_EINVAL. */
int lr_objective_parse(const char *s, lr_objective *out);
const char *lr_objective_name(lr_objective o);

/* How fully connected layers are fitted (solver/fc.h). */
typedef enum lr_fc_fit_kind {
	LR_FC_FIT_AUTO = 0, /* "auto": the data fit (as for convolutions, ReLU-aware)
			       when there are at least LR_FC_DATA_RATIO
			       responses per output feature, else "shrinkage" */
	LR_FC_FIT_SHRINK,   /* "shrinkage": weight SVD shaped by the input
			       covariance, shrunk by the data-driven alpha */
	LR_FC_FIT_SVD,      /* "weight-svd": the plain SVD of W (alpha = 1) */
	LR_FC_FIT_DATA,     /* "data": the conv solver on the responses */
} lr_fc_fit_kind;

#define LR_FC_DATA_RATIO 10

/* Parses "auto", "shrinkage", "weight-svd" or "data"; 0 or LR_EINVAL. */
int lr_fc_fit_parse(const char *s, lr_fc_fit_kind *out);
const char *lr_fc_fit_name(lr_fc_fit_kind f);
/* How a k x k convolution is decomposed. */
typedef enum lr_decomposition {
	LR_DECOMP_CHANNEL = 0,         /* (k x k, d') -> (1 x 1, d): the paper's main method */
	LR_DECOMP_SPATIAL_CHANNEL,     /* (default) also (k x 1, d'') -> (1 x k, d') ->
					  (1 x 1, d) where the selection finds it better
					  (TPAMI 3.5, "3d") */
} lr_decomposition;

/* Parses "channel" or "spatial-channel"; returns 0 or LR_EINVAL. */
int lr_decomposition_parse(const char *s, lr_decomposition *out);
const char *lr_decomposition_name(lr_decomposition d);

/* A user-given rank for one layer (by node name or output name). */
typedef struct lr_rank_req {
	const char *layer;      /* node name or layer output name */
	int64_t rank;           /* d' >= 1 */
} lr_rank_req;

/* Progress as reported to the caller. */
typedef struct lr_progress {
	const char *stage;      /* "folding", "measuring", "collecting", "ranks", "solving",
				   "evaluating", "timing" */
	int layer;              /* 1-based layer being solved (0 outside "solving") */
	int nlayers;            /* layers to solve */
	const char *layer_name; /* or NULL */
	int iteration;          /* solver iteration within the layer (0: none) */
	int iterations;         /* of this many */
	double fraction;        /* 0..1 overall */
	double eta_seconds;     /* estimate, < 0 when unknown */
} lr_progress;

typedef void (*lr_progress_fn)(void *ud, const lr_progress *p);

typedef struct lr_compress_opts {
	double speedup;             /* target speedup (> 1), or 0 with ranks */
	lr_objective objective;     /* what the speedup counts (time) */
	int deploy_batch;           /* batch the time objective is measured at (1) */
	int deploy_threads;         /* engine threads it is measured with (1) */
	const char *timing_cache;   /* file caching measured timings, or NULL */
	const char *timing_cache_label; /* what the report calls it (NULL: the path;
				       the daemon's path is its own business) */
	int measure_samples;        /* timing samples per measurement, median (7) */
	lr_method method;
	lr_fc_fit_kind fc_fit;          /* fully connected layers' fit (auto) */
	int samples_per_input;      /* positions sampled per input and layer (10) */
	int rank_multiple;          /* candidate ranks are multiples of this; 0: the
				       CPU's vector block for the time objective,
				       every rank for the FLOP objective */
	uint64_t seed;              /* every random choice derives from it */
	int threads;                /* engine threads (<= 0: all cores) */
	double holdout;             /* fraction of inputs held out (0.1) */
	const lr_rank_req *ranks;   /* optional fixed ranks */
	int nranks;
	const char *const *exclude; /* layers never decomposed (names) */
	int nexclude;
	int batch;                  /* inputs per engine run (8) */
	int time_runs;              /* timed runs per batch size for the report (5; 0: skip) */
	size_t memory_budget;       /* bytes for sampled responses (at most half) and cached
				       activations (2 GiB); past it: fewer inputs, recompute */
	lr_progress_fn progress;    /* optional */
	void *progress_ud;
	volatile int *cancel;       /* optional; nonzero = stop with LR_ECANCELED */
	lr_decomposition decomposition; /* spatial-channel (default) or channel */
} lr_compress_opts;

/* Fills the defaults above. */
void lr_compress_opts_init(lr_compress_opts *o);

/*
 * Compresses `m` (borrowed) using `calib` (borrowed; N x input shape,
 * float). On success *out is the new model (caller frees with
 * lr_model_free) and *report a cJSON object (caller frees with
 * cJSON_Delete). `model_sha256` / `calib_sha256` (hex, may be NULL) go
 * into the provenance metadata. Errors: LR_EINVAL (bad options, message
 * names the option), LR_ESHAPE (calibration shape), LR_ENUMERIC (NaN/Inf
 * in the calibration data), LR_ECANCELED, LR_ELAPACK, LR_ENOMEM, and model
 * errors from the engine.
 */
int lr_compress(const lr_model *m, const lr_tensor *calib,
		const lr_compress_opts *o, const char *model_sha256,
		const char *calib_sha256, lr_model **out, cJSON **report,
		lr_msg *msg);

#endif /* LR_COMPRESS_H */
