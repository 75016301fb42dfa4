/*
 * x86/q6_k_avx2.h: Q6_K's steps for the block skeleton (generic/qrows.h)
 * with 256-bit vectors (AVX2 + FMA + F16C, and AVX-VNNI where the
 * including file is compiled for it): what avx2/q6_k.c and avxvnni/q6_k.c
 * share. Include x86/vec_avx2.h first. Specification in ref/q6_k.c and
 * ref/kquant.h, layout in blocks.h.
 *
 * A step is one super-block (256 weights, 210 bytes), x one Q8_K block in
 * its own order. The steps are x86/q6_k_avx512.h's (which says why each is
 * exact) at half the width: per half h of 128 weights, ql's two 32-byte
 * pieces and qh's 32 bytes give 4 vectors of 32 q (0..63): low nibbles of
 * the first and second piece with qh's bits 0-1 and 2-3 moved to 4-5, then
 * the high nibbles with bits 4-5 and 6-7 (a 16-bit shift and a mask: the
 * mask keeps only bits from the same byte). Each 128-bit lane of those is
 * one sub-block of 16.
 *
 * dot: per vector one int8 dot product of 4-byte groups into int32 lanes
 * (|sum| <= 32004), packs of two vectors to int16 (lane L of pack(v0, v1):
 * sub-blocks 8h + L and 8h + 2 + L; of pack(v2, v3): 8h + 4 + L, 8h + 6 +
 * L), one madd (vpdpwssd with AVX-VNNI) by the scales, spread by a byte
 * shuffle; -32 * sum x through one madd of x's block sums by the scales.
 *
 * axpy (fp32): q - 32 as int8 through a 256-byte stack buffer, then per 8
 * weights one widening load, one convert, one FMA by a = coef * (d * sc)
 * (the reference's fp32 product). y is 32 ymm, kept on the stack by the
 * compiler (in L1) for the group of rows.
 */
#ifndef LZN_KERNELS_X86_Q6_K_AVX2_H
#define LZN_KERNELS_X86_Q6_K_AVX2_H

#include <float.h>
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/blocks.h"
#include "kernels/x86/kq_scales.h"
#include "kernels/x86/q8_chunk_avx2.h"

#define QR_BLOCK_WEIGHTS LZN_QK_K
#define QR_BLOCK_BYTES sizeof(lzn_block_q6_k)
/* As x86/q6_k_avx512.h says why. */
#define QR_PREFETCH_AHEAD_L2_BYTES 256
#define QR_X_BLOCK_WEIGHTS LZN_QK_K
#define QR_X_BLOCK_BYTES sizeof(lzn_block_q8_k)
#define QR_DOT_STEP_BLOCKS 1
#define QR_AXPY_STEP_BLOCKS 1

/* Byte offsets in a super-block (blocks.h's lzn_block_q6_k). */
#define Q6_K_QH 128
#define Q6_K_SCALES 192
#define Q6_K_D 208

typedef struct {
  __m256i x[8];  /* x's values, in order */
  __m256i bsums; /* x's 16 sums of 16 values */
  float d;       /* x's scale */
} qr_xstep;

static inline void qr_xstep_make(qr_xstep *xs, const void *x_bytes) {
  const lzn_block_q8_k *x = x_bytes;
  for (int i = 0; i < 8; i++) xs->x[i] = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * i));
  xs->bsums = _mm256_loadu_si256((const __m256i *)x->bsums);
  xs->d = x->d;
}

/* See x86/q4_k_avx2.h. */
KQ_ALWAYS_INLINE __m256i kq_dot4_256(__m256i u, __m256i s) {
#if defined(__AVXVNNI__)
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

KQ_ALWAYS_INLINE __m256i kq_madd_add_256(__m256i acc, __m256i p, __m256i sc) {
#if defined(__AVXVNNI__)
  return _mm256_dpwssd_avx_epi32(acc, p, sc);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p, sc));
#endif
}

/* The 4 vectors of q (0..63) of half h, weights 32i.. of the half in q[i]. */
KQ_ALWAYS_INLINE void q6_k_half(__m256i q[4], const unsigned char *b, int h) {
  const __m256i low4 = _mm256_set1_epi8(0x0f), bits45 = _mm256_set1_epi8(0x30);
  const __m256i l0 = _mm256_loadu_si256((const __m256i *)(b + 64 * h));
  const __m256i l1 = _mm256_loadu_si256((const __m256i *)(b + 64 * h + 32));
  const __m256i qh = _mm256_loadu_si256((const __m256i *)(b + Q6_K_QH + 32 * h));
  q[0] = _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), bits45));
  q[1] = _mm256_or_si256(_mm256_and_si256(l1, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), bits45));
  q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4), _mm256_and_si256(qh, bits45));
  q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                         _mm256_and_si256(_mm256_srli_epi16(qh, 2), bits45));
}

