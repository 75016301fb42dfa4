/*
 * xsmm.c: F32 products of a few tokens through libxsmm (linalg/xsmm.h).
 *
 * libxsmm 1.17 generates column-major C = A B with A not transposed, so
 *   linear      y = x W^T, W [n][k] row-major: W^T is a column-major k x n
 *               B as it lies; A is x transposed (k x m copied to m x k
 *               column-major, m * k floats), C the transposed output block
 *               (m x nb), copied back into y's columns: both copies are
 *               m-sized, next to the m * n * k multiply-adds.
 *   union axpy  y^T (d x m column-major, as y lies) += sum_b A_b B_b with
 *               A_b = W_t's row idx[b] (a d x 1 column) and B_b = the
 *               tokens' coefficients of that row (1 x m, ldb = coef_stride):
 *               libxsmm's batch-reduce GEMM over addresses, so the union is
 *               read in place with the d x m block of y in registers.
 * Both cut the output into blocks of XSMM_BLOCK columns of W (rows of
 * W^T), one pool item each.
 */
#include "linalg/xsmm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libxsmm.h>

#include "core/errors.h"
#include "cpu/cpu.h"

#define XSMM_CACHE 64
/* Output block per item: 64 rows of W (linear) or columns of y (axpy). */
#define XSMM_BLOCK 64

typedef enum xsmm_kind { XSMM_LINEAR, XSMM_AXPY } xsmm_kind;

typedef struct xsmm_entry {
  xsmm_kind kind;
  libxsmm_blasint m, n, k, lda, ldb, ldc;
  void (*fn)(void); /* libxsmm_smmfunction or ..._reducebatch_addr; NULL: none */
  int used;
} xsmm_entry;

struct lzn_xsmm {
  xsmm_entry entries[XSMM_CACHE];
  int n_entries, next_victim;
};

/* libxsmm picks its code for the CPU it finds; under a lower LZN_ISA
 * ceiling it is told the matching target (AVX2: "hsw", AVX-512 without
 * VNNI: "skx"), so a forced ISA holds for its kernels too. The ceiling is
 * the kernel table's, chosen once per process like libxsmm's target. */
static pthread_once_t xsmm_once = PTHREAD_ONCE_INIT;
static void xsmm_init(void) {
  libxsmm_init();
  const lzn_kernel_table *k;
  if (lzn_kernels_get(&k) != LZN_OK) return;
  if (k->isa < LZN_ISA_AVX512) libxsmm_set_target_arch("hsw");
  else if (k->isa < LZN_ISA_AVX512VNNI) libxsmm_set_target_arch("skx");
}

lzn_status lzn_xsmm_create(const lzn_kernel_table *kernels, lzn_xsmm **out) {
  *out = NULL;
  if (kernels->isa == LZN_ISA_SCALAR) return LZN_OK;
  lzn_xsmm *x = calloc(1, sizeof *x);
  if (x == NULL) return lzn_fail(LZN_ERR_NOMEM, "lzn_xsmm_create: out of memory");
  pthread_once(&xsmm_once, xsmm_init);
  *out = x;
  return LZN_OK;
}

void lzn_xsmm_free(lzn_xsmm *xsmm) { free(xsmm); }

/* The kernel of a shape: from the cache, or dispatched (and cached, even
 * when libxsmm has none). Both kinds accumulate (beta = 1) into C. */
static void (*kernel_for(lzn_xsmm *cache, xsmm_kind kind, libxsmm_blasint m, libxsmm_blasint n,
                         libxsmm_blasint k, libxsmm_blasint lda, libxsmm_blasint ldb, libxsmm_blasint ldc))(void) {
  for (int i = 0; i < cache->n_entries; i++) {
    const xsmm_entry *e = &cache->entries[i];
    if (e->kind == kind && e->m == m && e->n == n && e->k == k && e->lda == lda && e->ldb == ldb && e->ldc == ldc)
      return e->fn;
  }
  const float alpha = 1.0f, beta = kind == XSMM_LINEAR ? 0.0f : 1.0f;
  const int flags = kind == XSMM_LINEAR ? LIBXSMM_GEMM_FLAG_BETA_0 : LIBXSMM_GEMM_FLAG_NONE;
  const int prefetch = LIBXSMM_PREFETCH_NONE;
  void (*fn)(void) = NULL;
  if (kind == XSMM_LINEAR) {
    libxsmm_smmfunction f = libxsmm_smmdispatch(m, n, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, &prefetch);
    memcpy(&fn, &f, sizeof fn);
  } else {
    libxsmm_smmfunction_reducebatch_addr f =
        libxsmm_smmdispatch_reducebatch_addr(m, n, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, &prefetch);
    memcpy(&fn, &f, sizeof fn);
  }
  xsmm_entry *slot;
  if (cache->n_entries < XSMM_CACHE) slot = &cache->entries[cache->n_entries++];
  else {
    slot = &cache->entries[cache->next_victim];
    cache->next_victim = (cache->next_victim + 1) % XSMM_CACHE;
  }
  *slot = (xsmm_entry){kind, m, n, k, lda, ldb, ldc, fn, 1};
  return fn;
}

/* ------------------------------------------------------------------ linear */

