/*
 * testutil.h: small helpers shared by the Check suites (header-only: each
 * suite is one .c file and one binary).
 */
#ifndef LZN_TESTUTIL_H
#define LZN_TESTUTIL_H

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* Deterministic generator (xorshift64*), so a failure reproduces. */
typedef struct { uint64_t s; } test_rng;

static inline uint64_t rng_next(test_rng *r) {
  r->s ^= r->s >> 12, r->s ^= r->s << 25, r->s ^= r->s >> 27;
  return r->s * 2685821657736338717ull;
}
/* Uniform in [-1, 1). */
static inline float rng_float(test_rng *r) {
  return (float)((double)(rng_next(r) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}
static inline uint64_t rng_below(test_rng *r, uint64_t n) { return rng_next(r) % n; }

static inline void fill_random(test_rng *r, float *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = rng_float(r);
}

/* Largest |a - b| / (1 + |b|): an error relative to the reference's scale. */
static inline double max_rel_error(const float *a, const float *b, size_t n) {
  double worst = 0.0;
  for (size_t i = 0; i < n; i++) {
    const double e = fabs((double)a[i] - (double)b[i]) / (1.0 + fabs((double)b[i]));
    if (!(e <= worst)) worst = e; /* NaN wins */
  }
  return worst;
}

/* Runs a suite with Check's usual summary line; returns the exit code. */
static inline int run_suite(Suite *suite) {
  SRunner *runner = srunner_create(suite);
  srunner_run_all(runner, CK_NORMAL);
  const int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? 0 : 1;
}

#endif /* LZN_TESTUTIL_H */
