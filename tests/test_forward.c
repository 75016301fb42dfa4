/*
 * test_forward.c: the OPT forward pass against PyTorch, and every way a
 * model folder or a call can be wrong.
 *
 * Each fixture in tests/data (made by tools/fixtures/make_fixtures.py, an OPT forward
 * written from torch ops in float64) holds config.json, safetensors, the
 * token ids, the logits of every position (logits.f32) and the per-layer
 * active counts. Tolerances are relative to the fixture's largest |logit|.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "forward/context.h" /* sparse_form: which form a sparse prompt takes */
#include "lazyneuron.h"
#include "reference.h"

/* fp32 against a float64 reference through a few layers. */
#define TOL_REFERENCE 1e-4
/* The same fp32 arithmetic but a different order of summation. */
#define TOL_SPARSE_VS_DENSE 1e-5
#define TOL_THREADS 1e-6

static const char *fixtures[] = {"opt-preln", "opt-postln", "opt-noprefix", "opt-proj",
                                 "opt-proj-preln", "opt-bf16", "opt-f16", "opt-sharded",
                                 "opt-sparse", "opt-untied", "opt-nobias",
                                 /* the trained demo model, relative to the repository */
                                 "models/tiny-opt"};
#define N_FIXTURES ((int)(sizeof fixtures / sizeof fixtures[0]))

