/*
 * bpe_load.c: GPT-2 BPE vocabularies from a folder (vocab.json + merges.txt,
 * or a Hugging Face tokenizer.json) or from GGUF metadata.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/errors.h"
#include "core/file.h"
#include "core/json.h"
#include "text/tokenizer.h"

/* Largest vocabulary accepted: far above any real one (LLaMA-3: 128k). */
#define LZN_MAX_VOCAB (1 << 22)

/* What a value is, for messages; "missing" for an absent one. */
static const char *kind_of(const json_t *v) { return v ? lzn_json_kind(v) : "missing"; }

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Sets piece id from its GPT-2 spelling. */
static lzn_status set_spelled(lzn_tokenizer *t, const char *where, int32_t id, const char *spelled,
                              size_t n) {
  char *raw = malloc(n + 1);
  if (raw == NULL) return lzn_fail(LZN_ERR_NOMEM, "tokenizer: out of memory");
  size_t raw_len;
  lzn_status s;
  if (!lzn_gpt2_unspell(spelled, n, raw, &raw_len))
    /* an added token spelled as plain text (e.g. "<|endoftext|>" is both) */
    s = lzn_tokenizer_set_piece(t, id, spelled, n);
  else
    s = lzn_tokenizer_set_piece(t, id, raw, raw_len);
  (void)where;
  free(raw);
  return s;
}

/* Adds one merge "left right" (GPT-2 spelling), rank = its line. */
static lzn_status add_spelled_merge(lzn_tokenizer *t, const char *where, int32_t rank,
                                    const char *left, size_t left_len, const char *right,
                                    size_t right_len) {
  char *a = malloc(left_len + 1), *b = malloc(right_len + 1);
  lzn_status s = LZN_OK;
  size_t a_len, b_len;
  if (!a || !b) s = lzn_fail(LZN_ERR_NOMEM, "tokenizer: out of memory");
  else if (!lzn_gpt2_unspell(left, left_len, a, &a_len) || !lzn_gpt2_unspell(right, right_len, b, &b_len))
    s = lzn_fail(LZN_ERR_FORMAT, "%s: merge %d spells a character GPT-2's byte-level BPE does "
                 "not use", where, (int)rank);
  else s = lzn_bpe_add_merge(t, rank, a, a_len, b, b_len);
  free(a), free(b);
  return s;
}

/* A merge written "left right". */
static lzn_status add_merge_line(lzn_tokenizer *t, const char *where, int32_t rank, const char *line,
                                 size_t n) {
  const char *space = memchr(line, ' ', n);
  if (space == NULL || space == line || space == line + n - 1)
    return lzn_fail(LZN_ERR_FORMAT, "%s: merge %d is not two pieces separated by a space", where,
                    (int)rank);
  return add_spelled_merge(t, where, rank, line, (size_t)(space - line), space + 1,
                           n - (size_t)(space - line) - 1);
}

static lzn_status finish(lzn_tokenizer *t, const char *where) {
  for (int b = 0; b < 256; b++) {
    const char c = (char)b;
    t->byte_token[b] = lzn_tokenizer_find(t, &c, 1);
    if (t->byte_token[b] < 0)
      return lzn_fail(LZN_ERR_FORMAT, "%s: no token for byte 0x%02X: not a byte-level BPE vocabulary",
                      where, b);
  }
  return LZN_OK;
}

/* The vocabulary object {"piece": id, ...}. */
static lzn_status load_vocab_object(const json_t *vocab, const char *where, lzn_tokenizer **out) {
  if (!json_is_object(vocab))
    return lzn_fail(LZN_ERR_FORMAT, "%s: the vocabulary is %s, not an object", where, kind_of(vocab));
  json_int_t max_id = -1;
  const char *key;
  const json_t *value;
  json_object_foreach((json_t *)vocab, key, value) {
    if (!json_is_integer(value) || json_integer_value(value) < 0 ||
        json_integer_value(value) >= LZN_MAX_VOCAB)
      return lzn_fail(LZN_ERR_FORMAT, "%s: the id of \"%s\" is not an integer in [0, %d)", where, key,
                      LZN_MAX_VOCAB);
    if (json_integer_value(value) > max_id) max_id = json_integer_value(value);
  }
  if (max_id < 0) return lzn_fail(LZN_ERR_FORMAT, "%s: the vocabulary is empty", where);
  lzn_status s = lzn_tokenizer_alloc(LZN_TOKENIZER_GPT2, (int)max_id + 1, out);
  json_object_foreach((json_t *)vocab, key, value) {
    if (s != LZN_OK) break;
    const int32_t id = (int32_t)json_integer_value(value);
    if ((*out)->piece[id])
      s = lzn_fail(LZN_ERR_FORMAT, "%s: id %d is given twice (\"%s\")", where, (int)id, key);
    else s = set_spelled(*out, where, id, key, strlen(key));
  }
  if (s == LZN_OK) s = lzn_tokenizer_index(*out);
  return s;
}

