/*
 * gather_probe.c: how fast one core reads rows picked at random, with no
 * arithmetic: the ceiling that the gathered-row kernels (dot_rows,
 * axpy_rows over a sparse set) work under on a machine. A one-off probe
 * for bench/RESULTS.md ("Where the gathered rows stand"), not built by make:
 *
 *   gcc -O2 -march=native bench/probes/gather_probe.c -o /tmp/gather_probe
 *   /tmp/gather_probe ROW_BYTES HUGE AHEAD DENSITY     e.g. 2304 0 4 0.1
 *
 * ROW_BYTES: a row (2304 = 4096 Q4_0 weights, 4352 = Q8_0); HUGE: 1 to
 * madvise the buffer for transparent huge pages; AHEAD: prefetch the whole
 * row that many rows ahead (0: none); DENSITY: the fraction of the rows
 * read, in ascending order as the active lists are. Prints the best of 5
 * passes over a 2 GB buffer in GB/s of rows read.
 */
#define _GNU_SOURCE
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "random_rows.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s ROW_BYTES HUGE AHEAD DENSITY\n", argv[0]);
    return 2;
  }
  const size_t row_bytes = strtoul(argv[1], NULL, 10);
  const int huge = atoi(argv[2]), ahead = atoi(argv[3]);
  const double density = atof(argv[4]);
  if (row_bytes < 64 || !(density > 0.0 && density <= 1.0) || ahead < 0) {
    fprintf(stderr, "%s: ROW_BYTES >= 64, DENSITY in (0, 1], AHEAD >= 0\n", argv[0]);
    return 2;
  }
  char *p;
  int32_t *idx;
  size_t n;
  if (random_rows(row_bytes, huge, density, &p, &idx, &n) != 0) return 1;
  __m512i acc = _mm512_setzero_si512();
  double best = 1e30;
  for (int pass = 0; pass < 5; pass++) {
    const double t0 = now();
    for (size_t i = 0; i < n; i++) {
      const char *row = p + (size_t)idx[i] * row_bytes;
      if (ahead && i + (size_t)ahead < n) {
        const char *next = p + (size_t)idx[i + (size_t)ahead] * row_bytes;
        for (size_t l = 0; l < row_bytes; l += 64) _mm_prefetch(next + l, _MM_HINT_T0);
      }
      for (size_t j = 0; j + 64 <= row_bytes; j += 64) acc = _mm512_add_epi32(acc, _mm512_loadu_si512(row + j));
    }
    const double t = now() - t0;
    if (t < best) best = t;
  }
  printf("rows of %zu bytes, huge pages %s, prefetch %d rows ahead, density %.2f: %.1f GB/s (%zu rows; %d)\n",
         row_bytes, huge ? "advised" : "off", ahead, density, (double)(n * row_bytes) / best / 1e9, n,
         _mm512_reduce_add_epi32(acc) & 1);
  return 0;
}
