/*
 * avx512/q8_0.c: the Q8_0 kernels for AVX-512 F/BW/VL/DQ (contracts in
 * kernels.h, specification in kernels/ref/q8_0.c). axpy_rows dequantizes a
 * block into two zmm (kernels/x86/quant_axpy512.h); dot_rows and gemv run
 * two blocks per zmm (kernels/x86/quant_dot512.h) with the sign trick:
 * |w| as unsigned bytes (w = -128 gives 0x80 = 128) times x negated where w
 * is negative (a masked subtract: AVX-512 has no vpsignb), maddubs then
 * madd. Pairs <= 2 * 128 * 127 < 2^15, no saturation; x is never -128.
 * from_f32 stays AVX2's (avx2/q8_0.c).
 */
#include "kernels/x86/quant_common.h"

/* Rows per pass over x: 8 accumulators fit the 32 zmm registers. */
#define QDOT_GROUP 8
#define QDOT_Q8_0

static inline __m512i q8_pair_dot(__m512i w, __m512i x) {
  const __m512i x_signed = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x);
  const __m512i pairs = _mm512_maddubs_epi16(_mm512_abs_epi8(w), x_signed);
  return _mm512_madd_epi16(pairs, _mm512_set1_epi16(1));
}

#define QAXPY_Q8_0
#include "kernels/x86/quant_axpy512.h"
#include "kernels/x86/quant_dot512.h"

void lzn_install_avx512_q8_0(lzn_kernel_table *t);
void lzn_install_avx512_q8_0(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].axpy_rows, LZN_ISA_AVX512, q8_0_axpy_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].dot_rows, LZN_ISA_AVX512, q8_0_dot_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].gemv, LZN_ISA_AVX512, q8_0_gemv);
}
