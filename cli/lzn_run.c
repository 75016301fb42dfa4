/*
 * lzn_run.c: lzn-run, text generation from the command line.
 *
 *   lzn-run -m MODEL [-p PROMPT | -f FILE] [-n N] [--temp T] [--top-k K]
 *           [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S]
 *           [--threads N] [--mode auto|sparse|dense]
 *           [--type f32|f16|bf16|q8_0|q4_0]
 *
 * Without -p or -f the prompt is read from standard input. Standard output
 * gets the prompt and then the generated text, streamed a token at a time;
 * generation stops after N tokens or at the tokenizer's end-of-text token.
 * Standard error gets the timings (prefill and decode tokens/s) and what
 * the sparse MLP did (mean active fraction, FLOPs and bytes saved against a
 * dense MLP, from lzn_context_stats). --temp 0 is greedy. Sampling is
 * lzn_sampler's, so a seed gives the same text on every run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lazyneuron.h>

typedef struct options {
  const char *model, *prompt, *prompt_file;
  int n_predict, n_threads;
  lzn_mlp_mode mode;
  lzn_weight_type type;
  lzn_sampler_params sampling;
} options;

static void usage(const char *why) {
  if (why) fprintf(stderr, "lzn-run: %s\n", why);
  fprintf(stderr,
          "usage: lzn-run -m MODEL [-p PROMPT | -f FILE] [-n N] [--temp T] [--top-k K]\n"
          "               [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S]\n"
          "               [--threads N] [--mode auto|sparse|dense] [--type f32|f16|bf16|q8_0|q4_0]\n"
          "The prompt comes from -p, -f FILE, or standard input.\n");
  exit(2);
}

static long parse_int(const char *flag, const char *v, long lo, long hi) {
  char *end;
  const long x = strtol(v, &end, 10);
  if (*v == '\0' || *end != '\0' || x < lo || x > hi) {
    fprintf(stderr, "lzn-run: %s %s: expected an integer in [%ld, %ld]\n", flag, v, lo, hi);
    exit(2);
  }
  return x;
}

static float parse_float(const char *flag, const char *v) {
  char *end;
  const float x = strtof(v, &end);
  if (*v == '\0' || *end != '\0') {
    fprintf(stderr, "lzn-run: %s %s: expected a number\n", flag, v);
    exit(2);
  }
  return x;
}

static options parse(int argc, char **argv) {
  options o;
  memset(&o, 0, sizeof o);
  o.n_predict = 128, o.n_threads = 1, o.mode = LZN_MLP_AUTO, o.type = LZN_WEIGHTS_AS_STORED;
  o.sampling = lzn_sampler_default_params();
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) usage(NULL);
    if (i + 1 >= argc) usage("every option takes a value");
    const char *v = argv[++i];
    if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) o.model = v;
    else if (strcmp(a, "-p") == 0 || strcmp(a, "--prompt") == 0) o.prompt = v;
    else if (strcmp(a, "-f") == 0 || strcmp(a, "--file") == 0) o.prompt_file = v;
    else if (strcmp(a, "-n") == 0 || strcmp(a, "--n-predict") == 0)
      o.n_predict = (int)parse_int(a, v, 0, 1 << 30);
    else if (strcmp(a, "--threads") == 0 || strcmp(a, "-t") == 0)
      o.n_threads = (int)parse_int(a, v, 1, 1024);
    else if (strcmp(a, "--temp") == 0) o.sampling.temperature = parse_float(a, v);
    else if (strcmp(a, "--top-k") == 0) o.sampling.top_k = (int)parse_int(a, v, 0, 1 << 30);
    else if (strcmp(a, "--top-p") == 0) o.sampling.top_p = parse_float(a, v);
    else if (strcmp(a, "--min-p") == 0) o.sampling.min_p = parse_float(a, v);
    else if (strcmp(a, "--repeat-penalty") == 0) o.sampling.repetition_penalty = parse_float(a, v);
    else if (strcmp(a, "--repeat-last-n") == 0)
      o.sampling.repeat_last_n = (int)parse_int(a, v, 0, 1 << 20);
    else if (strcmp(a, "--seed") == 0) o.sampling.seed = strtoull(v, NULL, 10);
    else if (strcmp(a, "--mode") == 0) {
      if (strcmp(v, "auto") == 0) o.mode = LZN_MLP_AUTO;
      else if (strcmp(v, "sparse") == 0) o.mode = LZN_MLP_SPARSE;
      else if (strcmp(v, "dense") == 0) o.mode = LZN_MLP_DENSE;
      else usage("--mode is auto, sparse or dense");
    } else if (strcmp(a, "--type") == 0) {
      const char *names[] = {"as-stored", "f32", "f16", "bf16", "q8_0", "q4_0"};
      int found = -1;
      for (int k = 0; k < 6; k++)
        if (strcmp(v, names[k]) == 0) found = k;
      if (found < 0) usage("--type is f32, f16, bf16, q8_0 or q4_0");
      o.type = (lzn_weight_type)found; /* the enum's values, in this order */
    } else {
      fprintf(stderr, "lzn-run: unknown option %s\n", a);
      usage(NULL);
    }
  }
  if (o.model == NULL) usage("-m MODEL is required");
  if (o.prompt && o.prompt_file) usage("give -p or -f, not both");
  return o;
}

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

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(const char *what, lzn_status s) {
  fprintf(stderr, "lzn-run: %s: %s: %s\n", what, lzn_status_str(s), lzn_last_error());
  return 1;
}

