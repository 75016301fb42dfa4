/*
 * context_ops.c: what a server does to a sequence besides extending it:
 * rewind it (regenerate, reject speculative tokens).
 */
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
