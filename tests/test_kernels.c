/*
 * test_kernels.c: the active kernel table (the one LZN_ISA forces, else the
 * best this machine runs) against the reference table (ceiling scalar).
 * Run once per ISA (`make test` does), so every SIMD kernel is compared
 * with the specification over odd sizes, densities and index patterns.
 *
 * Two kinds of data:
 *  - integer-valued (weights in [-8, 8], coefficients in [-4, 4]): every
 *    partial sum is an integer below 2^24, so fp32 is exact in any order and
 *    with or without FMA, and SIMD must equal scalar exactly. A wrong row,
 *    column, coefficient or tail lane shows up as a wrong integer.
 *  - random floats in [-1, 1): checks against the rounding bounds below.
 * Rows the kernel must not read are filled with NaN, and inputs end right
 * before an inaccessible page, so reading an inactive row, a column past d
 * or a float past an array's end fails the test.
 */
#include <float.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/errors.h"
#include "cpu/cpu.h"
#include "testutil.h"

/* ---------------------------------------------------------- tolerances */

/* relu_compact only compares and copies: indices, count and values must be
 * identical to scalar, bit for bit. (No constant: the test uses memcmp.) */

/* A sum computed with k rounded operations per term is within
 * gamma_k * S of the exact sum, S = sum of |terms|, gamma_k = k*u/(1 - k*u),
 * u = FLT_EPSILON / 2 (Higham, "Accuracy and Stability of Numerical
 * Algorithms", 2002, section 3.1), whatever the order of the additions.
 * Scalar and SIMD each obey the bound, so they differ by at most
 * 2 * gamma_k * S ~ k * FLT_EPSILON * S. ROUNDING_SLACK covers the
 * 1 / (1 - k*u) factor (k*u < 1e-3 here) and the double-precision S. */
#define ROUNDING_SLACK 1.01
/* axpy_rows: y[j] passes through one multiply per row and at most one add
 * per row, k = n + 1 for n rows; FMA only removes roundings. */
#define AXPY_ROUNDINGS(n_rows) ((double)(n_rows) + 1.0)
/* dot_rows: one multiply and at most d - 1 adds per term in any summation
 * order (lanes, then a tree), k = d. */
#define DOT_ROUNDINGS(d) ((double)(d))
/* The bound above assumes no underflow; this absorbs the absolute error of
 * a subnormal product, per term (none is expected with these inputs). */
#define UNDERFLOW_SLACK ((double)FLT_MIN)

/* -------------------------------------------------------------- helpers */

static const lzn_kernel_table *reference_kernels(void) {
  static lzn_kernel_table ref;
  if (ref.relu_compact == NULL) lzn_kernel_table_fill(LZN_ISA_SCALAR, 0, &ref);
  return &ref;
}

static const lzn_kernel_table *active_kernels(void) {
  const lzn_kernel_table *k = NULL;
  const lzn_status s = lzn_kernels_get(&k);
  ck_assert_msg(s == LZN_OK && k != NULL, "lzn_kernels_get: %s", lzn_last_error());
  return k;
}

/* Memory for n_bytes that ends exactly where an inaccessible page begins,
 * so a read or write past the end faults (a full-vector load in a tail,
 * say). The start is then only 4-byte aligned, as w + j0 may be. */
typedef struct {
  void *map;
  size_t map_bytes;
  void *data;
} guarded;

static guarded guarded_alloc(size_t n_bytes) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t data_pages = (n_bytes + page - 1) / page;
  guarded g;
  g.map_bytes = (data_pages + 1) * page;
  g.map = mmap(NULL, g.map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ck_assert_msg(g.map != MAP_FAILED, "mmap of %zu bytes failed", g.map_bytes);
  char *guard = (char *)g.map + data_pages * page;
  ck_assert_int_eq(mprotect(guard, page, PROT_NONE), 0);
  g.data = guard - n_bytes;
  return g;
}

static void guarded_free(guarded *g) {
  if (g->map) munmap(g->map, g->map_bytes);
  g->map = NULL;
}

typedef enum { DATA_INTEGER, DATA_FLOAT } data_kind;

