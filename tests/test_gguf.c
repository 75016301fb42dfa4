/*
 * test_gguf.c: GGUF v3 parsing and validation (lib/format/gguf.c). Images
 * are built in memory by a small writer below; each malformed rule has a
 * row in a table with its expected status and a word of the message.
 *
 * LZN_GGUF_SEED_DIR=DIR writes the valid images of the positive tests into
 * DIR: that is how tests/fuzz/corpus/fuzz_gguf/ was made.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/gguf.h"
#include "kernels/half.h"
#include "testutil.h"

/* ------------------------------------------------------------- the writer */

typedef struct image {
  unsigned char *bytes;
  size_t size, cap;
} image;

static void put(image *b, const void *data, size_t n) {
  if (b->size + n > b->cap) {
    b->cap = (b->size + n) * 2 + 64;
    b->bytes = realloc(b->bytes, b->cap);
    ck_assert_ptr_nonnull(b->bytes);
  }
  if (n) memcpy(b->bytes + b->size, data, n);
  b->size += n;
}

static void put_le(image *b, uint64_t v, size_t n) {
  unsigned char le[8];
  for (size_t i = 0; i < n; i++) le[i] = (unsigned char)(v >> (8 * i));
  put(b, le, n);
}
static void put_u8(image *b, uint8_t v) { put_le(b, v, 1); }
static void put_u32(image *b, uint32_t v) { put_le(b, v, 4); }
static void put_u64(image *b, uint64_t v) { put_le(b, v, 8); }
static void put_strn(image *b, const char *s, size_t n) {
  put_u64(b, n);
  put(b, s, n);
}
static void put_str(image *b, const char *s) { put_strn(b, s, strlen(s)); }

static void put_header(image *b, const char *magic, uint32_t version, uint64_t n_tensors, uint64_t n_kvs) {
  put(b, magic, 4);
  put_u32(b, version);
  put_u64(b, n_tensors);
  put_u64(b, n_kvs);
}

/* A key and its value type; the caller writes the value. */
static void put_key(image *b, const char *key, lzn_gguf_type type) {
  put_str(b, key);
  put_u32(b, type);
}
static void kv_u32(image *b, const char *key, uint32_t v) {
  put_key(b, key, LZN_GGUF_U32);
  put_u32(b, v);
}
static void kv_str(image *b, const char *key, const char *s) {
  put_key(b, key, LZN_GGUF_STRING);
  put_str(b, s);
}

/* ggml type ids */
enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q8_0 = 8, GGML_Q4_K = 12, GGML_Q5_K = 13, GGML_Q6_K = 14,
       GGML_IQ2_XS = 17, GGML_BF16 = 30 };

/* ne innermost first, as the file stores it. */
static void put_tensor_info(image *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                            uint32_t ggml_type, uint64_t offset) {
  put_str(b, name);
  put_u32(b, n_dims);
  for (uint32_t i = 0; i < n_dims; i++) put_u64(b, ne[i]);
  put_u32(b, ggml_type);
  put_u64(b, offset);
}
#define NE(...) (const uint64_t[]){__VA_ARGS__}

static void pad_to(image *b, size_t alignment) {
  while (b->size % alignment) put_u8(b, 0);
}
/* n data bytes whose value is their index & 0xff. */
static void put_data(image *b, size_t n) {
  for (size_t i = 0; i < n; i++) put_u8(b, (uint8_t)i);
}

/* A small valid file: one F32 tensor "w" [2, 4] (ne {4, 2}) at offset 0,
 * one string key. 32 data bytes. */
static void valid_file(image *b) {
  put_header(b, "GGUF", 3, 1, 1);
  kv_str(b, "general.architecture", "llama");
  put_tensor_info(b, "w", 2, NE(4, 2), GGML_F32, 0);
  pad_to(b, 32);
  put_data(b, 32);
}

/* Writes img to $LZN_GGUF_SEED_DIR/name.gguf, when set (and name is not NULL). */
static void maybe_write_seed(const char *name, const image *b) {
  const char *dir = getenv("LZN_GGUF_SEED_DIR");
  if (name == NULL || dir == NULL || *dir == '\0') return;
  char path[512];
  snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(b->bytes, 1, b->size, f), b->size);
  fclose(f);
}

/* Parses an exact-size copy (ASan sees any overread), with the expected status. */
static lzn_status parse_copy(const image *b, lzn_gguf_file *f, unsigned char **copy) {
  *copy = malloc(b->size ? b->size : 1);
  ck_assert_ptr_nonnull(*copy);
  if (b->size) memcpy(*copy, b->bytes, b->size);
  return lzn_gguf_parse(*copy, b->size, "model.gguf", f);
}

static void parse_ok(const char *seed_name, const image *b, lzn_gguf_file *f, unsigned char **copy) {
  const lzn_status status = parse_copy(b, f, copy);
  ck_assert_msg(status == LZN_OK, "%s: %s", lzn_status_str(status), lzn_last_error());
  maybe_write_seed(seed_name, b);
}

static void finish(image *b, lzn_gguf_file *f, unsigned char *copy) {
  lzn_gguf_close(f);
  free(copy);
  free(b->bytes);
}

/* --------------------------------------------------------- malformed files */

