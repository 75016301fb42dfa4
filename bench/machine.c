/*
 * machine.c: CPU model, last-level cache, CPU count, RAM, and the streaming
 * read bandwidth (see machine.h).
 *
 * Why three kinds of loads for the stream: bench/ is compiled for baseline
 * x86-64, where the widest loads are SSE2's 16 bytes. Two of those per
 * cycle (every x86 core since ~2011) already ask for 100+ GB/s at 3 GHz,
 * far above what one core gets from DRAM, so on paper the width does not
 * matter; in practice a core's bandwidth is bounded by the cache misses it
 * keeps in flight, and wider loads reach that bound with fewer
 * instructions, which the hardware prefetchers of some cores reward. The
 * kernels use AVX2/AVX-512 loads, so the honest ceiling to compare them with
 * is the best of the three, each compiled for its ISA with a target
 * attribute on that one function and only called when lib/cpu (CPUID +
 * XCR0) says this CPU and OS run it. The report prints all three.
 */
#include "machine.h"

#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "cpu/cpu.h"
#include "output.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define BENCH_X86 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define BENCH_X86 0
#endif

#define MIB_D ((double)(1 << 20))

/* ------------------------------------------------------------ CPU model */

/* Trims leading and trailing blanks in place (brand strings are padded). */
static void trim(char *s) {
  size_t start = strspn(s, " \t"), len = strlen(s);
  while (len > start && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n')) len--;
  memmove(s, s + start, len - start);
  s[len - start] = '\0';
}

static int cpu_from_cpuid(char *out, size_t size) {
#if BENCH_X86
  unsigned regs[12];
  if (__get_cpuid_max(0x80000000u, NULL) < 0x80000004u) return 0;
  for (unsigned leaf = 0; leaf < 3; leaf++)
    __get_cpuid(0x80000002u + leaf, &regs[4 * leaf], &regs[4 * leaf + 1], &regs[4 * leaf + 2],
                &regs[4 * leaf + 3]);
  char brand[49];
  memcpy(brand, regs, 48);
  brand[48] = '\0';
  trim(brand);
  if (brand[0] == '\0') return 0;
  snprintf(out, size, "%s", brand);
  return 1;
#else
  (void)out, (void)size;
  return 0;
#endif
}

static int cpu_from_proc(char *out, size_t size) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f == NULL) return 0;
  char line[512];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) != 0) continue;
    const char *colon = strchr(line, ':');
    if (colon == NULL) continue;
    snprintf(out, size, "%s", colon + 1);
    trim(out);
    found = out[0] != '\0';
  }
  fclose(f);
  return found;
}

/* ------------------------------------------------------------ the cache */

/* "32768K", "2M", "1G" or plain bytes; 0 if unreadable. */
static size_t read_size_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  unsigned long long v = 0;
  char unit = '\0';
  const int got = fscanf(f, "%llu%c", &v, &unit);
  fclose(f);
  if (got < 1) return 0;
  switch (unit) {
  case 'K': case 'k': return (size_t)v << 10;
  case 'M': case 'm': return (size_t)v << 20;
  case 'G': case 'g': return (size_t)v << 30;
  default: return (size_t)v;
  }
}

static long read_long_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  long v = -1;
  if (fscanf(f, "%ld", &v) != 1) v = -1;
  fclose(f);
  return v;
}

/* The data or unified cache of the highest level that cpu0 lists. */
static size_t llc_from_sysfs(int *level) {
  size_t best = 0;
  *level = 0;
  for (int i = 0; i < 16; i++) {
    char path[128], type[32] = "";
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
    FILE *f = fopen(path, "r");
    if (f == NULL) continue;
    const int got = fscanf(f, "%31s", type);
    fclose(f);
    if (got != 1 || strcmp(type, "Instruction") == 0) continue;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
    const long lv = read_long_file(path);
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
    const size_t bytes = read_size_file(path);
    if (lv > *level && bytes > 0) *level = (int)lv, best = bytes;
  }
  return best;
}

/* ------------------------------------------------------------- machine */