#define EXPECT(call, status, words)                                                   \
  do {                                                                                \
    lzn_status got_ = (call);                                                         \
    ck_assert_msg(got_ == (status), "%s: got %s (%s), want %s", #call,                \
                  lzn_status_str(got_), lzn_last_error(), lzn_status_str(status));    \
    ck_assert_msg(strstr(lzn_last_error(), (words)) != NULL,                          \
                  "%s: message \"%s\" lacks \"%s\"", #call, lzn_last_error(), (words)); \
  } while (0)

static const lzn_mlp_mode modes[] = {LZN_MLP_DENSE, LZN_MLP_SPARSE, LZN_MLP_AUTO};
static const char *const mode_names[] = {"dense", "sparse", "auto"};

/* ------------------------------------------------------- against torch */

START_TEST(logits_match_pytorch) {
  reference r;
  load_reference(fixtures[_i], &r);
  lzn_model *model = load_model(r.path);
  float *by_mode[3];
  for (int m = 0; m < 3; m++) {
    lzn_context *ctx = make_context(model, modes[m], 1);
    by_mode[m] = run_all(ctx, &r);
    const double err = max_abs_diff(by_mode[m], r.logits, (size_t)r.n_tokens * r.vocab);
    ck_assert_msg(err <= TOL_REFERENCE * r.scale, "%s %s: max |logit - torch| = %g (scale %g)",
                  fixtures[_i], mode_names[m], err, r.scale);
    ck_assert_int_eq(lzn_context_n_past(ctx), r.n_tokens);
    lzn_context_free(ctx);
  }
  const double sd = max_abs_diff(by_mode[1], by_mode[0], (size_t)r.n_tokens * r.vocab);
  ck_assert_msg(sd <= TOL_SPARSE_VS_DENSE * r.scale, "%s: sparse vs dense %g", fixtures[_i], sd);
  for (int m = 0; m < 3; m++) free(by_mode[m]);
  free(r.logits);
  lzn_model_free(model);
}
END_TEST

/* Prefill in one call == token by token through the KV cache == chunks. */
START_TEST(decode_matches_prefill) {
  reference r;
  load_reference(fixtures[_i], &r);
  lzn_model *model = load_model(r.path);
  for (int m = 0; m < 3; m++) {
    lzn_context *ctx = make_context(model, modes[m], 1);
    float *step = malloc(sizeof(float) * (size_t)r.vocab);
    for (int t = 0; t < r.n_tokens; t++) {
      ck_assert_int_eq(lzn_forward(ctx, &r.tokens[t], 1, step, LZN_LOGITS_LAST), LZN_OK);
      const double err = max_abs_diff(step, r.logits + (size_t)t * r.vocab, (size_t)r.vocab);
      ck_assert_msg(err <= TOL_REFERENCE * r.scale, "%s %s token %d: %g", fixtures[_i],
                    mode_names[m], t, err);
    }
    /* Reset, then a prefill of 5 and the rest in one call, LAST only. */
    ck_assert_int_eq(lzn_context_reset(ctx), LZN_OK);
    ck_assert_int_eq(lzn_context_n_past(ctx), 0);
    ck_assert_int_eq(lzn_forward(ctx, r.tokens, 5, step, LZN_LOGITS_LAST), LZN_OK);
    ck_assert_double_le(max_abs_diff(step, r.logits + 4 * (size_t)r.vocab, (size_t)r.vocab),
                        TOL_REFERENCE * r.scale);
    ck_assert_int_eq(lzn_forward(ctx, r.tokens + 5, r.n_tokens - 5, step, LZN_LOGITS_LAST), LZN_OK);
    ck_assert_double_le(
        max_abs_diff(step, r.logits + (size_t)(r.n_tokens - 1) * r.vocab, (size_t)r.vocab),
        TOL_REFERENCE * r.scale);
    free(step);
    lzn_context_free(ctx);
  }
  free(r.logits);
  lzn_model_free(model);
}
END_TEST

START_TEST(threads_give_the_same_logits) {
  reference r;
  load_reference(fixtures[_i], &r);
  lzn_model *model = load_model(r.path);
  for (int m = 0; m < 3; m++) {
    lzn_context *one = make_context(model, modes[m], 1), *two = make_context(model, modes[m], 2);
    float *a = run_all(one, &r), *b = run_all(two, &r);
    const double err = max_abs_diff(a, b, (size_t)r.n_tokens * r.vocab);
    ck_assert_msg(err <= TOL_THREADS * r.scale, "%s %s: 1 vs 2 threads %g", fixtures[_i],
                  mode_names[m], err);
    free(a), free(b);
    lzn_context_free(one), lzn_context_free(two);
  }
  free(r.logits);
  lzn_model_free(model);
}
END_TEST

/* use_mmap = 0 reads the weights into private memory (on huge pages where
 * a file is at least 2 MiB: models/tiny-opt's 3.4 MB) instead of mapping
 * them: the same weights, so the same logits to the bit, and torch's. */
START_TEST(read_weights_give_the_mapped_logits) {
  reference r;
  load_reference(fixtures[_i], &r);
  lzn_model *mapped = load_model(r.path), *read = NULL;
  lzn_model_params p;
  lzn_model_params_init(&p, sizeof p);
  p.use_mmap = 0;
  ck_assert_msg(lzn_model_load(r.path, &p, &read) == LZN_OK, "%s: %s", fixtures[_i], lzn_last_error());
  for (int m = 0; m < 2; m++) {
    lzn_context *a = make_context(mapped, modes[m], 1), *b = make_context(read, modes[m], 1);
    float *la = run_all(a, &r), *lb = run_all(b, &r);
    const size_t n = (size_t)r.n_tokens * r.vocab;
    ck_assert_msg(memcmp(la, lb, n * sizeof(float)) == 0, "%s %s: read and mapped weights differ", fixtures[_i],
                  mode_names[m]);
    const double err = max_abs_diff(lb, r.logits, n);
    ck_assert_msg(err <= TOL_REFERENCE * r.scale, "%s %s: read weights, max |logit - torch| = %g", fixtures[_i],
                  mode_names[m], err);
    free(la), free(lb);
    lzn_context_free(a), lzn_context_free(b);
  }
  free(r.logits);
  lzn_model_free(mapped), lzn_model_free(read);
}
END_TEST

/* AUTO's costs are measured by the model's first context of a thread count
 * and batch size and reused by the next (forward/cost.h); another thread
 * count, batch size or model measures its own. Two measurements agree to
 * the last bit only if one is a copy of the other. */
START_TEST(contexts_share_the_measured_costs) {
  lzn_model *model = load_model("models/tiny-opt"), *other = load_model("models/tiny-opt");
  lzn_context *first = make_context(model, LZN_MLP_AUTO, 1), *second = make_context(model, LZN_MLP_AUTO, 1);
  lzn_context *two = make_context(model, LZN_MLP_AUTO, 2), *elsewhere = make_context(other, LZN_MLP_AUTO, 1);
  lzn_context_params p = lzn_context_default_params();
  p.n_ctx = 4;
  lzn_context *short_batch;
  ck_assert_int_eq(lzn_context_create(model, &p, &short_batch), LZN_OK);
  ck_assert_int_eq(first->cost.n_points, 3);
  ck_assert_msg(memcmp(&first->cost, &second->cost, sizeof first->cost) == 0, "the second context measured again");
  ck_assert_msg(memcmp(&first->cost, &two->cost, sizeof first->cost) != 0, "2 threads reused 1 thread's costs");
  ck_assert_msg(memcmp(&first->cost, &elsewhere->cost, sizeof first->cost) != 0, "another model reused them");
  ck_assert_int_eq(short_batch->cost.max_batch, 4);
  ck_assert_int_eq(short_batch->cost.n_points, 2);
  lzn_context *short_again;
  ck_assert_int_eq(lzn_context_create(model, &p, &short_again), LZN_OK);
  ck_assert(memcmp(&short_batch->cost, &short_again->cost, sizeof short_batch->cost) == 0);
  lzn_context_free(first), lzn_context_free(second), lzn_context_free(two), lzn_context_free(elsewhere);
  lzn_context_free(short_batch), lzn_context_free(short_again);
  lzn_model_free(model), lzn_model_free(other);
}
END_TEST

/* The active fraction and dead neurons are exactly torch's counts (the
 * fixtures keep every pre-activation at least ~1e-3 away from 0). */
START_TEST(stats_report_the_known_activity) {
  reference r;
  load_reference(fixtures[_i], &r);
  lzn_model *model = load_model(r.path);
  lzn_model_info info = {.struct_size = sizeof info};
  ck_assert_int_eq(lzn_model_get_info(model, &info), LZN_OK);
  ck_assert_int_eq(info.n_layers, r.n_layers);
  for (int m = 0; m < 3; m++) {
    lzn_context *ctx = make_context(model, modes[m], 1);
    ctx->sparse_form = LZN_SPARSE_UNION; /* each token's own rows: sparse_each_token_reads_its_rows */
    free(run_all(ctx, &r));
    lzn_layer_stats stats[16] = {{.struct_size = sizeof(lzn_layer_stats)}};
    ck_assert_int_eq(lzn_context_stats(ctx, stats, 16), LZN_OK);
    for (int l = 0; l < r.n_layers; l++) {
      ck_assert_int_eq(stats[l].tokens, r.n_tokens);
      ck_assert_msg(fabs(stats[l].active_fraction - r.active_fraction[l]) < 1e-5,
                    "%s %s layer %d: active %g, torch %g", fixtures[_i], mode_names[m], l,
                    stats[l].active_fraction, r.active_fraction[l]);
      ck_assert_int_eq(stats[l].never_fired, r.never_fired[l]);
      ck_assert_double_eq(stats[l].flops_dense, 2.0 * info.d_model * info.d_ff * r.n_tokens);
      /* One call for the whole prompt: its union is every neuron that
       * fired, in every mode; per-token sparse would have read each
       * token's active rows, bytes_dense / d_ff bytes a row. */
      ck_assert_msg(fabs(stats[l].union_fraction - (double)(info.d_ff - r.never_fired[l]) / info.d_ff) < 1e-12,
                    "%s %s layer %d: union %g, torch %g", fixtures[_i], mode_names[m], l,
                    stats[l].union_fraction, (double)(info.d_ff - r.never_fired[l]) / info.d_ff);
      ck_assert_double_eq_tol(stats[l].bytes_per_token_sparse,
                              stats[l].active_fraction * r.n_tokens * stats[l].bytes_dense, 1e-3);
      if (modes[m] == LZN_MLP_SPARSE) {
        /* The whole prompt in one call: the union of the tokens' active
         * rows, each read once for all of them (linalg/union.c), multiplied
         * as a GEMM (zeros where a token has the row inactive): at least
         * the per-token FLOPs, at most the dense ones, and the bytes of the
         * union's rows once. */
        ck_assert_int_eq(stats[l].dense_calls, 0);
        ck_assert_double_ge(stats[l].flops_executed + 1.0, stats[l].flops_dense * stats[l].active_fraction);
        ck_assert_double_le(stats[l].flops_executed, stats[l].flops_dense);
        ck_assert_double_le(stats[l].bytes_executed, stats[l].bytes_dense);
        const double union_rows = stats[l].flops_executed / (2.0 * info.d_model * r.n_tokens);
        ck_assert_double_eq_tol(stats[l].bytes_executed, union_rows * stats[l].bytes_dense / info.d_ff, 1e-6);
        ck_assert_double_ge(union_rows, (double)(info.d_ff - r.never_fired[l]) - 1e-9);
        ck_assert_double_le(union_rows, (double)(info.d_ff - r.never_fired[l]) + 1e-9);
      }
      if (modes[m] == LZN_MLP_DENSE) {
        ck_assert_int_eq(stats[l].sparse_calls, 0);
        ck_assert_double_eq(stats[l].flops_executed, stats[l].flops_dense);
      }
    }
    ck_assert_int_eq(lzn_context_reset(ctx), LZN_OK);
    ck_assert_int_eq(lzn_context_stats(ctx, stats, 16), LZN_OK);
    ck_assert_int_eq(stats[0].tokens, 0);
    ck_assert_int_eq(stats[0].never_fired, info.d_ff);
    lzn_context_free(ctx);
  }
  free(r.logits);
  lzn_model_free(model);
}
END_TEST

/* A sparse prompt in its other form, each token over its own rows (the
 * cost model's choice when the union is much larger than a token's set):
 * the same activity, the per-token FLOPs and bytes (each token's rows read
 * for it), and the same logits as the union's form. (Gated models:
 * tests/test_prefill.c.) */
START_TEST(sparse_each_token_reads_its_rows) {
  reference r;
  load_reference(fixtures[_i], &r);
  lzn_model *model = load_model(r.path);
  lzn_model_info info = {.struct_size = sizeof info};
  ck_assert_int_eq(lzn_model_get_info(model, &info), LZN_OK);
  lzn_context *each = make_context(model, LZN_MLP_SPARSE, 1), *uni = make_context(model, LZN_MLP_SPARSE, 1);
  each->sparse_form = LZN_SPARSE_EACH, uni->sparse_form = LZN_SPARSE_UNION;
  float *a = run_all(each, &r), *b = run_all(uni, &r);
  const double e = max_abs_diff(a, b, (size_t)r.n_tokens * (size_t)r.vocab) / r.scale;
  ck_assert_msg(e <= TOL_SPARSE_VS_DENSE, "%s: each vs union %.3g", fixtures[_i], e);
  lzn_layer_stats stats[16] = {{.struct_size = sizeof(lzn_layer_stats)}};
  ck_assert_int_eq(lzn_context_stats(each, stats, 16), LZN_OK);
  for (int l = 0; l < r.n_layers; l++) {
    ck_assert_msg(fabs(stats[l].active_fraction - r.active_fraction[l]) < 1e-5, "%s layer %d", fixtures[_i], l);
    ck_assert_int_eq(stats[l].dense_calls, 0);
    const double active_flops = stats[l].flops_dense * stats[l].active_fraction;
    ck_assert_double_ge(stats[l].flops_executed + 1.0, active_flops);
    ck_assert_double_ge(stats[l].bytes_executed + 1.0, stats[l].bytes_per_token_sparse);
    /* OPT: the decider's set is the active set, read once per token. */
    ck_assert_double_eq_tol(stats[l].flops_executed, active_flops, 1.0 + 1e-9 * active_flops);
    ck_assert_double_eq_tol(stats[l].bytes_executed, stats[l].bytes_per_token_sparse, 1.0);
  }
  free(a), free(b), free(r.logits);
  lzn_context_free(each), lzn_context_free(uni);
  lzn_model_free(model);
}
END_TEST

START_TEST(sparse_fixture_is_sparse) {
  reference r;
  load_reference("opt-sparse", &r);
  for (int l = 0; l < r.n_layers; l++) {
    ck_assert_double_ge(r.active_fraction[l], 0.03);
    ck_assert_double_le(r.active_fraction[l], 0.20);
  }
  /* AUTO with a crossover above the density takes the sparse path. */
  lzn_model *model = load_model(r.path);
  lzn_context_params p = lzn_context_default_params();
  p.auto_crossover = 0.5f;
  p.kv_type = LZN_KV_F32; /* exact K/V: compared with PyTorch at 1e-4 */
  lzn_context *ctx = NULL;
  ck_assert_int_eq(lzn_context_create(model, &p, &ctx), LZN_OK);
  float *logits = malloc(sizeof(float) * (size_t)r.vocab);
  for (int t = 0; t < r.n_tokens; t++)
    ck_assert_int_eq(lzn_forward(ctx, &r.tokens[t], 1, logits, LZN_LOGITS_LAST), LZN_OK);
  lzn_layer_stats stats[16] = {{.struct_size = sizeof(lzn_layer_stats)}};
  ck_assert_int_eq(lzn_context_stats(ctx, stats, 16), LZN_OK);
  ck_assert_int_eq(stats[0].sparse_calls, r.n_tokens);
  ck_assert_int_eq(stats[0].dense_calls, 0);
  ck_assert_double_lt(stats[0].bytes_executed, 0.25 * stats[0].bytes_dense);
  free(logits), free(r.logits);
  lzn_context_free(ctx);
  lzn_model_free(model);
}
END_TEST

/* top_k and threshold: never more active than asked, sparse == dense under
 * the same rule, and top_k = d_ff is plain ReLU. */
START_TEST(top_k_and_threshold) {
  reference r;
  load_reference("opt-preln", &r);
  lzn_model *model = load_model(r.path);
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_model_get_info(model, &info);
  const struct { int top_k; float threshold; } rules[] = {{10, 0.0f}, {1, 0.0f}, {0, 0.5f}, {25, 0.2f},
                                                          {info.d_ff, 0.0f}};
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
    float *by_mode[3];
    lzn_layer_stats stats[3][16] = {{{.struct_size = sizeof(lzn_layer_stats)}},
                                    {{.struct_size = sizeof(lzn_layer_stats)}},
                                    {{.struct_size = sizeof(lzn_layer_stats)}}};
    for (int m = 0; m < 3; m++) {
      lzn_context_params p = lzn_context_default_params();
      p.mlp_mode = modes[m], p.top_k = rules[i].top_k, p.threshold = rules[i].threshold;
      p.kv_type = LZN_KV_F32;
      lzn_context *ctx = NULL;
      ck_assert_int_eq(lzn_context_create(model, &p, &ctx), LZN_OK);
      by_mode[m] = run_all(ctx, &r);
      ck_assert_int_eq(lzn_context_stats(ctx, stats[m], 16), LZN_OK);
      lzn_context_free(ctx);
    }
    for (int l = 0; l < r.n_layers; l++) {
      if (rules[i].top_k) ck_assert_double_le(stats[0][l].active_fraction, (double)rules[i].top_k / info.d_ff);
      if (rules[i].top_k == info.d_ff) ck_assert_double_eq_tol(stats[0][l].active_fraction, r.active_fraction[l], 1e-6);
      else ck_assert_double_lt(stats[0][l].active_fraction, r.active_fraction[l]);
      ck_assert_double_eq_tol(stats[1][l].active_fraction, stats[0][l].active_fraction, 1e-9);
      ck_assert_double_eq_tol(stats[2][l].active_fraction, stats[0][l].active_fraction, 1e-9);
    }
    const size_t n = (size_t)r.n_tokens * r.vocab;
    ck_assert_double_le(max_abs_diff(by_mode[1], by_mode[0], n), TOL_SPARSE_VS_DENSE * r.scale);
    ck_assert_double_le(max_abs_diff(by_mode[2], by_mode[0], n), TOL_SPARSE_VS_DENSE * r.scale);
    const double vs_torch = max_abs_diff(by_mode[0], r.logits, n);
    if (rules[i].top_k == info.d_ff) ck_assert_double_le(vs_torch, TOL_REFERENCE * r.scale);
    else ck_assert_double_gt(vs_torch, TOL_REFERENCE * r.scale); /* it did change something */
    for (int m = 0; m < 3; m++) free(by_mode[m]);
  }
  lzn_context_params p = lzn_context_default_params();
  lzn_context *ctx = NULL;
  p.top_k = -1;
  EXPECT(lzn_context_create(model, &p, &ctx), LZN_ERR_INVALID_ARG, "top_k = -1");
  p.top_k = info.d_ff + 1;
  EXPECT(lzn_context_create(model, &p, &ctx), LZN_ERR_INVALID_ARG, "top_k");
  p = lzn_context_default_params(), p.threshold = -0.1f;
  EXPECT(lzn_context_create(model, &p, &ctx), LZN_ERR_INVALID_ARG, "threshold");
  p.threshold = NAN;
  EXPECT(lzn_context_create(model, &p, &ctx), LZN_ERR_INVALID_ARG, "threshold");
  free(r.logits);
  lzn_model_free(model);
}
END_TEST

