/*
 * load_memory.c: a model from a config.json text and a safetensors image in
 * memory, for the fuzzers and tests.
 */
#include <stdlib.h>
#include <string.h>

#include "arch/arch.h"
#include "core/buffer.h"
#include "model/model.h"

/* The model's own copy of an image whose tensors it reads in place:
 * weights memory (lzn_alloc_weights: aligned as a mapped file's pages
 * would be, and on huge pages when large, which decode's weight reads
 * want), released by lzn_free_weights(copy, size) (lzn_file_unload, for
 * the file that owns it). NULL when out of memory. */
static void *own_copy(const void *bytes, size_t size) {
  void *copy = lzn_alloc_weights(size);
  if (copy != NULL && size) memcpy(copy, bytes, size);
  return copy;
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
  lzn_model_params read;
  lzn_status s = lzn_model_read_params(params, &read);
  if (s != LZN_OK) return s;
  params = &read;
  lzn_model *m = calloc(1, sizeof *m);
  if (m == NULL) return lzn_fail(LZN_ERR_NOMEM, "lzn_model_load_memory: out of memory");
  lzn_hf_config config;
  s = lzn_arch_parse_hf(config_json, config_len, "(memory config.json)", &config);
  if (s == LZN_OK) {
    m->weights.files = calloc(1, sizeof *m->weights.files);
    void *copy = own_copy(weights, weights_len);
    if (m->weights.files == NULL || copy == NULL) {
      lzn_free_weights(copy, weights_len);
      s = lzn_fail(LZN_ERR_NOMEM, "lzn_model_load_memory: out of memory for %zu bytes of weights",
                   weights_len);
    } else {
      m->weights.n_files = 1;
      s = lzn_st_parse(copy, weights_len, "(memory model.safetensors)", &m->weights.files[0]);
      if (s == LZN_OK) m->weights.files[0].owns_bytes = 1; /* lzn_st_close frees it */
      else lzn_free_weights(copy, weights_len);
    }
  }
  /* by_name stays NULL: lzn_weights_find searches the one file linearly. */
  if (s == LZN_OK) s = lzn_arch_build(m, &config, params);
  if (s == LZN_OK) s = lzn_model_pack(m, params->pack_budget, params->n_threads);
  if (s != LZN_OK) {
    lzn_model_free(m);
    return s;
  }
  *out = m;
  return LZN_OK;
}

/* A GGUF image in memory: copied (own_copy), parsed, then built as lzn_model_load builds a
 * GGUF file, predictor and tokenizer included. */
lzn_status lzn_model_load_gguf_memory(const void *bytes, size_t size, const lzn_model_params *params,
                                      lzn_model **out) {
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_load_gguf_memory: out is NULL");
  *out = NULL;
  if (bytes == NULL && size != 0)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_load_gguf_memory: bytes is NULL");
  lzn_model_params read;
  lzn_status s = lzn_model_read_params(params, &read);
  if (s != LZN_OK) return s;
  params = &read;
  lzn_model *m = calloc(1, sizeof *m);
  void *copy = own_copy(bytes, size);
  if (m == NULL || copy == NULL) {
    free(m), lzn_free_weights(copy, size);
    return lzn_fail(LZN_ERR_NOMEM, "lzn_model_load_gguf_memory: out of memory for %zu bytes", size);
  }
  s = lzn_gguf_parse(copy, size, "(memory model.gguf)", &m->gguf);
  if (s != LZN_OK) {
    lzn_free_weights(copy, size);
    free(m);
    return s;
  }
  m->gguf.owns_bytes = 1; /* mapped 0: lzn_gguf_close frees the copy */
  s = lzn_model_build_from_gguf(m, params, "(memory model.gguf)");
  if (s != LZN_OK) {
    lzn_model_free(m);
    return s;
  }
  *out = m;
  return LZN_OK;
}
