/*
 * test_llama.c: the LLaMA family (LlamaForCausalLM, MistralForCausalLM,
 * BambooForCausalLM) against PyTorch: every fixture of
 * tools/fixtures/make_llama_fixtures.py (an independent float64 forward) in DENSE, SPARSE
 * and AUTO, decode == prefill, the exact active fractions of the gate, and
 * each malformed config to its status.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/llama_config.h"
#include "core/file.h"
#include "model/model.h" /* where a memory model keeps its copy */
#include "reference.h"

/* fp32 against a float64 reference through two layers. */
#define TOL_REFERENCE 1e-4
/* The same arithmetic in another order of summation. */
#define TOL_SPARSE_VS_DENSE 1e-5

static const char *const fixtures[] = {
    "llama-gqa",     "llama-mha",  "llama-mqa",   "llama-headdim", "llama-fatrelu",
    "llama-drelu",   "llama-silu", "llama-bias",  "llama-rope",    "llama-mistral",
    "llama-bf16",    "llama-f16",
    /* the trained model, relative to the repository */
    "models/tiny-llama"};
#define N_FIXTURES ((int)(sizeof fixtures / sizeof fixtures[0]))

static const lzn_mlp_mode modes[] = {LZN_MLP_DENSE, LZN_MLP_SPARSE, LZN_MLP_AUTO};
static const char *const mode_names[] = {"dense", "sparse", "auto"};

START_TEST(llama_matches_pytorch) {
  const char *name = fixtures[_i];
  reference r;
  load_reference(name, &r);
  lzn_model *model = load_model(r.path);
  /* The matrices' bytes: the embedding, an untied head, and per layer q, k,
   * v, o (GQA: k and v smaller), gate, up and W_down^T, in the file's type. */
  lzn_model_info info = {.struct_size = sizeof info};
  ck_assert_int_eq(lzn_model_get_info(model, &info), LZN_OK);
  ck_assert_int_eq(info.gated, 1);
  const int64_t d = info.d_model, f = info.d_ff, q = (int64_t)info.n_heads * info.head_dim;
  const int64_t kv = (int64_t)info.n_kv_heads * info.head_dim;
  const int64_t row_d = lzn_weight_row_bytes(info.weight_type, d), row_q = lzn_weight_row_bytes(info.weight_type, q);
  const int tied = strstr(name, "mqa") != NULL;
  const int64_t expect = (int64_t)info.vocab_size * row_d * (tied ? 1 : 2) +
                         info.n_layers * ((q + 2 * kv) * row_d + d * row_q + 3 * f * row_d);
  ck_assert_int_eq(info.weight_bytes, expect);
  const size_t n = (size_t)r.n_tokens * (size_t)r.vocab;
  float *by_mode[3];
  for (int m = 0; m < 3; m++) {
    lzn_context *ctx = make_context(model, modes[m], 1);
    by_mode[m] = run_all(ctx, &r);
    const double err = max_abs_diff(by_mode[m], r.logits, n) / r.scale;
    ck_assert_msg(err <= TOL_REFERENCE, "%s %s: error %.3g", name, mode_names[m], err);
    /* The gate's active fraction per layer is the reference's, exactly
     * (the fixtures keep every gate value away from the threshold). */
    lzn_layer_stats stats[16] = {{.struct_size = sizeof(lzn_layer_stats)}};
    ck_assert_int_eq(lzn_context_stats(ctx, stats, 16), LZN_OK);
    for (int l = 0; l < r.n_layers; l++) {
      ck_assert_msg(fabs(stats[l].active_fraction - r.active_fraction[l]) < 1e-5,
                    "%s %s layer %d: active %.6f, reference %.6f", name, mode_names[m], l,
                    stats[l].active_fraction, r.active_fraction[l]);
      ck_assert_int_eq(stats[l].never_fired, r.never_fired[l]);
    }
    lzn_context_free(ctx);
  }
  const double sd = max_abs_diff(by_mode[1], by_mode[0], n) / r.scale;
  ck_assert_msg(sd <= TOL_SPARSE_VS_DENSE, "%s: sparse vs dense %.3g", name, sd);
  for (int m = 0; m < 3; m++) free(by_mode[m]);
  free(r.logits);
  lzn_model_free(model);
}
END_TEST

/* Token by token through the KV cache (rotary angles of each position,
 * GQA over the cached heads) == the whole prompt at once. */
