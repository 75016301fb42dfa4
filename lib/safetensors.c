/*
 * safetensors.c: safetensors parsing and validation, file reading and
 * mapping, and the sharded index of a Hugging Face model folder.
 *
 * The validation follows the reference implementation (huggingface/safetensors,
 * SafeTensors::read_metadata + Metadata::validate): a header length that fits
 * in the file and under 100 MB, a UTF-8 JSON object starting with '{',
 * checked shape x dtype arithmetic, and data_offsets that tile the data
 * section exactly, with no hole, overlap or trailing byte. Every allocation
 * is bounded by the size of the input: a tensor entry takes at least a few
 * dozen header bytes, so the tensor array never outgrows the header.
 */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* ------------------------------------------------------------------ dtypes */

/* Every dtype the reference knows. Sizes are in bits because F4 and F6 pack
 * several elements per byte. Only the first three are read by lazyneuron;
 * the others are valid safetensors (so: UNSUPPORTED, not FORMAT). */
typedef struct dtype_info {
  const char *name;
  unsigned bits;
  int supported;
  lzn_dtype dtype; /* meaningful when supported */
} dtype_info;

static const dtype_info known_dtypes[] = {
    {"F32", 32, 1, LZN_DTYPE_F32},    {"F16", 16, 1, LZN_DTYPE_F16},
    {"BF16", 16, 1, LZN_DTYPE_BF16},  {"F64", 64, 0, LZN_DTYPE_F32},
    {"C64", 64, 0, LZN_DTYPE_F32},    {"I64", 64, 0, LZN_DTYPE_F32},
    {"U64", 64, 0, LZN_DTYPE_F32},    {"I32", 32, 0, LZN_DTYPE_F32},
    {"U32", 32, 0, LZN_DTYPE_F32},    {"I16", 16, 0, LZN_DTYPE_F32},
    {"U16", 16, 0, LZN_DTYPE_F32},    {"I8", 8, 0, LZN_DTYPE_F32},
    {"U8", 8, 0, LZN_DTYPE_F32},      {"BOOL", 8, 0, LZN_DTYPE_F32},
    {"F8_E4M3", 8, 0, LZN_DTYPE_F32}, {"F8_E5M2", 8, 0, LZN_DTYPE_F32},
    {"F8_E8M0", 8, 0, LZN_DTYPE_F32}, {"F6_E2M3", 6, 0, LZN_DTYPE_F32},
    {"F6_E3M2", 6, 0, LZN_DTYPE_F32}, {"F4", 4, 0, LZN_DTYPE_F32},
};

static const dtype_info *dtype_lookup(const char *name) {
  for (size_t i = 0; i < sizeof known_dtypes / sizeof known_dtypes[0]; i++)
    if (strcmp(known_dtypes[i].name, name) == 0) return &known_dtypes[i];
  return NULL;
}

const char *lzn_dtype_name(lzn_dtype dtype) {
  switch (dtype) {
  case LZN_DTYPE_F32: return "F32";
  case LZN_DTYPE_F16: return "F16";
  case LZN_DTYPE_BF16: return "BF16";
  }
  return "?";
}

size_t lzn_dtype_size(lzn_dtype dtype) {
  switch (dtype) {
  case LZN_DTYPE_F32: return 4;
  case LZN_DTYPE_F16: return 2;
  case LZN_DTYPE_BF16: return 2;
  }
  return 0;
}

/* ------------------------------------------------------------ file reading */

