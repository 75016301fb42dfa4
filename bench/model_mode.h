/*
 * model_mode.h: `lzn-bench model`, whole-model throughput (llama-bench's pp
 * and tg tests) with the MLP down-projection sparse, dense or auto. model.c
 * reads the command line and builds the model, model_measure.c times,
 * model_report.c prints.
 */
#ifndef LZN_BENCH_MODEL_MODE_H
#define LZN_BENCH_MODEL_MODE_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "lazyneuron.h"
#include "output.h"

#define MODEL_MAX_ITEMS 16

typedef enum model_test_kind {
  MODEL_TEST_PP, /* prompt processing: one call of n tokens from an empty cache */
  MODEL_TEST_TG  /* text generation: n one-token calls after a 1-token prompt */
} model_test_kind;

typedef struct model_test {
  model_test_kind kind;
  int n;
  char name[24]; /* "pp128", "tg32" */
} model_test;

typedef struct model_options {
  const char *model_dir;  /* --model, or NULL */
  const char *synthetic;  /* --synthetic, or NULL */
  int n_layers;           /* --layers, 0 = the model's */
  double density_pct;     /* --density, synthetic only */
  uint64_t seed;          /* --seed, synthetic weights */
  lzn_mlp_mode modes[3];
  size_t n_modes;
  model_test tests[MODEL_MAX_ITEMS];
  size_t n_tests;
  int threads[MODEL_MAX_ITEMS];
  size_t n_threads;
  int reps;
  bench_format format;
  lzn_weight_type types[MODEL_MAX_ITEMS]; /* --type: one model per type */
  size_t n_types;
  int depth;              /* --depth: tokens in the cache before each test (0: tg after 1) */
  int depth_asked;        /* --depth as given, before fitting the model's positions */
  lzn_kv_type kv_type;    /* --kv: the KV cache type (default F16, the library's) */
  int predictor_rank;     /* --predictor: synthetic predictor rank (0: d_model / 16; -1: none) */
  double predicted_ratio; /* --predicted-ratio: predicted set over active set */
  lzn_weight_type predictor_type; /* --predictor-type: its matrices' type */
  int predictor_type_given;       /* --predictor-type given: a --model's predictor converted */
  int contend;            /* --contend: a busy-looping process beside the timed runs */
  double threshold;       /* --threshold: lzn_context_params.threshold (0: the model's) */
  int no_pack;              /* --no-pack: lzn_model_params.pack_budget = 0 */
  int no_mmap;              /* --no-mmap: lzn_model_params.use_mmap = 0 */
} model_options;

/* The model under test and what describes it. */
typedef struct model_subject {
  lzn_model *model;
  lzn_model_info info;
  char name[96];         /* "opt-1.3b (synthetic)", or the folder's name */
  int synthetic;
  int64_t params;
  double build_seconds;  /* creation or load, never timed */
  lzn_weight_type type;  /* as asked (--type) */
  const char *type_name; /* "f32", ..., or "as stored" */
  bench_pages pages;     /* resident after its runs, before it is freed */
} model_subject;

/* One row: a mode, a thread count and a test, summarized over the reps.
 * Per-token block times are medians over the reps, each from the layers'
 * cumulative lzn_layer_stats over the timed calls only. */
typedef struct model_result {
  const model_subject *subject; /* the model (weight type) of the row */
  lzn_mlp_mode mode;
  int threads;
  const model_test *test;
  bench_stats tokens_per_second;
  double attention_ms, up_ms, down_ms, other_ms; /* per token */
  /* Of attention_ms: the core (RoPE, KV store, scores, softmax, weighted
   * sum; not the projections), and the K/V bytes it read per token. */
  double attention_core_ms, kv_bytes_per_token;
  int64_t kv_cache_bytes;      /* lzn_context_kv_bytes of the run's context */
  double active_fraction;      /* fc1 neurons active per token, mean over layers */
  double flops_saved, bytes_saved; /* of the down-projection, against dense */
  double sparse_call_fraction; /* down-projection calls that took the sparse path */
  unsigned kernels;            /* who ran the products of many tokens: bits 1 << lzn_backend (linalg/exec.h) */
} model_result;

/* Times every (threads, mode, test) of o on the subject, in that order of
 * nesting: results[(t * n_modes + m) * n_tests + k]. */
void model_measure(const model_options *o, const model_subject *subject, model_result *results);

/* Prints the results of every subject (n_subjects blocks of
 * n_threads * n_modes * n_tests rows) in o->format. */
void model_report(const model_options *o, const model_subject *subjects, size_t n_subjects,
                  const model_result *results);

const char *model_mode_name(lzn_mlp_mode mode);

#endif /* LZN_BENCH_MODEL_MODE_H */
