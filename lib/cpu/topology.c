/*
 * topology.c: how many threads a call should use by default: the physical
 * cores this process may run on (llama.cpp's default is the physical cores
 * too; hyper-threads share a core's load and FMA ports, so a decode step
 * memory-bound on one core gains nothing from its sibling).
 *
 * "May run on" is the affinity mask (sched_getaffinity: taskset, cgroup
 * cpusets, a container's --cpuset-cpus), not the host's CPU count. The
 * logical CPUs of the mask are grouped by core through sysfs
 * (/sys/devices/system/cpu/cpuN/topology/{physical_package_id,core_id}):
 * siblings of one core count once. Without sysfs (or for a CPU whose
 * files cannot be read) each logical CPU counts as a core of its own.
 */
#include "cpu/topology.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* lazyneuron.h promises at most this many (the largest n_threads a context takes). */
#define LZN_DEFAULT_THREADS_MAX 1024

/* One integer from a small sysfs file; -1 if it cannot be read. */
static long read_long(const char *root, int cpu, const char *leaf) {
  char path[512];
  snprintf(path, sizeof path, "%s/cpu%d/topology/%s", root, cpu, leaf);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  long v = -1;
  if (fscanf(f, "%ld", &v) != 1) v = -1;
  fclose(f);
  return v;
}

int lzn_count_physical_cores(const cpu_set_t *mask, const char *sysfs_cpu_root) {
  /* (package, core) of each CPU counted so far; at most CPU_SETSIZE. */
  static const int max_cpus = CPU_SETSIZE;
  long *seen = malloc(sizeof *seen * 2 * (size_t)max_cpus);
  int n_cores = 0, n_logical = 0;
  for (int cpu = 0; cpu < max_cpus; cpu++) {
    if (!CPU_ISSET(cpu, mask)) continue;
    n_logical++;
    const long package = read_long(sysfs_cpu_root, cpu, "physical_package_id");
    const long core = read_long(sysfs_cpu_root, cpu, "core_id");
    int known = 0;
    if (seen && package >= 0 && core >= 0) {
      for (int i = 0; i < n_cores && !known; i++)
        known = seen[2 * i] == package && seen[2 * i + 1] == core;
      if (!known) seen[2 * n_cores] = package, seen[2 * n_cores + 1] = core;
    } else if (seen) { /* unreadable: a core of its own, never equal to a real one */
      seen[2 * n_cores] = -1 - cpu, seen[2 * n_cores + 1] = -1;
    }
    if (!known) n_cores++;
  }
  free(seen);
  if (seen == NULL) return n_logical > 0 ? n_logical : 1;
  return n_cores > 0 ? n_cores : 1;
}

LZN_API int lzn_default_thread_count(void) {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  int n;
  if (sched_getaffinity(0, sizeof mask, &mask) == 0) {
    n = lzn_count_physical_cores(&mask, "/sys/devices/system/cpu");
  } else { /* no affinity call (never on Linux): the online CPUs */
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    n = online > 0 ? (int)online : 1;
  }
  return n > LZN_DEFAULT_THREADS_MAX ? LZN_DEFAULT_THREADS_MAX : n;
}
