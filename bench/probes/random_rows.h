/*
 * random_rows.h: what the gather probes share: a 2 GB buffer of rows
 * (2 MiB aligned, advised onto huge pages or away from them, written once
 * so that every page exists) and an ascending list of the rows picked at
 * random with a given density, as the kernels' active lists are.
 * Header-only: each probe is one file for gcc.
 */
#ifndef LZN_BENCH_PROBES_RANDOM_ROWS_H
#define LZN_BENCH_PROBES_RANDOM_ROWS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The buffer in *base, the picked rows in *idx (n of them); 0, or -1 out
 * of memory. Seeded, so every run picks the same rows. */
static int random_rows(size_t row_bytes, int huge, double density, char **base, int32_t **idx, size_t *n) {
  const size_t rows = (size_t)(2.0e9 / (double)row_bytes), bytes = rows * row_bytes, huge_page = 2u << 20;
  char *map = mmap(NULL, bytes + huge_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) return -1;
  char *p = (char *)(((uintptr_t)map + huge_page - 1) & ~(uintptr_t)(huge_page - 1));
  (void)madvise(p, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  memset(p, 1, bytes);
  int32_t *list = malloc(rows * sizeof *list);
  if (list == NULL) return -1;
  size_t count = 0;
  srand(1);
  for (size_t r = 0; r < rows; r++)
    if ((double)rand() / RAND_MAX < density) list[count++] = (int32_t)r;
  *base = p, *idx = list, *n = count;
  return 0;
}

#endif /* LZN_BENCH_PROBES_RANDOM_ROWS_H */
