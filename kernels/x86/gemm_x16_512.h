/*
 * x86/gemm_x16_512.h: the packed gemm (kernels/packed.h) for Q8_0 and Q4_0
 * with AVX512-VNNI, any number of tokens, one included. Included by
 * avx512vnni/gemm.c after gemm_q512.h (for GQ5_INLINE and enum gq5_kind).
 *
 * A zmm holds one dword of a block for the 16 rows of a group; vpdpbusd
 * against that dword of one token, broadcast to every lane, adds 4
 * products per row. Eight of them make a block for 16 rows (one chain per
 * token when 4 or more tokens interleave theirs; 2 or 4 chains for fewer,
 * which would otherwise wait on vpdpbusd's latency); then one conversion,
 * one scale and one add for all 16: about 11 instructions per 512
 * products, against 4 per 64 in gemm_q512.h. The weights of a
 * block (Q4_0: 4 loads, 8 and / shift; Q8_0: 8 loads) and its 16 scales
 * are loaded once for up to 8 tokens.
 *
 * vpdpbusd takes the weights as unsigned bytes: Q4_0's nibbles as they
 * are (w = nibble - 8), Q8_0's as stored, q + 128. The offset comes back
 * out per token and block: sum = dot - offset * sum x, in exact int32, so
 * every block sum is the reference's (kernels/ref/gemm.c); the sums of x
 * are taken once per token and block for 128 rows, not per row.
 */
#ifndef LZN_KERNELS_X86_GEMM_X16_512_H
#define LZN_KERNELS_X86_GEMM_X16_512_H

#include <string.h>

#include "kernels/packed.h"

/* Tokens per pass (their accumulators in registers), blocks per chunk (the
 * tokens' sums of x on the stack) and groups per pass (accumulators in
 * memory, sharing those sums). */
#define GX16_TOKENS 8
#define GX16_CHUNK 256
#define GX16_GROUPS 8
/* Bytes ahead of a block that its group's stream is prefetched (the
 * hardware prefetcher alone followed one group at ~70 % of a plain read;
 * 4-16 KiB measured, 8 best for both types). Near a group's end the
 * prefetches run on into the group read next: stopped at the group's end,
 * they left the first 4 KiB of every 36 KiB group (Q4_0, 4096 columns) to
 * demand misses, and 8 tokens from memory ran ~12 % slower (Zen 5,
 * bench/RESULTS.md 2026-12-08). */
#define GX16_AHEAD_BYTES 8192
/* Up to this many tokens a pass reads two groups side by side, block by
 * block: two streams from memory instead of one. With few tokens a block's
 * arithmetic is short and one stream (software prefetch and all) arrived
 * at ~19 GB/s from memory on Zen 5 against 65-74 from L2; two took 2-4
 * tokens on 4096 x 4096 Q4_0 from 0.53-0.65 to 0.42-0.54 ms (Q8_0 -10 to
 * -20 %). At 8 tokens the two groups' 16 accumulators spill (0.91 against
 * 0.72 ms), so 8 keep one group (bench/RESULTS.md, 2026-12-07). */
#define GX16_PAIR_TOKENS 4

/* Per token and block: offset * sum of x's 32 integers, and x's scale. */
typedef struct gx16_xsum {
  int32_t corr;
  float d;
} gx16_xsum;

GQ5_INLINE int32_t gx16_qs_sum(const lzn_block_q8_0 *xb) {
  /* x + 128 as unsigned bytes, summed by vpsadbw in four 64-bit lanes */
  const __m256i u = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)xb->qs), _mm256_set1_epi8((char)0x80));
  const __m256i s = _mm256_sad_epu8(u, _mm256_setzero_si256());
  __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  t = _mm_add_epi64(t, _mm_unpackhi_epi64(t, t));
  return _mm_cvtsi128_si32(t) - 32 * 128;
}

/* acc_mem[g][t] (lane r: group g's row r) += blocks [b0, b0 + nb) of NG
 * (1 or 2) groups side by side against tokens x_rows[t], t < C. */
