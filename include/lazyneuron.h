/*
 * lazyneuron.h: the only public header of lazyneuron, an inference library for
 * ReLU Transformers that computes the MLP down-projection from the rows of
 * W_down whose activation is nonzero ("The Lazy Neuron Phenomenon", Li et al.
 * 2022: 3 % of MLP activations are nonzero in T5-Base, 6 % in ViT-B16).
 *
 * Conventions, for every function below:
 *  - A function that can fail returns lzn_status. On failure it also records a
 *    message for the calling thread, read with lzn_last_error(); the message
 *    names the argument, file, tensor or rule at fault.
 *  - Handles are opaque. Whatever *_create / *_load returns is released by the
 *    matching *_free; freeing NULL is a no-op. On failure *out is set to NULL.
 *  - Structs start with size_t struct_size, so later versions add fields
 *    without breaking callers (see "ABI" below). Parameter structs come
 *    from lzn_*_params_init(&p, sizeof p) (or lzn_*_default_params());
 *    output structs are the caller's with struct_size set:
 *        lzn_model_info info = {.struct_size = sizeof info};  (C++: info{};
 *        lzn_model_get_info(model, &info);                     then set it)
 *  - The library never prints, never exits or aborts, and reads no
 *    environment variable but LZN_ISA and LZN_PREFETCH.
 *
 * Threading rules: every function may be called from any thread. An
 * lzn_model is read-only once loaded and may be shared by any number of
 * threads and contexts (the exceptions, internal and safe from any
 * thread: the AUTO costs its first contexts measured, kept for the next
 * ones, and the thread pools it lends its contexts). An lzn_context (KV
 * cache, scratch, statistics) must be used by one thread at a time.
 * n_threads in the params is the number of threads one call may use: the
 * calling thread and n_threads - 1 workers (they spin briefly after a
 * call, then sleep). A call runs on workers the model shares among its
 * contexts of that n_threads when no other call is using them, else on
 * the context's own: contexts used in turn from one thread (a server's
 * slots) keep one set of workers, not a spinning set each. Work is
 * handed out in small pieces to whichever thread is free, so a thread the
 * OS takes away (another process busy on that core) holds back only the
 * piece it has, not the whole call; where that keeps happening, the
 * context runs its calls on fewer threads for a while and then tries all of
 * them again (results never depend on it). Batched products (prefill, batches of
 * sequences) also use oneDNN, whose threads are OpenMP's (so do the F16, BF16
 * and K-quant weights' conversions into the panels oneDNN multiplies).
 *
 * fork(): GNU OpenMP's thread pool does not survive fork(). A child process
 * should not use oneDNN's batched paths if its parent already ran one with
 * n_threads > 1 (it can hang); fork first, or exec. A context's own
 * workers do not survive fork either: in the child its calls run on the
 * calling thread alone.
 *
 * ABI: a program built against an older header keeps working with a newer
 * library of the same major version (liblazyneuron.so.0).
 *  - A parameter struct's struct_size may be that of any released header
 *    (0.1 or later) or the current sizeof; the fields an older struct lacks
 *    take their defaults. Another size (or a larger one: a newer header) is
 *    LZN_ERR_INVALID_ARG.
 *  - An output struct is filled up to the struct_size the caller set (a
 *    released size or the current one; arrays: out[0].struct_size is each
 *    element's size, and the library sets every element's struct_size).
 *  - 0.2's output structs had no struct_size: programs built against 0.2
 *    call the 0.2 versions of lzn_model_get_info, lzn_context_stats,
 *    lzn_context_predictor_stats and lzn_tokenizer_get_info, which the
 *    shared library keeps (ELF symbol versions LZN_0.2, LZN_0.3).
 *  - lzn_*_default_params() return their structs by value at the size they
 *    had when released; if a struct grows, its by-value function keeps
 *    returning the released size (use lzn_*_params_init for the new one).
 */
#ifndef LAZYNEURON_H
#define LAZYNEURON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(LZN_BUILDING_LIBRARY) && defined(__GNUC__)
#define LZN_API __attribute__((visibility("default")))
#else
#define LZN_API
#endif

/* ------------------------------------------------------------------ version */

#define LZN_VERSION_MAJOR 0
#define LZN_VERSION_MINOR 3
#define LZN_VERSION_PATCH 0
#define LZN_VERSION_NUMBER \
  (LZN_VERSION_MAJOR * 10000 + LZN_VERSION_MINOR * 100 + LZN_VERSION_PATCH)

/* LZN_VERSION_NUMBER of the library actually linked (may differ from the
 * header the caller compiled against). */
LZN_API unsigned lzn_version_number(void);
/* "MAJOR.MINOR.PATCH" of the linked library; a static string. */
LZN_API const char *lzn_version_string(void);

/* ------------------------------------------------------------------- status */

/* Explicit values: they are part of the ABI and are never renumbered. */
typedef enum lzn_status {
  LZN_OK = 0,
  LZN_ERR_INVALID_ARG = 1,  /* NULL, out-of-range or inconsistent argument */
  LZN_ERR_IO = 2,           /* a file could not be opened, read or mapped */
  LZN_ERR_FORMAT = 3,       /* a file breaks its format's rules */
  LZN_ERR_UNSUPPORTED = 4,  /* valid, but not something lazyneuron runs */
  LZN_ERR_NOMEM = 5,        /* an allocation failed */
  LZN_ERR_CONTEXT_FULL = 6, /* the KV cache has no room for the tokens */
  LZN_ERR_ISA = 7,          /* LZN_ISA names an unknown ISA or one this CPU/OS lacks (or LZN_PREFETCH is not l1|l2) */
  LZN_ERR_BACKEND = 8,      /* oneDNN reported an error */
  LZN_ERR_CANCELLED = 9     /* a progress callback asked to stop */
} lzn_status;

/* The name of a status, e.g. "LZN_ERR_FORMAT"; "LZN_UNKNOWN_STATUS" for a
 * value that is not one. A static string. */
LZN_API const char *lzn_status_str(lzn_status status);

/* The message of the last failing call made by this thread, or "" if none
 * failed yet. The pointer stays valid until this thread's next lazyneuron
 * call. Successful calls do not clear it. */
LZN_API const char *lzn_last_error(void);

/* ---------------------------------------------------------- kernel dispatch */

/* The kernel set in use, named by its best ISA: "scalar", "avx2", "avxvnni",
 * "avx512", "avx512bf16" or "avx512vnni" (in that order). Kernels are chosen
 * once, on first use, per (weight type, operation): the portable reference,
 * overridden by every ISA the CPU and the OS (XCR0) support up to the best,
 * each extension (AVX512_BF16, AVX512_VNNI, AVX-VNNI) checked on its own.
 * The environment variable LZN_ISA=name sets that ceiling. The row kernels
 * come in two builds, their software prefetches into L1 or toward L2,
 * chosen by the CPU's L1 data cache (L2 under 48 KiB: README.md, "Kernel
 * dispatch", says what each measured); LZN_PREFETCH=l1|l2 forces one.
 * Returns NULL if LZN_ISA names an unknown ISA or one this machine cannot
 * run, or LZN_PREFETCH is set to another value; every call that needs
 * kernels then fails with LZN_ERR_ISA and lzn_last_error() says why (never
 * SIGILL). */
