/*
 * lzn_profile.c: lzn-profile, how sparse a model is on a text, layer by layer.
 *
 *   lzn-profile -m MODEL -f TEXT [-n BYTES] [--windows 1,2,4,...,64]
 *               [-o md|json|csv] [--plots DIR] [--threads N]
 *
 * Two passes over the first BYTES bytes of TEXT, both with the MLP forced
 * SPARSE so that every statistic is the model's own activations:
 *  1. one token per lzn_forward call: the stats delta around each call is
 *     that token's active fraction per layer (mean, p10/p50/p90/max), and at
 *     the end the neurons that never fired and the FLOPs and bytes the sparse
 *     path did not spend against a dense MLP;
 *  2. per window size w, the text cut into consecutive windows of w tokens,
 *     each one call: the delta of union_fraction is the fraction of rows the
 *     call's tokens needed together (what a batch or prefill chunk reads),
 *     shown beside independent sets of the same density, 1 - (1 - p)^w
 *     (bench/union.c's measurement, through the public API only).
 * The KV cache starts over when it would overflow: a token's activations
 * depend on its context, but the statistics are what matters here.
 *
 * With --plots DIR the JSON report goes to DIR/profile-NAME.json (NAME: the
 * model's folder) and tools/plot/plot_profile.py draws DIR/profile-NAME-*.png
 * with /usr/bin/python3 and matplotlib; without them the report is still
 * written. The script is found through LZN_TOOLS_DIR, else beside the
 * executable (../tools/plot for the build tree, ../share/lazyneuron/tools
 * installed). On a terminal, stderr shows a progress bar.
 */
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <lazyneuron.h>

extern char **environ;

#define MAX_WINDOWS 16
#define MAX_WINDOW 4096

typedef enum format { FORMAT_MD, FORMAT_JSON, FORMAT_CSV } format;

typedef struct options {
  const char *model, *text, *plots;
  long max_bytes;
  int windows[MAX_WINDOWS], n_windows, n_threads;
  format out;
} options;

static void usage(const char *why) {
  if (why) fprintf(stderr, "lzn-profile: %s\n", why);
  fprintf(stderr,
          "usage: lzn-profile -m MODEL -f TEXT [-n BYTES] [--windows 1,2,4,8,16,32,64]\n"
          "                   [-o md|json|csv] [--plots DIR] [--threads N]\n"
          "Per layer: the active fraction per token (mean, p10/p50/p90/max), neurons that\n"
          "never fired, the union of active neurons over windows of w tokens, and the FLOPs\n"
          "and bytes the sparse MLP saved. --plots DIR writes the JSON report and PNGs there.\n");
  exit(2);
}

static long parse_int(const char *flag, const char *v, long lo, long hi) {
  char *end;
  errno = 0;
  const long x = strtol(v, &end, 10);
  if (*v == '\0' || *end != '\0' || errno != 0 || x < lo || x > hi) {
    fprintf(stderr, "lzn-profile: %s %s: expected an integer in [%ld, %ld]\n", flag, v, lo, hi);
    exit(2);
  }
  return x;
}

static void parse_windows(options *o, const char *list) {
  char buf[256];
  if (strlen(list) >= sizeof buf) usage("--windows: list too long");
  strcpy(buf, list);
  o->n_windows = 0;
  for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
    if (o->n_windows == MAX_WINDOWS) usage("--windows: at most 16 sizes");
    const int w = (int)parse_int("--windows", item, 1, MAX_WINDOW);
    if (o->n_windows > 0 && w <= o->windows[o->n_windows - 1]) usage("--windows: sizes must increase");
    o->windows[o->n_windows++] = w;
  }
  if (o->n_windows == 0) usage("--windows: empty list");
}

