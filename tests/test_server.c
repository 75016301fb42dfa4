/*
 * test_server.c: lzn-server's scheduler (cli/server/scheduler.c) without
 * the HTTP around it: client threads send a few hundred requests of random
 * lengths to one scheduler that batches them (lzn_forward_batch) on
 * models/tiny-opt; every reply must be what the same request gives alone,
 * every request answered once, every slot free at the end. Then prefix
 * reuse, chunked prefill, stop strings, cancellation, the bounded queue,
 * slot save/restore, and bad input. Run under ASan and TSan by
 * `make asan` / `make tsan`. The HTTP server is tested over a socket by
 * tests/server/test_http.py.
 *
 * The scheduler is the server's code, not the library's, so it is compiled
 * into this test by #include (as into examples/server.c); a dependency line
 * in the Makefile rebuilds both when it changes.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lazyneuron.h"
#include "testutil.h"

#include "../cli/common/reply_text.c"
#include "../cli/server/slot_file.c"
#include "../cli/server/scheduler.c"

#define MODEL_PATH "models/tiny-opt"
#define N_CLIENTS 8
#define MAX_PROMPT 40
#define MAX_GENERATE 40
/* Small enough that a long prompt plus a long reply fills it, so the
 * "context full" ending is exercised too. */
#define N_CTX 64
#define N_SLOTS 5

/* Sanitizer builds run 5-20x slower; they check races and memory, which a
 * smaller soak still covers. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define N_REQUESTS 48
#else
#define N_REQUESTS 256
#endif

/* Greedy decoding (temperature 0), so a reply is a function of the logits'
 * argmax and can be compared token for token. A batched step equals the
 * same step alone only within fp32 rounding (the MLP sums over the batch's
 * union of rows in another order: test_batch.c bounds it at 1e-5 relative;
 * on tiny-opt, whose logits stay below ~15, that is at most ~2e-4), so an
 * argmax may flip where the two best logits are that close. A reply may
 * therefore leave the reference only at a step where the reference's best
 * logit and the served token's logit differ by less than TIE_GAP (5x that
 * bound); after such a step the two sequences are different texts and are
 * compared no further. MAX_TIES bounds how often this may happen, so a
 * systematic error cannot hide behind it. */
#define TIE_GAP 1e-3f
#define MAX_TIES (N_REQUESTS / 20)

static lzn_model *load_tiny_opt(void) {
  lzn_model *model = NULL;
  const lzn_status st = lzn_model_load(MODEL_PATH, NULL, &model);
  ck_assert_msg(st == LZN_OK, "%s: %s", MODEL_PATH, lzn_last_error());
  return model;
}

static sched *start(lzn_model *model, const sched_params *p) {
  sched *srv = NULL;
  char error[256];
  ck_assert_msg(sched_create(model, p, &srv, error) == SCHED_OK, "%s", error);
  return srv;
}

/* The soak runs twice, in AUTO: without the predictor (sparse or dense per
 * call, both exact), and with tiny-opt's (the server's default), where
 * AUTO may take the dense path for a batch and must still apply the
 * predictor per token, as the request alone does. */
/* Variant 2 of the soak prefills 5 prompt tokens per step, so prompts are
 * prefilled in chunks between the batches of running sequences. */
static sched_params test_params(int variant) {
  const int with_predictor = variant > 0;
  sched_params p = sched_default_params();
  p.n_slots = N_SLOTS;
  p.n_ctx = N_CTX;
  p.n_threads = 1;               /* several contexts from one thread: no OpenMP team to wait on */
  p.mlp_mode = LZN_MLP_AUTO;
  p.use_predictor = with_predictor;
  p.kv_type = LZN_KV_F32;
  p.eos_id = 2;                  /* tiny-opt's tokenizer's eos_id */
  if (variant == 2) p.prefill_chunk = 5;
  return p;
}

typedef struct soak_request {
  int32_t prompt[MAX_PROMPT];
  int32_t reply[MAX_GENERATE];
  sched_request request;
  int answered;          /* times a client saw it finished */
  int stream_ok;         /* the streamed counts only grew, and never past n_generate */
  sched_status status;
} soak_request;

