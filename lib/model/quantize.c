/*
 * quantize.c: lzn_model_quantize, a GGUF model rewritten with its weight
 * matrices in another type (lzn-quantize; llama.cpp's llama_model_quantize
 * is the model). The input must load as a model first, so what comes out
 * is a model too; then every tensor is planned (name, type, shape) before a
 * byte is written, so a tensor the type cannot take fails before the
 * output exists; then the tensors are streamed a row at a time through the
 * library's own converters (lzn_tensor_row_f32 and the kernels' from_f32:
 * the bytes a load with that weight_type would make).
 *
 * Every type of the weight-type traits table can be written (its ggml id
 * and llama.cpp's file type come from there).
 */
#include <stdlib.h>
#include <string.h>

#include "arch/arch.h"
#include "arch/tensors.h"
#include "core/abi.h"
#include "core/errors.h"
#include "core/wtype.h"
#include "cpu/cpu.h"
#include "format/gguf_write.h"

/* llama.cpp's GGML_QNT_VERSION, which its quantizer writes. */
#define LZN_QUANTIZATION_VERSION 2

LZN_API lzn_quantize_params lzn_quantize_default_params(void) {
  lzn_quantize_params p;
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.type = LZN_WEIGHTS_Q8_0;
  p.lazyneuron_layout = 1;
  return p;
}

/* Released sizes (lazyneuron.h, "ABI"): 0.3 = now. */
static const lzn_struct_size quantize_params_sizes[] = {
    {sizeof(lzn_quantize_params), offsetof(lzn_quantize_params, progress_user_data) + sizeof(void *)},
};

LZN_API lzn_status lzn_quantize_params_init(lzn_quantize_params *params, size_t struct_size) {
  const lzn_quantize_params defaults = lzn_quantize_default_params();
  return lzn_params_fill(params, struct_size, &defaults, quantize_params_sizes,
                         LZN_N_SIZES(quantize_params_sizes), "lzn_quantize_params_init");
}

/* The caller's params over the defaults (a released struct_size), checked. */
static lzn_status read_params(const lzn_quantize_params *given, lzn_quantize_params *p) {
  const lzn_quantize_params defaults = lzn_quantize_default_params();
  *p = defaults;
  if (given == NULL) return LZN_OK;
  const lzn_status s = lzn_params_read(p, &defaults, given, quantize_params_sizes,
                                       LZN_N_SIZES(quantize_params_sizes), "lzn_model_quantize");
  if (s != LZN_OK) return s;
  if (!lzn_wtype_valid(p->type)) {
    char names[128];
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_quantize: params->type = %d; the types a file is "
                    "written in are %s", (int)p->type, lzn_wtype_list(names, sizeof names));
  }
  if (p->lazyneuron_layout != 0 && p->lazyneuron_layout != 1)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_quantize: params->lazyneuron_layout = %d, must be 0 "
                    "or 1", p->lazyneuron_layout);
  return LZN_OK;
}

/* --------------------------------------------------------------- plan */

typedef enum action { COPY, CONVERT, TRANSPOSE } action;

typedef struct planned {
  const lzn_file_tensor *src;
  char *name; /* owned */
  lzn_weight_type type;
  int n_dims;
  int64_t shape[LZN_GGUF_MAX_DIMS];
  action act;
  int64_t rope_head_dim; /* CONVERT: > 0 reorders rows from llama.cpp's rotary layout */
} planned;

/* What the whole file needs besides the type: W_down transposed, and q / k
 * rows put back in Hugging Face's order when the input has llama.cpp's
 * (both so that every matrix maps in place; lazyneuron's layout, which
 * llama.cpp does not read; lazyneuron_layout = 0 keeps the input's). */
typedef struct layout {
  int transpose_down;
  int64_t rope_head_dim; /* > 0: the input's q / k rows are in llama.cpp's order */
} layout;

/* The weight matrices of both families, by GGUF name; layer tensors after
 * "blk.N.". Everything else (norms, biases, position_embd, PowerInfer's
 * fc1/fc2 predictor) keeps its type. */
