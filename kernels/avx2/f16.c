/*
 * avx2/f16.c: the fp16 (IEEE binary16) kernels for AVX2 + FMA + F16C: the x86 row skeleton
 * (generic/rows.h) over 8-float vectors, each chunk of a row widened by F16C (vcvtph2ps) as it is
 * loaded, so the rows stream at 2 bytes per weight and the arithmetic is
 * fp32 (x is fp32). Only kernels/avx2/ is compiled with these flags (see
 * kernels.h for each kernel's contract).
 */
#include "kernels/half.h"
#include "kernels/x86/vec_avx2.h"

typedef uint16_t w_elem;
static inline vec_f32 w_load(const w_elem *p) { return _mm256_cvtph_ps(vec_load_u16(p)); }
static inline vec_f32 w_load_tail(const w_elem *p, vec_tail t) {
  return _mm256_cvtph_ps(vec_load_u16_tail(p, t));
}

#include "kernels/generic/rows.h"

/* from_f32: F16C rounds to nearest even, as lzn_f32_to_f16 does (the
 * tests compare them bit for bit); the tail in scalar code. */
static void avx2_f16_from_f32(void *dst, const float *src, size_t d) {
  uint16_t *const out = dst;
  size_t j = 0;
  for (; j + 8 <= d; j += 8)
    _mm_storeu_si128((__m128i *)(out + j),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + j), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; j < d; j++) out[j] = lzn_f32_to_f16(src[j]);
}

/* to_f32: exact (a signalling NaN comes out quiet). */
static void avx2_f16_to_f32(float *dst, const void *src, size_t d) {
  const uint16_t *const in = src;
  size_t j = 0;
  for (; j + 8 <= d; j += 8) _mm256_storeu_ps(dst + j, w_load(in + j));
  for (; j < d; j++) dst[j] = lzn_f16_to_f32(in[j]);
}

void lzn_install_avx2_f16(lzn_kernel_table *t);
void lzn_install_avx2_f16(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_F16].axpy_rows, LZN_ISA_AVX2, LZN_AT_LEVEL(t, rows_axpy_rows));
  /* An element type has no scale to round the coefficients with: axpy_rows_q8 is axpy_rows. */
  LZN_SET(t->type[LZN_WEIGHTS_F16].axpy_rows_q8, LZN_ISA_AVX2, LZN_AT_LEVEL(t, rows_axpy_rows));
  LZN_SET(t->type[LZN_WEIGHTS_F16].dot_rows, LZN_ISA_AVX2, LZN_AT_LEVEL(t, rows_dot_rows));
  LZN_SET(t->type[LZN_WEIGHTS_F16].gemv, LZN_ISA_AVX2, LZN_AT_LEVEL(t, rows_gemv));
  LZN_SET(t->type[LZN_WEIGHTS_F16].from_f32, LZN_ISA_AVX2, avx2_f16_from_f32);
  LZN_SET(t->type[LZN_WEIGHTS_F16].to_f32, LZN_ISA_AVX2, avx2_f16_to_f32);
}
