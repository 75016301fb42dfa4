/*
 * x86/gemm_q512_packed.h: gemm for Q8_0 and Q4_0 weights with AVX512-VNNI
 * for many tokens (prompts): 15 rows packed across the lanes of a zmm, x
 * as it lies. Included by avx512vnni/gemm.c after gemm_q512.h (which it
 * calls for few tokens).
 *
 * Why packed: in gemm_q512.h a zmm holds two blocks of one row, so every
 * (row, token) pair of blocks pays its own int -> float conversion, scale
 * and add (4 instructions per 64 products, plus loads). Here lane r of a
 * zmm holds 4 weights of row r, for 15 rows; vpdpbusd against 4 bytes of
 * one token broadcast to every lane (a memory operand, {1to16}) makes 64
 * products for 15 rows, and a block of one token against 15 rows is 8 of
 * them (in four chains of two: one chain of eight would wait on vpdpbusd's
 * latency), then one conversion, one scale and one add for all 15 rows:
 * about 19 instructions per 480 products. Rows are packed once per call
 * and 32 blocks at a time (8 zmm per block, 16 KiB: L1), then every token
 * streams through them (llama.cpp repacks Q4_0 rows in groups of 8 for the
 * same reason; here the packing is per call, into a buffer on the stack,
 * so the row layout that the GEMV and the sparse rows need stays the only
 * copy).
 *
 * vpdpbusd takes the weights as unsigned bytes: Q4_0's nibbles as they
 * are (w = nibble - 8), Q8_0's plus 128 (w + 128, the sign bit flipped).
 * The offset is taken back out with the 16th lane, a row of ones: it
 * accumulates sum x over the block, and every lane subtracts offset x that
 * (exact int32 arithmetic, so each block's sum is the reference's). Then
 * times d_w (a vector of the 15 rows' scales) x d_x (broadcast), added in
 * fp32: only the order of those additions differs from kernels/ref/gemm.c.
 */
#ifndef LZN_KERNELS_X86_GEMM_Q512_PACKED_H
#define LZN_KERNELS_X86_GEMM_Q512_PACKED_H

#include <string.h>

/* Rows per pack (the 16th lane is the ones row), blocks per chunk, tokens
 * per pass of a chunk (their accumulators in registers) and per call of the
 * loop (their accumulators on the stack). */
#define GQP_ROWS 15
#define GQP_CHUNK 32
#define GQP_TOKENS 8
#define GQP_MAX_TOKENS 64
/* Fewer tokens than this: gemm_q512.h, where nothing is packed. Packing
 * costs a transpose per block of 15 rows, paid back over the tokens; the
 * crossover, measured with `lzn-bench gemm --batch 8,12,16` (11008 x 4096,
 * one Zen 5 core, bench/RESULTS.md): Q4_0 between 8 and 12 tokens (8: 5.9
 * ms unpacked against 6.3 packed; 12: 8.1 against 7.6), Q8_0 between 12 and
 * 16 (8: 6.0 against 8.0; 12: 8.2 against 9.3; 16: 10.2 against 9.8): its
 * rows need no unpacking, so the unpacked kernel holds out longer. */
#define GQP_MIN_TOKENS_Q4_0 10
#define GQP_MIN_TOKENS_Q8_0 14

typedef struct gqp_pack {
  int32_t w[GQP_CHUNK][8][16]; /* block, dword of the block, lane (row; lane 15: ones) */
  float d[GQP_CHUNK][16];      /* the rows' scales (lane 15: 0) */
} gqp_pack;

/* Block b's 32 weights of a row as the unsigned bytes vpdpbusd takes, and
 * the block's scale. */
GQ5_INLINE __m256i gqp_row_bytes(enum gq5_kind kind, const void *row, size_t b, float *scale) {
  if (kind == GQ5_Q8_0) {
    const lzn_block_q8_0 *block = (const lzn_block_q8_0 *)row + b;
    *scale = _cvtsh_ss(block->d);
    return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)block->qs), _mm256_set1_epi8((char)0x80));
  }
  const lzn_block_q4_0 *block = (const lzn_block_q4_0 *)row + b;
  *scale = _cvtsh_ss(block->d);
  const __m128i q = _mm_loadu_si128((const __m128i *)block->qs), low = _mm_set1_epi8(0x0f);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), low), _mm_and_si128(q, low));
}

