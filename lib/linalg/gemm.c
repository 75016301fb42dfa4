/*
 * gemm.c: the gemm slots on the pool's threads (linalg/gemm.h).
 *
 * Rows: items of whole register tiles of rows, each over every token, so a
 * thread reads its rows once per call and the tokens (a few hundred KiB of
 * Q8_0, or fp32) stay in its L2. Columns (axpy): slices of whole 64-column
 * pieces, each over every row of the index list. The rounded axpy (int8
 * coefficients, as one token's): parts of the rows, as the one-token
 * down-projection cuts them, and column slices of those.
 */
#include "linalg/gemm.h"

#include <string.h>

#include "core/errors.h"
#include "core/wtype.h"
#include "linalg/pack.h"
#include "linalg/sparse_down.h"

/* Rows per item: enough that an item amortizes its tokens' loads, few
 * enough that two threads get several items each on a d_model of 4096. */
#define GEMM_ROWS_PER_ITEM 32
/* Tokens per kernel call: an item runs its rows over blocks of this many
 * tokens, so that a block's x (Q8_0: 64 x 8.7 KB for a d_ff of 8192) stays
 * in L2 while the item's rows pass, and the rows (32 x 2.3 KB of Q4_0)
 * stay there for the next block. One call over a whole step of 256 tokens
 * measured 0.77x (Q4_0, sparse pp512, 4-layer opt-1.3b, one Zen 5 core). */
#define GEMM_TOKENS_PER_BLOCK 64

/* Tokens of the block starting at t0 of m. */
static size_t block_tokens(size_t m, size_t t0) {
  return m - t0 < GEMM_TOKENS_PER_BLOCK ? m - t0 : GEMM_TOKENS_PER_BLOCK;
}
/* Columns per axpy item: a multiple of every block size and of 64. */
#define GEMM_COLS_PER_ITEM LZN_WTYPE_MAX_BLOCK
_Static_assert(GEMM_COLS_PER_ITEM % 64 == 0, "an axpy item is whole 64-column pieces");

typedef struct rows_job {
  lzn_gemm_fn gemm; /* NULL: the type's one-token kernels, token by token */
  const lzn_type_kernels *one;
  float *out;
  size_t out_stride;
  const lzn_matrix *w;
  const int32_t *idx;
  size_t n_rows;
  const void *x;
  size_t x_stride, m;
} rows_job;

static void rows_item(void *arg, int item, int thread) {
  (void)thread;
  const rows_job *j = arg;
  const size_t i0 = (size_t)item * GEMM_ROWS_PER_ITEM;
  const size_t n = j->n_rows - i0 < GEMM_ROWS_PER_ITEM ? j->n_rows - i0 : GEMM_ROWS_PER_ITEM;
  const void *w = j->idx ? j->w->data : lzn_matrix_row(j->w, (int64_t)i0);
  if (j->gemm == NULL) {
    for (size_t t = 0; t < j->m; t++) {
      float *out = j->out + t * j->out_stride + i0;
      const void *x = (const char *)j->x + t * j->x_stride;
      if (j->idx) j->one->dot_rows.fn(out, w, j->w->row_bytes, (size_t)j->w->cols, j->idx + i0, n, x);
      else j->one->gemv.fn(out, w, j->w->row_bytes, (size_t)j->w->cols, n, x);
    }
    return;
  }
  for (size_t t0 = 0; t0 < j->m; t0 += GEMM_TOKENS_PER_BLOCK) {
    const size_t mt = block_tokens(j->m, t0);
    j->gemm(j->out + t0 * j->out_stride + i0, j->out_stride, w, j->w->row_bytes, (size_t)j->w->cols,
            j->idx ? j->idx + i0 : NULL, n, (const char *)j->x + t0 * j->x_stride, j->x_stride, mt);
  }
}

/* Each token of x [m][k] converted to x_type in the exec's scratch,
 * x_stride bytes apart (whole cache lines). */
