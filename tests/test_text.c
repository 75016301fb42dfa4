/*
 * test_text.c: tokenizers and the sampler.
 *
 * Tokenizers: the ids of a corpus of awkward text (Unicode, emoji,
 * whitespace runs, numbers, contractions, invalid UTF-8) against ids that
 * independent implementations wrote (tools/fixtures/make_tokenizer_fixtures.py:
 * gpt-3-encoder's Encoder.js for GPT-2's BPE, Python sentencepiece for SPM),
 * exactly; detokenize(tokenize(s)) == s for valid UTF-8; byte-level
 * tiny-opt; a model without a tokenizer; buffer sizes and bad ids.
 * Sampler: greedy, determinism per seed, each filter's effect, the
 * distribution it draws from, and every parameter out of range.
 */
#include <jansson.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "lazyneuron.h"
#include "testfiles.h"
#include "testutil.h"
#include "text/tokenizer.h"

#define GPT2_DIR "tests/data/tokenizer/gpt2"
#define SPM_FILE "tests/data/tokenizer/spm.gguf"
/* Cases in the corpus that are not valid UTF-8 (tools/fixtures/make_tokenizer_fixtures.py's INVALID). */
#define N_INVALID_CASES 9

typedef struct ref_case {
  char *text;
  size_t len;
  int32_t *ids;
  int n_ids;
} ref_case;

