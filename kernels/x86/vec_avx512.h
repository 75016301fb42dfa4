/*
 * x86/vec_avx512.h: the fp32 vector primitives of AVX-512 (F, BW, VL, DQ)
 * that the row skeletons (generic/rows.h, generic/qrows.h) are written in,
 * and row_prefetch (x86/prefetch.h). Included only by files compiled with
 * those flags (the kernels/avx512 folders); static inline, so each file keeps its
 * own copy.
 */
#ifndef LZN_KERNELS_X86_VEC_AVX512_H
#define LZN_KERNELS_X86_VEC_AVX512_H

#include <immintrin.h>
#include <stdint.h>

#include "kernels/x86/prefetch.h"

typedef __m512 vec_f32;
#define VEC_LANES 16

/* Lanes [0, k) of the vector at the end of a row, 1 <= k <= 16. */
typedef __mmask16 vec_tail;

static inline vec_tail vec_tail_make(size_t lanes) {
  return lanes >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << lanes) - 1u);
}

static inline vec_f32 vec_load(const float *p) { return _mm512_loadu_ps(p); }
/* Lanes past the tail read as 0 and are not touched in memory. */
static inline vec_f32 vec_load_tail(const float *p, vec_tail t) { return _mm512_maskz_loadu_ps(t, p); }
static inline void vec_store(float *p, vec_f32 v) { _mm512_storeu_ps(p, v); }
static inline void vec_store_tail(float *p, vec_tail t, vec_f32 v) { _mm512_mask_storeu_ps(p, t, v); }
/* a * b + c, rounded once. */
static inline vec_f32 vec_fma(vec_f32 a, vec_f32 b, vec_f32 c) { return _mm512_fmadd_ps(a, b, c); }
static inline vec_f32 vec_add(vec_f32 a, vec_f32 b) { return _mm512_add_ps(a, b); }
static inline vec_f32 vec_set1(float v) { return _mm512_set1_ps(v); }
static inline vec_f32 vec_zero(void) { return _mm512_setzero_ps(); }
static inline float vec_hsum(vec_f32 v) { return _mm512_reduce_add_ps(v); }

/* out[k] = vec_hsum(ak), bit for bit: the pairs GCC's reduce adds (the
 * 256-bit halves, the 128-bit halves, lanes 0 + 2 and 1 + 3, then those
 * two), side by side: 24 instructions for the 8 sums where 8 vec_hsum take
 * ~72, which rows of a few hundred bytes (a predictor's, a small model's)
 * paid once per row. */
static inline void vec_hsum8(float out[8], vec_f32 a0, vec_f32 a1, vec_f32 a2, vec_f32 a3, vec_f32 a4, vec_f32 a5,
                             vec_f32 a6, vec_f32 a7) {
  /* 256-bit halves: quarters 0-1 of h01 are a0's 8 values, 2-3 a1's. */
#define VEC_HALVES(a, b) _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xee))
  const __m512 h01 = VEC_HALVES(a0, a1), h23 = VEC_HALVES(a2, a3), h45 = VEC_HALVES(a4, a5), h67 = VEC_HALVES(a6, a7);
#undef VEC_HALVES
  /* 128-bit halves: quarter k of q0123 is ak's 4 values v0..v3. */
#define VEC_QUARTERS(a, b) _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xdd))
  const __m512 q0123 = VEC_QUARTERS(h01, h23), q4567 = VEC_QUARTERS(h45, h67);
#undef VEC_QUARTERS
  /* Quarter k: (v0 + v2, v1 + v3) of ak, then of a(k + 4); then each pair's sum in lanes 0 and 2. */
  const __m512 p = _mm512_add_ps(_mm512_shuffle_ps(q0123, q4567, 0x44), _mm512_shuffle_ps(q0123, q4567, 0xee));
  const __m512 t = _mm512_add_ps(p, _mm512_permute_ps(p, 0xb1));
  const __m512i lanes = _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0);
  _mm256_storeu_ps(out, _mm512_castps512_ps256(_mm512_permutexvar_ps(lanes, t)));
}

/* 16 16-bit elements (fp16 or bf16 bits) from p; the tail's elements, the
 * rest 0, reading only p[0, k) (a BW+VL masked load). */
static inline __m256i vec_load_u16(const uint16_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline __m256i vec_load_u16_tail(const uint16_t *p, vec_tail t) { return _mm256_maskz_loadu_epi16(t, p); }

/* ---------------------------------------------------------- int8 dot */

/* acc + u1 . s1 + u2 . s2 over each 4 bytes: u unsigned, s signed bytes.
 * With AVX512_VNNI (a file compiled with -mavx512vnni, the avx512vnni
 * folder) two vpdpbusd, exact; without, maddubs adds byte pairs in int16
 * with saturation, so each u * s + u * s pair, and the sum of the two
 * operands' pairs, must stay within int16 (the callers' ranges say why
 * they do). */
static inline __m512i vec_dot2_u8s8(__m512i acc, __m512i u1, __m512i s1, __m512i u2, __m512i s2) {
#if defined(__AVX512VNNI__)
  return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(acc, u1, s1), u2, s2);
#else
  const __m512i pairs = _mm512_add_epi16(_mm512_maddubs_epi16(u1, s1), _mm512_maddubs_epi16(u2, s2));
  return _mm512_add_epi32(acc, _mm512_madd_epi16(pairs, _mm512_set1_epi16(1)));
#endif
}

/* Dwords (q0[j], q1[j], q2[j], q3[j]) of 4 rows' bytes, for vpdpbusd
 * to sum 4 rows into each column's lane: v[m] 128-bit lane k holds bytes
 * j = 16k + 4m .. 16k + 4m + 3 (the unpacks work within 128-bit lanes). */
static inline __attribute__((always_inline)) void vec_interleave4_u8(__m512i v[4], __m512i q0, __m512i q1, __m512i q2,
                                                                    __m512i q3) {
  const __m512i l01 = _mm512_unpacklo_epi8(q0, q1), h01 = _mm512_unpackhi_epi8(q0, q1);
  const __m512i l23 = _mm512_unpacklo_epi8(q2, q3), h23 = _mm512_unpackhi_epi8(q2, q3);
  v[0] = _mm512_unpacklo_epi16(l01, l23);
  v[1] = _mm512_unpackhi_epi16(l01, l23);
  v[2] = _mm512_unpacklo_epi16(h01, h23);
  v[3] = _mm512_unpackhi_epi16(h01, h23);
}

/* The 4 x 4 transpose of the 128-bit lanes of a, b, c, d (its own
 * inverse): puts y in the order vec_interleave4_u8's lanes sum into. */
static inline __attribute__((always_inline)) void vec_transpose_lanes4(__m512 *a, __m512 *b, __m512 *c, __m512 *d) {
  const __m512 t0 = _mm512_shuffle_f32x4(*a, *b, 0x44), t1 = _mm512_shuffle_f32x4(*a, *b, 0xee);
  const __m512 t2 = _mm512_shuffle_f32x4(*c, *d, 0x44), t3 = _mm512_shuffle_f32x4(*c, *d, 0xee);
  *a = _mm512_shuffle_f32x4(t0, t2, 0x88);
  *b = _mm512_shuffle_f32x4(t0, t2, 0xdd);
  *c = _mm512_shuffle_f32x4(t1, t3, 0x88);
  *d = _mm512_shuffle_f32x4(t1, t3, 0xdd);
}

#endif /* LZN_KERNELS_X86_VEC_AVX512_H */
