/*
 * lzn_quantize.c: lzn-quantize, a GGUF model rewritten with its weight
 * matrices in another type (llama-quantize's job, on lzn_model_quantize).
 *
 *   lzn-quantize [--keep-layout] IN.gguf OUT.gguf TYPE
 *
 * Standard output gets one line per step; a failure is one line on standard
 * error naming the file and the rule (lzn_last_error()), exit 1, and OUT is
 * not created (the library writes a temporary file and renames it). Usage
 * errors exit 2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <lazyneuron.h>

#include "weight_names.h"

static const char usage_text[] =
    "usage: lzn-quantize [options] IN.gguf OUT.gguf TYPE\n"
    "Rewrites the GGUF model IN.gguf (one lzn-run loads: lzn-convert's or llama.cpp's, OPT or\n"
    "LLaMA family) as OUT.gguf with its weight matrices in TYPE, keeping the tokenizer and the\n"
    "metadata. Norms, biases, position tables and predictor tensors keep their type.\n"
    "  TYPE          %s (any case: Q8_0 as llama-quantize spells it).\n"
    "                Q8_0/Q4_0 need rows of whole 32-weight blocks, Q4_K/Q5_K/Q6_K of whole\n"
    "                256-weight super-blocks; an input already quantized is dequantized\n"
    "                first (its error adds up).\n"
    "options:\n"
    "  --keep-layout write W_down and the q/k rows as IN has them, so llama.cpp reads OUT if\n"
    "                it read IN (default: lazyneuron's layout, every matrix mapped in place:\n"
    "                W_down transposed as blk.N.ffn_down_t, q/k rows in Hugging Face's order)\n"
    "  -h, --help    this help\n"
    "  --version     the library's version\n"
    "OUT appears only when complete (written under a temporary name and renamed); it may be IN.\n"
    "Exit status: 0 written; 1 the input, the output or the type failed (one line on stderr);\n"
    "2 a usage error.\n";

/* "lzn-quantize: " what arg why, and exit 2. */
static void usage_error(const char *what, const char *arg, const char *why) {
  fprintf(stderr, "lzn-quantize: %s%s%s (lzn-quantize --help shows the usage)\n", what, arg, why);
  exit(2);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double megabytes(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (double)st.st_size / 1e6 : 0.0;
}

int main(int argc, char **argv) {
  const char *positional[3];
  int n_positional = 0;
  lzn_quantize_params params = lzn_quantize_default_params();
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      printf(usage_text, lzn_cli_weight_type_list(1));
      return fflush(stdout) == 0 ? 0 : 1;
    } else if (strcmp(a, "--version") == 0) {
      printf("lzn-quantize %s\n", lzn_version_string());
      return fflush(stdout) == 0 ? 0 : 1;
    } else if (strcmp(a, "--keep-layout") == 0) {
      params.lazyneuron_layout = 0;
    } else if (a[0] == '-' && a[1] != '\0') {
      usage_error("unknown option ", a, "");
    } else if (n_positional == 3) {
      usage_error("one argument too many: ", a, "");
    } else {
      positional[n_positional++] = a;
    }
  }
  if (n_positional < 3) usage_error("give IN.gguf OUT.gguf TYPE", "", "");
  const char *in = positional[0], *out = positional[1], *type_name = positional[2];
  if (!lzn_cli_weight_type_from_name(type_name, &params.type) || params.type == LZN_WEIGHTS_AS_STORED)
    usage_error("TYPE ", type_name, ": not a weight type");

  printf("lzn-quantize: %s (%.1f MB) -> %s, weight matrices %s\n", in, megabytes(in), out,
         lzn_cli_weight_type_name(params.type));
  fflush(stdout);
  const double t0 = now();
  lzn_status s = lzn_model_quantize(in, out, &params);
  if (s != LZN_OK) {
    fprintf(stderr, "lzn-quantize: %s\n", lzn_last_error());
    return 1;
  }
  const double seconds = now() - t0;
  /* What a user will do next: load it. Say what it holds. */
  lzn_model *model;
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_model_params mp;
  lzn_model_params_init(&mp, sizeof mp);
  mp.predictor_path = "";
  mp.pack_budget = 0; /* a check that it loads: no packed copies for prompts (lzn-run makes those) */
  if ((s = lzn_model_load(out, &mp, &model)) != LZN_OK) {
    fprintf(stderr, "lzn-quantize: %s was written but does not load: %s\n", out, lzn_last_error());
    return 1;
  }
  lzn_model_get_info(model, &info);
  printf("lzn-quantize: wrote %s in %.2f s: %.1f MB, %s, %d layers, weight matrices %s (%.1f MB)\n",
         out, seconds, megabytes(out), info.architecture, info.n_layers,
         lzn_cli_weight_type_name(info.weight_type), (double)info.weight_bytes / 1e6);
  lzn_model_free(model);
  return fflush(stdout) == 0 ? 0 : 1;
}