static void bad_magic(image *b) {
  put_header(b, "GGUG", 3, 0, 0);
}
static void version_1(image *b) { put_header(b, "GGUF", 1, 0, 0); }
static void version_2(image *b) { put_header(b, "GGUF", 2, 0, 0); }
static void version_4(image *b) { put_header(b, "GGUF", 4, 0, 0); }
static void big_endian(image *b) { put_header(b, "GGUF", 0x03000000u, 0, 0); }
static void empty_file(image *b) { (void)b; }
static void cut_in_magic(image *b) { put(b, "GG", 2); }
static void cut_in_counts(image *b) {
  put(b, "GGUF", 4);
  put_u32(b, 3);
  put_u32(b, 0);
}
/* 2^60 tensors, or entries, in a 100-byte file: must fail before allocating. */
static void huge_tensor_count(image *b) {
  put_header(b, "GGUF", 3, 1ull << 60, 0);
  put_data(b, 100 - 24);
}
static void huge_kv_count(image *b) {
  put_header(b, "GGUF", 3, 0, 1ull << 60);
  put_data(b, 100 - 24);
}
static void tensor_count_eats_kv_room(image *b) {
  put_header(b, "GGUF", 3, 2, 1);
  put_data(b, 64);
}
static void key_length_past_end(image *b) {
  put_header(b, "GGUF", 3, 0, 1);
  put_u64(b, 1000);
  put(b, "general.name", 12);
}
static void key_length_2_64(image *b) {
  put_header(b, "GGUF", 3, 0, 1);
  put_u64(b, UINT64_MAX);
  put_data(b, 16);
}
static void string_value_past_end(image *b) {
  put_header(b, "GGUF", 3, 0, 1);
  put_key(b, "general.name", LZN_GGUF_STRING);
  put_u64(b, 50);
  put(b, "short", 5);
}
static void array_past_end(image *b) {
  put_header(b, "GGUF", 3, 0, 1);
  put_key(b, "a", LZN_GGUF_ARRAY);
  put_u32(b, LZN_GGUF_U32);
  put_u64(b, 1ull << 60);
  put_u32(b, 7);
}
static void string_array_past_end(image *b) {
  put_header(b, "GGUF", 3, 0, 1);
  put_key(b, "tokenizer.ggml.tokens", LZN_GGUF_ARRAY);
  put_u32(b, LZN_GGUF_STRING);
  put_u64(b, 1ull << 62);
  put_str(b, "a");
}
static void string_in_array_past_end(image *b) {
  put_header(b, "GGUF", 3, 0, 1);
  put_key(b, "tokenizer.ggml.tokens", LZN_GGUF_ARRAY);
  put_u32(b, LZN_GGUF_STRING);
  put_u64(b, 2);
  put_str(b, "a");
  put_u64(b, 9);
  put(b, "bc", 2);
}
static void unknown_value_type(image *b) {
  put_header(b, "GGUF", 3, 0, 1);
  put_key(b, "general.x", (lzn_gguf_type)13);
  put_u32(b, 0);
}
static void unknown_element_type(image *b) {
  put_header(b, "GGUF", 3, 0, 1);
  put_key(b, "general.x", LZN_GGUF_ARRAY);
  put_u32(b, 99);
  put_u64(b, 0);
}
static void nested_array(image *b) {
  put_header(b, "GGUF", 3, 0, 1);
  put_key(b, "general.nested", LZN_GGUF_ARRAY);
  put_u32(b, LZN_GGUF_ARRAY);
  put_u64(b, 1);
  put_u32(b, LZN_GGUF_U8);
  put_u64(b, 1);
  put_u8(b, 1);
}
static void bool_not_0_or_1(image *b) {
  put_header(b, "GGUF", 3, 0, 1);
  put_key(b, "general.flag", LZN_GGUF_BOOL);
  put_u8(b, 2);
}
static void bool_array_not_0_or_1(image *b) {
  put_header(b, "GGUF", 3, 0, 1);
  put_key(b, "general.flags", LZN_GGUF_ARRAY);
  put_u32(b, LZN_GGUF_BOOL);
  put_u64(b, 3);
  put_u8(b, 0);
  put_u8(b, 1);
  put_u8(b, 0xff);
}
static void scalar_value_cut(image *b) {
  put_header(b, "GGUF", 3, 0, 1);
  put_key(b, "general.count", LZN_GGUF_U64);
  put_u32(b, 1);
}
static void duplicate_key(image *b) {
  put_header(b, "GGUF", 3, 0, 3);
  kv_u32(b, "llama.block_count", 2);
  kv_str(b, "general.name", "x");
  kv_u32(b, "llama.block_count", 3);
}
static void nul_in_key(image *b) {
  put_header(b, "GGUF", 3, 0, 1);
  put_strn(b, "general\0name", 12);
  put_u32(b, LZN_GGUF_U8);
  put_u8(b, 1);
}
static void alignment_not_power_of_two(image *b) {
  put_header(b, "GGUF", 3, 0, 1);
  kv_u32(b, "general.alignment", 48);
}
static void alignment_zero(image *b) {
  put_header(b, "GGUF", 3, 0, 1);
  kv_u32(b, "general.alignment", 0);
}
static void alignment_wrong_type(image *b) {
  put_header(b, "GGUF", 3, 0, 1);
  put_key(b, "general.alignment", LZN_GGUF_I32);
  put_u32(b, 32);
}

/* One tensor info after a header with no metadata, then padding and data. */
static void one_tensor(image *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                       uint64_t offset, size_t data_len) {
  put_header(b, "GGUF", 3, 1, 0);
  put_tensor_info(b, name, n_dims, ne, type, offset);
  pad_to(b, 32);
  put_data(b, data_len);
}
static void n_dims_0(image *b) { one_tensor(b, "w", 0, NE(0), GGML_F32, 0, 32); }
static void n_dims_5(image *b) { one_tensor(b, "w", 5, NE(1, 1, 1, 1, 1), GGML_F32, 0, 32); }
static void zero_dimension(image *b) { one_tensor(b, "w", 2, NE(4, 0), GGML_F32, 0, 32); }
static void dimension_over_int64(image *b) { one_tensor(b, "w", 1, NE(1ull << 63), GGML_F32, 0, 32); }
static void elements_overflow(image *b) { one_tensor(b, "w", 3, NE(1ull << 32, 1ull << 31, 2), GGML_F16, 0, 32); }
static void bytes_overflow(image *b) { one_tensor(b, "w", 2, NE(1ull << 31, 1ull << 31), GGML_F32, 0, 32); }
static void q8_0_partial_block(image *b) { one_tensor(b, "w", 2, NE(16, 2), GGML_Q8_0, 0, 68); }
static void q4_0_partial_block(image *b) { one_tensor(b, "w", 1, NE(48), GGML_Q4_0, 0, 36); }
static void type_iq2_xs(image *b) { one_tensor(b, "blk.0.ffn_up.weight", 1, NE(256), GGML_IQ2_XS, 0, 74); }
/* A K-quant on rows that are not whole 256-weight super-blocks. */
static void q4_k_row_100(image *b) { one_tensor(b, "blk.0.ffn_up.weight", 2, NE(100, 2), GGML_Q4_K, 0, 288); }
static void q6_k_row_512_plus_32(image *b) { one_tensor(b, "w6", 1, NE(544), GGML_Q6_K, 0, 630); }
/* Truncated super-blocks: 2 rows of Q5_K need 352 bytes. */
static void q5_k_truncated(image *b) { one_tensor(b, "w5", 2, NE(256, 2), GGML_Q5_K, 0, 300); }
static void type_unknown(image *b) { one_tensor(b, "w", 1, NE(4), 999, 0, 32); }
static void offset_out_of_bounds(image *b) { one_tensor(b, "w", 1, NE(4), GGML_F32, 64, 32); }
static void offset_huge(image *b) { one_tensor(b, "w", 1, NE(4), GGML_F32, 1ull << 63, 32); }
static void tensor_past_end(image *b) { one_tensor(b, "w", 1, NE(9), GGML_F32, 0, 32); }
static void offset_misaligned(image *b) { one_tensor(b, "w", 1, NE(4), GGML_F32, 16, 64); }
static void nul_in_name(image *b) {
  put_header(b, "GGUF", 3, 1, 0);
  put_strn(b, "w\0x", 3);
  put_u32(b, 1);
  put_u64(b, 4);
  put_u32(b, GGML_F32);
  put_u64(b, 0);
  pad_to(b, 32);
  put_data(b, 16);
}
static void name_length_past_end(image *b) {
  put_header(b, "GGUF", 3, 1, 0);
  put_u64(b, 1ull << 40);
  put_data(b, 24);
}
static void overlap(image *b) {
  put_header(b, "GGUF", 3, 2, 0);
  put_tensor_info(b, "a", 1, NE(16), GGML_F32, 0);  /* [0, 64) */
  put_tensor_info(b, "b", 1, NE(8), GGML_F32, 32);  /* [32, 64) */
  pad_to(b, 32);
  put_data(b, 64);
}
static void duplicate_name(image *b) {
  put_header(b, "GGUF", 3, 3, 0);
  put_tensor_info(b, "w", 1, NE(8), GGML_F32, 0);
  put_tensor_info(b, "v", 1, NE(8), GGML_F32, 32);
  put_tensor_info(b, "w", 1, NE(8), GGML_F32, 64);
  pad_to(b, 32);
  put_data(b, 96);
}
/* Tensor infos, then the file ends before the padding to the data section. */
static void cut_before_data(image *b) {
  put_header(b, "GGUF", 3, 1, 0);
  put_tensor_info(b, "w", 1, NE(4), GGML_F32, 0);
}
static void cut_in_tensor_info(image *b) {
  put_header(b, "GGUF", 3, 1, 0);
  put_str(b, "blk.0.attn_q.weight");
  put_u32(b, 2);
  put_u64(b, 4); /* and the file ends before ne[1] */
}
/* An unsupported type must not hide a broken file: FORMAT wins. */
static void unsupported_then_misaligned(image *b) {
  put_header(b, "GGUF", 3, 2, 0);
  put_tensor_info(b, "k", 1, NE(256), GGML_IQ2_XS, 0);
  put_tensor_info(b, "w", 1, NE(4), GGML_F32, 200);
  pad_to(b, 32);
  put_data(b, 256);
}
static void unsupported_then_overlap(image *b) {
  put_header(b, "GGUF", 3, 3, 0);
  put_tensor_info(b, "k", 1, NE(256), GGML_IQ2_XS, 0);
  put_tensor_info(b, "a", 1, NE(16), GGML_F32, 192);
  put_tensor_info(b, "b", 1, NE(16), GGML_F32, 224);
  pad_to(b, 32);
  put_data(b, 288);
}

