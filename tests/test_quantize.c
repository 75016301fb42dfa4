/*
 * test_quantize.c: the GGUF writer (lib/format/gguf_write.c), lzn_model_quantize
 * (lib/model/quantize.c), OPT models in GGUF (lib/arch/opt_gguf.c), the
 * byte-level tokenizer in GGUF (lib/text/load.c), and lzn_model_load on a file
 * that is no model.
 *
 * A quantized file is checked against the library's own conversion at load:
 * the input loaded with weight_type T and the output (written in T) loaded as
 * stored must give the same logits, bit for bit, and the output must map in
 * place (the model owns no converted buffer). Every failure leaves no output
 * file and no temporary file behind.
 */
#include <check.h>
#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format/gguf.h"
#include "format/gguf_write.h"
#include "model/model.h"
#include "reference.h"
#include "testfiles.h"
#include "testutil.h"

/* tests/data/gguf/name */
static const char *gguf_fixture(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "%s/gguf/%s", data_dir(), name);
  return buf;
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Entries of a folder, "." and ".." aside. */
static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return n;
}

static void check_ok(lzn_status s, const char *what) {
  ck_assert_msg(s == LZN_OK, "%s: %s: %s", what, lzn_status_str(s), lzn_last_error());
}

/* Copies a GGUF file through the writer, skipping one key (or none) and,
 * if change is set, letting it edit metadata and one tensor's fp32 data
 * (F32 tensors only). */
typedef void (*edit_fn)(lzn_gguf_writer *w);
static void rewrite_gguf(const char *in, const char *out, const char *skip_key, edit_fn edit,
                         const char *poke_tensor, float poke_value) {
  lzn_gguf_file f;
  check_ok(lzn_gguf_open(in, 0, &f), in);
  lzn_gguf_writer *w;
  check_ok(lzn_gguf_writer_open(out, f.alignment < 32 ? 32 : f.alignment, f.magic, &w), out);
  for (size_t i = 0; i < f.n_kvs; i++)
    if ((skip_key == NULL || strcmp(f.kvs[i].key, skip_key) != 0) && strcmp(f.kvs[i].key, "general.alignment") != 0)
      check_ok(lzn_gguf_writer_copy_kv(w, &f.kvs[i]), f.kvs[i].key);
  if (edit) edit(w);
  for (size_t i = 0; i < f.n_tensors; i++)
    check_ok(lzn_gguf_writer_add_tensor(w, f.tensors[i].name, f.tensors[i].dtype, f.tensors[i].n_dims,
                                        f.tensors[i].shape), f.tensors[i].name);
  for (size_t i = 0; i < f.n_tensors; i++) {
    const lzn_file_tensor *t = &f.tensors[i];
    if (poke_tensor && strcmp(t->name, poke_tensor) == 0) {
      ck_assert_int_eq(t->dtype, LZN_WEIGHTS_F32);
      float *copy = malloc(t->n_bytes);
      memcpy(copy, t->data, t->n_bytes);
      copy[t->n_elements / 2] = poke_value;
      check_ok(lzn_gguf_writer_write(w, copy, t->n_bytes), t->name);
      free(copy);
    } else {
      check_ok(lzn_gguf_writer_write(w, t->data, t->n_bytes), t->name);
    }
  }
  check_ok(lzn_gguf_writer_commit(w), out);
  lzn_gguf_writer_free(w);
  lzn_gguf_close(&f);
}

/* Without packed copies (lzn_model_params.pack_budget 0): they are owned
 * buffers by design, and these tests count what the load had to make
 * besides them (owned.n 0: every matrix mapped in place). */
static lzn_model *load_typed(const char *path, lzn_weight_type type) {
  lzn_model_params p;
  lzn_model_params_init(&p, sizeof p);
  p.weight_type = type;
  p.pack_budget = 0;
  lzn_model *m = NULL;
  const lzn_status s = lzn_model_load(path, &p, &m);
  ck_assert_msg(s == LZN_OK, "%s: %s: %s", path, lzn_status_str(s), lzn_last_error());
  return m;
}

/* The largest |difference| of the two models' logits over a token sequence,
 * one mode. */
static double logits_diff(const lzn_model *a, const lzn_model *b, const int32_t *tokens, int n,
                          lzn_mlp_mode mode) {
  lzn_model_info ia = {.struct_size = sizeof ia}, ib = {.struct_size = sizeof ib};
  lzn_model_get_info(a, &ia), lzn_model_get_info(b, &ib);
  ck_assert_int_eq(ia.vocab_size, ib.vocab_size);
  lzn_context *ca = make_context(a, mode, 1), *cb = make_context(b, mode, 1);
  float *la = malloc(sizeof(float) * (size_t)n * (size_t)ia.vocab_size);
  float *lb = malloc(sizeof(float) * (size_t)n * (size_t)ia.vocab_size);
  check_ok(lzn_forward(ca, tokens, n, la, LZN_LOGITS_ALL), "forward a");
  check_ok(lzn_forward(cb, tokens, n, lb, LZN_LOGITS_ALL), "forward b");
  const double d = max_abs_diff(la, lb, (size_t)n * (size_t)ia.vocab_size);
  free(la), free(lb);
  lzn_context_free(ca), lzn_context_free(cb);
  return d;
}

/* ---------------------------------------------------------------- writer */

