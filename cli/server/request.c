/*
 * request.c: see request.h.
 */
#include "request.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

int srv_fail(srv_error *err, int http_status, const char *type, const char *fmt, ...) {
  err->http_status = http_status;
  err->type = type;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  return 0;
}

#define INVALID "invalid_request_error"

static const char *kind(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a number";
  case JSON_TRUE: case JSON_FALSE: return "a boolean";
  case JSON_NULL: return "null";
  }
  return "a value";
}

static char *copy_string(const json_t *s) {
  const size_t n = json_string_length(s);
  char *c = malloc(n + 1);
  if (c) memcpy(c, json_string_value(s), n), c[n] = '\0';
  return c;
}

/* A number field in [lo, hi] (absent or null: unchanged). */
static int number_field(const json_t *root, const char *name, double lo, double hi, float *out,
                        srv_error *err) {
  const json_t *v = json_object_get(root, name);
  if (!v || json_is_null(v)) return 1;
  if (!json_is_number(v)) return srv_fail(err, 400, INVALID, "'%s' is %s, not a number", name, kind(v));
  const double x = json_number_value(v);
  if (!(x >= lo && x <= hi))
    return srv_fail(err, 400, INVALID, "'%s' is %g; it must be in [%g, %g]", name, x, lo, hi);
  *out = (float)x;
  return 1;
}

static int integer_field(const json_t *root, const char *name, json_int_t lo, json_int_t hi,
                         json_int_t *out, srv_error *err) {
  const json_t *v = json_object_get(root, name);
  if (!v || json_is_null(v)) return 1;
  /* 16.0 is accepted as 16: JavaScript clients have no integers. */
  if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
      fabs(json_real_value(v)) < 9e15) {
    *out = (json_int_t)json_real_value(v);
  } else if (json_is_integer(v)) {
    *out = json_integer_value(v);
  } else {
    return srv_fail(err, 400, INVALID, "'%s' is %s, not an integer", name, kind(v));
  }
  if (*out < lo || *out > hi)
    return srv_fail(err, 400, INVALID, "'%s' is %lld; it must be in [%lld, %lld]", name,
                    (long long)*out, (long long)lo, (long long)hi);
  return 1;
}

static int bool_field(const json_t *root, const char *name, int *out, srv_error *err) {
  const json_t *v = json_object_get(root, name);
  if (!v || json_is_null(v)) return 1;
  if (!json_is_boolean(v)) return srv_fail(err, 400, INVALID, "'%s' is %s, not a boolean", name, kind(v));
  *out = json_is_true(v);
  return 1;
}

static int token_ids(const json_t *array, srv_request *r, srv_error *err) {
  const size_t n = json_array_size(array);
  if (n > (1u << 24)) return srv_fail(err, 400, INVALID, "'prompt' has %zu token ids", n);
  r->prompt_ids = malloc((n ? n : 1) * sizeof *r->prompt_ids);
  if (!r->prompt_ids) return srv_fail(err, 500, "server_error", "out of memory");
  for (size_t i = 0; i < n; i++) {
    const json_t *id = json_array_get(array, i);
    if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) > INT32_MAX)
      return srv_fail(err, 400, INVALID, "'prompt'[%zu] is %s; token ids are integers >= 0", i,
                      json_is_integer(id) ? "negative or too large" : kind(id));
    r->prompt_ids[i] = (int32_t)json_integer_value(id);
  }
  r->n_prompt_ids = (int)n;
  return 1;
}

static int parse_prompt(const json_t *root, srv_request *r, srv_error *err) {
  const json_t *p = json_object_get(root, "prompt");
  if (!p) return srv_fail(err, 400, INVALID, "'prompt' is missing");
  if (json_is_array(p) && json_array_size(p) > 0) {
    const json_t *first = json_array_get(p, 0);
    if (json_is_string(first) || json_is_array(first)) { /* one prompt in a batch of one */
      if (json_array_size(p) != 1)
        return srv_fail(err, 400, INVALID, "'prompt' holds %zu prompts; this server answers one per "
                        "request", json_array_size(p));
      p = first;
    }
  }
  if (json_is_string(p)) {
    if (!(r->prompt = copy_string(p))) return srv_fail(err, 500, "server_error", "out of memory");
    r->prompt_len = json_string_length(p);
    if (r->prompt_len == 0) return srv_fail(err, 400, INVALID, "'prompt' is empty");
    return 1;
  }
  if (json_is_array(p)) {
    if (json_array_size(p) == 0) return srv_fail(err, 400, INVALID, "'prompt' is empty");
    return token_ids(p, r, err);
  }
  return srv_fail(err, 400, INVALID, "'prompt' is %s; it must be a string or an array of token ids",
                  kind(p));
}

