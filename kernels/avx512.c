/* avx512.c: placeholder until the avx512 kernels land; same code as scalar.c. */
#include "kernels.h"

static size_t avx512_relu_compact(const float *h, size_t n, float threshold,
                                  int32_t *idx, float *val) {
  size_t n_active = 0;
  for (size_t i = 0; i < n; i++)
    if (h[i] > threshold) { idx[n_active] = (int32_t)i; val[n_active++] = h[i]; }
  return n_active;
}

static void avx512_axpy_rows(float *y, size_t d, const float *w, size_t ld,
                             const int32_t *idx, const float *coef, size_t n) {
  for (size_t t = 0; t < n; t++)
    for (size_t j = 0; j < d; j++) y[j] += coef[t] * w[(size_t)idx[t] * ld + j];
}

static void avx512_dot_rows(float *out, const float *w, size_t ld, size_t d,
                            const int32_t *idx, size_t n, const float *x) {
  for (size_t t = 0; t < n; t++) {
    float s = 0.0f;
    for (size_t j = 0; j < d; j++) s += w[(size_t)idx[t] * ld + j] * x[j];
    out[t] = s;
  }
}

const lzn_kernels lzn_kernels_avx512 = {"avx512", LZN_ISA_AVX512, avx512_relu_compact, avx512_axpy_rows, avx512_dot_rows};
