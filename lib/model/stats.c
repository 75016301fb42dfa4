/*
 * stats.c: the per-layer statistics a context collects, as the public
 * lzn_layer_stats.
 */
#include <math.h>
#include <string.h>

#include "model/context.h"

LZN_API lzn_status lzn_context_stats(const lzn_context *ctx, lzn_layer_stats *out, int capacity) {
  if (ctx == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_context_stats: ctx is NULL");
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_context_stats: out is NULL");
  if (capacity < 1)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_context_stats: capacity = %d, must be >= 1", capacity);
  const lzn_model *m = ctx->model;
  /* The matrices the active set applies to: W_down, and for a gated MLP
   * W_up too (the gate, like OPT's fc1, always runs dense: it decides). */
  const int gated = m->arch.mlp == LZN_MLP_KIND_GATED;
  const double per_token_flops = 2.0 * m->d_model * m->d_ff * (gated ? 2 : 1);
  for (int l = 0; l < m->n_layers && l < capacity; l++) {
    const lzn_layer_counters *c = &ctx->counters[l];
    lzn_layer_stats *s = &out[l];
    memset(s, 0, sizeof *s);
    s->tokens = c->tokens;
    s->active_fraction = c->tokens ? (double)c->active_sum / ((double)c->tokens * m->d_ff) : 0.0;
    for (int i = 0; i < m->d_ff; i++) s->never_fired += !c->fired[i];
    s->flops_dense = per_token_flops * (double)c->tokens;
    const double row_bytes = (double)m->layers[l].down_t.row_bytes + (gated ? (double)m->layers[l].up.row_bytes : 0.0);
    s->bytes_dense = (double)(c->sparse_calls + c->dense_calls) * row_bytes * m->d_ff;
    s->flops_executed = c->flops_executed;
    s->bytes_executed = c->bytes_executed;
    s->seconds_attention = c->seconds_attention;
    s->seconds_up = c->seconds_up;
    s->seconds_down = c->seconds_down;
    s->sparse_calls = c->sparse_calls;
    s->dense_calls = c->dense_calls;
    const int64_t calls = c->sparse_calls + c->dense_calls;
    s->union_fraction = calls ? (double)c->union_sum / ((double)calls * m->d_ff) : 0.0;
    s->bytes_per_token_sparse = (double)c->active_sum * row_bytes;
  }
  return LZN_OK;
}

LZN_API lzn_status lzn_context_predictor_stats(const lzn_context *ctx, lzn_predictor_stats *out,
                                               int capacity) {
  const char *fn = "lzn_context_predictor_stats";
  if (ctx == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: ctx is NULL", fn);
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: out is NULL", fn);
  if (capacity < 1) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: capacity = %d, must be >= 1", fn, capacity);
  const lzn_model *m = ctx->model;
  for (int l = 0; l < m->n_layers && l < capacity; l++) {
    const lzn_predictor_counters *c = &ctx->pred_counters[l];
    lzn_predictor_stats *s = &out[l];
    memset(s, 0, sizeof *s);
    const double per_token = c->tokens ? 1.0 / ((double)c->tokens * m->d_ff) : 0.0;
    s->tokens = c->tokens;
    s->predicted_fraction = (double)c->predicted_sum * per_token;
    s->active_fraction = (double)c->active_sum * per_token;
    s->recall = c->recall_tokens ? (c->recall_true ? (double)c->recall_hits / (double)c->recall_true : 1.0) : NAN;
    s->precision = c->recall_tokens && c->predicted_sum ? (double)c->recall_hits / (double)c->predicted_sum : NAN;
    s->flops = c->flops, s->bytes = c->bytes;
  }
  return LZN_OK;
}
