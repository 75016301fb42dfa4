/*
 * pool.c: a context's threads (linalg/pool.h).
 *
 * A call ("job") is published by bumping a generation; its items are taken
 * with a compare-and-swap on one 64-bit cursor that holds the generation
 * (high half) and the next item (low half), so a worker that wakes late,
 * still holding an older generation, can never take an item of a newer job.
 * Jobs alternate between two slots: the slot of generation g is written
 * again only for g + 2, which cannot be published before every item of g+1
 * (and so of g) is done, so a worker that took an item of g reads its slot
 * whole. The caller waits for items done, never for workers to check in: a
 * worker the OS has descheduled costs nothing unless it holds an item.
 */
#include "linalg/pool.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/errors.h"

/* How long a waiting thread spins before it sleeps, in TSC ticks (~100 us
 * at 2-4 GHz): the gap between two regions of one decode step is far
 * shorter, the gap between calls of an idle context far longer. */
#define SPIN_TICKS (1ull << 18)

/* Threads the OS takes away (issue 22). Dynamic items bound what a
 * descheduled worker costs to the item it holds, but on a shared machine
 * that item is held for a whole time slice of the other process (~1-3 ms,
 * against a decode region of ~0.1-1 ms), and it happens over and over:
 * measured, 2 threads with a busy loop on the other core decode slower
 * than 1 thread beside the same loop (7B Q4_0: 5.19 against 5.69 t/s;
 * opt-125m: 77 against 87). So the caller keeps score: over each window
 * of regions, the time it waited for workers' items after finishing its
 * own, against the window's whole time. Past STRAGGLE_LIMIT the pool uses
 * one thread fewer for a while, then tries again (each failed try doubles
 * the while, up to a cap; a good window resets it). An idle machine never
 * comes near the limit: there a region ends within about one item of
 * the caller's last, a few % of the window. */
#define STRAGGLE_WINDOW 64
#define STRAGGLE_LIMIT 0.35
#define BACKOFF_MIN_REGIONS 512
#define BACKOFF_MAX_REGIONS 32768

/* A job's fields are atomics read relaxed: a worker lagging two
 * generations behind may read a slot while the caller rewrites it, and it
 * acts on what it read only after its compare-and-swap on the cursor has
 * proved the slot is its generation's (and so whole). */
typedef struct pool_job {
  _Atomic(lzn_pool_fn) fn;
  _Atomic(void *) arg;
  _Atomic uint32_t n_items;
  _Atomic uint32_t max_workers;
} pool_job;

#define RELAXED(x) atomic_load_explicit(&(x), memory_order_relaxed)

struct lzn_pool {
  int n_workers;
  pthread_t *threads;
  pool_job jobs[2];          /* generation g uses jobs[g & 1] */
  uint32_t published;        /* the caller's last generation (only the caller touches it) */
  _Atomic uint64_t cursor;   /* generation << 32 | next item */
  _Atomic uint32_t generation; /* futex word the workers wait on */
  _Atomic uint32_t done;     /* items finished in the current generation; the caller's futex word */
  _Atomic uint32_t joined;   /* workers that joined the current generation */
  _Atomic int sleepers;      /* workers asleep on generation */
  _Atomic int caller_asleep;
  _Atomic int stop;
  /* The straggler score (only the caller touches these): threads in use
   * (limit), the current window's ticks of the caller's own work and of
   * waiting, its regions, the regions left at this limit before a try of
   * one more thread, and the wait before the next try. */
  int limit;
  uint64_t window_work, window_wait;
  int window_regions;
  int64_t backoff_left, backoff;
};

