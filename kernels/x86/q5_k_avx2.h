/*
 * x86/q5_k_avx2.h: Q5_K's steps for the block skeleton (generic/qrows.h):
 * what avx2/q5_k.c and avxvnni/q5_k.c share. Include x86/vec_avx2.h first.
 * Specification in ref/q5_k.c and ref/kquant.h, layout in blocks.h.
 *
 * Q5_K is Q4_K (same scales and mins, same nibbles) with a fifth bit per
 * weight in qh[32]: x86/q4_k_avx2.h's steps with KQ_Q5_K defined, which
 * add that bit (and say how), and take the block's size and offsets.
 */
#ifndef LZN_KERNELS_X86_Q5_K_AVX2_H
#define LZN_KERNELS_X86_Q5_K_AVX2_H

#define KQ_Q5_K 1
#include "kernels/x86/q4_k_avx2.h"

#endif /* LZN_KERNELS_X86_Q5_K_AVX2_H */
