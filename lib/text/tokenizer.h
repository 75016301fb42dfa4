/*
 * tokenizer.h: the tokenizer behind the public lzn_tokenizer handle. Private.
 *
 * Three kinds, each loaded from what a model ships:
 *  - byte-level: token id == byte (models/tiny-opt), described by a
 *    lazyneuron_tokenizer.json of {"type": "byte-level", ...};
 *  - GPT-2 byte-level BPE (GPT-2, OPT): vocab.json + merges.txt, or a
 *    Hugging Face tokenizer.json with a BPE model, or a GGUF file whose
 *    tokenizer.ggml.model is "gpt2"; bpe.c;
 *  - SentencePiece BPE as llama.cpp runs it (LLaMA family): a GGUF file's
 *    tokenizer.ggml.tokens / scores / token_type, model "llama"; spm.c.
 *
 * Layout: token i's piece is piece[i][0..piece_len[i]), spelled as the
 * vocabulary spells it once decoded: GPT-2's pieces are their raw bytes
 * (vocab.json's byte-to-unicode spelling undone at load), SPM's are the
 * piece text with "▁" (U+2581) for a space and <0xXX> for byte tokens.
 */
#ifndef LZN_TOKENIZER_H
#define LZN_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "format/gguf.h"
#include "lazyneuron.h"

typedef enum lzn_tokenizer_kind {
  LZN_TOKENIZER_BYTE = 0,
  LZN_TOKENIZER_GPT2 = 1,
  LZN_TOKENIZER_SPM = 2
} lzn_tokenizer_kind;

/* What a token prints as. */
typedef enum lzn_token_attr {
  LZN_TOKEN_NORMAL = 0,  /* its piece (SPM: "▁" as a space) */
  LZN_TOKEN_CONTROL = 1, /* nothing: BOS, EOS, padding, unused */
  LZN_TOKEN_BYTE = 2,    /* SPM <0xXX>: that one byte */
  LZN_TOKEN_UNKNOWN = 3  /* SPM <unk>: " \u2047 " as llama.cpp prints it */
} lzn_token_attr;

/* Open-addressing hash of pieces to ids (slots hold ids, -1 empty). */
typedef struct lzn_piece_map {
  int32_t *slots;
  size_t mask;
} lzn_piece_map;

/* Hash of GPT-2 merges: the pair (left id, right id) to its rank and the
 * merged token. */
typedef struct lzn_merge {
  uint64_t key;  /* (left << 32 | right) + 1; 0 = empty slot */
  int32_t rank, result;
} lzn_merge;
typedef struct lzn_merge_map {
  lzn_merge *slots;
  size_t mask;
} lzn_merge_map;

struct lzn_tokenizer {
  lzn_tokenizer_kind kind;
  int n_vocab;
  char **piece;           /* [n_vocab], each owned; NULL for the byte-level kind */
  uint32_t *piece_len;    /* [n_vocab] */
  uint8_t *attr;          /* [n_vocab] lzn_token_attr; NULL = all normal */
  float *score;           /* SPM: [n_vocab] merge priority (higher first) */
  int32_t byte_token[256];/* the token of each single byte, -1 if none */
  lzn_piece_map pieces;
  lzn_merge_map merges;   /* GPT-2 */
  int32_t bos, eos;       /* -1 when the tokenizer has none */
  int add_bos;            /* the model's convention, for callers that ask */
  int add_space_prefix;   /* SPM: a "▁" before the text (llama.cpp's add_space_prefix) */
  char *chat_template;    /* the model's chat template (Jinja text), owned; NULL if none */
};

/* A tokenizer with n_vocab empty piece slots (kind set, bos/eos -1).
 * Statuses: OK, NOMEM. */
lzn_status lzn_tokenizer_alloc(lzn_tokenizer_kind kind, int n_vocab, lzn_tokenizer **out);
/* Copies bytes[0..len) as piece id. Statuses: OK, NOMEM. */
lzn_status lzn_tokenizer_set_piece(lzn_tokenizer *t, int32_t id, const char *bytes, size_t len);
/* Builds the piece map once every piece is set; a duplicate piece keeps
 * the lower id (the later one is reachable only by id). Statuses: OK, NOMEM. */
