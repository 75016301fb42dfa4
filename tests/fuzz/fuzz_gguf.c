/*
 * fuzz_gguf.c: lzn_gguf_parse on arbitrary bytes, then what reads a parsed
 * file's metadata: the architecture's configuration (lzn_arch_parse_gguf:
 * opt.* or llama.* keys) and the tokenizer (tokenizer.ggml.* arrays,
 * lazyneuron.tokenizer.type), which tokenizes and detokenizes a short text.
 *
 * Beyond the sanitizers, checks what the parser promises on success: every
 * tensor lies inside the data section at a multiple of the alignment, its
 * byte count is rows x row bytes of its type, no two tensors overlap, both
 * indexes find every entry, every string and array lies inside the image,
 * and a getter succeeds exactly on its own type. Each tensor's first and
 * last bytes and every string's bytes are read, so ASan sees a bad pointer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/arch.h"
#include "format/gguf.h"
#include "fuzz.h"
#include "text/tokenizer.h"

/* Where the bytes go, so the compiler cannot drop the reads. */
static volatile unsigned sink;

static int inside(const uint8_t *data, size_t size, const void *p, size_t n) {
  const uint8_t *b = p;
  return b >= data && b <= data + size && n <= (size_t)(data + size - b);
}

/* Bytes per element of the fixed-size value types. */
static size_t element_size(lzn_gguf_type t) {
  switch (t) {
  case LZN_GGUF_U8: case LZN_GGUF_I8: case LZN_GGUF_BOOL: return 1;
  case LZN_GGUF_U16: case LZN_GGUF_I16: return 2;
  case LZN_GGUF_U32: case LZN_GGUF_I32: case LZN_GGUF_F32: return 4;
  case LZN_GGUF_U64: case LZN_GGUF_I64: case LZN_GGUF_F64: return 8;
  default: return 0;
  }
}

static void check_tensors(const lzn_gguf_file *f, const uint8_t *data, size_t size) {
  const uint8_t *section = data + f->data_start;
  FUZZ_CHECK(f->data_start <= size);
  for (size_t i = 0; i < f->n_tensors; i++) {
    const lzn_file_tensor *t = &f->tensors[i];
    FUZZ_CHECK(t->name != NULL && t->file == f->path);
    FUZZ_CHECK(lzn_gguf_find_tensor(f, t->name) == t);
    FUZZ_CHECK(t->n_dims >= 1 && t->n_dims <= LZN_GGUF_MAX_DIMS);
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++) {
      FUZZ_CHECK(t->shape[d] >= 1);
      n *= t->shape[d];
    }
    FUZZ_CHECK(n == t->n_elements);
    const int64_t cols = t->shape[t->n_dims - 1];
    FUZZ_CHECK(cols % (int64_t)lzn_wtype_block_size(t->dtype) == 0);
    FUZZ_CHECK((uint64_t)(n / cols) * lzn_wtype_row_bytes(t->dtype, (size_t)cols) == t->n_bytes);
    FUZZ_CHECK(t->data_offset % f->alignment == 0);
    FUZZ_CHECK((const uint8_t *)t->data == section + t->data_offset);
    FUZZ_CHECK(t->n_bytes >= 1 && inside(data, size, t->data, t->n_bytes));
    const uint8_t *bytes = t->data;
    sink = bytes[0] + bytes[t->n_bytes - 1];
    for (size_t j = 0; j < i; j++) { /* quadratic, but fuzz inputs are small */
      const lzn_file_tensor *u = &f->tensors[j];
      FUZZ_CHECK(t->data_offset >= u->data_offset + u->n_bytes || u->data_offset >= t->data_offset + t->n_bytes);
    }
  }
}

/* Each getter succeeds on its own type only. */
static void check_getters(const lzn_gguf_file *f, const lzn_gguf_kv *kv) {
  const int scalar = kv->type != LZN_GGUF_ARRAY;
  union {
    uint8_t u8;
    int8_t i8;
    uint16_t u16;
    int16_t i16;
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    int64_t i64;
    float f32;
    double f64;
    int flag;
    lzn_gguf_string s;
  } v;
  FUZZ_CHECK((lzn_gguf_get_u8(f, kv->key, &v.u8) == LZN_OK) == (scalar && kv->type == LZN_GGUF_U8));
  FUZZ_CHECK((lzn_gguf_get_i8(f, kv->key, &v.i8) == LZN_OK) == (scalar && kv->type == LZN_GGUF_I8));
  FUZZ_CHECK((lzn_gguf_get_u16(f, kv->key, &v.u16) == LZN_OK) == (scalar && kv->type == LZN_GGUF_U16));
  FUZZ_CHECK((lzn_gguf_get_i16(f, kv->key, &v.i16) == LZN_OK) == (scalar && kv->type == LZN_GGUF_I16));
  FUZZ_CHECK((lzn_gguf_get_u32(f, kv->key, &v.u32) == LZN_OK) == (scalar && kv->type == LZN_GGUF_U32));
  FUZZ_CHECK((lzn_gguf_get_i32(f, kv->key, &v.i32) == LZN_OK) == (scalar && kv->type == LZN_GGUF_I32));
  FUZZ_CHECK((lzn_gguf_get_u64(f, kv->key, &v.u64) == LZN_OK) == (scalar && kv->type == LZN_GGUF_U64));
  FUZZ_CHECK((lzn_gguf_get_i64(f, kv->key, &v.i64) == LZN_OK) == (scalar && kv->type == LZN_GGUF_I64));
  FUZZ_CHECK((lzn_gguf_get_f32(f, kv->key, &v.f32) == LZN_OK) == (scalar && kv->type == LZN_GGUF_F32));
  FUZZ_CHECK((lzn_gguf_get_f64(f, kv->key, &v.f64) == LZN_OK) == (scalar && kv->type == LZN_GGUF_F64));
  FUZZ_CHECK((lzn_gguf_get_bool(f, kv->key, &v.flag) == LZN_OK) == (scalar && kv->type == LZN_GGUF_BOOL));
  FUZZ_CHECK((lzn_gguf_get_string(f, kv->key, &v.s) == LZN_OK) == (scalar && kv->type == LZN_GGUF_STRING));
  const lzn_gguf_kv *array;
  FUZZ_CHECK((lzn_gguf_get_array(f, kv->key, kv->elem_type, &array) == LZN_OK) == !scalar);
}

