/*
 * dense.c: Y = X * W^T (+ bias) through oneDNN's matmul primitive.
 *
 * Creating a oneDNN primitive costs far more than running a small one, so
 * each lzn_dense keeps the primitives it made, keyed by shape, together with
 * memory objects whose data pointers are swapped in at every call.
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>

#include "linalg/onednn.h"
#include "linalg/exec.h"
#include "core/errors.h"
#include "cpu/cpu.h"

#define LZN_DENSE_CACHE 32

typedef struct dense_entry {
  int64_t m, n, k;
  int has_bias, w_is_kn;
  dnnl_primitive_t primitive;
  dnnl_memory_t src, weights, bias, dst;
} dense_entry;

struct lzn_dense {
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  dense_entry entries[LZN_DENSE_CACHE];
  int n_entries;
  int next_victim; /* round-robin replacement once the cache is full */
};

static lzn_status backend_fail(dnnl_status_t st, const char *what) {
  return lzn_fail(st == dnnl_out_of_memory ? LZN_ERR_NOMEM : LZN_ERR_BACKEND,
                  "oneDNN: %s failed with status %d", what, (int)st);
}

static void entry_release(dense_entry *e) {
  if (e->primitive) dnnl_primitive_destroy(e->primitive);
  if (e->src) dnnl_memory_destroy(e->src);
  if (e->weights) dnnl_memory_destroy(e->weights);
  if (e->bias) dnnl_memory_destroy(e->bias);
  if (e->dst) dnnl_memory_destroy(e->dst);
  memset(e, 0, sizeof *e);
}

lzn_status lzn_dense_create(lzn_dense **out) {
  *out = NULL;
  lzn_dense *dense = calloc(1, sizeof *dense);
  if (dense == NULL) return lzn_fail(LZN_ERR_NOMEM, "lzn_dense_create: out of memory");
  dnnl_status_t st = dnnl_engine_create(&dense->engine, dnnl_cpu, 0);
  if (st != dnnl_success) {
    free(dense);
    return backend_fail(st, "engine creation");
  }
  st = dnnl_stream_create(&dense->stream, dense->engine, dnnl_stream_default_flags);
  if (st != dnnl_success) {
    dnnl_engine_destroy(dense->engine);
    free(dense);
    return backend_fail(st, "stream creation");
  }
  *out = dense;
  return LZN_OK;
}

void lzn_dense_free(lzn_dense *dense) {
  if (dense == NULL) return;
  for (int i = 0; i < dense->n_entries; i++) entry_release(&dense->entries[i]);
  dnnl_stream_destroy(dense->stream);
  dnnl_engine_destroy(dense->engine);
  free(dense);
}

static dnnl_status_t matrix_desc(dnnl_memory_desc_t *md, int64_t rows, int64_t cols,
                                 int64_t row_stride, int64_t col_stride) {
  const dnnl_dims_t dims = {rows, cols};
  const dnnl_dims_t strides = {row_stride, col_stride};
  return dnnl_memory_desc_init_by_strides(md, 2, dims, dnnl_f32, strides);
}

static lzn_status entry_build(lzn_dense *dense, dense_entry *e, int64_t m, int64_t n,
                              int64_t k, int has_bias, int w_is_kn) {
  dnnl_memory_desc_t src_md, weights_md, bias_md, dst_md;
  dnnl_status_t st = matrix_desc(&src_md, m, k, k, 1);
  /* matmul's B is K x N; W as [N][K] row-major is B with strides (1, K). */
  if (st == dnnl_success) st = w_is_kn ? matrix_desc(&weights_md, k, n, n, 1)
                                       : matrix_desc(&weights_md, k, n, 1, k);
  if (st == dnnl_success) st = matrix_desc(&bias_md, 1, n, n, 1);
  if (st == dnnl_success) st = matrix_desc(&dst_md, m, n, n, 1);
  if (st != dnnl_success) return backend_fail(st, "memory descriptor");

  dnnl_matmul_desc_t desc;
  st = dnnl_matmul_desc_init(&desc, &src_md, &weights_md, has_bias ? &bias_md : NULL, &dst_md);
  if (st != dnnl_success) return backend_fail(st, "matmul descriptor");
  dnnl_primitive_desc_t pd;
  st = dnnl_primitive_desc_create(&pd, &desc, NULL, dense->engine, NULL);
  if (st != dnnl_success) return backend_fail(st, "matmul primitive descriptor");
  memset(e, 0, sizeof *e);
  st = dnnl_primitive_create(&e->primitive, pd);
  dnnl_primitive_desc_destroy(pd);
  if (st == dnnl_success) st = dnnl_memory_create(&e->src, &src_md, dense->engine, DNNL_MEMORY_NONE);
  if (st == dnnl_success) st = dnnl_memory_create(&e->weights, &weights_md, dense->engine, DNNL_MEMORY_NONE);
  if (st == dnnl_success && has_bias)
    st = dnnl_memory_create(&e->bias, &bias_md, dense->engine, DNNL_MEMORY_NONE);
  if (st == dnnl_success) st = dnnl_memory_create(&e->dst, &dst_md, dense->engine, DNNL_MEMORY_NONE);
  if (st != dnnl_success) {
    entry_release(e);
    return backend_fail(st, "matmul primitive");
  }
  e->m = m, e->n = n, e->k = k, e->has_bias = has_bias, e->w_is_kn = w_is_kn;
  return LZN_OK;
}

