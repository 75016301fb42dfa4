/*
 * sampler.c: the next token from logits: repetition penalty, then greedy or
 * temperature / top-k / top-p / min-p and a seeded draw (SplitMix64).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/abi.h"
#include "core/errors.h"
#include "lazyneuron.h"

struct lzn_sampler {
  lzn_sampler_params p;
  int vocab;
  uint64_t rng;
  int32_t *recent;   /* ring of the last repeat_last_n accepted tokens */
  int n_recent, next_recent;
  float *work;       /* [vocab] adjusted logits, then probabilities */
  int32_t *order;    /* [vocab] candidate ids */
  uint8_t *seen;     /* [vocab] penalty marks */
};

/* Released sizes (lazyneuron.h, "ABI"): 0.2 = now. */
static const lzn_struct_size sampler_params_sizes[] = {
    {sizeof(lzn_sampler_params), offsetof(lzn_sampler_params, seed) + sizeof(uint64_t)},
};
_Static_assert(sizeof(lzn_sampler_params) == 40, "lzn_sampler_params grew: add its released size above, and "
               "keep lzn_sampler_default_params() returning the 40-byte struct");

LZN_API lzn_sampler_params lzn_sampler_default_params(void) {
  lzn_sampler_params p;
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.temperature = 0.8f;
  p.top_k = 40;
  p.top_p = 0.95f;
  p.min_p = 0.05f;
  p.repetition_penalty = 1.0f;
  p.repeat_last_n = 64;
  p.seed = 0;
  return p;
}

static lzn_status check(const lzn_sampler_params *p) {
  const char *f = "lzn_sampler_create: params->";
  if (!(p->temperature >= 0.0f) || isinf(p->temperature))
    return lzn_fail(LZN_ERR_INVALID_ARG, "%stemperature = %g, must be finite and >= 0", f,
                    (double)p->temperature);
  if (p->top_k < 0) return lzn_fail(LZN_ERR_INVALID_ARG, "%stop_k = %d, must be >= 0", f, p->top_k);
  if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
    return lzn_fail(LZN_ERR_INVALID_ARG, "%stop_p = %g, must be in (0, 1]", f, (double)p->top_p);
  if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
    return lzn_fail(LZN_ERR_INVALID_ARG, "%smin_p = %g, must be in [0, 1]", f, (double)p->min_p);
  if (!(p->repetition_penalty > 0.0f) || isinf(p->repetition_penalty))
    return lzn_fail(LZN_ERR_INVALID_ARG, "%srepetition_penalty = %g, must be finite and > 0", f,
                    (double)p->repetition_penalty);
  if (p->repeat_last_n < 0)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%srepeat_last_n = %d, must be >= 0", f, p->repeat_last_n);
  return LZN_OK;
}

LZN_API void lzn_sampler_free(lzn_sampler *s) {
  if (s == NULL) return;
  free(s->recent), free(s->work), free(s->order), free(s->seen);
  free(s);
}

LZN_API lzn_status lzn_sampler_params_init(lzn_sampler_params *params, size_t struct_size) {
  const lzn_sampler_params defaults = lzn_sampler_default_params();
  return lzn_params_fill(params, struct_size, &defaults, sampler_params_sizes,
                         LZN_N_SIZES(sampler_params_sizes), "lzn_sampler_params_init");
}

