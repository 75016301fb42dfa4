/*
 * gguf.c: GGUF v3 parsing and validation (the layout and the rules are at
 * the top of gguf.h), and the metadata getters.
 *
 * One pass over the file with a bounds-checked reader: header, metadata,
 * tensor infos, then the data section's checks (bounds, alignment,
 * overlap) and the name indexes. Every array grows as entries are parsed,
 * so memory is bounded by the bytes actually read; every count is first
 * checked against what the bytes left could hold, so a claim of 2^60
 * entries fails before anything is allocated.
 */
#include "format/gguf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/file.h"
#include "core/wtype.h"

/* ------------------------------------------------------------------ types */

/* Sizes of the fixed-size value types (0: string and array). */
static const struct {
  const char *name;
  unsigned size;
} value_types[LZN_GGUF_TYPE_COUNT] = {
    {"uint8", 1},  {"int8", 1},   {"uint16", 2}, {"int16", 2},  {"uint32", 4},
    {"int32", 4},  {"float32", 4}, {"bool", 1},  {"string", 0}, {"array", 0},
    {"uint64", 8}, {"int64", 8},  {"float64", 8},
};

const char *lzn_gguf_type_name(lzn_gguf_type type) {
  return (unsigned)type < LZN_GGUF_TYPE_COUNT ? value_types[type].name : "?";
}

size_t lzn_gguf_type_size(lzn_gguf_type type) {
  return (unsigned)type < LZN_GGUF_TYPE_COUNT ? value_types[type].size : 0;
}

/* ggml_type ids, for messages; NULL for ids ggml never used or removed. */
static const char *const ggml_type_names[] = {
    "F32",     "F16",    "Q4_0",    "Q4_1",  NULL,    NULL,    "Q5_0",    "Q5_1",   "Q8_0",
    "Q8_1",    "Q2_K",   "Q3_K",    "Q4_K",  "Q5_K",  "Q6_K",  "Q8_K",    "IQ2_XXS", "IQ2_XS",
    "IQ3_XXS", "IQ1_S",  "IQ4_NL",  "IQ3_S", "IQ2_S", "IQ4_XS", "I8",     "I16",    "I32",
    "I64",     "F64",    "IQ1_M",   "BF16",  NULL,    NULL,    NULL,      "TQ1_0",  "TQ2_0",
    NULL,      NULL,     NULL,      "MXFP4",
};

static const char *ggml_type_name(uint32_t id) {
  const size_t n = sizeof ggml_type_names / sizeof ggml_type_names[0];
  return id < n && ggml_type_names[id] != NULL ? ggml_type_names[id] : "unknown to ggml";
}

/* ----------------------------------------------------------------- reader */

typedef struct reader {
  const unsigned char *bytes;
  size_t size, pos;
  const char *path;
} reader;

