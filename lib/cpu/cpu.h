/*
 * cpu.h: CPU feature detection and the kernel table in use. Private.
 *
 * lzn_kernels_get() is what the library calls: the table chosen once per
 * process (pthread_once, the library's only global mutable state) from what
 * this machine supports, LZN_ISA and LZN_PREFETCH. The rest are pure functions so tests
 * and lzn-bench can build the table any ISA would give.
 */
#ifndef LZN_CPU_H
#define LZN_CPU_H

#include <stddef.h>
#include <string.h>

#include "kernels/kernels.h"
#include "lazyneuron.h"

/* Bit i set: this CPU and OS support enum lzn_isa value i (CPUID + XCR0). */
unsigned lzn_cpu_supported_isas(void);

/* "scalar", "avx2", ... for an enum lzn_isa; "?" for another value. */
const char *lzn_isa_to_name(enum lzn_isa isa);
/* The enum lzn_isa of a name, or -1. */
int lzn_isa_from_name(const char *name);

/* Bit i set: kernels/ has at least one file for ISA i compiled in. */
unsigned lzn_isa_compiled(void);

/* The row and attention kernels' prefetch level (kernels.h) for a CPU whose L1 data
 * cache holds l1d_bytes: L2 below 48 KiB, else L1, and L1 when the size is
 * unknown (<= 0). lzn_cpu_prefetch_level: this CPU's. */
enum lzn_prefetch_level lzn_prefetch_level_for_l1d(long l1d_bytes);
enum lzn_prefetch_level lzn_cpu_prefetch_level(void);
/* "l1" or "l2", the names LZN_PREFETCH takes. */
const char *lzn_prefetch_level_name(enum lzn_prefetch_level level);
/* The level for LZN_PREFETCH value `forced` (NULL or "" = detected). On
 * LZN_ERR_ISA (a value other than l1 or l2), why says why. */
lzn_status lzn_prefetch_resolve(const char *forced, enum lzn_prefetch_level detected,
                                enum lzn_prefetch_level *level, char *why, size_t why_size);

/* The table that the ceiling gives on a machine supporting `supported`:
 * the ref/ kernels, then every compiled ISA <= ceiling in supported, in
 * enum order, each row and attention kernel in its build for `prefetch`. Never leaves a
 * slot NULL but the optional ones (gemm kernels a type lacks, the packed
 * slot: kernels/gemm.h). */
void lzn_kernel_table_fill(enum lzn_isa ceiling, unsigned supported, enum lzn_prefetch_level prefetch,
                           lzn_kernel_table *out);

/* The ceiling for LZN_ISA value `forced` (NULL or "" = the best ISA that is
 * supported and compiled). On LZN_ERR_ISA, why says why. */
lzn_status lzn_isa_resolve(const char *forced, unsigned supported, enum lzn_isa *ceiling,
                           char *why, size_t why_size);

/* The kernel table in use. Fails with LZN_ERR_ISA, and a message, when
 * LZN_ISA cannot be honoured. */
lzn_status lzn_kernels_get(const lzn_kernel_table **out);

#endif /* LZN_CPU_H */
