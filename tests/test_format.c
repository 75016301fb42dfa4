/*
 * test_format.c: the file formats: safetensors parsing and validation, the
 * shard index, weight folders on disk. Each malformed input is checked for
 * its specific status and for a message that names the tensor or rule.
 */
#include <ftw.h>
#include <jansson.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buffer.h"
#include "core/file.h"
#include "format/safetensors.h"
#include "testfiles.h"

/* ------------------------------------------------------------------ helpers */

/* A safetensors image: the little-endian u64 declared_len, the header text,
 * then data_len bytes whose value is their offset & 0xff. */
static unsigned char *image_with_length(uint64_t declared_len, const char *header, size_t data_len,
                                        size_t *size) {
  char *json = quoted(header);
  const size_t header_len = strlen(json);
  *size = 8 + header_len + data_len;
  unsigned char *image = malloc(*size);
  ck_assert_ptr_nonnull(image);
  for (int i = 0; i < 8; i++) image[i] = (unsigned char)(declared_len >> (8 * i));
  memcpy(image + 8, json, header_len);
  for (size_t i = 0; i < data_len; i++) image[8 + header_len + i] = (unsigned char)i;
  free(json);
  return image;
}

static unsigned char *image_of(const char *header, size_t data_len, size_t *size) {
  char *json = quoted(header);
  const size_t header_len = strlen(json);
  free(json);
  return image_with_length(header_len, header, data_len, size);
}

static void parse_expecting(int line, const char *header, size_t data_len, lzn_status expected,
                            const char *const *words) {
  size_t size;
  unsigned char *image = image_of(header, data_len, &size);
  lzn_st_file file;
  const lzn_status status = lzn_st_parse(image, size, "model.safetensors", &file);
  ck_assert_msg(status == expected, "line %d: %s: got %s, want %s (%s)", line, header,
                lzn_status_str(status), lzn_status_str(expected), lzn_last_error());
  if (expected != LZN_OK) {
    ck_assert_msg(file.tensors == NULL && file.path == NULL && file.n_tensors == 0,
                  "line %d: *out not zeroed on failure", line);
    assert_mentions(line, header, words);
    ck_assert_msg(strstr(lzn_last_error(), "model.safetensors") != NULL,
                  "line %d: message does not name the file: %s", line, lzn_last_error());
  }
  lzn_st_close(&file);
  free(image);
}

/* EXPECT_PARSE(header, data_len, status, words the message must contain...) */
#define EXPECT_PARSE(header, data_len, status, ...) \
  parse_expecting(__LINE__, header, data_len, status, (const char *const[]){__VA_ARGS__, NULL})

/* A valid header: four tensors, listed out of file order, plus metadata. */
#define VALID_HEADER                                              \
  "{'__metadata__':{'format':'pt'},"                              \
  "'b':{'dtype':'F16','shape':[4],'data_offsets':[24,32]},"       \
  "'a':{'dtype':'F32','shape':[2,3],'data_offsets':[0,24]},"      \
  "'empty':{'dtype':'F32','shape':[0,5],'data_offsets':[34,34]}," \
  "'c':{'dtype':'BF16','shape':[],'data_offsets':[32,34]}}"
#define VALID_DATA_LEN 34

/* ------------------------------------------------------ safetensors: valid */

static void check_valid_file(const lzn_st_file *f, const unsigned char *data) {
  ck_assert_uint_eq(f->n_tensors, 4);
  const char *order[] = {"a", "b", "c", "empty"}; /* file order */
  for (int i = 0; i < 4; i++) ck_assert_str_eq(f->tensors[i].name, order[i]);
  const lzn_st_tensor *a = &f->tensors[0], *b = &f->tensors[1], *c = &f->tensors[2], *e = &f->tensors[3];
  ck_assert_int_eq(a->dtype, LZN_WEIGHTS_F32);
  ck_assert_int_eq(a->n_dims, 2);
  ck_assert_int_eq(a->shape[0], 2);
  ck_assert_int_eq(a->shape[1], 3);
  ck_assert_int_eq(a->n_elements, 6);
  ck_assert_uint_eq(a->n_bytes, 24);
  ck_assert_ptr_eq(a->data, data);
  ck_assert_int_eq(b->dtype, LZN_WEIGHTS_F16);
  ck_assert_uint_eq(b->n_bytes, 8);
  ck_assert_ptr_eq(b->data, data + 24);
  ck_assert_int_eq(((const unsigned char *)b->data)[0], 24);
  ck_assert_int_eq(c->dtype, LZN_WEIGHTS_BF16);
  ck_assert_int_eq(c->n_dims, 0);
  ck_assert_int_eq(c->n_elements, 1);
  ck_assert_uint_eq(c->n_bytes, 2);
  ck_assert_uint_eq(c->data_offset, 32);
  ck_assert_int_eq(e->n_elements, 0);
  ck_assert_uint_eq(e->n_bytes, 0);
  for (int i = 0; i < 4; i++) ck_assert_ptr_eq(f->tensors[i].file, f->path);
}

START_TEST(parse_valid) {
  size_t size;
  unsigned char *image = image_of(VALID_HEADER, VALID_DATA_LEN, &size);
  lzn_st_file f;
  ck_assert_int_eq(lzn_st_parse(image, size, "model.safetensors", &f), LZN_OK);
  ck_assert_str_eq(f.path, "model.safetensors");
  ck_assert_ptr_eq(f.bytes, image);
  ck_assert_uint_eq(f.size, size);
  ck_assert_int_eq(f.owns_bytes, 0);
  check_valid_file(&f, image + size - VALID_DATA_LEN);
  lzn_st_close(&f);
  ck_assert_ptr_null(f.tensors);
  free(image); /* not owned by f: still ours, and close did not free it (ASan) */
}
END_TEST

