/*
 * wtype.c: the weight-type traits table, names, and scalar element
 * conversions.
 */
#include "core/wtype.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <strings.h>
#include <string.h>

#include "core/errors.h"
#include "kernels/half.h"

/* The fp16 scales of each block type, by byte offset. */
#define SCALE_AT_0 1, {0, 0}
#define K_SCALES 2, {offsetof(lzn_block_q4_k, d), offsetof(lzn_block_q4_k, dmin)}
#define Q6_K_SCALE 1, {offsetof(lzn_block_q6_k, d), 0}
#define NO_SCALES 0, {0, 0}

const lzn_weight_traits lzn_weight_traits_table[LZN_WEIGHT_TYPE_COUNT] = {
    /*          name    ggml  block     block bytes             dot type         align file type, scales, x only */
    [LZN_WEIGHTS_F32] = {"F32", 0, 1, 4, LZN_WEIGHTS_F32, 4, 0, NO_SCALES, 0},
    [LZN_WEIGHTS_F16] = {"F16", 1, 1, 2, LZN_WEIGHTS_F32, 2, 1, NO_SCALES, 0},
    [LZN_WEIGHTS_BF16] = {"BF16", 30, 1, 2, LZN_WEIGHTS_F32, 2, 32, NO_SCALES, 0},
    [LZN_WEIGHTS_Q8_0] = {"Q8_0", 8, LZN_QK, sizeof(lzn_block_q8_0), LZN_WEIGHTS_Q8_0, 2, 7, SCALE_AT_0, 0},
    [LZN_WEIGHTS_Q4_0] = {"Q4_0", 2, LZN_QK, sizeof(lzn_block_q4_0), LZN_WEIGHTS_Q8_0, 2, 2, SCALE_AT_0, 0},
    /* File types: llama.cpp's MOSTLY_Q4_K_S, _Q5_K_S and _Q6_K, the mixes
     * that are (mostly) the one type. */
    [LZN_WEIGHTS_Q4_K] = {"Q4_K", 12, LZN_QK_K, sizeof(lzn_block_q4_k), LZN_WTYPE_Q8_K, 2, 14, K_SCALES, 0},
    [LZN_WEIGHTS_Q5_K] = {"Q5_K", 13, LZN_QK_K, sizeof(lzn_block_q5_k), LZN_WTYPE_Q8_K, 2, 16, K_SCALES, 0},
    [LZN_WEIGHTS_Q6_K] = {"Q6_K", 14, LZN_QK_K, sizeof(lzn_block_q6_k), LZN_WTYPE_Q8_K, 2, 18, Q6_K_SCALE, 0},
    /* x only (blocks.h): its fp32 scale is the activation's, never a file's. */
    [LZN_WTYPE_Q8_K] = {"Q8_K", 15, LZN_QK_K, sizeof(lzn_block_q8_k), LZN_WTYPE_Q8_K, 4, 0, NO_SCALES, 1},
};
_Static_assert(LZN_WEIGHTS_Q6_K + 2 == LZN_WEIGHT_TYPE_COUNT && LZN_WTYPE_Q8_K == LZN_WEIGHTS_Q6_K + 1,
               "a traits row per lzn_weight_type, then the activation-only types");
_Static_assert(offsetof(lzn_block_q5_k, d) == offsetof(lzn_block_q4_k, d) &&
                   offsetof(lzn_block_q5_k, dmin) == offsetof(lzn_block_q4_k, dmin),
               "Q5_K's scales lie where Q4_K's do");

const char *lzn_wtype_name(lzn_weight_type t) {
  const int known = (int)t > 0 && (int)t < LZN_WEIGHT_TYPE_COUNT && lzn_weight_traits_table[t].name != NULL;
  return known ? lzn_weight_traits_table[t].name : "?";
}

/* Whether fp16 h is Inf or NaN: its exponent all ones. */
static inline unsigned fp16_not_finite(const unsigned char *at) {
  uint16_t h;
  memcpy(&h, at, sizeof h);
  return (h & 0x7c00u) == 0x7c00u;
}

