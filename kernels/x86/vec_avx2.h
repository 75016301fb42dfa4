/*
 * x86/vec_avx2.h: the fp32 vector primitives of AVX2 + FMA that the row
 * skeletons (generic/rows.h, generic/qrows.h) are written in, and
 * row_prefetch (x86/prefetch.h). Included only by files compiled with
 * -mavx2 -mfma -mf16c (kernels/avx2/, kernels/avxvnni/); static inline, so
 * each file keeps its own copy (kernels.h says why nothing is linked
 * across ISAs).
 */
#ifndef LZN_KERNELS_X86_VEC_AVX2_H
#define LZN_KERNELS_X86_VEC_AVX2_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/x86/prefetch.h"

typedef __m256 vec_f32;
#define VEC_LANES 8

/* Lanes [0, lanes) of the vector at the end of a row, 1 <= lanes <= 8:
 * a maskload/maskstore mask for fp32, and the count for 16-bit loads,
 * which AVX2 cannot mask. */
typedef struct {
  __m256i mask;
  size_t lanes;
} vec_tail;

/* vec_tail_lanes + 8 - k, read as 8 int32, has lanes [0, k) set. */
static const int32_t vec_tail_lanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline vec_tail vec_tail_make(size_t lanes) {
  vec_tail t;
  t.mask = _mm256_loadu_si256((const __m256i *)(vec_tail_lanes + 8 - lanes));
  t.lanes = lanes;
  return t;
}

static inline vec_f32 vec_load(const float *p) { return _mm256_loadu_ps(p); }
/* Lanes past the tail read as 0 and are not touched in memory. */
static inline vec_f32 vec_load_tail(const float *p, vec_tail t) { return _mm256_maskload_ps(p, t.mask); }
static inline void vec_store(float *p, vec_f32 v) { _mm256_storeu_ps(p, v); }
static inline void vec_store_tail(float *p, vec_tail t, vec_f32 v) { _mm256_maskstore_ps(p, t.mask, v); }
/* a * b + c, rounded once. */
static inline vec_f32 vec_fma(vec_f32 a, vec_f32 b, vec_f32 c) { return _mm256_fmadd_ps(a, b, c); }
static inline vec_f32 vec_add(vec_f32 a, vec_f32 b) { return _mm256_add_ps(a, b); }
static inline vec_f32 vec_set1(float v) { return _mm256_set1_ps(v); }
static inline vec_f32 vec_zero(void) { return _mm256_setzero_ps(); }

static inline float vec_hsum(vec_f32 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/* out[k] = vec_hsum(ak), bit for bit (the same pairs added, only side by
 * side): 21 instructions for the 8 sums where 8 vec_hsum take 48, which
 * rows of a few hundred bytes (a predictor's, a small model's) paid once
 * per row. */
static inline void vec_hsum8(float out[8], vec_f32 a0, vec_f32 a1, vec_f32 a2, vec_f32 a3, vec_f32 a4, vec_f32 a5,
                             vec_f32 a6, vec_f32 a7) {
  /* Halves: lane j of ak plus lane j + 4, ak's 4 values in half (k / 4) of
   * s(k % 4). */
#define VEC_HALVES(a, b) \
  _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31))
  const __m256 s0 = VEC_HALVES(a0, a4), s1 = VEC_HALVES(a1, a5), s2 = VEC_HALVES(a2, a6), s3 = VEC_HALVES(a3, a7);
#undef VEC_HALVES
  /* (v0 + v2, v1 + v3) of two sums side by side, then their sum. */
  const __m256 p01 = _mm256_add_ps(_mm256_shuffle_ps(s0, s1, 0x44), _mm256_shuffle_ps(s0, s1, 0xee));
  const __m256 p23 = _mm256_add_ps(_mm256_shuffle_ps(s2, s3, 0x44), _mm256_shuffle_ps(s2, s3, 0xee));
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_shuffle_ps(p01, p23, 0x88), _mm256_shuffle_ps(p01, p23, 0xdd)));
}

