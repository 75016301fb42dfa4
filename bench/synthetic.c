/*
 * synthetic.c: OPT-shaped models with random weights, made in memory.
 *
 * The weights are scaled so that the model behaves like a trained ReLU model
 * where it matters to lazyneuron, not in what it predicts:
 *  - every layer norm is the identity affine (weight 1, bias 0), so the input
 *    of fc1 has zero mean and unit variance over its d_model entries;
 *  - fc1 rows have variance 1/d_model, so for any such input each
 *    pre-activation is ~N(0, 1) over the neurons (a sum of d_model uniform
 *    terms); a bias of -Phi^-1(1 - density) then lets a fraction `density`
 *    fire, and which ones depends on the token, because the input does;
 *  - fc2 has variance 1/(d_ff * density), so its output stays O(1) whatever
 *    the density, and attention matrices 1/d_model, so each layer adds O(1)
 *    to the residual stream;
 *  - token and position embeddings have variance 1/d_model, so the tied LM
 *    head gives logits of unit variance.
 * Each tensor's values are a hash of (seed, tensor, index): they do not
 * depend on the thread count, and the fill runs in parallel (5 GB in
 * seconds).
 */
#include "synthetic.h"


#include <dnnl.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/arch.h"
#include "core/wtype.h"
#include "cpu/cpu.h"
#include "model/model.h"

#define LZN_SYNTHETIC_VOCAB 50272
#define LZN_SYNTHETIC_POSITIONS 2048
/* Share of the physical RAM the weights may take: the rest is for the KV
 * cache, the scratch, the OS and whoever else runs. */
#define LZN_SYNTHETIC_RAM_SHARE 0.70

typedef struct synthetic_shape {
  const char *name;
  int gated; /* 0: OPT, 1: LLaMA family */
  int d_model, d_ff, n_layers, n_heads, n_kv_heads, vocab;
} synthetic_shape;

/* From the Hugging Face configs of facebook/opt-*, meta-llama/Llama-2-7b
 * (ReluLLaMA-7B and ProSparse-LLaMA-2-7B share its shapes) and
 * mistralai/Mistral-7B-v0.1 (TurboSparse-Mistral's shapes). */
static const synthetic_shape shapes[] = {
    {"opt-125m", 0, 768, 3072, 12, 12, 12, LZN_SYNTHETIC_VOCAB},
    {"opt-1.3b", 0, 2048, 8192, 24, 32, 32, LZN_SYNTHETIC_VOCAB},
    {"opt-6.7b", 0, 4096, 16384, 32, 32, 32, LZN_SYNTHETIC_VOCAB},
    {"llama-7b", 1, 4096, 11008, 32, 32, 32, 32000},
    {"relullama-7b", 1, 4096, 11008, 32, 32, 32, 32000},
    {"mistral-7b", 1, 4096, 14336, 32, 32, 8, 32000},
};

/* ------------------------------------------------------ normal quantile */

