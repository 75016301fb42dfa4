/*
 * test_kernels.c: the active kernel table (the one LZN_ISA forces, else the
 * best this machine runs) against the reference table (ceiling scalar).
 * Run once per ISA (`make test` does), so every SIMD kernel is compared
 * with the specification over odd sizes, densities and index patterns.
 *
 * The row kernels (axpy_rows, dot_rows, gemv) and the conversions are
 * checked for every element type (F32, F16, BF16). Two kinds of data:
 *  - integer-valued (weights in [-8, 8], coefficients in [-4, 4]): every
 *    partial sum is an integer below 2^24, so fp32 is exact in any order and
 *    with or without FMA, and SIMD must equal scalar exactly. A wrong row,
 *    column, coefficient or tail lane shows up as a wrong integer. These
 *    weights are exact in fp16 and bf16 too.
 *  - random floats in [-1, 1), rounded to the weight type: checks against
 *    the rounding bounds below. A 16-bit weight widens to fp32 exactly, so
 *    the bounds are those of fp32 arithmetic on the widened weights.
 * Rows the kernel must not read are filled with NaN, and inputs end right
 * before an inaccessible page, so reading an inactive row, a column past d
 * or a weight past an array's end fails the test.
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

/* relu_compact only compares and copies: indices, count and values must be
 * identical to scalar, bit for bit. (No constant: the test uses memcmp.) */

/* A sum computed with k rounded operations per term is within
 * gamma_k * S of the exact sum, S = sum of |terms|, gamma_k = k*u/(1 - k*u),
 * u = FLT_EPSILON / 2 (Higham, "Accuracy and Stability of Numerical
 * Algorithms", 2002, section 3.1), whatever the order of the additions.
 * Scalar and SIMD each obey the bound, so they differ by at most
 * 2 * gamma_k * S ~ k * FLT_EPSILON * S. ROUNDING_SLACK covers the
 * 1 / (1 - k*u) factor (k*u < 1e-3 here) and the double-precision S. */
#define ROUNDING_SLACK 1.01
/* axpy_rows: y[j] passes through one multiply per row and at most one add
 * per row, k = n + 1 for n rows; FMA only removes roundings. */
#define AXPY_ROUNDINGS(n_rows) ((double)(n_rows) + 1.0)
/* dot_rows: one multiply and at most d - 1 adds per term in any summation
 * order (lanes, then a tree), k = d. */
#define DOT_ROUNDINGS(d) ((double)(d))
/* The AVX512_BF16 dot_rows and gemv (avx512bf16/bf16.c) split x into two
 * bf16 parts once per call, x = hi + lo + e with |e| <= 2^-16 |x| (the
 * second part rounds what the first left out, 8 more significant bits), so
 * a term w * x moves by at most 2^-16 |w x| and the sum by 2^-16 * S, on
 * top of the fp32 bound. (The products of bf16 pairs are exact in fp32;
 * subnormals flushed to zero fall under UNDERFLOW_SLACK.) */
#define BF16_X_ROUNDING (1.0 / 65536.0)
/* The bound above assumes no underflow; this absorbs the absolute error of
 * a subnormal product, per term (none is expected with these inputs). */
#define UNDERFLOW_SLACK ((double)FLT_MIN)

/* -------------------------------------------------------------- helpers */

typedef enum { DATA_INTEGER, DATA_FLOAT } data_kind;

static float random_value(test_rng *r, data_kind kind, int max_int) {
  if (kind == DATA_INTEGER) return (float)((int)rng_below(r, (uint64_t)(2 * max_int + 1)) - max_int);
  return rng_float(r);
}

/* ------------------------------------------------------ weight types */

/* The element types: every row kernel and conversion is checked for each. */
static const lzn_weight_type float_types[] = {LZN_WEIGHTS_F32, LZN_WEIGHTS_F16, LZN_WEIGHTS_BF16};
#define N_FLOAT_TYPES (sizeof float_types / sizeof float_types[0])

/* Weight i of an array of the type, widened to fp32 exactly. */
static float weight_at(lzn_weight_type type, const void *w, size_t i) {
  switch (type) {
  case LZN_WEIGHTS_F16: return lzn_f16_to_f32(((const uint16_t *)w)[i]);
  case LZN_WEIGHTS_BF16: return lzn_bf16_to_f32(((const uint16_t *)w)[i]);
  default: return ((const float *)w)[i];
  }
}

/* Stores v, rounded to nearest even for the 16-bit types (NaN stays NaN). */
static void set_weight(lzn_weight_type type, void *w, size_t i, float v) {
  switch (type) {
  case LZN_WEIGHTS_F16: ((uint16_t *)w)[i] = lzn_f32_to_f16(v); break;
  case LZN_WEIGHTS_BF16: ((uint16_t *)w)[i] = lzn_f32_to_bf16(v); break;
  default: ((float *)w)[i] = v; break;
  }
}

/* v as the type stores it, widened back. */
static float round_to_type(lzn_weight_type type, float v) {
  switch (type) {
  case LZN_WEIGHTS_F16: return lzn_f16_to_f32(lzn_f32_to_f16(v));
  case LZN_WEIGHTS_BF16: return lzn_bf16_to_f32(lzn_f32_to_bf16(v));
  default: return v;
  }
}

/* A matrix of f rows of ld weights of the type in guarded memory, the last
 * row ending at the guard page. Rows named in idx and columns [j0, j0 + d)
 * get data; the rest is NaN, so a kernel that reads them produces NaN. */
