/*
 * ref/q8_0.c: the reference kernels for Q8_0 weights (llama.cpp's
 * block_q8_0: an fp16 scale d and 32 int8 q per block, w = d * q). Plain C,
 * the specification every SIMD kernel is tested against (kernels.h has the
 * contract of each). Compiled without ISA flags.
 *
 * The dot kernels take x already quantized to Q8_0 (this type's from_f32).
 * Per block the dot product is the exact integer sum of q_w * q_x (|sum| <=
 * 32 * 128 * 127 < 2^24), times d_w * d_x in fp32 (a product of two fp16
 * values, exact in fp32), and the block terms are added in fp32 in block
 * order.
 */
#include <float.h>
#include <math.h>

#include "kernels/half.h"
#include "kernels/kernels.h"
#include "kernels/ref/axpy_q8.h"

static inline const lzn_block_q8_0 *row_at(const void *w, size_t row_bytes, size_t r) {
  return (const lzn_block_q8_0 *)((const char *)w + r * row_bytes);
}

static float dot_q8_0_row(const lzn_block_q8_0 *row, const lzn_block_q8_0 *x, size_t n_blocks) {
  float sum = 0.0f;
  for (size_t b = 0; b < n_blocks; b++) {
    int32_t isum = 0;
    for (size_t j = 0; j < LZN_QK; j++) isum += (int32_t)row[b].qs[j] * (int32_t)x[b].qs[j];
    sum += lzn_f16_to_f32(row[b].d) * lzn_f16_to_f32(x[b].d) * (float)isum;
  }
  return sum;
}

/* y[j] += (coef * d) * q: the coefficient and the block's scale are folded
 * into one factor per block, as the SIMD kernels broadcast it. */
static void scalar_q8_0_axpy_rows(float *y, size_t d, const void *w, size_t row_bytes,
                                  const int32_t *idx, const float *coef, size_t n) {
  const size_t n_blocks = (d + LZN_QK - 1) / LZN_QK;
  for (size_t t = 0; t < n; t++) {
    const lzn_block_q8_0 *row = row_at(w, row_bytes, (size_t)idx[t]);
    for (size_t b = 0; b < n_blocks; b++) {
      const float cd = coef[t] * lzn_f16_to_f32(row[b].d);
      const size_t j_end = d - b * LZN_QK < LZN_QK ? d - b * LZN_QK : LZN_QK;
      for (size_t j = 0; j < j_end; j++) y[b * LZN_QK + j] += cd * (float)row[b].qs[j];
    }
  }
}

static void scalar_q8_0_dot_rows(float *out, const void *w, size_t row_bytes, size_t d,
                                 const int32_t *idx, size_t n, const void *x) {
  const size_t n_blocks = (d + LZN_QK - 1) / LZN_QK;
  for (size_t t = 0; t < n; t++) out[t] = dot_q8_0_row(row_at(w, row_bytes, (size_t)idx[t]), x, n_blocks);
}

static void scalar_q8_0_gemv(float *out, const void *w, size_t row_bytes, size_t d, size_t n_rows,
                             const void *x) {
  const size_t n_blocks = (d + LZN_QK - 1) / LZN_QK;
  for (size_t r = 0; r < n_rows; r++) out[r] = dot_q8_0_row(row_at(w, row_bytes, r), x, n_blocks);
}

/* llama.cpp's quantize_row_q8_0_ref: d = amax / 127, q = roundf(x * (1/d))
 * (round half away from zero; x times the fp32 reciprocal, not x / d, as
 * llama.cpp does), the scale stored as fp16. A block of zeros gets d = 0 and
 * q = 0. One departure: a scale below FLT_MIN (amax < 127 * FLT_MIN), whose
 * reciprocal may overflow to inf and whose fp16 is 0 anyway, also gives
 * q = 0, where llama.cpp computes inf * x and casts it. The last block is
 * padded with zeros. */
static void scalar_q8_0_from_f32(void *dst, const float *src, size_t d) {
  lzn_block_q8_0 *out = dst;
  const size_t n_blocks = (d + LZN_QK - 1) / LZN_QK;
  for (size_t b = 0; b < n_blocks; b++) {
    float v[LZN_QK] = {0};
    const size_t j_end = d - b * LZN_QK < LZN_QK ? d - b * LZN_QK : LZN_QK;
    for (size_t j = 0; j < j_end; j++) v[j] = src[b * LZN_QK + j];
    float amax = 0.0f;
    for (size_t j = 0; j < LZN_QK; j++) amax = fabsf(v[j]) > amax ? fabsf(v[j]) : amax;
    const float scale = amax / 127.0f;
    const float inv = fabsf(scale) >= FLT_MIN ? 1.0f / scale : 0.0f;
    out[b].d = lzn_f32_to_f16(scale);
    for (size_t j = 0; j < LZN_QK; j++) out[b].qs[j] = (int8_t)roundf(v[j] * inv);
  }
}

static void scalar_q8_0_to_f32(float *dst, const void *src, size_t d) {
  const lzn_block_q8_0 *in = src;
  for (size_t j = 0; j < d; j++)
    dst[j] = lzn_f16_to_f32(in[j / LZN_QK].d) * (float)in[j / LZN_QK].qs[j % LZN_QK];
}

static float q8_0_block_scale(const void *row, size_t b) {
  return lzn_f16_to_f32(((const lzn_block_q8_0 *)row)[b].d);
}
static int32_t q8_0_block_value(const void *row, size_t b, size_t j) {
  return ((const lzn_block_q8_0 *)row)[b].qs[j];
}

/* kernels.h: axpy_rows with the coefficients rounded per group of rows. */
static void scalar_q8_0_axpy_rows_q8(float *y, size_t d, const void *w, size_t row_bytes,
                                     const int32_t *idx, const float *coef, size_t n) {
  ref_axpy_rows_q8(y, d, w, row_bytes, idx, coef, n, LZN_QK, q8_0_block_scale, q8_0_block_value);
}

void lzn_install_ref_q8_0(lzn_kernel_table *t);
void lzn_install_ref_q8_0(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].axpy_rows, LZN_ISA_SCALAR, scalar_q8_0_axpy_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].dot_rows, LZN_ISA_SCALAR, scalar_q8_0_dot_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].gemv, LZN_ISA_SCALAR, scalar_q8_0_gemv);
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].from_f32, LZN_ISA_SCALAR, scalar_q8_0_from_f32);
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].to_f32, LZN_ISA_SCALAR, scalar_q8_0_to_f32);
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].axpy_rows_q8, LZN_ISA_SCALAR, scalar_q8_0_axpy_rows_q8);
}
