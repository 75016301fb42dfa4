/*
 * test_batch.c: lzn_forward_batch, N sequences advanced one token each in
 * one call, against the PyTorch reference and against N separate decodes,
 * with the sequences at different positions; lzn_forward_ragged, prompts'
 * chunks beside single tokens in one call, in one step and split over
 * steps; and every way a batch can be wrong, each leaving every context as
 * it was.
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

/* Three sequences of the reference's tokens in one ragged call: B (the
 * lead) at position 1 decodes one token, A prefills its first T/2 tokens,
 * C at position 2 prefills all but the last. Each one's logits are the
 * reference's at its last token and what the same context given the same
 * tokens alone gives; then one lzn_forward_batch step of all three matches
 * the reference at the next position, which needs every row's K and V in
 * the caches. _i odd: B's n_ctx is 3, so the call runs in steps of 3 rows
 * and A and C are split between steps. */
START_TEST(ragged_matches_reference_and_alone) {
  const char *name = fixtures[_i / 6];
  const lzn_mlp_mode mode = modes[(_i / 2) % 3];
  const int split = _i % 2;
  reference r;
  load_reference(name, &r);
  lzn_model *model = load_model(r.path);
  const int t = r.n_tokens, n_a = t / 2, n_c = t - 3;
  lzn_context *b = make_context_n_ctx(model, mode, 1, split ? 3 : 0), *a = make_context(model, mode, 1),
              *c = make_context(model, mode, 1);
  lzn_context *b1 = make_context(model, mode, 1), *a1 = make_context(model, mode, 1),
              *c1 = make_context(model, mode, 1);
  float *logits = malloc(sizeof(float) * 3 * (size_t)r.vocab), *one = malloc(sizeof(float) * (size_t)r.vocab);
  ck_assert_int_eq(lzn_forward(b, r.tokens, 1, one, LZN_LOGITS_LAST), LZN_OK);
  ck_assert_int_eq(lzn_forward(c, r.tokens, 2, one, LZN_LOGITS_LAST), LZN_OK);
  ck_assert_int_eq(lzn_forward(b1, r.tokens, 1, one, LZN_LOGITS_LAST), LZN_OK);
  ck_assert_int_eq(lzn_forward(c1, r.tokens, 2, one, LZN_LOGITS_LAST), LZN_OK);
  int32_t tokens[3 * 256];
  int n = 0;
  tokens[n++] = r.tokens[1];
  for (int k = 0; k < n_a; k++) tokens[n++] = r.tokens[k];
  for (int k = 0; k < n_c; k++) tokens[n++] = r.tokens[2 + k];
  lzn_context *ctxs[3] = {b, a, c}, *alone[3] = {b1, a1, c1};
  const int counts[3] = {1, n_a, n_c}, first[3] = {1, 0, 2};
  const lzn_status s = lzn_forward_ragged(ctxs, tokens, counts, 3, logits);
  ck_assert_msg(s == LZN_OK, "%s: %s", lzn_status_str(s), lzn_last_error());
  for (int i = 0, at = 0; i < 3; at += counts[i], i++) {
    const int last = first[i] + counts[i] - 1; /* the position of its last token */
    ck_assert_int_eq(lzn_context_n_past(ctxs[i]), last + 1);
    const float *got = logits + (size_t)i * r.vocab;
    const double e = max_abs_diff(got, r.logits + (size_t)last * r.vocab, (size_t)r.vocab) / r.scale;
    ck_assert_msg(e <= TOL_REFERENCE, "%s mode %d split %d seq %d: vs torch %.3g", name, (int)mode, split, i, e);
    ck_assert_int_eq(lzn_forward(alone[i], tokens + at, counts[i], one, LZN_LOGITS_LAST), LZN_OK);
    const double d = max_abs_diff(got, one, (size_t)r.vocab) / r.scale;
    ck_assert_msg(d <= TOL_BATCH_VS_ALONE, "%s mode %d split %d seq %d: vs alone %.3g", name, (int)mode, split, i, d);
  }
  const int32_t next[3] = {r.tokens[2], r.tokens[n_a], r.tokens[t - 1]};
  const int next_pos[3] = {2, n_a, t - 1};
  ck_assert_int_eq(lzn_forward_batch(ctxs, next, 3, logits), LZN_OK);
  for (int i = 0; i < 3; i++) {
    const double e =
        max_abs_diff(logits + (size_t)i * r.vocab, r.logits + (size_t)next_pos[i] * r.vocab, (size_t)r.vocab) / r.scale;
    ck_assert_msg(e <= TOL_REFERENCE, "%s mode %d split %d seq %d next: vs torch %.3g", name, (int)mode, split, i, e);
  }
  for (int i = 0; i < 3; i++) lzn_context_free(ctxs[i]), lzn_context_free(alone[i]);
  free(logits), free(one), free(r.logits);
  lzn_model_free(model);
}
END_TEST

