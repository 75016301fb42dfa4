/*
 * x86/q4_k_avx2.h: Q4_K's steps for the block skeleton (generic/qrows.h)
 * with 256-bit vectors (AVX2 + FMA + F16C, and AVX-VNNI where the
 * including file is compiled for it): what avx2/q4_k.c and avxvnni/q4_k.c
 * share. Include x86/vec_avx2.h first. Specification in ref/q4_k.c and
 * ref/kquant.h, layout in blocks.h.
 *
 * A step is one super-block (256 weights, 144 bytes), x one Q8_K block.
 * The steps are x86/q4_k_avx512.h's (which says why each is exact) at half
 * the width:
 *
 * dot: each 32-byte chunk c of nibbles holds sub-block 2c in its low
 * nibbles and 2c + 1 in its high ones, so x stays in its own order. Per
 * chunk two int8 dot products of 4-byte groups (vpdpbusd, or maddubs +
 * madd) into int32 lanes (|sum| <= 7620), one pack of the two to int16
 * (each 128-bit lane: 4 words of sub-block 2c, 4 of 2c + 1), one madd
 * (vpdpwssd with AVX-VNNI) by the two scales, spread by a byte shuffle.
 * The mins' term: one madd of x's block sums by m.
 *
 * axpy (fp32): 32 ymm of y, more than the 16 registers: the compiler keeps
 * them on the stack, in L1, for the group of rows. Per 8 weights one
 * widening load (shared by two sub-blocks: low and high nibbles), one
 * mask or shift, one convert, one fused a * q - c and one add, a and c
 * the reference's fp32 products coef * (d * sc), coef * (dmin * m).
 */
#ifndef LZN_KERNELS_X86_Q4_K_AVX2_H
#define LZN_KERNELS_X86_Q4_K_AVX2_H

#include <float.h>
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/blocks.h"
#include "kernels/x86/kq_scales.h"

#define QR_BLOCK_WEIGHTS LZN_QK_K
#define QR_X_BLOCK_WEIGHTS LZN_QK_K
#define QR_X_BLOCK_BYTES sizeof(lzn_block_q8_k)
#define QR_DOT_STEP_BLOCKS 1
#define QR_AXPY_STEP_BLOCKS 1

/* Q5_K (x86/q5_k_avx2.h defines KQ_Q5_K before including this) is Q4_K
 * with qh[32] between the scales and the nibbles: bit s of qh[k] is the
 * fifth bit of weight k of sub-block s. Byte offsets of qh and the
 * nibbles in a super-block: */
#if defined(KQ_Q5_K)
#define QR_BLOCK_BYTES sizeof(lzn_block_q5_k)
#define Q4_K_QH 16
#define Q4_K_QS 48
#else
#define QR_BLOCK_BYTES sizeof(lzn_block_q4_k)
#define Q4_K_QS 16
#endif

typedef struct {
  __m256i x[8];  /* x's values, sub-block s in x[s] */
  __m256i bsums; /* x's 16 sums of 16 values */
  float d;       /* x's scale */
} qr_xstep;

static inline void qr_xstep_make(qr_xstep *xs, const void *x_bytes) {
  const lzn_block_q8_k *x = x_bytes;
  for (int s = 0; s < 8; s++) xs->x[s] = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * s));
  xs->bsums = _mm256_loadu_si256((const __m256i *)x->bsums);
  xs->d = x->d;
}

/* int32 lane i = sum of the 4 products u[4i + k] * s[4i + k] (u unsigned,
 * s signed bytes), exact: maddubs's int16 pairs stay below 2^15 for the
 * ranges here (2 * 63 * 127 at most, Q6_K). */
KQ_ALWAYS_INLINE __m256i kq_dot4_256(__m256i u, __m256i s) {
#if defined(__AVXVNNI__)
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

/* acc + the products of the int16 word pairs of p and sc, per int32 lane. */
KQ_ALWAYS_INLINE __m256i kq_madd_add_256(__m256i acc, __m256i p, __m256i sc) {
#if defined(__AVXVNNI__)
  return _mm256_dpwssd_avx_epi32(acc, p, sc);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p, sc));
#endif
}

