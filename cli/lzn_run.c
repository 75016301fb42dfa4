/*
 * lzn_run.c: lzn-run, text generation from the command line, with
 * llama-cli's option names where the meaning is the same (--help lists
 * them with their defaults).
 *
 * Standard output gets the prompt and then the generated text, streamed a
 * token at a time; generation stops after -n tokens, at the tokenizer's
 * end-of-text token, or when the context is full (said on stderr). Standard
 * error gets a startup line (model, weight type, ISA, threads, MLP mode,
 * predictor, context, load time, seed), then the timings (prefill and
 * decode tokens/s) and what the sparse MLP did (lzn_context_stats).
 *
 * -i: after the prompt's continuation, each line of standard input is
 * appended to the sequence and generation continues from it; the KV cache
 * is kept, so only the new tokens run (never the history again). EOF ends.
 * Input lines are echoed to standard output when standard input is not a
 * terminal, so stdout holds the whole sequence's text.
 *
 * Exit status: 0 done; 1 the model, the prompt file or writing the output
 * failed (one line); 2 a usage error (one line naming the option).
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lazyneuron.h>

#include "common/reply_text.h"
#include "weight_names.h"

typedef struct options {
  const char *model, *prompt, *prompt_file;
  int chat;                  /* -cnv: a conversation through the chat template */
  const char *chat_template; /* --chat-template: a family name or a template's text; NULL: the model's */
  int n_predict; /* -1: until the end-of-text token or a full context */
  int n_threads, n_ctx, predictor, interactive, escapes, seed_random, no_mmap;
  lzn_mlp_mode mode;
  lzn_weight_type type, predictor_type;
  size_t pack_budget; /* lzn_model_params.pack_budget (SIZE_MAX: all) */
  lzn_sampler_params sampling;
} options;

static const char *const mode_names[] = {"auto", "sparse", "dense"}; /* lzn_mlp_mode's order */

static void usage(FILE *out) {
  const lzn_sampler_params d = lzn_sampler_default_params();
  fprintf(out,
          "usage: lzn-run -m MODEL [options]\n"
          "Generates text from a prompt (-p, -f FILE, or standard input) and streams it to\n"
          "standard output; the startup line, timings and the MLP's sparsity go to stderr.\n"
          "\n"
          "  -m, --model PATH         a Hugging Face folder (OPT, LLaMA family) or a GGUF file\n"
          "  -p, --prompt TEXT        the prompt\n"
          "  -f, --file FILE          read the prompt from FILE\n"
          "  -e, --escape             process \\n \\r \\t \\' \\\" \\\\ \\xHH in the prompt and -i input\n"
          "  -cnv, --conversation     chat: each line of standard input is a user message, rendered\n"
          "                           with the model's chat template (ChatML if it has none), the\n"
          "                           reply streamed; -p / -f is the system message; /reset starts\n"
          "                           over; the KV cache keeps the conversation (only new tokens run)\n"
          "      --chat-template T    a family (chatml, llama2, llama3, mistral, zephyr, phi3,\n"
          "                           vicuna, gemma) or a template's text (default: the model's)\n"
          "  -i, --interactive        then read lines from standard input and continue after each\n"
          "                           (the KV cache is kept: only new text runs); EOF ends\n"
          "  -n, --n-predict N        tokens to generate (per turn with -i); -1 = until the\n"
          "                           end-of-text token or a full context (default 128)\n"
          "  -c, --ctx-size N         context length in tokens; 0 = the model's (default 0)\n"
          "  -t, --threads N          threads (default %d: the physical cores this process may use)\n"
          "  -s, --seed N             sampling seed; -1 = random, printed on stderr (default -1)\n"
          "      --temp T             temperature; 0 = greedy (default %.2f)\n"
          "      --top-k K            keep the K most likely tokens; 0 = all (default %d)\n"
          "      --top-p P            nucleus sampling; 1 = off (default %.2f)\n"
          "      --min-p P            drop tokens below P x the most likely; 0 = off (default %.2f)\n"
          "      --repeat-penalty R   1 = off (default %.2f)\n"
          "      --repeat-last-n N    tokens the penalty looks back (default %d)\n"
          "      --mode M             the MLP: auto, sparse or dense (default auto)\n"
          "      --type T             weights: %s (default\n"
          "                           as-stored: F32/F16/BF16 and GGUF types used as stored)\n"
          "      --predictor on|off   the model's activation predictor, if it has one (default on)\n"
          "      --predictor-type T   its matrices' type, converted at load (default as-stored: a\n"
          "                           predictor.safetensors is F32; q8_0 reads a quarter of it)\n"
          "      --pack-budget MIB    MiB of packed weight copies made at load for prompts\n"
          "                           (default: all the model has; 0: none, the least memory)\n"
          "      --no-mmap            read the weights into private memory on huge pages instead\n"
          "                           of mapping the file: faster decode on few threads, slower\n"
          "                           load, no page-cache sharing (README, \"Mapped or read\")\n"
          "  -h, --help               this help\n"
          "      --version            the version\n"
          "Exit status: 0 done; 1 the model, the prompt or the output failed; 2 a usage error.\n",
          lzn_default_thread_count(), (double)d.temperature, d.top_k, (double)d.top_p,
          (double)d.min_p, (double)d.repetition_penalty, d.repeat_last_n, lzn_cli_weight_type_list(0));
}

