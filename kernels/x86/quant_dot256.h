/*
 * x86/quant_dot256.h: dot_rows and gemv for Q8_0 and Q4_0 weights against x
 * in Q8_0 blocks, one 32-byte block per 256-bit vector. Included by each
 * x86 kernel file, which supplies the integer dot product of one block (its
 * ISA's instruction: maddubs + madd, or dpbusd) by defining, before the
 * include:
 *
 *   QDOT_GROUP   rows per pass over x (x is loaded once per group)
 *   QDOT_Q8_0 or QDOT_Q4_0, the type the file is for, and its primitive(s):
 *   static inline __m256i q8_block_dot(__m256i w, __m256i x);
 *     8 int32 lanes whose sum is sum_i w[i] * x[i], w any int8, x in
 *     [-127, 127] (what Q8_0 from_f32 makes: never -128)
 *   static inline __m256i q4_block_prep(__m256i x);
 *   static inline __m256i q4_block_dot(__m256i nibbles, __m256i x, __m256i prep);
 *     the same for (nibbles[i] - 8) * x[i], nibbles in [0, 15]; prep is
 *     q4_block_prep(x), made once per block for the whole group.
 *
 * Each defines <type>_dot_rows and <type>_gemv with the table's signatures.
 *
 * Per block and row: the integer lanes converted to fp32 (exact: |lane| <=
 * 4 * 128 * 127), times d_w * d_x (exact, two fp16 values), accumulated with
 * FMA in 8 lanes; the lanes are added at the end. The reference adds whole
 * block sums in block order; the difference is fp32 rounding only, bounded
 * in tests/test_kernels_quant.c.
 */
#ifndef LZN_KERNELS_X86_QUANT_DOT256_H
#define LZN_KERNELS_X86_QUANT_DOT256_H

#include "kernels/x86/quant_common.h"

#ifdef QDOT_Q4_0
/* Q4_0 block as 32 bytes in element order: the low nibbles (elements
 * 0..15) in the low half, the high nibbles (16..31) in the high half. */
static inline __m256i q4_0_nibbles(const uint8_t *qs) {
  const __m128i raw = _mm_loadu_si128((const __m128i *)qs);
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

#endif

/* out[k] = row k . x for the nr (<= QDOT_GROUP) rows r[k]; with nr a
 * constant the loops over k unroll and the accumulators stay in
 * registers. */
#ifdef QDOT_Q8_0
static Q_ALWAYS_INLINE void q8_0_dot_group(float *out, const lzn_block_q8_0 *const *r, size_t nr,
                                           const lzn_block_q8_0 *x, size_t n_blocks) {
  __m256 acc[QDOT_GROUP];
#pragma GCC unroll 16
  for (size_t k = 0; k < nr; k++) acc[k] = _mm256_setzero_ps();
  const size_t ahead = Q_PREFETCH_AHEAD / sizeof(lzn_block_q8_0);
  for (size_t b = 0; b < n_blocks; b++) {
    if (b % Q8_0_BLOCKS_PER_PREFETCH == 0 && b + ahead < n_blocks) {
#pragma GCC unroll 16
      for (size_t k = 0; k < nr; k++) _mm_prefetch((const char *)(r[k] + b + ahead), _MM_HINT_T0);
    }
    const __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);
    const __m256 dx = _mm256_set1_ps(q_scale(x[b].d));
#pragma GCC unroll 16
    for (size_t k = 0; k < nr; k++) {
      const __m256i p = q8_block_dot(_mm256_loadu_si256((const __m256i *)r[k][b].qs), xq);
      const __m256 s = _mm256_mul_ps(_mm256_set1_ps(q_scale(r[k][b].d)), dx);
      acc[k] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(p), acc[k]);
    }
  }
#pragma GCC unroll 16
  for (size_t k = 0; k < nr; k++) out[k] = q_hsum256(acc[k]);
}

#endif

