/*
 * generic/qrows.h: dot_rows, gemv and axpy_rows for the block weight types
 * (Q8_0, Q4_0, and the K-quants' 256-weight super-blocks), written once for
 * every type and every ISA. Nothing here names an ISA or a type: an ARM
 * port includes it as the x86 files do. What the loops leave to the
 * including file is what differs between types: how a step of blocks is
 * decoded and multiplied.
 *
 * A row of d weights is ceil(d / QR_BLOCK_WEIGHTS) whole blocks (the last
 * padded with zeros, kernels.h); x, for the dot kernels, is
 * ceil(d / QR_X_BLOCK_WEIGHTS) blocks of the type's dot type
 * (lzn_wtype_dot_type: Q8_0 for Q8_0/Q4_0, an int8 type of its own for a
 * K-quant). The loops walk rows in groups of ROWS_GROUP (generic/stream.h)
 * and columns in steps of a few blocks. The including file provides, first
 * its ISA's primitives (x86: x86/vec_avx2.h or x86/vec_avx512.h):
 *
 *   vec_f32, VEC_LANES, vec_zero, vec_hsum, vec_hsum8, vec_set1, vec_load, vec_store,
 *   row_prefetch
 *
 * then, for its weight type (x86: x86/q4_0_avx512.h and the like):
 *
 *   QR_BLOCK_WEIGHTS, QR_BLOCK_BYTES       the weight type's block
 *   QR_X_BLOCK_WEIGHTS, QR_X_BLOCK_BYTES   the dot type's block; it divides
 *                                          the weight block
 *   QR_DOT_STEP_BLOCKS                     weight blocks per dot step
 *   typedef ... qr_xstep;                  x for one dot step, as the step
 *                                          wants it (made once per call,
 *                                          used by every row)
 *   void qr_xstep_make(qr_xstep *xs, const void *x);
 *       from the x blocks of one step (QR_DOT_STEP_BLOCKS *
 *       QR_BLOCK_WEIGHTS / QR_X_BLOCK_WEIGHTS of them, at x)
 *   vec_f32 qr_dot_step(vec_f32 acc, const void *w, const qr_xstep *xs);
 *       acc plus the dot product of the step's weight blocks at w with x,
 *       spread over the lanes in any way (vec_hsum adds them)
 *   QR_AXPY_STEP_BLOCKS                    weight blocks per axpy step,
 *                                          whole vectors of y
 *   void qr_axpy_step(vec_f32 *y, const void *w, vec_f32 coef);
 *       y[0 .. QR_AXPY_STEP_VECS) (vectors of the step's columns, in
 *       registers) += coef * the step's weights; per block, the fp32
 *       product coef * scale times the integer weight, as ref/ does
 *
 * (static inline; always_inline where the compiler hesitates). The
 * skeleton defines qr_dot_rows, qr_gemv and qr_axpy_rows (and
 * qr_axpy_rows_q8, below) with the table's signatures, each also as
 * name_l2 with its prefetches toward L2 (generic/stream.h), for the file's
 * install function to set through LZN_AT_LEVEL.
 *
 * Ends of rows: a row's last step may have fewer blocks than a full one.
 * The loops copy those blocks, and the x blocks they meet, into zeroed
 * buffers of a whole step and run the full step on them: an all-zero block
 * has scale 0 and adds nothing, in every llama.cpp block type. So no step
 * function needs a tail version, nothing past a row's last block (or past
 * y[d - 1]) is read or written, and a type's code is only its full step.
 * A row shorter than one step (a predictor's rank, the tests' d = 1, 3, 7)
 * is only a tail.
 *
 * Column slices (threads): the kernels see w + lzn_wtype_row_bytes(type,
 * j0) and the slice's d, as every kernel does (kernels.h); steps are
 * counted from the slice's start, so a slice needs only block alignment.
 *
 * x is made into steps once per call, QR_X_CHUNK_BYTES of them at a time
 * (on the stack, so in L1 while every row group reads it); rows longer
 * than a chunk are summed chunk by chunk into out.
 */
#ifndef LZN_KERNELS_GENERIC_QROWS_H
#define LZN_KERNELS_GENERIC_QROWS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/generic/stream.h"
#include "kernels/kernels.h"

/* How far ahead a step prefetches its rows: ROWS_PREFETCH_AHEAD_BYTES,
 * unless the type's header sets its own distance toward L2 (the level
 * Zen 4 runs). Q6_K does: its 210-byte super-blocks read ~8 points more
 * of the stream at 256 bytes (x86/q6_k_avx512.h). */
#ifndef QR_PREFETCH_AHEAD_L2_BYTES
#define QR_PREFETCH_AHEAD_L2_BYTES ROWS_PREFETCH_AHEAD_BYTES
#endif
#define QR_PREFETCH_AHEAD(level) \
  ((size_t)((level) == LZN_PREFETCH_L2 ? QR_PREFETCH_AHEAD_L2_BYTES : ROWS_PREFETCH_AHEAD_BYTES))

#define QR_DOT_STEP_WEIGHTS (QR_DOT_STEP_BLOCKS * QR_BLOCK_WEIGHTS)
#define QR_DOT_STEP_BYTES (QR_DOT_STEP_BLOCKS * QR_BLOCK_BYTES)
#define QR_DOT_STEP_X_BYTES (QR_DOT_STEP_WEIGHTS / QR_X_BLOCK_WEIGHTS * QR_X_BLOCK_BYTES)
#define QR_AXPY_STEP_WEIGHTS (QR_AXPY_STEP_BLOCKS * QR_BLOCK_WEIGHTS)
#define QR_AXPY_STEP_BYTES (QR_AXPY_STEP_BLOCKS * QR_BLOCK_BYTES)
#define QR_AXPY_STEP_VECS (QR_AXPY_STEP_WEIGHTS / VEC_LANES)

_Static_assert(QR_BLOCK_WEIGHTS % QR_X_BLOCK_WEIGHTS == 0, "x blocks tile a weight block");
_Static_assert(QR_AXPY_STEP_WEIGHTS % VEC_LANES == 0, "an axpy step is whole vectors of y");

