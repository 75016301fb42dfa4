/*
 * dispatch.c: the kernel table, filled slot by slot (kernels/kernels.h).
 *
 * The kernel files compiled in are listed by the Makefile in
 * build/gen/kernel_files.h as LZN_KERNEL_FILE(ISA, folder, part) lines, so
 * a new file needs no edit here. The table is built once per process with
 * pthread_once. LZN_ISA forces a ceiling, LZN_PREFETCH=l1|l2 the row
 * kernels' prefetch level (kernels.h); an unknown or unsupported name is
 * remembered as an error and reported by every call that needs kernels,
 * never replaced by a silent fallback, and never run (no SIGILL).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/errors.h"
#include "cpu/cpu.h"

#define LZN_KERNEL_FILE(ISA, folder, part) void lzn_install_##folder##_##part(lzn_kernel_table *t);
#include "kernel_files.h"
#undef LZN_KERNEL_FILE

typedef struct kernel_file {
  enum lzn_isa isa;
  void (*install)(lzn_kernel_table *t);
} kernel_file;

static const kernel_file kernel_files[] = {
#define LZN_KERNEL_FILE(ISA, folder, part) {LZN_ISA_##ISA, lzn_install_##folder##_##part},
#include "kernel_files.h"
#undef LZN_KERNEL_FILE
};
#define N_KERNEL_FILES (sizeof kernel_files / sizeof kernel_files[0])

unsigned lzn_isa_compiled(void) {
  unsigned compiled = 0;
  for (size_t i = 0; i < N_KERNEL_FILES; i++) compiled |= 1u << kernel_files[i].isa;
  return compiled;
}

void lzn_kernel_table_fill(enum lzn_isa ceiling, unsigned supported, enum lzn_prefetch_level prefetch,
                           lzn_kernel_table *out) {
  memset(out, 0, sizeof *out);
  out->isa = ceiling;
  out->prefetch = prefetch;
  out->name = lzn_isa_to_name(ceiling);
  supported |= 1u << LZN_ISA_SCALAR; /* the reference runs anywhere */
  for (int isa = LZN_ISA_SCALAR; isa <= (int)ceiling; isa++) {
    if (!(supported & (1u << isa))) continue;
    for (size_t i = 0; i < N_KERNEL_FILES; i++)
      if ((int)kernel_files[i].isa == isa) kernel_files[i].install(out);
  }
}

lzn_status lzn_isa_resolve(const char *forced, unsigned supported, enum lzn_isa *ceiling,
                           char *why, size_t why_size) {
  const unsigned usable = supported & lzn_isa_compiled();
  *ceiling = LZN_ISA_SCALAR;
  if (forced == NULL || forced[0] == '\0') {
    for (int isa = LZN_ISA_COUNT - 1; isa >= 0; isa--)
      if (usable & (1u << isa)) {
        *ceiling = (enum lzn_isa)isa;
        return LZN_OK;
      }
    snprintf(why, why_size, "no kernel set is compiled in (not even ref/)");
    return LZN_ERR_ISA;
  }
  const int isa = lzn_isa_from_name(forced);
  const char *reason = NULL;
  if (isa < 0)
    reason = "is not a known ISA (scalar, avx2, avxvnni, avx512, avx512bf16, avx512vnni: lzn_isa_name_at)";
  else if (!(supported & (1u << isa)))
    reason = "is not supported by this CPU and OS (CPUID/XCR0)";
  else if (!(lzn_isa_compiled() & (1u << isa)))
    reason = "has no kernels compiled in (the compiler lacked its flags)";
  if (reason) {
    /* Truncate the echoed value: the message must stay readable. */
    snprintf(why, why_size, "LZN_ISA=\"%.64s\" %s", forced, reason);
    return LZN_ERR_ISA;
  }
  *ceiling = (enum lzn_isa)isa;
  return LZN_OK;
}

static struct {
  lzn_kernel_table table;
  int ok;
  unsigned supported; /* bit mask of enum lzn_isa */
  char error[256];    /* why ok is 0 */
} dispatch;
static pthread_once_t dispatch_once = PTHREAD_ONCE_INIT;

static void choose_kernels(void) {
  enum lzn_isa ceiling;
  enum lzn_prefetch_level prefetch;
  dispatch.supported = lzn_cpu_supported_isas();
  if (lzn_isa_resolve(getenv("LZN_ISA"), dispatch.supported, &ceiling, dispatch.error,
                      sizeof dispatch.error) != LZN_OK ||
      lzn_prefetch_resolve(getenv("LZN_PREFETCH"), lzn_cpu_prefetch_level(), &prefetch, dispatch.error,
                           sizeof dispatch.error) != LZN_OK)
    return;
  lzn_kernel_table_fill(ceiling, dispatch.supported, prefetch, &dispatch.table);
  dispatch.ok = 1;
}

lzn_status lzn_kernels_get(const lzn_kernel_table **out) {
  pthread_once(&dispatch_once, choose_kernels);
  *out = dispatch.ok ? &dispatch.table : NULL;
  if (!dispatch.ok) return lzn_fail(LZN_ERR_ISA, "%s", dispatch.error);
  return LZN_OK;
}

LZN_API const char *lzn_isa_name(void) {
  const lzn_kernel_table *k;
  return lzn_kernels_get(&k) == LZN_OK ? k->name : NULL;
}

LZN_API int lzn_isa_supported(const char *name) {
  if (name == NULL) return 0;
  pthread_once(&dispatch_once, choose_kernels);
  const int isa = lzn_isa_from_name(name);
  return isa >= 0 && (dispatch.supported & lzn_isa_compiled() & (1u << isa));
}
