/*
 * test_prefill.c: the forward paths of many tokens in every weight type
 * (issue 20): a prompt in one call (the gemm kernels: int8 block products
 * for Q8_0/Q4_0, F16/BF16 widened in registers) and batched decode at
 * N = 1, 2, 5 and 64, sparse (the union's rows) and dense, each against
 * two independent references: the same tokens decoded one at a time (the
 * GEMV / axpy_rows kernels, tested on their own against the scalar
 * reference) and, in F32, the PyTorch logits.
 *
 * The prompt and the one-token decodes compute the same products, so they
 * differ only in the order of fp32 additions, but for Q8_0/Q4_0 weights x
 * is quantized per token to Q8_0 on each path: an fp32 difference of one
 * ulp that moves a value across a rounding boundary changes its int8 by
 * one, 1/254 of its block's largest value, so the block types get a
 * tolerance of that quantization step; and the one-token path rounds the
 * down-projection's coefficients to int8 per 16 active rows
 * (axpy_rows_q8, issue 19) where the prompt rounds h per 32 columns
 * (measured together: up to 2.3e-2 on these fixtures, within Q8_0's own
 * error against PyTorch); a wrong row, token or scale is off by O(1).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cpu/cpu.h"
#include "forward/context.h"
#include "model/model.h"
#include "linalg/gemm_panels.h"
#include "linalg/xsmm.h"
#include "reference.h"

#define TOL_REFERENCE 1e-4
/* Prompt vs one token at a time, batch vs alone: fp32 rounding, over a
 * few layers, of logits of order 1-10 (max_abs_diff / scale). */
#define TOL_SAME_MODEL 2e-4
#define TOL_SAME_MODEL_QUANTIZED_X 4e-2
/* Where a product of m tokens runs in bf16 (linalg/gemm_panels.h: BF16
 * weights from 16 tokens, on machines that multiply bf16 natively), x is
 * rounded to bf16: measured 2.9e-4 on tiny-llama. */
#define TOL_SAME_MODEL_BF16 5e-3
static double tol_same_model(lzn_weight_type type, lzn_context *ctx, int64_t m) {
  if (type == LZN_WEIGHTS_Q8_0 || type == LZN_WEIGHTS_Q4_0) return TOL_SAME_MODEL_QUANTIZED_X;
  return lzn_gemm_panels_rounds_x(&ctx->exec, type, m) ? TOL_SAME_MODEL_BF16 : TOL_SAME_MODEL;
}

static const lzn_weight_type types[] = {LZN_WEIGHTS_F32, LZN_WEIGHTS_F16, LZN_WEIGHTS_BF16, LZN_WEIGHTS_Q8_0,
                                        LZN_WEIGHTS_Q4_0};
#define N_TYPES ((int)(sizeof types / sizeof types[0]))
static const char *const fixtures[] = {"models/tiny-llama", "opt-preln", "llama-gqa", "llama-fatrelu"};
#define N_FIXTURES ((int)(sizeof fixtures / sizeof fixtures[0]))
static const lzn_mlp_mode modes[] = {LZN_MLP_SPARSE, LZN_MLP_DENSE};

static lzn_model *load_typed(const char *path, lzn_weight_type type) {
  lzn_model_params p = lzn_model_default_params();
  p.weight_type = type;
  lzn_model *model = NULL;
  const lzn_status s = lzn_model_load(path, &p, &model);
  ck_assert_msg(s == LZN_OK, "%s: %s: %s", path, lzn_status_str(s), lzn_last_error());
  return model;
}

/* The whole prompt in one call (2 threads, so the gemm items are split)
 * against the same prompt one token per call. */