/* Byte shuffles of the scales' words (sc 0-7 in each 128-bit lane): chunk
 * c's words [sc[2c] x 4, sc[2c + 1] x 4] in both lanes. */
static const int8_t q4_k_scale_bytes[4][32] = {
    {0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3},
    {4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7},
    {8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11},
    {12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15,
     12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15}};
/* Of the mins' words (m 0-7 in each lane): word g = m[g / 2], g = 0-7 in
 * the low lane, 8-15 in the high one. */
static const int8_t q4_k_min_bytes[32] = {0, 1, 0, 1, 2,  3,  2,  3,  4,  5,  4,  5,  6,  7,  6,  7,
                                          8, 9, 8, 9, 10, 11, 10, 11, 12, 13, 12, 13, 14, 15, 14, 15};

static inline __attribute__((always_inline)) vec_f32 qr_dot_step(vec_f32 acc, const void *w, const qr_xstep *xs) {
  const unsigned char *const b = w;
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m128i head = _mm_loadu_si128((const __m128i *)b);
  const __m256i words = _mm256_cvtepu8_epi16(kq_scales_mins(head)); /* sc words 0-7, m words 8-15 */
  const __m256i sc_words = _mm256_permute2x128_si256(words, words, 0x00);
  __m256i sumi = _mm256_setzero_si256();
#if defined(KQ_Q5_K)
  /* qh shifted right by s after sub-block s - 1: bit 0 of each byte is
   * then bit s of that byte (a 16-bit shift; the high byte's bits move
   * into bit 7 of the low one, which the mask drops). */
  __m256i qh = _mm256_loadu_si256((const __m256i *)(b + Q4_K_QH));
  const __m256i bit4 = _mm256_set1_epi8(0x10);
#endif
#pragma GCC unroll 4
  for (int c = 0; c < 4; c++) {
    const __m256i q = _mm256_loadu_si256((const __m256i *)(b + Q4_K_QS + 32 * c));
#if defined(KQ_Q5_K)
    /* q up to 31: the dot products' lanes stay within 4 * 31 * 127. */
    const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), bit4));
    const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), low4),
                                       _mm256_and_si256(_mm256_slli_epi16(qh, 3), bit4));
    qh = _mm256_srli_epi16(qh, 2);
#else
    const __m256i lo = _mm256_and_si256(q, low4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
#endif
    const __m256i p = _mm256_packs_epi32(kq_dot4_256(lo, xs->x[2 * c]), kq_dot4_256(hi, xs->x[2 * c + 1]));
    const __m256i sc = _mm256_shuffle_epi8(sc_words, _mm256_loadu_si256((const __m256i *)q4_k_scale_bytes[c]));
    sumi = kq_madd_add_256(sumi, p, sc);
  }
  const __m256i mins = _mm256_shuffle_epi8(_mm256_permute2x128_si256(words, words, 0x11),
                                           _mm256_loadu_si256((const __m256i *)q4_k_min_bytes));
  const __m256i summ = _mm256_madd_epi16(xs->bsums, mins);
  /* [dx * d, dx * dmin]: the reference's products. */
  const __m128 dd = _mm_mul_ps(_mm_cvtph_ps(head), _mm_set1_ps(xs->d));
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_broadcastss_ps(dd), acc);
  return _mm256_fnmadd_ps(_mm256_cvtepi32_ps(summ), _mm256_broadcastss_ps(_mm_movehdup_ps(dd)), acc);
}

static inline __attribute__((always_inline)) void qr_axpy_step(vec_f32 *y, const void *w, vec_f32 coef) {
  const unsigned char *const b = w;
  const __m128i head = _mm_loadu_si128((const __m128i *)b);
  const __m128i sc_m = kq_scales_mins(head);
  const __m128 dd = _mm_cvtph_ps(head);
  /* Lane s: a (c) of sub-block s. */
  const __m256 a = _mm256_mul_ps(coef, _mm256_mul_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sc_m))));
  const __m256 c = _mm256_mul_ps(coef, _mm256_mul_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dd)),
                                                     _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(sc_m, 8)))));
  const __m256i low4 = _mm256_set1_epi32(0x0f);
