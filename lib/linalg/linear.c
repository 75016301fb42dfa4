/*
 * linear.c: linear layers on typed weights.
 *
 * One token (m = 1) is a matrix-vector product, bound by reading W. The
 * type's gemv kernel reads rows at ~30-35 GB/s on one Zen 4 core (AVX-512,
 * fp32) against ~20 GB/s for oneDNN's GEMV, so decode uses it, with output
 * rows split among threads. Batches (prefill) are compute-bound GEMMs:
 * oneDNN's sgemm on W itself for F32; every other type through the table's
 * gemm kernels on W in place (linalg/gemm.c: int8 block products for
 * Q8_0/Q4_0, weights widened in registers for F16/BF16). Widening tiles of
 * W to fp32 for oneDNN instead cost a single-threaded pass over W per call
 * and made a Q4_0 prompt 0.5x as fast as an F32 one (issue 20).
 */
#include "linalg/linear.h"

#include <string.h>

#include "core/errors.h"
#include "linalg/gemm.h"
#include "linalg/gemm_panels.h"
#include "linalg/sparse_down.h"
#include "linalg/xsmm.h"

/* Rows per item below which one thread is faster than waking others, and
 * items per thread: several, so a thread the OS takes away holds back a
 * small share (linalg/pool.h). */
#define LZN_GEMV_MIN_ROWS_PER_ITEM 64
#define LZN_GEMV_ITEMS_PER_THREAD 4
/* Items start on a multiple of this many rows: the row kernels take rows
 * in groups (8 for the element types, kernels/generic/rows.h) and the last
 * partial group of a call another way, whose sums differ in order. Were
 * the cuts free, a row's bits would depend on the thread count (F32 decode
 * on 2 threads differed from 1 in the last bit; tests/test_synthetic.c). */
#define LZN_GEMV_ITEM_ALIGN 16

/* out[t] for t in [0, n): rows t of w (idx NULL), or w's rows idx[t],
 * dotted with x: one segment of a rows job. */
typedef struct rows_segment {
  lzn_gemv_fn gemv;
  lzn_dot_rows_fn dot_rows;
  float *out;
  const lzn_matrix *w;
  const int32_t *idx;
  const void *x;
  size_t n, per_item;
  int first_item; /* its items are [first_item, first_item + items) of the job */
} rows_segment;

/* The rows of one to LZN_LINEAR_GROUP_MAX matrices, as pool items of
 * consecutive rows: one pass of the pool over all of them. */
typedef struct rows_job {
  rows_segment seg[LZN_LINEAR_GROUP_MAX];
  int n_seg;
} rows_job;

static void rows_item(void *arg, int item, int thread) {
  (void)thread;
  const rows_job *j = arg;
  int k = j->n_seg - 1;
  while (k > 0 && item < j->seg[k].first_item) k--;
  const rows_segment *g = &j->seg[k];
  const size_t t0 = (size_t)(item - g->first_item) * g->per_item;
  const size_t t1 = t0 + g->per_item < g->n ? t0 + g->per_item : g->n;
  if (g->idx) g->dot_rows(g->out + t0, g->w->data, g->w->row_bytes, (size_t)g->w->cols, g->idx + t0, t1 - t0, g->x);
  else g->gemv(g->out + t0, lzn_matrix_row(g->w, (int64_t)t0), g->w->row_bytes, (size_t)g->w->cols, t1 - t0, g->x);
}

/* Cuts each segment into items of at least LZN_GEMV_MIN_ROWS_PER_ITEM
 * rows, about LZN_GEMV_ITEMS_PER_THREAD per thread over the whole job,
 * then runs them. */
