/* isa_list.c: prints the ISAs this machine can run, one per line, so that
 * `make test` runs every suite once per ISA. */
#include <stdio.h>

#include "lazyneuron.h"

int main(void) {
  const char *names[] = {"scalar", "avx2", "avx512"};
  for (int i = 0; i < 3; i++)
    if (lzn_isa_supported(names[i])) puts(names[i]);
  return 0;
}
