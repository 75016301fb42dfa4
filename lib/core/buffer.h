/*
 * buffer.h: aligned buffers, on huge pages when large, and a list that
 * frees them together (what a model owns). Private.
 */
#ifndef LZN_BUFFER_H
#define LZN_BUFFER_H

#include <stddef.h>

#include "lazyneuron.h"

/* Buffers freed together by lzn_buffers_free. Zero-initialise. */
typedef struct lzn_buffer {
  void *bytes;
  size_t n_bytes; /* as asked of lzn_alloc_weights, for lzn_free_weights */
} lzn_buffer;

typedef struct lzn_buffers {
  lzn_buffer *items;
  size_t n, cap;
} lzn_buffers;

/* n_bytes for weights, released by lzn_free_weights(p, n_bytes): when it is
 * at least 2 MiB, a fresh anonymous mapping, 2 MiB aligned and advised onto
 * transparent huge pages before anything touches it, else cache-line
 * aligned heap memory; NULL when out of memory. Fresh, because advice only
 * shapes pages faulted in after it: heap memory that malloc hands out again
 * (a freed staging buffer, say) keeps the 4 KiB pages it already has, and
 * glibc serves requests below its mmap threshold, which grows up to 32 MiB
 * as mapped chunks are freed, from such memory. Measured: a synthetic
 * 7B-shape model built beside 16 MB staging buffers had 2.2 of its 6.2 GiB
 * on 4 KiB pages (all its packed q/k/v/o copies), and the 32 layers'
 * q/k/v/o GEMVs read 22-23 GB/s from such pages against 26-28 from 2 MiB
 * ones (one Zen 4 core). Weights stream from DRAM, and on 4 KiB pages
 * every 4 KiB read is a TLB miss whose page walk itself misses the
 * caches (a 7B model's page tables are 8 MB): measured, the sparse kernels
 * read rows at random 0.120 -> 0.102 ms at 5 % density (2048x8192 fp32), and
 * a LLaMA-7B Q4_0 file's one-thread decode ran 3.9 -> 6.7 t/s dense, 7.9 ->
 * 10.2 sparse, read into this memory instead of mapped on 4 KiB pages. */
void *lzn_alloc_weights(size_t n_bytes);

/* Releases a buffer of lzn_alloc_weights(n_bytes) (the same n_bytes); NULL
 * is a no-op. */
void lzn_free_weights(void *buffer, size_t n_bytes);

/* A buffer of n_bytes, owned by list (lzn_alloc_weights). Contents are
 * undefined. Statuses: OK, NOMEM. */
lzn_status lzn_buffers_alloc(lzn_buffers *list, size_t n_bytes, void **out);

/* Frees every buffer of the list and the list itself; safe on zeroes. */
void lzn_buffers_free(lzn_buffers *list);

#endif /* LZN_BUFFER_H */
