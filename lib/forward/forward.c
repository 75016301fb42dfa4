/*
 * forward.c: the decoder, as the model's architecture describes it:
 *
 *   x = embed(tokens) + positions
 *   per layer:  pre-norm   x = x + attn(norm1(x));  x = x + mlp(norm2(x))
 *               post-norm  x = norm1(x + attn(x));  x = norm2(x + mlp(x))
 *   logits = lm_head(final_norm(x))
 *
 * (OPT: Hugging Face's modeling_opt.py, with project_in / project_out where
 * word_embed_proj_dim differs from hidden_size.) One step is at most
 * max_batch rows: a chunk of one sequence's prompt, one token of each of
 * several sequences, or runs of several sequences' tokens (batch.c); the
 * block is the same, only attention's target differs. K and V of a step
 * are written past n_past, which advances only when the whole call
 * succeeds, so a failed call leaves the cache as it was.
 */
#include "forward/forward.h"

#include <string.h>

#include "forward/context.h"
#include "linalg/linear.h"

void lzn_stream_buffers_carve(lzn_stream_buffers *b, lzn_carver *c, const lzn_model *m, int max_batch) {
  const size_t rows = (size_t)max_batch, d = (size_t)m->d_model;
  const size_t embed = (size_t)(m->d_embed > m->d_model ? m->d_embed : m->d_model);
  b->hidden = LZN_CARVE(c, rows * d, float);
  b->normed = LZN_CARVE(c, rows * d, float);
  b->attn = LZN_CARVE(c, rows * d, float);
  b->mlp_out = LZN_CARVE(c, rows * d, float);
  b->embed = LZN_CARVE(c, rows * embed, float);
}

