/*
 * x86/q4_k_avx512.h: Q4_K's steps for the block skeleton (generic/qrows.h)
 * with 512-bit vectors (AVX-512 F/BW/VL/DQ, and VNNI where the including
 * file is compiled for it): what avx512/q4_k.c and avx512vnni/q4_k.c
 * share. Include x86/vec_avx512.h first. Specification in ref/q4_k.c and
 * ref/kquant.h, layout in blocks.h.
 *
 * A step is one super-block: 256 weights in 144 bytes (d, dmin, 12 bytes
 * of 6-bit scales and mins, 128 bytes of nibbles), x one Q8_K block.
 *
 * dot: each 64 bytes of nibbles (half h) hold sub-blocks 4h and 4h + 2 in
 * their low nibbles (bytes 0-31, 32-63) and 4h + 1, 4h + 3 in their high
 * ones, so x is made once per call in that order and one mask (low) or
 * shift and mask (high) gives 64 weights facing their x. Per half, two int8
 * dot products of 4-byte groups (vpdpbusd, or maddubs + madd) give int32
 * lanes of 4 products each, |sum| <= 4 * 15 * 127 = 7620, which packs to
 * int16 without saturating; then one madd (vpdpwssd with VNNI) by the
 * sub-blocks' scales, spread over the words by one word permute of the
 * unpacked scales, adds sc * (sum of 8 products) per int32 lane. The
 * sum over the lanes is the reference's sumi, exactly; the mins' term is
 * one madd of x's 16 block sums (made once per call) by m: summ, exactly.
 * Then per lane (dx * d) * (float)sumi - (dx * dmin) * (float)summ, as
 * the reference does per super-block (the lanes' order of addition is
 * fp32 rounding only; with integer data it is exact).
 *
 * axpy (fp32): per sub-block s, a = coef * (d * sc) and c = coef * (dmin *
 * m) (the reference's fp32 products, d * sc exact), and a 16-entry table
 * of a * q - c for q = 0..15 (one rounding, the reference has two): the
 * nibble bytes zero-extended to dwords index it with vpermps, which reads
 * an index's low 4 bits (the low nibble), and after a shift by 4 the high
 * one. Per 16 weights: one widening load (shared by two sub-blocks), one
 * permute, one add; per sub-block a table (two permutes and an FMA).
 */
#ifndef LZN_KERNELS_X86_Q4_K_AVX512_H
#define LZN_KERNELS_X86_Q4_K_AVX512_H

#include <float.h>
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/blocks.h"
#include "kernels/x86/kq_scales.h"

#define QR_BLOCK_WEIGHTS LZN_QK_K
#define QR_X_BLOCK_WEIGHTS LZN_QK_K
#define QR_X_BLOCK_BYTES sizeof(lzn_block_q8_k)
#define QR_DOT_STEP_BLOCKS 1
#define QR_AXPY_STEP_BLOCKS 1

/* Q5_K (x86/q5_k_avx512.h defines KQ_Q5_K before including this) is Q4_K
 * with qh[32] between the scales and the nibbles: bit s of qh[k] is the
 * fifth bit of weight k of sub-block s. Byte offsets of qh and the
 * nibbles in a super-block: */
#if defined(KQ_Q5_K)
#define QR_BLOCK_BYTES sizeof(lzn_block_q5_k)
#define Q4_K_QH 16
#define Q4_K_QS 48
#else
#define QR_BLOCK_BYTES sizeof(lzn_block_q4_k)
#define Q4_K_QS 16
#endif

typedef struct {
  __m512i x[4];  /* x[2h]: x's values of sub-blocks 4h, 4h + 2; x[2h + 1]: 4h + 1, 4h + 3 */
  __m256i bsums; /* x's 16 sums of 16 values */
  float d;       /* x's scale */
} qr_xstep;

/* Two 32-byte pieces of x as one zmm. */
KQ_ALWAYS_INLINE __m512i q4_k_x_pair(const int8_t *a, const int8_t *b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                            _mm256_loadu_si256((const __m256i *)b), 1);
}

