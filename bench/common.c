/*
 * common.c: helpers shared by the lzn-bench modes (see common.h).
 */
#include <ctype.h>
#include "common.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ arguments */

void bench_usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("lzn-bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs(" (try --help)\n", stderr);
  va_end(ap);
  exit(BENCH_EXIT_USAGE);
}

void bench_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("lzn-bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(BENCH_EXIT_FAIL);
}

long bench_parse_long(const char *opt, const char *text, long lo, long hi) {
  char *end;
  errno = 0;
  const long v = strtol(text, &end, 10);
  if (end == text || *end != '\0' || errno == ERANGE)
    bench_usage_error("%s: \"%s\" is not a whole number", opt, text);
  if (v < lo || v > hi) bench_usage_error("%s: %ld is outside [%ld, %ld]", opt, v, lo, hi);
  return v;
}

double bench_parse_double(const char *opt, const char *text) {
  char *end;
  errno = 0;
  const double v = strtod(text, &end);
  if (end == text || *end != '\0' || errno == ERANGE || !isfinite(v))
    bench_usage_error("%s: \"%s\" is not a finite number", opt, text);
  return v;
}

size_t bench_split_list(const char *opt, char *text, char **items, size_t max) {
  size_t n = 0;
  for (char *p = text;;) {
    char *comma = strchr(p, ',');
    if (comma) *comma = '\0';
    if (*p == '\0') bench_usage_error("%s: empty item in the list", opt);
    if (n == max) bench_usage_error("%s: more than %zu items", opt, max);
    items[n++] = p;
    if (comma == NULL) return n;
    p = comma + 1;
  }
}

/* --------------------------------------------------------------- timing */

double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int compare_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

bench_stats bench_summarize(double *samples, size_t n) {
  qsort(samples, n, sizeof *samples, compare_double);
  const double median = n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
  return (bench_stats){.median = median, .min = samples[0], .max = samples[n - 1]};
}

/* -------------------------------------------------------------- machine */

const char *bench_cpu_model(void) {
  static char model[128];
  if (model[0]) return model;
  snprintf(model, sizeof model, "unknown CPU");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f == NULL) return model;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) != 0) continue;
    const char *colon = strchr(line, ':');
    if (colon == NULL) continue;
    colon += strspn(colon + 1, " \t") + 1;
    snprintf(model, sizeof model, "%.*s", (int)strcspn(colon, "\n"), colon);
    break;
  }
  fclose(f);
  return model;
}

/* Whether a mapping's path is the model's (its file, or a file in its
 * folder); model holds the resolved path, "" for none. */
static int is_model_mapping(const char *path, const char *model) {
  const size_t n = strlen(model);
  return n > 0 && strncmp(path, model, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

bench_pages bench_resident_pages(const char *model_path) {
  bench_pages p = {0, 0, 0, 0};
  char model[4096] = "";
  if (model_path && realpath(model_path, model) == NULL) model[0] = '\0';
  FILE *f = fopen("/proc/self/smaps", "r");
  if (f == NULL) return p;
  double file = 0, file_huge = 0, anon = 0, anon_huge = 0;
  int in_model = 0;
  char line[4352];
  while (fgets(line, sizeof line, f)) {
    /* A mapping's header, "start-end perms offset dev inode [path]", starts
     * with a lowercase hex address; its fields with a capital ("Rss:"). */
    if (isdigit((unsigned char)line[0]) || (line[0] >= 'a' && line[0] <= 'f')) {
      char path[4096] = "";
      in_model = sscanf(line, "%*s %*s %*s %*s %*s %4095[^\n]", path) == 1 && is_model_mapping(path, model);
      continue;
    }
    char field[64];
    double kb;
    if (sscanf(line, "%63[^:]: %lf kB", field, &kb) != 2) continue;
    if (!strcmp(field, "Anonymous")) anon += kb;
    else if (!strcmp(field, "AnonHugePages")) anon_huge += kb;
    else if (in_model && !strcmp(field, "Rss")) file += kb;
    else if (in_model && !strcmp(field, "FilePmdMapped")) file_huge += kb;
  }
  fclose(f);
  const double gib = 1024.0 * 1024.0;
  p.file_gib = file / gib, p.file_huge_gib = file_huge / gib;
  p.private_gib = anon / gib, p.private_huge_gib = anon_huge / gib;
  return p;
}

const char *bench_thp_mode(void) {
  static char mode[32];
  if (mode[0]) return mode;
  snprintf(mode, sizeof mode, "unknown");
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (f == NULL) return mode;
  char line[128];
  if (fgets(line, sizeof line, f)) {
    const char *open = strchr(line, '['), *close = open ? strchr(open, ']') : NULL;
    if (close) snprintf(mode, sizeof mode, "%.*s", (int)(close - open - 1), open + 1);
  }
  fclose(f);
  return mode;
}

/* ---------------------------------------------------------------- memory */

#define BENCH_HUGE_PAGE ((size_t)2 << 20)

void *bench_alloc_big(size_t bytes, int huge_pages) {
  void *p = NULL;
  const size_t rounded = (bytes + BENCH_HUGE_PAGE - 1) & ~(BENCH_HUGE_PAGE - 1);
  if (posix_memalign(&p, BENCH_HUGE_PAGE, rounded) != 0)
    bench_fail("out of memory allocating %.1f MiB", (double)bytes / (1 << 20));
  /* Advice only: without it, or if it fails, the pages are 4 KiB. */
  if (huge_pages) (void)madvise(p, rounded, MADV_HUGEPAGE);
  return p;
}

/* A sink the compiler cannot drop reads into. */
static volatile uint64_t bench_sink;

void bench_touch(const void *p, size_t bytes) {
  const unsigned char *c = p;
  uint64_t sum = 0;
  for (size_t i = 0; i < bytes; i += 64) sum += c[i];
  if (bytes) sum += c[bytes - 1];
  bench_sink += sum;
}

/* The first max_bytes bytes of a file, at least min_bytes of them, in a
 * malloc'd buffer. */
unsigned char *bench_read_text(const char *path, long max_bytes, long min_bytes, long *n) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) bench_fail("cannot open %s", path);
  unsigned char *text = malloc((size_t)max_bytes);
  if (text == NULL) bench_fail("out of memory");
  *n = (long)fread(text, 1, (size_t)max_bytes, f);
  fclose(f);
  if (*n < min_bytes) bench_fail("%s: needs at least %ld bytes", path, min_bytes);
  return text;
}