typedef struct linear_job {
  libxsmm_smmfunction full, last; /* blocks of XSMM_BLOCK rows, and the last one's */
  const float *x_t;               /* [k][m]: x transposed */
  const lzn_matrix *w;
  float *y, *blocks;              /* blocks: XSMM_BLOCK * m floats per thread */
  int64_t m;
} linear_job;

static void linear_item(void *arg, int item, int thread) {
  const linear_job *j = arg;
  const int64_t n = j->w->rows, r0 = (int64_t)item * XSMM_BLOCK, m = j->m;
  const int64_t rows = n - r0 < XSMM_BLOCK ? n - r0 : XSMM_BLOCK;
  float *c = j->blocks + (size_t)thread * XSMM_BLOCK * (size_t)m; /* [rows][m] column-major: C(t, r) */
  (rows == XSMM_BLOCK ? j->full : j->last)(j->x_t, lzn_matrix_row(j->w, r0), c);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t t = 0; t < m; t++) j->y[t * n + r0 + r] = c[r * m + t];
}

int lzn_xsmm_linear(lzn_exec *ex, float *y, const float *x, const lzn_matrix *w, int64_t m) {
  if (ex->xsmm == NULL || w->type != LZN_WEIGHTS_F32) return 0;
  const int64_t n = w->rows, k = w->cols, last = n % XSMM_BLOCK ? n % XSMM_BLOCK : XSMM_BLOCK;
  void (*full)(void) = kernel_for(ex->xsmm, XSMM_LINEAR, m, XSMM_BLOCK, k, m, k, m);
  void (*tail)(void) = kernel_for(ex->xsmm, XSMM_LINEAR, m, last, k, m, k, m);
  if (full == NULL || tail == NULL) return 0;
  const int threads = ex->n_threads;
  void *scratch;
  if (lzn_exec_scratch(ex, LZN_SCRATCH_XSMM, ((size_t)(k * m) + (size_t)threads * XSMM_BLOCK * (size_t)m) * sizeof(float),
                       &scratch) != LZN_OK)
    return 0; /* the caller's path needs no such scratch */
  float *x_t = scratch;
  for (int64_t t = 0; t < m; t++)
    for (int64_t i = 0; i < k; i++) x_t[i * m + t] = x[t * k + i];
  linear_job job = {.x_t = x_t, .w = w, .y = y, .blocks = x_t + (size_t)(k * m), .m = m};
  memcpy(&job.full, &full, sizeof full);
  memcpy(&job.last, &tail, sizeof tail);
  lzn_pool_run(ex->pool, (int)((n + XSMM_BLOCK - 1) / XSMM_BLOCK), threads, linear_item, &job);
  return 1;
}

/* -------------------------------------------------------------- union axpy */

typedef struct axpy_job {
  libxsmm_smmfunction_reducebatch_addr full, last;
  const lzn_matrix *w_t;
  const int32_t *idx;
  size_t n;
  const float *coef;
  float *y;
  const void **addr; /* per thread: n addresses of A, then n of B */
} axpy_job;

static void axpy_item(void *arg, int item, int thread) {
  const axpy_job *j = arg;
  const size_t d = (size_t)j->w_t->cols, j0 = (size_t)item * XSMM_BLOCK;
  const void **a = j->addr + (size_t)thread * 2 * j->n, **b = a + j->n;
  for (size_t i = 0; i < j->n; i++) {
    a[i] = (const float *)lzn_matrix_row(j->w_t, j->idx ? j->idx[i] : (int64_t)i) + j0;
    b[i] = j->coef + i;
  }
  const unsigned long long count = j->n;
  (d - j0 >= XSMM_BLOCK ? j->full : j->last)((const float **)a, (const float **)b, j->y + j0, &count);
}

int lzn_xsmm_union_axpy(lzn_exec *ex, float *y, size_t y_stride, const lzn_matrix *w_t, const int32_t *idx,
                        size_t n, const float *coef, size_t coef_stride, int64_t m) {
  if (ex->xsmm == NULL || w_t->type != LZN_WEIGHTS_F32) return 0;
  if (n == 0 || m <= 0) return 1;
  const int64_t d = w_t->cols, last = d % XSMM_BLOCK ? d % XSMM_BLOCK : XSMM_BLOCK;
  void (*full)(void) = kernel_for(ex->xsmm, XSMM_AXPY, XSMM_BLOCK, m, 1, d, (libxsmm_blasint)coef_stride,
                                  (libxsmm_blasint)y_stride);
  void (*tail)(void) = kernel_for(ex->xsmm, XSMM_AXPY, last, m, 1, d, (libxsmm_blasint)coef_stride,
                                  (libxsmm_blasint)y_stride);
  if (full == NULL || tail == NULL) return 0;
  const int threads = ex->n_threads;
  void *scratch;
  if (lzn_exec_scratch(ex, LZN_SCRATCH_XSMM, (size_t)threads * 2 * n * sizeof(void *), &scratch) != LZN_OK) return 0;
  axpy_job job = {.w_t = w_t, .idx = idx, .n = n, .coef = coef, .y = y, .addr = scratch};
  memcpy(&job.full, &full, sizeof full);
  memcpy(&job.last, &tail, sizeof tail);
  lzn_pool_run(ex->pool, (int)((d + XSMM_BLOCK - 1) / XSMM_BLOCK), threads, axpy_item, &job);
  return 1;
}
