/*
 * batch.c: `lzn-bench batch`: decode steps of N sequences at once
 * (lzn_forward_batch) against the same N sequences each advanced by its own
 * one-token lzn_forward call, on one model and in one run. What a server
 * gains by batching: every weight read once per step instead of N times,
 * the MLP over the union of the N tokens' active rows.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "forward/context.h"
#include "lazyneuron.h"
#include "output.h"
#include "model/model.h"
#include "synthetic.h"

#define BATCH_MAX 64

typedef struct batch_options {
  const char *model_dir, *synthetic;
  double density_pct, threshold;
  bench_format format;
  int n_layers, steps, reps, threads;
  int sizes[16];
  size_t n_sizes;
  lzn_mlp_mode modes[3];
  size_t n_modes;
  lzn_weight_type type;
  int no_pack;
} batch_options;

static void help(void) {
  printf("usage: lzn-bench batch (--model DIR|FILE | --synthetic NAME) [--layers N] [--density PCT]\n"
         "                       [--batch 1,2,4,8,16] [--steps S] [--mode sparse,dense,auto]\n"
         "                       [--type f32|f16|bf16|q8_0|q4_0] [--threads T] [--reps R]\n"
         "                       [--threshold X] [--no-pack] [-o md|json|csv]\n"
         "Times S decode steps of N sequences with lzn_forward_batch against the same N\n"
         "sequences each advanced by its own one-token lzn_forward per step (median of R runs),\n"
         "and reports the MLP's union density (the rows the batch read, over d_ff) and who ran\n"
         "the batched products (own kernels, oneDNN, libxsmm; N = 1 is the GEMV kernels).\n"
         "  --type T       the weights' type (default: f32 for --synthetic, as stored for --model)\n"
         "  --no-pack      no packed copies of the matrices batches read whole\n"
         "                 (lzn_model_params.pack_budget = 0)\n"
         "  --threshold X  the context's activation threshold (lzn_context_params.threshold; it\n"
         "                 replaces a FATReLU file's own, so one file gives any density;\n"
         "                 default 0: the model's)\n");
}

static lzn_mlp_mode parse_mode(const char *m) {
  if (strcmp(m, "sparse") == 0) return LZN_MLP_SPARSE;
  if (strcmp(m, "dense") == 0) return LZN_MLP_DENSE;
  if (strcmp(m, "auto") == 0) return LZN_MLP_AUTO;
  bench_usage_error("--mode: unknown mode \"%s\"", m);
  return LZN_MLP_AUTO;
}

static void parse(batch_options *o, int argc, char **argv) {
  const char *sizes = "1,2,4,8,16", *modes = "sparse,dense,auto", *type = NULL;
  *o = (batch_options){.density_pct = 5.0, .steps = 16, .reps = 3, .threads = 1};
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) help(), exit(0);
    else if ((v = bench_option_value(argc, argv, &i, "--model"))) o->model_dir = v;
    else if ((v = bench_option_value(argc, argv, &i, "--synthetic"))) o->synthetic = v;
    else if ((v = bench_option_value(argc, argv, &i, "--layers"))) o->n_layers = (int)bench_parse_long("--layers", v, 1, 1000);
    else if ((v = bench_option_value(argc, argv, &i, "--density"))) o->density_pct = bench_parse_double("--density", v);
    else if ((v = bench_option_value(argc, argv, &i, "--batch"))) sizes = v;
    else if ((v = bench_option_value(argc, argv, &i, "--steps"))) o->steps = (int)bench_parse_long("--steps", v, 1, 10000);
    else if ((v = bench_option_value(argc, argv, &i, "--reps"))) o->reps = (int)bench_parse_long("--reps", v, 1, 1000);
    else if ((v = bench_option_value(argc, argv, &i, "--threads"))) o->threads = (int)bench_parse_long("--threads", v, 1, 1024);
    else if ((v = bench_option_value(argc, argv, &i, "--mode"))) modes = v;
    else if ((v = bench_option_value(argc, argv, &i, "--type"))) type = v;
    else if ((v = bench_option_value(argc, argv, &i, "--threshold"))) o->threshold = bench_parse_double("--threshold", v);
    else if ((v = bench_option_value(argc, argv, &i, "-o"))) o->format = bench_parse_format("-o", v);
    else if (strcmp(argv[i], "--no-pack") == 0) o->no_pack = 1;
    else bench_usage_error("batch: unknown option \"%s\"", argv[i]);
  }
  if ((o->model_dir == NULL) == (o->synthetic == NULL)) bench_usage_error("batch: give --model or --synthetic");
  char buf[256], *items[16];
  bench_copy_list("--batch", buf, sizeof buf, sizes);
  const size_t n = bench_split_list("--batch", buf, items, 16);
  for (size_t k = 0; k < n; k++) o->sizes[o->n_sizes++] = (int)bench_parse_long("--batch", items[k], 1, BATCH_MAX);
  bench_copy_list("--mode", buf, sizeof buf, modes);
  const size_t nm = bench_split_list("--mode", buf, items, 3);
  for (size_t k = 0; k < nm; k++) o->modes[o->n_modes++] = parse_mode(items[k]);
  /* As `lzn-bench model`: a file runs in its own type unless told. */
  o->type = type ? bench_parse_type("--type", type) : o->synthetic ? LZN_WEIGHTS_F32 : LZN_WEIGHTS_AS_STORED;
  if (o->threshold < 0.0) bench_usage_error("--threshold must be >= 0");
}

