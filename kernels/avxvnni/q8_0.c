/*
 * avxvnni/q8_0.c: the Q8_0 kernels for AVX-VNNI: VEX vpdpbusd for the int8
 * dot products (the steps' #if __AVXVNNI__). The loops are
 * generic/qrows.h's, the steps x86/q8_0_avx2.h's (which say what each step
 * does); contracts in kernels.h, specification in kernels/ref/q8_0.c.
 */
#include "kernels/x86/vec_avx2.h"
#include "kernels/x86/q8_0_avx2.h"
#include "kernels/generic/qrows.h"

void lzn_install_avxvnni_q8_0(lzn_kernel_table *t);
void lzn_install_avxvnni_q8_0(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].axpy_rows, LZN_ISA_AVXVNNI, LZN_AT_LEVEL(t, qr_axpy_rows));
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].dot_rows, LZN_ISA_AVXVNNI, LZN_AT_LEVEL(t, qr_dot_rows));
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].gemv, LZN_ISA_AVXVNNI, LZN_AT_LEVEL(t, qr_gemv));
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].axpy_rows_q8, LZN_ISA_AVXVNNI, LZN_AT_LEVEL(t, qr_axpy_rows_q8));
  LZN_SET(t->gemm[LZN_WEIGHTS_Q8_0].axpy_gemm_q8, LZN_ISA_AVXVNNI, LZN_AT_LEVEL(t, qr_axpy_gemm_q8));

}