void bench_machine_detect(bench_machine *m) {
  memset(m, 0, sizeof *m);
  if (cpu_from_cpuid(m->cpu, sizeof m->cpu)) m->cpu_source = "cpuid";
  else if (cpu_from_proc(m->cpu, sizeof m->cpu)) m->cpu_source = "/proc/cpuinfo";
  else snprintf(m->cpu, sizeof m->cpu, "unknown CPU"), m->cpu_source = "unknown";

#ifdef _SC_LEVEL3_CACHE_SIZE
  const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  m->llc_sysconf = l3 > 0 ? (size_t)l3 : 0;
#endif
  m->llc_sysfs = llc_from_sysfs(&m->llc_sysfs_level);
  /* The two can disagree by a factor of ten: in a VM, glibc's sysconf reads
   * CPUID and may report the host's whole L3, sysfs the slice these CPUs
   * share. Sizing by the larger only costs memory and time. */
  if (m->llc_sysconf == 0 && m->llc_sysfs == 0) m->llc_bytes = BENCH_LLC_FALLBACK, m->llc_source = "assumed";
  else if (m->llc_sysconf >= m->llc_sysfs) m->llc_bytes = m->llc_sysconf, m->llc_source = "sysconf";
  else m->llc_bytes = m->llc_sysfs, m->llc_source = "sysfs";

  m->cpus_online = sysconf(_SC_NPROCESSORS_ONLN);
  m->l1d_bytes = sysconf(_SC_LEVEL1_DCACHE_SIZE);
  const lzn_kernel_table *kernels;
  m->prefetch = lzn_kernels_get(&kernels) == LZN_OK ? lzn_prefetch_level_name(kernels->prefetch) : "?";
  cpu_set_t set;
  m->cpus_available = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : m->cpus_online;
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  m->ram_bytes = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0;
  m->load_at_start = bench_machine_load();
}

double bench_machine_load(void) {
  FILE *f = fopen("/proc/loadavg", "r");
  if (f == NULL) return -1.0;
  double load = -1.0;
  if (fscanf(f, "%lf", &load) != 1) load = -1.0;
  fclose(f);
  return load;
}

void bench_machine_set_llc(bench_machine *m, size_t llc_bytes) {
  m->llc_bytes = llc_bytes;
  m->llc_source = "--l3-mib";
}

void bench_machine_describe(const bench_machine *m, char *buf, size_t size) {
  char llc[192];
  const double sysconf_mib = (double)m->llc_sysconf / MIB_D, sysfs_mib = (double)m->llc_sysfs / MIB_D;
  if (strcmp(m->llc_source, "assumed") == 0)
    snprintf(llc, sizeof llc, "%.0f MiB assumed: neither sysconf nor sysfs says", (double)m->llc_bytes / MIB_D);
  else if (strcmp(m->llc_source, "--l3-mib") == 0)
    snprintf(llc, sizeof llc, "%.0f MiB from --l3-mib; sysconf says %.0f MiB, sysfs L%d %.0f MiB",
             (double)m->llc_bytes / MIB_D, sysconf_mib, m->llc_sysfs_level, sysfs_mib);
  else
    snprintf(llc, sizeof llc, "%.0f MiB, the larger of sysconf %.0f MiB and sysfs L%d %.0f MiB",
             (double)m->llc_bytes / MIB_D, sysconf_mib, m->llc_sysfs_level, sysfs_mib);
  snprintf(buf, size, "CPU: %s (%s) | %ld CPUs online, %ld available | LLC %s | L1D %ld KiB, rows prefetched to %s | RAM %.0f MiB",
           m->cpu, m->cpu_source, m->cpus_online, m->cpus_available, llc, m->l1d_bytes > 0 ? m->l1d_bytes / 1024 : 0,
           m->prefetch, (double)m->ram_bytes / MIB_D);
}

void bench_machine_set_fields(json_t *record, const bench_machine *m) {
  bench_set(record, "cpu", json_string(m->cpu));
  bench_set(record, "cpus", json_integer(m->cpus_available));
  bench_set(record, "llc_mib", json_real((double)m->llc_bytes / MIB_D));
  bench_set(record, "llc_source", json_string(m->llc_source));
  bench_set(record, "ram_mib", json_real((double)m->ram_bytes / MIB_D));
  bench_set(record, "load_at_start", m->load_at_start >= 0 ? json_real(m->load_at_start) : json_null());
  bench_set(record, "prefetch", json_string(m->prefetch));
}

/* --------------------------------------------------------- stream read */

/* Each reader sums the 64-bit words of p[0..bytes), four independent
 * accumulators so that no add waits for the one before (the loads, not the
 * adds, must be the limit). p is 64-byte aligned; bytes is a multiple of 8. */
