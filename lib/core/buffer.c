/*
 * buffer.c: aligned (huge-page) buffers owned by a list.
 */
#include "core/buffer.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "core/errors.h"

#define LZN_HUGE_PAGE ((size_t)2 << 20)

/* Bytes a large buffer of n_bytes occupies: whole huge pages. */
static size_t huge_rounded(size_t n_bytes) { return (n_bytes + LZN_HUGE_PAGE - 1) & ~(LZN_HUGE_PAGE - 1); }

void *lzn_alloc_weights(size_t n_bytes) {
  if (n_bytes < LZN_HUGE_PAGE) return aligned_alloc(64, n_bytes ? (n_bytes + 63) & ~(size_t)63 : 64);
  if (n_bytes > SIZE_MAX - 2 * LZN_HUGE_PAGE) return NULL;
  const size_t bytes = huge_rounded(n_bytes);
  /* A huge page more than needed, then the unaligned ends given back. */
  char *map = mmap(NULL, bytes + LZN_HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) return NULL;
  const size_t before = (LZN_HUGE_PAGE - (uintptr_t)map % LZN_HUGE_PAGE) % LZN_HUGE_PAGE; /* < a huge page */
  char *const start = map + before;
  if (before) munmap(map, before);
  munmap(start + bytes, LZN_HUGE_PAGE - before);
  madvise(start, bytes, MADV_HUGEPAGE); /* advice only */
  return start;
}

void lzn_free_weights(void *buffer, size_t n_bytes) {
  if (buffer == NULL) return;
  if (n_bytes < LZN_HUGE_PAGE) free(buffer);
  else munmap(buffer, huge_rounded(n_bytes));
}

lzn_status lzn_buffers_alloc(lzn_buffers *list, size_t n_bytes, void **out) {
  *out = NULL;
  if (list->n == list->cap) {
    const size_t cap = list->cap ? 2 * list->cap : 64;
    lzn_buffer *grown = realloc(list->items, cap * sizeof *grown);
    if (grown == NULL) return lzn_fail(LZN_ERR_NOMEM, "out of memory growing the buffer list");
    list->items = grown, list->cap = cap;
  }
  void *buffer = lzn_alloc_weights(n_bytes);
  if (buffer == NULL) return lzn_fail(LZN_ERR_NOMEM, "out of memory allocating %zu bytes of weights", n_bytes);
  list->items[list->n++] = (lzn_buffer){buffer, n_bytes};
  *out = buffer;
  return LZN_OK;
}

void lzn_buffers_free(lzn_buffers *list) {
  if (list == NULL) return;
  for (size_t i = 0; i < list->n; i++) lzn_free_weights(list->items[i].bytes, list->items[i].n_bytes);
  free(list->items);
  list->items = NULL, list->n = list->cap = 0;
}
