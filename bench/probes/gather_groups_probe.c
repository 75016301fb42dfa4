/*
 * gather_groups_probe.c: how fast one core reads rows picked at random when
 * it reads them as the block kernels do (kernels/generic/qrows.h): a group
 * of rows side by side, 128 bytes of each per step, the next group's rows
 * prefetched one step at a time. A one-off probe for bench/RESULTS.md
 * ("2026-12-06, evening"), not built by make; gather_probe.c reads one row
 * after the other instead.
 *
 *   gcc -O2 -march=native bench/probes/gather_groups_probe.c -o /tmp/ggp
 *   /tmp/ggp ROW_BYTES PREFETCH DENSITY GROUP [WORK [AHEAD]]   e.g. 2304 t0 0.1 8 8
 *
 * ROW_BYTES: a row (2304 = 4096 Q4_0 weights). PREFETCH, for the rows
 * AHEAD groups on (default 1):
 *   none     no software prefetch
 *   t0, t1, t2, nta   two lines of each next row per step, with that hint
 *   t0+t1    t0 as above, and t1 for the group after the next
 *   burst    every line of the next group's rows at the start of a group
 *   t0+far   t0 as above, and every line of the group after the next (t1)
 *            at the start of a group
 * DENSITY: the fraction of the rows read, in ascending order as the active
 * lists are. GROUP: rows read side by side (qrows.h: 8). WORK: int8 dot
 * products (vpdpbusd, one dependent chain per row) per 64 bytes read,
 * standing in for a kernel's arithmetic (0: none; 8 is about the Q4_0
 * kernels' rate in L2). Needs AVX-512 VNNI. Prints the median and the best
 * of 7 passes over a 2 GB buffer on transparent huge pages, in GB/s of rows
 * read.
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

#define GROUP_MAX 16
#define PASSES 7

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

enum { P_NONE, P_T0, P_T1, P_T2, P_NTA, P_T0_T1, P_BURST, P_T0_FAR };
static const char *const prefetch_names[] = {"none", "t0", "t1", "t2", "nta", "t0+t1", "burst", "t0+far"};

/* Two lines of a row at byte o with the mode's hint (the hint must be a
 * constant). */
static inline void prefetch2(const char *row, size_t o, int mode) {
  switch (mode) {
  case P_T0: case P_T0_T1: case P_T0_FAR:
    _mm_prefetch(row + o, _MM_HINT_T0), _mm_prefetch(row + o + 64, _MM_HINT_T0);
    break;
  case P_T1: _mm_prefetch(row + o, _MM_HINT_T1), _mm_prefetch(row + o + 64, _MM_HINT_T1); break;
  case P_T2: _mm_prefetch(row + o, _MM_HINT_T2), _mm_prefetch(row + o + 64, _MM_HINT_T2); break;
  case P_NTA: _mm_prefetch(row + o, _MM_HINT_NTA), _mm_prefetch(row + o + 64, _MM_HINT_NTA); break;
  default: break;
  }
}