typedef struct soak {
  sched *srv;
  soak_request *requests;
} soak;

typedef struct soak_client {
  soak *s;
  int id;
} soak_client;

/* Client c sends requests c, c + N_CLIENTS, ... one at a time, reading each
 * as a stream. */
static void *soak_client_run(void *arg) {
  soak_client *c = arg;
  for (int i = c->id; i < N_REQUESTS; i += N_CLIENTS) {
    soak_request *q = &c->s->requests[i];
    q->status = sched_submit(c->s->srv, &q->request);
    q->stream_ok = 1;
    int n_seen = 0, finished = 0;
    while (q->status == SCHED_OK && !finished) {
      int n_now = 0;
      q->status = sched_wait(c->s->srv, &q->request, n_seen, &n_now, &finished, -1);
      if (n_now < n_seen || n_now > q->request.n_generate || (!finished && n_now == n_seen))
        q->stream_ok = 0;
      n_seen = n_now;
    }
    if (finished) q->answered++;
  }
  return NULL;
}

/* The same request alone: one context, the prompt prefilled, then
 * lzn_forward token by token, greedy; gap[t] is the reference's best logit
 * minus logits[served token t], for the tie rule above. Returns the reply
 * length and its ending. */
static int run_alone(lzn_context *ctx, const sched_params *p, const soak_request *q,
                     int32_t *reply, float *gap, sched_finish *finish) {
  const sched_request *r = &q->request;
  float logits[256];
  ck_assert_int_eq(lzn_context_reset(ctx), LZN_OK);
  ck_assert_int_eq(lzn_forward(ctx, r->prompt, r->n_prompt, logits, LZN_LOGITS_LAST), LZN_OK);
  int n = 0;
  for (;;) {
    int32_t best = 0;
    for (int v = 1; v < 256; v++)
      if (logits[v] > logits[best]) best = v;
    /* The served token here: a reply token, or the EOS that ended it. */
    const int32_t served = n < r->n_reply ? q->reply[n]
                           : n == r->n_reply && r->finish == SCHED_FINISH_EOS ? p->eos_id : -1;
    gap[n] = served >= 0 ? logits[best] - logits[served] : INFINITY;
    if (best == p->eos_id) return *finish = SCHED_FINISH_EOS, n;
    reply[n++] = best;
    if (n == r->n_generate) return *finish = SCHED_FINISH_LENGTH, n;
    if (lzn_context_n_past(ctx) >= p->n_ctx) return *finish = SCHED_FINISH_CONTEXT, n;
    ck_assert_int_eq(lzn_forward(ctx, &best, 1, logits, LZN_LOGITS_LAST), LZN_OK);
  }
}

