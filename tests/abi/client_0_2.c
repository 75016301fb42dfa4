/*
 * client_0_2.c: a program as it was written and built against the 0.2
 * header (tests/abi/lazyneuron-0.2.h, a committed copy), run against this
 * library (tests/abi/run.sh): lazyneuron.h promises that it keeps working
 * ("ABI"). It uses every struct whose layout or handling changed since:
 * params by value at their 0.2 size and at 0.1's, the output structs that
 * 0.3 gave a struct_size (0.2 programs bind their 0.2 versions), and checks
 * what it gets against models/tiny-opt's config and what it ran.
 *
 *   client_0_2 MODEL_DIR     exit 0 and "abi 0.2 client: ok" when all holds
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lazyneuron-0.2.h"

static int failures = 0;
#define EXPECT(cond, ...)                           \
  do {                                              \
    if (!(cond)) {                                  \
      fprintf(stderr, "client_0_2: FAIL: " __VA_ARGS__); \
      fprintf(stderr, "\n");                        \
      failures++;                                   \
    }                                               \
  } while (0)

/* 0.1's lzn_context_params: 0.2 added its last four fields. */
typedef struct context_params_0_1 {
  size_t struct_size;
  int n_ctx, n_threads;
  lzn_mlp_mode mlp_mode;
  float auto_crossover;
  int collect_stats, top_k;
  float threshold;
} context_params_0_1;

