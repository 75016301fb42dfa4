/*
 * test_state.c: lzn_context_state_size / save / load (lib/model/state.c):
 * a sequence saved and loaded into another context continues exactly as
 * the original does (the same logits, bit for bit), on both architectures
 * and every KV type; and each way a state can be wrong has its status.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lazyneuron.h"
#include "testutil.h"

static const char *const models[] = {"models/tiny-opt", "models/tiny-llama"};

static lzn_context *context(lzn_model *m, int n_ctx, lzn_kv_type kv) {
  lzn_context_params cp = lzn_context_default_params();
  cp.n_ctx = n_ctx, cp.kv_type = kv;
  lzn_context *c = NULL;
  ck_assert_msg(lzn_context_create(m, &cp, &c) == LZN_OK, "%s", lzn_last_error());
  return c;
}

START_TEST(saved_sequence_continues_exactly) {
  lzn_model *m = NULL;
  ck_assert_int_eq(lzn_model_load(models[_i / 4], NULL, &m), LZN_OK);
  const lzn_kv_type kv = (lzn_kv_type)(_i % 4);
  lzn_context *a = context(m, 64, kv), *b = context(m, 64, kv);
  int32_t prompt[20];
  for (int i = 0; i < 20; i++) prompt[i] = "Never trust a robot."[i];
  float la[256], lb[256];
  ck_assert_int_eq(lzn_forward(a, prompt, 20, la, LZN_LOGITS_LAST), LZN_OK);
  const int64_t size = lzn_context_state_size(a);
  ck_assert_int_gt(size, 0);
  char *state = malloc((size_t)size);
  size_t written = 0;
  ck_assert_int_eq(lzn_context_state_save(a, state, (size_t)size, &written), LZN_OK);
  ck_assert_int_eq((int64_t)written, size);
  ck_assert_int_eq(lzn_forward(b, prompt, 3, lb, LZN_LOGITS_LAST), LZN_OK); /* something to replace */
  ck_assert_msg(lzn_context_state_load(b, state, written) == LZN_OK, "%s", lzn_last_error());
  ck_assert_int_eq(lzn_context_n_past(b), 20);
  for (int step = 0; step < 5; step++) {
    const int32_t next = 'a' + step;
    ck_assert_int_eq(lzn_forward(a, &next, 1, la, LZN_LOGITS_LAST), LZN_OK);
    ck_assert_int_eq(lzn_forward(b, &next, 1, lb, LZN_LOGITS_LAST), LZN_OK);
    ck_assert(memcmp(la, lb, sizeof la) == 0);
  }
  /* A state only holds its tokens: a shorter sequence saves fewer bytes. */
  ck_assert_int_eq(lzn_context_truncate(a, 5), LZN_OK);
  ck_assert_int_lt(lzn_context_state_size(a), size);
  free(state);
  lzn_context_free(a), lzn_context_free(b);
  lzn_model_free(m);
}
END_TEST

START_TEST(wrong_states_are_refused) {
  lzn_model *opt = NULL, *llama = NULL;
  ck_assert_int_eq(lzn_model_load(models[0], NULL, &opt), LZN_OK);
  ck_assert_int_eq(lzn_model_load(models[1], NULL, &llama), LZN_OK);
  lzn_context *a = context(opt, 64, LZN_KV_F16);
  int32_t prompt[10] = {'H', 'e', 'l', 'l', 'o', ',', ' ', 'w', 'o', 'r'};
  float logits[256];
  ck_assert_int_eq(lzn_forward(a, prompt, 10, logits, LZN_LOGITS_LAST), LZN_OK);
  const size_t size = (size_t)lzn_context_state_size(a);
  char *state = malloc(size), *bad = malloc(size + 1);
  size_t written = 0;
  ck_assert_int_eq(lzn_context_state_save(a, state, size - 1, &written), LZN_ERR_INVALID_ARG);
  ck_assert_uint_eq(written, size); /* the size it needs */
  ck_assert_int_eq(lzn_context_state_save(a, NULL, 0, &written), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_context_state_save(a, state, size, NULL), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_context_state_save(a, state, size, &written), LZN_OK);
  ck_assert_int_eq(lzn_context_state_size(NULL), -1);

  lzn_context *b = context(opt, 64, LZN_KV_F16);
  ck_assert_int_eq(lzn_context_state_load(b, state, size - 1), LZN_ERR_FORMAT); /* short */
  memcpy(bad, state, size), bad[size] = 0;
  ck_assert_int_eq(lzn_context_state_load(b, bad, size + 1), LZN_ERR_FORMAT);   /* long */
  ck_assert_int_eq(lzn_context_state_load(b, state, 10), LZN_ERR_FORMAT);       /* not even a header */
  memcpy(bad, state, size), bad[0] = 'X';
  ck_assert_int_eq(lzn_context_state_load(b, bad, size), LZN_ERR_FORMAT);       /* magic */
  memcpy(bad, state, size), bad[8] = 7;
  ck_assert_int_eq(lzn_context_state_load(b, bad, size), LZN_ERR_UNSUPPORTED);  /* version */
  memcpy(bad, state, size), bad[size - 1] ^= 1;
  ck_assert_int_eq(lzn_context_state_load(b, bad, size), LZN_ERR_FORMAT);       /* checksum */
  ck_assert_msg(strstr(lzn_last_error(), "checksum"), "%s", lzn_last_error());
  ck_assert_int_eq(lzn_context_n_past(b), 0); /* nothing changed */

  lzn_context *other_kv = context(opt, 64, LZN_KV_F32);
  ck_assert_int_eq(lzn_context_state_load(other_kv, state, size), LZN_ERR_INVALID_ARG);
  ck_assert_msg(strstr(lzn_last_error(), "kv_type"), "%s", lzn_last_error());
  lzn_context *other_model = context(llama, 64, LZN_KV_F16);
  ck_assert_int_eq(lzn_context_state_load(other_model, state, size), LZN_ERR_INVALID_ARG);
  ck_assert_msg(strstr(lzn_last_error(), "another model"), "%s", lzn_last_error());
  lzn_context *tiny = context(opt, 8, LZN_KV_F16);
  ck_assert_int_eq(lzn_context_state_load(tiny, state, size), LZN_ERR_CONTEXT_FULL);
  ck_assert_int_eq(lzn_context_state_load(NULL, state, size), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_context_state_load(b, NULL, 5), LZN_ERR_INVALID_ARG);
  free(state), free(bad);
  lzn_context_free(a), lzn_context_free(b), lzn_context_free(other_kv);
  lzn_context_free(other_model), lzn_context_free(tiny);
  lzn_model_free(opt), lzn_model_free(llama);
}
END_TEST

static Suite *state_suite(void) {
  Suite *s = suite_create("state");
  TCase *tc = tcase_create("save and load");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, saved_sequence_continues_exactly, 0, 8); /* 2 models x 4 KV types */
  tcase_add_test(tc, wrong_states_are_refused);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(state_suite()); }
