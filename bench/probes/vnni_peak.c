/*
 * vnni_peak.c: one core's ceiling for int8 products, the yardstick of the
 * packed gemm (kernels/x86/gemm_x16_512.h) that batches and prompts of
 * Q8_0/Q4_0 weights run on: vpdpbusd on zmm and on ymm, many independent
 * chains (enough to hide the instruction's latency), and fp32 FMAs on zmm
 * for comparison; no memory. A one-off probe for bench/RESULTS.md
 * ("2026-12-06, night"), not built by make.
 *
 *   gcc -O2 -march=native bench/probes/vnni_peak.c -o /tmp/vnni_peak && /tmp/vnni_peak
 *
 * Prints instructions per second and multiply-adds per second (64 per zmm
 * vpdpbusd, 32 per ymm; 16 per zmm FMA), best of 5 runs of ~0.5 s each.
 * Needs AVX512-VNNI.
 */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

#define CHAINS 24
#define ITERS 20000000L
#define RUNS 5

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double zmm_dpbusd(void) {
  __m512i a[CHAINS];
  for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_epi32(i);
  const __m512i w = _mm512_set1_epi8(3), x = _mm512_set1_epi8(5);
  const double t0 = now();
  for (long i = 0; i < ITERS; i++) {
#pragma GCC unroll 24
    for (int k = 0; k < CHAINS; k++) {
      a[k] = _mm512_dpbusd_epi32(a[k], w, x);
      __asm__("" : "+v"(a[k])); /* each chain kept */
    }
  }
  const double t = now() - t0;
  __m512i s = a[0];
  for (int i = 1; i < CHAINS; i++) s = _mm512_add_epi32(s, a[i]);
  volatile int keep = _mm512_cvtsi512_si32(s);
  (void)keep;
  return (double)ITERS * CHAINS / t;
}

static double ymm_dpbusd(void) {
  __m256i a[CHAINS];
  for (int i = 0; i < CHAINS; i++) a[i] = _mm256_set1_epi32(i);
  const __m256i w = _mm256_set1_epi8(3), x = _mm256_set1_epi8(5);
  const double t0 = now();
  for (long i = 0; i < ITERS; i++) {
#pragma GCC unroll 24
    for (int k = 0; k < CHAINS; k++) {
      a[k] = _mm256_dpbusd_epi32(a[k], w, x);
      __asm__("" : "+v"(a[k]));
    }
  }
  const double t = now() - t0;
  __m256i s = a[0];
  for (int i = 1; i < CHAINS; i++) s = _mm256_add_epi32(s, a[i]);
  volatile int keep = _mm256_extract_epi32(s, 0);
  (void)keep;
  return (double)ITERS * CHAINS / t;
}

static double zmm_fma(void) {
  __m512 a[CHAINS];
  for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps((float)i);
  const __m512 m = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(0.001f);
  const double t0 = now();
  for (long i = 0; i < ITERS; i++) {
#pragma GCC unroll 24
    for (int k = 0; k < CHAINS; k++) {
      a[k] = _mm512_fmadd_ps(a[k], m, c);
      __asm__("" : "+v"(a[k]));
    }
  }
  const double t = now() - t0;
  __m512 s = a[0];
  for (int i = 1; i < CHAINS; i++) s = _mm512_add_ps(s, a[i]);
  volatile float keep = _mm512_cvtss_f32(s);
  (void)keep;
  return (double)ITERS * CHAINS / t;
}

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