LZN_API const char *lzn_isa_name(void);

/* Whether this machine (CPU and OS) can run the named ISA's kernels and the
 * library has some compiled in, whatever LZN_ISA says: 1 if so, 0 if not or
 * the name is unknown. */
LZN_API int lzn_isa_supported(const char *name);

/* Added in 0.3. The name of the index-th ISA in ceiling order ("scalar"
 * first, "avx512vnni" last), NULL past the end: every name LZN_ISA and
 * lzn_isa_supported() take. A static string. */
LZN_API const char *lzn_isa_name_at(int index);

/* ------------------------------------------------------------------ threads */

/* The thread count to use when the caller has no better idea: the physical
 * cores this process may run on, i.e. the CPUs of its affinity mask
 * (taskset, a cpuset, a container's CPU set; not the host's count) with the
 * hyper-thread siblings of one core counted once. At least 1, at most
 * 1024. Reads the affinity mask and sysfs on each call (cheap). lzn-run
 * uses it as its default -t. */
LZN_API int lzn_default_thread_count(void);

/* ------------------------------------------------------------ weight types */

/* The type the model keeps its weight matrices in (explicit values, never
 * renumbered). Decoding is memory-bound: bytes per weight are time.
 * Norms, biases, learned positions and every 1-D tensor stay fp32. */
typedef enum lzn_weight_type {
  LZN_WEIGHTS_AS_STORED = 0, /* F32, F16 and BF16 tensors stay in their file's type */
  LZN_WEIGHTS_F32 = 1,       /* 32 bits per weight */
  LZN_WEIGHTS_F16 = 2,       /* IEEE binary16, 16 bits, rounded to nearest even */
  LZN_WEIGHTS_BF16 = 3,      /* bfloat16, 16 bits, rounded to nearest even */
  LZN_WEIGHTS_Q8_0 = 4,      /* llama.cpp's Q8_0: blocks of 32 int8 + an fp16 scale, 8.5 bits */
  LZN_WEIGHTS_Q4_0 = 5,      /* llama.cpp's Q4_0: blocks of 32 4-bit + an fp16 scale, 4.5 bits */
  /* Added in 0.4, llama.cpp's K-quants: super-blocks of 256 weights, so a
   * row must be a multiple of 256 weights (every LLaMA-family d_model and
   * d_ff is); a matrix whose rows are not cannot be kept in them
   * (LZN_ERR_UNSUPPORTED naming it). */
  LZN_WEIGHTS_Q4_K = 6,      /* 8 sub-blocks of 32 4-bit, 6-bit scales and mins, fp16 d and dmin: 4.5 bits */
  LZN_WEIGHTS_Q5_K = 7,      /* Q4_K with a fifth bit per weight: 5.5 bits */
  LZN_WEIGHTS_Q6_K = 8       /* 16 sub-blocks of 16 6-bit, int8 scales, an fp16 d: 6.5625 bits */
} lzn_weight_type;

/* Room for weight types in the arrays indexed by lzn_weight_type
 * (lzn_model_info.weight_bytes_by_type): more than there are. */
#define LZN_WEIGHT_TYPE_SLOTS 16

/* Added in 0.3. The name of a weight type: "AS_STORED", "F32", "F16",
 * "BF16", "Q8_0", "Q4_0", "Q4_K", ... (GGUF's spelling); NULL for a value that is not
 * one. The values run from 0 without gaps, so a program lists every type
 * by counting up until NULL. A static string. */
LZN_API const char *lzn_weight_type_name(lzn_weight_type type);
/* Added in 0.3. The type a name spells, case-insensitively ("q4_0" or
 * "Q4_0"). Statuses: OK, INVALID_ARG (NULL, or not a name: the message
 * lists the names). */
LZN_API lzn_status lzn_weight_type_from_name(const char *name, lzn_weight_type *out);

/* ------------------------------------------------------- low-level sparse ops
 *
 * For engines that keep their own weights and want only lazyneuron's kernels.
 * Sizes are int64_t so that a negative size is an error, not a huge one.
 */

/* The active set of a ReLU activation: writes, in increasing order, every i
 * in [0, n) with h[i] > threshold to active_idx and h[i] to active_val, and
 * their count to *n_active. threshold >= 0 (0 is plain ReLU). Both outputs
 * must hold n entries. NaN entries are treated as inactive.
 * Statuses: OK, INVALID_ARG, ISA. */
LZN_API lzn_status lzn_relu_compact(const float *h, int64_t n, float threshold,
                                    int32_t *active_idx, float *active_val,
                                    int64_t *n_active);

/* The sparse down-projection:
 *   y[j] += sum over t < n_active of active_val[t] * w_t[active_idx[t] * d + j],
 * for j in [0, d), where w_t is W_down stored transposed, row-major [f][d]:
 * one contiguous row of d values per neuron. Indices must lie in [0, f).
 * Uses up to n_threads threads (started for the call). A large call's rows
 * are cut into up to 4 parts by their count alone, each summed by one thread
 * and the parts added in order, so the result does not depend on n_threads.
 * Statuses: OK, INVALID_ARG, ISA, NOMEM. */
LZN_API lzn_status lzn_sparse_down(float *y, int64_t d, const float *w_t, int64_t f,
                                   const int32_t *active_idx, const float *active_val,
                                   int64_t n_active, int n_threads);

/* The bytes of one row of n weights of a type (a block type: ceil(n / 32)
 * blocks, ceil(n / 256) super-blocks for the K-quants, the last
 * zero-padded); -1 for a type that is not one (or LZN_WEIGHTS_AS_STORED)
 * or n < 0. */
LZN_API int64_t lzn_weight_row_bytes(lzn_weight_type type, int64_t n);

/* Converts rows x cols fp32 values (row-major) to a weight type, row by
 * row (lzn_weight_row_bytes(type, cols) bytes each), as the model loader
 * does: round to nearest even for F16/BF16, llama.cpp's rounding for
 * Q8_0/Q4_0, a least-squares search of each sub-block's scale (and min)
 * for the K-quants (kernels/ref/k_quantize.c states it). Statuses: OK, INVALID_ARG (NULL, sizes, type; a NaN or Inf in
 * src, or a value F16 cannot hold: the row is named), ISA. */
LZN_API lzn_status lzn_weights_convert(lzn_weight_type type, const float *src, int64_t rows,
                                       int64_t cols, void *dst);

/* lzn_sparse_down for W_down^T in any weight type: row i of w_t starts at
 * (const char *)w_t + i * lzn_weight_row_bytes(type, d). Same statuses,
 * and INVALID_ARG for a type that is not one. */
LZN_API lzn_status lzn_sparse_down_typed(float *y, int64_t d, const void *w_t,
                                         lzn_weight_type type, int64_t f,
                                         const int32_t *active_idx, const float *active_val,
                                         int64_t n_active, int n_threads);

