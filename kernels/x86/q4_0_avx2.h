/*
 * x86/q4_0_avx2.h: Q4_0's steps for the block skeleton (generic/qrows.h)
 * with 256-bit vectors (AVX2 + FMA + F16C, and AVX-VNNI where the
 * including file is compiled for it): what avx2/q4_0.c and avxvnni/q4_0.c
 * share. Include x86/vec_avx2.h first. Specification in ref/q4_0.c.
 *
 * dot (x in Q8_0): a step is 4 blocks (72 bytes) taken as 2 pairs; a pair
 * is one ymm of nibbles (the two blocks' 16 bytes), split into the low and
 * high nibbles (one shift, two masks per 64 weights) and multiplied with
 * x's values in the same order: without VNNI maddubs + madd (the nibbles
 * are 0..15, so each int16 sum is at most 4 * 15 * 127 = 7620), with it
 * two vpdpbusd. The pair's two fp16 scales come from one 32-byte load at
 * its start (bytes 0-1 and 18-19): a byte shuffle copies each to the 4
 * words of its 128-bit half and a qword permute brings them together, so
 * the scales cost 5 instructions per pair instead of two broadcasts from
 * scalars. x's steps hold the pairs' values, -8 * sum(x) per block as the
 * int32 start, and x's scales spread like the weights' ones.
 *
 * axpy (fp32): a step is one block, 4 ymm of y: the nibbles made int8 in
 * [-8, 7], each 8 sign-extended to dwords and converted, one FMA each by
 * coef * d (the reference's fp32 product) broadcast.
 */
#ifndef LZN_KERNELS_X86_Q4_0_AVX2_H
#define LZN_KERNELS_X86_Q4_0_AVX2_H

#include <immintrin.h>
#include <stdint.h>

#include "kernels/blocks.h"

#define QR_BLOCK_WEIGHTS LZN_QK
#define QR_BLOCK_BYTES sizeof(lzn_block_q4_0)
#define QR_X_BLOCK_WEIGHTS LZN_QK
#define QR_X_BLOCK_BYTES sizeof(lzn_block_q8_0)
#define QR_DOT_STEP_BLOCKS 4
#define QR_AXPY_STEP_BLOCKS 1

/* One pair of x's blocks as the dot step wants it. */
typedef struct {
  __m256i lo, hi; /* values 0-15 and 16-31: block 0 in bytes 0-15, block 1 in 16-31 */
  __m256i start;  /* -8 * sum(x) of block i over int32 lanes 4i..4i+3 */
  __m256 scale;   /* x's scale of block i in lanes 4i..4i+3 */
} q4_0_xpair;

typedef struct {
  q4_0_xpair pair[2];
} qr_xstep;

/* In each 128-bit half, the half's first fp16 (bytes 0-1 of the low half:
 * the first block's scale; bytes 2-3 of the high half, byte 18 of the
 * pair: the second's) copied to words 0-3. */
static const int8_t q4_0_scale_bytes[32] = {0, 1, 0, 1, 0, 1, 0, 1, -1, -1, -1, -1, -1, -1, -1, -1,
                                            2, 3, 2, 3, 2, 3, 2, 3, -1, -1, -1, -1, -1, -1, -1, -1};

/* The pair's two scales as fp32, each over its block's 4 lanes. */
static inline __attribute__((always_inline)) __m256 q4_0_pair_scales(const unsigned char *b) {
  const __m256i spread = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)b),
                                             _mm256_loadu_si256((const __m256i *)q4_0_scale_bytes));
  return _mm256_cvtph_ps(_mm256_castsi256_si128(_mm256_permute4x64_epi64(spread, 0x08)));
}

static inline void q4_0_xpair_make(q4_0_xpair *xp, const lzn_block_q8_0 *x) {
  xp->lo = _mm256_loadu2_m128i((const __m128i *)x[1].qs, (const __m128i *)x[0].qs);
  xp->hi = _mm256_loadu2_m128i((const __m128i *)(x[1].qs + 16), (const __m128i *)(x[0].qs + 16));
  const __m256i eight = _mm256_set1_epi8(8);
  xp->start = _mm256_sub_epi32(_mm256_setzero_si256(),
                               vec_dot2_u8s8(_mm256_setzero_si256(), eight, xp->lo, eight, xp->hi));
  const __m128i h = _mm_setr_epi16((short)x[0].d, (short)x[0].d, (short)x[0].d, (short)x[0].d, (short)x[1].d,
                                   (short)x[1].d, (short)x[1].d, (short)x[1].d);
  xp->scale = _mm256_cvtph_ps(h);
}

/* x's step in registers for a group of rows (else GCC reads it from
 * memory once per row). */
static inline __attribute__((always_inline)) void qr_xstep_pin(qr_xstep *xs) {
  __asm__("" : "+v"(xs->pair[0].lo), "+v"(xs->pair[0].hi), "+v"(xs->pair[0].start), "+v"(xs->pair[0].scale), "+v"(xs->pair[1].lo), "+v"(xs->pair[1].hi), "+v"(xs->pair[1].start), "+v"(xs->pair[1].scale));
}

static inline void qr_xstep_make(qr_xstep *xs, const void *x_bytes) {
  const lzn_block_q8_0 *x = x_bytes;
  q4_0_xpair_make(&xs->pair[0], x);
  q4_0_xpair_make(&xs->pair[1], x + 2);
}

static inline __attribute__((always_inline)) __m256 q4_0_dot_pair(__m256 acc, const unsigned char *b,
                                                                 const q4_0_xpair *xp) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i q = _mm256_loadu2_m128i((const __m128i *)(b + 20), (const __m128i *)(b + 2));
  const __m256i lo = _mm256_and_si256(q, low4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
  const __m256i p = vec_dot2_u8s8(xp->start, lo, xp->lo, hi, xp->hi);
  const __m256 scale = _mm256_mul_ps(q4_0_pair_scales(b), xp->scale);
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, acc);
}

static inline __attribute__((always_inline)) vec_f32 qr_dot_step(vec_f32 acc, const void *w, const qr_xstep *xs) {
  const unsigned char *const b = w;
  return q4_0_dot_pair(q4_0_dot_pair(acc, b, &xs->pair[0]), b + 2 * sizeof(lzn_block_q4_0), &xs->pair[1]);
}

static inline __attribute__((always_inline)) void qr_axpy_step(vec_f32 *y, const void *w, vec_f32 coef) {
  const lzn_block_q4_0 *const block = w;
  const __m128i low4 = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
  const __m256 cd = _mm256_mul_ps(coef, _mm256_cvtph_ps(_mm_set1_epi16((short)block->d)));
  const __m128i raw = _mm_loadu_si128((const __m128i *)block->qs);
  /* Elements 0..15 (low nibbles) and 16..31 (high), as int8 in [-8, 7]. */
  const __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, low4), eight);
  const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), low4), eight);
  y[0] = _mm256_fmadd_ps(cd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), y[0]);
  y[1] = _mm256_fmadd_ps(cd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), y[1]);
  y[2] = _mm256_fmadd_ps(cd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), y[2]);
  y[3] = _mm256_fmadd_ps(cd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), y[3]);
}

#endif /* LZN_KERNELS_X86_Q4_0_AVX2_H */
