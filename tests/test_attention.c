/*
 * test_attention.c: the KV cache types and the attention core.
 *
 *  - kernels: the active table's attention kernels (the ISA LZN_ISA forces,
 *    else the best this machine runs) against the reference (ref/attn.c) in
 *    every KV type, over head_dims that are not powers of two, 1 to ~2000
 *    positions and 1 to 8 queries at a time, within fp32 rounding bounds;
 *    the store kernels bit for bit.
 *  - core: lzn_attention_core on caches the test fills, against a
 *    double-precision softmax over the values the cache holds, for GQA
 *    ratios 1, 2 and all heads, prefill tiles across key tiles, a decode at
 *    position 1999, scores so large a softmax without the max subtracted
 *    overflows, and 1 against 2 threads.
 *  - models: the LLaMA and OPT fixtures in every KV type against PyTorch
 *    (fp32 K/V) within a tolerance per type; one prefill call against
 *    token-by-token decode; kv_type validation and lzn_context_kv_bytes.
 */
#include <float.h>
#include <string.h>

#include "cpu/cpu.h"
#include "kernels/kernels.h"
#include "forward/attention.h"
#include "model/kv_cache.h"
#include "reference.h"
#include "kernel_testutil.h"
#include "testutil.h"

/* ---------------------------------------------------------- tolerances */

/* Kernels: a sum of k rounded terms is within gamma_k * S of the exact sum,
 * S = sum of |terms|, gamma_k ~ k * FLT_EPSILON / 2, in any order of the
 * additions (Higham, "Accuracy and Stability of Numerical Algorithms",
 * 2002, 3.1); the reference and the SIMD kernel each obey it, so they differ
 * by at most k * FLT_EPSILON * S. ROUNDING_SLACK covers the 1 / (1 - k u)
 * factor and the double-precision S; FLT_MIN absorbs a subnormal product. */
#define ROUNDING_SLACK 1.01
/* scores: one multiply and hd - 1 adds per term: k = hd. weighted_sum:
 * out_c passes through one multiply and one add per position: k = n + 1. */
#define SCORE_ROUNDINGS(hd) ((double)(hd))
#define SUM_ROUNDINGS(n_pos) ((double)(n_pos) + 1.0)
/* attn_exp_sum: each exponential within EXP_ULPS ulp (FLT_EPSILON / 2 of
 * relative error each) of libm's expf, which is itself within 1 ulp of
 * e^x (glibc); the x86 kernels' polynomial measures ~2 ulp. */
#define EXP_ULPS 8.0

/* Core against the double-precision softmax over the cached values: a score
 * off by delta (its rounding, bounded as above) moves its weight by a
 * relative ~delta, and the max-subtracted exponent by as much: 2 * delta.
 * expf is within a few ulp (EXP_ULPS), the running sum and the weighted sum
 * add n_pos roundings each, the online rescaling one per key tile. So
 * |out - exact| <= max|V| * (2 * delta + (2 * n_pos + EXP_ULPS + tiles) *
 * FLT_EPSILON), times CORE_SLACK for the rounding of the normalisation. */
#define CORE_SLACK 1.5

/* Fixtures against PyTorch (fp32 K/V there), error / max |logit|. F32 is the
 * suites' usual 1e-4 (fp32 in another order). The others add the rounding
 * of every cached K and V value, relative 2^-11 for F16, 2^-8 for BF16, and
 * for Q8_0 up to half a step of amax / 127 per block (~2^-8 of the block's
 * largest value), carried through the layers of a fixture: the measured
 * worst errors over these fixtures and ISAs were F32 5e-7, F16 3.0e-4, BF16
 * 2.0e-3, Q8_0 5.3e-3; the tolerances leave 4-5x of that. */
static const double TOL_KV[LZN_KV_TYPE_COUNT] = {1e-4, 1.5e-3, 1e-2, 2e-2};
/* One prefill call against token-by-token decode in the same KV type. The
 * core does the same arithmetic per row either way (core_prefill_equals_
 * decode checks it bit for bit); the projections (one GEMM against GEMVs)
 * round in another order, 1e-5 as sparse against dense in test_llama.c.
 * In a rounded KV type that fp32 difference occasionally puts a K/V value
 * on the other side of a rounding boundary, one step of the type (2^-11
 * F16, 2^-8 BF16 and Q8_0): measured worst 2.9e-5 F16, 9.9e-5 BF16, 1.3e-5
 * Q8_0, so a tenth of the type's tolerance against PyTorch. */
