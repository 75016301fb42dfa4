/*
 * safetensors.h: safetensors files, validated as the reference implementation
 * (huggingface/safetensors) validates them, and the sharded index
 * (model.safetensors.index.json) of a Hugging Face model folder (st_index.c).
 * Private to the library.
 *
 * A safetensors file is: a little-endian u64 N, then N bytes of JSON header
 * (an object: tensor name -> {dtype, shape, data_offsets}, plus an optional
 * "__metadata__" object of strings), then the data section. data_offsets are
 * relative to the start of the data section; the tensors tile it exactly.
 */
#ifndef LZN_SAFETENSORS_H
#define LZN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/file.h"
#include "format/tensor.h"
#include "lazyneuron.h"

#define LZN_ST_MAX_DIMS 8

/* The reference implementation's limit on the JSON header, in bytes. */
#define LZN_ST_MAX_HEADER_SIZE 100000000u

/* A tensor of a safetensors file: the format-neutral description. */
typedef lzn_file_tensor lzn_st_tensor;

/* One "__metadata__" entry, copied. */
typedef struct lzn_st_meta {
  char *key, *value;
} lzn_st_meta;

typedef struct lzn_st_file {
  char *path;
  lzn_st_meta *metadata;  /* "__metadata__", in file order */
  size_t n_metadata;
  lzn_st_tensor *tensors; /* in file order: sorted by data_offset */
  size_t n_tensors;
  void *bytes;            /* the whole file: mmap'ed or malloc'ed */
  size_t size;
  int mapped;             /* 1: bytes is a mapping (munmap), 0: malloc'ed */
  int owns_bytes;         /* 0 after lzn_st_parse: the caller owns bytes */
} lzn_st_file;

/* Parses a safetensors image already in memory; tensors point into bytes (not
 * owned: lzn_st_close won't free/unmap bytes when parsed this way), which must
 * outlive *out. path_for_errors names the image in messages (NULL: "(memory)").
 * On failure *out is zeroed. Statuses: OK, INVALID_ARG, FORMAT, UNSUPPORTED
 * (a dtype safetensors knows but lazyneuron does not read), NOMEM. */
lzn_status lzn_st_parse(const void *bytes, size_t size, const char *path_for_errors,
                        lzn_st_file *out);

/* Opens (mmap if use_mmap, else read into malloc'ed memory) and parses.
 * Statuses: those of lzn_st_parse, and IO. */
lzn_status lzn_st_open(const char *path, int use_mmap, lzn_st_file *out);

/* Releases what lzn_st_parse / lzn_st_open made and zeroes *f. Safe on a
 * zeroed struct and on NULL. */
void lzn_st_close(lzn_st_file *f);

/* All tensors of a model: a folder with model.safetensors, or with
 * model.safetensors.index.json + shards, or a single .safetensors file. */
typedef struct lzn_weights {
  lzn_st_file *files;
  size_t n_files;
  /* Every tensor of every file, sorted by name (strcmp), for
   * lzn_weights_find's binary search. Points into files[*].tensors. */
  const lzn_st_tensor **by_name;
  size_t n_tensors;
} lzn_weights;

/* Opens the weights at path (see lzn_weights). For a sharded folder, also
 * checks that every tensor of the weight_map is in the shard it names and
 * that no tensor is in two shards. On failure *out is zeroed.
 * Statuses: OK, INVALID_ARG, IO, FORMAT, UNSUPPORTED, NOMEM. */
lzn_status lzn_weights_open(const char *path, int use_mmap, lzn_weights *out);
/* Safe on a zeroed struct and on NULL. */
void lzn_weights_close(lzn_weights *w);
/* The tensor with this exact name, or NULL if absent (or w/name is NULL). */
const lzn_st_tensor *lzn_weights_find(const lzn_weights *w, const char *name);

/* The shard index (model.safetensors.index.json): unique shard file names in
 * first-seen order, each a plain file name inside the model folder. *shards
 * is freed with lzn_st_index_free. Statuses: OK, INVALID_ARG, FORMAT, NOMEM. */
lzn_status lzn_st_index_parse(const char *json, size_t len, const char *path_for_errors,
                              char ***shards, size_t *n_shards);
void lzn_st_index_free(char **shards, size_t n_shards);


#endif /* LZN_SAFETENSORS_H */
