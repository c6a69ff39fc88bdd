// Process plumbing Node has no API for: real pipes (Node's stdio "pipe" is a
// socketpair, on which `echo x > /dev/stdout` fails with ENXIO) and the
// close-on-exec flag, so one pipe end can be inherited through node-pty's fork.
//
// JS API (exported on the addon object):
//   processPipe(): [readFd, writeFd]            both O_CLOEXEC, both blocking
//   processSetCloexec(fd: number, on: boolean)  throws Error with .code on failure
//   processReadable(fd: number): number          bytes waiting to be read (FIONREAD), -1 on error
//   processTrimMemory(): void                     malloc_trim(0): hand freed heap pages back to the kernel
//   processPeekZombie(): number                   pid of a child that exited and was not reaped yet, left
//                                                 unreaped (waitid WNOWAIT); 0 if none, -1 if no children at all
//   processReap(pid: number): null | [code, signal, userUs, systemUs, inBlocks, outBlocks]
//                                                 wait4(pid, WNOHANG): how it ended (exit code or terminating
//                                                 signal, the other null) and the CPU time and storage I/O of it
//                                                 and the children it waited for (rusage), once reaped; null
//                                                 while it runs or when it is not our child. Not ru_maxrss: a
//                                                 child started with vfork semantics ran on our memory until its
//                                                 exec, and exec records that memory's peak as the child's.
//   processSetSubreaper(on: boolean): void        prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants become our children
//   processSetClock(ms: number): void             clock_settime(CLOCK_REALTIME) to ms since the epoch (needs CAP_SYS_TIME)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <node_api.h>

#include "addon-util.h"

static napi_value js_pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return envd_throw_errno(env, errno, "pipe2");
  napi_value out, r, w;
  napi_create_array_with_length(env, 2, &out);
  napi_create_int32(env, fds[0], &r);
  napi_create_int32(env, fds[1], &w);
  napi_set_element(env, out, 0, r);
  napi_set_element(env, out, 1, w);
  return out;
}

static napi_value js_set_cloexec(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!envd_args(env, info, 2, argv, "processSetCloexec(fd, on)")) return NULL;
  int32_t fd;
  bool on = true;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_bool(env, argv[1], &on) != napi_ok) {
    napi_throw_type_error(env, NULL, "processSetCloexec(fd, on)");
    return NULL;
  }
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) return envd_throw_errno(env, errno, "fcntl");
  flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  if (fcntl(fd, F_SETFD, flags) != 0) return envd_throw_errno(env, errno, "fcntl");
  return NULL;
}

static napi_value js_readable(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!envd_args(env, info, 1, argv, "processReadable(fd)")) return NULL;
  int32_t fd;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "processReadable(fd)");
    return NULL;
  }
  int n = 0;
  if (ioctl(fd, FIONREAD, &n) != 0) n = -1;
  napi_value out;
  napi_create_int32(env, n, &out);
  return out;
}

/* A big transfer leaves the heap large and mostly free; every later fork() copies its page tables. */
static napi_value js_trim(napi_env env, napi_callback_info info) {
  (void)info;
  malloc_trim(0);
  napi_value out;
  napi_get_undefined(env, &out);
  return out;
}

/*
 * Orphan reaping (src/system/child-reaper.ts). libuv and node-pty each wait for their own
 * children by pid, so the reaper must never take one of those: it peeks at the next zombie
 * without reaping it (WNOWAIT) and lets JS decide whether that pid is someone else's.
 */
static napi_value js_peek_zombie(napi_env env, napi_callback_info info) {
  (void)info;
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int32_t pid;
  for (;;) {
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) == 0) {
      pid = si.si_pid; /* 0: children, none exited */
      break;
    }
    if (errno == EINTR) continue;
    if (errno == ECHILD) {
      pid = -1;
      break;
    }
    return envd_throw_errno(env, errno, "waitid");
  }
  napi_value out;
  napi_create_int32(env, pid, &out);
  return out;
}

static napi_value js_reap(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!envd_args(env, info, 1, argv, "processReap(pid > 0)")) return NULL;
  int32_t pid;
  if (napi_get_value_int32(env, argv[0], &pid) != napi_ok || pid <= 0) {
    napi_throw_type_error(env, NULL, "processReap(pid > 0)");
    return NULL;
  }
  int status, r;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  do r = wait4(pid, &status, WNOHANG | __WALL, &ru);
  while (r < 0 && errno == EINTR);
  napi_value out;
  if (r <= 0) {
    napi_get_null(env, &out);
    return out;
  }
  napi_value code, sig;
  napi_get_null(env, &code);
  napi_get_null(env, &sig);
  if (WIFEXITED(status)) napi_create_int32(env, WEXITSTATUS(status), &code);
  else if (WIFSIGNALED(status)) napi_create_int32(env, WTERMSIG(status), &sig);
  const double used[4] = {
      (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec,
      (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec,
      (double)ru.ru_inblock,
      (double)ru.ru_oublock,
  };
  napi_create_array_with_length(env, 6, &out);
  napi_set_element(env, out, 0, code);
  napi_set_element(env, out, 1, sig);
  for (int i = 0; i < 4; i++) {
    napi_value v;
    napi_create_double(env, used[i], &v);
    napi_set_element(env, out, (uint32_t)(2 + i), v);
  }
  return out;
}

static napi_value js_set_subreaper(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool on = true;
  if (argc >= 1) napi_get_value_bool(env, argv[0], &on);
  if (prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0) != 0) return envd_throw_errno(env, errno, "prctl");
  return NULL;
}

static napi_value js_set_clock(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!envd_args(env, info, 1, argv, "processSetClock(ms)")) return NULL;
  double ms = 0;
  if (napi_get_value_double(env, argv[0], &ms) != napi_ok || !(ms > 0)) {
    napi_throw_type_error(env, NULL, "processSetClock(ms): ms must be a positive number");
    return NULL;
  }
  struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6)};
  if (ts.tv_nsec < 0) ts.tv_nsec = 0;
  if (ts.tv_nsec > 999999999) ts.tv_nsec = 999999999;
  if (clock_settime(CLOCK_REALTIME, &ts) != 0) return envd_throw_errno(env, errno, "clock_settime");
  return NULL;
}

napi_value envd_init_process(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"processPipe", NULL, js_pipe, NULL, NULL, NULL, napi_enumerable, NULL},
    {"processSetCloexec", NULL, js_set_cloexec, NULL, NULL, NULL, napi_enumerable, NULL},
    {"processReadable", NULL, js_readable, NULL, NULL, NULL, napi_enumerable, NULL},
    {"processTrimMemory", NULL, js_trim, NULL, NULL, NULL, napi_enumerable, NULL},
    {"processPeekZombie", NULL, js_peek_zombie, NULL, NULL, NULL, napi_enumerable, NULL},
    {"processReap", NULL, js_reap, NULL, NULL, NULL, napi_enumerable, NULL},
    {"processSetSubreaper", NULL, js_set_subreaper, NULL, NULL, NULL, napi_enumerable, NULL},
    {"processSetClock", NULL, js_set_clock, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
