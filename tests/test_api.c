/*
 * test_api.c: version, status names, errors per thread, ISA dispatch, the
 * public sparse ops' argument checks and threading, and the oneDNN wrapper
 * against a naive triple loop.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "linalg/onednn.h"
#include "core/errors.h"
#include "cpu/cpu.h"
#include "testutil.h"

/* ------------------------------------------------------------ basics */

START_TEST(version_matches_header) {
  ck_assert_uint_eq(lzn_version_number(), LZN_VERSION_NUMBER);
  char expect[32];
  snprintf(expect, sizeof expect, "%d.%d.%d", LZN_VERSION_MAJOR, LZN_VERSION_MINOR, LZN_VERSION_PATCH);
  ck_assert_str_eq(lzn_version_string(), expect);
}
END_TEST

START_TEST(status_names_are_distinct) {
  ck_assert_str_eq(lzn_status_str(LZN_OK), "LZN_OK");
  ck_assert_str_eq(lzn_status_str(LZN_ERR_CANCELLED), "LZN_ERR_CANCELLED");
  ck_assert_str_eq(lzn_status_str((lzn_status)42), "LZN_UNKNOWN_STATUS");
  /* The values are ABI: pin them. */
  ck_assert_int_eq(LZN_ERR_INVALID_ARG, 1);
  ck_assert_int_eq(LZN_ERR_ISA, 7);
  ck_assert_int_eq(LZN_ERR_CANCELLED, 9);
  for (int a = 0; a <= 9; a++)
    for (int b = a + 1; b <= 9; b++)
      ck_assert_str_ne(lzn_status_str((lzn_status)a), lzn_status_str((lzn_status)b));
}
END_TEST

static void *fail_in_thread(void *arg) {
  (void)arg;
  int64_t n_active;
  float h = 1.0f;
  int32_t idx;
  lzn_relu_compact(&h, -3, 0.0f, &idx, &h, &n_active);
  return strstr(lzn_last_error(), "n = -3") ? (void *)1 : NULL;
}

START_TEST(last_error_is_per_thread) {
  int64_t n_active;
  ck_assert_int_eq(lzn_relu_compact(NULL, 4, 0.0f, NULL, NULL, &n_active), LZN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "h is NULL"));
  pthread_t thread;
  void *other_saw_its_own = NULL;
  ck_assert_int_eq(pthread_create(&thread, NULL, fail_in_thread, NULL), 0);
  pthread_join(thread, &other_saw_its_own);
  ck_assert_ptr_nonnull(other_saw_its_own);
  /* This thread's message is untouched by the other thread's failure. */
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "h is NULL"));
}
END_TEST

/* ---------------------------------------------------------- dispatch */

/* This binary's path (argv[0]; /proc/self/exe would be valgrind's under
 * valgrind). */
static char self_path[4096];

/* Runs this test binary again with LZN_ISA=isa, LZN_PREFETCH=prefetch and
 * --probe-isa: dispatch is decided once per process, so each forced value
 * needs a fresh one. The probe prints the ISA in use and, with
 * prefetch_too, the prefetch level after it. */
static void probe_dispatch(const char *isa, const char *prefetch, int prefetch_too, char *out, size_t out_size) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "LZN_ISA='%s' LZN_PREFETCH='%s' '%s' --probe-isa%s", isa, prefetch, self_path,
           prefetch_too ? " --prefetch" : "");
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  if (fgets(out, (int)out_size, p) == NULL) out[0] = '\0';
  out[strcspn(out, "\n")] = '\0';
  pclose(p);
}

static void probe_isa(const char *value, char *out, size_t out_size) {
  probe_dispatch(value, "", 0, out, out_size);
}

static int probe_main(int prefetch_too) {
  const char *name = lzn_isa_name();
  const lzn_kernel_table *k;
  if (name && prefetch_too && lzn_kernels_get(&k) == LZN_OK) {
    printf("%s %s\n", name, lzn_prefetch_level_name(k->prefetch));
    return 0;
  }
  if (name) {
    printf("%s\n", name);
    return 0;
  }
  int64_t n;
  float h = 1.0f, v;
  int32_t i;
  lzn_status s = lzn_relu_compact(&h, 1, 0.0f, &i, &v, &n);
  printf("NULL %s %s\n", lzn_status_str(s), lzn_last_error());
  return 0;
}