/* ------------------------------------------------------------------ models
 *
 * Architectures: OPT (OPTForCausalLM: ReLU MLP) and the LLaMA family with a
 * gated MLP (LlamaForCausalLM, MistralForCausalLM, BambooForCausalLM):
 * hidden_act relu (ReluLLaMA), fatrelu with hidden_act_param (ProSparse,
 * MiniCPM-S), drelu or a Bamboo architecture (TurboSparse, Bamboo), silu
 * (SwiGLU: dense unless the context sets a threshold or top_k; then
 * |silu(gate)| at or below the threshold counts as zero, an approximation).
 * The context's threshold, when > 0, replaces FATReLU's. */

typedef struct lzn_model lzn_model;     /* read-only after load; share freely */
typedef struct lzn_context lzn_context; /* KV cache + scratch + stats; one thread at a time */

/* Called during load with the fraction done in [0, 1]; return 0 to cancel
 * (lzn_model_load then frees everything and returns LZN_ERR_CANCELLED). */
typedef int (*lzn_progress_fn)(float fraction_done, void *user_data);

typedef struct lzn_model_params {
  size_t struct_size;          /* sizeof(lzn_model_params), set by the defaults */
  /* 1 (default): the weights used as stored are the file's mapping, shared
   * with every process that maps the file, and a load reads nothing it
   * does not use. 0: the file is read into private memory on transparent
   * huge pages: a slower load and no sharing, but decode then reads its
   * weights on 2 MiB pages whatever the page cache holds. The mapping asks
   * for them too (MADV_HUGEPAGE), which a kernel that caches files in large
   * folios (Linux 6.x on ext4 or XFS) grants when the load reads the file
   * from disk: one-thread decode of a LLaMA-7B Q4_0 file 1.5-3x faster
   * than without the advice. A file already cached in 4 KiB pages (written
   * on this machine and not dropped since), or an older kernel, keeps them:
   * there 0 decoded up to 1.7x faster (README, "Mapped or read"; lzn-run
   * and lzn-server --no-mmap). */
  int use_mmap;
  lzn_progress_fn progress;    /* optional (default NULL) */
  void *progress_user_data;
  /* Weight matrices as stored (default) or converted / quantized at load.
   * A row of a block type is whole blocks, the last one zero-padded. */
  lzn_weight_type weight_type;
  /* An activation predictor (see "predictor" below): NULL (default) loads
   * predictor.safetensors from the model's folder when there is one; a
   * path loads that file (an error if it cannot); "" loads none. */
  const char *predictor_path;
  /* Added in 0.4 (lzn_model_params_init sets it; lzn_model_default_params
   * returns the 0.3 struct without it): the type of W_down^T where the
   * loader makes it from a quantized W_down, i.e. a file that stores
   * W_down as llama.cpp does ([d_model][d_ff], blocks along d_ff; Q8_0,
   * Q4_0 and the K-quants). Transposing quantizes it again, across other
   * blocks: a second rounding that llama.cpp's users never get.
   * LZN_WEIGHTS_Q8_0 (default): measured as close to the file's own
   * weights as llama.cpp's computation on the file is, for 8.5 bits per
   * weight of W_down^T (README, "Quality of the transposed W_down");
   * LZN_WEIGHTS_AS_STORED: each W_down^T in its file's type (the file's
   * bytes, a mix's per-layer types kept; ~4x the logit error); any type:
   * that one (F16: within 2^-11 of the file's values). A W_down in F32,
   * F16 or BF16 transposes exactly and follows weight_type; a file that
   * stores W_down^T (PowerInfer's, lzn-quantize's) is used as it is. */
  lzn_weight_type down_t_type;
  /* Added in 0.4 (as down_t_type): bytes the loader may spend on packed
   * copies of the Q8_0 / Q4_0 matrices that a batch of tokens (a prompt,
   * lzn_forward_batch) reads whole: attention's q, k, v, o, the LM head,
   * and the gate of a layer without a predictor, then, for a model whose
   * MLP is dense (SiLU), up and down. K-quant (Q4_K, Q5_K, Q6_K) matrices
   * of the first group are copied requantized to Q8_0 (a 7B-shape Q4_K
   * prompt of 128 tokens 1.5-2x faster; ~3.7 GiB on LLaMA-7B, made at
   * load: 13-16 s on a VM whose first touch of memory costs ~3 s per GiB,
   * against 0.5 s without them). Rows in groups of 16 so that one
   * int8 dot product serves 16 rows (a batched decode step of 8 on a
   * LLaMA-7B Q4_0: 2.2x faster; a dense prompt 1.44x faster with up and
   * down packed too; bench/RESULTS.md). Copies: the rows stay (one token
   * and sparse rows read them), so this adds up to their bytes (LLaMA-7B
   * Q4_0: ~2.1 GB with a ReLU-family MLP, ~3.7 GB with SiLU) to the
   * model's private memory.
   * SIZE_MAX (default): all of them; 0: none (a model that processes
   * share the mapped file of, and nothing else); between: in layer order
   * while they fit. Only where the CPU has the kernels (AVX512-VNNI
   * today); lzn_model_info.packed_bytes says what was made. */
  size_t pack_budget;
  /* Added in 0.4 (as down_t_type): OpenMP threads for the load's own work
   * (packed copies, the transposed W_down, converted matrices, the check
   * of every block's scale), >= 1 (default 1: the load runs on the calling
   * thread alone). The model is the same bytes for any number; an error
   * names what one thread would have named. On a 2-vCPU VM, 2 threads
   * loaded a 7B-shape Q4_K_M file with its default packed copies in 8.3 s
   * against 11.9 (medians of 3), a Q4_0 one in 3.8 against 5.3-6.9 s
   * (bench/RESULTS.md): much of a load is the kernel zeroing the new
   * pages, which the threads share. lzn-run and lzn-server pass their
   * --threads. */
  int n_threads;
  /* Added in 0.4 (as down_t_type): the type of the activation predictor's
   * two matrices ("predictor" below). LZN_WEIGHTS_AS_STORED (default): as
   * its file has them (a predictor.safetensors sidecar is F32, 4 bytes a
   * weight, read whole for every token: a rank-1024 predictor of LLaMA-7B
   * in F32 is 2 GB a token, more than a Q4_0 model's own rows); any type:
   * converted at load through fp32 (F16 and BF16 round to nearest, the
   * block types quantize as weight_type does, a row's last block
   * zero-padded: a rank-16 row is one Q4_K super-block). A rounded
   * predictor scores each neuron slightly differently, so the predicted sets
   * (and the logits where they change) may differ from the file's: on
   * tiny-llama's 32 reference tokens Q8_0 moved each layer's predicted
   * fraction by <= 0.0006 and one layer's recall from 0.984 to 0.973, F16
   * the fractions by <= 0.0001 (tests/test_predictor.c). INVALID_ARG for a
   * value that is no lzn_weight_type; FORMAT, naming the layer, matrix, row
   * and column, for a predictor value the type cannot hold (F16 beyond
   * 65504), as for weight_type. */
  lzn_weight_type predictor_type;
} lzn_model_params;

