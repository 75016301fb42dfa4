/*
 * test_axpy_rounded.c: the down-projection of many tokens with their
 * coefficients rounded to int8 (kernels/gemm.h, axpy_gemm_q8; and
 * lzn_gemm_axpy_rounded, linalg/gemm.h, which batches and prefill run).
 * The contracts are exact: the slot gives token t what the same table's
 * axpy_rows_q8 gives that token alone, and the library's call what the
 * one-token forward pass's down-projection gives it. So both are compared
 * bitwise with those, token by token (axpy_rows_q8 is tested against the scalar
 * reference in test_kernels_quant / test_kernels_kquant): a wrong row,
 * token, group, block scale, step order or tail moves the last bits at
 * least, and a coefficient rounded over other rows moves far more.
 *
 * The slot: odd row lengths (within one step, whole chunks of steps and a
 * partial one, a tail past the last whole step), tokens 1..33, row sets of
 * every density (0, the first row, the last, 3 %, 50 %, all, runs, a few,
 * shuffled with repeats), column slices from a block boundary; rows, y
 * and the coefficients end at guard pages. The library's call, against
 * the one-token pass's lzn_sparse_down_run: 1, 2 and 3 threads, enough
 * rows to be cut into parts, enough tokens that their y is cut into
 * narrower slices, every block type (through the slot where the table has
 * it, else axpy_rows_q8 token by token) and an element type.
 */
#include <string.h>

#include "core/wtype.h"
#include "kernel_testutil.h"
#include "cpu/cpu.h"
#include "linalg/gemm.h"
#include "linalg/pool.h"
#include "linalg/sparse_down.h"

static const lzn_weight_type block_types[] = {LZN_WEIGHTS_Q8_0, LZN_WEIGHTS_Q4_0, LZN_WEIGHTS_Q4_K,
                                              LZN_WEIGHTS_Q5_K, LZN_WEIGHTS_Q6_K};
#define N_BLOCK_TYPES (sizeof block_types / sizeof block_types[0])

/* Rows of random weights in a type (through the reference's from_f32),
 * the last against a guard page. */
static guarded make_rows_of(test_rng *r, lzn_weight_type type, size_t f, size_t d) {
  const size_t row_bytes = lzn_wtype_row_bytes(type, d);
  guarded mem = guarded_alloc(f * row_bytes);
  float *v = malloc(d * sizeof(float));
  ck_assert_ptr_nonnull(v);
  for (size_t i = 0; i < f; i++) {
    fill_random(r, v, d);
    reference_kernels()->type[type].from_f32.fn((char *)mem.data + i * row_bytes, v, d);
  }
  free(v);
  return mem;
}

/* want[t] = y[t] + axpy_rows_q8 of token t alone, columns [j0, cols) of
 * rows cols wide (w advanced to the block-aligned j0, as a thread's slice). */
static void expected(const lzn_kernel_table *k, lzn_weight_type type, float *want, size_t cols, size_t j0,
                     const void *w, size_t row_bytes, const int32_t *idx, const float *coef, size_t coef_stride,
                     size_t n, size_t m) {
  for (size_t t = 0; t < m; t++)
    k->type[type].axpy_rows_q8.fn(want + t * cols + j0, cols - j0, w, row_bytes, idx, coef + t * coef_stride, n);
}

