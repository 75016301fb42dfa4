/*
 * kernels_measure.c: the timing loops of `lzn-bench kernels`, for one shape
 * in one weight type.
 *
 * Down-projection, per (threads, density): R+1 fresh active sets.
 * Repetition 0 is the warm-up (it creates oneDNN's primitive and checks
 * every kernel against a double-precision reference); repetitions 1..R are
 * timed. Each repetition makes the dense call(s), then one sparse and one
 * relu_compact call per ISA, all on that repetition's set: interleaved, a
 * slow spell of the machine (other processes, frequency changes) hits every
 * variant alike instead of whichever ran during it. Every call takes the
 * next weight copy. The dense baseline is oneDNN's fp32 matmul for f32 (one
 * call per repetition, shared by the ISAs) and, for the other types, that
 * type's gemv over all D rows of W [D][F] with the same ISA's table.
 *
 * GEMV, per threads: out[F] = W_t [F][D] . x[D] through the type's gemv,
 * rows split among threads as lib/linalg/linear.c does, against oneDNN for
 * f32 (itself for the other types); the same interleaving.
 *
 * For Q8_0/Q4_0 the dot kernels take x quantized to Q8_0 blocks (kernels.h):
 * every call quantizes its x with the table's Q8_0 from_f32, inside the
 * timing, as the library must per token.
 *
 * Before each timed weight-reading call the caches are flushed and the small
 * operands (y, x or the active set) brought back: mid-inference the weights
 * of the next layer are never in cache, but the activations are. The flush
 * is a stream read of 4x the LLC, timed: the median of the flushes of one
 * (threads, density) point is the stream bandwidth its rows are read
 * against, measured under the same load of the machine as the kernels (a
 * shared machine can halve it from one minute to the next).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/wtype.h"
#include "linalg/linear.h"
#include "linalg/onednn.h"
#include "linalg/sparse_down.h"
#include "kernels_mode.h"
#include "workload.h"


/* What the timing loops of one shape share. */
typedef struct runner {
  const kernels_options *opt;
  lzn_weight_type type;
  lzn_weight_type x_type; /* the format the type's dot kernels take x in (F32: as it is) */
  weight_copies weights;
  size_t next_copy; /* calls rotate through the copies */
  float *y;         /* [max(D, F)]: what the last call wrote */
  float *down_parts; /* [LZN_DOWN_PARTS - 1][max(D, F)]: the down-projection's parts, as a context keeps them */
  float *y_ref;     /* [max(D, F)] */
  double *acc;      /* [max(D, F)] */
  float *row, *x_used; /* [max(D, F)]: a dequantized row, the x a kernel saw */
  void *xq;            /* x as Q8_0 blocks, for the block types */
  int32_t *relu_idx;
  float *relu_val;
  float *x_gemv; /* [R+1][D]: the GEMV's inputs */
  lzn_dense *dense;
  lzn_pool *pool;   /* the library's threads for the current thread count */
  const void *flush_buffer;
  bench_stream_loads loads; /* the fastest for the current thread count */
  double *stream_gbps;      /* the flushes of the current point */
  size_t n_stream, stream_cap;
  lzn_kernel_table ref; /* conversions for the references */
} runner;

static void before_call(runner *run, const void *operand, size_t bytes, size_t y_len, int threads) {
  if (run->opt->flush) {
    const double gbps = bench_stream_read_once(run->flush_buffer, run->opt->stream_bytes, threads, run->loads);
    if (run->n_stream < run->stream_cap) run->stream_gbps[run->n_stream++] = gbps;
  }
  memset(run->y, 0, y_len * sizeof *run->y); /* y = b_down, in cache */
  bench_touch(operand, bytes);
}

/* After a call through an exec on the runner's pool: keeps x as the kernel
 * saw it (quantized, for x_seen()), frees the exec but not the runner's
 * pool, and fails the bench on an error. */
static void finish_exec(runner *run, lzn_exec *ex, lzn_status s, size_t cols, const char *what) {
  if (s == LZN_OK && run->x_type != LZN_WEIGHTS_F32)
    memcpy(run->xq, ex->scratch[LZN_SCRATCH_X_DOT], lzn_wtype_row_bytes(run->x_type, cols));
  ex->pool = NULL;
  lzn_exec_free(ex);
  if (s != LZN_OK) bench_fail("%s: %s", what, lzn_last_error());
}

