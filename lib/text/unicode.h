/*
 * unicode.h: UTF-8 decoding with replacement, and the character classes of
 * GPT-2's pre-tokenizer. Private.
 */
#ifndef LZN_UNICODE_H
#define LZN_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#define LZN_REPLACEMENT_CHAR 0xFFFD

/* Decodes the code point at s[0..n) (n >= 1) and returns the bytes it took.
 * An ill-formed sequence (a stray continuation byte, a truncated or overlong
 * sequence, a surrogate, above U+10FFFF) yields U+FFFD for its maximal
 * subpart, as the Unicode standard recommends and Python's
 * decode("utf-8", "replace") and WHATWG's TextDecoder do: one U+FFFD per
 * byte that cannot start or continue a valid sequence. *valid says which. */
size_t lzn_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp, int *valid);

/* Writes cp (<= U+10FFFF, not a surrogate) as UTF-8 to out[0..4); returns the
 * byte count. */
size_t lzn_utf8_encode(uint32_t cp, unsigned char *out);

/* \p{L}, \p{N} and \s (the White_Space property) of Unicode (the version
 * in unicode_tables.h). */
int lzn_is_letter(uint32_t cp);
int lzn_is_number(uint32_t cp);
int lzn_is_space(uint32_t cp);

#endif /* LZN_UNICODE_H */
