/*
 * generate.c: text generation with a byte-level model (token id == byte),
 * run once with the sparse MLP and once with the dense one, to show what
 * activation sparsity saves.
 *
 *   generate [--tokens N] [--temperature T] [--seed S] [--threads N]
 *            [--top-k K] MODEL_DIR "prompt"
 *
 * Greedy by default (temperature 0); with a temperature, sampling uses its
 * own generator seeded by --seed, so the output is the same on every run.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lazyneuron.h>

/* OPT's eos_token_id, the byte that ends a text in the demo model. */
#define LZN_OPT_EOS 2

typedef struct options {
  const char *model_dir, *prompt;
  int n_tokens, n_threads, top_k;
  float temperature;
  unsigned long long seed;
} options;

static void usage(void) {
  fprintf(stderr, "usage: generate [--tokens N] [--temperature T] [--seed S] [--threads N]\n"
                  "                [--top-k K] MODEL_DIR \"prompt\"\n");
  exit(2);
}

static options parse(int argc, char **argv) {
  options o = {NULL, NULL, 64, 1, 0, 0.0f, 42};
  int positional = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 < argc && strcmp(a, "--tokens") == 0) o.n_tokens = atoi(argv[++i]);
    else if (i + 1 < argc && strcmp(a, "--threads") == 0) o.n_threads = atoi(argv[++i]);
    else if (i + 1 < argc && strcmp(a, "--top-k") == 0) o.top_k = atoi(argv[++i]);
    else if (i + 1 < argc && strcmp(a, "--temperature") == 0) o.temperature = (float)atof(argv[++i]);
    else if (i + 1 < argc && strcmp(a, "--seed") == 0) o.seed = strtoull(argv[++i], NULL, 10);
    else if (a[0] == '-' && a[1] == '-') usage();
    else if (positional == 0) o.model_dir = a, positional++;
    else if (positional == 1) o.prompt = a, positional++;
    else usage();
  }
  if (!o.model_dir || !o.prompt || o.prompt[0] == '\0' || o.n_tokens < 1) usage();
  return o;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(const char *what, lzn_status s) {
  fprintf(stderr, "%s: %s: %s\n", what, lzn_status_str(s), lzn_last_error());
  return 1;
}

