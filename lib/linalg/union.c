/*
 * union.c: sparse products for a batch of m tokens over the union of their
 * active rows, each row read once for all the tokens that need it.
 *
 * Per-token sparse reads a row once per token that has it active, which a
 * batch (prefill, or several sequences decoding together) turns into
 * reading the union many times over. Here the table's gemm kernels read the
 * union's rows in place, by index, in the weights' own type (linalg/gemm.c):
 * the work is |union| / d_ff of the dense product's.
 *
 * Before (issue 20) the rows were gathered a tile at a time into an fp32
 * buffer and multiplied by oneDNN: a copy of every union row per call, and a
 * new oneDNN primitive for every union size (|union| is the GEMM's K, and
 * differs in every layer and step), whose creation cost milliseconds: a
 * batched step on a small model was 15x slower than its tokens one by one.
 */
#include "linalg/union.h"

#include "core/wtype.h"
#include "linalg/gemm.h"
#include "linalg/xsmm.h"

lzn_status lzn_union_axpy(lzn_exec *ex, float *y, int64_t m, const lzn_matrix *w_t, const int32_t *idx,
                          size_t n_rows, const float *coef) {
  const size_t d = (size_t)w_t->cols;
  if (lzn_backend_for(ex, w_t, LZN_PRODUCT_UNION_AXPY, m) == LZN_BACKEND_XSMM &&
      lzn_xsmm_union_axpy(ex, y, d, w_t, idx, n_rows, coef, n_rows, m)) {
    ex->used |= 1u << LZN_BACKEND_XSMM;
    return LZN_OK;
  }
  ex->used |= 1u << LZN_BACKEND_OWN;
  /* A block type's coefficients rounded to int8 as one token's are
   * (linalg/sparse_down.h): int8 products, and a token's sum over these
   * rows the one-token pass's to the bit. */
  if (lzn_wtype_is_block(w_t->type)) return lzn_gemm_axpy_rounded(ex, y, d, w_t, idx, n_rows, coef, n_rows, m);
  lzn_gemm_axpy(ex, y, d, w_t, idx, n_rows, coef, n_rows, m);
  return LZN_OK;
}

lzn_status lzn_union_dot(lzn_exec *ex, float *out, int64_t m, const lzn_matrix *w, const int32_t *idx,
                         size_t n_rows, const float *x) {
  ex->used |= 1u << LZN_BACKEND_OWN;
  return lzn_gemm_rows(ex, out, n_rows, x, w, idx, n_rows, m);
}
