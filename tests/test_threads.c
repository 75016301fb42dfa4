/*
 * test_threads.c: one model shared by several contexts in several threads.
 *
 * The model is read-only after load, so each thread decoding its own
 * sequence must get bitwise the logits it gets alone. Run under
 * ThreadSanitizer by `make tsan`.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "lazyneuron.h"
#include "testutil.h"

#define N_WORKERS 4
#define SEQ_LEN 24

typedef struct worker {
  const lzn_model *model;
  lzn_mlp_mode mode;
  int n_threads;
  int32_t tokens[SEQ_LEN];
  float *logits; /* [SEQ_LEN][vocab]: one decode step per row */
  lzn_status status;
} worker;

/* Prefill 4 tokens, then decode the rest one by one. */
static void *decode(void *arg) {
  worker *w = arg;
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_model_get_info(w->model, &info);
  lzn_context_params p = lzn_context_default_params();
  p.mlp_mode = w->mode;
  p.n_threads = w->n_threads;
  p.n_ctx = SEQ_LEN;
  p.auto_crossover = 0.3f; /* a fixed choice: measured ones differ per context */
  p.kv_type = LZN_KV_F32;   /* exact K/V, like the reference it is compared with */
  lzn_context *ctx = NULL;
  w->status = lzn_context_create(w->model, &p, &ctx);
  if (w->status != LZN_OK) return NULL;
  w->status = lzn_forward(ctx, w->tokens, 4, w->logits, LZN_LOGITS_ALL);
  for (int t = 4; t < SEQ_LEN && w->status == LZN_OK; t++)
    w->status = lzn_forward(ctx, &w->tokens[t], 1, w->logits + (size_t)t * info.vocab_size,
                            LZN_LOGITS_LAST);
  lzn_context_free(ctx);
  return NULL;
}

/* The fixture's model (tests/data, or $LZN_TEST_DATA) and its info. */
static lzn_model *load_fixture(const char *fixture, lzn_model_info *info) {
  char path[512];
  const char *dir = getenv("LZN_TEST_DATA");
  snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "tests/data", fixture);
  lzn_model *model = NULL;
  ck_assert_int_eq(lzn_model_load(path, NULL, &model), LZN_OK);
  *info = (lzn_model_info){.struct_size = sizeof *info};
  ck_assert_int_eq(lzn_model_get_info(model, info), LZN_OK);
  return model;
}

static void run_shared(const char *fixture, int n_threads_per_context) {
  lzn_model_info info;
  lzn_model *model = load_fixture(fixture, &info);
  const size_t n_logits = (size_t)SEQ_LEN * info.vocab_size;

  worker alone[N_WORKERS], together[N_WORKERS];
  test_rng rng = {2024};
  for (int i = 0; i < N_WORKERS; i++) {
    alone[i].model = model;
    alone[i].mode = (lzn_mlp_mode)(i % 3);
    alone[i].n_threads = n_threads_per_context;
    for (int t = 0; t < SEQ_LEN; t++) alone[i].tokens[t] = (int32_t)rng_below(&rng, (uint64_t)info.vocab_size);
    together[i] = alone[i];
    alone[i].logits = malloc(n_logits * sizeof(float));
    together[i].logits = malloc(n_logits * sizeof(float));
  }
  for (int i = 0; i < N_WORKERS; i++) {
    decode(&alone[i]);
    ck_assert_msg(alone[i].status == LZN_OK, "%s", lzn_last_error());
  }
  pthread_t threads[N_WORKERS];
  for (int i = 0; i < N_WORKERS; i++)
    ck_assert_int_eq(pthread_create(&threads[i], NULL, decode, &together[i]), 0);
  for (int i = 0; i < N_WORKERS; i++) pthread_join(threads[i], NULL);
  for (int i = 0; i < N_WORKERS; i++) {
    ck_assert_int_eq(together[i].status, LZN_OK);
    ck_assert_msg(memcmp(alone[i].logits, together[i].logits, n_logits * sizeof(float)) == 0,
                  "%s worker %d: logits differ when run concurrently", fixture, i);
    free(alone[i].logits), free(together[i].logits);
  }
  lzn_model_free(model);
}

