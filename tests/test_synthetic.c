/*
 * test_synthetic.c: in-memory OPT models with random weights
 * (bench/synthetic.c): they run through the ordinary context and forward, the
 * sparse path agrees with the dense one, the requested fraction of neurons
 * fires and a different set for each token, 2 threads give the bits of one,
 * W_down is held as stored where
 * a checkpoint of the type holds it, and bad arguments get the right
 * status. The models are 2-layer opt-125m: 0.2 s to build.
 */
#include <stdio.h>
#include <string.h>

#include "lazyneuron.h"
#include "model/model.h"
#include "synthetic.h"
#include "testutil.h"

#define N_LAYERS 2
#define N_TOKENS 8
/* The same fp32 arithmetic in another order of summation, through 2 layers
 * and a 50272-row LM head. */
#define TOL_SPARSE_VS_DENSE 1e-4
/* Each layer's measured active fraction against the requested density. */
#define TOL_DENSITY_RELATIVE 0.30

/* Each test builds its own model: a model built once in an unchecked
 * fixture would have run OpenMP (the parallel fill) in the parent, and
 * libgomp's thread pool does not survive the fork into the test. */
static lzn_model *build(float density, int n_layers, uint64_t seed) {
  lzn_model *m = NULL;
  ck_assert_msg(lzn_model_synthetic("opt-125m", density, n_layers, seed, &m) == LZN_OK, "%s",
                lzn_last_error());
  return m;
}

static void random_tokens(int32_t *tokens, int n, uint64_t seed, int vocab) {
  test_rng rng = {seed};
  for (int i = 0; i < n; i++) tokens[i] = (int32_t)rng_below(&rng, (uint64_t)vocab);
}

static lzn_context *new_context(const lzn_model *m, lzn_mlp_mode mode, int n_threads) {
  lzn_context_params p = lzn_context_default_params();
  p.n_ctx = 32;
  p.mlp_mode = mode;
  p.n_threads = n_threads;
  lzn_context *ctx = NULL;
  ck_assert_msg(lzn_context_create(m, &p, &ctx) == LZN_OK, "%s", lzn_last_error());
  return ctx;
}

/* Logits of every position of N_TOKENS random tokens, [N_TOKENS][vocab]. */
static float *run(const lzn_model *m, lzn_mlp_mode mode, lzn_layer_stats *stats) {
  lzn_model_info info = {.struct_size = sizeof info};
  ck_assert_int_eq(lzn_model_get_info(m, &info), LZN_OK);
  int32_t tokens[N_TOKENS];
  random_tokens(tokens, N_TOKENS, 7, info.vocab_size);
  float *logits = malloc(sizeof(float) * N_TOKENS * (size_t)info.vocab_size);
  ck_assert_ptr_nonnull(logits);
  lzn_context *ctx = new_context(m, mode, 1);
  ck_assert_msg(lzn_forward(ctx, tokens, N_TOKENS, logits, LZN_LOGITS_ALL) == LZN_OK, "%s",
                lzn_last_error());
  if (stats) ck_assert_int_eq(lzn_context_stats(ctx, stats, info.n_layers), LZN_OK);
  lzn_context_free(ctx);
  return logits;
}

START_TEST(test_shapes) {
  lzn_model *m = build(0.05f, N_LAYERS, 42);
  lzn_model_info info = {.struct_size = sizeof info};
  ck_assert_int_eq(lzn_model_get_info(m, &info), LZN_OK);
  lzn_model_free(m);
  ck_assert_int_eq(info.n_layers, N_LAYERS);
  ck_assert_int_eq(info.d_model, 768);
  ck_assert_int_eq(info.d_ff, 3072);
  ck_assert_int_eq(info.n_heads, 12);
  ck_assert_int_eq(info.vocab_size, 50272);
  ck_assert_int_eq(info.max_positions, 2048);
}
END_TEST

START_TEST(test_inverse_normal_cdf) {
  /* Quantiles from scipy.stats.norm.ppf. */
  const double p[] = {0.5, 0.95, 0.05, 0.5 + 0.3413447460685429, 0.999, 1e-6};
  const double x[] = {0.0, 1.6448536269514722, -1.6448536269514729, 1.0, 3.090232306167813,
                      -4.753424308822899};
  for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
    ck_assert_msg(fabs(lzn_inverse_normal_cdf(p[i]) - x[i]) < 1e-9 * (1 + fabs(x[i])),
                  "Phi^-1(%g) = %.17g, expected %.17g", p[i], lzn_inverse_normal_cdf(p[i]), x[i]);
  ck_assert(isinf(lzn_inverse_normal_cdf(0.0)) && lzn_inverse_normal_cdf(0.0) < 0);
  ck_assert(isinf(lzn_inverse_normal_cdf(1.0)) && lzn_inverse_normal_cdf(1.0) > 0);
  ck_assert(isnan(lzn_inverse_normal_cdf(-0.1)));
  ck_assert(isnan(lzn_inverse_normal_cdf(NAN)));
}
END_TEST

