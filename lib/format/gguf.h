/*
 * gguf.h: GGUF v3 files (llama.cpp's, and PowerInfer's "PWRI" variant with
 * the same layout), validated and indexed. Private to the library.
 *
 * Layout (all little-endian; a string is a u64 byte length then the bytes,
 * no NUL):
 *
 *   "GGUF" or "PWRI"   4 bytes
 *   version            u32, must be 3
 *   tensor_count       u64
 *   metadata_kv_count  u64
 *   metadata_kv_count x { key: string, value_type: u32, value }
 *       value: u8 i8 u16 i16 u32 i32 f32 bool(1 byte, 0 or 1) string
 *              u64 i64 f64, or an array: element type u32, count u64,
 *              count elements (each a value of that type)
 *   tensor_count x { name: string, n_dims: u32 (1..4), ne: u64[n_dims]
 *                    (innermost first), ggml_type: u32, offset: u64 }
 *   zero padding to a multiple of the alignment (general.alignment, a u32
 *   power of two; 32 if absent)
 *   the data section: each tensor at data_start + offset, offset a multiple
 *   of the alignment, tensors not overlapping (gaps are padding).
 *
 * Decisions beyond the spec's text, each a rule of llama.cpp's reader too:
 * keys and tensor names are unique and hold no NUL byte; a bool is 0 or 1;
 * ne[0] of a Q8_0/Q4_0 tensor is a whole number of 32-weight blocks (of a
 * K-quant, of 256-weight super-blocks: UNSUPPORTED otherwise, as the issue
 * that added them asks, reported as an unread type is); the
 * data section may have gaps and trailing bytes (padding). Arrays of arrays
 * are valid GGUF, but neither llama.cpp nor lazyneuron reads them:
 * UNSUPPORTED at once, naming the key (what follows cannot be located
 * without reading them). Tensor types lazyneuron does not read (any
 * ggml_type but F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) are
 * UNSUPPORTED, naming the type, reported only
 * once the rest of the file has proven well-formed, so FORMAT always means a
 * broken file.
 *
 * Memory follows what was parsed, never what a count claims: a count larger
 * than the bytes left could hold fails before any allocation, and the
 * arrays grow as entries are read (at most a few times the file's size: 16
 * bytes per string value, which takes at least 8 bytes of the file).
 */
#ifndef LZN_GGUF_H
#define LZN_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "format/tensor.h"
#include "lazyneuron.h"

#define LZN_GGUF_VERSION 3
#define LZN_GGUF_DEFAULT_ALIGNMENT 32
#define LZN_GGUF_MAX_DIMS 4

/* Metadata value types, with the file's ids. */
typedef enum lzn_gguf_type {
  LZN_GGUF_U8 = 0,
  LZN_GGUF_I8 = 1,
  LZN_GGUF_U16 = 2,
  LZN_GGUF_I16 = 3,
  LZN_GGUF_U32 = 4,
  LZN_GGUF_I32 = 5,
  LZN_GGUF_F32 = 6,
  LZN_GGUF_BOOL = 7,
  LZN_GGUF_STRING = 8,
  LZN_GGUF_ARRAY = 9,
  LZN_GGUF_U64 = 10,
  LZN_GGUF_I64 = 11,
  LZN_GGUF_F64 = 12,
  LZN_GGUF_TYPE_COUNT = 13
} lzn_gguf_type;

/* "uint8" ... "float64", the spelling of gguf-py; "?" for another value. */
const char *lzn_gguf_type_name(lzn_gguf_type type);

/* Bytes of one value of a fixed-size type; 0 for STRING, ARRAY and others. */
size_t lzn_gguf_type_size(lzn_gguf_type type);

/* A string value: points into the file's bytes; not NUL-terminated, and a
 * value (unlike a key or a tensor name) may hold NUL bytes. */
typedef struct lzn_gguf_string {
  const char *data;
  size_t len;
} lzn_gguf_string;

/* One metadata entry. A scalar is stored as an array of one element of its
 * type, so the element readers below serve both. */
typedef struct lzn_gguf_kv {
  char *key;                      /* owned, NUL-terminated copy */
  lzn_gguf_type type;             /* LZN_GGUF_ARRAY for an array */
  lzn_gguf_type elem_type;        /* an array's element type; == type for a scalar */
  uint64_t n;                     /* elements: an array's count, 1 for a scalar */
  const unsigned char *data;      /* first element's bytes in the file (fixed-size types) */
  const lzn_gguf_string *strings; /* elem_type STRING: the n strings */
} lzn_gguf_kv;

typedef struct lzn_gguf_file {
  char *path;
  char magic[5];                  /* "GGUF" or "PWRI" (PowerInfer) */
  uint32_t version;
  lzn_gguf_kv *kvs;               /* in file order */
  size_t n_kvs;
  const lzn_gguf_kv **kv_by_key;  /* sorted by strcmp, for binary search */
  lzn_file_tensor *tensors;       /* in file (tensor info) order */
  size_t n_tensors;
  const lzn_file_tensor **tensor_by_name; /* sorted by strcmp */
  lzn_gguf_string *strings;       /* every string value, owned array */
  size_t n_strings;
  uint32_t alignment;             /* general.alignment, or 32 */
  size_t data_start;              /* file offset of the data section */
  void *bytes;                    /* the whole file: mmap'ed or malloc'ed */
  size_t size;
  int mapped;                     /* 1: bytes is a mapping (munmap), 0: malloc'ed */
  int owns_bytes;                 /* 0 after lzn_gguf_parse: the caller owns bytes */
} lzn_gguf_file;