static void check_slot(const lzn_kernel_table *k, test_rng *r, lzn_weight_type type, size_t f, size_t cols,
                       size_t j0, size_t m, rows_pattern pattern) {
  int32_t *idx = malloc(rows_capacity(f) * sizeof(int32_t));
  ck_assert_ptr_nonnull(idx);
  const size_t n = make_rows(r, pattern, f, idx);
  const size_t row_bytes = lzn_wtype_row_bytes(type, cols);
  guarded w = make_rows_of(r, type, f, cols);
  const size_t coef_stride = n + 3;
  guarded coef_mem = guarded_alloc((m * coef_stride) * sizeof(float));
  float *coef = coef_mem.data;
  /* Both signs, sizes spread over a few octaves: the rounding's max and
   * its small alphas both matter. */
  for (size_t i = 0; i < m * coef_stride; i++) coef[i] = rng_float(r) * (float)(1u << rng_below(r, 6));
  guarded y_mem = guarded_alloc(m * cols * sizeof(float));
  float *y = y_mem.data, *want = malloc(m * cols * sizeof(float));
  ck_assert_ptr_nonnull(want);
  fill_random(r, y, m * cols);
  memcpy(want, y, m * cols * sizeof(float));
  const void *wj = (const char *)w.data + lzn_wtype_row_bytes(type, j0);
  expected(k, type, want, cols, j0, wj, row_bytes, idx, coef, coef_stride, n, m);
  k->gemm[type].axpy_gemm_q8.fn(y + j0, cols, cols - j0, wj, row_bytes, idx, coef, coef_stride, n, m);
  for (size_t t = 0; t < m; t++)
    for (size_t j = 0; j < cols; j++)
      if (memcmp(&y[t * cols + j], &want[t * cols + j], sizeof(float)) != 0)
        ck_abort_msg("%s axpy_gemm_q8 (%s) f=%zu cols=%zu j0=%zu m=%zu n=%zu %s: y[%zu][%zu] = %.9g, one token "
                     "alone %.9g", lzn_wtype_name(type), lzn_isa_to_name(k->gemm[type].axpy_gemm_q8.isa), f, cols,
                     j0, m, n, pattern_names[pattern], t, j, (double)y[t * cols + j], (double)want[t * cols + j]);
  free(idx), free(want);
  guarded_free(&coef_mem), guarded_free(&y_mem), guarded_free(&w);
}

START_TEST(slot_equals_one_token_alone) {
  const lzn_kernel_table *k = active_kernels();
  const lzn_weight_type type = block_types[_i];
  if (k->gemm[type].axpy_gemm_q8.fn == NULL) return; /* the library runs axpy_rows_q8 itself: below */
  test_rng r = {0xa8e5u + (uint64_t)_i};
  /* Within a step, a step and a tail, whole chunks of 4 steps, a partial
   * chunk and a tail (Q4_0's steps are 128 columns; the K-quants' rows are
   * whole 256-weight blocks). */
  static const size_t dims[] = {31, 160, 512, 673, 1031};
  static const size_t ms[] = {1, 2, 3, 8, 9, 17, 33};
  for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
      for (int p = 0; p < ROWS_N_PATTERNS; p++) check_slot(k, &r, type, 45, dims[di], 0, ms[mi], (rows_pattern)p);
  /* Column slices that start on a whole block of every type, as the
   * library cuts them. */
  check_slot(k, &r, type, 45, 1031, 256, 5, ROWS_RANDOM_50);
  check_slot(k, &r, type, 45, 1280, 768, 3, ROWS_ALL);
}
END_TEST

/* lzn_gemm_axpy_rounded on 1, 2 and 3 threads against the one-token
 * forward pass's down-projection (lzn_sparse_down_run, rounded) token by
 * token, bitwise: from 50 rows (x 1312 columns) both cut the rows into
 * parts. 70 tokens: two passes (64 + 6, linalg/gemm.c ROUNDED_PASS_TOKENS),
 * the first's y cut into slices of 4 x 256 columns where the slot runs
 * (ROUNDED_Y_BYTES). */
