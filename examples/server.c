/*
 * server.c: a demo of lzn-server's scheduler (cli/server/scheduler.c). N client
 * threads each send a few text prompts to one server, whose decode thread
 * batches every active sequence into one lzn_forward_batch call per step
 * (continuous batching); each client prints its replies. Then the same
 * requests run one after another on a single context, for the throughput
 * that batching buys.
 *
 *   server [--slots K] [--clients N] [--requests R] [--tokens T]
 *          [--temperature X] [--threads N] [--no-predictor] MODEL_DIR
 *
 * Each request samples with its own seed (client * 1000 + request), so a
 * run prints the same replies every time.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lazyneuron.h>

/* The serving loop is compiled into this program (and into
 * tests/test_server.c) rather than built as a library of its own: the
 * Makefile builds each examples/NAME.c into build/NAME by itself. */
#include "../cli/common/reply_text.c"
#include "../cli/server/slot_file.c"
#include "../cli/server/scheduler.c"

static const char *const prompts[] = {
    "The meaning of life is", "A journey of a thousand miles", "Q: What is a computer?\nA:",
    "You will be", "Never trust", "Today is a good day to", "The best way to learn",
    "Love is", "It is easier to", "Time flies"};
#define N_PROMPTS ((int)(sizeof prompts / sizeof prompts[0]))

typedef struct options {
  const char *model_dir;
  int n_slots, n_clients, n_requests, n_tokens, n_threads, use_predictor;
  float temperature;
} options;

static void usage(void) {
  fprintf(stderr, "usage: server [--slots K] [--clients N] [--requests R] [--tokens T]\n"
                  "              [--temperature X] [--threads N] [--no-predictor] MODEL_DIR\n");
  exit(2);
}

static options parse(int argc, char **argv) {
  options o = {NULL, 4, 4, 2, 48, 1, 1, 0.8f};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 < argc && strcmp(a, "--slots") == 0) o.n_slots = atoi(argv[++i]);
    else if (i + 1 < argc && strcmp(a, "--clients") == 0) o.n_clients = atoi(argv[++i]);
    else if (i + 1 < argc && strcmp(a, "--requests") == 0) o.n_requests = atoi(argv[++i]);
    else if (i + 1 < argc && strcmp(a, "--tokens") == 0) o.n_tokens = atoi(argv[++i]);
    else if (i + 1 < argc && strcmp(a, "--threads") == 0) o.n_threads = atoi(argv[++i]);
    else if (i + 1 < argc && strcmp(a, "--temperature") == 0) o.temperature = (float)atof(argv[++i]);
    else if (strcmp(a, "--no-predictor") == 0) o.use_predictor = 0;
    else if (a[0] == '-' || o.model_dir) usage();
    else o.model_dir = a;
  }
  if (!o.model_dir || o.n_slots < 1 || o.n_clients < 1 || o.n_requests < 1 || o.n_tokens < 1 ||
      o.n_threads < 1 || !(o.temperature >= 0))
    usage();
  return o;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One request's buffers, as a client keeps them. */
typedef struct job {
  int32_t prompt[256];
  sched_request request;
  int32_t *reply;
} job;

/* What main sets up for the clients; the only state they share. */
typedef struct demo {
  sched *srv;
  const lzn_tokenizer *tokenizer;
  const options *o;
  job *jobs;                  /* [n_clients * n_requests] */
  pthread_mutex_t print_lock; /* one reply printed at a time */
} demo;

typedef struct client {
  demo *d;
  int id;
  int failed;
} client;

static const char *finish_name(sched_finish f) {
  return f == SCHED_FINISH_EOS ? "eos" : f == SCHED_FINISH_CONTEXT ? "context full" : "length";
}

static void print_reply(demo *d, int client_id, int index, const char *prompt, const job *j) {
  pthread_mutex_lock(&d->print_lock);
  printf("[client %d, request %d, %s] %s\033[1m", client_id, index, finish_name(j->request.finish), prompt);
  for (int t = 0; t < j->request.n_reply; t++) {
    char piece[16];
    size_t len = 0;
    if (lzn_token_to_piece(d->tokenizer, j->reply[t], piece, sizeof piece, &len) == LZN_OK)
      fwrite(piece, 1, len, stdout);
  }
  printf("\033[0m\n\n");
  pthread_mutex_unlock(&d->print_lock);
}

