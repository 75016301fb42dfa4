/*
 * server_loop.c: the serving loop of server_loop.h (continuous batching over
 * a fixed pool of contexts).
 *
 * Locking: one mutex guards the queue, every request's outputs and the
 * statistics. The slots (contexts, samplers, pending tokens) belong to the
 * decode thread alone and are used without the lock, so no lazyneuron call
 * ever runs under it and clients are never held up by a forward pass.
 * Clients wait on one shared condition variable, broadcast once per step:
 * with a handful of clients that costs nothing and needs no per-request
 * setup or teardown.
 */
#include "server_loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
  lzn_context *ctx;
  lzn_sampler *sampler;
  server_request *request;  /* NULL: free */
  int32_t token;            /* the last sampled token: published, then fed next step */
  int n_reply;              /* tokens of the reply so far, counting `token` once published */
  int has_new;              /* `token` is to be published this step */
  server_finish finish;     /* set when the sequence ends this step */
  server_status status;     /* not OK: the request failed this step */
  char error[256];
} slot;

struct server {
  const lzn_model *model;
  server_params params;     /* n_ctx resolved */
  int vocab;
  slot *slots;
  float *logits;            /* [n_slots][vocab]: one row per sequence of a step */
  lzn_context **batch_ctxs; /* [n_slots]: this step's batch */
  int32_t *batch_tokens;
  int *batch_slot;          /* batch index -> slot index */
  int *admitted;            /* [n_slots]: 1 if the slot was prefilled this step */

  pthread_mutex_t lock;
  pthread_cond_t work;      /* the decode thread waits here for requests */
  pthread_cond_t progress;  /* clients wait here for tokens */
  server_request *queue_head, *queue_tail;
  int shutting_down;
  int thread_running;       /* the decode thread is started and not yet joined */
  pthread_t thread;
  server_stats stats;
};

const char *server_status_str(server_status status) {
  switch (status) {
  case SERVER_OK: return "SERVER_OK";
  case SERVER_ERR_INVALID: return "SERVER_ERR_INVALID";
  case SERVER_ERR_TOO_LONG: return "SERVER_ERR_TOO_LONG";
  case SERVER_ERR_SHUTDOWN: return "SERVER_ERR_SHUTDOWN";
  case SERVER_ERR_LIBRARY: return "SERVER_ERR_LIBRARY";
  }
  return "SERVER_UNKNOWN_STATUS";
}

server_params server_default_params(void) {
  server_params p = {4, 0, 1, LZN_MLP_AUTO, LZN_KV_F16, 1, -1};
  return p;
}

/* Records a failed lazyneuron call in buf (this thread's lzn_last_error). */
static void library_error(char *buf, const char *call, lzn_status st) {
  snprintf(buf, 256, "%s: %s: %s", call, lzn_status_str(st), lzn_last_error());
}

static void slot_fail(slot *sl, const char *call, lzn_status st) {
  sl->status = SERVER_ERR_LIBRARY;
  sl->has_new = 0;
  library_error(sl->error, call, st);
}

/* After sampling sl->token: does the sequence end here, and is the token
 * part of the reply? (The rules in server_loop.h.) */
static void after_sample(const server *s, slot *sl) {
  const server_request *r = sl->request;
  if (s->params.eos_id >= 0 && sl->token == s->params.eos_id) {
    sl->finish = SERVER_FINISH_EOS;
    return;
  }
  sl->has_new = 1;
  if (sl->n_reply + 1 == r->n_generate) sl->finish = SERVER_FINISH_LENGTH;
  else if (lzn_context_n_past(sl->ctx) >= s->params.n_ctx) sl->finish = SERVER_FINISH_CONTEXT;
}

static void sample(const server *s, slot *sl, const float *logits) {
  const lzn_status st = lzn_sampler_sample(sl->sampler, logits, &sl->token);
  if (st != LZN_OK) slot_fail(sl, "lzn_sampler_sample", st);
  else after_sample(s, sl);
}

/* A new sequence: its own sampler, the prompt prefilled, the first token. */
static void prefill(server *s, slot *sl, float *logits) {
  const server_request *r = sl->request;
  const char *call = "lzn_sampler_create";
  lzn_status st = lzn_sampler_create(&r->sampling, s->vocab, &sl->sampler);
  if (st == LZN_OK) call = "lzn_sampler_accept";
  for (int i = 0; i < r->n_prompt && st == LZN_OK; i++) st = lzn_sampler_accept(sl->sampler, r->prompt[i]);
  if (st == LZN_OK) {
    call = "lzn_forward (prefill)";
    st = lzn_forward(sl->ctx, r->prompt, r->n_prompt, logits, LZN_LOGITS_LAST);
  }
  if (st != LZN_OK) slot_fail(sl, call, st);
  else sample(s, sl, logits);
}

