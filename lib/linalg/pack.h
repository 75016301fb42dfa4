/*
 * pack.h: matrices packed at load in groups of 16 rows (kernels/packed.h):
 * which can be, in what type, what it costs, and the packing. Private.
 */
#ifndef LZN_LINALG_PACK_H
#define LZN_LINALG_PACK_H

#include "core/errors.h"
#include "core/matrix.h"
#include "kernels/kernels.h"

/* The type of a matrix's packed copy: Q8_0 and Q4_0 pack as they are; a
 * K-quant (Q4_K, Q5_K, Q6_K) is requantized to Q8_0, whose packed kernel
 * a batch of tokens then reads (the K-quants have no packed kernel: on
 * their rows a 7B-shape batched step of 8 took 2.2x as long as Q4_0's
 * packed one, a 128-token prompt 1.7x (dense) to 2.7x (sparse)). Q8_0
 * adds an error of at most half a Q8_0 step, 1/254 of a block's largest
 * weight, to weights whose own K-quant step is 1/15 to 1/63 of it: the
 * same second rounding that W_down^T gets at load (README). */
lzn_weight_type lzn_pack_type(lzn_weight_type type);

/* Whether the table can read w packed: a Q8_0, Q4_0 or K-quant matrix,
 * not packed yet, whose packed type has a packed slot (and, for a
 * K-quant, whose rows convert to fp32 (linalg/row_f32.h) and Q8_0 from
 * it). */
int lzn_pack_supported(const lzn_kernel_table *k, const lzn_matrix *w);

/* The bytes of w packed: whole groups of 16 rows of its packed type. */
size_t lzn_pack_bytes(const lzn_matrix *w);

/* Bytes of one row of w's packed copy (a group is 16 of them). */
size_t lzn_pack_row_bytes(const lzn_matrix *w);

/* w's rows packed into dst (lzn_pack_bytes(w) bytes, 64-byte aligned for
 * the kernels' streams) with k's conversions, on n_threads OpenMP threads
 * (the same bytes for any number). w must be lzn_pack_supported. Fails
 * (LZN_ERR_NOMEM) only for a K-quant's row buffers; dst is then not a
 * packed copy. */
lzn_status lzn_pack_rows(const lzn_kernel_table *k, const lzn_matrix *w, void *dst, int n_threads);

#endif /* LZN_LINALG_PACK_H */
