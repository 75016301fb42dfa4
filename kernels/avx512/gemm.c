/*
 * avx512/gemm.c: gemm and axpy_gemm of every type for AVX-512 F/BW/VL/DQ
 * (contracts in kernels/gemm.h, specification in kernels/ref/gemm.c). 32
 * registers: fp32 tiles of 4 rows x 4 tokens of zmm, axpy_gemm 8 tokens x
 * 32 columns, int8 tiles of 4 x 4 on ymm (one block each; maddubs + madd,
 * VNNI's vpdpbusd in avx512vnni/gemm.c).
 */
#include "kernels/x86/gemm_vec512.h"

#define GEMM_F_R 4
#define GEMM_F_C 4
#define GEMM_A_C 8
#define GEMM_Q_R 4
#define GEMM_Q_C 4

static inline __m256i gq_dot(__m256i a, __m256i b) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
}

#include "kernels/x86/gemm_float.h"
#include "kernels/x86/gemm_q.h"

void lzn_install_avx512_gemm(lzn_kernel_table *t);
void lzn_install_avx512_gemm(lzn_kernel_table *t) {
  LZN_SET(t->gemm[LZN_WEIGHTS_F32].gemm, LZN_ISA_AVX512, f32_gemm_f);
  LZN_SET(t->gemm[LZN_WEIGHTS_F16].gemm, LZN_ISA_AVX512, f16_gemm_f);
  LZN_SET(t->gemm[LZN_WEIGHTS_BF16].gemm, LZN_ISA_AVX512, bf16_gemm_f);
  LZN_SET(t->gemm[LZN_WEIGHTS_Q8_0].gemm, LZN_ISA_AVX512, q8_0_gemm);
  LZN_SET(t->gemm[LZN_WEIGHTS_Q4_0].gemm, LZN_ISA_AVX512, q4_0_gemm);
  LZN_SET(t->gemm[LZN_WEIGHTS_F32].axpy_gemm, LZN_ISA_AVX512, f32_axpy_gemm);
  LZN_SET(t->gemm[LZN_WEIGHTS_F16].axpy_gemm, LZN_ISA_AVX512, f16_axpy_gemm);
  LZN_SET(t->gemm[LZN_WEIGHTS_BF16].axpy_gemm, LZN_ISA_AVX512, bf16_axpy_gemm);
  LZN_SET(t->gemm[LZN_WEIGHTS_Q8_0].axpy_gemm, LZN_ISA_AVX512, q8_0_axpy_gemm);
  LZN_SET(t->gemm[LZN_WEIGHTS_Q4_0].axpy_gemm, LZN_ISA_AVX512, q4_0_axpy_gemm);
}
