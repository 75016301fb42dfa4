/*
 * fuzz_chat.c: the chat-template renderer (lib/text/chat.c) on arbitrary
 * bytes: byte 0 gives the number of messages (low 3 bits) and
 * add_assistant (bit 3); the rest is NUL-separated: the template (an
 * empty one: NULL, ChatML), then role, content, role, content, ...
 *
 * Checks: measuring then rendering agree on the length and the text has
 * no NUL before it; a template whose family is named renders; a recognised
 * template renders like its family's name; an unknown role is the only
 * INVALID_ARG.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "lazyneuron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const size_t n_messages = data[0] & 7;
  const int add_assistant = (data[0] >> 3) & 1;
  char *copy = malloc(size); /* byte 0 becomes the NUL that ends the last field */
  if (!copy) return 0;
  memcpy(copy, data + 1, size - 1);
  copy[size - 1] = '\0';
  const char *fields[1 + 2 * 7];
  size_t n_fields = 0;
  for (size_t at = 0; at < size && n_fields < 1 + 2 * n_messages; at += strlen(copy + at) + 1)
    fields[n_fields++] = copy + at;
  if (n_fields < 1 + 2 * n_messages) {
    free(copy);
    return 0;
  }
  const char *tmpl = fields[0][0] ? fields[0] : NULL;
  lzn_chat_message messages[7];
  int known_roles = 1;
  for (size_t i = 0; i < n_messages; i++) {
    messages[i].role = fields[1 + 2 * i], messages[i].content = fields[2 + 2 * i];
    const char *r = messages[i].role;
    known_roles &= !strcmp(r, "system") || !strcmp(r, "developer") || !strcmp(r, "user") || !strcmp(r, "assistant");
  }
  const char *family = lzn_chat_template_name(tmpl);
  size_t len = 0;
  lzn_status st = lzn_chat_apply_template(tmpl, messages, n_messages, add_assistant, NULL, 0, &len);
  if (!family) {
    FUZZ_CHECK(st == LZN_ERR_UNSUPPORTED);
  } else if (!known_roles) {
    FUZZ_CHECK(st == LZN_ERR_INVALID_ARG && len == 0);
  } else if (len > 0) {
    FUZZ_CHECK(st == LZN_ERR_INVALID_ARG);
    char *text = malloc(len + 1), *again = malloc(len + 1);
    size_t len2 = 0;
    FUZZ_CHECK(text && again);
    st = lzn_chat_apply_template(tmpl, messages, n_messages, add_assistant, text, len + 1, &len2);
    FUZZ_CHECK(st == LZN_OK && len2 == len && strlen(text) == len);
    /* The family's name renders the same text as the template. */
    FUZZ_CHECK(lzn_chat_apply_template(family, messages, n_messages, add_assistant, again, len + 1, &len2) == LZN_OK);
    FUZZ_CHECK(len2 == len && memcmp(text, again, len) == 0);
    free(text), free(again);
  }
  free(copy);
  return 0;
}
