/*
 * x86/q4_0_avx512.h: Q4_0's steps for the block skeleton (generic/qrows.h)
 * with 512-bit vectors (AVX-512 F/BW/VL/DQ, and VNNI where the including
 * file is compiled for it): what avx512/q4_0.c and avx512vnni/q4_0.c
 * share. Include x86/vec_avx512.h first. Specification in ref/q4_0.c.
 *
 * dot (x in Q8_0): a step is 4 blocks, 128 weights in 72 bytes, one zmm of
 * nibbles. The 4 blocks' 16 bytes of nibbles sit at even offsets (2, 20,
 * 38, 56), so one two-source word permute of the step's two overlapping
 * 64-byte loads (bytes 0-63 and 8-71) gathers them, and a one-source word
 * permute of the first load spreads the 4 fp16 scales over the lanes of
 * their blocks: per step and row 2 loads, 2 permutes, 3 integer ops for
 * the nibbles, 2 int8 dot products, 1 fp16 convert, 1 multiply by x's
 * scales, 1 int convert, 1 FMA. The old code (two blocks per zmm, scales
 * assembled from scalars) spent about twice that: measured in L2 (one
 * core, 4096 x 128, avx512vnni) 59 GB/s of weights against 26.5.
 *
 * x's 4 blocks are made once per call into the step's form: the low 16
 * and high 16 values of each block in the nibbles' order, the scales
 * spread the same way, and -8 * sum(x) per block as the int32 start of
 * the dot product (the nibbles are 0..15: sum (q - 8) x = sum q x - 8 sum x).
 * Without VNNI maddubs adds (q x + q x) pairs and the two halves in int16:
 * at most 4 * 15 * 127 = 7620.
 *
 * axpy (fp32): a step is the same 4 blocks, 8 zmm of y. Each block's 16
 * nibble bytes are zero-extended to 16 dwords; vpermps with the 16-entry
 * table q - 8 turns the low nibbles (the index's low 4 bits) into floats,
 * and the same after a shift by 4 for the high ones; then one FMA per 16
 * weights with coef * d (the reference's fp32 product) broadcast.
 */
#ifndef LZN_KERNELS_X86_Q4_0_AVX512_H
#define LZN_KERNELS_X86_Q4_0_AVX512_H

#include <immintrin.h>
#include <stdint.h>

#include "kernels/blocks.h"

#define QR_BLOCK_WEIGHTS LZN_QK
#define QR_BLOCK_BYTES sizeof(lzn_block_q4_0)
#define QR_X_BLOCK_WEIGHTS LZN_QK
#define QR_X_BLOCK_BYTES sizeof(lzn_block_q8_0)
#define QR_DOT_STEP_BLOCKS 4
#define QR_AXPY_STEP_BLOCKS 4

/* Word w of the step's nibbles (block w / 8, byte pair w % 8) in the
 * two-source permute of the loads at 0 (words 0-31) and 8 (32-63). */
static const uint16_t q4_0_nibble_words[32] = {
    1,  2,  3,  4,  5,  6,  7,  8,  10, 11, 12, 13, 14, 15, 16, 17,
    19, 20, 21, 22, 23, 24, 25, 26, 56, 57, 58, 59, 60, 61, 62, 63};
/* Words 4i..4i+3 = block i's scale (word 9i of the load at 0). */
static const uint16_t q4_0_scale_words[32] = {0,  0,  0,  0,  9,  9,  9,  9,  18, 18, 18,
                                              18, 27, 27, 27, 27, 0,  0,  0,  0,  0,  0,
                                              0,  0,  0,  0,  0,  0,  0,  0,  0,  0};

typedef struct {
  __m512i lo, hi; /* x's values 0-15 and 16-31 of the 4 blocks, block i in bytes 16i.. */
  __m512i start;  /* -8 * sum(x) of block i, over its 4 int32 lanes */
  __m512 scale;   /* x's scale of block i in lanes 4i..4i+3 */
} qr_xstep;

static inline void qr_xstep_make(qr_xstep *xs, const void *x_bytes) {
  const lzn_block_q8_0 *x = x_bytes;
  __m512i lo = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)x[0].qs));
  __m512i hi = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(x[0].qs + 16)));
  for (int i = 1; i < 4; i++) {
    lo = _mm512_inserti32x4(lo, _mm_loadu_si128((const __m128i *)x[i].qs), i);
    hi = _mm512_inserti32x4(hi, _mm_loadu_si128((const __m128i *)(x[i].qs + 16)), i);
  }
  const __m512i eight = _mm512_set1_epi8(8);
  xs->lo = lo;
  xs->hi = hi;
  xs->start = _mm512_sub_epi32(_mm512_setzero_si512(), vec_dot2_u8s8(_mm512_setzero_si512(), eight, lo, eight, hi));
  const __m256i h = _mm256_setr_epi16((short)x[0].d, (short)x[0].d, (short)x[0].d, (short)x[0].d, (short)x[1].d,
                                      (short)x[1].d, (short)x[1].d, (short)x[1].d, (short)x[2].d, (short)x[2].d,
                                      (short)x[2].d, (short)x[2].d, (short)x[3].d, (short)x[3].d, (short)x[3].d,
                                      (short)x[3].d);
  xs->scale = _mm512_cvtph_ps(h);
}

static inline __attribute__((always_inline)) vec_f32 qr_dot_step(vec_f32 acc, const void *w, const qr_xstep *xs) {
  const __m512i nibble_words = _mm512_loadu_si512(q4_0_nibble_words);
  const __m512i scale_words = _mm512_loadu_si512(q4_0_scale_words);
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i a = _mm512_loadu_si512(w), b = _mm512_loadu_si512((const char *)w + 8);
  const __m512i q = _mm512_permutex2var_epi16(a, nibble_words, b);
  const __m512 scale =
      _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(scale_words, a))), xs->scale);
  const __m512i lo = _mm512_and_si512(q, low4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
  const __m512i p = vec_dot2_u8s8(xs->start, lo, xs->lo, hi, xs->hi);
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale, acc);
}

/* q - 8 for q = 0..15: vpermps reads an index's low 4 bits only. */
static const float q4_0_values[16] = {-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7};

static inline __attribute__((always_inline)) void qr_axpy_step(vec_f32 *y, const void *w, vec_f32 coef) {
  const __m512 values = _mm512_loadu_ps(q4_0_values);
  const __m512i scale_words = _mm512_loadu_si512(q4_0_scale_words);
  const unsigned char *const b = w;
  /* Lanes 4i.. of cd: coef * d of block i. */
  const __m512 cd = _mm512_mul_ps(
      _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(scale_words, _mm512_loadu_si512(b)))), coef);
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    const __m512 cd_i = _mm512_permutexvar_ps(_mm512_set1_epi32(4 * i), cd);
    const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b + 18 * i + 2)));
    y[2 * i] = _mm512_fmadd_ps(cd_i, _mm512_permutexvar_ps(q, values), y[2 * i]);
    y[2 * i + 1] = _mm512_fmadd_ps(cd_i, _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), values), y[2 * i + 1]);
  }
}

#endif /* LZN_KERNELS_X86_Q4_0_AVX512_H */