typedef enum lzn_mlp_mode {
  LZN_MLP_AUTO = 0,   /* per layer and call: whichever is cheaper (see auto_crossover) */
  LZN_MLP_SPARSE = 1, /* always the active rows of W_down */
  LZN_MLP_DENSE = 2   /* always the full oneDNN GEMM */
} lzn_mlp_mode;

typedef enum lzn_logits_mode {
  LZN_LOGITS_LAST = 0, /* logits of the last token only: vocab floats */
  LZN_LOGITS_ALL = 1   /* logits of every token: n_tokens * vocab floats */
} lzn_logits_mode;

/* The type of the KV cache's keys and values (explicit values; never
 * renumbered). Every type computes scores and sums in fp32; the type only
 * sets how each cached K/V value is stored, and so the bytes a decode step
 * reads at long context (per token of context and layer: 2 * n_kv_heads *
 * head_dim values). */
typedef enum lzn_kv_type {
  LZN_KV_F32 = 0,  /* exact: 4 bytes per value */
  LZN_KV_F16 = 1,  /* IEEE binary16, rounded to nearest even: 2 bytes (the default, like llama.cpp) */
  LZN_KV_BF16 = 2, /* bfloat16, rounded to nearest even: 2 bytes */
  LZN_KV_Q8_0 = 3  /* llama.cpp's block_q8_0 over head_dim (blocks of 32 int8 + an fp16 scale;
                      a head_dim not a multiple of 32 has a zero-padded last block): 1.0625 bytes */
} lzn_kv_type;

/* Added in 0.3. "F32", "F16", "BF16", "Q8_0"; NULL for a value that is
 * not an lzn_kv_type (values run from 0 without gaps). A static string. */
LZN_API const char *lzn_kv_type_name(lzn_kv_type type);
/* Added in 0.3. The KV type a name spells, case-insensitively.
 * Statuses: OK, INVALID_ARG (NULL, or not a name). */
LZN_API lzn_status lzn_kv_type_from_name(const char *name, lzn_kv_type *out);

typedef struct lzn_context_params {
  size_t struct_size;      /* sizeof(lzn_context_params), set by the defaults */
  int n_ctx;               /* KV cache length in tokens; 0 = the model's maximum */
  int n_threads;           /* threads per call, >= 1 (default 1) */
  lzn_mlp_mode mlp_mode;   /* default LZN_MLP_AUTO */
  /* AUTO: 0 (default) = per call, the cheaper path by a cost model measured
   * when the model's first context of this n_threads and step size (n_ctx,
   * at most 256) is created (a few passes over one layer's MLP matrices at
   * 1, 8 and 64 tokens: ~0.85 s on a LLaMA-7B shape; later contexts reuse
   * it; near the crossover its choice can differ between runs on a noisy
   * machine, in rounding only); > 0 = sparse while the mean active
   * fraction per token is below this, the same choice every run. In
   * [0, 1]. */
  float auto_crossover;
  int collect_stats;       /* 1: keep per-layer statistics (default 1) */
  /* Sparser than ReLU, trading quality for speed (Top-k thresholding: the
   * seeds report it keeps quality while making activations sparser). A
   * neuron is active when its pre-activation is > threshold and, if top_k > 0,
   * among the top_k largest of its token; active values are kept as they are.
   * Defaults 0 and 0: plain ReLU. */
  int top_k;               /* 0 = no limit; else 1 .. d_ff */
  float threshold;         /* >= 0 */
  /* Added in 0.2, the activation predictor of the model, if it has one
   * (lzn_model_info.has_predictor): 1 (default) uses it, 0 does not.
   * predictor_threshold: NAN (default) = the file's per-layer thresholds,
   * else this one for every layer (finite). collect_recall 1 also runs the
   * dense up-projection to measure the predictor's recall and precision
   * (lzn_context_predictor_stats): a dense pass, for evaluation only (a
   * call that computes the whole decider anyway, dense or a batch, counts
   * from that, on every call and in every mode). */
  int use_predictor;
  float predictor_threshold;
  int collect_recall;
  /* Added in 0.2: how the KV cache stores keys and values (default
   * LZN_KV_F16). The cache takes lzn_context_kv_bytes() bytes, allocated when
   * the context is created (pages are touched as positions fill). */
  lzn_kv_type kv_type;
} lzn_context_params;

typedef struct lzn_model_info {
  size_t struct_size; /* Added in 0.3: set by the caller (sizeof); see "ABI" at the top */
  int n_layers, d_model, d_ff, n_heads, vocab_size, max_positions;
  /* Added in 0.2: the type of the weight matrices (AS_STORED resolved: the
   * type of the largest share of bytes when a file mixes types), and the
   * bytes they take (the model's matrices, in memory or mapped). */
  lzn_weight_type weight_type;
  int64_t weight_bytes;
  int n_kv_heads, head_dim;  /* grouped-query attention: KV heads; per-head width */
  int gated;                 /* 1: a gated MLP (LLaMA family, 3 matrices), 0: OPT's 2 */
  const char *architecture;  /* "opt", "llama", "mistral", "bamboo": a static string */
  int has_predictor;         /* layers with an activation predictor (0: none) */
  /* Added in 0.4: the matrices' bytes by type, indexed by lzn_weight_type
   * (a file may mix types: llama.cpp's Q4_K_M keeps Q4_K and Q6_K); they
   * add up to weight_bytes. */
  int64_t weight_bytes_by_type[LZN_WEIGHT_TYPE_SLOTS];
  /* Added in 0.4: bytes of the packed copies the loader made
   * (lzn_model_params.pack_budget), not counted in weight_bytes. */
  int64_t packed_bytes;
} lzn_model_info;

/* Per-layer statistics since the context was created or reset, of the MLP
 * matrices the active set applies to: W_down (OPT: fc1 decides which
 * neurons fire and always runs dense), or W_up and W_down of a gated MLP
 * (the LLaMA family: the gate decides and always runs dense). */
typedef struct lzn_layer_stats {
  size_t struct_size;      /* Added in 0.3: out[0]'s set by the caller (sizeof); see "ABI" at the top */
  int64_t tokens;          /* tokens that went through the layer */
  double active_fraction;  /* mean fraction of neurons active per token */
  int64_t never_fired;     /* neurons never active so far ("dead" neurons) */
  double flops_dense;      /* FLOPs of those matrices a dense GEMM would do */
  double flops_executed;   /* FLOPs actually done (sparse or dense) */
  double bytes_dense;      /* their bytes a dense GEMM would read (once per call) */
  double bytes_executed;   /* their bytes actually read */
  int64_t sparse_calls, dense_calls; /* which path each call took */
  /* Wall time spent in the layer's blocks (for profiling; the rest of a
   * forward call is embeddings, norms, residuals and the LM head). */
  double seconds_attention; /* QKV, attention, output projection */
  double seconds_up;        /* fc1 (OPT) or the gate (gated MLPs) */
  double seconds_down;      /* selection, then fc2 (OPT) or the up and down rows (gated) */
  /* Added in 0.2, for batches and prefill: the mean over calls of the rows
   * a call's tokens needed together (the union of their active sets; for a
   * gated MLP the rows the gate selected), over d_ff; equal to
   * active_fraction when every call is one token. lzn-bench union shows how
   * it grows with the tokens per call. bytes_per_token_sparse: what the
   * sparse path would have read had it read each token's own active rows
   * (the baseline the union path improves on; bytes_dense is the other). */
  double union_fraction;
  double bytes_per_token_sparse;
} lzn_layer_stats;