static int slot_done(const slot *sl) {
  return sl->status != SERVER_OK || sl->finish != SERVER_FINISH_NONE;
}

/* One step, without the lock: prefill the admitted slots, then one batch
 * over every other running sequence, then clear the slots that ended. */
static void step(server *s) {
  const int n_slots = s->params.n_slots;
  for (int i = 0; i < n_slots; i++)
    if (s->admitted[i]) prefill(s, &s->slots[i], s->logits + (size_t)i * s->vocab);

  int n = 0;
  for (int i = 0; i < n_slots; i++) {
    slot *sl = &s->slots[i];
    if (!sl->request || s->admitted[i] || slot_done(sl)) continue;
    s->batch_ctxs[n] = sl->ctx, s->batch_tokens[n] = sl->token, s->batch_slot[n] = i, n++;
  }
  if (n > 0) {
    const lzn_status st = lzn_forward_batch(s->batch_ctxs, s->batch_tokens, n, s->logits);
    for (int k = 0; k < n; k++) {
      slot *sl = &s->slots[s->batch_slot[k]];
      if (st != LZN_OK) slot_fail(sl, "lzn_forward_batch", st); /* no context advanced */
      else sample(s, sl, s->logits + (size_t)k * s->vocab);
    }
  }

  for (int i = 0; i < n_slots; i++) {
    slot *sl = &s->slots[i];
    if (!sl->request || !slot_done(sl)) continue;
    lzn_sampler_free(sl->sampler);
    sl->sampler = NULL;
    const lzn_status st = lzn_context_reset(sl->ctx); /* fails only on NULL: kept for honesty */
    if (st != LZN_OK && sl->status == SERVER_OK) slot_fail(sl, "lzn_context_reset", st);
  }
  pthread_mutex_lock(&s->lock);
  s->stats.batch_steps += n > 0;
  s->stats.batch_tokens += n;
  pthread_mutex_unlock(&s->lock);
}

/* Under the lock: hand this step's tokens to the clients, answer the
 * requests that ended and free their slots. */
static void publish(server *s) {
  for (int i = 0; i < s->params.n_slots; i++) {
    slot *sl = &s->slots[i];
    server_request *r = sl->request;
    if (!r) continue;
    if (sl->has_new) {
      r->reply[r->n_reply++] = sl->token;
      sl->n_reply++, sl->has_new = 0;
      s->stats.tokens_generated++;
    }
    if (!slot_done(sl)) continue;
    r->finish = sl->status == SERVER_OK ? sl->finish : SERVER_FINISH_NONE;
    r->status = sl->status;
    memcpy(r->error, sl->error, sizeof r->error);
    r->finished = 1;
    sl->request = NULL;
    s->stats.active_slots--;
    s->stats.requests_done++;
  }
  pthread_cond_broadcast(&s->progress);
}

