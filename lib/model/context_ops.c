/*
 * context_ops.c: what a server does to a sequence besides extending it:
 * rewind it (regenerate, reject speculative tokens), or start it from
 * another's prompt (prompt-prefix reuse).
 */
#include <string.h>

#include "model/context.h"

LZN_API lzn_status lzn_context_truncate(lzn_context *ctx, int n_keep) {
  if (ctx == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_context_truncate: ctx is NULL");
  if (n_keep < 0 || n_keep > ctx->n_past)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_context_truncate: n_keep = %d, must be in [0, n_past = %d]",
                    n_keep, ctx->n_past);
  /* Positions >= n_keep are never read before they are written again. */
  ctx->n_past = n_keep;
  return LZN_OK;
}

LZN_API lzn_status lzn_context_copy_prefix(lzn_context *dst, const lzn_context *src, int n_tokens) {
  const char *fn = "lzn_context_copy_prefix";
  if (dst == NULL || src == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: dst or src is NULL", fn);
  if (dst == src) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: dst and src are the same context", fn);
  if (dst->model != src->model)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: dst and src belong to different models", fn);
  if (dst->kv_type != src->kv_type)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: dst and src keep their KV caches in different types", fn);
  if (n_tokens < 0 || n_tokens > src->n_past)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: n_tokens = %d, must be in [0, src n_past = %d]", fn,
                    n_tokens, src->n_past);
  if (n_tokens > dst->n_ctx)
    return lzn_fail(LZN_ERR_CONTEXT_FULL, "%s: %d tokens do not fit dst's n_ctx = %d", fn, n_tokens,
                    dst->n_ctx);
  /* Each (layer, KV head) keeps its positions contiguous: one copy of
   * n_tokens rows per head, in K and in V. */
  const lzn_model *m = src->model;
  const size_t bytes = (size_t)n_tokens * src->kv_row_bytes;
  for (int l = 0; l < m->n_layers; l++)
    for (int h = 0; h < m->n_kv_heads; h++) {
      memcpy(kv_cache_row(dst, dst->k_cache, l, h, 0), kv_cache_row(src, src->k_cache, l, h, 0), bytes);
      memcpy(kv_cache_row(dst, dst->v_cache, l, h, 0), kv_cache_row(src, src->v_cache, l, h, 0), bytes);
    }
  dst->n_past = n_tokens;
  return LZN_OK;
}