START_TEST(llama_decode_matches_prefill) {
  const char *name = fixtures[_i];
  reference r;
  load_reference(name, &r);
  lzn_model *model = load_model(r.path);
  lzn_context *ctx = make_context(model, LZN_MLP_SPARSE, _i % 2 ? 2 : 1);
  float *one = malloc(sizeof(float) * (size_t)r.vocab);
  double worst = 0.0;
  for (int t = 0; t < r.n_tokens; t++) {
    ck_assert_int_eq(lzn_forward(ctx, &r.tokens[t], 1, one, LZN_LOGITS_LAST), LZN_OK);
    const double e = max_abs_diff(one, r.logits + (size_t)t * (size_t)r.vocab, (size_t)r.vocab) / r.scale;
    if (e > worst) worst = e;
  }
  ck_assert_msg(worst <= TOL_REFERENCE, "%s: decode error %.3g", name, worst);
  free(one);
  free(r.logits);
  lzn_context_free(ctx);
  lzn_model_free(model);
}
END_TEST

/* FATReLU: the context's threshold replaces the config's; a larger one
 * makes the gate sparser, and SPARSE still equals DENSE. SiLU: a threshold
 * makes SwiGLU sparse (the approximation), dense-only without one. */
START_TEST(thresholds_override_and_sparsify) {
  const char *names[] = {"llama-fatrelu", "llama-silu"};
  for (int k = 0; k < 2; k++) {
    reference r;
    load_reference(names[k], &r);
    lzn_model *model = load_model(r.path);
    const size_t n = (size_t)r.n_tokens * (size_t)r.vocab;
    float *out[2];
    double active[2];
    for (int m = 0; m < 2; m++) {
      lzn_context_params p = lzn_context_default_params();
      p.mlp_mode = m ? LZN_MLP_SPARSE : LZN_MLP_DENSE;
      p.threshold = 0.5f;
      p.kv_type = LZN_KV_F32; /* exact K/V: compared with PyTorch at 1e-4 */
      lzn_context *ctx = NULL;
      ck_assert_int_eq(lzn_context_create(model, &p, &ctx), LZN_OK);
      out[m] = run_all(ctx, &r);
      lzn_layer_stats stats[16] = {{.struct_size = sizeof(lzn_layer_stats)}};
      lzn_context_stats(ctx, stats, 16);
      active[m] = stats[0].active_fraction;
      if (m) ck_assert_int_gt(stats[0].sparse_calls, 0);
      lzn_context_free(ctx);
    }
    ck_assert_msg(active[0] < r.active_fraction[0], "%s: threshold 0.5 gives %.3f, not below %.3f",
                  names[k], active[0], r.active_fraction[0]);
    ck_assert(fabs(active[0] - active[1]) < 1e-9);
    ck_assert_msg(max_abs_diff(out[0], out[1], n) / r.scale <= TOL_SPARSE_VS_DENSE, "%s", names[k]);
    free(out[0]), free(out[1]);
    free(r.logits);
    lzn_model_free(model);
  }
}
END_TEST

/* ------------------------------------------------------------- GGUF */

/* GGUF copies made by tools/convert/lzn_convert.py (tests/data/gguf/README.md): each
 * gives the logits of the Hugging Face folder loaded in the same type. */
typedef struct gguf_copy {
  const char *file, *fixture;
  lzn_weight_type hf_type; /* the type the folder is loaded in to compare */
} gguf_copy;

static const gguf_copy gguf_copies[] = {
    /* rotate_half rows, ffn_down_t pre-transposed, F32 in place */
    {"llama-gqa.gguf", "llama-gqa", LZN_WEIGHTS_F32},
    /* llama.cpp's interleaved q/k rows, ffn_down, F16 */
    {"llama-gqa-cpp-f16.gguf", "llama-gqa", LZN_WEIGHTS_F16},
    /* PowerInfer's magic, stock keys (relu by default for PWRI), tied */
    {"llama-mqa-pwri.gguf", "llama-mqa", LZN_WEIGHTS_F32},
    /* FATReLU's threshold from lazyneuron.activation_threshold, BF16 */
    {"llama-fatrelu-bf16.gguf", "llama-fatrelu", LZN_WEIGHTS_BF16},
    /* general.architecture bamboo, stock keys: dReLU */
    {"llama-drelu.gguf", "llama-drelu", LZN_WEIGHTS_F32},
    /* the trained model quantized in Python == quantized by the library */
    {"tiny-llama-q8_0.gguf", "models/tiny-llama", LZN_WEIGHTS_Q8_0},
    {"tiny-llama-q4_0.gguf", "models/tiny-llama", LZN_WEIGHTS_Q4_0},
};

