/*
 * opt_config.c: an OPT model configuration from a Hugging Face config.json.
 *
 * Required sizes must be present; the optional fields take the defaults of
 * transformers' OPTConfig, so a config.json that transformers loads loads here
 * the same way. Only ReLU OPT models are accepted: the sparsity lazyneuron
 * exploits is the exact zeros of ReLU.
 */
#include "arch/opt_config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "arch/config_json.h"
#include "core/errors.h"
#include "core/json.h"
#include "core/file.h"

static const struct {
  const char *name;
  size_t offset;
} required_sizes[] = {
    {"hidden_size", offsetof(lzn_opt_config, hidden_size)},
    {"ffn_dim", offsetof(lzn_opt_config, ffn_dim)},
    {"num_attention_heads", offsetof(lzn_opt_config, num_attention_heads)},
    {"num_hidden_layers", offsetof(lzn_opt_config, num_hidden_layers)},
    {"vocab_size", offsetof(lzn_opt_config, vocab_size)},
    {"max_position_embeddings", offsetof(lzn_opt_config, max_position_embeddings)},
};

/* Optional booleans and OPTConfig's default for each. */
static const struct {
  const char *name;
  size_t offset;
  int fallback;
} optional_flags[] = {
    {"do_layer_norm_before", offsetof(lzn_opt_config, do_layer_norm_before), 1},
    {"enable_bias", offsetof(lzn_opt_config, enable_bias), 1},
    {"layer_norm_elementwise_affine", offsetof(lzn_opt_config, layer_norm_elementwise_affine), 1},
    {"tie_word_embeddings", offsetof(lzn_opt_config, tie_word_embeddings), 1},
    {"_remove_final_layer_norm", offsetof(lzn_opt_config, remove_final_layer_norm), 0},
};

static int *config_field(lzn_opt_config *config, size_t offset) {
  return (int *)(void *)((char *)config + offset);
}

static lzn_status read_sizes(const char *path, const json_t *root, lzn_opt_config *out) {
  for (size_t i = 0; i < sizeof required_sizes / sizeof required_sizes[0]; i++) {
    const char *field = required_sizes[i].name;
    const lzn_status status =
        lzn_cfg_size(path, root, field, 1, 0, config_field(out, required_sizes[i].offset));
    if (status != LZN_OK) return status;
  }
  /* OPTConfig: word_embed_proj_dim defaults to hidden_size; when they differ
   * the model has project_in / project_out. */
  return lzn_cfg_size(path, root, "word_embed_proj_dim", 0, out->hidden_size,
                      &out->word_embed_proj_dim);
}

static lzn_status read_flags(const char *path, const json_t *root, lzn_opt_config *out) {
  for (size_t i = 0; i < sizeof optional_flags / sizeof optional_flags[0]; i++) {
    const lzn_status status = lzn_cfg_bool(path, root, optional_flags[i].name, optional_flags[i].fallback,
                                           config_field(out, optional_flags[i].offset));
    if (status != LZN_OK) return status;
  }
  return LZN_OK;
}

/* model_type and architectures, when present, must say OPT. */
static lzn_status check_architecture(const char *path, const json_t *root) {
  const json_t *model_type = lzn_cfg_get(root, "model_type");
  if (model_type != NULL && !json_is_string(model_type))
    return lzn_fail(LZN_ERR_FORMAT, "%s: \"model_type\" must be a string, got %s", path, lzn_json_kind(model_type));
  if (model_type != NULL && strcmp(json_string_value(model_type), "opt") != 0)
    return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: unknown architecture: model_type \"%s\" (lazyneuron reads opt, llama, mistral, bamboo)",
                    path, json_string_value(model_type));
  const json_t *architectures = lzn_cfg_get(root, "architectures");
  if (architectures == NULL) return LZN_OK;
  if (!json_is_array(architectures))
    return lzn_fail(LZN_ERR_FORMAT, "%s: \"architectures\" must be an array of strings, got %s",
                    path, lzn_json_kind(architectures));
  size_t i;
  const json_t *name;
  json_array_foreach(architectures, i, name) {
    if (!json_is_string(name))
      return lzn_fail(LZN_ERR_FORMAT, "%s: \"architectures\"[%zu] must be a string, got %s", path, i, lzn_json_kind(name));
  }
  json_array_foreach(architectures, i, name) {
    if (strcmp(json_string_value(name), "OPTForCausalLM") == 0 || strcmp(json_string_value(name), "OPTModel") == 0)
      return LZN_OK;
  }
  const json_t *first = json_array_get(architectures, 0);
  if (first == NULL)
    return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: unknown architecture: \"architectures\" is empty (lazyneuron reads OPTForCausalLM, LlamaForCausalLM, MistralForCausalLM, BambooForCausalLM)",
                    path);
  return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: unknown architecture: \"architectures\" names \"%s\"%s (lazyneuron reads OPTForCausalLM, LlamaForCausalLM, MistralForCausalLM, BambooForCausalLM)",
                  path, json_string_value(first), json_array_size(architectures) > 1 ? " and others" : "");
}

static lzn_status check_activation(const char *path, const json_t *root) {
  const json_t *activation = lzn_cfg_get(root, "activation_function");
  if (activation == NULL) return LZN_OK; /* OPTConfig's default: "relu" */
  if (!json_is_string(activation))
    return lzn_fail(LZN_ERR_FORMAT, "%s: \"activation_function\" must be a string, got %s", path, lzn_json_kind(activation));
  if (strcmp(json_string_value(activation), "relu") != 0)
    return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: activation_function \"%s\" is not supported: lazyneuron needs \"relu\" (its sparsity is ReLU's zeros)",
                    path, json_string_value(activation));
  return LZN_OK;
}

static lzn_status parse_root(const char *path, const json_t *root, lzn_opt_config *out) {
  lzn_status status = check_architecture(path, root);
  if (status == LZN_OK) status = read_sizes(path, root, out);
  if (status == LZN_OK) status = read_flags(path, root, out);
  if (status == LZN_OK) status = check_activation(path, root);
  if (status == LZN_OK && out->hidden_size % out->num_attention_heads != 0)
    status = lzn_fail(LZN_ERR_FORMAT, "%s: hidden_size %d is not divisible by num_attention_heads %d",
                      path, out->hidden_size, out->num_attention_heads);
  return status;
}

lzn_status lzn_opt_config_parse(const char *json, size_t len, const char *path_for_errors,
                            lzn_opt_config *out) {
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_opt_config_parse: out is NULL");
  memset(out, 0, sizeof *out);
  if (json == NULL && len != 0) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_opt_config_parse: json is NULL");
  const char *path = path_for_errors != NULL ? path_for_errors : "config.json";
  json_error_t error;
  json_t *root = json_loadb(json != NULL ? json : "", len, JSON_REJECT_DUPLICATES, &error);
  if (root == NULL)
    return lzn_fail(LZN_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s",
                    path, error.line, error.column, error.text);
  lzn_status status = json_is_object(root)
                          ? parse_root(path, root, out)
                          : lzn_fail(LZN_ERR_FORMAT, "%s: must be a JSON object", path);
  json_decref(root);
  if (status != LZN_OK) memset(out, 0, sizeof *out);
  return status;
}

lzn_status lzn_config_load(const char *path, lzn_opt_config *out) {
  if (out != NULL) memset(out, 0, sizeof *out);
  if (path == NULL || out == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_config_load: path and out must not be NULL");
  char *json;
  size_t len;
  lzn_status status = lzn_read_file(path, &json, &len);
  if (status != LZN_OK) return status;
  status = lzn_opt_config_parse(json, len, path, out);
  free(json);
  return status;
}
