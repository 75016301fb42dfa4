/*
 * gguf_keys.c: configuration values from GGUF metadata (gguf_keys.h).
 */
#include "arch/gguf_keys.h"

#include <stdio.h>

#include "arch/config_json.h"
#include "core/errors.h"

/* An unsigned size under {arch}.name (u32, u64 or a non-negative i32 are
 * all seen in the wild), in [1, LZN_CONFIG_MAX_SIZE]; absent: required ->
 * FORMAT, else fallback. */
lzn_status lzn_gguf_key_size(const lzn_gguf_file *f, const char *arch, const char *name, int required,
                             int fallback, int *out) {
  char key[128];
  snprintf(key, sizeof key, "%s.%s", arch, name);
  const lzn_gguf_kv *kv = lzn_gguf_find(f, key);
  if (kv == NULL) {
    if (required) return lzn_fail(LZN_ERR_FORMAT, "%s: GGUF key \"%s\" is missing", f->path, key);
    *out = fallback;
    return LZN_OK;
  }
  uint64_t v;
  if (kv->type == LZN_GGUF_U32) v = lzn_gguf_elem_u32(kv, 0);
  else if (kv->type == LZN_GGUF_U64) v = lzn_gguf_elem_u64(kv, 0);
  else if (kv->type == LZN_GGUF_I32 && lzn_gguf_elem_i32(kv, 0) >= 0) v = (uint64_t)lzn_gguf_elem_i32(kv, 0);
  else
    return lzn_fail(LZN_ERR_FORMAT, "%s: GGUF key \"%s\" is %s, expected an unsigned integer",
                    f->path, key, lzn_gguf_type_name(kv->type));
  if (v < 1 || v > LZN_CONFIG_MAX_SIZE)
    return lzn_fail(LZN_ERR_FORMAT, "%s: GGUF key \"%s\" is %llu, must be in [1, %d]", f->path, key,
                    (unsigned long long)v, LZN_CONFIG_MAX_SIZE);
  *out = (int)v;
  return LZN_OK;
}

/* A real under key (f32 or f64); absent: fallback. */
lzn_status lzn_gguf_key_real(const lzn_gguf_file *f, const char *key, double fallback, double *out) {
  const lzn_gguf_kv *kv = lzn_gguf_find(f, key);
  if (kv == NULL) {
    *out = fallback;
    return LZN_OK;
  }
  if (kv->type == LZN_GGUF_F32) *out = lzn_gguf_elem_f32(kv, 0);
  else if (kv->type == LZN_GGUF_F64) *out = lzn_gguf_elem_f64(kv, 0);
  else
    return lzn_fail(LZN_ERR_FORMAT, "%s: GGUF key \"%s\" is %s, expected a float", f->path, key,
                    lzn_gguf_type_name(kv->type));
  return LZN_OK;
}

/* A string under key, NUL-terminated into buf; absent: "". */
lzn_status lzn_gguf_key_text(const lzn_gguf_file *f, const char *key, char *buf, size_t cap) {
  buf[0] = '\0';
  if (lzn_gguf_find(f, key) == NULL) return LZN_OK;
  lzn_gguf_string str;
  const lzn_status s = lzn_gguf_get_string(f, key, &str);
  if (s == LZN_OK) snprintf(buf, cap, "%.*s", (int)(str.len < cap ? str.len : cap - 1), str.data);
  return s;
}

lzn_status lzn_gguf_key_bool(const lzn_gguf_file *f, const char *key, int fallback, int *out) {
  if (lzn_gguf_find(f, key) == NULL) {
    *out = fallback;
    return LZN_OK;
  }
  return lzn_gguf_get_bool(f, key, out);
}

lzn_status lzn_gguf_key_vocab(const lzn_gguf_file *f, int *vocab, int *tied) {
  const lzn_file_tensor *embed = lzn_gguf_find_tensor(f, "token_embd.weight");
  if (embed == NULL || embed->n_dims != 2)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"token_embd.weight\" is missing or not 2-D", f->path);
  if (embed->shape[0] < 1 || embed->shape[0] > LZN_CONFIG_MAX_SIZE)
    return lzn_fail(LZN_ERR_FORMAT, "%s: token_embd.weight has %lld rows", f->path, (long long)embed->shape[0]);
  *vocab = (int)embed->shape[0];
  *tied = lzn_gguf_find_tensor(f, "output.weight") == NULL;
  return LZN_OK;
}
