/*
 * test_predictor.c: the activation predictor against an independent
 * float64 forward (tools/train_predictor.py) on tests/data/predictor/
 * opt-preln: opt-preln with an SVD rank-8 predictor on layer 0 and none on
 * layer 1. The reference forces fc1 outputs outside the predicted set to
 * zero, which is what the library computes; its per-token predicted,
 * active and missed counts check the statistics exactly (scores and
 * pre-activations stay >= 1e-3 away from their thresholds).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "format/safetensors.h"
#include "reference.h"

#define TOL_REFERENCE 1e-4

static const char *const fixture = "predictor/opt-preln";

typedef struct predictor_reference {
  reference base;           /* the fixture's own logits: the model without a predictor */
  float *logits;            /* with the predictor */
  int predicted[64], fired[64], missed[64]; /* layer 0, per token */
} predictor_reference;

static void load_predictor_reference(predictor_reference *p) {
  char dir[400];
  snprintf(dir, sizeof dir, "%s/%s", data_dir(), fixture);
  load_reference(dir, &p->base);
  char file[600];
  snprintf(file, sizeof file, "%s/reference_predictor.json", p->base.path);
  json_error_t err;
  json_t *root = json_load_file(file, 0, &err);
  ck_assert_msg(root != NULL, "%s: %s", file, err.text);
  const int n = p->base.n_tokens;
  for (int t = 0; t < n; t++) {
    p->predicted[t] = (int)json_integer_value(json_array_get(json_array_get(json_object_get(root, "predicted_counts"), 0), (size_t)t));
    p->fired[t] = (int)json_integer_value(json_array_get(json_array_get(json_object_get(root, "fired_counts"), 0), (size_t)t));
    p->missed[t] = (int)json_integer_value(json_array_get(json_array_get(json_object_get(root, "missed_counts"), 0), (size_t)t));
  }
  json_decref(root);
  snprintf(file, sizeof file, "%s/logits_predictor.f32", p->base.path);
  FILE *f = fopen(file, "rb");
  ck_assert_ptr_nonnull(f);
  const size_t count = (size_t)n * (size_t)p->base.vocab;
  p->logits = malloc(count * sizeof(float));
  ck_assert_uint_eq(fread(p->logits, sizeof(float), count, f), count);
  fclose(f);
}

static lzn_context *predictor_context(const lzn_model *m, lzn_mlp_mode mode, int use, int recall) {
  lzn_context_params p = lzn_context_default_params();
  p.mlp_mode = mode;
  p.use_predictor = use;
  p.collect_recall = recall;
  p.kv_type = LZN_KV_F32; /* compared with float64 at 1e-4 */
  lzn_context *ctx = NULL;
  const lzn_status s = lzn_context_create(m, &p, &ctx);
  ck_assert_msg(s == LZN_OK, "%s", lzn_last_error());
  return ctx;
}

/* Prefill (the union path) and token-by-token decode both equal the float64
 * forward with the predictor; without it, or DENSE, the model's own. */
START_TEST(predictor_matches_reference) {
  predictor_reference r;
  load_predictor_reference(&r);
  lzn_model *model = load_model(r.base.path);
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_model_get_info(model, &info);
  ck_assert_int_eq(info.has_predictor, 1);
  const size_t n = (size_t)r.base.n_tokens * (size_t)r.base.vocab;

  lzn_context *ctx = predictor_context(model, LZN_MLP_SPARSE, 1, 0);
  float *all = run_all(ctx, &r.base);
  double e = max_abs_diff(all, r.logits, n) / r.base.scale;
  ck_assert_msg(e <= TOL_REFERENCE, "prefill with the predictor: %.3g", e);
  free(all);
  ck_assert_int_eq(lzn_context_reset(ctx), LZN_OK);
  float *one = malloc(sizeof(float) * (size_t)r.base.vocab);
  for (int t = 0; t < r.base.n_tokens; t++) {
    ck_assert_int_eq(lzn_forward(ctx, &r.base.tokens[t], 1, one, LZN_LOGITS_LAST), LZN_OK);
    e = max_abs_diff(one, r.logits + (size_t)t * r.base.vocab, (size_t)r.base.vocab) / r.base.scale;
    ck_assert_msg(e <= TOL_REFERENCE, "decode token %d: %.3g", t, e);
  }
  free(one);
  lzn_context_free(ctx);

  /* The approximation is real: this predictor misses neurons, so the
   * logits differ from the model's (by 0.82 at most in float64). */
  ck_assert_double_gt(max_abs_diff(r.logits, r.base.logits, n), 0.1);
  const lzn_mlp_mode exact_modes[] = {LZN_MLP_SPARSE, LZN_MLP_DENSE};
  for (int k = 0; k < 2; k++) {
    /* off, or dense (which never uses it) */
    ctx = predictor_context(model, exact_modes[k], k == 0 ? 0 : 1, 0);
    all = run_all(ctx, &r.base);
    e = max_abs_diff(all, r.base.logits, n) / r.base.scale;
    ck_assert_msg(e <= TOL_REFERENCE, "mode %d without the predictor: %.3g", k, e);
    free(all);
    lzn_context_free(ctx);
  }
  free(r.logits), free(r.base.logits);
  lzn_model_free(model);
}
END_TEST

