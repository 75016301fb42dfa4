/*
 * x86/gemm_vec512.h: the vector of kernels/x86/gemm_float.h on 512 bits
 * (AVX-512 F/BW/VL/DQ), for the AVX-512 files.
 */
#ifndef LZN_KERNELS_X86_GEMM_VEC512_H
#define LZN_KERNELS_X86_GEMM_VEC512_H

#include <immintrin.h>

#include "kernels/x86/vec_avx512.h"

#define VF __m512
#define VF_LANES 16
#define vf_zero() _mm512_setzero_ps()
#define vf_set1(f) _mm512_set1_ps(f)
#define vf_loadu(p) _mm512_loadu_ps(p)
#define vf_storeu(p, v) _mm512_storeu_ps((p), (v))
#define vf_fma(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define vf_mul(a, b) _mm512_mul_ps((a), (b))
/* One sum per vector, and eight vectors' sums at once (the same sums, bit
 * for bit: kernels/x86/vec_avx512.h). */
#define vf_hsum vec_hsum
#define vf_hsum8 vec_hsum8
#define vf_load_f16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p)))
#define vf_load_bf16(p) \
  _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(p))), 16))
#define vf_from_i8(v, k) ((void)(k), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)))

#endif /* LZN_KERNELS_X86_GEMM_VEC512_H */
