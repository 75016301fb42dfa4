/*
 * testfiles.h: helpers for the suites that read files: JSON written with '
 * for ", error-message checks, and one temporary folder per run (header-only,
 * like testutil.h: each suite is one .c file and one binary).
 */
#ifndef LZN_TESTFILES_H
#define LZN_TESTFILES_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lazyneuron.h"
#include "testutil.h"

/* JSON written with ' for " so the tests stay readable. */
static inline char *quoted(const char *text) {
  char *s = strdup(text);
  ck_assert_ptr_nonnull(s);
  for (char *p = s; *p; p++)
    if (*p == '\'') *p = '"';
  return s;
}

static inline void assert_mentions(int line, const char *what, const char *const *words) {
  const char *message = lzn_last_error();
  for (size_t i = 0; words[i] != NULL; i++)
    ck_assert_msg(strstr(message, words[i]) != NULL,
                  "line %d (%s): message \"%s\" does not mention \"%s\"", line, what, message, words[i]);
}

/* One temporary folder for the whole run, made in the parent before Check
 * forks the tests and removed after them; each test works in a subfolder. */
static char tmp_root[64];

static inline void make_tmp_root(void) {
  snprintf(tmp_root, sizeof tmp_root, "/tmp/lzn_test_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmp_root));
}

static inline int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static inline void remove_tmp_root(void) {
  if (tmp_root[0] != '\0') nftw(tmp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* tmp_root/sub/name (name may be NULL for the folder itself). */
static inline const char *tmp_path(char *buf, size_t cap, const char *sub, const char *name) {
  snprintf(buf, cap, "%s/%s%s%s", tmp_root, sub, name ? "/" : "", name ? name : "");
  return buf;
}

static inline const char *make_folder(char *buf, size_t cap, const char *sub) {
  tmp_path(buf, cap, sub, NULL);
  ck_assert_msg(mkdir(buf, 0700) == 0, "mkdir %s", buf);
  return buf;
}

static inline void write_bytes(const char *sub, const char *name, const void *bytes, size_t size) {
  char path[512];
  FILE *file = fopen(tmp_path(path, sizeof path, sub, name), "wb");
  ck_assert_msg(file != NULL, "cannot create %s", path);
  ck_assert_uint_eq(fwrite(bytes, 1, size, file), size);
  ck_assert_int_eq(fclose(file), 0);
}

static inline void write_text(const char *sub, const char *name, const char *text) {
  char *json = quoted(text);
  write_bytes(sub, name, json, strlen(json));
  free(json);
}

#endif /* LZN_TESTFILES_H */