static uint64_t read_le(const unsigned char *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

static size_t bytes_left(const reader *r) { return r->size - r->pos; }

/* "truncated: <what> needs N bytes at offset P, but the file ends at S". */
static lzn_status truncated(const reader *r, uint64_t need, const char *what_fmt, va_list args)
    __attribute__((format(printf, 3, 0)));
static lzn_status truncated(const reader *r, uint64_t need, const char *what_fmt, va_list args) {
  char what[256];
  vsnprintf(what, sizeof what, what_fmt, args);
  return lzn_fail(LZN_ERR_FORMAT, "%s: truncated: %s needs %llu bytes at offset %zu, but the file ends at %zu",
                  r->path, what, (unsigned long long)need, r->pos, r->size);
}

/* A little-endian unsigned integer of n bytes; what names it if the file ends. */
static lzn_status read_uint(reader *r, size_t n, uint64_t *out, const char *what_fmt, ...)
    __attribute__((format(printf, 4, 5)));
static lzn_status read_uint(reader *r, size_t n, uint64_t *out, const char *what_fmt, ...) {
  if (n > bytes_left(r)) {
    va_list args;
    va_start(args, what_fmt);
    const lzn_status status = truncated(r, n, what_fmt, args);
    va_end(args);
    return status;
  }
  *out = read_le(r->bytes + r->pos, n);
  r->pos += n;
  return LZN_OK;
}

/* A string: u64 length, then that many bytes (pointed to, not copied). */
static lzn_status read_string(reader *r, lzn_gguf_string *out, const char *what_fmt, ...)
    __attribute__((format(printf, 3, 4)));
static lzn_status read_string(reader *r, lzn_gguf_string *out, const char *what_fmt, ...) {
  lzn_status status = LZN_OK;
  va_list args;
  va_start(args, what_fmt);
  if (bytes_left(r) < 8) {
    status = truncated(r, 8, what_fmt, args);
  } else {
    const uint64_t len = read_le(r->bytes + r->pos, 8);
    if (len > bytes_left(r) - 8) {
      char what[256];
      vsnprintf(what, sizeof what, what_fmt, args);
      status = lzn_fail(LZN_ERR_FORMAT, "%s: %s: string length %llu at offset %zu runs past the end of the file (%zu bytes)",
                        r->path, what, (unsigned long long)len, r->pos, r->size);
    } else {
      out->data = (const char *)r->bytes + r->pos + 8;
      out->len = (size_t)len;
      r->pos += 8 + (size_t)len;
    }
  }
  va_end(args);
  return status;
}

/* A NUL-terminated copy of a key or a name, which must hold no NUL byte. */
static lzn_status copy_name(const reader *r, const lzn_gguf_string *s, const char *what,
                            size_t index, char **out) {
  if (memchr(s->data, '\0', s->len) != NULL)
    return lzn_fail(LZN_ERR_FORMAT, "%s: %s #%zu \"%.*s...\" holds a NUL byte (keys and tensor names must not)",
                    r->path, what, index, (int)strnlen(s->data, s->len), s->data);
  char *copy = malloc(s->len + 1);
  if (copy == NULL)
    return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate %zu bytes for %s #%zu", r->path, s->len + 1, what, index);
  memcpy(copy, s->data, s->len);
  copy[s->len] = '\0';
  *out = copy;
  return LZN_OK;
}

/* Makes room for need elements of elem_size in *array (capacity *cap),
 * doubling; need is bounded by the input, so the growth is too. */
static int reserve(void **array, size_t *cap, size_t need, size_t elem_size) {
  if (need <= *cap) return 1;
  size_t new_cap = *cap ? *cap : 16;
  while (new_cap < need) new_cap *= 2;
  size_t bytes;
  if (__builtin_mul_overflow(new_cap, elem_size, &bytes)) return 0;
  void *grown = realloc(*array, bytes);
  if (grown == NULL) return 0;
  *array = grown;
  *cap = new_cap;
  return 1;
}

/* --------------------------------------------------------------- metadata */

typedef struct parser {
  reader r;
  lzn_gguf_file *out;
  size_t kv_cap, string_cap, tensor_cap;
} parser;

/* "uint32" or "array of uint32" (or "array" for an array of unknown type). */
static const char *describe(const lzn_gguf_kv *kv, char *buf, size_t cap) {
  if (kv->type != LZN_GGUF_ARRAY) return lzn_gguf_type_name(kv->type);
  snprintf(buf, cap, "array of %s", lzn_gguf_type_name(kv->elem_type));
  return buf;
}

static lzn_status read_string_elements(parser *p, lzn_gguf_kv *kv) {
  reader *r = &p->r;
  lzn_gguf_file *f = p->out;
  for (uint64_t i = 0; i < kv->n; i++) {
    if (!reserve((void **)&f->strings, &p->string_cap, f->n_strings + 1, sizeof *f->strings))
      return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate %zu string values", r->path, f->n_strings + 1);
    lzn_status status = kv->type == LZN_GGUF_ARRAY
        ? read_string(r, &f->strings[f->n_strings], "string %llu of array \"%s\"", (unsigned long long)i, kv->key)
        : read_string(r, &f->strings[f->n_strings], "the string value of key \"%s\"", kv->key);
    if (status != LZN_OK) return status;
    f->n_strings++;
  }
  return LZN_OK;
}

/* The value of kv (key and type already read): n elements of elem_type. */
static lzn_status read_elements(parser *p, lzn_gguf_kv *kv) {
  reader *r = &p->r;
  char buf[64];
  if (kv->type == LZN_GGUF_STRING) {
    kv->data = r->bytes + r->pos;
    return read_string_elements(p, kv);
  }
  if (kv->elem_type == LZN_GGUF_STRING) {
    /* Each string takes at least its 8-byte length. */
    if (kv->n > bytes_left(r) / 8)
      return lzn_fail(LZN_ERR_FORMAT, "%s: key \"%s\": an array of %llu strings runs past the end of the file (%zu bytes left hold at most %zu)",
                      r->path, kv->key, (unsigned long long)kv->n, bytes_left(r), bytes_left(r) / 8);
    kv->data = r->bytes + r->pos;
    return read_string_elements(p, kv);
  }
  const unsigned size = value_types[kv->elem_type].size;
  if (kv->n > bytes_left(r) / size) {
    if (kv->type == LZN_GGUF_ARRAY)
      return lzn_fail(LZN_ERR_FORMAT, "%s: key \"%s\": an array of %llu %s (%u bytes each) runs past the end of the file (%zu bytes left)",
                      r->path, kv->key, (unsigned long long)kv->n, lzn_gguf_type_name(kv->elem_type), size,
                      bytes_left(r));
    return lzn_fail(LZN_ERR_FORMAT, "%s: truncated: the %s value of key \"%s\" needs %u bytes at offset %zu, but the file ends at %zu",
                    r->path, describe(kv, buf, sizeof buf), kv->key, size, r->pos, r->size);
  }
  kv->data = r->bytes + r->pos;
  r->pos += (size_t)kv->n * size;
  if (kv->elem_type == LZN_GGUF_BOOL)
    for (uint64_t i = 0; i < kv->n; i++)
      if (kv->data[i] > 1)
        return kv->type == LZN_GGUF_ARRAY
                   ? lzn_fail(LZN_ERR_FORMAT, "%s: key \"%s\": bool element %llu is %u, must be 0 or 1",
                              r->path, kv->key, (unsigned long long)i, kv->data[i])
                   : lzn_fail(LZN_ERR_FORMAT, "%s: key \"%s\": bool is %u, must be 0 or 1", r->path, kv->key,
                              kv->data[i]);
  return LZN_OK;
}

static lzn_status read_kv(parser *p, size_t index) {
  reader *r = &p->r;
  lzn_gguf_file *f = p->out;
  lzn_gguf_string key;
  lzn_status status = read_string(r, &key, "the key of metadata entry #%zu", index);
  if (status != LZN_OK) return status;
  if (!reserve((void **)&f->kvs, &p->kv_cap, f->n_kvs + 1, sizeof *f->kvs))
    return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate %zu metadata entries", r->path, f->n_kvs + 1);
  lzn_gguf_kv *kv = &f->kvs[f->n_kvs];
  memset(kv, 0, sizeof *kv);
  status = copy_name(r, &key, "metadata key", index, &kv->key);
  if (status != LZN_OK) return status;
  f->n_kvs++; /* from here lzn_gguf_close frees the key */
  uint64_t type;
  status = read_uint(r, 4, &type, "the value type of key \"%s\"", kv->key);
  if (status != LZN_OK) return status;
  if (type >= LZN_GGUF_TYPE_COUNT)
    return lzn_fail(LZN_ERR_FORMAT, "%s: key \"%s\": unknown value type %llu (GGUF v3 has types 0 to 12)",
                    r->path, kv->key, (unsigned long long)type);
  kv->type = kv->elem_type = (lzn_gguf_type)type;
  kv->n = 1;
  if (kv->type == LZN_GGUF_ARRAY) {
    uint64_t elem_type, n;
    status = read_uint(r, 4, &elem_type, "the element type of array \"%s\"", kv->key);
    if (status != LZN_OK) return status;
    if (elem_type >= LZN_GGUF_TYPE_COUNT)
      return lzn_fail(LZN_ERR_FORMAT, "%s: key \"%s\": unknown array element type %llu (GGUF v3 has types 0 to 12)",
                      r->path, kv->key, (unsigned long long)elem_type);
    if (elem_type == LZN_GGUF_ARRAY)
      return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: key \"%s\": an array of arrays (nested arrays are valid GGUF, but lazyneuron, like llama.cpp, does not read them)",
                      r->path, kv->key);
    status = read_uint(r, 8, &n, "the length of array \"%s\"", kv->key);
    if (status != LZN_OK) return status;
    kv->elem_type = (lzn_gguf_type)elem_type;
    kv->n = n;
  }
  return read_elements(p, kv);
}

