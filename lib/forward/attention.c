/*
 * attention.c: causal multi-head attention over this call's tokens and
 * those in the KV cache, with grouped-query attention (n_kv_heads KV heads,
 * each shared by n_heads / n_kv_heads query heads) and, for rotary models,
 * rotate-half RoPE on q and k as Hugging Face applies it. q is scaled by
 * head_dim^-0.5 after its bias (and rotation).
 *
 * The cache (model/kv_cache.h) keeps each KV head's positions contiguous in
 * its kv_type; this call's K and V rows are stored first (the
 * kernel table's attn store), then every query attends to positions
 * 0 .. its own. n_past advances only when a whole forward call succeeds.
 *
 * The core is blocked like FlashAttention: a work item is one KV head, a
 * slice of its query heads and a tile of tokens, at most TILE_ROWS query
 * rows; it walks the keys in tiles of TILE_KEYS with an online softmax
 * (running max m and sum l per row, the output rescaled by exp(m_old -
 * m_new) when the max grows), so no T x T score matrix is ever formed and
 * each K/V tile is read once for all the rows of the item (a GQA group reads
 * its KV head once). Decode is the same loop with one token. Threads split
 * the work items: KV heads, then query-head slices when there are fewer KV
 * heads than threads, then token tiles.
 */
#include "forward/attention.h"

#include <math.h>
#include <string.h>

#include "core/clock.h"
#include "forward/context.h"
#include "linalg/linear.h"

/* Query rows per work item (token tile x head slice) and keys per tile:
 * 64 rows x 128 keys of scores is 32 KiB, a K/V tile of 128 rows is 16-64
 * KiB: the working set of an item stays in L2. */
#define TILE_ROWS 64
#define TILE_KEYS 128

size_t lzn_attention_tile_floats(const lzn_model *m) {
  const size_t hd = (size_t)m->head_dim;
  /* q tile, output tile, scores, running max and sum; whole cache lines. */
  return (TILE_ROWS * (2 * hd + TILE_KEYS + 2) + 64 + 15) & ~(size_t)15;
}

void lzn_attn_buffers_carve(lzn_attn_buffers *b, lzn_carver *c, const lzn_model *m, int max_batch,
                            int n_threads) {
  const size_t rows = (size_t)max_batch, hd = (size_t)m->head_dim;
  b->q = LZN_CARVE(c, rows * (size_t)m->n_heads * hd, float);
  b->k = LZN_CARVE(c, rows * (size_t)m->n_kv_heads * hd, float);
  b->v = LZN_CARVE(c, rows * (size_t)m->n_kv_heads * hd, float);
  b->heads = LZN_CARVE(c, rows * (size_t)m->n_heads * hd, float);
  b->tiles = LZN_CARVE(c, (size_t)n_threads * lzn_attention_tile_floats(m), float);
}

/* Rotates each of n_heads heads of n rows (stride dim) at positions p0..:
 * (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) on the halves, with the
 * angles of the sequence's cache. */
static void rotate(const lzn_kv_cache *kv, int hd, float *x, int n, int dim, int n_heads, int p0) {
  const int half = hd / 2;
  for (int t = 0; t < n; t++) {
    const float *c = kv->rope_cos + (size_t)(p0 + t) * half;
    const float *s = kv->rope_sin + (size_t)(p0 + t) * half;
    for (int h = 0; h < n_heads; h++) {
      float *v = x + (size_t)t * dim + (size_t)h * hd;
      for (int i = 0; i < half; i++) {
        const float x1 = v[i], x2 = v[i + half];
        v[i] = x1 * c[i] - x2 * s[i];
        v[i + half] = x2 * c[i] + x1 * s[i];
      }
    }
  }
}

/* How the (KV head, head slice, token tile) items cut this call. */
typedef struct attn_plan {
  int n, p0, hd, group;
  int slices, slice_heads; /* query heads of a group per slice (the last may have fewer) */
  int tiles, tile_tokens;  /* tokens per tile (the last may have fewer) */
  int items;
} attn_plan;

static attn_plan make_plan(const lzn_model *m, int n, int p0, int threads) {
  attn_plan p;
  p.n = n, p.p0 = p0, p.hd = m->head_dim, p.group = m->n_heads / m->n_kv_heads;
  /* Enough slices that a slice fits TILE_ROWS, and that one token's items
   * give every thread work when there are fewer KV heads than threads. */
  p.slices = (p.group + TILE_ROWS - 1) / TILE_ROWS;
  const int want = (threads + m->n_kv_heads - 1) / m->n_kv_heads;
  if (n == 1 && want > p.slices) p.slices = want < p.group ? want : p.group;
  p.slice_heads = (p.group + p.slices - 1) / p.slices;
  p.slices = (p.group + p.slice_heads - 1) / p.slice_heads;
  p.tile_tokens = TILE_ROWS / p.slice_heads > 0 ? TILE_ROWS / p.slice_heads : 1;
  p.tiles = (n + p.tile_tokens - 1) / p.tile_tokens;
  p.items = m->n_kv_heads * p.slices * p.tiles;
  return p;
}