START_TEST(library_call_equals_one_token_alone) {
  static const lzn_weight_type types[] = {LZN_WEIGHTS_Q8_0, LZN_WEIGHTS_Q4_0, LZN_WEIGHTS_Q4_K, LZN_WEIGHTS_Q6_K,
                                          LZN_WEIGHTS_BF16};
  const lzn_weight_type type = types[_i];
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x70c5u + (uint64_t)_i};
  const size_t f = 300, cols = 1280 + 32, m_max = 70;
  guarded w = make_rows_of(&r, type, f, cols);
  int32_t *idx = malloc(rows_capacity(f) * sizeof(int32_t));
  float *coef = malloc(m_max * f * 2 * sizeof(float));
  float *y0 = malloc(m_max * cols * sizeof(float)), *want = malloc(m_max * cols * sizeof(float));
  float *got = malloc(m_max * cols * sizeof(float));
  float *parts = malloc((LZN_DOWN_PARTS - 1) * cols * sizeof(float));
  ck_assert(idx && coef && y0 && want && got && parts);
  static const size_t ms[] = {2, 9, 70};
  static const rows_pattern patterns[] = {ROWS_RANDOM_50, ROWS_ALL, ROWS_FEW, ROWS_SHUFFLED};
  for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
    for (size_t pi = 0; pi < sizeof patterns / sizeof patterns[0]; pi++) {
      const size_t m = ms[mi], n = make_rows(&r, patterns[pi], f, idx);
      for (size_t i = 0; i < m * n; i++) coef[i] = rng_float(&r) * (float)(1u << rng_below(&r, 6));
      fill_random(&r, y0, m * cols);
      memcpy(want, y0, m * cols * sizeof(float));
      const lzn_matrix mat = lzn_matrix_make(type, w.data, (int64_t)f, (int64_t)cols);
      for (size_t t = 0; t < m; t++)
        lzn_sparse_down_run(k, NULL, want + t * cols, &mat, idx, coef + t * n, n, LZN_DOWN_ROUND_Q8, parts);
      for (int threads = 1; threads <= 3; threads++) {
        lzn_exec ex = {.kernels = k, .n_threads = threads};
        if (threads > 1) ck_assert_int_eq(lzn_pool_create(threads, &ex.pool), LZN_OK);
        memcpy(got, y0, m * cols * sizeof(float));
        ck_assert_int_eq(lzn_gemm_axpy_rounded(&ex, got, cols, &mat, idx, n, coef, n, (int64_t)m), LZN_OK);
        ck_assert_msg(memcmp(got, want, m * cols * sizeof(float)) == 0,
                      "%s m = %zu n = %zu %s, %d thread(s): differs from one token alone", lzn_wtype_name(type), m,
                      n, pattern_names[patterns[pi]], threads);
        lzn_exec_free(&ex);
      }
    }
  free(idx), free(coef), free(y0), free(want), free(got), free(parts);
  guarded_free(&w);
}
END_TEST

/* Q8_0 and Q4_0 have the slot from AVX2 on, by an ISA at or below the
 * ceiling; the K-quants run axpy_rows_q8 token by token (no slot). */
START_TEST(slot_is_filled_where_built) {
  const lzn_kernel_table *k = active_kernels();
  for (size_t i = 0; i < N_BLOCK_TYPES; i++) {
    const lzn_weight_type type = block_types[i];
    const int built = (type == LZN_WEIGHTS_Q8_0 || type == LZN_WEIGHTS_Q4_0) && k->isa >= LZN_ISA_AVX2;
    if (!built) {
      ck_assert_ptr_null(k->gemm[type].axpy_gemm_q8.fn);
      continue;
    }
    ck_assert_ptr_nonnull(k->gemm[type].axpy_gemm_q8.fn);
    ck_assert_int_le(k->gemm[type].axpy_gemm_q8.isa, k->isa);
    ck_assert_int_ge(k->gemm[type].axpy_gemm_q8.isa, LZN_ISA_AVX2);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("axpy_rounded");
  TCase *tc = tcase_create("axpy_rounded");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, slot_is_filled_where_built);
  tcase_add_loop_test(tc, slot_equals_one_token_alone, 0, (int)N_BLOCK_TYPES);
  tcase_add_loop_test(tc, library_call_equals_one_token_alone, 0, 5);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
