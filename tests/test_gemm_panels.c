/*
 * test_gemm_panels.c: dense products of many tokens through oneDNN on
 * converted panels (linalg/gemm_panels.h), for F16, BF16 and the
 * K-quants, against a double sum of the operands as the product sees them:
 * each weight the reference's to_f32 of its row, and, where the product
 * runs in bf16 (BF16 and the K-quants on a CPU that multiplies bf16
 * natively), x and the weights rounded to bf16.
 *
 * Shapes: rows and K both beyond one panel (8 MiB of bf16: 16384 rows of
 * 256) with a partial last panel, a small odd matrix and a wider one; 2, 17 and 33
 * tokens; 1 and 2 threads (the panels converted on both). Both
 * products: y = x W^T (rows of W are outputs) and y = x W_kn (rows of W
 * are K, the panels summed into y by oneDNN's sum post-op).
 *
 * The bound: fp32 sums of K terms, |y - ref| <= K * 2^-23 * sum |x w|; and
 * the K-quants' panels dequantize through axpy_rows (gemm_panels.c says
 * why), which may differ from to_f32 in the last fp32 bit and so, in a
 * bf16 product, round a weight to the other bf16 neighbour now and then:
 * 2^-7 |x w| per such weight, a few allowed. A wrong panel, row, token,
 * stride or a panel summed twice is off by a large part of sum |x w|.
 * Run under each LZN_ISA, so both kinds of product are tested on a
 * machine with native bf16 (fp32 below avx512bf16).
 *
 * Also the routing: lzn_linear sends m >= the thresholds there, fewer
 * tokens or a backend forced to the own kernels to the own kernels
 * (exec.used says where it ran); at LZN_ISA=scalar nothing goes there.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/wtype.h"
#include "kernel_testutil.h"
#include "kernels/half.h"
#include "linalg/gemm_panels.h"
#include "linalg/linear.h"

static const lzn_weight_type types[] = {LZN_WEIGHTS_BF16, LZN_WEIGHTS_Q4_K, LZN_WEIGHTS_Q5_K, LZN_WEIGHTS_Q6_K,
                                        LZN_WEIGHTS_F16};
#define N_TYPES ((int)(sizeof types / sizeof types[0]))

typedef struct {
  void *data;
  lzn_matrix w;
  float *wide; /* each weight as the reference's to_f32 gives it: [rows][cols] */
} weights;

static double as_bf16(double v) { return lzn_bf16_to_f32(lzn_f32_to_bf16((float)v)); }

static weights make_weights(test_rng *r, lzn_weight_type type, int64_t rows, int64_t cols) {
  const lzn_kernel_table *ref = reference_kernels();
  weights m;
  const size_t row_bytes = lzn_wtype_row_bytes(type, (size_t)cols);
  m.data = malloc((size_t)rows * row_bytes);
  m.wide = malloc(sizeof(float) * (size_t)(rows * cols));
  float *src = malloc(sizeof(float) * (size_t)(rows * cols));
  ck_assert(m.data && m.wide && src);
  fill_random(r, src, (size_t)(rows * cols));
  ck_assert_int_eq(lzn_weights_convert(type, src, rows, cols, m.data), LZN_OK);
  m.w = lzn_matrix_make(type, m.data, rows, cols);
  for (int64_t i = 0; i < rows; i++) {
    float *wide = m.wide + (size_t)(i * cols);
    ref->type[type].to_f32.fn(wide, lzn_matrix_row(&m.w, i), (size_t)cols);
  }
  free(src);
  return m;
}

static void free_weights(weights *m) { free(m->data), free(m->wide); }

/* got [m][n] against sum_j x[t][j] * w(j, i), both rounded to bf16 for a
 * bf16 product; kn: weights [K][N]. */