static float random_value(test_rng *r, data_kind kind, int max_int) {
  if (kind == DATA_INTEGER) return (float)((int)rng_below(r, (uint64_t)(2 * max_int + 1)) - max_int);
  return rng_float(r);
}

/* Active-row patterns: which rows of an f-row matrix a call reads. */
typedef enum {
  ROWS_NONE,        /* density 0: n = 0 */
  ROWS_FIRST,       /* one row, the first */
  ROWS_LAST,        /* one row, the last */
  ROWS_RANDOM_3,    /* 3 % at random, increasing (what relu_compact gives) */
  ROWS_RANDOM_50,   /* 50 % at random, increasing */
  ROWS_ALL,         /* 100 % */
  ROWS_CLUSTERED,   /* contiguous runs of 1..40 rows with gaps */
  ROWS_FEW,         /* 1..23 rows: a partial group, or groups plus a rest */
  ROWS_SHUFFLED,    /* any order, with repeats: the contract allows it */
  ROWS_N_PATTERNS
} rows_pattern;

static const char *const pattern_names[ROWS_N_PATTERNS] = {
    "none", "first", "last", "random 3%", "random 50%", "all", "clustered", "few", "shuffled"};

/* Room make_rows needs for an f-row matrix (repeats may exceed f). */
static size_t rows_capacity(size_t f) { return 2 * f + 64; }

/* Writes the pattern's rows to idx (room for rows_capacity(f)) and returns
 * how many. */
static size_t make_rows(test_rng *r, rows_pattern pattern, size_t f, int32_t *idx) {
  size_t n = 0;
  switch (pattern) {
  case ROWS_NONE: break;
  case ROWS_FIRST: idx[n++] = 0; break;
  case ROWS_LAST: idx[n++] = (int32_t)(f - 1); break;
  case ROWS_RANDOM_3:
  case ROWS_RANDOM_50: {
    const uint64_t per_100 = pattern == ROWS_RANDOM_3 ? 3 : 50;
    for (size_t i = 0; i < f; i++)
      if (rng_below(r, 100) < per_100) idx[n++] = (int32_t)i;
    break;
  }
  case ROWS_ALL:
    for (size_t i = 0; i < f; i++) idx[n++] = (int32_t)i;
    break;
  case ROWS_CLUSTERED:
    for (size_t i = rng_below(r, 8); i < f;) {
      const size_t run = 1 + rng_below(r, 40);
      for (size_t k = 0; k < run && i < f; k++) idx[n++] = (int32_t)i++;
      i += 1 + rng_below(r, 100);
    }
    break;
  case ROWS_FEW: {
    const size_t want = 1 + rng_below(r, 23);
    for (size_t k = 0; k < want; k++) idx[n++] = (int32_t)rng_below(r, f);
    break;
  }
  case ROWS_SHUFFLED: {
    const size_t want = 1 + f / 10 + rng_below(r, 20);
    for (size_t k = 0; k < want; k++) idx[n++] = (int32_t)rng_below(r, f);
    for (size_t k = 0; k < want / 4; k++) idx[n++] = idx[rng_below(r, want)]; /* repeats */
    break;
  }
  case ROWS_N_PATTERNS: break;
  }
  return n;
}

/* A matrix of f rows of ld floats in guarded memory, the last row ending at
 * the guard page. Rows named in idx and columns [j0, j0 + d) get data; the
 * rest is NaN, so a kernel that reads them produces NaN. */
static guarded make_matrix(test_rng *r, data_kind kind, size_t f, size_t ld, size_t j0, size_t d,
                           const int32_t *idx, size_t n) {
  guarded g = guarded_alloc(f * ld * sizeof(float));
  float *w = g.data;
  for (size_t i = 0; i < f * ld; i++) w[i] = NAN;
  for (size_t t = 0; t < n; t++) {
    float *row = w + (size_t)idx[t] * ld;
    if (!isnan(row[j0])) continue; /* a repeated row keeps its values */
    for (size_t j = j0; j < j0 + d; j++) row[j] = random_value(r, kind, 8);
  }
  return g;
}

/* ---------------------------------------------------------- dispatch */