START_TEST(gguf_matches_hf) {
  const gguf_copy *g = &gguf_copies[_i];
  reference r;
  load_reference(g->fixture, &r);
  char path[600];
  snprintf(path, sizeof path, "%s/gguf/%s", data_dir(), g->file);
  lzn_model *from_gguf = load_model(path);
  lzn_model_params p = lzn_model_default_params();
  p.weight_type = g->hf_type;
  lzn_model *from_hf = NULL;
  ck_assert_int_eq(lzn_model_load(r.path, &p, &from_hf), LZN_OK);
  lzn_model_info a = {.struct_size = sizeof a}, b = {.struct_size = sizeof b};
  lzn_model_get_info(from_gguf, &a), lzn_model_get_info(from_hf, &b);
  ck_assert_int_eq(a.weight_type, b.weight_type);
  ck_assert_int_eq(a.weight_bytes, b.weight_bytes);
  ck_assert_int_eq(a.n_kv_heads, b.n_kv_heads);
  const size_t n = (size_t)r.n_tokens * (size_t)r.vocab;
  for (int m = 0; m < 2; m++) {
    lzn_context *ca = make_context(from_gguf, modes[m], 1), *cb = make_context(from_hf, modes[m], 1);
    float *la = run_all(ca, &r), *lb = run_all(cb, &r);
    const double e = max_abs_diff(la, lb, n) / r.scale;
    ck_assert_msg(e <= TOL_SPARSE_VS_DENSE, "%s %s: GGUF vs HF %.3g", g->file, mode_names[m], e);
    if (g->hf_type == LZN_WEIGHTS_F32) {
      const double ref = max_abs_diff(la, r.logits, n) / r.scale;
      ck_assert_msg(ref <= TOL_REFERENCE, "%s: vs PyTorch %.3g", g->file, ref);
    }
    free(la), free(lb);
    lzn_context_free(ca), lzn_context_free(cb);
  }
  free(r.logits);
  lzn_model_free(from_gguf);
  lzn_model_free(from_hf);
}
END_TEST

/* Logits of a and b equal to the bit over tiny-llama's reference tokens,
 * in DENSE and SPARSE. */
static void same_logits(lzn_model *a, lzn_model *b, const char *what) {
  reference r;
  load_reference("models/tiny-llama", &r);
  const size_t n = (size_t)r.n_tokens * (size_t)r.vocab;
  for (int m = 0; m < 2; m++) {
    lzn_context *ca = make_context(a, modes[m], 1), *cb = make_context(b, modes[m], 1);
    float *la = run_all(ca, &r), *lb = run_all(cb, &r);
    ck_assert_msg(memcmp(la, lb, n * sizeof(float)) == 0, "%s %s: memory and file models differ", what,
                  mode_names[m]);
    free(la), free(lb);
    lzn_context_free(ca), lzn_context_free(cb);
  }
  free(r.logits);
}

/* The memory loaders copy the image into weights memory: 2 MiB aligned (on
 * huge pages, core/buffer.h) once it is that large, as a decode wants its
 * weights; the model computes what the file's does, to the bit. The GGUF
 * image is tiny-llama's Q4_0 file padded with zeros to past 2 MiB (GGUF
 * allows trailing bytes); the safetensors one is its 4.2 MB F32 folder. */
START_TEST(memory_images_match_their_files) {
  char path[600];
  snprintf(path, sizeof path, "%s/gguf/tiny-llama-q4_0.gguf", data_dir());
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  const size_t size = (3u << 20) + 3;
  unsigned char *image = calloc(1, size);
  ck_assert_ptr_nonnull(image);
  const size_t got = fread(image, 1, size, f);
  fclose(f);
  ck_assert(got > 0 && got < size);
  lzn_model *from_file = load_model(path), *from_memory = NULL;
  ck_assert_int_eq(lzn_model_load_gguf_memory(image, size, NULL, &from_memory), LZN_OK);
  free(image); /* the model holds its own copy */
  ck_assert_uint_eq((uintptr_t)from_memory->gguf.bytes % ((uintptr_t)2 << 20), 0);
  same_logits(from_file, from_memory, "GGUF");
  lzn_model_free(from_file), lzn_model_free(from_memory);

  char *config, *weights;
  size_t config_len, weights_len;
  ck_assert_int_eq(lzn_read_file("models/tiny-llama/config.json", &config, &config_len), LZN_OK);
  ck_assert_int_eq(lzn_read_file("models/tiny-llama/model.safetensors", &weights, &weights_len), LZN_OK);
  ck_assert_uint_gt(weights_len, (size_t)2 << 20);
  from_file = load_model("models/tiny-llama");
  ck_assert_int_eq(lzn_model_load_memory(config, config_len, weights, weights_len, NULL, &from_memory), LZN_OK);
  free(config), free(weights);
  ck_assert_uint_eq((uintptr_t)from_memory->weights.files[0].bytes % ((uintptr_t)2 << 20), 0);
  same_logits(from_file, from_memory, "safetensors");
  lzn_model_free(from_file), lzn_model_free(from_memory);
}
END_TEST

