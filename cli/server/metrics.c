/*
 * metrics.c: GET /metrics in Prometheus' text format (version 0.0.4):
 * counters a scraper rates, gauges of now, and the MLP's sparsity.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

typedef struct text {
  char *s;
  size_t len, cap;
} text;

static void add(text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void add(text *t, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (t->s && t->len + (size_t)n < t->cap) {
      t->len += (size_t)n;
      return;
    }
    const size_t cap = (t->cap ? t->cap : 2048) * 2 + (size_t)n;
    char *grown = realloc(t->s, cap);
    if (!grown) return;
    t->s = grown, t->cap = cap;
  }
}

static void metric(text *t, const char *name, const char *type, const char *help, double value) {
  add(t, "# HELP lzn_%s %s\n# TYPE lzn_%s %s\nlzn_%s %.17g\n", name, help, name, type, name, value);
}

char *srv_metrics_text(srv_app *app, size_t *len) {
  const sched_stats st = sched_get_stats(app->sched);
  text t = {NULL, 0, 0};
  metric(&t, "requests_total", "counter", "Generation requests answered, whatever the outcome.",
         (double)st.requests_done);
  metric(&t, "requests_failed_total", "counter", "Of which failed, cancelled or cut by shutdown.",
         (double)st.requests_failed);
  metric(&t, "requests_rejected_total", "counter", "Generation requests refused with 503: queue full.",
         (double)st.requests_rejected);
  metric(&t, "prompt_tokens_total", "counter", "Prompt tokens of admitted requests.", (double)st.prompt_tokens);
  metric(&t, "prompt_tokens_reused_total", "counter", "Of which taken from a cached prefix.",
         (double)st.prompt_tokens_reused);
  metric(&t, "tokens_generated_total", "counter", "Tokens generated.", (double)st.tokens_generated);
  metric(&t, "tokens_per_second", "gauge", "Tokens generated per second over the last second of work.",
         st.tokens_per_second);
  metric(&t, "batch_steps_total", "counter", "Decode steps (lzn_forward_batch calls).", (double)st.batch_steps);
  metric(&t, "batch_tokens_total", "counter", "Tokens those steps advanced (mean batch = this / steps).",
         (double)st.batch_tokens);
  metric(&t, "decode_seconds_total", "counter", "Seconds inside those steps (the library's own share of "
         "decoding; the rest of a token's time is sampling, the reply and HTTP).", st.decode_seconds);
  metric(&t, "prefill_seconds_total", "counter", "Seconds inside the prompts' prefill (lzn_forward calls).",
         st.prefill_seconds);
  metric(&t, "time_to_first_token_seconds_sum", "counter", "Seconds from arrival to first token, summed.",
         st.ttft_sum);
  metric(&t, "time_to_first_token_seconds_count", "counter", "Requests that had a first token.",
         (double)st.ttft_count);
  metric(&t, "slots", "gauge", "Slots (sequences decoded together).", (double)st.n_slots);
  metric(&t, "slots_busy", "gauge", "Slots holding a request.", (double)st.active_slots);
  metric(&t, "queue_length", "gauge", "Requests waiting for a slot.", (double)st.waiting);
  metric(&t, "mlp_active_fraction", "gauge", "Mean fraction of MLP neurons active per token, every slot.",
         st.mlp_active_fraction);
  metric(&t, "mlp_bytes_saved_total", "counter", "MLP weight bytes a dense MLP would have read and the "
         "sparse one did not.", st.mlp_bytes_saved);
  metric(&t, "mlp_bytes_dense_total", "counter", "MLP weight bytes a dense MLP would have read.",
         st.mlp_bytes_dense);
  metric(&t, "model_weight_bytes", "gauge", "Bytes of the model's weight matrices (in memory or mapped).",
         (double)app->info.weight_bytes);
  metric(&t, "model_packed_bytes", "gauge", "Bytes of the packed copies made at load for prompts and "
         "batches (--pack-budget).", (double)app->info.packed_bytes);
  add(&t, "# HELP lzn_http_requests_total HTTP responses by status (code \"other\": any other).\n"
          "# TYPE lzn_http_requests_total counter\n");
  for (int i = 0; i < SRV_N_CODES; i++) {
    const long long n = atomic_load(&app->http_requests[i]);
    if (srv_counted_codes[i]) add(&t, "lzn_http_requests_total{code=\"%d\"} %lld\n", srv_counted_codes[i], n);
    else add(&t, "lzn_http_requests_total{code=\"other\"} %lld\n", n);
  }
  *len = t.len;
  return t.s;
}
