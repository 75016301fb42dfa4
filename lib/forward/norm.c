/*
 * norm.c: layer norm (torch.nn.LayerNorm, OPT) and RMS norm (Hugging Face's
 * LlamaRMSNorm), row by row.
 */
#include <math.h>

#include "forward/forward.h"

/* Statistics in double, which keeps us close to PyTorch; the loops are
 * `omp simd` (partial sums in lanes): one at a time, a 16-token step of a
 * d = 128 model spent a fifth of its time in its norms. */
static void layer_norm(float *out, const float *x, const lzn_norm *norm, double eps, int n, int d) {
  for (int t = 0; t < n; t++) {
    const float *row = x + (size_t)t * d;
    float *dst = out + (size_t)t * d;
    double mean = 0.0, var = 0.0;
#pragma omp simd reduction(+ : mean)
    for (int j = 0; j < d; j++) mean += row[j];
    mean /= d;
#pragma omp simd reduction(+ : var)
    for (int j = 0; j < d; j++) var += (row[j] - mean) * (row[j] - mean);
    const double inv = 1.0 / sqrt(var / d + eps);
    if (norm->weight) {
#pragma omp simd
      for (int j = 0; j < d; j++) dst[j] = (float)((row[j] - mean) * inv) * norm->weight[j] + norm->bias[j];
    } else {
#pragma omp simd
      for (int j = 0; j < d; j++) dst[j] = (float)((row[j] - mean) * inv);
    }
  }
}

/* x / sqrt(mean(x^2) + eps) * w. */
static void rms_norm(float *out, const float *x, const lzn_norm *norm, double eps, int n, int d) {
  for (int t = 0; t < n; t++) {
    const float *row = x + (size_t)t * d;
    float *dst = out + (size_t)t * d;
    double sum_sq = 0.0;
#pragma omp simd reduction(+ : sum_sq)
    for (int j = 0; j < d; j++) sum_sq += (double)row[j] * row[j];
    const double inv = 1.0 / sqrt(sum_sq / d + eps);
    if (norm->weight) {
#pragma omp simd
      for (int j = 0; j < d; j++) dst[j] = (float)(row[j] * inv) * norm->weight[j];
    } else {
#pragma omp simd
      for (int j = 0; j < d; j++) dst[j] = (float)(row[j] * inv);
    }
  }
}

void lzn_norm_rows(const lzn_arch_desc *arch, const lzn_norm *norm, float *out, const float *x,
                   int n, int d) {
  switch (arch->norm) {
  case LZN_NORM_LAYER: layer_norm(out, x, norm, arch->norm_eps, n, d); break;
  case LZN_NORM_RMS: rms_norm(out, x, norm, arch->norm_eps, n, d); break;
  }
}