typedef struct bad_gguf {
  const char *file;
  lzn_status status;
  const char *words;
} bad_gguf;

static const bad_gguf bad_ggufs[] = {
    {"bad-arch.gguf", LZN_ERR_UNSUPPORTED, "gpt2"},
    {"bad-missing-key.gguf", LZN_ERR_FORMAT, "llama.block_count"},
    {"bad-activation.gguf", LZN_ERR_UNSUPPORTED, "gelu"},
    {"bad-shape.gguf", LZN_ERR_FORMAT, "token_embd.weight"},
    {"bad-key-type.gguf", LZN_ERR_FORMAT, "llama.attention.head_count"},
    {"bad-missing-tensor.gguf", LZN_ERR_FORMAT, "blk.1.ffn_up.weight"},
};

START_TEST(bad_gguf_models) {
  const bad_gguf *g = &bad_ggufs[_i];
  char path[600];
  snprintf(path, sizeof path, "%s/gguf/%s", data_dir(), g->file);
  lzn_model *model = (lzn_model *)1;
  const lzn_status s = lzn_model_load(path, NULL, &model);
  ck_assert_msg(s == g->status, "%s: got %s (%s)", g->file, lzn_status_str(s), lzn_last_error());
  ck_assert_ptr_null(model);
  ck_assert_msg(strstr(lzn_last_error(), g->words) != NULL, "%s: \"%s\" lacks \"%s\"", g->file,
                lzn_last_error(), g->words);
}
END_TEST

/* --------------------------------------------------------- bad configs */

static const char *const good_config =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 40,"
    " \"intermediate_size\": 67, \"num_attention_heads\": 4, \"num_key_value_heads\": 2,"
    " \"num_hidden_layers\": 2, \"vocab_size\": 97, \"max_position_embeddings\": 64,"
    " \"hidden_act\": \"relu\", \"rope_scaling\": null}";

typedef struct bad_llama_config {
  const char *from, *to;
  lzn_status status;
  const char *words;
} bad_llama_config;

static const bad_llama_config bad_configs[] = {
    {"\"hidden_act\": \"relu\"", "\"hidden_act\": \"gelu\"", LZN_ERR_UNSUPPORTED, "gelu"},
    {"\"hidden_act\": \"relu\"", "\"hidden_act\": \"fatrelu\"", LZN_ERR_FORMAT, "hidden_act_param"},
    {"\"hidden_act\": \"relu\"", "\"hidden_act\": 3", LZN_ERR_FORMAT, "hidden_act"},
    {"\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4}",
     LZN_ERR_UNSUPPORTED, "yarn"},
    {"\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"dynamic\", \"factor\": 2}",
     LZN_ERR_UNSUPPORTED, "dynamic"},
    {"\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"linear\"}", LZN_ERR_FORMAT, "factor"},
    {"\"rope_scaling\": null", "\"rope_scaling\": 2", LZN_ERR_FORMAT, "rope_scaling"},
    {"\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3", LZN_ERR_FORMAT, "num_key_value_heads"},
    {"\"hidden_size\": 40", "\"hidden_size\": 42", LZN_ERR_FORMAT, "head_dim"},
    {"\"intermediate_size\": 67,", "", LZN_ERR_FORMAT, "intermediate_size"},
    {"\"rope_scaling\": null", "\"rope_scaling\": null, \"mlp_bias\": true", LZN_ERR_UNSUPPORTED, "mlp_bias"},
    {"\"rope_scaling\": null", "\"rope_scaling\": null, \"head_dim\": 5", LZN_ERR_FORMAT, "odd"},
    {"\"rope_scaling\": null", "\"rope_scaling\": null, \"rms_norm_eps\": -1", LZN_ERR_FORMAT, "rms_norm_eps"},
    {"\"rope_scaling\": null", "\"rope_scaling\": null, \"rope_theta\": \"x\"", LZN_ERR_FORMAT, "rope_theta"},
};

