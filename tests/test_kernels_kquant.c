/*
 * test_kernels_kquant.c: the K-quant kernels (Q4_K, Q5_K, Q6_K, and Q8_K,
 * the type x takes for their dot products) of the active table (the one
 * LZN_ISA forces, else the best this machine runs) against the reference
 * table (ceiling scalar, kernels/ref/q4_k.c ... and kernels/ref/kquant.h).
 * `make test` runs it once per ISA.
 *
 * What holds the reference itself to account:
 *  - to_f32 equals, bit for bit, what llama.cpp's gguf-py dequantizes the
 *    same bytes to (tests/data/kquants/, made once by
 *    tools/fixtures/make_kquant_fixtures.py): the byte layouts are llama.cpp's;
 *  - dot_rows and axpy_rows agree with the dequantized weights (to_f32)
 *    and x (Q8_K's to_f32) summed in double, within fp32 rounding;
 *  - from_f32 puts every value on the nearest point of the grid it stored
 *    (within half a step, or clamped at the grid's ends), and its error on
 *    Gaussian data is what a good K-quant quantizer reaches.
 * Then the active kernels against the reference, as for Q8_0/Q4_0
 * (test_kernels_quant.c): integer-valued data where every partial sum is
 * exact in fp32 (SIMD must equal the reference exactly), random data within
 * the rounding bounds below, every density pattern, odd row counts, column
 * slices, super-blocks that must not be read poisoned with a NaN scale, and
 * every buffer ending at an inaccessible page.
 */
#include <float.h>
#include <stdio.h>
#include <string.h>

#include "core/file.h"
#include "core/wtype.h"
#include "kernels/half.h"
#include "kernels/ref/kquant.h"
#include "kernel_testutil.h"
#include "reference.h"
#include "testutil.h"

/* ---------------------------------------------------------- tolerances */

/* Higham ("Accuracy and Stability of Numerical Algorithms", 2002, 3.1): a
 * sum whose every term goes through at most k roundings is within
 * gamma_k * S of the exact sum, S = sum of |terms|, gamma_k ~ k * u,
 * u = FLT_EPSILON / 2, in any order; two such sums differ by at most
 * 2 gamma_k S = k * FLT_EPSILON * S. ROUNDING_SLACK covers the
 * 1 / (1 - k u) factor and S summed in double. */
#define ROUNDING_SLACK 1.01
/* dot: per super-block the integers are exact; a kernel may convert
 * partial integer sums to fp32 (one rounding each), multiply by the
 * scales (two), add the mins' term (one) and the super-block terms in
 * any order over lanes (n_blocks + a few to combine lanes): k = n_blocks
 * + 8, S = sum over super-blocks of |dx| (|d| sum_s sc_s sum_i |q_i x_i| +
 * |dmin| sum_s m_s sum_i |x_i|). */
#define DOT_ROUNDINGS(n_blocks) ((double)(n_blocks) + 8.0)
/* axpy: y[j] + sum_t (a_t q_tj - c_t), a_t and c_t the same fp32 products
 * in reference and SIMD; per row at most a multiply, a subtraction and an
 * add: k = 3 n + 1, S = |y| + sum_t (|a_t q_tj| + |c_t|). */
#define AXPY_ROUNDINGS(n_rows) (3.0 * (double)(n_rows) + 1.0)
/* axpy_rows_q8 (Q4_K's rule, kernels.h): per group and column the same
 * exact integer sum I and the same mins' term c (the same products added in
 * the same order), then the reference rounds s * I, the add and the
 * subtraction of c, a SIMD kernel its FMA and the subtraction: k = 3 *
 * groups + 1, S = |y| + sum over groups (m |q| summed over the rows + |c|),
 * m the group's largest |a| (s * |I| <= m * sum |q|). */
#define AXPY_Q8_ROUNDINGS(n_groups) (3.0 * (double)(n_groups) + 1.0)
/* Against the exact sum, each a moves by at most half a step, m / 254;
 * 1 % for the fp32 roundings of a and s around it. */
#define AXPY_Q8_STEP_FRACTION (1.01 / 254.0)
#define UNDERFLOW_SLACK ((double)FLT_MIN)

/* -------------------------------------------------------------- types */

static const lzn_weight_type ktypes[] = {LZN_WEIGHTS_Q4_K, LZN_WEIGHTS_Q5_K, LZN_WEIGHTS_Q6_K};
#define N_KTYPES (sizeof ktypes / sizeof ktypes[0])

static void unpack(lzn_weight_type type, const void *block, kq_unpacked *u) {
  switch (type) {
  case LZN_WEIGHTS_Q4_K: kq_unpack_q4_k(block, u); break;
  case LZN_WEIGHTS_Q5_K: kq_unpack_q5_k(block, u); break;
  default: kq_unpack_q6_k(block, u); break;
  }
}

static size_t n_blocks_of(size_t d) { return (d + LZN_QK_K - 1) / LZN_QK_K; }

typedef enum { DATA_INTEGER, DATA_FLOAT } data_kind;

#define F16_NAN 0x7e00u
static const uint16_t f16_small[3] = {0x3800u /* 0.5 */, 0x3c00u /* 1 */, 0x4000u /* 2 */};

/* A random fp16 scale of many magnitudes and both signs, now and then 0. */
static uint16_t random_f16(test_rng *r) {
  if (rng_below(r, 40) == 0) return 0;
  const float magnitude = ldexpf(1.0f + 0.5f * (rng_float(r) + 1.0f), -14 + (int)rng_below(r, 12));
  return lzn_f32_to_f16(rng_below(r, 2) ? magnitude : -magnitude);
}

