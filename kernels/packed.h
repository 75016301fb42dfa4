/*
 * packed.h: the packed layout of a Q8_0 or Q4_0 matrix that is only ever
 * read whole (attention's q, k, v, o; the LM head; a gate with no
 * predictor), and the slot that reads it. Private. (A K-quant matrix is
 * packed as Q8_0 rows, requantized by linalg/pack.c.)
 *
 * Why: rows as they lie serve every use (a GEMV, gathered rows, a gemm),
 * but a gemm of a few tokens on them is compute-bound: each (row, token)
 * pair of blocks pays its own int -> float conversion and scale, so 8
 * tokens cost ~6 GEMVs of the same matrix (bench/RESULTS.md), and packing
 * rows across the lanes per call (x86/gemm_q512_packed.h) costs a
 * transpose per block that only many tokens pay back. Packed once at load,
 * 16 rows sit across the 16 lanes of a zmm: one vpdpbusd is 64 products for
 * 16 rows, and one conversion, scale and add serve all 16, for every
 * number of tokens, one token included (the GEMV then reads one linear
 * stream instead of 8 rows 2.3 KiB apart). llama.cpp repacks Q4_0 in
 * groups of 8 rows for the same reason.
 *
 * What it costs: a packed matrix cannot give single rows (a sparse
 * gather), and one token reads rows as they lie 6-16 % faster (the row
 * GEMV's 8 streams against one group's; bench/RESULTS.md), so the packed
 * rows are a second copy that only batches of tokens read; the mapped
 * file's rows stay, shared. lzn_model_params.pack_budget bounds the copies.
 *
 * Layout: rows in groups of LZN_PACK_ROWS, the last group padded with rows
 * of weight 0 and scale 0. A group of a matrix of n_blocks blocks per row
 * is LZN_PACK_ROWS * row_bytes bytes:
 *   qs[n_blocks][qs_bytes / 4][LZN_PACK_ROWS][4]   then
 *   d[n_blocks][LZN_PACK_ROWS]                     (fp16 scales)
 * qs_bytes = 16 (Q4_0: a block's qs as they lie, two weights per byte) or
 * 32 (Q8_0: each byte XOR 0x80, i.e. q + 128 as an unsigned byte, which is
 * what vpdpbusd takes on its unsigned side). So dword c of block b of the
 * group's row r is at qs + ((b * qs_bytes / 4 + c) * LZN_PACK_ROWS + r) * 4:
 * one 64-byte line holds dword c of all 16 rows.
 */
#ifndef LZN_KERNELS_PACKED_H
#define LZN_KERNELS_PACKED_H

#include <stddef.h>
#include <stdint.h>

#define LZN_PACK_ROWS 16

/* out[t * out_stride + i] = row i . x_t for i < n_rows, t < m: the rows
 * of the packed groups that start at w (n_rows may end inside the last
 * group), rows d weights long, x_t = (const char *)x + t * x_stride in
 * Q8_0 blocks. The products are gemm's (kernels/gemm.h): exact integer
 * block sums times d_w * d_x, only the fp32 additions' order free. */
typedef void (*lzn_gemm_packed_fn)(float *out, size_t out_stride, const void *w, size_t d, size_t n_rows,
                                   const void *x, size_t x_stride, size_t m);

#endif /* LZN_KERNELS_PACKED_H */
