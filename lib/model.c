/*
 * model.c: a Hugging Face OPT folder -> lzn_model.
 *
 * Tensors are looked up by their Hugging Face names, with or without the
 * "model." prefix, and every shape is checked against config.json. F32
 * tensors are used where they lie in the (mapped) file; F16/BF16 ones are
 * converted to F32 once; fc2 is transposed to [d_ff][d_model] (model.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "model.h"

/* ---------------------------------------------------------- ownership */

lzn_status lzn_model_own_buffer(lzn_model *m, size_t n_floats, float **out) {
  if (m->n_owned == m->cap_owned) {
    const size_t cap = m->cap_owned ? 2 * m->cap_owned : 64;
    float **grown = realloc(m->owned, cap * sizeof *grown);
    if (grown == NULL) return lzn_fail(LZN_ERR_NOMEM, "out of memory growing the buffer list");
    m->owned = grown, m->cap_owned = cap;
  }
  /* Large buffers on 2 MiB boundaries with transparent huge pages: the
   * sparse kernel reads rows at random, and 4 KiB pages cost it a TLB miss
   * per row (measured: 0.120 -> 0.102 ms at 5 % density, 2048x8192). Small
   * ones on cache lines. */
  const size_t huge = (size_t)2 << 20;
  const size_t align = n_floats * sizeof(float) >= huge ? huge : 64;
  const size_t bytes = ((n_floats * sizeof(float)) + align - 1) & ~(align - 1);
  float *buffer = aligned_alloc(align, bytes ? bytes : align);
  if (buffer == NULL)
    return lzn_fail(LZN_ERR_NOMEM, "out of memory allocating %zu bytes of weights", bytes);
  if (align == huge) madvise(buffer, bytes, MADV_HUGEPAGE); /* advice only: failure is fine */
  m->owned[m->n_owned++] = buffer;
  *out = buffer;
  return LZN_OK;
}

/* ------------------------------------------------------------- dtypes */

