/*
 * load.c: `lzn-bench load MODEL`: what a load costs, and what a second
 * process that loads the same file adds to the machine's memory.
 *
 * A model whose matrices are used in place (a GGUF file in the type it is
 * loaded in, W_down stored transposed) is a pure mmap: the weights are the
 * page cache's pages, shared by every process that maps the file. So the
 * figure that matters for a second server process is its private memory
 * (RssAnon: KV cache, scratch, whatever the load had to convert), not its
 * RSS, which also counts the shared file pages it touched (RssFile).
 *
 * Packed copies (lzn_model_params.pack_budget, default all) are private
 * memory by design; --pack-budget MIB (0: none) shows the load without
 * them.
 *
 * The run: one untimed load to fill the page cache, then the timed loads
 * (median), then a child process (fork + exec of this binary, so it shares
 * nothing with the parent but the page cache) that loads the file while the
 * parent still holds it, creates a context, runs one token and reports its
 * /proc/self/status memory at each step.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "lazyneuron.h"

/* kB of a /proc/self/status field ("VmRSS", "RssAnon", "RssFile"). */
static long status_kb(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  char line[256];
  long kb = -1;
  const size_t len = strlen(field);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, len) == 0 && line[len] == ':') kb = strtol(line + len + 1, NULL, 10);
  fclose(f);
  return kb;
}

static void print_memory(const char *when) {
  printf("  %-22s RSS %8.1f MiB = private (RssAnon) %8.1f MiB + file pages (RssFile) %8.1f MiB\n",
         when, status_kb("VmRSS") / 1024.0, status_kb("RssAnon") / 1024.0, status_kb("RssFile") / 1024.0);
}

static size_t pack_budget = SIZE_MAX; /* --pack-budget */
static int load_threads = 1;         /* --threads */
static int load_mmap = 1;            /* 0: --no-mmap */

static lzn_model *load(const char *path, double *seconds) {
  lzn_model *m = NULL;
  lzn_model_params params;
  lzn_model_params_init(&params, sizeof params);
  params.pack_budget = pack_budget;
  params.n_threads = load_threads;
  params.use_mmap = load_mmap;
  const double t0 = bench_now();
  const lzn_status s = lzn_model_load(path, &params, &m);
  *seconds = bench_now() - t0;
  if (s != LZN_OK) bench_fail("%s: %s: %s", path, lzn_status_str(s), lzn_last_error());
  return m;
}

/* The second process: load, context, one token, memory after each. */
static int child_main(const char *path, int n_ctx) {
  printf("second process (pid %d), while the first holds the model:\n", (int)getpid());
  print_memory("before the load");
  double seconds;
  lzn_model *m = load(path, &seconds);
  print_memory("after the load");
  lzn_context_params p = lzn_context_default_params();
  p.n_ctx = n_ctx;
  p.mlp_mode = LZN_MLP_SPARSE; /* no cost measurement: it would touch layer 0 densely */
  lzn_context *ctx = NULL;
  if (lzn_context_create(m, &p, &ctx) != LZN_OK) bench_fail("%s", lzn_last_error());
  print_memory("after the context");
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_model_get_info(m, &info);
  float *logits = malloc(sizeof(float) * (size_t)info.vocab_size);
  const int32_t token = 1;
  if (lzn_forward(ctx, &token, 1, logits, LZN_LOGITS_LAST) != LZN_OK) bench_fail("%s", lzn_last_error());
  print_memory("after one token");
  printf("  load took %.3f s; the model's matrices are %.2f GiB, their packed copies %.2f GiB\n", seconds,
         (double)info.weight_bytes / (1u << 30), (double)info.packed_bytes / (1u << 30));
  free(logits);
  lzn_context_free(ctx);
  lzn_model_free(m);
  return 0;
}

int bench_load_main(int argc, char **argv);
int bench_load_main(int argc, char **argv) {
  const char *path = NULL;
  int reps = 5, child = 0, n_ctx = 512;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      printf("usage: lzn-bench load [--reps R] [--ctx N] [--pack-budget MIB] [--threads T] [--no-mmap] MODEL\n"
             "Median load time from the page cache, then the memory a second process adds\n"
             "when it loads the same model (context of N tokens, default 512). --pack-budget:\n"
             "lzn_model_params.pack_budget in MiB (default: no limit; 0: no packed copies).\n"
             "--threads: lzn_model_params.n_threads (default 1). --no-mmap:\n"
             "lzn_model_params.use_mmap = 0 (the weights read into private memory).\n");
      return 0;
    } else if ((v = bench_option_value(argc, argv, &i, "--reps"))) reps = (int)bench_parse_long("--reps", v, 1, 1000);
    else if ((v = bench_option_value(argc, argv, &i, "--ctx"))) n_ctx = (int)bench_parse_long("--ctx", v, 1, 1 << 20);
    else if ((v = bench_option_value(argc, argv, &i, "--pack-budget")))
      pack_budget = (size_t)bench_parse_long("--pack-budget", v, 0, 1L << 40) << 20;
    else if ((v = bench_option_value(argc, argv, &i, "--threads")))
      load_threads = (int)bench_parse_long("--threads", v, 1, 1024);
    else if (strcmp(argv[i], "--child") == 0) child = 1;
    else if (strcmp(argv[i], "--no-mmap") == 0) load_mmap = 0;
    else if (argv[i][0] != '-' && path == NULL) path = argv[i];
    else bench_usage_error("load: unexpected argument \"%s\"", argv[i]);
  }
  if (path == NULL) bench_usage_error("load: give a model path");
  if (child) return child_main(path, n_ctx);
  printf("lzn-bench load | CPU: %s | lazyneuron %s | %d load thread(s) | %s\n", bench_cpu_model(),
         lzn_version_string(), load_threads, path);
  double warm;
  lzn_model_free(load(path, &warm)); /* fills the page cache */
  double *t = malloc(sizeof(double) * (size_t)reps);
  for (int r = 0; r < reps; r++) lzn_model_free(load(path, &t[r]));
  bench_stats st = bench_summarize(t, (size_t)reps);
  printf("load from the page cache: median %.3f s [%.3f-%.3f] over %d loads (first, cold or not: %.3f s)\n",
         st.median, st.min, st.max, reps, warm);
  free(t);
  double seconds;
  lzn_model *held = load(path, &seconds);
  print_memory("first process, loaded");
  fflush(stdout);
  char ctx_text[16], budget_text[32];
  snprintf(ctx_text, sizeof ctx_text, "%d", n_ctx);
  snprintf(budget_text, sizeof budget_text, "%zu", pack_budget == SIZE_MAX ? (size_t)1 << 40 : pack_budget >> 20);
  const pid_t pid = fork();
  if (pid == 0) {
    /* The same load as this process's. */
    char *child_argv[10] = {"lzn-bench", "load", "--child", "--ctx", ctx_text, "--pack-budget", budget_text,
                            (char *)path};
    if (!load_mmap) child_argv[8] = "--no-mmap";
    execv("/proc/self/exe", child_argv);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  lzn_model_free(held);
  return WIFEXITED(status) ? WEXITSTATUS(status) : BENCH_EXIT_FAIL;
}
