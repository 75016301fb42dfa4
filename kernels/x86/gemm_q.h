/*
 * x86/gemm_q.h: gemm for Q8_0 and Q4_0 weights against Q8_0 activations
 * (kernels/gemm.h), one block (32 int8) per ymm, written once and included
 * by each ISA's gemm.c, which defines first:
 *
 *   GEMM_Q_R, GEMM_Q_C   the register tile: weight rows x tokens
 *   gq_dot(a, b)         __m256i: 8 int32 sums of 4 products each of the
 *                        unsigned bytes a and the signed bytes b
 *                        (maddubs + madd on AVX2, vpdpbusd with VNNI)
 *
 * A tile keeps R x C fp32 accumulators. Per block, each of its R weight
 * blocks is loaded (Q4_0: nibbles unpacked, minus 8) once, then for each of
 * its C tokens: the sign trick (|w| unsigned times x with w's sign) gives
 * the exact integer sum, converted and added with the scale d_w * d_x, as
 * the reference does (kernels/ref/gemm.c): only the fp32 additions' order
 * differs (8 partial sums per product, added at the end). No pair of bytes
 * overflows: |w| <= 128 (Q8_0 may hold -128), |x| <= 127.
 */
#ifndef LZN_KERNELS_X86_GEMM_Q_H
#define LZN_KERNELS_X86_GEMM_Q_H

#include <immintrin.h>

#include "kernels/kernels.h"

enum gq_kind { GQ_Q8_0, GQ_Q4_0 };

#define GQ_INLINE static inline __attribute__((always_inline))

/* Block b of a row as 32 signed bytes and its scale. */
GQ_INLINE __m256i gq_load(enum gq_kind kind, const void *row, size_t b, float *scale) {
  if (kind == GQ_Q8_0) {
    const lzn_block_q8_0 *block = (const lzn_block_q8_0 *)row + b;
    *scale = _cvtsh_ss(block->d);
    return _mm256_loadu_si256((const __m256i *)block->qs);
  }
  const lzn_block_q4_0 *block = (const lzn_block_q4_0 *)row + b;
  *scale = _cvtsh_ss(block->d);
  const __m128i bytes = _mm_loadu_si128((const __m128i *)block->qs);
  const __m128i low = _mm_set1_epi8(0x0f);
  const __m256i nibbles = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(bytes, 4), low), _mm_and_si128(bytes, low));
  return _mm256_sub_epi8(nibbles, _mm256_set1_epi8(8));
}

GQ_INLINE float gq_hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/* out[t][i0 + r] for r < R, t < C: rows w_rows[r], tokens x_rows[t]. */
GQ_INLINE void gq_tile(enum gq_kind kind, const int R, const int C, float *out, size_t out_stride,
                       const void *const *w_rows, const lzn_block_q8_0 *const *x_rows, size_t n_blocks) {
  __m256 acc[GEMM_Q_R][GEMM_Q_C];
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 8
    for (int t = 0; t < C; t++) acc[r][t] = _mm256_setzero_ps();
  for (size_t b = 0; b < n_blocks; b++) {
    __m256i w[GEMM_Q_R];
    float dw[GEMM_Q_R];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) w[r] = gq_load(kind, w_rows[r], b, &dw[r]);
#pragma GCC unroll 8
    for (int t = 0; t < C; t++) {
      const __m256i x = _mm256_loadu_si256((const __m256i *)x_rows[t][b].qs);
      const float dx = _cvtsh_ss(x_rows[t][b].d);
#pragma GCC unroll 8
      for (int r = 0; r < R; r++) {
        const __m256i sum = gq_dot(_mm256_sign_epi8(w[r], w[r]), _mm256_sign_epi8(x, w[r]));
        acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dw[r] * dx), _mm256_cvtepi32_ps(sum), acc[r][t]);
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 8
    for (int t = 0; t < C; t++) out[(size_t)t * out_stride + (size_t)r] = gq_hsum(acc[r][t]);
}

/* The tiles of R rows, then the rows left one at a time; in each, the
 * tokens C at a time, then one at a time. */
GQ_INLINE void gq_gemm(enum gq_kind kind, float *out, size_t out_stride, const void *w, size_t row_bytes, size_t d,
                       const int32_t *idx, size_t n_rows, const void *x, size_t x_stride, size_t m) {
  const size_t n_blocks = (d + LZN_QK - 1) / LZN_QK;
  for (size_t i0 = 0; i0 < n_rows;) {
    const int R = n_rows - i0 >= GEMM_Q_R ? GEMM_Q_R : 1;
    const void *w_rows[GEMM_Q_R];
    for (int r = 0; r < R; r++)
      w_rows[r] = (const char *)w + (idx ? (size_t)idx[i0 + (size_t)r] : i0 + (size_t)r) * row_bytes;
    for (size_t t0 = 0; t0 < m;) {
      /* Whole tiles of tokens, then halves, then one: m = 3 reads each
       * weight block twice, not three times. */
      const size_t left = m - t0;
      const int C = left >= GEMM_Q_C ? GEMM_Q_C : left >= GEMM_Q_C / 2 ? GEMM_Q_C / 2 : 1;
      const lzn_block_q8_0 *x_rows[GEMM_Q_C];
      for (int t = 0; t < C; t++) x_rows[t] = (const lzn_block_q8_0 *)((const char *)x + (t0 + (size_t)t) * x_stride);
      float *o = out + t0 * out_stride + i0;
      if (R == GEMM_Q_R) {
        if (C == GEMM_Q_C) gq_tile(kind, GEMM_Q_R, GEMM_Q_C, o, out_stride, w_rows, x_rows, n_blocks);
        else if (C > 1) gq_tile(kind, GEMM_Q_R, GEMM_Q_C / 2, o, out_stride, w_rows, x_rows, n_blocks);
        else gq_tile(kind, GEMM_Q_R, 1, o, out_stride, w_rows, x_rows, n_blocks);
      } else {
        if (C == GEMM_Q_C) gq_tile(kind, 1, GEMM_Q_C, o, out_stride, w_rows, x_rows, n_blocks);
        else if (C > 1) gq_tile(kind, 1, GEMM_Q_C / 2, o, out_stride, w_rows, x_rows, n_blocks);
        else gq_tile(kind, 1, 1, o, out_stride, w_rows, x_rows, n_blocks);
      }
      t0 += (size_t)C;
    }
    i0 += (size_t)R;
  }
}

static void q8_0_gemm(float *out, size_t out_stride, const void *w, size_t row_bytes, size_t d, const int32_t *idx,
                      size_t n_rows, const void *x, size_t x_stride, size_t m) {
  gq_gemm(GQ_Q8_0, out, out_stride, w, row_bytes, d, idx, n_rows, x, x_stride, m);
}

static void q4_0_gemm(float *out, size_t out_stride, const void *w, size_t row_bytes, size_t d, const int32_t *idx,
                      size_t n_rows, const void *x, size_t x_stride, size_t m) {
  gq_gemm(GQ_Q4_0, out, out_stride, w, row_bytes, d, idx, n_rows, x, x_stride, m);
}

#endif /* LZN_KERNELS_X86_GEMM_Q_H */
