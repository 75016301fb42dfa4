/*
 * bpe.c: GPT-2's byte-level BPE: the pre-tokenizer (GPT-2's regex, by hand
 * on code points) and the merges, lowest rank first.
 *
 * The regex, alternatives tried in order at each position:
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * The one subtle alternative is \s+(?!\S): a whitespace run followed by a
 * non-space gives back its last character, so that " word" keeps its space.
 * \s is Unicode's White_Space, as in Python's `regex` (GPT-2's own
 * encoder) and Rust's regex (Hugging Face tokenizers); JavaScript's \s
 * (gpt-3-encoder) differs on U+0085 and U+FEFF only, which the test
 * corpus therefore avoids.
 */
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

/* ------------------------------------------------- byte-to-unicode spelling */

/* GPT-2 spells byte b as the character b itself if b is printable Latin-1
 * ('!'..'~', '¡'..'¬', '®'..'ÿ'), else as U+0100 + the count of
 * non-printable bytes before it. */
static int printable_byte(unsigned b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static int unspell_char(uint32_t cp) {
  if (cp < 0x100) return printable_byte(cp) ? (int)cp : -1;
  unsigned n = 0;
  for (unsigned b = 0; b < 256; b++)
    if (!printable_byte(b) && 0x100 + n++ == cp) return (int)b;
  return -1;
}

int lzn_gpt2_unspell(const char *s, size_t n, char *out, size_t *out_len) {
  size_t w = 0;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    int valid;
    i += lzn_utf8_decode((const unsigned char *)s + i, n - i, &cp, &valid);
    const int b = valid ? unspell_char(cp) : -1;
    if (b < 0) return 0;
    out[w++] = (char)b;
  }
  *out_len = w;
  return 1;
}

/* ---------------------------------------------------------------- merges */

static uint64_t pair_key(int32_t left, int32_t right) {
  return ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1;
}

static size_t pair_slot(const lzn_merge_map *m, uint64_t key) {
  uint64_t h = key * 0x9e3779b97f4a7c15ull;
  size_t i = (size_t)(h >> 20) & m->mask;
  while (m->slots[i].key != 0 && m->slots[i].key != key) i = (i + 1) & m->mask;
  return i;
}

static lzn_status merges_reserve(lzn_merge_map *m, size_t n_used) {
  if (m->slots && 2 * (n_used + 1) <= m->mask + 1) return LZN_OK;
  const size_t size = m->slots ? 2 * (m->mask + 1) : 1024;
  lzn_merge_map grown = {calloc(size, sizeof(lzn_merge)), size - 1};
  if (grown.slots == NULL) return lzn_fail(LZN_ERR_NOMEM, "tokenizer: out of memory for merges");
  if (m->slots)
    for (size_t i = 0; i <= m->mask; i++)
      if (m->slots[i].key) grown.slots[pair_slot(&grown, m->slots[i].key)] = m->slots[i];
  free(m->slots);
  *m = grown;
  return LZN_OK;
}

lzn_status lzn_bpe_add_merge(lzn_tokenizer *t, int32_t rank, const char *left, size_t left_len,
                             const char *right, size_t right_len) {
  const int32_t a = lzn_tokenizer_find(t, left, left_len);
  const int32_t b = lzn_tokenizer_find(t, right, right_len);
  if (a < 0 || b < 0) return LZN_OK;
  char stack[256];
  char *both = left_len + right_len <= sizeof stack ? stack : malloc(left_len + right_len);
  if (both == NULL) return lzn_fail(LZN_ERR_NOMEM, "tokenizer: out of memory");
  memcpy(both, left, left_len);
  memcpy(both + left_len, right, right_len);
  const int32_t result = lzn_tokenizer_find(t, both, left_len + right_len);
  if (both != stack) free(both);
  if (result < 0) return LZN_OK;
  /* rank = the merge's line, so the map needs a count: rank + 1 bounds it */
  lzn_status s = merges_reserve(&t->merges, (size_t)rank + 1);
  if (s != LZN_OK) return s;
  lzn_merge *slot = &t->merges.slots[pair_slot(&t->merges, pair_key(a, b))];
  if (slot->key == 0) *slot = (lzn_merge){pair_key(a, b), rank, result}; /* first rank wins */
  return LZN_OK;
}