typedef struct malformed_case {
  const char *what;
  void (*build)(image *b);
  lzn_status status;
  const char *word; /* the message must contain it */
} malformed_case;

static const malformed_case malformed[] = {
    {"bad magic", bad_magic, LZN_ERR_FORMAT, "bad magic"},
    {"version 1", version_1, LZN_ERR_UNSUPPORTED, "version 1 "},
    {"version 2", version_2, LZN_ERR_UNSUPPORTED, "version 2 "},
    {"version 4", version_4, LZN_ERR_UNSUPPORTED, "version 4 "},
    {"big-endian", big_endian, LZN_ERR_UNSUPPORTED, "big-endian"},
    {"empty file", empty_file, LZN_ERR_FORMAT, "truncated"},
    {"cut in magic", cut_in_magic, LZN_ERR_FORMAT, "truncated"},
    {"cut in counts", cut_in_counts, LZN_ERR_FORMAT, "tensor_count"},
    {"2^60 tensors", huge_tensor_count, LZN_ERR_FORMAT, "tensor_count 1152921504606846976"},
    {"2^60 kvs", huge_kv_count, LZN_ERR_FORMAT, "metadata_kv_count 1152921504606846976"},
    {"tensors leave no room for kvs", tensor_count_eats_kv_room, LZN_ERR_FORMAT, "metadata_kv_count"},
    {"key length past end", key_length_past_end, LZN_ERR_FORMAT, "string length 1000"},
    {"key length 2^64 - 1", key_length_2_64, LZN_ERR_FORMAT, "past the end"},
    {"string value past end", string_value_past_end, LZN_ERR_FORMAT, "string length 50"},
    {"array past end", array_past_end, LZN_ERR_FORMAT, "array of 1152921504606846976 uint32"},
    {"string array past end", string_array_past_end, LZN_ERR_FORMAT, "strings runs past the end"},
    {"string in array past end", string_in_array_past_end, LZN_ERR_FORMAT, "string 1 of array"},
    {"unknown value type", unknown_value_type, LZN_ERR_FORMAT, "unknown value type 13"},
    {"unknown element type", unknown_element_type, LZN_ERR_FORMAT, "unknown array element type 99"},
    {"nested array", nested_array, LZN_ERR_UNSUPPORTED, "array of arrays"},
    {"bool 2", bool_not_0_or_1, LZN_ERR_FORMAT, "0 or 1"},
    {"bool array 0xff", bool_array_not_0_or_1, LZN_ERR_FORMAT, "element 2 is 255"},
    {"scalar value cut", scalar_value_cut, LZN_ERR_FORMAT, "truncated"},
    {"duplicate key", duplicate_key, LZN_ERR_FORMAT, "duplicate key \"llama.block_count\""},
    {"NUL in key", nul_in_key, LZN_ERR_FORMAT, "NUL"},
    {"alignment 48", alignment_not_power_of_two, LZN_ERR_FORMAT, "power of two"},
    {"alignment 0", alignment_zero, LZN_ERR_FORMAT, "power of two"},
    {"alignment int32", alignment_wrong_type, LZN_ERR_FORMAT, "holds int32, not uint32"},
    {"n_dims 0", n_dims_0, LZN_ERR_FORMAT, "n_dims is 0"},
    {"n_dims 5", n_dims_5, LZN_ERR_FORMAT, "n_dims is 5"},
    {"zero dimension", zero_dimension, LZN_ERR_FORMAT, "ne[1] is 0"},
    {"dimension 2^63", dimension_over_int64, LZN_ERR_FORMAT, "overflows"},
    {"elements overflow", elements_overflow, LZN_ERR_FORMAT, "overflows"},
    {"bytes overflow", bytes_overflow, LZN_ERR_FORMAT, "overflows"},
    {"Q8_0 ne[0] 16", q8_0_partial_block, LZN_ERR_FORMAT, "Q8_0 block size 32"},
    {"Q4_0 ne[0] 48", q4_0_partial_block, LZN_ERR_FORMAT, "Q4_0 block size 32"},
    {"IQ2_XS", type_iq2_xs, LZN_ERR_UNSUPPORTED, "ggml type 17 (IQ2_XS)"},
    {"Q4_K rows of 100", q4_k_row_100, LZN_ERR_UNSUPPORTED, "tensor \"blk.0.ffn_up.weight\" (shape [2, 100]): Q4_K rows of 100"},
    {"Q6_K rows of 544", q6_k_row_512_plus_32, LZN_ERR_UNSUPPORTED, "\"w6\" (shape [544]): Q6_K rows of 544"},
    {"Q5_K truncated", q5_k_truncated, LZN_ERR_FORMAT, "tensor \"w5\": 352 bytes at offset 0 are out of bounds"},
    {"type 999", type_unknown, LZN_ERR_UNSUPPORTED, "ggml type 999"},
    {"offset out of bounds", offset_out_of_bounds, LZN_ERR_FORMAT, "out of bounds"},
    {"offset 2^63", offset_huge, LZN_ERR_FORMAT, "out of bounds"},
    {"tensor past end", tensor_past_end, LZN_ERR_FORMAT, "out of bounds"},
    {"offset misaligned", offset_misaligned, LZN_ERR_FORMAT, "misaligned"},
    {"NUL in name", nul_in_name, LZN_ERR_FORMAT, "NUL"},
    {"name length past end", name_length_past_end, LZN_ERR_FORMAT, "the name of tensor #0"},
    {"overlap", overlap, LZN_ERR_FORMAT, "overlap tensor \"a\""},
    {"duplicate name", duplicate_name, LZN_ERR_FORMAT, "duplicate tensor name \"w\" (tensor infos #0 and #2)"},
    {"cut before data", cut_before_data, LZN_ERR_FORMAT, "truncated"},
    {"cut in tensor info", cut_in_tensor_info, LZN_ERR_FORMAT, "truncated"},
    {"unsupported then misaligned", unsupported_then_misaligned, LZN_ERR_FORMAT, "misaligned"},
    {"unsupported then overlap", unsupported_then_overlap, LZN_ERR_FORMAT, "overlap"},
};

