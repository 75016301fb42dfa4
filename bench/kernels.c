/*
 * kernels.c: `lzn-bench kernels`, per weight type: the down-projection of
 * one token, y[D] = W_down . h, sparse (the active rows of W_down^T, per
 * ISA) against dense (oneDNN's fp32 matmul over all of W_down; for the
 * other types that type's gemv over all rows), and the GEMV over all rows
 * of W_t, all with cold caches, next to the machine's streaming read
 * bandwidth. This file reads the command line, sizes the working sets from
 * the machine and measures the stream; kernels_measure.c times the kernels,
 * kernels_report.c prints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "kernels_mode.h"
#include "linalg/exec.h"
#include "workload.h"

/* Most of the RAM that the weight copies of one type (both layouts) and the
 * stream buffer (which is also the flush buffer) may each take: the machine
 * is shared, and a benchmark that swaps measures the disk. */
#define RAM_FRACTION 4 /* 1/4 */


static void help(void) {
  printf(
      "usage: lzn-bench kernels [options]\n"
      "Times, per weight type, the MLP down-projection of one token, y[D] = W_down . h with\n"
      "density %% of h active, the gathered dot products of the active rows, and the GEMV\n"
      "out[F] = W_t . x over all rows:\n"
      "down    = lzn_sparse_down_run (axpy_rows) over the active rows of W_down^T [F][D], per ISA;\n"
      "down_q8 = the same rows through axpy_rows_q8 (coefficients rounded to int8 per group of rows),\n"
      "          as the forward pass runs it (both: threads on parts of the rows);\n"
      "dot     = dot_rows over the active rows of W_t against x, rows split among threads;\n"
      "dense  = oneDNN fp32 matmul over W_down [D][F] for f32, the same type's gemv over all\n"
      "         rows of W_down [D][F] (same ISA) for the other types;\n"
      "gemv   = the type's gemv over W_t [F][D], rows split among threads, against oneDNN (f32).\n"
      "Weights are the fp32 workload converted by the reference from_f32; for q8_0/q4_0, x is\n"
      "quantized to Q8_0 in every call, inside the timing. GB/s are weight bytes read, also as\n"
      "%% of the streaming read bandwidth measured in the same run, and of a plain read of the same\n"
      "rows (gather). Cold cache: weight copies\n"
      ">= 4x the last-level cache, a fresh random active set per call, caches flushed before\n"
      "each call by a timed stream read of 4x the LLC, so the stream is measured all along.\n"
      "Runs with OMP_WAIT_POLICY=passive unless set: OpenMP threads spinning after a flush would\n"
      "take the cores the library's threads need.\n\n"
      "  --shape DxF[,DxF...]    d_model x d_ff (default 4096x11008,11008x4096: LLaMA-7B's rows of\n"
      "                          4096 (W_t) and of 11008 (W_down as stored))\n"
      "  --density P[,P...]      active percent, in (0, 100] (default 10,15,33,100)\n"
      "  --isa NAME[,NAME...]    scalar, avx2, avxvnni, avx512, avx512bf16, avx512vnni (default:\n"
      "                          scalar, avx2, avx512 and this machine's highest, where supported)\n"
      "  --type T[,T...]         f32, f16, bf16, q8_0, q4_0 or all (default f32); a type\n"
      "                          whose kernels are missing from the table is skipped\n"
      "  --prefetch L[,L...]     l1, l2: the row kernels' prefetch level (LZN_PREFETCH); each ISA\n"
      "                          is then measured at each, named isa/l1, isa/l2 (default: the\n"
      "                          level the library picks here, the machine line says which)\n"
      "  --threads N[,N...]      threads per call (default 1,2)\n"
      "  --reps R                timed calls per measurement, after 1 warm-up (default 20)\n"
      "  -o md|json|csv          output format (default md)\n"
      "  --l3-mib N              last-level cache size to size cold sets by (default: the\n"
      "                          larger of sysconf and sysfs, 32 if neither says)\n"
      "  --no-flush              do not flush the caches before each call (%% stream is then\n"
      "                          over the stream measured before the kernels)\n"
      "  --no-hugepages          do not madvise the weights for transparent huge pages\n"
      "  -h, --help              this text\n");
}

/* The table LZN_ISA=name (and LZN_PREFETCH=level) would give, so ISAs
 * and levels compare within one run; named by the ISA alone when no
 * --prefetch was given (level < 0: the library's own). */
