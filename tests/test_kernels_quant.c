/*
 * test_kernels_quant.c: the block-type kernels (Q8_0, Q4_0) of the active
 * table (the one LZN_ISA forces, else the best this machine runs) against
 * the reference table (ceiling scalar, kernels/ref/q8_0.c and q4_0.c).
 * `make test` runs it once per ISA.
 *
 * Two kinds of weights:
 *  - integer-valued: scales 0.5, 1 or 2, any int8 / nibble, coefficients
 *    and y in small integers, x with d = 1 and |q| <= 4: every partial sum
 *    is a multiple of 1/2 below 2^22, exact in fp32 in any order, so SIMD
 *    must equal the reference exactly. A wrong row, block, lane, nibble or
 *    scale shows up as a wrong number.
 *  - random scales and bytes, x quantized from random floats: checked
 *    against the rounding bounds below.
 * Blocks a kernel must not read (rows not asked for, blocks outside a
 * column slice) have the fp16 scale NaN (0x7e00), so reading one gives NaN;
 * matrices, x, y and out end right before an inaccessible page.
 */
#include <float.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/wtype.h"
#include "cpu/cpu.h"
#include "kernels/half.h"
#include "kernel_testutil.h"
#include "testutil.h"

/* ---------------------------------------------------------- tolerances */

/* Higham ("Accuracy and Stability of Numerical Algorithms", 2002, 3.1): a
 * sum whose every term goes through at most k roundings is within
 * gamma_k * S of the exact sum, S = sum of |terms|, gamma_k = k*u/(1 - k*u),
 * u = FLT_EPSILON / 2, in any order. Reference and SIMD each obey it, so
 * they differ by at most 2 * gamma_k * S ~ k * FLT_EPSILON * S.
 * ROUNDING_SLACK covers the 1 / (1 - k*u) factor and S summed in double. */
#define ROUNDING_SLACK 1.01
/* dot: the exact terms are d_w * d_x * (integer), the product of the two
 * fp16 scales exact in fp32 and the integers exact in int32. The reference
 * rounds each block term once and adds n_blocks of them; the SIMD kernels
 * split a block's integer sum over lanes (terms d_w * d_x * lane sum, S is
 * then bounded by sum |d_w d_x| * sum |q_w q_x|, which the test uses), one
 * FMA rounding per block per lane, then at most 4 additions to combine the
 * lanes and accumulators. k = n_blocks + 4. */
#define DOT_ROUNDINGS(n_blocks) ((double)(n_blocks) + 4.0)
/* axpy: y[j] + sum_t cd_t * q_t with cd_t = coef[t] * d_t, the same fp32
 * product in reference and SIMD (so exact terms cd_t * q_t): one multiply
 * and at most one add per row, k = n + 1; FMA only removes roundings. */
#define AXPY_ROUNDINGS(n_rows) ((double)(n_rows) + 1.0)
/* axpy_rows_q8: per group of rows one term s * I per column, I the exact
 * integer sum and s * |I| <= m * sum |q| (m the group's largest |coef * d|,
 * |alpha| <= 127): the reference rounds the product and the sum, a SIMD
 * kernel's FMA once, k = 2 * groups + 1. */
#define AXPY_Q8_ROUNDINGS(n_groups) (2.0 * (double)(n_groups) + 1.0)
/* ... and against the exact fp32 axpy, each coefficient * scale moves by
 * at most half a step, m / 254 (kernels.h), so a column by at most
 * sum over groups of m / 254 * sum |q|; 1 % for the fp32 roundings of a
 * and s around it. */
#define AXPY_Q8_STEP_FRACTION (1.01 / 254.0)
/* The bounds assume no underflow; this absorbs a subnormal product's
 * absolute error, per term. */
#define UNDERFLOW_SLACK ((double)FLT_MIN)

/* Round trip x -> from_f32 -> to_f32, per element, in units of the block's
 * fp32 scale d (|d| = amax / 127 for Q8_0, amax / 8 for Q4_0):
 *  - rounding to the nearest step: 1/2 (Q4_0: 1 for the values clamped at
 *    the top, x / d in (7.5, 8], which land on 7);
 *  - plus |q| * |d - fp16(d)| for the stored fp16 scale (computed exactly);
 *  - plus ROUND_TRIP_FP32_STEPS of x * (1 / d) rounding in fp32 (inv and
 *    the product, each within half an ulp of a value <= 127: 127 * eps
 *    steps in all, 256 * eps with margin), and half an ulp of |x| for the
 *    product fp16(d) * q. */
#define ROUND_TRIP_HALF_STEP 0.5
#define ROUND_TRIP_FP32_STEPS (256.0 * FLT_EPSILON)

/* -------------------------------------------------------------- helpers */

static const char *type_name(lzn_weight_type type) { return type == LZN_WEIGHTS_Q8_0 ? "Q8_0" : "Q4_0"; }

static size_t n_blocks_of(size_t d) { return (d + LZN_QK - 1) / LZN_QK; }

/* Block b of a row, and its scale and element j (0..31) as numbers. */
static const void *block_at(lzn_weight_type type, const void *row, size_t b) {
  return (const char *)row + b * lzn_wtype_block_bytes(type);
}
static double block_scale(lzn_weight_type type, const void *row, size_t b) {
  uint16_t h;
  memcpy(&h, block_at(type, row, b), sizeof h);
  return lzn_f16_to_f32(h);
}
static int block_value(lzn_weight_type type, const void *row, size_t b, size_t j) {
  const uint8_t *qs = (const uint8_t *)block_at(type, row, b) + 2;
  if (type == LZN_WEIGHTS_Q8_0) return (int8_t)qs[j];
  const uint8_t byte = qs[j % 16];
  return (j < 16 ? byte & 0x0f : byte >> 4) - 8;
}

typedef enum { DATA_INTEGER, DATA_FLOAT } data_kind;

#define F16_NAN 0x7e00u
#define F16_HALF 0x3800u
#define F16_ONE 0x3c00u
#define F16_TWO 0x4000u

/* Writes one block: random bytes, a scale by kind; poison = NaN scale. */
static void fill_block(test_rng *r, lzn_weight_type type, data_kind kind, int poison, void *block) {
  uint16_t h;
  if (poison) {
    h = F16_NAN;
  } else if (kind == DATA_INTEGER) {
    static const uint16_t scales[3] = {F16_HALF, F16_ONE, F16_TWO};
    h = scales[rng_below(r, 3)];
  } else {
    /* |d| in [2^-12, 2^-2), either sign, now and then 0. */
    const float magnitude = ldexpf(1.0f + 0.5f * (rng_float(r) + 1.0f), -12 + (int)rng_below(r, 10));
    h = rng_below(r, 50) == 0 ? 0 : lzn_f32_to_f16(rng_below(r, 2) ? magnitude : -magnitude);
  }
  memcpy(block, &h, sizeof h);
  uint8_t *qs = (uint8_t *)block + 2;
  const size_t n_bytes = lzn_wtype_block_bytes(type) - 2;
  for (size_t i = 0; i < n_bytes; i++) qs[i] = (uint8_t)rng_next(r);
}