/* Sparse and AUTO against dense, each logit within a fraction of the
 * largest one; all finite. */
START_TEST(test_sparse_matches_dense) {
  lzn_model *m = build(_i == 0 ? 0.05f : 0.50f, N_LAYERS, 42);
  const size_t n = (size_t)N_TOKENS * 50272;
  float *dense = run(m, LZN_MLP_DENSE, NULL);
  double scale = 0.0;
  for (size_t i = 0; i < n; i++) {
    ck_assert_msg(isfinite(dense[i]), "logit %zu is %g", i, (double)dense[i]);
    if (fabs(dense[i]) > scale) scale = fabs(dense[i]);
  }
  ck_assert(scale > 0.1 && scale < 1e3); /* well-scaled: unit-variance logits */
  const lzn_mlp_mode modes[] = {LZN_MLP_SPARSE, LZN_MLP_AUTO};
  for (size_t k = 0; k < 2; k++) {
    float *other = run(m, modes[k], NULL);
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
      const double e = fabs((double)other[i] - (double)dense[i]);
      if (!(e <= worst)) worst = e;
    }
    ck_assert_msg(worst <= TOL_SPARSE_VS_DENSE * scale, "mode %d: max |diff| %g > %g x %g",
                  (int)modes[k], worst, TOL_SPARSE_VS_DENSE, scale);
    free(other);
  }
  free(dense);
  lzn_model_free(m);
}
END_TEST

/* The fraction that fires is the one asked for, and the set moves from
 * token to token: with one fixed set, never_fired would stay at
 * (1 - density) d_ff; with independent sets it falls to (1 - density)^T. */
START_TEST(test_density) {
  const double density = _i == 0 ? 0.05 : 0.50;
  lzn_model *m = build((float)density, N_LAYERS, 43);
  lzn_layer_stats stats[N_LAYERS] = {{.struct_size = sizeof(lzn_layer_stats)}};
  free(run(m, LZN_MLP_SPARSE, stats));
  lzn_model_free(m);
  for (int l = 0; l < N_LAYERS; l++) {
    ck_assert_int_eq(stats[l].tokens, N_TOKENS);
    const double measured = stats[l].active_fraction;
    ck_assert_msg(fabs(measured - density) <= TOL_DENSITY_RELATIVE * density,
                  "layer %d: active fraction %g, requested %g", l, measured, density);
    const double fixed_set = (1.0 - density) * 3072;
    ck_assert_msg((double)stats[l].never_fired < 0.9 * fixed_set,
                  "layer %d: %lld neurons never fired: the active set hardly changes", l,
                  (long long)stats[l].never_fired);
  }
}
END_TEST

START_TEST(test_density_one) {
  lzn_model *m = build(1.0f, 1, 1);
  lzn_layer_stats stats[1] = {{.struct_size = sizeof(lzn_layer_stats)}};
  free(run(m, LZN_MLP_SPARSE, stats));
  ck_assert_double_eq(stats[0].active_fraction, 1.0);
  ck_assert_int_eq(stats[0].never_fired, 0);
  lzn_model_free(m);
}
END_TEST

/* Same seed, same weights: the logits repeat; another seed, other ones. */
START_TEST(test_deterministic) {
  lzn_model *m1 = build(0.05f, 1, 42), *m2 = build(0.05f, 1, 42), *m3 = build(0.05f, 1, 44);
  float *a = run(m1, LZN_MLP_DENSE, NULL), *b = run(m2, LZN_MLP_DENSE, NULL);
  float *c = run(m3, LZN_MLP_DENSE, NULL);
  ck_assert_int_eq(memcmp(a, b, sizeof(float) * N_TOKENS * 50272), 0);
  ck_assert_int_ne(memcmp(a, c, sizeof(float) * N_TOKENS * 50272), 0);
  free(a);
  free(b);
  free(c);
  lzn_model_free(m1);
  lzn_model_free(m2);
  lzn_model_free(m3);
}
END_TEST

/* Steps of the thread tests: each a few ms of scalar code on a 50272-row
 * LM head, and they run under every ISA and the sanitizers. */
#define THREAD_STEPS 3