/* A usage error: one line naming the option, exit 2. */
static void usage_error(const char *option, const char *value, const char *why) {
  fprintf(stderr, "lzn-run: %s%s%s%s%s (lzn-run --help lists the options)\n", option ? option : "",
          value ? " " : "", value ? value : "", option ? ": " : "", why);
  exit(2);
}

static long parse_int(const char *flag, const char *v, long lo, long hi) {
  char *end;
  errno = 0;
  const long x = strtol(v, &end, 10);
  char why[96];
  if (*v == '\0' || *end != '\0' || errno == ERANGE) usage_error(flag, v, "expected an integer");
  snprintf(why, sizeof why, "out of range [%ld, %ld]", lo, hi);
  if (x < lo || x > hi) usage_error(flag, v, why);
  return x;
}

/* A finite number in [lo, hi] (open at lo if lo_open). */
static float parse_float(const char *flag, const char *v, double lo, int lo_open, double hi) {
  char *end;
  const double x = strtod(v, &end);
  char why[96];
  if (*v == '\0' || *end != '\0' || x != x) usage_error(flag, v, "expected a number");
  snprintf(why, sizeof why, "out of range %s%g, %g]", lo_open ? "(" : "[", lo, hi);
  if (x < lo || (lo_open && x == lo) || x > hi) usage_error(flag, v, why);
  return (float)x;
}

static uint64_t parse_seed(const char *flag, const char *v, int *random) {
  *random = strcmp(v, "-1") == 0;
  if (*random) return 0;
  char *end;
  errno = 0;
  const unsigned long long x = strtoull(v, &end, 10);
  if (*v == '\0' || *end != '\0' || errno == ERANGE || v[0] == '-' || v[0] == '+')
    usage_error(flag, v, "expected -1 (random) or an integer in [0, 2^64)");
  return (uint64_t)x;
}

static uint64_t random_seed(void) {
  uint64_t seed;
  if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed) return seed;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
}

/* Whether a is the option's short name (may be NULL: none) or long name. */
static int is_option(const char *a, const char *short_name, const char *long_name) {
  return (short_name != NULL && strcmp(a, short_name) == 0) || strcmp(a, long_name) == 0;
}

