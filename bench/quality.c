/*
 * quality.c: `lzn-bench quality`, the quality/speed trade-off of Top-k.
 *
 * For each top_k, the held-out bits per byte of a byte-level model (token
 * id == byte) on a text file, with the mean active fraction that top_k
 * leaves: keeping fewer neurons reads fewer rows of W_down, and this table
 * says what it costs in prediction quality. The text is cut into windows of
 * n_ctx bytes; every byte after a window's first is predicted.
 *
 * The same table for the type W_down^T is made in from a quantized file
 * (--down-t, lzn_model_params.down_t_type) and the MLP's path (--mode:
 * sparse reads W_down^T, dense reads the file's W_down as stored, which is
 * llama.cpp's computation), with --reference the logits' relative RMS
 * error against the file's own weights dequantized to F32 (weight_type F32,
 * dense): what the second rounding of a transposed W_down costs (issue 23).
 * Any model runs with --reference (the text's bytes are its token ids);
 * bits per byte mean something for byte-level models only.
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
  char type_text[128], down_t_text[128], mode_text[32];
  int reference;
  int decode; /* 1: one token per call (decode's GEMVs, x quantized as llama.cpp does), else a window per call */
} quality_options;

/* Logits of the reference model over the text's windows, for --reference. */
typedef struct reference_logits {
  float *logits; /* [positions][vocab], the windows one after the other */
  long positions;
} reference_logits;

static lzn_weight_type parse_type(const char *item) { return bench_parse_type("--type", item); }

static void quality_help(void) {
  printf("usage: lzn-bench quality --model DIR --text FILE [--top-k all,F/4,F/8,F/16,F/32]\n"
         "                         [--type T[,T...]] [--down-t T[,T...]] [--mode sparse,dense]\n"
         "                         [--reference] [--decode] [--bytes N] [--window N] [--threads N]\n"
         "                         [-o md|json|csv]\n"
         "Held-out bits per byte and mean active fraction of a byte-level model for each\n"
         "weight type (as_stored, f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k, all; default\n"
         "as_stored) and top_k (all = plain ReLU; F/n = d_ff / n; or a number); with and\n"
         "without the model's activation predictor when it has one (recall: of the truly\n"
         "active neurons, the share the predictor kept, measured with a dense pass beside).\n"
         "--down-t: the type W_down^T is made in from a quantized W_down stored as llama.cpp\n"
         "stores it (lzn_model_params.down_t_type; default q8_0, as the library's; as_stored:\n"
         "the file's type).\n"
         "--mode: the MLP's path (default sparse; dense reads the file's W_down as stored).\n"
         "--reference: also the logits' relative RMS error against the file's weights\n"
         "dequantized to F32 (run dense); then any model runs, the text's bytes its tokens.\n"
         "--decode: one token per call (decode's path: x quantized for every quantized\n"
         "matrix, as llama.cpp does), not a window per call (prefill's fp32 GEMMs).\n");
}