START_TEST(writer_round_trip) {
  char in[512], dir[512], out[600];
  gguf_fixture(in, sizeof in, "tiny.gguf");
  make_folder(dir, sizeof dir, "round_trip");
  snprintf(out, sizeof out, "%s/copy.gguf", dir);
  lzn_gguf_file f, g;
  check_ok(lzn_gguf_open(in, 0, &f), in);
  lzn_gguf_writer *w;
  check_ok(lzn_gguf_writer_open(out, 128, NULL, &w), "open");
  check_ok(lzn_gguf_writer_set_string(w, "test.first", "old value"), "set");
  for (size_t i = 0; i < f.n_kvs; i++)
    if (strcmp(f.kvs[i].key, "general.alignment") != 0) check_ok(lzn_gguf_writer_copy_kv(w, &f.kvs[i]), "copy");
  check_ok(lzn_gguf_writer_set_u32(w, "test.added", 77), "u32");
  check_ok(lzn_gguf_writer_set_bool(w, "test.flag", 0), "bool replaces the copied one");
  check_ok(lzn_gguf_writer_set_string(w, "test.first", "new value"), "string replaces");
  for (size_t i = 0; i < f.n_tensors; i++)
    check_ok(lzn_gguf_writer_add_tensor(w, f.tensors[i].name, f.tensors[i].dtype, f.tensors[i].n_dims,
                                        f.tensors[i].shape), "tensor");
  /* The data in 7-byte pieces, spanning tensors and their padding. */
  size_t total = 0;
  for (size_t i = 0; i < f.n_tensors; i++) total += f.tensors[i].n_bytes;
  unsigned char *all = malloc(total);
  for (size_t i = 0, at = 0; i < f.n_tensors; at += f.tensors[i].n_bytes, i++)
    memcpy(all + at, f.tensors[i].data, f.tensors[i].n_bytes);
  for (size_t at = 0; at < total; at += 7) check_ok(lzn_gguf_writer_write(w, all + at, total - at < 7 ? total - at : 7), "write");
  free(all);
  ck_assert(!exists(out)); /* nothing at the path before the commit */
  check_ok(lzn_gguf_writer_commit(w), "commit");
  lzn_gguf_writer_free(w);
  ck_assert_int_eq(count_entries(dir), 1); /* no temporary file left */

  check_ok(lzn_gguf_open(out, 0, &g), out);
  ck_assert_uint_eq(g.alignment, 128);
  ck_assert_uint_eq(g.n_kvs, f.n_kvs + 2); /* + test.first, test.added; alignment rewritten */
  ck_assert_str_eq(g.kvs[0].key, "test.first"); /* first place, last value */
  lzn_gguf_string s;
  check_ok(lzn_gguf_get_string(&g, "test.first", &s), "test.first");
  ck_assert_int_eq((int)s.len, 9);
  ck_assert(memcmp(s.data, "new value", 9) == 0);
  uint32_t u;
  int flag = 1;
  check_ok(lzn_gguf_get_u32(&g, "test.added", &u), "test.added");
  check_ok(lzn_gguf_get_bool(&g, "test.flag", &flag), "test.flag");
  ck_assert_uint_eq(u, 77);
  ck_assert_int_eq(flag, 0);
  for (size_t i = 0; i < f.n_kvs; i++) {
    const lzn_gguf_kv *a = &f.kvs[i], *b = lzn_gguf_find(&g, a->key);
    ck_assert_msg(b != NULL, "%s lost", a->key);
    if (strcmp(a->key, "test.flag") == 0 || strcmp(a->key, "general.alignment") == 0) continue;
    ck_assert_int_eq(a->type, b->type);
    ck_assert_int_eq(a->elem_type, b->elem_type);
    ck_assert_uint_eq(a->n, b->n);
    for (uint64_t j = 0; a->elem_type == LZN_GGUF_STRING && j < a->n; j++) {
      const lzn_gguf_string x = lzn_gguf_elem_string(a, j), y = lzn_gguf_elem_string(b, j);
      ck_assert(x.len == y.len && memcmp(x.data, y.data, x.len) == 0);
    }
    if (a->elem_type != LZN_GGUF_STRING)
      ck_assert_msg(memcmp(a->data, b->data, (size_t)a->n * lzn_gguf_type_size(a->elem_type)) == 0, "%s", a->key);
  }
  ck_assert_uint_eq(g.n_tensors, f.n_tensors);
  for (size_t i = 0; i < f.n_tensors; i++) {
    const lzn_file_tensor *a = &f.tensors[i], *b = lzn_gguf_find_tensor(&g, a->name);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(a->dtype, b->dtype);
    ck_assert_uint_eq(a->n_bytes, b->n_bytes);
    ck_assert(memcmp(a->data, b->data, a->n_bytes) == 0);
    ck_assert_uint_eq(b->data_offset % 128, 0);
  }
  lzn_gguf_close(&g);
  lzn_gguf_close(&f);
}
END_TEST