START_TEST(parse_padded_header_and_unaligned_data) {
  /* The reference pads headers with spaces; a 7-byte-odd header leaves the
   * data unaligned, which the parser must accept. */
  EXPECT_PARSE("{'x':{'dtype':'F32','shape':[1],'data_offsets':[0,4]}}     ", 4, LZN_OK, NULL);
  EXPECT_PARSE("{'x':{'dtype':'F32','shape':[1],'data_offsets':[0,4]}}  \n\t ", 4, LZN_OK, NULL);
  size_t size;
  unsigned char *image = image_of("{'x':{'dtype':'F16','shape':[3],'data_offsets':[0,6]}} ", 6, &size);
  ck_assert_uint_eq((size - 8 - 6) % 2, 1); /* an odd header: malloc'ed image + odd offset */
  lzn_st_file f;
  ck_assert_int_eq(lzn_st_parse(image, size, NULL, &f), LZN_OK);
  ck_assert_ptr_eq(f.tensors[0].data, image + size - 6);
  ck_assert_uint_eq((uintptr_t)f.tensors[0].data % 2, 1);
  ck_assert_str_eq(f.path, "(memory)");
  lzn_st_close(&f);
  free(image);
}
END_TEST

START_TEST(parse_empty_header_object) {
  EXPECT_PARSE("{}", 0, LZN_OK, NULL);
  EXPECT_PARSE("{'__metadata__':{}}", 0, LZN_OK, NULL);
  EXPECT_PARSE("{}", 1, LZN_ERR_FORMAT, "trailing");
}
END_TEST

START_TEST(parse_extra_fields_ignored) {
  /* The reference's TensorInfo does not deny unknown fields. */
  EXPECT_PARSE("{'x':{'dtype':'F32','shape':[1],'data_offsets':[0,4],'note':1}}", 4, LZN_OK, NULL);
}
END_TEST

/* --------------------------------------------- safetensors: lengths, JSON */

START_TEST(parse_shorter_than_8_bytes) {
  const unsigned char bytes[8] = {2, 0, 0, 0, 0, 0, 0, 0};
  for (size_t size = 0; size < 8; size++) {
    lzn_st_file f;
    ck_assert_int_eq(lzn_st_parse(size ? bytes : NULL, size, "tiny.safetensors", &f), LZN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(lzn_last_error(), "tiny.safetensors"));
    ck_assert_ptr_nonnull(strstr(lzn_last_error(), "8-byte header length"));
  }
}
END_TEST

START_TEST(parse_header_length_past_end) {
  size_t size;
  unsigned char *image = image_with_length(1000, "{}", 0, &size);
  lzn_st_file f;
  ck_assert_int_eq(lzn_st_parse(image, size, "model.safetensors", &f), LZN_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "header length 1000 runs past the end"));
  free(image);
  /* A length so large that 8 + N would wrap around 64 bits. */
  image = image_with_length(UINT64_MAX - 3, "{}", 0, &size);
  ck_assert_int_eq(lzn_st_parse(image, size, "model.safetensors", &f), LZN_ERR_FORMAT);
  free(image);
}
END_TEST

START_TEST(parse_header_over_100mb) {
  size_t size;
  unsigned char *image = image_with_length(100000001, "{}", 0, &size);
  lzn_st_file f;
  ck_assert_int_eq(lzn_st_parse(image, size, "model.safetensors", &f), LZN_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "header length 100000001 is over the limit of 100000000"));
  free(image);
}
END_TEST

START_TEST(parse_not_json) {
  EXPECT_PARSE("{'x': nope}", 0, LZN_ERR_FORMAT, "not valid JSON", "line 1");
  EXPECT_PARSE("{'x':{}} trailing", 0, LZN_ERR_FORMAT, "not valid JSON");
  EXPECT_PARSE("{'x':{}", 0, LZN_ERR_FORMAT, "not valid JSON");
  EXPECT_PARSE("", 0, LZN_ERR_FORMAT, "start with '{'");
}
END_TEST

START_TEST(parse_not_an_object) {
  EXPECT_PARSE("[1, 2]", 0, LZN_ERR_FORMAT, "JSON object");
  EXPECT_PARSE("'x'", 0, LZN_ERR_FORMAT, "JSON object");
  EXPECT_PARSE(" {}", 0, LZN_ERR_FORMAT, "start with '{'"); /* the reference: '{' first */
}
END_TEST

START_TEST(parse_duplicate_keys) {
  EXPECT_PARSE("{'x':{'dtype':'F32','shape':[1],'data_offsets':[0,4]},"
               "'x':{'dtype':'F32','shape':[1],'data_offsets':[4,8]}}",
               8, LZN_ERR_FORMAT, "duplicate", "\"x\"");
  EXPECT_PARSE("{'x':{'dtype':'F32','dtype':'F32','shape':[1],'data_offsets':[0,4]}}", 4,
               LZN_ERR_FORMAT, "duplicate");
}
END_TEST

START_TEST(parse_invalid_utf8) {
  EXPECT_PARSE("{'x\xff':{'dtype':'F32','shape':[1],'data_offsets':[0,4]}}", 4, LZN_ERR_FORMAT,
               "not valid UTF-8");
  EXPECT_PARSE("{'x\xc3':{'dtype':'F32','shape':[1],'data_offsets':[0,4]}}", 4, LZN_ERR_FORMAT,
               "not valid UTF-8");
  /* An overlong encoding of '/' */
  EXPECT_PARSE("{'x\xc0\xaf':{'dtype':'F32','shape':[1],'data_offsets':[0,4]}}", 4, LZN_ERR_FORMAT,
               "UTF-8");
}
END_TEST

START_TEST(parse_metadata_rules) {
  EXPECT_PARSE("{'__metadata__':[1]}", 0, LZN_ERR_FORMAT, "__metadata__", "object of strings");
  EXPECT_PARSE("{'__metadata__':{'k':3}}", 0, LZN_ERR_FORMAT, "__metadata__", "\"k\"", "must be a string");
}
END_TEST

/* ------------------------------------------------- safetensors: entries */

START_TEST(parse_entry_not_object) {
  EXPECT_PARSE("{'w':[1,2]}", 0, LZN_ERR_FORMAT, "tensor \"w\"", "must be an object");
}
END_TEST

START_TEST(parse_missing_dtype) {
  EXPECT_PARSE("{'w':{'shape':[1],'data_offsets':[0,4]}}", 4, LZN_ERR_FORMAT,
               "tensor \"w\"", "missing \"dtype\"");
  EXPECT_PARSE("{'w':{'dtype':4,'shape':[1],'data_offsets':[0,4]}}", 4, LZN_ERR_FORMAT,
               "tensor \"w\"", "\"dtype\" must be a string");
}
END_TEST

