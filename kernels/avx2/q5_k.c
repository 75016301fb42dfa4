/*
 * avx2/q5_k.c: the Q5_K kernels for AVX2 + FMA + F16C: maddubs + madd for
 * the int8 dot products. The loops are generic/qrows.h's, the steps
 * x86/q5_k_avx2.h's (which say what each step does); contracts in
 * kernels.h, specification in kernels/ref/q5_k.c and kernels/ref/kquant.h.
 */
#include "kernels/x86/vec_avx2.h"
#include "kernels/x86/q5_k_avx2.h"
#include "kernels/generic/qrows.h"
#include "kernels/ref/kquant.h" /* to_f32: the reference's loops, vectorized */

void lzn_install_avx2_q5_k(lzn_kernel_table *t);
void lzn_install_avx2_q5_k(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_Q5_K].axpy_rows, LZN_ISA_AVX2, LZN_AT_LEVEL(t, qr_axpy_rows));
  LZN_SET(t->type[LZN_WEIGHTS_Q5_K].axpy_rows_q8, LZN_ISA_AVX2, LZN_AT_LEVEL(t, qr_axpy_rows_q8));
  LZN_SET(t->type[LZN_WEIGHTS_Q5_K].dot_rows, LZN_ISA_AVX2, LZN_AT_LEVEL(t, qr_dot_rows));
  LZN_SET(t->type[LZN_WEIGHTS_Q5_K].gemv, LZN_ISA_AVX2, LZN_AT_LEVEL(t, qr_gemv));
  LZN_SET(t->type[LZN_WEIGHTS_Q5_K].to_f32, LZN_ISA_AVX2, kq_q5_k_to_f32);
}