int main(int argc, char **argv) {
  if (argc != 2) return fprintf(stderr, "usage: client_0_2 MODEL_DIR\n"), 2;
  EXPECT(lzn_version_number() / 10000 == 0, "major version %u", lzn_version_number());

  lzn_model_params mp = lzn_model_default_params();
  EXPECT(mp.struct_size == sizeof mp && sizeof mp == 48, "model params: %zu bytes", mp.struct_size);
  lzn_model *model = NULL;
  lzn_status s = lzn_model_load(argv[1], &mp, &model);
  if (s != LZN_OK) return fprintf(stderr, "client_0_2: load: %s\n", lzn_last_error()), 1;

  /* 0.2's lzn_model_info, no struct_size: the LZN_0.2 version fills it. */
  lzn_model_info info;
  memset(&info, 0xa5, sizeof info);
  EXPECT(lzn_model_get_info(model, &info) == LZN_OK, "get_info: %s", lzn_last_error());
  EXPECT(info.n_layers == 4 && info.d_model == 128 && info.d_ff == 512 && info.n_heads == 4 &&
             info.vocab_size == 256 && info.max_positions == 256,
         "info: %d layers, d %d, ff %d, %d heads, vocab %d, %d positions", info.n_layers, info.d_model,
         info.d_ff, info.n_heads, info.vocab_size, info.max_positions);
  EXPECT(info.weight_type == LZN_WEIGHTS_F32 && info.weight_bytes > 0 && info.n_kv_heads == 4 &&
             info.head_dim == 32 && info.gated == 0 && info.architecture && strcmp(info.architecture, "opt") == 0 &&
             info.has_predictor == 4,
         "info: type %d, %lld bytes, %d KV heads, head_dim %d, gated %d, arch %s, predictor %d",
         (int)info.weight_type, (long long)info.weight_bytes, info.n_kv_heads, info.head_dim, info.gated,
         info.architecture ? info.architecture : "(null)", info.has_predictor);

  const lzn_tokenizer *tok = NULL;
  EXPECT(lzn_model_get_tokenizer(model, &tok) == LZN_OK, "tokenizer: %s", lzn_last_error());
  lzn_tokenizer_info ti;
  memset(&ti, 0xa5, sizeof ti);
  EXPECT(tok && lzn_tokenizer_get_info(tok, &ti) == LZN_OK, "tokenizer info: %s", lzn_last_error());
  EXPECT(ti.vocab_size == 256 && ti.bos_id == -1 && ti.eos_id == 2 && ti.add_bos == 0 &&
             ti.kind && strcmp(ti.kind, "byte-level") == 0,
         "tokenizer info: vocab %d, bos %d, eos %d, add_bos %d", ti.vocab_size, ti.bos_id, ti.eos_id, ti.add_bos);

  /* Context params at 0.2's size (by value) and at 0.1's (its padding set
   * to garbage where 0.2 put use_predictor: it must not be read). */
  lzn_context_params cp = lzn_context_default_params();
  EXPECT(cp.struct_size == sizeof cp && sizeof cp == 56, "context params: %zu bytes", cp.struct_size);
  cp.mlp_mode = LZN_MLP_SPARSE, cp.kv_type = LZN_KV_F32;
  lzn_context *ctx = NULL;
  EXPECT(lzn_context_create(model, &cp, &ctx) == LZN_OK, "context (0.2 params): %s", lzn_last_error());
  unsigned char old[sizeof(context_params_0_1) + 16];
  memset(old, 0x7f, sizeof old);
  context_params_0_1 *p01 = (context_params_0_1 *)old;
  *p01 = (context_params_0_1){sizeof *p01, 64, 1, LZN_MLP_SPARSE, 0.0f, 1, 0, 0.0f};
  memset((char *)p01 + offsetof(context_params_0_1, threshold) + sizeof(float), 0x7f,
         sizeof *p01 - offsetof(context_params_0_1, threshold) - sizeof(float));
  lzn_context *ctx01 = NULL;
  EXPECT(lzn_context_create(model, (const lzn_context_params *)(void *)p01, &ctx01) == LZN_OK,
         "context (0.1 params): %s", lzn_last_error());

  const int32_t tokens[] = {'T', 'h', 'e', ' ', 'm', 'e', 'a', 'n'};
  const int n = (int)(sizeof tokens / sizeof tokens[0]);
  float *logits = malloc(sizeof(float) * 256), *logits01 = malloc(sizeof(float) * 256);
  EXPECT(ctx && lzn_forward(ctx, tokens, n, logits, LZN_LOGITS_LAST) == LZN_OK, "forward: %s", lzn_last_error());
  EXPECT(ctx01 && lzn_forward(ctx01, tokens, n, logits01, LZN_LOGITS_LAST) == LZN_OK, "forward (0.1 params): %s",
         lzn_last_error());
  /* 0.1's params take 0.2's defaults for the rest: the predictor on and an
   * F16 KV cache, so close to the F32 one but not equal. */
  float worst = 0.0f;
  for (int i = 0; i < 256; i++) {
    const float e = logits[i] > logits01[i] ? logits[i] - logits01[i] : logits01[i] - logits[i];
    worst = e > worst ? e : worst;
  }
  EXPECT(worst < 1.0f, "0.1 params: logits %g from 0.2's", (double)worst);

  /* 0.2's stats arrays, no struct_size: the LZN_0.2 versions fill them. */
  lzn_layer_stats st[6];
  memset(st, 0xa5, sizeof st);
  EXPECT(lzn_context_stats(ctx, st, 6) == LZN_OK, "stats: %s", lzn_last_error());
  for (int l = 0; l < 4; l++)
    EXPECT(st[l].tokens == n && st[l].active_fraction > 0.0 && st[l].active_fraction < 0.5 &&
               st[l].sparse_calls == 1 && st[l].dense_calls == 0 && st[l].flops_executed < st[l].flops_dense &&
               st[l].union_fraction >= st[l].active_fraction,
           "stats layer %d: %lld tokens, active %g, calls %lld/%lld", l, (long long)st[l].tokens,
           st[l].active_fraction, (long long)st[l].sparse_calls, (long long)st[l].dense_calls);
  const unsigned char *past = (const unsigned char *)&st[4];
  EXPECT(past[0] == 0xa5 && past[sizeof st[4] - 1] == 0xa5, "stats wrote past the model's 4 layers");
  lzn_predictor_stats ps[4];
  memset(ps, 0xa5, sizeof ps);
  EXPECT(lzn_context_predictor_stats(ctx, ps, 4) == LZN_OK, "predictor stats: %s", lzn_last_error());
  for (int l = 0; l < 4; l++)
    EXPECT(ps[l].tokens == n && ps[l].predicted_fraction > 0.0 && ps[l].predicted_fraction <= 1.0 &&
               ps[l].bytes > 0.0,
           "predictor stats layer %d: %lld tokens, predicted %g", l, (long long)ps[l].tokens,
           ps[l].predicted_fraction);

  lzn_sampler_params sp = lzn_sampler_default_params();
  EXPECT(sp.struct_size == sizeof sp && sizeof sp == 40, "sampler params: %zu bytes", sp.struct_size);
  sp.temperature = 0.0f;
  lzn_sampler *sampler = NULL;
  int32_t next = -1;
  EXPECT(lzn_sampler_create(&sp, 256, &sampler) == LZN_OK && lzn_sampler_sample(sampler, logits, &next) == LZN_OK &&
             next >= 0 && next < 256,
         "sampler: %s", lzn_last_error());

  lzn_sampler_free(sampler);
  free(logits), free(logits01);
  lzn_context_free(ctx01);
  lzn_context_free(ctx);
  lzn_model_free(model);
  if (failures) return fprintf(stderr, "client_0_2: %d failures\n", failures), 1;
  printf("abi 0.2 client: ok\n");
  return 0;
}
