/*
 * select.h: which neurons of a token count as active. A neuron is active
 * when its selection value exceeds the token's threshold: the base
 * threshold, raised with top_k until at most top_k neurons remain (Top-k
 * thresholding: the seeds report it keeps quality while making activations
 * sparser). A batch reads the union of its tokens' sets. Private.
 */
#ifndef LZN_FORWARD_SELECT_H
#define LZN_FORWARD_SELECT_H

#include <stddef.h>
#include <stdint.h>

/* The threshold of one token's values v[0..f): base, raised until at most
 * top_k values are above it (top_k 0 or >= f: base). scratch holds f
 * floats. With ties at the boundary fewer than top_k may remain. */
float lzn_select_threshold(const float *v, int f, float base, int top_k, float *scratch);

/* A batch's union, built token by token: mark sets mask[i] where v[i] >
 * threshold (NaN: inactive) for one token's values v[0..f) and returns how
 * many of them are (the token's own set); collect writes the marked
 * indices, ascending, to idx (room for f) and returns how many. Clear mask (f bytes)
 * before the first mark. */
size_t lzn_select_mark(const float *v, int f, float threshold, uint8_t *mask);
size_t lzn_select_collect(const uint8_t *mask, int f, int32_t *idx);

#endif /* LZN_FORWARD_SELECT_H */
