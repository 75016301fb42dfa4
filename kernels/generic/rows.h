/*
 * generic/rows.h: axpy_rows, dot_rows and gemv written once, for every ISA
 * and every element type whose rows load as fp32 vectors (f32, f16, bf16):
 * simdjson's generic code, instantiated per target. Nothing here names an
 * ISA, so an ARM port includes it as the x86 files do. Each
 * kernels/<isa>/<type>.c file includes its ISA's vector primitives (x86:
 * x86/vec_avx2.h or x86/vec_avx512.h: vec_f32, VEC_LANES, vec_tail,
 * vec_tail_make, vec_load/_tail, vec_store/_tail, vec_fma, vec_add,
 * vec_set1, vec_zero, vec_hsum, vec_hsum8, and row_prefetch), then defines for its
 * weight type
 *     typedef ... w_elem;                                 one stored weight
 *     static inline vec_f32 w_load(const w_elem *p);      VEC_LANES weights as fp32
 *     static inline vec_f32 w_load_tail(const w_elem *p, vec_tail t);
 *                   the tail's weights, the rest 0, reading only the tail
 * and includes this file, which defines the table's three kernels
 *     rows_axpy_rows, rows_dot_rows, rows_gemv
 * (static, kernels.h signatures), each also as name_l2 with its
 * prefetches toward L2, for the file's install function to set through
 * LZN_AT_LEVEL. Included once per file: each file is one (ISA, type) pair.
 *
 * The row-streaming constants and prefetches, and what they were measured
 * against, are in generic/stream.h (shared with the block types'
 * skeleton, generic/qrows.h, and with kernels written apart from it, such
 * as avx512bf16/bf16.c).
 */
#ifndef LZN_KERNELS_GENERIC_ROWS_H
#define LZN_KERNELS_GENERIC_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"
#include "kernels/generic/stream.h"

_Static_assert(ROWS_STEP % VEC_LANES == 0, "a step is whole vectors");

/* ------------------------------------------------------------- groups */

/* A group's 8 rows are 8 named pointers, r0 .. r7, not an array: written
 * out, they stay in registers (with an array and loops over it, GCC 12
 * kept the array on the stack and reloaded the pointers in the loop). */
#define ROWS_GROUP_PARAMS                                                               \
  const w_elem *const r0, const w_elem *const r1, const w_elem *const r2,               \
      const w_elem *const r3, const w_elem *const r4, const w_elem *const r5,           \
      const w_elem *const r6, const w_elem *const r7
/* The group's rows from a row-number expression ROW(k), k = 0 .. 7. */
#define ROWS_GROUP_ARGS(ROW) ROW(0), ROW(1), ROW(2), ROW(3), ROW(4), ROW(5), ROW(6), ROW(7)

/* Element `at` of each of the group's 8 rows r0 .. r7. */
#define ROWS_PREFETCH_GROUP(at) \
  rows_prefetch8(r0, r1, r2, r3, r4, r5, r6, r7, (at) * sizeof(w_elem), level)
/* Elements per prefetch distance for the call's level and row length (stream.h). */
#define ROWS_PREFETCH_AHEAD (rows_prefetch_ahead_bytes(level, d * sizeof(w_elem)) / sizeof(w_elem))

/* ---------------------------------------------------------- axpy_rows */

/* Adds the 8 rows of a group into the vector of y at column j: one load and
 * one store of y, rows added in index order (the scalar kernel's order;
 * only FMA rounding differs). The LOAD/STORE pair is full or tail. */
#define ROWS_AXPY8_VECTOR(j, LOAD_Y, LOAD_W, STORE_Y) \
  do {                                                \
    vec_f32 acc = LOAD_Y(y + (j));                    \
    acc = vec_fma(c0, LOAD_W(r0 + (j)), acc);       \
    acc = vec_fma(c1, LOAD_W(r1 + (j)), acc);       \
    acc = vec_fma(c2, LOAD_W(r2 + (j)), acc);       \
    acc = vec_fma(c3, LOAD_W(r3 + (j)), acc);       \
    acc = vec_fma(c4, LOAD_W(r4 + (j)), acc);       \
    acc = vec_fma(c5, LOAD_W(r5 + (j)), acc);       \
    acc = vec_fma(c6, LOAD_W(r6 + (j)), acc);       \
    acc = vec_fma(c7, LOAD_W(r7 + (j)), acc);       \
    STORE_Y(y + (j), acc);                            \
  } while (0)
