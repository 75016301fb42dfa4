/*
 * predictor.c: the activation predictor at run time (forward/predictor.h).
 */
#include "forward/predictor.h"

#include <math.h>
#include <string.h>

#include "linalg/linear.h"

void lzn_predictor_buffers_carve(lzn_predictor_buffers *b, lzn_carver *c, const lzn_model *m, int max_batch) {
  /* The hidden layer is as wide as the widest rank of any layer: the rule
   * its second product reads by (w2.cols == w1.rows, model/predictor_load.c). */
  int64_t rank = 1;
  for (int l = 0; l < m->n_layers; l++)
    if (m->layers[l].predictor.present && m->layers[l].predictor.w1.rows > rank)
      rank = m->layers[l].predictor.w1.rows;
  const size_t f = (size_t)m->d_ff, rows = m->n_predicted_layers > 0 ? (size_t)max_batch : 1;
  b->hidden = LZN_CARVE(c, rows * (size_t)rank, float);
  b->score = LZN_CARVE(c, rows * f, float);
  b->idx = LZN_CARVE(c, rows * f, int32_t);
  b->count = LZN_CARVE(c, (size_t)max_batch, size_t);
  b->dense = LZN_CARVE(c, m->n_predicted_layers > 0 ? f : 1, float);
}

lzn_status lzn_predict(const lzn_prediction *p, const float *x, const float *x_resid, int n, size_t *total) {
  const lzn_model *m = p->model;
  const lzn_predictor *pr = &m->layers[p->layer].predictor;
  lzn_predictor_buffers *b = p->buf;
  const int d = m->d_model, f = m->d_ff;
  *total = 0;
  /* Both products for all n tokens at once: one pass over w1 and w2 for
   * the batch, not one per token. */
  const int64_t rank = pr->w1.rows;
  lzn_status s = lzn_linear(p->exec, b->hidden, pr->input_before_norm ? x_resid : x, &pr->w1, pr->b1, n);
  if (s != LZN_OK) return s;
  if (pr->relu)
    for (int64_t i = 0; i < rank * n; i++) b->hidden[i] = fmaxf(b->hidden[i], 0.0f);
  s = lzn_linear(p->exec, b->score, b->hidden, &pr->w2, pr->b2, n);
  if (s != LZN_OK) return s;
  /* score >= threshold is score > the float just below it (NaN never: the
   * loader refused it), which the SIMD relu_compact finds 16 at a time (the
   * scalar loop was a fifth of lzn_predict in a batch of a small model).
   * Its values go to b->dense, free until lzn_predictor_recall. */
  const float below = nextafterf(p->threshold, -INFINITY);
  for (int k = 0; k < n; k++) {
    const float *score = b->score + (size_t)k * f;
    int32_t *idx = b->idx + (size_t)k * f;
    size_t count = 0;
    if (p->threshold > -INFINITY) {
      count = p->exec->kernels->relu_compact.fn(score, (size_t)f, below, idx, b->dense);
    } else { /* everything passes, -inf too */
      for (int i = 0; i < f; i++) idx[i] = i;
      count = (size_t)f;
    }
    b->count[k] = count;
    *total += count;
    lzn_record_prediction(p->rec, p->layer, count,
                          2.0 * ((double)rank * d + (double)f * (double)rank),
                          (double)rank * (double)pr->w1.row_bytes + (double)f * (double)pr->w2.row_bytes);
  }
  return LZN_OK;
}

lzn_status lzn_predicted_rows(const lzn_prediction *p, const lzn_matrix *w, const float *bias, const float *x,
                              int token, float *row) {
  const int f = p->model->d_ff;
  const int32_t *idx = p->buf->idx + (size_t)token * f;
  const size_t n = p->buf->count[token];
  float *values = p->buf->score; /* free again: the scores became idx */
  const lzn_status s = lzn_linear_rows(p->exec, values, x, w, idx, n);
  if (s != LZN_OK) return s;
  memset(row, 0, sizeof(float) * (size_t)f);
  for (size_t k = 0; k < n; k++) row[idx[k]] = values[k] + (bias ? bias[idx[k]] : 0.0f);
  return LZN_OK;
}

void lzn_predictor_mask(const lzn_prediction *p, float *rows, int n) {
  const int f = p->model->d_ff;
  float *kept = p->buf->score; /* free again: the scores became idx */
  for (int t = 0; t < n; t++) {
    float *row = rows + (size_t)t * f;
    const int32_t *idx = p->buf->idx + (size_t)t * f;
    const size_t count = p->buf->count[t];
    for (size_t k = 0; k < count; k++) kept[k] = row[idx[k]];
    memset(row, 0, sizeof(float) * (size_t)f);
    for (size_t k = 0; k < count; k++) row[idx[k]] = kept[k];
  }
}

void lzn_predictor_count(const lzn_prediction *p, const float *row, float threshold) {
  if (!p->rec->on) return;
  const int f = p->model->d_ff;
  size_t active = 0;
#pragma omp simd reduction(+ : active)
  for (int i = 0; i < f; i++) active += row[i] > threshold;
  lzn_record_predicted_active(p->rec, p->layer, active);
}

void lzn_predictor_recall_of(const lzn_prediction *p, const float *dense, int token, float threshold) {
  const int f = p->model->d_ff;
  const int32_t *idx = p->buf->idx + (size_t)token * f;
  const size_t n = p->buf->count[token];
  size_t truly = 0, hits = 0;
#pragma omp simd reduction(+ : truly)
  for (int i = 0; i < f; i++) truly += dense[i] > threshold;
  for (size_t k = 0; k < n; k++) hits += dense[idx[k]] > threshold;
  lzn_record_recall(p->rec, p->layer, truly, hits);
}

lzn_status lzn_predictor_recall(const lzn_prediction *p, const lzn_matrix *w, const float *bias, const float *x,
                                int token, float threshold) {
  float *dense = p->buf->dense;
  const lzn_status s = lzn_linear(p->exec, dense, x, w, bias, 1);
  if (s == LZN_OK) lzn_predictor_recall_of(p, dense, token, threshold);
  return s;
}
