// Filesystem calls made as another user, so that the kernel decides what that user
// may do: search permission along the path as resolved, the sticky bit, ACLs, owner
// rules of chmod/chown, procfs' own checks, LSMs. Used with --enforce-file-permissions.
//
// Each call runs on a libuv pool thread that takes the user's fsuid, fsgid and
// supplementary groups for the one syscall and then returns to the daemon's. The
// credentials are changed with raw syscalls, which act on the calling thread only:
// glibc's setgroups()/setfsuid() wrappers would change every thread of the daemon.
// Dropping fsuid from 0 also drops the filesystem capabilities (CAP_DAC_OVERRIDE,
// CAP_CHOWN, CAP_FOWNER, ...) for that thread; going back to 0 restores them.
//
//   fsAs(uid, gid, groups: number[], op, path, path2 | null, a, b, c) -> Promise<number>
//     op "access":  faccessat2(path, mode=a, AT_EACCESS | b)            -> 0
//     op "open":    open(path, flags=a, mode=b)                         -> fd
//                   (a file opened for writing on procfs, sysfs or another kernel
//                   interface filesystem is closed again and refused with EACCES:
//                   /proc/self is the daemon, and such writes are never the user's;
//                   so is a file of the daemon's own /proc/<pid>, which the kernel lets
//                   the daemon itself read whoever's fsuid it has)
//     op "mkdir":   mkdir(path, mode=a)                                 -> 0
//     op "rename":  renameat2(path, path2, flags=a)                     -> 0
//     op "unlink":  unlink(path); op "rmdir": rmdir(path)               -> 0
//     op "chmod":   fchmodat(path, mode=a)                              -> 0
//     op "chown":   fchownat(path, uid=a, gid=b, flags=c)               -> 0
//   fsAsSync(same arguments) -> number: "access" only, on the calling thread.
//   fsAsCall(uid, gid, groups, fn) -> fn(): a synchronous JS call made with the user's credentials.
//   Errors reject with .code the errno name, .errno, .syscall and .path, like node:fs.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <node_api.h>

#include "addon-util.h"

#ifndef AT_EACCESS
#define AT_EACCESS 0x200
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif

enum op { OP_ACCESS, OP_OPEN, OP_MKDIR, OP_RENAME, OP_UNLINK, OP_RMDIR, OP_CHMOD, OP_CHOWN };
static const char *const OP_NAMES[] = {"access", "open", "mkdir", "rename", "unlink", "rmdir", "chmod", "chown"};
static const char *const SYSCALLS[] = {"faccessat2", "open", "mkdir", "rename", "unlink", "rmdir", "chmod", "chown"};

// Kernel interface filesystems (src/files-http/pseudo-fs.ts lists the same): a write there
// reaches the kernel or another process (the daemon itself, through /proc/self), not a file.
static const unsigned long PSEUDO_FS[] = {
    0x9fa0 /* proc */,      0x62656572 /* sysfs */,    0x27e0eb /* cgroup */,   0x63677270 /* cgroup2 */,
    0x64626720 /* debugfs */, 0x74726163 /* tracefs */, 0x73636673 /* securityfs */, 0x62656570 /* configfs */,
    0xcafe4a11 /* bpf */,   0xde5e81e4 /* efivarfs */,  0x65735543 /* fusectl */, 0x6165676c /* pstore */,
};

struct job {
  enum op op;
  uint32_t uid, gid;
  size_t ngroups;
  gid_t *groups;
  char *path, *path2;
  int64_t a, b, c;
  long result;
  int err;
  napi_async_work work;
  napi_deferred deferred;
};

struct saved {
  int groups_changed, ids_changed;
  long fsuid, fsgid;
  int ngroups;
  gid_t *groups;
};

