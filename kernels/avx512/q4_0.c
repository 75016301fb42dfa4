/*
 * avx512/q4_0.c: the Q4_0 kernels for AVX-512 F/BW/VL/DQ (contracts in
 * kernels.h, specification in kernels/ref/q4_0.c). axpy_rows dequantizes a
 * block into two zmm (kernels/x86/quant_axpy512.h); dot_rows and gemv run
 * two blocks per zmm (kernels/x86/quant_dot512.h): the nibbles are unsigned
 * bytes, so sum (q - 8) * x = maddubs(q, x) - maddubs(8, x), the second
 * made once per pair of blocks for the row group (int16 pairs within
 * 2 * 15 * 127 < 2^15).
 */
#include "kernels/x86/quant_common.h"

#define QDOT_GROUP 8
#define QDOT_Q4_0

static inline __m512i q4_pair_prep(__m512i x) {
  return _mm512_maddubs_epi16(_mm512_set1_epi8(8), x);
}

static inline __m512i q4_pair_dot(__m512i nibbles, __m512i x, __m512i prep) {
  const __m512i pairs = _mm512_sub_epi16(_mm512_maddubs_epi16(nibbles, x), prep);
  return _mm512_madd_epi16(pairs, _mm512_set1_epi16(1));
}

#define QAXPY_Q4_0
#include "kernels/x86/quant_axpy512.h"
#include "kernels/x86/quant_dot512.h"

void lzn_install_avx512_q4_0(lzn_kernel_table *t);
void lzn_install_avx512_q4_0(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_Q4_0].axpy_rows, LZN_ISA_AVX512, q4_0_axpy_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q4_0].dot_rows, LZN_ISA_AVX512, q4_0_dot_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q4_0].gemv, LZN_ISA_AVX512, q4_0_gemv);
}
