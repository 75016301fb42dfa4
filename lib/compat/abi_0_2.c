/*
 * compat/abi_0_2.c: the 0.2 versions of the four getters whose output
 * structs gained struct_size in 0.3 (lazyneuron.h, "ABI"). Programs built
 * against the 0.2 header bind to these (symbol version LZN_0.2), and get
 * the structs laid out as 0.2 declared them, frozen here.
 */
#include <stdlib.h>
#include <string.h>

#include "core/abi.h"
#include "core/errors.h"
#include "lazyneuron.h"

/* ------------------------------------------------ the 0.2 layouts */

typedef struct model_info_0_2 {
  int n_layers, d_model, d_ff, n_heads, vocab_size, max_positions;
  lzn_weight_type weight_type;
  int64_t weight_bytes;
  int n_kv_heads, head_dim;
  int gated;
  const char *architecture;
  int has_predictor;
} model_info_0_2;

typedef struct layer_stats_0_2 {
  int64_t tokens;
  double active_fraction;
  int64_t never_fired;
  double flops_dense, flops_executed, bytes_dense, bytes_executed;
  int64_t sparse_calls, dense_calls;
  double seconds_attention, seconds_up, seconds_down;
  double union_fraction, bytes_per_token_sparse;
} layer_stats_0_2;

typedef struct predictor_stats_0_2 {
  int64_t tokens;
  double predicted_fraction, active_fraction, recall, precision, flops, bytes;
} predictor_stats_0_2;

typedef struct tokenizer_info_0_2 {
  int vocab_size;
  int32_t bos_id, eos_id;
  int add_bos;
  const char *kind;
} tokenizer_info_0_2;

_Static_assert(sizeof(model_info_0_2) == 72 && sizeof(layer_stats_0_2) == 112 && sizeof(predictor_stats_0_2) == 56 &&
                   sizeof(tokenizer_info_0_2) == 24,
               "the 0.2 layouts are frozen");

/* The 0.3 functions these wrap (their default symbol versions). */
lzn_status lzn_model_get_info_v0_3(const lzn_model *model, lzn_model_info *out);
lzn_status lzn_context_stats_v0_3(const lzn_context *ctx, lzn_layer_stats *out, int capacity);
lzn_status lzn_context_predictor_stats_v0_3(const lzn_context *ctx, lzn_predictor_stats *out, int capacity);
lzn_status lzn_tokenizer_get_info_v0_3(const lzn_tokenizer *t, lzn_tokenizer_info *out);

/* The current structs of min(n_layers, capacity) layers: every element the
 * 0.3 function filled has its struct_size set. */
static void *current_array(size_t size, int capacity) {
  if (capacity < 1) return NULL;
  void *all = calloc((size_t)capacity, size);
  if (all != NULL) memcpy(all, &size, sizeof size);
  return all;
}

LZN_API lzn_status lzn_model_get_info_v0_2(const lzn_model *model, model_info_0_2 *out);
LZN_SYMVER_OLD(lzn_model_get_info_v0_2, lzn_model_get_info, LZN_0.2)
LZN_API lzn_status lzn_model_get_info_v0_2(const lzn_model *model, model_info_0_2 *out) {
  lzn_model_info info = {.struct_size = sizeof info};
  const lzn_status s = lzn_model_get_info_v0_3(model, out ? &info : NULL);
  if (s != LZN_OK) return s;
  *out = (model_info_0_2){info.n_layers, info.d_model, info.d_ff, info.n_heads, info.vocab_size,
                          info.max_positions, info.weight_type, info.weight_bytes, info.n_kv_heads,
                          info.head_dim, info.gated, info.architecture, info.has_predictor};
  return LZN_OK;
}

LZN_API lzn_status lzn_context_stats_v0_2(const lzn_context *ctx, layer_stats_0_2 *out, int capacity);
LZN_SYMVER_OLD(lzn_context_stats_v0_2, lzn_context_stats, LZN_0.2)
LZN_API lzn_status lzn_context_stats_v0_2(const lzn_context *ctx, layer_stats_0_2 *out, int capacity) {
  lzn_layer_stats *all = out ? current_array(sizeof *all, capacity) : NULL;
  if (out != NULL && capacity >= 1 && all == NULL) return lzn_fail(LZN_ERR_NOMEM, "lzn_context_stats: out of memory");
  const lzn_status s = lzn_context_stats_v0_3(ctx, all, capacity); /* its argument checks */
  for (int l = 0; s == LZN_OK && l < capacity && all[l].struct_size != 0; l++) {
    const lzn_layer_stats *a = &all[l];
    out[l] = (layer_stats_0_2){a->tokens, a->active_fraction, a->never_fired, a->flops_dense, a->flops_executed,
                               a->bytes_dense, a->bytes_executed, a->sparse_calls, a->dense_calls,
                               a->seconds_attention, a->seconds_up, a->seconds_down, a->union_fraction,
                               a->bytes_per_token_sparse};
  }
  free(all);
  return s;
}

LZN_API lzn_status lzn_context_predictor_stats_v0_2(const lzn_context *ctx, predictor_stats_0_2 *out, int capacity);
LZN_SYMVER_OLD(lzn_context_predictor_stats_v0_2, lzn_context_predictor_stats, LZN_0.2)
LZN_API lzn_status lzn_context_predictor_stats_v0_2(const lzn_context *ctx, predictor_stats_0_2 *out, int capacity) {
  lzn_predictor_stats *all = out ? current_array(sizeof *all, capacity) : NULL;
  if (out != NULL && capacity >= 1 && all == NULL)
    return lzn_fail(LZN_ERR_NOMEM, "lzn_context_predictor_stats: out of memory");
  const lzn_status s = lzn_context_predictor_stats_v0_3(ctx, all, capacity);
  for (int l = 0; s == LZN_OK && l < capacity && all[l].struct_size != 0; l++) {
    const lzn_predictor_stats *a = &all[l];
    out[l] = (predictor_stats_0_2){a->tokens, a->predicted_fraction, a->active_fraction, a->recall,
                                   a->precision, a->flops, a->bytes};
  }
  free(all);
  return s;
}

LZN_API lzn_status lzn_tokenizer_get_info_v0_2(const lzn_tokenizer *t, tokenizer_info_0_2 *out);
LZN_SYMVER_OLD(lzn_tokenizer_get_info_v0_2, lzn_tokenizer_get_info, LZN_0.2)
LZN_API lzn_status lzn_tokenizer_get_info_v0_2(const lzn_tokenizer *t, tokenizer_info_0_2 *out) {
  lzn_tokenizer_info info = {.struct_size = sizeof info};
  const lzn_status s = lzn_tokenizer_get_info_v0_3(t, out ? &info : NULL);
  if (s != LZN_OK) return s;
  *out = (tokenizer_info_0_2){info.vocab_size, info.bos_id, info.eos_id, info.add_bos, info.kind};
  return LZN_OK;
}