static void print_stats(const lzn_context *ctx, int n_layers, int n_prompt, double prefill_s,
                        int n_decoded, double decode_s) {
  lzn_layer_stats *st = calloc((size_t)n_layers, sizeof *st);
  if (st != NULL) st[0].struct_size = sizeof *st;
  if (st == NULL || lzn_context_stats(ctx, st, n_layers) != LZN_OK) {
    free(st);
    return;
  }
  double tokens = 0, active = 0, flops_d = 0, flops_x = 0, bytes_d = 0, bytes_x = 0;
  for (int l = 0; l < n_layers; l++) {
    tokens += (double)st[l].tokens, active += st[l].active_fraction * (double)st[l].tokens;
    flops_d += st[l].flops_dense, flops_x += st[l].flops_executed;
    bytes_d += st[l].bytes_dense, bytes_x += st[l].bytes_executed;
  }
  fprintf(stderr, "\n\nprefill: %d tokens in %.3f s (%.1f t/s)\n", n_prompt, prefill_s,
          prefill_s > 0 ? n_prompt / prefill_s : 0.0);
  fprintf(stderr, "decode:  %d tokens in %.3f s (%.1f t/s)\n", n_decoded, decode_s,
          decode_s > 0 && n_decoded > 0 ? n_decoded / decode_s : 0.0);
  fprintf(stderr, "MLP: %.1f %% of neurons active (mean over layers and tokens), %.1f %% of its "
          "FLOPs and %.1f %% of its bytes saved against dense\n",
          tokens > 0 ? 100 * active / tokens : 0.0, flops_d > 0 ? 100 * (1 - flops_x / flops_d) : 0.0,
          bytes_d > 0 ? 100 * (1 - bytes_x / bytes_d) : 0.0);
  free(st);
}

