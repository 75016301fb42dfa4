/*
 * x86/q8_0_avx2.h: Q8_0's steps for the block skeleton (generic/qrows.h)
 * with 256-bit vectors (AVX2 + FMA + F16C, and AVX-VNNI where the
 * including file is compiled for it): what avx2/q8_0.c and avxvnni/q8_0.c
 * share. Include x86/vec_avx2.h first. Specification in ref/q8_0.c.
 *
 * dot (x in Q8_0): a step is 2 blocks (68 bytes), one ymm of int8 each.
 * Without VNNI, llama.cpp's sign trick: |w| as unsigned bytes (w = -128
 * gives 0x80 = 128) times x with w's sign, maddubs + madd (pairs at most
 * 2 * 128 * 127 < 2^15; x is never -128, Q8_0 from_f32 makes [-127, 127]).
 * With AVX-VNNI, w + 128 (one xor) times x by vpdpbusd, started from
 * -128 * sum(x), which x's step holds. The two blocks' int32 lanes are
 * folded into one vector by one horizontal add (lanes 0-1 and 4-5 block 0,
 * 2-3 and 6-7 block 1), so one convert and one FMA serve both, with the
 * scales spread the same way.
 *
 * axpy (fp32): a step is one block, 4 ymm of y, each 8 int8 sign-extended
 * to dwords and converted, one FMA each by coef * d (the reference's fp32
 * product) broadcast.
 */
#ifndef LZN_KERNELS_X86_Q8_0_AVX2_H
#define LZN_KERNELS_X86_Q8_0_AVX2_H

#include <immintrin.h>
#include <stdint.h>

#include "kernels/blocks.h"

#define QR_BLOCK_WEIGHTS LZN_QK
#define QR_BLOCK_BYTES sizeof(lzn_block_q8_0)
#define QR_X_BLOCK_WEIGHTS LZN_QK
#define QR_X_BLOCK_BYTES sizeof(lzn_block_q8_0)
#define QR_DOT_STEP_BLOCKS 2
#define QR_AXPY_STEP_BLOCKS 1

typedef struct {
  __m256i q0, q1;       /* x's two blocks */
  __m256i start0, start1; /* AVX-VNNI: -128 * sum(x) per int32 lane; else 0 */
  __m256 scale;         /* x's scales in the lanes of the folded products: 0, 0, 1, 1, 0, 0, 1, 1 */
} qr_xstep;

static inline __attribute__((always_inline)) __m256i q8_0_block_dot(__m256i start, __m256i w, __m256i x) {
#if defined(__AVXVNNI__)
  return _mm256_dpbusd_avx_epi32(start, _mm256_xor_si256(w, _mm256_set1_epi8((char)0x80)), x);
#else
  (void)start;
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
#endif
}

/* x's step in registers for a group of rows (else GCC reads it from
 * memory once per row). */
static inline __attribute__((always_inline)) void qr_xstep_pin(qr_xstep *xs) {
  __asm__("" : "+v"(xs->q0), "+v"(xs->q1), "+v"(xs->start0), "+v"(xs->start1), "+v"(xs->scale));
}

static inline void qr_xstep_make(qr_xstep *xs, const void *x_bytes) {
  const lzn_block_q8_0 *x = x_bytes;
  xs->q0 = _mm256_loadu_si256((const __m256i *)x[0].qs);
  xs->q1 = _mm256_loadu_si256((const __m256i *)x[1].qs);
#if defined(__AVXVNNI__)
  const __m256i minus128 = _mm256_set1_epi8((char)0x80);
  xs->start0 = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), minus128, xs->q0));
  xs->start1 = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), minus128, xs->q1));
#else
  xs->start0 = xs->start1 = _mm256_setzero_si256();
#endif
  const short d0 = (short)x[0].d, d1 = (short)x[1].d;
  xs->scale = _mm256_cvtph_ps(_mm_setr_epi16(d0, d0, d1, d1, d0, d0, d1, d1));
}

static inline __attribute__((always_inline)) vec_f32 qr_dot_step(vec_f32 acc, const void *w, const qr_xstep *xs) {
  const lzn_block_q8_0 *const b = w;
  const __m256i p0 = q8_0_block_dot(xs->start0, _mm256_loadu_si256((const __m256i *)b[0].qs), xs->q0);
  const __m256i p1 = q8_0_block_dot(xs->start1, _mm256_loadu_si256((const __m256i *)b[1].qs), xs->q1);
  const __m128i d = _mm_insert_epi16(_mm_cvtsi32_si128(b[0].d), b[1].d, 1);
  /* [d0, d1] -> d0, d0, d1, d1, d0, d0, d1, d1 */
  const __m256 dw = _mm256_cvtph_ps(_mm_shuffle_epi32(_mm_unpacklo_epi16(d, d), 0x44));
  const __m256 scale = _mm256_mul_ps(dw, xs->scale);
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_hadd_epi32(p0, p1)), scale, acc);
}

static inline __attribute__((always_inline)) void qr_axpy_step(vec_f32 *y, const void *w, vec_f32 coef) {
  const lzn_block_q8_0 *const block = w;
  const __m256 cd = _mm256_mul_ps(coef, _mm256_cvtph_ps(_mm_set1_epi16((short)block->d)));
#define Q8_0_8(at) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(block->qs + (at)))))
  y[0] = _mm256_fmadd_ps(cd, Q8_0_8(0), y[0]);
  y[1] = _mm256_fmadd_ps(cd, Q8_0_8(8), y[1]);
  y[2] = _mm256_fmadd_ps(cd, Q8_0_8(16), y[2]);
  y[3] = _mm256_fmadd_ps(cd, Q8_0_8(24), y[3]);
#undef Q8_0_8
}

#endif /* LZN_KERNELS_X86_Q8_0_AVX2_H */
