/*
 * vnni_peak.c: one core's ceiling for int8 products, the yardstick of the
 * packed gemm (kernels/x86/gemm_x16_512.h) that batches and prompts of
 * Q8_0/Q4_0 weights run on: vpdpbusd on zmm and on ymm, many independent
 * chains (enough to hide the instruction's latency), and fp32 FMAs on zmm
 * for comparison; no memory. A one-off probe for bench/RESULTS.md
 * ("2026-12-06, night"; its chains fixed "2026-12-07, late"), not built
 * by make.
 *
 *   gcc -O2 -march=native bench/probes/vnni_peak.c -o /tmp/vnni_peak && /tmp/vnni_peak
 *
 * Prints instructions per second and multiply-adds per second (64 per zmm
 * vpdpbusd, 32 per ymm; 16 per zmm FMA), best of 5 runs of ~0.5 s each.
 * Needs AVX512-VNNI.
 */
#include <immintrin.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define ITERS 20000000L
#define RUNS 5

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Instructions per second of OP on CHAINS independent registers of type T,
 * each started at SET(i) and kept by an empty asm; the chains are stored
 * to a volatile sink at the end so that none is dropped. The chains are
 * twelve named variables, not an array: GCC kept an array of them on the
 * stack, and every operation then waited on a load and a store (the first
 * version of this probe measured that: 3.3 G vpdpbusd/s and 2.1 G FMA/s on
 * Zen 5, where the core does 7). */
#define CHAINS 12
#define CHAINS_RATE(NAME, T, SET, OP)                                                              \
  static double NAME(void) {                                                                       \
    T a0 = SET(0), a1 = SET(1), a2 = SET(2), a3 = SET(3), a4 = SET(4), a5 = SET(5);                \
    T a6 = SET(6), a7 = SET(7), a8 = SET(8), a9 = SET(9), a10 = SET(10), a11 = SET(11);            \
    const double t0 = now();                                                                       \
    for (long i = 0; i < ITERS; i++) {                                                             \
      a0 = OP(a0), a1 = OP(a1), a2 = OP(a2), a3 = OP(a3), a4 = OP(a4), a5 = OP(a5);                \
      a6 = OP(a6), a7 = OP(a7), a8 = OP(a8), a9 = OP(a9), a10 = OP(a10), a11 = OP(a11);            \
      __asm__("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));                    \
      __asm__("" : "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));                  \
    }                                                                                              \
    const double t = now() - t0;                                                                   \
    const T a[CHAINS] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11};                        \
    static volatile unsigned char sink[sizeof a];                                                  \
    memcpy((void *)sink, a, sizeof a);                                                             \
    return (double)ITERS * CHAINS / t;                                                             \
  }

#define ZMM_SET(i) _mm512_set1_epi32(i)
#define ZMM_DP(a) _mm512_dpbusd_epi32(a, _mm512_set1_epi8(3), _mm512_set1_epi8(5))
#define YMM_SET(i) _mm256_set1_epi32(i)
#define YMM_DP(a) _mm256_dpbusd_epi32(a, _mm256_set1_epi8(3), _mm256_set1_epi8(5))
#define PS_SET(i) _mm512_set1_ps((float)(i))
#define PS_FMA(a) _mm512_fmadd_ps(a, _mm512_set1_ps(0.999f), _mm512_set1_ps(0.001f))

CHAINS_RATE(zmm_dpbusd, __m512i, ZMM_SET, ZMM_DP)
CHAINS_RATE(ymm_dpbusd, __m256i, YMM_SET, YMM_DP)
CHAINS_RATE(zmm_fma, __m512, PS_SET, PS_FMA)

int main(void) {
  double best[3] = {0, 0, 0};
  for (int r = 0; r < RUNS; r++) {
    const double v[3] = {zmm_dpbusd(), ymm_dpbusd(), zmm_fma()};
    for (int k = 0; k < 3; k++)
      if (v[k] > best[k]) best[k] = v[k];
  }
  printf("vpdpbusd zmm: %.2f G/s = %.0f G int8 MAC/s\n", best[0] / 1e9, best[0] * 64 / 1e9);
  printf("vpdpbusd ymm: %.2f G/s = %.0f G int8 MAC/s\n", best[1] / 1e9, best[1] * 32 / 1e9);
  printf("vfmadd zmm:   %.2f G/s = %.0f G fp32 MAC/s\n", best[2] / 1e9, best[2] * 16 / 1e9);
  return 0;
}