#if defined(KQ_Q5_K)
  /* The fifth bits of weights 8v .. 8v + 7 of every sub-block, as dwords. */
  __m256i qh[4];
#pragma GCC unroll 4
  for (int v = 0; v < 4; v++) qh[v] = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + Q4_K_QH + 8 * v)));
  const __m256i one = _mm256_set1_epi32(1);
#endif
#pragma GCC unroll 4
  for (int k = 0; k < 4; k++) {
    const __m256 a_lo = _mm256_permutevar8x32_ps(a, _mm256_set1_epi32(2 * k));
    const __m256 c_lo = _mm256_permutevar8x32_ps(c, _mm256_set1_epi32(2 * k));
    const __m256 a_hi = _mm256_permutevar8x32_ps(a, _mm256_set1_epi32(2 * k + 1));
    const __m256 c_hi = _mm256_permutevar8x32_ps(c, _mm256_set1_epi32(2 * k + 1));
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++) {
      const __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + Q4_K_QS + 32 * k + 8 * v)));
#if defined(KQ_Q5_K)
      const __m256i five_lo = _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(qh[v], _mm256_set1_epi32(2 * k)), one), 4);
      const __m256i five_hi = _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(qh[v], _mm256_set1_epi32(2 * k + 1)), one), 4);
      const __m256 lo = _mm256_cvtepi32_ps(_mm256_or_si256(_mm256_and_si256(q, low4), five_lo));
      const __m256 hi = _mm256_cvtepi32_ps(_mm256_or_si256(_mm256_srli_epi32(q, 4), five_hi));
#else
      const __m256 lo = _mm256_cvtepi32_ps(_mm256_and_si256(q, low4));
      const __m256 hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(q, 4));
#endif
      y[8 * k + v] = _mm256_add_ps(y[8 * k + v], _mm256_fmsub_ps(a_lo, lo, c_lo));
      y[8 * k + 4 + v] = _mm256_add_ps(y[8 * k + 4 + v], _mm256_fmsub_ps(a_hi, hi, c_hi));
    }
  }
}

/* ------------------------------------------------------ axpy_rows_q8 */

/* The int8 path (kernels.h, axpy_rows_q8; Q4_K's rule in ref/kquant.h),
 * as x86/q4_k_avx512.h's with a row's 8 sub-blocks per ymm: a step is one
 * super-block of the group's 16 rows. Coefficients per row: a = coef *
 * (d * sc), c = coef * (dmin * m) (the scales and mins of two rows by one
 * kq_scales_mins2), the mins' terms summed over the even rows and the odd
 * rows apart and then added (the reference's order), the int8 alphas of 4
 * rows packed and transposed to one dword per sub-block. The adds: per
 * chunk of 32 nibble bytes (sub-block 2c in the low nibbles, 2c + 1 in
 * the high), 4 rows interleaved to dwords, one int8 dot product per
 * column lane and nibble half, then per 8 columns a convert, an FMA by s
 * and a subtract of the mins' term. maddubs pairs of nibbles times alphas
 * stay within int16 (2 * 15 * 127, twice that for two operands). Q5_K:
 * each nibble gets its fifth bit from qh, interleaved as the nibbles are
 * (q 0..31: within 2 * 31 * 127, and 15748 for two operands).
 *
 * The interleave leaves column 16k + 4m + i of a chunk's low (or, + 32,
 * high) nibbles in half k, dword i of result m: y is put in that order
 * once per call, swapping 128-bit halves between the 8-column vectors
 * 0 and 16, 8 and 24 columns apart of each 32 columns. */
#define QR_AXPY_Q8_STEP_BLOCKS 1

typedef struct {
  float coef[LZN_AXPY_Q8_GROUP]; /* 0 past the group's rows */
} qr_q8_group;

typedef struct {
  __m256i alpha[4]; /* rows 4q..4q+3's alphas: dword k of [q] = sub-block k */
  __m256 s, min;    /* per sub-block: the scale of its integer sums, its mins' term */
} qr_q8_coefs;


static inline void qr_q8_group_make(qr_q8_group *g, const float *coef, size_t nr) {
  for (size_t t = 0; t < LZN_AXPY_Q8_GROUP; t++) g->coef[t] = t < nr ? coef[t] : 0.0f;
}

