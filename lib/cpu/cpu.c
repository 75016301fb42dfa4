/*
 * cpu.c: which ISAs this CPU *and* OS support, from CPUID and XCR0.
 *
 * A CPU flag is not enough: AVX and AVX-512 registers are usable only if the
 * OS saves them on a context switch, which XCR0 (read with xgetbv) reports.
 * AVX needs XCR0 bits 1-2 (SSE, AVX state); AVX-512 also bits 5-7 (opmask,
 * upper ZMM0-15, ZMM16-31). Without that check a VM or an OS with AVX-512
 * disabled would SIGILL (ggml's CPU scorer has a FIXME for exactly this).
 * Each AVX-512 extension (BF16, VNNI) is checked on its own: a CPU may have
 * AVX-512 without BF16 (Skylake-X, Ice Lake), and a file compiled for BF16
 * must never run there.
 */
#include "cpu/cpu.h"

#include <stdio.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define LZN_X86 1
#else
#define LZN_X86 0
#endif

#if LZN_X86
static uint64_t read_xcr0(void) {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return ((uint64_t)edx << 32) | eax;
}

#define BIT(reg, n) (((reg) >> (n)) & 1u)
#endif

unsigned lzn_cpu_supported_isas(void) {
  unsigned supported = 1u << LZN_ISA_SCALAR;
#if LZN_X86
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return supported;
  const int osxsave = BIT(ecx, 27), avx = BIT(ecx, 28), fma = BIT(ecx, 12), f16c = BIT(ecx, 29);
  if (!osxsave || !avx) return supported;
  const uint64_t xcr0 = read_xcr0();
  const int os_avx = (xcr0 & 0x6) == 0x6;
  const int os_avx512 = (xcr0 & 0xe6) == 0xe6;
  if (__get_cpuid_max(0, NULL) < 7) return supported;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const int avx2 = BIT(ebx, 5);
  const int avx512f = BIT(ebx, 16), avx512dq = BIT(ebx, 17);
  const int avx512bw = BIT(ebx, 30), avx512vl = BIT(ebx, 31);
  const int avx512vnni = BIT(ecx, 11);
  __cpuid_count(7, 1, eax, ebx, ecx, edx);
  const int avxvnni = BIT(eax, 4), avx512bf16 = BIT(eax, 5);

  const int base_avx2 = os_avx && avx2 && fma && f16c;
  const int base_avx512 = base_avx2 && os_avx512 && avx512f && avx512dq && avx512bw && avx512vl;
  if (base_avx2) supported |= 1u << LZN_ISA_AVX2;
  if (base_avx2 && avxvnni) supported |= 1u << LZN_ISA_AVXVNNI;
  if (base_avx512) supported |= 1u << LZN_ISA_AVX512;
  if (base_avx512 && avx512bf16) supported |= 1u << LZN_ISA_AVX512BF16;
  if (base_avx512 && avx512vnni) supported |= 1u << LZN_ISA_AVX512VNNI;
#endif
  return supported;
}

static const char *const isa_names[LZN_ISA_COUNT] = {
    [LZN_ISA_SCALAR] = "scalar",         [LZN_ISA_AVX2] = "avx2",
    [LZN_ISA_AVXVNNI] = "avxvnni",       [LZN_ISA_AVX512] = "avx512",
    [LZN_ISA_AVX512BF16] = "avx512bf16", [LZN_ISA_AVX512VNNI] = "avx512vnni",
};

const char *lzn_isa_to_name(enum lzn_isa isa) {
  return (unsigned)isa < LZN_ISA_COUNT ? isa_names[isa] : "?";
}

int lzn_isa_from_name(const char *name) {
  for (int i = 0; i < LZN_ISA_COUNT; i++)
    if (strcmp(name, isa_names[i]) == 0) return i;
  return -1;
}

LZN_API const char *lzn_isa_name_at(int index) {
  return index >= 0 && index < LZN_ISA_COUNT ? isa_names[index] : NULL;
}

/* A 48 KiB L1D marks the cores measured faster with the rows' next lines
 * in L1 (Zen 5; Intel since Ice Lake / Golden Cove have 48 KiB too, not
 * measured); the 32 KiB core measured (Zen 4) ran the block types' GEMV
 * at half the DRAM rate that way (our reading: the loads' L1 misses queue
 * behind the prefetches', which hold L1's miss slots for a DRAM round
 * trip; not L1's capacity, which a smaller working set did not help).
 * kernels.h has the numbers. */
#define LZN_L1D_BYTES_FOR_L1_PREFETCH (48 * 1024)

enum lzn_prefetch_level lzn_prefetch_level_for_l1d(long l1d_bytes) {
  return l1d_bytes > 0 && l1d_bytes < LZN_L1D_BYTES_FOR_L1_PREFETCH ? LZN_PREFETCH_L2 : LZN_PREFETCH_L1;
}

enum lzn_prefetch_level lzn_cpu_prefetch_level(void) {
  /* glibc reads it from CPUID (leaf 4 or 0x8000001D); 0 or -1 if unknown. */
  return lzn_prefetch_level_for_l1d(sysconf(_SC_LEVEL1_DCACHE_SIZE));
}

const char *lzn_prefetch_level_name(enum lzn_prefetch_level level) {
  return level == LZN_PREFETCH_L2 ? "l2" : "l1";
}

lzn_status lzn_prefetch_resolve(const char *forced, enum lzn_prefetch_level detected,
                                enum lzn_prefetch_level *level, char *why, size_t why_size) {
  *level = detected;
  if (forced == NULL || forced[0] == '\0') return LZN_OK;
  if (strcmp(forced, "l1") == 0 || strcmp(forced, "l2") == 0) {
    *level = forced[1] == '2' ? LZN_PREFETCH_L2 : LZN_PREFETCH_L1;
    return LZN_OK;
  }
  snprintf(why, why_size, "LZN_PREFETCH=\"%.64s\" is neither l1 nor l2", forced);
  return LZN_ERR_ISA;
}
