/*
 * llama_config.h: a LLaMA-family configuration (transformers' LlamaConfig,
 * MistralConfig, and the Bamboo / TurboSparse configs) from a Hugging Face
 * config.json, with their defaults applied. Private.
 */
#ifndef LZN_LLAMA_CONFIG_H
#define LZN_LLAMA_CONFIG_H

#include <stddef.h>

#include "arch/config_json.h"

/* The MLP's activation on the gate: down(act(gate x) * up x). */
typedef enum lzn_activation {
  LZN_ACT_RELU = 0,    /* ReluLLaMA */
  LZN_ACT_FATRELU = 1, /* ProSparse / MiniCPM-S: gate if gate > threshold, else 0 */
  LZN_ACT_DRELU = 2,   /* TurboSparse / Bamboo: relu(gate) * relu(up) */
  LZN_ACT_SILU = 3     /* SwiGLU: dense unless the caller sets a threshold */
} lzn_activation;

typedef struct lzn_llama_config {
  int hidden_size, intermediate_size, num_attention_heads, num_key_value_heads, head_dim;
  int num_hidden_layers, vocab_size, max_position_embeddings;
  double rms_norm_eps, rope_theta;
  double rope_linear_factor; /* positions are divided by it (1: no rope_scaling) */
  int attention_bias, tie_word_embeddings;
  lzn_activation activation;
  double activation_threshold; /* FATReLU's hidden_act_param; 0 otherwise */
  char architecture[32];       /* "llama", "mistral", "bamboo": for messages and info */
  int rope_rows_interleaved;   /* GGUF from llama.cpp: q/k rows in ggml's pairwise rope order */
} lzn_llama_config;

/* Whether config.json names a LLaMA-family architecture (model_type llama,
 * mistral, bamboo, or such an "architectures" entry). */
int lzn_llama_config_matches(const char *json, size_t len);

/* Parses config.json text. On failure *out is zeroed. Statuses: OK,
 * INVALID_ARG, FORMAT (invalid JSON, a missing or ill-typed field, a value
 * out of range, heads that do not divide), UNSUPPORTED (an activation,
 * rope_scaling kind or mlp_bias that lazyneuron does not run: named). */
lzn_status lzn_llama_config_parse(const char *json, size_t len, const char *path_for_errors,
                                  lzn_llama_config *out);

/* The same configuration from a GGUF file's metadata (general.architecture
 * "llama" or PowerInfer's "bamboo"; llama.cpp's keys {arch}.block_count,
 * {arch}.embedding_length, ...), the vocabulary size from token_embd, the
 * activation from "lazyneuron.activation" (+ "lazyneuron.activation_threshold")
 * when lzn-convert wrote it, else relu for PowerInfer (PWRI) files and
 * bamboo's dReLU, else SiLU (stock llama.cpp files have no such key). q/k
 * rows are in llama.cpp's order unless "lazyneuron.rope.rotate_half" is
 * true. Statuses: OK, FORMAT (a missing or ill-typed key), UNSUPPORTED (an
 * architecture, activation or rope scaling lazyneuron does not run). */
struct lzn_gguf_file;
lzn_status lzn_llama_config_from_gguf(const struct lzn_gguf_file *f, lzn_llama_config *out);

#endif /* LZN_LLAMA_CONFIG_H */