/* The 8 x 8 dword transpose (AVX2's unpack / permute ladder): c[k] =
 * dword k of r[0..8). */
GQ5_INLINE void gqp_transpose8(const __m256i *r, __m256i *c) {
  const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
  const __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
  const __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
  const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
  const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
  const __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
  const __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
  c[0] = _mm256_permute2x128_si256(u0, u4, 0x20), c[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
  c[1] = _mm256_permute2x128_si256(u1, u5, 0x20), c[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
  c[2] = _mm256_permute2x128_si256(u2, u6, 0x20), c[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
  c[3] = _mm256_permute2x128_si256(u3, u7, 0x20), c[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

/* Packs blocks [b0, b0 + nb) of n rows (n <= 15; the missing lanes get
 * weight 0 and scale 0; lane 15 the ones). */
GQ5_INLINE void gqp_pack_rows(enum gq5_kind kind, gqp_pack *p, const void *const *rows, int n, size_t b0, size_t nb) {
  const __m256i zero_weight = _mm256_set1_epi8((char)(kind == GQ5_Q8_0 ? 128 : 8)), ones = _mm256_set1_epi8(1);
  for (size_t b = 0; b < nb; b++) {
    __m256i r[16], lo[8], hi[8];
    for (int k = 0; k < 16; k++) {
      if (k < n) r[k] = gqp_row_bytes(kind, rows[k], b0 + b, &p->d[b][k]);
      else r[k] = k == 15 ? ones : zero_weight, p->d[b][k] = 0.0f;
    }
    gqp_transpose8(r, lo);
    gqp_transpose8(r + 8, hi);
    for (int c = 0; c < 8; c++)
      _mm512_storeu_si512(p->w[b][c], _mm512_inserti64x4(_mm512_castsi256_si512(lo[c]), hi[c], 1));
  }
}

/* acc[t] (lane r: row r) += blocks [b0, b0 + nb) of the pack against
 * tokens x_rows[t], t < C. */
GQ5_INLINE void gqp_tokens(enum gq5_kind kind, const int C, const gqp_pack *p, size_t b0, size_t nb,
                           const lzn_block_q8_0 *const *x_rows, float *acc_mem) {
  const __m512i ones_lane = _mm512_set1_epi32(15);
  const int shift = kind == GQ5_Q8_0 ? 7 : 3; /* offset 128 or 8 */
  __m512 acc[GQP_TOKENS];
#pragma GCC unroll 8
  for (int t = 0; t < C; t++) acc[t] = _mm512_loadu_ps(acc_mem + 16 * t);
  for (size_t b = 0; b < nb; b++) {
    __m512i w[8];
#pragma GCC unroll 8
    for (int c = 0; c < 8; c++) w[c] = _mm512_loadu_si512(p->w[b][c]);
    const __m512 dw = _mm512_loadu_ps(p->d[b]);
#pragma GCC unroll 8
    for (int t = 0; t < C; t++) {
      const lzn_block_q8_0 *xb = &x_rows[t][b0 + b];
      /* Four chains of two: vpdpbusd's latency, not its throughput,
       * would bound one chain of eight. */
      __m512i part[4];
#pragma GCC unroll 4
      for (int c = 0; c < 4; c++) {
        int32_t x4, y4;
        memcpy(&x4, xb->qs + 4 * c, 4);
        memcpy(&y4, xb->qs + 16 + 4 * c, 4);
        part[c] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[c], _mm512_set1_epi32(x4));
        part[c] = _mm512_dpbusd_epi32(part[c], w[c + 4], _mm512_set1_epi32(y4));
      }
      __m512i s = _mm512_add_epi32(_mm512_add_epi32(part[0], part[1]), _mm512_add_epi32(part[2], part[3]));
      /* lane 15 holds sum x: every lane takes back offset * sum x */
      s = _mm512_sub_epi32(s, _mm512_slli_epi32(_mm512_permutexvar_epi32(ones_lane, s), shift));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(_cvtsh_ss(xb->d))), acc[t]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < C; t++) _mm512_storeu_ps(acc_mem + 16 * t, acc[t]);
}

GQ5_INLINE void gqp_gemm(enum gq5_kind kind, float *out, size_t out_stride, const void *w, size_t row_bytes, size_t d,
                         const int32_t *idx, size_t n_rows, const void *x, size_t x_stride, size_t m) {
  const size_t n_blocks = (d + LZN_QK - 1) / LZN_QK;
  gqp_pack pack;
  float acc[GQP_MAX_TOKENS * 16];
  for (size_t i0 = 0; i0 < n_rows; i0 += GQP_ROWS) {
    const int n = n_rows - i0 < GQP_ROWS ? (int)(n_rows - i0) : GQP_ROWS;
    const void *rows[GQP_ROWS];
    for (int r = 0; r < n; r++)
      rows[r] = (const char *)w + (idx ? (size_t)idx[i0 + (size_t)r] : i0 + (size_t)r) * row_bytes;
    for (size_t t0 = 0; t0 < m; t0 += GQP_MAX_TOKENS) {
      const size_t mt = m - t0 < GQP_MAX_TOKENS ? m - t0 : GQP_MAX_TOKENS;
      memset(acc, 0, mt * 16 * sizeof(float));
      for (size_t b0 = 0; b0 < n_blocks; b0 += GQP_CHUNK) {
        const size_t nb = n_blocks - b0 < GQP_CHUNK ? n_blocks - b0 : GQP_CHUNK;
        gqp_pack_rows(kind, &pack, rows, n, b0, nb);
        for (size_t t = 0; t < mt;) {
          const int C = mt - t >= GQP_TOKENS ? GQP_TOKENS : 1;
          const lzn_block_q8_0 *x_rows[GQP_TOKENS];
          for (int k = 0; k < C; k++) x_rows[k] = (const lzn_block_q8_0 *)((const char *)x + (t0 + t + (size_t)k) * x_stride);
          if (C == GQP_TOKENS) gqp_tokens(kind, GQP_TOKENS, &pack, b0, nb, x_rows, acc + 16 * t);
          else gqp_tokens(kind, 1, &pack, b0, nb, x_rows, acc + 16 * t);
          t += (size_t)C;
        }
      }
      for (size_t t = 0; t < mt; t++)
        for (int r = 0; r < n; r++) out[(t0 + t) * out_stride + i0 + (size_t)r] = acc[t * 16 + (size_t)r];
    }
  }
}

static void q8_0_gemm_packed(float *out, size_t out_stride, const void *w, size_t row_bytes, size_t d,
                             const int32_t *idx, size_t n_rows, const void *x, size_t x_stride, size_t m) {
  if (m < GQP_MIN_TOKENS_Q8_0) gq5_gemm(GQ5_Q8_0, out, out_stride, w, row_bytes, d, idx, n_rows, x, x_stride, m);
  else gqp_gemm(GQ5_Q8_0, out, out_stride, w, row_bytes, d, idx, n_rows, x, x_stride, m);
}

static void q4_0_gemm_packed(float *out, size_t out_stride, const void *w, size_t row_bytes, size_t d,
                             const int32_t *idx, size_t n_rows, const void *x, size_t x_stride, size_t m) {
  if (m < GQP_MIN_TOKENS_Q4_0) gq5_gemm(GQ5_Q4_0, out, out_stride, w, row_bytes, d, idx, n_rows, x, x_stride, m);
  else gqp_gemm(GQ5_Q4_0, out, out_stride, w, row_bytes, d, idx, n_rows, x, x_stride, m);
}

#endif /* LZN_KERNELS_X86_GEMM_Q512_PACKED_H */
