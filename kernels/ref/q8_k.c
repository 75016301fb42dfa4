/*
 * ref/q8_k.c: Q8_K, the int8 super-block type x takes for the K-quants'
 * dot products (kernels/blocks.h; llama.cpp's block_q8_K plays this role):
 * 256 int8 q, an fp32 scale d, and the sums of q in groups of 16, which a
 * K-quant's dot product needs for its mins (and Q6_K's -32). Plain C, the
 * specification of the SIMD from_f32.
 *
 * It is never a matrix's type, but it has every slot a weight type has
 * (kernels.h: no slot is empty), the row kernels as plain as can be.
 */
#include <float.h>
#include <math.h>

#include "kernels/kernels.h"

/* x -> Q8_K, per super-block (the last padded with zeros): amax = max
 * |x_i|; iscale = 127 / amax, q_i = rint(x_i * iscale) (fp32 product,
 * round half to even, so |q_i| <= 127), d = amax / 127. A super-block whose
 * d would be below FLT_MIN (amax < 127 FLT_MIN, zeros included) gets d = 0
 * and q = 0: its reciprocal could overflow, and it is 0 for every purpose.
 * llama.cpp's quantize_row_q8_K is the same up to the sign of d and the
 * scale's last bit (its d = 1 / iscale). */
static void scalar_q8_k_from_f32(void *dst, const float *src, size_t d) {
  lzn_block_q8_k *out = dst;
  for (size_t b = 0; b * LZN_QK_K < d; b++) {
    float v[LZN_QK_K] = {0};
    const size_t j_end = d - b * LZN_QK_K < LZN_QK_K ? d - b * LZN_QK_K : LZN_QK_K;
    for (size_t j = 0; j < j_end; j++) v[j] = src[b * LZN_QK_K + j];
    float amax = 0.0f;
    for (size_t j = 0; j < LZN_QK_K; j++) amax = fabsf(v[j]) > amax ? fabsf(v[j]) : amax;
    const int tiny = !(amax >= 127.0f * FLT_MIN);
    const float iscale = tiny ? 0.0f : 127.0f / amax;
    out[b].d = tiny ? 0.0f : amax / 127.0f;
    for (size_t j = 0; j < LZN_QK_K; j++) {
      const float q = rintf(v[j] * iscale);
      out[b].qs[j] = (int8_t)(q > 127.0f ? 127 : q < -127.0f ? -127 : q);
    }
    for (size_t g = 0; g < LZN_QK_K / 16; g++) {
      int sum = 0;
      for (size_t j = 0; j < 16; j++) sum += out[b].qs[16 * g + j];
      out[b].bsums[g] = (int16_t)sum;
    }
  }
}

static void scalar_q8_k_to_f32(float *dst, const void *src, size_t d) {
  const lzn_block_q8_k *in = src;
  for (size_t j = 0; j < d; j++) dst[j] = in[j / LZN_QK_K].d * (float)in[j / LZN_QK_K].qs[j % LZN_QK_K];
}

static float dot_row(const lzn_block_q8_k *row, const lzn_block_q8_k *x, size_t n_blocks) {
  float sum = 0.0f;
  for (size_t b = 0; b < n_blocks; b++) {
    int32_t isum = 0;
    for (size_t j = 0; j < LZN_QK_K; j++) isum += (int32_t)row[b].qs[j] * x[b].qs[j];
    sum += row[b].d * x[b].d * (float)isum;
  }
  return sum;
}

static void scalar_q8_k_dot_rows(float *out, const void *w, size_t row_bytes, size_t d, const int32_t *idx,
                                 size_t n, const void *x) {
  const size_t n_blocks = (d + LZN_QK_K - 1) / LZN_QK_K;
  for (size_t t = 0; t < n; t++)
    out[t] = dot_row((const lzn_block_q8_k *)((const char *)w + (size_t)idx[t] * row_bytes), x, n_blocks);
}

static void scalar_q8_k_gemv(float *out, const void *w, size_t row_bytes, size_t d, size_t n_rows,
                             const void *x) {
  const size_t n_blocks = (d + LZN_QK_K - 1) / LZN_QK_K;
  for (size_t r = 0; r < n_rows; r++)
    out[r] = dot_row((const lzn_block_q8_k *)((const char *)w + r * row_bytes), x, n_blocks);
}

static void scalar_q8_k_axpy_rows(float *y, size_t d, const void *w, size_t row_bytes, const int32_t *idx,
                                  const float *coef, size_t n) {
  for (size_t t = 0; t < n; t++) {
    const lzn_block_q8_k *row = (const lzn_block_q8_k *)((const char *)w + (size_t)idx[t] * row_bytes);
    for (size_t j = 0; j < d; j++) y[j] += coef[t] * row[j / LZN_QK_K].d * (float)row[j / LZN_QK_K].qs[j % LZN_QK_K];
  }
}

void lzn_install_ref_q8_k(lzn_kernel_table *t);
void lzn_install_ref_q8_k(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WTYPE_Q8_K].axpy_rows, LZN_ISA_SCALAR, scalar_q8_k_axpy_rows);
  /* The K-quants' activation type, never a W_down^T: exact in the q8 slot. */
  LZN_SET(t->type[LZN_WTYPE_Q8_K].axpy_rows_q8, LZN_ISA_SCALAR, scalar_q8_k_axpy_rows);
  LZN_SET(t->type[LZN_WTYPE_Q8_K].dot_rows, LZN_ISA_SCALAR, scalar_q8_k_dot_rows);
  LZN_SET(t->type[LZN_WTYPE_Q8_K].gemv, LZN_ISA_SCALAR, scalar_q8_k_gemv);
  LZN_SET(t->type[LZN_WTYPE_Q8_K].from_f32, LZN_ISA_SCALAR, scalar_q8_k_from_f32);
  LZN_SET(t->type[LZN_WTYPE_Q8_K].to_f32, LZN_ISA_SCALAR, scalar_q8_k_to_f32);
}