// Takes the user's credentials on this thread; 0 or an errno. `s` records what changed.
static int become(const struct job *j, struct saved *s) {
  memset(s, 0, sizeof *s);
  s->ngroups = (int)syscall(SYS_getgroups, 0, NULL);
  if (s->ngroups < 0) return errno;
  s->groups = malloc(sizeof(gid_t) * (size_t)(s->ngroups + 1));
  if (!s->groups) return ENOMEM;
  if ((int)syscall(SYS_getgroups, s->ngroups, s->groups) != s->ngroups) return EAGAIN;
  if (syscall(SYS_setgroups, j->ngroups, j->groups) != 0) return errno;
  s->groups_changed = 1;
  // setfsuid/setfsgid return the previous value and fail silently; reading back with -1 tells.
  s->fsgid = syscall(SYS_setfsgid, j->gid);
  s->fsuid = syscall(SYS_setfsuid, j->uid);
  s->ids_changed = 1;
  if ((uint32_t)syscall(SYS_setfsgid, -1) != j->gid || (uint32_t)syscall(SYS_setfsuid, -1) != j->uid) return EPERM;
  return 0;
}

// Back to the daemon's credentials. A pool thread left as the user would run later work
// with the wrong rights, so failing here ends the process.
static void restore(struct saved *s) {
  if (s->ids_changed) {
    syscall(SYS_setfsuid, s->fsuid);
    syscall(SYS_setfsgid, s->fsgid);
    if (syscall(SYS_setfsuid, -1) != s->fsuid || syscall(SYS_setfsgid, -1) != s->fsgid) abort();
  }
  if (s->groups_changed && syscall(SYS_setgroups, s->ngroups, s->groups) != 0) abort();
  free(s->groups);
}

static int on_proc(int fd) {
  struct statfs sf;
  return fstatfs(fd, &sf) != 0 || sf.f_type == 0x9fa0;
}

static int on_pseudo_fs(int fd) {
  struct statfs sf;
  if (fstatfs(fd, &sf) != 0) return 1;  // unknown: refuse
  for (size_t i = 0; i < sizeof PSEUDO_FS / sizeof PSEUDO_FS[0]; i++)
    if ((unsigned long)sf.f_type == PSEUDO_FS[i]) return 1;
  return 0;
}

// Whether `fd` (on procfs) is a file of the daemon's own /proc/<pid>: the kernel lets a process
// read all of its own entries (maps, environ through /proc/self), which the user may not.
static int daemons_own_proc_file(int fd) {
  char link[64], target[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n < 0) return 1;  // unknown: refuse
  target[n] = 0;
  unsigned long pid;
  char rest;
  if (sscanf(target, "/proc/%lu%c", &pid, &rest) < 1) return 0;
  if (pid == (unsigned long)getpid()) return 1;
  char task[64];
  snprintf(task, sizeof task, "/proc/self/task/%lu", pid);
  return access(task, F_OK) == 0;
}

static void run(struct job *j) {
  switch (j->op) {
    case OP_ACCESS:
      j->result = syscall(SYS_faccessat2, AT_FDCWD, j->path, (int)j->a, AT_EACCESS | (int)j->b);
      break;
    case OP_OPEN:
      j->result = open(j->path, (int)j->a | O_CLOEXEC, (mode_t)j->b);
      if (j->result >= 0 && j->uid != 0 &&
          ((((int)j->a & O_ACCMODE) != O_RDONLY && on_pseudo_fs((int)j->result)) || (on_proc((int)j->result) && daemons_own_proc_file((int)j->result)))) {
        close((int)j->result);
        j->result = -1;
        errno = EACCES;
      }
      break;
    case OP_MKDIR:
      j->result = mkdir(j->path, (mode_t)j->a);
      break;
    case OP_RENAME:
      j->result = syscall(SYS_renameat2, AT_FDCWD, j->path, AT_FDCWD, j->path2, (unsigned)j->a);
      break;
    case OP_UNLINK:
      j->result = unlink(j->path);
      break;
    case OP_RMDIR:
      j->result = rmdir(j->path);
      break;
    case OP_CHMOD:
      j->result = fchmodat(AT_FDCWD, j->path, (mode_t)j->a, 0);
      break;
    case OP_CHOWN:
      j->result = fchownat(AT_FDCWD, j->path, (uid_t)j->a, (gid_t)j->b, (int)j->c);
      break;
  }
  j->err = j->result < 0 ? errno : 0;
}