START_TEST(soak_every_reply_equals_the_request_alone) {
  lzn_model *model = load_tiny_opt();
  const sched_params p = test_params(_i);
  soak s = {NULL, calloc(N_REQUESTS, sizeof(soak_request))};
  ck_assert_ptr_nonnull(s.requests);
  test_rng rng = {20261201};
  for (int i = 0; i < N_REQUESTS; i++) {
    soak_request *q = &s.requests[i];
    sched_request *r = &q->request;
    r->n_prompt = 1 + (int)rng_below(&rng, MAX_PROMPT);
    for (int t = 0; t < r->n_prompt; t++) q->prompt[t] = 32 + (int32_t)rng_below(&rng, 95); /* printable bytes */
    r->prompt = q->prompt;
    r->n_generate = 1 + (int)rng_below(&rng, MAX_GENERATE);
    r->reply = q->reply;
    r->sampling = lzn_sampler_default_params();
    r->sampling.temperature = 0.0f;
    r->sampling.seed = (uint64_t)i;
  }
  char error[256];
  ck_assert_msg(sched_create(model, &p, &s.srv, error) == SCHED_OK, "%s", error);
  soak_client clients[N_CLIENTS];
  pthread_t threads[N_CLIENTS];
  for (int c = 0; c < N_CLIENTS; c++) {
    clients[c] = (soak_client){&s, c};
    ck_assert_int_eq(pthread_create(&threads[c], NULL, soak_client_run, &clients[c]), 0);
  }
  for (int c = 0; c < N_CLIENTS; c++) pthread_join(threads[c], NULL);

  const sched_stats stats = sched_get_stats(s.srv);
  int64_t n_tokens = 0;
  for (int i = 0; i < N_REQUESTS; i++) {
    const soak_request *q = &s.requests[i];
    ck_assert_msg(q->status == SCHED_OK, "request %d: %s %s", i, sched_status_str(q->status),
                  q->request.error);
    ck_assert_msg(q->answered == 1, "request %d answered %d times", i, q->answered);
    ck_assert_msg(q->stream_ok, "request %d: its token count went backwards or past n_generate", i);
    n_tokens += q->request.n_reply;
  }
  ck_assert_int_eq(stats.requests_done, N_REQUESTS);
  ck_assert_int_eq(stats.tokens_generated, n_tokens);
  ck_assert_int_eq(stats.active_slots, 0); /* every slot freed */
  ck_assert_int_eq(stats.waiting, 0);
  ck_assert_msg(stats.batch_steps > 0 && stats.batch_tokens > stats.batch_steps,
                "the soak never batched two sequences (%lld tokens in %lld steps)",
                (long long)stats.batch_tokens, (long long)stats.batch_steps);
  sched_shutdown(s.srv, -1);
  sched_request late = s.requests[0].request;
  ck_assert_int_eq(sched_submit(s.srv, &late), SCHED_ERR_SHUTDOWN);
  sched_free(s.srv);

  lzn_context_params cp = lzn_context_default_params();
  cp.n_ctx = p.n_ctx, cp.n_threads = 1, cp.mlp_mode = p.mlp_mode, cp.kv_type = p.kv_type;
  cp.use_predictor = p.use_predictor;
  lzn_context *ctx = NULL;
  ck_assert_int_eq(lzn_context_create(model, &cp, &ctx), LZN_OK);
  int n_ties = 0, endings[4] = {0};
  for (int i = 0; i < N_REQUESTS; i++) {
    const soak_request *q = &s.requests[i];
    int32_t reply[MAX_GENERATE];
    float gap[MAX_GENERATE + 1];
    sched_finish finish;
    const int n = run_alone(ctx, &p, q, reply, gap, &finish);
    int t = 0;
    while (t < n && t < q->request.n_reply && reply[t] == q->reply[t]) t++;
    if (t == n && t == q->request.n_reply) {
      ck_assert_msg(finish == q->request.finish, "request %d: ended %d, alone %d", i,
                    (int)q->request.finish, (int)finish);
      endings[finish]++;
      continue;
    }
    /* They part at token t: only a near-tie of the reference allows it
     * (the served sequence may also have ended there with EOS). */
    ck_assert_msg(gap[t] < TIE_GAP,
                  "variant %d: request %d (prompt %d, generate %d): reply leaves the request alone at token %d "
                  "of %d/%d (not a near-tie)", _i, i, q->request.n_prompt, q->request.n_generate, t,
                  q->request.n_reply, n);
    n_ties++;
  }
  ck_assert_msg(n_ties <= MAX_TIES, "%d replies parted at a near-tie (at most %d expected)", n_ties, MAX_TIES);
  /* The soak reached every ending, or it tested less than it claims. */
  ck_assert_msg(endings[SCHED_FINISH_LENGTH] > 0 && endings[SCHED_FINISH_CONTEXT] > 0,
                "endings: length %d, eos %d, context full %d", endings[1], endings[2], endings[3]);
  lzn_context_free(ctx);
  free(s.requests);
  lzn_model_free(model);
}
END_TEST

/* Submits a request and waits for its end; returns its final status. */
static sched_status submit_and_wait(sched *srv, sched_request *r) {
  sched_status st = sched_submit(srv, r);
  int n = 0, finished = 0;
  while (st == SCHED_OK && !finished) st = sched_wait(srv, r, n, &n, &finished, -1);
  return st;
}

