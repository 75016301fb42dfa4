/*
 * test_arch.c: architectures: an OPT config.json (transformers' OPTConfig
 * defaults, required sizes, activations, architectures). Each malformed
 * config is checked for its specific status and for a message that names
 * the field. (Loading a whole model folder is tests/test_forward.c.)
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/opt_config.h"
#include "testfiles.h"

/* ------------------------------------------------------------------ config */

/* facebook/opt-125m's config.json, as published. */
static const char *const opt_125m_config =
    "{'_name_or_path':'opt-125m','_remove_final_layer_norm':false,'activation_dropout':0.0,"
    "'activation_function':'relu','architectures':['OPTForCausalLM'],'attention_dropout':0.0,"
    "'bos_token_id':2,'do_layer_norm_before':true,'dropout':0.1,'eos_token_id':2,'ffn_dim':3072,"
    "'hidden_size':768,'init_std':0.02,'layerdrop':0.0,'max_position_embeddings':2048,"
    "'model_type':'opt','num_attention_heads':12,'num_hidden_layers':12,'pad_token_id':1,"
    "'prefix':'</s>','torch_dtype':'float16','transformers_version':'4.21.0.dev0',"
    "'use_cache':true,'vocab_size':50272,'word_embed_proj_dim':768}";

/* The 125m config with one field replaced (value NULL: removed). */
static char *config_with(const char *field, const char *value_json) {
  char *text = quoted(opt_125m_config);
  json_t *root = json_loads(text, 0, NULL);
  ck_assert_ptr_nonnull(root);
  free(text);
  if (value_json == NULL) {
    ck_assert_int_eq(json_object_del(root, field), 0);
  } else {
    char *value_text = quoted(value_json);
    json_t *value = json_loads(value_text, JSON_DECODE_ANY, NULL);
    ck_assert_ptr_nonnull(value);
    free(value_text);
    ck_assert_int_eq(json_object_set_new(root, field, value), 0);
  }
  char *out = json_dumps(root, 0);
  ck_assert_ptr_nonnull(out);
  json_decref(root);
  return out;
}

static void config_expecting(int line, const char *json, lzn_status expected, const char *const *words) {
  lzn_opt_config config;
  const lzn_status status = lzn_opt_config_parse(json, strlen(json), "opt/config.json", &config);
  ck_assert_msg(status == expected, "line %d: %s: got %s (%s)", line, json, lzn_status_str(status),
                lzn_last_error());
  if (expected != LZN_OK) {
    ck_assert_int_eq(config.hidden_size, 0);
    assert_mentions(line, json, words);
    ck_assert_ptr_nonnull(strstr(lzn_last_error(), "opt/config.json"));
  }
}
#define EXPECT_CONFIG(json, status, ...) \
  config_expecting(__LINE__, json, status, (const char *const[]){__VA_ARGS__, NULL})

/* EXPECT_CONFIG on the 125m config with field set to value (NULL: removed). */
#define EXPECT_CONFIG_WITH(field, value, status, ...)                            \
  do {                                                                          \
    char *json_ = config_with(field, value);                                    \
    config_expecting(__LINE__, json_, status, (const char *const[]){__VA_ARGS__, NULL}); \
    free(json_);                                                                \
  } while (0)

START_TEST(config_opt_125m) {
  char *json = quoted(opt_125m_config);
  lzn_opt_config c;
  ck_assert_int_eq(lzn_opt_config_parse(json, strlen(json), NULL, &c), LZN_OK);
  ck_assert_int_eq(c.hidden_size, 768);
  ck_assert_int_eq(c.ffn_dim, 3072);
  ck_assert_int_eq(c.num_attention_heads, 12);
  ck_assert_int_eq(c.num_hidden_layers, 12);
  ck_assert_int_eq(c.max_position_embeddings, 2048);
  ck_assert_int_eq(c.vocab_size, 50272);
  ck_assert_int_eq(c.word_embed_proj_dim, 768);
  ck_assert_int_eq(c.do_layer_norm_before, 1);
  ck_assert_int_eq(c.enable_bias, 1);
  ck_assert_int_eq(c.layer_norm_elementwise_affine, 1);
  ck_assert_int_eq(c.tie_word_embeddings, 1);
  ck_assert_int_eq(c.remove_final_layer_norm, 0);
  free(json);
}
END_TEST

START_TEST(config_each_required_field_missing) {
  const char *required[] = {"hidden_size", "ffn_dim", "num_attention_heads", "num_hidden_layers",
                            "vocab_size", "max_position_embeddings"};
  for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
    char expected[64];
    snprintf(expected, sizeof expected, "missing required field \"%s\"", required[i]);
    EXPECT_CONFIG_WITH(required[i], NULL, LZN_ERR_FORMAT, expected);
  }
}
END_TEST

