/*
 * context.h: one sequence's state: KV cache, scratch, statistics. Private.
 */
#ifndef LZN_CONTEXT_H
#define LZN_CONTEXT_H

#include "linalg/exec.h"
#include "model/model.h"

/* Per-layer counters behind lzn_predictor_stats. */
typedef struct lzn_predictor_counters {
  int64_t tokens, predicted_sum, active_sum;
  int64_t recall_hits, recall_true, recall_tokens; /* collect_recall only */
  double flops, bytes;
} lzn_predictor_counters;

/* Per-layer counters behind lzn_layer_stats. */
typedef struct lzn_layer_counters {
  int64_t tokens, active_sum, sparse_calls, dense_calls;
  double flops_executed, bytes_executed;
  double seconds_attention, seconds_up, seconds_down;
  uint8_t *fired; /* [d_ff]: 1 once the neuron was active */
} lzn_layer_counters;

struct lzn_context {
  const lzn_model *model;
  lzn_context_params params;
  lzn_exec exec;           /* kernels, oneDNN, threads */
  int n_ctx, n_past, max_batch;
  /* AUTO's cost model (forward/cost.c), measured at creation unless the
   * caller set auto_crossover: seconds per row read sparse (W_down^T by
   * axpy_rows, W_up by gathered dot products), and the dense down- and
   * up-projections for 1 and for max_batch tokens. */
  double t_row_down, t_row_up, t_dense_down[2], t_dense_up[2];
  double t_union_row_down, t_union_row_up; /* per union row, for max_batch tokens */

  float *k_cache, *v_cache; /* [n_layers][n_ctx][n_kv_heads * head_dim] */
  float *rope_cos, *rope_sin; /* [n_ctx][head_dim / 2]: rotary angles per position */

  /* Scratch for one batch of at most max_batch tokens. */
  float *hidden;   /* [max_batch][d_model] the residual stream */
  float *normed;   /* [max_batch][d_model] norm output, the MLP's input */
  float *q;        /* [max_batch][n_heads * head_dim] */
  float *k, *v;    /* [max_batch][n_kv_heads * head_dim] */
  float *heads;    /* [max_batch][n_heads * head_dim] attention per head, before out_proj */
  float *attn;     /* [max_batch][d_model] the attention block's output */
  float *gate;     /* [max_batch][d_ff] gated MLPs: the gate's output */
  float *up;       /* [max_batch][d_ff] */
  float *mlp_out;  /* [max_batch][d_model] */
  float *embed;    /* [max_batch][max(d_embed, d_model)] */
  float *scores;   /* [n_threads][n_ctx] attention scores */
  int32_t *active_idx; /* [d_ff] */
  float *active_val;   /* [d_ff] */
  float *top_k_scratch; /* [d_ff] candidates for the top-k selection */
  float *token_threshold; /* [max_batch] each token's activation threshold */
  float *act_abs;       /* [d_ff] gated SiLU: |silu(gate)|, what selection compares */
  /* A batch's union of active rows (forward/select.c, linalg/union.c). */
  uint8_t *union_mask;  /* [d_ff] */
  int32_t *union_idx;   /* [d_ff] */
  float *union_coef;    /* [max_batch][d_ff]: each token's coefficient on each union row */
  int32_t *all_rows;    /* [d_ff] 0, 1, ...: every row, for the dense down-projection in a type */

  lzn_layer_counters *counters; /* [n_layers] */

  /* The activation predictor (forward/predictor.c), when the model has one. */
  float *pred_hidden;   /* [max rank] w1 x */
  float *pred_score;    /* [d_ff] the scores */
  int32_t *pred_idx;    /* [max_batch][d_ff] each token's predicted set, ascending */
  size_t *pred_n;       /* [max_batch] its size */
  float *pred_dense;    /* [d_ff] collect_recall: the dense pre-activation row */
  lzn_predictor_counters *pred_counters; /* [n_layers] */
};

#endif /* LZN_CONTEXT_H */
