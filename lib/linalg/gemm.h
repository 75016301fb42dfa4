/*
 * gemm.h: many tokens through the kernel table's gemm slots
 * (kernels/gemm.h), split among the pool's threads. Private.
 *
 * The products of prefill and of batched decode on weights of any type,
 * read in place: no tile of weights is widened into a buffer. linear.c
 * runs whole matrices through it, union.c a batch's union of rows.
 */
#ifndef LZN_LINALG_GEMM_H
#define LZN_LINALG_GEMM_H

#include "core/matrix.h"
#include "linalg/exec.h"

/* out[t * out_stride + i] = W[row(i)] . x_t for i < n_rows, t < m, with
 * row(i) = idx ? idx[i] : i and x_t = x + t * w->cols (fp32; converted
 * here to the type's dot format, Q8_0 per token for Q8_0/Q4_0). Threads
 * split the rows. Statuses: OK, NOMEM. */
lzn_status lzn_gemm_rows(lzn_exec *ex, float *out, size_t out_stride, const float *x, const lzn_matrix *w,
                         const int32_t *idx, size_t n_rows, int64_t m);

/* Whether w has packed rows (kernels/packed.h) that this table reads. */
int lzn_gemm_can_pack_read(const lzn_exec *ex, const lzn_matrix *w);

/* out[t * out_stride + i] = W[i] . x_t for every row of w, from its packed
 * rows (lzn_gemm_can_pack_read), tokens x [m][w->cols] quantized to Q8_0
 * here. Threads split the groups. Statuses: OK, NOMEM. */
lzn_status lzn_gemm_packed(lzn_exec *ex, float *out, size_t out_stride, const float *x, const lzn_matrix *w,
                           int64_t m);

/* y[t * y_stride + j] += sum_{i < n} coef[t * coef_stride + i] * W[row(i)][j]
 * for j < w->cols, t < m (W stored [K][N]: the MLP's down_t). Threads split
 * the columns. idx may be NULL (every row) only where lzn_gemm_native. */
void lzn_gemm_axpy(lzn_exec *ex, float *y, size_t y_stride, const lzn_matrix *w, const int32_t *idx, size_t n,
                   const float *coef, size_t coef_stride, int64_t m);

/* lzn_gemm_axpy with each token's coefficients rounded as the one-token
 * forward pass rounds them (kernels.h, axpy_rows_q8): token t's y is, to
 * the bit, what lzn_sparse_down_run (LZN_DOWN_ROUND_Q8) gives for (idx,
 * coef_t, n) alone, for any thread count: the same parts of whole 16-row
 * groups, each summed from zero and added in order. The block types' rows
 * are then summed in int8 products, 4 rows per vpdpbusd, where
 * lzn_gemm_axpy widens every weight to fp32 per token; an element type is
 * exact either way. idx is required. Threads take parts and column slices.
 * Statuses: OK, NOMEM (the parts' sums: ex's scratch). */
lzn_status lzn_gemm_axpy_rounded(lzn_exec *ex, float *y, size_t y_stride, const lzn_matrix *w, const int32_t *idx,
                                 size_t n, const float *coef, size_t coef_stride, int64_t m);

/* Whether the type has gemm kernels of its own. A type without them (the
 * K-quants today) still runs every product here, each token through the
 * type's one-token kernels (dot_rows / gemv / axpy_rows): right, but its
 * rows are read once per token. */
int lzn_gemm_native(const lzn_exec *ex, lzn_weight_type type);

/* The products of a batch, for the choice of who runs them. */
typedef enum lzn_product {
  LZN_PRODUCT_LINEAR = 0, /* y = x W^T, W [n][k] (nn.Linear) */
  LZN_PRODUCT_KN = 1,     /* y = x W, W [k][n] (down_t, all rows) */
  LZN_PRODUCT_UNION_DOT = 2,  /* gathered rows of W [n][k] */
  LZN_PRODUCT_UNION_AXPY = 3  /* gathered rows of W_t [k][n] */
} lzn_product;

/* Who runs a product of m tokens on matrix w: the exec's forced backend
 * where it can run the product, else the measured choice (gemm.c: oneDNN
 * from 9 tokens, unless the product is small). Types other than F32
 * always get LZN_BACKEND_OWN. */
lzn_backend lzn_backend_for(const lzn_exec *ex, const lzn_matrix *w, lzn_product product, int64_t m);

#endif /* LZN_LINALG_GEMM_H */