/* Bytes of prepared x per chunk: 16 KiB stays in L1 next to the rows. */
#ifndef QR_X_CHUNK_BYTES
#define QR_X_CHUNK_BYTES 16384
#endif
#define QR_X_CHUNK_STEPS (QR_X_CHUNK_BYTES / sizeof(qr_xstep) > 0 ? QR_X_CHUNK_BYTES / sizeof(qr_xstep) : 1)

/* Prefetches per row per step: the step's bytes in lines, rounded to the
 * nearest (at least 1). A 72-byte step then prefetches 64 of its bytes:
 * the line it skips every 8 steps comes with its neighbours from the
 * hardware's adjacent-line prefetch; rounding up (2 prefetches) measured
 * ~10 % slower in L2, where prefetches only take load slots. */
#define QR_PREFETCH_LINES(step_bytes) \
  ((step_bytes) < ROWS_CACHE_LINE ? 1 : ((step_bytes) + ROWS_CACHE_LINE / 2) / ROWS_CACHE_LINE)

#define QR_ALWAYS_INLINE static inline __attribute__((always_inline))

/* The row t of a call: idx[t], or t itself for gemv (idx NULL). */
QR_ALWAYS_INLINE const unsigned char *qr_row(const void *w, size_t row_bytes, const int32_t *idx, size_t t) {
  return (const unsigned char *)w + (idx ? (size_t)idx[t] : t) * row_bytes;
}

/* Prefetches the first lines, from byte `from`, of the rows [t, t + n) (n
 * may be 0), within the span bytes of each row that the call reads: the
 * next group's heads, while the current group runs. */
QR_ALWAYS_INLINE void qr_prefetch_heads(const void *w, size_t row_bytes, size_t from, size_t span,
                                        const int32_t *idx, size_t t, size_t n, enum lzn_prefetch_level level) {
  for (size_t k = 0; k < n; k++) rows_prefetch_head(qr_row(w, row_bytes, idx, t + k) + from, span - from, level);
}

/* Rows of at most this many bytes are prefetched whole, two groups
 * ahead, instead of step by step: a predictor's rank-256 rows (272 bytes
 * in Q8_0, 144 in Q4_0) make groups of 2 KB or less, so the next group one
 * step ahead was too close to hide DRAM's latency, and the per-step
 * prefetches (two lines per row for a 68-byte step) outnumbered the lines
 * read 3 to 1. Measured on Zen 4 (one core, 11008 rows, cold, % of the
 * stream, 3 rounds alternating): GEMV of 256 columns Q8_0 47-58 -> 52-68
 * (AVX-512 VNNI and AVX2), Q4_0 41-51 -> 65-70 (AVX-512; AVX2 33-53 ->
 * 43-46), all rows as dot_rows Q8_0 46-51 -> 59-69, the same rows gathered
 * at 10 % Q4_0 18-21 -> 27-28 (AVX-512), Q8_0 20-26 -> 18-25;
 * rows of 544 bytes (Q8_0, 512 columns) measured slower this way (66 ->
 * 61), so longer rows keep the step-by-step scheme below. */
#define QR_SHORT_ROW_BYTES 320

/* Prefetches per row per step for the next group: the step's bytes in
 * lines, rounded up (rounded to the nearest, as QR_PREFETCH_LINES, measured
 * slower with the next group's lines going to L1). */
#define QR_NEXT_LINES(step_bytes) (((step_bytes) + ROWS_CACHE_LINE - 1) / ROWS_CACHE_LINE)

/* next[k] = the row after the group starting at t, t + ROWS_GROUP + k, or
 * the last row of that group where it has fewer than ROWS_GROUP, or own
 * (a row the group reads anyway) when there is no next group. */
QR_ALWAYS_INLINE void qr_next_rows(const unsigned char **next, const void *w, size_t row_bytes, const int32_t *idx,
                                   size_t t, size_t n, const unsigned char *own) {
  const size_t t1 = t + ROWS_GROUP;
  for (size_t k = 0; k < ROWS_GROUP; k++)
    next[k] = t1 >= n ? own : qr_row(w, row_bytes, idx, t1 + k < n ? t1 + k : n - 1);
}

/* The next group's rows at byte `at`, one step's bytes of lines each (the
 * group reads step by step at the same pace, so they arrive one group
 * ahead: 8 rows of 2.3 KB (Q4_0, d = 4096) are 18 KB, more than the
 * distance a prefetch inside a row can cover; measured, with only the
 * first 256 bytes of the next rows prefetched, gathered Q4_0 rows were
 * read at 37 % of the stream, contiguous ones at 67 %). At the table's
 * level, as every prefetch here: on Zen 5 (one core, LLaMA-7B rows,
 * cold, 5 interleaved rounds) these into L1 took the GEMV from 66 to 85 %
 * of the stream in Q4_0, 64 to 78 % in Q4_K, 77 to 87 % in Q8_0 (AVX2: 72
 * to 86 %) against prefetcht1, gathered rows at 10 % 1-5 points; on Zen 4
 * all of them toward L2 took Q4_0 from 46 to 85-87 %, Q4_K 41 to 77, Q8_0
 * 57 to 83-85, and these toward L2 alone only to 57 (kernels.h). */
#define QR_PREFETCH_NEXT(next, at, step_bytes)                                          \
  do {                                                                                  \
    for (size_t k_ = 0; k_ < ROWS_GROUP; k_++)                                          \
      for (size_t l_ = 0; l_ < QR_NEXT_LINES(step_bytes); l_++)                          \
        row_prefetch((next)[k_] + (at) + l_ * ROWS_CACHE_LINE, level);                  \
  } while (0)

/* Each of the group's rows, from byte `at` on, one step's worth of lines,
 * where that is still inside the row's span. */