START_TEST(writer_rules) {
  char dir[512], out[600];
  make_folder(dir, sizeof dir, "writer_rules");
  snprintf(out, sizeof out, "%s/w.gguf", dir);
  lzn_gguf_writer *w = NULL;
  ck_assert_int_eq(lzn_gguf_writer_open(out, 24, NULL, &w), LZN_ERR_INVALID_ARG);
  ck_assert_ptr_null(w);
  ck_assert_int_eq(lzn_gguf_writer_open(out, 32, "GGML", &w), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_gguf_writer_open("/nonexistent-folder/w.gguf", 32, NULL, &w), LZN_ERR_IO);
  ck_assert(strstr(lzn_last_error(), "/nonexistent-folder/w.gguf") != NULL);

  check_ok(lzn_gguf_writer_open(out, 32, NULL, &w), "open");
  ck_assert_int_eq(count_entries(dir), 1); /* the temporary file, not out */
  ck_assert(!exists(out));
  const int64_t q_shape[2] = {2, 40}, f_shape[2] = {2, 3}, zero[1] = {0};
  ck_assert_int_eq(lzn_gguf_writer_add_tensor(w, "q", LZN_WEIGHTS_Q8_0, 2, q_shape), LZN_ERR_INVALID_ARG);
  ck_assert(strstr(lzn_last_error(), "40 columns") != NULL);
  ck_assert_int_eq(lzn_gguf_writer_add_tensor(w, "z", LZN_WEIGHTS_F32, 1, zero), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_gguf_writer_add_tensor(w, "five", LZN_WEIGHTS_F32, 5, f_shape), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_gguf_writer_set_u32(w, "", 1), LZN_ERR_INVALID_ARG);
  check_ok(lzn_gguf_writer_add_tensor(w, "a", LZN_WEIGHTS_F32, 2, f_shape), "a");
  ck_assert_int_eq(lzn_gguf_writer_add_tensor(w, "a", LZN_WEIGHTS_F16, 2, f_shape), LZN_ERR_INVALID_ARG);
  ck_assert(strstr(lzn_last_error(), "twice") != NULL);
  const float six[6] = {1, 2, 3, 4, 5, 6};
  check_ok(lzn_gguf_writer_write(w, six, 8), "part");
  ck_assert_int_eq(lzn_gguf_writer_set_u32(w, "late", 1), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_gguf_writer_add_tensor(w, "late", LZN_WEIGHTS_F32, 2, f_shape), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_gguf_writer_commit(w), LZN_ERR_INVALID_ARG); /* 8 of 24 bytes */
  ck_assert(strstr(lzn_last_error(), "\"a\" has 8 of its 24 bytes") != NULL);
  ck_assert_int_eq(lzn_gguf_writer_write(w, six, 24), LZN_ERR_INVALID_ARG); /* 8 too many */
  lzn_gguf_writer_free(w);
  ck_assert_int_eq(count_entries(dir), 0); /* free removed the temporary file */
  lzn_gguf_writer_free(NULL);
}
END_TEST

/* -------------------------------------------------------------- quantize */

/* lzn_model_quantize into dir/name, expected to succeed. */
static const char *quantize_to(const char *in, const char *dir, const char *name, lzn_weight_type type,
                               int lazyneuron_layout, char *out, size_t cap) {
  snprintf(out, cap, "%s/%s", dir, name);
  lzn_quantize_params p = lzn_quantize_default_params();
  p.type = type, p.lazyneuron_layout = lazyneuron_layout;
  check_ok(lzn_model_quantize(in, out, &p), out);
  return out;
}

/* Q8_0 -> F32 -> Q8_0 is lossless (the block's largest value maps back to
 * +-127 with the same scale): every tensor's bytes come back, and the
 * tokenizer and metadata survive both trips. */
START_TEST(q8_0_round_trip_is_lossless) {
  char in[512], dir[512], f32[600], q8[600];
  gguf_fixture(in, sizeof in, "tiny-llama-q8_0.gguf");
  make_folder(dir, sizeof dir, "q8_round_trip");
  quantize_to(in, dir, "f32.gguf", LZN_WEIGHTS_F32, 1, f32, sizeof f32);
  quantize_to(f32, dir, "q8.gguf", LZN_WEIGHTS_Q8_0, 1, q8, sizeof q8);
  ck_assert_int_eq(count_entries(dir), 2);
  lzn_gguf_file a, b, c;
  check_ok(lzn_gguf_open(in, 0, &a), in);
  check_ok(lzn_gguf_open(f32, 0, &b), f32);
  check_ok(lzn_gguf_open(q8, 0, &c), q8);
  ck_assert_uint_eq(a.n_tensors, c.n_tensors);
  int n_f32 = 0;
  for (size_t i = 0; i < a.n_tensors; i++) {
    const lzn_file_tensor *x = &a.tensors[i], *y = lzn_gguf_find_tensor(&c, x->name);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(x->dtype, y->dtype);
    ck_assert_uint_eq(x->n_bytes, y->n_bytes);
    ck_assert_msg(memcmp(x->data, y->data, x->n_bytes) == 0, "%s changed", x->name);
    n_f32 += lzn_gguf_find_tensor(&b, x->name)->dtype == LZN_WEIGHTS_F32;
  }
  ck_assert_int_eq(n_f32, (int)a.n_tensors); /* the middle file really was F32 */
  uint32_t file_type;
  check_ok(lzn_gguf_get_u32(&b, "general.file_type", &file_type), "file_type");
  ck_assert_uint_eq(file_type, 0);
  check_ok(lzn_gguf_get_u32(&c, "general.file_type", &file_type), "file_type");
  ck_assert_uint_eq(file_type, 7);
  for (size_t i = 0; i < a.n_kvs; i++)
    ck_assert_msg(lzn_gguf_find(&c, a.kvs[i].key) != NULL, "%s lost", a.kvs[i].key);
  lzn_gguf_close(&a), lzn_gguf_close(&b), lzn_gguf_close(&c);

  lzn_tokenizer *tok;
  check_ok(lzn_tokenizer_load(q8, &tok), "tokenizer");
  lzn_tokenizer_info ti = {.struct_size = sizeof ti};
  lzn_tokenizer_get_info(tok, &ti);
  ck_assert_str_eq(ti.kind, "byte-level");
  ck_assert_int_eq(ti.eos_id, 2);
  lzn_tokenizer_free(tok);
}
END_TEST

/* (input, type): the output loaded as stored == the input
 * loaded with weight_type = type, bit for bit; and it maps in place. */
typedef struct quant_case {
  const char *file, *fixture;
  lzn_weight_type type;
} quant_case;

