/*
 * quality.c: `lzn-bench quality`, the quality/speed trade-off of Top-k.
 *
 * For each top_k, the held-out bits per byte of a byte-level model (token
 * id == byte) on a text file, with the mean active fraction that top_k
 * leaves: keeping fewer neurons reads fewer rows of W_down, and this table
 * says what it costs in prediction quality. The text is cut into windows of
 * n_ctx bytes; every byte after a window's first is predicted.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "lazyneuron.h"
#include "output.h"

#define QUALITY_MAX_K 16

typedef struct quality_options {
  const char *model_dir, *text_path;
  char top_k_text[256];
  long max_bytes, window, n_threads;
  bench_format format;
  char type_text[128];
} quality_options;

static lzn_weight_type parse_type(const char *item) { return bench_parse_type("--type", item); }

static void quality_help(void) {
  printf("usage: lzn-bench quality --model DIR --text FILE [--top-k all,F/4,F/8,F/16,F/32]\n"
         "                         [--type T[,T...]] [--bytes N] [--window N] [--threads N]\n"
         "                         [-o md|json|csv]\n"
         "Held-out bits per byte and mean active fraction of a byte-level model for each\n"
         "weight type (as_stored, f32, f16, bf16, q8_0, q4_0, all; default as_stored) and\n"
         "top_k (all = plain ReLU; F/n = d_ff / n; or a number); with and without the\n"
         "model's activation predictor when it has one (recall: of the truly active neurons,\n"
         "the share the predictor kept, measured with a dense pass beside).\n");
}

static quality_options parse_quality(int argc, char **argv) {
  quality_options o = {NULL, NULL, "all,F/4,F/8,F/16,F/32", 65536, 0, 1, BENCH_FORMAT_MD, "as_stored"};
  for (int i = 1; i < argc; i++) { /* argv[0] is the subcommand */
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) quality_help(), exit(0);
    if (v == NULL) bench_usage_error("%s needs a value (see --help)", a);
    if (strcmp(a, "--model") == 0) o.model_dir = v;
    else if (strcmp(a, "--text") == 0) o.text_path = v;
    else if (strcmp(a, "--top-k") == 0) snprintf(o.top_k_text, sizeof o.top_k_text, "%s", v);
    else if (strcmp(a, "--bytes") == 0) o.max_bytes = bench_parse_long(a, v, 2, 1L << 30);
    else if (strcmp(a, "--window") == 0) o.window = bench_parse_long(a, v, 2, 1L << 20);
    else if (strcmp(a, "--threads") == 0) o.n_threads = bench_parse_long(a, v, 1, 1024);
    else if (strcmp(a, "-o") == 0) o.format = bench_parse_format(a, v);
    else if (strcmp(a, "--type") == 0)
      snprintf(o.type_text, sizeof o.type_text, "%s", strcmp(v, "all") == 0 ? bench_all_types() : v);
    else bench_usage_error("unknown option %s (see --help)", a);
    i++;
  }
  if (!o.model_dir || !o.text_path) bench_usage_error("--model and --text are required");
  return o;
}

/* "all" -> 0, "F/8" -> d_ff / 8, "37" -> 37. */
static int parse_top_k(const char *item, int d_ff) {
  if (strcmp(item, "all") == 0) return 0;
  if (strncmp(item, "F/", 2) == 0) {
    const long div = bench_parse_long("--top-k", item + 2, 1, d_ff);
    return (int)(d_ff / div);
  }
  return (int)bench_parse_long("--top-k", item, 1, d_ff);
}

/* -log2 softmax(logits)[target]. */
static double bits_of(const float *logits, int vocab, int target) {
  double max = logits[0], sum = 0.0;
  for (int i = 1; i < vocab; i++)
    if (logits[i] > max) max = logits[i];
  for (int i = 0; i < vocab; i++) sum += exp(logits[i] - max);
  return (log(sum) - (logits[target] - max)) / log(2.0);
}