/* A matrix of f rows of `cols` columns in guarded memory, the last row
 * ending at the guard page. Rows named in idx get data in the blocks of
 * columns [j0, j0 + d); every other block is poisoned. */
typedef struct {
  guarded mem;
  size_t row_bytes;
} qmatrix;

static qmatrix make_qmatrix(test_rng *r, lzn_weight_type type, data_kind kind, size_t f, size_t cols,
                            size_t j0, size_t d, const int32_t *idx, size_t n) {
  qmatrix m;
  m.row_bytes = lzn_wtype_row_bytes(type, cols);
  m.mem = guarded_alloc(f * m.row_bytes);
  const size_t block_bytes = lzn_wtype_block_bytes(type), nb = n_blocks_of(cols);
  const size_t b0 = j0 / LZN_QK, b1 = n_blocks_of(j0 + d);
  char *w = m.mem.data;
  char *filled = calloc(f, 1);
  ck_assert_ptr_nonnull(filled);
  for (size_t t = 0; t < n; t++) filled[idx[t]] = 1;
  for (size_t i = 0; i < f; i++)
    for (size_t b = 0; b < nb; b++)
      fill_block(r, type, kind, !filled[i] || b < b0 || b >= b1, w + i * m.row_bytes + b * block_bytes);
  free(filled);
  return m;
}

/* x for the dot kernels: n_blocks Q8_0 blocks ending at the guard page.
 * Integer kind: d = 1, |q| <= 4. Float kind: random floats quantized by the
 * reference from_f32 (so q is never -128, as the contract promises). */
static guarded make_x(test_rng *r, data_kind kind, size_t d) {
  const size_t nb = n_blocks_of(d);
  guarded g = guarded_alloc(nb * sizeof(lzn_block_q8_0));
  lzn_block_q8_0 *x = g.data;
  if (kind == DATA_INTEGER) {
    for (size_t b = 0; b < nb; b++) {
      x[b].d = F16_ONE;
      for (size_t j = 0; j < LZN_QK; j++)
        x[b].qs[j] = b * LZN_QK + j < d ? (int8_t)((int)rng_below(r, 9) - 4) : 0;
    }
  } else {
    float *v = malloc(d * sizeof(float));
    ck_assert_ptr_nonnull(v);
    for (size_t j = 0; j < d; j++) v[j] = rng_float(r) * (rng_below(r, 8) == 0 ? 10.0f : 1.0f);
    reference_kernels()->type[LZN_WEIGHTS_Q8_0].from_f32.fn(x, v, d);
    free(v);
  }
  return g;
}

/* ------------------------------------------------------------ the table */

START_TEST(block_type_slots_are_filled) {
  const lzn_kernel_table *k = active_kernels();
  static const lzn_weight_type types[] = {LZN_WEIGHTS_Q8_0, LZN_WEIGHTS_Q4_0};
  for (size_t i = 0; i < 2; i++) {
    const lzn_type_kernels *t = &k->type[types[i]];
    ck_assert_msg(t->axpy_rows.fn && t->dot_rows.fn && t->gemv.fn && t->from_f32.fn && t->to_f32.fn &&
                      t->axpy_rows_q8.fn,
                  "%s has an empty slot", type_name(types[i]));
    for (int op = 0; op < LZN_KOP_COUNT; op++)
      ck_assert_int_le(lzn_type_slot_isa(k, types[i], (lzn_kop)op), k->isa);
  }
  ck_assert_int_eq(lzn_wtype_dot_type(LZN_WEIGHTS_Q4_0), LZN_WEIGHTS_Q8_0);
  ck_assert_uint_eq(lzn_wtype_row_bytes(LZN_WEIGHTS_Q8_0, 33), 68);
  ck_assert_uint_eq(lzn_wtype_row_bytes(LZN_WEIGHTS_Q4_0, 4096), 128 * 18);
}
END_TEST

/* ------------------------------------------------------------ dot, gemv */

/* Row lengths below one vector too (a predictor's rank, a tiny d_model: issue 24). */
static const size_t test_dims[] = {1, 3, 7, 15, 16, 17, 31, 32, 33, 100, 1001, 4096};
#define N_TEST_DIMS (sizeof test_dims / sizeof test_dims[0])

/* Rows of the matrices: enough for several groups of every kernel and for
 * 3 % to be a dozen rows; fewer for the widest rows to keep the reference
 * quick under ASan. */
static size_t test_rows(size_t d) { return d >= 1000 ? 403 : 1031; }

/* Checks out[t] against the reference value for row idx[t] (idx NULL: row
 * t): exact for integer data, within the bound for floats. */
static void check_dot_values(lzn_weight_type type, data_kind kind, const char *what, const qmatrix *m,
                             size_t j0, size_t d, const int32_t *idx, size_t n, const void *x,
                             const float *out, const float *ref) {
  const size_t nb = n_blocks_of(d);
  for (size_t t = 0; t < n; t++) {
    const size_t row_i = idx ? (size_t)idx[t] : t;
    const char *row = (const char *)m->mem.data + row_i * m->row_bytes + lzn_wtype_row_bytes(type, j0);
    double bound = 0.0;
    if (kind == DATA_FLOAT) {
      double sum_abs = 0.0;
      for (size_t b = 0; b < nb; b++) {
        double block_abs = 0.0;
        for (size_t j = 0; j < LZN_QK; j++)
          block_abs += fabs((double)block_value(type, row, b, j) * block_value(LZN_WEIGHTS_Q8_0, x, b, j));
        sum_abs += fabs(block_scale(type, row, b) * block_scale(LZN_WEIGHTS_Q8_0, x, b)) * block_abs;
      }
      bound = ROUNDING_SLACK * DOT_ROUNDINGS(nb) * FLT_EPSILON * sum_abs + UNDERFLOW_SLACK * (double)nb;
    }
    if (!(fabs((double)out[t] - (double)ref[t]) <= bound))
      ck_abort_msg("%s %s %s: j0=%zu d=%zu n=%zu: out[%zu] (row %zu) = %.9g, reference %.9g (bound %.3g)",
                   type_name(type), what, kind == DATA_INTEGER ? "integer" : "float", j0, d, n, t, row_i,
                   (double)out[t], (double)ref[t], bound);
  }
}

