/*
 * x86/q4_0_avx512.h: Q4_0's steps for the block skeleton (generic/qrows.h)
 * with 512-bit vectors (AVX-512 F/BW/VL/DQ, and VNNI where the including
 * file is compiled for it): what avx512/q4_0.c and avx512vnni/q4_0.c
 * share. Include x86/vec_avx512.h first. Specification in ref/q4_0.c.
 *
 * dot (x in Q8_0): a step is 4 blocks, 128 weights in 72 bytes, one zmm of
 * nibbles. The 4 blocks' 16 bytes of nibbles sit at even offsets (2, 20,
 * 38, 56), so one two-source word permute of the step's first 64 bytes and
 * its last 8 gathers them, and a one-source word permute of the first 64
 * spreads the 4 fp16 scales over the lanes of their blocks: per step and
 * row 2 loads, 2 permutes, 3 integer ops for
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

#include <float.h>
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
 * two-source permute of the step's bytes 0-63 (words 0-31) and 64-71
 * (words 32-35). */
static const uint16_t q4_0_nibble_words[32] = {
    1,  2,  3,  4,  5,  6,  7,  8,  10, 11, 12, 13, 14, 15, 16, 17,
    19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 30, 31, 32, 33, 34, 35};

/* The step's 64 nibble bytes from its first 64 bytes (a, in a register)
 * and its last 8, which an 8-byte load brings: a second 64-byte load
 * would cross a cache line, and on Zen 5 such a load takes two of the
 * load slots (0.86 a cycle, against 1.8 for aligned ones). */
static inline __attribute__((always_inline)) __m512i q4_0_step_nibbles(__m512i a, const unsigned char *step) {
  const __m512i last8 = _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)(step + 64)));
  return _mm512_permutex2var_epi16(a, _mm512_loadu_si512(q4_0_nibble_words), last8);
}
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
  /* Written out: the insert's lane must be an immediate, and at -O1 (the
   * sanitizer builds) a loop over it is not unrolled. */
#define Q4_0_X_QUARTERS(at)                                                                     \
  _mm512_inserti32x4(                                                                           \
      _mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(x[0].qs + (at)))), \
                                            _mm_loadu_si128((const __m128i *)(x[1].qs + (at))), 1),                 \
                         _mm_loadu_si128((const __m128i *)(x[2].qs + (at))), 2),                                     \
      _mm_loadu_si128((const __m128i *)(x[3].qs + (at))), 3)
  const __m512i lo = Q4_0_X_QUARTERS(0), hi = Q4_0_X_QUARTERS(16);
#undef Q4_0_X_QUARTERS
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
  const __m512i scale_words = _mm512_loadu_si512(q4_0_scale_words);
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  __m512i a = _mm512_loadu_si512(w);
  /* In a register: GCC would load the same bytes again as vpermw's memory
   * operand (a second load across a cache line). */
  __asm__("" : "+v"(a));
  const __m512i q = q4_0_step_nibbles(a, w);
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

/* ------------------------------------------------------ axpy_rows_q8 */

/* The int8 path (kernels.h, axpy_rows_q8) sums a group's 16 rows in
 * integers: per step of 4 blocks the 16 rows' 64 coefficient * scale
 * products are made int8 per block (one max over the rows, two 4-lane
 * divisions, converts; 4 zmm for all 64), then each 4 rows' nibble bytes
 * are interleaved to dwords (8 unpacks per 4 rows) so that one vpdpbusd
 * adds 4 rows' products into each column's int32 lane. A byte holds two
 * columns (j and j + 16 of its block): with VNNI the low nibbles' sum D1
 * and the whole bytes' sum D2 give the high nibbles' as (D2 - D1) / 16,
 * exactly, so the high nibbles need no mask and no shift; without VNNI
 * (maddubs would saturate the bytes' 255 * 127 pairs) both are masked out
 * and summed apart. Then per column one convert and one FMA per group of
 * 16 rows, where the fp32 path pays a convert and an FMA per row.
 *
 * The unpacks leave a step's 128 columns in lanes (block k, byte 4m + i)
 * of 4 result vectors m: y is put in that order once per call (a 4 x 4
 * transpose of 128-bit lanes, its own inverse), so the sums need no
 * shuffle. */
#define QR_AXPY_Q8_STEP_BLOCKS 4

