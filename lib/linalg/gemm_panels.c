/*
 * gemm_panels.c: dense products of many tokens through oneDNN on weights
 * converted in panels, or on BF16 as it lies (linalg/gemm_panels.h).
 *
 * A row of a panel goes from its type to fp32 (the table's to_f32, or
 * axpy_rows, below) and, for a bf16 product, on to bf16 (BF16's
 * from_f32): kernels tested against the reference on their own.
 */
#include "linalg/gemm_panels.h"

#include <omp.h>
#include <string.h>

#include "core/wtype.h"
#include "linalg/row_f32.h"

/* A panel's bytes: with several threads few panels, so few oneDNN calls,
 * each large enough to split well between them; on one thread smaller
 * ones, whose converted rows are still in L2/L3 when oneDNN reads them.
 * Measured on the 4-layer opt-1.3b shape's pp128 (t/s, 1 / 2 threads):
 * 1 MiB Q4_K 507 / 454 (the down-projection's K-slices of 256 rows did not
 * scale at all); 8 MiB 425 / 726. On the 4-layer relullama-7b shape (Zen 4,
 * 2 rounds alternating, one thread): F16 57.9 / 57.0 with 8 MiB, 63.3 /
 * 60.3 with 2 MiB, 60.8 / 60.3 with 1 MiB, against F32 61-64; Q4_K 127.6 /
 * 120.6, 131.5 / 127.8, 133.7 / 131.4. */
#define PANEL_BYTES_THREADS ((size_t)8 << 20)
#define PANEL_BYTES_ONE_THREAD ((size_t)2 << 20)
/* Rows per conversion item, and the panel's rows a multiple of it. */
#define ROWS_PER_ITEM 16

int lzn_gemm_panels_available(lzn_exec *ex, lzn_weight_type type) {
  if (type != LZN_WEIGHTS_F16 && type != LZN_WEIGHTS_BF16 && type != LZN_WEIGHTS_Q4_K && type != LZN_WEIGHTS_Q5_K &&
      type != LZN_WEIGHTS_Q6_K)
    return 0;
  return ex->kernels->isa > LZN_ISA_SCALAR && ex->kernels->type[type].to_f32.fn != NULL;
}

int lzn_gemm_panels_in_bf16(lzn_exec *ex, lzn_weight_type type) {
  return type != LZN_WEIGHTS_F16 && ex->kernels->isa >= LZN_ISA_AVX512BF16 && lzn_dense_bf16_native(ex->dense);
}

/* BF16 read as it lies: a bf16 product on BF16 weights. */
static int in_place(lzn_exec *ex, lzn_weight_type type) {
  return type == LZN_WEIGHTS_BF16 && lzn_gemm_panels_in_bf16(ex, type);
}

int64_t lzn_gemm_panels_min_tokens(lzn_exec *ex, lzn_weight_type type) {
  if (in_place(ex, type)) return LZN_PANELS_MIN_TOKENS_IN_PLACE;
  if (type == LZN_WEIGHTS_F16 || type == LZN_WEIGHTS_BF16) return LZN_PANELS_MIN_TOKENS_WIDENED;
  return LZN_PANELS_MIN_TOKENS;
}

int lzn_gemm_panels_suits(lzn_exec *ex, lzn_weight_type type, int64_t m) {
  if (ex->backend == LZN_BACKEND_OWN || ex->backend == LZN_BACKEND_XSMM) return 0;
  if (!lzn_gemm_panels_available(ex, type)) return 0;
  return m >= (ex->backend == LZN_BACKEND_ONEDNN ? 2 : lzn_gemm_panels_min_tokens(ex, type));
}

int lzn_gemm_panels_rounds_x(lzn_exec *ex, lzn_weight_type type, int64_t m) {
  return lzn_gemm_panels_suits(ex, type, m) && lzn_gemm_panels_in_bf16(ex, type);
}

typedef struct panel_job {
  const lzn_type_kernels *type, *bf16; /* bf16 NULL: an fp32 panel */
  const lzn_matrix *w;
  int64_t r0, n_rows; /* W's rows [r0, r0 + n_rows) */
  void *panel;        /* [n_rows][w->cols], fp32 or bf16 */
  float *rows_f32;    /* w->cols floats per thread, on the way to bf16 */
} panel_job;

