/*
 * test_batch.c: lzn_forward_batch, N sequences advanced one token each in
 * one call, against the PyTorch reference and against N separate decodes,
 * with the sequences at different positions; and every way a batch can be
 * wrong, each leaving every context as it was.
 */
#include <stdio.h>
#include <string.h>

#include "reference.h"

/* fp32 against the float64 reference; the batch against separate decodes:
 * the same arithmetic, the MLP summed over the batch's union in another
 * order. */
#define TOL_REFERENCE 1e-4
#define TOL_BATCH_VS_ALONE 1e-5

static const char *const fixtures[] = {"opt-preln", "opt-postln", "opt-proj", "opt-sparse",
                                       "llama-gqa", "llama-drelu", "llama-mqa", "models/tiny-opt",
                                       "models/tiny-llama"};
#define N_FIXTURES ((int)(sizeof fixtures / sizeof fixtures[0]))
static const int batch_sizes[] = {1, 2, 3, 8};
#define N_SIZES ((int)(sizeof batch_sizes / sizeof batch_sizes[0]))
static const lzn_mlp_mode modes[] = {LZN_MLP_SPARSE, LZN_MLP_DENSE, LZN_MLP_AUTO};

/* Sequence i has consumed tokens[0 .. i) of the reference (so each is at
 * its own position), then a few steps of the batch advance them all; each
 * step's logits are the reference's at that position, and equal what the
 * same context decoding alone gives. */
START_TEST(batch_matches_reference_and_alone) {
  const char *name = fixtures[_i / (N_SIZES * 3)];
  const int n = batch_sizes[(_i / 3) % N_SIZES];
  const lzn_mlp_mode mode = modes[_i % 3];
  reference r;
  load_reference(name, &r);
  lzn_model *model = load_model(r.path);
  lzn_context *batch[8], *alone[8];
  float *one = malloc(sizeof(float) * (size_t)r.vocab);
  for (int i = 0; i < n; i++) {
    batch[i] = make_context(model, mode, 1 + (i == 0));
    alone[i] = make_context(model, mode, 1);
    if (i > 0) {
      ck_assert_int_eq(lzn_forward(batch[i], r.tokens, i, one, LZN_LOGITS_LAST), LZN_OK);
      ck_assert_int_eq(lzn_forward(alone[i], r.tokens, i, one, LZN_LOGITS_LAST), LZN_OK);
    }
  }
  float *logits = malloc(sizeof(float) * (size_t)n * (size_t)r.vocab);
  const int steps = r.n_tokens - n < 3 ? r.n_tokens - n : 3;
  for (int step = 0; step < steps; step++) {
    int32_t tokens[8];
    for (int i = 0; i < n; i++) tokens[i] = r.tokens[i + step];
    ck_assert_int_eq(lzn_forward_batch(batch, tokens, n, logits), LZN_OK);
    for (int i = 0; i < n; i++) {
      const int pos = i + step;
      ck_assert_int_eq(lzn_context_n_past(batch[i]), pos + 1);
      const float *got = logits + (size_t)i * r.vocab;
      const double e = max_abs_diff(got, r.logits + (size_t)pos * r.vocab, (size_t)r.vocab) / r.scale;
      ck_assert_msg(e <= TOL_REFERENCE, "%s n=%d mode %d seq %d pos %d: vs torch %.3g", name, n, (int)mode, i,
                    pos, e);
      ck_assert_int_eq(lzn_forward(alone[i], &tokens[i], 1, one, LZN_LOGITS_LAST), LZN_OK);
      const double a = max_abs_diff(got, one, (size_t)r.vocab) / r.scale;
      ck_assert_msg(a <= TOL_BATCH_VS_ALONE, "%s n=%d seq %d: vs alone %.3g", name, n, i, a);
    }
  }
  for (int i = 0; i < n; i++) lzn_context_free(batch[i]), lzn_context_free(alone[i]);
  free(logits), free(one), free(r.logits);
  lzn_model_free(model);
}
END_TEST

