/*
 * dense.h: dense linear layers through oneDNN. Private to the library.
 *
 * Y[M x N] = X[M x K] * W^T (+ bias[N]), W row-major [N][K] as nn.Linear
 * stores it: the layout oneDNN reads fastest for M = 1 (18.5 GB/s against
 * 15.5 GB/s for W as [K][N], one Zen 4 core). Primitives are created once
 * per shape and cached in the lzn_dense handle, which belongs to one thread
 * at a time (one per context).
 */
#ifndef LZN_DENSE_H
#define LZN_DENSE_H

#include <stdint.h>
#include "lazyneuron.h"

typedef struct lzn_dense lzn_dense;

/* Statuses: OK, NOMEM, BACKEND. */
lzn_status lzn_dense_create(lzn_dense **out);
void lzn_dense_free(lzn_dense *dense);

/* y = x * w^T (+ bias), see above; bias may be NULL. Runs with n_threads
 * OpenMP threads and restores the caller's setting afterwards.
 * Statuses: OK, INVALID_ARG, NOMEM, BACKEND. */
lzn_status lzn_dense_linear(lzn_dense *dense, float *y, const float *x, const float *w,
                            const float *bias, int64_t m, int64_t n, int64_t k,
                            int n_threads);

/* y = x * w (+ bias) with w row-major [K][N]: the same product for a matrix
 * stored transposed (the MLP's w_down_t), so the dense fallback needs no
 * second copy of W_down. Same statuses. */
lzn_status lzn_dense_linear_kn(lzn_dense *dense, float *y, const float *x, const float *w_kn,
                               const float *bias, int64_t m, int64_t n, int64_t k,
                               int n_threads);

/* y[m][n] (rows ldy apart) = x[m][k] * W^T, or += with accumulate, fp32
 * sums: x and W both fp32, or both bf16 (bf16 = 1); x's rows ldx apart; W
 * as [N][K] rows ldw apart, or [K][N] (w_is_kn) rows ldw apart. Strides
 * in elements. oneDNN 2.6 runs its brgemm kernels only for dense x and y
 * (ldx = k, ldy = n); other strides fall back to a slower jit gemm. */
typedef struct lzn_dense_args {
  float *y;
  const void *x, *w;
  int64_t m, n, k, ldx, ldw, ldy;
  int w_is_kn, accumulate, bf16;
} lzn_dense_args;

/* Statuses as lzn_dense_linear. bf16 is faster than fp32 only where
 * lzn_dense_bf16_native says so. */
lzn_status lzn_dense_linear_strided(lzn_dense *dense, const lzn_dense_args *a, int n_threads);

/* 1 when oneDNN multiplies bf16 with a native kernel on this machine
 * (AVX512-BF16 or AMX), else 0; asked once per handle. */
int lzn_dense_bf16_native(lzn_dense *dense);

#endif /* LZN_DENSE_H */
