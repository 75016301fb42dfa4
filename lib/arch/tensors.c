/*
 * tensors.c: binding a file's named tensors to the model (tensors.h).
 */
#include "arch/tensors.h"

#include <stdio.h>
#include <string.h>

static int usable_in_place(const lzn_file_tensor *t) {
  return t->dtype == LZN_WTYPE_F32 && (uintptr_t)t->data % sizeof(float) == 0;
}

lzn_status lzn_bind_find(lzn_binder *b, const char *name, int required, int64_t d0, int64_t d1,
                         const lzn_file_tensor **out) {
  char full[256];
  snprintf(full, sizeof full, "%s%s", b->prefix, name);
  *out = lzn_weights_find(&b->model->weights, full);
  if (*out == NULL) {
    if (!required) return LZN_OK;
    return lzn_fail(LZN_ERR_FORMAT, "tensor \"%s\" is missing from the model's safetensors", full);
  }
  const lzn_file_tensor *t = *out;
  const int64_t want[2] = {d0, d1};
  const int want_dims = d1 ? 2 : 1;
  if (t->n_dims != want_dims || t->shape[0] != d0 || (d1 && t->shape[1] != d1)) {
    char have[128], expect[64];
    lzn_shape_string(have, sizeof have, t->shape, t->n_dims);
    lzn_shape_string(expect, sizeof expect, want, want_dims);
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\" has shape %s but config.json implies %s",
                    t->file, full, have, expect);
  }
  return LZN_OK;
}

/* The tensor's values as F32, in place or in a buffer the model owns. */
static lzn_status as_f32(lzn_model *m, const lzn_file_tensor *t, const float **out) {
  if (usable_in_place(t)) {
    *out = t->data;
    return LZN_OK;
  }
  void *buffer;
  lzn_status s = lzn_model_own(m, (size_t)t->n_elements * sizeof(float), &buffer);
  if (s != LZN_OK) return s;
  float *f = buffer;
  for (size_t i = 0; i < (size_t)t->n_elements; i++) f[i] = lzn_wtype_element(t->dtype, t->data, i);
  *out = f;
  return LZN_OK;
}

lzn_status lzn_bind_f32(lzn_binder *b, const char *name, int required, int64_t d0, int64_t d1,
                        const float **out) {
  const lzn_file_tensor *t;
  *out = NULL;
  lzn_status s = lzn_bind_find(b, name, required, d0, d1, &t);
  if (s == LZN_OK && t) s = as_f32(b->model, t, out);
  if (s == LZN_OK) s = lzn_load_progress_step(&b->progress);
  return s;
}

lzn_status lzn_bind_matrix(lzn_binder *b, const char *name, int required, int64_t rows,
                           int64_t cols, lzn_matrix *out) {
  const lzn_file_tensor *t;
  const float *data = NULL;
  lzn_status s = lzn_bind_find(b, name, required, rows, cols, &t);
  if (s == LZN_OK && t) s = as_f32(b->model, t, &data);
  if (s == LZN_OK) s = lzn_load_progress_step(&b->progress);
  *out = lzn_matrix_make(LZN_WTYPE_F32, data, rows, cols);
  return s;
}

lzn_status lzn_bind_transposed(lzn_binder *b, const char *name, int64_t rows, int64_t cols,
                               lzn_matrix *out, lzn_matrix *as_stored) {
  const lzn_file_tensor *t;
  *out = lzn_matrix_make(LZN_WTYPE_F32, NULL, cols, rows);
  *as_stored = lzn_matrix_make(LZN_WTYPE_F32, NULL, rows, cols);
  lzn_status s = lzn_bind_find(b, name, 1, rows, cols, &t);
  void *buffer = NULL;
  if (s == LZN_OK) s = lzn_model_own(b->model, (size_t)(rows * cols) * sizeof(float), &buffer);
  if (s != LZN_OK) return s;
  float *dst = buffer;
  /* Blocked so that both the reads and the writes stay in cache. */
  enum { BLOCK = 32 };
  for (int64_t r0 = 0; r0 < rows; r0 += BLOCK)
    for (int64_t c0 = 0; c0 < cols; c0 += BLOCK)
      for (int64_t r = r0; r < r0 + BLOCK && r < rows; r++)
        for (int64_t c = c0; c < c0 + BLOCK && c < cols; c++)
          dst[c * rows + r] = lzn_wtype_element(t->dtype, t->data, (size_t)(r * cols + c));
  out->data = dst;
  if (usable_in_place(t)) as_stored->data = t->data;
  return lzn_load_progress_step(&b->progress);
}