START_TEST(parse_missing_shape) {
  EXPECT_PARSE("{'w':{'dtype':'F32','data_offsets':[0,4]}}", 4, LZN_ERR_FORMAT,
               "tensor \"w\"", "missing \"shape\"");
  EXPECT_PARSE("{'w':{'dtype':'F32','shape':4,'data_offsets':[0,4]}}", 4, LZN_ERR_FORMAT,
               "tensor \"w\"", "\"shape\" must be an array");
}
END_TEST

START_TEST(parse_missing_data_offsets) {
  EXPECT_PARSE("{'w':{'dtype':'F32','shape':[1]}}", 4, LZN_ERR_FORMAT,
               "tensor \"w\"", "missing \"data_offsets\"");
}
END_TEST

START_TEST(parse_bad_data_offsets) {
  const char *bad[] = {
      "{'w':{'dtype':'F32','shape':[1],'data_offsets':[4]}}",
      "{'w':{'dtype':'F32','shape':[1],'data_offsets':[0,4,8]}}",
      "{'w':{'dtype':'F32','shape':[1],'data_offsets':['0',4]}}",
      "{'w':{'dtype':'F32','shape':[1],'data_offsets':[0,4.0]}}",
      "{'w':{'dtype':'F32','shape':[1],'data_offsets':[-4,0]}}",
      "{'w':{'dtype':'F32','shape':[1],'data_offsets':{'0':4}}}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    EXPECT_PARSE(bad[i], 4, LZN_ERR_FORMAT, "tensor \"w\"", "array of 2 non-negative integers");
}
END_TEST

START_TEST(parse_unknown_dtype_is_format) {
  EXPECT_PARSE("{'w':{'dtype':'Q7','shape':[1],'data_offsets':[0,4]}}", 4, LZN_ERR_FORMAT,
               "tensor \"w\"", "unknown dtype \"Q7\"");
  EXPECT_PARSE("{'w':{'dtype':'f32','shape':[1],'data_offsets':[0,4]}}", 4, LZN_ERR_FORMAT,
               "unknown dtype \"f32\""); /* dtype names are case-sensitive */
}
END_TEST

START_TEST(parse_known_dtype_is_unsupported) {
  EXPECT_PARSE("{'a':{'dtype':'F32','shape':[1],'data_offsets':[0,4]},"
               "'ids':{'dtype':'I32','shape':[2],'data_offsets':[4,12]}}",
               12, LZN_ERR_UNSUPPORTED, "tensor \"ids\"", "I32", "not supported");
  EXPECT_PARSE("{'w':{'dtype':'F64','shape':[1],'data_offsets':[0,8]}}", 8, LZN_ERR_UNSUPPORTED, "F64");
  EXPECT_PARSE("{'w':{'dtype':'BOOL','shape':[3],'data_offsets':[0,3]}}", 3, LZN_ERR_UNSUPPORTED, "BOOL");
  EXPECT_PARSE("{'w':{'dtype':'F8_E4M3','shape':[3],'data_offsets':[0,3]}}", 3, LZN_ERR_UNSUPPORTED, "F8_E4M3");
  EXPECT_PARSE("{'w':{'dtype':'F4','shape':[4],'data_offsets':[0,2]}}", 2, LZN_ERR_UNSUPPORTED, "F4");
  /* A broken file is FORMAT even when it also holds an unsupported dtype. */
  EXPECT_PARSE("{'w':{'dtype':'I32','shape':[1],'data_offsets':[0,4]}}", 5, LZN_ERR_FORMAT, "trailing");
  EXPECT_PARSE("{'w':{'dtype':'I32','shape':[1],'data_offsets':[0,8]}}", 8, LZN_ERR_FORMAT, "span");
}
END_TEST

START_TEST(parse_negative_shape) {
  EXPECT_PARSE("{'w':{'dtype':'F32','shape':[2,-1],'data_offsets':[0,0]}}", 0, LZN_ERR_FORMAT,
               "tensor \"w\"", "shape[1]", "non-negative integer", "negative");
}
END_TEST

START_TEST(parse_non_integer_shape) {
  EXPECT_PARSE("{'w':{'dtype':'F32','shape':[2.5],'data_offsets':[0,10]}}", 10, LZN_ERR_FORMAT,
               "tensor \"w\"", "shape[0]", "non-negative integer", "real");
  EXPECT_PARSE("{'w':{'dtype':'F32','shape':[2.0],'data_offsets':[0,8]}}", 8, LZN_ERR_FORMAT,
               "shape[0]", "real");
  EXPECT_PARSE("{'w':{'dtype':'F32','shape':['3'],'data_offsets':[0,12]}}", 12, LZN_ERR_FORMAT,
               "tensor \"w\"", "shape[0]", "string");
  EXPECT_PARSE("{'w':{'dtype':'F32','shape':[null],'data_offsets':[0,12]}}", 12, LZN_ERR_FORMAT, "shape[0]");
}
END_TEST

START_TEST(parse_too_many_dims) {
  EXPECT_PARSE("{'w':{'dtype':'F32','shape':[1,1,1,1,1,1,1,1,1],'data_offsets':[0,4]}}", 4,
               LZN_ERR_FORMAT, "tensor \"w\"", "9 dimensions", "more than 8");
  EXPECT_PARSE("{'w':{'dtype':'F32','shape':[1,1,1,1,1,1,1,1],'data_offsets':[0,4]}}", 4, LZN_OK, NULL);
}
END_TEST

START_TEST(parse_shape_overflow) {
  EXPECT_PARSE("{'w':{'dtype':'F32','shape':[1099511627776,1099511627776],'data_offsets':[0,4]}}", 4,
               LZN_ERR_FORMAT, "tensor \"w\"", "[1099511627776, 1099511627776]", "overflows");
  /* The element count fits in 63 bits, the bit count of F32 does not. */
  EXPECT_PARSE("{'w':{'dtype':'F32','shape':[4611686018427387904],'data_offsets':[0,4]}}", 4,
               LZN_ERR_FORMAT, "tensor \"w\"", "x F32 overflows");
  /* A zero dimension makes the product 0 whatever follows: valid and empty. */
  EXPECT_PARSE("{'w':{'dtype':'F32','shape':[0,1099511627776,1099511627776],'data_offsets':[0,0]}}", 0,
               LZN_OK, NULL);
}
END_TEST

