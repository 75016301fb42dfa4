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
 *   AUTO    sparse while the active rows the batch would read (summed over
 *           its tokens) stay below crossover x d_ff, the fraction at which the
 *           two cost the same, measured once per context.
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

/* Zeroes one token's inactive activations in place; returns how many are
 * active and marks them as fired. */
static size_t activate_in_place(lzn_context *ctx, int layer, float *h) {
  const int f = ctx->model->d_ff;
  const float threshold = token_threshold(ctx, h);
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

/* Sparse down-projection of one token: h holds pre-activations and
 * threshold is the token's, or h was zeroed by activate_in_place and
 * threshold is 0 (kept values are > a threshold >= 0: the same set). */
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
  if (w->down_w)
    return lzn_dense_linear(ctx->dense, out, h, w->down_w, w->down_b, n, m->d_model, m->d_ff,
                            ctx->params.n_threads);
  return lzn_dense_linear_kn(ctx->dense, out, h, w->down_w_t, w->down_b, n, m->d_model, m->d_ff,
                             ctx->params.n_threads);
}

/* The down-projection of n tokens whose pre-activations are in ctx->up. */
static lzn_status down_projection(lzn_context *ctx, int layer, float *out, int n) {
  const lzn_model *m = ctx->model;
  const int f = m->d_ff;
  lzn_layer_counters *c = &ctx->counters[layer];
  float *up = ctx->up;
  const lzn_mlp_mode mode = ctx->params.mlp_mode;
  size_t active_total = 0;
  if (mode != LZN_MLP_SPARSE)
    for (int t = 0; t < n; t++) active_total += activate_in_place(ctx, layer, up + (size_t)t * f);
  if (mode == LZN_MLP_SPARSE ||
      (mode == LZN_MLP_AUTO && (double)active_total < (double)ctx->crossover * f)) {
    for (int t = 0; t < n; t++) {
      const float *h = up + (size_t)t * f;
      const float threshold = mode == LZN_MLP_SPARSE ? token_threshold(ctx, h) : 0.0f;
      down_sparse_token(ctx, layer, h, threshold, out + (size_t)t * m->d_model);
    }
    if (ctx->params.collect_stats) c->sparse_calls++;
    return LZN_OK;
  }
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
  lzn_status s = lzn_dense_linear(ctx->dense, ctx->up, x, w->up_w, w->up_b, n, m->d_ff,
                                  m->d_model, ctx->params.n_threads);
  const double t1 = lzn_now_seconds();
  if (s == LZN_OK) s = down_projection(ctx, layer, out, n);
  if (ctx->params.collect_stats) {
    ctx->counters[layer].seconds_up += t1 - t0;
    ctx->counters[layer].seconds_down += lzn_now_seconds() - t1;
  }
  return s;
}

/* Times one token's down-projection of layer 0, dense and sparse with every
 * row active; sparse time grows linearly with the active fraction, so the
 * two are equal at t_dense / t_sparse_all. Best of a few runs: the minimum
 * is the least disturbed by other processes. */
lzn_status lzn_mlp_measure_crossover(lzn_context *ctx, float *crossover) {
  const lzn_model *m = ctx->model;
  const lzn_layer *w = &m->layers[0];
  const int d = m->d_model, f = m->d_ff;
  float *h = ctx->up, *out = ctx->mlp_out;
  for (int i = 0; i < f; i++) {
    h[i] = 1.0f;
    ctx->active_idx[i] = i;
    ctx->active_val[i] = 1.0f;
  }
  double best_dense = 1e30, best_sparse = 1e30;
  for (int rep = 0; rep < 4; rep++) {
    const double t0 = lzn_now_seconds();
    lzn_status s = down_dense(ctx, 0, h, out, 1);
    if (s != LZN_OK) return s;
    const double t1 = lzn_now_seconds();
    lzn_sparse_down_run(ctx->kernels, out, (size_t)d, w->down_w_t, ctx->active_idx,
                        ctx->active_val, (size_t)f, ctx->params.n_threads);
    const double t2 = lzn_now_seconds();
    if (rep == 0) continue; /* warm-up: first touch and primitive creation */
    if (t1 - t0 < best_dense) best_dense = t1 - t0;
    if (t2 - t1 < best_sparse) best_sparse = t2 - t1;
  }
  const float x = (float)(best_dense / best_sparse);
  *crossover = x < 0.01f ? 0.01f : x > 1.0f ? 1.0f : x;
  return LZN_OK;
}
