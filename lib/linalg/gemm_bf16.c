/*
 * gemm_bf16.c: products of many tokens in bf16 through oneDNN
 * (linalg/gemm_bf16.h).
 *
 * A row of a panel goes from its type to fp32 (the table's to_f32, or
 * axpy_rows, below) and on to bf16 (BF16's from_f32), kernels tested
 * against the reference on their own.
 */
#include "linalg/gemm_bf16.h"

#include <omp.h>
#include <string.h>

#include "core/wtype.h"

/* A panel's bytes: few panels, so few oneDNN calls, each large enough to
 * split well between threads. Measured on the 4-layer opt-1.3b shape's
 * pp128 (t/s, 1 / 2 threads): 1 MiB Q4_K 507 / 454 (the down-projection's
 * K-slices of 256 rows did not scale at all); 8 MiB 425 / 726 (1 thread
 * within this VM's drift). */
#define BF16_PANEL_BYTES ((size_t)8 << 20)
/* Rows per conversion item, and the panel's rows a multiple of it. */
#define BF16_ROWS_PER_ITEM 16

int lzn_gemm_bf16_available(lzn_exec *ex, lzn_weight_type type) {
  if (type != LZN_WEIGHTS_BF16 && type != LZN_WEIGHTS_Q4_K && type != LZN_WEIGHTS_Q5_K && type != LZN_WEIGHTS_Q6_K)
    return 0;
  if (ex->kernels->isa < LZN_ISA_AVX512BF16 || ex->kernels->type[type].to_f32.fn == NULL) return 0;
  return lzn_dense_bf16_native(ex->dense);
}

int lzn_gemm_bf16_suits(lzn_exec *ex, lzn_weight_type type, int64_t m) {
  if (ex->backend == LZN_BACKEND_OWN || ex->backend == LZN_BACKEND_XSMM) return 0;
  const int64_t min_tokens = ex->backend == LZN_BACKEND_ONEDNN ? 2
                             : type == LZN_WEIGHTS_BF16  ? LZN_BF16_MIN_TOKENS
                                                         : LZN_BF16_PANEL_MIN_TOKENS;
  if (m < min_tokens) return 0;
  return lzn_gemm_bf16_available(ex, type);
}

typedef struct panel_job {
  const lzn_type_kernels *type, *bf16;
  const lzn_matrix *w;
  int64_t r0, n_rows; /* W's rows [r0, r0 + n_rows) */
  uint16_t *panel;    /* [n_rows][w->cols] */
  float *rows_f32;    /* w->cols floats per thread */
} panel_job;

static void panel_item(void *arg, int item, int thread) {
  const panel_job *j = arg;
  const size_t d = (size_t)j->w->cols;
  float *f = j->rows_f32 + (size_t)thread * d;
  const int64_t first = (int64_t)item * BF16_ROWS_PER_ITEM;
  const int64_t end = first + BF16_ROWS_PER_ITEM < j->n_rows ? first + BF16_ROWS_PER_ITEM : j->n_rows;
  /* The K-quants' to_f32 is the scalar reference only (~1.7 ns a weight,
   * slower than the product it feeds); their SIMD axpy_rows with
   * coefficient 1 on a zeroed row is the same dequantization, up to the
   * last bit of fp32, which bf16 rounds away. */
  const int simd_to_f32 = j->type->to_f32.isa > LZN_ISA_SCALAR;
  static const int32_t first_row = 0;
  static const float one = 1.0f;
  for (int64_t r = first; r < end; r++) {
    const void *row = lzn_matrix_row(j->w, j->r0 + r);
    if (simd_to_f32) {
      j->type->to_f32.fn(f, row, d);
    } else {
      memset(f, 0, d * sizeof(float));
      j->type->axpy_rows.fn(f, d, row, j->w->row_bytes, &first_row, &one, 1);
    }
    j->bf16->from_f32.fn(j->panel + (size_t)r * d, f, d);
  }
}

/* Rows [r0, r0 + n) of w into panel, on the OpenMP threads that then
 * multiply it: handing each panel between the library's pool and oneDNN's
 * team left one of them spinning on the core the other needed (2 threads:
 * Q6_K pp128 at 0.63x of F32 on the pool). */
static void make_panel(lzn_exec *ex, panel_job *job, int64_t r0, int64_t n) {
  job->r0 = r0, job->n_rows = n;
  const int items = (int)((n + BF16_ROWS_PER_ITEM - 1) / BF16_ROWS_PER_ITEM);
  const int threads = ex->n_threads < items ? ex->n_threads : items;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int item = 0; item < items; item++) panel_item(job, item, omp_get_thread_num());
}

/* The scratch: x in bf16 [m][k]; a panel of panel_rows rows of w in bf16;
 * the threads' fp32 rows; and a staging area of m x panel_rows floats for
 * a panel's outputs (linear) or its slice of x (kn). oneDNN 2.6 takes its
 * brgemm kernels only for dense src and dst (rows exactly k and n apart);
 * with y's or x's own strides it fell back to a jit gemm that did not
 * scale to a second thread, so the panels stage through dense copies. */
