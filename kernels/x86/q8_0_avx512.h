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

#include <float.h>
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

/* ------------------------------------------------------ axpy_rows_q8 */

/* The int8 path (kernels.h, axpy_rows_q8), as x86/q4_0_avx512.h does it
 * for Q4_0, on steps of 2 blocks (64 columns): the 16 rows' 32
 * coefficient * scale products made int8 per block, each 4 rows' int8
 * weights interleaved to dwords (8 unpacks per 4 rows), one int8 dot
 * product per 4 rows and 16 columns. vpdpbusd wants unsigned weights: with
 * VNNI they go in as w + 128 (one xor) and each sum starts from -128 *
 * sum(alpha); without, |w| times alpha with w's sign (maddubs pairs at
 * most 2 * 128 * 127 < 2^15). y is put in the sums' order once per call:
 * the same 4 x 4 transpose of 128-bit lanes. */
#define QR_AXPY_Q8_STEP_BLOCKS 2

typedef struct {
  __m512 coef[2];     /* lanes 2t + k: coef of row 8h + t, h = 0, 1 */
  __mmask16 rows[2];  /* the lanes of rows that exist */
} qr_q8_group;

typedef struct {
  __m512i alpha[4]; /* 128-bit lane L: rows 4g..4g+3's alphas of block L / 2 in every dword */
  __m512i start;    /* VNNI: -128 * the block's sum of alphas; else 0 */
  __m512 s;         /* the block's scale over its lanes */
} qr_q8_coefs;

/* Lane i = element i / 2 (+ 8h). */
static const int32_t q8_0_lane_pairs[2][16] = {{0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7},
                                               {8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15}};
