/*
 * server.h: what lzn-server's parts share: the options, the application
 * state, and the reply a route hands back to the HTTP layer.
 *
 * Files: main.c (options, model, signals), http.c (libmicrohttpd: bodies,
 * auth, responses, SSE), routes.c (dispatch, /health, /v1/models, /slots),
 * completions.c (the two generation endpoints), request.c (JSON body ->
 * srv_request), metrics.c (/metrics), scheduler.c (the decode loop),
 * ../common/reply_text.c (UTF-8 and stop strings).
 */
#ifndef LZN_SERVER_H
#define LZN_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <lazyneuron.h>

#include "scheduler.h"

typedef struct srv_options {
  const char *model_path, *host, *api_key, *alias, *slot_save_path, *chat_template;
  int port, n_slots, n_ctx, n_threads, queue_max, prefill_chunk, timeout_s, max_connections;
  int use_predictor, reuse_prefix, no_mmap;
  int http_nice; /* the connection threads' nice value (0: as the decode thread's) */
  lzn_mlp_mode mode;
  lzn_weight_type type, predictor_type;
  size_t max_body;
  size_t pack_budget; /* lzn_model_params.pack_budget: bytes of packed copies (SIZE_MAX: all) */
  double drain_s;
} srv_options;

/* HTTP statuses counted for /metrics. */
#define SRV_N_CODES 10
extern const int srv_counted_codes[SRV_N_CODES]; /* the last slot counts every other code */

typedef struct srv_app {
  srv_options opt;
  atomic_int ready;                 /* 1 once the model is loaded and the scheduler runs */
  atomic_int stopping;              /* 1 once a signal asked to stop */
  lzn_model *model;
  const lzn_tokenizer *tokenizer;   /* NULL: the model has none (prompts as token ids only) */
  lzn_tokenizer_info tinfo;
  lzn_model_info info;
  sched *sched;
  int n_ctx;                        /* per slot, resolved */
  const char *chat_template;        /* what lzn_chat_apply_template gets: text or family name */
  const char *chat_family;          /* its family's name */
  char model_name[256];
  long created;                     /* the server's start, for /v1/models */
  atomic_llong http_requests[SRV_N_CODES];
  atomic_llong id_counter;
  atomic_int in_flight;             /* requests read and not yet answered to the end */
} srv_app;

/* The HTTP connection a route runs for (http.c). */
typedef struct srv_conn srv_conn;
/* 1 when the client has closed its side (it left: stop working for it). */
int srv_conn_gone(srv_conn *conn);

/* A server-sent-events stream (completions.c): read fills buf with the
 * next bytes (blocking until there are some), returns their count, 0 at
 * the end, -1 when the client left or the stream broke; free always runs
 * once, and answers the scheduler. */
typedef struct srv_stream srv_stream;
ssize_t srv_stream_read(srv_stream *stream, char *buf, size_t max);
void srv_stream_free(srv_stream *stream);

typedef struct srv_reply {
  int status;
  const char *content_type;     /* a static string */
  char *body;                   /* malloc'ed, owned by the reply */
  size_t len;
  const char *header_name;      /* one extra header (Retry-After, Allow) or NULL */
  char header_value[64];
  srv_stream *stream;           /* not NULL: stream this instead of body */
} srv_reply;

/* What a route gets. */
typedef struct srv_http_request {
  const char *method, *path;
  const char *action;           /* the ?action= query argument, or NULL */
  const char *body;             /* NUL-terminated copy of the body */
  size_t body_len;
  srv_conn *conn;
} srv_http_request;

/* routes.c: answers one request (never NULL body unless streaming). */
void srv_route(srv_app *app, const srv_http_request *req, srv_reply *reply);

/* A JSON reply from a jansson value (stolen) / an OpenAI error object
 * {"error": {"message", "type", "code"}} with code the HTTP status. */
struct json_t;
void srv_reply_json(srv_reply *reply, int status, struct json_t *value);
void srv_reply_error(srv_reply *reply, int status, const char *type, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* completions.c: POST /v1/completions (chat 0) and /v1/chat/completions (1). */
void srv_completions(srv_app *app, const srv_http_request *req, int chat, srv_reply *reply);

/* metrics.c: the Prometheus text of GET /metrics, malloc'ed. */
char *srv_metrics_text(srv_app *app, size_t *len);

/* http.c: the daemon. */
struct MHD_Daemon;
struct MHD_Daemon *srv_http_start(srv_app *app, char error[256]);
/* The port it listens on (useful with --port 0). */
int srv_http_port(struct MHD_Daemon *daemon);
/* Stops accepting connections; the open ones carry on. */
void srv_http_quiesce(struct MHD_Daemon *daemon);
void srv_http_stop(struct MHD_Daemon *daemon);

#endif /* LZN_SERVER_H */