/* One dot_rows call, active vs reference, on the column slice [j0, j0 + d)
 * of an f-row matrix of `cols` columns. */
static void check_dot(const lzn_kernel_table *k, test_rng *r, lzn_weight_type type, data_kind kind,
                      size_t f, size_t cols, size_t j0, size_t d, rows_pattern pattern) {
  int32_t *idx = malloc(rows_capacity(f) * sizeof(int32_t));
  ck_assert_ptr_nonnull(idx);
  const size_t n = make_rows(r, pattern, f, idx);
  qmatrix m = make_qmatrix(r, type, kind, f, cols, j0, d, idx, n);
  const void *w = (const char *)m.mem.data + lzn_wtype_row_bytes(type, j0);
  guarded x_mem = make_x(r, kind, d);
  guarded out_mem = guarded_alloc((n ? n : 1) * sizeof(float));
  float *out = (float *)out_mem.data + (n ? 0 : 1), *ref = malloc((n + 1) * sizeof(float));
  ck_assert_ptr_nonnull(ref);

  reference_kernels()->type[type].dot_rows.fn(ref, w, m.row_bytes, d, idx, n, x_mem.data);
  k->type[type].dot_rows.fn(out, w, m.row_bytes, d, idx, n, x_mem.data);
  char what[64];
  snprintf(what, sizeof what, "dot_rows %s f=%zu cols=%zu", pattern_names[pattern], f, cols);
  check_dot_values(type, kind, what, &m, j0, d, idx, n, x_mem.data, out, ref);
  free(idx);
  free(ref);
  guarded_free(&m.mem);
  guarded_free(&x_mem);
  guarded_free(&out_mem);
}

/* One gemv call over rows [0, n_rows) of an f-row matrix (the rows from
 * n_rows on are poisoned). */
static void check_gemv(const lzn_kernel_table *k, test_rng *r, lzn_weight_type type, data_kind kind,
                       size_t f, size_t n_rows, size_t d) {
  int32_t *idx = calloc(n_rows + 1, sizeof(int32_t));
  ck_assert_ptr_nonnull(idx);
  for (size_t i = 0; i < n_rows; i++) idx[i] = (int32_t)i;
  qmatrix m = make_qmatrix(r, type, kind, f, d, 0, d, idx, n_rows);
  guarded x_mem = make_x(r, kind, d);
  guarded out_mem = guarded_alloc((n_rows ? n_rows : 1) * sizeof(float));
  float *out = (float *)out_mem.data + (n_rows ? 0 : 1), *ref = malloc((n_rows + 1) * sizeof(float));
  ck_assert_ptr_nonnull(ref);
  reference_kernels()->type[type].gemv.fn(ref, m.mem.data, m.row_bytes, d, n_rows, x_mem.data);
  k->type[type].gemv.fn(out, m.mem.data, m.row_bytes, d, n_rows, x_mem.data);
  char what[64];
  snprintf(what, sizeof what, "gemv f=%zu n_rows=%zu", f, n_rows);
  check_dot_values(type, kind, what, &m, 0, d, NULL, n_rows, x_mem.data, out, ref);
  free(idx);
  free(ref);
  guarded_free(&m.mem);
  guarded_free(&x_mem);
  guarded_free(&out_mem);
}

static void dot_all_patterns(lzn_weight_type type, data_kind kind, uint64_t seed) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {seed};
  for (size_t di = 0; di < N_TEST_DIMS; di++) {
    const size_t d = test_dims[di], f = test_rows(d);
    for (int p = 0; p < ROWS_N_PATTERNS; p++) check_dot(k, &r, type, kind, f, d, 0, d, (rows_pattern)p);
    check_gemv(k, &r, type, kind, f, f, d);     /* every row, the last at the guard */
    check_gemv(k, &r, type, kind, f, f / 2, d); /* the rest must not be read */
    check_gemv(k, &r, type, kind, f, 0, d);
  }
}

START_TEST(q8_0_dot_exact_on_integer_data) { dot_all_patterns(LZN_WEIGHTS_Q8_0, DATA_INTEGER, 0x9e0001u); }
END_TEST
START_TEST(q8_0_dot_within_rounding_on_float_data) { dot_all_patterns(LZN_WEIGHTS_Q8_0, DATA_FLOAT, 0x9e0002u); }
END_TEST
START_TEST(q4_0_dot_exact_on_integer_data) { dot_all_patterns(LZN_WEIGHTS_Q4_0, DATA_INTEGER, 0x9e0003u); }
END_TEST
START_TEST(q4_0_dot_within_rounding_on_float_data) { dot_all_patterns(LZN_WEIGHTS_Q4_0, DATA_FLOAT, 0x9e0004u); }
END_TEST

/* Column slices as the threads get them: j0 on a block boundary, the slice
 * ending on a block boundary or (only the row's last slice) mid-block. */
typedef struct {
  size_t cols, j0, d;
} slice;
static const slice test_slices[] = {
    {100, 0, 32},   {100, 32, 32},  {100, 32, 68},   {100, 64, 36},    {100, 96, 4},
    {2051, 0, 1024}, {2051, 1024, 1027}, {2051, 2048, 3}, {2051, 512, 512}, {4096, 4064, 32},
};
#define N_TEST_SLICES (sizeof test_slices / sizeof test_slices[0])

static void dot_on_slices(lzn_weight_type type, uint64_t seed) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {seed};
  for (size_t i = 0; i < N_TEST_SLICES; i++) {
    const slice s = test_slices[i];
    check_dot(k, &r, type, DATA_INTEGER, 517, s.cols, s.j0, s.d, ROWS_RANDOM_50);
    check_dot(k, &r, type, DATA_FLOAT, 517, s.cols, s.j0, s.d, ROWS_SHUFFLED);
    check_dot(k, &r, type, DATA_INTEGER, 517, s.cols, s.j0, s.d, ROWS_LAST);
  }
}

START_TEST(q8_0_dot_on_column_slices) { dot_on_slices(LZN_WEIGHTS_Q8_0, 0x9e0005u); }
END_TEST
START_TEST(q4_0_dot_on_column_slices) { dot_on_slices(LZN_WEIGHTS_Q4_0, 0x9e0006u); }
END_TEST

/* n = 1..40 rows: every split into full groups and a rest. */
START_TEST(dot_every_group_split) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x9e0007u};
  static const size_t dims[] = {5, 32, 130, 1100};
  for (int ti = 0; ti < 2; ti++) {
    const lzn_weight_type type = ti ? LZN_WEIGHTS_Q4_0 : LZN_WEIGHTS_Q8_0;
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
      for (size_t f = 1; f <= 40; f++) {
        check_dot(k, &r, type, DATA_INTEGER, f, dims[di], 0, dims[di], ROWS_ALL);
        check_gemv(k, &r, type, DATA_FLOAT, f, f, dims[di]);
      }
  }
}
END_TEST

