/*
 * model.c: the public model API: load a model folder or file, free it,
 * describe it. The file format (format/) gives named tensors, the
 * architecture (arch/) turns them and the config into the model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "arch/arch.h"
#include "core/abi.h"
#include "core/file.h"
#include "core/wtype.h"
#include "linalg/exec.h"
#include "model/model.h"

lzn_status lzn_model_own(lzn_model *m, size_t n_bytes, void **out) {
  return lzn_buffers_alloc(&m->owned, n_bytes, out);
}

const lzn_file_tensor *lzn_model_find_tensor(const lzn_model *m, const char *name) {
  return m->from_gguf ? lzn_gguf_find_tensor(&m->gguf, name) : lzn_weights_find(&m->weights, name);
}

lzn_status lzn_load_progress_step(lzn_load_progress *p) {
  p->done++;
  if (p->params->progress &&
      !p->params->progress((float)p->done / (float)p->total, p->params->progress_user_data))
    return lzn_fail(LZN_ERR_CANCELLED, "model load cancelled by the progress callback");
  return LZN_OK;
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

/* Released sizes (lazyneuron.h, "ABI"): 0.1 (no weight_type or
 * predictor_path), 0.2 and 0.3 (no down_t_type, pack_budget, n_threads,
 * predictor_type),
 * 0.4 = now. */
static const lzn_struct_size model_params_sizes[] = {
    {32, offsetof(lzn_model_params, progress_user_data) + sizeof(void *)},
    {48, offsetof(lzn_model_params, predictor_path) + sizeof(const char *)},
    {sizeof(lzn_model_params), offsetof(lzn_model_params, predictor_type) + sizeof(lzn_weight_type)},
};
_Static_assert(sizeof(lzn_model_params) == 72, "lzn_model_params grew: add its released size above "
               "(lzn_model_default_params() keeps returning the 48-byte struct: compat/params_by_value.c)");

/* The defaults, the whole current struct. (The public by-value function
 * returns the 0.3 struct: compat/params_by_value.c.) */
static lzn_model_params model_defaults(void) {
  lzn_model_params p;
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.use_mmap = 1;
  p.down_t_type = LZN_WEIGHTS_Q8_0;
  p.pack_budget = SIZE_MAX;
  p.n_threads = 1;
  p.predictor_type = LZN_WEIGHTS_AS_STORED;
  return p;
}

LZN_API lzn_status lzn_model_params_init(lzn_model_params *params, size_t struct_size) {
  const lzn_model_params defaults = model_defaults();
  return lzn_params_fill(params, struct_size, &defaults, model_params_sizes, LZN_N_SIZES(model_params_sizes),
                         "lzn_model_params_init");
}

lzn_status lzn_model_read_params(const lzn_model_params *given, lzn_model_params *out) {
  const lzn_model_params defaults = model_defaults();
  if (given == NULL) {
    *out = defaults;
    return LZN_OK;
  }
  const lzn_status s = lzn_params_read(out, &defaults, given, model_params_sizes,
                                       LZN_N_SIZES(model_params_sizes), "lzn_model_load");
  return s == LZN_OK ? lzn_model_check_params(out) : s;
}

LZN_API void lzn_model_free(lzn_model *model) {
  if (model == NULL) return;
  lzn_pool_lender_free(&model->pools);
  lzn_tokenizer_free(model->tokenizer);
  lzn_buffers_free(&model->owned);
  free(model->layers);
  lzn_weights_close(&model->weights);
  lzn_gguf_close(&model->gguf);
  lzn_st_close(&model->predictor_file);
  free(model);
}

lzn_status lzn_model_check_params(const lzn_model_params *p) {
  if (p->use_mmap != 0 && p->use_mmap != 1)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_load: params->use_mmap = %d, must be 0 or 1",
                    p->use_mmap);
  if (p->weight_type != LZN_WEIGHTS_AS_STORED && !lzn_wtype_valid(p->weight_type))
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_load: params->weight_type = %d is not an "
                    "lzn_weight_type", (int)p->weight_type);
  if (p->down_t_type != LZN_WEIGHTS_AS_STORED && !lzn_wtype_valid(p->down_t_type))
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_load: params->down_t_type = %d is not an "
                    "lzn_weight_type", (int)p->down_t_type);
  if (p->predictor_type != LZN_WEIGHTS_AS_STORED && !lzn_wtype_valid(p->predictor_type))
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_load: params->predictor_type = %d is not an "
                    "lzn_weight_type", (int)p->predictor_type);
  if (p->n_threads < 1 || p->n_threads > LZN_MAX_THREADS)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_load: params->n_threads = %d, must be in [1, %d]", p->n_threads,
                    LZN_MAX_THREADS);
  return LZN_OK;
}

