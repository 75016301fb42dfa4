/*
 * row_f32.h: one row of weights in fp32 for a product that multiplies it
 * next (a prompt's panels, a packed copy requantized at load). Private.
 *
 * A K-quant goes through its SIMD axpy_rows with coefficient 1 on a zeroed
 * row: the same dequantization within the last bit of fp32 (the product's
 * own rounding), and 4-6x faster than its to_f32, which is exact to the
 * bit against gguf-py (one Zen 5 core, AVX-512, ns a weight: Q4_K 0.11
 * against 0.53, Q6_K 0.12 against 0.78; the scalar reference ~1.7; that
 * to_f32 cost a 4-layer opt-1.3b Q6_K prompt ~0.8 ms a token). So does a
 * type whose to_f32 is only the reference (LZN_ISA=scalar). Other types'
 * to_f32 is a plain widening (Q8_0 0.03 ns a weight).
 */
#ifndef LZN_LINALG_ROW_F32_H
#define LZN_LINALG_ROW_F32_H

#include <string.h>

#include "core/wtype.h"
#include "kernels/kernels.h"

/* out[0..d) = the d weights of the row at `row`, of type `type`. */
static inline void lzn_row_f32(const lzn_type_kernels *tk, lzn_weight_type type, const void *row, size_t d,
                               float *out) {
  static const int32_t first_row = 0;
  static const float one = 1.0f;
  if (!lzn_wtype_is_kquant(type) && tk->to_f32.isa > LZN_ISA_SCALAR) {
    tk->to_f32.fn(out, row, d);
    return;
  }
  memset(out, 0, d * sizeof(float));
  tk->axpy_rows.fn(out, d, row, lzn_wtype_row_bytes(type, d), &first_row, &one, 1);
}

#endif /* LZN_LINALG_ROW_F32_H */