static quality_options parse_quality(int argc, char **argv) {
  quality_options o = {NULL, NULL, "all,F/4,F/8,F/16,F/32", 65536, 0, 1, BENCH_FORMAT_MD, "as_stored",
                       "q8_0", "sparse", 0, 0};
  for (int i = 1; i < argc; i++) { /* argv[0] is the subcommand */
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) quality_help(), exit(0);
    if (strcmp(a, "--reference") == 0 || strcmp(a, "--decode") == 0) {
      *(strcmp(a, "--reference") == 0 ? &o.reference : &o.decode) = 1;
      continue;
    }
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
    else if (strcmp(a, "--down-t") == 0)
      snprintf(o.down_t_text, sizeof o.down_t_text, "%s", strcmp(v, "all") == 0 ? bench_all_types() : v);
    else if (strcmp(a, "--mode") == 0) bench_copy_list(a, o.mode_text, sizeof o.mode_text, v);
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

static lzn_mlp_mode parse_mode(const char *item) {
  if (strcmp(item, "sparse") == 0) return LZN_MLP_SPARSE;
  if (strcmp(item, "dense") == 0) return LZN_MLP_DENSE;
  if (strcmp(item, "auto") == 0) return LZN_MLP_AUTO;
  bench_usage_error("--mode: \"%s\" is not sparse, dense or auto", item);
}

static void measure(const lzn_model *model, const quality_options *o, int top_k, int predictor,
                    lzn_mlp_mode mode, const unsigned char *text, long n, reference_logits *ref,
                    json_t *record) {
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_model_get_info(model, &info);
  lzn_context_params cp = lzn_context_default_params();
  cp.mlp_mode = mode;
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
  /* --reference: this run's logits against the reference's, or (ref->logits
   * NULL) this run becomes the reference. */
  double err2 = 0.0, ref2 = 0.0;
  long position = 0;
  if (ref != NULL && ref->logits == NULL) {
    ref->logits = malloc(sizeof(float) * (size_t)n * (size_t)info.vocab_size);
    if (ref->logits == NULL) bench_fail("out of memory for the reference logits");
  }
  for (long start = 0; start + 1 < n; start += window) {
    const long len = n - start < window ? n - start : window;
    for (long i = 0; i < len; i++) tokens[i] = text[start + i];
    lzn_context_reset(ctx);
    const double t0 = bench_now();
    if (o->decode)
      for (long i = 0; s == LZN_OK && i < len; i++)
        s = lzn_forward(ctx, tokens + i, 1, logits + (size_t)i * (size_t)info.vocab_size, LZN_LOGITS_LAST);
    else
      s = lzn_forward(ctx, tokens, (int)len, logits, LZN_LOGITS_ALL);
    seconds += bench_now() - t0;
    if (s != LZN_OK) bench_fail("lzn_forward: %s", lzn_last_error());
    for (long i = 0; i + 1 < len; i++, predicted++)
      bits += bits_of(logits + (size_t)i * info.vocab_size, info.vocab_size, tokens[i + 1]);
    if (ref != NULL) {
      float *r = ref->logits + (size_t)position * (size_t)info.vocab_size;
      const size_t count = (size_t)len * (size_t)info.vocab_size;
      if (position + len > ref->positions) { /* the reference's own run */
        memcpy(r, logits, count * sizeof(float));
        ref->positions = position + len;
      }
      for (size_t i = 0; i < count; i++)
        err2 += ((double)logits[i] - r[i]) * ((double)logits[i] - r[i]), ref2 += (double)r[i] * r[i];
      position += len;
    }
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
  bench_set(record, "mode", json_string(mode == LZN_MLP_DENSE ? "dense" : mode == LZN_MLP_AUTO ? "auto" : "sparse"));
  bench_set(record, "logit_error", ref != NULL && ref2 > 0.0 ? json_real(sqrt(err2 / ref2)) : json_null());
  free(stats), free(pstats), free(logits), free(tokens);
  lzn_context_free(ctx);
}

/* The reference for --reference: the model as F32 (every matrix the file's
 * values, dequantized; W_down^T transposed exactly), dense, plain ReLU. */
static void reference_run(const quality_options *o, const unsigned char *text, long n, reference_logits *ref) {
  lzn_model_params params;
  lzn_model_params_init(&params, sizeof params);
  params.weight_type = LZN_WEIGHTS_F32;
  lzn_model *model;
  if (lzn_model_load(o->model_dir, &params, &model) != LZN_OK)
    bench_fail("lzn_model_load(%s, f32): %s", o->model_dir, lzn_last_error());
  json_t *record = json_object();
  measure(model, o, 0, 0, LZN_MLP_DENSE, text, n, ref, record);
  json_decref(record);
  lzn_model_free(model);
}

int bench_quality_main(int argc, char **argv) {
  quality_options o = parse_quality(argc, argv);
  long n;
  unsigned char *text = bench_read_text(o.text_path, o.max_bytes, 2, &n);
  char *types[QUALITY_MAX_K], *items[QUALITY_MAX_K], *downs[QUALITY_MAX_K], *modes[QUALITY_MAX_K];
  const size_t n_types = bench_split_list("--type", o.type_text, types, QUALITY_MAX_K);
  const size_t n_k = bench_split_list("--top-k", o.top_k_text, items, QUALITY_MAX_K);
  const size_t n_downs = bench_split_list("--down-t", o.down_t_text, downs, QUALITY_MAX_K);
  const size_t n_modes = bench_split_list("--mode", o.mode_text, modes, QUALITY_MAX_K);
  reference_logits ref = {NULL, 0};
  if (o.reference) reference_run(&o, text, n, &ref);
  json_t *records = json_array();
  lzn_model_info info = {.struct_size = sizeof info};
  for (size_t t = 0; t < n_types; t++)
    for (size_t dt = 0; dt < n_downs; dt++) {
      lzn_model_params params;
      lzn_model_params_init(&params, sizeof params);
      params.weight_type = parse_type(types[t]);
      params.down_t_type = bench_parse_type("--down-t", downs[dt]);
      lzn_model *model;
      if (lzn_model_load(o.model_dir, &params, &model) != LZN_OK)
        bench_fail("lzn_model_load(%s, %s, down_t %s): %s", o.model_dir, types[t], downs[dt], lzn_last_error());
      lzn_model_get_info(model, &info);
      if (info.vocab_size < 256) bench_fail("%s has fewer than 256 tokens: not a byte-level model", o.model_dir);
      for (size_t mi = 0; mi < n_modes; mi++)
        for (size_t i = 0; i < n_k; i++)
          for (int predictor = 0; predictor <= (info.has_predictor > 0); predictor++) {
            json_t *record = json_object();
            bench_set(record, "model", json_string(o.model_dir));
            bench_set(record, "isa", json_string(lzn_isa_name()));
            bench_set(record, "type", json_string(types[t]));
            bench_set(record, "down_t", json_string(downs[dt]));
            bench_set(record, "weight_bytes", json_integer(info.weight_bytes));
            bench_set(record, "d_ff", json_integer(info.d_ff));
            bench_set(record, "top_k_arg", json_string(items[i]));
            measure(model, &o, parse_top_k(items[i], info.d_ff), predictor, parse_mode(modes[mi]), text, n,
                    o.reference ? &ref : NULL, record);
            json_array_append_new(records, record);
          }
      lzn_model_free(model);
    }
  free(ref.logits);
  if (o.format == BENCH_FORMAT_MD) {
    printf("lzn-bench quality | %s | %s | %ld bytes of %s | windows of %d bytes | %s\n\n",
           bench_cpu_model(), lzn_isa_name(), n, o.text_path,
           (int)(o.window ? o.window : info.max_positions),
           o.decode ? "one token per call" : "a window per call");
    static const bench_column columns[] = {
        {"type", "type", NULL, NULL, -1},         {"W_down^T", "down_t", NULL, NULL, -1},
        {"mode", "mode", NULL, NULL, -1},         {"weight bytes", "weight_bytes", NULL, NULL, 0},
        {"top_k", "top_k_arg", NULL, NULL, -1},   {"neurons kept", "top_k", NULL, NULL, 0},
        {"predictor", "predictor", NULL, NULL, -1}, {"predicted %", "predicted_pct", NULL, NULL, 2},
        {"recall", "recall", NULL, NULL, 4},
        {"active %", "active_pct", NULL, NULL, 2}, {"bits/byte", "bits_per_byte", NULL, NULL, 4},
        {"logit error", "logit_error", NULL, NULL, 6},
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
