/*
 * Hardening of the command: capabilities, no_new_privs and a seccomp filter.
 *
 *   --caps-keep HEX   a root command keeps at most these capabilities (bit n = capability
 *                     n); every other one leaves the bounding set too, so not even a setuid
 *                     program gets it back. A non-root command has none but the added ones.
 *   --caps-add HEX    capabilities the command gets even as a non-root user (ambient);
 *                     each must be held by the launcher
 * With --user-ns the command is root of its namespace, and these masks apply
 * to the capabilities it holds there.
 *   --no-new-privs    PR_SET_NO_NEW_PRIVS: setuid bits and file capabilities stop working
 *   --seccomp-deny NR,NR,...   those syscalls fail with EPERM, the rest is allowed
 *   --seccomp-allow NR,NR,...  only those syscalls are allowed, the rest fail with EPERM
 *   --seccomp-deny-ns          also deny clone() with CLONE_NEW* flags (EPERM) and clone3
 *                              (ENOSYS, so libc falls back to clone), closing the way
 *                              around a denied unshare
 *
 * Confinement (launcher-confine.c) and rlimits take further capabilities away,
 * whatever --caps-keep says.
 *
 * The filter checks the architecture first: a syscall made through another ABI
 * (i386 or x32 on x86_64, arm32 on aarch64) kills the process, because the
 * numbers in the filter would not mean the same there.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher.h"

#if defined(__x86_64__)
#define ARCH_NR AUDIT_ARCH_X86_64
#define X32_SYSCALL_BIT 0x40000000
#elif defined(__aarch64__)
#define ARCH_NR AUDIT_ARCH_AARCH64
#else
#error "envd-launcher's seccomp filter supports x86_64 and aarch64"
#endif

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

/* clone() flags that create namespaces (CLONE_NEWTIME shares its bit with the exit signal there). */
#define CLONE_NS_FLAGS 0x7E020000U

void opt_caps_keep(const char *a) {
  L.has_caps = 1;
  L.cap_keep = parse_u64(a, 16);
}

void opt_caps_add(const char *a) {
  L.has_caps = 1;
  L.cap_add = parse_u64(a, 16);
}

static void parse_syscalls(const char *a) {
  char *copy = strdup(a);
  if (!copy) usage("out of memory", NULL);
  for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
    if (L.n_syscalls >= MAX_SYSCALLS) usage("too many syscalls", NULL);
    L.syscalls[L.n_syscalls++] = (uint32_t)parse_long(tok, 0, 0x7fffffff);
  }
  free(copy);
}

void opt_seccomp_deny(const char *a) {
  if (L.seccomp_mode == 2) usage("--seccomp-deny and --seccomp-allow exclude each other", NULL);
  L.seccomp_mode = 1;
  parse_syscalls(a);
}

void opt_seccomp_allow(const char *a) {
  if (L.seccomp_mode == 1) usage("--seccomp-deny and --seccomp-allow exclude each other", NULL);
  L.seccomp_mode = 2;
  parse_syscalls(a);
}

static int last_cap(void) {
  FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
  int v = -1;
  if (f) {
    if (fscanf(f, "%d", &v) != 1) v = -1;
    fclose(f);
  }
  return v >= 0 && v < 64 ? v : 40;
}

static int get_caps(struct __user_cap_data_struct data[2]) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  return (int)syscall(SYS_capget, &hdr, data);
}

static int set_caps(uint64_t eff, uint64_t perm, uint64_t inh) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  data[0].effective = (uint32_t)eff;
  data[1].effective = (uint32_t)(eff >> 32);
  data[0].permitted = (uint32_t)perm;
  data[1].permitted = (uint32_t)(perm >> 32);
  data[0].inheritable = (uint32_t)inh;
  data[1].inheritable = (uint32_t)(inh >> 32);
  return (int)syscall(SYS_capset, &hdr, data);
}

/* What the command ends up with: what we hold, limited to keep, plus add (which we must hold). */
static uint64_t final_caps;

