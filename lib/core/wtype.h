/*
 * wtype.h: weight types (kernels/kernels.h defines them and their block
 * layouts): names, and element conversion for the loader. Private.
 */
#ifndef LZN_WTYPE_H
#define LZN_WTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"
#include "lazyneuron.h"

/* "F32", "F16", "BF16", "Q8_0", "Q4_0": the spelling of safetensors and of
 * GGUF tools; "?" for another value. */
const char *lzn_wtype_name(lzn_wtype type);

/* fp16 / bf16 <-> fp32 for single values: kernels/half.h. */
/* Element i of an array of an element type (F32, F16, BF16) as float; data
 * may be unaligned. */
float lzn_wtype_element(lzn_wtype type, const void *data, size_t i);

/* The public lzn_weight_type of a weight type and back. lzn_wtype_from_public
 * returns 0 for AS_STORED or a value outside the enum, else 1 and *out. */
lzn_weight_type lzn_wtype_to_public(lzn_wtype type);
int lzn_wtype_from_public(lzn_weight_type type, lzn_wtype *out);

/* Whether n fp32 values can become `type` faithfully: finite, and for F16
 * within its range (|x| < 65520, which rounds to 65504 at most). Returns the first bad index, or n. */
size_t lzn_wtype_first_unfit(lzn_wtype type, const float *x, size_t n);

#endif /* LZN_WTYPE_H */
