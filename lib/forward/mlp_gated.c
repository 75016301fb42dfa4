/*
 * mlp_gated.c: the gated MLP of the LLaMA family,
 *   out = W_down (act(W_gate x) * (W_up x)),
 * where the gate decides which neurons run: computed first (dense, in the
 * model's type), it gives the active set, and then only the active rows of
 * W_up (gathered dot products) and of W_down^T (axpy_rows) are read: two of
 * the three matrices scale with the density, so the bound is 3 / (1 + 2d).
 *
 * Activations (arch->activation):
 *   relu     act(g) = g where g > t (t = params.threshold, 0 by default);
 *   fatrelu  the same with t = the config's threshold unless the caller set
 *            params.threshold (ProSparse, MiniCPM-S);
 *   drelu    relu(g) * relu(u): a neuron is active where g > t and then
 *            where u > 0, so the set shrinks again after the up rows
 *            (TurboSparse, Bamboo);
 *   silu     SwiGLU: every neuron is active, so it runs dense, unless the
 *            caller sets a threshold (or top_k): then |silu(g)| <= t counts
 *            as zero (the CATS / TEAL idea, an approximation the stats show).
 * top_k applies on top of the threshold, as for OPT.
 */
#include <math.h>
#include <string.h>

#include "core/clock.h"
#include "forward/forward.h"
#include "linalg/linear.h"
#include "linalg/sparse_down.h"
#include "linalg/union.h"

static float silu(float g) { return g / (1.0f + expf(-g)); }

/* The threshold the activation selects against, before top_k. */
static float base_threshold(const lzn_context *ctx) {
  const lzn_arch_desc *a = &ctx->model->arch;
  if (a->activation == LZN_ACT_FATRELU && ctx->params.threshold == 0.0f) return a->activation_threshold;
  return ctx->params.threshold;
}

/* SwiGLU without a threshold or top_k has no zeros to skip. */
static int runs_dense_only(const lzn_context *ctx) {
  return ctx->model->arch.activation == LZN_ACT_SILU && ctx->params.threshold == 0.0f &&
         ctx->params.top_k == 0;
}

/* The values selection compares for one token's activated gate row g: g
 * itself for the ReLU family (act(g) = g where active), |g| for SiLU (whose
 * rows already hold silu(gate)). */
static const float *selection_values(lzn_context *ctx, const float *g) {
  if (ctx->model->arch.activation != LZN_ACT_SILU) return g;
  const int f = ctx->model->d_ff;
  for (int i = 0; i < f; i++) ctx->act_abs[i] = fabsf(g[i]);
  return ctx->act_abs;
}

static void count_token(lzn_context *ctx, int layer, const int32_t *idx, size_t n_active,
                        size_t up_rows) {
  if (!ctx->params.collect_stats) return;
  lzn_layer_counters *c = &ctx->counters[layer];
  const lzn_layer *w = &ctx->model->layers[layer];
  const double d = ctx->model->d_model;
  c->tokens++;
  c->active_sum += (int64_t)n_active;
  c->union_sum += (int64_t)up_rows; /* a one-token call: the gate's set */
  for (size_t t = 0; t < n_active; t++) c->fired[idx[t]] = 1;
  c->flops_executed += 2.0 * d * (double)(up_rows + n_active);
  c->bytes_executed += (double)w->up.row_bytes * (double)up_rows +
                       (double)w->down_t.row_bytes * (double)n_active;
}

/* One token, sparse: the selected rows of W_up, h = act(g) * u on them,
 * then the active rows of W_down^T. */
static lzn_status token_sparse(lzn_context *ctx, int layer, const float *x, const float *g, float threshold,
                               float *out) {
  const lzn_model *m = ctx->model;
  const lzn_layer *w = &m->layers[layer];
  const float *sel = selection_values(ctx, g);
  int32_t *idx = ctx->active_idx;
  float *h = ctx->active_val, *u = ctx->up;
  size_t n = ctx->exec.kernels->relu_compact.fn(sel, (size_t)m->d_ff, threshold, idx, h);
  if (m->arch.activation == LZN_ACT_SILU)
    for (size_t k = 0; k < n; k++) h[k] = g[idx[k]]; /* the signed silu(gate), not its magnitude */
  const size_t up_rows = n;
  lzn_status s = lzn_linear_rows(&ctx->exec, u, x, &w->up, idx, n);
  if (s != LZN_OK) return s;
  size_t kept = 0;
  for (size_t k = 0; k < n; k++) {
    if (m->arch.activation == LZN_ACT_DRELU && !(u[k] > 0.0f)) continue;
    idx[kept] = idx[k], h[kept] = h[k] * u[k];
    kept++;
  }
  n = kept;
  count_token(ctx, layer, idx, n, up_rows);
  memset(out, 0, sizeof(float) * (size_t)m->d_model);
  lzn_sparse_down_run(ctx->exec.kernels, out, &w->down_t, idx, h, n, ctx->exec.n_threads);
  return LZN_OK;
}

