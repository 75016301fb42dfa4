/*
 * avx512/act.c: the activation kernels for AVX-512 (relu_compact). Only
 * this folder is compiled with the AVX-512 flags (see kernels.h).
 */
#include <immintrin.h>

#include "kernels/kernels.h"

/* Lanes [0, left) of a 16-lane vector, for the column tail. */
static inline __mmask16 tail_mask(size_t left) {
  return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

static size_t avx512_relu_compact(const float *h, size_t n, float threshold,
                                  int32_t *idx, float *val) {
  const __m512 thr = _mm512_set1_ps(threshold);
  const __m512i step = _mm512_set1_epi32(16);
  __m512i lane_idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  size_t n_active = 0;
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 in_range = tail_mask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(in_range, h + i);
    /* Ordered compare: NaN > threshold is false, as in scalar. */
    const __mmask16 active = _mm512_mask_cmp_ps_mask(in_range, v, thr, _CMP_GT_OQ);
    /* Compress in a register, then store only the packed lanes: measured
     * ~1.3x faster on Zen 4 than vcompressps/vpcompressd to memory. No
     * branch on "any active": at 3-10 % density a block of 16 has one
     * 40-80 % of the time, and the mispredictions made the branchy loop ~4x
     * slower. With none active the stores write nothing. */
    const unsigned count = (unsigned)__builtin_popcount(active);
    const __mmask16 packed = (__mmask16)((1u << count) - 1u);
    _mm512_mask_storeu_ps(val + n_active, packed, _mm512_maskz_compress_ps(active, v));
    _mm512_mask_storeu_epi32(idx + n_active, packed, _mm512_maskz_compress_epi32(active, lane_idx));
    n_active += count;
    lane_idx = _mm512_add_epi32(lane_idx, step);
  }
  return n_active;
}

void lzn_install_avx512_act(lzn_kernel_table *t);
void lzn_install_avx512_act(lzn_kernel_table *t) {
  LZN_SET(t->relu_compact, LZN_ISA_AVX512, avx512_relu_compact);
}