double lzn_inverse_normal_cdf(double p) {
  /* Peter J. Acklam's rational approximations (relative error 1.15e-9),
   * central region and tails. */
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                             -2.759285104469687e+02, 1.383577518672690e+02,
                             -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                             -1.556989798598866e+02, 6.680131188771972e+01,
                             -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                             -2.400758277161838e+00, -2.549732539343734e+00,
                             4.374664141464968e+00, 2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                             2.445134137142996e+00, 3.754408661907416e+00};
  const double p_low = 0.02425;
  if (!(p >= 0.0 && p <= 1.0)) return NAN;
  if (p == 0.0) return -INFINITY;
  if (p == 1.0) return INFINITY;
  double x;
  if (p < p_low || p > 1.0 - p_low) {
    const double q = sqrt(-2.0 * log(p < p_low ? p : 1.0 - p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    if (p > 1.0 - p_low) x = -x;
  } else {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
  }
  /* One step of Halley's method on Phi(x) - p, with Phi from erfc. */
  const double e = 0.5 * erfc(-x / sqrt(2.0)) - p;
  const double u = e * sqrt(2.0 * M_PI) * exp(x * x / 2.0);
  return x - u / (1.0 + x * u / 2.0);
}

/* ---------------------------------------------------------------- fills */

/* SplitMix64's output function: a good 64-bit hash of a counter. */
static uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Elements [first, first + n) of a tensor whose element i is uniform in
 * (-a, a), a = sqrt(3 variance), so of that variance and mean 0: two
 * values per hash of (key, i / 2), 24 bits each. */
static void fill_uniform(float *x, size_t first, size_t n, double variance, uint64_t key) {
  const float half_width = (float)sqrt(3.0 * variance);
  const float scale = 2.0f * half_width / 16777216.0f; /* 2^24 steps across (-a, a) */
#pragma omp parallel for schedule(static) if (n > 131072)
  for (int64_t k = 0; k < (int64_t)n; k++) {
    const size_t i = first + (size_t)k;
    const uint64_t r = mix64(key + (uint64_t)(i / 2));
    const uint32_t bits = i % 2 ? (uint32_t)((r >> 16) & 0xffffff) : (uint32_t)(r >> 40);
    /* (k + 0.5) steps from -a: symmetric about 0, never exactly +-a. */
    x[k] = ((float)bits + 0.5f) * scale - half_width;
  }
}

static void fill_constant(float *x, size_t n, float value) {
  for (size_t i = 0; i < n; i++) x[i] = value;
}

/* The generator's state for one model: each tensor gets the next key. */
typedef struct filler {
  lzn_model *model;
  uint64_t seed, tensor;
  lzn_weight_type type;                  /* of the weight matrices */
  const lzn_kernel_table *kernels; /* from_f32 for types other than F32 */
} filler;

/* Rows generated at a time for a matrix of another type than F32: the
 * fp32 values exist only for a chunk, so a model that fits in its type
 * never needs its fp32 size. */
#define SYNTHETIC_CHUNK_ROWS 1024

static lzn_status random_tensor(filler *fl, size_t n, double variance, const float **out) {
  void *buffer;
  lzn_status s = lzn_model_own(fl->model, n * sizeof(float), &buffer);
  if (s != LZN_OK) return s;
  float *x = buffer;
  fill_uniform(x, 0, n, variance, mix64(fl->seed ^ mix64(++fl->tensor)));
  *out = x;
  return LZN_OK;
}

static lzn_status constant_tensor(filler *fl, size_t n, float value, const float **out) {
  void *buffer;
  lzn_status s = lzn_model_own(fl->model, n * sizeof(float), &buffer);
  if (s != LZN_OK) return s;
  float *x = buffer;
  fill_constant(x, n, value);
  *out = x;
  return LZN_OK;
}

/* A random matrix [rows][cols] with that variance in the filler's type:
 * the same values as an F32 one, then rounded to the type. */
static lzn_status random_matrix(filler *fl, size_t rows, size_t cols, double variance,
                                lzn_matrix *out) {
  if (fl->type == LZN_WEIGHTS_F32) {
    const float *data;
    lzn_status s = random_tensor(fl, rows * cols, variance, &data);
    *out = lzn_matrix_make(LZN_WEIGHTS_F32, s == LZN_OK ? data : NULL, (int64_t)rows, (int64_t)cols);
    return s;
  }
  *out = lzn_matrix_make(fl->type, NULL, (int64_t)rows, (int64_t)cols);
  void *buffer;
  lzn_status s = lzn_model_own(fl->model, rows * out->row_bytes, &buffer);
  float *chunk = malloc(SYNTHETIC_CHUNK_ROWS * cols * sizeof *chunk);
  if (chunk == NULL) s = lzn_fail(LZN_ERR_NOMEM, "lzn_model_synthetic: out of memory");
  if (s != LZN_OK) {
    free(chunk);
    return s;
  }
  const uint64_t key = mix64(fl->seed ^ mix64(++fl->tensor));
  const lzn_from_f32_fn from_f32 = fl->kernels->type[fl->type].from_f32.fn;
  const size_t row_bytes = out->row_bytes;
  for (size_t r0 = 0; r0 < rows; r0 += SYNTHETIC_CHUNK_ROWS) {
    const size_t n = rows - r0 < SYNTHETIC_CHUNK_ROWS ? rows - r0 : SYNTHETIC_CHUNK_ROWS;
    fill_uniform(chunk, r0 * cols, n * cols, variance, key);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < (int64_t)n; r++)
      from_f32((char *)buffer + (r0 + (size_t)r) * row_bytes, chunk + (size_t)r * cols, cols);
  }
  free(chunk);
  out->data = buffer;
  return LZN_OK;
}

