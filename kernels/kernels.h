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
 * which sets the slots it provides with LZN_SET. Every slot has one shape,
 * {fn, isa}: the kernel and the ISA that installed it. The Makefile lists the files it found
 * (build/gen/kernel_files.h), so adding a type or an ISA is adding a file.
 * The ref/ files are the specification: every SIMD kernel is tested
 * against them (tests/test_kernels.c) with the tolerances stated there.
 *
 * No helper is shared between ISA files except as `static inline` in a
 * header included by each (kernels/generic/ for the loops written once for
 * every ISA, kernels/x86/ for x86's primitives and each type's steps): a
 * non-static helper could be kept by the linker in its AVX-512 copy and
 * called on an older CPU.
 *
 * Weights are rows of bytes: row r of a matrix starts at w + r * row_bytes.
 * A row of d weights takes lzn_wtype_row_bytes(type, d) bytes (core/wtype.h,
 * the weight-type traits); block types store ceil(d / block) whole blocks,
 * the last one padded with zeros, which is what lets a kernel gather single
 * rows of a quantized matrix. Threads split a row into column slices that
 * start on a block boundary (a multiple of LZN_WTYPE_MAX_BLOCK columns):
 * pass w + lzn_wtype_row_bytes(type, j0) and the same row_bytes, and own
 * y[j0 .. j0 + d).
 *
 * Weight types are the public lzn_weight_type values (lazyneuron.h); every
 * table is indexed by them (entry 0, LZN_WEIGHTS_AS_STORED, is no type and
 * stays empty). Adding a type: kernels/README.md.
 */
#ifndef LZN_KERNELS_H
#define LZN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/blocks.h"
#include "lazyneuron.h"

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

/* Where the row kernels' software prefetches (kernels/generic/stream.h),
 * and attention's (x86/attn.h), bring the coming lines: one more
 * dimension of the table, chosen once per process by the CPU
 * (lib/cpu/cpu.h: lzn_cpu_prefetch_level) or LZN_PREFETCH=l1|l2. Which is faster depends on the core, not on the ISA:
 * measured, one core, LLaMA-7B rows from DRAM, % of the streaming read:
 * Zen 5 (48 KiB L1D) Q4_0 GEMV 66 with the next rows toward L2 -> 85 into
 * L1; Zen 4 (32 KiB L1D) 46 into L1 -> 84 toward L2 (F32 73 -> 85, Q8_0
 * 58 -> 89). The results are the same either way: only the timing
 * differs. */
enum lzn_prefetch_level {
  LZN_PREFETCH_L1 = 0, /* prefetcht0 */
  LZN_PREFETCH_L2 = 1  /* prefetcht1: toward L2, L1 left to the loads */
};

/* ------------------------------------------------------------- operations */

/* Writes every i in [0, n) with h[i] > threshold, in increasing order, to
 * idx and h[i] to val; returns how many. threshold is any number but NaN
 * (a ReLU's is >= 0, a predictor's scores' any). NaN is inactive.
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

/* Rows per group of axpy_rows_q8, whose coefficients share one scale. */
#define LZN_AXPY_Q8_GROUP 16

/* axpy_rows_q8: axpy_rows (same arguments, same y) with each row's
 * coefficient rounded to int8 the way Q8_0 rounds an activation, so that
 * the products of a block can be summed over rows in integers (vpdpbusd
 * adds 4 rows' int8 products per lane; an fp32 axpy_rows of a 4-bit type
 * converts every weight to float, which no core does at DRAM speed).
 * For t in groups of LZN_AXPY_Q8_GROUP consecutive entries of idx (the
 * last group may be shorter) and each block b of the rows (scale d_t,
 * integer weights q_t[j]: Q8_0 q, Q4_0 nibble - 8):
 *     a_t = coef[t] * d_t                        (fp32)
 *     m = max_t |a_t|, and if m >= FLT_MIN:
 *       s = m / 127, alpha_t = rint(a_t * (127 / m))   (round half to even,
 *                                                   so |alpha_t| <= 127)
 *     else s = 0, alpha_t = 0
 *     y[j] += s * (float)(sum_t alpha_t * q_t[j])       (the sum exact)
 * one term per group and column, groups in order (only FMA rounding
 * differs from ref/). Each a_t moves by at most m / 254: as much as
 * llama.cpp's Q8_0 activations (32 values per scale) move a dot product,
 * here over 16 rows per scale (16 rather than 8: the coefficients, the
 * converts and the FMAs of a group are shared by twice the rows, 1.5x the
 * speed in L2). The groups are the same whatever the column slice, so
 * threads that split y get the single-thread result.
 * Q4_K, whose weight is d * sc * q - dmin * m per 32-weight sub-block
 * (q 0..15), takes the sub-block as the block: a_t = coef[t] * (d_t *
 * sc_t) rounded as above, q_t[j] its nibble, and the mins' term
 * c_t = coef[t] * (dmin_t * m_t) summed in fp32 (even rows in order, odd
 * rows in order, then the two sums added) and subtracted from each column
 * of the sub-block after its integer term (ref/kquant.h, kq_axpy_rows_q8).
 * Q5_K the same (q 0..31); Q6_K with its 16-weight sub-blocks (sc a
 * signed byte, q_t[j] = q - 32) and no mins.
 * For the element types (F32, F16, BF16) nothing is rounded: it is
 * axpy_rows. */

/* out[t] = W[idx[t]][0..d) . x for t in [0, n): gathered rows (the gated
 * MLP's up rows, the predictor). x is in lzn_wtype_x_type(type). */
typedef void (*lzn_dot_rows_fn)(float *out, const void *w, size_t row_bytes, size_t d,
                                const int32_t *idx, size_t n, const void *x);