/* ------------------------------------------------------------ generator */

uint64_t bench_rng_next(bench_rng *r) {
  r->s ^= r->s >> 12, r->s ^= r->s << 25, r->s ^= r->s >> 27;
  return r->s * 2685821657736338717ull;
}

double bench_rng_unit(bench_rng *r) {
  return (double)(bench_rng_next(r) >> 11) / 9007199254740992.0;
}

uint64_t bench_rng_below(bench_rng *r, uint64_t n) { return bench_rng_next(r) % n; }

const char *bench_option_value(int argc, char **argv, int *i, const char *name) {
  const size_t len = strlen(name);
  if (strncmp(argv[*i], name, len) != 0) return NULL;
  if (argv[*i][len] == '=') return argv[*i] + len + 1;
  if (argv[*i][len] != '\0') return NULL;
  if (*i + 1 >= argc) bench_usage_error("%s needs a value", name);
  return argv[++*i];
}

void bench_copy_list(const char *opt, char *buf, size_t size, const char *text) {
  if (strlen(text) >= size) bench_usage_error("%s: list longer than %zu characters", opt, size - 1);
  memcpy(buf, text, strlen(text) + 1);
}

/* Lower-case copies of the library's names, made once per name. */
static const char *lower_name(const char *name, char (*buf)[16]) {
  if (name == NULL) return "?";
  if ((*buf)[0] == '\0') {
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof *buf; i++) (*buf)[i] = (char)tolower((unsigned char)name[i]);
    (*buf)[i] = '\0';
  }
  return *buf;
}

const char *bench_type_name(lzn_weight_type type) {
  static char names[64][16];
  if ((unsigned)type >= 64) return "?";
  return lower_name(lzn_weight_type_name(type), &names[type]);
}

const char *bench_kv_name(lzn_kv_type type) {
  static char names[16][16];
  if ((unsigned)type >= 16) return "?";
  return lower_name(lzn_kv_type_name(type), &names[type]);
}

lzn_weight_type bench_parse_type(const char *opt, const char *text) {
  lzn_weight_type t;
  if (strcmp(text, "as stored") == 0) return LZN_WEIGHTS_AS_STORED;
  if (lzn_weight_type_from_name(text, &t) != LZN_OK) bench_usage_error("%s: %s", opt, lzn_last_error());
  return t;
}

lzn_kv_type bench_parse_kv(const char *opt, const char *text) {
  lzn_kv_type t;
  if (lzn_kv_type_from_name(text, &t) != LZN_OK) bench_usage_error("%s: %s", opt, lzn_last_error());
  return t;
}

const char *bench_all_types(void) {
  static char list[256];
  if (list[0] == '\0')
    for (int t = 1; lzn_weight_type_name((lzn_weight_type)t) != NULL; t++)
      snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", t > 1 ? "," : "",
               bench_type_name((lzn_weight_type)t));
  return list;
}

/* ------------------------------------------------------------- contention */

int bench_start_busy_loop(void) {
  fflush(NULL); /* nothing buffered is written twice */
  const pid_t pid = fork();
  if (pid < 0) bench_fail("--contend: fork: %s", strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the benchmark */
    volatile unsigned long spin = 0;
    for (;;) spin++;
  }
  return (int)pid;
}

void bench_stop_busy_loop(int pid) {
  if (pid <= 0) return;
  kill((pid_t)pid, SIGKILL);
  waitpid((pid_t)pid, NULL, 0);
}
