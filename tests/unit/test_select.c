/*
 * test_select.c - rank selection as a multiple-choice knapsack: against
 * brute force on random small instances (same optimum, budget kept,
 * infeasible budgets refused), never worse than the paper's greedy on the
 * FLOP objective, and the rank grid on the CPU's vector block. Every
 * random input comes from one seed, printed first (override with
 * LR_TEST_SEED).
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "solver/lowrank.h"
#include "solver/select.h"
#include "tests/unit/tap.h"

static uint64_t rng_state;

static uint64_t rng_u64(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double rng_unif(void)
{
	return ((double)(rng_u64() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Best value over all combinations with cost <= budget (-INF if none). */
static double brute(const lr_mck_layer *L, int nl, double budget, double *best_cost)
{
	int idx[8] = { 0 };
	double best = -INFINITY;

	*best_cost = INFINITY;
	for (;;) {
		double c = 0, v = 0;
		int l;

		for (l = 0; l < nl; l++) {
			c += L[l].choices[idx[l]].cost;
			v += L[l].choices[idx[l]].value;
		}
		if (c <= budget * (1 + 1e-12) && (v > best || (v == best && c < *best_cost))) {
			best = v;
			*best_cost = c;
		}
		for (l = 0; l < nl; l++) {
			if (++idx[l] < L[l].n)
				break;
			idx[l] = 0;
		}
		if (l == nl)
			return best;
	}
}

static void test_brute_force(void)
{
	lr_mck_choice ch[6][7];
	lr_mck_layer L[6];
	int bad = 0, infeasible_ok = 0, ninf = 0, cases = 2000;

	for (int t = 0; t < cases; t++) {
		int nl = 1 + (int)(rng_u64() % 6), pick[6];
		int integer = (int)(rng_u64() % 2); /* integer costs: many ties */
		double maxsum = 0, minsum = 0, budget, bc, bv;
		lr_mck_result res;
		lr_msg msg = { { 0 } };
		int rc;

		for (int l = 0; l < nl; l++) {
			double mn = INFINITY, mx = 0;

			L[l].n = 1 + (int)(rng_u64() % 7);
			L[l].choices = ch[l];
			for (int j = 0; j < L[l].n; j++) {
				ch[l][j].rank = j;
				ch[l][j].cost = integer ? (double)(rng_u64() % 10) : 10 * rng_unif();
				ch[l][j].value = integer ? -(double)(rng_u64() % 5) : log(rng_unif());
				mn = fmin(mn, ch[l][j].cost);
				mx = fmax(mx, ch[l][j].cost);
			}
			minsum += mn;
			maxsum += mx;
		}
		/* Mostly feasible budgets, some below the cheapest combination. */
		budget = minsum - 1 + (maxsum - minsum + 2) * rng_unif();
		if (budget < 0)
			budget = 0;
		bv = brute(L, nl, budget, &bc);
		rc = lr_mck_solve(L, nl, budget, pick, &res, &msg);
		if (isinf(bv)) {
			ninf++;
			infeasible_ok += rc == LR_EINVAL && strstr(msg.text, "cheapest") != NULL;
			continue;
		}
		if (rc != 0) {
			bad++;
			tap_diag("case %d: rc %d: %s", t, rc, msg.text);
			continue;
		}
		{
			double c = 0, v = 0;

			for (int l = 0; l < nl; l++) {
				c += ch[l][pick[l]].cost;
				v += ch[l][pick[l]].value;
			}
			if (!res.exact || fabs(v - bv) > 1e-9 || c > budget * (1 + 1e-12) ||
			    fabs(c - res.cost) > 1e-9 || fabs(v - res.value) > 1e-9 ||
			    (v == bv && c > bc + 1e-9)) {
				bad++;
				if (bad < 5)
					tap_diag("case %d: knapsack %g at cost %g, brute force %g at %g (budget %g)",
						 t, v, c, bv, bc, budget);
			}
		}
	}
	tap_ok(bad == 0, "knapsack = brute force on %d random instances (1-6 layers, 1-7 choices, real and integer costs)",
	       cases - ninf);
	tap_ok(ninf > 0 && infeasible_ok == ninf,
	       "all %d budgets below the cheapest combination refused with LR_EINVAL", ninf);
}

