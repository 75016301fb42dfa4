/*
 * avxvnni/q4_0.c: Q4_0 dot_rows and gemv with AVX-VNNI (VEX vpdpbusd).
 * The nibbles are unsigned bytes already, so sum (q - 8) * x is one
 * vpdpbusd of q and x added to -sum(8 * x), which is made once per block
 * for the row group. axpy_rows stays AVX2's. Loops in
 * kernels/x86/quant_dot256.h; specification in kernels/ref/q4_0.c.
 */
#include "kernels/x86/quant_common.h"

#define QDOT_GROUP 4
#define QDOT_Q4_0

static inline __m256i q4_block_prep(__m256i x) {
  const __m256i eight_x = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), x);
  return _mm256_sub_epi32(_mm256_setzero_si256(), eight_x);
}

static inline __m256i q4_block_dot(__m256i nibbles, __m256i x, __m256i prep) {
  return _mm256_dpbusd_avx_epi32(prep, nibbles, x);
}

#include "kernels/x86/quant_dot256.h"

void lzn_install_avxvnni_q4_0(lzn_kernel_table *t);
void lzn_install_avxvnni_q4_0(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_Q4_0].dot_rows, LZN_ISA_AVXVNNI, q4_0_dot_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q4_0].gemv, LZN_ISA_AVXVNNI, q4_0_gemv);
}
