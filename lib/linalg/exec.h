/*
 * exec.h: what a linear-algebra call runs with: the kernel table, the
 * oneDNN handle, the thread count and scratch. One per context, used by one
 * thread at a time. Private.
 */
#ifndef LZN_EXEC_H
#define LZN_EXEC_H

#include "kernels/kernels.h"
#include "linalg/onednn.h"

typedef struct lzn_exec {
  const lzn_kernel_table *kernels;
  lzn_dense *dense;
  int n_threads;
} lzn_exec;

#endif /* LZN_EXEC_H */
