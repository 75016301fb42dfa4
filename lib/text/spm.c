/*
 * spm.c: SentencePiece BPE from GGUF metadata, encoded as llama.cpp does:
 * "▁" for each space (and one before the text), one symbol per character,
 * then repeatedly the adjacent pair whose concatenation is a token with the
 * highest score is merged (ties: the leftmost). Symbols left that are not
 * tokens become their bytes' <0xXX> tokens (byte fallback), or <unk>.
 * SentencePiece's BPE gives merged pieces the score -(merge order), so
 * highest score first is its merge order.
 */
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

#define SPACE_MARK "\xe2\x96\x81" /* U+2581 */

/* GGUF's token types (llama.cpp's llama_token_type). */
enum { GGUF_TOKEN_NORMAL = 1, GGUF_TOKEN_UNKNOWN = 2, GGUF_TOKEN_CONTROL = 3,
       GGUF_TOKEN_USER_DEFINED = 4, GGUF_TOKEN_UNUSED = 5, GGUF_TOKEN_BYTE = 6 };

static lzn_status optional_id(const lzn_gguf_file *f, const char *key, int n_vocab, int32_t *out) {
  if (lzn_gguf_find(f, key) == NULL) return LZN_OK;
  uint32_t v;
  lzn_status s = lzn_gguf_get_u32(f, key, &v);
  if (s != LZN_OK) return s;
  if (v >= (uint32_t)n_vocab)
    return lzn_fail(LZN_ERR_FORMAT, "%s: %s = %u is out of [0, %d)", f->path, key, v, n_vocab);
  *out = (int32_t)v;
  return LZN_OK;
}

static lzn_status optional_bool(const lzn_gguf_file *f, const char *key, int *out) {
  return lzn_gguf_find(f, key) ? lzn_gguf_get_bool(f, key, out) : LZN_OK;
}

lzn_status lzn_spm_from_gguf(const lzn_gguf_file *f, lzn_tokenizer **out) {
  *out = NULL;
  const lzn_gguf_kv *tokens, *scores = lzn_gguf_find(f, "tokenizer.ggml.scores");
  const lzn_gguf_kv *types = lzn_gguf_find(f, "tokenizer.ggml.token_type");
  lzn_status s = lzn_gguf_get_array(f, "tokenizer.ggml.tokens", LZN_GGUF_STRING, &tokens);
  if (s != LZN_OK) return s;
  if (tokens->n == 0 || tokens->n > (1u << 22))
    return lzn_fail(LZN_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries", f->path,
                    (unsigned long long)tokens->n);
  if (scores && (scores->elem_type != LZN_GGUF_F32 || scores->n != tokens->n))
    return lzn_fail(LZN_ERR_FORMAT, "%s: tokenizer.ggml.scores must be %llu float32 values", f->path,
                    (unsigned long long)tokens->n);
  if (types && (types->elem_type != LZN_GGUF_I32 || types->n != tokens->n))
    return lzn_fail(LZN_ERR_FORMAT, "%s: tokenizer.ggml.token_type must be %llu int32 values",
                    f->path, (unsigned long long)tokens->n);
  const int n = (int)tokens->n;
  s = lzn_tokenizer_alloc(LZN_TOKENIZER_SPM, n, out);
  lzn_tokenizer *t = *out;
  if (s == LZN_OK && (t->score = calloc((size_t)n, sizeof *t->score)) == NULL)
    s = lzn_fail(LZN_ERR_NOMEM, "tokenizer: out of memory");
  for (int i = 0; s == LZN_OK && i < n; i++) {
    const lzn_gguf_string str = lzn_gguf_elem_string(tokens, (uint64_t)i);
    s = lzn_tokenizer_set_piece(t, i, str.data, str.len);
    t->score[i] = scores ? lzn_gguf_elem_f32(scores, (uint64_t)i) : 0.0f;
    const int32_t type = types ? lzn_gguf_elem_i32(types, (uint64_t)i) : GGUF_TOKEN_NORMAL;
    if (type == GGUF_TOKEN_CONTROL || type == GGUF_TOKEN_UNUSED) t->attr[i] = LZN_TOKEN_CONTROL;
    else if (type == GGUF_TOKEN_UNKNOWN) t->attr[i] = LZN_TOKEN_UNKNOWN;
    else if (type == GGUF_TOKEN_BYTE) {
      char *end = NULL;
      const long b = str.len == 6 && memcmp(str.data, "<0x", 3) == 0 && str.data[5] == '>'
                         ? strtol(t->piece[i] + 3, &end, 16) : -1;
      if (b < 0 || end != t->piece[i] + 5)
        s = lzn_fail(LZN_ERR_FORMAT, "%s: token %d is a byte token but not spelled <0xXX>", f->path, i);
      else if (t->byte_token[b] < 0) t->byte_token[b] = i;
      t->attr[i] = LZN_TOKEN_BYTE;
    }
  }
  t->add_bos = 1, t->add_space_prefix = 1; /* llama.cpp's defaults for SPM */
  if (s == LZN_OK) s = optional_id(f, "tokenizer.ggml.bos_token_id", n, &t->bos);
  if (s == LZN_OK) s = optional_id(f, "tokenizer.ggml.eos_token_id", n, &t->eos);
  if (s == LZN_OK) s = optional_bool(f, "tokenizer.ggml.add_bos_token", &t->add_bos);
  if (s == LZN_OK) s = optional_bool(f, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix);
  if (s == LZN_OK) s = lzn_tokenizer_index(t);
  if (s != LZN_OK) lzn_tokenizer_free(t), *out = NULL;
  return s;
}

