/*
 * union.h: products of a batch over the union of its active rows. Private.
 */
#ifndef LZN_UNION_H
#define LZN_UNION_H

#include "core/matrix.h"
#include "linalg/exec.h"

/* y[m][d] += coef[m][n_rows] . W_t[idx[0..n_rows)][0..d): the sparse
 * down-projection of m tokens, each of the n_rows union rows read once
 * (coef is 0 where a token does not have the row active). Statuses: OK,
 * NOMEM, BACKEND. */
lzn_status lzn_union_axpy(lzn_exec *ex, float *y, int64_t m, const lzn_matrix *w_t, const int32_t *idx,
                          size_t n_rows, const float *coef);

/* out[m][n_rows] = x[m][k] . W[idx[j]]^T: gathered rows for m tokens (a
 * gated MLP's up rows of the union). Statuses: OK, NOMEM, BACKEND. */
lzn_status lzn_union_dot(lzn_exec *ex, float *out, int64_t m, const lzn_matrix *w, const int32_t *idx,
                         size_t n_rows, const float *x);

#endif /* LZN_UNION_H */