/* Writes one super-block of the type: random quant bytes, scales by kind
 * (integer data: d, dmin in {0.5, 1, 2} and sub-block scales and mins in
 * [0, 7] ([-8, 7] for Q6_K), so every product below is exact in fp32);
 * poison: every fp16 scale NaN, so any weight read from it is NaN. */
static void fill_block(test_rng *r, lzn_weight_type type, data_kind kind, int poison, void *block) {
  const size_t bytes = lzn_wtype_block_bytes(type);
  for (size_t i = 0; i < bytes; i++) ((uint8_t *)block)[i] = (uint8_t)rng_next(r);
  if (type == LZN_WEIGHTS_Q6_K) {
    lzn_block_q6_k *b = block;
    if (kind == DATA_INTEGER)
      for (size_t g = 0; g < 16; g++) b->scales[g] = (int8_t)((int)rng_below(r, 16) - 8);
    b->d = poison ? F16_NAN : kind == DATA_INTEGER ? f16_small[rng_below(r, 3)] : random_f16(r);
    return;
  }
  lzn_block_q4_k *b = block; /* Q5_K's d, dmin and scales lie where Q4_K's do */
  if (kind == DATA_INTEGER) {
    uint8_t sc[8], m[8];
    for (size_t s = 0; s < 8; s++) sc[s] = (uint8_t)rng_below(r, 8), m[s] = (uint8_t)rng_below(r, 8);
    kq_pack_scale_min(b->scales, sc, m);
  }
  b->d = poison ? F16_NAN : kind == DATA_INTEGER ? f16_small[rng_below(r, 3)] : random_f16(r);
  b->dmin = poison ? F16_NAN : kind == DATA_INTEGER ? f16_small[rng_below(r, 3)] : random_f16(r);
}

/* f rows of `cols` columns in guarded memory, the last row ending at the
 * guard page; the super-blocks of rows named in idx that hold columns
 * [j0, j0 + d) get data, every other one is poisoned. */
typedef struct {
  guarded mem;
  size_t row_bytes;
} kmatrix;

static kmatrix make_kmatrix(test_rng *r, lzn_weight_type type, data_kind kind, size_t f, size_t cols, size_t j0,
                            size_t d, const int32_t *idx, size_t n) {
  kmatrix m;
  m.row_bytes = lzn_wtype_row_bytes(type, cols);
  m.mem = guarded_alloc(f * m.row_bytes);
  const size_t bb = lzn_wtype_block_bytes(type), nb = n_blocks_of(cols), b0 = j0 / LZN_QK_K,
               b1 = n_blocks_of(j0 + d);
  char *filled = calloc(f, 1);
  ck_assert_ptr_nonnull(filled);
  for (size_t t = 0; t < n; t++) filled[idx[t]] = 1;
  for (size_t i = 0; i < f; i++)
    for (size_t b = 0; b < nb; b++)
      fill_block(r, type, kind, !filled[i] || b < b0 || b >= b1, (char *)m.mem.data + i * m.row_bytes + b * bb);
  free(filled);
  return m;
}

/* x in Q8_K for d columns, ending at the guard page. Integer kind: d = 1,
 * q in [-4, 4] (bsums to match); float kind: random floats of several
 * magnitudes through the reference from_f32. */
static guarded make_x(test_rng *r, data_kind kind, size_t d) {
  const size_t nb = n_blocks_of(d);
  guarded g = guarded_alloc(nb * sizeof(lzn_block_q8_k));
  lzn_block_q8_k *x = g.data;
  if (kind == DATA_INTEGER) {
    for (size_t b = 0; b < nb; b++) {
      x[b].d = 1.0f;
      for (size_t j = 0; j < LZN_QK_K; j++)
        x[b].qs[j] = b * LZN_QK_K + j < d ? (int8_t)((int)rng_below(r, 9) - 4) : 0;
      for (size_t k = 0; k < 16; k++) {
        int sum = 0;
        for (size_t j = 0; j < 16; j++) sum += x[b].qs[16 * k + j];
        x[b].bsums[k] = (int16_t)sum;
      }
    }
  } else {
    float *v = malloc(d * sizeof(float));
    ck_assert_ptr_nonnull(v);
    for (size_t j = 0; j < d; j++) v[j] = rng_float(r) * (rng_below(r, 8) == 0 ? 10.0f : 1.0f);
    reference_kernels()->type[LZN_WTYPE_Q8_K].from_f32.fn(x, v, d);
    free(v);
  }
  return g;
}

/* ------------------------------------------------------------ the table */

START_TEST(kquant_slots_are_filled) {
  const lzn_kernel_table *k = active_kernels();
  const lzn_weight_type all[] = {LZN_WEIGHTS_Q4_K, LZN_WEIGHTS_Q5_K, LZN_WEIGHTS_Q6_K, LZN_WTYPE_Q8_K};
  for (size_t i = 0; i < 4; i++) {
    const lzn_type_kernels *t = &k->type[all[i]];
    ck_assert_msg(t->axpy_rows.fn && t->dot_rows.fn && t->gemv.fn && t->from_f32.fn && t->to_f32.fn,
                  "%s has an empty slot", lzn_wtype_name(all[i]));
    for (int op = 0; op < LZN_KOP_COUNT; op++) ck_assert_int_le(lzn_type_slot_isa(k, all[i], (lzn_kop)op), k->isa);
  }
  for (size_t i = 0; i < N_KTYPES; i++) {
    ck_assert_int_eq(lzn_wtype_dot_type(ktypes[i]), LZN_WTYPE_Q8_K);
    ck_assert_uint_eq(lzn_wtype_block_size(ktypes[i]), 256);
    ck_assert(lzn_wtype_valid(ktypes[i]));
  }
  /* Every x86 ceiling has the K-quants' SIMD kernels (kernels/<isa>/q*_k.c),
   * so the tests below compare them, not the reference with itself; their
   * axpy_rows_q8 has its own rule (kernels.h), not their axpy_rows. */
  for (size_t i = 0; i < N_KTYPES; i++) {
    const lzn_type_kernels *t = &k->type[ktypes[i]];
    if (k->isa >= LZN_ISA_AVX2)
      for (int op = 0; op < LZN_KOP_COUNT; op++)
        if (op != LZN_KOP_FROM_F32 && op != LZN_KOP_TO_F32)
          ck_assert_msg(lzn_type_slot_isa(k, ktypes[i], (lzn_kop)op) != LZN_ISA_SCALAR, "%s: op %d is scalar under %s",
                        lzn_wtype_name(ktypes[i]), op, k->name);
    ck_assert(t->axpy_rows_q8.fn != t->axpy_rows.fn);
  }
  ck_assert(!lzn_wtype_valid(LZN_WTYPE_Q8_K)); /* x only: no matrix is ever Q8_K */
  ck_assert_uint_eq(lzn_wtype_row_bytes(LZN_WEIGHTS_Q4_K, 4096), 16 * 144);
  ck_assert_uint_eq(lzn_wtype_row_bytes(LZN_WEIGHTS_Q6_K, 11008), 43 * 210);
  ck_assert(lzn_wtype_fits_row(LZN_WEIGHTS_Q4_K, 4096) && !lzn_wtype_fits_row(LZN_WEIGHTS_Q4_K, 4096 + 32));
}
END_TEST

