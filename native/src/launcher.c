/*
 * envd-launcher: the step between the daemon's fork and the user command's exec.
 *
 *   envd-launcher [options] -- cmd [args...]
 *
 * Every process envd-ts starts (pipes and PTYs) goes through this program, so
 * limits and isolation can be applied after fork and before exec. The daemon
 * builds the arguments in src/process/launcher.ts; both sides must agree.
 *
 * Options (each at most once unless noted):
 *   --status-fd N         pipe to the daemon. Made close-on-exec, so a successful exec
 *                         closes it with nothing written. A failing step writes one record
 *                         "<stage>:<errno>\n" and the launcher exits (see below).
 *   --setsid              new session and process group: the daemon signals the whole
 *                         tree with kill(-pid). (PTY children are already session leaders.)
 *   --oom-score-adj N     written to /proc/self/oom_score_adj (best effort; E2B uses 100)
 *   --nice N              absolute nice value (best effort)
 *   --ionice CLASS:LEVEL  I/O scheduling class and level (best effort)
 *   --groups A,B,C        setgroups (may be empty: no supplementary groups)
 *   --gid N               setgid, after setgroups
 *   --uid N               setuid, the last identity step
 *   --cwd PATH            chdir, after the identity change so it is checked as the user
 *   --unsetenv NAME       remove a variable (repeatable; node-pty adds PWD and TERM)
 *   --setenv NAME=VALUE   set a variable (repeatable; argv is world-readable: no secrets)
 *   --pty-hold FD         PTY mode, see below. FD is the read end of a pipe from the daemon.
 *
 * Limits and isolation (docs/limits-isolation.md), documented in their files:
 *   launcher-limits.c    --cgroup-procs PATH, --rlimit NAME=SOFT:HARD
 *   launcher-mounts.c    --mount-ns, --mask PATH, --readonly PATH
 *   launcher-userns.c    --user-ns
 *   launcher-security.c  --caps-keep HEX, --caps-add HEX, --no-new-privs,
 *                        --seccomp-deny NRS, --seccomp-allow NRS, --seccomp-deny-ns
 *   launcher-confine.c   --confine, --subreaper
 *
 * PTY mode: when a session leader exits, the kernel hangs up its terminal and
 * discards output the daemon has not read yet. So in PTY mode the launcher
 * stays the session leader: it forks the command (own process group, made the
 * terminal's foreground group), waits for it, tells the daemon, waits until
 * the daemon has drained the terminal (it closes or writes to FD), and only
 * then exits, with the command's exit status (a signal is re-raised). Status
 * records in this mode: "pid:<command pid>", then "running" or "<stage>:<errno>"
 * (exec, or a hardening step of the command's process), then "exit:<wait status>". All signals but SIGKILL are blocked in the keeper.
 *
 * Order: all fds >= 3 close-on-exec, signal mask and dispositions reset, setsid,
 * cgroups (first: nothing after this runs outside the limits), cgroup namespace
 * (--confine), oom/nice/ionice, rlimits, mount namespace (read-only cgroupfs with
 * --confine, then masked and read-only paths), bounding set (with what
 * confinement and rlimits take away; needs
 * CAP_SETPCAP, so before the identity change), stdio pipes and terminal handed to
 * --uid (so `echo x > /dev/stdout` works for the user), groups, gid, uid, chdir,
 * environment (with --user-ns: groups, then the user namespace instead of gid
 * and uid, and only then the bounding set, since the namespace's starts full);
 * then, in the process that execs (the keeper's child in PTY mode,
 * so the keeper itself stays unfiltered): capabilities, no_new_privs, seccomp
 * (last: the filter only has to allow execve after it), execvp (PATH lookup
 * uses the child's PATH).
 *
 * Failure stages (the "<stage>" of a record): usage, setsid, cgroup, cgroupns, cgroupfs, subreaper, rlimit, mountns,
 * mask, readonly, caps, setgroups, userns, userns_map, setgid, setuid, chdir, env,
 * no_new_privs, seccomp, pipe, fork, exec. The daemon maps the limit and isolation stages to
 * failed_precondition.
 *
 * Failure: stderr gets a shell-like line ("envd: exec: foo: No such file or
 * directory") and the exit status is 127 (exec: ENOENT, ENOTDIR), 126 (exec:
 * any other errno) or 125 (a setup step failed, or bad usage).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <dirent.h>
#include <unistd.h>

#include "launcher.h"

struct launch L = {.status_fd = -1, .pty_hold_fd = -1, .child_report_fd = -1};

static void report(const char *stage, int err);

void usage(const char *msg, const char *arg) {
  report("usage", EINVAL);
  fprintf(stderr, "envd-launcher: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
  exit(EXIT_SETUP);
}

long parse_long(const char *s, long min, long max) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max) usage("bad number", s);
  return v;
}

uint64_t parse_u64(const char *s, int base) {
  char *end;
  errno = 0;
  if (s[0] == '-') usage("bad number", s);
  unsigned long long v = strtoull(s, &end, base);
  if (errno || end == s || *end) usage("bad number", s);
  return (uint64_t)v;
}

/* ---- option table: one row per flag ---- */