static lzn_status open_regular_file(const char *path, int *fd_out, size_t *size_out) {
  /* O_NONBLOCK so that a FIFO in place of a file fails below instead of
   * blocking the open; it changes nothing for regular files. */
  const int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return lzn_fail(LZN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return lzn_fail(LZN_ERR_IO, "%s: cannot stat: %s", path, strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return lzn_fail(LZN_ERR_IO, "%s: not a regular file", path);
  }
  if (st.st_size < 0 || (uint64_t)st.st_size > SIZE_MAX) {
    close(fd);
    return lzn_fail(LZN_ERR_IO, "%s: size %lld does not fit in memory", path, (long long)st.st_size);
  }
  *fd_out = fd;
  *size_out = (size_t)st.st_size;
  return LZN_OK;
}

/* pread until size bytes are in, retrying on EINTR and short reads. */
static lzn_status read_exactly(int fd, const char *path, void *buffer, size_t size) {
  size_t done = 0;
  while (done < size) {
    size_t chunk = size - done;
    if (chunk > (size_t)1 << 30) chunk = (size_t)1 << 30; /* some kernels cap one read */
    const ssize_t got = pread(fd, (char *)buffer + done, chunk, (off_t)done);
    if (got < 0) {
      if (errno == EINTR) continue;
      return lzn_fail(LZN_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    }
    if (got == 0)
      return lzn_fail(LZN_ERR_IO, "%s: file shrank while being read (%zu of %zu bytes)", path, done, size);
    done += (size_t)got;
  }
  return LZN_OK;
}

lzn_status lzn_read_file(const char *path, char **bytes, size_t *size) {
  if (bytes != NULL) *bytes = NULL;
  if (size != NULL) *size = 0;
  if (path == NULL || bytes == NULL || size == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_read_file: path, bytes and size must not be NULL");
  int fd;
  size_t file_size;
  lzn_status status = open_regular_file(path, &fd, &file_size);
  if (status != LZN_OK) return status;
  if (file_size == SIZE_MAX) {
    close(fd);
    return lzn_fail(LZN_ERR_NOMEM, "%s: too large to read", path);
  }
  char *buffer = malloc(file_size + 1);
  if (buffer == NULL) {
    close(fd);
    return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate %zu bytes to read it", path, file_size + 1);
  }
  status = read_exactly(fd, path, buffer, file_size);
  close(fd);
  if (status != LZN_OK) {
    free(buffer);
    return status;
  }
  buffer[file_size] = '\0';
  *bytes = buffer;
  *size = file_size;
  return LZN_OK;
}

/* ------------------------------------------------------------ header parse */

/* "[4, 3]" into buf (truncated if it does not fit: messages only). */
static const char *format_shape(char *buf, size_t cap, const int64_t *shape, int n_dims) {
  size_t used = (size_t)snprintf(buf, cap, "[");
  for (int i = 0; i < n_dims && used < cap; i++)
    used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (used < cap) snprintf(buf + used, cap - used, "]");
  return buf;
}

static const char *json_type_name(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a real number";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  case JSON_NULL: return "null";
  }
  return "?";
}

/* A JSON integer >= 0 (reals like 3.0, strings like "3" and negatives are not). */
static int is_non_negative_integer(const json_t *v) {
  return json_is_integer(v) && json_integer_value(v) >= 0;
}

static lzn_status check_metadata(const char *path, const json_t *metadata) {
  if (!json_is_object(metadata))
    return lzn_fail(LZN_ERR_FORMAT, "%s: \"__metadata__\" must be an object of strings, got %s",
                    path, json_type_name(metadata));
  const char *key;
  const json_t *value;
  json_object_foreach((json_t *)metadata, key, value) {
    if (!json_is_string(value))
      return lzn_fail(LZN_ERR_FORMAT, "%s: \"__metadata__\" entry \"%s\" must be a string, got %s",
                      path, key, json_type_name(value));
  }
  return LZN_OK;
}

static lzn_status parse_shape(const char *path, const char *name, const json_t *shape,
                              lzn_st_tensor *t) {
  if (shape == NULL)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": missing \"shape\"", path, name);
  if (!json_is_array(shape))
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": \"shape\" must be an array, got %s",
                    path, name, json_type_name(shape));
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
                      path, name, i, json_is_integer(dim) ? "a negative integer" : json_type_name(dim));
    t->shape[i] = (int64_t)json_integer_value(dim);
    if (__builtin_mul_overflow(t->n_elements, t->shape[i], &t->n_elements)) {
      char buf[256];
      return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": shape %s%s overflows: more than 2^63 - 1 elements",
                      path, name, format_shape(buf, sizeof buf, t->shape, (int)i + 1),
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
                    path, name, format_shape(buf, sizeof buf, t->shape, t->n_dims), dtype->name);
  if (bits % 8 != 0)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": shape %s x %s is not a whole number of bytes",
                    path, name, format_shape(buf, sizeof buf, t->shape, t->n_dims), dtype->name);
  if (bits / 8 != span)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": shape %s x %s is %llu bytes but data_offsets span %llu",
                    path, name, format_shape(buf, sizeof buf, t->shape, t->n_dims), dtype->name,
                    (unsigned long long)(bits / 8), (unsigned long long)span);
  return LZN_OK;
}

