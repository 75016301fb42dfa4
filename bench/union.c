/*
 * union.c: `lzn-bench union`: how the union of active neurons grows with
 * the number of tokens a call covers, per layer, on a real model and text.
 *
 * A batch (prefill window, or the tokens of several sequences) reads the
 * union of its tokens' active rows once (lib/linalg/union.c), so its cost
 * follows the union's size, not the per-token density. For each window
 * size w the text is cut into consecutive windows of w tokens, each run as
 * one SPARSE lzn_forward call; the layer's union fraction of the call is
 * the W_down bytes it read over a dense pass's (lzn_context_stats). Beside
 * it, what independent active sets of the same per-token density would
 * give: 1 - (1 - p)^w. The seeds' observation: the union grows more slowly
 * than for independent sets, at a rate that differs by layer.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "lazyneuron.h"
#include "output.h"

#define UNION_MAX_WINDOWS 16
#define UNION_MAX_LAYERS 64

int bench_union_main(int argc, char **argv);
int bench_union_main(int argc, char **argv) {
  const char *model_dir = NULL, *text_path = NULL, *windows_text = "1,2,4,8,16,32,64";
  long max_bytes = 16384;
  bench_format format = BENCH_FORMAT_MD;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      printf("usage: lzn-bench union --model DIR --text FILE [--windows 1,2,4,8,16,32,64] [--bytes N]\n"
             "                       [-o md|json|csv]\n"
             "Per layer, the fraction of neurons active in at least one token of a window of w\n"
             "tokens (the rows a batch reads), against the per-token fraction and against\n"
             "independent sets of that density, 1 - (1 - p)^w. Byte-level models (token = byte).\n"
             "tools/plot/plot_union.py draws the JSON output as a PNG.\n");
      return 0;
    } else if ((v = bench_option_value(argc, argv, &i, "--model"))) model_dir = v;
    else if ((v = bench_option_value(argc, argv, &i, "--text"))) text_path = v;
    else if ((v = bench_option_value(argc, argv, &i, "--windows"))) windows_text = v;
    else if ((v = bench_option_value(argc, argv, &i, "--bytes"))) max_bytes = bench_parse_long("--bytes", v, 2, 1L << 26);
    else if ((v = bench_option_value(argc, argv, &i, "-o"))) format = bench_parse_format("-o", v);
    else bench_usage_error("union: unknown option \"%s\"", argv[i]);
  }
  if (model_dir == NULL || text_path == NULL) bench_usage_error("union: --model and --text are required");
  char buf[256], *items[UNION_MAX_WINDOWS];
  bench_copy_list("--windows", buf, sizeof buf, windows_text);
  const size_t n_windows = bench_split_list("--windows", buf, items, UNION_MAX_WINDOWS);
  int windows[UNION_MAX_WINDOWS];
  for (size_t k = 0; k < n_windows; k++) windows[k] = (int)bench_parse_long("--windows", items[k], 1, 64);

  lzn_model_params mp;
  lzn_model_params_init(&mp, sizeof mp);
  mp.predictor_path = ""; /* the model's own activations */
  lzn_model *model;
  if (lzn_model_load(model_dir, &mp, &model) != LZN_OK) bench_fail("%s: %s", model_dir, lzn_last_error());
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_model_get_info(model, &info);
  if (info.vocab_size < 256) bench_fail("%s is not a byte-level model", model_dir);
  if (info.n_layers > UNION_MAX_LAYERS) bench_fail("more than %d layers", UNION_MAX_LAYERS);
  long n_text;
  unsigned char *text = bench_read_text(text_path, max_bytes, 2, &n_text);
  lzn_context_params cp = lzn_context_default_params();
  cp.mlp_mode = LZN_MLP_SPARSE;
  cp.use_predictor = 0;
  lzn_context *ctx;
  if (lzn_context_create(model, &cp, &ctx) != LZN_OK) bench_fail("%s", lzn_last_error());
  float *logits = malloc(sizeof(float) * (size_t)info.vocab_size);
  lzn_layer_stats *before = malloc(sizeof *before * (size_t)info.n_layers);
  lzn_layer_stats *after = malloc(sizeof *after * (size_t)info.n_layers);
  if (before == NULL || after == NULL) bench_fail("out of memory");
  before[0].struct_size = after[0].struct_size = sizeof *before;
  json_t *records = json_array();
  /* The per-token density per layer, from windows of 1. */
  double per_token[UNION_MAX_LAYERS] = {0};
  for (size_t k = 0; k < n_windows; k++) {
    const int w = windows[k];
    double sum[UNION_MAX_LAYERS] = {0}, active[UNION_MAX_LAYERS] = {0};
    long calls = 0;
    lzn_context_reset(ctx);
    for (long start = 0; start + w <= n_text; start += w) {
      /* Start over before the cache would overflow: a window's union does
       * not depend on how far into the sequence it is. */
      if (lzn_context_n_past(ctx) + w > info.max_positions) lzn_context_truncate(ctx, 0);
      int32_t tokens[64];
      for (int i = 0; i < w; i++) tokens[i] = text[start + i];
      lzn_context_stats(ctx, before, info.n_layers);
      if (lzn_forward(ctx, tokens, w, logits, LZN_LOGITS_LAST) != LZN_OK) bench_fail("%s", lzn_last_error());
      lzn_context_stats(ctx, after, info.n_layers);
      for (int l = 0; l < info.n_layers; l++) {
        const double read = after[l].bytes_executed - before[l].bytes_executed;
        const double dense = after[l].bytes_dense - before[l].bytes_dense;
        sum[l] += dense > 0 ? read / dense : 0.0;
        const double tokens_l = (double)(after[l].tokens - before[l].tokens);
        active[l] += (after[l].active_fraction * after[l].tokens - before[l].active_fraction * before[l].tokens) /
                     (tokens_l > 0 ? tokens_l : 1.0);
      }
      calls++;
    }
    for (int l = 0; l < info.n_layers; l++) {
      const double p = active[l] / (double)calls;
      if (w == 1 || per_token[l] == 0.0) per_token[l] = p;
      json_t *rec = json_object();
      bench_set(rec, "layer", json_integer(l));
      bench_set(rec, "window", json_integer(w));
      bench_set(rec, "union_pct", json_real(100.0 * sum[l] / (double)calls));
      bench_set(rec, "per_token_pct", json_real(100.0 * p));
      bench_set(rec, "independent_pct", json_real(100.0 * (1.0 - pow(1.0 - per_token[l], w))));
      bench_set(rec, "windows", json_integer(calls));
      json_array_append_new(records, rec);
    }
  }
  if (format == BENCH_FORMAT_MD) {
    printf("lzn-bench union | %s | %s | %ld bytes of %s\n\n", bench_cpu_model(), model_dir, n_text, text_path);
    static const bench_column columns[] = {
        {"layer", "layer", NULL, NULL, 0},           {"tokens per call", "window", NULL, NULL, 0},
        {"union %", "union_pct", NULL, NULL, 2},     {"per-token %", "per_token_pct", NULL, NULL, 2},
        {"independent sets %", "independent_pct", NULL, NULL, 2}, {"calls", "windows", NULL, NULL, 0}};
    bench_write_md_table(stdout, columns, sizeof columns / sizeof columns[0], records);
  } else if (format == BENCH_FORMAT_JSON) {
    bench_write_json(stdout, records);
  } else {
    bench_write_csv(stdout, records);
  }
  json_decref(records);
  free(logits), free(before), free(after), free(text);
  lzn_context_free(ctx);
  lzn_model_free(model);
  return 0;
}
