/*
 * avx512/f16.c: the fp16 (IEEE binary16) kernels for AVX-512 (F, BW, VL, DQ): the x86 row skeleton
 * (generic/rows.h) over 16-float vectors, each chunk of a row widened by F16C (vcvtph2ps) as it is
 * loaded, so the rows stream at 2 bytes per weight and the arithmetic is
 * fp32 (x is fp32). Only kernels/avx512/ is compiled with these flags (see
 * kernels.h for each kernel's contract).
 */
#include "kernels/half.h"
#include "kernels/x86/vec_avx512.h"

typedef uint16_t w_elem;
static inline vec_f32 w_load(const w_elem *p) { return _mm512_cvtph_ps(vec_load_u16(p)); }
static inline vec_f32 w_load_tail(const w_elem *p, vec_tail t) {
  return _mm512_cvtph_ps(vec_load_u16_tail(p, t));
}

#include "kernels/generic/rows.h"

/* from_f32: the conversion rounds to nearest even, as lzn_f32_to_f16 does
 * (the tests compare them bit for bit); only the tail under a mask (a
 * masked store of whole vectors ran at a third of the plain one's speed on
 * Zen 5: 0.26 against 0.08 ns a weight). */
static inline __m256i f16_of(__m512 v) { return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

static void avx512_f16_from_f32(void *dst, const float *src, size_t d) {
  uint16_t *const out = dst;
  size_t j = 0;
  for (; j + 16 <= d; j += 16) _mm256_storeu_si256((__m256i *)(out + j), f16_of(_mm512_loadu_ps(src + j)));
  if (j < d) {
    const vec_tail m = vec_tail_make(d - j);
    _mm256_mask_storeu_epi16(out + j, m, f16_of(_mm512_maskz_loadu_ps(m, src + j)));
  }
}

/* to_f32: exact (a signalling NaN comes out quiet); the tail as above. */
static void avx512_f16_to_f32(float *dst, const void *src, size_t d) {
  const uint16_t *const in = src;
  size_t j = 0;
  for (; j + 16 <= d; j += 16) _mm512_storeu_ps(dst + j, w_load(in + j));
  if (j < d) {
    const vec_tail m = vec_tail_make(d - j);
    _mm512_mask_storeu_ps(dst + j, m, w_load_tail(in + j, m));
  }
}

void lzn_install_avx512_f16(lzn_kernel_table *t);
void lzn_install_avx512_f16(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_F16].axpy_rows, LZN_ISA_AVX512, LZN_AT_LEVEL(t, rows_axpy_rows));
  /* An element type has no scale to round the coefficients with: axpy_rows_q8 is axpy_rows. */
  LZN_SET(t->type[LZN_WEIGHTS_F16].axpy_rows_q8, LZN_ISA_AVX512, LZN_AT_LEVEL(t, rows_axpy_rows));
  LZN_SET(t->type[LZN_WEIGHTS_F16].dot_rows, LZN_ISA_AVX512, LZN_AT_LEVEL(t, rows_dot_rows));
  LZN_SET(t->type[LZN_WEIGHTS_F16].gemv, LZN_ISA_AVX512, LZN_AT_LEVEL(t, rows_gemv));
  LZN_SET(t->type[LZN_WEIGHTS_F16].from_f32, LZN_ISA_AVX512, avx512_f16_from_f32);
  LZN_SET(t->type[LZN_WEIGHTS_F16].to_f32, LZN_ISA_AVX512, avx512_f16_to_f32);
}
