/*
 * x86/gemm_q512.h: gemm for Q8_0 and Q4_0 weights against Q8_0 tokens with
 * AVX512-VNNI on zmm: two blocks of a row per register, one vpdpbusd for
 * the 64 products of a (row, token) pair of blocks, the integer sums exact.
 * Included by avx512vnni/gemm.c, which defines GQ5_R and GQ5_C (the tile:
 * rows x tokens).
 *
 * vpdpbusd multiplies unsigned by signed bytes, so one side is made
 * unsigned and the offset taken back out, per 4-byte lane, before any
 * scaling (exact in int32):
 *   Q4_0  w = nibble - 8: sum nibble * x - 8 * sum x; the second term is
 *         one vpdpbusd per token and block pair, shared by the tile's rows;
 *   Q8_0  sum (x + 128) * w - 128 * sum w; x + 128 is x with its sign bit
 *         flipped, the second term one vpdpbusd per row and pair, shared by
 *         the tile's tokens.
 * Then per pair: int32 -> fp32, times d_w * d_x (a vector: the first
 * block's scale in lanes 0-7, the second's in 8-15), added into the
 * pair's accumulator: 4 instructions for 64 multiply-adds, where the ymm
 * tile of gemm_q.h spends about 6 on 32. An odd last block runs with a
 * zero second half. The block sums are the reference's; only the fp32
 * additions' order differs (kernels/ref/gemm.c).
 *
 * Q4_0's nibbles come out as [low nibbles of b, of b + 1, high of b, of
 * b + 1] per 16 bytes; one 128-bit lane shuffle per row and pair puts them
 * in element order, to meet x's two blocks as they lie.
 */
#ifndef LZN_KERNELS_X86_GEMM_Q512_H
#define LZN_KERNELS_X86_GEMM_Q512_H

#include <immintrin.h>

#include "kernels/kernels.h"

enum gq5_kind { GQ5_Q8_0, GQ5_Q4_0 };

#define GQ5_INLINE static inline __attribute__((always_inline))

/* [a x 8, b x 8] */
GQ5_INLINE __m512 gq5_scales(float a, float b) {
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(a)), _mm256_set1_ps(b), 1);
}

/* Blocks b and b + 1 (b + 1 only if two) of a row: the bytes vpdpbusd takes
 * (Q4_0: nibbles, unsigned; Q8_0: signed), their scales, and for Q8_0 the
 * lanes' -128 * sum w. */
GQ5_INLINE __m512i gq5_load_w(enum gq5_kind kind, const void *row, size_t b, int two, __m512 *scale, __m512i *corr) {
  if (kind == GQ5_Q8_0) {
    const lzn_block_q8_0 *block = (const lzn_block_q8_0 *)row + b;
    const __m256i lo = _mm256_loadu_si256((const __m256i *)block[0].qs);
    const __m256i hi = two ? _mm256_loadu_si256((const __m256i *)block[1].qs) : _mm256_setzero_si256();
    *scale = gq5_scales(_cvtsh_ss(block[0].d), two ? _cvtsh_ss(block[1].d) : 0.0f);
    const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    *corr = _mm512_sub_epi32(_mm512_setzero_si512(),
                             _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)0x80), w));
    return w;
  }
  const lzn_block_q4_0 *block = (const lzn_block_q4_0 *)row + b;
  const __m128i q0 = _mm_loadu_si128((const __m128i *)block[0].qs);
  /* A missing second block: nibbles 8 (weight 0) against x's zeros. */
  const __m128i q1 = two ? _mm_loadu_si128((const __m128i *)block[1].qs) : _mm_set1_epi8((char)0x88);
  *scale = gq5_scales(_cvtsh_ss(block[0].d), two ? _cvtsh_ss(block[1].d) : 0.0f);
  *corr = _mm512_setzero_si512();
  const __m256i pair = _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1);
  const __m512i nibbles = _mm512_and_si512(
      _mm512_inserti64x4(_mm512_castsi256_si512(pair), _mm256_srli_epi16(pair, 4), 1), _mm512_set1_epi8(0x0f));
  return _mm512_shuffle_i64x2(nibbles, nibbles, _MM_SHUFFLE(3, 1, 2, 0));
}

/* Blocks b and b + 1 of a token: the bytes vpdpbusd takes against the
 * weights (Q4_0: x signed; Q8_0: x + 128, unsigned), the scales, and for
 * Q4_0 the lanes' -8 * sum x. */