/* A row's product does not depend on the rows beside it: inside a group
 * of 8 (whose sums vec_hsum8 adds side by side) and alone (vec_hsum) it is
 * the same bits, so threads that cut the rows anywhere give the
 * single-thread result. Float data, so that the order of the adds shows. */
START_TEST(dot_in_a_group_is_the_row_alone_bit_for_bit) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x9e0008u};
  static const size_t dims[] = {32, 256, 4128};
  enum { ROWS = 17 }; /* two groups and one row after them */
  int32_t all[ROWS];
  for (int i = 0; i < ROWS; i++) all[i] = i;
  for (int ti = 0; ti < 2; ti++) {
    const lzn_weight_type type = ti ? LZN_WEIGHTS_Q4_0 : LZN_WEIGHTS_Q8_0;
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
      const size_t d = dims[di];
      qmatrix m = make_qmatrix(&r, type, DATA_FLOAT, ROWS, d, 0, d, all, ROWS);
      guarded x = make_x(&r, DATA_FLOAT, d);
      float grouped[ROWS];
      k->type[type].gemv.fn(grouped, m.mem.data, m.row_bytes, d, ROWS, x.data);
      for (int i = 0; i < ROWS; i++) {
        float alone;
        k->type[type].dot_rows.fn(&alone, m.mem.data, m.row_bytes, d, &all[i], 1, x.data);
        ck_assert_msg(memcmp(&alone, &grouped[i], sizeof alone) == 0, "%s %s d=%zu row %d: %.9g in its group, %.9g alone",
                      k->name, type_name(type), d, i, (double)grouped[i], (double)alone);
      }
      guarded_free(&x);
      guarded_free(&m.mem);
    }
  }
}
END_TEST

/* ------------------------------------------------------------- axpy_rows */

/* The two axpy slots: axpy_rows (fp32 coefficients) and axpy_rows_q8
 * (coefficients rounded to int8 per group of rows). */
typedef enum { AXPY_FP32, AXPY_Q8 } axpy_slot;

static lzn_axpy_rows_fn axpy_fn(const lzn_kernel_table *k, lzn_weight_type type, axpy_slot slot) {
  return slot == AXPY_Q8 ? k->type[type].axpy_rows_q8.fn : k->type[type].axpy_rows.fn;
}

/* The largest |coef[t] * d_t| (fp32, as the kernels make it) of block b
 * over the group of rows [t0, t0 + g). */
static double group_max(lzn_weight_type type, const void *w, size_t row_bytes, const int32_t *idx,
                        const float *coef, size_t t0, size_t g, size_t b) {
  double m = 0.0;
  for (size_t t = t0; t < t0 + g; t++) {
    const float a = coef[t] * (float)block_scale(type, (const char *)w + (size_t)idx[t] * row_bytes, b);
    if (fabs((double)a) > m) m = fabs((double)a);
  }
  return m;
}

/* One axpy_rows (or axpy_rows_q8) call, active vs reference, on the column
 * slice [j0, j0 + d) of an f-row matrix of `cols` columns; y is the slice
 * of a guarded vector of cols floats, and the columns outside the slice
 * must be left alone. */
static void check_axpy_slot(const lzn_kernel_table *k, test_rng *r, lzn_weight_type type, axpy_slot slot,
                            data_kind kind, size_t f, size_t cols, size_t j0, size_t d, rows_pattern pattern) {
  int32_t *idx = malloc(rows_capacity(f) * sizeof(int32_t));
  float *coef = malloc(rows_capacity(f) * sizeof(float));
  ck_assert(idx && coef);
  const size_t n = make_rows(r, pattern, f, idx);
  qmatrix m = make_qmatrix(r, type, kind, f, cols, j0, d, idx, n);
  const size_t j0_bytes = lzn_wtype_row_bytes(type, j0);
  const void *w = (const char *)m.mem.data + j0_bytes;
  for (size_t t = 0; t < n; t++)
    coef[t] = kind == DATA_INTEGER ? (float)((int)rng_below(r, 9) - 4) : rng_float(r);

  guarded y_mem = guarded_alloc(cols * sizeof(float));
  float *y = y_mem.data, *y0 = malloc(cols * sizeof(float)), *ref = malloc(cols * sizeof(float));
  ck_assert(y0 && ref);
  for (size_t j = 0; j < cols; j++)
    y0[j] = kind == DATA_INTEGER ? (float)((int)rng_below(r, 129) - 64) : 4.0f * rng_float(r);
  memcpy(y, y0, cols * sizeof(float));
  memcpy(ref, y0, cols * sizeof(float));

  axpy_fn(reference_kernels(), type, slot)(ref + j0, d, w, m.row_bytes, idx, coef, n);
  axpy_fn(k, type, slot)(y + j0, d, w, m.row_bytes, idx, coef, n);
  const size_t n_groups = (n + LZN_AXPY_Q8_GROUP - 1) / LZN_AXPY_Q8_GROUP;

  for (size_t j = 0; j < cols; j++) {
    if (j < j0 || j >= j0 + d) {
      if (memcmp(&y[j], &y0[j], sizeof(float)) != 0)
        ck_abort_msg("%s axpy_rows wrote y[%zu] outside its slice [%zu, %zu)", type_name(type), j, j0,
                     j0 + d);
      continue;
    }
    double bound = 0.0;
    const size_t b = (j - j0) / LZN_QK, jb = (j - j0) % LZN_QK;
    if (slot == AXPY_Q8) {
      /* Never exact: s = m / 127 is no short binary fraction. */
      double sum_abs = fabs((double)y0[j]);
      for (size_t t0 = 0; t0 < n; t0 += LZN_AXPY_Q8_GROUP) {
        const size_t g = n - t0 < LZN_AXPY_Q8_GROUP ? n - t0 : LZN_AXPY_Q8_GROUP;
        double q_abs = 0.0;
        for (size_t t = t0; t < t0 + g; t++)
          q_abs += abs(block_value(type, (const char *)w + (size_t)idx[t] * m.row_bytes, b, jb));
        sum_abs += group_max(type, w, m.row_bytes, idx, coef, t0, g, b) * q_abs;
      }
      bound = ROUNDING_SLACK * AXPY_Q8_ROUNDINGS(n_groups) * FLT_EPSILON * sum_abs +
              UNDERFLOW_SLACK * (double)n_groups;
    } else if (kind == DATA_FLOAT) {
      double sum_abs = fabs((double)y0[j]);
      for (size_t t = 0; t < n; t++) {
        const char *row = (const char *)w + (size_t)idx[t] * m.row_bytes;
        const float cd = coef[t] * (float)block_scale(type, row, b); /* the kernels' fp32 product */
        sum_abs += fabs((double)cd * block_value(type, row, b, jb));
      }
      bound = ROUNDING_SLACK * AXPY_ROUNDINGS(n) * FLT_EPSILON * sum_abs + UNDERFLOW_SLACK * (double)n;
    }
    if (!(fabs((double)y[j] - (double)ref[j]) <= bound))
      ck_abort_msg("%s %s %s %s: f=%zu cols=%zu j0=%zu d=%zu n=%zu: y[%zu] = %.9g, reference %.9g "
                   "(bound %.3g)",
                   type_name(type), slot == AXPY_Q8 ? "axpy_rows_q8" : "axpy_rows",
                   kind == DATA_INTEGER ? "integer" : "float", pattern_names[pattern], f, cols, j0, d, n, j - j0,
                   (double)y[j], (double)ref[j], bound);
  }
  free(idx);
  free(coef);
  free(y0);
  free(ref);
  guarded_free(&m.mem);
  guarded_free(&y_mem);
}

