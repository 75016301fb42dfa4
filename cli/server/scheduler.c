/*
 * scheduler.c: the decode loop of scheduler.h (continuous batching over a
 * pool of slots, chunked prefill, prompt-prefix reuse).
 *
 * Locking: one mutex guards the queue, every request's outputs, the slot
 * tasks and the statistics. The slots (contexts, samplers, cached tokens)
 * belong to the decode thread alone and are used without the lock, so no
 * forward pass ever runs under it and clients are never held up by one.
 * Clients wait on one shared condition variable, broadcast once per step
 * by a second thread (the waker), so that the decode thread only signals
 * the waker: the broadcast to 16 streams' threads took it 0.2 ms a step,
 * as long as a tiny model's step (each woken thread an inter-processor
 * interrupt; 13 us apiece on the 2-vCPU VM of bench/RESULTS.md). The
 * waker stays awake (yielding) for 100 us after each broadcast, so that
 * at one step after another even that signal costs no system call.
 */
#include "scheduler.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/reply_text.h"
#include "slot_file.h"

typedef enum slot_phase { SLOT_IDLE = 0, SLOT_PREFILL, SLOT_DECODE } slot_phase;

typedef struct slot {
  lzn_context *ctx;
  lzn_sampler *sampler;
  sched_request *request;   /* NULL: free */
  slot_phase phase;
  int32_t *cached;          /* [n_ctx]: the tokens in the KV cache, cached[0 .. n_cached) */
  int n_cached;
  int n_prefilled;          /* prompt tokens in the cache */
  int reuse_from;           /* admission: the slot to copy the prefix from (-1: this one) */
  int reuse_n;              /* admission: prompt tokens to keep from the cache */
  int admitted;             /* admitted this step: set up before prefill */
  int fresh;                /* its first token was sampled this step: not in this batch */
  int32_t token;            /* the last sampled token: published, then fed next step */
  int n_reply;              /* tokens of the reply so far, counting `token` once published */
  int has_new;              /* `token` is to be published this step */
  sched_finish finish;      /* set when the sequence ends this step */
  sched_status status;      /* not OK: the request failed this step */
  char error[256];
  uint64_t order;           /* admission order: prefill goes first come, first served */
  uint64_t last_used;       /* for choosing among free slots: least recently used first */
} slot;

/* A save or restore, run by the decode thread between steps. */
typedef struct slot_task {
  int slot, restore;
  const char *path;
  int n_tokens;
  size_t n_bytes;
  sched_status status;
  char *error;
  int done;
  struct slot_task *next;
} slot_task;

struct sched {
  const lzn_model *model;
  sched_params params;      /* n_ctx resolved */
  int vocab, n_layers;
  slot *slots;
  float *logits;            /* [n_slots][vocab]: one row per sequence of a step */
  lzn_context **batch_ctxs; /* [n_slots]: this step's batch */
  int32_t *batch_tokens;
  int *batch_slot;          /* batch index -> slot index */
  lzn_layer_stats *layer_stats; /* [n_layers] scratch for the MLP snapshot */
  uint64_t n_admitted, clock;

  pthread_mutex_t lock;
  pthread_cond_t work;      /* the decode thread waits here for requests */
  pthread_cond_t progress;  /* clients wait here for tokens */
  pthread_cond_t published; /* the waker waits here for a step to announce */
  _Atomic uint64_t n_published; /* steps published (written under the lock) */
  uint64_t n_announced;         /* steps broadcast on progress */
  int waker_stop, waker_running;
  pthread_t waker;
  sched_request *queue_head, *queue_tail;
  slot_task *tasks;
  int shutting_down, cancel_all;
  int thread_running;
  pthread_t thread;
  sched_stats stats;
  double rate_t0;           /* tokens_per_second's window */
  int64_t rate_tokens0;
  double last_snapshot;
};

const char *sched_status_str(sched_status status) {
  switch (status) {
  case SCHED_OK: return "SCHED_OK";
  case SCHED_ERR_INVALID: return "SCHED_ERR_INVALID";
  case SCHED_ERR_TOO_LONG: return "SCHED_ERR_TOO_LONG";
  case SCHED_ERR_SHUTDOWN: return "SCHED_ERR_SHUTDOWN";
  case SCHED_ERR_LIBRARY: return "SCHED_ERR_LIBRARY";
  case SCHED_ERR_QUEUE_FULL: return "SCHED_ERR_QUEUE_FULL";
  case SCHED_ERR_CANCELLED: return "SCHED_ERR_CANCELLED";
  }
  return "SCHED_UNKNOWN_STATUS";
}