/* Sends its requests one after another, each read as a stream of tokens. */
static void *run_client(void *arg) {
  client *c = arg;
  demo *d = c->d;
  for (int k = 0; k < d->o->n_requests; k++) {
    const int index = c->id * d->o->n_requests + k;
    job *j = &d->jobs[index];
    const char *text = prompts[index % N_PROMPTS];
    sched_request *r = &j->request;
    int n_prompt = 0;
    lzn_status st = lzn_tokenize(d->tokenizer, text, strlen(text), 0, j->prompt, 256, &n_prompt);
    if (st != LZN_OK) {
      fprintf(stderr, "client %d: lzn_tokenize: %s: %s\n", c->id, lzn_status_str(st), lzn_last_error());
      c->failed = 1;
      return NULL;
    }
    r->prompt = j->prompt, r->n_prompt = n_prompt;
    r->n_generate = d->o->n_tokens;
    r->reply = j->reply;
    r->sampling = lzn_sampler_default_params();
    r->sampling.temperature = d->o->temperature;
    r->sampling.seed = (uint64_t)c->id * 1000 + (uint64_t)k;
    sched_status ss = sched_submit(d->srv, r);
    int n_seen = 0, finished = 0;
    /* Tokens arrive as the decode loop makes them; a real server would
     * send each one to its client here. */
    while (ss == SCHED_OK && !finished) ss = sched_wait(d->srv, r, n_seen, &n_seen, &finished, -1);
    if (ss != SCHED_OK) {
      fprintf(stderr, "client %d: %s %s\n", c->id, sched_status_str(ss), r->error);
      c->failed = 1;
      return NULL;
    }
    print_reply(d, c->id, k, text, j);
  }
  return NULL;
}

/* The same requests one by one on one context: the baseline's tokens/s. */
static int run_alone(const lzn_model *model, const sched_params *sp, const demo *d, int n_jobs,
                     int *n_tokens, int *n_differ) {
  lzn_context_params cp = lzn_context_default_params();
  cp.n_ctx = sp->n_ctx, cp.n_threads = sp->n_threads, cp.mlp_mode = sp->mlp_mode;
  cp.kv_type = sp->kv_type, cp.collect_stats = 0, cp.use_predictor = sp->use_predictor;
  lzn_context *ctx = NULL;
  lzn_sampler *sampler = NULL;
  float logits[256];
  lzn_status st = lzn_context_create(model, &cp, &ctx);
  *n_tokens = 0, *n_differ = 0;
  for (int i = 0; i < n_jobs && st == LZN_OK; i++) {
    const sched_request *r = &d->jobs[i].request;
    st = lzn_sampler_create(&r->sampling, 256, &sampler);
    for (int t = 0; t < r->n_prompt && st == LZN_OK; t++) st = lzn_sampler_accept(sampler, r->prompt[t]);
    if (st == LZN_OK) st = lzn_forward(ctx, r->prompt, r->n_prompt, logits, LZN_LOGITS_LAST);
    int n = 0, differs = 0;
    while (st == LZN_OK) {
      int32_t token;
      st = lzn_sampler_sample(sampler, logits, &token);
      if (st != LZN_OK || token == sp->eos_id) break;
      differs |= n >= r->n_reply || d->jobs[i].reply[n] != token;
      if (++n == r->n_generate || lzn_context_n_past(ctx) >= sp->n_ctx) break;
      st = lzn_forward(ctx, &token, 1, logits, LZN_LOGITS_LAST);
    }
    *n_tokens += n;
    *n_differ += differs || n != r->n_reply;
    lzn_sampler_free(sampler), sampler = NULL;
    if (st == LZN_OK) st = lzn_context_reset(ctx);
  }
  if (st != LZN_OK) fprintf(stderr, "alone: %s: %s\n", lzn_status_str(st), lzn_last_error());
  lzn_sampler_free(sampler);
  lzn_context_free(ctx);
  return st == LZN_OK ? 0 : 1;
}