/* Lane i = element i % 2. */
static const int32_t q8_0_lane_parity[16] = {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1};
/* Lane i = element i / 8, and element 2 + i / 8. */
static const int32_t q8_0_lane_halves[2][16] = {{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
                                                {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3}};
/* Words 0-3 of the pair (a, b): the two scales of row a (words 0 and 17),
 * then of row b. */
static const uint16_t q8_0_pair_scale_words[32] = {0, 17, 32, 49, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                   0, 0,  0,  0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
/* Bytes 2t + k (row t, block k) to dwords [rows 0-3 of block 0, of block
 * 1, rows 4-7 of block 0, of block 1]. */
static const int8_t q8_0_by_block[16] = {0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15};

static inline void qr_q8_group_make(qr_q8_group *g, const float *coef, size_t nr) {
  const __m512 c = _mm512_maskz_loadu_ps((__mmask16)((1u << nr) - 1u), coef);
  for (int h = 0; h < 2; h++) {
    g->coef[h] = _mm512_permutexvar_ps(_mm512_loadu_si512(q8_0_lane_pairs[h]), c);
    const size_t in = nr > 8u * (size_t)h ? nr - 8u * (size_t)h : 0;
    g->rows[h] = (__mmask16)(in >= 8 ? 0xffffu : (1u << (2 * in)) - 1u);
  }
}

/* y[16L + 4m + i] <-> y[16m + 4L + i]: lane m of y[16L..] to lane L of
 * the step's vector m. */
static inline void qr_q8_y_order(float *y) {
  __m512 a = _mm512_loadu_ps(y), b = _mm512_loadu_ps(y + 16), c = _mm512_loadu_ps(y + 32), d = _mm512_loadu_ps(y + 48);
  const __m512 t0 = _mm512_shuffle_f32x4(a, b, 0x44), t1 = _mm512_shuffle_f32x4(a, b, 0xee);
  const __m512 t2 = _mm512_shuffle_f32x4(c, d, 0x44), t3 = _mm512_shuffle_f32x4(c, d, 0xee);
  _mm512_storeu_ps(y, _mm512_shuffle_f32x4(t0, t2, 0x88));
  _mm512_storeu_ps(y + 16, _mm512_shuffle_f32x4(t0, t2, 0xdd));
  _mm512_storeu_ps(y + 32, _mm512_shuffle_f32x4(t1, t3, 0x88));
  _mm512_storeu_ps(y + 48, _mm512_shuffle_f32x4(t1, t3, 0xdd));
}

/* The step's 32 block scales as fp32, lanes 2t + k of d[h]: block k of
 * row 8h + t (the group's rows as qr_q8_step_coefs reads them). */
static inline __attribute__((always_inline)) void q8_0_step_scales(__m512 d[2], const unsigned char *const *r,
                                                                  size_t off) {
  const __m512i pair_words = _mm512_loadu_si512(q8_0_pair_scale_words);
#pragma GCC unroll 2
  for (int h = 0; h < 2; h++) {
    const unsigned char *const *q = r + 8 * h;
#define Q8_0_PAIR(k) \
  _mm512_permutex2var_epi16(_mm512_loadu_si512(q[k] + off), pair_words, _mm512_loadu_si512(q[(k) + 1] + off))
    /* Word 2t + k = block k's scale of row 8h + t. */
    const __m512i words = _mm512_inserti32x4(_mm512_unpacklo_epi64(Q8_0_PAIR(0), Q8_0_PAIR(2)),
                                             _mm512_castsi512_si128(_mm512_unpacklo_epi64(Q8_0_PAIR(4), Q8_0_PAIR(6))), 1);
#undef Q8_0_PAIR
    d[h] = _mm512_cvtph_ps(_mm512_castsi512_si256(words));
  }
}

/* The step's coefficients from its scales and the group's coef. */
static inline __attribute__((always_inline)) void q8_0_coefs_from_scales(qr_q8_coefs *c, const __m512 d[2],
                                                                        const qr_q8_group *g) {
  const __m128i by_block = _mm_loadu_si128((const __m128i *)q8_0_by_block);
  __m512 a[2], m = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int h = 0; h < 2; h++) {
    a[h] = _mm512_maskz_mul_ps(g->rows[h], d[h], g->coef[h]);
    m = _mm512_max_ps(m, _mm512_abs_ps(a[h]));
  }
  m = _mm512_max_ps(m, _mm512_permute_ps(m, 0x4e));        /* lanes ^ 2 */
  m = _mm512_max_ps(m, _mm512_shuffle_f32x4(m, m, 0xb1)); /* ^ 4 */
  m = _mm512_max_ps(m, _mm512_shuffle_f32x4(m, m, 0x4e)); /* ^ 8 */
  /* Lanes 0-1 hold the 2 blocks' m: divide there only, then spread. */
  const __m128 m4 = _mm512_castps512_ps128(m);
  const __mmask8 nonzero = _mm_cmp_ps_mask(m4, _mm_set1_ps(FLT_MIN), _CMP_GE_OQ);
  const __m512 inv = _mm512_permutexvar_ps(_mm512_loadu_si512(q8_0_lane_parity),
                                           _mm512_castps128_ps512(_mm_maskz_div_ps(nonzero, _mm_set1_ps(127.0f), m4)));
  const __m512i halves0 = _mm512_loadu_si512(q8_0_lane_halves[0]), halves1 = _mm512_loadu_si512(q8_0_lane_halves[1]);
  c->s = _mm512_permutexvar_ps(halves0, _mm512_castps128_ps512(_mm_maskz_div_ps(nonzero, m4, _mm_set1_ps(127.0f))));
#pragma GCC unroll 2
  for (int h = 0; h < 2; h++) {
    const __m128i alpha = _mm_shuffle_epi8(_mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(a[h], inv))), by_block);
    c->alpha[2 * h] = _mm512_permutexvar_epi32(halves0, _mm512_castsi128_si512(alpha));
    c->alpha[2 * h + 1] = _mm512_permutexvar_epi32(halves1, _mm512_castsi128_si512(alpha));
  }
#if defined(__AVX512VNNI__)
  const __m512i ones = _mm512_set1_epi8(1);
  const __m512i alpha_sum =
      vec_dot2_u8s8(vec_dot2_u8s8(_mm512_setzero_si512(), ones, c->alpha[0], ones, c->alpha[1]), ones, c->alpha[2],
                    ones, c->alpha[3]);
  c->start = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(alpha_sum, 7));
#else
  c->start = _mm512_setzero_si512();
#endif
}

static inline __attribute__((always_inline)) void qr_q8_step_coefs(qr_q8_coefs *c, const unsigned char *const *r,
                                                                  size_t off, const qr_q8_group *g) {
  __m512 d[2];
  q8_0_step_scales(d, r, off);
  q8_0_coefs_from_scales(c, d, g);
}