/* Byte shuffles of a half's 8 scale words (in both lanes): lane L of
 * pack(v0, v1) = [sc[L] x 4, sc[2 + L] x 4], of pack(v2, v3) = [sc[4 + L]
 * x 4, sc[6 + L] x 4]. */
static const int8_t q6_k_scale_bytes[2][32] = {
    {0, 1, 0, 1, 0, 1, 0, 1, 4, 5, 4, 5, 4, 5, 4, 5, 2, 3, 2, 3, 2, 3, 2, 3, 6, 7, 6, 7, 6, 7, 6, 7},
    {8, 9, 8, 9, 8, 9, 8, 9, 12, 13, 12, 13, 12, 13, 12, 13, 10, 11, 10, 11, 10, 11, 10, 11, 14, 15, 14, 15, 14, 15, 14, 15}};

KQ_ALWAYS_INLINE float q6_k_d(const unsigned char *b) {
  uint16_t h;
  memcpy(&h, b + Q6_K_D, sizeof h);
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

/* sumi += the scaled products of a half (scale words of the half in both lanes). */
KQ_ALWAYS_INLINE __m256i q6_k_dot_half(__m256i sumi, const unsigned char *b, int h, const __m256i *x, __m256i sc_words) {
  __m256i q[4];
  q6_k_half(q, b, h);
  const __m256i p01 = _mm256_packs_epi32(kq_dot4_256(q[0], x[0]), kq_dot4_256(q[1], x[1]));
  const __m256i p23 = _mm256_packs_epi32(kq_dot4_256(q[2], x[2]), kq_dot4_256(q[3], x[3]));
  sumi = kq_madd_add_256(sumi, p01, _mm256_shuffle_epi8(sc_words, _mm256_loadu_si256((const __m256i *)q6_k_scale_bytes[0])));
  return kq_madd_add_256(sumi, p23, _mm256_shuffle_epi8(sc_words, _mm256_loadu_si256((const __m256i *)q6_k_scale_bytes[1])));
}

static inline __attribute__((always_inline)) vec_f32 qr_dot_step(vec_f32 acc, const void *w, const qr_xstep *xs) {
  const unsigned char *const b = w;
  const __m256i scales = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + Q6_K_SCALES)));
  __m256i sumi = q6_k_dot_half(_mm256_setzero_si256(), b, 0, xs->x, _mm256_permute2x128_si256(scales, scales, 0x00));
  sumi = q6_k_dot_half(sumi, b, 1, xs->x + 4, _mm256_permute2x128_si256(scales, scales, 0x11));
  /* - 32 * sum_g sc[g] * bsums[g]. */
  sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(_mm256_madd_epi16(xs->bsums, scales), 5));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(xs->d * q6_k_d(b)), acc);
}

static inline __attribute__((always_inline)) void qr_axpy_step(vec_f32 *y, const void *w, vec_f32 coef) {
  const unsigned char *const b = w;
  int8_t centred[LZN_QK_K];
  const __m256i k32 = _mm256_set1_epi8(32);
#pragma GCC unroll 2
  for (int h = 0; h < 2; h++) {
    __m256i q[4];
    q6_k_half(q, b, h);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) _mm256_storeu_si256((__m256i *)(centred + 128 * h + 32 * i), _mm256_sub_epi8(q[i], k32));
  }
  const __m256 d = _mm256_set1_ps(q6_k_d(b));
  const __m128i sc8 = _mm_loadu_si128((const __m128i *)(b + Q6_K_SCALES));
  /* a[0]: sub-blocks 0-7, a[1]: 8-15. */
  const __m256 a[2] = {_mm256_mul_ps(coef, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc8)))),
                       _mm256_mul_ps(coef, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc8, 8)))))};
#pragma GCC unroll 16
  for (int s = 0; s < 16; s++) {
    const __m256 as = _mm256_permutevar8x32_ps(a[s / 8], _mm256_set1_epi32(s % 8));
#pragma GCC unroll 2
    for (int v = 0; v < 2; v++) {
      const __m256 qv = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(centred + 16 * s + 8 * v))));
      y[2 * s + v] = _mm256_fmadd_ps(as, qv, y[2 * s + v]);
    }
  }
}

/* ------------------------------------------------------ axpy_rows_q8 */

/* The int8 path (kernels.h, axpy_rows_q8; Q6_K's rule in ref/kquant.h),
 * as x86/q6_k_avx512.h's with 8 sub-blocks per ymm: per row a = coef *
 * (d * sc) in two ymm, the max of |a| over the rows, two 8-lane
 * divisions, the int8 alphas of 4 rows packed and transposed to one dword
 * per sub-block, and -32 * their sums as each sub-block's int32 start
 * (w = d * sc * (q - 32), q 0..63). The adds: each 32 weights of 4 rows'
 * q interleaved to dwords (two sub-blocks, one per 128-bit half), one int8
 * dot product per column lane and 4 rows (maddubs pairs within 2 * 63 *
 * 127, two operands' within 32004), then per 8 columns a convert and an
 * FMA by s; y in vec_interleave4_y_order's order. */
