/*
 * opt_gguf.c: an OPT configuration from GGUF metadata (lzn-convert writes
 * OPT folders as GGUF; llama.cpp has no OPT architecture, so the keys are
 * lazyneuron's, named after llama.cpp's where one means the same and after
 * transformers' OPTConfig where none does). See lzn_opt_config_from_gguf in
 * opt_config.h.
 */
#include <stdio.h>
#include <string.h>

#include "arch/gguf_keys.h"
#include "arch/opt_config.h"
#include "core/errors.h"

lzn_status lzn_opt_config_from_gguf(const lzn_gguf_file *f, lzn_opt_config *c) {
  memset(c, 0, sizeof *c);
  static const char arch[] = "opt";
  lzn_status s = lzn_gguf_key_size(f, arch, "embedding_length", 1, 0, &c->hidden_size);
  if (s == LZN_OK) s = lzn_gguf_key_size(f, arch, "feed_forward_length", 1, 0, &c->ffn_dim);
  if (s == LZN_OK) s = lzn_gguf_key_size(f, arch, "attention.head_count", 1, 0, &c->num_attention_heads);
  if (s == LZN_OK) s = lzn_gguf_key_size(f, arch, "block_count", 1, 0, &c->num_hidden_layers);
  if (s == LZN_OK) s = lzn_gguf_key_size(f, arch, "context_length", 1, 0, &c->max_position_embeddings);
  if (s == LZN_OK)
    s = lzn_gguf_key_size(f, arch, "word_embed_proj_dim", 0, c->hidden_size, &c->word_embed_proj_dim);
  if (s == LZN_OK) s = lzn_gguf_key_bool(f, "opt.do_layer_norm_before", 1, &c->do_layer_norm_before);
  if (s == LZN_OK) s = lzn_gguf_key_bool(f, "opt.enable_bias", 1, &c->enable_bias);
  if (s == LZN_OK)
    s = lzn_gguf_key_bool(f, "opt.layer_norm_elementwise_affine", 1, &c->layer_norm_elementwise_affine);
  if (s == LZN_OK) s = lzn_gguf_key_bool(f, "opt.remove_final_layer_norm", 0, &c->remove_final_layer_norm);
  if (s != LZN_OK) return s;
  if (c->hidden_size % c->num_attention_heads != 0)
    return lzn_fail(LZN_ERR_FORMAT, "%s: opt.embedding_length %d is not divisible by "
                    "opt.attention.head_count %d", f->path, c->hidden_size, c->num_attention_heads);
  return lzn_gguf_key_vocab(f, &c->vocab_size, &c->tie_word_embeddings);
}
