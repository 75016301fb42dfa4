/*
 * tokenizer.c: the public tokenizer API (tokenize, pieces, detokenize,
 * info) over the three kinds, and the piece table they share.
 */
#include <stdlib.h>
#include <string.h>

#include "core/abi.h"
#include "core/errors.h"
#include "model/model.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

/* ----------------------------------------------------------- piece table */

lzn_status lzn_tokenizer_alloc(lzn_tokenizer_kind kind, int n_vocab, lzn_tokenizer **out) {
  *out = NULL;
  lzn_tokenizer *t = calloc(1, sizeof *t);
  if (t == NULL) return lzn_fail(LZN_ERR_NOMEM, "tokenizer: out of memory");
  t->kind = kind, t->n_vocab = n_vocab, t->bos = -1, t->eos = -1;
  for (int b = 0; b < 256; b++) t->byte_token[b] = kind == LZN_TOKENIZER_BYTE ? b : -1;
  if (kind != LZN_TOKENIZER_BYTE) {
    t->piece = calloc((size_t)n_vocab, sizeof *t->piece);
    t->piece_len = calloc((size_t)n_vocab, sizeof *t->piece_len);
    t->attr = calloc((size_t)n_vocab, sizeof *t->attr);
    if (!t->piece || !t->piece_len || !t->attr) {
      lzn_tokenizer_free(t);
      return lzn_fail(LZN_ERR_NOMEM, "tokenizer: out of memory for %d tokens", n_vocab);
    }
  }
  *out = t;
  return LZN_OK;
}

LZN_API void lzn_tokenizer_free(lzn_tokenizer *t) {
  if (t == NULL) return;
  if (t->piece)
    for (int i = 0; i < t->n_vocab; i++) free(t->piece[i]);
  free(t->piece), free(t->piece_len), free(t->attr), free(t->score);
  free(t->pieces.slots), free(t->merges.slots);
  free(t->chat_template);
  free(t);
}

lzn_status lzn_tokenizer_set_piece(lzn_tokenizer *t, int32_t id, const char *bytes, size_t len) {
  char *copy = malloc(len + 1);
  if (copy == NULL) return lzn_fail(LZN_ERR_NOMEM, "tokenizer: out of memory");
  memcpy(copy, bytes, len);
  copy[len] = '\0';
  free(t->piece[id]);
  t->piece[id] = copy, t->piece_len[id] = (uint32_t)len;
  return LZN_OK;
}

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 14695981039346656037ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

lzn_status lzn_tokenizer_index(lzn_tokenizer *t) {
  size_t size = 16;
  while (size < 2 * (size_t)t->n_vocab) size *= 2;
  free(t->pieces.slots);
  t->pieces.slots = malloc(size * sizeof *t->pieces.slots);
  if (t->pieces.slots == NULL) return lzn_fail(LZN_ERR_NOMEM, "tokenizer: out of memory");
  memset(t->pieces.slots, 0xff, size * sizeof *t->pieces.slots);
  t->pieces.mask = size - 1;
  for (int32_t id = 0; id < t->n_vocab; id++) {
    if (t->piece[id] == NULL) continue;
    if (lzn_tokenizer_find(t, t->piece[id], t->piece_len[id]) >= 0) continue;
    size_t i = hash_bytes(t->piece[id], t->piece_len[id]) & t->pieces.mask;
    while (t->pieces.slots[i] >= 0) i = (i + 1) & t->pieces.mask;
    t->pieces.slots[i] = id;
  }
  return LZN_OK;
}

int32_t lzn_tokenizer_find(const lzn_tokenizer *t, const char *bytes, size_t len) {
  if (t->pieces.slots == NULL) return -1;
  size_t i = hash_bytes(bytes, len) & t->pieces.mask;
  for (int32_t id; (id = t->pieces.slots[i]) >= 0; i = (i + 1) & t->pieces.mask)
    if (t->piece_len[id] == len && memcmp(t->piece[id], bytes, len) == 0) return id;
  return -1;
}

lzn_status lzn_token_vec_push(lzn_token_vec *v, int32_t id) {
  if (v->n == v->cap) {
    const size_t cap = v->cap ? 2 * v->cap : 64;
    int32_t *ids = realloc(v->ids, cap * sizeof *ids);
    if (ids == NULL) return lzn_fail(LZN_ERR_NOMEM, "tokenizer: out of memory");
    v->ids = ids, v->cap = cap;
  }
  v->ids[v->n++] = id;
  return LZN_OK;
}

