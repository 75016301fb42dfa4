/*
 * x86/q8_0_avx512.h: Q8_0's steps for the block skeleton (generic/qrows.h)
 * with 512-bit vectors (AVX-512 F/BW/VL/DQ, and VNNI where the including
 * file is compiled for it): what avx512/q8_0.c and avx512vnni/q8_0.c
 * share. Include x86/vec_avx512.h first. Specification in ref/q8_0.c.
 *
 * dot (x in Q8_0): a step is 2 blocks, 64 weights in 68 bytes: the two
 * blocks' 32 int8 in one zmm (two 32-byte loads), both fp16 scales spread
 * over their blocks' 8 lanes by one word permute of the load at the
 * step's start. vpdpbusd multiplies unsigned by signed bytes, so with VNNI
 * the weights go in as w + 128 (one xor) and the dot product starts from
 * -128 * sum(x), made once per call with x's step; without VNNI, llama.cpp's
 * sign trick: |w| (w = -128 gives 0x80 = 128) times x with w's sign, which
 * maddubs adds in pairs within int16 (2 * 128 * 127 < 2^15; x is never
 * -128, Q8_0 from_f32 makes [-127, 127]).
 *
 * axpy (fp32): a step is the same 2 blocks, 4 zmm of y, each 16 int8
 * sign-extended to dwords, converted, and added with one FMA by coef * d
 * (the reference's fp32 product) broadcast.
 */
#ifndef LZN_KERNELS_X86_Q8_0_AVX512_H
#define LZN_KERNELS_X86_Q8_0_AVX512_H

#include <immintrin.h>
#include <stdint.h>

#include "kernels/blocks.h"

#define QR_BLOCK_WEIGHTS LZN_QK
#define QR_BLOCK_BYTES sizeof(lzn_block_q8_0)
#define QR_X_BLOCK_WEIGHTS LZN_QK
#define QR_X_BLOCK_BYTES sizeof(lzn_block_q8_0)
#define QR_DOT_STEP_BLOCKS 2
#define QR_AXPY_STEP_BLOCKS 2

/* Words 0-7 = the first block's scale (word 0), 8-15 the second's (word
 * 17, byte 34) of the load at the step's start. */
static const uint16_t q8_0_scale_words[32] = {0,  0,  0,  0,  0,  0,  0,  0,  17, 17, 17,
                                              17, 17, 17, 17, 17, 0,  0,  0,  0,  0,  0,
                                              0,  0,  0,  0,  0,  0,  0,  0,  0,  0};

typedef struct {
  __m512i q;     /* x's 64 values, block 0 in bytes 0-31 */
  __m512i start; /* VNNI: -128 * sum(x) per int32 lane; else 0 */
  __m512 scale;  /* x's scale of block i in lanes 8i..8i+7 */
} qr_xstep;

/* The two blocks' 32-byte values at b and b + 34 as one zmm. */
static inline __attribute__((always_inline)) __m512i q8_0_values_pair(const unsigned char *b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b + 2))),
                            _mm256_loadu_si256((const __m256i *)(b + 36)), 1);
}

/* x's step in registers for a group of rows (else GCC reads it from
 * memory once per row). */
static inline __attribute__((always_inline)) void qr_xstep_pin(qr_xstep *xs) {
  __asm__("" : "+v"(xs->q), "+v"(xs->start), "+v"(xs->scale));
}

static inline void qr_xstep_make(qr_xstep *xs, const void *x_bytes) {
  const lzn_block_q8_0 *x = x_bytes;
  xs->q = q8_0_values_pair(x_bytes);
#if defined(__AVX512VNNI__)
  xs->start = _mm512_sub_epi32(_mm512_setzero_si512(),
                               _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)0x80), xs->q));
#else
  xs->start = _mm512_setzero_si512();
#endif
  const __m256i h = _mm256_setr_epi16((short)x[0].d, (short)x[0].d, (short)x[0].d, (short)x[0].d, (short)x[0].d,
                                      (short)x[0].d, (short)x[0].d, (short)x[0].d, (short)x[1].d, (short)x[1].d,
                                      (short)x[1].d, (short)x[1].d, (short)x[1].d, (short)x[1].d, (short)x[1].d,
                                      (short)x[1].d);
  xs->scale = _mm512_cvtph_ps(h);
}

static inline __attribute__((always_inline)) vec_f32 qr_dot_step(vec_f32 acc, const void *w, const qr_xstep *xs) {
  const __m512i scale_words = _mm512_loadu_si512(q8_0_scale_words);
  const unsigned char *const b = w;
  const __m512i q = q8_0_values_pair(b);
#if defined(__AVX512VNNI__)
  const __m512i p = _mm512_dpbusd_epi32(xs->start, _mm512_xor_si512(q, _mm512_set1_epi8((char)0x80)), xs->q);
#else
  const __m512i x_signed = _mm512_mask_sub_epi8(xs->q, _mm512_movepi8_mask(q), _mm512_setzero_si512(), xs->q);
  const __m512i p = _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_abs_epi8(q), x_signed), _mm512_set1_epi16(1));
#endif
  const __m512 scale =
      _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(scale_words, _mm512_loadu_si512(b)))),
                    xs->scale);
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale, acc);
}

static inline __attribute__((always_inline)) void qr_axpy_step(vec_f32 *y, const void *w, vec_f32 coef) {
  const __m512i scale_words = _mm512_loadu_si512(q8_0_scale_words);
  const unsigned char *const b = w;
  const __m512 cd = _mm512_mul_ps(
      _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(scale_words, _mm512_loadu_si512(b)))), coef);
  const __m512 cd0 = _mm512_shuffle_f32x4(cd, cd, 0x00), cd1 = _mm512_shuffle_f32x4(cd, cd, 0xaa);
#define Q8_0_16(at) _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + (at)))))
  y[0] = _mm512_fmadd_ps(cd0, Q8_0_16(2), y[0]);
  y[1] = _mm512_fmadd_ps(cd0, Q8_0_16(18), y[1]);
  y[2] = _mm512_fmadd_ps(cd1, Q8_0_16(36), y[2]);
  y[3] = _mm512_fmadd_ps(cd1, Q8_0_16(52), y[3]);
#undef Q8_0_16
}

#endif /* LZN_KERNELS_X86_Q8_0_AVX512_H */