START_TEST(bad_input_has_a_specific_status) {
  lzn_model *model = load_tiny_opt();
  sched_params p = test_params(0);
  sched *srv = NULL;
  char error[256];

  p.n_slots = 0;
  ck_assert_int_eq(sched_create(model, &p, &srv, error), SCHED_ERR_INVALID);
  ck_assert_ptr_null(srv);
  p.n_slots = 2;
  ck_assert_int_eq(sched_create(NULL, &p, &srv, error), SCHED_ERR_INVALID);
  p.n_ctx = 100000; /* beyond tiny-opt's 256 positions: the library says so */
  ck_assert_int_eq(sched_create(model, &p, &srv, error), SCHED_ERR_LIBRARY);
  ck_assert_msg(strstr(error, "lzn_context_create") != NULL, "%s", error);
  p.n_ctx = N_CTX;
  ck_assert_int_eq(sched_create(model, &p, &srv, error), SCHED_OK);

  int32_t prompt[N_CTX + 1], reply[4];
  for (int i = 0; i <= N_CTX; i++) prompt[i] = 'a' + i % 26;
  sched_request r = {0};
  r.prompt = prompt, r.n_prompt = 3, r.n_generate = 4, r.reply = reply;
  r.sampling = lzn_sampler_default_params();
  r.sampling.temperature = 0.0f;

  sched_request bad = r;
  bad.n_prompt = 0;
  ck_assert_int_eq(sched_submit(srv, &bad), SCHED_ERR_INVALID);
  bad = r, bad.prompt = NULL;
  ck_assert_int_eq(sched_submit(srv, &bad), SCHED_ERR_INVALID);
  bad = r, bad.n_generate = 0;
  ck_assert_int_eq(sched_submit(srv, &bad), SCHED_ERR_INVALID);
  bad = r, bad.reply = NULL;
  ck_assert_int_eq(sched_submit(srv, &bad), SCHED_ERR_INVALID);
  int32_t out_of_vocab[2] = {'a', 256};
  bad = r, bad.prompt = out_of_vocab, bad.n_prompt = 2;
  ck_assert_int_eq(sched_submit(srv, &bad), SCHED_ERR_INVALID);
  bad = r, bad.n_prompt = N_CTX + 1;
  ck_assert_int_eq(sched_submit(srv, &bad), SCHED_ERR_TOO_LONG);
  ck_assert_int_eq(sched_submit(NULL, &r), SCHED_ERR_INVALID);
  ck_assert_int_eq(sched_submit(srv, NULL), SCHED_ERR_INVALID);

  /* A prompt that fills the context exactly: one token, from its last position. */
  sched_request full = r;
  full.n_prompt = N_CTX;
  ck_assert_int_eq(submit_and_wait(srv, &full), SCHED_OK);
  ck_assert_int_eq(full.n_reply, 1);
  ck_assert_int_eq(full.finish, SCHED_FINISH_CONTEXT);

  /* A sampler the library refuses: the request fails with its message and
   * its slot is freed for the next one. */
  sched_request bad_sampler = r;
  bad_sampler.sampling.temperature = -1.0f;
  ck_assert_int_eq(submit_and_wait(srv, &bad_sampler), SCHED_ERR_LIBRARY);
  ck_assert_int_eq(bad_sampler.finished, 1);
  ck_assert_msg(strstr(bad_sampler.error, "lzn_sampler_create") != NULL, "%s", bad_sampler.error);
  ck_assert_int_eq(submit_and_wait(srv, &r), SCHED_OK);
  ck_assert_int_eq(r.n_reply, 4);
  ck_assert_int_eq(r.finish, SCHED_FINISH_LENGTH);
  const sched_stats stats = sched_get_stats(srv);
  ck_assert_int_eq(stats.active_slots, 0);
  ck_assert_int_eq(stats.requests_done, 3);

  sched_shutdown(srv, -1);
  sched_shutdown(srv, -1); /* idempotent */
  ck_assert_int_eq(sched_submit(srv, &r), SCHED_ERR_SHUTDOWN);
  sched_free(srv);
  sched_free(NULL);
  ck_assert_str_eq(sched_status_str(SCHED_ERR_TOO_LONG), "SCHED_ERR_TOO_LONG");
  lzn_model_free(model);
}
END_TEST