static inline void qr_xstep_make(qr_xstep *xs, const void *x_bytes) {
  const lzn_block_q8_k *x = x_bytes;
  for (int h = 0; h < 2; h++) {
    xs->x[2 * h] = q4_k_x_pair(x->qs + 128 * h, x->qs + 128 * h + 64);
    xs->x[2 * h + 1] = q4_k_x_pair(x->qs + 128 * h + 32, x->qs + 128 * h + 96);
  }
  xs->bsums = _mm256_loadu_si256((const __m256i *)x->bsums);
  xs->d = x->d;
}

/* int32 lane i = sum of the 4 products u[4i + k] * s[4i + k] (u unsigned,
 * s signed bytes), exact: maddubs's int16 pairs stay below 2^15 for the
 * ranges here (2 * 63 * 127 at most, Q6_K). */
KQ_ALWAYS_INLINE __m512i kq_dot4_512(__m512i u, __m512i s) {
#if defined(__AVX512VNNI__)
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s);
#else
  return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
#endif
}

/* acc + the products of the int16 word pairs of p and sc, per int32 lane. */
KQ_ALWAYS_INLINE __m512i kq_madd_add_512(__m512i acc, __m512i p, __m512i sc) {
#if defined(__AVX512VNNI__)
  return _mm512_dpwssd_epi32(acc, p, sc);
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(p, sc));
#endif
}

/* Word 8L + k (128-bit lane L of a packed pair of half h) = the index, in
 * the unpacked scales (words 0-7 sc, 8-15 m), of its sub-block's scale:
 * lanes 0-1 hold sub-blocks 4h (words 0-3) and 4h + 1 (4-7), lanes 2-3
 * 4h + 2 and 4h + 3. */
static const uint16_t q4_k_scale_words[2][32] = {
    {0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 2, 2, 2, 2, 3, 3, 3, 3},
    {4, 4, 4, 4, 5, 5, 5, 5, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 6, 6, 6, 6, 7, 7, 7, 7}};
/* Word g = m of sub-block g / 2, facing x's block sum g. */
static const uint16_t q4_k_min_words[16] = {8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15};

#if defined(KQ_Q5_K)
/* Per 64-bit lane, the left rotation that takes bit s of each byte of qh
 * to bit 4 ((4 - s) mod 64; the mask 0x10 then keeps only that bit, which
 * came from the same byte): [2h] for the low nibbles of half h (sub-blocks
 * 4h in bytes 0-31, 4h + 2 in 32-63), [2h + 1] for the high ones. */
static const int64_t q5_k_rotations[4][8] = {{4, 4, 4, 4, 2, 2, 2, 2},
                                             {3, 3, 3, 3, 1, 1, 1, 1},
                                             {0, 0, 0, 0, 62, 62, 62, 62},
                                             {63, 63, 63, 63, 61, 61, 61, 61}};
#endif

static inline __attribute__((always_inline)) vec_f32 qr_dot_step(vec_f32 acc, const void *w, const qr_xstep *xs) {
  const unsigned char *const b = w;
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m128i head = _mm_loadu_si128((const __m128i *)b);
  const __m256i words = _mm256_cvtepu8_epi16(kq_scales_mins(head));
  const __m512i words512 = _mm512_zextsi256_si512(words);
#if defined(KQ_Q5_K)
  /* q up to 31: the dot products' lanes stay within 4 * 31 * 127. */
  const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + Q4_K_QH)));
  const __m512i bit4 = _mm512_set1_epi8(0x10);
#endif
  __m512i sumi = _mm512_setzero_si512();
#pragma GCC unroll 2
  for (int h = 0; h < 2; h++) {
    const __m512i q = _mm512_loadu_si512(b + Q4_K_QS + 64 * h);
#if defined(KQ_Q5_K)
    /* The nibble, and bit s of qh rotated to bit 4. */
    const __m512i hb_lo = _mm512_rolv_epi64(qh, _mm512_loadu_si512(q5_k_rotations[2 * h]));
    const __m512i hb_hi = _mm512_rolv_epi64(qh, _mm512_loadu_si512(q5_k_rotations[2 * h + 1]));
    const __m512i lo = _mm512_or_si512(_mm512_and_si512(q, low4), _mm512_and_si512(hb_lo, bit4));
    const __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(q, 4), low4), _mm512_and_si512(hb_hi, bit4));
