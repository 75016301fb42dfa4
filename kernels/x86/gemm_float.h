/*
 * x86/gemm_float.h: the fp32-arithmetic kernels of many tokens
 * (kernels/gemm.h), written once and included by each ISA's gemm.c:
 *
 *   gemm of F32, F16 and BF16 weights against fp32 tokens: a register tile
 *   of GEMM_F_R rows x GEMM_F_C tokens, each weight vector loaded and
 *   widened (vcvtph2ps, a shift for BF16) once per tile, in registers;
 *
 *   axpy_gemm of every type: 32 columns (one block) of GEMM_A_C tokens' y
 *   held in registers while the rows stream through them, each row's
 *   32 weights widened (Q8_0/Q4_0: times the block's scale) once for the
 *   GEMM_A_C tokens, then one FMA per token and vector.
 *
 * The includer defines the vector: VF, VF_LANES (8 or 16), vf_zero(),
 * vf_set1(f), vf_loadu(p), vf_storeu(p, v), vf_fma(a, b, c) (a * b + c),
 * vf_mul(a, b), vf_hsum(v), vf_hsum8(out, a0, ..., a7) (eight vectors'
 * sums into out[8]), vf_load_f16(p), vf_load_bf16(p) (VF_LANES values),
 * vf_from_i8(v, k) (lanes [k * VF_LANES, (k + 1) * VF_LANES) of 16 signed
 * bytes), and the tiles GEMM_F_R, GEMM_F_C, GEMM_A_C. Columns past
 * the last whole vector (gemm) or the last whole 32 (axpy_gemm) go through
 * a scalar tail; the sums differ from the reference's only in order.
 */
#ifndef LZN_KERNELS_X86_GEMM_FLOAT_H
#define LZN_KERNELS_X86_GEMM_FLOAT_H

#include <immintrin.h>

#include "kernels/half.h"
#include "kernels/kernels.h"

enum gf_kind { GF_F32, GF_F16, GF_BF16, GF_Q8_0, GF_Q4_0 };

#define GF_INLINE static inline __attribute__((always_inline))

/* VF_LANES weights of an element-type row from element j, as fp32. */
GF_INLINE VF gf_load(enum gf_kind kind, const void *row, size_t j) {
  if (kind == GF_F32) return vf_loadu((const float *)row + j);
  if (kind == GF_F16) return vf_load_f16((const uint16_t *)row + j);
  return vf_load_bf16((const uint16_t *)row + j);
}

/* Element j of a row, as fp32 (the scalar tails). */
GF_INLINE float gf_at(enum gf_kind kind, const void *row, size_t j) {
  switch (kind) {
  case GF_F32: return ((const float *)row)[j];
  case GF_F16: return lzn_f16_to_f32(((const uint16_t *)row)[j]);
  case GF_BF16: return lzn_bf16_to_f32(((const uint16_t *)row)[j]);
  case GF_Q8_0: {
    const lzn_block_q8_0 *block = (const lzn_block_q8_0 *)row + j / LZN_QK;
    return lzn_f16_to_f32(block->d) * (float)block->qs[j % LZN_QK];
  }
  case GF_Q4_0: break;
  }
  const lzn_block_q4_0 *block = (const lzn_block_q4_0 *)row + j / LZN_QK;
  const size_t k = j % LZN_QK;
  const uint8_t byte = block->qs[k % (LZN_QK / 2)];
  return lzn_f16_to_f32(block->d) * (float)((k < LZN_QK / 2 ? byte & 0x0f : byte >> 4) - 8);
}

/* ------------------------------------------------------------------ gemm */

GF_INLINE void gf_tile(enum gf_kind kind, const int R, const int C, float *out, size_t out_stride,
                       const void *const *w_rows, const float *const *x_rows, size_t d) {
  VF acc[GEMM_F_R][GEMM_F_C];
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 8
    for (int t = 0; t < C; t++) acc[r][t] = vf_zero();
  const size_t d_vec = d / VF_LANES * VF_LANES;
  for (size_t j = 0; j < d_vec; j += VF_LANES) {
    VF w[GEMM_F_R];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) w[r] = gf_load(kind, w_rows[r], j);
#pragma GCC unroll 8
    for (int t = 0; t < C; t++) {
      const VF x = vf_loadu(x_rows[t] + j);
#pragma GCC unroll 8
      for (int r = 0; r < R; r++) acc[r][t] = vf_fma(w[r], x, acc[r][t]);
    }
  }
  /* The tile's sums, eight at a time where it has eight (vf_hsum8: a third
   * of the instructions of eight vf_hsum; with a short row, a small
   * model's 128 columns, the sums were half a tile's work). */
  float sums[GEMM_F_R * GEMM_F_C];
  int k = 0;
  if ((R * C) % 8 == 0)
    for (; k < R * C; k += 8) {
      VF a[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; i++) a[i] = acc[(k + i) / C][(k + i) % C];
      vf_hsum8(sums + k, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
    }
#pragma GCC unroll 8
  for (; k < R * C; k++) sums[k] = vf_hsum(acc[k / C][k % C]);
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 8
    for (int t = 0; t < C; t++) {
      float sum = sums[r * C + t];
      for (size_t j = d_vec; j < d; j++) sum += gf_at(kind, w_rows[r], j) * x_rows[t][j];
      out[(size_t)t * out_stride + (size_t)r] = sum;
    }
}

