/*
 * predictor.c: the activation predictor at run time (lazyneuron.h,
 * "predictor"): each token's predicted set, and the up-projection computed
 * on those rows only.
 *
 * The predicted rows are written into a full-length row with zeros
 * elsewhere, so everything after it (the threshold, top_k, relu_compact,
 * the sparse down-projection, the gated activations) is the code the model
 * runs without a predictor: a zero is inactive for every activation here.
 */
#include <math.h>
#include <string.h>

#include "forward/forward.h"
#include "linalg/linear.h"

/* DENSE mode computes every row anyway: the predictor would only cost. */
int lzn_predictor_in_use(const lzn_context *ctx, int layer) {
  return ctx->params.use_predictor && ctx->params.mlp_mode != LZN_MLP_DENSE &&
         ctx->model->layers[layer].predictor.present;
}

lzn_status lzn_predict_tokens(lzn_context *ctx, int layer, const float *x, const float *x_resid, int n,
                              size_t *total) {
  const lzn_model *m = ctx->model;
  const lzn_predictor *p = &m->layers[layer].predictor;
  const int d = m->d_model, f = m->d_ff;
  const float t = isnan(ctx->params.predictor_threshold) ? p->threshold : ctx->params.predictor_threshold;
  lzn_predictor_counters *c = &ctx->pred_counters[layer];
  *total = 0;
  for (int k = 0; k < n; k++) {
    const float *in = (p->input_before_norm ? x_resid : x) + (size_t)k * d;
    lzn_status s = lzn_linear(&ctx->exec, ctx->pred_hidden, in, &p->w1, p->b1, 1);
    if (s != LZN_OK) return s;
    if (p->relu)
      for (int64_t i = 0; i < p->w1.rows; i++) ctx->pred_hidden[i] = fmaxf(ctx->pred_hidden[i], 0.0f);
    s = lzn_linear(&ctx->exec, ctx->pred_score, ctx->pred_hidden, &p->w2, p->b2, 1);
    if (s != LZN_OK) return s;
    int32_t *idx = ctx->pred_idx + (size_t)k * f;
    size_t count = 0;
    for (int i = 0; i < f; i++)
      if (ctx->pred_score[i] >= t) idx[count++] = i; /* NaN never: the loader refused it */
    ctx->pred_n[k] = count;
    *total += count;
    if (ctx->params.collect_stats) {
      c->tokens++;
      c->predicted_sum += (int64_t)count;
      c->flops += 2.0 * ((double)p->w1.rows * d + (double)f * (double)p->w1.rows);
      c->bytes += (double)p->w1.rows * (double)p->w1.row_bytes + (double)f * (double)p->w2.row_bytes;
    }
  }
  return LZN_OK;
}

lzn_status lzn_predicted_rows(lzn_context *ctx, const lzn_matrix *w, const float *bias, const float *x,
                              int token, float *row) {
  const int f = ctx->model->d_ff;
  const int32_t *idx = ctx->pred_idx + (size_t)token * f;
  const size_t n = ctx->pred_n[token];
  float *values = ctx->pred_score; /* free again: the scores became idx */
  const lzn_status s = lzn_linear_rows(&ctx->exec, values, x, w, idx, n);
  if (s != LZN_OK) return s;
  memset(row, 0, sizeof(float) * (size_t)f);
  for (size_t k = 0; k < n; k++) row[idx[k]] = values[k] + (bias ? bias[idx[k]] : 0.0f);
  return LZN_OK;
}

void lzn_predictor_mask(lzn_context *ctx, float *rows, int n) {
  const int f = ctx->model->d_ff;
  float *kept = ctx->pred_score; /* free again: the scores became idx */
  for (int t = 0; t < n; t++) {
    float *row = rows + (size_t)t * f;
    const int32_t *idx = ctx->pred_idx + (size_t)t * f;
    const size_t count = ctx->pred_n[t];
    for (size_t k = 0; k < count; k++) kept[k] = row[idx[k]];
    memset(row, 0, sizeof(float) * (size_t)f);
    for (size_t k = 0; k < count; k++) row[idx[k]] = kept[k];
  }
}

void lzn_predictor_count(lzn_context *ctx, int layer, const float *row, float threshold) {
  if (!ctx->params.collect_stats) return;
  const int f = ctx->model->d_ff;
  lzn_predictor_counters *c = &ctx->pred_counters[layer];
  for (int i = 0; i < f; i++) c->active_sum += row[i] > threshold;
}

lzn_status lzn_predictor_recall(lzn_context *ctx, int layer, const lzn_matrix *w, const float *bias,
                                const float *x, int token, float threshold) {
  if (!ctx->params.collect_recall || !ctx->params.collect_stats) return LZN_OK;
  const int f = ctx->model->d_ff;
  const lzn_status s = lzn_linear(&ctx->exec, ctx->pred_dense, x, w, bias, 1);
  if (s != LZN_OK) return s;
  lzn_predictor_counters *c = &ctx->pred_counters[layer];
  const int32_t *idx = ctx->pred_idx + (size_t)token * f;
  const size_t n = ctx->pred_n[token];
  int64_t truly = 0, hits = 0;
  for (int i = 0; i < f; i++) truly += ctx->pred_dense[i] > threshold;
  for (size_t k = 0; k < n; k++) hits += ctx->pred_dense[idx[k]] > threshold;
  c->recall_true += truly, c->recall_hits += hits, c->recall_tokens++;
  return LZN_OK;
}