/* The trained model's greedy continuation of its prompt is torch's, byte for
 * byte (the reference keeps every top-2 logit gap above 0.02). */
START_TEST(trained_model_continues_like_pytorch) {
  json_error_t err;
  json_t *root = json_load_file("models/tiny-opt/reference.json", 0, &err);
  ck_assert_msg(root != NULL, "%s", err.text);
  json_t *prompt = json_object_get(root, "tokens"), *expect = json_object_get(root, "greedy_continuation");
  const int n_prompt = (int)json_array_size(prompt), n_expect = (int)json_array_size(expect);
  ck_assert_int_gt(n_expect, 16);
  int32_t tokens[256];
  for (int i = 0; i < n_prompt; i++) tokens[i] = (int32_t)json_integer_value(json_array_get(prompt, (size_t)i));
  lzn_model *model = load_model("models/tiny-opt");
  for (int m = 0; m < 3; m++) {
    lzn_context *ctx = make_context(model, modes[m], 1);
    float logits[256];
    ck_assert_int_eq(lzn_forward(ctx, tokens, n_prompt, logits, LZN_LOGITS_LAST), LZN_OK);
    for (int i = 0; i < n_expect; i++) {
      int32_t next = 0;
      for (int v = 1; v < 256; v++)
        if (logits[v] > logits[next]) next = v;
      ck_assert_msg(next == json_integer_value(json_array_get(expect, (size_t)i)),
                    "%s: byte %d of the continuation differs from torch's", mode_names[m], i);
      ck_assert_int_eq(lzn_forward(ctx, &next, 1, logits, LZN_LOGITS_LAST), LZN_OK);
    }
    lzn_layer_stats stats[4] = {{.struct_size = sizeof(lzn_layer_stats)}};
    ck_assert_int_eq(lzn_context_stats(ctx, stats, 4), LZN_OK);
    for (int l = 0; l < 4; l++) ck_assert_double_lt(stats[l].active_fraction, 0.15); /* trained sparse */
    lzn_context_free(ctx);
  }
  json_decref(root);
  lzn_model_free(model);
}
END_TEST