START_TEST(forced_isa_is_the_active_one) {
  const lzn_kernel_table *k = active_kernels();
  const char *forced = getenv("LZN_ISA");
  if (forced != NULL && forced[0] != '\0') {
    ck_assert_str_eq(k->name, forced);
  } else {
    /* Unforced: the best ISA this machine runs. */
    static const char *const by_rank[] = {"avx512vnni", "avx512bf16", "avx512", "avxvnni", "avx2", "scalar"};
    const char *best = "scalar";
    for (size_t i = 0; i < sizeof by_rank / sizeof by_rank[0]; i++)
      if (lzn_isa_supported(by_rank[i])) {
        best = by_rank[i];
        break;
      }
    ck_assert_str_eq(k->name, best);
  }
  ck_assert_str_eq(lzn_isa_name(), k->name);
}
END_TEST

START_TEST(table_is_complete_and_consistent) {
  const lzn_kernel_table *k = active_kernels();
  ck_assert_int_ge(k->isa, LZN_ISA_SCALAR);
  ck_assert_int_lt(k->isa, LZN_ISA_COUNT);
  ck_assert_str_eq(k->name, lzn_isa_to_name(k->isa));
  ck_assert_ptr_nonnull(k->relu_compact);
  ck_assert_int_le(k->relu_compact_isa, k->isa);
  /* No slot is ever empty, and none is filled by an ISA above the ceiling. */
  for (int w = 0; w <= LZN_WTYPE_F32; w++) { /* the other types' ref/ files come next */
    const lzn_type_kernels *t = &k->type[w];
    ck_assert_msg(t->axpy_rows && t->dot_rows && t->gemv && t->from_f32 && t->to_f32,
                  "type %d has an empty slot", w);
    for (int op = 0; op < LZN_KOP_COUNT; op++) ck_assert_int_le(k->slot_isa[w][op], k->isa);
  }
}
END_TEST

/* ------------------------------------------------------- relu_compact */

static const size_t relu_lengths[] = {1, 7, 15, 16, 17, 33, 1000, 8197};
#define N_RELU_LENGTHS (sizeof relu_lengths / sizeof relu_lengths[0])

/* Runs scalar and active relu_compact on h[0..n) and requires identical
 * results. Inputs and outputs end at a guard page. */
static void check_relu_compact(const lzn_kernel_table *k, const float *h_src, size_t n, float threshold,
                               const char *what) {
  guarded h_mem = guarded_alloc(n * sizeof(float));
  guarded idx_mem = guarded_alloc(n * sizeof(int32_t)), val_mem = guarded_alloc(n * sizeof(float));
  float *h = h_mem.data;
  memcpy(h, h_src, n * sizeof(float));
  int32_t *ref_idx = malloc(n * sizeof(int32_t));
  float *ref_val = malloc(n * sizeof(float));
  ck_assert(ref_idx && ref_val);

  const size_t ref_n = reference_kernels()->relu_compact(h, n, threshold, ref_idx, ref_val);
  int32_t *idx = idx_mem.data;
  float *val = val_mem.data;
  const size_t got_n = k->relu_compact(h, n, threshold, idx, val);

  ck_assert_msg(got_n == ref_n, "relu_compact %s, n=%zu, threshold=%g: %zu active, scalar %zu",
                what, n, (double)threshold, got_n, ref_n);
  /* Plain ifs in the loops: a passing ck_assert costs a message to the
   * parent process, too slow per element. */
  for (size_t t = 0; t < ref_n; t++) {
    if (idx[t] != ref_idx[t])
      ck_abort_msg("relu_compact %s, n=%zu, threshold=%g: idx[%zu] = %d, scalar %d",
                   what, n, (double)threshold, t, idx[t], ref_idx[t]);
    if (memcmp(&val[t], &ref_val[t], sizeof(float)) != 0)
      ck_abort_msg("relu_compact %s, n=%zu, threshold=%g: val[%zu] = %a, scalar %a", what, n,
                   (double)threshold, t, (double)val[t], (double)ref_val[t]);
  }
  if (memcmp(h, h_src, n * sizeof(float)) != 0)
    ck_abort_msg("relu_compact %s, n=%zu: the input h was modified", what, n);
  free(ref_idx);
  free(ref_val);
  guarded_free(&h_mem);
  guarded_free(&idx_mem);
  guarded_free(&val_mem);
}

