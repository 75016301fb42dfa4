/*
 * tensors.c: binding a file's named tensors to the model (tensors.h).
 */
#include "arch/tensors.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linalg/row_f32.h"

/* Output rows per tile of a transposition (a whole step of the Q8_0 and
 * Q4_0 to_f32 kernels, 4 blocks), and stored rows taken together. */
#define LZN_TRANSPOSE_ROWS 128
#define TRANSPOSE_RUNS 16
/* Output columns converted at a time: a multiple of every block size. */
#define TRANSPOSE_SEGMENT 256
_Static_assert(TRANSPOSE_SEGMENT % LZN_WTYPE_MAX_BLOCK == 0, "a segment is whole blocks of every type");

/* The binder's OpenMP threads (params->n_threads, checked >= 1 at load;
 * 1 for a binder that did not set it). */
static int binder_threads(const lzn_binder *b) { return b->n_threads < 1 ? 1 : b->n_threads; }

/* Items [0, n) of a conversion on the binder's threads: fn(arg, item,
 * thread) for each. Returns OK, or the status of the lowest item that
 * failed with its message: what one thread taking them in order would
 * have stopped on (the later items' work is wasted, on a broken file). */
typedef lzn_status (*item_fn)(void *arg, long item, int thread);

static lzn_status parallel_items(const lzn_binder *b, long n, item_fn fn, void *arg) {
  long failed = n;
  lzn_status status = LZN_OK;
  char message[512] = "";
#pragma omp parallel for num_threads(binder_threads(b)) schedule(dynamic)
  for (long i = 0; i < n; i++) {
    const lzn_status s = fn(arg, i, omp_get_thread_num());
    if (s != LZN_OK) {
#pragma omp critical(lzn_bind_failure)
      if (i < failed) {
        failed = i, status = s;
        snprintf(message, sizeof message, "%s", lzn_last_error());
      }
    }
  }
  return failed < n ? lzn_fail(status, "%s", message) : LZN_OK;
}

lzn_status lzn_bind_find(lzn_binder *b, const char *name, int required, int64_t d0, int64_t d1,
                         const lzn_file_tensor **out) {
  char full[256];
  snprintf(full, sizeof full, "%s%s", b->prefix, name);
  *out = lzn_model_find_tensor(b->model, full);
  if (*out == NULL) {
    if (!required) return LZN_OK;
    return lzn_fail(LZN_ERR_FORMAT, "tensor \"%s\" is missing from the model's %s", full,
                    b->model->from_gguf ? "GGUF file" : "safetensors");
  }
  const lzn_file_tensor *t = *out;
  const int64_t want[2] = {d0, d1};
  const int want_dims = d1 ? 2 : 1;
  if (t->n_dims != want_dims || t->shape[0] != d0 || (d1 && t->shape[1] != d1)) {
    char have[128], expect[64];
    lzn_shape_string(have, sizeof have, t->shape, t->n_dims);
    lzn_shape_string(expect, sizeof expect, want, want_dims);
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\" has shape %s but the config implies %s",
                    t->file, full, have, expect);
  }
  return LZN_OK;
}

/* The type a matrix stored as `stored` is kept in. */
static lzn_weight_type target_type(const lzn_binder *b, lzn_weight_type stored) {
  return lzn_wtype_valid(b->want) ? b->want : stored;
}

/* Whether the file's bytes can be used as a matrix of this type in place:
 * the same type, and aligned for its loads (4 bytes for F32, 2 for the
 * others: fp16 halves and block scales). */
static int usable_in_place(const lzn_file_tensor *t, lzn_weight_type type) {
  const size_t align = type == LZN_WEIGHTS_F32 ? 4 : 2;
  return t->dtype == type && (uintptr_t)t->data % align == 0;
}

/* A matrix kept in a K-quant needs rows of whole 256-weight super-blocks
 * (padding 128 weights to 256 would double their bytes): UNSUPPORTED,
 * naming the tensor and its shape, when they are not. row_len is the
 * kept matrix's row (the file's columns; its rows when transposed). */
