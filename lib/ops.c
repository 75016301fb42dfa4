/*
 * ops.c: the public low-level sparse ops, and the threaded sparse
 * down-projection that the MLP uses too.
 */
#include <math.h>

#include "internal.h"

/* Below this much work (rows x columns) a parallel region costs more than it
 * saves: one 8 KiB row is ~0.25 us of reading on one core (AVX-512, ~35 GB/s). */
#define LZN_PARALLEL_MIN_WORK 65536

void lzn_sparse_down_run(const lzn_kernels *k, float *y, size_t d, const float *w_t,
                         const int32_t *idx, const float *coef, size_t n, int n_threads) {
  if (n == 0 || d == 0) return;
  if (n_threads <= 1 || n * d < LZN_PARALLEL_MIN_WORK) {
    k->axpy_rows(y, d, w_t, d, idx, coef, n);
    return;
  }
  /* Each slice of y is owned by one thread: no reduction, no lock, and the
   * result is the same for every thread count (each y[j] sees the same row
   * order). Slices are whole cache lines (16 floats) so threads never share
   * one. A worksharing loop, not omp_get_thread_num(): the runtime may give
   * fewer threads than asked (nested in a caller's parallel region,
   * OMP_THREAD_LIMIT), and every slice must still be computed. */
  const size_t per_slice = ((d + (size_t)n_threads - 1) / (size_t)n_threads + 15) & ~(size_t)15;
  const int n_slices = (int)((d + per_slice - 1) / per_slice);
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int slice = 0; slice < n_slices; slice++) {
    const size_t j0 = (size_t)slice * per_slice;
    const size_t len = d - j0 < per_slice ? d - j0 : per_slice;
    k->axpy_rows(y + j0, len, w_t + j0, d, idx, coef, n);
  }
}

LZN_API lzn_status lzn_relu_compact(const float *h, int64_t n, float threshold,
                                    int32_t *active_idx, float *active_val,
                                    int64_t *n_active) {
  if (h == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_relu_compact: h is NULL");
  if (active_idx == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_relu_compact: active_idx is NULL");
  if (active_val == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_relu_compact: active_val is NULL");
  if (n_active == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_relu_compact: n_active is NULL");
  if (n <= 0 || n > INT32_MAX)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_relu_compact: n = %lld, must be in [1, 2^31)", (long long)n);
  if (!(threshold >= 0.0f) || isinf(threshold))
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_relu_compact: threshold = %g, must be finite and >= 0", (double)threshold);
  const lzn_kernels *k;
  lzn_status s = lzn_kernels_get(&k);
  if (s != LZN_OK) return s;
  *n_active = (int64_t)k->relu_compact(h, (size_t)n, threshold, active_idx, active_val);
  return LZN_OK;
}

LZN_API lzn_status lzn_sparse_down(float *y, int64_t d, const float *w_t, int64_t f,
                                   const int32_t *active_idx, const float *active_val,
                                   int64_t n_active, int n_threads) {
  if (y == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_sparse_down: y is NULL");
  if (w_t == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_sparse_down: w_t is NULL");
  if (d <= 0) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_sparse_down: d = %lld, must be > 0", (long long)d);
  if (f <= 0 || f > INT32_MAX)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_sparse_down: f = %lld, must be in [1, 2^31)", (long long)f);
  if (n_active < 0 || n_active > f)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_sparse_down: n_active = %lld, must be in [0, f = %lld]",
                    (long long)n_active, (long long)f);
  if (n_active > 0 && (active_idx == NULL || active_val == NULL))
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_sparse_down: active_%s is NULL with n_active = %lld",
                    active_idx == NULL ? "idx" : "val", (long long)n_active);
  if (n_threads < 1 || n_threads > LZN_MAX_THREADS)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_sparse_down: n_threads = %d, must be in [1, %d]",
                    n_threads, LZN_MAX_THREADS);
  for (int64_t t = 0; t < n_active; t++)
    if (active_idx[t] < 0 || active_idx[t] >= f)
      return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_sparse_down: active_idx[%lld] = %d, outside [0, f = %lld)",
                      (long long)t, active_idx[t], (long long)f);
  const lzn_kernels *k;
  lzn_status s = lzn_kernels_get(&k);
  if (s != LZN_OK) return s;
  lzn_sparse_down_run(k, y, (size_t)d, w_t, active_idx, active_val, (size_t)n_active, n_threads);
  return LZN_OK;
}