static int hexval(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

static int load_cases(const char *path, ref_case **out) {
  json_error_t err;
  json_t *root = json_load_file(path, 0, &err);
  ck_assert_msg(root != NULL, "%s: %s", path, err.text);
  const json_t *cases = json_object_get(root, "cases");
  const int n = (int)json_array_size(cases);
  ck_assert_int_gt(n, 0);
  ref_case *c = calloc((size_t)n, sizeof *c);
  for (int i = 0; i < n; i++) {
    const char *hex = json_string_value(json_object_get(json_array_get(cases, (size_t)i), "hex"));
    const json_t *ids = json_object_get(json_array_get(cases, (size_t)i), "ids");
    c[i].len = strlen(hex) / 2;
    c[i].text = malloc(c[i].len + 1);
    for (size_t k = 0; k < c[i].len; k++)
      c[i].text[k] = (char)(hexval(hex[2 * k]) * 16 + hexval(hex[2 * k + 1]));
    c[i].n_ids = (int)json_array_size(ids);
    c[i].ids = malloc(sizeof(int32_t) * (size_t)(c[i].n_ids + 1));
    for (int k = 0; k < c[i].n_ids; k++)
      c[i].ids[k] = (int32_t)json_integer_value(json_array_get(ids, (size_t)k));
  }
  json_decref(root);
  *out = c;
  return n;
}

static void free_cases(ref_case *c, int n) {
  for (int i = 0; i < n; i++) free(c[i].text), free(c[i].ids);
  free(c);
}

/* Every case's ids equal the reference's; the text comes back (as U+FFFD
 * replaced it, for the invalid ones). */
static void check_corpus(const lzn_tokenizer *tok, const char *ref_path) {
  ref_case *cases;
  const int n = load_cases(ref_path, &cases);
  int n_invalid = 0;
  for (int i = 0; i < n; i++) {
    const ref_case *c = &cases[i];
    int n_tok = -1;
    int32_t ids[2048];
    lzn_status s = lzn_tokenize(tok, c->text, c->len, 0, ids, 2048, &n_tok);
    ck_assert_msg(s == LZN_OK, "case %d: %s", i, lzn_last_error());
    ck_assert_msg(n_tok == c->n_ids, "case %d (\"%.40s\"): %d tokens, reference %d", i, c->text, n_tok,
                  c->n_ids);
    for (int k = 0; k < n_tok; k++)
      ck_assert_msg(ids[k] == c->ids[k], "case %d (\"%.40s\"): token %d is %d, reference %d", i,
                    c->text, k, ids[k], c->ids[k]);
    char *clean;
    size_t clean_len;
    ck_assert_int_eq(lzn_utf8_sanitize(c->text, c->len, &clean, &clean_len), LZN_OK);
    const int valid = clean_len == c->len && memcmp(clean, c->text, c->len) == 0;
    n_invalid += !valid;
    char back[8192];
    size_t back_len = 0;
    ck_assert_int_eq(lzn_detokenize(tok, ids, n_tok, back, sizeof back, &back_len), LZN_OK);
    ck_assert_msg(back_len == clean_len && memcmp(back, clean, clean_len) == 0,
                  "case %d: detokenize gives \"%.*s\", not \"%s\"", i, (int)back_len, back, clean);
    ck_assert_int_eq(back[back_len], '\0');
    free(clean);
  }
  ck_assert_int_eq(n_invalid, N_INVALID_CASES);
  free_cases(cases, n);
}

START_TEST(gpt2_matches_gpt3_encoder) {
  lzn_tokenizer *tok;
  ck_assert_msg(lzn_tokenizer_load(GPT2_DIR, &tok) == LZN_OK, "%s", lzn_last_error());
  lzn_tokenizer_info info = {.struct_size = sizeof info};
  ck_assert_int_eq(lzn_tokenizer_get_info(tok, &info), LZN_OK);
  ck_assert_str_eq(info.kind, "gpt2");
  ck_assert_int_eq(info.vocab_size, 3257);
  ck_assert_int_eq(info.eos_id, 3256); /* config.json */
  check_corpus(tok, GPT2_DIR "/reference.json");
  /* the special token prints as nothing; a byte token as its byte */
  char piece[16];
  size_t len = 99;
  ck_assert_int_eq(lzn_token_to_piece(tok, 3256, piece, sizeof piece, &len), LZN_OK);
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(lzn_token_to_piece(tok, 0, piece, sizeof piece, &len), LZN_OK); /* "!" */
  ck_assert_uint_eq(len, 1);
  ck_assert_int_eq(piece[0], '!');
  lzn_tokenizer_free(tok);
}
END_TEST

/* The same vocabulary from a Hugging Face tokenizer.json and from GGUF. */
START_TEST(gpt2_other_containers) {
  const char *paths[2] = {"tests/data/tokenizer/gpt2-hf", "tests/data/tokenizer/gpt2.gguf"};
  for (int i = 0; i < 2; i++) {
    lzn_tokenizer *tok;
    ck_assert_msg(lzn_tokenizer_load(paths[i], &tok) == LZN_OK, "%s", lzn_last_error());
    lzn_tokenizer_info info = {.struct_size = sizeof info};
    ck_assert_int_eq(lzn_tokenizer_get_info(tok, &info), LZN_OK);
    ck_assert_str_eq(info.kind, "gpt2");
    ck_assert_int_eq(info.vocab_size, 3257);
    check_corpus(tok, GPT2_DIR "/reference.json");
    size_t len = 99;
    char piece[16];
    ck_assert_int_eq(lzn_token_to_piece(tok, 3256, piece, sizeof piece, &len), LZN_OK);
    ck_assert_uint_eq(len, 0); /* special there too */
    lzn_tokenizer_free(tok);
  }
}
END_TEST

START_TEST(spm_matches_sentencepiece) {
  lzn_tokenizer *tok;
  ck_assert_msg(lzn_tokenizer_load(SPM_FILE, &tok) == LZN_OK, "%s", lzn_last_error());
  lzn_tokenizer_info info = {.struct_size = sizeof info};
  ck_assert_int_eq(lzn_tokenizer_get_info(tok, &info), LZN_OK);
  ck_assert_str_eq(info.kind, "spm");
  ck_assert_int_eq(info.vocab_size, 800);
  ck_assert_int_eq(info.bos_id, 1);
  ck_assert_int_eq(info.eos_id, 2);
  ck_assert_int_eq(info.add_bos, 1);
  check_corpus(tok, "tests/data/tokenizer/spm_reference.json");
  /* BOS first when asked; detokenize drops it and the prefix's space */
  int32_t ids[64];
  int n = 0;
  ck_assert_int_eq(lzn_tokenize(tok, "Hello world", 11, 1, ids, 64, &n), LZN_OK);
  ck_assert_int_ge(n, 2);
  ck_assert_int_eq(ids[0], 1);
  char back[64];
  size_t len;
  ck_assert_int_eq(lzn_detokenize(tok, ids, n, back, sizeof back, &len), LZN_OK);
  ck_assert_str_eq(back, "Hello world");
  /* an emoji outside the vocabulary goes as its 4 byte tokens, <0xF0> first */
  ck_assert_int_eq(lzn_tokenize(tok, "\xf0\x9f\x98\x80", 4, 0, ids, 64, &n), LZN_OK);
  ck_assert_int_ge(n, 4);
  ck_assert_int_eq(ids[n - 4], 3 + 0xF0); /* byte tokens follow <unk> <s> </s> */
  lzn_tokenizer_free(tok);
}
END_TEST

/* A GGUF model file carrying the SPM tokenizer: loaded with the model, the same
 * tokenizer as on its own; the model still runs on ids. */
START_TEST(gguf_model_with_tokenizer) {
  lzn_model *model;
  ck_assert_msg(lzn_model_load("tests/data/tokenizer/llama-gqa-spm.gguf", NULL, &model) == LZN_OK, "%s",
                lzn_last_error());
  const lzn_tokenizer *with_model;
  lzn_tokenizer *alone;
  ck_assert_int_eq(lzn_model_get_tokenizer(model, &with_model), LZN_OK);
  ck_assert_int_eq(lzn_tokenizer_load(SPM_FILE, &alone), LZN_OK);
  const char *text = "Tokens are bytes, \xe2\x96\x81 and \xf0\x9f\x98\x80.";
  int32_t a[64], b[64];
  int na, nb;
  ck_assert_int_eq(lzn_tokenize(with_model, text, strlen(text), 1, a, 64, &na), LZN_OK);
  ck_assert_int_eq(lzn_tokenize(alone, text, strlen(text), 1, b, 64, &nb), LZN_OK);
  ck_assert_int_eq(na, nb);
  ck_assert_int_eq(memcmp(a, b, sizeof a[0] * (size_t)na), 0);
  lzn_model_info info = {.struct_size = sizeof info};
  ck_assert_int_eq(lzn_model_get_info(model, &info), LZN_OK);
  lzn_context *ctx;
  ck_assert_int_eq(lzn_context_create(model, NULL, &ctx), LZN_OK);
  float *logits = malloc(sizeof(float) * (size_t)info.vocab_size);
  const int32_t ids[3] = {1, 5, 7};
  ck_assert_int_eq(lzn_forward(ctx, ids, 3, logits, LZN_LOGITS_LAST), LZN_OK);
  free(logits);
  lzn_context_free(ctx);
  lzn_tokenizer_free(alone);
  lzn_model_free(model);
}
END_TEST

/* Random byte strings (biased towards what the pre-tokenizer and the UTF-8
 * decoder branch on): every tokenizer gives back the text with U+FFFD for
 * what is not UTF-8, and every id is in range. */
START_TEST(random_bytes_round_trip) {
  lzn_tokenizer *toks[2];
  ck_assert_int_eq(lzn_tokenizer_load(GPT2_DIR, &toks[0]), LZN_OK);
  ck_assert_int_eq(lzn_tokenizer_load(SPM_FILE, &toks[1]), LZN_OK);
  static const char alphabet[] = "aZ9 '\n\tsltdrevm.,!";
  test_rng rng = {2024};
  for (int round = 0; round < 3000; round++) {
    char text[80];
    const size_t len = (size_t)rng_below(&rng, sizeof text);
    for (size_t i = 0; i < len; i++) {
      const uint64_t r = rng_below(&rng, 10);
      text[i] = r < 6 ? alphabet[rng_below(&rng, sizeof alphabet - 1)]
              : r < 9 ? (char)(0x80 + rng_below(&rng, 0x80))   /* continuation or lead bytes */
                      : (char)rng_below(&rng, 0x80);
    }
    char *clean;
    size_t clean_len;
    ck_assert_int_eq(lzn_utf8_sanitize(text, len, &clean, &clean_len), LZN_OK);
    for (int k = 0; k < 2; k++) {
      int32_t ids[512];
      int n;
      ck_assert_int_eq(lzn_tokenize(toks[k], text, len, 0, ids, 512, &n), LZN_OK);
      char back[512];
      size_t back_len;
      ck_assert_msg(lzn_detokenize(toks[k], ids, n, back, sizeof back, &back_len) == LZN_OK, "%s",
                    lzn_last_error());
      ck_assert_msg(back_len == clean_len && memcmp(back, clean, clean_len) == 0,
                    "round %d, tokenizer %d: %zu bytes back, %zu expected", round, k, back_len,
                    clean_len);
    }
    free(clean);
  }
  lzn_tokenizer_free(toks[0]), lzn_tokenizer_free(toks[1]);
}
END_TEST

START_TEST(byte_level_tiny_opt) {
  lzn_model *model;
  ck_assert_msg(lzn_model_load("models/tiny-opt", NULL, &model) == LZN_OK, "%s", lzn_last_error());
  const lzn_tokenizer *tok;
  ck_assert_int_eq(lzn_model_get_tokenizer(model, &tok), LZN_OK);
  lzn_tokenizer_info info = {.struct_size = sizeof info};
  ck_assert_int_eq(lzn_tokenizer_get_info(tok, &info), LZN_OK);
  ck_assert_str_eq(info.kind, "byte-level");
  ck_assert_int_eq(info.vocab_size, 256);
  ck_assert_int_eq(info.eos_id, 2);
  ck_assert_int_eq(info.bos_id, -1);
  ck_assert_int_eq(info.add_bos, 0);
  /* every byte, invalid UTF-8 included, is its own token and comes back */
  char text[256];
  for (int i = 0; i < 256; i++) text[i] = (char)(255 - i);
  int32_t ids[256];
  int n;
  ck_assert_int_eq(lzn_tokenize(tok, text, 256, 1, ids, 256, &n), LZN_OK); /* no BOS to add */
  ck_assert_int_eq(n, 256);
  for (int i = 0; i < 256; i++) ck_assert_int_eq(ids[i], 255 - i);
  char back[257];
  size_t len;
  ck_assert_int_eq(lzn_detokenize(tok, ids, 256, back, sizeof back, &len), LZN_OK);
  ck_assert_uint_eq(len, 256);
  ck_assert_int_eq(memcmp(back, text, 256), 0);
  lzn_model_free(model);
}
END_TEST

START_TEST(model_without_tokenizer) {
  lzn_model *model;
  ck_assert_msg(lzn_model_load("tests/data/opt-preln", NULL, &model) == LZN_OK, "%s", lzn_last_error());
  const lzn_tokenizer *tok = (const lzn_tokenizer *)1;
  ck_assert_int_eq(lzn_model_get_tokenizer(model, &tok), LZN_ERR_UNSUPPORTED);
  ck_assert_ptr_null(tok);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "no tokenizer"));
  lzn_tokenizer *alone;
  ck_assert_int_eq(lzn_tokenizer_load("tests/data/opt-preln", &alone), LZN_ERR_UNSUPPORTED);
  ck_assert_ptr_null(alone);
  /* the GGUF fixtures carry no tokenizer.ggml.model: they load, ids only */
  ck_assert_int_eq(lzn_model_get_tokenizer(NULL, &tok), LZN_ERR_INVALID_ARG);
  lzn_model_free(model);
  int n;
  ck_assert_int_eq(lzn_tokenize(NULL, "a", 1, 0, NULL, 0, &n), LZN_ERR_INVALID_ARG);
}
END_TEST