int main(int argc, char **argv) {
  options o = parse(argc, argv);
  size_t prompt_len = 0;
  char *prompt;
  if (o.prompt) {
    prompt_len = strlen(o.prompt);
    prompt = malloc(prompt_len + 1);
    if (prompt) memcpy(prompt, o.prompt, prompt_len + 1);
  } else {
    FILE *f = o.prompt_file ? fopen(o.prompt_file, "rb") : stdin;
    if (f == NULL) {
      perror(o.prompt_file);
      return 1;
    }
    prompt = read_all(f, &prompt_len);
    if (f != stdin) fclose(f);
  }
  if (prompt == NULL) return fail("reading the prompt", LZN_ERR_NOMEM);

  lzn_model_params mp = lzn_model_default_params();
  mp.weight_type = o.type;
  lzn_model *model = NULL;
  lzn_context *ctx = NULL;
  lzn_sampler *sampler = NULL;
  int32_t *tokens = NULL;
  float *logits = NULL;
  int rc = 1;
  lzn_status s = lzn_model_load(o.model, &mp, &model);
  if (s != LZN_OK) {
    rc = fail("lzn_model_load", s);
    goto done;
  }
  const lzn_tokenizer *tok;
  lzn_tokenizer_info ti = {.struct_size = sizeof ti};
  lzn_model_info info = {.struct_size = sizeof info};
  if ((s = lzn_model_get_tokenizer(model, &tok)) != LZN_OK) {
    rc = fail(o.model, s);
    goto done;
  }
  lzn_tokenizer_get_info(tok, &ti);
  lzn_model_get_info(model, &info);

  lzn_context_params cp = lzn_context_default_params();
  cp.n_threads = o.n_threads, cp.mlp_mode = o.mode;
  if ((s = lzn_context_create(model, &cp, &ctx)) != LZN_OK) {
    rc = fail("lzn_context_create", s);
    goto done;
  }
  if ((s = lzn_sampler_create(&o.sampling, info.vocab_size, &sampler)) != LZN_OK) {
    rc = fail("lzn_sampler_create", s);
    goto done;
  }
  int n_prompt = 0;
  s = lzn_tokenize(tok, prompt, prompt_len, ti.add_bos, NULL, 0, &n_prompt);
  if (s != LZN_OK && n_prompt == 0) {
    rc = fail("lzn_tokenize", s);
    goto done;
  }
  if (n_prompt == 0) {
    fprintf(stderr, "lzn-run: the prompt is empty\n");
    goto done;
  }
  if (n_prompt > info.max_positions) {
    fprintf(stderr, "lzn-run: the prompt is %d tokens, the model holds %d\n", n_prompt,
            info.max_positions);
    goto done;
  }
  tokens = malloc(sizeof *tokens * (size_t)n_prompt);
  logits = malloc(sizeof *logits * (size_t)info.vocab_size);
  if (!tokens || !logits) {
    rc = fail("lzn-run", LZN_ERR_NOMEM);
    goto done;
  }
  if ((s = lzn_tokenize(tok, prompt, prompt_len, ti.add_bos, tokens, n_prompt, &n_prompt)) != LZN_OK) {
    rc = fail("lzn_tokenize", s);
    goto done;
  }
  for (int i = 0; i < n_prompt; i++)
    if (tokens[i] < info.vocab_size) lzn_sampler_accept(sampler, tokens[i]);
  int budget = o.n_predict;
  if (budget > info.max_positions - n_prompt) budget = info.max_positions - n_prompt;

  fwrite(prompt, 1, prompt_len, stdout);
  fflush(stdout);
  double t0 = now();
  s = lzn_forward(ctx, tokens, n_prompt, logits, LZN_LOGITS_LAST);
  const double prefill_s = now() - t0;
  int n_decoded = 0;
  t0 = now();
  for (int i = 0; s == LZN_OK && i < budget; i++) {
    int32_t next;
    if ((s = lzn_sampler_sample(sampler, logits, &next)) != LZN_OK) break;
    if (next == ti.eos_id) break;
    char piece[256];
    size_t len;
    if (lzn_token_to_piece(tok, next, piece, sizeof piece, &len) == LZN_OK) {
      fwrite(piece, 1, len, stdout);
      fflush(stdout);
    } /* else an id the model has but the tokenizer lacks (padding rows): no text */
    if (i + 1 < budget) {
      s = lzn_forward(ctx, &next, 1, logits, LZN_LOGITS_LAST);
      n_decoded++;
    }
  }
  const double decode_s = now() - t0;
  if (s != LZN_OK) {
    rc = fail("generation", s);
    goto done;
  }
  print_stats(ctx, info.n_layers, n_prompt, prefill_s, n_decoded, decode_s);
  rc = 0;
done:
  free(prompt), free(tokens), free(logits);
  lzn_sampler_free(sampler);
  lzn_context_free(ctx);
  lzn_model_free(model);
  return rc;
}
