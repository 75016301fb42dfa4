/*
 * safetensors.c: safetensors parsing and validation (one file; the folder
 * and its shards are st_index.c).
 *
 * The validation follows the reference implementation (huggingface/safetensors,
 * SafeTensors::read_metadata + Metadata::validate): a header length that fits
 * in the file and under 100 MB, a UTF-8 JSON object starting with '{',
 * checked shape x dtype arithmetic, and data_offsets that tile the data
 * section exactly, with no hole, overlap or trailing byte. Every allocation
 * is bounded by the size of the input: a tensor entry takes at least a few
 * dozen header bytes, so the tensor array never outgrows the header.
 */
#include "format/safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/file.h"
#include "core/json.h"

/* ------------------------------------------------------------------ dtypes */

/* Every dtype the reference knows. Sizes are in bits because F4 and F6 pack
 * several elements per byte. Only the first three are read by lazyneuron;
 * the others are valid safetensors (so: UNSUPPORTED, not FORMAT). */
typedef struct dtype_info {
  const char *name;
  unsigned bits;
  int supported;
  lzn_weight_type dtype; /* meaningful when supported */
} dtype_info;

static const dtype_info known_dtypes[] = {
    {"F32", 32, 1, LZN_WEIGHTS_F32},    {"F16", 16, 1, LZN_WEIGHTS_F16},
    {"BF16", 16, 1, LZN_WEIGHTS_BF16},  {"F64", 64, 0, LZN_WEIGHTS_F32},
    {"C64", 64, 0, LZN_WEIGHTS_F32},    {"I64", 64, 0, LZN_WEIGHTS_F32},
    {"U64", 64, 0, LZN_WEIGHTS_F32},    {"I32", 32, 0, LZN_WEIGHTS_F32},
    {"U32", 32, 0, LZN_WEIGHTS_F32},    {"I16", 16, 0, LZN_WEIGHTS_F32},
    {"U16", 16, 0, LZN_WEIGHTS_F32},    {"I8", 8, 0, LZN_WEIGHTS_F32},
    {"U8", 8, 0, LZN_WEIGHTS_F32},      {"BOOL", 8, 0, LZN_WEIGHTS_F32},
    {"F8_E4M3", 8, 0, LZN_WEIGHTS_F32}, {"F8_E5M2", 8, 0, LZN_WEIGHTS_F32},
    {"F8_E8M0", 8, 0, LZN_WEIGHTS_F32}, {"F6_E2M3", 6, 0, LZN_WEIGHTS_F32},
    {"F6_E3M2", 6, 0, LZN_WEIGHTS_F32}, {"F4", 4, 0, LZN_WEIGHTS_F32},
};

static const dtype_info *dtype_lookup(const char *name) {
  for (size_t i = 0; i < sizeof known_dtypes / sizeof known_dtypes[0]; i++)
    if (strcmp(known_dtypes[i].name, name) == 0) return &known_dtypes[i];
  return NULL;
}


/* ------------------------------------------------------------ header parse */

/* A JSON integer >= 0 (reals like 3.0, strings like "3" and negatives are not). */
static int is_non_negative_integer(const json_t *v) {
  return json_is_integer(v) && json_integer_value(v) >= 0;
}

/* Checks "__metadata__" (an object of strings) and keeps a copy in out. */
static lzn_status read_metadata(const char *path, const json_t *metadata, lzn_st_file *out) {
  if (!json_is_object(metadata))
    return lzn_fail(LZN_ERR_FORMAT, "%s: \"__metadata__\" must be an object of strings, got %s",
                    path, lzn_json_kind(metadata));
  const char *key;
  const json_t *value;
  json_object_foreach((json_t *)metadata, key, value) {
    if (!json_is_string(value))
      return lzn_fail(LZN_ERR_FORMAT, "%s: \"__metadata__\" entry \"%s\" must be a string, got %s",
                      path, key, lzn_json_kind(value));
  }
  const size_t n = json_object_size(metadata);
  out->metadata = calloc(n ? n : 1, sizeof *out->metadata);
  if (out->metadata == NULL) return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate the metadata", path);
  json_object_foreach((json_t *)metadata, key, value) {
    lzn_st_meta *e = &out->metadata[out->n_metadata];
    e->key = strdup(key), e->value = strdup(json_string_value(value));
    out->n_metadata++;
    if (e->key == NULL || e->value == NULL)
      return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate the metadata", path);
  }
  return LZN_OK;
}