static const char *const model_matrices[] = {"token_embd.weight", "output.weight", "proj_in.weight",
                                             "proj_out.weight"};
static const char *const layer_matrices[] = {"attn_q.weight",   "attn_k.weight",  "attn_v.weight",
                                             "attn_output.weight", "ffn_gate.weight", "ffn_up.weight",
                                             "ffn_down.weight", "ffn_down_t.weight"};

/* The part of a layer tensor's name after "blk.N.", or NULL. */
static const char *layer_suffix(const char *name) {
  if (strncmp(name, "blk.", 4) != 0) return NULL;
  const char *p = name + 4;
  if (*p < '0' || *p > '9') return NULL;
  while (*p >= '0' && *p <= '9') p++;
  return *p == '.' ? p + 1 : NULL;
}

static int is_matrix(const lzn_file_tensor *t) {
  if (t->n_dims != 2) return 0;
  const char *suffix = layer_suffix(t->name);
  const char *const *names = suffix ? layer_matrices : model_matrices;
  const size_t n = suffix ? sizeof layer_matrices / sizeof *layer_matrices
                          : sizeof model_matrices / sizeof *model_matrices;
  for (size_t i = 0; i < n; i++)
    if (strcmp(suffix ? suffix : t->name, names[i]) == 0) return 1;
  return 0;
}

static lzn_status plan_tensor(const lzn_file_tensor *t, const lzn_quantize_params *p, const layout *l,
                              planned *out) {
  memset(out, 0, sizeof *out);
  out->src = t, out->type = t->dtype, out->n_dims = t->n_dims, out->act = COPY;
  memcpy(out->shape, t->shape, (size_t)t->n_dims * sizeof *t->shape);
  const size_t len = strlen(t->name);
  if ((out->name = malloc(len + 3)) == NULL) return lzn_fail(LZN_ERR_NOMEM, "lzn_model_quantize: out of memory");
  memcpy(out->name, t->name, len + 1);
  if (!is_matrix(t)) return LZN_OK;
  out->type = p->type;
  const char *suffix = layer_suffix(t->name);
  if (l->transpose_down && suffix && strcmp(suffix, "ffn_down.weight") == 0) {
    memcpy(out->name + (suffix - t->name), "ffn_down_t.weight", sizeof "ffn_down_t.weight");
    out->shape[0] = t->shape[1], out->shape[1] = t->shape[0];
    out->act = TRANSPOSE;
  } else if (l->rope_head_dim && suffix && (strcmp(suffix, "attn_q.weight") == 0 || strcmp(suffix, "attn_k.weight") == 0)) {
    out->act = CONVERT, out->rope_head_dim = l->rope_head_dim;
  } else if (out->type != t->dtype) {
    out->act = CONVERT;
  }
  const int64_t cols = out->shape[1];
  if (cols % (int64_t)lzn_wtype_block_size(out->type) != 0)
    return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: tensor \"%s\" has rows of %lld weights; %s needs whole "
                    "blocks of %zu (GGUF cannot pad a row)", t->file, out->name, (long long)cols,
                    lzn_wtype_name(out->type), lzn_wtype_block_size(out->type));
  return LZN_OK;
}

/* -------------------------------------------------------------- convert */

typedef struct converter {
  const lzn_kernel_table *kernels;
  lzn_gguf_writer *writer;
  float *row;          /* one output row in fp32 */
  unsigned char *out;  /* one output row in the output type */
  float *whole;        /* a matrix to transpose, in fp32; kept for the next */
  size_t whole_cap;    /* its capacity in floats */
} converter;

/* Converts and writes one output row held in c->row. */
static lzn_status write_row(converter *c, const planned *p, int64_t r, size_t cols) {
  const size_t bad = lzn_wtype_first_unfit(p->type, c->row, cols);
  if (bad < cols)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\" row %lld holds %g at column %zu, which %s cannot "
                    "hold", p->src->file, p->name, (long long)r, (double)c->row[bad], bad,
                    lzn_wtype_name(p->type));
  c->kernels->type[p->type].from_f32.fn(c->out, c->row, cols);
  return lzn_gguf_writer_write(c->writer, c->out, lzn_wtype_row_bytes(p->type, cols));
}

