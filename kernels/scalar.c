/*
 * scalar.c: the reference kernels. Plain C, obviously correct: the
 * specification that every SIMD kernel is tested against (see kernels.h for
 * the contract of each). Compiled without ISA flags.
 */
#include "kernels.h"

static size_t scalar_relu_compact(const float *h, size_t n, float threshold,
                                  int32_t *idx, float *val) {
  size_t n_active = 0;
  for (size_t i = 0; i < n; i++) {
    if (h[i] > threshold) { /* false for NaN */
      idx[n_active] = (int32_t)i;
      val[n_active] = h[i];
      n_active++;
    }
  }
  return n_active;
}

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

const lzn_kernels lzn_kernels_scalar = {
    .name = "scalar",
    .isa = LZN_ISA_SCALAR,
    .relu_compact = scalar_relu_compact,
    .axpy_rows = scalar_axpy_rows,
    .dot_rows = scalar_dot_rows,
};
