/*
 * kernels_report.c: the results of `lzn-bench kernels` as records (one per
 * row, see output.h), the crossover density, and the markdown decorations.
 *
 * The record keys of the f32-only benchmark come first, in their old order
 * and meaning (sparse_ms is the row's kernel: the sparse down-projection,
 * or the gemv on a GEMV row); the keys added with the weight types and the
 * machine facts follow, so scripts reading the old CSV columns keep working.
 */
#include <dnnl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_mode.h"
#include "workload.h"

/* Kernel against the double-precision reference, relative to max |y|:
 * fp32 sums in another order differ by ~1e-6; a lost or repeated row by
 * ~1e-2. The references see the weights and the x that the kernel saw
 * (quantized alike), so this holds for every type. */
#define MAX_REL_ERR 1e-4
/* axpy_rows_q8 rounds each coefficient * scale to int8 per group of 16 rows
 * (kernels.h: by at most 1/254 of the group's largest): on these random
 * rows ~1e-3 of max |y|; a lost or repeated row moves it by ~1e-2 and more. */
#define MAX_REL_ERR_Q8 1e-2

static const char *op_name(kernels_op op) {
  switch (op) {
  case KERNELS_OP_DOWN: return "down";
  case KERNELS_OP_DOWN_Q8: return "down_q8";
  case KERNELS_OP_DOT: return "dot";
  case KERNELS_OP_GEMV: return "gemv";
  }
  return "?";
}

/* Where sparse time == dense time, interpolating linearly in time between
 * the measured densities around the first point where sparse stops winning.
 * NAN with a note when it lies outside the measured range. */
static double crossover(const kernels_result *rows, size_t n, const char **note) {
  double prev_diff = 0.0;
  for (size_t k = 0; k < n; k++) {
    const double diff = rows[k].sparse.median - rows[k].dense.median;
    if (diff >= 0.0) {
      if (k == 0) {
        *note = "below the lowest density";
        return NAN;
      }
      *note = "interpolated";
      return rows[k - 1].density + (rows[k].density - rows[k - 1].density) * -prev_diff / (diff - prev_diff);
    }
    prev_diff = diff;
  }
  *note = "above the highest density";
  return NAN;
}

static json_t *real_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static double gbps(double bytes, double ms) { return bytes / (ms * 1e-3) / 1e9; }

/* The f32 row measured like r (same shape, threads, ISA, op, density), or
 * NULL when f32 was not measured. */
static const kernels_result *f32_twin(const kernels_result *r, const kernels_result *all, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const kernels_result *q = &all[i];
    if (q->type == LZN_WEIGHTS_F32 && q->op == r->op && q->threads == r->threads && q->d == r->d &&
        q->f == r->f && q->density == r->density && strcmp(q->isa, r->isa) == 0)
      return q;
  }
  return NULL;
}

