/*
 * forward.c: the OPT decoder, as Hugging Face's modeling_opt.py defines it.
 *
 *   x = embed_tokens[ids] (-> project_in) + embed_positions[pos + 2]
 *   per layer, pre-LN (do_layer_norm_before):
 *     x = x + attn(LN1(x));  x = x + mlp(LN2(x))
 *   per layer, post-LN:
 *     x = LN1(x + attn(x));  x = LN2(x + mlp(x))
 *   final LN (pre-LN only) -> project_out -> logits = x * embed_tokens^T
 *
 * attn is causal multi-head attention with q scaled by head_dim^-0.5 after
 * its bias, over this call's tokens and those in the KV cache. Linear layers
 * go through lzn_linear (linear.c): a GEMV kernel for one token, oneDNN for
 * a batch. Tokens go
 * through in batches of at most ctx->max_batch (prefill); K and V of a batch
 * are written past n_past, which advances only when the whole call succeeds,
 * so a failed call leaves the cache as it was.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "model.h"

#define LZN_LAYER_NORM_EPS 1e-5

/* out = LN(x) row by row; weight/bias NULL when not elementwise-affine.
 * Statistics in double: rows are short, and it keeps us close to PyTorch. */
static void layer_norm(float *out, const float *x, const float *weight, const float *bias, int n,
                       int d) {
  for (int t = 0; t < n; t++) {
    const float *row = x + (size_t)t * d;
    float *dst = out + (size_t)t * d;
    double mean = 0.0, var = 0.0;
    for (int j = 0; j < d; j++) mean += row[j];
    mean /= d;
    for (int j = 0; j < d; j++) var += (row[j] - mean) * (row[j] - mean);
    const double inv = 1.0 / sqrt(var / d + LZN_LAYER_NORM_EPS);
    for (int j = 0; j < d; j++) {
      const float v = (float)((row[j] - mean) * inv);
      dst[j] = weight ? v * weight[j] + bias[j] : v;
    }
  }
}

static void add_in_place(float *x, const float *y, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* Softmax-weighted sum for token t (absolute position pos) and head h. */
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

/* ctx->attn = out_proj(attention(x)) for n tokens starting at position p0. */
static lzn_status attention(lzn_context *ctx, int layer, const float *x, int n, int p0) {
  const lzn_model *m = ctx->model;
  const lzn_layer *w = &m->layers[layer];
  const int d = m->d_model, hd = m->head_dim, heads = m->n_heads, threads = ctx->params.n_threads;
  lzn_status s = lzn_linear(ctx, ctx->q, x, w->q_w, w->q_b, n, d, d);
  if (s == LZN_OK) s = lzn_linear(ctx, ctx->k, x, w->k_w, w->k_b, n, d, d);
  if (s == LZN_OK) s = lzn_linear(ctx, ctx->v, x, w->v_w, w->v_b, n, d, d);
  if (s != LZN_OK) return s;

  const float scale = 1.0f / sqrtf((float)hd);
  for (size_t i = 0; i < (size_t)n * d; i++) ctx->q[i] *= scale;
  float *k_cache = ctx->k_cache + (size_t)layer * ctx->n_ctx * d;
  float *v_cache = ctx->v_cache + (size_t)layer * ctx->n_ctx * d;
  memcpy(k_cache + (size_t)p0 * d, ctx->k, sizeof(float) * (size_t)n * d);
  memcpy(v_cache + (size_t)p0 * d, ctx->v, sizeof(float) * (size_t)n * d);

  float *merged = ctx->normed; /* free until the output projection reads it */
  const int pairs = n * heads;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && pairs > 1)
  for (int pair = 0; pair < pairs; pair++) {
    const int t = pair / heads, h = pair % heads;
    float *scores = ctx->scores + (size_t)omp_get_thread_num() * ctx->n_ctx;
    attend_one(ctx, k_cache + (size_t)h * hd, v_cache + (size_t)h * hd,
               ctx->q + (size_t)t * d + (size_t)h * hd, merged + (size_t)t * d + (size_t)h * hd,
               p0 + t, scores);
  }
  return lzn_linear(ctx, ctx->attn, merged, w->o_w, w->o_b, n, d, d);
}

/* attention(), its wall time added to the layer's counters. */
static lzn_status timed_attention(lzn_context *ctx, int layer, const float *x, int n, int p0) {
  const double t0 = lzn_now_seconds();
  const lzn_status s = attention(ctx, layer, x, n, p0);
  if (ctx->params.collect_stats) ctx->counters[layer].seconds_attention += lzn_now_seconds() - t0;
  return s;
}