/* The [cols][rows] copy of a [rows][cols] matrix of an element type (F32,
 * F16, BF16): the stored nn.Linear layout that such a checkpoint also
 * provides, mapped in place at load (model.h: down; the dense path reads
 * it). A synthetic F16 or BF16 model without it ran its dense
 * down-projection on W_down^T, which no F16 or BF16 checkpoint does. */
static lzn_status transposed_copy(filler *fl, const lzn_matrix *src, lzn_matrix *out) {
  const size_t rows = (size_t)src->rows, cols = (size_t)src->cols, elem = src->row_bytes / cols;
  void *buffer;
  lzn_status s = lzn_model_own(fl->model, rows * cols * elem, &buffer);
  if (s != LZN_OK) return s;
  const char *from = src->data;
  char *dst = buffer;
  enum { BLOCK = 64 };
  const int64_t row_blocks = (int64_t)((rows + BLOCK - 1) / BLOCK);
#pragma omp parallel for schedule(static)
  for (int64_t rb = 0; rb < row_blocks; rb++)
    for (size_t c0 = 0; c0 < cols; c0 += BLOCK)
      for (size_t r = (size_t)rb * BLOCK; r < (size_t)(rb + 1) * BLOCK && r < rows; r++)
        for (size_t c = c0; c < c0 + BLOCK && c < cols; c++) {
          /* Sizes the compiler knows: a move each, not a call to memcpy. */
          if (elem == sizeof(float)) memcpy(dst + (c * rows + r) * 4, from + (r * cols + c) * 4, 4);
          else memcpy(dst + (c * rows + r) * 2, from + (r * cols + c) * 2, 2);
        }
  *out = lzn_matrix_make(src->type, dst, (int64_t)cols, (int64_t)rows);
  return LZN_OK;
}

static lzn_status make_layer(filler *fl, lzn_layer *w, float up_bias, double density) {
  const lzn_model *m = fl->model;
  const size_t d = (size_t)m->d_model, f = (size_t)m->d_ff;
  const double attn_var = 1.0 / (double)d;
  lzn_status s = LZN_OK;
  if (s == LZN_OK) s = constant_tensor(fl, d, 1.0f, &w->attn_norm.weight);
  if (s == LZN_OK) s = constant_tensor(fl, d, 0.0f, &w->attn_norm.bias);
  if (s == LZN_OK) s = random_matrix(fl, d, d, attn_var, &w->q);
  if (s == LZN_OK) s = random_matrix(fl, d, d, attn_var, &w->k);
  if (s == LZN_OK) s = random_matrix(fl, d, d, attn_var, &w->v);
  if (s == LZN_OK) s = random_matrix(fl, d, d, attn_var, &w->o);
  if (s == LZN_OK) s = constant_tensor(fl, d, 0.0f, &w->q_b);
  if (s == LZN_OK) s = constant_tensor(fl, d, 0.0f, &w->k_b);
  if (s == LZN_OK) s = constant_tensor(fl, d, 0.0f, &w->v_b);
  if (s == LZN_OK) s = constant_tensor(fl, d, 0.0f, &w->o_b);
  if (s == LZN_OK) s = constant_tensor(fl, d, 1.0f, &w->mlp_norm.weight);
  if (s == LZN_OK) s = constant_tensor(fl, d, 0.0f, &w->mlp_norm.bias);
  if (s == LZN_OK) s = random_matrix(fl, f, d, 1.0 / (double)d, &w->up);
  if (s == LZN_OK) s = constant_tensor(fl, f, up_bias, &w->up_b);
  if (s == LZN_OK) s = random_matrix(fl, f, d, 1.0 / ((double)f * density), &w->down_t);
  /* An F32, F16 or BF16 checkpoint also holds W_down as stored, for the dense path. */
  if (s == LZN_OK && !lzn_wtype_is_block(fl->type)) s = transposed_copy(fl, &w->down_t, &w->down);
  if (s == LZN_OK) s = constant_tensor(fl, d, 0.0f, &w->down_b);
  return s;
}

