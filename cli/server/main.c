/*
 * main.c: lzn-server, an OpenAI-compatible HTTP server over lazyneuron.
 *
 *   lzn-server -m MODEL [--host 127.0.0.1] [--port 8080] [--slots N]
 *              [--ctx-size N] [--threads N] [--mode sparse|dense|auto]
 *              [--type ...] [--api-key KEY] [--max-body BYTES] ...
 *
 * It listens first (GET /health answers 503 "Loading model" meanwhile),
 * then loads the model and starts the scheduler. SIGTERM or SIGINT: stop
 * accepting, let the running and queued requests finish for up to
 * --drain-timeout seconds, cancel the rest, exit 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "server.h"
#include "../weight_names.h"

static void usage(FILE *to, int code) {
  fprintf(to,
          "usage: lzn-server -m MODEL [options]\n"
          "  -m, --model PATH         model folder or GGUF file (required)\n"
          "  --host ADDR              address to listen on (default 127.0.0.1)\n"
          "  --port N                 port (default 8080; 0: any free one, printed)\n"
          "  --slots N                sequences decoded together (default 4)\n"
          "  -c, --ctx-size N         tokens per slot (default 0: the model's maximum)\n"
          "  -t, --threads N          threads per lazyneuron call (default 1)\n"
          "  --mode auto|sparse|dense the MLP's path (default auto)\n"
          "  --type as-stored|f32|f16|bf16|q8_0|q4_0|q4_k|q5_k|q6_k  weight type in memory\n"
          "                           (default as-stored)\n"
          "  --no-predictor           do not use the model's activation predictor\n"
          "  --predictor-type T       its matrices' type, converted at load (default as-stored)\n"
          "  --pack-budget MIB        MiB of packed weight copies for prompts and batches\n"
          "                           (default: all the model has; 0: none, the least memory)\n"
          "  --no-mmap                read the weights into private memory on huge pages instead\n"
          "                           of mapping the file (faster decode on few threads; README)\n"
          "  --api-key KEY            every endpoint but /health needs 'Authorization: Bearer KEY'\n"
          "  --max-body BYTES         largest request body (default 4194304; larger: 413)\n"
          "  --queue N                requests that may wait for a slot (default 64; beyond: 503)\n"
          "  --prefill-chunk N        prompt tokens prefilled per step (default 256)\n"
          "  --no-prefix-reuse        never start a prompt from a cached prefix\n"
          "  --timeout S              idle connection timeout, seconds (default 600)\n"
          "  --max-connections N      open connections at most (default 512)\n"
          "  --http-nice N            nice value of the connection threads, 0-19 (default 19:\n"
          "                           the decode thread first when cores are short; README)\n"
          "  --drain-timeout S        on SIGTERM/SIGINT, seconds to finish requests (default 10)\n"
          "  --slot-save-path DIR     folder for POST /slots/{id}?action=save|restore\n"
          "  --chat-template NAME     chatml|llama2|llama3|mistral|zephyr|phi3|vicuna|gemma\n"
          "                           (default: the model's template, else chatml)\n"
          "  --alias NAME             the model's name in /v1/models (default: the file's name)\n"
          "  -h, --help, --version\n");
  exit(code);
}

static void bad(const char *what) {
  fprintf(stderr, "lzn-server: %s\n", what);
  usage(stderr, 2);
}

static long parse_int(const char *flag, const char *v, long lo, long hi) {
  char *end;
  errno = 0;
  const long x = strtol(v, &end, 10);
  if (*v == '\0' || *end != '\0' || errno || x < lo || x > hi) {
    fprintf(stderr, "lzn-server: %s %s: expected an integer in [%ld, %ld]\n", flag, v, lo, hi);
    exit(2);
  }
  return x;
}

static srv_options parse(int argc, char **argv) {
  srv_options o;
  memset(&o, 0, sizeof o);
  o.host = "127.0.0.1", o.port = 8080, o.n_slots = 4, o.n_threads = 1, o.queue_max = 64;
  o.prefill_chunk = 256, o.timeout_s = 600, o.max_connections = 512, o.use_predictor = 1;
  o.reuse_prefix = 1, o.mode = LZN_MLP_AUTO, o.type = o.predictor_type = LZN_WEIGHTS_AS_STORED, o.max_body = 4u << 20;
  o.drain_s = 10, o.pack_budget = SIZE_MAX, o.http_nice = 19;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) usage(stdout, 0);
    if (!strcmp(a, "--version")) printf("lzn-server %s\n", lzn_version_string()), exit(0);
    if (!strcmp(a, "--no-predictor")) { o.use_predictor = 0; continue; }
    if (!strcmp(a, "--no-prefix-reuse")) { o.reuse_prefix = 0; continue; }
    if (!strcmp(a, "--no-mmap")) { o.no_mmap = 1; continue; }
    if (i + 1 >= argc) bad("an option needs a value, or is unknown");
    const char *v = argv[++i];
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) o.model_path = v;
    else if (!strcmp(a, "--host")) o.host = v;
    else if (!strcmp(a, "--port")) o.port = (int)parse_int(a, v, 0, 65535);
    else if (!strcmp(a, "--slots") || !strcmp(a, "-np") || !strcmp(a, "--parallel"))
      o.n_slots = (int)parse_int(a, v, 1, 1024);
    else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) o.n_ctx = (int)parse_int(a, v, 0, 1 << 24);
    else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) o.n_threads = (int)parse_int(a, v, 1, 1024);
    else if (!strcmp(a, "--api-key")) o.api_key = v;
    else if (!strcmp(a, "--max-body")) o.max_body = (size_t)parse_int(a, v, 1, 1L << 34);
    else if (!strcmp(a, "--queue")) o.queue_max = (int)parse_int(a, v, 0, 1 << 20);
    else if (!strcmp(a, "--prefill-chunk")) o.prefill_chunk = (int)parse_int(a, v, 1, 1 << 20);
    else if (!strcmp(a, "--timeout")) o.timeout_s = (int)parse_int(a, v, 0, 1 << 20);
    else if (!strcmp(a, "--http-nice")) o.http_nice = (int)parse_int(a, v, 0, 19);
    else if (!strcmp(a, "--max-connections")) o.max_connections = (int)parse_int(a, v, 1, 1 << 16);
    else if (!strcmp(a, "--drain-timeout")) o.drain_s = (double)parse_int(a, v, 0, 1 << 20);
    else if (!strcmp(a, "--slot-save-path")) o.slot_save_path = v;
    else if (!strcmp(a, "--chat-template")) o.chat_template = v;
    else if (!strcmp(a, "--alias")) o.alias = v;
    else if (!strcmp(a, "--pack-budget")) o.pack_budget = (size_t)parse_int(a, v, 0, 1L << 30) << 20;
    else if (!strcmp(a, "--mode")) {
      if (!strcmp(v, "auto")) o.mode = LZN_MLP_AUTO;
      else if (!strcmp(v, "sparse")) o.mode = LZN_MLP_SPARSE;
      else if (!strcmp(v, "dense")) o.mode = LZN_MLP_DENSE;
      else bad("--mode is auto, sparse or dense");
    } else if (!strcmp(a, "--type") || !strcmp(a, "--predictor-type")) {
      /* The library's names, as lzn-run takes them (a list of our own had
       * stopped at q4_0 while the README offered the K-quants). */
      if (!lzn_cli_weight_type_from_name(v, !strcmp(a, "--type") ? &o.type : &o.predictor_type)) {
        char why[300];
        snprintf(why, sizeof why, "%s is as-stored, %s", a, lzn_cli_weight_type_list(1));
        bad(why);
      }
    } else {
      fprintf(stderr, "lzn-server: unknown option %s\n", a);
      usage(stderr, 2);
    }
  }
  if (!o.model_path) bad("-m MODEL is required");
  if (o.chat_template && !lzn_chat_template_name(o.chat_template))
    bad("--chat-template is chatml, llama2, llama3, mistral, zephyr, phi3, vicuna or gemma");
  struct stat st;
  if (o.slot_save_path && (stat(o.slot_save_path, &st) != 0 || !S_ISDIR(st.st_mode)))
    bad("--slot-save-path must be an existing folder");
  return o;
}

