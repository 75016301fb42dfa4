/*
 * completions.c: POST /v1/completions and /v1/chat/completions, answered
 * whole or streamed as server-sent events ("data: {chunk}\n\n" ...
 * "data: [DONE]\n\n"), in OpenAI's shapes.
 *
 * A job is one request from parsing to its last byte: the parsed body,
 * the prompt's tokens, the scheduler request and, when streaming, what is
 * left to send. Whoever ends the job (the handler, or the stream's free)
 * cancels it in the scheduler first if it is still running, and waits for
 * the scheduler to let go of it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "../common/reply_text.h"
#include "request.h"
#include "server.h"

#define INVALID "invalid_request_error"

struct srv_stream {
  srv_app *app;
  srv_conn *conn;
  srv_request body;
  int32_t *prompt, *reply;
  int n_prompt;
  sched_request req;
  char id[48];
  long created;
  /* streaming */
  size_t text_sent;
  int n_seen, sent_role, ended;
  int tokens_sent;             /* return_tokens: reply tokens already streamed */
  char *pending;
  size_t pending_len, pending_at;
  double last_sent;            /* when bytes last went out, for keep-alives */
  double socket_checked;       /* when the client's socket was last looked at */
};
typedef srv_stream job;

static void job_free(job *j) {
  if (!j) return;
  if (j->req.prompt) { /* submitted: the scheduler must let go first */
    int n = 0, finished = 0;
    sched_cancel(j->app->sched, &j->req);
    while (!finished) sched_wait(j->app->sched, &j->req, j->req.n_generate, &n, &finished, -1);
    sched_request_release(&j->req);
  }
  srv_request_free(&j->body);
  free(j->prompt), free(j->reply), free(j->pending), free(j);
}

void srv_stream_free(srv_stream *stream) { job_free(stream); }

/* ------------------------------------------------------------ the prompt */

static int render_chat(srv_app *app, job *j, char **text, size_t *len, srv_reply *reply) {
  lzn_status st = lzn_chat_apply_template(app->chat_template, j->body.messages, j->body.n_messages, 1,
                                          NULL, 0, len);
  if (st == LZN_ERR_INVALID_ARG && *len > 0) {
    if (!(*text = malloc(*len + 1))) return srv_reply_error(reply, 500, "server_error", "out of memory"), 0;
    st = lzn_chat_apply_template(app->chat_template, j->body.messages, j->body.n_messages, 1, *text,
                                 *len + 1, len);
  }
  if (st != LZN_OK) {
    srv_reply_error(reply, 400, INVALID, "the messages cannot be rendered: %s", lzn_last_error());
    return 0;
  }
  return 1;
}

/* The prompt's tokens, checked against the vocabulary and the context. */
static int make_prompt(srv_app *app, job *j, srv_reply *reply) {
  const srv_request *b = &j->body;
  if (b->prompt_ids) {
    for (int i = 0; i < b->n_prompt_ids; i++)
      if (b->prompt_ids[i] >= app->info.vocab_size) {
        srv_reply_error(reply, 400, INVALID, "'prompt'[%d] = %d is out of the vocabulary [0, %d)", i,
                        b->prompt_ids[i], app->info.vocab_size);
        return 0;
      }
    j->prompt = malloc((size_t)b->n_prompt_ids * sizeof *j->prompt);
    if (!j->prompt) return srv_reply_error(reply, 500, "server_error", "out of memory"), 0;
    memcpy(j->prompt, b->prompt_ids, (size_t)b->n_prompt_ids * sizeof *j->prompt);
    j->n_prompt = b->n_prompt_ids;
    return 1;
  }
  if (!app->tokenizer) {
    srv_reply_error(reply, 400, INVALID, "the model has no tokenizer: send the prompt as token ids");
    return 0;
  }
  char *rendered = NULL;
  const char *text = b->prompt;
  size_t len = b->prompt_len;
  if (b->chat) {
    if (!render_chat(app, j, &rendered, &len, reply)) return free(rendered), 0;
    text = rendered;
  }
  int n = 0;
  lzn_status st = lzn_tokenize(app->tokenizer, text, len, app->tinfo.add_bos, NULL, 0, &n);
  if (n > 0 && (j->prompt = malloc((size_t)n * sizeof *j->prompt)) != NULL)
    st = lzn_tokenize(app->tokenizer, text, len, app->tinfo.add_bos, j->prompt, n, &n);
  free(rendered);
  if (n > 0 && !j->prompt) return srv_reply_error(reply, 500, "server_error", "out of memory"), 0;
  if (st != LZN_OK && n > 0) {
    srv_reply_error(reply, 500, "server_error", "lzn_tokenize: %s", lzn_last_error());
    return 0;
  }
  j->n_prompt = n;
  return 1;
}