static lzn_status check_fits(const lzn_binder *b, const lzn_file_tensor *t, const char *name,
                             lzn_weight_type type, int64_t row_len, int transposed) {
  if (lzn_wtype_fits_row(type, (size_t)row_len)) return LZN_OK;
  char shape[128];
  return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: tensor \"%s%s\" (shape %s) cannot be kept in %s%s: its rows "
                  "would hold %lld weights, not whole 256-weight super-blocks (Q8_0 and Q4_0 take any row)",
                  t->file, b->prefix, name, lzn_shape_string(shape, sizeof shape, t->shape, t->n_dims),
                  lzn_wtype_name(type), transposed ? " transposed" : "", (long long)row_len);
}

/* Every block's fp16 scales are finite: a NaN or Inf one is a broken file
 * (its weights would all dequantize to NaN), FORMAT naming the tensor. One
 * pass over the tensor's bytes, in place or not. */
static lzn_status check_scales(const lzn_binder *b, const lzn_file_tensor *t, const char *name) {
  if (!lzn_wtype_is_block(t->dtype)) return LZN_OK;
  const size_t n_blocks = t->n_bytes / lzn_wtype_block_bytes(t->dtype);
  const size_t bad = lzn_wtype_first_bad_block_threads(t->dtype, t->data, n_blocks, binder_threads(b));
  if (bad == n_blocks) return LZN_OK;
  const size_t per_row = (size_t)t->shape[t->n_dims - 1] / lzn_wtype_block_size(t->dtype);
  return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s%s\": a scale of %s block %zu (row %zu) is NaN or Inf",
                  t->file, b->prefix, name, lzn_wtype_name(t->dtype), bad, bad / (per_row ? per_row : 1));
}

void lzn_tensor_row_f32(const lzn_kernel_table *kernels, const lzn_file_tensor *t, int64_t r, size_t cols,
                        float *out) {
  if (lzn_wtype_block_size(t->dtype) > 1) {
    lzn_row_f32(&kernels->type[t->dtype], t->dtype,
                (const char *)t->data + (size_t)r * lzn_wtype_row_bytes(t->dtype, cols), cols, out);
    return;
  }
  for (size_t j = 0; j < cols; j++) out[j] = lzn_wtype_element(t->dtype, t->data, (size_t)r * cols + j);
}

/* Converts cols fp32 values of the kept matrix's row `row`, from column
 * col0 on, into dst in type, checking that they fit; an error names the
 * file's row and column (swapped when the kept matrix is the file's
 * transposed). */
static lzn_status write_row(const lzn_binder *b, const lzn_file_tensor *t, const char *name, int64_t row,
                            size_t col0, int transposed, lzn_weight_type type, const float *src, size_t cols,
                            void *dst) {
  const size_t bad = lzn_wtype_first_unfit(type, src, cols);
  if (bad < cols) {
    const long long file_row = transposed ? (long long)(col0 + bad) : (long long)row;
    const size_t file_col = transposed ? (size_t)row : col0 + bad;
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s%s\" row %lld holds %g at column %zu, which %s "
                    "cannot hold", t->file, b->prefix, name, file_row, (double)src[bad], file_col,
                    lzn_wtype_name(type));
  }
  b->kernels->type[type].from_f32.fn(dst, src, cols);
  return LZN_OK;
}

lzn_status lzn_bind_f32(lzn_binder *b, const char *name, int required, int64_t d0, int64_t d1,
                        const float **out) {
  const lzn_file_tensor *t;
  *out = NULL;
  lzn_status s = lzn_bind_find(b, name, required, d0, d1, &t);
  if (s != LZN_OK || t == NULL) return s;
  if (usable_in_place(t, LZN_WEIGHTS_F32)) {
    *out = t->data;
  } else {
    void *buffer;
    s = lzn_model_own(b->model, (size_t)t->n_elements * sizeof(float), &buffer);
    if (s != LZN_OK) return s;
    if (lzn_wtype_block_size(t->dtype) > 1)
      return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: tensor \"%s%s\" is %s; lazyneuron reads norms, biases "
                      "and tables in F32, F16 or BF16", t->file, b->prefix, name, lzn_wtype_name(t->dtype));
    lzn_tensor_row_f32(b->kernels, t, 0, (size_t)t->n_elements, buffer);
    *out = buffer;
  }
  return lzn_load_progress_step(&b->progress);
}

