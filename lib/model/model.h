/*
 * model.h: the loaded model, arch-neutral: what arch/ fills in and the
 * forward pass reads. Private.
 *
 * Weight layout, the one fact the sparse path rests on: W_down is stored by
 * Hugging Face as nn.Linear's [d_model][d_ff]; at load it is transposed to
 * down_t [d_ff][d_model], so the d_model weights that one neuron feeds are
 * one contiguous row and an inactive neuron's row is never read. Every other
 * matrix keeps nn.Linear's [out][in] layout, which the GEMV reads fastest;
 * the Q8_0/Q4_0/K-quant ones a batch reads whole may also have a packed copy
 * (lzn_matrix.packed, made by pack_model.c) for the products of many tokens.
 */
#ifndef LZN_MODEL_H
#define LZN_MODEL_H

#include "core/buffer.h"
#include "core/errors.h"
#include "core/matrix.h"
#include "arch/llama_config.h"
#include "format/gguf.h"
#include "format/safetensors.h"
#include "forward/cost.h"
#include "linalg/pool.h"
#include "text/tokenizer.h"

/* Which normalisation, where, and how positions enter: the one-time choices
 * of an architecture (arch/), read by forward/. */
typedef enum lzn_norm_kind {
  LZN_NORM_LAYER = 0, /* (x - mean) / sqrt(var + eps) * w + b (OPT) */
  LZN_NORM_RMS = 1    /* x / sqrt(mean(x^2) + eps) * w (LLaMA) */
} lzn_norm_kind;
typedef enum lzn_position_kind {
  LZN_POSITIONS_LEARNED = 0, /* a table added to the embeddings (OPT) */
  LZN_POSITIONS_ROPE = 1     /* rotary, rotate-half, on q and k (LLaMA) */
} lzn_position_kind;
typedef enum lzn_mlp_kind {
  LZN_MLP_KIND_RELU = 0, /* down(relu(up x + b)) + b: the up-projection decides (OPT) */
  LZN_MLP_KIND_GATED = 1 /* down(act(gate x) * up x): the gate decides (LLaMA) */
} lzn_mlp_kind;

typedef struct lzn_arch_desc {
  const char *name;     /* "opt", "llama", "mistral", "bamboo" */
  lzn_norm_kind norm;
  double norm_eps;
  /* 1: x = x + f(norm(x)) (pre-LN); 0: x = norm(x + f(x)) (post-LN). */
  int norm_before;
  lzn_position_kind positions;
  int position_offset;  /* learned: row of embed_positions for position 0 (OPT: 2) */
  double rope_theta;    /* rope: the base of the frequencies */
  double rope_position_scale; /* rope: positions are multiplied by it (linear scaling: 1/factor) */
  lzn_mlp_kind mlp;
  lzn_activation activation;    /* gated: act of the gate */
  float activation_threshold;   /* gated FATReLU: the config's threshold */
} lzn_arch_desc;

/* A norm's affine parameters; weight NULL when it has none. */
typedef struct lzn_norm {
  const float *weight, *bias;
} lzn_norm;

/* An activation predictor (lazyneuron.h, "predictor"): s = w2 act(w1 x + b1)
 * + b2 scores each neuron; it runs where s >= threshold. present 0: none. */
typedef struct lzn_predictor {
  int present;
  int relu;              /* act = ReLU (PowerInfer), else identity (Deja Vu's low rank) */
  int input_before_norm; /* reads the residual stream before the MLP's norm (PowerInfer's GGUF) */
  lzn_matrix w1;         /* [r][d_model] */
  lzn_matrix w2;         /* [d_ff][r] */
  const float *b1, *b2;  /* [r], [d_ff]; NULL when absent */
  float threshold;
} lzn_predictor;

typedef struct lzn_layer {
  lzn_norm attn_norm;             /* before (pre-LN) or after attention */
  lzn_matrix q;                   /* [n_heads * head_dim][d_model] */
  lzn_matrix k, v;                /* [n_kv_heads * head_dim][d_model] */
  lzn_matrix o;                   /* [d_model][n_heads * head_dim] */
  const float *q_b, *k_b, *v_b, *o_b; /* NULL without bias */
  lzn_norm mlp_norm;
  lzn_matrix gate;                /* gated MLPs: [d_ff][d_model]; data NULL otherwise */
  lzn_matrix up;                  /* [d_ff][d_model] */
  const float *up_b;              /* [d_ff] */
  lzn_matrix down_t;              /* W_down transposed: [d_ff][d_model] */
  /* W_down as stored, [d_model][d_ff], for the dense path: oneDNN reads this
   * layout ~2x faster for one token (3.25 vs 6.1 ms at 2048x8192). Kept
   * where it costs nothing (in place in the mapped file); data NULL
   * otherwise, and the dense path reads down_t. */
  lzn_matrix down;
  const float *down_b;            /* [d_model] */
  lzn_predictor predictor;
} lzn_layer;