/* Shutting down with requests queued and running answers every one of
 * them before the decode thread stops. */
START_TEST(shutdown_answers_what_was_submitted) {
  lzn_model *model = load_tiny_opt();
  const sched_params p = test_params(0);
  sched *srv = start(model, &p);
  enum { N = 3 * N_SLOTS };
  static int32_t prompt[8] = {'H', 'e', 'l', 'l', 'o', ',', ' ', 'w'};
  static int32_t replies[N][16];
  sched_request r[N];
  memset(r, 0, sizeof r);
  for (int i = 0; i < N; i++) {
    r[i].prompt = prompt, r[i].n_prompt = 1 + i % 8, r[i].n_generate = 16, r[i].reply = replies[i];
    r[i].sampling = lzn_sampler_default_params();
    r[i].sampling.temperature = 0.0f;
    ck_assert_int_eq(sched_submit(srv, &r[i]), SCHED_OK);
  }
  sched_shutdown(srv, -1);
  for (int i = 0; i < N; i++) {
    ck_assert_msg(r[i].finished && r[i].status == SCHED_OK, "request %d: finished %d, %s", i,
                  r[i].finished, sched_status_str(r[i].status));
    ck_assert_int_gt(r[i].n_reply, 0);
  }
  const sched_stats stats = sched_get_stats(srv);
  ck_assert_int_eq(stats.requests_done, N);
  ck_assert_int_eq(stats.active_slots, 0);
  sched_free(srv);
  lzn_model_free(model);
}
END_TEST


/* A request of `n_generate` greedy tokens after `prompt`. */
static sched_request make_request(const int32_t *prompt, int n_prompt, int n_generate, int32_t *reply) {
  sched_request r;
  memset(&r, 0, sizeof r);
  r.prompt = prompt, r.n_prompt = n_prompt, r.n_generate = n_generate, r.reply = reply;
  r.sampling = lzn_sampler_default_params();
  r.sampling.temperature = 0.0f;
  return r;
}

static void bytes_to_tokens(const char *text, int32_t *out) {
  for (int i = 0; text[i]; i++) out[i] = (unsigned char)text[i];
}

/* The same greedy request alone on a fresh context: its reply. */
static int greedy_alone(lzn_model *model, const sched_params *p, const int32_t *prompt, int n_prompt,
                        int n_generate, int32_t *reply) {
  lzn_context_params cp = lzn_context_default_params();
  cp.n_ctx = p->n_ctx, cp.n_threads = 1, cp.mlp_mode = p->mlp_mode, cp.kv_type = p->kv_type;
  cp.use_predictor = p->use_predictor;
  lzn_context *ctx = NULL;
  ck_assert_int_eq(lzn_context_create(model, &cp, &ctx), LZN_OK);
  soak_request q;
  memset(&q, 0, sizeof q);
  q.request = make_request(prompt, n_prompt, n_generate, q.reply);
  float gap[MAX_GENERATE + 1];
  sched_finish finish;
  const int n = run_alone(ctx, p, &q, reply, gap, &finish);
  lzn_context_free(ctx);
  return n;
}

/* A prompt whose prefix a running sequence holds is copied from that
 * sequence's slot (lzn_context_copy_prefix); one whose prefix an idle slot
 * holds continues there; either way the reply is the request's alone. */
#define LONG_REPLY 200