/* out[r] = W[r] . x for r < n_rows through k's gemv for the runner's type,
 * as the library runs it (lzn_linear on the runner's pool: x quantized
 * first when the type's kernels take blocks, rows in items among threads). */
static void threaded_gemv(runner *run, const lzn_kernel_table *k, float *out, const void *w,
                          size_t row_bytes, size_t cols, size_t n_rows, const float *x, int threads) {
  (void)row_bytes, (void)threads;
  lzn_exec ex = {.kernels = k, .pool = run->pool, .n_threads = lzn_pool_threads(run->pool)};
  const lzn_matrix matrix = lzn_matrix_make(run->type, w, (int64_t)n_rows, (int64_t)cols);
  finish_exec(run, &ex, lzn_linear(&ex, out, x, &matrix, NULL, 1), cols, "gemv");
}

/* Milliseconds of one dense down-projection on set r (oneDNN when k is
 * NULL, else k's gemv over W [D][F]); leaves y in run->y. */
static double dense_down_call(runner *run, const active_sets *s, size_t r, const lzn_kernel_table *k,
                              int threads) {
  const size_t d = run->weights.d, f = run->weights.f;
  const void *w = run->weights.w[run->next_copy++ % run->weights.n_copies];
  const float *x = s->x + r * f;
  before_call(run, x, f * sizeof *x, d, threads);
  const double t0 = bench_now();
  if (k == NULL) {
    const lzn_status st = lzn_dense_linear(run->dense, run->y, x, w, NULL, 1, (int64_t)d, (int64_t)f, threads);
    if (st != LZN_OK) bench_fail("dense %zux%zu: %s", d, f, lzn_last_error());
  } else {
    threaded_gemv(run, k, run->y, w, run->weights.row_bytes, f, d, x, threads);
  }
  return (bench_now() - t0) * 1e3;
}

/* Milliseconds of one sparse call on set r; leaves y in run->y. */
static double sparse_call(runner *run, const active_sets *s, size_t r, const lzn_kernel_table *k, int threads) {
  const size_t n = s->n_active;
  const void *w_t = run->weights.w_t[run->next_copy++ % run->weights.n_copies];
  const int32_t *idx = s->idx + r * n;
  const float *coef = s->coef + r * n;
  before_call(run, idx, n * sizeof *idx, run->weights.d, threads);
  bench_touch(coef, n * sizeof *coef);
  const double t0 = bench_now();
  const lzn_matrix matrix = lzn_matrix_make(run->type, w_t, (int64_t)run->weights.f, (int64_t)run->weights.d);
  (void)threads; /* the runner's pool has them */
  lzn_sparse_down_run(k, run->pool, run->y, &matrix, idx, coef, n, LZN_DOWN_EXACT, run->down_parts);
  return (bench_now() - t0) * 1e3;
}

/* Milliseconds of one GEMV over W_t [F][D] on input r (oneDNN when k is
 * NULL); leaves out[F] in run->y. */
static double gemv_call(runner *run, size_t r, const lzn_kernel_table *k, int threads) {
  const size_t d = run->weights.d, f = run->weights.f;
  const void *w_t = run->weights.w_t[run->next_copy++ % run->weights.n_copies];
  const float *x = run->x_gemv + r * d;
  before_call(run, x, d * sizeof *x, f, threads);
  const double t0 = bench_now();
  if (k == NULL) {
    const lzn_status st = lzn_dense_linear(run->dense, run->y, x, w_t, NULL, 1, (int64_t)f, (int64_t)d, threads);
    if (st != LZN_OK) bench_fail("dense GEMV %zux%zu: %s", f, d, lzn_last_error());
  } else {
    threaded_gemv(run, k, run->y, w_t, run->weights.row_bytes_t, d, f, x, threads);
  }
  return (bench_now() - t0) * 1e3;
}

