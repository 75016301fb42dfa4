/*
 * fuzz_index.c: lzn_st_index_parse (model.safetensors.index.json) on
 * arbitrary bytes.
 *
 * On success every shard must be a plain, non-empty file name inside the
 * model folder (no '/', '\\', "." or ".."), each listed once: the loader
 * joins them to the folder path and opens them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "format/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char **shards;
  size_t n_shards;
  if (lzn_st_index_parse((const char *)data, size, NULL, &shards, &n_shards) != LZN_OK) {
    FUZZ_CHECK(shards == NULL && n_shards == 0);
    FUZZ_CHECK(lzn_last_error()[0] != '\0');
    return 0;
  }
  FUZZ_CHECK(n_shards >= 1 && shards != NULL);
  for (size_t i = 0; i < n_shards; i++) {
    const char *s = shards[i];
    FUZZ_CHECK(s != NULL && s[0] != '\0');
    FUZZ_CHECK(strchr(s, '/') == NULL && strchr(s, '\\') == NULL);
    FUZZ_CHECK(strcmp(s, ".") != 0 && strcmp(s, "..") != 0);
    for (size_t j = 0; j < i; j++) FUZZ_CHECK(strcmp(shards[j], s) != 0);
  }
  lzn_st_index_free(shards, n_shards);
  return 0;
}