/* Every ISA this machine runs, forced, is the one in use; unforced, the
 * best of them (the last supported in lzn_isa_name_at's ceiling order). */
START_TEST(forced_isa_is_the_active_one) {
  int tried = 0;
  const char *best = NULL;
  for (int i = 0; lzn_isa_name_at(i) != NULL; i++) {
    const char *name = lzn_isa_name_at(i);
    if (!lzn_isa_supported(name)) continue;
    char got[256];
    probe_isa(name, got, sizeof got);
    ck_assert_str_eq(got, name);
    best = name, tried++;
  }
  ck_assert_int_ge(tried, 1); /* scalar at least */
  char got[256];
  probe_isa("", got, sizeof got);
  ck_assert_str_eq(got, best);
  const char *env = getenv("LZN_ISA");
  if (env && *env) ck_assert_str_eq(lzn_isa_name(), env);
}
END_TEST

/* Parameter structs at every released size (lazyneuron.h, "ABI"): init
 * fills the defaults up to it; any other size is refused, naming the sizes
 * it takes. Output structs: filled up to their struct_size, which must be
 * set. */
START_TEST(struct_sizes_keep_their_promise) {
  unsigned char buf[256];
  const size_t model_sizes[] = {32, sizeof(lzn_model_params)};
  for (size_t i = 0; i < 2; i++) {
    memset(buf, 0x5a, sizeof buf);
    ck_assert_int_eq(lzn_model_params_init((lzn_model_params *)(void *)buf, model_sizes[i]), LZN_OK);
    const lzn_model_params *p = (const lzn_model_params *)(void *)buf;
    ck_assert_uint_eq(p->struct_size, model_sizes[i]);
    ck_assert_int_eq(p->use_mmap, 1);
    ck_assert_int_eq(buf[model_sizes[i]], 0x5a); /* nothing past the size */
  }
  const size_t context_sizes[] = {40, sizeof(lzn_context_params)};
  for (size_t i = 0; i < 2; i++) {
    memset(buf, 0x5a, sizeof buf);
    ck_assert_int_eq(lzn_context_params_init((lzn_context_params *)(void *)buf, context_sizes[i]), LZN_OK);
    const lzn_context_params *p = (const lzn_context_params *)(void *)buf;
    ck_assert_int_eq(p->n_threads, 1);
    ck_assert_int_eq(buf[context_sizes[i]], 0x5a);
  }
  lzn_sampler_params sp;
  ck_assert_int_eq(lzn_sampler_params_init(&sp, sizeof sp), LZN_OK);
  ck_assert_float_eq(sp.temperature, 0.8f);
  ck_assert_int_eq(lzn_context_params_init((lzn_context_params *)(void *)buf, 44), LZN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "40, 56"));
  ck_assert_int_eq(lzn_context_params_init(NULL, 56), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_model_params_init((lzn_model_params *)(void *)buf, sizeof(lzn_model_params) + 8),
                   LZN_ERR_INVALID_ARG);
  /* A context from 0.1-sized params: the fields 0.2 added take their
   * defaults, whatever the caller's padding holds. */
  lzn_model *m = NULL;
  ck_assert_int_eq(lzn_model_load("tests/data/opt-preln", NULL, &m), LZN_OK);
  memset(buf, 0x7f, sizeof buf);
  ck_assert_int_eq(lzn_context_params_init((lzn_context_params *)(void *)buf, 56), LZN_OK);
  lzn_context_params *cp = (lzn_context_params *)(void *)buf;
  cp->struct_size = 40;
  memset(buf + 36, 0x7f, sizeof buf - 36); /* use_predictor, kv_type ... garbage */
  lzn_context *ctx = NULL;
  ck_assert_msg(lzn_context_create(m, cp, &ctx) == LZN_OK, "%s", lzn_last_error());
  ck_assert_int_eq(lzn_context_kv_bytes(ctx) % 2, 0); /* the default F16 cache was made */
  lzn_context_free(ctx);
  cp->struct_size = 48;
  ck_assert_int_eq(lzn_context_create(m, cp, &ctx), LZN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "struct_size = 48"));
  /* Output structs. */
  lzn_model_info info = {.struct_size = sizeof info};
  ck_assert_int_eq(lzn_model_get_info(m, &info), LZN_OK);
  ck_assert_int_eq(info.n_layers, 2);
  ck_assert_uint_eq(info.struct_size, sizeof info);
  lzn_model_info unset;
  memset(&unset, 0, sizeof unset);
  ck_assert_int_eq(lzn_model_get_info(m, &unset), LZN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "set it to sizeof"));
  unset.struct_size = sizeof unset + 8; /* a newer header's */
  ck_assert_int_eq(lzn_model_get_info(m, &unset), LZN_ERR_INVALID_ARG);
  lzn_model_free(m);
}
END_TEST

