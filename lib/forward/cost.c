/*
 * cost.c: AUTO's choice between the sparse and the dense MLP, per layer and
 * call.
 *
 * Sparse costs ~ rows read x seconds per row: rows of W_down^T (axpy_rows)
 * and of W_up (gathered dot products: a gated MLP's up rows, or the rows a
 * predictor selects), a batch reading the union of its rows once, for all
 * its tokens (union.c), at a cost per row interpolated between one token
 * and max_batch tokens; dense ~ the GEMV/GEMM time of the same matrices for n
 * tokens, interpolated between 1 and max_batch tokens (a one-token GEMV is
 * memory-bound, a 64-token GEMM compute-bound, so one crossover density
 * cannot serve both). Every time is measured on the first layer when the
 * context is created. If the caller set auto_crossover instead: sparse
 * while the mean active fraction per token is below it.
 */
#include "core/clock.h"
#include "forward/forward.h"
#include "linalg/linear.h"
#include "linalg/sparse_down.h"
#include "linalg/union.h"

/* The dense time of one part for n tokens, from its 1- and batch-token times. */
static double dense_time(const lzn_context *ctx, const double t[2], int n) {
  double dense = t[0];
  if (ctx->max_batch > 1) dense += (t[1] - t[0]) * (n - 1) / (ctx->max_batch - 1);
  return dense;
}

int lzn_cost_prefers_sparse(const lzn_context *ctx, const lzn_sparse_work *work, int n) {
  const double f = ctx->model->d_ff;
  if (ctx->params.auto_crossover > 0.0f)
    return (double)work->down_rows < (double)ctx->params.auto_crossover * f * n;
  const double row_down[2] = {ctx->t_row_down, ctx->t_union_row_down};
  const double row_up[2] = {ctx->t_row_up, ctx->t_union_row_up};
  double dense = dense_time(ctx, ctx->t_dense_down, n);
  double sparse = (double)work->down_rows * dense_time(ctx, row_down, n);
  if (work->up_rows > 0 || ctx->model->arch.mlp == LZN_MLP_KIND_GATED) {
    dense += dense_time(ctx, ctx->t_dense_up, n);
    sparse += (double)work->up_rows * dense_time(ctx, row_up, n);
  }
  return sparse < dense;
}

/* Best of a few timed runs (after a warm-up: first touch, primitive
 * creation): the minimum is the run least disturbed by other processes. */
#define COST_REPS 3

lzn_status lzn_cost_measure(lzn_context *ctx) {
  const lzn_model *m = ctx->model;
  const lzn_layer *w = &m->layers[0];
  const int f = m->d_ff, d = m->d_model, batch = ctx->max_batch;
  float *h = ctx->up, *out = ctx->mlp_out; /* [max_batch][d_ff], [max_batch][d_model] */
  float *x = ctx->normed;                  /* [max_batch][d_model] */
  for (size_t i = 0; i < (size_t)batch * f; i++) h[i] = 1.0f;
  for (size_t i = 0; i < (size_t)batch * d; i++) x[i] = 1.0f;
  for (int i = 0; i < f; i++) ctx->active_idx[i] = i, ctx->active_val[i] = 1.0f;
  /* all rows down, all rows up, dense down 1 / batch, dense up 1 / batch,
   * union down / up for a batch */
  double best[8] = {1e30, 1e30, 1e30, 1e30, 1e30, 1e30, 1e30, 1e30};
  float *coef = ctx->union_coef; /* [max_batch][d_ff] */
  for (size_t i = 0; i < (size_t)batch * f; i++) coef[i] = 1.0f;
  lzn_exec *ex = &ctx->exec;
  for (int rep = 0; rep <= COST_REPS; rep++) {
    double t[9];
    lzn_status s = LZN_OK;
    t[0] = lzn_now_seconds();
    lzn_sparse_down_run(ex->kernels, out, &w->down_t, ctx->active_idx, ctx->active_val, (size_t)f,
                        ex->n_threads);
    t[1] = lzn_now_seconds();
    s = lzn_linear_rows(ex, ctx->top_k_scratch, x, &w->up, ctx->active_idx, (size_t)f);
    t[2] = lzn_now_seconds();
    if (s == LZN_OK) s = lzn_mlp_down_dense(ctx, 0, h, out, 1);
    t[3] = lzn_now_seconds();
    if (s == LZN_OK && batch > 1) s = lzn_mlp_down_dense(ctx, 0, h, out, batch);
    t[4] = lzn_now_seconds();
    if (s == LZN_OK) s = lzn_linear(ex, h, x, &w->up, NULL, 1);
    t[5] = lzn_now_seconds();
    if (s == LZN_OK && batch > 1) s = lzn_linear(ex, h, x, &w->up, NULL, batch);
    t[6] = lzn_now_seconds();
    if (s == LZN_OK && batch > 1) s = lzn_union_axpy(ex, out, batch, &w->down_t, ctx->active_idx, (size_t)f, coef);
    t[7] = lzn_now_seconds();
    if (s == LZN_OK && batch > 1) s = lzn_union_dot(ex, h, batch, &w->up, ctx->active_idx, (size_t)f, x);
    t[8] = lzn_now_seconds();
    if (s != LZN_OK) return s;
    for (int i = 0; rep > 0 && i < 8; i++)
      if (t[i + 1] - t[i] < best[i]) best[i] = t[i + 1] - t[i];
  }
  ctx->t_row_down = best[0] / f;
  ctx->t_row_up = best[1] / f;
  ctx->t_dense_down[0] = best[2];
  ctx->t_dense_down[1] = batch > 1 ? best[3] : best[2];
  ctx->t_dense_up[0] = best[4];
  ctx->t_dense_up[1] = batch > 1 ? best[5] : best[4];
  ctx->t_union_row_down = batch > 1 ? best[6] / f : ctx->t_row_down;
  ctx->t_union_row_up = batch > 1 ? best[7] / f : ctx->t_row_up;
  return LZN_OK;
}