/* Logits of THREAD_STEPS random tokens decoded one call each on n_threads. */
static float *run_steps(const lzn_model *m, lzn_mlp_mode mode, int n_threads) {
  lzn_model_info info = {.struct_size = sizeof info};
  ck_assert_int_eq(lzn_model_get_info(m, &info), LZN_OK);
  int32_t tokens[THREAD_STEPS];
  random_tokens(tokens, THREAD_STEPS, 11, info.vocab_size);
  float *logits = malloc(sizeof(float) * THREAD_STEPS * (size_t)info.vocab_size);
  ck_assert_ptr_nonnull(logits);
  lzn_context *ctx = new_context(m, mode, n_threads);
  for (int t = 0; t < THREAD_STEPS; t++)
    ck_assert_msg(lzn_forward(ctx, &tokens[t], 1, logits + (size_t)t * info.vocab_size, LZN_LOGITS_LAST) == LZN_OK,
                  "%s", lzn_last_error());
  lzn_context_free(ctx);
  return logits;
}

/* Decode steps on 2 threads give bitwise the logits of one, sparse and
 * dense, one step at a time and in batches, in each kind of type (element,
 * 8-bit, 4-bit, K-quant): the GEMVs' items start on whole row groups
 * (linalg/linear.c), and the model is large enough that the
 * down-projection cuts its rows into parts (linalg/sparse_down.h: 307
 * active rows of 768 columns at 10 %, all 3072 rows dense). */
static const lzn_weight_type thread_types[] = {LZN_WEIGHTS_F32, LZN_WEIGHTS_BF16, LZN_WEIGHTS_Q8_0, LZN_WEIGHTS_Q4_0,
                                               LZN_WEIGHTS_Q4_K}; /* a K-quant model takes 2 s to build */
#define N_THREAD_TYPES (int)(sizeof thread_types / sizeof thread_types[0])

/* Logits of BATCH sequences stepped together (lzn_forward_batch) for
 * THREAD_STEPS steps on n_threads: [THREAD_STEPS][BATCH][vocab]. */
#define BATCH 4
static float *run_batch(const lzn_model *m, lzn_mlp_mode mode, int n_threads) {
  int32_t tokens[THREAD_STEPS * BATCH];
  random_tokens(tokens, THREAD_STEPS * BATCH, 13, 50272);
  const size_t step = (size_t)BATCH * 50272;
  float *logits = malloc(sizeof(float) * THREAD_STEPS * step);
  ck_assert_ptr_nonnull(logits);
  lzn_context *ctxs[BATCH];
  for (int i = 0; i < BATCH; i++) ctxs[i] = new_context(m, mode, n_threads);
  for (int t = 0; t < THREAD_STEPS; t++)
    ck_assert_msg(lzn_forward_batch(ctxs, tokens + t * BATCH, BATCH, logits + (size_t)t * step) == LZN_OK, "%s",
                  lzn_last_error());
  for (int i = 0; i < BATCH; i++) lzn_context_free(ctxs[i]);
  return logits;
}

START_TEST(test_threads_bitwise) {
  const lzn_weight_type type = thread_types[_i];
  lzn_model *m = NULL;
  ck_assert_msg(lzn_model_synthetic_typed("opt-125m", 0.10f, 1, 5, type, &m) == LZN_OK, "%s", lzn_last_error());
  for (int k = 0; k < 2; k++) {
    const lzn_mlp_mode mode = k == 0 ? LZN_MLP_SPARSE : LZN_MLP_DENSE;
    float *one = run_steps(m, mode, 1), *two = run_steps(m, mode, 2);
    ck_assert_msg(memcmp(one, two, sizeof(float) * THREAD_STEPS * 50272) == 0, "type %d mode %d: 2 threads differ",
                  (int)type, (int)mode);
    free(one), free(two);
    /* A batch of 4 (the own kernels' products: fixed items of rows and of
     * columns, and each token's rows as one token reads them). */
    one = run_batch(m, mode, 1), two = run_batch(m, mode, 2);
    ck_assert_msg(memcmp(one, two, sizeof(float) * THREAD_STEPS * BATCH * 50272) == 0,
                  "type %d mode %d: a batch on 2 threads differs", (int)type, (int)mode);
    free(one), free(two);
  }
  lzn_model_free(m);
}
END_TEST

/* An F32, F16 or BF16 checkpoint holds W_down as stored, which the loader
 * maps in place for the dense path; a synthetic model in those types holds
 * it too, the exact transpose of its W_down^T (a block type's file holds
 * W_down^T alone, lzn-quantize's layout). */