static lzn_status load_vocab_merges(const char *dir, lzn_tokenizer **out) {
  char vocab_path[4096], merges_path[4096];
  snprintf(vocab_path, sizeof vocab_path, "%s/vocab.json", dir);
  snprintf(merges_path, sizeof merges_path, "%s/merges.txt", dir);
  json_error_t err;
  json_t *vocab = json_load_file(vocab_path, 0, &err);
  if (vocab == NULL) return lzn_fail(LZN_ERR_FORMAT, "%s:%d: %s", vocab_path, err.line, err.text);
  lzn_status s = load_vocab_object(vocab, vocab_path, out);
  json_decref(vocab);
  char *text = NULL;
  size_t len = 0;
  if (s == LZN_OK) s = lzn_read_file(merges_path, &text, &len);
  int32_t rank = 0;
  for (size_t i = 0; s == LZN_OK && i < len;) {
    const char *nl = memchr(text + i, '\n', len - i);
    size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
    const char *line = text + i;
    i += n + 1;
    if (n > 0 && line[n - 1] == '\r') n--;
    if (n == 0 || (rank == 0 && n >= 9 && memcmp(line, "#version:", 9) == 0)) continue;
    s = add_merge_line(*out, merges_path, rank++, line, n);
  }
  free(text);
  if (s == LZN_OK) s = finish(*out, vocab_path);
  if (s != LZN_OK) lzn_tokenizer_free(*out), *out = NULL;
  return s;
}

/* Hugging Face tokenizer.json: model {type BPE, vocab, merges}, a ByteLevel
 * pre-tokenizer, added_tokens [{id, content, special}]. */
static lzn_status load_tokenizer_json(const char *path, lzn_tokenizer **out) {
  json_error_t err;
  json_t *root = json_load_file(path, 0, &err);
  if (root == NULL) return lzn_fail(LZN_ERR_FORMAT, "%s:%d: %s", path, err.line, err.text);
  lzn_status s = LZN_OK;
  const json_t *model = json_object_get(root, "model");
  const json_t *type = json_object_get(model, "type");
  const json_t *pre = json_object_get(root, "pre_tokenizer");
  const json_t *pre_type = json_object_get(pre, "type");
  if (!json_is_string(type) || strcmp(json_string_value(type), "BPE") != 0)
    s = lzn_fail(LZN_ERR_UNSUPPORTED, "%s: model.type is %s; lazyneuron reads BPE tokenizer.json "
                 "files", path, json_is_string(type) ? json_string_value(type) : kind_of(type));
  else if (!json_is_string(pre_type) || strcmp(json_string_value(pre_type), "ByteLevel") != 0)
    s = lzn_fail(LZN_ERR_UNSUPPORTED, "%s: pre_tokenizer.type is %s; lazyneuron reads GPT-2's "
                 "ByteLevel", path, json_is_string(pre_type) ? json_string_value(pre_type)
                                                            : kind_of(pre_type));
  if (s == LZN_OK) s = load_vocab_object(json_object_get(model, "vocab"), path, out);
  const json_t *merges = json_object_get(model, "merges");
  if (s == LZN_OK && !json_is_array(merges))
    s = lzn_fail(LZN_ERR_FORMAT, "%s: model.merges is %s, not an array", path, kind_of(merges));
  for (size_t i = 0; s == LZN_OK && i < json_array_size(merges); i++) {
    const json_t *m = json_array_get(merges, i);
    if (json_is_string(m))
      s = add_merge_line(*out, path, (int32_t)i, json_string_value(m), json_string_length(m));
    else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
             json_is_string(json_array_get(m, 1)))
      s = add_spelled_merge(*out, path, (int32_t)i, json_string_value(json_array_get(m, 0)),
                            json_string_length(json_array_get(m, 0)),
                            json_string_value(json_array_get(m, 1)),
                            json_string_length(json_array_get(m, 1)));
    else s = lzn_fail(LZN_ERR_FORMAT, "%s: model.merges[%zu] is neither \"a b\" nor [a, b]", path, i);
  }
  const json_t *added = json_object_get(root, "added_tokens");
  for (size_t i = 0; s == LZN_OK && i < json_array_size(added); i++) {
    const json_t *a = json_array_get(added, i);
    const json_t *id = json_object_get(a, "id"), *content = json_object_get(a, "content");
    if (!json_is_integer(id) || json_integer_value(id) < 0 ||
        json_integer_value(id) >= (*out)->n_vocab || !json_is_string(content)) {
      s = lzn_fail(LZN_ERR_FORMAT, "%s: added_tokens[%zu] needs an id in [0, %d) and a content "
                   "string", path, i, (*out)->n_vocab);
      break;
    }
    const int32_t tid = (int32_t)json_integer_value(id);
    if ((*out)->piece[tid] == NULL)
      s = lzn_tokenizer_set_piece(*out, tid, json_string_value(content), json_string_length(content));
    if (json_is_true(json_object_get(a, "special"))) (*out)->attr[tid] = LZN_TOKEN_CONTROL;
  }
  json_decref(root);
  if (s == LZN_OK) s = finish(*out, path);
  if (s != LZN_OK) lzn_tokenizer_free(*out), *out = NULL;
  return s;
}

