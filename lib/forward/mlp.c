/*
 * mlp.c: the MLP block, one pipeline for OPT's ReLU MLP and the LLaMA
 * family's gated one (forward/mlp.h has the steps):
 *
 *   OPT     out = W_down act(W_up x + b_up) + b_down: the up-projection is
 *           the decider, its active values are the coefficients;
 *   gated   out = W_down (act(W_gate x) * (W_up x)): the gate decides, and
 *           only the active rows of W_up and W_down^T are read, so two of
 *           the three matrices scale with the density (the bound is
 *           3 / (1 + 2d)).
 *
 * The down-projection is
 *   SPARSE  one token: axpy_rows over its active rows of W_down^T; a batch:
 *           each row of its union read once (linalg/union.c), or each token
 *           over its own rows as one token would, whichever the cost model
 *           (forward/cost.c) says is cheaper: the union of 64 tokens at 10 %
 *           can be nearly every row;
 *   DENSE   one GEMV/GEMM over all rows, coefficients zero where inactive
 *           (so SPARSE == DENSE but for the order of the sums);
 *   AUTO    whichever the cost model (forward/cost.c) says is cheaper for
 *           this call: decided once, after the predictor when there is one
 *           (its sets size the call), else after selection.
 */
#include "forward/mlp.h"

#include <math.h>
#include <string.h>

#include "core/clock.h"
#include "forward/activation.h"
#include "forward/context.h"
#include "forward/select.h"
#include "linalg/linear.h"
#include "linalg/sparse_down.h"
#include "linalg/union.h"

void lzn_mlp_buffers_carve(lzn_mlp_buffers *b, lzn_carver *c, const lzn_model *m, int max_batch) {
  const size_t rows = (size_t)max_batch, f = (size_t)m->d_ff;
  const int gated = m->arch.mlp == LZN_MLP_KIND_GATED;
  b->decider = LZN_CARVE(c, rows * f, float);
  b->up = LZN_CARVE(c, gated ? rows * f : 1, float);
  b->coef = LZN_CARVE(c, rows * f, float);
  b->thresholds = LZN_CARVE(c, rows, float);
  b->magnitude = LZN_CARVE(c, f, float);
  b->top_k_scratch = LZN_CARVE(c, f, float);
  b->active_idx = LZN_CARVE(c, f, int32_t);
  b->active_val = LZN_CARVE(c, f, float);
  b->union_mask = LZN_CARVE(c, f, uint8_t);
  b->union_idx = LZN_CARVE(c, f, int32_t);
}

/* One call of the pipeline: what the plan decided, and where things are. */
typedef struct mlp_call {
  lzn_context *ctx;
  const lzn_model *m;
  const lzn_layer *weights; /* the layer's */
  const lzn_activation_rule *rule;
  lzn_mlp_buffers *b;
  int layer, n, f, gated;
  lzn_mlp_mode mode;    /* SPARSE or DENSE once decided; AUTO until then */
  int predicted;        /* the layer's predictor runs */
  lzn_prediction pred;
  const lzn_matrix *decider;
  const float *decider_bias;
  float base;           /* the threshold before top_k */
  size_t n_union;       /* a batch's union (n > 1) */
  size_t n_each;        /* a batch's sets' sizes, summed over its tokens (n > 1) */
  lzn_sparse_form form; /* a sparse batch: the union once, or each token's own rows */
  size_t n_selected;    /* one token's set (n == 1), in active_idx */
} mlp_call;

/* ------------------------------------------------------------------ plan */

static mlp_call plan(lzn_context *ctx, int layer, int n) {
  const lzn_model *m = ctx->model;
  const lzn_context_params *p = &ctx->params;
  mlp_call c = {.ctx = ctx, .m = m, .weights = &m->layers[layer], .b = &ctx->ws.mlp, .layer = layer, .n = n,
                .f = m->d_ff, .gated = m->arch.mlp == LZN_MLP_KIND_GATED};
  c.rule = lzn_activation_rule_of(m->arch.activation);
  c.mode = p->mlp_mode;
  /* SwiGLU without a threshold or top_k has no zeros to skip. */
  if (c.rule->dense_unless_thresholded && p->threshold == 0.0f && p->top_k == 0) c.mode = LZN_MLP_DENSE;
  c.base = c.rule->threshold_from_config && p->threshold == 0.0f ? m->arch.activation_threshold : p->threshold;
  c.decider = c.gated ? &c.weights->gate : &c.weights->up;
  c.decider_bias = c.gated ? NULL : c.weights->up_b;
  /* DENSE computes every row anyway: the predictor would only cost. */
  c.predicted = p->use_predictor && c.mode != LZN_MLP_DENSE && c.weights->predictor.present;
  const lzn_predictor *pr = &c.weights->predictor;
  c.pred = (lzn_prediction){.exec = &ctx->exec, .buf = &ctx->ws.predictor, .rec = &ctx->stats, .model = m,
                            .layer = layer,
                            .threshold = isnan(p->predictor_threshold) ? pr->threshold : p->predictor_threshold};
  return c;
}

