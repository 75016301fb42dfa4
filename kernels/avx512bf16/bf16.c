/*
 * avx512bf16/bf16.c: dot_rows and gemv for bf16 weights with AVX512_BF16's
 * vdpbf16ps, which multiplies 32 bf16 pairs and adds them into 16 fp32
 * sums in one instruction: a row is used as stored, with no widening. The
 * other slots keep avx512/bf16.c's kernels. Only kernels/avx512bf16/ is
 * compiled with -mavx512bf16 (see kernels.h for each kernel's contract).
 *
 * Measured faster than avx512/bf16.c's widen-and-FMA path (AMD EPYC, one
 * core, W 8192 x 2048 bf16, rows cold, at random; lzn-bench has no bf16
 * mode, so a throwaway timer, median of 5 runs of 15 calls): dot_rows
 * 5 % 28.1 GB/s against 22.9, 50 % 27.9 against 23.3; gemv 32.4 against
 * 25.9.
 *
 * x is split once per call into two bf16 parts, x = hi + lo + e with hi =
 * bf16(x), lo = bf16(x - hi), |e| <= 2^-16 |x|: each weight row meets both
 * (two vdpbf16ps on one load of the row), so a dot product moves by at most
 * 2^-16 * sum |w x| beyond fp32 rounding, where x rounded to bf16 alone
 * (what llama.cpp's BF16 dot does) moved it by 2^-8 and made the forward
 * pass ISA-dependent by ~2 % of the logits on the BF16 fixtures. The second
 * instruction costs nothing measurable: the loop is bound by reading the
 * rows. vdpbf16ps treats subnormal inputs and results as zero.
 * Integer-valued data in [-8, 8] stays exact; tests/test_kernels.c states
 * the float bound.
 */
#include "kernels/kernels.h"
#include "kernels/x86/vec_avx512.h"
#include "kernels/generic/stream.h"

/* Columns of x rounded to bf16 at a time, in a stack buffer (8 KiB): a
 * row longer than this is summed chunk by chunk into out. */
#define X_CHUNK 4096
/* bf16 columns per vdpbf16ps: 32 pairs' worth of one 64-byte cache line. */
#define PAIR_LANES 32
/* Elements per prefetch distance for the call's level and row length (stream.h). */
#define PREFETCH_AHEAD (rows_prefetch_ahead_bytes(level, m * sizeof(uint16_t)) / sizeof(uint16_t))

_Static_assert(X_CHUNK % ROWS_STEP == 0 && ROWS_STEP % PAIR_LANES == 0, "chunks are whole steps");

static inline __mmask32 pair_tail_mask(size_t left) {
  return left >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << left) - 1u);
}

/* xb[0, round_up(n, 32)) = bf16(x[0, n)), xl the same for what that
 * rounding left out, then zeros: the tail of a row then loads x in full,
 * and zero weights meet zero x. */
static void x_to_bf16(uint16_t *xb, uint16_t *xl, const float *x, size_t n) {
  size_t j = 0;
  for (; j < n; j += 16) {
    const vec_tail m = vec_tail_make(n - j);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + j);
    const __m256bh h = _mm512_cvtneps_pbh(v);
    const __m512 hi = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)h), 16));
    const __m256bh l = _mm512_cvtneps_pbh(_mm512_sub_ps(v, hi));
    _mm256_storeu_si256((__m256i *)(xb + j), (__m256i)h);
    _mm256_storeu_si256((__m256i *)(xl + j), (__m256i)l);
  }
  for (j = n; j % PAIR_LANES != 0; j++) xb[j] = xl[j] = 0;
}

#define LOAD_PAIRS(p) ((__m512bh)_mm512_loadu_si512(p))
#define LOAD_PAIRS_TAIL(p) ((__m512bh)_mm512_maskz_loadu_epi16(tail, (p)))
/* One row's load meets both parts of x. */
#define DP2(s, w, xv, xlv) (s = _mm512_dpbf16_ps(_mm512_dpbf16_ps(s, (w), (xv)), (w), (xlv)))
#define DP8(j, LOAD)                                        \
  do {                                                      \
    const __m512bh xv = LOAD_PAIRS(xb + (j));               \
    const __m512bh xlv = LOAD_PAIRS(xl + (j));              \
    DP2(s0, LOAD(r0 + (j)), xv, xlv);                       \
    DP2(s1, LOAD(r1 + (j)), xv, xlv);                       \
    DP2(s2, LOAD(r2 + (j)), xv, xlv);                       \
    DP2(s3, LOAD(r3 + (j)), xv, xlv);                       \
    DP2(s4, LOAD(r4 + (j)), xv, xlv);                       \
    DP2(s5, LOAD(r5 + (j)), xv, xlv);                       \
    DP2(s6, LOAD(r6 + (j)), xv, xlv);                       \
    DP2(s7, LOAD(r7 + (j)), xv, xlv);                       \
  } while (0)

/* sums[k] = r_k[0, m) . xb[0, m) for the 8 rows of a group (each r_k
 * already at the chunk's first column). */