static inline void qr_q8_y_order(float *y) { vec_interleave4_y_order(y, LZN_QK_K); }

/* A row's [a, c] over its 8 sub-blocks from its scales and mins' bytes sm
 * (sc[0..8), m[0..8)) and its head's first 4 bytes (d, dmin). */
static inline __attribute__((always_inline)) void q4_k_row_coefs(__m256 *a, __m256 *c, __m128i sm, __m128i head,
                                                                float coef) {
  const __m128 d_dmin = _mm_cvtph_ps(head);
  const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sm));
  const __m256 mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8)));
  const __m256 k = _mm256_set1_ps(coef);
  *a = _mm256_mul_ps(k, _mm256_mul_ps(_mm256_broadcastss_ps(d_dmin), sc));
  *c = _mm256_mul_ps(k, _mm256_mul_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(d_dmin)), mn));
}

static inline __attribute__((always_inline)) void qr_q8_step_coefs(qr_q8_coefs *c, const unsigned char *const *r,
                                                                  size_t off, const qr_q8_group *g) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 a[LZN_AXPY_Q8_GROUP], m = _mm256_setzero_ps(), mins[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
#pragma GCC unroll 8
  for (int p = 0; p < 8; p++) {
    const __m128i even = _mm_loadu_si128((const __m128i *)(r[2 * p] + off));
    const __m128i odd = _mm_loadu_si128((const __m128i *)(r[2 * p + 1] + off));
    const __m256i sm = kq_scales_mins2(_mm256_inserti128_si256(_mm256_castsi128_si256(even), odd, 1));
    __m256 ce, co;
    q4_k_row_coefs(&a[2 * p], &ce, _mm256_castsi256_si128(sm), even, g->coef[2 * p]);
    q4_k_row_coefs(&a[2 * p + 1], &co, _mm256_extracti128_si256(sm, 1), odd, g->coef[2 * p + 1]);
    mins[0] = _mm256_add_ps(mins[0], ce), mins[1] = _mm256_add_ps(mins[1], co);
    m = _mm256_max_ps(m, _mm256_max_ps(_mm256_andnot_ps(sign, a[2 * p]), _mm256_andnot_ps(sign, a[2 * p + 1])));
  }
  c->min = _mm256_add_ps(mins[0], mins[1]);
  const __m256 nonzero = _mm256_cmp_ps(m, _mm256_set1_ps(FLT_MIN), _CMP_GE_OQ);
  const __m256 inv = _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps(127.0f), m), nonzero);
  c->s = _mm256_and_ps(_mm256_div_ps(m, _mm256_set1_ps(127.0f)), nonzero);
  const __m256i by_sub_block = _mm256_loadu_si256((const __m256i *)vec_transpose4x4_bytes);
#pragma GCC unroll 4
  for (int q = 0; q < 4; q++) {
    const __m256 *const aq = a + 4 * q;
    /* Lane k: rows 0-3's alphas of sub-blocks 4k..4k+3, row by row; then a dword per sub-block. */
    const __m256i r01 = _mm256_packs_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(aq[0], inv)),
                                           _mm256_cvtps_epi32(_mm256_mul_ps(aq[1], inv)));
    const __m256i r23 = _mm256_packs_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(aq[2], inv)),
                                           _mm256_cvtps_epi32(_mm256_mul_ps(aq[3], inv)));
    c->alpha[q] = _mm256_shuffle_epi8(_mm256_packs_epi16(r01, r23), by_sub_block);
  }
}

#if defined(KQ_Q5_K)
/* Bit `bit` of each byte at bit 4 (other bits: whatever the shift brings). */
static inline __attribute__((always_inline)) __m256i q4_k_bit_to_4(__m256i v, int bit) {
  return bit <= 4 ? _mm256_sll_epi16(v, _mm_cvtsi32_si128(4 - bit)) : _mm256_srl_epi16(v, _mm_cvtsi32_si128(bit - 4));
}
#endif

static inline __attribute__((always_inline)) void qr_q8_step_add(float *y, const unsigned char *const *r, size_t off,
                                                                const qr_q8_coefs *c) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