/* content: a string, null (""), or [{"type": "text", "text": ...}] joined. */
static int message_content(const json_t *c, size_t i, char **out, srv_error *err) {
  if (!c) return srv_fail(err, 400, INVALID, "'messages'[%zu] has no 'content'", i);
  if (json_is_null(c)) return (*out = calloc(1, 1)) ? 1 : srv_fail(err, 500, "server_error", "out of memory");
  if (json_is_string(c)) return (*out = copy_string(c)) ? 1 : srv_fail(err, 500, "server_error", "out of memory");
  if (!json_is_array(c))
    return srv_fail(err, 400, INVALID, "'messages'[%zu].content is %s; it must be a string or an "
                    "array of text parts", i, kind(c));
  size_t total = 0, k;
  json_t *part;
  json_array_foreach(c, k, part) {
    const json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
    if (!json_is_string(type) || strcmp(json_string_value(type), "text") != 0 || !json_is_string(text))
      return srv_fail(err, 400, INVALID, "'messages'[%zu].content[%zu] is not a {\"type\": \"text\", "
                      "\"text\": ...} part (only text is supported)", i, k);
    total += json_string_length(text);
  }
  if (!(*out = malloc(total + 1))) return srv_fail(err, 500, "server_error", "out of memory");
  total = 0;
  json_array_foreach(c, k, part) {
    const json_t *text = json_object_get(part, "text");
    memcpy(*out + total, json_string_value(text), json_string_length(text));
    total += json_string_length(text);
  }
  (*out)[total] = '\0';
  return 1;
}

static int parse_messages(const json_t *root, srv_request *r, srv_error *err) {
  const json_t *m = json_object_get(root, "messages");
  if (!m) return srv_fail(err, 400, INVALID, "'messages' is missing");
  if (!json_is_array(m)) return srv_fail(err, 400, INVALID, "'messages' is %s, not an array", kind(m));
  const size_t n = json_array_size(m);
  if (n == 0) return srv_fail(err, 400, INVALID, "'messages' is empty");
  r->messages = calloc(n, sizeof *r->messages);
  if (!r->messages) return srv_fail(err, 500, "server_error", "out of memory");
  static const char *const roles[] = {"system", "developer", "user", "assistant"};
  for (size_t i = 0; i < n; i++) {
    const json_t *msg = json_array_get(m, i);
    if (!json_is_object(msg)) return srv_fail(err, 400, INVALID, "'messages'[%zu] is %s, not an object", i, kind(msg));
    const json_t *role = json_object_get(msg, "role");
    if (!json_is_string(role))
      return srv_fail(err, 400, INVALID, "'messages'[%zu].role is %s, not a string", i,
                      role ? kind(role) : "missing");
    int known = 0;
    for (size_t k = 0; k < sizeof roles / sizeof roles[0]; k++)
      known |= strcmp(json_string_value(role), roles[k]) == 0 && json_string_length(role) == strlen(roles[k]);
    if (!known)
      return srv_fail(err, 400, INVALID, "'messages'[%zu].role \"%.40s\" is unknown: the roles are "
                      "system, developer, user and assistant", i, json_string_value(role));
    r->n_messages = i + 1; /* counted before its strings, so a failure frees what was made */
    char *content = NULL;
    if (!message_content(json_object_get(msg, "content"), i, &content, err)) return 0;
    r->messages[i].content = content;
    if (!(r->messages[i].role = copy_string(role))) return srv_fail(err, 500, "server_error", "out of memory");
  }
  return 1;
}