/* The names of weight types, KV types and ISAs come from the library, so
 * programs keep no lists: each name reads back to its value, any case. */
START_TEST(type_names_round_trip) {
  int n = 0;
  for (int t = 0; lzn_weight_type_name((lzn_weight_type)t) != NULL; t++, n++) {
    lzn_weight_type back;
    char lower[32];
    snprintf(lower, sizeof lower, "%s", lzn_weight_type_name((lzn_weight_type)t));
    for (char *c = lower; *c; c++) *c = (char)tolower((unsigned char)*c);
    ck_assert_int_eq(lzn_weight_type_from_name(lower, &back), LZN_OK);
    ck_assert_int_eq(back, t);
    ck_assert_int_eq(lzn_weight_type_from_name(lzn_weight_type_name((lzn_weight_type)t), &back), LZN_OK);
    ck_assert_int_eq(back, t);
  }
  ck_assert_int_eq(n, LZN_WEIGHTS_Q6_K + 1);
  ck_assert_str_eq(lzn_weight_type_name(LZN_WEIGHTS_Q4_0), "Q4_0");
  ck_assert_str_eq(lzn_weight_type_name(LZN_WEIGHTS_Q4_K), "Q4_K");
  ck_assert_str_eq(lzn_weight_type_name(LZN_WEIGHTS_Q5_K), "Q5_K");
  ck_assert_str_eq(lzn_weight_type_name(LZN_WEIGHTS_Q6_K), "Q6_K");
  ck_assert_int_eq(lzn_weight_row_bytes(LZN_WEIGHTS_Q4_K, 4096), 16 * 144);
  ck_assert_int_eq(lzn_weight_row_bytes(LZN_WEIGHTS_Q5_K, 256), 176);
  ck_assert_int_eq(lzn_weight_row_bytes(LZN_WEIGHTS_Q6_K, 257), 2 * 210); /* a padded super-block */
  ck_assert_int_eq(lzn_weight_row_bytes((lzn_weight_type)(LZN_WEIGHTS_Q6_K + 1), 256), -1); /* Q8_K: no weight type */
  ck_assert_ptr_null(lzn_weight_type_name((lzn_weight_type)-1));
  lzn_weight_type w;
  ck_assert_int_eq(lzn_weight_type_from_name("q5_1", &w), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_weight_type_from_name("q8_k", &w), LZN_ERR_INVALID_ARG); /* x's type only */
  ck_assert_int_eq(lzn_weight_type_from_name("q6_k", &w), LZN_OK);
  ck_assert_int_eq(w, LZN_WEIGHTS_Q6_K);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "Q4_0")); /* the message lists the names */
  ck_assert_int_eq(lzn_weight_type_from_name(NULL, &w), LZN_ERR_INVALID_ARG);
  for (int t = 0; lzn_kv_type_name((lzn_kv_type)t) != NULL; t++) {
    lzn_kv_type back;
    ck_assert_int_eq(lzn_kv_type_from_name(lzn_kv_type_name((lzn_kv_type)t), &back), LZN_OK);
    ck_assert_int_eq(back, t);
  }
  lzn_kv_type kv;
  ck_assert_int_eq(lzn_kv_type_from_name("q8_0", &kv), LZN_OK);
  ck_assert_int_eq(kv, LZN_KV_Q8_0);
  ck_assert_int_eq(lzn_kv_type_from_name("q4_0", &kv), LZN_ERR_INVALID_ARG);
  ck_assert_str_eq(lzn_isa_name_at(0), "scalar");
  ck_assert_ptr_null(lzn_isa_name_at(-1));
  ck_assert_ptr_null(lzn_isa_name_at(64));
}
END_TEST