static options parse(int argc, char **argv) {
  options o;
  memset(&o, 0, sizeof o);
  o.max_bytes = 16384, o.n_threads = 1, o.out = FORMAT_MD;
  parse_windows(&o, "1,2,4,8,16,32,64");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) usage(NULL);
    if (i + 1 >= argc) usage("every option takes a value");
    const char *v = argv[++i];
    if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) o.model = v;
    else if (strcmp(a, "-f") == 0 || strcmp(a, "--file") == 0) o.text = v;
    else if (strcmp(a, "-n") == 0 || strcmp(a, "--bytes") == 0) o.max_bytes = parse_int(a, v, 1, 1L << 30);
    else if (strcmp(a, "--windows") == 0) parse_windows(&o, v);
    else if (strcmp(a, "--plots") == 0) o.plots = v;
    else if (strcmp(a, "--threads") == 0 || strcmp(a, "-t") == 0) o.n_threads = (int)parse_int(a, v, 1, 1024);
    else if (strcmp(a, "-o") == 0) {
      if (strcmp(v, "md") == 0) o.out = FORMAT_MD;
      else if (strcmp(v, "json") == 0) o.out = FORMAT_JSON;
      else if (strcmp(v, "csv") == 0) o.out = FORMAT_CSV;
      else usage("-o is md, json or csv");
    } else {
      fprintf(stderr, "lzn-profile: unknown option %s\n", a);
      usage(NULL);
    }
  }
  if (o.model == NULL) usage("-m MODEL is required");
  if (o.text == NULL) usage("-f TEXT is required");
  return o;
}

static void fail(const char *what, const char *detail) {
  fprintf(stderr, "lzn-profile: %s: %s\n", what, detail);
  exit(1);
}

/* ---------------------------------------------------------------- progress */

static int show_progress;

/* One line, redrawn with \r when the stage or the percentage changes; only
 * on a terminal. */
static void progress(const char *stage, double fraction) {
  static const char *last_stage;
  static int last_percent = -1;
  if (!show_progress) return;
  const int percent = (int)(fraction * 100 + 0.5);
  if (stage == last_stage && percent == last_percent) return;
  last_stage = stage, last_percent = percent;
  enum { WIDTH = 30 };
  const int filled = (int)(fraction * WIDTH + 0.5);
  char bar[WIDTH + 1];
  for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '#' : '.';
  bar[WIDTH] = '\0';
  fprintf(stderr, "\r%-22s [%s] %3d%%", stage, bar, percent);
  fflush(stderr);
}

static void progress_done(void) {
  if (show_progress) fprintf(stderr, "\r%-60s\r", "");
}

static int load_progress(float fraction_done, void *user_data) {
  (void)user_data;
  progress("loading", fraction_done);
  return 1;
}

/* ------------------------------------------------------------------- input */

static unsigned char *read_text(const char *path, long max_bytes, long *n) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) fail(path, strerror(errno));
  unsigned char *text = malloc((size_t)max_bytes + 1);
  if (text == NULL) fail(path, "out of memory");
  *n = (long)fread(text, 1, (size_t)max_bytes, f);
  const int bad = ferror(f);
  fclose(f);
  if (bad) fail(path, "read error");
  return text;
}

/* The text as token ids: the model's tokenizer, or the bytes themselves for
 * a model without one whose vocabulary covers them. */
static int32_t *tokenize(const lzn_model *model, const lzn_model_info *info, const unsigned char *text,
                         long n_text, int *n_tokens) {
  const lzn_tokenizer *tok;
  int32_t *ids;
  if (lzn_model_get_tokenizer(model, &tok) == LZN_OK) {
    int need = 0;
    lzn_tokenize(tok, (const char *)text, (size_t)n_text, 0, NULL, 0, &need);
    ids = malloc(sizeof *ids * (size_t)(need > 0 ? need : 1));
    if (ids == NULL) fail("tokenize", "out of memory");
    if (lzn_tokenize(tok, (const char *)text, (size_t)n_text, 0, ids, need, n_tokens) != LZN_OK)
      fail("tokenize", lzn_last_error());
  } else {
    if (info->vocab_size < 256) fail("tokenize", "the model has no tokenizer and fewer than 256 ids");
    ids = malloc(sizeof *ids * (size_t)(n_text > 0 ? n_text : 1));
    if (ids == NULL) fail("tokenize", "out of memory");
    for (long i = 0; i < n_text; i++) ids[i] = text[i];
    *n_tokens = (int)n_text;
  }
  return ids;
}

