/*
 * mlp.h: the MLP block, one pipeline for every architecture. Private.
 *
 *   plan      the call's mode once: SPARSE, DENSE, or AUTO (forward/cost.c)
 *   predict   optional: each token's predicted set (forward/predictor.c)
 *   decide    the decider's rows: OPT's fc1 (+ bias) or a gated MLP's gate,
 *             dense, or only the predicted rows
 *   select    the activation rule (forward/activation.c), each token's
 *             threshold (top-k), its active set, a batch's union
 *             (forward/select.c)
 *   up        gated MLPs: the rows of W_up the selection needs
 *   down      the active rows of W_down^T, or the dense down-projection
 *   record    the statistics, one call (model/stats.c)
 *
 * OPT is the ungated case: its decider's values are the coefficients.
 */
#ifndef LZN_FORWARD_MLP_H
#define LZN_FORWARD_MLP_H

#include "core/carve.h"
#include "model/model.h"

struct lzn_context;

/* The pipeline's part of a context's workspace, for max_batch rows. */
typedef struct lzn_mlp_buffers {
  float *decider;        /* [max_batch][d_ff] the decider's rows */
  float *up;             /* [max_batch][d_ff] gated: W_up's rows (all, a token's set, or the union's) */
  float *coef;           /* [max_batch][d_ff] a batch's coefficients on its union rows */
  float *thresholds;     /* [max_batch] each token's threshold */
  float *magnitude;      /* [d_ff] |g| of a token, for rules that select on magnitude */
  float *top_k_scratch;  /* [d_ff] candidates of the top-k selection */
  int32_t *active_idx;   /* [d_ff] one token's active set */
  float *active_val;     /* [d_ff] its coefficients */
  uint8_t *union_mask;   /* [d_ff] */
  int32_t *union_idx;    /* [d_ff] a batch's union, ascending */
} lzn_mlp_buffers;

void lzn_mlp_buffers_carve(lzn_mlp_buffers *b, lzn_carver *c, const lzn_model *m, int max_batch);

/* out = the MLP block of a layer for the n rows of x (the MLP's input,
 * d_model each); x_resid is the residual stream before the MLP's norm (a
 * PowerInfer predictor reads it). Statuses: OK, NOMEM, BACKEND. */
lzn_status lzn_mlp_block(struct lzn_context *ctx, int layer, const float *x, const float *x_resid,
                         float *out, int n);

#endif /* LZN_FORWARD_MLP_H */
