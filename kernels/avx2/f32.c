/*
 * avx2/f32.c: the fp32 kernels for AVX2 + FMA: the x86 row skeleton
 * (generic/rows.h) over 8-float vectors and plain fp32 loads. Only kernels/avx2/
 * is compiled with -mavx2 -mfma -mf16c (see kernels.h for each kernel's
 * contract).
 */
#include "kernels/x86/vec_avx2.h"

typedef float w_elem;
static inline vec_f32 w_load(const w_elem *p) { return vec_load(p); }
static inline vec_f32 w_load_tail(const w_elem *p, vec_tail t) { return vec_load_tail(p, t); }

#include "kernels/generic/rows.h"

void lzn_install_avx2_f32(lzn_kernel_table *t);
void lzn_install_avx2_f32(lzn_kernel_table *t) {
  LZN_SET(t->type[LZN_WEIGHTS_F32].axpy_rows, LZN_ISA_AVX2, LZN_AT_LEVEL(t, rows_axpy_rows));
  /* An element type has no scale to round the coefficients with: axpy_rows_q8 is axpy_rows. */
  LZN_SET(t->type[LZN_WEIGHTS_F32].axpy_rows_q8, LZN_ISA_AVX2, LZN_AT_LEVEL(t, rows_axpy_rows));
  LZN_SET(t->type[LZN_WEIGHTS_F32].dot_rows, LZN_ISA_AVX2, LZN_AT_LEVEL(t, rows_dot_rows));
  LZN_SET(t->type[LZN_WEIGHTS_F32].gemv, LZN_ISA_AVX2, LZN_AT_LEVEL(t, rows_gemv));
}
