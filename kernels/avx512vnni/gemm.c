/*
 * avx512vnni/gemm.c: the Q8_0/Q4_0 gemm with vpdpbusd (AVX512-VNNI on ymm,
 * AVX512-VL): one instruction for the 32 products of a block pair where
 * AVX2 needs maddubs + madd. Tiles of 4 rows x 4 tokens. The fp32 kernels
 * stay avx512/gemm.c's. Specification in kernels/ref/gemm.c.
 */
#include <immintrin.h>

#include "kernels/kernels.h"

#define GEMM_Q_R 4
#define GEMM_Q_C 4

static inline __m256i gq_dot(__m256i a, __m256i b) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b); }

#include "kernels/x86/gemm_q.h"

void lzn_install_avx512vnni_gemm(lzn_kernel_table *t);
void lzn_install_avx512vnni_gemm(lzn_kernel_table *t) {
  LZN_SET(t->gemm[LZN_WEIGHTS_Q8_0].gemm, LZN_ISA_AVX512VNNI, q8_0_gemm);
  LZN_SET(t->gemm[LZN_WEIGHTS_Q4_0].gemm, LZN_ISA_AVX512VNNI, q4_0_gemm);
}
