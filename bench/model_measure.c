/*
 * model_measure.c: the timed runs of `lzn-bench model`.
 *
 * One context per (threads, mode), created outside the timing (AUTO measures
 * its crossover then). Each test gets one untimed warm-up run per mode
 * (oneDNN makes its primitives per shape on first use; pages of the KV cache
 * and scratch are touched), then reps rounds in which every mode runs once,
 * each run from an empty cache with its own random tokens; the same tokens
 * for every mode and thread count. The
 * weights are far larger than the L3 for every OPT size, so the caches are
 * cold by construction. Per-block times and sparsity come from the
 * difference of lzn_context_stats around the timed region only.
 */
#include <stdlib.h>
#include <string.h>

#include "forward/context.h" /* n_past, to rewind a context to --depth */
#include "model_mode.h"

/* Sums over the layers of lzn_layer_stats. */
typedef struct totals {
  double tokens, active; /* active: neurons active, in units of d_ff (fraction x tokens) */
  double flops_dense, flops_executed, bytes_dense, bytes_executed;
  double sparse_calls, dense_calls;
  double seconds_attention, seconds_up, seconds_down;
  double seconds_attention_core, kv_bytes_read; /* the context's counters (private) */
} totals;

/* What one timed run measured. */
typedef struct sample {
  double seconds;
  double attention, up, down; /* seconds, summed over layers */
  double attention_core, kv_bytes; /* seconds and bytes, summed over layers */
  double active_fraction, flops_saved, bytes_saved, sparse_call_fraction;
} sample;

static totals read_totals(const lzn_context *ctx, lzn_layer_stats *stats, int n_layers) {
  if (lzn_context_stats(ctx, stats, n_layers) != LZN_OK) bench_fail("%s", lzn_last_error());
  totals t;
  memset(&t, 0, sizeof t);
  for (int l = 0; l < n_layers; l++) {
    const lzn_layer_stats *s = &stats[l];
    t.tokens += (double)s->tokens;
    t.active += s->active_fraction * (double)s->tokens;
    t.flops_dense += s->flops_dense, t.flops_executed += s->flops_executed;
    t.bytes_dense += s->bytes_dense, t.bytes_executed += s->bytes_executed;
    t.sparse_calls += (double)s->sparse_calls, t.dense_calls += (double)s->dense_calls;
    t.seconds_attention += s->seconds_attention;
    t.seconds_up += s->seconds_up, t.seconds_down += s->seconds_down;
    t.seconds_attention_core += ctx->stats.layers[l].seconds_attention_core;
    t.kv_bytes_read += ctx->stats.layers[l].kv_bytes_read;
  }
  return t;
}

static double ratio_or_zero(double a, double b) { return b > 0.0 ? a / b : 0.0; }

static sample difference(const totals *before, const totals *after, double seconds) {
  sample s;
  const double tokens = after->tokens - before->tokens;
  const double calls = (after->sparse_calls - before->sparse_calls) + (after->dense_calls - before->dense_calls);
  s.seconds = seconds;
  s.attention = after->seconds_attention - before->seconds_attention;
  s.up = after->seconds_up - before->seconds_up;
  s.down = after->seconds_down - before->seconds_down;
  s.attention_core = after->seconds_attention_core - before->seconds_attention_core;
  s.kv_bytes = after->kv_bytes_read - before->kv_bytes_read;
  s.active_fraction = ratio_or_zero(after->active - before->active, tokens);
  s.flops_saved = 1.0 - ratio_or_zero(after->flops_executed - before->flops_executed,
                                      after->flops_dense - before->flops_dense);
  s.bytes_saved = 1.0 - ratio_or_zero(after->bytes_executed - before->bytes_executed,
                                      after->bytes_dense - before->bytes_dense);
  s.sparse_call_fraction = ratio_or_zero(after->sparse_calls - before->sparse_calls, calls);
  return s;
}

typedef struct runner {
  lzn_context *ctx;
  const model_subject *subject;
  int32_t *tokens;        /* [max test tokens] */
  float *logits;          /* [vocab] */
  lzn_layer_stats *stats; /* [n_layers] */
} runner;

