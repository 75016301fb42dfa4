/*
 * version.c: the linked library's version. LZN_VERSION_* in lazyneuron.h is
 * the one place it is written: the Makefile (soname, pkg-config) and the
 * Python package (python/setup.py) read it from there.
 */
#include "lazyneuron.h"

LZN_API unsigned lzn_version_number(void) { return LZN_VERSION_NUMBER; }

#define LZN_STR2(x) #x
#define LZN_STR(x) LZN_STR2(x)
LZN_API const char *lzn_version_string(void) {
  return LZN_STR(LZN_VERSION_MAJOR) "." LZN_STR(LZN_VERSION_MINOR) "." LZN_STR(LZN_VERSION_PATCH);
}
