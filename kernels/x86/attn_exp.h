/*
 * x86/attn_exp.h: the softmax passes (kernels.h: attn_max, attn_exp_sum)
 * over the vector primitives of x86/vec_avx2.h or vec_avx512.h plus four
 * that the including file defines for its ISA:
 *     vec_f32 vec_mul(a, b), vec_max(a, b)
 *     vec_f32 vec_exp2_int(vec_f32 n)   2^n for integer-valued n in [-126, 127]
 *     vec_f32 vec_round(vec_f32 x)      to the nearest integer
 *     vec_f32 vec_zero_below(vec_f32 x, vec_f32 limit, vec_f32 y)  y, 0 where x < limit
 * static functions, each ISA file keeps its own copy.
 *
 * exp(x) for x <= 0: x = n ln2 + r with n = round(x / ln2), |r| <= ln2 / 2,
 * ln2 split in two so that r is exact to fp32; e^r by the degree-6
 * minimax polynomial of Cephes' expf (relative error below 2^-23 on that
 * interval), times 2^n built in the exponent bits. x below ln(FLT_MIN) (e^x under
 * FLT_MIN) gives 0.
 */
#ifndef LZN_KERNELS_X86_ATTN_EXP_H
#define LZN_KERNELS_X86_ATTN_EXP_H

#include <math.h>
#include <stddef.h>

static inline vec_f32 vec_exp_nonpositive(vec_f32 x) {
  const vec_f32 lowest = vec_set1(-87.33654475f); /* ln(FLT_MIN) */
  const vec_f32 xc = vec_max(x, lowest);
  const vec_f32 n = vec_round(vec_mul(xc, vec_set1(1.44269504088896341f)));
  vec_f32 r = vec_fma(n, vec_set1(-0.693359375f), xc);
  r = vec_fma(n, vec_set1(2.12194440e-4f), r);
  vec_f32 p = vec_set1(1.9875691500e-4f);
  p = vec_fma(p, r, vec_set1(1.3981999507e-3f));
  p = vec_fma(p, r, vec_set1(8.3334519073e-3f));
  p = vec_fma(p, r, vec_set1(4.1665795894e-2f));
  p = vec_fma(p, r, vec_set1(1.6666665459e-1f));
  p = vec_fma(p, r, vec_set1(5.0000001201e-1f));
  const vec_f32 e_r = vec_add(vec_fma(vec_mul(p, r), r, r), vec_set1(1.0f));
  return vec_zero_below(x, lowest, vec_mul(e_r, vec_exp2_int(n)));
}

static float attn_max_vec(const float *s, size_t n) {
  vec_f32 m0 = vec_set1(-INFINITY), m1 = m0;
  size_t j = 0;
  for (; j + 2 * VEC_LANES <= n; j += 2 * VEC_LANES)
    m0 = vec_max(m0, vec_load(s + j)), m1 = vec_max(m1, vec_load(s + j + VEC_LANES));
  m0 = vec_max(m0, m1);
  float lanes[VEC_LANES], m;
  vec_store(lanes, m0);
  m = lanes[0];
  for (size_t i = 1; i < VEC_LANES; i++) m = lanes[i] > m ? lanes[i] : m;
  for (; j < n; j++) m = s[j] > m ? s[j] : m;
  return m;
}

static float attn_exp_sum_vec(float *s, size_t n, float shift) {
  const vec_f32 minus_shift = vec_set1(-shift); /* s + (-shift) rounds as s - shift */
  vec_f32 sum0 = vec_zero(), sum1 = vec_zero();
  size_t j = 0;
  for (; j + 2 * VEC_LANES <= n; j += 2 * VEC_LANES) {
    const vec_f32 e0 = vec_exp_nonpositive(vec_add(vec_load(s + j), minus_shift));
    const vec_f32 e1 = vec_exp_nonpositive(vec_add(vec_load(s + j + VEC_LANES), minus_shift));
    vec_store(s + j, e0), vec_store(s + j + VEC_LANES, e1);
    sum0 = vec_add(sum0, e0), sum1 = vec_add(sum1, e1);
  }
  for (; j < n; j += VEC_LANES) {
    const size_t lanes = n - j < VEC_LANES ? n - j : VEC_LANES;
    const vec_tail tail = vec_tail_make(lanes);
    /* Lanes past n load as 0 and would give exp(-shift): masked off. */
    const vec_f32 e = vec_exp_nonpositive(vec_add(vec_load_tail(s + j, tail), minus_shift));
    vec_store_tail(s + j, tail, e);
    sum0 = vec_add(sum0, vec_load_tail(s + j, tail));
  }
  return vec_hsum(vec_add(sum0, sum1));
}

#endif /* LZN_KERNELS_X86_ATTN_EXP_H */
