/*
 * x86/quant_axpy256.h: axpy_rows for Q8_0 and Q4_0 weights with 256-bit
 * vectors (AVX2 + FMA + F16C): y[0..d) += sum_t coef[t] * W[idx[t]][0..d),
 * y in fp32, the weights dequantized on the fly. Included by an x86 kernel
 * file that defines QAXPY_Q8_0 or QAXPY_Q4_0 (the type it is for) first;
 * defines <type>_axpy_rows with the table's signature.
 *
 * Rows go in groups of Q_AXPY_GROUP: each 32-column block of y (4 vectors)
 * is loaded and stored once per group, and each row adds (coef * d) * q
 * with one broadcast factor per row and block, as the reference does (only
 * the FMA's single rounding differs). y may end mid-block (the last column
 * slice of a row): that block goes through a copy on the stack, so only
 * y[0..d) is written and no byte past the row's last block is read.
 */
#ifndef LZN_KERNELS_X86_QUANT_AXPY256_H
#define LZN_KERNELS_X86_QUANT_AXPY256_H

#include <string.h>

#include "kernels/x86/quant_common.h"

/* Rows per pass over y (as the f32 kernels, measured there). */
#define Q_AXPY_GROUP 8

/* int8 [q, q + 8) as 8 floats. */
static inline __m256 q_i8x8_to_ps(const void *q) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)q)));
}

#ifdef QAXPY_Q8_0
/* yb[0..32) += sum_k (coef[k] * d) * q over block b of the nr rows r[k]. */
static Q_ALWAYS_INLINE void q8_0_axpy_block(float *yb, const lzn_block_q8_0 *const *r,
                                            const float *coef, size_t nr, size_t b) {
  __m256 y0 = _mm256_loadu_ps(yb), y1 = _mm256_loadu_ps(yb + 8);
  __m256 y2 = _mm256_loadu_ps(yb + 16), y3 = _mm256_loadu_ps(yb + 24);
#pragma GCC unroll 16
  for (size_t k = 0; k < nr; k++) {
    const __m256 cd = _mm256_set1_ps(coef[k] * q_scale(r[k][b].d));
    const int8_t *q = r[k][b].qs;
    y0 = _mm256_fmadd_ps(cd, q_i8x8_to_ps(q), y0);
    y1 = _mm256_fmadd_ps(cd, q_i8x8_to_ps(q + 8), y1);
    y2 = _mm256_fmadd_ps(cd, q_i8x8_to_ps(q + 16), y2);
    y3 = _mm256_fmadd_ps(cd, q_i8x8_to_ps(q + 24), y3);
  }
  _mm256_storeu_ps(yb, y0), _mm256_storeu_ps(yb + 8, y1);
  _mm256_storeu_ps(yb + 16, y2), _mm256_storeu_ps(yb + 24, y3);
}
#define Q_AXPY_BLOCK q8_0_axpy_block
#define Q_AXPY_TYPE lzn_block_q8_0
#define Q_AXPY_BLOCKS_PER_PREFETCH Q8_0_BLOCKS_PER_PREFETCH
#define Q_AXPY_NAME q8_0_axpy_rows
#define Q_AXPY_GROUP_NAME q8_0_axpy_group
#endif

