/*
 * model_report.c: the results of `lzn-bench model` as records (one per row,
 * see output.h), the md table and the sparse-vs-dense ratios that the
 * project's targets are stated in.
 */
#include <dnnl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <string.h>

#include "linalg/exec.h" /* lzn_backend: who ran the batched products */
#include "model_mode.h"

/* Decode targets (issue: synthetic opt-1.3b at 5 % density, one token per
 * call): MLP block and whole step faster sparse than dense by these factors;
 * AUTO within this fraction of the faster fixed mode. */
#define TARGET_MLP_SPEEDUP 1.85
#define TARGET_STEP_SPEEDUP 1.35
#define TARGET_AUTO_VS_BEST 0.97

const char *model_mode_name(lzn_mlp_mode mode) {
  return mode == LZN_MLP_SPARSE ? "sparse" : mode == LZN_MLP_DENSE ? "dense" : "auto";
}

/* Dense decode in a type against our own fp32 dense decode (issue targets:
 * the bytes allow 2x, 3.8x, 7.1x; llama.cpp reached 1.8 / 2.8-3.2 / 3.4-5.3x). */
static const double target_vs_f32_dense[LZN_WEIGHTS_Q4_0 + 1] = {
    [LZN_WEIGHTS_F16] = 1.8, [LZN_WEIGHTS_BF16] = 1.8, [LZN_WEIGHTS_Q8_0] = 3.3, [LZN_WEIGHTS_Q4_0] = 5.5};

/* The row of the same subject, threads and test in another mode, or NULL. */
static const model_result *find_row(const model_options *o, const model_result *results,
                                    size_t n, const model_result *like, lzn_mlp_mode mode) {
  (void)o;
  for (size_t i = 0; i < n; i++)
    if (results[i].subject == like->subject && results[i].mode == mode &&
        results[i].threads == like->threads && results[i].test == like->test)
      return &results[i];
  return NULL;
}

/* The row of the same mode, threads and test for the F32 subject, or NULL. */
static const model_result *find_f32_row(const model_result *results, size_t n,
                                        const model_result *like, lzn_mlp_mode mode) {
  for (size_t i = 0; i < n; i++)
    if (results[i].subject->type == LZN_WEIGHTS_F32 && results[i].mode == mode &&
        results[i].threads == like->threads && results[i].test == like->test)
      return &results[i];
  return NULL;
}

static double mlp_ms(const model_result *r) { return r->up_ms + r->down_ms; }