START_TEST(parse_byte_count_mismatch) {
  EXPECT_PARSE("{'decoder.layers.0.fc1.weight':{'dtype':'F32','shape':[4,3],'data_offsets':[0,40]}}", 40,
               LZN_ERR_FORMAT, "tensor \"decoder.layers.0.fc1.weight\"",
               "shape [4, 3] x F32 is 48 bytes but data_offsets span 40");
  EXPECT_PARSE("{'w':{'dtype':'BF16','shape':[3],'data_offsets':[0,12]}}", 12, LZN_ERR_FORMAT,
               "shape [3] x BF16 is 6 bytes but data_offsets span 12");
  EXPECT_PARSE("{'w':{'dtype':'F4','shape':[3],'data_offsets':[0,2]}}", 2, LZN_ERR_FORMAT,
               "whole number of bytes");
}
END_TEST

START_TEST(parse_begin_after_end) {
  EXPECT_PARSE("{'w':{'dtype':'F32','shape':[0],'data_offsets':[8,4]}}", 8, LZN_ERR_FORMAT,
               "tensor \"w\"", "data_offsets [8, 4] begin after they end");
}
END_TEST

START_TEST(parse_overlap) {
  EXPECT_PARSE("{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
               "'b':{'dtype':'F32','shape':[2],'data_offsets':[4,12]}}",
               12, LZN_ERR_FORMAT, "tensor \"b\"", "overlap", "tensor \"a\"");
  /* Two tensors on the very same bytes. */
  EXPECT_PARSE("{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
               "'b':{'dtype':'F32','shape':[2],'data_offsets':[0,8]}}",
               8, LZN_ERR_FORMAT, "overlap");
}
END_TEST

START_TEST(parse_hole) {
  EXPECT_PARSE("{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
               "'b':{'dtype':'F32','shape':[1],'data_offsets':[12,16]}}",
               16, LZN_ERR_FORMAT, "tensor \"b\"", "hole of 4 bytes", "tensor \"a\" ends at 8");
  EXPECT_PARSE("{'a':{'dtype':'F32','shape':[1],'data_offsets':[4,8]}}", 8, LZN_ERR_FORMAT,
               "tensor \"a\"", "must begin at 0");
}
END_TEST

START_TEST(parse_out_of_bounds) {
  EXPECT_PARSE("{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
               "'b':{'dtype':'F32','shape':[2],'data_offsets':[8,16]}}",
               12, LZN_ERR_FORMAT, "tensor \"b\"", "[8, 16] run past the end of the data section (12 bytes)");
  EXPECT_PARSE("{'a':{'dtype':'F32','shape':[0],'data_offsets':[9223372036854775807,9223372036854775807]}}",
               0, LZN_ERR_FORMAT, "tensor \"a\"", "past the end");
}
END_TEST

START_TEST(parse_trailing_bytes) {
  EXPECT_PARSE("{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]}}", 9, LZN_ERR_FORMAT,
               "data section is 9 bytes but the tensors end at 8", "1 trailing");
}
END_TEST

START_TEST(parse_every_truncation_fails) {
  size_t size;
  unsigned char *image = image_of(VALID_HEADER, VALID_DATA_LEN, &size);
  for (size_t cut = 0; cut < size; cut++) {
    unsigned char *prefix = malloc(cut ? cut : 1); /* exact size: ASan sees any overread */
    ck_assert_ptr_nonnull(prefix);
    memcpy(prefix, image, cut);
    lzn_st_file f;
    ck_assert_msg(lzn_st_parse(prefix, cut, "cut.safetensors", &f) == LZN_ERR_FORMAT,
                  "prefix of %zu bytes: %s", cut, lzn_last_error());
    free(prefix);
  }
  free(image);
}
END_TEST

/* Corrupts one byte at a time: whatever the parser decides, it must not
 * crash or read out of bounds, and what it accepts must lie in the image. */
START_TEST(parse_every_byte_corruption_is_safe) {
  size_t size;
  unsigned char *image = image_of(VALID_HEADER, VALID_DATA_LEN, &size);
  const unsigned char values[] = {0x00, 0xff, '{', '}', '9', '-', ' ', '"', 0x80};
  size_t accepted = 0;
  for (size_t pos = 0; pos < size - VALID_DATA_LEN; pos++) {
    for (size_t v = 0; v < sizeof values; v++) {
      unsigned char *copy = malloc(size);
      ck_assert_ptr_nonnull(copy);
      memcpy(copy, image, size);
      copy[pos] = values[v];
      lzn_st_file f;
      const lzn_status status = lzn_st_parse(copy, size, "x.safetensors", &f);
      ck_assert(status == LZN_OK || status == LZN_ERR_FORMAT || status == LZN_ERR_UNSUPPORTED);
      for (size_t i = 0; status == LZN_OK && i < f.n_tensors; i++) {
        const unsigned char *data = f.tensors[i].data;
        ck_assert(data >= copy + 8 && data + f.tensors[i].n_bytes <= copy + size);
      }
      accepted += status == LZN_OK;
      lzn_st_close(&f);
      free(copy);
    }
  }
  ck_assert_uint_gt(accepted, 0); /* e.g. a space in place of a space */
  free(image);
}
END_TEST

