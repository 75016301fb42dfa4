/*
 * load.c: finding a model's tokenizer (its folder's files or its GGUF
 * metadata), and lzn_tokenizer_load.
 *
 * GGUF: tokenizer.ggml.model "llama" (spm.c) or "gpt2" (bpe_load.c), with
 * tokenizer.ggml.bos_token_id / eos_token_id / add_bos_token; or
 * lazyneuron's byte-level tokenizer, marked "lazyneuron.tokenizer.type" =
 * "byte-level" (see byte_level_from_gguf).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "core/errors.h"
#include "core/json.h"
#include "text/tokenizer.h"

#define BYTE_DESCRIPTION "lazyneuron_tokenizer.json"

/* What a value is, for messages; "missing" for an absent one. */
static const char *kind_of(const json_t *v) { return v ? lzn_json_kind(v) : "missing"; }

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* An optional token id field: absent or null -> -1; else in [0, n_vocab). */
static lzn_status id_field(const char *path, const json_t *root, const char *field, int n_vocab,
                           int32_t *out) {
  const json_t *v = json_object_get(root, field);
  if (v == NULL || json_is_null(v)) return LZN_OK;
  if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= n_vocab)
    return lzn_fail(LZN_ERR_FORMAT, "%s: %s must be null or an integer in [0, %d)", path, field,
                    n_vocab);
  *out = (int32_t)json_integer_value(v);
  return LZN_OK;
}

static lzn_status bool_field(const char *path, const json_t *root, const char *field, int *out) {
  const json_t *v = json_object_get(root, field);
  if (v == NULL || json_is_null(v)) return LZN_OK;
  if (!json_is_boolean(v))
    return lzn_fail(LZN_ERR_FORMAT, "%s: %s is %s, not a boolean", path, field, kind_of(v));
  *out = json_is_true(v);
  return LZN_OK;
}

/* lazyneuron_tokenizer.json: {"type": "byte-level", "bos_token_id",
 * "eos_token_id", "add_bos"}. */
static lzn_status load_description(const char *path, lzn_tokenizer **out) {
  json_error_t err;
  json_t *root = json_load_file(path, 0, &err);
  if (root == NULL) return lzn_fail(LZN_ERR_FORMAT, "%s:%d: %s", path, err.line, err.text);
  const json_t *type = json_object_get(root, "type");
  lzn_status s = LZN_OK;
  if (!json_is_string(type))
    s = lzn_fail(LZN_ERR_FORMAT, "%s: \"type\" is %s, not a string", path, kind_of(type));
  else if (strcmp(json_string_value(type), "byte-level") != 0)
    s = lzn_fail(LZN_ERR_UNSUPPORTED, "%s: type \"%s\"; lazyneuron's own description file knows "
                 "\"byte-level\"", path, json_string_value(type));
  if (s == LZN_OK) s = lzn_tokenizer_alloc(LZN_TOKENIZER_BYTE, 256, out);
  if (s == LZN_OK) s = id_field(path, root, "bos_token_id", 256, &(*out)->bos);
  if (s == LZN_OK) s = id_field(path, root, "eos_token_id", 256, &(*out)->eos);
  if (s == LZN_OK) s = bool_field(path, root, "add_bos", &(*out)->add_bos);
  json_decref(root);
  if (s != LZN_OK) lzn_tokenizer_free(*out), *out = NULL;
  return s;
}

/* bos/eos/pad from config.json, add_bos from tokenizer_config.json; the
 * special ids print as nothing. */
static lzn_status hf_specials(const char *dir, lzn_tokenizer *t) {
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", dir);
  lzn_status s = LZN_OK;
  json_t *root = file_exists(path) ? json_load_file(path, 0, NULL) : NULL;
  int32_t pad = -1;
  if (root) {
    s = id_field(path, root, "bos_token_id", t->n_vocab, &t->bos);
    if (s == LZN_OK) s = id_field(path, root, "eos_token_id", t->n_vocab, &t->eos);
    if (s == LZN_OK) s = id_field(path, root, "pad_token_id", t->n_vocab, &pad);
    json_decref(root);
  }
  const int32_t specials[3] = {t->bos, t->eos, pad};
  for (int i = 0; i < 3; i++)
    if (specials[i] >= 0) t->attr[specials[i]] = LZN_TOKEN_CONTROL;
  snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
  root = file_exists(path) ? json_load_file(path, 0, NULL) : NULL;
  if (root && s == LZN_OK) s = bool_field(path, root, "add_bos_token", &t->add_bos);
  json_decref(root);
  return s;
}

lzn_status lzn_tokenizer_load_dir(const char *dir, lzn_tokenizer **out) {
  *out = NULL;
  char path[4096];
  const int n = snprintf(path, sizeof path, "%s/" BYTE_DESCRIPTION, dir);
  if (n < 0 || (size_t)n >= sizeof path) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: path too long", dir);
  lzn_status s;
  if (file_exists(path)) s = load_description(path, out);
  else if ((s = lzn_bpe_load_dir(dir, out)) == LZN_OK && *out) s = hf_specials(dir, *out);
  if (s == LZN_OK && *out) s = lzn_chat_template_from_dir(dir, *out);
  if (s != LZN_OK) lzn_tokenizer_free(*out), *out = NULL;
  return s;
}

static lzn_status tokenizer_from_gguf(const lzn_gguf_file *f, lzn_tokenizer **out);

/* tokenizer.ggml.bos_token_id / eos_token_id (u32, in the vocabulary) and
 * add_bos_token (bool), where the file has them. */
