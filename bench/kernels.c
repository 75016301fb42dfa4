/*
 * kernels.c: `lzn-bench kernels`, the down-projection of one token,
 * y[D] = W_down . h, sparse (the active rows of W_down^T, per ISA) against
 * dense (oneDNN's matmul over all of W_down), both with cold caches. This
 * file reads the command line; kernels_measure.c times, kernels_report.c
 * prints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels_mode.h"
#include "workload.h"

static void help(void) {
  printf(
      "usage: lzn-bench kernels [options]\n"
      "Times the MLP down-projection of one token, y[D] = W_down . h with density %% of h active:\n"
      "sparse = lzn_sparse_down_run over the active rows of W_down^T [F][D], per ISA;\n"
      "dense  = oneDNN matmul over W_down [D][F]. Cold cache: weight copies >= 4x L3, a fresh\n"
      "random active set per call, caches flushed before each call.\n\n"
      "  --shape DxF[,DxF...]    d_model x d_ff (default 2048x8192,4096x11008)\n"
      "  --density P[,P...]      active percent, in (0, 100] (default 1,3,5,10,20,30,50,100)\n"
      "  --isa NAME[,NAME...]    scalar, avx2, avx512 (default: all this machine supports)\n"
      "  --threads N[,N...]      threads per call (default 1)\n"
      "  --reps R                timed calls per measurement, after 1 warm-up (default 20)\n"
      "  -o md|json|csv          output format (default md)\n"
      "  --l3-mib N              last-level cache size assumed (default 32)\n"
      "  --no-flush              do not flush the caches before each call\n"
      "  --no-hugepages          do not madvise the weights for transparent huge pages\n"
      "  -h, --help              this text\n");
}

/* The table LZN_ISA=name would give, so ISAs compare within one run. */
static void add_isa(kernels_options *o, const char *name, int explicit_choice) {
  const int isa = lzn_isa_from_name(name);
  if (isa < 0) bench_usage_error("--isa: unknown ISA \"%s\" (scalar, avx2, avx512, ...)", name);
  if (!lzn_isa_supported(name)) {
    if (explicit_choice) fprintf(stderr, "lzn-bench: note: skipping %s, which this CPU/OS (or build) lacks\n", name);
    return;
  }
  for (size_t i = 0; i < o->n_isas; i++)
    if (strcmp(o->isas[i].name, name) == 0) return;
  lzn_kernel_table_fill((enum lzn_isa)isa, lzn_cpu_supported_isas(), &o->isas[o->n_isas++]);
}

static void parse_shape(kernels_options *o, char *text) {
  char *x = strchr(text, 'x');
  if (x == NULL) bench_usage_error("--shape: \"%s\" is not DxF", text);
  *x = '\0';
  const long max = INT32_MAX; /* indices are int32_t */
  o->d_model[o->n_shapes] = bench_parse_long("--shape D", text, 1, max);
  o->d_ff[o->n_shapes] = bench_parse_long("--shape F", x + 1, 1, max);
  if (o->d_model[o->n_shapes] * o->d_ff[o->n_shapes] > ((int64_t)1 << 36))
    bench_usage_error("--shape: %sx%s is over 256 GiB per copy", text, x + 1);
  o->n_shapes++;
}

static int compare_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}


