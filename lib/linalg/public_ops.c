/*
 * public_ops.c: the public low-level sparse ops, for engines that keep their
 * own weights (lazyneuron.h): argument checks, then the kernels.
 */
#include <math.h>

#include "core/errors.h"
#include "cpu/cpu.h"
#include "linalg/sparse_down.h"

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
  const lzn_kernel_table *k;
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
  const lzn_kernel_table *k;
  lzn_status s = lzn_kernels_get(&k);
  if (s != LZN_OK) return s;
  const lzn_matrix matrix = lzn_matrix_make(LZN_WTYPE_F32, w_t, f, d);
  lzn_sparse_down_run(k, y, &matrix, active_idx, active_val, (size_t)n_active, n_threads);
  return LZN_OK;
}
