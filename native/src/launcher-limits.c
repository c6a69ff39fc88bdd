/*
 * Resource limits, applied before anything of the command runs: the launcher
 * moves itself into the process's cgroups (so the command and everything it
 * forks is accounted and limited from its first instruction), then sets
 * rlimits, which exec keeps.
 *
 *   --cgroup-procs PATH      a cgroup.procs file to write our pid into (repeatable:
 *                            one per cgroup v1 hierarchy, or the one v2 cgroup)
 *   --rlimit NAME=SOFT:HARD  setrlimit (repeatable); NAME is as, cpu, nofile, nproc,
 *                            fsize, core, data, stack or memlock; a value may be "unlimited"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "launcher.h"

static const struct {
  const char *name;
  int resource;
} RLIMIT_NAMES[] = {
  {"as", RLIMIT_AS},       {"cpu", RLIMIT_CPU},   {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC}, {"fsize", RLIMIT_FSIZE},
  {"core", RLIMIT_CORE},   {"data", RLIMIT_DATA}, {"stack", RLIMIT_STACK},   {"memlock", RLIMIT_MEMLOCK},
};

void opt_cgroup_procs(const char *a) {
  if (L.n_cgroups >= MAX_PATHS) usage("too many --cgroup-procs", NULL);
  if (a[0] != '/') usage("--cgroup-procs wants an absolute path", a);
  L.cgroup_procs[L.n_cgroups++] = a;
}

static uint64_t parse_limit(const char *s) {
  if (strcmp(s, "unlimited") == 0) return (uint64_t)RLIM_INFINITY;
  return parse_u64(s, 10);
}

void opt_rlimit(const char *a) {
  if (L.n_rlimits >= MAX_RLIMITS) usage("too many --rlimit", NULL);
  const char *eq = strchr(a, '=');
  const char *colon = eq ? strchr(eq, ':') : NULL;
  if (!eq || !colon) usage("--rlimit wants NAME=SOFT:HARD", a);
  struct rlimit_req *r = &L.rlimits[L.n_rlimits];
  r->resource = -1;
  for (size_t i = 0; i < sizeof RLIMIT_NAMES / sizeof RLIMIT_NAMES[0]; i++)
    if (strlen(RLIMIT_NAMES[i].name) == (size_t)(eq - a) && strncmp(a, RLIMIT_NAMES[i].name, (size_t)(eq - a)) == 0)
      r->resource = RLIMIT_NAMES[i].resource;
  if (r->resource < 0) usage("unknown rlimit", a);
  char soft[32];
  size_t n = (size_t)(colon - eq - 1);
  if (n == 0 || n >= sizeof soft) usage("--rlimit wants NAME=SOFT:HARD", a);
  memcpy(soft, eq + 1, n);
  soft[n] = 0;
  r->soft = parse_limit(soft);
  r->hard = parse_limit(colon + 1);
  if (r->soft > r->hard) usage("--rlimit soft limit above hard limit", a);
  L.n_rlimits++;
}

void join_cgroups(void) {
  char pid[24];
  int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  for (size_t i = 0; i < L.n_cgroups; i++) {
    int fd = open(L.cgroup_procs[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail("cgroup", L.cgroup_procs[i], errno, EXIT_SETUP);
    ssize_t w;
    do w = write(fd, pid, (size_t)n);
    while (w < 0 && errno == EINTR);
    if (w != n) fail("cgroup", L.cgroup_procs[i], w < 0 ? errno : EIO, EXIT_SETUP);
    close(fd);
  }
}

void apply_rlimits(void) {
  for (size_t i = 0; i < L.n_rlimits; i++) {
    struct rlimit rl = {(rlim_t)L.rlimits[i].soft, (rlim_t)L.rlimits[i].hard};
    if (setrlimit(L.rlimits[i].resource, &rl) != 0) {
      const char *name = "?";
      for (size_t k = 0; k < sizeof RLIMIT_NAMES / sizeof RLIMIT_NAMES[0]; k++)
        if (RLIMIT_NAMES[k].resource == L.rlimits[i].resource) name = RLIMIT_NAMES[k].name;
      fail("rlimit", name, errno, EXIT_SETUP);
    }
  }
}