/* The defaults by value, as released: lzn_model_default_params returns the
 * 0.3 struct (struct_size 48), so a field added since (down_t_type,
 * pack_budget) set on its result is IGNORED: the library reads 48 bytes.
 * New code calls lzn_model_params_init (below), which sets every field. */
LZN_API lzn_model_params lzn_model_default_params(void);
LZN_API lzn_context_params lzn_context_default_params(void);

/* Added in 0.3. Fills *params with the defaults, at struct_size (sizeof
 * *params, or a released size: see "ABI" at the top), and sets its
 * struct_size. Statuses: OK, INVALID_ARG (NULL, or not a known size). */
LZN_API lzn_status lzn_model_params_init(lzn_model_params *params, size_t struct_size);
LZN_API lzn_status lzn_context_params_init(lzn_context_params *params, size_t struct_size);

/* Loads a Hugging Face folder (config.json with model.safetensors or
 * model.safetensors.index.json + shards), a .safetensors file with
 * config.json beside it, or a GGUF file (llama.cpp's, PowerInfer's PWRI, or
 * lzn-convert's; architectures llama and bamboo: the config comes
 * from its metadata, the ReLU-family activation from "lazyneuron.activation"
 * where the converter wrote it, else relu for PWRI files, else SiLU; and
 * lzn-convert's opt, with opt.* keys). Any other file is FORMAT ("not a
 * GGUF or safetensors file"). params may be NULL for the defaults. Weight
 * matrices are kept in params->weight_type: as stored, they are used in
 * place in the mapped file where the layout allows; otherwise converted
 * once (W_down is always transposed, in that type).
 * Statuses: OK, INVALID_ARG (a params field out of range, named), IO,
 * FORMAT (a rule of the file broken; a NaN or Inf in a tensor being
 * quantized, or a value F16 cannot hold: the tensor and row are named),
 * UNSUPPORTED, NOMEM, CANCELLED, ISA. */
LZN_API lzn_status lzn_model_load(const char *path, const lzn_model_params *params,
                                  lzn_model **out);
LZN_API void lzn_model_free(lzn_model *model);
/* Fills *out up to out->struct_size, which the caller sets (sizeof, or a
 * released size). Statuses: OK, INVALID_ARG (NULL, or struct_size not a
 * known size). */
LZN_API lzn_status lzn_model_get_info(const lzn_model *model, lzn_model_info *out);

/* ---------------------------------------------------------------- quantize
 *
 * A GGUF model file rewritten with its weight matrices in another type, in
 * the spirit of llama.cpp's llama_model_quantize: what lzn-quantize runs.
 */
typedef struct lzn_quantize_params {
  size_t struct_size;        /* sizeof(lzn_quantize_params), set by the defaults */
  /* The matrices' type: any lzn_weight_type but AS_STORED (default Q8_0). */
  lzn_weight_type type;
  /* 1 (default): lazyneuron's layout, in which every matrix maps in place:
   * W_down written transposed (blk.N.ffn_down_t, PowerInfer's name;
   * "lazyneuron.down_transposed" true) and the q / k rows of a llama.cpp
   * file put back in Hugging Face's order ("lazyneuron.rope.rotate_half"
   * true). llama.cpp cannot read that file. 0: the input's layout. */
  int lazyneuron_layout;
  lzn_progress_fn progress;  /* optional: fraction of tensors written; 0 cancels */
  void *progress_user_data;
} lzn_quantize_params;

/* Defaults: Q8_0, lazyneuron_layout 1, no progress callback. */
LZN_API lzn_quantize_params lzn_quantize_default_params(void);
/* As lzn_context_params_init. Statuses: OK, INVALID_ARG. */
LZN_API lzn_status lzn_quantize_params_init(lzn_quantize_params *params, size_t struct_size);

/* Reads the GGUF file in_path, which must be a model lzn_model_load loads
 * (any of its types, llama.cpp's or lzn-convert's layout, OPT or the LLaMA
 * family), and writes out_path: the same metadata (general.file_type set to
 * llama.cpp's number for the type), tokenizer and tensors, with every
 * weight matrix (token_embd, output, proj_in/out, attn_q/k/v/output,
 * ffn_gate/up/down) in params->type, converted as lzn_weights_convert does
 * (an already quantized input is dequantized first: its error adds up).
 * Norms, biases, learned positions and PowerInfer's predictor tensors are
 * copied as they are. out_path appears only when complete: the file is
 * written under a temporary name beside it and renamed (nothing is left on
 * failure); out_path may be in_path. params may be NULL for the defaults.
 * Statuses: OK, INVALID_ARG (NULL paths, a params field out of range,
 * named), IO (in_path unreadable, out_path's folder unwritable, a write
 * failing: the file and the reason are named), FORMAT (in_path is not a
 * valid GGUF model, or a value the type cannot hold: a NaN, Inf, or beyond
 * F16's range, with the tensor and row), UNSUPPORTED (a model lazyneuron
 * does not run, or a matrix whose rows are not whole blocks of a block
 * type: the tensor is named), NOMEM, CANCELLED, ISA. */
LZN_API lzn_status lzn_model_quantize(const char *in_path, const char *out_path,
                                      const lzn_quantize_params *params);

/* A context for one sequence. The model must outlive it. params may be NULL.
 * The KV cache holds n_ctx positions of every layer in params->kv_type.
 * Statuses: OK, INVALID_ARG (a params field out of range, named), NOMEM (the
 * KV cache's size, stated in the message, overflows or cannot be
 * allocated), ISA, BACKEND. */
LZN_API lzn_status lzn_context_create(const lzn_model *model,
                                      const lzn_context_params *params,
                                      lzn_context **out);
LZN_API void lzn_context_free(lzn_context *ctx);

/* Appends n_tokens tokens to the sequence and writes logits (see
 * lzn_logits_mode) to the caller's buffer. On failure the KV cache is left
 * as it was. Statuses: OK, INVALID_ARG (NULL, n_tokens <= 0, token id out of
 * [0, vocab)), CONTEXT_FULL (the tokens do not fit), ISA, BACKEND. */
LZN_API lzn_status lzn_forward(lzn_context *ctx, const int32_t *tokens, int n_tokens,
                               float *logits, lzn_logits_mode mode);

