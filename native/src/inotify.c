// inotify for Node: one non-blocking inotify fd per watcher, polled by libuv on
// the main loop. Raw event batches (struct inotify_event records, byte for byte)
// go to a JS callback; parsing, op mapping and recursion live in TypeScript.
//
// JS API (exported on the addon object):
//   inotifyOpen(onBatch: (batch: Buffer | null, drained: boolean, errno: number) => void): handle
//   inotifyAddWatch(handle, path: string | Buffer, mask: number): wd   (throws Error with .code)
//   inotifyRmWatch(handle, wd: number): boolean
//   inotifyClose(handle): void   (idempotent; the fd is closed once libuv releases the poll)
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <node_api.h>

#include "addon-util.h"
#include <uv.h>

// Bytes gathered from the fd before one batch is handed to JS. A batch ends earlier
// when the fd runs dry (read returns EAGAIN); `drained` tells JS which case it was.
#define BATCH_CAP (256 * 1024)
#define READ_CHUNK (64 * 1024)

typedef struct {
  uv_poll_t poll;
  int fd;
  napi_env env;
  napi_ref callback;
  napi_async_context async_ctx;
  int closing;    // inotifyClose or the finalizer started the teardown
  int uv_closed;  // libuv released the poll handle and the fd is closed
  int finalized;  // the JS object is gone
} watcher_t;

static void maybe_free(watcher_t *w) {
  if (w->uv_closed && w->finalized) free(w);
}

static void on_uv_closed(uv_handle_t *handle) {
  watcher_t *w = (watcher_t *)handle->data;
  if (w->fd >= 0) close(w->fd);
  w->fd = -1;
  w->uv_closed = 1;
  maybe_free(w);
}

static void teardown(watcher_t *w) {
  if (w->closing) return;
  w->closing = 1;
  uv_poll_stop(&w->poll);
  if (w->callback) {
    napi_delete_reference(w->env, w->callback);
    w->callback = NULL;
  }
  if (w->async_ctx) {
    napi_async_destroy(w->env, w->async_ctx);
    w->async_ctx = NULL;
  }
  uv_close((uv_handle_t *)&w->poll, on_uv_closed);
}

static void finalize(napi_env env, void *data, void *hint) {
  watcher_t *w = (watcher_t *)data;
  w->finalized = 1;
  if (!w->closing) teardown(w);
  else maybe_free(w);
}