static void run_rows(lzn_exec *ex, rows_job *job) {
  const int threads = lzn_pool_threads(ex->pool);
  size_t total = 0;
  for (int k = 0; k < job->n_seg; k++) total += job->seg[k].n;
  const size_t want = (size_t)threads * LZN_GEMV_ITEMS_PER_THREAD;
  int items = 0;
  for (int k = 0; k < job->n_seg; k++) {
    rows_segment *g = &job->seg[k];
    size_t n_items = total ? (want * g->n + total - 1) / total : 1;
    if (g->n < n_items * LZN_GEMV_MIN_ROWS_PER_ITEM) n_items = g->n / LZN_GEMV_MIN_ROWS_PER_ITEM;
    if (n_items < 1) n_items = 1;
    g->per_item = g->n ? ((g->n + n_items - 1) / n_items + LZN_GEMV_ITEM_ALIGN - 1) / LZN_GEMV_ITEM_ALIGN *
                             LZN_GEMV_ITEM_ALIGN
                       : 1;
    g->first_item = items;
    items += g->n ? (int)((g->n + g->per_item - 1) / g->per_item) : 0;
  }
  lzn_pool_run(ex->pool, items, threads, rows_item, job);
}

/* x in the format the type's dot kernels take (lzn_wtype_dot_type): x
 * itself for F32, else converted into dst. */
static const void *convert_x(const lzn_exec *ex, lzn_weight_type type, const float *x, size_t k, void *dst) {
  const lzn_weight_type x_type = lzn_wtype_dot_type(type);
  if (x_type == LZN_WEIGHTS_F32) return x;
  ex->kernels->type[x_type].from_f32.fn(dst, x, k);
  return dst;
}

/* Bytes of x converted for a type's dot kernels (0 for F32), in whole
 * cache lines. */
static size_t converted_bytes(lzn_weight_type type, size_t k) {
  const lzn_weight_type x_type = lzn_wtype_dot_type(type);
  return x_type == LZN_WEIGHTS_F32 ? 0 : (lzn_wtype_row_bytes(x_type, k) + 63) & ~(size_t)63;
}

static lzn_status prepare_x(lzn_exec *ex, lzn_weight_type type, const float *x, size_t k, const void **out) {
  void *dst = NULL;
  const size_t bytes = converted_bytes(type, k);
  const lzn_status s = bytes ? lzn_exec_scratch(ex, LZN_SCRATCH_X_DOT, bytes, &dst) : LZN_OK;
  if (s == LZN_OK) *out = convert_x(ex, type, x, k, dst);
  return s;
}

/* y[t][i] += bias[i] for m rows of n; nothing without a bias. */
static void add_bias(float *y, const float *bias, int64_t m, int64_t n) {
  if (bias == NULL) return;
  for (int64_t t = 0; t < m; t++) {
    float *row = y + t * n;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) row[i] += bias[i];
  }
}

static lzn_status gemv(lzn_exec *ex, float *y, const float *x_f32, const lzn_matrix *w,
                       const float *bias) {
  const lzn_linear_out one = {y, w, bias};
  return lzn_linear_group(ex, x_f32, &one, 1, 1);
}

lzn_status lzn_linear_group(lzn_exec *ex, const float *x, const lzn_linear_out *outs, int n_outs, int64_t m) {
  if (m != 1) {
    lzn_status s = LZN_OK;
    for (int k = 0; s == LZN_OK && k < n_outs; k++) s = lzn_linear(ex, outs[k].y, x, outs[k].w, outs[k].bias, m);
    return s;
  }
  /* One slot of scratch per matrix, reserved at once (growing it later
   * would move the slots already filled); x converted once per dot type. */
  size_t slot = 0;
  for (int k = 0; k < n_outs; k++) {
    const size_t bytes = converted_bytes(outs[k].w->type, (size_t)outs[k].w->cols);
    slot = bytes > slot ? bytes : slot;
  }
  void *slots = NULL;
  const lzn_status s = slot ? lzn_exec_scratch(ex, LZN_SCRATCH_X_DOT, slot * (size_t)n_outs, &slots) : LZN_OK;
  if (s != LZN_OK) return s;
  rows_job job = {.n_seg = n_outs};
  for (int k = 0; k < n_outs; k++) {
    const lzn_matrix *w = outs[k].w;
    int same = -1;
    for (int e = 0; e < k && same < 0; e++)
      if (lzn_wtype_dot_type(outs[e].w->type) == lzn_wtype_dot_type(w->type)) same = e;
    /* No slot (F32 x is used as it is): no pointer into one either
     * (NULL + 0 is undefined; clang's UBSan stops on it). */
    void *own_slot = slot ? (char *)slots + slot * (size_t)k : NULL;
    const void *xk = same >= 0 ? job.seg[same].x : convert_x(ex, w->type, x, (size_t)w->cols, own_slot);
    job.seg[k] = (rows_segment){.gemv = ex->kernels->type[w->type].gemv.fn, .out = outs[k].y, .w = w, .x = xk,
                                .n = (size_t)w->rows};
  }
  run_rows(ex, &job);
  for (int k = 0; k < n_outs; k++) add_bias(outs[k].y, outs[k].bias, 1, outs[k].w->rows);
  return LZN_OK;
}

