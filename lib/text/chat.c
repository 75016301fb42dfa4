/*
 * chat.c: lzn_chat_apply_template and the families it renders (chat.h).
 *
 * Each family is rendered from the format its published template produces
 * (the Jinja text of the models named below, read as a specification, and
 * the formats llama.cpp's llama-chat.cpp documents for the same families).
 * BOS is left to the tokenizer (lzn_tokenizer_info.add_bos); EOS and other
 * turn markers are written as text, as the templates write them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/errors.h"
#include "text/chat.h"
#include "text/tokenizer.h"

/* Writes into buf[0..capacity) while it fits and counts every byte, so one
 * pass both renders and measures. */
typedef struct text_out {
  char *buf;
  size_t capacity, len;
} text_out;

static void put(text_out *o, const char *s) {
  const size_t n = strlen(s);
  if (o->len + n < o->capacity) memcpy(o->buf + o->len, s, n); /* room kept for the NUL */
  o->len += n;
}

typedef enum role { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT } role;

typedef struct chat {
  const lzn_chat_message *m;
  const role *roles;
  size_t n;
  int add_assistant;
} chat;

/* ChatML (Qwen, OpenHermes, the default): <|im_start|>role\ntext<|im_end|>\n. */
static void render_chatml(const chat *c, text_out *o) {
  for (size_t i = 0; i < c->n; i++) {
    put(o, "<|im_start|>"), put(o, c->m[i].role), put(o, "\n");
    put(o, c->m[i].content), put(o, "<|im_end|>\n");
  }
  if (c->add_assistant) put(o, "<|im_start|>assistant\n");
}

