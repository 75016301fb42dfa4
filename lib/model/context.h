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
  int64_t union_sum; /* over calls: the rows the call's tokens needed together */
  double flops_executed, bytes_executed;
  double seconds_attention, seconds_up, seconds_down;
  double seconds_attention_core; /* of seconds_attention: store, scores, softmax, weighted sum */
  double kv_bytes_read;          /* K and V bytes the attention core read */
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

  /* The KV cache: rows of head_dim values in kv_type, kv_row_bytes each,
   * laid out [n_layers][n_kv_heads][n_ctx][row]. One KV head's positions
   * are consecutive so the attention kernels stream one contiguous run of
   * n_past rows per (layer, head) (hardware prefetch, no stride over the
   * other heads), a GQA group reads it once, and a Q8_0 row is whole
   * blocks of its own. Writing a new token scatters n_kv_heads rows, which
   * is cheap next to reading n_past of them. kv_cache_row() gives row
   * (layer, kv_head, position). */
  lzn_kv_type kv_type;
  size_t kv_row_bytes;
  size_t kv_bytes; /* K + V, every layer */
  void *k_cache, *v_cache;
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
  /* Attention scratch per thread (forward/attention.c): a tile of queries,
   * its scores against a tile of keys, its running outputs, max and sum. */
  float *attn_scratch; /* [n_threads][attn_scratch_floats] */
  size_t attn_scratch_floats;
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

/* Floats of attention scratch one thread needs (forward/attention.c's
 * tiles for this model's head_dim, whatever the number of tokens). */
size_t lzn_attention_scratch_floats(const lzn_model *m);

/* The attention core of one layer (forward/attention.c): stores the n rows
 * of ctx->k and ctx->v at positions p0.. of the cache, then writes
 * ctx->heads = softmax(q K^T) V per query head for the n rows of ctx->q
 * (already rotated and scaled), each token attending to positions 0 .. its
 * own. Private; tests call it on contexts they fill. */
void lzn_attention_core(lzn_context *ctx, int layer, int n, int p0);
/* How many work items (threads' shares) the core makes of n tokens. */
int lzn_attention_work_items(const lzn_model *m, int n, int threads);

/* Row (layer, kv_head, position) of a cache (k_cache or v_cache). */
static inline void *kv_cache_row(const lzn_context *ctx, void *cache, int layer, int kv_head,
                                 int position) {
  const size_t rows = ((size_t)layer * (size_t)ctx->model->n_kv_heads + (size_t)kv_head) *
                          (size_t)ctx->n_ctx + (size_t)position;
  return (char *)cache + rows * ctx->kv_row_bytes;
}

#endif /* LZN_CONTEXT_H */
