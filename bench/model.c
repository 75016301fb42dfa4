/*
 * model.c: `lzn-bench model`, tokens per second of whole forward calls, the
 * MLP down-projection sparse, dense or auto, on a model lzn_model_load reads
 * (a Hugging Face OPT or LLaMA-family folder, or a GGUF file) or
 * on a synthetic OPT-shaped model with random weights whose activation
 * density is chosen (lib/synthetic.h). This file reads the command line and
 * builds or loads the model, once, outside any timing.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_mode.h"
#include "model/model.h"
#include "synthetic.h"

static void help(void) {
  printf(
      "usage: lzn-bench model (--model PATH | --synthetic NAME) [options]\n"
      "Tokens per second of lzn_forward, llama-bench style, with the MLP down-projection\n"
      "sparse (active rows of W_down^T), dense (oneDNN) or auto, plus where the time goes\n"
      "(attention, up-projection, down-projection, other) from lzn_context_stats.\n\n"
      "  --model PATH            a model lzn_model_load reads: a Hugging Face folder, OPT or\n"
      "                          LLaMA family, or a GGUF file (density = measured)\n"
      "  --synthetic NAME        random weights with OPT shapes: %s\n"
      "  --layers N              synthetic: layer count (default: the model's; opt-6.7b\n"
      "                          needs fewer than its 32 to fit in RAM at fp32)\n"
      "  --density PCT           synthetic: percent of fc1 neurons firing per token (default 5)\n"
      "  --seed S                synthetic: weight seed (default 1)\n"
      "  --type T[,T...]         weight types, one model each: f32, f16, bf16, q8_0, q4_0, q4_k,\n"
      "                          q5_k, q6_k, all\n"
      "                          (default: f32 for --synthetic, as stored for --model)\n"
      "  --mode M[,M...]         sparse, dense, auto (default sparse,dense,auto)\n"
      "  --test T[,T...]         ppN: one call of N tokens from an empty cache;\n"
      "                          tgN: N one-token calls after a 1-token prompt (default pp128,tg32)\n"
      "  --depth N               run each test after an N-token context (llama-bench's -d):\n"
      "                          prefilled once per context, untimed, the cache rewound to N\n"
      "                          before every run (default 0: tg after a 1-token prompt)\n"
      "  --kv T                  KV cache type: f32, f16, bf16, q8_0 (default f16)\n"
      "  --threads N[,N...]      threads per call (default 1)\n"
      "  --reps R                timed runs per row, after 1 untimed warm-up (default 3)\n"
      "  -o md|json|csv          output format (default md)\n"
      "  --predictor RANK        synthetic: an exact low-rank activation predictor in every\n"
      "                          layer (0: rank d_model/16), fc1 or the gate made that rank\n"
      "  --predicted-ratio X     its predicted set over the active set (default 2)\n"
      "  --predictor-type T      its matrices' type: f32, f16, bf16, q8_0, ... (default f16:\n"
      "                          half the bytes of f32, as a PowerInfer GGUF may carry it);\n"
      "                          with --model, the model's own predictor converted at load\n"
      "                          (lzn_model_params.predictor_type; default as stored)\n"
      "  --no-pack               no packed copies of the matrices batches read whole\n"
      "                          (lzn_model_params.pack_budget = 0; prompts and batches run on\n"
      "                          the rows as they lie: the comparison for the packed gemm)\n"
      "  --no-mmap               --model: read the weights into private memory on huge pages\n"
      "                          (lzn_model_params.use_mmap = 0) instead of mapping the file\n"
      "  --contend               a busy-looping process runs beside every timed run: a core\n"
      "                          taken away, as on a shared server (compare --threads 1,2 with\n"
      "                          and without it)\n"
      "  --threshold X           the context's activation threshold (lzn_context_params.threshold;\n"
      "                          it replaces a FATReLU file's own, so one file gives any density;\n"
      "                          default 0: the model's)\n"
      "  -h, --help              this text\n\n"
      "JSON/CSV: density and *_pct are percent; active_fraction, flops_saved, bytes_saved are\n"
      "fractions; *_ms are milliseconds per token; t_s is tokens per second (median).\n",
      LZN_SYNTHETIC_NAMES);
}


static void parse_modes(model_options *o, const char *text) {
  char buf[256], *items[MODEL_MAX_ITEMS];
  bench_copy_list("--mode", buf, sizeof buf, text);
  const size_t n = bench_split_list("--mode", buf, items, MODEL_MAX_ITEMS);
  for (size_t k = 0; k < n; k++) {
    lzn_mlp_mode mode;
    if (strcmp(items[k], "sparse") == 0) mode = LZN_MLP_SPARSE;
    else if (strcmp(items[k], "dense") == 0) mode = LZN_MLP_DENSE;
    else if (strcmp(items[k], "auto") == 0) mode = LZN_MLP_AUTO;
    else bench_usage_error("--mode: unknown mode \"%s\" (sparse, dense, auto)", items[k]);
    int seen = 0;
    for (size_t j = 0; j < o->n_modes; j++) seen |= o->modes[j] == mode;
    if (!seen) o->modes[o->n_modes++] = mode;
  }
}

static void parse_tests(model_options *o, const char *text) {
  char buf[512], *items[MODEL_MAX_ITEMS];
  bench_copy_list("--test", buf, sizeof buf, text);
  const size_t n = bench_split_list("--test", buf, items, MODEL_MAX_ITEMS);
  for (size_t k = 0; k < n; k++) {
    model_test *t = &o->tests[o->n_tests++];
    if (strncmp(items[k], "pp", 2) == 0) t->kind = MODEL_TEST_PP;
    else if (strncmp(items[k], "tg", 2) == 0) t->kind = MODEL_TEST_TG;
    else bench_usage_error("--test: \"%s\" is not ppN or tgN", items[k]);
    /* The model's position limit is checked once it is known. */
    t->n = (int)bench_parse_long("--test", items[k] + 2, 1, 1 << 20);
    snprintf(t->name, sizeof t->name, "%s%d", t->kind == MODEL_TEST_PP ? "pp" : "tg", t->n);
  }
}

