/*
 * select.c - multiple-choice knapsack over candidate ranks. See select.h.
 */
#include "config.h"

#include "solver/select.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct state {
	double cost, value;
	int64_t parent;          /* index in the previous layer's frontier */
	int choice;
};

static int cmp_state(const void *a, const void *b)
{
	const struct state *x = a, *y = b;

	if (x->cost != y->cost)
		return x->cost < y->cost ? -1 : 1;
	if (x->value != y->value)
		return x->value > y->value ? -1 : 1;
	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	return x->choice < y->choice ? -1 : x->choice > y->choice;
}

/* Keeps the states (sorted by cost, best value first) that no cheaper or
 * equally cheap state beats or matches in value; returns how many. */
static int64_t sweep(struct state *s, int64_t n)
{
	int64_t k = 0;

	for (int64_t i = 0; i < n; i++)
		if (k == 0 || s[i].value > s[k - 1].value)
			s[k++] = s[i];
	return k;
}

double lr_mck_min_cost(const lr_mck_layer *layers, int nl)
{
	double sum = 0;

	for (int l = 0; l < nl; l++) {
		double m = INFINITY;

		for (int j = 0; j < layers[l].n; j++)
			m = layers[l].choices[j].cost < m ? layers[l].choices[j].cost : m;
		sum += m;
	}
	return sum;
}

int lr_mck_solve(const lr_mck_layer *layers, int nl, double budget, int *pick,
		 lr_mck_result *res, lr_msg *msg)
{
	return lr_mck_solve_limit(layers, nl, budget, LR_MCK_EXACT_LIMIT, pick, res, msg);
}

