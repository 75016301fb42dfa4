/*
 * blocks.h: how many weight (and KV) types there are, and the byte layouts of the
 * block types. Private: the kernels and lib/core/wtype.h (the traits
 * table) include it.
 *
 * llama.cpp's ggml layouts (block_q8_0, block_q4_0, and the K-quants'
 * block_q4_K, block_q5_K, block_q6_K), byte for byte, so that GGUF tensors
 * are used in place and bytes per weight compare honestly: 8.5, 4.5, 4.5,
 * 5.5 and 6.5625 bits per weight. Q4_0: qs[j] holds element j in its low
 * nibble and element j + 16 in its high nibble. Every fp16 scale is
 * little-endian binary16. Sizes and names of every type: core/wtype.h.
 */
#ifndef LZN_KERNELS_BLOCKS_H
#define LZN_KERNELS_BLOCKS_H

#include <stdint.h>

/* One past the largest lzn_weight_type value (lazyneuron.h), and past the
 * activation-only types after them (LZN_WTYPE_Q8_K): the size of every
 * table indexed by weight type. */
#define LZN_WEIGHT_TYPE_COUNT 10

/* Q8_K, the int8 super-block type that x takes for the K-quants' dot
 * products (llama.cpp's block_q8_K role, our own layout below). Not a
 * weight type of the public API: never stored in a file, never named by
 * lzn_weight_type_name; it has a traits row and kernel slots like one so
 * that x is converted through the table as every dot type is. */
#define LZN_WTYPE_Q8_K ((lzn_weight_type)9)

/* One past the largest lzn_kv_type value: the attention slots per type. */
#define LZN_KV_TYPE_COUNT 4

/* The alignment of column slices: a multiple of every block size (the
 * K-quants' 256-weight super-block). */
#define LZN_WTYPE_MAX_BLOCK 256

/* Weights per block of Q8_0 and Q4_0. */
#define LZN_QK 32

typedef struct lzn_block_q8_0 { /* w = d * q */
  uint16_t d;
  int8_t qs[LZN_QK];
} lzn_block_q8_0;

typedef struct lzn_block_q4_0 { /* w = d * (q - 8) */
  uint16_t d;
  uint8_t qs[LZN_QK / 2];
} lzn_block_q4_0;

_Static_assert(sizeof(lzn_block_q8_0) == 34, "Q8_0 block is 34 bytes");
_Static_assert(sizeof(lzn_block_q4_0) == 18, "Q4_0 block is 18 bytes");

/* ------------------------------------------------------------- K-quants
 *
 * Super-blocks of LZN_QK_K = 256 weights; a row of the K-quants is whole
 * super-blocks (the loader refuses other lengths, kernels.h pads).
 * Element i (0..255) of a super-block, in the order GGUF stores them:
 *
 * Q4_K: 8 sub-blocks of 32 weights: w_i = d * sc[s] * q_i - dmin * m[s],
 *   s = i / 32, q_i in 0..15 in qs[32 * (i / 64) + i % 32]: the low nibble
 *   for even s, the high one for odd s (byte k of a 32-byte chunk holds
 *   elements k and k + 32 of its 64).
 *   sc[s], m[s] (6 bits each) packed in scales[12]: for s < 4,
 *   sc = scales[s] & 63, m = scales[s + 4] & 63; for s >= 4,
 *   sc = (scales[s + 4] & 15) | (scales[s - 4] >> 6) << 4,
 *   m  = (scales[s + 4] >> 4) | (scales[s] >> 6) << 4.
 * Q5_K: Q4_K's scales and low nibbles, plus a fifth bit: q_i =
 *   nibble | ((qh[i % 32] >> (i / 32)) & 1) << 4, q_i in 0..31.
 * Q6_K: 16 sub-blocks of 16 weights, w_i = d * scales[i / 16] * (q_i - 32),
 *   q_i in 0..63, scales int8. In each half h = i / 128 (j = i % 128):
 *   low 4 bits in ql[64 h + j % 64] (low nibble for j < 64, high nibble
 *   else), high 2 bits in qh[32 h + j % 32] >> (2 * (j / 32)).
 * Q8_K (x for the dot products, never on disk): x_i = d * qs[i] with d
 *   fp32, and bsums[g] = the sum of qs[16 g .. 16 g + 15], so a K-quant's
 *   mins (and Q6_K's -32) are one multiply per group of 16.
 */
#define LZN_QK_K 256
#define LZN_K_SCALE_BYTES 12

typedef struct lzn_block_q4_k {
  uint16_t d;    /* fp16: scale of the sub-block scales */
  uint16_t dmin; /* fp16: scale of the sub-block mins */
  uint8_t scales[LZN_K_SCALE_BYTES];
  uint8_t qs[LZN_QK_K / 2];
} lzn_block_q4_k;

typedef struct lzn_block_q5_k {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[LZN_K_SCALE_BYTES];
  uint8_t qh[LZN_QK_K / 8];
  uint8_t qs[LZN_QK_K / 2];
} lzn_block_q5_k;

typedef struct lzn_block_q6_k {
  uint8_t ql[LZN_QK_K / 2];
  uint8_t qh[LZN_QK_K / 4];
  int8_t scales[LZN_QK_K / 16];
  uint16_t d; /* fp16, at byte 208: the struct is 2-byte aligned */
} lzn_block_q6_k;

typedef struct lzn_block_q8_k {
  float d;
  int8_t qs[LZN_QK_K];
  int16_t bsums[LZN_QK_K / 16];
} lzn_block_q8_k;

_Static_assert(sizeof(lzn_block_q4_k) == 144, "Q4_K super-block is 144 bytes");
_Static_assert(sizeof(lzn_block_q5_k) == 176, "Q5_K super-block is 176 bytes");
_Static_assert(sizeof(lzn_block_q6_k) == 210, "Q6_K super-block is 210 bytes");
_Static_assert(sizeof(lzn_block_q8_k) == 292, "Q8_K super-block is 292 bytes");
_Static_assert(LZN_WTYPE_MAX_BLOCK % LZN_QK_K == 0 && LZN_WTYPE_MAX_BLOCK % LZN_QK == 0,
               "column slices start on every block boundary");

#endif /* LZN_KERNELS_BLOCKS_H */