/* ------------------------------------------------------------ measurement */

typedef struct layer_profile {
  double *per_token;       /* active fraction of each token of pass 1 */
  lzn_layer_stats total;   /* pass 1's statistics at its end */
  double union_fraction[MAX_WINDOWS], window_active[MAX_WINDOWS];
  long calls[MAX_WINDOWS];
} layer_profile;

static void stats_or_die(const lzn_context *ctx, lzn_layer_stats *out, int n) {
  if (lzn_context_stats(ctx, out, n) != LZN_OK) fail("stats", lzn_last_error());
}

/* Calls of a layer so far: union_fraction is a mean over them. */
static double calls_of(const lzn_layer_stats *s) { return (double)(s->sparse_calls + s->dense_calls); }

static void forward(lzn_context *ctx, const int32_t *tokens, int n, int n_ctx, float *logits) {
  if (lzn_context_n_past(ctx) + n > n_ctx) lzn_context_truncate(ctx, 0);
  if (lzn_forward(ctx, tokens, n, logits, LZN_LOGITS_LAST) != LZN_OK) fail("forward", lzn_last_error());
}

static void pass_per_token(lzn_context *ctx, const lzn_model_info *info, int n_ctx, const int32_t *ids,
                           int n_tokens, float *logits, lzn_layer_stats *before, lzn_layer_stats *after,
                           layer_profile *layers, double work, double *done) {
  const int L = info->n_layers;
  lzn_context_reset(ctx);
  stats_or_die(ctx, before, L);
  for (int t = 0; t < n_tokens; t++) {
    forward(ctx, ids + t, 1, n_ctx, logits);
    stats_or_die(ctx, after, L);
    for (int l = 0; l < L; l++) {
      const double tokens = (double)(after[l].tokens - before[l].tokens);
      const double sum = after[l].active_fraction * (double)after[l].tokens -
                         before[l].active_fraction * (double)before[l].tokens;
      layers[l].per_token[t] = tokens > 0 ? sum / tokens : 0.0;
    }
    memcpy(before, after, sizeof *before * (size_t)L);
    *done += 1;
    progress("profiling tokens", *done / work);
  }
  for (int l = 0; l < L; l++) layers[l].total = after[l];
}

static void pass_windows(lzn_context *ctx, const lzn_model_info *info, int n_ctx, const int32_t *ids,
                         int n_tokens, const options *o, float *logits, lzn_layer_stats *before,
                         lzn_layer_stats *after, layer_profile *layers, double work, double *done) {
  const int L = info->n_layers;
  for (int k = 0; k < o->n_windows; k++) {
    const int w = o->windows[k];
    lzn_context_reset(ctx);
    stats_or_die(ctx, before, L);
    for (int start = 0; start + w <= n_tokens; start += w) {
      forward(ctx, ids + start, w, n_ctx, logits);
      stats_or_die(ctx, after, L);
      for (int l = 0; l < L; l++) {
        layer_profile *p = &layers[l];
        p->union_fraction[k] += after[l].union_fraction * calls_of(&after[l]) -
                                before[l].union_fraction * calls_of(&before[l]);
        const double tokens = (double)(after[l].tokens - before[l].tokens);
        p->window_active[k] += (after[l].active_fraction * (double)after[l].tokens -
                                before[l].active_fraction * (double)before[l].tokens) /
                               (tokens > 0 ? tokens : 1.0);
        p->calls[k]++;
      }
      memcpy(before, after, sizeof *before * (size_t)L);
      *done += w;
      progress("profiling windows", *done / work);
    }
    for (int l = 0; l < L; l++) {
      layer_profile *p = &layers[l];
      if (p->calls[k] > 0) p->union_fraction[k] /= (double)p->calls[k], p->window_active[k] /= (double)p->calls[k];
    }
  }
}