#ifdef QDOT_Q4_0
static Q_ALWAYS_INLINE void q4_0_dot_group(float *out, const lzn_block_q4_0 *const *r, size_t nr,
                                           const lzn_block_q8_0 *x, size_t n_blocks) {
  __m256 acc[QDOT_GROUP];
#pragma GCC unroll 16
  for (size_t k = 0; k < nr; k++) acc[k] = _mm256_setzero_ps();
  const size_t ahead = Q_PREFETCH_AHEAD / sizeof(lzn_block_q4_0);
  for (size_t b = 0; b < n_blocks; b++) {
    if (b % Q4_0_BLOCKS_PER_PREFETCH == 0 && b + ahead < n_blocks) {
#pragma GCC unroll 16
      for (size_t k = 0; k < nr; k++) _mm_prefetch((const char *)(r[k] + b + ahead), _MM_HINT_T0);
    }
    const __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);
    const __m256i prep = q4_block_prep(xq);
    const __m256 dx = _mm256_set1_ps(q_scale(x[b].d));
#pragma GCC unroll 16
    for (size_t k = 0; k < nr; k++) {
      const __m256i p = q4_block_dot(q4_0_nibbles(r[k][b].qs), xq, prep);
      const __m256 s = _mm256_mul_ps(_mm256_set1_ps(q_scale(r[k][b].d)), dx);
      acc[k] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(p), acc[k]);
    }
  }
#pragma GCC unroll 16
  for (size_t k = 0; k < nr; k++) out[k] = q_hsum256(acc[k]);
}

#endif

/* Rows in groups of QDOT_GROUP, then one partial group; idx NULL means rows
 * 0..n (gemv). */
#define Q_DOT_ROWS_BODY(BLOCK, GROUP_FN)                                                  \
  do {                                                                                    \
    const size_t n_blocks = (d + LZN_QK - 1) / LZN_QK;                                    \
    const BLOCK *r[QDOT_GROUP];                                                           \
    size_t t = 0;                                                                         \
    for (; t + QDOT_GROUP <= n; t += QDOT_GROUP) {                                        \
      for (size_t k = 0; k < QDOT_GROUP; k++) r[k] = q_row(w, row_bytes, idx, t + k);     \
      const size_t rest = n - t - QDOT_GROUP;                                             \
      q_prefetch_heads(w, row_bytes, n_blocks * sizeof(BLOCK), idx, t + QDOT_GROUP, \
                        rest < QDOT_GROUP ? rest : QDOT_GROUP); \
      GROUP_FN(out + t, r, QDOT_GROUP, x, n_blocks);                                      \
    }                                                                                     \
    if (t < n) {                                                                          \
      for (size_t k = 0; k < n - t; k++) r[k] = q_row(w, row_bytes, idx, t + k);          \
      GROUP_FN(out + t, r, n - t, x, n_blocks);                                           \
    }                                                                                     \
  } while (0)

#ifdef QDOT_Q8_0
static void q8_0_dot_any(float *out, const void *w, size_t row_bytes, size_t d, const int32_t *idx,
                         size_t n, const lzn_block_q8_0 *x) {
  Q_DOT_ROWS_BODY(lzn_block_q8_0, q8_0_dot_group);
}


/* The table's signatures. */
static void q8_0_dot_rows(float *out, const void *w, size_t row_bytes, size_t d, const int32_t *idx,
                          size_t n, const void *x) {
  q8_0_dot_any(out, w, row_bytes, d, idx, n, x);
}
static void q8_0_gemv(float *out, const void *w, size_t row_bytes, size_t d, size_t n_rows,
                      const void *x) {
  q8_0_dot_any(out, w, row_bytes, d, NULL, n_rows, x);
}
#endif

#ifdef QDOT_Q4_0
static void q4_0_dot_any(float *out, const void *w, size_t row_bytes, size_t d, const int32_t *idx,
                         size_t n, const lzn_block_q8_0 *x) {
  Q_DOT_ROWS_BODY(lzn_block_q4_0, q4_0_dot_group);
}

static void q4_0_dot_rows(float *out, const void *w, size_t row_bytes, size_t d, const int32_t *idx,
                          size_t n, const void *x) {
  q4_0_dot_any(out, w, row_bytes, d, idx, n, x);
}
static void q4_0_gemv(float *out, const void *w, size_t row_bytes, size_t d, size_t n_rows,
                      const void *x) {
  q4_0_dot_any(out, w, row_bytes, d, NULL, n_rows, x);
}
#endif

#undef Q_DOT_ROWS_BODY

#endif /* LZN_KERNELS_X86_QUANT_DOT256_H */