#define ROWS_TAIL_LOAD_Y(p) vec_load_tail((p), tail)
#define ROWS_TAIL_LOAD_W(p) w_load_tail((p), tail)
#define ROWS_TAIL_STORE_Y(p, v) vec_store_tail((p), tail, (v))

/* ROWS_STEP columns from column j, one vector at a time (unrolling this by
 * hand measured no faster: the loop is bound by DRAM, not by issue). */
#define ROWS_AXPY8_STEP(j)                                     \
  do {                                                         \
    for (size_t u = 0; u < ROWS_STEP; u += VEC_LANES)          \
      ROWS_AXPY8_VECTOR((j) + u, vec_load, w_load, vec_store); \
  } while (0)

/* y[0..d) += sum of coef[k] * r_k[0..d) over a full group. */
ROWS_ALWAYS_INLINE void rows_axpy_group(float *y, size_t d, ROWS_GROUP_PARAMS, const float *coef,
                                       enum lzn_prefetch_level level) {
  const vec_f32 c0 = vec_set1(coef[0]), c1 = vec_set1(coef[1]);
  const vec_f32 c2 = vec_set1(coef[2]), c3 = vec_set1(coef[3]);
  const vec_f32 c4 = vec_set1(coef[4]), c5 = vec_set1(coef[5]);
  const vec_f32 c6 = vec_set1(coef[6]), c7 = vec_set1(coef[7]);
  size_t j = 0;
  /* Prefetch only inside the rows' [0, d): no wasted DRAM traffic past the
   * end of a row, and no pointer formed outside the matrix. */
  for (; j + ROWS_STEP + ROWS_PREFETCH_AHEAD <= d; j += ROWS_STEP) {
    ROWS_PREFETCH_GROUP(j + ROWS_PREFETCH_AHEAD);
    ROWS_AXPY8_STEP(j);
  }
  for (; j + ROWS_STEP <= d; j += ROWS_STEP) ROWS_AXPY8_STEP(j);
  for (; j + VEC_LANES <= d; j += VEC_LANES) ROWS_AXPY8_VECTOR(j, vec_load, w_load, vec_store);
  if (j < d) {
    const vec_tail tail = vec_tail_make(d - j);
    ROWS_AXPY8_VECTOR(j, ROWS_TAIL_LOAD_Y, ROWS_TAIL_LOAD_W, ROWS_TAIL_STORE_Y);
  }
}

/* The last, partial group of a call (nr < ROWS_GROUP rows): plain code. */
static void rows_axpy_partial_group(float *y, size_t d, const w_elem *const *r, const float *coef,
                                    size_t nr) {
  vec_f32 c[ROWS_GROUP];
  for (size_t k = 0; k < nr; k++) c[k] = vec_set1(coef[k]);
  size_t j = 0;
  for (; j + VEC_LANES <= d; j += VEC_LANES) {
    vec_f32 acc = vec_load(y + j);
    for (size_t k = 0; k < nr; k++) acc = vec_fma(c[k], w_load(r[k] + j), acc);
    vec_store(y + j, acc);
  }
  if (j < d) {
    const vec_tail tail = vec_tail_make(d - j);
    vec_f32 acc = vec_load_tail(y + j, tail);
    for (size_t k = 0; k < nr; k++) acc = vec_fma(c[k], w_load_tail(r[k] + j, tail), acc);
    vec_store_tail(y + j, tail, acc);
  }
}

