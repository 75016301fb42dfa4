/*
 * ref/gemm.c: the reference gemm and axpy_gemm of every weight type
 * (contracts in kernels/gemm.h): one token at a time, one row at a time, in
 * plain C. The specification the tiled SIMD kernels are tested against.
 *
 * The products are the ones dot_rows and axpy_rows define for one token
 * (kernels/ref/<type>.c): Q8_0/Q4_0 against x in Q8_0 blocks, an exact
 * integer sum per block times d_w * d_x, added in block order; the element
 * types in fp32, element by element. Written here again rather than called:
 * each type's file keeps its kernels static, and this one must not depend
 * on the table it is the reference for.
 */
#include "kernels/half.h"
#include "kernels/kernels.h"

static inline const void *row_of(const void *w, size_t row_bytes, const int32_t *idx, size_t i) {
  return (const char *)w + (idx ? (size_t)idx[i] : i) * row_bytes;
}

/* Element j of a row of an element type, or of one block type, as float. */
static float f32_at(const void *row, size_t j) { return ((const float *)row)[j]; }
static float f16_at(const void *row, size_t j) { return lzn_f16_to_f32(((const uint16_t *)row)[j]); }
static float bf16_at(const void *row, size_t j) { return lzn_bf16_to_f32(((const uint16_t *)row)[j]); }

static int32_t q8_0_int(const void *row, size_t j) { return ((const lzn_block_q8_0 *)row)[j / LZN_QK].qs[j % LZN_QK]; }
static float q8_0_scale(const void *row, size_t b) { return lzn_f16_to_f32(((const lzn_block_q8_0 *)row)[b].d); }
static int32_t q4_0_int(const void *row, size_t j) {
  const lzn_block_q4_0 *block = (const lzn_block_q4_0 *)row + j / LZN_QK;
  const size_t k = j % LZN_QK;
  const uint8_t byte = block->qs[k % (LZN_QK / 2)];
  return (int32_t)(k < LZN_QK / 2 ? byte & 0x0f : byte >> 4) - 8;
}
static float q4_0_scale(const void *row, size_t b) { return lzn_f16_to_f32(((const lzn_block_q4_0 *)row)[b].d); }

typedef float (*element_fn)(const void *row, size_t j);
typedef int32_t (*int_fn)(const void *row, size_t j);
typedef float (*scale_fn)(const void *row, size_t b);

static float dot_element(element_fn at, const void *row, const float *x, size_t d) {
  float sum = 0.0f;
  for (size_t j = 0; j < d; j++) sum += at(row, j) * x[j];
  return sum;
}

static float dot_blocks(int_fn q, scale_fn scale, const void *row, const lzn_block_q8_0 *x, size_t d) {
  float sum = 0.0f;
  for (size_t b = 0; b < (d + LZN_QK - 1) / LZN_QK; b++) {
    int32_t isum = 0;
    for (size_t j = 0; j < LZN_QK; j++) isum += q(row, b * LZN_QK + j) * (int32_t)x[b].qs[j];
    sum += scale(row, b) * lzn_f16_to_f32(x[b].d) * (float)isum;
  }
  return sum;
}

/* Element j of a row of a block type, as axpy_rows uses it: the scale times
 * the integer. */
#define BLOCK_AT(name, q, scale) \
  static float name(const void *row, size_t j) { return scale(row, j / LZN_QK) * (float)q(row, j); }
BLOCK_AT(q8_0_at, q8_0_int, q8_0_scale)
BLOCK_AT(q4_0_at, q4_0_int, q4_0_scale)

static void gemm_element(element_fn at, float *out, size_t out_stride, const void *w, size_t row_bytes, size_t d,
                         const int32_t *idx, size_t n_rows, const void *x, size_t x_stride, size_t m) {
  for (size_t t = 0; t < m; t++)
    for (size_t i = 0; i < n_rows; i++)
      out[t * out_stride + i] =
          dot_element(at, row_of(w, row_bytes, idx, i), (const float *)((const char *)x + t * x_stride), d);
}

static void gemm_blocks(int_fn q, scale_fn scale, float *out, size_t out_stride, const void *w, size_t row_bytes,
                        size_t d, const int32_t *idx, size_t n_rows, const void *x, size_t x_stride, size_t m) {
  for (size_t t = 0; t < m; t++)
    for (size_t i = 0; i < n_rows; i++)
      out[t * out_stride + i] = dot_blocks(q, scale, row_of(w, row_bytes, idx, i),
                                           (const lzn_block_q8_0 *)((const char *)x + t * x_stride), d);
}

static void axpy_gemm(element_fn at, float *y, size_t y_stride, size_t d, const void *w, size_t row_bytes,
                      const int32_t *idx, const float *coef, size_t coef_stride, size_t n, size_t m) {
  for (size_t t = 0; t < m; t++)
    for (size_t i = 0; i < n; i++) {
      const void *row = row_of(w, row_bytes, idx, i);
      const float c = coef[t * coef_stride + i];
      for (size_t j = 0; j < d; j++) y[t * y_stride + j] += c * at(row, j);
    }
}

#define ELEMENT_KERNELS(type)                                                                                  \
  static void scalar_##type##_gemm(float *out, size_t out_stride, const void *w, size_t row_bytes, size_t d,  \
                                   const int32_t *idx, size_t n_rows, const void *x, size_t x_stride,         \
                                   size_t m) {                                                                \
    gemm_element(type##_at, out, out_stride, w, row_bytes, d, idx, n_rows, x, x_stride, m);                    \
  }
#define BLOCK_KERNELS(type)                                                                                    \
  static void scalar_##type##_gemm(float *out, size_t out_stride, const void *w, size_t row_bytes, size_t d,  \
                                   const int32_t *idx, size_t n_rows, const void *x, size_t x_stride,         \
                                   size_t m) {                                                                \
    gemm_blocks(type##_int, type##_scale, out, out_stride, w, row_bytes, d, idx, n_rows, x, x_stride, m);      \
  }
#define AXPY_KERNEL(type)                                                                                      \
  static void scalar_##type##_axpy_gemm(float *y, size_t y_stride, size_t d, const void *w, size_t row_bytes, \
                                        const int32_t *idx, const float *coef, size_t coef_stride, size_t n,  \
                                        size_t m) {                                                           \
    axpy_gemm(type##_at, y, y_stride, d, w, row_bytes, idx, coef, coef_stride, n, m);                          \
  }

ELEMENT_KERNELS(f32)
ELEMENT_KERNELS(f16)
ELEMENT_KERNELS(bf16)
BLOCK_KERNELS(q8_0)
BLOCK_KERNELS(q4_0)
AXPY_KERNEL(f32)
AXPY_KERNEL(f16)
AXPY_KERNEL(bf16)
AXPY_KERNEL(q8_0)
AXPY_KERNEL(q4_0)

void lzn_install_ref_gemm(lzn_kernel_table *t);
void lzn_install_ref_gemm(lzn_kernel_table *t) {
#define INSTALL(TYPE, type)                                                       \
  LZN_SET(t->gemm[LZN_WEIGHTS_##TYPE].gemm, LZN_ISA_SCALAR, scalar_##type##_gemm); \
  LZN_SET(t->gemm[LZN_WEIGHTS_##TYPE].axpy_gemm, LZN_ISA_SCALAR, scalar_##type##_axpy_gemm)
  INSTALL(F32, f32);
  INSTALL(F16, f16);
  INSTALL(BF16, bf16);
  INSTALL(Q8_0, q8_0);
  INSTALL(Q4_0, q4_0);
#undef INSTALL
}