static void check(const float *got, const float *x, const weights *m, int64_t tokens, int kn, int bf16,
                  const char *what) {
  const int64_t k = kn ? m->w.rows : m->w.cols, n = kn ? m->w.cols : m->w.rows;
  const int kquant = m->w.type != LZN_WEIGHTS_BF16 && m->w.type != LZN_WEIGHTS_F16;
  for (int64_t t = 0; t < tokens; t++)
    for (int64_t i = 0; i < n; i++) {
      double sum = 0, mag = 0, largest = 0;
      for (int64_t j = 0; j < k; j++) {
        const double xw = kn ? m->wide[j * n + i] : m->wide[i * k + j];
        const double xb = bf16 ? as_bf16(x[t * k + j]) : x[t * k + j], w = bf16 ? as_bf16(xw) : xw;
        sum += xb * w, mag += fabs(xb * w);
        if (fabs(xb * w) > largest) largest = fabs(xb * w);
      }
      const double bound = (double)(k + 8) * 0x1p-23 * mag + (kquant && bf16 ? 8 * 0x1p-7 * largest : 0.0);
      const double err = fabs((double)got[t * n + i] - sum);
      ck_assert_msg(err <= bound, "%s %s: token %lld of %lld, output %lld of %lld: %.9g against %.9g (bound %.3g)",
                    lzn_weight_type_name(m->w.type), what, (long long)t, (long long)tokens, (long long)i,
                    (long long)n, (double)got[t * n + i], sum, bound);
    }
}

static int make_exec(lzn_exec *ex, int threads) {
  memset(ex, 0, sizeof *ex);
  ex->kernels = active_kernels();
  ex->n_threads = threads;
  ck_assert_int_eq(lzn_dense_create(&ex->dense), LZN_OK);
  if (threads > 1) ck_assert_int_eq(lzn_pool_create(threads, &ex->pool), LZN_OK);
  return 1;
}

/* Both products of every shape, token count and thread count. */
START_TEST(products_match_the_reference) {
  const lzn_weight_type type = types[_i];
  lzn_exec ex;
  make_exec(&ex, 1);
  const int available = lzn_gemm_panels_available(&ex, type), bf16 = lzn_gemm_panels_in_bf16(&ex, type);
  lzn_exec_free(&ex);
  if (type == LZN_WEIGHTS_F16) ck_assert(!bf16); /* exact products only (gemm_panels.h) */
  if (!available) {
    ck_assert_int_eq(active_kernels()->isa, LZN_ISA_SCALAR);
    printf("test_gemm_panels: %s: not at ISA scalar: not run\n", lzn_weight_type_name(type));
    return;
  }
  test_rng rng = {0xbf16u + (uint64_t)_i};
  /* K-quant rows are whole super-blocks of 256 */
  static const int64_t shapes[][2] = {{37, 256}, {300, 2048}, {16500, 256}};
  static const int64_t token_counts[] = {2, 17, 33};
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
    weights m = make_weights(&rng, type, shapes[si][0], shapes[si][1]);
    const int64_t most = (m.w.rows > m.w.cols ? m.w.rows : m.w.cols) * 33;
    float *x = malloc(sizeof(float) * (size_t)most), *y = malloc(sizeof(float) * (size_t)most);
    ck_assert(x && y);
    fill_random(&rng, x, (size_t)most);
    for (int threads = 1; threads <= 2; threads++) {
      make_exec(&ex, threads);
      for (size_t ti = 0; ti < sizeof token_counts / sizeof token_counts[0]; ti++) {
        const int64_t tokens = token_counts[ti];
        if (si > 0 && tokens > 17) continue; /* the larger shapes' panels are covered by 17 */
        for (int64_t i = 0; i < most; i++) y[i] = NAN; /* every output written */
        ck_assert_int_eq(lzn_gemm_panels_linear(&ex, y, x, &m.w, tokens), LZN_OK);
        check(y, x, &m, tokens, 0, bf16, "x W^T");
        for (int64_t i = 0; i < most; i++) y[i] = NAN; /* the first panel sets y, the others add */
        ck_assert_int_eq(lzn_gemm_panels_kn(&ex, y, x, &m.w, tokens), LZN_OK);
        check(y, x, &m, tokens, 1, bf16, "x W_kn");
      }
      lzn_exec_free(&ex);
    }
    free(x), free(y);
    free_weights(&m);
  }
}
END_TEST