/* Fills t (but for name, data and file) from one header entry. *dtype_out is
 * the entry's dtype, which may be one lazyneuron does not read. */
static lzn_status parse_entry(const char *path, const char *name, const json_t *entry,
                              size_t data_len, lzn_st_tensor *t, const dtype_info **dtype_out) {
  if (!json_is_object(entry))
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": entry must be an object, got %s",
                    path, name, json_type_name(entry));
  const json_t *dtype_json = json_object_get(entry, "dtype");
  if (dtype_json == NULL)
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": missing \"dtype\"", path, name);
  if (!json_is_string(dtype_json))
    return lzn_fail(LZN_ERR_FORMAT, "%s: tensor \"%s\": \"dtype\" must be a string, got %s",
                    path, name, json_type_name(dtype_json));
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
      status = check_metadata(path, value);
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
  if (f->owns_bytes && f->mapped) munmap(f->bytes, f->size);
  if (f->owns_bytes && !f->mapped) free(f->bytes);
  free(f->path);
  memset(f, 0, sizeof *f);
}

/* The whole file in memory: mapped, or read into a malloc'ed buffer. */
static lzn_status load_bytes(const char *path, int use_mmap, void **bytes, size_t *size, int *mapped) {
  int fd;
  lzn_status status = open_regular_file(path, &fd, size);
  if (status != LZN_OK) return status;
  *bytes = NULL;
  *mapped = 0;
  if (*size == 0) { /* mmap refuses length 0; the parser reports the empty file */
    close(fd);
    return LZN_OK;
  }
  if (use_mmap) {
    void *map = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    close(fd);
    if (map == MAP_FAILED) return lzn_fail(LZN_ERR_IO, "%s: cannot mmap: %s", path, strerror(err));
    *bytes = map;
    *mapped = 1;
    return LZN_OK;
  }
  *bytes = malloc(*size);
  if (*bytes == NULL) {
    close(fd);
    return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate %zu bytes to read it", path, *size);
  }
  status = read_exactly(fd, path, *bytes, *size);
  close(fd);
  if (status != LZN_OK) {
    free(*bytes);
    *bytes = NULL;
  }
  return status;
}

