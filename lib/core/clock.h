/*
 * clock.h: wall-clock time for the per-block timings and the cost model.
 */
#ifndef LZN_CLOCK_H
#define LZN_CLOCK_H

/* Monotonic wall-clock seconds. */
double lzn_now_seconds(void);

#endif /* LZN_CLOCK_H */
