/*
 * internal.h: what every file of lib/ shares. Private to the library.
 */
#ifndef LZN_INTERNAL_H
#define LZN_INTERNAL_H

#include "lazyneuron.h"
#include "../kernels/kernels.h"

/* Records a printf-style message as this thread's lzn_last_error() and
 * returns status, so a failure reads: return lzn_fail(LZN_ERR_IO, "...", ...). */
lzn_status lzn_fail(lzn_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The kernel table in use (chosen once: best supported, or LZN_ISA). Fails
 * with LZN_ERR_ISA, and a message, when LZN_ISA cannot be honoured. */
lzn_status lzn_kernels_get(const lzn_kernels **out);

/* The decision behind lzn_kernels_get, as a pure function so tests can try
 * any CPU: the kernels for LZN_ISA value forced (NULL or "" = best of
 * supported, a bit mask of enum lzn_isa). On LZN_ERR_ISA, why says why. */
lzn_status lzn_isa_resolve(const char *forced, unsigned supported, const lzn_kernels **out,
                           char *why, size_t why_size);

/* y[0..d) += sum_t coef[t] * w_t[idx[t] * d + 0..d), with up to n_threads
 * OpenMP threads each owning a slice of y (ops.c). Arguments already checked. */
void lzn_sparse_down_run(const lzn_kernels *k, float *y, size_t d, const float *w_t,
                         const int32_t *idx, const float *coef, size_t n, int n_threads);

/* Largest thread count a caller may ask for; beyond it is surely a mistake. */
#define LZN_MAX_THREADS 1024

#endif /* LZN_INTERNAL_H */