ROWS_ALWAYS_INLINE void rows_axpy_rows_at(float *y, size_t d, const void *w_bytes, size_t row_bytes,
                                         const int32_t *idx, const float *coef, size_t n,
                                         enum lzn_prefetch_level level) {
  if (d == 0) return;
  const w_elem *const w = w_bytes;
  const size_t ld = row_bytes / sizeof(w_elem);
  size_t t = 0;
  for (; t + ROWS_GROUP <= n; t += ROWS_GROUP) {
    const size_t left = n - (t + ROWS_GROUP), next = left < ROWS_GROUP ? left : ROWS_GROUP;
    for (size_t k = 0; k < next; k++)
      rows_prefetch_head(w + (size_t)idx[t + ROWS_GROUP + k] * ld, d * sizeof(w_elem), level);
#define ROW(k) w + (size_t)idx[t + (k)] * ld
    rows_axpy_group(y, d, ROWS_GROUP_ARGS(ROW), coef + t, level);
#undef ROW
  }
  if (t < n) {
    const w_elem *r[ROWS_GROUP];
    for (size_t k = 0; k < n - t; k++) r[k] = w + (size_t)idx[t + k] * ld;
    rows_axpy_partial_group(y, d, r, coef + t, n - t);
  }
}

ROWS_AXPY_AT_LEVELS(rows_axpy_rows, rows_axpy_rows_at)

#undef ROWS_AXPY8_STEP
#undef ROWS_AXPY8_VECTOR

/* ----------------------------------------------------- dot_rows, gemv */

/* One row: 4 accumulators, so the FMA latency is not the bound. */
static float rows_dot_one(const w_elem *row, const float *x, size_t d) {
  vec_f32 s0 = vec_zero(), s1 = vec_zero(), s2 = vec_zero(), s3 = vec_zero();
  size_t j = 0;
  for (; j + 4 * VEC_LANES <= d; j += 4 * VEC_LANES) {
    s0 = vec_fma(w_load(row + j), vec_load(x + j), s0);
    s1 = vec_fma(w_load(row + j + VEC_LANES), vec_load(x + j + VEC_LANES), s1);
    s2 = vec_fma(w_load(row + j + 2 * VEC_LANES), vec_load(x + j + 2 * VEC_LANES), s2);
    s3 = vec_fma(w_load(row + j + 3 * VEC_LANES), vec_load(x + j + 3 * VEC_LANES), s3);
  }
  for (; j + VEC_LANES <= d; j += VEC_LANES) s0 = vec_fma(w_load(row + j), vec_load(x + j), s0);
  if (j < d) {
    /* Zeros past d add nothing to the sum. */
    const vec_tail tail = vec_tail_make(d - j);
    s1 = vec_fma(w_load_tail(row + j, tail), vec_load_tail(x + j, tail), s1);
  }
  return vec_hsum(vec_add(vec_add(s0, s1), vec_add(s2, s3)));
}

/* Adds row_k[j..j+VEC_LANES) * x[j..) into s_k for the 8 rows of a group;
 * x is loaded once for all of them. */
#define ROWS_DOT8_VECTOR(j, LOAD_X, LOAD_W)   \
  do {                                        \
    const vec_f32 xv = LOAD_X(x + (j));       \
    s0 = vec_fma(LOAD_W(r0 + (j)), xv, s0); \
    s1 = vec_fma(LOAD_W(r1 + (j)), xv, s1); \
    s2 = vec_fma(LOAD_W(r2 + (j)), xv, s2); \
    s3 = vec_fma(LOAD_W(r3 + (j)), xv, s3); \
    s4 = vec_fma(LOAD_W(r4 + (j)), xv, s4); \
    s5 = vec_fma(LOAD_W(r5 + (j)), xv, s5); \
    s6 = vec_fma(LOAD_W(r6 + (j)), xv, s6); \
    s7 = vec_fma(LOAD_W(r7 + (j)), xv, s7); \
  } while (0)
#define ROWS_TAIL_LOAD_X(p) vec_load_tail((p), tail)

