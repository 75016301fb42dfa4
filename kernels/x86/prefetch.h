/*
 * x86/prefetch.h: the prefetch primitive the generic row skeletons
 * (generic/stream.h) are written with, for every x86 ISA. Included by
 * x86/vec_avx2.h and x86/vec_avx512.h; static inline, so each ISA file
 * keeps its own copy.
 */
#ifndef LZN_KERNELS_X86_PREFETCH_H
#define LZN_KERNELS_X86_PREFETCH_H

#include <immintrin.h>

#include "kernels/kernels.h"

/* The cache line of p into L1 (prefetcht0) or toward L2 (prefetcht1), a
 * constant after inlining; a hint, it never faults. Always inlined:
 * generic/stream.h says why. */
static inline __attribute__((always_inline)) void row_prefetch(const void *p, enum lzn_prefetch_level level) {
  if (level == LZN_PREFETCH_L2) _mm_prefetch((const char *)p, _MM_HINT_T1);
  else _mm_prefetch((const char *)p, _MM_HINT_T0);
}

#endif /* LZN_KERNELS_X86_PREFETCH_H */