static void add_isa(kernels_options *o, const char *name, int explicit_choice, int level) {
  const int isa = lzn_isa_from_name(name);
  if (isa < 0) bench_usage_error("--isa: unknown ISA \"%s\" (scalar, avx2, avx512, ...)", name);
  if (!lzn_isa_supported(name)) {
    if (explicit_choice) fprintf(stderr, "lzn-bench: note: skipping %s, which this CPU/OS (or build) lacks\n", name);
    return;
  }
  char label[32];
  const lzn_kernel_table *active;
  const enum lzn_prefetch_level prefetch = level >= 0 ? (enum lzn_prefetch_level)level
                                           : lzn_kernels_get(&active) == LZN_OK ? active->prefetch
                                                                                : lzn_cpu_prefetch_level();
  if (level >= 0) snprintf(label, sizeof label, "%s/%s", name, lzn_prefetch_level_name(prefetch));
  else snprintf(label, sizeof label, "%s", name);
  for (size_t i = 0; i < o->n_isas; i++)
    if (strcmp(o->labels[i], label) == 0) return;
  lzn_kernel_table *t = &o->isas[o->n_isas];
  lzn_kernel_table_fill((enum lzn_isa)isa, lzn_cpu_supported_isas(), prefetch, t);
  memcpy(o->labels[o->n_isas], label, sizeof label);
  t->name = o->labels[o->n_isas++];
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

static void add_type(kernels_options *o, const char *name) {
  const lzn_weight_type t = bench_parse_type("--type", name);
  if (t == LZN_WEIGHTS_AS_STORED) bench_usage_error("--type: name a type, not as_stored");
  for (size_t i = 0; i < o->n_types; i++)
    if (o->types[i] == t) return;
  o->types[o->n_types++] = t;
}

static int compare_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}


static void parse_options(kernels_options *o, int argc, char **argv) {
  /* Defaults: issue 19's targets. LLaMA-7B's MLP both ways (rows of 4096:
   * W_up, W_gate, W_down^T; rows of 11008: W_down as stored), the densities
   * of ProSparse-7B (~10 %), Bamboo-7B (~15 %), ReluLLaMA-7B (~33 %) and
   * dense, 1 and 2 threads. */
  const char *shapes = "4096x11008,11008x4096", *densities = "10,15,33,100";
  const char *isas = NULL, *threads = "1,2", *types = "f32", *prefetch = NULL;
  size_t l3_option = 0;
  *o = (kernels_options){.reps = 20, .format = BENCH_FORMAT_MD, .huge_pages = 1, .flush = 1};
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      help();
      exit(0);
    } else if ((v = bench_option_value(argc, argv, &i, "--shape"))) shapes = v;
    else if ((v = bench_option_value(argc, argv, &i, "--density"))) densities = v;
    else if ((v = bench_option_value(argc, argv, &i, "--isa"))) isas = v;
    else if ((v = bench_option_value(argc, argv, &i, "--threads"))) threads = v;
    else if ((v = bench_option_value(argc, argv, &i, "--prefetch"))) prefetch = v;
    else if ((v = bench_option_value(argc, argv, &i, "--type"))) types = v;
    else if ((v = bench_option_value(argc, argv, &i, "--reps"))) o->reps = (int)bench_parse_long("--reps", v, 1, 100000);
    else if ((v = bench_option_value(argc, argv, &i, "-o"))) o->format = bench_parse_format("-o", v);
    else if ((v = bench_option_value(argc, argv, &i, "--l3-mib"))) l3_option = (size_t)bench_parse_long("--l3-mib", v, 1, 65536) * MIB;
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
  /* Default: the three vector widths, and the machine's own ceiling where
   * it is above them (avx512vnni, avx512bf16): the kernels a user gets. */
  char default_isas[96];
  snprintf(default_isas, sizeof default_isas, "scalar,avx2,avx512,%s", lzn_isa_name());
  bench_copy_list("--isa", buf, sizeof buf, isas ? isas : default_isas);
  n = bench_split_list("--isa", buf, items, KERNELS_MAX_ITEMS);
  int levels[2] = {-1, -1};
  size_t n_levels = 1;
  if (prefetch) {
    char level_buf[64], *level_items[2];
    bench_copy_list("--prefetch", level_buf, sizeof level_buf, prefetch);
    n_levels = bench_split_list("--prefetch", level_buf, level_items, 2);
    for (size_t k = 0; k < n_levels; k++) {
      char why[128];
      enum lzn_prefetch_level level;
      if (lzn_prefetch_resolve(level_items[k], LZN_PREFETCH_L1, &level, why, sizeof why) != LZN_OK)
        bench_usage_error("--prefetch: \"%s\" is neither l1 nor l2", level_items[k]);
      levels[k] = (int)level;
    }
  }
  for (size_t k = 0; k < n; k++)
    for (size_t l = 0; l < n_levels; l++) add_isa(o, items[k], isas != NULL, levels[l]);
  if (o->n_isas == 0) bench_usage_error("--isa: none of the ISAs asked for runs here");
  bench_copy_list("--threads", buf, sizeof buf, threads);
  n = bench_split_list("--threads", buf, items, KERNELS_MAX_ITEMS);
  for (size_t k = 0; k < n; k++)
    o->threads[o->n_threads++] = (int)bench_parse_long("--threads", items[k], 1, LZN_MAX_THREADS);
  if (strcasecmp(types, "all") == 0) types = bench_all_types();
  bench_copy_list("--type", buf, sizeof buf, types);
  n = bench_split_list("--type", buf, items, KERNELS_MAX_ITEMS);
  for (size_t k = 0; k < n; k++) add_type(o, items[k]);

  bench_machine_detect(&o->machine);
  if (l3_option) bench_machine_set_llc(&o->machine, l3_option);
  o->l3_bytes = o->machine.llc_bytes;
  const size_t ram = o->machine.ram_bytes ? o->machine.ram_bytes : (size_t)16 << 30;
  o->cap_bytes = ram / RAM_FRACTION;
  o->stream_bytes = 4 * o->l3_bytes;
  if (o->stream_bytes > o->cap_bytes) o->stream_bytes = o->cap_bytes;
}