#if defined(KQ_Q5_K)
  /* Each 4 rows' qh, interleaved as their nibbles are, once per step: the
   * 4 chunks take their bits from the same bytes. */
  __m256i vh[4][4];
#pragma GCC unroll 4
  for (int q = 0; q < 4; q++) {
#define Q5_K_QH(k) _mm256_loadu_si256((const __m256i *)(r[4 * q + (k)] + off + Q4_K_QH))
    vec_interleave4_u8(vh[q], Q5_K_QH(0), Q5_K_QH(1), Q5_K_QH(2), Q5_K_QH(3));
#undef Q5_K_QH
  }
#endif
#pragma GCC unroll 4
  for (int chunk = 0; chunk < 4; chunk++) {
    const __m256i at_lo = _mm256_set1_epi32(2 * chunk), at_hi = _mm256_set1_epi32(2 * chunk + 1);
    __m256i lo[4], hi[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) lo[i] = hi[i] = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (int q = 0; q < 4; q += 2) {
      __m256i v[2][4], a_lo[2], a_hi[2];
#pragma GCC unroll 2
      for (int e = 0; e < 2; e++) {
        const unsigned char *const *rows = r + 4 * (q + e);
        const size_t at = off + Q4_K_QS + 32 * (size_t)chunk;
#define Q4_K_NIBBLES(k) _mm256_loadu_si256((const __m256i *)(rows[k] + at))
        vec_interleave4_u8(v[e], Q4_K_NIBBLES(0), Q4_K_NIBBLES(1), Q4_K_NIBBLES(2), Q4_K_NIBBLES(3));
#undef Q4_K_NIBBLES
        a_lo[e] = _mm256_permutevar8x32_epi32(c->alpha[q + e], at_lo);
        a_hi[e] = _mm256_permutevar8x32_epi32(c->alpha[q + e], at_hi);
      }
#pragma GCC unroll 4
      for (int i = 0; i < 4; i++) {
        __m256i u_lo[2], u_hi[2];
#pragma GCC unroll 2
        for (int e = 0; e < 2; e++) {
          u_lo[e] = _mm256_and_si256(v[e][i], low4);
          u_hi[e] = _mm256_and_si256(_mm256_srli_epi16(v[e][i], 4), low4);
#if defined(KQ_Q5_K)
          /* Bit 2c of qh[l] (low nibble) or 2c + 1 (high) to bit 4; a
           * 16-bit shift moves bits across bytes, the mask keeps only the
           * bit from the same byte. */
          const __m256i bit4 = _mm256_set1_epi8(0x10);
          u_lo[e] = _mm256_or_si256(u_lo[e], _mm256_and_si256(q4_k_bit_to_4(vh[q + e][i], 2 * chunk), bit4));
          u_hi[e] = _mm256_or_si256(u_hi[e], _mm256_and_si256(q4_k_bit_to_4(vh[q + e][i], 2 * chunk + 1), bit4));
#endif
        }
        lo[i] = vec_dot2_u8s8(lo[i], u_lo[0], a_lo[0], u_lo[1], a_lo[1]);
        hi[i] = vec_dot2_u8s8(hi[i], u_hi[0], a_hi[0], u_hi[1], a_hi[1]);
      }
    }
    const __m256 s_lo = _mm256_permutevar8x32_ps(c->s, at_lo), s_hi = _mm256_permutevar8x32_ps(c->s, at_hi);
    const __m256 min_lo = _mm256_permutevar8x32_ps(c->min, at_lo), min_hi = _mm256_permutevar8x32_ps(c->min, at_hi);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
      float *const y_lo = y + 64 * chunk + vec_interleave4_slot[i], *const y_hi = y_lo + 32;
      _mm256_storeu_ps(y_lo, _mm256_sub_ps(_mm256_fmadd_ps(s_lo, _mm256_cvtepi32_ps(lo[i]), _mm256_loadu_ps(y_lo)), min_lo));
      _mm256_storeu_ps(y_hi, _mm256_sub_ps(_mm256_fmadd_ps(s_hi, _mm256_cvtepi32_ps(hi[i]), _mm256_loadu_ps(y_hi)), min_hi));
    }
  }
}

#endif /* LZN_KERNELS_X86_Q4_K_AVX2_H */
