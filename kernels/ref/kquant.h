/*
 * ref/kquant.h: what the K-quants' reference kernels (ref/q4_k.c, q5_k.c,
 * q6_k.c) share: reading a super-block's packed scales, and the quantizer
 * (from_f32), stated once. Plain C, static, so each including file keeps
 * its own copy (compiled without ISA flags). Layouts: kernels/blocks.h.
 *
 * The quantizer is not llama.cpp's bit for bit (its K-quant quantizers are
 * searches whose exact steps are an implementation detail; files made by
 * llama-quantize are read as they are, never requantized by default). It
 * solves the same problem the same way, in three steps per super-block:
 *
 *  1. each sub-block's own scale (and min): x ~ a q - b, q integer in
 *     [0, nmax] (Q4_K, Q5_K; b >= 0, so 0 is always representable) or
 *     x ~ a q, q in [-nmax - 1, nmax] (Q6_K), minimising the weighted squared
 *     error sum_i w_i (x_i - value_i)^2 with w_i = sqrt(mean x^2) + |x_i|
 *     (large weights matter more; llama.cpp weighs the same way). Candidate
 *     grids (KQ_SEARCH_STEPS of them, around the one that spans the values)
 *     each give their q; for those q the best a and b are a 2x2 (1x1)
 *     least-squares solve; the best candidate is kept.
 *  2. the super-block's scales: d = max a / 63 (and dmin = max b / 63),
 *     stored as fp16, each sub-block's a as round(a / d) in 6 bits (Q6_K:
 *     d = -max_a / 128 for the a of largest magnitude, int8 round(a / d)).
 *  3. every q again, to the nearest point of the grid that was stored:
 *     q = clamp(round((x + B) / A), 0, nmax) with A = fp16(d) * sc and
 *     B = fp16(dmin) * m (Q6_K: clamp(round(x / A), -32, 31) + 32), so the
 *     rounding of the scales in step 2 costs as little as it can.
 * A sub-block of zeros (or a super-block whose scales round to 0) stores
 * 0. Rounding is round-half-to-even of fp32 values (rintf's; values are
 * clamped to the grid before they are rounded). The caller
 * checks for NaN and Inf first (kernels.h).
 */
#ifndef LZN_KERNELS_REF_KQUANT_H
#define LZN_KERNELS_REF_KQUANT_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/blocks.h"
#include "kernels/half.h"
#include "kernels/ref/axpy_q8.h"

/* --------------------------------------------------------------- scales */

/* Sub-block s's 6-bit scale and min of Q4_K / Q5_K (blocks.h). */
static inline void kq_scale_min(const uint8_t *scales, size_t s, int32_t *sc, int32_t *m) {
  if (s < 4) {
    *sc = scales[s] & 63;
    *m = scales[s + 4] & 63;
  } else {
    *sc = (scales[s + 4] & 15) | (scales[s - 4] >> 6) << 4;
    *m = (scales[s + 4] >> 4) | (scales[s] >> 6) << 4;
  }
}

/* The inverse: packs 8 scales and 8 mins, each in [0, 63]. */
static inline void kq_pack_scale_min(uint8_t *scales, const uint8_t *sc, const uint8_t *m) {
  for (size_t s = 0; s < 4; s++) {
    scales[s] = (uint8_t)(sc[s] | (sc[s + 4] >> 4) << 6);
    scales[s + 4] = (uint8_t)(m[s] | (m[s + 4] >> 4) << 6);
    scales[s + 8] = (uint8_t)((sc[s + 4] & 15) | (m[s + 4] & 15) << 4);
  }
}

/* ------------------------------------------------------ the row kernels */

/* A super-block as numbers: w_i = (d * sc[s]) * q_i - (dmin * m[s]) for
 * i in sub-block s (sub_size weights each). Q6_K: q_i already minus 32,
 * m and dmin 0. Every kernel below reads super-blocks through this. */
typedef struct kq_unpacked {
  float d, dmin;  /* the fp16 scales, widened */
  size_t sub_size;
  int32_t sc[16], m[16];
  int32_t q[LZN_QK_K];
} kq_unpacked;

typedef void (*kq_unpack_fn)(const void *block, kq_unpacked *u);

