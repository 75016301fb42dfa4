/*
 * avx512vnni/q8_0.c: Q8_0 dot_rows and gemv with AVX512-VNNI: vpdpbusd
 * (u8 x s8, four products added into each int32 lane, no saturation) on
 * two blocks per zmm (kernels/x86/quant_dot512.h), in place of maddubs +
 * madd. The sign trick as in avx512/q8_0.c: |w| as unsigned bytes, x
 * negated where w < 0 (x is never -128). axpy_rows and from_f32 have no
 * integer dot product and stay AVX-512's and AVX2's. Contracts in
 * kernels.h; specification in kernels/ref/q8_0.c.
 */
#include "kernels/x86/quant_common.h"

#define QDOT_GROUP 8
#define QDOT_Q8_0

static inline __m512i q8_pair_dot(__m512i w, __m512i x) {
  const __m512i x_signed = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x);
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), x_signed);
}

#include "kernels/x86/quant_dot512.h"

void lzn_install_avx512vnni_q8_0(lzn_kernel_table *t);
void lzn_install_avx512vnni_q8_0(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].dot_rows, LZN_ISA_AVX512VNNI, q8_0_dot_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].gemv, LZN_ISA_AVX512VNNI, q8_0_gemv);
}