START_TEST(unknown_isa_fails_every_kernel_call) {
  char got[256];
  probe_isa("sse9", got, sizeof got);
  ck_assert_ptr_nonnull(strstr(got, "NULL LZN_ERR_ISA"));
  ck_assert_ptr_nonnull(strstr(got, "sse9"));
  ck_assert_ptr_nonnull(strstr(got, "not a known ISA"));
}
END_TEST

/* The row and attention kernels' prefetch level: L2 on a CPU with an L1D
 * under 48 KiB, L1 otherwise or when unknown; LZN_PREFETCH forces either,
 * and any other value fails every kernel call as a bad LZN_ISA does. The
 * two tables differ in every such slot a SIMD ISA filled, and only there. */
START_TEST(prefetch_level_is_chosen_and_forced) {
  ck_assert_int_eq(lzn_prefetch_level_for_l1d(32 * 1024), LZN_PREFETCH_L2);
  ck_assert_int_eq(lzn_prefetch_level_for_l1d(48 * 1024 - 1), LZN_PREFETCH_L2);
  ck_assert_int_eq(lzn_prefetch_level_for_l1d(48 * 1024), LZN_PREFETCH_L1);
  ck_assert_int_eq(lzn_prefetch_level_for_l1d(64 * 1024), LZN_PREFETCH_L1);
  ck_assert_int_eq(lzn_prefetch_level_for_l1d(0), LZN_PREFETCH_L1);
  ck_assert_int_eq(lzn_prefetch_level_for_l1d(-1), LZN_PREFETCH_L1);
  enum lzn_prefetch_level level = LZN_PREFETCH_L1;
  char why[256] = "";
  ck_assert_int_eq(lzn_prefetch_resolve(NULL, LZN_PREFETCH_L2, &level, why, sizeof why), LZN_OK);
  ck_assert_int_eq(level, LZN_PREFETCH_L2);
  ck_assert_int_eq(lzn_prefetch_resolve("", LZN_PREFETCH_L1, &level, why, sizeof why), LZN_OK);
  ck_assert_int_eq(level, LZN_PREFETCH_L1);
  ck_assert_int_eq(lzn_prefetch_resolve("l2", LZN_PREFETCH_L1, &level, why, sizeof why), LZN_OK);
  ck_assert_int_eq(level, LZN_PREFETCH_L2);
  ck_assert_int_eq(lzn_prefetch_resolve("l1", LZN_PREFETCH_L2, &level, why, sizeof why), LZN_OK);
  ck_assert_int_eq(level, LZN_PREFETCH_L1);
  ck_assert_int_eq(lzn_prefetch_resolve("l3", LZN_PREFETCH_L1, &level, why, sizeof why), LZN_ERR_ISA);
  ck_assert_ptr_nonnull(strstr(why, "neither l1 nor l2"));

  char got[256];
  probe_dispatch("", "l2", 1, got, sizeof got);
  ck_assert_ptr_nonnull(strstr(got, " l2"));
  probe_dispatch("", "l1", 1, got, sizeof got);
  ck_assert_ptr_nonnull(strstr(got, " l1"));
  probe_dispatch("", "", 1, got, sizeof got);
  ck_assert_ptr_nonnull(strstr(got, lzn_prefetch_level_name(lzn_cpu_prefetch_level())));
  probe_dispatch("", "L2", 0, got, sizeof got);
  ck_assert_ptr_nonnull(strstr(got, "NULL LZN_ERR_ISA"));
  ck_assert_ptr_nonnull(strstr(got, "LZN_PREFETCH=\"L2\""));

  const lzn_kernel_table *active;
  ck_assert_int_eq(lzn_kernels_get(&active), LZN_OK);
  static lzn_kernel_table at_l1, at_l2;
  lzn_kernel_table_fill(active->isa, lzn_cpu_supported_isas(), LZN_PREFETCH_L1, &at_l1);
  lzn_kernel_table_fill(active->isa, lzn_cpu_supported_isas(), LZN_PREFETCH_L2, &at_l2);
  ck_assert_int_eq(at_l1.prefetch, LZN_PREFETCH_L1);
  ck_assert_int_eq(at_l2.prefetch, LZN_PREFETCH_L2);
  int differ = 0;
  for (int w = 1; w < LZN_WEIGHT_TYPE_COUNT; w++) {
    const lzn_type_kernels *a = &at_l1.type[w], *b = &at_l2.type[w];
    const int simd = a->gemv.isa != LZN_ISA_SCALAR;
    ck_assert_int_eq(a->gemv.fn != b->gemv.fn, simd);
    ck_assert_int_eq(a->dot_rows.fn != b->dot_rows.fn, a->dot_rows.isa != LZN_ISA_SCALAR);
    ck_assert_int_eq(a->axpy_rows.fn != b->axpy_rows.fn, a->axpy_rows.isa != LZN_ISA_SCALAR);
    ck_assert(a->from_f32.fn == b->from_f32.fn); /* not a row kernel: one build */
    differ += simd;
  }
  for (int kv = 0; kv < LZN_KV_TYPE_COUNT; kv++) {
    const lzn_attn_kernels *a = &at_l1.attn[kv], *b = &at_l2.attn[kv];
    ck_assert_int_eq(a->scores.fn != b->scores.fn, a->scores.isa != LZN_ISA_SCALAR);
    ck_assert_int_eq(a->weighted_sum.fn != b->weighted_sum.fn, a->weighted_sum.isa != LZN_ISA_SCALAR);
    ck_assert(a->store.fn == b->store.fn);
  }
  if (active->isa >= LZN_ISA_AVX2) ck_assert_int_gt(differ, 0);
}
END_TEST

