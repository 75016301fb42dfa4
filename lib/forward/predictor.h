/*
 * predictor.h: the activation predictor at run time (lazyneuron.h,
 * "predictor"): each token's predicted set, the decider's rows computed on
 * it only, and what the statistics count of it. Private.
 *
 * The predicted rows are written into a full-length row with zeros
 * elsewhere, so everything after it (the threshold, top_k, selection, the
 * activations) is the code the model runs without a predictor: a zero is
 * inactive for every activation here.
 */
#ifndef LZN_FORWARD_PREDICTOR_H
#define LZN_FORWARD_PREDICTOR_H

#include "core/carve.h"
#include "core/matrix.h"
#include "linalg/exec.h"
#include "model/stats.h"

/* The predictor's part of a context's workspace (one row of each when the
 * model has none). */
typedef struct lzn_predictor_buffers {
  float *hidden;  /* [max_batch][widest rank] w1 x */
  float *score;   /* [max_batch][d_ff] the scores, then the values of a token's predicted rows */
  int32_t *idx;   /* [max_batch][d_ff] each token's predicted set, ascending */
  size_t *count;  /* [max_batch] its size */
  float *dense;   /* [d_ff] collect_recall: a token's dense decider row */
} lzn_predictor_buffers;

void lzn_predictor_buffers_carve(lzn_predictor_buffers *b, lzn_carver *c, const lzn_model *m, int max_batch);

/* What one call of a layer's predictor works with. */
typedef struct lzn_prediction {
  lzn_exec *exec;
  lzn_predictor_buffers *buf;
  lzn_recorder *rec;
  const lzn_model *model;
  int layer;
  float threshold; /* the score a neuron needs: the file's, or the context's override */
} lzn_prediction;

/* Each of n tokens' predicted set (x the MLP's input rows, x_resid the
 * residual rows before its norm); *total = the sum of their sizes.
 * Statuses: OK, NOMEM. */
lzn_status lzn_predict(const lzn_prediction *p, const float *x, const float *x_resid, int n, size_t *total);

/* row[0..d_ff) = W[i] . x + bias[i] for i in token's predicted set, 0
 * elsewhere. Statuses: OK, NOMEM. */
lzn_status lzn_predicted_rows(const lzn_prediction *p, const lzn_matrix *w, const float *bias, const float *x,
                              int token, float *row);

/* Zeroes, in n full rows [n][d_ff] computed densely, the entries outside
 * each token's predicted set: AUTO may compute a call densely, but the
 * predictor's approximation is the model's in every path but DENSE, so a
 * token's result does not depend on which tokens share its call. */
void lzn_predictor_mask(const lzn_prediction *p, float *rows, int n);

/* Counts a predicted row's neurons above threshold (truly active). */
void lzn_predictor_count(const lzn_prediction *p, const float *row, float threshold);

/* collect_recall: the dense row W x + bias of a token, and how many of its
 * active neurons its predicted set holds. Statuses: OK, NOMEM. */
lzn_status lzn_predictor_recall(const lzn_prediction *p, const lzn_matrix *w, const float *bias, const float *x,
                                int token, float threshold);

/* The same count from a dense row already computed (a call that computed
 * its whole decider, before the mask). */
void lzn_predictor_recall_of(const lzn_prediction *p, const float *dense, int token, float threshold);

#endif /* LZN_FORWARD_PREDICTOR_H */
