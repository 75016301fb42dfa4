/*
 * predictor_load.c: a model's activation predictor (lazyneuron.h,
 * "predictor"), from a predictor.safetensors sidecar or from the fc1 / fc2
 * tensors of a PowerInfer GGUF file.
 *
 * Every shape is checked against the model and every value for NaN/Inf
 * (a NaN score would silently drop or keep neurons): FORMAT naming the
 * tensor and layer. A layer without tensors runs without a predictor.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/wtype.h"
#include "cpu/cpu.h"
#include "model/model.h"

/* The sidecar's tensor, checked to be F32 {d0} or {d0, d1} (d0 < 0: any). */
static lzn_status sidecar_tensor(const lzn_st_file *f, const char *name, int required, int64_t d0,
                                 int64_t d1, const lzn_file_tensor **out) {
  *out = NULL;
  for (size_t i = 0; i < f->n_tensors; i++)
    if (strcmp(f->tensors[i].name, name) == 0) *out = &f->tensors[i];
  const lzn_file_tensor *t = *out;
  if (t == NULL)
    return required ? lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\" is missing", f->path, name) : LZN_OK;
  const int dims = d1 ? 2 : 1;
  if (t->dtype != LZN_WEIGHTS_F32 || t->n_dims != dims || (d0 >= 0 && t->shape[0] != d0) ||
      (d1 > 0 && t->shape[1] != d1)) {
    char have[64];
    lzn_shape_string(have, sizeof have, t->shape, t->n_dims);
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\" is %s %s; the model needs F32 [%s%lld%s%lld]",
                    f->path, name, lzn_wtype_name(t->dtype), have, d0 < 0 ? "r" : "",
                    (long long)(d0 < 0 ? 0 : d0), d1 ? ", " : "", (long long)d1);
  }
  if ((uintptr_t)t->data % sizeof(float) != 0)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\" is not aligned for F32", f->path, name);
  const float *v = t->data;
  for (int64_t i = 0; i < t->n_elements; i++)
    if (!isfinite(v[i]))
      return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\" holds %g at element %lld", f->path, name,
                      (double)v[i], (long long)i);
  return LZN_OK;
}

/* The predictor's tensors as matrices, rows and columns from the tensors'
 * own shapes, checked against each other and the model by one rule: w1 is
 * [r][d_model], w2 is [d_ff][r]. Everything downstream sizes by it: the
 * hidden buffer holds w1.rows floats and the second product reads w2.cols of
 * them (a w2 read with d_ff columns once ran past a rank-16 buffer). */
static lzn_status bind_predictor(const lzn_model *m, int layer, const lzn_file_tensor *w1,
                                 const lzn_file_tensor *w2, lzn_predictor *p) {
  if (w1->n_dims != 2 || w2->n_dims != 2 || w1->shape[1] != m->d_model || w2->shape[0] != m->d_ff ||
      w2->shape[1] != w1->shape[0] || w1->shape[0] < 1) {
    char s1[64], s2[64];
    lzn_shape_string(s1, sizeof s1, w1->shape, w1->n_dims);
    lzn_shape_string(s2, sizeof s2, w2->shape, w2->n_dims);
    return lzn_fail(LZN_ERR_FORMAT, "%s: layer %d's predictor \"%s\" %s / \"%s\" %s does not fit: "
                    "they must be [r][d_model = %d] and [d_ff = %d][r], r >= 1", w1->file, layer,
                    w1->name, s1, w2->name, s2, m->d_model, m->d_ff);
  }
  p->w1 = lzn_matrix_make(w1->dtype, w1->data, w1->shape[0], w1->shape[1]);
  p->w2 = lzn_matrix_make(w2->dtype, w2->data, w2->shape[0], w2->shape[1]);
  return LZN_OK;
}

/* A NaN or Inf weight would make scores NaN, and a NaN score silently
 * drops its neuron: refused, naming the tensor, for every weight type
 * (rows widened with the type's to_f32 kernel). */
static lzn_status check_finite_rows(const lzn_matrix *w, const lzn_file_tensor *t) {
  const lzn_kernel_table *k;
  lzn_status s = lzn_kernels_get(&k);
  if (s != LZN_OK) return s;
  float *row = malloc((size_t)w->cols * sizeof(float));
  if (row == NULL) return lzn_fail(LZN_ERR_NOMEM, "out of memory checking tensor \"%s\"", t->name);
  for (int64_t r = 0; s == LZN_OK && r < w->rows; r++) {
    k->type[w->type].to_f32.fn(row, lzn_matrix_row(w, r), (size_t)w->cols);
    for (int64_t j = 0; j < w->cols; j++)
      if (!isfinite(row[j])) {
        s = lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\" holds %g at row %lld, column %lld", t->file,
                     t->name, (double)row[j], (long long)r, (long long)j);
        break;
      }
  }
  free(row);
  return s;
}