/* ----------------------------------------------------------------- report */

static int compare_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted[0..n). */
static double percentile(const double *sorted, int n, double q) {
  if (n == 0) return 0.0;
  int rank = (int)ceil(q * n) - 1;
  if (rank < 0) rank = 0;
  if (rank >= n) rank = n - 1;
  return sorted[rank];
}

static void set(json_t *obj, const char *key, json_t *value) {
  if (value == NULL || json_object_set_new(obj, key, value) != 0) fail("json", "out of memory");
}

static const char NOTE_HISTOGRAM[] =
    "A neuron firing-frequency histogram needs per-neuron counts, which the public API "
    "(lzn_layer_stats) does not expose; it is left out.";

static const char *base_name(const char *path, char *buf, size_t cap) {
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/') n--;
  size_t start = n;
  while (start > 0 && path[start - 1] != '/') start--;
  size_t len = n - start;
  if (len >= cap) len = cap - 1;
  memcpy(buf, path + start, len);
  buf[len] = '\0';
  return buf;
}

static json_t *build_report(const options *o, const lzn_model_info *info, long n_text, int n_tokens,
                            layer_profile *layers) {
  json_t *root = json_object(), *arr = json_array(), *windows = json_array();
  if (root == NULL || arr == NULL || windows == NULL) fail("json", "out of memory");
  char name[256];
  set(root, "model", json_string(base_name(o->model, name, sizeof name)));
  set(root, "model_path", json_string(o->model));
  set(root, "text", json_string(o->text));
  set(root, "bytes", json_integer(n_text));
  set(root, "tokens", json_integer(n_tokens));
  set(root, "n_layers", json_integer(info->n_layers));
  set(root, "d_ff", json_integer(info->d_ff));
  set(root, "isa", json_string(lzn_isa_name() ? lzn_isa_name() : "?"));
  set(root, "version", json_string(lzn_version_string()));
  for (int k = 0; k < o->n_windows; k++) json_array_append_new(windows, json_integer(o->windows[k]));
  set(root, "windows", windows);
  for (int l = 0; l < info->n_layers; l++) {
    layer_profile *p = &layers[l];
    qsort(p->per_token, (size_t)n_tokens, sizeof(double), compare_double);
    const lzn_layer_stats *s = &p->total;
    const double mean = s->active_fraction;
    json_t *rec = json_object(), *un = json_array();
    if (rec == NULL || un == NULL) fail("json", "out of memory");
    set(rec, "layer", json_integer(l));
    set(rec, "tokens", json_integer(s->tokens));
    set(rec, "active_fraction_mean", json_real(mean));
    set(rec, "active_fraction_p10", json_real(percentile(p->per_token, n_tokens, 0.10)));
    set(rec, "active_fraction_p50", json_real(percentile(p->per_token, n_tokens, 0.50)));
    set(rec, "active_fraction_p90", json_real(percentile(p->per_token, n_tokens, 0.90)));
    set(rec, "active_fraction_max", json_real(n_tokens ? p->per_token[n_tokens - 1] : 0.0));
    set(rec, "never_fired", json_integer(s->never_fired));
    set(rec, "never_fired_fraction", json_real((double)s->never_fired / info->d_ff));
    set(rec, "flops_dense", json_real(s->flops_dense));
    set(rec, "flops_executed", json_real(s->flops_executed));
    set(rec, "flops_saved_fraction", json_real(s->flops_dense > 0 ? 1.0 - s->flops_executed / s->flops_dense : 0.0));
    set(rec, "bytes_dense", json_real(s->bytes_dense));
    set(rec, "bytes_executed", json_real(s->bytes_executed));
    set(rec, "bytes_saved_fraction", json_real(s->bytes_dense > 0 ? 1.0 - s->bytes_executed / s->bytes_dense : 0.0));
    for (int k = 0; k < o->n_windows; k++) {
      json_t *u = json_object();
      if (u == NULL) fail("json", "out of memory");
      set(u, "window", json_integer(o->windows[k]));
      set(u, "calls", json_integer(p->calls[k]));
      set(u, "union_fraction", json_real(p->union_fraction[k]));
      set(u, "per_token_fraction", json_real(p->window_active[k]));
      set(u, "independent_fraction", json_real(1.0 - pow(1.0 - mean, o->windows[k])));
      json_array_append_new(un, u);
    }
    set(rec, "union", un);
    json_array_append_new(arr, rec);
  }
  set(root, "layers", arr);
  json_t *notes = json_array();
  if (notes == NULL) fail("json", "out of memory");
  json_array_append_new(notes, json_string(NOTE_HISTOGRAM));
  set(root, "notes", notes);
  return root;
}

