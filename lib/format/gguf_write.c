/*
 * gguf_write.c: a streamed GGUF v3 writer (gguf_write.h). Everything is
 * little-endian, as on every machine lazyneuron runs on (x86-64).
 */
#include "format/gguf_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/wtype.h"

/* A growing byte buffer. */
typedef struct bytes {
  unsigned char *data;
  size_t n, cap;
} bytes;

static int bytes_put(bytes *b, const void *p, size_t n) {
  if (n > SIZE_MAX - b->n) return 0;
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n) cap = cap > SIZE_MAX / 2 ? b->n + n : cap * 2;
    unsigned char *grown = realloc(b->data, cap);
    if (grown == NULL) return 0;
    b->data = grown, b->cap = cap;
  }
  if (n) memcpy(b->data + b->n, p, n);
  b->n += n;
  return 1;
}
static int put_u32(bytes *b, uint32_t v) { return bytes_put(b, &v, 4); }
static int put_u64(bytes *b, uint64_t v) { return bytes_put(b, &v, 8); }
static int put_string(bytes *b, const char *s, size_t n) { return put_u64(b, n) && bytes_put(b, s, n); }

/* items (n of size bytes, room for *cap) with room for one more, doubled
 * when full; NULL if out of memory (items unchanged). */
static void *room_for_one(void *items, size_t n, size_t *cap, size_t size, size_t first_cap) {
  if (n < *cap) return items;
  const size_t grown_cap = *cap ? 2 * *cap : first_cap;
  void *grown = realloc(items, grown_cap * size);
  if (grown != NULL) *cap = grown_cap;
  return grown;
}

typedef struct kv_entry {
  char *key;
  bytes value; /* value type (u32), then the value as the file has it */
} kv_entry;

typedef struct tensor_entry {
  char *name;
  uint32_t ggml_type;
  int n_dims;
  int64_t shape[LZN_GGUF_MAX_DIMS]; /* outermost first */
  uint64_t offset, n_bytes;
} tensor_entry;

struct lzn_gguf_writer {
  char *path, *tmp_path;
  char magic[4];
  int fd;
  uint32_t alignment;
  kv_entry *kvs;
  size_t n_kvs, cap_kvs;
  tensor_entry *tensors;
  size_t n_tensors, cap_tensors;
  uint64_t data_size;   /* the data section's bytes, padding included */
  int started;          /* the header is written */
  size_t tensor;        /* the tensor being written */
  uint64_t written;     /* bytes of it written so far */
  int committed;
  bytes out;            /* write buffer */
};

static lzn_status io_error(const lzn_gguf_writer *w, const char *what) {
  return lzn_fail(LZN_ERR_IO, "%s: %s: %s", w->path, what, strerror(errno));
}

lzn_status lzn_gguf_writer_open(const char *path, uint32_t alignment, const char *magic,
                                lzn_gguf_writer **out) {
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_gguf_writer_open: out is NULL");
  *out = NULL;
  if (path == NULL || path[0] == '\0')
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_gguf_writer_open: no path");
  if (alignment < 8 || (alignment & (alignment - 1)) != 0)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: alignment %u is not a power of two >= 8", path, alignment);
  if (magic == NULL) magic = "GGUF";
  if (strcmp(magic, "GGUF") != 0 && strcmp(magic, "PWRI") != 0)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: magic \"%s\" is neither GGUF nor PWRI", path, magic);
  lzn_gguf_writer *w = calloc(1, sizeof *w);
  const size_t len = strlen(path);
  if (w) w->path = malloc(len + 1), w->tmp_path = malloc(len + 64);
  if (w == NULL || w->path == NULL || w->tmp_path == NULL) {
    if (w) free(w->path), free(w->tmp_path);
    free(w);
    return lzn_fail(LZN_ERR_NOMEM, "%s: out of memory", path);
  }
  memcpy(w->path, path, len + 1);
  memcpy(w->magic, magic, 4);
  w->alignment = alignment, w->fd = -1;
  /* A fresh name, created exclusively: never someone else's file. */
  static unsigned counter;
  for (int attempt = 0; attempt < 100 && w->fd < 0; attempt++) {
    snprintf(w->tmp_path, len + 64, "%s.tmp.%ld.%u", path, (long)getpid(),
             __atomic_fetch_add(&counter, 1u, __ATOMIC_RELAXED));
    w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (w->fd < 0 && errno != EEXIST) break;
  }
  if (w->fd < 0) {
    const lzn_status s = lzn_fail(LZN_ERR_IO, "%s: cannot create %s: %s", path, w->tmp_path, strerror(errno));
    w->tmp_path[0] = '\0'; /* nothing to remove */
    lzn_gguf_writer_free(w);
    return s;
  }
  *out = w;
  return LZN_OK;
}