static const float relu_thresholds[] = {0.0f, -0.0f, 0.25f, 1e-45f /* smallest subnormal */};
#define N_RELU_THRESHOLDS (sizeof relu_thresholds / sizeof relu_thresholds[0])

/* Values that sit on the edges of the comparison. */
static float special_value(test_rng *r, float threshold) {
  switch (rng_below(r, 12)) {
  case 0: return NAN;
  case 1: return -NAN;
  case 2: return 0.0f;
  case 3: return -0.0f;
  case 4: return INFINITY;
  case 5: return -INFINITY;
  case 6: return threshold;
  case 7: return nextafterf(threshold, INFINITY);
  case 8: return nextafterf(threshold, -INFINITY);
  case 9: return 1e-45f;
  case 10: return FLT_MAX;
  default: {
    float snan; /* a signalling NaN: the compare must not trap or pass it */
    const uint32_t bits = 0x7fa00001u;
    memcpy(&snan, &bits, sizeof snan);
    return snan;
  }
  }
}

START_TEST(relu_compact_matches_scalar_on_random_inputs) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x5eed0001u};
  float *h = malloc(8197 * sizeof(float));
  ck_assert_ptr_nonnull(h);
  for (size_t li = 0; li < N_RELU_LENGTHS; li++) {
    const size_t n = relu_lengths[li];
    for (size_t ti = 0; ti < N_RELU_THRESHOLDS; ti++) {
      const float threshold = relu_thresholds[ti];
      /* Uniform in [-1, 1): about half active. */
      fill_random(&r, h, n);
      check_relu_compact(k, h, n, threshold, "uniform");
      /* Sparse: about 3 % positive, as after a trained ReLU layer. */
      for (size_t i = 0; i < n; i++) h[i] = rng_below(&r, 100) < 3 ? 1.0f + rng_float(&r) : -fabsf(rng_float(&r));
      check_relu_compact(k, h, n, threshold, "3% active");
      /* One in three a special value. */
      for (size_t i = 0; i < n; i++) h[i] = rng_below(&r, 3) == 0 ? special_value(&r, threshold) : rng_float(&r);
      check_relu_compact(k, h, n, threshold, "special values");
    }
  }
  free(h);
}
END_TEST

START_TEST(relu_compact_edge_densities) {
  const lzn_kernel_table *k = active_kernels();
  float *h = malloc(8197 * sizeof(float));
  ck_assert_ptr_nonnull(h);
  for (size_t li = 0; li < N_RELU_LENGTHS; li++) {
    const size_t n = relu_lengths[li];
    for (size_t i = 0; i < n; i++) h[i] = -1.0f;
    check_relu_compact(k, h, n, 0.0f, "none active");
    h[0] = 2.0f;
    check_relu_compact(k, h, n, 0.0f, "first only");
    h[0] = -1.0f, h[n - 1] = 3.0f;
    check_relu_compact(k, h, n, 0.0f, "last only");
    for (size_t i = 0; i < n; i++) h[i] = 1.0f + (float)i;
    check_relu_compact(k, h, n, 0.0f, "all active");
    for (size_t i = 0; i < n; i++) h[i] = (i & 1) ? 0.5f : -0.0f;
    check_relu_compact(k, h, n, 0.0f, "alternating with -0.0");
    for (size_t i = 0; i < n; i++) h[i] = NAN;
    check_relu_compact(k, h, n, 0.0f, "all NaN");
    for (size_t i = 0; i < n; i++) h[i] = 0.25f;
    check_relu_compact(k, h, n, 0.25f, "all equal to the threshold");
  }
  free(h);
}
END_TEST

/* Block b of 16 entries has entry i active iff bit i of b is set, for every
 * b < 2^16: each packing of a vector (every 8-lane mask twice over, every
 * 16-lane mask) is exercised, whatever the vector width. */
