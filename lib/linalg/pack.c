/*
 * pack.c: a Q8_0 / Q4_0 matrix, or a K-quant one requantized to Q8_0, into
 * kernels/packed.h's layout. Plain C around the table's conversions: it
 * runs once per matrix at load, bound by reading the rows.
 */
#include "linalg/pack.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "linalg/row_f32.h"

lzn_weight_type lzn_pack_type(lzn_weight_type type) {
  return type == LZN_WEIGHTS_Q4_0 ? LZN_WEIGHTS_Q4_0 : LZN_WEIGHTS_Q8_0;
}

int lzn_pack_supported(const lzn_kernel_table *k, const lzn_matrix *w) {
  if (w->packed != NULL || w->data == NULL) return 0;
  if (w->type == LZN_WEIGHTS_Q8_0 || w->type == LZN_WEIGHTS_Q4_0) return k->gemm[w->type].packed.fn != NULL;
  return lzn_wtype_is_kquant(w->type) && k->gemm[LZN_WEIGHTS_Q8_0].packed.fn != NULL && k->type[w->type].axpy_rows.fn != NULL &&
         k->type[LZN_WEIGHTS_Q8_0].from_f32.fn != NULL;
}

size_t lzn_pack_row_bytes(const lzn_matrix *w) {
  return lzn_wtype_row_bytes(lzn_pack_type(w->type), (size_t)w->cols);
}

size_t lzn_pack_bytes(const lzn_matrix *w) {
  const size_t groups = ((size_t)w->rows + LZN_PACK_ROWS - 1) / LZN_PACK_ROWS;
  return groups * LZN_PACK_ROWS * lzn_pack_row_bytes(w);
}

/* Row r (< 16) of a group of n_blocks blocks, from one row of blocks (NULL:
 * a padding row, weight 0 and scale 0). */
static void pack_row(lzn_weight_type type, uint8_t *group, size_t n_blocks, int r, const void *row) {
  const size_t qs_bytes = type == LZN_WEIGHTS_Q8_0 ? LZN_QK : LZN_QK / 2;
  uint16_t *scales = (uint16_t *)(group + LZN_PACK_ROWS * n_blocks * qs_bytes);
  for (size_t b = 0; b < n_blocks; b++) {
    uint8_t qs[LZN_QK];
    uint16_t d = 0;
    if (row == NULL) memset(qs, type == LZN_WEIGHTS_Q8_0 ? 0x80 : 0x88, sizeof qs);
    else if (type == LZN_WEIGHTS_Q8_0) {
      const lzn_block_q8_0 *block = (const lzn_block_q8_0 *)row + b;
      d = block->d;
      for (size_t j = 0; j < LZN_QK; j++) qs[j] = (uint8_t)block->qs[j] ^ 0x80u; /* q + 128, unsigned */
    } else {
      const lzn_block_q4_0 *block = (const lzn_block_q4_0 *)row + b;
      d = block->d;
      memcpy(qs, block->qs, LZN_QK / 2);
    }
    scales[b * LZN_PACK_ROWS + (size_t)r] = d;
    for (size_t c = 0; c < qs_bytes / 4; c++)
      memcpy(group + ((b * (qs_bytes / 4) + c) * LZN_PACK_ROWS + (size_t)r) * 4, qs + 4 * c, 4);
  }
}

lzn_status lzn_pack_rows(const lzn_kernel_table *k, const lzn_matrix *w, void *dst, int n_threads) {
  const lzn_weight_type type = lzn_pack_type(w->type);
  const size_t cols = (size_t)w->cols, n_blocks = (cols + LZN_QK - 1) / LZN_QK;
  const size_t group_bytes = LZN_PACK_ROWS * lzn_pack_row_bytes(w);
  const long groups = (long)(((size_t)w->rows + LZN_PACK_ROWS - 1) / LZN_PACK_ROWS);
  const int threads = n_threads < 1 ? 1 : n_threads;
  /* A K-quant row on its way, per thread: fp32, then Q8_0 as the pack
   * reads it. */
  const size_t wide_bytes = (cols * sizeof(float) + 63) & ~(size_t)63;
  const size_t per_thread = wide_bytes + ((lzn_pack_row_bytes(w) + 63) & ~(size_t)63);
  char *rows = NULL;
  if (type != w->type && (rows = malloc((size_t)threads * per_thread)) == NULL)
    return lzn_fail(LZN_ERR_NOMEM, "out of memory packing a %lld x %lld matrix", (long long)w->rows,
                    (long long)w->cols);
  /* Groups split among the threads: each writes (and first touches) its
   * own part of dst. */
#pragma omp parallel for num_threads(threads) schedule(static)
  for (long g = 0; g < groups; g++) {
    float *wide = rows ? (float *)(rows + (size_t)omp_get_thread_num() * per_thread) : NULL;
    void *requantized = rows ? (char *)wide + wide_bytes : NULL;
    for (int r = 0; r < LZN_PACK_ROWS; r++) {
      const int64_t row = (int64_t)g * LZN_PACK_ROWS + r;
      const void *src = row < w->rows ? lzn_matrix_row(w, row) : NULL;
      if (src != NULL && requantized != NULL) {
        lzn_row_f32(&k->type[w->type], w->type, src, cols, wide);
        k->type[LZN_WEIGHTS_Q8_0].from_f32.fn(requantized, wide, cols);
        src = requantized;
      }
      pack_row(type, (uint8_t *)dst + (size_t)g * group_bytes, n_blocks, r, src);
    }
  }
  free(rows);
  return LZN_OK;
}