#ifdef QAXPY_Q4_0
static Q_ALWAYS_INLINE void q4_0_axpy_block(float *yb, const lzn_block_q4_0 *const *r,
                                            const float *coef, size_t nr, size_t b) {
  const __m128i low4 = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
  __m256 y0 = _mm256_loadu_ps(yb), y1 = _mm256_loadu_ps(yb + 8);
  __m256 y2 = _mm256_loadu_ps(yb + 16), y3 = _mm256_loadu_ps(yb + 24);
#pragma GCC unroll 16
  for (size_t k = 0; k < nr; k++) {
    const __m256 cd = _mm256_set1_ps(coef[k] * q_scale(r[k][b].d));
    const __m128i raw = _mm_loadu_si128((const __m128i *)r[k][b].qs);
    /* Elements 0..15 (low nibbles) and 16..31 (high), as int8 in [-8, 7]. */
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, low4), eight);
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), low4), eight);
    y0 = _mm256_fmadd_ps(cd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), y0);
    y1 = _mm256_fmadd_ps(cd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), y1);
    y2 = _mm256_fmadd_ps(cd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), y2);
    y3 = _mm256_fmadd_ps(cd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), y3);
  }
  _mm256_storeu_ps(yb, y0), _mm256_storeu_ps(yb + 8, y1);
  _mm256_storeu_ps(yb + 16, y2), _mm256_storeu_ps(yb + 24, y3);
}
#define Q_AXPY_BLOCK q4_0_axpy_block
#define Q_AXPY_TYPE lzn_block_q4_0
#define Q_AXPY_BLOCKS_PER_PREFETCH Q4_0_BLOCKS_PER_PREFETCH
#define Q_AXPY_NAME q4_0_axpy_rows
#define Q_AXPY_GROUP_NAME q4_0_axpy_group
#endif

/* One group of nr rows over y[0..d): whole blocks in place, a last partial
 * block through a zero-padded copy. */
static Q_ALWAYS_INLINE void Q_AXPY_GROUP_NAME(float *y, size_t d, const Q_AXPY_TYPE *const *r,
                                              const float *coef, size_t nr) {
  const size_t full = d / LZN_QK, n_blocks = (d + LZN_QK - 1) / LZN_QK;
  const size_t ahead = Q_PREFETCH_AHEAD / sizeof(Q_AXPY_TYPE);
  for (size_t b = 0; b < full; b++) {
    if (b % Q_AXPY_BLOCKS_PER_PREFETCH == 0 && b + ahead < n_blocks) {
#pragma GCC unroll 16
      for (size_t k = 0; k < nr; k++) _mm_prefetch((const char *)(r[k] + b + ahead), _MM_HINT_T0);
    }
    Q_AXPY_BLOCK(y + b * LZN_QK, r, coef, nr, b);
  }
  if (full < n_blocks) {
    const size_t left = d - full * LZN_QK;
    float tail[LZN_QK] = {0};
    memcpy(tail, y + full * LZN_QK, left * sizeof(float));
    Q_AXPY_BLOCK(tail, r, coef, nr, full);
    memcpy(y + full * LZN_QK, tail, left * sizeof(float));
  }
}

static void Q_AXPY_NAME(float *y, size_t d, const void *w, size_t row_bytes, const int32_t *idx,
                        const float *coef, size_t n) {
  const Q_AXPY_TYPE *r[Q_AXPY_GROUP];
  const size_t span = (d + LZN_QK - 1) / LZN_QK * sizeof(Q_AXPY_TYPE);
  size_t t = 0;
  for (; t + Q_AXPY_GROUP <= n; t += Q_AXPY_GROUP) {
    for (size_t k = 0; k < Q_AXPY_GROUP; k++) r[k] = q_row(w, row_bytes, idx, t + k);
    const size_t rest = n - t - Q_AXPY_GROUP;
    q_prefetch_heads(w, row_bytes, span, idx, t + Q_AXPY_GROUP, rest < Q_AXPY_GROUP ? rest : Q_AXPY_GROUP);
    Q_AXPY_GROUP_NAME(y, d, r, coef + t, Q_AXPY_GROUP);
  }
  if (t < n) {
    for (size_t k = 0; k < n - t; k++) r[k] = q_row(w, row_bytes, idx, t + k);
    Q_AXPY_GROUP_NAME(y, d, r, coef + t, n - t);
  }
}

#undef Q_AXPY_BLOCK
#undef Q_AXPY_TYPE
#undef Q_AXPY_BLOCKS_PER_PREFETCH
#undef Q_AXPY_NAME
#undef Q_AXPY_GROUP_NAME

#endif /* LZN_KERNELS_X86_QUANT_AXPY256_H */
