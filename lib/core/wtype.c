/*
 * wtype.c: weight type names and scalar element conversions.
 */
#include "core/wtype.h"

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
