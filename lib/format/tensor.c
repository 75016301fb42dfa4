/*
 * tensor.c: helpers for format-neutral tensors.
 */
#include "format/tensor.h"

#include <stdio.h>

const char *lzn_shape_string(char *buf, size_t cap, const int64_t *shape, int n_dims) {
  size_t used = (size_t)snprintf(buf, cap, "[");
  for (int i = 0; i < n_dims && used < cap; i++)
    used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (used < cap) snprintf(buf + used, cap - used, "]");
  return buf;
}