#define QR_PREFETCH_GROUP(at, step_bytes, span)                                                \
  do {                                                                                         \
    if ((at) + (step_bytes) <= (span))                                                         \
      for (size_t l_ = 0; l_ < QR_PREFETCH_LINES(step_bytes); l_++)                            \
        rows_prefetch8(r0, r1, r2, r3, r4, r5, r6, r7, (at) + l_ * ROWS_CACHE_LINE, level);    \
  } while (0)

/* ------------------------------------------------------------ dot, gemv */

/* x's steps [s0, s0 + n) into xs; a last step with fewer blocks than a
 * whole one (tail_x_bytes of x left) through a zeroed copy. */
static void qr_x_chunk(qr_xstep *xs, const unsigned char *x, size_t s0, size_t n, size_t n_full,
                       size_t tail_x_bytes) {
  for (size_t s = 0; s < n; s++) {
    const unsigned char *at = x + (s0 + s) * QR_DOT_STEP_X_BYTES;
    if (s0 + s < n_full) {
      qr_xstep_make(&xs[s], at);
    } else {
      unsigned char padded[QR_DOT_STEP_X_BYTES];
      memset(padded, 0, sizeof padded);
      memcpy(padded, at, tail_x_bytes);
      qr_xstep_make(&xs[s], padded);
    }
  }
}

/* acc plus a last, partial step of tail_bytes at w (whole blocks). */
QR_ALWAYS_INLINE vec_f32 qr_dot_tail(vec_f32 acc, const unsigned char *w, size_t tail_bytes, const qr_xstep *xs) {
  unsigned char padded[QR_DOT_STEP_BYTES];
  memset(padded, 0, sizeof padded);
  memcpy(padded, w, tail_bytes);
  return qr_dot_step(acc, padded, xs);
}

/* Adds the 8 rows' dot products over the chunk's steps into acc0..acc7.
 * x's step is copied into a local, which GCC keeps in registers where
 * there are enough (AVX-512); forcing that with an empty asm per type
 * measured no faster in L2 or from memory (2026-12-05 and -06). */
#define QR_DOT8_STEP(s)                                      \
  do {                                                       \
    const size_t off_ = (s) * QR_DOT_STEP_BYTES;             \
    const qr_xstep xv_ = xs[(s) - c0];                       \
    const qr_xstep *xs_ = &xv_;                              \
    acc0 = qr_dot_step(acc0, r0 + off_, xs_);                \
    acc1 = qr_dot_step(acc1, r1 + off_, xs_);                \
    acc2 = qr_dot_step(acc2, r2 + off_, xs_);                \
    acc3 = qr_dot_step(acc3, r3 + off_, xs_);                \
    acc4 = qr_dot_step(acc4, r4 + off_, xs_);                \
    acc5 = qr_dot_step(acc5, r5 + off_, xs_);                \
    acc6 = qr_dot_step(acc6, r6 + off_, xs_);                \
    acc7 = qr_dot_step(acc7, r7 + off_, xs_);                \
  } while (0)

/* out[t] = row t . x for t in [0, n), row t = qr_row(w, row_bytes, idx, t). */
QR_ALWAYS_INLINE void qr_dot_any(float *out, const void *w, size_t row_bytes, size_t d, const int32_t *idx,
                                 size_t n, const void *x, enum lzn_prefetch_level level) {
  if (n == 0) return;
  const size_t n_blocks = (d + QR_BLOCK_WEIGHTS - 1) / QR_BLOCK_WEIGHTS;
  const size_t n_full = n_blocks / QR_DOT_STEP_BLOCKS;
  const size_t tail_blocks = n_blocks % QR_DOT_STEP_BLOCKS;
  const size_t n_steps = n_full + (tail_blocks != 0);
  const size_t tail_bytes = tail_blocks * QR_BLOCK_BYTES;
  const size_t tail_x_bytes = tail_blocks * QR_BLOCK_WEIGHTS / QR_X_BLOCK_WEIGHTS * QR_X_BLOCK_BYTES;
  const size_t span = n_blocks * QR_BLOCK_BYTES; /* bytes of each row that are read */
  qr_xstep xs[QR_X_CHUNK_STEPS];
  for (size_t c0 = 0; c0 < n_steps; c0 += QR_X_CHUNK_STEPS) {
    const size_t c1 = n_steps - c0 < QR_X_CHUNK_STEPS ? n_steps : c0 + QR_X_CHUNK_STEPS;
    const size_t c_full = c1 < n_full ? c1 : n_full; /* steps of this chunk read in place */
    qr_x_chunk(xs, x, c0, c1 - c0, n_full, tail_x_bytes);
    size_t t = 0;
    /* Short rows: the group after the next, whole, as a group starts,
     * and nothing per step. */
    const int short_rows = span <= QR_SHORT_ROW_BYTES;
    if (short_rows) rows_prefetch_rows(w, row_bytes, idx, 0, 2 * ROWS_GROUP, n, span, level);
    for (; t + ROWS_GROUP <= n; t += ROWS_GROUP) {
      const size_t left = n - (t + ROWS_GROUP);
      if (short_rows) {
        rows_prefetch_rows(w, row_bytes, idx, t + 2 * ROWS_GROUP, t + 3 * ROWS_GROUP, n, span, level);
      } else {
        qr_prefetch_heads(w, row_bytes, c0 * QR_DOT_STEP_BYTES, span, idx, t + ROWS_GROUP,
                          left < ROWS_GROUP ? left : ROWS_GROUP, level);
      }
      const unsigned char *const r0 = qr_row(w, row_bytes, idx, t), *const r1 = qr_row(w, row_bytes, idx, t + 1);
      const unsigned char *const r2 = qr_row(w, row_bytes, idx, t + 2), *const r3 = qr_row(w, row_bytes, idx, t + 3);
      const unsigned char *const r4 = qr_row(w, row_bytes, idx, t + 4), *const r5 = qr_row(w, row_bytes, idx, t + 5);
      const unsigned char *const r6 = qr_row(w, row_bytes, idx, t + 6), *const r7 = qr_row(w, row_bytes, idx, t + 7);
      /* The next group's rows (the group's own where there is none), read
       * one group ahead. */
      const unsigned char *next[ROWS_GROUP];
      qr_next_rows(next, w, row_bytes, idx, t, n, r0);
      vec_f32 acc0 = vec_zero(), acc1 = vec_zero(), acc2 = vec_zero(), acc3 = vec_zero();
      vec_f32 acc4 = vec_zero(), acc5 = vec_zero(), acc6 = vec_zero(), acc7 = vec_zero();
      for (size_t s = c0; s < c_full; s++) {
        if (!short_rows) {
          QR_PREFETCH_GROUP(s * QR_DOT_STEP_BYTES + QR_PREFETCH_AHEAD(level), QR_DOT_STEP_BYTES, span);
          QR_PREFETCH_NEXT(next, s * QR_DOT_STEP_BYTES, QR_DOT_STEP_BYTES);
        }
        QR_DOT8_STEP(s);
      }
      if (c_full < c1) {
        const size_t off = n_full * QR_DOT_STEP_BYTES;
        const qr_xstep *xt = &xs[n_full - c0];
        acc0 = qr_dot_tail(acc0, r0 + off, tail_bytes, xt);
        acc1 = qr_dot_tail(acc1, r1 + off, tail_bytes, xt);
        acc2 = qr_dot_tail(acc2, r2 + off, tail_bytes, xt);
        acc3 = qr_dot_tail(acc3, r3 + off, tail_bytes, xt);
        acc4 = qr_dot_tail(acc4, r4 + off, tail_bytes, xt);
        acc5 = qr_dot_tail(acc5, r5 + off, tail_bytes, xt);
        acc6 = qr_dot_tail(acc6, r6 + off, tail_bytes, xt);
        acc7 = qr_dot_tail(acc7, r7 + off, tail_bytes, xt);
      }
      if (c0 == 0) {
        vec_hsum8(out + t, acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7);
      } else {
        float sums[ROWS_GROUP];
        vec_hsum8(sums, acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7);
        for (size_t k = 0; k < ROWS_GROUP; k++) out[t + k] += sums[k];
      }
    }
    /* The last rows, fewer than a group, one at a time. */
    for (; t < n; t++) {
      const unsigned char *const row = qr_row(w, row_bytes, idx, t);
      vec_f32 acc = vec_zero();
      for (size_t s = c0; s < c_full; s++) acc = qr_dot_step(acc, row + s * QR_DOT_STEP_BYTES, &xs[s - c0]);
      if (c_full < c1) acc = qr_dot_tail(acc, row + n_full * QR_DOT_STEP_BYTES, tail_bytes, &xs[n_full - c0]);
      out[t] = c0 == 0 ? vec_hsum(acc) : out[t] + vec_hsum(acc);
    }
  }
}