static guarded make_matrix(test_rng *r, lzn_weight_type type, data_kind kind, size_t f, size_t ld, size_t j0,
                           size_t d, const int32_t *idx, size_t n) {
  guarded g = guarded_alloc(f * lzn_wtype_row_bytes(type, ld));
  for (size_t i = 0; i < f * ld; i++) set_weight(type, g.data, i, NAN);
  for (size_t t = 0; t < n; t++) {
    const size_t row = (size_t)idx[t] * ld;
    if (!isnan(weight_at(type, g.data, row + j0))) continue; /* a repeated row keeps its values */
    for (size_t j = j0; j < j0 + d; j++) set_weight(type, g.data, row + j, random_value(r, kind, 8));
  }
  return g;
}

/* ---------------------------------------------------------- dispatch */

START_TEST(table_is_complete_and_consistent) {
  const lzn_kernel_table *k = active_kernels();
  ck_assert_int_ge(k->isa, LZN_ISA_SCALAR);
  ck_assert_int_lt(k->isa, LZN_ISA_COUNT);
  ck_assert_str_eq(k->name, lzn_isa_to_name(k->isa));
  ck_assert_ptr_nonnull(k->relu_compact.fn);
  ck_assert_int_le(k->relu_compact.isa, k->isa);
  /* No slot of a weight type is ever empty, and none is filled by an ISA
   * above the ceiling. */
  for (int w = 1; w < LZN_WEIGHT_TYPE_COUNT; w++) {
    const lzn_type_kernels *t = &k->type[w];
    ck_assert_msg(t->axpy_rows.fn && t->dot_rows.fn && t->gemv.fn && t->from_f32.fn && t->to_f32.fn &&
                      t->axpy_rows_q8.fn,
                  "type %s has an empty slot", lzn_weight_type_name((lzn_weight_type)w));
    /* An element type rounds no coefficient: its axpy_rows_q8 is its axpy_rows. */
    if (!lzn_wtype_is_block((lzn_weight_type)w))
      ck_assert_msg(t->axpy_rows_q8.fn == t->axpy_rows.fn && t->axpy_rows_q8.isa == t->axpy_rows.isa,
                    "type %s: axpy_rows_q8 is not axpy_rows", lzn_weight_type_name((lzn_weight_type)w));
    for (int op = 0; op < LZN_KOP_COUNT; op++)
      ck_assert_int_le(lzn_type_slot_isa(k, (lzn_weight_type)w, (lzn_kop)op), k->isa);
    /* Column slices start on a block boundary of every type. */
    ck_assert_uint_eq(LZN_WTYPE_MAX_BLOCK % lzn_wtype_block_size((lzn_weight_type)w), 0);
  }
}
END_TEST

/* ------------------------------------------------------- relu_compact */

static const size_t relu_lengths[] = {1, 7, 15, 16, 17, 33, 1000, 8197};
#define N_RELU_LENGTHS (sizeof relu_lengths / sizeof relu_lengths[0])

/* Runs scalar and active relu_compact on h[0..n) and requires identical
 * results. Inputs and outputs end at a guard page. */
static void check_relu_compact(const lzn_kernel_table *k, const float *h_src, size_t n, float threshold,
                               const char *what) {
  guarded h_mem = guarded_alloc(n * sizeof(float));
  guarded idx_mem = guarded_alloc(n * sizeof(int32_t)), val_mem = guarded_alloc(n * sizeof(float));
  float *h = h_mem.data;
  memcpy(h, h_src, n * sizeof(float));
  int32_t *ref_idx = malloc(n * sizeof(int32_t));
  float *ref_val = malloc(n * sizeof(float));
  ck_assert(ref_idx && ref_val);

  const size_t ref_n = reference_kernels()->relu_compact.fn(h, n, threshold, ref_idx, ref_val);
  int32_t *idx = idx_mem.data;
  float *val = val_mem.data;
  const size_t got_n = k->relu_compact.fn(h, n, threshold, idx, val);

  ck_assert_msg(got_n == ref_n, "relu_compact %s, n=%zu, threshold=%g: %zu active, scalar %zu",
                what, n, (double)threshold, got_n, ref_n);
  /* Plain ifs in the loops: a passing ck_assert costs a message to the
   * parent process, too slow per element. */
  for (size_t t = 0; t < ref_n; t++) {
    if (idx[t] != ref_idx[t])
      ck_abort_msg("relu_compact %s, n=%zu, threshold=%g: idx[%zu] = %d, scalar %d",
                   what, n, (double)threshold, t, idx[t], ref_idx[t]);
    if (memcmp(&val[t], &ref_val[t], sizeof(float)) != 0)
      ck_abort_msg("relu_compact %s, n=%zu, threshold=%g: val[%zu] = %a, scalar %a", what, n,
                   (double)threshold, t, (double)val[t], (double)ref_val[t]);
  }
  if (memcmp(h, h_src, n * sizeof(float)) != 0)
    ck_abort_msg("relu_compact %s, n=%zu: the input h was modified", what, n);
  free(ref_idx);
  free(ref_val);
  guarded_free(&h_mem);
  guarded_free(&idx_mem);
  guarded_free(&val_mem);
}