static const double TOL_PREFILL_VS_DECODE[LZN_KV_TYPE_COUNT] = {1e-5, 1.5e-4, 1e-3, 2e-3};

static const char *const kv_names[LZN_KV_TYPE_COUNT] = {"f32", "f16", "bf16", "q8_0"};
static const size_t head_dims[] = {10, 12, 20, 80, 96, 128};
#define N_HEAD_DIMS (sizeof head_dims / sizeof head_dims[0])

/* Row j of a cache, widened to fp32 by the reference to_f32 of its type. */
static void widen_row(float *dst, lzn_weight_type type, const void *rows, size_t row_bytes, size_t j,
                      size_t hd) {
  reference_kernels()->type[type].to_f32.fn(dst, (const char *)rows + j * row_bytes, hd);
}

/* -------------------------------------------------------------- kernels */

typedef struct kernel_case {
  size_t n_pos, n_q;
} kernel_case;

static const kernel_case kernel_cases[] = {{1, 1}, {3, 2}, {4, 1}, {7, 3}, {37, 4}, {130, 8}, {2000, 1}, {2000, 2}};

START_TEST(kernels_match_reference) {
  const lzn_kv_type kv = (lzn_kv_type)_i;
  const lzn_weight_type type = lzn_kv_weight_type(kv);
  const lzn_attn_kernels *ref = &reference_kernels()->attn[kv], *act = &active_kernels()->attn[kv];
  ck_assert(act->scores.fn != NULL && act->weighted_sum.fn != NULL && act->store.fn != NULL);
  test_rng rng = {0x61747465 + (uint64_t)_i};
  for (size_t h = 0; h < N_HEAD_DIMS; h++)
    for (size_t k = 0; k < sizeof kernel_cases / sizeof kernel_cases[0]; k++) {
      const size_t hd = head_dims[h], n_pos = kernel_cases[k].n_pos, n_q = kernel_cases[k].n_q;
      const size_t row_bytes = lzn_wtype_row_bytes(type, hd), src_stride = hd + 3;
      const size_t q_stride = hd + 1, s_stride = n_pos + 5, o_stride = hd + 2;
      float *src = malloc(sizeof(float) * n_pos * src_stride);
      char *rows = malloc(n_pos * row_bytes), *rows_act = malloc(n_pos * row_bytes);
      float *q = malloc(sizeof(float) * n_q * q_stride), *wide = malloc(sizeof(float) * n_pos * hd);
      float *s_ref = calloc(n_q * s_stride, sizeof(float)), *s_act = calloc(n_q * s_stride, sizeof(float));
      float *o_ref = malloc(sizeof(float) * n_q * o_stride), *o_act = malloc(sizeof(float) * n_q * o_stride);
      fill_random(&rng, src, n_pos * src_stride);
      fill_random(&rng, q, n_q * q_stride);
      fill_random(&rng, o_ref, n_q * o_stride);
      memcpy(o_act, o_ref, sizeof(float) * n_q * o_stride);
      ref->store.fn(rows, row_bytes, src, src_stride, n_pos, hd);
      act->store.fn(rows_act, row_bytes, src, src_stride, n_pos, hd);
      ck_assert_msg(memcmp(rows, rows_act, n_pos * row_bytes) == 0, "%s store hd %zu", kv_names[kv], hd);
      for (size_t j = 0; j < n_pos; j++) widen_row(wide + j * hd, type, rows, row_bytes, j, hd);

      ref->scores.fn(s_ref, s_stride, q, q_stride, n_q, rows, row_bytes, n_pos, hd);
      act->scores.fn(s_act, s_stride, q, q_stride, n_q, rows, row_bytes, n_pos, hd);
      for (size_t i = 0; i < n_q; i++)
        for (size_t j = 0; j < n_pos; j++) {
          double sum_abs = 0;
          for (size_t c = 0; c < hd; c++) sum_abs += fabs((double)q[i * q_stride + c] * wide[j * hd + c]);
          const double bound = ROUNDING_SLACK * SCORE_ROUNDINGS(hd) * FLT_EPSILON * sum_abs + hd * FLT_MIN;
          const double e = fabs((double)s_act[i * s_stride + j] - s_ref[i * s_stride + j]);
          ck_assert_msg(e <= bound, "%s scores hd %zu n_pos %zu n_q %zu (%zu, %zu): %g > %g",
                        kv_names[kv], hd, n_pos, n_q, i, j, e, bound);
        }

      /* Weights as a softmax makes them: in [0, 1). */
      float *p = s_ref;
      for (size_t i = 0; i < n_q * s_stride; i++) p[i] = 0.5f * (rng_float(&rng) + 1.0f);
      double *sum_abs = calloc(n_q * hd, sizeof(double));
      for (size_t i = 0; i < n_q; i++)
        for (size_t c = 0; c < hd; c++) {
          sum_abs[i * hd + c] = fabs((double)o_ref[i * o_stride + c]);
          for (size_t j = 0; j < n_pos; j++) sum_abs[i * hd + c] += fabs((double)p[i * s_stride + j] * wide[j * hd + c]);
        }
      const float guard = o_ref[n_q * o_stride - 1]; /* past hd in the last row: untouched */
      ref->weighted_sum.fn(o_ref, o_stride, p, s_stride, n_q, rows, row_bytes, n_pos, hd);
      act->weighted_sum.fn(o_act, o_stride, p, s_stride, n_q, rows, row_bytes, n_pos, hd);
      ck_assert(o_act[n_q * o_stride - 1] == guard);
      for (size_t i = 0; i < n_q; i++)
        for (size_t c = 0; c < hd; c++) {
          const double bound = ROUNDING_SLACK * SUM_ROUNDINGS(n_pos) * FLT_EPSILON * sum_abs[i * hd + c] +
                               n_pos * FLT_MIN;
          const double e = fabs((double)o_act[i * o_stride + c] - o_ref[i * o_stride + c]);
          ck_assert_msg(e <= bound, "%s weighted_sum hd %zu n_pos %zu n_q %zu (%zu, %zu): %g > %g",
                        kv_names[kv], hd, n_pos, n_q, i, c, e, bound);
        }
      free(sum_abs), free(src), free(rows), free(rows_act), free(q), free(wide);
      free(s_ref), free(s_act), free(o_ref), free(o_act);
    }
}
END_TEST

