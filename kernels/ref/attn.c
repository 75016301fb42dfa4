/*
 * ref/attn.c: the reference attention kernels for every KV cache type
 * (kernels.h, "attention"). Plain C, obviously correct: each cached value is
 * widened to fp32 exactly (an F16 / BF16 value, or a Q8_0 block's d * q in
 * fp32) and then used as an fp32 value is; sums in fp32 in index order. The
 * store kernels round as the weight types' from_f32 do (nearest even for
 * F16 / BF16; llama.cpp's Q8_0 rule, the last block zero-padded).
 * Compiled without ISA flags.
 */
#include <float.h>
#include <math.h>

#include "kernels/half.h"
#include "kernels/kernels.h"

/* Row j of a cache of rows row_bytes apart. */
static inline const void *row_at(const void *rows, size_t row_bytes, size_t j) {
  return (const char *)rows + j * row_bytes;
}

/* -------------------------------------------- element c of a row, in fp32 */

static float elem_f32(const void *row, size_t c) { return ((const float *)row)[c]; }
static float elem_f16(const void *row, size_t c) { return lzn_f16_to_f32(((const uint16_t *)row)[c]); }
static float elem_bf16(const void *row, size_t c) { return lzn_bf16_to_f32(((const uint16_t *)row)[c]); }
static float elem_q8_0(const void *row, size_t c) {
  const lzn_block_q8_0 *b = (const lzn_block_q8_0 *)row + c / LZN_QK;
  return lzn_f16_to_f32(b->d) * (float)b->qs[c % LZN_QK];
}

/* --------------------------------------------------- narrowing (the store) */

static void narrow_f32(void *row, const float *src, size_t hd) {
  float *out = row;
  for (size_t c = 0; c < hd; c++) out[c] = src[c];
}
static void narrow_f16(void *row, const float *src, size_t hd) {
  uint16_t *out = row;
  for (size_t c = 0; c < hd; c++) out[c] = lzn_f32_to_f16(src[c]);
}
static void narrow_bf16(void *row, const float *src, size_t hd) {
  uint16_t *out = row;
  for (size_t c = 0; c < hd; c++) out[c] = lzn_f32_to_bf16(src[c]);
}
/* llama.cpp's quantize_row_q8_0: d = amax / 127, q = round(x / d). A value
 * that is not finite (a diverged model) stores q = 0 instead of converting
 * NaN to int8, which C leaves undefined. */
static void narrow_q8_0(void *row, const float *src, size_t hd) {
  lzn_block_q8_0 *out = row;
  for (size_t b = 0; b * LZN_QK < hd; b++) {
    float v[LZN_QK] = {0}, amax = 0.0f;
    for (size_t j = 0; j < LZN_QK && b * LZN_QK + j < hd; j++) v[j] = src[b * LZN_QK + j];
    for (size_t j = 0; j < LZN_QK; j++) amax = fabsf(v[j]) > amax ? fabsf(v[j]) : amax;
    const float scale = amax / 127.0f;
    const float inv = fabsf(scale) >= FLT_MIN ? 1.0f / scale : 0.0f;
    out[b].d = lzn_f32_to_f16(scale);
    for (size_t j = 0; j < LZN_QK; j++) {
      const float q = roundf(v[j] * inv);
      out[b].qs[j] = q >= -127.0f && q <= 127.0f ? (int8_t)q : 0;
    }
  }
}

/* ---------------------------------------------------------------- the ops */

static void scores_with(float (*elem)(const void *, size_t), float *scores, size_t score_stride,
                        const float *q, size_t q_stride, size_t n_q, const void *k,
                        size_t row_bytes, size_t n_pos, size_t hd) {
  for (size_t j = 0; j < n_pos; j++) {
    const void *row = row_at(k, row_bytes, j);
    for (size_t i = 0; i < n_q; i++) {
      const float *qi = q + i * q_stride;
      float sum = 0.0f;
      for (size_t c = 0; c < hd; c++) sum += qi[c] * elem(row, c);
      scores[i * score_stride + j] = sum;
    }
  }
}