static double num(const json_t *obj, const char *key) { return json_number_value(json_object_get(obj, key)); }

static void write_md(FILE *f, const json_t *r) {
  const json_t *layers = json_object_get(r, "layers"), *windows = json_object_get(r, "windows");
  size_t i, k;
  json_t *rec, *w;
  fprintf(f, "# lzn-profile: %s\n\n", json_string_value(json_object_get(r, "model")));
  fprintf(f, "%s: %lld bytes, %lld tokens; d_ff %lld; lazyneuron %s, ISA %s; MLP forced sparse.\n\n",
          json_string_value(json_object_get(r, "text")), (long long)num(r, "bytes"), (long long)num(r, "tokens"),
          (long long)num(r, "d_ff"), json_string_value(json_object_get(r, "version")),
          json_string_value(json_object_get(r, "isa")));
  fprintf(f, "## Active neurons per token (one token per call), %% of d_ff\n\n");
  fprintf(f, "| layer | mean %% | p10 %% | p50 %% | p90 %% | max %% | never fired | FLOPs saved %% | bytes saved %% |\n");
  fprintf(f, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  json_array_foreach(layers, i, rec) {
    fprintf(f, "| %lld | %.2f | %.2f | %.2f | %.2f | %.2f | %lld (%.1f %%) | %.2f | %.2f |\n",
            (long long)num(rec, "layer"), 100 * num(rec, "active_fraction_mean"), 100 * num(rec, "active_fraction_p10"),
            100 * num(rec, "active_fraction_p50"), 100 * num(rec, "active_fraction_p90"),
            100 * num(rec, "active_fraction_max"), (long long)num(rec, "never_fired"),
            100 * num(rec, "never_fired_fraction"), 100 * num(rec, "flops_saved_fraction"),
            100 * num(rec, "bytes_saved_fraction"));
  }
  fprintf(f, "\nFLOPs and bytes saved: of the matrices the active set applies to (OPT: fc2; gated: up and down), "
             "against a dense MLP.\n\n");
  fprintf(f, "## Union of active neurons over a call of w tokens, %% of d_ff (independent sets 1-(1-p)^w in brackets)\n\n");
  fprintf(f, "| layer |");
  json_array_foreach(windows, k, w) fprintf(f, " w=%lld |", (long long)json_integer_value(w));
  fprintf(f, "\n|---:|");
  for (k = 0; k < json_array_size(windows); k++) fprintf(f, "---:|");
  fprintf(f, "\n");
  json_array_foreach(layers, i, rec) {
    fprintf(f, "| %lld |", (long long)num(rec, "layer"));
    json_t *u;
    json_array_foreach(json_object_get(rec, "union"), k, u)
        fprintf(f, " %.1f (%.1f) |", 100 * num(u, "union_fraction"), 100 * num(u, "independent_fraction"));
    fprintf(f, "\n");
  }
  fprintf(f, "\nNote: %s\n", NOTE_HISTOGRAM);
}

/* One row per layer and window; the per-layer columns repeat. */
static void write_csv(FILE *f, const json_t *r) {
  const json_t *layers = json_object_get(r, "layers");
  size_t i, k;
  json_t *rec, *u;
  fprintf(f, "layer,tokens,active_fraction_mean,active_fraction_p10,active_fraction_p50,active_fraction_p90,"
             "active_fraction_max,never_fired,d_ff,flops_dense,flops_executed,bytes_dense,bytes_executed,"
             "window,calls,union_fraction,per_token_fraction,independent_fraction\n");
  json_array_foreach(layers, i, rec) {
    json_array_foreach(json_object_get(rec, "union"), k, u) {
      fprintf(f, "%lld,%lld,%.6f,%.6f,%.6f,%.6f,%.6f,%lld,%lld,%.0f,%.0f,%.0f,%.0f,%lld,%lld,%.6f,%.6f,%.6f\n",
              (long long)num(rec, "layer"), (long long)num(rec, "tokens"), num(rec, "active_fraction_mean"),
              num(rec, "active_fraction_p10"), num(rec, "active_fraction_p50"), num(rec, "active_fraction_p90"),
              num(rec, "active_fraction_max"), (long long)num(rec, "never_fired"), (long long)num(r, "d_ff"),
              num(rec, "flops_dense"), num(rec, "flops_executed"), num(rec, "bytes_dense"),
              num(rec, "bytes_executed"), (long long)num(u, "window"), (long long)num(u, "calls"),
              num(u, "union_fraction"), num(u, "per_token_fraction"), num(u, "independent_fraction"));
    }
  }
}

/* ------------------------------------------------------------------ plots */

/* plot_profile.py: in $LZN_TOOLS_DIR, else relative to the executable (the source tree's
 * tools/plot/ beside build/, or the installed share/lazyneuron/tools/). */
static int find_script(char *out, size_t cap) {
  const char *dir = getenv("LZN_TOOLS_DIR");
  if (dir && *dir) {
    snprintf(out, cap, "%s/plot_profile.py", dir);
    return access(out, R_OK) == 0;
  }
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return 0;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash == NULL) return 0;
  *slash = '\0';
  static const char *const relative[] = {"../tools/plot", "../share/lazyneuron/tools"};
  for (size_t i = 0; i < sizeof relative / sizeof relative[0]; i++) {
    const int len = snprintf(out, cap, "%s/%s/plot_profile.py", exe, relative[i]);
    if (len > 0 && (size_t)len < cap && access(out, R_OK) == 0) return 1;
  }
  return 0;
}

