/*
 * x86/q8_0_from_f32_avx2.h: Q8_0 from_f32 with 256-bit vectors (AVX2 +
 * F16C), byte for byte the reference's (kernels/ref/q8_0.c): d = amax / 127
 * in fp32, q = roundf(x * (1 / d)) (round half away from zero), the scale
 * rounded to fp16 to nearest even (F16C, as lzn_f32_to_f16), the last
 * block zero-padded. This is what quantizes x before every quantized GEMV,
 * so it must cost little next to the GEMV (d = 4096: 128 blocks).
 *
 * Rounding: v - trunc(v) is exact, so r = trunc(v) + (|v - trunc(v)| >= 0.5
 * ? sign(v) : 0) is roundf(v) exactly, for every v (the "add 0.5 and
 * truncate" shortcut is not: 0.49999997f + 0.5f rounds up to 1).
 */
#ifndef LZN_KERNELS_X86_Q8_0_FROM_F32_AVX2_H
#define LZN_KERNELS_X86_Q8_0_FROM_F32_AVX2_H

#include <float.h>
#include <immintrin.h>
#include <string.h>

#include "kernels/blocks.h"

static inline __m256i q_round_half_away(__m256 v) {
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = _mm256_andnot_ps(sign_bit, _mm256_sub_ps(v, t));
  const __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 step = _mm256_or_ps(_mm256_and_ps(v, sign_bit), _mm256_set1_ps(1.0f));
  return _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, step)));
}

/* One block from 32 floats. */
static inline void q8_0_quantize_block(lzn_block_q8_0 *out, const float *v) {
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  const __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8);
  const __m256 v2 = _mm256_loadu_ps(v + 16), v3 = _mm256_loadu_ps(v + 24);
  const __m256 m01 = _mm256_max_ps(_mm256_andnot_ps(sign_bit, v0), _mm256_andnot_ps(sign_bit, v1));
  const __m256 m23 = _mm256_max_ps(_mm256_andnot_ps(sign_bit, v2), _mm256_andnot_ps(sign_bit, v3));
  const __m256 m = _mm256_max_ps(m01, m23);
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const float amax = _mm_cvtss_f32(m4);
  const float scale = amax / 127.0f;
  const float inv = scale >= FLT_MIN ? 1.0f / scale : 0.0f; /* as ref/q8_0.c */
  out->d = (uint16_t)_cvtss_sh(scale, _MM_FROUND_TO_NEAREST_INT);
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m256i i0 = q_round_half_away(_mm256_mul_ps(v0, vinv));
  const __m256i i1 = q_round_half_away(_mm256_mul_ps(v1, vinv));
  const __m256i i2 = q_round_half_away(_mm256_mul_ps(v2, vinv));
  const __m256i i3 = q_round_half_away(_mm256_mul_ps(v3, vinv));
  /* The packs work within 128-bit lanes: 32-bit groups come out as
   * i0a i1a i2a i3a i0b i1b i2b i3b (a, b: low and high 4 of each); the
   * permutation puts them back in element order. */
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
  const __m256i q = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256((__m256i *)out->qs, q);
}

static void q8_0_from_f32(void *dst, const float *src, size_t d) {
  lzn_block_q8_0 *out = dst;
  const size_t full = d / LZN_QK;
  for (size_t b = 0; b < full; b++) q8_0_quantize_block(&out[b], src + b * LZN_QK);
  if (full * LZN_QK < d) {
    float tail[LZN_QK] = {0};
    memcpy(tail, src + full * LZN_QK, (d - full * LZN_QK) * sizeof(float));
    q8_0_quantize_block(&out[full], tail);
  }
}

#endif /* LZN_KERNELS_X86_Q8_0_FROM_F32_AVX2_H */