#else
    const __m512i lo = _mm512_and_si512(q, low4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
#endif
    const __m512i p = _mm512_packs_epi32(kq_dot4_512(lo, xs->x[2 * h]), kq_dot4_512(hi, xs->x[2 * h + 1]));
    const __m512i sc = _mm512_permutexvar_epi16(_mm512_loadu_si512(q4_k_scale_words[h]), words512);
    sumi = kq_madd_add_512(sumi, p, sc);
  }
  const __m256i mins = _mm256_permutexvar_epi16(_mm256_loadu_si256((const __m256i *)q4_k_min_words), words);
  const __m256i summ = _mm256_madd_epi16(xs->bsums, mins);
  /* [dx * d, dx * dmin]: the reference's products. */
  const __m128 dd = _mm_mul_ps(_mm_cvtph_ps(head), _mm_set1_ps(xs->d));
  acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_broadcastss_ps(dd), acc);
  return _mm512_fnmadd_ps(_mm512_zextps256_ps512(_mm256_cvtepi32_ps(summ)),
                          _mm512_broadcastss_ps(_mm_movehdup_ps(dd)), acc);
}

static const float q4_k_iota[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
/* Lanes 0-7 take d, lanes 8-15 dmin, of [d, dmin]. */
static const int32_t q4_k_d_dmin[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};

static inline __attribute__((always_inline)) void qr_axpy_step(vec_f32 *y, const void *w, vec_f32 coef) {
  const unsigned char *const b = w;
  const __m128i head = _mm_loadu_si128((const __m128i *)b);
  const __m512 sc_m = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(kq_scales_mins(head)));
  const __m512 d_dmin = _mm512_permutexvar_ps(_mm512_loadu_si512(q4_k_d_dmin), _mm512_castps128_ps512(_mm_cvtph_ps(head)));
  /* Lanes s: a of sub-block s, lanes 8 + s: its c. */
  const __m512 ac = _mm512_mul_ps(coef, _mm512_mul_ps(d_dmin, sc_m));
  const __m512 iota = _mm512_loadu_ps(q4_k_iota);
#if defined(KQ_Q5_K)
  /* q = nibble + 16 * fifth bit indexes a 32-entry table (vpermt2ps reads
   * an index's low 5 bits): bits 0-3 from the nibble and bit 4 from qh
   * rotated so that bit s lands there, joined by vpternlogd's bitwise
   * select (0xe4: c ? a : b, c the nibble mask). */
  const __m512 iota16 = _mm512_add_ps(iota, _mm512_set1_ps(16.0f));
  const __m512i qh0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b + Q4_K_QH)));
  const __m512i qh1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b + Q4_K_QH + 16)));
  const __m512i nibble = _mm512_set1_epi32(0x0f);
#pragma GCC unroll 4
  for (int c = 0; c < 4; c++) {
    const unsigned char *const qs = b + Q4_K_QS + 32 * c;
    const __m512 a_lo = _mm512_permutexvar_ps(_mm512_set1_epi32(2 * c), ac);
    const __m512 c_lo = _mm512_permutexvar_ps(_mm512_set1_epi32(8 + 2 * c), ac);
    const __m512 a_hi = _mm512_permutexvar_ps(_mm512_set1_epi32(2 * c + 1), ac);
    const __m512 c_hi = _mm512_permutexvar_ps(_mm512_set1_epi32(9 + 2 * c), ac);
    const __m512 t_lo0 = _mm512_fmsub_ps(a_lo, iota, c_lo), t_lo1 = _mm512_fmsub_ps(a_lo, iota16, c_lo);
    const __m512 t_hi0 = _mm512_fmsub_ps(a_hi, iota, c_hi), t_hi1 = _mm512_fmsub_ps(a_hi, iota16, c_hi);
    const __m512i rot_lo = _mm512_set1_epi32((4 - 2 * c) & 31), rot_hi = _mm512_set1_epi32((3 - 2 * c) & 31);
    const __m512i q0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)qs));
    const __m512i q1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs + 16)));
    const __m512i i0 = _mm512_ternarylogic_epi32(q0, _mm512_rolv_epi32(qh0, rot_lo), nibble, 0xe4);
    const __m512i i1 = _mm512_ternarylogic_epi32(q1, _mm512_rolv_epi32(qh1, rot_lo), nibble, 0xe4);
    const __m512i i2 = _mm512_ternarylogic_epi32(_mm512_srli_epi32(q0, 4), _mm512_rolv_epi32(qh0, rot_hi), nibble, 0xe4);
    const __m512i i3 = _mm512_ternarylogic_epi32(_mm512_srli_epi32(q1, 4), _mm512_rolv_epi32(qh1, rot_hi), nibble, 0xe4);
    y[4 * c] = _mm512_add_ps(y[4 * c], _mm512_permutex2var_ps(t_lo0, i0, t_lo1));
    y[4 * c + 1] = _mm512_add_ps(y[4 * c + 1], _mm512_permutex2var_ps(t_lo0, i1, t_lo1));
    y[4 * c + 2] = _mm512_add_ps(y[4 * c + 2], _mm512_permutex2var_ps(t_hi0, i2, t_hi1));
    y[4 * c + 3] = _mm512_add_ps(y[4 * c + 3], _mm512_permutex2var_ps(t_hi0, i3, t_hi1));
  }