/* Negative ones too: the predictor compacts its scores (any sign) with it. */
static const float relu_thresholds[] = {0.0f, -0.0f, 0.25f, 1e-45f /* smallest subnormal */, -0.5f, -1e-45f};
#define N_RELU_THRESHOLDS (sizeof relu_thresholds / sizeof relu_thresholds[0])

/* Values that sit on the edges of the comparison. */
static float special_value(test_rng *r, float threshold) {
  switch (rng_below(r, 12)) {
  case 0: return NAN;
  case 1: return -NAN;
  case 2: return 0.0f;
  case 3: return -0.0f;
  case 4: return INFINITY;
  case 5: return -INFINITY;
  case 6: return threshold;
  case 7: return nextafterf(threshold, INFINITY);
  case 8: return nextafterf(threshold, -INFINITY);
  case 9: return 1e-45f;
  case 10: return FLT_MAX;
  default: {
    float snan; /* a signalling NaN: the compare must not trap or pass it */
    const uint32_t bits = 0x7fa00001u;
    memcpy(&snan, &bits, sizeof snan);
    return snan;
  }
  }
}

START_TEST(relu_compact_matches_scalar_on_random_inputs) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x5eed0001u};
  float *h = malloc(8197 * sizeof(float));
  ck_assert_ptr_nonnull(h);
  for (size_t li = 0; li < N_RELU_LENGTHS; li++) {
    const size_t n = relu_lengths[li];
    for (size_t ti = 0; ti < N_RELU_THRESHOLDS; ti++) {
      const float threshold = relu_thresholds[ti];
      /* Uniform in [-1, 1): about half active. */
      fill_random(&r, h, n);
      check_relu_compact(k, h, n, threshold, "uniform");
      /* Sparse: about 3 % positive, as after a trained ReLU layer. */
      for (size_t i = 0; i < n; i++) h[i] = rng_below(&r, 100) < 3 ? 1.0f + rng_float(&r) : -fabsf(rng_float(&r));
      check_relu_compact(k, h, n, threshold, "3% active");
      /* One in three a special value. */
      for (size_t i = 0; i < n; i++) h[i] = rng_below(&r, 3) == 0 ? special_value(&r, threshold) : rng_float(&r);
      check_relu_compact(k, h, n, threshold, "special values");
    }
  }
  free(h);
}
END_TEST

START_TEST(relu_compact_edge_densities) {
  const lzn_kernel_table *k = active_kernels();
  float *h = malloc(8197 * sizeof(float));
  ck_assert_ptr_nonnull(h);
  for (size_t li = 0; li < N_RELU_LENGTHS; li++) {
    const size_t n = relu_lengths[li];
    for (size_t i = 0; i < n; i++) h[i] = -1.0f;
    check_relu_compact(k, h, n, 0.0f, "none active");
    h[0] = 2.0f;
    check_relu_compact(k, h, n, 0.0f, "first only");
    h[0] = -1.0f, h[n - 1] = 3.0f;
    check_relu_compact(k, h, n, 0.0f, "last only");
    for (size_t i = 0; i < n; i++) h[i] = 1.0f + (float)i;
    check_relu_compact(k, h, n, 0.0f, "all active");
    for (size_t i = 0; i < n; i++) h[i] = (i & 1) ? 0.5f : -0.0f;
    check_relu_compact(k, h, n, 0.0f, "alternating with -0.0");
    for (size_t i = 0; i < n; i++) h[i] = NAN;
    check_relu_compact(k, h, n, 0.0f, "all NaN");
    for (size_t i = 0; i < n; i++) h[i] = 0.25f;
    check_relu_compact(k, h, n, 0.25f, "all equal to the threshold");
  }
  free(h);
}
END_TEST

/* Block b of 16 entries has entry i active iff bit i of b is set, for every
 * b < 2^16: each packing of a vector (every 8-lane mask twice over, every
 * 16-lane mask) is exercised, whatever the vector width. */
START_TEST(relu_compact_every_lane_pattern) {
  const lzn_kernel_table *k = active_kernels();
  const size_t n = 16u << 16;
  float *h = malloc(n * sizeof(float));
  ck_assert_ptr_nonnull(h);
  for (size_t i = 0; i < n; i++) h[i] = ((i >> 4) >> (i & 15)) & 1 ? 1.0f + (float)(i & 15) : -1.0f;
  check_relu_compact(k, h, n, 0.0f, "every lane pattern");
  free(h);
}
END_TEST

/* --------------------------------------------------------- axpy_rows */

static const size_t test_dims[] = {1, 7, 15, 16, 17, 31, 33, 64, 100, 1001, 2051};
#define N_TEST_DIMS (sizeof test_dims / sizeof test_dims[0])
#define TEST_ROWS 8197

/* One axpy_rows call, active vs scalar, on the type's matrix at column j0
 * (d columns, rows of ld weights, f rows): exact for integer data, within
 * the rounding bound for floats. Columns of y outside [j0, j0 + d) must be
 * left alone. */
