/*
 * public_ops.c: the public low-level sparse ops, for engines that keep their
 * own weights (lazyneuron.h): argument checks, then the kernels.
 */
#include <math.h>
#include <stdlib.h>

#include "core/errors.h"
#include "core/wtype.h"
#include "cpu/cpu.h"
#include "linalg/exec.h"
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
  *n_active = (int64_t)k->relu_compact.fn(h, (size_t)n, threshold, active_idx, active_val);
  return LZN_OK;
}

/* The checks and the call of lzn_sparse_down and lzn_sparse_down_typed. */
static lzn_status sparse_down(const char *fn, float *y, int64_t d, const void *w_t, lzn_weight_type type,
                              int64_t f, const int32_t *active_idx, const float *active_val,
                              int64_t n_active, int n_threads) {
  if (y == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: y is NULL", fn);
  if (w_t == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: w_t is NULL", fn);
  if (d <= 0) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: d = %lld, must be > 0", fn, (long long)d);
  if (f <= 0 || f > INT32_MAX)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: f = %lld, must be in [1, 2^31)", fn, (long long)f);
  if (n_active < 0 || n_active > f)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: n_active = %lld, must be in [0, f = %lld]", fn,
                    (long long)n_active, (long long)f);
  if (n_active > 0 && (active_idx == NULL || active_val == NULL))
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: active_%s is NULL with n_active = %lld", fn,
                    active_idx == NULL ? "idx" : "val", (long long)n_active);
  if (n_threads < 1 || n_threads > LZN_MAX_THREADS)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: n_threads = %d, must be in [1, %d]", fn, n_threads,
                    LZN_MAX_THREADS);
  for (int64_t t = 0; t < n_active; t++)
    if (active_idx[t] < 0 || active_idx[t] >= f)
      return lzn_fail(LZN_ERR_INVALID_ARG, "%s: active_idx[%lld] = %d, outside [0, f = %lld)", fn,
                      (long long)t, active_idx[t], (long long)f);
  const lzn_kernel_table *k;
  lzn_status s = lzn_kernels_get(&k);
  if (s != LZN_OK) return s;
  const lzn_matrix matrix = lzn_matrix_make(type, w_t, f, d);
  /* A stateless call has no context to keep threads in, or scratch: they
   * live for the call (threads ~20-50 us each to start; worth it only for
   * large products). */
  float *parts = malloc(sizeof(float) * (LZN_DOWN_PARTS - 1) * (size_t)d);
  if (parts == NULL) return lzn_fail(LZN_ERR_NOMEM, "%s: out of memory for the parts' sums", fn);
  lzn_pool *pool = NULL;
  if (n_threads > 1 && (s = lzn_pool_create(n_threads, &pool)) != LZN_OK) {
    free(parts);
    return s;
  }
  lzn_sparse_down_run(k, pool, y, &matrix, active_idx, active_val, (size_t)n_active, LZN_DOWN_EXACT, parts);
  lzn_pool_free(pool);
  free(parts);
  return LZN_OK;
}

LZN_API lzn_status lzn_sparse_down(float *y, int64_t d, const float *w_t, int64_t f,
                                   const int32_t *active_idx, const float *active_val,
                                   int64_t n_active, int n_threads) {
  return sparse_down("lzn_sparse_down", y, d, w_t, LZN_WEIGHTS_F32, f, active_idx, active_val,
                     n_active, n_threads);
}

LZN_API lzn_status lzn_sparse_down_typed(float *y, int64_t d, const void *w_t,
                                         lzn_weight_type type, int64_t f,
                                         const int32_t *active_idx, const float *active_val,
                                         int64_t n_active, int n_threads) {
  if (!lzn_wtype_valid(type))
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_sparse_down_typed: type = %d is not a weight type",
                    (int)type);
  return sparse_down("lzn_sparse_down_typed", y, d, w_t, type, f, active_idx, active_val, n_active,
                     n_threads);
}

LZN_API lzn_status lzn_weights_convert(lzn_weight_type type, const float *src, int64_t rows,
                                       int64_t cols, void *dst) {
  const char *fn = "lzn_weights_convert";
  const lzn_weight_type t = type;
  if (!lzn_wtype_valid(t))
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: type = %d is not a weight type", fn, (int)type);
  if (src == NULL || dst == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: src or dst is NULL", fn);
  if (rows < 0 || cols <= 0 || cols > INT32_MAX)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: rows = %lld, cols = %lld: need rows >= 0, cols in "
                    "[1, 2^31)", fn, (long long)rows, (long long)cols);
  const lzn_kernel_table *k;
  lzn_status s = lzn_kernels_get(&k);
  if (s != LZN_OK) return s;
  const size_t row_bytes = lzn_wtype_row_bytes(t, (size_t)cols);
  for (int64_t r = 0; r < rows; r++) {
    const float *row = src + (size_t)r * (size_t)cols;
    const size_t bad = lzn_wtype_first_unfit(t, row, (size_t)cols);
    if (bad < (size_t)cols)
      return lzn_fail(LZN_ERR_INVALID_ARG, "%s: src row %lld holds %g at column %zu, which %s "
                      "cannot hold", fn, (long long)r, (double)row[bad], bad, lzn_wtype_name(t));
  }
  for (int64_t r = 0; r < rows; r++)
    k->type[t].from_f32.fn((char *)dst + (size_t)r * row_bytes, src + (size_t)r * (size_t)cols,
                        (size_t)cols);
  return LZN_OK;
}