/* One decoding step of n sequences at once: appends tokens[i] to ctxs[i]
 * for every i and writes its logits to logits[i * vocab ..], reading every
 * weight once for the whole step (the MLP sparse over the union of the
 * tokens' active neurons, or dense as one GEMM; attention per sequence
 * against its own cache). The contexts must belong to one model and appear
 * once; they may be at different positions. The step's MLP statistics are
 * counted in ctxs[0] (attention times too). On failure no
 * context advances. Threads: ctxs[0]'s n_threads. Statuses: OK,
 * INVALID_ARG (NULL, n <= 0, a context twice or of another model, a token
 * out of the vocabulary: the index is named), CONTEXT_FULL (naming which
 * context), ISA, BACKEND, NOMEM. */
LZN_API lzn_status lzn_forward_batch(lzn_context *const *ctxs, const int32_t *tokens, int n,
                                     float *logits);

/* One step of n sequences that each append their own number of tokens: a
 * chunk of one sequence's prompt beside the single tokens others decode,
 * as a server's continuous batching mixes them, so that the prompt rides
 * along on the same read of the weights instead of reading them again on
 * its own. ctxs[i] appends n_tokens[i] (>= 1) tokens, taken in order from
 * tokens (sum of n_tokens[i] of them), and gets the logits of its last one
 * at logits[i * vocab ..]. The rules of lzn_forward_batch otherwise: one
 * model, each context once, any positions; the MLP over the union of all
 * the tokens' active neurons (or dense, as AUTO measures), attention per
 * sequence; more than one step's rows (min(n_ctx, 256) of ctxs[0]) go in
 * several steps. The trade: the union grows with the prompt's tokens and
 * every row's MLP covers it, so where a step is compute-bound (many rows
 * on few cores) a prompt alone (lzn_forward) beside lzn_forward_batch can
 * be faster; lzn-server keeps them apart for that reason (bench/RESULTS.md,
 * 2026-12-06, night). On failure no context advances. Statuses: OK,
 * INVALID_ARG (NULL, n <= 0, n_tokens[i] <= 0, a context twice or of
 * another model, a token out of the vocabulary: the indices are named),
 * CONTEXT_FULL (naming the context whose tokens do not fit), ISA, BACKEND,
 * NOMEM. */
LZN_API lzn_status lzn_forward_ragged(lzn_context *const *ctxs, const int32_t *tokens, const int *n_tokens,
                                      int n, float *logits);

/* Number of tokens in the KV cache. Returns -1 for NULL. */
LZN_API int lzn_context_n_past(const lzn_context *ctx);

/* Keeps the first n_keep tokens of the sequence and forgets the rest, so the
 * next lzn_forward continues at position n_keep (regenerate from a point,
 * reject speculative tokens). Statistics are kept. Nothing changes on
 * failure. Statuses: OK, INVALID_ARG (NULL, n_keep outside [0, n_past]). */
LZN_API lzn_status lzn_context_truncate(lzn_context *ctx, int n_keep);

/* Makes dst's sequence the first n_tokens of src's (their KV cache copied),
 * so a server that has run a shared prompt once starts each new sequence
 * from it instead of running it again. dst's own tokens are replaced; its
 * statistics are kept. Statuses: OK, INVALID_ARG (NULL, the same context,
 * different models or KV types, n_tokens outside [0, src n_past]),
 * CONTEXT_FULL (n_tokens > dst's n_ctx). Nothing changes on failure. */
LZN_API lzn_status lzn_context_copy_prefix(lzn_context *dst, const lzn_context *src, int n_tokens);
/* Bytes of the context's KV cache (keys and values, every layer, n_ctx
 * positions, in its kv_type). Returns -1 for NULL. */
LZN_API int64_t lzn_context_kv_bytes(const lzn_context *ctx);

/* Empties the KV cache and the statistics. Statuses: OK, INVALID_ARG. */
LZN_API lzn_status lzn_context_reset(lzn_context *ctx);

/* Added in 0.2: the sequence of a context as bytes, to park it (on disk, in
 * another process of the same library version) and resume it later.
 * The state is the KV cache of the first n_past positions and n_past,
 * with a version, the model's shape (layers, KV heads, head_dim, d_model,
 * vocab) and the KV type, and a checksum; statistics and the sampler are
 * not part of it. lzn_context_state_size: the bytes lzn_context_state_save
 * writes now (-1 for NULL). */
LZN_API int64_t lzn_context_state_size(const lzn_context *ctx);
/* Writes the state to buf[0..capacity) and its size to *written. Too small
 * a buffer (or buf NULL): INVALID_ARG, *written = the bytes needed.
 * Statuses: OK, INVALID_ARG. */
LZN_API lzn_status lzn_context_state_save(const lzn_context *ctx, void *buf, size_t capacity,
                                          size_t *written);
/* Replaces ctx's sequence with a saved state (statistics are kept). The
 * context must be of a model of the same shape and have the same kv_type.
 * Nothing changes on failure. Statuses: OK, INVALID_ARG (NULL; another
 * model's shape or another KV type: the field is named), FORMAT (not a
 * state, wrong size, checksum mismatch), UNSUPPORTED (another state
 * version), CONTEXT_FULL (more tokens than ctx's n_ctx). */
LZN_API lzn_status lzn_context_state_load(lzn_context *ctx, const void *buf, size_t size);

/* ----------------------------------------------------------------- predictor
 *
 * An activation predictor guesses each token's active neurons from the
 * MLP's input before the up-projection (Deja Vu, PowerInfer), so the up rows
 * of neurons predicted inactive are never read either: per layer
 *   s = W2 act(W1 x + b1) + b2,   act = ReLU (PowerInfer) or identity (Deja
 *   Vu's low-rank form), and neuron i runs when s_i >= the layer's threshold.
 * Then only those rows of W_up (OPT's fc1; the gate of a gated MLP, then
 * its up rows where the gate fires) are computed, the true activation
 * decides within them, and the down rows follow. Neurons outside the
 * predicted set are treated as inactive: THAT IS THE APPROXIMATION, and the
 * logits differ from the model's where the predictor misses one. It holds
 * in SPARSE and AUTO alike: where AUTO finds a call's predicted sets too
 * large and computes the up-projection densely, it still zeroes what lies
 * outside them, so a token's result never depends on its call's other
 * tokens (a batch, a prefill). DENSE ignores the predictor: the exact model.
 *
 * File: predictor.safetensors beside the model (or lzn_model_params.
 * predictor_path), F32 tensors "layers.N.predictor.w1" [r][d_model],
 * "layers.N.predictor.w2" [d_ff][r], optional "...b1" [r], "...b2" [d_ff],
 * "...threshold" [1]; metadata "lazyneuron.predictor.activation" "relu" or
 * "none", "lazyneuron.predictor.threshold" (default 0). r may differ per
 * layer; a layer without tensors runs without a predictor.
 * tools/train/train_predictor.py trains one (or derives it from an SVD of W_up).
 * A PowerInfer GGUF file (magic PWRI) carries its own: blk.N.fc1.weight
 * [r][d_model] and fc2.weight [d_ff][r] in any weight type, ReLU between,
 * reading the residual stream before the MLP's norm, a neuron running where
 * its score >= powerinfer.sparse_threshold; r may differ per layer, and
 * every layer must have one. Shapes that disagree with the model or with
 * each other, or a NaN/Inf, are LZN_ERR_FORMAT naming the tensor and
 * layer. */
