/*
 * ref/f16.c: the reference kernels for IEEE binary16 (fp16) weights. Plain C, obviously
 * correct: the specification that every SIMD kernel is tested against (see
 * kernels.h for the contract of each). Each weight is widened to fp32
 * exactly (kernels/half.h) and then used as ref/f32.c uses an fp32 weight,
 * so an fp16 matrix gives the results of its fp32 widening, bit for bit.
 * x is fp32 (lzn_wtype_x_type). Compiled without ISA flags.
 */
#include "kernels/half.h"
#include "kernels/kernels.h"

static void scalar_f16_axpy_rows(float *y, size_t d, const void *w, size_t row_bytes,
                                 const int32_t *idx, const float *coef, size_t n) {
  const uint16_t *const rows = w;
  const size_t ld = row_bytes / sizeof(uint16_t);
  for (size_t t = 0; t < n; t++) {
    const uint16_t *row = rows + (size_t)idx[t] * ld;
    const float c = coef[t];
    for (size_t j = 0; j < d; j++) y[j] += c * lzn_f16_to_f32(row[j]);
  }
}

static float dot_row(const uint16_t *row, const float *x, size_t d) {
  float sum = 0.0f;
  for (size_t j = 0; j < d; j++) sum += lzn_f16_to_f32(row[j]) * x[j];
  return sum;
}

static void scalar_f16_dot_rows(float *out, const void *w, size_t row_bytes, size_t d,
                                const int32_t *idx, size_t n, const void *x) {
  const uint16_t *const rows = w;
  const size_t ld = row_bytes / sizeof(uint16_t);
  for (size_t t = 0; t < n; t++) out[t] = dot_row(rows + (size_t)idx[t] * ld, x, d);
}

static void scalar_f16_gemv(float *out, const void *w, size_t row_bytes, size_t d, size_t n_rows,
                            const void *x) {
  const uint16_t *const rows = w;
  const size_t ld = row_bytes / sizeof(uint16_t);
  for (size_t r = 0; r < n_rows; r++) out[r] = dot_row(rows + r * ld, x, d);
}

/* Round to nearest, ties to even. */
static void scalar_f16_from_f32(void *dst, const float *src, size_t d) {
  uint16_t *const out = dst;
  for (size_t j = 0; j < d; j++) out[j] = lzn_f32_to_f16(src[j]);
}

/* Exact: every f16 value is an fp32 value. */
static void scalar_f16_to_f32(float *dst, const void *src, size_t d) {
  const uint16_t *const in = src;
  for (size_t j = 0; j < d; j++) dst[j] = lzn_f16_to_f32(in[j]);
}

void lzn_install_ref_f16(lzn_kernel_table *t);
void lzn_install_ref_f16(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_F16].axpy_rows, LZN_ISA_SCALAR, scalar_f16_axpy_rows);
  /* An element type has no scale to round the coefficients with: axpy_rows_q8 is axpy_rows. */
  LZN_SET(t->type[LZN_WEIGHTS_F16].axpy_rows_q8, LZN_ISA_SCALAR, scalar_f16_axpy_rows);
  LZN_SET(t->type[LZN_WEIGHTS_F16].dot_rows, LZN_ISA_SCALAR, scalar_f16_dot_rows);
  LZN_SET(t->type[LZN_WEIGHTS_F16].gemv, LZN_ISA_SCALAR, scalar_f16_gemv);
  LZN_SET(t->type[LZN_WEIGHTS_F16].from_f32, LZN_ISA_SCALAR, scalar_f16_from_f32);
  LZN_SET(t->type[LZN_WEIGHTS_F16].to_f32, LZN_ISA_SCALAR, scalar_f16_to_f32);
}