static int parse_stop(const json_t *root, srv_request *r, srv_error *err) {
  const json_t *v = json_object_get(root, "stop");
  if (!v || json_is_null(v)) return 1;
  json_t *one = NULL;
  if (json_is_string(v)) v = one = json_pack("[O]", v);
  int ok = 1;
  if (!json_is_array(v)) ok = srv_fail(err, 400, INVALID, "'stop' is %s; it must be a string or an array of strings", kind(v));
  else if (json_array_size(v) > SCHED_MAX_STOP)
    ok = srv_fail(err, 400, INVALID, "'stop' has %zu strings; at most %d", json_array_size(v), SCHED_MAX_STOP);
  for (size_t i = 0; ok && i < json_array_size(v); i++) {
    const json_t *s = json_array_get(v, i);
    if (!json_is_string(s)) ok = srv_fail(err, 400, INVALID, "'stop'[%zu] is %s, not a string", i, kind(s));
    else if (json_string_length(s) == 0 || strlen(json_string_value(s)) != json_string_length(s)) continue;
    else if (!(r->stop[r->n_stop++] = copy_string(s))) ok = srv_fail(err, 500, "server_error", "out of memory");
  }
  json_decref(one);
  return ok;
}

static int parse_fields(const json_t *root, srv_request *r, srv_error *err) {
  if (r->chat ? !parse_messages(root, r, err) : !parse_prompt(root, r, err)) return 0;
  json_int_t x = -1;
  const char *max_name = r->chat && json_object_get(root, "max_completion_tokens") ? "max_completion_tokens"
                                                                                   : "max_tokens";
  if (!integer_field(root, max_name, 1, INT32_MAX, &x, err)) return 0;
  r->max_tokens = (int)x;
  x = 1;
  if (!integer_field(root, "n", 1, 1, &x, err)) return 0;
  lzn_sampler_params *sp = &r->sampling;
  if (!number_field(root, "temperature", 0, 1e6, &sp->temperature, err) ||
      !number_field(root, "top_p", 0, 1, &sp->top_p, err) ||
      !number_field(root, "min_p", 0, 1, &sp->min_p, err) ||
      !number_field(root, "repeat_penalty", 1e-6, 1e6, &sp->repetition_penalty, err))
    return 0;
  if (sp->top_p == 0) return srv_fail(err, 400, INVALID, "'top_p' is 0; it must be in (0, 1]");
  x = sp->top_k;
  if (!integer_field(root, "top_k", 0, INT32_MAX, &x, err)) return 0;
  sp->top_k = (int)x;
  x = 0;
  if (!integer_field(root, "seed", INT64_MIN, INT64_MAX, &x, err)) return 0;
  sp->seed = (uint64_t)x;
  if (!bool_field(root, "stream", &r->stream, err) || !bool_field(root, "return_tokens", &r->return_tokens, err) ||
      !parse_stop(root, r, err))
    return 0;
  const json_t *so = json_object_get(root, "stream_options");
  if (so && !json_is_null(so)) {
    if (!json_is_object(so)) return srv_fail(err, 400, INVALID, "'stream_options' is %s, not an object", kind(so));
    if (!bool_field(so, "include_usage", &r->include_usage, err)) return 0;
  }
  const json_t *model = json_object_get(root, "model");
  if (model && !json_is_null(model)) {
    if (!json_is_string(model)) return srv_fail(err, 400, INVALID, "'model' is %s, not a string", kind(model));
    if (!(r->model = copy_string(model))) return srv_fail(err, 500, "server_error", "out of memory");
  }
  return 1;
}

int srv_request_parse(const char *body, size_t len, int chat, srv_request *out, srv_error *err) {
  memset(out, 0, sizeof *out);
  out->chat = chat;
  out->max_tokens = -1;
  out->sampling = lzn_sampler_default_params();
  json_error_t jerr;
  /* jansson checks the UTF-8 of the whole body, so invalid UTF-8 in a
   * prompt is malformed JSON (400), and rejects \u0000 in strings. */
  json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return srv_fail(err, 400, INVALID, "the body is not valid JSON (line %d, column %d: %s)", jerr.line,
                    jerr.column, jerr.text);
  int ok = json_is_object(root) ? parse_fields(root, out, err)
                                : srv_fail(err, 400, INVALID, "the body is %s, not a JSON object", kind(root));
  json_decref(root);
  if (!ok) srv_request_free(out);
  return ok;
}

void srv_request_free(srv_request *r) {
  free(r->prompt), free(r->prompt_ids), free(r->model);
  for (size_t i = 0; r->messages && i < r->n_messages; i++) {
    free((char *)r->messages[i].role);
    free((char *)r->messages[i].content);
  }
  free(r->messages);
  for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
  const int chat = r->chat;
  memset(r, 0, sizeof *r);
  r->chat = chat;
}