/* One super-block of each type as numbers (blocks.h has the layouts). */
static inline void kq_unpack_q4_k(const void *block, kq_unpacked *u) {
  const lzn_block_q4_k *b = block;
  u->d = lzn_f16_to_f32(b->d), u->dmin = lzn_f16_to_f32(b->dmin), u->sub_size = 32;
  for (size_t s = 0; s < 8; s++) kq_scale_min(b->scales, s, &u->sc[s], &u->m[s]);
  /* weights 64g + l and 64g + 32 + l: the low and high nibble of qs[32g + l] */
  for (size_t g = 0; g < 4; g++)
    for (size_t l = 0; l < 32; l++) {
      const uint8_t byte = b->qs[32 * g + l];
      u->q[64 * g + l] = byte & 15, u->q[64 * g + 32 + l] = byte >> 4;
    }
}

static inline void kq_unpack_q5_k(const void *block, kq_unpacked *u) {
  const lzn_block_q5_k *b = block;
  u->d = lzn_f16_to_f32(b->d), u->dmin = lzn_f16_to_f32(b->dmin), u->sub_size = 32;
  for (size_t s = 0; s < 8; s++) kq_scale_min(b->scales, s, &u->sc[s], &u->m[s]);
  /* as Q4_K's, plus bit 2g (low nibble) or 2g + 1 (high) of qh[l] as bit 4 */
  for (size_t g = 0; g < 4; g++)
    for (size_t l = 0; l < 32; l++) {
      const uint8_t byte = b->qs[32 * g + l], high = b->qh[l];
      u->q[64 * g + l] = (byte & 15) | ((high >> (2 * g)) & 1) << 4;
      u->q[64 * g + 32 + l] = (byte >> 4) | ((high >> (2 * g + 1)) & 1) << 4;
    }
}

static inline void kq_unpack_q6_k(const void *block, kq_unpacked *u) {
  const lzn_block_q6_k *b = block;
  u->d = lzn_f16_to_f32(b->d), u->dmin = 0.0f, u->sub_size = 16;
  for (size_t g = 0; g < 16; g++) u->sc[g] = b->scales[g], u->m[g] = 0;
  /* weight 128h + 32c + l: a nibble of ql[64h + 32(c % 2) + l] (low for
   * c < 2) and bits 2c, 2c + 1 of qh[32h + l] above it, minus 32 */
  for (size_t h = 0; h < 2; h++)
    for (size_t l = 0; l < 32; l++) {
      const int32_t a = b->ql[64 * h + l], c = b->ql[64 * h + 32 + l], high = b->qh[32 * h + l];
      int32_t *q = u->q + 128 * h + l;
      q[0] = ((a & 15) | (high & 3) << 4) - 32;
      q[32] = ((c & 15) | ((high >> 2) & 3) << 4) - 32;
      q[64] = ((a >> 4) | ((high >> 4) & 3) << 4) - 32;
      q[96] = ((c >> 4) | ((high >> 6) & 3) << 4) - 32;
    }
}

/* The dot product of one row with x in Q8_K (the contract of every
 * K-quant's dot_rows and gemv). Per super-block, exact integers:
 *   sumi = sum_s sc[s] * sum_{i in s} q_i * qx_i     (|sumi| < 2^31)
 *   summ = sum_s m[s] * sum_{i in s} qx_i
 * then, in fp32, term = (dx * d) * (float)sumi - (dx * dmin) * (float)summ
 * (llama.cpp's vec_dot_q4_K_q8_K order), the terms added in super-block
 * order. */
static inline float kq_dot_row(const unsigned char *row, size_t block_bytes, const lzn_block_q8_k *x,
                               size_t n_blocks, kq_unpack_fn unpack) {
  float sum = 0.0f;
  kq_unpacked u;
  for (size_t b = 0; b < n_blocks; b++) {
    unpack(row + b * block_bytes, &u);
    int32_t sumi = 0, summ = 0;
    for (size_t s = 0; s < LZN_QK_K / u.sub_size; s++) {
      int32_t isum = 0, xsum = 0;
      for (size_t i = s * u.sub_size; i < (s + 1) * u.sub_size; i++)
        isum += u.q[i] * (int32_t)x[b].qs[i], xsum += x[b].qs[i];
      sumi += u.sc[s] * isum, summ += u.m[s] * xsum;
    }
    sum += x[b].d * u.d * (float)sumi - x[b].d * u.dmin * (float)summ;
  }
  return sum;
}

