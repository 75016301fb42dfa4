/*
 * batch.c: one decoding step of many sequences at once (lzn_forward_batch),
 * so that a server reads the weights once per step for all of its users
 * instead of once per user.
 *
 * Every sequence keeps its own KV cache and position; the step's rows run
 * in the first context's workspace ("the lead"), at most LZN_MAX_BATCH at a
 * time, through the same blocks as a prompt (forward.c): norms, projections
 * and the MLP on all rows together (the MLP sparse over the union of the
 * rows' active neurons, or dense as one GEMM), attention per sequence
 * against its own cache. n_past of every context advances only when the
 * whole step succeeded.
 */
#include "forward/context.h"

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
    if (ctxs[i]->kv.n_past >= ctxs[i]->kv.n_ctx)
      return lzn_fail(LZN_ERR_CONTEXT_FULL, "%s: ctxs[%d] is full: %d of n_ctx = %d are used", fn, i,
                      ctxs[i]->kv.n_past, ctxs[i]->kv.n_ctx);
  }
  return LZN_OK;
}

LZN_API lzn_status lzn_forward_batch(lzn_context *const *ctxs, const int32_t *tokens, int n,
                                     float *logits) {
  lzn_status s = check_batch(ctxs, tokens, n, logits);
  if (s != LZN_OK) return s;
  lzn_context *lead = ctxs[0];
  const int vocab = lead->model->vocab;
  lzn_kv_cache *caches[LZN_MAX_BATCH];
  for (int done = 0; s == LZN_OK && done < n;) {
    const int rows = n - done < lead->max_batch ? n - done : lead->max_batch;
    for (int i = 0; i < rows; i++) caches[i] = &ctxs[done + i]->kv;
    const lzn_attn_target target = {.caches = caches, .n_caches = rows, .p0 = caches[0]->n_past};
    s = lzn_forward_step(lead, tokens + done, rows, &target, 0, logits + (size_t)done * vocab);
    done += rows;
  }
  if (s == LZN_OK)
    for (int i = 0; i < n; i++) ctxs[i]->kv.n_past++;
  return s;
}
