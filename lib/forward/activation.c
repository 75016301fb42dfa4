/*
 * activation.c: the table of the ReLU family (forward/activation.h).
 */
#include "forward/activation.h"

#include <math.h>

static void silu_in_place(float *g, size_t n) {
  for (size_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i]));
}

static const lzn_activation_rule rules[] = {
    /*                  name       transform      |g|  u>0  dense  config t */
    [LZN_ACT_RELU] = {"relu", NULL, 0, 0, 0, 0},
    [LZN_ACT_FATRELU] = {"fatrelu", NULL, 0, 0, 0, 1},
    [LZN_ACT_DRELU] = {"drelu", NULL, 0, 1, 0, 0},
    [LZN_ACT_SILU] = {"silu", silu_in_place, 1, 0, 1, 0},
};

const lzn_activation_rule *lzn_activation_rule_of(lzn_activation activation) { return &rules[activation]; }