GF_INLINE void gf_gemm(enum gf_kind kind, float *out, size_t out_stride, const void *w, size_t row_bytes, size_t d,
                       const int32_t *idx, size_t n_rows, const void *x, size_t x_stride, size_t m) {
  for (size_t i0 = 0; i0 < n_rows;) {
    const int R = n_rows - i0 >= GEMM_F_R ? GEMM_F_R : 1;
    const void *w_rows[GEMM_F_R];
    for (int r = 0; r < R; r++)
      w_rows[r] = (const char *)w + (idx ? (size_t)idx[i0 + (size_t)r] : i0 + (size_t)r) * row_bytes;
    for (size_t t0 = 0; t0 < m;) {
      /* Whole tiles of tokens, then halves, then one (as gemm_q.h). */
      const size_t left = m - t0;
      const int C = left >= GEMM_F_C ? GEMM_F_C : left >= GEMM_F_C / 2 ? GEMM_F_C / 2 : 1;
      const float *x_rows[GEMM_F_C];
      for (int t = 0; t < C; t++) x_rows[t] = (const float *)((const char *)x + (t0 + (size_t)t) * x_stride);
      float *o = out + t0 * out_stride + i0;
      if (R == GEMM_F_R) {
        if (C == GEMM_F_C) gf_tile(kind, GEMM_F_R, GEMM_F_C, o, out_stride, w_rows, x_rows, d);
        else if (C > 1) gf_tile(kind, GEMM_F_R, GEMM_F_C / 2, o, out_stride, w_rows, x_rows, d);
        else gf_tile(kind, GEMM_F_R, 1, o, out_stride, w_rows, x_rows, d);
      } else {
        if (C == GEMM_F_C) gf_tile(kind, 1, GEMM_F_C, o, out_stride, w_rows, x_rows, d);
        else if (C > 1) gf_tile(kind, 1, GEMM_F_C / 2, o, out_stride, w_rows, x_rows, d);
        else gf_tile(kind, 1, 1, o, out_stride, w_rows, x_rows, d);
      }
      t0 += (size_t)C;
    }
    i0 += (size_t)R;
  }
}

/* ------------------------------------------------------------- axpy_gemm */

#define GF_CHUNK 32
#define GF_VECS (GF_CHUNK / VF_LANES)

/* Columns [j, j + 32) of a row as fp32 (j a multiple of 32). */
GF_INLINE void gf_load_chunk(enum gf_kind kind, const void *row, size_t j, VF *v) {
  if (kind == GF_Q8_0 || kind == GF_Q4_0) {
    __m128i lo, hi; /* elements 0..15 and 16..31 of the block, signed bytes */
    float scale;
    if (kind == GF_Q8_0) {
      const lzn_block_q8_0 *block = (const lzn_block_q8_0 *)row + j / LZN_QK;
      scale = _cvtsh_ss(block->d);
      lo = _mm_loadu_si128((const __m128i *)block->qs);
      hi = _mm_loadu_si128((const __m128i *)(block->qs + 16));
    } else {
      const lzn_block_q4_0 *block = (const lzn_block_q4_0 *)row + j / LZN_QK;
      scale = _cvtsh_ss(block->d);
      const __m128i bytes = _mm_loadu_si128((const __m128i *)block->qs);
      const __m128i low = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
      lo = _mm_sub_epi8(_mm_and_si128(bytes, low), eight);
      hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(bytes, 4), low), eight);
    }
    const VF d = vf_set1(scale);
#pragma GCC unroll 4
    for (int k = 0; k < GF_VECS / 2; k++) {
      v[k] = vf_mul(vf_from_i8(lo, k), d);
      v[GF_VECS / 2 + k] = vf_mul(vf_from_i8(hi, k), d);
    }
    return;
  }
#pragma GCC unroll 4
  for (int k = 0; k < GF_VECS; k++) v[k] = gf_load(kind, row, j + (size_t)k * VF_LANES);
}

/* Tokens [t0, t0 + C) on columns [j, j + 32): y held in registers while the
 * n rows pass. */
