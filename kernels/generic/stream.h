/*
 * generic/stream.h: how the row kernels stream rows from DRAM, for every
 * ISA: rows per group, the software prefetches and their distances. Used
 * by the skeletons (generic/rows.h for the element types, generic/qrows.h
 * for the block types) and by kernels written apart from them
 * (avx512bf16/bf16.c). Nothing here names an ISA: the including file
 * provides, before including this,
 *     static inline void row_prefetch(const void *p, enum lzn_prefetch_level level);
 * which brings the cache line of p into L1 or toward L2 and never faults
 * (x86: x86/prefetch.h; an ARM port would use PRFM PLDL1KEEP / PLDL2KEEP).
 * An ISA may define the constants below before the include to tune them.
 *
 * The level is a parameter of every kernel loop here and in the
 * skeletons, a constant in each of the two builds of a kernel that
 * LZN_AT_LEVEL (kernels.h) picks between at install time (kernels.h says what each
 * level measured on which core).
 *
 * axpy_rows is the hot kernel. With rows chosen at random it streams from
 * DRAM, so what matters is keeping enough independent row streams in flight
 * and touching y (which stays in L1) once per group of rows, not the FMA
 * count. Measured on Zen 4 (one core, W_t 8192 x 2048 fp32, active rows at
 * random, 3-10 %), AVX2 / AVX-512: 1 vector per step with a row loop
 * ~22 / ~21 GB/s; the group of 8 rows written out (no pointer array)
 * ~28 / ~33 GB/s; adding the two software prefetches below ~31 / ~36 GB/s.
 * (GCC 12 deleted those prefetches when they sat in a helper it did not
 * inline early: see ROWS_ALWAYS_INLINE. With them emitted, lzn-bench kernels
 * --shape 2048x8192 on AMD EPYC, 9 runs alternated with the old build:
 * AVX-512 axpy_rows 8 % less time at 5 % density, 2 % at 50 %; AVX2 3 % and
 * 2 %.)
 *
 * For the 16-bit types the prefetch distance into L1 stays 512 bytes (256
 * columns): 128 columns measured the same, 1024 bytes 5-10 % slower. Toward
 * L2 the element types prefetch farther (ROWS_PREFETCH_AHEAD_L2_BYTES).
 */
#ifndef LZN_KERNELS_GENERIC_STREAM_H
#define LZN_KERNELS_GENERIC_STREAM_H

#include <stddef.h>

#include "kernels/kernels.h"

/* Rows per pass over y (axpy) or x (dot): y is loaded and stored once per
 * group, x loaded once for the group's 8 accumulators. 8 rows keep 8
 * broadcast coefficients in registers and leave 8 of the 16 ymm registers
 * for y and loads; 16 rows per group measured slower with AVX-512
 * (~31 GB/s against ~36). The skeletons name the 8 rows one by one
 * (r0 .. r7), so this is not a tuning knob. */
#define ROWS_GROUP 8
/* Columns per step of the element types' group loop: 64 fp32 = 256 bytes
 * of each row (128 for 16-bit types), so one prefetch per row per step
 * covers every fourth cache line (every second). */
#define ROWS_STEP 64
/* One prefetch per row per step, this many bytes ahead of the loads. The
 * hardware prefetcher follows each row once started; the hint makes it
 * start sooner on each of the 8 streams. With AVX-512, 4 lines measured
 * worse, 12-16 the same. */
#ifndef ROWS_PREFETCH_AHEAD_BYTES
#define ROWS_PREFETCH_AHEAD_BYTES 512
#endif
/* The element types' distance at the L2 level for long rows (rows.h,
 * avx512bf16/bf16.c; rows_prefetch_ahead_bytes below):
 * L2 holds far more lines in flight than L1, and 8 rows 2 KiB ahead is 16
 * KiB. Measured on Zen 4 (the L2 level's machine; lzn-bench kernels
 * --shape 4096x11008, cold, 2 rounds alternating, % of stream, AVX-512):
 * against 512 bytes, 2048 read f16 GEMV 74-76 -> 76-77, f16 axpy 73-76 ->
 * 79-80, bf16 GEMV 76-78 -> 80-82, bf16 dot 77-80 -> 82-83, f32 GEMV 88 ->
 * 92-93; 1024 half of that, 4096 less than 2048. The block types
 * (qrows.h) keep 512: their Q8_0 GEMV read 85-90 % at 512 and 75-79 % at
 * 2048. */
