/*
 * test_topology.c: lzn_default_thread_count, the physical cores of the
 * affinity mask (lib/cpu/topology.c): siblings of one core counted once,
 * cores of other packages apart, CPUs outside the mask ignored, and a
 * process pinned to one CPU gets 1 whatever the host has.
 */
#include <check.h>
#include <sched.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cpu/topology.h"
#include "testfiles.h"
#include "testutil.h"

/* A fake sysfs: cpuN/topology/{physical_package_id,core_id}. */
static void fake_cpu(const char *root, int cpu, int package, int core) {
  char path[600];
  snprintf(path, sizeof path, "%s/cpu%d", root, cpu);
  ck_assert_int_eq(mkdir(path, 0700), 0);
  snprintf(path, sizeof path, "%s/cpu%d/topology", root, cpu);
  ck_assert_int_eq(mkdir(path, 0700), 0);
  const char *leaf[2] = {"physical_package_id", "core_id"};
  const int value[2] = {package, core};
  for (int i = 0; i < 2; i++) {
    if (value[i] < 0) continue; /* unreadable */
    snprintf(path, sizeof path, "%s/cpu%d/topology/%s", root, cpu, leaf[i]);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%d\n", value[i]);
    fclose(f);
  }
}

static cpu_set_t mask_of(const int *cpus, int n) {
  cpu_set_t m;
  CPU_ZERO(&m);
  for (int i = 0; i < n; i++) CPU_SET(cpus[i], &m);
  return m;
}

START_TEST(siblings_count_once) {
  char root[512];
  make_folder(root, sizeof root, "sys");
  /* Package 0: core 0 = cpus 0, 4 (hyper-threads), core 1 = cpus 1, 5;
   * package 1: core 0 = cpu 2 (the same core_id, another package);
   * cpu 3: no topology files (counts as a core of its own). */
  fake_cpu(root, 0, 0, 0), fake_cpu(root, 4, 0, 0);
  fake_cpu(root, 1, 0, 1), fake_cpu(root, 5, 0, 1);
  fake_cpu(root, 2, 1, 0);
  fake_cpu(root, 3, -1, -1);
  const struct {
    int cpus[8], n, cores;
  } rows[] = {
      {{0, 1, 2, 3, 4, 5}, 6, 4},
      {{0, 4}, 2, 1},
      {{0, 1}, 2, 2},
      {{4, 5}, 2, 2},
      {{0, 2}, 2, 2},
      {{3}, 1, 1},
      {{0, 4, 1, 5}, 4, 2},
      {{6, 7}, 2, 2}, /* CPUs sysfs does not know: one core each */
      {{0}, 0, 1},    /* an empty mask: still 1 */
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    const cpu_set_t m = mask_of(rows[i].cpus, rows[i].n);
    ck_assert_msg(lzn_count_physical_cores(&m, root) == rows[i].cores, "row %zu: %d cores, expected %d", i,
                  lzn_count_physical_cores(&m, root), rows[i].cores);
  }
}
END_TEST

START_TEST(default_is_within_the_mask) {
  cpu_set_t m;
  CPU_ZERO(&m);
  ck_assert_int_eq(sched_getaffinity(0, sizeof m, &m), 0);
  const int n = lzn_default_thread_count();
  ck_assert_int_ge(n, 1);
  ck_assert_int_le(n, CPU_COUNT(&m));
}
END_TEST

/* Pinned to one CPU (as taskset or a container would), in a child so the
 * test process keeps its mask. */
START_TEST(pinned_process_gets_one) {
  cpu_set_t m;
  CPU_ZERO(&m);
  ck_assert_int_eq(sched_getaffinity(0, sizeof m, &m), 0);
  int first = 0;
  while (!CPU_ISSET(first, &m)) first++;
  const pid_t child = fork();
  ck_assert_int_ge(child, 0);
  if (child == 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) _exit(3);
    _exit(lzn_default_thread_count() == 1 ? 0 : 1);
  }
  int status;
  ck_assert_int_eq(waitpid(child, &status, 0), child);
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

static Suite *topology_suite(void) {
  Suite *s = suite_create("topology");
  TCase *t = tcase_create("threads");
  tcase_add_unchecked_fixture(t, make_tmp_root, remove_tmp_root);
  tcase_add_test(t, siblings_count_once);
  tcase_add_test(t, default_is_within_the_mask);
  tcase_add_test(t, pinned_process_gets_one);
  suite_add_tcase(s, t);
  return s;
}

int main(void) { return run_suite(topology_suite()); }
