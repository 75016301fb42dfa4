/*
 * exec.c: an exec's scratch buffers.
 */
#include "linalg/exec.h"

#include <stdlib.h>

#include "core/errors.h"
#include "linalg/xsmm.h"

lzn_status lzn_exec_scratch(lzn_exec *ex, lzn_scratch_kind kind, size_t n_bytes, void **out) {
  if (n_bytes <= ex->scratch_bytes[kind]) {
    *out = ex->scratch[kind];
    return LZN_OK;
  }
  const size_t rounded = (n_bytes + 63) & ~(size_t)63;
  void *grown = aligned_alloc(64, rounded);
  if (grown == NULL) return lzn_fail(LZN_ERR_NOMEM, "out of memory for %zu bytes of scratch", rounded);
  free(ex->scratch[kind]);
  ex->scratch[kind] = grown, ex->scratch_bytes[kind] = rounded;
  *out = grown;
  return LZN_OK;
}

void lzn_exec_free(lzn_exec *ex) {
  lzn_dense_free(ex->dense);
  lzn_xsmm_free(ex->xsmm);
  ex->xsmm = NULL;
  lzn_pool_free(ex->pool);
  ex->pool = NULL;
  for (int i = 0; i < LZN_SCRATCH_COUNT; i++) free(ex->scratch[i]);
  ex->dense = NULL;
}