/* ------------------------------------------------------ against gguf-py */

START_TEST(to_f32_equals_gguf_py) {
  const lzn_weight_type type = ktypes[_i];
  char path[512];
  snprintf(path, sizeof path, "%s/kquants/%s.bin", data_dir(), lzn_wtype_name(type));
  char *blocks, *want;
  size_t n_bytes, n_want;
  ck_assert_int_eq(lzn_read_file(path, &blocks, &n_bytes), LZN_OK);
  snprintf(path, sizeof path, "%s/kquants/%s.f32", data_dir(), lzn_wtype_name(type));
  ck_assert_int_eq(lzn_read_file(path, &want, &n_want), LZN_OK);
  const size_t n_blocks = n_bytes / lzn_wtype_block_bytes(type), n = n_blocks * LZN_QK_K;
  ck_assert_uint_eq(n_bytes, n_blocks * lzn_wtype_block_bytes(type));
  ck_assert_uint_eq(n_want, n * sizeof(float));
  const lzn_kernel_table *tables[2] = {reference_kernels(), active_kernels()};
  guarded out = guarded_alloc(n * sizeof(float));
  for (int k = 0; k < 2; k++) {
    tables[k]->type[type].to_f32.fn(out.data, blocks, n);
    for (size_t i = 0; i < n; i++)
      if (memcmp((float *)out.data + i, want + i * sizeof(float), sizeof(float)) != 0) {
        float w;
        memcpy(&w, want + i * sizeof(float), sizeof w);
        ck_abort_msg("%s %s to_f32: value %zu (super-block %zu) = %a, gguf-py %a", lzn_wtype_name(type),
                     k ? "active" : "reference", i, i / LZN_QK_K, (double)((float *)out.data)[i], (double)w);
      }
  }
  guarded_free(&out);
  free(blocks);
  free(want);
}
END_TEST

/* ------------------------------------------------- the reference itself */

/* Exact |terms| of one row's dot product (the S of the bound above), from
 * the super-blocks as numbers. */
static double dot_terms(lzn_weight_type type, const char *row, const lzn_block_q8_k *x, size_t n_blocks) {
  double s = 0.0;
  kq_unpacked u;
  for (size_t b = 0; b < n_blocks; b++) {
    unpack(type, row + b * lzn_wtype_block_bytes(type), &u);
    double qx = 0.0, xs = 0.0;
    for (size_t i = 0; i < LZN_QK_K; i++) {
      const size_t sub = i / u.sub_size;
      qx += fabs((double)u.sc[sub] * u.q[i] * x[b].qs[i]);
      xs += fabs((double)u.m[sub] * x[b].qs[i]);
    }
    s += fabs((double)x[b].d) * (fabs((double)u.d) * qx + fabs((double)u.dmin) * xs);
  }
  return s;
}

/* The reference dot equals sum to_f32(w) * to_f32(x) in double, within
 * its rounding: the integer formula and the dequantized values are one
 * definition. The same for axpy_rows. */