/* AUTO's one decision for the call; each (NULL: not known yet) is the
 * work of each token's own rows, which a sparse batch may do instead of
 * the union's. */
static void choose(mlp_call *c, size_t down_rows, size_t up_rows, const lzn_sparse_work *each) {
  if (c->mode != LZN_MLP_AUTO) return;
  const lzn_sparse_work work = {.down_rows = down_rows, .up_rows = up_rows};
  c->mode = lzn_cost_prefers_sparse(&c->ctx->cost, c->ctx->params.auto_crossover, &work, each, c->n, c->f,
                                    c->gated)
                ? LZN_MLP_SPARSE
                : LZN_MLP_DENSE;
}

/* ---------------------------------------------------- predict, decide */

/* b->decider = the decider's rows for n tokens: dense; or with a predictor
 * only its predicted rows (zeros elsewhere: inactive for every rule), unless
 * the call goes dense or a batch gets them cheaper from the whole decider,
 * which then zeroes outside the sets. */
static lzn_status decide(mlp_call *c, const float *x, const float *x_resid) {
  lzn_exec *ex = &c->ctx->exec;
  float *rows = c->b->decider;
  const int d = c->m->d_model, f = c->f;
  if (!c->predicted) return lzn_linear(ex, rows, x, c->decider, c->decider_bias, c->n);
  size_t total;
  lzn_status s = lzn_predict(&c->pred, x, x_resid, c->n, &total);
  if (s != LZN_OK) return s;
  /* The decider's rows of the sets, then (gated) up rows of at most as
   * many, and down rows of at most as many: rows of each token's own set,
   * which the one-token kernels read (the union's size is not known yet;
   * costing the sum of the sets as union rows of n tokens each took a
   * tiny-opt batch of 16 dense, 12 % slower than sparse). */
  const lzn_sparse_work each = {.down_rows = total, .up_rows = c->gated ? 2 * total : total};
  /* A batch may get the sets' decider rows cheaper from the whole decider:
   * then AUTO decides the rest after selection, as without a predictor. */
  const int whole = c->n > 1 && c->mode == LZN_MLP_AUTO &&
                    (c->ctx->decider_whole >= 0 ? c->ctx->decider_whole
                                                : lzn_cost_decider_whole(&c->ctx->cost, total, c->n));
  if (!whole) choose(c, each.down_rows, each.up_rows, &each);
  if (c->mode == LZN_MLP_SPARSE) {
    for (int t = 0; s == LZN_OK && t < c->n; t++) {
      float *row = rows + (size_t)t * f;
      s = lzn_predicted_rows(&c->pred, c->decider, c->decider_bias, x + (size_t)t * d, t, row);
      if (s == LZN_OK) lzn_predictor_count(&c->pred, row, c->base);
      if (s == LZN_OK && c->ctx->params.collect_recall && c->ctx->params.collect_stats)
        s = lzn_predictor_recall(&c->pred, c->decider, c->decider_bias, x + (size_t)t * d, t, c->base);
    }
    return s;
  }
  s = lzn_linear(ex, rows, x, c->decider, c->decider_bias, c->n);
  if (s != LZN_OK) return s;
  /* Recall comes free here: the whole decider is at hand before the mask. */
  if (c->ctx->params.collect_recall && c->ctx->params.collect_stats)
    for (int t = 0; t < c->n; t++) lzn_predictor_recall_of(&c->pred, rows + (size_t)t * f, t, c->base);
  lzn_predictor_mask(&c->pred, rows, c->n);
  for (int t = 0; t < c->n; t++) lzn_predictor_count(&c->pred, rows + (size_t)t * f, c->base);
  return LZN_OK;
}

/* ---------------------------------------------------------------- select */

/* The values selection compares for token t: its decider row, or their
 * magnitudes (SiLU, whose rows hold silu(gate) by now). */
