/*
 * slot_file.h: a slot's sequence on disk (POST /slots/{id}?action=save|
 * restore): "LZNSLOT1", int32 n_tokens, the tokens in its KV cache, then
 * the library's lzn_context_state of that cache. The tokens let the
 * scheduler reuse the restored prefix for a new prompt.
 */
#ifndef LZN_SERVER_SLOT_FILE_H
#define LZN_SERVER_SLOT_FILE_H

#include <stddef.h>
#include <stdint.h>

#include <lazyneuron.h>

/* Writes ctx's state and tokens[0..n_tokens) to path; *n_bytes the file's
 * size. Returns 0 with *error (capacity 256) on failure. */
int slot_file_save(const char *path, const lzn_context *ctx, const int32_t *tokens, int n_tokens,
                   size_t *n_bytes, char error[256]);

/* Reads path into ctx and tokens[0..max_tokens): checks the magic, the
 * count (<= max_tokens, the context's), each id (< vocab), and that the
 * library's state holds as many tokens. *n_tokens, *n_bytes on success;
 * 0 with *error on failure (ctx then unchanged, or emptied when the file's
 * count and state disagree). */
int slot_file_load(const char *path, lzn_context *ctx, int32_t *tokens, int max_tokens, int vocab,
                   int *n_tokens, size_t *n_bytes, char error[256]);

#endif /* LZN_SERVER_SLOT_FILE_H */
