/*
 * kernels_report.c: the results of `lzn-bench kernels` as records (one per
 * row, see output.h), the crossover density, and the markdown decorations.
 */
#include <dnnl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels_mode.h"
#include "workload.h"

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

static json_t *make_record(const kernels_result *r, double cross, const char *cross_note, int reps) {
  json_t *rec = json_object();
  if (rec == NULL) bench_fail("out of memory");
  const double sparse_bytes = (double)r->n_active * (double)r->d * sizeof(float);
  const double dense_bytes = (double)r->f * (double)r->d * sizeof(float);
  /* 1/d from the active count actually drawn, which rounding can move away
   * from the nominal density when d_ff is small. */
  const double speedup = r->dense.median / r->sparse.median, ideal = (double)r->f / (double)r->n_active;
  bench_set(rec, "isa", json_string(r->isa));
  bench_set(rec, "threads", json_integer(r->threads));
  bench_set(rec, "d_model", json_integer((json_int_t)r->d));
  bench_set(rec, "d_ff", json_integer((json_int_t)r->f));
  bench_set(rec, "density", json_real(r->density));
  bench_set(rec, "n_active", json_integer((json_int_t)r->n_active));
  bench_set(rec, "reps", json_integer(reps));
  bench_set(rec, "copies", json_integer((json_int_t)r->n_copies));
  bench_set(rec, "sparse_ms", json_real(r->sparse.median));
  bench_set(rec, "sparse_ms_min", json_real(r->sparse.min));
  bench_set(rec, "sparse_ms_max", json_real(r->sparse.max));
  bench_set(rec, "relu_compact_ms", json_real(r->relu.median));
  bench_set(rec, "relu_compact_ms_min", json_real(r->relu.min));
  bench_set(rec, "relu_compact_ms_max", json_real(r->relu.max));
  bench_set(rec, "relu_compact_pct", real_or_null(100.0 * r->relu.median / r->sparse.median));
  bench_set(rec, "dense_ms", json_real(r->dense.median));
  bench_set(rec, "dense_ms_min", json_real(r->dense.min));
  bench_set(rec, "dense_ms_max", json_real(r->dense.max));
  bench_set(rec, "speedup", real_or_null(speedup));
  bench_set(rec, "ideal_speedup", json_real(ideal));
  bench_set(rec, "speedup_vs_ideal", real_or_null(speedup / ideal));
  bench_set(rec, "sparse_gbps", real_or_null(sparse_bytes / (r->sparse.median * 1e-3) / 1e9));
  bench_set(rec, "dense_gbps", real_or_null(dense_bytes / (r->dense.median * 1e-3) / 1e9));
  bench_set(rec, "crossover_density", real_or_null(cross));
  bench_set(rec, "crossover_note", json_string(cross_note));
  bench_set(rec, "max_rel_err", real_or_null(r->max_rel_err));
  return rec;
}

static const bench_column md_columns[] = {
    {"isa", "isa", NULL, NULL, 0},
    {"threads", "threads", NULL, NULL, 0},
    {"d_model", "d_model", NULL, NULL, 0},
    {"d_ff", "d_ff", NULL, NULL, 0},
    {"density %", "density", NULL, NULL, -1},
    {"active", "n_active", NULL, NULL, 0},
    {"sparse ms (median [min-max])", "sparse_ms", "sparse_ms_min", "sparse_ms_max", -1},
    {"relu_compact %", "relu_compact_pct", NULL, NULL, 1},
    {"dense ms (median [min-max])", "dense_ms", "dense_ms_min", "dense_ms_max", -1},
    {"speedup", "speedup", NULL, NULL, 2},
    {"1/d", "ideal_speedup", NULL, NULL, 1},
    {"speedup*d", "speedup_vs_ideal", NULL, NULL, 2},
    {"sparse GB/s", "sparse_gbps", NULL, NULL, 1},
    {"dense GB/s", "dense_gbps", NULL, NULL, 1},
};

static void print_md_header(const kernels_options *o) {
  const dnnl_version_t *v = dnnl_version();
  printf("lzn-bench kernels | CPU: %s | L3 assumed %zu MiB | reps %d (+1 warm-up), fresh random active set per call"
         " | lazyneuron %s, oneDNN %d.%d.%d\n\n",
         bench_cpu_model(), o->l3_bytes / MIB, o->reps, lzn_version_string(), v->major, v->minor, v->patch);
  printf("Cold working set per layout (W_t [F][D] sparse, W [D][F] dense), calls rotate through the copies:");
  for (size_t s = 0; s < o->n_shapes; s++) {
    const size_t bytes = (size_t)(o->d_model[s] * o->d_ff[s]) * sizeof(float);
    const size_t copies = weight_copies_needed(bytes, o->l3_bytes);
    printf("%s %lldx%lld %zu x %.4g MiB = %.4g MiB", s ? ";" : "", (long long)o->d_model[s],
           (long long)o->d_ff[s], copies, (double)bytes / MIB, (double)(copies * bytes) / MIB);
  }
  printf(". %s. Transparent huge pages: %s%s.\n\n",
         o->flush ? "Caches flushed (2x L3 read) before every timed call" : "No flush between calls",
         bench_thp_mode(), o->huge_pages ? ", weights madvised" : ", weights not advised");
}

int kernels_report(const kernels_options *o, const kernels_result *results) {
  const size_t n_groups = o->n_shapes * o->n_threads * o->n_isas;
  json_t *records = json_array();
  double *cross = malloc(n_groups * sizeof *cross);
  const char **notes = malloc(n_groups * sizeof *notes);
  if (records == NULL || cross == NULL || notes == NULL) bench_fail("out of memory");
  int mismatch = 0;
  for (size_t g = 0; g < n_groups; g++) {
    const kernels_result *rows = results + g * o->n_densities;
    cross[g] = crossover(rows, o->n_densities, &notes[g]);
    for (size_t k = 0; k < o->n_densities; k++) {
      /* fp32 sums in another order differ by ~1e-6 of |y|; a lost or
       * repeated row by ~1e-2. */
      if (!(rows[k].max_rel_err <= 1e-4)) {
        fprintf(stderr, "lzn-bench: %s %zux%zu density %g %%: sparse and dense differ (relative error %g)\n",
                rows[k].isa, rows[k].d, rows[k].f, rows[k].density, rows[k].max_rel_err);
        mismatch = 1;
      }
      if (json_array_append_new(records, make_record(&rows[k], cross[g], notes[g], o->reps)) != 0)
        bench_fail("out of memory");
    }
  }
  if (o->format == BENCH_FORMAT_MD) {
    print_md_header(o);
    bench_write_md_table(stdout, md_columns, sizeof md_columns / sizeof md_columns[0], records);
    printf("\nCrossover density (sparse time == dense time, linear in time between measured densities):\n");
    for (size_t g = 0; g < n_groups; g++) {
      const kernels_result *r = results + g * o->n_densities;
      printf("- %s, %d thread%s, %zux%zu: ", r->isa, r->threads, r->threads > 1 ? "s" : "", r->d, r->f);
      if (isfinite(cross[g])) printf("%.1f %%\n", cross[g]);
      else printf("%s (%g-%g %%)\n", notes[g], o->densities[0], o->densities[o->n_densities - 1]);
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