static const float *selection_values(mlp_call *c, int t) {
  const float *g = c->b->decider + (size_t)t * c->f;
  if (!c->rule->select_on_magnitude) return g;
  for (int i = 0; i < c->f; i++) c->b->magnitude[i] = fabsf(g[i]);
  return c->b->magnitude;
}

/* Each token's threshold; a batch's union of sets, or one token's set
 * (its values in active_val) when it will be needed (not DENSE). */
static void select_rows(mlp_call *c) {
  lzn_mlp_buffers *b = c->b;
  const lzn_context_params *p = &c->ctx->params;
  if (c->rule->transform) c->rule->transform(b->decider, (size_t)c->n * (size_t)c->f);
  if (c->n > 1) memset(b->union_mask, 0, (size_t)c->f);
  c->n_each = 0;
  for (int t = 0; t < c->n; t++) {
    const float *v = selection_values(c, t);
    b->thresholds[t] = lzn_select_threshold(v, c->f, c->base, p->top_k, b->top_k_scratch);
    if (c->n > 1) c->n_each += lzn_select_mark(v, c->f, b->thresholds[t], b->union_mask);
    else if (c->mode != LZN_MLP_DENSE)
      c->n_selected = c->ctx->exec.kernels->relu_compact.fn(v, (size_t)c->f, b->thresholds[0], b->active_idx,
                                                           b->active_val);
  }
  if (c->n > 1) c->n_union = lzn_select_collect(b->union_mask, c->f, b->union_idx);
  /* The up rows read are the decider's set (dReLU then drops some down
   * rows: the estimate errs towards sparse by those). */
  const size_t rows = c->n > 1 ? c->n_union : c->n_selected;
  const lzn_sparse_work uni = {.down_rows = rows, .up_rows = c->gated ? rows : 0};
  const lzn_sparse_work each = {.down_rows = c->n_each, .up_rows = c->gated ? c->n_each : 0};
  choose(c, uni.down_rows, uni.up_rows, c->n > 1 ? &each : NULL);
  c->form = c->n > 1 && c->mode == LZN_MLP_SPARSE ? lzn_cost_sparse_form(&c->ctx->cost, &uni, &each, c->n)
                                                  : LZN_SPARSE_UNION;
  if (c->ctx->sparse_form >= 0) c->form = (lzn_sparse_form)c->ctx->sparse_form;
}

/* The rule, in one place: a neuron is active when its selection value
 * (g, or |g| with magnitude) is above the token's threshold (NaN:
 * inactive) and, with up_positive (dReLU), its up value u > 0. Without
 * branches, so that the loops below vectorize. */
static inline int active_by(float g, float u, float threshold, int magnitude, int up_positive) {
  return ((magnitude ? fabsf(g) : g) > threshold) & (!up_positive | (u > 0.0f));
}

/* Whether neuron i of token t is active, by the rule above. */
static int is_active(const mlp_call *c, int t, float g, float u) {
  return active_by(g, u, c->b->thresholds[t], c->rule->select_on_magnitude, c->rule->up_must_be_positive);
}

/* Token t's coefficients over n rows, row k being neuron idx[k] (k when idx
 * is NULL): coef[k] = g * u where the neuron is active, else 0, with u[k]
 * its up value (gated) or 1 (u NULL); coef may be u, or g when idx is NULL.
 * Marks the fired neurons and returns how many were active. A batch
 * evaluates n x d_ff of these per layer (is_active one at a time cost 4 ns
 * an element, a third of a 16-token step of a d = 128 model), so the
 * rule's flags are read once, activity masks the product instead of
 * branching (it is data: the branch mispredicts; NaN is inactive, so no NaN
 * gets through), and the contiguous case is an `omp simd` loop. */
static inline float masked(float value, int active) {
  uint32_t bits;
  memcpy(&bits, &value, sizeof bits);
  bits &= 0u - (uint32_t)active;
  memcpy(&value, &bits, sizeof bits);
  return value;
}