/* max_tokens against the context: OpenAI's rule, prompt + max_tokens <= n_ctx. */
static int budget(srv_app *app, job *j, srv_reply *reply) {
  const int n_ctx = app->n_ctx, n = j->n_prompt, max = j->body.max_tokens;
  if (n == 0) return srv_reply_error(reply, 400, INVALID, "the prompt is empty (0 tokens)"), 0;
  if (n >= n_ctx) {
    srv_reply_error(reply, 400, INVALID, "the prompt is %d tokens; the context holds %d, and a reply "
                    "needs at least one more", n, n_ctx);
    return 0;
  }
  if (max > 0 && n + max > n_ctx) {
    srv_reply_error(reply, 400, INVALID, "the prompt is %d tokens and max_tokens %d: together more than "
                    "the context's %d tokens", n, max, n_ctx);
    return 0;
  }
  /* Unset: 16 for a completion (OpenAI's default), the rest of the context for a chat. */
  j->req.n_generate = max > 0 ? max : j->body.chat ? n_ctx - n : (n_ctx - n < 16 ? n_ctx - n : 16);
  return 1;
}

/* Parsed, tokenized, checked and queued; or NULL with the refusal in reply. */
static job *job_start(srv_app *app, const srv_http_request *http, int chat, srv_reply *reply) {
  job *j = calloc(1, sizeof *j);
  if (!j) return srv_reply_error(reply, 500, "server_error", "out of memory"), NULL;
  j->app = app, j->conn = http->conn;
  srv_error err;
  if (!srv_request_parse(http->body, http->body_len, chat, &j->body, &err)) {
    srv_reply_error(reply, err.http_status, err.type, "%s", err.message);
    return job_free(j), NULL;
  }
  if (!make_prompt(app, j, reply) || !budget(app, j, reply)) return job_free(j), NULL;
  if (!app->tokenizer) j->body.return_tokens = 1; /* no text: the ids are the reply */
  if (!(j->reply = malloc((size_t)j->req.n_generate * sizeof *j->reply))) {
    srv_reply_error(reply, 500, "server_error", "out of memory");
    return job_free(j), NULL;
  }
  sched_request *r = &j->req;
  r->prompt = j->prompt, r->n_prompt = j->n_prompt, r->reply = j->reply;
  r->sampling = j->body.sampling;
  r->n_stop = j->body.n_stop;
  for (int i = 0; i < j->body.n_stop; i++) r->stop[i] = j->body.stop[i];
  j->created = (long)time(NULL);
  j->last_sent = sched_now();
  snprintf(j->id, sizeof j->id, "%s-%lx%05llx", chat ? "chatcmpl" : "cmpl", (unsigned long)j->created,
           (long long)atomic_fetch_add(&app->id_counter, 1) & 0xfffffLL);
  const sched_status st = sched_submit(app->sched, r);
  if (st != SCHED_OK) {
    r->prompt = NULL; /* not submitted: nothing to cancel */
    if (st == SCHED_ERR_QUEUE_FULL || st == SCHED_ERR_SHUTDOWN) {
      srv_reply_error(reply, 503, "unavailable_error", st == SCHED_ERR_SHUTDOWN
                      ? "the server is shutting down" : "every slot is busy and the queue is full; retry later");
      reply->header_name = "Retry-After";
      snprintf(reply->header_value, sizeof reply->header_value, "1");
    } else {
      srv_reply_error(reply, 400, INVALID, "the scheduler refused the request (%s)", sched_status_str(st));
    }
    return job_free(j), NULL;
  }
  return j;
}

/* ---------------------------------------------------------- the replies */

static const char *finish_reason(const sched_request *r) {
  if (r->status != SCHED_OK) return NULL;
  return r->finish == SCHED_FINISH_EOS || r->finish == SCHED_FINISH_STOP ? "stop" : "length";
}