ROWS_ALWAYS_INLINE void dp_group(float sums[ROWS_GROUP], const uint16_t *r0, const uint16_t *r1,
                                const uint16_t *r2, const uint16_t *r3, const uint16_t *r4,
                                const uint16_t *r5, const uint16_t *r6, const uint16_t *r7,
                                size_t m, const uint16_t *xb, const uint16_t *xl, enum lzn_prefetch_level level) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
  size_t j = 0;
  /* The prefetches of generic/stream.h, only inside the chunk. */
  for (; j + ROWS_STEP + PREFETCH_AHEAD <= m; j += ROWS_STEP) {
    rows_prefetch8(r0, r1, r2, r3, r4, r5, r6, r7, (j + PREFETCH_AHEAD) * sizeof(uint16_t), level);
    for (size_t u = 0; u < ROWS_STEP; u += PAIR_LANES) DP8(j + u, LOAD_PAIRS);
  }
  for (; j + PAIR_LANES <= m; j += PAIR_LANES) DP8(j, LOAD_PAIRS);
  if (j < m) {
    const __mmask32 tail = pair_tail_mask(m - j);
    DP8(j, LOAD_PAIRS_TAIL);
  }
  sums[0] = _mm512_reduce_add_ps(s0);
  sums[1] = _mm512_reduce_add_ps(s1);
  sums[2] = _mm512_reduce_add_ps(s2);
  sums[3] = _mm512_reduce_add_ps(s3);
  sums[4] = _mm512_reduce_add_ps(s4);
  sums[5] = _mm512_reduce_add_ps(s5);
  sums[6] = _mm512_reduce_add_ps(s6);
  sums[7] = _mm512_reduce_add_ps(s7);
}

static float dp_one(const uint16_t *row, size_t m, const uint16_t *xb, const uint16_t *xl) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0;
  size_t j = 0;
  for (; j + 2 * PAIR_LANES <= m; j += 2 * PAIR_LANES) {
    DP2(s0, LOAD_PAIRS(row + j), LOAD_PAIRS(xb + j), LOAD_PAIRS(xl + j));
    DP2(s1, LOAD_PAIRS(row + j + PAIR_LANES), LOAD_PAIRS(xb + j + PAIR_LANES), LOAD_PAIRS(xl + j + PAIR_LANES));
  }
  for (; j < m; j += PAIR_LANES) {
    const __mmask32 tail = pair_tail_mask(m - j);
    DP2(s0, LOAD_PAIRS_TAIL(row + j), LOAD_PAIRS(xb + j), LOAD_PAIRS(xl + j));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

#undef DP8
#undef DP2
#undef LOAD_PAIRS
#undef LOAD_PAIRS_TAIL

/* out[t] = row t . x, row t at w + idx[t] * ld, or at w + t * ld if idx
 * is NULL (gemv). */
ROWS_ALWAYS_INLINE void dp_rows(float *out, const void *w_bytes, size_t row_bytes, size_t d, const int32_t *idx,
                                size_t n, const void *x_f32, enum lzn_prefetch_level level) {
  const uint16_t *const w = w_bytes;
  const float *const x = x_f32;
  const size_t ld = row_bytes / sizeof(uint16_t);
  uint16_t xb[X_CHUNK], xl[X_CHUNK];
#define ROW(t) (w + (idx ? (size_t)idx[t] : (t)) * ld + c0)
  for (size_t c0 = 0; c0 < d; c0 += X_CHUNK) {
    const size_t m = d - c0 < X_CHUNK ? d - c0 : X_CHUNK;
    x_to_bf16(xb, xl, x + c0, m);
    const size_t span = m * sizeof(uint16_t);
    /* Short rows whole, the group after the next (stream.h). */
    const int short_rows = span <= ROWS_SHORT_ROW_BYTES;
    if (short_rows) rows_prefetch_rows(w + c0, row_bytes, idx, 0, 2 * ROWS_GROUP, n, span, level);
    size_t t = 0;
    for (; t + ROWS_GROUP <= n; t += ROWS_GROUP) {
      const size_t left = n - (t + ROWS_GROUP), next = left < ROWS_GROUP ? left : ROWS_GROUP;
      if (short_rows)
        rows_prefetch_rows(w + c0, row_bytes, idx, t + 2 * ROWS_GROUP, t + 3 * ROWS_GROUP, n, span, level);
      else
        for (size_t k = 0; k < next; k++) rows_prefetch_head(ROW(t + ROWS_GROUP + k), span, level);
      float sums[ROWS_GROUP];
      dp_group(sums, ROW(t), ROW(t + 1), ROW(t + 2), ROW(t + 3), ROW(t + 4), ROW(t + 5), ROW(t + 6),
               ROW(t + 7), m, xb, xl, level);
      for (size_t k = 0; k < ROWS_GROUP; k++) out[t + k] = c0 == 0 ? sums[k] : out[t + k] + sums[k];
    }
    for (; t < n; t++) {
      const float sum = dp_one(ROW(t), m, xb, xl);
      out[t] = c0 == 0 ? sum : out[t] + sum;
    }
  }
#undef ROW
}

/* The table's kernels at each prefetch level (generic/stream.h). */
ROWS_DOT_AT_LEVELS(avx512bf16_bf16_dot_rows, dp_rows)
ROWS_GEMV_AT_LEVELS(avx512bf16_bf16_gemv, dp_rows)

void lzn_install_avx512bf16_bf16(lzn_kernel_table *t);
void lzn_install_avx512bf16_bf16(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_BF16].dot_rows, LZN_ISA_AVX512BF16, LZN_AT_LEVEL(t, avx512bf16_bf16_dot_rows));
  LZN_SET(t->type[LZN_WEIGHTS_BF16].gemv, LZN_ISA_AVX512BF16, LZN_AT_LEVEL(t, avx512bf16_bf16_gemv));
}