static const quant_case quant_cases[] = {
    {"tiny-llama-q8_0.gguf", "models/tiny-llama", LZN_WEIGHTS_Q4_0},
    {"tiny-llama-q8_0.gguf", "models/tiny-llama", LZN_WEIGHTS_F16},
    {"tiny-llama-q4_0.gguf", "models/tiny-llama", LZN_WEIGHTS_BF16},
    {"llama-gqa-cpp-f16.gguf", "llama-gqa", LZN_WEIGHTS_F32},  /* ffn_down transposed here */
    {"llama-gqa-cpp-f16.gguf", "llama-gqa", LZN_WEIGHTS_BF16},
    {"llama-fatrelu-bf16.gguf", "llama-fatrelu", LZN_WEIGHTS_F16},
    {"llama-mqa-pwri.gguf", "llama-mqa", LZN_WEIGHTS_F16},     /* PowerInfer's magic and stock keys */
    {"opt-postln-f16.gguf", "opt-postln", LZN_WEIGHTS_F32},    /* OPT's fc2 transposed here */
    {"opt-untied-bf16.gguf", "opt-untied", LZN_WEIGHTS_F16},
    {"opt-preln.gguf", "opt-preln", LZN_WEIGHTS_BF16},
};

START_TEST(quantized_equals_converted_at_load) {
  const quant_case *q = &quant_cases[_i];
  char in[512], dir[512], sub[32], out[600];
  gguf_fixture(in, sizeof in, q->file);
  snprintf(sub, sizeof sub, "case%d", _i);
  make_folder(dir, sizeof dir, sub);
  quantize_to(in, dir, "out.gguf", q->type, 1, out, sizeof out);
  reference r;
  load_reference(q->fixture, &r);
  lzn_model *converted = load_typed(in, q->type), *written = load_typed(out, LZN_WEIGHTS_AS_STORED);
  lzn_model_info a = {.struct_size = sizeof a}, b = {.struct_size = sizeof b};
  lzn_model_get_info(converted, &a), lzn_model_get_info(written, &b);
  ck_assert_int_eq(b.weight_type, q->type);
  ck_assert_int_eq(a.weight_bytes, b.weight_bytes);
  ck_assert_str_eq(a.architecture, b.architecture);
  ck_assert_uint_eq(written->owned.n, 0); /* every matrix and vector mapped in place */
  ck_assert_str_eq(written->gguf.magic, converted->gguf.magic);
  for (int m = 0; m < 2; m++) {
    const lzn_mlp_mode mode = m ? LZN_MLP_SPARSE : LZN_MLP_DENSE;
    const double d = logits_diff(converted, written, r.tokens, r.n_tokens, mode);
    ck_assert_msg(d == 0.0, "%s -> %d, mode %d: logits differ by %g", q->file, (int)q->type, m, d);
  }
  free(r.logits);
  lzn_model_free(converted), lzn_model_free(written);
}
END_TEST

START_TEST(transposed_down_maps_in_place_kept_down_does_not) {
  char in[512], dir[512], moved[600], kept[600];
  gguf_fixture(in, sizeof in, "opt-postln-f16.gguf");
  make_folder(dir, sizeof dir, "down");
  lzn_model *input = load_typed(in, LZN_WEIGHTS_AS_STORED);
  ck_assert_uint_gt(input->owned.n, 0); /* fc2 transposed at load */
  lzn_model_free(input);
  quantize_to(in, dir, "moved.gguf", LZN_WEIGHTS_F16, 1, moved, sizeof moved);
  quantize_to(in, dir, "kept.gguf", LZN_WEIGHTS_F16, 0, kept, sizeof kept);
  lzn_gguf_file f;
  check_ok(lzn_gguf_open(moved, 0, &f), moved);
  ck_assert_ptr_nonnull(lzn_gguf_find_tensor(&f, "blk.1.ffn_down_t.weight"));
  ck_assert_ptr_null(lzn_gguf_find_tensor(&f, "blk.1.ffn_down.weight"));
  int transposed = 0;
  check_ok(lzn_gguf_get_bool(&f, "lazyneuron.down_transposed", &transposed), "down_transposed");
  ck_assert_int_eq(transposed, 1);
  lzn_gguf_close(&f);
  check_ok(lzn_gguf_open(kept, 0, &f), kept);
  ck_assert_ptr_nonnull(lzn_gguf_find_tensor(&f, "blk.1.ffn_down.weight"));
  ck_assert_ptr_null(lzn_gguf_find_tensor(&f, "blk.1.ffn_down_t.weight"));
  lzn_gguf_close(&f);
  lzn_model *a = load_typed(moved, LZN_WEIGHTS_AS_STORED), *b = load_typed(kept, LZN_WEIGHTS_AS_STORED);
  ck_assert_uint_eq(a->owned.n, 0);
  ck_assert_uint_gt(b->owned.n, 0);
  reference r;
  load_reference("opt-postln", &r);
  ck_assert(logits_diff(a, b, r.tokens, r.n_tokens, LZN_MLP_SPARSE) == 0.0);
  free(r.logits);
  lzn_model_free(a), lzn_model_free(b);
}
END_TEST

/* llama.cpp's rotary row order: put back in Hugging Face's (and said so) in
 * lazyneuron's layout, kept with lazyneuron_layout = 0. */