static void check(lzn_status s, const char *what) {
  if (s != LZN_OK) bench_fail("%s: %s: %s", what, lzn_status_str(s), lzn_last_error());
}

/* Seconds of `steps` steps of n sequences, batched or one call each, after a
 * one-token prompt per sequence (untimed); contexts are reset first. */
static double run(lzn_context **ctx, int n, int steps, int batched, int vocab, float *logits,
                  uint64_t seed) {
  bench_rng rng = {seed | 1};
  int32_t tokens[BATCH_MAX];
  for (int i = 0; i < n; i++) {
    check(lzn_context_reset(ctx[i]), "reset");
    tokens[i] = (int32_t)bench_rng_below(&rng, (uint64_t)vocab);
    check(lzn_forward(ctx[i], &tokens[i], 1, logits, LZN_LOGITS_LAST), "prompt");
  }
  const double t0 = bench_now();
  for (int step = 0; step < steps; step++) {
    for (int i = 0; i < n; i++) tokens[i] = (int32_t)bench_rng_below(&rng, (uint64_t)vocab);
    if (batched) {
      check(lzn_forward_batch(ctx, tokens, n, logits), "lzn_forward_batch");
    } else {
      for (int i = 0; i < n; i++) check(lzn_forward(ctx[i], &tokens[i], 1, logits, LZN_LOGITS_LAST), "lzn_forward");
    }
  }
  return bench_now() - t0;
}

static const char *mode_name(lzn_mlp_mode m) {
  return m == LZN_MLP_SPARSE ? "sparse" : m == LZN_MLP_DENSE ? "dense" : "auto";
}