sched_params sched_default_params(void) {
  sched_params p;
  memset(&p, 0, sizeof p);
  p.n_slots = 4, p.n_threads = 1, p.mlp_mode = LZN_MLP_AUTO, p.kv_type = LZN_KV_F16;
  p.use_predictor = 1, p.eos_id = -1, p.prefill_chunk = 256, p.reuse_prefix = 1, p.queue_max = -1;
  return p;
}

double sched_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Records a failed lazyneuron call in buf (this thread's lzn_last_error). */
static void library_error(char *buf, const char *call, lzn_status st) {
  snprintf(buf, 256, "%s: %s: %s", call, lzn_status_str(st), lzn_last_error());
}

static void slot_fail(slot *sl, const char *call, lzn_status st) {
  sl->status = SCHED_ERR_LIBRARY;
  sl->has_new = 0;
  library_error(sl->error, call, st);
}

static int slot_done(const slot *sl) {
  return sl->status != SCHED_OK || sl->finish != SCHED_FINISH_NONE;
}

/* After sampling sl->token: does the sequence end here, and is the token
 * part of the reply? (The rules in scheduler.h; stop strings are checked
 * when the text is published.) */
static void after_sample(const sched *s, slot *sl) {
  const sched_request *r = sl->request;
  if (s->params.eos_id >= 0 && sl->token == s->params.eos_id) {
    sl->finish = SCHED_FINISH_EOS;
    return;
  }
  sl->has_new = 1;
  if (sl->n_reply + 1 == r->n_generate) sl->finish = SCHED_FINISH_LENGTH;
  else if (lzn_context_n_past(sl->ctx) >= s->params.n_ctx) sl->finish = SCHED_FINISH_CONTEXT;
}

static void sample(const sched *s, slot *sl, const float *logits) {
  const lzn_status st = lzn_sampler_sample(sl->sampler, logits, &sl->token);
  if (st != LZN_OK) slot_fail(sl, "lzn_sampler_sample", st);
  else after_sample(s, sl);
}

/* ------------------------------------------------------------- admission */

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
  int n = 0;
  while (n < na && n < nb && a[n] == b[n]) n++;
  return n;
}

/* Under the lock: puts request r into a free slot, planning which cached
 * prefix it starts from. Returns 0 when no slot is free. */
static int admit(sched *s, sched_request *r) {
  const int n_slots = s->params.n_slots;
  /* At least the prompt's last token is run: its logits give the first token. */
  const int limit = r->n_prompt - 1;
  int best = -1, best_lcp = -1;
  for (int i = 0; i < n_slots; i++) {
    const slot *sl = &s->slots[i];
    if (sl->request) continue;
    const int lcp = s->params.reuse_prefix ? common_prefix(sl->cached, sl->n_cached, r->prompt, limit) : 0;
    if (lcp > best_lcp || (lcp == best_lcp && sl->last_used < s->slots[best].last_used))
      best = i, best_lcp = lcp;
  }
  if (best < 0) return 0;
  slot *sl = &s->slots[best];
  sl->reuse_from = -1, sl->reuse_n = best_lcp;
  /* A longer prefix elsewhere (a running sequence's too: positions below
   * its n_past never change) is copied in; slots admitted this step are
   * not sources, their caches are about to change. */
  for (int i = 0; s->params.reuse_prefix && i < n_slots; i++) {
    const slot *src = &s->slots[i];
    if (i == best || src->admitted) continue;
    const int lcp = common_prefix(src->cached, src->n_cached, r->prompt, limit);
    if (lcp > sl->reuse_n) sl->reuse_from = i, sl->reuse_n = lcp;
  }
  sl->request = r;
  r->slot = best;
  sl->phase = SLOT_PREFILL;
  sl->admitted = 1, sl->fresh = 0;
  sl->n_reply = 0, sl->has_new = 0;
  sl->finish = SCHED_FINISH_NONE, sl->status = SCHED_OK, sl->error[0] = '\0';
  sl->order = s->n_admitted++;
  s->stats.active_slots++;
  s->stats.prompt_tokens += r->n_prompt;
  return 1;
}

/* Without the lock: the admitted slot's cache made to hold the planned
 * prefix, and its sampler. */
