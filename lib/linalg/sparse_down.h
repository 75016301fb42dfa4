/*
 * sparse_down.h: the threaded sparse down-projection. Private.
 */
#ifndef LZN_SPARSE_DOWN_H
#define LZN_SPARSE_DOWN_H

#include "core/matrix.h"
#include "kernels/kernels.h"
#include "linalg/pool.h"

/* How the coefficients enter the sum. ROUND_Q8 runs axpy_rows_q8: each
 * coefficient rounded to int8 with one scale per LZN_AXPY_Q8_GROUP rows
 * (kernels/kernels.h), so the block types' rows are read by int8 products
 * at memory speed; the rounding is the one llama.cpp gives an activation
 * before a Q8_0/Q4_0 dot product, and an element type is exact either way.
 * The forward pass rounds; the public lzn_sparse_down* ops are exact. */
typedef enum lzn_down_rounding { LZN_DOWN_EXACT, LZN_DOWN_ROUND_Q8 } lzn_down_rounding;

/* y[0..w_t->cols) += sum_t coef[t] * W_t[idx[t]][..], W_t = W_down stored
 * transposed, on the pool's threads (NULL: the caller's alone), each item a
 * slice of y. Arguments already checked. */
void lzn_sparse_down_run(const lzn_kernel_table *k, lzn_pool *pool, float *y, const lzn_matrix *w_t,
                         const int32_t *idx, const float *coef, size_t n, lzn_down_rounding rounding);

#endif /* LZN_SPARSE_DOWN_H */