/* Under a SIMD ceiling the attention slots hold that family's kernels, so
 * the comparisons above are SIMD against scalar, not scalar twice. */
START_TEST(simd_ceiling_installs_simd_attention) {
  const lzn_kernel_table *act = active_kernels();
  ck_assert(act->attn_max.fn != NULL && act->attn_exp_sum.fn != NULL);
  const enum lzn_isa want = act->isa >= LZN_ISA_AVX512 ? LZN_ISA_AVX512
                            : act->isa >= LZN_ISA_AVX2 ? LZN_ISA_AVX2 : LZN_ISA_SCALAR;
  for (int kv = 0; kv < LZN_KV_TYPE_COUNT; kv++) {
    ck_assert_int_eq(act->attn[kv].scores.isa, want);
    ck_assert_int_eq(act->attn[kv].weighted_sum.isa, want);
  }
  ck_assert_int_eq(act->attn[LZN_KV_F16].store.isa, want);
  ck_assert_int_eq(act->attn_exp_sum.isa, want);
}
END_TEST

/* The softmax passes against the reference: the max exactly, exponentials
 * within EXP_ULPS, their sum within the rounding of n additions. Scores
 * span [-100, 0] below the shift, so some terms underflow to 0 or below
 * FLT_MIN (the contract allows 0 there). */