START_TEST(bad_llama_configs) {
  const bad_llama_config *b = &bad_configs[_i];
  char json[2048];
  const char *at = strstr(good_config, b->from);
  ck_assert_ptr_nonnull(at);
  snprintf(json, sizeof json, "%.*s%s%s", (int)(at - good_config), good_config, b->to,
           at + strlen(b->from));
  lzn_llama_config c;
  ck_assert_int_eq(lzn_llama_config_parse(good_config, strlen(good_config), "x/config.json", &c), LZN_OK);
  ck_assert_int_eq(c.head_dim, 10);
  ck_assert_int_eq(c.activation, LZN_ACT_RELU);
  const lzn_status s = lzn_llama_config_parse(json, strlen(json), "x/config.json", &c);
  ck_assert_msg(s == b->status, "%s: got %s (%s)", json, lzn_status_str(s), lzn_last_error());
  ck_assert_msg(strstr(lzn_last_error(), b->words) != NULL, "\"%s\" lacks \"%s\"", lzn_last_error(),
                b->words);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "x/config.json"));
  ck_assert_int_eq(c.hidden_size, 0); /* zeroed on failure */
}
END_TEST

START_TEST(llama_defaults_and_families) {
  lzn_llama_config c;
  /* LLaMA-1 style: no num_key_value_heads, rope_theta, attention_bias, tie. */
  const char *v1 = "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 100,"
                   " \"num_attention_heads\": 4, \"num_hidden_layers\": 1, \"vocab_size\": 10,"
                   " \"max_position_embeddings\": 8}";
  ck_assert_int_eq(lzn_llama_config_parse(v1, strlen(v1), NULL, &c), LZN_OK);
  ck_assert_int_eq(c.num_key_value_heads, 4);
  ck_assert_int_eq(c.head_dim, 16);
  ck_assert(c.rope_theta == 10000.0 && c.rms_norm_eps == 1e-6 && c.rope_linear_factor == 1.0);
  ck_assert_int_eq(c.tie_word_embeddings, 0);
  ck_assert_int_eq(c.activation, LZN_ACT_SILU); /* LlamaConfig's default hidden_act */
  const char *bamboo = "{\"architectures\": [\"BambooForCausalLM\"], \"hidden_size\": 64,"
                       " \"intermediate_size\": 100, \"num_attention_heads\": 4,"
                       " \"num_hidden_layers\": 1, \"vocab_size\": 10, \"max_position_embeddings\": 8,"
                       " \"hidden_act\": \"relu\"}";
  ck_assert_int_eq(lzn_llama_config_parse(bamboo, strlen(bamboo), NULL, &c), LZN_OK);
  ck_assert_int_eq(c.activation, LZN_ACT_DRELU);
  ck_assert(lzn_llama_config_matches(bamboo, strlen(bamboo)));
  ck_assert(!lzn_llama_config_matches("{\"model_type\": \"opt\"}", 21));
}
END_TEST

static Suite *llama_suite(void) {
  Suite *s = suite_create("llama");
  TCase *torch = tcase_create("pytorch");
  tcase_set_timeout(torch, 60);
  tcase_add_loop_test(torch, llama_matches_pytorch, 0, N_FIXTURES);
  tcase_add_loop_test(torch, llama_decode_matches_prefill, 0, N_FIXTURES);
  tcase_add_test(torch, thresholds_override_and_sparsify);
  tcase_add_loop_test(torch, gguf_matches_hf, 0, (int)(sizeof gguf_copies / sizeof gguf_copies[0]));
  tcase_add_test(torch, memory_images_match_their_files);
  suite_add_tcase(s, torch);
  TCase *config = tcase_create("config");
  tcase_add_loop_test(config, bad_llama_configs, 0, (int)(sizeof bad_configs / sizeof bad_configs[0]));
  tcase_add_test(config, llama_defaults_and_families);
  tcase_add_loop_test(config, bad_gguf_models, 0, (int)(sizeof bad_ggufs / sizeof bad_ggufs[0]));
  suite_add_tcase(s, config);
  return s;
}

int main(void) { return run_suite(llama_suite()); }