int main(int argc, char **argv) {
  if (argc < 5 || argc > 7) {
    fprintf(stderr, "usage: %s ROW_BYTES PREFETCH DENSITY GROUP [WORK [AHEAD]]\n", argv[0]);
    return 2;
  }
  const size_t row_bytes = strtoul(argv[1], NULL, 10);
  int mode = -1;
  for (int m = 0; m < (int)(sizeof prefetch_names / sizeof prefetch_names[0]); m++)
    if (!strcmp(argv[2], prefetch_names[m])) mode = m;
  const double density = atof(argv[3]);
  const int group = atoi(argv[4]), work = argc > 5 ? atoi(argv[5]) : 0, ahead = argc > 6 ? atoi(argv[6]) : 1;
  if (row_bytes < 128 || row_bytes % 64 || mode < 0 || !(density > 0.0 && density <= 1.0) || group < 1 ||
      group > GROUP_MAX || work < 0 || ahead < 1) {
    fprintf(stderr, "%s: ROW_BYTES a multiple of 64 >= 128, PREFETCH none|t0|t1|t2|nta|t0+t1|burst|t0+far, "
                    "DENSITY in (0, 1], GROUP 1..%d, WORK >= 0, AHEAD >= 1\n", argv[0], GROUP_MAX);
    return 2;
  }
  char *p;
  int32_t *idx;
  size_t n;
  if (random_rows(row_bytes, 1, density, &p, &idx, &n) != 0) return 1;
  const size_t n_groups = n / (size_t)group;
  n = n_groups * (size_t)group;
  __m512i sum = _mm512_setzero_si512(), chain[GROUP_MAX];
  for (int k = 0; k < GROUP_MAX; k++) chain[k] = _mm512_setzero_si512();
  const __m512i x = _mm512_set1_epi8(3);
  double t[PASSES];
  for (int pass = 0; pass < PASSES; pass++) {
    const double t0 = now();
    for (size_t g = 0; g < n_groups; g++) {
      const char *r[GROUP_MAX], *next[GROUP_MAX], *after[GROUP_MAX];
      for (int k = 0; k < group; k++) {
        r[k] = p + (size_t)idx[g * group + k] * row_bytes;
        next[k] = g + ahead < n_groups ? p + (size_t)idx[(g + ahead) * group + k] * row_bytes : r[k];
        after[k] = g + ahead + 1 < n_groups ? p + (size_t)idx[(g + ahead + 1) * group + k] * row_bytes : r[k];
      }
      if (mode == P_BURST)
        for (int k = 0; k < group; k++)
          for (size_t o = 0; o < row_bytes; o += 64) _mm_prefetch(next[k] + o, _MM_HINT_T0);
      if (mode == P_T0_FAR)
        for (int k = 0; k < group; k++)
          for (size_t o = 0; o < row_bytes; o += 64) _mm_prefetch(after[k] + o, _MM_HINT_T1);
      for (size_t o = 0; o < row_bytes; o += 128) {
        for (int k = 0; k < group; k++) {
          __m512i v0 = _mm512_loadu_si512(r[k] + o);
          __m512i v1 = o + 128 <= row_bytes ? _mm512_loadu_si512(r[k] + o + 64) : v0;
          for (int c = 0; c < work; c++) {
            chain[k] = _mm512_dpbusd_epi32(chain[k], v0, x);
            chain[k] = _mm512_dpbusd_epi32(chain[k], v1, x);
            __asm__("" : "+v"(v0), "+v"(v1)); /* each product kept */
          }
          sum = _mm512_add_epi32(sum, _mm512_xor_si512(v0, v1));
        }
        for (int k = 0; k < group; k++) {
          prefetch2(next[k], o, mode);
          if (mode == P_T0_T1) _mm_prefetch(after[k] + o, _MM_HINT_T1), _mm_prefetch(after[k] + o + 64, _MM_HINT_T1);
        }
      }
    }
    t[pass] = now() - t0;
  }
  for (int i = 0; i < PASSES; i++)
    for (int j = i + 1; j < PASSES; j++)
      if (t[j] < t[i]) {
        const double s = t[i];
        t[i] = t[j], t[j] = s;
      }
  for (int k = 0; k < GROUP_MAX; k++) sum = _mm512_add_epi32(sum, chain[k]);
  int32_t keep[16];
  _mm512_storeu_si512(keep, sum);
  printf("rows %zu B, prefetch %s %d ahead, density %.2f, group %d, work %d: median %.1f, best %.1f GB/s (%d)\n",
         row_bytes, prefetch_names[mode], ahead, density, group, work, (double)(n * row_bytes) / t[PASSES / 2] / 1e9,
         (double)(n * row_bytes) / t[0] / 1e9, keep[0] & 1);
  return 0;
}
