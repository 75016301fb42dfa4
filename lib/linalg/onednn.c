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

/* What a primitive is made for: the product's shape, the row strides (in
 * elements) of x, W and y, and the variant. */
typedef struct dense_shape {
  int64_t m, n, k, ldx, ldw, ldy;
  int has_bias, w_is_kn, bf16, accumulate;
} dense_shape;

typedef struct dense_entry {
  dense_shape shape;
  dnnl_primitive_t primitive;
  dnnl_memory_t src, weights, bias, dst;
} dense_entry;

struct lzn_dense {
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  dense_entry entries[LZN_DENSE_CACHE];
  int n_entries;
  int next_victim; /* round-robin replacement once the cache is full */
  int bf16_native;  /* -1 not asked yet, else lzn_dense_bf16_native's answer */
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
  dense->bf16_native = -1;
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
                                 int64_t row_stride, int64_t col_stride, dnnl_data_type_t type) {
  const dnnl_dims_t dims = {rows, cols};
  const dnnl_dims_t strides = {row_stride, col_stride};
  return dnnl_memory_desc_init_by_strides(md, 2, dims, type, strides);
}

static int shape_equal(const dense_shape *a, const dense_shape *b) {
  return a->m == b->m && a->n == b->n && a->k == b->k && a->ldx == b->ldx && a->ldw == b->ldw && a->ldy == b->ldy &&
         a->has_bias == b->has_bias && a->w_is_kn == b->w_is_kn && a->bf16 == b->bf16 && a->accumulate == b->accumulate;
}

/* The primitive's implementation name ("brg:avx512_core_bf16", "ref:any", ...). */
static const char *impl_name(const_dnnl_primitive_desc_t pd) {
  const char *name = NULL;
  if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) != dnnl_success || name == NULL) return "?";
  return name;
}

static lzn_status entry_build(lzn_dense *dense, dense_entry *e, const dense_shape *sh, const char **impl) {
  const dnnl_data_type_t in = sh->bf16 ? dnnl_bf16 : dnnl_f32;
  dnnl_memory_desc_t src_md, weights_md, bias_md, dst_md;
  dnnl_status_t st = matrix_desc(&src_md, sh->m, sh->k, sh->ldx, 1, in);
  /* matmul's B is K x N; W as [N][K] row-major is B with strides (1, ldw). */
  if (st == dnnl_success) st = sh->w_is_kn ? matrix_desc(&weights_md, sh->k, sh->n, sh->ldw, 1, in)
                                           : matrix_desc(&weights_md, sh->k, sh->n, 1, sh->ldw, in);
  if (st == dnnl_success) st = matrix_desc(&bias_md, 1, sh->n, sh->n, 1, dnnl_f32);
  if (st == dnnl_success) st = matrix_desc(&dst_md, sh->m, sh->n, sh->ldy, 1, dnnl_f32);
  if (st != dnnl_success) return backend_fail(st, "memory descriptor");

  dnnl_matmul_desc_t desc;
  st = dnnl_matmul_desc_init(&desc, &src_md, &weights_md, sh->has_bias ? &bias_md : NULL, &dst_md);
  if (st != dnnl_success) return backend_fail(st, "matmul descriptor");
  /* accumulate: y += x W^T, a sum post-op (the panels of K of one product) */
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t post_ops = NULL;
  if (sh->accumulate) {
    st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success) st = dnnl_post_ops_create(&post_ops);
    if (st == dnnl_success) st = dnnl_post_ops_append_sum(post_ops, 1.0f);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, post_ops);
  }
  dnnl_primitive_desc_t pd = NULL;
  if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &desc, attr, dense->engine, NULL);
  if (post_ops) dnnl_post_ops_destroy(post_ops);
  if (attr) dnnl_primitive_attr_destroy(attr);
  if (st != dnnl_success) return backend_fail(st, "matmul primitive descriptor");
  if (impl) *impl = impl_name(pd);
  memset(e, 0, sizeof *e);
  st = dnnl_primitive_create(&e->primitive, pd);
  dnnl_primitive_desc_destroy(pd);
  if (st == dnnl_success) st = dnnl_memory_create(&e->src, &src_md, dense->engine, DNNL_MEMORY_NONE);
  if (st == dnnl_success) st = dnnl_memory_create(&e->weights, &weights_md, dense->engine, DNNL_MEMORY_NONE);
  if (st == dnnl_success && sh->has_bias)
    st = dnnl_memory_create(&e->bias, &bias_md, dense->engine, DNNL_MEMORY_NONE);
  if (st == dnnl_success) st = dnnl_memory_create(&e->dst, &dst_md, dense->engine, DNNL_MEMORY_NONE);
  if (st != dnnl_success) {
    entry_release(e);
    return backend_fail(st, "matmul primitive");
  }
  e->shape = *sh;
  return LZN_OK;
}

