// Process plumbing Node has no API for: real pipes (Node's stdio "pipe" is a
// socketpair, on which `echo x > /dev/stdout` fails with ENXIO) and the
// close-on-exec flag, so one pipe end can be inherited through node-pty's fork.
//
// JS API (exported on the addon object):
//   processPipe(): [readFd, writeFd]            both O_CLOEXEC, both blocking
//   processSetCloexec(fd: number, on: boolean)  throws Error with .code on failure
//   processReadable(fd: number): number          bytes waiting to be read (FIONREAD), -1 on error
//   processTrimMemory(): void                     malloc_trim(0): hand freed heap pages back to the kernel
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <node_api.h>

static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  const char *name = strerrorname_np(err);
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(err));
  napi_throw_error(env, name ? name : "EUNKNOWN", msg);
  return NULL;
}

static napi_value js_pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return throw_errno(env, errno, "pipe2");
  napi_value out, r, w;
  napi_create_array_with_length(env, 2, &out);
  napi_create_int32(env, fds[0], &r);
  napi_create_int32(env, fds[1], &w);
  napi_set_element(env, out, 0, r);
  napi_set_element(env, out, 1, w);
  return out;
}

static napi_value js_set_cloexec(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  bool on = true;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_bool(env, argv[1], &on) != napi_ok) {
    napi_throw_type_error(env, NULL, "processSetCloexec(fd, on)");
    return NULL;
  }
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) return throw_errno(env, errno, "fcntl");
  flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  if (fcntl(fd, F_SETFD, flags) != 0) return throw_errno(env, errno, "fcntl");
  return NULL;
}

static napi_value js_readable(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
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

napi_value envd_init_process(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"processPipe", NULL, js_pipe, NULL, NULL, NULL, napi_enumerable, NULL},
    {"processSetCloexec", NULL, js_set_cloexec, NULL, NULL, NULL, napi_enumerable, NULL},
    {"processReadable", NULL, js_readable, NULL, NULL, NULL, napi_enumerable, NULL},
    {"processTrimMemory", NULL, js_trim, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