/* Bytes of one copy of both layouts of a shape in a type. */
static size_t pair_bytes(lzn_weight_type type, size_t d, size_t f) {
  return f * lzn_wtype_row_bytes(type, d) + d * lzn_wtype_row_bytes(type, f);
}

/* Fails up front, not after minutes of measuring, when a single copy of a
 * shape (both layouts at once) would not fit in 3/4 of the RAM. */
static void check_memory(const kernels_options *o) {
  const double ram = (double)o->machine.ram_bytes;
  for (size_t s = 0; s < o->n_shapes; s++) {
    const double need = (double)pair_bytes(LZN_WEIGHTS_F32, (size_t)o->d_model[s], (size_t)o->d_ff[s]);
    if (ram > 0 && need > 0.75 * ram)
      bench_fail("%lldx%lld needs %.0f MiB for one copy of W and W_t, more than 3/4 of the %.0f MiB of RAM",
                 (long long)o->d_model[s], (long long)o->d_ff[s], need / MIB, ram / MIB);
  }
}

/* The first slot a type needs that some table lacks, as "avx2 q8_0 gemv",
 * or NULL when every slot is there. Until a type's kernels land the table
 * leaves its slots NULL; the benchmark skips it instead of crashing. */
static const char *missing_slot(const kernels_options *o, const lzn_kernel_table *ref, lzn_weight_type type,
                                char *buf, size_t size) {
  const lzn_weight_type x_type = lzn_wtype_dot_type(type);
  const int quantized_x = x_type != LZN_WEIGHTS_F32;
  const char *q8 = bench_type_name(x_type), *name = bench_type_name(type);
  if (ref->type[type].from_f32.fn == NULL) return snprintf(buf, size, "scalar %s from_f32", name), buf;
  if (ref->type[type].to_f32.fn == NULL) return snprintf(buf, size, "scalar %s to_f32", name), buf;
  if (quantized_x && ref->type[x_type].to_f32.fn == NULL) return snprintf(buf, size, "scalar %s to_f32", q8), buf;
  for (size_t i = 0; i < o->n_isas; i++) {
    const lzn_kernel_table *k = &o->isas[i];
    if (k->type[type].axpy_rows.fn == NULL) return snprintf(buf, size, "%s %s axpy_rows", k->name, name), buf;
    if (k->type[type].axpy_rows_q8.fn == NULL) return snprintf(buf, size, "%s %s axpy_rows_q8", k->name, name), buf;
    if (k->type[type].dot_rows.fn == NULL) return snprintf(buf, size, "%s %s dot_rows", k->name, name), buf;
    if (k->type[type].gemv.fn == NULL) return snprintf(buf, size, "%s %s gemv", k->name, name), buf;
    if (quantized_x && k->type[x_type].from_f32.fn == NULL)
      return snprintf(buf, size, "%s %s from_f32 (for x)", k->name, q8), buf;
  }
  return NULL;
}

/* The streaming read bandwidth at every thread count asked, with each kind
 * of loads this CPU runs, keeping the fastest; and per kind at 1 thread. */