START_TEST(relu_compact_every_lane_pattern) {
  const lzn_kernel_table *k = active_kernels();
  const size_t n = 16u << 16;
  float *h = malloc(n * sizeof(float));
  ck_assert_ptr_nonnull(h);
  for (size_t i = 0; i < n; i++) h[i] = ((i >> 4) >> (i & 15)) & 1 ? 1.0f + (float)(i & 15) : -1.0f;
  check_relu_compact(k, h, n, 0.0f, "every lane pattern");
  free(h);
}
END_TEST

/* --------------------------------------------------------- axpy_rows */

static const size_t test_dims[] = {1, 7, 15, 16, 17, 64, 100, 2051};
#define N_TEST_DIMS (sizeof test_dims / sizeof test_dims[0])
#define TEST_ROWS 8197

/* One axpy_rows call, active vs scalar, on w + j0 (d columns, leading
 * dimension ld, f rows): exact for integer data, within the rounding bound
 * for floats. Columns of y outside [j0, j0 + d) must be left alone. */
static void check_axpy(const lzn_kernel_table *k, test_rng *r, data_kind kind, size_t f, size_t ld,
                       size_t j0, size_t d, rows_pattern pattern) {
  int32_t *idx = malloc(rows_capacity(f) * sizeof(int32_t));
  float *coef = malloc(rows_capacity(f) * sizeof(float));
  ck_assert(idx && coef);
  const size_t n = make_rows(r, pattern, f, idx);
  guarded w_mem = make_matrix(r, kind, f, ld, j0, d, idx, n);
  const float *w = (const float *)w_mem.data + j0;
  for (size_t t = 0; t < n; t++) coef[t] = random_value(r, kind, 4);

  /* y is a slice of a row of ld floats, like a thread's share of y. */
  guarded y_mem = guarded_alloc(ld * sizeof(float));
  float *y_full = y_mem.data, *y0 = malloc(ld * sizeof(float)), *ref = malloc(ld * sizeof(float));
  ck_assert(y0 && ref);
  for (size_t j = 0; j < ld; j++) y0[j] = random_value(r, kind, 64);
  memcpy(y_full, y0, ld * sizeof(float));
  memcpy(ref, y0, ld * sizeof(float));

  reference_kernels()->type[LZN_WTYPE_F32].axpy_rows(ref + j0, d, w, ld * sizeof(float), idx, coef, n);
  k->type[LZN_WTYPE_F32].axpy_rows(y_full + j0, d, w, ld * sizeof(float), idx, coef, n);

  for (size_t j = 0; j < ld; j++) {
    if (j < j0 || j >= j0 + d) {
      if (memcmp(&y_full[j], &y0[j], sizeof(float)) != 0)
        ck_abort_msg("axpy_rows wrote y[%zu] outside its slice [%zu, %zu)", j, j0, j0 + d);
      continue;
    }
    const double got = y_full[j], want = ref[j];
    double bound = 0.0;
    if (kind == DATA_FLOAT) {
      double sum_abs = fabs((double)y0[j]);
      for (size_t t = 0; t < n; t++) sum_abs += fabs((double)coef[t] * w[(size_t)idx[t] * ld + j - j0]);
      bound = ROUNDING_SLACK * AXPY_ROUNDINGS(n) * FLT_EPSILON * sum_abs + UNDERFLOW_SLACK * (double)n;
    }
    if (!(fabs(got - want) <= bound))
      ck_abort_msg("axpy_rows %s %s: f=%zu ld=%zu j0=%zu d=%zu n=%zu: y[%zu] = %.9g, scalar %.9g (bound %.3g)",
                   kind == DATA_INTEGER ? "integer" : "float", pattern_names[pattern], f, ld, j0, d, n,
                   j - j0, got, want, bound);
  }
  free(idx);
  free(coef);
  free(y0);
  free(ref);
  guarded_free(&w_mem);
  guarded_free(&y_mem);
}

static void axpy_all_patterns(data_kind kind, uint64_t seed) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {seed};
  for (size_t di = 0; di < N_TEST_DIMS; di++)
    for (int p = 0; p < ROWS_N_PATTERNS; p++)
      check_axpy(k, &r, kind, TEST_ROWS, test_dims[di], 0, test_dims[di], (rows_pattern)p);
}

START_TEST(axpy_rows_exact_on_integer_data) { axpy_all_patterns(DATA_INTEGER, 0x5eed0002u); }
END_TEST

