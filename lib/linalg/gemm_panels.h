/*
 * gemm_panels.h: dense products of many tokens through oneDNN for the
 * weight types it cannot read as they are: F16, BF16 and the K-quants,
 * whose own batched kernels multiply in fp32 a register tile at a time
 * (F16, BF16) or not at all (the K-quants: a GEMV per token). Private.
 *
 * The weights go to oneDNN converted, in panels of rows (8 MiB, 2 MiB on
 * one thread; each panel's product runs before the next is made), or as
 * they lie:
 *
 *   bf16, where the CPU multiplies bf16 natively (AVX512-BF16 or AMX, as
 *   oneDNN reports it), for BF16 (read as it lies) and the K-quants
 *   (dequantized to bf16): the tokens are rounded to bf16 (8 significant
 *   bits, relative error <= 2^-9: as fine as BF16 weights themselves and
 *   finer than the int8 blocks Q8_0/Q4_0 products round x to), and so are
 *   the K-quants' dequantized weights (far below a K-quant's own error);
 *
 *   fp32 otherwise, and always for F16 (exact: an F16 weight widens to
 *   fp32 without rounding, and the sums are fp32 as in the own kernels,
 *   in another order). Through bf16 an F16 model's prompts would be 8x
 *   coarser than its weights (test_types measured its logits 3.0e-3 from
 *   PyTorch's, where F16's own error is 6.9e-4).
 *
 * One Zen 5 core, 11008 x 4096, 64 tokens: 17.6 ms on BF16 weights in
 * bf16, 25 through Q4_K panels in bf16, against 43 for the own BF16
 * kernels and 44 for Q4_K's GEMV per token; 128 tokens, F16 through fp32
 * panels ~68 ms, as oneDNN's sgemm on F32 weights, against ~84 for the own
 * F16 kernels. One token and fewer tokens keep the own kernels.
 */
#ifndef LZN_GEMM_PANELS_H
#define LZN_GEMM_PANELS_H

#include "core/matrix.h"
#include "linalg/exec.h"

/* Tokens from which AUTO sends a product here (`lzn-bench gemm`, 11008 x
 * 4096, ms, 1 / 2 threads; own = the kernels used otherwise):
 *   BF16 in bf16 as it lies, from 16: 7.4 / 5.1 against 12.0 / 7.8;
 *   K-quants in panels (bf16 or fp32), from 32, where a panel's conversion
 *   has paid: Q4_K at 16 lost (bf16 14.0 / 11.9 against 11.1 / 8.3), at 32
 *   won or tied (bf16 18.3 / 14.5 against 22.3 / 14.5; fp32 27.9 against
 *   30.3);
 *   F16 (and BF16 without native bf16) in fp32 panels, from 64: their own
 *   kernels multiply at fp32's rate already, so only oneDNN's better use
 *   of the cache counts (32: 28.1 against 25.4; 64: 41.7 / 21.9 against
 *   51.1 / 25.7). */
#define LZN_PANELS_MIN_TOKENS_IN_PLACE 16
#define LZN_PANELS_MIN_TOKENS 32
#define LZN_PANELS_MIN_TOKENS_WIDENED 64

/* The smallest m that AUTO sends here for this type, on this exec. */
int64_t lzn_gemm_panels_min_tokens(lzn_exec *ex, lzn_weight_type type);

/* Whether dense products of this weight type can run here: F16, BF16 or a
 * K-quant, with the kernel table above the scalar reference (LZN_ISA=scalar
 * keeps the reference path whole). */
int lzn_gemm_panels_available(lzn_exec *ex, lzn_weight_type type);

/* Whether they run in bf16 (tokens rounded: see above), else fp32. */
int lzn_gemm_panels_in_bf16(lzn_exec *ex, lzn_weight_type type);

/* Whether a dense product of m tokens runs here: available, and the
 * backend AUTO with m >= lzn_gemm_panels_min_tokens, or forced to oneDNN
 * with m >= 2. */
int lzn_gemm_panels_suits(lzn_exec *ex, lzn_weight_type type, int64_t m);

/* Whether a dense product of m tokens rounds x to bf16: it runs here, in
 * bf16 (what tests size their tolerance by). */
int lzn_gemm_panels_rounds_x(lzn_exec *ex, lzn_weight_type type, int64_t m);

/* y[m][w->rows] = x[m][w->cols] W^T. Statuses: OK, NOMEM, BACKEND. */
lzn_status lzn_gemm_panels_linear(lzn_exec *ex, float *y, const float *x, const lzn_matrix *w, int64_t m);

/* y[m][w_kn->cols] = x[m][w_kn->rows] W_kn (W stored [K][N], the MLP's
 * W_down^T). Same statuses. */
lzn_status lzn_gemm_panels_kn(lzn_exec *ex, float *y, const float *x, const lzn_matrix *w_kn, int64_t m);

#endif /* LZN_GEMM_PANELS_H */
