/*
 * kv_cache.h: one sequence's keys and values, and its position. Private.
 *
 * Rows of head_dim values in the cache's lzn_kv_type, row_bytes each, laid
 * out [n_layers][n_kv_heads][n_ctx][row]. One KV head's positions are
 * consecutive, so the attention kernels stream one contiguous run of n_past
 * rows per (layer, head) (hardware prefetch, no stride over the other
 * heads), a GQA group reads it once, and a Q8_0 row is whole blocks of its
 * own. Writing a new token scatters n_kv_heads rows, which is cheap next to
 * reading n_past of them. Rotary models also keep the angles of every
 * position here: they belong to positions, like the rows.
 */
#ifndef LZN_MODEL_KV_CACHE_H
#define LZN_MODEL_KV_CACHE_H

#include <stddef.h>

#include "model/model.h"

typedef struct lzn_kv_cache {
  lzn_kv_type type;
  size_t row_bytes;       /* of head_dim values in type */
  size_t bytes;           /* K + V, every layer */
  int n_layers, n_kv_heads, n_ctx;
  int n_past;             /* positions filled, 0 .. n_ctx */
  void *k, *v;
  float *rope_cos, *rope_sin; /* [n_ctx][head_dim / 2] rotary angles per position; NULL without rope */
} lzn_kv_cache;

/* A cache of n_ctx positions of the model's layers and KV heads. Statuses:
 * OK, NOMEM (the size, stated, overflows or cannot be allocated). */
lzn_status lzn_kv_cache_create(lzn_kv_cache *kv, const lzn_model *m, int n_ctx, lzn_kv_type type);
void lzn_kv_cache_free(lzn_kv_cache *kv);

/* Row (layer, kv_head, position) of K or V. */
static inline void *lzn_kv_row(const lzn_kv_cache *kv, void *cache, int layer, int kv_head, int position) {
  const size_t rows = ((size_t)layer * (size_t)kv->n_kv_heads + (size_t)kv_head) * (size_t)kv->n_ctx +
                      (size_t)position;
  return (char *)cache + rows * kv->row_bytes;
}

/* Makes dst's sequence the first n_tokens of src's (same model and type,
 * n_tokens <= src n_past and <= dst n_ctx: the caller checks). */
void lzn_kv_cache_copy_prefix(lzn_kv_cache *dst, const lzn_kv_cache *src, int n_tokens);

#endif /* LZN_MODEL_KV_CACHE_H */