START_TEST(prompt_in_every_type) {
  const char *name = fixtures[_i / (N_TYPES * 3)];
  const lzn_weight_type type = types[(_i / 3) % N_TYPES];
  /* sparse over the union, sparse each token over its own rows, dense */
  const int variant = _i % 3;
  const lzn_mlp_mode mode = variant == 2 ? LZN_MLP_DENSE : LZN_MLP_SPARSE;
  reference r;
  load_reference(name, &r);
  lzn_model *model = load_typed(r.path, type);
  lzn_context *prompt = make_context(model, mode, 2), *steps = make_context(model, mode, 1);
  prompt->sparse_form = variant == 1 ? LZN_SPARSE_EACH : LZN_SPARSE_UNION;
  float *all = run_all(prompt, &r);
  float *one = malloc(sizeof(float) * (size_t)r.vocab);
  for (int t = 0; t < r.n_tokens; t++) {
    ck_assert_int_eq(lzn_forward(steps, &r.tokens[t], 1, one, LZN_LOGITS_LAST), LZN_OK);
    const float *got = all + (size_t)t * r.vocab;
    const double e = max_abs_diff(got, one, (size_t)r.vocab) / r.scale;
    ck_assert_msg(e <= tol_same_model(type, prompt, r.n_tokens), "%s %s mode %d pos %d: prompt vs one at a time %.3g",
                  name, lzn_weight_type_name(type), (int)mode, t, e);
    if (type == LZN_WEIGHTS_F32) {
      const double ref = max_abs_diff(got, r.logits + (size_t)t * r.vocab, (size_t)r.vocab) / r.scale;
      ck_assert_msg(ref <= TOL_REFERENCE, "%s mode %d pos %d: vs PyTorch %.3g", name, (int)mode, t, ref);
    }
  }
  free(all), free(one), free(r.logits);
  lzn_context_free(prompt), lzn_context_free(steps);
  lzn_model_free(model);
}
END_TEST

/* Packed copies (lzn_model_params.pack_budget): made for the Q8_0/Q4_0
 * matrices that batches read whole where the table has the packed kernels
 * (AVX512-VNNI), none at budget 0 or below it, part of them in between;
 * up and down too for a model whose MLP is dense (SiLU), not for the ReLU
 * family (tiny-llama); a dense prompt on them equals the same prompt on
 * the rows as they lie (both quantize x per token, only the fp32
 * additions' order differs), and one token never reads them. */
START_TEST(packed_copies_follow_the_budget) {
  const lzn_weight_type type = _i % 2 == 0 ? LZN_WEIGHTS_Q8_0 : LZN_WEIGHTS_Q4_0;
  const int dense_mlp = _i >= 2;
  const lzn_kernel_table *k = NULL;
  ck_assert_int_eq(lzn_kernels_get(&k), LZN_OK);
  const int can_pack = k->gemm[type].packed.fn != NULL;
  reference r;
  load_reference(dense_mlp ? "llama-silu" : "models/tiny-llama", &r);
  lzn_model *m[3];
  const size_t budgets[3] = {SIZE_MAX, 0, 0};
  int64_t packed[3];
  for (int i = 0; i < 3; i++) {
    lzn_model_params p;
    ck_assert_int_eq(lzn_model_params_init(&p, sizeof p), LZN_OK);
    ck_assert_uint_eq(p.pack_budget, SIZE_MAX);
    p.weight_type = type;
    p.pack_budget = i == 2 ? (size_t)(packed[0] / 3) : budgets[i];
    ck_assert_int_eq(lzn_model_load(r.path, &p, &m[i]), LZN_OK);
    lzn_model_info info = {.struct_size = sizeof info};
    ck_assert_int_eq(lzn_model_get_info(m[i], &info), LZN_OK);
    packed[i] = info.packed_bytes;
  }
  ck_assert(can_pack ? packed[0] > 0 : packed[0] == 0);
  ck_assert_int_eq(packed[1], 0);
  ck_assert(can_pack ? packed[2] > 0 && packed[2] <= packed[0] / 3 : packed[2] == 0);
  ck_assert_ptr_eq(m[1]->layers[0].q.packed, NULL);
  if (can_pack) ck_assert_ptr_nonnull(m[0]->layers[0].q.packed);
  const int dense_packed = can_pack && dense_mlp;
  ck_assert_int_eq(m[0]->layers[0].up.packed != NULL, dense_packed);
  /* down as stored, where the model keeps it (a GGUF's; this fixture's
   * loader keeps W_down^T only, which a dense batch reads as it lies) */
  ck_assert_int_eq(m[0]->layers[0].down.packed != NULL, dense_packed && m[0]->layers[0].down.data != NULL);
  lzn_context *on = make_context(m[0], LZN_MLP_DENSE, 2), *off = make_context(m[1], LZN_MLP_DENSE, 2);
  float *with = run_all(on, &r), *without = run_all(off, &r);
  const double tol = tol_same_model(type, on, r.n_tokens);
  lzn_context_free(on), lzn_context_free(off);
  for (int t = 0; t < r.n_tokens; t++) {
    const double e = max_abs_diff(with + (size_t)t * r.vocab, without + (size_t)t * r.vocab, (size_t)r.vocab) / r.scale;
    ck_assert_msg(e <= tol, "%s pos %d: packed vs rows %.3g", lzn_weight_type_name(type), t, e);
  }
  free(with), free(without), free(r.logits);
  for (int i = 0; i < 3; i++) lzn_model_free(m[i]);
}
END_TEST