void prepare_capabilities(void) {
  uint64_t forced = confine_drop_mask();
  if (!L.has_caps && !forced) return;
  if (!L.has_caps) {
    L.has_caps = 1;
    L.cap_keep = ~0ULL;
    L.cap_add = 0;
  }
  if (L.cap_add & forced) fail("caps", "a capability to add would let the command lift its limits or isolation", EPERM, EXIT_SETUP);
  L.cap_keep &= ~forced;
  struct __user_cap_data_struct cur[2];
  if (get_caps(cur) != 0) fail("caps", "capget", errno, EXIT_SETUP);
  uint64_t held = ((uint64_t)cur[1].permitted << 32) | cur[0].permitted;
  if ((L.cap_add & held) != L.cap_add) fail("caps", "a capability to add is not held by the daemon", EPERM, EXIT_SETUP);
  uint64_t bounding = (held & L.cap_keep) | L.cap_add;
  /* A non-root command starts with no capabilities; it gets only what is added.
   * In a user namespace the command is root (of that namespace). */
  int non_root = L.has_uid && L.uid != 0 && !L.user_ns;
  final_caps = non_root ? L.cap_add : bounding;
  int last = last_cap();
  for (int c = 0; c <= last; c++) {
    if (bounding & (1ULL << c)) continue;
    int in = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
    if (in == 1 && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) fail("caps", "bounding set", errno, EXIT_SETUP);
  }
  /* A non-root command keeps capabilities only through setuid with KEEPCAPS, then as ambient ones. */
  if (non_root && final_caps != 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) fail("caps", "keepcaps", errno, EXIT_SETUP);
}

static void apply_capabilities(void) {
  if (!L.has_caps) return;
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) fail("caps", "ambient", errno, EXIT_SETUP);
  if (set_caps(final_caps, final_caps, final_caps) != 0) fail("caps", "capset", errno, EXIT_SETUP);
  if (geteuid() != 0) {
    int last = last_cap();
    for (int c = 0; c <= last; c++)
      if ((final_caps & (1ULL << c)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) != 0) fail("caps", "ambient", errno, EXIT_SETUP);
    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  }
}

#define STMT(code, k) ((struct sock_filter)BPF_STMT(code, k))
#define JUMP(code, k, jt, jf) ((struct sock_filter)BPF_JUMP(code, k, jt, jf))

static void install_seccomp(void) {
  if (!L.seccomp_mode) return;
  size_t cap = 24 + 2 * L.n_syscalls;
  struct sock_filter *f = calloc(cap, sizeof *f);
  if (!f) fail("seccomp", NULL, ENOMEM, EXIT_SETUP);
  size_t n = 0;
  uint32_t eperm = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
  uint32_t listed = L.seccomp_mode == 1 ? eperm : SECCOMP_RET_ALLOW;
  uint32_t other = L.seccomp_mode == 1 ? SECCOMP_RET_ALLOW : eperm;

  f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH_NR, 1, 0);
  f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#ifdef X32_SYSCALL_BIT
  f[n++] = JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1);
  f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
  if (L.seccomp_deny_ns) {
    f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1);
    f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA));
    /* clone: its flags are the first argument on both architectures (low word, little-endian). */
    f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3);
    f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
    f[n++] = JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_NS_FLAGS, 0, 1);
    f[n++] = STMT(BPF_RET | BPF_K, eperm);
    f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
  }
  for (size_t i = 0; i < L.n_syscalls; i++) {
    f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, L.syscalls[i], 0, 1);
    f[n++] = STMT(BPF_RET | BPF_K, listed);
  }
  f[n++] = STMT(BPF_RET | BPF_K, other);
  struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) fail("seccomp", NULL, errno, EXIT_SETUP);
  free(f);
}

void harden(void) {
  apply_capabilities();
  if (L.no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("no_new_privs", NULL, errno, EXIT_SETUP);
  install_seccomp();
}
