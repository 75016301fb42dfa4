/*
 * ref/axpy_q8.h: the specification of axpy_rows_q8 for every block type
 * (kernels.h has the contract), written once over a type's block scale and
 * integer weight; ref/<type>.c files instantiate it. Plain C, compiled
 * without ISA flags; static inline, so each file keeps its own copy
 * (kernels/ref/kquant.h includes it for the K-quants' rule).
 */
#ifndef LZN_KERNELS_REF_AXPY_Q8_H
#define LZN_KERNELS_REF_AXPY_Q8_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

/* A row's block b: its scale as fp32, and its weight j as an integer. */
typedef float (*ref_block_scale_fn)(const void *row, size_t b);
typedef int32_t (*ref_block_value_fn)(const void *row, size_t b, size_t j);

/* alpha[0..g) and the returned s of one group and block, from the fp32
 * products a[0..g) = coef * d. */
static inline float ref_q8_coefficients(const float *a, size_t g, int32_t *alpha) {
  float m = 0.0f;
  for (size_t t = 0; t < g; t++)
    if (fabsf(a[t]) > m) m = fabsf(a[t]);
  if (!(m >= FLT_MIN)) {
    for (size_t t = 0; t < g; t++) alpha[t] = 0;
    return 0.0f;
  }
  const float inv = 127.0f / m;
  for (size_t t = 0; t < g; t++) alpha[t] = (int32_t)rintf(a[t] * inv); /* half to even */
  return m / 127.0f;
}

static inline void ref_axpy_rows_q8(float *y, size_t d, const void *w, size_t row_bytes, const int32_t *idx,
                             const float *coef, size_t n, size_t block_weights, ref_block_scale_fn scale,
                             ref_block_value_fn value) {
  const size_t n_blocks = (d + block_weights - 1) / block_weights;
  for (size_t t0 = 0; t0 < n; t0 += LZN_AXPY_Q8_GROUP) {
    const size_t g = n - t0 < LZN_AXPY_Q8_GROUP ? n - t0 : LZN_AXPY_Q8_GROUP;
    const void *rows[LZN_AXPY_Q8_GROUP];
    for (size_t t = 0; t < g; t++) rows[t] = (const char *)w + (size_t)idx[t0 + t] * row_bytes;
    for (size_t b = 0; b < n_blocks; b++) {
      float a[LZN_AXPY_Q8_GROUP];
      int32_t alpha[LZN_AXPY_Q8_GROUP];
      for (size_t t = 0; t < g; t++) a[t] = coef[t0 + t] * scale(rows[t], b);
      const float s = ref_q8_coefficients(a, g, alpha);
      const size_t j_end = d - b * block_weights < block_weights ? d - b * block_weights : block_weights;
      for (size_t j = 0; j < j_end; j++) {
        int32_t sum = 0;
        for (size_t t = 0; t < g; t++) sum += alpha[t] * value(rows[t], b, j);
        y[b * block_weights + j] += s * (float)sum;
      }
    }
  }
}

#endif /* LZN_KERNELS_REF_AXPY_Q8_H */