START_TEST(unsupported_isa_is_an_error_not_a_fallback) {
  enum lzn_isa isa = LZN_ISA_AVX2;
  char why[256] = "";
  const unsigned scalar_only = 1u << LZN_ISA_SCALAR;
  ck_assert_int_eq(lzn_isa_resolve("avx512", scalar_only, &isa, why, sizeof why), LZN_ERR_ISA);
  ck_assert_ptr_nonnull(strstr(why, "not supported by this CPU"));
  ck_assert_int_eq(lzn_isa_resolve("avx2", scalar_only, &isa, why, sizeof why), LZN_ERR_ISA);
  /* An AVX-512 CPU without BF16 (Skylake-X, Ice Lake) must not get the BF16 ceiling. */
  const unsigned no_bf16 = (1u << LZN_ISA_SCALAR) | (1u << LZN_ISA_AVX2) | (1u << LZN_ISA_AVX512);
  ck_assert_int_eq(lzn_isa_resolve("avx512bf16", no_bf16, &isa, why, sizeof why), LZN_ERR_ISA);
  ck_assert_ptr_nonnull(strstr(why, "not supported by this CPU"));
  /* The default on a scalar-only machine is scalar. */
  ck_assert_int_eq(lzn_isa_resolve(NULL, scalar_only, &isa, why, sizeof why), LZN_OK);
  ck_assert_int_eq(isa, LZN_ISA_SCALAR);
  ck_assert_int_eq(lzn_isa_resolve("", scalar_only, &isa, why, sizeof why), LZN_OK);
  ck_assert_int_eq(isa, LZN_ISA_SCALAR);
  /* A scalar-only machine's table is the reference in every slot. */
  lzn_kernel_table t;
  lzn_kernel_table_fill(LZN_ISA_AVX512VNNI, scalar_only, LZN_PREFETCH_L2, &t);
  ck_assert_int_eq(t.relu_compact.isa, LZN_ISA_SCALAR);
  for (int w = 1; w < LZN_WEIGHT_TYPE_COUNT; w++)
    for (int op = 0; op < LZN_KOP_COUNT; op++)
      ck_assert_int_eq(lzn_type_slot_isa(&t, (lzn_weight_type)w, (lzn_kop)op), LZN_ISA_SCALAR);
  /* The default is the best ISA supported and compiled in. */
  const unsigned all = (1u << LZN_ISA_COUNT) - 1u;
  ck_assert_int_eq(lzn_isa_resolve(NULL, all, &isa, why, sizeof why), LZN_OK);
  for (int i = LZN_ISA_COUNT - 1; i >= 0; i--)
    if (lzn_isa_compiled() & (1u << i)) {
      ck_assert_int_eq(isa, i);
      break;
    }
  ck_assert_int_eq(lzn_isa_supported("sse9"), 0);
  ck_assert_int_eq(lzn_isa_supported(NULL), 0);
  ck_assert_int_eq(lzn_isa_supported("scalar"), 1);
}
END_TEST

