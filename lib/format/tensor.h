/*
 * tensor.h: a tensor as a file format describes it, whatever the format:
 * what format/ hands to arch/. Private.
 */
#ifndef LZN_FORMAT_TENSOR_H
#define LZN_FORMAT_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/wtype.h"

#define LZN_TENSOR_MAX_DIMS 8

/* shape is outermost first, as safetensors and PyTorch write it: a matrix of
 * `rows` rows of `cols` weights is {rows, cols}. (GGUF lists dimensions
 * innermost first; its parser reverses them.) */
typedef struct lzn_file_tensor {
  char *name;
  lzn_weight_type dtype;
  int n_dims;
  int64_t shape[LZN_TENSOR_MAX_DIMS];
  int64_t n_elements;  /* product of shape; 1 for a scalar (n_dims == 0) */
  const void *data;    /* into the file's bytes (may be unaligned!) */
  size_t n_bytes;      /* rows x lzn_wtype_row_bytes(dtype, cols) */
  const char *file;    /* path of the file holding it, for messages */
  size_t data_offset;  /* from the start of the file's data section */
} lzn_file_tensor;

/* "[4, 3]" into buf (truncated if it does not fit: for messages); returns buf. */
const char *lzn_shape_string(char *buf, size_t cap, const int64_t *shape, int n_dims);

#endif /* LZN_FORMAT_TENSOR_H */