#ifndef ROWS_PREFETCH_AHEAD_L2_BYTES
#define ROWS_PREFETCH_AHEAD_L2_BYTES 2048
#endif
/* Cache lines prefetched at the head of each row of the next group while
 * the current group runs, so the next group does not start on 8 cold
 * misses. */
#ifndef ROWS_PREFETCH_HEAD_LINES
#define ROWS_PREFETCH_HEAD_LINES 4
#endif
#define ROWS_CACHE_LINE 64

/* The prefetch helpers must be inlined early: GCC 12 (-O2) otherwise
 * finds, by IPA mod/ref analysis, that a call to them changes no memory
 * and deletes it, with every prefetch inside (the kernels before x86/ were
 * built that way: their objects held no prefetch instruction). */
#define ROWS_ALWAYS_INLINE static inline __attribute__((always_inline))

/* The element types' prefetch distance for rows (or a thread's slices of
 * them) `row_bytes` long: the far one toward L2 when the row is at least 4
 * of it long; otherwise the near one, as a row's last `distance` bytes go
 * without prefetches (2 threads cut LLaMA-7B's 16-bit W_down^T rows into
 * 2 KiB slices: with those at 2 KiB ahead, bf16 axpy on 2 threads read
 * 50-72 % of the stream against 72-82 % at 512 bytes, one run). */
ROWS_ALWAYS_INLINE size_t rows_prefetch_ahead_bytes(enum lzn_prefetch_level level, size_t row_bytes) {
  if (level == LZN_PREFETCH_L2 && row_bytes >= 4 * (size_t)ROWS_PREFETCH_AHEAD_L2_BYTES)
    return ROWS_PREFETCH_AHEAD_L2_BYTES;
  return ROWS_PREFETCH_AHEAD_BYTES;
}

/* Rows of the element types of at most this many bytes (a predictor's
 * rank-256 rows: 512 bytes in F16 or BF16, 1 KiB in F32) are prefetched
 * whole, the group after the next as each group starts, as generic/qrows.h
 * does for its short rows (which says why). Measured on Zen 4 (one core,
 * 11008 rows, cold, % of the stream, 2 rounds alternating, AVX-512): 256
 * columns F32 GEMV 39-40 -> 55-59, dot of all rows 37-38 -> 62-64; BF16
 * GEMV 35-37 -> 50-54, dot 35 -> 60-69; F16 dot 31-35 -> 43-50, F16 GEMV
 * 36-40 -> 36-45; 512 columns BF16 GEMV 40-44 -> 49-51. A limit of 2 KiB
 * made F32 rows of 512 columns slower (GEMV 62-65 -> 60), 512 bytes left
 * F32's 256 columns as they were. */
#ifndef ROWS_SHORT_ROW_BYTES
#define ROWS_SHORT_ROW_BYTES 1024
#endif

/* Every line of the first `span` bytes of the rows [from, to) of a call's
 * n rows (none past n), row k at w + (idx ? idx[k] : k) * row_bytes. The
 * short-row scheme of every skeleton (rows.h, qrows.h, avx512bf16/bf16.c):
 * rows [0, 2 groups) before the first group, then, as the group at t
 * starts, [t + 2 groups, t + 3 groups). */
ROWS_ALWAYS_INLINE void rows_prefetch_rows(const void *w, size_t row_bytes, const int32_t *idx, size_t from,
                                           size_t to, size_t n, size_t span, enum lzn_prefetch_level level) {
  for (size_t k = from; k < to && k < n; k++) {
    const char *const row = (const char *)w + (idx ? (size_t)idx[k] : k) * row_bytes;
    for (size_t at = 0; at < span; at += ROWS_CACHE_LINE) row_prefetch(row + at, level);
  }
}