/* Milliseconds of one axpy_rows_q8 down-projection on set r; y in run->y. */
static double sparse_q8_call(runner *run, const active_sets *s, size_t r, const lzn_kernel_table *k, int threads) {
  const size_t n = s->n_active;
  const void *w_t = run->weights.w_t[run->next_copy++ % run->weights.n_copies];
  const int32_t *idx = s->idx + r * n;
  const float *coef = s->coef + r * n;
  before_call(run, idx, n * sizeof *idx, run->weights.d, threads);
  bench_touch(coef, n * sizeof *coef);
  const double t0 = bench_now();
  (void)threads; /* the runner's pool has them */
  const lzn_matrix matrix = lzn_matrix_make(run->type, w_t, (int64_t)run->weights.f, (int64_t)run->weights.d);
  lzn_sparse_down_run(k, run->pool, run->y, &matrix, idx, coef, n, LZN_DOWN_ROUND_Q8, run->down_parts);
  return (bench_now() - t0) * 1e3;
}

/* Milliseconds of one dot_rows over set r's active rows of W_t against
 * input r as the library runs it (lzn_linear_rows on the runner's pool: x
 * quantized inside the timing for the block types, as the GEMV; rows in
 * items among threads); out[t] in run->y. */
static double dot_call(runner *run, const active_sets *s, size_t r, const lzn_kernel_table *k, int threads) {
  const size_t n = s->n_active, d = run->weights.d;
  const void *w_t = run->weights.w_t[run->next_copy++ % run->weights.n_copies];
  const int32_t *idx = s->idx + r * n;
  const float *x = run->x_gemv + r * d;
  before_call(run, x, d * sizeof *x, run->weights.f, threads);
  bench_touch(idx, n * sizeof *idx);
  lzn_exec ex = {.kernels = k, .pool = run->pool, .n_threads = lzn_pool_threads(run->pool)};
  const lzn_matrix matrix = lzn_matrix_make(run->type, w_t, (int64_t)run->weights.f, (int64_t)d);
  const double t0 = bench_now();
  const lzn_status st = lzn_linear_rows(&ex, run->y, x, &matrix, idx, n);
  const double ms = (bench_now() - t0) * 1e3;
  finish_exec(run, &ex, st, d, "dot_rows");
  return ms;
}

/* GB/s of one plain read of set r's active rows from a cold copy of W_t
 * (bench_gather_read_once), after the flush every timed call gets. */
static double gather_call(runner *run, const active_sets *s, size_t r, int threads) {
  const void *w_t = run->weights.w_t[run->next_copy++ % run->weights.n_copies];
  before_call(run, s->idx + r * s->n_active, s->n_active * sizeof(int32_t), 0, threads);
  return bench_gather_read_once(w_t, run->weights.row_bytes_t, run->weights.row_bytes_t, s->idx + r * s->n_active,
                                s->n_active, threads, run->loads);
}

/* Milliseconds of one relu_compact on set r. Not flushed: relu_compact reads
 * an h that the up-projection has just written, so h is in cache. */
static double relu_call(runner *run, const active_sets *s, size_t r, const lzn_kernel_table *k) {
  const size_t f = s->f;
  const float *h = s->h + r * f;
  bench_touch(h, f * sizeof *h);
  const double t0 = bench_now();
  const size_t n = k->relu_compact.fn(h, f, 0.0f, run->relu_idx, run->relu_val);
  const double t1 = bench_now();
  if (n != s->n_active || memcmp(run->relu_idx, s->idx + r * s->n_active, n * sizeof(int32_t)) != 0)
    bench_fail("%s relu_compact: wrong active set (%zu active, expected %zu)", k->name, n, s->n_active);
  return (t1 - t0) * 1e3;
}

/* ------------------------------------------------------------ references */

/* The x the last dense or GEMV call's kernel saw: x itself, or its Q8_0
 * blocks (still in run->xq) dequantized, so that the reference differs from
 * the kernel by rounding only. */
static const float *x_seen(runner *run, const float *x, size_t n, int by_kernel) {
  if (run->x_type == LZN_WEIGHTS_F32 || !by_kernel) return x;
  run->ref.type[run->x_type].to_f32.fn(run->x_used, run->xq, n);
  return run->x_used;
}

