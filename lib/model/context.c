/*
 * context.c: one sequence's state: KV cache, scratch, statistics.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "forward/forward.h"

/* Prefill runs in batches of at most this many tokens, which bounds the
 * scratch memory: [64][d_ff] floats is 2 MiB for OPT-1.3B. */
#define LZN_MAX_BATCH 64

LZN_API lzn_context_params lzn_context_default_params(void) {
  lzn_context_params p;
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.n_ctx = 0;
  p.n_threads = 1;
  p.mlp_mode = LZN_MLP_AUTO;
  p.auto_crossover = 0.0f;
  p.collect_stats = 1;
  p.use_predictor = 1;
  p.predictor_threshold = NAN;
  p.collect_recall = 0;
  p.kv_type = LZN_KV_F16;
  return p;
}

static lzn_status check_context_params(const lzn_context_params *p, const lzn_model *m) {
  const char *fn = "lzn_context_create";
  if (p->struct_size != sizeof *p)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: params->struct_size = %zu, expected %zu "
                    "(use lzn_context_default_params())", fn, p->struct_size, sizeof *p);
  if (p->n_ctx < 0 || p->n_ctx > m->max_positions)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: params->n_ctx = %d, must be in [0, %d] "
                    "(max_position_embeddings)", fn, p->n_ctx, m->max_positions);
  if (p->n_threads < 1 || p->n_threads > LZN_MAX_THREADS)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: params->n_threads = %d, must be in [1, %d]", fn,
                    p->n_threads, LZN_MAX_THREADS);
  if (p->mlp_mode != LZN_MLP_AUTO && p->mlp_mode != LZN_MLP_SPARSE && p->mlp_mode != LZN_MLP_DENSE)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: params->mlp_mode = %d is not an lzn_mlp_mode", fn,
                    (int)p->mlp_mode);
  if (!(p->auto_crossover >= 0.0f && p->auto_crossover <= 1.0f))
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: params->auto_crossover = %g, must be in [0, 1]", fn,
                    (double)p->auto_crossover);
  if (p->top_k < 0 || p->top_k > m->d_ff)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: params->top_k = %d, must be in [0, d_ff = %d]", fn,
                    p->top_k, m->d_ff);
  if (!(p->threshold >= 0.0f) || isinf(p->threshold))
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: params->threshold = %g, must be finite and >= 0", fn,
                    (double)p->threshold);
  if (p->kv_type != LZN_KV_F32 && p->kv_type != LZN_KV_F16 && p->kv_type != LZN_KV_BF16 &&
      p->kv_type != LZN_KV_Q8_0)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: params->kv_type = %d is not an lzn_kv_type "
                    "(LZN_KV_F32, LZN_KV_F16, LZN_KV_BF16, LZN_KV_Q8_0)", fn, (int)p->kv_type);
  if (p->collect_stats != 0 && p->collect_stats != 1)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: params->collect_stats = %d, must be 0 or 1", fn,
                    p->collect_stats);
  if (p->use_predictor != 0 && p->use_predictor != 1)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: params->use_predictor = %d, must be 0 or 1", fn,
                    p->use_predictor);
  if (p->collect_recall != 0 && p->collect_recall != 1)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: params->collect_recall = %d, must be 0 or 1", fn,
                    p->collect_recall);
  if (isinf(p->predictor_threshold))
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: params->predictor_threshold = %g, must be finite "
                    "(or NAN: the file's)", fn, (double)p->predictor_threshold);
  return LZN_OK;
}

static float *floats(size_t n) { return aligned_alloc(64, ((n * sizeof(float)) + 63) & ~(size_t)63); }

/* Every float buffer of a context, for allocation checks and freeing (the
 * KV cache, of another type, is allocated and freed on its own). */
#define CONTEXT_FLOAT_BUFFERS(ctx)                                                               \
  {&(ctx)->hidden, &(ctx)->normed, &(ctx)->q, &(ctx)->k, &(ctx)->v, &(ctx)->heads,              \
   &(ctx)->attn, &(ctx)->gate, &(ctx)->up, &(ctx)->mlp_out, &(ctx)->embed, &(ctx)->attn_scratch, \
   &(ctx)->active_val, &(ctx)->top_k_scratch, &(ctx)->token_threshold, &(ctx)->rope_cos,         \
   &(ctx)->rope_sin, &(ctx)->act_abs, &(ctx)->pred_hidden, &(ctx)->pred_score,                   \
   &(ctx)->pred_dense, &(ctx)->union_coef}