static void check_axpy(const lzn_kernel_table *k, test_rng *r, lzn_weight_type type, data_kind kind,
                       size_t f, size_t ld, size_t j0, size_t d, rows_pattern pattern) {
  int32_t *idx = malloc(rows_capacity(f) * sizeof(int32_t));
  float *coef = malloc(rows_capacity(f) * sizeof(float));
  ck_assert(idx && coef);
  const size_t n = make_rows(r, pattern, f, idx);
  guarded w_mem = make_matrix(r, type, kind, f, ld, j0, d, idx, n);
  const size_t row_bytes = lzn_wtype_row_bytes(type, ld);
  const char *w = (const char *)w_mem.data + lzn_wtype_row_bytes(type, j0);
  for (size_t t = 0; t < n; t++) coef[t] = random_value(r, kind, 4);

  /* y is a slice of a row of ld floats, like a thread's share of y. */
  guarded y_mem = guarded_alloc(ld * sizeof(float));
  float *y_full = y_mem.data, *y0 = malloc(ld * sizeof(float)), *ref = malloc(ld * sizeof(float));
  ck_assert(y0 && ref);
  for (size_t j = 0; j < ld; j++) y0[j] = random_value(r, kind, 64);
  memcpy(y_full, y0, ld * sizeof(float));
  memcpy(ref, y0, ld * sizeof(float));

  reference_kernels()->type[type].axpy_rows.fn(ref + j0, d, w, row_bytes, idx, coef, n);
  k->type[type].axpy_rows.fn(y_full + j0, d, w, row_bytes, idx, coef, n);

  for (size_t j = 0; j < ld; j++) {
    if (j < j0 || j >= j0 + d) {
      if (memcmp(&y_full[j], &y0[j], sizeof(float)) != 0)
        ck_abort_msg("%s axpy_rows wrote y[%zu] outside its slice [%zu, %zu)", lzn_wtype_name(type), j,
                     j0, j0 + d);
      continue;
    }
    const double got = y_full[j], want = ref[j];
    double bound = 0.0;
    if (kind == DATA_FLOAT) {
      double sum_abs = fabs((double)y0[j]);
      for (size_t t = 0; t < n; t++)
        sum_abs += fabs((double)coef[t] * weight_at(type, w_mem.data, (size_t)idx[t] * ld + j));
      bound = ROUNDING_SLACK * AXPY_ROUNDINGS(n) * FLT_EPSILON * sum_abs + UNDERFLOW_SLACK * (double)n;
    }
    if (!(fabs(got - want) <= bound))
      ck_abort_msg("%s axpy_rows %s %s: f=%zu ld=%zu j0=%zu d=%zu n=%zu: y[%zu] = %.9g, scalar %.9g (bound %.3g)",
                   lzn_wtype_name(type), kind == DATA_INTEGER ? "integer" : "float", pattern_names[pattern],
                   f, ld, j0, d, n, j - j0, got, want, bound);
  }
  free(idx);
  free(coef);
  free(y0);
  free(ref);
  guarded_free(&w_mem);
  guarded_free(&y_mem);
}

static void axpy_all_patterns(lzn_weight_type type, data_kind kind, uint64_t seed) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {seed};
  for (size_t di = 0; di < N_TEST_DIMS; di++)
    for (int p = 0; p < ROWS_N_PATTERNS; p++)
      check_axpy(k, &r, type, kind, TEST_ROWS, test_dims[di], 0, test_dims[di], (rows_pattern)p);
}

/* The loop tests run once per element type: _i indexes float_types. */
START_TEST(axpy_rows_exact_on_integer_data) { axpy_all_patterns(float_types[_i], DATA_INTEGER, 0x5eed0002u); }
END_TEST

START_TEST(axpy_rows_within_rounding_on_float_data) {
  axpy_all_patterns(float_types[_i], DATA_FLOAT, 0x5eed0003u);
}
END_TEST

/* Column slices (ld > d), as the threaded down-projection passes them:
 * w + lzn_wtype_row_bytes(type, j0), d not a multiple of any vector width.
 * Slices start on 32-column block boundaries (32, 64) as kernels.h asks,
 * and, for the element types, anywhere (1, 3, 16, 33): a 2-byte-aligned
 * fp16 row start included. */
static const size_t slice_ld[] = {100, 2051};
static const size_t slice_j0[] = {1, 3, 16, 32, 33, 64};
static const size_t slice_d[] = {1, 7, 16, 17, 31, 33};

START_TEST(axpy_rows_on_column_slices) {
  const lzn_kernel_table *k = active_kernels();
  const lzn_weight_type type = float_types[_i];
  test_rng r = {0x5eed0004u};
  for (size_t li = 0; li < sizeof slice_ld / sizeof slice_ld[0]; li++)
    for (size_t ji = 0; ji < sizeof slice_j0 / sizeof slice_j0[0]; ji++)
      for (size_t di = 0; di < sizeof slice_d / sizeof slice_d[0]; di++) {
        const size_t ld = slice_ld[li], j0 = slice_j0[ji], d = slice_d[di];
        check_axpy(k, &r, type, DATA_INTEGER, 517, ld, j0, d, ROWS_RANDOM_50);
        check_axpy(k, &r, type, DATA_FLOAT, 517, ld, j0, d, ROWS_CLUSTERED);
      }
  /* The last column of the matrix in the slice: a tail read past d would
   * touch the guard page. */
  check_axpy(k, &r, type, DATA_INTEGER, 517, 2051, 2051 - 1000, 1000, ROWS_RANDOM_50);
  check_axpy(k, &r, type, DATA_INTEGER, 517, 2051, 2051 - 1001, 1001, ROWS_ALL);
  check_axpy(k, &r, type, DATA_FLOAT, 517, 2051, 2051 - 1001, 1001, ROWS_RANDOM_3);
}
END_TEST

