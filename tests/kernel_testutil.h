/*
 * kernel_testutil.h: what the kernel suites (test_kernels, test_kernels_quant,
 * test_attention) share: the scalar reference table, the table under test
 * (the one LZN_ISA selects), page-guarded buffers and the active-row
 * patterns every row kernel is checked on. Header-only, like
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
#include "testutil.h"

/* The scalar reference: every kernel under test is compared with it. */
static inline const lzn_kernel_table *reference_kernels(void) {
  static lzn_kernel_table ref;
  if (ref.relu_compact.fn == NULL) lzn_kernel_table_fill(LZN_ISA_SCALAR, 0, LZN_PREFETCH_L1, &ref);
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

/* Active-row patterns: which rows of an f-row matrix a call reads. */
typedef enum {
  ROWS_NONE,        /* density 0: n = 0 */
  ROWS_FIRST,       /* one row, the first */
  ROWS_LAST,        /* one row, the last */
  ROWS_RANDOM_3,    /* 3 % at random, increasing (what relu_compact gives) */
  ROWS_RANDOM_50,   /* 50 % at random, increasing */
  ROWS_ALL,         /* 100 % */
  ROWS_CLUSTERED,   /* contiguous runs of 1..40 rows with gaps */
  ROWS_FEW,         /* 1..23 rows: a partial group, or groups plus a rest */
  ROWS_SHUFFLED,    /* any order, with repeats: the contract allows it */
  ROWS_N_PATTERNS
} rows_pattern;

static const char *const pattern_names[ROWS_N_PATTERNS] = {
    "none", "first", "last", "random 3%", "random 50%", "all", "clustered", "few", "shuffled"};

/* Room make_rows needs for an f-row matrix (repeats may exceed f). */
static inline size_t rows_capacity(size_t f) { return 2 * f + 64; }

/* Writes the pattern's rows to idx (room for rows_capacity(f)) and returns
 * how many. */
static inline size_t make_rows(test_rng *r, rows_pattern pattern, size_t f, int32_t *idx) {
  size_t n = 0;
  switch (pattern) {
  case ROWS_NONE: break;
  case ROWS_FIRST: idx[n++] = 0; break;
  case ROWS_LAST: idx[n++] = (int32_t)(f - 1); break;
  case ROWS_RANDOM_3:
  case ROWS_RANDOM_50: {
    const uint64_t per_100 = pattern == ROWS_RANDOM_3 ? 3 : 50;
    for (size_t i = 0; i < f; i++)
      if (rng_below(r, 100) < per_100) idx[n++] = (int32_t)i;
    break;
  }
  case ROWS_ALL:
    for (size_t i = 0; i < f; i++) idx[n++] = (int32_t)i;
    break;
  case ROWS_CLUSTERED:
    for (size_t i = rng_below(r, 8); i < f;) {
      const size_t run = 1 + rng_below(r, 40);
      for (size_t k = 0; k < run && i < f; k++) idx[n++] = (int32_t)i++;
      i += 1 + rng_below(r, 100);
    }
    break;
  case ROWS_FEW: {
    const size_t want = 1 + rng_below(r, 23);
    for (size_t k = 0; k < want; k++) idx[n++] = (int32_t)rng_below(r, f);
    break;
  }
  case ROWS_SHUFFLED: {
    const size_t want = 1 + f / 10 + rng_below(r, 20);
    for (size_t k = 0; k < want; k++) idx[n++] = (int32_t)rng_below(r, f);
    for (size_t k = 0; k < want / 4; k++) idx[n++] = idx[rng_below(r, want)]; /* repeats */
    break;
  }
  case ROWS_N_PATTERNS: break;
  }
  return n;
}

#endif
