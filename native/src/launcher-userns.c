/*
 * A user namespace for the command: the run-as uid and gid are mapped to 0
 * inside and nothing else is mapped (like `unshare --map-root-user`). Outside,
 * the process is exactly the run-as user: its files are that user's and it has
 * no privilege on the host. Inside, it is root with the capabilities of its own
 * namespace, so e.g. `unshare -m` and `unshare -n` work there.
 *
 *   --user-ns   replaces setgid/setuid; the maps use --uid and --gid (default:
 *               the launcher's own ids)
 *
 * It runs after every step that needs the launcher's privilege in the parent
 * namespace (cgroups, rlimits, mounts, stdio ownership, setgroups), because
 * unshare(CLONE_NEWUSER) gives all of it up. Only a process holding
 * CAP_SETUID/CAP_SETGID in the parent namespace may map ids other than its
 * own, and the launcher no longer holds them once it has unshared: so a root
 * launcher first forks a helper that waits until the launcher has unshared,
 * writes its maps and exits. A launcher that is not root maps its own ids,
 * which the kernel allows without a helper.
 *
 * setgroups is denied inside (written before gid_map): the supplementary
 * groups set before the unshare stay (they show as the overflow gid), and the
 * command cannot drop them to get around a group's negative permissions.
 *
 * Failure stages: "userns" (unshare: user.max_user_namespaces reached or 0,
 * not permitted in this container, no kernel support) and "userns_map"
 * (writing the maps).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launcher.h"

void opt_user_ns(const char *a) {
  (void)a;
  L.user_ns = 1;
}

/* 0 or the errno of writing `text` to `path`. */
static int write_text(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  size_t n = strlen(text);
  ssize_t w;
  do w = write(fd, text, n);
  while (w < 0 && errno == EINTR);
  int err = w < 0 ? errno : (size_t)w != n ? EIO : 0;
  close(fd);
  return err;
}

/* Maps uid and gid of the parent namespace to 0 in the namespace of `pid`; 0 or an errno. */
static int write_maps(pid_t pid, uid_t uid, gid_t gid) {
  char path[64], line[64];
  snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
  snprintf(line, sizeof line, "0 %u 1\n", (unsigned)uid);
  int err = write_text(path, line);
  if (err) return err;
  snprintf(path, sizeof path, "/proc/%d/setgroups", (int)pid);
  err = write_text(path, "deny");
  if (err) return err;
  snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
  snprintf(line, sizeof line, "0 %u 1\n", (unsigned)gid);
  return write_text(path, line);
}

/* The helper's result: its exit status is 0 or an errno. */
static int reap(pid_t helper) {
  int status;
  while (waitpid(helper, &status, 0) < 0)
    if (errno != EINTR) return errno;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return EIO;
}

/* Forks the helper that maps the launcher's namespace once a byte arrives on *go. */
static pid_t start_map_helper(int *go, uid_t uid, gid_t gid) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) fail("userns_map", "pipe", errno, EXIT_SETUP);
  pid_t target = getpid();
  pid_t helper = fork();
  if (helper < 0) fail("userns_map", "fork", errno, EXIT_SETUP);
  if (helper == 0) {
    close(p[1]);
    char c;
    ssize_t n;
    do n = read(p[0], &c, 1);
    while (n < 0 && errno == EINTR);
    /* End of file: the launcher could not unshare and reports that itself. */
    _exit(n == 1 ? write_maps(target, uid, gid) : 0);
  }
  close(p[0]);
  *go = p[1];
  return helper;
}

void enter_user_namespace(void) {
  if (!L.user_ns) return;
  /* Unprivileged, only the effective ids may be mapped. */
  uid_t uid = L.has_uid ? L.uid : geteuid();
  gid_t gid = L.has_gid ? L.gid : getegid();
  int go = -1;
  pid_t helper = geteuid() == 0 ? start_map_helper(&go, uid, gid) : -1;
  if (unshare(CLONE_NEWUSER) != 0) {
    int err = errno;
    if (helper > 0) {
      close(go);
      reap(helper);
    }
    fail("userns", NULL, err, EXIT_SETUP);
  }
  int err;
  if (helper > 0) {
    ssize_t w;
    do w = write(go, "m", 1);
    while (w < 0 && errno == EINTR);
    close(go);
    err = reap(helper);
  } else {
    err = write_maps(getpid(), uid, gid);
  }
  if (err) fail("userns_map", NULL, err, EXIT_SETUP);
  L.user_ns_outside_uid = uid;
  /* The mapped ids, which are the run-as user's outside. */
  if (setresgid(0, 0, 0) != 0) fail("setgid", NULL, errno, EXIT_SETUP);
  if (setresuid(0, 0, 0) != 0) fail("setuid", NULL, errno, EXIT_SETUP);
}
