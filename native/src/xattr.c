// Extended attributes (listxattr/getxattr/setxattr/removexattr), which Node lacks.
// The path calls follow symlinks, as E2B's envd does; the f* ones act on a descriptor. Errors throw with `code` set to the errno name.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <node_api.h>

#include "addon-util.h"

#define PATH_MAX_LEN 4096
#define NAME_MAX_LEN 256

// Paths are UTF-8; attribute names travel as latin1 so that any byte survives the round trip.
static int get_string_as(napi_env env, napi_value v, char *buf, size_t cap, int latin1) {
  size_t len = 0;
  napi_status st = latin1 ? napi_get_value_string_latin1(env, v, buf, cap, &len) : napi_get_value_string_utf8(env, v, buf, cap, &len);
  if (st != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a string");
    return -1;
  }
  if (len >= cap - 1) {
    napi_throw_error(env, "ENAMETOOLONG", "argument too long");
    return -1;
  }
  if (strlen(buf) != len) {
    napi_throw_error(env, "EINVAL", "argument contains a NUL byte");
    return -1;
  }
  return 0;
}

static int get_string(napi_env env, napi_value v, char *buf, size_t cap) { return get_string_as(env, v, buf, cap, 0); }
static int get_name(napi_env env, napi_value v, char *buf, size_t cap) { return get_string_as(env, v, buf, cap, 1); }

// listXattr(path) -> string[] of attribute names
static napi_value list_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!envd_args(env, info, 1, argv, "listXattr(path)")) return NULL;
  char path[PATH_MAX_LEN];
  if (get_string(env, argv[0], path, sizeof path) < 0) return NULL;
  ssize_t size = listxattr(path, NULL, 0);
  if (size < 0) return envd_throw_errno(env, errno, "listxattr");
  char *buf = malloc(size > 0 ? (size_t)size : 1);
  if (!buf) return envd_throw_errno(env, ENOMEM, "listxattr");
  size = listxattr(path, buf, (size_t)size);
  if (size < 0) {
    int err = errno;
    free(buf);
    return envd_throw_errno(env, err, "listxattr");
  }
  napi_value arr;
  napi_create_array(env, &arr);
  uint32_t idx = 0;
  for (ssize_t off = 0; off < size;) {
    size_t n = strlen(buf + off);
    napi_value s;
    napi_create_string_latin1(env, buf + off, n, &s);
    napi_set_element(env, arr, idx++, s);
    off += (ssize_t)n + 1;
  }
  free(buf);
  return arr;
}

// getXattr(path, name) -> Buffer
static napi_value get_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!envd_args(env, info, 2, argv, "getXattr(path, name)")) return NULL;
  char path[PATH_MAX_LEN], name[NAME_MAX_LEN];
  if (get_string(env, argv[0], path, sizeof path) < 0 || get_name(env, argv[1], name, sizeof name) < 0) return NULL;
  ssize_t size = getxattr(path, name, NULL, 0);
  if (size < 0) return envd_throw_errno(env, errno, "getxattr");
  void *data;
  napi_value result;
  napi_create_buffer(env, (size_t)size, &data, &result);
  if (size > 0) {
    ssize_t got = getxattr(path, name, data, (size_t)size);
    if (got < 0) return envd_throw_errno(env, errno, "getxattr");
    if (got != size) {
      napi_value sliced;
      void *d2;
      napi_create_buffer_copy(env, (size_t)got, data, &d2, &sliced);
      return sliced;
    }
  }
  return result;
}

// setXattr(path, name, Buffer value)
static napi_value set_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!envd_args(env, info, 3, argv, "setXattr(path, name, value)")) return NULL;
  char path[PATH_MAX_LEN], name[NAME_MAX_LEN];
  if ( get_string(env, argv[0], path, sizeof path) < 0 || get_name(env, argv[1], name, sizeof name) < 0) return NULL;
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "value must be a Buffer");
    return NULL;
  }
  if (setxattr(path, name, data, len, 0) < 0) return envd_throw_errno(env, errno, "setxattr");
  return NULL;
}