static lzn_status tokens_as(lzn_exec *ex, lzn_weight_type x_type, const float *x, size_t k, int64_t m,
                            const void **out, size_t *x_stride) {
  *x_stride = (lzn_wtype_row_bytes(x_type, k) + 63) & ~(size_t)63;
  void *dst;
  const lzn_status s = lzn_exec_scratch(ex, LZN_SCRATCH_X_DOT, *x_stride * (size_t)m, &dst);
  if (s != LZN_OK) return s;
  for (int64_t t = 0; t < m; t++)
    ex->kernels->type[x_type].from_f32.fn((char *)dst + (size_t)t * *x_stride, x + (size_t)t * k, k);
  *out = dst;
  return LZN_OK;
}

lzn_status lzn_gemm_rows(lzn_exec *ex, float *out, size_t out_stride, const float *x, const lzn_matrix *w,
                         const int32_t *idx, size_t n_rows, int64_t m) {
  if (n_rows == 0 || m <= 0) return LZN_OK;
  const size_t k = (size_t)w->cols;
  const lzn_weight_type x_type = lzn_wtype_dot_type(w->type);
  const void *xq = x;
  size_t x_stride = k * sizeof(float);
  if (x_type != LZN_WEIGHTS_F32) { /* each token quantized once, for every row */
    const lzn_status s = tokens_as(ex, x_type, x, k, m, &xq, &x_stride);
    if (s != LZN_OK) return s;
  }
  rows_job job = {ex->kernels->gemm[w->type].gemm.fn, &ex->kernels->type[w->type], out, out_stride, w, idx, n_rows, xq, x_stride, (size_t)m};
  const int items = (int)((n_rows + GEMM_ROWS_PER_ITEM - 1) / GEMM_ROWS_PER_ITEM);
  lzn_pool_run(ex->pool, items, ex->n_threads, rows_item, &job);
  return LZN_OK;
}

/* Packed groups per item: several, so that the sums of x each kernel call
 * takes are shared by 64 rows, and still 64 items on a d_model of 4096. */
#define GEMM_PACKED_GROUPS_PER_ITEM 4

typedef struct packed_job {
  lzn_gemm_packed_fn fn;
  float *out;
  size_t out_stride;
  const lzn_matrix *w;
  const void *x;
  size_t x_stride, m;
} packed_job;

static void packed_item(void *arg, int item, int thread) {
  (void)thread;
  const packed_job *j = arg;
  const size_t i0 = (size_t)item * GEMM_PACKED_GROUPS_PER_ITEM * LZN_PACK_ROWS, rows = (size_t)j->w->rows;
  const size_t n = rows - i0 < GEMM_PACKED_GROUPS_PER_ITEM * LZN_PACK_ROWS ? rows - i0
                                                                          : GEMM_PACKED_GROUPS_PER_ITEM * LZN_PACK_ROWS;
  const void *w = (const char *)j->w->packed + i0 * lzn_pack_row_bytes(j->w); /* a group is 16 rows' bytes */
  for (size_t t0 = 0; t0 < j->m; t0 += GEMM_TOKENS_PER_BLOCK) {
    const size_t mt = block_tokens(j->m, t0);
    j->fn(j->out + t0 * j->out_stride + i0, j->out_stride, w, (size_t)j->w->cols, n,
          (const char *)j->x + t0 * j->x_stride, j->x_stride, mt);
  }
}

int lzn_gemm_can_pack_read(const lzn_exec *ex, const lzn_matrix *w) {
  return w->packed != NULL && ex->kernels->gemm[lzn_pack_type(w->type)].packed.fn != NULL;
}

lzn_status lzn_gemm_packed(lzn_exec *ex, float *out, size_t out_stride, const float *x, const lzn_matrix *w,
                           int64_t m) {
  if (w->rows == 0 || m <= 0) return LZN_OK;
  packed_job job = {ex->kernels->gemm[lzn_pack_type(w->type)].packed.fn, out, out_stride, w, NULL, 0, (size_t)m};
  const lzn_status s = tokens_as(ex, LZN_WEIGHTS_Q8_0, x, (size_t)w->cols, m, &job.x, &job.x_stride);
  if (s != LZN_OK) return s;
  const size_t per_item = GEMM_PACKED_GROUPS_PER_ITEM * LZN_PACK_ROWS;
  const int items = (int)(((size_t)w->rows + per_item - 1) / per_item);
  lzn_pool_run(ex->pool, items, ex->n_threads, packed_item, &job);
  return LZN_OK;
}