static const int batch_sizes[] = {1, 2, 5, 64};
#define N_SIZES ((int)(sizeof batch_sizes / sizeof batch_sizes[0]))
#define MAX_N 64
/* Sequence i starts after a prompt of i % PROMPTS tokens: positions differ. */
#define PROMPTS 7

/* N sequences of tiny-llama at different positions, two batched steps,
 * each sequence's logits against the same context decoding alone, and in
 * F32 against PyTorch's at that position. */
START_TEST(batch_in_every_type_and_size) {
  const lzn_weight_type type = types[_i / (N_SIZES * 2)];
  const int n = batch_sizes[(_i / 2) % N_SIZES];
  const lzn_mlp_mode mode = modes[_i % 2];
  reference r;
  load_reference("models/tiny-llama", &r);
  lzn_model *model = load_typed(r.path, type);
  lzn_context *batch[MAX_N], *alone[MAX_N];
  float *one = malloc(sizeof(float) * (size_t)r.vocab);
  for (int i = 0; i < n; i++) {
    batch[i] = make_context(model, mode, 1 + (i == 0));
    alone[i] = make_context(model, mode, 1);
    if (i % PROMPTS > 0) {
      ck_assert_int_eq(lzn_forward(batch[i], r.tokens, i % PROMPTS, one, LZN_LOGITS_LAST), LZN_OK);
      ck_assert_int_eq(lzn_forward(alone[i], r.tokens, i % PROMPTS, one, LZN_LOGITS_LAST), LZN_OK);
    }
  }
  float *logits = malloc(sizeof(float) * (size_t)n * (size_t)r.vocab);
  for (int step = 0; step < 2; step++) {
    int32_t tokens[MAX_N];
    for (int i = 0; i < n; i++) tokens[i] = r.tokens[i % PROMPTS + step];
    ck_assert_int_eq(lzn_forward_batch(batch, tokens, n, logits), LZN_OK);
    for (int i = 0; i < n; i++) {
      const int pos = i % PROMPTS + step;
      const float *got = logits + (size_t)i * r.vocab;
      ck_assert_int_eq(lzn_forward(alone[i], &tokens[i], 1, one, LZN_LOGITS_LAST), LZN_OK);
      const double a = max_abs_diff(got, one, (size_t)r.vocab) / r.scale;
      ck_assert_msg(a <= tol_same_model(type, batch[0], n), "%s n=%d mode %d seq %d: batch vs alone %.3g",
                    lzn_weight_type_name(type), n, (int)mode, i, a);
      if (type == LZN_WEIGHTS_F32) {
        const double e = max_abs_diff(got, r.logits + (size_t)pos * r.vocab, (size_t)r.vocab) / r.scale;
        ck_assert_msg(e <= TOL_REFERENCE, "n=%d mode %d seq %d pos %d: vs PyTorch %.3g", n, (int)mode, i, pos, e);
      }
    }
  }
  for (int i = 0; i < n; i++) lzn_context_free(batch[i]), lzn_context_free(alone[i]);
  free(logits), free(one), free(r.logits);
  lzn_model_free(model);
}
END_TEST