/* out[k] = r_k[0..d) . x for a full group. */
ROWS_ALWAYS_INLINE void rows_dot_group(float *out, ROWS_GROUP_PARAMS, size_t d, const float *x,
                                      enum lzn_prefetch_level level) {
  vec_f32 s0 = vec_zero(), s1 = vec_zero(), s2 = vec_zero(), s3 = vec_zero();
  vec_f32 s4 = vec_zero(), s5 = vec_zero(), s6 = vec_zero(), s7 = vec_zero();
  size_t j = 0;
  /* The same prefetches as axpy_rows: rows at random stream from DRAM. */
  for (; j + ROWS_STEP + ROWS_PREFETCH_AHEAD <= d; j += ROWS_STEP) {
    ROWS_PREFETCH_GROUP(j + ROWS_PREFETCH_AHEAD);
    for (size_t u = 0; u < ROWS_STEP; u += VEC_LANES) ROWS_DOT8_VECTOR(j + u, vec_load, w_load);
  }
  for (; j + VEC_LANES <= d; j += VEC_LANES) ROWS_DOT8_VECTOR(j, vec_load, w_load);
  if (j < d) {
    /* Zeros past d add nothing to the sums. */
    const vec_tail tail = vec_tail_make(d - j);
    ROWS_DOT8_VECTOR(j, ROWS_TAIL_LOAD_X, ROWS_TAIL_LOAD_W);
  }
  vec_hsum8(out, s0, s1, s2, s3, s4, s5, s6, s7);
}

#undef ROWS_DOT8_VECTOR

/* Row t of a call: w + idx[t] * ld, or row t itself when idx is NULL
 * (gemv: a constant there after inlining, so no test is left). */
ROWS_ALWAYS_INLINE const w_elem *rows_row(const w_elem *w, size_t ld, const int32_t *idx, size_t t) {
  return w + (idx ? (size_t)idx[t] : t) * ld;
}

/* out[t] = row t . x for t in [0, n). The head prefetch of the next group
 * stays for gemv too: it is cheap, and a column slice's rows are not
 * contiguous for the hardware prefetcher. */
ROWS_ALWAYS_INLINE void rows_dot_rows_at(float *out, const void *w_bytes, size_t row_bytes, size_t d,
                                        const int32_t *idx, size_t n, const void *x,
                                        enum lzn_prefetch_level level) {
  const w_elem *const w = w_bytes;
  const size_t ld = row_bytes / sizeof(w_elem), span = d * sizeof(w_elem);
  /* Short rows: the group after the next, whole, as a group starts
   * (stream.h); the group's own loop reaches few or no in-row prefetches
   * on rows this short. */
  const int short_rows = span <= ROWS_SHORT_ROW_BYTES;
  if (short_rows) rows_prefetch_rows(w, row_bytes, idx, 0, 2 * ROWS_GROUP, n, span, level);
  size_t t = 0;
  for (; t + ROWS_GROUP <= n; t += ROWS_GROUP) {
    const size_t left = n - (t + ROWS_GROUP), next = left < ROWS_GROUP ? left : ROWS_GROUP;
    if (short_rows)
      rows_prefetch_rows(w, row_bytes, idx, t + 2 * ROWS_GROUP, t + 3 * ROWS_GROUP, n, span, level);
    else
      for (size_t k = 0; k < next; k++) rows_prefetch_head(rows_row(w, ld, idx, t + ROWS_GROUP + k), span, level);
#define ROW(k) rows_row(w, ld, idx, t + (k))
    rows_dot_group(out + t, ROWS_GROUP_ARGS(ROW), d, x, level);
#undef ROW
  }
  for (; t < n; t++) out[t] = rows_dot_one(rows_row(w, ld, idx, t), x, d);
}

ROWS_DOT_AT_LEVELS(rows_dot_rows, rows_dot_rows_at)
ROWS_GEMV_AT_LEVELS(rows_gemv, rows_dot_rows_at)

#undef ROWS_TAIL_LOAD_X
#undef ROWS_TAIL_LOAD_Y
#undef ROWS_TAIL_LOAD_W
#undef ROWS_TAIL_STORE_Y
#undef ROWS_GROUP_PARAMS
#undef ROWS_GROUP_ARGS
#undef ROWS_PREFETCH_GROUP

#endif /* LZN_KERNELS_GENERIC_ROWS_H */
