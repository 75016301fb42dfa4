/*
 * test_chat.c: chat templates (lib/text/chat.c): each family rendered as
 * its published template renders the same conversation, recognised from
 * real templates' text, the buffer contract and bad input, and the
 * template read at load from tokenizer_config.json and from GGUF.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lazyneuron.h"
#include "testfiles.h"
#include "testutil.h"

static const lzn_chat_message conversation[] = {
    {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "2+2?"}};
#define N_CONVERSATION 4

static const struct family_case {
  const char *name;
  const char *expected; /* the conversation with add_assistant = 1 */
} families[] = {
    {"chatml", "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
               "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
               "<|im_start|>assistant\n"},
    {"llama3", "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama2", "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] 2+2? [/INST]"},
    {"mistral", "[INST] Be brief.\n\nHi [/INST]Hello.</s>[INST] 2+2? [/INST]"},
    {"zephyr", "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello.</s>\n<|user|>\n2+2?</s>\n"
               "<|assistant|>\n"},
    {"phi3", "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello.<|end|>\n"
             "<|user|>\n2+2?<|end|>\n<|assistant|>\n"},
    {"vicuna", "Be brief.\n\nUSER: Hi\nASSISTANT: Hello.</s>\nUSER: 2+2?\nASSISTANT:"},
    {"gemma", "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
              "<start_of_turn>user\n2+2?<end_of_turn>\n<start_of_turn>model\n"},
};
#define N_FAMILIES ((int)(sizeof families / sizeof families[0]))

START_TEST(each_family_renders_the_conversation) {
  const struct family_case *f = &families[_i];
  char buf[1024];
  size_t len = 0;
  ck_assert_int_eq(lzn_chat_apply_template(f->name, conversation, N_CONVERSATION, 1, buf, sizeof buf, &len),
                   LZN_OK);
  ck_assert_str_eq(buf, f->expected);
  ck_assert_uint_eq(len, strlen(f->expected));
  ck_assert_str_eq(lzn_chat_template_name(f->name), f->name);
}
END_TEST