#undef QR_DOT8_STEP

/* The table's signatures, at each prefetch level. */
ROWS_DOT_AT_LEVELS(qr_dot_rows, qr_dot_any)
ROWS_GEMV_AT_LEVELS(qr_gemv, qr_dot_any)

/* ------------------------------------------------------------- axpy_rows */

/* y_step[0 .. QR_AXPY_STEP_WEIGHTS) += the nr rows' steps at offset off,
 * rows added in index order (the reference's order; only FMA rounding
 * differs). y is loaded and stored once for the whole group. */
QR_ALWAYS_INLINE void qr_axpy_group_step(float *y_step, const unsigned char *const *r, const vec_f32 *c, size_t nr,
                                         size_t off) {
  vec_f32 yv[QR_AXPY_STEP_VECS];
#pragma GCC unroll 16
  for (size_t v = 0; v < QR_AXPY_STEP_VECS; v++) yv[v] = vec_load(y_step + v * VEC_LANES);
#pragma GCC unroll 8
  for (size_t k = 0; k < nr; k++) qr_axpy_step(yv, r[k] + off, c[k]);
#pragma GCC unroll 16
  for (size_t v = 0; v < QR_AXPY_STEP_VECS; v++) vec_store(y_step + v * VEC_LANES, yv[v]);
}

/* The same for a last step of tail_bytes of each row and y_left columns of
 * y: through zeroed copies. */
static void qr_axpy_group_tail(float *y_step, size_t y_left, const unsigned char *const *r, const vec_f32 *c,
                               size_t nr, size_t off, size_t tail_bytes) {
  float y_copy[QR_AXPY_STEP_WEIGHTS];
  unsigned char rows[ROWS_GROUP][QR_AXPY_STEP_BYTES];
  const unsigned char *padded[ROWS_GROUP];
  memset(y_copy, 0, sizeof y_copy);
  memcpy(y_copy, y_step, y_left * sizeof(float));
  memset(rows, 0, sizeof rows);
  for (size_t k = 0; k < nr; k++) {
    memcpy(rows[k], r[k] + off, tail_bytes);
    padded[k] = rows[k];
  }
  qr_axpy_group_step(y_copy, padded, c, nr, 0);
  memcpy(y_step, y_copy, y_left * sizeof(float));
}

/* y[0..d) += sum of coef[k] * row k over a group of nr <= ROWS_GROUP rows;
 * with nr a constant the loops over k unroll. */
