/*
 * cost.h: AUTO's choice between the sparse and the dense MLP, per layer and
 * call, from costs measured for this context's shapes. Private.
 */
#ifndef LZN_FORWARD_COST_H
#define LZN_FORWARD_COST_H

#include <stddef.h>

#include "lazyneuron.h"

struct lzn_context;

/* Seconds measured on the model's first layer when the context is created. */
typedef struct lzn_cost_model {
  int max_batch;
  double row_down, row_up;             /* per row read sparse for one token: axpy_rows, gathered dot */
  double union_row_down, union_row_up; /* per union row for max_batch tokens (linalg/union.c) */
  double dense_down_one, dense_down_batch; /* the dense down-projection of 1 and max_batch tokens */
  double dense_up_one, dense_up_batch;     /* the dense up-projection (W_up) of 1 and max_batch tokens */
} lzn_cost_model;

/* The rows a sparse call would read, summed over its tokens (a batch: its
 * union, once). */
typedef struct lzn_sparse_work {
  size_t down_rows; /* of W_down^T (the active neurons) */
  size_t up_rows;   /* of W_up, W_gate (gathered: gated MLPs, predicted sets) */
} lzn_sparse_work;

/* Measures ctx's cost model (its workspace is the scratch: call before any
 * forward). Statuses: OK, NOMEM, BACKEND. */
lzn_status lzn_cost_measure(struct lzn_context *ctx, lzn_cost_model *out);

/* Whether a call of n tokens doing `work` is cheaper sparse. crossover > 0
 * (the caller's auto_crossover) replaces the model: sparse while the down
 * rows are below crossover x d_ff per token. */
int lzn_cost_prefers_sparse(const lzn_cost_model *cm, float crossover, const lzn_sparse_work *work, int n,
                            int d_ff, int gated);

#endif /* LZN_FORWARD_COST_H */