static json_t *real_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *make_record(const model_options *o, const model_result *r, const model_result *results,
                           size_t n) {
  const model_subject *s = r->subject;
  json_t *rec = json_object();
  if (rec == NULL) bench_fail("out of memory");
  const model_result *dense = find_row(o, results, n, r, LZN_MLP_DENSE);
  const model_result *sparse = find_row(o, results, n, r, LZN_MLP_SPARSE);
  const double t_s = r->tokens_per_second.median;
  double vs_best = NAN;
  if (r->mode == LZN_MLP_AUTO && dense && sparse)
    vs_best = t_s / fmax(dense->tokens_per_second.median, sparse->tokens_per_second.median);
  bench_set(rec, "model", json_string(s->name));
  bench_set(rec, "params", json_integer(s->params));
  bench_set(rec, "type", json_string(s->type_name));
  bench_set(rec, "weight_bytes", json_integer(s->info.weight_bytes));
  bench_set(rec, "n_layers", json_integer(s->info.n_layers));
  bench_set(rec, "isa", json_string(lzn_isa_name()));
  bench_set(rec, "threads", json_integer(r->threads));
  bench_set(rec, "contended", json_boolean(o->contend));
  bench_set(rec, "mode", json_string(model_mode_name(r->mode)));
  bench_set(rec, "test", json_string(r->test->name));
  /* Percent: as asked for a synthetic model, as measured for a real one. */
  bench_set(rec, "density", json_real(s->synthetic ? o->density_pct : 100.0 * r->active_fraction));
  bench_set(rec, "reps", json_integer(o->reps));
  bench_set(rec, "t_s", json_real(t_s));
  bench_set(rec, "t_s_min", json_real(r->tokens_per_second.min));
  bench_set(rec, "t_s_max", json_real(r->tokens_per_second.max));
  bench_set(rec, "ms_per_token", json_real(1e3 / t_s));
  bench_set(rec, "attention_ms", json_real(r->attention_ms));
  bench_set(rec, "up_ms", json_real(r->up_ms));
  bench_set(rec, "down_ms", json_real(r->down_ms));
  bench_set(rec, "other_ms", json_real(r->other_ms));
  /* Who ran the products of many tokens (pp): the kernel table's gemm
   * kernels ("own"), oneDNN, libxsmm; one-token steps are the GEMV's. */
  char kernels[48] = "";
  static const char *const backend_names[LZN_BACKEND_COUNT] = {"", "own", "oneDNN", "libxsmm"};
  for (int b = 1; b < LZN_BACKEND_COUNT; b++)
    if (r->kernels & (1u << b))
      snprintf(kernels + strlen(kernels), sizeof kernels - strlen(kernels), "%s%s", kernels[0] ? "+" : "",
               backend_names[b]);
  bench_set(rec, "kernels", json_string(kernels[0] ? kernels : "GEMV"));
  bench_set(rec, "kv_type", json_string(bench_kv_name(o->kv_type)));
  bench_set(rec, "depth", json_integer(o->depth));
  bench_set(rec, "kv_cache_bytes", json_integer(r->kv_cache_bytes));
  bench_set(rec, "attention_core_ms", json_real(r->attention_core_ms));
  bench_set(rec, "kv_bytes_per_token", json_real(r->kv_bytes_per_token));
  /* The core's K/V read rate: bytes over the core's time (it also ropes,
   * stores and takes exponentials, so this is a lower bound on the rate of
   * the reads themselves). */
  bench_set(rec, "kv_gb_per_s", json_real(r->attention_core_ms > 0 ? r->kv_bytes_per_token / (r->attention_core_ms * 1e6) : 0.0));
  bench_set(rec, "active_fraction", json_real(r->active_fraction));
  bench_set(rec, "flops_saved", json_real(r->flops_saved));
  bench_set(rec, "bytes_saved", json_real(r->bytes_saved));
  bench_set(rec, "sparse_call_fraction", json_real(r->sparse_call_fraction));
  bench_set(rec, "speedup_vs_dense", dense ? real_or_null(t_s / dense->tokens_per_second.median) : json_null());
  bench_set(rec, "mlp_speedup_vs_dense", dense ? real_or_null(mlp_ms(dense) / mlp_ms(r)) : json_null());
  bench_set(rec, "auto_vs_best", real_or_null(vs_best));
  const model_result *f32 = find_f32_row(results, n, r, r->mode);
  bench_set(rec, "speedup_vs_f32_same_mode",
            f32 ? real_or_null(t_s / f32->tokens_per_second.median) : json_null());
  const bench_pages *pg = &r->subject->pages; /* the model's, after its runs */
  bench_set(rec, "file_gib", json_real(pg->file_gib));
  bench_set(rec, "file_huge_gib", json_real(pg->file_huge_gib));
  bench_set(rec, "private_gib", json_real(pg->private_gib));
  bench_set(rec, "private_huge_gib", json_real(pg->private_huge_gib));
  return rec;
}

/* "1.32 B", "125.2 M": as llama-bench prints parameter counts. */
static json_t *params_text(int64_t params) {
  char text[32];
  if (params >= 1000000000) snprintf(text, sizeof text, "%.2f B", (double)params / 1e9);
  else snprintf(text, sizeof text, "%.1f M", (double)params / 1e6);
  return json_string(text);
}

/* A copy of the records with what md shows differently: the parameter count
 * as text, fractions as percents. */
static json_t *md_records(const json_t *records) {
  json_t *rows = json_array();
  if (rows == NULL) bench_fail("out of memory");
  size_t i;
  const json_t *rec;
  json_array_foreach(records, i, rec) {
    json_t *row = json_deep_copy(rec);
    if (row == NULL) bench_fail("out of memory");
    bench_set(row, "params", params_text(json_integer_value(json_object_get(rec, "params"))));
    bench_set(row, "size_gib", json_real((double)json_integer_value(json_object_get(rec, "weight_bytes")) / (1u << 30)));
    bench_set(row, "active_pct", json_real(100.0 * json_real_value(json_object_get(rec, "active_fraction"))));
    bench_set(row, "flops_saved_pct", json_real(100.0 * json_real_value(json_object_get(rec, "flops_saved"))));
    bench_set(row, "bytes_saved_pct", json_real(100.0 * json_real_value(json_object_get(rec, "bytes_saved"))));
    bench_set(row, "kv_mb", json_real(json_real_value(json_object_get(rec, "kv_bytes_per_token")) / 1e6));
    if (json_array_append_new(rows, row) != 0) bench_fail("out of memory");
  }
  return rows;
}