static uint64_t sum_tail(const uint64_t *w, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; i++) s += w[i];
  return s;
}

#if BENCH_X86
/* SSE2 is part of x86-64: no target attribute needed. */
static uint64_t read_sse2(const void *p, size_t bytes) {
  const __m128i *v = p;
  const size_t n = bytes / 64;
  __m128i a = _mm_setzero_si128(), b = a, c = a, d = a;
  for (size_t i = 0; i < n; i++) {
    a = _mm_add_epi64(a, _mm_load_si128(v + 4 * i));
    b = _mm_add_epi64(b, _mm_load_si128(v + 4 * i + 1));
    c = _mm_add_epi64(c, _mm_load_si128(v + 4 * i + 2));
    d = _mm_add_epi64(d, _mm_load_si128(v + 4 * i + 3));
  }
  uint64_t lanes[2];
  _mm_storeu_si128((__m128i *)(void *)lanes, _mm_add_epi64(_mm_add_epi64(a, b), _mm_add_epi64(c, d)));
  return lanes[0] + lanes[1] + sum_tail((const uint64_t *)p + n * 8, (bytes - n * 64) / 8);
}

__attribute__((target("avx2"))) static uint64_t read_avx2(const void *p, size_t bytes) {
  const __m256i *v = p;
  const size_t n = bytes / 128;
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  for (size_t i = 0; i < n; i++) {
    a = _mm256_add_epi64(a, _mm256_load_si256(v + 4 * i));
    b = _mm256_add_epi64(b, _mm256_load_si256(v + 4 * i + 1));
    c = _mm256_add_epi64(c, _mm256_load_si256(v + 4 * i + 2));
    d = _mm256_add_epi64(d, _mm256_load_si256(v + 4 * i + 3));
  }
  uint64_t lanes[4];
  _mm256_storeu_si256((__m256i *)(void *)lanes,
                      _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d)));
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] +
         sum_tail((const uint64_t *)p + n * 16, (bytes - n * 128) / 8);
}

__attribute__((target("avx512f"))) static uint64_t read_avx512(const void *p, size_t bytes) {
  const __m512i *v = p;
  const size_t n = bytes / 256;
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  for (size_t i = 0; i < n; i++) {
    a = _mm512_add_epi64(a, _mm512_load_si512(v + 4 * i));
    b = _mm512_add_epi64(b, _mm512_load_si512(v + 4 * i + 1));
    c = _mm512_add_epi64(c, _mm512_load_si512(v + 4 * i + 2));
    d = _mm512_add_epi64(d, _mm512_load_si512(v + 4 * i + 3));
  }
  /* Lanes summed as unsigned: _mm512_reduce_add_epi64 adds signed lanes,
   * and the sums overflow by design. */
  uint64_t lanes[8], sum = 0;
  _mm512_storeu_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
  for (int l = 0; l < 8; l++) sum += lanes[l];
  return sum + sum_tail((const uint64_t *)p + n * 32, (bytes - n * 256) / 8);
}
#endif

const char *bench_stream_loads_name(bench_stream_loads loads) {
  switch (loads) {
  case BENCH_STREAM_SSE2: return "SSE2";
  case BENCH_STREAM_AVX2: return "AVX2";
  case BENCH_STREAM_AVX512: return "AVX-512";
  case BENCH_STREAM_COUNT: break;
  }
  return "?";
}

int bench_stream_loads_supported(bench_stream_loads loads) {
#if BENCH_X86
  const unsigned isas = lzn_cpu_supported_isas();
  switch (loads) {
  case BENCH_STREAM_SSE2: return 1;
  case BENCH_STREAM_AVX2: return (isas >> LZN_ISA_AVX2) & 1;
  case BENCH_STREAM_AVX512: return (isas >> LZN_ISA_AVX512) & 1;
  case BENCH_STREAM_COUNT: break;
  }
  return 0;
#else
  return loads == BENCH_STREAM_SSE2;
#endif
}

typedef uint64_t (*stream_reader)(const void *p, size_t bytes);

static uint64_t read_plain(const void *p, size_t bytes) { return sum_tail(p, bytes / 8); }