/* File row of HF row r for llama.cpp's rotary layout: its converter
 * reorders each head's rows from (half, i) to (i, half) so that the pairs
 * ggml rotates are adjacent; Hugging Face rotates the halves. */
int64_t lzn_rope_unpermuted_row(int64_t r, int64_t head_dim) {
  const int64_t h = r / head_dim, rem = r % head_dim, half = head_dim / 2;
  return h * head_dim + 2 * (rem % half) + rem / half;
}

/* Rows of a matrix being converted (bind_rows), ROWS_PER_ITEM of them an
 * item. */
#define ROWS_PER_ITEM 64
typedef struct rows_job {
  const lzn_binder *b;
  const lzn_file_tensor *t;
  const char *name;
  lzn_weight_type type;
  int64_t rows, cols, head_dim;
  size_t row_bytes;
  float *rows_f32; /* cols floats per thread */
  void *buffer;
} rows_job;

static lzn_status convert_rows(void *arg, long item, int thread) {
  const rows_job *j = arg;
  const int64_t r0 = (int64_t)item * ROWS_PER_ITEM;
  const int64_t r1 = r0 + ROWS_PER_ITEM < j->rows ? r0 + ROWS_PER_ITEM : j->rows;
  float *row = j->rows_f32 + (size_t)thread * (size_t)j->cols;
  for (int64_t r = r0; r < r1; r++) {
    const int64_t from = j->head_dim ? lzn_rope_unpermuted_row(r, j->head_dim) : r;
    char *dst = (char *)j->buffer + (size_t)r * j->row_bytes;
    if (j->t->dtype == j->type) { /* a reordered copy: the bytes as they are */
      memcpy(dst, (const char *)j->t->data + (size_t)from * j->row_bytes, j->row_bytes);
      continue;
    }
    lzn_tensor_row_f32(j->b->kernels, j->t, from, (size_t)j->cols, row);
    const lzn_status s = write_row(j->b, j->t, j->name, from, 0, 0, j->type, row, (size_t)j->cols, dst);
    if (s != LZN_OK) return s;
  }
  return LZN_OK;
}

/* The matrix [rows][cols] in the wanted type, rows taken in file order, or
 * with head_dim > 0 through lzn_rope_unpermuted_row. */
static lzn_status bind_rows(lzn_binder *b, const char *name, int required, int64_t rows,
                            int64_t cols, int64_t head_dim, lzn_matrix *out) {
  const lzn_file_tensor *t;
  *out = lzn_matrix_make(target_type(b, LZN_WEIGHTS_F32), NULL, rows, cols);
  lzn_status s = lzn_bind_find(b, name, required, rows, cols, &t);
  if (s != LZN_OK || t == NULL) return s;
  const lzn_weight_type type = target_type(b, t->dtype);
  *out = lzn_matrix_make(type, NULL, rows, cols);
  s = check_fits(b, t, name, type, cols, 0);
  if (s == LZN_OK) s = check_scales(b, t, name);
  if (s != LZN_OK) return s;
  if (usable_in_place(t, type) && head_dim == 0) {
    out->data = t->data;
    return lzn_load_progress_step(&b->progress);
  }
  void *buffer = NULL;
  const int threads = binder_threads(b);
  float *row = malloc((size_t)threads * (size_t)cols * sizeof *row);
  s = row ? lzn_model_own(b->model, (size_t)rows * out->row_bytes, &buffer)
          : lzn_fail(LZN_ERR_NOMEM, "out of memory converting \"%s\"", name);
  rows_job job = {b, t, name, type, rows, cols, head_dim, out->row_bytes, row, buffer};
  if (s == LZN_OK) s = parallel_items(b, (long)((rows + ROWS_PER_ITEM - 1) / ROWS_PER_ITEM), convert_rows, &job);
  free(row);
  if (s != LZN_OK) return s;
  out->data = buffer;
  return lzn_load_progress_step(&b->progress);
}

lzn_status lzn_bind_matrix(lzn_binder *b, const char *name, int required, int64_t rows,
                           int64_t cols, lzn_matrix *out) {
  return bind_rows(b, name, required, rows, cols, 0, out);
}