static const bench_column md_columns[] = {
    {"model", "model", NULL, NULL, 0},
    {"params", "params", NULL, NULL, 0},
    {"type", "type", NULL, NULL, 0},
    {"GiB", "size_gib", NULL, NULL, 2},
    {"isa", "isa", NULL, NULL, 0},
    {"threads", "threads", NULL, NULL, 0},
    {"mode", "mode", NULL, NULL, 0},
    {"test", "test", NULL, NULL, 0},
    {"t/s (median [min-max])", "t_s", "t_s_min", "t_s_max", 2},
    {"active %", "active_pct", NULL, NULL, 2},
    {"MLP FLOPs saved %", "flops_saved_pct", NULL, NULL, 1},
    {"bytes saved %", "bytes_saved_pct", NULL, NULL, 1},
    {"attn ms/t", "attention_ms", NULL, NULL, 3},
    {"kv", "kv_type", NULL, NULL, 0},
    {"attn core ms/t", "attention_core_ms", NULL, NULL, 3},
    {"KV MB read/t", "kv_mb", NULL, NULL, 2},
    {"KV GB/s", "kv_gb_per_s", NULL, NULL, 2},
    {"up ms/t", "up_ms", NULL, NULL, 3},
    {"down ms/t", "down_ms", NULL, NULL, 3},
    {"other ms/t", "other_ms", NULL, NULL, 3},
    {"kernels", "kernels", NULL, NULL, 0},
};

static void print_md_header(const model_options *o, const model_subject *s, size_t n_subjects) {
  const dnnl_version_t *v = dnnl_version();
  printf("lzn-bench model | CPU: %s | ISA: %s | reps %d (+1 warm-up) | THP: %s | lazyneuron %s, "
         "oneDNN %d.%d.%d\n\n", bench_cpu_model(), lzn_isa_name(), o->reps, bench_thp_mode(),
         lzn_version_string(), v->major, v->minor, v->patch);
  const lzn_model_info *i = &s->info;
  if (s->synthetic)
    printf("Model: synthetic %s, random weights (seed %llu, rounded to each type) with %g %% of the MLP "
           "neurons firing per token; ", o->synthetic, (unsigned long long)o->seed, o->density_pct);
  else
    printf("Model: %s; ", o->model_dir);
  printf("%d layers, d_model %d, d_ff %d; weight matrices", i->n_layers, i->d_model, i->d_ff);
  for (size_t k = 0; k < n_subjects; k++)
    printf("%s %s %.2f GiB (made in %.1f s, not timed)", k ? "," : "", s[k].type_name,
           (double)s[k].info.weight_bytes / (1u << 30), s[k].build_seconds);
  printf(".\n");
  printf("Resident after each model's runs (/proc/self/smaps; on 4 KiB pages every 4 KiB "
         "of weights read is a TLB miss, README \"Mapped or read\"):");
  for (size_t k = 0; k < n_subjects; k++)
    printf("%s %s: the model's file pages %.2f GiB (%.2f on 2 MiB pages), private %.2f GiB (%.2f on 2 MiB pages)",
           k ? ";" : "", s[k].type_name, s[k].pages.file_gib, s[k].pages.file_huge_gib, s[k].pages.private_gib,
           s[k].pages.private_huge_gib);
  printf(".\n");
  if (o->depth > 0)
    printf("Depth: every test runs after a %d-token context (--depth %d%s). ", o->depth, o->depth_asked,
           o->depth != o->depth_asked ? ", lowered to leave room for the test in the model's positions" : "");
  if (o->contend) printf("Contended: a busy-looping process ran beside every run (--contend). ");
  printf("ppN: one lzn_forward of N tokens from an empty cache; tgN: N one-token calls after a "
         "1-token prompt. Block times are ms per token summed over layers (lzn_context_stats); "
         "other = total - attention - up - down (embeddings, norms, residuals, LM head). "
         "MLP FLOPs/bytes saved: of the down-projection, against dense.\n\n");
}