static float half_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h >> 15) << 31;
  uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff, bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13); /* inf, NaN */
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign; /* +-0 */
  } else {      /* subnormal: normalise */
    exponent = 113;
    while (!(mantissa & 0x400)) mantissa <<= 1, exponent--;
    bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* Element i of a tensor as float (data may be unaligned: memcpy). */
static float element(const lzn_st_tensor *t, size_t i) {
  const unsigned char *p = t->data;
  float f;
  uint16_t h;
  uint32_t bits;
  switch (t->dtype) {
  case LZN_DTYPE_F32:
    memcpy(&f, p + 4 * i, 4);
    return f;
  case LZN_DTYPE_F16:
    memcpy(&h, p + 2 * i, 2);
    return half_to_float(h);
  case LZN_DTYPE_BF16:
    memcpy(&h, p + 2 * i, 2);
    bits = (uint32_t)h << 16;
    memcpy(&f, &bits, 4);
    return f;
  }
  return 0.0f;
}

/* ------------------------------------------------------------ lookups */

typedef struct loader {
  lzn_model *model;
  const char *prefix; /* "model.decoder." or "decoder." */
  const lzn_model_params *params;
  int done, total;    /* tensors, for the progress callback */
} loader;

static lzn_status progress_step(loader *ld) {
  ld->done++;
  if (ld->params->progress &&
      !ld->params->progress((float)ld->done / (float)ld->total, ld->params->progress_user_data))
    return lzn_fail(LZN_ERR_CANCELLED, "model load cancelled by the progress callback");
  return LZN_OK;
}

static void shape_string(char *out, size_t size, const int64_t *shape, int n_dims) {
  size_t used = (size_t)snprintf(out, size, "[");
  for (int i = 0; i < n_dims && used < size; i++)
    used += (size_t)snprintf(out + used, size - used, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (used < size) snprintf(out + used, size - used, "]");
}

/* The tensor `name` (already prefixed) with exactly the shape {d0} or
 * {d0, d1} (d1 = 0 for a vector). Missing is an error only if required. */
static lzn_status find_checked(loader *ld, const char *name, int required, int64_t d0, int64_t d1,
                               const lzn_st_tensor **out) {
  *out = lzn_weights_find(&ld->model->weights, name);
  if (*out == NULL) {
    if (!required) return LZN_OK;
    return lzn_fail(LZN_ERR_FORMAT, "tensor \"%s\" is missing from the model's safetensors", name);
  }
  const lzn_st_tensor *t = *out;
  const int64_t want[2] = {d0, d1};
  const int want_dims = d1 ? 2 : 1;
  if (t->n_dims != want_dims || t->shape[0] != d0 || (d1 && t->shape[1] != d1)) {
    char have[128], expect[64];
    shape_string(have, sizeof have, t->shape, t->n_dims);
    shape_string(expect, sizeof expect, want, want_dims);
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\" has shape %s but config.json implies %s",
                    t->file, name, have, expect);
  }
  return LZN_OK;
}

/* A tensor as F32 in nn.Linear's layout: in place when it is F32 and
 * aligned for floats, else converted into a buffer the model owns. */
static lzn_status as_f32(lzn_model *m, const lzn_st_tensor *t, const float **out) {
  if (t->dtype == LZN_DTYPE_F32 && ((uintptr_t)t->data % sizeof(float)) == 0) {
    *out = t->data;
    return LZN_OK;
  }
  float *buffer;
  lzn_status s = lzn_model_own_buffer(m, (size_t)t->n_elements, &buffer);
  if (s != LZN_OK) return s;
  for (size_t i = 0; i < (size_t)t->n_elements; i++) buffer[i] = element(t, i);
  *out = buffer;
  return LZN_OK;
}

static lzn_status load(loader *ld, const char *suffix, int required, int64_t d0, int64_t d1,
                       const float **out) {
  char name[256];
  snprintf(name, sizeof name, "%s%s", ld->prefix, suffix);
  const lzn_st_tensor *t;
  *out = NULL;
  lzn_status s = find_checked(ld, name, required, d0, d1, &t);
  if (s == LZN_OK && t) s = as_f32(ld->model, t, out);
  if (s == LZN_OK) s = progress_step(ld);
  return s;
}

/* fc2.weight [rows][cols] -> [cols][rows], converting the dtype on the way.
 * Blocked so that both the reads and the writes stay in cache. */
static lzn_status load_transposed(loader *ld, const char *suffix, int64_t rows, int64_t cols,
                                  const float **out) {
  char name[256];
  snprintf(name, sizeof name, "%s%s", ld->prefix, suffix);
  const lzn_st_tensor *t;
  lzn_status s = find_checked(ld, name, 1, rows, cols, &t);
  float *buffer = NULL;
  if (s == LZN_OK) s = lzn_model_own_buffer(ld->model, (size_t)(rows * cols), &buffer);
  if (s != LZN_OK) return s;
  enum { BLOCK = 32 };
  for (int64_t r0 = 0; r0 < rows; r0 += BLOCK)
    for (int64_t c0 = 0; c0 < cols; c0 += BLOCK)
      for (int64_t r = r0; r < r0 + BLOCK && r < rows; r++)
        for (int64_t c = c0; c < c0 + BLOCK && c < cols; c++)
          buffer[c * rows + r] = element(t, (size_t)(r * cols + c));
  *out = buffer;
  return progress_step(ld);
}

/* ------------------------------------------------------------- layers */

static lzn_status load_layer(loader *ld, int i, lzn_layer *layer) {
  const lzn_opt_config *c = &ld->model->config;
  const int64_t d = c->hidden_size, f = c->ffn_dim;
  const int bias = c->enable_bias, affine = c->layer_norm_elementwise_affine;
  char n[128];
  lzn_status s = LZN_OK;
#define LAYER(suffix, required, d0, d1, dst)                                 \
  do {                                                                       \
    snprintf(n, sizeof n, "layers.%d.%s", i, suffix);                        \
    if (s == LZN_OK) s = load(ld, n, required, d0, d1, dst);                 \
  } while (0)
  LAYER("self_attn_layer_norm.weight", affine, d, 0, &layer->attn_norm_w);
  LAYER("self_attn_layer_norm.bias", affine, d, 0, &layer->attn_norm_b);
  LAYER("self_attn.q_proj.weight", 1, d, d, &layer->q_w);
  LAYER("self_attn.k_proj.weight", 1, d, d, &layer->k_w);
  LAYER("self_attn.v_proj.weight", 1, d, d, &layer->v_w);
  LAYER("self_attn.out_proj.weight", 1, d, d, &layer->o_w);
  LAYER("self_attn.q_proj.bias", bias, d, 0, &layer->q_b);
  LAYER("self_attn.k_proj.bias", bias, d, 0, &layer->k_b);
  LAYER("self_attn.v_proj.bias", bias, d, 0, &layer->v_b);
  LAYER("self_attn.out_proj.bias", bias, d, 0, &layer->o_b);
  LAYER("final_layer_norm.weight", affine, d, 0, &layer->mlp_norm_w);
  LAYER("final_layer_norm.bias", affine, d, 0, &layer->mlp_norm_b);
  LAYER("fc1.weight", 1, f, d, &layer->up_w);
  LAYER("fc1.bias", bias, f, 0, &layer->up_b);
  LAYER("fc2.bias", bias, d, 0, &layer->down_b);
#undef LAYER
  if (s != LZN_OK) return s;
  snprintf(n, sizeof n, "layers.%d.fc2.weight", i);
  s = load_transposed(ld, n, d, f, &layer->down_w_t);
  if (s != LZN_OK) return s;
  /* The stored layout too, for the dense path, where it costs no copy. */
  char name[256];
  snprintf(name, sizeof name, "%s%s", ld->prefix, n);
  const lzn_st_tensor *t = lzn_weights_find(&ld->model->weights, name);
  if (t->dtype == LZN_DTYPE_F32 && (uintptr_t)t->data % sizeof(float) == 0) layer->down_w = t->data;
  return LZN_OK;
}

static lzn_status find_prefix(loader *ld) {
  static const char *const prefixes[] = {"model.decoder.", "decoder."};
  for (size_t i = 0; i < 2; i++) {
    char name[64];
    snprintf(name, sizeof name, "%sembed_tokens.weight", prefixes[i]);
    if (lzn_weights_find(&ld->model->weights, name)) {
      ld->prefix = prefixes[i];
      return LZN_OK;
    }
  }
  return lzn_fail(LZN_ERR_FORMAT, "tensor \"model.decoder.embed_tokens.weight\" (or "
                  "\"decoder.embed_tokens.weight\") is missing: not an OPT checkpoint?");
}

/* m->layers grows as layers load, never ahead of them: a layer takes at
 * least six tensors of the file, so a config.json claiming 2^24 layers
 * beside a 100-byte file fails on a missing tensor instead of allocating
 * gigabytes of empty layer slots first. */
static lzn_status load_layers(loader *ld) {
  lzn_model *m = ld->model;
  size_t capacity = 0;
  for (int i = 0; i < m->n_layers; i++) {
    lzn_layer layer;
    memset(&layer, 0, sizeof layer);
    lzn_status s = load_layer(ld, i, &layer);
    if (s != LZN_OK) return s;
    if ((size_t)i == capacity) {
      size_t grown_capacity = capacity ? 2 * capacity : 4;
      if (grown_capacity > (size_t)m->n_layers) grown_capacity = (size_t)m->n_layers;
      lzn_layer *grown = realloc(m->layers, grown_capacity * sizeof *grown);
      if (grown == NULL) return lzn_fail(LZN_ERR_NOMEM, "out of memory for %d layers", i + 1);
      m->layers = grown, capacity = grown_capacity;
    }
    m->layers[i] = layer;
  }
  return LZN_OK;
}

static lzn_status load_tensors(loader *ld) {
  lzn_model *m = ld->model;
  const lzn_opt_config *c = &m->config;
  const int64_t d = c->hidden_size, e = c->word_embed_proj_dim, v = c->vocab_size;
  const int affine = c->layer_norm_elementwise_affine;
  lzn_status s = find_prefix(ld);
  if (s == LZN_OK) s = load(ld, "embed_tokens.weight", 1, v, e, &m->embed_tokens);
  if (s == LZN_OK) s = load(ld, "embed_positions.weight", 1, c->max_position_embeddings + 2, d,
                            &m->embed_positions);
  if (s == LZN_OK && e != d) s = load(ld, "project_in.weight", 1, d, e, &m->project_in);
  if (s == LZN_OK && e != d) s = load(ld, "project_out.weight", 1, e, d, &m->project_out);
  if (s == LZN_OK && m->has_final_norm) {
    s = load(ld, "final_layer_norm.weight", affine, d, 0, &m->final_norm_w);
    if (s == LZN_OK) s = load(ld, "final_layer_norm.bias", affine, d, 0, &m->final_norm_b);
  }
  if (s == LZN_OK) s = load_layers(ld);
  if (s != LZN_OK) return s;
  if (c->tie_word_embeddings) {
    m->lm_head = m->embed_tokens;
    return LZN_OK;
  }
  /* lm_head sits outside the decoder: no "decoder." in its name. */
  const char *saved = ld->prefix;
  ld->prefix = "";
  s = load(ld, "lm_head.weight", 1, v, e, &m->lm_head);
  ld->prefix = saved;
  return s;
}

/* -------------------------------------------------------------- paths */

/* The config.json for path: inside it if it is a folder, beside it if it
 * is a file. */
static lzn_status config_path(const char *path, char *out, size_t size) {
  struct stat st;
  if (stat(path, &st) != 0) return lzn_fail(LZN_ERR_IO, "%s: no such file or folder", path);
  int n;
  if (S_ISDIR(st.st_mode)) {
    n = snprintf(out, size, "%s/config.json", path);
  } else {
    const char *slash = strrchr(path, '/');
    const int dir_len = slash ? (int)(slash - path) : 1;
    n = snprintf(out, size, "%.*s/config.json", dir_len, slash ? path : ".");
  }
  if (n < 0 || (size_t)n >= size) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: path too long", path);
  return LZN_OK;
}

LZN_API lzn_model_params lzn_model_default_params(void) {
  lzn_model_params p;
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.use_mmap = 1;
  return p;
}

LZN_API void lzn_model_free(lzn_model *model) {
  if (model == NULL) return;
  for (size_t i = 0; i < model->n_owned; i++) free(model->owned[i]);
  free(model->owned);
  free(model->layers);
  lzn_weights_close(&model->weights);
  free(model);
}

static lzn_status check_model_params(const lzn_model_params *p) {
  if (p->struct_size != sizeof *p)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_load: params->struct_size = %zu, expected %zu "
                    "(use lzn_model_default_params())", p->struct_size, sizeof *p);
  if (p->use_mmap != 0 && p->use_mmap != 1)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_load: params->use_mmap = %d, must be 0 or 1",
                    p->use_mmap);
  return LZN_OK;
}