/* Contexts of 2 threads stepped in turn from one thread borrow the model's
 * shared pool call after call (linalg/pool.h) and the prefill of one runs
 * between the decode steps of the others: each gets bitwise the logits of
 * a context of 1 thread run alone. */
static void run_in_turn(const char *fixture) {
  lzn_model_info info;
  lzn_model *model = load_fixture(fixture, &info);
  const size_t n_logits = (size_t)SEQ_LEN * info.vocab_size;
  worker alone[N_WORKERS];
  lzn_context *ctxs[N_WORKERS];
  float *logits[N_WORKERS];
  test_rng rng = {77};
  for (int i = 0; i < N_WORKERS; i++) {
    alone[i] = (worker){.model = model, .mode = (lzn_mlp_mode)(i % 3), .n_threads = 1};
    for (int t = 0; t < SEQ_LEN; t++) alone[i].tokens[t] = (int32_t)rng_below(&rng, (uint64_t)info.vocab_size);
    alone[i].logits = malloc(n_logits * sizeof(float));
    logits[i] = malloc(n_logits * sizeof(float));
    decode(&alone[i]);
    ck_assert_msg(alone[i].status == LZN_OK, "%s", lzn_last_error());
    lzn_context_params p = lzn_context_default_params();
    p.mlp_mode = alone[i].mode, p.n_threads = 2, p.n_ctx = SEQ_LEN, p.auto_crossover = 0.3f, p.kv_type = LZN_KV_F32;
    ck_assert_int_eq(lzn_context_create(model, &p, &ctxs[i]), LZN_OK);
  }
  /* Context i starts its prompt at round i: prompts between decode steps. */
  for (int round = 0; round < SEQ_LEN + N_WORKERS; round++)
    for (int i = 0; i < N_WORKERS; i++) {
      const int t = round - i; /* < 0: not started; 0: the 4-token prompt; then one token each */
      if (t == 0)
        ck_assert_int_eq(lzn_forward(ctxs[i], alone[i].tokens, 4, logits[i], LZN_LOGITS_ALL), LZN_OK);
      else if (t > 0 && t + 3 < SEQ_LEN)
        ck_assert_int_eq(lzn_forward(ctxs[i], &alone[i].tokens[t + 3], 1, logits[i] + (size_t)(t + 3) * info.vocab_size,
                                     LZN_LOGITS_LAST), LZN_OK);
    }
  for (int i = 0; i < N_WORKERS; i++) {
    ck_assert_msg(memcmp(alone[i].logits, logits[i], n_logits * sizeof(float)) == 0,
                  "%s context %d: logits differ when stepped in turn at 2 threads", fixture, i);
    lzn_context_free(ctxs[i]);
    free(alone[i].logits), free(logits[i]);
  }
  lzn_model_free(model);
}

START_TEST(contexts_in_turn_share_a_pool) { run_in_turn("opt-preln"); }
END_TEST

START_TEST(shared_model_gives_bitwise_equal_logits) { run_shared("opt-sparse", 1); }
END_TEST

START_TEST(shared_model_with_threads_inside_each_context) { run_shared("opt-preln", 2); }
END_TEST

static Suite *threads_suite(void) {
  Suite *s = suite_create("threads");
  TCase *tc = tcase_create("shared model");
  tcase_set_timeout(tc, 300); /* slow under ThreadSanitizer */
  tcase_add_test(tc, shared_model_gives_bitwise_equal_logits);
  tcase_add_test(tc, shared_model_with_threads_inside_each_context);
  tcase_add_test(tc, contexts_in_turn_share_a_pool);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(threads_suite()); }