START_TEST(rope_rows_reordered_in_lazyneuron_layout) {
  char in[512], dir[512], ours[600], kept[600];
  gguf_fixture(in, sizeof in, "llama-gqa-cpp-f16.gguf");
  make_folder(dir, sizeof dir, "rope");
  quantize_to(in, dir, "ours.gguf", LZN_WEIGHTS_F16, 1, ours, sizeof ours);
  quantize_to(in, dir, "kept.gguf", LZN_WEIGHTS_F16, 0, kept, sizeof kept);
  lzn_gguf_file a, b, src;
  check_ok(lzn_gguf_open(ours, 0, &a), ours);
  check_ok(lzn_gguf_open(kept, 0, &b), kept);
  check_ok(lzn_gguf_open(in, 0, &src), in);
  int rotate_half = 0;
  check_ok(lzn_gguf_get_bool(&a, "lazyneuron.rope.rotate_half", &rotate_half), "rotate_half");
  ck_assert_int_eq(rotate_half, 1);
  check_ok(lzn_gguf_get_bool(&b, "lazyneuron.rope.rotate_half", &rotate_half), "kept");
  ck_assert_int_eq(rotate_half, 0); /* as the converter wrote it */
  ck_assert_ptr_nonnull(lzn_gguf_find_tensor(&b, "blk.0.ffn_down.weight"));
  const lzn_file_tensor *q_src = lzn_gguf_find_tensor(&src, "blk.0.attn_q.weight");
  const lzn_file_tensor *q_kept = lzn_gguf_find_tensor(&b, "blk.0.attn_q.weight");
  const lzn_file_tensor *q_ours = lzn_gguf_find_tensor(&a, "blk.0.attn_q.weight");
  ck_assert(memcmp(q_src->data, q_kept->data, q_src->n_bytes) == 0);  /* F16 -> F16: as it was */
  ck_assert(memcmp(q_src->data, q_ours->data, q_src->n_bytes) != 0);  /* reordered */
  lzn_gguf_close(&a), lzn_gguf_close(&b), lzn_gguf_close(&src);
  lzn_model *x = load_typed(ours, LZN_WEIGHTS_AS_STORED), *y = load_typed(kept, LZN_WEIGHTS_AS_STORED);
  ck_assert_uint_eq(x->owned.n, 0);
  ck_assert_uint_gt(y->owned.n, 0); /* q, k reordered and W_down transposed at load */
  reference r;
  load_reference("llama-gqa", &r);
  ck_assert(logits_diff(x, y, r.tokens, r.n_tokens, LZN_MLP_SPARSE) == 0.0);
  free(r.logits);
  lzn_model_free(x), lzn_model_free(y);
}
END_TEST

START_TEST(params_sizes_and_output_over_input) {
  char in[512], dir[512], copy[600];
  gguf_fixture(in, sizeof in, "opt-nobias.gguf");
  make_folder(dir, sizeof dir, "older");
  snprintf(copy, sizeof copy, "%s/model.gguf", dir);
  lzn_gguf_file f;
  check_ok(lzn_gguf_open(in, 0, &f), in);
  write_bytes("older", "model.gguf", f.bytes, f.size);
  lzn_gguf_close(&f);
  /* Only a released struct_size is read (lazyneuron.h, "ABI"): this
   * struct is new in 0.3, so that is its sizeof; another size fails before
   * anything is written. */
  lzn_quantize_params p;
  check_ok(lzn_quantize_params_init(&p, sizeof p), "params_init");
  p.struct_size = offsetof(lzn_quantize_params, type) + sizeof p.type;
  p.type = LZN_WEIGHTS_F16;
  ck_assert_int_eq(lzn_model_quantize(copy, copy, &p), LZN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "struct_size"));
  ck_assert_int_eq(count_entries(dir), 1);
  p.struct_size = sizeof p;
  check_ok(lzn_model_quantize(copy, copy, &p), "in place");
  ck_assert_int_eq(count_entries(dir), 1);
  lzn_model *m = load_typed(copy, LZN_WEIGHTS_AS_STORED);
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_model_get_info(m, &info);
  ck_assert_int_eq(info.weight_type, LZN_WEIGHTS_F16);
  ck_assert_str_eq(info.architecture, "opt");
  lzn_model_free(m);
  /* NULL params: the defaults, Q8_0, which rows of 36 cannot take: the file stays. */
  ck_assert_int_eq(lzn_model_quantize(copy, copy, NULL), LZN_ERR_UNSUPPORTED);
  ck_assert(strstr(lzn_last_error(), "36") != NULL);
  ck_assert_int_eq(count_entries(dir), 1);
  lzn_model_free(load_typed(copy, LZN_WEIGHTS_AS_STORED));
}
END_TEST

static int cancel_at_half(float fraction, void *user) {
  (void)user;
  return fraction < 0.5f;
}

static void bad_type_key(lzn_gguf_writer *w) { check_ok(lzn_gguf_writer_set_string(w, "general.architecture", "gpt2"), "arch"); }

