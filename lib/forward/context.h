/*
 * context.h: one sequence's state, in parts with one owner each. Private.
 *
 *   kv       its keys, values and position          model/kv_cache.c
 *   ws       the buffers of one step of the forward pass, each step's
 *            declared in its own header and carved from one allocation
 *                                                   forward/{forward,attention,mlp,predictor}.h
 *   stats    per-layer statistics                   model/stats.c
 *   cost     AUTO's measured costs                  forward/cost.c
 *   exec     kernels, oneDNN, threads, scratch      linalg/exec.h
 */
#ifndef LZN_FORWARD_CONTEXT_H
#define LZN_FORWARD_CONTEXT_H

#include "forward/attention.h"
#include "forward/cost.h"
#include "forward/forward.h"
#include "forward/mlp.h"
#include "forward/predictor.h"
#include "linalg/exec.h"
#include "model/kv_cache.h"
#include "model/stats.h"

/* Tokens per step: prefill runs in steps of at most this many, and a batch
 * (lzn_forward_batch) of more sequences in as many steps. Every step reads
 * every weight it multiplies once (and F16, BF16 and the K-quants convert
 * their panels once), so longer steps make prompts cheaper: 4-layer
 * opt-1.3b pp512 on one Zen 5 core, 64 -> 256 rows: F32 356 -> 424 t/s,
 * F16 315 -> 364, Q4_K 522 -> 632, Q4_0 and Q8_0 within 5 % (their
 * kernels take 64 tokens at a time, linalg/gemm.c) (bench/RESULTS.md);
 * 512 gained nothing more. It bounds the workspace, ~92k floats a row
 * for LLaMA-7B (94 MB at 256 rows, against its KV cache's 2 GiB at 4096
 * positions in F16); a context that never prefills that many tokens at
 * once never touches the rest of it. */
#define LZN_MAX_BATCH 256

typedef struct lzn_workspace {
  void *memory;              /* the one allocation the parts are carved from */
  size_t bytes;
  lzn_stream_buffers stream; /* forward/forward.h */
  lzn_attn_buffers attn;     /* forward/attention.h */
  lzn_mlp_buffers mlp;       /* forward/mlp.h */
  lzn_predictor_buffers predictor; /* forward/predictor.h */
} lzn_workspace;

struct lzn_context {
  const lzn_model *model;
  lzn_context_params params;
  int max_batch; /* rows per step: min(n_ctx, LZN_MAX_BATCH) */
  lzn_exec exec;
  lzn_kv_cache kv;
  lzn_workspace ws;
  lzn_recorder stats;
  lzn_cost_model cost; /* measured when AUTO has no crossover */
  int sparse_form;     /* -1: a sparse batch's form by the cost model; else that lzn_sparse_form (tests) */
  int decider_whole;   /* -1: whether AUTO takes a batch's predicted rows from the whole decider by the
                          cost model; else 0 never, 1 always (tests) */
};

#endif /* LZN_FORWARD_CONTEXT_H */
