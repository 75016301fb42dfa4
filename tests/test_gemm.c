/*
 * test_gemm.c: the kernels of many tokens (kernels/gemm.h), gemm and
 * axpy_gemm of every weight type, under the ISA that LZN_ISA selects,
 * against the scalar reference (kernels/ref/gemm.c) and the reference
 * against dot_rows / axpy_rows of one token (kernels/ref/<type>.c).
 *
 * Odd sizes everywhere: rows 1, 3, 7, 17 and more (partial register tiles),
 * tokens 1..9, 17, 33, row lengths within one block or vector and beyond;
 * row sets of every density (0, the first row, the last, 3 %, 50 %, all,
 * shuffled with repeats). Weights, x and out end at a guard page, so no
 * kernel reads or writes past them.
 *
 * The bound: the SIMD kernels add the same products in another order, so
 * |out - ref| <= (terms + 8) * eps * sum |w_j x_j| (terms: blocks for Q8_0
 * and Q4_0, whose block sums are exact integers; elements otherwise). A
 * wrong row, token, scale or tail is off by a sizeable part of sum |w x|.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/wtype.h"
#include "kernel_testutil.h"
#include "linalg/pack.h"

static const lzn_weight_type types[] = {LZN_WEIGHTS_F32, LZN_WEIGHTS_F16, LZN_WEIGHTS_BF16, LZN_WEIGHTS_Q8_0,
                                        LZN_WEIGHTS_Q4_0};
#define N_TYPES (sizeof types / sizeof types[0])
static const size_t dims[] = {1, 7, 16, 31, 32, 33, 100, 257};
#define N_DIMS (sizeof dims / sizeof dims[0])
static const size_t tokens[] = {1, 2, 3, 4, 5, 7, 9, 17, 33};
#define N_TOKENS (sizeof tokens / sizeof tokens[0])
static const size_t matrix_rows[] = {1, 3, 7, 17, 67};
#define N_MATRIX_ROWS (sizeof matrix_rows / sizeof matrix_rows[0])

/* A matrix of f rows of d weights of a type (random, from fp32 through the
 * reference's from_f32), its last row against a guard page; and the same
 * values widened, for the bound. */
typedef struct {
  guarded mem;
  size_t row_bytes;
  float *wide; /* [f][d] */
} matrix;

static matrix make_matrix(test_rng *r, lzn_weight_type type, size_t f, size_t d) {
  const lzn_kernel_table *ref = reference_kernels();
  matrix m = {.row_bytes = lzn_wtype_row_bytes(type, d)};
  m.mem = guarded_alloc(f * m.row_bytes);
  m.wide = malloc(f * d * sizeof(float));
  float *v = malloc(d * sizeof(float));
  ck_assert_ptr_nonnull(m.wide);
  ck_assert_ptr_nonnull(v);
  for (size_t i = 0; i < f; i++) {
    fill_random(r, v, d);
    char *row = (char *)m.mem.data + i * m.row_bytes;
    ref->type[type].from_f32.fn(row, v, d);
    ref->type[type].to_f32.fn(m.wide + i * d, row, d);
  }
  free(v);
  return m;
}

static void free_matrix(matrix *m) {
  guarded_free(&m->mem);
  free(m->wide);
}

/* m tokens of d values in the type's dot format, x_stride bytes apart (the
 * last against a guard page), and their fp32 values as the kernels see them. */
typedef struct {
  guarded mem;
  size_t stride;
  float *wide; /* [m][d] */
} tokens_x;

static tokens_x make_x(test_rng *r, lzn_weight_type type, size_t m, size_t d) {
  const lzn_kernel_table *ref = reference_kernels();
  const lzn_weight_type x_type = lzn_wtype_dot_type(type);
  tokens_x x = {.stride = lzn_wtype_row_bytes(x_type, d)};
  x.mem = guarded_alloc(m * x.stride);
  x.wide = malloc(m * d * sizeof(float));
  ck_assert_ptr_nonnull(x.wide);
  for (size_t t = 0; t < m; t++) {
    float *v = x.wide + t * d;
    fill_random(r, v, d);
    char *dst = (char *)x.mem.data + t * x.stride;
    if (x_type == LZN_WEIGHTS_F32) memcpy(dst, v, d * sizeof(float));
    else {
      ref->type[x_type].from_f32.fn(dst, v, d);
      ref->type[x_type].to_f32.fn(v, dst, d);
    }
  }
  return x;
}