static void free_metadata(lzn_st_file *f) {
  for (size_t i = 0; i < f->n_metadata; i++) free(f->metadata[i].key), free(f->metadata[i].value);
  free(f->metadata);
  f->metadata = NULL, f->n_metadata = 0;
}

static lzn_status parse_shape(const char *path, const char *name, const json_t *shape,
                              lzn_st_tensor *t) {
  if (shape == NULL)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": missing \"shape\"", path, name);
  if (!json_is_array(shape))
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": \"shape\" must be an array, got %s",
                    path, name, lzn_json_kind(shape));
  const size_t n_dims = json_array_size(shape);
  if (n_dims > LZN_ST_MAX_DIMS)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": shape has %zu dimensions, more than %d",
                    path, name, n_dims, LZN_ST_MAX_DIMS);
  t->n_dims = (int)n_dims;
  t->n_elements = 1;
  for (size_t i = 0; i < n_dims; i++) {
    const json_t *dim = json_array_get(shape, i);
    if (!is_non_negative_integer(dim))
      return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": shape[%zu] must be a non-negative integer, got %s",
                      path, name, i, json_is_integer(dim) ? "a negative integer" : lzn_json_kind(dim));
    t->shape[i] = (int64_t)json_integer_value(dim);
    if (__builtin_mul_overflow(t->n_elements, t->shape[i], &t->n_elements)) {
      char buf[256];
      return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": shape %s%s overflows: more than 2^63 - 1 elements",
                      path, name, lzn_shape_string(buf, sizeof buf, t->shape, (int)i + 1),
                      i + 1 < n_dims ? " (and more)" : "");
    }
  }
  return LZN_OK;
}

static lzn_status parse_data_offsets(const char *path, const char *name, const json_t *offsets,
                                     size_t data_len, uint64_t *begin, uint64_t *end) {
  if (offsets == NULL)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": missing \"data_offsets\"", path, name);
  if (!json_is_array(offsets) || json_array_size(offsets) != 2 ||
      !is_non_negative_integer(json_array_get(offsets, 0)) ||
      !is_non_negative_integer(json_array_get(offsets, 1)))
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": \"data_offsets\" must be an array of 2 non-negative integers",
                    path, name);
  *begin = (uint64_t)json_integer_value(json_array_get(offsets, 0));
  *end = (uint64_t)json_integer_value(json_array_get(offsets, 1));
  if (*begin > *end)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": data_offsets [%llu, %llu] begin after they end",
                    path, name, (unsigned long long)*begin, (unsigned long long)*end);
  if (*end > data_len)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": data_offsets [%llu, %llu] run past the end of the data section (%zu bytes)",
                    path, name, (unsigned long long)*begin, (unsigned long long)*end, data_len);
  return LZN_OK;
}

/* shape x dtype must be exactly the bytes that data_offsets span. */
static lzn_status check_byte_count(const char *path, const char *name, const lzn_st_tensor *t,
                                   const dtype_info *dtype, uint64_t span) {
  char buf[256];
  uint64_t bits;
  if (__builtin_mul_overflow((uint64_t)t->n_elements, (uint64_t)dtype->bits, &bits))
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": shape %s x %s overflows 64 bits",
                    path, name, lzn_shape_string(buf, sizeof buf, t->shape, t->n_dims), dtype->name);
  if (bits % 8 != 0)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": shape %s x %s is not a whole number of bytes",
                    path, name, lzn_shape_string(buf, sizeof buf, t->shape, t->n_dims), dtype->name);
  if (bits / 8 != span)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": shape %s x %s is %llu bytes but data_offsets span %llu",
                    path, name, lzn_shape_string(buf, sizeof buf, t->shape, t->n_dims), dtype->name,
                    (unsigned long long)(bits / 8), (unsigned long long)span);
  return LZN_OK;
}

/* Fills t (but for name, data and file) from one header entry. *dtype_out is
 * the entry's dtype, which may be one lazyneuron does not read. */
