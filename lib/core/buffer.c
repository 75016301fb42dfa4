/*
 * buffer.c: aligned (huge-page) buffers owned by a list.
 */
#include "core/buffer.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "core/errors.h"

#define LZN_HUGE_PAGE ((size_t)2 << 20)

void *lzn_alloc_weights(size_t n_bytes) {
  const size_t align = n_bytes >= LZN_HUGE_PAGE ? LZN_HUGE_PAGE : 64;
  if (n_bytes > SIZE_MAX - align) return NULL;
  const size_t bytes = (n_bytes + align - 1) & ~(align - 1);
  void *buffer = aligned_alloc(align, bytes ? bytes : align);
  if (buffer != NULL && align == LZN_HUGE_PAGE) madvise(buffer, bytes, MADV_HUGEPAGE); /* advice only */
  return buffer;
}

lzn_status lzn_buffers_alloc(lzn_buffers *list, size_t n_bytes, void **out) {
  *out = NULL;
  if (list->n == list->cap) {
    const size_t cap = list->cap ? 2 * list->cap : 64;
    void **grown = realloc(list->items, cap * sizeof *grown);
    if (grown == NULL) return lzn_fail(LZN_ERR_NOMEM, "out of memory growing the buffer list");
    list->items = grown, list->cap = cap;
  }
  void *buffer = lzn_alloc_weights(n_bytes);
  if (buffer == NULL) return lzn_fail(LZN_ERR_NOMEM, "out of memory allocating %zu bytes of weights", n_bytes);
  list->items[list->n++] = buffer;
  *out = buffer;
  return LZN_OK;
}

void lzn_buffers_free(lzn_buffers *list) {
  if (list == NULL) return;
  for (size_t i = 0; i < list->n; i++) free(list->items[i]);
  free(list->items);
  list->items = NULL, list->n = list->cap = 0;
}