QR_ALWAYS_INLINE void qr_axpy_group(float *y, size_t d, const unsigned char *const *r, const float *coef, size_t nr,
                                    size_t span, const unsigned char *const *next, enum lzn_prefetch_level level) {
  const size_t n_blocks = (d + QR_BLOCK_WEIGHTS - 1) / QR_BLOCK_WEIGHTS;
  const size_t n_full = n_blocks / QR_AXPY_STEP_BLOCKS;
  const size_t tail_blocks = n_blocks % QR_AXPY_STEP_BLOCKS;
  vec_f32 c[ROWS_GROUP];
#pragma GCC unroll 8
  for (size_t k = 0; k < nr; k++) c[k] = vec_set1(coef[k]);
  /* Whole steps whose columns all lie in y: the last step of a slice that
   * ends mid-block (d not a multiple of the block) goes through the tail. */
  size_t full_in_y = n_full;
  if (full_in_y * QR_AXPY_STEP_WEIGHTS > d) full_in_y--;
  for (size_t s = 0; s < full_in_y; s++) {
    const size_t at = s * QR_AXPY_STEP_BYTES + QR_PREFETCH_AHEAD(level);
    if (at + QR_AXPY_STEP_BYTES <= span)
#pragma GCC unroll 8
      for (size_t k = 0; k < nr; k++)
        for (size_t l = 0; l < QR_PREFETCH_LINES(QR_AXPY_STEP_BYTES); l++)
          row_prefetch(r[k] + at + l * ROWS_CACHE_LINE, level);
    QR_PREFETCH_NEXT(next, s * QR_AXPY_STEP_BYTES, QR_AXPY_STEP_BYTES);
    qr_axpy_group_step(y + s * QR_AXPY_STEP_WEIGHTS, r, c, nr, s * QR_AXPY_STEP_BYTES);
  }
  for (size_t s = full_in_y; s < n_full + (tail_blocks != 0); s++) {
    const size_t blocks = s < n_full ? QR_AXPY_STEP_BLOCKS : tail_blocks;
    qr_axpy_group_tail(y + s * QR_AXPY_STEP_WEIGHTS, d - s * QR_AXPY_STEP_WEIGHTS, r, c, nr,
                       s * QR_AXPY_STEP_BYTES, blocks * QR_BLOCK_BYTES);
  }
}

QR_ALWAYS_INLINE void qr_axpy_rows_at(float *y, size_t d, const void *w, size_t row_bytes, const int32_t *idx,
                                      const float *coef, size_t n, enum lzn_prefetch_level level) {
  if (d == 0 || n == 0) return;
  const size_t span = (d + QR_BLOCK_WEIGHTS - 1) / QR_BLOCK_WEIGHTS * QR_BLOCK_BYTES;
  const unsigned char *r[ROWS_GROUP];
  size_t t = 0;
  const unsigned char *next[ROWS_GROUP];
  for (; t + ROWS_GROUP <= n; t += ROWS_GROUP) {
    for (size_t k = 0; k < ROWS_GROUP; k++) r[k] = qr_row(w, row_bytes, idx, t + k);
    const size_t left = n - (t + ROWS_GROUP);
    qr_prefetch_heads(w, row_bytes, 0, span, idx, t + ROWS_GROUP, left < ROWS_GROUP ? left : ROWS_GROUP, level);
    qr_next_rows(next, w, row_bytes, idx, t, n, r[0]);
    qr_axpy_group(y, d, r, coef + t, ROWS_GROUP, span, next, level);
  }
  if (t < n) {
    for (size_t k = 0; k < n - t; k++) r[k] = qr_row(w, row_bytes, idx, t + k);
    qr_next_rows(next, w, row_bytes, idx, t, n, r[0]);
    qr_axpy_group(y, d, r, coef + t, n - t, span, next, level);
  }
}

ROWS_AXPY_AT_LEVELS(qr_axpy_rows, qr_axpy_rows_at)

/* ---------------------------------------------------------- axpy_rows_q8 */

#ifdef QR_AXPY_Q8_STEP_BLOCKS
/* axpy_rows_q8 (kernels.h): the coefficients of each group of
 * LZN_AXPY_Q8_GROUP (16) rows rounded to int8 per block, so that a step
 * sums the group's rows in integers. The type provides, besides the above:
 *
 *   QR_AXPY_Q8_STEP_BLOCKS               weight blocks per step
 *   typedef ... qr_q8_group;             a group's coefficients as its steps
 *                                        want them
 *   void qr_q8_group_make(qr_q8_group *g, const float *coef, size_t nr);
 *       coef[0 .. nr), 1 <= nr <= LZN_AXPY_Q8_GROUP; rows nr.. weigh 0
 *       (the loops pass the group's first row for them)
 *   void qr_q8_y_order(float *y);
 *       the step's columns of y, in place, into the order the step adds
 *       its columns in (its integer lanes need not follow y's), and back:
 *       applied twice it is the identity
 *   typedef ... qr_q8_coefs;             one step's int8 coefficients
 *   void qr_q8_step_coefs(qr_q8_coefs *c, const unsigned char *const *r, size_t off,
 *                         const qr_q8_group *g);
 *       the coefficients of the step at byte off of the group's rows r[0
 *       .. LZN_AXPY_Q8_GROUP) (from their block scales and the group's
 *       coef); or, instead, the chunk functions below
 *   void qr_q8_step_add(float *y, const unsigned char *const *r, size_t off,
 *                       const qr_q8_coefs *c);
 *       y (a step's columns, in the step's order) += the group's
 *       contribution from that step
 *
 * y is put in the steps' order once per call and back at the end: the
 * steps then add into it with no shuffle of their results. A step's
 * coefficients are a long chain (scales, max, divisions, converts, packs)
 * that the adds wait for: the loop makes step s + 1's while it adds step
 * s's, so the core always has independent work (the chain in line with
 * its step measured ~19 GB/s in L2 with AVX512_VNNI, no faster than the
 * fp32 axpy_rows; pipelined, 35-37). */

#define QR_AXPY_Q8_STEP_WEIGHTS (QR_AXPY_Q8_STEP_BLOCKS * QR_BLOCK_WEIGHTS)
#define QR_AXPY_Q8_STEP_BYTES (QR_AXPY_Q8_STEP_BLOCKS * QR_BLOCK_BYTES)

/* Step s's coefficients (of n_steps from the rows r). A type may instead
 * make them QR_Q8_CHUNK_STEPS steps at a time, where one vector lane per
 * block is cheaper than one step's lanes (x86/q4_0_avx512.h says why):
 *
 *   typedef ... qr_q8_chunk;
 *   void qr_q8_chunk_make(qr_q8_chunk *ch, const unsigned char *const *r, size_t off,
 *                         size_t n_blocks, const qr_q8_group *g);
 *       the coefficients of n_blocks (1 .. QR_Q8_CHUNK_STEPS *
 *       QR_AXPY_Q8_STEP_BLOCKS) blocks at byte off, reading no byte of a
 *       row past them
 *   void qr_q8_chunk_step(qr_q8_coefs *c, const qr_q8_chunk *ch, size_t k);
 *       the chunk's step k as qr_q8_step_coefs would make it
 *
 * held in a qr_q8_coef_source (one per group of rows). */
