/*
 * fuzz_forward.h: one forward call on a model a harness loaded from its
 * input (fuzz_model.c, fuzz_gguf_model.c), shaped by a control byte:
 *   bits 0-1 mlp mode (0 AUTO at crossover 0.5, 1 SPARSE, 2 DENSE, 3 AUTO
 *   with its measured cost model), bit 2 two tokens instead of one, bit 3
 *   logits of every token, bit 4 top_k = d_ff / 2, bit 5 threshold 0.25,
 *   bits 6-7 the first token (mod vocab).
 * The context has n_ctx <= 4: the KV cache is then proportional to tensors
 * the file really holds, so a small input never makes a large allocation.
 */
#ifndef LZN_FUZZ_FORWARD_H
#define LZN_FUZZ_FORWARD_H

#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "lazyneuron.h"

enum { MAX_CTX = 4 };

/* The context the control byte asks for, or NULL (and no failure) when the
 * request does not suit this model (top_k on a 1-neuron MLP). */
static inline lzn_context *make_context(const lzn_model *model, const lzn_model_info *info,
                                 uint8_t control) {
  lzn_context_params cp = lzn_context_default_params();
  cp.n_ctx = info->max_positions < MAX_CTX ? info->max_positions : MAX_CTX;
  cp.mlp_mode = (lzn_mlp_mode)(control & 3) == 3 ? LZN_MLP_AUTO : (lzn_mlp_mode)(control & 3);
  cp.auto_crossover = (control & 3) == 0 ? 0.5f : 0.0f;
  if (control & 16) cp.top_k = info->d_ff / 2;
  if (control & 32) cp.threshold = 0.25f;
  lzn_context *ctx = NULL;
  const lzn_status s = lzn_context_create(model, &cp, &ctx);
  if (s != LZN_OK) fprintf(stderr, "lzn_context_create: %s\n", lzn_last_error());
  FUZZ_CHECK(s == LZN_OK);
  return ctx;
}

static inline void run_forward(const lzn_model *model, uint8_t control) {
  lzn_model_info info = {.struct_size = sizeof info};
  FUZZ_CHECK(lzn_model_get_info(model, &info) == LZN_OK);
  FUZZ_CHECK(info.n_layers >= 1 && info.d_model >= 1 && info.vocab_size >= 1);
  lzn_context *ctx = make_context(model, &info, control);
  const int n_ctx = info.max_positions < MAX_CTX ? info.max_positions : MAX_CTX;
  const int n_tokens = (control & 4) && n_ctx >= 2 ? 2 : 1;
  const lzn_logits_mode mode = (control & 8) ? LZN_LOGITS_ALL : LZN_LOGITS_LAST;
  const int32_t tokens[2] = {(control >> 6) % info.vocab_size, info.vocab_size - 1};
  float *logits = malloc(sizeof(float) * (size_t)info.vocab_size * (size_t)n_tokens);
  FUZZ_CHECK(logits != NULL);
  const lzn_status s = lzn_forward(ctx, tokens, n_tokens, logits, mode);
  if (s != LZN_OK) fprintf(stderr, "lzn_forward: %s\n", lzn_last_error());
  FUZZ_CHECK(s == LZN_OK);
  FUZZ_CHECK(lzn_context_n_past(ctx) == n_tokens);
  free(logits);
  lzn_context_free(ctx);
}

#endif /* LZN_FUZZ_FORWARD_H */
