/*
 * fuzz_config.c: lzn_opt_config_parse on arbitrary bytes (not NUL-terminated:
 * libFuzzer's buffer ends exactly at size, so ASan sees any read past len).
 *
 * On success the config must hold what model.c relies on: every size in
 * [1, LZN_CONFIG_MAX_SIZE], hidden_size divisible by the heads, flags 0/1.
 */
#include <stdio.h>
#include <stdlib.h>

#include "arch/opt_config.h"
#include "fuzz.h"

static int is_size(int v) { return v >= 1 && v <= LZN_CONFIG_MAX_SIZE; }
static int is_flag(int v) { return v == 0 || v == 1; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lzn_opt_config c;
  if (lzn_opt_config_parse((const char *)data, size, NULL, &c) != LZN_OK) {
    FUZZ_CHECK(c.hidden_size == 0 && c.vocab_size == 0);
    FUZZ_CHECK(lzn_last_error()[0] != '\0');
    return 0;
  }
  FUZZ_CHECK(is_size(c.hidden_size) && is_size(c.ffn_dim) && is_size(c.num_attention_heads));
  FUZZ_CHECK(is_size(c.num_hidden_layers) && is_size(c.max_position_embeddings));
  FUZZ_CHECK(is_size(c.vocab_size) && is_size(c.word_embed_proj_dim));
  FUZZ_CHECK(c.hidden_size % c.num_attention_heads == 0);
  FUZZ_CHECK(is_flag(c.do_layer_norm_before) && is_flag(c.enable_bias));
  FUZZ_CHECK(is_flag(c.layer_norm_elementwise_affine) && is_flag(c.tie_word_embeddings));
  FUZZ_CHECK(is_flag(c.remove_final_layer_norm));
  return 0;
}
