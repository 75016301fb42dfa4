/*
 * arch.c: which architecture a config.json describes, and its builder.
 */
#include "arch/arch.h"

#include <string.h>

#include "arch/gguf_keys.h"

lzn_status lzn_arch_parse_hf(const char *config_json, size_t config_len,
                             const char *path_for_errors, lzn_hf_config *out) {
  memset(out, 0, sizeof *out);
  if (lzn_llama_config_matches(config_json, config_len)) {
    out->family = LZN_ARCH_LLAMA;
    return lzn_llama_config_parse(config_json, config_len, path_for_errors, &out->llama);
  }
  /* Everything else goes to the OPT parser, which names what it finds
   * instead (an unknown architecture is UNSUPPORTED there). */
  out->family = LZN_ARCH_OPT;
  return lzn_opt_config_parse(config_json, config_len, path_for_errors, &out->opt);
}

lzn_status lzn_arch_parse_gguf(const lzn_gguf_file *f, lzn_hf_config *out) {
  memset(out, 0, sizeof *out);
  char arch[32];
  const lzn_status s = lzn_gguf_key_text(f, "general.architecture", arch, sizeof arch);
  if (s != LZN_OK) return s;
  if (strcmp(arch, "opt") == 0) {
    out->family = LZN_ARCH_OPT;
    return lzn_opt_config_from_gguf(f, &out->opt);
  }
  /* The LLaMA reader names what it finds instead (missing, unsupported). */
  out->family = LZN_ARCH_LLAMA;
  return lzn_llama_config_from_gguf(f, &out->llama);
}

lzn_status lzn_arch_build(lzn_model *m, const lzn_hf_config *config,
                          const lzn_model_params *params) {
  if (config->family == LZN_ARCH_LLAMA) return lzn_llama_build(m, &config->llama, params);
  return lzn_opt_build(m, &config->opt, params);
}