/* Each bad input: a status, words the message names, and no file left. */
START_TEST(bad_inputs_leave_nothing) {
  char dir[512], out[600], in[512], tiny[512], big[600], text[600], truncated[600];
  make_folder(dir, sizeof dir, "bad");
  snprintf(out, sizeof out, "%s/out.gguf", dir);
  gguf_fixture(in, sizeof in, "llama-gqa.gguf");
  gguf_fixture(tiny, sizeof tiny, "tiny.gguf");
  char inputs_dir[512];
  make_folder(inputs_dir, sizeof inputs_dir, "bad_inputs");
  snprintf(big, sizeof big, "%s/big.gguf", inputs_dir);
  rewrite_gguf(in, big, NULL, NULL, "token_embd.weight", 1e6f);
  snprintf(text, sizeof text, "%s/passwd", inputs_dir);
  write_text("bad_inputs", "passwd", "root:x:0:0:root:/root:/bin/bash\n");
  lzn_gguf_file f;
  check_ok(lzn_gguf_open(in, 0, &f), in);
  write_bytes("bad_inputs", "truncated.gguf", f.bytes, f.size / 2);
  lzn_gguf_close(&f);
  snprintf(truncated, sizeof truncated, "%s/truncated.gguf", inputs_dir);
  char gpt2_arch[600];
  snprintf(gpt2_arch, sizeof gpt2_arch, "%s/gpt2.gguf", inputs_dir);
  rewrite_gguf(in, gpt2_arch, "general.architecture", bad_type_key, NULL, 0);

  lzn_quantize_params defaults = lzn_quantize_default_params(), p;
  struct {
    const char *in, *out;
    int field; /* 0 none, 1 struct_size 0, 2 struct_size huge, 3 type AS_STORED, 4 type 99,
                  5 layout 2, 6 F16, 7 cancel, 8 NULL params */
    lzn_status status;
    const char *words[4];
  } rows[] = {
      {NULL, out, 0, LZN_ERR_INVALID_ARG, {"in_path", NULL}},
      {in, NULL, 0, LZN_ERR_INVALID_ARG, {"out_path", NULL}},
      {in, out, 1, LZN_ERR_INVALID_ARG, {"struct_size", NULL}},
      {in, out, 2, LZN_ERR_INVALID_ARG, {"struct_size", NULL}},
      {in, out, 3, LZN_ERR_INVALID_ARG, {"params->type", NULL}},
      {in, out, 4, LZN_ERR_INVALID_ARG, {"params->type = 99", NULL}},
      {in, out, 5, LZN_ERR_INVALID_ARG, {"lazyneuron_layout", NULL}},
      {"/nonexistent/model.gguf", out, 0, LZN_ERR_IO, {"/nonexistent/model.gguf", NULL}},
      {text, out, 0, LZN_ERR_FORMAT, {"passwd", "GGUF", NULL}},
      {truncated, out, 0, LZN_ERR_FORMAT, {"truncated.gguf", NULL}},
      {tiny, out, 0, LZN_ERR_FORMAT, {"tiny.gguf", NULL}},  /* a GGUF, but no model */
      {gpt2_arch, out, 0, LZN_ERR_UNSUPPORTED, {"gpt2", NULL}},
      {in, out, 0, LZN_ERR_UNSUPPORTED, {"token_embd.weight", "40", "Q8_0"}}, /* rows of 40 */
      {big, out, 6, LZN_ERR_FORMAT, {"token_embd.weight", "F16", "row"}},
      {in, out, 7, LZN_ERR_CANCELLED, {"cancelled", NULL}},
      {in, "/nonexistent-folder/out.gguf", 6, LZN_ERR_IO, {"/nonexistent-folder/out.gguf", NULL}},
      {in, dir, 6, LZN_ERR_IO, {"rename", NULL}}, /* the output is a folder */
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    p = defaults;
    if (rows[i].field == 1) p.struct_size = 0;
    if (rows[i].field == 2) p.struct_size = sizeof p + 8;
    if (rows[i].field == 3) p.type = LZN_WEIGHTS_AS_STORED;
    if (rows[i].field == 4) p.type = (lzn_weight_type)99;
    if (rows[i].field == 5) p.lazyneuron_layout = 2;
    if (rows[i].field == 6 || rows[i].field == 7) p.type = LZN_WEIGHTS_F16;
    if (rows[i].field == 7) p.progress = cancel_at_half;
    const lzn_status s = lzn_model_quantize(rows[i].in, rows[i].out, &p);
    ck_assert_msg(s == rows[i].status, "row %zu: %s: %s", i, lzn_status_str(s), lzn_last_error());
    assert_mentions(__LINE__, "bad input", rows[i].words);
    ck_assert_msg(!exists(out), "row %zu left %s", i, out);
    ck_assert_msg(count_entries(dir) == 0, "row %zu left a file in %s", i, dir);
  }
}
END_TEST

/* ------------------------------------------------------------ OPT in GGUF */

typedef struct opt_copy {
  const char *file, *fixture;
  lzn_weight_type folder_type; /* the folder loaded in the GGUF's type */
} opt_copy;

static const opt_copy opt_copies[] = {
    {"opt-preln.gguf", "opt-preln", LZN_WEIGHTS_F32},
    {"opt-postln-f16.gguf", "opt-postln", LZN_WEIGHTS_F16},
    {"opt-proj-preln.gguf", "opt-proj-preln", LZN_WEIGHTS_F32},
    {"opt-nobias.gguf", "opt-nobias", LZN_WEIGHTS_F32},
    {"opt-untied-bf16.gguf", "opt-untied", LZN_WEIGHTS_BF16},
};

START_TEST(opt_gguf_equals_its_folder) {
  const opt_copy *c = &opt_copies[_i];
  char path[512];
  gguf_fixture(path, sizeof path, c->file);
  reference r;
  load_reference(c->fixture, &r);
  lzn_model *gguf = load_typed(path, LZN_WEIGHTS_AS_STORED), *folder = load_typed(r.path, c->folder_type);
  lzn_model_info a = {.struct_size = sizeof a}, b = {.struct_size = sizeof b};
  lzn_model_get_info(gguf, &a), lzn_model_get_info(folder, &b);
  ck_assert_str_eq(a.architecture, "opt");
  ck_assert_int_eq(a.n_layers, b.n_layers);
  ck_assert_int_eq(a.d_model, b.d_model);
  ck_assert_int_eq(a.d_ff, b.d_ff);
  ck_assert_int_eq(a.vocab_size, b.vocab_size);
  ck_assert_int_eq(a.max_positions, b.max_positions);
  ck_assert_int_eq(a.weight_type, b.weight_type);
  for (int m = 0; m < 2; m++) {
    const double d = logits_diff(gguf, folder, r.tokens, r.n_tokens, m ? LZN_MLP_SPARSE : LZN_MLP_DENSE);
    /* The GGUF's W_down is used in place, as stored, and the folder's
     * only transposed (down_t), whose batched product (axpy_gemm) adds
     * the same terms in another order: fp32 rounding only. (F32 was bit
     * for bit while oneDNN ran both; these fixtures' products are small
     * enough for the own kernels now, linalg/gemm.c.) */
    const double bound = 1e-5;
    ck_assert_msg(d <= bound, "%s: GGUF and folder differ by %g", c->file, d);
  }
  if (c->folder_type == LZN_WEIGHTS_F32) { /* and both are the PyTorch reference */
    lzn_context *ctx = make_context(gguf, LZN_MLP_SPARSE, 1);
    float *logits = run_all(ctx, &r);
    ck_assert(max_abs_diff(logits, r.logits, (size_t)r.n_tokens * (size_t)r.vocab) / r.scale <= 1e-4);
    free(logits);
    lzn_context_free(ctx);
  }
  free(r.logits);
  lzn_model_free(gguf), lzn_model_free(folder);
}
END_TEST