START_TEST(buffers_and_ids) {
  lzn_tokenizer *tok;
  ck_assert_int_eq(lzn_tokenizer_load(GPT2_DIR, &tok), LZN_OK);
  const char *text = "Hello world, hello tokens";
  int need = 0;
  ck_assert_int_eq(lzn_tokenize(tok, text, strlen(text), 0, NULL, 0, &need), LZN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "capacity"));
  ck_assert_int_gt(need, 1);
  int32_t ids[64];
  int got = 0;
  ids[need - 1] = -7;
  ck_assert_int_eq(lzn_tokenize(tok, text, strlen(text), 0, ids, need - 1, &got), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(got, need);
  ck_assert_int_eq(lzn_tokenize(tok, text, strlen(text), 0, ids, need, &got), LZN_OK);
  ck_assert_int_eq(got, need);
  ck_assert_int_eq(lzn_tokenize(tok, text, strlen(text), 2, ids, 64, &got), LZN_ERR_INVALID_ARG);
  /* detokenize: too small names the size; bad ids are INVALID_ARG naming the index */
  char buf[64];
  size_t len = 0;
  ck_assert_int_eq(lzn_detokenize(tok, ids, need, buf, 4, &len), LZN_ERR_INVALID_ARG);
  ck_assert_uint_eq(len, strlen(text));
  const int32_t bad[3] = {5, 3257, 7};
  ck_assert_int_eq(lzn_detokenize(tok, bad, 3, buf, sizeof buf, &len), LZN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "tokens[1] = 3257"));
  const int32_t negative[1] = {-1};
  ck_assert_int_eq(lzn_detokenize(tok, negative, 1, buf, sizeof buf, &len), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_token_to_piece(tok, 3257, buf, sizeof buf, &len), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_token_to_piece(tok, 256, buf, 1, &len), LZN_ERR_INVALID_ARG); /* "Ġt" */
  ck_assert_uint_eq(len, 2);
  ck_assert_int_eq(lzn_token_to_piece(tok, 256, buf, 2, &len), LZN_OK);
  ck_assert_int_eq(memcmp(buf, " t", 2), 0);
  /* empty text: no tokens, and an empty string back */
  ck_assert_int_eq(lzn_tokenize(tok, "", 0, 0, ids, 64, &got), LZN_OK);
  ck_assert_int_eq(got, 0);
  ck_assert_int_eq(lzn_detokenize(tok, ids, 0, buf, 1, &len), LZN_OK);
  ck_assert_str_eq(buf, "");
  lzn_tokenizer_free(tok);
  lzn_tokenizer_free(NULL);
}
END_TEST

