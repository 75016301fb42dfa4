/*
 * gguf_write.h: writing a GGUF v3 file (the layout of gguf.h), streamed:
 * metadata and tensor descriptions first, then each tensor's bytes in the
 * order they were declared, so a file of any size is written with the
 * memory of one tensor at most. Private.
 *
 * The file is written under a temporary name beside the destination
 * ("PATH.tmp.PID.N", created exclusively, mode 0666 & ~umask) and renamed
 * to PATH by lzn_gguf_writer_commit, so a failure (a full disk, a bad
 * tensor, a cancelled caller) never leaves a partial PATH behind, and an
 * existing PATH is replaced only by a complete file. lzn_gguf_writer_free
 * without a commit removes the temporary file.
 */
#ifndef LZN_GGUF_WRITE_H
#define LZN_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "format/gguf.h"

typedef struct lzn_gguf_writer lzn_gguf_writer;

/* A writer for path, tensors aligned to alignment (a power of two >= 8;
 * written as general.alignment unless it is GGUF's default 32). Creates the
 * temporary file now, so an unwritable folder fails here. magic: "GGUF" or
 * "PWRI" (NULL: "GGUF"). Statuses: OK, INVALID_ARG, IO, NOMEM. */
lzn_status lzn_gguf_writer_open(const char *path, uint32_t alignment, const char *magic,
                                lzn_gguf_writer **out);

/* Removes the temporary file unless committed, and frees. NULL: no-op. */
void lzn_gguf_writer_free(lzn_gguf_writer *w);

/* Metadata, before the first lzn_gguf_writer_write. A key set twice keeps
 * its first place and its last value. Keys are non-empty, without NUL.
 * copy_kv copies an entry of a parsed file (any type, arrays included).
 * Statuses: OK, INVALID_ARG (a bad key, or after the data started), NOMEM. */
lzn_status lzn_gguf_writer_copy_kv(lzn_gguf_writer *w, const lzn_gguf_kv *kv);
lzn_status lzn_gguf_writer_set_u32(lzn_gguf_writer *w, const char *key, uint32_t value);
lzn_status lzn_gguf_writer_set_bool(lzn_gguf_writer *w, const char *key, int value);
lzn_status lzn_gguf_writer_set_string(lzn_gguf_writer *w, const char *key, const char *value);

/* Declares the next tensor: name (unique), type, shape outermost first
 * (1 to 4 dimensions, each >= 1; a block type's innermost dimension a
 * multiple of its block). Its bytes are rows x lzn_wtype_row_bytes(type,
 * innermost). Statuses: OK, INVALID_ARG (naming the rule), NOMEM. */
lzn_status lzn_gguf_writer_add_tensor(lzn_gguf_writer *w, const char *name, lzn_weight_type type,
                                      int n_dims, const int64_t *shape);

/* Appends n bytes of tensor data, in declaration order, in pieces of any
 * size (a piece may span tensors); padding between tensors is written
 * here. The first call writes the header. Statuses: OK, INVALID_ARG (more
 * bytes than the tensors take), IO (naming the file and errno). */
lzn_status lzn_gguf_writer_write(lzn_gguf_writer *w, const void *data, size_t n);

/* Checks that every tensor's bytes were written, flushes, syncs and
 * renames the file to its path. Statuses: OK, INVALID_ARG (bytes missing),
 * IO. After a failure the temporary file is still removed by free. */
lzn_status lzn_gguf_writer_commit(lzn_gguf_writer *w);


#endif /* LZN_GGUF_WRITE_H */