START_TEST(malformed_file_fails) {
  const malformed_case *c = &malformed[_i];
  image b = {0};
  c->build(&b);
  lzn_gguf_file f;
  unsigned char *copy;
  const lzn_status status = parse_copy(&b, &f, &copy);
  ck_assert_msg(status == c->status, "%s: got %s, want %s (%s)", c->what, lzn_status_str(status),
                lzn_status_str(c->status), lzn_last_error());
  ck_assert_msg(strstr(lzn_last_error(), c->word) != NULL, "%s: message \"%s\" does not mention \"%s\"",
                c->what, lzn_last_error(), c->word);
  ck_assert_msg(strstr(lzn_last_error(), "model.gguf") != NULL, "%s: message does not name the file: %s",
                c->what, lzn_last_error());
  ck_assert_msg(f.tensors == NULL && f.kvs == NULL && f.path == NULL && f.n_tensors == 0 && f.n_kvs == 0,
                "%s: *out not zeroed on failure", c->what);
  finish(&b, &f, copy);
}
END_TEST

/* Every proper prefix of a valid file fails with FORMAT. */
START_TEST(every_truncation_fails) {
  image b = {0};
  valid_file(&b);
  for (size_t cut = 0; cut < b.size; cut++) {
    image prefix = {.bytes = b.bytes, .size = cut};
    lzn_gguf_file f;
    unsigned char *copy;
    ck_assert_msg(parse_copy(&prefix, &f, &copy) == LZN_ERR_FORMAT, "prefix of %zu bytes: %s", cut,
                  lzn_last_error());
    free(copy);
  }
  free(b.bytes);
}
END_TEST

/* Whatever a one-byte corruption makes the parser decide, it must not crash
 * or overread, and what it accepts must lie inside the image. */
START_TEST(every_byte_corruption_is_safe) {
  image b = {0};
  valid_file(&b);
  const unsigned char values[] = {0x00, 0x01, 0x02, 0x08, 0x09, 0x0d, 0x1e, 0x20, 0x7f, 0x80, 0xff};
  for (size_t pos = 0; pos < b.size - 32; pos++) {
    for (size_t v = 0; v < sizeof values; v++) {
      unsigned char saved = b.bytes[pos];
      b.bytes[pos] = values[v];
      lzn_gguf_file f;
      unsigned char *copy;
      const lzn_status status = parse_copy(&b, &f, &copy);
      ck_assert(status == LZN_OK || status == LZN_ERR_FORMAT || status == LZN_ERR_UNSUPPORTED);
      for (size_t i = 0; status == LZN_OK && i < f.n_tensors; i++) {
        const unsigned char *data = f.tensors[i].data;
        ck_assert(data >= copy && data + f.tensors[i].n_bytes <= copy + b.size);
      }
      lzn_gguf_close(&f);
      free(copy);
      b.bytes[pos] = saved;
    }
  }
  free(b.bytes);
}
END_TEST

/* ------------------------------------------------------------ valid files */

/* Every scalar type once, an array of each fixed-size type, an array of
 * strings, and empty arrays. */
static void every_value_type(image *b) {
  put_header(b, "GGUF", 3, 0, 20);
  put_key(b, "t.u8", LZN_GGUF_U8), put_u8(b, 200);
  put_key(b, "t.i8", LZN_GGUF_I8), put_u8(b, (uint8_t)-100);
  put_key(b, "t.u16", LZN_GGUF_U16), put_le(b, 60000, 2);
  put_key(b, "t.i16", LZN_GGUF_I16), put_le(b, (uint16_t)-30000, 2);
  kv_u32(b, "t.u32", 4000000000u);
  put_key(b, "t.i32", LZN_GGUF_I32), put_u32(b, (uint32_t)-2000000000);
  put_key(b, "t.f32", LZN_GGUF_F32), put_u32(b, 0x3fc00000u);           /* 1.5f */
  put_key(b, "t.bool", LZN_GGUF_BOOL), put_u8(b, 1);
  kv_str(b, "t.string", "h\xc3\xa9llo");                              /* UTF-8 */
  put_key(b, "t.u64", LZN_GGUF_U64), put_u64(b, 0xfedcba9876543210ull);
  put_key(b, "t.i64", LZN_GGUF_I64), put_u64(b, (uint64_t)-5000000000ll);
  put_key(b, "t.f64", LZN_GGUF_F64), put_u64(b, 0xc004000000000000ull); /* -2.5 */
  put_key(b, "a.u16", LZN_GGUF_ARRAY), put_u32(b, LZN_GGUF_U16), put_u64(b, 3);
  put_le(b, 1, 2), put_le(b, 2, 2), put_le(b, 65535, 2);
  put_key(b, "a.i32", LZN_GGUF_ARRAY), put_u32(b, LZN_GGUF_I32), put_u64(b, 2);
  put_u32(b, (uint32_t)-7), put_u32(b, 7);
  put_key(b, "a.f32", LZN_GGUF_ARRAY), put_u32(b, LZN_GGUF_F32), put_u64(b, 2);
  put_u32(b, 0x40490fdbu), put_u32(b, 0xbf800000u); /* pi, -1 */
  put_key(b, "a.bool", LZN_GGUF_ARRAY), put_u32(b, LZN_GGUF_BOOL), put_u64(b, 3);
  put_u8(b, 1), put_u8(b, 0), put_u8(b, 1);
  put_key(b, "a.u64", LZN_GGUF_ARRAY), put_u32(b, LZN_GGUF_U64), put_u64(b, 1), put_u64(b, 1ull << 40);
  put_key(b, "tokenizer.ggml.tokens", LZN_GGUF_ARRAY), put_u32(b, LZN_GGUF_STRING), put_u64(b, 4);
  put_str(b, "<s>"), put_str(b, ""), put_strn(b, "a\0b", 3), put_str(b, "\xe2\x96\x81the");
  put_key(b, "a.empty_strings", LZN_GGUF_ARRAY), put_u32(b, LZN_GGUF_STRING), put_u64(b, 0);
  put_key(b, "a.empty_u8", LZN_GGUF_ARRAY), put_u32(b, LZN_GGUF_U8), put_u64(b, 0);
}