/* Fragments of the templates the models ship (Jinja text). */
START_TEST(families_are_recognised_from_template_text) {
  static const struct { const char *text, *family; } cases[] = {
      {"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
       "'<|im_end|>' + '\\n'}}{% endfor %}", "chatml"},
      {"{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ "
       "message['content'] | trim + '<|eot_id|>' %}", "llama3"},
      {"{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + "
       "messages[0]['content'] + '\\n<</SYS>>\\n\\n' %}{{ bos_token + '[INST] ' + content + ' [/INST]' }}",
       "llama2"},
      {"{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
       "message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token}}", "mistral"},
      {"{% if message['role'] == 'user' %}{{ '<|user|>\\n' + message['content'] + eos_token }}{% elif "
       "message['role'] == 'assistant' %}{{ '<|assistant|>\\n'  + message['content'] + eos_token }}", "zephyr"},
      {"{{'<|user|>' + '\\n' + message['content'] + '<|end|>' + '\\n' + '<|assistant|>' + '\\n'}}", "phi3"},
      {"{{ 'USER: ' + message['content'] + '\\n' }}{% elif %}{{ 'ASSISTANT: ' + message['content'] }}", "vicuna"},
      {"{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}", "gemma"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *name = lzn_chat_template_name(cases[i].text);
    ck_assert_msg(name && strcmp(name, cases[i].family) == 0, "case %zu: %s, expected %s", i,
                  name ? name : "NULL", cases[i].family);
  }
  ck_assert_str_eq(lzn_chat_template_name(NULL), "chatml");
  ck_assert_ptr_null(lzn_chat_template_name("{{ messages | tojson }}"));
  ck_assert_ptr_null(lzn_chat_template_name(""));
}
END_TEST

START_TEST(buffer_contract_and_bad_input) {
  size_t len = 123;
  /* Asking for the size. */
  ck_assert_int_eq(lzn_chat_apply_template(NULL, conversation, 2, 0, NULL, 0, &len), LZN_ERR_INVALID_ARG);
  const size_t need = len;
  ck_assert_uint_eq(need, strlen("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"));
  char small[8];
  ck_assert_int_eq(lzn_chat_apply_template(NULL, conversation, 2, 0, small, sizeof small, &len),
                   LZN_ERR_INVALID_ARG);
  ck_assert_uint_eq(len, need);
  char *exact = malloc(need + 1);
  ck_assert_int_eq(lzn_chat_apply_template(NULL, conversation, 2, 0, exact, need + 1, &len), LZN_OK);
  ck_assert_uint_eq(strlen(exact), need);
  free(exact);
  /* No messages: only the assistant's opening. */
  char buf[256];
  ck_assert_int_eq(lzn_chat_apply_template("chatml", NULL, 0, 1, buf, sizeof buf, &len), LZN_OK);
  ck_assert_str_eq(buf, "<|im_start|>assistant\n");
  /* "developer" is spelled "system". */
  const lzn_chat_message dev[] = {{"developer", "Rules."}};
  ck_assert_int_eq(lzn_chat_apply_template("chatml", dev, 1, 0, buf, sizeof buf, &len), LZN_OK);
  ck_assert_str_eq(buf, "<|im_start|>system\nRules.<|im_end|>\n");
  const lzn_chat_message bad_role[] = {{"user", "a"}, {"wizard", "b"}};
  ck_assert_int_eq(lzn_chat_apply_template(NULL, bad_role, 2, 1, buf, sizeof buf, &len), LZN_ERR_INVALID_ARG);
  ck_assert_msg(strstr(lzn_last_error(), "message 1") && strstr(lzn_last_error(), "wizard"), "%s",
                lzn_last_error());
  const lzn_chat_message null_content[] = {{"user", NULL}};
  ck_assert_int_eq(lzn_chat_apply_template(NULL, null_content, 1, 1, buf, sizeof buf, &len), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_chat_apply_template("{{ nothing known }}", conversation, 1, 1, buf, sizeof buf, &len),
                   LZN_ERR_UNSUPPORTED);
  ck_assert_int_eq(lzn_chat_apply_template(NULL, conversation, 1, 2, buf, sizeof buf, &len), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_chat_apply_template(NULL, NULL, 1, 1, buf, sizeof buf, &len), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_chat_apply_template(NULL, conversation, 1, 1, NULL, 10, &len), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_chat_apply_template(NULL, conversation, 1, 1, buf, sizeof buf, NULL), LZN_ERR_INVALID_ARG);
  ck_assert_ptr_null(lzn_tokenizer_chat_template(NULL));
}
END_TEST

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

/* A byte-level tokenizer folder with a tokenizer_config.json. */
static lzn_status load_with_config(const char *dir, const char *config, lzn_tokenizer **out) {
  char path[512];
  mkdir(dir, 0755);
  snprintf(path, sizeof path, "%s/lazyneuron_tokenizer.json", dir);
  write_file(path, "{\"type\": \"byte-level\", \"eos_token_id\": 2}");
  snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
  write_file(path, config);
  return lzn_tokenizer_load(dir, out);
}

START_TEST(template_from_tokenizer_config) {
  make_tmp_root();
  char dir[256];
  lzn_tokenizer *t = NULL;
  snprintf(dir, sizeof dir, "%s/plain", tmp_root);
  ck_assert_int_eq(load_with_config(dir, "{\"chat_template\": \"{{'<|im_start|>' + m }}\"}", &t), LZN_OK);
  ck_assert_str_eq(lzn_tokenizer_chat_template(t), "{{'<|im_start|>' + m }}");
  ck_assert_str_eq(lzn_chat_template_name(lzn_tokenizer_chat_template(t)), "chatml");
  lzn_tokenizer_free(t);
  snprintf(dir, sizeof dir, "%s/named", tmp_root);
  ck_assert_int_eq(load_with_config(dir, "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"x\"}, "
                                         "{\"name\": \"default\", \"template\": \"[INST] y\"}]}", &t), LZN_OK);
  ck_assert_str_eq(lzn_tokenizer_chat_template(t), "[INST] y");
  lzn_tokenizer_free(t);
  snprintf(dir, sizeof dir, "%s/none", tmp_root);
  ck_assert_int_eq(load_with_config(dir, "{\"add_bos_token\": false}", &t), LZN_OK);
  ck_assert_ptr_null(lzn_tokenizer_chat_template(t));
  lzn_tokenizer_free(t);
  snprintf(dir, sizeof dir, "%s/bad", tmp_root);
  ck_assert_int_eq(load_with_config(dir, "{\"chat_template\": 42}", &t), LZN_ERR_FORMAT);
  ck_assert_ptr_null(t);
  /* The shipped models have none: the server's default (ChatML) applies. */
  lzn_model *m = NULL;
  const lzn_tokenizer *mt = NULL;
  ck_assert_int_eq(lzn_model_load("models/tiny-opt", NULL, &m), LZN_OK);
  ck_assert_int_eq(lzn_model_get_tokenizer(m, &mt), LZN_OK);
  ck_assert_ptr_null(lzn_tokenizer_chat_template(mt));
  lzn_model_free(m);
  remove_tmp_root();
}
END_TEST

/* A GGUF file of metadata only: GPT-2's byte tokens and a template. */
static void put_u32(FILE *f, uint32_t v) { fwrite(&v, 4, 1, f); }
static void put_u64(FILE *f, uint64_t v) { fwrite(&v, 8, 1, f); }
static void put_str(FILE *f, const char *s) {
  put_u64(f, strlen(s));
  fwrite(s, 1, strlen(s), f);
}

START_TEST(template_from_gguf) {
  make_tmp_root();
  char path[256];
  snprintf(path, sizeof path, "%s/t.gguf", tmp_root);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  fwrite("GGUF", 1, 4, f);
  put_u32(f, 3), put_u64(f, 0), put_u64(f, 4);         /* version, tensors, keys */
  put_str(f, "tokenizer.ggml.model"), put_u32(f, 8), put_str(f, "gpt2");
  /* GPT-2's 256 byte tokens, each spelled as its byte-to-unicode character. */
  put_str(f, "tokenizer.ggml.tokens"), put_u32(f, 9), put_u32(f, 8), put_u64(f, 256);
  int shifted = 0;
  for (int b = 0; b < 256; b++) {
    const int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    const int cp = printable ? b : 256 + shifted++;
    char utf8[3] = {0};
    if (cp < 0x80) utf8[0] = (char)cp;
    else utf8[0] = (char)(0xC0 | (cp >> 6)), utf8[1] = (char)(0x80 | (cp & 0x3F));
    put_str(f, utf8);
  }
  put_str(f, "tokenizer.ggml.merges"), put_u32(f, 9), put_u32(f, 8), put_u64(f, 0);
  put_str(f, "tokenizer.chat_template"), put_u32(f, 8), put_str(f, "{{ '<|start_header_id|>' }}<|end_header_id|>");
  fclose(f);
  lzn_tokenizer *t = NULL;
  ck_assert_msg(lzn_tokenizer_load(path, &t) == LZN_OK, "%s", lzn_last_error());
  ck_assert_str_eq(lzn_tokenizer_chat_template(t), "{{ '<|start_header_id|>' }}<|end_header_id|>");
  ck_assert_str_eq(lzn_chat_template_name(lzn_tokenizer_chat_template(t)), "llama3");
  lzn_tokenizer_free(t);
  remove_tmp_root();
}
END_TEST

static Suite *chat_suite(void) {
  Suite *s = suite_create("chat");
  TCase *tc = tcase_create("templates");
  tcase_add_loop_test(tc, each_family_renders_the_conversation, 0, N_FAMILIES);
  tcase_add_test(tc, families_are_recognised_from_template_text);
  tcase_add_test(tc, buffer_contract_and_bad_input);
  tcase_add_test(tc, template_from_tokenizer_config);
  tcase_add_test(tc, template_from_gguf);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(chat_suite()); }
