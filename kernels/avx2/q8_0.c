/*
 * avx2/q8_0.c: the Q8_0 kernels for AVX2 + FMA + F16C (contracts in
 * kernels.h, specification in kernels/ref/q8_0.c). The loops are in
 * kernels/x86/quant_*.h; this file gives them the block dot product:
 * llama.cpp's sign trick, |w| as unsigned bytes times x with w's sign, so
 * that _mm256_maddubs_epi16 (u8 x s8, pairs added in int16) can run it:
 * pairs are at most 2 * 128 * 127 < 2^15, no saturation, and w = -128 works
 * (its |w| is the byte 0x80 = 128); x is never -128 (Q8_0 from_f32).
 */
#include "kernels/x86/quant_common.h"

/* Rows per pass over x: 4 accumulators and their temporaries fit the 16
 * ymm registers. */
#define QDOT_GROUP 4
#define QDOT_Q8_0

static inline __m256i q8_block_dot(__m256i w, __m256i x) {
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

#define QAXPY_Q8_0
#include "kernels/x86/quant_axpy256.h"
#include "kernels/x86/quant_dot256.h"
#include "kernels/x86/quant_q8_0_from_f32.h"

void lzn_install_avx2_q8_0(lzn_kernel_table *t);
void lzn_install_avx2_q8_0(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].axpy_rows, LZN_ISA_AVX2, q8_0_axpy_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].dot_rows, LZN_ISA_AVX2, q8_0_dot_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].gemv, LZN_ISA_AVX2, q8_0_gemv);
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].from_f32, LZN_ISA_AVX2, q8_0_from_f32);
}