static int compare_kv_keys(const void *a, const void *b) {
  return strcmp((*(const lzn_gguf_kv *const *)a)->key, (*(const lzn_gguf_kv *const *)b)->key);
}

/* Points each string entry at its strings (pushed in entry order), sorts
 * the key index and rejects duplicate keys. */
static lzn_status index_metadata(parser *p) {
  lzn_gguf_file *f = p->out;
  size_t next_string = 0;
  for (size_t i = 0; i < f->n_kvs; i++) {
    lzn_gguf_kv *kv = &f->kvs[i];
    if (kv->elem_type != LZN_GGUF_STRING) continue;
    if (f->strings != NULL) kv->strings = f->strings + next_string; /* NULL: all empty */
    next_string += (size_t)kv->n;
  }
  f->kv_by_key = malloc((f->n_kvs ? f->n_kvs : 1) * sizeof *f->kv_by_key);
  if (f->kv_by_key == NULL)
    return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate the index of %zu metadata keys", p->r.path, f->n_kvs);
  for (size_t i = 0; i < f->n_kvs; i++) f->kv_by_key[i] = &f->kvs[i];
  qsort(f->kv_by_key, f->n_kvs, sizeof *f->kv_by_key, compare_kv_keys);
  for (size_t i = 1; i < f->n_kvs; i++) {
    const lzn_gguf_kv *a = f->kv_by_key[i - 1], *b = f->kv_by_key[i];
    if (strcmp(a->key, b->key) == 0) {
      const size_t ia = (size_t)(a - f->kvs), ib = (size_t)(b - f->kvs);
      return lzn_fail(LZN_ERR_FORMAT, "%s: duplicate key \"%s\" (metadata entries #%zu and #%zu)",
                      p->r.path, a->key, ia < ib ? ia : ib, ia < ib ? ib : ia);
    }
  }
  return LZN_OK;
}

