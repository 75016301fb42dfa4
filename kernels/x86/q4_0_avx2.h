/*
 * x86/q4_0_avx2.h: Q4_0's steps for the block skeleton (generic/qrows.h)
 * with 256-bit vectors (AVX2 + FMA + F16C, and AVX-VNNI where the
 * including file is compiled for it): what avx2/q4_0.c and avxvnni/q4_0.c
 * share. Include x86/vec_avx2.h first. Specification in ref/q4_0.c.
 *
 * dot (x in Q8_0): a step is 4 blocks (72 bytes) taken as 2 pairs; a pair
 * is one ymm of nibbles (the two blocks' 16 bytes), split into the low and
 * high nibbles (one shift, two masks per 64 weights) and multiplied with
 * x's values in the same order: without VNNI maddubs (the nibbles are
 * 0..15, so each int16 sum of the low and high products is at most 4 * 15
 * * 127 = 7620), with it two vpdpbusd. One horizontal add of the two
 * pairs' sums (int16 without VNNI, then madd to int32; int32 with it)
 * puts each block's in two lanes, so the step converts and scales once:
 * its four fp16 scales come from two 32-byte loads, a blend, a byte
 * shuffle and a qword permute (7 instructions for 4 blocks where one set
 * per pair took 10, and one convert and one FMA where each pair had its
 * own). `lzn-bench kernels --type q4_0 --isa avx2,avxvnni` on Zen 5, % of
 * the stream, 5 rounds alternating: AVX2 dot 65.0 -> 74.7, GEMV 60.7 ->
 * 68.5; AVX-VNNI dot 78.0 -> 79.0, GEMV 72.0 -> 77.8. x's steps hold the
 * pairs' values, -8 * sum(x) per block as the int32 start (in one of its
 * two lanes) and x's scales in the same lanes as the weights' ones.
 *
 * axpy (fp32): a step is one block, 4 ymm of y: the nibbles made int8 in
 * [-8, 7], each 8 sign-extended to dwords and converted, one FMA each by
 * coef * d (the reference's fp32 product) broadcast.
 */
#ifndef LZN_KERNELS_X86_Q4_0_AVX2_H
#define LZN_KERNELS_X86_Q4_0_AVX2_H

#include <float.h>
#include <immintrin.h>
#include <stdint.h>

#include "kernels/blocks.h"
#include "kernels/x86/q8_chunk_avx2.h"

#define QR_BLOCK_WEIGHTS LZN_QK
#define QR_BLOCK_BYTES sizeof(lzn_block_q4_0)
#define QR_X_BLOCK_WEIGHTS LZN_QK
#define QR_X_BLOCK_BYTES sizeof(lzn_block_q8_0)
#define QR_DOT_STEP_BLOCKS 4
#define QR_AXPY_STEP_BLOCKS 1

/* x for one step: the two pairs' values, and per block -8 * sum(x) and
 * x's scale in the lanes the pairs' sums land in after their horizontal
 * add (q4_0_step_block). */
typedef struct {
  __m256i lo[2], hi[2]; /* pair p's values 0-15 and 16-31: its first block in bytes 0-15, second in 16-31 */
  __m256i start;        /* -8 * sum(x) of block b in the first of its two lanes, 0 in the other */
  __m256 scale;         /* x's scale of block b in both of its lanes */
} qr_xstep;

/* After phaddd of the pairs' int32 sums, lane i holds half of block
 * q4_0_step_block[i]'s sum: the first pair's blocks (0, 1) and the
 * second's (2, 3) by 128-bit halves. */
static const int q4_0_step_block[8] = {0, 0, 2, 2, 1, 1, 3, 3};

/* The step's four fp16 scales in that lane order: one 32-byte load at the
 * step's start holds d0 (bytes 0-1) and d1 (18-19), one at byte 32 holds
 * d2 (36-37, its dword 1) and d3 (54-55, its dword 5); a dword blend puts
 * them in one register, a byte shuffle doubles each within its 128-bit
 * half and a qword permute brings the halves' first 8 bytes together. */
static const int8_t q4_0_step_scale_bytes[32] = {0, 1, 0, 1, 4, 5, 4, 5, -1, -1, -1, -1, -1, -1, -1, -1,
                                                 2, 3, 2, 3, 6, 7, 6, 7, -1, -1, -1, -1, -1, -1, -1, -1};