static json_t *make_record(const kernels_options *o, const kernels_result *r, double cross,
                           const char *cross_note, const kernels_result *f32) {
  json_t *rec = json_object();
  if (rec == NULL) bench_fail("out of memory");
  const int down = r->op == KERNELS_OP_DOWN || r->op == KERNELS_OP_DOWN_Q8;
  /* 1/d from the active count actually drawn, which rounding can move away
   * from the nominal density when d_ff is small. */
  const double speedup = r->dense.median / r->sparse.median, ideal = (double)r->f / (double)r->n_active;
  const double kernel_gbps = gbps(r->bytes, r->sparse.median), dense_gbps = gbps(r->dense_bytes, r->dense.median);
  bench_set(rec, "isa", json_string(r->isa));
  bench_set(rec, "threads", json_integer(r->threads));
  bench_set(rec, "d_model", json_integer((json_int_t)r->d));
  bench_set(rec, "d_ff", json_integer((json_int_t)r->f));
  bench_set(rec, "density", json_real(r->density));
  bench_set(rec, "n_active", json_integer((json_int_t)r->n_active));
  bench_set(rec, "reps", json_integer(o->reps));
  bench_set(rec, "copies", json_integer((json_int_t)r->n_copies));
  bench_set(rec, "sparse_ms", json_real(r->sparse.median));
  bench_set(rec, "sparse_ms_min", json_real(r->sparse.min));
  bench_set(rec, "sparse_ms_max", json_real(r->sparse.max));
  bench_set(rec, "relu_compact_ms", down ? json_real(r->relu.median) : json_null());
  bench_set(rec, "relu_compact_ms_min", down ? json_real(r->relu.min) : json_null());
  bench_set(rec, "relu_compact_ms_max", down ? json_real(r->relu.max) : json_null());
  bench_set(rec, "relu_compact_pct", down ? real_or_null(100.0 * r->relu.median / r->sparse.median) : json_null());
  bench_set(rec, "dense_ms", json_real(r->dense.median));
  bench_set(rec, "dense_ms_min", json_real(r->dense.min));
  bench_set(rec, "dense_ms_max", json_real(r->dense.max));
  bench_set(rec, "speedup", real_or_null(speedup));
  bench_set(rec, "ideal_speedup", json_real(ideal));
  bench_set(rec, "speedup_vs_ideal", real_or_null(speedup / ideal));
  bench_set(rec, "sparse_gbps", real_or_null(kernel_gbps));
  bench_set(rec, "dense_gbps", real_or_null(dense_gbps));
  bench_set(rec, "crossover_density", down ? real_or_null(cross) : json_null());
  bench_set(rec, "crossover_note", json_string(down ? cross_note : "only for the down-projection"));
  bench_set(rec, "max_rel_err", real_or_null(r->max_rel_err));
  /* Added with the weight types. */
  bench_set(rec, "type", json_string(bench_type_name(r->type)));
  bench_set(rec, "op", json_string(op_name(r->op)));
  bench_set(rec, "dense_kernel", json_string(r->dense_is_onednn ? "onednn_f32" : "gemv_same_type"));
  bench_set(rec, "bytes_read", json_real(r->bytes));
  bench_set(rec, "dense_bytes_read", json_real(r->dense_bytes));
  bench_set(rec, "copies_capped", json_boolean(r->copies_capped));
  bench_set(rec, "stream_gbps", real_or_null(r->stream_gbps));
  bench_set(rec, "stream_loads", json_string(bench_stream_loads_name(r->stream_loads)));
  bench_set(rec, "stream_pct", real_or_null(100.0 * kernel_gbps / r->stream_gbps));
  bench_set(rec, "gather_gbps", real_or_null(r->gather_gbps));
  bench_set(rec, "gather_pct", real_or_null(100.0 * kernel_gbps / r->gather_gbps));
  bench_set(rec, "dense_stream_pct", real_or_null(100.0 * dense_gbps / r->stream_gbps));
  bench_set(rec, "speedup_vs_f32", f32 ? real_or_null(f32->sparse.median / r->sparse.median) : json_null());
  bench_machine_set_fields(rec, &o->machine);
  return rec;
}

static const bench_column md_columns[] = {
    {"type", "type", NULL, NULL, 0},
    {"op", "op", NULL, NULL, 0},
    {"isa", "isa", NULL, NULL, 0},
    {"threads", "threads", NULL, NULL, 0},
    {"d_model", "d_model", NULL, NULL, 0},
    {"d_ff", "d_ff", NULL, NULL, 0},
    {"density %", "density", NULL, NULL, -1},
    {"rows read", "n_active", NULL, NULL, 0},
    {"ms (median [min-max])", "sparse_ms", "sparse_ms_min", "sparse_ms_max", -1},
    {"relu_compact %", "relu_compact_pct", NULL, NULL, 1},
    {"dense", "dense_kernel", NULL, NULL, 0},
    {"dense ms (median [min-max])", "dense_ms", "dense_ms_min", "dense_ms_max", -1},
    {"speedup", "speedup", NULL, NULL, 2},
    {"1/d", "ideal_speedup", NULL, NULL, 1},
    {"speedup*d", "speedup_vs_ideal", NULL, NULL, 2},
    {"GB/s", "sparse_gbps", NULL, NULL, 1},
    {"stream GB/s", "stream_gbps", NULL, NULL, 1},
    {"% stream", "stream_pct", NULL, NULL, 0},
    {"gather GB/s", "gather_gbps", NULL, NULL, 1},
    {"% gather", "gather_pct", NULL, NULL, 0},
    {"dense GB/s", "dense_gbps", NULL, NULL, 1},
    {"dense % stream", "dense_stream_pct", NULL, NULL, 0},
    {"vs f32", "speedup_vs_f32", NULL, NULL, 2},
};