/* The script's exit status for "matplotlib is missing" (it says so itself). */
#define PLOT_EXIT_NO_MATPLOTLIB 3

static void write_plots(const options *o, const json_t *report) {
  if (mkdir(o->plots, 0777) != 0 && errno != EEXIST) fail(o->plots, strerror(errno));
  char name[256], json_path[4096], prefix[4096], script[4096];
  base_name(o->model, name, sizeof name);
  snprintf(json_path, sizeof json_path, "%s/profile-%s.json", o->plots, name);
  snprintf(prefix, sizeof prefix, "%s/profile-%s", o->plots, name);
  if (json_dump_file(report, json_path, JSON_INDENT(1) | JSON_REAL_PRECISION(10)) != 0)
    fail(json_path, "cannot write");
  const char *python = "/usr/bin/python3";
  if (access(python, X_OK) != 0) {
    fprintf(stderr, "lzn-profile: %s not found: no plots (the report is in %s)\n", python, json_path);
    return;
  }
  if (!find_script(script, sizeof script)) {
    fprintf(stderr, "lzn-profile: plot_profile.py not found (set LZN_TOOLS_DIR): no plots\n");
    return;
  }
  fflush(stdout), fflush(stderr);
  char *args[] = {(char *)python, script, json_path, prefix, NULL};
  pid_t pid;
  if (posix_spawn(&pid, python, NULL, NULL, args, environ) != 0) {
    fprintf(stderr, "lzn-profile: cannot run %s: %s: no plots\n", python, strerror(errno));
    return;
  }
  int st = 0;
  if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    if (WIFEXITED(st) && WEXITSTATUS(st) == PLOT_EXIT_NO_MATPLOTLIB)
      fprintf(stderr, "lzn-profile: python3-matplotlib is missing: no plots (the report is in %s)\n", json_path);
    else
      fprintf(stderr, "lzn-profile: %s failed: no plots\n", script);
  }
}