static size_t coefficients(const mlp_call *c, int t, const float *g, const int32_t *idx, const float *u,
                           float *coef, uint8_t *fired, size_t n) {
  const float threshold = c->b->thresholds[t];
  const int magnitude = c->rule->select_on_magnitude, up_positive = c->rule->up_must_be_positive;
  size_t count = 0;
  if (idx) {
    for (size_t k = 0; k < n; k++) {
      const size_t i = (size_t)idx[k];
      const float gi = g[i], uk = u ? u[k] : 1.0f;
      const int active = active_by(gi, uk, threshold, magnitude, up_positive);
      coef[k] = masked(gi * uk, active);
      fired[i] |= (uint8_t)active;
      count += (size_t)active;
    }
  } else if (u) {
#pragma omp simd reduction(+ : count)
    for (size_t k = 0; k < n; k++) {
      const float gk = g[k], uk = u[k];
      const int active = active_by(gk, uk, threshold, magnitude, up_positive);
      coef[k] = masked(gk * uk, active);
      fired[k] |= (uint8_t)active;
      count += (size_t)active;
    }
  } else {
#pragma omp simd reduction(+ : count)
    for (size_t k = 0; k < n; k++) {
      const float gk = g[k];
      const int active = active_by(gk, 1.0f, threshold, magnitude, up_positive);
      coef[k] = masked(gk, active);
      fired[k] |= (uint8_t)active;
      count += (size_t)active;
    }
  }
  return count;
}

static void bias_rows(float *out, const float *bias, int n, int d) {
  for (int t = 0; t < n; t++) {
    if (bias) memcpy(out + (size_t)t * d, bias, sizeof(float) * (size_t)d);
    else memset(out + (size_t)t * d, 0, sizeof(float) * (size_t)d);
  }
}

/* ---------------------------------------------------------- up and down */

/* Token t's rows, as one token reads them: its n_selected rows in
 * active_idx (their selection values in active_val), the selected rows of
 * W_up (gated), its coefficients, then its active rows of W_down^T into
 * out (its row). *n_active: the rows of W_down^T read. */
static lzn_status token_rows(mlp_call *c, int t, size_t n_selected, const float *x, float *out, size_t *n_active) {
  lzn_mlp_buffers *b = c->b;
  int32_t *idx = b->active_idx;
  float *h = b->active_val;
  const float *g = b->decider + (size_t)t * c->f;
  size_t n = n_selected;
  if (c->gated) {
    float *u = b->up; /* compact: u[k] for row idx[k] */
    const lzn_status s = lzn_linear_rows(&c->ctx->exec, u, x, &c->weights->up, idx, n_selected);
    if (s != LZN_OK) return s;
    n = 0;
    for (size_t k = 0; k < n_selected; k++) {
      if (!is_active(c, t, g[idx[k]], u[k])) continue;
      idx[n] = idx[k], h[n] = g[idx[k]] * u[k];
      n++;
    }
  }
  uint8_t *fired = lzn_recorder_fired(&c->ctx->stats, c->layer);
  for (size_t k = 0; k < n; k++) fired[idx[k]] = 1;
  bias_rows(out, c->weights->down_b, 1, c->m->d_model);
  *n_active = n;
  return lzn_sparse_down_exec(&c->ctx->exec, out, &c->weights->down_t, idx, h, n);
}

/* One token, sparse. */
static lzn_status token_sparse(mlp_call *c, const float *x, float *out, lzn_mlp_record *r) {
  size_t n_active;
  const lzn_status s = token_rows(c, 0, c->n_selected, x, out, &n_active);
  const size_t up_rows = c->gated ? c->n_selected : 0;
  *r = (lzn_mlp_record){.n_tokens = 1, .sparse = 1, .active = n_active, .rows = c->n_selected,
                        .up_rows = up_rows, .down_rows = n_active, .up_products = up_rows,
                        .down_products = n_active};
  return s;
}

/* n tokens, sparse, each over its own rows: its set (relu_compact against
 * its threshold), then as one token. Rows shared by several tokens are read
 * once per token (from cache, often), which is what the union saves; the
 * cost model weighs that against the union's extra rows. */
static lzn_status tokens_each(mlp_call *c, const float *x, float *out, lzn_mlp_record *r) {
  lzn_mlp_buffers *b = c->b;
  const size_t d = (size_t)c->m->d_model;
  size_t selected_total = 0, active_total = 0;
  lzn_status s = LZN_OK;
  for (int t = 0; s == LZN_OK && t < c->n; t++) {
    const size_t n_selected = c->ctx->exec.kernels->relu_compact.fn(selection_values(c, t), (size_t)c->f,
                                                                     b->thresholds[t], b->active_idx, b->active_val);
    size_t n_active;
    s = token_rows(c, t, n_selected, x + (size_t)t * d, out + (size_t)t * d, &n_active);
    selected_total += n_selected, active_total += n_active;
  }
  const size_t up_rows = c->gated ? selected_total : 0;
  *r = (lzn_mlp_record){.n_tokens = c->n, .sparse = 1, .active = active_total, .rows = c->n_union,
                        .up_rows = up_rows, .down_rows = active_total, .up_products = up_rows,
                        .down_products = active_total};
  return s;
}