/* y_ref[j] = sum_t coef[t] W_t[idx[t]][j] in double, W_t dequantized. */
static void reference_sparse(runner *run, const active_sets *s, size_t r) {
  const size_t d = run->weights.d, n = s->n_active;
  const char *w_t = run->weights.w_t[0];
  memset(run->acc, 0, d * sizeof *run->acc);
  for (size_t t = 0; t < n; t++) {
    const double c = s->coef[r * n + t];
    run->ref.type[run->type].to_f32.fn(run->row, w_t + (size_t)s->idx[r * n + t] * run->weights.row_bytes_t, d);
    for (size_t j = 0; j < d; j++) run->acc[j] += c * run->row[j];
  }
  for (size_t j = 0; j < d; j++) run->y_ref[j] = (float)run->acc[j];
}

/* y_ref[r] = W[r] . x for the n_rows rows of one layout, in double. */
static void reference_gemv(runner *run, const char *w, size_t row_bytes, size_t cols, size_t n_rows,
                           const float *x) {
  for (size_t i = 0; i < n_rows; i++) {
    run->ref.type[run->type].to_f32.fn(run->row, w + i * row_bytes, cols);
    double sum = 0.0;
    for (size_t j = 0; j < cols; j++) sum += (double)run->row[j] * x[j];
    run->y_ref[i] = (float)sum;
  }
}

/* Largest |y - y_ref| over the largest |y_ref|, at least 1. NaN wins. */
static double relative_error(const float *y, const float *y_ref, size_t n) {
  double worst = 0.0, scale = 1.0;
  for (size_t j = 0; j < n; j++) {
    const double e = fabs((double)y[j] - (double)y_ref[j]);
    if (!(e <= worst)) worst = e;
    if (fabs((double)y_ref[j]) > scale) scale = fabs((double)y_ref[j]);
  }
  return worst / scale;
}

static double worse(double a, double b) { return !(a <= b) ? a : b; } /* NaN wins */

/* Checks the dense down call just made against the reference. */
static double check_dense_down(runner *run, const active_sets *s, size_t r, int by_kernel) {
  const size_t d = run->weights.d, f = run->weights.f;
  const float *x = x_seen(run, s->x + r * f, f, by_kernel);
  reference_gemv(run, run->weights.w[0], run->weights.row_bytes, f, d, x);
  return relative_error(run->y, run->y_ref, d);
}

/* ------------------------------------------------------------ timing */

/* One (threads, density) of the down-projection: fills the n_isas results
 * it points to (stride apart). samples holds (1 + 3 * n_isas) * reps
 * doubles: the oneDNN dense, then per ISA sparse, relu_compact, own dense. */
static void measure_down(runner *run, const active_sets *s, int threads, double *samples,
                         kernels_result *first, size_t stride) {
  const kernels_options *o = run->opt;
  const size_t reps = (size_t)o->reps, d = run->weights.d;
  const int onednn = run->type == LZN_WEIGHTS_F32;
  double *onednn_ms = samples;
  double dense_err = 0.0;
  for (size_t r = 0; r <= reps; r++) {
    if (onednn) {
      const double t = dense_down_call(run, s, r, NULL, threads);
      if (r == 0) dense_err = check_dense_down(run, s, r, 0);
      else onednn_ms[r - 1] = t;
    }
    if (r == 0) reference_sparse(run, s, r);
    for (size_t i = 0; i < o->n_isas; i++) {
      double *sparse_ms = samples + (1 + 3 * i) * reps, *relu_ms = sparse_ms + reps, *dense_ms = relu_ms + reps;
      kernels_result *res = &first[i * stride];
      const double t_sparse = sparse_call(run, s, r, &o->isas[i], threads);
      if (r == 0) res->max_rel_err = worse(dense_err, relative_error(run->y, run->y_ref, d));
      else sparse_ms[r - 1] = t_sparse;
      const double t_relu = relu_call(run, s, r, &o->isas[i]);
      if (r > 0) relu_ms[r - 1] = t_relu;
      if (!onednn && r > 0) {
        const double t_dense = dense_down_call(run, s, r, &o->isas[i], threads);
        if (r > 0) dense_ms[r - 1] = t_dense;
      }
    }
    if (r == 0 && !onednn) {
      /* The warm-up of each ISA's dense call, checked after the loop so
       * that the sparse reference is not overwritten before every ISA's
       * sparse call was checked against it. */
      for (size_t i = 0; i < o->n_isas; i++) {
        (void)dense_down_call(run, s, r, &o->isas[i], threads);
        first[i * stride].max_rel_err = worse(first[i * stride].max_rel_err, check_dense_down(run, s, r, 1));
      }
    }
  }
  for (size_t i = 0; i < o->n_isas; i++) {
    kernels_result *res = &first[i * stride];
    res->sparse = bench_summarize(samples + (1 + 3 * i) * reps, reps);
    res->relu = bench_summarize(samples + (2 + 3 * i) * reps, reps);
  }
  /* Summarized last: bench_summarize sorts in place. */
  for (size_t i = 0; i < o->n_isas; i++)
    first[i * stride].dense = bench_summarize(onednn ? samples : samples + (3 + 3 * i) * reps, reps);
}

