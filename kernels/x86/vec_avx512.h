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

#endif /* LZN_KERNELS_X86_VEC_AVX512_H */