static lzn_status read_alignment(parser *p) {
  lzn_gguf_file *f = p->out;
  f->alignment = LZN_GGUF_DEFAULT_ALIGNMENT;
  if (lzn_gguf_find(f, "general.alignment") == NULL) return LZN_OK;
  uint32_t alignment;
  lzn_status status = lzn_gguf_get_u32(f, "general.alignment", &alignment);
  if (status != LZN_OK) return status;
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    return lzn_fail(LZN_ERR_FORMAT, "%s: general.alignment is %u, must be a power of two",
                    p->r.path, alignment);
  f->alignment = alignment;
  return LZN_OK;
}

/* ----------------------------------------------------------- tensor infos */

/* Tensors whose type lazyneuron does not read keep n_bytes 0 and data NULL
 * (their size is unknown); the first is reported once the file is checked. */
typedef struct unsupported_tensor {
  size_t index; /* into tensors; SIZE_MAX: none */
  uint32_t ggml_type;
  uint64_t ragged_row; /* > 0: a type it reads, but on rows of this many weights, not whole super-blocks */
} unsupported_tensor;

static lzn_status read_shape(reader *r, lzn_file_tensor *t, uint64_t ne[LZN_GGUF_MAX_DIMS]) {
  uint64_t n_dims;
  lzn_status status = read_uint(r, 4, &n_dims, "n_dims of tensor \"%s\"", t->name);
  if (status != LZN_OK) return status;
  if (n_dims == 0 || n_dims > LZN_GGUF_MAX_DIMS)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": n_dims is %llu, must be 1 to %d",
                    r->path, t->name, (unsigned long long)n_dims, LZN_GGUF_MAX_DIMS);
  t->n_dims = (int)n_dims;
  t->n_elements = 1;
  for (int i = 0; i < t->n_dims; i++) {
    status = read_uint(r, 8, &ne[i], "ne[%d] of tensor \"%s\"", i, t->name);
    if (status != LZN_OK) return status;
    if (ne[i] == 0)
      return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": ne[%d] is 0 (a zero dimension)", r->path, t->name, i);
    if (ne[i] > INT64_MAX)
      return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": ne[%d] = %llu overflows: more than 2^63 - 1",
                      r->path, t->name, i, (unsigned long long)ne[i]);
    if (__builtin_mul_overflow(t->n_elements, (int64_t)ne[i], &t->n_elements))
      return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": ne[0..%d] overflows: more than 2^63 - 1 elements",
                      r->path, t->name, i);
  }
  /* outermost first, as tensor.h wants: reverse ggml's innermost-first ne */
  for (int i = 0; i < t->n_dims; i++) t->shape[i] = (int64_t)ne[t->n_dims - 1 - i];
  return LZN_OK;
}

/* dtype, n_bytes, and the rule on blocks, for a type lazyneuron reads. A
 * super-block type (the K-quants) on rows that are not whole super-blocks
 * is UNSUPPORTED rather than FORMAT (issue 23): left unsized like a type
 * lazyneuron does not read, and reported the same way. */
static lzn_status size_tensor(const reader *r, lzn_file_tensor *t, const uint64_t ne[LZN_GGUF_MAX_DIMS],
                              size_t index, unsupported_tensor *unsupported) {
  const size_t block = lzn_wtype_block_size(t->dtype);
  if (!lzn_wtype_fits_row(t->dtype, (size_t)ne[0])) {
    if (unsupported->index == SIZE_MAX) {
      unsupported->index = index;
      unsupported->ggml_type = (uint32_t)lzn_wtype_traits(t->dtype)->ggml_id;
      unsupported->ragged_row = ne[0];
    }
    return LZN_OK;
  }
  if (ne[0] % block != 0)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": ne[0] = %llu is not a multiple of the %s block size %zu",
                    r->path, t->name, (unsigned long long)ne[0], lzn_wtype_name(t->dtype), block);
  uint64_t rows = (uint64_t)t->n_elements / ne[0], bytes;
  if (ne[0] > SIZE_MAX ||
      __builtin_mul_overflow(rows, (uint64_t)lzn_wtype_row_bytes(t->dtype, (size_t)ne[0]), &bytes) ||
      bytes > SIZE_MAX) {
    char buf[128];
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": shape %s of %s overflows: more than 2^64 - 1 bytes",
                    r->path, t->name, lzn_shape_string(buf, sizeof buf, t->shape, t->n_dims),
                    lzn_wtype_name(t->dtype));
  }
  t->n_bytes = (size_t)bytes;
  return LZN_OK;
}