static lzn_status entry_find(lzn_dense *dense, int64_t m, int64_t n, int64_t k, int has_bias,
                             int w_is_kn, dense_entry **out) {
  for (int i = 0; i < dense->n_entries; i++) {
    dense_entry *e = &dense->entries[i];
    if (e->m == m && e->n == n && e->k == k && e->has_bias == has_bias && e->w_is_kn == w_is_kn) {
      *out = e;
      return LZN_OK;
    }
  }
  dense_entry *slot;
  if (dense->n_entries < LZN_DENSE_CACHE) {
    slot = &dense->entries[dense->n_entries];
  } else {
    slot = &dense->entries[dense->next_victim];
    dense->next_victim = (dense->next_victim + 1) % LZN_DENSE_CACHE;
    entry_release(slot);
  }
  lzn_status s = entry_build(dense, slot, m, n, k, has_bias, w_is_kn);
  if (s != LZN_OK) return s;
  if (slot == &dense->entries[dense->n_entries]) dense->n_entries++;
  *out = slot;
  return LZN_OK;
}

static lzn_status dense_run(lzn_dense *dense, float *y, const float *x, const float *w,
                           int w_is_kn, const float *bias, int64_t m, int64_t n, int64_t k,
                           int n_threads) {
  if (dense == NULL || y == NULL || x == NULL || w == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "dense linear: NULL %s",
                    dense == NULL ? "handle" : y == NULL ? "y" : x == NULL ? "x" : "w");
  if (m <= 0 || n <= 0 || k <= 0)
    return lzn_fail(LZN_ERR_INVALID_ARG, "dense linear: shape %lld x %lld x %lld must be positive",
                    (long long)m, (long long)n, (long long)k);
  if (n_threads < 1 || n_threads > LZN_MAX_THREADS)
    return lzn_fail(LZN_ERR_INVALID_ARG, "dense linear: n_threads = %d", n_threads);
  dense_entry *e;
  lzn_status s = entry_find(dense, m, n, k, bias != NULL, w_is_kn, &e);
  if (s != LZN_OK) return s;

  /* oneDNN's data handles are non-const, but it only reads src, weights and bias. */
  dnnl_status_t st = dnnl_memory_set_data_handle(e->src, (void *)(uintptr_t)x);
  if (st == dnnl_success) st = dnnl_memory_set_data_handle(e->weights, (void *)(uintptr_t)w);
  if (st == dnnl_success && bias) st = dnnl_memory_set_data_handle(e->bias, (void *)(uintptr_t)bias);
  if (st == dnnl_success) st = dnnl_memory_set_data_handle(e->dst, y);
  if (st != dnnl_success) return backend_fail(st, "setting data handles");

  dnnl_exec_arg_t args[4] = {
      {DNNL_ARG_SRC, e->src}, {DNNL_ARG_WEIGHTS, e->weights}, {DNNL_ARG_DST, e->dst},
      {DNNL_ARG_BIAS, e->bias}};
  /* oneDNN's OpenMP runtime uses omp_get_max_threads() of the calling
   * thread; set it for this call and give the caller its setting back. */
  const int caller_threads = omp_get_max_threads();
  omp_set_num_threads(n_threads);
  st = dnnl_primitive_execute(e->primitive, dense->stream, bias ? 4 : 3, args);
  if (st == dnnl_success) st = dnnl_stream_wait(dense->stream);
  omp_set_num_threads(caller_threads);
  if (st != dnnl_success) return backend_fail(st, "matmul execution");
  return LZN_OK;
}

lzn_status lzn_dense_linear(lzn_dense *dense, float *y, const float *x, const float *w,
                            const float *bias, int64_t m, int64_t n, int64_t k, int n_threads) {
  return dense_run(dense, y, x, w, 0, bias, m, n, k, n_threads);
}

lzn_status lzn_dense_linear_kn(lzn_dense *dense, float *y, const float *x, const float *w_kn,
                               const float *bias, int64_t m, int64_t n, int64_t k,
                               int n_threads) {
  return dense_run(dense, y, x, w_kn, 1, bias, m, n, k, n_threads);
}