static void print_md_header(const kernels_options *o, const kernels_result *results, size_t n_groups) {
  const dnnl_version_t *v = dnnl_version();
  char machine[512];
  bench_machine_describe(&o->machine, machine, sizeof machine);
  printf("lzn-bench kernels | %s | reps %d (+1 warm-up), fresh random active set per call"
         " | lazyneuron %s, oneDNN %d.%d.%d\n\n",
         machine, o->reps, lzn_version_string(), v->major, v->minor, v->patch);
  const double load_end = bench_machine_load();
  if (o->machine.load_at_start >= 0 && load_end >= 0)
    printf("Load average (1 min): %.2f at the start, %.2f at the end, on %ld CPUs%s.\n\n", o->machine.load_at_start,
           load_end, o->machine.cpus_online,
           o->machine.load_at_start > 0.5 * (double)o->machine.cpus_online || load_end > 0.5 * (double)o->machine.cpus_online
               ? ": other processes were using the cores, so the timings are noisy, most of all with"
                 " several threads"
               : "");
  if (strcmp(o->machine.llc_source, "assumed") == 0)
    printf("The system reports no last-level cache size: %zu MiB assumed (set it with --l3-mib).\n\n",
           o->l3_bytes / MIB);
  if (o->stream_bytes < 4 * o->l3_bytes)
    printf("The stream buffer is capped at 1/4 of the RAM: %.1fx LLC, not 4x, so part of each read may come"
           " from cache and the stream figure may be high.\n\n", (double)o->stream_bytes / (double)o->l3_bytes);

  printf("Stream read before the kernels (sequential, 64-bit sums, %.0f MiB = %.1fx LLC, each read the median"
         " over its chunks of <= 64 MiB, median of %d reads):", (double)o->stream_bytes / MIB,
         (double)o->stream_bytes / (double)o->l3_bytes, o->reps);
  for (size_t t = 0; t < o->n_threads; t++)
    printf("%s %d thread%s %.1f GB/s [%.1f-%.1f] (%s loads)", t ? ";" : "", o->threads[t], o->threads[t] > 1 ? "s" : "",
           o->stream[t].median, o->stream[t].min, o->stream[t].max, bench_stream_loads_name(o->stream_loads[t]));
  printf(". One thread by loads:");
  for (int l = 0; l < BENCH_STREAM_COUNT; l++)
    if (o->stream_by_loads[l] > 0)
      printf(" %s %.1f", bench_stream_loads_name((bench_stream_loads)l), o->stream_by_loads[l]);
  printf(" GB/s. The fastest loads at each thread count then read the same buffer as the flush before every"
         " timed call, timed: \"stream GB/s\" is the median of the flushes around each row's calls, \"%% stream\""
         " the row's GB/s over it.\n\n");

  printf("Cold working set per layout (W_t [F][D] sparse and GEMV, W [D][F] dense), calls rotate through the copies:\n");
  const size_t per_block = o->n_threads * o->n_isas; /* groups per (shape, type) */
  for (size_t g = 0; g < n_groups; g += per_block) {
    const kernels_result *r = &results[g * KERNELS_ROWS_PER_GROUP(o)];
    const double bytes = (double)r->f * (double)lzn_wtype_row_bytes(r->type, r->d);
    const double total = (double)r->n_copies * bytes;
    printf("- %s %zux%zu: %zu x %.4g MiB = %.4g MiB = %.1fx LLC%s\n", bench_type_name(r->type), r->d, r->f, r->n_copies,
           bytes / MIB, total / MIB, total / (double)o->l3_bytes,
           r->copies_capped ? " (capped at 1/4 of RAM for both layouts: less than 4x LLC, so later calls may find"
                              " weights in cache and run faster than cold)"
                            : "");
  }
  printf("\nOps: down = axpy_rows over the active rows of W_t (the sparse down-projection, through"
         " lzn_sparse_down_run, threads on parts of the rows, as lzn_sparse_down runs it); down_q8 = the same"
         " with axpy_rows_q8 (coefficients rounded to int8 per group of 16 rows, kernels.h), as the forward pass"
         " runs it; dot = dot_rows over the active rows of W_t (the gated MLP's up rows, the predictor),"
         " rows split among threads; gemv = the type's gemv over every row of W_t [F][D]. At 100 %% density down"
         " and down_q8 are the dense down-projection in the transposed layout.\n"
         "Dense baseline: oneDNN's fp32 matmul for f32; for the other types the same type's gemv over all rows"
         " (W [D][F] for the down-projections, W_t itself for the GEMV and dot), same ISA.\n"
         "GB/s = weight bytes actually read (rows read x row bytes) / median time. For q8_0/q4_0 every call"
         " quantizes x to Q8_0, inside the timing.\n"
         "gather GB/s: the same active rows read with plain loads and no computation (each row through, then the"
         " next), from memory, at the same thread count, median over the point's repetitions: what the memory"
         " gives to rows at random read the plain way (for the GEMV, the stream). %% gather is the row's GB/s"
         " over it: a reference, not a bound (a kernel that prefetches the rows ahead can pass it), separating the"
         " kernel's own cost from the memory's loss on short rows at random, which %% stream holds too.\n"
         "%s. Transparent huge pages: %s%s.\n\n",
         o->flush ? "Caches flushed (the stream read) before every timed call"
                  : "No flush between calls (stream GB/s from the measurement before the kernels)",
         bench_thp_mode(), o->huge_pages ? ", weights madvised" : ", weights not advised");
}

