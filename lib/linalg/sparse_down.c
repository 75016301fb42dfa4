/*
 * sparse_down.c: the sparse down-projection on threads (linalg/sparse_down.h
 * says how the work is cut).
 */
#include "linalg/sparse_down.h"

#include <string.h>

/* Below this much work (rows x columns) threads cost more than they save:
 * one 8 KiB row is ~0.25 us of reading on one core (AVX-512, ~35 GB/s). */
#define LZN_PARALLEL_MIN_WORK 65536
typedef struct down_job {
  lzn_axpy_rows_fn axpy_rows;
  float *y;     /* part 0's sums go into y itself */
  float *parts; /* parts 1 .. n_parts - 1: [n_parts - 1][d], each from zero */
  const lzn_matrix *w_t;
  const int32_t *idx;
  const float *coef;
  size_t n, per_part, per_slice;
  int slices; /* column slices per part */
} down_job;

/* Item = (part, slice): the part's rows into the slice of its sums. */
static void down_item(void *arg, int item, int thread) {
  (void)thread;
  const down_job *j = arg;
  const size_t d = (size_t)j->w_t->cols, part = (size_t)(item / j->slices);
  const size_t r0 = part * j->per_part, rows = j->n - r0 < j->per_part ? j->n - r0 : j->per_part;
  const size_t j0 = (size_t)(item % j->slices) * j->per_slice;
  const size_t len = d - j0 < j->per_slice ? d - j0 : j->per_slice;
  float *y = part == 0 ? j->y + j0 : j->parts + (part - 1) * d + j0;
  if (part > 0) memset(y, 0, len * sizeof *y);
  j->axpy_rows(y, len, (const char *)j->w_t->data + lzn_wtype_row_bytes(j->w_t->type, j0), j->w_t->row_bytes,
               j->idx + r0, j->coef + r0, rows);
}

/* Slices of d columns, `slices` of them or fewer: whole cache lines
 * (16 floats, so threads never share one), starting on a block boundary
 * of the block types. */
static size_t slice_width(size_t d, size_t slices) {
  const size_t align = LZN_WTYPE_MAX_BLOCK;
  return ((d + slices - 1) / slices + align - 1) / align * align;
}

size_t lzn_down_parts(size_t n, size_t d, size_t *per_part) {
  *per_part = n;
  if (n * d < LZN_PARALLEL_MIN_WORK) return 1;
  /* Parts of whole groups, so axpy_rows_q8 rounds the groups it would
   * round over all n rows; how many depends on n alone. */
  const size_t group = LZN_AXPY_Q8_GROUP, groups = (n + group - 1) / group;
  const size_t want = groups < LZN_DOWN_PARTS ? groups : LZN_DOWN_PARTS;
  *per_part = (groups + want - 1) / want * group;
  return (n + *per_part - 1) / *per_part;
}

void lzn_sparse_down_run(const lzn_kernel_table *k, lzn_pool *pool, float *y, const lzn_matrix *w_t,
                         const int32_t *idx, const float *coef, size_t n, lzn_down_rounding rounding,
                         float *parts) {
  const size_t d = (size_t)w_t->cols;
  const lzn_type_kernels *tk = &k->type[w_t->type];
  const lzn_axpy_rows_fn axpy_rows = rounding == LZN_DOWN_ROUND_Q8 ? tk->axpy_rows_q8.fn : tk->axpy_rows.fn;
  const int threads = lzn_pool_threads(pool);
  if (n == 0 || d == 0) return;
  size_t per_part;
  const size_t n_parts = lzn_down_parts(n, d, &per_part);
  if (n_parts == 1) {
    axpy_rows(y, d, w_t->data, w_t->row_bytes, idx, coef, n);
    return;
  }
  down_job job = {.axpy_rows = axpy_rows, .y = y, .parts = parts, .w_t = w_t, .idx = idx, .coef = coef, .n = n,
                  .per_part = per_part, .per_slice = d, .slices = 1};
  /* Beyond a thread per part, slices of the columns (any slicing gives
   * every column the same sums). */
  const size_t want = ((size_t)threads + n_parts - 1) / n_parts;
  if (want > 1) job.per_slice = slice_width(d, want);
  job.slices = (int)((d + job.per_slice - 1) / job.per_slice);
  lzn_pool_run(pool, (int)n_parts * job.slices, threads, down_item, &job);
  for (size_t p = 1; p < n_parts; p++) {
    const float *sums = parts + (p - 1) * d;
#pragma omp simd
    for (size_t j = 0; j < d; j++) y[j] += sums[j];
  }
}

lzn_status lzn_sparse_down_exec(lzn_exec *ex, float *y, const lzn_matrix *w_t, const int32_t *idx, const float *coef,
                                size_t n) {
  void *parts;
  const lzn_status s =
      lzn_exec_scratch(ex, LZN_SCRATCH_DOWN_PARTS, sizeof(float) * (LZN_DOWN_PARTS - 1) * (size_t)w_t->cols, &parts);
  if (s != LZN_OK) return s;
  lzn_sparse_down_run(ex->kernels, ex->pool, y, w_t, idx, coef, n, LZN_DOWN_ROUND_Q8, parts);
  return LZN_OK;
}