/* ------------------------------------------------------------------- main */

int main(int argc, char **argv) {
  const options o = parse(argc, argv);
  show_progress = isatty(STDERR_FILENO);
  long n_text;
  unsigned char *text = read_text(o.text, o.max_bytes, &n_text);

  lzn_model_params mp;
  lzn_model_params_init(&mp, sizeof mp);
  mp.predictor_path = ""; /* the model's own activations */
  mp.progress = load_progress;
  lzn_model *model;
  if (lzn_model_load(o.model, &mp, &model) != LZN_OK) fail("model", lzn_last_error());
  progress_done();
  lzn_model_info info = {.struct_size = sizeof info};
  lzn_model_get_info(model, &info);
  int n_tokens;
  int32_t *ids = tokenize(model, &info, text, n_text, &n_tokens);
  if (n_tokens < 1) fail(o.text, "no tokens to profile");
  for (int t = 0; t < n_tokens; t++)
    if (ids[t] < 0 || ids[t] >= info.vocab_size) fail(o.text, "a token id is outside the model's vocabulary");

  lzn_context_params cp = lzn_context_default_params();
  cp.mlp_mode = LZN_MLP_SPARSE;
  cp.collect_stats = 1;
  cp.use_predictor = 0;
  cp.n_threads = o.n_threads;
  lzn_context *ctx;
  if (lzn_context_create(model, &cp, &ctx) != LZN_OK) fail("context", lzn_last_error());
  const int n_ctx = info.max_positions;
  for (int k = 0; k < o.n_windows; k++)
    if (o.windows[k] > n_ctx) fail("--windows", "a window is longer than the model's context");

  const int L = info.n_layers;
  float *logits = malloc(sizeof(float) * (size_t)info.vocab_size);
  lzn_layer_stats *before = malloc(sizeof *before * (size_t)L), *after = malloc(sizeof *after * (size_t)L);
  layer_profile *layers = calloc((size_t)L, sizeof *layers);
  if (logits == NULL || before == NULL || after == NULL || layers == NULL) fail("profile", "out of memory");
  before[0].struct_size = after[0].struct_size = sizeof *before;
  for (int l = 0; l < L; l++)
    if ((layers[l].per_token = malloc(sizeof(double) * (size_t)n_tokens)) == NULL) fail("profile", "out of memory");

  const double work = (double)n_tokens * (1 + o.n_windows);
  double done = 0;
  pass_per_token(ctx, &info, n_ctx, ids, n_tokens, logits, before, after, layers, work, &done);
  pass_windows(ctx, &info, n_ctx, ids, n_tokens, &o, logits, before, after, layers, work, &done);
  progress_done();

  json_t *report = build_report(&o, &info, n_text, n_tokens, layers);
  if (o.out == FORMAT_JSON) {
    if (json_dumpf(report, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(10)) != 0) fail("stdout", "write error");
    putchar('\n');
  } else if (o.out == FORMAT_CSV) {
    write_csv(stdout, report);
  } else {
    write_md(stdout, report);
  }
  if (fflush(stdout) != 0) fail("stdout", "write error");
  if (o.plots) write_plots(&o, report);

  json_decref(report);
  for (int l = 0; l < L; l++) free(layers[l].per_token);
  free(layers), free(before), free(after), free(logits), free(ids), free(text);
  lzn_context_free(ctx);
  lzn_model_free(model);
  return 0;
}
