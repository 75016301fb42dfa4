/*
 * avx512vnni/q4_0.c: Q4_0 dot_rows and gemv with AVX512-VNNI, two blocks
 * per zmm (kernels/x86/quant_dot512.h). The nibbles are unsigned bytes, so
 * sum (q - 8) * x is one vpdpbusd of q and x added into -sum(8 * x), made
 * once per pair of blocks for the row group. axpy_rows stays AVX-512's
 * (avx512/q4_0.c). Specification in kernels/ref/q4_0.c.
 */
#include "kernels/x86/quant_common.h"

#define QDOT_GROUP 8
#define QDOT_Q4_0

static inline __m512i q4_pair_prep(__m512i x) {
  const __m512i eight_x = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), x);
  return _mm512_sub_epi32(_mm512_setzero_si512(), eight_x);
}

static inline __m512i q4_pair_dot(__m512i nibbles, __m512i x, __m512i prep) {
  return _mm512_dpbusd_epi32(prep, nibbles, x);
}

#include "kernels/x86/quant_dot512.h"

void lzn_install_avx512vnni_q4_0(lzn_kernel_table *t);
void lzn_install_avx512vnni_q4_0(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_Q4_0].dot_rows, LZN_ISA_AVX512VNNI, q4_0_dot_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q4_0].gemv, LZN_ISA_AVX512VNNI, q4_0_gemv);
}