/* The online softmax step of one row over one key tile: s[0..n_keys) are
 * the row's scores, the keys from `visible` on are masked (causal). Turns s
 * into the weights exp(s - m_new) (0 where masked), rescales the row's
 * output and running sum by exp(m_old - m_new), and updates m and l. */
static void softmax_step(const lzn_kernel_table *k, float *s, int n_keys, int visible, float *m,
                         float *l, float *out, int hd) {
  float m_new = *m;
  if (visible > 0) {
    const float tile_max = k->attn_max.fn(s, (size_t)visible);
    m_new = tile_max > m_new ? tile_max : m_new;
  }
  const float alpha = expf(*m - m_new); /* 0 on the first tile: m = -inf */
  const float sum = visible > 0 ? k->attn_exp_sum.fn(s, (size_t)visible, m_new) : 0.0f;
  for (int j = visible; j < n_keys; j++) s[j] = 0.0f;
  if (alpha != 1.0f)
    for (int c = 0; c < hd; c++) out[c] *= alpha;
  *l = *l * alpha + sum;
  *m = m_new;
}

/* One work item: query heads [h0, h1) of KV head kv (global head numbers
 * kv * group + g), tokens [t0, t1) of this call. */
static void attend_item(const lzn_attn_call *call, const lzn_attn_kernels *kern, const attn_plan *p,
                        int kv, int g0, int g1, int t0, int t1, float *scratch) {
  const lzn_model *m = call->model;
  const lzn_kv_cache *cache = call->kv;
  const int hd = p->hd, heads = g1 - g0, rows = (t1 - t0) * heads;
  const size_t q_dim = (size_t)m->n_heads * (size_t)hd;
  float *q = scratch, *out = q + (size_t)TILE_ROWS * hd, *scores = out + (size_t)TILE_ROWS * hd;
  float *row_max = scores + (size_t)TILE_ROWS * TILE_KEYS, *row_sum = row_max + TILE_ROWS;
  for (int t = t0; t < t1; t++)
    for (int g = g0; g < g1; g++) {
      const int r = (t - t0) * heads + (g - g0);
      const size_t h = (size_t)kv * (size_t)p->group + (size_t)g;
      memcpy(q + (size_t)r * hd, call->q + (size_t)t * q_dim + h * hd, sizeof(float) * (size_t)hd);
      row_max[r] = -INFINITY, row_sum[r] = 0.0f;
    }
  memset(out, 0, sizeof(float) * (size_t)rows * (size_t)hd);
  const char *k_rows = lzn_kv_row(cache, cache->k, call->layer, kv, 0);
  const char *v_rows = lzn_kv_row(cache, cache->v, call->layer, kv, 0);
  const size_t row_bytes = cache->row_bytes;
  const int last_key = p->p0 + t1 - 1; /* the last row's own position */
  for (int k0 = 0; k0 <= last_key; k0 += TILE_KEYS) {
    const int n_keys = last_key + 1 - k0 < TILE_KEYS ? last_key + 1 - k0 : TILE_KEYS;
    kern->scores.fn(scores, TILE_KEYS, q, (size_t)hd, (size_t)rows, k_rows + (size_t)k0 * row_bytes, row_bytes,
                    (size_t)n_keys, (size_t)hd);
    for (int r = 0; r < rows; r++) {
      const int position = p->p0 + t0 + r / heads, visible = position + 1 - k0;
      softmax_step(call->kernels, scores + (size_t)r * TILE_KEYS, n_keys,
                   visible < 0 ? 0 : visible < n_keys ? visible : n_keys, &row_max[r], &row_sum[r],
                   out + (size_t)r * hd, hd);
    }
    kern->weighted_sum.fn(out, (size_t)hd, scores, TILE_KEYS, (size_t)rows, v_rows + (size_t)k0 * row_bytes,
                          row_bytes, (size_t)n_keys, (size_t)hd);
  }
  for (int t = t0; t < t1; t++)
    for (int g = g0; g < g1; g++) {
      const int r = (t - t0) * heads + (g - g0);
      const size_t h = (size_t)kv * (size_t)p->group + (size_t)g;
      const float inv_sum = 1.0f / row_sum[r]; /* >= 1: the row's max term is exp(0) */
      float *dst = call->heads + (size_t)t * q_dim + h * hd;
      for (int c = 0; c < hd; c++) dst[c] = out[(size_t)r * hd + c] * inv_sum;
    }
}

int lzn_attention_work_items(const lzn_model *m, int n, int threads) {
  return make_plan(m, n, 0, threads).items;
}

/* One work item of the core, run by the pool: per-thread tiles by thread. */
typedef struct core_job {
  const lzn_attn_call *call;
  const lzn_attn_kernels *kern;
  attn_plan plan;
  size_t tile_floats;
} core_job;

static void core_item(void *arg, int item, int thread) {
  const core_job *j = arg;
  const attn_plan *p = &j->plan;
  const int kv = item / (p->slices * p->tiles), rest = item % (p->slices * p->tiles);
  const int slice = rest / p->tiles, tile = rest % p->tiles;
  const int g0 = slice * p->slice_heads, g1 = g0 + p->slice_heads < p->group ? g0 + p->slice_heads : p->group;
  const int t0 = tile * p->tile_tokens, t1 = t0 + p->tile_tokens < p->n ? t0 + p->tile_tokens : p->n;
  attend_item(j->call, j->kern, p, kv, g0, g1, t0, t1, j->call->tiles + (size_t)thread * j->tile_floats);
}

