/*
 * linear.c: y = x * W^T (+ bias), W as nn.Linear stores it ([n][k]).
 *
 * One token (m = 1) is a matrix-vector product, bound by reading W. The
 * gemv kernel reads rows at ~30-35 GB/s on one Zen 4 core (AVX-512, fp32)
 * against ~20 GB/s for oneDNN's GEMV, so decode uses it, with output rows
 * split among threads. Batches (prefill) are compute-bound GEMMs: oneDNN.
 */
#include "linalg/linear.h"

#include "core/errors.h"
#include "core/wtype.h"

/* Rows per thread below which one thread is faster than waking others. */
#define LZN_GEMV_MIN_ROWS_PER_THREAD 64

static void gemv(const lzn_exec *ex, float *y, const float *x, const lzn_matrix *w,
                 const float *bias) {
  const lzn_gemv_fn kernel = ex->kernels->type[w->type].gemv;
  const int64_t n = w->rows;
  int threads = ex->n_threads;
  if (n < (int64_t)threads * LZN_GEMV_MIN_ROWS_PER_THREAD) threads = 1;
  const int64_t per_chunk = (n + threads - 1) / threads;
  /* A worksharing loop: every chunk is computed however many threads the
   * runtime gives (see sparse_down.c). */
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int chunk = 0; chunk < threads; chunk++) {
    const int64_t r0 = chunk * per_chunk, r1 = r0 + per_chunk < n ? r0 + per_chunk : n;
    if (r0 < r1)
      kernel(y + r0, lzn_matrix_row(w, r0), w->row_bytes, (size_t)w->cols, (size_t)(r1 - r0), x);
  }
  if (bias)
    for (int64_t i = 0; i < n; i++) y[i] += bias[i];
}

lzn_status lzn_linear(const lzn_exec *ex, float *y, const float *x, const lzn_matrix *w,
                      const float *bias, int64_t m) {
  if (m == 1) {
    gemv(ex, y, x, w, bias);
    return LZN_OK;
  }
  if (w->type != LZN_WTYPE_F32)
    return lzn_fail(LZN_ERR_UNSUPPORTED, "linear: %s weights in a batch are not supported yet",
                    lzn_wtype_name(w->type));
  return lzn_dense_linear(ex->dense, y, x, w->data, bias, m, w->rows, w->cols, ex->n_threads);
}
