/*
 * kernels.h: the kernel table and the contract of every kernel. Private.
 *
 * One table, keyed by (weight type, operation), filled slot by slot the way
 * BLIS fills its context: lib/cpu/dispatch.c starts from the reference
 * kernels in kernels/ref/ and lets each ISA that this CPU and OS support,
 * up to the ceiling LZN_ISA names, overwrite the slots it provides, in
 * enum lzn_isa order (best last). A slot an ISA does not provide keeps the
 * kernel of the ISA below, so no slot is ever NULL.
 *
 * Files: kernels/<isa>/<part>.c, one job each (a weight type, or the
 * activation kernels), compiled with that folder's flags only; each defines
 *     void lzn_install_<isa>_<part>(lzn_kernel_table *t)
 * which sets the slots it provides. The Makefile lists the files it found
 * (build/gen/kernel_files.h), so adding a type or an ISA is adding a file.
 * The ref/ files are the specification: every SIMD kernel is tested
 * against them (tests/test_kernels.c) with the tolerances stated there.
 *
 * No helper is shared between ISA files except as `static inline` in a
 * header included by each (kernels/x86/): a non-static helper could be
 * kept by the linker in its AVX-512 copy and called on an older CPU.
 *
 * Weights are rows of bytes: row r of a matrix starts at w + r * row_bytes.
 * A row of d weights takes lzn_wtype_row_bytes(type, d) bytes; block types
 * store ceil(d / 32) whole blocks, the last one padded with zeros, which is
 * what lets a kernel gather single rows of a quantized matrix. Threads split
 * a row into column slices that start on a block boundary (a multiple of
 * LZN_WTYPE_MAX_BLOCK columns): pass w + lzn_wtype_row_bytes(type, j0) and
 * the same row_bytes, and own y[j0 .. j0 + d).
 */
#ifndef LZN_KERNELS_H
#define LZN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ weight types */

/* Explicit values: tables are indexed by them. */
typedef enum lzn_wtype {
  LZN_WTYPE_F32 = 0,
  LZN_WTYPE_F16 = 1,  /* IEEE binary16 */
  LZN_WTYPE_BF16 = 2, /* the upper half of an fp32 */
  LZN_WTYPE_Q8_0 = 3, /* blocks of 32: fp16 scale d, 32 int8 q; w = d * q */
  LZN_WTYPE_Q4_0 = 4, /* blocks of 32: fp16 scale d, 16 bytes of nibbles; w = d * (q - 8) */
  LZN_WTYPE_COUNT = 5
} lzn_wtype;

/* Columns per block of the block types, and the alignment of column slices. */
#define LZN_QK 32
#define LZN_WTYPE_MAX_BLOCK 32

/* The block layouts of llama.cpp's ggml (Q8_0 = block_q8_0, Q4_0 =
 * block_q4_0), byte for byte, so that GGUF tensors are used in place and
 * bytes per weight compare honestly: 8.5 and 4.5 bits per weight.
 * Q4_0: qs[j] holds element j in its low nibble and element j + 16 in its
 * high nibble. The fp16 scale is little-endian binary16. */
typedef struct lzn_block_q8_0 {
  uint16_t d;
  int8_t qs[LZN_QK];
} lzn_block_q8_0;
typedef struct lzn_block_q4_0 {
  uint16_t d;
  uint8_t qs[LZN_QK / 2];
} lzn_block_q4_0;

_Static_assert(sizeof(lzn_block_q8_0) == 34, "Q8_0 block is 34 bytes");
_Static_assert(sizeof(lzn_block_q4_0) == 18, "Q4_0 block is 18 bytes");

/* Weights per block (1 for the element types) and bytes per block. */
static inline size_t lzn_wtype_block_size(lzn_wtype t) {
  return t == LZN_WTYPE_Q8_0 || t == LZN_WTYPE_Q4_0 ? LZN_QK : 1;
}
static inline size_t lzn_wtype_block_bytes(lzn_wtype t) {
  switch (t) {
  case LZN_WTYPE_F32: return 4;
  case LZN_WTYPE_F16: return 2;
  case LZN_WTYPE_BF16: return 2;
  case LZN_WTYPE_Q8_0: return sizeof(lzn_block_q8_0);
  case LZN_WTYPE_Q4_0: return sizeof(lzn_block_q4_0);
  case LZN_WTYPE_COUNT: break;
  }
  return 0;
}
/* Bytes of a row of d weights (the last block padded). */
static inline size_t lzn_wtype_row_bytes(lzn_wtype t, size_t d) {
  const size_t b = lzn_wtype_block_size(t);
  return (d + b - 1) / b * lzn_wtype_block_bytes(t);
}

