/*
 * llama_gguf.c: a LLaMA-family configuration from GGUF metadata, with
 * llama.cpp's key names ({arch}.embedding_length, ...) and lazyneuron's own
 * keys for what stock GGUF cannot say (the ReLU-family activation, the
 * rotary row order). See lzn_llama_config_from_gguf in llama_config.h.
 */
#include <stdio.h>
#include <string.h>

#include "arch/gguf_keys.h"
#include "arch/llama_config.h"
#include "core/errors.h"
#include "format/gguf.h"

static lzn_status read_activation(const lzn_gguf_file *f, const char *arch, lzn_llama_config *c) {
  char act[32];
  lzn_status s = lzn_gguf_key_text(f, "lazyneuron.activation", act, sizeof act);
  if (s != LZN_OK) return s;
  if (act[0] == '\0') { /* no lazyneuron key: what the file's family means */
    if (strcmp(arch, "bamboo") == 0) snprintf(act, sizeof act, "drelu");
    else if (strcmp(f->magic, "PWRI") == 0) snprintf(act, sizeof act, "relu"); /* PowerInfer's ReLU models */
    else snprintf(act, sizeof act, "silu");
  }
  if (strcmp(act, "relu") == 0) c->activation = LZN_ACT_RELU;
  else if (strcmp(act, "drelu") == 0) c->activation = LZN_ACT_DRELU;
  else if (strcmp(act, "silu") == 0) c->activation = LZN_ACT_SILU;
  else if (strcmp(act, "fatrelu") == 0) c->activation = LZN_ACT_FATRELU;
  else
    return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: lazyneuron.activation \"%s\" is not supported "
                    "(relu, fatrelu, drelu, silu)", f->path, act);
  if (c->activation != LZN_ACT_FATRELU) return LZN_OK;
  if (lzn_gguf_find(f, "lazyneuron.activation_threshold") == NULL)
    return lzn_fail(LZN_ERR_FORMAT, "%s: fatrelu needs \"lazyneuron.activation_threshold\"", f->path);
  s = lzn_gguf_key_real(f, "lazyneuron.activation_threshold", 0.0, &c->activation_threshold);
  if (s == LZN_OK && !(c->activation_threshold >= 0.0))
    return lzn_fail(LZN_ERR_FORMAT, "%s: lazyneuron.activation_threshold must be >= 0", f->path);
  return s;
}

static lzn_status read_rope(const lzn_gguf_file *f, const char *arch, lzn_llama_config *c) {
  char key[128], kind[32];
  snprintf(key, sizeof key, "%s.rope.freq_base", arch);
  lzn_status s = lzn_gguf_key_real(f, key, 10000.0, &c->rope_theta);
  if (s == LZN_OK && !(c->rope_theta > 0.0))
    return lzn_fail(LZN_ERR_FORMAT, "%s: \"%s\" must be > 0", f->path, key);
  snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
  if (s == LZN_OK) s = lzn_gguf_key_text(f, key, kind, sizeof kind);
  c->rope_linear_factor = 1.0;
  if (s != LZN_OK || kind[0] == '\0' || strcmp(kind, "none") == 0) return s;
  if (strcmp(kind, "linear") != 0)
    return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: rope scaling \"%s\" is not supported (none, linear)",
                    f->path, kind);
  snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
  s = lzn_gguf_key_real(f, key, 1.0, &c->rope_linear_factor);
  if (s == LZN_OK && !(c->rope_linear_factor > 0.0))
    return lzn_fail(LZN_ERR_FORMAT, "%s: \"%s\" must be > 0", f->path, key);
  return s;
}

lzn_status lzn_llama_config_from_gguf(const lzn_gguf_file *f, lzn_llama_config *c) {
  memset(c, 0, sizeof *c);
  char arch[32];
  lzn_status s = lzn_gguf_key_text(f, "general.architecture", arch, sizeof arch);
  if (s != LZN_OK) return s;
  if (arch[0] == '\0') return lzn_fail(LZN_ERR_FORMAT, "%s: GGUF key \"general.architecture\" is missing", f->path);
  if (strcmp(arch, "llama") != 0 && strcmp(arch, "bamboo") != 0)
    return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: GGUF architecture \"%s\" is not supported (llama, bamboo, opt)",
                    f->path, arch);
  snprintf(c->architecture, sizeof c->architecture, "%s", arch);
  if (s == LZN_OK) s = lzn_gguf_key_size(f, arch, "embedding_length", 1, 0, &c->hidden_size);
  if (s == LZN_OK) s = lzn_gguf_key_size(f, arch, "feed_forward_length", 1, 0, &c->intermediate_size);
  if (s == LZN_OK) s = lzn_gguf_key_size(f, arch, "attention.head_count", 1, 0, &c->num_attention_heads);
  if (s == LZN_OK) s = lzn_gguf_key_size(f, arch, "block_count", 1, 0, &c->num_hidden_layers);
  if (s == LZN_OK) s = lzn_gguf_key_size(f, arch, "context_length", 1, 0, &c->max_position_embeddings);
  if (s == LZN_OK)
    s = lzn_gguf_key_size(f, arch, "attention.head_count_kv", 0, c->num_attention_heads, &c->num_key_value_heads);
  if (s != LZN_OK) return s;
  if (c->hidden_size % c->num_attention_heads != 0)
    return lzn_fail(LZN_ERR_FORMAT, "%s: embedding_length %d is not divisible by head_count %d",
                    f->path, c->hidden_size, c->num_attention_heads);
  s = lzn_gguf_key_size(f, arch, "attention.key_length", 0, c->hidden_size / c->num_attention_heads, &c->head_dim);
  if (s == LZN_OK && (c->head_dim % 2 || c->num_attention_heads % c->num_key_value_heads))
    return lzn_fail(LZN_ERR_FORMAT, "%s: head dimension %d must be even and head_count_kv %d must "
                    "divide head_count %d", f->path, c->head_dim, c->num_key_value_heads,
                    c->num_attention_heads);
  char key[128];
  snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
  if (s == LZN_OK) s = lzn_gguf_key_real(f, key, 1e-5, &c->rms_norm_eps);
  if (s == LZN_OK) s = read_rope(f, arch, c);
  if (s == LZN_OK) s = read_activation(f, arch, c);
  if (s != LZN_OK) return s;
  s = lzn_gguf_key_vocab(f, &c->vocab_size, &c->tie_word_embeddings);
  if (s != LZN_OK) return s;
  c->attention_bias = lzn_gguf_find_tensor(f, "blk.0.attn_q.bias") != NULL;
  int rotate_half = 0;
  if (lzn_gguf_find(f, "lazyneuron.rope.rotate_half") != NULL)
    s = lzn_gguf_get_bool(f, "lazyneuron.rope.rotate_half", &rotate_half);
  c->rope_rows_interleaved = !rotate_half;
  if (s == LZN_OK && c->rope_rows_interleaved && c->attention_bias)
    return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: q/k biases in llama.cpp's rotary row order are not "
                    "supported (convert with lzn-convert, which keeps Hugging Face's order)", f->path);
  return s;
}