static void opt_status_fd(const char *a) { L.status_fd = (int)parse_long(a, 0, INT_MAX); }
static void opt_setsid(const char *a) { (void)a; L.setsid = 1; }
static void opt_oom(const char *a) { L.has_oom = 1; L.oom = (int)parse_long(a, -1000, 1000); }
static void opt_nice(const char *a) { L.has_nice = 1; L.nice = (int)parse_long(a, -20, 19); }
static void opt_ionice(const char *a) {
  const char *colon = strchr(a, ':');
  if (!colon) usage("--ionice wants CLASS:LEVEL", a);
  char cls[16];
  size_t n = (size_t)(colon - a);
  if (n == 0 || n >= sizeof cls) usage("--ionice wants CLASS:LEVEL", a);
  memcpy(cls, a, n);
  cls[n] = 0;
  L.has_ionice = 1;
  L.io_class = (int)parse_long(cls, 0, 3);
  L.io_level = (int)parse_long(colon + 1, 0, 7);
}
static void opt_groups(const char *a) {
  L.has_groups = 1;
  L.ngroups = 0;
  char *copy = strdup(a);
  if (!copy) usage("out of memory", NULL);
  for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
    if (L.ngroups >= MAX_GROUPS) usage("too many groups", NULL);
    L.groups[L.ngroups++] = (gid_t)parse_long(tok, 0, UINT_MAX - 1);
  }
  free(copy);
}
static void opt_gid(const char *a) { L.has_gid = 1; L.gid = (gid_t)parse_long(a, 0, UINT_MAX - 1); }
static void opt_uid(const char *a) { L.has_uid = 1; L.uid = (uid_t)parse_long(a, 0, UINT_MAX - 1); }
static void opt_cwd(const char *a) { L.cwd = a; }
static void opt_unsetenv(const char *a) {
  if (L.n_unset >= MAX_ENV_EDITS) usage("too many --unsetenv", NULL);
  L.unset[L.n_unset++] = a;
}
static void opt_pty_hold(const char *a) { L.pty_hold_fd = (int)parse_long(a, 0, INT_MAX); }
static void opt_mount_ns(const char *a) { (void)a; L.mount_ns = 1; }
static void opt_no_new_privs(const char *a) { (void)a; L.no_new_privs = 1; }
static void opt_seccomp_deny_ns(const char *a) { (void)a; L.seccomp_deny_ns = 1; }
static void opt_setenv(const char *a) {
  if (!strchr(a, '=') || a[0] == '=') usage("--setenv wants NAME=VALUE", a);
  if (L.n_set >= MAX_ENV_EDITS) usage("too many --setenv", NULL);
  L.set[L.n_set++] = a;
}