START_TEST(softmax_kernels_match_reference) {
  const lzn_kernel_table *ref = reference_kernels(), *act = active_kernels();
  test_rng rng = {0x736d};
  const size_t sizes[] = {1, 3, 8, 15, 16, 17, 31, 33, 128, 2000};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    const size_t n = sizes[k];
    float *a = malloc(sizeof(float) * (n + 1)), *b = malloc(sizeof(float) * (n + 1));
    for (size_t j = 0; j < n; j++) a[j] = 5000.0f + 50.0f * (rng_float(&rng) - 1.0f);
    a[n] = b[n] = 12345.0f; /* past the end: untouched */
    a[rng_below(&rng, n)] = 5000.0f;
    memcpy(b, a, sizeof(float) * n);
    ck_assert_float_eq(act->attn_max.fn(a, n), ref->attn_max.fn(a, n));
    const float shift = ref->attn_max.fn(a, n);
    const float sum_ref = ref->attn_exp_sum.fn(a, n, shift), sum_act = act->attn_exp_sum.fn(b, n, shift);
    ck_assert_float_eq(b[n], 12345.0f);
    for (size_t j = 0; j < n; j++) {
      const double bound = EXP_ULPS * FLT_EPSILON / 2 * a[j] + FLT_MIN;
      ck_assert_msg(fabs((double)b[j] - a[j]) <= bound, "n %zu j %zu: %g vs %g", n, j, (double)b[j], (double)a[j]);
    }
    const double sum_bound = (EXP_ULPS * FLT_EPSILON / 2 + ROUNDING_SLACK * SUM_ROUNDINGS(n) * FLT_EPSILON) * sum_ref;
    ck_assert_msg(fabs((double)sum_act - sum_ref) <= sum_bound, "n %zu: sum %g vs %g", n, (double)sum_act, (double)sum_ref);
    free(a), free(b);
  }
}
END_TEST

/* Q8_0 over a head_dim that is not a multiple of 32: whole blocks, the
 * padding zero, so a kernel may read it. */
START_TEST(q8_0_rows_are_padded_blocks) {
  const size_t hd = 20;
  ck_assert_uint_eq(lzn_wtype_row_bytes(LZN_WEIGHTS_Q8_0, hd), sizeof(lzn_block_q8_0));
  float src[20];
  for (size_t c = 0; c < hd; c++) src[c] = (float)c - 9.5f;
  lzn_block_q8_0 row;
  memset(&row, 0x55, sizeof row);
  active_kernels()->attn[LZN_KV_Q8_0].store.fn(&row, sizeof row, src, hd, 1, hd);
  for (size_t c = hd; c < LZN_QK; c++) ck_assert_int_eq(row.qs[c], 0);
  ck_assert_int_eq(row.qs[0], -127); /* -9.5 is the block's amax */
}
END_TEST

/* ----------------------------------------------------------------- core */

/* What lzn_attention_core reads: a one-layer model, a cache of n_ctx
 * positions, q/k/v/heads rows for max_tokens, the active kernels. */
typedef struct core_fixture {
  lzn_model model;
  lzn_kv_cache kv;
  float *q, *k, *v, *heads, *tiles;
  lzn_pool *pool; /* NULL for one thread */
  int max_tokens;
} core_fixture;

static void core_init(core_fixture *f, lzn_kv_type kv, int hd, int heads, int kv_heads, int n_ctx,
                      int max_tokens, int threads) {
  memset(f, 0, sizeof *f);
  f->model.n_layers = 1, f->model.n_heads = heads, f->model.n_kv_heads = kv_heads, f->model.head_dim = hd;
  f->model.arch.positions = LZN_POSITIONS_LEARNED; /* no rotary tables: the core does not rotate */
  ck_assert_int_eq(lzn_kv_cache_create(&f->kv, &f->model, n_ctx, kv), LZN_OK);
  f->q = malloc(sizeof(float) * (size_t)max_tokens * (size_t)(heads * hd));
  f->heads = malloc(sizeof(float) * (size_t)max_tokens * (size_t)(heads * hd));
  f->k = malloc(sizeof(float) * (size_t)max_tokens * (size_t)(kv_heads * hd));
  f->v = malloc(sizeof(float) * (size_t)max_tokens * (size_t)(kv_heads * hd));
  f->tiles = malloc(sizeof(float) * lzn_attention_tile_floats(&f->model) * (size_t)threads);
  if (threads > 1) ck_assert_int_eq(lzn_pool_create(threads, &f->pool), LZN_OK);
  f->max_tokens = max_tokens;
}

static void core_free(core_fixture *f) {
  lzn_kv_cache_free(&f->kv);
  free(f->q), free(f->heads), free(f->k), free(f->v), free(f->tiles);
  lzn_pool_free(f->pool);
}

