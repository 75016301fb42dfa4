/*
 * scheduler.h: lzn-server's decode loop over lazyneuron's public API
 * (continuous batching over a pool of slots). Also compiled into
 * examples/server.c and tests/test_server.c.
 *
 * Client threads (the HTTP handlers) call sched_submit() with a request and
 * then sched_wait() for its tokens and text as they are generated. One
 * decode thread, started by sched_create(), owns the slots (one
 * lzn_context each, with the tokens its cache holds). Every step it
 *   1. drops cancelled requests, runs slot tasks (save / restore), and
 *      admits queued requests into free slots, each into the free slot
 *      whose cache shares the longest prefix with its prompt; when another
 *      slot (busy or not) shares a longer one, that prefix is copied over
 *      (lzn_context_copy_prefix); only the rest of the prompt is prefilled;
 *   2. prefills at most prefill_chunk prompt tokens over all the slots
 *      being admitted (lzn_forward), so the running streams wait at most
 *      one chunk per step; a slot whose prompt is done samples its first
 *      token;
 *   3. advances every other running sequence by one token with ONE
 *      lzn_forward_batch call (each weight read once per step for all of
 *      them, the MLP over the union of their active rows), and samples
 *      each one's next token with its own sampler;
 *   4. publishes the tokens and text, ends what is done (max tokens, EOS,
 *      a stop string, the context full) and frees its slot. A freed slot
 *      keeps its cache for the next request's prefix.
 *
 * Rules of a request, the same whether it runs here or alone: the prompt's
 * tokens are accepted by the sampler (for the repetition penalty), the
 * prompt's logits give the first token, each token is then fed back for
 * the next. EOS ends the reply without being part of it. A sequence whose
 * context is full ends after the token its last position predicts, so a
 * reply has at most n_ctx - n_prompt + 1 tokens. The text is the tokens'
 * pieces (lzn_token_to_piece); a stop string ends it, cut before the stop.
 * A batched step equals the same step alone within fp32 rounding, so at
 * temperature 0 a reply equals the request alone except where two logits
 * tie that closely.
 *
 * Not the library's code: it prints nothing and returns sched_status.
 */
#ifndef LZN_SERVER_SCHEDULER_H
#define LZN_SERVER_SCHEDULER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <lazyneuron.h>

typedef enum sched_status {
  SCHED_OK = 0,
  SCHED_ERR_INVALID = 1,    /* NULL, empty prompt, n_generate < 1, a token out of the vocabulary */
  SCHED_ERR_TOO_LONG = 2,   /* the prompt does not fit in a slot's context (n_ctx) */
  SCHED_ERR_SHUTDOWN = 3,   /* submitted after sched_shutdown(), or cancelled by it */
  SCHED_ERR_LIBRARY = 4,    /* a lazyneuron call failed: the request's error says which and why */
  SCHED_ERR_QUEUE_FULL = 5, /* queue_max requests already wait */
  SCHED_ERR_CANCELLED = 6   /* the client cancelled it (sched_cancel) */
} sched_status;

const char *sched_status_str(sched_status status);

typedef enum sched_finish {
  SCHED_FINISH_NONE = 0,    /* not finished, or failed */
  SCHED_FINISH_LENGTH = 1,  /* n_generate tokens */
  SCHED_FINISH_EOS = 2,     /* the model produced eos_id */
  SCHED_FINISH_CONTEXT = 3, /* the slot's context is full */
  SCHED_FINISH_STOP = 4     /* a stop string */
} sched_finish;

typedef struct sched_params {
  int n_slots;              /* sequences decoded together, >= 1 */
  int n_ctx;                /* positions per slot; 0 = the model's maximum */
  int n_threads;            /* threads per lazyneuron call */
  lzn_mlp_mode mlp_mode;
  lzn_kv_type kv_type;
  int use_predictor;        /* lzn_context_params.use_predictor */
  int32_t eos_id;           /* -1: none */
  int queue_max;            /* requests that may wait for a slot; < 0 = no limit */
  int prefill_chunk;        /* prompt tokens prefilled per step, >= 1 */
  int reuse_prefix;         /* 1: start prompts from the longest cached prefix */
  int collect_stats;        /* 1: MLP statistics for sched_stats (a little slower) */
  /* For the text of replies (pieces, stop strings); NULL: tokens only. */
  const lzn_tokenizer *tokenizer;
} sched_params;

sched_params sched_default_params(void);

#define SCHED_MAX_STOP 8

/* One request. The client fills the inputs, owns the memory (prompt, stop
 * strings and reply must outlive the request) and reads the outputs under
 * sched_wait(): reply[0 .. n_reply) and text[0 .. text_ready) are final
 * once reported. text is allocated by the scheduler and freed by
 * sched_request_release(). */
