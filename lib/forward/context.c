/*
 * context.c: a context and its parts (forward/context.h): creation, reset,
 * and what a server does to a sequence besides extending it (rewind it,
 * start it from another's prompt).
 */
#include "forward/context.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/abi.h"
#include "cpu/cpu.h"
#include "linalg/xsmm.h"

/* Released sizes (lazyneuron.h, "ABI"): 0.1 (up to threshold), 0.2 = now. */
static const lzn_struct_size context_params_sizes[] = {
    {40, offsetof(lzn_context_params, threshold) + sizeof(float)},
    {sizeof(lzn_context_params), offsetof(lzn_context_params, kv_type) + sizeof(lzn_kv_type)},
};
_Static_assert(sizeof(lzn_context_params) == 56, "lzn_context_params grew: add its released size above, and "
               "keep lzn_context_default_params() returning the 56-byte struct");

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

LZN_API lzn_status lzn_context_params_init(lzn_context_params *params, size_t struct_size) {
  const lzn_context_params defaults = lzn_context_default_params();
  return lzn_params_fill(params, struct_size, &defaults, context_params_sizes,
                         LZN_N_SIZES(context_params_sizes), "lzn_context_params_init");
}

static lzn_status check_context_params(const lzn_context_params *p, const lzn_model *m) {
  const char *fn = "lzn_context_create";
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
  if (lzn_kv_type_name(p->kv_type) == NULL)
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

/* Every step's buffers, carved from one allocation: a first pass over the
 * steps' carve functions measures, the second hands the pieces out. */
static void carve_steps(lzn_workspace *ws, lzn_carver *c, const lzn_model *m, int max_batch, int threads) {
  lzn_stream_buffers_carve(&ws->stream, c, m, max_batch);
  lzn_attn_buffers_carve(&ws->attn, c, m, max_batch, threads);
  lzn_mlp_buffers_carve(&ws->mlp, c, m, max_batch);
  lzn_predictor_buffers_carve(&ws->predictor, c, m, max_batch);
}

static lzn_status workspace_create(lzn_workspace *ws, const lzn_model *m, int max_batch, int threads) {
  lzn_carver measure = {0};
  carve_steps(ws, &measure, m, max_batch, threads);
  ws->memory = measure.overflow ? NULL : aligned_alloc(64, measure.used);
  if (ws->memory == NULL)
    return lzn_fail(LZN_ERR_NOMEM, "lzn_context_create: out of memory for the workspace of %d-token "
                    "steps (%zu MiB)", max_batch, measure.used >> 20);
  ws->bytes = measure.used;
  lzn_carver hand_out = {.base = ws->memory};
  carve_steps(ws, &hand_out, m, max_batch, threads);
  return LZN_OK;
}

LZN_API void lzn_context_free(lzn_context *ctx) {
  if (ctx == NULL) return;
  lzn_exec_free(&ctx->exec);
  lzn_kv_cache_free(&ctx->kv);
  free(ctx->ws.memory);
  lzn_recorder_free(&ctx->stats);
  free(ctx);
}

LZN_API lzn_status lzn_context_create(const lzn_model *model, const lzn_context_params *params,
                                      lzn_context **out) {
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_context_create: out is NULL");
  *out = NULL;
  if (model == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_context_create: model is NULL");
  const lzn_context_params defaults = lzn_context_default_params();
  lzn_context_params read = defaults;
  lzn_status s = params ? lzn_params_read(&read, &defaults, params, context_params_sizes,
                                          LZN_N_SIZES(context_params_sizes), "lzn_context_create")
                        : LZN_OK;
  if (s == LZN_OK) s = check_context_params(&read, model);
  if (s != LZN_OK) return s;
  params = &read;
  const lzn_kernel_table *kernels;
  s = lzn_kernels_get(&kernels);
  if (s != LZN_OK) return s;

  lzn_context *ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL) return lzn_fail(LZN_ERR_NOMEM, "lzn_context_create: out of memory");
  ctx->model = model, ctx->params = *params;
  ctx->sparse_form = -1;
  ctx->decider_whole = -1;
  ctx->exec.kernels = kernels, ctx->exec.n_threads = params->n_threads;
  const int n_ctx = params->n_ctx ? params->n_ctx : model->max_positions;
  ctx->max_batch = n_ctx < LZN_MAX_BATCH ? n_ctx : LZN_MAX_BATCH;
  s = lzn_kv_cache_create(&ctx->kv, model, n_ctx, params->kv_type);
  if (s == LZN_OK) s = workspace_create(&ctx->ws, model, ctx->max_batch, params->n_threads);
  if (s == LZN_OK) s = lzn_recorder_create(&ctx->stats, model, params->collect_stats);
  if (s == LZN_OK) s = lzn_dense_create(&ctx->exec.dense);
  if (s == LZN_OK) s = lzn_xsmm_create(kernels, &ctx->exec.xsmm);
  if (s == LZN_OK && params->n_threads > 1) s = lzn_pool_create(params->n_threads, &ctx->exec.pool);
  if (s == LZN_OK && params->mlp_mode == LZN_MLP_AUTO && params->auto_crossover == 0.0f)
    /* The model's cache is the one thing a context writes in it
     * (forward/cost.h); the model is never defined const. */
    s = lzn_cost_for_context(ctx, ((lzn_model *)model)->costs, &ctx->cost);
  if (s != LZN_OK) {
    lzn_context_free(ctx);
    return s;
  }
  *out = ctx;
  return LZN_OK;
}

LZN_API int lzn_context_n_past(const lzn_context *ctx) { return ctx ? ctx->kv.n_past : -1; }

LZN_API int64_t lzn_context_kv_bytes(const lzn_context *ctx) { return ctx ? (int64_t)ctx->kv.bytes : -1; }

LZN_API lzn_status lzn_context_reset(lzn_context *ctx) {
  if (ctx == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_context_reset: ctx is NULL");
  ctx->kv.n_past = 0;
  lzn_recorder_reset(&ctx->stats);
  return LZN_OK;
}

LZN_API lzn_status lzn_context_truncate(lzn_context *ctx, int n_keep) {
  if (ctx == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_context_truncate: ctx is NULL");
  if (n_keep < 0 || n_keep > ctx->kv.n_past)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_context_truncate: n_keep = %d, must be in [0, n_past = %d]",
                    n_keep, ctx->kv.n_past);
  /* Positions >= n_keep are never read before they are written again. */
  ctx->kv.n_past = n_keep;
  return LZN_OK;
}

LZN_API lzn_status lzn_context_copy_prefix(lzn_context *dst, const lzn_context *src, int n_tokens) {
  const char *fn = "lzn_context_copy_prefix";
  if (dst == NULL || src == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: dst or src is NULL", fn);
  if (dst == src) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: dst and src are the same context", fn);
  if (dst->model != src->model)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: dst and src belong to different models", fn);
  if (dst->kv.type != src->kv.type)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: dst and src keep their KV caches in different types", fn);
  if (n_tokens < 0 || n_tokens > src->kv.n_past)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: n_tokens = %d, must be in [0, src n_past = %d]", fn,
                    n_tokens, src->kv.n_past);
  if (n_tokens > dst->kv.n_ctx)
    return lzn_fail(LZN_ERR_CONTEXT_FULL, "%s: %d tokens do not fit dst's n_ctx = %d", fn, n_tokens,
                    dst->kv.n_ctx);
  lzn_kv_cache_copy_prefix(&dst->kv, &src->kv, n_tokens);
  return LZN_OK;
}

/* Released sizes of the statistics structs with a struct_size: 0.3 = now. */
static const lzn_struct_size layer_stats_sizes[] = {
    {sizeof(lzn_layer_stats), offsetof(lzn_layer_stats, bytes_per_token_sparse) + sizeof(double)},
};
static const lzn_struct_size predictor_stats_sizes[] = {
    {sizeof(lzn_predictor_stats), offsetof(lzn_predictor_stats, bytes) + sizeof(double)},
};

/* An array of out[0].struct_size-byte elements, each filled up to its size
 * from one full struct of `size` bytes per layer. */
static lzn_status write_layers(const lzn_context *ctx, void *out, int capacity, const char *fn,
                               const lzn_struct_size *sizes, size_t n_sizes, size_t size,
                               void (*fill)(const lzn_recorder *, const lzn_model *, void *, int)) {
  if (ctx == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: ctx is NULL", fn);
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: out is NULL", fn);
  if (capacity < 1) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: capacity = %d, must be >= 1", fn, capacity);
  size_t stride;
  memcpy(&stride, out, sizeof stride);
  if (lzn_struct_size_find(stride, sizes, n_sizes) == NULL) return lzn_out_write(out, out, sizes, n_sizes, fn);
  const int n = ctx->model->n_layers < capacity ? ctx->model->n_layers : capacity;
  char *full = malloc(size * (size_t)n);
  if (full == NULL) return lzn_fail(LZN_ERR_NOMEM, "%s: out of memory", fn);
  fill(&ctx->stats, ctx->model, full, n);
  for (int l = 0; l < n; l++) {
    char *element = (char *)out + (size_t)l * stride;
    memcpy(element, &stride, sizeof stride);
    lzn_out_write(element, full + (size_t)l * size, sizes, n_sizes, fn);
  }
  free(full);
  return LZN_OK;
}

static void fill_layer_stats(const lzn_recorder *r, const lzn_model *m, void *out, int n) {
  lzn_recorder_layer_stats(r, m, out, n);
}
static void fill_predictor_stats(const lzn_recorder *r, const lzn_model *m, void *out, int n) {
  lzn_recorder_predictor_stats(r, m, out, n);
}

/* The 0.3 versions: 0.2's callers get lib/compat/abi_0_2.c's. */
LZN_API lzn_status lzn_context_stats_v0_3(const lzn_context *ctx, lzn_layer_stats *out, int capacity);
LZN_SYMVER_DEFAULT(lzn_context_stats_v0_3, lzn_context_stats, LZN_0.3)
LZN_API lzn_status lzn_context_stats_v0_3(const lzn_context *ctx, lzn_layer_stats *out, int capacity) {
  return write_layers(ctx, out, capacity, "lzn_context_stats", layer_stats_sizes, LZN_N_SIZES(layer_stats_sizes),
                      sizeof(lzn_layer_stats), fill_layer_stats);
}

LZN_API lzn_status lzn_context_predictor_stats_v0_3(const lzn_context *ctx, lzn_predictor_stats *out,
                                                    int capacity);
LZN_SYMVER_DEFAULT(lzn_context_predictor_stats_v0_3, lzn_context_predictor_stats, LZN_0.3)
LZN_API lzn_status lzn_context_predictor_stats_v0_3(const lzn_context *ctx, lzn_predictor_stats *out,
                                                    int capacity) {
  return write_layers(ctx, out, capacity, "lzn_context_predictor_stats", predictor_stats_sizes,
                      LZN_N_SIZES(predictor_stats_sizes), sizeof(lzn_predictor_stats), fill_predictor_stats);
}
