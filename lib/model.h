/*
 * model.h: the loaded model and the per-sequence context. Private.
 *
 * Weight layout, the one fact the sparse path rests on: fc2 (W_down) is
 * stored by Hugging Face as nn.Linear's [d_model][d_ff]; at load it is
 * transposed to w_down_t [d_ff][d_model], so the d_model weights that one
 * neuron feeds are one contiguous row and an inactive neuron's row is never
 * read. Every other matrix keeps nn.Linear's [out][in] layout, which oneDNN
 * reads fastest for one token.
 */
#ifndef LZN_MODEL_H
#define LZN_MODEL_H

#include "config.h"
#include "dense.h"
#include "internal.h"
#include "safetensors.h"

typedef struct lzn_layer {
  /* Pre-attention layer norm (OPT: self_attn_layer_norm); NULL weight/bias
   * when layer_norm_elementwise_affine is false. */
  const float *attn_norm_w, *attn_norm_b;
  const float *q_w, *k_w, *v_w, *o_w; /* [d_model][d_model] */
  const float *q_b, *k_b, *v_b, *o_b; /* [d_model], NULL without bias */
  const float *mlp_norm_w, *mlp_norm_b; /* OPT: the layer's final_layer_norm */
  const float *up_w, *up_b;             /* fc1: [d_ff][d_model], [d_ff] */
  const float *down_w_t;                /* fc2 transposed: [d_ff][d_model] */
  /* fc2 as stored, [d_model][d_ff], for the dense path: oneDNN reads this
   * layout ~2x faster for one token (3.25 vs 6.1 ms at 2048x8192). It costs
   * nothing for F32 files (used where it lies in the mapped file); NULL for
   * converted dtypes, where the dense path falls back to down_w_t. */
  const float *down_w;
  const float *down_b;                  /* [d_model] */
} lzn_layer;

struct lzn_model {
  lzn_opt_config config;
  int d_model, d_ff, n_heads, head_dim, n_layers, vocab, d_embed, max_positions;
  lzn_weights weights;  /* the mapped files (F32 tensors are used in place) */
  float **owned;        /* buffers the model allocated (converted, transposed) */
  size_t n_owned, cap_owned;

  const float *embed_tokens;     /* [vocab][d_embed] */
  const float *embed_positions;  /* [max_positions + 2][d_model]: OPT's offset 2 */
  const float *project_in;       /* [d_model][d_embed] or NULL */
  const float *project_out;      /* [d_embed][d_model] or NULL */
  const float *final_norm_w, *final_norm_b; /* pre-LN models only */
  int has_final_norm;
  const float *lm_head;          /* [vocab][d_embed]; embed_tokens when tied */
  lzn_layer *layers;
};

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
  const lzn_kernels *kernels;
  lzn_dense *dense;
  int n_ctx, n_past, max_batch;
  /* AUTO's cost model (mlp.c), measured at creation unless the caller set
   * auto_crossover: seconds per active row of the sparse down-projection,
   * and of the dense one for 1 and for max_batch tokens. */
  double t_row, t_dense_1, t_dense_batch;

  float *k_cache, *v_cache; /* [n_layers][n_ctx][d_model] */

  /* Scratch for one batch of at most max_batch tokens. */
  float *hidden;   /* [max_batch][d_model] the residual stream */
  float *normed;   /* [max_batch][d_model] */
  float *q, *k, *v, *attn; /* [max_batch][d_model] */
  float *up;       /* [max_batch][d_ff] */
  float *mlp_out;  /* [max_batch][d_model] */
  float *embed;    /* [max_batch][max(d_embed, d_model)] */
  float *scores;   /* [n_threads][n_ctx] attention scores */
  int32_t *active_idx; /* [d_ff] */
  float *active_val;   /* [d_ff] */
  float *top_k_scratch; /* [d_ff] candidates for the top-k selection */
  float *token_threshold; /* [max_batch] each token's activation threshold */
  int32_t *row_index;   /* 0, 1, 2, ...: all rows, for dot_rows as a GEMV */
  int64_t n_row_index;

  lzn_layer_counters *counters; /* [n_layers] */
};

/* linear.c: y = x * w^T (+ bias) for m tokens, w [n][k] as nn.Linear
 * stores it; the GEMV kernel for one token, oneDNN for more. */
lzn_status lzn_linear(lzn_context *ctx, float *y, const float *x, const float *w, const float *bias,
                      int64_t m, int64_t n, int64_t k);

/* mlp.c: the MLP block of one layer for n tokens: out = W_down relu(W_up x
 * + b_up) + b_down, with the down-projection sparse or dense by mode. */
lzn_status lzn_mlp_forward(lzn_context *ctx, int layer, const float *x, float *out, int n);

/* model.c: a buffer of n floats that the model frees with itself: 2 MiB
 * aligned with transparent huge pages when large (the sparse kernel reads
 * rows at random), else cache-line aligned. */
lzn_status lzn_model_own_buffer(lzn_model *m, size_t n_floats, float **out);

/* Monotonic wall-clock seconds, for the per-block timings. */
double lzn_now_seconds(void);

/* mlp.c: measures AUTO's cost model on the model's first layer. */
lzn_status lzn_mlp_measure_costs(lzn_context *ctx);

/* model.c: lzn_model_load from a config.json text and a safetensors image
 * in memory (copied: the caller keeps ownership of both). For the fuzzers.
 * Statuses: those of lzn_model_load but IO. */
lzn_status lzn_model_load_memory(const char *config_json, size_t config_len, const void *weights,
                                 size_t weights_len, const lzn_model_params *params,
                                 lzn_model **out);

#endif /* LZN_MODEL_H */