START_TEST(reference_agrees_with_dequantized_values) {
  const lzn_weight_type type = ktypes[_i];
  const lzn_kernel_table *ref = reference_kernels();
  test_rng r = {0x23a0u + (uint64_t)_i};
  const size_t d = 1024, nb = d / LZN_QK_K, f = 24;
  int32_t idx[24];
  for (size_t t = 0; t < f; t++) idx[t] = (int32_t)t;
  kmatrix m = make_kmatrix(&r, type, DATA_FLOAT, f, d, 0, d, idx, f);
  guarded x = make_x(&r, DATA_FLOAT, d);
  float out[24], wf[1024], xf[1024], y[1024], coef[24];
  ref->type[LZN_WTYPE_Q8_K].to_f32.fn(xf, x.data, d);
  ref->type[type].dot_rows.fn(out, m.mem.data, m.row_bytes, d, idx, f, x.data);
  double y_exact[1024] = {0};
  for (size_t t = 0; t < f; t++) {
    const char *row = (const char *)m.mem.data + t * m.row_bytes;
    ref->type[type].to_f32.fn(wf, row, d);
    double exact = 0.0;
    for (size_t j = 0; j < d; j++) exact += (double)wf[j] * xf[j];
    const double bound = ROUNDING_SLACK * DOT_ROUNDINGS(nb) * FLT_EPSILON * dot_terms(type, row, x.data, nb) +
                         UNDERFLOW_SLACK * (double)d;
    ck_assert_msg(fabs(out[t] - exact) <= bound, "%s dot row %zu: %.9g, dequantized %.9g (bound %.3g)",
                  lzn_wtype_name(type), t, (double)out[t], exact, bound);
    coef[t] = rng_float(&r);
    for (size_t j = 0; j < d; j++) y_exact[j] += (double)coef[t] * wf[j];
  }
  for (size_t j = 0; j < d; j++) y[j] = 0.0f;
  ref->type[type].axpy_rows.fn(y, d, m.mem.data, m.row_bytes, idx, coef, f);
  for (size_t j = 0; j < d; j++) {
    /* S from a q and c, not from w: w may be a near-cancellation of the two. */
    double s = 0.0;
    for (size_t t = 0; t < f; t++) {
      kq_unpacked u;
      unpack(type, (const char *)m.mem.data + t * m.row_bytes + (j / LZN_QK_K) * lzn_wtype_block_bytes(type), &u);
      const size_t sub = (j % LZN_QK_K) / u.sub_size;
      s += fabs((double)coef[t] * u.d * u.sc[sub] * u.q[j % LZN_QK_K]) + fabs((double)coef[t] * u.dmin * u.m[sub]);
    }
    const double bound = ROUNDING_SLACK * AXPY_ROUNDINGS(f) * FLT_EPSILON * s + UNDERFLOW_SLACK * (double)f;
    ck_assert_msg(fabs(y[j] - y_exact[j]) <= bound, "%s axpy column %zu: %.9g, dequantized %.9g (bound %.3g)",
                  lzn_wtype_name(type), j, (double)y[j], y_exact[j], bound);
  }
  guarded_free(&m.mem);
  guarded_free(&x);
}
END_TEST

/* --------------------------------------------------- from_f32 (quantize) */

/* Standard normal values (Box-Muller), deterministic. */
static void gaussian(test_rng *r, float *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const double u1 = ((double)(rng_next(r) >> 11) + 1.0) / 9007199254740993.0;
    const double u2 = (double)(rng_next(r) >> 11) / 9007199254740992.0;
    v[i] = (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
  }
}

/* Every value lands on the nearest point of the grid its sub-block
 * stored: |x - w| <= A / 2 inside the grid's span [lo, hi] (A = d * sc,
 * lo = -dmin * m, hi = lo + A * nmax; Q6_K: [-32 A, 31 A]), else w is the
 * nearer end. The padding of a last partial super-block is the value 0
 * quantized: on an affine grid, not always 0 (a kernel never uses it: x's
 * padding is 0, and axpy_rows stops at d). */
static void check_on_grid(lzn_weight_type type, const float *v, size_t d, const void *q, const char *what) {
  const size_t bb = lzn_wtype_block_bytes(type);
  float back[LZN_QK_K];
  for (size_t b = 0; b < n_blocks_of(d); b++) {
    kq_unpacked u;
    unpack(type, (const char *)q + b * bb, &u);
    reference_kernels()->type[type].to_f32.fn(back, (const char *)q + b * bb, LZN_QK_K);
    for (size_t i = 0; i < LZN_QK_K; i++) {
      const size_t j = b * LZN_QK_K + i, sub = i / u.sub_size;
      const double a = (double)u.d * u.sc[sub], c = (double)u.dmin * u.m[sub];
      /* The grid's span: Q4_K/Q5_K -c + a [0, nmax]; Q6_K a [-32, 31]. */
      const double nmax = type == LZN_WEIGHTS_Q4_K ? 15.0 : 31.0;
      const double lo = type == LZN_WEIGHTS_Q6_K ? fmin(-32.0 * a, 31.0 * a) : -c;
      const double hi = type == LZN_WEIGHTS_Q6_K ? fmax(-32.0 * a, 31.0 * a) : -c + a * nmax;
      const double x = j < d ? v[j] : 0.0, target = x < lo ? lo : x > hi ? hi : x;
      const double bound = fabs(a) * 0.5 * (1.0 + 1e-5) + 4.0 * FLT_EPSILON * (fabs(x) + fabs(c));
      const double err = fabs(target - (double)back[i]);
      if (!(err <= bound))
        ck_abort_msg("%s %s d=%zu: value %zu = %.9g -> %.9g; grid step %.6g over [%.6g, %.6g], off by %.3g > %.3g",
                     lzn_wtype_name(type), what, d, j, x, (double)back[i], a, lo, hi, err, bound);
    }
  }
}

START_TEST(from_f32_rounds_to_the_stored_grid) {
  const lzn_weight_type type = ktypes[_i];
  const lzn_kernel_table *k = active_kernels(), *ref = reference_kernels();
  test_rng r = {0x23b0u + (uint64_t)_i};
  static const size_t dims[] = {1, 255, 256, 257, 1000, 4096};
  float *v = malloc(4096 * sizeof(float));
  ck_assert_ptr_nonnull(v);
  for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
    for (int kind = 0; kind < 6; kind++) {
      const size_t d = dims[di], bytes = lzn_wtype_row_bytes(type, d);
      for (size_t j = 0; j < d; j++) {
        switch (kind) {
        case 0: v[j] = rng_float(&r); break;                          /* uniform */
        case 1: v[j] = rng_float(&r) * powf(10.0f, (float)(j / 256 % 7) - 4.0f); break; /* magnitudes per block */
        case 2: v[j] = 0.0f; break;                                   /* zeros */
        case 3: v[j] = rng_float(&r) + 3.0f; break;                   /* all positive: min > 0 */
        case 4: v[j] = j % 37 == 0 ? 100.0f : 1e-3f * rng_float(&r); break; /* outliers */
        default: v[j] = (float)((int)rng_below(&r, 31) - 15); break;  /* small integers */
        }
      }
      guarded got = guarded_alloc(bytes);
      unsigned char *want = malloc(bytes);
      ck_assert_ptr_nonnull(want);
      ref->type[type].from_f32.fn(want, v, d);
      k->type[type].from_f32.fn(got.data, v, d);
      ck_assert_msg(memcmp(got.data, want, bytes) == 0, "%s from_f32 d=%zu kind %d: the active bytes differ from "
                    "the reference's", lzn_wtype_name(type), d, kind);
      char what[32];
      snprintf(what, sizeof what, "kind %d", kind);
      check_on_grid(type, v, d, want, what);
      if (kind == 2) /* zeros store zeros */
        for (size_t b = 0; b < n_blocks_of(d); b++) {
          kq_unpacked u;
          unpack(type, want + b * lzn_wtype_block_bytes(type), &u);
          ck_assert(u.d == 0.0f && u.dmin == 0.0f);
        }
      free(want);
      guarded_free(&got);
    }
  free(v);
}
END_TEST