/* The activation format the type's dot kernels take: fp32 for the float
 * types; for the block types, x quantized to Q8_0 blocks (llama.cpp's
 * vec_dot_type), so that dot products are integer and VNNI can run them.
 * Quantize x with the Q8_0 slot's from_f32 kernel. */
static inline lzn_wtype lzn_wtype_x_type(lzn_wtype t) {
  return t == LZN_WTYPE_Q8_0 || t == LZN_WTYPE_Q4_0 ? LZN_WTYPE_Q8_0 : LZN_WTYPE_F32;
}

/* -------------------------------------------------------------------- ISAs */

/* In ceiling order: LZN_ISA=name installs every supported ISA up to name.
 * The AVX-512 extensions each need AVX-512 F/BW/VL/DQ too. */
enum lzn_isa {
  LZN_ISA_SCALAR = 0,
  LZN_ISA_AVX2 = 1,       /* AVX2 + FMA + F16C */
  LZN_ISA_AVXVNNI = 2,    /* AVX2 + AVX-VNNI (VEX-encoded int8 dot products) */
  LZN_ISA_AVX512 = 3,     /* AVX-512 F, BW, VL, DQ */
  LZN_ISA_AVX512BF16 = 4, /* + AVX512_BF16 */
  LZN_ISA_AVX512VNNI = 5, /* + AVX512_VNNI */
  LZN_ISA_COUNT = 6
};

/* ------------------------------------------------------------- operations */

/* Writes every i in [0, n) with h[i] > threshold, in increasing order, to
 * idx and h[i] to val; returns how many. threshold >= 0. NaN is inactive.
 * idx and val hold n entries. Activations are fp32 in every weight type. */
typedef size_t (*lzn_relu_compact_fn)(const float *h, size_t n, float threshold, int32_t *idx,
                                      float *val);

/* y[j] += sum_{t < n} coef[t] * W[idx[t]][j] for j in [0, d): the sparse
 * down-projection over rows of W_down stored transposed. Rows are visited
 * in groups (e.g. 8) so y is loaded and stored once per group, not once per
 * row. n may be 0. Summation order inside a group may differ from the
 * reference's (fp32 rounding only). */
typedef void (*lzn_axpy_rows_fn)(float *y, size_t d, const void *w, size_t row_bytes,
                                 const int32_t *idx, const float *coef, size_t n);

/* out[t] = W[idx[t]][0..d) . x for t in [0, n): gathered rows (the gated
 * MLP's up rows, the predictor). x is in lzn_wtype_x_type(type). */
typedef void (*lzn_dot_rows_fn)(float *out, const void *w, size_t row_bytes, size_t d,
                                const int32_t *idx, size_t n, const void *x);

/* out[r] = W[r][0..d) . x for r in [0, n_rows): the matrix-vector product
 * of one token (dot_rows over consecutive rows, without an index array). */
typedef void (*lzn_gemv_fn)(float *out, const void *w, size_t row_bytes, size_t d,
                            size_t n_rows, const void *x);

/* Conversion of one row of d values: from_f32 rounds to nearest (even, for
 * F16/BF16; llama.cpp's rules for Q8_0/Q4_0, the last block zero-padded);
 * to_f32 is exact. The caller checks for NaN/Inf before quantizing. */
typedef void (*lzn_from_f32_fn)(void *dst, const float *src, size_t d);
typedef void (*lzn_to_f32_fn)(float *dst, const void *src, size_t d);

/* The operations of one weight type, each a slot. */
typedef enum lzn_kop {
  LZN_KOP_AXPY_ROWS = 0,
  LZN_KOP_DOT_ROWS = 1,
  LZN_KOP_GEMV = 2,
  LZN_KOP_FROM_F32 = 3,
  LZN_KOP_TO_F32 = 4,
  LZN_KOP_COUNT = 5
} lzn_kop;

typedef struct lzn_type_kernels {
  lzn_axpy_rows_fn axpy_rows;
  lzn_dot_rows_fn dot_rows;
  lzn_gemv_fn gemv;
  lzn_from_f32_fn from_f32;
  lzn_to_f32_fn to_f32;
} lzn_type_kernels;

/* --------------------------------------------------------------- attention */

/* The KV cache holds rows of head_dim values in one of the first four
 * weight types (F32, F16, BF16, Q8_0: lzn_kv_type has the same values), a
 * row of lzn_wtype_row_bytes(type, head_dim) bytes (Q8_0: whole blocks, the
 * last zero-padded). One KV head's rows are consecutive positions
 * (lib/model/context.h), so the kernels stream over them. Queries, scores
 * and outputs are fp32; every sum accumulates in fp32. */
#define LZN_KV_TYPE_COUNT 4

/* dst row r = src row r converted (lzn_from_f32_fn's rounding) for r in
 * [0, n_rows): new K or V rows into the cache, src rows src_stride floats
 * apart, dst rows row_bytes apart. */
