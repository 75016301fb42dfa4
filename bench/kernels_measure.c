/*
 * kernels_measure.c: the timing loops of `lzn-bench kernels`.
 *
 * Per (shape, threads, density): R+1 fresh active sets. Repetition 0 is the
 * warm-up (it creates oneDNN's primitive and checks that sparse and dense
 * agree); repetitions 1..R are timed. Each repetition makes one dense call,
 * then one sparse and one relu_compact call per ISA, all on that
 * repetition's set: interleaved, a slow spell of the machine (other
 * processes, frequency changes) hits every variant alike instead of
 * whichever ran during it. Every call takes the next weight copy.
 *
 * Before each timed weight-reading call the caches are flushed and the small
 * operands (y, x or the active set) brought back: mid-inference the weights
 * of the next layer are never in cache, but the activations are.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "linalg/onednn.h"
#include "linalg/sparse_down.h"
#include "kernels_mode.h"
#include "workload.h"

/* What the timing loops of one shape share. */
typedef struct runner {
  const kernels_options *opt;
  weight_copies weights;
  size_t next_copy; /* calls rotate through the copies */
  float *y, *y_dense;
  int32_t *relu_idx;
  float *relu_val;
  lzn_dense *dense;
  const void *flush_buffer;
} runner;

static void before_call(runner *run, const void *operand, size_t bytes, int threads) {
  if (run->opt->flush) bench_flush_cache(run->flush_buffer, 2 * run->opt->l3_bytes, threads);
  memset(run->y, 0, run->weights.d * sizeof *run->y); /* y = b_down, in cache */
  bench_touch(operand, bytes);
}

/* Milliseconds of one dense call on set r; leaves y in run->y. */
static double dense_call(runner *run, const active_sets *s, size_t r, int threads) {
  const size_t d = run->weights.d, f = run->weights.f;
  const float *w = run->weights.w[run->next_copy++ % run->weights.n_copies];
  const float *x = s->x + r * f;
  before_call(run, x, f * sizeof *x, threads);
  const double t0 = bench_now();
  const lzn_status st = lzn_dense_linear(run->dense, run->y, x, w, NULL, 1, (int64_t)d, (int64_t)f, threads);
  const double t1 = bench_now();
  if (st != LZN_OK) bench_fail("dense %zux%zu: %s", d, f, lzn_last_error());
  return (t1 - t0) * 1e3;
}

/* Milliseconds of one sparse call on set r; leaves y in run->y. */
static double sparse_call(runner *run, const active_sets *s, size_t r, const lzn_kernel_table *k, int threads) {
  const size_t n = s->n_active;
  const float *w_t = run->weights.w_t[run->next_copy++ % run->weights.n_copies];
  const int32_t *idx = s->idx + r * n;
  const float *coef = s->coef + r * n;
  before_call(run, idx, n * sizeof *idx, threads);
  bench_touch(coef, n * sizeof *coef);
  const double t0 = bench_now();
  const lzn_matrix matrix = lzn_matrix_make(LZN_WTYPE_F32, w_t, (int64_t)run->weights.f,
                                            (int64_t)run->weights.d);
  lzn_sparse_down_run(k, run->y, &matrix, idx, coef, n, threads);
  const double t1 = bench_now();
  return (t1 - t0) * 1e3;
}

/* Milliseconds of one relu_compact on set r. Not flushed: relu_compact reads
 * an h that the up-projection has just written, so h is in cache. */
static double relu_call(runner *run, const active_sets *s, size_t r, const lzn_kernel_table *k) {
  const size_t f = s->f;
  const float *h = s->h + r * f;
  bench_touch(h, f * sizeof *h);
  const double t0 = bench_now();
  const size_t n = k->relu_compact(h, f, 0.0f, run->relu_idx, run->relu_val);
  const double t1 = bench_now();
  if (n != s->n_active || memcmp(run->relu_idx, s->idx + r * s->n_active, n * sizeof(int32_t)) != 0)
    bench_fail("%s relu_compact: wrong active set (%zu active, expected %zu)", k->name, n, s->n_active);
  return (t1 - t0) * 1e3;
}