START_TEST(parse_bad_arguments) {
  lzn_st_file f;
  ck_assert_int_eq(lzn_st_parse(NULL, 10, "x", &f), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_st_parse("12345678", 8, "x", NULL), LZN_ERR_INVALID_ARG);
  lzn_st_file zero;
  memset(&zero, 0, sizeof zero);
  lzn_st_close(&zero);
  lzn_st_close(NULL);
  lzn_weights w;
  memset(&w, 0, sizeof w);
  lzn_weights_close(&w);
  lzn_weights_close(NULL);
  ck_assert_ptr_null(lzn_weights_find(&w, "x"));
  ck_assert_ptr_null(lzn_weights_find(NULL, "x"));
  ck_assert_int_eq(lzn_weights_open(NULL, 1, &w), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_st_open(NULL, 1, &f), LZN_ERR_INVALID_ARG);
  ck_assert_str_eq(lzn_wtype_name(LZN_WEIGHTS_BF16), "BF16");
  ck_assert_uint_eq(lzn_wtype_block_bytes(LZN_WEIGHTS_F16), 2);
  ck_assert_uint_eq(lzn_wtype_block_bytes(LZN_WEIGHTS_F32), 4);
}
END_TEST

/* -------------------------------------------------------------- shard index */

static void index_expecting(int line, const char *json_text, lzn_status expected, const char *const *words) {
  char *json = quoted(json_text);
  char **shards = NULL;
  size_t n = 99;
  const lzn_status status = lzn_st_index_parse(json, strlen(json), "model.safetensors.index.json", &shards, &n);
  ck_assert_msg(status == expected, "line %d: %s: got %s (%s)", line, json_text, lzn_status_str(status),
                lzn_last_error());
  if (expected != LZN_OK) {
    ck_assert_ptr_null(shards);
    ck_assert_uint_eq(n, 0);
    assert_mentions(line, json_text, words);
    ck_assert_ptr_nonnull(strstr(lzn_last_error(), "model.safetensors.index.json"));
  }
  lzn_st_index_free(shards, n);
  free(json);
}
#define EXPECT_INDEX(json, status, ...) \
  index_expecting(__LINE__, json, status, (const char *const[]){__VA_ARGS__, NULL})

START_TEST(index_valid_unique_in_order) {
  char *json = quoted("{'metadata':{'total_size':40},'weight_map':{"
                      "'z':'model-00002-of-00002.safetensors',"
                      "'a':'model-00001-of-00002.safetensors',"
                      "'m':'model-00002-of-00002.safetensors',"
                      "'b':'model-00001-of-00002.safetensors'}}");
  char **shards;
  size_t n;
  ck_assert_int_eq(lzn_st_index_parse(json, strlen(json), NULL, &shards, &n), LZN_OK);
  ck_assert_uint_eq(n, 2);
  ck_assert_str_eq(shards[0], "model-00002-of-00002.safetensors");
  ck_assert_str_eq(shards[1], "model-00001-of-00002.safetensors");
  lzn_st_index_free(shards, n);
  free(json);
}
END_TEST

START_TEST(index_rejects_paths_outside_folder) {
  EXPECT_INDEX("{'weight_map':{'w':'../x.safetensors'}}", LZN_ERR_FORMAT,
               "tensor \"w\"", "\"../x.safetensors\"", "'/'", "plain file name");
  EXPECT_INDEX("{'weight_map':{'w':'/abs/x.safetensors'}}", LZN_ERR_FORMAT,
               "\"/abs/x.safetensors\"", "plain file name");
  EXPECT_INDEX("{'weight_map':{'w':'sub\\\\x.safetensors'}}", LZN_ERR_FORMAT, "contains '\\'");
  EXPECT_INDEX("{'weight_map':{'w':'..'}}", LZN_ERR_FORMAT, "\"..\"", "directory name");
  EXPECT_INDEX("{'weight_map':{'w':'.'}}", LZN_ERR_FORMAT, "directory name");
  EXPECT_INDEX("{'weight_map':{'w':''}}", LZN_ERR_FORMAT, "tensor \"w\"", "is empty");
  /* The bad one after a good one: still caught, nothing leaked. */
  EXPECT_INDEX("{'weight_map':{'a':'ok.safetensors','w':'../x'}}", LZN_ERR_FORMAT, "tensor \"w\"");
  EXPECT_INDEX("{'weight_map':{'a':'..x.safetensors'}}", LZN_OK, NULL); /* a plain name */
}
END_TEST

START_TEST(index_shape_rules) {
  EXPECT_INDEX("{'weight_map': nope}", LZN_ERR_FORMAT, "not valid JSON", "line 1");
  EXPECT_INDEX("[]", LZN_ERR_FORMAT, "must be a JSON object");
  EXPECT_INDEX("{'metadata':{}}", LZN_ERR_FORMAT, "missing \"weight_map\"");
  EXPECT_INDEX("{'weight_map':[]}", LZN_ERR_FORMAT, "\"weight_map\" must be an object");
  EXPECT_INDEX("{'weight_map':{}}", LZN_ERR_FORMAT, "\"weight_map\" is empty");
  EXPECT_INDEX("{'weight_map':{'w':3}}", LZN_ERR_FORMAT, "tensor \"w\"", "a string");
  EXPECT_INDEX("{'weight_map':{'w':'a','w':'b'}}", LZN_ERR_FORMAT, "duplicate");
}
END_TEST

/* ---------------------------------------------------------- files on disk */

static void write_safetensors(const char *sub, const char *name, const char *header, size_t data_len) {
  size_t size;
  unsigned char *image = image_of(header, data_len, &size);
  write_bytes(sub, name, image, size);
  free(image);
}

#define SHARD1 "model-00001-of-00002.safetensors"
#define SHARD2 "model-00002-of-00002.safetensors"
#define SHARD1_HEADER                                         \
  "{'decoder.a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]}," \
  "'decoder.b':{'dtype':'F16','shape':[2],'data_offsets':[8,12]}}"
#define SHARD2_HEADER "{'lm_head.weight':{'dtype':'BF16','shape':[3],'data_offsets':[0,6]}}"
#define SHARDED_INDEX                                                                    \
  "{'metadata':{'total_size':18},'weight_map':{'decoder.a':'" SHARD1 "','decoder.b':'" SHARD1 \
  "','lm_head.weight':'" SHARD2 "'}}"

/* A folder sub/ with two shards and an index (index text as given). */
static void write_sharded_folder(const char *sub, const char *index) {
  char path[512];
  make_folder(path, sizeof path, sub);
  write_safetensors(sub, SHARD1, SHARD1_HEADER, 12);
  write_safetensors(sub, SHARD2, SHARD2_HEADER, 6);
  write_text(sub, "model.safetensors.index.json", index);
}