/* Row r of w in fp32 at f (linalg/row_f32.h says how, and why). */
static void row_f32(const panel_job *j, float *f, int64_t r) {
  lzn_row_f32(j->type, j->w->type, lzn_matrix_row(j->w, r), (size_t)j->w->cols, f);
}

static void panel_item(const panel_job *j, int item, int thread) {
  const size_t d = (size_t)j->w->cols;
  const int64_t first = (int64_t)item * ROWS_PER_ITEM;
  const int64_t end = first + ROWS_PER_ITEM < j->n_rows ? first + ROWS_PER_ITEM : j->n_rows;
  for (int64_t r = first; r < end; r++) {
    if (j->bf16 == NULL) {
      row_f32(j, (float *)j->panel + (size_t)r * d, j->r0 + r);
    } else {
      float *f = j->rows_f32 + (size_t)thread * d;
      row_f32(j, f, j->r0 + r);
      j->bf16->from_f32.fn((uint16_t *)j->panel + (size_t)r * d, f, d);
    }
  }
}

/* Rows [r0, r0 + n) of w into the panel, on the OpenMP threads that then
 * multiply it: handing each panel between the library's pool and oneDNN's
 * team left one of them spinning on the core the other needed (2 threads:
 * Q6_K pp128 at 0.63x of F32 on the pool). */
static void make_panel(lzn_exec *ex, panel_job *job, int64_t r0, int64_t n) {
  job->r0 = r0, job->n_rows = n;
  const int items = (int)((n + ROWS_PER_ITEM - 1) / ROWS_PER_ITEM);
  const int threads = ex->n_threads < items ? ex->n_threads : items;
  (void)threads; /* only the pragma reads it: unused where OpenMP is off (the fuzz builds) */
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int item = 0; item < items; item++) panel_item(job, item, omp_get_thread_num());
}

/* A product under way: its arguments as a whole (x as oneDNN takes it, y,
 * m, n, k), the panel job and the staging area; panel_rows 0: W read as it
 * lies. */
typedef struct product {
  lzn_dense_args a;
  panel_job job;
  void *staging;
  int64_t panel_rows;
} product;

/* Rows of w per panel: whole conversion items within the panel's bytes for
 * that many threads, at least one item, at most all rows. */
static int64_t panel_rows(const lzn_matrix *w, size_t elem_bytes, int n_threads) {
  const size_t bytes = n_threads > 1 ? PANEL_BYTES_THREADS : PANEL_BYTES_ONE_THREAD;
  int64_t p = (int64_t)(bytes / ((size_t)w->cols * elem_bytes));
  p = p / ROWS_PER_ITEM * ROWS_PER_ITEM;
  if (p < ROWS_PER_ITEM) p = ROWS_PER_ITEM;
  return p < w->rows ? p : w->rows;
}

/* The scratch: x in bf16 [m][k] (a bf16 product; an fp32 one reads x as it
 * is); a panel; the threads' fp32 rows (bf16 panels); and a staging area
 * of m x panel_rows floats for a panel's outputs (linear) or its slice of
 * x (kn). oneDNN 2.6 takes its brgemm kernels only for dense src and dst
 * (rows exactly k and n apart); with y's or x's own strides it fell back to
 * a jit gemm that did not scale to a second thread, so the panels stage
 * through dense copies. */
