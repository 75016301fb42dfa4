/*
 * avx2/attn.c: the attention kernels (kernels.h, "attention") for every KV
 * type with AVX2 + FMA + F16C, from the skeleton in x86/attn.h. The loaders
 * below widen 8 cached values to fp32 exactly as ref/attn.c does. The F16
 * store converts with F16C (round to nearest even, as the reference); the
 * other stores stay the reference's: they run once per new token and head.
 */
#include "kernels/half.h"
#include "kernels/x86/vec_avx2.h"
#include "kernels/x86/attn.h"

static inline vec_f32 vec_mul(vec_f32 a, vec_f32 b) { return _mm256_mul_ps(a, b); }
static inline vec_f32 vec_max(vec_f32 a, vec_f32 b) { return _mm256_max_ps(a, b); }
static inline vec_f32 vec_round(vec_f32 x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline vec_f32 vec_exp2_int(vec_f32 n) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}
static inline vec_f32 vec_zero_below(vec_f32 x, vec_f32 limit, vec_f32 y) {
  return _mm256_andnot_ps(_mm256_cmp_ps(x, limit, _CMP_LT_OQ), y);
}
#include "kernels/x86/attn_exp.h"

static inline vec_f32 load_f32(const void *row, size_t c) { return vec_load((const float *)row + c); }
static inline vec_f32 load_f32_tail(const void *row, size_t c, vec_tail t) {
  return vec_load_tail((const float *)row + c, t);
}

static inline vec_f32 load_f16(const void *row, size_t c) {
  return _mm256_cvtph_ps(vec_load_u16((const uint16_t *)row + c));
}
static inline vec_f32 load_f16_tail(const void *row, size_t c, vec_tail t) {
  return _mm256_cvtph_ps(vec_load_u16_tail((const uint16_t *)row + c, t));
}

static inline vec_f32 bf16_widen(__m128i bits) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
}
static inline vec_f32 load_bf16(const void *row, size_t c) {
  return bf16_widen(vec_load_u16((const uint16_t *)row + c));
}
static inline vec_f32 load_bf16_tail(const void *row, size_t c, vec_tail t) {
  return bf16_widen(vec_load_u16_tail((const uint16_t *)row + c, t));
}

/* Lanes c .. c + 8 lie in one block (8 divides 32); the padding of the last
 * block is in the row and zero, so the tail loads like the rest. */
static inline vec_f32 load_q8_0(const void *row, size_t c) {
  const lzn_block_q8_0 *b = (const lzn_block_q8_0 *)row + c / LZN_QK;
  const __m128i q = _mm_loadl_epi64((const __m128i *)(b->qs + c % LZN_QK));
  return _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(b->d)), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)));
}
static inline vec_f32 load_q8_0_tail(const void *row, size_t c, vec_tail t) {
  (void)t;
  return load_q8_0(row, c);
}

ATTN_KERNELS(avx2_attn_f32, load_f32, load_f32_tail)
ATTN_KERNELS(avx2_attn_f16, load_f16, load_f16_tail)
ATTN_KERNELS(avx2_attn_bf16, load_bf16, load_bf16_tail)
ATTN_KERNELS(avx2_attn_q8_0, load_q8_0, load_q8_0_tail)

static void avx2_attn_f16_store(void *dst, size_t row_bytes, const float *src, size_t src_stride,
                                size_t n_rows, size_t hd) {
  for (size_t r = 0; r < n_rows; r++) {
    uint16_t *out = (uint16_t *)((char *)dst + r * row_bytes);
    const float *in = src + r * src_stride;
    size_t c = 0;
    for (; c + 8 <= hd; c += 8)
      _mm_storeu_si128((__m128i *)(out + c), _mm256_cvtps_ph(_mm256_loadu_ps(in + c), _MM_FROUND_TO_NEAREST_INT));
    for (; c < hd; c++) out[c] = lzn_f32_to_f16(in[c]);
  }
}

#define INSTALL_AVX2_ATTN(t, type, name)                                   \
  do {                                                                    \
    LZN_SET(t->attn[type].scores, LZN_ISA_AVX2, LZN_AT_LEVEL(t, name##_scores)); \
    LZN_SET(t->attn[type].weighted_sum, LZN_ISA_AVX2, LZN_AT_LEVEL(t, name##_weighted_sum)); \
  } while (0)

void lzn_install_avx2_attn(lzn_kernel_table *t);
void lzn_install_avx2_attn(lzn_kernel_table *t) {
  INSTALL_AVX2_ATTN(t, LZN_KV_F32, avx2_attn_f32);
  INSTALL_AVX2_ATTN(t, LZN_KV_F16, avx2_attn_f16);
  INSTALL_AVX2_ATTN(t, LZN_KV_BF16, avx2_attn_bf16);
  INSTALL_AVX2_ATTN(t, LZN_KV_Q8_0, avx2_attn_q8_0);
  LZN_SET(t->attn[LZN_KV_F16].store, LZN_ISA_AVX2, avx2_attn_f16_store);
  LZN_SET(t->attn_max, LZN_ISA_AVX2, attn_max_vec);
  LZN_SET(t->attn_exp_sum, LZN_ISA_AVX2, attn_exp_sum_vec);
}