/* AUTO may compute a call's up-projection densely (here always: a
 * crossover no predicted set is under) but keeps the predictor's
 * approximation, so a token's logits never depend on which path its call
 * took or which tokens shared it (a server's batch). */
START_TEST(auto_keeps_the_predictor_on_the_dense_path) {
  predictor_reference r;
  load_predictor_reference(&r);
  lzn_model *model = load_model(r.base.path);
  const size_t n = (size_t)r.base.n_tokens * (size_t)r.base.vocab;
  const float crossovers[] = {1e-6f, 1.0f}; /* dense, then sparse, every call */
  for (int k = 0; k < 2; k++) {
    lzn_context_params p = lzn_context_default_params();
    p.mlp_mode = LZN_MLP_AUTO;
    p.auto_crossover = crossovers[k];
    p.kv_type = LZN_KV_F32;
    lzn_context *ctx = NULL;
    ck_assert_msg(lzn_context_create(model, &p, &ctx) == LZN_OK, "%s", lzn_last_error());
    float *all = run_all(ctx, &r.base);
    const double e = max_abs_diff(all, r.logits, n) / r.base.scale;
    ck_assert_msg(e <= TOL_REFERENCE, "AUTO, crossover %g: %.3g from the predictor's logits",
                  (double)crossovers[k], e);
    free(all);
    lzn_context_free(ctx);
  }
  free(r.logits), free(r.base.logits);
  lzn_model_free(model);
}
END_TEST

/* Predicted and active fractions, recall and precision: exactly the
 * reference's counts. */
START_TEST(predictor_stats_are_exact) {
  predictor_reference r;
  load_predictor_reference(&r);
  lzn_model *model = load_model(r.base.path);
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_model_get_info(model, &info);
  lzn_context *ctx = predictor_context(model, LZN_MLP_SPARSE, 1, 1);
  float *one = malloc(sizeof(float) * (size_t)r.base.vocab);
  for (int t = 0; t < r.base.n_tokens; t++)
    ck_assert_int_eq(lzn_forward(ctx, &r.base.tokens[t], 1, one, LZN_LOGITS_LAST), LZN_OK);
  lzn_predictor_stats st[2] = {{.struct_size = sizeof(lzn_predictor_stats)}};
  ck_assert_int_eq(lzn_context_predictor_stats(ctx, st, 2), LZN_OK);
  double predicted = 0, fired = 0, missed = 0;
  for (int t = 0; t < r.base.n_tokens; t++) predicted += r.predicted[t], fired += r.fired[t], missed += r.missed[t];
  const double per = 1.0 / ((double)r.base.n_tokens * info.d_ff);
  ck_assert_int_eq(st[0].tokens, r.base.n_tokens);
  ck_assert_double_eq_tol(st[0].predicted_fraction, predicted * per, 1e-12);
  ck_assert_double_eq_tol(st[0].active_fraction, (fired - missed) * per, 1e-12);
  ck_assert_double_eq_tol(st[0].recall, (fired - missed) / fired, 1e-12);
  ck_assert_double_eq_tol(st[0].precision, (fired - missed) / predicted, 1e-12);
  ck_assert_double_gt(st[0].flops, 0.0);
  ck_assert_double_gt(st[0].bytes, 0.0);
  ck_assert_int_eq(st[1].tokens, 0); /* layer 1 has no predictor */
  /* Without collect_recall there is nothing to measure recall with. */
  lzn_context_free(ctx);
  ctx = predictor_context(model, LZN_MLP_SPARSE, 1, 0);
  ck_assert_int_eq(lzn_forward(ctx, r.base.tokens, 3, one, LZN_LOGITS_LAST), LZN_OK);
  ck_assert_int_eq(lzn_context_predictor_stats(ctx, st, 2), LZN_OK);
  ck_assert(isnan(st[0].recall) && isnan(st[0].precision));
  ck_assert_int_eq(lzn_context_predictor_stats(NULL, st, 2), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_context_predictor_stats(ctx, st, 0), LZN_ERR_INVALID_ARG);
  free(one);
  lzn_context_free(ctx);
  free(r.logits), free(r.base.logits);
  lzn_model_free(model);
}
END_TEST