/* y[t] = bias, or 0, for m rows of n. */
static void bias_rows(float *y, const float *bias, int64_t m, int64_t n) {
  for (int64_t t = 0; t < m; t++) {
    float *row = y + (size_t)(t * n);
    if (bias) memcpy(row, bias, (size_t)n * sizeof(float));
    else memset(row, 0, (size_t)n * sizeof(float));
  }
}

/* y = x W^T + bias for a W that is not F32: the type's gemm kernel on the
 * packed copy where the model made one (kernels/packed.h says why), else
 * oneDNN on converted panels where it suits the type and m
 * (linalg/gemm_panels.h),
 * else the type's kernels on W in place (linalg/gemm.c), then the bias. */
static lzn_status linear_gemm(lzn_exec *ex, float *y, const float *x, const lzn_matrix *w, const float *bias,
                              int64_t m) {
  lzn_status s;
  if (lzn_gemm_can_pack_read(ex, w)) {
    ex->used |= 1u << LZN_BACKEND_OWN;
    s = lzn_gemm_packed(ex, y, (size_t)w->rows, x, w, m);
  } else if (lzn_gemm_panels_suits(ex, w->type, m)) {
    ex->used |= 1u << LZN_BACKEND_ONEDNN;
    s = lzn_gemm_panels_linear(ex, y, x, w, m);
  } else {
    ex->used |= 1u << LZN_BACKEND_OWN; /* also libxsmm's fallback */
    s = lzn_gemm_rows(ex, y, (size_t)w->rows, x, w, NULL, (size_t)w->rows, m);
  }
  if (s == LZN_OK) add_bias(y, bias, m, w->rows);
  return s;
}

lzn_status lzn_linear(lzn_exec *ex, float *y, const float *x, const lzn_matrix *w,
                      const float *bias, int64_t m) {
  if (m == 1) return gemv(ex, y, x, w, bias);
  const lzn_backend b = lzn_backend_for(ex, w, LZN_PRODUCT_LINEAR, m);
  if (b == LZN_BACKEND_XSMM && lzn_xsmm_linear(ex, y, x, w, m)) {
    ex->used |= 1u << LZN_BACKEND_XSMM;
    add_bias(y, bias, m, w->rows);
    return LZN_OK;
  }
  if (b == LZN_BACKEND_ONEDNN) {
    ex->used |= 1u << LZN_BACKEND_ONEDNN;
    return lzn_dense_linear(ex->dense, y, x, w->data, bias, m, w->rows, w->cols, ex->n_threads);
  }
  return linear_gemm(ex, y, x, w, bias, m);
}

/* 0, 1, ..., n - 1, kept in the exec's scratch: filled over its whole
 * capacity whenever it grows, so any n it holds is ready. */
