/*
 * select.h - rank selection as a multiple-choice knapsack, and the rank
 * grid it chooses from.
 *
 * DESIGN. Every layer offers a few choices: keep the layer (rank 0, all of
 * its PCA energy kept, its original cost), or decompose it at one of the
 * candidate ranks (the log of the energy kept, the pair's cost). The paper
 * maximises the product of kept energies (TPAMI Eq. 13), i.e. the sum of
 * their logs; the constraint is the whole model's cost, whatever the cost
 * model says (FLOPs, or seconds measured in lowrank's engine: the solver
 * does not care). lr_mck_solve() picks exactly one choice per layer to
 * maximise the summed value subject to the summed cost <= budget.
 *
 * It is a dynamic programme over the Pareto frontier of (cost, value)
 * pairs of the layers seen so far: each layer's choices extend every
 * frontier state, states that cannot meet the budget even with the
 * cheapest choices of the layers still to come are dropped, and what is
 * left is reduced to the states not dominated by a cheaper state of at
 * least the same value. That is exact. When one layer would generate more
 * than LR_MCK_EXACT_LIMIT states, the states are first reduced to the
 * best value per cost bin of width budget / LR_MCK_BINS (actual costs are
 * kept, so the result still meets the budget; at most one bin width of
 * slack is lost per layer) and the result says it is not exact.
 *
 * Candidate ranks are multiples of the CPU's vector block (16 floats with
 * AVX-512, 8 with AVX2, else 4), because engines compute output channels
 * in blocks of that size and pad a thin layer up: a rank of 10 costs what
 * 16 costs.
 */
#ifndef LR_SOLVER_SELECT_H
#define LR_SOLVER_SELECT_H

#include <stddef.h>
#include <stdint.h>

#include "model/lr.h"

#define LR_MCK_EXACT_LIMIT 4000000 /* states per layer before binning */
#define LR_MCK_BINS 65536          /* cost bins when binning */

/* One choice of one layer. */
typedef struct lr_mck_choice {
	int64_t rank;     /* 0: the layer is kept as it is */
	double cost;      /* >= 0, in the cost model's unit */
	double value;     /* log of the energy kept (<= 0; 0 for rank 0) */
	int64_t rank2;    /* > 0: the spatial split's d'' (compress.c); else 0 */
	double pen;       /* with rank2: the split's energy share in value (report) */
} lr_mck_choice;

typedef struct lr_mck_layer {
	const lr_mck_choice *choices; /* borrowed, n >= 1 */
	int n;
} lr_mck_layer;

typedef struct lr_mck_result {
	double cost, value;   /* of the chosen combination */
	int exact;            /* 0 when cost binning was needed */
	int64_t states;       /* largest frontier kept (diagnostics) */
} lr_mck_result;

/*
 * Chooses one choice per layer to maximise the sum of values subject to
 * the sum of costs <= budget (compared with a relative tolerance of
 * 1e-12). pick (nl entries, caller's array) receives the index of the
 * chosen choice of each layer. Among combinations of equal value the
 * cheapest is taken; the result is deterministic for given inputs.
 *
 * Errors: LR_EINVAL when no combination meets the budget (the message
 * gives the cheapest total cost as "%.17g" after "cheapest"; callers that
 * know the unit usually say it better themselves: check with
 * lr_mck_min_cost() first), when a cost or value is not finite, a cost is
 * negative or a layer has no choice; LR_ENOMEM.
 */
int lr_mck_solve(const lr_mck_layer *layers, int nl, double budget, int *pick,
		 lr_mck_result *res, lr_msg *msg);

/* The same with another limit on the states one layer may generate
 * before costs are binned (for tests). */
int lr_mck_solve_limit(const lr_mck_layer *layers, int nl, double budget, int64_t exact_limit,
		       int *pick, lr_mck_result *res, lr_msg *msg);

/* The sum over layers of each layer's cheapest choice. */
double lr_mck_min_cost(const lr_mck_layer *layers, int nl);

/*
 * The vector block of this CPU in floats, detected at run time: 16 with
 * AVX-512F, 8 with AVX2, else 4. LR_VECTOR_BLOCK in the environment (a
 * power of two from 1 to 64) overrides it, for tests and experiments.
 */
int lr_cpu_vector_block(void);

/* A short name of the CPU (the model name from /proc/cpuinfo, or the
 * vendor string), for timing-cache keys and reports. Writes at most len
 * bytes, NUL-terminated. */
void lr_cpu_name(char *buf, size_t len);

/*
 * The candidate ranks of a layer whose ranks up to max_rank are faster
 * than the layer (by the cost model at hand): the multiples of `multiple`
 * from `multiple` to max_rank; when no multiple is <= max_rank, every rank
 * from 1 to max_rank. multiple <= 1 means every rank. Writes at most cap
 * ranks, ascending, into out and returns how many there are (which may
 * exceed cap; call with cap 0 to count).
 */
int64_t lr_rank_grid(int64_t max_rank, int multiple, int64_t *out, int64_t cap);

#endif /* LR_SOLVER_SELECT_H */