START_TEST(config_bad_sizes) {
  EXPECT_CONFIG_WITH("hidden_size", "0", LZN_ERR_FORMAT, "\"hidden_size\" is 0", "positive integer");
  EXPECT_CONFIG_WITH("ffn_dim", "-3072", LZN_ERR_FORMAT, "\"ffn_dim\" is -3072");
  EXPECT_CONFIG_WITH("vocab_size", "50272.5", LZN_ERR_FORMAT, "\"vocab_size\"", "real number");
  EXPECT_CONFIG_WITH("num_hidden_layers", "'12'", LZN_ERR_FORMAT, "\"num_hidden_layers\"", "a string");
  EXPECT_CONFIG_WITH("hidden_size", "null", LZN_ERR_FORMAT, "\"hidden_size\"", "null");
  EXPECT_CONFIG_WITH("max_position_embeddings", "16777217", LZN_ERR_FORMAT,
                     "\"max_position_embeddings\" is 16777217", "beyond the limit of 16777216");
  EXPECT_CONFIG_WITH("vocab_size", "9223372036854775807", LZN_ERR_FORMAT, "beyond the limit");
  EXPECT_CONFIG_WITH("vocab_size", "16777216", LZN_OK, NULL);
  EXPECT_CONFIG_WITH("word_embed_proj_dim", "0", LZN_ERR_FORMAT, "\"word_embed_proj_dim\" is 0");
  EXPECT_CONFIG_WITH("num_attention_heads", "7", LZN_ERR_FORMAT,
                     "hidden_size 768 is not divisible by num_attention_heads 7");
}
END_TEST

START_TEST(config_bad_flags) {
  EXPECT_CONFIG_WITH("enable_bias", "1", LZN_ERR_FORMAT, "\"enable_bias\" must be true or false");
  EXPECT_CONFIG_WITH("do_layer_norm_before", "'yes'", LZN_ERR_FORMAT, "\"do_layer_norm_before\"");
}
END_TEST

START_TEST(config_invalid_json) {
  EXPECT_CONFIG("{\"hidden_size\": 768,\n \"ffn_dim\": }", LZN_ERR_FORMAT, "invalid JSON", "line 2");
  EXPECT_CONFIG("", LZN_ERR_FORMAT, "invalid JSON");
  EXPECT_CONFIG("[768]", LZN_ERR_FORMAT, "must be a JSON object");
  EXPECT_CONFIG("{\"hidden_size\": 768, \"hidden_size\": 768}", LZN_ERR_FORMAT, "duplicate");
}
END_TEST

START_TEST(config_non_relu_activation) {
  EXPECT_CONFIG_WITH("activation_function", "'gelu'", LZN_ERR_UNSUPPORTED, "activation_function \"gelu\"",
                     "relu");
  EXPECT_CONFIG_WITH("activation_function", "7", LZN_ERR_FORMAT, "\"activation_function\" must be a string");
  EXPECT_CONFIG_WITH("activation_function", NULL, LZN_OK, NULL); /* default: relu */
}
END_TEST

START_TEST(config_unknown_architecture) {
  EXPECT_CONFIG_WITH("model_type", "'llama'", LZN_ERR_UNSUPPORTED, "unknown architecture", "\"llama\"");
  EXPECT_CONFIG_WITH("architectures", "['LlamaForCausalLM']", LZN_ERR_UNSUPPORTED, "unknown architecture",
                     "LlamaForCausalLM");
  EXPECT_CONFIG_WITH("architectures", "[]", LZN_ERR_UNSUPPORTED, "unknown architecture");
  EXPECT_CONFIG_WITH("architectures", "['OPTModel']", LZN_OK, NULL);
  EXPECT_CONFIG_WITH("architectures", "['Other','OPTForCausalLM']", LZN_OK, NULL);
  EXPECT_CONFIG_WITH("architectures", "'OPTForCausalLM'", LZN_ERR_FORMAT, "\"architectures\" must be an array");
  EXPECT_CONFIG_WITH("model_type", "3", LZN_ERR_FORMAT, "\"model_type\" must be a string");
  /* Not OPT is reported before what an OPT config would miss. */
  EXPECT_CONFIG("{\"model_type\": \"llama\", \"hidden_act\": \"silu\"}", LZN_ERR_UNSUPPORTED,
                "unknown architecture");
}
END_TEST

