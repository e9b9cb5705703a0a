/*
 * inputs.h - loading and checking a job's inputs (the model and the
 * calibration tensor) from blob files. The API runs it before queueing a
 * job, so a bad upload is a 4xx at once instead of a failed job later; the
 * worker runs it again to load what it computes on.
 */
#ifndef LR_INPUTS_H
#define LR_INPUTS_H

#include "model/lr.h"
#include "model/onnx.h"
#include "model/tensor.h"

/* Which input a failure is about, for the problem type. */
enum lr_inputs_fault {
	LR_INPUTS_OK = 0,
	LR_INPUTS_MODEL,        /* model malformed (or unreadable) */
	LR_INPUTS_UNSUPPORTED,  /* model valid but not runnable */
	LR_INPUTS_CALIB,        /* calibration malformed, wrong dtype, NaN/Inf */
	LR_INPUTS_SHAPE,        /* calibration shape does not fit the model */
};

/*
 * Loads the ONNX model from the file `model_path` from memory (so external
 * data is refused: a blob must never name another file) and the .npy at
 * `calib_path`, then checks that the model has an input, that the
 * calibration is float data without NaN or Inf, at least 1 sample, and that
 * its shape is N x (the model's first input without its batch dimension)
 * wherever the model declares a dimension. Messages name "model" or
 * "calibration", never the paths. On success *model and *calib belong to
 * the caller (lr_model_free, lr_tensor_free); either out pointer may be
 * NULL to check without keeping. *fault says which input failed. Errors:
 * LR_EMODEL, LR_EUNSUPPORTED, LR_ENPY, LR_ESHAPE, LR_ENUMERIC, LR_EIO,
 * LR_ENOMEM.
 */
int lr_inputs_load(const char *model_path, const char *calib_path,
		   lr_model **model, lr_tensor **calib,
		   enum lr_inputs_fault *fault, lr_msg *msg);

#endif /* LR_INPUTS_H */
