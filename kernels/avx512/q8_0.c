/*
 * avx512/q8_0.c: the Q8_0 kernels for AVX-512 F/BW/VL/DQ (contracts in
 * kernels.h, specification in kernels/ref/q8_0.c). axpy_rows dequantizes a
 * block into two zmm (kernels/x86/quant_axpy512.h). dot_rows and gemv run
 * one 32-byte block per ymm (kernels/x86/quant_dot256.h) with AVX2's block
 * dot product (sign trick + maddubs + madd, see avx2/q8_0.c); what AVX-512
 * adds there is 32 vector registers, so 8 rows share each load of x.
 * from_f32 stays AVX2's (avx2/q8_0.c).
 */
#include "kernels/x86/quant_common.h"

#define QDOT_GROUP 8
#define QDOT_Q8_0

/* |w| (w = -128 gives the byte 0x80 = 128) times x with w's sign: pairs
 * <= 2 * 128 * 127 < 2^15; x is never -128. */
static inline __m256i q8_block_dot(__m256i w, __m256i x) {
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

#define QAXPY_Q8_0
#include "kernels/x86/quant_axpy512.h"
#include "kernels/x86/quant_dot256.h"

void lzn_install_avx512_q8_0(lzn_kernel_table *t);
void lzn_install_avx512_q8_0(lzn_kernel_table *t) {
  LZN_SET_SLOT(t, LZN_WTYPE_Q8_0, axpy_rows, LZN_KOP_AXPY_ROWS, LZN_ISA_AVX512, q8_0_axpy_rows);
  LZN_SET_SLOT(t, LZN_WTYPE_Q8_0, dot_rows, LZN_KOP_DOT_ROWS, LZN_ISA_AVX512, q8_0_dot_rows);
  LZN_SET_SLOT(t, LZN_WTYPE_Q8_0, gemv, LZN_KOP_GEMV, LZN_ISA_AVX512, q8_0_gemv);
}