typedef struct {
#ifdef QR_Q8_CHUNK_STEPS
  qr_q8_chunk chunk;
  size_t first; /* the chunk's first step; SIZE_MAX before one is made */
#else
  char unused;
#endif
} qr_q8_coef_source;

QR_ALWAYS_INLINE void qr_q8_coefs_at(qr_q8_coefs *c, qr_q8_coef_source *src, const unsigned char *const *r, size_t s,
                                     size_t n_steps, const qr_q8_group *g) {
#ifdef QR_Q8_CHUNK_STEPS
  const size_t first = s - s % QR_Q8_CHUNK_STEPS;
  if (src->first != first) {
    const size_t steps = n_steps - first < QR_Q8_CHUNK_STEPS ? n_steps - first : QR_Q8_CHUNK_STEPS;
    qr_q8_chunk_make(&src->chunk, r, first * QR_AXPY_Q8_STEP_BYTES, steps * QR_AXPY_Q8_STEP_BLOCKS, g);
    src->first = first;
  }
  qr_q8_chunk_step(c, &src->chunk, s - first);
#else
  (void)src, (void)n_steps;
  qr_q8_step_coefs(c, r, s * QR_AXPY_Q8_STEP_BYTES, g);
#endif
}

QR_ALWAYS_INLINE void qr_q8_coef_source_init(qr_q8_coef_source *src) {
#ifdef QR_Q8_CHUNK_STEPS
  src->first = SIZE_MAX;
#else
  src->unused = 0;
#endif
}

QR_ALWAYS_INLINE void qr_axpy_rows_q8_at(float *y, size_t d, const void *w, size_t row_bytes, const int32_t *idx,
                                         const float *coef, size_t n, enum lzn_prefetch_level level) {
  if (d == 0 || n == 0) return;
  const size_t n_blocks = (d + QR_BLOCK_WEIGHTS - 1) / QR_BLOCK_WEIGHTS;
  const size_t n_full = n_blocks / QR_AXPY_Q8_STEP_BLOCKS;
  const size_t tail_blocks = n_blocks % QR_AXPY_Q8_STEP_BLOCKS;
  const size_t span = n_blocks * QR_BLOCK_BYTES;
  /* Steps whose columns all lie in y run in place; the one after them, if
   * any (a partial last step, or a whole one past y[d - 1] in a slice that
   * ends mid-block), through zeroed copies of y and of the rows. */
  const size_t in_place = d / QR_AXPY_Q8_STEP_WEIGHTS < n_full ? d / QR_AXPY_Q8_STEP_WEIGHTS : n_full;
  const int has_tail = in_place < n_full + (tail_blocks != 0);
  const size_t tail_bytes = (in_place < n_full ? QR_AXPY_Q8_STEP_BLOCKS : tail_blocks) * QR_BLOCK_BYTES;
  const size_t tail_cols = d - in_place * QR_AXPY_Q8_STEP_WEIGHTS;
  float y_tail[QR_AXPY_Q8_STEP_WEIGHTS];
  if (has_tail) {
    memset(y_tail, 0, sizeof y_tail);
    memcpy(y_tail, y + in_place * QR_AXPY_Q8_STEP_WEIGHTS, tail_cols * sizeof(float));
    qr_q8_y_order(y_tail);
  }
  for (size_t s = 0; s < in_place; s++) qr_q8_y_order(y + s * QR_AXPY_Q8_STEP_WEIGHTS);
  for (size_t t = 0; t < n; t += LZN_AXPY_Q8_GROUP) {
    const size_t nr = n - t < LZN_AXPY_Q8_GROUP ? n - t : LZN_AXPY_Q8_GROUP;
    const unsigned char *r[LZN_AXPY_Q8_GROUP];
    for (size_t k = 0; k < LZN_AXPY_Q8_GROUP; k++) r[k] = qr_row(w, row_bytes, idx, t + (k < nr ? k : 0));
    const size_t left = n - t - nr;
    qr_prefetch_heads(w, row_bytes, 0, span, idx, t + nr, left < LZN_AXPY_Q8_GROUP ? left : LZN_AXPY_Q8_GROUP, level);
    qr_q8_group g;
    qr_q8_group_make(&g, coef + t, nr);
    /* The next group's rows, one group ahead (as the dot loop). */
    const unsigned char *later[LZN_AXPY_Q8_GROUP];
    for (size_t k = 0; k < LZN_AXPY_Q8_GROUP; k++)
      later[k] = t + nr >= n ? r[0] : qr_row(w, row_bytes, idx, t + nr + k < n ? t + nr + k : n - 1);
    if (in_place > 0) {
      qr_q8_coefs now, next;
      qr_q8_coef_source src;
      qr_q8_coef_source_init(&src);
      qr_q8_coefs_at(&now, &src, r, 0, in_place, &g);
      for (size_t s = 0; s + 1 < in_place; s++) {
        const size_t off = s * QR_AXPY_Q8_STEP_BYTES, at = off + QR_PREFETCH_AHEAD(level);
        if (at + QR_AXPY_Q8_STEP_BYTES <= span)
#pragma GCC unroll 16
          for (size_t k = 0; k < LZN_AXPY_Q8_GROUP; k++)
            for (size_t l = 0; l < QR_PREFETCH_LINES(QR_AXPY_Q8_STEP_BYTES); l++)
              row_prefetch(r[k] + at + l * ROWS_CACHE_LINE, level);
#pragma GCC unroll 16
        for (size_t k = 0; k < LZN_AXPY_Q8_GROUP; k++)
          for (size_t l = 0; l < QR_NEXT_LINES(QR_AXPY_Q8_STEP_BYTES); l++)
            row_prefetch(later[k] + off + l * ROWS_CACHE_LINE, level);
        qr_q8_coefs_at(&next, &src, r, s + 1, in_place, &g);
        qr_q8_step_add(y + s * QR_AXPY_Q8_STEP_WEIGHTS, r, off, &now);
        now = next;
      }
      const size_t last = in_place - 1;
      qr_q8_step_add(y + last * QR_AXPY_Q8_STEP_WEIGHTS, r, last * QR_AXPY_Q8_STEP_BYTES, &now);
    }
    if (has_tail) {
      unsigned char padded[LZN_AXPY_Q8_GROUP][QR_AXPY_Q8_STEP_BYTES];
      const unsigned char *p[LZN_AXPY_Q8_GROUP];
      memset(padded, 0, sizeof padded);
      for (size_t k = 0; k < LZN_AXPY_Q8_GROUP; k++) {
        if (k < nr) memcpy(padded[k], r[k] + in_place * QR_AXPY_Q8_STEP_BYTES, tail_bytes);
        p[k] = k < nr ? padded[k] : padded[0];
      }
      qr_q8_coefs tail;
      qr_q8_coef_source src;
      qr_q8_coef_source_init(&src);
      qr_q8_coefs_at(&tail, &src, p, 0, 1, &g);
      qr_q8_step_add(y_tail, p, 0, &tail);
    }
  }
  for (size_t s = 0; s < in_place; s++) qr_q8_y_order(y + s * QR_AXPY_Q8_STEP_WEIGHTS);
  if (has_tail) {
    qr_q8_y_order(y_tail);
    memcpy(y + in_place * QR_AXPY_Q8_STEP_WEIGHTS, y_tail, tail_cols * sizeof(float));
  }
}

