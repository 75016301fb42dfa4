/*
 * x86/prefetch.h: the prefetch primitive the generic row skeletons
 * (generic/stream.h) are written with, for every x86 ISA. Included by
 * x86/vec_avx2.h and x86/vec_avx512.h; static inline, so each ISA file
 * keeps its own copy.
 */
#ifndef LZN_KERNELS_X86_PREFETCH_H
#define LZN_KERNELS_X86_PREFETCH_H

#include <immintrin.h>

/* The cache line of p into L1 (prefetcht0); a hint, it never faults.
 * Always inlined: generic/stream.h says why. */
static inline __attribute__((always_inline)) void row_prefetch(const void *p) {
  _mm_prefetch((const char *)p, _MM_HINT_T0);
}

#endif /* LZN_KERNELS_X86_PREFETCH_H */