/* n tokens over the union of their gates' sets (ctx->union_idx, n_union
 * rows): the union's up rows for all tokens at once (union.c), h = act(g) *
 * u where each token has the neuron active (dReLU: and u > 0), then the
 * union's down rows, each row of W_up and W_down^T read once. */
static lzn_status tokens_union(lzn_context *ctx, int layer, const float *x, const float *threshold,
                               float *out, int n, size_t n_union) {
  const lzn_model *m = ctx->model;
  const lzn_layer *w = &m->layers[layer];
  const int f = m->d_ff;
  const int32_t *u_idx = ctx->union_idx;
  float *u = ctx->up; /* [n][n_union] */
  lzn_status s = lzn_union_dot(&ctx->exec, u, n, &w->up, u_idx, n_union, x);
  if (s != LZN_OK) return s;
  size_t active_total = 0;
  for (int t = 0; t < n; t++) {
    const float *g = ctx->gate + (size_t)t * f;
    const float *sel = selection_values(ctx, g);
    const float *ut = u + (size_t)t * n_union;
    float *coef = ctx->union_coef + (size_t)t * n_union;
    for (size_t j = 0; j < n_union; j++) {
      int active = sel[u_idx[j]] > threshold[t];
      if (m->arch.activation == LZN_ACT_DRELU) active = active && ut[j] > 0.0f;
      coef[j] = active ? g[u_idx[j]] * ut[j] : 0.0f;
      active_total += (size_t)active;
    }
  }
  memset(out, 0, sizeof(float) * (size_t)n * (size_t)m->d_model);
  s = lzn_union_axpy(&ctx->exec, out, n, &w->down_t, u_idx, n_union, ctx->union_coef);
  if (ctx->params.collect_stats) {
    lzn_layer_counters *c = &ctx->counters[layer];
    c->tokens += n;
    c->active_sum += (int64_t)active_total;
    c->union_sum += (int64_t)n_union;
    /* fired: active in some token (dReLU can drop a gate-selected neuron
     * for every token: then it did not fire). */
    for (int t = 0; t < n; t++)
      for (size_t j = 0; j < n_union; j++) c->fired[u_idx[j]] |= ctx->union_coef[(size_t)t * n_union + j] != 0.0f;
    c->flops_executed += 2.0 * 2.0 * m->d_model * (double)n_union * n;
    c->bytes_executed += ((double)w->up.row_bytes + (double)w->down_t.row_bytes) * (double)n_union;
  }
  return s;
}

/* n tokens, dense: all of W_up, h = act(g) * u with the same selection
 * (zero elsewhere, so SPARSE == DENSE but for the order of the sums), all
 * of W_down. */
static lzn_status tokens_dense(lzn_context *ctx, int layer, const float *x, const float *threshold,
                               float *out, int n, size_t n_union) {
  const lzn_model *m = ctx->model;
  const lzn_layer *w = &m->layers[layer];
  const int f = m->d_ff;
  lzn_status s = lzn_linear(&ctx->exec, ctx->up, x, &w->up, NULL, n);
  if (s != LZN_OK) return s;
  lzn_layer_counters *c = &ctx->counters[layer];
  size_t active_total = 0;
  for (int t = 0; t < n; t++) {
    const float *g = ctx->gate + (size_t)t * f;
    float *u = ctx->up + (size_t)t * f;
    const float *sel = selection_values(ctx, g);
    for (int i = 0; i < f; i++) {
      int active = sel[i] > threshold[t]; /* NaN is inactive, as in relu_compact */
      if (m->arch.activation == LZN_ACT_DRELU) active = active && u[i] > 0.0f;
      u[i] = active ? g[i] * u[i] : 0.0f;
      active_total += (size_t)active;
      c->fired[i] |= (uint8_t)active;
    }
  }
  if (ctx->params.collect_stats) {
    c->tokens += n;
    c->active_sum += (int64_t)active_total;
    c->union_sum += (int64_t)(n > 1 ? n_union : active_total);
    c->flops_executed += 2.0 * 2.0 * m->d_model * (double)f * n;
    c->bytes_executed += ((double)w->up.row_bytes + (double)w->down_t.row_bytes) * f;
    c->dense_calls++;
  }
  return lzn_mlp_down_dense(ctx, layer, ctx->up, out, n);
}

/* ctx->gate = W_gate x for n tokens: dense, or with a predictor only its
 * predicted rows (zeros elsewhere: inactive for every activation) unless
 * AUTO finds the predicted sets too large. */