/* Every group split: n = 0..40 rows (full groups of 8 and every rest). */
START_TEST(axpy_rows_every_group_split) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x5eed0005u};
  static const size_t dims[] = {5, 16, 130};
  for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
    for (size_t f = 1; f <= 40; f++)
      check_axpy(k, &r, float_types[_i], DATA_INTEGER, f, dims[di], 0, dims[di], ROWS_ALL);
}
END_TEST

/* ---------------------------------------------------------- dot_rows */

/* Checks out[t] (of rows[t], the widened weights of one row, d of them)
 * against the reference's ref[t]: exact for integer data, within the
 * rounding bound for floats. */
static void check_dot_result(const lzn_kernel_table *k, lzn_weight_type type, lzn_kop op_slot, data_kind kind,
                             const char *what, const void *w_data, size_t ld, size_t j0, size_t d, const float *x,
                             const int32_t *rows, size_t n, const float *out, const float *ref) {
  const char *op = op_slot == LZN_KOP_GEMV ? "gemv" : "dot_rows";
  /* Kernels that round x to the weights' type add that rounding. */
  const double x_rounding = type == LZN_WEIGHTS_BF16 && lzn_type_slot_isa(k, type, op_slot) == LZN_ISA_AVX512BF16
                                ? BF16_X_ROUNDING
                                : 0.0;
  for (size_t t = 0; t < n; t++) {
    double bound = 0.0;
    if (kind == DATA_FLOAT) {
      double sum_abs = 0.0;
      for (size_t j = 0; j < d; j++)
        sum_abs += fabs((double)weight_at(type, w_data, (size_t)rows[t] * ld + j0 + j) * x[j]);
      bound = (ROUNDING_SLACK * DOT_ROUNDINGS(d) * FLT_EPSILON + x_rounding) * sum_abs +
              UNDERFLOW_SLACK * (double)d;
    }
    if (!(fabs((double)out[t] - (double)ref[t]) <= bound))
      ck_abort_msg("%s %s %s %s: ld=%zu j0=%zu d=%zu n=%zu: out[%zu] (row %d) = %.9g, scalar %.9g (bound %.3g)",
                   lzn_wtype_name(type), op, kind == DATA_INTEGER ? "integer" : "float", what, ld, j0, d, n,
                   t, rows[t], (double)out[t], (double)ref[t], bound);
  }
}

/* One dot_rows call, active vs scalar, on the type's matrix at column j0
 * (d columns, rows of ld weights, f rows), x of d floats ending at a guard
 * page. */
static void check_dot(const lzn_kernel_table *k, test_rng *r, lzn_weight_type type, data_kind kind, size_t f,
                      size_t ld, size_t j0, size_t d, rows_pattern pattern) {
  int32_t *idx = malloc(rows_capacity(f) * sizeof(int32_t));
  ck_assert_ptr_nonnull(idx);
  const size_t n = make_rows(r, pattern, f, idx);
  guarded w_mem = make_matrix(r, type, kind, f, ld, j0, d, idx, n);
  const size_t row_bytes = lzn_wtype_row_bytes(type, ld);
  const char *w = (const char *)w_mem.data + lzn_wtype_row_bytes(type, j0);
  guarded x_mem = guarded_alloc(d * sizeof(float));
  float *x = x_mem.data;
  for (size_t j = 0; j < d; j++) x[j] = random_value(r, kind, 8);
  /* out has n entries ending at a guard page. */
  guarded out_mem = guarded_alloc((n ? n : 1) * sizeof(float));
  float *out = (float *)out_mem.data + (n ? 0 : 1), *ref = malloc((n + 1) * sizeof(float));
  ck_assert_ptr_nonnull(ref);

  reference_kernels()->type[type].dot_rows.fn(ref, w, row_bytes, d, idx, n, x);
  k->type[type].dot_rows.fn(out, w, row_bytes, d, idx, n, x);
  check_dot_result(k, type, LZN_KOP_DOT_ROWS, kind, pattern_names[pattern], w_mem.data, ld, j0, d, x, idx, n, out, ref);
  free(idx);
  free(ref);
  guarded_free(&w_mem);
  guarded_free(&x_mem);
  guarded_free(&out_mem);
}

static void dot_all_patterns(lzn_weight_type type, data_kind kind, uint64_t seed) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {seed};
  for (size_t di = 0; di < N_TEST_DIMS; di++)
    for (int p = 0; p < ROWS_N_PATTERNS; p++)
      check_dot(k, &r, type, kind, TEST_ROWS, test_dims[di], 0, test_dims[di], (rows_pattern)p);
}

START_TEST(dot_rows_exact_on_integer_data) { dot_all_patterns(float_types[_i], DATA_INTEGER, 0x5eed0006u); }
END_TEST

START_TEST(dot_rows_within_rounding_on_float_data) { dot_all_patterns(float_types[_i], DATA_FLOAT, 0x5eed0007u); }
END_TEST

