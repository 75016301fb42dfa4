/*
 * fuzz_model.c: a whole model from arbitrary bytes, through
 * lzn_model_load_memory, then one forward call when it loads.
 *
 * Input layout (little-endian):
 *   byte 0       control: bits 0-1 mlp mode (0 AUTO at crossover 0.5,
 *                1 SPARSE, 2 DENSE, 3 AUTO with its measured cost model),
 *                bit 2 two tokens instead of one, bit 3 logits of every
 *                token, bit 4 top_k = d_ff / 2, bit 5 threshold 0.25,
 *                bits 6-7 the first token (mod vocab)
 *   bytes 1-2    n = length of config.json
 *   n bytes      config.json
 *   the rest     model.safetensors
 * make_seeds.py writes seeds in this layout.
 *
 * The context has n_ctx <= 4: the KV cache is then proportional to tensors
 * the file really holds, so a small input never makes a large allocation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "model/model.h"

enum { HEADER = 3, MAX_CTX = 4 };

/* The context the control byte asks for, or NULL (and no failure) when the
 * request does not suit this model (top_k on a 1-neuron MLP). */
static lzn_context *make_context(const lzn_model *model, const lzn_model_info *info,
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

static void run_forward(const lzn_model *model, uint8_t control) {
  lzn_model_info info;
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < HEADER) return 0;
  const uint8_t control = data[0];
  const size_t config_len = (size_t)data[1] | (size_t)data[2] << 8;
  if (config_len > size - HEADER) return 0;
  const char *config = (const char *)data + HEADER;
  const uint8_t *weights = data + HEADER + config_len;
  const size_t weights_len = size - HEADER - config_len;
  lzn_model *model = NULL;
  const lzn_status s = lzn_model_load_memory(config, config_len, weights, weights_len, NULL, &model);
  if (getenv("LZN_FUZZ_VERBOSE")) /* for triage: why an input did not load */
    fprintf(stderr, "load: %s%s%s\n", lzn_status_str(s), s ? ": " : "", s ? lzn_last_error() : "");
  if (s != LZN_OK) {
    FUZZ_CHECK(model == NULL && lzn_last_error()[0] != '\0');
    return 0;
  }
  run_forward(model, control);
  lzn_model_free(model);
  return 0;
}
