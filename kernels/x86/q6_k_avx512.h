/*
 * x86/q6_k_avx512.h: Q6_K's steps for the block skeleton (generic/qrows.h)
 * with 512-bit vectors (AVX-512 F/BW/VL/DQ, and VNNI where the including
 * file is compiled for it): what avx512/q6_k.c and avx512vnni/q6_k.c
 * share. Include x86/vec_avx512.h first. Specification in ref/q6_k.c and
 * ref/kquant.h, layout in blocks.h.
 *
 * A step is one super-block: 256 weights in 210 bytes (128 bytes of low
 * nibbles ql, 64 of high bit pairs qh, 16 int8 scales, fp16 d), x one Q8_K
 * block, in its own order.
 *
 * The 6-bit q of half h (128 weights) come from ql's 64 bytes of that half
 * and qh's 32, which one 64-byte load and one lane shuffle put in both
 * 256-bit halves of a zmm: weights 0-63 of the half are the low nibbles
 * or'ed with qh's bits 0-1 (bytes 0-31) and 2-3 (bytes 32-63), moved to
 * bits 4-5 by a per-64-bit-lane shift (4, then 2) and masked; weights
 * 64-127 the high nibbles with bits 4-5 (in place) and 6-7 (shifted by 2).
 * A shift of a 64-bit lane moves bits across bytes, but the mask keeps
 * only bits that came from the same byte.
 *
 * dot: q is 0..63 unsigned, w = d * sc * (q - 32); so sum (q - 32) x =
 * sum q x - 32 * sum x, the latter from x's block sums (16 values each, one
 * sub-block's). The int8 dot products of 4-byte groups (vpdpbusd, or
 * maddubs + madd: pairs within 2 * 63 * 127) give int32 lanes of at most
 * 4 * 63 * 127 = 32004 in magnitude, which pack to int16; each 128-bit lane
 * is one sub-block of 16, so after the pack one madd (vpdpwssd) by the
 * scales, spread by a word permute, sums sc * (8 products) per lane, and
 * one madd of x's block sums by the scales gives the -32 term. The lanes'
 * sum is the reference's sumi, exactly; then (dx * d) * (float) per lane.
 *
 * axpy (fp32): q - 32 as int8 (the same unpacking) through a 256-byte
 * buffer on the stack, then per sub-block (one zmm of y) one widening
 * load, one convert and one FMA by a = coef * (d * sc) (the reference's
 * fp32 product; d * sc is exact).
 */
#ifndef LZN_KERNELS_X86_Q6_K_AVX512_H
#define LZN_KERNELS_X86_Q6_K_AVX512_H

#include <float.h>
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/blocks.h"
#include "kernels/x86/kq_scales.h"
#include "kernels/x86/q8_chunk_avx512.h"

#define QR_BLOCK_WEIGHTS LZN_QK_K
#define QR_BLOCK_BYTES sizeof(lzn_block_q6_k)
/* Prefetch distance toward L2 (generic/qrows.h): 256 bytes, not 512.
 * Measured on Zen 4 (lzn-bench kernels --shape 4096x11008, cold, one
 * thread, alternating builds, % of stream): GEMV AVX-512 76-81 -> 83-87
 * (5 rounds), AVX2 63-64 -> 73-79, gathered rows at 10 % 41-52 -> 46-55;
 * Q4_K, Q4_0 and Q8_0 moved within the noise, so they keep 512. */
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
  __m512i x[4];  /* x's values, in order */
  __m256i bsums; /* x's 16 sums of 16 values */
  float d;       /* x's scale */
} qr_xstep;

static inline void qr_xstep_make(qr_xstep *xs, const void *x_bytes) {
  const lzn_block_q8_k *x = x_bytes;
  for (int i = 0; i < 4; i++) xs->x[i] = _mm512_loadu_si512(x->qs + 64 * i);
  xs->bsums = _mm256_loadu_si256((const __m256i *)x->bsums);
  xs->d = x->d;
}

/* See x86/q4_k_avx512.h. */
KQ_ALWAYS_INLINE __m512i kq_dot4_512(__m512i u, __m512i s) {
#if defined(__AVX512VNNI__)
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s);
#else
  return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
#endif
}