/* What a path holds, from its first bytes: a GGUF file (GGUF's magic or
 * PowerInfer's: the whole model, config in its metadata), a safetensors
 * file (a u64 header length, then the header's JSON object: config.json
 * beside it), something else, or no regular file (a folder, or missing:
 * the config path says which). */
typedef enum path_kind { PATH_NOT_A_FILE, PATH_GGUF, PATH_SAFETENSORS, PATH_OTHER } path_kind;

static path_kind kind_of_path(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return PATH_NOT_A_FILE;
  FILE *f = fopen(path, "rb");
  if (f == NULL) return PATH_NOT_A_FILE; /* unreadable: the config path's error says so */
  unsigned char head[9] = {0};
  const size_t got = fread(head, 1, sizeof head, f);
  fclose(f);
  if (got >= 4 && (memcmp(head, "GGUF", 4) == 0 || memcmp(head, "PWRI", 4) == 0)) return PATH_GGUF;
  if (got == 9 && head[8] == '{') return PATH_SAFETENSORS;
  return PATH_OTHER;
}

lzn_status lzn_model_build_from_gguf(lzn_model *m, const lzn_model_params *params, const char *path) {
  m->from_gguf = 1;
  lzn_hf_config config;
  lzn_status s = lzn_arch_parse_gguf(&m->gguf, &config);
  if (s == LZN_OK) s = lzn_arch_build(m, &config, params);
  if (s == LZN_OK) s = lzn_predictor_load(m, params, NULL);
  if (s == LZN_OK) s = lzn_model_pack(m, params->pack_budget, params->n_threads);
  if (s == LZN_OK) s = lzn_model_load_tokenizer(m, path);
  return s;
}

static lzn_status load_gguf(const char *path, const lzn_model_params *params, lzn_model **out) {
  lzn_model *m = calloc(1, sizeof *m);
  if (m == NULL) return lzn_fail(LZN_ERR_NOMEM, "lzn_model_load: out of memory");
  lzn_status s = lzn_gguf_open(path, params->use_mmap, &m->gguf);
  if (s == LZN_OK) s = lzn_model_build_from_gguf(m, params, path);
  if (s != LZN_OK) {
    lzn_model_free(m);
    return s;
  }
  *out = m;
  return LZN_OK;
}

LZN_API lzn_status lzn_model_load(const char *path, const lzn_model_params *params,
                                  lzn_model **out) {
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_load: out is NULL");
  *out = NULL;
  if (path == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_load: path is NULL");
  lzn_model_params read;
  lzn_status s = lzn_model_read_params(params, &read);
  if (s != LZN_OK) return s;
  params = &read;

  const path_kind kind = kind_of_path(path);
  if (kind == PATH_GGUF) return load_gguf(path, params, out);
  if (kind == PATH_OTHER)
    return lzn_fail(LZN_ERR_FORMAT, "%s: not a GGUF or safetensors file (nor a model folder)", path);
  char cfg_path[4096];
  s = config_path(path, cfg_path, sizeof cfg_path);
  if (s != LZN_OK) return s;
  lzn_model *m = calloc(1, sizeof *m);
  if (m == NULL) return lzn_fail(LZN_ERR_NOMEM, "lzn_model_load: out of memory");
  char *config_json = NULL;
  size_t config_len = 0;
  lzn_hf_config config;
  s = lzn_read_file(cfg_path, &config_json, &config_len);
  if (s == LZN_OK) s = lzn_arch_parse_hf(config_json, config_len, cfg_path, &config);
  free(config_json);
  if (s == LZN_OK) s = lzn_weights_open(path, params->use_mmap, &m->weights);
  if (s == LZN_OK) s = lzn_arch_build(m, &config, params);
  if (s == LZN_OK) {
    /* The predictor sidecar lives beside config.json. */
    cfg_path[strlen(cfg_path) - strlen("/config.json")] = '\0';
    s = lzn_predictor_load(m, params, cfg_path);
  }
  if (s == LZN_OK) s = lzn_model_pack(m, params->pack_budget, params->n_threads);
  if (s == LZN_OK) s = lzn_model_load_tokenizer(m, path);
  if (s != LZN_OK) {
    lzn_model_free(m);
    return s;
  }
  *out = m;
  return LZN_OK;
}

lzn_status lzn_model_load_tokenizer(lzn_model *m, const char *path) {
  lzn_status s;
  snprintf(m->tokenizer_missing, sizeof m->tokenizer_missing, "%s has no tokenizer files "
           "(lazyneuron_tokenizer.json, tokenizer.json, vocab.json + merges.txt) or GGUF "
           "tokenizer.ggml.model", path);
  if (m->from_gguf) {
    s = lzn_tokenizer_from_gguf(&m->gguf, &m->tokenizer);
  } else {
    struct stat st;
    char dir[4096];
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
      snprintf(dir, sizeof dir, "%s", path);
    } else {
      const char *slash = strrchr(path, '/');
      snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    }
    s = lzn_tokenizer_load_dir(dir, &m->tokenizer);
  }
  if (s == LZN_ERR_UNSUPPORTED) { /* the model still runs on ids */
    snprintf(m->tokenizer_missing, sizeof m->tokenizer_missing, "%s", lzn_last_error());
    return LZN_OK;
  }
  return s;
}