typedef struct {
  __m512 coef[4];      /* lanes 4t + k: coef of row 4g + t, g = 0..3 */
  __mmask16 rows[4];   /* the lanes of rows that exist */
} qr_q8_group;

/* A step's int8 coefficients for a group: 128-bit lane k of alpha[g]
 * holds rows 4g..4g+3's alphas of block k in every dword; start = -8 *
 * the block's sum of alphas (the nibbles are q + 8); s the block's scale
 * over the lanes of block k. */
typedef struct {
  __m512i alpha[4], start;
  __m512 s;
} qr_q8_coefs;

/* Lanes 4i..4i+3 = element i (+ 4g): a 4-lane broadcast per 128-bit lane. */
static const int32_t q4_0_lane_quads[4][16] = {{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3},
                                               {4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7},
                                               {8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11},
                                               {12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15}};
/* Bytes 4t + k (row t, block k) to dword k = rows 0-3 of block k. */
static const int8_t q4_0_by_block[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
/* Words 4t + k of the pair (a, b) = block k's scale of row t = 0 (in a), 1
 * (in b); the other words are not used. */
static const uint16_t q4_0_pair_scale_words[32] = {0, 9, 18, 27, 32, 41, 50, 59, 0, 0, 0, 0, 0, 0, 0, 0,
                                                   0, 0, 0, 0, 0, 0, 0, 0,  0,  0,  0,  0,  0, 0, 0, 0};

static inline void qr_q8_group_make(qr_q8_group *g, const float *coef, size_t nr) {
  const __m512 c = _mm512_maskz_loadu_ps((__mmask16)((1u << nr) - 1u), coef);
  for (int i = 0; i < 4; i++) {
    g->coef[i] = _mm512_permutexvar_ps(_mm512_loadu_si512(q4_0_lane_quads[i]), c);
    const size_t in = nr > 4u * (size_t)i ? nr - 4u * (size_t)i : 0;
    g->rows[i] = (__mmask16)(in >= 4 ? 0xffffu : (1u << (4 * in)) - 1u);
  }
}

/* y[32k + h + 4m + i] <-> y[32m + h + 4k + i] for h = 0, 16: the low
 * columns of block k at lane m of y[32k..], the step's lane k of vector m. */
static inline void qr_q8_y_order(float *y) {
  for (int h = 0; h < 32; h += 16) {
    __m512 a = _mm512_loadu_ps(y + h), b = _mm512_loadu_ps(y + 32 + h);
    __m512 c = _mm512_loadu_ps(y + 64 + h), d = _mm512_loadu_ps(y + 96 + h);
    vec_transpose_lanes4(&a, &b, &c, &d);
    _mm512_storeu_ps(y + h, a), _mm512_storeu_ps(y + 32 + h, b);
    _mm512_storeu_ps(y + 64 + h, c), _mm512_storeu_ps(y + 96 + h, d);
  }
}

static inline __attribute__((always_inline)) void qr_q8_step_coefs(qr_q8_coefs *c, const unsigned char *const *r,
                                                                  size_t off, const qr_q8_group *g) {
  const __m512i pair_words = _mm512_loadu_si512(q4_0_pair_scale_words);
  const __m512i lane_quads = _mm512_loadu_si512(q4_0_lane_quads[0]);
  const __m128i by_block = _mm_loadu_si128((const __m128i *)q4_0_by_block);
  /* a = coef * d per (row, block), rows 4i.. in a[i]; m = the largest |a|
   * of each block. The scales of two rows by one permute. */
  __m512 a[4], m = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    const unsigned char *const *q = r + 4 * i;
    const __m512i p01 = _mm512_permutex2var_epi16(_mm512_loadu_si512(q[0] + off), pair_words, _mm512_loadu_si512(q[1] + off));
    const __m512i p23 = _mm512_permutex2var_epi16(_mm512_loadu_si512(q[2] + off), pair_words, _mm512_loadu_si512(q[3] + off));
    const __m512i words = _mm512_inserti32x4(p01, _mm512_castsi512_si128(p23), 1);
    a[i] = _mm512_maskz_mul_ps(g->rows[i], _mm512_cvtph_ps(_mm512_castsi512_si256(words)), g->coef[i]);
    m = _mm512_max_ps(m, _mm512_abs_ps(a[i]));
  }
  m = _mm512_max_ps(m, _mm512_shuffle_f32x4(m, m, 0x4e));
  m = _mm512_max_ps(m, _mm512_shuffle_f32x4(m, m, 0xb1));
  /* Lanes 0-3 hold the 4 blocks' m: divide there only (a 16-lane division
   * takes the divider several times as long), then spread. */
  const __m128 m4 = _mm512_castps512_ps128(m);
  const __mmask8 nonzero = _mm_cmp_ps_mask(m4, _mm_set1_ps(FLT_MIN), _CMP_GE_OQ);
  const __m512 inv = _mm512_broadcast_f32x4(_mm_maskz_div_ps(nonzero, _mm_set1_ps(127.0f), m4));
  c->s = _mm512_permutexvar_ps(lane_quads, _mm512_castps128_ps512(_mm_maskz_div_ps(nonzero, m4, _mm_set1_ps(127.0f))));
  __m512i alpha_sum = _mm512_setzero_si512();
  const __m512i ones = _mm512_set1_epi8(1);
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    const __m128i alpha = _mm_shuffle_epi8(_mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(a[i], inv))), by_block);
    c->alpha[i] = _mm512_permutexvar_epi32(lane_quads, _mm512_castsi128_si512(alpha));
  }
  alpha_sum = vec_dot2_u8s8(vec_dot2_u8s8(alpha_sum, ones, c->alpha[0], ones, c->alpha[1]), ones, c->alpha[2], ones,
                            c->alpha[3]);
  c->start = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(alpha_sum, 3));
}