/* The sizes from m->config, then every tensor from m->weights. Shared by
 * lzn_model_load and lzn_model_load_memory; on failure the caller frees m. */
static lzn_status build_model(lzn_model *m, const lzn_model_params *params) {
  const lzn_opt_config *c = &m->config;
  m->d_model = c->hidden_size, m->d_ff = c->ffn_dim, m->n_heads = c->num_attention_heads;
  m->head_dim = c->hidden_size / c->num_attention_heads, m->n_layers = c->num_hidden_layers;
  m->vocab = c->vocab_size, m->d_embed = c->word_embed_proj_dim;
  m->max_positions = c->max_position_embeddings;
  /* Hugging Face builds the decoder's final layer norm only for pre-LN models. */
  m->has_final_norm = c->do_layer_norm_before && !c->remove_final_layer_norm;
  loader ld = {.model = m, .params = params, .done = 0,
               .total = 2 + 2 * (m->d_embed != m->d_model) + 2 * m->has_final_norm +
                        16 * m->n_layers + !c->tie_word_embeddings};
  return load_tensors(&ld);
}

LZN_API lzn_status lzn_model_load(const char *path, const lzn_model_params *params,
                                  lzn_model **out) {
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_load: out is NULL");
  *out = NULL;
  if (path == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_load: path is NULL");
  const lzn_model_params defaults = lzn_model_default_params();
  if (params == NULL) params = &defaults;
  lzn_status s = check_model_params(params);
  if (s != LZN_OK) return s;

  char cfg_path[4096];
  s = config_path(path, cfg_path, sizeof cfg_path);
  if (s != LZN_OK) return s;
  lzn_model *m = calloc(1, sizeof *m);
  if (m == NULL) return lzn_fail(LZN_ERR_NOMEM, "lzn_model_load: out of memory");
  s = lzn_config_load(cfg_path, &m->config);
  if (s == LZN_OK) s = lzn_weights_open(path, params->use_mmap, &m->weights);
  if (s == LZN_OK) s = build_model(m, params);
  if (s != LZN_OK) {
    lzn_model_free(m);
    return s;
  }
  *out = m;
  return LZN_OK;
}

LZN_API lzn_status lzn_model_get_info(const lzn_model *model, lzn_model_info *out) {
  if (model == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_get_info: model is NULL");
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_get_info: out is NULL");
  out->n_layers = model->n_layers, out->d_model = model->d_model, out->d_ff = model->d_ff;
  out->n_heads = model->n_heads, out->vocab_size = model->vocab;
  out->max_positions = model->max_positions;
  return LZN_OK;
}

/* lzn_model_load from memory, for the fuzzers and tests: the model keeps its
 * own copy of the safetensors image (F32 tensors are used in place), so the
 * caller's bytes need not outlive the call. */
lzn_status lzn_model_load_memory(const char *config_json, size_t config_len, const void *weights,
                                 size_t weights_len, const lzn_model_params *params,
                                 lzn_model **out) {
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_load_memory: out is NULL");
  *out = NULL;
  if ((config_json == NULL && config_len != 0) || (weights == NULL && weights_len != 0))
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_load_memory: config_json or weights is NULL");
  const lzn_model_params defaults = lzn_model_default_params();
  if (params == NULL) params = &defaults;
  lzn_status s = check_model_params(params);
  if (s != LZN_OK) return s;
  lzn_model *m = calloc(1, sizeof *m);
  if (m == NULL) return lzn_fail(LZN_ERR_NOMEM, "lzn_model_load_memory: out of memory");
  s = lzn_config_parse(config_json, config_len, "(memory config.json)", &m->config);
  if (s == LZN_OK) {
    m->weights.files = calloc(1, sizeof *m->weights.files);
    void *copy = malloc(weights_len ? weights_len : 1);
    if (m->weights.files == NULL || copy == NULL) {
      free(copy);
      s = lzn_fail(LZN_ERR_NOMEM, "lzn_model_load_memory: out of memory for %zu bytes of weights",
                   weights_len);
    } else {
      if (weights_len) memcpy(copy, weights, weights_len);
      m->weights.n_files = 1;
      s = lzn_st_parse(copy, weights_len, "(memory model.safetensors)", &m->weights.files[0]);
      if (s == LZN_OK) m->weights.files[0].owns_bytes = 1; /* malloc'ed: lzn_st_close frees */
      else free(copy);
    }
  }
  /* by_name stays NULL: lzn_weights_find searches the one file linearly. */
  if (s == LZN_OK) s = build_model(m, params);
  if (s != LZN_OK) {
    lzn_model_free(m);
    return s;
  }
  *out = m;
  return LZN_OK;
}