/* F32 batches on each backend the exec can be forced to (own kernels,
 * oneDNN, libxsmm), and on libxsmm without its cache (what a CPU it cannot
 * JIT for looks like: the products fall back), against decoding alone; and
 * the products ran where they were sent (exec.used). */
START_TEST(batch_on_every_backend) {
  static const lzn_backend backends[] = {LZN_BACKEND_OWN, LZN_BACKEND_ONEDNN, LZN_BACKEND_XSMM, LZN_BACKEND_XSMM};
  const int which = _i / 4, no_xsmm = which == 3;
  const lzn_backend backend = backends[which];
  const int n = (_i / 2) % 2 ? 16 : 5;
  const lzn_mlp_mode mode = modes[_i % 2];
  reference r;
  load_reference("models/tiny-llama", &r);
  lzn_model *model = load_typed(r.path, LZN_WEIGHTS_F32);
  lzn_context *batch[16], *alone[16];
  float *one = malloc(sizeof(float) * (size_t)r.vocab), *logits = malloc(sizeof(float) * 16 * (size_t)r.vocab);
  for (int i = 0; i < n; i++) {
    batch[i] = make_context(model, mode, 1), alone[i] = make_context(model, mode, 1);
    ck_assert_int_eq(lzn_forward(batch[i], r.tokens, 1 + i % 3, one, LZN_LOGITS_LAST), LZN_OK);
    ck_assert_int_eq(lzn_forward(alone[i], r.tokens, 1 + i % 3, one, LZN_LOGITS_LAST), LZN_OK);
  }
  lzn_exec *ex = &batch[0]->exec; /* the lead context runs the step */
  ex->backend = backend, ex->used = 0;
  if (no_xsmm) lzn_xsmm_free(ex->xsmm), ex->xsmm = NULL;
  int32_t tokens[16];
  for (int i = 0; i < n; i++) tokens[i] = r.tokens[1 + i % 3];
  ck_assert_int_eq(lzn_forward_batch(batch, tokens, n, logits), LZN_OK);
  for (int i = 0; i < n; i++) {
    ck_assert_int_eq(lzn_forward(alone[i], &tokens[i], 1, one, LZN_LOGITS_LAST), LZN_OK);
    const double a = max_abs_diff(logits + (size_t)i * r.vocab, one, (size_t)r.vocab) / r.scale;
    ck_assert_msg(a <= TOL_SAME_MODEL, "backend %d%s n=%d mode %d seq %d: batch vs alone %.3g", (int)backend,
                  no_xsmm ? " (no libxsmm)" : "", n, (int)mode, i, a);
  }
  /* oneDNN runs the dense products only; libxsmm all but the union's dot;
   * without libxsmm nothing reaches it. */
  const unsigned used = ex->used;
  if (backend == LZN_BACKEND_ONEDNN) ck_assert(used & (1u << LZN_BACKEND_ONEDNN));
  if (backend == LZN_BACKEND_XSMM && !no_xsmm && ex->kernels->isa != LZN_ISA_SCALAR)
    ck_assert(used & (1u << LZN_BACKEND_XSMM));
  if (no_xsmm || backend == LZN_BACKEND_OWN) ck_assert(!(used & (1u << LZN_BACKEND_XSMM)));
  if (backend == LZN_BACKEND_OWN) ck_assert(!(used & (1u << LZN_BACKEND_ONEDNN)));
  for (int i = 0; i < n; i++) lzn_context_free(batch[i]), lzn_context_free(alone[i]);
  free(logits), free(one), free(r.logits);
  lzn_model_free(model);
}
END_TEST

