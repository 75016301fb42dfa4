/*
 * gemm.h: the kernels of many tokens at once (prefill, batched decode), one
 * slot pair per weight type, in the table's gemm[] (kernels/kernels.h).
 * Private.
 *
 * Why own kernels and not oneDNN's sgemm: a GEMM on fp32 needs the weights
 * in fp32, so every batched call on a compact type widened tiles of the
 * weights first (one pass over them, on one thread) and then ran fp32 FMAs,
 * which made a Q4_0 prompt slower than an F32 one. These kernels read the
 * weights in their own type, as a register tile of R weight rows by C tokens
 * (llamafile's tinyBLAS does the same for llama.cpp): each weight is loaded
 * and converted once per C tokens, in registers, never into a buffer, and
 * for Q8_0/Q4_0 the products are int8 dot products on blocks against the
 * tokens' activations quantized to Q8_0 (vpdpbusd where VNNI is present:
 * 4x the multiplies of an fp32 FMA per instruction).
 *
 * gemm is dot_rows for m tokens; axpy_gemm is axpy_rows for m tokens (the
 * down-projection from W_down^T: a union's rows, or all of them). Both take
 * an optional index list, so the union of a batch's active rows is read in
 * place, gathered by address, not copied.
 */
#ifndef LZN_KERNELS_GEMM_H
#define LZN_KERNELS_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/packed.h"

/* out[t * out_stride + i] = W[row(i)][0..d) . x_t for i < n_rows, t < m,
 * with row(i) = idx ? idx[i] : i and x_t = (const char *)x + t * x_stride,
 * each in lzn_wtype_dot_type(type) (fp32 for F32/F16/BF16, Q8_0 blocks for
 * Q8_0/Q4_0), as dot_rows takes one. Each product is dot_rows' (Q types:
 * exact integer block sums, scaled per block in fp32); only the order of
 * the fp32 additions may differ from the reference's. */
typedef void (*lzn_gemm_fn)(float *out, size_t out_stride, const void *w, size_t row_bytes, size_t d,
                            const int32_t *idx, size_t n_rows, const void *x, size_t x_stride, size_t m);

/* y[t * y_stride + j] += sum_{i < n} coef[t * coef_stride + i] * W[row(i)][j]
 * for j < d, t < m, row(i) as above: axpy_rows for m tokens, each row read
 * once for all of them. Threads split the columns as for axpy_rows (w and
 * y advanced to a block-aligned j0). Summation order may differ from the
 * reference's (fp32 rounding only). */
typedef void (*lzn_axpy_gemm_fn)(float *y, size_t y_stride, size_t d, const void *w, size_t row_bytes,
                                 const int32_t *idx, const float *coef, size_t coef_stride, size_t n,
                                 size_t m);

/* axpy_gemm_q8: axpy_gemm with each token's coefficients rounded as
 * axpy_rows_q8 rounds them (kernels.h): token t's y is what the type's
 * axpy_rows_q8 gives for (idx, coef_t, n) alone (only FMA rounding may
 * differ from ref/'s), each row read once for all the tokens. idx is
 * required. NULL where no ISA up to the ceiling provides it: callers then
 * run axpy_rows_q8 token by token (linalg/gemm.c). */

/* Included by kernels.h once LZN_SLOT_OF is defined: slots like the others. */
typedef struct lzn_gemm_kernels {
  LZN_SLOT_OF(lzn_gemm_fn) gemm;
  LZN_SLOT_OF(lzn_axpy_gemm_fn) axpy_gemm;
  LZN_SLOT_OF(lzn_axpy_gemm_fn) axpy_gemm_q8;
  /* Rows packed at load (kernels/packed.h), Q8_0 and Q4_0 only. NULL where
   * no ISA up to the ceiling provides it: the loader then packs nothing. */
  LZN_SLOT_OF(lzn_gemm_packed_fn) packed;
} lzn_gemm_kernels;

#endif /* LZN_KERNELS_GEMM_H */
