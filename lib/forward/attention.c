/*
 * attention.c: causal multi-head attention over this call's tokens and
 * those in the KV cache, q scaled by head_dim^-0.5 after its bias (OPT).
 *
 * The cache is [n_layers][n_ctx][d_model]: one token's K (and V) for every
 * head in a row, written at its position; n_past in the context advances
 * only when a whole forward call succeeds.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "forward/forward.h"
#include "linalg/linear.h"

/* Softmax-weighted sum over positions 0..pos for one head of one token. */
static void attend_one(const lzn_context *ctx, const float *k_cache, const float *v_cache,
                       const float *q, float *out, int pos, float *scores) {
  const int d = ctx->model->d_model, hd = ctx->model->head_dim;
  float max_score = -INFINITY;
  for (int j = 0; j <= pos; j++) {
    const float *k = k_cache + (size_t)j * d;
    float s = 0.0f;
    for (int i = 0; i < hd; i++) s += q[i] * k[i];
    scores[j] = s;
    if (s > max_score) max_score = s;
  }
  double sum = 0.0;
  for (int j = 0; j <= pos; j++) {
    scores[j] = expf(scores[j] - max_score);
    sum += scores[j];
  }
  const float inv_sum = (float)(1.0 / sum);
  for (int i = 0; i < hd; i++) out[i] = 0.0f;
  for (int j = 0; j <= pos; j++) {
    const float p = scores[j] * inv_sum;
    const float *v = v_cache + (size_t)j * d;
    for (int i = 0; i < hd; i++) out[i] += p * v[i];
  }
}

lzn_status lzn_attention_forward(lzn_context *ctx, int layer, const float *x, int n, int p0) {
  const lzn_model *m = ctx->model;
  const lzn_layer *w = &m->layers[layer];
  lzn_exec *ex = &ctx->exec;
  const int d = m->d_model, hd = m->head_dim, heads = m->n_heads, threads = ex->n_threads;
  lzn_status s = lzn_linear(ex, ctx->q, x, &w->q, w->q_b, n);
  if (s == LZN_OK) s = lzn_linear(ex, ctx->k, x, &w->k, w->k_b, n);
  if (s == LZN_OK) s = lzn_linear(ex, ctx->v, x, &w->v, w->v_b, n);
  if (s != LZN_OK) return s;

  const float scale = 1.0f / sqrtf((float)hd);
  for (size_t i = 0; i < (size_t)n * d; i++) ctx->q[i] *= scale;
  float *k_cache = ctx->k_cache + (size_t)layer * ctx->n_ctx * d;
  float *v_cache = ctx->v_cache + (size_t)layer * ctx->n_ctx * d;
  memcpy(k_cache + (size_t)p0 * d, ctx->k, sizeof(float) * (size_t)n * d);
  memcpy(v_cache + (size_t)p0 * d, ctx->v, sizeof(float) * (size_t)n * d);

  const int pairs = n * heads;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && pairs > 1)
  for (int pair = 0; pair < pairs; pair++) {
    const int t = pair / heads, h = pair % heads;
    float *scores = ctx->scores + (size_t)omp_get_thread_num() * ctx->n_ctx;
    attend_one(ctx, k_cache + (size_t)h * hd, v_cache + (size_t)h * hd,
               ctx->q + (size_t)t * d + (size_t)h * hd, ctx->heads + (size_t)t * d + (size_t)h * hd,
               p0 + t, scores);
  }
  return lzn_linear(ex, ctx->attn, ctx->heads, &w->o, w->o_b, n);
}
