/*
 * ref/act.c: the reference activation kernel, relu_compact: the
 * specification the SIMD ones are tested against (kernels.h has the
 * contract).
 */
#include "kernels/kernels.h"

static size_t scalar_relu_compact(const float *h, size_t n, float threshold,
                                  int32_t *idx, float *val) {
  size_t n_active = 0;
  for (size_t i = 0; i < n; i++) {
    if (h[i] > threshold) { /* false for NaN */
      idx[n_active] = (int32_t)i;
      val[n_active] = h[i];
      n_active++;
    }
  }
  return n_active;
}

void lzn_install_ref_act(lzn_kernel_table *t);
void lzn_install_ref_act(lzn_kernel_table *t) {
  LZN_SET(t->relu_compact, LZN_ISA_SCALAR, scalar_relu_compact);
}