/* lzn_linear's choice: panels from the thresholds on (or from 2 tokens
 * when forced to oneDNN), the own kernels below them or when forced there;
 * the bias added either way. */
START_TEST(linear_routes_by_tokens_and_backend) {
  const lzn_weight_type type = types[_i];
  lzn_exec ex;
  make_exec(&ex, 1);
  const int available = lzn_gemm_panels_available(&ex, type), bf16 = lzn_gemm_panels_in_bf16(&ex, type);
  if (!available) printf("test_gemm_panels: %s: not at ISA scalar: checking that none is used\n",
                         lzn_weight_type_name(type));
  test_rng rng = {0x7265u + (uint64_t)_i};
  weights m = make_weights(&rng, type, 40, 256);
  const int64_t many = lzn_gemm_panels_min_tokens(&ex, type);
  ck_assert(many == LZN_PANELS_MIN_TOKENS_IN_PLACE || many == LZN_PANELS_MIN_TOKENS ||
            many == LZN_PANELS_MIN_TOKENS_WIDENED);
  float *x = malloc(sizeof(float) * 256 * (size_t)many), *y = malloc(sizeof(float) * 40 * (size_t)many);
  float bias[40];
  fill_random(&rng, x, 256 * (size_t)many);
  fill_random(&rng, bias, 40);
  static const struct {
    lzn_backend backend;
    int few; /* 1: many - 1 tokens (2 when forced to oneDNN), else many */
    int panels;
  } cases[] = {{LZN_BACKEND_AUTO, 0, 1}, {LZN_BACKEND_AUTO, 1, 0}, {LZN_BACKEND_OWN, 0, 0},
               {LZN_BACKEND_ONEDNN, 1, 1}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    ex.backend = cases[c].backend, ex.used = 0;
    const int64_t tokens = !cases[c].few ? many : cases[c].backend == LZN_BACKEND_ONEDNN ? 2 : many - 1;
    ck_assert_int_eq(lzn_linear(&ex, y, x, &m.w, bias, tokens), LZN_OK);
    const int panels = cases[c].panels && available;
    ck_assert_msg(!!(ex.used & (1u << LZN_BACKEND_ONEDNN)) == panels, "%s case %zu: %d tokens, used 0x%x",
                  lzn_weight_type_name(type), c, (int)tokens, ex.used);
    for (int64_t t = 0; t < tokens; t++)
      for (int64_t i = 0; i < 40; i++) {
        double sum = bias[i], mag = fabs(bias[i]);
        for (int64_t j = 0; j < 256; j++) {
          const double xj = panels && bf16 ? as_bf16(x[t * 256 + j]) : x[t * 256 + j];
          sum += xj * m.wide[i * 256 + j], mag += fabs(xj * m.wide[i * 256 + j]);
        }
        /* the own kernels multiply the unrounded weights (and Q8_K x for
         * the K-quants): a percent of sum |x w| holds both, a wrong row or
         * a missing bias does not */
        ck_assert_msg(fabs(y[t * 40 + i] - sum) <= 1e-2 * mag, "%s case %zu: token %lld row %lld: %g against %g",
                      lzn_weight_type_name(type), c, (long long)t, (long long)i, (double)y[t * 40 + i], sum);
      }
  }
  free(x), free(y);
  free_weights(&m);
  lzn_exec_free(&ex);
}
END_TEST

static Suite *gemm_panels_suite(void) {
  Suite *s = suite_create("gemm_panels");
  TCase *tc = tcase_create("gemm_panels");
  tcase_set_timeout(tc, 240);
  tcase_add_loop_test(tc, products_match_the_reference, 0, N_TYPES);
  tcase_add_loop_test(tc, linear_routes_by_tokens_and_backend, 0, N_TYPES);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(gemm_panels_suite()); }