START_TEST(axpy_rows_within_rounding_on_float_data) { axpy_all_patterns(DATA_FLOAT, 0x5eed0003u); }
END_TEST

/* Column slices (ld > d), as the threaded down-projection passes them:
 * w + j0 unaligned, d not a multiple of any vector width. */
static const size_t slice_ld[] = {100, 2051};
static const size_t slice_j0[] = {1, 3, 16, 33};
static const size_t slice_d[] = {1, 7, 16, 17, 50, 67};

START_TEST(axpy_rows_on_column_slices) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x5eed0004u};
  for (size_t li = 0; li < sizeof slice_ld / sizeof slice_ld[0]; li++)
    for (size_t ji = 0; ji < sizeof slice_j0 / sizeof slice_j0[0]; ji++)
      for (size_t di = 0; di < sizeof slice_d / sizeof slice_d[0]; di++) {
        const size_t ld = slice_ld[li], j0 = slice_j0[ji], d = slice_d[di];
        check_axpy(k, &r, DATA_INTEGER, 517, ld, j0, d, ROWS_RANDOM_50);
        check_axpy(k, &r, DATA_FLOAT, 517, ld, j0, d, ROWS_CLUSTERED);
      }
  /* The last column of the matrix in the slice: a tail read past d would
   * touch the guard page. */
  check_axpy(k, &r, DATA_INTEGER, 517, 2051, 2051 - 1000, 1000, ROWS_RANDOM_50);
  check_axpy(k, &r, DATA_INTEGER, 517, 2051, 2051 - 1001, 1001, ROWS_ALL);
}
END_TEST

/* Every group split: n = 0..40 rows (full groups of 8 and every rest). */
START_TEST(axpy_rows_every_group_split) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x5eed0005u};
  static const size_t dims[] = {5, 16, 130};
  for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
    for (size_t f = 1; f <= 40; f++) check_axpy(k, &r, DATA_INTEGER, f, dims[di], 0, dims[di], ROWS_ALL);
}
END_TEST

/* ---------------------------------------------------------- dot_rows */

/* One dot_rows call, active vs scalar, on w + j0 (d columns, leading
 * dimension ld, f rows), x of d floats ending at a guard page. */
static void check_dot(const lzn_kernel_table *k, test_rng *r, data_kind kind, size_t f, size_t ld,
                      size_t j0, size_t d, rows_pattern pattern) {
  int32_t *idx = malloc(rows_capacity(f) * sizeof(int32_t));
  ck_assert_ptr_nonnull(idx);
  const size_t n = make_rows(r, pattern, f, idx);
  guarded w_mem = make_matrix(r, kind, f, ld, j0, d, idx, n);
  const float *w = (const float *)w_mem.data + j0;
  guarded x_mem = guarded_alloc(d * sizeof(float));
  float *x = x_mem.data;
  for (size_t j = 0; j < d; j++) x[j] = random_value(r, kind, 8);
  /* out has n entries ending at a guard page. */
  guarded out_mem = guarded_alloc((n ? n : 1) * sizeof(float));
  float *out = (float *)out_mem.data + (n ? 0 : 1), *ref = malloc((n + 1) * sizeof(float));
  ck_assert_ptr_nonnull(ref);

  reference_kernels()->type[LZN_WTYPE_F32].dot_rows(ref, w, ld * sizeof(float), d, idx, n, x);
  k->type[LZN_WTYPE_F32].dot_rows(out, w, ld * sizeof(float), d, idx, n, x);

  for (size_t t = 0; t < n; t++) {
    const float *row = w + (size_t)idx[t] * ld;
    double bound = 0.0;
    if (kind == DATA_FLOAT) {
      double sum_abs = 0.0;
      for (size_t j = 0; j < d; j++) sum_abs += fabs((double)row[j] * x[j]);
      bound = ROUNDING_SLACK * DOT_ROUNDINGS(d) * FLT_EPSILON * sum_abs + UNDERFLOW_SLACK * (double)d;
    }
    if (!(fabs((double)out[t] - (double)ref[t]) <= bound))
      ck_abort_msg("dot_rows %s %s: f=%zu ld=%zu j0=%zu d=%zu n=%zu: out[%zu] (row %d) = %.9g, scalar %.9g (bound %.3g)",
                   kind == DATA_INTEGER ? "integer" : "float", pattern_names[pattern], f, ld, j0, d, n, t,
                   idx[t], (double)out[t], (double)ref[t], bound);
  }
  free(idx);
  free(ref);
  guarded_free(&w_mem);
  guarded_free(&x_mem);
  guarded_free(&out_mem);
}