size_t lzn_wtype_first_bad_block(lzn_weight_type t, const void *data, size_t n_blocks) {
  const lzn_weight_traits *w = &lzn_weight_traits_table[t];
  const unsigned char *p = data;
  /* Every block of every quantized matrix of a file, at load: chunks
   * checked without a branch per block (a loop with an early return ran
   * at ~1.7 GB/s, a quarter of loading a GGUF), the first bad one then
   * found within its chunk. */
  enum { CHUNK = 256 };
  for (size_t b0 = 0; b0 < n_blocks; b0 += CHUNK) {
    const size_t n = n_blocks - b0 < CHUNK ? n_blocks - b0 : CHUNK;
    const unsigned char *chunk = p + b0 * w->block_bytes;
    unsigned bad = 0;
    for (int k = 0; k < w->n_scales; k++)
      for (size_t b = 0; b < n; b++) bad |= fp16_not_finite(chunk + b * w->block_bytes + w->scale_offset[k]);
    if (!bad) continue;
    for (size_t b = 0; b < n; b++)
      for (int k = 0; k < w->n_scales; k++)
        if (fp16_not_finite(chunk + b * w->block_bytes + w->scale_offset[k])) return b0 + b;
  }
  return n_blocks;
}

size_t lzn_wtype_first_bad_block_threads(lzn_weight_type t, const void *data, size_t n_blocks, int n_threads) {
  const size_t block_bytes = lzn_weight_traits_table[t].block_bytes;
  const long n_chunks = (long)((n_blocks + LZN_WTYPE_SCAN_CHUNK - 1) / LZN_WTYPE_SCAN_CHUNK);
  size_t bad = n_blocks;
#pragma omp parallel for num_threads(n_threads < 1 ? 1 : n_threads) schedule(static) reduction(min : bad)
  for (long c = 0; c < n_chunks; c++) {
    const size_t c0 = (size_t)c * LZN_WTYPE_SCAN_CHUNK;
    const size_t n = n_blocks - c0 < LZN_WTYPE_SCAN_CHUNK ? n_blocks - c0 : LZN_WTYPE_SCAN_CHUNK;
    const size_t at = lzn_wtype_first_bad_block(t, (const char *)data + c0 * block_bytes, n);
    if (at < n && c0 + at < bad) bad = c0 + at;
  }
  return bad;
}

const char *lzn_wtype_list(char *buf, size_t size) {
  if (size > 0) buf[0] = '\0';
  for (int t = 1; t < LZN_WEIGHT_TYPE_COUNT; t++) {
    const size_t used = strlen(buf);
    if (lzn_wtype_valid((lzn_weight_type)t) && used < size)
      snprintf(buf + used, size - used, "%s%s", used ? ", " : "", lzn_weight_traits_table[t].name);
  }
  return buf;
}

int lzn_wtype_from_ggml(uint32_t ggml_id, lzn_weight_type *out) {
  for (int t = 1; t < LZN_WEIGHT_TYPE_COUNT; t++)
    if (lzn_wtype_valid((lzn_weight_type)t) && lzn_weight_traits_table[t].ggml_id == (int)ggml_id) {
      *out = (lzn_weight_type)t;
      return 1;
    }
  return 0;
}

/* The cache stores its rows in the weight type of the same name. */
static const struct {
  const char *name;
  lzn_weight_type rows;
} kv_types[] = {
    [LZN_KV_F32] = {"F32", LZN_WEIGHTS_F32},
    [LZN_KV_F16] = {"F16", LZN_WEIGHTS_F16},
    [LZN_KV_BF16] = {"BF16", LZN_WEIGHTS_BF16},
    [LZN_KV_Q8_0] = {"Q8_0", LZN_WEIGHTS_Q8_0},
};
_Static_assert(sizeof kv_types / sizeof kv_types[0] == LZN_KV_TYPE_COUNT, "a row per lzn_kv_type");

lzn_weight_type lzn_kv_weight_type(lzn_kv_type kv) { return kv_types[kv].rows; }