static int progress_calls;
static float progress_last;
static int count_progress(float fraction, void *user) {
  ck_assert_float_ge(fraction, progress_last);
  progress_last = fraction;
  progress_calls++;
  return progress_calls < *(int *)user;
}

START_TEST(progress_and_cancel) {
  char path[600];
  snprintf(path, sizeof path, "%s/opt-preln", data_dir());
  lzn_model_params p = lzn_model_default_params();
  int allow = 1 << 30;
  p.progress = count_progress;
  p.progress_user_data = &allow;
  progress_calls = 0, progress_last = 0;
  lzn_model *model = NULL;
  ck_assert_int_eq(lzn_model_load(path, &p, &model), LZN_OK);
  ck_assert_int_gt(progress_calls, 10);
  ck_assert_float_eq(progress_last, 1.0f);
  lzn_model_free(model);
  allow = 5; /* the fifth call returns 0 */
  progress_calls = 0, progress_last = 0;
  ck_assert_int_eq(lzn_model_load(path, &p, &model), LZN_ERR_CANCELLED);
  ck_assert_ptr_null(model);
  ck_assert_int_eq(progress_calls, 5);
  /* Without mmap the weights are read into memory; same logits. */
  p = lzn_model_default_params();
  p.use_mmap = 0;
  ck_assert_int_eq(lzn_model_load(path, &p, &model), LZN_OK);
  reference r;
  load_reference("opt-preln", &r);
  lzn_context *ctx = make_context(model, LZN_MLP_SPARSE, 1);
  float *logits = run_all(ctx, &r);
  ck_assert_double_le(max_abs_diff(logits, r.logits, (size_t)r.n_tokens * r.vocab), TOL_REFERENCE * r.scale);
  free(logits), free(r.logits);
  lzn_context_free(ctx);
  lzn_model_free(model);
}
END_TEST