/* The core on the fixture's rows: n tokens at p0. */
static void core_call(core_fixture *f, int n, int p0) {
  const lzn_attn_call call = {.model = &f->model, .kernels = active_kernels(), .pool = f->pool,
                              .tiles = f->tiles, .kv = &f->kv, .layer = 0, .n = n, .p0 = p0,
                              .q = f->q, .k = f->k, .v = f->v, .heads = f->heads};
  lzn_attention_core(&call);
}

/* Random q, k, v for n tokens; integer-valued in [-8, 8] when `integers`
 * (then every score is an exact integer up to 64 * hd). */
static void core_fill(core_fixture *f, test_rng *rng, int n, int integers) {
  const lzn_model *m = &f->model;
  const size_t nq = (size_t)n * m->n_heads * m->head_dim, nk = (size_t)n * m->n_kv_heads * m->head_dim;
  fill_random(rng, f->q, nq), fill_random(rng, f->k, nk), fill_random(rng, f->v, nk);
  if (integers) {
    for (size_t i = 0; i < nq; i++) f->q[i] = roundf(8.0f * f->q[i]);
    for (size_t i = 0; i < nk; i++) f->k[i] = roundf(8.0f * f->k[i]);
  }
}

/* The heads of n tokens at p0.. against softmax(q K^T) V in double over
 * the rows the cache holds. exact_scores: the scores are exact in fp32. */
static void core_check(const core_fixture *f, int n, int p0, int exact_scores, const char *what) {
  const lzn_model *m = &f->model;
  const lzn_kv_cache *c = &f->kv;
  const int hd = m->head_dim, group = m->n_heads / m->n_kv_heads, n_pos = p0 + n;
  float *k = malloc(sizeof(float) * (size_t)n_pos * hd), *v = malloc(sizeof(float) * (size_t)n_pos * hd);
  double *s = malloc(sizeof(double) * (size_t)n_pos);
  for (int h = 0; h < m->n_heads; h++) {
    const int kv = h / group;
    for (int j = 0; j < n_pos; j++) {
      widen_row(k + (size_t)j * hd, lzn_kv_weight_type(c->type), lzn_kv_row(c, c->k, 0, kv, 0), c->row_bytes, (size_t)j, (size_t)hd);
      widen_row(v + (size_t)j * hd, lzn_kv_weight_type(c->type), lzn_kv_row(c, c->v, 0, kv, 0), c->row_bytes, (size_t)j, (size_t)hd);
    }
    for (int t = 0; t < n; t++) {
      const float *q = f->q + ((size_t)t * m->n_heads + h) * hd;
      const int visible = p0 + t + 1;
      double s_max = -INFINITY, delta = 0, v_max = 0, sum = 0;
      for (int j = 0; j < visible; j++) {
        double dot = 0, abs_dot = 0;
        for (int i = 0; i < hd; i++) {
          dot += (double)q[i] * k[(size_t)j * hd + i];
          abs_dot += fabs((double)q[i] * k[(size_t)j * hd + i]);
        }
        s[j] = dot;
        s_max = dot > s_max ? dot : s_max;
        if (!exact_scores) delta = fmax(delta, SCORE_ROUNDINGS(hd) * FLT_EPSILON * abs_dot);
        for (int i = 0; i < hd; i++) v_max = fmax(v_max, fabs((double)v[(size_t)j * hd + i]));
      }
      for (int j = 0; j < visible; j++) sum += (s[j] = exp(s[j] - s_max));
      const double tiles = visible / 128 + 1;
      const double bound = CORE_SLACK * v_max * (2 * delta + (2.0 * visible + EXP_ULPS + tiles) * FLT_EPSILON);
      const float *out = f->heads + ((size_t)t * m->n_heads + h) * hd;
      for (int i = 0; i < hd; i++) {
        double exact = 0;
        for (int j = 0; j < visible; j++) exact += s[j] / sum * v[(size_t)j * hd + i];
        const double e = fabs(out[i] - exact);
        ck_assert_msg(e <= bound, "%s %s hd %d heads %d/%d token %d head %d lane %d: %g vs %g (%g > %g)",
                      what, kv_names[c->type], hd, m->n_heads, m->n_kv_heads, p0 + t, h, i,
                      (double)out[i], exact, e, bound);
      }
    }
  }
  free(k), free(v), free(s);
}

