/*
 * avxvnni/q8_0.c: Q8_0 dot_rows and gemv with AVX-VNNI (VEX-encoded
 * vpdpbusd: u8 x s8, four products added into each int32 lane, no
 * saturation) in place of AVX2's maddubs + madd. axpy_rows and from_f32
 * have no integer dot product and stay AVX2's (avx2/q8_0.c). Loops in
 * kernels/x86/quant_dot256.h; contracts in kernels.h; specification in
 * kernels/ref/q8_0.c.
 */
#include "kernels/x86/quant_common.h"

#define QDOT_GROUP 4
#define QDOT_Q8_0

/* The sign trick: |w| as unsigned bytes (-128 -> 0x80 = 128), x with w's
 * sign (x is never -128, so the negation cannot overflow). */
static inline __m256i q8_block_dot(__m256i w, __m256i x) {
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
}

#include "kernels/x86/quant_dot256.h"

void lzn_install_avxvnni_q8_0(lzn_kernel_table *t);
void lzn_install_avxvnni_q8_0(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].dot_rows, LZN_ISA_AVXVNNI, q8_0_dot_rows);
  LZN_SET(t->type[LZN_WEIGHTS_Q8_0].gemv, LZN_ISA_AVXVNNI, q8_0_gemv);
}