static inline __attribute__((always_inline)) __m256 q4_0_step_scales(const unsigned char *b) {
  const __m256i both = _mm256_blend_epi32(_mm256_loadu_si256((const __m256i *)b),
                                          _mm256_loadu_si256((const __m256i *)(b + 32)), 0x22);
  const __m256i spread = _mm256_shuffle_epi8(both, _mm256_loadu_si256((const __m256i *)q4_0_step_scale_bytes));
  return _mm256_cvtph_ps(_mm256_castsi256_si128(_mm256_permute4x64_epi64(spread, 0x08)));
}

static inline void qr_xstep_make(qr_xstep *xs, const void *x_bytes) {
  const lzn_block_q8_0 *x = x_bytes;
  int32_t start[8];
  uint16_t scale[8];
  for (int p = 0; p < 2; p++) {
    xs->lo[p] = _mm256_loadu2_m128i((const __m128i *)x[2 * p + 1].qs, (const __m128i *)x[2 * p].qs);
    xs->hi[p] = _mm256_loadu2_m128i((const __m128i *)(x[2 * p + 1].qs + 16), (const __m128i *)(x[2 * p].qs + 16));
  }
  for (int i = 0; i < 8; i++) {
    const lzn_block_q8_0 *xb = &x[q4_0_step_block[i]];
    scale[i] = xb->d;
    start[i] = 0;
    if (i % 2 == 0) /* the block's first lane */
      for (int j = 0; j < LZN_QK; j++) start[i] -= 8 * xb->qs[j];
  }
  xs->start = _mm256_loadu_si256((const __m256i *)start);
  xs->scale = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)scale));
}

/* A pair's nibbles split into low and high (one shift, two masks). */
static inline __attribute__((always_inline)) void q4_0_pair_nibbles(const unsigned char *b, __m256i *lo, __m256i *hi) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i q = _mm256_loadu2_m128i((const __m128i *)(b + 20), (const __m128i *)(b + 2));
  *lo = _mm256_and_si256(q, low4);
  *hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
}

static inline __attribute__((always_inline)) vec_f32 qr_dot_step(vec_f32 acc, const void *w, const qr_xstep *xs) {
  const unsigned char *const b = w;
  __m256i lo0, hi0, lo1, hi1;
  q4_0_pair_nibbles(b, &lo0, &hi0);
  q4_0_pair_nibbles(b + 2 * sizeof(lzn_block_q4_0), &lo1, &hi1);
#if defined(__AVXVNNI__)
  const __m256i zero = _mm256_setzero_si256();
  const __m256i halves = _mm256_hadd_epi32(vec_dot2_u8s8(zero, lo0, xs->lo[0], hi0, xs->hi[0]),
                                           vec_dot2_u8s8(zero, lo1, xs->lo[1], hi1, xs->hi[1]));
#else
  /* int16 sums of 4 products each (|.| <= 7620), two of them added by the
   * horizontal add (<= 15240), then pairs to int32. */
  const __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(lo0, xs->lo[0]), _mm256_maddubs_epi16(hi0, xs->hi[0]));
  const __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(lo1, xs->lo[1]), _mm256_maddubs_epi16(hi1, xs->hi[1]));
  const __m256i halves = _mm256_madd_epi16(_mm256_hadd_epi16(p0, p1), _mm256_set1_epi16(1));
#endif
  const __m256i sums = _mm256_add_epi32(halves, xs->start);
  const __m256 scale = _mm256_mul_ps(q4_0_step_scales(b), xs->scale);
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, acc);
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

/* ------------------------------------------------------ axpy_rows_q8 */

/* The int8 path (kernels.h, axpy_rows_q8) as x86/q4_0_avx512.h does it,
 * with 256-bit vectors: a step is 2 blocks (64 columns, 36 bytes a row).
 * Each 4 rows' nibble bytes are interleaved to dwords (8 unpacks), one
 * int8 dot product adds 4 rows into each column's lane (AVX-VNNI: low
 * nibbles, and whole bytes whose excess over them is 16 * the high
 * nibbles; without: maddubs on the low and on the high nibbles, pairs
 * within 2 * 15 * 127). The unpacks leave result vector m with, in its
 * 128-bit half L, block L's columns 4m .. 4m + 3 (low nibbles; + 16 for
 * the high ones); y is put in that order once per call, which is a 2 x 2
 * transpose of 4-float chunks within each pair of 8-float slots.
 *
 * The coefficients are made 4 steps (8 blocks) at a time, block b of the
 * chunk in fp32 lane b, as the AVX-512 file does and for its reasons (made
 * step by step they took ~half the kernel's time in L2: 11.2 GB/s, 21.5
 * with the coefficients given, Zen 4). A row's 8 scales come without a
 * shuffle: block j's sits at bytes 18j = 16j + 2j, i.e. in word j of the
 * 16 bytes at 16j, so the row's first 128 bytes, each 32 blended in by
 * its chunks' scale words, hold the 8 scales in order (4 loads, an and, 3
 * byte blends, a lane extract and an or per row and chunk). */