static void forward(runner *r, const int32_t *tokens, int n) {
  const lzn_status s = lzn_forward(r->ctx, tokens, n, r->logits, LZN_LOGITS_LAST);
  if (s != LZN_OK) bench_fail("lzn_forward: %s: %s", lzn_status_str(s), lzn_last_error());
}

/* Fills the context with depth random tokens (untimed, once per context
 * and test): run_test then rewinds to it. */
static void prefill_depth(runner *r, int depth, uint64_t seed) {
  if (lzn_context_reset(r->ctx) != LZN_OK) bench_fail("%s", lzn_last_error());
  bench_rng rng = {seed | 1};
  int32_t *tokens = malloc((size_t)depth * sizeof *tokens);
  if (tokens == NULL) bench_fail("out of memory");
  for (int i = 0; i < depth; i++) tokens[i] = (int32_t)bench_rng_below(&rng, (uint64_t)r->subject->info.vocab_size);
  forward(r, tokens, depth);
  free(tokens);
}

/* One run of test t with tokens from seed; tg_limit < t->n shortens a tg
 * run (the warm-up needs only the one-token shapes). With a depth the run
 * starts from the prefilled context: n_past is set back to depth (the rows
 * past it are overwritten by the run), which the public API cannot do. */
static sample run_test(runner *r, const model_test *t, uint64_t seed, int tg_limit, int depth) {
  const int n_layers = r->subject->info.n_layers;
  const int n = t->kind == MODEL_TEST_PP ? t->n : (tg_limit < t->n ? tg_limit : t->n) + 1;
  bench_rng rng = {seed | 1};
  for (int i = 0; i < n; i++) r->tokens[i] = (int32_t)bench_rng_below(&rng, (uint64_t)r->subject->info.vocab_size);
  if (depth > 0) r->ctx->kv.n_past = depth;
  else if (lzn_context_reset(r->ctx) != LZN_OK) bench_fail("%s", lzn_last_error());
  double t0, t1;
  totals before, after;
  if (t->kind == MODEL_TEST_TG && depth > 0) {
    before = read_totals(r->ctx, r->stats, n_layers);
    t0 = bench_now();
    for (int i = 1; i < n; i++) forward(r, r->tokens + i, 1);
    t1 = bench_now();
  } else if (t->kind == MODEL_TEST_PP) {
    before = read_totals(r->ctx, r->stats, n_layers);
    t0 = bench_now();
    forward(r, r->tokens, n);
    t1 = bench_now();
  } else {
    forward(r, r->tokens, 1); /* the prompt, untimed */
    before = read_totals(r->ctx, r->stats, n_layers);
    t0 = bench_now();
    for (int i = 1; i < n; i++) forward(r, r->tokens + i, 1);
    t1 = bench_now();
  }
  after = read_totals(r->ctx, r->stats, n_layers);
  return difference(&before, &after, t1 - t0);
}

static double median_of(const sample *samples, size_t n, size_t offset, double scale, double *scratch) {
  for (size_t i = 0; i < n; i++) scratch[i] = *(const double *)((const char *)&samples[i] + offset) * scale;
  return bench_summarize(scratch, n).median;
}

static void summarize(const model_options *o, const model_test *t, const sample *samples,
                      model_result *res) {
  const size_t n = (size_t)o->reps;
  double *v = malloc(n * sizeof *v);
  if (v == NULL) bench_fail("out of memory");
  const double per_token_ms = 1e3 / t->n;
  for (size_t i = 0; i < n; i++) v[i] = t->n / samples[i].seconds;
  res->tokens_per_second = bench_summarize(v, n);
  res->attention_ms = median_of(samples, n, offsetof(sample, attention), per_token_ms, v);
  res->up_ms = median_of(samples, n, offsetof(sample, up), per_token_ms, v);
  res->down_ms = median_of(samples, n, offsetof(sample, down), per_token_ms, v);
  res->attention_core_ms = median_of(samples, n, offsetof(sample, attention_core), per_token_ms, v);
  res->kv_bytes_per_token = median_of(samples, n, offsetof(sample, kv_bytes), 1.0 / t->n, v);
  /* other = total - the three blocks, per run, then the median. */
  for (size_t i = 0; i < n; i++)
    v[i] = (samples[i].seconds - samples[i].attention - samples[i].up - samples[i].down) * per_token_ms;
  res->other_ms = bench_summarize(v, n).median;
  /* Sparsity hardly moves between runs: the mean. */
  res->active_fraction = res->flops_saved = res->bytes_saved = res->sparse_call_fraction = 0.0;
  for (size_t i = 0; i < n; i++) {
    res->active_fraction += samples[i].active_fraction / (double)n;
    res->flops_saved += samples[i].flops_saved / (double)n;
    res->bytes_saved += samples[i].bytes_saved / (double)n;
    res->sparse_call_fraction += samples[i].sparse_call_fraction / (double)n;
  }
  free(v);
}