START_TEST(bad_batches_change_nothing) {
  reference r;
  load_reference("opt-preln", &r);
  lzn_model *model = load_model(r.path), *other = load_model(r.path);
  lzn_context_params p = lzn_context_default_params();
  p.n_ctx = 4;
  lzn_context *a = NULL, *b = NULL, *c = NULL, *full = NULL;
  ck_assert_int_eq(lzn_context_create(model, &p, &a), LZN_OK);
  ck_assert_int_eq(lzn_context_create(model, &p, &b), LZN_OK);
  ck_assert_int_eq(lzn_context_create(other, &p, &c), LZN_OK);
  ck_assert_int_eq(lzn_context_create(model, &p, &full), LZN_OK);
  float *logits = malloc(sizeof(float) * 4 * (size_t)r.vocab);
  ck_assert_int_eq(lzn_forward(full, r.tokens, 4, logits, LZN_LOGITS_LAST), LZN_OK);
  ck_assert_int_eq(lzn_forward(a, r.tokens, 1, logits, LZN_LOGITS_LAST), LZN_OK);
  const int32_t tokens[3] = {5, 6, 7};
#define EXPECT_BATCH(list, n_, status, words)                                                    \
  do {                                                                                          \
    ck_assert_int_eq(lzn_forward_batch(list, tokens, n_, logits), status);                      \
    ck_assert_msg(strstr(lzn_last_error(), words), "\"%s\" lacks \"%s\"", lzn_last_error(), words); \
    ck_assert_int_eq(lzn_context_n_past(a), 1);                                                 \
    ck_assert_int_eq(lzn_context_n_past(b), 0);                                                 \
  } while (0)
  lzn_context *repeated[2] = {a, a}, *mixed[2] = {a, c}, *with_null[2] = {a, NULL}, *with_full[3] = {a, b, full};
  lzn_context *ok[2] = {a, b};
  EXPECT_BATCH(repeated, 2, LZN_ERR_INVALID_ARG, "same context");
  EXPECT_BATCH(mixed, 2, LZN_ERR_INVALID_ARG, "another model");
  EXPECT_BATCH(with_null, 2, LZN_ERR_INVALID_ARG, "ctxs[1] is NULL");
  EXPECT_BATCH(with_full, 3, LZN_ERR_CONTEXT_FULL, "ctxs[2]");
  EXPECT_BATCH(ok, 0, LZN_ERR_INVALID_ARG, "n = 0");
  const int32_t bad_tokens[2] = {5, 1 << 20};
  ck_assert_int_eq(lzn_forward_batch(ok, bad_tokens, 2, logits), LZN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "tokens[1]"));
  ck_assert_int_eq(lzn_forward_batch(NULL, tokens, 2, logits), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_forward_batch(ok, NULL, 2, logits), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_forward_batch(ok, tokens, 2, NULL), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_context_n_past(a), 1);
  /* And a good one advances both. */
  ck_assert_int_eq(lzn_forward_batch(ok, tokens, 2, logits), LZN_OK);
  ck_assert_int_eq(lzn_context_n_past(a), 2);
  ck_assert_int_eq(lzn_context_n_past(b), 1);
  free(logits);
  free(r.logits);
  lzn_context_free(a), lzn_context_free(b), lzn_context_free(c), lzn_context_free(full);
  lzn_model_free(model), lzn_model_free(other);
}
END_TEST

static Suite *batch_suite(void) {
  Suite *s = suite_create("batch");
  TCase *ref = tcase_create("reference");
  tcase_set_timeout(ref, 60);
  tcase_add_loop_test(ref, batch_matches_reference_and_alone, 0, N_FIXTURES * N_SIZES * 3);
  suite_add_tcase(s, ref);
  TCase *bad = tcase_create("bad input");
  tcase_add_test(bad, bad_batches_change_nothing);
  suite_add_tcase(s, bad);
  return s;
}

int main(void) { return run_suite(batch_suite()); }