/* --------------------------------------------------- public sparse ops */

#define EXPECT_INVALID(call, words)                                  \
  do {                                                               \
    ck_assert_int_eq((call), LZN_ERR_INVALID_ARG);                   \
    ck_assert_msg(strstr(lzn_last_error(), (words)) != NULL,         \
                  "message \"%s\" lacks \"%s\"", lzn_last_error(), (words)); \
  } while (0)

START_TEST(relu_compact_checks_arguments) {
  float h[4] = {1, -1, 2, 0}, val[4];
  int32_t idx[4];
  int64_t n = -1;
  EXPECT_INVALID(lzn_relu_compact(NULL, 4, 0, idx, val, &n), "h is NULL");
  EXPECT_INVALID(lzn_relu_compact(h, 4, 0, NULL, val, &n), "active_idx is NULL");
  EXPECT_INVALID(lzn_relu_compact(h, 4, 0, idx, NULL, &n), "active_val is NULL");
  EXPECT_INVALID(lzn_relu_compact(h, 4, 0, idx, val, NULL), "n_active is NULL");
  EXPECT_INVALID(lzn_relu_compact(h, 0, 0, idx, val, &n), "n = 0");
  EXPECT_INVALID(lzn_relu_compact(h, -5, 0, idx, val, &n), "n = -5");
  EXPECT_INVALID(lzn_relu_compact(h, 4, -0.5f, idx, val, &n), "threshold");
  EXPECT_INVALID(lzn_relu_compact(h, 4, NAN, idx, val, &n), "threshold");
  ck_assert_int_eq(n, -1); /* untouched on failure */
  ck_assert_int_eq(lzn_relu_compact(h, 4, 0, idx, val, &n), LZN_OK);
  ck_assert_int_eq(n, 2);
  ck_assert_int_eq(idx[0], 0);
  ck_assert_int_eq(idx[1], 2);
  ck_assert_float_eq(val[1], 2.0f);
  ck_assert_int_eq(lzn_relu_compact(h, 4, 1.0f, idx, val, &n), LZN_OK);
  ck_assert_int_eq(n, 1);
  ck_assert_int_eq(idx[0], 2);
}
END_TEST

START_TEST(sparse_down_checks_arguments) {
  float y[3] = {0}, w[6] = {1, 2, 3, 4, 5, 6}, coef[2] = {1, 1};
  int32_t idx[2] = {0, 1}, bad_idx[2] = {0, 2}, neg_idx[1] = {-1};
  EXPECT_INVALID(lzn_sparse_down(NULL, 3, w, 2, idx, coef, 2, 1), "y is NULL");
  EXPECT_INVALID(lzn_sparse_down(y, 3, NULL, 2, idx, coef, 2, 1), "w_t is NULL");
  EXPECT_INVALID(lzn_sparse_down(y, 0, w, 2, idx, coef, 2, 1), "d = 0");
  EXPECT_INVALID(lzn_sparse_down(y, 3, w, -2, idx, coef, 2, 1), "f = -2");
  EXPECT_INVALID(lzn_sparse_down(y, 3, w, 2, idx, coef, 3, 1), "n_active = 3");
  EXPECT_INVALID(lzn_sparse_down(y, 3, w, 2, idx, coef, -1, 1), "n_active = -1");
  EXPECT_INVALID(lzn_sparse_down(y, 3, w, 2, NULL, coef, 2, 1), "active_idx is NULL");
  EXPECT_INVALID(lzn_sparse_down(y, 3, w, 2, idx, NULL, 2, 1), "active_val is NULL");
  EXPECT_INVALID(lzn_sparse_down(y, 3, w, 2, idx, coef, 2, 0), "n_threads = 0");
  EXPECT_INVALID(lzn_sparse_down(y, 3, w, 2, idx, coef, 2, 100000), "n_threads = 100000");
  EXPECT_INVALID(lzn_sparse_down(y, 3, w, 2, bad_idx, coef, 2, 1), "active_idx[1] = 2");
  EXPECT_INVALID(lzn_sparse_down(y, 3, w, 2, neg_idx, coef, 1, 1), "active_idx[0] = -1");
  ck_assert_float_eq(y[0], 0.0f); /* nothing written on failure */
  ck_assert_int_eq(lzn_sparse_down(y, 3, w, 2, NULL, NULL, 0, 1), LZN_OK);
  ck_assert_int_eq(lzn_sparse_down(y, 3, w, 2, idx, coef, 2, 1), LZN_OK);
  ck_assert_float_eq(y[0], 5.0f);
  ck_assert_float_eq(y[2], 9.0f);
}
END_TEST