START_TEST(every_value_type_round_trips) {
  image b = {0};
  every_value_type(&b);
  lzn_gguf_file f;
  unsigned char *copy;
  parse_ok("every-value-type", &b, &f, &copy);
  ck_assert_str_eq(f.magic, "GGUF");
  ck_assert_uint_eq(f.version, 3);
  ck_assert_uint_eq(f.n_kvs, 20);
  ck_assert_uint_eq(f.n_tensors, 0);
  ck_assert_uint_eq(f.alignment, 32);
  uint8_t u8 = 0;
  int8_t i8 = 0;
  uint16_t u16 = 0;
  int16_t i16 = 0;
  uint32_t u32 = 0;
  int32_t i32 = 0;
  uint64_t u64 = 0;
  int64_t i64 = 0;
  float f32 = 0;
  double f64 = 0;
  int flag = 0;
  lzn_gguf_string s = {0};
  ck_assert_int_eq(lzn_gguf_get_u8(&f, "t.u8", &u8), LZN_OK); ck_assert_uint_eq(u8, 200);
  ck_assert_int_eq(lzn_gguf_get_i8(&f, "t.i8", &i8), LZN_OK); ck_assert_int_eq(i8, -100);
  ck_assert_int_eq(lzn_gguf_get_u16(&f, "t.u16", &u16), LZN_OK); ck_assert_uint_eq(u16, 60000);
  ck_assert_int_eq(lzn_gguf_get_i16(&f, "t.i16", &i16), LZN_OK); ck_assert_int_eq(i16, -30000);
  ck_assert_int_eq(lzn_gguf_get_u32(&f, "t.u32", &u32), LZN_OK); ck_assert_uint_eq(u32, 4000000000u);
  ck_assert_int_eq(lzn_gguf_get_i32(&f, "t.i32", &i32), LZN_OK); ck_assert_int_eq(i32, -2000000000);
  ck_assert_int_eq(lzn_gguf_get_f32(&f, "t.f32", &f32), LZN_OK); ck_assert(f32 == 1.5f);
  ck_assert_int_eq(lzn_gguf_get_bool(&f, "t.bool", &flag), LZN_OK); ck_assert_int_eq(flag, 1);
  ck_assert_int_eq(lzn_gguf_get_string(&f, "t.string", &s), LZN_OK);
  ck_assert_uint_eq(s.len, 6); ck_assert(memcmp(s.data, "h\xc3\xa9llo", 6) == 0);
  ck_assert_int_eq(lzn_gguf_get_u64(&f, "t.u64", &u64), LZN_OK); ck_assert(u64 == 0xfedcba9876543210ull);
  ck_assert_int_eq(lzn_gguf_get_i64(&f, "t.i64", &i64), LZN_OK); ck_assert(i64 == -5000000000ll);
  ck_assert_int_eq(lzn_gguf_get_f64(&f, "t.f64", &f64), LZN_OK); ck_assert(f64 == -2.5);

  const lzn_gguf_kv *a;
  ck_assert_int_eq(lzn_gguf_get_array(&f, "a.u16", LZN_GGUF_U16, &a), LZN_OK);
  ck_assert_uint_eq(a->n, 3);
  ck_assert_uint_eq(lzn_gguf_elem_u16(a, 0), 1); ck_assert_uint_eq(lzn_gguf_elem_u16(a, 2), 65535);
  ck_assert_uint_eq(lzn_gguf_elem_u16(a, 3), 0); /* out of range: 0, no overread */
  ck_assert_uint_eq(lzn_gguf_elem_u32(a, 0), 0); /* wrong type: 0 */
  ck_assert_int_eq(lzn_gguf_get_array(&f, "a.i32", LZN_GGUF_I32, &a), LZN_OK);
  ck_assert_int_eq(lzn_gguf_elem_i32(a, 0), -7); ck_assert_int_eq(lzn_gguf_elem_i32(a, 1), 7);
  ck_assert_int_eq(lzn_gguf_get_array(&f, "a.f32", LZN_GGUF_F32, &a), LZN_OK);
  ck_assert(lzn_gguf_elem_f32(a, 0) == 3.14159274f && lzn_gguf_elem_f32(a, 1) == -1.0f);
  ck_assert_int_eq(lzn_gguf_get_array(&f, "a.bool", LZN_GGUF_BOOL, &a), LZN_OK);
  ck_assert(lzn_gguf_elem_bool(a, 0) == 1 && lzn_gguf_elem_bool(a, 1) == 0 && lzn_gguf_elem_bool(a, 2) == 1);
  ck_assert_int_eq(lzn_gguf_get_array(&f, "a.u64", LZN_GGUF_U64, &a), LZN_OK);
  ck_assert(lzn_gguf_elem_u64(a, 0) == 1ull << 40);
  ck_assert_int_eq(lzn_gguf_get_array(&f, "tokenizer.ggml.tokens", LZN_GGUF_STRING, &a), LZN_OK);
  ck_assert_uint_eq(a->n, 4);
  const lzn_gguf_string t0 = lzn_gguf_elem_string(a, 0), t1 = lzn_gguf_elem_string(a, 1),
                        t2 = lzn_gguf_elem_string(a, 2), t3 = lzn_gguf_elem_string(a, 3),
                        t4 = lzn_gguf_elem_string(a, 4);
  ck_assert(t0.len == 3 && memcmp(t0.data, "<s>", 3) == 0);
  ck_assert(t1.len == 0);
  ck_assert(t2.len == 3 && memcmp(t2.data, "a\0b", 3) == 0); /* values may hold NUL */
  ck_assert(t3.len == 6 && memcmp(t3.data, "\xe2\x96\x81the", 6) == 0);
  ck_assert(t4.len == 0); /* out of range */
  ck_assert_int_eq(lzn_gguf_get_array(&f, "a.empty_strings", LZN_GGUF_STRING, &a), LZN_OK);
  ck_assert_uint_eq(a->n, 0);
  ck_assert_uint_eq(lzn_gguf_elem_string(a, 0).len, 0);
  ck_assert_int_eq(lzn_gguf_get_array(&f, "a.empty_u8", LZN_GGUF_U8, &a), LZN_OK);
  ck_assert_uint_eq(a->n, 0);
  /* A scalar read through the element readers is element 0. */
  ck_assert_uint_eq(lzn_gguf_elem_u32(lzn_gguf_find(&f, "t.u32"), 0), 4000000000u);
  finish(&b, &f, copy);
}
END_TEST

/* A getter on another type is FORMAT naming the key and both types; *out is untouched. */
START_TEST(getter_type_mismatch_is_format) {
  image b = {0};
  every_value_type(&b);
  lzn_gguf_file f;
  unsigned char *copy;
  parse_ok("every-value-type", &b, &f, &copy);
  uint32_t u32 = 77;
  ck_assert_int_eq(lzn_gguf_get_u32(&f, "t.i32", &u32), LZN_ERR_FORMAT);
  ck_assert_uint_eq(u32, 77);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "key \"t.i32\" holds int32, not uint32"));
  ck_assert_int_eq(lzn_gguf_get_u32(&f, "t.u8", &u32), LZN_ERR_FORMAT); /* no widening */
  float f32;
  ck_assert_int_eq(lzn_gguf_get_f32(&f, "a.f32", &f32), LZN_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "holds array of float32, not float32"));
  const lzn_gguf_kv *a;
  ck_assert_int_eq(lzn_gguf_get_array(&f, "a.i32", LZN_GGUF_U32, &a), LZN_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "holds array of int32, not array of uint32"));
  ck_assert_int_eq(lzn_gguf_get_array(&f, "t.string", LZN_GGUF_STRING, &a), LZN_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "holds string, not array of string"));
  lzn_gguf_string s;
  ck_assert_int_eq(lzn_gguf_get_string(&f, "llama.block_count", &s), LZN_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "missing metadata key \"llama.block_count\""));
  ck_assert_ptr_null(lzn_gguf_find(&f, "llama.block_count"));
  ck_assert_ptr_null(lzn_gguf_find(&f, NULL));
  ck_assert_int_eq(lzn_gguf_get_u32(&f, "t.u32", NULL), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_gguf_get_u32(NULL, "t.u32", &u32), LZN_ERR_INVALID_ARG);
  finish(&b, &f, copy);
}
END_TEST

