/*
 * activation.h: the ReLU family as a table: what each activation does to
 * the decider's output and how it decides which neurons are active. The MLP
 * pipeline (forward/mlp.c) reads a rule and never names an activation.
 * Private.
 *
 *   relu     active where g > t (t = params.threshold, 0 by default):
 *            OPT's fc1, ReluLLaMA's gate;
 *   fatrelu  the same with t = the config's threshold unless the caller set
 *            params.threshold (ProSparse, MiniCPM-S);
 *   drelu    relu(g) * relu(u): active where g > t, then only where the up
 *            row is > 0 too, so the set shrinks after the up rows
 *            (TurboSparse, Bamboo);
 *   silu     SwiGLU: g becomes silu(g) and every neuron is active, so it
 *            runs dense, unless the caller sets a threshold or top_k: then
 *            |silu(g)| <= t counts as zero (the CATS / TEAL idea, an
 *            approximation the statistics show).
 * An active neuron's coefficient is g (ungated) or g * u (gated); top_k
 * applies on top of the threshold.
 */
#ifndef LZN_FORWARD_ACTIVATION_H
#define LZN_FORWARD_ACTIVATION_H

#include <stddef.h>

#include "arch/llama_config.h"

typedef struct lzn_activation_rule {
  const char *name;
  /* Applied to the decider's rows before selection; NULL: none. */
  void (*transform)(float *g, size_t n);
  int select_on_magnitude;      /* selection compares |g| */
  int up_must_be_positive;      /* a selected neuron stays active only where u > 0 */
  int dense_unless_thresholded; /* without a threshold or top_k every neuron is active */
  int threshold_from_config;    /* the config's threshold unless the caller sets one */
} lzn_activation_rule;

const lzn_activation_rule *lzn_activation_rule_of(lzn_activation activation);

#endif /* LZN_FORWARD_ACTIVATION_H */