lzn_status lzn_bind_matrix_rope_permuted(lzn_binder *b, const char *name, int64_t rows,
                                         int64_t cols, int64_t head_dim, lzn_matrix *out) {
  return bind_rows(b, name, 1, rows, cols, head_dim, out);
}

lzn_weight_type lzn_transposed_type(lzn_weight_type down_t_want, lzn_weight_type stored, lzn_weight_type target) {
  if (!lzn_wtype_is_block(stored)) return target;
  return down_t_want == LZN_WEIGHTS_AS_STORED ? stored : down_t_want;
}

/* A transposition (lzn_bind_transposed), a tile of output rows an item. */
typedef struct transpose_job {
  const lzn_binder *b;
  const lzn_file_tensor *t;
  const char *name;
  lzn_weight_type type; /* the output's */
  int64_t rows, cols;   /* the stored matrix's */
  int64_t tile_rows;
  size_t out_row_bytes;
  float *floats; /* scratch floats per thread: the tile, then the runs */
  size_t scratch;
  void *buffer;
} transpose_job;

/* Output rows c0.. (stored columns), one segment of output columns
 * (stored rows r0..) at a time. */
static lzn_status transpose_tile(void *arg, long item, int thread) {
  const transpose_job *j = arg;
  const lzn_file_tensor *t = j->t;
  const int64_t rows = j->rows, cols = j->cols, tile_rows = j->tile_rows;
  const int64_t c0 = (int64_t)item * tile_rows, n = cols - c0 < tile_rows ? cols - c0 : tile_rows;
  const size_t block = lzn_wtype_block_size(t->dtype), stored_row_bytes = lzn_wtype_row_bytes(t->dtype, (size_t)cols);
  float *const tile = j->floats + (size_t)thread * j->scratch;
  float *const runs = block > 1 ? tile + (size_t)tile_rows * TRANSPOSE_SEGMENT : NULL;
  for (int64_t r0 = 0; r0 < rows; r0 += TRANSPOSE_SEGMENT) {
    const int64_t seg = rows - r0 < TRANSPOSE_SEGMENT ? rows - r0 : TRANSPOSE_SEGMENT;
    if (!runs) { /* an element type: read in place */
      for (int64_t r = 0; r < seg; r++)
        for (int64_t c = 0; c < n; c++)
          tile[c * TRANSPOSE_SEGMENT + r] = lzn_wtype_element(t->dtype, t->data, (size_t)((r0 + r) * cols + c0 + c));
    } else { /* c0 and n are whole blocks (check_fits) */
      for (int64_t k0 = 0; k0 < seg; k0 += TRANSPOSE_RUNS) {
        const int64_t nr = seg - k0 < TRANSPOSE_RUNS ? seg - k0 : TRANSPOSE_RUNS;
        for (int64_t k = 0; k < nr; k++) {
          const char *src = (const char *)t->data + (size_t)(r0 + k0 + k) * stored_row_bytes +
                            lzn_wtype_row_bytes(t->dtype, (size_t)c0);
          lzn_row_f32(&j->b->kernels->type[t->dtype], t->dtype, src, (size_t)n, runs + k * tile_rows);
        }
        for (int64_t c = 0; c < n; c++)
          for (int64_t k = 0; k < nr; k++) tile[c * TRANSPOSE_SEGMENT + k0 + k] = runs[k * tile_rows + c];
      }
    }
    /* r0 is whole blocks of the output type (a multiple of 256). */
    for (int64_t c = 0; c < n; c++) {
      const lzn_status s = write_row(j->b, t, j->name, c0 + c, (size_t)r0, 1, j->type, tile + c * TRANSPOSE_SEGMENT,
                                     (size_t)seg, (char *)j->buffer + (size_t)(c0 + c) * j->out_row_bytes +
                                                      lzn_wtype_row_bytes(j->type, (size_t)r0));
      if (s != LZN_OK) return s;
    }
  }
  return LZN_OK;
}