static void parse_types(model_options *o, const char *text) {
  char buf[256], *items[MODEL_MAX_ITEMS];
  bench_copy_list("--type", buf, sizeof buf, strcmp(text, "all") == 0 ? bench_all_types() : text);
  const size_t n = bench_split_list("--type", buf, items, MODEL_MAX_ITEMS);
  for (size_t k = 0; k < n; k++) o->types[o->n_types++] = bench_parse_type("--type", items[k]);
}

static void parse_options(model_options *o, int argc, char **argv) {
  const char *modes = "sparse,dense,auto", *tests = "pp128,tg32", *threads = "1", *types = NULL;
  int density_given = 0, layers_given = 0, seed_given = 0;
  *o = (model_options){.density_pct = 5.0, .seed = 1, .reps = 3, .format = BENCH_FORMAT_MD,
                       .kv_type = lzn_context_default_params().kv_type, .predictor_rank = -1,
                       .predicted_ratio = 2.0,
                       .predictor_type = LZN_WEIGHTS_F16};
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      help();
      exit(0);
    } else if ((v = bench_option_value(argc, argv, &i, "--model"))) o->model_dir = v;
    else if ((v = bench_option_value(argc, argv, &i, "--synthetic"))) o->synthetic = v;
    else if ((v = bench_option_value(argc, argv, &i, "--layers"))) {
      o->n_layers = (int)bench_parse_long("--layers", v, 1, 100000);
      layers_given = 1;
    } else if ((v = bench_option_value(argc, argv, &i, "--density"))) {
      o->density_pct = bench_parse_double("--density", v);
      if (!(o->density_pct > 0.0 && o->density_pct <= 100.0))
        bench_usage_error("--density: %g is outside (0, 100]", o->density_pct);
      density_given = 1;
    } else if ((v = bench_option_value(argc, argv, &i, "--seed"))) {
      o->seed = (uint64_t)bench_parse_long("--seed", v, 0, LONG_MAX);
      seed_given = 1;
    } else if ((v = bench_option_value(argc, argv, &i, "--mode"))) modes = v;
    else if ((v = bench_option_value(argc, argv, &i, "--test"))) tests = v;
    else if ((v = bench_option_value(argc, argv, &i, "--threads"))) threads = v;
    else if ((v = bench_option_value(argc, argv, &i, "--kv"))) {
      o->kv_type = bench_parse_kv("--kv", v);
    } else if ((v = bench_option_value(argc, argv, &i, "--depth")))
      o->depth = o->depth_asked = (int)bench_parse_long("--depth", v, 0, 1 << 20);
    else if ((v = bench_option_value(argc, argv, &i, "--type"))) types = v;
    else if ((v = bench_option_value(argc, argv, &i, "--predictor")))
      o->predictor_rank = (int)bench_parse_long("--predictor", v, 0, 1 << 20);
    else if ((v = bench_option_value(argc, argv, &i, "--predicted-ratio"))) {
      o->predicted_ratio = bench_parse_double("--predicted-ratio", v);
      if (!(o->predicted_ratio >= 1.0)) bench_usage_error("--predicted-ratio: %g is below 1", o->predicted_ratio);
    }
    else if ((v = bench_option_value(argc, argv, &i, "--predictor-type"))) {
      o->predictor_type = bench_parse_type("--predictor-type", v);
      o->predictor_type_given = 1;
      if (o->predictor_type == LZN_WEIGHTS_AS_STORED) bench_usage_error("--predictor-type: give a type");
    }
    else if (strcmp(argv[i], "--contend") == 0) o->contend = 1;
    else if (strcmp(argv[i], "--no-pack") == 0) o->no_pack = 1;
    else if (strcmp(argv[i], "--no-mmap") == 0) o->no_mmap = 1;
    else if ((v = bench_option_value(argc, argv, &i, "--threshold"))) {
      o->threshold = bench_parse_double("--threshold", v);
      if (!(o->threshold >= 0.0 && o->threshold < 1e30)) bench_usage_error("--threshold: %g is not >= 0", o->threshold);
    }
    else if ((v = bench_option_value(argc, argv, &i, "--reps"))) o->reps = (int)bench_parse_long("--reps", v, 1, 100000);
    else if ((v = bench_option_value(argc, argv, &i, "-o"))) o->format = bench_parse_format("-o", v);
    else bench_usage_error("model: unknown option \"%s\"", argv[i]);
  }
  if ((o->model_dir == NULL) == (o->synthetic == NULL))
    bench_usage_error("model: give exactly one of --model PATH and --synthetic NAME");
  if (o->model_dir && (density_given || layers_given || seed_given || o->predictor_rank >= 0))
    bench_usage_error("model: --density, --layers, --seed and --predictor apply to --synthetic only");
  parse_modes(o, modes);
  parse_tests(o, tests);
  if (types) parse_types(o, types);
  else o->types[o->n_types++] = o->synthetic ? LZN_WEIGHTS_F32 : LZN_WEIGHTS_AS_STORED;
  char buf[512], *items[MODEL_MAX_ITEMS];
  bench_copy_list("--threads", buf, sizeof buf, threads);
  const size_t n = bench_split_list("--threads", buf, items, MODEL_MAX_ITEMS);
  for (size_t k = 0; k < n; k++)
    o->threads[o->n_threads++] = (int)bench_parse_long("--threads", items[k], 1, 1024);
}