/* Byte `at` of each of a group's 8 rows: the rows are chosen at random, so
 * the hardware prefetcher alone cannot keep 8 streams ahead. */
ROWS_ALWAYS_INLINE void rows_prefetch8(const void *r0, const void *r1, const void *r2, const void *r3,
                                       const void *r4, const void *r5, const void *r6, const void *r7,
                                       size_t at, enum lzn_prefetch_level level) {
  row_prefetch((const char *)r0 + at, level);
  row_prefetch((const char *)r1 + at, level);
  row_prefetch((const char *)r2 + at, level);
  row_prefetch((const char *)r3 + at, level);
  row_prefetch((const char *)r4 + at, level);
  row_prefetch((const char *)r5 + at, level);
  row_prefetch((const char *)r6 + at, level);
  row_prefetch((const char *)r7 + at, level);
}

/* The first cache lines of a row whose used part is `bytes` long, never
 * past its end. */
ROWS_ALWAYS_INLINE void rows_prefetch_head(const void *row, size_t bytes, enum lzn_prefetch_level level) {
  const size_t row_lines = (bytes + ROWS_CACHE_LINE - 1) / ROWS_CACHE_LINE;
  const size_t lines = row_lines < ROWS_PREFETCH_HEAD_LINES ? row_lines : ROWS_PREFETCH_HEAD_LINES;
  for (size_t l = 0; l < lines; l++) row_prefetch((const char *)row + ROWS_CACHE_LINE * l, level);
}

/* A row kernel's two builds with the table's signature (kernels.h): name
 * with its prefetches into L1 and name##_l2 toward L2, each calling the
 * always-inline impl with the table's arguments and the level, a constant
 * there. The install functions pick one with LZN_AT_LEVEL. */
#define ROWS_AXPY_AT_LEVELS(name, impl)                                                                \
  static void name(float *y, size_t d, const void *w, size_t row_bytes, const int32_t *idx,             \
                   const float *coef, size_t n) {                                                       \
    impl(y, d, w, row_bytes, idx, coef, n, LZN_PREFETCH_L1);                                            \
  }                                                                                                     \
  static void name##_l2(float *y, size_t d, const void *w, size_t row_bytes, const int32_t *idx,        \
                        const float *coef, size_t n) {                                                  \
    impl(y, d, w, row_bytes, idx, coef, n, LZN_PREFETCH_L2);                                            \
  }
#define ROWS_DOT_AT_LEVELS(name, impl)                                                                 \
  static void name(float *out, const void *w, size_t row_bytes, size_t d, const int32_t *idx, size_t n, \
                   const void *x) {                                                                     \
    impl(out, w, row_bytes, d, idx, n, x, LZN_PREFETCH_L1);                                             \
  }                                                                                                     \
  static void name##_l2(float *out, const void *w, size_t row_bytes, size_t d, const int32_t *idx,      \
                        size_t n, const void *x) {                                                      \
    impl(out, w, row_bytes, d, idx, n, x, LZN_PREFETCH_L2);                                             \
  }
/* gemv: dot_rows over rows 0 .. n_rows, impl given idx NULL. */
#define ROWS_GEMV_AT_LEVELS(name, impl)                                                                \
  static void name(float *out, const void *w, size_t row_bytes, size_t d, size_t n_rows, const void *x) { \
    impl(out, w, row_bytes, d, NULL, n_rows, x, LZN_PREFETCH_L1);                                       \
  }                                                                                                     \
  static void name##_l2(float *out, const void *w, size_t row_bytes, size_t d, size_t n_rows,           \
                        const void *x) {                                                                \
    impl(out, w, row_bytes, d, NULL, n_rows, x, LZN_PREFETCH_L2);                                       \
  }

#endif /* LZN_KERNELS_GENERIC_STREAM_H */
