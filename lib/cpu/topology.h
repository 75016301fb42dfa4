/*
 * topology.h: physical cores of an affinity mask, for the default thread
 * count (lzn_default_thread_count in lazyneuron.h). Private.
 */
#ifndef LZN_TOPOLOGY_H
#define LZN_TOPOLOGY_H

#include <sched.h>

#include "lazyneuron.h"

/* The cores of the CPUs in mask: logical CPUs grouped by (package, core)
 * as sysfs_cpu_root/cpuN/topology/{physical_package_id,core_id} say
 * ("/sys/devices/system/cpu"; tests pass a tree of their own). A CPU whose
 * files cannot be read counts as a core of its own. At least 1. */
int lzn_count_physical_cores(const cpu_set_t *mask, const char *sysfs_cpu_root);

#endif /* LZN_TOPOLOGY_H */
