/*
 * gemm.c: `lzn-bench gemm`: the products of a batch of N tokens, one matrix
 * at a time, by each backend that can run them, interleaved in one run:
 *
 *   own      the kernel table's gemm / axpy_gemm on the weights in place
 *            (lib/linalg/gemm.c), in every type; for one token, the
 *            one-token kernels the decode runs (the GEMV for "linear",
 *            dot_rows for "union dot": the gemm slots at N = 1 read at a
 *            third of the GEMV's speed and no decode calls them)
 *   oneDNN   its sgemm, on W itself for F32; for the other types on fp32
 *            tiles widened per call, the path before issue 20 (union rows
 *            gathered into a tile first)
 *   libxsmm  its JIT kernels (lib/linalg/xsmm.c), F32 only: dense, and the
 *            union's down rows by address (batch-reduce GEMM)
 *   packed   the own kernels on a packed copy of the rows (kernels/packed.h),
 *            "linear" only, where the table has them (Q8_0/Q4_0, AVX512-VNNI)
 *   panels   oneDNN on converted panels (linalg/gemm_panels.h), "linear"
 *            only, F16, BF16 and the K-quants: bf16 where the machine
 *            multiplies it natively (not F16), fp32 otherwise
 *   int8     the own one-token axpy_rows_q8, rows outside and tokens
 *            inside (lzn_gemm_axpy_rounded), "union axpy" only: the
 *            coefficients rounded to int8 as the one-token decode rounds
 *            them
 *
 * Products: "linear" y = x W^T over all rows (a dense projection), "union
 * dot" the same over |U| gathered rows (a gated MLP's up rows of the
 * union), "union axpy" y += coef W_t[U] (the down rows of the union). |U|
 * is density x rows, spread evenly. Time per call, best of R after a
 * warm-up (which also JIT-compiles and creates primitives).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "core/wtype.h"
#include "cpu/cpu.h"
#include "linalg/gemm.h"
#include "linalg/gemm_panels.h"
#include "linalg/linear.h"
#include "linalg/onednn.h"
#include "linalg/pack.h"
#include "linalg/union.h"
#include "linalg/xsmm.h"

#define GEMM_MAX_LIST 16
/* Tokens per product at most: a prompt's chunk (lzn-bench model's pp512 runs 512). */
#define GEMM_MAX_TOKENS 512

typedef struct gemm_options {
  int rows, cols, threads, reps;
  int sizes[GEMM_MAX_LIST];
  size_t n_sizes;
  double densities[GEMM_MAX_LIST];
  size_t n_densities;
  lzn_weight_type types[8];
  size_t n_types;
} gemm_options;

static void help(void) {
  printf("usage: lzn-bench gemm [--type f32,q4_0,...|all] [--batch 1,2,4,8,16] [--density 5,10,33]\n"
         "                      [--rows 11008] [--cols 4096] [--threads T] [--reps R]\n"
         "Milliseconds per call of the products of N tokens on one rows x cols matrix, by each\n"
         "backend that can run them (own kernels, oneDNN, libxsmm, own kernels on packed rows),\n"
         "in one interleaved run:\n"
         "linear (every row), union dot (density %% of the rows, gathered) and union axpy\n"
         "(the same rows of the transposed matrix, as the down-projection reads them).\n");
}