static lzn_status decoder_layer(lzn_context *ctx, int layer, int n, int p0) {
  const lzn_model *m = ctx->model;
  const lzn_layer *w = &m->layers[layer];
  const int d = m->d_model;
  const size_t size = (size_t)n * d;
  float *x = ctx->hidden;
  lzn_status s;
  if (m->config.do_layer_norm_before) {
    layer_norm(ctx->normed, x, w->attn_norm_w, w->attn_norm_b, n, d);
    /* attention reads normed before reusing it as scratch. */
    if ((s = timed_attention(ctx, layer, ctx->normed, n, p0)) != LZN_OK) return s;
    add_in_place(x, ctx->attn, size);
    layer_norm(ctx->normed, x, w->mlp_norm_w, w->mlp_norm_b, n, d);
    if ((s = lzn_mlp_forward(ctx, layer, ctx->normed, ctx->mlp_out, n)) != LZN_OK) return s;
    add_in_place(x, ctx->mlp_out, size);
  } else {
    if ((s = timed_attention(ctx, layer, x, n, p0)) != LZN_OK) return s;
    add_in_place(x, ctx->attn, size);
    layer_norm(x, x, w->attn_norm_w, w->attn_norm_b, n, d);
    if ((s = lzn_mlp_forward(ctx, layer, x, ctx->mlp_out, n)) != LZN_OK) return s;
    add_in_place(x, ctx->mlp_out, size);
    layer_norm(x, x, w->mlp_norm_w, w->mlp_norm_b, n, d);
  }
  return LZN_OK;
}

/* hidden = embeddings of n tokens at positions p0.. */
static lzn_status embed(lzn_context *ctx, const int32_t *tokens, int n, int p0) {
  const lzn_model *m = ctx->model;
  const int d = m->d_model, e = m->d_embed;
  float *dst = m->project_in ? ctx->embed : ctx->hidden;
  for (int t = 0; t < n; t++)
    memcpy(dst + (size_t)t * e, m->embed_tokens + (size_t)tokens[t] * e, sizeof(float) * (size_t)e);
  if (m->project_in) {
    lzn_status s = lzn_linear(ctx, ctx->hidden, ctx->embed, m->project_in, NULL, n, d, e);
    if (s != LZN_OK) return s;
  }
  /* OPT's learned positions start at row 2 (a fairseq legacy). */
  for (int t = 0; t < n; t++)
    add_in_place(ctx->hidden + (size_t)t * d, m->embed_positions + (size_t)(p0 + t + 2) * d,
                 (size_t)d);
  return LZN_OK;
}

/* logits of rows [first, n) of the batch, written to out. */
static lzn_status lm_head(lzn_context *ctx, int first, int n, float *out) {
  const lzn_model *m = ctx->model;
  const int d = m->d_model, e = m->d_embed, rows = n - first;
  float *x = ctx->hidden + (size_t)first * d;
  if (m->has_final_norm) {
    layer_norm(ctx->normed, x, m->final_norm_w, m->final_norm_b, rows, d);
    x = ctx->normed;
  }
  if (m->project_out) {
    lzn_status s = lzn_linear(ctx, ctx->embed, x, m->project_out, NULL, rows, e, d);
    if (s != LZN_OK) return s;
    x = ctx->embed;
  }
  return lzn_linear(ctx, out, x, m->lm_head, NULL, rows, m->vocab, e);
}

static lzn_status check_forward_args(const lzn_context *ctx, const int32_t *tokens, int n_tokens,
                                     const float *logits, lzn_logits_mode mode) {
  const char *fn = "lzn_forward";
  if (ctx == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: ctx is NULL", fn);
  if (tokens == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: tokens is NULL", fn);
  if (logits == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: logits is NULL", fn);
  if (n_tokens <= 0)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: n_tokens = %d, must be > 0", fn, n_tokens);
  if (mode != LZN_LOGITS_LAST && mode != LZN_LOGITS_ALL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: mode = %d is not an lzn_logits_mode", fn, (int)mode);
  for (int t = 0; t < n_tokens; t++)
    if (tokens[t] < 0 || tokens[t] >= ctx->model->vocab)
      return lzn_fail(LZN_ERR_INVALID_ARG, "%s: tokens[%d] = %d, outside the vocabulary [0, %d)",
                      fn, t, tokens[t], ctx->model->vocab);
  if (n_tokens > ctx->n_ctx - ctx->n_past)
    return lzn_fail(LZN_ERR_CONTEXT_FULL, "%s: %d tokens do not fit: %d of n_ctx = %d are used",
                    fn, n_tokens, ctx->n_past, ctx->n_ctx);
  return LZN_OK;
}

LZN_API lzn_status lzn_forward(lzn_context *ctx, const int32_t *tokens, int n_tokens,
                               float *logits, lzn_logits_mode mode) {
  lzn_status s = check_forward_args(ctx, tokens, n_tokens, logits, mode);
  if (s != LZN_OK) return s;
  const lzn_model *m = ctx->model;
  int done = 0;
  while (s == LZN_OK && done < n_tokens) {
    const int left = n_tokens - done;
    const int n = left < ctx->max_batch ? left : ctx->max_batch;
    const int p0 = ctx->n_past + done;
    s = embed(ctx, tokens + done, n, p0);
    for (int l = 0; s == LZN_OK && l < m->n_layers; l++) s = decoder_layer(ctx, l, n, p0);
    if (s == LZN_OK && mode == LZN_LOGITS_ALL)
      s = lm_head(ctx, 0, n, logits + (size_t)done * m->vocab);
    else if (s == LZN_OK && done + n == n_tokens)
      s = lm_head(ctx, n - 1, n, logits);
    done += n;
  }
  if (s == LZN_OK) ctx->n_past += n_tokens;
  return s;
}
