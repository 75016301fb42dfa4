/*
 * avx512.c: the kernels for AVX-512 (F, BW, VL, DQ). Only this file is
 * compiled with those flags, and nothing here is shared with another ISA
 * file (see kernels.h for the contract of each kernel).
 *
 * axpy_rows is the hot kernel. With rows chosen at random it streams from
 * DRAM, so what matters is keeping enough independent row streams in flight
 * and touching y (which stays in L1) once per group of rows, not the FMA
 * count. Measured on Zen 4 (one core, W_t 8192 x 2048 fp32, active rows at
 * random, 3-10 %): 1 vector per step with a row loop ~21 GB/s; the group of
 * 8 rows written out (no pointer array) ~33 GB/s; adding the two software
 * prefetches below ~36 GB/s.
 */
#include <immintrin.h>

#include "kernels/kernels.h"

/* Rows per pass over y: y is loaded and stored once per group, and the 8
 * broadcast coefficients stay in registers. 16 rows per group measured
 * slower (~31 GB/s). */
#define AXPY_GROUP 8
/* Columns per step of the group loop: 4 vectors = 256 bytes of each row,
 * so one prefetch per row per step covers every fourth cache line. */
#define AXPY_STEP 64
/* One prefetch per row per step, this many floats (8 cache lines) ahead of
 * the loads. The hardware prefetcher follows each row once started; the
 * hint makes it start sooner on each of the 8 streams. 4 lines measured
 * worse, 12-16 the same. */
#define PREFETCH_AHEAD 128
/* Cache lines prefetched at the head of each row of the next group while
 * the current group runs, so the next group does not start on 8 cold
 * misses. */
#define PREFETCH_HEAD_LINES 4