static lzn_status all_rows(lzn_exec *ex, int64_t n, const int32_t **out) {
  const size_t had = ex->scratch_bytes[LZN_SCRATCH_ALL_ROWS];
  void *rows;
  const lzn_status s = lzn_exec_scratch(ex, LZN_SCRATCH_ALL_ROWS, (size_t)n * sizeof(int32_t), &rows);
  if (s != LZN_OK) return s;
  int32_t *r = rows;
  const size_t capacity = ex->scratch_bytes[LZN_SCRATCH_ALL_ROWS] / sizeof(int32_t);
  if (ex->scratch_bytes[LZN_SCRATCH_ALL_ROWS] != had)
    for (size_t i = 0; i < capacity; i++) r[i] = (int32_t)i;
  *out = r;
  return LZN_OK;
}

lzn_status lzn_linear_kn(lzn_exec *ex, float *y, const float *x, const lzn_matrix *w_kn,
                         const float *bias, int64_t m) {
  if (m == 1) {
    const int64_t n = w_kn->cols;
    const int32_t *rows;
    const lzn_status s = all_rows(ex, w_kn->rows, &rows);
    if (s != LZN_OK) return s;
    bias_rows(y, bias, 1, n);
    return lzn_sparse_down_exec(ex, y, w_kn, rows, x, (size_t)w_kn->rows);
  }
  const lzn_backend b = lzn_backend_for(ex, w_kn, LZN_PRODUCT_KN, m);
  if (b == LZN_BACKEND_ONEDNN) {
    ex->used |= 1u << LZN_BACKEND_ONEDNN;
    return lzn_dense_linear_kn(ex->dense, y, x, w_kn->data, bias, m, w_kn->cols, w_kn->rows,
                               ex->n_threads);
  }
  if (lzn_gemm_panels_suits(ex, w_kn->type, m)) {
    ex->used |= 1u << LZN_BACKEND_ONEDNN;
    const lzn_status s = lzn_gemm_panels_kn(ex, y, x, w_kn, m);
    if (s == LZN_OK) add_bias(y, bias, m, w_kn->cols);
    return s;
  }
  /* Every row of W [K][N] against the tokens' K coefficients. */
  bias_rows(y, bias, m, w_kn->cols);
  const size_t n = (size_t)w_kn->cols, k = (size_t)w_kn->rows;
  if (b == LZN_BACKEND_XSMM && lzn_xsmm_union_axpy(ex, y, n, w_kn, NULL, k, x, k, m)) {
    ex->used |= 1u << LZN_BACKEND_XSMM;
    return LZN_OK;
  }
  ex->used |= 1u << LZN_BACKEND_OWN;
  const int rounded = lzn_wtype_is_block(w_kn->type);
  const int32_t *rows = NULL;
  if (rounded || !lzn_gemm_native(ex, w_kn->type)) { /* the one-token kernels want an index list */
    const lzn_status s = all_rows(ex, w_kn->rows, &rows);
    if (s != LZN_OK) return s;
  }
  /* A block type rounds its coefficients as one token does (above). */
  if (rounded) return lzn_gemm_axpy_rounded(ex, y, n, w_kn, rows, k, x, k, m);
  lzn_gemm_axpy(ex, y, n, w_kn, rows, k, x, k, m);
  return LZN_OK;
}

lzn_status lzn_linear_rows(lzn_exec *ex, float *out, const float *x_f32, const lzn_matrix *w,
                           const int32_t *idx, size_t n) {
  const void *x;
  const lzn_status s = prepare_x(ex, w->type, x_f32, (size_t)w->cols, &x);
  if (s != LZN_OK || n == 0) return s;
  rows_job job = {.n_seg = 1};
  job.seg[0] = (rows_segment){.dot_rows = ex->kernels->type[w->type].dot_rows.fn, .out = out, .w = w, .idx = idx,
                              .x = x, .n = n};
  run_rows(ex, &job);
  return LZN_OK;
}

lzn_status lzn_linear_down(lzn_exec *ex, float *y, const float *h, const lzn_matrix *down,
                           const lzn_matrix *down_t, const float *bias, int64_t m) {
  if (down->data) return lzn_linear(ex, y, h, down, bias, m);
  return lzn_linear_kn(ex, y, h, down_t, bias, m);
}
