/*
 * fuzz_safetensors.c: lzn_st_parse on arbitrary bytes.
 *
 * Beyond the sanitizers, checks what the parser promises on success: every
 * tensor lies inside the image, its byte count is shape x dtype, and the
 * tensors tile the data section in order. Each tensor's first and last
 * bytes are read, so ASan sees an out-of-bounds pointer at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "format/safetensors.h"

/* Where the tensors' bytes go, so the compiler cannot drop the reads. */
static volatile unsigned sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lzn_st_file file;
  if (lzn_st_parse(data, size, NULL, &file) != LZN_OK) {
    FUZZ_CHECK(file.tensors == NULL && file.n_tensors == 0 && file.path == NULL);
    FUZZ_CHECK(lzn_last_error()[0] != '\0');
    return 0;
  }
  const uint8_t *end = data + size;
  const uint8_t *cursor = file.n_tensors ? (const uint8_t *)file.tensors[0].data : end;
  for (size_t i = 0; i < file.n_tensors; i++) {
    const lzn_st_tensor *t = &file.tensors[i];
    const uint8_t *bytes = t->data;
    FUZZ_CHECK(t->name != NULL && t->file != NULL);
    FUZZ_CHECK(t->n_dims >= 0 && t->n_dims <= LZN_ST_MAX_DIMS);
    FUZZ_CHECK(strcmp(lzn_wtype_name(t->dtype), "?") != 0);
    FUZZ_CHECK((uint64_t)t->n_elements * lzn_wtype_block_bytes(t->dtype) == t->n_bytes);
    FUZZ_CHECK(bytes == cursor && bytes >= data + 8 && t->n_bytes <= (size_t)(end - bytes));
    if (t->n_bytes) sink = bytes[0] + bytes[t->n_bytes - 1];
    cursor = bytes + t->n_bytes;
  }
  FUZZ_CHECK(cursor == end);
  lzn_st_close(&file);
  return 0;
}