static double dot_bound(lzn_weight_type type, const float *w, const float *x, size_t d) {
  double sum_abs = 0.0;
  for (size_t j = 0; j < d; j++) sum_abs += fabs((double)w[j] * (double)x[j]);
  const double terms = lzn_wtype_is_block(type) ? (double)((d + LZN_QK - 1) / LZN_QK) : (double)d;
  return (terms + 8.0) * FLT_EPSILON * sum_abs + 1e-30;
}

static void check_gemm(const lzn_kernel_table *k, test_rng *r, lzn_weight_type type, size_t f, size_t d, size_t m,
                       rows_pattern pattern, int indexed) {
  int32_t *idx = malloc(rows_capacity(f) * sizeof(int32_t));
  ck_assert_ptr_nonnull(idx);
  const size_t n = indexed ? make_rows(r, pattern, f, idx) : f;
  matrix w = make_matrix(r, type, f, d);
  tokens_x x = make_x(r, type, m, d);
  const size_t out_stride = n + 3; /* out rows are wider than the call: the kernel writes only its n */
  guarded out_mem = guarded_alloc(m * out_stride * sizeof(float) + sizeof(float));
  float *out = out_mem.data, *ref = malloc((m * out_stride + 1) * sizeof(float));
  ck_assert_ptr_nonnull(ref);
  for (size_t i = 0; i < m * out_stride + 1; i++) out[i] = ref[i] = -7.0f;
  const int32_t *rows = indexed ? idx : NULL;
  reference_kernels()->gemm[type].gemm.fn(ref, out_stride, w.mem.data, w.row_bytes, d, rows, n, x.mem.data,
                                          x.stride, m);
  k->gemm[type].gemm.fn(out, out_stride, w.mem.data, w.row_bytes, d, rows, n, x.mem.data, x.stride, m);
  for (size_t t = 0; t < m; t++) {
    for (size_t i = 0; i < n; i++) {
      const size_t row = rows ? (size_t)rows[i] : i;
      const double bound = dot_bound(type, w.wide + row * d, x.wide + t * d, d);
      const double got = out[t * out_stride + i], want = ref[t * out_stride + i];
      if (!(fabs(got - want) <= bound))
        ck_abort_msg("%s gemm f=%zu d=%zu m=%zu n=%zu %s: out[%zu][%zu] = %.9g, reference %.9g (bound %.3g)",
                     lzn_wtype_name(type), f, d, m, n, indexed ? pattern_names[pattern] : "consecutive", t, i, got,
                     want, bound);
    }
    for (size_t i = n; i < out_stride && t * out_stride + i < m * out_stride; i++)
      ck_assert_msg(out[t * out_stride + i] == -7.0f, "%s gemm wrote past its rows", lzn_wtype_name(type));
  }
  /* The reference is dot_rows, token by token. */
  float *one = malloc((n + 1) * sizeof(float));
  ck_assert_ptr_nonnull(one);
  for (size_t t = 0; t < m; t++) {
    if (rows) reference_kernels()->type[type].dot_rows.fn(one, w.mem.data, w.row_bytes, d, rows, n,
                                                         (const char *)x.mem.data + t * x.stride);
    else reference_kernels()->type[type].gemv.fn(one, w.mem.data, w.row_bytes, d, n,
                                                 (const char *)x.mem.data + t * x.stride);
    for (size_t i = 0; i < n; i++) {
      const size_t row = rows ? (size_t)rows[i] : i;
      ck_assert_msg(fabs((double)one[i] - (double)ref[t * out_stride + i]) <=
                        dot_bound(type, w.wide + row * d, x.wide + t * d, d),
                    "%s reference gemm differs from dot_rows at [%zu][%zu]", lzn_wtype_name(type), t, i);
    }
  }
  free(one);
  free(idx);
  free(ref);
  free(x.wide);
  guarded_free(&x.mem);
  guarded_free(&out_mem);
  free_matrix(&w);
}