GQ5_INLINE void gx16_group(enum gq5_kind kind, const int C, const int NG, const uint8_t *const *qs,
                           const uint16_t *const *scales, size_t b0, size_t nb, const lzn_block_q8_0 *const *x_rows,
                           const gx16_xsum *sums, float *const *acc_mem, const uint8_t *const *next) {
  const size_t block_qs = (kind == GQ5_Q8_0 ? 32 : 16) * LZN_PACK_ROWS;
  const size_t qs_end = (b0 + nb) * block_qs, scales_end = (b0 + nb) * LZN_PACK_ROWS * 2;
  __m512 acc[2][GX16_TOKENS];
#pragma GCC unroll 2
  for (int g = 0; g < NG; g++)
#pragma GCC unroll 8
    for (int t = 0; t < C; t++) acc[g][t] = _mm512_loadu_ps(acc_mem[g] + 16 * t);
  for (size_t b = 0; b < nb; b++) {
#pragma GCC unroll 2
    for (int g = 0; g < NG; g++) {
      const uint8_t *q = qs[g] + (b0 + b) * block_qs;
      const uint16_t *block_scales = scales[g] + (b0 + b) * LZN_PACK_ROWS;
      /* Past the end of this group's blocks the stream goes on where the
       * next group read starts (next[g]: its blocks, then its scales), so
       * that the next group's first GX16_AHEAD_BYTES arrive ahead too. */
      const size_t at = (b0 + b) * block_qs + GX16_AHEAD_BYTES;
      const uint8_t *ahead = q + GX16_AHEAD_BYTES;
      if (next && next[g] && at >= qs_end) ahead = next[g] + (at - qs_end);
#pragma GCC unroll 8
      for (size_t line = 0; line < block_qs; line += 64) _mm_prefetch((const char *)ahead + line, _MM_HINT_T0);
      /* the scales: 32 bytes a block, 1/8 (Q4_0) or 1/16 of the weights' distance */
      if ((b & 1) == 0) {
        const size_t s_at = (b0 + b) * LZN_PACK_ROWS * 2 + GX16_AHEAD_BYTES / 8;
        const char *s_ahead = (const char *)block_scales + GX16_AHEAD_BYTES / 8;
        if (next && next[g] && s_at >= scales_end) s_ahead = (const char *)next[g] + qs_end + (s_at - scales_end);
        _mm_prefetch(s_ahead, _MM_HINT_T0);
      }
      __m512i w[8]; /* w[k]: dword k of the block's 32 weights, per row */
      if (kind == GQ5_Q8_0) {
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) w[k] = _mm512_loadu_si512(q + 64 * k);
      } else {
        const __m512i low = _mm512_set1_epi8(0x0f);
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
          const __m512i raw = _mm512_loadu_si512(q + 64 * k);
          w[k] = _mm512_and_si512(raw, low);
          w[k + 4] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low);
        }
      }
      const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)block_scales));
#pragma GCC unroll 8
      for (int t = 0; t < C; t++) {
        const lzn_block_q8_0 *xb = &x_rows[t][b0 + b];
        /* Chains of vpdpbusd: one per token from 4 tokens on (the tokens'
         * chains hide each other's latency), else 2 or 4 per token. The
         * first starts at -offset * sum x, which takes the offset out. */
        const int chains = C >= 4 ? 1 : C == 2 ? 2 : 4;
        __m512i part[4];
        part[0] = _mm512_set1_epi32(-sums[(size_t)t * GX16_CHUNK + b].corr);
#pragma GCC unroll 4
        for (int c = 1; c < chains; c++) part[c] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
          int32_t x4;
          memcpy(&x4, xb->qs + 4 * k, 4);
          part[k % chains] = _mm512_dpbusd_epi32(part[k % chains], w[k], _mm512_set1_epi32(x4));
        }
        __m512i sum = part[0];
#pragma GCC unroll 4
        for (int c = 1; c < chains; c++) sum = _mm512_add_epi32(sum, part[c]);
        const gx16_xsum *xs = &sums[(size_t)t * GX16_CHUNK + b];
        acc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dw, _mm512_set1_ps(xs->d)), acc[g][t]);
      }
    }
  }
#pragma GCC unroll 2
  for (int g = 0; g < NG; g++)
#pragma GCC unroll 8
    for (int t = 0; t < C; t++) _mm512_storeu_ps(acc_mem[g] + 16 * t, acc[g][t]);
}

