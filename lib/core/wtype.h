/*
 * wtype.h: weight types (kernels/kernels.h defines them and their block
 * layouts): names, and element conversion for the loader. Private.
 */
#ifndef LZN_WTYPE_H
#define LZN_WTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

/* "F32", "F16", "BF16", "Q8_0", "Q4_0": the spelling of safetensors and of
 * GGUF tools; "?" for another value. */
const char *lzn_wtype_name(lzn_wtype type);

/* fp16 / bf16 <-> fp32 for single values: kernels/half.h. */
/* Element i of an array of an element type (F32, F16, BF16) as float; data
 * may be unaligned. */
float lzn_wtype_element(lzn_wtype type, const void *data, size_t i);

#endif /* LZN_WTYPE_H */