/* Largest relative error (relative_error) of run->y[0..n) against the
 * double dot products of set r's active rows with x. */
static double check_dot(runner *run, const active_sets *s, size_t r, const float *x) {
  const size_t d = run->weights.d, n = s->n_active;
  const char *w_t = run->weights.w_t[0];
  for (size_t t = 0; t < n; t++) {
    run->ref.type[run->type].to_f32.fn(run->row, w_t + (size_t)s->idx[r * n + t] * run->weights.row_bytes_t, d);
    double sum = 0.0;
    for (size_t j = 0; j < d; j++) sum += (double)run->row[j] * x[j];
    run->y_ref[t] = (float)sum;
  }
  return relative_error(run->y, run->y_ref, n);
}

/* axpy_rows_q8 and dot_rows at one (threads, density), on the sets that
 * measure_down used, and the gathered read of the same rows: per
 * repetition, per ISA, one call of each, then one read. Fills the n_isas
 * results of each op (stride apart) and their gather_gbps. */
static void measure_rows(runner *run, const active_sets *s, int threads, double *samples, kernels_result *q8_first,
                         kernels_result *dot_first, size_t stride) {
  const kernels_options *o = run->opt;
  const size_t reps = (size_t)o->reps, d = run->weights.d;
  double *gather = samples + 2 * o->n_isas * reps;
  for (size_t r = 0; r <= reps; r++) {
    if (r == 0) reference_sparse(run, s, r);
    for (size_t i = 0; i < o->n_isas; i++) {
      const double t = sparse_q8_call(run, s, r, &o->isas[i], threads);
      if (r > 0) samples[i * reps + r - 1] = t;
      else q8_first[i * stride].max_rel_err = relative_error(run->y, run->y_ref, d);
    }
    for (size_t i = 0; i < o->n_isas; i++) {
      const double t = dot_call(run, s, r, &o->isas[i], threads);
      if (r > 0) samples[(o->n_isas + i) * reps + r - 1] = t;
      else dot_first[i * stride].max_rel_err = check_dot(run, s, r, x_seen(run, run->x_gemv + r * d, d, 1));
    }
    const double g = gather_call(run, s, r, threads);
    if (r > 0) gather[r - 1] = g;
  }
  const double gather_gbps = bench_summarize(gather, reps).median;
  for (size_t i = 0; i < o->n_isas; i++) {
    q8_first[i * stride].sparse = bench_summarize(samples + i * reps, reps);
    dot_first[i * stride].sparse = bench_summarize(samples + (o->n_isas + i) * reps, reps);
    q8_first[i * stride].gather_gbps = dot_first[i * stride].gather_gbps = gather_gbps;
  }
}

/* The GEMV at one thread count: same shape of loop as measure_down. */
static void measure_gemv(runner *run, int threads, double *samples, kernels_result *first, size_t stride) {
  const kernels_options *o = run->opt;
  const size_t reps = (size_t)o->reps, d = run->weights.d, f = run->weights.f;
  const int onednn = run->type == LZN_WEIGHTS_F32;
  double dense_err = 0.0;
  for (size_t r = 0; r <= reps; r++) {
    if (onednn) {
      const double t = gemv_call(run, r, NULL, threads);
      if (r == 0) {
        reference_gemv(run, run->weights.w_t[0], run->weights.row_bytes_t, d, f, run->x_gemv);
        dense_err = relative_error(run->y, run->y_ref, f);
      } else {
        samples[r - 1] = t;
      }
    }
    for (size_t i = 0; i < o->n_isas; i++) {
      const double t = gemv_call(run, r, &o->isas[i], threads);
      if (r > 0) {
        samples[(1 + i) * reps + r - 1] = t;
        continue;
      }
      const float *x = x_seen(run, run->x_gemv, d, 1);
      reference_gemv(run, run->weights.w_t[0], run->weights.row_bytes_t, d, f, x);
      first[i * stride].max_rel_err = worse(dense_err, relative_error(run->y, run->y_ref, f));
    }
  }
  for (size_t i = 0; i < o->n_isas; i++) first[i * stride].sparse = bench_summarize(samples + (1 + i) * reps, reps);
  for (size_t i = 0; i < o->n_isas; i++)
    first[i * stride].dense = onednn ? bench_summarize(samples, reps) : first[i * stride].sparse;
}

