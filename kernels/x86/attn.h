/*
 * x86/attn.h: the attention kernels (kernels.h, "attention") written once
 * over the fp32 vector primitives of x86/vec_avx2.h or x86/vec_avx512.h,
 * instantiated per KV type and ISA by ATTN_KERNELS. Include after one of
 * those headers; static functions, so each ISA file keeps its own copy.
 *
 * The instantiating file supplies, per KV type, two loaders of lanes [c, c +
 * VEC_LANES) of a cached row widened to fp32, exactly as ref/attn.c widens:
 *     vec_f32 LOAD(const void *row, size_t c)            (all lanes in the row)
 *     vec_f32 LOAD_TAIL(const void *row, size_t c, vec_tail t)
 * where LOAD_TAIL's lanes past the row's end are 0 (they meet q lanes that
 * are 0, and 0 * 0 adds nothing; a non-zero garbage lane could be Inf).
 *
 * scores: four positions at a time, each query against the four K rows
 * while they are in L1, four independent accumulators (FMA latency).
 * weighted_sum: the output is walked in tiles of four vectors held in
 * registers for one or two queries while the positions stream by, so V is
 * read once per tile from memory and the output once per call.
 *
 * Both prefetch the rows ATTN_AHEAD_BYTES ahead of the ones they read (the
 * first pass over V's rows only), and so also the head of the next tile of
 * keys the caller hands them. A KV head's rows lie contiguous, but read
 * in tiles of K and V by turns the hardware alone brought them at 13.5-14.5
 * GB/s (one core, Zen 5, `lzn-bench model --synthetic relullama-7b
 * --layers 4 --type q4_0 --depth 2048 --test tg32`, F16 cache); 4 KiB
 * ahead into L1: 19-21 GB/s, the step 15 % faster. 2 and 8-16 KiB ahead
 * measured no better, into L2 only (prefetcht1) slower, the cache on 2 MiB
 * pages no faster. On Zen 4 (32 KiB L1D) the other way round: toward L2
 * the attention of a 2048-token context took 7.5-7.8 ms a token against
 * 9.8-10.4 into L1 (KV read at 17.5 against 13.5 GB/s, same command, 3
 * rounds alternating). So, as the row kernels, each kernel is built at
 * both prefetch levels (NAME_scores and NAME_scores_l2, ...) and the
 * table takes the one for its level (kernels.h).
 */
#ifndef LZN_KERNELS_X86_ATTN_H
#define LZN_KERNELS_X86_ATTN_H

#include <stddef.h>

#include "kernels/kernels.h"

#define ATTN_ROW(base, row_bytes, j) ((const void *)((const char *)(base) + (size_t)(j) * (row_bytes)))

#define ATTN_AHEAD_BYTES 4096

/* The lines of bytes [at, at + n) of base, ATTN_AHEAD_BYTES further on (a
 * prefetch never faults: past the cache's end it only wastes a slot). */
static inline __attribute__((always_inline)) void attn_prefetch(const void *base, size_t at, size_t n,
                                                                enum lzn_prefetch_level level) {
  const char *p = (const char *)base + at + ATTN_AHEAD_BYTES;
  for (size_t o = 0; o < n; o += 64) row_prefetch(p + o, level);
}

