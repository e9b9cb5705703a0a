/*
 * onnx_roundtrip.c - test helper: load an ONNX model with lowrank's
 * loader (all validation on) and save it again. Used by ort_models.sh to
 * check that saving preserves everything.
 */
#include "config.h"

#include <stdio.h>

#include "model/onnx.h"

int main(int argc, char **argv)
{
	lr_model *m = NULL;
	lr_msg msg = { { 0 } };
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: onnx-roundtrip IN.onnx OUT.onnx\n");
		return 2;
	}
	rc = lr_model_load(argv[1], NULL, &m, &msg);
	if (rc == 0)
		rc = lr_model_save(m, argv[2], &msg);
	if (rc != 0)
		fprintf(stderr, "onnx-roundtrip: %s\n", msg.text[0] ? msg.text : lr_strerror(rc));
	lr_model_free(m);
	return rc == 0 ? 0 : 1;
}