ROWS_AXPY_AT_LEVELS(qr_axpy_rows_q8, qr_axpy_rows_q8_at)

#ifdef QR_AXPY_Q8_BUFFERED
/* Tokens whose coefficient groups are made at once (on the stack). */
#define QR_GEMM_TOKENS 64

/* axpy_gemm_q8 (kernels/gemm.h): axpy_rows_q8 for m tokens, each row read
 * from memory once for all of them. A type that sets QR_AXPY_Q8_BUFFERED
 * provides, besides the above:
 *
 *   typedef ... qr_q8_step_buf;          a step's weights of a group of
 *                                        rows, as its adds want them
 *   void qr_q8_step_fill(qr_q8_step_buf *b, const unsigned char *const *r, size_t off);
 *   void qr_q8_step_add_buf(float *y, const qr_q8_step_buf *b, const qr_q8_coefs *c);
 *       qr_q8_step_add with the weights from b
 *   QR_Q8_UNIT_STEPS                     steps whose coefficients are made
 *                                        together (a chunk, or one step)
 *   typedef ... qr_q8_unit_scales;       a unit's block scales of the rows
 *   typedef ... qr_q8_unit;              one token's coefficients of a unit
 *   void qr_q8_unit_scales_make(qr_q8_unit_scales *sc, const unsigned char *const *r,
 *                               size_t off, size_t n_blocks, size_t nr);
 *   void qr_q8_unit_make(qr_q8_unit *u, const qr_q8_unit_scales *sc, const qr_q8_group *g);
 *   void qr_q8_unit_step(qr_q8_coefs *c, const qr_q8_unit *u, size_t k);
 *       the one-token coefficients (qr_q8_step_coefs, or the chunk's)
 *       split in two: the rows' scales, shared by the tokens, then one
 *       token's coefficients from them, by the same operations
 *
 * The loop: for each group of rows and each unit of its steps, the weights
 * and scales once, then every token's coefficients and adds. Each token's
 * y takes the groups in order, each column one FMA per group, from the
 * same alphas and scales as axpy_rows_q8's: a token's result is that of
 * axpy_rows_q8 alone, to the bit. The columns past the last whole step go
 * through axpy_rows_q8 itself, token by token. */
