/*
 * gguf_keys.h: reading an architecture's configuration from GGUF metadata
 * (llama_gguf.c, opt_gguf.c), with the tolerance llama.cpp's reader has for
 * integer widths. Private.
 */
#ifndef LZN_GGUF_KEYS_H
#define LZN_GGUF_KEYS_H

#include <stddef.h>

#include "format/gguf.h"

/* An unsigned size under "{arch}.{name}" (u32, u64 or a non-negative i32
 * are all seen in the wild), in [1, LZN_CONFIG_MAX_SIZE]; absent: required
 * -> FORMAT, else fallback. */
lzn_status lzn_gguf_key_size(const lzn_gguf_file *f, const char *arch, const char *name, int required,
                             int fallback, int *out);

/* A real under key (f32 or f64); absent: fallback. */
lzn_status lzn_gguf_key_real(const lzn_gguf_file *f, const char *key, double fallback, double *out);

/* A string under key, NUL-terminated into buf (truncated to cap); absent: "". */
lzn_status lzn_gguf_key_text(const lzn_gguf_file *f, const char *key, char *buf, size_t cap);

/* A bool under key; absent: fallback. */
lzn_status lzn_gguf_key_bool(const lzn_gguf_file *f, const char *key, int fallback, int *out);

/* The vocabulary: token_embd.weight's rows (2-D, in [1, LZN_CONFIG_MAX_SIZE]);
 * and whether the LM head is tied (no output.weight). FORMAT otherwise. */
lzn_status lzn_gguf_key_vocab(const lzn_gguf_file *f, int *vocab, int *tied);

#endif /* LZN_GGUF_KEYS_H */