void lzn_gguf_writer_free(lzn_gguf_writer *w) {
  if (w == NULL) return;
  if (w->fd >= 0) close(w->fd);
  if (!w->committed && w->tmp_path && w->tmp_path[0]) unlink(w->tmp_path);
  for (size_t i = 0; i < w->n_kvs; i++) free(w->kvs[i].key), free(w->kvs[i].value.data);
  for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
  free(w->kvs), free(w->tensors), free(w->out.data);
  free(w->path), free(w->tmp_path);
  free(w);
}

/* ------------------------------------------------------------- metadata */

/* The entry for key (its value emptied), created at the end if new. */
static lzn_status entry_for(lzn_gguf_writer *w, const char *key, kv_entry **out) {
  if (key == NULL || key[0] == '\0')
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: an empty metadata key", w->path);
  if (w->started)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: metadata \"%s\" set after the tensor data started",
                    w->path, key);
  for (size_t i = 0; i < w->n_kvs; i++)
    if (strcmp(w->kvs[i].key, key) == 0) {
      w->kvs[i].value.n = 0;
      *out = &w->kvs[i];
      return LZN_OK;
    }
  kv_entry *grown = room_for_one(w->kvs, w->n_kvs, &w->cap_kvs, sizeof *grown, 32);
  if (grown == NULL) return lzn_fail(LZN_ERR_NOMEM, "%s: out of memory for metadata", w->path);
  w->kvs = grown;
  kv_entry *e = &w->kvs[w->n_kvs];
  memset(e, 0, sizeof *e);
  if ((e->key = strdup(key)) == NULL) return lzn_fail(LZN_ERR_NOMEM, "%s: out of memory for metadata", w->path);
  w->n_kvs++;
  *out = e;
  return LZN_OK;
}

static lzn_status set_scalar(lzn_gguf_writer *w, const char *key, lzn_gguf_type type, const void *v,
                             size_t size) {
  kv_entry *e;
  const lzn_status s = entry_for(w, key, &e);
  if (s != LZN_OK) return s;
  if (!put_u32(&e->value, (uint32_t)type) || !bytes_put(&e->value, v, size))
    return lzn_fail(LZN_ERR_NOMEM, "%s: out of memory for metadata", w->path);
  return LZN_OK;
}

lzn_status lzn_gguf_writer_set_u32(lzn_gguf_writer *w, const char *key, uint32_t value) {
  return set_scalar(w, key, LZN_GGUF_U32, &value, 4);
}

lzn_status lzn_gguf_writer_set_bool(lzn_gguf_writer *w, const char *key, int value) {
  const uint8_t b = value ? 1 : 0;
  return set_scalar(w, key, LZN_GGUF_BOOL, &b, 1);
}

lzn_status lzn_gguf_writer_set_string(lzn_gguf_writer *w, const char *key, const char *value) {
  kv_entry *e;
  const lzn_status s = entry_for(w, key, &e);
  if (s != LZN_OK) return s;
  if (!put_u32(&e->value, LZN_GGUF_STRING) || !put_string(&e->value, value, strlen(value)))
    return lzn_fail(LZN_ERR_NOMEM, "%s: out of memory for metadata", w->path);
  return LZN_OK;
}

lzn_status lzn_gguf_writer_copy_kv(lzn_gguf_writer *w, const lzn_gguf_kv *kv) {
  kv_entry *e;
  const lzn_status s = entry_for(w, kv->key, &e);
  if (s != LZN_OK) return s;
  bytes *b = &e->value;
  int ok = put_u32(b, (uint32_t)kv->type);
  if (kv->type == LZN_GGUF_ARRAY) ok = ok && put_u32(b, (uint32_t)kv->elem_type) && put_u64(b, kv->n);
  if (kv->elem_type == LZN_GGUF_STRING) {
    for (uint64_t i = 0; ok && i < kv->n; i++) {
      const lzn_gguf_string str = lzn_gguf_elem_string(kv, i);
      ok = put_string(b, str.data, str.len);
    }
  } else {
    /* The parser checked that n elements lie in the file: n * size fits. */
    ok = ok && bytes_put(b, kv->data, (size_t)kv->n * lzn_gguf_type_size(kv->elem_type));
  }
  return ok ? LZN_OK : lzn_fail(LZN_ERR_NOMEM, "%s: out of memory copying \"%s\"", w->path, kv->key);
}