/* ------------------------------------------------------------- encoding */

typedef struct symbol {
  int prev, next;  /* neighbours in the list, -1 at the ends */
  size_t at, n;    /* bytes of the text; n == 0 once merged into its left */
} symbol;

typedef struct bigram {
  float score;
  int left, right;
  size_t n;        /* bytes of left + right when queued: stale if they changed */
} bigram;

typedef struct heap {
  bigram *b;
  size_t n, cap;
} heap;

/* a pops before b: the higher score, then the leftmost */
static int before(const bigram *a, const bigram *b) {
  return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static lzn_status heap_push(heap *h, bigram g) {
  if (h->n == h->cap) {
    const size_t cap = h->cap ? 2 * h->cap : 64;
    bigram *b = realloc(h->b, cap * sizeof *b);
    if (b == NULL) return lzn_fail(LZN_ERR_NOMEM, "lzn_tokenize: out of memory");
    h->b = b, h->cap = cap;
  }
  size_t i = h->n++;
  while (i > 0 && before(&g, &h->b[(i - 1) / 2])) h->b[i] = h->b[(i - 1) / 2], i = (i - 1) / 2;
  h->b[i] = g;
  return LZN_OK;
}

static bigram heap_pop(heap *h) {
  const bigram top = h->b[0], last = h->b[--h->n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= h->n) break;
    if (c + 1 < h->n && before(&h->b[c + 1], &h->b[c])) c++;
    if (!before(&h->b[c], &last)) break;
    h->b[i] = h->b[c], i = c;
  }
  if (h->n > 0) h->b[i] = last;
  return top;
}

static lzn_status try_pair(const lzn_tokenizer *t, const char *text, const symbol *sym, int left,
                           int right, heap *h) {
  if (left < 0 || right < 0) return LZN_OK;
  const size_t n = sym[left].n + sym[right].n;
  const int32_t id = lzn_tokenizer_find(t, text + sym[left].at, n);
  if (id < 0) return LZN_OK;
  return heap_push(h, (bigram){t->score[id], left, right, n});
}

/* The first unknown token, for bytes without a byte token. */
static int32_t unknown_token(const lzn_tokenizer *t) {
  for (int32_t i = 0; i < t->n_vocab; i++)
    if (t->attr[i] == LZN_TOKEN_UNKNOWN) return i;
  return -1;
}

lzn_status lzn_spm_encode(const lzn_tokenizer *t, const char *text, size_t len, lzn_token_vec *out) {
  /* the text with "▁" for each space, and one first */
  size_t spaces = 0;
  for (size_t i = 0; i < len; i++) spaces += text[i] == ' ';
  char *s_text = malloc(len + 2 * spaces + 4);
  symbol *sym = malloc((len + 2) * sizeof *sym);
  heap h = {NULL, 0, 0};
  lzn_status s = LZN_OK;
  if (!s_text || !sym) s = lzn_fail(LZN_ERR_NOMEM, "lzn_tokenize: out of memory");
  size_t n = 0;
  if (s == LZN_OK && t->add_space_prefix) memcpy(s_text, SPACE_MARK, 3), n = 3;
  for (size_t i = 0; s == LZN_OK && i < len; i++)
    if (text[i] == ' ') memcpy(s_text + n, SPACE_MARK, 3), n += 3;
    else s_text[n++] = text[i];
  int n_sym = 0;
  for (size_t i = 0; s == LZN_OK && i < n;) {
    uint32_t cp;
    int valid;
    const size_t step = lzn_utf8_decode((const unsigned char *)s_text + i, n - i, &cp, &valid);
    sym[n_sym] = (symbol){n_sym - 1, -1, i, step};
    if (n_sym > 0) sym[n_sym - 1].next = n_sym;
    n_sym++, i += step;
  }
  for (int i = 1; s == LZN_OK && i < n_sym; i++) s = try_pair(t, s_text, sym, i - 1, i, &h);
  while (s == LZN_OK && h.n > 0) {
    const bigram g = heap_pop(&h);
    symbol *l = &sym[g.left], *r = &sym[g.right];
    if (l->n == 0 || r->n == 0 || l->n + r->n != g.n) continue; /* stale */
    l->n += r->n, r->n = 0;
    l->next = r->next;
    if (r->next >= 0) sym[r->next].prev = g.left;
    s = try_pair(t, s_text, sym, l->prev, g.left, &h);
    if (s == LZN_OK) s = try_pair(t, s_text, sym, g.left, l->next, &h);
  }
  for (int i = n_sym > 0 ? 0 : -1; s == LZN_OK && i >= 0; i = sym[i].next) {
    const int32_t id = lzn_tokenizer_find(t, s_text + sym[i].at, sym[i].n);
    if (id >= 0) {
      s = lzn_token_vec_push(out, id);
      continue;
    }
    int have_bytes = 1;
    for (size_t k = 0; k < sym[i].n; k++)
      have_bytes &= t->byte_token[(unsigned char)s_text[sym[i].at + k]] >= 0;
    if (!have_bytes) { /* no byte fallback: the character is one <unk> */
      const int32_t unk = unknown_token(t);
      s = lzn_token_vec_push(out, unk >= 0 ? unk : 0);
      continue;
    }
    for (size_t k = 0; s == LZN_OK && k < sym[i].n; k++)
      s = lzn_token_vec_push(out, t->byte_token[(unsigned char)s_text[sym[i].at + k]]);
  }
  free(s_text), free(sym), free(h.b);
  return s;
}