typedef struct cols_job {
  lzn_axpy_gemm_fn axpy; /* NULL: the type's axpy_rows, token by token */
  lzn_axpy_rows_fn one;
  float *y;
  size_t y_stride;
  const lzn_matrix *w;
  const int32_t *idx;
  size_t n;
  const float *coef;
  size_t coef_stride, m;
} cols_job;

static void cols_item(void *arg, int item, int thread) {
  (void)thread;
  const cols_job *j = arg;
  const size_t j0 = (size_t)item * GEMM_COLS_PER_ITEM, cols = (size_t)j->w->cols;
  const size_t d = cols - j0 < GEMM_COLS_PER_ITEM ? cols - j0 : GEMM_COLS_PER_ITEM;
  const void *w = (const char *)j->w->data + lzn_wtype_row_bytes(j->w->type, j0);
  if (j->axpy == NULL) {
    for (size_t t = 0; t < j->m; t++)
      j->one(j->y + t * j->y_stride + j0, d, w, j->w->row_bytes, j->idx, j->coef + t * j->coef_stride, j->n);
    return;
  }
  for (size_t t0 = 0; t0 < j->m; t0 += GEMM_TOKENS_PER_BLOCK) {
    const size_t mt = block_tokens(j->m, t0);
    j->axpy(j->y + t0 * j->y_stride + j0, j->y_stride, d, w, j->w->row_bytes, j->idx, j->coef + t0 * j->coef_stride,
            j->coef_stride, j->n, mt);
  }
}

void lzn_gemm_axpy(lzn_exec *ex, float *y, size_t y_stride, const lzn_matrix *w, const int32_t *idx, size_t n,
                   const float *coef, size_t coef_stride, int64_t m) {
  if (n == 0 || m <= 0) return;
  cols_job job = {ex->kernels->gemm[w->type].axpy_gemm.fn, ex->kernels->type[w->type].axpy_rows.fn, y, y_stride, w, idx, n, coef, coef_stride, (size_t)m};
  const int items = (int)(((size_t)w->cols + GEMM_COLS_PER_ITEM - 1) / GEMM_COLS_PER_ITEM);
  lzn_pool_run(ex->pool, items, ex->n_threads, cols_item, &job);
}

/* The rounded form (lzn_gemm_axpy_rounded). The rows are cut into the
 * parts lzn_sparse_down_run cuts them into (whole 16-row groups, how many
 * from n and d alone): each part summed from zero (the first into y), the
 * parts added in order, so every token gets the one-token forward pass's
 * bits. Threads take parts, and column slices where the tokens' y would
 * not stay in L2 or where there are fewer parts than threads. A part runs
 * through the table's axpy_gemm_q8, all its tokens at once; without it,
 * through axpy_rows_q8 with rows outside and tokens inside: each call a
 * chunk of whole groups for one token, so the chunk's rows come from
 * memory for the first token and from L2 for the rest. Either way a
 * token's sum of a part is axpy_rows_q8's over the part, to the bit. */
/* Bytes of rows per chunk (its slice of each row times its rows): in L2. */
#define ROUNDED_CHUNK_BYTES (192u * 1024u)
/* Bytes of the tokens' y per slice: axpy_gemm_q8 adds every group's rows
 * into every token's y, which should stay in L2 meanwhile. */
#define ROUNDED_Y_BYTES (256u * 1024u)

typedef struct rounded_job {
  lzn_axpy_gemm_fn gemm; /* NULL: axpy_rows_q8 token by token */
  lzn_axpy_rows_fn axpy;
  float *y;
  size_t y_stride;
  float *parts; /* parts 1 ..: [part - 1][m][d], each from zero */
  const lzn_matrix *w;
  const int32_t *idx;
  size_t n;
  const float *coef;
  size_t coef_stride, m;
  size_t per_part, slice_cols, n_slices; /* items: n_slices column slices of each part */
} rounded_job;