lzn_status lzn_tokenizer_index(lzn_tokenizer *t);
/* The id of a piece, or -1. */
int32_t lzn_tokenizer_find(const lzn_tokenizer *t, const char *bytes, size_t len);

/* A growing array of token ids, for the encoders. */
typedef struct lzn_token_vec {
  int32_t *ids;
  size_t n, cap;
} lzn_token_vec;
lzn_status lzn_token_vec_push(lzn_token_vec *v, int32_t id);

/* The text as UTF-8 with every ill-formed sequence replaced by U+FFFD (the
 * same bytes when it is valid); *out is malloc'ed. Statuses: OK, NOMEM. */
lzn_status lzn_utf8_sanitize(const char *text, size_t len, char **out, size_t *out_len);

/* bpe.c. Adds the merges "left right" (pieces as raw bytes) in rank order;
 * a merge whose parts or result the vocabulary lacks is skipped.
 * Statuses: OK, NOMEM. */
lzn_status lzn_bpe_add_merge(lzn_tokenizer *t, int32_t rank, const char *left, size_t left_len,
                             const char *right, size_t right_len);
/* GPT-2's byte-to-unicode spelling of vocab.json and merges.txt undone:
 * the raw bytes of a piece spelled s[0..n). Returns 0 if a character is
 * not one of the 256 that spelling uses. out holds at least n bytes. */
int lzn_gpt2_unspell(const char *s, size_t n, char *out, size_t *out_len);
/* Encodes valid UTF-8 text. Statuses: OK, NOMEM. */
lzn_status lzn_bpe_encode(const lzn_tokenizer *t, const char *text, size_t len, lzn_token_vec *out);
/* The GPT-2 tokenizer of a folder: vocab.json + merges.txt, or a Hugging
 * Face tokenizer.json whose model is BPE. *out NULL if there is neither.
 * Statuses: OK, IO, FORMAT, NOMEM. */
lzn_status lzn_bpe_load_dir(const char *dir, lzn_tokenizer **out);
/* GGUF "gpt2": tokenizer.ggml.tokens + merges. Statuses: OK, FORMAT, NOMEM. */
lzn_status lzn_bpe_from_gguf(const lzn_gguf_file *f, lzn_tokenizer **out);

/* spm.c. GGUF "llama". Statuses: OK, FORMAT, NOMEM. */
lzn_status lzn_spm_from_gguf(const lzn_gguf_file *f, lzn_tokenizer **out);
/* Encodes valid UTF-8 text. Statuses: OK, NOMEM. */
lzn_status lzn_spm_encode(const lzn_tokenizer *t, const char *text, size_t len, lzn_token_vec *out);

/* load.c. The tokenizer of a model folder (lazyneuron_tokenizer.json,
 * tokenizer.json or vocab.json + merges.txt) or of a GGUF file; *out NULL
 * (and OK) when there is none. Statuses: OK, IO, FORMAT, UNSUPPORTED, NOMEM. */
lzn_status lzn_tokenizer_load_dir(const char *dir, lzn_tokenizer **out);
lzn_status lzn_tokenizer_from_gguf(const lzn_gguf_file *f, lzn_tokenizer **out);
/* chat.c. Sets t->chat_template from a folder's tokenizer_config.json
 * "chat_template" (a string, or a list of {name, template}: "default"),
 * or from a GGUF file's tokenizer.chat_template; absent is no error.
 * Statuses: OK, FORMAT (present but not text), NOMEM. */
lzn_status lzn_chat_template_from_dir(const char *dir, lzn_tokenizer *t);
lzn_status lzn_chat_template_from_gguf(const lzn_gguf_file *f, lzn_tokenizer *t);

#endif /* LZN_TOKENIZER_H */