struct lzn_model {
  lzn_arch_desc arch;
  int d_model, d_ff, n_heads, n_kv_heads, head_dim, n_layers, vocab, d_embed, max_positions;
  /* The mapped files (tensors used as stored point here): a Hugging Face
   * folder's safetensors, or one GGUF file (from_gguf). */
  lzn_weights weights;
  lzn_gguf_file gguf;
  int from_gguf;
  lzn_st_file predictor_file; /* predictor.safetensors, when loaded */
  int n_predicted_layers;     /* layers with a predictor */
  lzn_buffers owned;      /* what the model allocated (converted, transposed) */

  lzn_matrix embed_tokens;       /* [vocab][d_embed] */
  const float *embed_positions;  /* [position_offset + max_positions][d_model] */
  lzn_matrix project_in;         /* [d_model][d_embed]; data NULL if d_embed == d_model */
  lzn_matrix project_out;        /* [d_embed][d_model]; likewise */
  int has_final_norm;
  lzn_norm final_norm;
  lzn_matrix lm_head;            /* [vocab][d_embed]; embed_tokens when tied */
  lzn_layer *layers;
  /* Loaded after the weights from the folder's tokenizer files or the
   * GGUF metadata; NULL when there are none, or none lazyneuron reads
   * (tokenizer_missing then says why, for lzn_model_get_tokenizer). */
  lzn_tokenizer *tokenizer;
  char tokenizer_missing[320];
  /* AUTO's costs as the first context of each thread count and batch size
   * measured them (forward/cost.h: written once per entry, by any thread
   * creating a context; zero from calloc = free). */
  lzn_cost_entry costs[LZN_COST_CACHE];
  /* Thread pools its contexts borrow for a call when free (linalg/pool.h:
   * contexts used in turn share one set of workers). */
  lzn_pool_lender pools;
};

/* Loads the model's tokenizer (m->from_gguf: from m->gguf; else from the
 * folder of path). None, or an UNSUPPORTED one, leaves it NULL with the
 * reason in tokenizer_missing. Statuses: OK, IO, FORMAT, NOMEM. */
lzn_status lzn_model_load_tokenizer(lzn_model *m, const char *path);

/* The file tensor of that name, from whichever format the model came. */
const lzn_file_tensor *lzn_model_find_tensor(const lzn_model *m, const char *name);

/* A buffer of n_bytes that the model frees with itself (core/buffer.h).
 * Statuses: OK, NOMEM. */
lzn_status lzn_model_own(lzn_model *m, size_t n_bytes, void **out);

/* The progress callback's view of a load: tensors done of total. */
typedef struct lzn_load_progress {
  const lzn_model_params *params;
  int done, total;
} lzn_load_progress;

/* One tensor done; LZN_ERR_CANCELLED if the callback asks to stop. */
lzn_status lzn_load_progress_step(lzn_load_progress *p);

/* The matrices' bytes by type, the type holding most of them, and their
 * total. */
void lzn_model_weight_bytes(const lzn_model *m, int64_t by_type[LZN_WEIGHT_TYPE_SLOTS], lzn_weight_type *type,
                            int64_t *bytes);

/* predictor_load.c: the model's activation predictor, from
 * params->predictor_path, or predictor.safetensors in model_dir (NULL:
 * none), or a PowerInfer GGUF's blk.N.fc1 / fc2. Statuses: OK, IO, FORMAT,
 * NOMEM. */
lzn_status lzn_predictor_load(lzn_model *m, const lzn_model_params *params, const char *model_dir);

/* pack_model.c: packed copies of the matrices a batch reads whole, within
 * budget bytes (lzn_model_params.pack_budget; 0: none), where the kernel
 * table reads them. Statuses: OK, NOMEM. */
lzn_status lzn_model_pack(lzn_model *m, size_t budget, int n_threads);
/* The bytes of the packed copies the model holds. */
size_t lzn_model_packed_bytes(const lzn_model *m);

/* Checks every field. Statuses: OK, INVALID_ARG. */
lzn_status lzn_model_check_params(const lzn_model_params *p);
/* A caller's params (NULL: the defaults; any released struct_size) as the
 * current struct, checked. Statuses: OK, INVALID_ARG. */
lzn_status lzn_model_read_params(const lzn_model_params *given, lzn_model_params *out);
/* The model's lzn_model_info, every field. */
void lzn_model_describe(const lzn_model *model, lzn_model_info *out);

/* The model of m->gguf (already parsed or opened): its config, weights,
 * predictor and tokenizer; path names it in messages. On failure the
 * caller frees m. */
lzn_status lzn_model_build_from_gguf(lzn_model *m, const lzn_model_params *params, const char *path);

/* load_memory.c: lzn_model_load from a config.json text and a safetensors image
 * in memory (copied: the caller keeps ownership of both). For the fuzzers.
 * Statuses: those of lzn_model_load but IO. */
lzn_status lzn_model_load_memory(const char *config_json, size_t config_len, const void *weights,
                                 size_t weights_len, const lzn_model_params *params,
                                 lzn_model **out);

/* lzn_model_load of a GGUF image in memory (copied), for the fuzzers.
 * Statuses: those of lzn_model_load but IO. */
lzn_status lzn_model_load_gguf_memory(const void *bytes, size_t size, const lzn_model_params *params,
                                      lzn_model **out);

#endif /* LZN_MODEL_H */