static inline void kq_dot_rows(float *out, const void *w, size_t row_bytes, size_t d, const int32_t *idx,
                               size_t n, const void *x, size_t block_bytes, kq_unpack_fn unpack) {
  const size_t n_blocks = (d + LZN_QK_K - 1) / LZN_QK_K;
  for (size_t t = 0; t < n; t++) {
    const size_t r = idx ? (size_t)idx[t] : t;
    out[t] = kq_dot_row((const unsigned char *)w + r * row_bytes, block_bytes, x, n_blocks, unpack);
  }
}

/* y[j] += a_s * q_j - b_s with a_s = coef * (d * sc[s]) and b_s = coef *
 * (dmin * m[s]) in fp32: one factor pair per sub-block, as the SIMD
 * kernels broadcast them (d * sc and dmin * m are exact in fp32). */
static inline void kq_axpy_rows(float *y, size_t d, const void *w, size_t row_bytes, const int32_t *idx,
                                const float *coef, size_t n, size_t block_bytes, kq_unpack_fn unpack) {
  const size_t n_blocks = (d + LZN_QK_K - 1) / LZN_QK_K;
  kq_unpacked u;
  for (size_t t = 0; t < n; t++) {
    const unsigned char *row = (const unsigned char *)w + (size_t)idx[t] * row_bytes;
    for (size_t b = 0; b < n_blocks; b++) {
      unpack(row + b * block_bytes, &u);
      const size_t j_end = d - b * LZN_QK_K < LZN_QK_K ? d - b * LZN_QK_K : LZN_QK_K;
      for (size_t j = 0; j < j_end; j++) {
        const size_t s = j / u.sub_size;
        const float a = coef[t] * (u.d * (float)u.sc[s]), c = coef[t] * (u.dmin * (float)u.m[s]);
        y[b * LZN_QK_K + j] += a * (float)u.q[j] - c;
      }
    }
  }
}

/* axpy_rows_q8 of a K-quant (kernels.h has the rule): per group of
 * LZN_AXPY_Q8_GROUP rows, super-block and sub-block s, the rows' a_t =
 * coef * (d * sc[s]) rounded to int8 as ref/axpy_q8.h rounds a block's, and
 * their mins' term c_t = coef * (dmin * m[s]) summed in fp32: the even rows'
 * in order, the odd rows' in order, then the two sums added (the order the
 * SIMD kernels' lanes make, so the term is the same bits in all). Then per
 * column y += s * (sum of alpha_t q_t, exact) and y -= that term. */
static inline void kq_axpy_rows_q8(float *y, size_t d, const void *w, size_t row_bytes, const int32_t *idx,
                                   const float *coef, size_t n, size_t block_bytes, kq_unpack_fn unpack) {
  const size_t n_blocks = (d + LZN_QK_K - 1) / LZN_QK_K;
  kq_unpacked u[LZN_AXPY_Q8_GROUP];
  for (size_t t0 = 0; t0 < n; t0 += LZN_AXPY_Q8_GROUP) {
    const size_t g = n - t0 < LZN_AXPY_Q8_GROUP ? n - t0 : LZN_AXPY_Q8_GROUP;
    for (size_t b = 0; b < n_blocks; b++) {
      for (size_t t = 0; t < g; t++)
        unpack((const unsigned char *)w + (size_t)idx[t0 + t] * row_bytes + b * block_bytes, &u[t]);
      const size_t j_end = d - b * LZN_QK_K < LZN_QK_K ? d - b * LZN_QK_K : LZN_QK_K, sub = u[0].sub_size;
      for (size_t j0 = 0; j0 < j_end; j0 += sub) {
        const size_t s = j0 / sub;
        float a[LZN_AXPY_Q8_GROUP], mins[2] = {0.0f, 0.0f};
        int32_t alpha[LZN_AXPY_Q8_GROUP];
        for (size_t t = 0; t < g; t++) {
          a[t] = coef[t0 + t] * (u[t].d * (float)u[t].sc[s]);
          mins[t % 2] += coef[t0 + t] * (u[t].dmin * (float)u[t].m[s]);
        }
        const float scale = ref_q8_coefficients(a, g, alpha), min_term = mins[0] + mins[1];
        for (size_t j = j0; j < j0 + sub && j < j_end; j++) {
          int32_t sum = 0;
          for (size_t t = 0; t < g; t++) sum += alpha[t] * u[t].q[j];
          y[b * LZN_QK_K + j] = (y[b * LZN_QK_K + j] + scale * (float)sum) - min_term;
        }
      }
    }
  }
}