/* Threads take parts of the rows, cut by their count alone (and slices of
 * y beyond a thread per part), so every thread count gives bitwise the same y. */
START_TEST(sparse_down_same_result_for_any_thread_count) {
  const int64_t d = 2051, f = 1031;
  test_rng rng = {12345};
  float *w = malloc(sizeof(float) * (size_t)(d * f));
  float *h = malloc(sizeof(float) * (size_t)f), *val = malloc(sizeof(float) * (size_t)f);
  int32_t *idx = malloc(sizeof(int32_t) * (size_t)f);
  float *y1 = calloc((size_t)d, sizeof(float)), *y2 = calloc((size_t)d, sizeof(float));
  fill_random(&rng, w, (size_t)(d * f));
  fill_random(&rng, h, (size_t)f);
  int64_t n;
  ck_assert_int_eq(lzn_relu_compact(h, f, 0.0f, idx, val, &n), LZN_OK);
  ck_assert_int_gt(n, f / 4); /* about half of uniform [-1, 1) values */
  ck_assert_int_eq(lzn_sparse_down(y1, d, w, f, idx, val, n, 1), LZN_OK);
  for (int threads = 2; threads <= 5; threads++) {
    memset(y2, 0, sizeof(float) * (size_t)d);
    ck_assert_int_eq(lzn_sparse_down(y2, d, w, f, idx, val, n, threads), LZN_OK);
    ck_assert_int_eq(memcmp(y1, y2, sizeof(float) * (size_t)d), 0);
  }
  /* Called from inside the caller's own parallel region, the library's
   * region is nested and gets one thread (nesting is off by default): every
   * slice of y must still be computed. */
  int nested_ok = 1;
#pragma omp parallel num_threads(2) reduction(&& : nested_ok)
  {
    float *y3 = calloc((size_t)d, sizeof(float));
    nested_ok = lzn_sparse_down(y3, d, w, f, idx, val, n, 2) == LZN_OK &&
                memcmp(y1, y3, sizeof(float) * (size_t)d) == 0;
    free(y3);
  }
  ck_assert_msg(nested_ok, "sparse_down nested in a parallel region lost part of y");
  /* And it is the down-projection: compare with a double-precision loop. */
  for (int64_t j = 0; j < d; j += 97) {
    double ref = 0;
    for (int64_t i = 0; i < f; i++) ref += (h[i] > 0 ? h[i] : 0) * (double)w[i * d + j];
    ck_assert_double_le(fabs(ref - y1[j]), 1e-4 * (1 + fabs(ref)));
  }
  free(w), free(h), free(val), free(idx), free(y1), free(y2);
}
END_TEST

/* ------------------------------------------------------- dense wrapper */

/* Naive y = x * w^T + bias in double, the wrapper's oracle. */
static void naive_linear(float *y, const float *x, const float *w, const float *bias, int64_t m,
                         int64_t n, int64_t k) {
  for (int64_t r = 0; r < m; r++)
    for (int64_t c = 0; c < n; c++) {
      double s = bias ? bias[c] : 0.0;
      for (int64_t i = 0; i < k; i++) s += (double)x[r * k + i] * w[c * k + i];
      y[r * n + c] = (float)s;
    }
}

/* fp32 GEMM vs a double loop: error grows with k; inputs are in [-1, 1). */
#define DENSE_TOLERANCE 1e-5

