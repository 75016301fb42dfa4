/*
 * ref/f32.c: the reference kernels for fp32 weights. Plain C, obviously correct: the
 * specification that every SIMD kernel is tested against (see kernels.h for
 * the contract of each). Compiled without ISA flags.
 */
#include <string.h>

#include "kernels/kernels.h"

static void scalar_axpy_rows(float *y, size_t d, const float *w, size_t ld,
                             const int32_t *idx, const float *coef, size_t n) {
  for (size_t t = 0; t < n; t++) {
    const float *row = w + (size_t)idx[t] * ld;
    const float c = coef[t];
    for (size_t j = 0; j < d; j++) y[j] += c * row[j];
  }
}

static void scalar_dot_rows(float *out, const float *w, size_t ld, size_t d,
                            const int32_t *idx, size_t n, const float *x) {
  for (size_t t = 0; t < n; t++) {
    const float *row = w + (size_t)idx[t] * ld;
    float sum = 0.0f;
    for (size_t j = 0; j < d; j++) sum += row[j] * x[j];
    out[t] = sum;
  }
}

static void scalar_f32_copy(void *dst, const float *src, size_t d) {
  memcpy(dst, src, d * sizeof(float));
}

static void scalar_f32_copy_out(float *dst, const void *src, size_t d) {
  memcpy(dst, src, d * sizeof(float));
}

/* The table's signatures: rows as bytes, x untyped (fp32 for this type). */
static void scalar_f32_axpy_rows(float *y, size_t d, const void *w, size_t row_bytes,
                              const int32_t *idx, const float *coef, size_t n) {
  scalar_axpy_rows(y, d, w, row_bytes / sizeof(float), idx, coef, n);
}

static void scalar_f32_dot_rows(float *out, const void *w, size_t row_bytes, size_t d,
                             const int32_t *idx, size_t n, const void *x) {
  scalar_dot_rows(out, w, row_bytes / sizeof(float), d, idx, n, x);
}

static void scalar_f32_gemv(float *out, const void *w, size_t row_bytes, size_t d, size_t n_rows,
                         const void *x) {
  const float *const rows = w, *const xf = x;
  const size_t ld = row_bytes / sizeof(float);
  for (size_t r = 0; r < n_rows; r++) {
    const float *row = rows + r * ld;
    float sum = 0.0f;
    for (size_t j = 0; j < d; j++) sum += row[j] * xf[j];
    out[r] = sum;
  }
}

void lzn_install_ref_f32(lzn_kernel_table *t);
void lzn_install_ref_f32(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_F32].axpy_rows, LZN_ISA_SCALAR, scalar_f32_axpy_rows);
  /* An element type has no scale to round the coefficients with: axpy_rows_q8 is axpy_rows. */
  LZN_SET(t->type[LZN_WEIGHTS_F32].axpy_rows_q8, LZN_ISA_SCALAR, scalar_f32_axpy_rows);
  LZN_SET(t->type[LZN_WEIGHTS_F32].dot_rows, LZN_ISA_SCALAR, scalar_f32_dot_rows);
  LZN_SET(t->type[LZN_WEIGHTS_F32].gemv, LZN_ISA_SCALAR, scalar_f32_gemv);
  LZN_SET(t->type[LZN_WEIGHTS_F32].from_f32, LZN_ISA_SCALAR, scalar_f32_copy);
  LZN_SET(t->type[LZN_WEIGHTS_F32].to_f32, LZN_ISA_SCALAR, scalar_f32_copy_out);
}
