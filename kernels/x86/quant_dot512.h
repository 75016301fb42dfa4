/*
 * x86/quant_dot512.h: dot_rows and gemv for Q8_0 and Q4_0 weights against x
 * in Q8_0 blocks, two blocks per 512-bit vector (AVX-512 F/BW/VL/DQ + F16C),
 * which halves the integer, convert and FMA instructions per block against
 * quant_dot256.h. Measured on the shared Zen 5 VM (one core, gemv over
 * 8192 rows of 2048, cold, GB/s of weights, +-15 %): one block per ymm
 * Q8_0 16, Q4_0 7; two per zmm 23, 12. The kernels are compute-bound in L2
 * (Q8_0 gemv ~50 GB/s there) but reach only half that from L3/DRAM; longer
 * prefetch distances (1-2 KB) measured no better. Included by an AVX-512 kernel file, which supplies the
 * integer dot product of a pair of blocks (maddubs + madd, or dpbusd) by
 * defining, before the include:
 *
 *   QDOT_GROUP   rows per pass over x (x is loaded once per group)
 *   QDOT_Q8_0 or QDOT_Q4_0, the type the file is for, and its primitive(s):
 *   static inline __m512i q8_pair_dot(__m512i w, __m512i x);
 *     16 int32 lanes, lanes 4i..4i+3 summing w * x over bytes 16i..16i+15;
 *     w any int8, x in [-127, 127] (what Q8_0 from_f32 makes)
 *   static inline __m512i q4_pair_prep(__m512i x);
 *   static inline __m512i q4_pair_dot(__m512i nibbles, __m512i x, __m512i prep);
 *     the same for (nibbles - 8) * x; prep is q4_pair_prep(x), made once per
 *     pair of blocks for the group.
 * Each defines <type>_dot_rows and <type>_gemv with the table's signatures.
 *
 * Lanes to blocks: Q8_0 puts block b in bytes 0..31 and b + 1 in 32..63, so
 * int32 lanes 0..7 belong to b and 8..15 to b + 1. Q4_0 unpacks a pair of
 * blocks as the 16-byte quarters [b low nibbles, b+1 low, b high, b+1 high]
 * (elements b:0-15, b+1:0-15, b:16-31, b+1:16-31), and x's quarters are put
 * in the same order, so lanes 0-3 and 8-11 belong to b, 4-7 and 12-15 to
 * b + 1. Each row's scale pair d_w * d_x is spread over its lanes with one
 * permute. An odd last block runs as a pair whose second half is zero
 * (weights not loaded, x and scale zero), so nothing past the row is read.
 * The int32 lanes are exact; the fp32 sums differ from the reference's
 * block order only by rounding (tests/test_kernels_quant.c bounds it).
 */
#ifndef LZN_KERNELS_X86_QUANT_DOT512_H
#define LZN_KERNELS_X86_QUANT_DOT512_H

#include "kernels/x86/quant_common.h"

/* [s0, s1] as fp32 from two fp16 scales, times the pair of x scales. */
static inline __m128 q_scale_pair(uint16_t h0, uint16_t h1, __m128 dx) {
  const __m128i h = _mm_insert_epi16(_mm_cvtsi32_si128(h0), h1, 1);
  return _mm_mul_ps(_mm_cvtph_ps(h), dx);
}

/* The int8 of Q8_0 blocks p[0] and p[1] (zeros for p[1] if !two) as 64
 * bytes: x, and Q8_0 weights. */
static inline __m512i q8_0_load_pair(const lzn_block_q8_0 *x, int two) {
  const __m256i first = _mm256_loadu_si256((const __m256i *)x[0].qs);
  if (!two) return _mm512_zextsi256_si512(first);
  return _mm512_inserti64x4(_mm512_castsi256_si512(first), _mm256_loadu_si256((const __m256i *)x[1].qs), 1);
}

#ifdef QDOT_Q8_0
/* Lanes 0..7 block b, 8..15 block b + 1. */
#define Q8_0_PAIR_LANES _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)

/* Blocks b (and b + 1 if two) of the nr rows r[k], added into acc[k]. */
static Q_ALWAYS_INLINE void q8_0_dot_pair(__m512 *acc, const lzn_block_q8_0 *const *r, size_t nr,
                                          const lzn_block_q8_0 *x, size_t b, int two) {
  const __m512i lanes = Q8_0_PAIR_LANES;
  const __m512i xq = q8_0_load_pair(x + b, two);
  const __m128 dx = _mm_setr_ps(q_scale(x[b].d), two ? q_scale(x[b + 1].d) : 0.0f, 0.0f, 0.0f);
#pragma GCC unroll 16
  for (size_t k = 0; k < nr; k++) {
    const __m512i p = q8_pair_dot(q8_0_load_pair(r[k] + b, two), xq);
    const __m128 s = q_scale_pair(r[k][b].d, two ? r[k][b + 1].d : 0, dx);
    const __m512 s_lanes = _mm512_permutexvar_ps(lanes, _mm512_castps128_ps512(s));
    acc[k] = _mm512_fmadd_ps(s_lanes, _mm512_cvtepi32_ps(p), acc[k]);
  }
}