START_TEST(dot_rows_on_column_slices) {
  const lzn_kernel_table *k = active_kernels();
  const lzn_weight_type type = float_types[_i];
  test_rng r = {0x5eed0008u};
  for (size_t li = 0; li < sizeof slice_ld / sizeof slice_ld[0]; li++)
    for (size_t ji = 0; ji < sizeof slice_j0 / sizeof slice_j0[0]; ji++)
      for (size_t di = 0; di < sizeof slice_d / sizeof slice_d[0]; di++) {
        const size_t ld = slice_ld[li], j0 = slice_j0[ji], d = slice_d[di];
        check_dot(k, &r, type, DATA_INTEGER, 517, ld, j0, d, ROWS_RANDOM_50);
        check_dot(k, &r, type, DATA_FLOAT, 517, ld, j0, d, ROWS_CLUSTERED);
      }
  check_dot(k, &r, type, DATA_INTEGER, 517, 2051, 2051 - 1000, 1000, ROWS_RANDOM_50);
  check_dot(k, &r, type, DATA_INTEGER, 517, 2051, 2051 - 1001, 1001, ROWS_ALL);
  check_dot(k, &r, type, DATA_FLOAT, 517, 2051, 2051 - 1001, 1001, ROWS_RANDOM_3);
}
END_TEST

START_TEST(dot_rows_every_group_split) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x5eed0009u};
  static const size_t dims[] = {5, 16, 130};
  for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
    for (size_t f = 1; f <= 40; f++)
      check_dot(k, &r, float_types[_i], DATA_INTEGER, f, dims[di], 0, dims[di], ROWS_ALL);
}
END_TEST

/* Rows longer than any kernel's internal chunk of x (avx512bf16/bf16.c
 * rounds x 4096 columns at a time), on a few rows. */
static const size_t long_dims[] = {4095, 4096, 4097, 8192 + 33};

START_TEST(dot_rows_on_long_rows) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x5eed0010u};
  for (size_t di = 0; di < sizeof long_dims / sizeof long_dims[0]; di++) {
    check_dot(k, &r, float_types[_i], DATA_INTEGER, 21, long_dims[di], 0, long_dims[di], ROWS_ALL);
    check_dot(k, &r, float_types[_i], DATA_FLOAT, 21, long_dims[di], 0, long_dims[di], ROWS_SHUFFLED);
  }
}
END_TEST

/* -------------------------------------------------------------- gemv */

/* One gemv call over rows [0, n_rows) of a matrix of n_rows + extra_rows
 * rows (columns [j0, j0 + d) of rows of ld weights), active vs scalar. The
 * extra rows and every column outside the slice are NaN: gemv must not
 * read them. With extra_rows = 0 the last row ends at the guard page. out
 * has n_rows entries ending at a guard page. */
static void check_gemv(const lzn_kernel_table *k, test_rng *r, lzn_weight_type type, data_kind kind,
                       size_t n_rows, size_t extra_rows, size_t ld, size_t j0, size_t d) {
  const size_t f = n_rows + extra_rows;
  int32_t *rows = malloc((n_rows + 1) * sizeof(int32_t));
  ck_assert_ptr_nonnull(rows);
  for (size_t t = 0; t < n_rows; t++) rows[t] = (int32_t)t;
  guarded w_mem = make_matrix(r, type, kind, f ? f : 1, ld, j0, d, rows, n_rows);
  const size_t row_bytes = lzn_wtype_row_bytes(type, ld);
  const char *w = (const char *)w_mem.data + lzn_wtype_row_bytes(type, j0);
  guarded x_mem = guarded_alloc(d * sizeof(float));
  float *x = x_mem.data;
  for (size_t j = 0; j < d; j++) x[j] = random_value(r, kind, 8);
  guarded out_mem = guarded_alloc((n_rows ? n_rows : 1) * sizeof(float));
  float *out = (float *)out_mem.data + (n_rows ? 0 : 1), *ref = malloc((n_rows + 1) * sizeof(float));
  ck_assert_ptr_nonnull(ref);

  reference_kernels()->type[type].gemv.fn(ref, w, row_bytes, d, n_rows, x);
  k->type[type].gemv.fn(out, w, row_bytes, d, n_rows, x);
  char what[64];
  snprintf(what, sizeof what, "rows 0..%zu of %zu", n_rows, f);
  check_dot_result(k, type, LZN_KOP_GEMV, kind, what, w_mem.data, ld, j0, d, x, rows, n_rows, out, ref);
  free(rows);
  free(ref);
  guarded_free(&w_mem);
  guarded_free(&x_mem);
  guarded_free(&out_mem);
}

/* 0 rows, fewer than a group, groups and a rest, a few hundred rows. */
static const size_t gemv_rows[] = {0, 1, 7, 8, 9, 31, 33, 100, 333};

static void gemv_all_sizes(lzn_weight_type type, data_kind kind, uint64_t seed) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {seed};
  for (size_t di = 0; di < N_TEST_DIMS; di++)
    for (size_t ni = 0; ni < sizeof gemv_rows / sizeof gemv_rows[0]; ni++) {
      const size_t d = test_dims[di], n_rows = gemv_rows[ni];
      check_gemv(k, &r, type, kind, n_rows, 0, d, 0, d);
      check_gemv(k, &r, type, kind, n_rows, 5, d, 0, d);
    }
}

START_TEST(gemv_exact_on_integer_data) { gemv_all_sizes(float_types[_i], DATA_INTEGER, 0x5eed000au); }
END_TEST

START_TEST(gemv_within_rounding_on_float_data) { gemv_all_sizes(float_types[_i], DATA_FLOAT, 0x5eed000bu); }
END_TEST

START_TEST(gemv_on_long_rows) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x5eed0011u};
  for (size_t di = 0; di < sizeof long_dims / sizeof long_dims[0]; di++) {
    check_gemv(k, &r, float_types[_i], DATA_INTEGER, 19, 0, long_dims[di], 0, long_dims[di]);
    check_gemv(k, &r, float_types[_i], DATA_FLOAT, 19, 2, long_dims[di], 0, long_dims[di]);
  }
}
END_TEST

