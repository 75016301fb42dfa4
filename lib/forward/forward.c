/*
 * forward.c: the decoder, as the model's architecture describes it:
 *
 *   x = embed(tokens) + positions
 *   per layer:  pre-norm   x = x + attn(norm1(x));  x = x + mlp(norm2(x))
 *               post-norm  x = norm1(x + attn(x));  x = norm2(x + mlp(x))
 *   logits = lm_head(final_norm(x))
 *
 * (OPT: Hugging Face's modeling_opt.py, with project_in / project_out where
 * word_embed_proj_dim differs from hidden_size.) Tokens go through in
 * batches of at most ctx->max_batch (prefill). K and V of a batch are
 * written past n_past, which advances only when the whole call succeeds, so
 * a failed call leaves the cache as it was.
 */
#include <string.h>

#include "core/clock.h"
#include "forward/forward.h"
#include "linalg/linear.h"

void lzn_add_in_place(float *x, const float *y, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* ctx->hidden = embeddings of n tokens at positions p0.., or at
 * positions[t] when given (a batch of sequences). */
lzn_status lzn_embed(lzn_context *ctx, const int32_t *tokens, int n, int p0, const int *positions) {
  const lzn_model *m = ctx->model;
  const int d = m->d_model, e = m->d_embed;
  const lzn_to_f32_fn to_f32 = ctx->exec.kernels->type[m->embed_tokens.type].to_f32.fn;
  float *dst = m->project_in.data ? ctx->embed : ctx->hidden;
  for (int t = 0; t < n; t++)
    to_f32(dst + (size_t)t * e, lzn_matrix_row(&m->embed_tokens, tokens[t]), (size_t)e);
  if (m->project_in.data) {
    const lzn_status s = lzn_linear(&ctx->exec, ctx->hidden, ctx->embed, &m->project_in, NULL, n);
    if (s != LZN_OK) return s;
  }
  if (m->arch.positions != LZN_POSITIONS_LEARNED) return LZN_OK; /* rotary: in attention */
  for (int t = 0; t < n; t++) {
    const int row = (positions ? positions[t] : p0 + t) + m->arch.position_offset;
    lzn_add_in_place(ctx->hidden + (size_t)t * d, m->embed_positions + (size_t)row * d, (size_t)d);
  }
  return LZN_OK;
}

/* Attention, its wall time added to the layer's counters. */
static lzn_status timed_attention(lzn_context *ctx, int layer, const float *x, int n, int p0) {
  const double t0 = lzn_now_seconds();
  const lzn_status s = lzn_attention_forward(ctx, layer, x, n, p0);
  if (ctx->params.collect_stats) ctx->counters[layer].seconds_attention += lzn_now_seconds() - t0;
  return s;
}

static lzn_status block(lzn_context *ctx, int layer, int n, int p0) {
  const lzn_model *m = ctx->model;
  const lzn_arch_desc *arch = &m->arch;
  const lzn_layer *w = &m->layers[layer];
  const int d = m->d_model;
  const size_t size = (size_t)n * d;
  float *x = ctx->hidden;
  lzn_status s;
  if (arch->norm_before) {
    lzn_norm_rows(arch, &w->attn_norm, ctx->normed, x, n, d);
    if ((s = timed_attention(ctx, layer, ctx->normed, n, p0)) != LZN_OK) return s;
    lzn_add_in_place(x, ctx->attn, size);
    lzn_norm_rows(arch, &w->mlp_norm, ctx->normed, x, n, d);
    if ((s = lzn_mlp_forward(ctx, layer, ctx->normed, ctx->mlp_out, n)) != LZN_OK) return s;
    lzn_add_in_place(x, ctx->mlp_out, size);
  } else {
    if ((s = timed_attention(ctx, layer, x, n, p0)) != LZN_OK) return s;
    lzn_add_in_place(x, ctx->attn, size);
    lzn_norm_rows(arch, &w->attn_norm, x, x, n, d);
    if ((s = lzn_mlp_forward(ctx, layer, x, ctx->mlp_out, n)) != LZN_OK) return s;
    lzn_add_in_place(x, ctx->mlp_out, size);
    lzn_norm_rows(arch, &w->mlp_norm, x, x, n, d);
  }
  return LZN_OK;
}

/* Logits of rows [first, n) of the batch, written to out. */
lzn_status lzn_lm_head(lzn_context *ctx, int first, int n, float *out) {
  const lzn_model *m = ctx->model;
  const int d = m->d_model, rows = n - first;
  const float *x = ctx->hidden + (size_t)first * d;
  if (m->has_final_norm) {
    lzn_norm_rows(&m->arch, &m->final_norm, ctx->normed, x, rows, d);
    x = ctx->normed;
  }
  if (m->project_out.data) {
    const lzn_status s = lzn_linear(&ctx->exec, ctx->embed, x, &m->project_out, NULL, rows);
    if (s != LZN_OK) return s;
    x = ctx->embed;
  }
  return lzn_linear(&ctx->exec, out, x, &m->lm_head, NULL, rows);
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
    s = lzn_embed(ctx, tokens + done, n, p0, NULL);
    for (int l = 0; s == LZN_OK && l < m->n_layers; l++) s = block(ctx, l, n, p0);
    if (s == LZN_OK && mode == LZN_LOGITS_ALL)
      s = lzn_lm_head(ctx, 0, n, logits + (size_t)done * m->vocab);
    else if (s == LZN_OK && done + n == n_tokens)
      s = lzn_lm_head(ctx, n - 1, n, logits);
    done += n;
  }
  if (s == LZN_OK) ctx->n_past += n_tokens;
  return s;
}
