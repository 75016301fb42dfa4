/*
 * kernel_testutil.h: what the kernel suites (test_kernels, test_kernels_quant,
 * test_attention) share: the scalar reference table, the table under test
 * (the one LZN_ISA selects) and page-guarded buffers. Header-only, like
 * testutil.h.
 */
#ifndef LZN_KERNEL_TESTUTIL_H
#define LZN_KERNEL_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/errors.h"
#include "cpu/cpu.h"

/* The scalar reference: every kernel under test is compared with it. */
static inline const lzn_kernel_table *reference_kernels(void) {
  static lzn_kernel_table ref;
  if (ref.relu_compact == NULL) lzn_kernel_table_fill(LZN_ISA_SCALAR, 0, &ref);
  return &ref;
}

/* The table the library dispatches to (LZN_ISA forces which). */
static inline const lzn_kernel_table *active_kernels(void) {
  const lzn_kernel_table *k = NULL;
  const lzn_status s = lzn_kernels_get(&k);
  ck_assert_msg(s == LZN_OK && k != NULL, "lzn_kernels_get: %s", lzn_last_error());
  return k;
}

/* Memory for n_bytes that ends exactly where an inaccessible page begins,
 * so a read or write past the end faults (a full-vector load in a tail,
 * say). The start is as aligned as n_bytes is: 4-byte for floats, 2-byte
 * for the quantized block structs. */
typedef struct {
  void *map;
  size_t map_bytes;
  void *data;
} guarded;

static inline guarded guarded_alloc(size_t n_bytes) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t data_pages = (n_bytes + page - 1) / page;
  guarded g;
  g.map_bytes = (data_pages + 1) * page;
  g.map = mmap(NULL, g.map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ck_assert_msg(g.map != MAP_FAILED, "mmap of %zu bytes failed", g.map_bytes);
  char *guard = (char *)g.map + data_pages * page;
  ck_assert_int_eq(mprotect(guard, page, PROT_NONE), 0);
  g.data = guard - n_bytes;
  return g;
}

static inline void guarded_free(guarded *g) {
  if (g->map) munmap(g->map, g->map_bytes);
  g->map = NULL;
}

#endif
