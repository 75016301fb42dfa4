/*
 * buffer.h: aligned buffers, on huge pages when large, and a list that
 * frees them together (what a model owns). Private.
 */
#ifndef LZN_BUFFER_H
#define LZN_BUFFER_H

#include <stddef.h>

#include "lazyneuron.h"

/* Buffers freed together by lzn_buffers_free. Zero-initialise. */
typedef struct lzn_buffers {
  void **items;
  size_t n, cap;
} lzn_buffers;

/* A buffer of n_bytes, owned by list: 2 MiB aligned with transparent huge
 * pages when it is at least 2 MiB (the sparse kernels read rows at random,
 * and 4 KiB pages cost a TLB miss per row: measured 0.120 -> 0.102 ms at
 * 5 % density, 2048x8192 fp32), else cache-line aligned. Contents are
 * undefined. Statuses: OK, NOMEM. */
lzn_status lzn_buffers_alloc(lzn_buffers *list, size_t n_bytes, void **out);

/* Frees every buffer of the list and the list itself; safe on zeroes. */
void lzn_buffers_free(lzn_buffers *list);

#endif /* LZN_BUFFER_H */