lzn_status lzn_st_open(const char *path, int use_mmap, lzn_st_file *out) {
  if (out != NULL) memset(out, 0, sizeof *out);
  if (path == NULL || out == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_st_open: path and out must not be NULL");
  void *bytes;
  size_t size;
  int mapped;
  lzn_status status = load_bytes(path, use_mmap, &bytes, &size, &mapped);
  if (status != LZN_OK) return status;
  status = lzn_st_parse(bytes, size, path, out);
  if (status != LZN_OK) {
    if (mapped) munmap(bytes, size);
    else free(bytes);
    return status;
  }
  out->mapped = mapped;
  out->owns_bytes = 1;
  return LZN_OK;
}

/* ------------------------------------------------------------- shard index */

/* A shard must be a plain file name in the model folder: an index must not
 * make us open files elsewhere ("../x", "/etc/x", "sub\\x" on Windows). */
static lzn_status check_shard_name(const char *path, const char *tensor, const char *shard) {
  const char *rule = NULL;
  if (shard[0] == '\0') rule = "is empty";
  else if (strchr(shard, '/') != NULL) rule = "contains '/'";
  else if (strchr(shard, '\\') != NULL) rule = "contains '\\'";
  else if (strcmp(shard, ".") == 0 || strcmp(shard, "..") == 0) rule = "is a directory name";
  if (rule == NULL) return LZN_OK;
  return lzn_fail(LZN_ERR_FORMAT, "%s: weight_map entry for tensor \"%s\": shard \"%s\" %s; it must be a plain file name in the model folder",
                  path, tensor, shard, rule);
}

/* The weight_map of an index (a new reference, caller decrefs) after checking
 * the index's shape: an object with a non-empty weight_map of strings. */
static lzn_status load_weight_map(const char *json, size_t len, const char *path, json_t **out) {
  json_error_t error;
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &error);
  if (root == NULL)
    return lzn_fail(LZN_ERR_FORMAT, "%s: not valid JSON (line %d, column %d: %s)",
                    path, error.line, error.column, error.text);
  json_t *map = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
  lzn_status status = LZN_OK;
  if (!json_is_object(root))
    status = lzn_fail(LZN_ERR_FORMAT, "%s: the index must be a JSON object", path);
  else if (map == NULL)
    status = lzn_fail(LZN_ERR_FORMAT, "%s: missing \"weight_map\"", path);
  else if (!json_is_object(map))
    status = lzn_fail(LZN_ERR_FORMAT, "%s: \"weight_map\" must be an object, got %s", path, json_type_name(map));
  else if (json_object_size(map) == 0)
    status = lzn_fail(LZN_ERR_FORMAT, "%s: \"weight_map\" is empty", path);
  if (status == LZN_OK) *out = json_incref(map);
  json_decref(root);
  return status;
}

/* Unique shard names of a checked weight_map, in first-seen order. A jansson
 * object serves as the hash set of names already seen. */
static lzn_status collect_shards(const char *path, json_t *map, char ***shards, size_t *n_shards) {
  json_t *seen = json_object();
  char **names = calloc(json_object_size(map), sizeof *names);
  if (seen == NULL || names == NULL) {
    json_decref(seen);
    free(names);
    return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate the shard list", path);
  }
  size_t n = 0;
  lzn_status status = LZN_OK;
  const char *tensor;
  json_t *shard;
  json_object_foreach(map, tensor, shard) {
    if (!json_is_string(shard)) {
      status = lzn_fail(LZN_ERR_FORMAT, "%s: weight_map entry for tensor \"%s\" must be a shard file name (a string), got %s",
                        path, tensor, json_type_name(shard));
      break;
    }
    const char *name = json_string_value(shard);
    status = check_shard_name(path, tensor, name);
    if (status != LZN_OK) break;
    if (json_object_get(seen, name) != NULL) continue;
    names[n] = strdup(name);
    if (names[n] == NULL || json_object_set_new(seen, name, json_true()) != 0) {
      free(names[n]);
      status = lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate the shard list", path);
      break;
    }
    n++;
  }
  json_decref(seen);
  if (status != LZN_OK) {
    lzn_st_index_free(names, n);
    return status;
  }
  *shards = names;
  *n_shards = n;
  return LZN_OK;
}