/* Lanes [0, left) of a 16-lane vector, for the column tail. */
static inline __mmask16 tail_mask(size_t left) {
  return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

/* y[0..d) += sum of c[k] * r[k][0..d) for k < nr, nr < AXPY_GROUP: the last,
 * partial group of a call, so plain code suffices. */
static void axpy_partial_group(float *y, size_t d, const float *const *r,
                               const float *coef, size_t nr) {
  __m512 c[AXPY_GROUP];
  for (size_t k = 0; k < nr; k++) c[k] = _mm512_set1_ps(coef[k]);
  for (size_t j = 0; j < d; j += 16) {
    const __mmask16 m = tail_mask(d - j);
    __m512 acc = _mm512_maskz_loadu_ps(m, y + j);
    for (size_t k = 0; k < nr; k++)
      acc = _mm512_fmadd_ps(c[k], _mm512_maskz_loadu_ps(m, r[k] + j), acc);
    _mm512_mask_storeu_ps(y + j, m, acc);
  }
}

/* Adds the 8 rows of a group into the vector of y at column j: one load and
 * one store of y, rows added in index order (the scalar kernel's order; only
 * FMA rounding differs). LOAD is a full or a masked load. */
#define AXPY8_VECTOR(j, LOAD, STORE)                   \
  do {                                                 \
    __m512 acc = LOAD(y + (j));                        \
    acc = _mm512_fmadd_ps(c0, LOAD(r0 + (j)), acc);    \
    acc = _mm512_fmadd_ps(c1, LOAD(r1 + (j)), acc);    \
    acc = _mm512_fmadd_ps(c2, LOAD(r2 + (j)), acc);    \
    acc = _mm512_fmadd_ps(c3, LOAD(r3 + (j)), acc);    \
    acc = _mm512_fmadd_ps(c4, LOAD(r4 + (j)), acc);    \
    acc = _mm512_fmadd_ps(c5, LOAD(r5 + (j)), acc);    \
    acc = _mm512_fmadd_ps(c6, LOAD(r6 + (j)), acc);    \
    acc = _mm512_fmadd_ps(c7, LOAD(r7 + (j)), acc);    \
    STORE(y + (j), acc);                               \
  } while (0)
#define LOAD_FULL(p) _mm512_loadu_ps(p)
#define STORE_FULL(p, v) _mm512_storeu_ps((p), (v))
#define LOAD_TAIL(p) _mm512_maskz_loadu_ps(tail, (p))
#define STORE_TAIL(p, v) _mm512_mask_storeu_ps((p), tail, (v))

/* AXPY_STEP columns from column j, one vector at a time (unrolling this
 * by hand measured no faster: the loop is bound by DRAM, not by issue). */
#define AXPY8_STEP(j)                                   \
  do {                                                  \
    for (size_t u = 0; u < AXPY_STEP; u += 16)          \
      AXPY8_VECTOR((j) + u, LOAD_FULL, STORE_FULL);     \
  } while (0)

/* Prefetches float `at` of each of a group's 8 rows into L1: the rows are
 * chosen at random, so the hardware prefetcher alone cannot keep 8 streams
 * ahead. */
static inline void prefetch_group_ahead(const float *r0, const float *r1, const float *r2,
                                        const float *r3, const float *r4, const float *r5,
                                        const float *r6, const float *r7, size_t at) {
  _mm_prefetch((const char *)(r0 + at), _MM_HINT_T0);
  _mm_prefetch((const char *)(r1 + at), _MM_HINT_T0);
  _mm_prefetch((const char *)(r2 + at), _MM_HINT_T0);
  _mm_prefetch((const char *)(r3 + at), _MM_HINT_T0);
  _mm_prefetch((const char *)(r4 + at), _MM_HINT_T0);
  _mm_prefetch((const char *)(r5 + at), _MM_HINT_T0);
  _mm_prefetch((const char *)(r6 + at), _MM_HINT_T0);
  _mm_prefetch((const char *)(r7 + at), _MM_HINT_T0);
}

static inline void prefetch_row_heads(const float *w, size_t ld, size_t d,
                                      const int32_t *idx, size_t n_rows) {
  const size_t lines = d < 16 * PREFETCH_HEAD_LINES ? (d + 15) / 16 : PREFETCH_HEAD_LINES;
  for (size_t k = 0; k < n_rows; k++) {
    const float *row = w + (size_t)idx[k] * ld;
    for (size_t l = 0; l < lines; l++) _mm_prefetch((const char *)(row + 16 * l), _MM_HINT_T0);
  }
}

static void avx512_axpy_rows(float *y, size_t d, const float *w, size_t ld,
                             const int32_t *idx, const float *coef, size_t n) {
  if (d == 0) return;
  size_t t = 0;
  for (; t + AXPY_GROUP <= n; t += AXPY_GROUP) {
    const float *const r0 = w + (size_t)idx[t + 0] * ld, *const r1 = w + (size_t)idx[t + 1] * ld;
    const float *const r2 = w + (size_t)idx[t + 2] * ld, *const r3 = w + (size_t)idx[t + 3] * ld;
    const float *const r4 = w + (size_t)idx[t + 4] * ld, *const r5 = w + (size_t)idx[t + 5] * ld;
    const float *const r6 = w + (size_t)idx[t + 6] * ld, *const r7 = w + (size_t)idx[t + 7] * ld;
    const __m512 c0 = _mm512_set1_ps(coef[t + 0]), c1 = _mm512_set1_ps(coef[t + 1]);
    const __m512 c2 = _mm512_set1_ps(coef[t + 2]), c3 = _mm512_set1_ps(coef[t + 3]);
    const __m512 c4 = _mm512_set1_ps(coef[t + 4]), c5 = _mm512_set1_ps(coef[t + 5]);
    const __m512 c6 = _mm512_set1_ps(coef[t + 6]), c7 = _mm512_set1_ps(coef[t + 7]);
    const size_t next = n - (t + AXPY_GROUP) < AXPY_GROUP ? n - (t + AXPY_GROUP) : AXPY_GROUP;
    prefetch_row_heads(w, ld, d, idx + t + AXPY_GROUP, next);

    size_t j = 0;
    /* Prefetch only inside the rows' [0, d): no wasted DRAM traffic past
     * the end of a row, and no pointer formed outside the matrix. */
    for (; j + AXPY_STEP + PREFETCH_AHEAD <= d; j += AXPY_STEP) {
      prefetch_group_ahead(r0, r1, r2, r3, r4, r5, r6, r7, j + PREFETCH_AHEAD);
      AXPY8_STEP(j);
    }
    for (; j + AXPY_STEP <= d; j += AXPY_STEP) AXPY8_STEP(j);
    for (; j + 16 <= d; j += 16) AXPY8_VECTOR(j, LOAD_FULL, STORE_FULL);
    if (j < d) {
      const __mmask16 tail = tail_mask(d - j);
      AXPY8_VECTOR(j, LOAD_TAIL, STORE_TAIL);
    }
  }
  if (t < n) {
    const float *r[AXPY_GROUP];
    for (size_t k = 0; k < n - t; k++) r[k] = w + (size_t)idx[t + k] * ld;
    axpy_partial_group(y, d, r, coef + t, n - t);
  }
}

#undef AXPY8_STEP
#undef AXPY8_VECTOR
#undef LOAD_FULL
#undef STORE_FULL
#undef LOAD_TAIL
#undef STORE_TAIL

/* Rows per pass over x in dot_rows: 8 accumulators share each load of x. */
#define DOT_GROUP 8

/* One row: 4 accumulators, so the FMA latency is not the bound. */
static float dot_one_row(const float *row, const float *x, size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  size_t j = 0;
  for (; j + 64 <= d; j += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(row + j), _mm512_loadu_ps(x + j), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(row + j + 16), _mm512_loadu_ps(x + j + 16), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(row + j + 32), _mm512_loadu_ps(x + j + 32), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(row + j + 48), _mm512_loadu_ps(x + j + 48), s3);
  }
  for (; j < d; j += 16) {
    const __mmask16 m = tail_mask(d - j);
    s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, row + j), _mm512_maskz_loadu_ps(m, x + j), s0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* Adds row_k[j..j+16) * x[j..j+16) into s_k for the 8 rows of a group; x is
 * loaded once for all of them. */
#define DOT8_VECTOR(j, LOAD)                              \
  do {                                                    \
    const __m512 xv = LOAD(x + (j));                      \
    s0 = _mm512_fmadd_ps(LOAD(r0 + (j)), xv, s0);         \
    s1 = _mm512_fmadd_ps(LOAD(r1 + (j)), xv, s1);         \
    s2 = _mm512_fmadd_ps(LOAD(r2 + (j)), xv, s2);         \
    s3 = _mm512_fmadd_ps(LOAD(r3 + (j)), xv, s3);         \
    s4 = _mm512_fmadd_ps(LOAD(r4 + (j)), xv, s4);         \
    s5 = _mm512_fmadd_ps(LOAD(r5 + (j)), xv, s5);         \
    s6 = _mm512_fmadd_ps(LOAD(r6 + (j)), xv, s6);         \
    s7 = _mm512_fmadd_ps(LOAD(r7 + (j)), xv, s7);         \
  } while (0)
#define LOAD_FULL(p) _mm512_loadu_ps(p)
/* Zeros past d add nothing to the sums. */
#define LOAD_TAIL(p) _mm512_maskz_loadu_ps(tail, (p))

static void avx512_dot_rows(float *out, const float *w, size_t ld, size_t d,
                            const int32_t *idx, size_t n, const float *x) {
  size_t t = 0;
  for (; t + DOT_GROUP <= n; t += DOT_GROUP) {
    const float *const r0 = w + (size_t)idx[t + 0] * ld, *const r1 = w + (size_t)idx[t + 1] * ld;
    const float *const r2 = w + (size_t)idx[t + 2] * ld, *const r3 = w + (size_t)idx[t + 3] * ld;
    const float *const r4 = w + (size_t)idx[t + 4] * ld, *const r5 = w + (size_t)idx[t + 5] * ld;
    const float *const r6 = w + (size_t)idx[t + 6] * ld, *const r7 = w + (size_t)idx[t + 7] * ld;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps();
    __m512 s3 = _mm512_setzero_ps(), s4 = _mm512_setzero_ps(), s5 = _mm512_setzero_ps();
    __m512 s6 = _mm512_setzero_ps(), s7 = _mm512_setzero_ps();
    const size_t next = n - (t + DOT_GROUP) < DOT_GROUP ? n - (t + DOT_GROUP) : DOT_GROUP;
    prefetch_row_heads(w, ld, d, idx + t + DOT_GROUP, next);
    size_t j = 0;
    /* The same prefetches as axpy_rows: rows at random stream from DRAM. */
    for (; j + AXPY_STEP + PREFETCH_AHEAD <= d; j += AXPY_STEP) {
      prefetch_group_ahead(r0, r1, r2, r3, r4, r5, r6, r7, j + PREFETCH_AHEAD);
      for (size_t u = 0; u < AXPY_STEP; u += 16) DOT8_VECTOR(j + u, LOAD_FULL);
    }
    for (; j + 16 <= d; j += 16) DOT8_VECTOR(j, LOAD_FULL);
    if (j < d) {
      const __mmask16 tail = tail_mask(d - j);
      DOT8_VECTOR(j, LOAD_TAIL);
    }
    out[t + 0] = _mm512_reduce_add_ps(s0);
    out[t + 1] = _mm512_reduce_add_ps(s1);
    out[t + 2] = _mm512_reduce_add_ps(s2);
    out[t + 3] = _mm512_reduce_add_ps(s3);
    out[t + 4] = _mm512_reduce_add_ps(s4);
    out[t + 5] = _mm512_reduce_add_ps(s5);
    out[t + 6] = _mm512_reduce_add_ps(s6);
    out[t + 7] = _mm512_reduce_add_ps(s7);
  }
  for (; t < n; t++) out[t] = dot_one_row(w + (size_t)idx[t] * ld, x, d);
}

#undef DOT8_VECTOR
#undef LOAD_FULL
#undef LOAD_TAIL

/* The table's signatures: rows as bytes, x untyped (fp32 for this type).
 * gemv is dot_rows over consecutive rows, indices made in chunks on the
 * stack. */
static void avx512_f32_axpy_rows(float *y, size_t d, const void *w, size_t row_bytes,
                              const int32_t *idx, const float *coef, size_t n) {
  avx512_axpy_rows(y, d, w, row_bytes / sizeof(float), idx, coef, n);
}

static void avx512_f32_dot_rows(float *out, const void *w, size_t row_bytes, size_t d,
                             const int32_t *idx, size_t n, const void *x) {
  avx512_dot_rows(out, w, row_bytes / sizeof(float), d, idx, n, x);
}

static void avx512_f32_gemv(float *out, const void *w, size_t row_bytes, size_t d, size_t n_rows,
                         const void *x) {
  int32_t idx[256];
  for (size_t r0 = 0; r0 < n_rows; r0 += 256) {
    const size_t m = n_rows - r0 < 256 ? n_rows - r0 : 256;
    for (size_t i = 0; i < m; i++) idx[i] = (int32_t)(r0 + i);
    avx512_dot_rows(out + r0, w, row_bytes / sizeof(float), d, idx, m, x);
  }
}

void lzn_install_avx512_f32(lzn_kernel_table *t);
void lzn_install_avx512_f32(lzn_kernel_table *t) {
  LZN_SET_SLOT(t, LZN_WTYPE_F32, axpy_rows, LZN_KOP_AXPY_ROWS, LZN_ISA_AVX512, avx512_f32_axpy_rows);
  LZN_SET_SLOT(t, LZN_WTYPE_F32, dot_rows, LZN_KOP_DOT_ROWS, LZN_ISA_AVX512, avx512_f32_dot_rows);
  LZN_SET_SLOT(t, LZN_WTYPE_F32, gemv, LZN_KOP_GEMV, LZN_ISA_AVX512, avx512_f32_gemv);
}