/* ------------------------------------------------------------ bad calls */


START_TEST(forward_rejects_bad_calls) {
  reference r;
  load_reference("opt-preln", &r);
  lzn_model *model = load_model(r.path);
  lzn_context_params p = lzn_context_default_params();
  p.n_ctx = 8;
  p.kv_type = LZN_KV_F32;
  lzn_context *ctx = NULL;
  ck_assert_int_eq(lzn_context_create(model, &p, &ctx), LZN_OK);
  float *logits = malloc(sizeof(float) * (size_t)r.vocab * 16);
  int32_t bad[2] = {3, r.vocab};
  int32_t negative[1] = {-1};
  EXPECT(lzn_forward(NULL, r.tokens, 1, logits, LZN_LOGITS_LAST), LZN_ERR_INVALID_ARG, "ctx is NULL");
  EXPECT(lzn_forward(ctx, NULL, 1, logits, LZN_LOGITS_LAST), LZN_ERR_INVALID_ARG, "tokens is NULL");
  EXPECT(lzn_forward(ctx, r.tokens, 1, NULL, LZN_LOGITS_LAST), LZN_ERR_INVALID_ARG, "logits is NULL");
  EXPECT(lzn_forward(ctx, r.tokens, 0, logits, LZN_LOGITS_LAST), LZN_ERR_INVALID_ARG, "n_tokens = 0");
  EXPECT(lzn_forward(ctx, r.tokens, -2, logits, LZN_LOGITS_LAST), LZN_ERR_INVALID_ARG, "n_tokens = -2");
  EXPECT(lzn_forward(ctx, r.tokens, 1, logits, (lzn_logits_mode)7), LZN_ERR_INVALID_ARG, "mode = 7");
  EXPECT(lzn_forward(ctx, bad, 2, logits, LZN_LOGITS_LAST), LZN_ERR_INVALID_ARG, "tokens[1]");
  EXPECT(lzn_forward(ctx, negative, 1, logits, LZN_LOGITS_LAST), LZN_ERR_INVALID_ARG, "tokens[0] = -1");
  ck_assert_int_eq(lzn_context_n_past(ctx), 0);

  /* 5 fit, 4 more do not: CONTEXT_FULL and the cache is as it was, so the
   * next 3 tokens still give torch's logits. */
  ck_assert_int_eq(lzn_forward(ctx, r.tokens, 5, logits, LZN_LOGITS_LAST), LZN_OK);
  EXPECT(lzn_forward(ctx, r.tokens + 5, 4, logits, LZN_LOGITS_LAST), LZN_ERR_CONTEXT_FULL, "n_ctx = 8");
  ck_assert_int_eq(lzn_context_n_past(ctx), 5);
  ck_assert_int_eq(lzn_forward(ctx, r.tokens + 5, 3, logits, LZN_LOGITS_ALL), LZN_OK);
  ck_assert_double_le(max_abs_diff(logits, r.logits + 5 * (size_t)r.vocab, 3 * (size_t)r.vocab),
                      TOL_REFERENCE * r.scale);
  EXPECT(lzn_forward(ctx, r.tokens, 1, logits, LZN_LOGITS_LAST), LZN_ERR_CONTEXT_FULL, "8 are used");

  lzn_layer_stats stats[4] = {{.struct_size = sizeof(lzn_layer_stats)}};
  EXPECT(lzn_context_stats(NULL, stats, 4), LZN_ERR_INVALID_ARG, "ctx is NULL");
  EXPECT(lzn_context_stats(ctx, NULL, 4), LZN_ERR_INVALID_ARG, "out is NULL");
  EXPECT(lzn_context_stats(ctx, stats, 0), LZN_ERR_INVALID_ARG, "capacity = 0");
  EXPECT(lzn_context_reset(NULL), LZN_ERR_INVALID_ARG, "ctx is NULL");
  ck_assert_int_eq(lzn_context_n_past(NULL), -1);
  lzn_model_info info = {.struct_size = sizeof info};
  EXPECT(lzn_model_get_info(NULL, &info), LZN_ERR_INVALID_ARG, "model is NULL");
  EXPECT(lzn_model_get_info(model, NULL), LZN_ERR_INVALID_ARG, "out is NULL");
  lzn_context_free(ctx);
  lzn_context_free(NULL);
  lzn_model_free(NULL);
  free(logits), free(r.logits);
  lzn_model_free(model);
}
END_TEST

