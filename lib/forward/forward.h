/*
 * forward.h: the forward pass, embed -> blocks -> head, one step (at most
 * LZN_MAX_BATCH rows) at a time. Private. Its steps, one file each:
 *
 *   forward.c    embed, the block of a layer, the head; lzn_forward
 *   batch.c      one step of many sequences: lzn_forward_batch
 *   norm.c       layer norm and RMS norm
 *   attention.c  attention with the KV cache            (attention.h)
 *   mlp.c        the MLP pipeline                        (mlp.h)
 *   activation.c the ReLU family as a table              (activation.h)
 *   select.c     thresholds, top-k, a batch's union      (select.h)
 *   predictor.c  the activation predictor                (predictor.h)
 *   cost.c       AUTO's cost model                       (cost.h)
 *   context.c    the context and its parts               (context.h)
 */
#ifndef LZN_FORWARD_H
#define LZN_FORWARD_H

#include "core/carve.h"
#include "forward/attention.h"
#include "model/model.h"

struct lzn_context;

/* The residual stream's part of a context's workspace, for max_batch rows. */
typedef struct lzn_stream_buffers {
  float *hidden;  /* [max_batch][d_model] the residual stream */
  float *normed;  /* [max_batch][d_model] a norm's output: a block's input */
  float *attn;    /* [max_batch][d_model] the attention block's output */
  float *mlp_out; /* [max_batch][d_model] the MLP block's output */
  float *embed;   /* [max_batch][max(d_embed, d_model)] embeddings before project_in, the head's after project_out */
} lzn_stream_buffers;

void lzn_stream_buffers_carve(lzn_stream_buffers *b, lzn_carver *c, const lzn_model *m, int max_batch);

/* norm.c: out = norm(x) for n rows of d (out may be x). */
void lzn_norm_rows(const lzn_arch_desc *arch, const lzn_norm *norm, float *out, const float *x, int n, int d);

/* One step of n rows (n <= max_batch) through every layer: embeddings of
 * tokens at their positions (target: the runs of rows of each sequence),
 * the blocks, then the logits of rows logit_rows[0 .. n_logit_rows)
 * (ascending) into logits, vocab floats each, one after the other. K and V
 * go past each cache's n_past, which the caller advances when its whole
 * call succeeded. Statuses: OK, NOMEM, BACKEND. */
lzn_status lzn_forward_step(struct lzn_context *ctx, const int32_t *tokens, int n,
                            const lzn_attn_target *target, const int *logit_rows, int n_logit_rows,
                            float *logits);

#endif /* LZN_FORWARD_H */
