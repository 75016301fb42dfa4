/*
 * lzn-bench: benchmarks of lazyneuron. One subcommand per mode, dispatched on
 * argv[1]; each mode lives in its own file (kernels.c, model.c, quality.c,
 * export.c, load.c, batch.c, union.c) and shares common.c and output.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "machine.h"
#include "lazyneuron.h"

static int isa_main(int argc, char **argv);
int bench_export_main(int argc, char **argv); /* export.c */
int bench_load_main(int argc, char **argv);   /* load.c */
int bench_batch_main(int argc, char **argv);  /* batch.c */
int bench_union_main(int argc, char **argv);  /* union.c */
int bench_gemm_main(int argc, char **argv);   /* gemm.c */
int bench_clients_main(int argc, char **argv); /* clients.c */

typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} command;

static const command commands[] = {
    {"kernels", bench_kernels_main,
     "sparse down-projection (per ISA) against oneDNN's dense one, cold cache"},
    {"model", bench_model_main,
     "tokens/s of whole forward calls (pp, tg), sparse/dense/auto MLP, per-block times"},
    {"quality", bench_quality_main,
     "held-out bits per byte against the active fraction, for each top_k (byte-level models)"},
    {"batch", bench_batch_main, "decode steps of N sequences batched against one call each"},
    {"gemm", bench_gemm_main, "the products of N tokens by each backend: own kernels, oneDNN, libxsmm"},
    {"union", bench_union_main, "how the union of active neurons grows with the tokens of a call, per layer"},
    {"export", bench_export_main, "a synthetic LLaMA-family model written as GGUF (lzn-convert's layout)"},
    {"load", bench_load_main, "load time from the page cache, and the memory a second process adds"},
    {"clients", bench_clients_main, "N concurrent streaming clients against a running lzn-server (bench/serve.py)"},
    {"isa", isa_main, "the kernel set in use and the ones this machine supports"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
  fprintf(out, "usage: lzn-bench <command> [options]   (lzn-bench <command> --help)\n\ncommands:\n");
  for (size_t i = 0; i < N_COMMANDS; i++)
    fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
}

/* Two lines, so scripts can read them: "active: avx512  supported: scalar
 * avx2 avx512", then the machine (CPU, LLC, CPUs, RAM) as the other commands
 * print it in their headers. */
static int isa_main(int argc, char **argv) {
  if (argc > 1) {
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
      printf("usage: lzn-bench isa\nPrints the active kernel set (LZN_ISA forces one), the supported ones,\n"
             "and the machine: CPU, last-level cache, CPUs, RAM.\n");
      return 0;
    }
    bench_usage_error("isa: unexpected argument \"%s\"", argv[1]);
  }
  const char *active = lzn_isa_name();
  printf("active: %s  supported:", active ? active : "none");
  for (int i = 0; lzn_isa_name_at(i) != NULL; i++)
    if (lzn_isa_supported(lzn_isa_name_at(i))) printf(" %s", lzn_isa_name_at(i));
  putchar('\n');
  bench_machine m;
  char line[512];
  bench_machine_detect(&m);
  bench_machine_describe(&m, line, sizeof line);
  puts(line);
  if (active == NULL) {
    fprintf(stderr, "lzn-bench: %s\n", lzn_last_error());
    return BENCH_EXIT_FAIL;
  }
  return 0;
}

/* `kernels` flushes the caches before every timed call with a read on
 * OpenMP threads (and times oneDNN, which runs on them too). Left to
 * libgomp's default, those threads spin for milliseconds after each region:
 * on a 2-core machine they held the core that the library's pool needed
 * next, and 2-thread GEMVs measured at one thread's speed (Q4_0 11008 x
 * 4096: 1.17-1.23 ms against 0.74-0.86 ms with them asleep). libgomp reads
 * the policy once, when it loads, so the mode starts itself again with
 * OMP_WAIT_POLICY=passive unless the caller set one. */
static void kernels_with_idle_omp_asleep(char **argv) {
  if (getenv("OMP_WAIT_POLICY") != NULL || setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
  execv("/proc/self/exe", argv);
  fprintf(stderr, "lzn-bench: could not restart with OMP_WAIT_POLICY=passive; OpenMP threads may spin beside the "
                  "library's\n");
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "kernels") == 0) kernels_with_idle_omp_asleep(argv);
  if (argc < 2) {
    usage(stderr);
    return BENCH_EXIT_USAGE;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return 0;
  }
  for (size_t i = 0; i < N_COMMANDS; i++)
    if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "lzn-bench: unknown command \"%s\"\n", argv[1]);
  usage(stderr);
  return BENCH_EXIT_USAGE;
}