#else
#pragma GCC unroll 4
  for (int c = 0; c < 4; c++) {
    const unsigned char *const qs = b + Q4_K_QS + 32 * c;
    const __m512 t_lo = _mm512_fmsub_ps(_mm512_permutexvar_ps(_mm512_set1_epi32(2 * c), ac), iota,
                                        _mm512_permutexvar_ps(_mm512_set1_epi32(8 + 2 * c), ac));
    const __m512 t_hi = _mm512_fmsub_ps(_mm512_permutexvar_ps(_mm512_set1_epi32(2 * c + 1), ac), iota,
                                        _mm512_permutexvar_ps(_mm512_set1_epi32(9 + 2 * c), ac));
    const __m512i q0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)qs));
    const __m512i q1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs + 16)));
    y[4 * c] = _mm512_add_ps(y[4 * c], _mm512_permutexvar_ps(q0, t_lo));
    y[4 * c + 1] = _mm512_add_ps(y[4 * c + 1], _mm512_permutexvar_ps(q1, t_lo));
    y[4 * c + 2] = _mm512_add_ps(y[4 * c + 2], _mm512_permutexvar_ps(_mm512_srli_epi32(q0, 4), t_hi));
    y[4 * c + 3] = _mm512_add_ps(y[4 * c + 3], _mm512_permutexvar_ps(_mm512_srli_epi32(q1, 4), t_hi));
  }
#endif
}

/* ------------------------------------------------------ axpy_rows_q8 */

/* The int8 path (kernels.h, axpy_rows_q8; Q4_K's rule in ref/kquant.h): a
 * step is one super-block of the group's 16 rows. Its coefficients, per
 * pair of rows (one zmm: the pair's 8 sub-blocks each): a = coef * (d *
 * sc) and c = coef * (dmin * m), the scales and mins of both rows
 * unpacked by one kq_scales_mins2; the max of |a| and the sums of c over
 * the pairs' lanes (even rows in lanes 0-7, odd in 8-15, added last, as
 * the reference orders them); a divided on 8 lanes; the int8 alphas packed
 * to one dword per 4 rows and sub-block. The adds: each 64 bytes of
 * nibbles (two chunks: sub-blocks 4h, 4h + 2 in their low nibbles, 4h + 1,
 * 4h + 3 in their high ones) of 4 rows interleaved to dwords, then per
 * column lane one vpdpbusd for the low nibbles and one for the high (each
 * against its sub-block's 4 alphas), a convert, an FMA by s and a subtract
 * of the mins' term per 16 columns and group: where the fp32 path pays a
 * table lookup and an add per row. The nibbles are 0..15 and the alphas
 * within +-127: without VNNI, maddubs pairs stay within int16 (2 * 15 *
 * 127, and twice that for vec_dot2_u8s8's two operands). Q5_K: each
 * nibble gets its fifth bit from qh before the interleave (q 0..31: pairs
 * within 2 * 31 * 127, two operands within 15748).
 *
 * vec_interleave4_u8 leaves column 128h + 16k + 4m + i (k = 0, 1: the low
 * nibbles of chunk 2h; + 64 for chunk 2h + 1; + 32 for the high nibbles)
 * in lane k (+ 2), dword i of result m: y is put in that order once per
 * call (vec_transpose_lanes4 of the four 16-column vectors each result
 * set covers). */