typedef struct sched_request {
  /* inputs */
  const int32_t *prompt;
  int n_prompt;
  int n_generate;               /* tokens wanted, >= 1; reply has room for them */
  lzn_sampler_params sampling;  /* temperature, seed, ...: the sequence's own sampler */
  int32_t *reply;
  const char *stop[SCHED_MAX_STOP]; /* NUL-terminated, non-empty */
  int n_stop;
  /* outputs, written by the decode thread under the scheduler's lock */
  int n_reply;
  char *text;                   /* the reply's bytes, cut at a stop string */
  size_t text_len;
  size_t text_ready;            /* bytes that no later token can change: whole UTF-8
                                   sequences, no possible start of a stop string */
  int finished;                 /* 1 once the request is answered (done or failed) */
  sched_finish finish;
  sched_status status;
  char error[256];              /* for SCHED_ERR_LIBRARY: the call and lzn_last_error() */
  int n_reused;                 /* prompt tokens taken from a cached prefix */
  int slot;                     /* the slot it ran in, -1 before */
  double t_submitted, t_first_token, t_finished; /* seconds, CLOCK_MONOTONIC */
  /* the scheduler's own */
  size_t text_cap;
  int cancel;                   /* set by sched_cancel */
  struct sched_request *next;   /* in the waiting queue */
} sched_request;

typedef struct sched_stats {
  int64_t requests_done;        /* answered, whatever the outcome */
  int64_t requests_failed;      /* of which failed or cancelled */
  int64_t requests_rejected;    /* refused: queue full */
  int64_t tokens_generated;     /* reply tokens, every request */
  int64_t prompt_tokens;        /* prompt tokens of admitted requests */
  int64_t prompt_tokens_reused; /* of which taken from a cached prefix */
  int64_t batch_steps;          /* lzn_forward_batch calls */
  int64_t batch_tokens;         /* tokens they advanced (mean batch = batch_tokens / batch_steps) */
  double decode_seconds;        /* wall time inside those calls: the library's own share of decoding */
  double prefill_seconds;       /* wall time inside the prompts' lzn_forward calls */
  double ttft_sum;              /* seconds from submit to first token, summed */
  int64_t ttft_count;
  double tokens_per_second;     /* generated over the last second or so of work */
  int active_slots;             /* slots holding a sequence right now */
  int n_slots;
  int waiting;                  /* requests in the queue right now */
  /* MLP statistics over every slot (collect_stats): tokens-weighted
   * active fraction, and bytes a dense MLP would have read minus those read. */
  double mlp_active_fraction;
  double mlp_bytes_saved;
  double mlp_bytes_dense;
} sched_stats;

typedef struct sched sched;

/* Creates the slots' contexts and starts the decode thread. The model must
 * outlive the scheduler. Statuses: OK, INVALID, LIBRARY (*error, if not
 * NULL, says why; capacity 256). */
sched_status sched_create(const lzn_model *model, const sched_params *params, sched **out,
                          char error[256]);

/* Queues a request (its outputs are reset); a request is in one scheduler
 * at a time, and may be submitted again once finished and released.
 * Statuses: OK, INVALID, TOO_LONG, SHUTDOWN, QUEUE_FULL; on failure the
 * request is not queued and nothing will answer it. */
sched_status sched_submit(sched *s, sched_request *request);

/* Blocks until the request has more than n_seen reply tokens, is finished,
 * or timeout_s seconds passed (< 0: no limit); then *n_reply = its reply
 * tokens so far and *finished its state. Returns the request's status (OK
 * while it runs). */
sched_status sched_wait(sched *s, sched_request *request, int n_seen, int *n_reply, int *finished,
                        double timeout_s);

/* Asks the decode thread to drop a submitted request (a client left); it
 * finishes with SCHED_ERR_CANCELLED at the next step unless done before.
 * The client still waits for finished before reusing or freeing it. */
void sched_cancel(sched *s, sched_request *request);

/* Frees what the scheduler allocated in a finished request (its text). */
void sched_request_release(sched_request *request);

/* Copies text[from .. text_ready) (or to text_len once finished) into a
 * new NUL-terminated buffer under the lock, *len its bytes; NULL when
 * there is nothing new (or no memory). Sets *finished, and *n_reply to the
 * reply tokens published so far (reply[0 .. *n_reply) are final). */
char *sched_take_text(sched *s, sched_request *request, size_t from, size_t *len, int *finished,
                      int *n_reply);

/* Refuses new requests; lets the decode thread answer every queued and
 * running one for up to drain_s seconds (< 0: no limit), then cancels what
 * is left (SCHED_ERR_SHUTDOWN); joins the thread. Idempotent. */
void sched_shutdown(sched *s, double drain_s);

/* Saves slot `slot`'s sequence (its tokens and lzn_context_state) to the
 * file at path, or restores it from there; run by the decode thread
 * between steps, on an idle slot. *n_tokens: the tokens saved or restored,
 * *n_bytes: the file's size. Statuses: OK, INVALID (no such slot, or it is
 * busy: *error says), LIBRARY (I/O or a library refusal: *error). */
sched_status sched_slot_save(sched *s, int slot, const char *path, int *n_tokens, size_t *n_bytes,
                             char error[256]);
sched_status sched_slot_restore(sched *s, int slot, const char *path, int *n_tokens,
                                size_t *n_bytes, char error[256]);

/* Whether every slot is busy and the queue full (a new request would be refused). */
int sched_full(sched *s);

sched_stats sched_get_stats(sched *s);

/* Shuts down if needed (no drain limit), then frees the contexts. NULL is a no-op. */
void sched_free(sched *s);

/* Seconds on CLOCK_MONOTONIC. */
double sched_now(void);

#endif /* LZN_SERVER_SCHEDULER_H */
