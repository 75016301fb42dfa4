/*
 * fuzz_gguf_model.c: a whole model from a GGUF image (llama.cpp's, or
 * PowerInfer's PWRI with its predictor), through lzn_model_load_gguf_memory,
 * then one forward call when it loads. Where fuzz_gguf checks the parser,
 * this reaches what is built on it: the config from metadata, tensor shapes
 * and types against the model, the predictor's shapes (issue 24: a rank
 * that was read as d_ff) and the tokenizer.
 *
 * Input layout: byte 0 control (fuzz_forward.h: mode, tokens, top_k,
 * threshold), the rest the GGUF file. make_seeds.py writes seeds so.
 */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "fuzz_forward.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  lzn_model *model = NULL;
  const lzn_status s = lzn_model_load_gguf_memory(data + 1, size - 1, NULL, &model);
  if (getenv("LZN_FUZZ_VERBOSE"))
    fprintf(stderr, "load: %s%s%s\n", lzn_status_str(s), s ? ": " : "", s ? lzn_last_error() : "");
  if (s != LZN_OK) {
    FUZZ_CHECK(model == NULL && lzn_last_error()[0] != '\0');
    return 0;
  }
  run_forward(model, data[0]);
  lzn_model_free(model);
  return 0;
}
