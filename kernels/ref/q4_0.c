/*
 * ref/q4_0.c: the reference kernels for Q4_0 weights (llama.cpp's
 * block_q4_0: an fp16 scale d and 16 bytes of nibbles per block; byte j
 * holds element j in its low nibble and element j + 16 in its high nibble;
 * w = d * (nibble - 8)). Plain C, the specification every SIMD kernel is
 * tested against (kernels.h has the contract of each). Compiled without ISA
 * flags.
 *
 * The dot kernels take x quantized to Q8_0 (the Q8_0 slot's from_f32), as
 * llama.cpp's vec_dot_q4_0_q8_0 does: per block the exact integer sum of
 * (nibble - 8) * q_x, times d_w * d_x in fp32 (exact: two fp16 values), the
 * block terms added in fp32 in block order.
 */
#include <float.h>
#include <math.h>

#include "kernels/half.h"
#include "kernels/kernels.h"
#include "kernels/ref/axpy_q8.h"

static inline const lzn_block_q4_0 *row_at(const void *w, size_t row_bytes, size_t r) {
  return (const lzn_block_q4_0 *)((const char *)w + r * row_bytes);
}

/* Element j (0..31) of a block, in [-8, 7]. */
static inline int32_t q4_0_value(const lzn_block_q4_0 *block, size_t j) {
  const uint8_t byte = block->qs[j % (LZN_QK / 2)];
  return (int32_t)(j < LZN_QK / 2 ? byte & 0x0f : byte >> 4) - 8;
}

static float dot_q4_0_row(const lzn_block_q4_0 *row, const lzn_block_q8_0 *x, size_t n_blocks) {
  float sum = 0.0f;
  for (size_t b = 0; b < n_blocks; b++) {
    int32_t isum = 0;
    for (size_t j = 0; j < LZN_QK; j++) isum += q4_0_value(&row[b], j) * (int32_t)x[b].qs[j];
    sum += lzn_f16_to_f32(row[b].d) * lzn_f16_to_f32(x[b].d) * (float)isum;
  }
  return sum;
}

/* y[j] += (coef * d) * (nibble - 8): one factor per block, as the SIMD
 * kernels broadcast it. */
static void scalar_q4_0_axpy_rows(float *y, size_t d, const void *w, size_t row_bytes,
                                  const int32_t *idx, const float *coef, size_t n) {
  const size_t n_blocks = (d + LZN_QK - 1) / LZN_QK;
  for (size_t t = 0; t < n; t++) {
    const lzn_block_q4_0 *row = row_at(w, row_bytes, (size_t)idx[t]);
    for (size_t b = 0; b < n_blocks; b++) {
      const float cd = coef[t] * lzn_f16_to_f32(row[b].d);
      const size_t j_end = d - b * LZN_QK < LZN_QK ? d - b * LZN_QK : LZN_QK;
      for (size_t j = 0; j < j_end; j++) y[b * LZN_QK + j] += cd * (float)q4_0_value(&row[b], j);
    }
  }
}

static void scalar_q4_0_dot_rows(float *out, const void *w, size_t row_bytes, size_t d,
                                 const int32_t *idx, size_t n, const void *x) {
  const size_t n_blocks = (d + LZN_QK - 1) / LZN_QK;
  for (size_t t = 0; t < n; t++) out[t] = dot_q4_0_row(row_at(w, row_bytes, (size_t)idx[t]), x, n_blocks);
}

static void scalar_q4_0_gemv(float *out, const void *w, size_t row_bytes, size_t d, size_t n_rows,
                             const void *x) {
  const size_t n_blocks = (d + LZN_QK - 1) / LZN_QK;
  for (size_t r = 0; r < n_rows; r++) out[r] = dot_q4_0_row(row_at(w, row_bytes, r), x, n_blocks);
}

/* llama.cpp's quantize_row_q4_0_ref: max is the value of largest magnitude
 * with its sign (the first one, if several), d = max / -8, so max itself
 * maps to nibble 0; nibble = min(15, (int)(x * (1/d) + 8.5)) (truncation of
 * a value >= 0: round half up). A block of zeros gets d = 0 and nibbles 8
 * (value 0); so does a block whose |d| is below FLT_MIN (its reciprocal may
 * overflow and its fp16 is 0 anyway; llama.cpp would compute inf * x). The
 * last block is padded with zeros, which quantize to 8. */
static void scalar_q4_0_from_f32(void *dst, const float *src, size_t d) {
  lzn_block_q4_0 *out = dst;
  const size_t n_blocks = (d + LZN_QK - 1) / LZN_QK;
  for (size_t b = 0; b < n_blocks; b++) {
    float v[LZN_QK] = {0};
    const size_t j_end = d - b * LZN_QK < LZN_QK ? d - b * LZN_QK : LZN_QK;
    for (size_t j = 0; j < j_end; j++) v[j] = src[b * LZN_QK + j];
    float amax = 0.0f, max = 0.0f;
    for (size_t j = 0; j < LZN_QK; j++)
      if (fabsf(v[j]) > amax) amax = fabsf(v[j]), max = v[j];
    const float scale = max / -8.0f;
    const float inv = fabsf(scale) >= FLT_MIN ? 1.0f / scale : 0.0f;
    out[b].d = lzn_f32_to_f16(scale);
    for (size_t j = 0; j < LZN_QK / 2; j++) {
      const int lo = (int)(v[j] * inv + 8.5f), hi = (int)(v[j + LZN_QK / 2] * inv + 8.5f);
      out[b].qs[j] = (uint8_t)((lo < 15 ? lo : 15) | (hi < 15 ? hi : 15) << 4);
    }
  }
}

static void scalar_q4_0_to_f32(float *dst, const void *src, size_t d) {
  const lzn_block_q4_0 *in = src;
  for (size_t j = 0; j < d; j++)
    dst[j] = lzn_f16_to_f32(in[j / LZN_QK].d) * (float)q4_0_value(&in[j / LZN_QK], j % LZN_QK);
}

static float q4_0_block_scale(const void *row, size_t b) {
  return lzn_f16_to_f32(((const lzn_block_q4_0 *)row)[b].d);
}
static int32_t q4_0_block_value(const void *row, size_t b, size_t j) {
  return q4_0_value(&((const lzn_block_q4_0 *)row)[b], j);
}

/* kernels.h: axpy_rows with the coefficients rounded per group of rows. */
static void scalar_q4_0_axpy_rows_q8(float *y, size_t d, const void *w, size_t row_bytes,
                                     const int32_t *idx, const float *coef, size_t n) {
  ref_axpy_rows_q8(y, d, w, row_bytes, idx, coef, n, LZN_QK, q4_0_block_scale, q4_0_block_value);
}

void lzn_install_ref_q4_0(lzn_kernel_table *t);
void lzn_install_ref_q4_0(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_Q4_0].axpy_rows, LZN_ISA_SCALAR, scalar_q4_0_axpy_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q4_0].dot_rows, LZN_ISA_SCALAR, scalar_q4_0_dot_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q4_0].gemv, LZN_ISA_SCALAR, scalar_q4_0_gemv);
  LZN_SET(t->type[LZN_WEIGHTS_Q4_0].from_f32, LZN_ISA_SCALAR, scalar_q4_0_from_f32);
  LZN_SET(t->type[LZN_WEIGHTS_Q4_0].to_f32, LZN_ISA_SCALAR, scalar_q4_0_to_f32);
  LZN_SET(t->type[LZN_WEIGHTS_Q4_0].axpy_rows_q8, LZN_ISA_SCALAR, scalar_q4_0_axpy_rows_q8);
}
