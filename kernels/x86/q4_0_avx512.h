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
#include "kernels/x86/q8_chunk_avx512.h"

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
/* The same nibbles with the 8-byte load as the first table and the
 * 64-byte one as the second, which vpermt2w then takes straight from
 * memory: with the 64-byte load as the first table GCC 12 sent each row's
 * load through a stack slot (a store and a reload per row). */
static const uint16_t q4_0_nibble_words_mem[32] = {
    33, 34, 35, 36, 37, 38, 39, 40, 42, 43, 44, 45, 46, 47, 48, 49,
    51, 52, 53, 54, 55, 56, 57, 58, 60, 61, 62, 63, 0,  1,  2,  3};
static inline __attribute__((always_inline)) __m512i q4_0_step_nibbles_mem(const unsigned char *step) {
  const __m512i last8 = _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)(step + 64)));
  return _mm512_permutex2var_epi16(last8, _mm512_loadu_si512(q4_0_nibble_words_mem), _mm512_loadu_si512(step));
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
 * integers: each 4 rows' nibble bytes are interleaved to dwords (8
 * unpacks per 4 rows) so that one vpdpbusd adds 4 rows' products into
 * each column's int32 lane. A byte holds two columns (j and j + 16 of its
 * block): with VNNI the low nibbles' sum D1 and the whole bytes' sum D2
 * give the high nibbles' as (D2 - D1) / 16, exactly, so the high nibbles
 * need no mask and no shift; without VNNI (maddubs would saturate the
 * bytes' 255 * 127 pairs) both are masked out and summed apart. Then per
 * column one convert and one FMA per group of 16 rows, where the fp32 path
 * pays a convert and an FMA per row.
 *
 * The coefficients (coef * d per row and block, rounded to int8 per block)
 * are made 4 steps at a time, one fp32 lane per block (generic/qrows.h,
 * QR_Q8_CHUNK_STEPS): the max over the group's rows is then a lane-wise
 * max, one division serves 16 blocks, and 4 rows' alphas pack into each
 * block's dword by shifts and ors, with no shuffle; each step spreads the
 * chunk's lanes over its own (a vpermd each). Made step by step (a cross-
 * lane max, two divisions and three shuffles per row group each step) they
 * took ~45 % of the kernel's time in L2: the kernel ran 18.8 GB/s, 33 with
 * the coefficients given, 23 with the chunks (AVX512_VNNI, Zen 4).
 *
 * The unpacks leave a step's 128 columns in lanes (block k, byte 4m + i)
 * of 4 result vectors m: y is put in that order once per call (a 4 x 4
 * transpose of 128-bit lanes, its own inverse), so the sums need no
 * shuffle. */
#define QR_AXPY_Q8_STEP_BLOCKS 4
#define QR_Q8_CHUNK_STEPS 4

typedef struct {
  float c[16]; /* coef of row t, 0 for rows past nr */
  size_t nr;
} qr_q8_group;

/* A step's coefficients (x86/q8_chunk_avx512.h): 128-bit lane k of
 * alpha[g] holds rows 4g..4g+3's alphas of block k in every dword; start =
 * -8 * the block's sum of alphas (the nibbles are q + 8); s the block's
 * scale over the lanes of block k. */
typedef q8c_coefs qr_q8_coefs;
typedef q8c_chunk qr_q8_chunk;

/* Lanes 4i..4i+3 = element i: a 4-lane broadcast per 128-bit lane. */
static const int32_t q4_0_lane_quads[16] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};

static inline void qr_q8_group_make(qr_q8_group *g, const float *coef, size_t nr) {
  _mm512_storeu_ps(g->c, _mm512_maskz_loadu_ps((__mmask16)((1u << nr) - 1u), coef));
  g->nr = nr;
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

/* Byte mask of the first n (<= 64) bytes. */
static inline __mmask64 q4_0_first_bytes(size_t n) {
  return n >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << n) - 1u;
}

/* Words j = 0..7 of the pair (bytes 64..127, bytes 0..63): word 9j of the
 * 128 bytes (block j's scale, blocks 18 bytes apart), the index's bit 5
 * choosing the second table; words 8..15 the same of the pair 144 bytes on. */
static const uint16_t q4_0_chunk_scale_words[32] = {32, 41, 50, 59, 4, 13, 22, 31, 32, 41, 50, 59, 4, 13, 22, 31,
                                                    0,  0,  0,  0,  0, 0,  0,  0,  0,  0,  0,  0,  0, 0,  0,  0};

/* The byte masks that read a chunk's first n_blocks blocks (1 <= n_blocks
 * <= 16) of a row and no byte past them: its bytes 0-63, 64-127, 144-207
 * and 208-271. */
typedef struct {
  __mmask64 m[4];
} q4_0_chunk_masks;

static inline __attribute__((always_inline)) q4_0_chunk_masks q4_0_chunk_masks_make(size_t n_blocks) {
  const size_t bytes = n_blocks * QR_BLOCK_BYTES;
  return (q4_0_chunk_masks){{q4_0_first_bytes(bytes), q4_0_first_bytes(bytes > 64 ? bytes - 64 : 0),
                             q4_0_first_bytes(bytes > 144 ? bytes - 144 : 0),
                             q4_0_first_bytes(bytes > 208 ? bytes - 208 : 0)}};
}