/* AUTO's costs at 1, 8 and 64 tokens, interpolated between: a context
 * measures three points, and the choice follows the point nearest the call's
 * token count, not a line from 1 to 64 tokens. */
START_TEST(auto_costs_per_token_count) {
  reference r;
  load_reference("models/tiny-llama", &r);
  lzn_model *model = load_model(r.path);
  lzn_context *ctx = make_context(model, LZN_MLP_AUTO, 1);
  const lzn_cost_model *cm = &ctx->cost;
  ck_assert_int_eq(cm->n_points, 3);
  ck_assert_int_eq(cm->tokens[0], 1);
  ck_assert_int_eq(cm->tokens[1], 8);
  ck_assert_int_eq(cm->tokens[2], 64);
  for (int k = 0; k < 3; k++) ck_assert(cm->dense_down[k] > 0.0 && cm->row_down[k] > 0.0);
  /* A made-up model: dense costs 1 + 1 (down + up) at every point; a row
   * costs 1/1000 at 1 token, 1/100 at 8 and 64 tokens. 50 rows of each:
   * sparse at 1 and 2 tokens (0.1, 0.23 against 2) and at 64 (1 against 2);
   * 150 rows at 8 tokens: dense (3 against 2). */
  lzn_cost_model made = {.max_batch = 64, .n_points = 3, .tokens = {1, 8, 64},
                         .row_down = {1e-3, 1e-2, 1e-2}, .row_up = {1e-3, 1e-2, 1e-2},
                         .dense_down = {1, 1, 1}, .dense_up = {1, 1, 1}};
  const lzn_sparse_work work = {.down_rows = 50, .up_rows = 50};
  ck_assert(lzn_cost_prefers_sparse(&made, 0.0f, &work, NULL, 1, 1000, 1));
  ck_assert(lzn_cost_prefers_sparse(&made, 0.0f, &work, NULL, 2, 1000, 1)); /* 2 x 0.0023 x 50 < 2 */
  ck_assert(!lzn_cost_prefers_sparse(&made, 0.0f, &(lzn_sparse_work){.down_rows = 150, .up_rows = 150}, NULL, 8, 1000, 1));
  ck_assert(lzn_cost_prefers_sparse(&made, 0.0f, &work, NULL, 64, 1000, 1));
  /* A prompt step is up to 256 tokens, the points stop at 64: beyond, the
   * last segment (8 -> 64) goes on. Dense flat at 2, a row 0.01 -> 0.1: at
   * 200 tokens a row costs 0.1 + 0.09 * 136 / 56 = 0.319, so 10 rows of
   * each (6.4) lose to dense (4), where the last point's cost (2) or its
   * per-token rate (6.25 against 12.5) would have kept them sparse; at 64
   * the same rows win (2 against 4). */
  lzn_cost_model rising = {.max_batch = 256, .n_points = 3, .tokens = {1, 8, 64},
                           .row_down = {1e-3, 1e-2, 0.1}, .row_up = {1e-3, 1e-2, 0.1},
                           .dense_down = {1, 2, 2}, .dense_up = {1, 2, 2}};
  const lzn_sparse_work ten = {.down_rows = 10, .up_rows = 10};
  ck_assert(lzn_cost_prefers_sparse(&rising, 0.0f, &ten, NULL, 64, 1000, 1));
  ck_assert(!lzn_cost_prefers_sparse(&rising, 0.0f, &ten, NULL, 200, 1000, 1));
  free(r.logits);
  lzn_context_free(ctx);
  lzn_model_free(model);
}
END_TEST

/* ------------------------------------------------------------ bad input */

static int64_t tokens_seen(const lzn_context *ctx) {
  lzn_layer_stats st = {.struct_size = sizeof st};
  ck_assert_int_eq(lzn_context_stats(ctx, &st, 1), LZN_OK);
  return st.tokens;
}