static lzn_status entry_find(lzn_dense *dense, const dense_shape *sh, dense_entry **out) {
  for (int i = 0; i < dense->n_entries; i++) {
    dense_entry *e = &dense->entries[i];
    if (shape_equal(&e->shape, sh)) {
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
  lzn_status s = entry_build(dense, slot, sh, NULL);
  if (s != LZN_OK) return s;
  if (slot == &dense->entries[dense->n_entries]) dense->n_entries++;
  *out = slot;
  return LZN_OK;
}

static lzn_status dense_run(lzn_dense *dense, const dense_shape *sh, float *y, const void *x, const void *w,
                           const float *bias, int n_threads) {
  if (dense == NULL || y == NULL || x == NULL || w == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "dense linear: NULL %s",
                    dense == NULL ? "handle" : y == NULL ? "y" : x == NULL ? "x" : "w");
  if (sh->m <= 0 || sh->n <= 0 || sh->k <= 0)
    return lzn_fail(LZN_ERR_INVALID_ARG, "dense linear: shape %lld x %lld x %lld must be positive",
                    (long long)sh->m, (long long)sh->n, (long long)sh->k);
  if (n_threads < 1 || n_threads > LZN_MAX_THREADS)
    return lzn_fail(LZN_ERR_INVALID_ARG, "dense linear: n_threads = %d", n_threads);
  dense_entry *e;
  lzn_status s = entry_find(dense, sh, &e);
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
  const dense_shape sh = {.m = m, .n = n, .k = k, .ldx = k, .ldw = k, .ldy = n, .has_bias = bias != NULL};
  return dense_run(dense, &sh, y, x, w, bias, n_threads);
}

lzn_status lzn_dense_linear_kn(lzn_dense *dense, float *y, const float *x, const float *w_kn,
                               const float *bias, int64_t m, int64_t n, int64_t k,
                               int n_threads) {
  const dense_shape sh = {.m = m, .n = n, .k = k, .ldx = k, .ldw = n, .ldy = n, .has_bias = bias != NULL, .w_is_kn = 1};
  return dense_run(dense, &sh, y, x, w_kn, bias, n_threads);
}

lzn_status lzn_dense_linear_strided(lzn_dense *dense, const lzn_dense_args *a, int n_threads) {
  const dense_shape sh = {.m = a->m, .n = a->n, .k = a->k, .ldx = a->ldx, .ldw = a->ldw, .ldy = a->ldy,
                          .w_is_kn = a->w_is_kn, .bf16 = a->bf16, .accumulate = a->accumulate};
  return dense_run(dense, &sh, a->y, a->x, a->w, NULL, n_threads);
}

/* Native: oneDNN's own name for the kernel it picked says a bf16 ISA or
 * AMX; "ref" (its reference loops) or an emulation on plain AVX-512 would
 * be slower than widening to fp32. */
int lzn_dense_bf16_native(lzn_dense *dense) {
  if (dense == NULL) return 0;
  if (dense->bf16_native < 0) {
    const dense_shape sh = {.m = 16, .n = 64, .k = 64, .ldx = 64, .ldw = 64, .ldy = 64, .bf16 = 1};
    dense_entry probe;
    memset(&probe, 0, sizeof probe);
    const char *impl = "?";
    const lzn_status s = entry_build(dense, &probe, &sh, &impl);
    dense->bf16_native = s == LZN_OK && (strstr(impl, "bf16") != NULL || strstr(impl, "amx") != NULL);
    if (s == LZN_OK) entry_release(&probe);
  }
  return dense->bf16_native;
}