static void open_expecting(int line, const char *path, lzn_status expected, const char *const *words) {
  lzn_weights w;
  const lzn_status status = lzn_weights_open(path, 1, &w);
  ck_assert_msg(status == expected, "line %d: %s: got %s (%s)", line, path, lzn_status_str(status),
                lzn_last_error());
  ck_assert_msg(w.files == NULL && w.n_files == 0 && w.by_name == NULL, "line %d: *out not zeroed", line);
  assert_mentions(line, path, words);
}
#define EXPECT_OPEN_FAILS(path, status, ...) \
  open_expecting(__LINE__, path, status, (const char *const[]){__VA_ARGS__, NULL})

/* A weight file read (use_mmap 0) lands in memory aligned to a huge page
 * when it is at least one, where the kernel can back it with 2 MiB pages
 * (core/buffer.h says why), and holds the file's bytes either way. */
START_TEST(disk_large_file_read_onto_huge_pages) {
  char path[512];
  make_folder(path, sizeof path, "large");
  tmp_path(path, sizeof path, "large", "weights.bin");
  const size_t size = (3u << 20) + 5; /* past 2 MiB, not a whole page */
  unsigned char *want = malloc(size);
  for (size_t i = 0; i < size; i++) want[i] = (unsigned char)(i * 131 + (i >> 12));
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(want, 1, size, f), size);
  ck_assert_int_eq(fclose(f), 0);
  for (int use_mmap = 0; use_mmap <= 1; use_mmap++) {
    void *bytes;
    size_t got;
    int mapped;
    ck_assert_int_eq(lzn_file_load(path, use_mmap, &bytes, &got, &mapped), LZN_OK);
    ck_assert_int_eq(mapped, use_mmap);
    ck_assert_uint_eq(got, size);
    ck_assert_int_eq(memcmp(bytes, want, size), 0);
    if (!use_mmap) ck_assert_uint_eq((uintptr_t)bytes % ((uintptr_t)2 << 20), 0);
    lzn_file_unload(bytes, got, mapped);
  }
  free(want);
  /* Below a huge page: a cache line; no size that wraps. */
  void *small = lzn_alloc_weights(100);
  ck_assert_ptr_nonnull(small);
  ck_assert_uint_eq((uintptr_t)small % 64, 0);
  lzn_free_weights(small, 100);
  ck_assert_ptr_null(lzn_alloc_weights(SIZE_MAX - 10));
}
END_TEST

/* Weights never land in heap memory that was touched before: advice only
 * shapes pages faulted in after it, so such memory would keep its 4 KiB
 * pages (core/buffer.h). A freed, touched heap block of the size a 9 MiB
 * request would reuse is not reused; the buffer is aligned, whole and
 * given back by lzn_free_weights. */
START_TEST(large_weights_are_a_fresh_mapping) {
  /* 12 MiB from glibc's heap; an allocator that is not glibc's (ASan's,
   * valgrind's) refuses the option and keeps its own heap: the block is
   * then not checked. */
  const int heap_checked = mallopt(M_MMAP_THRESHOLD, 64 << 20) == 1;
  char *heap = malloc((size_t)12 << 20);
  ck_assert_ptr_nonnull(heap);
  memset(heap, 1, (size_t)12 << 20);
  const uintptr_t lo = heap_checked ? (uintptr_t)heap : 0, hi = heap_checked ? lo + ((size_t)12 << 20) : 0;
  free(heap);
  const size_t n = ((size_t)9 << 20) + 100;
  char *w = lzn_alloc_weights(n);
  ck_assert_ptr_nonnull(w);
  ck_assert_uint_eq((uintptr_t)w % ((uintptr_t)2 << 20), 0);
  ck_assert_msg((uintptr_t)w + n <= lo || (uintptr_t)w >= hi, "weights reuse the freed heap block");
  memset(w, 2, n);
  ck_assert_int_eq(w[n - 1], 2);
  lzn_free_weights(w, n);
  lzn_free_weights(NULL, n);
}
END_TEST

START_TEST(disk_single_file_mmap_and_read) {
  char folder[512], path[512];
  make_folder(folder, sizeof folder, "single");
  write_safetensors("single", "weights.safetensors", VALID_HEADER, VALID_DATA_LEN);
  tmp_path(path, sizeof path, "single", "weights.safetensors");
  for (int use_mmap = 0; use_mmap <= 1; use_mmap++) {
    lzn_st_file f;
    ck_assert_int_eq(lzn_st_open(path, use_mmap, &f), LZN_OK);
    ck_assert_int_eq(f.mapped, use_mmap);
    ck_assert_int_eq(f.owns_bytes, 1);
    ck_assert_str_eq(f.path, path);
    check_valid_file(&f, (const unsigned char *)f.bytes + f.size - VALID_DATA_LEN);
    lzn_st_close(&f);

    lzn_weights w;
    ck_assert_int_eq(lzn_weights_open(path, use_mmap, &w), LZN_OK);
    ck_assert_uint_eq(w.n_files, 1);
    ck_assert_uint_eq(w.n_tensors, 4);
    const lzn_st_tensor *b = lzn_weights_find(&w, "b");
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(b->dtype, LZN_WEIGHTS_F16);
    ck_assert_int_eq(((const unsigned char *)b->data)[1], 25);
    ck_assert_ptr_nonnull(lzn_weights_find(&w, "empty"));
    ck_assert_ptr_null(lzn_weights_find(&w, "__metadata__"));
    ck_assert_ptr_null(lzn_weights_find(&w, "d"));
    /* A struct filled by hand, without the name index, is searched too. */
    const lzn_weights by_hand = {.files = w.files, .n_files = w.n_files};
    ck_assert_ptr_eq(lzn_weights_find(&by_hand, "b"), b);
    ck_assert_ptr_null(lzn_weights_find(&by_hand, "d"));
    lzn_weights_close(&w);
    ck_assert_ptr_null(w.files);
  }
}
END_TEST

