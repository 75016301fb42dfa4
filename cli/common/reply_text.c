/*
 * reply_text.c: see reply_text.h.
 */
#include "reply_text.h"

#include <stdlib.h>
#include <string.h>

/* The length of a well-formed UTF-8 sequence starting at s[0..n) (n >= 1),
 * or, if it is ill-formed, -(the length of its maximal subpart: the bytes
 * that begin a valid sequence, at least 1). *incomplete is set when the
 * bytes run out while still valid. Unicode's Table 3-7. */
static int sequence_length(const unsigned char *s, size_t n, int *incomplete) {
  *incomplete = 0;
  const unsigned char b = s[0];
  int need;
  unsigned char lo = 0x80, hi = 0xBF; /* the range of the second byte */
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) need = 2;
  else if (b >= 0xE0 && b <= 0xEF) {
    need = 3;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int i = 1; i < need; i++) {
    if ((size_t)i >= n) {
      *incomplete = 1;
      return -i;
    }
    const unsigned char c = s[i];
    if (i == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return -i;
  }
  return need;
}

size_t utf8_incomplete_tail(const char *s, size_t len) {
  /* A sequence is at most 4 bytes: look at the last 3 starts. */
  for (size_t back = 1; back <= 3 && back <= len; back++) {
    const unsigned char *p = (const unsigned char *)s + len - back;
    if ((*p & 0xC0) == 0x80) continue; /* a continuation byte: look further back */
    int incomplete;
    sequence_length(p, back, &incomplete);
    return incomplete ? back : 0;
  }
  return 0;
}

int stop_find(const char *s, size_t len, size_t from, const char *const *stops, int n_stop,
              size_t *at) {
  int found = 0;
  for (int k = 0; k < n_stop; k++) {
    const size_t n = strlen(stops[k]);
    if (n == 0 || n > len) continue;
    /* Starts from which a match ends at or after `from`. */
    size_t start = from >= n ? from - n + 1 : 0;
    if (from == 0) start = 0;
    for (size_t i = start; i + n <= len; i++)
      if (memcmp(s + i, stops[k], n) == 0) {
        if (!found || i < *at) *at = i;
        found = 1;
        break;
      }
  }
  return found;
}

size_t stop_partial_tail(const char *s, size_t len, const char *const *stops, int n_stop) {
  size_t best = 0;
  for (int k = 0; k < n_stop; k++) {
    const size_t n = strlen(stops[k]);
    for (size_t m = n > 0 ? n - 1 : 0; m > best; m--)
      if (m <= len && memcmp(s + len - m, stops[k], m) == 0) {
        best = m;
        break;
      }
  }
  return best;
}

char *utf8_sanitize(const char *s, size_t len, size_t *out_len) {
  /* Each bad byte becomes at most 3 bytes (U+FFFD). */
  char *out = malloc(3 * len + 1);
  if (out == NULL) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    int incomplete;
    const int n = sequence_length((const unsigned char *)s + i, len - i, &incomplete);
    if (n > 0) {
      memcpy(out + o, s + i, (size_t)n);
      o += (size_t)n, i += (size_t)n;
    } else {
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3, i += (size_t)-n;
    }
  }
  out[o] = '\0';
  *out_len = o;
  return out;
}
