/*
 * file.h: files into memory. Private.
 */
#ifndef LZN_FILE_H
#define LZN_FILE_H

#include <stddef.h>

#include "lazyneuron.h"

/* Reads a whole file into malloc'ed memory with a NUL after the last byte
 * (so a text file is also a C string); *size excludes the NUL. For the JSON
 * files beside the weights (config.json, the index).
 * Statuses: OK, INVALID_ARG, IO, NOMEM. */
lzn_status lzn_read_file(const char *path, char **bytes, size_t *size);

/* A whole regular file in memory: mapped read-only (use_mmap; advised onto
 * huge pages) or read into memory from lzn_alloc_weights (core/buffer.h);
 * *mapped says which. An empty file gives *bytes = NULL,
 * *size = 0 and LZN_OK (the format parser reports it). Release with
 * lzn_file_unload. Statuses: OK, IO, NOMEM. */
lzn_status lzn_file_load(const char *path, int use_mmap, void **bytes, size_t *size, int *mapped);
void lzn_file_unload(void *bytes, size_t size, int mapped);

#endif /* LZN_FILE_H */
