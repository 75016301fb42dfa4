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

#include <float.h>
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

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

/* ------------------------------------------------------ axpy_rows_q8 */

/* The int8 path (kernels.h, axpy_rows_q8) with 256-bit vectors, a step
 * being one block (32 columns, 34 bytes a row): the 16 rows' scales times
 * their coefficients made int8 (one max, two 4-lane divisions), each 4
 * rows' int8 weights interleaved to dwords, one int8 dot product per 4 rows
 * and 8 columns (AVX-VNNI: w + 128 from -128 * sum(alpha); without, the
 * sign trick), one convert and one FMA per column and group. Result vector
 * m holds, in its half L, columns 16L + 4m .. 16L + 4m + 3: y is put in
 * that order once per call (vec_interleave4_y_order). */
#define QR_AXPY_Q8_STEP_BLOCKS 1

typedef struct {
  __m256 coef[2];  /* lane t: coef of row 8h + t */
  __m256 rows[2];  /* all-ones in the lanes of rows that exist */
} qr_q8_group;

typedef struct {
  __m256i alpha[4], start; /* rows 4g..4g+3's alphas in every dword of alpha[g] */
  __m256 s;
} qr_q8_coefs;

static inline void qr_q8_group_make(qr_q8_group *g, const float *coef, size_t nr) {
  float c[16] = {0};
  int32_t m[16];
  for (size_t k = 0; k < 16; k++) c[k] = k < nr ? coef[k] : 0.0f, m[k] = k < nr ? -1 : 0;
  for (int h = 0; h < 2; h++) {
    g->coef[h] = _mm256_loadu_ps(c + 8 * h);
    g->rows[h] = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)(m + 8 * h)));
  }
}

static inline void qr_q8_y_order(float *y) { vec_interleave4_y_order(y, LZN_QK); }

/* The step's block scale of rows 8h .. 8h + 7 as fp32, lane t: row 8h + t. */
static inline __attribute__((always_inline)) void q8_0_step_scales(__m256 d[2], const unsigned char *const *r,
                                                                  size_t off) {
#pragma GCC unroll 2
  for (int h = 0; h < 2; h++) {
    const unsigned char *const *q = r + 8 * h;
    uint16_t w[8];
#pragma GCC unroll 8
    for (int t = 0; t < 8; t++) memcpy(&w[t], q[t] + off, sizeof w[t]);
    d[h] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w));
  }
}

/* The step's coefficients from its scales and the group's coef. */
static inline __attribute__((always_inline)) void q8_0_coefs_from_scales(qr_q8_coefs *c, const __m256 d[2],
                                                                        const qr_q8_group *g) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 a[2];
#pragma GCC unroll 2
  for (int h = 0; h < 2; h++) a[h] = _mm256_and_ps(_mm256_mul_ps(d[h], g->coef[h]), g->rows[h]);
  __m256 m = _mm256_max_ps(_mm256_andnot_ps(sign, a[0]), _mm256_andnot_ps(sign, a[1]));
  m = _mm256_max_ps(m, _mm256_permute2f128_ps(m, m, 0x01));
  m = _mm256_max_ps(m, _mm256_permute_ps(m, 0x4e));
  m = _mm256_max_ps(m, _mm256_permute_ps(m, 0xb1));
  const __m128 m1 = _mm256_castps256_ps128(m);
  const __m128 nonzero = _mm_cmpge_ps(m1, _mm_set1_ps(FLT_MIN));
  const __m256 inv = _mm256_broadcastss_ps(_mm_and_ps(_mm_div_ps(_mm_set1_ps(127.0f), m1), nonzero));
  c->s = _mm256_broadcastss_ps(_mm_and_ps(_mm_div_ps(m1, _mm_set1_ps(127.0f)), nonzero));
  /* int16: [rows 0-3, 8-11 | 4-7, 12-15]; int8 the same twice per half:
   * dword 0 of the low half rows 0-3, of the high half 4-7; dword 1 8-11
   * and 12-15. */
  const __m256i w16 = _mm256_packs_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(a[0], inv)), _mm256_cvtps_epi32(_mm256_mul_ps(a[1], inv)));
  const __m256i bytes = _mm256_packs_epi16(w16, w16);
  c->alpha[0] = _mm256_permutevar8x32_epi32(bytes, _mm256_set1_epi32(0));
  c->alpha[1] = _mm256_permutevar8x32_epi32(bytes, _mm256_set1_epi32(4));
  c->alpha[2] = _mm256_permutevar8x32_epi32(bytes, _mm256_set1_epi32(1));
  c->alpha[3] = _mm256_permutevar8x32_epi32(bytes, _mm256_set1_epi32(5));
#if defined(__AVXVNNI__)
  const __m256i ones = _mm256_set1_epi8(1);
  const __m256i alpha_sum =
      vec_dot2_u8s8(vec_dot2_u8s8(_mm256_setzero_si256(), ones, c->alpha[0], ones, c->alpha[1]), ones, c->alpha[2],
                    ones, c->alpha[3]);
  c->start = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(alpha_sum, 7));
