/*
 * batch.c: steps of many sequences at once, so that a server reads the
 * weights once per step for all of its users instead of once per user:
 * lzn_forward_batch (one token each) and lzn_forward_ragged (each its own
 * number of tokens: a prompt's chunk beside the tokens others decode).
 *
 * Every sequence keeps its own KV cache and position; a step's rows run in
 * the first context's workspace ("the lead"), at most max_batch rows at a
 * time, through the same blocks as a prompt (forward.c): norms, projections
 * and the MLP on all rows together (the MLP sparse over the union of the
 * rows' active neurons, or dense as one GEMM), attention per sequence (one
 * run of rows each) against its own cache. Calls longer than max_batch rows
 * go in several steps, a sequence's tokens split between two steps where
 * they must be. n_past of every context advances only when the whole call
 * succeeded.
 */
#include "forward/context.h"

/* counts NULL: one token per context (lzn_forward_batch). */
static lzn_status check_batch(const char *fn, lzn_context *const *ctxs, const int32_t *tokens,
                              const int *counts, int n, const float *logits) {
  if (ctxs == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: ctxs is NULL", fn);
  if (tokens == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: tokens is NULL", fn);
  if (logits == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: logits is NULL", fn);
  if (n <= 0) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: n = %d, must be > 0", fn, n);
  size_t at = 0; /* where ctxs[i]'s tokens start */
  for (int i = 0; i < n; i++) {
    if (ctxs[i] == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: ctxs[%d] is NULL", fn, i);
    if (ctxs[i]->model != ctxs[0]->model)
      return lzn_fail(LZN_ERR_INVALID_ARG, "%s: ctxs[%d] belongs to another model than ctxs[0]", fn, i);
    for (int j = 0; j < i; j++)
      if (ctxs[j] == ctxs[i])
        return lzn_fail(LZN_ERR_INVALID_ARG, "%s: ctxs[%d] and ctxs[%d] are the same context", fn, j, i);
    const lzn_kv_cache *kv = &ctxs[i]->kv;
    const int count = counts ? counts[i] : 1, vocab = ctxs[i]->model->vocab;
    if (count <= 0) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: n_tokens[%d] = %d, must be > 0", fn, i, count);
    for (int t = 0; t < count; t++, at++)
      if (tokens[at] < 0 || tokens[at] >= vocab)
        return lzn_fail(LZN_ERR_INVALID_ARG, "%s: tokens[%zu] = %d (of ctxs[%d]), outside the vocabulary [0, %d)",
                        fn, at, tokens[at], i, vocab);
    if (count > kv->n_ctx - kv->n_past)
      return lzn_fail(LZN_ERR_CONTEXT_FULL, "%s: ctxs[%d] is full: %d tokens do not fit, %d of n_ctx = %d are used",
                      fn, i, count, kv->n_past, kv->n_ctx);
  }
  return LZN_OK;
}

/* The calls' common body, once checked: steps of at most the lead's
 * max_batch rows, each holding the next rows of the sequences in order,
 * and each sequence's logits from the step that holds its last token. */
static lzn_status forward_runs(lzn_context *const *ctxs, const int32_t *tokens, const int *counts, int n,
                               float *logits) {
  lzn_context *lead = ctxs[0];
  const size_t vocab = (size_t)lead->model->vocab;
  lzn_attn_run runs[LZN_MAX_BATCH];
  int logit_rows[LZN_MAX_BATCH];
  lzn_status s = LZN_OK;
  int seq = 0, done = 0;   /* the next row: token `done` of sequence `seq` */
  size_t next_token = 0;   /* its index in tokens */
  while (s == LZN_OK && seq < n) {
    const int first_seq = seq; /* where the step's logits go: a sequence ending
                                  in it is first_seq or a later one, and when
                                  first_seq goes on into the next step, the
                                  step has no other sequence and no logits */
    int rows = 0, n_runs = 0, n_logits = 0;
    const size_t step_tokens = next_token;
    while (seq < n && rows < lead->max_batch) {
      const int count = counts ? counts[seq] : 1;
      const int take = count - done < lead->max_batch - rows ? count - done : lead->max_batch - rows;
      lzn_kv_cache *kv = &ctxs[seq]->kv;
      runs[n_runs++] = (lzn_attn_run){.kv = kv, .row = rows, .n = take, .p0 = kv->n_past + done};
      rows += take, done += take, next_token += (size_t)take;
      if (done < count) break; /* the rest in the next step */
      logit_rows[n_logits++] = rows - 1;
      seq++, done = 0;
    }
    const lzn_attn_target target = {.runs = runs, .n_runs = n_runs};
    s = lzn_forward_step(lead, tokens + step_tokens, rows, &target, logit_rows, n_logits,
                         logits + (size_t)first_seq * vocab);
  }
  if (s == LZN_OK)
    for (int i = 0; i < n; i++) ctxs[i]->kv.n_past += counts ? counts[i] : 1;
  return s;
}

LZN_API lzn_status lzn_forward_batch(lzn_context *const *ctxs, const int32_t *tokens, int n,
                                     float *logits) {
  const lzn_status s = check_batch("lzn_forward_batch", ctxs, tokens, NULL, n, logits);
  return s != LZN_OK ? s : forward_runs(ctxs, tokens, NULL, n, logits);
}

LZN_API lzn_status lzn_forward_ragged(lzn_context *const *ctxs, const int32_t *tokens, const int *n_tokens,
                                      int n, float *logits) {
  if (n_tokens == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_forward_ragged: n_tokens is NULL");
  const lzn_status s = check_batch("lzn_forward_ragged", ctxs, tokens, n_tokens, n, logits);
  return s != LZN_OK ? s : forward_runs(ctxs, tokens, n_tokens, n, logits);
}