static lzn_status read_tensor_info(parser *p, size_t index, unsupported_tensor *unsupported) {
  reader *r = &p->r;
  lzn_gguf_file *f = p->out;
  lzn_gguf_string name;
  lzn_status status = read_string(r, &name, "the name of tensor #%zu", index);
  if (status != LZN_OK) return status;
  if (!reserve((void **)&f->tensors, &p->tensor_cap, f->n_tensors + 1, sizeof *f->tensors))
    return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate %zu tensors", r->path, f->n_tensors + 1);
  lzn_file_tensor *t = &f->tensors[f->n_tensors];
  memset(t, 0, sizeof *t);
  status = copy_name(r, &name, "tensor name", index, &t->name);
  if (status != LZN_OK) return status;
  f->n_tensors++; /* from here lzn_gguf_close frees the name */
  uint64_t ne[LZN_GGUF_MAX_DIMS], type, offset;
  status = read_shape(r, t, ne);
  if (status == LZN_OK) status = read_uint(r, 4, &type, "the type of tensor \"%s\"", t->name);
  if (status == LZN_OK) status = read_uint(r, 8, &offset, "the offset of tensor \"%s\"", t->name);
  if (status != LZN_OK) return status;
  if (offset % f->alignment != 0)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": offset %llu is misaligned: not a multiple of the alignment %u",
                    r->path, t->name, (unsigned long long)offset, f->alignment);
  if (offset > SIZE_MAX)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": offset %llu is out of bounds (the file is %zu bytes)",
                    r->path, t->name, (unsigned long long)offset, r->size);
  t->data_offset = (size_t)offset;
  t->file = NULL; /* set to f->path once parsing succeeds */
  if (!lzn_wtype_from_ggml((uint32_t)type, &t->dtype)) {
    if (unsupported->index == SIZE_MAX) {
      unsupported->index = f->n_tensors - 1;
      unsupported->ggml_type = (uint32_t)type;
    }
    return LZN_OK;
  }
  return size_tensor(r, t, ne, f->n_tensors - 1, unsupported);
}

/* --------------------------------------------------------- data section */

static int compare_by_offset(const void *a, const void *b) {
  const lzn_file_tensor *x = *(const lzn_file_tensor *const *)a, *y = *(const lzn_file_tensor *const *)b;
  if (x->data_offset != y->data_offset) return x->data_offset < y->data_offset ? -1 : 1;
  return 0;
}

static int compare_by_name(const void *a, const void *b) {
  return strcmp((*(const lzn_file_tensor *const *)a)->name, (*(const lzn_file_tensor *const *)b)->name);
}

/* In bounds, no overlap (tensors of unread types have no known size and are
 * left out), unique names; then the name index. */
static lzn_status place_tensors(parser *p) {
  lzn_gguf_file *f = p->out;
  const char *path = p->r.path;
  const size_t data_len = f->size - f->data_start;
  const unsigned char *data = (const unsigned char *)f->bytes + f->data_start;
  for (size_t i = 0; i < f->n_tensors; i++) {
    lzn_file_tensor *t = &f->tensors[i];
    if (t->n_bytes == 0) continue; /* an unsupported type (every read tensor has >= 1 element) */
    if (t->data_offset > data_len || t->n_bytes > data_len - t->data_offset)
      return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": %zu bytes at offset %zu are out of bounds: the data section is %zu bytes (truncated file?)",
                      path, t->name, t->n_bytes, t->data_offset, data_len);
    t->data = data + t->data_offset;
  }
  f->tensor_by_name = malloc((f->n_tensors ? f->n_tensors : 1) * sizeof *f->tensor_by_name);
  if (f->tensor_by_name == NULL)
    return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate the index of %zu tensors", path, f->n_tensors);
  size_t n_sized = 0;
  for (size_t i = 0; i < f->n_tensors; i++)
    if (f->tensors[i].n_bytes != 0) f->tensor_by_name[n_sized++] = &f->tensors[i];
  qsort(f->tensor_by_name, n_sized, sizeof *f->tensor_by_name, compare_by_offset);
  for (size_t i = 1; i < n_sized; i++) {
    const lzn_file_tensor *a = f->tensor_by_name[i - 1], *b = f->tensor_by_name[i];
    if (b->data_offset < a->data_offset + a->n_bytes)
      return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": bytes [%zu, %zu) overlap tensor \"%s\" [%zu, %zu)",
                      path, b->name, b->data_offset, b->data_offset + b->n_bytes, a->name, a->data_offset,
                      a->data_offset + a->n_bytes);
  }
  for (size_t i = 0; i < f->n_tensors; i++) f->tensor_by_name[i] = &f->tensors[i];
  qsort(f->tensor_by_name, f->n_tensors, sizeof *f->tensor_by_name, compare_by_name);
  for (size_t i = 1; i < f->n_tensors; i++) {
    const lzn_file_tensor *a = f->tensor_by_name[i - 1], *b = f->tensor_by_name[i];
    if (strcmp(a->name, b->name) == 0) {
      const size_t ia = (size_t)(a - f->tensors), ib = (size_t)(b - f->tensors);
      return lzn_fail(LZN_ERR_FORMAT, "%s: duplicate tensor name \"%s\" (tensor infos #%zu and #%zu)",
                      path, a->name, ia < ib ? ia : ib, ia < ib ? ib : ia);
    }
  }
  return LZN_OK;
}