lzn_status lzn_st_index_parse(const char *json, size_t len, const char *path_for_errors,
                              char ***shards, size_t *n_shards) {
  if (shards != NULL) *shards = NULL;
  if (n_shards != NULL) *n_shards = 0;
  if ((json == NULL && len != 0) || shards == NULL || n_shards == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_st_index_parse: json, shards and n_shards must not be NULL");
  const char *path = path_for_errors != NULL ? path_for_errors : "(memory)";
  json_t *map;
  lzn_status status = load_weight_map(json != NULL ? json : "", len, path, &map);
  if (status != LZN_OK) return status;
  status = collect_shards(path, map, shards, n_shards);
  json_decref(map);
  return status;
}

void lzn_st_index_free(char **shards, size_t n_shards) {
  if (shards == NULL) return;
  for (size_t i = 0; i < n_shards; i++) free(shards[i]);
  free(shards);
}

/* ----------------------------------------------------------------- weights */

static char *join_path(const char *dir, const char *name) {
  const size_t dir_len = strlen(dir), name_len = strlen(name);
  char *joined = malloc(dir_len + 1 + name_len + 1);
  if (joined == NULL) return NULL;
  memcpy(joined, dir, dir_len);
  joined[dir_len] = '/';
  memcpy(joined + dir_len + 1, name, name_len + 1);
  return joined;
}

static int compare_tensor_names(const void *a, const void *b) {
  const lzn_st_tensor *const *x = a, *const *y = b;
  return strcmp((*x)->name, (*y)->name);
}

/* w->by_name from w->files; a name in two files is an error (within one file
 * the JSON parser already rejected duplicate keys). */
static lzn_status index_tensor_names(lzn_weights *w) {
  size_t total = 0;
  for (size_t i = 0; i < w->n_files; i++) total += w->files[i].n_tensors;
  const lzn_st_tensor **by_name = calloc(total ? total : 1, sizeof *by_name);
  if (by_name == NULL) return lzn_fail(LZN_ERR_NOMEM, "cannot allocate an index of %zu tensors", total);
  size_t n = 0;
  for (size_t i = 0; i < w->n_files; i++)
    for (size_t j = 0; j < w->files[i].n_tensors; j++) by_name[n++] = &w->files[i].tensors[j];
  qsort(by_name, n, sizeof *by_name, compare_tensor_names);
  w->by_name = by_name;
  w->n_tensors = n;
  for (size_t i = 1; i < n; i++)
    if (strcmp(by_name[i - 1]->name, by_name[i]->name) == 0)
      return lzn_fail(LZN_ERR_FORMAT, "tensor \"%s\" is in two shards: %s and %s",
                      by_name[i]->name, by_name[i - 1]->file, by_name[i]->file);
  return LZN_OK;
}

/* For a struct filled by hand (files only): the slow way. */
static const lzn_st_tensor *find_linear(const lzn_weights *w, const char *name) {
  for (size_t i = 0; i < w->n_files; i++)
    for (size_t j = 0; j < w->files[i].n_tensors; j++)
      if (strcmp(w->files[i].tensors[j].name, name) == 0) return &w->files[i].tensors[j];
  return NULL;
}

const lzn_st_tensor *lzn_weights_find(const lzn_weights *w, const char *name) {
  if (w == NULL || name == NULL) return NULL;
  if (w->by_name == NULL) return find_linear(w, name);
  const lzn_st_tensor key = {.name = (char *)name};
  const lzn_st_tensor *key_ptr = &key;
  const lzn_st_tensor *const *found =
      bsearch(&key_ptr, w->by_name, w->n_tensors, sizeof *w->by_name, compare_tensor_names);
  return found != NULL ? *found : NULL;
}

static lzn_status open_single(const char *path, int use_mmap, lzn_weights *w) {
  w->files = calloc(1, sizeof *w->files);
  if (w->files == NULL) return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate a file entry", path);
  w->n_files = 1;
  return lzn_st_open(path, use_mmap, &w->files[0]);
}

/* Every tensor of the weight_map must be in the shard the map names. Shards
 * were opened as dir + "/" + shard, so the name follows the folder's prefix. */
static lzn_status check_weight_map(const char *index_path, size_t dir_len, json_t *map,
                                   const lzn_weights *w) {
  const char *tensor;
  json_t *shard;
  json_object_foreach(map, tensor, shard) {
    const lzn_st_tensor *t = lzn_weights_find(w, tensor);
    const char *named = json_string_value(shard);
    if (t == NULL)
      return lzn_fail(LZN_ERR_FORMAT, "%s: weight_map puts tensor \"%s\" in shard \"%s\", but no shard holds it",
                      index_path, tensor, named);
    if (strcmp(t->file + dir_len + 1, named) != 0)
      return lzn_fail(LZN_ERR_FORMAT, "%s: weight_map puts tensor \"%s\" in shard \"%s\", but it is in %s",
                      index_path, tensor, named, t->file);
  }
  return LZN_OK;
}

/* Opens every shard. A failure to open one is reported with the index that
 * named it, so the reader knows why that file was wanted. */
static lzn_status open_shards(const char *dir, const char *index_path, char **shards,
                              size_t n_shards, int use_mmap, lzn_weights *w) {
  w->files = calloc(n_shards, sizeof *w->files);
  if (w->files == NULL) return lzn_fail(LZN_ERR_NOMEM, "cannot allocate %zu shard entries", n_shards);
  for (size_t i = 0; i < n_shards; i++) {
    char *shard_path = join_path(dir, shards[i]);
    if (shard_path == NULL) return lzn_fail(LZN_ERR_NOMEM, "cannot allocate the path of shard \"%s\"", shards[i]);
    w->n_files = i + 1; /* so lzn_weights_close releases this one too */
    const lzn_status status = lzn_st_open(shard_path, use_mmap, &w->files[i]);
    free(shard_path);
    if (status == LZN_ERR_IO) {
      char message[512];
      snprintf(message, sizeof message, "%s", lzn_last_error());
      return lzn_fail(status, "%s (shard \"%s\" listed in %s)", message, shards[i], index_path);
    }
    if (status != LZN_OK) return status;
  }
  return LZN_OK;
}

static lzn_status open_sharded(const char *dir, const char *index_path, int use_mmap,
                               lzn_weights *w) {
  char *json;
  size_t len;
  lzn_status status = lzn_read_file(index_path, &json, &len);
  if (status != LZN_OK) return status;
  json_t *map = NULL;
  char **shards = NULL;
  size_t n_shards = 0;
  status = load_weight_map(json, len, index_path, &map);
  free(json);
  if (status == LZN_OK) status = collect_shards(index_path, map, &shards, &n_shards);
  if (status == LZN_OK) status = open_shards(dir, index_path, shards, n_shards, use_mmap, w);
  if (status == LZN_OK) status = index_tensor_names(w);
  if (status == LZN_OK) status = check_weight_map(index_path, strlen(dir), map, w);
  lzn_st_index_free(shards, n_shards);
  json_decref(map);
  return status;
}

static int path_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static lzn_status open_folder(const char *dir, int use_mmap, lzn_weights *w) {
  char *single = join_path(dir, "model.safetensors");
  char *index = join_path(dir, "model.safetensors.index.json");
  lzn_status status;
  if (single == NULL || index == NULL)
    status = lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate the paths of the weights", dir);
  else if (path_exists(single))
    status = open_single(single, use_mmap, w);
  else if (path_exists(index))
    status = open_sharded(dir, index, use_mmap, w);
  else
    status = lzn_fail(LZN_ERR_IO, "no model.safetensors or model.safetensors.index.json in %s", dir);
  if (status == LZN_OK && w->by_name == NULL) status = index_tensor_names(w);
  free(single);
  free(index);
  return status;
}

lzn_status lzn_weights_open(const char *path, int use_mmap, lzn_weights *out) {
  if (out != NULL) memset(out, 0, sizeof *out);
  if (path == NULL || out == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_weights_open: path and out must not be NULL");
  struct stat st;
  if (stat(path, &st) != 0) return lzn_fail(LZN_ERR_IO, "%s: %s", path, strerror(errno));
  lzn_status status;
  if (S_ISDIR(st.st_mode)) {
    status = open_folder(path, use_mmap, out);
  } else {
    status = open_single(path, use_mmap, out);
    if (status == LZN_OK) status = index_tensor_names(out);
  }
  if (status != LZN_OK) lzn_weights_close(out);
  return status;
}

void lzn_weights_close(lzn_weights *w) {
  if (w == NULL) return;
  for (size_t i = 0; i < w->n_files; i++) lzn_st_close(&w->files[i]);
  free(w->files);
  free((void *)w->by_name);
  memset(w, 0, sizeof *w);
}