/* Llama-3 instruct: headers per turn, <|eot_id|> after each. */
static void render_llama3(const chat *c, text_out *o) {
  for (size_t i = 0; i < c->n; i++) {
    put(o, "<|start_header_id|>"), put(o, c->m[i].role), put(o, "<|end_header_id|>\n\n");
    put(o, c->m[i].content), put(o, "<|eot_id|>");
  }
  if (c->add_assistant) put(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* Llama-2 chat: [INST] <<SYS>>\nsys\n<</SYS>>\n\nuser [/INST] answer </s><s>[INST] ...
 * The system prompt goes inside the first [INST]. */
static void render_llama2(const chat *c, text_out *o) {
  int open = 0; /* an [INST] is open, waiting for its user text */
  for (size_t i = 0; i < c->n; i++) {
    const char *text = c->m[i].content;
    if (c->roles[i] == ROLE_SYSTEM) {
      if (!open) put(o, "[INST] "), open = 1;
      put(o, "<<SYS>>\n"), put(o, text), put(o, "\n<</SYS>>\n\n");
    } else if (c->roles[i] == ROLE_USER) {
      if (!open) put(o, "[INST] ");
      put(o, text), put(o, " [/INST]");
      open = 0;
    } else {
      put(o, " "), put(o, text), put(o, " </s><s>");
    }
  }
}

/* Families without a system role (Mistral, Gemma): a system text opens
 * the next user turn, before the user's text. The turn markers are: */
typedef struct user_turns {
  const char *user_open, *user_close, *assistant_open, *assistant_close, *generation;
} user_turns;

static void render_user_turns(const chat *c, text_out *o, const user_turns *t) {
  int open = 0; /* a user turn is open with a system text in it */
  for (size_t i = 0; i < c->n; i++) {
    const char *text = c->m[i].content;
    if (c->roles[i] == ROLE_ASSISTANT) {
      if (open) put(o, t->user_close), open = 0;
      put(o, t->assistant_open), put(o, text), put(o, t->assistant_close);
      continue;
    }
    if (!open) put(o, t->user_open);
    put(o, text);
    open = c->roles[i] == ROLE_SYSTEM;
    put(o, open ? "\n\n" : t->user_close);
  }
  if (open) put(o, t->user_close);
  if (c->add_assistant) put(o, t->generation);
}

/* Mistral instruct v0.1/v0.2: [INST] user [/INST]answer</s>. */
static void render_mistral(const chat *c, text_out *o) {
  static const user_turns t = {"[INST] ", " [/INST]", "", "</s>", ""};
  render_user_turns(c, o, &t);
}

/* Gemma: <start_of_turn>user|model\ntext<end_of_turn>\n. */
static void render_gemma(const chat *c, text_out *o) {
  static const user_turns t = {"<start_of_turn>user\n", "<end_of_turn>\n", "<start_of_turn>model\n",
                               "<end_of_turn>\n", "<start_of_turn>model\n"};
  render_user_turns(c, o, &t);
}

/* Zephyr: <|role|>\ntext</s>\n. Phi-3: the same with <|end|>. */
static void render_tagged(const chat *c, text_out *o, const char *end) {
  for (size_t i = 0; i < c->n; i++) {
    put(o, "<|"), put(o, c->m[i].role), put(o, "|>\n"), put(o, c->m[i].content), put(o, end);
  }
  if (c->add_assistant) put(o, "<|assistant|>\n");
}
static void render_zephyr(const chat *c, text_out *o) { render_tagged(c, o, "</s>\n"); }
static void render_phi3(const chat *c, text_out *o) { render_tagged(c, o, "<|end|>\n"); }

/* Vicuna v1.1: system\n\nUSER: text\nASSISTANT: answer</s>\n. */
static void render_vicuna(const chat *c, text_out *o) {
  for (size_t i = 0; i < c->n; i++) {
    const char *text = c->m[i].content;
    if (c->roles[i] == ROLE_SYSTEM) put(o, text), put(o, "\n\n");
    else if (c->roles[i] == ROLE_USER) put(o, "USER: "), put(o, text), put(o, "\n");
    else put(o, "ASSISTANT: "), put(o, text), put(o, "</s>\n");
  }
  if (c->add_assistant) put(o, "ASSISTANT:");
}

/* name, the markers a template of the family contains (all of them), and
 * its renderer. Checked in order: the first whose markers all appear wins,
 * so a family whose markers another's include comes first. */
typedef struct family_row {
  const char *name;
  const char *markers[3];
  void (*render)(const chat *, text_out *);
} family_row;

static const family_row families[LZN_CHAT_N_FAMILIES] = {
    [LZN_CHAT_CHATML] = {"chatml", {"<|im_start|>"}, render_chatml},
    [LZN_CHAT_LLAMA2] = {"llama2", {"[INST]", "<<SYS>>"}, render_llama2},
    [LZN_CHAT_LLAMA3] = {"llama3", {"<|start_header_id|>", "<|end_header_id|>"}, render_llama3},
    [LZN_CHAT_MISTRAL] = {"mistral", {"[INST]"}, render_mistral},
    [LZN_CHAT_ZEPHYR] = {"zephyr", {"<|user|>", "<|assistant|>"}, render_zephyr},
    [LZN_CHAT_PHI3] = {"phi3", {"<|user|>", "<|end|>"}, render_phi3},
    [LZN_CHAT_VICUNA] = {"vicuna", {"USER: ", "ASSISTANT:"}, render_vicuna},
    [LZN_CHAT_GEMMA] = {"gemma", {"<start_of_turn>"}, render_gemma},
};
/* Detection order: ChatML, Llama-3 and Gemma have unique markers; Llama-2
 * before Mistral (both [INST]); Phi-3 before Zephyr (both <|user|>). */
static const lzn_chat_family detect_order[LZN_CHAT_N_FAMILIES] = {
    LZN_CHAT_CHATML, LZN_CHAT_LLAMA3, LZN_CHAT_GEMMA,  LZN_CHAT_LLAMA2,
    LZN_CHAT_MISTRAL, LZN_CHAT_PHI3,  LZN_CHAT_ZEPHYR, LZN_CHAT_VICUNA};

lzn_chat_family lzn_chat_detect(const char *tmpl) {
  if (tmpl == NULL) return LZN_CHAT_CHATML;
  for (int f = 0; f < LZN_CHAT_N_FAMILIES; f++)
    if (strcmp(tmpl, families[f].name) == 0) return (lzn_chat_family)f;
  for (int k = 0; k < LZN_CHAT_N_FAMILIES; k++) {
    const family_row *row = &families[detect_order[k]];
    int all = 1;
    for (int j = 0; j < 3 && row->markers[j]; j++) all &= strstr(tmpl, row->markers[j]) != NULL;
    if (all) return detect_order[k];
  }
  return LZN_CHAT_UNKNOWN;
}

const char *lzn_chat_family_name(lzn_chat_family family) {
  return family >= 0 && family < LZN_CHAT_N_FAMILIES ? families[family].name : NULL;
}

LZN_API const char *lzn_chat_template_name(const char *tmpl) {
  return lzn_chat_family_name(lzn_chat_detect(tmpl));
}

static int role_of(const char *name, role *found) {
  /* OpenAI's "developer" is the newer name of "system". */
  if (strcmp(name, "system") == 0 || strcmp(name, "developer") == 0) *found = ROLE_SYSTEM;
  else if (strcmp(name, "user") == 0) *found = ROLE_USER;
  else if (strcmp(name, "assistant") == 0) *found = ROLE_ASSISTANT;
  else return 0;
  return 1;
}

LZN_API lzn_status lzn_chat_apply_template(const char *tmpl, const lzn_chat_message *messages,
                                           size_t n_messages, int add_assistant, char *buf,
                                           size_t capacity, size_t *len) {
  const char *fn = "lzn_chat_apply_template";
  if (len == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: len is NULL", fn);
  *len = 0;
  if (messages == NULL && n_messages > 0) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: messages is NULL", fn);
  if (buf == NULL && capacity > 0) return lzn_fail(LZN_ERR_INVALID_ARG, "%s: buf is NULL", fn);
  if (add_assistant != 0 && add_assistant != 1)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: add_assistant = %d, must be 0 or 1", fn, add_assistant);
  const lzn_chat_family family = lzn_chat_detect(tmpl);
  if (family == LZN_CHAT_UNKNOWN)
    return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: the template is none of the families lazyneuron "
                    "renders (chatml, llama2, llama3, mistral, zephyr, phi3, vicuna, gemma)", fn);
  role *roles = malloc((n_messages ? n_messages : 1) * sizeof *roles);
  if (roles == NULL) return lzn_fail(LZN_ERR_NOMEM, "%s: out of memory", fn);
  for (size_t i = 0; i < n_messages; i++) {
    const lzn_chat_message *m = &messages[i];
    if (m->role == NULL || m->content == NULL) {
      free(roles);
      return lzn_fail(LZN_ERR_INVALID_ARG, "%s: message %zu has a NULL %s", fn, i,
                      m->role ? "content" : "role");
    }
    if (!role_of(m->role, &roles[i])) {
      free(roles);
      return lzn_fail(LZN_ERR_INVALID_ARG, "%s: message %zu has role \"%.32s\"; the roles are "
                      "system (or developer), user and assistant", fn, i, m->role);
    }
  }
  /* A "developer" message renders as "system" where the role is spelled out. */
  lzn_chat_message *named = malloc((n_messages ? n_messages : 1) * sizeof *named);
  if (named == NULL) return free(roles), lzn_fail(LZN_ERR_NOMEM, "%s: out of memory", fn);
  static const char *const role_names[3] = {"system", "user", "assistant"};
  for (size_t i = 0; i < n_messages; i++)
    named[i] = (lzn_chat_message){role_names[roles[i]], messages[i].content};
  text_out o = {buf, capacity, 0};
  const chat c = {named, roles, n_messages, add_assistant};
  families[family].render(&c, &o);
  free(named), free(roles);
  *len = o.len;
  if (o.len + 1 > capacity)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: capacity %zu is too small: the text takes %zu bytes "
                    "and a NUL", fn, capacity, o.len);
  buf[o.len] = '\0';
  return LZN_OK;
}

LZN_API const char *lzn_tokenizer_chat_template(const lzn_tokenizer *tokenizer) {
  return tokenizer ? tokenizer->chat_template : NULL;
}

/* ------------------------------------------------------- reading templates */

static lzn_status set_template(lzn_tokenizer *t, const char *text, size_t len) {
  char *copy = malloc(len + 1);
  if (copy == NULL) return lzn_fail(LZN_ERR_NOMEM, "chat template: out of memory");
  memcpy(copy, text, len);
  copy[len] = '\0';
  free(t->chat_template);
  t->chat_template = copy;
  return LZN_OK;
}

lzn_status lzn_chat_template_from_dir(const char *dir, lzn_tokenizer *t) {
  char path[4096];
  const int n = snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
  if (n < 0 || (size_t)n >= sizeof path) return LZN_OK;
  FILE *f = fopen(path, "rb");
  if (f == NULL) return LZN_OK;
  fclose(f);
  json_error_t err;
  json_t *root = json_load_file(path, 0, &err);
  if (root == NULL) return lzn_fail(LZN_ERR_FORMAT, "%s:%d: %s", path, err.line, err.text);
  const json_t *v = json_object_get(root, "chat_template");
  lzn_status s = LZN_OK;
  if (json_is_array(v)) { /* [{"name": "default", "template": "..."}, {"name": "tool_use", ...}] */
    const json_t *chosen = NULL;
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
      const json_t *name = json_object_get(item, "name");
      if (json_is_string(name) && strcmp(json_string_value(name), "default") == 0)
        chosen = json_object_get(item, "template");
    }
    v = chosen;
  }
  if (json_is_string(v)) s = set_template(t, json_string_value(v), json_string_length(v));
  else if (v != NULL && !json_is_null(v))
    s = lzn_fail(LZN_ERR_FORMAT, "%s: chat_template is neither a string nor a list of named "
                 "templates with a \"default\"", path);
  json_decref(root);
  return s;
}

lzn_status lzn_chat_template_from_gguf(const lzn_gguf_file *f, lzn_tokenizer *t) {
  if (lzn_gguf_find(f, "tokenizer.chat_template") == NULL) return LZN_OK;
  lzn_gguf_string s;
  const lzn_status st = lzn_gguf_get_string(f, "tokenizer.chat_template", &s);
  return st != LZN_OK ? st : set_template(t, s.data, s.len);
}
