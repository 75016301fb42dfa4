/*
 * avxvnni/gemm.c: the Q8_0/Q4_0 gemm with AVX-VNNI's VEX vpdpbusd (16 ymm
 * registers: tiles of 2 rows x 4 tokens, as AVX2's). The fp32 kernels stay
 * avx2/gemm.c's. Specification in kernels/ref/gemm.c.
 */
#include <immintrin.h>

#include "kernels/kernels.h"

#define GEMM_Q_R 2
#define GEMM_Q_C 4

static inline __m256i gq_dot(__m256i a, __m256i b) { return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), a, b); }

#include "kernels/x86/gemm_q.h"

void lzn_install_avxvnni_gemm(lzn_kernel_table *t);
void lzn_install_avxvnni_gemm(lzn_kernel_table *t) {
  LZN_SET(t->gemm[LZN_WEIGHTS_Q8_0].gemm, LZN_ISA_AVXVNNI, q8_0_gemm);
  LZN_SET(t->gemm[LZN_WEIGHTS_Q4_0].gemm, LZN_ISA_AVXVNNI, q4_0_gemm);
}