#define QR_AXPY_Q8_STEP_BLOCKS 2
#define QR_Q8_CHUNK_STEPS 4

typedef struct {
  float c[16]; /* coef of row t, 0 for rows past nr */
  size_t nr;
} qr_q8_group;

/* A step's coefficients (x86/q8_chunk_avx2.h): half L of alpha[g] holds
 * rows 4g..4g+3's alphas of block L in every dword, start = -8 * its sum
 * of alphas (the nibbles are q + 8), s block L's scale over half L. */
typedef q8c_coefs qr_q8_coefs;
typedef q8c_chunk qr_q8_chunk;

/* Word j of 16-byte chunk j (j = 0..7) of 128 bytes: ymm i holds chunks
 * 2i, 2i + 1. */
static const uint16_t q4_0_scale_word_masks[4][16] = {
    {0xffff, 0, 0, 0, 0, 0, 0, 0, 0, 0xffff, 0, 0, 0, 0, 0, 0},
    {0, 0, 0xffff, 0, 0, 0, 0, 0, 0, 0, 0, 0xffff, 0, 0, 0, 0},
    {0, 0, 0, 0, 0xffff, 0, 0, 0, 0, 0, 0, 0, 0, 0xffff, 0, 0},
    {0, 0, 0, 0, 0, 0, 0xffff, 0, 0, 0, 0, 0, 0, 0, 0, 0xffff}};

static inline void qr_q8_group_make(qr_q8_group *g, const float *coef, size_t nr) {
  for (size_t k = 0; k < 16; k++) g->c[k] = k < nr ? coef[k] : 0.0f;
  g->nr = nr;
}

/* The pairs of 8-float slots (0, 2), (1, 3) of each 32 columns: swap the
 * first's high 4 floats with the second's low 4. */
static inline void qr_q8_y_order(float *y) {
  /* Slots: lo of block 0 = y[0..16), lo of block 1 = y[32..48), hi + 16. */
  for (int h = 0; h < 32; h += 16)
    for (int c = 0; c < 16; c += 8) {
      const __m256 a = _mm256_loadu_ps(y + h + c), b = _mm256_loadu_ps(y + 32 + h + c);
      _mm256_storeu_ps(y + h + c, _mm256_permute2f128_ps(a, b, 0x20));
      _mm256_storeu_ps(y + 32 + h + c, _mm256_permute2f128_ps(a, b, 0x31));
    }
}

/* 32 bytes at p (whole), or its dwords that start before byte `need` (p's
 * own count), the rest 0: a dword so read ends at most 3 bytes past it. */
static inline __attribute__((always_inline)) __m256i q4_0_load_before(const unsigned char *p, int whole, long need) {
  if (whole) return _mm256_loadu_si256((const __m256i *)p);
  const __m256i starts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
  return _mm256_maskload_epi32((const int *)p, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)need), starts));
}

/* The chunk's 8 fp16 block scales of the row at q (its first n_blocks
 * blocks, 1 <= n_blocks <= 8; reading no byte past them: the last scale
 * ends 16 bytes before its block does). */