struct option_row {
  const char *name;
  int takes_arg;
  void (*apply)(const char *arg);
};

static const struct option_row OPTIONS[] = {
  {"--status-fd", 1, opt_status_fd},
  {"--setsid", 0, opt_setsid},
  {"--oom-score-adj", 1, opt_oom},
  {"--nice", 1, opt_nice},
  {"--ionice", 1, opt_ionice},
  {"--groups", 1, opt_groups},
  {"--gid", 1, opt_gid},
  {"--uid", 1, opt_uid},
  {"--cwd", 1, opt_cwd},
  {"--unsetenv", 1, opt_unsetenv},
  {"--setenv", 1, opt_setenv},
  {"--pty-hold", 1, opt_pty_hold},
  {"--cgroup-procs", 1, opt_cgroup_procs},
  {"--rlimit", 1, opt_rlimit},
  {"--mount-ns", 0, opt_mount_ns},
  {"--user-ns", 0, opt_user_ns},
  {"--mask", 1, opt_mask},
  {"--readonly", 1, opt_readonly},
  {"--caps-keep", 1, opt_caps_keep},
  {"--caps-add", 1, opt_caps_add},
  {"--no-new-privs", 0, opt_no_new_privs},
  {"--seccomp-deny", 1, opt_seccomp_deny},
  {"--seccomp-allow", 1, opt_seccomp_allow},
  {"--seccomp-deny-ns", 0, opt_seccomp_deny_ns},
  {"--confine", 0, opt_confine},
  {"--subreaper", 0, opt_subreaper},
};

static void parse(int argc, char **argv) {
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    const struct option_row *row = NULL;
    for (size_t k = 0; k < sizeof OPTIONS / sizeof OPTIONS[0]; k++)
      if (strcmp(argv[i], OPTIONS[k].name) == 0) row = &OPTIONS[k];
    if (!row) usage("unknown option", argv[i]);
    const char *arg = NULL;
    if (row->takes_arg) {
      if (i + 1 >= argc) usage("missing value for", argv[i]);
      arg = argv[++i];
    }
    row->apply(arg);
  }
  if (i >= argc) usage("no command after --", NULL);
  if (L.seccomp_deny_ns && !L.seccomp_mode) L.seccomp_mode = 1;
  L.argv = argv + i;
}

/* ---- failure reporting ---- */

/* What the keeper's child sends the keeper when it cannot exec (PTY mode). */
struct child_failure {
  int err;
  char stage[28];
};

static void report(const char *stage, int err) {
  if (L.child_report_fd >= 0) {
    struct child_failure cf = {.err = err};
    snprintf(cf.stage, sizeof cf.stage, "%s", stage);
    ssize_t w = write(L.child_report_fd, &cf, sizeof cf);
    (void)w;
    return;
  }
  if (L.status_fd < 0) return;
  char rec[64];
  int n = snprintf(rec, sizeof rec, "%s:%d\n", stage, err);
  if (n > 0) {
    ssize_t w;
    do w = write(L.status_fd, rec, (size_t)n);
    while (w < 0 && errno == EINTR);
  }
}

static void record(const char *fmt, long value) {
  if (L.status_fd < 0) return;
  char rec[64];
  int n = value >= 0 ? snprintf(rec, sizeof rec, "%s:%ld\n", fmt, value) : snprintf(rec, sizeof rec, "%s\n", fmt);
  if (n > 0) {
    ssize_t w;
    do w = write(L.status_fd, rec, (size_t)n);
    while (w < 0 && errno == EINTR);
  }
}

void fail(const char *stage, const char *what, int err, int code) {
  report(stage, err);
  if (what) fprintf(stderr, "envd: %s: %s: %s\n", stage, what, strerror(err));
  else fprintf(stderr, "envd: %s: %s\n", stage, strerror(err));
  exit(code);
}