/* --------------------------------------------------------------- tensors */

lzn_status lzn_gguf_writer_add_tensor(lzn_gguf_writer *w, const char *name, lzn_weight_type type,
                                      int n_dims, const int64_t *shape) {
  if (w->started)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: tensor \"%s\" declared after the data started", w->path, name);
  if (name == NULL || name[0] == '\0')
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: a tensor without a name", w->path);
  if (n_dims < 1 || n_dims > LZN_GGUF_MAX_DIMS)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: tensor \"%s\" has %d dimensions; GGUF takes 1 to %d",
                    w->path, name, n_dims, LZN_GGUF_MAX_DIMS);
  const uint32_t ggml = lzn_wtype_valid(type) ? (uint32_t)lzn_wtype_traits(type)->ggml_id : UINT32_MAX;
  if (ggml == UINT32_MAX)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: tensor \"%s\": no ggml type for %d", w->path, name, (int)type);
  uint64_t rows = 1;
  for (int d = 0; d < n_dims; d++) {
    if (shape[d] < 1 || shape[d] > (int64_t)1 << 40)
      return lzn_fail(LZN_ERR_INVALID_ARG, "%s: tensor \"%s\": dimension %d is %lld", w->path, name, d,
                      (long long)shape[d]);
    if (d + 1 < n_dims) rows *= (uint64_t)shape[d];
  }
  const int64_t cols = shape[n_dims - 1];
  if (cols % (int64_t)lzn_wtype_block_size(type) != 0)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: tensor \"%s\": %lld columns are not whole %s blocks of %zu",
                    w->path, name, (long long)cols, lzn_wtype_name(type), lzn_wtype_block_size(type));
  for (size_t i = 0; i < w->n_tensors; i++)
    if (strcmp(w->tensors[i].name, name) == 0)
      return lzn_fail(LZN_ERR_INVALID_ARG, "%s: tensor \"%s\" declared twice", w->path, name);
  tensor_entry *grown = room_for_one(w->tensors, w->n_tensors, &w->cap_tensors, sizeof *grown, 64);
  if (grown == NULL) return lzn_fail(LZN_ERR_NOMEM, "%s: out of memory for tensors", w->path);
  w->tensors = grown;
  tensor_entry *t = &w->tensors[w->n_tensors];
  memset(t, 0, sizeof *t);
  if ((t->name = strdup(name)) == NULL) return lzn_fail(LZN_ERR_NOMEM, "%s: out of memory", w->path);
  t->ggml_type = ggml, t->n_dims = n_dims;
  memcpy(t->shape, shape, (size_t)n_dims * sizeof *shape);
  t->n_bytes = rows * lzn_wtype_row_bytes(type, (size_t)cols);
  t->offset = w->data_size;
  w->data_size += (t->n_bytes + w->alignment - 1) / w->alignment * w->alignment;
  w->n_tensors++;
  return LZN_OK;
}

/* ------------------------------------------------------------------ data */

