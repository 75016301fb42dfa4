/*
 * avx2/act.c: the activation kernels for AVX2 (relu_compact). Only this
 * folder is compiled with -mavx2 -mfma -mf16c (see kernels.h).
 */
#include <immintrin.h>

#include "kernels/kernels.h"

/* tail_lanes + 8 - k, read as 8 int32, is a maskload/maskstore mask with
 * lanes [0, k) set, for k in [0, 8]. */
static const int32_t tail_lanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline __m256i tail_mask(size_t k) {
  return _mm256_loadu_si256((const __m256i *)(tail_lanes + 8 - k));
}

/* compact_perm[m], byte k: the position of the k-th set bit of the 8-bit
 * mask m, i.e. the permutation that packs the active lanes of a vector to
 * its front (unused bytes 0). Computed by the preprocessor so the table is
 * right by construction rather than 256 hand-written constants. */
#define BIT(m, b) (((m) >> (b)) & 1u)
#define POP8(m) (BIT(m, 0) + BIT(m, 1) + BIT(m, 2) + BIT(m, 3) + BIT(m, 4) + BIT(m, 5) + BIT(m, 6) + BIT(m, 7))
#define PLACE(m, b) (BIT(m, b) ? (uint64_t)(b) << (8 * POP8((m) & ((1u << (b)) - 1u))) : 0)
#define PERM(m) (PLACE(m, 0) | PLACE(m, 1) | PLACE(m, 2) | PLACE(m, 3) | \
                 PLACE(m, 4) | PLACE(m, 5) | PLACE(m, 6) | PLACE(m, 7))
#define PERM4(m) PERM(m), PERM((m) + 1u), PERM((m) + 2u), PERM((m) + 3u)
#define PERM16(m) PERM4(m), PERM4((m) + 4u), PERM4((m) + 8u), PERM4((m) + 12u)
#define PERM64(m) PERM16(m), PERM16((m) + 16u), PERM16((m) + 32u), PERM16((m) + 48u)
static const uint64_t compact_perm[256] = {PERM64(0u), PERM64(64u), PERM64(128u), PERM64(192u)};
#undef PERM64
#undef PERM16
#undef PERM4
#undef PERM
#undef PLACE
#undef POP8
#undef BIT

static size_t avx2_relu_compact(const float *h, size_t n, float threshold,
                                int32_t *idx, float *val) {
  const __m256 thr = _mm256_set1_ps(threshold);
  const __m256i step = _mm256_set1_epi32(8);
  __m256i lane_idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  size_t n_active = 0;
  for (size_t i = 0; i < n; i += 8) {
    const size_t in_range = n - i < 8 ? n - i : 8;
    /* maskload does not touch lanes past n (no read past the end of h). */
    const __m256 v = in_range == 8 ? _mm256_loadu_ps(h + i) : _mm256_maskload_ps(h + i, tail_mask(in_range));
    /* Ordered compare: NaN > threshold is false, as in scalar. Lanes past n
     * are dropped from the mask. */
    const unsigned active = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, thr, _CMP_GT_OQ)) &
                            ((1u << in_range) - 1u);
    /* No branch on "any active": at 3-10 % density a block of 8 has one
     * 20-60 % of the time, and the mispredictions made the branchy loop
     * 2-4x slower. With none active the stores write nothing. */
    const __m256i perm = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)compact_perm[active]));
    const unsigned count = (unsigned)__builtin_popcount(active);
    /* Store only the packed lanes, so idx and val are written exactly where
     * the scalar kernel writes them. */
    const __m256i packed = tail_mask(count);
    _mm256_maskstore_ps(val + n_active, packed, _mm256_permutevar8x32_ps(v, perm));
    _mm256_maskstore_epi32((int *)(idx + n_active), packed, _mm256_permutevar8x32_epi32(lane_idx, perm));
    n_active += count;
    lane_idx = _mm256_add_epi32(lane_idx, step);
  }
  return n_active;
}

void lzn_install_avx2_act(lzn_kernel_table *t);
void lzn_install_avx2_act(lzn_kernel_table *t) {
  LZN_SET(t->relu_compact, LZN_ISA_AVX2, avx2_relu_compact);
}