#else
  c->start = _mm256_setzero_si256();
#endif
}

static inline __attribute__((always_inline)) void qr_q8_step_coefs(qr_q8_coefs *c, const unsigned char *const *r,
                                                                  size_t off, const qr_q8_group *g) {
  __m256 d[2];
  q8_0_step_scales(d, r, off);
  q8_0_coefs_from_scales(c, d, g);
}

static inline __attribute__((always_inline)) __m256i q8_0_dot4_256(__m256i acc, __m256i w, __m256i alpha) {
#if defined(__AVXVNNI__)
  return _mm256_dpbusd_avx_epi32(acc, _mm256_xor_si256(w, _mm256_set1_epi8((char)0x80)), alpha);
#else
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(alpha, w));
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
#endif
}

/* Rows q[0..4)'s weights of the step at off (its block's 32 bytes, byte 2
 * on), interleaved to dwords (the step's pieces, shared with the
 * many-token form below). */
static inline __attribute__((always_inline)) void q8_0_quad_values(__m256i v[4], const unsigned char *const *q,
                                                                  size_t off) {
#define Q8_0_VALUES(k) _mm256_loadu_si256((const __m256i *)(q[k] + off + 2))
  vec_interleave4_u8(v, Q8_0_VALUES(0), Q8_0_VALUES(1), Q8_0_VALUES(2), Q8_0_VALUES(3));
#undef Q8_0_VALUES
}

static inline __attribute__((always_inline)) void q8_0_step_finish(float *y, const __m256i sum[4], const qr_q8_coefs *c) {
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    float *const yv = y + vec_interleave4_slot[i];
    _mm256_storeu_ps(yv, _mm256_fmadd_ps(c->s, _mm256_cvtepi32_ps(sum[i]), _mm256_loadu_ps(yv)));
  }
}

static inline __attribute__((always_inline)) void qr_q8_step_add(float *y, const unsigned char *const *r, size_t off,
                                                                const qr_q8_coefs *c) {
  __m256i sum[4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) sum[i] = c->start;
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++) {
    __m256i v[4];
    q8_0_quad_values(v, r + 4 * g, off);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) sum[i] = q8_0_dot4_256(sum[i], v[i], c->alpha[g]);
  }
  q8_0_step_finish(y, sum, c);
}

/* ------------------------------------- axpy_rows_q8 for many tokens */

/* The gemm of many tokens (generic/qrows.h, qr_axpy_gemm_q8): a step's
 * interleaved weights (AVX-VNNI: + 128, as vpdpbusd takes them; without
 * it, as they are and their magnitudes, for maddubs) and its scales made
 * once per group of rows for all tokens. */
#define QR_AXPY_Q8_BUFFERED 1
#define QR_Q8_UNIT_STEPS 1

typedef struct {
  __m256i w[4][4]; /* [quad of rows][result vector] */
#if !defined(__AVXVNNI__)
  __m256i abs_w[4][4];
#endif
} qr_q8_step_buf;
typedef struct {
  __m256 d[2];
} qr_q8_unit_scales;
typedef qr_q8_coefs qr_q8_unit;

static inline __attribute__((always_inline)) void qr_q8_step_fill(qr_q8_step_buf *b, const unsigned char *const *r,
                                                                 size_t off) {
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++) {
    __m256i v[4];
    q8_0_quad_values(v, r + 4 * g, off);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
#if defined(__AVXVNNI__)
      _mm256_store_si256(&b->w[g][i], _mm256_xor_si256(v[i], _mm256_set1_epi8((char)0x80)));
#else
      _mm256_store_si256(&b->w[g][i], v[i]);
      _mm256_store_si256(&b->abs_w[g][i], _mm256_sign_epi8(v[i], v[i]));
#endif
    }
  }
}

/* qr_q8_step_add with the step's weights from the buffer. */
static inline __attribute__((always_inline)) void qr_q8_step_add_buf(float *y, const qr_q8_step_buf *b,
                                                                    const qr_q8_coefs *c) {
  __m256i sum[4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) sum[i] = c->start;
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++)
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
#if defined(__AVXVNNI__)
      sum[i] = _mm256_dpbusd_avx_epi32(sum[i], _mm256_load_si256(&b->w[g][i]), c->alpha[g]);
#else
      const __m256i pairs = _mm256_maddubs_epi16(_mm256_load_si256(&b->abs_w[g][i]),
                                                 _mm256_sign_epi8(c->alpha[g], _mm256_load_si256(&b->w[g][i])));
      sum[i] = _mm256_add_epi32(sum[i], _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
#endif
    }
  q8_0_step_finish(y, sum, c);
}

/* A unit is one step: its block's scales (rows past nr are masked by the
 * group's coefficients). */
static inline __attribute__((always_inline)) void qr_q8_unit_scales_make(qr_q8_unit_scales *sc,
                                                                        const unsigned char *const *r, size_t off,
                                                                        size_t n_blocks, size_t nr) {
  (void)n_blocks, (void)nr;
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

#endif /* LZN_KERNELS_X86_Q8_0_AVX2_H */
