/*
 * linear.h: y = x W^T (+ bias) for m tokens, W a typed matrix [n][k] as
 * nn.Linear stores it. Private.
 */
#ifndef LZN_LINEAR_H
#define LZN_LINEAR_H

#include "core/matrix.h"
#include "linalg/exec.h"

/* y [m][w->rows] = x [m][w->cols] * W^T + bias (bias may be NULL). One
 * token goes through the type's GEMV kernel, a batch through oneDNN.
 * Statuses: OK, UNSUPPORTED (a type oneDNN cannot run for a batch),
 * INVALID_ARG, NOMEM, BACKEND. */
lzn_status lzn_linear(const lzn_exec *ex, float *y, const float *x, const lzn_matrix *w,
                      const float *bias, int64_t m);

#endif /* LZN_LINEAR_H */
