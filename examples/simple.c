/*
 * simple.c: load an OPT folder, run a prompt of token ids, print the five
 * most likely next tokens and what the MLP sparsity saved, layer by layer.
 *
 *   simple [--mode sparse|dense|auto] [--threads N] MODEL_DIR [TOKEN_ID...]
 *
 * Build against an installed copy:
 *   cc -o simple simple.c $(pkg-config --cflags --libs lazyneuron)
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lazyneuron.h>

#define TOP_K 5

/* Ids that exist in every vocabulary: OPT's bos/eos is 2. */
static const int32_t default_prompt[] = {2, 5, 7, 11, 3};

static void usage(FILE *to, const char *argv0) {
  fprintf(to,
          "usage: %s [--mode sparse|dense|auto] [--threads N] MODEL_DIR [TOKEN_ID...]\n"
          "  Runs the token ids (default: 2 5 7 11 3) through the model and prints the\n"
          "  top-%d next tokens and the per-layer MLP sparsity statistics.\n",
          argv0, TOP_K);
}

/* Reports a failed lazyneuron call: its status name and the message it left. */
static void report(const char *what, lzn_status status) {
  fprintf(stderr, "simple: %s failed: %s: %s\n", what, lzn_status_str(status), lzn_last_error());
}

/* Parses a whole decimal string into [lo, hi]; returns 0 on any junk. */
static int parse_long(const char *text, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) return 0;
  *out = v;
  return 1;
}

static int parse_mode(const char *text, lzn_mlp_mode *out) {
  if (strcmp(text, "sparse") == 0) *out = LZN_MLP_SPARSE;
  else if (strcmp(text, "dense") == 0) *out = LZN_MLP_DENSE;
  else if (strcmp(text, "auto") == 0) *out = LZN_MLP_AUTO;
  else return 0;
  return 1;
}

static const char *mode_name(lzn_mlp_mode mode) {
  return mode == LZN_MLP_SPARSE ? "sparse" : mode == LZN_MLP_DENSE ? "dense" : "auto";
}

/* Indices of the k largest logits, best first (k is tiny: a selection pass). */
static void top_k(const float *logits, int n, int k, int *best) {
  for (int r = 0; r < k; r++) {
    int arg = -1;
    for (int i = 0; i < n; i++) {
      int taken = 0;
      for (int q = 0; q < r; q++) taken |= best[q] == i;
      if (!taken && (arg < 0 || logits[i] > logits[arg])) arg = i;
    }
    best[r] = arg;
  }
}

