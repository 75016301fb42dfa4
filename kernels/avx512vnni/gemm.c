/*
 * avx512vnni/gemm.c: the Q8_0/Q4_0 gemm with vpdpbusd on zmm: for 10 (Q4_0) or 14 (Q8_0) tokens
 * or more, 15 rows packed across the lanes (kernels/x86/gemm_q512_packed.h);
 * for fewer, two blocks of a row per register, tiles of 4 rows x 4 tokens
 * (kernels/x86/gemm_q512.h); and the same types' rows packed at load, for any
 * number of tokens (kernels/x86/gemm_x16_512.h). The fp32 kernels stay
 * avx512/gemm.c's.
 * Specification in kernels/ref/gemm.c.
 */
#include <immintrin.h>

#include "kernels/kernels.h"

#define GQ5_R 4
#define GQ5_C 4

#include "kernels/x86/gemm_q512.h"
#include "kernels/x86/gemm_q512_packed.h"
#include "kernels/x86/gemm_x16_512.h"

void lzn_install_avx512vnni_gemm(lzn_kernel_table *t);
void lzn_install_avx512vnni_gemm(lzn_kernel_table *t) {
  LZN_SET(t->gemm[LZN_WEIGHTS_Q8_0].gemm, LZN_ISA_AVX512VNNI, q8_0_gemm_packed);
  LZN_SET(t->gemm[LZN_WEIGHTS_Q4_0].gemm, LZN_ISA_AVX512VNNI, q4_0_gemm_packed);
  LZN_SET(t->gemm[LZN_WEIGHTS_Q8_0].packed, LZN_ISA_AVX512VNNI, q8_0_gemm_x16);
  LZN_SET(t->gemm[LZN_WEIGHTS_Q4_0].packed, LZN_ISA_AVX512VNNI, q4_0_gemm_x16);
}