LZN_API void lzn_context_free(lzn_context *ctx) {
  if (ctx == NULL) return;
  lzn_exec_free(&ctx->exec);
  float **buffers[] = CONTEXT_FLOAT_BUFFERS(ctx);
  for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) free(*buffers[i]);
  free(ctx->k_cache);
  free(ctx->v_cache);
  free(ctx->active_idx);
  free(ctx->all_rows);
  free(ctx->pred_idx), free(ctx->pred_n), free(ctx->pred_counters);
  free(ctx->union_mask), free(ctx->union_idx);
  if (ctx->counters)
    for (int l = 0; l < ctx->model->n_layers; l++) free(ctx->counters[l].fired);
  free(ctx->counters);
  free(ctx);
}

/* cos and sin of position p times each of the head_dim / 2 frequencies
 * theta^(-2i / head_dim), positions scaled for linear rope_scaling; in
 * double, rounded once. */
static void fill_rope_tables(lzn_context *ctx) {
  const lzn_model *m = ctx->model;
  const int half = m->head_dim / 2;
  for (int p = 0; p < ctx->n_ctx; p++)
    for (int i = 0; i < half; i++) {
      const double freq = pow(m->arch.rope_theta, -2.0 * i / m->head_dim);
      const double angle = p * m->arch.rope_position_scale * freq;
      ctx->rope_cos[(size_t)p * half + i] = (float)cos(angle);
      ctx->rope_sin[(size_t)p * half + i] = (float)sin(angle);
    }
}

/* K and V of every layer: 2 * n_layers * n_kv_heads * n_ctx rows, checked
 * for overflow, then allocated 64-byte aligned. */
static lzn_status allocate_kv_cache(lzn_context *ctx) {
  const lzn_model *m = ctx->model;
  ctx->kv_type = ctx->params.kv_type;
  ctx->kv_row_bytes = lzn_wtype_row_bytes(lzn_kv_weight_type(ctx->kv_type), (size_t)m->head_dim);
  size_t rows = 0, bytes = 0, total = 0;
  const int overflow =
      __builtin_mul_overflow((size_t)m->n_layers * (size_t)m->n_kv_heads, (size_t)ctx->n_ctx, &rows) ||
      __builtin_mul_overflow(rows, ctx->kv_row_bytes, &bytes) || bytes > (SIZE_MAX - 63) / 2 ||
      __builtin_mul_overflow(bytes, (size_t)2, &total);
  if (overflow || bytes > (size_t)PTRDIFF_MAX / 2)
    return lzn_fail(LZN_ERR_NOMEM, "lzn_context_create: the KV cache of %d positions x %d layers x "
                    "%d KV heads x %zu bytes per row, twice (K and V), overflows size_t",
                    ctx->n_ctx, m->n_layers, m->n_kv_heads, ctx->kv_row_bytes);
  const size_t aligned = (bytes + 63) & ~(size_t)63;
  ctx->kv_bytes = total;
  ctx->k_cache = aligned_alloc(64, aligned ? aligned : 64);
  ctx->v_cache = aligned_alloc(64, aligned ? aligned : 64);
  if (ctx->k_cache == NULL || ctx->v_cache == NULL)
    return lzn_fail(LZN_ERR_NOMEM, "lzn_context_create: cannot allocate the KV cache: %zu bytes "
                    "(%zu MiB) for %d positions in kv_type %d", total, total >> 20, ctx->n_ctx,
                    (int)ctx->params.kv_type);
  return LZN_OK;
}