void lzn_attention_core(const lzn_attn_call *c) {
  const lzn_model *m = c->model;
  const lzn_attn_kernels *kern = &c->kernels->attn[c->kv->type];
  const int threads = lzn_pool_threads(c->pool), hd = m->head_dim, n = c->n;
  const size_t kv_dim = (size_t)m->n_kv_heads * (size_t)hd;
  for (int kv = 0; kv < m->n_kv_heads; kv++) {
    kern->store.fn(lzn_kv_row(c->kv, c->kv->k, c->layer, kv, c->p0), c->kv->row_bytes, c->k + (size_t)kv * hd,
                   kv_dim, (size_t)n, (size_t)hd);
    kern->store.fn(lzn_kv_row(c->kv, c->kv->v, c->layer, kv, c->p0), c->kv->row_bytes, c->v + (size_t)kv * hd,
                   kv_dim, (size_t)n, (size_t)hd);
  }
  core_job job = {c, kern, make_plan(m, n, c->p0, threads), lzn_attention_tile_floats(m)};
  lzn_pool_run(c->pool, job.plan.items, threads, core_item, &job);
}

/* K and V bytes the core reads for n rows at p0: each work item reads the
 * rows of its KV head up to its last token, per token tile, head slice and
 * KV head. */
static double kv_bytes_read(const lzn_model *m, const lzn_kv_cache *kv, int n, int p0, int threads) {
  const attn_plan p = make_plan(m, n, p0, threads);
  double rows = 0;
  for (int tile = 0; tile < p.tiles; tile++) {
    const int t1 = (tile + 1) * p.tile_tokens < n ? (tile + 1) * p.tile_tokens : n;
    rows += (double)(p0 + t1);
  }
  return 2.0 * rows * p.slices * m->n_kv_heads * (double)kv->row_bytes;
}

/* The part between the projections, for n rows of one sequence at p0..:
 * rotates and scales q (and rotates k), then the core. Returns the K/V
 * bytes the core read. */
static double attend_sequence(lzn_context *ctx, lzn_kv_cache *kv, int layer, float *q, float *k, const float *v,
                              float *heads, int n, int p0) {
  const lzn_model *m = ctx->model;
  const int hd = m->head_dim, q_dim = m->n_heads * hd, kv_dim = m->n_kv_heads * hd;
  if (m->arch.positions == LZN_POSITIONS_ROPE) {
    rotate(kv, hd, q, n, q_dim, m->n_heads, p0);
    rotate(kv, hd, k, n, kv_dim, m->n_kv_heads, p0);
  }
  const float scale = 1.0f / sqrtf((float)hd);
  for (size_t i = 0; i < (size_t)n * q_dim; i++) q[i] *= scale;
  const lzn_attn_call call = {.model = m, .kernels = ctx->exec.kernels, .pool = ctx->exec.pool,
                              .tiles = ctx->ws.attn.tiles, .kv = kv, .layer = layer, .n = n, .p0 = p0,
                              .q = q, .k = k, .v = v, .heads = heads};
  lzn_attention_core(&call);
  return kv_bytes_read(m, kv, n, p0, ctx->exec.n_threads);
}

lzn_status lzn_attention_block(lzn_context *ctx, int layer, const float *x, int n,
                               const lzn_attn_target *target, float *out) {
  const lzn_model *m = ctx->model;
  const lzn_layer *weights = &m->layers[layer];
  const lzn_attn_buffers *b = &ctx->ws.attn;
  lzn_exec *ex = &ctx->exec;
  const size_t q_dim = (size_t)m->n_heads * m->head_dim, kv_dim = (size_t)m->n_kv_heads * m->head_dim;
  const double t0 = lzn_now_seconds();
  /* q, k and v read the same x: one pass over their rows. */
  const lzn_linear_out qkv[3] = {{b->q, &weights->q, weights->q_b}, {b->k, &weights->k, weights->k_b},
                                 {b->v, &weights->v, weights->v_b}};
  lzn_status s = lzn_linear_group(ex, x, qkv, 3, n);
  if (s != LZN_OK) return s;
  const double t_core = lzn_now_seconds();
  double kv_bytes = 0.0;
  for (int i = 0; i < target->n_runs; i++) {
    const lzn_attn_run *run = &target->runs[i];
    const size_t r = (size_t)run->row;
    kv_bytes += attend_sequence(ctx, run->kv, layer, b->q + r * q_dim, b->k + r * kv_dim, b->v + r * kv_dim,
                                b->heads + r * q_dim, run->n, run->p0);
  }
  const double core_seconds = lzn_now_seconds() - t_core;
  s = lzn_linear(ex, out, b->heads, &weights->o, weights->o_b, n);
  lzn_record_attention(&ctx->stats, layer, lzn_now_seconds() - t0, core_seconds, kv_bytes);
  return s;
}