KQ_ALWAYS_INLINE __m512i kq_madd_add_512(__m512i acc, __m512i p, __m512i sc) {
#if defined(__AVX512VNNI__)
  return _mm512_dpwssd_epi32(acc, p, sc);
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(p, sc));
#endif
}

/* The 6-bit q (0..63) of one half: ql its 64 low-nibble bytes, qh2 its 32
 * qh bytes in both 256-bit halves. *a = weights 0-63, *b = 64-127. */
KQ_ALWAYS_INLINE void q6_k_half(__m512i *a, __m512i *b, __m512i ql, __m512i qh2) {
  const __m512i low4 = _mm512_set1_epi8(0x0f), bits45 = _mm512_set1_epi8(0x30);
  const __m512i up = _mm512_sllv_epi64(qh2, _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2));
  const __m512i down = _mm512_srlv_epi64(qh2, _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2));
  *a = _mm512_or_si512(_mm512_and_si512(ql, low4), _mm512_and_si512(up, bits45));
  *b = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4), _mm512_and_si512(down, bits45));
}

/* Both halves' q; the shuffles' lane selectors are immediates, so written
 * out (a loop over them is not unrolled at -O1, the sanitizer builds). */
KQ_ALWAYS_INLINE void q6_k_unpack(__m512i q[4], const unsigned char *b) {
  const __m512i qh = _mm512_loadu_si512(b + Q6_K_QH);
  q6_k_half(&q[0], &q[1], _mm512_loadu_si512(b), _mm512_shuffle_i64x2(qh, qh, 0x44));
  q6_k_half(&q[2], &q[3], _mm512_loadu_si512(b + 64), _mm512_shuffle_i64x2(qh, qh, 0xee));
}

/* Word 8L + k of the packed pair of half h: sub-block 8h + L (k < 4) or
 * 8h + 4 + L. */
static const uint16_t q6_k_scale_words[2][32] = {
    {0, 0, 0, 0, 4, 4, 4, 4, 1, 1, 1, 1, 5, 5, 5, 5, 2, 2, 2, 2, 6, 6, 6, 6, 3, 3, 3, 3, 7, 7, 7, 7},
    {8, 8, 8, 8, 12, 12, 12, 12, 9, 9, 9, 9, 13, 13, 13, 13, 10, 10, 10, 10, 14, 14, 14, 14, 11, 11, 11, 11, 15, 15, 15, 15}};

KQ_ALWAYS_INLINE float q6_k_d(const unsigned char *b) {
  uint16_t h;
  memcpy(&h, b + Q6_K_D, sizeof h);
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

static inline __attribute__((always_inline)) vec_f32 qr_dot_step(vec_f32 acc, const void *w, const qr_xstep *xs) {
  const unsigned char *const b = w;
  __m512i q[4];
  q6_k_unpack(q, b);
  const __m256i scales = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + Q6_K_SCALES)));
  const __m512i scales512 = _mm512_zextsi256_si512(scales);
  __m512i sumi = _mm512_setzero_si512();
#pragma GCC unroll 2
  for (int h = 0; h < 2; h++) {
    const __m512i p = _mm512_packs_epi32(kq_dot4_512(q[2 * h], xs->x[2 * h]), kq_dot4_512(q[2 * h + 1], xs->x[2 * h + 1]));
    sumi = kq_madd_add_512(sumi, p, _mm512_permutexvar_epi16(_mm512_loadu_si512(q6_k_scale_words[h]), scales512));
  }
  /* - 32 * sum_g sc[g] * bsums[g], in lanes 0-7. */
  const __m256i minus = _mm256_slli_epi32(_mm256_madd_epi16(xs->bsums, scales), 5);
  sumi = _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(minus));
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(xs->d * q6_k_d(b)), acc);
}

static inline __attribute__((always_inline)) void qr_axpy_step(vec_f32 *y, const void *w, vec_f32 coef) {
  const unsigned char *const b = w;
  __m512i q[4];
  q6_k_unpack(q, b);
  int8_t centred[LZN_QK_K];
  const __m512i k32 = _mm512_set1_epi8(32);
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) _mm512_storeu_si512(centred + 64 * i, _mm512_sub_epi8(q[i], k32));
  const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + Q6_K_SCALES))));
  const __m512 a = _mm512_mul_ps(coef, _mm512_mul_ps(_mm512_set1_ps(q6_k_d(b)), sc));
