/*
 * replay.c: runs a harness's LLVMFuzzerTestOneInput on files, without
 * libFuzzer, so `make test` replays the corpora and the regressions with the
 * normal compiler (and under the asan/ubsan builds, with their sanitizers).
 *
 *   replay FILE_OR_DIR...   each file once; a folder's files, sorted
 *
 * Exits 0 when every input ran (a bug aborts or is reported by a sanitizer),
 * 1 when an argument cannot be read.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* The whole file in an allocation of exactly its size (so ASan sees an
 * overread of the input, as under libFuzzer). */
static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    return 1;
  }
  size_t cap = 4096, size = 0;
  uint8_t *data = malloc(cap);
  size_t got;
  while (data != NULL && (got = fread(data + size, 1, cap - size, f)) > 0) {
    size += got;
    if (size == cap) {
      uint8_t *grown = realloc(data, cap *= 2);
      if (grown == NULL) free(data);
      data = grown;
    }
  }
  const int failed = data == NULL || ferror(f);
  fclose(f);
  if (failed) {
    fprintf(stderr, "%s: cannot read\n", path);
    free(data);
    return 1;
  }
  uint8_t *exact = malloc(size ? size : 1);
  if (exact == NULL) {
    free(data);
    return 1;
  }
  memcpy(exact, data, size);
  free(data);
  LLVMFuzzerTestOneInput(exact, size);
  free(exact);
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of a folder (not recursive), in name order. */
static int run_dir(const char *dir, int *n_run) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    perror(dir);
    return 1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  int failed = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) {
      char **grown = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
      if (grown == NULL) {
        failed = 1;
        break;
      }
      names = grown;
    }
    const size_t len = strlen(dir) + 1 + strlen(e->d_name) + 1;
    if ((names[n] = malloc(len)) == NULL) {
      failed = 1;
      break;
    }
    snprintf(names[n++], len, "%s/%s", dir, e->d_name);
  }
  closedir(d);
  if (n) qsort(names, n, sizeof *names, by_name);
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    if (!failed && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
      failed |= run_file(names[i]);
      (*n_run)++;
    }
    free(names[i]);
  }
  free(names);
  return failed;
}

int main(int argc, char **argv) {
  int failed = 0, n_run = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
      failed |= run_dir(argv[i], &n_run);
    } else {
      failed |= run_file(argv[i]);
      n_run++;
    }
  }
  printf("%s: %d input(s) replayed%s\n", argv[0], n_run, failed ? ", some unreadable" : "");
  return failed;
}