/* ------------------------------------------------------------------ parse */

static lzn_status read_header(parser *p, uint64_t *n_tensors, uint64_t *n_kvs) {
  reader *r = &p->r;
  lzn_gguf_file *f = p->out;
  if (r->size < 4)
    return lzn_fail(LZN_ERR_FORMAT, "%s: truncated: the file is %zu bytes, shorter than the 4-byte magic", r->path, r->size);
  if (memcmp(r->bytes, "GGUF", 4) != 0 && memcmp(r->bytes, "PWRI", 4) != 0)
    return lzn_fail(LZN_ERR_FORMAT, "%s: bad magic: the file starts with %02x %02x %02x %02x, not \"GGUF\" (or PowerInfer's \"PWRI\")",
                    r->path, r->bytes[0], r->bytes[1], r->bytes[2], r->bytes[3]);
  memcpy(f->magic, r->bytes, 4);
  r->pos = 4;
  uint64_t version;
  lzn_status status = read_uint(r, 4, &version, "the version");
  if (status != LZN_OK) return status;
  f->version = (uint32_t)version;
  if (version != LZN_GGUF_VERSION)
    return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: GGUF version %u is not supported (lazyneuron reads version %d%s)",
                    r->path, f->version, LZN_GGUF_VERSION,
                    __builtin_bswap32(f->version) == LZN_GGUF_VERSION ? "; this looks like a big-endian file" : "");
  status = read_uint(r, 8, n_tensors, "tensor_count");
  if (status == LZN_OK) status = read_uint(r, 8, n_kvs, "metadata_kv_count");
  if (status != LZN_OK) return status;
  /* The smallest tensor info is 32 bytes (empty name, one dimension), the
   * smallest metadata entry 13 (empty key, a one-byte value). */
  const size_t left = bytes_left(r);
  if (*n_tensors > left / 32)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor_count %llu is more than the file can hold: %zu bytes left hold at most %zu tensor infos of 32 bytes or more",
                    r->path, (unsigned long long)*n_tensors, left, left / 32);
  const size_t left_for_kvs = left - (size_t)*n_tensors * 32;
  if (*n_kvs > left_for_kvs / 13)
    return lzn_fail(LZN_ERR_FORMAT, "%s: metadata_kv_count %llu is more than the file can hold: %zu bytes left (besides %llu tensor infos) hold at most %zu entries of 13 bytes or more",
                    r->path, (unsigned long long)*n_kvs, left_for_kvs, (unsigned long long)*n_tensors,
                    left_for_kvs / 13);
  return LZN_OK;
}

static lzn_status parse_all(parser *p) {
  lzn_gguf_file *f = p->out;
  reader *r = &p->r;
  uint64_t n_tensors, n_kvs;
  lzn_status status = read_header(p, &n_tensors, &n_kvs);
  for (uint64_t i = 0; status == LZN_OK && i < n_kvs; i++) status = read_kv(p, (size_t)i);
  if (status == LZN_OK) status = index_metadata(p);
  if (status == LZN_OK) status = read_alignment(p);
  unsupported_tensor unsupported = {SIZE_MAX, 0, 0};
  for (uint64_t i = 0; status == LZN_OK && i < n_tensors; i++)
    status = read_tensor_info(p, (size_t)i, &unsupported);
  if (status != LZN_OK) return status;
  /* The data section starts at the next multiple of the alignment. A file
   * without tensors may end before it (llama.cpp's reader allows that). */
  const size_t pad = (f->alignment - r->pos % f->alignment) % f->alignment;
  if (pad > r->size - r->pos) {
    if (f->n_tensors > 0)
      return lzn_fail(LZN_ERR_FORMAT, "%s: truncated: the data section starts at %zu (after padding to the alignment %u), but the file ends at %zu",
                      r->path, r->pos + pad, f->alignment, r->size);
    f->data_start = r->size;
  } else {
    f->data_start = r->pos + pad;
  }
  status = place_tensors(p);
  if (status == LZN_OK && unsupported.index != SIZE_MAX && unsupported.ragged_row) {
    const lzn_file_tensor *t = &f->tensors[unsupported.index];
    char shape[128];
    status = lzn_fail(LZN_ERR_UNSUPPORTED, "%s: tensor \"%s\" (shape %s): %s rows of %llu weights are not whole "
                      "256-weight super-blocks, which lazyneuron reads the K-quants in",
                      r->path, t->name, lzn_shape_string(shape, sizeof shape, t->shape, t->n_dims),
                      lzn_wtype_name(t->dtype), (unsigned long long)unsupported.ragged_row);
  } else if (status == LZN_OK && unsupported.index != SIZE_MAX) {
    char readable[128];
    status = lzn_fail(LZN_ERR_UNSUPPORTED, "%s: tensor \"%s\": ggml type %u (%s) is not supported (lazyneuron reads %s)",
                      r->path, f->tensors[unsupported.index].name, unsupported.ggml_type,
                      ggml_type_name(unsupported.ggml_type), lzn_wtype_list(readable, sizeof readable));
  }
  return status;
}