#pragma GCC unroll 16
  for (int v = 0; v < 16; v++) {
    const __m512 qv = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(centred + 16 * v))));
    y[v] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_set1_epi32(v), a), qv, y[v]);
  }
}

/* ------------------------------------------------------ axpy_rows_q8 */

/* The int8 path (kernels.h, axpy_rows_q8; Q6_K's rule in ref/kquant.h):
 * a step is one super-block of the group's 16 rows. Coefficients: per row
 * a = coef * (d * sc) over its 16 sub-blocks (one zmm: sub-block s in lane
 * s), the max of |a| over the rows per lane, one 16-lane division, the
 * int8 alphas packed and transposed to one dword per 4 rows and sub-block,
 * and their sums over the rows (w = d * sc * (q - 32) with q 0..63
 * unsigned: sum alpha (q - 32) = sum alpha q - 32 sum alpha, so each
 * sub-block's int32 sums start at -32 * its alphas' sum). The adds: each
 * 64-weight quarter of 4 rows' q (q6_k_half) interleaved to dwords, one
 * vpdpbusd (maddubs without VNNI: pairs within 2 * 63 * 127, two operands'
 * within 32004) per column lane and 4 rows, against each 128-bit lane's
 * sub-block alphas; then per 16 columns a convert and an FMA by s.
 * vec_interleave4_u8 leaves column 16L + 4m + i of a quarter in lane L,
 * dword i of result m: y is put in that order by vec_transpose_lanes4 of
 * each quarter's 4 vectors. */
#define QR_AXPY_Q8_STEP_BLOCKS 1

typedef struct {
  __m512 coef[LZN_AXPY_Q8_GROUP]; /* row t's coef in every lane; 0 past the group's rows */
} qr_q8_group;

typedef struct {
  __m128i alpha[4][4]; /* rows 4q..4q+3's alphas: dword k of [q][g] = sub-block 4g + k */
  __m512i start;       /* lane s: -32 * the sum of sub-block s's alphas */
  __m512 s;            /* lane s: the scale of sub-block s's integer sums */
} qr_q8_coefs;

static inline void qr_q8_group_make(qr_q8_group *g, const float *coef, size_t nr) {
  for (size_t t = 0; t < LZN_AXPY_Q8_GROUP; t++) g->coef[t] = _mm512_set1_ps(t < nr ? coef[t] : 0.0f);
}

static inline void qr_q8_y_order(float *y) {
  for (int quarter = 0; quarter < 4; quarter++) {
    float *const v = y + 64 * quarter;
    __m512 a = _mm512_loadu_ps(v), b = _mm512_loadu_ps(v + 16), c = _mm512_loadu_ps(v + 32), d = _mm512_loadu_ps(v + 48);
    vec_transpose_lanes4(&a, &b, &c, &d);
    _mm512_storeu_ps(v, a), _mm512_storeu_ps(v + 16, b), _mm512_storeu_ps(v + 32, c), _mm512_storeu_ps(v + 48, d);
  }
}

static inline __attribute__((always_inline)) void qr_q8_step_coefs(qr_q8_coefs *c, const unsigned char *const *r,
                                                                  size_t off, const qr_q8_group *g) {
  __m512 a[LZN_AXPY_Q8_GROUP], m = _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int t = 0; t < LZN_AXPY_Q8_GROUP; t++) {
    const unsigned char *const b = r[t] + off;
    const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + Q6_K_SCALES))));
    a[t] = _mm512_mul_ps(g->coef[t], _mm512_mul_ps(_mm512_set1_ps(q6_k_d(b)), sc));
    m = _mm512_max_ps(m, _mm512_abs_ps(a[t]));
  }
  const __m512 inv = q8c_inverse(m, &c->s);
  __m512i sum = _mm512_setzero_si512();
