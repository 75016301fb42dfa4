/*
 * mlp.c: the MLP block, out = W_down act(W_up x + b_up) + b_down, where the
 * down-projection reads only the rows of w_down_t whose activation is active.
 *
 * act is ReLU, optionally sparser: a neuron is active when its
 * pre-activation exceeds the token's threshold, which is params.threshold
 * raised, with top_k, until at most top_k neurons remain.
 *
 * The up-projection is always dense (oneDNN): which neurons fire is known
 * only after it. The down-projection is
 *   SPARSE  relu_compact + axpy_rows per token: cost ~ active rows x d_model;
 *   DENSE   one oneDNN GEMM over the batch: cost ~ d_ff x d_model per call;
 *   AUTO    whichever costs less for this call: sparse ~ active rows summed
 *           over the batch x seconds per row; dense ~ the GEMM time for n
 *           tokens, interpolated between 1 and max_batch tokens (a one-token
 *           GEMV is memory-bound, a 64-token GEMM compute-bound, so one
 *           crossover density cannot serve both). All three times are
 *           measured on the first layer when the context is created. If the
 *           caller set auto_crossover instead: sparse while the mean active
 *           fraction per token is below it.
 */
#include <string.h>
#include <time.h>

#include "model.h"

double lzn_now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The value that has exactly k values of v[0..n) above it (0 <= k < n):
 * quickselect for descending position k. Reorders v. */
static float kth_largest(float *v, int n, int k) {
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    const float pivot = v[lo + (hi - lo) / 2];
    int i = lo, j = hi;
    while (i <= j) {
      while (v[i] > pivot) i++;
      while (v[j] < pivot) j--;
      if (i <= j) {
        const float t = v[i];
        v[i++] = v[j], v[j--] = t;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break; /* v[k] == pivot */
  }
  return v[k];
}

/* The activation threshold of one token (see the top of the file). With
 * ties at the boundary fewer than top_k may remain: "at most" k. */
static float token_threshold(lzn_context *ctx, const float *h) {
  const float base = ctx->params.threshold;
  const int k = ctx->params.top_k, f = ctx->model->d_ff;
  if (k <= 0 || k >= f) return base;
  float *above = ctx->top_k_scratch;
  int m = 0;
  for (int i = 0; i < f; i++)
    if (h[i] > base) above[m++] = h[i];
  return m <= k ? base : kth_largest(above, m, k);
}

/* Per-token bookkeeping: which neurons fired, and the work done. */
static void count_sparse(lzn_context *ctx, int layer, const int32_t *idx, size_t n_active) {
  if (!ctx->params.collect_stats) return;
  lzn_layer_counters *c = &ctx->counters[layer];
  const double d = ctx->model->d_model;
  c->tokens++;
  c->active_sum += (int64_t)n_active;
  for (size_t t = 0; t < n_active; t++) c->fired[idx[t]] = 1;
  c->flops_executed += 2.0 * d * (double)n_active;
  c->bytes_executed += sizeof(float) * d * (double)n_active;
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
  const size_t n_active = ctx->kernels->relu_compact(h, (size_t)m->d_ff, threshold,
                                                     ctx->active_idx, ctx->active_val);
  count_sparse(ctx, layer, ctx->active_idx, n_active);
  bias_rows(out, w->down_b, 1, m->d_model);
  lzn_sparse_down_run(ctx->kernels, out, (size_t)m->d_model, w->down_w_t, ctx->active_idx,
                      ctx->active_val, n_active, ctx->params.n_threads);
}

static lzn_status down_dense(lzn_context *ctx, int layer, const float *h, float *out, int n) {
  const lzn_model *m = ctx->model;
  const lzn_layer *w = &m->layers[layer];
  if (w->down_w) return lzn_linear(ctx, out, h, w->down_w, w->down_b, n, m->d_model, m->d_ff);
  return lzn_dense_linear_kn(ctx->dense, out, h, w->down_w_t, w->down_b, n, m->d_model, m->d_ff,
                             ctx->params.n_threads);
}

static int auto_prefers_sparse(const lzn_context *ctx, size_t active_total, int n) {
  const double f = ctx->model->d_ff;
  if (ctx->params.auto_crossover > 0.0f)
    return (double)active_total < (double)ctx->params.auto_crossover * f * n;
  double dense = ctx->t_dense_1;
  if (ctx->max_batch > 1)
    dense += (ctx->t_dense_batch - ctx->t_dense_1) * (n - 1) / (ctx->max_batch - 1);
  return (double)active_total * ctx->t_row < dense;
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
    threshold[t] = token_threshold(ctx, h);
    if (mode == LZN_MLP_AUTO)
      active_total += ctx->kernels->relu_compact(h, (size_t)f, threshold[t], ctx->active_idx,
                                                 ctx->active_val);
  }
  if (mode == LZN_MLP_SPARSE || (mode == LZN_MLP_AUTO && auto_prefers_sparse(ctx, active_total, n))) {
    for (int t = 0; t < n; t++)
      down_sparse_token(ctx, layer, up + (size_t)t * f, threshold[t], out + (size_t)t * m->d_model);
    if (ctx->params.collect_stats) c->sparse_calls++;
    return LZN_OK;
  }
  active_total = 0;
  for (int t = 0; t < n; t++)
    active_total += activate_in_place(ctx, layer, up + (size_t)t * f, threshold[t]);
  if (ctx->params.collect_stats) {
    c->tokens += n;
    c->active_sum += (int64_t)active_total;
    c->flops_executed += 2.0 * m->d_model * (double)f * n;
    c->bytes_executed += sizeof(float) * (double)m->d_model * f;
    c->dense_calls++;
  }
  return down_dense(ctx, layer, up, out, n);
}