#define QR_AXPY_Q8_STEP_BLOCKS 1

typedef struct {
  float coef[LZN_AXPY_Q8_GROUP]; /* 0 past the group's rows */
} qr_q8_group;

typedef struct {
  __m256i alpha[4][2]; /* rows 4q..4q+3's alphas: dword k of [q][h] = sub-block 8h + k */
  __m256i start[2];    /* lane k of [h]: -32 * the sum of sub-block 8h + k's alphas */
  __m256 s[2];         /* lane k of [h]: the scale of sub-block 8h + k's integer sums */
} qr_q8_coefs;

static inline void qr_q8_group_make(qr_q8_group *g, const float *coef, size_t nr) {
  for (size_t t = 0; t < LZN_AXPY_Q8_GROUP; t++) g->coef[t] = t < nr ? coef[t] : 0.0f;
}

static inline void qr_q8_y_order(float *y) { vec_interleave4_y_order(y, LZN_QK_K); }

static inline __attribute__((always_inline)) void qr_q8_step_coefs(qr_q8_coefs *c, const unsigned char *const *r,
                                                                  size_t off, const qr_q8_group *g) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 a[2][LZN_AXPY_Q8_GROUP], m[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
#pragma GCC unroll 16
  for (int t = 0; t < LZN_AXPY_Q8_GROUP; t++) {
    const unsigned char *const b = r[t] + off;
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)(b + Q6_K_SCALES));
    const __m256 k = _mm256_set1_ps(g->coef[t]), d = _mm256_set1_ps(q6_k_d(b));
    a[0][t] = _mm256_mul_ps(k, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc8))));
    a[1][t] = _mm256_mul_ps(k, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc8, 8)))));
    m[0] = _mm256_max_ps(m[0], _mm256_andnot_ps(sign, a[0][t]));
    m[1] = _mm256_max_ps(m[1], _mm256_andnot_ps(sign, a[1][t]));
  }
  /* Each half's 8 sub-blocks as a chunk of x86/q8_chunk_avx2.h (lane k:
   * sub-block 8h + k), -32 the weights' offset. */
#pragma GCC unroll 2
  for (int h = 0; h < 2; h++) {
    q8c_chunk half;
    q8c_chunk_finish(&half, a[h], m[h], 5);
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) c->alpha[q][h] = half.alpha[q];
    c->start[h] = half.start;
    c->s[h] = half.s;
  }
}

static inline __attribute__((always_inline)) void qr_q8_step_add(float *y, const unsigned char *const *r, size_t off,
                                                                const qr_q8_coefs *c) {
#pragma GCC unroll 2
  for (int h = 0; h < 2; h++) {
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
      /* Weights 128h + 32i..: sub-blocks 8h + 2i (half 0) and 8h + 2i + 1 (half 1). */
      const __m256i pick = _mm256_setr_epi32(2 * i, 2 * i, 2 * i, 2 * i, 2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1);
      __m256i acc[4];
      acc[0] = acc[1] = acc[2] = acc[3] = _mm256_permutevar8x32_epi32(c->start[h], pick);
#pragma GCC unroll 2
      for (int q = 0; q < 4; q += 2) {
        __m256i v[2][4], alpha[2];
#pragma GCC unroll 2
        for (int e = 0; e < 2; e++) {
          __m256i rows[4];
#pragma GCC unroll 4
          for (int k = 0; k < 4; k++) {
            __m256i q4[4];
            q6_k_half(q4, r[4 * (q + e) + k] + off, h);
            rows[k] = q4[i];
          }
          vec_interleave4_u8(v[e], rows[0], rows[1], rows[2], rows[3]);
          alpha[e] = _mm256_permutevar8x32_epi32(c->alpha[q + e][h], pick);
        }
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) acc[j] = vec_dot2_u8s8(acc[j], v[0][j], alpha[0], v[1][j], alpha[1]);
      }
      const __m256 s = _mm256_permutevar8x32_ps(c->s[h], pick);
      float *const cols = y + 128 * h + 32 * i;
#pragma GCC unroll 4
      for (int j = 0; j < 4; j++) {
        float *const yv = cols + vec_interleave4_slot[j];
        _mm256_storeu_ps(yv, _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(acc[j]), _mm256_loadu_ps(yv)));
      }
    }
  }
}

#endif /* LZN_KERNELS_X86_Q6_K_AVX2_H */
