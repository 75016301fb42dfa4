/*
 * cost.c: AUTO's choice between the sparse and the dense down-projection.
 *
 * Sparse costs ~ active rows summed over the batch x seconds per row (per
 * row of W_down^T, and for a gated MLP also of W_up); dense
 * ~ the GEMM time for n tokens, interpolated between 1 and max_batch tokens
 * (a one-token GEMV is memory-bound, a 64-token GEMM compute-bound, so one
 * crossover density cannot serve both). All three times are measured on
 * the first layer when the context is created. If the caller set
 * auto_crossover instead: sparse while the mean active fraction per token
 * is below it.
 */
#include "core/clock.h"
#include "forward/forward.h"
#include "linalg/linear.h"
#include "linalg/sparse_down.h"

int lzn_cost_prefers_sparse(const lzn_context *ctx, size_t active_total, int n) {
  const double f = ctx->model->d_ff;
  if (ctx->params.auto_crossover > 0.0f)
    return (double)active_total < (double)ctx->params.auto_crossover * f * n;
  double dense = ctx->t_dense_1;
  if (ctx->max_batch > 1)
    dense += (ctx->t_dense_batch - ctx->t_dense_1) * (n - 1) / (ctx->max_batch - 1);
  return (double)active_total * ctx->t_row < dense;
}

/* Best of a few timed runs (after a warm-up: first touch, primitive
 * creation): the minimum is the run least disturbed by other processes. */
#define COST_REPS 3

/* The part of the MLP that AUTO switches, dense, for n tokens: the
 * down-projection, and for a gated MLP the up-projection too. x and h are
 * any inputs of the right sizes. */
static lzn_status dense_part(lzn_context *ctx, const float *x, float *h, float *out, int n) {
  const lzn_layer *w = &ctx->model->layers[0];
  lzn_status s = LZN_OK;
  if (ctx->model->arch.mlp == LZN_MLP_KIND_GATED) s = lzn_linear(&ctx->exec, h, x, &w->up, NULL, n);
  return s == LZN_OK ? lzn_mlp_down_dense(ctx, 0, h, out, n) : s;
}

/* The same part sparse, with every row active. */
static lzn_status sparse_part(lzn_context *ctx, const float *x, float *out) {
  const lzn_layer *w = &ctx->model->layers[0];
  const size_t f = (size_t)ctx->model->d_ff;
  lzn_status s = LZN_OK;
  if (ctx->model->arch.mlp == LZN_MLP_KIND_GATED)
    s = lzn_linear_rows(&ctx->exec, ctx->gate, x, &w->up, ctx->active_idx, f);
  if (s == LZN_OK)
    lzn_sparse_down_run(ctx->exec.kernels, out, &w->down_t, ctx->active_idx, ctx->active_val, f,
                        ctx->exec.n_threads);
  return s;
}

lzn_status lzn_cost_measure(lzn_context *ctx) {
  const lzn_model *m = ctx->model;
  const int f = m->d_ff, d = m->d_model, batch = ctx->max_batch;
  float *h = ctx->up, *out = ctx->mlp_out; /* [max_batch][d_ff], [max_batch][d_model] */
  float *x = ctx->normed;                  /* [max_batch][d_model] */
  for (size_t i = 0; i < (size_t)batch * f; i++) h[i] = 1.0f;
  for (size_t i = 0; i < (size_t)batch * d; i++) x[i] = 1.0f;
  for (int i = 0; i < f; i++) ctx->active_idx[i] = i, ctx->active_val[i] = 1.0f;
  double best[3] = {1e30, 1e30, 1e30}; /* sparse all rows, dense 1, dense batch */
  for (int rep = 0; rep <= COST_REPS; rep++) {
    double t[4];
    t[0] = lzn_now_seconds();
    lzn_status s = sparse_part(ctx, x, out);
    t[1] = lzn_now_seconds();
    if (s == LZN_OK) s = dense_part(ctx, x, h, out, 1);
    t[2] = lzn_now_seconds();
    if (s == LZN_OK && batch > 1) s = dense_part(ctx, x, h, out, batch);
    t[3] = lzn_now_seconds();
    if (s != LZN_OK) return s;
    for (int i = 0; rep > 0 && i < 3; i++)
      if (t[i + 1] - t[i] < best[i]) best[i] = t[i + 1] - t[i];
  }
  ctx->t_row = best[0] / f;
  ctx->t_dense_1 = best[1];
  ctx->t_dense_batch = batch > 1 ? best[2] : best[1];
  return LZN_OK;
}