START_TEST(context_rejects_bad_params) {
  char path[600];
  snprintf(path, sizeof path, "%s/opt-preln", data_dir());
  lzn_model *model = load_model(path);
  lzn_context *ctx = (lzn_context *)1;
  lzn_context_params p = lzn_context_default_params();
  EXPECT(lzn_context_create(NULL, &p, &ctx), LZN_ERR_INVALID_ARG, "model is NULL");
  ck_assert_ptr_null(ctx);
  EXPECT(lzn_context_create(model, &p, NULL), LZN_ERR_INVALID_ARG, "out is NULL");
  p.struct_size = 8;
  EXPECT(lzn_context_create(model, &p, &ctx), LZN_ERR_INVALID_ARG, "struct_size");
  p = lzn_context_default_params(), p.n_threads = 0;
  EXPECT(lzn_context_create(model, &p, &ctx), LZN_ERR_INVALID_ARG, "n_threads = 0");
  p = lzn_context_default_params(), p.n_threads = 1 << 20;
  EXPECT(lzn_context_create(model, &p, &ctx), LZN_ERR_INVALID_ARG, "n_threads");
  p = lzn_context_default_params(), p.mlp_mode = (lzn_mlp_mode)9;
  EXPECT(lzn_context_create(model, &p, &ctx), LZN_ERR_INVALID_ARG, "mlp_mode = 9");
  p = lzn_context_default_params(), p.n_ctx = -1;
  EXPECT(lzn_context_create(model, &p, &ctx), LZN_ERR_INVALID_ARG, "n_ctx = -1");
  p = lzn_context_default_params(), p.n_ctx = 100000;
  EXPECT(lzn_context_create(model, &p, &ctx), LZN_ERR_INVALID_ARG, "max_position_embeddings");
  p = lzn_context_default_params(), p.auto_crossover = 2.0f;
  EXPECT(lzn_context_create(model, &p, &ctx), LZN_ERR_INVALID_ARG, "auto_crossover");
  p = lzn_context_default_params(), p.collect_stats = 3;
  EXPECT(lzn_context_create(model, &p, &ctx), LZN_ERR_INVALID_ARG, "collect_stats");
  ck_assert_ptr_null(ctx);
  lzn_model_params mp = lzn_model_default_params();
  lzn_model *other = (lzn_model *)1;
  mp.struct_size = 3;
  EXPECT(lzn_model_load(path, &mp, &other), LZN_ERR_INVALID_ARG, "struct_size");
  ck_assert_ptr_null(other);
  mp = lzn_model_default_params(), mp.use_mmap = 5;
  EXPECT(lzn_model_load(path, &mp, &other), LZN_ERR_INVALID_ARG, "use_mmap");
  EXPECT(lzn_model_load(NULL, NULL, &other), LZN_ERR_INVALID_ARG, "path is NULL");
  EXPECT(lzn_model_load(path, NULL, NULL), LZN_ERR_INVALID_ARG, "out is NULL");
  lzn_model_free(model);
}
END_TEST

/* ------------------------------------------------------ bad model folders */

static char scratch[256];

static void shell(const char *cmd) { ck_assert_msg(system(cmd) == 0, "%s", cmd); }

/* A fresh copy of fixture `name` in a scratch folder; returns its path. */
static const char *copy_fixture(const char *name) {
  static char path[512];
  strcpy(scratch, "/tmp/lzn-test-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(scratch));
  char src[512];
  snprintf(src, sizeof src, "%s/%s", data_dir(), name);
  snprintf(path, sizeof path, "%s/m", scratch);
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", src, path);
  shell(cmd);
  return path;
}

static void drop_scratch(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
  shell(cmd);
}

/* Replaces the first occurrence of `from` by `to` in a file (same length
 * keeps a safetensors header's length field right). */
static void patch_file(const char *path, const char *from, const char *to) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  const long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *bytes = malloc((size_t)size + 1);
  ck_assert_uint_eq(fread(bytes, 1, (size_t)size, f), (size_t)size);
  fclose(f);
  bytes[size] = '\0';
  char *hit = memmem(bytes, (size_t)size, from, strlen(from));
  ck_assert_msg(hit != NULL, "%s not in %s", from, path);
  const size_t head = (size_t)(hit - bytes), from_len = strlen(from), to_len = strlen(to);
  f = fopen(path, "wb");
  fwrite(bytes, 1, head, f);
  fwrite(to, 1, to_len, f);
  fwrite(hit + from_len, 1, (size_t)size - head - from_len, f);
  fclose(f);
  free(bytes);
}

static void expect_load(const char *path, lzn_status status, const char *words) {
  lzn_model *model = (lzn_model *)1;
  EXPECT(lzn_model_load(path, NULL, &model), status, words);
  ck_assert_ptr_null(model);
}