static lzn_status write_tensor(converter *c, const planned *p) {
  const lzn_file_tensor *t = p->src;
  if (p->act == COPY) return lzn_gguf_writer_write(c->writer, t->data, t->n_bytes);
  const int64_t rows = p->shape[0], cols = p->shape[1];
  lzn_status s = LZN_OK;
  if (p->act == CONVERT) {
    const size_t row_bytes = lzn_wtype_row_bytes(t->dtype, (size_t)cols);
    for (int64_t r = 0; s == LZN_OK && r < rows; r++) {
      const int64_t from = p->rope_head_dim ? lzn_rope_unpermuted_row(r, p->rope_head_dim) : r;
      if (t->dtype == p->type) { /* only reordered: the bytes as they are */
        s = lzn_gguf_writer_write(c->writer, (const char *)t->data + (size_t)from * row_bytes, row_bytes);
        continue;
      }
      lzn_tensor_row_f32(c->kernels, t, from, (size_t)cols, c->row);
      s = write_row(c, p, r, (size_t)cols);
    }
    return s;
  }
  /* TRANSPOSE: the source [cols][rows] widened whole (a block type cannot
   * be read by columns), then each output row gathered from a column. */
  /* One buffer for every such matrix: a fresh one for each cost its page
   * faults every time, a third of rewriting a LLaMA-7B file of
   * llama.cpp's, where each layer's W_down is transposed. */
  const size_t need = (size_t)rows * (size_t)cols;
  if (need > c->whole_cap) {
    free(c->whole);
    c->whole = malloc(need * sizeof *c->whole);
    c->whole_cap = c->whole ? need : 0;
    if (c->whole == NULL)
      return lzn_fail(LZN_ERR_NOMEM, "lzn_model_quantize: out of memory transposing \"%s\"", t->name);
  }
  float *whole = c->whole;
  for (int64_t r = 0; r < cols; r++) lzn_tensor_row_f32(c->kernels, t, r, (size_t)rows, whole + r * rows);
  for (int64_t r = 0; s == LZN_OK && r < rows; r++) {
    for (int64_t j = 0; j < cols; j++) c->row[j] = whole[j * rows + r];
    s = write_row(c, p, r, (size_t)cols);
  }
  return s;
}

/* ----------------------------------------------------------------- main */

/* Checks that in_path is a model lzn_model_load accepts (the messages are
 * the loader's). */
static lzn_status check_loads(const char *in_path) {
  lzn_model_params mp;
  lzn_model_params_init(&mp, sizeof mp);
  mp.predictor_path = ""; /* the predictor is copied, not used */
  mp.pack_budget = 0;     /* nor would the packed copies be (a 7B Q4_K: 3.7 GiB, ~13 s) */
  lzn_model *model;
  const lzn_status s = lzn_model_load(in_path, &mp, &model);
  lzn_model_free(model);
  return s;
}

static lzn_status write_metadata(lzn_gguf_writer *w, const lzn_gguf_file *f, const lzn_quantize_params *p,
                                 const layout *l, int has_down_t) {
  lzn_status s = LZN_OK;
  for (size_t i = 0; s == LZN_OK && i < f->n_kvs; i++)
    if (strcmp(f->kvs[i].key, "general.alignment") != 0) s = lzn_gguf_writer_copy_kv(w, &f->kvs[i]);
  if (s == LZN_OK) s = lzn_gguf_writer_set_u32(w, "general.file_type", (uint32_t)lzn_wtype_traits(p->type)->file_type);
  if (s == LZN_OK && lzn_wtype_is_block(p->type))
    s = lzn_gguf_writer_set_u32(w, "general.quantization_version", LZN_QUANTIZATION_VERSION);
  if (s == LZN_OK && has_down_t) s = lzn_gguf_writer_set_bool(w, "lazyneuron.down_transposed", 1);
  if (s == LZN_OK && l->rope_head_dim) s = lzn_gguf_writer_set_bool(w, "lazyneuron.rope.rotate_half", 1);
  return s;
}