static void three_heads(lzn_gguf_writer *w) { check_ok(lzn_gguf_writer_set_u32(w, "opt.attention.head_count", 7), "heads"); }
static void string_flag(lzn_gguf_writer *w) { check_ok(lzn_gguf_writer_set_string(w, "opt.enable_bias", "yes"), "bias"); }
static void no_bias(lzn_gguf_writer *w) { check_ok(lzn_gguf_writer_set_bool(w, "opt.enable_bias", 0), "bias"); }

START_TEST(opt_gguf_bad_metadata) {
  char in[512], dir[512], out[600];
  gguf_fixture(in, sizeof in, "opt-preln.gguf");
  make_folder(dir, sizeof dir, "opt_bad");
  struct {
    const char *skip;
    edit_fn edit;
    const char *name;
    lzn_status status;
    const char *word;
  } rows[] = {
      {"opt.block_count", NULL, "no-layers.gguf", LZN_ERR_FORMAT, "opt.block_count"},
      {"opt.embedding_length", NULL, "no-width.gguf", LZN_ERR_FORMAT, "opt.embedding_length"},
      {NULL, three_heads, "heads.gguf", LZN_ERR_FORMAT, "head_count 7"},
      {NULL, string_flag, "flag.gguf", LZN_ERR_FORMAT, "opt.enable_bias"},
      /* Without biases the file's bias tensors are extra (ignored) but the
       * model loads; the reverse (bias claimed, tensors absent) is tested by
       * opt-nobias.gguf with enable_bias true below. */
      {NULL, no_bias, "no-bias.gguf", LZN_OK, NULL},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    snprintf(out, sizeof out, "%s/%s", dir, rows[i].name);
    rewrite_gguf(in, out, rows[i].skip, rows[i].edit, NULL, 0);
    lzn_model *m = NULL;
    const lzn_status s = lzn_model_load(out, NULL, &m);
    ck_assert_msg(s == rows[i].status, "%s: %s: %s", rows[i].name, lzn_status_str(s), lzn_last_error());
    if (rows[i].word) ck_assert_msg(strstr(lzn_last_error(), rows[i].word), "%s: %s", rows[i].name, lzn_last_error());
    lzn_model_free(m);
  }
  char nobias[512];
  gguf_fixture(nobias, sizeof nobias, "opt-nobias.gguf");
  snprintf(out, sizeof out, "%s/claims-bias.gguf", dir);
  rewrite_gguf(nobias, out, "opt.enable_bias", NULL, NULL, 0); /* default true: biases required */
  lzn_model *m = NULL;
  ck_assert_int_eq(lzn_model_load(out, NULL, &m), LZN_ERR_FORMAT);
  ck_assert(strstr(lzn_last_error(), "blk.0.attn_q.bias") != NULL);
}
END_TEST

/* ----------------------------------------------------- tokenizer in GGUF */

START_TEST(byte_level_tokenizer_from_gguf) {
  char path[512];
  gguf_fixture(path, sizeof path, "tiny-llama-q8_0.gguf");
  lzn_tokenizer *from_gguf, *from_folder;
  check_ok(lzn_tokenizer_load(path, &from_gguf), path);
  check_ok(lzn_tokenizer_load("models/tiny-llama", &from_folder), "folder");
  lzn_tokenizer_info a = {.struct_size = sizeof a}, b = {.struct_size = sizeof b};
  lzn_tokenizer_get_info(from_gguf, &a), lzn_tokenizer_get_info(from_folder, &b);
  ck_assert_str_eq(a.kind, "byte-level");
  ck_assert_int_eq(a.vocab_size, b.vocab_size);
  ck_assert_int_eq(a.bos_id, b.bos_id);
  ck_assert_int_eq(a.eos_id, b.eos_id);
  ck_assert_int_eq(a.add_bos, b.add_bos);
  /* Invalid UTF-8 stays bytes, as from the folder (GPT-2 would make U+FFFD). */
  const char text[] = "A\xff\x02z";
  int32_t ids[8];
  int n;
  check_ok(lzn_tokenize(from_gguf, text, 4, 0, ids, 8, &n), "tokenize");
  ck_assert_int_eq(n, 4);
  ck_assert_int_eq(ids[0], 'A');
  ck_assert_int_eq(ids[1], 255);
  ck_assert_int_eq(ids[2], 2);
  char piece[4];
  size_t len;
  check_ok(lzn_token_to_piece(from_gguf, 255, piece, sizeof piece, &len), "piece");
  ck_assert_int_eq((int)len, 1);
  ck_assert_int_eq((unsigned char)piece[0], 255);
  lzn_tokenizer_free(from_gguf), lzn_tokenizer_free(from_folder);
}
END_TEST

static void tokenizer_word(lzn_gguf_writer *w) { check_ok(lzn_gguf_writer_set_string(w, "lazyneuron.tokenizer.type", "word"), "type"); }
static void bos_and_add_bos(lzn_gguf_writer *w) {
  check_ok(lzn_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 7), "bos");
  check_ok(lzn_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1), "add_bos");
}
static void bos_out_of_range(lzn_gguf_writer *w) { check_ok(lzn_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 256), "bos"); }