/* Parameters from the sizes: embeddings (and an untied LM head for the
 * gated family, OPT's learned positions), per layer the attention matrices
 * (GQA: smaller K and V), 2 (OPT) or 3 (gated) MLP matrices, biases and
 * norms. (A model with project_in/out has a few more.) */
static int64_t count_params(const lzn_model_info *i) {
  const int64_t d = i->d_model, f = i->d_ff, kv = (int64_t)i->n_kv_heads * i->head_dim;
  const int64_t q = (int64_t)i->n_heads * i->head_dim;
  const int64_t fixed = i->gated ? 2 * (int64_t)i->vocab_size * d + d
                                 : (int64_t)i->vocab_size * d + (int64_t)(i->max_positions + 2) * d + 2 * d;
  const int64_t per_layer = 2 * d * q + 2 * d * kv + (i->gated ? 3 : 2) * d * f + (i->gated ? 2 * d : f + 9 * d);
  return fixed + (int64_t)i->n_layers * per_layer;
}

static void make_subject(const model_options *o, lzn_weight_type type, model_subject *s) {
  memset(s, 0, sizeof *s);
  s->type = type, s->type_name = type == LZN_WEIGHTS_AS_STORED ? "as stored" : bench_type_name(type);
  const double t0 = bench_now();
  lzn_status status;
  if (o->synthetic) {
    status = lzn_model_synthetic_typed(o->synthetic, (float)(o->density_pct / 100.0), o->n_layers,
                                       o->seed, type, &s->model);
    snprintf(s->name, sizeof s->name, "%s synthetic", o->synthetic);
    s->synthetic = 1;
    if (status == LZN_OK && o->predictor_rank >= 0) {
      lzn_model_info info = {.struct_size = sizeof info};
      lzn_model_get_info(s->model, &info);
      const int rank = o->predictor_rank ? o->predictor_rank : info.d_model / 16;
      status = lzn_model_synthetic_add_predictor(s->model, (float)(o->density_pct / 100.0), rank,
                                                 o->predicted_ratio, o->predictor_type, o->seed);
      const size_t used = strlen(s->name);
      snprintf(s->name + used, sizeof s->name - used, " + rank-%d %s predictor (%gx)", rank,
               bench_type_name(o->predictor_type), o->predicted_ratio);
    }
    /* as lzn_model_load does, once the predictor (if any) is in place */
    if (status == LZN_OK && !o->no_pack) status = lzn_model_pack(s->model, SIZE_MAX, 1);
  } else {
    lzn_model_params params;
    lzn_model_params_init(&params, sizeof params);
    params.weight_type = type;
    if (o->predictor_type_given) params.predictor_type = o->predictor_type;
    if (o->no_pack) params.pack_budget = 0;
    params.use_mmap = !o->no_mmap;
    status = lzn_model_load(o->model_dir, &params, &s->model);
    /* The folder's last component: "facebook/opt-125m/" -> "opt-125m". */
    size_t len = strlen(o->model_dir);
    while (len > 1 && o->model_dir[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && o->model_dir[start - 1] != '/') start--;
    snprintf(s->name, sizeof s->name, "%.*s", (int)(len - start), o->model_dir + start);
  }
  if (status == LZN_ERR_NOMEM && o->synthetic)
    bench_fail("%s: %s; --layers N sets the layer count", lzn_status_str(status), lzn_last_error());
  if (status != LZN_OK) bench_fail("%s: %s", lzn_status_str(status), lzn_last_error());
  s->build_seconds = bench_now() - t0;
  s->info.struct_size = sizeof s->info;
  if (lzn_model_get_info(s->model, &s->info) != LZN_OK) bench_fail("%s", lzn_last_error());
  s->params = count_params(&s->info);
  if (o->synthetic && o->n_layers) {
    const size_t used = strlen(s->name);
    snprintf(s->name + used, sizeof s->name - used, " %dL", s->info.n_layers);
  }
}

/* A depth that leaves no room for the longest test is lowered to fit the
 * model's positions (opt-1.3b has 2048: --depth 2048 tg16 runs at 2032),
 * and the report says so. */
static void fit_depth(model_options *o, const model_subject *s) {
  int longest = 0;
  for (size_t k = 0; k < o->n_tests; k++) longest = o->tests[k].n > longest ? o->tests[k].n : longest;
  if (o->depth > 0 && o->depth + longest > s->info.max_positions) {
    o->depth = s->info.max_positions - longest;
    if (o->depth < 1)
      bench_usage_error("--depth: no room for a context before %d test tokens", longest);
  }
}

static void check_tests(const model_options *o, const model_subject *s) {
  for (size_t k = 0; k < o->n_tests; k++) {
    const model_test *t = &o->tests[k];
    /* tg: + the 1-token prompt, or the depth */
    const int tokens = t->n + (o->depth ? o->depth : t->kind == MODEL_TEST_TG);
    if (tokens > s->info.max_positions)
      bench_usage_error("--test %s: %d tokens exceed the model's %d positions", t->name, tokens,
                        s->info.max_positions);
  }
}

int bench_model_main(int argc, char **argv) {
  model_options o;
  parse_options(&o, argc, argv);
  if (lzn_isa_name() == NULL) bench_fail("%s", lzn_last_error());
  /* One model at a time, freed after its runs: a 6.7B model fits in RAM
   * in one type at a time, not in five. */
  model_subject subjects[MODEL_MAX_ITEMS];
  const size_t per_subject = o.n_threads * o.n_modes * o.n_tests;
  model_result *results = calloc(o.n_types * per_subject, sizeof *results);
  if (results == NULL) bench_fail("out of memory");
  for (size_t t = 0; t < o.n_types; t++) {
    make_subject(&o, o.types[t], &subjects[t]);
    fit_depth(&o, &subjects[t]);
    check_tests(&o, &subjects[t]);
    const int busy = o.contend ? bench_start_busy_loop() : 0;
    model_measure(&o, &subjects[t], results + t * per_subject);
    bench_stop_busy_loop(busy);
    subjects[t].pages = bench_resident_pages(o.model_dir);
    lzn_model_free(subjects[t].model);
    subjects[t].model = NULL;
  }
  model_report(&o, subjects, o.n_types, results);
  free(results);
  return 0;
}