int main(int argc, char **argv) {
  lzn_mlp_mode mode = LZN_MLP_AUTO;
  long n_threads = 1;
  const char *model_dir = NULL;
  int32_t *prompt = NULL;
  int n_prompt = 0;

  /* Options may come anywhere; the first other argument is the model. */
  prompt = malloc((size_t)argc * sizeof *prompt);
  if (prompt == NULL) {
    fprintf(stderr, "simple: out of memory\n");
    return 1;
  }
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
      usage(stdout, argv[0]);
      free(prompt);
      return 0;
    } else if (strcmp(arg, "--mode") == 0 || strcmp(arg, "--threads") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "simple: %s needs a value\n", arg);
        free(prompt);
        return 1;
      }
      const char *value = argv[++i];
      int ok = arg[2] == 'm' ? parse_mode(value, &mode) : parse_long(value, 1, 1024, &n_threads);
      if (!ok) {
        fprintf(stderr, "simple: bad value for %s: '%s'\n", arg, value);
        usage(stderr, argv[0]);
        free(prompt);
        return 1;
      }
    } else if (model_dir == NULL) {
      model_dir = arg;
    } else {
      long id;
      /* Only the syntax is checked here: the library checks the vocabulary. */
      if (!parse_long(arg, INT32_MIN, INT32_MAX, &id)) {
        fprintf(stderr, "simple: '%s' is not a token id\n", arg);
        free(prompt);
        return 1;
      }
      prompt[n_prompt++] = (int32_t)id;
    }
  }
  if (model_dir == NULL) {
    usage(stderr, argv[0]);
    free(prompt);
    return 1;
  }
  if (n_prompt == 0) {
    n_prompt = (int)(sizeof default_prompt / sizeof default_prompt[0]);
    memcpy(prompt, default_prompt, sizeof default_prompt);
  }

  int exit_code = 1;
  lzn_model *model = NULL;
  lzn_context *ctx = NULL;
  float *logits = NULL;
  lzn_layer_stats *stats = NULL;
  lzn_status s;

  /* _init, not lzn_model_default_params(): that returns the 0.3 struct,
   * whose later fields (down_t_type, pack_budget) the library ignores. */
  lzn_model_params mp;
  lzn_model_params_init(&mp, sizeof mp);
  if ((s = lzn_model_load(model_dir, &mp, &model)) != LZN_OK) {
    report("lzn_model_load", s);
    goto done;
  }
  lzn_model_info info = {.struct_size = sizeof info};
  if ((s = lzn_model_get_info(model, &info)) != LZN_OK) {
    report("lzn_model_get_info", s);
    goto done;
  }

  lzn_context_params cp = lzn_context_default_params();
  cp.n_threads = (int)n_threads;
  cp.mlp_mode = mode;
  cp.collect_stats = 1;
  if ((s = lzn_context_create(model, &cp, &ctx)) != LZN_OK) {
    report("lzn_context_create", s);
    goto done;
  }

  logits = malloc((size_t)info.vocab_size * sizeof *logits);
  stats = malloc((size_t)info.n_layers * sizeof *stats);
  if (logits == NULL || stats == NULL) {
    fprintf(stderr, "simple: out of memory\n");
    goto done;
  }
  stats[0].struct_size = sizeof *stats; /* each element's size, for the library */
  if ((s = lzn_forward(ctx, prompt, n_prompt, logits, LZN_LOGITS_LAST)) != LZN_OK) {
    report("lzn_forward", s);
    goto done;
  }
  if ((s = lzn_context_stats(ctx, stats, info.n_layers)) != LZN_OK) {
    report("lzn_context_stats", s);
    goto done;
  }

  const char *isa = lzn_isa_name();
  printf("lazyneuron %s, isa %s\n", lzn_version_string(), isa ? isa : "(none)");
  printf("model %s: %d layers, d_model %d, d_ff %d, %d heads, vocab %d, max positions %d\n",
         model_dir, info.n_layers, info.d_model, info.d_ff, info.n_heads, info.vocab_size,
         info.max_positions);
  printf("prompt: %d tokens, mode %s, %ld thread%s\n", n_prompt, mode_name(mode), n_threads,
         n_threads == 1 ? "" : "s");

  int best[TOP_K];
  const int k = info.vocab_size < TOP_K ? info.vocab_size : TOP_K;
  top_k(logits, info.vocab_size, k, best);
  printf("\ntop-%d next tokens:\n  rank  token      logit\n", k);
  for (int r = 0; r < k; r++) printf("  %4d  %5d  %9.4f\n", r + 1, best[r], (double)logits[best[r]]);
  printf("next token: %d\n", best[0]);

  printf("\nlayer  tokens  active  never_fired  flops_saved  sparse/dense calls\n");
  for (int l = 0; l < info.n_layers; l++) {
    const lzn_layer_stats *st = &stats[l];
    double flops_saved = st->flops_dense > 0 ? 1.0 - st->flops_executed / st->flops_dense : 0.0;
    printf("%5d  %6lld  %5.1f%%  %5lld/%-5d  %10.1f%%  %lld/%lld\n", l, (long long)st->tokens,
           100.0 * st->active_fraction, (long long)st->never_fired, info.d_ff,
           100.0 * flops_saved, (long long)st->sparse_calls, (long long)st->dense_calls);
  }
  exit_code = 0;

done:
  free(stats);
  free(logits);
  lzn_context_free(ctx);
  lzn_model_free(model);
  free(prompt);
  return exit_code;
}
