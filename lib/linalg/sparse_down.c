/*
 * sparse_down.c: the sparse down-projection on threads, each owning a slice
 * of the output (no reduction, no lock: PowerInfer's CPU path adds
 * per-thread partial sums into one buffer without a lock).
 */
#include "linalg/sparse_down.h"

/* Below this much work (rows x columns) a parallel region costs more than it
 * saves: one 8 KiB row is ~0.25 us of reading on one core (AVX-512, ~35 GB/s). */
#define LZN_PARALLEL_MIN_WORK 65536

void lzn_sparse_down_run(const lzn_kernel_table *k, float *y, const lzn_matrix *w_t,
                         const int32_t *idx, const float *coef, size_t n, int n_threads) {
  const size_t d = (size_t)w_t->cols;
  const lzn_axpy_rows_fn axpy_rows = k->type[w_t->type].axpy_rows.fn;
  if (n == 0 || d == 0) return;
  if (n_threads <= 1 || n * d < LZN_PARALLEL_MIN_WORK) {
    axpy_rows(y, d, w_t->data, w_t->row_bytes, idx, coef, n);
    return;
  }
  /* Each slice of y is owned by one thread: no reduction, no lock, and the
   * result is the same for every thread count (each y[j] sees the same row
   * order). Slices are whole cache lines (16 floats) so threads never share
   * one, and start on a block boundary of the block types. A worksharing loop, not omp_get_thread_num(): the runtime may give
   * fewer threads than asked (nested in a caller's parallel region,
   * OMP_THREAD_LIMIT), and every slice must still be computed. */
  const size_t align = LZN_WTYPE_MAX_BLOCK; /* a multiple of 16 floats: whole cache lines */
  const size_t per_slice = ((d + (size_t)n_threads - 1) / (size_t)n_threads + align - 1) / align * align;
  const int n_slices = (int)((d + per_slice - 1) / per_slice);
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int slice = 0; slice < n_slices; slice++) {
    const size_t j0 = (size_t)slice * per_slice;
    const size_t len = d - j0 < per_slice ? d - j0 : per_slice;
    axpy_rows(y + j0, len, (const char *)w_t->data + lzn_wtype_row_bytes(w_t->type, j0),
              w_t->row_bytes, idx, coef, n);
  }
}

