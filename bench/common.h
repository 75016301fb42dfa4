/*
 * common.h: what every lzn-bench mode shares: argument parsing that exits
 * with status 2 on bad input, timing and its summary, the machine's
 * description, big cold-cache buffers, a reproducible generator. Output
 * formats are in output.h.
 */
#ifndef LZN_BENCH_COMMON_H
#define LZN_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "lazyneuron.h"

#if defined(__GNUC__)
#define BENCH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define BENCH_NORETURN __attribute__((noreturn))
#else
#define BENCH_PRINTF(f, a)
#define BENCH_NORETURN
#endif

/* Exit codes: 2 for a bad command line (as getopt tools do), 1 for a
 * failure while running. */
#define BENCH_EXIT_USAGE 2
#define BENCH_EXIT_FAIL 1

/* Subcommands: each gets argv from its own name on (argv[0] = "kernels"). */
int bench_kernels_main(int argc, char **argv);
int bench_model_main(int argc, char **argv);
int bench_quality_main(int argc, char **argv);

/* ------------------------------------------------------------ arguments */

/* Prints "lzn-bench: <message>" and exits with BENCH_EXIT_USAGE. */
BENCH_NORETURN void bench_usage_error(const char *fmt, ...) BENCH_PRINTF(1, 2);
/* Prints "lzn-bench: <message>" and exits with BENCH_EXIT_FAIL. */
BENCH_NORETURN void bench_fail(const char *fmt, ...) BENCH_PRINTF(1, 2);

/* Whole decimal number in [lo, hi], else a usage error naming opt. */
long bench_parse_long(const char *opt, const char *text, long lo, long hi);
/* Finite decimal number, else a usage error naming opt. */
double bench_parse_double(const char *opt, const char *text);
/* Splits a comma-separated list in place into at most max items; an empty
 * item or more than max items is a usage error. Returns the count. */
size_t bench_split_list(const char *opt, char *text, char **items, size_t max);

/* --------------------------------------------------------------- timing */

/* CLOCK_MONOTONIC in seconds. */
/* The value of option `name` at argv[*i], given as "--name value" (then *i
 * moves past it) or "--name=value"; NULL if argv[*i] is another option. */
const char *bench_option_value(int argc, char **argv, int *i, const char *name);

/* A weight or KV type in the options' spelling: the library's name in lower
 * case ("q4_0", "as_stored"); a static string. */
const char *bench_type_name(lzn_weight_type type);
const char *bench_kv_name(lzn_kv_type type);
/* The type an option's value names (lzn_weight_type_from_name; "as stored"
 * too), or a usage error naming the option. */
lzn_weight_type bench_parse_type(const char *opt, const char *text);
lzn_kv_type bench_parse_kv(const char *opt, const char *text);
/* "f32,f16,...": every weight type, what --type all means. */
const char *bench_all_types(void);

/* A writable copy of a list for bench_split_list; too long is an error,
 * never a silent truncation. */
void bench_copy_list(const char *opt, char *buf, size_t size, const char *text);

double bench_now(void);

typedef struct bench_stats {
  double median, min, max;
} bench_stats;

/* Median, min and max of n > 0 samples (sorts them in place). */
bench_stats bench_summarize(double *samples, size_t n);

/* -------------------------------------------------------------- machine */

/* "model name" from /proc/cpuinfo, or "unknown CPU". Static storage. */
const char *bench_cpu_model(void);
/* The transparent huge page mode in brackets in sysfs ("always", "madvise",
 * "never"), or "unknown". Static storage. */
const char *bench_thp_mode(void);

/* This process's resident memory by kind and page size, from
 * /proc/self/smaps (all zero where it cannot be read): the pages of the
 * model's files mapped (model_path: a file, or a folder and the files in
 * it; NULL: none), not those of the program and its shared libraries,
 * and every private page; and how much of each is mapped on 2 MiB pages.
 * Decode reads every weight once per token, and on 4 KiB pages it misses
 * the TLB every 4 KiB (README, "Mapped or read"). */
typedef struct bench_pages {
  double file_gib, file_huge_gib, private_gib, private_huge_gib;
} bench_pages;
bench_pages bench_resident_pages(const char *model_path);

/* ------------------------------------------------------------- contention */

/* A child process that busy-loops on whichever core the scheduler gives it
 * until bench_stop_busy_loop (or this process's death): another program
 * taking a core away, the normal case on a shared server. Returns its pid;
 * exits with a message if it cannot fork. */
int bench_start_busy_loop(void);
void bench_stop_busy_loop(int pid);

/* ---------------------------------------------------------------- memory */

/* Uninitialized, 2 MiB-aligned memory of bytes; with huge_pages,
 * madvise(MADV_HUGEPAGE) so the kernel may back it with 2 MiB pages even when
 * the THP mode is "madvise". Exits with a message when memory runs out.
 * Release with free(). */
void *bench_alloc_big(size_t bytes, int huge_pages);

/* Reads every cache line of p[0..bytes): brings small operands into cache
 * as if just written, the way they are during inference. */
void bench_touch(const void *p, size_t bytes);

/* The first max_bytes bytes of a file (fewer if it is shorter) in a malloc'd
 * buffer, *n of them; exits with a message if it cannot be read or holds
 * fewer than min_bytes. */
unsigned char *bench_read_text(const char *path, long max_bytes, long min_bytes, long *n);

/* ------------------------------------------------------------ generator */

/* xorshift64*: deterministic, so a run's data reproduce. */
typedef struct bench_rng {
  uint64_t s;
} bench_rng;

uint64_t bench_rng_next(bench_rng *r);
/* Uniform in [0, 1). */
double bench_rng_unit(bench_rng *r);
/* Uniform in [0, n), n > 0. */
uint64_t bench_rng_below(bench_rng *r, uint64_t n);

#endif /* LZN_BENCH_COMMON_H */