static void rounded_item(void *arg, int item, int thread) {
  (void)thread;
  const rounded_job *j = arg;
  const size_t cols = (size_t)j->w->cols, part = (size_t)item / j->n_slices;
  const size_t r0 = part * j->per_part, n = j->n - r0 < j->per_part ? j->n - r0 : j->per_part;
  const size_t j0 = (size_t)item % j->n_slices * j->slice_cols;
  const size_t d = cols - j0 < j->slice_cols ? cols - j0 : j->slice_cols;
  const void *w = (const char *)j->w->data + lzn_wtype_row_bytes(j->w->type, j0);
  float *y = j->y + j0;
  size_t y_stride = j->y_stride;
  if (part > 0) {
    y = j->parts + (part - 1) * j->m * cols + j0, y_stride = cols;
    for (size_t t = 0; t < j->m; t++) memset(y + t * y_stride, 0, d * sizeof(float));
  }
  const int32_t *idx = j->idx + r0;
  const float *coef = j->coef + r0;
  if (j->gemm) {
    j->gemm(y, y_stride, d, w, j->w->row_bytes, idx, coef, j->coef_stride, n, j->m);
    return;
  }
  size_t chunk = ROUNDED_CHUNK_BYTES / lzn_wtype_row_bytes(j->w->type, d) / LZN_AXPY_Q8_GROUP * LZN_AXPY_Q8_GROUP;
  if (chunk == 0) chunk = LZN_AXPY_Q8_GROUP;
  for (size_t c0 = 0; c0 < n; c0 += chunk) {
    const size_t nc = n - c0 < chunk ? n - c0 : chunk;
    for (size_t t = 0; t < j->m; t++)
      j->axpy(y + t * y_stride, d, w, j->w->row_bytes, idx + c0, coef + t * j->coef_stride + c0, nc);
  }
}

/* Column slices, whole LZN_WTYPE_MAX_BLOCK pieces: enough that every
 * thread has an item when there are fewer parts than threads, and for the
 * gemm slot narrow enough that the tokens' y stays in L2. */
static void rounded_slices(rounded_job *j, size_t n_parts, int n_threads) {
  const size_t cols = (size_t)j->w->cols, pieces = (cols + LZN_WTYPE_MAX_BLOCK - 1) / LZN_WTYPE_MAX_BLOCK;
  const size_t want = ((size_t)n_threads + n_parts - 1) / n_parts;
  size_t per = (pieces + want - 1) / want;
  if (j->gemm) {
    size_t fit = ROUNDED_Y_BYTES / (j->m * sizeof(float) * LZN_WTYPE_MAX_BLOCK);
    if (fit == 0) fit = 1;
    if (per > fit) per = fit;
  }
  j->slice_cols = per * LZN_WTYPE_MAX_BLOCK;
  j->n_slices = (cols + j->slice_cols - 1) / j->slice_cols;
}

/* Tokens per pass: the parts' sums take (parts - 1) x this x d floats of
 * the exec's scratch (3 MiB for d = 4096), whatever the prompt's step; the
 * rows come again for each pass, which a product of 64 tokens pays back
 * many times over (it is compute-bound). */
#define ROUNDED_PASS_TOKENS 64

lzn_status lzn_gemm_axpy_rounded(lzn_exec *ex, float *y, size_t y_stride, const lzn_matrix *w, const int32_t *idx,
                                 size_t n, const float *coef, size_t coef_stride, int64_t m) {
  if (n == 0 || m <= 0) return LZN_OK;
  const size_t cols = (size_t)w->cols;
  size_t per_part;
  const size_t n_parts = lzn_down_parts(n, cols, &per_part);
  float *parts = NULL;
  if (n_parts > 1) {
    const size_t pass = (size_t)m < ROUNDED_PASS_TOKENS ? (size_t)m : ROUNDED_PASS_TOKENS;
    void *room;
    const lzn_status s = lzn_exec_scratch(ex, LZN_SCRATCH_DOWN_PARTS, sizeof(float) * (n_parts - 1) * pass * cols, &room);
    if (s != LZN_OK) return s;
    parts = room;
  }
  for (size_t t0 = 0; t0 < (size_t)m; t0 += ROUNDED_PASS_TOKENS) {
    const size_t mt = (size_t)m - t0 < ROUNDED_PASS_TOKENS ? (size_t)m - t0 : ROUNDED_PASS_TOKENS;
    rounded_job job = {.gemm = ex->kernels->gemm[w->type].axpy_gemm_q8.fn,
                       .axpy = ex->kernels->type[w->type].axpy_rows_q8.fn,
                       .y = y + t0 * y_stride,
                       .y_stride = y_stride,
                       .parts = parts,
                       .w = w,
                       .idx = idx,
                       .n = n,
                       .coef = coef + t0 * coef_stride,
                       .coef_stride = coef_stride,
                       .m = mt,
                       .per_part = per_part};
    rounded_slices(&job, n_parts, ex->pool ? ex->n_threads : 1);
    lzn_pool_run(ex->pool, (int)(n_parts * job.n_slices), ex->n_threads, rounded_item, &job);
    for (size_t p = 1; p < n_parts; p++)
      for (size_t t = 0; t < mt; t++) {
        const float *sums = parts + ((p - 1) * mt + t) * cols;
        float *yt = job.y + t * y_stride;
#pragma omp simd
        for (size_t j = 0; j < cols; j++) yt[j] += sums[j];
      }
  }
  return LZN_OK;
}

