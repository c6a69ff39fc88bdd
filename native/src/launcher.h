/*
 * Shared state of envd-launcher (launcher.c) and its step files:
 * launcher-limits.c (cgroups, rlimits), launcher-mounts.c (mount namespace,
 * masked and read-only paths), launcher-userns.c (user namespace),
 * launcher-security.c (capabilities, no_new_privs, seccomp), launcher-confine.c
 * (what keeps root from lifting limits and isolation; orphans kept in the tree).
 */
#ifndef ENVD_LAUNCHER_H
#define ENVD_LAUNCHER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define EXIT_SETUP 125
#define EXIT_NOEXEC 126
#define EXIT_NOTFOUND 127
#define MAX_ENV_EDITS 64
#define MAX_GROUPS 4096
#define MAX_PATHS 64
#define MAX_RLIMITS 16
#define MAX_SYSCALLS 1024

struct rlimit_req {
  int resource;
  uint64_t soft, hard;
};

struct launch {
  int status_fd;
  /* PTY mode: the command's end of a pipe to the keeper; failures go there. */
  int child_report_fd;
  int setsid;
  int has_oom, oom;
  int has_nice, nice;
  int has_ionice, io_class, io_level;
  int has_groups;
  size_t ngroups;
  gid_t groups[MAX_GROUPS];
  int has_gid;
  gid_t gid;
  int has_uid;
  uid_t uid;
  const char *cwd;
  size_t n_unset, n_set;
  const char *unset[MAX_ENV_EDITS];
  const char *set[MAX_ENV_EDITS];
  int pty_hold_fd;
  char **argv;

  /* per-process limits */
  size_t n_cgroups;
  const char *cgroup_procs[MAX_PATHS];
  size_t n_rlimits;
  struct rlimit_req rlimits[MAX_RLIMITS];

  /* per-process isolation */
  int mount_ns;
  /* A user namespace in which the run-as uid and gid are 0 (launcher-userns.c). */
  int user_ns;
  /* The uid that is 0 inside it, once entered. */
  uid_t user_ns_outside_uid;
  size_t n_masked, n_readonly;
  const char *masked[MAX_PATHS];
  const char *readonly[MAX_PATHS];
  int has_caps;
  uint64_t cap_keep, cap_add;
  int no_new_privs;
  /* seccomp: 0 none, 1 deny list (default allow), 2 allow list (default deny) */
  int seccomp_mode;
  int seccomp_deny_ns;
  size_t n_syscalls;
  uint32_t syscalls[MAX_SYSCALLS];

  /* Confinement (launcher-confine.c): the command cannot lift its limits or isolation. */
  int confine;
  /* Orphans of the command's tree come back to it (or to the PTY keeper). */
  int subreaper;
};

extern struct launch L;

/* Reports "<stage>:<errno>" to the daemon, prints a line on stderr and exits with code. */
void fail(const char *stage, const char *what, int err, int code) __attribute__((noreturn));
/* Bad usage: reported as stage "usage". */
void usage(const char *msg, const char *arg) __attribute__((noreturn));
long parse_long(const char *s, long min, long max);
uint64_t parse_u64(const char *s, int base);

/* launcher-limits.c */
void opt_cgroup_procs(const char *a);
void opt_rlimit(const char *a);
void join_cgroups(void);
void apply_rlimits(void);

/* launcher-mounts.c */
void opt_mask(const char *a);
void opt_readonly(const char *a);
void setup_mount_namespace(void);

/* Makes an existing mount read-only (only it, not what is mounted beneath); skips a path that is gone. */
void remount_readonly(const char *path, const char *stage);

/* launcher-confine.c */
void opt_confine(const char *a);
void opt_subreaper(const char *a);
/* Capabilities confinement takes from every set (and CAP_SYS_RESOURCE with rlimits). */
uint64_t confine_drop_mask(void);
/* After join_cgroups: a cgroup namespace rooted at the run's cgroup. */
void enter_cgroup_namespace(void);
/* In the private mount namespace: every cgroup and cgroup2 mount read-only. */
void readonly_cgroupfs(void);

/* launcher-userns.c */
void opt_user_ns(const char *a);
/* Instead of setgid/setuid: unshare, map uid and gid to 0, become 0 inside. */
void enter_user_namespace(void);

/* launcher-security.c */
void opt_caps_keep(const char *a);
void opt_caps_add(const char *a);
void opt_seccomp_deny(const char *a);
void opt_seccomp_allow(const char *a);
/* Before the identity change (after it with a user namespace, whose bounding set
 * starts full): bounding set, and keeping capabilities across setuid. */
void prepare_capabilities(void);
/* After the identity change, in the process that execs: capabilities, no_new_privs, seccomp. */
void harden(void);

#endif
