/*
 * kernels.h: the kernel table and its contract. Private to the library.
 *
 * One struct of function pointers per ISA. lib/cpu.c starts from the scalar
 * table and takes the best one that the CPU and the OS support (or the one
 * LZN_ISA forces). The scalar kernels in scalar.c are the specification; the
 * SIMD ones must agree with them within the tolerances the tests state.
 *
 * Each ISA lives in one file compiled with that ISA's flags and no other
 * file gets ISA flags. No inline helper is shared between ISA files: a
 * linker could keep the AVX-512 copy and call it on an older CPU.
 *
 * Matrices are row-major with a leading dimension ld (distance in floats
 * between the starts of two rows), so a thread can pass a slice of columns
 * (w + j0, d = j1 - j0, same ld) and own y[j0 .. j1).
 */
#ifndef LZN_KERNELS_H
#define LZN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

enum lzn_isa { LZN_ISA_SCALAR = 0, LZN_ISA_AVX2 = 1, LZN_ISA_AVX512 = 2 };

typedef struct lzn_kernels {
  const char *name; /* "scalar", "avx2", "avx512" */
  enum lzn_isa isa;

  /* Writes every i in [0, n) with h[i] > threshold, in increasing order, to
   * idx and h[i] to val; returns how many. threshold >= 0. NaN is inactive.
   * idx and val hold n entries. */
  size_t (*relu_compact)(const float *h, size_t n, float threshold,
                         int32_t *idx, float *val);

  /* y[j] += sum_{t < n} coef[t] * w[idx[t] * ld + j] for j in [0, d).
   * Rows are visited in groups (e.g. 8) so y is loaded and stored once per
   * group, not once per row. n may be 0. Summation order inside a group may
   * differ from the scalar kernel's (fp32 rounding only). */
  void (*axpy_rows)(float *y, size_t d, const float *w, size_t ld,
                    const int32_t *idx, const float *coef, size_t n);

  /* out[t] = sum_{j < d} w[idx[t] * ld + j] * x[j] for t in [0, n). */
  void (*dot_rows)(float *out, const float *w, size_t ld, size_t d,
                   const int32_t *idx, size_t n, const float *x);
} lzn_kernels;

/* Each ISA file defines one table; cpu.c references it only if the compiler
 * could build that file (LZN_HAVE_AVX2 / LZN_HAVE_AVX512 set by the Makefile). */
extern const lzn_kernels lzn_kernels_scalar;
extern const lzn_kernels lzn_kernels_avx2;
extern const lzn_kernels lzn_kernels_avx512;

#endif /* LZN_KERNELS_H */