/* Malformed tokenizer files: each to its status, and a model folder whose
 * tokenizer is broken fails to load (one it does not read still loads). */
START_TEST(malformed_tokenizer_files) {
  static const struct {
    const char *name, *file, *text;
    lzn_status status;
    const char *word;
  } cases[] = {
      {"kind", "lazyneuron_tokenizer.json", "{'type': 'unigram'}", LZN_ERR_UNSUPPORTED, "byte-level"},
      {"notype", "lazyneuron_tokenizer.json", "{'eos_token_id': 2}", LZN_ERR_FORMAT, "type"},
      {"eos", "lazyneuron_tokenizer.json", "{'type': 'byte-level', 'eos_token_id': 300}",
       LZN_ERR_FORMAT, "eos_token_id"},
      {"addbos", "lazyneuron_tokenizer.json", "{'type': 'byte-level', 'add_bos': 1}", LZN_ERR_FORMAT,
       "add_bos"},
      {"json", "lazyneuron_tokenizer.json", "{'type': ", LZN_ERR_FORMAT, "lazyneuron_tokenizer.json"},
      {"vocab", "vocab.json", "['a']", LZN_ERR_FORMAT, "not an object"},
      {"vocabid", "vocab.json", "{'a': -1}", LZN_ERR_FORMAT, "\"a\""},
      {"nomerges", "vocab.json", "{'a': 0}", LZN_ERR_IO, "merges.txt"},
      {"hf", "tokenizer.json", "{'model': {'type': 'Unigram'}}", LZN_ERR_UNSUPPORTED, "Unigram"},
      {"hfpre", "tokenizer.json", "{'model': {'type': 'BPE'}, 'pre_tokenizer': {'type': 'Metaspace'}}",
       LZN_ERR_UNSUPPORTED, "Metaspace"},
  };
  make_tmp_root();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char dir[512];
    make_folder(dir, sizeof dir, cases[i].name);
    write_text(cases[i].name, cases[i].file, cases[i].text);
    lzn_tokenizer *tok = (lzn_tokenizer *)1;
    const lzn_status s = lzn_tokenizer_load(dir, &tok);
    ck_assert_msg(s == cases[i].status, "%s: %s, expected %s (%s)", cases[i].name, lzn_status_str(s),
                  lzn_status_str(cases[i].status), lzn_last_error());
    ck_assert_ptr_null(tok);
    ck_assert_msg(strstr(lzn_last_error(), cases[i].word), "%s: \"%s\" lacks \"%s\"", cases[i].name,
                  lzn_last_error(), cases[i].word);
  }
  /* a vocabulary without every byte is not byte-level BPE */
  char dir[512];
  make_folder(dir, sizeof dir, "nobytes");
  write_text("nobytes", "vocab.json", "{'a': 0, 'b': 1}");
  write_text("nobytes", "merges.txt", "#version: 0.2\na b\n");
  lzn_tokenizer *tok;
  ck_assert_int_eq(lzn_tokenizer_load(dir, &tok), LZN_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "byte 0x00"));
  /* a model folder: a broken tokenizer file fails the load, an unknown kind does not */
  char cwd[512], target[1024], link[1024];
  ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
  const char *model_files[2] = {"config.json", "model.safetensors"};
  const char *folders[2] = {"kind", "eos"};
  for (int f = 0; f < 2; f++)
    for (int k = 0; k < 2; k++) {
      snprintf(target, sizeof target, "%s/tests/data/opt-preln/%s", cwd, model_files[k]);
      ck_assert_int_eq(symlink(target, tmp_path(link, sizeof link, folders[f], model_files[k])), 0);
    }
  lzn_model *model = (lzn_model *)1;
  ck_assert_int_eq(lzn_model_load(tmp_path(dir, sizeof dir, "eos", NULL), NULL, &model), LZN_ERR_FORMAT);
  ck_assert_ptr_null(model);
  ck_assert_int_eq(lzn_model_load(tmp_path(dir, sizeof dir, "kind", NULL), NULL, &model), LZN_OK);
  const lzn_tokenizer *none;
  ck_assert_int_eq(lzn_model_get_tokenizer(model, &none), LZN_ERR_UNSUPPORTED);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "unigram"));
  lzn_model_free(model);
  remove_tmp_root();
  ck_assert_int_eq(lzn_tokenizer_load(NULL, &tok), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_tokenizer_load("tests/data/no-such-thing", &tok), LZN_ERR_IO);
}
END_TEST