/* 8 16-bit elements (fp16 or bf16 bits) from p. */
static inline __m128i vec_load_u16(const uint16_t *p) { return _mm_loadu_si128((const __m128i *)p); }
/* The tail's elements, the rest 0, reading only p[0, t.lanes): AVX2 has no
 * 16-bit masked load, and this runs once per row. */
static inline __m128i vec_load_u16_tail(const uint16_t *p, vec_tail t) {
  uint16_t lanes[8] = {0};
  memcpy(lanes, p, t.lanes * sizeof *p);
  return _mm_loadu_si128((const __m128i *)lanes);
}

/* ---------------------------------------------------------- int8 dot */

/* acc + u1 . s1 + u2 . s2 over each 4 bytes: u unsigned, s signed bytes.
 * With AVX-VNNI (a file compiled with -mavxvnni, the avxvnni folder) two
 * VEX vpdpbusd, exact; without, maddubs adds byte pairs in int16 with
 * saturation, so each u * s + u * s pair, and the sum of the two operands'
 * pairs, must stay within int16 (the callers' ranges say why they do). */
static inline __m256i vec_dot2_u8s8(__m256i acc, __m256i u1, __m256i s1, __m256i u2, __m256i s2) {
#if defined(__AVXVNNI__)
  return _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(acc, u1, s1), u2, s2);
#else
  const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(u1, s1), _mm256_maddubs_epi16(u2, s2));
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
#endif
}

/* Dwords (q0[j], q1[j], q2[j], q3[j]) of 4 rows' bytes, for an int8 dot
 * product to sum 4 rows into each column's lane: v[m] 128-bit half k
 * holds bytes j = 16k + 4m .. 16k + 4m + 3 (the unpacks work within
 * halves). */
static inline __attribute__((always_inline)) void vec_interleave4_u8(__m256i v[4], __m256i q0, __m256i q1, __m256i q2,
                                                                    __m256i q3) {
  const __m256i l01 = _mm256_unpacklo_epi8(q0, q1), h01 = _mm256_unpackhi_epi8(q0, q1);
  const __m256i l23 = _mm256_unpacklo_epi8(q2, q3), h23 = _mm256_unpackhi_epi8(q2, q3);
  v[0] = _mm256_unpacklo_epi16(l01, l23);
  v[1] = _mm256_unpackhi_epi16(l01, l23);
  v[2] = _mm256_unpacklo_epi16(h01, h23);
  v[3] = _mm256_unpackhi_epi16(h01, h23);
}

/* vec_interleave4_u8's results against y: result m of 32 columns holds
 * columns 4m..4m+3 (half 0) and 16 + 4m.. (half 1). y put in that order,
 * each 32 columns' 8-float vectors 0 and 16, 8 and 24 apart swapping
 * halves (its own inverse), has result m's 8 columns at slot[m]. */
static const int vec_interleave4_slot[4] = {0, 16, 8, 24};
static inline void vec_interleave4_y_order(float *y, size_t cols) {
  for (size_t group = 0; group < cols; group += 32)
    for (size_t c = 0; c < 16; c += 8) {
      const __m256 a = _mm256_loadu_ps(y + group + c), b = _mm256_loadu_ps(y + group + 16 + c);
      _mm256_storeu_ps(y + group + c, _mm256_permute2f128_ps(a, b, 0x20));
      _mm256_storeu_ps(y + group + 16 + c, _mm256_permute2f128_ps(a, b, 0x31));
    }
}

/* Within each 128-bit half, bytes 4t + k (row t, item k) -> 4k + t: four
 * rows' int8 values of 4 items each, to one dword per item. */
static const int8_t vec_transpose4x4_bytes[32] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
                                                  0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};

#endif /* LZN_KERNELS_X86_VEC_AVX2_H */