START_TEST(prefix_reuse_copies_and_continues) {
  lzn_model *model = load_tiny_opt();
  sched_params p = test_params(0);
  p.n_slots = 3;
  p.n_ctx = 256; /* room for a long request: it is still running when the copy comes */
  sched *srv = start(model, &p);
  const char *text = "The meaning of life is";
  const int n = (int)strlen(text);
  int32_t prompt[32], long_reply[LONG_REPLY], reply[8], alone[8];
  bytes_to_tokens(text, prompt);
  /* A long request runs; once it has a token, the same prompt again. On a
   * loaded machine the long one may finish before the copy is admitted (it
   * then continues in the idle slot, not what this checks): try again. */
  sched_request running, copy;
  int seen = 0, finished = 0, attempts = 0;
  do {
    if (attempts > 0) sched_request_release(&running), sched_request_release(&copy);
    ck_assert_msg(++attempts <= 5, "the long request finished before the copy was admitted, 5 times");
    running = make_request(prompt, n, LONG_REPLY, long_reply);
    ck_assert_int_eq(sched_submit(srv, &running), SCHED_OK);
    seen = 0, finished = 0;
    ck_assert_int_eq(sched_wait(srv, &running, 0, &seen, &finished, -1), SCHED_OK);
    copy = make_request(prompt, n, 8, reply);
    ck_assert_int_eq(submit_and_wait(srv, &copy), SCHED_OK);
    while (!finished) sched_wait(srv, &running, seen, &seen, &finished, -1);
  } while (copy.slot == running.slot && running.t_finished <= copy.t_first_token);
  ck_assert_int_ne(copy.slot, running.slot);
  ck_assert_int_eq(copy.n_reused, n - 1); /* all but the last token, whose logits it needs */
  const int n_alone = greedy_alone(model, &p, prompt, n, 8, alone);
  ck_assert_int_eq(copy.n_reply, n_alone);
  for (int t = 0; t < n_alone; t++) ck_assert_int_eq(reply[t], alone[t]);
  /* The same prompt continued: it lands in a slot that holds it. */
  sched_request again = make_request(prompt, n, 8, reply);
  ck_assert_int_eq(submit_and_wait(srv, &again), SCHED_OK);
  ck_assert_int_eq(again.n_reused, n - 1);
  for (int t = 0; t < n_alone; t++) ck_assert_int_eq(reply[t], alone[t]);
  const sched_stats st = sched_get_stats(srv);
  /* Every attempt's copy, and the continued one; the long requests reuse
   * what the one before left (attempts - 1 of them). */
  ck_assert_int_eq(st.prompt_tokens_reused, (2 * attempts) * (n - 1));
  /* Without reuse, nothing is reused. */
  sched_free(srv);
  p.reuse_prefix = 0;
  srv = start(model, &p);
  for (int k = 0; k < 2; k++) {
    sched_request plain = make_request(prompt, n, 8, reply);
    ck_assert_int_eq(submit_and_wait(srv, &plain), SCHED_OK);
    ck_assert_int_eq(plain.n_reused, 0);
  }
  sched_free(srv);
  lzn_model_free(model);
}
END_TEST

/* With the tokenizer: the text is the pieces, cut before a stop string. */
START_TEST(stop_strings_cut_the_text) {
  lzn_model *model = load_tiny_opt();
  sched_params p = test_params(0);
  ck_assert_int_eq(lzn_model_get_tokenizer(model, &p.tokenizer), LZN_OK);
  sched *srv = start(model, &p);
  const char *text = "Q: What is a computer?\nA:";
  int32_t prompt[64], reply[32];
  bytes_to_tokens(text, prompt);
  sched_request plain = make_request(prompt, (int)strlen(text), 32, reply);
  ck_assert_int_eq(submit_and_wait(srv, &plain), SCHED_OK);
  ck_assert_int_eq(plain.text_len, (size_t)plain.n_reply); /* byte-level: a token is a byte */
  for (int t = 0; t < plain.n_reply; t++) ck_assert_int_eq((unsigned char)plain.text[t], reply[t]);
  ck_assert_int_gt(plain.n_reply, 12);
  char full[64], stop[4];
  memcpy(full, plain.text, plain.text_len);
  full[plain.text_len] = '\0';
  memcpy(stop, full + 8, 3), stop[3] = '\0';
  const size_t cut = (size_t)(strstr(full, stop) - full);
  sched_request_release(&plain);
  sched_request stopped = make_request(prompt, (int)strlen(text), 32, reply);
  stopped.stop[0] = "\x01no such text", stopped.stop[1] = stop, stopped.n_stop = 2;
  ck_assert_int_eq(submit_and_wait(srv, &stopped), SCHED_OK);
  ck_assert_int_eq(stopped.finish, SCHED_FINISH_STOP);
  ck_assert_uint_eq(stopped.text_len, cut);
  ck_assert_uint_eq(stopped.text_ready, cut);
  ck_assert(memcmp(stopped.text, full, cut) == 0);
  ck_assert_int_lt(stopped.n_reply, plain.n_reply);
  sched_request_release(&stopped);
  sched_free(srv);
  lzn_model_free(model);
}
END_TEST