/* One tensor of every supported type; data at alignment multiples. */
static void every_tensor_type(image *b, uint32_t alignment) {
  const uint64_t offsets[5] = {0, 1 * (uint64_t)alignment * 2, 4 * (uint64_t)alignment,
                               6 * (uint64_t)alignment, 14 * (uint64_t)alignment};
  put_header(b, "GGUF", 3, 5, alignment == 32 ? 1 : 2);
  kv_str(b, "general.architecture", "llama");
  if (alignment != 32) kv_u32(b, "general.alignment", alignment);
  put_tensor_info(b, "f32", 2, NE(5, 3), GGML_F32, offsets[0]);          /* 60 bytes */
  put_tensor_info(b, "f16", 1, NE(7), GGML_F16, offsets[1]);             /* 14 */
  put_tensor_info(b, "bf16", 3, NE(2, 2, 2), GGML_BF16, offsets[2]);     /* 16 */
  put_tensor_info(b, "q8_0", 2, NE(64, 3), GGML_Q8_0, offsets[3]);       /* 3 x 2 x 34 = 204 */
  put_tensor_info(b, "q4_0", 3, NE(32, 2, 2), GGML_Q4_0, offsets[4]);    /* 4 x 18 = 72 */
  pad_to(b, alignment);
  put_data(b, offsets[4] + 72 + 5); /* trailing padding is allowed */
}

static void check_every_tensor_type(uint32_t alignment, const char *seed) {
  image b = {0};
  every_tensor_type(&b, alignment);
  lzn_gguf_file f;
  unsigned char *copy;
  parse_ok(seed, &b, &f, &copy);
  ck_assert_uint_eq(f.alignment, alignment);
  ck_assert_uint_eq(f.data_start % alignment, 0);
  ck_assert_uint_eq(f.n_tensors, 5);
  const struct {
    const char *name;
    lzn_weight_type dtype;
    int n_dims;
    int64_t shape[3];
    size_t n_bytes;
    size_t offset_in_alignments;
  } want[] = {
      {"f32", LZN_WEIGHTS_F32, 2, {3, 5}, 60, 0},          {"f16", LZN_WEIGHTS_F16, 1, {7}, 14, 2},
      {"bf16", LZN_WEIGHTS_BF16, 3, {2, 2, 2}, 16, 4},     {"q8_0", LZN_WEIGHTS_Q8_0, 2, {3, 64}, 204, 6},
      {"q4_0", LZN_WEIGHTS_Q4_0, 3, {2, 2, 32}, 72, 14},
  };
  for (size_t i = 0; i < 5; i++) {
    const lzn_file_tensor *t = lzn_gguf_find_tensor(&f, want[i].name);
    ck_assert_msg(t != NULL, "%s missing", want[i].name);
    ck_assert_ptr_eq(t, &f.tensors[i]); /* file order */
    ck_assert_str_eq(t->name, want[i].name);
    ck_assert_int_eq(t->dtype, want[i].dtype);
    ck_assert_int_eq(t->n_dims, want[i].n_dims);
    for (int d = 0; d < t->n_dims; d++) ck_assert_int_eq(t->shape[d], want[i].shape[d]);
    ck_assert_uint_eq(t->n_bytes, want[i].n_bytes);
    ck_assert_uint_eq(t->data_offset, want[i].offset_in_alignments * alignment);
    ck_assert_ptr_eq(t->data, copy + f.data_start + t->data_offset);
    ck_assert_uint_eq(((const unsigned char *)t->data)[0], (unsigned char)t->data_offset);
    ck_assert_str_eq(t->file, "model.gguf");
  }
  ck_assert_int_eq(f.tensors[0].n_elements, 15);
  ck_assert_int_eq(f.tensors[3].n_elements, 192);
  ck_assert_ptr_null(lzn_gguf_find_tensor(&f, "q8"));
  ck_assert_ptr_null(lzn_gguf_find_tensor(&f, NULL));
  finish(&b, &f, copy);
}

START_TEST(every_tensor_type_alignment_32) { check_every_tensor_type(32, "tensors-align32"); }
END_TEST
START_TEST(every_tensor_type_alignment_64) { check_every_tensor_type(64, "tensors-align64"); }
END_TEST

/* One tensor of each K-quant, read in place with its byte size (and each
 * image written as a fuzz seed, LZN_GGUF_SEED_DIR). */
START_TEST(k_quant_tensors) {
  static const struct {
    const char *seed;
    uint32_t ggml;
    lzn_weight_type dtype;
    uint64_t cols, rows;
    size_t n_bytes;
  } types[] = {{"tensor-q4_k", GGML_Q4_K, LZN_WEIGHTS_Q4_K, 512, 2, 2 * 2 * 144},
               {"tensor-q5_k", GGML_Q5_K, LZN_WEIGHTS_Q5_K, 256, 1, 176},
               {"tensor-q6_k", GGML_Q6_K, LZN_WEIGHTS_Q6_K, 256, 3, 3 * 210}};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    image b = {0};
    put_header(&b, "GGUF", 3, 1, 1);
    kv_str(&b, "general.architecture", "llama");
    put_tensor_info(&b, "blk.0.ffn_down.weight", 2, NE(types[i].cols, types[i].rows), types[i].ggml, 0);
    pad_to(&b, 32);
    put_data(&b, types[i].n_bytes);
    lzn_gguf_file f;
    unsigned char *copy;
    parse_ok(types[i].seed, &b, &f, &copy);
    const lzn_file_tensor *t = &f.tensors[0];
    ck_assert_int_eq(t->dtype, types[i].dtype);
    ck_assert_int_eq(t->shape[0], (int64_t)types[i].rows);
    ck_assert_int_eq(t->shape[1], (int64_t)types[i].cols);
    ck_assert_uint_eq(t->n_bytes, types[i].n_bytes);
    ck_assert_ptr_eq(t->data, copy + f.data_start);
    finish(&b, &f, copy);
  }
}
END_TEST

START_TEST(alignment_64_misaligned_at_32) {
  image b = {0};
  put_header(&b, "GGUF", 3, 1, 1);
  kv_u32(&b, "general.alignment", 64);
  put_tensor_info(&b, "w", 1, NE(8), GGML_F32, 32);
  pad_to(&b, 64);
  put_data(&b, 128);
  lzn_gguf_file f;
  unsigned char *copy;
  ck_assert_int_eq(parse_copy(&b, &f, &copy), LZN_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "not a multiple of the alignment 64"));
  finish(&b, &f, copy);
}
END_TEST