static void parse_options(kernels_options *o, int argc, char **argv) {
  const char *shapes = "2048x8192,4096x11008", *densities = "1,3,5,10,20,30,50,100";
  const char *isas = NULL, *threads = "1";
  *o = (kernels_options){.reps = 20, .format = BENCH_FORMAT_MD, .l3_bytes = 32 * MIB, .huge_pages = 1, .flush = 1};
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      help();
      exit(0);
    } else if ((v = bench_option_value(argc, argv, &i, "--shape"))) shapes = v;
    else if ((v = bench_option_value(argc, argv, &i, "--density"))) densities = v;
    else if ((v = bench_option_value(argc, argv, &i, "--isa"))) isas = v;
    else if ((v = bench_option_value(argc, argv, &i, "--threads"))) threads = v;
    else if ((v = bench_option_value(argc, argv, &i, "--reps"))) o->reps = (int)bench_parse_long("--reps", v, 1, 100000);
    else if ((v = bench_option_value(argc, argv, &i, "-o"))) o->format = bench_parse_format("-o", v);
    else if ((v = bench_option_value(argc, argv, &i, "--l3-mib"))) o->l3_bytes = (size_t)bench_parse_long("--l3-mib", v, 1, 65536) * MIB;
    else if (strcmp(argv[i], "--no-flush") == 0) o->flush = 0;
    else if (strcmp(argv[i], "--no-hugepages") == 0) o->huge_pages = 0;
    else bench_usage_error("kernels: unknown option \"%s\"", argv[i]);
  }
  char buf[4096], *items[KERNELS_MAX_ITEMS];
  size_t n;
  bench_copy_list("--shape", buf, sizeof buf, shapes);
  n = bench_split_list("--shape", buf, items, KERNELS_MAX_ITEMS);
  for (size_t k = 0; k < n; k++) parse_shape(o, items[k]);
  bench_copy_list("--density", buf, sizeof buf, densities);
  n = bench_split_list("--density", buf, items, KERNELS_MAX_ITEMS);
  for (size_t k = 0; k < n; k++) {
    const double p = bench_parse_double("--density", items[k]);
    if (!(p > 0.0 && p <= 100.0)) bench_usage_error("--density: %g is outside (0, 100]", p);
    o->densities[o->n_densities++] = p;
  }
  /* Ascending and distinct: the crossover interpolates between neighbours. */
  qsort(o->densities, o->n_densities, sizeof o->densities[0], compare_double);
  size_t kept = 0;
  for (size_t k = 0; k < o->n_densities; k++)
    if (kept == 0 || o->densities[k] != o->densities[kept - 1]) o->densities[kept++] = o->densities[k];
  o->n_densities = kept;
  bench_copy_list("--isa", buf, sizeof buf, isas ? isas : "scalar,avx2,avx512");
  n = bench_split_list("--isa", buf, items, KERNELS_MAX_ITEMS);
  for (size_t k = 0; k < n; k++) add_isa(o, items[k], isas != NULL);
  if (o->n_isas == 0) bench_usage_error("--isa: none of the ISAs asked for runs here");
  bench_copy_list("--threads", buf, sizeof buf, threads);
  n = bench_split_list("--threads", buf, items, KERNELS_MAX_ITEMS);
  for (size_t k = 0; k < n; k++)
    o->threads[o->n_threads++] = (int)bench_parse_long("--threads", items[k], 1, LZN_MAX_THREADS);
}

/* Fails up front, not after minutes of measuring, when a shape's copies
 * (both layouts at once) would not fit in 3/4 of the RAM. */
static void check_memory(const kernels_options *o) {
  const double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
  for (size_t s = 0; s < o->n_shapes; s++) {
    const size_t bytes = (size_t)(o->d_model[s] * o->d_ff[s]) * sizeof(float);
    const double need = 2.0 * (double)weight_copies_needed(bytes, o->l3_bytes) * (double)bytes;
    if (ram > 0 && need > 0.75 * ram)
      bench_fail("%lldx%lld needs %.0f MiB of weight copies, more than 3/4 of the %.0f MiB of RAM",
                 (long long)o->d_model[s], (long long)o->d_ff[s], need / MIB, ram / MIB);
  }
}

int bench_kernels_main(int argc, char **argv) {
  kernels_options o;
  parse_options(&o, argc, argv);
  check_memory(&o);
  const size_t per_shape = o.n_threads * o.n_isas * o.n_densities;
  kernels_result *results = calloc(o.n_shapes * per_shape, sizeof *results);
  void *flush_buffer = bench_alloc_big(2 * o.l3_bytes, 0);
  if (results == NULL) bench_fail("out of memory");
  memset(flush_buffer, 1, 2 * o.l3_bytes);
  bench_rng rng = {0x6c617a796e6575ull}; /* fixed: runs draw the same active sets */
  for (size_t s = 0; s < o.n_shapes; s++)
    kernels_measure_shape(&o, (size_t)o.d_model[s], (size_t)o.d_ff[s], flush_buffer, &rng, results + s * per_shape);
  free(flush_buffer);
  const int mismatch = kernels_report(&o, results);
  free(results);
  return mismatch ? BENCH_EXIT_FAIL : 0;
}
