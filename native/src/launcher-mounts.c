/*
 * Read-only and masked paths, visible to this process (and what it forks)
 * only: the launcher enters a private mount namespace whose mounts do not
 * propagate back to the daemon's, then
 *   - a masked file gets /dev/null bound over it (reads are empty, writes vanish),
 *   - a masked directory gets an empty read-only tmpfs over it,
 *   - a read-only path is bound onto itself and made read-only, with every
 *     mount beneath it (mount_setattr AT_RECURSIVE when the kernel has it).
 * A path that does not exist is skipped: there is nothing to hide or protect.
 *
 *   --mask PATH       (repeatable; implies the namespace)
 *   --readonly PATH   (repeatable; implies the namespace)
 *   --mount-ns        a private mount namespace even with no path
 * With --confine (launcher-confine.c) every cgroup mount is made read-only
 * here too, before the paths.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher.h"

#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

struct mount_attr_v0 {
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};

void opt_mask(const char *a) {
  if (L.n_masked >= MAX_PATHS) usage("too many --mask", NULL);
  if (a[0] != '/') usage("--mask wants an absolute path", a);
  L.masked[L.n_masked++] = a;
  L.mount_ns = 1;
}

void opt_readonly(const char *a) {
  if (L.n_readonly >= MAX_PATHS) usage("too many --readonly", NULL);
  if (a[0] != '/') usage("--readonly wants an absolute path", a);
  L.readonly[L.n_readonly++] = a;
  L.mount_ns = 1;
}

/* Flags a read-only remount must repeat, or the kernel would clear them (or refuse, for locked ones). */
static unsigned long kept_flags(const char *path) {
  struct statvfs sv;
  unsigned long keep = 0;
  if (statvfs(path, &sv) == 0) {
    if (sv.f_flag & ST_NOSUID) keep |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV) keep |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC) keep |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME) keep |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) keep |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME) keep |= MS_RELATIME;
  }
  return keep;
}

void remount_readonly(const char *path, const char *stage) {
#ifdef SYS_mount_setattr
  struct mount_attr_v0 attr = {.attr_set = MOUNT_ATTR_RDONLY};
  if (syscall(SYS_mount_setattr, AT_FDCWD, path, 0, &attr, sizeof attr) == 0) return;
  if (errno == ENOENT || errno == ENOTDIR) return;
  if (errno != ENOSYS) fail(stage, path, errno, EXIT_SETUP);
#endif
  if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | kept_flags(path), NULL) == 0) return;
  /* Hidden under a mask: nothing can reach it by path. */
  if (errno == ENOENT || errno == ENOTDIR) return;
  fail(stage, path, errno, EXIT_SETUP);
}

static void make_readonly(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return;
    fail("readonly", path, errno, EXIT_SETUP);
  }
  if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) != 0) fail("readonly", path, errno, EXIT_SETUP);
#ifdef SYS_mount_setattr
  struct mount_attr_v0 attr = {.attr_set = MOUNT_ATTR_RDONLY};
  if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof attr) == 0) return;
  if (errno != ENOSYS) fail("readonly", path, errno, EXIT_SETUP);
#endif
  /* Older kernels: only the top mount. */
  if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | kept_flags(path), NULL) != 0) fail("readonly", path, errno, EXIT_SETUP);
}

static void mask(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return;
    fail("mask", path, errno, EXIT_SETUP);
  }
  if (S_ISDIR(st.st_mode)) {
    if (mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=0555") != 0) fail("mask", path, errno, EXIT_SETUP);
  } else if (mount("/dev/null", path, NULL, MS_BIND, NULL) != 0) {
    fail("mask", path, errno, EXIT_SETUP);
  }
}

void setup_mount_namespace(void) {
  if (!L.mount_ns) return;
  if (unshare(CLONE_NEWNS) != 0) fail("mountns", NULL, errno, EXIT_SETUP);
  /* Slave: the daemon's later mounts still appear here, ours never leak out. */
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) fail("mountns", "/", errno, EXIT_SETUP);
  /* Read-only first, so masking inside a read-only tree still works (masks mount over it). */
  readonly_cgroupfs();
  for (size_t i = 0; i < L.n_readonly; i++) make_readonly(L.readonly[i]);
  for (size_t i = 0; i < L.n_masked; i++) mask(L.masked[i]);
}
