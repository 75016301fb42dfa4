/*
 * x86/quant_common.h: what every x86 kernel file for the block types (Q8_0,
 * Q4_0) needs: row addressing, the prefetch distances, fp16 scales through
 * F16C. static inline only: each ISA file that includes this gets its own
 * copy compiled with its own flags (kernels.h says why nothing else may be
 * shared). Needs F16C, which every x86 kernel folder's flags include.
 */
#ifndef LZN_KERNELS_X86_QUANT_COMMON_H
#define LZN_KERNELS_X86_QUANT_COMMON_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

#if defined(__GNUC__)
#define Q_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define Q_ALWAYS_INLINE inline
#endif

/* Software prefetch, as in the f32 kernels (kernels/avx512/f32.c has the
 * measurements): one prefetch per row per cache line's worth of blocks,
 * Q_PREFETCH_AHEAD bytes ahead of the loads and never past the row's last
 * block, and the first Q_PREFETCH_HEAD_BYTES of each row of the next group
 * while the current group runs. Rows chosen at random stream from DRAM and
 * the hardware prefetcher alone does not start 8 streams soon enough.
 * Measured (avx512vnni, 8192 x 2048, shared VM, noisy): without them Q8_0
 * gemv 17-18 GB/s and axpy at 100 % 13, with them 21-24 and 17; distances
 * of 1-2 KB and heads of 1 KB measured no better. */
#define Q_PREFETCH_AHEAD 512
#define Q_PREFETCH_HEAD_BYTES 256

/* Blocks of each type between two prefetches of a row: >= 64 bytes apart. */
#define Q8_0_BLOCKS_PER_PREFETCH 2 /* 68 bytes */
#define Q4_0_BLOCKS_PER_PREFETCH 4 /* 72 bytes */

/* Row t of a call: idx[t], or t itself for gemv (idx NULL). */
static inline const void *q_row(const void *w, size_t row_bytes, const int32_t *idx, size_t t) {
  return (const char *)w + (idx ? (size_t)idx[t] : t) * row_bytes;
}

/* Prefetches the heads of the rows [t, t + nr) (nr may be 0), within the
 * span bytes of each row that the call reads. */
static inline void q_prefetch_heads(const void *w, size_t row_bytes, size_t span, const int32_t *idx,
                                    size_t t, size_t nr) {
  const size_t bytes = span < Q_PREFETCH_HEAD_BYTES ? span : Q_PREFETCH_HEAD_BYTES;
  for (size_t k = 0; k < nr; k++) {
    const char *row = q_row(w, row_bytes, idx, t + k);
    for (size_t off = 0; off < bytes; off += 64) _mm_prefetch(row + off, _MM_HINT_T0);
  }
}

/* The fp16 scale of a block as fp32 (exact). */
static inline float q_scale(uint16_t h) { return _cvtsh_ss(h); }

/* Sum of the 8 lanes. */
static inline float q_hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

#endif /* LZN_KERNELS_X86_QUANT_COMMON_H */