/* Random layer with a decaying spectrum. */
static void random_layer(lr_rank_layer *L, double *eig)
{
	double decay = 0.7 + 0.29 * rng_unif();

	L->d = 8 + (int64_t)(rng_u64() % 57);
	L->k2c = 9 * (4 + (int64_t)(rng_u64() % 61));
	L->hw = 1 + (int64_t)(rng_u64() % 400);
	L->decomposable = 1;
	L->fixed_rank = 0;
	for (int64_t a = 0; a < L->d; a++)
		eig[a] = pow(decay, (double)a) * (1 + 0.1 * rng_unif());
	for (int64_t a = 1; a < L->d; a++) /* descending */
		if (eig[a] > eig[a - 1])
			eig[a] = eig[a - 1];
	L->eig = eig;
}

static double sum_log_energy(const lr_rank_layer *L, int n, const int64_t *ranks)
{
	double v = 0;

	for (int l = 0; l < n; l++) {
		double kept = 0, all = 0;

		if (ranks[l] <= 0)
			continue;
		for (int64_t a = 0; a < L[l].d; a++) {
			all += L[l].eig[a];
			kept += a < ranks[l] ? L[l].eig[a] : 0;
		}
		v += log(kept / all);
	}
	return v;
}

/* The knapsack on exactly the greedy's candidate set and FLOP costs. */
static void test_vs_greedy(void)
{
	int worse = 0, better = 0, cases = 200;

	for (int t = 0; t < cases; t++) {
		int n = 2 + (int)(rng_u64() % 5), multiple = t % 2 ? 8 : 1, pick[8];
		lr_rank_layer L[8];
		double eig[8][64], c0 = 0, speedup = 1.3 + 2.0 * rng_unif(), gv, kv;
		int64_t gr[8], kr[8], grid[64];
		lr_mck_choice ch[8][66];
		lr_mck_layer ml[8];
		lr_mck_result res;
		lr_msg msg = { { 0 } };

		for (int l = 0; l < n; l++) {
			random_layer(&L[l], eig[l]);
			c0 += (double)L[l].d * (double)L[l].k2c * (double)L[l].hw;
		}
		if (lr_rank_select(L, n, speedup, multiple, gr, NULL, &msg) != 0)
			continue; /* unreachable: both refuse (checked below) */
		for (int l = 0; l < n; l++) {
			int64_t mr = lr_layer_max_rank(L[l].d, L[l].k2c);
			int64_t ng = lr_rank_grid(mr, multiple, grid, 64);

			ml[l].choices = ch[l];
			ml[l].n = 1 + (int)ng;
			ch[l][0] = (lr_mck_choice){ .rank = 0, .cost = (double)L[l].d * (double)L[l].k2c * (double)L[l].hw };
			for (int64_t i = 0; i < ng; i++) {
				int64_t r1[1] = { grid[i] };

				ch[l][1 + i] = (lr_mck_choice){
					.rank = grid[i],
					.cost = (double)grid[i] * (double)(L[l].k2c + L[l].d) * (double)L[l].hw,
					.value = sum_log_energy(&L[l], 1, r1) };
			}
		}
		if (lr_mck_solve(ml, n, c0 / speedup, pick, &res, &msg) != 0) {
			worse++;
			continue;
		}
		for (int l = 0; l < n; l++)
			kr[l] = ch[l][pick[l]].rank;
		gv = sum_log_energy(L, n, gr);
		kv = sum_log_energy(L, n, kr);
		worse += kv < gv - 1e-12 || lr_rank_speedup(L, n, kr) < speedup * (1 - 1e-12);
		better += kv > gv + 1e-9;
	}
	tap_ok(worse == 0, "knapsack keeps at least the greedy's energy product and meets the target (%d of %d strictly better)",
	       better, cases);
}

static void test_grid(void)
{
	int64_t g[64], n;
	int block = lr_cpu_vector_block(), ok = 1;
	char cpu[128];

	lr_cpu_name(cpu, sizeof(cpu));
	tap_diag("CPU: %s, vector block %d floats", cpu, block);
	tap_ok(block == 4 || block == 8 || block == 16 || getenv("LR_VECTOR_BLOCK") != NULL,
	       "the vector block is 4, 8 or 16 floats");
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (getenv("LR_VECTOR_BLOCK") == NULL)
		tap_ok(block == (__builtin_cpu_supports("avx512f") ? 16 : __builtin_cpu_supports("avx2") ? 8 : 4),
		       "the block follows AVX-512F / AVX2");
#endif
	n = lr_rank_grid(100, block, g, 64);
	for (int64_t i = 0; i < n; i++)
		ok &= g[i] % block == 0 && g[i] <= 100 && (i == 0 || g[i] > g[i - 1]);
	tap_ok(ok && n == 100 / block, "grid up to 100 on the block: %lld multiples of %d",
	       (long long)n, block);
	n = lr_rank_grid(10, 16, g, 64);
	tap_ok(n == 10 && g[0] == 1 && g[9] == 10, "below one block every rank is a candidate");
	tap_ok(lr_rank_grid(460, 16, NULL, 0) == 28 && lr_rank_grid(0, 16, g, 64) == 0,
	       "counting without storing; no candidate below rank 1");
	setenv("LR_VECTOR_BLOCK", "8", 1);
	tap_ok(lr_cpu_vector_block() == 8, "LR_VECTOR_BLOCK overrides the detection");
	setenv("LR_VECTOR_BLOCK", "12", 1);
	tap_ok(lr_cpu_vector_block() == block, "a block that is not a power of two is ignored");
	unsetenv("LR_VECTOR_BLOCK");
}