static const char *metadata(const lzn_st_file *f, const char *key) {
  for (size_t i = 0; i < f->n_metadata; i++)
    if (strcmp(f->metadata[i].key, key) == 0) return f->metadata[i].value;
  return NULL;
}

static lzn_status load_sidecar(lzn_model *m, const char *path, int use_mmap) {
  lzn_st_file *f = &m->predictor_file;
  lzn_status s = lzn_st_open(path, use_mmap, f);
  if (s != LZN_OK) return s;
  const char *act = metadata(f, "lazyneuron.predictor.activation");
  const char *thr = metadata(f, "lazyneuron.predictor.threshold");
  int relu = 1;
  if (act && strcmp(act, "none") == 0) relu = 0;
  else if (act && strcmp(act, "relu") != 0)
    return lzn_fail(LZN_ERR_FORMAT, "%s: lazyneuron.predictor.activation \"%s\" is not relu or none",
                    path, act);
  char *end = NULL;
  const float threshold = thr ? strtof(thr, &end) : 0.0f;
  if (thr && (end == thr || *end != '\0' || !isfinite(threshold)))
    return lzn_fail(LZN_ERR_FORMAT, "%s: lazyneuron.predictor.threshold \"%s\" is not a finite number",
                    path, thr);
  for (int l = 0; l < m->n_layers; l++) {
    char name[96];
    const lzn_file_tensor *w1, *w2, *b1, *b2, *t;
    snprintf(name, sizeof name, "layers.%d.predictor.w1", l);
    s = sidecar_tensor(f, name, 0, -1, m->d_model, &w1);
    if (s != LZN_OK) return s;
    snprintf(name, sizeof name, "layers.%d.predictor.w2", l);
    if (w1 == NULL) { /* no predictor for this layer: then no w2 either */
      s = sidecar_tensor(f, name, 0, -1, -1, &w2);
      if (s == LZN_OK && w2 != NULL)
        s = lzn_fail(LZN_ERR_FORMAT, "%s: layer %d has \"%s\" but no w1", path, l, name);
      if (s != LZN_OK) return s;
      continue;
    }
    const int64_t r = w1->shape[0];
    s = sidecar_tensor(f, name, 1, m->d_ff, r, &w2);
    snprintf(name, sizeof name, "layers.%d.predictor.b1", l);
    if (s == LZN_OK) s = sidecar_tensor(f, name, 0, r, 0, &b1);
    snprintf(name, sizeof name, "layers.%d.predictor.b2", l);
    if (s == LZN_OK) s = sidecar_tensor(f, name, 0, m->d_ff, 0, &b2);
    snprintf(name, sizeof name, "layers.%d.predictor.threshold", l);
    if (s == LZN_OK) s = sidecar_tensor(f, name, 0, 1, 0, &t);
    if (s != LZN_OK) return s;
    lzn_predictor *p = &m->layers[l].predictor;
    s = bind_predictor(m, l, w1, w2, p);
    if (s != LZN_OK) return s;
    p->present = 1, p->relu = relu, p->input_before_norm = 0;
    p->b1 = b1 ? b1->data : NULL, p->b2 = b2 ? b2->data : NULL;
    p->threshold = t ? *(const float *)t->data : threshold;
    m->n_predicted_layers++;
  }
  return LZN_OK;
}

/* PowerInfer's GGUF predictor: blk.N.fc1.weight [r][d_model], fc2.weight
 * [d_ff][r] (r may differ per layer), ReLU between, reading the residual
 * before the FFN norm, a neuron running where the score >=
 * powerinfer.sparse_threshold. PowerInfer gives every layer one, so a file
 * where some layers have one and others not is broken. */
static lzn_status load_powerinfer(lzn_model *m) {
  float threshold = 0.0f;
  if (lzn_gguf_find(&m->gguf, "powerinfer.sparse_threshold") != NULL) {
    lzn_status s = lzn_gguf_get_f32(&m->gguf, "powerinfer.sparse_threshold", &threshold);
    if (s != LZN_OK) return s;
    if (!isfinite(threshold))
      return lzn_fail(LZN_ERR_FORMAT, "%s: powerinfer.sparse_threshold is %g, must be finite",
                      m->gguf.path, (double)threshold);
  }
  int first_with = -1, first_without = -1;
  for (int l = 0; l < m->n_layers; l++) {
    char n1[64], n2[64];
    snprintf(n1, sizeof n1, "blk.%d.fc1.weight", l);
    snprintf(n2, sizeof n2, "blk.%d.fc2.weight", l);
    const lzn_file_tensor *fc1 = lzn_gguf_find_tensor(&m->gguf, n1), *fc2 = lzn_gguf_find_tensor(&m->gguf, n2);
    if (fc1 == NULL && fc2 == NULL) {
      if (first_without < 0) first_without = l;
      continue;
    }
    if (first_with < 0) first_with = l;
    if (fc1 == NULL || fc2 == NULL)
      return lzn_fail(LZN_ERR_FORMAT, "%s: layer %d has \"%s\" but not \"%s\"", m->gguf.path, l,
                      fc1 ? n1 : n2, fc1 ? n2 : n1);
    lzn_predictor *p = &m->layers[l].predictor;
    lzn_status s = bind_predictor(m, l, fc1, fc2, p);
    if (s == LZN_OK) s = check_finite_rows(&p->w1, fc1);
    if (s == LZN_OK) s = check_finite_rows(&p->w2, fc2);
    if (s != LZN_OK) return s;
    p->present = 1, p->relu = 1, p->input_before_norm = 1, p->threshold = threshold;
    m->n_predicted_layers++;
  }
  if (first_with >= 0 && first_without >= 0)
    return lzn_fail(LZN_ERR_FORMAT, "%s: layer %d has no predictor (blk.%d.fc1.weight / fc2.weight) "
                    "but layer %d has one: a PowerInfer file has one per layer", m->gguf.path,
                    first_without, first_without, first_with);
  return LZN_OK;
}

