/*
 * server_loop.h: a serving loop over lazyneuron's public API (continuous
 * batching), used by examples/server.c and by tests/test_server.c.
 *
 * Client threads call server_submit() with a request and then
 * server_wait() to receive its tokens as they are generated. One decode
 * thread, started by server_create(), owns a fixed pool of slots (one
 * lzn_context each). Every step it
 *   1. admits waiting requests into free slots (prefill: lzn_forward of the
 *      prompt on that slot's context) and samples their first token;
 *   2. advances every other active sequence by one token with ONE
 *      lzn_forward_batch call, so each weight is read once per step for
 *      all of them, and samples each one's next token with its own sampler;
 *   3. publishes the new tokens and retires the sequences that are done
 *      (n_generate tokens, EOS, or the context full), resetting their slot.
 *
 * Rules of a request, the same whether it runs in the server or alone: the
 * prompt's tokens are accepted by the sampler (for the repetition penalty),
 * the prompt's logits give the first token, each token is then fed back
 * for the next. EOS ends the reply without being part of it. A sequence
 * whose context is full ends after the token its last position predicts,
 * so a reply has at most n_ctx - n_prompt + 1 tokens.
 *
 * Not the library's code: it prints nothing and returns server_status.
 */
#ifndef LZN_EXAMPLE_SERVER_LOOP_H
#define LZN_EXAMPLE_SERVER_LOOP_H

#include <pthread.h>
#include <stdint.h>

#include <lazyneuron.h>

typedef enum server_status {
  SERVER_OK = 0,
  SERVER_ERR_INVALID = 1,   /* NULL, empty prompt, n_generate < 1, a token out of the vocabulary */
  SERVER_ERR_TOO_LONG = 2,  /* the prompt does not fit in a slot's context (n_ctx) */
  SERVER_ERR_SHUTDOWN = 3,  /* submitted after server_shutdown() */
  SERVER_ERR_LIBRARY = 4    /* a lazyneuron call failed: the request's error says which and why */
} server_status;

const char *server_status_str(server_status status);

typedef enum server_finish {
  SERVER_FINISH_NONE = 0,     /* not finished, or failed */
  SERVER_FINISH_LENGTH = 1,   /* n_generate tokens */
  SERVER_FINISH_EOS = 2,      /* the model produced eos_id */
  SERVER_FINISH_CONTEXT = 3   /* the slot's context is full */
} server_finish;

typedef struct server_params {
  int n_slots;             /* sequences decoded together, >= 1 */
  int n_ctx;               /* positions per slot; 0 = the model's maximum */
  int n_threads;           /* OpenMP threads per lazyneuron call (1 keeps several clients cheap) */
  lzn_mlp_mode mlp_mode;
  lzn_kv_type kv_type;
  /* The model's activation predictor (lzn_context_params.use_predictor;
   * on by default, as in the library). Its approximation applies per token
   * in every mode but DENSE, whichever path AUTO takes for a step, so a
   * reply still equals the request run alone. */
  int use_predictor;
  int32_t eos_id;          /* -1: none */
} server_params;

server_params server_default_params(void);

/* One request. The client fills the inputs, owns the memory (prompt and
 * reply must outlive the request) and reads the outputs: tokens
 * reply[0 .. n_reply) are final once server_wait() has reported them. */
typedef struct server_request {
  /* inputs */
  const int32_t *prompt;
  int n_prompt;
  int n_generate;               /* tokens wanted, >= 1; reply has room for them */
  lzn_sampler_params sampling;  /* temperature, seed, ...: the sequence's own sampler */
  int32_t *reply;
  /* outputs, written by the decode thread under the server's lock */
  int n_reply;
  int finished;                 /* 1 once the request is answered (done or failed) */
  server_finish finish;
  server_status status;
  char error[256];              /* for SERVER_ERR_LIBRARY: the call and lzn_last_error() */
  /* the server's own */
  struct server_request *next;  /* in the waiting queue */
} server_request;

typedef struct server_stats {
  int64_t requests_done;        /* answered, whatever the outcome */
  int64_t tokens_generated;     /* reply tokens, every request */
  int64_t prompt_tokens;        /* prefilled */
  int64_t batch_steps;          /* lzn_forward_batch calls */
  int64_t batch_tokens;         /* tokens they advanced (mean batch = batch_tokens / batch_steps) */
  int active_slots;             /* slots holding a sequence right now */
  int waiting;                  /* requests in the queue right now */
} server_stats;

typedef struct server server;

/* Creates the slots' contexts and starts the decode thread. The model must
 * outlive the server. Statuses: OK, INVALID, LIBRARY (*error, if not NULL,
 * says why; capacity 256). */
server_status server_create(const lzn_model *model, const server_params *params, server **out,
                            char error[256]);

/* Queues a request (its outputs are reset); a request is in one server
 * at a time, and may be submitted again once finished. Statuses: OK, INVALID,
 * TOO_LONG, SHUTDOWN; on failure the request is not queued and nothing
 * will answer it. */
server_status server_submit(server *s, server_request *request);

/* Blocks until the request has more than n_seen reply tokens or is
 * finished; then *n_reply = its reply tokens so far and *finished its
 * state. Returns the request's status (OK while it runs). */
server_status server_wait(server *s, server_request *request, int n_seen, int *n_reply,
                          int *finished);

/* Refuses new requests, lets the decode thread answer every queued and
 * active one, and joins it. Idempotent. */
void server_shutdown(server *s);

server_stats server_get_stats(server *s);

/* Shuts down if needed, then frees the contexts. NULL is a no-op. */
void server_free(server *s);

#endif /* LZN_EXAMPLE_SERVER_LOOP_H */