static lzn_status parse_entry(const char *path, const char *name, const json_t *entry,
                              size_t data_len, lzn_st_tensor *t, const dtype_info **dtype_out) {
  if (!json_is_object(entry))
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": entry must be an object, got %s",
                    path, name, lzn_json_kind(entry));
  const json_t *dtype_json = json_object_get(entry, "dtype");
  if (dtype_json == NULL)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": missing \"dtype\"", path, name);
  if (!json_is_string(dtype_json))
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": \"dtype\" must be a string, got %s",
                    path, name, lzn_json_kind(dtype_json));
  const dtype_info *dtype = dtype_lookup(json_string_value(dtype_json));
  if (dtype == NULL)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": unknown dtype \"%s\"",
                    path, name, json_string_value(dtype_json));
  lzn_status status = parse_shape(path, name, json_object_get(entry, "shape"), t);
  if (status != LZN_OK) return status;
  uint64_t begin = 0, end = 0;
  status = parse_data_offsets(path, name, json_object_get(entry, "data_offsets"), data_len, &begin, &end);
  if (status != LZN_OK) return status;
  status = check_byte_count(path, name, t, dtype, end - begin);
  if (status != LZN_OK) return status;
  t->dtype = dtype->dtype;
  t->data_offset = (size_t)begin;
  t->n_bytes = (size_t)(end - begin);
  *dtype_out = dtype;
  return LZN_OK;
}

/* File order; an empty tensor sorts before a non-empty one at the same offset,
 * as in the reference, which sorts by the (begin, end) pair. */
static int compare_by_offset(const void *a, const void *b) {
  const lzn_st_tensor *x = a, *y = b;
  if (x->data_offset != y->data_offset) return x->data_offset < y->data_offset ? -1 : 1;
  if (x->n_bytes != y->n_bytes) return x->n_bytes < y->n_bytes ? -1 : 1;
  return 0;
}

/* Sorted by offset, the tensors must tile [0, data_len) exactly. */
static lzn_status check_tiling(const char *path, const lzn_st_tensor *tensors, size_t n,
                               size_t data_len) {
  size_t expected = 0;
  for (size_t i = 0; i < n; i++) {
    const lzn_st_tensor *t = &tensors[i];
    if (t->data_offset > expected && i == 0)
      return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": data_offsets begin at %zu, but the first tensor must begin at 0 (a hole)",
                      path, t->name, t->data_offset);
    if (t->data_offset > expected)
      return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": data_offsets begin at %zu, but tensor \"%s\" ends at %zu (a hole of %zu bytes)",
                      path, t->name, t->data_offset, tensors[i - 1].name, expected, t->data_offset - expected);
    if (t->data_offset < expected)
      return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": data_offsets [%zu, %zu] overlap tensor \"%s\" [%zu, %zu]",
                      path, t->name, t->data_offset, t->data_offset + t->n_bytes, tensors[i - 1].name,
                      tensors[i - 1].data_offset, expected);
    expected = t->data_offset + t->n_bytes;
  }
  if (expected != data_len)
    return lzn_fail(LZN_ERR_FORMAT, "%s: the data section is %zu bytes but the tensors end at %zu (%zu trailing bytes)",
                    path, data_len, expected, data_len - expected);
  return LZN_OK;
}

static void free_tensors(lzn_st_tensor *tensors, size_t n) {
  for (size_t i = 0; i < n; i++) free(tensors[i].name);
  free(tensors);
}

/* Builds out->tensors from the header object. A dtype that is valid but not
 * read by lazyneuron is reported only once the whole file has proven
 * well-formed, so FORMAT always means a broken file. */
static lzn_status parse_tensors(const char *path, json_t *header, const unsigned char *data,
                                size_t data_len, lzn_st_file *out) {
  const size_t n_entries = json_object_size(header);
  lzn_st_tensor *tensors = calloc(n_entries ? n_entries : 1, sizeof *tensors);
  if (tensors == NULL)
    return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate %zu tensor entries", path, n_entries);
  size_t n = 0;
  const char *unsupported_name = NULL, *unsupported_dtype = NULL;
  lzn_status status = LZN_OK;
  const char *key;
  json_t *value;
  json_object_foreach(header, key, value) {
    if (strcmp(key, "__metadata__") == 0) {
      status = read_metadata(path, value, out);
    } else {
      lzn_st_tensor *t = &tensors[n];
      const dtype_info *dtype = NULL;
      status = parse_entry(path, key, value, data_len, t, &dtype);
      if (status != LZN_OK) break;
      t->name = strdup(key);
      if (t->name == NULL) {
        status = lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate the name of tensor \"%s\"", path, key);
        break;
      }
      n++;
      t->data = data + t->data_offset;
      if (!dtype->supported && unsupported_name == NULL) {
        unsupported_name = t->name;
        unsupported_dtype = dtype->name;
      }
    }
    if (status != LZN_OK) break;
  }
  if (status == LZN_OK) {
    qsort(tensors, n, sizeof *tensors, compare_by_offset);
    status = check_tiling(path, tensors, n, data_len);
  }
  if (status == LZN_OK && unsupported_name != NULL)
    status = lzn_fail(LZN_ERR_UNSUPPORTED, "%s: tensor \"%s\": dtype %s is not supported (lazyneuron reads F32, F16 and BF16)",
                      path, unsupported_name, unsupported_dtype);
  if (status != LZN_OK) {
    free_tensors(tensors, n);
    free_metadata(out);
    return status;
  }
  out->tensors = tensors;
  out->n_tensors = n;
  return LZN_OK;
}