lzn_status lzn_bind_transposed(lzn_binder *b, const char *name, int64_t rows, int64_t cols,
                               lzn_matrix *out, lzn_matrix *as_stored) {
  const lzn_file_tensor *t;
  *out = lzn_matrix_make(target_type(b, LZN_WEIGHTS_F32), NULL, cols, rows);
  *as_stored = lzn_matrix_make(out->type, NULL, rows, cols);
  lzn_status s = lzn_bind_find(b, name, 1, rows, cols, &t);
  if (s != LZN_OK) return s;
  const lzn_weight_type stored_type = target_type(b, t->dtype);
  const lzn_weight_type type = lzn_transposed_type(b->down_t_want, t->dtype, stored_type);
  *out = lzn_matrix_make(type, NULL, cols, rows);
  *as_stored = lzn_matrix_make(stored_type, NULL, rows, cols);
  s = check_fits(b, t, name, type, rows, 1);
  if (s == LZN_OK) s = check_scales(b, t, name);
  if (s != LZN_OK) return s;
  void *buffer = NULL;
  /* A tile of output rows at a time (columns c0.. of the stored matrix;
   * the tiles split among the binder's threads, transpose_tile),
   * LZN_TRANSPOSE_ROWS of them or a whole block of a type whose blocks are
   * longer (the K-quants' 256), and of those rows a segment of
   * TRANSPOSE_SEGMENT output columns (stored rows r0..) at a time, so that
   * the fp32 tile stays in L2 (the whole tile height, 4 MiB for a K-quant
   * of LLaMA-7B, was a sixth of loading it). A block type's stored rows
   * are widened by lzn_row_f32, TRANSPOSE_RUNS of them at a time so that
   * each output row takes them as one cache line (a block type's values
   * cannot be read one at a time; transposing requantizes it, say so; a
   * K-quant's own to_f32, exact to the bit, made ~1 s of a 9-second load
   * of a LLaMA-7B Q4_K_M file). The whole matrix was widened first before,
   * 180 MB a layer of LLaMA-7B whose pages the kernel zeroed, and a
   * llama.cpp Q4_0 file took 41 s to load. */
  const size_t block = lzn_wtype_block_size(t->dtype);
  const int64_t tile_rows = block > LZN_TRANSPOSE_ROWS ? (int64_t)block : LZN_TRANSPOSE_ROWS;
  /* Each thread's tile and runs. */
  const size_t scratch = (size_t)tile_rows * TRANSPOSE_SEGMENT + (block > 1 ? (size_t)TRANSPOSE_RUNS * (size_t)tile_rows : 0);
  const int threads = binder_threads(b);
  float *floats = malloc((size_t)threads * scratch * sizeof *floats);
  s = floats ? lzn_model_own(b->model, (size_t)cols * out->row_bytes, &buffer)
             : lzn_fail(LZN_ERR_NOMEM, "out of memory transposing \"%s\"", name);
  transpose_job job = {b, t, name, type, rows, cols, tile_rows, out->row_bytes, floats, scratch, buffer};
  if (s == LZN_OK) s = parallel_items(b, (long)((cols + tile_rows - 1) / tile_rows), transpose_tile, &job);
  free(floats);
  if (s != LZN_OK) return s;
  out->data = buffer;
  if (usable_in_place(t, stored_type)) as_stored->data = t->data;
  return lzn_load_progress_step(&b->progress);
}

/* m->layers grows as layers load, never ahead of them: a layer takes at
 * least six tensors of the file, so a config.json claiming 2^24 layers
 * beside a 100-byte file fails on a missing tensor instead of allocating
 * gigabytes of empty layer slots first. */
lzn_status lzn_bind_layers(lzn_binder *b, const void *config, lzn_bind_layer_fn bind_layer) {
  lzn_model *m = b->model;
  size_t capacity = 0;
  for (int i = 0; i < m->n_layers; i++) {
    lzn_layer layer;
    memset(&layer, 0, sizeof layer);
    lzn_status s = bind_layer(b, config, i, &layer);
    if (s != LZN_OK) return s;
    if ((size_t)i == capacity) {
      size_t grown_capacity = capacity ? 2 * capacity : 4;
      if (grown_capacity > (size_t)m->n_layers) grown_capacity = (size_t)m->n_layers;
      lzn_layer *grown = realloc(m->layers, grown_capacity * sizeof *grown);
      if (grown == NULL) return lzn_fail(LZN_ERR_NOMEM, "out of memory for %d layers", i + 1);
      m->layers = grown, capacity = grown_capacity;
    }
    m->layers[i] = layer;
  }
  return LZN_OK;
}