typedef struct lzn_predictor_stats {
  size_t struct_size;        /* Added in 0.3: out[0]'s set by the caller (sizeof); see "ABI" at the top */
  int64_t tokens;            /* tokens the layer's predictor scored */
  double predicted_fraction; /* mean predicted-set size / d_ff */
  double active_fraction;    /* mean truly active (within the set) / d_ff */
  /* With collect_recall: truly active neurons inside the predicted set /
   * all truly active (recall), and / the set's size (precision); else NAN. */
  double recall, precision;
  double flops, bytes;       /* the predictor's own work */
} lzn_predictor_stats;

/* Copies the predictor statistics of min(n_layers, capacity) layers to out
 * (zeros for layers without a predictor); out[0].struct_size is each
 * element's size. Statuses: OK, INVALID_ARG (also: struct_size not a known
 * size). */
LZN_API lzn_status lzn_context_predictor_stats(const lzn_context *ctx, lzn_predictor_stats *out,
                                               int capacity);

/* Copies the statistics of min(n_layers, capacity) layers to out;
 * out[0].struct_size is each element's size. Statuses: OK, INVALID_ARG
 * (also: struct_size not a known size). */
LZN_API lzn_status lzn_context_stats(const lzn_context *ctx, lzn_layer_stats *out,
                                     int capacity);

/* -------------------------------------------------------------------- text
 *
 * Tokenizers, loaded with the model (lzn_model_get_tokenizer) or on their
 * own (lzn_tokenizer_load), and a sampler.
 *
 * Kinds:
 *  - "byte-level": token id == byte (models/tiny-opt). A folder says so
 *    with lazyneuron_tokenizer.json: {"type": "byte-level",
 *    "bos_token_id": null or an id, "eos_token_id": null or an id,
 *    "add_bos": false}.
 *  - "gpt2": GPT-2's byte-level BPE, as GPT-2 and OPT use it: vocab.json +
 *    merges.txt (bos/eos from config.json's bos_token_id / eos_token_id,
 *    add_bos from tokenizer_config.json's add_bos_token), a Hugging Face
 *    tokenizer.json with a BPE model, or a GGUF file's tokenizer.ggml.*
 *    with model "gpt2". The text is first split as GPT-2's regex does
 *    ('s 't 're 've 'm 'll 'd, ?letters, ?numbers, ?other, whitespace runs;
 *    \p{L}, \p{N} and \s from Unicode 14 tables), by hand on code points.
 *    Special tokens written in the text (e.g. "</s>") are plain text.
 *  - "spm": SentencePiece BPE as llama.cpp runs it, from a GGUF file's
 *    tokenizer.ggml.tokens / scores / token_type with model "llama": a "▁"
 *    (U+2581) before the text and for each space, characters merged
 *    pairwise by the score of the merged piece, bytes outside the
 *    vocabulary as <0xXX> tokens, BOS from tokenizer.ggml.bos_token_id.
 *    Written in C rather than on Debian's libsentencepiece: that library
 *    is C++ (a libstdc++ dependency and a C++ shim in a C library), reads
 *    .model protobufs rather than the vocabulary a GGUF file carries, and
 *    GGUF models are what the LLaMA family ships here; its Python binding
 *    is the reference the tests compare with.
 *
 * Text is UTF-8. Invalid UTF-8 in a prompt is replaced, not rejected: each
 * ill-formed sequence becomes U+FFFD (the maximal-subpart rule of Python's
 * decode("utf-8", "replace")) before the gpt2 and spm tokenizers see it;
 * the byte-level one takes every byte as it is. Hence
 * detokenize(tokenize(s)) == s for valid UTF-8, with or without BOS (any
 * bytes for byte-level; spm's detokenize removes the space that its "▁"
 * prefix added). Hugging Face LLaMA folders (tokenizer.model, or a
 * tokenizer.json without GPT-2's ByteLevel pre-tokenizer) load without a
 * tokenizer: convert them to GGUF (lzn-convert writes the folder's
 * tokenizer as tokenizer.ggml.*, as llama.cpp's converter does).
 * In GGUF the byte-level kind is marked "lazyneuron.tokenizer.type" =
 * "byte-level" (beside GPT-2 metadata over the 256 bytes, which llama.cpp
 * reads as the same tokenizer for valid UTF-8); bos/eos come from
 * tokenizer.ggml.bos_token_id / eos_token_id and add_bos from
 * tokenizer.ggml.add_bos_token, for every kind.
 */

typedef struct lzn_tokenizer lzn_tokenizer; /* read-only after load; share freely */

typedef struct lzn_tokenizer_info {
  size_t struct_size;  /* Added in 0.3: set by the caller (sizeof); see "ABI" at the top */
  int vocab_size;      /* ids are [0, vocab_size); may be below the model's vocab */
  int32_t bos_id;      /* -1 when there is none */
  int32_t eos_id;      /* -1 when there is none: generation stops on it */
  int add_bos;         /* 1: the model expects BOS before a prompt */
  const char *kind;    /* "byte-level", "gpt2" or "spm": a static string */
} lzn_tokenizer_info;

/* The tokenizer loaded with the model (it lives as long as the model).
 * Statuses: OK, INVALID_ARG (NULL), UNSUPPORTED (the model has none: its
 * folder or file carried no tokenizer; the model still runs on ids). */
LZN_API lzn_status lzn_model_get_tokenizer(const lzn_model *model, const lzn_tokenizer **out);

/* Loads a tokenizer alone, from a folder or a GGUF file as lzn_model_load
 * would. Statuses: OK, INVALID_ARG, IO, FORMAT, UNSUPPORTED (nothing there
 * is a tokenizer lazyneuron reads), NOMEM. */
LZN_API lzn_status lzn_tokenizer_load(const char *path, lzn_tokenizer **out);
/* Frees a tokenizer from lzn_tokenizer_load (never the model's). */
LZN_API void lzn_tokenizer_free(lzn_tokenizer *tokenizer);

/* Fills *out up to out->struct_size, which the caller sets. Statuses: OK,
 * INVALID_ARG (also: struct_size not a known size). */
LZN_API lzn_status lzn_tokenizer_get_info(const lzn_tokenizer *tokenizer, lzn_tokenizer_info *out);

/* Tokenizes text[0..text_len) (NUL bytes are text), with BOS first if
 * add_bos is 1 and the tokenizer has one. Writes the ids to
 * tokens[0..capacity) and their count to *n_tokens. If capacity is too
 * small, nothing is written but *n_tokens is the count needed, and the
 * status is INVALID_ARG ("capacity"). tokens may be NULL when capacity is 0.
 * Statuses: OK, INVALID_ARG, NOMEM. */