static stream_reader reader_for(bench_stream_loads loads) {
#if BENCH_X86
  if (loads == BENCH_STREAM_AVX512) return read_avx512;
  if (loads == BENCH_STREAM_AVX2) return read_avx2;
  return read_sse2;
#else
  (void)loads;
  return read_plain;
#endif
}

static volatile uint64_t stream_sink;

/* Seconds of one read of buffer[0..bytes) split into n_threads slices. */
static double timed_read(stream_reader read, const char *buffer, size_t bytes, int n_threads) {
  /* Slices of whole 256-byte steps, so every slice stays 64-byte aligned. */
  const size_t per_slice = (bytes / (size_t)n_threads) & ~(size_t)255;
  uint64_t sum = 0;
  const double t0 = bench_now();
#pragma omp parallel for num_threads(n_threads) schedule(static) reduction(+ : sum)
  for (int slice = 0; slice < n_threads; slice++) {
    const size_t start = (size_t)slice * per_slice;
    const size_t len = slice == n_threads - 1 ? (bytes & ~(size_t)7) - start : per_slice;
    sum += read(buffer + start, len);
  }
  const double t1 = bench_now();
  stream_sink += sum;
  return t1 - t0;
}

/* A read is timed in chunks of at most this much, and its bandwidth is the
 * median over the chunks: a chunk takes about as long as one kernel call
 * (milliseconds), so when other processes share the cores, a chunk during
 * which the scheduler ran someone else is an outlier, as it is among the
 * kernel calls, instead of slowing the whole 4x-LLC read (tens of ms, much
 * longer than a time slice) while the kernels' medians stay unaffected. */
#define STREAM_CHUNK_BYTES ((size_t)64 << 20)
#define STREAM_MIN_CHUNKS 4
#define STREAM_MAX_CHUNKS 256

double bench_stream_read_once(const void *buffer, size_t bytes, int n_threads, bench_stream_loads loads) {
  (void)read_plain; /* the reader where there is no x86 */
  const stream_reader read = reader_for(loads);
  const char *bytes_at = buffer;
  size_t chunk = STREAM_CHUNK_BYTES;
  if (chunk > bytes / STREAM_MIN_CHUNKS) chunk = bytes / STREAM_MIN_CHUNKS;
  if (chunk < bytes / STREAM_MAX_CHUNKS) chunk = bytes / STREAM_MAX_CHUNKS;
  chunk &= ~(size_t)255; /* slices stay 64-byte aligned */
  if (chunk == 0) return (double)bytes / timed_read(read, buffer, bytes, n_threads) / 1e9;
  double gbps[STREAM_MAX_CHUNKS + STREAM_MIN_CHUNKS];
  size_t n = 0, offset = 0;
  for (; offset + chunk <= bytes && n < sizeof gbps / sizeof gbps[0]; offset += chunk)
    gbps[n++] = (double)chunk / timed_read(read, bytes_at + offset, chunk, n_threads) / 1e9;
  if (offset < bytes) (void)timed_read(read, bytes_at + offset, bytes - offset, n_threads); /* the flush reads it all */
  return bench_summarize(gbps, n).median;
}

/* ------------------------------------------------------- gathered read */

/* The rows' bytes summed as 64-bit words with unaligned loads (a row of a
 * block type need not start on 8 bytes: 18-byte Q4_0 blocks), the last
 * bytes one by one; each row read through before the next, as a gather
 * into a buffer would. */
static uint64_t gather_tail(const unsigned char *p, size_t bytes) {
  uint64_t s = 0;
  size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    uint64_t v;
    memcpy(&v, p + i, 8);
    s += v;
  }
  for (; i < bytes; i++) s += p[i];
  return s;
}

#if BENCH_X86
static uint64_t gather_sse2(const unsigned char *p, size_t bytes) {
  __m128i a = _mm_setzero_si128(), b = a, c = a, d = a;
  size_t i = 0;
  for (; i + 64 <= bytes; i += 64) {
    a = _mm_add_epi64(a, _mm_loadu_si128((const __m128i *)(p + i)));
    b = _mm_add_epi64(b, _mm_loadu_si128((const __m128i *)(p + i + 16)));
    c = _mm_add_epi64(c, _mm_loadu_si128((const __m128i *)(p + i + 32)));
    d = _mm_add_epi64(d, _mm_loadu_si128((const __m128i *)(p + i + 48)));
  }
  uint64_t lanes[2];
  _mm_storeu_si128((__m128i *)(void *)lanes, _mm_add_epi64(_mm_add_epi64(a, b), _mm_add_epi64(c, d)));
  return lanes[0] + lanes[1] + gather_tail(p + i, bytes - i);
}