static void job_execute(napi_env env, void *data) {
  (void)env;
  struct job *j = data;
  struct saved s;
  int became = become(j, &s);
  if (became == 0) run(j);
  else {
    j->result = -1;
    j->err = became;
  }
  restore(&s);
}

static void job_free(struct job *j) {
  free(j->groups);
  free(j->path);
  free(j->path2);
  free(j);
}

static napi_value job_error(napi_env env, struct job *j) {
  napi_value err = envd_errno_error(env, j->err, SYSCALLS[j->op]);
  napi_value v;
  napi_create_int32(env, -j->err, &v);
  napi_set_named_property(env, err, "errno", v);
  napi_create_string_utf8(env, OP_NAMES[j->op], NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "syscall", v);
  napi_create_string_utf8(env, j->path, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "path", v);
  if (j->path2) {
    napi_create_string_utf8(env, j->path2, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, err, "dest", v);
  }
  return err;
}

static void job_complete(napi_env env, napi_status status, void *data) {
  struct job *j = data;
  if (status != napi_ok) {
    // Cancelled after an open succeeded cannot happen (cancel only reaches queued work).
    j->err = ECANCELED;
    napi_reject_deferred(env, j->deferred, job_error(env, j));
  } else if (j->err) {
    napi_reject_deferred(env, j->deferred, job_error(env, j));
  } else {
    napi_value v;
    napi_create_int64(env, j->result, &v);
    napi_resolve_deferred(env, j->deferred, v);
  }
  napi_delete_async_work(env, j->work);
  job_free(j);
}

static int get_u32(napi_env env, napi_value v, uint32_t *out) { return napi_get_value_uint32(env, v, out) == napi_ok ? 0 : -1; }
static int get_i64(napi_env env, napi_value v, int64_t *out) { return napi_get_value_int64(env, v, out) == napi_ok ? 0 : -1; }

static const char USAGE[] = "fsAs(uid, gid, groups: number[], op, path, path2 | null, a, b, c)";

// The arguments as a job; NULL with an exception pending when they are wrong.
static struct job *take_job(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  if (!envd_args(env, info, 9, argv, USAGE)) return NULL;
  struct job *j = calloc(1, sizeof *j);
  if (!j) {
    envd_throw_errno(env, ENOMEM, "malloc");
    return NULL;
  }
  char opname[16];
  size_t oplen = 0;
  uint32_t ngroups = 0;
  bool is_array = false;
  napi_valuetype t2;
  int bad = get_u32(env, argv[0], &j->uid) || get_u32(env, argv[1], &j->gid) || napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array ||
            napi_get_array_length(env, argv[2], &ngroups) != napi_ok || ngroups > NGROUPS_MAX ||
            napi_get_value_string_utf8(env, argv[3], opname, sizeof opname, &oplen) != napi_ok || get_i64(env, argv[6], &j->a) ||
            get_i64(env, argv[7], &j->b) || get_i64(env, argv[8], &j->c);
  if (!bad) {
    int found = -1;
    for (int i = 0; i < (int)(sizeof OP_NAMES / sizeof OP_NAMES[0]); i++)
      if (strcmp(opname, OP_NAMES[i]) == 0) found = i;
    bad = found < 0;
    j->op = (enum op)found;
  }
  if (bad) {
    job_free(j);
    napi_throw_type_error(env, NULL, USAGE);
    return NULL;
  }
  j->ngroups = ngroups;
  j->groups = malloc(sizeof(gid_t) * (ngroups + 1));
  if (!j->groups) {
    job_free(j);
    envd_throw_errno(env, ENOMEM, "malloc");
    return NULL;
  }
  for (uint32_t i = 0; i < ngroups; i++) {
    napi_value g;
    uint32_t gid;
    if (napi_get_element(env, argv[2], i, &g) != napi_ok || get_u32(env, g, &gid)) {
      job_free(j);
      napi_throw_type_error(env, NULL, USAGE);
      return NULL;
    }
    j->groups[i] = gid;
  }
  j->path = envd_string_arg(env, argv[4]);
  napi_typeof(env, argv[5], &t2);
  if (t2 != napi_null && t2 != napi_undefined) {
    j->path2 = envd_string_arg(env, argv[5]);
    if (!j->path2) {
      const char *what = OP_NAMES[j->op];
      job_free(j);
      envd_throw_errno(env, EINVAL, what);
      return NULL;
    }
  }
  if (!j->path) {
    const char *what = OP_NAMES[j->op];
    job_free(j);
    envd_throw_errno(env, EINVAL, what);
    return NULL;
  }
  return j;
}