/* A prompt longer than the room left: CONTEXT_FULL before any layer runs
 * (layer 0 saw no token), the cache as it was. */
START_TEST(prompt_longer_than_context_does_no_work) {
  reference r;
  load_reference("models/tiny-llama", &r);
  lzn_model *model = load_model(r.path);
  lzn_context_params p = lzn_context_default_params();
  p.n_ctx = 16;
  lzn_context *ctx = NULL;
  ck_assert_int_eq(lzn_context_create(model, &p, &ctx), LZN_OK);
  float *logits = malloc(sizeof(float) * (size_t)r.vocab * 64);
  ck_assert_int_eq(lzn_forward(ctx, r.tokens, 17, logits, LZN_LOGITS_ALL), LZN_ERR_CONTEXT_FULL);
  ck_assert_int_eq(lzn_context_n_past(ctx), 0);
  ck_assert_int_eq(tokens_seen(ctx), 0);
  ck_assert_int_eq(lzn_forward(ctx, r.tokens, 10, logits, LZN_LOGITS_LAST), LZN_OK);
  const int64_t seen = tokens_seen(ctx);
  ck_assert_int_eq(seen, 10);
  ck_assert_int_eq(lzn_forward(ctx, r.tokens, 7, logits, LZN_LOGITS_ALL), LZN_ERR_CONTEXT_FULL);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "do not fit"));
  ck_assert_int_eq(lzn_context_n_past(ctx), 10);
  ck_assert_int_eq(tokens_seen(ctx), seen);
  free(logits), free(r.logits);
  lzn_context_free(ctx);
  lzn_model_free(model);
}
END_TEST

/* A batch of more sequences than one step's rows (64) runs in several
 * steps and advances all of them, or, when any context is full (here one
 * of the second step's), none: the check comes before any step. */
START_TEST(batch_beyond_one_step) {
  enum { N = 70, FULL = 67 };
  reference r;
  load_reference("models/tiny-llama", &r);
  lzn_model *model = load_model(r.path);
  lzn_context_params p = lzn_context_default_params();
  p.n_ctx = 4;
  lzn_context *ctxs[N];
  for (int i = 0; i < N; i++) ck_assert_int_eq(lzn_context_create(model, &p, &ctxs[i]), LZN_OK);
  float *logits = malloc(sizeof(float) * (size_t)r.vocab * N);
  ck_assert_int_eq(lzn_forward(ctxs[FULL], r.tokens, 4, logits, LZN_LOGITS_LAST), LZN_OK);
  int32_t tokens[N];
  for (int i = 0; i < N; i++) tokens[i] = r.tokens[i % r.n_tokens];
  ck_assert_int_eq(lzn_forward_batch(ctxs, tokens, N, logits), LZN_ERR_CONTEXT_FULL);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "ctxs[67]"));
  ck_assert_int_eq(tokens_seen(ctxs[0]), 0); /* no step ran */
  for (int i = 0; i < N; i++) ck_assert_int_eq(lzn_context_n_past(ctxs[i]), i == FULL ? 4 : 0);
  ck_assert_int_eq(lzn_context_reset(ctxs[FULL]), LZN_OK);
  ck_assert_int_eq(lzn_forward_batch(ctxs, tokens, N, logits), LZN_OK);
  for (int i = 0; i < N; i++) ck_assert_int_eq(lzn_context_n_past(ctxs[i]), 1);
  /* Each sequence's logits are its own token's: sequence 66 equals a
   * context that decoded that token alone. */
  lzn_context *alone = NULL;
  float *one = malloc(sizeof(float) * (size_t)r.vocab);
  ck_assert_int_eq(lzn_context_create(model, &p, &alone), LZN_OK);
  ck_assert_int_eq(lzn_forward(alone, &tokens[66], 1, one, LZN_LOGITS_LAST), LZN_OK);
  ck_assert(max_abs_diff(logits + (size_t)66 * r.vocab, one, (size_t)r.vocab) <= TOL_SAME_MODEL);
  lzn_context_free(alone);
  for (int i = 0; i < N; i++) lzn_context_free(ctxs[i]);
  free(one), free(logits), free(r.logits);
  lzn_model_free(model);
}
END_TEST

