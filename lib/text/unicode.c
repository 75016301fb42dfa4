/*
 * unicode.c: UTF-8 decoding (with U+FFFD for ill-formed bytes) and the
 * letter / number / space classes, by binary search over generated ranges.
 */
#include "text/unicode.h"

typedef struct lzn_cp_range {
  uint32_t first, last;
} lzn_cp_range;

#include "text/unicode_tables.h"

static int in_ranges(const lzn_cp_range *r, size_t n, uint32_t cp) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (cp < r[mid].first) hi = mid;
    else if (cp > r[mid].last) lo = mid + 1;
    else return 1;
  }
  return 0;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
int lzn_is_letter(uint32_t cp) { return in_ranges(lzn_letter_ranges, COUNT(lzn_letter_ranges), cp); }
int lzn_is_number(uint32_t cp) { return in_ranges(lzn_number_ranges, COUNT(lzn_number_ranges), cp); }
int lzn_is_space(uint32_t cp) { return in_ranges(lzn_space_ranges, COUNT(lzn_space_ranges), cp); }

/* Table 3-7 of the Unicode standard (well-formed byte sequences): the range
 * of the second byte depends on the first; later bytes are 80..BF. */
size_t lzn_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp, int *valid) {
  const unsigned b0 = s[0];
  *valid = 1;
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  size_t len;
  unsigned lo = 0x80, hi = 0xBF;
  uint32_t value;
  if (b0 >= 0xC2 && b0 <= 0xDF) len = 2, value = b0 & 0x1F;
  else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3, value = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  /* no overlong forms */
    if (b0 == 0xED) hi = 0x9F;  /* no surrogates */
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4, value = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;  /* no overlong forms */
    if (b0 == 0xF4) hi = 0x8F;  /* nothing above U+10FFFF */
  } else {
    *cp = LZN_REPLACEMENT_CHAR, *valid = 0;
    return 1;
  }
  size_t i = 1;
  for (; i < len; i++) {
    if (i >= n || s[i] < lo || s[i] > hi) {
      /* the maximal subpart s[0..i) becomes one U+FFFD */
      *cp = LZN_REPLACEMENT_CHAR, *valid = 0;
      return i;
    }
    value = (value << 6) | (s[i] & 0x3F);
    lo = 0x80, hi = 0xBF;
  }
  *cp = value;
  return len;
}

size_t lzn_utf8_encode(uint32_t cp, unsigned char *out) {
  if (cp < 0x80) {
    out[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (unsigned char)(0xC0 | (cp >> 6));
    out[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (unsigned char)(0xE0 | (cp >> 12));
    out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (unsigned char)(0xF0 | (cp >> 18));
  out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}