/* w_j = (d * sc[s]) * q_j - dmin * m[s]: the products exact in fp32, one
 * rounding in the subtraction, as gguf-py's dequantize computes it (so
 * the two agree bit for bit: tests/test_kquants.c). */
static inline void kq_to_f32(float *dst, const void *src, size_t d, size_t block_bytes, kq_unpack_fn unpack) {
  kq_unpacked u;
  for (size_t b = 0; b * LZN_QK_K < d; b++) {
    unpack((const unsigned char *)src + b * block_bytes, &u);
    const size_t j_end = d - b * LZN_QK_K < LZN_QK_K ? d - b * LZN_QK_K : LZN_QK_K;
    /* Sub-block by sub-block: (d * sc) * q - (dmin * m), each product
     * rounded to fp32 (no contraction in ISO C), so the inner loop is one
     * multiply and one subtract per weight (it vectorizes). */
    for (size_t j0 = 0; j0 < j_end; j0 += u.sub_size) {
      const size_t s = j0 / u.sub_size, n = j_end - j0 < u.sub_size ? j_end - j0 : u.sub_size;
      const float scale = u.d * (float)u.sc[s], min = u.dmin * (float)u.m[s];
      float *out = dst + b * LZN_QK_K + j0;
      const int32_t *q = u.q + j0;
      for (size_t j = 0; j < n; j++) out[j] = scale * (float)q[j] - min;
    }
  }
}

/* to_f32 of each type, for the table: the reference's, and each ISA's (the
 * same loops compiled with its flags, where they vectorize: the same
 * products in the same order, no contraction in ISO C, so the same bits). */
static inline void kq_q4_k_to_f32(float *dst, const void *src, size_t d) {
  kq_to_f32(dst, src, d, sizeof(lzn_block_q4_k), kq_unpack_q4_k);
}
static inline void kq_q5_k_to_f32(float *dst, const void *src, size_t d) {
  kq_to_f32(dst, src, d, sizeof(lzn_block_q5_k), kq_unpack_q5_k);
}
static inline void kq_q6_k_to_f32(float *dst, const void *src, size_t d) {
  kq_to_f32(dst, src, d, sizeof(lzn_block_q6_k), kq_unpack_q6_k);
}

/* --------------------------------------------------- the quantizer, step 1 */

/* Candidate grids on each side of the spanning one, 0.1 step apart. */
#define KQ_SEARCH_STEPS 10
#define KQ_SEARCH_DELTA 0.1f