static void set_up(sched *s, slot *sl) {
  const sched_request *r = sl->request;
  lzn_status st;
  const char *call;
  if (sl->reuse_from >= 0) {
    const slot *src = &s->slots[sl->reuse_from];
    call = "lzn_context_copy_prefix";
    st = lzn_context_copy_prefix(sl->ctx, src->ctx, sl->reuse_n);
    if (st == LZN_OK) memcpy(sl->cached, src->cached, (size_t)sl->reuse_n * sizeof *sl->cached);
  } else {
    call = "lzn_context_truncate";
    st = lzn_context_truncate(sl->ctx, sl->reuse_n);
  }
  sl->n_cached = st == LZN_OK ? sl->reuse_n : lzn_context_n_past(sl->ctx);
  sl->n_prefilled = sl->reuse_n;
  if (st == LZN_OK) call = "lzn_sampler_create", st = lzn_sampler_create(&r->sampling, s->vocab, &sl->sampler);
  if (st == LZN_OK) call = "lzn_sampler_accept";
  for (int i = 0; i < r->n_prompt && st == LZN_OK; i++) st = lzn_sampler_accept(sl->sampler, r->prompt[i]);
  if (st != LZN_OK) slot_fail(sl, call, st);
}

/* --------------------------------------------------------------- a step */

/* Prefill: at most prefill_chunk prompt tokens this step, first admitted
 * first; the time inside the library added to *seconds. */
static void prefill(sched *s, double *seconds) {
  int budget = s->params.prefill_chunk;
  while (budget > 0) {
    slot *next = NULL;
    for (int i = 0; i < s->params.n_slots; i++) {
      slot *sl = &s->slots[i];
      if (sl->request && sl->phase == SLOT_PREFILL && !slot_done(sl) && (!next || sl->order < next->order))
        next = sl;
    }
    if (!next) return;
    const sched_request *r = next->request;
    int n = r->n_prompt - next->n_prefilled;
    if (n > budget) n = budget;
    float *logits = s->logits + (size_t)(next - s->slots) * (size_t)s->vocab;
    const double t0 = sched_now();
    const lzn_status st = lzn_forward(next->ctx, r->prompt + next->n_prefilled, n, logits, LZN_LOGITS_LAST);
    *seconds += sched_now() - t0;
    budget -= n;
    if (st != LZN_OK) {
      slot_fail(next, "lzn_forward (prefill)", st);
      continue;
    }
    memcpy(next->cached + next->n_cached, r->prompt + next->n_prefilled, (size_t)n * sizeof(int32_t));
    next->n_cached += n, next->n_prefilled += n;
    if (next->n_prefilled == r->n_prompt) {
      next->phase = SLOT_DECODE, next->fresh = 1;
      sample(s, next, logits);
    }
  }
}

/* One step, without the lock: set up the admitted slots, prefill, then one
 * batch over every other running sequence. */
