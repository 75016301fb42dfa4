/*
 * test_sparse_down.c: the sparse down-projection on threads
 * (lib/linalg/sparse_down.h). With room for parts, a call of enough work
 * cuts its rows into parts of whole 16-row groups, each summed from zero
 * and added in order: the result must be bitwise the same on 1, 2 and 3
 * threads, and differ from the same rows in one part only by the order of
 * fp32 additions. A part cut inside a group would round other groups'
 * coefficients to int8 (axpy_rows_q8): off by ~1/254 of the row terms,
 * which the bound below (a few hundred ulps of them) does not allow.
 * Row counts below, at and above the parts' threshold, odd ones, all rows.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/wtype.h"
#include "kernel_testutil.h"
#include "linalg/sparse_down.h"

static const lzn_weight_type types[] = {LZN_WEIGHTS_F32, LZN_WEIGHTS_BF16, LZN_WEIGHTS_Q8_0, LZN_WEIGHTS_Q4_0,
                                        LZN_WEIGHTS_Q4_K};
#define N_TYPES (sizeof types / sizeof types[0])
#define D 512 /* columns: a multiple of every block (Q4_K's 256) */
#define F 1100
static const size_t counts[] = {1, 17, 127, 128, 129, 257, 700, F};
#define N_COUNTS (sizeof counts / sizeof counts[0])

typedef struct problem {
  lzn_weight_type type;
  void *w;    /* [F] rows of D in the type */
  float *wf;  /* the same, widened */
  int32_t idx[F];
  float coef[F];
  size_t n;
} problem;

static void make_problem(problem *p, lzn_weight_type type, size_t n, test_rng *r) {
  const lzn_kernel_table *ref = reference_kernels();
  const size_t row_bytes = lzn_wtype_row_bytes(type, D);
  p->type = type, p->n = n;
  p->w = malloc(row_bytes * F), p->wf = malloc(sizeof(float) * D * F);
  float row[D];
  for (size_t i = 0; i < F; i++) {
    fill_random(r, row, D);
    ref->type[type].from_f32.fn((char *)p->w + i * row_bytes, row, D);
    ref->type[type].to_f32.fn(p->wf + i * D, (char *)p->w + i * row_bytes, D);
  }
  /* n distinct rows, ascending, as the active lists are; coefficients
   * of both signs and a spread of sizes. */
  size_t k = 0;
  for (size_t i = 0; i < F && k < n; i++)
    if (rng_below(r, F - i) < n - k) p->idx[k++] = (int32_t)i;
  for (size_t t = 0; t < n; t++) p->coef[t] = rng_float(r) * (1.0f + (float)rng_below(r, 8));
}

static void bias(float *y) {
  for (size_t j = 0; j < D; j++) y[j] = 0.25f * (float)(j % 7);
}

static void run(const problem *p, lzn_pool *pool, float *parts, float *y) {
  bias(y);
  const lzn_matrix m = lzn_matrix_make(p->type, p->w, F, D);
  lzn_sparse_down_run(active_kernels(), pool, y, &m, p->idx, p->coef, p->n, LZN_DOWN_ROUND_Q8, parts);
}

/* All rows in one call of the kernel: what the parts must equal but for
 * the order of the fp32 additions. */
static void run_whole(const problem *p, float *y) {
  bias(y);
  active_kernels()->type[p->type].axpy_rows_q8.fn(y, D, p->w, lzn_wtype_row_bytes(p->type, D), p->idx, p->coef,
                                                  p->n);
}

START_TEST(parts_do_not_depend_on_threads) {
  const lzn_weight_type type = types[_i / N_COUNTS];
  const size_t n = counts[_i % N_COUNTS];
  test_rng r = {0x5d0au + (uint64_t)_i};
  problem p;
  make_problem(&p, type, n, &r);
  float parts[(LZN_DOWN_PARTS - 1) * D], whole[D], one[D], y[D];
  run_whole(&p, whole);
  run(&p, NULL, parts, one);
  for (int threads = 2; threads <= 3; threads++) {
    lzn_pool *pool = NULL;
    ck_assert_int_eq(lzn_pool_create(threads, &pool), LZN_OK);
    run(&p, pool, parts, y);
    ck_assert_msg(memcmp(y, one, sizeof y) == 0, "%s n = %zu: %d threads differ from one",
                  lzn_weight_type_name(type), n, threads);
    lzn_pool_free(pool);
  }
  const size_t groups = (n + LZN_AXPY_Q8_GROUP - 1) / LZN_AXPY_Q8_GROUP;
  for (size_t j = 0; j < D; j++) {
    double terms = fabs(0.25 * (double)(j % 7));
    for (size_t t = 0; t < n; t++) terms += fabs((double)p.coef[t] * p.wf[(size_t)p.idx[t] * D + j]);
    const double bound = 2.0 * (double)(groups + LZN_DOWN_PARTS + 8) * FLT_EPSILON * terms;
    ck_assert_msg(fabs((double)one[j] - whole[j]) <= bound, "%s n = %zu col %zu: %g parts vs %g whole (bound %g)",
                  lzn_weight_type_name(type), n, j, (double)one[j], (double)whole[j], bound);
  }
  free(p.w), free(p.wf);
}
END_TEST

int main(void) {
  Suite *s = suite_create("sparse_down");
  TCase *tc = tcase_create("parts");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, parts_do_not_depend_on_threads, 0, (int)(N_TYPES * N_COUNTS));
  suite_add_tcase(s, tc);
  return run_suite(s);
}