LZN_API lzn_status lzn_tokenize(const lzn_tokenizer *tokenizer, const char *text, size_t text_len,
                                int add_bos, int32_t *tokens, int capacity, int *n_tokens);

/* The bytes token prints as (nothing for BOS/EOS and other control
 * tokens; one byte for a byte token; possibly part of a UTF-8 character),
 * written to buf[0..capacity) (not NUL-terminated), their count to *len.
 * Too small a buffer: INVALID_ARG, *len = the bytes needed.
 * Statuses: OK, INVALID_ARG (also: token out of [0, vocab_size)). */
LZN_API lzn_status lzn_token_to_piece(const lzn_tokenizer *tokenizer, int32_t token, char *buf,
                                      size_t capacity, size_t *len);

/* The text of tokens[0..n_tokens): their pieces concatenated, with, for
 * spm, the space that the "▁" prefix put before the first word removed.
 * Written to buf[0..capacity) plus a NUL if it fits; *len = the text's
 * bytes. Too small a buffer (len + 1 > capacity): INVALID_ARG, *len = the
 * bytes needed without the NUL. Statuses: OK, INVALID_ARG (also: a token
 * out of [0, vocab_size), named with its index). */
LZN_API lzn_status lzn_detokenize(const lzn_tokenizer *tokenizer, const int32_t *tokens,
                                  int n_tokens, char *buf, size_t capacity, size_t *len);

/* --------------------------------------------------------------- chat
 *
 * Chat templates turn a list of messages into the prompt text a chat
 * model was trained on. A model's template is read at load: GGUF
 * "tokenizer.chat_template", or the model folder's tokenizer_config.json
 * "chat_template" (a string, or a list of named templates: "default").
 * lazyneuron runs no Jinja: it recognises the family from the template's
 * marker strings and renders it in C. Families: "chatml" (<|im_start|>;
 * the default for a model without a template), "llama2" ([INST] with
 * <<SYS>>), "llama3" (<|start_header_id|>), "mistral" ([INST] without
 * <<SYS>>), "zephyr" (<|user|> ... </s>), "phi3" (<|user|> ... <|end|>),
 * "vicuna" (USER: / ASSISTANT:), "gemma" (<start_of_turn>).
 * BOS is not written (lzn_tokenize adds it when the tokenizer wants it);
 * turn markers such as </s> or <|im_end|> are written as text.
 */

/* The chat template the model's tokenizer came with (its Jinja text, owned
 * by the tokenizer), or NULL when it has none (or tokenizer is NULL). */
LZN_API const char *lzn_tokenizer_chat_template(const lzn_tokenizer *tokenizer);

/* The family a template renders as: "chatml", "llama2", "llama3",
 * "mistral", "zephyr", "phi3", "vicuna" or "gemma" (a static string);
 * tmpl may be a template's text or one of these names; NULL is "chatml";
 * NULL is returned for a template of no known family. */
LZN_API const char *lzn_chat_template_name(const char *tmpl);

typedef struct lzn_chat_message {
  const char *role;    /* "system" (or "developer"), "user" or "assistant" */
  const char *content; /* UTF-8, NUL-terminated */
} lzn_chat_message;

/* Renders messages[0..n_messages) with the template tmpl (as for
 * lzn_chat_template_name; NULL: ChatML) and, if add_assistant is 1, the
 * opening of the assistant's turn, so the model's continuation is the
 * reply. Written to buf[0..capacity) plus a NUL if it fits; *len = the
 * text's bytes. Too small a buffer (len + 1 > capacity): INVALID_ARG,
 * *len = the bytes needed without the NUL (buf may be NULL with capacity
 * 0 to ask). Statuses: OK, INVALID_ARG (NULL, add_assistant not 0 or 1,
 * an unknown role: the message is named), UNSUPPORTED (a template of no
 * known family), NOMEM. */
LZN_API lzn_status lzn_chat_apply_template(const char *tmpl, const lzn_chat_message *messages,
                                           size_t n_messages, int add_assistant, char *buf,
                                           size_t capacity, size_t *len);

/* ------------------------------------------------------------------ sampler
 *
 * Picks the next token from logits. The steps, in this order (llama.cpp's):
 * repetition penalty over the last repeat_last_n accepted tokens (a
 * positive logit divided by the penalty, a negative one multiplied);
 * then greedy (argmax, lowest id on ties) if temperature is 0; else
 * logits / temperature, the top_k largest, softmax, the smallest set whose
 * probability reaches top_p, the tokens whose probability is at least
 * min_p times the largest, and a draw from what is left. The draw uses its
 * own generator (SplitMix64) seeded by seed, so a seed gives the same
 * tokens on every run and machine (given the same logits).
 * The sampler does not stop generation: callers stop on the tokenizer's
 * eos_id (lzn_tokenizer_info).
 */

typedef struct lzn_sampler lzn_sampler; /* one sequence; one thread at a time */

typedef struct lzn_sampler_params {
  size_t struct_size;       /* sizeof(lzn_sampler_params), set by the defaults */
  float temperature;        /* >= 0; 0 = greedy (default 0.8) */
  int top_k;                /* >= 0; 0 = all tokens (default 40) */
  float top_p;              /* in (0, 1]; 1 = off (default 0.95) */
  float min_p;              /* in [0, 1]; 0 = off (default 0.05) */
  float repetition_penalty; /* > 0; 1 = off (default 1) */
  int repeat_last_n;        /* >= 0 tokens the penalty looks back (default 64) */
  uint64_t seed;            /* default 0 */
} lzn_sampler_params;

LZN_API lzn_sampler_params lzn_sampler_default_params(void);
/* Added in 0.3: as lzn_context_params_init. Statuses: OK, INVALID_ARG. */
LZN_API lzn_status lzn_sampler_params_init(lzn_sampler_params *params, size_t struct_size);

/* A sampler over vocab_size logits. params may be NULL for the defaults.
 * Statuses: OK, INVALID_ARG (a field out of range, named), NOMEM. */
LZN_API lzn_status lzn_sampler_create(const lzn_sampler_params *params, int vocab_size,
                                      lzn_sampler **out);
LZN_API void lzn_sampler_free(lzn_sampler *sampler);

/* Records a token (of the prompt, say) for the repetition penalty.
 * Statuses: OK, INVALID_ARG (token out of [0, vocab_size)). */
LZN_API lzn_status lzn_sampler_accept(lzn_sampler *sampler, int32_t token);

/* Picks a token from logits[0..vocab_size) (not modified) and accepts it.
 * NaN and -inf logits are never picked, +inf always (the lowest such id);
 * all NaN or -inf: INVALID_ARG.
 * Statuses: OK, INVALID_ARG. */
LZN_API lzn_status lzn_sampler_sample(lzn_sampler *sampler, const float *logits, int32_t *token);

/* Forgets the accepted tokens and restarts the generator at seed.
 * Statuses: OK, INVALID_ARG. */
LZN_API lzn_status lzn_sampler_reset(lzn_sampler *sampler, uint64_t seed);

#ifdef __cplusplus
}
#endif

#endif /* LAZYNEURON_H */
