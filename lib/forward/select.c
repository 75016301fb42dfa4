/*
 * select.c: thresholds and the union of a batch's active sets
 * (forward/select.h).
 */
#include "forward/select.h"


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

float lzn_select_threshold(const float *v, int f, float base, int top_k, float *scratch) {
  if (top_k <= 0 || top_k >= f) return base;
  int m = 0;
  for (int i = 0; i < f; i++)
    if (v[i] > base) scratch[m++] = v[i];
  return m <= top_k ? base : kth_largest(scratch, m, top_k);
}

size_t lzn_select_mark(const float *v, int f, float threshold, uint8_t *mask) {
  size_t count = 0;
#pragma omp simd reduction(+ : count)
  for (int i = 0; i < f; i++) {
    const int active = v[i] > threshold;
    mask[i] |= (uint8_t)active;
    count += (size_t)active;
  }
  return count;
}

size_t lzn_select_collect(const uint8_t *mask, int f, int32_t *idx) {
  size_t count = 0;
  for (int i = 0; i < f; i++) { /* branch-free: i written always, kept when marked */
    idx[count] = i;
    count += mask[i] != 0;
  }
  return count;
}
