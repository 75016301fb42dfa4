/*
 * attention.c: causal multi-head attention over this call's tokens and
 * those in the KV cache, with grouped-query attention (n_kv_heads KV heads,
 * each shared by n_heads / n_kv_heads query heads) and, for rotary models,
 * rotate-half RoPE on q and k as Hugging Face applies it. q is scaled by
 * head_dim^-0.5 after its bias (and rotation).
 *
 * The cache is [n_layers][n_ctx][n_kv_heads * head_dim]: one token's K (and
 * V) for every KV head in a row, written at its position; n_past in the
 * context advances only when a whole forward call succeeds.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "forward/forward.h"
#include "linalg/linear.h"

/* Softmax-weighted sum over positions 0..pos for one head of one token;
 * k_cache / v_cache point at the head's first entry, rows kv_dim apart. */
static void attend_one(int hd, int kv_dim, const float *k_cache, const float *v_cache,
                       const float *q, float *out, int pos, float *scores) {
  float max_score = -INFINITY;
  for (int j = 0; j <= pos; j++) {
    const float *k = k_cache + (size_t)j * kv_dim;
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
    const float *v = v_cache + (size_t)j * kv_dim;
    for (int i = 0; i < hd; i++) out[i] += p * v[i];
  }
}

/* Rotates each of n_heads heads of n rows (stride dim) at positions p0..:
 * (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) on the halves, with the
 * angles of the context's table. */
static void rotate(const lzn_context *ctx, float *x, int n, int dim, int n_heads, int p0) {
  const int hd = ctx->model->head_dim, half = hd / 2;
  for (int t = 0; t < n; t++) {
    const float *c = ctx->rope_cos + (size_t)(p0 + t) * half;
    const float *s = ctx->rope_sin + (size_t)(p0 + t) * half;
    for (int h = 0; h < n_heads; h++) {
      float *v = x + (size_t)t * dim + (size_t)h * hd;
      for (int i = 0; i < half; i++) {
        const float x1 = v[i], x2 = v[i + half];
        v[i] = x1 * c[i] - x2 * s[i];
        v[i + half] = x2 * c[i] + x1 * s[i];
      }
    }
  }
}

lzn_status lzn_attention_forward(lzn_context *ctx, int layer, const float *x, int n, int p0) {
  const lzn_model *m = ctx->model;
  const lzn_layer *w = &m->layers[layer];
  lzn_exec *ex = &ctx->exec;
  const int hd = m->head_dim, heads = m->n_heads, threads = ex->n_threads;
  const int q_dim = heads * hd, kv_dim = m->n_kv_heads * hd, group = heads / m->n_kv_heads;
  lzn_status s = lzn_linear(ex, ctx->q, x, &w->q, w->q_b, n);
  if (s == LZN_OK) s = lzn_linear(ex, ctx->k, x, &w->k, w->k_b, n);
  if (s == LZN_OK) s = lzn_linear(ex, ctx->v, x, &w->v, w->v_b, n);
  if (s != LZN_OK) return s;
  if (m->arch.positions == LZN_POSITIONS_ROPE) {
    rotate(ctx, ctx->q, n, q_dim, heads, p0);
    rotate(ctx, ctx->k, n, kv_dim, m->n_kv_heads, p0);
  }

  const float scale = 1.0f / sqrtf((float)hd);
  for (size_t i = 0; i < (size_t)n * q_dim; i++) ctx->q[i] *= scale;
  float *k_cache = ctx->k_cache + (size_t)layer * ctx->n_ctx * kv_dim;
  float *v_cache = ctx->v_cache + (size_t)layer * ctx->n_ctx * kv_dim;
  memcpy(k_cache + (size_t)p0 * kv_dim, ctx->k, sizeof(float) * (size_t)n * kv_dim);
  memcpy(v_cache + (size_t)p0 * kv_dim, ctx->v, sizeof(float) * (size_t)n * kv_dim);

  const int pairs = n * heads;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && pairs > 1)
  for (int pair = 0; pair < pairs; pair++) {
    const int t = pair / heads, h = pair % heads, kv = h / group;
    float *scores = ctx->scores + (size_t)omp_get_thread_num() * ctx->n_ctx;
    attend_one(hd, kv_dim, k_cache + (size_t)kv * hd, v_cache + (size_t)kv * hd,
               ctx->q + (size_t)t * q_dim + (size_t)h * hd,
               ctx->heads + (size_t)t * q_dim + (size_t)h * hd, p0 + t, scores);
  }
  return lzn_linear(ex, ctx->attn, ctx->heads, &w->o, w->o_b, n);
}
