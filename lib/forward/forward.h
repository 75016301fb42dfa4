/*
 * forward.h: the steps of the forward pass, one file each. Private.
 *
 *   forward.c    embed -> blocks -> head, batching, the public lzn_forward
 *   batch.c      one step of many sequences: lzn_forward_batch
 *   norm.c       layer norm
 *   attention.c  causal multi-head attention with the KV cache
 *   mlp.c        the ReLU MLP: up -> select -> sparse or dense down
 *   mlp_gated.c  the gated MLP: gate -> select -> active up rows -> active down rows
 *   select.c     each token's activation threshold (threshold, top-k)
 *   cost.c       AUTO: the measured cost model, sparse or dense per call
 *   predictor.c  the activation predictor: predicted sets, their up rows
 */
#ifndef LZN_FORWARD_H
#define LZN_FORWARD_H

#include "model/context.h"

/* forward.c. ctx->hidden = the embeddings of n tokens at positions p0 + t,
 * or positions[t] when not NULL. */
lzn_status lzn_embed(lzn_context *ctx, const int32_t *tokens, int n, int p0, const int *positions);
/* Logits of rows [first, n) of ctx->hidden (final norm, head) into out. */
lzn_status lzn_lm_head(lzn_context *ctx, int first, int n, float *out);
/* x[i] += y[i]. */
void lzn_add_in_place(float *x, const float *y, size_t n);

/* out = norm(x) for n rows of d (out may be x). */
void lzn_norm_rows(const lzn_arch_desc *arch, const lzn_norm *norm, float *out, const float *x,
                   int n, int d);

/* ctx->attn = out_proj(attention(x)) for n tokens at positions p0..; writes
 * their K and V into the cache at p0... */
lzn_status lzn_attention_forward(lzn_context *ctx, int layer, const float *x, int n, int p0);
/* The part of it between the projections: ctx->q, k, v hold n tokens'
 * projections; rotates, scales, stores K and V at p0.. and attends, into
 * ctx->heads. (lzn_forward_batch projects a whole batch at once and runs
 * this per sequence.) */
void lzn_attention_heads(lzn_context *ctx, int layer, int n, int p0);

/* out = the MLP block of one layer for n tokens of x. */
lzn_status lzn_mlp_forward(lzn_context *ctx, int layer, const float *x, float *out, int n);

/* The gated MLP of one layer (mlp_gated.c), called by lzn_mlp_forward. */
lzn_status lzn_mlp_gated_forward(lzn_context *ctx, int layer, const float *x, float *out, int n);

/* The activation threshold of one token's values h[0..d_ff): base, raised
 * with params.top_k until at most top_k values remain above it. */
float lzn_token_threshold(lzn_context *ctx, const float *h, float base);

/* The union of n tokens' active sets (values of h [n][d_ff] above each
 * token's ctx->token_threshold), ascending into ctx->union_idx; returns its
 * size. */
size_t lzn_union_of(lzn_context *ctx, const float *h, int n);

/* The dense down-projection of n tokens: out = h W_down^T + b. */
lzn_status lzn_mlp_down_dense(lzn_context *ctx, int layer, const float *h, float *out, int n);

/* Measures AUTO's cost model on the model's first layer (at context creation). */
lzn_status lzn_cost_measure(lzn_context *ctx);
/* The rows a sparse call would read, summed over its tokens. */
typedef struct lzn_sparse_work {
  size_t down_rows; /* of W_down^T (the active neurons) */
  size_t up_rows;   /* of W_up, W_gate (gathered: gated MLPs, predicted sets) */
} lzn_sparse_work;
/* Whether AUTO runs this call of n tokens sparse. */
int lzn_cost_prefers_sparse(const lzn_context *ctx, const lzn_sparse_work *work, int n);

/* predictor.c. Whether layer runs its predictor in this context. */
int lzn_predictor_in_use(const lzn_context *ctx, int layer);
/* Each of n tokens' predicted set into ctx->pred_idx / pred_n (x the MLP's
 * input rows, x_resid the residual rows before its norm); *total = the sum
 * of the sets' sizes. */
lzn_status lzn_predict_tokens(lzn_context *ctx, int layer, const float *x, const float *x_resid, int n,
                              size_t *total);
/* row[0..d_ff) = W[i] . x + bias[i] for i in token's predicted set, 0
 * elsewhere (x: that token's input row). */
lzn_status lzn_predicted_rows(lzn_context *ctx, const lzn_matrix *w, const float *bias, const float *x,
                              int token, float *row);
/* Zeroes, in each of n full rows [n][d_ff] computed densely, the entries
 * outside the token's predicted set: AUTO may compute a batch densely, but
 * the predictor's approximation is the model's in every path but DENSE, so
 * a token's result does not depend on which tokens share its call. */
void lzn_predictor_mask(lzn_context *ctx, float *rows, int n);
/* Counts the neurons of a predicted row above threshold (truly active). */
void lzn_predictor_count(lzn_context *ctx, int layer, const float *row, float threshold);
/* collect_recall: the dense row W x + bias, and how many of its active
 * neurons the token's predicted set holds. */
lzn_status lzn_predictor_recall(lzn_context *ctx, int layer, const lzn_matrix *w, const float *bias,
                                const float *x, int token, float threshold);

#endif /* LZN_FORWARD_H */