static void parse(gemm_options *o, int argc, char **argv) {
  const char *sizes = "1,2,4,8,16", *densities = "5,10,33", *types = "f32,q4_0";
  *o = (gemm_options){.rows = 11008, .cols = 4096, .threads = 1, .reps = 3};
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) help(), exit(0);
    else if ((v = bench_option_value(argc, argv, &i, "--batch"))) sizes = v;
    else if ((v = bench_option_value(argc, argv, &i, "--density"))) densities = v;
    else if ((v = bench_option_value(argc, argv, &i, "--type"))) types = v;
    else if ((v = bench_option_value(argc, argv, &i, "--rows"))) o->rows = (int)bench_parse_long("--rows", v, 1, 1 << 20);
    else if ((v = bench_option_value(argc, argv, &i, "--cols"))) o->cols = (int)bench_parse_long("--cols", v, 1, 1 << 20);
    else if ((v = bench_option_value(argc, argv, &i, "--threads"))) o->threads = (int)bench_parse_long("--threads", v, 1, 1024);
    else if ((v = bench_option_value(argc, argv, &i, "--reps"))) o->reps = (int)bench_parse_long("--reps", v, 1, 1000);
    else bench_usage_error("gemm: unknown option \"%s\"", argv[i]);
  }
  char buf[256], *items[GEMM_MAX_LIST];
  bench_copy_list("--batch", buf, sizeof buf, sizes);
  size_t n = bench_split_list("--batch", buf, items, GEMM_MAX_LIST);
  for (size_t k = 0; k < n; k++) o->sizes[o->n_sizes++] = (int)bench_parse_long("--batch", items[k], 1, GEMM_MAX_TOKENS);
  bench_copy_list("--density", buf, sizeof buf, densities);
  n = bench_split_list("--density", buf, items, GEMM_MAX_LIST);
  for (size_t k = 0; k < n; k++) o->densities[o->n_densities++] = bench_parse_double("--density", items[k]);
  bench_copy_list("--type", buf, sizeof buf, strcmp(types, "all") == 0 ? "f32,f16,bf16,q8_0,q4_0" : types);
  n = bench_split_list("--type", buf, items, 8);
  for (size_t k = 0; k < n; k++) o->types[o->n_types++] = bench_parse_type("--type", items[k]);
}

typedef enum product { P_LINEAR, P_UNION_DOT, P_UNION_AXPY, P_COUNT } product;
static const char *const product_names[P_COUNT] = {"linear", "union dot", "union axpy"};

/* One setting: the matrix, the tokens, the union. */
typedef struct setup {
  lzn_exec *ex;
  lzn_matrix w;    /* [rows][cols] */
  lzn_matrix wp;   /* w with a packed copy (wp.packed NULL: none) */
  float *x;        /* [GEMM_MAX_TOKENS][cols] */
  float *coef;     /* [GEMM_MAX_TOKENS][n_union] */
  float *y;        /* [GEMM_MAX_TOKENS][max(rows, cols)] */
  float *tile;     /* the oneDNN path's fp32 tile: [rows][cols] at most */
  int32_t *idx;
  size_t n_union;
  int m;
} setup;

/* oneDNN on fp32 rows (the path before issue 20 for types other than F32:
 * the rows widened, or gathered and widened, into a tile per call). */
static lzn_status onednn_run(setup *s, product p) {
  lzn_exec *ex = s->ex;
  const lzn_matrix *w = &s->w;
  const size_t cols = (size_t)w->cols;
  const int gathered = p != P_LINEAR;
  const size_t n = gathered ? s->n_union : (size_t)w->rows;
  const float *rows = w->data;
  if (w->type != LZN_WEIGHTS_F32 || gathered) {
    const lzn_to_f32_fn to_f32 = ex->kernels->type[w->type].to_f32.fn;
    for (size_t i = 0; i < n; i++)
      to_f32(s->tile + i * cols, lzn_matrix_row(w, gathered ? s->idx[i] : (int64_t)i), cols);
    rows = s->tile;
  }
  if (p == P_UNION_AXPY)
    return lzn_dense_linear_kn(ex->dense, s->y, s->coef, rows, NULL, s->m, (int64_t)cols, (int64_t)n, ex->n_threads);
  return lzn_dense_linear(ex->dense, s->y, s->x, rows, NULL, s->m, (int64_t)n, (int64_t)cols, ex->n_threads);
}

/* The columns: the backends, then the own kernels on packed rows, then
 * oneDNN on converted panels (linalg/gemm_panels.h), then the own kernels
 * with the coefficients rounded to int8 ("union axpy" only). */
#define COL_PACKED LZN_BACKEND_COUNT
#define COL_PANELS (LZN_BACKEND_COUNT + 1)
#define COL_ROUNDED (LZN_BACKEND_COUNT + 2)
#define N_COLS (LZN_BACKEND_COUNT + 3)

