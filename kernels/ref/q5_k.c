/*
 * ref/q5_k.c: the reference kernels for Q5_K weights (llama.cpp's
 * block_q4_K: 256 weights in 8 sub-blocks of 32, w = d * sc * q - dmin * m
 * with 4-bit q, 6-bit sc and m, fp16 d and dmin; byte layout in
 * kernels/blocks.h). Plain C, the specification every SIMD kernel is
 * tested against: the loops and their rounding are kernels/ref/kquant.h's
 * (x in Q8_K for the dot products), the quantizer too.
 */
#include "kernels/kernels.h"
#include "kernels/ref/kquant.h"

static void q5_k_quantize_block(void *block, const float *x) {
  lzn_block_q5_k *b = block;
  uint8_t sc[8], m[8], q[LZN_QK_K];
  kq_quantize_affine(x, 31, &b->d, &b->dmin, sc, m, q);
  kq_pack_scale_min(b->scales, sc, m);
  for (size_t c = 0; c < 4; c++)
    for (size_t k = 0; k < 32; k++)
      b->qs[32 * c + k] = (uint8_t)((q[64 * c + k] & 15) | (q[64 * c + 32 + k] & 15) << 4);
  memset(b->qh, 0, sizeof b->qh);
  for (size_t i = 0; i < LZN_QK_K; i++) b->qh[i % 32] |= (uint8_t)((q[i] >> 4) << (i / 32));
}

static void scalar_q5_k_axpy_rows(float *y, size_t d, const void *w, size_t row_bytes, const int32_t *idx,
                                  const float *coef, size_t n) {
  kq_axpy_rows(y, d, w, row_bytes, idx, coef, n, sizeof(lzn_block_q5_k), kq_unpack_q5_k);
}
static void scalar_q5_k_axpy_rows_q8(float *y, size_t d, const void *w, size_t row_bytes, const int32_t *idx,
                                     const float *coef, size_t n) {
  kq_axpy_rows_q8(y, d, w, row_bytes, idx, coef, n, sizeof(lzn_block_q5_k), kq_unpack_q5_k);
}
static void scalar_q5_k_dot_rows(float *out, const void *w, size_t row_bytes, size_t d, const int32_t *idx,
                                 size_t n, const void *x) {
  kq_dot_rows(out, w, row_bytes, d, idx, n, x, sizeof(lzn_block_q5_k), kq_unpack_q5_k);
}
static void scalar_q5_k_gemv(float *out, const void *w, size_t row_bytes, size_t d, size_t n_rows,
                             const void *x) {
  kq_dot_rows(out, w, row_bytes, d, NULL, n_rows, x, sizeof(lzn_block_q5_k), kq_unpack_q5_k);
}
static void scalar_q5_k_from_f32(void *dst, const float *src, size_t d) {
  kq_for_each_block(dst, sizeof(lzn_block_q5_k), src, d, q5_k_quantize_block);
}

void lzn_install_ref_q5_k(lzn_kernel_table *t);
void lzn_install_ref_q5_k(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_Q5_K].axpy_rows, LZN_ISA_SCALAR, scalar_q5_k_axpy_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q5_K].axpy_rows_q8, LZN_ISA_SCALAR, scalar_q5_k_axpy_rows_q8);
  LZN_SET(t->type[LZN_WEIGHTS_Q5_K].dot_rows, LZN_ISA_SCALAR, scalar_q5_k_dot_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q5_K].gemv, LZN_ISA_SCALAR, scalar_q5_k_gemv);
  LZN_SET(t->type[LZN_WEIGHTS_Q5_K].from_f32, LZN_ISA_SCALAR, scalar_q5_k_from_f32);
  LZN_SET(t->type[LZN_WEIGHTS_Q5_K].to_f32, LZN_ISA_SCALAR, kq_q5_k_to_f32);
}
