/*
 * workload.c: weight copies and active sets for `lzn-bench kernels`.
 */
#include "workload.h"

#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "cpu/cpu.h"

/* W_down[j][i] (row j of d_model, neuron i) as a pure function of (i, j), so
 * both layouts are filled in their own row order, in parallel, and hold the
 * same matrix (before quantization). */
static float weight_value(uint64_t neuron, uint64_t j) {
  uint64_t z = (neuron << 32 | j) + 0x9e3779b97f4a7c15ull; /* splitmix64 */
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (float)((double)(z >> 40) / 16777216.0 * 2.0 - 1.0); /* [-1, 1) */
}

size_t weight_copies_needed(size_t bytes, size_t l3_bytes) {
  const size_t n = (4 * l3_bytes + bytes - 1) / bytes;
  return n < 1 ? 1 : n;
}

size_t weight_copies_capped(size_t bytes, size_t pair_bytes, size_t l3_bytes, size_t cap_bytes,
                            int *capped) {
  const size_t want = weight_copies_needed(bytes, l3_bytes);
  const size_t fit = pair_bytes ? cap_bytes / pair_bytes : want;
  *capped = fit < want;
  return fit < want ? (fit < 1 ? 1 : fit) : want;
}

/* Fills rows [0, n_rows) of dst (row_bytes apart) with row(r)[0..n_cols) of
 * the fp32 matrix, converted by from_f32; transposed picks the layout. */
static void fill_layout(char *dst, size_t row_bytes, size_t n_rows, size_t n_cols, int transposed,
                        lzn_from_f32_fn from_f32) {
#pragma omp parallel
  {
    float *row = malloc(n_cols * sizeof *row);
    if (row == NULL) bench_fail("out of memory");
#pragma omp for schedule(static)
    for (size_t r = 0; r < n_rows; r++) {
      for (size_t c = 0; c < n_cols; c++) row[c] = transposed ? weight_value(r, c) : weight_value(c, r);
      from_f32(dst + r * row_bytes, row, n_cols);
    }
    free(row);
  }
}

void weight_copies_make(weight_copies *wc, lzn_weight_type type, size_t d, size_t f, size_t n_copies,
                        int huge_pages, const lzn_kernel_table *ref) {
  wc->type = type, wc->d = d, wc->f = f;
  wc->row_bytes_t = lzn_wtype_row_bytes(type, d);
  wc->row_bytes = lzn_wtype_row_bytes(type, f);
  wc->bytes_t = f * wc->row_bytes_t;
  wc->bytes = d * wc->row_bytes;
  wc->n_copies = n_copies;
  wc->w_t = calloc(wc->n_copies, sizeof *wc->w_t);
  wc->w = calloc(wc->n_copies, sizeof *wc->w);
  if (wc->w_t == NULL || wc->w == NULL) bench_fail("out of memory");
  /* One block per layout, copies a whole number of cache lines apart: a
   * small matrix has thousands of copies, and 2 MiB-aligning each would
   * waste most of the memory. */
  const size_t stride_t = (wc->bytes_t + 63) & ~(size_t)63, stride = (wc->bytes + 63) & ~(size_t)63;
  char *block_t = bench_alloc_big(wc->n_copies * stride_t, huge_pages);
  char *block = bench_alloc_big(wc->n_copies * stride, huge_pages);
  for (size_t c = 0; c < wc->n_copies; c++) {
    wc->w_t[c] = block_t + c * stride_t;
    wc->w[c] = block + c * stride;
  }
  fill_layout(block_t, wc->row_bytes_t, f, d, 1, ref->type[type].from_f32.fn);
  fill_layout(block, wc->row_bytes, d, f, 0, ref->type[type].from_f32.fn);
  /* Same values at other addresses: the caches cannot tell them apart. */
  for (size_t c = 1; c < wc->n_copies; c++) {
    memcpy(wc->w_t[c], block_t, wc->bytes_t);
    memcpy(wc->w[c], block, wc->bytes);
  }
}

void weight_copies_free(weight_copies *wc) {
  if (wc->n_copies) free(wc->w_t[0]), free(wc->w[0]); /* the blocks */
  free(wc->w_t);
  free(wc->w);
  memset(wc, 0, sizeof *wc);
}

void active_sets_make(active_sets *s, size_t n_sets, size_t f, size_t n_active, bench_rng *rng) {
  lzn_kernel_table reference;
  lzn_kernel_table_fill(LZN_ISA_SCALAR, 0, LZN_PREFETCH_L1, &reference);
  s->n_sets = n_sets, s->f = f, s->n_active = n_active;
  s->h = malloc(n_sets * f * sizeof *s->h);
  s->x = malloc(n_sets * f * sizeof *s->x);
  s->idx = malloc(n_sets * n_active * sizeof *s->idx + 1);
  s->coef = malloc(n_sets * n_active * sizeof *s->coef + 1);
  uint32_t *perm = malloc(f * sizeof *perm);
  int32_t *idx = malloc(f * sizeof *idx); /* relu_compact's outputs hold f entries */
  float *val = malloc(f * sizeof *val);
  if (!s->h || !s->x || !s->idx || !s->coef || !perm || !idx || !val) bench_fail("out of memory");
  for (size_t i = 0; i < f; i++) perm[i] = (uint32_t)i;
  for (size_t set = 0; set < n_sets; set++) {
    float *h = s->h + set * f;
    /* Inactive pre-activations in (-1, 0]; exactly n_active chosen by a
     * partial Fisher-Yates shuffle get (0.01, 1], so the byte count of every
     * call is the same and the GB/s figures compare. */
    for (size_t i = 0; i < f; i++) h[i] = -(float)bench_rng_unit(rng);
    for (size_t t = 0; t < n_active; t++) {
      const size_t pick = t + (size_t)bench_rng_below(rng, f - t);
      const uint32_t tmp = perm[t];
      perm[t] = perm[pick], perm[pick] = tmp;
      h[perm[t]] = 0.01f + 0.99f * (float)bench_rng_unit(rng);
    }
    for (size_t i = 0; i < f; i++) s->x[set * f + i] = h[i] > 0.0f ? h[i] : 0.0f;
    /* The reference kernel makes the active set, ascending, exactly as the
     * library's relu_compact hands it to the down-projection. */
    const size_t n = reference.relu_compact.fn(h, f, 0.0f, idx, val);
    if (n != n_active) bench_fail("internal error: %zu active neurons, wanted %zu", n, n_active);
    memcpy(s->idx + set * n_active, idx, n_active * sizeof *idx);
    memcpy(s->coef + set * n_active, val, n_active * sizeof *val);
  }
  free(perm);
  free(idx);
  free(val);
}

void active_sets_free(active_sets *s) {
  free(s->h);
  free(s->x);
  free(s->idx);
  free(s->coef);
  memset(s, 0, sizeof *s);
}
