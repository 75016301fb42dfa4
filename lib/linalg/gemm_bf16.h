/*
 * gemm_bf16.h: products of many tokens in bf16 through oneDNN, for BF16
 * weights (whose own batched kernels multiply in fp32) and the K-quants
 * (whose prompts would otherwise run a GEMV per token). Private.
 *
 * Where the machine multiplies bf16 natively (AVX512-BF16 or AMX, as
 * oneDNN reports it), a dense product of enough tokens rounds the tokens
 * to bf16 and multiplies with oneDNN's bf16 matmul, fp32 sums: BF16
 * weights as they lie, the K-quants dequantized to bf16 in panels of rows
 * (8 MiB; each panel's product runs before the next is made). One Zen 5
 * core, 64 tokens x 11008 x 4096: 17.7 ms on BF16 weights, 24.0 through
 * Q4_K panels, against 42 for our own BF16 kernels and 45 for Q4_K's GEMV
 * per token.
 *
 * What it rounds: x to bf16 (8 significant bits, relative error <= 2^-9,
 * as fine as BF16 weights themselves and finer than the int8 blocks that
 * Q8_0/Q4_0 products round x to), and the K-quants' dequantized weights
 * (the same bound, far below a K-quant's own error). Sums are fp32. Not
 * F16: rounding its weights or x to bf16 would make an F16 model's prompts
 * 8x coarser than its weights (measured 3.0e-3 of the logits against
 * PyTorch where F16's own error is 6.9e-4), so F16 keeps its exact
 * kernels. One token and fewer tokens keep them in every type.
 */
#ifndef LZN_GEMM_BF16_H
#define LZN_GEMM_BF16_H

#include "linalg/exec.h"
#include "core/matrix.h"

/* Tokens from which the bf16 product is used (AUTO), measured on the
 * 11008 x 4096 product, one Zen 5 core (`lzn-bench gemm`, ms, 1 / 2
 * threads): BF16 weights as they lie 7.7 at 16 tokens against 12.9 for the
 * own kernels; a panel costs its conversion, so the K-quants (whose own
 * path is a GEMV per token) start at 32: at 16 they lose (Q4_K 13.4 / 11.8
 * against 11.5 / 8.1), at 32 they win (17.0 / 14.0 against 22.1 / 14.4),
 * at 64 by 1.5-1.9x. */
#define LZN_BF16_MIN_TOKENS 16
#define LZN_BF16_PANEL_MIN_TOKENS 32

/* Whether products of this weight type can run in bf16 here: the type is
 * BF16 or a K-quant, the kernel table's ceiling has AVX512-BF16 (so
 * LZN_ISA below it turns it off), and oneDNN has a native bf16 kernel. */
int lzn_gemm_bf16_available(lzn_exec *ex, lzn_weight_type type);

/* Whether a dense product of m tokens does: available, and the backend
 * AUTO with m >= LZN_BF16_MIN_TOKENS (BF16) or LZN_BF16_PANEL_MIN_TOKENS
 * (the types converted in panels), or forced to oneDNN with m >= 2. */
int lzn_gemm_bf16_suits(lzn_exec *ex, lzn_weight_type type, int64_t m);

/* y[m][w->rows] = x[m][w->cols] W^T. Statuses: OK, NOMEM, BACKEND. */
lzn_status lzn_gemm_bf16_linear(lzn_exec *ex, float *y, const float *x, const lzn_matrix *w, int64_t m);

/* y[m][w_kn->cols] = x[m][w_kn->rows] W_kn (W stored [K][N], the MLP's
 * W_down^T). Same statuses. */
lzn_status lzn_gemm_bf16_kn(lzn_exec *ex, float *y, const float *x, const lzn_matrix *w_kn, int64_t m);

#endif /* LZN_GEMM_BF16_H */