static lzn_status flush_out(lzn_gguf_writer *w) {
  size_t done = 0;
  while (done < w->out.n) {
    const ssize_t got = write(w->fd, w->out.data + done, w->out.n - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return io_error(w, "write");
    done += (size_t)got;
  }
  w->out.n = 0;
  return LZN_OK;
}

/* Buffered: the header and many small rows become few write calls. */
static lzn_status emit(lzn_gguf_writer *w, const void *p, size_t n) {
  enum { FLUSH_AT = 1 << 20 };
  if (!bytes_put(&w->out, p, n)) return lzn_fail(LZN_ERR_NOMEM, "%s: out of memory", w->path);
  return w->out.n >= FLUSH_AT ? flush_out(w) : LZN_OK;
}

static lzn_status emit_zeros(lzn_gguf_writer *w, size_t n) {
  static const unsigned char zeros[64];
  lzn_status s = LZN_OK;
  while (s == LZN_OK && n > 0) {
    const size_t k = n < sizeof zeros ? n : sizeof zeros;
    s = emit(w, zeros, k);
    n -= k;
  }
  return s;
}

static lzn_status write_header(lzn_gguf_writer *w) {
  lzn_status s = LZN_OK;
  if (w->alignment != LZN_GGUF_DEFAULT_ALIGNMENT)
    s = lzn_gguf_writer_set_u32(w, "general.alignment", w->alignment);
  w->started = 1;
  bytes h = {NULL, 0, 0};
  int ok = s == LZN_OK && bytes_put(&h, w->magic, 4) && put_u32(&h, LZN_GGUF_VERSION) &&
           put_u64(&h, w->n_tensors) && put_u64(&h, w->n_kvs);
  for (size_t i = 0; ok && i < w->n_kvs; i++)
    ok = put_string(&h, w->kvs[i].key, strlen(w->kvs[i].key)) &&
         bytes_put(&h, w->kvs[i].value.data, w->kvs[i].value.n);
  for (size_t i = 0; ok && i < w->n_tensors; i++) {
    const tensor_entry *t = &w->tensors[i];
    ok = put_string(&h, t->name, strlen(t->name)) && put_u32(&h, (uint32_t)t->n_dims);
    for (int d = t->n_dims - 1; ok && d >= 0; d--) ok = put_u64(&h, (uint64_t)t->shape[d]); /* innermost first */
    ok = ok && put_u32(&h, t->ggml_type) && put_u64(&h, t->offset);
  }
  if (s == LZN_OK && !ok) s = lzn_fail(LZN_ERR_NOMEM, "%s: out of memory for the header", w->path);
  if (s == LZN_OK) s = emit(w, h.data, h.n);
  if (s == LZN_OK) s = emit_zeros(w, (w->alignment - h.n % w->alignment) % w->alignment);
  free(h.data);
  return s;
}

/* Past the tensors that are complete, writing each one's padding. */
static lzn_status finish_full_tensors(lzn_gguf_writer *w) {
  lzn_status s = LZN_OK;
  while (s == LZN_OK && w->tensor < w->n_tensors && w->written == w->tensors[w->tensor].n_bytes) {
    const uint64_t n = w->tensors[w->tensor].n_bytes;
    s = emit_zeros(w, (size_t)((w->alignment - n % w->alignment) % w->alignment));
    w->tensor++, w->written = 0;
  }
  return s;
}

lzn_status lzn_gguf_writer_write(lzn_gguf_writer *w, const void *data, size_t n) {
  lzn_status s = w->started ? LZN_OK : write_header(w);
  const unsigned char *p = data;
  while (s == LZN_OK && n > 0) {
    if (w->tensor >= w->n_tensors)
      return lzn_fail(LZN_ERR_INVALID_ARG, "%s: %zu bytes more than the tensors declared", w->path, n);
    const uint64_t room = w->tensors[w->tensor].n_bytes - w->written;
    const size_t k = room < n ? (size_t)room : n;
    s = emit(w, p, k);
    w->written += k, p += k, n -= k;
    if (s == LZN_OK) s = finish_full_tensors(w);
  }
  return s;
}

lzn_status lzn_gguf_writer_commit(lzn_gguf_writer *w) {
  lzn_status s = w->started ? LZN_OK : write_header(w);
  if (s == LZN_OK) s = finish_full_tensors(w); /* tensors of 0 bytes cannot exist, but be exact */
  if (s == LZN_OK && w->tensor < w->n_tensors)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: tensor \"%s\" has %llu of its %llu bytes", w->path,
                    w->tensors[w->tensor].name, (unsigned long long)w->written,
                    (unsigned long long)w->tensors[w->tensor].n_bytes);
  if (s == LZN_OK) s = flush_out(w);
  if (s == LZN_OK && fsync(w->fd) != 0) s = io_error(w, "fsync");
  if (s != LZN_OK) return s;
  const int closed = close(w->fd);
  w->fd = -1;
  if (closed != 0) return io_error(w, "close");
  if (rename(w->tmp_path, w->path) != 0) return io_error(w, "rename");
  w->committed = 1;
  return LZN_OK;
}
