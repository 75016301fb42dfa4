/*
 * opt_config.h: an OPT configuration, from a Hugging Face config.json.
 * Private to the library.
 */
#ifndef LZN_CONFIG_H
#define LZN_CONFIG_H

#include <stddef.h>

#include "lazyneuron.h"

#include "arch/config_json.h"

/* An OPT config (transformers' OPTConfig), with its defaults applied. */
typedef struct lzn_opt_config {
  int hidden_size, ffn_dim, num_attention_heads, num_hidden_layers;
  int max_position_embeddings, vocab_size, word_embed_proj_dim;
  int do_layer_norm_before, enable_bias, layer_norm_elementwise_affine, tie_word_embeddings;
  /* "_remove_final_layer_norm" (default false): when true, or when
   * do_layer_norm_before is false, the decoder has no final_layer_norm. */
  int remove_final_layer_norm;
} lzn_opt_config;

/* Parses config.json text (len bytes; need not be NUL-terminated).
 * path_for_errors names it in messages (NULL: "config.json"). On failure
 * *out is zeroed. Statuses: OK, INVALID_ARG, FORMAT (invalid JSON, missing or
 * ill-typed field, value out of range), UNSUPPORTED (not OPT, or an
 * activation other than ReLU). */
lzn_status lzn_opt_config_parse(const char *json, size_t len, const char *path_for_errors,
                            lzn_opt_config *out);

/* Reads and parses the config.json at path. Statuses: those of
 * lzn_opt_config_parse, and IO, NOMEM. */
lzn_status lzn_config_load(const char *path, lzn_opt_config *out);

/* The same configuration from a GGUF file's metadata (general.architecture
 * "opt", as lzn-convert writes it): opt.block_count, opt.embedding_length,
 * opt.feed_forward_length, opt.attention.head_count and opt.context_length
 * (max_position_embeddings: position_embd has 2 more rows, OPT's offset)
 * are required; opt.word_embed_proj_dim (default: embedding_length) and the
 * bools opt.do_layer_norm_before (true), opt.enable_bias (true),
 * opt.layer_norm_elementwise_affine (true), opt.remove_final_layer_norm
 * (false) mirror OPTConfig. The vocabulary is token_embd's rows; the head is
 * tied unless output.weight exists. Statuses: OK, FORMAT. */
struct lzn_gguf_file;
lzn_status lzn_opt_config_from_gguf(const struct lzn_gguf_file *f, lzn_opt_config *out);

#endif /* LZN_CONFIG_H */