static json_t *usage(const job *j) {
  return json_pack("{s:i, s:i, s:i}", "prompt_tokens", j->n_prompt, "completion_tokens", j->req.n_reply,
                   "total_tokens", j->n_prompt + j->req.n_reply);
}

/* text[0..len) as a JSON string (ill-formed UTF-8 replaced). */
static json_t *json_text(const char *text, size_t len) {
  size_t n = 0;
  char *clean = utf8_sanitize(text ? text : "", text ? len : 0, &n);
  json_t *s = clean ? json_stringn(clean, n) : NULL;
  free(clean);
  return s;
}

static json_t *token_ids(const int32_t *ids, int n) {
  json_t *a = json_array();
  for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(ids[i]));
  return a;
}

static json_t *envelope(const job *j, const char *object, json_t *choice) {
  return json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", j->id, "object", object, "created",
                   (json_int_t)j->created, "model", j->app->model_name, "choices", choice);
}

static int status_of(const sched_request *r, const char **type) {
  *type = "server_error";
  if (r->status == SCHED_ERR_SHUTDOWN) return *type = "unavailable_error", 503;
  return 500;
}

static void reply_whole(job *j, srv_reply *reply) {
  const sched_request *r = &j->req;
  if (r->status != SCHED_OK) {
    const char *type;
    const int status = status_of(r, &type);
    return srv_reply_error(reply, status, type, "%s", r->error[0] ? r->error : sched_status_str(r->status));
  }
  json_t *text = json_text(r->text, r->text_len);
  json_t *choice = j->body.chat
      ? json_pack("{s:i, s:{s:s, s:o}, s:n, s:s}", "index", 0, "message", "role", "assistant", "content",
                  text, "logprobs", "finish_reason", finish_reason(r))
      : json_pack("{s:i, s:o, s:n, s:s}", "index", 0, "text", text, "logprobs", "finish_reason",
                  finish_reason(r));
  if (j->body.return_tokens) json_object_set_new(choice, "tokens", token_ids(r->reply, r->n_reply));
  json_t *root = envelope(j, j->body.chat ? "chat.completion" : "text_completion", choice);
  json_object_set_new(root, "usage", usage(j));
  json_object_set_new(root, "lazyneuron", json_pack("{s:i, s:i}", "slot", r->slot, "prompt_tokens_reused",
                                                    r->n_reused));
  srv_reply_json(reply, 200, root);
}

/* ------------------------------------------------------------ streaming */

static int push(job *j, const char *bytes, size_t n) {
  char *grown = realloc(j->pending, j->pending_len + n + 1);
  if (!grown) return 0;
  j->pending = grown;
  memcpy(j->pending + j->pending_len, bytes, n);
  j->pending_len += n;
  return 1;
}

static int push_event(job *j, json_t *value) {
  char *s = value ? json_dumps(value, JSON_COMPACT) : NULL;
  json_decref(value);
  const int ok = s && push(j, "data: ", 6) && push(j, s, strlen(s)) && push(j, "\n\n", 2);
  free(s);
  return ok;
}

/* One chunk: delta text (may be NULL), or the role, or the end. */
static json_t *chunk(const job *j, json_t *text, int role, const char *finish) {
  json_t *choice;
  if (j->body.chat) {
    json_t *delta = json_object();
    if (role) json_object_set_new(delta, "role", json_string("assistant"));
    if (role || text) json_object_set_new(delta, "content", text ? text : json_string(""));
    choice = json_pack("{s:i, s:o, s:n}", "index", 0, "delta", delta, "logprobs");
  } else {
    choice = json_pack("{s:i, s:o, s:n}", "index", 0, "text", text ? text : json_string(""), "logprobs");
  }
  json_object_set_new(choice, "finish_reason", finish ? json_string(finish) : json_null());
  return envelope(j, j->body.chat ? "chat.completion.chunk" : "text_completion", choice);
}