static void dot_all_patterns(data_kind kind, uint64_t seed) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {seed};
  for (size_t di = 0; di < N_TEST_DIMS; di++)
    for (int p = 0; p < ROWS_N_PATTERNS; p++)
      check_dot(k, &r, kind, TEST_ROWS, test_dims[di], 0, test_dims[di], (rows_pattern)p);
}

START_TEST(dot_rows_exact_on_integer_data) { dot_all_patterns(DATA_INTEGER, 0x5eed0006u); }
END_TEST

START_TEST(dot_rows_within_rounding_on_float_data) { dot_all_patterns(DATA_FLOAT, 0x5eed0007u); }
END_TEST

START_TEST(dot_rows_on_column_slices) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x5eed0008u};
  for (size_t li = 0; li < sizeof slice_ld / sizeof slice_ld[0]; li++)
    for (size_t ji = 0; ji < sizeof slice_j0 / sizeof slice_j0[0]; ji++)
      for (size_t di = 0; di < sizeof slice_d / sizeof slice_d[0]; di++) {
        const size_t ld = slice_ld[li], j0 = slice_j0[ji], d = slice_d[di];
        check_dot(k, &r, DATA_INTEGER, 517, ld, j0, d, ROWS_RANDOM_50);
        check_dot(k, &r, DATA_FLOAT, 517, ld, j0, d, ROWS_CLUSTERED);
      }
  check_dot(k, &r, DATA_INTEGER, 517, 2051, 2051 - 1000, 1000, ROWS_RANDOM_50);
  check_dot(k, &r, DATA_INTEGER, 517, 2051, 2051 - 1001, 1001, ROWS_ALL);
}
END_TEST

START_TEST(dot_rows_every_group_split) {
  const lzn_kernel_table *k = active_kernels();
  test_rng r = {0x5eed0009u};
  static const size_t dims[] = {5, 16, 130};
  for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
    for (size_t f = 1; f <= 40; f++) check_dot(k, &r, DATA_INTEGER, f, dims[di], 0, dims[di], ROWS_ALL);
}
END_TEST

/* ------------------------------------------------------------- suite */

static Suite *kernels_suite(void) {
  Suite *s = suite_create("kernels");
  TCase *dispatch = tcase_create("dispatch");
  tcase_add_test(dispatch, forced_isa_is_the_active_one);
  tcase_add_test(dispatch, table_is_complete_and_consistent);
  suite_add_tcase(s, dispatch);

  TCase *relu = tcase_create("relu_compact");
  tcase_set_timeout(relu, 60);
  tcase_add_test(relu, relu_compact_matches_scalar_on_random_inputs);
  tcase_add_test(relu, relu_compact_edge_densities);
  tcase_add_test(relu, relu_compact_every_lane_pattern);
  suite_add_tcase(s, relu);

  TCase *axpy = tcase_create("axpy_rows");
  tcase_set_timeout(axpy, 60);
  tcase_add_test(axpy, axpy_rows_exact_on_integer_data);
  tcase_add_test(axpy, axpy_rows_within_rounding_on_float_data);
  tcase_add_test(axpy, axpy_rows_on_column_slices);
  tcase_add_test(axpy, axpy_rows_every_group_split);
  suite_add_tcase(s, axpy);

  TCase *dot = tcase_create("dot_rows");
  tcase_set_timeout(dot, 60);
  tcase_add_test(dot, dot_rows_exact_on_integer_data);
  tcase_add_test(dot, dot_rows_within_rounding_on_float_data);
  tcase_add_test(dot, dot_rows_on_column_slices);
  tcase_add_test(dot, dot_rows_every_group_split);
  suite_add_tcase(s, dot);
  return s;
}

int main(void) { return run_suite(kernels_suite()); }