static void gemm_type(lzn_weight_type type, uint64_t seed) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {seed};
  for (size_t di = 0; di < N_DIMS; di++)
    for (size_t ti = 0; ti < N_TOKENS; ti++)
      for (size_t fi = 0; fi < N_MATRIX_ROWS; fi++) check_gemm(k, &r, type, matrix_rows[fi], dims[di], tokens[ti], 0, 0);
  /* Rows longer than a packed chunk (32 blocks) and more tokens than one
   * pass of the packed kernel (64). */
  check_gemm(k, &r, type, 17, 1100, 9, 0, 0);
  check_gemm(k, &r, type, 31, 1100, 70, 0, 0);
  /* Each side of the AVX512-VNNI kernels' switch to packed rows (10 tokens
   * for Q4_0, 14 for Q8_0: x86/gemm_q512_packed.h). */
  static const size_t around_packing[] = {10, 13, 14};
  for (size_t i = 0; i < sizeof around_packing / sizeof around_packing[0]; i++)
    check_gemm(k, &r, type, 19, 300, around_packing[i], 0, 0);
  /* Gathered rows of every density, on a few shapes. */
  static const size_t gather_m[] = {1, 5, 17};
  for (size_t di = 0; di < N_DIMS; di += 3)
    for (size_t mi = 0; mi < 3; mi++)
      for (int p = 0; p < ROWS_N_PATTERNS; p++) check_gemm(k, &r, type, 131, dims[di], gather_m[mi], (rows_pattern)p, 1);
}

/* y[t][j0 .. j0 + d) of a wider y, from columns [j0, j0 + d) of the rows
 * (w advanced by the block-aligned j0, as threads call it). */
static void check_axpy(const lzn_kernel_table *k, test_rng *r, lzn_weight_type type, size_t f, size_t cols,
                       size_t j0, size_t m, rows_pattern pattern) {
  int32_t *idx = malloc(rows_capacity(f) * sizeof(int32_t));
  ck_assert_ptr_nonnull(idx);
  const size_t n = make_rows(r, pattern, f, idx);
  const size_t d = cols - j0;
  matrix w = make_matrix(r, type, f, cols);
  const size_t coef_stride = n + 1;
  float *coef = malloc((m * coef_stride + 1) * sizeof(float));
  ck_assert_ptr_nonnull(coef);
  fill_random(r, coef, m * coef_stride + 1);
  guarded y_mem = guarded_alloc(m * cols * sizeof(float));
  float *y = y_mem.data, *ref = malloc(m * cols * sizeof(float));
  ck_assert_ptr_nonnull(ref);
  fill_random(r, y, m * cols);
  memcpy(ref, y, m * cols * sizeof(float));
  const void *wj = (const char *)w.mem.data + lzn_wtype_row_bytes(type, j0);
  reference_kernels()->gemm[type].axpy_gemm.fn(ref + j0, cols, d, wj, w.row_bytes, idx, coef, coef_stride, n, m);
  k->gemm[type].axpy_gemm.fn(y + j0, cols, d, wj, w.row_bytes, idx, coef, coef_stride, n, m);
  for (size_t t = 0; t < m; t++)
    for (size_t j = 0; j < cols; j++) {
      double sum_abs = fabs((double)ref[t * cols + j]);
      for (size_t i = 0; j >= j0 && i < n; i++)
        sum_abs += fabs((double)coef[t * coef_stride + i] * w.wide[(size_t)idx[i] * cols + j]);
      const double bound = j < j0 ? 0.0 : ((double)n + 8.0) * FLT_EPSILON * sum_abs + 1e-30;
      const double got = y[t * cols + j], want = ref[t * cols + j];
      if (!(fabs(got - want) <= bound))
        ck_abort_msg("%s axpy_gemm f=%zu cols=%zu j0=%zu m=%zu n=%zu %s: y[%zu][%zu] = %.9g, reference %.9g "
                     "(bound %.3g)", lzn_wtype_name(type), f, cols, j0, m, n, pattern_names[pattern], t, j, got,
                     want, bound);
    }
  /* The reference is axpy_rows, token by token. */
  float *one = malloc(cols * sizeof(float));
  ck_assert_ptr_nonnull(one);
  for (size_t t = 0; t < m; t++) {
    memset(one, 0, cols * sizeof(float));
    float *want = malloc(cols * sizeof(float));
    ck_assert_ptr_nonnull(want);
    memset(want, 0, cols * sizeof(float));
    reference_kernels()->type[type].axpy_rows.fn(one, cols, w.mem.data, w.row_bytes, idx, coef + t * coef_stride, n);
    reference_kernels()->gemm[type].axpy_gemm.fn(want, cols, cols, w.mem.data, w.row_bytes, idx,
                                                  coef + t * coef_stride, coef_stride, n, 1);
    for (size_t j = 0; j < cols; j++) {
      double sum_abs = 0.0;
      for (size_t i = 0; i < n; i++) sum_abs += fabs((double)coef[t * coef_stride + i] * w.wide[(size_t)idx[i] * cols + j]);
      ck_assert_msg(fabs((double)one[j] - (double)want[j]) <= ((double)n + 8.0) * FLT_EPSILON * sum_abs + 1e-30,
                    "%s reference axpy_gemm differs from axpy_rows at [%zu][%zu]", lzn_wtype_name(type), t, j);
    }
    free(want);
  }
  free(one);
  free(idx);
  free(coef);
  free(ref);
  guarded_free(&y_mem);
  free_matrix(&w);
}