/* One call of a product by a column's backend; 0 if it cannot run it. */
static int run_once(setup *s, product p, int b) {
  lzn_exec *ex = s->ex;
  lzn_status st = LZN_OK;
  if (b == COL_ROUNDED) {
    if (p != P_UNION_AXPY) return 0;
    st = lzn_gemm_axpy_rounded(ex, s->y, (size_t)s->w.cols, &s->w, s->idx, s->n_union, s->coef, s->n_union, s->m);
  } else if (b == COL_PACKED) {
    if (p != P_LINEAR || s->wp.packed == NULL) return 0;
    st = lzn_gemm_packed(ex, s->y, (size_t)s->w.rows, s->x, &s->wp, s->m);
  } else if (b == COL_PANELS) {
    /* Every row only: the panels serve dense products (an axpy over all
     * rows is the dense down-projection's kn product). */
    if (p == P_UNION_DOT || s->n_union != (size_t)s->w.rows || !lzn_gemm_panels_available(ex, s->w.type)) return 0;
    st = p == P_LINEAR ? lzn_gemm_panels_linear(ex, s->y, s->x, &s->w, s->m)
                       : lzn_gemm_panels_kn(ex, s->y, s->coef, &s->w, s->m);
  } else if (b == LZN_BACKEND_ONEDNN) st = onednn_run(s, p);
  else if (b == LZN_BACKEND_XSMM) {
    if (p == P_LINEAR) return lzn_xsmm_linear(ex, s->y, s->x, &s->w, s->m);
    if (p == P_UNION_AXPY)
      return lzn_xsmm_union_axpy(ex, s->y, (size_t)s->w.cols, &s->w, s->idx, s->n_union, s->coef, s->n_union, s->m);
    return 0;
  } else if (p == P_LINEAR && s->m == 1) st = lzn_linear(ex, s->y, s->x, &s->w, NULL, 1); /* the GEMV */
  else if (p == P_UNION_DOT && s->m == 1) st = lzn_linear_rows(ex, s->y, s->x, &s->w, s->idx, s->n_union);
  else if (p == P_LINEAR) st = lzn_gemm_rows(ex, s->y, (size_t)s->w.rows, s->x, &s->w, NULL, (size_t)s->w.rows, s->m);
  else if (p == P_UNION_DOT) st = lzn_gemm_rows(ex, s->y, s->n_union, s->x, &s->w, s->idx, s->n_union, s->m);
  else lzn_gemm_axpy(ex, s->y, (size_t)s->w.cols, &s->w, s->idx, s->n_union, s->coef, s->n_union, s->m);
  if (st != LZN_OK) bench_fail("%s: %s", product_names[p], lzn_last_error());
  return 1;
}

