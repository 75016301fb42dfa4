/*
 * reference.c: what the library alone answers, for tests/server/test_http.py
 * to compare lzn-server's replies with.
 *
 *   lzn-server-reference MODEL < requests.jsonl > answers.jsonl
 *
 * Each input line is {"prompt": TEXT} or {"messages": [{role, content}]}
 * (rendered with lzn_chat_apply_template and the model's template, or
 * "template": NAME), plus "max_tokens" N. Each output line is
 * {"tokens": [...], "text_hex": HEX of the reply's bytes, "gaps": [...],
 * "finish": "length"|"stop", "n_prompt": P}: greedy decoding on one
 * context, the prompt prefilled in one lzn_forward call, then a token at a
 * time, stopping at EOS or max_tokens, as the scheduler's rules say.
 * gaps[t] is the best logit minus the second best at step t: where a
 * served reply leaves this one, the gap must be a near-tie.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <lazyneuron.h>

static int fail(const char *what) {
  fprintf(stderr, "lzn-server-reference: %s: %s\n", what, lzn_last_error());
  return 1;
}

static char *render(const lzn_tokenizer *tok, const json_t *req, size_t *len) {
  const json_t *prompt = json_object_get(req, "prompt");
  if (prompt) {
    *len = json_string_length(prompt);
    return strdup(json_string_value(prompt));
  }
  const json_t *messages = json_object_get(req, "messages");
  const size_t n = json_array_size(messages);
  lzn_chat_message *m = calloc(n ? n : 1, sizeof *m);
  for (size_t i = 0; i < n; i++) {
    m[i].role = json_string_value(json_object_get(json_array_get(messages, i), "role"));
    m[i].content = json_string_value(json_object_get(json_array_get(messages, i), "content"));
  }
  const json_t *name = json_object_get(req, "template");
  const char *tmpl = name ? json_string_value(name) : lzn_tokenizer_chat_template(tok);
  if (tmpl && !lzn_chat_template_name(tmpl)) tmpl = NULL; /* the server's fallback: chatml */
  lzn_chat_apply_template(tmpl, m, n, 1, NULL, 0, len);
  char *text = malloc(*len + 1);
  if (lzn_chat_apply_template(tmpl, m, n, 1, text, *len + 1, len) != LZN_OK) free(text), text = NULL;
  free(m);
  return text;
}

int main(int argc, char **argv) {
  if (argc != 2) return fprintf(stderr, "usage: lzn-server-reference MODEL < requests.jsonl\n"), 2;
  lzn_model *model = NULL;
  const lzn_tokenizer *tok;
  lzn_tokenizer_info ti = {.struct_size = sizeof ti};
  lzn_model_info info = {.struct_size = sizeof info};
  if (lzn_model_load(argv[1], NULL, &model) != LZN_OK) return fail(argv[1]);
  if (lzn_model_get_tokenizer(model, &tok) != LZN_OK) return fail("tokenizer");
  lzn_tokenizer_get_info(tok, &ti);
  lzn_model_get_info(model, &info);
  lzn_context_params cp = lzn_context_default_params();
  lzn_context *ctx = NULL;
  if (lzn_context_create(model, &cp, &ctx) != LZN_OK) return fail("lzn_context_create");
  float *logits = malloc((size_t)info.vocab_size * sizeof *logits);
  int32_t *prompt = malloc((size_t)info.max_positions * sizeof *prompt);
  char line[1 << 16];
  while (fgets(line, sizeof line, stdin)) {
    json_t *req = json_loads(line, 0, NULL);
    if (!req) return fprintf(stderr, "lzn-server-reference: a line is not JSON\n"), 1;
    size_t len = 0;
    char *text = render(tok, req, &len);
    int n_prompt = 0;
    if (!text || lzn_tokenize(tok, text, len, ti.add_bos, prompt, info.max_positions, &n_prompt) != LZN_OK)
      return fail("rendering or tokenizing a prompt");
    free(text);
    const int max_tokens = (int)json_integer_value(json_object_get(req, "max_tokens"));
    lzn_context_reset(ctx);
    if (lzn_forward(ctx, prompt, n_prompt, logits, LZN_LOGITS_LAST) != LZN_OK) return fail("prefill");
    json_t *tokens = json_array(), *gaps = json_array();
    char hex[2 * 4096 * 8 + 1] = "";
    size_t hex_len = 0;
    const char *finish = "length";
    for (int n = 0; n < max_tokens; n++) {
      int best = 0, second = -1;
      for (int v = 1; v < info.vocab_size; v++) {
        if (logits[v] > logits[best]) second = best, best = v;
        else if (second < 0 || logits[v] > logits[second]) second = v;
      }
      json_array_append_new(gaps, json_real(logits[best] - logits[second]));
      if (best == ti.eos_id) {
        finish = "stop";
        break;
      }
      json_array_append_new(tokens, json_integer(best));
      char piece[256];
      size_t plen = 0;
      if (lzn_token_to_piece(tok, best, piece, sizeof piece, &plen) != LZN_OK) plen = 0;
      for (size_t i = 0; i < plen && hex_len + 2 < sizeof hex; i++)
        hex_len += (size_t)snprintf(hex + hex_len, 3, "%02x", (unsigned char)piece[i]);
      if (n + 1 < max_tokens && lzn_forward(ctx, &best, 1, logits, LZN_LOGITS_LAST) != LZN_OK)
        return fail("decode");
    }
    json_t *out = json_pack("{s:o, s:s, s:o, s:s, s:i}", "tokens", tokens, "text_hex", hex, "gaps", gaps,
                            "finish", finish, "n_prompt", n_prompt);
    char *s = json_dumps(out, JSON_COMPACT);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(out);
    json_decref(req);
  }
  free(logits), free(prompt);
  lzn_context_free(ctx);
  lzn_model_free(model);
  return 0;
}