static lzn_status prepare(lzn_exec *ex, const float *x, size_t k, int64_t m, const lzn_matrix *w, int64_t panel_rows,
                          uint16_t **x_bf16, panel_job *job, void **staging) {
  const size_t x_bytes = ((size_t)m * k * sizeof(uint16_t) + 63) & ~(size_t)63;
  const size_t d = (size_t)w->cols;
  const size_t panel_bytes = ((size_t)panel_rows * d * sizeof(uint16_t) + 63) & ~(size_t)63;
  const size_t rows_bytes = ((size_t)ex->n_threads * d * sizeof(float) + 63) & ~(size_t)63;
  const size_t staging_bytes = (size_t)m * (size_t)panel_rows * sizeof(float);
  void *buf;
  const lzn_status s = lzn_exec_scratch(ex, LZN_SCRATCH_BF16, x_bytes + panel_bytes + rows_bytes + staging_bytes, &buf);
  if (s != LZN_OK) return s;
  uint16_t *xb = buf;
  const lzn_type_kernels *bf16 = &ex->kernels->type[LZN_WEIGHTS_BF16];
  for (int64_t t = 0; t < m; t++) bf16->from_f32.fn(xb + (size_t)t * k, x + (size_t)t * k, k);
  *x_bf16 = xb;
  *job = (panel_job){.type = &ex->kernels->type[w->type], .bf16 = bf16, .w = w,
                     .panel = (uint16_t *)((char *)buf + x_bytes),
                     .rows_f32 = (float *)((char *)buf + x_bytes + panel_bytes)};
  *staging = (char *)buf + x_bytes + panel_bytes + rows_bytes;
  return LZN_OK;
}

/* Rows of w per panel: whole conversion items within BF16_PANEL_BYTES,
 * at least one item, at most all rows; 0 for BF16 (read in place). */
static int64_t panel_rows(const lzn_matrix *w) {
  if (w->type == LZN_WEIGHTS_BF16) return 0;
  int64_t p = (int64_t)(BF16_PANEL_BYTES / ((size_t)w->cols * sizeof(uint16_t)));
  p = p / BF16_ROWS_PER_ITEM * BF16_ROWS_PER_ITEM;
  if (p < BF16_ROWS_PER_ITEM) p = BF16_ROWS_PER_ITEM;
  return p < w->rows ? p : w->rows;
}

/* A product under way: its arguments as a whole (x in bf16, y, m, n, k),
 * the panel job and the staging area; panel_rows 0: W read as it lies. */
typedef struct product {
  lzn_dense_bf16_args a;
  panel_job job;
  void *staging;
  int64_t panel_rows;
} product;

static lzn_status product_start(lzn_exec *ex, product *p, float *y, const float *x, const lzn_matrix *w, int64_t m,
                                int kn) {
  const int64_t k = kn ? w->rows : w->cols, n = kn ? w->cols : w->rows;
  p->panel_rows = panel_rows(w);
  uint16_t *xb = NULL;
  const lzn_status s = prepare(ex, x, (size_t)k, m, w, p->panel_rows, &xb, &p->job, &p->staging);
  p->a = (lzn_dense_bf16_args){.y = y, .x = xb, .m = m, .n = n, .k = k, .ldx = k, .ldy = n, .w_is_kn = kn};
  return s;
}

/* BF16 weights: the whole product on W as it lies. */
static lzn_status product_in_place(lzn_exec *ex, product *p, const lzn_matrix *w) {
  p->a.w = w->data, p->a.ldw = (int64_t)(w->row_bytes / sizeof(uint16_t));
  return lzn_dense_linear_bf16(ex->dense, &p->a, ex->n_threads);
}

lzn_status lzn_gemm_bf16_linear(lzn_exec *ex, float *y, const float *x, const lzn_matrix *w, int64_t m) {
  product p;
  lzn_status s = product_start(ex, &p, y, x, w, m, 0);
  if (s != LZN_OK || p.panel_rows == 0) return s != LZN_OK ? s : product_in_place(ex, &p, w);
  /* Panels of rows: each one the outputs [r0, r0 + rows) of every token,
   * made dense in the staging area, then put in place. */
  const int64_t n = w->rows, k = w->cols;
  float *out = p.staging;
  for (int64_t r0 = 0; r0 < n && s == LZN_OK; r0 += p.panel_rows) {
    const int64_t rows = n - r0 < p.panel_rows ? n - r0 : p.panel_rows;
    make_panel(ex, &p.job, r0, rows);
    p.a.y = out, p.a.w = p.job.panel, p.a.n = rows, p.a.ldw = k, p.a.ldy = rows;
    s = lzn_dense_linear_bf16(ex->dense, &p.a, ex->n_threads);
    for (int64_t t = 0; t < m && s == LZN_OK; t++)
      memcpy(y + (size_t)(t * n + r0), out + (size_t)(t * rows), (size_t)rows * sizeof(float));
  }
  return s;
}

lzn_status lzn_gemm_bf16_kn(lzn_exec *ex, float *y, const float *x, const lzn_matrix *w_kn, int64_t m) {
  product p;
  lzn_status s = product_start(ex, &p, y, x, w_kn, m, 1);
  if (s != LZN_OK || p.panel_rows == 0) return s != LZN_OK ? s : product_in_place(ex, &p, w_kn);
  /* Panels of K: each adds its slice of the sum to y (the first sets it),
   * against its slice of x, made dense in the staging area. */
  const int64_t k = w_kn->rows, n = w_kn->cols;
  const uint16_t *xb = p.a.x;
  uint16_t *x_slice = p.staging;
  for (int64_t k0 = 0; k0 < k && s == LZN_OK; k0 += p.panel_rows) {
    const int64_t rows = k - k0 < p.panel_rows ? k - k0 : p.panel_rows;
    make_panel(ex, &p.job, k0, rows);
    for (int64_t t = 0; t < m; t++)
      memcpy(x_slice + (size_t)(t * rows), xb + (size_t)(t * k + k0), (size_t)rows * sizeof(uint16_t));
    p.a.x = x_slice, p.a.ldx = rows, p.a.k = rows, p.a.w = p.job.panel, p.a.ldw = n, p.a.accumulate = k0 > 0;
    s = lzn_dense_linear_bf16(ex->dense, &p.a, ex->n_threads);
  }
  return s;
}
