/*
 * sparse_down.h: the threaded sparse down-projection. Private.
 */
#ifndef LZN_SPARSE_DOWN_H
#define LZN_SPARSE_DOWN_H

#include "core/matrix.h"
#include "kernels/kernels.h"
#include "linalg/exec.h"
#include "linalg/pool.h"

/* How the coefficients enter the sum. ROUND_Q8 runs axpy_rows_q8: each
 * coefficient rounded to int8 with one scale per LZN_AXPY_Q8_GROUP rows
 * (kernels/kernels.h), so the block types' rows are read by int8 products
 * at memory speed; the rounding is the one llama.cpp gives an activation
 * before a Q8_0/Q4_0 dot product, and an element type is exact either way.
 * The forward pass rounds; the public lzn_sparse_down* ops are exact. */
typedef enum lzn_down_rounding { LZN_DOWN_EXACT, LZN_DOWN_ROUND_Q8 } lzn_down_rounding;

/* Parts the rows of a call are cut into, at most. */
#define LZN_DOWN_PARTS 4

/* y[0..w_t->cols) += sum_t coef[t] * W_t[idx[t]][..], W_t = W_down stored
 * transposed, on the pool's threads (NULL: the caller's alone). Arguments
 * already checked; parts: room for (LZN_DOWN_PARTS - 1) x w_t->cols
 * floats.
 * A call of enough work cuts its rows into up to LZN_DOWN_PARTS parts of
 * whole LZN_AXPY_Q8_GROUP groups, sums each part from zero (the first into
 * y) and adds the parts to y in order; threads take parts (beyond a thread
 * per part, column slices of them), so each reads whole rows: on 2 threads
 * 1.6-1.8x one, where column slices alone (each thread a 576-byte piece of
 * every Q4_0 row at random) ran no faster than one thread (bench/
 * RESULTS.md, 2026-12-07, evening). The parts depend on n alone, so the
 * result never depends on the thread count. */
void lzn_sparse_down_run(const lzn_kernel_table *k, lzn_pool *pool, float *y, const lzn_matrix *w_t,
                         const int32_t *idx, const float *coef, size_t n, lzn_down_rounding rounding,
                         float *parts);

/* How lzn_sparse_down_run cuts n rows of d columns: the number of parts
 * (1: not cut), each of *per_part rows but the last, whole
 * LZN_AXPY_Q8_GROUP groups. Batches cut theirs the same way
 * (linalg/gemm.h, lzn_gemm_axpy_rounded). */
size_t lzn_down_parts(size_t n, size_t d, size_t *per_part);

/* The forward pass's call: rounded (LZN_DOWN_ROUND_Q8), on ex's pool, the
 * parts' sums in ex's scratch. Statuses: OK, NOMEM. */
lzn_status lzn_sparse_down_exec(lzn_exec *ex, float *y, const lzn_matrix *w_t, const int32_t *idx, const float *coef,
                                size_t n);

#endif /* LZN_SPARSE_DOWN_H */