static inline int kq_clamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* v rounded to the nearest integer, half to even (rintf's result), then
 * clamped to [lo, hi]: v is clamped first, so the magic-number rounding
 * (exact for |v| < 2^22) applies; baseline x86-64 has no rounding
 * instruction, and a libm call per weight made the search 10x slower. */
static inline int kq_round_clamp(float v, int lo, int hi) {
  v = v < (float)lo ? (float)lo : v > (float)hi ? (float)hi : v;
  const float magic = 12582912.0f; /* 1.5 * 2^23: adding it leaves the integer part in the low bits */
  const float shifted = v + magic;
  uint32_t bits;
  memcpy(&bits, &shifted, sizeof bits);
  return (int)(bits & 0x007fffffu) - 0x00400000;
}

/* w_i = sqrt(mean x^2) + |x_i| over n values. */
static inline void kq_weights(const float *x, size_t n, float *w) {
  float sum2 = 0.0f;
  for (size_t i = 0; i < n; i++) sum2 += x[i] * x[i];
  const float av = sqrtf(sum2 / (float)n);
  for (size_t i = 0; i < n; i++) w[i] = av + fabsf(x[i]);
}

/* Step 1 of Q4_K / Q5_K for one sub-block of n values: *a >= 0 and *b >= 0
 * with x_i ~ *a * q_i - *b, q_i in [0, nmax]. */
static inline void kq_fit_affine(const float *x, size_t n, int nmax, float *a, float *b) {
  float w[32], lo = x[0], hi = x[0];
  for (size_t i = 1; i < n; i++) lo = x[i] < lo ? x[i] : lo, hi = x[i] > hi ? x[i] : hi;
  if (lo > 0.0f) lo = 0.0f; /* b >= 0: the grid always holds 0 */
  if (!(hi > lo)) {          /* every value 0 (or equal and <= 0) */
    *a = 0.0f, *b = -lo;
    return;
  }
  kq_weights(x, n, w);
  float best_a = (hi - lo) / (float)nmax, best_b = -lo, best_err = 0.0f;
  for (size_t i = 0; i < n; i++) { /* the spanning grid as it is, unfitted */
    const int q = kq_round_clamp((x[i] - lo) / best_a, 0, nmax);
    const float e = best_a * (float)q - best_b - x[i];
    best_err += w[i] * e * e;
  }
  for (int k = -KQ_SEARCH_STEPS; k <= KQ_SEARCH_STEPS; k++) {
    const float iscale = ((float)nmax + KQ_SEARCH_DELTA * (float)k) / (hi - lo);
    int q[32];
    float sw = 0.0f, swq = 0.0f, swq2 = 0.0f, swx = 0.0f, swqx = 0.0f;
    for (size_t i = 0; i < n; i++) {
      q[i] = kq_round_clamp((x[i] - lo) * iscale, 0, nmax);
      sw += w[i], swq += w[i] * (float)q[i], swq2 += w[i] * (float)(q[i] * q[i]);
      swx += w[i] * x[i], swqx += w[i] * (float)q[i] * x[i];
    }
    /* min over (a, c) of sum w (a q + c - x)^2, then c <= 0 (c = -b). */
    const float det = sw * swq2 - swq * swq;
    if (!(det > 0.0f)) continue;
    float fa = (sw * swqx - swq * swx) / det, fc = (swq2 * swx - swq * swqx) / det;
    if (fc > 0.0f) fc = 0.0f, fa = swq2 > 0.0f ? swqx / swq2 : 0.0f;
    if (!(fa > 0.0f)) continue;
    float err = 0.0f;
    for (size_t i = 0; i < n; i++) {
      const float e = fa * (float)q[i] + fc - x[i];
      err += w[i] * e * e;
    }
    if (err < best_err) best_err = err, best_a = fa, best_b = -fc;
  }
  *a = best_a, *b = best_b;
}

/* Step 1 of Q6_K for one group of n values: x_i ~ *a * q_i, q_i in
 * [-nmax - 1, nmax] (a may be negative: the value of largest magnitude
 * then lands on -nmax - 1, the grid's longer side). */
static inline float kq_fit_symmetric(const float *x, size_t n, int nmax) {
  float w[16], amax = 0.0f, max = 0.0f;
  for (size_t i = 0; i < n; i++)
    if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
  if (!(amax >= FLT_MIN)) return 0.0f;
  kq_weights(x, n, w);
  float best_a = 0.0f, best_err = INFINITY;
  for (int k = -KQ_SEARCH_STEPS; k <= KQ_SEARCH_STEPS; k++) {
    const float iscale = -((float)(nmax + 1) + KQ_SEARCH_DELTA * (float)k) / max;
    int q[16];
    float swq2 = 0.0f, swqx = 0.0f;
    for (size_t i = 0; i < n; i++) {
      q[i] = kq_round_clamp(x[i] * iscale, -nmax - 1, nmax);
      swq2 += w[i] * (float)(q[i] * q[i]), swqx += w[i] * (float)q[i] * x[i];
    }
    if (!(swq2 > 0.0f)) continue;
    const float fa = swqx / swq2;
    float err = 0.0f;
    for (size_t i = 0; i < n; i++) {
      const float e = fa * (float)q[i] - x[i];
      err += w[i] * e * e;
    }
    if (err < best_err) best_err = err, best_a = fa;
  }
  return best_a;
}

/* ---------------------------------------------- the quantizer, steps 2, 3 */

/* Steps 2 and 3 of Q4_K / Q5_K for one super-block x[0..256): the stored
 * fp16 d and dmin, the 6-bit scales and mins, and q[256] in [0, nmax]. */
static inline void kq_quantize_affine(const float *x, int nmax, uint16_t *d_out, uint16_t *dmin_out,
                                      uint8_t *sc, uint8_t *m, uint8_t *q) {
  float a[8], b[8], max_a = 0.0f, max_b = 0.0f;
  for (size_t s = 0; s < 8; s++) {
    kq_fit_affine(x + 32 * s, 32, nmax, &a[s], &b[s]);
    max_a = a[s] > max_a ? a[s] : max_a;
    max_b = b[s] > max_b ? b[s] : max_b;
  }
  const float inv_a = max_a >= FLT_MIN ? 63.0f / max_a : 0.0f, inv_b = max_b >= FLT_MIN ? 63.0f / max_b : 0.0f;
  *d_out = lzn_f32_to_f16(max_a / 63.0f);
  *dmin_out = lzn_f32_to_f16(max_b / 63.0f);
  const float d = lzn_f16_to_f32(*d_out), dmin = lzn_f16_to_f32(*dmin_out);
  for (size_t s = 0; s < 8; s++) {
    sc[s] = (uint8_t)kq_round_clamp(a[s] * inv_a, 0, 63);
    m[s] = (uint8_t)kq_round_clamp(b[s] * inv_b, 0, 63);
    const float sa = d * (float)sc[s], sb = dmin * (float)m[s];
    for (size_t i = 0; i < 32; i++)
      q[32 * s + i] = (uint8_t)(sa > 0.0f ? kq_round_clamp((x[32 * s + i] + sb) / sa, 0, nmax) : 0);
  }
}

/* Steps 2 and 3 of Q6_K for one super-block: the fp16 d, 16 int8 scales,
 * and q[256] in [0, 63] (stored: value q - 32). */
static inline void kq_quantize_symmetric(const float *x, uint16_t *d_out, int8_t *scales, uint8_t *q) {
  float a[16], max_abs = 0.0f, max = 0.0f;
  for (size_t g = 0; g < 16; g++) {
    a[g] = kq_fit_symmetric(x + 16 * g, 16, 31);
    if (fabsf(a[g]) > max_abs) max_abs = fabsf(a[g]), max = a[g];
  }
  if (!(max_abs >= FLT_MIN)) {
    *d_out = 0;
    memset(scales, 0, 16);
    memset(q, 32, LZN_QK_K);
    return;
  }
  const float iscale = -128.0f / max;
  *d_out = lzn_f32_to_f16(1.0f / iscale);
  const float d = lzn_f16_to_f32(*d_out);
  for (size_t g = 0; g < 16; g++) {
    scales[g] = (int8_t)kq_round_clamp(a[g] * iscale, -128, 127);
    const float sa = d * (float)scales[g];
    for (size_t i = 0; i < 16; i++)
      q[16 * g + i] = (uint8_t)(sa != 0.0f ? kq_round_clamp(x[16 * g + i] / sa, -32, 31) + 32 : 32);
  }
}

/* A row of d values as super-blocks of 256, the last padded with zeros:
 * calls quantize_block(dst block, 256 values) for each. */
static inline void kq_for_each_block(void *dst, size_t block_bytes, const float *src, size_t d,
                                     void (*quantize_block)(void *block, const float *x)) {
  const size_t n_blocks = (d + LZN_QK_K - 1) / LZN_QK_K;
  for (size_t b = 0; b < n_blocks; b++) {
    float x[LZN_QK_K] = {0};
    const size_t len = d - b * LZN_QK_K < LZN_QK_K ? d - b * LZN_QK_K : LZN_QK_K;
    memcpy(x, src + b * LZN_QK_K, len * sizeof(float));
    quantize_block((char *)dst + b * block_bytes, x);
  }
}

#endif /* LZN_KERNELS_REF_KQUANT_H */
