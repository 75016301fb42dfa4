/*
 * exec.h: what a linear-algebra call runs with: the kernel table, the
 * oneDNN handle, the thread count and scratch. One per context, used by one
 * thread at a time. Private.
 */
#ifndef LZN_EXEC_H
#define LZN_EXEC_H

#include <stddef.h>

#include "kernels/kernels.h"
#include "linalg/onednn.h"
#include "linalg/pool.h"

/* Largest thread count a caller may ask for; beyond it is surely a mistake. */
#define LZN_MAX_THREADS 1024

/* Scratch buffers an exec keeps between calls, grown on demand. */
typedef enum lzn_scratch_kind {
  LZN_SCRATCH_X_DOT = 0,    /* x converted to the format a type's dot kernels take (lzn_wtype_dot_type) */
  LZN_SCRATCH_ALL_ROWS = 1, /* 0, 1, ..., n - 1: every row, for axpy_rows over a whole matrix */
  LZN_SCRATCH_XSMM = 2,     /* libxsmm's operands: x transposed, output blocks, row addresses */
  LZN_SCRATCH_PANELS = 3,   /* products on converted panels (linalg/gemm_panels.h): x, a panel, staging */
  LZN_SCRATCH_DOWN_PARTS = 4, /* the sums of a sparse down-projection's parts (linalg/sparse_down.h) */
  LZN_SCRATCH_COUNT = 5
} lzn_scratch_kind;

/* Who multiplies a batch of F32 weights (the other types always go through
 * the table's gemm kernels): AUTO picks by shape (linalg/linear.c says
 * how); the others force one, for lzn-bench and tests. */
typedef enum lzn_backend {
  LZN_BACKEND_AUTO = 0,
  LZN_BACKEND_OWN = 1,    /* the kernel table's gemm / axpy_gemm */
  LZN_BACKEND_ONEDNN = 2, /* oneDNN's matmul (dense products only) */
  LZN_BACKEND_XSMM = 3,   /* libxsmm's JIT kernels (linalg/xsmm.h) */
  LZN_BACKEND_COUNT = 4
} lzn_backend;

struct lzn_xsmm;

typedef struct lzn_exec {
  const lzn_kernel_table *kernels;
  lzn_dense *dense;
  struct lzn_xsmm *xsmm; /* NULL: libxsmm not used (LZN_ISA=scalar) */
  lzn_backend backend;   /* AUTO, or forced */
  unsigned used;         /* bit (1 << lzn_backend) for each backend a batched product ran on since cleared */
  lzn_pool *pool;  /* the threads of our own kernels' loops (oneDNN has its own) */
  int n_threads;
  void *scratch[LZN_SCRATCH_COUNT];
  size_t scratch_bytes[LZN_SCRATCH_COUNT];
} lzn_exec;

/* At least n_bytes of scratch of that kind, 64-byte aligned, kept until
 * the next call for the same kind or lzn_exec_free. Statuses: OK, NOMEM. */
lzn_status lzn_exec_scratch(lzn_exec *ex, lzn_scratch_kind kind, size_t n_bytes, void **out);

/* Frees the oneDNN handle, the pool and the scratch; safe on a zeroed struct. */
void lzn_exec_free(lzn_exec *ex);

#endif /* LZN_EXEC_H */