static void step(sched *s) {
  const int n_slots = s->params.n_slots;
  for (int i = 0; i < n_slots; i++)
    if (s->slots[i].admitted && !slot_done(&s->slots[i])) set_up(s, &s->slots[i]);
  double prefill_seconds = 0.0;
  prefill(s, &prefill_seconds);
  int n = 0;
  for (int i = 0; i < n_slots; i++) {
    slot *sl = &s->slots[i];
    if (!sl->request || sl->phase != SLOT_DECODE || sl->fresh || slot_done(sl)) continue;
    s->batch_ctxs[n] = sl->ctx, s->batch_tokens[n] = sl->token, s->batch_slot[n] = i, n++;
  }
  double decode = 0.0;
  if (n > 0) {
    const double t0 = sched_now();
    const lzn_status st = lzn_forward_batch(s->batch_ctxs, s->batch_tokens, n, s->logits);
    decode = sched_now() - t0;
    for (int k = 0; k < n; k++) {
      slot *sl = &s->slots[s->batch_slot[k]];
      if (st != LZN_OK) {
        slot_fail(sl, "lzn_forward_batch", st); /* no context advanced */
        continue;
      }
      sl->cached[sl->n_cached++] = s->batch_tokens[k];
      sample(s, sl, s->logits + (size_t)k * s->vocab);
    }
  }
  pthread_mutex_lock(&s->lock);
  s->stats.batch_steps += n > 0;
  s->stats.batch_tokens += n;
  s->stats.decode_seconds += decode;
  s->stats.prefill_seconds += prefill_seconds;
  pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------ publishing */

static int append_text(sched_request *r, const char *bytes, size_t n) {
  if (r->text_len + n + 1 > r->text_cap) {
    size_t cap = r->text_cap ? r->text_cap * 2 : 256;
    while (cap < r->text_len + n + 1) cap *= 2;
    char *grown = realloc(r->text, cap);
    if (!grown) return 0;
    r->text = grown, r->text_cap = cap;
  }
  memcpy(r->text + r->text_len, bytes, n);
  r->text_len += n;
  r->text[r->text_len] = '\0';
  return 1;
}

/* Under the lock: the new token's piece into the request's text, a stop
 * string looked for, and how much of the text is final. */
static void publish_token(sched *s, slot *sl) {
  sched_request *r = sl->request;
  r->reply[r->n_reply++] = sl->token;
  sl->n_reply++, sl->has_new = 0;
  s->stats.tokens_generated++;
  if (r->n_reply == 1) {
    r->t_first_token = sched_now();
    s->stats.ttft_sum += r->t_first_token - r->t_submitted, s->stats.ttft_count++;
  }
  if (!s->params.tokenizer) return;
  char piece[256];
  size_t len = 0;
  /* An id the model has but the tokenizer lacks (padding rows): no text. */
  if (lzn_token_to_piece(s->params.tokenizer, sl->token, piece, sizeof piece, &len) != LZN_OK) len = 0;
  const size_t before = r->text_len;
  if (!append_text(r, piece, len)) {
    sl->status = SCHED_ERR_LIBRARY;
    snprintf(sl->error, sizeof sl->error, "out of memory for the reply's text");
    return;
  }
  size_t at;
  if (r->n_stop > 0 && stop_find(r->text, r->text_len, before, r->stop, r->n_stop, &at)) {
    r->text_len = at, r->text[at] = '\0';
    if (sl->finish == SCHED_FINISH_NONE || sl->finish == SCHED_FINISH_LENGTH ||
        sl->finish == SCHED_FINISH_CONTEXT)
      sl->finish = SCHED_FINISH_STOP;
  }
  size_t hold = utf8_incomplete_tail(r->text, r->text_len);
  const size_t partial = stop_partial_tail(r->text, r->text_len, r->stop, r->n_stop);
  if (partial > hold) hold = partial;
  r->text_ready = r->text_len - hold;
}

/* Under the lock: hand this step's tokens to the clients, answer the
 * requests that ended and free their slots. */
static void publish(sched *s) {
  const double now = sched_now();
  for (int i = 0; i < s->params.n_slots; i++) {
    slot *sl = &s->slots[i];
    sched_request *r = sl->request;
    sl->admitted = 0, sl->fresh = 0;
    if (!r) continue;
    if (sl->has_new && sl->status == SCHED_OK) publish_token(s, sl);
    if (!slot_done(sl)) continue;
    r->finish = sl->status == SCHED_OK ? sl->finish : SCHED_FINISH_NONE;
    r->status = sl->status;
    memcpy(r->error, sl->error, sizeof r->error);
    r->n_reused = sl->reuse_n;
    r->text_ready = r->text_len;
    r->t_finished = now;
    r->finished = 1;
    sl->request = NULL, sl->phase = SLOT_IDLE;
    sl->last_used = ++s->clock;
    lzn_sampler_free(sl->sampler);
    sl->sampler = NULL;
    s->stats.active_slots--;
    s->stats.requests_done++;
    s->stats.requests_failed += r->status != SCHED_OK;
    s->stats.prompt_tokens_reused += sl->reuse_n;
  }
  if (now - s->rate_t0 >= 1.0 || (s->stats.active_slots == 0 && !s->queue_head)) {
    const double dt = now - s->rate_t0;
    s->stats.tokens_per_second = dt > 0 ? (double)(s->stats.tokens_generated - s->rate_tokens0) / dt : 0;
    s->rate_t0 = now, s->rate_tokens0 = s->stats.tokens_generated;
  }
  if (s->stats.active_slots == 0 && !s->queue_head) s->stats.tokens_per_second = 0;
  s->n_published++;
  pthread_cond_signal(&s->published); /* the waker broadcasts on progress */
}

/* Without the lock, twice a second at most: the MLP statistics over every
 * slot (each context counts the batches it led). */
static void snapshot_mlp(sched *s) {
  if (!s->params.collect_stats || sched_now() - s->last_snapshot < 0.5) return;
  s->last_snapshot = sched_now();
  double tokens = 0, active = 0, dense = 0, executed = 0;
  for (int i = 0; i < s->params.n_slots; i++) {
    s->layer_stats[0].struct_size = sizeof *s->layer_stats;
    if (lzn_context_stats(s->slots[i].ctx, s->layer_stats, s->n_layers) != LZN_OK) continue;
    for (int l = 0; l < s->n_layers; l++) {
      const lzn_layer_stats *ls = &s->layer_stats[l];
      tokens += (double)ls->tokens, active += ls->active_fraction * (double)ls->tokens;
      dense += ls->bytes_dense, executed += ls->bytes_executed;
    }
  }
  pthread_mutex_lock(&s->lock);
  s->stats.mlp_active_fraction = tokens > 0 ? active / tokens : 0;
  s->stats.mlp_bytes_dense = dense;
  s->stats.mlp_bytes_saved = dense - executed;
  pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------ slot tasks */

static void run_save(sched *s, slot_task *t) {
  const slot *sl = &s->slots[t->slot];
  if (!slot_file_save(t->path, sl->ctx, sl->cached, sl->n_cached, &t->n_bytes, t->error))
    t->status = SCHED_ERR_LIBRARY;
  else
    t->n_tokens = sl->n_cached;
}

static void run_restore(sched *s, slot_task *t) {
  slot *sl = &s->slots[t->slot];
  int n = 0;
  if (!slot_file_load(t->path, sl->ctx, sl->cached, s->params.n_ctx, s->vocab, &n, &t->n_bytes, t->error)) {
    t->status = SCHED_ERR_LIBRARY;
    sl->n_cached = lzn_context_n_past(sl->ctx); /* unchanged, or emptied by a bad file */
    return;
  }
  sl->n_cached = t->n_tokens = n;
}

static void run_tasks(sched *s, slot_task *tasks) {
  for (slot_task *t = tasks; t; t = t->next) {
    if (t->status != SCHED_OK) continue; /* refused under the lock: busy */
    if (t->restore) run_restore(s, t);
    else run_save(s, t);
  }
}

/* ------------------------------------------------------------ the thread */

/* Under the lock: requests the decode thread drops before this step. */
static void drop_cancelled(sched *s) {
  for (int i = 0; i < s->params.n_slots; i++) {
    slot *sl = &s->slots[i];
    if (!sl->request || slot_done(sl)) continue;
    if (s->cancel_all) sl->status = SCHED_ERR_SHUTDOWN;
    else if (sl->request->cancel) sl->status = SCHED_ERR_CANCELLED;
    if (sl->status != SCHED_OK) {
      snprintf(sl->error, sizeof sl->error, "%s", sl->status == SCHED_ERR_SHUTDOWN
               ? "the server is shutting down" : "cancelled by the client");
      sl->has_new = 0;
    }
  }
  while (s->cancel_all && s->queue_head) {
    sched_request *r = s->queue_head;
    s->queue_head = r->next;
    r->status = SCHED_ERR_SHUTDOWN, r->finished = 1, r->t_finished = sched_now();
    snprintf(r->error, sizeof r->error, "the server is shutting down");
    s->stats.waiting--, s->stats.requests_done++, s->stats.requests_failed++;
  }
  if (!s->queue_head) s->queue_tail = NULL;
}

static void *decode_loop(void *arg) {
  sched *s = arg;
  pthread_mutex_lock(&s->lock);
  for (;;) {
    while (!s->queue_head && s->stats.active_slots == 0 && !s->tasks && !s->shutting_down)
      pthread_cond_wait(&s->work, &s->lock);
    drop_cancelled(s);
    if (s->shutting_down && !s->queue_head && s->stats.active_slots == 0 && !s->tasks) break;
    slot_task *tasks = s->tasks;
    s->tasks = NULL;
    for (slot_task *t = tasks; t; t = t->next)
      if (s->slots[t->slot].request) {
        t->status = SCHED_ERR_INVALID;
        snprintf(t->error, 256, "slot %d is processing a request", t->slot);
      }
    while (s->queue_head && admit(s, s->queue_head)) {
      s->queue_head = s->queue_head->next;
      s->stats.waiting--;
    }
    if (!s->queue_head) s->queue_tail = NULL;
    pthread_mutex_unlock(&s->lock);
    run_tasks(s, tasks);
    step(s);
    snapshot_mlp(s);
    pthread_mutex_lock(&s->lock);
    for (slot_task *t = tasks; t; t = t->next) t->done = 1;
    publish(s);
  }
  pthread_cond_broadcast(&s->progress);
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

/* The waker: broadcasts on progress once for every step published (or once
 * for several, if steps come faster than it wakes the clients). */
#define WAKER_AWAKE_S 100e-6
static void *waker_loop(void *arg) {
  sched *s = arg;
  pthread_mutex_lock(&s->lock);
  while (!s->waker_stop) {
    if (s->n_announced == s->n_published) {
      /* Awake for a while first, giving the core away to whoever needs it:
       * signalling a waker that sleeps costs the decode thread a system
       * call per step (glibc skips it when nobody waits), 20 us of a tiny
       * model's 45 us step on the VM of bench/RESULTS.md. */
      pthread_mutex_unlock(&s->lock);
      const double until = sched_now() + WAKER_AWAKE_S;
      while (atomic_load_explicit(&s->n_published, memory_order_relaxed) == s->n_announced && sched_now() < until)
        sched_yield();
      pthread_mutex_lock(&s->lock);
      if (s->n_announced == s->n_published && !s->waker_stop) pthread_cond_wait(&s->published, &s->lock);
      continue;
    }
    s->n_announced = s->n_published;
    pthread_mutex_unlock(&s->lock);
    pthread_cond_broadcast(&s->progress);
    pthread_mutex_lock(&s->lock);
  }
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

/* ------------------------------------------------------------ public side */

static void free_slots(sched *s) {
  for (int i = 0; s->slots && i < s->params.n_slots; i++) {
    lzn_context_free(s->slots[i].ctx);
    lzn_sampler_free(s->slots[i].sampler);
    free(s->slots[i].cached);
  }
  free(s->slots), free(s->logits), free(s->batch_ctxs), free(s->batch_tokens);
  free(s->batch_slot), free(s->layer_stats);
}

sched_status sched_create(const lzn_model *model, const sched_params *params, sched **out,
                          char error[256]) {
  char scratch[256];
  if (!error) error = scratch;
  error[0] = '\0';
  if (!out) return SCHED_ERR_INVALID;
  *out = NULL;
  if (!model || !params || params->n_slots < 1 || params->n_ctx < 0 || params->n_threads < 1 ||
      params->prefill_chunk < 1) {
    snprintf(error, 256, "sched_create: NULL model or params, n_slots < 1, n_ctx < 0, "
             "n_threads < 1 or prefill_chunk < 1");
    return SCHED_ERR_INVALID;
  }
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_status st = lzn_model_get_info(model, &info);
  if (st != LZN_OK) return library_error(error, "lzn_model_get_info", st), SCHED_ERR_LIBRARY;

  sched *s = calloc(1, sizeof *s);
  if (!s) return snprintf(error, 256, "sched_create: out of memory"), SCHED_ERR_LIBRARY;
  s->model = model;
  s->params = *params;
  if (s->params.n_ctx == 0) s->params.n_ctx = info.max_positions;
  s->vocab = info.vocab_size, s->n_layers = info.n_layers;
  const size_t n = (size_t)params->n_slots;
  s->slots = calloc(n, sizeof *s->slots);
  s->logits = malloc(n * (size_t)s->vocab * sizeof(float));
  s->batch_ctxs = malloc(n * sizeof *s->batch_ctxs);
  s->batch_tokens = malloc(n * sizeof *s->batch_tokens);
  s->batch_slot = malloc(n * sizeof *s->batch_slot);
  s->layer_stats = calloc((size_t)info.n_layers, sizeof *s->layer_stats);
  int failed = !s->slots || !s->logits || !s->batch_ctxs || !s->batch_tokens || !s->batch_slot ||
               !s->layer_stats;
  for (size_t i = 0; !failed && i < n; i++)
    failed = !(s->slots[i].cached = malloc((size_t)s->params.n_ctx * sizeof(int32_t)));
  if (failed) {
    free_slots(s), free(s);
    return snprintf(error, 256, "sched_create: out of memory"), SCHED_ERR_LIBRARY;
  }
  lzn_context_params cp = lzn_context_default_params();
  cp.n_ctx = s->params.n_ctx;
  cp.n_threads = s->params.n_threads;
  cp.mlp_mode = s->params.mlp_mode;
  cp.kv_type = s->params.kv_type;
  cp.use_predictor = s->params.use_predictor;
  cp.collect_stats = s->params.collect_stats;
  for (size_t i = 0; i < n && st == LZN_OK; i++) st = lzn_context_create(model, &cp, &s->slots[i].ctx);
  if (st != LZN_OK) {
    library_error(error, "lzn_context_create", st);
    free_slots(s), free(s);
    return SCHED_ERR_LIBRARY;
  }
  s->stats.n_slots = params->n_slots;
  s->rate_t0 = sched_now();
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->work, NULL);
  pthread_cond_init(&s->progress, NULL);
  pthread_cond_init(&s->published, NULL);
  if (pthread_create(&s->waker, NULL, waker_loop, s) != 0) {
    snprintf(error, 256, "sched_create: pthread_create failed");
    pthread_mutex_destroy(&s->lock), pthread_cond_destroy(&s->work), pthread_cond_destroy(&s->progress);
    pthread_cond_destroy(&s->published);
    free_slots(s), free(s);
    return SCHED_ERR_LIBRARY;
  }
  s->waker_running = 1;
  if (pthread_create(&s->thread, NULL, decode_loop, s) != 0) {
    snprintf(error, 256, "sched_create: pthread_create failed");
    sched_free(s);
    return SCHED_ERR_LIBRARY;
  }
  s->thread_running = 1;
  *out = s;
  return SCHED_OK;
}

/* Under the lock: would one more request wait beyond queue_max? (Requests
 * not yet admitted into a free slot do not count as waiting.) */
static int queue_full(const sched *s) {
  return s->params.queue_max >= 0 &&
         s->stats.active_slots + s->stats.waiting >= s->params.n_slots + s->params.queue_max;
}

sched_status sched_submit(sched *s, sched_request *r) {
  if (!s || !r || !r->prompt || r->n_prompt < 1 || r->n_generate < 1 || !r->reply || r->n_stop < 0 ||
      r->n_stop > SCHED_MAX_STOP)
    return SCHED_ERR_INVALID;
  for (int i = 0; i < r->n_prompt; i++)
    if (r->prompt[i] < 0 || r->prompt[i] >= s->vocab) return SCHED_ERR_INVALID;
  for (int i = 0; i < r->n_stop; i++)
    if (!r->stop[i] || !r->stop[i][0]) return SCHED_ERR_INVALID;
  if (r->n_prompt > s->params.n_ctx) return SCHED_ERR_TOO_LONG;
  r->n_reply = 0, r->finished = 0, r->finish = SCHED_FINISH_NONE, r->cancel = 0;
  r->status = SCHED_OK, r->error[0] = '\0', r->next = NULL, r->n_reused = 0, r->slot = -1;
  r->text = NULL, r->text_len = r->text_ready = r->text_cap = 0;
  r->t_submitted = sched_now(), r->t_first_token = r->t_finished = 0;
  pthread_mutex_lock(&s->lock);
  sched_status st = SCHED_OK;
  if (s->shutting_down) st = SCHED_ERR_SHUTDOWN;
  else if (queue_full(s)) {
    st = SCHED_ERR_QUEUE_FULL;
    s->stats.requests_rejected++;
  } else {
    if (s->queue_tail) s->queue_tail->next = r;
    else s->queue_head = r;
    s->queue_tail = r;
    s->stats.waiting++;
    pthread_cond_signal(&s->work);
  }
  pthread_mutex_unlock(&s->lock);
  return st;
}

static void deadline_in(struct timespec *ts, double seconds) {
  clock_gettime(CLOCK_REALTIME, ts);
  const double whole = (double)(time_t)seconds;
  ts->tv_sec += (time_t)seconds;
  ts->tv_nsec += (long)((seconds - whole) * 1e9);
  if (ts->tv_nsec >= 1000000000L) ts->tv_sec++, ts->tv_nsec -= 1000000000L;
}

sched_status sched_wait(sched *s, sched_request *r, int n_seen, int *n_reply, int *finished,
                        double timeout_s) {
  if (!s || !r || !n_reply || !finished) return SCHED_ERR_INVALID;
  struct timespec deadline;
  if (timeout_s >= 0) deadline_in(&deadline, timeout_s);
  pthread_mutex_lock(&s->lock);
  while (!r->finished && r->n_reply <= n_seen) {
    if (timeout_s < 0) pthread_cond_wait(&s->progress, &s->lock);
    else if (pthread_cond_timedwait(&s->progress, &s->lock, &deadline) == ETIMEDOUT) break;
  }
  *n_reply = r->n_reply;
  *finished = r->finished;
  const sched_status status = r->status;
  pthread_mutex_unlock(&s->lock);
  return status;
}

void sched_cancel(sched *s, sched_request *r) {
  if (!s || !r) return;
  pthread_mutex_lock(&s->lock);
  if (!r->finished) {
    /* Still queued: answered here. Running: dropped at the next step. */
    sched_request **p = &s->queue_head, *prev = NULL;
    while (*p && *p != r) prev = *p, p = &(*p)->next;
    if (*p) {
      *p = r->next;
      if (s->queue_tail == r) s->queue_tail = prev;
      r->status = SCHED_ERR_CANCELLED, r->finished = 1, r->t_finished = sched_now();
      s->stats.waiting--, s->stats.requests_done++, s->stats.requests_failed++;
      pthread_cond_broadcast(&s->progress);
    } else {
      r->cancel = 1;
      pthread_cond_signal(&s->work);
    }
  }
  pthread_mutex_unlock(&s->lock);
}

void sched_request_release(sched_request *r) {
  if (!r) return;
  free(r->text);
  r->text = NULL, r->text_len = r->text_ready = r->text_cap = 0;
}

char *sched_take_text(sched *s, sched_request *r, size_t from, size_t *len, int *finished,
                      int *n_reply) {
  pthread_mutex_lock(&s->lock);
  const size_t end = r->finished ? r->text_len : r->text_ready;
  *finished = r->finished;
  *n_reply = r->n_reply;
  char *copy = NULL;
  *len = 0;
  if (end > from && (copy = malloc(end - from + 1)) != NULL) {
    memcpy(copy, r->text + from, end - from);
    copy[end - from] = '\0';
    *len = end - from;
  }
  pthread_mutex_unlock(&s->lock);
  return copy;
}

void sched_shutdown(sched *s, double drain_s) {
  if (!s) return;
  struct timespec deadline;
  if (drain_s >= 0) deadline_in(&deadline, drain_s);
  pthread_mutex_lock(&s->lock);
  s->shutting_down = 1;
  pthread_cond_signal(&s->work);
  while (s->thread_running && (s->queue_head || s->stats.active_slots > 0) && !s->cancel_all) {
    if (drain_s < 0) pthread_cond_wait(&s->progress, &s->lock);
    else if (pthread_cond_timedwait(&s->progress, &s->lock, &deadline) == ETIMEDOUT) break;
  }
  s->cancel_all = 1; /* what is left now is cancelled at the next step */
  pthread_cond_signal(&s->work);
  const int join = s->thread_running;
  s->thread_running = 0;
  pthread_mutex_unlock(&s->lock);
  if (join) pthread_join(s->thread, NULL);
  /* The decode thread's last broadcast was its own: the waker can go. */
  pthread_mutex_lock(&s->lock);
  s->waker_stop = 1;
  pthread_cond_signal(&s->published);
  const int join_waker = s->waker_running;
  s->waker_running = 0;
  pthread_mutex_unlock(&s->lock);
  if (join_waker) pthread_join(s->waker, NULL);
}

static sched_status slot_task_run(sched *s, int slot_id, int restore, const char *path, int *n_tokens,
                                  size_t *n_bytes, char error[256]) {
  char scratch[256];
  if (!error) error = scratch;
  error[0] = '\0';
  if (!s || !path || slot_id < 0 || slot_id >= s->params.n_slots) {
    snprintf(error, 256, "no slot %d: the slots are 0 to %d", slot_id, s ? s->params.n_slots - 1 : -1);
    return SCHED_ERR_INVALID;
  }
  slot_task t = {slot_id, restore, path, 0, 0, SCHED_OK, error, 0, NULL};
  pthread_mutex_lock(&s->lock);
  if (s->shutting_down) {
    pthread_mutex_unlock(&s->lock);
    snprintf(error, 256, "the server is shutting down");
    return SCHED_ERR_SHUTDOWN;
  }
  t.next = s->tasks, s->tasks = &t;
  pthread_cond_signal(&s->work);
  while (!t.done) pthread_cond_wait(&s->progress, &s->lock);
  pthread_mutex_unlock(&s->lock);
  if (n_tokens) *n_tokens = t.n_tokens;
  if (n_bytes) *n_bytes = t.n_bytes;
  return t.status;
}

sched_status sched_slot_save(sched *s, int slot_id, const char *path, int *n_tokens, size_t *n_bytes,
                             char error[256]) {
  return slot_task_run(s, slot_id, 0, path, n_tokens, n_bytes, error);
}

sched_status sched_slot_restore(sched *s, int slot_id, const char *path, int *n_tokens,
                                size_t *n_bytes, char error[256]) {
  return slot_task_run(s, slot_id, 1, path, n_tokens, n_bytes, error);
}

int sched_full(sched *s) {
  pthread_mutex_lock(&s->lock);
  const int full = s->shutting_down || queue_full(s);
  pthread_mutex_unlock(&s->lock);
  return full;
}

sched_stats sched_get_stats(sched *s) {
  sched_stats st;
  pthread_mutex_lock(&s->lock);
  st = s->stats;
  pthread_mutex_unlock(&s->lock);
  return st;
}

void sched_free(sched *s) {
  if (!s) return;
  sched_shutdown(s, -1);
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->work);
  pthread_cond_destroy(&s->progress);
  pthread_cond_destroy(&s->published);
  free_slots(s);
  free(s);
}