static const char *verdict(double value, double target) {
  return value >= target ? "met" : "missed";
}

/* Each type's dense decode against the F32 one, and sparse against F32 dense. */
static void print_type_ratios(const model_result *results, size_t n) {
  int printed = 0;
  for (size_t i = 0; i < n; i++) {
    const model_result *r = &results[i];
    if (r->mode != LZN_MLP_DENSE || r->subject->type == LZN_WEIGHTS_F32) continue;
    const model_result *f32 = find_f32_row(results, n, r, LZN_MLP_DENSE);
    if (!f32) continue;
    if (!printed++) printf("\nEach type's dense against F32 dense (same threads and test):\n");
    const double ratio = r->tokens_per_second.median / f32->tokens_per_second.median;
    const double target = target_vs_f32_dense[r->subject->type];
    printf("- %s %s, %d thread%s: %.2fx", r->subject->type_name, r->test->name, r->threads,
           r->threads > 1 ? "s" : "", ratio);
    if (r->test->kind == MODEL_TEST_TG && target > 0)
      printf(" (target >= %.1fx: %s)", target, ratio >= target ? "met" : "missed");
    else if (r->test->kind == MODEL_TEST_PP)
      printf(" (target >= 1.0x: %s)", ratio >= 1.0 ? "met" : "missed");
    printf("\n");
  }
}

/* Sparse against dense per (subject, threads, test), and auto against the faster. */
static void print_ratios(const model_options *o, const model_result *results, size_t n) {
  int printed = 0;
  for (size_t i = 0; i < n; i++) {
    const model_result *r = &results[i];
    if (r->mode != o->modes[0]) continue; /* one line per (subject, threads, test) */
    const model_result *sparse = find_row(o, results, n, r, LZN_MLP_SPARSE);
    const model_result *dense = find_row(o, results, n, r, LZN_MLP_DENSE);
    const model_result *automatic = find_row(o, results, n, r, LZN_MLP_AUTO);
    if (!sparse || !dense) continue;
    const int tg = r->test->kind == MODEL_TEST_TG;
    if (!printed++) printf("\nSparse against dense in the same type (targets for tg at 5 %% density):\n");
    const double step = sparse->tokens_per_second.median / dense->tokens_per_second.median;
    const double mlp = mlp_ms(dense) / mlp_ms(sparse);
    printf("- %s %s, %d thread%s: whole step %.2fx", r->subject->type_name, r->test->name, r->threads,
           r->threads > 1 ? "s" : "", step);
    if (tg) printf(" (target >= %.2fx: %s)", TARGET_STEP_SPEEDUP, verdict(step, TARGET_STEP_SPEEDUP));
    printf(", MLP block (up+down) %.2fx", mlp);
    if (tg) printf(" (target >= %.2fx: %s)", TARGET_MLP_SPEEDUP, verdict(mlp, TARGET_MLP_SPEEDUP));
    if (automatic) {
      const double best = fmax(sparse->tokens_per_second.median, dense->tokens_per_second.median);
      const double vs = automatic->tokens_per_second.median / best;
      printf(", auto %.3f of the faster (target >= %.2f: %s)", vs, TARGET_AUTO_VS_BEST,
             verdict(vs, TARGET_AUTO_VS_BEST));
    }
    printf("\n");
  }
}

void model_report(const model_options *o, const model_subject *subjects, size_t n_subjects,
                  const model_result *results) {
  json_t *records = json_array();
  if (records == NULL) bench_fail("out of memory");
  const size_t n = n_subjects * o->n_threads * o->n_modes * o->n_tests;
  for (size_t i = 0; i < n; i++)
    if (json_array_append_new(records, make_record(o, &results[i], results, n)) != 0)
      bench_fail("out of memory");
  if (o->format == BENCH_FORMAT_MD) {
    json_t *rows = md_records(records);
    print_md_header(o, subjects, n_subjects);
    bench_write_md_table(stdout, md_columns, sizeof md_columns / sizeof md_columns[0], rows);
    print_ratios(o, results, n);
    print_type_ratios(results, n);
    json_decref(rows);
  } else if (o->format == BENCH_FORMAT_JSON) {
    bench_write_json(stdout, records);
  } else {
    bench_write_csv(stdout, records);
  }
  json_decref(records);
}