int bench_gemm_main(int argc, char **argv);
int bench_gemm_main(int argc, char **argv) {
  gemm_options o;
  parse(&o, argc, argv);
  lzn_exec ex = {.n_threads = o.threads};
  if (lzn_kernels_get(&ex.kernels) != LZN_OK || lzn_dense_create(&ex.dense) != LZN_OK ||
      lzn_xsmm_create(ex.kernels, &ex.xsmm) != LZN_OK ||
      (o.threads > 1 && lzn_pool_create(o.threads, &ex.pool) != LZN_OK))
    bench_fail("%s", lzn_last_error());
  const size_t rows = (size_t)o.rows, cols = (size_t)o.cols, wide = rows > cols ? rows : cols;
  float *w32 = bench_alloc_big(rows * cols * sizeof(float), 0);
  setup s = {.ex = &ex};
  s.x = malloc(GEMM_MAX_TOKENS * cols * sizeof(float));
  s.coef = malloc(GEMM_MAX_TOKENS * rows * sizeof(float));
  s.y = malloc(GEMM_MAX_TOKENS * wide * sizeof(float));
  s.tile = bench_alloc_big(rows * cols * sizeof(float), 0);
  s.idx = malloc(rows * sizeof(int32_t));
  if (!w32 || !s.x || !s.coef || !s.y || !s.tile || !s.idx) bench_fail("out of memory");
  bench_rng rng = {0x6e11};
  for (size_t i = 0; i < rows * cols; i++) w32[i] = (float)(bench_rng_unit(&rng) - 0.5);
  for (size_t i = 0; i < GEMM_MAX_TOKENS * cols; i++) s.x[i] = (float)(bench_rng_unit(&rng) - 0.5);
  for (size_t i = 0; i < GEMM_MAX_TOKENS * rows; i++) s.coef[i] = (float)bench_rng_unit(&rng);
  printf("lzn-bench gemm | CPU: %s | ISA: %s | %d x %d | %d thread(s) | ms per call, best of %d\n\n",
         bench_cpu_model(), ex.kernels->name, o.rows, o.cols, o.threads, o.reps);
  printf("| type | N | density %% | product | own ms | oneDNN ms | libxsmm ms | packed ms | panels ms | int8 ms | fastest |\n");
  printf("| ---- | -: | -: | ------- | -----: | --------: | ---------: | --------: | ------: | ------: | ------- |\n");
  for (size_t ti = 0; ti < o.n_types; ti++) {
    const lzn_weight_type type = o.types[ti];
    const size_t row_bytes = lzn_wtype_row_bytes(type, cols);
    void *data = w32;
    if (type != LZN_WEIGHTS_F32) {
      data = bench_alloc_big(rows * row_bytes, 0);
      if (data == NULL) bench_fail("out of memory");
      for (size_t i = 0; i < rows; i++)
        ex.kernels->type[type].from_f32.fn((char *)data + i * row_bytes, w32 + i * cols, cols);
    }
    s.w = (lzn_matrix){.type = type, .data = data, .rows = o.rows, .cols = o.cols, .row_bytes = row_bytes};
    s.wp = s.w;
    void *packed = NULL;
    if (lzn_pack_supported(ex.kernels, &s.w)) {
      packed = bench_alloc_big(lzn_pack_bytes(&s.w), 0);
      if (packed == NULL) bench_fail("out of memory");
      if (lzn_pack_rows(ex.kernels, &s.w, packed, 1) != LZN_OK) bench_fail("%s", lzn_last_error());
      s.wp.packed = packed;
    }
    for (size_t ni = 0; ni < o.n_sizes; ni++)
      for (size_t di = 0; di < o.n_densities; di++) {
        s.m = o.sizes[ni];
        s.n_union = (size_t)(o.densities[di] / 100.0 * (double)rows + 0.5);
        if (s.n_union < 1) s.n_union = 1;
        for (size_t i = 0; i < s.n_union; i++) s.idx[i] = (int32_t)(i * rows / s.n_union);
        for (int p = 0; p < P_COUNT; p++) {
          if (p == P_LINEAR && di > 0) continue; /* no density */
          double best[N_COLS];
          int ran[N_COLS] = {0};
          for (int b = 1; b < N_COLS; b++) best[b] = 1e30;
          for (int rep = 0; rep <= o.reps; rep++)
            for (int b = 1; b < N_COLS; b++) { /* interleaved: own, oneDNN, libxsmm, packed, own, ... */
              const double t0 = bench_now();
              ran[b] = run_once(&s, (product)p, b);
              const double t = bench_now() - t0;
              if (rep > 0 && ran[b] && t < best[b]) best[b] = t;
            }
          char cell[N_COLS][32];
          int fastest = LZN_BACKEND_OWN;
          for (int b = 1; b < N_COLS; b++) {
            if (ran[b]) snprintf(cell[b], sizeof cell[b], "%.4f", 1e3 * best[b]);
            else snprintf(cell[b], sizeof cell[b], "-");
            if (ran[b] && best[b] < best[fastest]) fastest = b;
          }
          static const char *const names[N_COLS] = {"", "own", "oneDNN", "libxsmm", "packed", "panels", "int8"};
          printf("| %s | %d | %.1f | %s | %s | %s | %s | %s | %s | %s | %s |\n", bench_type_name(type), s.m,
                 p == P_LINEAR ? 100.0 : o.densities[di], product_names[p], cell[1], cell[2], cell[3], cell[4],
                 cell[5], cell[6], names[fastest]);
        }
      }
    if (data != w32) free(data);
    free(packed);
  }
  free(w32), free(s.x), free(s.coef), free(s.y), free(s.tile), free(s.idx);
  lzn_exec_free(&ex);
  return 0;
}
