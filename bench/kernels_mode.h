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
#include "machine.h"
#include "output.h"

#define KERNELS_MAX_ITEMS 64
#define MIB ((size_t)1 << 20)

typedef struct kernels_options {
  int64_t d_model[KERNELS_MAX_ITEMS], d_ff[KERNELS_MAX_ITEMS];
  size_t n_shapes;
  double densities[KERNELS_MAX_ITEMS]; /* percent, ascending, no duplicates */
  size_t n_densities;
  /* The table each --isa ceiling gives, at each --prefetch level; named
   * "avx2" or, with --prefetch, "avx2/l2" (labels). */
  lzn_kernel_table isas[2 * LZN_ISA_COUNT];
  char labels[2 * LZN_ISA_COUNT][32];
  size_t n_isas;
  int threads[KERNELS_MAX_ITEMS];
  size_t n_threads;
  lzn_weight_type types[LZN_WEIGHT_TYPE_COUNT]; /* --type, in the order given */
  size_t n_types;
  int reps;
  bench_format format;
  size_t l3_bytes;  /* what cold sets are sized by: machine.llc_bytes */
  size_t cap_bytes; /* most memory the weight copies of one type may take */
  int huge_pages, flush;
  bench_machine machine;
  /* Streaming read bandwidth, per entry of threads[], with the loads that
   * were fastest for that thread count; stream_by_loads is one thread. */
  bench_stats stream[KERNELS_MAX_ITEMS];
  bench_stream_loads stream_loads[KERNELS_MAX_ITEMS];
  double stream_by_loads[BENCH_STREAM_COUNT]; /* GB/s, 0 = not supported */
  size_t stream_bytes; /* of the stream buffer, which is also the flush buffer */
} kernels_options;

/* What a row times: the down-projection at one density (axpy_rows through
 * lzn_sparse_down_run), the same with axpy_rows_q8 (the coefficients
 * rounded to int8 per group of rows, kernels.h), the gathered dot products
 * of the active rows (dot_rows: the gated MLP's up rows, the predictor), or
 * the GEMV over every row of W_t [F][D]. */
typedef enum kernels_op {
  KERNELS_OP_DOWN = 0,
  KERNELS_OP_GEMV = 1,
  KERNELS_OP_DOWN_Q8 = 2,
  KERNELS_OP_DOT = 3
} kernels_op;

/* One table row: one (shape, type, threads, ISA, op, density). */
typedef struct kernels_result {
  lzn_weight_type type;
  kernels_op op;
  const char *isa;
  int threads;
  size_t d, f, n_copies;
  int copies_capped; /* the RAM cap left the working set under 4x LLC */
  double density;    /* 100 for the GEMV */
  size_t n_active;   /* rows the kernel reads */
  double bytes;       /* weight bytes the kernel reads: rows x row_bytes */
  double dense_bytes; /* weight bytes the dense baseline reads */
  int dense_is_onednn; /* else the same type's gemv over all rows, same ISA */
  bench_stats sparse, dense, relu; /* ms; sparse is the row's kernel, relu unset for the GEMV */
  /* At this thread count: the median of the flushes around this row's
   * calls (each flush is a timed stream read), or without flushes the
   * stream measured before the kernels. */
  double stream_gbps;
  bench_stream_loads stream_loads; /* the loads that reached it */
  /* The same rows (the active set; every row for the GEMV) read with plain
   * loads and no computation, from memory, at this thread count: the
   * median over the point's repetitions (bench_gather_read_once). What the
   * memory gives to this access pattern, which for short rows at random is
   * well below the stream. For the GEMV, the stream. */
  double gather_gbps;
  double max_rel_err;              /* kernel and baseline against a double reference, warm-up call */
} kernels_result;



/* Rows per (shape, type, threads, ISA): the down-projection at each
 * density, then axpy_rows_q8 at each, then dot_rows at each, then the GEMV. */
#define KERNELS_ROWS_PER_GROUP(o) (3 * (o)->n_densities + 1)
/* Row of op at density k within a group. */
#define KERNELS_ROW_OF(o, op, k)                                                                     \
  ((op) == KERNELS_OP_DOWN ? (k) : (op) == KERNELS_OP_DOWN_Q8 ? (o)->n_densities + (k)               \
                                 : (op) == KERNELS_OP_DOT     ? 2 * (o)->n_densities + (k) : 3 * (o)->n_densities)

/* Measures one shape in one type for every thread count, density and ISA,
 * into out[(t * n_isas + i) * KERNELS_ROWS_PER_GROUP + k]: the order the
 * table prints. n_copies of each layout, capped as the result rows say.
 * flush_buffer, o->stream_bytes of nonzero data, is read before every timed
 * call with o->stream_loads, and timed: the stream read interleaved with the
 * kernels. */
void kernels_measure_shape(const kernels_options *o, lzn_weight_type type, size_t d, size_t f,
                           size_t n_copies, int copies_capped, const void *flush_buffer,
                           bench_rng *rng, kernels_result *out);

/* Prints n_groups groups of KERNELS_ROWS_PER_GROUP rows in o->format;
 * skipped says, one line each, what was not measured and why. Returns 0,
 * or 1 if a kernel disagreed with the reference. */
int kernels_report(const kernels_options *o, const kernels_result *results, size_t n_groups,
                   const char *skipped);

#endif /* LZN_BENCH_KERNELS_MODE_H */
