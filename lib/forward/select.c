/*
 * select.c: which neurons of a token count as active. A neuron is active
 * when its pre-activation exceeds the token's threshold: params.threshold,
 * raised with top_k until at most top_k neurons remain (Top-k thresholding:
 * the seeds report it keeps quality while making activations sparser).
 */
#include <string.h>

#include "forward/forward.h"

/* The value that has exactly k values of v[0..n) above it (0 <= k < n):
 * quickselect for descending position k. Reorders v. */
static float kth_largest(float *v, int n, int k) {
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    const float pivot = v[lo + (hi - lo) / 2];
    int i = lo, j = hi;
    while (i <= j) {
      while (v[i] > pivot) i++;
      while (v[j] < pivot) j--;
      if (i <= j) {
        const float t = v[i];
        v[i++] = v[j], v[j--] = t;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break; /* v[k] == pivot */
  }
  return v[k];
}

/* The activation threshold of one token (see the top of the file). With
 * ties at the boundary fewer than top_k may remain: "at most" k. */
float lzn_token_threshold(lzn_context *ctx, const float *h, float base) {
  const int k = ctx->params.top_k, f = ctx->model->d_ff;
  if (k <= 0 || k >= f) return base;
  float *above = ctx->top_k_scratch;
  int m = 0;
  for (int i = 0; i < f; i++)
    if (h[i] > base) above[m++] = h[i];
  return m <= k ? base : kth_largest(above, m, k);
}


size_t lzn_union_of(lzn_context *ctx, const float *h, int n) {
  const int f = ctx->model->d_ff;
  uint8_t *in_union = ctx->union_mask;
  memset(in_union, 0, (size_t)f);
  for (int t = 0; t < n; t++) {
    const float *row = h + (size_t)t * f;
    const float threshold = ctx->token_threshold[t];
    for (int i = 0; i < f; i++) in_union[i] |= (uint8_t)(row[i] > threshold);
  }
  size_t count = 0;
  for (int i = 0; i < f; i++)
    if (in_union[i]) ctx->union_idx[count++] = i;
  return count;
}
