/*
 * machine.h: the facts about the machine that a benchmark report needs to
 * be read at all: which CPU, how big its last-level cache is (the cold
 * working set is sized from it), how many CPUs, how much memory, and how
 * fast one core and N cores stream-read memory (every kernel's GB/s is
 * read as a fraction of that).
 */
#ifndef LZN_BENCH_MACHINE_H
#define LZN_BENCH_MACHINE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct bench_machine {
  char cpu[128];          /* the CPUID brand string, else /proc/cpuinfo "model name" */
  const char *cpu_source; /* "cpuid", "/proc/cpuinfo" or "unknown" */
  /* Last-level cache. llc_bytes is what the benchmark sizes cold sets by:
   * the larger of the two sources (a larger guess only makes the working
   * set colder), or BENCH_LLC_FALLBACK when neither says. */
  size_t llc_sysconf;  /* sysconf(_SC_LEVEL3_CACHE_SIZE), 0 if unknown */
  size_t llc_sysfs;    /* the highest-level cache in /sys/.../cpu0/cache, 0 if unknown */
  int llc_sysfs_level; /* its level (3 on most machines), 0 if unknown */
  size_t llc_bytes;
  const char *llc_source; /* "sysconf", "sysfs", "assumed" (neither said) or "--l3-mib" */
  long cpus_online;       /* sysconf(_SC_NPROCESSORS_ONLN) */
  long cpus_available;    /* in this process's affinity mask */
  size_t ram_bytes;       /* physical memory */
  double load_at_start;   /* 1-minute load average at detection, -1 if unknown */
  long l1d_bytes;         /* sysconf(_SC_LEVEL1_DCACHE_SIZE), <= 0 if unknown */
  const char *prefetch;   /* the row kernels' prefetch level in use ("l1", "l2"; LZN_PREFETCH), "?" */
} bench_machine;

/* The LLC assumed when the system does not say. */
#define BENCH_LLC_FALLBACK ((size_t)32 << 20)

void bench_machine_detect(bench_machine *m);

/* The 1-minute load average now (/proc/loadavg), -1 if unknown: on a shared
 * machine a load above its CPUs minus the benchmark's threads means other
 * processes took turns on the cores during the timing. */
double bench_machine_load(void);

/* Replaces the detected LLC size with the user's (--l3-mib). */
void bench_machine_set_llc(bench_machine *m, size_t llc_bytes);

/* One line for a markdown header: "CPU: ... | 2 CPUs | LLC (L3) 32 MiB
 * (sysfs; sysconf says ...) | RAM ...". */
void bench_machine_describe(const bench_machine *m, char *buf, size_t size);

/* Adds the machine's fields (cpu, cpus, llc_mib, llc_source, ram_mib) to a
 * JSON/CSV record. */
void bench_machine_set_fields(json_t *record, const bench_machine *m);

/* --------------------------------------------------------- stream read */

/* The ways to read memory the stream measurement tries: the compiler's
 * baseline (SSE2) vectorisation of a plain loop, and, where CPUID and XCR0
 * allow, 256-bit (AVX2) and 512-bit (AVX-512) loads. */
typedef enum bench_stream_loads {
  BENCH_STREAM_SSE2 = 0,
  BENCH_STREAM_AVX2 = 1,
  BENCH_STREAM_AVX512 = 2,
  BENCH_STREAM_COUNT = 3
} bench_stream_loads;

/* "SSE2", "AVX2", "AVX-512". */
const char *bench_stream_loads_name(bench_stream_loads loads);
/* Whether this CPU and OS can run those loads. */
int bench_stream_loads_supported(bench_stream_loads loads);

/* GB/s (1e9 bytes/s) of one sequential read of buffer[0..bytes): the
 * median over chunks of up to 64 MiB (at least 4), each read by n_threads
 * OpenMP threads, one contiguous slice each, summing its 64-bit words. Of a
 * buffer >= 4x the LLC, it also flushes the caches. */
double bench_stream_read_once(const void *buffer, size_t bytes, int n_threads, bench_stream_loads loads);

/* Median GB/s of reps bench_stream_read_once of buffer[0..bytes) (filled by
 * the caller, so not the shared zero page), after one untimed read. Make bytes >= 4x the LLC so that every read comes
 * from memory. min/max receive the spread when not NULL. */
double bench_stream_read_gbps(const void *buffer, size_t bytes, int n_threads, int reps,
                              bench_stream_loads loads, double *min_gbps, double *max_gbps);

/* GB/s of one read of the rows idx[0..n) of a matrix at base (rows
 * row_bytes apart, span bytes of each read): the bandwidth the memory gives
 * to that access pattern (rows at random, a few KiB each), with plain loads
 * of the kind given and no computation, each row read through before the
 * next; the rows split among n_threads in contiguous runs of idx. The
 * kernels that gather rows are compared with it as well as with the
 * sequential stream: on one core, short rows at random are read well below
 * the stream rate (measured on a shared AMD EPYC VM: 2.3 KB rows at 15 %
 * density, 40-53 % of the stream, whatever software prefetch). A reference,
 * not a bound: a kernel that prefetches rows ahead can pass it. */
double bench_gather_read_once(const void *base, size_t row_bytes, size_t span, const int32_t *idx, size_t n,
                              int n_threads, bench_stream_loads loads);

#endif /* LZN_BENCH_MACHINE_H */