GQ5_INLINE void gx16_gemm(enum gq5_kind kind, float *out, size_t out_stride, const void *w, size_t d, size_t n_rows,
                          const void *x, size_t x_stride, size_t m) {
  const size_t n_blocks = (d + LZN_QK - 1) / LZN_QK;
  const size_t qs_bytes = kind == GQ5_Q8_0 ? 32 : 16;
  const size_t group_bytes = LZN_PACK_ROWS * n_blocks * (qs_bytes + 2);
  const size_t n_groups = (n_rows + LZN_PACK_ROWS - 1) / LZN_PACK_ROWS;
  const int32_t offset = kind == GQ5_Q8_0 ? 128 : 8;
  gx16_xsum sums[GX16_TOKENS * GX16_CHUNK];
  /* The tokens and chunk whose sums are in `sums`: made again only when
   * those change, so up to 8 tokens of rows up to GX16_CHUNK blocks long
   * make them once a call instead of once per GX16_GROUPS groups. */
  size_t sums_t0 = SIZE_MAX, sums_b0 = SIZE_MAX;
  float acc[GX16_GROUPS][GX16_TOKENS * 16];
  for (size_t g0 = 0; g0 < n_groups; g0 += GX16_GROUPS) {
    const size_t ng = n_groups - g0 < GX16_GROUPS ? n_groups - g0 : GX16_GROUPS;
    for (size_t t0 = 0; t0 < m;) {
      const size_t left = m - t0;
      const int C = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
      const lzn_block_q8_0 *x_rows[GX16_TOKENS];
      for (int t = 0; t < C; t++) x_rows[t] = (const lzn_block_q8_0 *)((const char *)x + (t0 + (size_t)t) * x_stride);
      memset(acc, 0, sizeof acc);
      for (size_t b0 = 0; b0 < n_blocks; b0 += GX16_CHUNK) {
        const size_t nb = n_blocks - b0 < GX16_CHUNK ? n_blocks - b0 : GX16_CHUNK;
        if (sums_t0 != t0 || sums_b0 != b0) {
          for (int t = 0; t < C; t++)
            for (size_t b = 0; b < nb; b++) {
              const lzn_block_q8_0 *xb = &x_rows[t][b0 + b];
              sums[(size_t)t * GX16_CHUNK + b] = (gx16_xsum){offset * gx16_qs_sum(xb), _cvtsh_ss(xb->d)};
            }
          sums_t0 = t0, sums_b0 = b0;
        }
        for (size_t g = 0; g < ng;) {
          const int pair = C <= GX16_PAIR_TOKENS && g + 1 < ng;
          const uint8_t *group[2];
          const uint16_t *scales[2];
          float *group_acc[2];
          const uint8_t *next[2] = {NULL, NULL};
          for (size_t k = 0; k < (pair ? 2u : 1u); k++) {
            group[k] = (const uint8_t *)w + (g0 + g + k) * group_bytes;
            /* the group this stream reads next, where a pass reads whole rows
             * (with several chunks the next read is another chunk: left to
             * the hardware prefetcher) */
            const size_t after = g0 + g + k + (pair ? 2u : 1u);
            if (nb == n_blocks && after < n_groups) next[k] = (const uint8_t *)w + after * group_bytes;
            scales[k] = (const uint16_t *)(group[k] + LZN_PACK_ROWS * n_blocks * qs_bytes);
            group_acc[k] = acc[g + k];
          }
          if (pair) {
            if (C == 4) gx16_group(kind, 4, 2, group, scales, b0, nb, x_rows, sums, group_acc, next);
            else if (C == 2) gx16_group(kind, 2, 2, group, scales, b0, nb, x_rows, sums, group_acc, next);
            else gx16_group(kind, 1, 2, group, scales, b0, nb, x_rows, sums, group_acc, next);
          } else {
            if (C == 8) gx16_group(kind, 8, 1, group, scales, b0, nb, x_rows, sums, group_acc, next);
            else if (C == 4) gx16_group(kind, 4, 1, group, scales, b0, nb, x_rows, sums, group_acc, next);
            else if (C == 2) gx16_group(kind, 2, 1, group, scales, b0, nb, x_rows, sums, group_acc, next);
            else gx16_group(kind, 1, 1, group, scales, b0, nb, x_rows, sums, group_acc, next);
          }
          g += pair ? 2 : 1;
        }
      }
      for (size_t g = 0; g < ng; g++) {
        const size_t r0 = (g0 + g) * LZN_PACK_ROWS;
        const size_t rows = n_rows - r0 < LZN_PACK_ROWS ? n_rows - r0 : LZN_PACK_ROWS;
        const __mmask16 valid = (__mmask16)((1u << rows) - 1u);
        for (int t = 0; t < C; t++)
          _mm512_mask_storeu_ps(out + (t0 + (size_t)t) * out_stride + r0, valid, _mm512_loadu_ps(acc[g] + 16 * t));
      }
      t0 += (size_t)C;
    }
  }
}

static void q8_0_gemm_x16(float *out, size_t out_stride, const void *w, size_t d, size_t n_rows, const void *x,
                          size_t x_stride, size_t m) {
  gx16_gemm(GQ5_Q8_0, out, out_stride, w, d, n_rows, x, x_stride, m);
}

static void q4_0_gemm_x16(float *out, size_t out_stride, const void *w, size_t d, size_t n_rows, const void *x,
                          size_t x_stride, size_t m) {
  gx16_gemm(GQ5_Q4_0, out, out_stride, w, d, n_rows, x, x_stride, m);
}

#endif /* LZN_KERNELS_X86_GEMM_X16_512_H */
