/*
 * kv_cache.c: one sequence's keys, values and rotary angles.
 */
#include "model/kv_cache.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/wtype.h"

/* cos and sin of position p times each of the head_dim / 2 frequencies
 * theta^(-2i / head_dim), positions scaled for linear rope_scaling; in
 * double, rounded once. */
static void fill_rope_tables(lzn_kv_cache *kv, const lzn_model *m) {
  const int half = m->head_dim / 2;
  for (int p = 0; p < kv->n_ctx; p++)
    for (int i = 0; i < half; i++) {
      const double freq = pow(m->arch.rope_theta, -2.0 * i / m->head_dim);
      const double angle = p * m->arch.rope_position_scale * freq;
      kv->rope_cos[(size_t)p * half + i] = (float)cos(angle);
      kv->rope_sin[(size_t)p * half + i] = (float)sin(angle);
    }
}

/* K and V of every layer: 2 * n_layers * n_kv_heads * n_ctx rows, checked
 * for overflow, then allocated 64-byte aligned (pages are touched as
 * positions fill). */
lzn_status lzn_kv_cache_create(lzn_kv_cache *kv, const lzn_model *m, int n_ctx, lzn_kv_type type) {
  memset(kv, 0, sizeof *kv);
  kv->type = type, kv->n_ctx = n_ctx, kv->n_layers = m->n_layers, kv->n_kv_heads = m->n_kv_heads;
  kv->row_bytes = lzn_wtype_row_bytes(lzn_kv_weight_type(type), (size_t)m->head_dim);
  size_t rows = 0, bytes = 0, total = 0;
  const int overflow =
      __builtin_mul_overflow((size_t)m->n_layers * (size_t)m->n_kv_heads, (size_t)n_ctx, &rows) ||
      __builtin_mul_overflow(rows, kv->row_bytes, &bytes) || bytes > (SIZE_MAX - 63) / 2 ||
      __builtin_mul_overflow(bytes, (size_t)2, &total);
  if (overflow || bytes > (size_t)PTRDIFF_MAX / 2)
    return lzn_fail(LZN_ERR_NOMEM, "lzn_context_create: the KV cache of %d positions x %d layers x "
                    "%d KV heads x %zu bytes per row, twice (K and V), overflows size_t",
                    n_ctx, m->n_layers, m->n_kv_heads, kv->row_bytes);
  const size_t aligned = (bytes + 63) & ~(size_t)63;
  kv->bytes = total;
  kv->k = aligned_alloc(64, aligned ? aligned : 64);
  kv->v = aligned_alloc(64, aligned ? aligned : 64);
  if (kv->k == NULL || kv->v == NULL) {
    lzn_kv_cache_free(kv);
    return lzn_fail(LZN_ERR_NOMEM, "lzn_context_create: cannot allocate the KV cache: %zu bytes "
                    "(%zu MiB) for %d positions in kv_type %s", total, total >> 20, n_ctx,
                    lzn_kv_type_name(type));
  }
  if (m->arch.positions == LZN_POSITIONS_ROPE) {
    const size_t angles = (size_t)n_ctx * (size_t)(m->head_dim / 2);
    kv->rope_cos = malloc((angles ? angles : 1) * sizeof(float));
    kv->rope_sin = malloc((angles ? angles : 1) * sizeof(float));
    if (kv->rope_cos == NULL || kv->rope_sin == NULL) {
      lzn_kv_cache_free(kv);
      return lzn_fail(LZN_ERR_NOMEM, "lzn_context_create: out of memory for the rotary angles of "
                      "%d positions", n_ctx);
    }
    fill_rope_tables(kv, m);
  }
  return LZN_OK;
}

void lzn_kv_cache_free(lzn_kv_cache *kv) {
  free(kv->k), free(kv->v), free(kv->rope_cos), free(kv->rope_sin);
  memset(kv, 0, sizeof *kv);
}

/* Each (layer, KV head) keeps its positions contiguous: one copy of
 * n_tokens rows per head, in K and in V. */
void lzn_kv_cache_copy_prefix(lzn_kv_cache *dst, const lzn_kv_cache *src, int n_tokens) {
  const size_t bytes = (size_t)n_tokens * src->row_bytes;
  for (int l = 0; l < src->n_layers; l++)
    for (int h = 0; h < src->n_kv_heads; h++) {
      memcpy(lzn_kv_row(dst, dst->k, l, h, 0), lzn_kv_row(src, src->k, l, h, 0), bytes);
      memcpy(lzn_kv_row(dst, dst->v, l, h, 0), lzn_kv_row(src, src->v, l, h, 0), bytes);
    }
  dst->n_past = n_tokens;
}