/* Runs the core over n tokens at p0 in calls of at most max_tokens. */
static void core_run(core_fixture *f, test_rng *rng, int n, int p0, int integers) {
  for (int done = 0; done < n;) {
    const int step = n - done < f->max_tokens ? n - done : f->max_tokens;
    core_fill(f, rng, step, integers);
    core_call(f, step, p0 + done);
    done += step;
  }
}

static const int gqa_shapes[][2] = {{4, 4}, {4, 2}, {4, 1}}; /* heads, KV heads: ratio 1, 2, all */

START_TEST(core_prefill_and_decode_match_exact_softmax) {
  const lzn_kv_type kv = (lzn_kv_type)_i;
  test_rng rng = {0x636f7265 + (uint64_t)_i};
  for (size_t h = 0; h < N_HEAD_DIMS; h++)
    for (size_t g = 0; g < 3; g++) {
      core_fixture f;
      core_init(&f, kv, (int)head_dims[h], gqa_shapes[g][0], gqa_shapes[g][1], 256, 80, 1);
      /* 70 tokens from empty: several token tiles; then 1 token; then 80
       * tokens at 71.. that cross the key tile at 128. */
      core_run(&f, &rng, 70, 0, 0);
      core_check(&f, 70, 0, 0, "prefill");
      core_run(&f, &rng, 1, 70, 0);
      core_check(&f, 1, 70, 0, "decode");
      core_run(&f, &rng, 80, 71, 0);
      core_check(&f, 80, 71, 0, "prefill across key tiles");
      core_free(&f);
    }
}
END_TEST

/* A decode at position 1999: the cache filled by the store kernel. */
START_TEST(core_long_decode) {
  const lzn_kv_type kv = (lzn_kv_type)_i;
  test_rng rng = {0x6c6f6e67 + (uint64_t)_i};
  for (size_t g = 0; g < 3; g++)
    for (size_t h = 0; h < N_HEAD_DIMS; h += 3) {
      const int hd = (int)head_dims[h], n_kv = gqa_shapes[g][1], n_past = 1999;
      core_fixture f;
      core_init(&f, kv, hd, gqa_shapes[g][0], n_kv, 2048, 4, 1);
      float *rows = malloc(sizeof(float) * (size_t)n_past * hd);
      const lzn_attn_kernels *kern = &active_kernels()->attn[kv];
      for (int head = 0; head < n_kv; head++) {
        fill_random(&rng, rows, (size_t)n_past * hd);
        kern->store.fn(lzn_kv_row(&f.kv, f.kv.k, 0, head, 0), f.kv.row_bytes, rows, (size_t)hd, (size_t)n_past, (size_t)hd);
        fill_random(&rng, rows, (size_t)n_past * hd);
        kern->store.fn(lzn_kv_row(&f.kv, f.kv.v, 0, head, 0), f.kv.row_bytes, rows, (size_t)hd, (size_t)n_past, (size_t)hd);
      }
      free(rows);
      core_run(&f, &rng, 1, n_past, 0);
      core_check(&f, 1, n_past, 0, "decode at 1999");
      core_free(&f);
    }
}
END_TEST

/* Scores up to 64 * hd = 8192, exact integers: exp of a score overflows
 * fp32 past 88, so only a max-subtracted softmax stays finite and exact. */
START_TEST(core_large_scores_do_not_overflow) {
  const lzn_kv_type kv = (lzn_kv_type)_i; /* F32, F16, BF16 hold integers in [-8, 8] exactly */
  test_rng rng = {0x6269 + (uint64_t)_i};
  for (size_t h = 0; h < N_HEAD_DIMS; h++) {
    core_fixture f;
    core_init(&f, kv, (int)head_dims[h], 4, 2, 160, 160, 1);
    core_run(&f, &rng, 150, 0, 1);
    for (size_t i = 0; i < (size_t)150 * 4 * head_dims[h]; i++) ck_assert(isfinite(f.heads[i]));
    core_check(&f, 150, 0, 1, "large scores");
    core_free(&f);
  }
}
END_TEST

/* One prefill call over 150 tokens against 150 one-token calls with the
 * same q, k, v: the same rows in the cache and, per row, the same
 * arithmetic (masked keys add exact zeros), so equal outputs. */