START_TEST(config_defaults_applied) {
  const char *json = "{\"hidden_size\": 64, \"ffn_dim\": 256, \"num_attention_heads\": 4,"
                     " \"num_hidden_layers\": 2, \"vocab_size\": 100, \"max_position_embeddings\": 32}";
  lzn_opt_config c;
  memset(&c, 0x5a, sizeof c);
  ck_assert_int_eq(lzn_opt_config_parse(json, strlen(json), NULL, &c), LZN_OK);
  ck_assert_int_eq(c.word_embed_proj_dim, 64);
  ck_assert_int_eq(c.do_layer_norm_before, 1);
  ck_assert_int_eq(c.enable_bias, 1);
  ck_assert_int_eq(c.layer_norm_elementwise_affine, 1);
  ck_assert_int_eq(c.tie_word_embeddings, 1);
  ck_assert_int_eq(c.remove_final_layer_norm, 0);
  EXPECT_CONFIG_WITH("word_embed_proj_dim", "null", LZN_OK, NULL);
}
END_TEST

START_TEST(config_opt_350m_projection) {
  /* opt-350m: word embeddings of 512 projected to a hidden size of 1024,
   * post-layer-norm, untied flags spelled out. */
  char *json = config_with("word_embed_proj_dim", "512");
  json_t *root = json_loads(json, 0, NULL);
  ck_assert_ptr_nonnull(root);
  free(json);
  json_object_set_new(root, "hidden_size", json_integer(1024));
  json_object_set_new(root, "num_attention_heads", json_integer(16));
  json_object_set_new(root, "ffn_dim", json_integer(4096));
  json_object_set_new(root, "do_layer_norm_before", json_false());
  json_object_set_new(root, "enable_bias", json_false());
  json_object_set_new(root, "tie_word_embeddings", json_false());
  json_object_set_new(root, "layer_norm_elementwise_affine", json_false());
  json_object_set_new(root, "_remove_final_layer_norm", json_true());
  json = json_dumps(root, 0);
  json_decref(root);
  lzn_opt_config c;
  ck_assert_int_eq(lzn_opt_config_parse(json, strlen(json), NULL, &c), LZN_OK);
  ck_assert_int_eq(c.hidden_size, 1024);
  ck_assert_int_eq(c.word_embed_proj_dim, 512);
  ck_assert_int_eq(c.do_layer_norm_before, 0);
  ck_assert_int_eq(c.enable_bias, 0);
  ck_assert_int_eq(c.tie_word_embeddings, 0);
  ck_assert_int_eq(c.layer_norm_elementwise_affine, 0);
  ck_assert_int_eq(c.remove_final_layer_norm, 1);
  free(json);
}
END_TEST

START_TEST(config_load_from_disk) {
  char folder[512], path[512];
  make_folder(folder, sizeof folder, "config");
  write_text("config", "config.json", opt_125m_config);
  lzn_opt_config c;
  ck_assert_int_eq(lzn_config_load(tmp_path(path, sizeof path, "config", "config.json"), &c), LZN_OK);
  ck_assert_int_eq(c.vocab_size, 50272);
  ck_assert_int_eq(lzn_config_load(tmp_path(path, sizeof path, "config", "nope.json"), &c), LZN_ERR_IO);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "nope.json"));
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "No such file"));
  ck_assert_int_eq(lzn_config_load(folder, &c), LZN_ERR_IO);
  ck_assert_int_eq(lzn_config_load(NULL, &c), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_opt_config_parse("{}", 2, NULL, NULL), LZN_ERR_INVALID_ARG);
}
END_TEST

/* ------------------------------------------------------------------- suite */

static Suite *arch_suite(void) {
  Suite *suite = suite_create("arch");
  TCase *config = tcase_create("config");
  tcase_add_test(config, config_opt_125m);
  tcase_add_test(config, config_each_required_field_missing);
  tcase_add_test(config, config_bad_sizes);
  tcase_add_test(config, config_bad_flags);
  tcase_add_test(config, config_invalid_json);
  tcase_add_test(config, config_non_relu_activation);
  tcase_add_test(config, config_unknown_architecture);
  tcase_add_test(config, config_defaults_applied);
  tcase_add_test(config, config_opt_350m_projection);
  suite_add_tcase(suite, config);
  TCase *disk = tcase_create("disk");
  tcase_add_unchecked_fixture(disk, make_tmp_root, remove_tmp_root);
  tcase_add_test(disk, config_load_from_disk);
  suite_add_tcase(suite, disk);
  return suite;
}

int main(void) { return run_suite(arch_suite()); }
