/*
 * cost.h: AUTO's choice between the sparse and the dense MLP, per layer and
 * call, from costs measured for this context's shapes. Private.
 */
#ifndef LZN_FORWARD_COST_H
#define LZN_FORWARD_COST_H

#include <stdatomic.h>
#include <stddef.h>

#include "lazyneuron.h"

struct lzn_context;

/* Token counts the costs are measured at: one token (memory-bound GEMV,
 * axpy_rows), a few (where the batched kernels change: the F32 backend
 * switch at 9, linalg/gemm.c), and LZN_COST_TOP_TOKENS (or the context's
 * step, if shorter). Beyond it costs go on at the last two points' slope:
 * by then both paths are compute-bound, and a step of 256 tokens would
 * take 4x as long to measure when a context is made (~0.85 s at 64 on
 * LLaMA-7B). */
#define LZN_COST_POINTS 3
#define LZN_COST_TOP_TOKENS 64

/* Seconds measured on the model's first layer when the context is created,
 * at tokens[k] tokens; between two points a cost is interpolated linearly
 * in the token count. */
typedef struct lzn_cost_model {
  int max_batch;
  int n_points;                      /* 1 to LZN_COST_POINTS (distinct token counts) */
  int tokens[LZN_COST_POINTS];       /* increasing; tokens[0] = 1 */
  double row_down[LZN_COST_POINTS];  /* per row read sparse: axpy_rows (1 token), a union row (more) */
  double row_up[LZN_COST_POINTS];    /* per gathered row of W_up: dot_rows, a union row */
  double dense_down[LZN_COST_POINTS]; /* the dense down-projection */
  double dense_up[LZN_COST_POINTS];   /* the dense up-projection (W_up) */
} lzn_cost_model;

/* The rows a sparse call would read, summed over its tokens (a batch: its
 * union, once). */
typedef struct lzn_sparse_work {
  size_t down_rows; /* of W_down^T (the active neurons) */
  size_t up_rows;   /* of W_up, W_gate (gathered: gated MLPs, predicted sets) */
} lzn_sparse_work;

/* How a sparse call of several tokens reads its rows: the union once for
 * all of them (the gemm kernels over the union), or each token its own set
 * (the one-token kernels, once per token): with uncorrelated activations
 * the union of 64 tokens at 10 % is nearly every row, while each token's
 * own rows are 10 % of them. */
typedef enum lzn_sparse_form { LZN_SPARSE_UNION = 0, LZN_SPARSE_EACH = 1 } lzn_sparse_form;

/* The cheaper form for n tokens: `each` the rows summed over the tokens'
 * own sets, `uni` the union's. From the measured costs when cm has them
 * (AUTO), else (SPARSE, no model) by a union row costing what one token's
 * row costs up to 3 tokens and growing with n / 3 beyond (the int8 tiles'
 * gain at 64 tokens, lzn-bench gemm). */
lzn_sparse_form lzn_cost_sparse_form(const lzn_cost_model *cm, const lzn_sparse_work *uni,
                                     const lzn_sparse_work *each, int n);

/* The sparse cost of a form, in the model's seconds (0 without a model). */
double lzn_cost_sparse_seconds(const lzn_cost_model *cm, const lzn_sparse_work *work, int n, lzn_sparse_form form);

/* Measures ctx's cost model (its workspace is the scratch: call before any
 * forward). Statuses: OK, NOMEM, BACKEND. */
lzn_status lzn_cost_measure(struct lzn_context *ctx, lzn_cost_model *out);

/* What the model keeps of its contexts' measurements (lzn_model.costs), so
 * that only the first context of each thread count and batch size pays for
 * them: ~0.85 s on a LLaMA-7B shape, mostly its 64-token products, which
 * made a server of 16 slots start in 14 s. Each entry is written once and
 * published through its state (free, being written, ready): the model is
 * otherwise read-only to its contexts, which threads may create at once. */
#define LZN_COST_CACHE 8
typedef struct lzn_cost_entry {
  _Atomic int state;
  int n_threads, max_batch;
  lzn_cost_model cost;
} lzn_cost_entry;

/* ctx's cost model: a ready entry of cache with ctx's thread count and
 * batch size, else measured (lzn_cost_measure) and kept in a free entry
 * (none free: not kept). Statuses: as lzn_cost_measure. */
lzn_status lzn_cost_for_context(struct lzn_context *ctx, lzn_cost_entry cache[LZN_COST_CACHE], lzn_cost_model *out);

/* Whether a call of n tokens doing `work` (in its cheaper form, per
 * lzn_cost_sparse_form, when each is not NULL) is cheaper sparse. crossover > 0
 * (the caller's auto_crossover) replaces the model: sparse while the down
 * rows are below crossover x d_ff per token. */
int lzn_cost_prefers_sparse(const lzn_cost_model *cm, float crossover, const lzn_sparse_work *work,
                            const lzn_sparse_work *each, int n, int d_ff, int gated);

/* Whether a batch of n tokens whose predictor picked predicted_rows rows
 * of the decider (summed over its tokens) gets them cheaper from the whole
 * decider, one product for all the tokens (then masked to the sets), than
 * from each token's own rows: at 16 tokens of a small model the per-token
 * rows cost more than the product they avoid. 0 without a model. */
int lzn_cost_decider_whole(const lzn_cost_model *cm, size_t predicted_rows, int n);

#endif /* LZN_FORWARD_COST_H */
