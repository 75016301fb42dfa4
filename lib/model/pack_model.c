/*
 * pack_model.c: packed copies (kernels/packed.h) of the matrices that a
 * batch of tokens reads whole, made once at load.
 *
 * Which, in two tiers, each layer by layer, while the budget lasts (a
 * matrix that does not fit is skipped, a smaller one after it may still
 * be packed):
 *   1. what every batch reads whole: attention's q, k, v and o, the gate
 *      of a layer without a predictor (its active set being what it
 *      computes), then the LM head;
 *   2. for a model whose MLP is dense unless a context thresholds it
 *      (SiLU: a plain LLaMA), what its batches then read whole: up
 *      and down as stored. On rows as they lie a gemm of a few tokens is
 *      compute-bound at a third of the packed kernel's speed (`lzn-bench
 *      gemm`: 6.3 against 2.0 ms for 11008 x 4096 Q4_0, 8 tokens); packed,
 *      a dense 7B-shape Q4_0 prompt of 128 tokens ran 1.44x faster and a
 *      batched step of 16 1.56x. Not for the ReLU family: there a batch
 *      reads the union of its tokens' rows in place (or each token's own),
 *      as fast as the packed dense product was at 8 and 16 tokens and at
 *      128, so a copy would only cost memory (LLaMA-7B Q4_0: ~1.6 GB).
 * One token never reads them (the rows as they lie are faster for one:
 * kernels/packed.h).
 *
 * A K-quant matrix (Q4_K, Q5_K, Q6_K) is packed requantized to Q8_0
 * (linalg/pack.h), 1.9x the bytes of Q4_K, so only in tier 1: on a 7B-shape
 * Q4_K model a batched step of 8 went from 0.70 to 0.41 of 8 single steps and a
 * sparse 128-token prompt ran 1.76x faster, for ~4 GB of copies on
 * LLaMA-7B; tier 2 would add ~3 GB more.
 */
#include "core/errors.h"
#include "cpu/cpu.h"
#include "forward/activation.h"
#include "linalg/pack.h"
#include "model/model.h"

/* Packs w if the table can and it fits what is left of the budget. */
static lzn_status pack_one(lzn_model *m, const lzn_kernel_table *k, lzn_matrix *w, size_t *left, int n_threads) {
  if (!lzn_pack_supported(k, w)) return LZN_OK;
  const size_t bytes = lzn_pack_bytes(w);
  if (bytes > *left) return LZN_OK;
  void *dst;
  const lzn_status s = lzn_model_own(m, bytes, &dst);
  if (s != LZN_OK) return s;
  const lzn_status packed = lzn_pack_rows(k, w, dst, n_threads);
  if (packed != LZN_OK) return packed;
  w->packed = dst;
  *left -= bytes;
  return LZN_OK;
}

lzn_status lzn_model_pack(lzn_model *m, size_t budget, int n_threads) {
  const lzn_kernel_table *k;
  lzn_status s = lzn_kernels_get(&k);
  size_t left = budget;
  for (int l = 0; s == LZN_OK && l < m->n_layers; l++) {
    lzn_layer *y = &m->layers[l];
    lzn_matrix *read_whole[] = {&y->q, &y->k, &y->v, &y->o, y->predictor.present ? NULL : &y->gate};
    for (size_t i = 0; s == LZN_OK && i < sizeof read_whole / sizeof read_whole[0]; i++)
      if (read_whole[i]) s = pack_one(m, k, read_whole[i], &left, n_threads);
  }
  if (s == LZN_OK) s = pack_one(m, k, &m->lm_head, &left, n_threads);
  if (!lzn_activation_rule_of(m->arch.activation)->dense_unless_thresholded) return s;
  for (int l = 0; s == LZN_OK && l < m->n_layers; l++) {
    lzn_matrix *up = &m->layers[l].up, *down = &m->layers[l].down;
    if (lzn_pack_type(up->type) == up->type) s = pack_one(m, k, up, &left, n_threads);
    if (s == LZN_OK && lzn_pack_type(down->type) == down->type) s = pack_one(m, k, down, &left, n_threads);
  }
  return s;
}

size_t lzn_model_packed_bytes(const lzn_model *m) {
  size_t total = m->lm_head.packed ? lzn_pack_bytes(&m->lm_head) : 0;
  for (int l = 0; l < m->n_layers; l++) {
    const lzn_layer *y = &m->layers[l];
    const lzn_matrix *all[] = {&y->q, &y->k, &y->v, &y->o, &y->gate, &y->up, &y->down};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
      if (all[i]->packed) total += lzn_pack_bytes(all[i]);
  }
  return total;
}
