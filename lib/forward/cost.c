/*
 * cost.c: AUTO's choice between the sparse and the dense MLP, per layer and
 * call (forward/cost.h).
 *
 * Sparse costs ~ rows read x seconds per row: rows of W_down^T (axpy_rows)
 * and of W_up (gathered dot products: a gated MLP's up rows, or the rows a
 * predictor selects), a batch reading the union of its rows once, for all
 * its tokens (linalg/union.c); dense ~ the GEMV/GEMM time of the same
 * matrices for n tokens. Both measured at 1, 8 and max_batch tokens and
 * interpolated between (forward/cost.h): a one-token GEMV is memory-bound,
 * a 64-token GEMM compute-bound, and in between the batched kernels
 * change (the int8 tiles fill up, F32 moves to oneDNN at 9 tokens), so
 * neither one crossover density nor a straight line from 1 to 64 tokens
 * serves every N or prompt length.
 */
#include "forward/cost.h"

#include "core/clock.h"
#include "forward/context.h"
#include "linalg/linear.h"
#include "linalg/sparse_down.h"
#include "linalg/union.h"

/* A cost at n tokens from its measured points (beyond the last: along the
 * last two points' line). */
static double at_n(const lzn_cost_model *cm, const double *cost, int n) {
  int k = 1;
  while (k < cm->n_points - 1 && n > cm->tokens[k]) k++;
  if (cm->n_points == 1) return cost[0] * n;
  const double t0 = cm->tokens[k - 1], t1 = cm->tokens[k];
  return cost[k - 1] + (cost[k] - cost[k - 1]) * (n - t0) / (t1 - t0);
}

double lzn_cost_sparse_seconds(const lzn_cost_model *cm, const lzn_sparse_work *work, int n, lzn_sparse_form form) {
  if (cm->n_points == 0) return 0.0;
  /* Each token's own rows cost what one token's rows cost (the axpy_rows
   * and dot_rows kernels), summed over the tokens. */
  const int at = form == LZN_SPARSE_EACH ? 1 : n;
  return (double)work->down_rows * at_n(cm, cm->row_down, at) + (double)work->up_rows * at_n(cm, cm->row_up, at);
}

/* Without a model: a union row for n tokens costs max(1, n / 3) of one
 * token's row. */
#define UNION_GAIN_PER_TOKEN 3.0

lzn_sparse_form lzn_cost_sparse_form(const lzn_cost_model *cm, const lzn_sparse_work *uni,
                                     const lzn_sparse_work *each, int n) {
  if (n <= 1) return LZN_SPARSE_UNION;
  if (cm->n_points > 0)
    return lzn_cost_sparse_seconds(cm, each, n, LZN_SPARSE_EACH) < lzn_cost_sparse_seconds(cm, uni, n, LZN_SPARSE_UNION)
               ? LZN_SPARSE_EACH
               : LZN_SPARSE_UNION;
  const double union_row = n / UNION_GAIN_PER_TOKEN > 1.0 ? n / UNION_GAIN_PER_TOKEN : 1.0;
  return (double)(each->down_rows + each->up_rows) < union_row * (double)(uni->down_rows + uni->up_rows)
             ? LZN_SPARSE_EACH
             : LZN_SPARSE_UNION;
}

int lzn_cost_prefers_sparse(const lzn_cost_model *cm, float crossover, const lzn_sparse_work *work,
                            const lzn_sparse_work *each, int n, int d_ff, int gated) {
  if (crossover > 0.0f) return (double)work->down_rows < (double)crossover * d_ff * n;
  double dense = at_n(cm, cm->dense_down, n);
  if (work->up_rows > 0 || gated) dense += at_n(cm, cm->dense_up, n);
  double sparse = lzn_cost_sparse_seconds(cm, work, n, LZN_SPARSE_UNION);
  if (each) {
    const double e = lzn_cost_sparse_seconds(cm, each, n, LZN_SPARSE_EACH);
    sparse = e < sparse ? e : sparse;
  }
  return sparse < dense;
}

int lzn_cost_decider_whole(const lzn_cost_model *cm, size_t predicted_rows, int n) {
  if (cm->n_points == 0 || n <= 1) return 0;
  return at_n(cm, cm->dense_up, n) < (double)predicted_rows * at_n(cm, cm->row_up, 1);
}

/* Best of a few timed runs (after a warm-up: first touch, primitive
 * creation): the minimum is the run least disturbed by other processes. */
#define COST_REPS 3

/* The timed operations, each on all rows of layer 0 (sparse ones with every
 * row active: their time per row is what a call pays), at n tokens: one
 * token's sparse ones are axpy_rows and dot_rows, more tokens' the union's
 * products (linalg/union.c). */
typedef enum cost_op { OP_ROWS_DOWN, OP_ROWS_UP, OP_DENSE_DOWN, OP_DENSE_UP, OP_COUNT } cost_op;