int lr_mck_solve_limit(const lr_mck_layer *layers, int nl, double budget, int64_t exact_limit,
		       int *pick, lr_mck_result *res, lr_msg *msg)
{
	struct state **F = NULL, root = { 0, 0, -1, -1 }, *tmp = NULL;
	int64_t *nf = NULL;
	double *minrest = NULL, lim = budget * (1 + 1e-12);
	int rc = 0;

	memset(res, 0, sizeof(*res));
	res->exact = 1;
	if (nl < 1)
		return lr_fail(msg, LR_EINVAL, "rank selection needs at least one layer");
	if (!isfinite(budget) || budget < 0)
		return lr_fail(msg, LR_EINVAL, "the cost budget must be finite and >= 0 (got %g)", budget);
	for (int l = 0; l < nl; l++) {
		if (layers[l].n < 1 || layers[l].choices == NULL)
			return lr_fail(msg, LR_EINVAL, "layer %d has no choice", l);
		for (int j = 0; j < layers[l].n; j++) {
			const lr_mck_choice *c = &layers[l].choices[j];

			if (!isfinite(c->cost) || c->cost < 0 || !isfinite(c->value))
				return lr_fail(msg, LR_EINVAL,
					       "layer %d choice %d: cost %g and value %g must be finite, cost >= 0",
					       l, j, c->cost, c->value);
		}
	}
	F = calloc((size_t)nl, sizeof(*F));
	nf = calloc((size_t)nl, sizeof(*nf));
	minrest = calloc((size_t)nl + 1, sizeof(*minrest));
	if (F == NULL || nf == NULL || minrest == NULL) {
		rc = LR_ENOMEM;
		goto out;
	}
	for (int l = nl - 1; l >= 0; l--)
		minrest[l] = minrest[l + 1] + lr_mck_min_cost(&layers[l], 1);
	if (minrest[0] > lim) {
		rc = lr_fail(msg, LR_EINVAL, "no choice of ranks meets the budget %.17g: the cheapest costs %.17g",
			     budget, minrest[0]);
		goto out;
	}

	for (int l = 0; l < nl; l++) {
		const struct state *prev = l > 0 ? F[l - 1] : &root;
		int64_t np = l > 0 ? nf[l - 1] : 1, k = 0, total = np * layers[l].n;
		double rest = minrest[l + 1];

		if (total <= exact_limit) {
			tmp = malloc(sizeof(*tmp) * (size_t)(total + 1));
			if (tmp == NULL) {
				rc = LR_ENOMEM;
				goto out;
			}
			for (int64_t s = 0; s < np; s++)
				for (int j = 0; j < layers[l].n; j++) {
					double c = prev[s].cost + layers[l].choices[j].cost;

					if (c + rest > lim)
						continue;
					tmp[k++] = (struct state){ c, prev[s].value + layers[l].choices[j].value, s, j };
				}
			qsort(tmp, (size_t)k, sizeof(*tmp), cmp_state);
			k = sweep(tmp, k);
		} else {
			/* Best value per cost bin (ties: the cheaper, then the first). */
			double w = lim > 0 ? lim / LR_MCK_BINS : 1;
			int64_t nb = 0;

			res->exact = 0;
			tmp = malloc(sizeof(*tmp) * (LR_MCK_BINS + 2));
			if (tmp == NULL) {
				rc = LR_ENOMEM;
				goto out;
			}
			for (int64_t b = 0; b < LR_MCK_BINS + 2; b++)
				tmp[b].parent = -2; /* empty */
			for (int64_t s = 0; s < np; s++)
				for (int j = 0; j < layers[l].n; j++) {
					double c = prev[s].cost + layers[l].choices[j].cost;
					double v = prev[s].value + layers[l].choices[j].value;
					int64_t b;

					if (c + rest > lim)
						continue;
					b = (int64_t)(c / w);
					b = b > LR_MCK_BINS + 1 ? LR_MCK_BINS + 1 : b;
					if (tmp[b].parent == -2 || v > tmp[b].value ||
					    (v == tmp[b].value && c < tmp[b].cost))
						tmp[b] = (struct state){ c, v, s, j };
				}
			for (int64_t b = 0; b < LR_MCK_BINS + 2; b++)
				if (tmp[b].parent != -2)
					tmp[nb++] = tmp[b];
			/* Within a bin costs are not ordered against the
			 * neighbours'; sort before the sweep. */
			qsort(tmp, (size_t)nb, sizeof(*tmp), cmp_state);
			k = sweep(tmp, nb);
		}
		if (k == 0) { /* cannot happen after the minimum-cost check */
			rc = lr_fail(msg, LR_EINVAL, "internal: no feasible state at layer %d", l);
			goto out;
		}
		F[l] = realloc(tmp, sizeof(*tmp) * (size_t)k);
		if (F[l] == NULL)
			F[l] = tmp;
		tmp = NULL;
		nf[l] = k;
		res->states = k > res->states ? k : res->states;
	}
	/* The last state of the final frontier has the highest value. */
	{
		int64_t s = nf[nl - 1] - 1;

		res->cost = F[nl - 1][s].cost;
		res->value = F[nl - 1][s].value;
		for (int l = nl - 1; l >= 0; l--) {
			pick[l] = F[l][s].choice;
			s = F[l][s].parent;
		}
	}
out:
	free(tmp);
	for (int l = 0; F != NULL && l < nl; l++)
		free(F[l]);
	free(F);
	free(nf);
	free(minrest);
	return rc;
}

int lr_cpu_vector_block(void)
{
	const char *env = getenv("LR_VECTOR_BLOCK");

	if (env != NULL) {
		char *end;
		long v = strtol(env, &end, 10);

		if (*end == '\0' && v >= 1 && v <= 64 && (v & (v - 1)) == 0)
			return (int)v;
	}
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f"))
		return 16;
	if (__builtin_cpu_supports("avx2"))
		return 8;
#endif
	return 4;
}

void lr_cpu_name(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	if (len == 0)
		return;
	snprintf(buf, len, "unknown");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		char *c = strchr(line, ':');

		if (strncmp(line, "model name", 10) == 0 && c != NULL) {
			c++;
			while (*c == ' ' || *c == '\t')
				c++;
			c[strcspn(c, "\n")] = '\0';
			snprintf(buf, len, "%s", c);
			break;
		}
	}
	if (f != NULL)
		fclose(f);
}

int64_t lr_rank_grid(int64_t max_rank, int multiple, int64_t *out, int64_t cap)
{
	int64_t n = 0, step = multiple > 1 && multiple <= max_rank ? multiple : 1;

	for (int64_t r = step; r <= max_rank; r += step) {
		if (n < cap)
			out[n] = r;
		n++;
	}
	return n;
}
