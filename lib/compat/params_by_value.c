/*
 * compat/params_by_value.c: lzn_model_default_params, which returns its
 * struct by value, at the size lzn_model_params had when the function was
 * released (48 bytes, 0.2 and 0.3). A caller built against an older header
 * made room for 48 bytes of return value; writing the 0.4 struct (64)
 * there would overrun it (lazyneuron.h, "ABI": a by-value function keeps
 * returning the released size; lzn_model_params_init gives the new one).
 *
 * So this file defines the function over the frozen layout, and the
 * header's declaration (which names the current struct) is kept out of
 * its way by a macro. A caller built against the current header gets the
 * 48 bytes, struct_size 48, and its new fields untouched: the library then
 * reads only the 48 (lzn_params_read).
 */
#include <string.h>

#define lzn_model_default_params lzn_model_default_params_as_declared
#include "lazyneuron.h"
#undef lzn_model_default_params

typedef struct model_params_0_3 {
  size_t struct_size;
  int use_mmap;
  lzn_progress_fn progress;
  void *progress_user_data;
  lzn_weight_type weight_type;
  const char *predictor_path;
} model_params_0_3;
_Static_assert(sizeof(model_params_0_3) == 48, "the 0.3 layout is frozen");
_Static_assert(offsetof(lzn_model_params, predictor_path) == offsetof(model_params_0_3, predictor_path),
               "lzn_model_params grows only at its end");

LZN_API model_params_0_3 lzn_model_default_params(void);
LZN_API model_params_0_3 lzn_model_default_params(void) {
  lzn_model_params current;
  model_params_0_3 p;
  memset(&p, 0, sizeof p);
  if (lzn_model_params_init(&current, sizeof p) == LZN_OK) memcpy(&p, &current, sizeof p);
  return p;
}