static options parse(int argc, char **argv) {
  options o;
  memset(&o, 0, sizeof o);
  o.n_predict = 128, o.n_threads = lzn_default_thread_count(), o.mode = LZN_MLP_AUTO;
  o.type = o.predictor_type = LZN_WEIGHTS_AS_STORED, o.predictor = 1, o.seed_random = 1, o.pack_budget = SIZE_MAX;
  o.sampling = lzn_sampler_default_params();
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
#define IS(short_name, long_name) is_option(a, short_name, long_name)
    /* Flags without a value. */
    if (IS("-h", "--help")) {
      usage(stdout);
      exit(fflush(stdout) == 0 ? 0 : 1);
    }
    if (IS(NULL, "--version")) {
      printf("lzn-run %s\n", lzn_version_string());
      exit(fflush(stdout) == 0 ? 0 : 1);
    }
    if (IS("-i", "--interactive")) { o.interactive = 1; continue; }
    if (IS("-cnv", "--conversation") || IS(NULL, "--chat")) { o.chat = o.interactive = 1; continue; }
    if (IS("-e", "--escape")) { o.escapes = 1; continue; }
    if (IS(NULL, "--no-mmap")) { o.no_mmap = 1; continue; }
    /* Options with a value. */
    static const char *const with_value[] = {
        "-m", "--model", "-p", "--prompt", "-f", "--file", "-n", "--n-predict", "-c", "--ctx-size",
        "-t", "--threads", "-s", "--seed", "--temp", "--top-k", "--top-p", "--min-p",
        "--repeat-penalty", "--repeat-last-n", "--mode", "--type", "--predictor", "--chat-template",
        "--pack-budget", "--predictor-type"};
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) known |= strcmp(a, with_value[k]) == 0;
    if (!known) usage_error(a, NULL, "unknown option");
    if (i + 1 >= argc) usage_error(a, NULL, "needs a value");
    const char *v = argv[++i];
    if (IS("-m", "--model")) o.model = v;
    else if (IS("-p", "--prompt")) o.prompt = v;
    else if (IS("-f", "--file")) o.prompt_file = v;
    else if (IS("-n", "--n-predict")) o.n_predict = (int)parse_int(a, v, -1, 1 << 30);
    else if (IS("-c", "--ctx-size")) o.n_ctx = (int)parse_int(a, v, 0, 1 << 24);
    else if (IS("-t", "--threads")) o.n_threads = (int)parse_int(a, v, 1, 1024);
    else if (IS("-s", "--seed")) o.sampling.seed = parse_seed(a, v, &o.seed_random);
    else if (IS(NULL, "--temp")) o.sampling.temperature = parse_float(a, v, 0, 0, 1e6);
    else if (IS(NULL, "--top-k")) o.sampling.top_k = (int)parse_int(a, v, 0, 1 << 30);
    else if (IS(NULL, "--top-p")) o.sampling.top_p = parse_float(a, v, 0, 1, 1);
    else if (IS(NULL, "--min-p")) o.sampling.min_p = parse_float(a, v, 0, 0, 1);
    else if (IS(NULL, "--repeat-penalty")) o.sampling.repetition_penalty = parse_float(a, v, 0, 1, 1e6);
    else if (IS(NULL, "--repeat-last-n")) o.sampling.repeat_last_n = (int)parse_int(a, v, 0, 1 << 20);
    else if (IS(NULL, "--mode")) {
      int found = -1;
      for (int k = 0; k < 3; k++)
        if (strcmp(v, mode_names[k]) == 0) found = k;
      if (found < 0) usage_error(a, v, "expected auto, sparse or dense");
      o.mode = (lzn_mlp_mode)found;
    } else if (IS(NULL, "--type") || IS(NULL, "--predictor-type")) {
      if (!lzn_cli_weight_type_from_name(v, IS(NULL, "--type") ? &o.type : &o.predictor_type))
        usage_error(a, v, "expected one of the weight types (lzn-run --help)");
    } else if (IS(NULL, "--chat-template")) {
      /* A template's own text (Jinja) may be of no known family and falls back
       * to ChatML with a message; a bare word must name a family. */
      if (strchr(v, '{') == NULL && lzn_chat_template_name(v) == NULL)
        usage_error(a, v, "expected chatml, llama2, llama3, mistral, zephyr, phi3, vicuna, gemma or a template's text");
      o.chat_template = v;
    } else if (IS(NULL, "--pack-budget")) {
      o.pack_budget = (size_t)parse_int(a, v, 0, 1L << 30) << 20;
    } else if (IS(NULL, "--predictor")) {
      if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) usage_error(a, v, "expected on or off");
      o.predictor = strcmp(v, "on") == 0;
    }
#undef IS
  }
  if (o.model == NULL) usage_error(NULL, NULL, "-m MODEL is required");
  if (o.prompt && o.prompt_file) usage_error(NULL, NULL, "give -p or -f, not both");
  struct stat st;
  if (o.prompt_file && stat(o.prompt_file, &st) == 0 && S_ISDIR(st.st_mode))
    usage_error("-f", o.prompt_file, "is a directory, not a file");
  return o;
}

/* ------------------------------------------------------------------ text */

/* The whole of a stream, NUL-terminated (the length says where it ends). */
static char *read_all(FILE *f, size_t *len) {
  size_t cap = 4096, n = 0;
  char *s = malloc(cap);
  for (size_t got; s && (got = fread(s + n, 1, cap - n - 1, f)) > 0;) {
    n += got;
    if (cap - n - 1 == 0) {
      char *grown = realloc(s, cap * 2);
      if (grown == NULL) free(s);
      s = grown, cap *= 2;
    }
  }
  if (s) s[n] = '\0';
  *len = n;
  return s;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* -e: llama-cli's escapes (\n \r \t \' \" \\ \xHH) in place; others stay as
 * written. Returns the new length. */
static size_t process_escapes(char *s, size_t len) {
  size_t out = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] != '\\' || i + 1 >= len) {
      s[out++] = s[i];
      continue;
    }
    const char c = s[++i];
    if (c == 'n') s[out++] = '\n';
    else if (c == 'r') s[out++] = '\r';
    else if (c == 't') s[out++] = '\t';
    else if (c == '\'' || c == '"' || c == '\\') s[out++] = c;
    else if (c == 'x' && i + 2 < len && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
      s[out++] = (char)(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
      i += 2;
    } else {
      s[out++] = '\\', s[out++] = c;
    }
  }
  return out;
}

/* ---------------------------------------------------------------- output */

static int write_failed; /* errno of the first failed write, 0 if none */

/* Writes to stdout and flushes (the text streams); a failure is kept in
 * write_failed and ends the run (exit 1). */
