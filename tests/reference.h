/*
 * reference.h: the PyTorch reference fixtures (tools/fixtures/make_fixtures.py):
 * reading reference.json + logits.f32, loading a model, running all
 * positions. Shared by the suites that check a forward pass against torch
 * (header-only, like testutil.h).
 */
#ifndef LZN_TEST_REFERENCE_H
#define LZN_TEST_REFERENCE_H

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "lazyneuron.h"
#include "testutil.h"

static inline const char *data_dir(void) {
  const char *dir = getenv("LZN_TEST_DATA");
  return dir && *dir ? dir : "tests/data";
}

typedef struct reference {
  char path[512];
  int32_t tokens[256];
  int n_tokens, vocab, n_layers;
  float *logits; /* [n_tokens][vocab] */
  double scale;  /* max |logit|, at least 1 */
  double active_fraction[16];
  int64_t never_fired[16];
} reference;

static inline void load_reference(const char *name, reference *r) {
  memset(r, 0, sizeof *r);
  if (strchr(name, '/')) snprintf(r->path, sizeof r->path, "%s", name);
  else snprintf(r->path, sizeof r->path, "%s/%s", data_dir(), name);
  char file[600];
  snprintf(file, sizeof file, "%s/reference.json", r->path);
  json_error_t err;
  json_t *root = json_load_file(file, 0, &err);
  ck_assert_msg(root != NULL, "%s: %s", file, err.text);
  json_t *tokens = json_object_get(root, "tokens");
  r->n_tokens = (int)json_array_size(tokens);
  ck_assert_int_gt(r->n_tokens, 1);
  ck_assert_int_le(r->n_tokens, 256);
  for (int i = 0; i < r->n_tokens; i++) r->tokens[i] = (int32_t)json_integer_value(json_array_get(tokens, (size_t)i));
  r->vocab = (int)json_integer_value(json_object_get(root, "vocab_size"));
  json_t *fractions = json_object_get(root, "active_fraction"), *dead = json_object_get(root, "never_fired");
  r->n_layers = (int)json_array_size(fractions);
  ck_assert_int_le(r->n_layers, 16);
  for (int l = 0; l < r->n_layers; l++) {
    r->active_fraction[l] = json_number_value(json_array_get(fractions, (size_t)l));
    r->never_fired[l] = json_integer_value(json_array_get(dead, (size_t)l));
  }
  json_decref(root);
  snprintf(file, sizeof file, "%s/logits.f32", r->path);
  FILE *f = fopen(file, "rb");
  ck_assert_ptr_nonnull(f);
  const size_t n = (size_t)r->n_tokens * (size_t)r->vocab;
  r->logits = malloc(n * sizeof(float));
  ck_assert_uint_eq(fread(r->logits, sizeof(float), n, f), n);
  fclose(f);
  r->scale = 1.0;
  for (size_t i = 0; i < n; i++)
    if (fabs(r->logits[i]) > r->scale) r->scale = fabs(r->logits[i]);
}

static inline double max_abs_diff(const float *a, const float *b, size_t n) {
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    const double e = fabs((double)a[i] - (double)b[i]);
    if (!(e <= worst)) worst = e;
  }
  return worst;
}

static inline lzn_model *load_model(const char *path) {
  lzn_model *model = NULL;
  lzn_status s = lzn_model_load(path, NULL, &model);
  ck_assert_msg(s == LZN_OK, "%s: %s: %s", path, lzn_status_str(s), lzn_last_error());
  return model;
}

/* A context of n_ctx positions (0: the model's maximum; its max_batch is
 * min(n_ctx, 256), so a small one splits a call into steps). */
static inline lzn_context *make_context_n_ctx(const lzn_model *model, lzn_mlp_mode mode, int threads, int n_ctx) {
  lzn_context_params p = lzn_context_default_params();
  p.n_ctx = n_ctx;
  p.mlp_mode = mode;
  p.use_predictor = 0; /* the model exactly; tests/test_predictor.c turns it on */
  p.n_threads = threads;
  /* Exact K/V: these suites compare with PyTorch at 1e-4, and an F16 cache
   * adds ~1e-3 (tests/test_attention.c checks each KV type at its own
   * tolerance). */
  p.kv_type = LZN_KV_F32;
  lzn_context *ctx = NULL;
  lzn_status s = lzn_context_create(model, &p, &ctx);
  ck_assert_msg(s == LZN_OK, "%s: %s", lzn_status_str(s), lzn_last_error());
  return ctx;
}

static inline lzn_context *make_context(const lzn_model *model, lzn_mlp_mode mode, int threads) {
  return make_context_n_ctx(model, mode, threads, 0);
}

/* All positions' logits of the reference tokens in one call. */
static inline float *run_all(lzn_context *ctx, const reference *r) {
  float *logits = malloc(sizeof(float) * (size_t)r->n_tokens * (size_t)r->vocab);
  lzn_status s = lzn_forward(ctx, r->tokens, r->n_tokens, logits, LZN_LOGITS_ALL);
  ck_assert_msg(s == LZN_OK, "%s: %s", lzn_status_str(s), lzn_last_error());
  return logits;
}

#endif /* LZN_TEST_REFERENCE_H */
