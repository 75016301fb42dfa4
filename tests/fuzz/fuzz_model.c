/*
 * fuzz_model.c: a whole model from arbitrary bytes, through
 * lzn_model_load_memory, then one forward call when it loads.
 *
 * Input layout (little-endian):
 *   byte 0       control (fuzz_forward.h: mode, tokens, top_k, threshold)
 *   bytes 1-2    n = length of config.json
 *   n bytes      config.json
 *   the rest     model.safetensors
 * make_seeds.py writes seeds in this layout.
 *
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_forward.h"
#include "model/model.h"

enum { HEADER = 3 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < HEADER) return 0;
  const uint8_t control = data[0];
  const size_t config_len = (size_t)data[1] | (size_t)data[2] << 8;
  if (config_len > size - HEADER) return 0;
  const char *config = (const char *)data + HEADER;
  const uint8_t *weights = data + HEADER + config_len;
  const size_t weights_len = size - HEADER - config_len;
  lzn_model *model = NULL;
  const lzn_status s = lzn_model_load_memory(config, config_len, weights, weights_len, NULL, &model);
  if (getenv("LZN_FUZZ_VERBOSE")) /* for triage: why an input did not load */
    fprintf(stderr, "load: %s%s%s\n", lzn_status_str(s), s ? ": " : "", s ? lzn_last_error() : "");
  if (s != LZN_OK) {
    FUZZ_CHECK(model == NULL && lzn_last_error()[0] != '\0');
    return 0;
  }
  run_forward(model, control);
  lzn_model_free(model);
  return 0;
}