lzn_status lzn_utf8_sanitize(const char *text, size_t len, char **out, size_t *out_len) {
  /* U+FFFD takes 3 bytes and replaces at least one */
  char *s = malloc(3 * len + 1);
  if (s == NULL) return lzn_fail(LZN_ERR_NOMEM, "tokenizer: out of memory for %zu bytes", len);
  size_t n = 0;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    int valid;
    const size_t used = lzn_utf8_decode((const unsigned char *)text + i, len - i, &cp, &valid);
    if (valid) memcpy(s + n, text + i, used), n += used;
    else n += lzn_utf8_encode(LZN_REPLACEMENT_CHAR, (unsigned char *)s + n);
    i += used;
  }
  s[n] = '\0';
  *out = s, *out_len = n;
  return LZN_OK;
}

/* ------------------------------------------------------------ public API */

static const char *kind_name(lzn_tokenizer_kind k) {
  return k == LZN_TOKENIZER_BYTE ? "byte-level" : k == LZN_TOKENIZER_GPT2 ? "gpt2" : "spm";
}

LZN_API lzn_status lzn_model_get_tokenizer(const lzn_model *model, const lzn_tokenizer **out) {
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_get_tokenizer: out is NULL");
  *out = NULL;
  if (model == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_get_tokenizer: model is NULL");
  if (model->tokenizer == NULL)
    return lzn_fail(LZN_ERR_UNSUPPORTED, "lzn_model_get_tokenizer: no tokenizer: %s; the model "
                    "runs on token ids only", model->tokenizer_missing[0] ? model->tokenizer_missing
                    : "it was loaded from memory");
  *out = model->tokenizer;
  return LZN_OK;
}

/* Released sizes of lzn_tokenizer_info with a struct_size: 0.3 = now. */
static const lzn_struct_size tokenizer_info_sizes[] = {
    {sizeof(lzn_tokenizer_info), offsetof(lzn_tokenizer_info, kind) + sizeof(const char *)},
};

/* The 0.3 version: 0.2's callers get lib/compat/abi_0_2.c's. */
LZN_API lzn_status lzn_tokenizer_get_info_v0_3(const lzn_tokenizer *t, lzn_tokenizer_info *out);
LZN_SYMVER_DEFAULT(lzn_tokenizer_get_info_v0_3, lzn_tokenizer_get_info, LZN_0.3)
LZN_API lzn_status lzn_tokenizer_get_info_v0_3(const lzn_tokenizer *t, lzn_tokenizer_info *out) {
  if (t == NULL || out == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_tokenizer_get_info: %s is NULL", t ? "out" : "tokenizer");
  lzn_tokenizer_info full = {.struct_size = sizeof full, .vocab_size = t->n_vocab, .bos_id = t->bos,
                             .eos_id = t->eos, .add_bos = t->add_bos, .kind = kind_name(t->kind)};
  return lzn_out_write(out, &full, tokenizer_info_sizes, LZN_N_SIZES(tokenizer_info_sizes),
                       "lzn_tokenizer_get_info");
}

LZN_API lzn_status lzn_tokenize(const lzn_tokenizer *t, const char *text, size_t text_len,
                                int add_bos, int32_t *tokens, int capacity, int *n_tokens) {
  if (n_tokens == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_tokenize: n_tokens is NULL");
  *n_tokens = 0;
  if (t == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_tokenize: tokenizer is NULL");
  if (text == NULL && text_len > 0) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_tokenize: text is NULL");
  if (add_bos != 0 && add_bos != 1)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_tokenize: add_bos = %d, must be 0 or 1", add_bos);
  if (capacity < 0 || (tokens == NULL && capacity > 0))
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_tokenize: capacity = %d with tokens %s", capacity,
                    tokens ? "set" : "NULL");
  lzn_token_vec v = {NULL, 0, 0};
  lzn_status s = LZN_OK;
  if (add_bos && t->bos >= 0) s = lzn_token_vec_push(&v, t->bos);
  if (s == LZN_OK && t->kind == LZN_TOKENIZER_BYTE) {
    for (size_t i = 0; s == LZN_OK && i < text_len; i++)
      s = lzn_token_vec_push(&v, (unsigned char)text[i]);
  } else if (s == LZN_OK && text_len > 0) {
    char *clean;
    size_t clean_len;
    s = lzn_utf8_sanitize(text, text_len, &clean, &clean_len);
    if (s == LZN_OK) {
      s = t->kind == LZN_TOKENIZER_GPT2 ? lzn_bpe_encode(t, clean, clean_len, &v)
                                        : lzn_spm_encode(t, clean, clean_len, &v);
      free(clean);
    }
  }
  if (s == LZN_OK && v.n > (size_t)INT32_MAX)
    s = lzn_fail(LZN_ERR_INVALID_ARG, "lzn_tokenize: %zu tokens do not fit an int", v.n);
  if (s == LZN_OK) {
    *n_tokens = (int)v.n;
    if (v.n > (size_t)capacity)
      s = lzn_fail(LZN_ERR_INVALID_ARG, "lzn_tokenize: capacity = %d, the text needs %zu tokens",
                   capacity, v.n);
    else if (v.n > 0)
      memcpy(tokens, v.ids, v.n * sizeof *tokens);
  }
  free(v.ids);
  return s;
}

/* The bytes a token prints as: a pointer into the piece or into scratch[4]. */
static const char *piece_text(const lzn_tokenizer *t, int32_t id, char *scratch, size_t *len) {
  if (t->kind == LZN_TOKENIZER_BYTE) {
    scratch[0] = (char)id;
    *len = 1;
    return scratch;
  }
  switch ((lzn_token_attr)t->attr[id]) {
  case LZN_TOKEN_CONTROL:
    *len = 0;
    return scratch;
  case LZN_TOKEN_BYTE: /* "<0xAB>" */
    scratch[0] = (char)strtol(t->piece[id] + 3, NULL, 16);
    *len = 1;
    return scratch;
  case LZN_TOKEN_UNKNOWN:
    *len = 5;
    return " \xe2\x81\x87 ";
  case LZN_TOKEN_NORMAL:
  default:
    *len = t->piece_len[id];
    return t->piece[id] ? t->piece[id] : "";
  }
}

/* Copies a piece to out, SPM's "▁" as a space; returns the bytes it takes
 * (writing only what fits in capacity - at). */
static size_t emit(const lzn_tokenizer *t, const char *p, size_t n, char *out, size_t at,
                   size_t capacity) {
  size_t w = 0;
  for (size_t i = 0; i < n;) {
    char c = p[i];
    size_t step = 1;
    if (t->kind == LZN_TOKENIZER_SPM && n - i >= 3 && memcmp(p + i, "\xe2\x96\x81", 3) == 0)
      c = ' ', step = 3;
    if (out && at + w < capacity) out[at + w] = c;
    w++, i += step;
  }
  return w;
}

static int is_control(const lzn_tokenizer *t, int32_t id) {
  return t->attr && t->attr[id] == LZN_TOKEN_CONTROL;
}

LZN_API lzn_status lzn_token_to_piece(const lzn_tokenizer *t, int32_t token, char *buf,
                                      size_t capacity, size_t *len) {
  if (len == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_token_to_piece: len is NULL");
  *len = 0;
  if (t == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_token_to_piece: tokenizer is NULL");
  if (buf == NULL && capacity > 0) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_token_to_piece: buf is NULL");
  if (token < 0 || token >= t->n_vocab)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_token_to_piece: token %d is out of [0, %d)", (int)token,
                    t->n_vocab);
  char scratch[4];
  size_t n;
  const char *p = piece_text(t, token, scratch, &n);
  const size_t need = emit(t, p, n, NULL, 0, 0);
  *len = need;
  if (need > capacity)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_token_to_piece: capacity = %zu, token %d needs %zu "
                    "bytes", capacity, (int)token, need);
  emit(t, p, n, buf, 0, capacity);
  return LZN_OK;
}

LZN_API lzn_status lzn_detokenize(const lzn_tokenizer *t, const int32_t *tokens, int n_tokens,
                                  char *buf, size_t capacity, size_t *len) {
  if (len == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_detokenize: len is NULL");
  *len = 0;
  if (t == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_detokenize: tokenizer is NULL");
  if (n_tokens < 0 || (tokens == NULL && n_tokens > 0))
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_detokenize: n_tokens = %d with tokens %s", n_tokens,
                    tokens ? "set" : "NULL");
  if (buf == NULL && capacity > 0) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_detokenize: buf is NULL");
  for (int i = 0; i < n_tokens; i++)
    if (tokens[i] < 0 || tokens[i] >= t->n_vocab)
      return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_detokenize: tokens[%d] = %d is out of [0, %d)", i,
                      (int)tokens[i], t->n_vocab);
  size_t at = 0;
  int first_text = 1; /* SPM: the prefix's space goes from the first piece with text */
  for (int i = 0; i < n_tokens; i++) {
    char scratch[4];
    size_t n;
    const char *p = piece_text(t, tokens[i], scratch, &n);
    if (is_control(t, tokens[i])) continue;
    if (first_text && n > 0) {
      first_text = 0;
      if (t->kind == LZN_TOKENIZER_SPM && t->add_space_prefix) {
        if (n >= 3 && memcmp(p, "\xe2\x96\x81", 3) == 0) p += 3, n -= 3;
        else if (p[0] == ' ') p += 1, n -= 1;
      }
    }
    at += emit(t, p, n, buf, at, capacity);
  }
  *len = at;
  if (at + 1 > capacity)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_detokenize: capacity = %zu, the text needs %zu bytes "
                    "and a NUL", capacity, at);
  buf[at] = '\0';
  return LZN_OK;
}