static void axpy_type(lzn_weight_type type, uint64_t seed) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {seed};
  static const size_t axpy_m[] = {1, 2, 3, 7, 8, 9, 17, 33};
  for (size_t di = 0; di < N_DIMS; di++)
    for (size_t mi = 0; mi < sizeof axpy_m / sizeof axpy_m[0]; mi++)
      for (int p = 0; p < ROWS_N_PATTERNS; p++) check_axpy(k, &r, type, 53, dims[di], 0, axpy_m[mi], (rows_pattern)p);
  /* Column slices that start on a block boundary, as threads cut them. */
  for (size_t mi = 0; mi < 3; mi++) {
    check_axpy(k, &r, type, 53, 100, 32, axpy_m[mi * 3], ROWS_RANDOM_50);
    check_axpy(k, &r, type, 53, 257, 64, axpy_m[mi * 3 + 1], ROWS_ALL);
  }
}

/* The packed slot (kernels/packed.h) on f rows packed by lzn_pack_rows
 * (the packed rows end at a guard page) against the reference gemm on the
 * same rows as they lie. */
static void check_packed(const lzn_kernel_table *k, test_rng *r, lzn_weight_type type, size_t f, size_t d, size_t m) {
  matrix w = make_matrix(r, type, f, d);
  tokens_x x = make_x(r, type, m, d);
  lzn_matrix rows = lzn_matrix_make(type, w.mem.data, (int64_t)f, (int64_t)d);
  ck_assert(lzn_pack_supported(k, &rows));
  guarded packed_mem = guarded_alloc(lzn_pack_bytes(&rows));
  ck_assert_int_eq(lzn_pack_rows(k, &rows, packed_mem.data, 1), LZN_OK);
  rows.packed = packed_mem.data;
  ck_assert(!lzn_pack_supported(k, &rows)); /* packed once */
  const size_t out_stride = f + 3;
  guarded out_mem = guarded_alloc(m * out_stride * sizeof(float));
  float *out = out_mem.data, *ref = malloc(m * out_stride * sizeof(float));
  ck_assert_ptr_nonnull(ref);
  for (size_t i = 0; i < m * out_stride; i++) out[i] = ref[i] = -7.0f;
  reference_kernels()->gemm[type].gemm.fn(ref, out_stride, w.mem.data, w.row_bytes, d, NULL, f, x.mem.data, x.stride,
                                          m);
  k->gemm[type].packed.fn(out, out_stride, rows.packed, d, f, x.mem.data, x.stride, m);
  for (size_t t = 0; t < m; t++) {
    for (size_t i = 0; i < f; i++) {
      const double bound = dot_bound(type, w.wide + i * d, x.wide + t * d, d);
      const double got = out[t * out_stride + i], want = ref[t * out_stride + i];
      if (!(fabs(got - want) <= bound))
        ck_abort_msg("%s packed gemm f=%zu d=%zu m=%zu: out[%zu][%zu] = %.9g, reference %.9g (bound %.3g)",
                     lzn_wtype_name(type), f, d, m, t, i, got, want, bound);
    }
    for (size_t i = f; i < out_stride && t * out_stride + i < m * out_stride; i++)
      ck_assert_msg(out[t * out_stride + i] == -7.0f, "%s packed gemm wrote past its rows", lzn_wtype_name(type));
  }
  free(ref);
  free(x.wide);
  guarded_free(&x.mem);
  guarded_free(&out_mem);
  guarded_free(&packed_mem);
  free_matrix(&w);
}