static void futex_wait(_Atomic uint32_t *word, uint32_t expected) {
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word, int n) {
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

static inline void cpu_relax(void) { __builtin_ia32_pause(); }

static inline uint64_t ticks(void) { return __builtin_ia32_rdtsc(); }

/* Takes items of generation g until none is left (or a newer job began). */
static void take_items(lzn_pool *pool, uint32_t g, int thread) {
  pool_job *job = &pool->jobs[g & 1];
  for (;;) {
    uint64_t cur = atomic_load_explicit(&pool->cursor, memory_order_acquire);
    if ((uint32_t)(cur >> 32) != g || (uint32_t)cur >= RELAXED(job->n_items)) return;
    if (!atomic_compare_exchange_weak_explicit(&pool->cursor, &cur, cur + 1, memory_order_acq_rel,
                                               memory_order_relaxed))
      continue;
    RELAXED(job->fn)(RELAXED(job->arg), (int)(uint32_t)cur, thread);
    const uint32_t finished = atomic_fetch_add_explicit(&pool->done, 1, memory_order_acq_rel) + 1;
    if (finished == RELAXED(job->n_items) && atomic_load(&pool->caller_asleep)) futex_wake(&pool->done, 1);
  }
}

/* A worker: waits for a generation it has not seen, spinning first. */
typedef struct worker_start {
  lzn_pool *pool;
  int thread;
} worker_start;

static void *worker(void *arg) {
  const worker_start start = *(worker_start *)arg;
  free(arg);
  lzn_pool *pool = start.pool;
  uint32_t seen = 0;
  for (;;) {
    uint32_t g = atomic_load_explicit(&pool->generation, memory_order_acquire);
    if (g == seen) {
      const uint64_t until = ticks() + SPIN_TICKS;
      while ((g = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen && ticks() < until)
        cpu_relax();
      while (g == seen && !atomic_load(&pool->stop)) {
        atomic_fetch_add(&pool->sleepers, 1);
        if (atomic_load(&pool->generation) == seen) futex_wait(&pool->generation, seen);
        atomic_fetch_sub(&pool->sleepers, 1);
        g = atomic_load_explicit(&pool->generation, memory_order_acquire);
      }
    }
    if (atomic_load(&pool->stop)) return NULL;
    seen = g;
    if (atomic_fetch_add(&pool->joined, 1) < RELAXED(pool->jobs[g & 1].max_workers)) take_items(pool, g, start.thread);
  }
}

lzn_status lzn_pool_create(int n_threads, lzn_pool **out) {
  *out = NULL;
  lzn_pool *pool = calloc(1, sizeof *pool);
  if (pool == NULL) return lzn_fail(LZN_ERR_NOMEM, "lzn_context_create: out of memory for a thread pool");
  const int workers = n_threads > 1 ? n_threads - 1 : 0;
  pool->threads = calloc((size_t)(workers ? workers : 1), sizeof *pool->threads);
  if (pool->threads == NULL) {
    free(pool);
    return lzn_fail(LZN_ERR_NOMEM, "lzn_context_create: out of memory for a thread pool");
  }
  for (int i = 0; i < workers; i++) {
    worker_start *start = malloc(sizeof *start);
    if (start) *start = (worker_start){pool, i + 1};
    if (start == NULL || pthread_create(&pool->threads[i], NULL, worker, start) != 0) {
      free(start);
      lzn_pool_free(pool);
      return lzn_fail(LZN_ERR_NOMEM, "lzn_context_create: cannot start thread %d of %d", i + 2, n_threads);
    }
    pool->n_workers = i + 1;
  }
  pool->limit = workers + 1;
  pool->backoff = BACKOFF_MIN_REGIONS;
  *out = pool;
  return LZN_OK;
}

void lzn_pool_free(lzn_pool *pool) {
  if (pool == NULL) return;
  atomic_store(&pool->stop, 1);
  atomic_fetch_add(&pool->generation, 1);
  futex_wake(&pool->generation, INT_MAX);
  for (int i = 0; i < pool->n_workers; i++) pthread_join(pool->threads[i], NULL);
  free(pool->threads);
  free(pool);
}

int lzn_pool_threads(const lzn_pool *pool) { return pool ? pool->n_workers + 1 : 1; }

int lzn_pool_threads_in_use(const lzn_pool *pool) { return pool ? pool->limit : 1; }

/* After a region at the current limit that took work + wait ticks: closes
 * the window when it is full, and lowers the limit past STRAGGLE_LIMIT. */
static void score_region(lzn_pool *pool, uint64_t work, uint64_t wait) {
  pool->window_work += work, pool->window_wait += wait;
  if (++pool->window_regions < STRAGGLE_WINDOW) return;
  const double waited = (double)pool->window_wait / (double)(pool->window_work + pool->window_wait + 1);
  pool->window_work = pool->window_wait = 0, pool->window_regions = 0;
  if (waited <= STRAGGLE_LIMIT) {
    if (pool->backoff_left == 0) pool->backoff = BACKOFF_MIN_REGIONS; /* not a try, or a good one */
    return;
  }
  if (pool->limit <= 1) return;
  pool->limit--;
  pool->backoff_left = pool->backoff;
  pool->backoff = pool->backoff * 2 < BACKOFF_MAX_REGIONS ? pool->backoff * 2 : BACKOFF_MAX_REGIONS;
}

/* Counts a region at a lowered limit down to the next try of one more
 * thread. */
static void count_backoff(lzn_pool *pool) {
  if (pool->backoff_left > 0 && --pool->backoff_left == 0 && pool->limit <= pool->n_workers) {
    pool->limit++;
    pool->window_work = pool->window_wait = 0, pool->window_regions = 0;
  }
}

static void run_on_caller(int n_items, lzn_pool_fn fn, void *arg) {
  for (int i = 0; i < n_items; i++) fn(arg, i, 0);
}

void lzn_pool_run(lzn_pool *pool, int n_items, int max_threads, lzn_pool_fn fn, void *arg) {
  if (n_items <= 0) return;
  if (pool == NULL || pool->n_workers == 0 || max_threads <= 1 || n_items == 1) {
    run_on_caller(n_items, fn, arg);
    return;
  }
  count_backoff(pool);
  if (max_threads > pool->limit) max_threads = pool->limit;
  if (max_threads <= 1) {
    run_on_caller(n_items, fn, arg);
    return;
  }
  const uint64_t start = ticks();
  const uint32_t g = ++pool->published;
  pool_job *job = &pool->jobs[g & 1];
  atomic_store_explicit(&job->fn, fn, memory_order_relaxed);
  atomic_store_explicit(&job->arg, arg, memory_order_relaxed);
  atomic_store_explicit(&job->n_items, (uint32_t)n_items, memory_order_relaxed);
  atomic_store_explicit(&job->max_workers, (uint32_t)(max_threads - 1), memory_order_relaxed);
  atomic_store(&pool->done, 0);
  atomic_store(&pool->joined, 0);
  atomic_store_explicit(&pool->cursor, (uint64_t)g << 32, memory_order_release);
  atomic_store(&pool->generation, g);
  if (atomic_load(&pool->sleepers) > 0) futex_wake(&pool->generation, INT_MAX);
  take_items(pool, g, 0);
  const uint64_t own_done = ticks();
  /* The rest are in workers' hands: wait for them to be done. */
  const uint32_t n = (uint32_t)n_items;
  uint32_t d = atomic_load_explicit(&pool->done, memory_order_acquire);
  const uint64_t until = ticks() + SPIN_TICKS;
  while (d < n && ticks() < until) {
    cpu_relax();
    d = atomic_load_explicit(&pool->done, memory_order_acquire);
  }
  while (d < n) {
    atomic_store(&pool->caller_asleep, 1);
    if ((d = atomic_load(&pool->done)) < n) futex_wait(&pool->done, d);
    atomic_store(&pool->caller_asleep, 0);
    d = atomic_load_explicit(&pool->done, memory_order_acquire);
  }
  if (max_threads == pool->limit) score_region(pool, own_done - start, ticks() - own_done);
}

/* ------------------------------------------------------------- lending */

lzn_pool *lzn_pool_borrow(lzn_pool_lender *lender, int n_threads) {
  if (n_threads <= 1) return NULL;
  for (int i = 0; i < LZN_POOL_LENDER_SLOTS; i++) {
    lzn_pool_slot *slot = &lender->slot[i];
    int t = atomic_load_explicit(&slot->n_threads, memory_order_acquire);
    if (t == 0 && atomic_compare_exchange_strong(&slot->n_threads, &t, n_threads)) {
      /* Claimed: make its pool for the calls after this one. */
      lzn_pool *pool = NULL;
      (void)lzn_pool_create(n_threads, &pool); /* on failure pool stays NULL: own pools only */
      atomic_store_explicit(&slot->pool, pool, memory_order_release);
      return NULL;
    }
    if (t != n_threads) continue;
    int free_ = 0;
    if (!atomic_compare_exchange_strong_explicit(&slot->held, &free_, 1, memory_order_acquire, memory_order_relaxed))
      return NULL;
    lzn_pool *pool = atomic_load_explicit(&slot->pool, memory_order_acquire);
    if (pool == NULL) atomic_store_explicit(&slot->held, 0, memory_order_release); /* not made (yet) */
    return pool;
  }
  return NULL;
}

void lzn_pool_return(lzn_pool_lender *lender, lzn_pool *pool) {
  for (int i = 0; i < LZN_POOL_LENDER_SLOTS; i++)
    if (atomic_load_explicit(&lender->slot[i].pool, memory_order_relaxed) == pool)
      atomic_store_explicit(&lender->slot[i].held, 0, memory_order_release);
}

void lzn_pool_lender_free(lzn_pool_lender *lender) {
  for (int i = 0; i < LZN_POOL_LENDER_SLOTS; i++) lzn_pool_free(atomic_load(&lender->slot[i].pool));
}