/*
 * Many layers with many choices whose value follows their cost: the
 * frontier outgrows the exact limit and costs are binned. The budget still holds, and the result is no worse
 * than the exact optimum over every fourth choice (a lower bound on the
 * full optimum) up to the bins' slack.
 */
static void test_binned(void)
{
	enum { NL = 14, NC = 48 };
	static lr_mck_choice ch[NL][NC], sub[NL][NC];
	lr_mck_layer L[NL], S[NL];
	int pick[NL], spick[NL];
	double budget = 0;
	lr_mck_result res, sres;
	lr_msg msg = { { 0 } };
	double t0 = lr_now();
	int rc;

	for (int l = 0; l < NL; l++) {
		double c0 = 50 + 100 * rng_unif();

		L[l].choices = ch[l];
		L[l].n = NC;
		S[l].choices = sub[l];
		S[l].n = 0;
		ch[l][0] = (lr_mck_choice){ .rank = 0, .cost = c0 };
		/* Value nearly proportional to cost: almost no state is
		 * dominated, so the exact frontier would grow like NC^l. */
		for (int j = 1; j < NC; j++) {
			double c = c0 * j / NC * (0.9 + 0.2 * rng_unif());

			ch[l][j] = (lr_mck_choice){ .rank = j, .cost = c, .value = -(c0 - c) * (1 + 0.01 * rng_unif()) };
		}
		for (int j = 0; j < NC; j += 4)
			sub[l][S[l].n++] = ch[l][j];
		budget += c0 / 3;
	}
	rc = lr_mck_solve_limit(L, NL, budget, 100000, pick, &res, &msg);
	tap_diag("binned: %.2f s, largest frontier %lld", lr_now() - t0, (long long)res.states);
	tap_ok(rc == 0 && !res.exact && res.cost <= budget * (1 + 1e-12),
	       "a large instance is binned and still meets the budget");
	rc = lr_mck_solve(S, NL, budget, spick, &sres, &msg);
	tap_ok(rc == 0 && sres.exact && res.value >= sres.value - 1e-6,
	       "binned value %.6f >= exact optimum over a quarter of the choices %.6f", res.value, sres.value);
	rc = lr_mck_solve(L, NL, budget, spick, &sres, &msg);
	tap_ok(rc == 0 && sres.exact && res.value <= sres.value + 1e-9 &&
	       res.value >= sres.value - 1e-3 * fabs(sres.value),
	       "binned value %.6f within 0.1%% of the exact optimum %.6f", res.value, sres.value);
}

static void test_errors(void)
{
	lr_mck_choice c[2] = { { .rank = 0, .cost = 5 }, { .rank = 4, .cost = NAN, .value = -1 } };
	lr_mck_layer L[1] = { { c, 2 } };
	int pick[1];
	lr_mck_result res;
	lr_msg msg = { { 0 } };

	tap_ok(lr_mck_solve(L, 1, 10, pick, &res, &msg) == LR_EINVAL, "a NaN cost is refused: %s", msg.text);
	c[1].cost = 1;
	tap_ok(lr_mck_solve(L, 1, 1, pick, &res, &msg) == 0 && pick[0] == 1 && res.exact,
	       "a budget met exactly is feasible");
	msg.text[0] = '\0';
	tap_ok(lr_mck_solve(L, 1, 0.5, pick, &res, &msg) == LR_EINVAL, "below the cheapest: %s", msg.text);
}

int main(void)
{
	const char *s = getenv("LR_TEST_SEED");

	rng_state = s ? strtoull(s, NULL, 0) : 20261203;
	tap_diag("seed %llu", (unsigned long long)rng_state);
	test_brute_force();
	test_vs_greedy();
	test_grid();
	test_binned();
	test_errors();
	return tap_done();
}