static void check_axpy(const lzn_kernel_table *k, test_rng *r, lzn_weight_type type, data_kind kind, size_t f,
                       size_t cols, size_t j0, size_t d, rows_pattern pattern) {
  check_axpy_slot(k, r, type, AXPY_FP32, kind, f, cols, j0, d, pattern);
  check_axpy_slot(k, r, type, AXPY_Q8, kind, f, cols, j0, d, pattern);
}

static void axpy_all_patterns(lzn_weight_type type, data_kind kind, uint64_t seed) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {seed};
  for (size_t di = 0; di < N_TEST_DIMS; di++) {
    const size_t d = test_dims[di], f = test_rows(d);
    for (int p = 0; p < ROWS_N_PATTERNS; p++) check_axpy(k, &r, type, kind, f, d, 0, d, (rows_pattern)p);
  }
}

START_TEST(q8_0_axpy_exact_on_integer_data) { axpy_all_patterns(LZN_WEIGHTS_Q8_0, DATA_INTEGER, 0x9e0011u); }
END_TEST
START_TEST(q8_0_axpy_within_rounding_on_float_data) { axpy_all_patterns(LZN_WEIGHTS_Q8_0, DATA_FLOAT, 0x9e0012u); }
END_TEST
START_TEST(q4_0_axpy_exact_on_integer_data) { axpy_all_patterns(LZN_WEIGHTS_Q4_0, DATA_INTEGER, 0x9e0013u); }
END_TEST
START_TEST(q4_0_axpy_within_rounding_on_float_data) { axpy_all_patterns(LZN_WEIGHTS_Q4_0, DATA_FLOAT, 0x9e0014u); }
END_TEST

static void axpy_on_slices(lzn_weight_type type, uint64_t seed) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {seed};
  for (size_t i = 0; i < N_TEST_SLICES; i++) {
    const slice s = test_slices[i];
    check_axpy(k, &r, type, DATA_INTEGER, 517, s.cols, s.j0, s.d, ROWS_RANDOM_50);
    check_axpy(k, &r, type, DATA_FLOAT, 517, s.cols, s.j0, s.d, ROWS_SHUFFLED);
    check_axpy(k, &r, type, DATA_INTEGER, 517, s.cols, s.j0, s.d, ROWS_LAST);
  }
}

START_TEST(q8_0_axpy_on_column_slices) { axpy_on_slices(LZN_WEIGHTS_Q8_0, 0x9e0015u); }
END_TEST
START_TEST(q4_0_axpy_on_column_slices) { axpy_on_slices(LZN_WEIGHTS_Q4_0, 0x9e0016u); }
END_TEST

START_TEST(axpy_every_group_split) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x9e0017u};
  static const size_t dims[] = {5, 32, 130, 1100};
  for (int ti = 0; ti < 2; ti++) {
    const lzn_weight_type type = ti ? LZN_WEIGHTS_Q4_0 : LZN_WEIGHTS_Q8_0;
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
      for (size_t f = 1; f <= 40; f++) check_axpy(k, &r, type, DATA_INTEGER, f, dims[di], 0, dims[di], ROWS_ALL);
  }
}
END_TEST

/* axpy_rows_q8 against the exact sum in double, on float data: within the
 * error kernels.h states for the rounding of the coefficients (each coef *
 * d moves by at most m / 254, m the group's largest), plus the fp32
 * roundings of the products and the sums. Every ISA. */
START_TEST(axpy_q8_within_its_stated_error) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x9e0018u};
  static const size_t dims[] = {33, 1001, 4096};
  for (int ti = 0; ti < 2; ti++) {
    const lzn_weight_type type = ti ? LZN_WEIGHTS_Q4_0 : LZN_WEIGHTS_Q8_0;
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
      const size_t d = dims[di], f = 403;
      int32_t *idx = malloc(rows_capacity(f) * sizeof(int32_t));
      float *coef = malloc(rows_capacity(f) * sizeof(float)), *y = calloc(d, sizeof(float));
      ck_assert(idx && coef && y);
      const size_t n = make_rows(&r, ROWS_RANDOM_50, f, idx);
      for (size_t t = 0; t < n; t++) coef[t] = rng_float(&r) * (rng_below(&r, 8) == 0 ? 10.0f : 1.0f);
      qmatrix m = make_qmatrix(&r, type, DATA_FLOAT, f, d, 0, d, idx, n);
      k->type[type].axpy_rows_q8.fn(y, d, m.mem.data, m.row_bytes, idx, coef, n);
      const size_t n_groups = (n + LZN_AXPY_Q8_GROUP - 1) / LZN_AXPY_Q8_GROUP;
      for (size_t j = 0; j < d; j++) {
        const size_t b = j / LZN_QK, jb = j % LZN_QK;
        double exact = 0.0, moved = 0.0, sum_abs = 0.0;
        for (size_t t0 = 0; t0 < n; t0 += LZN_AXPY_Q8_GROUP) {
          const size_t g = n - t0 < LZN_AXPY_Q8_GROUP ? n - t0 : LZN_AXPY_Q8_GROUP;
          const double mx = group_max(type, m.mem.data, m.row_bytes, idx, coef, t0, g, b);
          for (size_t t = t0; t < t0 + g; t++) {
            const char *row = (const char *)m.mem.data + (size_t)idx[t] * m.row_bytes;
            const int q = block_value(type, row, b, jb);
            exact += (double)coef[t] * block_scale(type, row, b) * q;
            moved += mx * AXPY_Q8_STEP_FRACTION * abs(q);
            sum_abs += mx * abs(q);
          }
        }
        const double bound = moved + ROUNDING_SLACK * AXPY_Q8_ROUNDINGS(n_groups) * FLT_EPSILON * sum_abs +
                             UNDERFLOW_SLACK * (double)n;
        if (!(fabs((double)y[j] - exact) <= bound))
          ck_abort_msg("%s axpy_rows_q8 d=%zu n=%zu: y[%zu] = %.9g, exact %.9g, stated bound %.3g", type_name(type),
                       d, n, j, (double)y[j], exact, bound);
      }
      free(idx);
      free(coef);
      free(y);
      guarded_free(&m.mem);
    }
  }
}
END_TEST

