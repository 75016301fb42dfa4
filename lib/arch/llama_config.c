/*
 * llama_config.c: a LLaMA-family model configuration from config.json.
 *
 * Defaults are transformers' LlamaConfig's: num_key_value_heads =
 * num_attention_heads, head_dim = hidden_size / num_attention_heads,
 * rms_norm_eps 1e-6, rope_theta 10000, no attention bias, untied LM head.
 * The activation is hidden_act: "relu" (ReluLLaMA), "fatrelu" with its
 * threshold in hidden_act_param (ProSparse and MiniCPM-S write it so),
 * "drelu" or a Bamboo architecture with "relu" (TurboSparse and Bamboo:
 * relu on both the gate and the up projection), "silu" (SwiGLU).
 */
#include "arch/llama_config.h"

#include <stdio.h>
#include <string.h>

#include "core/errors.h"

static const char *const llama_model_types[] = {"llama", "mistral", "bamboo", NULL};
static const char *const llama_architectures[] = {"LlamaForCausalLM", "MistralForCausalLM",
                                                  "BambooForCausalLM", NULL};
static const char *const bamboo_model_types[] = {"bamboo", NULL};
static const char *const bamboo_architectures[] = {"BambooForCausalLM", NULL};

int lzn_llama_config_matches(const char *json, size_t len) {
  json_t *root = json_loadb(json ? json : "", json ? len : 0, 0, NULL);
  const int matches = root && json_is_object(root) &&
                      lzn_cfg_names_any(root, llama_model_types, llama_architectures);
  json_decref(root);
  return matches;
}

static lzn_status read_activation(const char *path, const json_t *root, lzn_llama_config *c) {
  const char *act;
  lzn_status s = lzn_cfg_string(path, root, "hidden_act", "silu", &act);
  if (s != LZN_OK) return s;
  const int bamboo = lzn_cfg_names_any(root, bamboo_model_types, bamboo_architectures);
  if (strcmp(act, "relu") == 0) c->activation = bamboo ? LZN_ACT_DRELU : LZN_ACT_RELU;
  else if (strcmp(act, "drelu") == 0) c->activation = LZN_ACT_DRELU;
  else if (strcmp(act, "silu") == 0 || strcmp(act, "swish") == 0) c->activation = LZN_ACT_SILU;
  else if (strcmp(act, "fatrelu") == 0) {
    c->activation = LZN_ACT_FATRELU;
    if (lzn_cfg_get(root, "hidden_act_param") == NULL)
      return lzn_fail(LZN_ERR_FORMAT, "%s: hidden_act \"fatrelu\" needs its threshold in "
                      "\"hidden_act_param\"", path);
    return lzn_cfg_number(path, root, "hidden_act_param", 0.0, 0.0, 1e30, &c->activation_threshold);
  } else {
    return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (lazyneuron runs "
                    "relu, fatrelu, drelu and silu)", path, act);
  }
  return LZN_OK;
}

/* rope_scaling: null, or {"type" or "rope_type": "linear", "factor": f}. */
static lzn_status read_rope_scaling(const char *path, const json_t *root, lzn_llama_config *c) {
  c->rope_linear_factor = 1.0;
  const json_t *scaling = lzn_cfg_get(root, "rope_scaling");
  if (scaling == NULL) return LZN_OK;
  if (!json_is_object(scaling))
    return lzn_fail(LZN_ERR_FORMAT, "%s: \"rope_scaling\" must be an object or null", path);
  const char *kind = NULL;
  lzn_status s = lzn_cfg_string(path, scaling, "rope_type", NULL, &kind);
  if (s == LZN_OK && kind == NULL) s = lzn_cfg_string(path, scaling, "type", NULL, &kind);
  if (s != LZN_OK) return s;
  if (kind == NULL || strcmp(kind, "linear") != 0)
    return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: rope_scaling type \"%s\" is not supported "
                    "(lazyneuron runs null or \"linear\")", path, kind ? kind : "(none)");
  if (lzn_cfg_get(scaling, "factor") == NULL)
    return lzn_fail(LZN_ERR_FORMAT, "%s: rope_scaling \"linear\" needs a \"factor\"", path);
  return lzn_cfg_number(path, scaling, "factor", 1.0, 1e-6, 1e6, &c->rope_linear_factor);
}