/* The model, its tokenizer and chat template, and the scheduler. */
static int load(srv_app *app, char error[256]) {
  const srv_options *o = &app->opt;
  /* params_init, not the by-value defaults: those are the 0.3 struct, which
   * has no pack_budget. */
  lzn_model_params mp;
  lzn_model_params_init(&mp, sizeof mp);
  mp.weight_type = o->type, mp.pack_budget = o->pack_budget, mp.n_threads = o->n_threads;
  mp.predictor_type = o->predictor_type;
  mp.use_mmap = !o->no_mmap;
  lzn_status st = lzn_model_load(o->model_path, &mp, &app->model);
  app->info.struct_size = sizeof app->info, app->tinfo.struct_size = sizeof app->tinfo;
  if (st == LZN_OK) st = lzn_model_get_info(app->model, &app->info);
  if (st != LZN_OK) {
    snprintf(error, 256, "%s: %s: %s", o->model_path, lzn_status_str(st), lzn_last_error());
    return 0;
  }
  if (lzn_model_get_tokenizer(app->model, &app->tokenizer) == LZN_OK)
    lzn_tokenizer_get_info(app->tokenizer, &app->tinfo);
  else
    app->tokenizer = NULL, app->tinfo.eos_id = -1,
    fprintf(stderr, "lzn-server: %s has no tokenizer: prompts must be token ids\n", o->model_path);
  const char *model_template = lzn_tokenizer_chat_template(app->tokenizer);
  if (o->chat_template) {
    app->chat_template = o->chat_template;
  } else if (model_template && lzn_chat_template_name(model_template)) {
    app->chat_template = model_template;
  } else {
    if (model_template)
      fprintf(stderr, "lzn-server: the model's chat template is of no family lazyneuron renders; "
              "using chatml (choose one with --chat-template)\n");
    app->chat_template = "chatml";
  }
  app->chat_family = lzn_chat_template_name(app->chat_template);

  sched_params sp = sched_default_params();
  sp.n_slots = o->n_slots, sp.n_ctx = o->n_ctx, sp.n_threads = o->n_threads, sp.mlp_mode = o->mode;
  sp.use_predictor = o->use_predictor, sp.eos_id = app->tinfo.eos_id, sp.queue_max = o->queue_max;
  sp.prefill_chunk = o->prefill_chunk, sp.reuse_prefix = o->reuse_prefix, sp.collect_stats = 1;
  sp.tokenizer = app->tokenizer;
  if (sched_create(app->model, &sp, &app->sched, error) != SCHED_OK) return 0;
  app->n_ctx = o->n_ctx ? o->n_ctx : app->info.max_positions;
  return 1;
}

