/*
 * carve.h: one allocation cut into named, 64-byte aligned pieces. Private.
 *
 * A context's workspace is the buffers of every step of the forward pass;
 * each step declares its own pieces in its header (a `*_carve` function),
 * and the workspace runs them twice over one carver: first with no memory,
 * to add up the size, then over one allocation of that size, to hand the
 * pieces out. One malloc, one free, and no step lists another's buffers.
 */
#ifndef LZN_CORE_CARVE_H
#define LZN_CORE_CARVE_H

#include <stddef.h>
#include <stdint.h>

typedef struct lzn_carver {
  char *base;  /* NULL while measuring */
  size_t used; /* bytes handed out so far, pieces rounded up to 64 */
  int overflow;
} lzn_carver;

/* The next piece of count elements of elem_size bytes (at least one
 * element, so no piece is NULL when memory is there). */
static inline void *lzn_carve(lzn_carver *c, size_t count, size_t elem_size) {
  if (count == 0) count = 1;
  if (count > SIZE_MAX / elem_size || count * elem_size > SIZE_MAX - 128 - c->used) {
    c->overflow = 1;
    return NULL;
  }
  const size_t at = c->used;
  c->used = (at + count * elem_size + 63) & ~(size_t)63;
  return c->base ? c->base + at : NULL;
}

#define LZN_CARVE(c, count, type) ((type *)lzn_carve((c), (size_t)(count), sizeof(type)))

#endif /* LZN_CORE_CARVE_H */
