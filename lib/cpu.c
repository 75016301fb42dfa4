/*
 * cpu.c: which kernels this machine runs, decided once.
 *
 * A CPU flag is not enough: AVX and AVX-512 registers are usable only if the
 * OS saves them on a context switch, which XCR0 (read with xgetbv) reports.
 * AVX2 needs XCR0 bits 1-2 (SSE, AVX state); AVX-512 also bits 5-7 (opmask,
 * upper ZMM0-15, ZMM16-31). Without that check a VM or an OS with AVX-512
 * disabled would SIGILL (ggml's CPU scorer has a FIXME for exactly this).
 *
 * The choice is made once per process with pthread_once: the only global
 * mutable state of the library. LZN_ISA forces a choice; an unknown or
 * unsupported name is remembered as an error and reported by every call that
 * needs kernels, never replaced by a silent fallback.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define LZN_X86 1
#else
#define LZN_X86 0
#endif

#include "internal.h"

#ifndef LZN_HAVE_AVX2
#define LZN_HAVE_AVX2 0
#endif
#ifndef LZN_HAVE_AVX512
#define LZN_HAVE_AVX512 0
#endif

/* Best first: the first entry the machine supports is the default. */
static const lzn_kernels *const implementations[] = {
#if LZN_HAVE_AVX512
    &lzn_kernels_avx512,
#endif
#if LZN_HAVE_AVX2
    &lzn_kernels_avx2,
#endif
    &lzn_kernels_scalar,
};
#define N_IMPLEMENTATIONS (sizeof implementations / sizeof implementations[0])

static const char *const known_isa_names[] = {"scalar", "avx2", "avx512"};

#if LZN_X86
static uint64_t read_xcr0(void) {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return ((uint64_t)edx << 32) | eax;
}
#endif

/* Bit i set: the CPU and the OS support enum lzn_isa value i. */
static unsigned detect_supported(void) {
  unsigned supported = 1u << LZN_ISA_SCALAR;
#if LZN_X86
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return supported;
  const int osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1;
  const int fma = (ecx >> 12) & 1, f16c = (ecx >> 29) & 1;
  if (!osxsave || !avx) return supported;
  const uint64_t xcr0 = read_xcr0();
  const int os_avx = (xcr0 & 0x6) == 0x6;
  const int os_avx512 = (xcr0 & 0xe6) == 0xe6;
  if (__get_cpuid_max(0, NULL) < 7) return supported;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const int avx2 = (ebx >> 5) & 1;
  const int avx512f = (ebx >> 16) & 1, avx512dq = (ebx >> 17) & 1;
  const int avx512bw = (ebx >> 30) & 1, avx512vl = (ebx >> 31) & 1;
  if (os_avx && avx2 && fma && f16c) supported |= 1u << LZN_ISA_AVX2;
  if (os_avx && os_avx512 && avx2 && fma && f16c && avx512f && avx512dq && avx512bw && avx512vl)
    supported |= 1u << LZN_ISA_AVX512;
#endif
  return supported;
}

static struct {
  const lzn_kernels *kernels; /* NULL when the choice failed */
  unsigned supported;         /* bit mask of enum lzn_isa */
  char error[256];            /* why kernels is NULL */
} dispatch;
static pthread_once_t dispatch_once = PTHREAD_ONCE_INIT;

static int isa_from_name(const char *name) {
  for (size_t i = 0; i < sizeof known_isa_names / sizeof known_isa_names[0]; i++)
    if (strcmp(name, known_isa_names[i]) == 0) return (int)i;
  return -1;
}

static const lzn_kernels *implementation_for(int isa) {
  for (size_t i = 0; i < N_IMPLEMENTATIONS; i++)
    if ((int)implementations[i]->isa == isa) return implementations[i];
  return NULL;
}

lzn_status lzn_isa_resolve(const char *forced, unsigned supported, const lzn_kernels **out,
                           char *why, size_t why_size) {
  *out = NULL;
  if (forced == NULL || forced[0] == '\0') {
    for (size_t i = 0; i < N_IMPLEMENTATIONS; i++)
      if (supported & (1u << implementations[i]->isa)) {
        *out = implementations[i];
        return LZN_OK;
      }
    snprintf(why, why_size, "no kernel set is supported (not even scalar)");
    return LZN_ERR_ISA;
  }
  const int isa = isa_from_name(forced);
  const char *reason = NULL;
  if (isa < 0) reason = "is not a known ISA (scalar, avx2, avx512)";
  else if (!(supported & (1u << isa))) reason = "is not supported by this CPU and OS (CPUID/XCR0)";
  else if (implementation_for(isa) == NULL) reason = "was not compiled in (the compiler lacked its flags)";
  if (reason) {
    /* Truncate the echoed value: the message must stay readable. */
    snprintf(why, why_size, "LZN_ISA=\"%.64s\" %s", forced, reason);
    return LZN_ERR_ISA;
  }
  *out = implementation_for(isa);
  return LZN_OK;
}

static void choose_kernels(void) {
  dispatch.supported = detect_supported();
  lzn_isa_resolve(getenv("LZN_ISA"), dispatch.supported, &dispatch.kernels, dispatch.error,
                  sizeof dispatch.error);
}

lzn_status lzn_kernels_get(const lzn_kernels **out) {
  pthread_once(&dispatch_once, choose_kernels);
  *out = dispatch.kernels;
  if (dispatch.kernels == NULL) return lzn_fail(LZN_ERR_ISA, "%s", dispatch.error);
  return LZN_OK;
}

LZN_API const char *lzn_isa_name(void) {
  const lzn_kernels *k;
  return lzn_kernels_get(&k) == LZN_OK ? k->name : NULL;
}

LZN_API int lzn_isa_supported(const char *name) {
  if (name == NULL) return 0;
  pthread_once(&dispatch_once, choose_kernels);
  const int isa = isa_from_name(name);
  return isa >= 0 && (dispatch.supported & (1u << isa)) && implementation_for(isa) != NULL;
}