static void measure_stream(kernels_options *o, const void *buffer) {
  const int progress = isatty(STDERR_FILENO);
  bench_stats best1 = {0};
  bench_stream_loads best1_loads = BENCH_STREAM_SSE2;
  for (int l = 0; l < BENCH_STREAM_COUNT; l++) {
    if (!bench_stream_loads_supported((bench_stream_loads)l)) continue;
    if (progress) fprintf(stderr, "\rstream read, 1 thread, %s loads   ", bench_stream_loads_name((bench_stream_loads)l));
    bench_stats st;
    st.median = bench_stream_read_gbps(buffer, o->stream_bytes, 1, o->reps, (bench_stream_loads)l, &st.min, &st.max);
    o->stream_by_loads[l] = st.median;
    if (st.median > best1.median) best1 = st, best1_loads = (bench_stream_loads)l;
  }
  for (size_t t = 0; t < o->n_threads; t++) {
    if (o->threads[t] == 1) {
      o->stream[t] = best1, o->stream_loads[t] = best1_loads;
      continue;
    }
    o->stream[t] = (bench_stats){0};
    for (int l = 0; l < BENCH_STREAM_COUNT; l++) {
      if (!bench_stream_loads_supported((bench_stream_loads)l)) continue;
      if (progress)
        fprintf(stderr, "\rstream read, %d threads, %s loads   ", o->threads[t], bench_stream_loads_name((bench_stream_loads)l));
      bench_stats st;
      st.median = bench_stream_read_gbps(buffer, o->stream_bytes, o->threads[t], o->reps, (bench_stream_loads)l,
                                         &st.min, &st.max);
      if (st.median > o->stream[t].median) o->stream[t] = st, o->stream_loads[t] = (bench_stream_loads)l;
    }
  }
  if (progress) fprintf(stderr, "\r%60s\r", "");
}

int bench_kernels_main(int argc, char **argv) {
  kernels_options o;
  parse_options(&o, argc, argv);
  check_memory(&o);
  lzn_kernel_table ref;
  lzn_kernel_table_fill(LZN_ISA_SCALAR, 0, LZN_PREFETCH_L1, &ref);
  /* What is skipped, one line each, for the report. */
  char skipped[2048] = "";
  size_t skipped_len = 0;
  lzn_weight_type measured[LZN_WEIGHT_TYPE_COUNT];
  size_t n_measured = 0;
  for (size_t t = 0; t < o.n_types; t++) {
    char slot[96];
    const char *missing = missing_slot(&o, &ref, o.types[t], slot, sizeof slot);
    if (missing == NULL) {
      measured[n_measured++] = o.types[t];
      continue;
    }
    fprintf(stderr, "lzn-bench: note: skipping %s: no %s kernel in this build\n", bench_type_name(o.types[t]), missing);
    skipped_len += (size_t)snprintf(skipped + skipped_len, sizeof skipped - skipped_len,
                                    "- %s skipped: no %s kernel in this build.\n", bench_type_name(o.types[t]), missing);
    if (skipped_len >= sizeof skipped) skipped_len = sizeof skipped - 1;
  }
  if (n_measured == 0) bench_fail("none of the types asked for has its kernels in this build");

  /* One buffer for the stream and the flushes: a flush is a stream read. */
  void *flush_buffer = bench_alloc_big(o.stream_bytes, o.huge_pages);
  memset(flush_buffer, 1, o.stream_bytes);
  measure_stream(&o, flush_buffer);
  const size_t group = KERNELS_ROWS_PER_GROUP(&o), per_type = o.n_threads * o.n_isas;
  kernels_result *results = calloc(o.n_shapes * n_measured * per_type * group, sizeof *results);
  if (results == NULL) bench_fail("out of memory");
  bench_rng rng = {0x6c617a796e6575ull}; /* fixed: runs draw the same active sets */
  size_t n_groups = 0;
  for (size_t s = 0; s < o.n_shapes; s++)
    for (size_t t = 0; t < n_measured; t++) {
      const size_t d = (size_t)o.d_model[s], f = (size_t)o.d_ff[s];
      const size_t bytes = f * lzn_wtype_row_bytes(measured[t], d);
      int capped;
      const size_t copies = weight_copies_capped(bytes, pair_bytes(measured[t], d, f), o.l3_bytes, o.cap_bytes, &capped);
      kernels_measure_shape(&o, measured[t], d, f, copies, capped, flush_buffer, &rng, results + n_groups * group);
      n_groups += per_type;
    }
  free(flush_buffer);
  const int mismatch = kernels_report(&o, results, n_groups, skipped);
  free(results);
  return mismatch ? BENCH_EXIT_FAIL : 0;
}
