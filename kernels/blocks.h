/*
 * blocks.h: how many weight (and KV) types there are, and the byte layouts of the
 * block types. Private: the kernels and lib/core/wtype.h (the traits
 * table) include it.
 *
 * llama.cpp's ggml layouts (block_q8_0, block_q4_0), byte for byte, so that
 * GGUF tensors are used in place and bytes per weight compare honestly:
 * 8.5 and 4.5 bits per weight. Q4_0: qs[j] holds element j in its low
 * nibble and element j + 16 in its high nibble. The fp16 scale is
 * little-endian binary16. Sizes and names of every type: core/wtype.h.
 */
#ifndef LZN_KERNELS_BLOCKS_H
#define LZN_KERNELS_BLOCKS_H

#include <stdint.h>

/* One past the largest lzn_weight_type value (lazyneuron.h): the size of
 * every table indexed by weight type. */
#define LZN_WEIGHT_TYPE_COUNT 6

/* One past the largest lzn_kv_type value: the attention slots per type. */
#define LZN_KV_TYPE_COUNT 4

/* The alignment of column slices: a multiple of every block size. */
#define LZN_WTYPE_MAX_BLOCK 32

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

#endif /* LZN_KERNELS_BLOCKS_H */