#pragma GCC unroll 4
  for (int q = 0; q < 4; q++) {
    __m128i bytes[4];
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
      const __m512i alpha = _mm512_cvtps_epi32(_mm512_mul_ps(a[4 * q + k], inv));
      sum = _mm512_add_epi32(sum, alpha);
      bytes[k] = _mm512_cvtepi32_epi8(alpha); /* row 4q + k's 16 sub-blocks */
    }
    const __m128i lo01 = _mm_unpacklo_epi8(bytes[0], bytes[1]), hi01 = _mm_unpackhi_epi8(bytes[0], bytes[1]);
    const __m128i lo23 = _mm_unpacklo_epi8(bytes[2], bytes[3]), hi23 = _mm_unpackhi_epi8(bytes[2], bytes[3]);
    c->alpha[q][0] = _mm_unpacklo_epi16(lo01, lo23);
    c->alpha[q][1] = _mm_unpackhi_epi16(lo01, lo23);
    c->alpha[q][2] = _mm_unpacklo_epi16(hi01, hi23);
    c->alpha[q][3] = _mm_unpackhi_epi16(hi01, hi23);
  }
  c->start = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum, 5));
}

/* Lanes 4L..4L+3 take element L + at. */
static inline __attribute__((always_inline)) __m512i q6_k_lane_quads(int at) {
  return _mm512_add_epi32(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3), _mm512_set1_epi32(at));
}

static inline __attribute__((always_inline)) void qr_q8_step_add(float *y, const unsigned char *const *r, size_t off,
                                                                const qr_q8_coefs *c) {
#pragma GCC unroll 2
  for (int h = 0; h < 2; h++) {
    /* Quarters 2h (sub-blocks 8h..8h+3, lane L: 8h + L) and 2h + 1 (8h + 4 + L). */
    const __m512i start_a = _mm512_permutexvar_epi32(q6_k_lane_quads(8 * h), c->start);
    const __m512i start_b = _mm512_permutexvar_epi32(q6_k_lane_quads(8 * h + 4), c->start);
    __m512i acc_a[4], acc_b[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) acc_a[i] = start_a, acc_b[i] = start_b;
#pragma GCC unroll 2
    for (int q = 0; q < 4; q += 2) {
      __m512i va[2][4], vb[2][4], alpha_a[2], alpha_b[2];
#pragma GCC unroll 2
      for (int e = 0; e < 2; e++) {
        __m512i qa[4], qb[4];
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
          const unsigned char *const b = r[4 * (q + e) + k] + off;
          const __m512i qh = _mm512_loadu_si512(b + Q6_K_QH);
          q6_k_half(&qa[k], &qb[k], _mm512_loadu_si512(b + 64 * h),
                    h ? _mm512_shuffle_i64x2(qh, qh, 0xee) : _mm512_shuffle_i64x2(qh, qh, 0x44));
        }
        vec_interleave4_u8(va[e], qa[0], qa[1], qa[2], qa[3]);
        vec_interleave4_u8(vb[e], qb[0], qb[1], qb[2], qb[3]);
        alpha_a[e] = _mm512_permutexvar_epi32(q6_k_lane_quads(0), _mm512_castsi128_si512(c->alpha[q + e][2 * h]));
        alpha_b[e] = _mm512_permutexvar_epi32(q6_k_lane_quads(0), _mm512_castsi128_si512(c->alpha[q + e][2 * h + 1]));
      }
#pragma GCC unroll 4
      for (int i = 0; i < 4; i++) {
        acc_a[i] = vec_dot2_u8s8(acc_a[i], va[0][i], alpha_a[0], va[1][i], alpha_a[1]);
        acc_b[i] = vec_dot2_u8s8(acc_b[i], vb[0][i], alpha_b[0], vb[1][i], alpha_b[1]);
      }
    }
    const __m512 s_a = _mm512_permutexvar_ps(q6_k_lane_quads(8 * h), c->s);
    const __m512 s_b = _mm512_permutexvar_ps(q6_k_lane_quads(8 * h + 4), c->s);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
      float *const y_a = y + 128 * h + 16 * i, *const y_b = y_a + 64;
      _mm512_storeu_ps(y_a, _mm512_fmadd_ps(s_a, _mm512_cvtepi32_ps(acc_a[i]), _mm512_loadu_ps(y_a)));
      _mm512_storeu_ps(y_b, _mm512_fmadd_ps(s_b, _mm512_cvtepi32_ps(acc_b[i]), _mm512_loadu_ps(y_b)));
    }
  }
}

#endif /* LZN_KERNELS_X86_Q6_K_AVX512_H */
