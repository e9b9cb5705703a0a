/*
 * test_energy_curve.c - the report's per-layer energy curve
 * (solver/compress.c, energy_curve(), included here as a white box): every
 * rank when d is small; at most LR_CURVE_POINTS + 1 strictly increasing
 * ranks from 1 to d when it is large; the chosen rank always on the curve
 * with the energy log_energy() gives it; monotone values ending at 1;
 * negative eigenvalues (round-off) count as zero; no curve without energy.
 */
#include "solver/compress.c"

#include "tests/unit/tap.h"

/* Checks the shape of a curve; returns the number of points (-1: bad). */
static int check_curve(const cJSON *c, int64_t d, int64_t chosen, const double *eig,
		       const char *what)
{
	const cJSON *ra = cJSON_GetObjectItemCaseSensitive(c, "rank");
	const cJSON *ea = cJSON_GetObjectItemCaseSensitive(c, "energy");
	int n = cJSON_GetArraySize(ra), ok = 1, found = chosen < 1 || chosen > d;
	double prev_e = 0, prev_r = 0;

	if (!cJSON_IsArray(ra) || !cJSON_IsArray(ea) || cJSON_GetArraySize(ea) != n || n < 1)
		return tap_ok(0, "%s: two arrays of one length", what), -1;
	for (int i = 0; i < n; i++) {
		double r = cJSON_GetArrayItem(ra, i)->valuedouble;
		double e = cJSON_GetArrayItem(ea, i)->valuedouble;

		ok &= r > prev_r && e >= prev_e - 1e-12 && e <= 1.0 + 1e-12;
		if ((int64_t)r == chosen) {
			found = 1;
			ok &= tap_close(log(e), log_energy(eig, d, chosen), 1e-5, 0);
		}
		prev_r = r;
		prev_e = e;
	}
	tap_ok(ok, "%s: ranks increase, energy is monotone in [0, 1] and matches log_energy", what);
	tap_ok(cJSON_GetArrayItem(ra, 0)->valuedouble == 1 && prev_r == (double)d,
	       "%s: ranks run from 1 to d=%lld", what, (long long)d);
	tap_ok(tap_close(prev_e, 1.0, 1e-9, 0), "%s: the full rank keeps all the energy", what);
	tap_ok(found, "%s: the chosen rank %lld is a point of the curve", what, (long long)chosen);
	return n;
}

int main(void)
{
	double small[5] = { 4, 3, 2, 1, -1e-9 }, *big;
	const int64_t dbig = 2048;
	cJSON *c;
	int n;

	c = energy_curve(small, 5, 2);
	n = check_curve(c, 5, 2, small, "d=5");
	tap_ok(n == 5, "d=5: every rank is a point (got %d)", n);
	tap_ok(c && tap_close(cJSON_GetArrayItem(cJSON_GetObjectItem(c, "energy"), 1)->valuedouble,
			      0.7, 1e-9, 0), "d=5: rank 2 keeps (4+3)/10 of the energy");
	cJSON_Delete(c);

	big = malloc((size_t)dbig * sizeof(*big));
	if (big == NULL)
		return 1;
	for (int64_t a = 0; a < dbig; a++)
		big[a] = exp(-0.01 * (double)a);
	for (int64_t chosen = 0; chosen <= dbig; chosen += 677) {
		char what[64];

		snprintf(what, sizeof(what), "d=%lld chosen=%lld", (long long)dbig, (long long)chosen);
		c = energy_curve(big, dbig, chosen);
		n = check_curve(c, dbig, chosen, big, what);
		tap_ok(n >= LR_CURVE_POINTS && n <= LR_CURVE_POINTS + 1,
		       "%s: downsampled to %d points", what, n);
		cJSON_Delete(c);
	}
	free(big);

	small[0] = small[1] = small[2] = small[3] = 0;
	c = energy_curve(small, 5, 2);
	tap_ok(c == NULL, "no energy: no curve");
	cJSON_Delete(c);
	return tap_done();
}