/* n tokens over their union: its up rows for all tokens at once (gated),
 * each token's coefficient on each union row (0 where not active), then the
 * union's down rows, each row of W_up and W_down^T read once. */
static lzn_status tokens_union(mlp_call *c, const float *x, float *out, lzn_mlp_record *r) {
  lzn_mlp_buffers *b = c->b;
  lzn_exec *ex = &c->ctx->exec;
  const int32_t *u_idx = b->union_idx;
  const size_t n_union = c->n_union;
  lzn_status s = LZN_OK;
  if (c->gated) s = lzn_union_dot(ex, b->up, c->n, &c->weights->up, u_idx, n_union, x); /* [n][n_union] */
  if (s != LZN_OK) return s;
  uint8_t *fired = lzn_recorder_fired(&c->ctx->stats, c->layer);
  size_t active_total = 0;
  for (int t = 0; t < c->n; t++)
    active_total += coefficients(c, t, b->decider + (size_t)t * c->f, u_idx,
                                 c->gated ? b->up + (size_t)t * n_union : NULL, b->coef + (size_t)t * n_union,
                                 fired, n_union);
  bias_rows(out, c->weights->down_b, c->n, c->m->d_model);
  s = lzn_union_axpy(ex, out, c->n, &c->weights->down_t, u_idx, n_union, b->coef);
  const size_t products = n_union * (size_t)c->n;
  *r = (lzn_mlp_record){.n_tokens = c->n, .sparse = 1, .active = active_total, .rows = n_union,
                        .up_rows = c->gated ? n_union : 0, .down_rows = n_union,
                        .up_products = c->gated ? products : 0, .down_products = products};
  return s;
}

/* n tokens, dense: all of W_up (gated), coefficients in place with the same
 * selection (zero elsewhere), all of W_down. */
static lzn_status tokens_dense(mlp_call *c, const float *x, float *out, lzn_mlp_record *r) {
  lzn_mlp_buffers *b = c->b;
  lzn_exec *ex = &c->ctx->exec;
  const int f = c->f;
  float *h = c->gated ? b->up : b->decider; /* the coefficients, in place */
  if (c->gated) {
    const lzn_status s = lzn_linear(ex, b->up, x, &c->weights->up, NULL, c->n);
    if (s != LZN_OK) return s;
  }
  uint8_t *fired = lzn_recorder_fired(&c->ctx->stats, c->layer);
  size_t active_total = 0;
  for (int t = 0; t < c->n; t++) {
    float *row = h + (size_t)t * f;
    active_total += coefficients(c, t, b->decider + (size_t)t * f, NULL, c->gated ? row : NULL, row, fired,
                                 (size_t)f);
  }
  const size_t products = (size_t)f * (size_t)c->n;
  *r = (lzn_mlp_record){.n_tokens = c->n, .sparse = 0, .active = active_total,
                        .rows = c->n > 1 ? c->n_union : active_total, .up_rows = c->gated ? (size_t)f : 0,
                        .down_rows = (size_t)f, .up_products = c->gated ? products : 0,
                        .down_products = products};
  return lzn_linear_down(ex, out, h, &c->weights->down, &c->weights->down_t, c->weights->down_b, c->n);
}

/* ----------------------------------------------------------------- block */

lzn_status lzn_mlp_block(lzn_context *ctx, int layer, const float *x, const float *x_resid, float *out, int n) {
  mlp_call c = plan(ctx, layer, n);
  const double t0 = lzn_now_seconds();
  lzn_status s = decide(&c, x, x_resid);
  if (s != LZN_OK) return s;
  const double t1 = lzn_now_seconds();
  select_rows(&c);
  lzn_mlp_record r;
  if (c.mode == LZN_MLP_SPARSE)
    s = n == 1 ? token_sparse(&c, x, out, &r)
               : c.form == LZN_SPARSE_EACH ? tokens_each(&c, x, out, &r) : tokens_union(&c, x, out, &r);
  else s = tokens_dense(&c, x, out, &r);
  if (s != LZN_OK) return s;
  r.seconds_decide = t1 - t0, r.seconds_rest = lzn_now_seconds() - t1;
  lzn_record_mlp(&ctx->stats, c.m, layer, &r);
  return LZN_OK;
}
