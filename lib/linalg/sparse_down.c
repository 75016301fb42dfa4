/*
 * sparse_down.c: the sparse down-projection on threads, each item a slice
 * of the output (no reduction, no lock: PowerInfer's CPU path adds
 * per-thread partial sums into one buffer without a lock).
 */
#include "linalg/sparse_down.h"

/* Below this much work (rows x columns) threads cost more than they save:
 * one 8 KiB row is ~0.25 us of reading on one core (AVX-512, ~35 GB/s). */
#define LZN_PARALLEL_MIN_WORK 65536
/* Slices per thread: more than one, so a thread the OS takes away holds
 * back a smaller share (linalg/pool.h). */
#define LZN_SLICES_PER_THREAD 2

typedef struct down_job {
  lzn_axpy_rows_fn axpy_rows;
  float *y;
  const lzn_matrix *w_t;
  const int32_t *idx;
  const float *coef;
  size_t n, per_slice;
} down_job;

static void down_slice(void *arg, int slice, int thread) {
  (void)thread;
  const down_job *j = arg;
  const size_t d = (size_t)j->w_t->cols, j0 = (size_t)slice * j->per_slice;
  const size_t len = d - j0 < j->per_slice ? d - j0 : j->per_slice;
  j->axpy_rows(j->y + j0, len, (const char *)j->w_t->data + lzn_wtype_row_bytes(j->w_t->type, j0),
               j->w_t->row_bytes, j->idx, j->coef, j->n);
}

void lzn_sparse_down_run(const lzn_kernel_table *k, lzn_pool *pool, float *y, const lzn_matrix *w_t,
                         const int32_t *idx, const float *coef, size_t n, lzn_down_rounding rounding) {
  const size_t d = (size_t)w_t->cols;
  const lzn_type_kernels *tk = &k->type[w_t->type];
  const lzn_axpy_rows_fn axpy_rows = rounding == LZN_DOWN_ROUND_Q8 ? tk->axpy_rows_q8.fn : tk->axpy_rows.fn;
  const int threads = lzn_pool_threads(pool);
  if (n == 0 || d == 0) return;
  if (threads <= 1 || n * d < LZN_PARALLEL_MIN_WORK) {
    axpy_rows(y, d, w_t->data, w_t->row_bytes, idx, coef, n);
    return;
  }
  /* Each slice of y is one item: no reduction, no lock, and the result is
   * the same for every thread count (each y[j] sees the same row order).
   * Slices are whole cache lines (16 floats) so threads never share one,
   * and start on a block boundary of the block types. */
  const size_t align = LZN_WTYPE_MAX_BLOCK;
  const size_t slices = (size_t)threads * LZN_SLICES_PER_THREAD;
  const size_t per_slice = ((d + slices - 1) / slices + align - 1) / align * align;
  down_job job = {axpy_rows, y, w_t, idx, coef, n, per_slice};
  lzn_pool_run(pool, (int)((d + per_slice - 1) / per_slice), threads, down_slice, &job);
}