/* A prompt longer than one step (LZN_MAX_BATCH rows, or n_ctx) runs in
 * steps, each attending to the cache the ones before it wrote. The tiny
 * models hold 256 positions, one step: the step is shortened to 5 rows
 * here (the workspace has room for more), so the prompt crosses many step
 * boundaries, and must give what one step gives. The prompt is 200 tokens
 * (the fixture's, repeated), so one step's products also run over several
 * of the kernels' token blocks (linalg/gemm.c: 64). */
START_TEST(prompt_in_many_steps) {
  enum { N = 200 };
  const lzn_weight_type type = _i / 2 == 0 ? LZN_WEIGHTS_F32 : LZN_WEIGHTS_Q4_0;
  const lzn_mlp_mode mode = modes[_i % 2];
  reference r;
  load_reference("models/tiny-llama", &r);
  int32_t tokens[N];
  for (int i = 0; i < N; i++) tokens[i] = r.tokens[i % r.n_tokens];
  lzn_model *model = load_typed(r.path, type);
  lzn_context *whole = make_context(model, mode, 2), *stepped = make_context(model, mode, 2);
  ck_assert_int_ge(whole->max_batch, N);
  stepped->max_batch = 5;
  float *one_step = malloc(sizeof(float) * N * (size_t)r.vocab), *in_steps = malloc(sizeof(float) * N * (size_t)r.vocab);
  ck_assert_int_eq(lzn_forward(whole, tokens, N, one_step, LZN_LOGITS_ALL), LZN_OK);
  ck_assert_int_eq(lzn_forward(stepped, tokens, N, in_steps, LZN_LOGITS_ALL), LZN_OK);
  const double e = max_abs_diff(one_step, in_steps, (size_t)N * r.vocab) / r.scale;
  ck_assert_msg(e <= tol_same_model(type, whole, N), "%s mode %d: steps of 5 vs one step %.3g",
                lzn_weight_type_name(type), (int)mode, e);
  if (type == LZN_WEIGHTS_F32) {
    const double ref = max_abs_diff(one_step, r.logits, (size_t)r.n_tokens * r.vocab) / r.scale;
    ck_assert_msg(ref <= TOL_REFERENCE, "mode %d: one step of %d vs PyTorch %.3g", (int)mode, N, ref);
  }
  free(one_step), free(in_steps), free(r.logits);
  lzn_context_free(whole), lzn_context_free(stepped);
  lzn_model_free(model);
}
END_TEST

static Suite *prefill_suite(void) {
  Suite *s = suite_create("prefill");
  TCase *prompt = tcase_create("prompt");
  tcase_set_timeout(prompt, 120);
  tcase_add_loop_test(prompt, prompt_in_every_type, 0, N_FIXTURES * N_TYPES * 3);
  tcase_add_loop_test(prompt, packed_copies_follow_the_budget, 0, 4);
  tcase_add_loop_test(prompt, prompt_in_many_steps, 0, 4);
  suite_add_tcase(s, prompt);
  TCase *batch = tcase_create("batch");
  tcase_set_timeout(batch, 120);
  tcase_add_loop_test(batch, batch_in_every_type_and_size, 0, N_TYPES * N_SIZES * 2);
  tcase_add_loop_test(batch, batch_on_every_backend, 0, 16);
  tcase_add_test(batch, auto_costs_per_token_count);
  suite_add_tcase(s, batch);
  TCase *bad = tcase_create("bad input");
  tcase_set_timeout(bad, 60);
  tcase_add_test(bad, prompt_longer_than_context_does_no_work);
  tcase_add_test(bad, batch_beyond_one_step);
  suite_add_tcase(s, bad);
  return s;
}

int main(void) { return run_suite(prefill_suite()); }