static void add_in_place(float *x, const float *y, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* hidden = the embeddings of the step's tokens at their positions. */
static lzn_status embed(lzn_context *ctx, const int32_t *tokens, int n, const lzn_attn_target *target) {
  const lzn_model *m = ctx->model;
  lzn_stream_buffers *b = &ctx->ws.stream;
  const int d = m->d_model, e = m->d_embed;
  const lzn_to_f32_fn to_f32 = ctx->exec.kernels->type[m->embed_tokens.type].to_f32.fn;
  float *dst = m->project_in.data ? b->embed : b->hidden;
  for (int t = 0; t < n; t++) to_f32(dst + (size_t)t * e, lzn_matrix_row(&m->embed_tokens, tokens[t]), (size_t)e);
  if (m->project_in.data) {
    const lzn_status s = lzn_linear(&ctx->exec, b->hidden, b->embed, &m->project_in, NULL, n);
    if (s != LZN_OK) return s;
  }
  if (m->arch.positions != LZN_POSITIONS_LEARNED) return LZN_OK; /* rotary: in attention */
  for (int i = 0; i < target->n_runs; i++) { /* each run's rows at its positions */
    const lzn_attn_run *run = &target->runs[i];
    for (int j = 0; j < run->n; j++) {
      const size_t position = (size_t)(run->p0 + j + m->arch.position_offset);
      add_in_place(b->hidden + (size_t)(run->row + j) * d, m->embed_positions + position * d, (size_t)d);
    }
  }
  return LZN_OK;
}

static lzn_status block(lzn_context *ctx, int layer, int n, const lzn_attn_target *target) {
  const lzn_model *m = ctx->model;
  const lzn_arch_desc *arch = &m->arch;
  const lzn_layer *weights = &m->layers[layer];
  lzn_stream_buffers *b = &ctx->ws.stream;
  const int d = m->d_model;
  const size_t size = (size_t)n * d;
  float *x = b->hidden;
  lzn_status s;
  if (arch->norm_before) {
    lzn_norm_rows(arch, &weights->attn_norm, b->normed, x, n, d);
    if ((s = lzn_attention_block(ctx, layer, b->normed, n, target, b->attn)) != LZN_OK) return s;
    add_in_place(x, b->attn, size);
    lzn_norm_rows(arch, &weights->mlp_norm, b->normed, x, n, d);
    if ((s = lzn_mlp_block(ctx, layer, b->normed, x, b->mlp_out, n)) != LZN_OK) return s;
    add_in_place(x, b->mlp_out, size);
  } else {
    if ((s = lzn_attention_block(ctx, layer, x, n, target, b->attn)) != LZN_OK) return s;
    add_in_place(x, b->attn, size);
    lzn_norm_rows(arch, &weights->attn_norm, x, x, n, d);
    if ((s = lzn_mlp_block(ctx, layer, x, x, b->mlp_out, n)) != LZN_OK) return s;
    add_in_place(x, b->mlp_out, size);
    lzn_norm_rows(arch, &weights->mlp_norm, x, x, n, d);
  }
  return LZN_OK;
}

/* Logits of the step's rows rows[0 .. n_rows) (ascending) into out, one
 * after the other. The hidden state is not needed after this: rows that
 * are not side by side are moved together at its front. */
static lzn_status head(lzn_context *ctx, const int *rows, int n_rows, float *out) {
  const lzn_model *m = ctx->model;
  lzn_stream_buffers *b = &ctx->ws.stream;
  const size_t d = (size_t)m->d_model;
  const float *x = b->hidden + (size_t)rows[0] * d;
  if (rows[n_rows - 1] - rows[0] != n_rows - 1) { /* row i moves up to i: rows[i] >= i, later ones above */
    for (int i = 0; i < n_rows; i++)
      if (rows[i] != i) memcpy(b->hidden + (size_t)i * d, b->hidden + (size_t)rows[i] * d, d * sizeof(float));
    x = b->hidden;
  }
  if (m->has_final_norm) {
    lzn_norm_rows(&m->arch, &m->final_norm, b->normed, x, n_rows, (int)d);
    x = b->normed;
  }
  if (m->project_out.data) {
    const lzn_status s = lzn_linear(&ctx->exec, b->embed, x, &m->project_out, NULL, n_rows);
    if (s != LZN_OK) return s;
    x = b->embed;
  }
  return lzn_linear(&ctx->exec, out, x, &m->lm_head, NULL, n_rows);
}

lzn_status lzn_forward_step(lzn_context *ctx, const int32_t *tokens, int n, const lzn_attn_target *target,
                            const int *logit_rows, int n_logit_rows, float *logits) {
  /* On the model's shared pool when no other call holds it (linalg/pool.h
   * says why); the lender is the one part of a model that calls change,
   * through atomics, hence the cast. */
  lzn_pool_lender *lender = (lzn_pool_lender *)&ctx->model->pools;
  lzn_pool *const own = ctx->exec.pool, *const shared = lzn_pool_borrow(lender, ctx->exec.n_threads);
  if (shared != NULL) ctx->exec.pool = shared;
  lzn_status s = embed(ctx, tokens, n, target);
  for (int l = 0; s == LZN_OK && l < ctx->model->n_layers; l++) s = block(ctx, l, n, target);
  if (s == LZN_OK && n_logit_rows > 0) s = head(ctx, logit_rows, n_logit_rows, logits);
  ctx->exec.pool = own;
  if (shared != NULL) lzn_pool_return(lender, shared);
  return s;
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
  if (n_tokens > ctx->kv.n_ctx - ctx->kv.n_past)
    return lzn_fail(LZN_ERR_CONTEXT_FULL, "%s: %d tokens do not fit: %d of n_ctx = %d are used",
                    fn, n_tokens, ctx->kv.n_past, ctx->kv.n_ctx);
  return LZN_OK;
}

LZN_API lzn_status lzn_forward(lzn_context *ctx, const int32_t *tokens, int n_tokens,
                               float *logits, lzn_logits_mode mode) {
  lzn_status s = check_forward_args(ctx, tokens, n_tokens, logits, mode);
  if (s != LZN_OK) return s;
  const int vocab = ctx->model->vocab;
  lzn_kv_cache *kv = &ctx->kv;
  int rows[LZN_MAX_BATCH]; /* 0, 1, ..: a step's rows whose logits are wanted start at one of them */
  for (int i = 0; i < ctx->max_batch; i++) rows[i] = i;
  for (int done = 0; s == LZN_OK && done < n_tokens;) {
    const int n = n_tokens - done < ctx->max_batch ? n_tokens - done : ctx->max_batch;
    const lzn_attn_run run = {.kv = kv, .row = 0, .n = n, .p0 = kv->n_past + done};
    const lzn_attn_target target = {.runs = &run, .n_runs = 1};
    if (mode == LZN_LOGITS_ALL)
      s = lzn_forward_step(ctx, tokens + done, n, &target, rows, n, logits + (size_t)done * vocab);
    else /* only the call's last row has logits */
      s = lzn_forward_step(ctx, tokens + done, n, &target, rows + n - 1, done + n == n_tokens, logits);
    done += n;
  }
  if (s == LZN_OK) kv->n_past += n_tokens;
  return s;
}
