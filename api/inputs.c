/*
 * inputs.c - a job's inputs, loaded from blob files and checked.
 *
 * DESIGN. Both files are mapped read-only and handed to the in-memory
 * loaders: the ONNX loader then refuses external data (a blob lives next
 * to other tenants' blobs, so a relative external-data path must never be
 * followed), and messages carry the names "model" and "calibration"
 * rather than the store's paths. The checks are the ones lr_compress would
 * fail on later, done before a job is queued.
 */
#include "config.h"

#include "api/inputs.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/inspect.h"
#include "model/npy.h"

/* Maps `path` read-only; *len 0 gives *p == NULL. */
static int map_file(const char *path, void **p, size_t *len)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc = 0;

	*p = NULL;
	*len = 0;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		rc = LR_EIO;
		goto out;
	}
	*len = (size_t)sb.st_size;
	if (*len > 0) {
		*p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (*p == MAP_FAILED) {
			*p = NULL;
			rc = -errno;
		}
	}
out:
	close(fd);
	return rc;
}

int lr_inputs_load(const char *model_path, const char *calib_path,
		   lr_model **model, lr_tensor **calib,
		   enum lr_inputs_fault *fault, lr_msg *msg)
{
	lr_model *m = NULL;
	lr_tensor *t = NULL;
	void *mp = NULL, *cp = NULL;
	size_t ml = 0, cl = 0;
	int64_t dims[LR_MAX_DIMS];
	int rc, rank;

	*fault = LR_INPUTS_MODEL;
	rc = map_file(model_path, &mp, &ml);
	if (rc != 0) {
		rc = lr_fail(msg, LR_EIO, "model: cannot be read");
		goto out;
	}
	if (ml == 0) {
		rc = lr_fail(msg, LR_EMODEL, "model: the file is empty");
		goto out;
	}
	rc = lr_model_load_mem(mp, ml, "model", NULL, &m, msg);
	if (rc != 0) {
		if (rc == LR_EUNSUPPORTED)
			*fault = LR_INPUTS_UNSUPPORTED;
		goto out;
	}
	if (m->ninputs < 1) {
		rc = lr_fail(msg, LR_EUNSUPPORTED, "model: the graph has no input");
		*fault = LR_INPUTS_UNSUPPORTED;
		goto out;
	}
	*fault = LR_INPUTS_CALIB;
	rc = map_file(calib_path, &cp, &cl);
	if (rc != 0) {
		rc = lr_fail(msg, LR_EIO, "calibration: cannot be read");
		goto out;
	}
	rc = lr_npy_read_mem(cp, cl, "calibration", &t, msg);
	if (rc != 0)
		goto out;
	if (t->dtype != LR_DT_FLOAT) {
		rc = lr_fail(msg, LR_ENPY,
			     "calibration: dtype must be floating point or uint8 (<f4, <f8, <f2, |u1), not integer");
		goto out;
	}
	if (t->ndim < 1 || t->dims[0] < 1) {
		rc = lr_fail(msg, LR_ESHAPE, "calibration: needs at least one sample (N >= 1 in N x ...)");
		*fault = LR_INPUTS_SHAPE;
		goto out;
	}
	for (int64_t i = 0; i < t->nelem; i++)
		if (!isfinite(((const float *)t->data)[i])) {
			rc = lr_fail(msg, LR_ENUMERIC,
				     "calibration: element %lld is NaN or infinite", (long long)i);
			goto out;
		}
	rank = lr_input_shape(m, 0, -1, dims);
	if (rank > 0) {
		char want[160], got[160];
		int bad = rank != t->ndim;

		for (int i = 1; !bad && i < rank; i++)
			bad = dims[i] >= 0 && dims[i] != t->dims[i];
		if (bad) {
			dims[0] = -1;
			lr_shape_str(rank, dims, want, sizeof(want));
			lr_shape_str(t->ndim, t->dims, got, sizeof(got));
			rc = lr_fail(msg, LR_ESHAPE,
				     "calibration: shape %s does not fit the model input %s (N x the input without its batch dimension)",
				     got, want);
			*fault = LR_INPUTS_SHAPE;
			goto out;
		}
	}
	*fault = LR_INPUTS_OK;
	if (model != NULL) {
		*model = m;
		m = NULL;
	}
	if (calib != NULL) {
		*calib = t;
		t = NULL;
	}
out:
	lr_model_free(m);
	lr_tensor_free(t);
	if (mp != NULL)
		munmap(mp, ml);
	if (cp != NULL)
		munmap(cp, cl);
	return rc;
}