/* ---- steps ---- */

/* Keeps stray descriptors (a PTY master opened without O_CLOEXEC, say) out of the command. */
static void cloexec_from_3(void) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) == 0) return;
#endif
  DIR *d = opendir("/proc/self/fd");
  if (!d) return;
  int self = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    int fd = atoi(e->d_name);
    if (fd >= 3 && fd != self) fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  closedir(d);
}

static void reset_signals(void) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; s++)
    if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, NULL);
}

static void write_oom_score(int value) {
  int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  char buf[16];
  int n = snprintf(buf, sizeof buf, "%d\n", value);
  if (write(fd, buf, (size_t)n) < 0) { /* best effort, as in envd */ }
  close(fd);
}

static void set_ionice(int cls, int level) {
#ifdef SYS_ioprio_set
  /* IOPRIO_WHO_PROCESS = 1, IOPRIO_CLASS_SHIFT = 13 */
  syscall(SYS_ioprio_set, 1, 0, (cls << 13) | level);
#else
  (void)cls;
  (void)level;
#endif
}

/* Pipes and the terminal are created by root; /dev/stdout reopens them through their inode. */
static void give_stdio_to_user(void) {
  for (int fd = 0; fd <= 2; fd++) {
    struct stat st;
    if (fstat(fd, &st) != 0) continue;
    if (S_ISFIFO(st.st_mode)) {
      if (fchown(fd, L.uid, L.has_gid ? L.gid : (gid_t)-1) != 0) { /* best effort */ }
    } else if (S_ISCHR(st.st_mode) && isatty(fd)) {
      if (fchown(fd, L.uid, (gid_t)-1) != 0) { /* best effort */ }
    }
  }
}

/*
 * glibc's execvp reports EACCES when any PATH directory is unsearchable, even if
 * the command exists nowhere; shells call that "not found". Tell the two apart.
 */
static int exists_on_path(const char *cmd) {
  const char *path = getenv("PATH");
  if (!path) path = "/bin:/usr/bin";
  char buf[PATH_MAX];
  for (const char *p = path;; p++) {
    const char *end = strchr(p, ':');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    int n = len == 0 ? snprintf(buf, sizeof buf, "%s", cmd) : snprintf(buf, sizeof buf, "%.*s/%s", (int)len, p, cmd);
    struct stat st;
    if (n > 0 && (size_t)n < sizeof buf && stat(buf, &st) == 0 && !S_ISDIR(st.st_mode)) return 1;
    if (!end) return 0;
    p = end;
  }
}

static void apply_env(void) {
  for (size_t i = 0; i < L.n_unset; i++) unsetenv(L.unset[i]);
  for (size_t i = 0; i < L.n_set; i++) {
    char *copy = strdup(L.set[i]);
    if (!copy) fail("env", NULL, ENOMEM, EXIT_SETUP);
    char *eq = strchr(copy, '=');
    *eq = 0;
    if (setenv(copy, eq + 1, 1) != 0) fail("env", copy, errno, EXIT_SETUP);
    free(copy);
  }
}

static int exec_exit_code(int err) { return (err == ENOENT || err == ENOTDIR) ? EXIT_NOTFOUND : EXIT_NOEXEC; }

/* execvp, with shells' "not found" for a command that exists nowhere on PATH. Returns the errno. */
static int exec_command(void) {
  execvp(L.argv[0], L.argv);
  int err = errno;
  if (err == EACCES && !strchr(L.argv[0], '/') && !exists_on_path(L.argv[0])) err = ENOENT;
  return err;
}

/* Ends the keeper the way the command ended. */
static void mirror_exit(int wstatus) {
  if (WIFSIGNALED(wstatus)) {
    int sig = WTERMSIG(wstatus);
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(128 + sig);
  }
  _exit(WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : EXIT_SETUP);
}