static inline __attribute__((always_inline)) void qr_q8_step_add(float *y, const unsigned char *const *r, size_t off,
                                                                const qr_q8_coefs *c) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  /* lo[i] / whole[i]: column lanes of result vector i, low nibbles' and
   * (VNNI) whole bytes' sums; without VNNI hi[i] the high nibbles'. */
  __m512i lo[4], hi[4];
#if defined(__AVX512VNNI__)
  /* Whole bytes (16 * high + low) from -136 * sum: hi - lo = 16 * (the high
   * nibbles' sum - 8 * sum). */
  const __m512i start_whole = _mm512_add_epi32(_mm512_slli_epi32(c->start, 4), c->start);
#endif
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    lo[i] = c->start;
#if defined(__AVX512VNNI__)
    hi[i] = start_whole;
#else
    hi[i] = c->start;
#endif
  }
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++) {
    const unsigned char *const *q = r + 4 * g;
#define Q4_0_NIBBLES(k) q4_0_step_nibbles(_mm512_loadu_si512(q[k] + off), q[k] + off)
    __m512i v[4];
    vec_interleave4_u8(v, Q4_0_NIBBLES(0), Q4_0_NIBBLES(1), Q4_0_NIBBLES(2), Q4_0_NIBBLES(3));
#undef Q4_0_NIBBLES
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
#if defined(__AVX512VNNI__)
      lo[i] = _mm512_dpbusd_epi32(lo[i], _mm512_and_si512(v[i], low4), c->alpha[g]);
      hi[i] = _mm512_dpbusd_epi32(hi[i], v[i], c->alpha[g]);
#else
      /* maddubs pairs of nibbles (<= 15) times alphas: within int16. */
      const __m512i ones16 = _mm512_set1_epi16(1);
      lo[i] = _mm512_add_epi32(lo[i], _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_and_si512(v[i], low4), c->alpha[g]), ones16));
      hi[i] = _mm512_add_epi32(
          hi[i], _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_and_si512(_mm512_srli_epi16(v[i], 4), low4), c->alpha[g]),
                                   ones16));
#endif
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
#if defined(__AVX512VNNI__)
    const __m512i high = _mm512_srai_epi32(_mm512_sub_epi32(hi[i], lo[i]), 4);
#else
    const __m512i high = hi[i];
#endif
    float *const y_lo = y + 32 * i, *const y_hi = y + 32 * i + 16;
    _mm512_storeu_ps(y_lo, _mm512_fmadd_ps(c->s, _mm512_cvtepi32_ps(lo[i]), _mm512_loadu_ps(y_lo)));
    _mm512_storeu_ps(y_hi, _mm512_fmadd_ps(c->s, _mm512_cvtepi32_ps(high), _mm512_loadu_ps(y_hi)));
  }
}

#endif /* LZN_KERNELS_X86_Q4_0_AVX512_H */
