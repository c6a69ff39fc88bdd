/*
 * Confinement: a process given limits or masked / read-only paths must not be
 * able to lift them, even as root. Without this, root inside the process
 * leaves its cgroup (`echo $$ > /sys/fs/cgroup/pids/cgroup.procs`: root owns
 * the file, no capability is involved), unmounts its masks and remounts its
 * read-only paths read-write.
 *
 *   --confine     the process is confined (the daemon passes it for limits held
 *                 in a cgroup and for masked or read-only paths)
 *   --subreaper   PR_SET_CHILD_SUBREAPER on the process that waits for the
 *                 command's descendants (the command itself, or the PTY keeper),
 *                 so that orphans (double forks, `setsid -f`) stay in the tree
 *                 where the daemon finds them; used where no cgroup tracks the tree
 *
 * With --confine:
 *   - after joining its cgroups the launcher enters a cgroup namespace, so
 *     /proc/self/cgroup shows the run's cgroup as "/" and, on cgroup v2, the
 *     kernel refuses moves to cgroups outside it;
 *   - it gets a private mount namespace in which every cgroup and cgroup2
 *     mount is read-only, so cgroup.procs and the limit files cannot be
 *     written however the process got them named;
 *   - the command loses these capabilities from every set (bounding, effective,
 *     permitted, inheritable, ambient), so neither it nor a setuid program it
 *     runs can get them back:
 *       CAP_SYS_ADMIN        mount, umount, remount, setns, a fresh cgroupfs mount
 *       CAP_SETFCAP          mapping uid 0 into a new user namespace, whose root
 *                            could mount the cgroup hierarchy afresh and, owning
 *                            its files, write the limits (the kernel asks for
 *                            CAP_SETFCAP since 5.12)
 *       CAP_SYS_PTRACE       /proc/<pid>/root of the daemon or any other process
 *                            (another mount namespace with writable cgroupfs and
 *                            nothing masked), and ptrace of processes holding
 *                            capabilities it lacks
 *       CAP_DAC_READ_SEARCH  open_by_handle_at, which opens a masked file by its
 *                            handle through the filesystem's root
 *       CAP_SYS_MODULE, CAP_SYS_RAWIO   kernel modules, /dev/mem, raw I/O ports
 * Whenever rlimits are set (with or without --confine), CAP_SYS_RESOURCE goes
 * too: it would let the command raise a hard limit again. None of this applies
 * with --user-ns for a uid other than 0: what root holds there is confined to
 * its own namespace by the kernel (mounts made outside are locked, cgroupfs
 * belongs to host root), and it keeps it.
 *
 * Failure stage: "cgroupns" (unshare), "cgroupfs" (remounting read-only); a
 * capability asked for with --caps-add that confinement takes away is refused
 * at stage "caps".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "launcher.h"

#define BIT(c) (1ULL << (c))

void opt_confine(const char *a) {
  (void)a;
  L.confine = 1;
  L.mount_ns = 1;
}

void opt_subreaper(const char *a) {
  (void)a;
  L.subreaper = 1;
}

uint64_t confine_drop_mask(void) {
  /* Root of a user namespace that is not root outside holds nothing over the host's mounts,
   * cgroupfs (owned by host root) or rlimits: the kernel confines it, and it keeps what it
   * holds in its own namespace (unshare -m works there). */
  if (L.user_ns && L.user_ns_outside_uid != 0) return 0;
  uint64_t drop = 0;
  if (L.confine)
    drop |= BIT(CAP_SYS_ADMIN) | BIT(CAP_SETFCAP) | BIT(CAP_SYS_PTRACE) | BIT(CAP_DAC_READ_SEARCH) | BIT(CAP_SYS_MODULE) | BIT(CAP_SYS_RAWIO);
  if (L.n_rlimits) drop |= BIT(CAP_SYS_RESOURCE);
  return drop;
}

void enter_cgroup_namespace(void) {
  if (!L.confine || L.n_cgroups == 0) return;
  if (unshare(CLONE_NEWCGROUP) != 0) fail("cgroupns", NULL, errno, EXIT_SETUP);
}

/* Mount points in /proc/self/mountinfo escape space, tab, newline and backslash as \ooo. */
static void unescape(char *s) {
  char *out = s;
  for (char *p = s; *p; p++) {
    if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
      *out++ = (char)(((p[1] - '0') << 6) | ((p[2] - '0') << 3) | (p[3] - '0'));
      p += 3;
    } else *out++ = *p;
  }
  *out = 0;
}

void readonly_cgroupfs(void) {
  if (!L.confine) return;
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) fail("cgroupfs", "/proc/self/mountinfo", errno, EXIT_SETUP);
  /* Collected first: remounting changes mountinfo while it is read. */
  char *points[MAX_PATHS];
  size_t n = 0;
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    /* id parent major:minor root mount-point options [optional...] - fstype source super-options */
    char *sep = strstr(line, " - ");
    if (!sep) continue;
    char fstype[16];
    if (sscanf(sep + 3, "%15s", fstype) != 1) continue;
    if (strcmp(fstype, "cgroup") != 0 && strcmp(fstype, "cgroup2") != 0) continue;
    char *field = line;
    for (int i = 0; i < 4 && field; i++) {
      field = strchr(field, ' ');
      if (field) field++;
    }
    if (!field) continue;
    char *end = strchr(field, ' ');
    if (!end) continue;
    *end = 0;
    if (n >= MAX_PATHS) fail("cgroupfs", "too many cgroup mounts", E2BIG, EXIT_SETUP);
    points[n] = strdup(field);
    if (!points[n]) fail("cgroupfs", NULL, ENOMEM, EXIT_SETUP);
    unescape(points[n++]);
  }
  free(line);
  fclose(f);
  for (size_t i = 0; i < n; i++) {
    remount_readonly(points[i], "cgroupfs");
    free(points[i]);
  }
}
