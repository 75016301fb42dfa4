/*
 * export.c: `lzn-bench export`: a synthetic LLaMA-family model written as a
 * GGUF file, in the layout tools/convert/lzn_convert.py writes (W_down
 * pre-transposed as ffn_down_t, q/k rows in Hugging Face's order,
 * lazyneuron.* keys), so that `lzn-bench load` and `lzn-bench model --model`
 * can measure what loading a 7B file costs without a 7B download: a load in
 * the file's type is then a pure mmap.
 *
 * The matrices are written as the synthetic builder keeps them in memory
 * (rows of lzn_wtype_row_bytes each), which is exactly GGUF's layout when
 * every row is whole blocks (d_model and d_ff multiples of 32).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "model/model.h"
#include "synthetic.h"

#define EXPORT_ALIGNMENT 64

/* ggml's type ids (GGUF tensor infos): the traits table's. */
static uint32_t ggml_type_id(lzn_weight_type t) { return (uint32_t)lzn_wtype_traits(t)->ggml_id; }

typedef struct export_tensor {
  char name[64];
  lzn_weight_type type;
  int64_t rows, cols; /* cols = ne[0]; a vector has rows = 1 and n_dims 1 */
  int n_dims;
  const void *data;
  size_t bytes, offset;
} export_tensor;

typedef struct writer {
  FILE *f;
  const char *path;
} writer;

static void put(writer *w, const void *p, size_t n) {
  if (fwrite(p, 1, n, w->f) != n) bench_fail("%s: write failed", w->path);
}
static void put_u32(writer *w, uint32_t v) { put(w, &v, 4); }
static void put_u64(writer *w, uint64_t v) { put(w, &v, 8); }
static void put_str(writer *w, const char *s) {
  put_u64(w, strlen(s));
  put(w, s, strlen(s));
}
static void kv_u32(writer *w, const char *key, uint32_t v) {
  put_str(w, key), put_u32(w, 4 /* uint32 */), put_u32(w, v);
}
static void kv_f32(writer *w, const char *key, float v) {
  put_str(w, key), put_u32(w, 6 /* float32 */), put(w, &v, 4);
}
static void kv_str(writer *w, const char *key, const char *v) {
  put_str(w, key), put_u32(w, 8 /* string */), put_str(w, v);
}
static void kv_bool(writer *w, const char *key, int v) {
  const uint8_t b = (uint8_t)(v != 0);
  put_str(w, key), put_u32(w, 7 /* bool */), put(w, &b, 1);
}

static void add_matrix(export_tensor *t, size_t *n, const char *name, const lzn_matrix *m) {
  export_tensor *e = &t[(*n)++];
  snprintf(e->name, sizeof e->name, "%s", name);
  e->type = m->type, e->rows = m->rows, e->cols = m->cols, e->n_dims = 2, e->data = m->data;
  e->bytes = (size_t)m->rows * m->row_bytes;
}

static void add_vector(export_tensor *t, size_t *n, const char *name, const float *v, int64_t len) {
  export_tensor *e = &t[(*n)++];
  snprintf(e->name, sizeof e->name, "%s", name);
  e->type = LZN_WEIGHTS_F32, e->rows = 1, e->cols = len, e->n_dims = 1, e->data = v;
  e->bytes = (size_t)len * sizeof(float);
}