/* A LLaMA-family layer: RMS norms of weight 1, no biases; gate and up rows
 * of variance 1 / d_model, so each gate value is ~N(0, 1) over the neurons
 * for a unit-RMS input, and the FATReLU threshold Phi^-1(1 - density) lets
 * a fraction `density` fire (the ProSparse form: no bias to shift). */
static lzn_status make_gated_layer(filler *fl, lzn_layer *w, double density) {
  const lzn_model *m = fl->model;
  const size_t d = (size_t)m->d_model, f = (size_t)m->d_ff, hd = (size_t)m->head_dim;
  const size_t q_dim = (size_t)m->n_heads * hd, kv_dim = (size_t)m->n_kv_heads * hd;
  const double attn_var = 1.0 / (double)d;
  lzn_status s = constant_tensor(fl, d, 1.0f, &w->attn_norm.weight);
  if (s == LZN_OK) s = random_matrix(fl, q_dim, d, attn_var, &w->q);
  if (s == LZN_OK) s = random_matrix(fl, kv_dim, d, attn_var, &w->k);
  if (s == LZN_OK) s = random_matrix(fl, kv_dim, d, attn_var, &w->v);
  if (s == LZN_OK) s = random_matrix(fl, d, q_dim, 1.0 / (double)q_dim, &w->o);
  if (s == LZN_OK) s = constant_tensor(fl, d, 1.0f, &w->mlp_norm.weight);
  if (s == LZN_OK) s = random_matrix(fl, f, d, 1.0 / (double)d, &w->gate);
  if (s == LZN_OK) s = random_matrix(fl, f, d, 1.0 / (double)d, &w->up);
  if (s == LZN_OK) s = random_matrix(fl, f, d, 1.0 / ((double)f * density), &w->down_t);
  if (s == LZN_OK && !lzn_wtype_is_block(fl->type)) s = transposed_copy(fl, &w->down_t, &w->down);
  return s;
}

/* ---------------------------------------------------------------- model */

/* Bytes of the weights in a type: what stays fixed (the tied embedding in
 * the type, learned positions and the final norm in fp32), and what each
 * layer adds (6 matrices in the type, W_down as stored too for F32, F16
 * and BF16, norms
 * and biases in fp32). */
static double fixed_bytes(const synthetic_shape *sh, lzn_weight_type type) {
  const double d = sh->d_model, embedding = (double)sh->vocab * (double)lzn_wtype_row_bytes(type, (size_t)d);
  if (sh->gated) return 2.0 * embedding + 4.0 * d; /* untied LM head, final norm */
  return embedding + 4.0 * ((LZN_SYNTHETIC_POSITIONS + 2.0) * d + 2.0 * d);
}

static double layer_bytes(const synthetic_shape *sh, lzn_weight_type type) {
  const double d = sh->d_model, f = sh->d_ff, hd = (double)sh->d_model / sh->n_heads;
  const double row_d = (double)lzn_wtype_row_bytes(type, (size_t)d);
  const double attention = (2.0 * d + 2.0 * sh->n_kv_heads * hd) * row_d;
  const double mlp = (sh->gated ? 3.0 : 2.0) * f * row_d + (lzn_wtype_is_block(type) ? 0.0 : f * row_d);
  return attention + mlp + 4.0 * (f + 9.0 * d);
}

static lzn_status check_memory(const synthetic_shape *sh, int n_layers, lzn_weight_type type) {
  const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return LZN_OK; /* unknown: let the allocation decide */
  const double ram = (double)pages * (double)page_size, budget = LZN_SYNTHETIC_RAM_SHARE * ram;
  const double fixed = fixed_bytes(sh, type), per_layer = layer_bytes(sh, type);
  const double need = fixed + n_layers * per_layer;
  if (need <= budget) return LZN_OK;
  const double fit = floor((budget - fixed) / per_layer);
  if (fit < 1.0)
    return lzn_fail(LZN_ERR_NOMEM, "lzn_model_synthetic: %s does not fit in %.0f %% of the "
                    "%.1f GiB of RAM even with one layer", sh->name,
                    100.0 * LZN_SYNTHETIC_RAM_SHARE, ram / (1u << 30));
  return lzn_fail(LZN_ERR_NOMEM, "lzn_model_synthetic: %s with %d layers needs %.1f GiB of %s "
                  "weights, more than %.0f %% of the %.1f GiB of RAM; at most %.0f layers fit "
                  "(pass n_layers)", sh->name, n_layers, need / (1u << 30), lzn_wtype_name(type),
                  100.0 * LZN_SYNTHETIC_RAM_SHARE, ram / (1u << 30), fit);
}

