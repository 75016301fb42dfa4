/*
 * xsmm.h: small F32 GEMMs through libxsmm's JIT kernels. Private.
 *
 * libxsmm generates a kernel per shape (M, N, K, strides, beta) at run
 * time; dispatching one costs a lookup in libxsmm's registry, or a JIT
 * compile the first time. An lzn_xsmm (one per exec, so per context) keeps
 * the kernels it was given, keyed by shape, including the shapes libxsmm
 * could not generate (NULL: the caller falls back to its own kernel, never
 * aborts). libxsmm only multiplies dense fp32 / bf16 / int8 tensors, not
 * llama.cpp's scaled blocks, so it serves F32 weights only.
 */
#ifndef LZN_LINALG_XSMM_H
#define LZN_LINALG_XSMM_H

#include "core/matrix.h"
#include "linalg/exec.h"

typedef struct lzn_xsmm lzn_xsmm;

/* A cache for one exec; *out is NULL (no error) when libxsmm may not run:
 * the kernel table's ceiling is scalar (LZN_ISA=scalar: libxsmm would use
 * the CPU's own ISA). Statuses: OK, NOMEM. */
lzn_status lzn_xsmm_create(const lzn_kernel_table *kernels, lzn_xsmm **out);
void lzn_xsmm_free(lzn_xsmm *xsmm); /* NULL is a no-op */

/* y[m][w->rows] = x[m][w->cols] W^T for F32 W: 1 if done, 0 if libxsmm has
 * no kernel for the shape (nothing written; the caller computes it). Rows
 * of W split among the pool's threads in blocks of one kernel's N. */
int lzn_xsmm_linear(lzn_exec *ex, float *y, const float *x, const lzn_matrix *w, int64_t m);

/* y[t * y_stride + j] += sum_{i < n} coef[t * coef_stride + i] * W_t[idx[i]][j]
 * for F32 W_t: libxsmm's batch-reduce GEMM over the rows' addresses (the
 * union read in place, C held in registers over the batch). 1 if done, 0
 * if no kernel (nothing written). */
int lzn_xsmm_union_axpy(lzn_exec *ex, float *y, size_t y_stride, const lzn_matrix *w_t, const int32_t *idx,
                        size_t n, const float *coef, size_t coef_stride, int64_t m);

#endif /* LZN_LINALG_XSMM_H */