static Q_ALWAYS_INLINE void q8_0_dot_group(float *out, const lzn_block_q8_0 *const *r, size_t nr,
                                           const lzn_block_q8_0 *x, size_t n_blocks) {
  __m512 acc[QDOT_GROUP];
#pragma GCC unroll 16
  for (size_t k = 0; k < nr; k++) acc[k] = _mm512_setzero_ps();
  const size_t ahead = Q_PREFETCH_AHEAD / sizeof(lzn_block_q8_0);
  size_t b = 0;
  for (; b + 2 <= n_blocks; b += 2) {
    if (b + ahead < n_blocks) {
#pragma GCC unroll 16
      for (size_t k = 0; k < nr; k++) _mm_prefetch((const char *)(r[k] + b + ahead), _MM_HINT_T0);
    }
    q8_0_dot_pair(acc, r, nr, x, b, 1);
  }
  if (b < n_blocks) q8_0_dot_pair(acc, r, nr, x, b, 0);
#pragma GCC unroll 16
  for (size_t k = 0; k < nr; k++) out[k] = _mm512_reduce_add_ps(acc[k]);
}
#endif

#ifdef QDOT_Q4_0
/* Quarters [b low, b+1 low, b high, b+1 high]: lanes 0-3, 8-11 block b. */
#define Q4_0_PAIR_LANES _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1)

static inline __m512i q4_0_load_pair(const lzn_block_q4_0 *blocks, int two) {
  const __m128i first = _mm_loadu_si128((const __m128i *)blocks[0].qs);
  const __m256i packed = two ? _mm256_inserti128_si256(_mm256_castsi128_si256(first),
                                                       _mm_loadu_si128((const __m128i *)blocks[1].qs), 1)
                             : _mm256_zextsi128_si256(first);
  const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(packed), _mm256_srli_epi16(packed, 4), 1);
  return _mm512_and_si512(both, _mm512_set1_epi8(0x0f));
}

/* x's two blocks with their quarters in the weights' order. */
static inline __m512i q4_0_load_x_pair(const lzn_block_q8_0 *x, int two) {
  const __m512i v = q8_0_load_pair(x, two);
  return _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0));
}

static Q_ALWAYS_INLINE void q4_0_dot_pair(__m512 *acc, const lzn_block_q4_0 *const *r, size_t nr,
                                          const lzn_block_q8_0 *x, size_t b, int two) {
  const __m512i lanes = Q4_0_PAIR_LANES;
  const __m512i xq = q4_0_load_x_pair(x + b, two);
  const __m512i prep = q4_pair_prep(xq);
  const __m128 dx = _mm_setr_ps(q_scale(x[b].d), two ? q_scale(x[b + 1].d) : 0.0f, 0.0f, 0.0f);
#pragma GCC unroll 16
  for (size_t k = 0; k < nr; k++) {
    const __m512i p = q4_pair_dot(q4_0_load_pair(r[k] + b, two), xq, prep);
    const __m128 s = q_scale_pair(r[k][b].d, two ? r[k][b + 1].d : 0, dx);
    const __m512 s_lanes = _mm512_permutexvar_ps(lanes, _mm512_castps128_ps512(s));
    acc[k] = _mm512_fmadd_ps(s_lanes, _mm512_cvtepi32_ps(p), acc[k]);
  }
}

static Q_ALWAYS_INLINE void q4_0_dot_group(float *out, const lzn_block_q4_0 *const *r, size_t nr,
                                           const lzn_block_q8_0 *x, size_t n_blocks) {
  __m512 acc[QDOT_GROUP];
#pragma GCC unroll 16
  for (size_t k = 0; k < nr; k++) acc[k] = _mm512_setzero_ps();
  const size_t ahead = Q_PREFETCH_AHEAD / sizeof(lzn_block_q4_0);
  size_t b = 0;
  for (; b + 2 <= n_blocks; b += 2) {
    if (b % Q4_0_BLOCKS_PER_PREFETCH == 0 && b + ahead < n_blocks) {
#pragma GCC unroll 16
      for (size_t k = 0; k < nr; k++) _mm_prefetch((const char *)(r[k] + b + ahead), _MM_HINT_T0);
    }
    q4_0_dot_pair(acc, r, nr, x, b, 1);
  }
  if (b < n_blocks) q4_0_dot_pair(acc, r, nr, x, b, 0);
#pragma GCC unroll 16
  for (size_t k = 0; k < nr; k++) out[k] = _mm512_reduce_add_ps(acc[k]);
}
#endif

/* Rows in groups of QDOT_GROUP, then one partial group; idx NULL means rows
 * 0..n (gemv). */
#define Q_DOT_ROWS_BODY(BLOCK, GROUP_FN)                                                          \
  do {                                                                                            \
    const size_t n_blocks = (d + LZN_QK - 1) / LZN_QK;                                            \
    const BLOCK *r[QDOT_GROUP];                                                                   \
    size_t t = 0;                                                                                 \
    for (; t + QDOT_GROUP <= n; t += QDOT_GROUP) {                                                \
      for (size_t k = 0; k < QDOT_GROUP; k++) r[k] = q_row(w, row_bytes, idx, t + k);             \
      const size_t rest = n - t - QDOT_GROUP;                                                     \
      q_prefetch_heads(w, row_bytes, n_blocks * sizeof(BLOCK), idx, t + QDOT_GROUP,               \
                       rest < QDOT_GROUP ? rest : QDOT_GROUP);                                    \
      GROUP_FN(out + t, r, QDOT_GROUP, x, n_blocks);                                              \
    }                                                                                             \
    if (t < n) {                                                                                  \
      for (size_t k = 0; k < n - t; k++) r[k] = q_row(w, row_bytes, idx, t + k);                  \
      GROUP_FN(out + t, r, n - t, x, n_blocks);                                                   \
    }                                                                                             \
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

#endif /* LZN_KERNELS_X86_QUANT_DOT512_H */