QR_ALWAYS_INLINE void qr_axpy_gemm_q8_at(float *y, size_t y_stride, size_t d, const void *w, size_t row_bytes,
                                         const int32_t *idx, const float *coef, size_t coef_stride, size_t n,
                                         size_t m, enum lzn_prefetch_level level) {
  if (d == 0 || n == 0 || m == 0) return;
  const size_t n_blocks = (d + QR_BLOCK_WEIGHTS - 1) / QR_BLOCK_WEIGHTS;
  const size_t n_full = n_blocks / QR_AXPY_Q8_STEP_BLOCKS;
  const size_t in_place = d / QR_AXPY_Q8_STEP_WEIGHTS < n_full ? d / QR_AXPY_Q8_STEP_WEIGHTS : n_full;
  const size_t col = in_place * QR_AXPY_Q8_STEP_WEIGHTS;
  if (col < d)
    for (size_t t = 0; t < m; t++)
      qr_axpy_rows_q8_at(y + t * y_stride + col, d - col, (const unsigned char *)w + in_place * QR_AXPY_Q8_STEP_BYTES,
                         row_bytes, idx, coef + t * coef_stride, n, level);
  if (in_place == 0) return;
  for (size_t t = 0; t < m; t++)
    for (size_t s = 0; s < in_place; s++) qr_q8_y_order(y + t * y_stride + s * QR_AXPY_Q8_STEP_WEIGHTS);
  qr_q8_step_buf buf[QR_Q8_UNIT_STEPS] __attribute__((aligned(64)));
  /* The tokens' groups are made once per group of rows, so QR_GEMM_TOKENS
   * at a time (the rows come again for each such block). */
  qr_q8_group groups[QR_GEMM_TOKENS];
  for (size_t t0 = 0; t0 < m; t0 += QR_GEMM_TOKENS) {
    const size_t mt = m - t0 < QR_GEMM_TOKENS ? m - t0 : QR_GEMM_TOKENS;
    for (size_t g0 = 0; g0 < n; g0 += LZN_AXPY_Q8_GROUP) {
      const size_t nr = n - g0 < LZN_AXPY_Q8_GROUP ? n - g0 : LZN_AXPY_Q8_GROUP;
      const unsigned char *r[LZN_AXPY_Q8_GROUP], *later[LZN_AXPY_Q8_GROUP];
      for (size_t k = 0; k < LZN_AXPY_Q8_GROUP; k++) {
        r[k] = qr_row(w, row_bytes, idx, g0 + (k < nr ? k : 0));
        const size_t next = g0 + nr + k < n ? g0 + nr + k : n - 1;
        later[k] = g0 + nr >= n ? r[0] : qr_row(w, row_bytes, idx, next);
      }
      for (size_t t = 0; t < mt; t++) qr_q8_group_make(&groups[t], coef + (t0 + t) * coef_stride + g0, nr);
      for (size_t s0 = 0; s0 < in_place; s0 += QR_Q8_UNIT_STEPS) {
        const size_t steps = in_place - s0 < QR_Q8_UNIT_STEPS ? in_place - s0 : QR_Q8_UNIT_STEPS;
        qr_q8_unit_scales scales;
        qr_q8_unit_scales_make(&scales, r, s0 * QR_AXPY_Q8_STEP_BYTES, steps * QR_AXPY_Q8_STEP_BLOCKS, nr);
        for (size_t k = 0; k < steps; k++) {
          const size_t off = (s0 + k) * QR_AXPY_Q8_STEP_BYTES;
          qr_q8_step_fill(&buf[k], r, off);
          /* The next group's bytes of this step, while the tokens run. */
#pragma GCC unroll 16
          for (size_t j = 0; j < LZN_AXPY_Q8_GROUP; j++)
            for (size_t l = 0; l < QR_NEXT_LINES(QR_AXPY_Q8_STEP_BYTES); l++)
              row_prefetch(later[j] + off + l * ROWS_CACHE_LINE, level);
        }
        /* Token t + 1's coefficients are made before token t's adds: a
         * long chain (max, divisions, rounding) the adds would wait on. */
        qr_q8_unit next;
        qr_q8_unit_make(&next, &scales, &groups[0]);
        for (size_t t = 0; t < mt; t++) {
          const qr_q8_unit u = next;
          if (t + 1 < mt) qr_q8_unit_make(&next, &scales, &groups[t + 1]);
          float *yt = y + (t0 + t) * y_stride + s0 * QR_AXPY_Q8_STEP_WEIGHTS;
          for (size_t k = 0; k < steps; k++) {
            qr_q8_coefs c;
            qr_q8_unit_step(&c, &u, k);
            qr_q8_step_add_buf(yt + k * QR_AXPY_Q8_STEP_WEIGHTS, &buf[k], &c);
          }
        }
      }
    }
  }
  for (size_t t = 0; t < m; t++)
    for (size_t s = 0; s < in_place; s++) qr_q8_y_order(y + t * y_stride + s * QR_AXPY_Q8_STEP_WEIGHTS);
}

static void qr_axpy_gemm_q8(float *y, size_t y_stride, size_t d, const void *w, size_t row_bytes, const int32_t *idx,
                            const float *coef, size_t coef_stride, size_t n, size_t m) {
  qr_axpy_gemm_q8_at(y, y_stride, d, w, row_bytes, idx, coef, coef_stride, n, m, LZN_PREFETCH_L1);
}
static void qr_axpy_gemm_q8_l2(float *y, size_t y_stride, size_t d, const void *w, size_t row_bytes,
                               const int32_t *idx, const float *coef, size_t coef_stride, size_t n, size_t m) {
  qr_axpy_gemm_q8_at(y, y_stride, d, w, row_bytes, idx, coef, coef_stride, n, m, LZN_PREFETCH_L2);
}
#endif /* QR_AXPY_Q8_BUFFERED */
#endif /* QR_AXPY_Q8_STEP_BLOCKS */

/* kernels.h's to_f32, by the axpy step (install it where that step is
 * the reference's product, as Q8_0's and Q4_0's are): each vector of y
 * starts at -0.0 and takes coef 1, so a weight comes out as fma(scale, q,
 * -0.0) = the fp32 product scale * q rounded once, a zero product's sign
 * kept: ref/'s value to the bit. A last step of fewer blocks through a
 * zeroed copy, as the other loops take theirs. Inline so that the files
 * that do not install it do not carry it. */
static inline void qr_to_f32(float *dst, const void *src, size_t d) {
  const unsigned char *w = src;
  const size_t n_blocks = (d + QR_BLOCK_WEIGHTS - 1) / QR_BLOCK_WEIGHTS;
  const size_t n_steps = (n_blocks + QR_AXPY_STEP_BLOCKS - 1) / QR_AXPY_STEP_BLOCKS;
  for (size_t s = 0; s < n_steps; s++) {
    const size_t col = s * QR_AXPY_STEP_WEIGHTS, left = d - col;
    vec_f32 y[QR_AXPY_STEP_VECS];
#pragma GCC unroll 16
    for (size_t v = 0; v < QR_AXPY_STEP_VECS; v++) y[v] = vec_set1(-0.0f);
    if (left >= QR_AXPY_STEP_WEIGHTS) {
      qr_axpy_step(y, w + s * QR_AXPY_STEP_BYTES, vec_set1(1.0f));
#pragma GCC unroll 16
      for (size_t v = 0; v < QR_AXPY_STEP_VECS; v++) vec_store(dst + col + v * VEC_LANES, y[v]);
      continue;
    }
    unsigned char padded[QR_AXPY_STEP_BYTES];
    float out[QR_AXPY_STEP_WEIGHTS];
    memset(padded, 0, sizeof padded);
    memcpy(padded, w + s * QR_AXPY_STEP_BYTES, (n_blocks - s * QR_AXPY_STEP_BLOCKS) * QR_BLOCK_BYTES);
    qr_axpy_step(y, padded, vec_set1(1.0f));
    for (size_t v = 0; v < QR_AXPY_STEP_VECS; v++) vec_store(out + v * VEC_LANES, y[v]);
    memcpy(dst + col, out, left * sizeof(float));
  }
}

#undef QR_PREFETCH_GROUP

#endif /* LZN_KERNELS_GENERIC_QROWS_H */