/* The rounding of kernels.h by hand: one group of 3 Q8_0 rows with d = 1,
 * coefficients 127, 62.5, -0.5: m = 127, s = 1, alpha = rint(127, 62.5,
 * -0.5) = 127, 62, 0 (half to even: half away would give 63 and -1). */
START_TEST(axpy_q8_rounds_half_to_even) {
  const lzn_kernel_table *k = active_kernels();
  const lzn_kernel_table *ref = reference_kernels();
  lzn_block_q8_0 rows[3];
  for (int i = 0; i < 3; i++) {
    rows[i].d = F16_ONE;
    for (int j = 0; j < LZN_QK; j++) rows[i].qs[j] = (int8_t)(j - 7 * i);
  }
  const int32_t idx[3] = {0, 1, 2};
  const float coef[3] = {127.0f, 62.5f, -0.5f};
  for (int which = 0; which < 2; which++) {
    float y[LZN_QK];
    for (int j = 0; j < LZN_QK; j++) y[j] = 0.0f;
    (which ? k : ref)->type[LZN_WEIGHTS_Q8_0].axpy_rows_q8.fn(y, LZN_QK, rows, sizeof rows[0], idx, coef, 3);
    for (int j = 0; j < LZN_QK; j++) {
      const float want = (float)(127 * rows[0].qs[j] + 62 * rows[1].qs[j] + 0 * rows[2].qs[j]);
      ck_assert_msg(y[j] == want, "%s axpy_rows_q8: y[%d] = %.9g, want %.9g", which ? k->name : "reference", j,
                    (double)y[j], (double)want);
    }
  }
}
END_TEST

/* ---------------------------------------------------- from_f32, to_f32 */

/* Inputs for the conversions, block by block, of several kinds. */
typedef enum {
  X_UNIFORM,    /* [-1, 1) */
  X_SCALED,     /* [-1, 1) times 10^e per block, e in [-6, 4] (Q4_0's d = 1e4 / 8 fits fp16) */
  X_TIES,       /* amax 127 (d = 1): halves, their neighbours, small integers */
  X_ZERO,       /* a block of zeros */
  X_ONE_HUGE,   /* one value 1e4 among values ~1e-2 */
  X_NEG_MAX,    /* the largest magnitude negative, and +max - tiny elsewhere */
  X_TINY,       /* amax ~1e-38: the fp32 scale is subnormal */
  X_N_KINDS
} x_kind;

static float x_value(test_rng *r, x_kind kind, size_t j, float block_scale_value) {
  switch (kind) {
  case X_UNIFORM: return rng_float(r);
  case X_SCALED: return rng_float(r) * block_scale_value;
  case X_TIES: {
    if (j == 0) return 127.0f;
    const float half = (float)((int)rng_below(r, 254) - 127) + 0.5f;
    switch (rng_below(r, 4)) {
    case 0: return half;
    case 1: return nextafterf(half, 0.0f);
    case 2: return nextafterf(half, half > 0 ? INFINITY : -INFINITY);
    default: return (float)((int)rng_below(r, 255) - 127);
    }
  }
  case X_ZERO: return 0.0f;
  case X_ONE_HUGE: return j == 7 ? 1e4f : 1e-2f * rng_float(r);
  case X_NEG_MAX: return j == 3 ? -5.0f : j == 20 ? 4.999f : 4.0f * rng_float(r);
  case X_TINY: return 1e-38f * rng_float(r);
  case X_N_KINDS: break;
  }
  return 0.0f;
}

/* d values, each block of one kind at random (kind < X_N_KINDS: all of it). */
static void make_values(test_rng *r, float *v, size_t d, int only_kind) {
  for (size_t b = 0; b < n_blocks_of(d); b++) {
    const x_kind kind = only_kind >= 0 ? (x_kind)only_kind : (x_kind)rng_below(r, X_N_KINDS);
    const float scale = powf(10.0f, (float)((int)rng_below(r, 11) - 6));
    for (size_t j = b * LZN_QK; j < d && j < (b + 1) * LZN_QK; j++) v[j] = x_value(r, kind, j % LZN_QK, scale);
  }
}

static const size_t conversion_dims[] = {1, 31, 32, 33, 100, 1001, 4096, 4097};
#define N_CONVERSION_DIMS (sizeof conversion_dims / sizeof conversion_dims[0])

/* The active from_f32 must give the reference's bytes (Q8_0 has SIMD
 * versions: same formula, same rounding, so equality is exact), and to_f32
 * the reference's floats. Outputs end at a guard page. */
START_TEST(conversions_match_reference_bytes) {
  const lzn_kernel_table *k = active_kernels(), *ref = reference_kernels();
  test_rng r = {0x9e0021u};
  float *v = malloc(4097 * sizeof(float)), *back_ref = malloc(4097 * sizeof(float));
  ck_assert(v && back_ref);
  for (int ti = 0; ti < 2; ti++) {
    const lzn_weight_type type = ti ? LZN_WEIGHTS_Q4_0 : LZN_WEIGHTS_Q8_0;
    for (size_t di = 0; di < N_CONVERSION_DIMS; di++)
      for (int kind = -1; kind < X_N_KINDS; kind++)
        for (int rep = 0; rep < 4; rep++) {
          const size_t d = conversion_dims[di], bytes = lzn_wtype_row_bytes(type, d);
          make_values(&r, v, d, kind);
          guarded got = guarded_alloc(bytes), back = guarded_alloc(d * sizeof(float));
          unsigned char *want = malloc(bytes);
          ck_assert_ptr_nonnull(want);
          ref->type[type].from_f32.fn(want, v, d);
          k->type[type].from_f32.fn(got.data, v, d);
          for (size_t i = 0; i < bytes; i++)
            if (((unsigned char *)got.data)[i] != want[i])
              ck_abort_msg("%s from_f32 d=%zu kind %d: byte %zu (block %zu) = 0x%02x, reference 0x%02x",
                           type_name(type), d, kind, i, i / lzn_wtype_block_bytes(type),
                           ((unsigned char *)got.data)[i], want[i]);
          ref->type[type].to_f32.fn(back_ref, want, d);
          k->type[type].to_f32.fn(back.data, want, d);
          if (memcmp(back.data, back_ref, d * sizeof(float)) != 0)
            ck_abort_msg("%s to_f32 d=%zu differs from the reference", type_name(type), d);
          free(want);
          guarded_free(&got);
          guarded_free(&back);
        }
  }
  free(v);
  free(back_ref);
}
END_TEST