typedef struct bad_config {
  const char *from, *to;
  lzn_status status;
  const char *words;
} bad_config;

static const bad_config bad_configs[] = {
    {"\"hidden_size\": 60,", "", LZN_ERR_FORMAT, "hidden_size"},
    {"\"ffn_dim\": 200,", "", LZN_ERR_FORMAT, "ffn_dim"},
    {"\"activation_function\": \"relu\"", "\"activation_function\": \"gelu\"", LZN_ERR_UNSUPPORTED, "gelu"},
    {"\"OPTForCausalLM\"", "\"GPT2LMHeadModel\"", LZN_ERR_UNSUPPORTED, "architecture"},
    /* A LLaMA architecture name makes it a LLaMA config, which lacks its sizes. */
    {"\"OPTForCausalLM\"", "\"LlamaForCausalLM\"", LZN_ERR_FORMAT, "intermediate_size"},
    {"{", "{{", LZN_ERR_FORMAT, "config.json"},
    /* Shapes that disagree with config.json name the tensor. */
    {"\"ffn_dim\": 200", "\"ffn_dim\": 201", LZN_ERR_FORMAT, "fc1.weight"},
    {"\"vocab_size\": 97", "\"vocab_size\": 98", LZN_ERR_FORMAT, "embed_tokens"},
    {"\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3", LZN_ERR_FORMAT, "layers.2"},
};

START_TEST(bad_config_is_reported) {
  const bad_config *b = &bad_configs[_i];
  const char *path = copy_fixture("opt-preln");
  char file[600];
  snprintf(file, sizeof file, "%s/config.json", path);
  patch_file(file, b->from, b->to);
  expect_load(path, b->status, b->words);
  drop_scratch();
}
END_TEST

START_TEST(bad_folders_are_reported) {
  char file[600];
  expect_load("/nonexistent/lazyneuron", LZN_ERR_IO, "/nonexistent/lazyneuron");

  const char *path = copy_fixture("opt-preln");
  snprintf(file, sizeof file, "%s/model.safetensors", path);
  unlink(file);
  expect_load(path, LZN_ERR_IO, "model.safetensors");
  drop_scratch();

  path = copy_fixture("opt-preln");
  snprintf(file, sizeof file, "%s/config.json", path);
  unlink(file);
  expect_load(path, LZN_ERR_IO, "config.json");
  drop_scratch();

  /* A tensor renamed in place (same length): missing, named in the error. */
  path = copy_fixture("opt-preln");
  snprintf(file, sizeof file, "%s/model.safetensors", path);
  patch_file(file, "model.decoder.layers.1.fc2.weight", "model.decoder.layers.1.fc2.weighX");
  expect_load(path, LZN_ERR_FORMAT, "model.decoder.layers.1.fc2.weight");
  drop_scratch();

  /* A truncated weights file. */
  path = copy_fixture("opt-preln");
  snprintf(file, sizeof file, "%s/model.safetensors", path);
  ck_assert_int_eq(truncate(file, 1000), 0);
  expect_load(path, LZN_ERR_FORMAT, "model.safetensors");
  drop_scratch();

  /* A single .safetensors file with config.json beside it loads. */
  path = copy_fixture("opt-preln");
  snprintf(file, sizeof file, "%s/model.safetensors", path);
  lzn_model *model = NULL;
  ck_assert_int_eq(lzn_model_load(file, NULL, &model), LZN_OK);
  lzn_model_free(model);
  drop_scratch();
}
END_TEST

START_TEST(bad_shards_are_reported) {
  char file[600];
  const char *path = copy_fixture("opt-sharded");
  snprintf(file, sizeof file, "%s/model-00002-of-00003.safetensors", path);
  unlink(file);
  expect_load(path, LZN_ERR_IO, "model-00002-of-00003.safetensors");
  drop_scratch();

  path = copy_fixture("opt-sharded");
  snprintf(file, sizeof file, "%s/model.safetensors.index.json", path);
  patch_file(file, "\"model-00002-of-00003.safetensors\"", "\"../00002-of-00003.safetensors\"");
  expect_load(path, LZN_ERR_FORMAT, "..");
  drop_scratch();
}
END_TEST

/* Truncate, then decode again: the same logits as a fresh decode. */
START_TEST(truncate_then_redecode) {
  reference r;
  load_reference(fixtures[_i], &r);
  lzn_model *model = load_model(r.path);
  lzn_context *ctx = make_context(model, LZN_MLP_SPARSE, 1);
  float *step = malloc(sizeof(float) * (size_t)r.vocab);
  const int keep = r.n_tokens / 2;
  /* The whole sequence, then back to keep, then a wrong token, back again. */
  ck_assert_int_eq(lzn_forward(ctx, r.tokens, r.n_tokens, step, LZN_LOGITS_LAST), LZN_OK);
  ck_assert_int_eq(lzn_context_truncate(ctx, keep), LZN_OK);
  ck_assert_int_eq(lzn_context_n_past(ctx), keep);
  const int32_t wrong = (r.tokens[keep] + 1) % r.vocab;
  ck_assert_int_eq(lzn_forward(ctx, &wrong, 1, step, LZN_LOGITS_LAST), LZN_OK);
  ck_assert_int_eq(lzn_context_truncate(ctx, keep), LZN_OK);
  for (int t = keep; t < r.n_tokens; t++) {
    ck_assert_int_eq(lzn_forward(ctx, &r.tokens[t], 1, step, LZN_LOGITS_LAST), LZN_OK);
    const double err = max_abs_diff(step, r.logits + (size_t)t * r.vocab, (size_t)r.vocab);
    ck_assert_msg(err <= TOL_REFERENCE * r.scale, "%s token %d after truncate: %g", fixtures[_i], t, err);
  }
  /* Out of range: nothing changes. */
  ck_assert_int_eq(lzn_context_truncate(ctx, r.n_tokens + 1), LZN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "n_keep"));
  ck_assert_int_eq(lzn_context_truncate(ctx, -1), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_context_n_past(ctx), r.n_tokens);
  ck_assert_int_eq(lzn_context_truncate(NULL, 0), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_context_truncate(ctx, 0), LZN_OK);
  ck_assert_int_eq(lzn_context_n_past(ctx), 0);
  free(step);
  free(r.logits);
  lzn_context_free(ctx);
  lzn_model_free(model);
}
END_TEST