int kernels_report(const kernels_options *o, const kernels_result *results, size_t n_groups,
                   const char *skipped) {
  const size_t group = KERNELS_ROWS_PER_GROUP(o), n_rows = n_groups * group;
  json_t *records = json_array();
  double *cross = malloc(n_groups * sizeof *cross);
  const char **notes = malloc(n_groups * sizeof *notes);
  if (records == NULL || cross == NULL || notes == NULL) bench_fail("out of memory");
  int mismatch = 0;
  for (size_t g = 0; g < n_groups; g++) {
    const kernels_result *rows = results + g * group;
    cross[g] = crossover(rows, o->n_densities, &notes[g]);
    const char *q8_note;
    const double q8_cross = crossover(rows + o->n_densities, o->n_densities, &q8_note);
    for (size_t k = 0; k < group; k++) {
      const kernels_result *r = &rows[k];
      const int q8 = r->op == KERNELS_OP_DOWN_Q8;
      if (!(r->max_rel_err <= (r->op == KERNELS_OP_DOWN_Q8 ? MAX_REL_ERR_Q8 : MAX_REL_ERR))) {
        fprintf(stderr, "lzn-bench: %s %s %s %zux%zu density %g %%: kernel and reference differ (relative error %g)\n",
                bench_type_name(r->type), op_name(r->op), r->isa, r->d, r->f, r->density, r->max_rel_err);
        mismatch = 1;
      }
      json_t *rec = make_record(o, r, q8 ? q8_cross : cross[g], q8 ? q8_note : notes[g], f32_twin(r, results, n_rows));
      if (json_array_append_new(records, rec) != 0) bench_fail("out of memory");
    }
  }
  if (o->format == BENCH_FORMAT_MD) {
    print_md_header(o, results, n_groups);
    if (skipped[0]) printf("%s\n", skipped);
    bench_write_md_table(stdout, md_columns, sizeof md_columns / sizeof md_columns[0], records);
    printf("\nCrossover density of the down-projection (sparse time == dense time, linear in time between"
           " measured densities), axpy_rows / axpy_rows_q8:\n");
    for (size_t g = 0; g < n_groups; g++) {
      const kernels_result *r = results + g * group;
      printf("- %s, %s, %d thread%s, %zux%zu: ", bench_type_name(r->type), r->isa, r->threads, r->threads > 1 ? "s" : "",
             r->d, r->f);
      const char *q8_note;
      const double q8_cross = crossover(r + o->n_densities, o->n_densities, &q8_note);
      if (isfinite(cross[g])) printf("%.1f %%", cross[g]);
      else printf("%s (%g-%g %%)", notes[g], o->densities[0], o->densities[o->n_densities - 1]);
      if (isfinite(q8_cross)) printf(" / %.1f %%\n", q8_cross);
      else printf(" / %s\n", q8_note);
    }
  } else if (o->format == BENCH_FORMAT_JSON) {
    bench_write_json(stdout, records);
  } else {
    bench_write_csv(stdout, records);
  }
  json_decref(records);
  free(cross);
  free(notes);
  return mismatch;
}