/* Layer `layer`'s predictor matrix w (named `name` in messages) in `type`
 * (lzn_model_params.predictor_type), its rows widened by its own type's
 * to_f32 and rounded by the new type's from_f32 into memory the model owns;
 * as it is when the type is its own. A value the type cannot hold (F16
 * beyond 65504, say) is FORMAT naming it, as weight_type's conversions are:
 * rounded to Inf it would score its neurons NaN, which drops them silently. */
static lzn_status convert_matrix(lzn_model *m, const lzn_kernel_table *k, const char *file, int layer,
                                 const char *name, lzn_matrix *w, lzn_weight_type type) {
  if (w->type == type) return LZN_OK;
  const size_t cols = (size_t)w->cols, row_bytes = lzn_wtype_row_bytes(type, cols);
  void *dst;
  lzn_status s = lzn_model_own(m, row_bytes * (size_t)w->rows, &dst);
  if (s != LZN_OK) return s;
  float *row = malloc(cols * sizeof(float));
  if (row == NULL) return lzn_fail(LZN_ERR_NOMEM, "lzn_model_load: out of memory converting the predictor");
  for (int64_t r = 0; s == LZN_OK && r < w->rows; r++) {
    k->type[w->type].to_f32.fn(row, lzn_matrix_row(w, r), cols);
    const size_t bad = lzn_wtype_first_unfit(type, row, cols);
    if (bad < cols)
      s = lzn_fail(LZN_ERR_FORMAT, "%s: layer %d's predictor %s row %lld holds %g at column %zu, which %s "
                   "cannot hold (lzn_model_params.predictor_type)", file, layer, name, (long long)r,
                   (double)row[bad], bad, lzn_wtype_name(type));
    else k->type[type].from_f32.fn((char *)dst + (size_t)r * row_bytes, row, cols);
  }
  free(row);
  if (s == LZN_OK) *w = lzn_matrix_make(type, dst, w->rows, w->cols);
  return s;
}

/* Every layer's predictor in `type`, unless AS_STORED. */
static lzn_status convert_predictors(lzn_model *m, lzn_weight_type type) {
  if (type == LZN_WEIGHTS_AS_STORED || m->n_predicted_layers == 0) return LZN_OK;
  const char *file = m->from_gguf && m->predictor_file.path == NULL ? m->gguf.path : m->predictor_file.path;
  const lzn_kernel_table *k;
  lzn_status s = lzn_kernels_get(&k);
  for (int l = 0; s == LZN_OK && l < m->n_layers; l++) {
    lzn_predictor *p = &m->layers[l].predictor;
    if (!p->present) continue;
    s = convert_matrix(m, k, file, l, "w1", &p->w1, type);
    if (s == LZN_OK) s = convert_matrix(m, k, file, l, "w2", &p->w2, type);
  }
  return s;
}

static lzn_status load_any(lzn_model *m, const lzn_model_params *params, const char *model_dir) {
  const char *path = params->predictor_path;
  if (path != NULL && path[0] == '\0') return LZN_OK; /* "" : none */
  if (path == NULL && m->from_gguf) return load_powerinfer(m);
  char sidecar[4096];
  if (path == NULL) {
    if (model_dir == NULL) return LZN_OK;
    snprintf(sidecar, sizeof sidecar, "%s/predictor.safetensors", model_dir);
    struct stat st;
    if (stat(sidecar, &st) != 0) return LZN_OK; /* the model has none */
    path = sidecar;
  }
  return load_sidecar(m, path, params->use_mmap);
}

lzn_status lzn_predictor_load(lzn_model *m, const lzn_model_params *params, const char *model_dir) {
  const lzn_status s = load_any(m, params, model_dir);
  return s == LZN_OK ? convert_predictors(m, params->predictor_type) : s;
}
