/*
 * avx2/bf16.c: the bf16 kernels for AVX2 + FMA + F16C: the x86 row skeleton
 * (generic/rows.h) over 8-float vectors, each chunk of a row widened by a zero-extend and a shift as it is
 * loaded, so the rows stream at 2 bytes per weight and the arithmetic is
 * fp32 (x is fp32). Only kernels/avx2/ is compiled with these flags (see
 * kernels.h for each kernel's contract).
 */
#include "kernels/half.h"
#include "kernels/x86/vec_avx2.h"

typedef uint16_t w_elem;
/* bf16 is the upper half of an fp32: zero-extend to 32 bits, shift left 16. */
static inline vec_f32 bf16_widen(__m128i h) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
static inline vec_f32 w_load(const w_elem *p) { return bf16_widen(vec_load_u16(p)); }
static inline vec_f32 w_load_tail(const w_elem *p, vec_tail t) {
  return bf16_widen(vec_load_u16_tail(p, t));
}

#include "kernels/generic/rows.h"

/* from_f32: lzn_f32_to_bf16 on 8 lanes: add 0x7fff plus the lowest kept
 * bit (round to nearest even), keep the upper half; NaN stays NaN, quiet. */
static void avx2_bf16_from_f32(void *dst, const float *src, size_t d) {
  uint16_t *const out = dst;
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
  const __m256i round = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1);
  const __m256i quiet = _mm256_set1_epi32(0x40);
  size_t j = 0;
  for (; j + 8 <= d; j += 8) {
    const __m256i x = _mm256_loadu_si256((const __m256i *)(src + j));
    const __m256i upper = _mm256_srli_epi32(x, 16);
    const __m256i rounded = _mm256_srli_epi32(
        _mm256_add_epi32(x, _mm256_add_epi32(round, _mm256_and_si256(upper, one))), 16);
    const __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, abs_mask), inf);
    const __m256i h = _mm256_blendv_epi8(rounded, _mm256_or_si256(upper, quiet), is_nan);
    /* 8 values below 2^16 packed to 16 bits: packus works per 128-bit
     * lane, so gather the two lanes' results into the low half. */
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(h, h), 0x08);
    _mm_storeu_si128((__m128i *)(out + j), _mm256_castsi256_si128(packed));
  }
  for (; j < d; j++) out[j] = lzn_f32_to_bf16(src[j]);
}

/* to_f32: exact. */
static void avx2_bf16_to_f32(float *dst, const void *src, size_t d) {
  const uint16_t *const in = src;
  size_t j = 0;
  for (; j + 8 <= d; j += 8) _mm256_storeu_ps(dst + j, w_load(in + j));
  for (; j < d; j++) dst[j] = lzn_bf16_to_f32(in[j]);
}

void lzn_install_avx2_bf16(lzn_kernel_table *t);
void lzn_install_avx2_bf16(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_BF16].axpy_rows, LZN_ISA_AVX2, LZN_AT_LEVEL(t, rows_axpy_rows));
  /* An element type has no scale to round the coefficients with: axpy_rows_q8 is axpy_rows. */
  LZN_SET(t->type[LZN_WEIGHTS_BF16].axpy_rows_q8, LZN_ISA_AVX2, LZN_AT_LEVEL(t, rows_axpy_rows));
  LZN_SET(t->type[LZN_WEIGHTS_BF16].dot_rows, LZN_ISA_AVX2, LZN_AT_LEVEL(t, rows_dot_rows));
  LZN_SET(t->type[LZN_WEIGHTS_BF16].gemv, LZN_ISA_AVX2, LZN_AT_LEVEL(t, rows_gemv));
  LZN_SET(t->type[LZN_WEIGHTS_BF16].from_f32, LZN_ISA_AVX2, avx2_bf16_from_f32);
  LZN_SET(t->type[LZN_WEIGHTS_BF16].to_f32, LZN_ISA_AVX2, avx2_bf16_to_f32);
}