int lzn_gemm_native(const lzn_exec *ex, lzn_weight_type type) {
  return ex->kernels->gemm[type].gemm.fn != NULL && ex->kernels->gemm[type].axpy_gemm.fn != NULL;
}

/* Whether a backend can run a product at all: oneDNN only dense ones (a
 * union would need its rows copied out first, and a primitive for every
 * union size); libxsmm not the gathered rows of a union's dot (its GEMMs
 * gather along K only, by address) and not without its cache. */
static int can_run(const lzn_exec *ex, lzn_backend b, lzn_product product) {
  switch (b) {
  case LZN_BACKEND_OWN: return 1;
  case LZN_BACKEND_ONEDNN: return product == LZN_PRODUCT_LINEAR || product == LZN_PRODUCT_KN;
  case LZN_BACKEND_XSMM: return ex->xsmm != NULL && product != LZN_PRODUCT_UNION_DOT;
  case LZN_BACKEND_AUTO:
  case LZN_BACKEND_COUNT: break;
  }
  return 0;
}

/* Tokens above which oneDNN's sgemm beats the own F32 kernels on a whole
 * matrix. Measured with `lzn-bench gemm --type f32` (11008 x 4096, one
 * Zen 5 core, bench/RESULTS.md, issue 20): up to 8 tokens a dense product
 * is still bound by reading W, which the own kernels do at stream speed
 * while oneDNN's small-M GEMM runs at half of it (N = 2: 6.9 ms against
 * 12.3); at 16 oneDNN is ahead (17.2 against 19.1 ms). libxsmm lost every
 * F32 shape there (N = 2 linear 28 ms, union axpy 1.5-3x the own kernel's
 * time: K = 1 batch-reduce steps cannot keep a 64 x N block of C in
 * registers), so AUTO never picks it; it stays a forced backend that
 * lzn-bench gemm measures on each machine. */
#define ONEDNN_MIN_TOKENS 9

/* Products of at most this many multiply-adds (m x rows x cols) stay on the
 * own kernels too: oneDNN makes a primitive for every new m, 0.2-1 ms on a
 * Zen 5 core (brgemm's JIT), against 4-60 us for such a product on the own
 * kernels (within 1.5x of oneDNN's time for it, `lzn-bench gemm --rows 512
 * --cols 128`). Prompts of every length on a small model made one per
 * length and matrix: a third of lzn-server's prefill time on tiny-opt.
 * (oneDNN's any-m primitives avoid the making, but its jit gemm behind
 * them allocates per call: 3x slower on these shapes.) */
#define OWN_MAX_PRODUCT ((int64_t)1 << 21)

lzn_backend lzn_backend_for(const lzn_exec *ex, const lzn_matrix *w, lzn_product product, int64_t m) {
  if (w->type != LZN_WEIGHTS_F32) return LZN_BACKEND_OWN;
  if (ex->backend != LZN_BACKEND_AUTO && can_run(ex, ex->backend, product)) return ex->backend;
  if (can_run(ex, LZN_BACKEND_ONEDNN, product) && m >= ONEDNN_MIN_TOKENS && m * w->rows * w->cols > OWN_MAX_PRODUCT)
    return LZN_BACKEND_ONEDNN;
  return LZN_BACKEND_OWN;
}