/* out[r] = W[r][0..d) . x for r in [0, n_rows): the matrix-vector product
 * of one token (dot_rows over consecutive rows, without an index array). */
typedef void (*lzn_gemv_fn)(float *out, const void *w, size_t row_bytes, size_t d,
                            size_t n_rows, const void *x);

/* Conversion of one row of d values: from_f32 rounds to nearest (even, for
 * F16/BF16; llama.cpp's rules for Q8_0/Q4_0, ref/kquant.h's search for
 * the K-quants, the last block zero-padded);
 * to_f32 is exact. The caller checks for NaN/Inf before quantizing. */
typedef void (*lzn_from_f32_fn)(void *dst, const float *src, size_t d);
typedef void (*lzn_to_f32_fn)(float *dst, const void *src, size_t d);

/* A slot: a kernel and the ISA whose file installed it (for tests,
 * lzn-bench and reports). Every slot of the table has this shape. */
#define LZN_SLOT_OF(fn_type) \
  struct {                   \
    fn_type fn;              \
    enum lzn_isa isa;        \
  }

/* The operations of one weight type, each a slot. */
typedef struct lzn_type_kernels {
  LZN_SLOT_OF(lzn_axpy_rows_fn) axpy_rows;
  LZN_SLOT_OF(lzn_dot_rows_fn) dot_rows;
  LZN_SLOT_OF(lzn_gemv_fn) gemv;
  LZN_SLOT_OF(lzn_from_f32_fn) from_f32;
  LZN_SLOT_OF(lzn_to_f32_fn) to_f32;
  LZN_SLOT_OF(lzn_axpy_rows_fn) axpy_rows_q8;
} lzn_type_kernels;

/* The operations by number, for code that goes over all of them (tests,
 * reports): lzn_type_slot_isa() reads one slot's ISA. */
typedef enum lzn_kop {
  LZN_KOP_AXPY_ROWS = 0,
  LZN_KOP_DOT_ROWS = 1,
  LZN_KOP_GEMV = 2,
  LZN_KOP_FROM_F32 = 3,
  LZN_KOP_TO_F32 = 4,
  LZN_KOP_AXPY_ROWS_Q8 = 5,
  LZN_KOP_COUNT = 6
} lzn_kop;

/* --------------------------------------------------------------- attention */

/* The KV cache holds rows of head_dim values in an lzn_kv_type (F32, F16,
 * BF16, Q8_0: the weight type of the same name stores them, core/wtype.h's
 * lzn_kv_weight_type), a row of lzn_wtype_row_bytes(that type, head_dim)
 * bytes (Q8_0: whole blocks, the last zero-padded). The attention slots are
 * indexed by the lzn_kv_type value. One KV head's rows are consecutive positions
 * (lib/model/context.h), so the kernels stream over them. Queries, scores
 * and outputs are fp32; every sum accumulates in fp32. */

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

typedef struct lzn_attn_kernels {
  LZN_SLOT_OF(lzn_attn_store_fn) store;
  LZN_SLOT_OF(lzn_attn_scores_fn) scores;
  LZN_SLOT_OF(lzn_attn_weighted_sum_fn) weighted_sum;
} lzn_attn_kernels;

/* The kernels of many tokens at once, by weight type (kernels/gemm.h). */
#include "kernels/gemm.h"

typedef struct lzn_kernel_table {
  const char *name; /* the ceiling's name: "scalar", "avx2", ..., "avx512vnni" */
  enum lzn_isa isa; /* the ceiling */
  enum lzn_prefetch_level prefetch; /* which of each row kernel's two builds is installed */
  LZN_SLOT_OF(lzn_relu_compact_fn) relu_compact;
  lzn_type_kernels type[LZN_WEIGHT_TYPE_COUNT];
  lzn_attn_kernels attn[LZN_KV_TYPE_COUNT]; /* by lzn_kv_type */
  LZN_SLOT_OF(lzn_attn_max_fn) attn_max;
  LZN_SLOT_OF(lzn_attn_exp_sum_fn) attn_exp_sum;
  lzn_gemm_kernels gemm[LZN_WEIGHT_TYPE_COUNT]; /* by weight type */
} lzn_kernel_table;

/* The one setter, for the install functions:
 *     LZN_SET(t->type[LZN_WEIGHTS_Q4_0].gemv, LZN_ISA_AVX512, q4_0_gemv); */
#define LZN_SET(slot, isa_value, function) ((slot).fn = (function), (slot).isa = (isa_value))

/* A kernel's build for the table's prefetch level, for kernels built at
 * both (the row kernels, attention): f for L1, f##_l2 for L2.
 *     LZN_SET(t->type[...].gemv, LZN_ISA_..., LZN_AT_LEVEL(t, qr_gemv)); */
#define LZN_AT_LEVEL(t, f) ((t)->prefetch == LZN_PREFETCH_L2 ? f##_l2 : f)

/* The ISA that filled operation op of a weight type's slots. */
static inline enum lzn_isa lzn_type_slot_isa(const lzn_kernel_table *t, lzn_weight_type type,
                                             lzn_kop op) {
  const lzn_type_kernels *k = &t->type[type];
  switch (op) {
  case LZN_KOP_AXPY_ROWS: return k->axpy_rows.isa;
  case LZN_KOP_DOT_ROWS: return k->dot_rows.isa;
  case LZN_KOP_GEMV: return k->gemv.isa;
  case LZN_KOP_FROM_F32: return k->from_f32.isa;
  case LZN_KOP_TO_F32: return k->to_f32.isa;
  case LZN_KOP_AXPY_ROWS_Q8: return k->axpy_rows_q8.isa;
  case LZN_KOP_COUNT: break;
  }
  return LZN_ISA_SCALAR;
}

#endif /* LZN_KERNELS_H */