static void set_config(lzn_model *m, const synthetic_shape *sh, int n_layers, double density) {
  if (sh->gated) {
    lzn_llama_config c;
    memset(&c, 0, sizeof c);
    c.hidden_size = sh->d_model, c.intermediate_size = sh->d_ff;
    c.num_attention_heads = sh->n_heads, c.num_key_value_heads = sh->n_kv_heads;
    c.head_dim = sh->d_model / sh->n_heads, c.num_hidden_layers = n_layers;
    c.vocab_size = sh->vocab, c.max_position_embeddings = LZN_SYNTHETIC_POSITIONS;
    c.rms_norm_eps = 1e-5, c.rope_theta = 10000.0, c.rope_linear_factor = 1.0;
    c.activation = LZN_ACT_FATRELU;
    c.activation_threshold = density >= 1.0 ? -10.0 : lzn_inverse_normal_cdf(1.0 - density);
    snprintf(c.architecture, sizeof c.architecture, "llama");
    lzn_llama_describe(m, &c);
    return;
  }
  lzn_opt_config c;
  memset(&c, 0, sizeof c);
  c.hidden_size = sh->d_model, c.ffn_dim = sh->d_ff, c.num_attention_heads = sh->n_heads;
  c.num_hidden_layers = n_layers, c.max_position_embeddings = LZN_SYNTHETIC_POSITIONS;
  c.vocab_size = LZN_SYNTHETIC_VOCAB, c.word_embed_proj_dim = sh->d_model;
  c.do_layer_norm_before = 1, c.enable_bias = 1, c.layer_norm_elementwise_affine = 1;
  c.tie_word_embeddings = 1, c.remove_final_layer_norm = 0;
  lzn_opt_describe(m, &c); /* the sizes and description, as lzn_model_load sets them */
}

static lzn_status make_weights(lzn_model *m, double density, uint64_t seed, lzn_weight_type type,
                               const lzn_kernel_table *kernels) {
  const size_t d = (size_t)m->d_model;
  /* A neuron fires when N(0,1) + bias > 0, which has probability density
   * for bias = -Phi^-1(1 - density). At density 1 every neuron should fire:
   * +10 makes a miss a 1e-23 event. */
  const float up_bias = density >= 1.0 ? 10.0f : (float)-lzn_inverse_normal_cdf(1.0 - density);
  filler fl = {.model = m, .seed = seed, .tensor = 0, .type = type, .kernels = kernels};
  lzn_status s = random_matrix(&fl, (size_t)m->vocab, d, 1.0 / (double)d, &m->embed_tokens);
  if (m->arch.mlp == LZN_MLP_KIND_GATED) {
    if (s == LZN_OK) s = constant_tensor(&fl, d, 1.0f, &m->final_norm.weight);
    for (int l = 0; s == LZN_OK && l < m->n_layers; l++) s = make_gated_layer(&fl, &m->layers[l], density);
    if (s == LZN_OK) s = random_matrix(&fl, (size_t)m->vocab, d, 1.0 / (double)d, &m->lm_head);
    return s;
  }
  const size_t positions = (size_t)(m->max_positions + m->arch.position_offset);
  if (s == LZN_OK) s = random_tensor(&fl, positions * d, 1.0 / (double)d, &m->embed_positions);
  if (s == LZN_OK) s = constant_tensor(&fl, d, 1.0f, &m->final_norm.weight);
  if (s == LZN_OK) s = constant_tensor(&fl, d, 0.0f, &m->final_norm.bias);
  for (int l = 0; s == LZN_OK && l < m->n_layers; l++) s = make_layer(&fl, &m->layers[l], up_bias, density);
  m->lm_head = m->embed_tokens; /* tied */
  return s;
}