/* Relative RMS error of x -> from_f32 -> to_f32 on standard normal data,
 * against what a good quantizer reaches: llama.cpp's (its
 * quantize_row_*_ref, measured on the same kind of data: 0.0713 for Q4_K,
 * ~0.036 for Q5_K, 0.0178 for Q6_K; ours 0.0717, 0.0359, 0.0173), with 5 %
 * margin. A search that stopped searching (the spanning grid alone) gives
 * ~0.083 for Q4_K; Q4_0's own rounding 0.0859. */
START_TEST(quantizer_error_on_gaussian_data) {
  static const double limit[3] = {0.0753, 0.0378, 0.0187};
  const lzn_weight_type type = ktypes[_i];
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x23c0u};
  const size_t n = 256 * 512;
  float *v = malloc(n * sizeof(float)), *back = malloc(n * sizeof(float));
  void *q = malloc(lzn_wtype_row_bytes(type, n));
  ck_assert(v && back && q);
  gaussian(&r, v, n);
  k->type[type].from_f32.fn(q, v, n);
  k->type[type].to_f32.fn(back, q, n);
  double e = 0.0, s = 0.0;
  for (size_t i = 0; i < n; i++) e += ((double)v[i] - back[i]) * ((double)v[i] - back[i]), s += (double)v[i] * v[i];
  const double rel = sqrt(e / s);
  ck_assert_msg(rel <= limit[_i], "%s relative RMS error %.5f > %.5f", lzn_wtype_name(type), rel, limit[_i]);
  free(v), free(back), free(q);
}
END_TEST

/* Q8_K, x's type: the active from_f32 gives the reference's bytes, bsums
 * are the sums of 16, and every value is within half a step (d / 2). */
START_TEST(q8_k_from_f32) {
  const lzn_kernel_table *k = active_kernels(), *ref = reference_kernels();
  test_rng r = {0x23d0u};
  static const size_t dims[] = {1, 17, 255, 256, 257, 4096, 11008};
  float *v = malloc(11008 * sizeof(float)), *back = malloc(11264 * sizeof(float));
  ck_assert(v && back);
  for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
    for (int kind = 0; kind < 5; kind++) {
      const size_t d = dims[di], nb = n_blocks_of(d), bytes = nb * sizeof(lzn_block_q8_k);
      for (size_t j = 0; j < d; j++) {
        switch (kind) {
        case 0: v[j] = rng_float(&r); break;
        case 1: v[j] = rng_float(&r) * powf(10.0f, (float)(j / 256 % 9) - 6.0f); break;
        case 2: v[j] = 0.0f; break;
        case 3: v[j] = j % 256 == 5 ? -127.0f : (float)((int)rng_below(&r, 253) - 126) + 0.5f; break; /* ties */
        default: v[j] = 1e-37f * rng_float(&r); break; /* d below FLT_MIN: stored as 0 */
        }
      }
      guarded got = guarded_alloc(bytes);
      lzn_block_q8_k *want = malloc(bytes);
      ck_assert_ptr_nonnull(want);
      ref->type[LZN_WTYPE_Q8_K].from_f32.fn(want, v, d);
      k->type[LZN_WTYPE_Q8_K].from_f32.fn(got.data, v, d);
      ck_assert_msg(memcmp(got.data, want, bytes) == 0, "Q8_K from_f32 d=%zu kind %d differs from the reference", d,
                    kind);
      k->type[LZN_WTYPE_Q8_K].to_f32.fn(back, want, nb * LZN_QK_K);
      for (size_t b = 0; b < nb; b++) {
        for (size_t g = 0; g < 16; g++) {
          int sum = 0;
          for (size_t j = 0; j < 16; j++) sum += want[b].qs[16 * g + j];
          ck_assert_int_eq(want[b].bsums[g], sum);
        }
        for (size_t i = 0; i < LZN_QK_K; i++) {
          const size_t j = b * LZN_QK_K + i;
          const double x = j < d ? v[j] : 0.0;
          const double bound = kind == 4 ? 1e-37 : want[b].d * (0.5 + 1e-5) + FLT_EPSILON * fabs(x);
          ck_assert_msg(fabs(x - back[j]) <= bound, "Q8_K d=%zu kind %d: %zu: %.9g -> %.9g", d, kind, j, x,
                        (double)back[j]);
        }
        ck_assert(kind != 4 || want[b].d == 0.0f);
      }
      free(want);
      guarded_free(&got);
    }
  free(v), free(back);
}
END_TEST

/* ------------------------------------------------- dot_rows, gemv: SIMD */