typedef void (*lzn_attn_store_fn)(void *dst, size_t row_bytes, const float *src, size_t src_stride,
                                  size_t n_rows, size_t hd);

/* scores[i * score_stride + j] = q_i . K_j over hd for i in [0, n_q), j in
 * [0, n_pos): q_i = q + i * q_stride, K_j = k + j * row_bytes. n_q is the
 * query heads of a GQA group (and, in prefill, a tile of tokens): each K
 * row is brought in once and used for all n_q queries while it is in L1.
 * The order of the additions inside one dot product may differ from the
 * reference's (fp32 rounding only). */
typedef void (*lzn_attn_scores_fn)(float *scores, size_t score_stride, const float *q,
                                   size_t q_stride, size_t n_q, const void *k, size_t row_bytes,
                                   size_t n_pos, size_t hd);

/* out_i[0..hd) += sum_{j < n_pos} p[i * p_stride + j] * V_j for i in
 * [0, n_q): out_i = out + i * out_stride, V_j = v + j * row_bytes. Adds to
 * out (the online softmax rescales out between key tiles). Summation order
 * may differ from the reference's (fp32 rounding only). */
typedef void (*lzn_attn_weighted_sum_fn)(float *out, size_t out_stride, const float *p,
                                         size_t p_stride, size_t n_q, const void *v,
                                         size_t row_bytes, size_t n_pos, size_t hd);

/* The softmax's two passes over one row of n scores, the same for every KV
 * type. attn_max returns the largest of s[0..n) (n >= 1; -inf if all are).
 * attn_exp_sum sets s[j] = exp(s[j] - shift) and returns their sum in fp32,
 * for s[j] <= shift (so every term is in [0, 1] and none overflows); the
 * exponential is within a few ulp of expf's (tests/test_attention.c states
 * the bound), and a term below FLT_MIN may be 0. */
typedef float (*lzn_attn_max_fn)(const float *s, size_t n);
typedef float (*lzn_attn_exp_sum_fn)(float *s, size_t n, float shift);

typedef enum lzn_attn_op {
  LZN_ATTN_STORE = 0,
  LZN_ATTN_SCORES = 1,
  LZN_ATTN_WEIGHTED_SUM = 2,
  LZN_ATTN_OP_COUNT = 3
} lzn_attn_op;

typedef struct lzn_attn_kernels {
  lzn_attn_store_fn store;
  lzn_attn_scores_fn scores;
  lzn_attn_weighted_sum_fn weighted_sum;
} lzn_attn_kernels;

typedef struct lzn_kernel_table {
  const char *name; /* the ceiling's name: "scalar", "avx2", ..., "avx512vnni" */
  enum lzn_isa isa; /* the ceiling */
  lzn_relu_compact_fn relu_compact;
  lzn_type_kernels type[LZN_WTYPE_COUNT];
  /* Which ISA filled each slot: for tests, lzn-bench and lzn_isa_slot(). */
  enum lzn_isa relu_compact_isa;
  enum lzn_isa slot_isa[LZN_WTYPE_COUNT][LZN_KOP_COUNT];
  /* Attention kernels per KV type (an lzn_wtype below LZN_KV_TYPE_COUNT). */
  lzn_attn_kernels attn[LZN_KV_TYPE_COUNT];
  enum lzn_isa attn_isa[LZN_KV_TYPE_COUNT][LZN_ATTN_OP_COUNT];
  lzn_attn_max_fn attn_max;
  lzn_attn_exp_sum_fn attn_exp_sum;
  enum lzn_isa attn_max_isa, attn_exp_sum_isa;
} lzn_kernel_table;

/* Sets one slot and records who filled it; for the install functions. */
#define LZN_SET_SLOT(table, wtype, op_field, op_enum, isa_value, fn) \
  do {                                                               \
    (table)->type[wtype].op_field = (fn);                            \
    (table)->slot_isa[wtype][op_enum] = (isa_value);                 \
  } while (0)

/* Sets the softmax kernels (attn_max, attn_exp_sum). */
#define LZN_SET_SOFTMAX_SLOTS(table, isa_value, max_fn, exp_sum_fn) \
  do {                                                              \
    (table)->attn_max = (max_fn), (table)->attn_max_isa = (isa_value); \
    (table)->attn_exp_sum = (exp_sum_fn), (table)->attn_exp_sum_isa = (isa_value); \
  } while (0)

/* Sets one attention slot of KV type kv_type (an lzn_wtype < LZN_KV_TYPE_COUNT). */
#define LZN_SET_ATTN_SLOT(table, kv_type, op_field, op_enum, isa_value, fn) \
  do {                                                                     \
    (table)->attn[kv_type].op_field = (fn);                                \
    (table)->attn_isa[kv_type][op_enum] = (isa_value);                     \
  } while (0)

#endif /* LZN_KERNELS_H */
