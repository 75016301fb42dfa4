/*
 * x86/kq_scales.h: what the K-quants' x86 steps of both vector widths
 * share (x86/q4_k_*.h, x86/q6_k_*.h): the 6-bit sub-block scales and mins
 * of Q4_K / Q5_K unpacked in a few xmm operations. Included only by
 * files compiled with AVX2 or wider (kernels/avx2 and up); static inline,
 * so each ISA file keeps its own copy. Layouts: kernels/blocks.h;
 * specification: kernels/ref/kquant.h.
 */
#ifndef LZN_KERNELS_X86_KQ_SCALES_H
#define LZN_KERNELS_X86_KQ_SCALES_H

#include <immintrin.h>
#include <stdint.h>

#define KQ_ALWAYS_INLINE static inline __attribute__((always_inline))

/* The 16 bytes (sc[0..8), m[0..8)) of a Q4_K / Q5_K super-block from its
 * first 16 bytes h (d, dmin, scales[12]), for the super-blocks in each
 * 128-bit lane of h2 (two rows' at once: the operations stay within
 * lanes). With a, b, c the scale bytes 0-3, 4-7, 8-11 (blocks.h):
 *   sc[0..4) = a & 63               m[0..4) = b & 63
 *   sc[4..8) = (c & 15) | (a >> 6) << 4
 *   m[4..8)  = (c >> 4) | (b >> 6) << 4
 * per byte; as dwords [a, c, b, c] and [0, a, 0, b], one variable shift,
 * two masks and an or do all 16 at once (bits a 32-bit shift moves across
 * bytes are masked away). */
KQ_ALWAYS_INLINE __m256i kq_scales_mins2(__m256i h2) {
  const __m256i low = _mm256_shuffle_epi8(h2, _mm256_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15,
                                                               4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15));
  const __m256i top = _mm256_shuffle_epi8(h2, _mm256_setr_epi8(-1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11,
                                                               -1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11));
  const __m256i low_bits =
      _mm256_and_si256(_mm256_srlv_epi32(low, _mm256_setr_epi32(0, 0, 0, 4, 0, 0, 0, 4)),
                       _mm256_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f,
                                         0x3f3f3f3f, 0x0f0f0f0f));
  return _mm256_or_si256(low_bits, _mm256_and_si256(_mm256_srli_epi32(top, 2), _mm256_set1_epi8(0x30)));
}

/* One super-block's: kq_scales_mins2's low lane. */
KQ_ALWAYS_INLINE __m128i kq_scales_mins(__m128i h) {
  return _mm256_castsi256_si128(kq_scales_mins2(_mm256_castsi128_si256(h)));
}

#endif /* LZN_KERNELS_X86_KQ_SCALES_H */
