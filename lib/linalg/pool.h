/*
 * pool.h: the threads of a context's calls. Private.
 *
 * Why not OpenMP's parallel for: at a static schedule every thread owns its
 * share, so a step waits for the slowest thread; when another process takes
 * one of the cores, that thread runs only between the OS's time slices and
 * every parallel region of a decode step waits for one (measured: opt-125m
 * decode fell from 93 t/s on one thread to 1.5 t/s on two with a busy loop
 * on the other core). Here the work is items that any thread takes, one at
 * a time, in order: a thread the OS has taken away delays at most the one
 * item it holds, and the caller, which works too, does the rest. Workers
 * spin briefly between calls (a decode step is many short regions back to
 * back) and then sleep on a futex, so an idle context costs nothing.
 * Where workers keep being descheduled anyway (a busy neighbour), the
 * caller notices that it spends its regions waiting on them and goes on
 * with fewer threads for a while (lzn_pool_threads_in_use).
 *
 * Results never depend on the thread count or on who ran an item: an item
 * is a fixed piece of work (rows, a column slice of y, a part of the rows
 * summed into its own buffer) whose result is combined in a fixed order.
 */
#ifndef LZN_LINALG_POOL_H
#define LZN_LINALG_POOL_H

#include <stdatomic.h>

#include "lazyneuron.h"

typedef struct lzn_pool lzn_pool;

/* A pool for calls of up to n_threads threads: the caller and
 * n_threads - 1 workers (none for 1). Statuses: OK, NOMEM. */
lzn_status lzn_pool_create(int n_threads, lzn_pool **out);
/* Stops and joins the workers; NULL is a no-op. */
void lzn_pool_free(lzn_pool *pool);

/* The threads a call may use (1 for a NULL pool). */
int lzn_pool_threads(const lzn_pool *pool);

/* The threads the pool uses now: fewer than lzn_pool_threads while its
 * workers are being descheduled (another process on the cores: pool.c
 * says how it tells), for a while, then it tries one more again. */
int lzn_pool_threads_in_use(const lzn_pool *pool);

/* One item; thread is 0 for the caller and 1 .. threads - 1 for the
 * workers (an index for per-thread scratch). */
typedef void (*lzn_pool_fn)(void *arg, int item, int thread);

/* Runs fn(arg, item, thread) once for every item in [0, n_items) on the caller and
 * at most max_threads - 1 workers (max_threads <= 1 or n_items <= 1: the
 * caller alone), and returns when every item is done. Items start in
 * increasing order. Not reentrant: fn must not run the same pool. */
void lzn_pool_run(lzn_pool *pool, int n_items, int max_threads, lzn_pool_fn fn, void *arg);

/* Pools that the contexts of one model lend each other, one per thread
 * count (a field of the model; all zero, from calloc, is empty). A call
 * runs on the shared pool of its thread count when no other call holds
 * it, else on its context's own. So contexts used in turn from one thread
 * (a server's slots, a loop over sequences) keep one set of workers busy,
 * instead of a set per context each spinning ~100 us after its call on the
 * cores the next context needs (16 contexts of a 4-layer d = 128 model
 * stepping in turn at 2 threads: 3.7 ms against 1.1 at one thread;
 * bench/RESULTS.md, 2026-12-06, late). Contexts in different threads at
 * once still run in parallel: one borrows the shared pool, the others
 * their own. Results never depend on which pool ran them. */
#define LZN_POOL_LENDER_SLOTS 4

typedef struct lzn_pool_slot {
  _Atomic int n_threads;       /* 0: free; else the thread count, claimed once */
  _Atomic(lzn_pool *) pool;    /* NULL until made (and if making it failed) */
  _Atomic int held;            /* 1 while a call runs on it */
} lzn_pool_slot;

typedef struct lzn_pool_lender {
  lzn_pool_slot slot[LZN_POOL_LENDER_SLOTS];
} lzn_pool_lender;

/* The shared pool of n_threads if no call holds it, for one call; NULL
 * (the caller runs on its own pool) when it is held, when n_threads <= 1,
 * and on the first call for a thread count, which makes it (a failure to
 * make it only leaves the calls on their own pools). Safe from any thread.
 * Give it back with lzn_pool_return. */
lzn_pool *lzn_pool_borrow(lzn_pool_lender *lender, int n_threads);
void lzn_pool_return(lzn_pool_lender *lender, lzn_pool *pool);
/* Stops the shared pools (no call may hold one). */
void lzn_pool_lender_free(lzn_pool_lender *lender);

#endif /* LZN_LINALG_POOL_H */
