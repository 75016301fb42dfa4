/*
 * stats.c: the statistics recorder (model/stats.h) and the public
 * lzn_layer_stats / lzn_predictor_stats made from it.
 */
#include "model/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

lzn_status lzn_recorder_create(lzn_recorder *r, const lzn_model *m, int on) {
  memset(r, 0, sizeof *r);
  r->on = on, r->n_layers = m->n_layers, r->d_ff = m->d_ff;
  r->layers = calloc((size_t)m->n_layers, sizeof *r->layers);
  r->predictor = calloc((size_t)m->n_layers, sizeof *r->predictor);
  r->fired = calloc((size_t)m->n_layers * (size_t)m->d_ff, 1);
  if (r->layers == NULL || r->predictor == NULL || r->fired == NULL) {
    lzn_recorder_free(r);
    return lzn_fail(LZN_ERR_NOMEM, "lzn_context_create: out of memory for the statistics of %d layers",
                    m->n_layers);
  }
  return LZN_OK;
}

void lzn_recorder_free(lzn_recorder *r) {
  free(r->layers), free(r->predictor), free(r->fired);
  memset(r, 0, sizeof *r);
}

void lzn_recorder_reset(lzn_recorder *r) {
  memset(r->layers, 0, sizeof *r->layers * (size_t)r->n_layers);
  memset(r->predictor, 0, sizeof *r->predictor * (size_t)r->n_layers);
  memset(r->fired, 0, (size_t)r->n_layers * (size_t)r->d_ff);
}

void lzn_record_mlp(lzn_recorder *r, const lzn_model *m, int layer, const lzn_mlp_record *rec) {
  if (!r->on) return;
  lzn_layer_counters *c = &r->layers[layer];
  const lzn_layer *weights = &m->layers[layer];
  c->tokens += rec->n_tokens;
  c->active_sum += (int64_t)rec->active;
  c->union_sum += (int64_t)rec->rows;
  c->flops_executed += 2.0 * m->d_model * (double)(rec->up_products + rec->down_products);
  c->bytes_executed += (double)weights->up.row_bytes * (double)rec->up_rows +
                       (double)weights->down_t.row_bytes * (double)rec->down_rows;
  if (rec->sparse) c->sparse_calls++;
  else c->dense_calls++;
  c->seconds_up += rec->seconds_decide;
  c->seconds_down += rec->seconds_rest;
}

void lzn_record_attention(lzn_recorder *r, int layer, double seconds, double core_seconds,
                          double kv_bytes) {
  if (!r->on) return;
  lzn_layer_counters *c = &r->layers[layer];
  c->seconds_attention += seconds;
  c->seconds_attention_core += core_seconds;
  c->kv_bytes_read += kv_bytes;
}

void lzn_record_prediction(lzn_recorder *r, int layer, size_t predicted, double flops, double bytes) {
  if (!r->on) return;
  lzn_predictor_counters *c = &r->predictor[layer];
  c->tokens++;
  c->predicted_sum += (int64_t)predicted;
  c->flops += flops, c->bytes += bytes;
}

void lzn_record_predicted_active(lzn_recorder *r, int layer, size_t active) {
  if (r->on) r->predictor[layer].active_sum += (int64_t)active;
}

void lzn_record_recall(lzn_recorder *r, int layer, size_t truly, size_t hits) {
  if (!r->on) return;
  lzn_predictor_counters *c = &r->predictor[layer];
  c->recall_true += (int64_t)truly, c->recall_hits += (int64_t)hits, c->recall_tokens++;
}

void lzn_recorder_layer_stats(const lzn_recorder *r, const lzn_model *m, lzn_layer_stats *out, int capacity) {
  /* The matrices the active set applies to: W_down, and for a gated MLP
   * W_up too (the gate, like OPT's fc1, always runs dense: it decides). */
  const int gated = m->arch.mlp == LZN_MLP_KIND_GATED;
  const double per_token_flops = 2.0 * m->d_model * m->d_ff * (gated ? 2 : 1);
  for (int l = 0; l < m->n_layers && l < capacity; l++) {
    const lzn_layer_counters *c = &r->layers[l];
    const uint8_t *fired = lzn_recorder_fired(r, l);
    lzn_layer_stats *s = &out[l];
    memset(s, 0, sizeof *s);
    s->struct_size = sizeof *s;
    s->tokens = c->tokens;
    s->active_fraction = c->tokens ? (double)c->active_sum / ((double)c->tokens * m->d_ff) : 0.0;
    for (int i = 0; i < m->d_ff; i++) s->never_fired += !fired[i];
    s->flops_dense = per_token_flops * (double)c->tokens;
    const double row_bytes = (double)m->layers[l].down_t.row_bytes + (gated ? (double)m->layers[l].up.row_bytes : 0.0);
    s->bytes_dense = (double)(c->sparse_calls + c->dense_calls) * row_bytes * m->d_ff;
    s->flops_executed = c->flops_executed;
    s->bytes_executed = c->bytes_executed;
    s->seconds_attention = c->seconds_attention;
    s->seconds_up = c->seconds_up;
    s->seconds_down = c->seconds_down;
    s->sparse_calls = c->sparse_calls;
    s->dense_calls = c->dense_calls;
    const int64_t calls = c->sparse_calls + c->dense_calls;
    s->union_fraction = calls ? (double)c->union_sum / ((double)calls * m->d_ff) : 0.0;
    s->bytes_per_token_sparse = (double)c->active_sum * row_bytes;
  }
}

void lzn_recorder_predictor_stats(const lzn_recorder *r, const lzn_model *m, lzn_predictor_stats *out,
                                  int capacity) {
  for (int l = 0; l < m->n_layers && l < capacity; l++) {
    const lzn_predictor_counters *c = &r->predictor[l];
    lzn_predictor_stats *s = &out[l];
    memset(s, 0, sizeof *s);
    s->struct_size = sizeof *s;
    const double per_token = c->tokens ? 1.0 / ((double)c->tokens * m->d_ff) : 0.0;
    s->tokens = c->tokens;
    s->predicted_fraction = (double)c->predicted_sum * per_token;
    s->active_fraction = (double)c->active_sum * per_token;
    s->recall = c->recall_tokens ? (c->recall_true ? (double)c->recall_hits / (double)c->recall_true : 1.0) : NAN;
    s->precision = c->recall_tokens && c->predicted_sum ? (double)c->recall_hits / (double)c->predicted_sum : NAN;
    s->flops = c->flops, s->bytes = c->bytes;
  }
}