static inline __attribute__((always_inline)) __m128i q4_0_chunk_row_scales(const unsigned char *q, size_t n_blocks) {
  const int whole = n_blocks == 8;
  const long need = (long)((n_blocks - 1) * QR_BLOCK_BYTES + 2);
  __m256i words = _mm256_and_si256(q4_0_load_before(q, whole, need), _mm256_loadu_si256((const __m256i *)q4_0_scale_word_masks[0]));
#pragma GCC unroll 3
  for (int i = 1; i < 4; i++)
    words = _mm256_blendv_epi8(words, q4_0_load_before(q + 32 * i, whole, need - 32 * i),
                               _mm256_loadu_si256((const __m256i *)q4_0_scale_word_masks[i]));
  return _mm_or_si128(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
}

/* Blocks [0, n_blocks) of the chunk at byte off of the group's rows, 1 <=
 * n_blocks <= 8, reading no byte of a row past them. kernels.h's rule,
 * operation for operation (x86/q8_chunk_avx2.h). */
static inline __attribute__((always_inline)) void qr_q8_chunk_make(qr_q8_chunk *ch, const unsigned char *const *r,
                                                                  size_t off, size_t n_blocks, const qr_q8_group *g) {
  __m256 a[16], m = _mm256_setzero_ps();
#pragma GCC unroll 16
  for (int t = 0; t < 16; t++) {
    if ((size_t)t >= g->nr) {
      a[t] = _mm256_setzero_ps();
      continue;
    }
    q8c_products(&a[t], &m, q4_0_chunk_row_scales(r[t] + off, n_blocks), g->c[t]);
  }
  q8c_chunk_finish(ch, a, m, 3);
}

/* Step k of the chunk (its blocks 2k, 2k + 1) in the step's lanes. */
static inline __attribute__((always_inline)) void qr_q8_chunk_step(qr_q8_coefs *c, const qr_q8_chunk *ch, size_t k) {
  const int b0 = (int)(2 * k), b1 = b0 + 1;
  q8c_spread(c, ch, _mm256_setr_epi32(b0, b0, b0, b0, b1, b1, b1, b1));
}

/* The step's pieces, shared with the many-token form below. */

/* Rows q[0..4)'s nibbles of the step at off (its 2 blocks' 16 bytes each,
 * bytes 2 and 20 on), interleaved to dwords. */
static inline __attribute__((always_inline)) void q4_0_quad_nibbles(__m256i v[4], const unsigned char *const *q,
                                                                   size_t off) {
#define Q4_0_PAIR_NIBBLES(k) _mm256_loadu2_m128i((const __m128i *)(q[k] + off + 20), (const __m128i *)(q[k] + off + 2))
  vec_interleave4_u8(v, Q4_0_PAIR_NIBBLES(0), Q4_0_PAIR_NIBBLES(1), Q4_0_PAIR_NIBBLES(2), Q4_0_PAIR_NIBBLES(3));
#undef Q4_0_PAIR_NIBBLES
}

/* What the dot products take of rows q[0..4)'s nibbles of the step at off,
 * interleaved (q4_0_quad_nibbles): per result vector the low nibbles, and
 * (AVX-VNNI) the whole bytes or (without) the high nibbles. */
static inline __attribute__((always_inline)) void q4_0_quad_operands(__m256i low[4], __m256i other[4],
                                                                    const unsigned char *const *q, size_t off) {
  __m256i v[4];
  q4_0_quad_nibbles(v, q, off);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    low[i] = _mm256_and_si256(v[i], low4);
#if defined(__AVXVNNI__)
    other[i] = v[i];
#else
    other[i] = _mm256_and_si256(_mm256_srli_epi16(v[i], 4), low4);
#endif
  }
}

/* As x86/q4_0_avx512.h's q4_0_step_start. */
static inline __attribute__((always_inline)) void q4_0_step_start(__m256i lo[4], __m256i hi[4], const qr_q8_coefs *c) {
#if defined(__AVXVNNI__)
  const __m256i start_hi = _mm256_add_epi32(_mm256_slli_epi32(c->start, 4), c->start);
#else
  const __m256i start_hi = c->start;
#endif
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) lo[i] = c->start, hi[i] = start_hi;
}

static inline __attribute__((always_inline)) void q4_0_dot_pair(__m256i *lo, __m256i *hi, __m256i low, __m256i other,
                                                               __m256i alpha) {
#if defined(__AVXVNNI__)
  *lo = _mm256_dpbusd_avx_epi32(*lo, low, alpha);
  *hi = _mm256_dpbusd_avx_epi32(*hi, other, alpha);
#else
  const __m256i ones16 = _mm256_set1_epi16(1);
  *lo = _mm256_add_epi32(*lo, _mm256_madd_epi16(_mm256_maddubs_epi16(low, alpha), ones16));
  *hi = _mm256_add_epi32(*hi, _mm256_madd_epi16(_mm256_maddubs_epi16(other, alpha), ones16));
#endif
}