GF_INLINE void gf_axpy_tile(enum gf_kind kind, const int C, float *y, size_t y_stride, size_t j, const void *w,
                            size_t row_bytes, const int32_t *idx, const float *coef, size_t coef_stride, size_t n) {
  VF acc[GEMM_A_C][GF_VECS];
#pragma GCC unroll 8
  for (int t = 0; t < C; t++)
#pragma GCC unroll 4
    for (int k = 0; k < GF_VECS; k++) acc[t][k] = vf_loadu(y + (size_t)t * y_stride + j + (size_t)k * VF_LANES);
  for (size_t i = 0; i < n; i++) {
    const void *row = (const char *)w + (idx ? (size_t)idx[i] : i) * row_bytes;
    VF v[GF_VECS];
    gf_load_chunk(kind, row, j, v);
#pragma GCC unroll 8
    for (int t = 0; t < C; t++) {
      const VF c = vf_set1(coef[(size_t)t * coef_stride + i]);
#pragma GCC unroll 4
      for (int k = 0; k < GF_VECS; k++) acc[t][k] = vf_fma(c, v[k], acc[t][k]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < C; t++)
#pragma GCC unroll 4
    for (int k = 0; k < GF_VECS; k++) vf_storeu(y + (size_t)t * y_stride + j + (size_t)k * VF_LANES, acc[t][k]);
}

GF_INLINE void gf_axpy_gemm(enum gf_kind kind, float *y, size_t y_stride, size_t d, const void *w, size_t row_bytes,
                            const int32_t *idx, const float *coef, size_t coef_stride, size_t n, size_t m) {
  const size_t d_chunks = d / GF_CHUNK * GF_CHUNK;
  for (size_t j = 0; j < d_chunks; j += GF_CHUNK)
    for (size_t t0 = 0; t0 < m;) {
      /* Whole tiles of tokens, then a half, a quarter, one: each pass
       * reads the rows' 32 columns once. */
      int C = GEMM_A_C;
      while (C > 1 && (size_t)C > m - t0) C /= 2;
      float *yt = y + t0 * y_stride;
      const float *ct = coef + t0 * coef_stride;
      if (C == GEMM_A_C) gf_axpy_tile(kind, GEMM_A_C, yt, y_stride, j, w, row_bytes, idx, ct, coef_stride, n);
      else if (C == GEMM_A_C / 2) gf_axpy_tile(kind, GEMM_A_C / 2, yt, y_stride, j, w, row_bytes, idx, ct, coef_stride, n);
      else if (C > 1) gf_axpy_tile(kind, GEMM_A_C / 4 > 1 ? GEMM_A_C / 4 : 1, yt, y_stride, j, w, row_bytes, idx, ct, coef_stride, n);
      else gf_axpy_tile(kind, 1, yt, y_stride, j, w, row_bytes, idx, ct, coef_stride, n);
      t0 += (size_t)C;
    }
  if (d_chunks == d) return;
  for (size_t t = 0; t < m; t++)
    for (size_t i = 0; i < n; i++) {
      const void *row = (const char *)w + (idx ? (size_t)idx[i] : i) * row_bytes;
      const float c = coef[t * coef_stride + i];
      for (size_t j = d_chunks; j < d; j++) y[t * y_stride + j] += c * gf_at(kind, row, j);
    }
}

/* ------------------------------------------------------------- the slots */

#define GF_GEMM(type, KIND)                                                                                  \
  static void type##_gemm_f(float *out, size_t out_stride, const void *w, size_t row_bytes, size_t d,        \
                            const int32_t *idx, size_t n_rows, const void *x, size_t x_stride, size_t m) {   \
    gf_gemm(KIND, out, out_stride, w, row_bytes, d, idx, n_rows, x, x_stride, m);                            \
  }
#define GF_AXPY(type, KIND)                                                                                  \
  static void type##_axpy_gemm(float *y, size_t y_stride, size_t d, const void *w, size_t row_bytes,         \
                               const int32_t *idx, const float *coef, size_t coef_stride, size_t n, size_t m) { \
    gf_axpy_gemm(KIND, y, y_stride, d, w, row_bytes, idx, coef, coef_stride, n, m);                          \
  }
GF_GEMM(f32, GF_F32)
GF_GEMM(f16, GF_F16)
GF_GEMM(bf16, GF_BF16)
GF_AXPY(f32, GF_F32)
GF_AXPY(f16, GF_F16)
GF_AXPY(bf16, GF_BF16)
GF_AXPY(q8_0, GF_Q8_0)
GF_AXPY(q4_0, GF_Q4_0)
#undef GF_GEMM
#undef GF_AXPY

#endif /* LZN_KERNELS_X86_GEMM_FLOAT_H */
