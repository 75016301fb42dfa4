/*
 * linear.h: linear layers on typed weight matrices. Private.
 */
#ifndef LZN_LINEAR_H
#define LZN_LINEAR_H

#include "core/matrix.h"
#include "linalg/exec.h"

/* y [m][w->rows] = x [m][w->cols] * W^T + bias (bias may be NULL), W as
 * nn.Linear stores it. One token goes through the type's gemv kernel (x
 * converted first where the type's dot kernels want Q8_0 blocks); a batch
 * through the type's gemm kernel on W in place (linalg/gemm.c), or for F32
 * whichever backend lzn_backend_for picks (oneDNN above 8 tokens on all but small products).
 * Statuses: OK, NOMEM, BACKEND. */
lzn_status lzn_linear(lzn_exec *ex, float *y, const float *x, const lzn_matrix *w,
                      const float *bias, int64_t m);

/* Matrices that read the same x, at most LZN_LINEAR_GROUP_MAX of them
 * (attention's q, k and v). */
#define LZN_LINEAR_GROUP_MAX 4
typedef struct lzn_linear_out {
  float *y;             /* [m][w->rows] */
  const lzn_matrix *w;  /* of any type; all of x's width */
  const float *bias;    /* NULL without */
} lzn_linear_out;

/* lzn_linear for each of n_outs matrices on one x: one token converts x
 * once per dot type and reads every matrix's rows in one pass of the
 * threads; a batch runs them one after another. Statuses: as lzn_linear. */
lzn_status lzn_linear_group(lzn_exec *ex, const float *x, const lzn_linear_out *outs, int n_outs, int64_t m);

/* y [m][w_kn->cols] = x [m][w_kn->rows] * W + bias for W stored [K][N]
 * (the MLP's down_t), the same product without a second copy of W_down.
 * One token: axpy_rows over every row, a batch: axpy_gemm over every row
 * (or for F32 the backend lzn_backend_for picks). Statuses: as above. */
lzn_status lzn_linear_kn(lzn_exec *ex, float *y, const float *x, const lzn_matrix *w_kn,
                         const float *bias, int64_t m);

/* The dense down-projection y [m][d_model] = h [m][d_ff] W_down^T + bias
 * from whichever layout the model kept: W_down as stored ([d_model][d_ff],
 * down->data not NULL) through lzn_linear, else its transpose down_t
 * through lzn_linear_kn. Statuses: as above. */
lzn_status lzn_linear_down(lzn_exec *ex, float *y, const float *h, const lzn_matrix *down,
                           const lzn_matrix *down_t, const float *bias, int64_t m);

/* out[t] = W[idx[t]] . x for t < n: the gathered rows of one token (the
 * gated MLP's up rows), x converted as the type's dot kernels want, rows
 * split among threads. Statuses: OK, NOMEM. */
lzn_status lzn_linear_rows(lzn_exec *ex, float *out, const float *x, const lzn_matrix *w,
                           const int32_t *idx, size_t n);

#endif /* LZN_LINEAR_H */