START_TEST(powerinfer_magic) {
  image b = {0};
  put_header(&b, "PWRI", 3, 1, 1);
  kv_str(&b, "general.architecture", "llama");
  put_tensor_info(&b, "blk.0.ffn_down_t.weight", 2, NE(32, 4), GGML_Q8_0, 0);
  pad_to(&b, 32);
  put_data(&b, 4 * 34);
  lzn_gguf_file f;
  unsigned char *copy;
  parse_ok("powerinfer", &b, &f, &copy);
  ck_assert_str_eq(f.magic, "PWRI");
  const lzn_file_tensor *t = lzn_gguf_find_tensor(&f, "blk.0.ffn_down_t.weight");
  ck_assert_ptr_nonnull(t);
  ck_assert_uint_eq(t->n_bytes, 4 * 34);
  finish(&b, &f, copy);
}
END_TEST

/* No tensors: the file may end right after the metadata, unpadded. */
START_TEST(no_tensors_no_padding) {
  image b = {0};
  put_header(&b, "GGUF", 3, 0, 1);
  kv_str(&b, "general.name", "x");
  ck_assert_uint_ne(b.size % 32, 0);
  lzn_gguf_file f;
  unsigned char *copy;
  parse_ok("no-tensors", &b, &f, &copy);
  ck_assert_uint_eq(f.data_start, b.size);
  ck_assert_ptr_null(lzn_gguf_find_tensor(&f, "x"));
  finish(&b, &f, copy);
}
END_TEST

/* Names are bytes: invalid UTF-8 is accepted (only NUL is refused). */
START_TEST(invalid_utf8_name_accepted) {
  image b = {0};
  put_header(&b, "GGUF", 3, 1, 1);
  kv_u32(&b, "general.\xff\xfe", 1);
  put_tensor_info(&b, "w\xc3", 1, NE(4), GGML_F32, 0);
  pad_to(&b, 32);
  put_data(&b, 16);
  lzn_gguf_file f;
  unsigned char *copy;
  parse_ok("invalid-utf8", &b, &f, &copy);
  ck_assert_ptr_nonnull(lzn_gguf_find_tensor(&f, "w\xc3"));
  ck_assert_ptr_nonnull(lzn_gguf_find(&f, "general.\xff\xfe"));
  finish(&b, &f, copy);
}
END_TEST

/* Many keys and tensors: the indexes find each one (and the sort is strcmp's). */
START_TEST(many_entries_are_indexed) {
  enum { N = 300 };
  image b = {0};
  put_header(&b, "GGUF", 3, N, N);
  char name[32];
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "k.%d", (i * 7919) % N);
    kv_u32(&b, name, (uint32_t)((i * 7919) % N));
  }
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "blk.%d.w", (i * 104729) % N);
    put_tensor_info(&b, name, 1, NE(8), GGML_F32, (uint64_t)i * 32);
  }
  pad_to(&b, 32);
  put_data(&b, (size_t)N * 32);
  lzn_gguf_file f;
  unsigned char *copy;
  parse_ok(NULL, &b, &f, &copy);
  for (int i = 0; i < N; i++) {
    uint32_t v;
    snprintf(name, sizeof name, "k.%d", i);
    ck_assert_int_eq(lzn_gguf_get_u32(&f, name, &v), LZN_OK);
    ck_assert_uint_eq(v, (uint32_t)i);
    snprintf(name, sizeof name, "blk.%d.w", i);
    const lzn_file_tensor *t = lzn_gguf_find_tensor(&f, name);
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t->name, name);
  }
  finish(&b, &f, copy);
}
END_TEST

START_TEST(close_is_safe) {
  lzn_gguf_close(NULL);
  lzn_gguf_file f;
  memset(&f, 0, sizeof f);
  lzn_gguf_close(&f);
  lzn_gguf_close(&f);
  ck_assert_ptr_null(lzn_gguf_find(&f, "x"));
  ck_assert_ptr_null(lzn_gguf_find_tensor(&f, "x"));
  ck_assert_int_eq(lzn_gguf_parse(NULL, 4, NULL, &f), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_gguf_parse("GGUF", 4, NULL, NULL), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_gguf_parse(NULL, 0, NULL, &f), LZN_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(lzn_last_error(), "(memory)"));
  ck_assert_int_eq(lzn_gguf_open(NULL, 1, &f), LZN_ERR_INVALID_ARG);
  ck_assert_int_eq(lzn_gguf_open("/nonexistent/model.gguf", 1, &f), LZN_ERR_IO);
}
END_TEST

/* lzn_gguf_open, mapped and read, on a file written here. */
START_TEST(open_from_disk) {
  image b = {0};
  every_tensor_type(&b, 64);
  char path[] = "/tmp/lzn-test-gguf-XXXXXX";
  const int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, b.bytes, b.size), (ssize_t)b.size);
  close(fd);
  for (int use_mmap = 0; use_mmap <= 1; use_mmap++) {
    lzn_gguf_file f;
    ck_assert_msg(lzn_gguf_open(path, use_mmap, &f) == LZN_OK, "%s", lzn_last_error());
    ck_assert_int_eq(f.mapped, use_mmap);
    ck_assert_int_eq(f.owns_bytes, 1);
    ck_assert_str_eq(f.path, path);
    const lzn_file_tensor *t = lzn_gguf_find_tensor(&f, "q8_0");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(memcmp(t->data, b.bytes + f.data_start + t->data_offset, t->n_bytes), 0);
    ck_assert_str_eq(t->file, path);
    lzn_gguf_close(&f);
  }
  unlink(path);
  free(b.bytes);
}
END_TEST

/* tests/data/gguf/tiny.gguf, written by tools/convert/gguf_write.py (see the
 * README there): the Python writer and this parser agree. */
static const char *data_dir(void) {
  const char *dir = getenv("LZN_TEST_DATA");
  return dir && *dir ? dir : "tests/data";
}

/* Rounding to the nearest step errs by half a step d; the scale itself is
 * rounded to fp16 (relative 2^-11), which moves a weight q * d by up to
 * 127 * d * 2^-11 < 0.07 d for Q8_0. Q4_0's clamp at 15 makes the far end
 * err by a whole step, plus 8 * d * 2^-11. */
#define Q8_0_MAX_ERROR_IN_STEPS 0.57
#define Q4_0_MAX_ERROR_IN_STEPS 1.01

/* The quantized ramp (arange(128) / 16 - 4) dequantizes back within the bound. */
static void check_dequantized(const lzn_file_tensor *t) {
  const unsigned char *p = t->data;
  const int q8 = t->dtype == LZN_WEIGHTS_Q8_0;
  const size_t block_bytes = q8 ? 34 : 18;
  for (int b = 0; b < 4; b++, p += block_bytes) {
    const float d = lzn_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
    for (int j = 0; j < 32; j++) {
      const int q = q8 ? (int8_t)p[2 + j] : (j < 16 ? p[2 + j] & 0x0f : p[2 + j - 16] >> 4) - 8;
      const float x = (float)(b * 32 + j) / 16.0f - 4.0f;
      const double bound = (q8 ? Q8_0_MAX_ERROR_IN_STEPS : Q4_0_MAX_ERROR_IN_STEPS) * fabs(d);
      ck_assert_msg(fabs(d * q - x) <= bound, "%s block %d weight %d: %g, want %g", t->name, b, j, d * q, x);
    }
  }
}

