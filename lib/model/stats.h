/*
 * stats.h: the statistics recorder of a context: per-layer counters behind
 * lzn_layer_stats and lzn_predictor_stats, written by the forward pass
 * through the lzn_record_* functions, read through lzn_recorder_*_stats.
 * Private.
 */
#ifndef LZN_MODEL_STATS_H
#define LZN_MODEL_STATS_H

#include <stdint.h>

#include "model/model.h"

typedef struct lzn_layer_counters {
  int64_t tokens, active_sum, sparse_calls, dense_calls;
  int64_t union_sum; /* over calls: the rows the call's tokens needed together */
  double flops_executed, bytes_executed;
  double seconds_attention, seconds_up, seconds_down;
  double seconds_attention_core; /* of seconds_attention: store, scores, softmax, weighted sum */
  double kv_bytes_read;          /* K and V bytes the attention core read */
} lzn_layer_counters;

typedef struct lzn_predictor_counters {
  int64_t tokens, predicted_sum, active_sum;
  int64_t recall_hits, recall_true, recall_tokens; /* collect_recall only */
  double flops, bytes;
} lzn_predictor_counters;

typedef struct lzn_recorder {
  int on; /* collect_stats: 0 records only which neurons fired */
  int n_layers, d_ff;
  lzn_layer_counters *layers;        /* [n_layers] */
  lzn_predictor_counters *predictor; /* [n_layers] */
  uint8_t *fired;                    /* [n_layers][d_ff]: 1 once the neuron was active */
} lzn_recorder;

/* Statuses: OK, NOMEM. */
lzn_status lzn_recorder_create(lzn_recorder *r, const lzn_model *m, int on);
void lzn_recorder_free(lzn_recorder *r);
/* Zeroes every counter and forgets which neurons fired. */
void lzn_recorder_reset(lzn_recorder *r);

/* Layer's row of the fired flags. */
static inline uint8_t *lzn_recorder_fired(const lzn_recorder *r, int layer) {
  return r->fired + (size_t)layer * (size_t)r->d_ff;
}

/* What one MLP call of a layer did, over the matrices the active set
 * applies to (W_down, and W_up of a gated MLP: the decider, OPT's fc1 or
 * the gate, always runs and is not counted). */
typedef struct lzn_mlp_record {
  int n_tokens;
  int sparse;                          /* the path the call took */
  size_t active;                       /* truly active (token, neuron) pairs */
  size_t rows;                         /* the call's row set: its union, or the one token's set */
  size_t up_rows, down_rows;           /* rows of W_up / W_down^T read, once for the call */
  size_t up_products, down_products;   /* (token, row) dot or axpy products computed */
  double seconds_decide, seconds_rest; /* the decider's projection; everything after it */
} lzn_mlp_record;

/* The record step of the MLP pipeline: the one place MLP counters change
 * (but the fired flags, set where activity is decided). */
void lzn_record_mlp(lzn_recorder *r, const lzn_model *m, int layer, const lzn_mlp_record *rec);
/* The attention block of a layer: its seconds, of which the core's, and
 * the K/V bytes the core read. */
void lzn_record_attention(lzn_recorder *r, int layer, double seconds, double core_seconds,
                          double kv_bytes);
/* A layer's predictor scored one token: its set size and its own work. */
void lzn_record_prediction(lzn_recorder *r, int layer, size_t predicted, double flops, double bytes);
/* Of a predicted set, `active` neurons were truly active. */
void lzn_record_predicted_active(lzn_recorder *r, int layer, size_t active);
/* collect_recall: of `truly` active neurons of a token, `hits` were predicted. */
void lzn_record_recall(lzn_recorder *r, int layer, size_t truly, size_t hits);

/* The public statistics of min(n_layers, capacity) layers, every field
 * (struct_size = sizeof). */
void lzn_recorder_layer_stats(const lzn_recorder *r, const lzn_model *m, lzn_layer_stats *out, int capacity);
void lzn_recorder_predictor_stats(const lzn_recorder *r, const lzn_model *m, lzn_predictor_stats *out,
                                  int capacity);

#endif /* LZN_MODEL_STATS_H */
