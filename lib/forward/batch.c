/*
 * batch.c: one decoding step of many sequences at once (lzn_forward_batch),
 * so that a server reads the weights once per step for all of its users
 * instead of once per user.
 *
 * Every sequence keeps its own context (KV cache, position); the step's
 * rows live in the first context's scratch ("the lead"), at most its
 * max_batch at a time. Per layer: the norms and the MLP run on all rows
 * together (the MLP sparse over the union of the rows' active neurons, or
 * dense as one GEMM: linalg/union.c, forward/cost.c), attention runs per
 * sequence against its own cache, and the LM head is one GEMM. n_past of
 * every context advances only when the whole step succeeded.
 */
#include <string.h>

#include "core/clock.h"
#include "forward/forward.h"
#include "linalg/linear.h"

static lzn_status check_batch(lzn_context *const *ctxs, const int32_t *tokens, int n,
                              const float *logits) {
  const char *fn = "lzn_forward_batch";
  if (ctxs == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: ctxs is NULL", fn);
  if (tokens == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: tokens is NULL", fn);
  if (logits == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: logits is NULL", fn);
  if (n <= 0) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: n = %d, must be > 0", fn, n);
  for (int i = 0; i < n; i++) {
    if (ctxs[i] == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: ctxs[%d] is NULL", fn, i);
    if (ctxs[i]->model != ctxs[0]->model)
      return lzn_fail(LZN_ERR_INVALID_ARG, "%s: ctxs[%d] belongs to another model than ctxs[0]", fn, i);
    for (int j = 0; j < i; j++)
      if (ctxs[j] == ctxs[i])
        return lzn_fail(LZN_ERR_INVALID_ARG, "%s: ctxs[%d] and ctxs[%d] are the same context", fn, j, i);
    if (tokens[i] < 0 || tokens[i] >= ctxs[i]->model->vocab)
      return lzn_fail(LZN_ERR_INVALID_ARG, "%s: tokens[%d] = %d, outside the vocabulary [0, %d)", fn, i,
                      tokens[i], ctxs[i]->model->vocab);
    if (ctxs[i]->n_past >= ctxs[i]->n_ctx)
      return lzn_fail(LZN_ERR_CONTEXT_FULL, "%s: ctxs[%d] is full: %d of n_ctx = %d are used", fn, i,
                      ctxs[i]->n_past, ctxs[i]->n_ctx);
  }
  return LZN_OK;
}

/* Attention of the lead's n rows x, each in its own sequence: q, k, v and
 * the output projection for all rows at once (each weight read once), the
 * heads per sequence against its own cache. Into the lead's attn rows. */
static lzn_status attention_rows(lzn_context *lead, lzn_context *const *ctxs, int layer, const float *x,
                                 int n) {
  const lzn_model *m = lead->model;
  const lzn_layer *w = &m->layers[layer];
  const size_t q_dim = (size_t)m->n_heads * m->head_dim, kv_dim = (size_t)m->n_kv_heads * m->head_dim;
  lzn_exec *ex = &lead->exec;
  const double t0 = lzn_now_seconds();
  lzn_status s = lzn_linear(ex, lead->q, x, &w->q, w->q_b, n);
  if (s == LZN_OK) s = lzn_linear(ex, lead->k, x, &w->k, w->k_b, n);
  if (s == LZN_OK) s = lzn_linear(ex, lead->v, x, &w->v, w->v_b, n);
  if (s != LZN_OK) return s;
  /* Row 0 of every other sequence's scratch, the lead's own row 0 kept:
   * go from the last row down so the lead's rows are read before row 0 of
   * its scratch is written. */
  for (int i = n - 1; i >= 0; i--) {
    lzn_context *c = ctxs[i];
    if (i > 0) {
      memcpy(c->q, lead->q + (size_t)i * q_dim, sizeof(float) * q_dim);
      memcpy(c->k, lead->k + (size_t)i * kv_dim, sizeof(float) * kv_dim);
      memcpy(c->v, lead->v + (size_t)i * kv_dim, sizeof(float) * kv_dim);
    }
    lzn_attention_heads(c, layer, 1, c->n_past);
    if (i > 0) memcpy(lead->heads + (size_t)i * q_dim, c->heads, sizeof(float) * q_dim);
  }
  s = lzn_linear(ex, lead->attn, lead->heads, &w->o, w->o_b, n);
  if (lead->params.collect_stats) lead->counters[layer].seconds_attention += lzn_now_seconds() - t0;
  return s;
}

static lzn_status batch_block(lzn_context *lead, lzn_context *const *ctxs, int layer, int n) {
  const lzn_model *m = lead->model;
  const lzn_arch_desc *arch = &m->arch;
  const lzn_layer *w = &m->layers[layer];
  const int d = m->d_model;
  const size_t size = (size_t)n * d;
  float *x = lead->hidden;
  lzn_status s;
  if (arch->norm_before) {
    lzn_norm_rows(arch, &w->attn_norm, lead->normed, x, n, d);
    if ((s = attention_rows(lead, ctxs, layer, lead->normed, n)) != LZN_OK) return s;
    lzn_add_in_place(x, lead->attn, size);
    lzn_norm_rows(arch, &w->mlp_norm, lead->normed, x, n, d);
    if ((s = lzn_mlp_forward(lead, layer, lead->normed, lead->mlp_out, n)) != LZN_OK) return s;
    lzn_add_in_place(x, lead->mlp_out, size);
  } else {
    if ((s = attention_rows(lead, ctxs, layer, x, n)) != LZN_OK) return s;
    lzn_add_in_place(x, lead->attn, size);
    lzn_norm_rows(arch, &w->attn_norm, x, x, n, d);
    if ((s = lzn_mlp_forward(lead, layer, x, lead->mlp_out, n)) != LZN_OK) return s;
    lzn_add_in_place(x, lead->mlp_out, size);
    lzn_norm_rows(arch, &w->mlp_norm, x, x, n, d);
  }
  return LZN_OK;
}

LZN_API lzn_status lzn_forward_batch(lzn_context *const *ctxs, const int32_t *tokens, int n,
                                     float *logits) {
  lzn_status s = check_batch(ctxs, tokens, n, logits);
  if (s != LZN_OK) return s;
  lzn_context *lead = ctxs[0];
  const lzn_model *m = lead->model;
  int positions[64];
  for (int done = 0; s == LZN_OK && done < n;) {
    int rows = n - done < lead->max_batch ? n - done : lead->max_batch;
    if (rows > (int)(sizeof positions / sizeof positions[0])) rows = (int)(sizeof positions / sizeof positions[0]);
    for (int i = 0; i < rows; i++) positions[i] = ctxs[done + i]->n_past;
    s = lzn_embed(lead, tokens + done, rows, 0, positions);
    for (int l = 0; s == LZN_OK && l < m->n_layers; l++) s = batch_block(lead, ctxs + done, l, rows);
    if (s == LZN_OK) s = lzn_lm_head(lead, 0, rows, logits + (size_t)done * m->vocab);
    done += rows;
  }
  if (s == LZN_OK)
    for (int i = 0; i < n; i++) ctxs[i]->n_past++;
  return s;
}