/* Fills pending with what there is to send now; 0 when nothing is new. */
static int stream_more(job *j) {
  sched_request *r = &j->req;
  if (j->body.chat && !j->sent_role) {
    j->sent_role = 1;
    return push_event(j, chunk(j, NULL, 1, NULL));
  }
  size_t len = 0;
  int finished = 0, n_reply = 0;
  char *text = sched_take_text(j->app->sched, r, j->text_sent, &len, &finished, &n_reply);
  const int new_tokens = j->body.return_tokens && n_reply > j->tokens_sent;
  int ok = 1;
  if (text || new_tokens) {
    json_t *c = chunk(j, text ? json_text(text, len) : NULL, 0, NULL);
    if (new_tokens) {
      json_t *choice = json_array_get(json_object_get(c, "choices"), 0);
      json_object_set_new(choice, "tokens", token_ids(r->reply + j->tokens_sent, n_reply - j->tokens_sent));
      j->tokens_sent = n_reply;
    }
    j->text_sent += len;
    ok = push_event(j, c);
    free(text);
  }
  if (!finished || !ok) return ok;
  j->ended = 1;
  if (r->status != SCHED_OK) {
    const char *type;
    const int status = status_of(r, &type);
    return push_event(j, json_pack("{s:{s:s, s:s, s:i}}", "error", "message",
                                   r->error[0] ? r->error : sched_status_str(r->status), "type", type,
                                   "code", status));
  }
  json_t *last = chunk(j, NULL, 0, finish_reason(r));
  json_object_set_new(last, "usage", usage(j));
  ok = push_event(j, last);
  if (ok && j->body.include_usage) { /* OpenAI's own place for it: a chunk without choices */
    json_t *u = envelope(j, j->body.chat ? "chat.completion.chunk" : "text_completion", json_null());
    json_object_set_new(u, "choices", json_array());
    json_object_set_new(u, "usage", usage(j));
    ok = push_event(j, u);
  }
  return ok && push(j, "data: [DONE]\n\n", 14);
}

/* Half the idle timeout, at most 15 s. */
static double keepalive_seconds(const srv_app *app) {
  const double half = app->opt.timeout_s > 0 ? app->opt.timeout_s / 2.0 : 15;
  return half < 15 ? half : 15;
}

/* How often a stream looks at its client's socket (a poll() and a
 * connection-info call) while tokens keep coming: once per event cost two
 * system calls a token, ~1.6 of the 7.5 a tiny-llama token took through
 * the server with 16 clients (perf stat), on a VM where each one costs
 * microseconds. A client that left is noticed within this time (or by the
 * next send failing). */
#define SOCKET_CHECK_S 0.005

static int client_gone(job *j, double now) {
  if (now - j->socket_checked < SOCKET_CHECK_S) return 0;
  j->socket_checked = now;
  return srv_conn_gone(j->conn);
}

ssize_t srv_stream_read(srv_stream *j, char *buf, size_t max) {
  if (!j->ended && client_gone(j, sched_now())) return -1;
  while (j->pending_at == j->pending_len) {
    j->pending_at = j->pending_len = 0;
    if (j->ended) return 0;
    if (!stream_more(j)) return -1;
    if (j->pending_len > 0) break;
    /* Nothing new: wait for a token, looking at the socket now and then. */
    int n = 0, finished = 0;
    sched_wait(j->app->sched, &j->req, j->n_seen, &n, &finished, 0.1);
    j->n_seen = n;
    const double now = sched_now();
    if (!finished && client_gone(j, now)) return -1;
    /* A stream that waits long (queued behind others, a long prefill) sends
     * an SSE comment, which clients ignore: the connection stays active for
     * --timeout and for proxies. */
    if (now - j->last_sent > keepalive_seconds(j->app)) {
      if (!push(j, ": keep-alive\n\n", 14)) return -1;
      j->last_sent = now;
    }
  }
  j->last_sent = sched_now();
  size_t n = j->pending_len - j->pending_at;
  if (n > max) n = max;
  memcpy(buf, j->pending + j->pending_at, n);
  j->pending_at += n;
  return (ssize_t)n;
}

/* -------------------------------------------------------------- handler */

void srv_completions(srv_app *app, const srv_http_request *http, int chat, srv_reply *reply) {
  job *j = job_start(app, http, chat, reply);
  if (!j) return;
  if (j->body.stream) {
    reply->status = 200;
    reply->content_type = "text/event-stream";
    reply->stream = j;
    return;
  }
  int n = 0, finished = 0;
  for (;;) {
    /* Woken by the end only (n_seen = every token), or to look at the socket. */
    sched_wait(app->sched, &j->req, j->req.n_generate, &n, &finished, 0.1);
    if (finished) break;
    if (srv_conn_gone(http->conn)) { /* nobody to answer: free the slot */
      job_free(j);
      return; /* no body: the connection is closed */
    }
  }
  reply_whole(j, reply);
  job_free(j);
}