static lzn_status quantize_file(const lzn_gguf_file *f, const char *out_path, const lzn_quantize_params *p,
                                planned *plan) {
  int has_down_t = 0;
  size_t widest = 1;
  layout l = {p->lazyneuron_layout, 0};
  lzn_hf_config config;
  lzn_status s = lzn_arch_parse_gguf(f, &config); /* it loaded: this succeeds */
  if (s == LZN_OK && p->lazyneuron_layout && config.family == LZN_ARCH_LLAMA && config.llama.rope_rows_interleaved)
    l.rope_head_dim = config.llama.head_dim;
  for (size_t i = 0; s == LZN_OK && i < f->n_tensors; i++) {
    s = plan_tensor(&f->tensors[i], p, &l, &plan[i]);
    const char *suffix = layer_suffix(plan[i].name ? plan[i].name : "");
    has_down_t |= suffix && strcmp(suffix, "ffn_down_t.weight") == 0;
    if (plan[i].n_dims == 2 && (size_t)plan[i].shape[1] > widest) widest = (size_t)plan[i].shape[1];
  }
  if (s != LZN_OK) return s;
  converter c = {NULL, NULL, NULL, NULL, NULL, 0};
  s = lzn_kernels_get(&c.kernels);
  const uint32_t alignment = f->alignment > LZN_GGUF_DEFAULT_ALIGNMENT ? f->alignment : LZN_GGUF_DEFAULT_ALIGNMENT;
  if (s == LZN_OK) s = lzn_gguf_writer_open(out_path, alignment, f->magic, &c.writer);
  if (s == LZN_OK) s = write_metadata(c.writer, f, p, &l, has_down_t);
  for (size_t i = 0; s == LZN_OK && i < f->n_tensors; i++)
    s = lzn_gguf_writer_add_tensor(c.writer, plan[i].name, plan[i].type, plan[i].n_dims, plan[i].shape);
  c.row = malloc(widest * sizeof *c.row);
  c.out = malloc(widest * sizeof(float));
  if (s == LZN_OK && (c.row == NULL || c.out == NULL))
    s = lzn_fail(LZN_ERR_NOMEM, "lzn_model_quantize: out of memory");
  for (size_t i = 0; s == LZN_OK && i < f->n_tensors; i++) {
    s = write_tensor(&c, &plan[i]);
    if (s == LZN_OK && p->progress && !p->progress((float)(i + 1) / (float)f->n_tensors, p->progress_user_data))
      s = lzn_fail(LZN_ERR_CANCELLED, "lzn_model_quantize: cancelled by the progress callback");
  }
  if (s == LZN_OK) s = lzn_gguf_writer_commit(c.writer);
  lzn_gguf_writer_free(c.writer);
  free(c.row), free(c.out), free(c.whole);
  return s;
}

LZN_API lzn_status lzn_model_quantize(const char *in_path, const char *out_path,
                                      const lzn_quantize_params *params) {
  if (in_path == NULL || out_path == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_model_quantize: in_path and out_path must not be NULL");
  lzn_quantize_params p;
  lzn_status s = read_params(params, &p);
  if (s != LZN_OK) return s;
  lzn_gguf_file f;
  s = lzn_gguf_open(in_path, 1, &f); /* the GGUF rules first, then the model's */
  if (s == LZN_OK) s = check_loads(in_path);
  if (s != LZN_OK) {
    lzn_gguf_close(&f);
    return s;
  }
  planned *plan = calloc(f.n_tensors ? f.n_tensors : 1, sizeof *plan);
  s = plan ? quantize_file(&f, out_path, &p, plan) : lzn_fail(LZN_ERR_NOMEM, "lzn_model_quantize: out of memory");
  for (size_t i = 0; plan && i < f.n_tensors; i++) free(plan[i].name);
  free(plan);
  lzn_gguf_close(&f);
  return s;
}