/* Largest |y - y_dense| over the largest |y_dense|, at least 1. */
static double relative_error(const float *y, const float *y_dense, size_t d) {
  double worst = 0.0, scale = 1.0;
  for (size_t j = 0; j < d; j++) {
    const double e = fabs((double)y[j] - (double)y_dense[j]);
    if (!(e <= worst)) worst = e; /* NaN wins */
    if (fabs((double)y_dense[j]) > scale) scale = fabs((double)y_dense[j]);
  }
  return worst / scale;
}

/* One (threads, density): fills the n_isas results it points to (stride
 * n_densities apart). samples holds (1 + 2 * n_isas) * reps doubles. */
static void measure_point(runner *run, const active_sets *s, int threads, double *samples,
                          kernels_result *first, size_t stride) {
  const kernels_options *o = run->opt;
  const size_t reps = (size_t)o->reps, d = run->weights.d;
  double *dense_ms = samples;
  for (size_t r = 0; r <= reps; r++) {
    const double t_dense = dense_call(run, s, r, threads);
    if (r == 0) memcpy(run->y_dense, run->y, d * sizeof *run->y);
    else dense_ms[r - 1] = t_dense;
    for (size_t i = 0; i < o->n_isas; i++) {
      double *sparse_ms = samples + (1 + 2 * i) * reps, *relu_ms = sparse_ms + reps;
      const double t_sparse = sparse_call(run, s, r, &o->isas[i], threads);
      if (r == 0) first[i * stride].max_rel_err = relative_error(run->y, run->y_dense, d);
      else sparse_ms[r - 1] = t_sparse;
      const double t_relu = relu_call(run, s, r, &o->isas[i]);
      if (r > 0) relu_ms[r - 1] = t_relu;
    }
  }
  const bench_stats dense = bench_summarize(dense_ms, reps);
  for (size_t i = 0; i < o->n_isas; i++) {
    kernels_result *res = &first[i * stride];
    res->dense = dense;
    res->sparse = bench_summarize(samples + (1 + 2 * i) * reps, reps);
    res->relu = bench_summarize(samples + (2 + 2 * i) * reps, reps);
  }
}

void kernels_measure_shape(const kernels_options *o, size_t d, size_t f,
                           const void *flush_buffer, bench_rng *rng, kernels_result *out) {
  runner run = {.opt = o, .flush_buffer = flush_buffer};
  weight_copies_make(&run.weights, d, f, o->l3_bytes, o->huge_pages);
  run.y = malloc(d * sizeof *run.y);
  run.y_dense = malloc(d * sizeof *run.y_dense);
  run.relu_idx = malloc(f * sizeof *run.relu_idx);
  run.relu_val = malloc(f * sizeof *run.relu_val);
  double *samples = malloc((1 + 2 * o->n_isas) * (size_t)o->reps * sizeof *samples);
  if (!run.y || !run.y_dense || !run.relu_idx || !run.relu_val || !samples) bench_fail("out of memory");
  if (lzn_dense_create(&run.dense) != LZN_OK) bench_fail("oneDNN: %s", lzn_last_error());
  const int progress = isatty(STDERR_FILENO);
  for (size_t t = 0; t < o->n_threads; t++) {
    for (size_t k = 0; k < o->n_densities; k++) {
      const double density = o->densities[k];
      size_t n_active = (size_t)llround(density / 100.0 * (double)f);
      if (n_active < 1) n_active = 1;
      if (progress) fprintf(stderr, "\r%zux%zu threads %d density %g %%   ", d, f, o->threads[t], density);
      kernels_result *first = &out[t * o->n_isas * o->n_densities + k];
      for (size_t i = 0; i < o->n_isas; i++)
        first[i * o->n_densities] = (kernels_result){
            .isa = o->isas[i].name, .threads = o->threads[t], .d = d, .f = f,
            .n_copies = run.weights.n_copies, .density = density, .n_active = n_active};
      active_sets sets;
      active_sets_make(&sets, (size_t)o->reps + 1, f, n_active, rng);
      measure_point(&run, &sets, o->threads[t], samples, first, o->n_densities);
      active_sets_free(&sets);
    }
  }
  if (progress) fprintf(stderr, "\r%60s\r", "");
  lzn_dense_free(run.dense);
  weight_copies_free(&run.weights);
  free(run.y), free(run.y_dense), free(run.relu_idx), free(run.relu_val), free(samples);
}