static lzn_status parse_root(const char *path, const json_t *root, lzn_llama_config *c) {
  lzn_status s = LZN_OK;
#define SIZE(field, required, fallback, dst) \
  if (s == LZN_OK) s = lzn_cfg_size(path, root, field, required, fallback, dst)
  SIZE("hidden_size", 1, 0, &c->hidden_size);
  SIZE("intermediate_size", 1, 0, &c->intermediate_size);
  SIZE("num_attention_heads", 1, 0, &c->num_attention_heads);
  SIZE("num_hidden_layers", 1, 0, &c->num_hidden_layers);
  SIZE("vocab_size", 1, 0, &c->vocab_size);
  SIZE("max_position_embeddings", 1, 0, &c->max_position_embeddings);
  SIZE("num_key_value_heads", 0, c->num_attention_heads, &c->num_key_value_heads);
  if (s == LZN_OK && c->hidden_size % c->num_attention_heads != 0 && lzn_cfg_get(root, "head_dim") == NULL)
    return lzn_fail(LZN_ERR_FORMAT, "%s: hidden_size %d is not divisible by num_attention_heads %d "
                    "(and no head_dim is given)", path, c->hidden_size, c->num_attention_heads);
  SIZE("head_dim", 0, c->num_attention_heads ? c->hidden_size / c->num_attention_heads : 0, &c->head_dim);
#undef SIZE
  if (s != LZN_OK) return s;
  if (c->head_dim % 2 != 0)
    return lzn_fail(LZN_ERR_FORMAT, "%s: head_dim %d is odd; rotary embeddings rotate halves", path,
                    c->head_dim);
  if (c->num_attention_heads % c->num_key_value_heads != 0)
    return lzn_fail(LZN_ERR_FORMAT, "%s: num_key_value_heads %d does not divide num_attention_heads %d",
                    path, c->num_key_value_heads, c->num_attention_heads);
  if ((int64_t)c->num_attention_heads * c->head_dim > LZN_CONFIG_MAX_SIZE)
    return lzn_fail(LZN_ERR_FORMAT, "%s: num_attention_heads x head_dim is beyond the limit of %d",
                    path, LZN_CONFIG_MAX_SIZE);
  s = lzn_cfg_number(path, root, "rms_norm_eps", 1e-6, 0.0, 1.0, &c->rms_norm_eps);
  if (s == LZN_OK) s = lzn_cfg_number(path, root, "rope_theta", 10000.0, 1e-3, 1e30, &c->rope_theta);
  if (s == LZN_OK) s = read_rope_scaling(path, root, c);
  if (s == LZN_OK) s = lzn_cfg_bool(path, root, "attention_bias", 0, &c->attention_bias);
  if (s == LZN_OK) s = lzn_cfg_bool(path, root, "tie_word_embeddings", 0, &c->tie_word_embeddings);
  int mlp_bias = 0;
  if (s == LZN_OK) s = lzn_cfg_bool(path, root, "mlp_bias", 0, &mlp_bias);
  if (s == LZN_OK && mlp_bias)
    return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: mlp_bias true is not supported", path);
  if (s == LZN_OK) s = read_activation(path, root, c);
  const char *type = NULL;
  if (s == LZN_OK) s = lzn_cfg_string(path, root, "model_type", "llama", &type);
  if (s == LZN_OK) snprintf(c->architecture, sizeof c->architecture, "%s", type);
  return s;
}

lzn_status lzn_llama_config_parse(const char *json, size_t len, const char *path_for_errors,
                                  lzn_llama_config *out) {
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_llama_config_parse: out is NULL");
  memset(out, 0, sizeof *out);
  if (json == NULL && len != 0)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_llama_config_parse: json is NULL");
  const char *path = path_for_errors != NULL ? path_for_errors : "config.json";
  json_error_t error;
  json_t *root = json_loadb(json != NULL ? json : "", len, JSON_REJECT_DUPLICATES, &error);
  if (root == NULL)
    return lzn_fail(LZN_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s", path, error.line,
                    error.column, error.text);
  lzn_status status = json_is_object(root) ? parse_root(path, root, out)
                                           : lzn_fail(LZN_ERR_FORMAT, "%s: must be a JSON object", path);
  json_decref(root);
  if (status != LZN_OK) memset(out, 0, sizeof *out);
  return status;
}