/* Every way a ragged call can be wrong: a specific status naming what,
 * and no context advanced. */
START_TEST(bad_ragged_calls_change_nothing) {
  reference r;
  load_reference("opt-preln", &r);
  lzn_model *model = load_model(r.path);
  lzn_context_params p = lzn_context_default_params();
  p.n_ctx = 4;
  lzn_context *a = NULL, *b = NULL;
  ck_assert_int_eq(lzn_context_create(model, &p, &a), LZN_OK);
  ck_assert_int_eq(lzn_context_create(model, &p, &b), LZN_OK);
  float *logits = malloc(sizeof(float) * 2 * (size_t)r.vocab);
  ck_assert_int_eq(lzn_forward(a, r.tokens, 1, logits, LZN_LOGITS_LAST), LZN_OK);
  lzn_context *ok[2] = {a, b}, *twice[2] = {a, a};
  const int32_t tokens[5] = {5, 6, 7, 8, 1 << 20};
#define EXPECT_RAGGED(list, counts_, n_, status, words)                                           \
  do {                                                                                            \
    ck_assert_int_eq(lzn_forward_ragged(list, tokens, counts_, n_, logits), status);              \
    ck_assert_msg(strstr(lzn_last_error(), words), "\"%s\" lacks \"%s\"", lzn_last_error(), words); \
    ck_assert_int_eq(lzn_context_n_past(a), 1);                                                   \
    ck_assert_int_eq(lzn_context_n_past(b), 0);                                                   \
  } while (0)
  const int good[2] = {1, 3}, zero[2] = {1, 0}, negative[2] = {-1, 1}, too_many[2] = {4, 1}, into_bad[2] = {2, 3};
  EXPECT_RAGGED(ok, NULL, 2, LZN_ERR_INVALID_ARG, "n_tokens is NULL");
  EXPECT_RAGGED(ok, zero, 2, LZN_ERR_INVALID_ARG, "n_tokens[1] = 0");
  EXPECT_RAGGED(ok, negative, 2, LZN_ERR_INVALID_ARG, "n_tokens[0] = -1");
  EXPECT_RAGGED(ok, good, 0, LZN_ERR_INVALID_ARG, "n = 0");
  EXPECT_RAGGED(twice, good, 2, LZN_ERR_INVALID_ARG, "same context");
  EXPECT_RAGGED(ok, too_many, 2, LZN_ERR_CONTEXT_FULL, "ctxs[0]"); /* 1 + 4 tokens in n_ctx = 4 */
  EXPECT_RAGGED(ok, into_bad, 2, LZN_ERR_INVALID_ARG, "tokens[4]");
  ck_assert_int_eq(lzn_forward_ragged(ok, NULL, good, 2, logits), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_forward_ragged(ok, tokens, good, 2, NULL), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_forward_ragged(NULL, tokens, good, 2, logits), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_context_n_past(a), 1);
  ck_assert_int_eq(lzn_forward_ragged(ok, tokens, good, 2, logits), LZN_OK);
  ck_assert_int_eq(lzn_context_n_past(a), 2);
  ck_assert_int_eq(lzn_context_n_past(b), 3);
  free(logits), free(r.logits);
  lzn_context_free(a), lzn_context_free(b);
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
  tcase_add_loop_test(ref, ragged_matches_reference_and_alone, 0, N_FIXTURES * 6);
  suite_add_tcase(s, ref);
  TCase *bad = tcase_create("bad input");
  tcase_add_test(bad, bad_batches_change_nothing);
  tcase_add_test(bad, bad_ragged_calls_change_nothing);
  suite_add_tcase(s, bad);
  return s;
}

int main(void) { return run_suite(batch_suite()); }
