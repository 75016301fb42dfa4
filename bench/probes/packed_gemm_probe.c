/*
 * packed_gemm_probe.c: the packed gemm kernel alone (kernels/packed.h, the
 * table's `packed` slot for Q4_0), without what `lzn-bench gemm` times
 * around it (quantizing the tokens, the dispatch: ~12 us a call, a third
 * of a 256-row product in L2). Rows of random weights packed once,
 * tokens already in Q8_0, the best of 7 batches of ITERS calls. A one-off
 * probe for bench/RESULTS.md ("2026-12-07, late"), not built by make.
 *
 *   make && gcc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Ilib -I. -Ibuild/gen \
 *     bench/probes/packed_gemm_probe.c -o /tmp/pgp build/liblazyneuron.a \
 *     $(make -s --no-print-directory print-static-libs)
 *   /tmp/pgp ROWS TOKENS ITERS [q8_0]   e.g. 256 8 300 (L2), 65536 8 5 (memory)
 *
 * Prints microseconds a call and int8 multiply-adds per second (4096
 * columns); set LZN_ISA as for the library.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "core/matrix.h"
#include "cpu/cpu.h"
#include "kernels/kernels.h"
#include "linalg/pack.h"

#define COLS 4096
#define BATCHES 7

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Random blocks of row_bytes bytes each, every block's fp16 scale 1.0 (its
 * first two bytes; Q4_0 and Q8_0 alike). */
static unsigned char *random_blocks(size_t n_rows, size_t row_bytes, size_t block_bytes) {
  unsigned char *p = malloc(n_rows * row_bytes);
  if (!p) return NULL;
  for (size_t i = 0; i < n_rows * row_bytes; i++) p[i] = (unsigned char)rand();
  for (size_t r = 0; r < n_rows; r++)
    for (size_t b = 0; b < COLS / LZN_QK; b++) memcpy(p + r * row_bytes + b * block_bytes, &(uint16_t){0x3c00}, 2);
  return p;
}

int main(int argc, char **argv) {
  if (argc != 4 && !(argc == 5 && strcmp(argv[4], "q8_0") == 0)) {
    fprintf(stderr, "usage: %s ROWS TOKENS ITERS [q8_0]\n", argv[0]);
    return 2;
  }
  const lzn_weight_type type = argc == 5 ? LZN_WEIGHTS_Q8_0 : LZN_WEIGHTS_Q4_0;
  const size_t f = strtoul(argv[1], NULL, 10), m = strtoul(argv[2], NULL, 10);
  const long iters = strtol(argv[3], NULL, 10);
  const lzn_kernel_table *k;
  if (f == 0 || m == 0 || iters <= 0 || lzn_kernels_get(&k) != LZN_OK) return 2;
  if (k->gemm[type].packed.fn == NULL) {
    fprintf(stderr, "%s: no packed %s gemm on this ISA\n", argv[0], lzn_wtype_name(type));
    return 1;
  }
  const size_t w_bytes = lzn_wtype_row_bytes(type, COLS), x_bytes = lzn_wtype_row_bytes(LZN_WEIGHTS_Q8_0, COLS);
  const size_t w_block = type == LZN_WEIGHTS_Q8_0 ? sizeof(lzn_block_q8_0) : sizeof(lzn_block_q4_0);
  unsigned char *w = random_blocks(f, w_bytes, w_block), *x = random_blocks(m, x_bytes, sizeof(lzn_block_q8_0));
  lzn_matrix rows = lzn_matrix_make(type, w, (int64_t)f, COLS);
  /* On 2 MiB pages, as the library keeps its packed copies (the TLB would
   * otherwise miss every 4 KiB of the stream). */
  const size_t huge = (size_t)2 << 20, packed_bytes = (lzn_pack_bytes(&rows) + huge - 1) / huge * huge;
  void *packed = aligned_alloc(huge, packed_bytes);
  if (packed) madvise(packed, packed_bytes, MADV_HUGEPAGE);
  float *out = malloc(sizeof(float) * f * m);
  if (!w || !x || !packed || !out || lzn_pack_rows(k, &rows, packed, 1) != LZN_OK) return 1;
  double best = 1e30;
  for (int batch = 0; batch < BATCHES; batch++) {
    const double t0 = now();
    for (long i = 0; i < iters; i++) k->gemm[type].packed.fn(out, f, packed, COLS, f, x, x_bytes, m);
    const double t = (now() - t0) / (double)iters;
    if (t < best) best = t;
  }
  printf("%s, %zu rows x %d columns, %zu tokens: %.2f us, %.0f G MAC/s (out[0] %g)\n", lzn_wtype_name(type), f,
         COLS, m, best * 1e6,
         (double)f * COLS * (double)m / best / 1e9, (double)out[0]);
  free(w), free(x), free(packed), free(out);
  return 0;
}