static void *checked_malloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (p == NULL) bench_fail("out of memory");
  return p;
}

void kernels_measure_shape(const kernels_options *o, lzn_weight_type type, size_t d, size_t f,
                           size_t n_copies, int copies_capped, const void *flush_buffer,
                           bench_rng *rng, kernels_result *out) {
  runner run = {.opt = o, .type = type, .flush_buffer = flush_buffer};
  run.x_type = lzn_wtype_dot_type(type);
  lzn_kernel_table_fill(LZN_ISA_SCALAR, 0, LZN_PREFETCH_L1, &run.ref);
  weight_copies_make(&run.weights, type, d, f, n_copies, o->huge_pages, &run.ref);
  const size_t wide = d > f ? d : f;
  run.y = checked_malloc(wide * sizeof *run.y);
  run.down_parts = checked_malloc((LZN_DOWN_PARTS - 1) * wide * sizeof *run.down_parts);
  run.y_ref = checked_malloc(wide * sizeof *run.y_ref);
  run.acc = checked_malloc(wide * sizeof *run.acc);
  run.row = checked_malloc(wide * sizeof *run.row);
  run.x_used = checked_malloc(wide * sizeof *run.x_used);
  run.xq = checked_malloc(lzn_wtype_row_bytes(run.x_type, wide)); /* Q8_0 or Q8_K blocks (or fp32) */
  run.relu_idx = checked_malloc(f * sizeof *run.relu_idx);
  run.relu_val = checked_malloc(f * sizeof *run.relu_val);
  run.x_gemv = checked_malloc(((size_t)o->reps + 1) * d * sizeof *run.x_gemv);
  for (size_t i = 0; i < ((size_t)o->reps + 1) * d; i++) run.x_gemv[i] = (float)(2.0 * bench_rng_unit(rng) - 1.0);
  double *samples = checked_malloc((1 + 3 * o->n_isas) * (size_t)o->reps * sizeof *samples);
  /* Flushes per point: at most 1 + 3 per ISA per repetition and the
   * warm-up's checks (1 per ISA) for the down-projection, then 2 per ISA
   * and the gathered read per repetition for axpy_rows_q8 and dot_rows. */
  run.stream_cap = ((size_t)o->reps + 2) * (3 + 5 * o->n_isas);
  run.stream_gbps = checked_malloc(run.stream_cap * sizeof *run.stream_gbps);
  if (lzn_dense_create(&run.dense) != LZN_OK) bench_fail("oneDNN: %s", lzn_last_error());
  const int progress = isatty(STDERR_FILENO);
  const size_t group = KERNELS_ROWS_PER_GROUP(o), stride = group;
  for (size_t t = 0; t < o->n_threads; t++) {
    kernels_result *first_group = &out[t * o->n_isas * group];
    lzn_pool_free(run.pool);
    run.pool = NULL;
    if (o->threads[t] > 1 && lzn_pool_create(o->threads[t], &run.pool) != LZN_OK) bench_fail("%s", lzn_last_error());
    run.loads = o->stream_loads[t];
    for (size_t k = 0; k <= o->n_densities; k++) {
      const int is_gemv = k == o->n_densities;
      const double density = is_gemv ? 100.0 : o->densities[k];
      size_t n_active = is_gemv ? f : (size_t)llround(density / 100.0 * (double)f);
      if (n_active < 1) n_active = 1;
      static const kernels_op point_ops[3] = {KERNELS_OP_DOWN, KERNELS_OP_DOWN_Q8, KERNELS_OP_DOT};
      for (size_t p = 0; p < (is_gemv ? 1u : 3u); p++) {
        const kernels_op op = is_gemv ? KERNELS_OP_GEMV : point_ops[p];
        for (size_t i = 0; i < o->n_isas; i++)
          first_group[i * stride + KERNELS_ROW_OF(o, op, k)] = (kernels_result){
              .type = type, .op = op,
              .isa = o->isas[i].name, .threads = o->threads[t], .d = d, .f = f,
              .n_copies = run.weights.n_copies, .copies_capped = copies_capped,
              .density = density, .n_active = n_active,
              .bytes = (double)n_active * (double)run.weights.row_bytes_t,
              .dense_bytes = is_gemv || op == KERNELS_OP_DOT ? (double)run.weights.bytes_t : (double)run.weights.bytes,
              .dense_is_onednn = type == LZN_WEIGHTS_F32 && op != KERNELS_OP_DOT, .stream_gbps = o->stream[t].median,
              .stream_loads = o->stream_loads[t], .gather_gbps = o->stream[t].median};
      }
      if (progress)
        fprintf(stderr, "\r%s %zux%zu threads %d %s %g %%   ", lzn_wtype_name(type), d, f, o->threads[t],
                is_gemv ? "gemv" : "density", density);
      run.n_stream = 0;
      if (is_gemv) {
        measure_gemv(&run, o->threads[t], samples, first_group + KERNELS_ROW_OF(o, KERNELS_OP_GEMV, k), stride);
      } else {
        active_sets sets;
        active_sets_make(&sets, (size_t)o->reps + 1, f, n_active, rng);
        measure_down(&run, &sets, o->threads[t], samples, first_group + KERNELS_ROW_OF(o, KERNELS_OP_DOWN, k), stride);
        measure_rows(&run, &sets, o->threads[t], samples, first_group + KERNELS_ROW_OF(o, KERNELS_OP_DOWN_Q8, k),
                     first_group + KERNELS_ROW_OF(o, KERNELS_OP_DOT, k), stride);
        active_sets_free(&sets);
        for (size_t i = 0; i < o->n_isas; i++) {
          /* Their dense baselines: the down-projection's for axpy_rows_q8, and
           * below the GEMV (every row of W_t) for dot_rows. */
          kernels_result *down = &first_group[i * stride + KERNELS_ROW_OF(o, KERNELS_OP_DOWN, k)];
          kernels_result *q8 = &first_group[i * stride + KERNELS_ROW_OF(o, KERNELS_OP_DOWN_Q8, k)];
          q8->dense = down->dense;
          down->gather_gbps = q8->gather_gbps;
        }
      }
      if (run.n_stream > 0) {
        const double stream = bench_summarize(run.stream_gbps, run.n_stream).median;
        for (size_t i = 0; i < o->n_isas; i++)
          for (size_t p = 0; p < (is_gemv ? 1u : 3u); p++) {
            const kernels_op op = is_gemv ? KERNELS_OP_GEMV : (kernels_op[]){KERNELS_OP_DOWN, KERNELS_OP_DOWN_Q8, KERNELS_OP_DOT}[p];
            kernels_result *res = &first_group[i * stride + KERNELS_ROW_OF(o, op, k)];
            res->stream_gbps = stream;
            if (is_gemv) res->gather_gbps = stream;
          }
      }
    }
    for (size_t i = 0; i < o->n_isas; i++)
      for (size_t k = 0; k < o->n_densities; k++)
        first_group[i * stride + KERNELS_ROW_OF(o, KERNELS_OP_DOT, k)].dense =
            first_group[i * stride + KERNELS_ROW_OF(o, KERNELS_OP_GEMV, 0)].sparse;
  }
  if (progress) fprintf(stderr, "\r%70s\r", "");
  lzn_dense_free(run.dense);
  lzn_pool_free(run.pool);
  weight_copies_free(&run.weights);
  free(run.y), free(run.down_parts), free(run.y_ref), free(run.acc), free(run.row), free(run.x_used), free(run.xq);
  free(run.relu_idx), free(run.relu_val), free(run.x_gemv), free(samples);
  free(run.stream_gbps);
}