lzn_status lzn_model_synthetic(const char *name, float density, int n_layers, uint64_t seed,
                               lzn_model **out) {
  return lzn_model_synthetic_typed(name, density, n_layers, seed, LZN_WEIGHTS_F32, out);
}

lzn_status lzn_model_synthetic_typed(const char *name, float density, int n_layers, uint64_t seed,
                                     lzn_weight_type weight_type, lzn_model **out) {
  const char *fn = "lzn_model_synthetic";
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: out is NULL", fn);
  *out = NULL;
  if (name == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: name is NULL", fn);
  const synthetic_shape *sh = NULL;
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
    if (strcmp(name, shapes[i].name) == 0) sh = &shapes[i];
  if (sh == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: unknown model \"%s\" (known: %s)", fn, name,
                    LZN_SYNTHETIC_NAMES);
  if (!(density > 0.0f && density <= 1.0f))
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: density = %g, must be in (0, 1]", fn, (double)density);
  if (n_layers < 0)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: n_layers = %d, must be >= 0 (0: the model's %d)",
                    fn, n_layers, sh->n_layers);
  if (n_layers == 0) n_layers = sh->n_layers;
  const lzn_weight_type type = weight_type;
  if (!lzn_wtype_valid(type))
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: weight_type = %d: pass a type (not AS_STORED)", fn,
                    (int)weight_type);
  const lzn_kernel_table *kernels;
  lzn_status s = lzn_kernels_get(&kernels);
  if (s == LZN_OK) s = check_memory(sh, n_layers, type);
  if (s != LZN_OK) return s;

  lzn_model *m = calloc(1, sizeof *m);
  if (m == NULL) return lzn_fail(LZN_ERR_NOMEM, "%s: out of memory", fn);
  set_config(m, sh, n_layers, density);
  m->layers = calloc((size_t)n_layers, sizeof *m->layers);
  s = m->layers ? make_weights(m, density, seed, type, kernels)
                : lzn_fail(LZN_ERR_NOMEM, "%s: out of memory", fn);
  if (s != LZN_OK) {
    lzn_model_free(m);
    return s;
  }
  *out = m;
  return LZN_OK;
}

/* ------------------------------------------------------------ predictor */

/* The first-stage matrix of layer l (fc1, or the gate of a gated MLP),
 * rewritten as A B + in its type, A [d_ff][rank] of variance 1/rank and
 * B [rank][d_model] of variance 1/d_model: each pre-activation is still
 * ~N(0, 1) for a unit input (a sum of rank terms of variance 1/rank), so
 * the density is unchanged, but it now lies in a rank-dimensional space and
 * the predictor s = A (B x) computes it exactly (up to the type's rounding). */
static lzn_status low_rank_first_stage(filler *fl, int layer, int rank, const float **a_out,
                                       const float **b_out) {
  lzn_model *m = fl->model;
  lzn_layer *w = &m->layers[layer];
  lzn_matrix *target = m->arch.mlp == LZN_MLP_KIND_GATED ? &w->gate : &w->up;
  const size_t d = (size_t)m->d_model, f = (size_t)m->d_ff, r = (size_t)rank;
  const float *a, *b;
  lzn_status s = random_tensor(fl, f * r, 1.0 / (double)r, &a);
  if (s == LZN_OK) s = random_tensor(fl, r * d, 1.0 / (double)d, &b);
  float *chunk = s == LZN_OK ? malloc(SYNTHETIC_CHUNK_ROWS * d * sizeof *chunk) : NULL;
  if (s == LZN_OK && chunk == NULL) s = lzn_fail(LZN_ERR_NOMEM, "synthetic predictor: out of memory");
  if (s != LZN_OK) return s;
  const lzn_from_f32_fn from_f32 = fl->kernels->type[target->type].from_f32.fn;
  char *rows = (char *)(uintptr_t)target->data; /* the synthetic model's own buffer */
  for (size_t r0 = 0; r0 < f; r0 += SYNTHETIC_CHUNK_ROWS) {
    const size_t n = f - r0 < SYNTHETIC_CHUNK_ROWS ? f - r0 : SYNTHETIC_CHUNK_ROWS;
    /* chunk[n][d] = A[r0 .. r0 + n)[r] B[r][d], row-major. */
    if (dnnl_sgemm('N', 'N', (dnnl_dim_t)n, (dnnl_dim_t)d, (dnnl_dim_t)r, 1.0f, a + r0 * r,
                   (dnnl_dim_t)r, b, (dnnl_dim_t)d, 0.0f, chunk, (dnnl_dim_t)d) != dnnl_success) {
      free(chunk);
      return lzn_fail(LZN_ERR_BACKEND, "synthetic predictor: dnnl_sgemm failed");
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < (int64_t)n; i++)
      from_f32(rows + (r0 + (size_t)i) * target->row_bytes, chunk + (size_t)i * d, d);
  }
  free(chunk);
  *a_out = a, *b_out = b;
  return LZN_OK;
}