START_TEST(dense_matches_naive_loop) {
  static const int64_t shapes[][3] = {{1, 1, 1},   {1, 7, 17},   {3, 15, 16}, {5, 100, 64},
                                      {1, 2051, 33}, {13, 17, 257}, {1, 64, 2051}};
  lzn_dense *dense;
  ck_assert_int_eq(lzn_dense_create(&dense), LZN_OK);
  test_rng rng = {777};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    const int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
    float *x = malloc(sizeof(float) * (size_t)(m * k)), *w = malloc(sizeof(float) * (size_t)(n * k));
    float *b = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)(m * n));
    float *ref = malloc(sizeof(float) * (size_t)(m * n));
    fill_random(&rng, x, (size_t)(m * k));
    fill_random(&rng, w, (size_t)(n * k));
    fill_random(&rng, b, (size_t)n);
    for (int with_bias = 0; with_bias <= 1; with_bias++)
      for (int threads = 1; threads <= 2; threads++) {
        const float *bias = with_bias ? b : NULL;
        ck_assert_int_eq(lzn_dense_linear(dense, y, x, w, bias, m, n, k, threads), LZN_OK);
        naive_linear(ref, x, w, bias, m, n, k);
        const double err = max_rel_error(y, ref, (size_t)(m * n)) / (double)k;
        ck_assert_msg(err <= DENSE_TOLERANCE, "shape %lldx%lldx%lld bias %d: err/k %g",
                      (long long)m, (long long)n, (long long)k, with_bias, err);
      }
    free(x), free(w), free(b), free(y), free(ref);
  }
  lzn_dense_free(dense);
  lzn_dense_free(NULL);
}
END_TEST

START_TEST(dense_cache_survives_many_shapes) {
  lzn_dense *dense;
  ck_assert_int_eq(lzn_dense_create(&dense), LZN_OK);
  float x[40], w[40 * 40], y[40], ref[40];
  test_rng rng = {99};
  fill_random(&rng, x, 40);
  fill_random(&rng, w, 40 * 40);
  /* More shapes than the cache holds, twice over: entries get replaced. */
  for (int round = 0; round < 2; round++)
    for (int64_t n = 1; n <= 40; n++) {
      ck_assert_int_eq(lzn_dense_linear(dense, y, x, w, NULL, 1, n, 40, 1), LZN_OK);
      naive_linear(ref, x, w, NULL, 1, n, 40);
      ck_assert_double_le(max_rel_error(y, ref, (size_t)n), 40 * DENSE_TOLERANCE);
    }
  ck_assert_int_eq(lzn_dense_linear(dense, y, x, w, NULL, 0, 4, 4, 1), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_dense_linear(dense, y, x, w, NULL, 1, 4, 4, 0), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_dense_linear(dense, NULL, x, w, NULL, 1, 4, 4, 1), LZN_ERR_INVALID_ARG);
  lzn_dense_free(dense);
}
END_TEST

static Suite *api_suite(void) {
  Suite *s = suite_create("api");
  TCase *basics = tcase_create("basics");
  tcase_add_test(basics, version_matches_header);
  tcase_add_test(basics, status_names_are_distinct);
  tcase_add_test(basics, last_error_is_per_thread);
  tcase_add_test(basics, type_names_round_trip);
  tcase_add_test(basics, struct_sizes_keep_their_promise);
  suite_add_tcase(s, basics);
  TCase *dispatch = tcase_create("dispatch");
  tcase_set_timeout(dispatch, 30);
  tcase_add_test(dispatch, forced_isa_is_the_active_one);
  tcase_add_test(dispatch, unknown_isa_fails_every_kernel_call);
  tcase_add_test(dispatch, prefetch_level_is_chosen_and_forced);
  tcase_add_test(dispatch, unsupported_isa_is_an_error_not_a_fallback);
  suite_add_tcase(s, dispatch);
  TCase *ops = tcase_create("ops");
  tcase_set_timeout(ops, 30);
  tcase_add_test(ops, relu_compact_checks_arguments);
  tcase_add_test(ops, sparse_down_checks_arguments);
  tcase_add_test(ops, sparse_down_same_result_for_any_thread_count);
  suite_add_tcase(s, ops);
  TCase *dense = tcase_create("dense");
  tcase_set_timeout(dense, 60);
  tcase_add_test(dense, dense_matches_naive_loop);
  tcase_add_test(dense, dense_cache_survives_many_shapes);
  suite_add_tcase(s, dense);
  return s;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--probe-isa") == 0) return probe_main(argc > 2);
  if (realpath(argv[0], self_path) == NULL) snprintf(self_path, sizeof self_path, "%s", argv[0]);
  return run_suite(api_suite());
}