GQ5_INLINE __m512i gq5_load_x(enum gq5_kind kind, const lzn_block_q8_0 *x, size_t b, int two, __m512 *scale,
                              __m512i *corr) {
  const __m256i lo = _mm256_loadu_si256((const __m256i *)x[b].qs);
  const __m256i hi = two ? _mm256_loadu_si256((const __m256i *)x[b + 1].qs) : _mm256_setzero_si256();
  *scale = gq5_scales(_cvtsh_ss(x[b].d), two ? _cvtsh_ss(x[b + 1].d) : 0.0f);
  const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  if (kind == GQ5_Q8_0) {
    *corr = _mm512_setzero_si512();
    return _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
  }
  *corr = _mm512_sub_epi32(_mm512_setzero_si512(),
                           _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), v));
  return v;
}

GQ5_INLINE void gq5_tile(enum gq5_kind kind, const int R, const int C, float *out, size_t out_stride,
                         const void *const *w_rows, const lzn_block_q8_0 *const *x_rows, size_t n_blocks) {
  __m512 acc[GQ5_R][GQ5_C];
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 8
    for (int t = 0; t < C; t++) acc[r][t] = _mm512_setzero_ps();
  for (size_t b = 0; b < n_blocks; b += 2) {
    const int two = b + 1 < n_blocks;
    __m512i w[GQ5_R], w_corr[GQ5_R];
    __m512 w_scale[GQ5_R];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) w[r] = gq5_load_w(kind, w_rows[r], b, two, &w_scale[r], &w_corr[r]);
#pragma GCC unroll 8
    for (int t = 0; t < C; t++) {
      __m512 x_scale;
      __m512i x_corr;
      const __m512i x = gq5_load_x(kind, x_rows[t], b, two, &x_scale, &x_corr);
#pragma GCC unroll 8
      for (int r = 0; r < R; r++) {
        const __m512i sum = kind == GQ5_Q8_0 ? _mm512_dpbusd_epi32(w_corr[r], x, w[r])
                                             : _mm512_dpbusd_epi32(x_corr, w[r], x);
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(w_scale[r], x_scale), acc[r][t]);
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 8
    for (int t = 0; t < C; t++) out[(size_t)t * out_stride + (size_t)r] = _mm512_reduce_add_ps(acc[r][t]);
}

/* As gemm_q.h's loop: tiles of rows, then single rows; tokens in whole
 * tiles, then halves, then one. */
GQ5_INLINE void gq5_gemm(enum gq5_kind kind, float *out, size_t out_stride, const void *w, size_t row_bytes, size_t d,
                         const int32_t *idx, size_t n_rows, const void *x, size_t x_stride, size_t m) {
  const size_t n_blocks = (d + LZN_QK - 1) / LZN_QK;
  for (size_t i0 = 0; i0 < n_rows;) {
    const int R = n_rows - i0 >= GQ5_R ? GQ5_R : 1;
    const void *w_rows[GQ5_R];
    for (int r = 0; r < R; r++)
      w_rows[r] = (const char *)w + (idx ? (size_t)idx[i0 + (size_t)r] : i0 + (size_t)r) * row_bytes;
    for (size_t t0 = 0; t0 < m;) {
      const size_t left = m - t0;
      const int C = left >= GQ5_C ? GQ5_C : left >= GQ5_C / 2 ? GQ5_C / 2 : 1;
      const lzn_block_q8_0 *x_rows[GQ5_C];
      for (int t = 0; t < C; t++) x_rows[t] = (const lzn_block_q8_0 *)((const char *)x + (t0 + (size_t)t) * x_stride);
      float *o = out + t0 * out_stride + i0;
      if (R == GQ5_R) {
        if (C == GQ5_C) gq5_tile(kind, GQ5_R, GQ5_C, o, out_stride, w_rows, x_rows, n_blocks);
        else if (C > 1) gq5_tile(kind, GQ5_R, GQ5_C / 2, o, out_stride, w_rows, x_rows, n_blocks);
        else gq5_tile(kind, GQ5_R, 1, o, out_stride, w_rows, x_rows, n_blocks);
      } else {
        if (C == GQ5_C) gq5_tile(kind, 1, GQ5_C, o, out_stride, w_rows, x_rows, n_blocks);
        else if (C > 1) gq5_tile(kind, 1, GQ5_C / 2, o, out_stride, w_rows, x_rows, n_blocks);
        else gq5_tile(kind, 1, 1, o, out_stride, w_rows, x_rows, n_blocks);
      }
      t0 += (size_t)C;
    }
    i0 += (size_t)R;
  }
}

#endif /* LZN_KERNELS_X86_GEMM_Q512_H */