static uint64_t read_u64_le(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* The header's JSON object, after the length checks. */
static lzn_status load_header(const char *path, const unsigned char *bytes, size_t size,
                              json_t **header_out, size_t *header_len) {
  if (size < 8)
    return lzn_fail(LZN_ERR_FORMAT, "%s: file is %zu bytes, shorter than the 8-byte header length", path, size);
  const uint64_t n = read_u64_le(bytes);
  if (n > LZN_ST_MAX_HEADER_SIZE)
    return lzn_fail(LZN_ERR_FORMAT, "%s: header length %llu is over the limit of %u bytes",
                    path, (unsigned long long)n, LZN_ST_MAX_HEADER_SIZE);
  if (n > size - 8)
    return lzn_fail(LZN_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%zu bytes)",
                    path, (unsigned long long)n, size);
  const char *text = (const char *)bytes + 8;
  /* The reference insists on '{' first; it allows trailing spaces (padding). */
  if (n == 0 || text[0] != '{')
    return lzn_fail(LZN_ERR_FORMAT, "%s: header does not start with '{' (it must be a JSON object)", path);
  json_error_t error;
  json_t *header = json_loadb(text, (size_t)n, JSON_REJECT_DUPLICATES, &error);
  if (header == NULL && json_error_code(&error) == json_error_invalid_utf8)
    return lzn_fail(LZN_ERR_FORMAT, "%s: header is not valid UTF-8 (line %d, column %d: %s)",
                    path, error.line, error.column, error.text);
  if (header == NULL)
    return lzn_fail(LZN_ERR_FORMAT, "%s: header is not valid JSON (line %d, column %d: %s)",
                    path, error.line, error.column, error.text);
  if (!json_is_object(header)) {
    json_decref(header);
    return lzn_fail(LZN_ERR_FORMAT, "%s: header is not a JSON object", path);
  }
  *header_out = header;
  *header_len = (size_t)n;
  return LZN_OK;
}

lzn_status lzn_st_parse(const void *bytes, size_t size, const char *path_for_errors,
                        lzn_st_file *out) {
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_st_parse: out is NULL");
  memset(out, 0, sizeof *out);
  if (bytes == NULL && size != 0) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_st_parse: bytes is NULL");
  const char *path = path_for_errors != NULL ? path_for_errors : "(memory)";
  json_t *header;
  size_t header_len;
  lzn_status status = load_header(path, bytes, size, &header, &header_len);
  if (status != LZN_OK) return status;
  out->path = strdup(path);
  if (out->path == NULL) {
    json_decref(header);
    return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate its path", path);
  }
  const unsigned char *data = (const unsigned char *)bytes + 8 + header_len;
  status = parse_tensors(path, header, data, size - 8 - header_len, out);
  json_decref(header);
  if (status != LZN_OK) {
    lzn_st_close(out);
    return status;
  }
  for (size_t i = 0; i < out->n_tensors; i++) out->tensors[i].file = out->path;
  out->bytes = (void *)bytes; /* not owned (owns_bytes == 0): never written or freed */
  out->size = size;
  return LZN_OK;
}

void lzn_st_close(lzn_st_file *f) {
  if (f == NULL) return;
  free_tensors(f->tensors, f->n_tensors);
  free_metadata(f);
  if (f->owns_bytes) lzn_file_unload(f->bytes, f->size, f->mapped);
  free(f->path);
  memset(f, 0, sizeof *f);
}

lzn_status lzn_st_open(const char *path, int use_mmap, lzn_st_file *out) {
  if (out != NULL) memset(out, 0, sizeof *out);
  if (path == NULL || out == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_st_open: path and out must not be NULL");
  void *bytes;
  size_t size;
  int mapped;
  lzn_status status = lzn_file_load(path, use_mmap, &bytes, &size, &mapped);
  if (status != LZN_OK) return status;
  status = lzn_st_parse(bytes, size, path, out);
  if (status != LZN_OK) {
    lzn_file_unload(bytes, size, mapped);
    return status;
  }
  out->mapped = mapped;
  out->owns_bytes = 1;
  return LZN_OK;
}
