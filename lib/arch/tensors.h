/*
 * tensors.h: named tensors of a file -> the model's matrices and vectors,
 * shape-checked against the config, in the weight type the caller asked
 * for. Shared by the architectures. Private.
 *
 * Names are looked up as prefix + name. A matrix is used in place when the
 * file already holds it in the wanted type, suitably aligned; else it is
 * converted row by row into a buffer the model owns (quantized rows are
 * checked for NaN/Inf first). Vectors (norms, biases) and tables read by
 * rows (learned positions) are always fp32.
 */
#ifndef LZN_ARCH_TENSORS_H
#define LZN_ARCH_TENSORS_H

#include "kernels/kernels.h"
#include "model/model.h"

typedef struct lzn_binder {
  lzn_model *model;
  const char *prefix;              /* e.g. "model.decoder." */
  lzn_load_progress progress;
  const lzn_kernel_table *kernels; /* from_f32 / to_f32 for conversions */
  lzn_weight_type want;            /* the params' weight_type */
  lzn_weight_type down_t_want;     /* the params' down_t_type (lzn_bind_transposed) */
  int n_threads;                   /* the params' n_threads: OpenMP threads for conversions */
} lzn_binder;

/* Row r of a file's matrix (cols values) as fp32, as the loader reads it
 * before converting it: element by element for the element types, through
 * linalg/row_f32.h for a block type (GGUF); lzn_model_quantize reads the
 * same, so that its output holds the bytes a load would make. */
void lzn_tensor_row_f32(const lzn_kernel_table *kernels, const lzn_file_tensor *t, int64_t r, size_t cols,
                        float *out);

/* The tensor prefix + name, checked to be {d0} (d1 == 0) or {d0, d1}.
 * Absent: *out = NULL, an error only if required (FORMAT). */
lzn_status lzn_bind_find(lzn_binder *b, const char *name, int required, int64_t d0, int64_t d1,
                         const lzn_file_tensor **out);

/* fp32 values of shape {d0} (d1 == 0: a norm, a bias) or {d0, d1} (a
 * table read by rows, like learned positions): in place when the file holds
 * aligned F32, else converted. Absent and not required: *out = NULL. */
lzn_status lzn_bind_f32(lzn_binder *b, const char *name, int required, int64_t d0, int64_t d1,
                        const float **out);

/* A matrix [rows][cols] in the wanted type. Absent and not required:
 * out->data = NULL. */
lzn_status lzn_bind_matrix(lzn_binder *b, const char *name, int required, int64_t rows,
                           int64_t cols, lzn_matrix *out);

/* lzn_bind_matrix for q_proj / k_proj stored in llama.cpp's rotary layout
 * (each head's rows interleaved for ggml's pairwise rope): rows reordered
 * back to Hugging Face's rotate-half order, per head of head_dim rows. */
lzn_status lzn_bind_matrix_rope_permuted(lzn_binder *b, const char *name, int64_t rows,
                                         int64_t cols, int64_t head_dim, lzn_matrix *out);

/* The file row that holds Hugging Face's row r of q_proj / k_proj stored in
 * llama.cpp's rotary layout (heads of head_dim rows). */
int64_t lzn_rope_unpermuted_row(int64_t r, int64_t head_dim);

/* The file's matrix [rows][cols] transposed to [cols][rows] (W_down ->
 * down_t), in the type lzn_transposed_type chooses; and, in *as_stored,
 * the matrix as stored where that costs nothing (in place in the file,
 * already in the wanted type), else data NULL. */
lzn_status lzn_bind_transposed(lzn_binder *b, const char *name, int64_t rows, int64_t cols,
                               lzn_matrix *out, lzn_matrix *as_stored);

/* The type W_down^T is made in from a file's W_down stored as `stored`,
 * every other matrix being kept in `target` (lazyneuron.h,
 * lzn_model_params.down_t_type): target for an element type (transposing
 * it is exact; a conversion weight_type asked for is the caller's);
 * for a block type, down_t_want (the default Q8_0 keeps the second
 * rounding near llama.cpp's own activation rounding: README, "Quality of
 * the transposed W_down"), the file's own type for AS_STORED. */
lzn_weight_type lzn_transposed_type(lzn_weight_type down_t_want, lzn_weight_type stored, lzn_weight_type target);

/* Binds m->n_layers layers with bind_layer(b, config, i, layer), growing
 * m->layers as they load. */
typedef lzn_status (*lzn_bind_layer_fn)(lzn_binder *b, const void *config, int i, lzn_layer *layer);
lzn_status lzn_bind_layers(lzn_binder *b, const void *config, lzn_bind_layer_fn bind_layer);

#endif /* LZN_ARCH_TENSORS_H */