#define QR_AXPY_Q8_STEP_BLOCKS 1

typedef struct {
  __m512 coef[8]; /* pair p: lanes 0-7 coef of row 2p, lanes 8-15 of row 2p + 1 */
} qr_q8_group;

typedef struct {
  __m128i alpha[4][2]; /* rows 4q..4q+3's alphas: dword k of [q][h] = sub-block 4h + k */
  __m512 s_min;        /* lanes 0-7: the sub-blocks' s; 8-15: their mins' terms */
} qr_q8_coefs;

/* Lanes 0-7 take element 0 of the pair, lanes 8-15 element 1. */
static const int32_t q4_k_pair_lanes[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
/* Bytes [a0..a7, b0..b7] -> [a0, b0, a1, b1, ..., a7, b7]. */
static const int8_t q4_k_zip8[16] = {0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15};
/* The 16-column vectors of y (within a half of 128 columns) whose columns
 * the low / high nibbles' results hold, in the order of the results'
 * lanes. */
static const int q4_k_lo_vectors[4] = {0, 1, 4, 5}, q4_k_hi_vectors[4] = {2, 3, 6, 7};

static inline void qr_q8_group_make(qr_q8_group *g, const float *coef, size_t nr) {
  const __m512 c = _mm512_maskz_loadu_ps((__mmask16)((1u << nr) - 1u), coef);
  const __m512i pair = _mm512_loadu_si512(q4_k_pair_lanes);
  for (int p = 0; p < 8; p++) g->coef[p] = _mm512_permutexvar_ps(_mm512_add_epi32(pair, _mm512_set1_epi32(2 * p)), c);
}

static inline void qr_q8_y_order(float *y) {
  for (int h = 0; h < 2; h++) {
    float *const half = y + 128 * h;
    for (int hi = 0; hi < 2; hi++) {
      const int *k = hi ? q4_k_hi_vectors : q4_k_lo_vectors;
      __m512 a = _mm512_loadu_ps(half + 16 * k[0]), b = _mm512_loadu_ps(half + 16 * k[1]);
      __m512 c = _mm512_loadu_ps(half + 16 * k[2]), d = _mm512_loadu_ps(half + 16 * k[3]);
      vec_transpose_lanes4(&a, &b, &c, &d);
      _mm512_storeu_ps(half + 16 * k[0], a), _mm512_storeu_ps(half + 16 * k[1], b);
      _mm512_storeu_ps(half + 16 * k[2], c), _mm512_storeu_ps(half + 16 * k[3], d);
    }
  }
}

static inline __attribute__((always_inline)) void qr_q8_step_coefs(qr_q8_coefs *c, const unsigned char *const *r,
                                                                  size_t off, const qr_q8_group *g) {
  const __m512i pair = _mm512_loadu_si512(q4_k_pair_lanes);
  const __m512i d_lanes = _mm512_slli_epi32(pair, 3), dmin_lanes = _mm512_add_epi32(d_lanes, _mm512_set1_epi32(1));
  __m512 a[8], m = _mm512_setzero_ps(), mins = _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int p = 0; p < 8; p++) {
    const __m256i heads = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(r[2 * p] + off))),
        _mm_loadu_si128((const __m128i *)(r[2 * p + 1] + off)), 1);
    /* [sc even row, sc odd row, m even, m odd] */
    const __m256i sm = _mm256_permute4x64_epi64(kq_scales_mins2(heads), _MM_SHUFFLE(3, 1, 2, 0));
    const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(sm)));
    const __m512 mn = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(sm, 1)));
    /* The heads' fp16 words: d of the even row is float 0, dmin 1; the odd row's 8 and 9. */
    const __m512 words = _mm512_cvtph_ps(heads);
    a[p] = _mm512_mul_ps(g->coef[p], _mm512_mul_ps(_mm512_permutexvar_ps(d_lanes, words), sc));
    mins = _mm512_add_ps(mins, _mm512_mul_ps(g->coef[p], _mm512_mul_ps(_mm512_permutexvar_ps(dmin_lanes, words), mn)));
    m = _mm512_max_ps(m, _mm512_abs_ps(a[p]));
  }
  /* Lanes 0-7: each sub-block's largest |a| over the 16 rows, its mins' term. */
  m = _mm512_max_ps(m, _mm512_shuffle_f32x4(m, m, 0x4e));
  const __m256 m8 = _mm512_castps512_ps256(m);
  const __m256 min_term = _mm256_add_ps(_mm512_castps512_ps256(mins), _mm512_extractf32x8_ps(mins, 1));
  const __mmask8 nonzero = _mm256_cmp_ps_mask(m8, _mm256_set1_ps(FLT_MIN), _CMP_GE_OQ);
  const __m256 inv8 = _mm256_maskz_div_ps(nonzero, _mm256_set1_ps(127.0f), m8);
  c->s_min = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_maskz_div_ps(nonzero, m8, _mm256_set1_ps(127.0f))),
                                min_term, 1);
  const __m512 inv = _mm512_insertf32x8(_mm512_castps256_ps512(inv8), inv8, 1);
  const __m128i zip = _mm_loadu_si128((const __m128i *)q4_k_zip8);