static void check_dot_values(lzn_weight_type type, data_kind kind, const char *what, const kmatrix *m, size_t j0,
                             size_t d, const int32_t *idx, size_t n, const void *x, const float *out, const float *ref) {
  for (size_t t = 0; t < n; t++) {
    const size_t row_i = idx ? (size_t)idx[t] : t;
    const char *row = (const char *)m->mem.data + row_i * m->row_bytes + lzn_wtype_row_bytes(type, j0);
    const double bound = kind == DATA_INTEGER ? 0.0
                                              : ROUNDING_SLACK * DOT_ROUNDINGS(n_blocks_of(d)) * FLT_EPSILON *
                                                        dot_terms(type, row, x, n_blocks_of(d)) +
                                                    UNDERFLOW_SLACK * (double)d;
    if (!(fabs((double)out[t] - (double)ref[t]) <= bound))
      ck_abort_msg("%s %s %s: j0=%zu d=%zu n=%zu: out[%zu] (row %zu) = %.9g, reference %.9g (bound %.3g)",
                   lzn_wtype_name(type), what, kind == DATA_INTEGER ? "integer" : "float", j0, d, n, t, row_i,
                   (double)out[t], (double)ref[t], bound);
  }
}

static void check_dot(const lzn_kernel_table *k, test_rng *r, lzn_weight_type type, data_kind kind, size_t f,
                      size_t cols, size_t j0, size_t d, rows_pattern pattern, int gemv) {
  int32_t *idx = malloc(rows_capacity(f) * sizeof(int32_t));
  ck_assert_ptr_nonnull(idx);
  size_t n;
  if (gemv) { /* rows [0, n): half of them, the rest poisoned */
    n = pattern == ROWS_ALL ? f : pattern == ROWS_NONE ? 0 : f / 2;
    for (size_t i = 0; i < n; i++) idx[i] = (int32_t)i;
  } else {
    n = make_rows(r, pattern, f, idx);
  }
  kmatrix m = make_kmatrix(r, type, kind, f, cols, j0, d, idx, n);
  const void *w = (const char *)m.mem.data + lzn_wtype_row_bytes(type, j0);
  guarded x = make_x(r, kind, d);
  guarded out_mem = guarded_alloc((n ? n : 1) * sizeof(float));
  float *out = (float *)out_mem.data + (n ? 0 : 1), *ref = malloc((n + 1) * sizeof(float));
  ck_assert_ptr_nonnull(ref);
  if (gemv) {
    reference_kernels()->type[type].gemv.fn(ref, w, m.row_bytes, d, n, x.data);
    k->type[type].gemv.fn(out, w, m.row_bytes, d, n, x.data);
  } else {
    reference_kernels()->type[type].dot_rows.fn(ref, w, m.row_bytes, d, idx, n, x.data);
    k->type[type].dot_rows.fn(out, w, m.row_bytes, d, idx, n, x.data);
  }
  char what[64];
  snprintf(what, sizeof what, "%s %s f=%zu cols=%zu", gemv ? "gemv" : "dot_rows", pattern_names[pattern], f, cols);
  check_dot_values(type, kind, what, &m, j0, d, gemv ? NULL : idx, n, x.data, out, ref);
  free(idx), free(ref);
  guarded_free(&m.mem), guarded_free(&x), guarded_free(&out_mem);
}

/* Rows of d weights: whole super-blocks (every real row), and the padded
 * last super-block the kernels allow. */
static const size_t test_dims[] = {256, 512, 1000, 4096};
#define N_TEST_DIMS (sizeof test_dims / sizeof test_dims[0])
static size_t test_rows(size_t d) { return d >= 4096 ? 67 : 203; }

START_TEST(dot_matches_reference) {
  const lzn_weight_type type = ktypes[_i / 2];
  const data_kind kind = _i % 2 ? DATA_FLOAT : DATA_INTEGER;
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x23e0u + (uint64_t)_i};
  for (size_t di = 0; di < N_TEST_DIMS; di++) {
    const size_t d = test_dims[di], f = test_rows(d);
    for (int p = 0; p < ROWS_N_PATTERNS; p++) check_dot(k, &r, type, kind, f, d, 0, d, (rows_pattern)p, 0);
    check_dot(k, &r, type, kind, f, d, 0, d, ROWS_ALL, 1);
    check_dot(k, &r, type, kind, f, d, 0, d, ROWS_FEW, 1); /* half the rows; the rest must not be read */
    check_dot(k, &r, type, kind, f, d, 0, d, ROWS_NONE, 1);
  }
  for (size_t n = 1; n <= 19; n++) check_dot(k, &r, type, kind, n, 512, 0, 512, ROWS_ALL, 0); /* every group split */
}
END_TEST

/* Column slices as threads get them: j0 a multiple of 256, the last
 * slice of a row possibly mid-super-block. */
typedef struct {
  size_t cols, j0, d;
} slice;
static const slice test_slices[] = {{1024, 0, 256}, {1024, 256, 512}, {1024, 768, 256}, {1000, 768, 232}, {4096, 2048, 2048}};
#define N_TEST_SLICES (sizeof test_slices / sizeof test_slices[0])

START_TEST(dot_on_column_slices) {
  const lzn_weight_type type = ktypes[_i];
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x23f0u + (uint64_t)_i};
  for (size_t i = 0; i < N_TEST_SLICES; i++) {
    const slice s = test_slices[i];
    check_dot(k, &r, type, DATA_INTEGER, 131, s.cols, s.j0, s.d, ROWS_RANDOM_50, 0);
    check_dot(k, &r, type, DATA_FLOAT, 131, s.cols, s.j0, s.d, ROWS_SHUFFLED, 0);
    check_dot(k, &r, type, DATA_INTEGER, 131, s.cols, s.j0, s.d, ROWS_LAST, 0);
  }
}
END_TEST

/* ------------------------------------------------------ axpy_rows: SIMD */

