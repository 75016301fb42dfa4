/*
 * slot_file.c: see slot_file.h.
 */
#include "slot_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "LZNSLOT1"
#define HEAD 12 /* magic + int32 count */

static int file_error(char error[256], const char *what, const char *detail) {
  snprintf(error, 256, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
  return 0;
}

int slot_file_save(const char *path, const lzn_context *ctx, const int32_t *tokens, int n_tokens,
                   size_t *n_bytes, char error[256]) {
  const int64_t size = lzn_context_state_size(ctx);
  char *state = size > 0 ? malloc((size_t)size) : NULL;
  size_t written = 0;
  const lzn_status st = state ? lzn_context_state_save(ctx, state, (size_t)size, &written) : LZN_ERR_NOMEM;
  if (st != LZN_OK) {
    snprintf(error, 256, "lzn_context_state_save: %s: %s", lzn_status_str(st), lzn_last_error());
    free(state);
    return 0;
  }
  FILE *f = fopen(path, "wb");
  const int32_t n = n_tokens;
  int ok = f && fwrite(MAGIC, 1, 8, f) == 8 && fwrite(&n, sizeof n, 1, f) == 1 &&
           fwrite(tokens, sizeof *tokens, (size_t)n, f) == (size_t)n && fwrite(state, 1, written, f) == written;
  const int saved_errno = errno;
  if (f && fclose(f) != 0) ok = 0;
  free(state);
  if (!ok) return file_error(error, "cannot write the slot file", strerror(saved_errno));
  *n_bytes = HEAD + (size_t)n * sizeof *tokens + written;
  return 1;
}

/* The whole file, malloc'ed; NULL on failure. */
static char *read_all(const char *path, size_t *size, char error[256]) {
  FILE *f = fopen(path, "rb");
  if (!f) return file_error(error, "cannot open the slot file", strerror(errno)), NULL;
  long end = -1;
  char *bytes = NULL;
  if (fseek(f, 0, SEEK_END) == 0) end = ftell(f);
  if (end >= HEAD && fseek(f, 0, SEEK_SET) == 0 && (bytes = malloc((size_t)end)) != NULL &&
      fread(bytes, 1, (size_t)end, f) != (size_t)end)
    free(bytes), bytes = NULL;
  fclose(f);
  if (!bytes) return file_error(error, "cannot read the slot file, or it is too short", NULL), NULL;
  *size = (size_t)end;
  return bytes;
}

int slot_file_load(const char *path, lzn_context *ctx, int32_t *tokens, int max_tokens, int vocab,
                   int *n_tokens, size_t *n_bytes, char error[256]) {
  size_t size = 0;
  char *bytes = read_all(path, &size, error);
  if (!bytes) return 0;
  int32_t n;
  memcpy(&n, bytes + 8, sizeof n);
  const size_t head = HEAD + (size_t)(n > 0 ? n : 0) * sizeof(int32_t);
  int ok = memcmp(bytes, MAGIC, 8) == 0 && n >= 0 && n <= max_tokens && head <= size;
  if (!ok) file_error(error, "not a slot file of this server (magic, token count or size)", NULL);
  for (int i = 0; ok && i < n; i++) {
    int32_t id;
    memcpy(&id, bytes + HEAD + (size_t)i * sizeof id, sizeof id);
    if (id < 0 || id >= vocab) ok = file_error(error, "the slot file holds a token out of the vocabulary", NULL);
  }
  if (ok) {
    const lzn_status st = lzn_context_state_load(ctx, bytes + head, size - head);
    if (st != LZN_OK) {
      snprintf(error, 256, "lzn_context_state_load: %s: %s", lzn_status_str(st), lzn_last_error());
      ok = 0;
    } else if (lzn_context_n_past(ctx) != n) {
      lzn_context_truncate(ctx, 0);
      ok = file_error(error, "the slot file's token count and state disagree", NULL);
    }
  }
  if (ok) {
    memcpy(tokens, bytes + HEAD, (size_t)n * sizeof(int32_t));
    *n_tokens = n, *n_bytes = size;
  }
  free(bytes);
  return ok;
}