static inline __attribute__((always_inline)) void q4_0_step_finish(float *y, const __m256i lo[4], const __m256i hi[4],
                                                                  const qr_q8_coefs *c) {
  /* Result m's slot in y's order (qr_q8_y_order). */
  static const int slot[4] = {0, 32, 8, 40};
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
#if defined(__AVXVNNI__)
    const __m256i high = _mm256_srai_epi32(_mm256_sub_epi32(hi[i], lo[i]), 4);
#else
    const __m256i high = hi[i];
#endif
    float *const y_lo = y + slot[i], *const y_hi = y + slot[i] + 16;
    _mm256_storeu_ps(y_lo, _mm256_fmadd_ps(c->s, _mm256_cvtepi32_ps(lo[i]), _mm256_loadu_ps(y_lo)));
    _mm256_storeu_ps(y_hi, _mm256_fmadd_ps(c->s, _mm256_cvtepi32_ps(high), _mm256_loadu_ps(y_hi)));
  }
}

static inline __attribute__((always_inline)) void qr_q8_step_add(float *y, const unsigned char *const *r, size_t off,
                                                                const qr_q8_coefs *c) {
  __m256i lo[4], hi[4];
  q4_0_step_start(lo, hi, c);
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++) {
    __m256i low[4], other[4];
    q4_0_quad_operands(low, other, r + 4 * g, off);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) q4_0_dot_pair(&lo[i], &hi[i], low[i], other[i], c->alpha[g]);
  }
  q4_0_step_finish(y, lo, hi, c);
}

/* ------------------------------------- axpy_rows_q8 for many tokens */

/* The gemm of many tokens (generic/qrows.h, qr_axpy_gemm_q8), as
 * x86/q4_0_avx512.h does it: a step's interleaved nibbles and a chunk's
 * block scales made once per group of rows for all tokens. With AVX-VNNI
 * the buffer holds the low nibbles and the whole bytes, without it the low
 * and the high nibbles, each as its step's dot products take them. */
#define QR_AXPY_Q8_BUFFERED 1
#define QR_Q8_UNIT_STEPS QR_Q8_CHUNK_STEPS

typedef struct {
  __m256i low[4][4], other[4][4]; /* [quad of rows][result vector]: q4_0_quad_operands */
} qr_q8_step_buf;
typedef struct {
  __m256 d[16]; /* row t's scales as fp32, lane b: block b */
} qr_q8_unit_scales;
typedef qr_q8_chunk qr_q8_unit;

static inline __attribute__((always_inline)) void qr_q8_step_fill(qr_q8_step_buf *b, const unsigned char *const *r,
                                                                 size_t off) {
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++) q4_0_quad_operands(b->low[g], b->other[g], r + 4 * g, off);
}

/* qr_q8_step_add with the step's nibbles from the buffer. */
static inline __attribute__((always_inline)) void qr_q8_step_add_buf(float *y, const qr_q8_step_buf *b,
                                                                    const qr_q8_coefs *c) {
  __m256i lo[4], hi[4];
  q4_0_step_start(lo, hi, c);
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++)
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
      q4_0_dot_pair(&lo[i], &hi[i], _mm256_load_si256(&b->low[g][i]), _mm256_load_si256(&b->other[g][i]), c->alpha[g]);
  q4_0_step_finish(y, lo, hi, c);
}

static inline __attribute__((always_inline)) void qr_q8_unit_scales_make(qr_q8_unit_scales *sc,
                                                                        const unsigned char *const *r, size_t off,
                                                                        size_t n_blocks, size_t nr) {
#pragma GCC unroll 16
  for (int t = 0; t < 16; t++)
    sc->d[t] = (size_t)t < nr ? _mm256_cvtph_ps(q4_0_chunk_row_scales(r[t] + off, n_blocks)) : _mm256_setzero_ps();
}

/* qr_q8_chunk_make's result from the scales, by the same operations. */
static inline __attribute__((always_inline)) void qr_q8_unit_make(qr_q8_unit *u, const qr_q8_unit_scales *sc,
                                                                 const qr_q8_group *g) {
  __m256 a[16], m = _mm256_setzero_ps();
#pragma GCC unroll 16
  for (int t = 0; t < 16; t++) {
    a[t] = _mm256_mul_ps(sc->d[t], _mm256_set1_ps(g->c[t]));
    m = _mm256_max_ps(m, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a[t]));
  }
  q8c_chunk_finish(u, a, m, 3);
}

static inline __attribute__((always_inline)) void qr_q8_unit_step(qr_q8_coefs *c, const qr_q8_unit *u, size_t k) {
  qr_q8_chunk_step(c, u, k);
}

#endif /* LZN_KERNELS_X86_Q4_0_AVX2_H */