#pragma GCC unroll 4
  for (int q = 0; q < 4; q++) {
    /* [alpha row 4q (8 sub-blocks), 4q + 1], zipped to words (row 4q, 4q + 1) per sub-block */
    const __m128i ab = _mm_shuffle_epi8(_mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(a[2 * q], inv))), zip);
    const __m128i cd = _mm_shuffle_epi8(_mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(a[2 * q + 1], inv))), zip);
    c->alpha[q][0] = _mm_unpacklo_epi16(ab, cd);
    c->alpha[q][1] = _mm_unpackhi_epi16(ab, cd);
  }
}

/* Lanes 0-7 take element i, lanes 8-15 element i + 2. */
static inline __attribute__((always_inline)) __m512i q4_k_chunk_lanes(int i) {
  return _mm512_add_epi32(_mm512_slli_epi32(_mm512_loadu_si512(q4_k_pair_lanes), 1), _mm512_set1_epi32(i));
}

#if defined(KQ_Q5_K)
/* Q5_K's fifth bits of half h, at bit 4 of each byte: from 4 rows' qh
 * (each row's 32 bytes in both 256-bit halves) interleaved as their
 * nibbles are: bit 2c of qh[l] for chunk c's low nibble of byte l, 2c + 1
 * for its high one, each 256-bit half shifted by its own chunk's amount (a
 * 64-bit lane shift: the mask keeps only the bit that came from the same
 * byte, as q6_k_half's). */
static inline __attribute__((always_inline)) __m512i q5_k_fifth_bits(__m512i qh, int h, int high) {
  const __m512i at4 = h ? _mm512_srlv_epi64(qh, high ? _mm512_setr_epi64(1, 1, 1, 1, 3, 3, 3, 3)
                                                      : _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2))
                        : _mm512_sllv_epi64(qh, high ? _mm512_setr_epi64(3, 3, 3, 3, 1, 1, 1, 1)
                                                     : _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2));
  return _mm512_and_si512(at4, _mm512_set1_epi8(0x10));
}
/* A super-block's 32 qh bytes in both 256-bit halves (chunks 2h, 2h + 1
 * read the same bytes). */
static inline __attribute__((always_inline)) __m512i q5_k_qh2(const unsigned char *block) {
  return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(block + Q4_K_QH)));
}
#endif

static inline __attribute__((always_inline)) void qr_q8_step_add(float *y, const unsigned char *const *r, size_t off,
                                                                const qr_q8_coefs *c) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
#if defined(KQ_Q5_K)
  /* Each 4 rows' qh, interleaved as their nibbles are, once per step: both
   * halves take their bits from the same bytes. */
  __m512i vh[4][4];
