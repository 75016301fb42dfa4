/*
 * mlp.c: the MLP block, out = W_down act(W_up x + b_up) + b_down, where the
 * down-projection reads only the rows of w_down_t whose activation is active.
 *
 * act is ReLU, optionally sparser (select.c: threshold, top-k).
 *
 * The up-projection is dense: which neurons fire is known only after it;
 * with an activation predictor (predictor.c) only its predicted rows are
 * computed. The down-projection is
 *   SPARSE  relu_compact + axpy_rows per token: cost ~ active rows x d_model;
 *   DENSE   one GEMV/GEMM over the batch: cost ~ d_ff x d_model per call;
 *   AUTO    whichever the cost model (cost.c) says is cheaper for this call.
 */
#include <string.h>

#include "core/clock.h"
#include "forward/forward.h"
#include "linalg/linear.h"
#include "linalg/sparse_down.h"
#include "linalg/union.h"

/* Per-token bookkeeping: which neurons fired, and the work done. */
static void count_sparse(lzn_context *ctx, int layer, const int32_t *idx, size_t n_active) {
  if (!ctx->params.collect_stats) return;
  lzn_layer_counters *c = &ctx->counters[layer];
  const double d = ctx->model->d_model;
  c->tokens++;
  c->active_sum += (int64_t)n_active;
  c->union_sum += (int64_t)n_active; /* a one-token call */
  for (size_t t = 0; t < n_active; t++) c->fired[idx[t]] = 1;
  c->flops_executed += 2.0 * d * (double)n_active;
  c->bytes_executed += (double)ctx->model->layers[layer].down_t.row_bytes * (double)n_active;
}

/* Zeroes one token's activations at or below its threshold, in place;
 * returns how many are active and marks them as fired. */
static size_t activate_in_place(lzn_context *ctx, int layer, float *h, float threshold) {
  const int f = ctx->model->d_ff;
  uint8_t *fired = ctx->counters[layer].fired;
  size_t n_active = 0;
  for (int i = 0; i < f; i++) {
    const int active = h[i] > threshold; /* NaN is inactive, as in relu_compact */
    if (!active) h[i] = 0.0f;
    n_active += (size_t)active;
    fired[i] |= (uint8_t)active;
  }
  return n_active;
}

static void bias_rows(float *out, const float *bias, int n, int d) {
  for (int t = 0; t < n; t++) {
    if (bias) memcpy(out + (size_t)t * d, bias, sizeof(float) * (size_t)d);
    else memset(out + (size_t)t * d, 0, sizeof(float) * (size_t)d);
  }
}

/* Sparse down-projection of one token from its pre-activations h and its
 * threshold. */
static void down_sparse_token(lzn_context *ctx, int layer, const float *h, float threshold,
                              float *out) {
  const lzn_model *m = ctx->model;
  const lzn_layer *w = &m->layers[layer];
  const size_t n_active = ctx->exec.kernels->relu_compact.fn(h, (size_t)m->d_ff, threshold,
                                                     ctx->active_idx, ctx->active_val);
  count_sparse(ctx, layer, ctx->active_idx, n_active);
  bias_rows(out, w->down_b, 1, m->d_model);
  lzn_sparse_down_run(ctx->exec.kernels, out, &w->down_t, ctx->active_idx, ctx->active_val,
                      n_active, ctx->exec.n_threads);
}

lzn_status lzn_mlp_down_dense(lzn_context *ctx, int layer, const float *h, float *out, int n) {
  const lzn_model *m = ctx->model;
  const lzn_layer *w = &m->layers[layer];
  if (w->down.data) return lzn_linear(&ctx->exec, out, h, &w->down, w->down_b, n);
  return lzn_linear_kn(&ctx->exec, out, h, &w->down_t, w->down_b, n, ctx->all_rows);
}

/* n tokens sparse over the union of their active rows (union.c): each row
 * of W_down^T the batch needs read once; coef zero where a token does not
 * have it active. The union's indices are in ctx->union_idx. */
static lzn_status down_union(lzn_context *ctx, int layer, float *out, int n, size_t n_union) {
  const lzn_model *m = ctx->model;
  const lzn_layer *w = &m->layers[layer];
  const int f = m->d_ff;
  const int32_t *u = ctx->union_idx;
  size_t active_total = 0;
  for (int t = 0; t < n; t++) {
    const float *h = ctx->up + (size_t)t * f;
    float *coef = ctx->union_coef + (size_t)t * n_union;
    for (size_t j = 0; j < n_union; j++) {
      const int active = h[u[j]] > ctx->token_threshold[t];
      coef[j] = active ? h[u[j]] : 0.0f;
      active_total += (size_t)active;
    }
  }
  bias_rows(out, w->down_b, n, m->d_model);
  const lzn_status s = lzn_union_axpy(&ctx->exec, out, n, &w->down_t, u, n_union, ctx->union_coef);
  if (ctx->params.collect_stats) {
    lzn_layer_counters *c = &ctx->counters[layer];
    c->tokens += n;
    c->active_sum += (int64_t)active_total;
    c->union_sum += (int64_t)n_union;
    for (size_t j = 0; j < n_union; j++) c->fired[u[j]] = 1;
    c->flops_executed += 2.0 * m->d_model * (double)n_union * n;
    c->bytes_executed += (double)w->down_t.row_bytes * (double)n_union; /* once for the batch */
    c->sparse_calls++;
  }
  return s;
}