lzn_status lzn_gguf_parse(const void *bytes, size_t size, const char *path_for_errors,
                          lzn_gguf_file *out) {
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_gguf_parse: out is NULL");
  memset(out, 0, sizeof *out);
  if (bytes == NULL && size != 0) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_gguf_parse: bytes is NULL");
  const char *path = path_for_errors != NULL ? path_for_errors : "(memory)";
  out->path = strdup(path);
  if (out->path == NULL) return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate its path", path);
  out->bytes = (void *)bytes; /* not owned (owns_bytes == 0): never written or freed */
  out->size = size;
  parser p = {.r = {.bytes = bytes, .size = size, .pos = 0, .path = out->path}, .out = out};
  const lzn_status status = parse_all(&p);
  if (status != LZN_OK) {
    lzn_gguf_close(out);
    return status;
  }
  for (size_t i = 0; i < out->n_tensors; i++) out->tensors[i].file = out->path;
  return LZN_OK;
}

void lzn_gguf_close(lzn_gguf_file *f) {
  if (f == NULL) return;
  for (size_t i = 0; i < f->n_kvs; i++) free(f->kvs[i].key);
  for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
  free(f->kvs);
  free(f->kv_by_key);
  free(f->tensors);
  free(f->tensor_by_name);
  free(f->strings);
  if (f->owns_bytes) lzn_file_unload(f->bytes, f->size, f->mapped);
  free(f->path);
  memset(f, 0, sizeof *f);
}