/* Greedy argmax, or a sample from softmax(logits / temperature). */
static int32_t pick(const float *logits, int vocab, float temperature, unsigned long long *rng) {
  int32_t best = 0;
  for (int i = 1; i < vocab; i++)
    if (logits[i] > logits[best]) best = i;
  if (temperature <= 0.0f) return best;
  double total = 0.0;
  for (int i = 0; i < vocab; i++) total += exp((logits[i] - logits[best]) / temperature);
  /* SplitMix64: well mixed from the first draw, whatever the seed. */
  unsigned long long z = (*rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  double r = (double)(z >> 11) / 9007199254740992.0 * total;
  for (int i = 0; i < vocab; i++) {
    r -= exp((logits[i] - logits[best]) / temperature);
    if (r <= 0.0) return i;
  }
  return best;
}

typedef struct run {
  char text[4096];
  double prefill_s, decode_s;
  int n_generated;
  lzn_layer_stats stats[256];
} run;

static int generate(const lzn_model *model, const options *o, lzn_mlp_mode mode, run *r) {
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_model_get_info(model, &info);
  lzn_context_params cp = lzn_context_default_params();
  cp.mlp_mode = mode;
  cp.n_threads = o->n_threads;
  cp.top_k = o->top_k;
  lzn_context *ctx;
  lzn_status s = lzn_context_create(model, &cp, &ctx);
  if (s != LZN_OK) return fail("lzn_context_create", s);

  const int n_prompt = (int)strlen(o->prompt);
  int32_t *tokens = malloc(sizeof(int32_t) * (size_t)n_prompt);
  float *logits = malloc(sizeof(float) * (size_t)info.vocab_size);
  for (int i = 0; i < n_prompt; i++) tokens[i] = (unsigned char)o->prompt[i];
  unsigned long long rng = o->seed;
  int budget = o->n_tokens;
  if (budget > info.max_positions - n_prompt) budget = info.max_positions - n_prompt;
  if (budget > (int)sizeof r->text - 1) budget = (int)sizeof r->text - 1;

  double t0 = now();
  s = lzn_forward(ctx, tokens, n_prompt, logits, LZN_LOGITS_LAST);
  r->prefill_s = now() - t0;
  r->n_generated = 0;
  t0 = now();
  for (int i = 0; s == LZN_OK && i < budget; i++) {
    int32_t next = pick(logits, info.vocab_size, o->temperature, &rng);
    if (next == LZN_OPT_EOS) break; /* OPT's end of text (it ends each fortune) */
    r->text[r->n_generated++] = next < 256 ? (char)next : '?';
    if (i + 1 < budget) s = lzn_forward(ctx, &next, 1, logits, LZN_LOGITS_LAST);
  }
  r->decode_s = now() - t0;
  r->text[r->n_generated] = '\0';
  r->stats[0].struct_size = sizeof r->stats[0];
  if (s == LZN_OK) s = lzn_context_stats(ctx, r->stats, 256);
  free(tokens), free(logits);
  lzn_context_free(ctx);
  return s == LZN_OK ? 0 : fail("lzn_forward", s);
}

int main(int argc, char **argv) {
  const options o = parse(argc, argv);
  lzn_model *model;
  lzn_status s = lzn_model_load(o.model_dir, NULL, &model);
  if (s != LZN_OK) return fail("lzn_model_load", s);
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_model_get_info(model, &info);
  if (info.vocab_size < 256) {
    fprintf(stderr, "generate: %s has %d tokens, not a byte-level model\n", o.model_dir,
            info.vocab_size);
    lzn_model_free(model);
    return 1;
  }
  /* Each mode runs twice and the second run is timed: the first pays for
   * page faults on the mapped weights and oneDNN's primitive creation. */
  static run sparse, dense;
  for (int round = 0; round < 2; round++)
    if (generate(model, &o, LZN_MLP_SPARSE, &sparse) || generate(model, &o, LZN_MLP_DENSE, &dense)) {
      lzn_model_free(model);
      return 1;
    }
  printf("model: %s (%d layers, d_model %d, d_ff %d) | kernels: %s | threads: %d%s\n\n",
         o.model_dir, info.n_layers, info.d_model, info.d_ff, lzn_isa_name(), o.n_threads,
         o.top_k ? " | top-k on" : "");
  const int tty = isatty(STDOUT_FILENO); /* bold continuation on a terminal only */
  /* Bytes as generated (a 0 byte must not end the text). */
  printf("%s%s", o.prompt, tty ? "\033[1m" : "");
  fwrite(sparse.text, 1, (size_t)sparse.n_generated, stdout);
  printf("%s\n\n", tty ? "\033[0m" : "");
  if (sparse.n_generated != dense.n_generated ||
      memcmp(sparse.text, dense.text, (size_t)sparse.n_generated) != 0)
    printf("(the dense run's continuation differs: a near-tie sampled the other way)\n\n");

  /* Generating n bytes takes n - 1 decode calls (the first comes from the prefill). */
  const int n_dec = sparse.n_generated - 1;
  printf("%-7s %14s %14s\n", "mode", "prefill tok/s", "decode tok/s");
  printf("%-7s %14.1f %14.1f\n", "sparse", (double)strlen(o.prompt) / sparse.prefill_s,
         n_dec > 0 ? n_dec / sparse.decode_s : 0.0);
  printf("%-7s %14.1f %14.1f\n\n", "dense", (double)strlen(o.prompt) / dense.prefill_s,
         n_dec > 0 ? n_dec / dense.decode_s : 0.0);

  printf("%-6s %9s %12s %13s %12s\n", "layer", "active %", "never fired", "FLOPs saved", "bytes saved");
  double flops_d = 0, flops_x = 0, bytes_d = 0, bytes_x = 0;
  for (int l = 0; l < info.n_layers && l < 256; l++) {
    const lzn_layer_stats *st = &sparse.stats[l];
    printf("%-6d %9.1f %7lld/%-4d %12.1f%% %11.1f%%\n", l, 100 * st->active_fraction,
           (long long)st->never_fired, info.d_ff, 100 * (1 - st->flops_executed / st->flops_dense),
           100 * (1 - st->bytes_executed / st->bytes_dense));
    flops_d += st->flops_dense, flops_x += st->flops_executed;
    bytes_d += st->bytes_dense, bytes_x += st->bytes_executed;
  }
  printf("%-6s %9s %12s %12.1f%% %11.1f%%\n", "all", "", "", 100 * (1 - flops_x / flops_d),
         100 * (1 - bytes_x / bytes_d));
  printf("\n(down-projection FLOPs and W_down bytes of the sparse run against a dense one;\n"
         " the prompt is one prefill call, which reads each row of its union once)\n");
  lzn_model_free(model);
  return 0;
}
