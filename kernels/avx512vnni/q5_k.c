/*
 * avx512vnni/q5_k.c: the Q5_K kernels for AVX512_VNNI: vpdpbusd and
 * vpdpwssd for the int8 dot products (the steps' #if __AVX512VNNI__). The
 * loops are generic/qrows.h's, the steps x86/q5_k_avx512.h's (which say
 * what each step does); contracts in kernels.h, specification in
 * kernels/ref/q5_k.c and kernels/ref/kquant.h.
 */
#include "kernels/x86/vec_avx512.h"
#include "kernels/x86/q5_k_avx512.h"
#include "kernels/generic/qrows.h"

void lzn_install_avx512vnni_q5_k(lzn_kernel_table *t);
void lzn_install_avx512vnni_q5_k(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_Q5_K].axpy_rows, LZN_ISA_AVX512VNNI, LZN_AT_LEVEL(t, qr_axpy_rows));
  LZN_SET(t->type[LZN_WEIGHTS_Q5_K].axpy_rows_q8, LZN_ISA_AVX512VNNI, LZN_AT_LEVEL(t, qr_axpy_rows_q8));
  LZN_SET(t->type[LZN_WEIGHTS_Q5_K].dot_rows, LZN_ISA_AVX512VNNI, LZN_AT_LEVEL(t, qr_dot_rows));
  LZN_SET(t->type[LZN_WEIGHTS_Q5_K].gemv, LZN_ISA_AVX512VNNI, LZN_AT_LEVEL(t, qr_gemv));
}