/* Released sizes of lzn_model_info with a struct_size: 0.3 (no
 * weight_bytes_by_type), 0.4 = now. */
static const lzn_struct_size model_info_sizes[] = {
    {80, offsetof(lzn_model_info, has_predictor) + sizeof(int)},
    {sizeof(lzn_model_info), offsetof(lzn_model_info, packed_bytes) + sizeof(int64_t)},
};
_Static_assert(LZN_WEIGHT_TYPE_COUNT <= LZN_WEIGHT_TYPE_SLOTS, "weight_bytes_by_type has a slot per type");

void lzn_model_describe(const lzn_model *model, lzn_model_info *out) {
  memset(out, 0, sizeof *out);
  out->struct_size = sizeof *out;
  out->n_layers = model->n_layers, out->d_model = model->d_model, out->d_ff = model->d_ff;
  out->n_heads = model->n_heads, out->vocab_size = model->vocab;
  out->max_positions = model->max_positions;
  lzn_model_weight_bytes(model, out->weight_bytes_by_type, &out->weight_type, &out->weight_bytes);
  out->n_kv_heads = model->n_kv_heads, out->head_dim = model->head_dim;
  out->gated = model->arch.mlp == LZN_MLP_KIND_GATED;
  out->architecture = model->arch.name;
  out->has_predictor = model->n_predicted_layers;
  out->packed_bytes = (int64_t)lzn_model_packed_bytes(model);
}

/* The 0.3 version: 0.2's callers get lib/compat/abi_0_2.c's. */
LZN_API lzn_status lzn_model_get_info_v0_3(const lzn_model *model, lzn_model_info *out);
LZN_SYMVER_DEFAULT(lzn_model_get_info_v0_3, lzn_model_get_info, LZN_0.3)
LZN_API lzn_status lzn_model_get_info_v0_3(const lzn_model *model, lzn_model_info *out) {
  if (model == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_get_info: model is NULL");
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_get_info: out is NULL");
  lzn_model_info full;
  lzn_model_describe(model, &full);
  return lzn_out_write(out, &full, model_info_sizes, LZN_N_SIZES(model_info_sizes), "lzn_model_get_info");
}


/* Every matrix once (a tied LM head is the embedding), without W_down as
 * stored: that is a view of the file's pages for the dense fallback, not
 * a copy the model made. The type is the one holding the most bytes. */
void lzn_model_weight_bytes(const lzn_model *m, int64_t by_type[LZN_WEIGHT_TYPE_SLOTS], lzn_weight_type *type,
                            int64_t *bytes) {
  for (int t = 0; t < LZN_WEIGHT_TYPE_SLOTS; t++) by_type[t] = 0;
  const lzn_matrix *model_matrices[] = {&m->embed_tokens, &m->project_in, &m->project_out,
                                        m->lm_head.data == m->embed_tokens.data ? NULL : &m->lm_head};
  for (size_t i = 0; i < sizeof model_matrices / sizeof model_matrices[0]; i++) {
    const lzn_matrix *w = model_matrices[i];
    if (w && w->data) by_type[w->type] += w->rows * (int64_t)w->row_bytes;
  }
  for (int l = 0; l < m->n_layers; l++) {
    const lzn_layer *y = &m->layers[l];
    const lzn_matrix *layer_matrices[] = {&y->q, &y->k, &y->v, &y->o, &y->gate, &y->up, &y->down_t};
    for (size_t i = 0; i < sizeof layer_matrices / sizeof layer_matrices[0]; i++) {
      const lzn_matrix *w = layer_matrices[i];
      if (w->data) by_type[w->type] += w->rows * (int64_t)w->row_bytes;
    }
  }
  int64_t total = 0;
  int most = 0;
  for (int t = 0; t < LZN_WEIGHT_TYPE_COUNT; t++) {
    total += by_type[t];
    if (by_type[t] > by_type[most]) most = t;
  }
  *type = (lzn_weight_type)most;
  *bytes = total;
}
