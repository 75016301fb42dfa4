/*
 * cost.c: AUTO's choice between the sparse and the dense MLP, per layer and
 * call (forward/cost.h).
 *
 * Sparse costs ~ rows read x seconds per row: rows of W_down^T (axpy_rows)
 * and of W_up (gathered dot products: a gated MLP's up rows, or the rows a
 * predictor selects), a batch reading the union of its rows once, for all
 * its tokens (linalg/union.c), at a cost per row interpolated between one
 * token and max_batch tokens; dense ~ the GEMV/GEMM time of the same
 * matrices for n tokens, interpolated between 1 and max_batch tokens (a
 * one-token GEMV is memory-bound, a 64-token GEMM compute-bound, so one
 * crossover density cannot serve both).
 */
#include "forward/cost.h"

#include "core/clock.h"
#include "forward/context.h"
#include "linalg/linear.h"
#include "linalg/sparse_down.h"
#include "linalg/union.h"

/* A time for n tokens from its 1- and max_batch-token values. */
static double at_n(const lzn_cost_model *cm, double one, double batch, int n) {
  return cm->max_batch > 1 ? one + (batch - one) * (n - 1) / (cm->max_batch - 1) : one;
}

int lzn_cost_prefers_sparse(const lzn_cost_model *cm, float crossover, const lzn_sparse_work *work, int n,
                            int d_ff, int gated) {
  if (crossover > 0.0f) return (double)work->down_rows < (double)crossover * d_ff * n;
  double dense = at_n(cm, cm->dense_down_one, cm->dense_down_batch, n);
  double sparse = (double)work->down_rows * at_n(cm, cm->row_down, cm->union_row_down, n);
  if (work->up_rows > 0 || gated) {
    dense += at_n(cm, cm->dense_up_one, cm->dense_up_batch, n);
    sparse += (double)work->up_rows * at_n(cm, cm->row_up, cm->union_row_up, n);
  }
  return sparse < dense;
}

/* Best of a few timed runs (after a warm-up: first touch, primitive
 * creation): the minimum is the run least disturbed by other processes. */
#define COST_REPS 3

/* The timed operations, each on all rows of layer 0 (sparse ones with every
 * row active: their time per row is what a call pays). */
typedef enum cost_op {
  OP_ROWS_DOWN, OP_ROWS_UP, OP_DENSE_DOWN_ONE, OP_DENSE_DOWN_BATCH, OP_DENSE_UP_ONE, OP_DENSE_UP_BATCH,
  OP_UNION_DOWN, OP_UNION_UP, OP_COUNT
} cost_op;

static lzn_status run_op(lzn_context *ctx, cost_op op) {
  const lzn_model *m = ctx->model;
  const lzn_layer *weights = &m->layers[0];
  const int f = m->d_ff, batch = ctx->max_batch;
  lzn_exec *ex = &ctx->exec;
  lzn_mlp_buffers *b = &ctx->ws.mlp;
  float *h = b->decider, *out = ctx->ws.stream.mlp_out, *x = ctx->ws.stream.normed;
  switch (op) {
  case OP_ROWS_DOWN:
    lzn_sparse_down_run(ex->kernels, ex->pool, out, &weights->down_t, b->active_idx, b->active_val, (size_t)f, LZN_DOWN_ROUND_Q8);
    return LZN_OK;
  case OP_ROWS_UP: return lzn_linear_rows(ex, b->top_k_scratch, x, &weights->up, b->active_idx, (size_t)f);
  case OP_DENSE_DOWN_ONE: return lzn_linear_down(ex, out, h, &weights->down, &weights->down_t, NULL, 1);
  case OP_DENSE_DOWN_BATCH: return lzn_linear_down(ex, out, h, &weights->down, &weights->down_t, NULL, batch);
  case OP_DENSE_UP_ONE: return lzn_linear(ex, h, x, &weights->up, NULL, 1);
  case OP_DENSE_UP_BATCH: return lzn_linear(ex, h, x, &weights->up, NULL, batch);
  case OP_UNION_DOWN: return lzn_union_axpy(ex, out, batch, &weights->down_t, b->active_idx, (size_t)f, b->coef);
  case OP_UNION_UP: return lzn_union_dot(ex, h, batch, &weights->up, b->active_idx, (size_t)f, x);
  case OP_COUNT: break;
  }
  return LZN_OK;
}

lzn_status lzn_cost_measure(lzn_context *ctx, lzn_cost_model *out) {
  const lzn_model *m = ctx->model;
  const int f = m->d_ff, d = m->d_model, batch = ctx->max_batch;
  lzn_mlp_buffers *b = &ctx->ws.mlp;
  for (size_t i = 0; i < (size_t)batch * f; i++) b->decider[i] = 1.0f, b->coef[i] = 1.0f;
  for (size_t i = 0; i < (size_t)batch * d; i++) ctx->ws.stream.normed[i] = 1.0f;
  for (int i = 0; i < f; i++) b->active_idx[i] = i, b->active_val[i] = 1.0f;
  double best[OP_COUNT];
  for (int op = 0; op < OP_COUNT; op++) best[op] = 1e30;
  for (int rep = 0; rep <= COST_REPS; rep++)
    for (int op = 0; op < OP_COUNT; op++) {
      const int needs_batch = op == OP_DENSE_DOWN_BATCH || op == OP_DENSE_UP_BATCH || op == OP_UNION_DOWN ||
                              op == OP_UNION_UP;
      if (needs_batch && batch <= 1) continue;
      const double t0 = lzn_now_seconds();
      const lzn_status s = run_op(ctx, (cost_op)op);
      if (s != LZN_OK) return s;
      const double t = lzn_now_seconds() - t0;
      if (rep > 0 && t < best[op]) best[op] = t;
    }
  out->max_batch = batch;
  out->row_down = best[OP_ROWS_DOWN] / f;
  out->row_up = best[OP_ROWS_UP] / f;
  out->dense_down_one = best[OP_DENSE_DOWN_ONE];
  out->dense_down_batch = batch > 1 ? best[OP_DENSE_DOWN_BATCH] : best[OP_DENSE_DOWN_ONE];
  out->dense_up_one = best[OP_DENSE_UP_ONE];
  out->dense_up_batch = batch > 1 ? best[OP_DENSE_UP_BATCH] : best[OP_DENSE_UP_ONE];
  out->union_row_down = batch > 1 ? best[OP_UNION_DOWN] / f : out->row_down;
  out->union_row_up = batch > 1 ? best[OP_UNION_UP] / f : out->row_up;
  return LZN_OK;
}