lzn_status lzn_bpe_load_dir(const char *dir, lzn_tokenizer **out) {
  *out = NULL;
  char path[4096];
  snprintf(path, sizeof path, "%s/vocab.json", dir);
  if (file_exists(path)) return load_vocab_merges(dir, out);
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  if (file_exists(path)) return load_tokenizer_json(path, out);
  return LZN_OK;
}

lzn_status lzn_bpe_from_gguf(const lzn_gguf_file *f, lzn_tokenizer **out) {
  *out = NULL;
  const lzn_gguf_kv *tokens, *merges, *types = lzn_gguf_find(f, "tokenizer.ggml.token_type");
  lzn_status s = lzn_gguf_get_array(f, "tokenizer.ggml.tokens", LZN_GGUF_STRING, &tokens);
  if (s == LZN_OK) s = lzn_gguf_get_array(f, "tokenizer.ggml.merges", LZN_GGUF_STRING, &merges);
  if (s != LZN_OK) return s;
  if (tokens->n == 0 || tokens->n > LZN_MAX_VOCAB)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries, not in [1, %d]",
                    f->path, (unsigned long long)tokens->n, LZN_MAX_VOCAB);
  if (types && (types->elem_type != LZN_GGUF_I32 || types->n != tokens->n))
    return lzn_fail(LZN_ERR_FORMAT, "%s: tokenizer.ggml.token_type must be %llu int32 values",
                    f->path, (unsigned long long)tokens->n);
  s = lzn_tokenizer_alloc(LZN_TOKENIZER_GPT2, (int)tokens->n, out);
  for (uint64_t i = 0; s == LZN_OK && i < tokens->n; i++) {
    const lzn_gguf_string str = lzn_gguf_elem_string(tokens, i);
    s = set_spelled(*out, f->path, (int32_t)i, str.data, str.len);
    if (types && lzn_gguf_elem_i32(types, i) == 3) (*out)->attr[i] = LZN_TOKEN_CONTROL;
  }
  if (s == LZN_OK) s = lzn_tokenizer_index(*out);
  for (uint64_t i = 0; s == LZN_OK && i < merges->n && i < INT32_MAX; i++) {
    const lzn_gguf_string str = lzn_gguf_elem_string(merges, i);
    s = add_merge_line(*out, f->path, (int32_t)i, str.data, str.len);
  }
  if (s == LZN_OK) s = finish(*out, f->path);
  if (s != LZN_OK) lzn_tokenizer_free(*out), *out = NULL;
  return s;
}