#define ATTN_KERNELS(NAME, LOAD, LOAD_TAIL)                                                           \
  static inline __attribute__((always_inline)) void NAME##_scores_at(                               \
      float *scores, size_t score_stride, const float *q, size_t q_stride, size_t n_q, const void *k, \
      size_t row_bytes, size_t n_pos, size_t hd, enum lzn_prefetch_level level) {                     \
    const size_t full = hd / VEC_LANES * VEC_LANES, rest = hd - full;                                \
    const vec_tail tail = vec_tail_make(rest ? rest : VEC_LANES);                                    \
    size_t j = 0;                                                                                    \
    for (; j + 4 <= n_pos; j += 4) {                                                                 \
      const void *r0 = ATTN_ROW(k, row_bytes, j), *r1 = ATTN_ROW(k, row_bytes, j + 1);              \
      const void *r2 = ATTN_ROW(k, row_bytes, j + 2), *r3 = ATTN_ROW(k, row_bytes, j + 3);          \
      attn_prefetch(k, j * row_bytes, 4 * row_bytes, level);                                         \
      for (size_t i = 0; i < n_q; i++) {                                                             \
        const float *qi = q + i * q_stride;                                                          \
        vec_f32 a0 = vec_zero(), a1 = vec_zero(), a2 = vec_zero(), a3 = vec_zero();                  \
        size_t c = 0;                                                                                \
        for (; c < full; c += VEC_LANES) {                                                           \
          const vec_f32 x = vec_load(qi + c);                                                        \
          a0 = vec_fma(x, LOAD(r0, c), a0);                                                          \
          a1 = vec_fma(x, LOAD(r1, c), a1);                                                          \
          a2 = vec_fma(x, LOAD(r2, c), a2);                                                          \
          a3 = vec_fma(x, LOAD(r3, c), a3);                                                          \
        }                                                                                            \
        if (rest) {                                                                                  \
          const vec_f32 x = vec_load_tail(qi + c, tail);                                             \
          a0 = vec_fma(x, LOAD_TAIL(r0, c, tail), a0);                                               \
          a1 = vec_fma(x, LOAD_TAIL(r1, c, tail), a1);                                               \
          a2 = vec_fma(x, LOAD_TAIL(r2, c, tail), a2);                                               \
          a3 = vec_fma(x, LOAD_TAIL(r3, c, tail), a3);                                               \
        }                                                                                            \
        float *s = scores + i * score_stride + j;                                                    \
        s[0] = vec_hsum(a0), s[1] = vec_hsum(a1), s[2] = vec_hsum(a2), s[3] = vec_hsum(a3);          \
      }                                                                                              \
    }                                                                                                \
    for (; j < n_pos; j++) {                                                                         \
      const void *r0 = ATTN_ROW(k, row_bytes, j);                                                    \
      for (size_t i = 0; i < n_q; i++) {                                                             \
        const float *qi = q + i * q_stride;                                                          \
        vec_f32 a0 = vec_zero();                                                                     \
        size_t c = 0;                                                                                \
        for (; c < full; c += VEC_LANES) a0 = vec_fma(vec_load(qi + c), LOAD(r0, c), a0);           \
        if (rest) a0 = vec_fma(vec_load_tail(qi + c, tail), LOAD_TAIL(r0, c, tail), a0);            \
        scores[i * score_stride + j] = vec_hsum(a0);                                                 \
      }                                                                                              \
    }                                                                                                \
  }                                                                                                  \
                                                                                                     \
  static void NAME##_scores(float *scores, size_t score_stride, const float *q, size_t q_stride,     \
                            size_t n_q, const void *k, size_t row_bytes, size_t n_pos, size_t hd) {  \
    NAME##_scores_at(scores, score_stride, q, q_stride, n_q, k, row_bytes, n_pos, hd, LZN_PREFETCH_L1); \
  }                                                                                                  \
  static void NAME##_scores_l2(float *scores, size_t score_stride, const float *q, size_t q_stride,  \
                               size_t n_q, const void *k, size_t row_bytes, size_t n_pos, size_t hd) { \
    NAME##_scores_at(scores, score_stride, q, q_stride, n_q, k, row_bytes, n_pos, hd, LZN_PREFETCH_L2); \
  }                                                                                                  \
                                                                                                     \
  static inline __attribute__((always_inline)) void NAME##_weighted_sum_at(                          \
      float *out, size_t out_stride, const float *p, size_t p_stride, size_t n_q, const void *v,     \
      size_t row_bytes, size_t n_pos, size_t hd, enum lzn_prefetch_level level) {                    \
    size_t c = 0;                                                                                    \
    for (; c + 4 * VEC_LANES <= hd; c += 4 * VEC_LANES) {                                            \
      size_t i = 0;                                                                                  \
      for (; i + 2 <= n_q; i += 2) {                                                                 \
        float *o0 = out + i * out_stride + c, *o1 = o0 + out_stride;                                 \
        const float *p0 = p + i * p_stride, *p1 = p0 + p_stride;                                     \
        vec_f32 a0 = vec_load(o0), a1 = vec_load(o0 + VEC_LANES);                                    \
        vec_f32 a2 = vec_load(o0 + 2 * VEC_LANES), a3 = vec_load(o0 + 3 * VEC_LANES);                \
        vec_f32 b0 = vec_load(o1), b1 = vec_load(o1 + VEC_LANES);                                    \
        vec_f32 b2 = vec_load(o1 + 2 * VEC_LANES), b3 = vec_load(o1 + 3 * VEC_LANES);                \
        for (size_t j = 0; j < n_pos; j++) {                                                         \
          const void *row = ATTN_ROW(v, row_bytes, j);                                               \
          if (c == 0 && i == 0) attn_prefetch(v, j * row_bytes, row_bytes, level);                   \
          const vec_f32 v0 = LOAD(row, c), v1 = LOAD(row, c + VEC_LANES);                            \
          const vec_f32 v2 = LOAD(row, c + 2 * VEC_LANES), v3 = LOAD(row, c + 3 * VEC_LANES);        \
          const vec_f32 w0 = vec_set1(p0[j]), w1 = vec_set1(p1[j]);                                  \
          a0 = vec_fma(w0, v0, a0), a1 = vec_fma(w0, v1, a1);                                        \
          a2 = vec_fma(w0, v2, a2), a3 = vec_fma(w0, v3, a3);                                        \
          b0 = vec_fma(w1, v0, b0), b1 = vec_fma(w1, v1, b1);                                        \
          b2 = vec_fma(w1, v2, b2), b3 = vec_fma(w1, v3, b3);                                        \
        }                                                                                            \
        vec_store(o0, a0), vec_store(o0 + VEC_LANES, a1);                                            \
        vec_store(o0 + 2 * VEC_LANES, a2), vec_store(o0 + 3 * VEC_LANES, a3);                        \
        vec_store(o1, b0), vec_store(o1 + VEC_LANES, b1);                                            \
        vec_store(o1 + 2 * VEC_LANES, b2), vec_store(o1 + 3 * VEC_LANES, b3);                        \
      }                                                                                              \
      for (; i < n_q; i++) {                                                                         \
        float *o0 = out + i * out_stride + c;                                                        \
        const float *p0 = p + i * p_stride;                                                          \
        vec_f32 a0 = vec_load(o0), a1 = vec_load(o0 + VEC_LANES);                                    \
        vec_f32 a2 = vec_load(o0 + 2 * VEC_LANES), a3 = vec_load(o0 + 3 * VEC_LANES);                \
        for (size_t j = 0; j < n_pos; j++) {                                                         \
          const void *row = ATTN_ROW(v, row_bytes, j);                                               \
          if (c == 0 && i == 0) attn_prefetch(v, j * row_bytes, row_bytes, level);                   \
          const vec_f32 w0 = vec_set1(p0[j]);                                                        \
          a0 = vec_fma(w0, LOAD(row, c), a0), a1 = vec_fma(w0, LOAD(row, c + VEC_LANES), a1);        \
          a2 = vec_fma(w0, LOAD(row, c + 2 * VEC_LANES), a2);                                        \
          a3 = vec_fma(w0, LOAD(row, c + 3 * VEC_LANES), a3);                                        \
        }                                                                                            \
        vec_store(o0, a0), vec_store(o0 + VEC_LANES, a1);                                            \
        vec_store(o0 + 2 * VEC_LANES, a2), vec_store(o0 + 3 * VEC_LANES, a3);                        \
      }                                                                                              \
    }                                                                                                \
    /* The last (fewer than four) vectors of the row, one at a time. */                              \
    for (; c < hd; c += VEC_LANES) {                                                                 \
      const size_t lanes = hd - c < VEC_LANES ? hd - c : VEC_LANES;                                  \
      const vec_tail tail = vec_tail_make(lanes);                                                    \
      for (size_t i = 0; i < n_q; i++) {                                                             \
        float *o0 = out + i * out_stride + c;                                                        \
        const float *p0 = p + i * p_stride;                                                          \
        vec_f32 a0 = vec_load_tail(o0, tail);                                                        \
        if (lanes == VEC_LANES)                                                                      \
          for (size_t j = 0; j < n_pos; j++)                                                         \
            a0 = vec_fma(vec_set1(p0[j]), LOAD(ATTN_ROW(v, row_bytes, j), c), a0);                   \
        else                                                                                         \
          for (size_t j = 0; j < n_pos; j++)                                                         \
            a0 = vec_fma(vec_set1(p0[j]), LOAD_TAIL(ATTN_ROW(v, row_bytes, j), c, tail), a0);        \
        vec_store_tail(o0, tail, a0);                                                                \
      }                                                                                              \
    }                                                                                                \
  }                                                                                                  \
  static void NAME##_weighted_sum(float *out, size_t out_stride, const float *p, size_t p_stride,    \
                                  size_t n_q, const void *v, size_t row_bytes, size_t n_pos,         \
                                  size_t hd) {                                                       \
    NAME##_weighted_sum_at(out, out_stride, p, p_stride, n_q, v, row_bytes, n_pos, hd, LZN_PREFETCH_L1); \
  }                                                                                                  \
  static void NAME##_weighted_sum_l2(float *out, size_t out_stride, const float *p, size_t p_stride, \
                                     size_t n_q, const void *v, size_t row_bytes, size_t n_pos,      \
                                     size_t hd) {                                                    \
    NAME##_weighted_sum_at(out, out_stride, p, p_stride, n_q, v, row_bytes, n_pos, hd, LZN_PREFETCH_L2); \
  }

#endif /* LZN_KERNELS_X86_ATTN_H */