// Calls the JS callback as a top-level macrotask, so promise jobs run after it.
static void deliver(watcher_t *w, const char *data, size_t len, int drained, int err) {
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[3], result;
  if (napi_get_reference_value(env, w->callback, &cb) != napi_ok || cb == NULL) goto done;
  // napi_make_callback converts the receiver to an object: undefined would throw.
  napi_get_global(env, &recv);
  if (data != NULL) {
    void *copy;
    if (napi_create_buffer_copy(env, len, data, &copy, &argv[0]) != napi_ok) goto done;
  } else {
    napi_get_null(env, &argv[0]);
  }
  napi_get_boolean(env, drained != 0, &argv[1]);
  napi_create_int32(env, err, &argv[2]);
  napi_status status = napi_make_callback(env, w->async_ctx, recv, cb, 3, argv, &result);
  if (status == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
done:
  napi_close_handle_scope(env, scope);
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  watcher_t *w = (watcher_t *)handle->data;
  if (w->closing) return;
  if (status < 0) {
    deliver(w, NULL, 0, 1, -status);
    return;
  }
  char *batch = malloc(BATCH_CAP);
  if (batch == NULL) {
    deliver(w, NULL, 0, 1, ENOMEM);
    return;
  }
  size_t used = 0;
  int drained = 0;
  int err = 0;
  // Each read returns whole events only; stop while a full chunk still fits.
  while (used + READ_CHUNK <= BATCH_CAP) {
    ssize_t n = read(w->fd, batch + used, READ_CHUNK);
    if (n > 0) {
      used += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) drained = 1;
    else if (n < 0) err = errno;
    else drained = 1;
    break;
  }
  if (used > 0) deliver(w, batch, used, drained && !err, 0);
  free(batch);
  if (err && !w->closing) deliver(w, NULL, 0, 1, err);
}

static watcher_t *unwrap_handle(napi_env env, napi_value obj) {
  void *data = NULL;
  if (napi_unwrap(env, obj, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "not an inotify handle");
    return NULL;
  }
  return (watcher_t *)data;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!envd_args(env, info, 1, argv, "inotifyOpen(callback) needs a function")) return NULL;
  napi_valuetype t;
  if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, NULL, "inotifyOpen(callback) needs a function");
    return NULL;
  }
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    envd_throw_errno(env, errno, "inotify_init1");
    return NULL;
  }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    close(fd);
    napi_throw_error(env, NULL, "no event loop");
    return NULL;
  }
  watcher_t *w = calloc(1, sizeof *w);
  if (w == NULL) {
    close(fd);
    envd_throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  w->fd = fd;
  w->env = env;
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc != 0) {
    close(fd);
    free(w);
    envd_throw_errno(env, -rc, "uv_poll_init");
    return NULL;
  }
  w->poll.data = w;
  napi_value obj, resource_name;
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, "envd:inotify", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, obj, resource_name, &w->async_ctx);
  napi_create_reference(env, argv[0], 1, &w->callback);
  if (napi_wrap(env, obj, w, finalize, NULL, NULL) != napi_ok) {
    // Without the wrap nothing would ever free w: tear down and let on_uv_closed free it.
    w->finalized = 1;
    teardown(w);
    napi_throw_error(env, NULL, "napi_wrap failed");
    return NULL;
  }
  rc = uv_poll_start(&w->poll, UV_READABLE, on_readable);
  if (rc != 0) {
    teardown(w);
    envd_throw_errno(env, -rc, "uv_poll_start");
    return NULL;
  }
  return obj;
}

static napi_value js_add_watch(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!envd_args(env, info, 3, argv, "inotifyAddWatch(handle, path, mask)")) return NULL;
  watcher_t *w = unwrap_handle(env, argv[0]);
  if (w == NULL) return NULL;
  if (w->closing) {
    envd_throw_errno(env, EBADF, "inotify_add_watch");
    return NULL;
  }
  uint32_t mask;
  if (napi_get_value_uint32(env, argv[2], &mask) != napi_ok) {
    napi_throw_type_error(env, NULL, "mask must be a number");
    return NULL;
  }
  char *path = envd_string_arg(env, argv[1]);
  if (path == NULL) {
    napi_throw_type_error(env, NULL, "path must be a string or Buffer without NUL bytes");
    return NULL;
  }
  int wd = inotify_add_watch(w->fd, path, mask);
  int err = errno;
  free(path);
  if (wd < 0) {
    envd_throw_errno(env, err, "inotify_add_watch");
    return NULL;
  }
  napi_value out;
  napi_create_int32(env, wd, &out);
  return out;
}

static napi_value js_rm_watch(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!envd_args(env, info, 2, argv, "inotifyRmWatch(handle, wd)")) return NULL;
  watcher_t *w = unwrap_handle(env, argv[0]);
  if (w == NULL) return NULL;
  int32_t wd;
  napi_get_value_int32(env, argv[1], &wd);
  napi_value out;
  // EINVAL just means the kernel already dropped the watch (its inode went away).
  napi_get_boolean(env, !w->closing && inotify_rm_watch(w->fd, wd) == 0, &out);
  return out;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!envd_args(env, info, 1, argv, "inotifyClose(handle)")) return NULL;
  watcher_t *w = unwrap_handle(env, argv[0]);
  if (w == NULL) return NULL;
  teardown(w);
  return NULL;
}

napi_value envd_init_inotify(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"inotifyOpen", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
    {"inotifyAddWatch", NULL, js_add_watch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"inotifyRmWatch", NULL, js_rm_watch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"inotifyClose", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