START_TEST(disk_folder_with_model_safetensors) {
  char folder[512];
  make_folder(folder, sizeof folder, "plain");
  write_safetensors("plain", "model.safetensors", VALID_HEADER, VALID_DATA_LEN);
  /* model.safetensors wins over an index, even a broken one. */
  write_text("plain", "model.safetensors.index.json", "not json");
  lzn_weights w;
  ck_assert_int_eq(lzn_weights_open(folder, 0, &w), LZN_OK);
  ck_assert_uint_eq(w.n_files, 1);
  ck_assert_ptr_nonnull(strstr(w.files[0].path, "/plain/model.safetensors"));
  const lzn_st_tensor *a = lzn_weights_find(&w, "a");
  ck_assert_ptr_nonnull(a);
  ck_assert_int_eq(a->shape[1], 3);
  ck_assert_ptr_eq(a->file, w.files[0].path);
  lzn_weights_close(&w);
}
END_TEST

START_TEST(disk_missing_path) {
  char path[512];
  EXPECT_OPEN_FAILS(tmp_path(path, sizeof path, "does-not-exist", NULL), LZN_ERR_IO,
                    "does-not-exist", "No such file");
  lzn_st_file f;
  ck_assert_int_eq(lzn_st_open(path, 1, &f), LZN_ERR_IO);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "cannot open"));
}
END_TEST

START_TEST(disk_folder_without_weights) {
  char folder[512];
  make_folder(folder, sizeof folder, "empty-folder");
  write_text("empty-folder", "config.json", "{}");
  EXPECT_OPEN_FAILS(folder, LZN_ERR_IO, "no model.safetensors or model.safetensors.index.json in", "empty-folder");
}
END_TEST

START_TEST(disk_not_a_regular_file) {
  char folder[512];
  make_folder(folder, sizeof folder, "dir-as-file");
  lzn_st_file f;
  ck_assert_int_eq(lzn_st_open(folder, 1, &f), LZN_ERR_IO);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "not a regular file"));
  /* A FIFO must fail at once, not block waiting for a writer. */
  char fifo[512];
  ck_assert_int_eq(mkfifo(tmp_path(fifo, sizeof fifo, "dir-as-file", "model.safetensors"), 0600), 0);
  EXPECT_OPEN_FAILS(folder, LZN_ERR_IO, "model.safetensors", "not a regular file");
}
END_TEST

START_TEST(disk_empty_and_broken_files) {
  char folder[512], path[512];
  make_folder(folder, sizeof folder, "broken");
  write_bytes("broken", "empty.safetensors", "", 0);
  for (int use_mmap = 0; use_mmap <= 1; use_mmap++) {
    lzn_weights w;
    ck_assert_int_eq(lzn_weights_open(tmp_path(path, sizeof path, "broken", "empty.safetensors"), use_mmap, &w),
                     LZN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(lzn_last_error(), "empty.safetensors: file is 0 bytes"));
  }
  write_safetensors("broken", "model.safetensors", "{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]}}", 4);
  EXPECT_OPEN_FAILS(folder, LZN_ERR_FORMAT, "model.safetensors", "tensor \"a\"", "past the end");
}
END_TEST

START_TEST(disk_sharded_folder) {
  char folder[512];
  write_sharded_folder("sharded", SHARDED_INDEX);
  tmp_path(folder, sizeof folder, "sharded", NULL);
  for (int use_mmap = 0; use_mmap <= 1; use_mmap++) {
    lzn_weights w;
    ck_assert_msg(lzn_weights_open(folder, use_mmap, &w) == LZN_OK, "%s", lzn_last_error());
    ck_assert_uint_eq(w.n_files, 2);
    ck_assert_uint_eq(w.n_tensors, 3);
    ck_assert_int_eq(w.files[0].mapped, use_mmap);
    const lzn_st_tensor *a = lzn_weights_find(&w, "decoder.a");
    const lzn_st_tensor *b = lzn_weights_find(&w, "decoder.b");
    const lzn_st_tensor *head = lzn_weights_find(&w, "lm_head.weight");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(head);
    ck_assert_ptr_nonnull(strstr(a->file, SHARD1));
    ck_assert_ptr_nonnull(strstr(head->file, SHARD2));
    ck_assert_int_eq(head->dtype, LZN_WEIGHTS_BF16);
    ck_assert_int_eq(((const unsigned char *)b->data)[0], 8);
    ck_assert_int_eq(((const unsigned char *)head->data)[5], 5);
    ck_assert_ptr_null(lzn_weights_find(&w, "decoder"));
    lzn_weights_close(&w);
  }
}
END_TEST

START_TEST(disk_index_names_missing_shard) {
  char folder[512];
  write_sharded_folder("missing-shard",
                       "{'weight_map':{'decoder.a':'" SHARD1 "','decoder.b':'" SHARD1
                       "','lm_head.weight':'model-00003-of-00003.safetensors'}}");
  EXPECT_OPEN_FAILS(tmp_path(folder, sizeof folder, "missing-shard", NULL), LZN_ERR_IO,
                    "model-00003-of-00003.safetensors", "No such file", "model.safetensors.index.json");
}
END_TEST

START_TEST(disk_index_escaping_folder) {
  char folder[512];
  write_sharded_folder("escape-up", "{'weight_map':{'decoder.a':'../" SHARD1 "'}}");
  /* ../SHARD1 exists (a sibling folder's shard would do): it must still be refused. */
  write_safetensors("", SHARD1, SHARD1_HEADER, 12);
  EXPECT_OPEN_FAILS(tmp_path(folder, sizeof folder, "escape-up", NULL), LZN_ERR_FORMAT,
                    "tensor \"decoder.a\"", "\"../" SHARD1 "\"", "plain file name");
  char absolute[600];
  snprintf(absolute, sizeof absolute, "{'weight_map':{'decoder.a':'%s/" SHARD1 "'}}", tmp_root);
  write_sharded_folder("escape-abs", absolute);
  EXPECT_OPEN_FAILS(tmp_path(folder, sizeof folder, "escape-abs", NULL), LZN_ERR_FORMAT,
                    "tensor \"decoder.a\"", "plain file name", "contains '/'");
}
END_TEST