static void *decode_loop(void *arg) {
  server *s = arg;
  pthread_mutex_lock(&s->lock);
  for (;;) {
    while (!s->queue_head && s->stats.active_slots == 0 && !s->shutting_down)
      pthread_cond_wait(&s->work, &s->lock);
    if (!s->queue_head && s->stats.active_slots == 0) break; /* shutting down, all answered */
    for (int i = 0; i < s->params.n_slots; i++) {
      slot *sl = &s->slots[i];
      s->admitted[i] = 0;
      if (sl->request || !s->queue_head) continue;
      sl->request = s->queue_head;
      s->queue_head = sl->request->next;
      if (!s->queue_head) s->queue_tail = NULL;
      sl->n_reply = 0, sl->has_new = 0;
      sl->finish = SERVER_FINISH_NONE, sl->status = SERVER_OK, sl->error[0] = '\0';
      s->admitted[i] = 1;
      s->stats.active_slots++, s->stats.waiting--;
      s->stats.prompt_tokens += sl->request->n_prompt;
    }
    pthread_mutex_unlock(&s->lock);
    step(s);
    pthread_mutex_lock(&s->lock);
    publish(s);
  }
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

static void free_slots(server *s) {
  for (int i = 0; s->slots && i < s->params.n_slots; i++) {
    lzn_context_free(s->slots[i].ctx);
    lzn_sampler_free(s->slots[i].sampler);
  }
  free(s->slots), free(s->logits), free(s->batch_ctxs), free(s->batch_tokens);
  free(s->batch_slot), free(s->admitted);
}

server_status server_create(const lzn_model *model, const server_params *params, server **out,
                            char error[256]) {
  char scratch[256];
  if (!error) error = scratch;
  error[0] = '\0';
  if (!out) return SERVER_ERR_INVALID;
  *out = NULL;
  if (!model || !params || params->n_slots < 1 || params->n_ctx < 0 || params->n_threads < 1) {
    snprintf(error, 256, "server_create: NULL model or params, n_slots < 1, n_ctx < 0 or n_threads < 1");
    return SERVER_ERR_INVALID;
  }
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_status st = lzn_model_get_info(model, &info);
  if (st != LZN_OK) return library_error(error, "lzn_model_get_info", st), SERVER_ERR_LIBRARY;

  server *s = calloc(1, sizeof *s);
  if (!s) return snprintf(error, 256, "server_create: out of memory"), SERVER_ERR_LIBRARY;
  s->model = model;
  s->params = *params;
  if (s->params.n_ctx == 0) s->params.n_ctx = info.max_positions;
  s->vocab = info.vocab_size;
  const size_t n = (size_t)params->n_slots;
  s->slots = calloc(n, sizeof *s->slots);
  s->logits = malloc(n * (size_t)s->vocab * sizeof(float));
  s->batch_ctxs = malloc(n * sizeof *s->batch_ctxs);
  s->batch_tokens = malloc(n * sizeof *s->batch_tokens);
  s->batch_slot = malloc(n * sizeof *s->batch_slot);
  s->admitted = calloc(n, sizeof *s->admitted);
  if (!s->slots || !s->logits || !s->batch_ctxs || !s->batch_tokens || !s->batch_slot || !s->admitted) {
    free_slots(s), free(s);
    return snprintf(error, 256, "server_create: out of memory"), SERVER_ERR_LIBRARY;
  }
  lzn_context_params cp = lzn_context_default_params();
  cp.n_ctx = s->params.n_ctx;
  cp.n_threads = s->params.n_threads;
  cp.mlp_mode = s->params.mlp_mode;
  cp.kv_type = s->params.kv_type;
  cp.use_predictor = s->params.use_predictor;
  cp.collect_stats = 0; /* a server resets contexts all the time; nobody reads them */
  for (size_t i = 0; i < n && st == LZN_OK; i++) st = lzn_context_create(model, &cp, &s->slots[i].ctx);
  if (st != LZN_OK) {
    library_error(error, "lzn_context_create", st);
    free_slots(s), free(s);
    return SERVER_ERR_LIBRARY;
  }
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->work, NULL);
  pthread_cond_init(&s->progress, NULL);
  if (pthread_create(&s->thread, NULL, decode_loop, s) != 0) {
    snprintf(error, 256, "server_create: pthread_create failed");
    pthread_mutex_destroy(&s->lock), pthread_cond_destroy(&s->work), pthread_cond_destroy(&s->progress);
    free_slots(s), free(s);
    return SERVER_ERR_LIBRARY;
  }
  s->thread_running = 1;
  *out = s;
  return SERVER_OK;
}

server_status server_submit(server *s, server_request *r) {
  if (!s || !r || !r->prompt || r->n_prompt < 1 || r->n_generate < 1 || !r->reply)
    return SERVER_ERR_INVALID;
  for (int i = 0; i < r->n_prompt; i++)
    if (r->prompt[i] < 0 || r->prompt[i] >= s->vocab) return SERVER_ERR_INVALID;
  if (r->n_prompt > s->params.n_ctx) return SERVER_ERR_TOO_LONG;
  r->n_reply = 0, r->finished = 0, r->finish = SERVER_FINISH_NONE;
  r->status = SERVER_OK, r->error[0] = '\0', r->next = NULL;
  pthread_mutex_lock(&s->lock);
  if (s->shutting_down) {
    pthread_mutex_unlock(&s->lock);
    return SERVER_ERR_SHUTDOWN;
  }
  if (s->queue_tail) s->queue_tail->next = r;
  else s->queue_head = r;
  s->queue_tail = r;
  s->stats.waiting++;
  pthread_cond_signal(&s->work);
  pthread_mutex_unlock(&s->lock);
  return SERVER_OK;
}

server_status server_wait(server *s, server_request *r, int n_seen, int *n_reply, int *finished) {
  if (!s || !r || !n_reply || !finished) return SERVER_ERR_INVALID;
  pthread_mutex_lock(&s->lock);
  while (!r->finished && r->n_reply <= n_seen) pthread_cond_wait(&s->progress, &s->lock);
  *n_reply = r->n_reply;
  *finished = r->finished;
  const server_status status = r->status;
  pthread_mutex_unlock(&s->lock);
  return status;
}

void server_shutdown(server *s) {
  if (!s) return;
  pthread_mutex_lock(&s->lock);
  s->shutting_down = 1;
  pthread_cond_signal(&s->work);
  const int join = s->thread_running;
  s->thread_running = 0;
  pthread_mutex_unlock(&s->lock);
  if (join) pthread_join(s->thread, NULL);
}

server_stats server_get_stats(server *s) {
  server_stats st;
  pthread_mutex_lock(&s->lock);
  st = s->stats;
  pthread_mutex_unlock(&s->lock);
  return st;
}

void server_free(server *s) {
  if (!s) return;
  server_shutdown(s);
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->work);
  pthread_cond_destroy(&s->progress);
  free_slots(s);
  free(s);
}