/* For column j (in super-block b at i) of axpy_rows_q8's rule, over n
 * rows: the exact sum of coef * w (into *exact), sum over groups of m *
 * sum |q| (*q_terms, m the group's largest |a|) and of |c| (*min_terms,
 * each |c| summed: it bounds the group's |sum of c|). */
static void q8_terms(lzn_weight_type type, const void *w, size_t row_bytes, const int32_t *idx, const float *coef,
                     size_t n, size_t b, size_t i, double *exact, double *q_terms, double *min_terms) {
  *exact = *q_terms = *min_terms = 0.0;
  for (size_t t0 = 0; t0 < n; t0 += LZN_AXPY_Q8_GROUP) {
    const size_t g = n - t0 < LZN_AXPY_Q8_GROUP ? n - t0 : LZN_AXPY_Q8_GROUP;
    double m = 0.0, q_abs = 0.0;
    for (size_t t = t0; t < t0 + g; t++) {
      kq_unpacked u;
      unpack(type, (const char *)w + (size_t)idx[t] * row_bytes + b * lzn_wtype_block_bytes(type), &u);
      const size_t sub = i / u.sub_size;
      const float a = coef[t] * (u.d * (float)u.sc[sub]); /* the kernels' fp32 product */
      if (fabs((double)a) > m) m = fabs((double)a);
      q_abs += abs(u.q[i]);
      *min_terms += fabs((double)coef[t] * u.dmin * u.m[sub]);
      *exact += (double)coef[t] * ((double)u.d * u.sc[sub] * u.q[i] - (double)u.dmin * u.m[sub]);
    }
    *q_terms += m * q_abs;
  }
}

static void check_axpy_slot(const lzn_kernel_table *k, test_rng *r, lzn_weight_type type, int q8, data_kind kind,
                            size_t f, size_t cols, size_t j0, size_t d, rows_pattern pattern) {
  int32_t *idx = malloc(rows_capacity(f) * sizeof(int32_t));
  ck_assert_ptr_nonnull(idx);
  const size_t n = make_rows(r, pattern, f, idx);
  kmatrix m = make_kmatrix(r, type, kind, f, cols, j0, d, idx, n);
  const void *w = (const char *)m.mem.data + lzn_wtype_row_bytes(type, j0);
  guarded coef_mem = guarded_alloc((n ? n : 1) * sizeof(float)), y_mem = guarded_alloc(d * sizeof(float));
  float *coef = (float *)coef_mem.data + (n ? 0 : 1), *y = y_mem.data, *ref = malloc(d * sizeof(float));
  ck_assert_ptr_nonnull(ref);
  for (size_t t = 0; t < n; t++)
    coef[t] = kind == DATA_INTEGER ? (float)((int)rng_below(r, 9) - 4) : rng_float(r) * (rng_below(r, 4) ? 1.0f : 8.0f);
  for (size_t j = 0; j < d; j++) ref[j] = y[j] = kind == DATA_INTEGER ? (float)((int)rng_below(r, 17) - 8) : rng_float(r);
  const float *y0 = NULL;
  float *y_start = malloc(d * sizeof(float));
  ck_assert_ptr_nonnull(y_start);
  memcpy(y_start, y, d * sizeof(float));
  y0 = y_start;
  const lzn_type_kernels *active = &k->type[type], *want = &reference_kernels()->type[type];
  (q8 ? want->axpy_rows_q8.fn : want->axpy_rows.fn)(ref, d, w, m.row_bytes, idx, coef, n);
  (q8 ? active->axpy_rows_q8.fn : active->axpy_rows.fn)(y, d, w, m.row_bytes, idx, coef, n);
  const size_t n_groups = (n + LZN_AXPY_Q8_GROUP - 1) / LZN_AXPY_Q8_GROUP;
  for (size_t j = 0; j < d; j++) {
    double bound = 0.0;
    if (q8) { /* never exact: s = m / 127 is no short binary fraction */
      double exact, q_terms, min_terms;
      q8_terms(type, w, m.row_bytes, idx, coef, n, j / LZN_QK_K, j % LZN_QK_K, &exact, &q_terms, &min_terms);
      bound = ROUNDING_SLACK * AXPY_Q8_ROUNDINGS(n_groups) * FLT_EPSILON * (fabs((double)y0[j]) + q_terms + min_terms) +
              UNDERFLOW_SLACK * (double)(n + 1);
    } else if (kind == DATA_FLOAT) {
      double s = fabs((double)y0[j]);
      const size_t b = j / LZN_QK_K, i = j % LZN_QK_K;
      for (size_t t = 0; t < n; t++) {
        kq_unpacked u;
        unpack(type, (const char *)w + (size_t)idx[t] * m.row_bytes + b * lzn_wtype_block_bytes(type), &u);
        const size_t sub = i / u.sub_size;
        s += fabs((double)coef[t] * u.d * u.sc[sub] * u.q[i]) + fabs((double)coef[t] * u.dmin * u.m[sub]);
      }
      bound = ROUNDING_SLACK * AXPY_ROUNDINGS(n) * FLT_EPSILON * s + UNDERFLOW_SLACK * (double)(n + 1);
    }
    if (!(fabs((double)y[j] - (double)ref[j]) <= bound))
      ck_abort_msg("%s %s %s %s f=%zu cols=%zu j0=%zu d=%zu n=%zu: y[%zu] = %.9g, reference %.9g (bound %.3g)",
                   lzn_wtype_name(type), q8 ? "axpy_rows_q8" : "axpy_rows", pattern_names[pattern],
                   kind == DATA_INTEGER ? "integer" : "float", f, cols, j0, d, n, j, (double)y[j], (double)ref[j],
                   bound);
  }
  free(idx), free(ref), free(y_start);
  guarded_free(&m.mem), guarded_free(&coef_mem), guarded_free(&y_mem);
}