/* Groups whole and partial (1, 15, 16, 17 rows), more groups than one pass
 * (8 groups: 140 rows), rows within a block and beyond one chunk of 256
 * blocks (8200 weights), every tile of tokens (8, 4, 2, 1) and their mixes. */
static void packed_type(lzn_weight_type type, uint64_t seed) {
  const lzn_kernel_table *k = active_kernels();
  if (k->gemm[type].packed.fn == NULL) return;
  test_rng r = {seed};
  static const size_t packed_rows[] = {1, 15, 16, 17, 33, 140};
  static const size_t packed_m[] = {1, 2, 3, 5, 8, 9, 15, 17};
  for (size_t di = 0; di < N_DIMS; di++)
    for (size_t mi = 0; mi < sizeof packed_m / sizeof packed_m[0]; mi++)
      for (size_t fi = 0; fi < sizeof packed_rows / sizeof packed_rows[0]; fi++)
        check_packed(k, &r, type, packed_rows[fi], dims[di], packed_m[mi]);
  check_packed(k, &r, type, 33, 8200, 3);
  check_packed(k, &r, type, 17, 8200, 11);
}

START_TEST(packed_gemm_matches_reference) { packed_type(types[_i], 0x9ac4u + (uint64_t)_i); }
END_TEST

/* A K-quant matrix packs as Q8_0 (linalg/pack.h): rows requantized from
 * their fp32 values, so each product may move from the exact one on the
 * K-quant's own weights by at most half a Q8_0 step per weight (a block's
 * largest |w| / 254, its fp16 scale rounded up by 1/1024) times |x|, plus
 * the Q8_0 product's own bound. A wrong row, block, scale or token is off
 * by a sizeable part of sum |w x|. */
static void check_packed_kquant(const lzn_kernel_table *k, test_rng *r, lzn_weight_type type, size_t f, size_t d,
                                size_t m) {
  matrix w = make_matrix(r, type, f, d);
  tokens_x x = make_x(r, LZN_WEIGHTS_Q8_0, m, d);
  lzn_matrix rows = lzn_matrix_make(type, w.mem.data, (int64_t)f, (int64_t)d);
  ck_assert_int_eq(lzn_pack_type(type), LZN_WEIGHTS_Q8_0);
  ck_assert(lzn_pack_supported(k, &rows));
  ck_assert_uint_eq(lzn_pack_bytes(&rows), (f + 15) / 16 * 16 * lzn_wtype_row_bytes(LZN_WEIGHTS_Q8_0, d));
  guarded packed_mem = guarded_alloc(lzn_pack_bytes(&rows));
  ck_assert_int_eq(lzn_pack_rows(k, &rows, packed_mem.data, 1), LZN_OK);
  const size_t out_stride = f + 3;
  guarded out_mem = guarded_alloc(m * out_stride * sizeof(float));
  float *out = out_mem.data;
  for (size_t i = 0; i < m * out_stride; i++) out[i] = -7.0f;
  k->gemm[LZN_WEIGHTS_Q8_0].packed.fn(out, out_stride, packed_mem.data, d, f, x.mem.data, x.stride, m);
  for (size_t t = 0; t < m; t++)
    for (size_t i = 0; i < f; i++) {
      const float *wi = w.wide + i * d, *xt = x.wide + t * d;
      double exact = 0.0, requant = 0.0;
      for (size_t b = 0; b < d; b += LZN_QK) {
        double amax = 0.0, sum_x = 0.0;
        for (size_t j = b; j < b + LZN_QK; j++) {
          amax = fmax(amax, fabs(wi[j]));
          sum_x += fabs(xt[j]);
          exact += (double)wi[j] * xt[j];
        }
        requant += amax / 254.0 * (1.0 + 1.0 / 1024.0) * sum_x;
      }
      const double bound = requant + 1.5 * dot_bound(LZN_WEIGHTS_Q8_0, wi, xt, d);
      const double got = out[t * out_stride + i];
      if (!(fabs(got - exact) <= bound))
        ck_abort_msg("%s packed as Q8_0 f=%zu d=%zu m=%zu: out[%zu][%zu] = %.9g, exact %.9g (bound %.3g)",
                     lzn_wtype_name(type), f, d, m, t, i, got, exact, bound);
    }
  for (size_t t = 0; t + 1 < m; t++)
    for (size_t i = f; i < out_stride; i++)
      ck_assert_msg(out[t * out_stride + i] == -7.0f, "%s packed gemm wrote past its rows", lzn_wtype_name(type));
  free(x.wide);
  guarded_free(&x.mem);
  guarded_free(&out_mem);
  guarded_free(&packed_mem);
  free_matrix(&w);
}