static lzn_status run_op(lzn_context *ctx, cost_op op, int n) {
  const lzn_model *m = ctx->model;
  const lzn_layer *weights = &m->layers[0];
  const int f = m->d_ff;
  lzn_exec *ex = &ctx->exec;
  lzn_mlp_buffers *b = &ctx->ws.mlp;
  float *h = b->decider, *out = ctx->ws.stream.mlp_out, *x = ctx->ws.stream.normed;
  switch (op) {
  case OP_ROWS_DOWN:
    if (n > 1) return lzn_union_axpy(ex, out, n, &weights->down_t, b->active_idx, (size_t)f, b->coef);
    return lzn_sparse_down_exec(ex, out, &weights->down_t, b->active_idx, b->active_val, (size_t)f);
  case OP_ROWS_UP:
    if (n > 1) return lzn_union_dot(ex, h, n, &weights->up, b->active_idx, (size_t)f, x);
    return lzn_linear_rows(ex, b->top_k_scratch, x, &weights->up, b->active_idx, (size_t)f);
  case OP_DENSE_DOWN: return lzn_linear_down(ex, out, h, &weights->down, &weights->down_t, NULL, n);
  case OP_DENSE_UP: return lzn_linear(ex, h, x, &weights->up, NULL, n);
  case OP_COUNT: break;
  }
  return LZN_OK;
}

lzn_status lzn_cost_measure(lzn_context *ctx, lzn_cost_model *out) {
  const lzn_model *m = ctx->model;
  const int f = m->d_ff, d = m->d_model, batch = ctx->max_batch;
  lzn_mlp_buffers *b = &ctx->ws.mlp;
  for (size_t i = 0; i < (size_t)batch * f; i++) b->decider[i] = 1.0f, b->coef[i] = 1.0f;
  for (size_t i = 0; i < (size_t)batch * d; i++) ctx->ws.stream.normed[i] = 1.0f;
  for (int i = 0; i < f; i++) b->active_idx[i] = i, b->active_val[i] = 1.0f;
  static const int wanted[LZN_COST_POINTS] = {1, 8, LZN_COST_TOP_TOKENS};
  *out = (lzn_cost_model){.max_batch = batch};
  for (int k = 0; k < LZN_COST_POINTS; k++) {
    const int n = wanted[k] < batch ? wanted[k] : batch;
    if (out->n_points == 0 || n > out->tokens[out->n_points - 1]) out->tokens[out->n_points++] = n;
  }
  for (int k = 0; k < out->n_points; k++) {
    const int n = out->tokens[k];
    double best[OP_COUNT];
    for (int op = 0; op < OP_COUNT; op++) best[op] = 1e30;
    for (int rep = 0; rep <= COST_REPS; rep++)
      for (int op = 0; op < OP_COUNT; op++) {
        const double t0 = lzn_now_seconds();
        const lzn_status s = run_op(ctx, (cost_op)op, n);
        if (s != LZN_OK) return s;
        const double t = lzn_now_seconds() - t0;
        if (rep > 0 && t < best[op]) best[op] = t;
      }
    out->row_down[k] = best[OP_ROWS_DOWN] / f;
    out->row_up[k] = best[OP_ROWS_UP] / f;
    out->dense_down[k] = best[OP_DENSE_DOWN];
    out->dense_up[k] = best[OP_DENSE_UP];
  }
  return LZN_OK;
}

enum { ENTRY_FREE = 0, ENTRY_WRITING = 1, ENTRY_READY = 2 };

lzn_status lzn_cost_for_context(lzn_context *ctx, lzn_cost_entry cache[LZN_COST_CACHE], lzn_cost_model *out) {
  const int threads = ctx->exec.n_threads, batch = ctx->max_batch;
  for (int i = 0; i < LZN_COST_CACHE; i++) {
    const lzn_cost_entry *e = &cache[i];
    if (atomic_load_explicit(&e->state, memory_order_acquire) == ENTRY_READY && e->n_threads == threads &&
        e->max_batch == batch) {
      *out = e->cost;
      return LZN_OK;
    }
  }
  /* Two contexts created at once may both measure and both keep theirs:
   * harmless, each entry is whole before it is ready. */
  const lzn_status s = lzn_cost_measure(ctx, out);
  for (int i = 0; s == LZN_OK && i < LZN_COST_CACHE; i++) {
    lzn_cost_entry *e = &cache[i];
    int expected = ENTRY_FREE;
    if (atomic_compare_exchange_strong_explicit(&e->state, &expected, ENTRY_WRITING, memory_order_acquire,
                                                memory_order_relaxed)) {
      e->n_threads = threads, e->max_batch = batch, e->cost = *out;
      atomic_store_explicit(&e->state, ENTRY_READY, memory_order_release);
      break;
    }
  }
  return s;
}
