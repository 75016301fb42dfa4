/*
 * test_pool.c: the thread pool of a context (lib/linalg/pool.h): every item
 * runs exactly once, on a thread index in range, over many jobs back to
 * back (lagging workers must never take an item of a newer job); a slow
 * item delays only itself; workers that keep straggling are left out for a
 * while; a NULL pool runs everything on the caller.
 * Under `make tsan` the same runs check the pool's synchronisation.
 */
#include <stdatomic.h>
#include <time.h>

#include "linalg/pool.h"
#include "testutil.h"

#define MAX_ITEMS 257

typedef struct counts {
  _Atomic int runs[MAX_ITEMS];
  _Atomic int bad_thread;
  int threads;
  int slow_item; /* sleeps 20 ms, or -1 */
} counts;

static void count_item(void *arg, int item, int thread) {
  counts *c = arg;
  atomic_fetch_add(&c->runs[item], 1);
  if (thread < 0 || thread >= c->threads) atomic_store(&c->bad_thread, 1);
  if (item == c->slow_item) nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
}

/* One assertion per job: Check reports every passing one to its parent. */
static void check_once(counts *c, int n) {
  int wrong = -1, times = 0;
  for (int i = 0; i < MAX_ITEMS; i++) {
    const int r = atomic_load(&c->runs[i]);
    if (r != (i < n) && wrong < 0) wrong = i, times = r;
    atomic_store(&c->runs[i], 0);
  }
  if (wrong >= 0 || atomic_load(&c->bad_thread))
    ck_abort_msg("item %d of %d ran %d times (bad thread index: %d)", wrong, n, times, atomic_load(&c->bad_thread));
}

START_TEST(every_item_once_over_many_jobs) {
  const int threads = 1 + _i; /* 1 .. 4 */
  lzn_pool *pool = NULL;
  ck_assert_int_eq(lzn_pool_create(threads, &pool), LZN_OK);
  ck_assert_int_eq(lzn_pool_threads(pool), threads);
  static counts c;
  c.threads = threads, c.slow_item = -1;
  test_rng rng = {0x9001u + (uint64_t)_i};
  for (int job = 0; job < 20000; job++) {
    const int n = (int)rng_below(&rng, MAX_ITEMS + 1);
    const int max_threads = 1 + (int)rng_below(&rng, (uint64_t)threads + 1);
    lzn_pool_run(pool, n, max_threads, count_item, &c);
    check_once(&c, n);
  }
  lzn_pool_free(pool);
}
END_TEST

/* An item that takes long holds back only itself: the other items finish
 * on the other threads meanwhile, and the call returns when it is done. */
START_TEST(a_slow_item_delays_only_itself) {
  lzn_pool *pool = NULL;
  ck_assert_int_eq(lzn_pool_create(2, &pool), LZN_OK);
  static counts c;
  c.threads = 2, c.slow_item = 3;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  lzn_pool_run(pool, 64, 2, count_item, &c);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  check_once(&c, 64);
  const double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
  ck_assert_msg(ms >= 19.0, "returned after %.1f ms, before the slow item was done", ms);
  lzn_pool_free(pool);
}
END_TEST

/* Workers the OS keeps taking away, played by items that sleep 2 ms on a
 * worker and take 50 us on the caller: the caller waits on them for most
 * of every region, so after a window of such regions the pool goes on
 * with one thread fewer (every item still run once, none on a worker),
 * and tries the worker again some hundreds of regions later. */
static _Atomic int items_on_workers;

static void slow_on_workers(void *arg, int item, int thread) {
  count_item(arg, item, thread);
  if (thread != 0) {
    atomic_fetch_add(&items_on_workers, 1);
    nanosleep(&(struct timespec){0, 2 * 1000 * 1000}, NULL);
  } else {
    nanosleep(&(struct timespec){0, 50 * 1000}, NULL);
  }
}

START_TEST(straggling_workers_are_left_out_for_a_while) {
  lzn_pool *pool = NULL;
  ck_assert_int_eq(lzn_pool_create(2, &pool), LZN_OK);
  ck_assert_int_eq(lzn_pool_threads_in_use(pool), 2);
  static counts c;
  c.threads = 2, c.slow_item = -1;
  int job = 0;
  for (; job < 1000 && lzn_pool_threads_in_use(pool) == 2; job++) {
    lzn_pool_run(pool, 8, 2, slow_on_workers, &c);
    check_once(&c, 8);
  }
  ck_assert_msg(lzn_pool_threads_in_use(pool) == 1, "still 2 threads after %d regions of straggling", job);
  ck_assert_msg(job <= 2 * 64, "took %d regions to leave the worker out (one window is 64)", job);
  ck_assert_int_gt(atomic_load(&items_on_workers), 0);
  atomic_store(&items_on_workers, 0);
  for (int k = 0; k < 100; k++) {
    lzn_pool_run(pool, 8, 2, count_item, &c);
    check_once(&c, 8);
  }
  ck_assert_int_eq(atomic_load(&items_on_workers), 0);
  ck_assert_int_eq(lzn_pool_threads_in_use(pool), 1);
  for (int k = 0; k < 1000 && lzn_pool_threads_in_use(pool) == 1; k++) {
    lzn_pool_run(pool, 8, 2, count_item, &c);
    check_once(&c, 8);
  }
  ck_assert_msg(lzn_pool_threads_in_use(pool) == 2, "the worker was never tried again");
  lzn_pool_free(pool);
}
END_TEST

START_TEST(no_pool_runs_on_the_caller) {
  static counts c;
  c.threads = 1, c.slow_item = -1;
  lzn_pool_run(NULL, 100, 8, count_item, &c);
  check_once(&c, 100);
  ck_assert_int_eq(lzn_pool_threads(NULL), 1);
  lzn_pool_free(NULL);
}
END_TEST

static Suite *pool_suite(void) {
  Suite *s = suite_create("pool");
  TCase *tc = tcase_create("pool");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, every_item_once_over_many_jobs, 0, 4);
  tcase_add_test(tc, a_slow_item_delays_only_itself);
  tcase_add_test(tc, straggling_workers_are_left_out_for_a_while);
  tcase_add_test(tc, no_pool_runs_on_the_caller);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(pool_suite()); }
