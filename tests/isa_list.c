/* isa_list.c: prints the ISAs this machine can run (CPU, OS and build), one
 * per line, so that `make test` runs every suite once per ISA. */
#include <stdio.h>

#include "lazyneuron.h"

int main(void) {
  const char *names[] = {"scalar", "avx2", "avxvnni", "avx512", "avx512bf16", "avx512vnni"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (lzn_isa_supported(names[i])) puts(names[i]);
  return 0;
}