/* Both slots; axpy_rows_q8 only where it is not axpy_rows itself. */
static void check_axpy(const lzn_kernel_table *k, test_rng *r, lzn_weight_type type, data_kind kind, size_t f,
                       size_t cols, size_t j0, size_t d, rows_pattern pattern) {
  check_axpy_slot(k, r, type, 0, kind, f, cols, j0, d, pattern);
  if (k->type[type].axpy_rows_q8.fn != k->type[type].axpy_rows.fn)
    check_axpy_slot(k, r, type, 1, kind, f, cols, j0, d, pattern);
}

START_TEST(axpy_matches_reference) {
  const lzn_weight_type type = ktypes[_i / 2];
  const data_kind kind = _i % 2 ? DATA_FLOAT : DATA_INTEGER;
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x2400u + (uint64_t)_i};
  for (size_t di = 0; di < N_TEST_DIMS; di++) {
    const size_t d = test_dims[di], f = test_rows(d);
    for (int p = 0; p < ROWS_N_PATTERNS; p++) check_axpy(k, &r, type, kind, f, d, 0, d, (rows_pattern)p);
  }
  for (size_t f = 1; f <= 19; f++) check_axpy(k, &r, type, kind, f, 512, 0, 512, ROWS_ALL); /* every group split */
}
END_TEST

START_TEST(axpy_on_column_slices) {
  const lzn_weight_type type = ktypes[_i];
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x2410u + (uint64_t)_i};
  for (size_t i = 0; i < N_TEST_SLICES; i++) {
    const slice s = test_slices[i];
    check_axpy(k, &r, type, DATA_INTEGER, 131, s.cols, s.j0, s.d, ROWS_RANDOM_50);
    check_axpy(k, &r, type, DATA_FLOAT, 131, s.cols, s.j0, s.d, ROWS_SHUFFLED);
    check_axpy(k, &r, type, DATA_INTEGER, 131, s.cols, s.j0, s.d, ROWS_LAST);
  }
}
END_TEST

/* The K-quants' axpy_rows_q8 against the exact sum in double, on float
 * data: within what kernels.h states (each a moves by at most m / 254)
 * plus the fp32 roundings. */
START_TEST(axpy_q8_within_its_stated_error) {
  const lzn_kernel_table *k = active_kernels();
  const lzn_weight_type type = ktypes[_i];
  test_rng r = {0x2420u + (uint64_t)_i};
  static const size_t dims[] = {256, 1000, 4096};
  for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
    const size_t d = dims[di], f = 403;
    int32_t *idx = malloc(rows_capacity(f) * sizeof(int32_t));
    float *coef = malloc(rows_capacity(f) * sizeof(float)), *y = calloc(d, sizeof(float));
    ck_assert(idx && coef && y);
    const size_t n = make_rows(&r, ROWS_RANDOM_50, f, idx);
    for (size_t t = 0; t < n; t++) coef[t] = rng_float(&r) * (rng_below(&r, 8) == 0 ? 10.0f : 1.0f);
    kmatrix m = make_kmatrix(&r, type, DATA_FLOAT, f, d, 0, d, idx, n);
    k->type[type].axpy_rows_q8.fn(y, d, m.mem.data, m.row_bytes, idx, coef, n);
    const size_t n_groups = (n + LZN_AXPY_Q8_GROUP - 1) / LZN_AXPY_Q8_GROUP;
    for (size_t j = 0; j < d; j++) {
      double exact, q_terms, min_terms;
      q8_terms(type, m.mem.data, m.row_bytes, idx, coef, n, j / LZN_QK_K, j % LZN_QK_K, &exact, &q_terms,
               &min_terms);
      const double bound = AXPY_Q8_STEP_FRACTION * q_terms +
                           ROUNDING_SLACK * AXPY_Q8_ROUNDINGS(n_groups) * FLT_EPSILON * (q_terms + min_terms) +
                           UNDERFLOW_SLACK * (double)(n + 1);
      if (!(fabs((double)y[j] - exact) <= bound))
        ck_abort_msg("%s axpy_rows_q8 d=%zu n=%zu: y[%zu] = %.9g, exact %.9g, stated bound %.3g", lzn_wtype_name(type), d, n, j,
                     (double)y[j], exact, bound);
    }
    free(idx), free(coef), free(y);
    guarded_free(&m.mem);
  }
}
END_TEST

/* ------------------------------------------------------------- suite */

static Suite *kquant_suite(void) {
  Suite *s = suite_create("kernels_kquant");
  TCase *ref = tcase_create("reference");
  tcase_set_timeout(ref, 60);
  tcase_add_test(ref, kquant_slots_are_filled);
  tcase_add_loop_test(ref, to_f32_equals_gguf_py, 0, N_KTYPES);
  tcase_add_loop_test(ref, reference_agrees_with_dequantized_values, 0, N_KTYPES);
  tcase_add_loop_test(ref, from_f32_rounds_to_the_stored_grid, 0, N_KTYPES);
  tcase_add_loop_test(ref, quantizer_error_on_gaussian_data, 0, N_KTYPES);
  tcase_add_test(ref, q8_k_from_f32);
  suite_add_tcase(s, ref);
  TCase *simd = tcase_create("simd");
  tcase_set_timeout(simd, 120);
  tcase_add_loop_test(simd, dot_matches_reference, 0, 2 * N_KTYPES);
  tcase_add_loop_test(simd, dot_on_column_slices, 0, N_KTYPES);
  tcase_add_loop_test(simd, axpy_matches_reference, 0, 2 * N_KTYPES);
  tcase_add_loop_test(simd, axpy_on_column_slices, 0, N_KTYPES);
  tcase_add_loop_test(simd, axpy_q8_within_its_stated_error, 0, N_KTYPES);
  suite_add_tcase(s, simd);
  return s;
}

int main(void) { return run_suite(kquant_suite()); }
