/*
 * workload.h: the data `lzn-bench kernels` reads, made before any timing.
 *
 * Cold cache by construction: each layout of W_down gets enough copies that
 * together they are at least 4x the last-level cache (fewer only when that
 * would not fit in the RAM the benchmark allows itself, which the report
 * then says), and calls rotate through them; every
 * call gets its own random active set, so no row stays warm from the call
 * before. Weights are random and every page is written, so no read hits the
 * kernel's shared zero page.
 */
#ifndef LZN_BENCH_WORKLOAD_H
#define LZN_BENCH_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "core/wtype.h"
#include "kernels/kernels.h"

/* Copies of one W_down [d_model x d_ff] in both layouts, in one weight
 * type: w_t[c] = W_down transposed, [F][D], rows of row_bytes_t =
 * lzn_wtype_row_bytes(type, D) (what the sparse kernels and the GEMV read:
 * one contiguous row per neuron); w[c] = W_down as nn.Linear stores it,
 * [D][F], rows of row_bytes (what oneDNN, or the type's gemv, reads for the
 * dense down-projection). Both are the fp32 matrix converted row by row by
 * the reference from_f32; for the block types the two layouts are
 * quantized along different axes, so they hold slightly different matrices
 * (the same byte count, which is what the timing compares). */
typedef struct weight_copies {
  lzn_weight_type type;
  size_t d, f;
  size_t row_bytes_t, row_bytes; /* of a row of w_t ([F][D]) and of w ([D][F]) */
  size_t bytes_t, bytes;         /* of one copy of each layout */
  size_t n_copies;               /* per layout */
  void **w_t, **w;
} weight_copies;

/* The copy count for a matrix of bytes: ceil(4 * l3_bytes / bytes), >= 1. */
size_t weight_copies_needed(size_t bytes, size_t l3_bytes);
/* The same, lowered so that copies of both layouts (pair_bytes per copy)
 * take at most cap_bytes, but never below 1; *capped says whether the cap
 * lowered it. */
size_t weight_copies_capped(size_t bytes, size_t pair_bytes, size_t l3_bytes, size_t cap_bytes,
                            int *capped);
/* n_copies of each layout; ref is the reference table (its from_f32 slot
 * of type must be set). */
void weight_copies_make(weight_copies *wc, lzn_weight_type type, size_t d, size_t f, size_t n_copies,
                        int huge_pages, const lzn_kernel_table *ref);
void weight_copies_free(weight_copies *wc);

/* n_sets activations of one token, each with exactly n_active neurons
 * active, chosen at random: the pre-ReLU h (for relu_compact), relu(h) (the
 * dense down-projection's input) and the active set that relu_compact makes
 * of it (indices ascending, values as coefficients). */
typedef struct active_sets {
  size_t n_sets, f, n_active;
  float *h;      /* [n_sets][f], inactive entries <= 0 */
  float *x;      /* [n_sets][f], relu(h) */
  int32_t *idx;  /* [n_sets][n_active] */
  float *coef;   /* [n_sets][n_active] */
} active_sets;

void active_sets_make(active_sets *s, size_t n_sets, size_t f, size_t n_active, bench_rng *rng);
void active_sets_free(active_sets *s);

#endif /* LZN_BENCH_WORKLOAD_H */