// removeXattr(path, name)
static napi_value remove_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!envd_args(env, info, 2, argv, "removeXattr(path, name)")) return NULL;
  char path[PATH_MAX_LEN], name[NAME_MAX_LEN];
  if (get_string(env, argv[0], path, sizeof path) < 0 || get_name(env, argv[1], name, sizeof name) < 0) return NULL;
  if (removexattr(path, name) < 0) return envd_throw_errno(env, errno, "removexattr");
  return NULL;
}

// The same four on a descriptor (fd first): what an operation that opened its file once acts on.
static napi_value flist_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!envd_args(env, info, 1, argv, "flistXattr(fd)") || napi_get_value_int32(env, argv[0], &fd) != napi_ok) return NULL;
  ssize_t size = flistxattr(fd, NULL, 0);
  if (size < 0) return envd_throw_errno(env, errno, "flistxattr");
  char *buf = malloc(size > 0 ? (size_t)size : 1);
  if (!buf) return envd_throw_errno(env, ENOMEM, "flistxattr");
  size = flistxattr(fd, buf, (size_t)size);
  if (size < 0) {
    int err = errno;
    free(buf);
    return envd_throw_errno(env, err, "flistxattr");
  }
  napi_value arr;
  napi_create_array(env, &arr);
  uint32_t idx = 0;
  for (ssize_t off = 0; off < size;) {
    size_t n = strlen(buf + off);
    napi_value s;
    napi_create_string_latin1(env, buf + off, n, &s);
    napi_set_element(env, arr, idx++, s);
    off += (ssize_t)n + 1;
  }
  free(buf);
  return arr;
}

static napi_value fget_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  char name[NAME_MAX_LEN];
  if (!envd_args(env, info, 2, argv, "fgetXattr(fd, name)") || napi_get_value_int32(env, argv[0], &fd) != napi_ok || get_name(env, argv[1], name, sizeof name) < 0) return NULL;
  ssize_t size = fgetxattr(fd, name, NULL, 0);
  if (size < 0) return envd_throw_errno(env, errno, "fgetxattr");
  void *data;
  napi_value result;
  napi_create_buffer(env, (size_t)size, &data, &result);
  if (size > 0) {
    ssize_t got = fgetxattr(fd, name, data, (size_t)size);
    if (got < 0) return envd_throw_errno(env, errno, "fgetxattr");
    if (got != size) {
      napi_value sliced;
      void *d2;
      napi_create_buffer_copy(env, (size_t)got, data, &d2, &sliced);
      return sliced;
    }
  }
  return result;
}

static napi_value fset_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd;
  char name[NAME_MAX_LEN];
  if (!envd_args(env, info, 3, argv, "fsetXattr(fd, name, value)") || napi_get_value_int32(env, argv[0], &fd) != napi_ok || get_name(env, argv[1], name, sizeof name) < 0) return NULL;
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "value must be a Buffer");
    return NULL;
  }
  if (fsetxattr(fd, name, data, len, 0) < 0) return envd_throw_errno(env, errno, "fsetxattr");
  return NULL;
}

static napi_value fremove_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  char name[NAME_MAX_LEN];
  if (!envd_args(env, info, 2, argv, "fremoveXattr(fd, name)") || napi_get_value_int32(env, argv[0], &fd) != napi_ok || get_name(env, argv[1], name, sizeof name) < 0) return NULL;
  if (fremovexattr(fd, name) < 0) return envd_throw_errno(env, errno, "fremovexattr");
  return NULL;
}

napi_value envd_init_xattr(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"listXattr", NULL, list_xattr, NULL, NULL, NULL, napi_default, NULL},
      {"getXattr", NULL, get_xattr, NULL, NULL, NULL, napi_default, NULL},
      {"setXattr", NULL, set_xattr, NULL, NULL, NULL, napi_default, NULL},
      {"removeXattr", NULL, remove_xattr, NULL, NULL, NULL, napi_default, NULL},
      {"flistXattr", NULL, flist_xattr, NULL, NULL, NULL, napi_default, NULL},
      {"fgetXattr", NULL, fget_xattr, NULL, NULL, NULL, napi_default, NULL},
      {"fsetXattr", NULL, fset_xattr, NULL, NULL, NULL, napi_default, NULL},
      {"fremoveXattr", NULL, fremove_xattr, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