lzn_status lzn_gguf_open(const char *path, int use_mmap, lzn_gguf_file *out) {
  if (out != NULL) memset(out, 0, sizeof *out);
  if (path == NULL || out == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_gguf_open: path and out must not be NULL");
  void *bytes;
  size_t size;
  int mapped;
  lzn_status status = lzn_file_load(path, use_mmap, &bytes, &size, &mapped);
  if (status != LZN_OK) return status;
  status = lzn_gguf_parse(bytes, size, path, out);
  if (status != LZN_OK) {
    lzn_file_unload(bytes, size, mapped);
    return status;
  }
  out->mapped = mapped;
  out->owns_bytes = 1;
  return LZN_OK;
}

/* ----------------------------------------------------------------- lookup */

static int compare_key_to_kv(const void *key, const void *entry) {
  return strcmp(key, (*(const lzn_gguf_kv *const *)entry)->key);
}

static int compare_name_to_tensor(const void *name, const void *entry) {
  return strcmp(name, (*(const lzn_file_tensor *const *)entry)->name);
}

const lzn_gguf_kv *lzn_gguf_find(const lzn_gguf_file *f, const char *key) {
  if (f == NULL || key == NULL || f->kv_by_key == NULL) return NULL;
  const lzn_gguf_kv *const *hit = bsearch(key, f->kv_by_key, f->n_kvs, sizeof *f->kv_by_key, compare_key_to_kv);
  return hit ? *hit : NULL;
}

const lzn_file_tensor *lzn_gguf_find_tensor(const lzn_gguf_file *f, const char *name) {
  if (f == NULL || name == NULL || f->tensor_by_name == NULL) return NULL;
  const lzn_file_tensor *const *hit =
      bsearch(name, f->tensor_by_name, f->n_tensors, sizeof *f->tensor_by_name, compare_name_to_tensor);
  return hit ? *hit : NULL;
}

/* The entry of key, if it holds (an array of, when array) want. */
static lzn_status find_typed(const lzn_gguf_file *f, const char *key, lzn_gguf_type want, int array,
                             const lzn_gguf_kv **out) {
  if (f == NULL || key == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_gguf_get: file and key must not be NULL");
  const char *path = f->path != NULL ? f->path : "(no file)";
  const lzn_gguf_kv *kv = lzn_gguf_find(f, key);
  if (kv == NULL)
    return lzn_fail(LZN_ERR_FORMAT, "%s: missing metadata key \"%s\" (want %s%s)", path, key,
                    array ? "array of " : "", lzn_gguf_type_name(want));
  if ((kv->type == LZN_GGUF_ARRAY) != array || kv->elem_type != want) {
    char buf[64];
    return lzn_fail(LZN_ERR_FORMAT, "%s: key \"%s\" holds %s, not %s%s", path, key,
                    describe(kv, buf, sizeof buf), array ? "array of " : "", lzn_gguf_type_name(want));
  }
  *out = kv;
  return LZN_OK;
}

lzn_status lzn_gguf_get_array(const lzn_gguf_file *f, const char *key, lzn_gguf_type elem_type,
                              const lzn_gguf_kv **out) {
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_gguf_get_array: out is NULL");
  return find_typed(f, key, elem_type, 1, out);
}

/* Element i's bytes, if kv holds elements of type t and i is in range. */
static const unsigned char *element(const lzn_gguf_kv *kv, lzn_gguf_type t, uint64_t i) {
  if (kv == NULL || kv->elem_type != t || i >= kv->n || kv->data == NULL) return NULL;
  return kv->data + i * value_types[t].size;
}

/* Element readers and scalar getters of the fixed-size types: the bits are
 * read little-endian into an unsigned integer of the width, then copied. */
#define LZN_GGUF_ACCESSORS(suffix, ctype, gtype, utype)                                        \
  ctype lzn_gguf_elem_##suffix(const lzn_gguf_kv *kv, uint64_t i) {                            \
    const unsigned char *p = element(kv, gtype, i);                                            \
    const utype bits = p != NULL ? (utype)read_le(p, sizeof(utype)) : 0;                       \
    ctype value;                                                                               \
    memcpy(&value, &bits, sizeof value);                                                       \
    return value;                                                                              \
  }                                                                                            \
  lzn_status lzn_gguf_get_##suffix(const lzn_gguf_file *f, const char *key, ctype *out) {     \
    if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_gguf_get_" #suffix ": out is NULL"); \
    const lzn_gguf_kv *kv;                                                                     \
    const lzn_status status = find_typed(f, key, gtype, 0, &kv);                               \
    if (status == LZN_OK) *out = lzn_gguf_elem_##suffix(kv, 0);                                \
    return status;                                                                             \
  }

LZN_GGUF_ACCESSORS(u8, uint8_t, LZN_GGUF_U8, uint8_t)
LZN_GGUF_ACCESSORS(i8, int8_t, LZN_GGUF_I8, uint8_t)
LZN_GGUF_ACCESSORS(u16, uint16_t, LZN_GGUF_U16, uint16_t)
LZN_GGUF_ACCESSORS(i16, int16_t, LZN_GGUF_I16, uint16_t)
LZN_GGUF_ACCESSORS(u32, uint32_t, LZN_GGUF_U32, uint32_t)
LZN_GGUF_ACCESSORS(i32, int32_t, LZN_GGUF_I32, uint32_t)
LZN_GGUF_ACCESSORS(u64, uint64_t, LZN_GGUF_U64, uint64_t)
LZN_GGUF_ACCESSORS(i64, int64_t, LZN_GGUF_I64, uint64_t)
LZN_GGUF_ACCESSORS(f32, float, LZN_GGUF_F32, uint32_t)
LZN_GGUF_ACCESSORS(f64, double, LZN_GGUF_F64, uint64_t)

int lzn_gguf_elem_bool(const lzn_gguf_kv *kv, uint64_t i) {
  const unsigned char *p = element(kv, LZN_GGUF_BOOL, i);
  return p != NULL && *p != 0;
}

lzn_status lzn_gguf_get_bool(const lzn_gguf_file *f, const char *key, int *out) {
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_gguf_get_bool: out is NULL");
  const lzn_gguf_kv *kv;
  const lzn_status status = find_typed(f, key, LZN_GGUF_BOOL, 0, &kv);
  if (status == LZN_OK) *out = lzn_gguf_elem_bool(kv, 0);
  return status;
}

lzn_gguf_string lzn_gguf_elem_string(const lzn_gguf_kv *kv, uint64_t i) {
  const lzn_gguf_string empty = {"", 0};
  if (kv == NULL || kv->elem_type != LZN_GGUF_STRING || i >= kv->n || kv->strings == NULL) return empty;
  return kv->strings[i];
}

lzn_status lzn_gguf_get_string(const lzn_gguf_file *f, const char *key, lzn_gguf_string *out) {
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_gguf_get_string: out is NULL");
  const lzn_gguf_kv *kv;
  const lzn_status status = find_typed(f, key, LZN_GGUF_STRING, 0, &kv);
  if (status == LZN_OK) *out = lzn_gguf_elem_string(kv, 0);
  return status;
}
