/*
 * x86/q8_chunk_avx2.h: x86/q8_chunk_avx512.h with 256-bit vectors (AVX2 +
 * F16C): a chunk holds 8 blocks, one per fp32 lane. Include x86/vec_avx2.h
 * first.
 */
#ifndef LZN_KERNELS_X86_Q8_CHUNK_AVX2_H
#define LZN_KERNELS_X86_Q8_CHUNK_AVX2_H

#include <float.h>
#include <immintrin.h>
#include <stdint.h>

/* As in x86/q8_chunk_avx512.h. */
typedef struct {
  __m256i alpha[4], start;
  __m256 s;
} q8c_coefs;

typedef struct {
  __m256i alpha[4], start;
  __m256 s;
} q8c_chunk;

/* As q8c_chunk_finish of x86/q8_chunk_avx512.h. */
static inline __attribute__((always_inline)) void q8c_chunk_finish(q8c_chunk *ch, const __m256 a[16], __m256 m,
                                                                  int offset_shift) {
  const __m256 nonzero = _mm256_cmp_ps(m, _mm256_set1_ps(FLT_MIN), _CMP_GE_OQ);
  const __m256 inv = _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps(127.0f), m), nonzero);
  ch->s = _mm256_and_ps(_mm256_div_ps(m, _mm256_set1_ps(127.0f)), nonzero);
  /* Two packs leave, per 128-bit half L, row i's blocks 4L..4L+3 at bytes
   * 4i..4i+3; the transpose makes dword j of half L (lane b = block b) the
   * 4 rows' alphas of block 4L + j. */
  const __m256i rows_to_blocks = _mm256_loadu_si256((const __m256i *)vec_transpose4x4_bytes);
  __m256i sum = _mm256_setzero_si256();
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++) {
    __m256i alpha[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
      alpha[i] = _mm256_cvtps_epi32(_mm256_mul_ps(a[4 * g + i], inv)); /* half to even, in [-127, 127] */
      sum = _mm256_add_epi32(sum, alpha[i]);
    }
    /* No saturation: |alpha| <= 127. */
    const __m256i bytes =
        _mm256_packs_epi16(_mm256_packs_epi32(alpha[0], alpha[1]), _mm256_packs_epi32(alpha[2], alpha[3]));
    ch->alpha[g] = _mm256_shuffle_epi8(bytes, rows_to_blocks);
  }
  ch->start = offset_shift < 0 ? _mm256_setzero_si256()
                               : _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_sll_epi32(sum, _mm_cvtsi32_si128(offset_shift)));
}

static inline __attribute__((always_inline)) void q8c_products(__m256 *a, __m256 *m, __m128i scales, float coef) {
  *a = _mm256_mul_ps(_mm256_cvtph_ps(scales), _mm256_set1_ps(coef));
  *m = _mm256_max_ps(*m, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), *a));
}

static inline __attribute__((always_inline)) void q8c_spread(q8c_coefs *c, const q8c_chunk *ch, __m256i at) {
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++) c->alpha[g] = _mm256_permutevar8x32_epi32(ch->alpha[g], at);
  c->start = _mm256_permutevar8x32_epi32(ch->start, at);
  c->s = _mm256_permutevar8x32_ps(ch->s, at);
}

#endif /* LZN_KERNELS_X86_Q8_CHUNK_AVX2_H */
