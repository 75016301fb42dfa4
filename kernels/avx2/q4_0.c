/*
 * avx2/q4_0.c: the Q4_0 kernels for AVX2 + FMA + F16C (contracts in
 * kernels.h, specification in kernels/ref/q4_0.c). The loops are in
 * kernels/x86/quant_*.h; this file gives them the block dot product
 * against x in Q8_0: the nibbles (0..15) are already unsigned bytes, so
 * sum (q - 8) * x = maddubs(q, x) - maddubs(8, x), the second term made
 * once per block for the whole row group (int16 pairs: |15 * 127 * 2| and
 * |8 * 127 * 2| < 2^15, no saturation).
 */
#include "kernels/x86/quant_common.h"

#define QDOT_GROUP 4
#define QDOT_Q4_0

static inline __m256i q4_block_prep(__m256i x) {
  return _mm256_maddubs_epi16(_mm256_set1_epi8(8), x);
}

static inline __m256i q4_block_dot(__m256i nibbles, __m256i x, __m256i prep) {
  const __m256i pairs = _mm256_sub_epi16(_mm256_maddubs_epi16(nibbles, x), prep);
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

#define QAXPY_Q4_0
#include "kernels/x86/quant_axpy256.h"
#include "kernels/x86/quant_dot256.h"

void lzn_install_avx2_q4_0(lzn_kernel_table *t);
void lzn_install_avx2_q4_0(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_Q4_0].axpy_rows, LZN_ISA_AVX2, q4_0_axpy_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q4_0].dot_rows, LZN_ISA_AVX2, q4_0_dot_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q4_0].gemv, LZN_ISA_AVX2, q4_0_gemv);
}
