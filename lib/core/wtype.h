/*
 * wtype.h: the weight-type traits table, the one place that says what each
 * lzn_weight_type is: its name, GGUF id, block size and bytes, the type its
 * dot products take x in, and the alignment a row needs. Private.
 *
 * Every table of the library is indexed by the public lzn_weight_type
 * value (lazyneuron.h): one enum, never renumbered. Adding a type is a row
 * here plus new kernel files: kernels/README.md has the checklist.
 */
#ifndef LZN_CORE_WTYPE_H
#define LZN_CORE_WTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/blocks.h"
#include "lazyneuron.h"

typedef struct lzn_weight_traits {
  const char *name;         /* "Q4_0": the spelling of GGUF tools and safetensors; NULL: no type */
  int ggml_id;              /* GGUF's ggml_type */
  size_t block_size;        /* weights per block (1 for the element types F32, F16, BF16) */
  size_t block_bytes;       /* bytes per block */
  /* The format x is in for this type's dot_rows / gemv: F32 for the float
   * types; Q8_0 blocks for Q8_0/Q4_0, Q8_K super-blocks for the K-quants
   * (llama.cpp's vec_dot_type), so dot products are integer and VNNI can
   * run them. */
  lzn_weight_type dot_type;
  size_t alignment;         /* a row used in place must start at a multiple of it */
  int file_type;            /* llama.cpp's general.file_type of a file all in this type (llama_ftype) */
  /* Where a block's fp16 scales lie (block types): n_scales of them, at
   * these byte offsets of the block. Every one must be finite, or the
   * tensor is a broken file (lzn_wtype_first_bad_block). */
  int n_scales;
  size_t scale_offset[2];
  /* 1: a type only x takes (Q8_K, the K-quants' dot type): a traits row
   * and kernel slots like a weight type, but no public name or enum value,
   * and never a matrix's type. */
  int activation_only;
} lzn_weight_traits;

/* Indexed by lzn_weight_type; entry 0 (AS_STORED) is no type. */
extern const lzn_weight_traits lzn_weight_traits_table[LZN_WEIGHT_TYPE_COUNT];

/* Whether t is a weight type (not AS_STORED, not out of range, not an
 * activation-only type). */
static inline int lzn_wtype_valid(lzn_weight_type t) {
  return (int)t > 0 && (int)t < LZN_WEIGHT_TYPE_COUNT && lzn_weight_traits_table[t].name != NULL &&
         !lzn_weight_traits_table[t].activation_only;
}
static inline const lzn_weight_traits *lzn_wtype_traits(lzn_weight_type t) {
  return &lzn_weight_traits_table[t];
}
static inline size_t lzn_wtype_block_size(lzn_weight_type t) { return lzn_weight_traits_table[t].block_size; }
static inline size_t lzn_wtype_block_bytes(lzn_weight_type t) { return lzn_weight_traits_table[t].block_bytes; }
static inline int lzn_wtype_is_block(lzn_weight_type t) { return lzn_weight_traits_table[t].block_size > 1; }
/* Bytes of a row of d weights (block types: the last block padded). */
static inline size_t lzn_wtype_row_bytes(lzn_weight_type t, size_t d) {
  const size_t b = lzn_wtype_block_size(t);
  return (d + b - 1) / b * lzn_wtype_block_bytes(t);
}
static inline lzn_weight_type lzn_wtype_dot_type(lzn_weight_type t) { return lzn_weight_traits_table[t].dot_type; }
/* A K-quant (Q4_K, Q5_K, Q6_K): a weight type whose x is Q8_K super-blocks. */
static inline int lzn_wtype_is_kquant(lzn_weight_type t) {
  return lzn_wtype_valid(t) && lzn_wtype_dot_type(t) == LZN_WTYPE_Q8_K;
}

/* Whether rows of d weights of t are whole blocks: what a matrix kept in
 * a K-quant needs (a row of another length would be padded to whole
 * 256-weight super-blocks; the loader refuses that instead). */
static inline int lzn_wtype_fits_row(lzn_weight_type t, size_t d) {
  return lzn_wtype_block_size(t) < LZN_QK_K || d % lzn_wtype_block_size(t) == 0;
}

/* The name ("Q8_K" too), or "?" for a value that is not a type. */
const char *lzn_wtype_name(lzn_weight_type t);

/* The first of n_blocks blocks of a block type at data whose fp16 scale
 * is NaN or Inf (a broken file: dequantizing it gives NaN), or n_blocks;
 * n_blocks for an element type. data may be unaligned. */
size_t lzn_wtype_first_bad_block(lzn_weight_type t, const void *data, size_t n_blocks);

/* The same, the blocks split into chunks of LZN_WTYPE_SCAN_CHUNK on up to
 * n_threads OpenMP threads (a load checks every block of a file, and the
 * first touch of its pages is most of that): the lowest bad block of all
 * chunks, whatever the thread count. */
#define LZN_WTYPE_SCAN_CHUNK ((size_t)1 << 16)
size_t lzn_wtype_first_bad_block_threads(lzn_weight_type t, const void *data, size_t n_blocks, int n_threads);

/* "F32, F16, BF16, Q8_0, Q4_0, ...": every weight type, for messages;
 * returns buf. */
const char *lzn_wtype_list(char *buf, size_t size);

/* The weight type of a GGUF ggml_type id: 1 and *out, or 0 if lazyneuron
 * does not read that id. */
int lzn_wtype_from_ggml(uint32_t ggml_id, lzn_weight_type *out);

/* The weight type that stores a KV cache type's rows. */
lzn_weight_type lzn_kv_weight_type(lzn_kv_type kv);

/* fp16 / bf16 <-> fp32 for single values: kernels/half.h. */
/* Element i of an array of an element type (F32, F16, BF16) as float; data
 * may be unaligned. */
float lzn_wtype_element(lzn_weight_type type, const void *data, size_t i);

/* Whether n fp32 values can become `type` faithfully: finite, and for F16
 * within its range (|x| < 65520, which rounds to 65504 at most). Returns the first bad index, or n. */
size_t lzn_wtype_first_unfit(lzn_weight_type type, const float *x, size_t n);

#endif /* LZN_CORE_WTYPE_H */