START_TEST(gemv_on_column_slices) {
  const lzn_kernel_table *k = active_kernels();
  const lzn_weight_type type = float_types[_i];
  test_rng r = {0x5eed000cu};
  for (size_t li = 0; li < sizeof slice_ld / sizeof slice_ld[0]; li++)
    for (size_t ji = 0; ji < sizeof slice_j0 / sizeof slice_j0[0]; ji++)
      for (size_t di = 0; di < sizeof slice_d / sizeof slice_d[0]; di++) {
        const size_t ld = slice_ld[li], j0 = slice_j0[ji], d = slice_d[di];
        check_gemv(k, &r, type, DATA_INTEGER, 37, 0, ld, j0, d);
        check_gemv(k, &r, type, DATA_FLOAT, 37, 3, ld, j0, d);
      }
  check_gemv(k, &r, type, DATA_INTEGER, 41, 0, 2051, 2051 - 1001, 1001);
  check_gemv(k, &r, type, DATA_FLOAT, 41, 0, 2051, 2051 - 1001, 1001);
}
END_TEST

/* ------------------------------------------------- from_f32 / to_f32 */

static const size_t convert_lengths[] = {1, 7, 15, 16, 17, 31, 33, 100, 1001};
#define N_CONVERT_LENGTHS (sizeof convert_lengths / sizeof convert_lengths[0])

/* A finite float that exercises the conversions: any exponent (through the
 * fp16 subnormal and overflow ranges, and bf16's), and mantissas that sit
 * exactly halfway between two fp16 or bf16 values. */
static float conversion_input(test_rng *r) {
  uint32_t bits = (uint32_t)rng_next(r);
  switch (rng_below(r, 6)) {
  case 0: bits = (bits & 0x807fffffu) | (uint32_t)(96 + rng_below(r, 64)) << 23; break; /* fp16's exponents and beyond */
  case 1: bits = (bits & 0xffffe000u) | 0x1000u; break; /* an fp16 tie */
  case 2: bits = (bits & 0xffff0000u) | 0x8000u; break; /* a bf16 tie */
  case 3: bits = (bits & 0x80000000u) | (uint32_t)(0x477fe000u + rng_below(r, 0x4000)); break; /* near 65504..65520 */
  case 4: bits = (bits & 0x807fffffu) | (uint32_t)(rng_below(r, 3)) << 23; break; /* fp32 subnormal or tiny */
  default: break;
  }
  if ((bits & 0x7f800000u) == 0x7f800000u) bits &= 0xff7fffffu; /* no NaN or Inf: the caller checks */
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* from_f32 of finite floats: active and scalar give the same bits (both
 * round to nearest even); src and dst end at guard pages. */
START_TEST(from_f32_matches_scalar_bit_for_bit) {
  const lzn_kernel_table *k = active_kernels();
  const lzn_weight_type type = float_types[_i];
  const size_t eb = lzn_wtype_block_bytes(type);
  test_rng r = {0x5eed000du};
  for (size_t li = 0; li < N_CONVERT_LENGTHS; li++)
    for (int rep = 0; rep < 20; rep++) {
      const size_t d = convert_lengths[li];
      guarded src_mem = guarded_alloc(d * sizeof(float)), dst_mem = guarded_alloc(d * eb);
      float *src = src_mem.data;
      for (size_t j = 0; j < d; j++) src[j] = conversion_input(&r);
      unsigned char *ref = malloc(d * eb);
      ck_assert_ptr_nonnull(ref);
      reference_kernels()->type[type].from_f32.fn(ref, src, d);
      k->type[type].from_f32.fn(dst_mem.data, src, d);
      for (size_t j = 0; j < d; j++)
        if (memcmp((unsigned char *)dst_mem.data + j * eb, ref + j * eb, eb) != 0)
          ck_abort_msg("%s from_f32 d=%zu: element %zu of %a differs from scalar", lzn_wtype_name(type), d, j,
                       (double)src[j]);
      free(ref);
      guarded_free(&src_mem);
      guarded_free(&dst_mem);
    }
}
END_TEST

/* to_f32 is exact: every stored pattern (all 65536 for the 16-bit types,
 * random ones for fp32) gives the value half.h gives, bit for bit, except
 * that a NaN need only stay a NaN (F16C quiets a signalling one). */
START_TEST(to_f32_is_exact_for_every_pattern) {
  const lzn_kernel_table *k = active_kernels();
  const lzn_weight_type type = float_types[_i];
  const size_t eb = lzn_wtype_block_bytes(type);
  test_rng r = {0x5eed000eu};
  const size_t n = 65536;
  guarded src_mem = guarded_alloc(n * eb), dst_mem = guarded_alloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) {
    /* i * 40503 mod 2^16 visits every pattern, in an order that puts
     * ordinary values (not only NaNs) in the short tails below. */
    if (eb == 2) ((uint16_t *)src_mem.data)[i] = (uint16_t)(i * 40503u);
    else ((uint32_t *)src_mem.data)[i] = (uint32_t)rng_next(&r);
  }
  /* Odd lengths and offsets, each ending at the guard page. */
  for (size_t li = 0; li < N_CONVERT_LENGTHS + 1; li++) {
    const size_t d = li < N_CONVERT_LENGTHS ? convert_lengths[li] : n;
    const unsigned char *src = (const unsigned char *)src_mem.data + (n - d) * eb;
    float *dst = (float *)dst_mem.data + (n - d);
    k->type[type].to_f32.fn(dst, src, d);
    for (size_t j = 0; j < d; j++) {
      const float want = weight_at(type, src, j);
      if (isnan(want) ? !isnan(dst[j]) : memcmp(&dst[j], &want, sizeof want) != 0)
        ck_abort_msg("%s to_f32 d=%zu: element %zu = %a, want %a", lzn_wtype_name(type), d, j, (double)dst[j],
                     (double)want);
    }
  }
  guarded_free(&src_mem);
  guarded_free(&dst_mem);
}
END_TEST