/* The largest-magnitude value of a block with its sign (the first one). */
static float block_max(const float *v, size_t n) {
  float amax = 0.0f, max = 0.0f;
  for (size_t j = 0; j < n; j++)
    if (fabsf(v[j]) > amax) amax = fabsf(v[j]), max = v[j];
  return max;
}

/* x -> from_f32 -> to_f32 is within the bound above of x, per element; the
 * padding of the last block is value 0; a block of zeros has d = 0. */
static void check_round_trip(const lzn_kernel_table *k, lzn_weight_type type, const float *v, size_t d,
                             const char *what) {
  const size_t bytes = lzn_wtype_row_bytes(type, d), nb = n_blocks_of(d);
  void *q = malloc(bytes);
  float *back = malloc(nb * LZN_QK * sizeof(float));
  ck_assert(q && back);
  k->type[type].from_f32.fn(q, v, d);
  k->type[type].to_f32.fn(back, q, nb * LZN_QK); /* the padding too */
  for (size_t b = 0; b < nb; b++) {
    const size_t len = d - b * LZN_QK < LZN_QK ? d - b * LZN_QK : LZN_QK;
    const float max = block_max(v + b * LZN_QK, len);
    const float scale = type == LZN_WEIGHTS_Q8_0 ? fabsf(max) / 127.0f : max / -8.0f; /* fp32, as stored before fp16 */
    const double stored = block_scale(type, q, b);
    if (max == 0.0f) ck_assert_msg(stored == 0.0, "%s %s: block %zu of zeros has d = %g", type_name(type), what, b, stored);
    for (size_t j = 0; j < LZN_QK; j++) {
      const int value = block_value(type, q, b, j);
      if (j >= len) {
        if (value != 0 || back[b * LZN_QK + j] != 0.0f)
          ck_abort_msg("%s %s: padding element %zu of block %zu is %d", type_name(type), what, j, b, value);
        continue;
      }
      const double x = v[b * LZN_QK + j];
      double steps = ROUND_TRIP_HALF_STEP;
      if (type == LZN_WEIGHTS_Q4_0 && scale != 0.0f && x / scale > 7.49) steps = 1.0; /* clamped to 7 */
      double bound = fabs((double)scale) * (steps + ROUND_TRIP_FP32_STEPS) +
                     abs(value) * fabs((double)scale - stored) + FLT_EPSILON * fabs(x);
      /* A scale below fp16's smallest subnormal is stored as 0: the block
       * flushes to zero. */
      if (stored == 0.0) bound = fabs((double)max);
      const double err = fabs(x - (double)back[b * LZN_QK + j]);
      if (!(err <= bound))
        ck_abort_msg("%s %s d=%zu: element %zu: %.9g -> %d * %.9g = %.9g, error %.3g > bound %.3g (d fp32 %.9g)",
                     type_name(type), what, d, b * LZN_QK + j, x, value, stored, (double)back[b * LZN_QK + j],
                     err, bound, (double)scale);
    }
  }
  free(q);
  free(back);
}

START_TEST(round_trip_within_half_a_step) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x9e0022u};
  float *v = malloc(4097 * sizeof(float));
  ck_assert_ptr_nonnull(v);
  static const char *const kind_names[X_N_KINDS] = {"uniform", "scaled", "ties", "zero",
                                                    "one huge", "negative max", "tiny"};
  for (int ti = 0; ti < 2; ti++) {
    const lzn_weight_type type = ti ? LZN_WEIGHTS_Q4_0 : LZN_WEIGHTS_Q8_0;
    for (size_t di = 0; di < N_CONVERSION_DIMS; di++)
      for (int kind = 0; kind < X_N_KINDS; kind++) {
        make_values(&r, v, conversion_dims[di], kind);
        check_round_trip(k, type, v, conversion_dims[di], kind_names[kind]);
      }
  }
  free(v);
}
END_TEST

/* Known blocks, byte by byte. */
START_TEST(known_blocks) {
  const lzn_kernel_table *k = active_kernels();
  float v[LZN_QK];
  /* Q8_0: amax 127 gives d = 1 and q = roundf(x): halves away from zero. */
  lzn_block_q8_0 q8;
  for (size_t j = 0; j < LZN_QK; j++) v[j] = 0.0f;
  v[0] = 127.0f, v[1] = 2.5f, v[2] = -2.5f, v[3] = 0.49999997f, v[4] = -0.5f, v[5] = -127.0f, v[6] = 3.4999998f;
  k->type[LZN_WEIGHTS_Q8_0].from_f32.fn(&q8, v, LZN_QK);
  ck_assert_uint_eq(q8.d, F16_ONE);
  static const int8_t want8[7] = {127, 3, -3, 0, -1, -127, 3};
  for (size_t j = 0; j < 7; j++) ck_assert_int_eq(q8.qs[j], want8[j]);
  /* Q8_0: one value of 33 elements; the second block is padding only but
   * the first element. */
  lzn_block_q8_0 two[2];
  float w33[33] = {0};
  w33[32] = -1.0f;
  k->type[LZN_WEIGHTS_Q8_0].from_f32.fn(two, w33, 33);
  ck_assert_uint_eq(two[0].d, 0);
  ck_assert_uint_eq(two[1].d, lzn_f32_to_f16(1.0f / 127.0f));
  ck_assert_int_eq(two[1].qs[0], -127);
  for (size_t j = 1; j < LZN_QK; j++) ck_assert_int_eq(two[1].qs[j], 0);
  /* Q4_0: max -8 (negative) gives d = 1: -8 -> nibble 0, 7.4 -> 15,
   * 7.6 -> clamped to 15, 0 -> 8, the first of +-8 sets the sign. */
  lzn_block_q4_0 q4;
  for (size_t j = 0; j < LZN_QK; j++) v[j] = 0.0f;
  v[0] = -8.0f, v[1] = 7.4f, v[2] = 7.6f, v[16] = 8.0f, v[17] = -0.5f, v[18] = 0.5f;
  k->type[LZN_WEIGHTS_Q4_0].from_f32.fn(&q4, v, LZN_QK);
  ck_assert_uint_eq(q4.d, F16_ONE);
  ck_assert_uint_eq(q4.qs[0], 0x00 | 15u << 4); /* -8 -> 0; 8 -> 16 clamped to 15 */
  ck_assert_uint_eq(q4.qs[1], 15u | 8u << 4);   /* 7.4 -> 15 (7.4 + 8.5 = 15.9); -0.5 -> 8 */
  ck_assert_uint_eq(q4.qs[2], 15u | 9u << 4);   /* 7.6 -> 15 (clamped); 0.5 -> 9 (half up) */
  ck_assert_uint_eq(q4.qs[3], 8u | 8u << 4);
  /* Positive max: d negative. */
  for (size_t j = 0; j < LZN_QK; j++) v[j] = 0.0f;
  v[5] = 4.0f, v[6] = -2.0f;
  k->type[LZN_WEIGHTS_Q4_0].from_f32.fn(&q4, v, LZN_QK);
  ck_assert_uint_eq(q4.d, lzn_f32_to_f16(-0.5f));
  ck_assert_uint_eq(q4.qs[5] & 0x0f, 0); /* 4 / -0.5 = -8 -> 0 */
  ck_assert_uint_eq(q4.qs[6] & 0x0f, 12); /* -2 / -0.5 = 4 -> 12 */
  /* All zero: d = 0 / -8 = -0 (fp16 0x8000, as llama.cpp stores it), every
   * nibble 8. */
  for (size_t j = 0; j < LZN_QK; j++) v[j] = 0.0f;
  k->type[LZN_WEIGHTS_Q4_0].from_f32.fn(&q4, v, LZN_QK);
  ck_assert_uint_eq(q4.d, 0x8000u);
  for (size_t j = 0; j < LZN_QK / 2; j++) ck_assert_uint_eq(q4.qs[j], 0x88);
}
END_TEST