/* predictor_threshold replaces the file's: above every score, nothing is
 * predicted and layer 0's MLP adds only its bias. */
START_TEST(threshold_override) {
  predictor_reference r;
  load_predictor_reference(&r);
  lzn_model *model = load_model(r.base.path);
  lzn_context_params p = lzn_context_default_params();
  p.mlp_mode = LZN_MLP_SPARSE;
  p.kv_type = LZN_KV_F32;
  p.predictor_threshold = 1e30f;
  lzn_context *ctx = NULL;
  ck_assert_int_eq(lzn_context_create(model, &p, &ctx), LZN_OK);
  float *all = run_all(ctx, &r.base);
  lzn_predictor_stats st[2] = {{.struct_size = sizeof(lzn_predictor_stats)}};
  lzn_layer_stats ls[2] = {{.struct_size = sizeof(lzn_layer_stats)}};
  lzn_context_predictor_stats(ctx, st, 2);
  lzn_context_stats(ctx, ls, 2);
  ck_assert_double_eq(st[0].predicted_fraction, 0.0);
  ck_assert_double_eq(ls[0].active_fraction, 0.0);
  free(all);
  lzn_context_free(ctx);
  const float bad[] = {INFINITY, -INFINITY};
  for (int i = 0; i < 2; i++) {
    p.predictor_threshold = bad[i];
    ck_assert_int_eq(lzn_context_create(model, &p, &ctx), LZN_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(lzn_last_error(), "predictor_threshold"));
  }
  p = lzn_context_default_params();
  p.use_predictor = 2;
  ck_assert_int_eq(lzn_context_create(model, &p, &ctx), LZN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "use_predictor"));
  p = lzn_context_default_params();
  p.collect_recall = -1;
  ck_assert_int_eq(lzn_context_create(model, &p, &ctx), LZN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "collect_recall"));
  free(r.logits), free(r.base.logits);
  lzn_model_free(model);
}
END_TEST

/* ------------------------------------------------------- broken files */

static char scratch[64];

/* The fixture's predictor file with its bytes patched by `patch`, written
 * to a scratch file; returns its path. */
static const char *patched_predictor(void (*patch)(char *bytes, size_t size, lzn_st_file *f)) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s/predictor.safetensors", data_dir(), fixture);
  char *bytes;
  size_t size;
  ck_assert_int_eq(lzn_read_file(path, &bytes, &size), LZN_OK);
  lzn_st_file f;
  ck_assert_int_eq(lzn_st_parse(bytes, size, path, &f), LZN_OK);
  patch(bytes, size, &f);
  lzn_st_close(&f);
  snprintf(scratch, sizeof scratch, "/tmp/lzn_predictor_XXXXXX");
  const int fd = mkstemp(scratch);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, bytes, size), (ssize_t)size);
  close(fd);
  free(bytes);
  return scratch;
}

static void put_nan(char *bytes, size_t size, lzn_st_file *f) {
  (void)bytes, (void)size;
  for (size_t i = 0; i < f->n_tensors; i++)
    if (strcmp(f->tensors[i].name, "layers.0.predictor.w2") == 0) {
      const float nan = NAN;
      memcpy((char *)f->tensors[i].data + 4 * 17, &nan, 4);
    }
}

