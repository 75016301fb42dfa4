/*
 * half.h: scalar fp16 and bf16 conversions, exact and round-to-nearest-even,
 * as static inline functions: each file that includes this header (the
 * ref/ kernels, the loader, an ISA file's tail code) gets its own copy
 * compiled with its own flags, so no copy is shared across ISAs.
 */
#ifndef LZN_KERNELS_HALF_H
#define LZN_KERNELS_HALF_H

#include <stdint.h>
#include <string.h>

static inline float lzn_bits_to_float(uint32_t bits) {
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static inline uint32_t lzn_float_to_bits(float f) {
  uint32_t bits;
  memcpy(&bits, &f, sizeof bits);
  return bits;
}

static inline float lzn_f16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h >> 15) << 31;
  uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff, bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13); /* inf, NaN */
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign; /* +-0 */
  } else {      /* subnormal: normalise */
    exponent = 113;
    while (!(mantissa & 0x400)) mantissa <<= 1, exponent--;
    bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
  }
  return lzn_bits_to_float(bits);
}

static inline uint16_t lzn_f32_to_f16(float f) {
  const uint32_t x = lzn_float_to_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu)); /* NaN */
  if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: inf */
  if (abs < 0x38800000u) {
    /* Subnormal or zero in binary16: the value in units of 2^-24, rounded
     * to nearest even. */
    if (abs < 0x33000000u) return (uint16_t)sign; /* below half the smallest subnormal */
    const uint32_t exponent = abs >> 23, mantissa = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exponent; /* 14 .. 24 */
    uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1u), halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1u))) half++;
    return (uint16_t)(sign | half);
  }
  /* Normal: rebias the exponent, round the mantissa to 10 bits (a carry
   * into the exponent is the right result). */
  uint32_t h = ((abs - 0x38000000u) >> 13);
  const uint32_t rest = abs & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
  return (uint16_t)(sign | h);
}

static inline float lzn_bf16_to_f32(uint16_t h) { return lzn_bits_to_float((uint32_t)h << 16); }

static inline uint16_t lzn_f32_to_bf16(float f) {
  const uint32_t x = lzn_float_to_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
  return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

#endif /* LZN_KERNELS_HALF_H */
