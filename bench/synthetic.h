/*
 * synthetic.h: OPT-shaped models made in memory from random weights, for
 * benchmarks and tests that need a real model's shapes but not its files.
 * Private to the library (the benchmark and the tests link the static one).
 */
#ifndef LZN_SYNTHETIC_H
#define LZN_SYNTHETIC_H

#include <stdint.h>

#include "lazyneuron.h"

/* The shapes lzn_model_synthetic knows, for messages and help texts. */
#define LZN_SYNTHETIC_NAMES "opt-125m, opt-1.3b, opt-6.7b, llama-7b, relullama-7b, mistral-7b"

/* An lzn_model with the shapes of the named model and random weights from
 * seed, scaled so that a fraction `density` of the MLP neurons fire for each
 * token, a different set for each token. OPT ("opt-125m", "opt-1.3b",
 * "opt-6.7b"): pre-LN, biases, tied LM head, vocab 50272, 2048 positions,
 * density from the fc1 bias. LLaMA family ("llama-7b", "relullama-7b",
 * "mistral-7b" with 8 KV heads): a gated FATReLU MLP whose threshold sets the
 * density, RoPE, untied LM head, vocab 32000. n_layers > 0 replaces the model's layer count (0 keeps it). Free
 * with lzn_model_free. Statuses: OK; INVALID_ARG (out or name NULL, unknown
 * name, density outside (0, 1], n_layers < 0); NOMEM (the weights would take
 * more than 70 % of the physical RAM, the message says how many layers fit;
 * or an allocation failed). */
lzn_status lzn_model_synthetic(const char *name, float density, int n_layers, uint64_t seed,
                               lzn_model **out);

/* lzn_model_synthetic with the weight matrices in a type (not AS_STORED):
 * the same fp32 values rounded to it, made a chunk of rows at a time so
 * that a model that fits in its type never needs its fp32 size (the RAM
 * check counts the type's bytes). */
lzn_status lzn_model_synthetic_typed(const char *name, float density, int n_layers, uint64_t seed,
                                     lzn_weight_type weight_type, lzn_model **out);

/* Gives a synthetic model made with that density an activation predictor
 * of the given rank in every layer (its matrices in `type`: f32 is exact,
 * a compact type reads fewer bytes per token; Deja Vu's low-rank form s = w2 w1 x
 * with no activation between): the first-stage matrix (fc1, or the gate) is
 * rewritten as a product of rank-`rank` factors with the same distribution of
 * pre-activations, so the predictor computes them exactly, and its threshold
 * makes the predicted set `ratio` times the active set, containing it
 * (recall 1 up to the weight type's rounding). For benchmarks of the
 * predictor's speed: the model's quality means nothing. Statuses: OK,
 * INVALID_ARG (NULL, rank outside [1, d_model], ratio < 1 or density * ratio
 * > 1, a type that is not a weight type), NOMEM, BACKEND. */
lzn_status lzn_model_synthetic_add_predictor(lzn_model *m, float density, int rank, double ratio,
                                             lzn_weight_type type, uint64_t seed);

/* The standard normal quantile: x with P(N(0,1) <= x) = p, for p in (0, 1)
 * (Acklam's rational approximation and one Halley step: ~1e-15 relative).
 * -inf/+inf at p = 0/1, NaN outside [0, 1]. */
double lzn_inverse_normal_cdf(double p);

#endif /* LZN_SYNTHETIC_H */
