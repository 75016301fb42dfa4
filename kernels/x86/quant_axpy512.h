/*
 * x86/quant_axpy512.h: axpy_rows for Q8_0 and Q4_0 weights with 512-bit
 * vectors (AVX-512 F/BW/VL/DQ + FMA + F16C): a block of 32 columns is two
 * zmm of y, each row's block adds (coef * d) * q with one broadcast factor,
 * as the reference does (only the FMA's single rounding differs). Included
 * by an AVX-512 kernel file that defines QAXPY_Q8_0 or QAXPY_Q4_0 first;
 * defines <type>_axpy_rows with the table's signature.
 *
 * Rows go in groups of Q_AXPY_GROUP, y loaded and stored once per group and
 * block. y may end mid-block (the row's last column slice): that block's
 * loads and stores of y are masked to y[0..d), and its weights are read as
 * the whole block, which lies inside the row.
 */
#ifndef LZN_KERNELS_X86_QUANT_AXPY512_H
#define LZN_KERNELS_X86_QUANT_AXPY512_H

#include "kernels/x86/quant_common.h"

/* Rows per pass over y (as the f32 kernels, measured there). */
#define Q_AXPY_GROUP 8

#ifdef QAXPY_Q8_0
/* yb[0..32) += sum_k (coef[k] * d) * q over block b of the nr rows r[k];
 * lanes outside the masks m0 (columns 0..15) and m1 (16..31) untouched. */
static Q_ALWAYS_INLINE void q8_0_axpy_block(float *yb, const lzn_block_q8_0 *const *r,
                                            const float *coef, size_t nr, size_t b, __mmask16 m0,
                                            __mmask16 m1) {
  __m512 y0 = _mm512_maskz_loadu_ps(m0, yb), y1 = _mm512_maskz_loadu_ps(m1, yb + 16);
#pragma GCC unroll 16
  for (size_t k = 0; k < nr; k++) {
    const __m512 cd = _mm512_set1_ps(coef[k] * q_scale(r[k][b].d));
    const int8_t *q = r[k][b].qs;
    const __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)q)));
    const __m512 w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + 16))));
    y0 = _mm512_fmadd_ps(cd, w0, y0);
    y1 = _mm512_fmadd_ps(cd, w1, y1);
  }
  _mm512_mask_storeu_ps(yb, m0, y0);
  _mm512_mask_storeu_ps(yb + 16, m1, y1);
}
#define Q_AXPY_BLOCK q8_0_axpy_block
#define Q_AXPY_TYPE lzn_block_q8_0
#define Q_AXPY_BLOCKS_PER_PREFETCH Q8_0_BLOCKS_PER_PREFETCH
#define Q_AXPY_NAME q8_0_axpy_rows
#define Q_AXPY_GROUP_NAME q8_0_axpy_group
#endif

#ifdef QAXPY_Q4_0
static Q_ALWAYS_INLINE void q4_0_axpy_block(float *yb, const lzn_block_q4_0 *const *r,
                                            const float *coef, size_t nr, size_t b, __mmask16 m0,
                                            __mmask16 m1) {
  const __m128i low4 = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
  __m512 y0 = _mm512_maskz_loadu_ps(m0, yb), y1 = _mm512_maskz_loadu_ps(m1, yb + 16);
#pragma GCC unroll 16
  for (size_t k = 0; k < nr; k++) {
    const __m512 cd = _mm512_set1_ps(coef[k] * q_scale(r[k][b].d));
    const __m128i raw = _mm_loadu_si128((const __m128i *)r[k][b].qs);
    /* Elements 0..15 (low nibbles) and 16..31 (high), as int8 in [-8, 7]. */
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, low4), eight);
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), low4), eight);
    y0 = _mm512_fmadd_ps(cd, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo)), y0);
    y1 = _mm512_fmadd_ps(cd, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi)), y1);
  }
  _mm512_mask_storeu_ps(yb, m0, y0);
  _mm512_mask_storeu_ps(yb + 16, m1, y1);
}
#define Q_AXPY_BLOCK q4_0_axpy_block
#define Q_AXPY_TYPE lzn_block_q4_0
#define Q_AXPY_BLOCKS_PER_PREFETCH Q4_0_BLOCKS_PER_PREFETCH
#define Q_AXPY_NAME q4_0_axpy_rows
#define Q_AXPY_GROUP_NAME q4_0_axpy_group
#endif

/* Lanes [0, left) of 16, for the last block's masks. */
static inline __mmask16 q_mask16(size_t left) {
  return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

static Q_ALWAYS_INLINE void Q_AXPY_GROUP_NAME(float *y, size_t d, const Q_AXPY_TYPE *const *r,
                                              const float *coef, size_t nr) {
  const size_t full = d / LZN_QK, n_blocks = (d + LZN_QK - 1) / LZN_QK;
  const size_t ahead = Q_PREFETCH_AHEAD / sizeof(Q_AXPY_TYPE);
  for (size_t b = 0; b < full; b++) {
    if (b % Q_AXPY_BLOCKS_PER_PREFETCH == 0 && b + ahead < n_blocks) {
#pragma GCC unroll 16
      for (size_t k = 0; k < nr; k++) _mm_prefetch((const char *)(r[k] + b + ahead), _MM_HINT_T0);
    }
    Q_AXPY_BLOCK(y + b * LZN_QK, r, coef, nr, b, (__mmask16)0xffff, (__mmask16)0xffff);
  }
  if (full < n_blocks) {
    const size_t left = d - full * LZN_QK;
    Q_AXPY_BLOCK(y + full * LZN_QK, r, coef, nr, full, q_mask16(left), q_mask16(left > 16 ? left - 16 : 0));
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

#endif /* LZN_KERNELS_X86_QUANT_AXPY512_H */