/* The whole path the library runs: quantize x with the active Q8_0
 * from_f32, dot against quantized weights, compare with the exact dot of
 * the dequantized weights and the unquantized x, within what quantizing x
 * can change: per element half a step of x's block plus |q| <= 127 times
 * the fp16 rounding of the scale (2^-11 relative): 0.5 + 127 / 2048 < 0.57
 * steps, 0.6 with margin; plus the kernel's fp32 sums (DOT_ROUNDINGS for 32
 * blocks: < 5e-6 of sum |w x|, 1e-5 with margin). */
#define X_QUANT_STEPS 0.6
#define X_DOT_RELATIVE 1e-5
START_TEST(dot_of_quantized_x_tracks_fp32) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x9e0023u};
  const size_t d = 1001, f = 64, nb = n_blocks_of(d);
  float *xf = malloc(d * sizeof(float)), *wf = malloc(nb * LZN_QK * sizeof(float)), out[64];
  lzn_block_q8_0 *xq = malloc(nb * sizeof *xq);
  ck_assert(xf && wf && xq);
  fill_random(&r, xf, d);
  k->type[LZN_WEIGHTS_Q8_0].from_f32.fn(xq, xf, d);
  for (int ti = 0; ti < 2; ti++) {
    const lzn_weight_type type = ti ? LZN_WEIGHTS_Q4_0 : LZN_WEIGHTS_Q8_0;
    int32_t idx[64];
    for (size_t i = 0; i < f; i++) idx[i] = (int32_t)i;
    qmatrix m = make_qmatrix(&r, type, DATA_FLOAT, f, d, 0, d, idx, f);
    k->type[type].gemv.fn(out, m.mem.data, m.row_bytes, d, f, xq);
    for (size_t i = 0; i < f; i++) {
      const char *row = (const char *)m.mem.data + i * m.row_bytes;
      k->type[type].to_f32.fn(wf, row, d);
      double exact = 0.0, bound = 0.0, sum_abs = 0.0;
      for (size_t j = 0; j < d; j++) {
        exact += (double)wf[j] * xf[j];
        /* x's quantization error: half a step of its block, |w| times. */
        sum_abs += fabs((double)wf[j] * xf[j]);
        bound += fabs((double)wf[j]) * X_QUANT_STEPS * block_scale(LZN_WEIGHTS_Q8_0, xq, j / LZN_QK);
      }
      bound += X_DOT_RELATIVE * sum_abs;
      if (!(fabs((double)out[i] - exact) <= bound))
        ck_abort_msg("%s gemv row %zu: %.9g, fp32 dot %.9g, bound %.3g", type_name(type), i,
                     (double)out[i], exact, bound);
    }
    guarded_free(&m.mem);
  }
  free(xf);
  free(wf);
  free(xq);
}
END_TEST

/* ------------------------------------------------------------- suite */

static Suite *quant_suite(void) {
  Suite *s = suite_create("kernels_quant");
  TCase *table = tcase_create("table");
  tcase_add_test(table, block_type_slots_are_filled);
  suite_add_tcase(s, table);

  TCase *conv = tcase_create("conversions");
  tcase_set_timeout(conv, 60);
  tcase_add_test(conv, conversions_match_reference_bytes);
  tcase_add_test(conv, round_trip_within_half_a_step);
  tcase_add_test(conv, known_blocks);
  suite_add_tcase(s, conv);

  TCase *dot = tcase_create("dot_rows, gemv");
  tcase_set_timeout(dot, 120);
  tcase_add_test(dot, q8_0_dot_exact_on_integer_data);
  tcase_add_test(dot, q8_0_dot_within_rounding_on_float_data);
  tcase_add_test(dot, q4_0_dot_exact_on_integer_data);
  tcase_add_test(dot, q4_0_dot_within_rounding_on_float_data);
  tcase_add_test(dot, q8_0_dot_on_column_slices);
  tcase_add_test(dot, q4_0_dot_on_column_slices);
  tcase_add_test(dot, dot_every_group_split);
  tcase_add_test(dot, dot_in_a_group_is_the_row_alone_bit_for_bit);
  tcase_add_test(dot, dot_of_quantized_x_tracks_fp32);
  suite_add_tcase(s, dot);

  TCase *axpy = tcase_create("axpy_rows");
  tcase_set_timeout(axpy, 120);
  tcase_add_test(axpy, q8_0_axpy_exact_on_integer_data);
  tcase_add_test(axpy, q8_0_axpy_within_rounding_on_float_data);
  tcase_add_test(axpy, q4_0_axpy_exact_on_integer_data);
  tcase_add_test(axpy, q4_0_axpy_within_rounding_on_float_data);
  tcase_add_test(axpy, q8_0_axpy_on_column_slices);
  tcase_add_test(axpy, q4_0_axpy_on_column_slices);
  tcase_add_test(axpy, axpy_every_group_split);
  tcase_add_test(axpy, axpy_q8_within_its_stated_error);
  tcase_add_test(axpy, axpy_q8_rounds_half_to_even);
  suite_add_tcase(s, axpy);
  return s;
}

int main(void) { return run_suite(quant_suite()); }