static napi_value fs_as(napi_env env, napi_callback_info info) {
  struct job *j = take_job(env, info);
  if (!j) return NULL;
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "envd:fsAs", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, job_execute, job_complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

// The same, synchronously on the calling thread, for walkers that decide on the spot whether
// to enter a directory (where they would otherwise stat it): only "access" is allowed.
static napi_value fs_as_sync(napi_env env, napi_callback_info info) {
  struct job *j = take_job(env, info);
  if (!j) return NULL;
  napi_value result = NULL;
  if (j->op != OP_ACCESS) {
    napi_throw_type_error(env, NULL, "fsAsSync: only \"access\"");
  } else {
    job_execute(env, j);
    if (j->err) napi_throw(env, job_error(env, j));
    else napi_create_int64(env, j->result, &result);
  }
  job_free(j);
  return result;
}

// fsAsCall(uid, gid, groups, fn): calls fn() on this (the main) thread with the user's
// credentials and returns its result; the daemon's are restored before returning or
// rethrowing. For synchronous resolvers that create directories on the way (mkdirat as
// the user: the kernel checks write and search on the directory actually used).
static napi_value fs_as_call(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!envd_args(env, info, 4, argv, "fsAsCall(uid, gid, groups, fn)")) return NULL;
  struct job j = {0};
  uint32_t ngroups = 0;
  bool is_array = false;
  napi_valuetype fntype;
  if (get_u32(env, argv[0], &j.uid) || get_u32(env, argv[1], &j.gid) || napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[2], &ngroups) != napi_ok || ngroups > NGROUPS_MAX || napi_typeof(env, argv[3], &fntype) != napi_ok ||
      fntype != napi_function) {
    napi_throw_type_error(env, NULL, "fsAsCall(uid, gid, groups, fn)");
    return NULL;
  }
  gid_t *groups = malloc(sizeof(gid_t) * (ngroups + 1));
  if (!groups) return envd_throw_errno(env, ENOMEM, "malloc");
  for (uint32_t i = 0; i < ngroups; i++) {
    napi_value g;
    uint32_t gid;
    if (napi_get_element(env, argv[2], i, &g) != napi_ok || get_u32(env, g, &gid)) {
      free(groups);
      napi_throw_type_error(env, NULL, "fsAsCall(uid, gid, groups, fn)");
      return NULL;
    }
    groups[i] = gid;
  }
  j.groups = groups;
  j.ngroups = ngroups;
  struct saved s;
  int became = become(&j, &s);
  napi_value result = NULL;
  if (became == 0) {
    napi_value global;
    napi_get_global(env, &global);
    napi_call_function(env, global, argv[3], 0, NULL, &result);  // an exception stays pending
  }
  restore(&s);
  free(groups);
  if (became != 0) return envd_throw_errno(env, became, "setfsuid");
  return result;
}

napi_value envd_init_fsuser(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"fsAs", NULL, fs_as, NULL, NULL, NULL, napi_default, NULL},
      {"fsAsSync", NULL, fs_as_sync, NULL, NULL, NULL, napi_default, NULL},
      {"fsAsCall", NULL, fs_as_call, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