#pragma GCC unroll 4
  for (int q = 0; q < 4; q++)
    vec_interleave4_u8(vh[q], q5_k_qh2(r[4 * q] + off), q5_k_qh2(r[4 * q + 1] + off), q5_k_qh2(r[4 * q + 2] + off),
                       q5_k_qh2(r[4 * q + 3] + off));
#endif
#pragma GCC unroll 2
  for (int h = 0; h < 2; h++) {
    __m512i lo[4], hi[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) lo[i] = hi[i] = _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int q = 0; q < 4; q += 2) {
      __m512i v[2][4], a_lo[2], a_hi[2];
#pragma GCC unroll 2
      for (int e = 0; e < 2; e++) {
        const unsigned char *const *rows = r + 4 * (q + e);
        const size_t at = off + Q4_K_QS + 64 * (size_t)h;
        vec_interleave4_u8(v[e], _mm512_loadu_si512(rows[0] + at), _mm512_loadu_si512(rows[1] + at),
                           _mm512_loadu_si512(rows[2] + at), _mm512_loadu_si512(rows[3] + at));
        const __m512i alpha = _mm512_castsi128_si512(c->alpha[q + e][h]);
        a_lo[e] = _mm512_permutexvar_epi32(q4_k_chunk_lanes(0), alpha);
        a_hi[e] = _mm512_permutexvar_epi32(q4_k_chunk_lanes(1), alpha);
      }
#pragma GCC unroll 4
      for (int i = 0; i < 4; i++) {
        __m512i u_lo[2], u_hi[2];
#pragma GCC unroll 2
        for (int e = 0; e < 2; e++) {
          u_lo[e] = _mm512_and_si512(v[e][i], low4);
          u_hi[e] = _mm512_and_si512(_mm512_srli_epi16(v[e][i], 4), low4);
#if defined(KQ_Q5_K)
          u_lo[e] = _mm512_or_si512(u_lo[e], q5_k_fifth_bits(vh[q + e][i], h, 0));
          u_hi[e] = _mm512_or_si512(u_hi[e], q5_k_fifth_bits(vh[q + e][i], h, 1));
#endif
        }
        lo[i] = vec_dot2_u8s8(lo[i], u_lo[0], a_lo[0], u_lo[1], a_lo[1]);
        hi[i] = vec_dot2_u8s8(hi[i], u_hi[0], a_hi[0], u_hi[1], a_hi[1]);
      }
    }
    /* s and the mins' term of sub-blocks 4h, 4h + 2 (low) and 4h + 1, 4h + 3 (high) */
    const __m512i at_lo = _mm512_set1_epi32(4 * h), at_hi = _mm512_set1_epi32(4 * h + 1), mins = _mm512_set1_epi32(8);
    const __m512 s_lo = _mm512_permutexvar_ps(_mm512_add_epi32(q4_k_chunk_lanes(0), at_lo), c->s_min);
    const __m512 s_hi = _mm512_permutexvar_ps(_mm512_add_epi32(q4_k_chunk_lanes(0), at_hi), c->s_min);
    const __m512 min_lo = _mm512_permutexvar_ps(_mm512_add_epi32(q4_k_chunk_lanes(0), _mm512_add_epi32(at_lo, mins)), c->s_min);
    const __m512 min_hi = _mm512_permutexvar_ps(_mm512_add_epi32(q4_k_chunk_lanes(0), _mm512_add_epi32(at_hi, mins)), c->s_min);
    float *const half = y + 128 * h;
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
      float *const y_lo = half + 16 * q4_k_lo_vectors[i], *const y_hi = half + 16 * q4_k_hi_vectors[i];
      _mm512_storeu_ps(y_lo, _mm512_sub_ps(_mm512_fmadd_ps(s_lo, _mm512_cvtepi32_ps(lo[i]), _mm512_loadu_ps(y_lo)), min_lo));
      _mm512_storeu_ps(y_hi, _mm512_sub_ps(_mm512_fmadd_ps(s_hi, _mm512_cvtepi32_ps(hi[i]), _mm512_loadu_ps(y_hi)), min_hi));
    }
  }
}

#endif /* LZN_KERNELS_X86_Q4_K_AVX512_H */