static const lzn_weight_type kquants[] = {LZN_WEIGHTS_Q4_K, LZN_WEIGHTS_Q5_K, LZN_WEIGHTS_Q6_K};
#define N_KQUANTS (sizeof kquants / sizeof kquants[0])

/* Whole and partial groups of 16 rows, one and two super-blocks a row,
 * tiles of 8, 4, 2 and 1 tokens and their mixes. */
START_TEST(kquant_packs_as_q8_0) {
  const lzn_kernel_table *k = active_kernels();
  if (k->gemm[LZN_WEIGHTS_Q8_0].packed.fn == NULL) return; /* no packed kernel below AVX512-VNNI */
  test_rng r = {0x5eedu + (uint64_t)_i};
  static const size_t f_rows[] = {1, 15, 17, 33};
  static const size_t cols[] = {256, 512};
  static const size_t m_tokens[] = {1, 3, 8, 9};
  for (size_t fi = 0; fi < sizeof f_rows / sizeof f_rows[0]; fi++)
    for (size_t ci = 0; ci < sizeof cols / sizeof cols[0]; ci++)
      for (size_t mi = 0; mi < sizeof m_tokens / sizeof m_tokens[0]; mi++)
        check_packed_kquant(k, &r, kquants[_i], f_rows[fi], cols[ci], m_tokens[mi]);
  /* Only the types the pack knows: F16 has no packed copy. */
  const lzn_matrix f16 = lzn_matrix_make(LZN_WEIGHTS_F16, &r, 1, 256);
  ck_assert(!lzn_pack_supported(k, &f16));
}
END_TEST

START_TEST(gemm_matches_reference) { gemm_type(types[_i], 0x6e11u + (uint64_t)_i); }
END_TEST

START_TEST(axpy_gemm_matches_reference) { axpy_type(types[_i], 0xa9e11u + (uint64_t)_i); }
END_TEST

/* Every slot is filled, by an ISA at or below the ceiling; the types this
 * ISA has int8 products for use them (VNNI: the vpdpbusd files). */
START_TEST(slots_are_filled) {
  const lzn_kernel_table *k = active_kernels();
  for (size_t i = 0; i < N_TYPES; i++) {
    const lzn_gemm_kernels *g = &k->gemm[types[i]];
    ck_assert_ptr_nonnull(g->gemm.fn);
    ck_assert_ptr_nonnull(g->axpy_gemm.fn);
    ck_assert_int_le(g->gemm.isa, k->isa);
    ck_assert_int_le(g->axpy_gemm.isa, k->isa);
    if (k->isa >= LZN_ISA_AVX2) ck_assert_int_ge(g->gemm.isa, LZN_ISA_AVX2);
  }
  if (k->isa == LZN_ISA_AVX512VNNI) ck_assert_int_eq(k->gemm[LZN_WEIGHTS_Q4_0].gemm.isa, LZN_ISA_AVX512VNNI);
  /* Packed rows: Q8_0 and Q4_0 from AVX512-VNNI on, no other type, none below. */
  for (size_t i = 0; i < N_TYPES; i++) {
    const int has = types[i] == LZN_WEIGHTS_Q8_0 || types[i] == LZN_WEIGHTS_Q4_0;
    if (has && k->isa == LZN_ISA_AVX512VNNI) ck_assert_ptr_nonnull(k->gemm[types[i]].packed.fn);
    else ck_assert_ptr_null(k->gemm[types[i]].packed.fn);
  }
}
END_TEST

static Suite *gemm_suite(void) {
  Suite *s = suite_create("gemm");
  TCase *tc = tcase_create("gemm");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, slots_are_filled);
  tcase_add_loop_test(tc, gemm_matches_reference, 0, (int)N_TYPES);
  tcase_add_loop_test(tc, axpy_gemm_matches_reference, 0, (int)N_TYPES);
  tcase_add_loop_test(tc, packed_gemm_matches_reference, 0, (int)N_TYPES);
  tcase_add_loop_test(tc, kquant_packs_as_q8_0, 0, (int)N_KQUANTS);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(gemm_suite()); }