static lzn_status product_start(lzn_exec *ex, product *p, float *y, const float *x, const lzn_matrix *w, int64_t m,
                                int kn) {
  const int64_t k = kn ? w->rows : w->cols, n = kn ? w->cols : w->rows;
  const int bf16 = lzn_gemm_panels_in_bf16(ex, w->type);
  const size_t elem = bf16 ? sizeof(uint16_t) : sizeof(float);
  p->panel_rows = in_place(ex, w->type) ? 0 : panel_rows(w, elem, ex->n_threads);
  const size_t d = (size_t)w->cols;
  const size_t x_bytes = bf16 ? ((size_t)m * (size_t)k * sizeof(uint16_t) + 63) & ~(size_t)63 : 0;
  const size_t panel_bytes = ((size_t)p->panel_rows * d * elem + 63) & ~(size_t)63;
  const size_t rows_bytes = bf16 ? ((size_t)ex->n_threads * d * sizeof(float) + 63) & ~(size_t)63 : 0;
  const size_t staging_bytes = (size_t)m * (size_t)p->panel_rows * sizeof(float);
  void *buf;
  const lzn_status s = lzn_exec_scratch(ex, LZN_SCRATCH_PANELS, x_bytes + panel_bytes + rows_bytes + staging_bytes, &buf);
  if (s != LZN_OK) return s;
  const lzn_type_kernels *bf16_kernels = bf16 ? &ex->kernels->type[LZN_WEIGHTS_BF16] : NULL;
  const void *xa = x;
  if (bf16) {
    uint16_t *xb = buf;
    for (int64_t t = 0; t < m; t++) bf16_kernels->from_f32.fn(xb + (size_t)t * (size_t)k, x + (size_t)t * (size_t)k, (size_t)k);
    xa = xb;
  }
  char *at = (char *)buf + x_bytes;
  p->job = (panel_job){.type = &ex->kernels->type[w->type], .bf16 = bf16_kernels, .w = w, .panel = at,
                       .rows_f32 = (float *)(at + panel_bytes)};
  p->staging = at + panel_bytes + rows_bytes;
  p->a = (lzn_dense_args){.y = y, .x = xa, .m = m, .n = n, .k = k, .ldx = k, .ldy = n, .w_is_kn = kn, .bf16 = bf16};
  return LZN_OK;
}

/* BF16 weights in a bf16 product: the whole product on W as it lies. */
static lzn_status product_in_place(lzn_exec *ex, product *p, const lzn_matrix *w) {
  p->a.w = w->data, p->a.ldw = (int64_t)(w->row_bytes / sizeof(uint16_t));
  return lzn_dense_linear_strided(ex->dense, &p->a, ex->n_threads);
}

lzn_status lzn_gemm_panels_linear(lzn_exec *ex, float *y, const float *x, const lzn_matrix *w, int64_t m) {
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
    s = lzn_dense_linear_strided(ex->dense, &p.a, ex->n_threads);
    for (int64_t t = 0; t < m && s == LZN_OK; t++)
      memcpy(y + (size_t)(t * n + r0), out + (size_t)(t * rows), (size_t)rows * sizeof(float));
  }
  return s;
}

lzn_status lzn_gemm_panels_kn(lzn_exec *ex, float *y, const float *x, const lzn_matrix *w_kn, int64_t m) {
  product p;
  lzn_status s = product_start(ex, &p, y, x, w_kn, m, 1);
  if (s != LZN_OK || p.panel_rows == 0) return s != LZN_OK ? s : product_in_place(ex, &p, w_kn);
  /* Panels of K: each adds its slice of the sum to y (the first sets it),
   * against its slice of x, made dense in the staging area. */
  const int64_t k = w_kn->rows, n = w_kn->cols;
  const size_t elem = p.a.bf16 ? sizeof(uint16_t) : sizeof(float);
  const char *xs = p.a.x;
  char *x_slice = p.staging;
  for (int64_t k0 = 0; k0 < k && s == LZN_OK; k0 += p.panel_rows) {
    const int64_t rows = k - k0 < p.panel_rows ? k - k0 : p.panel_rows;
    make_panel(ex, &p.job, k0, rows);
    for (int64_t t = 0; t < m; t++)
      memcpy(x_slice + (size_t)(t * rows) * elem, xs + (size_t)(t * k + k0) * elem, (size_t)rows * elem);
    p.a.x = x_slice, p.a.ldx = rows, p.a.k = rows, p.a.w = p.job.panel, p.a.ldw = n, p.a.accumulate = k0 > 0;
    s = lzn_dense_linear_strided(ex->dense, &p.a, ex->n_threads);
  }
  return s;
}