START_TEST(python_writer_file) {
  char path[512];
  snprintf(path, sizeof path, "%s/gguf/tiny.gguf", data_dir());
  lzn_gguf_file f;
  ck_assert_msg(lzn_gguf_open(path, 1, &f) == LZN_OK, "%s", lzn_last_error());
  ck_assert_str_eq(f.magic, "GGUF");
  ck_assert_uint_eq(f.alignment, 64);
  lzn_gguf_string s;
  ck_assert_int_eq(lzn_gguf_get_string(&f, "general.architecture", &s), LZN_OK);
  ck_assert(s.len == 5 && memcmp(s.data, "llama", 5) == 0);
  uint32_t u32;
  ck_assert_int_eq(lzn_gguf_get_u32(&f, "llama.block_count", &u32), LZN_OK);
  ck_assert_uint_eq(u32, 2);
  int32_t i32;
  ck_assert_int_eq(lzn_gguf_get_i32(&f, "test.int", &i32), LZN_OK);
  ck_assert_int_eq(i32, -42);
  float f32;
  ck_assert_int_eq(lzn_gguf_get_f32(&f, "llama.attention.layer_norm_rms_epsilon", &f32), LZN_OK);
  ck_assert(f32 == 1e-5f);
  int flag;
  ck_assert_int_eq(lzn_gguf_get_bool(&f, "test.flag", &flag), LZN_OK);
  ck_assert_int_eq(flag, 1);
  uint64_t u64;
  ck_assert_int_eq(lzn_gguf_get_u64(&f, "test.u64", &u64), LZN_OK);
  ck_assert(u64 == 1ull << 40);
  double f64;
  ck_assert_int_eq(lzn_gguf_get_f64(&f, "test.f64", &f64), LZN_OK);
  ck_assert(f64 == 0.25);
  const lzn_gguf_kv *a;
  ck_assert_int_eq(lzn_gguf_get_array(&f, "tokenizer.ggml.tokens", LZN_GGUF_STRING, &a), LZN_OK);
  ck_assert_uint_eq(a->n, 3);
  ck_assert(lzn_gguf_elem_string(a, 2).len == 3 && memcmp(lzn_gguf_elem_string(a, 2).data, "abc", 3) == 0);
  ck_assert_int_eq(lzn_gguf_get_array(&f, "tokenizer.ggml.scores", LZN_GGUF_F32, &a), LZN_OK);
  ck_assert(a->n == 3 && lzn_gguf_elem_f32(a, 1) == -1.5f);
  ck_assert_int_eq(lzn_gguf_get_array(&f, "tokenizer.ggml.token_type", LZN_GGUF_I32, &a), LZN_OK);
  ck_assert(a->n == 3 && lzn_gguf_elem_i32(a, 0) == 3);

  /* The generator's tensors: F32 arange(12) as [3, 4], F16 [5], Q8_0 / Q4_0
   * [2, 64] quantized from arange(128) / 16 - 4, BF16 [2] (see gguf_write.py). */
  const lzn_file_tensor *t = lzn_gguf_find_tensor(&f, "f32.weight");
  ck_assert_ptr_nonnull(t);
  ck_assert(t->dtype == LZN_WEIGHTS_F32 && t->n_dims == 2 && t->shape[0] == 3 && t->shape[1] == 4);
  for (int i = 0; i < 12; i++) ck_assert(lzn_wtype_element(LZN_WEIGHTS_F32, t->data, (size_t)i) == (float)i);
  t = lzn_gguf_find_tensor(&f, "f16.weight");
  ck_assert_ptr_nonnull(t);
  ck_assert(t->dtype == LZN_WEIGHTS_F16 && t->n_dims == 1 && t->shape[0] == 5 && t->n_bytes == 10);
  ck_assert(lzn_wtype_element(LZN_WEIGHTS_F16, t->data, 4) == -2.0f);
  t = lzn_gguf_find_tensor(&f, "q8_0.weight");
  ck_assert_ptr_nonnull(t);
  ck_assert(t->dtype == LZN_WEIGHTS_Q8_0 && t->shape[0] == 2 && t->shape[1] == 64 && t->n_bytes == 2 * 2 * 34);
  /* Block 0 holds -4 .. -2.0625: scale 4 / 127, and the first weight -127. */
  const unsigned char *q8 = t->data;
  ck_assert_int_eq((int8_t)q8[2], -127);
  check_dequantized(t);
  t = lzn_gguf_find_tensor(&f, "q4_0.weight");
  ck_assert_ptr_nonnull(t);
  ck_assert(t->dtype == LZN_WEIGHTS_Q4_0 && t->shape[0] == 2 && t->shape[1] == 64 && t->n_bytes == 2 * 2 * 18);
  /* Block 0's largest magnitude is -4 -> d = -4 / -8 = 0.5, q = -4 / 0.5 + 8 = 0. */
  const unsigned char *q4 = t->data;
  ck_assert_uint_eq(q4[2] & 0x0f, 0);
  check_dequantized(t);
  t = lzn_gguf_find_tensor(&f, "bf16.weight");
  ck_assert_ptr_nonnull(t);
  ck_assert(t->dtype == LZN_WEIGHTS_BF16 && t->n_dims == 1 && t->shape[0] == 2 && t->n_bytes == 4);
  ck_assert(lzn_wtype_element(LZN_WEIGHTS_BF16, t->data, 1) == -3.0f);
  ck_assert_uint_eq(f.n_tensors, 5);
  for (size_t i = 0; i < f.n_tensors; i++) ck_assert_uint_eq(f.tensors[i].data_offset % 64, 0);
  lzn_gguf_close(&f);
}
END_TEST

static Suite *gguf_suite(void) {
  Suite *s = suite_create("gguf");
  TCase *bad = tcase_create("malformed");
  tcase_add_loop_test(bad, malformed_file_fails, 0, (int)(sizeof malformed / sizeof malformed[0]));
  tcase_add_test(bad, every_truncation_fails);
  tcase_add_test(bad, every_byte_corruption_is_safe);
  tcase_add_test(bad, alignment_64_misaligned_at_32);
  suite_add_tcase(s, bad);
  TCase *good = tcase_create("valid");
  tcase_add_test(good, every_value_type_round_trips);
  tcase_add_test(good, getter_type_mismatch_is_format);
  tcase_add_test(good, every_tensor_type_alignment_32);
  tcase_add_test(good, every_tensor_type_alignment_64);
  tcase_add_test(good, k_quant_tensors);
  tcase_add_test(good, powerinfer_magic);
  tcase_add_test(good, no_tensors_no_padding);
  tcase_add_test(good, invalid_utf8_name_accepted);
  tcase_add_test(good, many_entries_are_indexed);
  tcase_add_test(good, close_is_safe);
  tcase_add_test(good, open_from_disk);
  tcase_add_test(good, python_writer_file);
  suite_add_tcase(s, good);
  return s;
}

int main(void) { return run_suite(gguf_suite()); }
