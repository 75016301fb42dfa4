/*
 * pack.h: matrices packed at load in groups of 16 rows (kernels/packed.h):
 * which can be, what it costs, and the packing. Private.
 */
#ifndef LZN_LINALG_PACK_H
#define LZN_LINALG_PACK_H

#include "core/matrix.h"
#include "kernels/kernels.h"

/* Whether the table can read w packed: a Q8_0 or Q4_0 matrix, not packed
 * yet, whose type has a packed slot. */
int lzn_pack_supported(const lzn_kernel_table *k, const lzn_matrix *w);

/* The bytes of w packed: whole groups of 16 rows. */
size_t lzn_pack_bytes(const lzn_matrix *w);

/* w's rows packed into dst (lzn_pack_bytes(w) bytes, 64-byte aligned for
 * the kernels' streams). w must be lzn_pack_supported. */
void lzn_pack_rows(const lzn_matrix *w, void *dst);

#endif /* LZN_LINALG_PACK_H */
