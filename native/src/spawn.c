// Starting the launcher without fork(). Node's child_process.spawn forks the whole daemon (its
// page tables, then copy-on-write faults in the daemon until the child execs) and waits on the
// event loop until the child has exec'd: ~2-3.5 ms per command here, serial, the largest part of
// starting 500 commands at once (bench/NOTES.md). glibc's posix_spawn uses clone(CLONE_VM |
// CLONE_VFORK): nothing is copied, and the parent waits only for the exec itself.
//
// JS API (exported on the addon object):
//   processSpawn(file: string, argv: string[], envp: string[], fds: number[], cwd: string): number
//       starts `file` (a path, no PATH search) with fd i of the child = fds[i] (-1: /dev/null),
//       every other descriptor closed on exec (all of the daemon's are O_CLOEXEC), signal
//       dispositions reset to default and an empty signal mask; returns the pid. Throws Error
//       with .code on failure. The caller reaps it (processReap, process.c).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>

#include "addon-util.h"

#define MAX_FDS 16

// A JS string as a malloc'd C string, or NULL with a pending TypeError (not a string, or it
// holds a NUL byte, which exec would silently cut the argument at).
static char *c_string(napi_env env, napi_value v) {
  char *s = envd_string_arg(env, v);
  if (!s) napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "processSpawn: strings without NUL bytes expected");
  return s;
}

static void free_list(char **list) {
  if (!list) return;
  for (char **p = list; *p; p++) free(*p);
  free(list);
}

// A JS array of strings as a NULL-terminated malloc'd list, or NULL on failure.
static char **c_string_list(napi_env env, napi_value arr) {
  uint32_t n;
  if (napi_get_array_length(env, arr, &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "processSpawn: arrays expected");
    return NULL;
  }
  char **list = calloc(n + 1, sizeof *list);
  if (!list) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    napi_get_element(env, arr, i, &item);
    list[i] = c_string(env, item);
    if (!list[i]) {
      free_list(list);
      return NULL;
    }
  }
  return list;
}

static napi_value js_spawn(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!envd_args(env, info, 5, argv, "processSpawn(file, argv, envp, fds, cwd)")) return NULL;
  uint32_t nfds;
  if (napi_get_array_length(env, argv[3], &nfds) != napi_ok || nfds > MAX_FDS) {
    napi_throw_type_error(env, NULL, "processSpawn: fds must be an array of at most 16 numbers");
    return NULL;
  }
  int fds[MAX_FDS];
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value item;
    napi_get_element(env, argv[3], i, &item);
    if (napi_get_value_int32(env, item, &fds[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "processSpawn: fds must be numbers");
      return NULL;
    }
    // A source among the child's slots could be overwritten by an earlier dup2 (onto itself is
    // fine: glibc clears O_CLOEXEC then). The daemon passes pipes, which are never that low.
    if (fds[i] >= 0 && fds[i] < (int)nfds && fds[i] != (int)i) {
      napi_throw_range_error(env, NULL, "processSpawn: a source descriptor overlaps the child's slots");
      return NULL;
    }
  }

  char *file = c_string(env, argv[0]);
  char *cwd = c_string(env, argv[4]);
  char **args = c_string_list(env, argv[1]);
  char **envp = c_string_list(env, argv[2]);
  napi_value result = NULL;
  if (!file || !cwd || !args || !envp) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) envd_throw_errno(env, ENOMEM, "processSpawn");
    goto out;
  }

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  for (uint32_t i = 0; i < nfds; i++) {
    if (fds[i] >= 0) posix_spawn_file_actions_adddup2(&actions, fds[i], (int)i);
    else posix_spawn_file_actions_addopen(&actions, (int)i, "/dev/null", O_RDWR, 0);
  }
  posix_spawn_file_actions_addchdir_np(&actions, cwd);
  // Node ignores SIGPIPE and may block signals; ignored dispositions and the mask survive exec.
  sigset_t all, none;
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  pid_t pid;
  int err = posix_spawn(&pid, file, &actions, &attr, args, envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    char what[300];
    snprintf(what, sizeof what, "spawn %s", file);
    envd_throw_errno(env, err, what);
    goto out;
  }
  napi_create_int32(env, pid, &result);

out:
  free(file);
  free(cwd);
  free_list(args);
  free_list(envp);
  return result;
}

napi_value envd_init_spawn(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"processSpawn", NULL, js_spawn, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
