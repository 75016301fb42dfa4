/*
 * x86/gemm_vec256.h: the vector of kernels/x86/gemm_float.h on 256 bits
 * (AVX2 + FMA + F16C), for the AVX2-only files.
 */
#ifndef LZN_KERNELS_X86_GEMM_VEC256_H
#define LZN_KERNELS_X86_GEMM_VEC256_H

#include <immintrin.h>

#include "kernels/x86/vec_avx2.h"

#define VF __m256
#define VF_LANES 8
#define vf_zero() _mm256_setzero_ps()
#define vf_set1(f) _mm256_set1_ps(f)
#define vf_loadu(p) _mm256_loadu_ps(p)
#define vf_storeu(p, v) _mm256_storeu_ps((p), (v))
#define vf_fma(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define vf_mul(a, b) _mm256_mul_ps((a), (b))
#define vf_load_f16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#define vf_load_bf16(p) \
  _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p))), 16))
#define vf_from_i8(v, k) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32((k) ? _mm_srli_si128((v), 8) : (v)))

/* One sum per vector, and eight vectors' sums at once (the same sums, bit
 * for bit: kernels/x86/vec_avx2.h). */
#define vf_hsum vec_hsum
#define vf_hsum8 vec_hsum8

#endif /* LZN_KERNELS_X86_GEMM_VEC256_H */