/* -------------------------------------------------------------- sampler */

static lzn_sampler *make_sampler(float temperature, int top_k, float top_p, float min_p,
                                 float penalty, uint64_t seed, int vocab) {
  lzn_sampler_params p = lzn_sampler_default_params();
  p.temperature = temperature, p.top_k = top_k, p.top_p = top_p, p.min_p = min_p;
  p.repetition_penalty = penalty, p.seed = seed;
  lzn_sampler *s;
  ck_assert_msg(lzn_sampler_create(&p, vocab, &s) == LZN_OK, "%s", lzn_last_error());
  return s;
}

START_TEST(sampler_greedy_and_filters) {
  float logits[8] = {0.1f, 2.0f, -1.0f, 1.9f, 0.0f, 2.0f, -3.0f, 0.5f};
  int32_t t;
  lzn_sampler *s = make_sampler(0.0f, 0, 1.0f, 0.0f, 1.0f, 1, 8);
  ck_assert_int_eq(lzn_sampler_sample(s, logits, &t), LZN_OK);
  ck_assert_int_eq(t, 1); /* the lowest id of the tie 1 / 5 */
  lzn_sampler_free(s);
  /* top_k = 1, top_p tiny, min_p = 1: each alone leaves only the argmax */
  lzn_sampler *only[3] = {make_sampler(1.0f, 1, 1.0f, 0.0f, 1.0f, 9, 8),
                          make_sampler(1.0f, 0, 1e-6f, 0.0f, 1.0f, 9, 8),
                          make_sampler(1.0f, 0, 1.0f, 1.0f, 1.0f, 9, 8)};
  logits[5] = 1.5f;
  for (int k = 0; k < 3; k++) {
    for (int i = 0; i < 50; i++) {
      ck_assert_int_eq(lzn_sampler_sample(only[k], logits, &t), LZN_OK);
      ck_assert_int_eq(t, 1);
    }
    lzn_sampler_free(only[k]);
  }
  /* the repetition penalty turns greedy away from a token it has seen */
  s = make_sampler(0.0f, 0, 1.0f, 0.0f, 2.0f, 1, 8);
  ck_assert_int_eq(lzn_sampler_accept(s, 1), LZN_OK);
  ck_assert_int_eq(lzn_sampler_sample(s, logits, &t), LZN_OK);
  ck_assert_int_eq(t, 3); /* 2.0 / 2 = 1.0 < 1.9 */
  ck_assert_int_eq(lzn_sampler_accept(s, 8), LZN_ERR_INVALID_ARG);
  /* NaN is never picked; all NaN / -inf is an error */
  float bad[8];
  for (int i = 0; i < 8; i++) bad[i] = NAN;
  ck_assert_int_eq(lzn_sampler_sample(s, bad, &t), LZN_ERR_INVALID_ARG);
  bad[6] = -1.0f;
  ck_assert_int_eq(lzn_sampler_sample(s, bad, &t), LZN_OK);
  ck_assert_int_eq(t, 6);
  lzn_sampler_free(s);
  /* a +inf logit is certain, even when sampling */
  s = make_sampler(1.0f, 0, 1.0f, 0.0f, 1.0f, 1, 8);
  logits[4] = INFINITY;
  for (int i = 0; i < 20; i++) {
    ck_assert_int_eq(lzn_sampler_sample(s, logits, &t), LZN_OK);
    ck_assert_int_eq(t, 4);
  }
  lzn_sampler_free(s);
}
END_TEST