/* The fp32 matrix [rows][cols] at src as a matrix of that type in the
 * model's memory (src itself for F32), converted as the loader would. */
static lzn_status predictor_matrix(filler *fl, lzn_weight_type type, const float *src, int64_t rows,
                                   int64_t cols, lzn_matrix *out) {
  if (type == LZN_WEIGHTS_F32) {
    *out = lzn_matrix_make(type, src, rows, cols);
    return LZN_OK;
  }
  void *data;
  lzn_status s = lzn_model_own(fl->model, lzn_wtype_row_bytes(type, (size_t)cols) * (size_t)rows, &data);
  if (s == LZN_OK) s = lzn_weights_convert(type, src, rows, cols, data);
  if (s == LZN_OK) *out = lzn_matrix_make(type, data, rows, cols);
  return s;
}

lzn_status lzn_model_synthetic_add_predictor(lzn_model *m, float density, int rank, double ratio,
                                             lzn_weight_type type, uint64_t seed) {
  const char *fn = "lzn_model_synthetic_add_predictor";
  if (m == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: model is NULL", fn);
  if (rank < 1 || rank > m->d_model)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: rank = %d, must be in [1, d_model = %d]", fn, rank,
                    m->d_model);
  if (!(ratio >= 1.0 && (double)density * ratio <= 1.0))
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: ratio = %g, must be >= 1 with density * ratio <= 1", fn,
                    ratio);
  if (!lzn_wtype_valid(type))
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: type %d is not a weight type", fn, (int)type);
  if (!lzn_wtype_fits_row(type, (size_t)rank)) /* w2's rows: the loader's rule for K-quants */
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: rank %d is not whole 256-weight super-blocks of %s", fn, rank,
                    lzn_wtype_name(type));
  const lzn_kernel_table *kernels;
  lzn_status s = lzn_kernels_get(&kernels);
  /* Another key space than the weights', so the model's other tensors stay
   * what they were without a predictor. */
  filler fl = {.model = m, .seed = mix64(seed ^ 0x70726564696374ull), .tensor = 0,
               .type = LZN_WEIGHTS_F32, .kernels = kernels};
  /* The score is the pre-activation z ~ N(0, 1); a neuron fires at
   * z > Phi^-1(1 - density), and the predicted set is z >= Phi^-1(1 -
   * ratio * density): ratio times the active set, containing it. */
  const float threshold = (float)lzn_inverse_normal_cdf(1.0 - (double)density * ratio);
  for (int l = 0; s == LZN_OK && l < m->n_layers; l++) {
    const float *a = NULL, *b = NULL;
    s = low_rank_first_stage(&fl, l, rank, &a, &b);
    if (s != LZN_OK) break;
    lzn_matrix w1, w2;
    s = predictor_matrix(&fl, type, b, rank, m->d_model, &w1);
    if (s == LZN_OK) s = predictor_matrix(&fl, type, a, m->d_ff, rank, &w2);
    if (s != LZN_OK) break;
    lzn_predictor *p = &m->layers[l].predictor;
    *p = (lzn_predictor){.present = 1, .relu = 0, .input_before_norm = 0, .w1 = w1, .w2 = w2,
                         .threshold = threshold};
    m->n_predicted_layers++;
  }
  return s;
}