lzn_status lzn_mlp_forward(lzn_context *ctx, int layer, const float *x, float *out, int n) {
  const lzn_model *m = ctx->model;
  const lzn_layer *w = &m->layers[layer];
  const double t0 = lzn_now_seconds();
  lzn_status s = lzn_linear(ctx, ctx->up, x, w->up_w, w->up_b, n, m->d_ff, m->d_model);
  const double t1 = lzn_now_seconds();
  if (s == LZN_OK) s = down_projection(ctx, layer, out, n);
  if (ctx->params.collect_stats) {
    ctx->counters[layer].seconds_up += t1 - t0;
    ctx->counters[layer].seconds_down += lzn_now_seconds() - t1;
  }
  return s;
}

/* Best of a few timed runs (after a warm-up: first touch, primitive
 * creation): the minimum is the run least disturbed by other processes. */
#define COST_REPS 3

lzn_status lzn_mlp_measure_costs(lzn_context *ctx) {
  const lzn_model *m = ctx->model;
  const lzn_layer *w = &m->layers[0];
  const int d = m->d_model, f = m->d_ff, batch = ctx->max_batch;
  float *h = ctx->up, *out = ctx->mlp_out; /* [max_batch][d_ff], [max_batch][d_model] */
  for (size_t i = 0; i < (size_t)batch * f; i++) h[i] = 1.0f;
  for (int i = 0; i < f; i++) ctx->active_idx[i] = i, ctx->active_val[i] = 1.0f;
  double best[3] = {1e30, 1e30, 1e30}; /* sparse all rows, dense 1, dense batch */
  for (int rep = 0; rep <= COST_REPS; rep++) {
    double t[4];
    t[0] = lzn_now_seconds();
    lzn_sparse_down_run(ctx->kernels, out, (size_t)d, w->down_w_t, ctx->active_idx,
                        ctx->active_val, (size_t)f, ctx->params.n_threads);
    t[1] = lzn_now_seconds();
    lzn_status s = down_dense(ctx, 0, h, out, 1);
    t[2] = lzn_now_seconds();
    if (s == LZN_OK && batch > 1) s = down_dense(ctx, 0, h, out, batch);
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