/* The chunk's 16 fp16 block scales of the row at q (word b: block b; 0
 * past the masks' blocks). Each pair's second 64 bytes as the first table
 * (the permute overwrites it): where a load is a plain one (m[0], in whole
 * chunks) GCC 12 sent it through a stack slot as the first table. */
static inline __attribute__((always_inline)) __m256i q4_0_chunk_row_scales(const unsigned char *q,
                                                                          const q4_0_chunk_masks *k) {
  const __m512i words = _mm512_loadu_si512(q4_0_chunk_scale_words);
  const __m512i lo =
      _mm512_permutex2var_epi16(_mm512_maskz_loadu_epi8(k->m[1], q + 64), words, _mm512_maskz_loadu_epi8(k->m[0], q));
  const __m512i hi = _mm512_permutex2var_epi16(_mm512_maskz_loadu_epi8(k->m[3], q + 208), words,
                                               _mm512_maskz_loadu_epi8(k->m[2], q + 144));
  return _mm512_castsi512_si256(_mm512_mask_blend_epi16(0xff00u, lo, hi));
}

/* Blocks [0, n_blocks) of the chunk at byte off of the group's rows,
 * 1 <= n_blocks <= 16: masked loads read no byte of a row past its
 * n_blocks blocks (lanes past them are 0). kernels.h's rule, operation for
 * operation: a = coef * d, m = max |a| over the rows, alpha = rint(a * (127
 * / m)), s = m / 127 (0 where m < FLT_MIN). */
static inline __attribute__((always_inline)) void qr_q8_chunk_make(qr_q8_chunk *ch, const unsigned char *const *r,
                                                                  size_t off, size_t n_blocks, const qr_q8_group *g) {
  const q4_0_chunk_masks masks = q4_0_chunk_masks_make(n_blocks);
  __m512 a[16], m = _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int t = 0; t < 16; t++) {
    if ((size_t)t >= g->nr) {
      a[t] = _mm512_setzero_ps();
      continue;
    }
    q8c_products(&a[t], &m, q4_0_chunk_row_scales(r[t] + off, &masks), g->c[t]);
  }
  q8c_chunk_finish(ch, a, m, 3);
}

/* Step k of the chunk (its blocks 4k..4k+3) in the step's lanes. */
static inline __attribute__((always_inline)) void qr_q8_chunk_step(qr_q8_coefs *c, const qr_q8_chunk *ch, size_t k) {
  q8c_spread(c, ch, _mm512_add_epi32(_mm512_loadu_si512(q4_0_lane_quads), _mm512_set1_epi32((int)(4 * k))));
}

/* The step's pieces, shared with the many-token form below. */

/* Rows q[0..4)'s nibbles of the step at off, interleaved to dwords. */
static inline __attribute__((always_inline)) void q4_0_quad_nibbles(__m512i v[4], const unsigned char *const *q,
                                                                   size_t off) {
  vec_interleave4_u8(v, q4_0_step_nibbles_mem(q[0] + off), q4_0_step_nibbles_mem(q[1] + off),
                     q4_0_step_nibbles_mem(q[2] + off), q4_0_step_nibbles_mem(q[3] + off));
}

/* What the dot products take of rows q[0..4)'s nibbles of the step at off,
 * interleaved (q4_0_quad_nibbles): per result vector the low nibbles, and
 * (VNNI) the whole bytes or (without) the high nibbles. */
static inline __attribute__((always_inline)) void q4_0_quad_operands(__m512i low[4], __m512i other[4],
                                                                    const unsigned char *const *q, size_t off) {
  __m512i v[4];
  q4_0_quad_nibbles(v, q, off);
  const __m512i low4 = _mm512_set1_epi8(0x0f);
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    low[i] = _mm512_and_si512(v[i], low4);
#if defined(__AVX512VNNI__)
    other[i] = v[i];
#else
    other[i] = _mm512_and_si512(_mm512_srli_epi16(v[i], 4), low4);
#endif
  }
}

/* lo / hi: column lanes of a result vector, the low nibbles' and (VNNI)
 * whole bytes' sums; without VNNI hi the high nibbles'. Whole bytes (16 *
 * high + low) start from -136 * sum: hi - lo = 16 * (the high nibbles' sum
 * - 8 * sum). */
static inline __attribute__((always_inline)) void q4_0_step_start(__m512i lo[4], __m512i hi[4], const qr_q8_coefs *c) {
#if defined(__AVX512VNNI__)
  const __m512i start_hi = _mm512_add_epi32(_mm512_slli_epi32(c->start, 4), c->start);
#else
  const __m512i start_hi = c->start;
#endif
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) lo[i] = c->start, hi[i] = start_hi;
}

