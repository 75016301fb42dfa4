/*
 * chat.h: chat templates (lib/text/chat.c). Private.
 *
 * A model's chat template is a Jinja program (Hugging Face's
 * tokenizer_config.json "chat_template", GGUF "tokenizer.chat_template").
 * lazyneuron runs no Jinja: it recognises the family a template belongs to
 * from marker strings in its text, as llama.cpp does, and renders that
 * family's format in C. The families are a table here: adding one is a
 * row and a render function.
 */
#ifndef LZN_CHAT_H
#define LZN_CHAT_H

#include "lazyneuron.h"

typedef enum lzn_chat_family {
  LZN_CHAT_UNKNOWN = -1,
  LZN_CHAT_CHATML = 0, /* the default */
  LZN_CHAT_LLAMA2,
  LZN_CHAT_LLAMA3,
  LZN_CHAT_MISTRAL,
  LZN_CHAT_ZEPHYR,
  LZN_CHAT_PHI3,
  LZN_CHAT_VICUNA,
  LZN_CHAT_GEMMA,
  LZN_CHAT_N_FAMILIES
} lzn_chat_family;

/* The family of a template: a family's name ("chatml", ...) or a Jinja
 * text carrying its markers; NULL is ChatML; LZN_CHAT_UNKNOWN otherwise. */
lzn_chat_family lzn_chat_detect(const char *tmpl);

/* "chatml", ...: a static string. */
const char *lzn_chat_family_name(lzn_chat_family family);

#endif /* LZN_CHAT_H */
