/*
 * arch.h: config + named tensors -> a model description, per architecture.
 * Private.
 *
 * An architecture reads its config (Hugging Face config.json today),
 * fills m->arch (which norm, where, how positions enter, which MLP) and
 * the sizes, and binds every tensor of m->weights to the model's matrices
 * and vectors. One-time quirks of a family live in its file (OPT's
 * position offset of 2 and post-LN variants in opt.c), never in forward/.
 */
#ifndef LZN_ARCH_H
#define LZN_ARCH_H

#include "arch/llama_config.h"
#include "arch/opt_config.h"
#include "model/model.h"

/* A parsed Hugging Face config.json, of one of the architectures. */
typedef enum lzn_arch_family { LZN_ARCH_OPT = 0, LZN_ARCH_LLAMA = 1 } lzn_arch_family;
typedef struct lzn_hf_config {
  lzn_arch_family family;
  lzn_opt_config opt;     /* family OPT */
  lzn_llama_config llama; /* family LLAMA (llama, mistral, bamboo) */
} lzn_hf_config;

/* Parses config.json text (path_for_errors names it in messages).
 * Statuses: OK, INVALID_ARG, FORMAT, UNSUPPORTED (an architecture or
 * activation lazyneuron does not run). */
lzn_status lzn_arch_parse_hf(const char *config_json, size_t config_len,
                             const char *path_for_errors, lzn_hf_config *out);

/* The configuration in a GGUF file's metadata, by general.architecture:
 * "opt" (opt_gguf.c), else the LLaMA family (llama_gguf.c, which rejects
 * the architectures it does not know). Statuses: OK, FORMAT, UNSUPPORTED. */
lzn_status lzn_arch_parse_gguf(const lzn_gguf_file *f, lzn_hf_config *out);

/* Builds m from the config and the tensors already opened in m->weights.
 * On failure the caller frees m. Statuses: OK, FORMAT, NOMEM, CANCELLED. */
lzn_status lzn_arch_build(lzn_model *m, const lzn_hf_config *config,
                          const lzn_model_params *params);

/* Each family's builder (opt.c, llama.c), called by lzn_arch_build. */
lzn_status lzn_opt_build(lzn_model *m, const lzn_opt_config *c, const lzn_model_params *params);
lzn_status lzn_llama_build(lzn_model *m, const lzn_llama_config *c, const lzn_model_params *params);

/* A family's description and sizes from its config, without tensors: for
 * the builders of in-memory models (bench/synthetic.c). */
void lzn_opt_describe(lzn_model *m, const lzn_opt_config *c);
void lzn_llama_describe(lzn_model *m, const lzn_llama_config *c);

#endif /* LZN_ARCH_H */