static void measure(const lzn_model *model, const quality_options *o, int top_k, int predictor,
                    const unsigned char *text, long n, json_t *record) {
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_model_get_info(model, &info);
  lzn_context_params cp = lzn_context_default_params();
  cp.mlp_mode = LZN_MLP_SPARSE;
  cp.top_k = top_k;
  cp.n_threads = (int)o->n_threads;
  cp.use_predictor = predictor;
  cp.collect_recall = predictor; /* a dense pass too, to measure what the predictor missed */
  lzn_context *ctx;
  lzn_status s = lzn_context_create(model, &cp, &ctx);
  if (s != LZN_OK) bench_fail("lzn_context_create: %s", lzn_last_error());
  const long window = o->window ? o->window : info.max_positions;
  float *logits = malloc(sizeof(float) * (size_t)window * (size_t)info.vocab_size);
  int32_t *tokens = malloc(sizeof(int32_t) * (size_t)window);
  double bits = 0.0, active = 0.0, seconds = 0.0;
  long predicted = 0, tokens_seen = 0;
  lzn_layer_stats *stats = calloc((size_t)info.n_layers, sizeof *stats);
  lzn_predictor_stats *pstats = calloc((size_t)info.n_layers, sizeof *pstats);
  if (stats == NULL || pstats == NULL) bench_fail("out of memory");
  stats[0].struct_size = sizeof *stats, pstats[0].struct_size = sizeof *pstats;
  /* Predictor: recall and predicted fraction, token-weighted over windows
   * and layers (each window starts from a reset context). */
  double recall_sum = 0.0, predicted_sum = 0.0, predictor_weight = 0.0;
  for (long start = 0; start + 1 < n; start += window) {
    const long len = n - start < window ? n - start : window;
    for (long i = 0; i < len; i++) tokens[i] = text[start + i];
    lzn_context_reset(ctx);
    const double t0 = bench_now();
    s = lzn_forward(ctx, tokens, (int)len, logits, LZN_LOGITS_ALL);
    seconds += bench_now() - t0;
    if (s != LZN_OK) bench_fail("lzn_forward: %s", lzn_last_error());
    for (long i = 0; i + 1 < len; i++, predicted++)
      bits += bits_of(logits + (size_t)i * info.vocab_size, info.vocab_size, tokens[i + 1]);
    lzn_context_stats(ctx, stats, info.n_layers);
    for (int l = 0; l < info.n_layers; l++) active += stats[l].active_fraction * (double)len / info.n_layers;
    tokens_seen += len;
    lzn_context_predictor_stats(ctx, pstats, info.n_layers);
    for (int l = 0; predictor && l < info.n_layers; l++)
      if (pstats[l].tokens > 0) {
        recall_sum += pstats[l].recall * (double)len;
        predicted_sum += pstats[l].predicted_fraction * (double)len;
        predictor_weight += (double)len;
      }
  }
  bench_set(record, "top_k", json_integer(top_k ? top_k : info.d_ff));
  bench_set(record, "top_k_label", json_string(top_k ? "" : "all (ReLU)"));
  bench_set(record, "bits_per_byte", json_real(bits / (double)predicted));
  bench_set(record, "active_fraction", json_real(active / (double)tokens_seen));
  bench_set(record, "active_pct", json_real(100.0 * active / (double)tokens_seen));
  bench_set(record, "bytes", json_integer(predicted));
  bench_set(record, "t_s", json_real((double)tokens_seen / seconds));
  bench_set(record, "predictor", json_string(predictor ? "on" : "off"));
  bench_set(record, "recall", predictor_weight > 0 ? json_real(recall_sum / predictor_weight) : json_null());
  bench_set(record, "predicted_pct",
            predictor_weight > 0 ? json_real(100.0 * predicted_sum / predictor_weight) : json_null());
  free(stats), free(pstats), free(logits), free(tokens);
  lzn_context_free(ctx);
}

int bench_quality_main(int argc, char **argv) {
  quality_options o = parse_quality(argc, argv);
  long n;
  unsigned char *text = bench_read_text(o.text_path, o.max_bytes, 2, &n);
  char *types[QUALITY_MAX_K], *items[QUALITY_MAX_K];
  const size_t n_types = bench_split_list("--type", o.type_text, types, QUALITY_MAX_K);
  const size_t n_k = bench_split_list("--top-k", o.top_k_text, items, QUALITY_MAX_K);
  json_t *records = json_array();
  lzn_model_info info = {.struct_size = sizeof info};
  for (size_t t = 0; t < n_types; t++) {
    lzn_model_params params = lzn_model_default_params();
    params.weight_type = parse_type(types[t]);
    lzn_model *model;
    if (lzn_model_load(o.model_dir, &params, &model) != LZN_OK)
      bench_fail("lzn_model_load(%s, %s): %s", o.model_dir, types[t], lzn_last_error());
    lzn_model_get_info(model, &info);
    if (info.vocab_size < 256) bench_fail("%s is not a byte-level model", o.model_dir);
    for (size_t i = 0; i < n_k; i++)
      for (int predictor = 0; predictor <= (info.has_predictor > 0); predictor++) {
      json_t *record = json_object();
      bench_set(record, "model", json_string(o.model_dir));
      bench_set(record, "isa", json_string(lzn_isa_name()));
      bench_set(record, "type", json_string(types[t]));
      bench_set(record, "weight_bytes", json_integer(info.weight_bytes));
      bench_set(record, "d_ff", json_integer(info.d_ff));
      bench_set(record, "top_k_arg", json_string(items[i]));
      measure(model, &o, parse_top_k(items[i], info.d_ff), predictor, text, n, record);
      json_array_append_new(records, record);
      }
    lzn_model_free(model);
  }
  if (o.format == BENCH_FORMAT_MD) {
    printf("lzn-bench quality | %s | %s | %ld bytes of %s | windows of %d bytes | sparse MLP\n\n",
           bench_cpu_model(), lzn_isa_name(), n, o.text_path,
           (int)(o.window ? o.window : info.max_positions));
    static const bench_column columns[] = {
        {"type", "type", NULL, NULL, -1},         {"weight bytes", "weight_bytes", NULL, NULL, 0},
        {"top_k", "top_k_arg", NULL, NULL, -1},   {"neurons kept", "top_k", NULL, NULL, 0},
        {"predictor", "predictor", NULL, NULL, -1}, {"predicted %", "predicted_pct", NULL, NULL, 2},
        {"recall", "recall", NULL, NULL, 4},
        {"active %", "active_pct", NULL, NULL, 2}, {"bits/byte", "bits_per_byte", NULL, NULL, 4},
        {"prefill t/s", "t_s", NULL, NULL, 1}};
    bench_write_md_table(stdout, columns, sizeof columns / sizeof columns[0], records);
  } else if (o.format == BENCH_FORMAT_JSON) {
    bench_write_json(stdout, records);
  } else {
    bench_write_csv(stdout, records);
  }
  json_decref(records);
  free(text);
  return 0;
}