static void emit(const char *p, size_t n) {
  if (write_failed) return;
  if ((n && fwrite(p, 1, n, stdout) != n) || fflush(stdout) != 0) write_failed = errno ? errno : EIO;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(const char *what, lzn_status s) {
  fprintf(stderr, "lzn-run: %s: %s: %s\n", what, lzn_status_str(s), lzn_last_error());
  return 1;
}

/* ------------------------------------------------------------ generation */

typedef enum stop_reason { STOP_BUDGET, STOP_EOS, STOP_FULL, STOP_ERROR } stop_reason;

typedef struct run {
  const options *o;
  lzn_context *ctx;
  lzn_sampler *sampler;
  const lzn_tokenizer *tok;
  lzn_tokenizer_info ti;
  float *logits;
  int vocab, n_ctx;
  int32_t pending;          /* the last token sampled, printed but not yet in the cache; -1 none */
  int n_prefill, n_decode;  /* tokens run, for the timings */
  double prefill_s, decode_s;
  lzn_status status;
} run;

/* Runs tokens (after the pending token, if any), then samples and prints up
 * to n_predict tokens. The last token printed stays pending: the next turn
 * runs it first. */
static stop_reason turn(run *r, const int32_t *tokens, int n_tokens) {
  const int has_pending = r->pending >= 0;
  const int n_in = n_tokens + has_pending;
  if (lzn_context_n_past(r->ctx) + n_in > r->n_ctx) return STOP_FULL;
  int32_t *in = malloc(sizeof *in * (size_t)n_in);
  if (in == NULL) {
    r->status = LZN_ERR_NOMEM;
    return STOP_ERROR;
  }
  if (has_pending) in[0] = r->pending;
  memcpy(in + has_pending, tokens, sizeof *in * (size_t)n_tokens);
  for (int i = 0; i < n_tokens; i++)
    if (tokens[i] < r->vocab) lzn_sampler_accept(r->sampler, tokens[i]);
  double t0 = now();
  r->status = lzn_forward(r->ctx, in, n_in, r->logits, LZN_LOGITS_LAST);
  free(in);
  r->prefill_s += now() - t0, r->n_prefill += n_in;
  if (r->status != LZN_OK) return STOP_ERROR;
  r->pending = -1;
  t0 = now();
  stop_reason why = STOP_BUDGET;
  for (int i = 0; r->o->n_predict < 0 || i < r->o->n_predict; i++) {
    int32_t next;
    if ((r->status = lzn_sampler_sample(r->sampler, r->logits, &next)) != LZN_OK) {
      why = STOP_ERROR;
      break;
    }
    if (next == r->ti.eos_id) {
      why = STOP_EOS;
      break;
    }
    char piece[256];
    size_t len;
    if (lzn_token_to_piece(r->tok, next, piece, sizeof piece, &len) == LZN_OK) emit(piece, len);
    /* else an id the model has but the tokenizer lacks (padding rows): no text */
    r->pending = next;
    if (write_failed) break;
    if (r->o->n_predict >= 0 && i + 1 >= r->o->n_predict) break;
    if (lzn_context_n_past(r->ctx) >= r->n_ctx) {
      why = STOP_FULL;
      break;
    }
    if ((r->status = lzn_forward(r->ctx, &next, 1, r->logits, LZN_LOGITS_LAST)) != LZN_OK) {
      why = STOP_ERROR;
      break;
    }
    r->pending = -1, r->n_decode++;
  }
  r->decode_s += now() - t0;
  return why;
}

/* The tokens of text (with BOS at the start of an empty sequence, if the
 * model wants one), malloc'ed into *out. */
static lzn_status tokenize(run *r, const char *text, size_t len, int32_t **out, int *n) {
  const int add_bos = r->ti.add_bos && lzn_context_n_past(r->ctx) == 0 && r->pending < 0;
  *out = NULL, *n = 0;
  lzn_status s = lzn_tokenize(r->tok, text, len, add_bos, NULL, 0, n);
  if (s != LZN_OK && *n == 0) return s;
  if (*n == 0) return LZN_OK;
  if ((*out = malloc(sizeof **out * (size_t)*n)) == NULL) return LZN_ERR_NOMEM;
  return lzn_tokenize(r->tok, text, len, add_bos, *out, *n, n);
}

static void note_full(const run *r) {
  fprintf(stderr, "\nlzn-run: the context is full (%d tokens): generation stopped%s\n", r->n_ctx,
          r->o->n_ctx == 0 ? "" : " (-c sets its length)");
}

/* -i: each line of stdin continues the sequence: the text a line adds is
 * the line itself (plain continuation; -cnv is the chat mode, below). */
static stop_reason interact(run *r) {
  const int terminal = isatty(STDIN_FILENO);
  char *line = NULL;
  size_t cap = 0;
  stop_reason why = STOP_BUDGET;
  for (;;) {
    if (terminal) fputs("\n> ", stderr);
    const ssize_t got = getline(&line, &cap, stdin);
    if (got < 0) break; /* EOF: leave */
    size_t len = (size_t)got;
    if (r->o->escapes) len = process_escapes(line, len);
    if (!terminal) emit(line, len); /* stdout keeps the whole sequence */
    int32_t *tokens;
    int n;
    if ((r->status = tokenize(r, line, len, &tokens, &n)) != LZN_OK) {
      why = STOP_ERROR;
      break;
    }
    why = n > 0 ? turn(r, tokens, n) : STOP_BUDGET;
    free(tokens);
    if (why == STOP_FULL) note_full(r);
    if (why == STOP_FULL || why == STOP_ERROR || write_failed) break;
  }
  free(line);
  return why;
}

/* ------------------------------------------------------------------ chat */

/* -cnv: the conversation so far, and the tokens of it in the KV cache. Each
 * turn renders the whole conversation through the chat template, keeps the
 * cache's longest prefix that the new rendering shares (the history: only
 * new tokens run), and streams the reply until the end-of-turn text the
 * template puts after a reply, or the end-of-text token. */
typedef struct chat {
  const char *tmpl;          /* template text or family name; NULL: ChatML */
  lzn_chat_message *msgs;
  size_t n_msgs, cap_msgs, n_system;
  char *end_of_turn;         /* the text after a reply, trimmed ("" : none) */
  int32_t *cached;           /* the tokens in the cache, in order */
  int n_cached, cap_cached;
} chat;

static int chat_push(chat *c, const char *role, const char *content, size_t len) {
  if (c->n_msgs == c->cap_msgs) {
    const size_t cap = c->cap_msgs ? 2 * c->cap_msgs : 8;
    lzn_chat_message *grown = realloc(c->msgs, sizeof *grown * cap);
    if (grown == NULL) return 0;
    c->msgs = grown, c->cap_msgs = cap;
  }
  char *copy = malloc(len + 1);
  if (copy == NULL) return 0;
  memcpy(copy, content, len), copy[len] = '\0';
  c->msgs[c->n_msgs++] = (lzn_chat_message){role, copy};
  return 1;
}

static int chat_cache(chat *c, int32_t token) {
  if (c->n_cached == c->cap_cached) {
    const int cap = c->cap_cached ? 2 * c->cap_cached : 256;
    int32_t *grown = realloc(c->cached, sizeof *grown * (size_t)cap);
    if (grown == NULL) return 0;
    c->cached = grown, c->cap_cached = cap;
  }
  c->cached[c->n_cached++] = token;
  return 1;
}

/* The text a template puts after an assistant's reply ("<|im_end|>" for
 * ChatML), found by rendering a reply made of one marker byte. */
static char *end_of_turn_text(const char *tmpl) {
  const lzn_chat_message probe[2] = {{"user", "u"}, {"assistant", "\x01"}};
  char buf[512];
  size_t len;
  if (lzn_chat_apply_template(tmpl, probe, 2, 0, buf, sizeof buf, &len) != LZN_OK) return strdup("");
  const char *mark = strchr(buf, '\x01');
  const char *start = mark ? mark + 1 : buf + len, *end = buf + len;
  while (start < end && isspace((unsigned char)*start)) start++;
  while (end > start && isspace((unsigned char)end[-1])) end--;
  char *out = malloc((size_t)(end - start) + 1);
  if (out) memcpy(out, start, (size_t)(end - start)), out[end - start] = '\0';
  return out;
}

/* The conversation rendered with the assistant's turn opened, tokenized. */
static lzn_status chat_tokens(run *r, const chat *c, int32_t **out, int *n) {
  size_t len;
  lzn_status s = lzn_chat_apply_template(c->tmpl, c->msgs, c->n_msgs, 1, NULL, 0, &len);
  if (s != LZN_OK && s != LZN_ERR_INVALID_ARG) return s;
  char *text = malloc(len + 1);
  if (text == NULL) return LZN_ERR_NOMEM;
  s = lzn_chat_apply_template(c->tmpl, c->msgs, c->n_msgs, 1, text, len + 1, &len);
  *out = NULL, *n = 0;
  if (s == LZN_OK) s = lzn_tokenize(r->tok, text, len, r->ti.add_bos, NULL, 0, n);
  if (s == LZN_ERR_INVALID_ARG && *n > 0) s = LZN_OK; /* it said how many */
  if (s == LZN_OK && (*out = malloc(sizeof **out * (size_t)(*n ? *n : 1))) == NULL) s = LZN_ERR_NOMEM;
  if (s == LZN_OK) s = lzn_tokenize(r->tok, text, len, r->ti.add_bos, *out, *n, n);
  free(text);
  return s;
}

/* One reply: the new tokens of the rendering run (after the cache's shared
 * prefix), then the reply streamed, held back where it may be the start of
 * the end-of-turn text, and added to the conversation. */
static stop_reason chat_turn(run *r, chat *c, int turn_index) {
  int32_t *tokens;
  int n;
  if ((r->status = chat_tokens(r, c, &tokens, &n)) != LZN_OK) return STOP_ERROR;
  int keep = 0;
  while (keep < n && keep < c->n_cached && tokens[keep] == c->cached[keep]) keep++;
  if (keep == n && keep > 0) keep--; /* run at least one token: its logits start the reply */
  if (n > r->n_ctx) {
    free(tokens);
    return STOP_FULL;
  }
  lzn_context_truncate(r->ctx, keep);
  c->n_cached = keep;
  fprintf(stderr, "[turn %d: %d tokens of the conversation kept in the cache, %d new]\n", turn_index, keep,
          n - keep);
  double t0 = now();
  r->status = lzn_forward(r->ctx, tokens + keep, n - keep, r->logits, LZN_LOGITS_LAST);
  r->prefill_s += now() - t0, r->n_prefill += n - keep;
  for (int i = keep; r->status == LZN_OK && i < n; i++)
    if (!chat_cache(c, tokens[i])) r->status = LZN_ERR_NOMEM;
  free(tokens);
  if (r->status != LZN_OK) return STOP_ERROR;
  const char *stops[1] = {c->end_of_turn};
  const int n_stops = c->end_of_turn[0] ? 1 : 0;
  char *reply = NULL;
  size_t len = 0, cap = 0, shown = 0;
  stop_reason why = STOP_BUDGET;
  t0 = now();
  for (int i = 0; r->o->n_predict < 0 || i < r->o->n_predict; i++) {
    int32_t next;
    if ((r->status = lzn_sampler_sample(r->sampler, r->logits, &next)) != LZN_OK) {
      why = STOP_ERROR;
      break;
    }
    if (next == r->ti.eos_id) {
      why = STOP_EOS;
      break;
    }
    char piece[256];
    size_t plen = 0;
    if (lzn_token_to_piece(r->tok, next, piece, sizeof piece, &plen) != LZN_OK) plen = 0;
    if (len + plen + 1 > cap) {
      cap = 2 * (len + plen + 1);
      char *grown = realloc(reply, cap);
      if (grown == NULL) {
        r->status = LZN_ERR_NOMEM, why = STOP_ERROR;
        break;
      }
      reply = grown;
    }
    memcpy(reply + len, piece, plen);
    const size_t from = len;
    len += plen;
    size_t at;
    if (n_stops && stop_find(reply, len, from, stops, n_stops, &at)) {
      len = at;
      why = STOP_EOS;
    }
    const size_t hold = why == STOP_EOS ? 0 : stop_partial_tail(reply, len, stops, n_stops);
    if (len - hold > shown) emit(reply + shown, len - hold - shown), shown = len - hold;
    if (lzn_context_n_past(r->ctx) >= r->n_ctx) {
      why = STOP_FULL;
      break;
    }
    if ((r->status = lzn_forward(r->ctx, &next, 1, r->logits, LZN_LOGITS_LAST)) != LZN_OK || !chat_cache(c, next)) {
      if (r->status == LZN_OK) r->status = LZN_ERR_NOMEM;
      why = STOP_ERROR;
      break;
    }
    r->n_decode++;
    if (why == STOP_EOS || write_failed) break;
  }
  r->decode_s += now() - t0;
  if (len > shown) emit(reply + shown, len - shown);
  emit("\n", 1);
  if (why != STOP_ERROR && !chat_push(c, "assistant", reply ? reply : "", len)) r->status = LZN_ERR_NOMEM, why = STOP_ERROR;
  free(reply);
  return why;
}

/* -cnv: lines of stdin as user messages until EOF; /reset forgets all but
 * the system message. */
static stop_reason converse(run *r, const char *system, size_t system_len) {
  chat c;
  memset(&c, 0, sizeof c);
  c.tmpl = r->o->chat_template ? r->o->chat_template : lzn_tokenizer_chat_template(r->tok);
  if (c.tmpl != NULL && lzn_chat_template_name(c.tmpl) == NULL) {
    fprintf(stderr, "lzn-run: the chat template %s is of no family lzn-run renders: using ChatML\n",
            r->o->chat_template ? "given" : "of the model");
    c.tmpl = NULL;
  }
  fprintf(stderr, "lzn-run: chat template %s%s\n", lzn_chat_template_name(c.tmpl),
          c.tmpl == NULL ? " (the default)" : "");
  c.end_of_turn = end_of_turn_text(c.tmpl);
  stop_reason why = STOP_BUDGET;
  if (c.end_of_turn == NULL || (system_len > 0 && !chat_push(&c, "system", system, system_len))) {
    r->status = LZN_ERR_NOMEM;
    why = STOP_ERROR;
  }
  c.n_system = c.n_msgs;
  const int terminal = isatty(STDIN_FILENO);
  char *line = NULL;
  size_t line_cap = 0;
  for (int turn_index = 1; why != STOP_ERROR;) {
    if (terminal) fputs("\n> ", stderr);
    const ssize_t got = getline(&line, &line_cap, stdin);
    if (got < 0) break; /* EOF: leave */
    size_t len = (size_t)got;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    if (r->o->escapes) len = process_escapes(line, len);
    if (len == 6 && memcmp(line, "/reset", 6) == 0) {
      for (size_t i = c.n_system; i < c.n_msgs; i++) free((char *)c.msgs[i].content);
      c.n_msgs = c.n_system;
      fprintf(stderr, "[the conversation starts over]\n");
      continue;
    }
    if (!chat_push(&c, "user", line, len)) {
      r->status = LZN_ERR_NOMEM, why = STOP_ERROR;
      break;
    }
    why = chat_turn(r, &c, turn_index++);
    if (why == STOP_FULL) note_full(r);
    if (why == STOP_FULL || why == STOP_ERROR || write_failed) break;
  }
  for (size_t i = 0; i < c.n_msgs; i++) free((char *)c.msgs[i].content);
  free(c.msgs), free(c.cached), free(c.end_of_turn), free(line);
  return why;
}

static void print_stats(const run *r, int n_layers) {
  lzn_layer_stats *st = calloc((size_t)n_layers, sizeof *st);
  if (st != NULL) st[0].struct_size = sizeof *st;
  if (st == NULL || lzn_context_stats(r->ctx, st, n_layers) != LZN_OK) {
    free(st);
    return;
  }
  double tokens = 0, active = 0, flops_d = 0, flops_x = 0, bytes_d = 0, bytes_x = 0;
  for (int l = 0; l < n_layers; l++) {
    tokens += (double)st[l].tokens, active += st[l].active_fraction * (double)st[l].tokens;
    flops_d += st[l].flops_dense, flops_x += st[l].flops_executed;
    bytes_d += st[l].bytes_dense, bytes_x += st[l].bytes_executed;
  }
  fprintf(stderr, "\n\nprefill: %d tokens in %.3f s (%.1f t/s)\n", r->n_prefill, r->prefill_s,
          r->prefill_s > 0 ? r->n_prefill / r->prefill_s : 0.0);
  fprintf(stderr, "decode:  %d tokens in %.3f s (%.1f t/s)\n", r->n_decode, r->decode_s,
          r->decode_s > 0 && r->n_decode > 0 ? r->n_decode / r->decode_s : 0.0);
  fprintf(stderr, "MLP: %.1f %% of neurons active (mean over layers and tokens), %.1f %% of its "
          "FLOPs and %.1f %% of its bytes saved against dense\n",
          tokens > 0 ? 100 * active / tokens : 0.0, flops_d > 0 ? 100 * (1 - flops_x / flops_d) : 0.0,
          bytes_d > 0 ? 100 * (1 - bytes_x / bytes_d) : 0.0);
  free(st);
}

/* The prompt: -p, -f or (without -i) all of stdin; with -i and neither, "". */
static char *read_prompt(const options *o, size_t *len) {
  char *prompt;
  if (o->prompt || (o->interactive && !o->prompt_file)) {
    const char *p = o->prompt ? o->prompt : "";
    *len = strlen(p);
    if ((prompt = malloc(*len + 1)) != NULL) memcpy(prompt, p, *len + 1);
  } else {
    FILE *f = o->prompt_file ? fopen(o->prompt_file, "rb") : stdin;
    if (f == NULL) {
      fprintf(stderr, "lzn-run: -f %s: %s\n", o->prompt_file, strerror(errno));
      exit(1);
    }
    prompt = read_all(f, len);
    if (f != stdin) fclose(f);
  }
  if (prompt && o->escapes) *len = process_escapes(prompt, *len);
  return prompt;
}

int main(int argc, char **argv) {
  const options o = parse(argc, argv);
  signal(SIGPIPE, SIG_IGN); /* a reader that went away is a write error: exit 1 */
  size_t prompt_len = 0;
  char *prompt = read_prompt(&o, &prompt_len);
  if (prompt == NULL) return fail("reading the prompt", LZN_ERR_NOMEM);

  /* params_init, not the by-value defaults: those are the 0.3 struct, which
   * has no pack_budget. */
  lzn_model_params mp;
  lzn_model_params_init(&mp, sizeof mp);
  mp.weight_type = o.type, mp.pack_budget = o.pack_budget, mp.n_threads = o.n_threads;
  mp.predictor_type = o.predictor_type;
  mp.use_mmap = !o.no_mmap;
  lzn_model *model = NULL;
  run r;
  memset(&r, 0, sizeof r);
  r.o = &o, r.pending = -1;
  int32_t *tokens = NULL;
  int rc = 1;
  const double t_load = now();
  lzn_status s = lzn_model_load(o.model, &mp, &model);
  if (s != LZN_OK) {
    rc = fail("lzn_model_load", s);
    goto done;
  }
  lzn_model_info info = {.struct_size = sizeof info};
  if ((s = lzn_model_get_tokenizer(model, &r.tok)) != LZN_OK) {
    rc = fail(o.model, s);
    goto done;
  }
  r.ti.struct_size = sizeof r.ti;
  lzn_tokenizer_get_info(r.tok, &r.ti);
  lzn_model_get_info(model, &info);
  lzn_context_params cp = lzn_context_default_params();
  cp.n_threads = o.n_threads, cp.mlp_mode = o.mode, cp.n_ctx = o.n_ctx, cp.use_predictor = o.predictor;
  if ((s = lzn_context_create(model, &cp, &r.ctx)) != LZN_OK) {
    rc = fail("lzn_context_create", s);
    goto done;
  }
  lzn_sampler_params sp = o.sampling;
  if (o.seed_random) sp.seed = random_seed();
  if ((s = lzn_sampler_create(&sp, info.vocab_size, &r.sampler)) != LZN_OK) {
    rc = fail("lzn_sampler_create", s);
    goto done;
  }
  r.vocab = info.vocab_size, r.n_ctx = o.n_ctx ? o.n_ctx : info.max_positions;
  const double load_s = now() - t_load;
  fprintf(stderr, "lzn-run: %s: %s, %d layers, %s weights (%.1f MB; %.1f MB packed), isa %s, %d thread%s, "
          "mode %s, predictor %s, context %d, loaded in %.2f s, seed %llu\n",
          o.model, info.architecture, info.n_layers, lzn_cli_weight_type_name(info.weight_type),
          (double)info.weight_bytes / 1e6, (double)info.packed_bytes / 1e6, lzn_isa_name(), o.n_threads, o.n_threads == 1 ? "" : "s",
          mode_names[o.mode], !info.has_predictor ? "none" : o.predictor ? "on" : "off", r.n_ctx,
          load_s, (unsigned long long)sp.seed);
  r.logits = malloc(sizeof *r.logits * (size_t)info.vocab_size);
  if (r.logits == NULL) {
    rc = fail("lzn-run", LZN_ERR_NOMEM);
    goto done;
  }
  if (o.chat) { /* the prompt is the system message */
    const stop_reason why = converse(&r, prompt, prompt_len);
    if (write_failed) {
      if (write_failed != EPIPE) fprintf(stderr, "lzn-run: writing the output: %s\n", strerror(write_failed));
      goto done;
    }
    if (why == STOP_ERROR) {
      rc = fail("chat", r.status);
      goto done;
    }
    print_stats(&r, info.n_layers);
    rc = 0;
    goto done;
  }
  int n_prompt = 0;
  if ((s = tokenize(&r, prompt, prompt_len, &tokens, &n_prompt)) != LZN_OK) {
    rc = fail("lzn_tokenize", s);
    goto done;
  }
  if (n_prompt == 0 && !o.interactive) {
    fprintf(stderr, "lzn-run: the prompt is empty\n");
    goto done;
  }
  if (n_prompt > r.n_ctx) {
    fprintf(stderr, "lzn-run: the prompt is %d tokens, the context holds %d\n", n_prompt, r.n_ctx);
    goto done;
  }
  emit(prompt, prompt_len);
  stop_reason why = n_prompt > 0 ? turn(&r, tokens, n_prompt) : STOP_BUDGET;
  if (why == STOP_FULL) note_full(&r);
  if (o.interactive && why != STOP_ERROR && why != STOP_FULL && !write_failed) why = interact(&r);
  if (write_failed) {
    if (write_failed != EPIPE) fprintf(stderr, "lzn-run: writing the output: %s\n", strerror(write_failed));
    goto done; /* EPIPE: the reader went away (| head); nothing to tell it */
  }
  if (why == STOP_ERROR) {
    rc = fail("generation", r.status);
    goto done;
  }
  print_stats(&r, info.n_layers);
  rc = 0;
done:
  free(prompt), free(tokens), free(r.logits);
  lzn_sampler_free(r.sampler);
  lzn_context_free(r.ctx);
  lzn_model_free(model);
  return rc;
}