static lzn_status gguf_specials(const lzn_gguf_file *f, lzn_tokenizer *t) {
  const char *keys[2] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"};
  int32_t *ids[2] = {&t->bos, &t->eos};
  lzn_status s = LZN_OK;
  for (int i = 0; s == LZN_OK && i < 2; i++) {
    uint32_t v;
    if (lzn_gguf_find(f, keys[i]) == NULL) continue;
    s = lzn_gguf_get_u32(f, keys[i], &v);
    if (s == LZN_OK && v >= (uint32_t)t->n_vocab)
      s = lzn_fail(LZN_ERR_FORMAT, "%s: %s = %u is out of [0, %d)", f->path, keys[i], v, t->n_vocab);
    if (s == LZN_OK) *ids[i] = (int32_t)v;
  }
  if (s == LZN_OK && lzn_gguf_find(f, "tokenizer.ggml.add_bos_token"))
    s = lzn_gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &t->add_bos);
  return s;
}

/* The byte-level tokenizer (lazyneuron_tokenizer.json) carried in GGUF:
 * lzn-convert writes it as GPT-2 BPE over the 256 bytes without merges
 * (what llama.cpp reads as the same tokenizer, for valid UTF-8) and adds
 * "lazyneuron.tokenizer.type" = "byte-level" so that lazyneuron loads it as
 * it loads the folder: every byte a token, invalid UTF-8 included. */
static lzn_status byte_level_from_gguf(const lzn_gguf_file *f, lzn_tokenizer **out) {
  const lzn_gguf_kv *tokens = lzn_gguf_find(f, "tokenizer.ggml.tokens");
  if (tokens && (tokens->elem_type != LZN_GGUF_STRING || tokens->n != 256))
    return lzn_fail(LZN_ERR_FORMAT, "%s: a byte-level tokenizer's tokenizer.ggml.tokens must be "
                    "256 strings", f->path);
  lzn_status s = lzn_tokenizer_alloc(LZN_TOKENIZER_BYTE, 256, out);
  if (s == LZN_OK) s = gguf_specials(f, *out);
  if (s != LZN_OK) lzn_tokenizer_free(*out), *out = NULL;
  return s;
}

lzn_status lzn_tokenizer_from_gguf(const lzn_gguf_file *f, lzn_tokenizer **out) {
  lzn_status s = tokenizer_from_gguf(f, out);
  if (s == LZN_OK && *out && (s = lzn_chat_template_from_gguf(f, *out)) != LZN_OK)
    lzn_tokenizer_free(*out), *out = NULL;
  return s;
}

static lzn_status tokenizer_from_gguf(const lzn_gguf_file *f, lzn_tokenizer **out) {
  *out = NULL;
  lzn_gguf_string kind;
  lzn_status s;
  if (lzn_gguf_find(f, "lazyneuron.tokenizer.type")) {
    if ((s = lzn_gguf_get_string(f, "lazyneuron.tokenizer.type", &kind)) != LZN_OK) return s;
    if (kind.len == 10 && memcmp(kind.data, "byte-level", 10) == 0) return byte_level_from_gguf(f, out);
    return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: lazyneuron.tokenizer.type \"%.*s\": lazyneuron "
                    "knows \"byte-level\"", f->path, (int)(kind.len > 64 ? 64 : kind.len), kind.data);
  }
  if (lzn_gguf_find(f, "tokenizer.ggml.model") == NULL) return LZN_OK;
  lzn_gguf_string model;
  s = lzn_gguf_get_string(f, "tokenizer.ggml.model", &model);
  if (s != LZN_OK) return s;
  if (model.len == 5 && memcmp(model.data, "llama", 5) == 0) return lzn_spm_from_gguf(f, out);
  if (model.len == 4 && memcmp(model.data, "gpt2", 4) == 0) {
    lzn_gguf_string pre = {"gpt-2", 5};
    if (lzn_gguf_find(f, "tokenizer.ggml.pre")) s = lzn_gguf_get_string(f, "tokenizer.ggml.pre", &pre);
    if (s != LZN_OK) return s;
    if (!(pre.len == 5 && memcmp(pre.data, "gpt-2", 5) == 0) &&
        !(pre.len == 7 && memcmp(pre.data, "default", 7) == 0))
      return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: tokenizer.ggml.pre \"%.*s\": lazyneuron splits "
                      "text as GPT-2 does only", f->path, (int)(pre.len > 64 ? 64 : pre.len), pre.data);
    s = lzn_bpe_from_gguf(f, out);
    if (s == LZN_OK) s = gguf_specials(f, *out);
    if (s != LZN_OK) lzn_tokenizer_free(*out), *out = NULL;
    return s;
  }
  return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model \"%.*s\": lazyneuron reads "
                  "\"llama\" (SentencePiece BPE) and \"gpt2\"", f->path,
                  (int)(model.len > 64 ? 64 : model.len), model.data);
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

LZN_API lzn_status lzn_tokenizer_load(const char *path, lzn_tokenizer **out) {
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_tokenizer_load: out is NULL");
  *out = NULL;
  if (path == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_tokenizer_load: path is NULL");
  lzn_status s;
  if (is_dir(path)) {
    s = lzn_tokenizer_load_dir(path, out);
    if (s == LZN_OK && *out == NULL)
      s = lzn_fail(LZN_ERR_UNSUPPORTED, "%s: no tokenizer (" BYTE_DESCRIPTION ", tokenizer.json, "
                   "vocab.json + merges.txt)", path);
    return s;
  }
  lzn_gguf_file f;
  s = lzn_gguf_open(path, 1, &f);
  if (s != LZN_OK) return s;
  s = lzn_tokenizer_from_gguf(&f, out);
  if (s == LZN_OK && *out == NULL)
    s = lzn_fail(LZN_ERR_UNSUPPORTED, "%s: no tokenizer.ggml.model in its metadata", path);
  lzn_gguf_close(&f);
  return s;
}