static void write_model(const lzn_model *m, const char *path) {
  const size_t max_tensors = 3 + 9 * (size_t)m->n_layers;
  export_tensor *t = calloc(max_tensors, sizeof *t);
  if (t == NULL) bench_fail("out of memory");
  size_t n = 0;
  char name[64];
  add_matrix(t, &n, "token_embd.weight", &m->embed_tokens);
  add_vector(t, &n, "output_norm.weight", m->final_norm.weight, m->d_model);
  add_matrix(t, &n, "output.weight", &m->lm_head);
  for (int l = 0; l < m->n_layers; l++) {
    const lzn_layer *y = &m->layers[l];
#define LAYER_NAME(suffix) (snprintf(name, sizeof name, "blk.%d.%s", l, suffix), name)
    add_vector(t, &n, LAYER_NAME("attn_norm.weight"), y->attn_norm.weight, m->d_model);
    add_matrix(t, &n, LAYER_NAME("attn_q.weight"), &y->q);
    add_matrix(t, &n, LAYER_NAME("attn_k.weight"), &y->k);
    add_matrix(t, &n, LAYER_NAME("attn_v.weight"), &y->v);
    add_matrix(t, &n, LAYER_NAME("attn_output.weight"), &y->o);
    add_vector(t, &n, LAYER_NAME("ffn_norm.weight"), y->mlp_norm.weight, m->d_model);
    add_matrix(t, &n, LAYER_NAME("ffn_gate.weight"), &y->gate);
    add_matrix(t, &n, LAYER_NAME("ffn_up.weight"), &y->up);
    add_matrix(t, &n, LAYER_NAME("ffn_down_t.weight"), &y->down_t);
#undef LAYER_NAME
  }
  size_t offset = 0;
  for (size_t i = 0; i < n; i++) {
    t[i].offset = offset;
    offset = (offset + t[i].bytes + EXPORT_ALIGNMENT - 1) / EXPORT_ALIGNMENT * EXPORT_ALIGNMENT;
  }
  writer w = {fopen(path, "wb"), path};
  if (w.f == NULL) bench_fail("%s: cannot create", path);
  put(&w, "GGUF", 4), put_u32(&w, 3), put_u64(&w, n), put_u64(&w, 15);
  kv_str(&w, "general.architecture", "llama");
  kv_u32(&w, "general.alignment", EXPORT_ALIGNMENT);
  kv_u32(&w, "llama.block_count", (uint32_t)m->n_layers);
  kv_u32(&w, "llama.context_length", (uint32_t)m->max_positions);
  kv_u32(&w, "llama.embedding_length", (uint32_t)m->d_model);
  kv_u32(&w, "llama.feed_forward_length", (uint32_t)m->d_ff);
  kv_u32(&w, "llama.attention.head_count", (uint32_t)m->n_heads);
  kv_u32(&w, "llama.attention.head_count_kv", (uint32_t)m->n_kv_heads);
  kv_u32(&w, "llama.attention.key_length", (uint32_t)m->head_dim);
  kv_f32(&w, "llama.attention.layer_norm_rms_epsilon", (float)m->arch.norm_eps);
  kv_f32(&w, "llama.rope.freq_base", (float)m->arch.rope_theta);
  kv_str(&w, "lazyneuron.activation", "fatrelu");
  kv_f32(&w, "lazyneuron.activation_threshold", m->arch.activation_threshold);
  kv_bool(&w, "lazyneuron.rope.rotate_half", 1);
  kv_bool(&w, "lazyneuron.down_transposed", 1);
  for (size_t i = 0; i < n; i++) {
    put_str(&w, t[i].name);
    put_u32(&w, (uint32_t)t[i].n_dims);
    put_u64(&w, (uint64_t)t[i].cols);
    if (t[i].n_dims == 2) put_u64(&w, (uint64_t)t[i].rows);
    put_u32(&w, ggml_type_id(t[i].type));
    put_u64(&w, t[i].offset);
  }
  static const unsigned char zeros[EXPORT_ALIGNMENT];
  long at = ftell(w.f);
  put(&w, zeros, (size_t)((EXPORT_ALIGNMENT - at % EXPORT_ALIGNMENT) % EXPORT_ALIGNMENT));
  size_t written = 0;
  for (size_t i = 0; i < n; i++) {
    put(&w, zeros, t[i].offset - written);
    put(&w, t[i].data, t[i].bytes);
    written = t[i].offset + t[i].bytes;
  }
  if (fclose(w.f) != 0) bench_fail("%s: close failed", path);
  free(t);
}

static void help(void) {
  printf("usage: lzn-bench export --synthetic NAME --type T [--layers N] [--density PCT] [--seed S] OUT.gguf\n"
         "Writes a synthetic LLaMA-family model (%s; not the OPT shapes) as a GGUF file\n"
         "in lzn-convert's layout (W_down pre-transposed), for `lzn-bench load` and `model --model`.\n"
         "T: f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k (default q4_0).\n",
         "llama-7b, relullama-7b, mistral-7b");
}

int bench_export_main(int argc, char **argv);
int bench_export_main(int argc, char **argv) {
  const char *name = NULL, *out = NULL, *type_name = "q4_0";
  int n_layers = 0;
  double density = 10.0;
  long seed = 1;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      help();
      return 0;
    } else if ((v = bench_option_value(argc, argv, &i, "--synthetic"))) name = v;
    else if ((v = bench_option_value(argc, argv, &i, "--type"))) type_name = v;
    else if ((v = bench_option_value(argc, argv, &i, "--layers"))) n_layers = (int)bench_parse_long("--layers", v, 1, 100000);
    else if ((v = bench_option_value(argc, argv, &i, "--density"))) density = bench_parse_double("--density", v);
    else if ((v = bench_option_value(argc, argv, &i, "--seed"))) seed = bench_parse_long("--seed", v, 0, 1L << 40);
    else if (argv[i][0] != '-' && out == NULL) out = argv[i];
    else bench_usage_error("export: unexpected argument \"%s\"", argv[i]);
  }
  if (name == NULL || out == NULL) bench_usage_error("export: need --synthetic NAME and OUT.gguf");
  const lzn_weight_type type = bench_parse_type("--type", type_name);
  if (type == LZN_WEIGHTS_AS_STORED) bench_usage_error("export: --type must name a type, not as_stored");
  lzn_model *m = NULL;
  const lzn_status s = lzn_model_synthetic_typed(name, (float)(density / 100.0), n_layers, (uint64_t)seed, type, &m);
  if (s != LZN_OK) bench_fail("%s: %s", lzn_status_str(s), lzn_last_error());
  if (m->arch.mlp != LZN_MLP_KIND_GATED) bench_fail("export: %s is not a LLaMA-family shape", name);
  write_model(m, out);
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_model_get_info(m, &info);
  printf("wrote %s: %s, %d layers, %.2f GiB of %s weights\n", out, name, info.n_layers,
         (double)info.weight_bytes / (1u << 30), type_name);
  lzn_model_free(m);
  return 0;
}