/* Where the text may be cut: whole UTF-8 sequences, no stop prefix. */
START_TEST(reply_text_rules) {
  ck_assert_uint_eq(utf8_incomplete_tail("ab", 2), 0);
  ck_assert_uint_eq(utf8_incomplete_tail("a\xE2\x82", 3), 2);    /* 2 of the 3 bytes of U+20AC */
  ck_assert_uint_eq(utf8_incomplete_tail("a\xE2\x82\xAC", 4), 0);
  ck_assert_uint_eq(utf8_incomplete_tail("a\xF0", 2), 1);
  ck_assert_uint_eq(utf8_incomplete_tail("a\xE2" "A", 3), 0);     /* broken already: nothing to wait for */
  ck_assert_uint_eq(utf8_incomplete_tail("a\xED\xA0", 3), 0);     /* a surrogate: never valid */
  const char *stops[2] = {"END", "xyz"};
  ck_assert_uint_eq(stop_partial_tail("abcEN", 5, stops, 2), 2);
  ck_assert_uint_eq(stop_partial_tail("abcx", 4, stops, 2), 1);
  ck_assert_uint_eq(stop_partial_tail("abc", 3, stops, 2), 0);
  size_t at = 0;
  ck_assert_int_eq(stop_find("abENDxyz", 8, 4, stops, 2, &at), 1); /* END ends at byte 4 */
  ck_assert_uint_eq(at, 2);
  ck_assert_int_eq(stop_find("abENDq", 6, 5, stops, 2, &at), 0); /* ended before `from`: seen already */
  size_t n = 0;
  char *clean = utf8_sanitize("a\xE2\x82" "b\xFF", 5, &n);
  ck_assert_str_eq(clean, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD"); /* maximal subparts, as Python's "replace" */
  free(clean);
}
END_TEST

START_TEST(cancel_queue_full_and_drain) {
  lzn_model *model = load_tiny_opt();
  sched_params p = test_params(0);
  p.n_slots = 1, p.queue_max = 1;
  p.n_ctx = 256; /* room for a long request, still running when it is cancelled */
  sched *srv = start(model, &p);
  int32_t prompt[4] = {'H', 'e', 'y', ' '}, r1[LONG_REPLY], r2[60], r3[60];
  sched_request a = make_request(prompt, 4, LONG_REPLY, r1), b = make_request(prompt, 3, 60, r2);
  sched_request c = make_request(prompt, 2, 60, r3);
  ck_assert_int_eq(sched_submit(srv, &a), SCHED_OK);
  ck_assert_int_eq(sched_submit(srv, &b), SCHED_OK);
  ck_assert_int_eq(sched_submit(srv, &c), SCHED_ERR_QUEUE_FULL);
  ck_assert_int_eq(sched_full(srv), 1);
  /* b waits: cancelled at once. a runs: cancelled at the next step. */
  sched_cancel(srv, &b);
  ck_assert_int_eq(b.finished, 1);
  ck_assert_int_eq(b.status, SCHED_ERR_CANCELLED);
  int seen = 0, finished = 0;
  /* On a loaded machine a may finish before the cancel comes: run it again
   * (up to 5 times) until the cancel finds it running. */
  for (int attempt = 1;; attempt++) {
    sched_wait(srv, &a, 0, &seen, &finished, -1);
    sched_cancel(srv, &a);
    while (!finished) sched_wait(srv, &a, seen, &seen, &finished, -1);
    if (a.status == SCHED_ERR_CANCELLED || attempt == 5) break;
    ck_assert_int_eq(a.status, SCHED_OK);
    a = make_request(prompt, 4, LONG_REPLY, r1);
    ck_assert_int_eq(sched_submit(srv, &a), SCHED_OK);
  }
  ck_assert_int_eq(a.status, SCHED_ERR_CANCELLED);
  ck_assert_int_lt(a.n_reply, LONG_REPLY);
  sched_stats st = sched_get_stats(srv);
  ck_assert_int_eq(st.active_slots, 0);
  ck_assert_int_eq(st.waiting, 0);
  ck_assert_int_eq(st.requests_rejected, 1);
  ck_assert_int_eq(st.requests_failed, 2);
  ck_assert_int_eq(sched_full(srv), 0);
  /* A drain of 0 s cuts what runs: it ends with SCHED_ERR_SHUTDOWN. */
  ck_assert_int_eq(sched_submit(srv, &a), SCHED_OK);
  sched_wait(srv, &a, 0, &seen, &finished, -1);
  sched_shutdown(srv, 0.0);
  ck_assert_int_eq(a.finished, 1);
  ck_assert_msg(a.status == SCHED_ERR_SHUTDOWN || a.n_reply == LONG_REPLY, "%s", sched_status_str(a.status));
  ck_assert_int_eq(sched_submit(srv, &c), SCHED_ERR_SHUTDOWN);
  sched_free(srv);
  lzn_model_free(model);
}
END_TEST

START_TEST(slot_save_and_restore) {
  lzn_model *model = load_tiny_opt();
  sched_params p = test_params(0);
  p.n_slots = 2;
  char error[256], path[] = "/tmp/lzn-test-slot-XXXXXX";
  const int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  sched *srv = start(model, &p);
  int32_t prompt[16], reply[10], again[10];
  bytes_to_tokens("Never trust a", prompt);
  sched_request r = make_request(prompt, 13, 10, reply);
  ck_assert_int_eq(submit_and_wait(srv, &r), SCHED_OK);
  int n_tokens = 0;
  size_t n_bytes = 0;
  ck_assert_msg(sched_slot_save(srv, r.slot, path, &n_tokens, &n_bytes, error) == SCHED_OK, "%s", error);
  ck_assert_int_eq(n_tokens, 13 + 9); /* the prompt and the reply's fed tokens */
  const int other = 1 - r.slot;
  int n_restored = 0;
  ck_assert_msg(sched_slot_restore(srv, other, path, &n_restored, &n_bytes, error) == SCHED_OK, "%s", error);
  ck_assert_int_eq(n_restored, n_tokens);
  ck_assert_int_eq(sched_slot_save(srv, 2, path, NULL, NULL, error), SCHED_ERR_INVALID);
  ck_assert_int_eq(sched_slot_restore(srv, 0, "/nonexistent/slot", NULL, NULL, error), SCHED_ERR_LIBRARY);
  FILE *f = fopen(path, "r+b");
  ck_assert_ptr_nonnull(f);
  fseek(f, -3, SEEK_END);
  fputc('!', f);
  fclose(f);
  ck_assert_int_eq(sched_slot_restore(srv, 0, path, NULL, NULL, error), SCHED_ERR_LIBRARY);
  ck_assert_msg(strstr(error, "checksum") != NULL, "%s", error);
  /* The restored slot still serves its prefix. */
  sched_request r2 = make_request(prompt, 13, 10, again);
  ck_assert_int_eq(submit_and_wait(srv, &r2), SCHED_OK);
  ck_assert_int_eq(r2.n_reused, 12);
  for (int t = 0; t < 10; t++) ck_assert_int_eq(again[t], reply[t]);
  remove(path);
  sched_free(srv);
  lzn_model_free(model);
}
END_TEST

static Suite *server_suite(void) {
  Suite *s = suite_create("server");
  TCase *tc = tcase_create("example server loop");
  tcase_set_timeout(tc, 120); /* a few seconds at -O2; sanitizers are slower */
  tcase_add_loop_test(tc, soak_every_reply_equals_the_request_alone, 0, 3);
  tcase_add_test(tc, bad_input_has_a_specific_status);
  tcase_add_test(tc, shutdown_answers_what_was_submitted);
  tcase_add_test(tc, prefix_reuse_copies_and_continues);
  tcase_add_test(tc, stop_strings_cut_the_text);
  tcase_add_test(tc, reply_text_rules);
  tcase_add_test(tc, cancel_queue_full_and_drain);
  tcase_add_test(tc, slot_save_and_restore);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(server_suite()); }
