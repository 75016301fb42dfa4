/*
 * abi.c: structs that grow without breaking older callers (core/abi.h).
 */
#include "core/abi.h"

#include <stdio.h>
#include <string.h>

#include "core/errors.h"

const lzn_struct_size *lzn_struct_size_find(size_t struct_size, const lzn_struct_size *sizes, size_t n_sizes) {
  for (size_t i = 0; i < n_sizes; i++)
    if (sizes[i].size == struct_size) return &sizes[i];
  return NULL;
}

/* "40, 56": the sizes a struct takes, for messages. */
static const char *list_sizes(char *buf, size_t cap, const lzn_struct_size *sizes, size_t n_sizes) {
  buf[0] = '\0';
  for (size_t i = 0; i < n_sizes; i++)
    snprintf(buf + strlen(buf), cap - strlen(buf), "%s%zu", i ? ", " : "", sizes[i].size);
  return buf;
}

static lzn_status unknown_size(size_t struct_size, const lzn_struct_size *sizes, size_t n_sizes, const char *fn,
                               const char *which) {
  char list[128];
  return lzn_fail(LZN_ERR_INVALID_ARG, "%s: %sstruct_size = %zu is no released size of it (%s; a larger one "
                  "comes from a newer header than this library's)", fn, which, struct_size,
                  list_sizes(list, sizeof list, sizes, n_sizes));
}

static size_t struct_size_of(const void *s) {
  size_t size;
  memcpy(&size, s, sizeof size);
  return size;
}

lzn_status lzn_params_read(void *dst, const void *defaults, const void *src, const lzn_struct_size *sizes,
                           size_t n_sizes, const char *fn) {
  const size_t size = struct_size_of(src);
  const lzn_struct_size *known = lzn_struct_size_find(size, sizes, n_sizes);
  if (known == NULL) return unknown_size(size, sizes, n_sizes, fn, "params->");
  const size_t current = sizes[n_sizes - 1].size;
  memcpy(dst, defaults, current);
  memcpy(dst, src, known->fields_end);
  memcpy(dst, &current, sizeof current);
  return LZN_OK;
}

lzn_status lzn_params_fill(void *dst, size_t struct_size, const void *defaults, const lzn_struct_size *sizes,
                           size_t n_sizes, const char *fn) {
  if (dst == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: params is NULL", fn);
  const lzn_struct_size *known = lzn_struct_size_find(struct_size, sizes, n_sizes);
  if (known == NULL) return unknown_size(struct_size, sizes, n_sizes, fn, "");
  memset(dst, 0, known->size);
  memcpy(dst, defaults, known->fields_end);
  memcpy(dst, &struct_size, sizeof struct_size);
  return LZN_OK;
}

lzn_status lzn_out_write(void *dst, const void *full, const lzn_struct_size *sizes, size_t n_sizes,
                         const char *fn) {
  const size_t size = struct_size_of(dst);
  const lzn_struct_size *known = lzn_struct_size_find(size, sizes, n_sizes);
  if (known == NULL) {
    if (size == 0)
      return lzn_fail(LZN_ERR_INVALID_ARG, "%s: out->struct_size is 0: set it to sizeof *out", fn);
    return unknown_size(size, sizes, n_sizes, fn, "out->");
  }
  memcpy((char *)dst + sizeof size, (const char *)full + sizeof size, known->fields_end - sizeof size);
  return LZN_OK;
}