/* PTY mode (see the top of the file): the keeper side, after every setup step. */
static void run_pty_keeper(void) {
  int ep[2];
  if (pipe2(ep, O_CLOEXEC) != 0) fail("pipe", NULL, errno, EXIT_SETUP);
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  /* Set before the fork, so no orphan of the command can miss the keeper. */
  if (L.subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) fail("subreaper", NULL, errno, EXIT_SETUP);
  pid_t child = fork();
  if (child < 0) fail("fork", NULL, errno, EXIT_SETUP);
  if (child == 0) {
    close(ep[0]);
    if (L.subreaper) prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    setpgid(0, 0);
    /* Still blocked: SIGTTOU would stop a background group calling tcsetpgrp. */
    tcsetpgrp(0, getpid());
    sigprocmask(SIG_SETMASK, &old, NULL);
    L.child_report_fd = ep[1];
    harden();
    int err = exec_command();
    fail("exec", L.argv[0], err, exec_exit_code(err));
  }
  close(ep[1]);
  record("pid", child);
  struct child_failure cf;
  ssize_t n;
  do n = read(ep[0], &cf, sizeof cf);
  while (n < 0 && errno == EINTR);
  close(ep[0]);
  if (n == (ssize_t)sizeof cf) {
    cf.stage[sizeof cf.stage - 1] = 0;
    report(cf.stage, cf.err);
  } else record("running", -1);
  int wstatus = 0;
  /* As a subreaper the keeper also reaps the orphans that came to it. */
  for (;;) {
    int st;
    pid_t w = waitpid(L.subreaper ? -1 : child, &st, 0);
    if (w < 0) {
      if (errno == EINTR) continue;
      wstatus = EXIT_SETUP << 8;
      break;
    }
    if (w == child) {
      wstatus = st;
      break;
    }
  }
  record("exit", wstatus);
  char buf[16];
  do n = read(L.pty_hold_fd, buf, sizeof buf);
  while (n < 0 && errno == EINTR);
  mirror_exit(wstatus);
}

int main(int argc, char **argv) {
  parse(argc, argv);
  cloexec_from_3();
  if (L.status_fd >= 0) fcntl(L.status_fd, F_SETFD, FD_CLOEXEC);
  if (L.pty_hold_fd >= 0) fcntl(L.pty_hold_fd, F_SETFD, FD_CLOEXEC);
  reset_signals();

  if (L.setsid && setsid() < 0) fail("setsid", NULL, errno, EXIT_SETUP);
  join_cgroups();
  enter_cgroup_namespace();
  if (L.has_oom) write_oom_score(L.oom);
  if (L.has_nice) setpriority(PRIO_PROCESS, 0, L.nice);
  if (L.has_ionice) set_ionice(L.io_class, L.io_level);
  apply_rlimits();
  setup_mount_namespace();
  if (!L.user_ns) prepare_capabilities();

  if (L.has_uid) give_stdio_to_user();
  if (L.has_groups && setgroups(L.ngroups, L.groups) != 0) fail("setgroups", NULL, errno, EXIT_SETUP);
  if (L.user_ns) {
    enter_user_namespace();
    prepare_capabilities();
  } else {
    if (L.has_gid && setgid(L.gid) != 0) fail("setgid", NULL, errno, EXIT_SETUP);
    if (L.has_uid && setuid(L.uid) != 0) fail("setuid", NULL, errno, EXIT_SETUP);
  }

  if (L.cwd && chdir(L.cwd) != 0) fail("chdir", L.cwd, errno, EXIT_SETUP);
  apply_env();

  if (L.pty_hold_fd >= 0) run_pty_keeper();
  /* Pipe mode: the command itself waits for its orphans (the flag survives exec). */
  if (L.subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) fail("subreaper", NULL, errno, EXIT_SETUP);
  harden();
  int err = exec_command();
  fail("exec", L.argv[0], err, exec_exit_code(err));
  return EXIT_SETUP;
}
