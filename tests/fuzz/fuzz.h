/*
 * fuzz.h: the libFuzzer entry point every harness defines, declared so the
 * harnesses build with -Wmissing-prototypes, and so replay.c can call it.
 */
#ifndef LZN_FUZZ_H
#define LZN_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Runs one input; returns 0 (libFuzzer reserves other values). A bug shows
 * as a sanitizer report or an abort(), never as a return value. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An oracle: aborts, naming the broken property, when ok is false. Used for
 * what the sanitizers cannot see (a parser that says OK to a bad result). */
#define FUZZ_CHECK(ok)                                                             \
  do {                                                                             \
    if (!(ok)) {                                                                   \
      fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #ok); \
      abort();                                                                     \
    }                                                                              \
  } while (0)

#endif /* LZN_FUZZ_H */
