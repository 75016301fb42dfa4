/*
 * matrix.h: a weight matrix as the kernels read it. Private.
 */
#ifndef LZN_MATRIX_H
#define LZN_MATRIX_H

#include <stddef.h>
#include <stdint.h>

#include "core/wtype.h"

/* rows x cols weights of one type, row-major: row r starts at
 * (const char *)data + r * row_bytes, row_bytes = lzn_wtype_row_bytes(type,
 * cols) (block types: the last block of a row padded). data NULL means the
 * model has no such matrix.
 * packed: NULL, or a second copy of the same rows in groups of 16
 * (kernels/packed.h; Q8_0, Q4_0, or a K-quant's rows requantized to Q8_0:
 * linalg/pack.h; made at load: model/pack_model.c), which
 * batches of tokens read instead of the rows (linalg/linear.c); one token
 * and gathered rows always read the rows. */
typedef struct lzn_matrix {
  lzn_weight_type type;
  const void *data;
  int64_t rows, cols;
  size_t row_bytes;
  const void *packed;
} lzn_matrix;

static inline lzn_matrix lzn_matrix_make(lzn_weight_type type, const void *data, int64_t rows,
                                         int64_t cols) {
  const lzn_matrix m = {type, data, rows, cols, lzn_wtype_row_bytes(type, (size_t)cols), NULL};
  return m;
}

static inline const void *lzn_matrix_row(const lzn_matrix *m, int64_t r) {
  return (const char *)m->data + (size_t)r * m->row_bytes;
}

#endif /* LZN_MATRIX_H */