int bench_batch_main(int argc, char **argv);
int bench_batch_main(int argc, char **argv) {
  batch_options o;
  parse(&o, argc, argv);
  lzn_model *model = NULL;
  if (o.synthetic) {
    check(lzn_model_synthetic_typed(o.synthetic, (float)(o.density_pct / 100.0), o.n_layers, 1,
                                    o.type == LZN_WEIGHTS_AS_STORED ? LZN_WEIGHTS_F32 : o.type, &model),
          "synthetic model");
    if (!o.no_pack) check(lzn_model_pack(model, SIZE_MAX, 1), "packing"); /* as lzn_model_load does */
  } else {
    lzn_model_params p;
    lzn_model_params_init(&p, sizeof p);
    p.weight_type = o.type, p.n_threads = o.threads;
    if (o.no_pack) p.pack_budget = 0;
    check(lzn_model_load(o.model_dir, &p, &model), o.model_dir);
  }
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_model_get_info(model, &info);
  float *logits = malloc(sizeof(float) * (size_t)BATCH_MAX * (size_t)info.vocab_size);
  double *t_batch = malloc(sizeof(double) * (size_t)o.reps), *t_alone = malloc(sizeof(double) * (size_t)o.reps);
  lzn_layer_stats *stats = malloc(sizeof *stats * (size_t)info.n_layers);
  if (stats == NULL) bench_fail("out of memory");
  stats[0].struct_size = sizeof *stats;
  json_t *records = json_array();
  for (size_t mi = 0; mi < o.n_modes; mi++)
    for (size_t k = 0; k < o.n_sizes; k++) {
      const int n = o.sizes[k];
      lzn_context *ctx[BATCH_MAX];
      for (int i = 0; i < n; i++) {
        lzn_context_params p = lzn_context_default_params();
        p.n_ctx = o.steps + 2, p.n_threads = o.threads, p.mlp_mode = o.modes[mi];
        p.threshold = (float)o.threshold;
        check(lzn_context_create(model, &p, &ctx[i]), "lzn_context_create");
      }
      run(ctx, n, 1, 1, info.vocab_size, logits, 7); /* warm-up: primitives, first touch */
      run(ctx, n, 1, 0, info.vocab_size, logits, 7);
      double union_rows = 0.0, parts[3] = {0.0, 0.0, 0.0}; /* ms a batched step: attention, up, down */
      ctx[0]->exec.used = 0;
      for (int r = 0; r < o.reps; r++) {
        t_alone[r] = run(ctx, n, o.steps, 0, info.vocab_size, logits, 100 + (uint64_t)r);
        t_batch[r] = run(ctx, n, o.steps, 1, info.vocab_size, logits, 100 + (uint64_t)r);
        /* ctx[0] counted the batched MLP: bytes read / one row's bytes, per step and layer. */
        lzn_context_stats(ctx[0], stats, info.n_layers);
        double rows = 0.0;
        for (int l = 0; l < info.n_layers; l++) {
          rows += stats[l].bytes_dense > 0 ? stats[l].bytes_executed / stats[l].bytes_dense : 0.0;
          parts[0] += 1e3 * stats[l].seconds_attention / o.steps / o.reps;
          parts[1] += 1e3 * stats[l].seconds_up / o.steps / o.reps;
          parts[2] += 1e3 * stats[l].seconds_down / o.steps / o.reps;
        }
        union_rows += rows / info.n_layers / o.reps;
      }
      /* Who ran ctx[0]'s products of more than one token (the batched
       * steps; its own one-token steps use the GEMV kernels). */
      char used[64] = "";
      static const char *const backend_names[LZN_BACKEND_COUNT] = {"", "own", "oneDNN", "libxsmm"};
      for (int b = 1; b < LZN_BACKEND_COUNT; b++)
        if (ctx[0]->exec.used & (1u << b))
          snprintf(used + strlen(used), sizeof used - strlen(used), "%s%s", used[0] ? "+" : "", backend_names[b]);
      const double b = bench_summarize(t_batch, (size_t)o.reps).median, a = bench_summarize(t_alone, (size_t)o.reps).median;
      json_t *rec = json_object();
      bench_set(rec, "model", json_string(o.synthetic ? o.synthetic : o.model_dir));
      bench_set(rec, "type", json_string(lzn_weight_type_name(info.weight_type)));
      bench_set(rec, "isa", json_string(lzn_isa_name()));
      bench_set(rec, "threads", json_integer(o.threads));
      bench_set(rec, "mode", json_string(mode_name(o.modes[mi])));
      bench_set(rec, "n", json_integer(n));
      bench_set(rec, "step_ms_batched", json_real(1e3 * b / o.steps));
      bench_set(rec, "step_ms_alone", json_real(1e3 * a / o.steps));
      bench_set(rec, "batched_over_alone", json_real(b / a));
      bench_set(rec, "tokens_per_s_batched", json_real(n * o.steps / b));
      bench_set(rec, "tokens_per_s_alone", json_real(n * o.steps / a));
      bench_set(rec, "union_pct", json_real(100.0 * union_rows));
      bench_set(rec, "attention_ms", json_real(parts[0]));
      bench_set(rec, "up_ms", json_real(parts[1]));
      bench_set(rec, "down_ms", json_real(parts[2]));
      bench_set(rec, "kernels", json_string(n == 1 ? "own (GEMV)" : used[0] ? used : "-"));
      json_array_append_new(records, rec);
      for (int i = 0; i < n; i++) lzn_context_free(ctx[i]);
    }
  if (o.format == BENCH_FORMAT_MD) {
    printf("lzn-bench batch | CPU: %s | ISA: %s | lazyneuron %s | %s%s, %d layers, d_model %d, d_ff %d | "
           "%d steps, median of %d runs, %d thread(s)\n\n", bench_cpu_model(), lzn_isa_name(),
           lzn_version_string(), o.synthetic ? o.synthetic : o.model_dir, o.synthetic ? " (synthetic)" : "",
           info.n_layers, info.d_model, info.d_ff, o.steps, o.reps, o.threads);
    static const bench_column columns[] = {
        {"type", "type", NULL, NULL, 0},           {"mode", "mode", NULL, NULL, 0},
        {"N", "n", NULL, NULL, 0},                 {"step ms batched", "step_ms_batched", NULL, NULL, 3},
        {"step ms alone", "step_ms_alone", NULL, NULL, 3}, {"batched / alone", "batched_over_alone", NULL, NULL, 3},
        {"tokens/s batched", "tokens_per_s_batched", NULL, NULL, 1}, {"union %", "union_pct", NULL, NULL, 2},
        {"attention ms", "attention_ms", NULL, NULL, 2}, {"up ms", "up_ms", NULL, NULL, 2},
        {"down ms", "down_ms", NULL, NULL, 2}, {"kernels", "kernels", NULL, NULL, 0}};
    bench_write_md_table(stdout, columns, sizeof columns / sizeof columns[0], records);
    printf("\nunion %%: rows of W_down^T the batched step read per layer over d_ff (ctxs[0]'s stats:\n"
           "bytes read over a dense pass' bytes; dense mode reads them all). attention, up, down ms:\n"
           "a batched step's time in the layers' blocks (ctxs[0]'s stats; up: fc1 or the gate, down:\n"
           "selection, then fc2 or the up and down rows). kernels: who ran the\n"
           "batched products (own: the kernel table's gemm kernels, in the weights' type).\n");
  } else if (o.format == BENCH_FORMAT_JSON) {
    bench_write_json(stdout, records);
  } else {
    bench_write_csv(stdout, records);
  }
  json_decref(records);
  free(logits), free(t_batch), free(t_alone), free(stats);
  lzn_model_free(model);
  return 0;
}