static void weighted_sum_with(float (*elem)(const void *, size_t), float *out, size_t out_stride,
                              const float *p, size_t p_stride, size_t n_q, const void *v,
                              size_t row_bytes, size_t n_pos, size_t hd) {
  for (size_t j = 0; j < n_pos; j++) {
    const void *row = row_at(v, row_bytes, j);
    for (size_t i = 0; i < n_q; i++) {
      const float pj = p[i * p_stride + j];
      float *oi = out + i * out_stride;
      for (size_t c = 0; c < hd; c++) oi[c] += pj * elem(row, c);
    }
  }
}

static void store_with(void (*narrow)(void *, const float *, size_t), void *dst, size_t row_bytes,
                       const float *src, size_t src_stride, size_t n_rows, size_t hd) {
  for (size_t r = 0; r < n_rows; r++) narrow((char *)dst + r * row_bytes, src + r * src_stride, hd);
}

/* The softmax passes: libm's expf, the sum in index order. */
static float scalar_attn_max(const float *s, size_t n) {
  float m = -INFINITY;
  for (size_t j = 0; j < n; j++) m = s[j] > m ? s[j] : m;
  return m;
}

static float scalar_attn_exp_sum(float *s, size_t n, float shift) {
  float sum = 0.0f;
  for (size_t j = 0; j < n; j++) sum += (s[j] = expf(s[j] - shift));
  return sum;
}

/* One set of three kernels per type, named scalar_attn_<type>_<op>. */
#define REF_ATTN_TYPE(name)                                                                        \
  static void scalar_attn_##name##_scores(float *scores, size_t score_stride, const float *q,     \
                                          size_t q_stride, size_t n_q, const void *k,             \
                                          size_t row_bytes, size_t n_pos, size_t hd) {            \
    scores_with(elem_##name, scores, score_stride, q, q_stride, n_q, k, row_bytes, n_pos, hd);   \
  }                                                                                                \
  static void scalar_attn_##name##_weighted_sum(float *out, size_t out_stride, const float *p,    \
                                                size_t p_stride, size_t n_q, const void *v,       \
                                                size_t row_bytes, size_t n_pos, size_t hd) {      \
    weighted_sum_with(elem_##name, out, out_stride, p, p_stride, n_q, v, row_bytes, n_pos, hd);  \
  }                                                                                                \
  static void scalar_attn_##name##_store(void *dst, size_t row_bytes, const float *src,           \
                                         size_t src_stride, size_t n_rows, size_t hd) {           \
    store_with(narrow_##name, dst, row_bytes, src, src_stride, n_rows, hd);                       \
  }

REF_ATTN_TYPE(f32)
REF_ATTN_TYPE(f16)
REF_ATTN_TYPE(bf16)
REF_ATTN_TYPE(q8_0)

#define INSTALL_REF_ATTN(t, type, name)                                            \
  do {                                                                             \
    LZN_SET(t->attn[type].store, LZN_ISA_SCALAR, scalar_attn_##name##_store);      \
    LZN_SET(t->attn[type].scores, LZN_ISA_SCALAR, scalar_attn_##name##_scores);    \
    LZN_SET(t->attn[type].weighted_sum, LZN_ISA_SCALAR,                            \
            scalar_attn_##name##_weighted_sum);                                    \
  } while (0)

void lzn_install_ref_attn(lzn_kernel_table *t);
void lzn_install_ref_attn(lzn_kernel_table *t) {
  INSTALL_REF_ATTN(t, LZN_KV_F32, f32);
  INSTALL_REF_ATTN(t, LZN_KV_F16, f16);
  INSTALL_REF_ATTN(t, LZN_KV_BF16, bf16);
  INSTALL_REF_ATTN(t, LZN_KV_Q8_0, q8_0);
  LZN_SET(t->attn_max, LZN_ISA_SCALAR, scalar_attn_max);
  LZN_SET(t->attn_exp_sum, LZN_ISA_SCALAR, scalar_attn_exp_sum);
}