START_TEST(test_down_as_stored_by_type) {
  static const lzn_weight_type types[] = {LZN_WEIGHTS_F32, LZN_WEIGHTS_F16, LZN_WEIGHTS_BF16, LZN_WEIGHTS_Q8_0};
  const lzn_weight_type type = types[_i];
  lzn_model *m = NULL;
  ck_assert_msg(lzn_model_synthetic_typed("opt-125m", 0.05f, 1, 3, type, &m) == LZN_OK, "%s", lzn_last_error());
  const lzn_matrix *down = &m->layers[0].down, *down_t = &m->layers[0].down_t;
  if (type == LZN_WEIGHTS_Q8_0) {
    ck_assert_ptr_null(down->data);
  } else {
    ck_assert_ptr_nonnull(down->data);
    ck_assert(down->type == type && down->rows == down_t->cols && down->cols == down_t->rows);
    const size_t elem = down->row_bytes / (size_t)down->cols;
    for (int64_t r = 0; r < down->rows; r++)
      for (int64_t c = 0; c < down->cols; c++)
        if (memcmp((const char *)lzn_matrix_row(down, r) + (size_t)c * elem,
                   (const char *)lzn_matrix_row(down_t, c) + (size_t)r * elem, elem) != 0)
          ck_abort_msg("type %d: W_down[%lld][%lld] is not W_down^T's", (int)type, (long long)r, (long long)c);
  }
  lzn_model_free(m);
}
END_TEST

START_TEST(test_bad_arguments) {
  lzn_model *m = (lzn_model *)&m; /* any non-NULL: must be reset to NULL */
  ck_assert_int_eq(lzn_model_synthetic("opt-13b", 0.05f, 1, 1, &m), LZN_ERR_INVALID_ARG);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(lzn_last_error(), "opt-1.3b") && strstr(lzn_last_error(), "opt-125m"),
                "the message should list the known names: %s", lzn_last_error());
  ck_assert_int_eq(lzn_model_synthetic(NULL, 0.05f, 1, 1, &m), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_model_synthetic("opt-125m", 0.05f, 1, 1, NULL), LZN_ERR_INVALID_ARG);
  const float bad_density[] = {0.0f, -0.1f, 1.5f, NAN, INFINITY};
  for (size_t i = 0; i < sizeof bad_density / sizeof bad_density[0]; i++) {
    m = (lzn_model *)&m;
    ck_assert_int_eq(lzn_model_synthetic("opt-125m", bad_density[i], 1, 1, &m), LZN_ERR_INVALID_ARG);
    ck_assert_ptr_null(m);
  }
  ck_assert_int_eq(lzn_model_synthetic("opt-125m", 0.05f, -1, 1, &m), LZN_ERR_INVALID_ARG);
}
END_TEST

/* More layers than RAM: refused before anything is allocated, saying how
 * many would fit. */
START_TEST(test_too_big) {
  lzn_model *m = (lzn_model *)&m;
  ck_assert_int_eq(lzn_model_synthetic("opt-6.7b", 0.05f, 1 << 20, 1, &m), LZN_ERR_NOMEM);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(lzn_last_error(), "layers fit") != NULL, "%s", lzn_last_error());
  ck_assert_int_eq(lzn_model_synthetic("opt-125m", 0.05f, 1 << 30, 1, &m), LZN_ERR_NOMEM);
}
END_TEST

static Suite *synthetic_suite(void) {
  Suite *s = suite_create("synthetic");
  TCase *tc = tcase_create("model");
  tcase_set_timeout(tc, 60); /* scalar ISA under a sanitizer; normally < 1 s per test */
  tcase_add_test(tc, test_shapes);
  tcase_add_test(tc, test_inverse_normal_cdf);
  tcase_add_loop_test(tc, test_sparse_matches_dense, 0, 2);
  tcase_add_loop_test(tc, test_density, 0, 2);
  tcase_add_test(tc, test_density_one);
  tcase_add_test(tc, test_deterministic);
  tcase_add_loop_test(tc, test_down_as_stored_by_type, 0, 4);
  tcase_add_test(tc, test_bad_arguments);
  tcase_add_test(tc, test_too_big);
  suite_add_tcase(s, tc);
  /* Each type builds a model (a K-quant one 2 s) and decodes it 4 ways
   * twice: minutes at the scalar ISA under ThreadSanitizer. */
  TCase *threads = tcase_create("threads");
  tcase_set_timeout(threads, 600);
  tcase_add_loop_test(threads, test_threads_bitwise, 0, N_THREAD_TYPES);
  suite_add_tcase(s, threads);
  return s;
}

int main(void) { return run_suite(synthetic_suite()); }
