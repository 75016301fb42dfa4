/*
 * request.h: the body of POST /v1/completions and /v1/chat/completions,
 * parsed and checked (JSON -> srv_request), before any tokenizing. Pure:
 * no server state, so tests/fuzz/fuzz_request.c runs it on any bytes.
 *
 * What is read (OpenAI's names; llama-server's where OpenAI has none):
 *   completions: prompt (a string, [a string], [token ids] or [[token ids]])
 *   chat:        messages [{role, content}] (content a string, null, or
 *                [{type: "text", text}]), role system|developer|user|assistant
 *   both:        max_tokens (chat also max_completion_tokens), temperature,
 *                top_p, top_k, min_p, repeat_penalty, seed, stop (a string or
 *                up to SCHED_MAX_STOP strings), n (must be 1), stream,
 *                stream_options.include_usage, model (echoed), return_tokens
 *                (llama-server's: the token ids of the reply, as "tokens")
 * Fields not named here are ignored, as OpenAI's clients send more.
 * Sampling defaults are the library's (lzn_sampler_default_params).
 */
#ifndef LZN_SERVER_REQUEST_H
#define LZN_SERVER_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include <lazyneuron.h>

#include "scheduler.h"

/* A refusal: the HTTP status, OpenAI's error type and a message. */
typedef struct srv_error {
  int http_status;
  const char *type; /* "invalid_request_error", ...: a static string */
  char message[512];
} srv_error;

typedef struct srv_request {
  int chat;                      /* 1: /v1/chat/completions */
  char *prompt;                  /* completions: text (NULL when prompt_ids) */
  size_t prompt_len;
  int32_t *prompt_ids;           /* completions: token ids given as such */
  int n_prompt_ids;
  lzn_chat_message *messages;    /* chat; roles and contents owned here */
  size_t n_messages;
  int max_tokens;                /* -1: not given */
  lzn_sampler_params sampling;
  char *stop[SCHED_MAX_STOP];
  int n_stop;
  int stream, include_usage;
  int return_tokens;             /* llama-server's: the reply's token ids too */
  char *model;                   /* NULL when not given */
} srv_request;

/* Parses body[0..len) (need not be NUL-terminated). On failure fills *err
 * (400 with the field named) and returns 0; *out is then empty. Free with
 * srv_request_free either way. */
int srv_request_parse(const char *body, size_t len, int chat, srv_request *out, srv_error *err);
void srv_request_free(srv_request *r);

/* Fills an error; returns 0 (for `return srv_fail(...)`). */
int srv_fail(srv_error *err, int http_status, const char *type, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

#endif /* LZN_SERVER_REQUEST_H */