/* A prompt run once, its cache copied into fresh contexts, each then
 * continuing: the same logits as running the whole sequence itself. */
START_TEST(copy_prefix_then_continue) {
  reference r;
  load_reference(fixtures[_i], &r);
  lzn_model *model = load_model(r.path);
  lzn_context *src = make_context(model, LZN_MLP_SPARSE, 1), *dst = make_context(model, LZN_MLP_DENSE, 1);
  float *step = malloc(sizeof(float) * (size_t)r.vocab);
  const int prefix = r.n_tokens / 2;
  ck_assert_int_eq(lzn_forward(src, r.tokens, prefix, step, LZN_LOGITS_LAST), LZN_OK);
  ck_assert_int_eq(lzn_forward(dst, r.tokens + 3, 2, step, LZN_LOGITS_LAST), LZN_OK); /* replaced */
  ck_assert_int_eq(lzn_context_copy_prefix(dst, src, prefix), LZN_OK);
  ck_assert_int_eq(lzn_context_n_past(dst), prefix);
  for (int t = prefix; t < r.n_tokens; t++) {
    ck_assert_int_eq(lzn_forward(dst, &r.tokens[t], 1, step, LZN_LOGITS_LAST), LZN_OK);
    const double err = max_abs_diff(step, r.logits + (size_t)t * r.vocab, (size_t)r.vocab);
    ck_assert_msg(err <= TOL_REFERENCE * r.scale, "%s token %d after copy: %g", fixtures[_i], t, err);
  }
  /* Bad calls change nothing. */
  const int n_past = lzn_context_n_past(dst);
  ck_assert_int_eq(lzn_context_copy_prefix(dst, src, prefix + 1), LZN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "n_tokens"));
  ck_assert_int_eq(lzn_context_copy_prefix(dst, dst, 1), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_context_copy_prefix(NULL, src, 1), LZN_ERR_INVALID_ARG);
  lzn_context_params p = lzn_context_default_params();
  p.n_ctx = 2;
  p.kv_type = LZN_KV_F32;
  lzn_context *small = NULL;
  ck_assert_int_eq(lzn_context_create(model, &p, &small), LZN_OK);
  ck_assert_int_eq(lzn_context_copy_prefix(small, src, prefix), LZN_ERR_CONTEXT_FULL);
  p.n_ctx = 0;
  p.kv_type = LZN_KV_F16;
  lzn_context *f16 = NULL;
  ck_assert_int_eq(lzn_context_create(model, &p, &f16), LZN_OK);
  ck_assert_int_eq(lzn_context_copy_prefix(f16, src, prefix), LZN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "KV"));
  ck_assert_int_eq(lzn_context_n_past(dst), n_past);
  lzn_model *other = load_model(r.path);
  lzn_context *foreign = make_context(other, LZN_MLP_SPARSE, 1);
  ck_assert_int_eq(lzn_context_copy_prefix(foreign, src, 1), LZN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "different models"));
  lzn_context_free(foreign), lzn_context_free(small), lzn_context_free(f16);
  lzn_model_free(other);
  free(step);
  free(r.logits);
  lzn_context_free(src), lzn_context_free(dst);
  lzn_model_free(model);
}
END_TEST

static Suite *forward_suite(void) {
  Suite *s = suite_create("forward");
  TCase *torch = tcase_create("pytorch");
  tcase_set_timeout(torch, 120);
  tcase_add_loop_test(torch, logits_match_pytorch, 0, N_FIXTURES);
  tcase_add_loop_test(torch, decode_matches_prefill, 0, N_FIXTURES);
  tcase_add_loop_test(torch, threads_give_the_same_logits, 0, N_FIXTURES);
  tcase_add_loop_test(torch, read_weights_give_the_mapped_logits, 0, N_FIXTURES);
  tcase_add_test(torch, contexts_share_the_measured_costs);
  tcase_add_loop_test(torch, stats_report_the_known_activity, 0, N_FIXTURES);
  tcase_add_loop_test(torch, sparse_each_token_reads_its_rows, 0, N_FIXTURES);
  tcase_add_test(torch, sparse_fixture_is_sparse);
  tcase_add_test(torch, progress_and_cancel);
  tcase_add_test(torch, top_k_and_threshold);
  tcase_add_test(torch, trained_model_continues_like_pytorch);
  tcase_add_loop_test(torch, truncate_then_redecode, 0, N_FIXTURES);
  tcase_add_loop_test(torch, copy_prefix_then_continue, 0, N_FIXTURES);
  suite_add_tcase(s, torch);
  TCase *bad = tcase_create("bad input");
  tcase_set_timeout(bad, 60);
  tcase_add_test(bad, forward_rejects_bad_calls);
  tcase_add_test(bad, context_rejects_bad_params);
  tcase_add_loop_test(bad, bad_config_is_reported, 0, (int)(sizeof bad_configs / sizeof bad_configs[0]));
  tcase_add_test(bad, bad_folders_are_reported);
  tcase_add_test(bad, bad_shards_are_reported);
  suite_add_tcase(s, bad);
  return s;
}

int main(void) { return run_suite(forward_suite()); }
