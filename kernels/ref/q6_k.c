/*
 * ref/q6_k.c: the reference kernels for Q6_K weights (llama.cpp's
 * block_q6_K: 256 weights in 16 sub-blocks of 16, w = d * sc * (q - 32)
 * with 6-bit q, int8 sc, an fp16 d; byte layout in kernels/blocks.h).
 * Plain C, the specification every SIMD kernel is tested against: the
 * loops and their rounding are kernels/ref/kquant.h's (x in Q8_K for the
 * dot products, no mins), the quantizer too.
 */
#include "kernels/kernels.h"
#include "kernels/ref/kquant.h"

static void q6_k_quantize_block(void *block, const float *x) {
  lzn_block_q6_k *b = block;
  uint8_t q[LZN_QK_K];
  kq_quantize_symmetric(x, &b->d, b->scales, q);
  memset(b->ql, 0, sizeof b->ql);
  memset(b->qh, 0, sizeof b->qh);
  for (size_t i = 0; i < LZN_QK_K; i++) {
    const size_t h = i / 128, j = i % 128;
    b->ql[64 * h + j % 64] |= (uint8_t)((q[i] & 15) << (j < 64 ? 0 : 4));
    b->qh[32 * h + j % 32] |= (uint8_t)((q[i] >> 4) << (2 * (j / 32)));
  }
}

static void scalar_q6_k_axpy_rows(float *y, size_t d, const void *w, size_t row_bytes, const int32_t *idx,
                                  const float *coef, size_t n) {
  kq_axpy_rows(y, d, w, row_bytes, idx, coef, n, sizeof(lzn_block_q6_k), kq_unpack_q6_k);
}
static void scalar_q6_k_dot_rows(float *out, const void *w, size_t row_bytes, size_t d, const int32_t *idx,
                                 size_t n, const void *x) {
  kq_dot_rows(out, w, row_bytes, d, idx, n, x, sizeof(lzn_block_q6_k), kq_unpack_q6_k);
}
static void scalar_q6_k_axpy_rows_q8(float *y, size_t d, const void *w, size_t row_bytes, const int32_t *idx,
                                     const float *coef, size_t n) {
  kq_axpy_rows_q8(y, d, w, row_bytes, idx, coef, n, sizeof(lzn_block_q6_k), kq_unpack_q6_k);
}
static void scalar_q6_k_gemv(float *out, const void *w, size_t row_bytes, size_t d, size_t n_rows,
                             const void *x) {
  kq_dot_rows(out, w, row_bytes, d, NULL, n_rows, x, sizeof(lzn_block_q6_k), kq_unpack_q6_k);
}
static void scalar_q6_k_from_f32(void *dst, const float *src, size_t d) {
  kq_for_each_block(dst, sizeof(lzn_block_q6_k), src, d, q6_k_quantize_block);
}

void lzn_install_ref_q6_k(lzn_kernel_table *t);
void lzn_install_ref_q6_k(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_Q6_K].axpy_rows, LZN_ISA_SCALAR, scalar_q6_k_axpy_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q6_K].axpy_rows_q8, LZN_ISA_SCALAR, scalar_q6_k_axpy_rows_q8);
  LZN_SET(t->type[LZN_WEIGHTS_Q6_K].dot_rows, LZN_ISA_SCALAR, scalar_q6_k_dot_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q6_K].gemv, LZN_ISA_SCALAR, scalar_q6_k_gemv);
  LZN_SET(t->type[LZN_WEIGHTS_Q6_K].from_f32, LZN_ISA_SCALAR, scalar_q6_k_from_f32);
  LZN_SET(t->type[LZN_WEIGHTS_Q6_K].to_f32, LZN_ISA_SCALAR, kq_q6_k_to_f32);
}