static void check_metadata(const lzn_gguf_file *f, const uint8_t *data, size_t size) {
  for (size_t i = 0; i < f->n_kvs; i++) {
    const lzn_gguf_kv *kv = &f->kvs[i];
    FUZZ_CHECK(kv->key != NULL && lzn_gguf_find(f, kv->key) == kv);
    FUZZ_CHECK(kv->elem_type < LZN_GGUF_TYPE_COUNT && kv->elem_type != LZN_GGUF_ARRAY);
    FUZZ_CHECK(kv->type == LZN_GGUF_ARRAY || (kv->type == kv->elem_type && kv->n == 1));
    if (kv->elem_type == LZN_GGUF_STRING) {
      for (uint64_t j = 0; j < kv->n; j++) {
        const lzn_gguf_string s = lzn_gguf_elem_string(kv, j);
        FUZZ_CHECK(inside(data, size, s.data, s.len));
        for (size_t k = 0; k < s.len; k++) sink += (unsigned char)s.data[k];
      }
    } else {
      const size_t elem = element_size(kv->elem_type);
      FUZZ_CHECK(elem != 0 && kv->n <= size / elem && inside(data, size, kv->data, (size_t)kv->n * elem));
      if (kv->n) {
        sink += lzn_gguf_elem_u8(kv, 0) + lzn_gguf_elem_u32(kv, kv->n - 1) + (unsigned)lzn_gguf_elem_bool(kv, 0);
        sink += (lzn_gguf_elem_f64(kv, kv->n - 1) != 0.0) + (unsigned)lzn_gguf_elem_u64(kv, kv->n - 1);
      }
    }
    check_getters(f, kv);
  }
  FUZZ_CHECK(f->alignment != 0 && (f->alignment & (f->alignment - 1)) == 0);
}

/* A configuration that parses is one a model could be built from. */
static void check_config(const lzn_gguf_file *f) {
  lzn_hf_config c;
  if (lzn_arch_parse_gguf(f, &c) != LZN_OK) {
    FUZZ_CHECK(lzn_last_error()[0] != '\0');
    return;
  }
  if (c.family == LZN_ARCH_OPT)
    FUZZ_CHECK(c.opt.hidden_size >= 1 && c.opt.num_attention_heads >= 1 &&
               c.opt.hidden_size % c.opt.num_attention_heads == 0 && c.opt.vocab_size >= 1);
  else
    FUZZ_CHECK(c.llama.hidden_size >= 1 && c.llama.head_dim >= 2 && c.llama.num_key_value_heads >= 1 &&
               c.llama.num_attention_heads % c.llama.num_key_value_heads == 0 && c.llama.vocab_size >= 1);
}

/* A tokenizer that loads tokenizes a text into ids of its vocabulary and
 * prints them back. */
static void check_tokenizer(const lzn_gguf_file *f) {
  lzn_tokenizer *t = NULL;
  if (lzn_tokenizer_from_gguf(f, &t) != LZN_OK) {
    FUZZ_CHECK(t == NULL);
    return;
  }
  if (t == NULL) return; /* none in the file */
  lzn_tokenizer_info info = {.struct_size = sizeof info};
  FUZZ_CHECK(lzn_tokenizer_get_info(t, &info) == LZN_OK);
  FUZZ_CHECK(info.vocab_size >= 1 && info.bos_id < info.vocab_size && info.eos_id < info.vocab_size);
  static const char text[] = "Hello ab\n\xff a";
  int32_t ids[64];
  int n = 0;
  if (lzn_tokenize(t, text, sizeof text - 1, 1, ids, 64, &n) == LZN_OK) {
    for (int i = 0; i < n; i++) FUZZ_CHECK(ids[i] >= 0 && ids[i] < info.vocab_size);
    char out[512];
    size_t len;
    const lzn_status s = lzn_detokenize(t, ids, n, out, sizeof out, &len);
    FUZZ_CHECK(s == LZN_OK || (s == LZN_ERR_INVALID_ARG && len >= sizeof out));
  }
  lzn_tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lzn_gguf_file file;
  if (lzn_gguf_parse(data, size, NULL, &file) != LZN_OK) {
    FUZZ_CHECK(file.tensors == NULL && file.n_tensors == 0 && file.kvs == NULL && file.path == NULL);
    FUZZ_CHECK(lzn_last_error()[0] != '\0');
    return 0;
  }
  FUZZ_CHECK(file.version == LZN_GGUF_VERSION);
  FUZZ_CHECK(strcmp(file.magic, "GGUF") == 0 || strcmp(file.magic, "PWRI") == 0);
  check_metadata(&file, data, size);
  check_tensors(&file, data, size);
  check_config(&file);
  check_tokenizer(&file);
  lzn_gguf_close(&file);
  return 0;
}