START_TEST(sampler_seeded_distribution) {
  enum { VOCAB = 3, DRAWS = 20000 };
  /* probabilities 0.1, 0.3, 0.6 at temperature 1 */
  const float logits[VOCAB] = {logf(0.1f), logf(0.3f), logf(0.6f)};
  lzn_sampler *a = make_sampler(1.0f, 0, 1.0f, 0.0f, 1.0f, 1234, VOCAB);
  lzn_sampler *b = make_sampler(1.0f, 0, 1.0f, 0.0f, 1.0f, 1234, VOCAB);
  lzn_sampler *c = make_sampler(1.0f, 0, 1.0f, 0.0f, 1.0f, 99, VOCAB);
  int count[VOCAB] = {0}, differ = 0;
  int32_t first[64];
  for (int i = 0; i < DRAWS; i++) {
    int32_t ta, tb, tc;
    ck_assert_int_eq(lzn_sampler_sample(a, logits, &ta), LZN_OK);
    ck_assert_int_eq(lzn_sampler_sample(b, logits, &tb), LZN_OK);
    ck_assert_int_eq(lzn_sampler_sample(c, logits, &tc), LZN_OK);
    ck_assert_int_eq(ta, tb); /* one seed, one sequence */
    differ += ta != tc;
    count[ta]++;
    if (i < 64) first[i] = ta;
  }
  ck_assert_int_gt(differ, DRAWS / 4); /* another seed, another sequence */
  /* 6 binomial standard deviations at p = 0.5 (sqrt(0.25 / DRAWS) = 0.0035) */
  const double tolerance = 6 * 0.0036;
  const double p[VOCAB] = {0.1, 0.3, 0.6};
  for (int k = 0; k < VOCAB; k++)
    ck_assert_msg(fabs((double)count[k] / DRAWS - p[k]) < tolerance, "token %d: %d of %d", k,
                  count[k], DRAWS);
  /* reset restarts the sequence */
  ck_assert_int_eq(lzn_sampler_reset(a, 1234), LZN_OK);
  for (int i = 0; i < 64; i++) {
    int32_t t;
    ck_assert_int_eq(lzn_sampler_sample(a, logits, &t), LZN_OK);
    ck_assert_int_eq(t, first[i]);
  }
  /* top_p = 0.5 keeps 0.6 alone; top_p = 0.7 keeps 0.6 and 0.3, never 0.1 */
  lzn_sampler *tp = make_sampler(1.0f, 0, 0.7f, 0.0f, 1.0f, 5, VOCAB);
  for (int i = 0; i < 2000; i++) {
    int32_t t;
    ck_assert_int_eq(lzn_sampler_sample(tp, logits, &t), LZN_OK);
    ck_assert_int_ne(t, 0);
  }
  lzn_sampler_free(a), lzn_sampler_free(b), lzn_sampler_free(c), lzn_sampler_free(tp);
}
END_TEST

