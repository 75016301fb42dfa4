/*
 * kernels_mode.h: what the three files of `lzn-bench kernels` share:
 * kernels.c (command line), kernels_measure.c (timing), kernels_report.c
 * (crossover and output).
 */
#ifndef LZN_BENCH_KERNELS_MODE_H
#define LZN_BENCH_KERNELS_MODE_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "core/errors.h"
#include "cpu/cpu.h"
#include "output.h"

#define KERNELS_MAX_ITEMS 64
#define MIB ((size_t)1 << 20)

typedef struct kernels_options {
  int64_t d_model[KERNELS_MAX_ITEMS], d_ff[KERNELS_MAX_ITEMS];
  size_t n_shapes;
  double densities[KERNELS_MAX_ITEMS]; /* percent, ascending, no duplicates */
  size_t n_densities;
  lzn_kernel_table isas[LZN_ISA_COUNT]; /* the table each --isa ceiling gives */
  size_t n_isas;
  int threads[KERNELS_MAX_ITEMS];
  size_t n_threads;
  int reps;
  bench_format format;
  size_t l3_bytes;
  int huge_pages, flush;
} kernels_options;

/* One table row: one (shape, threads, ISA, density). */
typedef struct kernels_result {
  const char *isa;
  int threads;
  size_t d, f, n_copies;
  double density;
  size_t n_active;
  bench_stats sparse, dense, relu; /* ms */
  double max_rel_err;              /* sparse against dense, warm-up call */
} kernels_result;

/* Measures one shape for every thread count, density and ISA, into
 * out[(t * n_isas + i) * n_densities + k]: the order the table prints.
 * flush_buffer holds 2 * l3_bytes of nonzero data. */
void kernels_measure_shape(const kernels_options *o, size_t d, size_t f,
                           const void *flush_buffer, bench_rng *rng, kernels_result *out);

/* Prints the results (n_shapes * n_threads * n_isas groups of n_densities
 * rows) in o->format. Returns 0, or 1 if sparse and dense disagreed. */
int kernels_report(const kernels_options *o, const kernels_result *results);

#endif /* LZN_BENCH_KERNELS_MODE_H */