/* Parses a GGUF image already in memory; tensors, string values and array
 * data point into bytes (not owned: lzn_gguf_close won't free them), which
 * must outlive *out. Tensor shapes are outermost first (ne reversed);
 * n_bytes = rows x lzn_wtype_row_bytes(dtype, ne[0]). path_for_errors names
 * the image in messages (NULL: "(memory)"). On failure *out is zeroed.
 * Statuses: OK, INVALID_ARG, FORMAT, UNSUPPORTED (a version other than 3, a
 * tensor type or an array of arrays lazyneuron does not read), NOMEM. */
lzn_status lzn_gguf_parse(const void *bytes, size_t size, const char *path_for_errors,
                          lzn_gguf_file *out);

/* Opens (mmap if use_mmap, else read into malloc'ed memory) and parses.
 * Statuses: those of lzn_gguf_parse, and IO. */
lzn_status lzn_gguf_open(const char *path, int use_mmap, lzn_gguf_file *out);

/* Releases what lzn_gguf_parse / lzn_gguf_open made and zeroes *f. Safe on
 * a zeroed struct and on NULL. */
void lzn_gguf_close(lzn_gguf_file *f);

/* The tensor with this exact name, or NULL if absent (or f/name is NULL). */
const lzn_file_tensor *lzn_gguf_find_tensor(const lzn_gguf_file *f, const char *name);

/* The metadata entry with this exact key, or NULL if absent. */
const lzn_gguf_kv *lzn_gguf_find(const lzn_gguf_file *f, const char *key);

/* Typed getters of a scalar value. Statuses: OK; FORMAT when the key is
 * absent ("missing") or holds another type (the message names the key and
 * both types: no conversion, not even widening); INVALID_ARG for NULL
 * arguments. *out is untouched on failure. A string is not NUL-terminated. */
lzn_status lzn_gguf_get_u8(const lzn_gguf_file *f, const char *key, uint8_t *out);
lzn_status lzn_gguf_get_i8(const lzn_gguf_file *f, const char *key, int8_t *out);
lzn_status lzn_gguf_get_u16(const lzn_gguf_file *f, const char *key, uint16_t *out);
lzn_status lzn_gguf_get_i16(const lzn_gguf_file *f, const char *key, int16_t *out);
lzn_status lzn_gguf_get_u32(const lzn_gguf_file *f, const char *key, uint32_t *out);
lzn_status lzn_gguf_get_i32(const lzn_gguf_file *f, const char *key, int32_t *out);
lzn_status lzn_gguf_get_u64(const lzn_gguf_file *f, const char *key, uint64_t *out);
lzn_status lzn_gguf_get_i64(const lzn_gguf_file *f, const char *key, int64_t *out);
lzn_status lzn_gguf_get_f32(const lzn_gguf_file *f, const char *key, float *out);
lzn_status lzn_gguf_get_f64(const lzn_gguf_file *f, const char *key, double *out);
lzn_status lzn_gguf_get_bool(const lzn_gguf_file *f, const char *key, int *out);
lzn_status lzn_gguf_get_string(const lzn_gguf_file *f, const char *key, lzn_gguf_string *out);

/* An array whose elements are elem_type; *out is the entry, whose n is its
 * length; read elements with the readers below. Statuses as the getters:
 * FORMAT if absent, not an array, or an array of another type. */
lzn_status lzn_gguf_get_array(const lzn_gguf_file *f, const char *key, lzn_gguf_type elem_type,
                              const lzn_gguf_kv **out);

/* Element i of an entry (an array, or a scalar as element 0). The caller
 * checks elem_type and i < n (lzn_gguf_get_array does the first); on a
 * mismatch they return 0 / an empty string rather than read out of bounds. */
uint8_t lzn_gguf_elem_u8(const lzn_gguf_kv *kv, uint64_t i);
int8_t lzn_gguf_elem_i8(const lzn_gguf_kv *kv, uint64_t i);
uint16_t lzn_gguf_elem_u16(const lzn_gguf_kv *kv, uint64_t i);
int16_t lzn_gguf_elem_i16(const lzn_gguf_kv *kv, uint64_t i);
uint32_t lzn_gguf_elem_u32(const lzn_gguf_kv *kv, uint64_t i);
int32_t lzn_gguf_elem_i32(const lzn_gguf_kv *kv, uint64_t i);
uint64_t lzn_gguf_elem_u64(const lzn_gguf_kv *kv, uint64_t i);
int64_t lzn_gguf_elem_i64(const lzn_gguf_kv *kv, uint64_t i);
float lzn_gguf_elem_f32(const lzn_gguf_kv *kv, uint64_t i);
double lzn_gguf_elem_f64(const lzn_gguf_kv *kv, uint64_t i);
int lzn_gguf_elem_bool(const lzn_gguf_kv *kv, uint64_t i);
lzn_gguf_string lzn_gguf_elem_string(const lzn_gguf_kv *kv, uint64_t i);

#endif /* LZN_GGUF_H */