__attribute__((target("avx2"))) static uint64_t gather_avx2(const unsigned char *p, size_t bytes) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  size_t i = 0;
  for (; i + 128 <= bytes; i += 128) {
    a = _mm256_add_epi64(a, _mm256_loadu_si256((const __m256i *)(p + i)));
    b = _mm256_add_epi64(b, _mm256_loadu_si256((const __m256i *)(p + i + 32)));
    c = _mm256_add_epi64(c, _mm256_loadu_si256((const __m256i *)(p + i + 64)));
    d = _mm256_add_epi64(d, _mm256_loadu_si256((const __m256i *)(p + i + 96)));
  }
  for (; i + 32 <= bytes; i += 32) a = _mm256_add_epi64(a, _mm256_loadu_si256((const __m256i *)(p + i)));
  uint64_t lanes[4];
  _mm256_storeu_si256((__m256i *)(void *)lanes, _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d)));
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] + gather_tail(p + i, bytes - i);
}

__attribute__((target("avx512f"))) static uint64_t gather_avx512(const unsigned char *p, size_t bytes) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  size_t i = 0;
  for (; i + 256 <= bytes; i += 256) {
    a = _mm512_add_epi64(a, _mm512_loadu_si512(p + i));
    b = _mm512_add_epi64(b, _mm512_loadu_si512(p + i + 64));
    c = _mm512_add_epi64(c, _mm512_loadu_si512(p + i + 128));
    d = _mm512_add_epi64(d, _mm512_loadu_si512(p + i + 192));
  }
  for (; i + 64 <= bytes; i += 64) a = _mm512_add_epi64(a, _mm512_loadu_si512(p + i));
  uint64_t lanes[8], sum = 0;
  _mm512_storeu_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
  for (int l = 0; l < 8; l++) sum += lanes[l];
  return sum + gather_tail(p + i, bytes - i);
}
#endif

typedef uint64_t (*gather_reader)(const unsigned char *p, size_t bytes);

static gather_reader gather_reader_for(bench_stream_loads loads) {
#if BENCH_X86
  if (loads == BENCH_STREAM_AVX512) return gather_avx512;
  if (loads == BENCH_STREAM_AVX2) return gather_avx2;
  return gather_sse2;
#else
  (void)loads;
  return gather_tail;
#endif
}

double bench_gather_read_once(const void *base, size_t row_bytes, size_t span, const int32_t *idx, size_t n,
                              int n_threads, bench_stream_loads loads) {
  const gather_reader read = gather_reader_for(loads);
  if (n == 0) return 0.0;
  if ((size_t)n_threads > n) n_threads = (int)n;
  const size_t per = (n + (size_t)n_threads - 1) / (size_t)n_threads;
  uint64_t sum = 0;
  const double t0 = bench_now();
#pragma omp parallel for num_threads(n_threads) schedule(static) reduction(+ : sum) if (n_threads > 1)
  for (int slice = 0; slice < n_threads; slice++) {
    const size_t t_end = (size_t)(slice + 1) * per < n ? (size_t)(slice + 1) * per : n;
    for (size_t t = (size_t)slice * per; t < t_end; t++)
      sum += read((const unsigned char *)base + (size_t)idx[t] * row_bytes, span);
  }
  const double t1 = bench_now();
  stream_sink += sum;
  return (double)n * (double)span / (t1 - t0) / 1e9;
}

double bench_stream_read_gbps(const void *buffer, size_t bytes, int n_threads, int reps,
                              bench_stream_loads loads, double *min_gbps, double *max_gbps) {
  double *gbps = malloc((size_t)reps * sizeof *gbps);
  if (gbps == NULL) bench_fail("out of memory");
  (void)bench_stream_read_once(buffer, bytes, n_threads, loads); /* wakes the threads, maps the pages */
  for (int r = 0; r < reps; r++) gbps[r] = bench_stream_read_once(buffer, bytes, n_threads, loads);
  const bench_stats s = bench_summarize(gbps, (size_t)reps);
  free(gbps);
  if (min_gbps) *min_gbps = s.min;
  if (max_gbps) *max_gbps = s.max;
  return s.median;
}