int main(int argc, char **argv) {
  const options o = parse(argc, argv);
  lzn_model *model = NULL;
  const lzn_tokenizer *tokenizer = NULL;
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_status st = lzn_model_load(o.model_dir, NULL, &model);
  if (st == LZN_OK) st = lzn_model_get_info(model, &info);
  if (st == LZN_OK) st = lzn_model_get_tokenizer(model, &tokenizer);
  lzn_tokenizer_info tinfo = {.struct_size = sizeof tinfo};
  if (st == LZN_OK) st = lzn_tokenizer_get_info(tokenizer, &tinfo);
  if (st != LZN_OK) {
    fprintf(stderr, "server: %s: %s: %s\n", o.model_dir, lzn_status_str(st), lzn_last_error());
    lzn_model_free(model);
    return 1;
  }
  if (info.vocab_size != 256 || strcmp(tinfo.kind, "byte-level") != 0) {
    fprintf(stderr, "server: %s is not a byte-level model (the demo's buffers assume 256 tokens)\n",
            o.model_dir);
    lzn_model_free(model);
    return 1;
  }

  sched_params sp = sched_default_params();
  sp.n_slots = o.n_slots, sp.n_threads = o.n_threads, sp.eos_id = tinfo.eos_id;
  sp.n_ctx = info.max_positions, sp.use_predictor = o.use_predictor;
  const int n_jobs = o.n_clients * o.n_requests;
  demo d = {NULL, tokenizer, &o, calloc((size_t)n_jobs, sizeof(job)), PTHREAD_MUTEX_INITIALIZER};
  client *clients = calloc((size_t)o.n_clients, sizeof *clients);
  pthread_t *threads = calloc((size_t)o.n_clients, sizeof *threads);
  int failed = !d.jobs || !clients || !threads;
  for (int i = 0; !failed && i < n_jobs; i++)
    failed = !(d.jobs[i].reply = malloc((size_t)o.n_tokens * sizeof(int32_t)));
  char error[256] = "out of memory";
  if (!failed) failed = sched_create(model, &sp, &d.srv, error) != SCHED_OK;
  if (failed) {
    fprintf(stderr, "server: %s\n", error);
    return 1;
  }

  const double t0 = now();
  int n_started = 0;
  for (; n_started < o.n_clients; n_started++) {
    clients[n_started] = (client){&d, n_started, 0};
    if (pthread_create(&threads[n_started], NULL, run_client, &clients[n_started]) != 0) break;
  }
  for (int i = 0; i < n_started; i++) {
    pthread_join(threads[i], NULL);
    failed |= clients[i].failed;
  }
  const double served_s = now() - t0;
  failed |= n_started < o.n_clients;
  const sched_stats stats = sched_get_stats(d.srv);
  sched_free(d.srv);

  int n_alone = 0, n_differ = 0;
  const double t1 = now();
  if (!failed) failed = run_alone(model, &sp, &d, n_jobs, &n_alone, &n_differ);
  const double alone_s = now() - t1;
  if (!failed) {
    printf("%d clients x %d requests, %d slots, %d thread(s), kernels %s\n", o.n_clients,
           o.n_requests, o.n_slots, o.n_threads, lzn_isa_name());
    printf("served:   %lld tokens in %.3f s = %.0f tokens/s (%lld batch steps, mean batch %.2f)\n",
           (long long)stats.tokens_generated, served_s, (double)stats.tokens_generated / served_s,
           (long long)stats.batch_steps,
           stats.batch_steps ? (double)stats.batch_tokens / (double)stats.batch_steps : 0.0);
    printf("one by one: %d tokens in %.3f s = %.0f tokens/s\n", n_alone, alone_s,
           (double)n_alone / alone_s);
    if (n_differ)
      printf("(%d replies differ from the same request run alone: batched logits equal single ones "
             "only within fp32 rounding, and a sampled near-tie can go either way)\n", n_differ);
  }
  for (int i = 0; i < n_jobs; i++) free(d.jobs[i].reply);
  free(d.jobs), free(clients), free(threads);
  lzn_model_free(model);
  return failed ? 1 : 0;
}