START_TEST(tokenizer_metadata_rules) {
  char in[512], gpt2[512], dir[512], out[600];
  gguf_fixture(in, sizeof in, "tiny-llama-q4_0.gguf");
  make_folder(dir, sizeof dir, "tok");
  lzn_tokenizer *t = NULL;
  snprintf(out, sizeof out, "%s/word.gguf", dir);
  rewrite_gguf(in, out, NULL, tokenizer_word, NULL, 0);
  ck_assert_int_eq(lzn_tokenizer_load(out, &t), LZN_ERR_UNSUPPORTED);
  ck_assert(strstr(lzn_last_error(), "\"word\"") != NULL);
  snprintf(out, sizeof out, "%s/bos.gguf", dir);
  rewrite_gguf(in, out, NULL, bos_and_add_bos, NULL, 0);
  check_ok(lzn_tokenizer_load(out, &t), "bos");
  int32_t ids[4];
  int n;
  check_ok(lzn_tokenize(t, "x", 1, 1, ids, 4, &n), "tokenize");
  ck_assert_int_eq(n, 2);
  ck_assert_int_eq(ids[0], 7);
  lzn_tokenizer_info info = {.struct_size = sizeof info};
  lzn_tokenizer_get_info(t, &info);
  ck_assert_int_eq(info.add_bos, 1);
  lzn_tokenizer_free(t);
  snprintf(out, sizeof out, "%s/bos-range.gguf", dir);
  rewrite_gguf(in, out, NULL, bos_out_of_range, NULL, 0);
  ck_assert_int_eq(lzn_tokenizer_load(out, &t), LZN_ERR_FORMAT);
  ck_assert(strstr(lzn_last_error(), "bos_token_id = 256") != NULL);
  /* GPT-2 in GGUF now reads add_bos_token too (lzn-convert writes it for OPT). */
  snprintf(gpt2, sizeof gpt2, "%s/tokenizer/gpt2.gguf", data_dir());
  snprintf(out, sizeof out, "%s/gpt2-bos.gguf", dir);
  rewrite_gguf(gpt2, out, NULL, bos_and_add_bos, NULL, 0);
  check_ok(lzn_tokenizer_load(out, &t), "gpt2");
  lzn_tokenizer_get_info(t, &info);
  ck_assert_str_eq(info.kind, "gpt2");
  ck_assert_int_eq(info.add_bos, 1);
  ck_assert_int_eq(info.bos_id, 7);
  lzn_tokenizer_free(t);
}
END_TEST

/* ------------------------------------------------------- not a model file */

START_TEST(plain_files_are_not_models) {
  char dir[512], path[600];
  make_folder(dir, sizeof dir, "plain");
  const unsigned char random_bytes[32] = {0x8e, 0x11, 0x42, 0xf0, 0x09, 0x5c, 0xd3, 0x77, 0xa1, 0x3b};
  write_text("plain", "passwd", "root:x:0:0:root:/root:/bin/bash\n");
  write_bytes("plain", "x.gguf", random_bytes, sizeof random_bytes);
  write_bytes("plain", "empty.bin", "", 0);
  const char *names[] = {"passwd", "x.gguf", "empty.bin"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    lzn_model *m = NULL;
    ck_assert_int_eq(lzn_model_load(path, NULL, &m), LZN_ERR_FORMAT);
    ck_assert_ptr_null(m);
    const char *words[] = {names[i], "not a GGUF or safetensors file", NULL};
    assert_mentions(__LINE__, names[i], words);
  }
  /* Something that starts like safetensors still goes to its parser (and its
   * config.json). */
  const unsigned char st_head[16] = {6, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' '};
  write_bytes("plain", "model.safetensors", st_head, 14);
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  lzn_model *m = NULL;
  ck_assert_int_eq(lzn_model_load(path, NULL, &m), LZN_ERR_IO);
  ck_assert(strstr(lzn_last_error(), "config.json") != NULL);
}
END_TEST

static Suite *quantize_suite(void) {
  Suite *s = suite_create("quantize");
  TCase *writer = tcase_create("writer");
  tcase_add_unchecked_fixture(writer, make_tmp_root, remove_tmp_root);
  tcase_add_test(writer, writer_round_trip);
  tcase_add_test(writer, writer_rules);
  suite_add_tcase(s, writer);
  TCase *quantize = tcase_create("quantize");
  tcase_add_unchecked_fixture(quantize, make_tmp_root, remove_tmp_root);
  tcase_set_timeout(quantize, 120);
  tcase_add_test(quantize, q8_0_round_trip_is_lossless);
  tcase_add_loop_test(quantize, quantized_equals_converted_at_load, 0,
                      (int)(sizeof quant_cases / sizeof quant_cases[0]));
  tcase_add_test(quantize, transposed_down_maps_in_place_kept_down_does_not);
  tcase_add_test(quantize, rope_rows_reordered_in_lazyneuron_layout);
  tcase_add_test(quantize, params_sizes_and_output_over_input);
  tcase_add_test(quantize, bad_inputs_leave_nothing);
  suite_add_tcase(s, quantize);
  TCase *opt = tcase_create("opt_gguf");
  tcase_add_unchecked_fixture(opt, make_tmp_root, remove_tmp_root);
  tcase_add_loop_test(opt, opt_gguf_equals_its_folder, 0, (int)(sizeof opt_copies / sizeof opt_copies[0]));
  tcase_add_test(opt, opt_gguf_bad_metadata);
  suite_add_tcase(s, opt);
  TCase *text = tcase_create("tokenizer");
  tcase_add_unchecked_fixture(text, make_tmp_root, remove_tmp_root);
  tcase_add_test(text, byte_level_tokenizer_from_gguf);
  tcase_add_test(text, tokenizer_metadata_rules);
  tcase_add_test(text, plain_files_are_not_models);
  suite_add_tcase(s, text);
  return s;
}

int main(void) { return run_suite(quantize_suite()); }