static void name_model(srv_app *app) {
  const char *p = app->opt.alias;
  if (!p) {
    size_t n = strlen(app->opt.model_path);
    while (n > 1 && app->opt.model_path[n - 1] == '/') n--;
    size_t start = n;
    while (start > 0 && app->opt.model_path[start - 1] != '/') start--;
    snprintf(app->model_name, sizeof app->model_name, "%.*s", (int)(n - start), app->opt.model_path + start);
    return;
  }
  snprintf(app->model_name, sizeof app->model_name, "%s", p);
}

int main(int argc, char **argv) {
  static srv_app app; /* zeroed; lives as long as the threads that read it */
  app.opt = parse(argc, argv);
  app.created = (long)time(NULL);
  name_model(&app);

  /* Every thread started from here on blocks the two signals; main takes them with sigwait. */
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
  signal(SIGPIPE, SIG_IGN);

  char error[256] = "";
  struct MHD_Daemon *http = srv_http_start(&app, error);
  if (!http) {
    fprintf(stderr, "lzn-server: %s\n", error);
    return 1;
  }
  printf("lzn-server: listening on http://%s:%d (loading %s)\n", app.opt.host, srv_http_port(http),
         app.opt.model_path);
  fflush(stdout);
  if (!load(&app, error)) {
    fprintf(stderr, "lzn-server: %s\n", error);
    srv_http_stop(http);
    lzn_model_free(app.model);
    return 1;
  }
  atomic_store(&app.ready, 1);
  printf("lzn-server: ready: %s, %d slots of %d tokens, chat template %s, kernels %s\n", app.model_name,
         app.opt.n_slots, app.n_ctx, app.chat_family, lzn_isa_name());
  fflush(stdout);

  int sig = 0;
  while (sigwait(&stop_signals, &sig) != 0) {}
  printf("lzn-server: %s: draining (up to %g s)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT", app.opt.drain_s);
  fflush(stdout);
  atomic_store(&app.stopping, 1);
  srv_http_quiesce(http);
  sched_shutdown(app.sched, app.opt.drain_s);
  /* Every request is answered in the scheduler; let the last bytes of the
   * replies (a stream's [DONE]) reach their clients before closing. */
  for (int i = 0; i < 500 && atomic_load(&app.in_flight) > 0; i++) nanosleep(&(struct timespec){0, 10000000}, NULL);
  srv_http_stop(http);
  sched_free(app.sched);
  lzn_model_free(app.model);
  printf("lzn-server: stopped\n");
  return 0;
}