/* acc + the 4 rows' int8 weights w (interleaved) times their alphas. */
static inline __attribute__((always_inline)) __m512i q8_0_dot4(__m512i acc, __m512i w, __m512i alpha) {
#if defined(__AVX512VNNI__)
  return _mm512_dpbusd_epi32(acc, _mm512_xor_si512(w, _mm512_set1_epi8((char)0x80)), alpha);
#else
  const __m512i alpha_signed = _mm512_mask_sub_epi8(alpha, _mm512_movepi8_mask(w), _mm512_setzero_si512(), alpha);
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_abs_epi8(w), alpha_signed),
                                                 _mm512_set1_epi16(1)));
#endif
}

/* Rows q[0..4)'s weights of the step at off, interleaved to dwords (the
 * step's pieces, shared with the many-token form below). */
static inline __attribute__((always_inline)) void q8_0_quad_values(__m512i v[4], const unsigned char *const *q,
                                                                  size_t off) {
  vec_interleave4_u8(v, q8_0_values_pair(q[0] + off), q8_0_values_pair(q[1] + off), q8_0_values_pair(q[2] + off),
                     q8_0_values_pair(q[3] + off));
}

static inline __attribute__((always_inline)) void q8_0_step_finish(float *y, const __m512i sum[4], const qr_q8_coefs *c) {
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++)
    _mm512_storeu_ps(y + 16 * i, _mm512_fmadd_ps(c->s, _mm512_cvtepi32_ps(sum[i]), _mm512_loadu_ps(y + 16 * i)));
}

static inline __attribute__((always_inline)) void qr_q8_step_add(float *y, const unsigned char *const *r, size_t off,
                                                                const qr_q8_coefs *c) {
  __m512i sum[4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) sum[i] = c->start;
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++) {
    __m512i v[4];
    q8_0_quad_values(v, r + 4 * g, off);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) sum[i] = q8_0_dot4(sum[i], v[i], c->alpha[g]);
  }
  q8_0_step_finish(y, sum, c);
}

#if defined(__AVX512VNNI__)
/* ------------------------------------- axpy_rows_q8 for many tokens */

/* The gemm of many tokens (generic/qrows.h, qr_axpy_gemm_q8): a step's
 * interleaved weights (as vpdpbusd takes them, w + 128) and its scales
 * depend on the rows alone, so they are made once per group of rows and
 * every token then pays only its own coefficients and its int8 products. */
#define QR_AXPY_Q8_BUFFERED 1
#define QR_Q8_UNIT_STEPS 1

typedef struct {
  __m512i w[4][4]; /* [quad of rows][result vector]: the weights + 128 */
} qr_q8_step_buf;
typedef struct {
  __m512 d[2];
} qr_q8_unit_scales;
typedef qr_q8_coefs qr_q8_unit;

static inline __attribute__((always_inline)) void qr_q8_step_fill(qr_q8_step_buf *b, const unsigned char *const *r,
                                                                 size_t off) {
  const __m512i flip = _mm512_set1_epi8((char)0x80);
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++) {
    __m512i v[4];
    q8_0_quad_values(v, r + 4 * g, off);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) _mm512_store_si512(&b->w[g][i], _mm512_xor_si512(v[i], flip));
  }
}

static inline __attribute__((always_inline)) void qr_q8_step_add_buf(float *y, const qr_q8_step_buf *b,
                                                                    const qr_q8_coefs *c) {
  __m512i sum[4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) sum[i] = c->start;
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++)
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) sum[i] = _mm512_dpbusd_epi32(sum[i], _mm512_load_si512(&b->w[g][i]), c->alpha[g]);
  q8_0_step_finish(y, sum, c);
}

/* A unit is one step: its 2 blocks' scales (whole steps only). */
static inline __attribute__((always_inline)) void qr_q8_unit_scales_make(qr_q8_unit_scales *sc,
                                                                        const unsigned char *const *r, size_t off,
                                                                        size_t n_blocks, size_t nr) {
  (void)n_blocks, (void)nr; /* rows past nr are masked by the group's coefficients */
  q8_0_step_scales(sc->d, r, off);
}

static inline __attribute__((always_inline)) void qr_q8_unit_make(qr_q8_unit *u, const qr_q8_unit_scales *sc,
                                                                 const qr_q8_group *g) {
  q8_0_coefs_from_scales(u, sc->d, g);
}

static inline __attribute__((always_inline)) void qr_q8_unit_step(qr_q8_coefs *c, const qr_q8_unit *u, size_t k) {
  (void)k;
  *c = *u;
}
#endif /* __AVX512VNNI__ */

#endif /* LZN_KERNELS_X86_Q8_0_AVX512_H */
