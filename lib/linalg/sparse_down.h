/*
 * sparse_down.h: the threaded sparse down-projection. Private.
 */
#ifndef LZN_SPARSE_DOWN_H
#define LZN_SPARSE_DOWN_H

#include "core/matrix.h"
#include "kernels/kernels.h"
#include "linalg/pool.h"

/* y[0..w_t->cols) += sum_t coef[t] * W_t[idx[t]][..], W_t = W_down stored
 * transposed, on the pool's threads (NULL: the caller's alone), each item a
 * slice of y. Arguments already checked. */
void lzn_sparse_down_run(const lzn_kernel_table *k, lzn_pool *pool, float *y, const lzn_matrix *w_t,
                         const int32_t *idx, const float *coef, size_t n);

#endif /* LZN_SPARSE_DOWN_H */