/* top_k over a large vocabulary: only the k best are ever drawn, each of them is. */
START_TEST(sampler_top_k_large_vocab) {
  enum { VOCAB = 5000, K = 5 };
  static float logits[VOCAB];
  test_rng rng = {77};
  fill_random(&rng, logits, VOCAB);
  /* the K best, planted well apart from the rest (random logits are < 1) */
  const int32_t best[K] = {4999, 17, 2500, 3, 1234};
  for (int i = 0; i < K; i++) logits[best[i]] = 3.0f + 0.1f * (float)i;
  lzn_sampler *s = make_sampler(1.0f, K, 1.0f, 0.0f, 1.0f, 3, VOCAB);
  int seen[K] = {0};
  for (int d = 0; d < 2000; d++) {
    int32_t t;
    ck_assert_int_eq(lzn_sampler_sample(s, logits, &t), LZN_OK);
    int found = -1;
    for (int i = 0; i < K; i++)
      if (t == best[i]) found = i;
    ck_assert_msg(found >= 0, "drew %d, not one of the top %d", t, K);
    seen[found]++;
  }
  for (int i = 0; i < K; i++) ck_assert_int_gt(seen[i], 0);
  lzn_sampler_free(s);
}
END_TEST

START_TEST(sampler_params_out_of_range) {
  struct {
    const char *field;
    lzn_sampler_params p;
  } bad[9];
  for (int i = 0; i < 9; i++) bad[i].p = lzn_sampler_default_params();
  bad[0].field = "temperature", bad[0].p.temperature = -0.1f;
  bad[1].field = "temperature", bad[1].p.temperature = NAN;
  bad[2].field = "top_k", bad[2].p.top_k = -1;
  bad[3].field = "top_p", bad[3].p.top_p = 0.0f;
  bad[4].field = "top_p", bad[4].p.top_p = 1.5f;
  bad[5].field = "min_p", bad[5].p.min_p = -0.5f;
  bad[6].field = "repetition_penalty", bad[6].p.repetition_penalty = 0.0f;
  bad[7].field = "repeat_last_n", bad[7].p.repeat_last_n = -2;
  bad[8].field = "struct_size", bad[8].p.struct_size = 3;
  for (int i = 0; i < 9; i++) {
    lzn_sampler *s = (lzn_sampler *)1;
    ck_assert_int_eq(lzn_sampler_create(&bad[i].p, 10, &s), LZN_ERR_INVALID_ARG);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(lzn_last_error(), bad[i].field) != NULL, "%d: %s", i, lzn_last_error());
  }
  lzn_sampler *s;
  ck_assert_int_eq(lzn_sampler_create(NULL, 0, &s), LZN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "vocab_size"));
  ck_assert_int_eq(lzn_sampler_create(NULL, 10, &s), LZN_OK);
  lzn_sampler_free(s);
  lzn_sampler_free(NULL);
}
END_TEST

static Suite *text_suite(void) {
  Suite *s = suite_create("text");
  TCase *tok = tcase_create("tokenizers");
  tcase_set_timeout(tok, 30);
  tcase_add_test(tok, gpt2_matches_gpt3_encoder);
  tcase_add_test(tok, gpt2_other_containers);
  tcase_add_test(tok, spm_matches_sentencepiece);
  tcase_add_test(tok, gguf_model_with_tokenizer);
  tcase_add_test(tok, random_bytes_round_trip);
  tcase_add_test(tok, byte_level_tiny_opt);
  tcase_add_test(tok, model_without_tokenizer);
  tcase_add_test(tok, buffers_and_ids);
  tcase_add_test(tok, malformed_tokenizer_files);
  suite_add_tcase(s, tok);
  TCase *sam = tcase_create("sampler");
  tcase_set_timeout(sam, 30);
  tcase_add_test(sam, sampler_greedy_and_filters);
  tcase_add_test(sam, sampler_seeded_distribution);
  tcase_add_test(sam, sampler_top_k_large_vocab);
  tcase_add_test(sam, sampler_params_out_of_range);
  suite_add_tcase(s, sam);
  return s;
}

int main(void) { return run_suite(text_suite()); }
