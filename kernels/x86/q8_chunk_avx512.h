/*
 * x86/q8_chunk_avx512.h: what the block types whose axpy_rows_q8 makes its
 * coefficients a chunk of steps at a time (generic/qrows.h,
 * QR_Q8_CHUNK_STEPS) share with 512-bit vectors: a chunk holds one block
 * per fp32 lane (16 blocks), so the max over a group's rows is lane-wise,
 * one division serves 16 blocks and 4 rows' int8 alphas pack into each
 * block's dword by shifts and ors; a step then spreads the chunk's lanes
 * over its own with one vpermd per vector. x86/q4_0_avx512.h measured why.
 * Include x86/vec_avx512.h first.
 */
#ifndef LZN_KERNELS_X86_Q8_CHUNK_AVX512_H
#define LZN_KERNELS_X86_Q8_CHUNK_AVX512_H

#include <float.h>
#include <immintrin.h>

/* A step's int8 coefficients for a group of 16 rows: alpha[g] holds rows
 * 4g..4g+3's alphas (row 4g + i in byte i of a dword) of the block its
 * lane belongs to, start the int32 start of a column's sum (-offset * the
 * block's sum of alphas, for weights stored as q + offset), s the block's
 * scale; each type's step says which lanes hold which block. */
typedef struct {
  __m512i alpha[4], start;
  __m512 s;
} q8c_coefs;

/* The same with block b of the chunk in lane b. */
typedef struct {
  __m512i alpha[4], start;
  __m512 s;
} q8c_chunk;

/* 127 / m, and m / 127 into *s: both 0 where m < FLT_MIN (a block whose
 * products are all zero rounds to zero alphas). */
static inline __attribute__((always_inline)) __m512 q8c_inverse(__m512 m, __m512 *s) {
  const __mmask16 nonzero = _mm512_cmp_ps_mask(m, _mm512_set1_ps(FLT_MIN), _CMP_GE_OQ);
  *s = _mm512_maskz_div_ps(nonzero, m, _mm512_set1_ps(127.0f));
  return _mm512_maskz_div_ps(nonzero, _mm512_set1_ps(127.0f), m);
}

/* The chunk from a[t] = coef_t * d (lane b: block b; 0 for rows past the
 * group's) and m = the largest |a[t]| per lane: kernels.h's rule, alpha =
 * rint(a * (127 / m)) and s = m / 127 (both 0 where m < FLT_MIN), the
 * operations ref/axpy_q8.h does. start = -(sum of alphas << offset_shift);
 * 0 when offset_shift < 0 (weights stored as they are). */
static inline __attribute__((always_inline)) void q8c_chunk_finish(q8c_chunk *ch, const __m512 a[16], __m512 m,
                                                                  int offset_shift) {
  const __m512 inv = q8c_inverse(m, &ch->s);
  __m512i sum = _mm512_setzero_si512();
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++) {
    __m512i packed = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
      const __m512i alpha = _mm512_cvtps_epi32(_mm512_mul_ps(a[4 * g + i], inv)); /* half to even */
      sum = _mm512_add_epi32(sum, alpha);
      /* packed |= (alpha << 8i) & (0xff << 8i) */
      packed = _mm512_ternarylogic_epi32(packed, _mm512_slli_epi32(alpha, 8 * i),
                                         _mm512_set1_epi32((int)(0xffu << (8 * i))), 0xf8);
    }
    ch->alpha[g] = packed;
  }
  ch->start = offset_shift < 0 ? _mm512_setzero_si512()
                               : _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_sll_epi32(sum, _mm_cvtsi32_si128(offset_shift)));
}

/* A row's products with its coefficient, from 16 fp16 scales (lane b:
 * block b), into a; m takes their magnitudes. */
static inline __attribute__((always_inline)) void q8c_products(__m512 *a, __m512 *m, __m256i scales, float coef) {
  *a = _mm512_mul_ps(_mm512_cvtph_ps(scales), _mm512_set1_ps(coef));
  *m = _mm512_max_ps(*m, _mm512_abs_ps(*a));
}

/* Step lanes from the chunk's: lane j of every vector takes the chunk's
 * lane at[j]. */
static inline __attribute__((always_inline)) void q8c_spread(q8c_coefs *c, const q8c_chunk *ch, __m512i at) {
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++) c->alpha[g] = _mm512_permutexvar_epi32(at, ch->alpha[g]);
  c->start = _mm512_permutexvar_epi32(at, ch->start);
  c->s = _mm512_permutexvar_ps(at, ch->s);
}

#endif /* LZN_KERNELS_X86_Q8_CHUNK_AVX512_H */