LZN_API lzn_status lzn_sampler_create(const lzn_sampler_params *params, int vocab_size,
                                      lzn_sampler **out) {
  if (out == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_sampler_create: out is NULL");
  *out = NULL;
  const lzn_sampler_params defaults = lzn_sampler_default_params();
  lzn_sampler_params read = defaults;
  lzn_status st = params ? lzn_params_read(&read, &defaults, params, sampler_params_sizes,
                                           LZN_N_SIZES(sampler_params_sizes), "lzn_sampler_create")
                         : LZN_OK;
  if (st == LZN_OK) st = check(&read);
  if (st != LZN_OK) return st;
  params = &read;
  if (vocab_size < 1)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_sampler_create: vocab_size = %d, must be >= 1", vocab_size);
  lzn_sampler *s = calloc(1, sizeof *s);
  if (s == NULL) return lzn_fail(LZN_ERR_NOMEM, "lzn_sampler_create: out of memory");
  s->p = *params, s->vocab = vocab_size, s->rng = params->seed;
  s->recent = malloc(sizeof *s->recent * (size_t)(params->repeat_last_n + 1));
  s->work = malloc(sizeof *s->work * (size_t)vocab_size);
  s->order = malloc(sizeof *s->order * (size_t)vocab_size);
  s->seen = calloc((size_t)vocab_size, 1);
  if (!s->recent || !s->work || !s->order || !s->seen) {
    lzn_sampler_free(s);
    return lzn_fail(LZN_ERR_NOMEM, "lzn_sampler_create: out of memory for %d tokens", vocab_size);
  }
  *out = s;
  return LZN_OK;
}

LZN_API lzn_status lzn_sampler_reset(lzn_sampler *s, uint64_t seed) {
  if (s == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_sampler_reset: sampler is NULL");
  s->rng = seed, s->n_recent = 0, s->next_recent = 0;
  return LZN_OK;
}

LZN_API lzn_status lzn_sampler_accept(lzn_sampler *s, int32_t token) {
  if (s == NULL) return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_sampler_accept: sampler is NULL");
  if (token < 0 || token >= s->vocab)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_sampler_accept: token %d is out of [0, %d)", (int)token,
                    s->vocab);
  const int cap = s->p.repeat_last_n;
  if (cap == 0) return LZN_OK;
  s->recent[s->next_recent] = token;
  s->next_recent = (s->next_recent + 1) % cap;
  if (s->n_recent < cap) s->n_recent++;
  return LZN_OK;
}

/* SplitMix64 (Steele, Lea, Flood 2014): well mixed from the first draw,
 * whatever the seed. A double in [0, 1) from its top 53 bits. */
static double next_uniform(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (double)(z >> 11) / 9007199254740992.0;
}

/* qsort has no context argument in C11: the keys of this thread's sort */
static _Thread_local const float *tl_keys;
static int by_logit_desc(const void *a, const void *b) {
  const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  const float fx = tl_keys[x], fy = tl_keys[y];
  if (fx != fy) return fx > fy ? -1 : 1;
  return (x > y) - (x < y); /* ties: lower id first, so the order is total */
}

/* A heap of ids whose root is the worst by by_logit_desc (the one to evict). */
static int worse(int32_t a, int32_t b) { return by_logit_desc(&a, &b) > 0; }
static void sift_up(int32_t *h, int i) {
  while (i > 0 && worse(h[i], h[(i - 1) / 2])) {
    const int32_t t = h[i];
    h[i] = h[(i - 1) / 2], h[(i - 1) / 2] = t, i = (i - 1) / 2;
  }
}
static void sift_down(int32_t *h, int n) {
  for (int i = 0;;) {
    int c = 2 * i + 1;
    if (c >= n) return;
    if (c + 1 < n && worse(h[c + 1], h[c])) c++;
    if (!worse(h[c], h[i])) return;
    const int32_t t = h[i];
    h[i] = h[c], h[c] = t, i = c;
  }
}

LZN_API lzn_status lzn_sampler_sample(lzn_sampler *s, const float *logits, int32_t *token) {
  if (s == NULL || logits == NULL || token == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_sampler_sample: %s is NULL",
                    s == NULL ? "sampler" : logits == NULL ? "logits" : "token");
  float *w = s->work;
  memcpy(w, logits, sizeof *w * (size_t)s->vocab);
  if (s->p.repetition_penalty != 1.0f) {
    for (int i = 0; i < s->n_recent; i++) s->seen[s->recent[i]] = 1;
    for (int i = 0; i < s->n_recent; i++) {
      const int32_t t = s->recent[i];
      if (!s->seen[t]) continue; /* once per token, however often it occurred */
      s->seen[t] = 0;
      w[t] = w[t] > 0.0f ? w[t] / s->p.repetition_penalty : w[t] * s->p.repetition_penalty;
    }
  }
  /* candidates: every token with a usable logit */
  int n = 0;
  for (int i = 0; i < s->vocab; i++)
    if (!isnan(w[i]) && w[i] != -INFINITY) s->order[n++] = i;
  if (n == 0)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_sampler_sample: every logit is NaN or -inf");
  int32_t best = s->order[0];
  for (int i = 1; i < n; i++)
    if (w[s->order[i]] > w[best]) best = s->order[i];
  if (s->p.temperature == 0.0f || n == 1 || isinf(w[best])) { /* +inf: certain */
    *token = best;
    return lzn_sampler_accept(s, best);
  }
  for (int i = 0; i < n; i++) w[s->order[i]] /= s->p.temperature;
  tl_keys = w;
  if (s->p.top_k > 0 && s->p.top_k < n) {
    /* the top_k best in O(vocab log k): a heap whose root is the worst kept */
    const int k = s->p.top_k;
    int32_t *heap = s->order; /* order[0..k) becomes the heap; the rest is read once */
    for (int i = 0; i < k; i++) sift_up(heap, i);
    for (int i = k; i < n; i++) {
      const int32_t c = s->order[i];
      if (by_logit_desc(&c, &heap[0]) < 0) heap[0] = c, sift_down(heap, k);
    }
    n = k;
  }
  qsort(s->order, (size_t)n, sizeof *s->order, by_logit_desc);
  /* softmax over the candidates, in double for the running sums */
  const float top = w[s->order[0]];
  double total = 0.0;
  for (int i = 0; i < n; i++) total += exp((double)(w[s->order[i]] - top));
  /* top_p: the smallest prefix whose probability reaches it */
  double kept = 0.0;
  int n_kept = 0;
  while (n_kept < n) {
    kept += exp((double)(w[s->order[n_kept]] - top)) / total;
    n_kept++;
    if (kept >= (double)s->p.top_p) break;
  }
  /* min_p: relative to the most likely token's probability */
  const double p_top = 1.0 / total;
  int n_final = 0;
  double sum = 0.0;
  for (int i = 0; i < n_kept; i++) {
    const double p = exp((double)(w[s->order[i]] - top)) / total;
    if (i > 0 && p < (double)s->p.min_p * p_top) break;
    sum += p, n_final++;
  }
  double r = next_uniform(&s->rng) * sum;
  int32_t pick = s->order[n_final - 1];
  for (int i = 0; i < n_final; i++) {
    r -= exp((double)(w[s->order[i]] - top)) / total;
    if (r < 0.0) {
      pick = s->order[i];
      break;
    }
  }
  *token = pick;
  return lzn_sampler_accept(s, pick);
}