static lzn_status gate_projection(lzn_context *ctx, int layer, const float *x, int n) {
  const lzn_model *m = ctx->model;
  const lzn_layer *w = &m->layers[layer];
  const int d = m->d_model, f = m->d_ff;
  if (lzn_predictor_in_use(ctx, layer) && !runs_dense_only(ctx)) {
    size_t total;
    lzn_status s = lzn_predict_tokens(ctx, layer, x, ctx->hidden, n, &total);
    if (s != LZN_OK) return s;
    /* Gate rows of the sets, then up and down rows of (at most) as many. */
    const lzn_sparse_work work = {.down_rows = total, .up_rows = 2 * total};
    const lzn_mlp_mode mode = ctx->params.mlp_mode;
    if (mode == LZN_MLP_SPARSE || (mode == LZN_MLP_AUTO && lzn_cost_prefers_sparse(ctx, &work, n))) {
      for (int t = 0; s == LZN_OK && t < n; t++) {
        float *row = ctx->gate + (size_t)t * f;
        s = lzn_predicted_rows(ctx, &w->gate, NULL, x + (size_t)t * d, t, row);
        if (s == LZN_OK) lzn_predictor_count(ctx, layer, row, base_threshold(ctx));
        if (s == LZN_OK)
          s = lzn_predictor_recall(ctx, layer, &w->gate, NULL, x + (size_t)t * d, t, base_threshold(ctx));
      }
      return s;
    }
    s = lzn_linear(&ctx->exec, ctx->gate, x, &w->gate, NULL, n);
    if (s == LZN_OK) lzn_predictor_mask(ctx, ctx->gate, n);
    for (int t = 0; s == LZN_OK && t < n; t++)
      lzn_predictor_count(ctx, layer, ctx->gate + (size_t)t * f, base_threshold(ctx));
    return s;
  }
  return lzn_linear(&ctx->exec, ctx->gate, x, &w->gate, NULL, n);
}

lzn_status lzn_mlp_gated_forward(lzn_context *ctx, int layer, const float *x, float *out, int n) {
  const lzn_model *m = ctx->model;
  const int f = m->d_ff;
  const double t0 = lzn_now_seconds();
  lzn_status s = gate_projection(ctx, layer, x, n);
  if (s != LZN_OK) return s;
  const double t1 = lzn_now_seconds();
  float *threshold = ctx->token_threshold;
  const float base = base_threshold(ctx);
  lzn_mlp_mode mode = runs_dense_only(ctx) ? LZN_MLP_DENSE : ctx->params.mlp_mode;
  if (m->arch.activation == LZN_ACT_SILU)
    for (size_t i = 0; i < (size_t)n * f; i++) ctx->gate[i] = silu(ctx->gate[i]);
  size_t active_total = 0;
  if (n > 1) memset(ctx->union_mask, 0, (size_t)f);
  for (int t = 0; t < n; t++) {
    const float *sel = selection_values(ctx, ctx->gate + (size_t)t * f);
    threshold[t] = lzn_token_threshold(ctx, sel, base);
    if (n > 1) /* a batch reads the union of its tokens' rows once */
      for (int i = 0; i < f; i++) ctx->union_mask[i] |= (uint8_t)(sel[i] > threshold[t]);
    else if (mode == LZN_MLP_AUTO)
      active_total += ctx->exec.kernels->relu_compact.fn(sel, (size_t)f, threshold[t], ctx->active_idx,
                                                      ctx->active_val);
  }
  size_t n_union = 0;
  for (int i = 0; n > 1 && i < f; i++)
    if (ctx->union_mask[i]) ctx->union_idx[n_union++] = i;
  /* The up rows read are the gate's set (dReLU then drops some down rows:
   * the estimate errs towards sparse by those). */
  const size_t rows = n > 1 ? n_union : active_total;
  const lzn_sparse_work work = {.down_rows = rows, .up_rows = rows};
  if (mode == LZN_MLP_SPARSE || (mode == LZN_MLP_AUTO && lzn_cost_prefers_sparse(ctx, &work, n))) {
    if (n > 1) s = tokens_union(ctx, layer, x, threshold, out, n, n_union);
    else s = token_sparse(ctx, layer, x, ctx->gate, threshold[0], out);
    if (ctx->params.collect_stats) ctx->counters[layer].sparse_calls++;
  } else {
    s = tokens_dense(ctx, layer, x, threshold, out, n, n_union);
  }
  if (ctx->params.collect_stats) {
    ctx->counters[layer].seconds_up += t1 - t0;
    ctx->counters[layer].seconds_down += lzn_now_seconds() - t1;
  }
  return s;
}