START_TEST(core_prefill_equals_decode) {
  const lzn_kv_type kv = (lzn_kv_type)_i;
  for (size_t g = 0; g < 3; g++) {
    const int n = 150, heads = gqa_shapes[g][0], n_kv = gqa_shapes[g][1], hd = 20;
    core_fixture all, one;
    core_init(&all, kv, hd, heads, n_kv, n, n, 1);
    core_init(&one, kv, hd, heads, n_kv, n, 1, 1);
    test_rng rng = {0x7064 + (uint64_t)_i};
    core_fill(&all, &rng, n, 0);
    core_call(&all, n, 0);
    const size_t q_dim = (size_t)heads * hd, kv_dim = (size_t)n_kv * hd;
    for (int t = 0; t < n; t++) {
      memcpy(one.q, all.q + t * q_dim, sizeof(float) * q_dim);
      memcpy(one.k, all.k + t * kv_dim, sizeof(float) * kv_dim);
      memcpy(one.v, all.v + t * kv_dim, sizeof(float) * kv_dim);
      core_call(&one, 1, t);
      for (size_t i = 0; i < q_dim; i++)
        ck_assert_msg(one.heads[i] == all.heads[t * q_dim + i], "%s shape %zu token %d: %g vs %g",
                      kv_names[kv], g, t, (double)one.heads[i], (double)all.heads[t * q_dim + i]);
    }
    core_free(&all), core_free(&one);
  }
}
END_TEST

/* Work items are independent: 2 threads give the 1-thread result bit for
 * bit, and a 1-token decode makes work for both, even with one KV head. */
START_TEST(core_threads_split_heads) {
  test_rng rng = {0x7468};
  for (size_t g = 0; g < 3; g++) {
    core_fixture one, two;
    core_init(&one, LZN_KV_F16, 80, gqa_shapes[g][0], gqa_shapes[g][1], 200, 64, 1);
    core_init(&two, LZN_KV_F16, 80, gqa_shapes[g][0], gqa_shapes[g][1], 200, 64, 2);
    ck_assert_int_ge(lzn_attention_work_items(&one.model, 1, 2), 2);
    for (int call = 0; call < 3; call++) {
      const int n = call == 2 ? 1 : 60, p0 = call * 60;
      test_rng same = rng;
      core_fill(&one, &rng, n, 0), core_fill(&two, &same, n, 0);
      core_call(&one, n, p0), core_call(&two, n, p0);
      const size_t floats = (size_t)n * gqa_shapes[g][0] * 80;
      ck_assert_msg(memcmp(one.heads, two.heads, floats * sizeof(float)) == 0, "shape %zu call %d", g, call);
    }
    core_free(&one), core_free(&two);
  }
}
END_TEST

/* --------------------------------------------------------------- models */

static const char *const fixtures[] = {"opt-preln", "opt-postln", "opt-proj", "llama-mha", "llama-gqa",
                                       "llama-mqa", "llama-headdim", "llama-rope", "llama-mistral"};
#define N_FIXTURES (sizeof fixtures / sizeof fixtures[0])

static lzn_context *context_with(const lzn_model *model, lzn_kv_type kv_type, int threads) {
  lzn_context_params p = lzn_context_default_params();
  p.mlp_mode = LZN_MLP_SPARSE, p.n_threads = threads, p.kv_type = kv_type;
  lzn_context *ctx = NULL;
  const lzn_status s = lzn_context_create(model, &p, &ctx);
  ck_assert_msg(s == LZN_OK, "%s: %s", lzn_status_str(s), lzn_last_error());
  return ctx;
}