START_TEST(disk_tensor_in_wrong_shard) {
  char folder[512];
  write_sharded_folder("wrong-shard",
                       "{'weight_map':{'decoder.a':'" SHARD2 "','decoder.b':'" SHARD1
                       "','lm_head.weight':'" SHARD2 "'}}");
  EXPECT_OPEN_FAILS(tmp_path(folder, sizeof folder, "wrong-shard", NULL), LZN_ERR_FORMAT,
                    "tensor \"decoder.a\"", "in shard \"" SHARD2 "\"", "but it is in", SHARD1);
}
END_TEST

START_TEST(disk_tensor_in_no_shard) {
  char folder[512];
  write_sharded_folder("no-shard",
                       "{'weight_map':{'decoder.a':'" SHARD1 "','decoder.c':'" SHARD1
                       "','lm_head.weight':'" SHARD2 "'}}");
  EXPECT_OPEN_FAILS(tmp_path(folder, sizeof folder, "no-shard", NULL), LZN_ERR_FORMAT,
                    "tensor \"decoder.c\"", "no shard holds it");
}
END_TEST

START_TEST(disk_tensor_in_two_shards) {
  char folder[512];
  write_sharded_folder("two-shards", SHARDED_INDEX);
  /* Overwrite shard 2 with one that also holds decoder.a. */
  write_safetensors("two-shards", SHARD2,
                    "{'decoder.a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
                    "'lm_head.weight':{'dtype':'BF16','shape':[3],'data_offsets':[8,14]}}",
                    14);
  EXPECT_OPEN_FAILS(tmp_path(folder, sizeof folder, "two-shards", NULL), LZN_ERR_FORMAT,
                    "tensor \"decoder.a\"", "two shards", SHARD1, SHARD2);
}
END_TEST

START_TEST(disk_broken_index_and_shard) {
  char folder[512];
  write_sharded_folder("bad-index", "{'weight_map':");
  EXPECT_OPEN_FAILS(tmp_path(folder, sizeof folder, "bad-index", NULL), LZN_ERR_FORMAT,
                    "model.safetensors.index.json", "not valid JSON");
  write_sharded_folder("bad-shard", SHARDED_INDEX);
  write_safetensors("bad-shard", SHARD2, "{'lm_head.weight':{'dtype':'I64','shape':[1],'data_offsets':[0,8]}}", 8);
  EXPECT_OPEN_FAILS(tmp_path(folder, sizeof folder, "bad-shard", NULL), LZN_ERR_UNSUPPORTED,
                    SHARD2, "tensor \"lm_head.weight\"", "I64");
}
END_TEST

/* ------------------------------------------------------------------- suite */

static Suite *format_suite(void) {
  Suite *suite = suite_create("format");

  TCase *parse = tcase_create("safetensors");
  tcase_add_test(parse, parse_valid);
  tcase_add_test(parse, parse_padded_header_and_unaligned_data);
  tcase_add_test(parse, parse_empty_header_object);
  tcase_add_test(parse, parse_extra_fields_ignored);
  tcase_add_test(parse, parse_shorter_than_8_bytes);
  tcase_add_test(parse, parse_header_length_past_end);
  tcase_add_test(parse, parse_header_over_100mb);
  tcase_add_test(parse, parse_not_json);
  tcase_add_test(parse, parse_not_an_object);
  tcase_add_test(parse, parse_duplicate_keys);
  tcase_add_test(parse, parse_invalid_utf8);
  tcase_add_test(parse, parse_metadata_rules);
  tcase_add_test(parse, parse_entry_not_object);
  tcase_add_test(parse, parse_missing_dtype);
  tcase_add_test(parse, parse_missing_shape);
  tcase_add_test(parse, parse_missing_data_offsets);
  tcase_add_test(parse, parse_bad_data_offsets);
  tcase_add_test(parse, parse_unknown_dtype_is_format);
  tcase_add_test(parse, parse_known_dtype_is_unsupported);
  tcase_add_test(parse, parse_negative_shape);
  tcase_add_test(parse, parse_non_integer_shape);
  tcase_add_test(parse, parse_too_many_dims);
  tcase_add_test(parse, parse_shape_overflow);
  tcase_add_test(parse, parse_byte_count_mismatch);
  tcase_add_test(parse, parse_begin_after_end);
  tcase_add_test(parse, parse_overlap);
  tcase_add_test(parse, parse_hole);
  tcase_add_test(parse, parse_out_of_bounds);
  tcase_add_test(parse, parse_trailing_bytes);
  tcase_add_test(parse, parse_every_truncation_fails);
  tcase_add_test(parse, parse_every_byte_corruption_is_safe);
  tcase_add_test(parse, parse_bad_arguments);
  suite_add_tcase(suite, parse);

  TCase *index = tcase_create("index");
  tcase_add_test(index, index_valid_unique_in_order);
  tcase_add_test(index, index_rejects_paths_outside_folder);
  tcase_add_test(index, index_shape_rules);
  suite_add_tcase(suite, index);

  TCase *disk = tcase_create("disk");
  tcase_add_unchecked_fixture(disk, make_tmp_root, remove_tmp_root);
  tcase_add_test(disk, disk_single_file_mmap_and_read);
  tcase_add_test(disk, disk_large_file_read_onto_huge_pages);
  tcase_add_test(disk, large_weights_are_a_fresh_mapping);
  tcase_add_test(disk, disk_folder_with_model_safetensors);
  tcase_add_test(disk, disk_missing_path);
  tcase_add_test(disk, disk_folder_without_weights);
  tcase_add_test(disk, disk_not_a_regular_file);
  tcase_add_test(disk, disk_empty_and_broken_files);
  tcase_add_test(disk, disk_sharded_folder);
  tcase_add_test(disk, disk_index_names_missing_shard);
  tcase_add_test(disk, disk_index_escaping_folder);
  tcase_add_test(disk, disk_tensor_in_wrong_shard);
  tcase_add_test(disk, disk_tensor_in_no_shard);
  tcase_add_test(disk, disk_tensor_in_two_shards);
  tcase_add_test(disk, disk_broken_index_and_shard);
  suite_add_tcase(suite, disk);

  return suite;
}

int main(void) { return run_suite(format_suite()); }