/* The down-projection of n tokens whose pre-activations are in ctx->up. */
static lzn_status down_projection(lzn_context *ctx, int layer, float *out, int n) {
  const lzn_model *m = ctx->model;
  const int f = m->d_ff;
  lzn_layer_counters *c = &ctx->counters[layer];
  float *up = ctx->up, *threshold = ctx->token_threshold;
  const lzn_mlp_mode mode = ctx->params.mlp_mode;
  /* Each token's threshold, and for AUTO how many neurons the batch keeps:
   * counted with the SIMD kernel (~1 us per 8192 values), since AUTO counts
   * on every call and a scalar pass cost it 3 % of a prefill. */
  size_t active_total = 0;
  for (int t = 0; t < n; t++) {
    const float *h = up + (size_t)t * f;
    threshold[t] = lzn_token_threshold(ctx, h, ctx->params.threshold);
    if (mode == LZN_MLP_AUTO && n == 1)
      active_total += ctx->exec.kernels->relu_compact.fn(h, (size_t)f, threshold[t], ctx->active_idx,
                                                 ctx->active_val);
  }
  /* A batch reads the union of its active rows once (union.c). */
  const size_t n_union = n > 1 ? lzn_union_of(ctx, up, n) : active_total;
  const lzn_sparse_work work = {.down_rows = n > 1 ? n_union : active_total, .up_rows = 0};
  if (mode == LZN_MLP_SPARSE || (mode == LZN_MLP_AUTO && lzn_cost_prefers_sparse(ctx, &work, n))) {
    if (n > 1) return down_union(ctx, layer, out, n, n_union);
    down_sparse_token(ctx, layer, up, threshold[0], out);
    if (ctx->params.collect_stats) c->sparse_calls++;
    return LZN_OK;
  }
  active_total = 0;
  for (int t = 0; t < n; t++)
    active_total += activate_in_place(ctx, layer, up + (size_t)t * f, threshold[t]);
  if (ctx->params.collect_stats) {
    c->tokens += n;
    c->active_sum += (int64_t)active_total;
    c->union_sum += (int64_t)(n > 1 ? n_union : active_total);
    c->flops_executed += 2.0 * m->d_model * (double)f * n;
    c->bytes_executed += (double)m->layers[layer].down_t.row_bytes * f;
    c->dense_calls++;
  }
  return lzn_mlp_down_dense(ctx, layer, up, out, n);
}

/* ctx->up = fc1(x) + b1 for n tokens: dense, or with a predictor only its
 * predicted rows (zeros elsewhere) unless AUTO finds the predicted sets
 * too large to be worth it. */
static lzn_status up_projection(lzn_context *ctx, int layer, const float *x, int n) {
  const lzn_model *m = ctx->model;
  const lzn_layer *w = &m->layers[layer];
  const int d = m->d_model, f = m->d_ff;
  if (lzn_predictor_in_use(ctx, layer)) {
    size_t total;
    lzn_status s = lzn_predict_tokens(ctx, layer, x, ctx->hidden, n, &total);
    if (s != LZN_OK) return s;
    const lzn_sparse_work work = {.down_rows = total, .up_rows = total};
    const lzn_mlp_mode mode = ctx->params.mlp_mode;
    if (mode == LZN_MLP_SPARSE || (mode == LZN_MLP_AUTO && lzn_cost_prefers_sparse(ctx, &work, n))) {
      for (int t = 0; s == LZN_OK && t < n; t++) {
        float *row = ctx->up + (size_t)t * f;
        s = lzn_predicted_rows(ctx, &w->up, w->up_b, x + (size_t)t * d, t, row);
        if (s == LZN_OK) lzn_predictor_count(ctx, layer, row, ctx->params.threshold);
        if (s == LZN_OK)
          s = lzn_predictor_recall(ctx, layer, &w->up, w->up_b, x + (size_t)t * d, t, ctx->params.threshold);
      }
      return s;
    }
    s = lzn_linear(&ctx->exec, ctx->up, x, &w->up, w->up_b, n);
    if (s == LZN_OK) lzn_predictor_mask(ctx, ctx->up, n);
    for (int t = 0; s == LZN_OK && t < n; t++)
      lzn_predictor_count(ctx, layer, ctx->up + (size_t)t * f, ctx->params.threshold);
    return s;
  }
  return lzn_linear(&ctx->exec, ctx->up, x, &w->up, w->up_b, n);
}

lzn_status lzn_mlp_forward(lzn_context *ctx, int layer, const float *x, float *out, int n) {
  const lzn_model *m = ctx->model;
  if (m->arch.mlp == LZN_MLP_KIND_GATED) return lzn_mlp_gated_forward(ctx, layer, x, out, n);
  const double t0 = lzn_now_seconds();
  lzn_status s = up_projection(ctx, layer, x, n);
  const double t1 = lzn_now_seconds();
  if (s == LZN_OK) s = down_projection(ctx, layer, out, n);
  if (ctx->params.collect_stats) {
    ctx->counters[layer].seconds_up += t1 - t0;
    ctx->counters[layer].seconds_down += lzn_now_seconds() - t1;
  }
  return s;
}