static inline __attribute__((always_inline)) void q4_0_dot_pair(__m512i *lo, __m512i *hi, __m512i low, __m512i other,
                                                               __m512i alpha) {
#if defined(__AVX512VNNI__)
  *lo = _mm512_dpbusd_epi32(*lo, low, alpha);
  *hi = _mm512_dpbusd_epi32(*hi, other, alpha);
#else
  /* maddubs pairs of nibbles (<= 15) times alphas: within int16. */
  const __m512i ones16 = _mm512_set1_epi16(1);
  *lo = _mm512_add_epi32(*lo, _mm512_madd_epi16(_mm512_maddubs_epi16(low, alpha), ones16));
  *hi = _mm512_add_epi32(*hi, _mm512_madd_epi16(_mm512_maddubs_epi16(other, alpha), ones16));
#endif
}

static inline __attribute__((always_inline)) void q4_0_step_finish(float *y, const __m512i lo[4], const __m512i hi[4],
                                                                  const qr_q8_coefs *c) {
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

static inline __attribute__((always_inline)) void qr_q8_step_add(float *y, const unsigned char *const *r, size_t off,
                                                                const qr_q8_coefs *c) {
  __m512i lo[4], hi[4];
  q4_0_step_start(lo, hi, c);
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++) {
    __m512i low[4], other[4];
    q4_0_quad_operands(low, other, r + 4 * g, off);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) q4_0_dot_pair(&lo[i], &hi[i], low[i], other[i], c->alpha[g]);
  }
  q4_0_step_finish(y, lo, hi, c);
}

#if defined(__AVX512VNNI__)
/* ------------------------------------- axpy_rows_q8 for many tokens */

/* The gemm of many tokens (generic/qrows.h, qr_axpy_gemm_q8): a step's
 * interleaved nibbles depend on the rows alone, and the chunk's block
 * scales too, so they are made once per group of rows and kept (the
 * nibbles in a buffer in L1), and every token then pays only its own
 * coefficients and its int8 products. In qr_q8_step_add the word permutes
 * and unpacks of 16 rows' nibbles cost more than the 32 vpdpbusd that use
 * them. */
#define QR_AXPY_Q8_BUFFERED 1

typedef struct {
  __m512i low[4][4], other[4][4]; /* [quad of rows][result vector]: q4_0_quad_operands */
} qr_q8_step_buf;

static inline __attribute__((always_inline)) void qr_q8_step_fill(qr_q8_step_buf *b, const unsigned char *const *r,
                                                                 size_t off) {
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++) q4_0_quad_operands(b->low[g], b->other[g], r + 4 * g, off);
}

/* qr_q8_step_add with the step's nibbles from the buffer. */
static inline __attribute__((always_inline)) void qr_q8_step_add_buf(float *y, const qr_q8_step_buf *b,
                                                                    const qr_q8_coefs *c) {
  __m512i lo[4], hi[4];
  q4_0_step_start(lo, hi, c);
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++)
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
      q4_0_dot_pair(&lo[i], &hi[i], _mm512_load_si512(&b->low[g][i]), _mm512_load_si512(&b->other[g][i]), c->alpha[g]);
  q4_0_step_finish(y, lo, hi, c);
}

/* The coefficients come a chunk of steps at a time (the unit of
 * qr_axpy_gemm_q8): the chunk's block scales of the group's rows, shared
 * by the tokens, then each token's chunk from them. */
#define QR_Q8_UNIT_STEPS QR_Q8_CHUNK_STEPS
typedef struct {
  __m512 d[16]; /* row t's scales as fp32, lane b: block b (0 past n_blocks and for rows past nr) */
} qr_q8_unit_scales;
typedef qr_q8_chunk qr_q8_unit;

/* Read as qr_q8_chunk_make reads them. */
static inline __attribute__((always_inline)) void qr_q8_unit_scales_make(qr_q8_unit_scales *sc,
                                                                        const unsigned char *const *r, size_t off,
                                                                        size_t n_blocks, size_t nr) {
  const q4_0_chunk_masks masks = q4_0_chunk_masks_make(n_blocks);
#pragma GCC unroll 16
  for (int t = 0; t < 16; t++)
    sc->d[t] = (size_t)t < nr ? _mm512_cvtph_ps(q4_0_chunk_row_scales(r[t] + off, &masks)) : _mm512_setzero_ps();
}

/* qr_q8_chunk_make's result from the scales: the same operations (coef *
 * d, the max of the magnitudes, kernels.h's rounding). */
static inline __attribute__((always_inline)) void qr_q8_unit_make(qr_q8_unit *u, const qr_q8_unit_scales *sc,
                                                                 const qr_q8_group *g) {
  __m512 a[16], m = _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int t = 0; t < 16; t++) {
    a[t] = _mm512_mul_ps(sc->d[t], _mm512_set1_ps(g->c[t]));
    m = _mm512_max_ps(m, _mm512_abs_ps(a[t]));
  }
  q8c_chunk_finish(u, a, m, 3);
}

static inline __attribute__((always_inline)) void qr_q8_unit_step(qr_q8_coefs *c, const qr_q8_unit *u, size_t k) {
  qr_q8_chunk_step(c, u, k);
}
#endif /* __AVX512VNNI__ */

#endif /* LZN_KERNELS_X86_Q4_0_AVX512_H */