static void rename_w2(char *bytes, size_t size, lzn_st_file *f) {
  (void)f;
  char *hit = memmem(bytes, size, "layers.0.predictor.w2", 21);
  ck_assert_ptr_nonnull(hit);
  hit[20] = '9'; /* "layers.0.predictor.w9": w1 without w2 */
}

static void move_to_layer_5(char *bytes, size_t size, lzn_st_file *f) {
  (void)f;
  for (char *hit; (hit = memmem(bytes, size, "layers.0.predictor.w", 20)) != NULL;) hit[7] = '5';
}

static void bad_activation(char *bytes, size_t size, lzn_st_file *f) {
  (void)f;
  char *hit = memmem(bytes, size, "\"none\"", 6);
  ck_assert_ptr_nonnull(hit);
  memcpy(hit, "\"gelu\"", 6);
}

static void expect_load(const char *predictor_path, lzn_status status, const char *words) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s", data_dir(), fixture);
  lzn_model_params p = lzn_model_default_params();
  p.predictor_path = predictor_path;
  lzn_model *m = (lzn_model *)1;
  const lzn_status s = lzn_model_load(path, &p, &m);
  ck_assert_msg(s == status, "%s: got %s (%s)", predictor_path, lzn_status_str(s), lzn_last_error());
  if (status != LZN_OK) {
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(lzn_last_error(), words) != NULL, "\"%s\" lacks \"%s\"", lzn_last_error(), words);
  } else {
    lzn_model_free(m);
  }
}

START_TEST(broken_predictors_are_reported) {
  expect_load(patched_predictor(put_nan), LZN_ERR_FORMAT, "layers.0.predictor.w2");
  unlink(scratch);
  expect_load(patched_predictor(rename_w2), LZN_ERR_FORMAT, "layers.0.predictor.w2");
  unlink(scratch);
  /* Layer 5 does not exist (2 layers): its tensors are ignored, and the
   * model runs without a predictor. Documented: missing layers run without. */
  expect_load(patched_predictor(move_to_layer_5), LZN_OK, "");
  unlink(scratch);
  expect_load(patched_predictor(bad_activation), LZN_ERR_FORMAT, "gelu");
  unlink(scratch);
  expect_load("/nonexistent/predictor.safetensors", LZN_ERR_IO, "/nonexistent/predictor.safetensors");
  /* "" loads none, even beside a sidecar. */
  char path[600];
  snprintf(path, sizeof path, "%s/%s", data_dir(), fixture);
  lzn_model_params p = lzn_model_default_params();
  p.predictor_path = "";
  lzn_model *m = NULL;
  ck_assert_int_eq(lzn_model_load(path, &p, &m), LZN_OK);
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_model_get_info(m, &info);
  ck_assert_int_eq(info.has_predictor, 0);
  lzn_model_free(m);
  /* A predictor meant for another model: d_model 60 != opt-postln's 40. */
  snprintf(path, sizeof path, "%s/opt-postln", data_dir());
  char predictor[600];
  snprintf(predictor, sizeof predictor, "%s/%s/predictor.safetensors", data_dir(), fixture);
  p.predictor_path = predictor;
  ck_assert_int_eq(lzn_model_load(path, &p, &m), LZN_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "layers.0.predictor.w1"));
}
END_TEST

static Suite *predictor_suite(void) {
  Suite *s = suite_create("predictor");
  TCase *ref = tcase_create("reference");
  tcase_set_timeout(ref, 30);
  tcase_add_test(ref, predictor_matches_reference);
  tcase_add_test(ref, auto_keeps_the_predictor_on_the_dense_path);
  tcase_add_test(ref, predictor_stats_are_exact);
  tcase_add_test(ref, threshold_override);
  suite_add_tcase(s, ref);
  TCase *bad = tcase_create("bad input");
  tcase_add_test(bad, broken_predictors_are_reported);
  suite_add_tcase(s, bad);
  return s;
}

int main(void) { return run_suite(predictor_suite()); }
