/*
 * avx512/bf16.c: the bf16 kernels for AVX-512 (F, BW, VL, DQ): the x86 row skeleton
 * (generic/rows.h) over 16-float vectors, each chunk of a row widened by a zero-extend and a shift as it is
 * loaded, so the rows stream at 2 bytes per weight and the arithmetic is
 * fp32 (x is fp32). Only kernels/avx512/ is compiled with these flags (see
 * kernels.h for each kernel's contract).
 */
#include "kernels/half.h"
#include "kernels/x86/vec_avx512.h"

typedef uint16_t w_elem;
/* bf16 is the upper half of an fp32: zero-extend to 32 bits, shift left 16. */
static inline vec_f32 bf16_widen(__m256i h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
static inline vec_f32 w_load(const w_elem *p) { return bf16_widen(vec_load_u16(p)); }
static inline vec_f32 w_load_tail(const w_elem *p, vec_tail t) {
  return bf16_widen(vec_load_u16_tail(p, t));
}

#include "kernels/generic/rows.h"

/* from_f32: lzn_f32_to_bf16 on 16 lanes: add 0x7fff plus the lowest kept
 * bit (round to nearest even), keep the upper half; NaN stays NaN, quiet.
 * (Not AVX512_BF16's vcvtneps2bf16: it flushes subnormals to zero.) */
static inline __m256i bf16_of(__m512i x) {
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
  const __m512i round = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
  const __m512i quiet = _mm512_set1_epi32(0x40);
  const __m512i upper = _mm512_srli_epi32(x, 16);
  __m512i h = _mm512_srli_epi32(_mm512_add_epi32(x, _mm512_add_epi32(round, _mm512_and_si512(upper, one))), 16);
  const __mmask16 is_nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(x, abs_mask), inf);
  h = _mm512_mask_mov_epi32(h, is_nan, _mm512_or_si512(upper, quiet));
  return _mm512_cvtepi32_epi16(h);
}

/* Whole vectors unmasked, the tail under a mask (f16.c says why). */
static void avx512_bf16_from_f32(void *dst, const float *src, size_t d) {
  uint16_t *const out = dst;
  size_t j = 0;
  for (; j + 16 <= d; j += 16) _mm256_storeu_si256((__m256i *)(out + j), bf16_of(_mm512_loadu_si512(src + j)));
  if (j < d) {
    const vec_tail m = vec_tail_make(d - j);
    _mm256_mask_storeu_epi16(out + j, m, bf16_of(_mm512_maskz_loadu_epi32(m, src + j)));
  }
}

/* to_f32: exact. */
static void avx512_bf16_to_f32(float *dst, const void *src, size_t d) {
  const uint16_t *const in = src;
  size_t j = 0;
  for (; j + 16 <= d; j += 16) _mm512_storeu_ps(dst + j, w_load(in + j));
  if (j < d) {
    const vec_tail m = vec_tail_make(d - j);
    _mm512_mask_storeu_ps(dst + j, m, w_load_tail(in + j, m));
  }
}

void lzn_install_avx512_bf16(lzn_kernel_table *t);
void lzn_install_avx512_bf16(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_BF16].axpy_rows, LZN_ISA_AVX512, LZN_AT_LEVEL(t, rows_axpy_rows));
  /* An element type has no scale to round the coefficients with: axpy_rows_q8 is axpy_rows. */
  LZN_SET(t->type[LZN_WEIGHTS_BF16].axpy_rows_q8, LZN_ISA_AVX512, LZN_AT_LEVEL(t, rows_axpy_rows));
  LZN_SET(t->type[LZN_WEIGHTS_BF16].dot_rows, LZN_ISA_AVX512, LZN_AT_LEVEL(t, rows_dot_rows));
  LZN_SET(t->type[LZN_WEIGHTS_BF16].gemv, LZN_ISA_AVX512, LZN_AT_LEVEL(t, rows_gemv));
  LZN_SET(t->type[LZN_WEIGHTS_BF16].from_f32, LZN_ISA_AVX512, avx512_bf16_from_f32);
  LZN_SET(t->type[LZN_WEIGHTS_BF16].to_f32, LZN_ISA_AVX512, avx512_bf16_to_f32);
}
