/*
 * wtype.c: weight type names and scalar element conversions.
 */
#include "core/wtype.h"

#include <math.h>
#include <string.h>

#include "kernels/half.h"

const char *lzn_wtype_name(lzn_wtype type) {
  switch (type) {
  case LZN_WTYPE_F32: return "F32";
  case LZN_WTYPE_F16: return "F16";
  case LZN_WTYPE_BF16: return "BF16";
  case LZN_WTYPE_Q8_0: return "Q8_0";
  case LZN_WTYPE_Q4_0: return "Q4_0";
  case LZN_WTYPE_COUNT: break;
  }
  return "?";
}

float lzn_wtype_element(lzn_wtype type, const void *data, size_t i) {
  const unsigned char *p = data;
  uint16_t h;
  float f;
  switch (type) {
  case LZN_WTYPE_F32:
    memcpy(&f, p + 4 * i, 4);
    return f;
  case LZN_WTYPE_F16:
    memcpy(&h, p + 2 * i, 2);
    return lzn_f16_to_f32(h);
  case LZN_WTYPE_BF16:
    memcpy(&h, p + 2 * i, 2);
    return lzn_bf16_to_f32(h);
  default:
    return 0.0f;
  }
}

lzn_weight_type lzn_wtype_to_public(lzn_wtype type) {
  switch (type) {
  case LZN_WTYPE_F32: return LZN_WEIGHTS_F32;
  case LZN_WTYPE_F16: return LZN_WEIGHTS_F16;
  case LZN_WTYPE_BF16: return LZN_WEIGHTS_BF16;
  case LZN_WTYPE_Q8_0: return LZN_WEIGHTS_Q8_0;
  case LZN_WTYPE_Q4_0: return LZN_WEIGHTS_Q4_0;
  case LZN_WTYPE_COUNT: break;
  }
  return LZN_WEIGHTS_AS_STORED;
}

int lzn_wtype_from_public(lzn_weight_type type, lzn_wtype *out) {
  switch (type) {
  case LZN_WEIGHTS_F32: *out = LZN_WTYPE_F32; return 1;
  case LZN_WEIGHTS_F16: *out = LZN_WTYPE_F16; return 1;
  case LZN_WEIGHTS_BF16: *out = LZN_WTYPE_BF16; return 1;
  case LZN_WEIGHTS_Q8_0: *out = LZN_WTYPE_Q8_0; return 1;
  case LZN_WEIGHTS_Q4_0: *out = LZN_WTYPE_Q4_0; return 1;
  case LZN_WEIGHTS_AS_STORED: break;
  }
  return 0;
}

/* Values of magnitude 65520 and more round to inf in binary16 (65504 is
 * the largest finite one). */
#define LZN_F16_OVERFLOW 65520.0f

size_t lzn_wtype_first_unfit(lzn_wtype type, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(x[i])) return i;
    if (type == LZN_WTYPE_F16 && fabsf(x[i]) >= LZN_F16_OVERFLOW) return i;
  }
  return n;
}

LZN_API int64_t lzn_weight_row_bytes(lzn_weight_type type, int64_t n) {
  lzn_wtype t;
  if (!lzn_wtype_from_public(type, &t) || n < 0) return -1;
  return (int64_t)lzn_wtype_row_bytes(t, (size_t)n);
}
