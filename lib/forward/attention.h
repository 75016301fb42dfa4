/*
 * attention.h: the attention block of a layer: q, k, v projections, rotary
 * positions, the core against the KV cache, the output projection. Private.
 */
#ifndef LZN_FORWARD_ATTENTION_H
#define LZN_FORWARD_ATTENTION_H

#include "core/carve.h"
#include "kernels/kernels.h"
#include "linalg/pool.h"
#include "model/kv_cache.h"

struct lzn_context;

/* The block's part of a context's workspace, for max_batch rows. */
typedef struct lzn_attn_buffers {
  float *q;     /* [max_batch][n_heads * head_dim] */
  float *k, *v; /* [max_batch][n_kv_heads * head_dim] */
  float *heads; /* [max_batch][n_heads * head_dim] attention per head, before the output projection */
  float *tiles; /* [n_threads][lzn_attention_tile_floats] the core's per-thread tiles */
} lzn_attn_buffers;

void lzn_attn_buffers_carve(lzn_attn_buffers *b, lzn_carver *c, const lzn_model *m, int max_batch,
                            int n_threads);

/* Floats of tiles one thread of the core needs (a tile of queries, its
 * scores against a tile of keys, running outputs, max and sum). */
size_t lzn_attention_tile_floats(const lzn_model *m);

/* One call of the core: n query rows of one sequence at positions p0.. */
typedef struct lzn_attn_call {
  const lzn_model *model;
  const lzn_kernel_table *kernels;
  lzn_pool *pool;         /* the threads (NULL: the caller alone) */
  float *tiles;           /* a lzn_attention_tile_floats for each of the pool's threads */
  lzn_kv_cache *kv;
  int layer, n, p0;
  const float *q, *k, *v; /* n rows of q_dim, kv_dim, kv_dim floats; q rotated and scaled */
  float *heads;           /* n rows of q_dim */
} lzn_attn_call;

/* Stores the n rows of k and v at positions p0.. of the cache, then writes
 * heads = softmax(q K^T) V per query head, each row attending to positions
 * 0 .. its own. Tests call it on caches they fill. */
void lzn_attention_core(const lzn_attn_call *c);
/* How many work items (threads' shares) the core makes of n tokens. */
int lzn_attention_work_items(const lzn_model *m, int n, int threads);

/* Whose cache each of a step's rows attends in, at which position: the
 * step's rows in runs, one run per sequence, in row order. A run is rows
 * [row, row + n) of the step at positions p0, p0 + 1, .. of kv: a chunk
 * of one sequence's prompt is one run, a decoding step of many sequences
 * has a run of one row for each, and lzn_forward_ragged mixes both. */
typedef struct lzn_attn_run {
  lzn_kv_cache *kv;
  int row, n, p0;
} lzn_attn_run;

typedef struct lzn_attn_target {
  const lzn_attn_run *runs;
  int n_runs;
} lzn_attn_target;

/* out = out_proj(attention(x)) for the n rows of x (d_model each) of the
 * context's step: the projections once for all rows (each weight read
 * once), the core per sequence. K and V go into each cache past its
 * n_past, which the caller advances when the whole call succeeded.
 * Statuses: OK, NOMEM, BACKEND. */
lzn_status lzn_attention_block(struct lzn_context *ctx, int layer, const float *x, int n,
                               const lzn_attn_target *target, float *out);

#endif /* LZN_FORWARD_ATTENTION_H */
