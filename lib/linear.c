/*
 * linear.c: y = x * W^T (+ bias) for the forward pass, W as nn.Linear
 * stores it ([n][k]).
 *
 * One token (m = 1) is a matrix-vector product, bound by reading W. The
 * dot_rows kernel reads rows at ~30-35 GB/s on one Zen 4 core (AVX-512)
 * against ~20 GB/s for oneDNN's GEMV, so decode uses it, with output rows
 * split among threads. Batches (prefill) are compute-bound GEMMs: oneDNN.
 */
#include "model.h"

/* Rows per thread below which one thread is faster than waking others. */
#define LZN_GEMV_MIN_ROWS_PER_THREAD 64

static void gemv(const lzn_context *ctx, float *y, const float *x, const float *w,
                 const float *bias, int64_t n, int64_t k) {
  const lzn_kernels *kernels = ctx->kernels;
  int threads = ctx->params.n_threads;
  if (n < (int64_t)threads * LZN_GEMV_MIN_ROWS_PER_THREAD) threads = 1;
  const int64_t per_chunk = (n + threads - 1) / threads;
  /* A worksharing loop: every chunk is computed however many threads the
   * runtime gives (see ops.c). ctx->row_index is 0, 1, 2, ...: the kernel
   * takes row indices, and chunk c reads rows r0 .. r1. */
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int chunk = 0; chunk < threads; chunk++) {
    const int64_t r0 = chunk * per_chunk, r1 = r0 + per_chunk < n ? r0 + per_chunk : n;
    if (r0 < r1)
      kernels->dot_rows(y + r0, w, (size_t)k, (size_t)k, ctx->row_index + r0, (size_t)(r1 - r0), x);
  }
  if (bias)
    for (int64_t i = 0; i < n; i++) y[i] += bias[i];
}

lzn_status lzn_linear(lzn_context *ctx, float *y, const float *x, const float *w, const float *bias,
                      int64_t m, int64_t n, int64_t k) {
  if (m == 1 && n <= ctx->n_row_index) {
    gemv(ctx, y, x, w, bias, n, k);
    return LZN_OK;
  }
  return lzn_dense_linear(ctx->dense, y, x, w, bias, m, n, k, ctx->params.n_threads);
}
