/*
 * workload.h: the data `lzn-bench kernels` reads, made before any timing.
 *
 * Cold cache by construction: each layout of W_down gets enough copies that
 * together they are at least 4x the L3, and calls rotate through them; every
 * call gets its own random active set, so no row stays warm from the call
 * before. Weights are random and every page is written, so no read hits the
 * kernel's shared zero page.
 */
#ifndef LZN_BENCH_WORKLOAD_H
#define LZN_BENCH_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* Copies of one W_down [d_model x d_ff] in both layouts, same values:
 * w_t[c] = W_down transposed, [F][D] row-major (what the sparse kernels read:
 * one contiguous row per neuron); w[c] = W_down as nn.Linear stores it,
 * [D][F] row-major (what oneDNN reads fastest for one token). */
typedef struct weight_copies {
  size_t d, f;
  size_t bytes;    /* of one copy of one layout */
  size_t n_copies; /* per layout */
  float **w_t, **w;
} weight_copies;

/* The copy count for a matrix of bytes: ceil(4 * l3_bytes / bytes), >= 1. */
size_t weight_copies_needed(size_t bytes, size_t l3_bytes);
void weight_copies_make(weight_copies *wc, size_t d, size_t f, size_t l3_bytes, int huge_pages);
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