static int context_tokens(const model_options *o) {
  int most = 1;
  for (size_t k = 0; k < o->n_tests; k++) {
    const int n = o->tests[k].n + (o->depth ? o->depth : o->tests[k].kind == MODEL_TEST_TG);
    if (n > most) most = n;
  }
  return most;
}

void model_measure(const model_options *o, const model_subject *subject, model_result *results) {
  const int n_ctx = context_tokens(o);
  const size_t n_modes = o->n_modes, reps = (size_t)o->reps;
  runner r = {.subject = subject};
  lzn_context *contexts[3] = {NULL, NULL, NULL};
  r.tokens = malloc((size_t)n_ctx * sizeof *r.tokens);
  r.logits = malloc((size_t)subject->info.vocab_size * sizeof *r.logits);
  r.stats = malloc((size_t)subject->info.n_layers * sizeof *r.stats);
  sample *samples = malloc(n_modes * reps * sizeof *samples); /* [mode][rep] */
  if (!r.tokens || !r.logits || !r.stats || !samples) bench_fail("out of memory");
  r.stats[0].struct_size = sizeof *r.stats;
  for (size_t ti = 0; ti < o->n_threads; ti++) {
    for (size_t mi = 0; mi < n_modes; mi++) {
      lzn_context_params p = lzn_context_default_params();
      p.n_ctx = n_ctx, p.n_threads = o->threads[ti], p.mlp_mode = o->modes[mi], p.collect_stats = 1;
      p.kv_type = o->kv_type, p.threshold = (float)o->threshold;
      const lzn_status s = lzn_context_create(subject->model, &p, &contexts[mi]);
      if (s != LZN_OK) bench_fail("lzn_context_create: %s: %s", lzn_status_str(s), lzn_last_error());
    }
    for (size_t k = 0; k < o->n_tests; k++) {
      const model_test *t = &o->tests[k];
      const uint64_t seed = 0x6c7a6e2d62656e63ull + 7919 * k; /* per test, not per mode */
      for (size_t mi = 0; mi < n_modes; mi++) {
        r.ctx = contexts[mi];
        if (o->depth > 0) prefill_depth(&r, o->depth, seed - 2);
        (void)run_test(&r, t, seed - 1, 4, o->depth); /* warm-up */
      }
      for (size_t mi = 0; mi < n_modes; mi++) contexts[mi]->exec.used = 0;
      /* Modes take turns within each rep, so that the load of a shared
       * machine drifting over minutes moves all of them alike. */
      for (size_t rep = 0; rep < reps; rep++)
        for (size_t mi = 0; mi < n_modes; mi++) {
          r.ctx = contexts[mi];
          samples[mi * reps + rep] = run_test(&r, t, seed + 104729 * (uint64_t)(rep + 1), t->n, o->depth);
        }
      for (size_t mi = 0; mi < n_modes; mi++) {
        model_result *res = &results[(ti * n_modes + mi) * o->n_tests + k];
        res->subject = subject, res->mode = o->modes[mi], res->threads = o->threads[ti], res->test = t;
        res->kv_cache_bytes = lzn_context_kv_bytes(contexts[mi]);
        res->kernels = contexts[mi]->exec.used;
        summarize(o, t, samples + mi * reps, res);
      }
    }
    for (size_t mi = 0; mi < n_modes; mi++) lzn_context_free(contexts[mi]);
  }
  free(samples);
  free(r.tokens);
  free(r.logits);
  free(r.stats);
}