static const lzn_merge *find_merge(const lzn_tokenizer *t, int32_t a, int32_t b) {
  if (t->merges.slots == NULL) return NULL;
  const lzn_merge *m = &t->merges.slots[pair_slot(&t->merges, pair_key(a, b))];
  return m->key ? m : NULL;
}

/* One pre-token's bytes to tokens: start from single bytes, then merge
 * every occurrence of the lowest-ranked adjacent pair, left to right,
 * until no pair has a merge. */
static lzn_status encode_word(const lzn_tokenizer *t, const unsigned char *w, size_t n,
                              int32_t *sym, lzn_token_vec *out) {
  size_t n_sym = 0;
  for (size_t i = 0; i < n; i++) sym[n_sym++] = t->byte_token[w[i]];
  for (;;) {
    const lzn_merge *best = NULL;
    for (size_t i = 0; i + 1 < n_sym; i++) {
      const lzn_merge *m = find_merge(t, sym[i], sym[i + 1]);
      if (m && (!best || m->rank < best->rank)) best = m;
    }
    if (best == NULL) break;
    const int32_t a = (int32_t)((best->key - 1) >> 32), b = (int32_t)((best->key - 1) & 0xffffffffu);
    size_t w_at = 0;
    for (size_t i = 0; i < n_sym;) {
      if (i + 1 < n_sym && sym[i] == a && sym[i + 1] == b) sym[w_at++] = best->result, i += 2;
      else sym[w_at++] = sym[i++];
    }
    n_sym = w_at;
  }
  for (size_t i = 0; i < n_sym; i++) {
    lzn_status s = lzn_token_vec_push(out, sym[i]);
    if (s != LZN_OK) return s;
  }
  return LZN_OK;
}

/* ----------------------------------------------------------- pre-tokenizer */

typedef struct cp_text {
  uint32_t *cp;    /* code points */
  size_t *at;      /* byte offset of each, and at[n] = the length */
  size_t n;
} cp_text;

static int is_other(uint32_t c) { return !lzn_is_space(c) && !lzn_is_letter(c) && !lzn_is_number(c); }

/* The length in code points of the regex's match at i (always >= 1). */
static size_t match_at(const cp_text *x, size_t i) {
  const uint32_t *c = x->cp;
  const size_t n = x->n;
  if (c[i] == '\'' && i + 1 < n) {
    const uint32_t a = c[i + 1], b = i + 2 < n ? c[i + 2] : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  }
  const size_t j = c[i] == ' ' && i + 1 < n ? i + 1 : i; /* the optional space */
  int (*classes[3])(uint32_t) = {lzn_is_letter, lzn_is_number, is_other};
  for (int k = 0; k < 3; k++) {
    if (!classes[k](c[j])) continue;
    size_t e = j + 1;
    while (e < n && classes[k](c[e])) e++;
    return e - i;
  }
  /* c[i] is whitespace here (a space not followed by a letter, number or
   * other character, or another space character) */
  size_t e = i + 1;
  while (e < n && lzn_is_space(c[e])) e++;
  if (e == n || e - i == 1) return e - i; /* \s+(?!\S) at the end, else \s+ */
  return e - i - 1;                       /* \s+(?!\S): leave the last one */
}

lzn_status lzn_bpe_encode(const lzn_tokenizer *t, const char *text, size_t len, lzn_token_vec *out) {
  cp_text x = {malloc((len + 1) * sizeof(uint32_t)), malloc((len + 1) * sizeof(size_t)), 0};
  int32_t *sym = malloc((len + 1) * sizeof(int32_t));
  lzn_status s = LZN_OK;
  if (!x.cp || !x.at || !sym) s = lzn_fail(LZN_ERR_NOMEM, "lzn_tokenize: out of memory");
  for (size_t i = 0; s == LZN_OK && i < len;) {
    int valid;
    x.at[x.n] = i;
    i += lzn_utf8_decode((const unsigned char *)text + i, len - i, &x.cp[x.n], &valid);
    x.n++;
  }
  if (s == LZN_OK) x.at[x.n] = len;
  for (size_t i = 0; s == LZN_OK && i < x.n;) {
    const size_t m = match_at(&x, i);
    s = encode_word(t, (const unsigned char *)text + x.at[i], x.at[i + m] - x.at[i], sym, out);
    i += m;
  }
  free(x.cp), free(x.at), free(sym);
  return s;
}
