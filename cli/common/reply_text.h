/*
 * reply_text.h: the text side of a reply, as bytes arrive a token piece at
 * a time: where it may be cut for sending (whole UTF-8 sequences, no
 * possible start of a stop string), where a stop string ends it, and
 * valid UTF-8 for JSON.
 */
#ifndef LZN_SERVER_REPLY_TEXT_H
#define LZN_SERVER_REPLY_TEXT_H

#include <stddef.h>

/* Bytes at the end of s[0..len) that begin a UTF-8 sequence not yet
 * complete but still valid so far (0 to 3): what must wait for the next
 * piece. */
size_t utf8_incomplete_tail(const char *s, size_t len);

/* The first occurrence of any of stops[0..n_stop) in s[0..len) that ends
 * at or after byte `from` (so each new piece is searched once): 1 and its
 * start in *at, or 0. */
int stop_find(const char *s, size_t len, size_t from, const char *const *stops, int n_stop,
              size_t *at);

/* The longest suffix of s[0..len) that is a proper prefix of some stop
 * string: held back, as it may become one. */
size_t stop_partial_tail(const char *s, size_t len, const char *const *stops, int n_stop);

/* s[0..len) as valid UTF-8, each ill-formed sequence replaced by U+FFFD
 * (the maximal-subpart rule, as Python's decode("utf-8", "replace")); a
 * new NUL-terminated buffer, its length in *out_len; NULL without memory. */
char *utf8_sanitize(const char *s, size_t len, size_t *out_len);

#endif /* LZN_SERVER_REPLY_TEXT_H */