float lzn_wtype_element(lzn_weight_type type, const void *data, size_t i) {
  const unsigned char *p = data;
  uint16_t h;
  float f;
  switch (type) {
  case LZN_WEIGHTS_F32:
    memcpy(&f, p + 4 * i, 4);
    return f;
  case LZN_WEIGHTS_F16:
    memcpy(&h, p + 2 * i, 2);
    return lzn_f16_to_f32(h);
  case LZN_WEIGHTS_BF16:
    memcpy(&h, p + 2 * i, 2);
    return lzn_bf16_to_f32(h);
  default:
    return 0.0f;
  }
}

/* Values of magnitude 65520 and more round to inf in binary16 (65504 is
 * the largest finite one). */
#define LZN_F16_OVERFLOW 65520.0f

/* Values checked together: a loop without an early exit vectorizes (the
 * one-value-at-a-time check was ~10 % of loading a K-quant file whose
 * down-projection is transposed and requantized at load). */
#define UNFIT_CHUNK 256

size_t lzn_wtype_first_unfit(lzn_weight_type type, const float *x, size_t n) {
  /* |x| < limit is false for inf and NaN too. */
  const float limit = type == LZN_WEIGHTS_F16 ? LZN_F16_OVERFLOW : INFINITY;
  for (size_t i0 = 0; i0 < n; i0 += UNFIT_CHUNK) {
    const size_t end = n - i0 < UNFIT_CHUNK ? n : i0 + UNFIT_CHUNK;
    int unfit = 0;
#pragma omp simd reduction(| : unfit)
    for (size_t i = i0; i < end; i++) unfit |= !(fabsf(x[i]) < limit);
    if (!unfit) continue;
    for (size_t i = i0; i < end; i++)
      if (!(fabsf(x[i]) < limit)) return i;
  }
  return n;
}

/* ------------------------------------------------------------ public */

LZN_API int64_t lzn_weight_row_bytes(lzn_weight_type type, int64_t n) {
  if (!lzn_wtype_valid(type) || n < 0) return -1;
  return (int64_t)lzn_wtype_row_bytes(type, (size_t)n);
}

LZN_API const char *lzn_weight_type_name(lzn_weight_type type) {
  if (type == LZN_WEIGHTS_AS_STORED) return "AS_STORED";
  return lzn_wtype_valid(type) ? lzn_weight_traits_table[type].name : NULL;
}

LZN_API lzn_status lzn_weight_type_from_name(const char *name, lzn_weight_type *out) {
  if (name == NULL || out == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_weight_type_from_name: name and out must not be NULL");
  for (int t = 0; t < LZN_WEIGHT_TYPE_COUNT; t++) {
    const char *n = lzn_weight_type_name((lzn_weight_type)t);
    if (n != NULL && strcasecmp(n, name) == 0) {
      *out = (lzn_weight_type)t;
      return LZN_OK;
    }
  }
  char names[256] = "";
  for (int t = 0; lzn_weight_type_name((lzn_weight_type)t) != NULL; t++)
    snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", t ? ", " : "",
             lzn_weight_type_name((lzn_weight_type)t));
  return lzn_fail(LZN_ERR_INVALID_ARG, "\"%.64s\" is not a weight type (%s)", name, names);
}

LZN_API const char *lzn_kv_type_name(lzn_kv_type type) {
  return (int)type >= 0 && (int)type < LZN_KV_TYPE_COUNT ? kv_types[type].name : NULL;
}

LZN_API lzn_status lzn_kv_type_from_name(const char *name, lzn_kv_type *out) {
  if (name == NULL || out == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_kv_type_from_name: name and out must not be NULL");
  for (int t = 0; t < LZN_KV_TYPE_COUNT; t++)
    if (strcasecmp(kv_types[t].name, name) == 0) {
      *out = (lzn_kv_type)t;
      return LZN_OK;
    }
  return lzn_fail(LZN_ERR_INVALID_ARG, "\"%.64s\" is not a KV cache type (F32, F16, BF16, Q8_0)", name);
}