START_TEST(fixtures_in_every_kv_type_match_pytorch) {
  const char *name = fixtures[_i];
  reference r;
  load_reference(name, &r);
  lzn_model *model = load_model(r.path);
  const size_t n = (size_t)r.n_tokens * (size_t)r.vocab;
  for (int kv = 0; kv < LZN_KV_TYPE_COUNT; kv++) {
    lzn_context *ctx = context_with(model, (lzn_kv_type)kv, 1 + kv % 2);
    float *all = run_all(ctx, &r);
    const double err = max_abs_diff(all, r.logits, n) / r.scale;
    ck_assert_msg(err <= TOL_KV[kv], "%s kv %s: error %.3g > %.3g", name, kv_names[kv], err, TOL_KV[kv]);
    /* Token by token from an empty cache: the same logits. */
    ck_assert_int_eq(lzn_context_reset(ctx), LZN_OK);
    float *one = malloc(sizeof(float) * (size_t)r.vocab);
    double worst = 0;
    for (int t = 0; t < r.n_tokens; t++) {
      ck_assert_int_eq(lzn_forward(ctx, &r.tokens[t], 1, one, LZN_LOGITS_LAST), LZN_OK);
      const double e = max_abs_diff(one, all + (size_t)t * r.vocab, (size_t)r.vocab) / r.scale;
      worst = e > worst ? e : worst;
    }
    ck_assert_msg(worst <= TOL_PREFILL_VS_DECODE[kv], "%s kv %s: prefill vs decode %.3g", name,
                  kv_names[kv], worst);
    free(one), free(all);
    lzn_context_free(ctx);
  }
  lzn_model_free(model);
  free(r.logits);
}
END_TEST

START_TEST(kv_type_is_validated_and_sized) {
  reference r;
  load_reference("llama-gqa", &r);
  lzn_model *model = load_model(r.path);
  lzn_model_info info = {.struct_size = sizeof info};
  ck_assert_int_eq(lzn_model_get_info(model, &info), LZN_OK);
  ck_assert_int_eq(lzn_context_default_params().kv_type, LZN_KV_F16);
  for (int kv = 0; kv < LZN_KV_TYPE_COUNT; kv++) {
    lzn_context_params p = lzn_context_default_params();
    p.n_ctx = 16, p.kv_type = (lzn_kv_type)kv;
    lzn_context *ctx = NULL;
    ck_assert_int_eq(lzn_context_create(model, &p, &ctx), LZN_OK);
    const int64_t want = 2 * (int64_t)info.n_layers * info.n_kv_heads * 16 *
                         (int64_t)lzn_wtype_row_bytes(lzn_kv_weight_type((lzn_kv_type)kv), (size_t)info.head_dim);
    ck_assert_int_eq(lzn_context_kv_bytes(ctx), want);
    lzn_context_free(ctx);
  }
  ck_assert_int_eq(lzn_context_kv_bytes(NULL), -1);
  const int bad[] = {-1, 4, 99};
  for (size_t i = 0; i < 3; i++) {
    lzn_context_params p = lzn_context_default_params();
    p.kv_type = (lzn_kv_type)bad[i];
    lzn_context *ctx = (lzn_context *)&p;
    ck_assert_int_eq(lzn_context_create(model, &p, &ctx), LZN_ERR_INVALID_ARG);
    ck_assert_ptr_null(ctx);
    ck_assert_msg(strstr(lzn_last_error(), "kv_type") != NULL, "%s", lzn_last_error());
  }
  lzn_model_free(model);
  free(r.logits);
}
END_TEST

int main(void) {
  Suite *s = suite_create("attention");
  TCase *kernels = tcase_create("kernels");
  tcase_set_timeout(kernels, 120);
  tcase_add_loop_test(kernels, kernels_match_reference, 0, LZN_KV_TYPE_COUNT);
  tcase_add_test(kernels, q8_0_rows_are_padded_blocks);
  tcase_add_test(kernels, softmax_kernels_match_reference);
  tcase_add_test(kernels, simd_ceiling_installs_simd_attention);
  suite_add_tcase(s, kernels);
  TCase *core = tcase_create("core");
  tcase_set_timeout(core, 120);
  tcase_add_loop_test(core, core_prefill_and_decode_match_exact_softmax, 0, LZN_KV_TYPE_COUNT);
  tcase_add_loop_test(core, core_long_decode, 0, LZN_KV_TYPE_COUNT);
  tcase_add_loop_test(core, core_large_scores_do_not_overflow, 0, LZN_KV_Q8_0);
  tcase_add_loop_test(core, core_prefill_equals_decode, 0, LZN_KV_TYPE_COUNT);
  tcase_add_test(core, core_threads_split_heads);
  suite_add_tcase(s, core);
  TCase *models = tcase_create("models");
  tcase_set_timeout(models, 120);
  tcase_add_loop_test(models, fixtures_in_every_kv_type_match_pytorch, 0, N_FIXTURES);
  tcase_add_test(models, kv_type_is_validated_and_sized);
  suite_add_tcase(s, models);
  return run_suite(s);
}
