/*
 * union.c: sparse products for a batch of m tokens over the union of their
 * active rows, each row read once for all the tokens that need it.
 *
 * Per-token sparse reads a row once per token that has it active, which a
 * batch (prefill, or several sequences decoding together) turns into
 * reading the union many times over. Here the union's rows are gathered a
 * tile at a time into a contiguous fp32 buffer (widened from the weight
 * type on the way), and oneDNN multiplies the tile with the tokens'
 * [m][tile] block of coefficients: a small dense GEMM whose K is the
 * tile's rows, so the work is |union| / d_ff of the dense GEMM's.
 */
#include "linalg/union.h"

#include <string.h>

#include "core/errors.h"

/* Rows per tile: 256 rows of a 4096-wide fp32 matrix are 4 MiB, within L3;
 * narrower matrices take more rows, up to this many. */
#define LZN_UNION_TILE_BYTES ((size_t)2 << 20)
#define LZN_UNION_TILE_MAX_ROWS 1024

static size_t tile_rows(int64_t cols) {
  size_t rows = LZN_UNION_TILE_BYTES / ((size_t)cols * sizeof(float));
  if (rows < 16) rows = 16;
  return rows > LZN_UNION_TILE_MAX_ROWS ? LZN_UNION_TILE_MAX_ROWS : rows;
}

/* Rows idx[0..n) of w into tile [n][cols] as fp32, 16 rows per pool item. */
typedef struct gather_job {
  lzn_to_f32_fn to_f32;
  const lzn_matrix *w;
  const int32_t *idx;
  size_t n;
  float *tile;
} gather_job;

#define GATHER_ROWS 16

static void gather_rows(void *arg, int item, int thread) {
  (void)thread;
  const gather_job *j = arg;
  const size_t cols = (size_t)j->w->cols, r0 = (size_t)item * GATHER_ROWS;
  const size_t r1 = r0 + GATHER_ROWS < j->n ? r0 + GATHER_ROWS : j->n;
  for (size_t r = r0; r < r1; r++) j->to_f32(j->tile + r * cols, lzn_matrix_row(j->w, j->idx[r]), cols);
}

static void gather(lzn_exec *ex, const lzn_matrix *w, const int32_t *idx, size_t n, float *tile) {
  gather_job job = {ex->kernels->type[w->type].to_f32.fn, w, idx, n, tile};
  lzn_pool_run(ex->pool, (int)((n + GATHER_ROWS - 1) / GATHER_ROWS), n >= 64 ? ex->n_threads : 1, gather_rows, &job);
}

lzn_status lzn_union_axpy(lzn_exec *ex, float *y, int64_t m, const lzn_matrix *w_t, const int32_t *idx,
                          size_t n_rows, const float *coef) {
  const int64_t d = w_t->cols;
  const size_t per_tile = tile_rows(d);
  void *tile, *part, *block;
  lzn_status s = lzn_exec_scratch(ex, LZN_SCRATCH_TILE, per_tile * (size_t)d * sizeof(float), &tile);
  if (s == LZN_OK) s = lzn_exec_scratch(ex, LZN_SCRATCH_PART, (size_t)(m * d) * sizeof(float), &part);
  if (s == LZN_OK) s = lzn_exec_scratch(ex, LZN_SCRATCH_COLUMNS, (size_t)m * per_tile * sizeof(float), &block);
  for (size_t r0 = 0; s == LZN_OK && r0 < n_rows; r0 += per_tile) {
    const size_t rows = n_rows - r0 < per_tile ? n_rows - r0 : per_tile;
    gather(ex, w_t, idx + r0, rows, tile);
    for (int64_t t = 0; t < m; t++) /* the tile's columns of coef, contiguous */
      memcpy((float *)block + (size_t)t * rows, coef + (size_t)t * n_rows + r0, rows * sizeof(float));
    s = lzn_dense_linear_kn(ex->dense, part, block, tile, NULL, m, d, (int64_t)rows, ex->n_threads);
    const float *p = part;
    for (size_t i = 0; s == LZN_OK && i < (size_t)(m * d); i++) y[i] += p[i];
  }
  return s;
}

lzn_status lzn_union_dot(lzn_exec *ex, float *out, int64_t m, const lzn_matrix *w, const int32_t *idx,
                         size_t n_rows, const float *x) {
  const int64_t k = w->cols;
  const size_t per_tile = tile_rows(k);
  void *tile, *part;
  lzn_status s = lzn_exec_scratch(ex, LZN_SCRATCH_TILE, per_tile * (size_t)k * sizeof(float), &tile);
  if (s == LZN_OK) s = lzn_exec_scratch(ex, LZN_SCRATCH_PART, (size_t)m * per_tile * sizeof(float), &part);
  for (size_t r0 = 0; s == LZN_OK && r0 < n_rows; r0 += per_tile) {
    const size_t rows = n_rows - r0 < per_tile ? n_rows - r0 : per_tile;
    gather(ex, w, idx + r0, rows, tile);
    s = lzn_dense_linear(ex->dense, part, x, tile, NULL, m, (int64_t)rows, k, ex->n_threads);
    for (int64_t t = 0; s == LZN_OK && t < m; t++)
      memcpy(out + (size_t)t * n_rows + r0, (float *)part + (size_t)t * rows, rows * sizeof(float));
  }
  return s;
}