static lzn_status allocate(lzn_context *ctx) {
  const lzn_model *m = ctx->model;
  const size_t b = (size_t)ctx->max_batch, d = (size_t)m->d_model, f = (size_t)m->d_ff;
  const size_t q_dim = (size_t)m->n_heads * (size_t)m->head_dim;
  const size_t kv_dim = (size_t)m->n_kv_heads * (size_t)m->head_dim;
  const size_t embed = (size_t)(m->d_embed > m->d_model ? m->d_embed : m->d_model);
  const int gated = m->arch.mlp == LZN_MLP_KIND_GATED, rope = m->arch.positions == LZN_POSITIONS_ROPE;
  const size_t rope_table = rope ? (size_t)ctx->n_ctx * (size_t)(m->head_dim / 2) : 0;
  lzn_status s = allocate_kv_cache(ctx);
  if (s != LZN_OK) return s;
  ctx->hidden = floats(b * d), ctx->normed = floats(b * d);
  ctx->q = floats(b * q_dim), ctx->k = floats(b * kv_dim), ctx->v = floats(b * kv_dim);
  ctx->heads = floats(b * q_dim), ctx->attn = floats(b * d);
  ctx->gate = floats(gated ? b * f : 1), ctx->up = floats(b * f), ctx->mlp_out = floats(b * d);
  ctx->embed = floats(b * embed);
  ctx->attn_scratch_floats = lzn_attention_scratch_floats(m);
  ctx->attn_scratch = floats((size_t)ctx->params.n_threads * ctx->attn_scratch_floats);
  ctx->active_val = floats(f), ctx->top_k_scratch = floats(f), ctx->token_threshold = floats(b);
  ctx->rope_cos = floats(rope_table ? rope_table : 1), ctx->rope_sin = floats(rope_table ? rope_table : 1);
  ctx->act_abs = floats(gated ? f : 1);
  /* The predictor's buffers: the widest rank of any layer. */
  int64_t rank = 1;
  for (int l = 0; l < m->n_layers; l++)
    if (m->layers[l].predictor.present && m->layers[l].predictor.w1.rows > rank)
      rank = m->layers[l].predictor.w1.rows;
  const int predicted = m->n_predicted_layers > 0;
  ctx->pred_hidden = floats((size_t)rank), ctx->pred_score = floats(f);
  ctx->pred_dense = floats(predicted ? f : 1);
  ctx->pred_idx = malloc((predicted ? b * f : 1) * sizeof(int32_t));
  ctx->pred_n = calloc(b, sizeof(size_t));
  ctx->pred_counters = calloc((size_t)m->n_layers, sizeof *ctx->pred_counters);
  ctx->union_mask = malloc(f), ctx->union_idx = malloc(f * sizeof(int32_t));
  ctx->union_coef = floats(b * f);
  ctx->active_idx = malloc(f * sizeof(int32_t));
  ctx->all_rows = malloc(f * sizeof(int32_t));
  for (size_t i = 0; ctx->all_rows && i < f; i++) ctx->all_rows[i] = (int32_t)i;
  ctx->counters = calloc((size_t)m->n_layers, sizeof *ctx->counters);
  int ok = ctx->active_idx && ctx->all_rows && ctx->counters && ctx->pred_idx && ctx->pred_n &&
           ctx->pred_counters && ctx->union_mask && ctx->union_idx;
  float **buffers[] = CONTEXT_FLOAT_BUFFERS(ctx);
  for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) ok = ok && *buffers[i];
  for (int l = 0; ok && l < m->n_layers; l++) ok = (ctx->counters[l].fired = calloc(f, 1)) != NULL;
  if (!ok)
    return lzn_fail(LZN_ERR_NOMEM, "lzn_context_create: out of memory for the scratch of a "
                    "%d-token context (KV cache %zu MiB)", ctx->n_ctx, ctx->kv_bytes >> 20);
  if (rope) fill_rope_tables(ctx);
  return LZN_OK;
}

LZN_API lzn_status lzn_context_create(const lzn_model *model, const lzn_context_params *params,
                                      lzn_context **out) {
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_context_create: out is NULL");
  *out = NULL;
  if (model == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_context_create: model is NULL");
  const lzn_context_params defaults = lzn_context_default_params();
  if (params == NULL) params = &defaults;
  lzn_status s = check_context_params(params, model);
  if (s != LZN_OK) return s;
  const lzn_kernel_table *kernels;
  s = lzn_kernels_get(&kernels);
  if (s != LZN_OK) return s;

  lzn_context *ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL) return lzn_fail(LZN_ERR_NOMEM, "lzn_context_create: out of memory");
  ctx->model = model, ctx->params = *params;
  ctx->exec.kernels = kernels, ctx->exec.n_threads = params->n_threads;
  ctx->n_ctx = params->n_ctx ? params->n_ctx : model->max_positions;
  ctx->max_batch = ctx->n_ctx < LZN_MAX_BATCH ? ctx->n_ctx : LZN_MAX_BATCH;
  s = allocate(ctx);
  if (s == LZN_OK) s = lzn_dense_create(&ctx->exec.dense);
  if (s == LZN_OK && params->mlp_mode == LZN_MLP_AUTO && params->auto_crossover == 0.0f)
    s = lzn_cost_measure(ctx);
  if (s != LZN_OK) {
    lzn_context_free(ctx);
    return s;
  }
  *out = ctx;
  return LZN_OK;
}

LZN_API int lzn_context_n_past(const lzn_context *ctx) { return ctx ? ctx->n_past : -1; }

LZN_API int64_t lzn_context_kv_bytes(const lzn_context *ctx) {
  return ctx ? (int64_t)ctx->kv_bytes : -1;
}

LZN_API lzn_status lzn_context_reset(lzn_context *ctx) {
  if (ctx == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_context_reset: ctx is NULL");
  ctx->n_past = 0;
  memset(ctx->pred_counters, 0, sizeof *ctx->pred_counters * (size_t)ctx->model->n_layers);
  for (int l = 0; l < ctx->model->n_layers; l++) {
    lzn_layer_counters *c = &ctx->counters[l];
    uint8_t *fired = c->fired;
    memset(fired, 0, (size_t)ctx->model->d_ff);
    memset(c, 0, sizeof *c);
    c->fired = fired;
  }
  return LZN_OK;
}