/* from_f32 then to_f32 gives back every value the type holds exactly
 * (integers in [-8, 8] among them), and the rounded value of any other:
 * the round trip through the active kernels equals half.h's rounding. */
START_TEST(from_f32_to_f32_round_trip) {
  const lzn_kernel_table *k = active_kernels();
  const lzn_weight_type type = float_types[_i];
  const size_t eb = lzn_wtype_block_bytes(type);
  test_rng r = {0x5eed000fu};
  for (size_t li = 0; li < N_CONVERT_LENGTHS; li++) {
    const size_t d = convert_lengths[li];
    float *src = malloc(d * sizeof(float)), *back = malloc(d * sizeof(float));
    void *stored = malloc(d * eb);
    ck_assert(src && back && stored);
    for (int kind = 0; kind < 2; kind++) {
      for (size_t j = 0; j < d; j++) src[j] = kind == 0 ? random_value(&r, DATA_INTEGER, 8) : conversion_input(&r);
      k->type[type].from_f32.fn(stored, src, d);
      k->type[type].to_f32.fn(back, stored, d);
      for (size_t j = 0; j < d; j++) {
        const float want = round_to_type(type, src[j]);
        if (memcmp(&back[j], &want, sizeof want) != 0)
          ck_abort_msg("%s round trip d=%zu: %a came back as %a, want %a", lzn_wtype_name(type), d, (double)src[j],
                       (double)back[j], (double)want);
        if (kind == 0 && back[j] != src[j])
          ck_abort_msg("%s round trip: the integer %g came back as %a", lzn_wtype_name(type), (double)src[j],
                       (double)back[j]);
      }
    }
    free(src);
    free(back);
    free(stored);
  }
}
END_TEST

/* ------------------------------------------------------------- suite */

static Suite *kernels_suite(void) {
  Suite *s = suite_create("kernels");
  TCase *dispatch = tcase_create("dispatch");
  tcase_add_test(dispatch, table_is_complete_and_consistent);
  suite_add_tcase(s, dispatch);

  TCase *relu = tcase_create("relu_compact");
  tcase_set_timeout(relu, 60);
  tcase_add_test(relu, relu_compact_matches_scalar_on_random_inputs);
  tcase_add_test(relu, relu_compact_edge_densities);
  tcase_add_test(relu, relu_compact_every_lane_pattern);
  suite_add_tcase(s, relu);

  /* Each test below runs once per element type (float_types). */
  const int n_types = (int)N_FLOAT_TYPES;
  TCase *axpy = tcase_create("axpy_rows");
  tcase_set_timeout(axpy, 60);
  tcase_add_loop_test(axpy, axpy_rows_exact_on_integer_data, 0, n_types);
  tcase_add_loop_test(axpy, axpy_rows_within_rounding_on_float_data, 0, n_types);
  tcase_add_loop_test(axpy, axpy_rows_on_column_slices, 0, n_types);
  tcase_add_loop_test(axpy, axpy_rows_every_group_split, 0, n_types);
  suite_add_tcase(s, axpy);

  TCase *dot = tcase_create("dot_rows");
  tcase_set_timeout(dot, 60);
  tcase_add_loop_test(dot, dot_rows_exact_on_integer_data, 0, n_types);
  tcase_add_loop_test(dot, dot_rows_within_rounding_on_float_data, 0, n_types);
  tcase_add_loop_test(dot, dot_rows_on_column_slices, 0, n_types);
  tcase_add_loop_test(dot, dot_rows_every_group_split, 0, n_types);
  tcase_add_loop_test(dot, dot_rows_on_long_rows, 0, n_types);
  suite_add_tcase(s, dot);

  TCase *gemv = tcase_create("gemv");
  tcase_set_timeout(gemv, 60);
  tcase_add_loop_test(gemv, gemv_exact_on_integer_data, 0, n_types);
  tcase_add_loop_test(gemv, gemv_within_rounding_on_float_data, 0, n_types);
  tcase_add_loop_test(gemv, gemv_on_column_slices, 0, n_types);
  tcase_add_loop_test(gemv, gemv_on_long_rows, 0, n_types);
  suite_add_tcase(s, gemv);

  TCase *convert = tcase_create("from_f32_to_f32");
  tcase_set_timeout(convert, 60);
  tcase_add_loop_test(convert, from_f32_matches_scalar_bit_for_bit, 0, n_types);
  tcase_add_loop_test(convert, to_f32_is_exact_for_every_pattern, 0, n_types);
  tcase_add_loop_test(convert, from_f32_to_f32_round_trip, 0, n_types);
  suite_add_tcase(s, convert);
  return s;
}

int main(void) { return run_suite(kernels_suite()); }
