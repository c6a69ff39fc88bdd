// One directory read in one call: the entries' names sorted by bytes, and for each the lstat
// fields EntryInfo needs and whether it carries user.e2b.* extended attributes. A listing of
// 10,000 entries was 20,000 N-API calls (lstat, listxattr) and as many objects; now it is one
// call that returns three flat arrays, and it can run on the thread pool.
//
// JS API (exported on the addon object):
//   readDirStat(dir: Buffer): Listing             synchronous; throws Error with .code on failure
//   readDirStatAsync(dir: Buffer): Promise<Listing>  the same on the libuv thread pool
// Listing = { names: Buffer (each name followed by a NUL), ends: Uint32Array (name i is
//   names[ends[i-1]+1 .. ends[i]), ends[-1] = -1), fields: Float64Array (DIRSTAT_FIELDS per entry) }
// Fields of entry i at i*DIRSTAT_FIELDS: errno of the lstat (0 = ok), st_mode, st_uid, st_gid,
// st_size, mtime seconds, mtime nanoseconds, d_type, flags (DIRSTAT_E2B_XATTR | DIRSTAT_INEXACT).
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <node_api.h>

#include "addon-util.h"

#define DIRSTAT_FIELDS 9
// Some name of the entry's xattrs starts with "user.e2b." (the caller reads them the usual way).
#define DIRSTAT_E2B_XATTR 1
// A size or time beyond 2^53, which a double cannot carry exactly.
#define DIRSTAT_INEXACT 2
// The kernel's PATH_MAX, terminating NUL included: longer paths fail with ENAMETOOLONG.
#define KERNEL_PATH_MAX 4096
// xattr.c's listXattr refuses paths of this many bytes or more; metadata there reads as none.
#define XATTR_PATH_LIMIT 4095
#define E2B_PREFIX "user.e2b."

struct listing {
  char *dir;  // NUL-terminated path of the directory
  size_t dir_len;
  char *names;  // sorted, each NUL-terminated
  size_t names_len;
  uint32_t *ends;
  double *fields;
  size_t count;
  int err;  // errno of opening or reading the directory
  const char *syscall;
};

static void listing_free(struct listing *l) {
  free(l->dir);
  free(l->names);
  free(l->ends);
  free(l->fields);
  memset(l, 0, sizeof *l);
}

struct raw_entry {
  size_t off;
  unsigned char type;
};

// Byte order (strcmp compares as unsigned char), as Buffer.compare and Go sort names.
static int by_name(const void *a, const void *b, void *names) {
  return strcmp((const char *)names + ((const struct raw_entry *)a)->off, (const char *)names + ((const struct raw_entry *)b)->off);
}

static int has_e2b_name(const char *list, ssize_t len) {
  for (ssize_t off = 0; off < len;) {
    size_t n = strnlen(list + off, (size_t)(len - off));
    if (n >= sizeof E2B_PREFIX - 1 && memcmp(list + off, E2B_PREFIX, sizeof E2B_PREFIX - 1) == 0) return 1;
    off += (ssize_t)n + 1;
  }
  return 0;
}

// Follows the final symlink, like listXattr; only called for entries that are no symlink.
static int e2b_xattr_flag(const char *path, char **buf, size_t *cap) {
  ssize_t n = listxattr(path, *buf, *cap);
  while (n < 0 && errno == ERANGE) {
    ssize_t need = listxattr(path, NULL, 0);
    if (need < 0) return 0;
    char *grown = realloc(*buf, (size_t)need + 1);
    if (!grown) return 0;
    *buf = grown;
    *cap = (size_t)need + 1;
    n = listxattr(path, *buf, *cap);
  }
  return n > 0 && has_e2b_name(*buf, n);
}

static double exact(int64_t v, double *flags) {
  if (v > (INT64_C(1) << 53) || v < -(INT64_C(1) << 53)) *flags = (double)((int)*flags | DIRSTAT_INEXACT);
  return (double)v;
}

// The lstat fields and xattr flag of the n entries of a listing whose names are in place.
// (Split across two threads it measured no faster here: same directory, 2 vCPUs.)
static int stat_entries(struct listing *l, int dfd, size_t n) {
  size_t xcap = 1024;
  char *xbuf = malloc(xcap), *path = malloc(KERNEL_PATH_MAX + 1);
  if (!xbuf || !path) {
    free(xbuf);
    free(path);
    return ENOMEM;
  }
  size_t sep = (l->dir_len == 1 && l->dir[0] == '/') ? 0 : 1;
  memcpy(path, l->dir, l->dir_len);
  if (sep) path[l->dir_len] = '/';
  for (size_t i = 0; i < n; i++) {
    const char *name = l->names + (i == 0 ? 0 : l->ends[i - 1] + 1);
    size_t nl = l->ends[i] - (i == 0 ? 0 : l->ends[i - 1] + 1);
    double *f = l->fields + i * DIRSTAT_FIELDS;
    size_t full = l->dir_len + sep + nl;
    struct stat st;
    if (full >= KERNEL_PATH_MAX) {
      f[0] = ENAMETOOLONG;
      continue;
    }
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      f[0] = errno;
      continue;
    }
    f[1] = st.st_mode;
    f[2] = st.st_uid;
    f[3] = st.st_gid;
    f[4] = exact(st.st_size, &f[8]);
    f[5] = exact(st.st_mtim.tv_sec, &f[8]);
    f[6] = (double)st.st_mtim.tv_nsec;
    if (S_ISLNK(st.st_mode) || full >= XATTR_PATH_LIMIT) continue;
    memcpy(path + l->dir_len + sep, name, nl + 1);
    if (e2b_xattr_flag(path, &xbuf, &xcap)) f[8] = (double)((int)f[8] | DIRSTAT_E2B_XATTR);
  }
  free(xbuf);
  free(path);
  return 0;
}

// Reads and stats the whole directory; runs on any thread (touches no napi state).
static void read_listing(struct listing *l) {
  int dfd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    l->err = errno;
    l->syscall = "open";
    return;
  }
  DIR *d = fdopendir(dfd);
  if (!d) {
    l->err = errno;
    l->syscall = "fdopendir";
    close(dfd);
    return;
  }
  size_t cap = 4096, len = 0, n = 0, ncap = 256;
  char *blob = malloc(cap);
  struct raw_entry *raw = malloc(ncap * sizeof *raw);
  char *sorted = NULL;
  if (!blob || !raw) goto nomem;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) {
      if (errno != 0) {
        l->err = errno;
        l->syscall = "readdir";
        goto out;
      }
      break;
    }
    if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0))) continue;
    size_t nl = strlen(e->d_name) + 1;
    if (len + nl > cap) {
      while (len + nl > cap) cap *= 2;
      char *g = realloc(blob, cap);
      if (!g) goto nomem;
      blob = g;
    }
    if (n == ncap) {
      ncap *= 2;
      struct raw_entry *g = realloc(raw, ncap * sizeof *raw);
      if (!g) goto nomem;
      raw = g;
    }
    memcpy(blob + len, e->d_name, nl);
    raw[n].off = len;
    raw[n].type = e->d_type;
    n++;
    len += nl;
  }
  qsort_r(raw, n, sizeof *raw, by_name, blob);
  sorted = malloc(len > 0 ? len : 1);
  l->ends = malloc((n > 0 ? n : 1) * sizeof *l->ends);
  l->fields = malloc((n > 0 ? n : 1) * DIRSTAT_FIELDS * sizeof *l->fields);
  if (!sorted || !l->ends || !l->fields) goto nomem;
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    const char *name = blob + raw[i].off;
    size_t nl = strlen(name);
    memcpy(sorted + at, name, nl + 1);
    at += nl + 1;
    l->ends[i] = (uint32_t)(at - 1);
    double *f = l->fields + i * DIRSTAT_FIELDS;
    memset(f, 0, DIRSTAT_FIELDS * sizeof *f);
    f[7] = raw[i].type;
  }
  l->names = sorted;
  if (stat_entries(l, dfd, n) != 0) {
    l->names = NULL;
    goto nomem;
  }
  l->names_len = len;
  l->count = n;
  sorted = NULL;
  goto out;
nomem:
  l->err = ENOMEM;
  l->syscall = "malloc";
out:
  if (l->err) {
    free(l->ends);
    free(l->fields);
    l->ends = NULL;
    l->fields = NULL;
  }
  free(sorted);
  free(blob);
  free(raw);
  closedir(d);
}

static napi_value typed_copy(napi_env env, napi_typedarray_type type, const void *src, size_t count, size_t elem) {
  void *data;
  napi_value ab, ta;
  napi_create_arraybuffer(env, count * elem, &data, &ab);
  if (count) memcpy(data, src, count * elem);
  napi_create_typedarray(env, type, count, ab, 0, &ta);
  return ta;
}

static napi_value listing_value(napi_env env, struct listing *l) {
  napi_value obj, names;
  void *ignored;
  napi_create_object(env, &obj);
  napi_create_buffer_copy(env, l->names_len, l->names_len ? l->names : "", &ignored, &names);
  napi_set_named_property(env, obj, "names", names);
  napi_set_named_property(env, obj, "ends", typed_copy(env, napi_uint32_array, l->ends, l->count, sizeof *l->ends));
  napi_set_named_property(env, obj, "fields", typed_copy(env, napi_float64_array, l->fields, l->count * DIRSTAT_FIELDS, sizeof *l->fields));
  return obj;
}

// The directory argument: a Buffer of path bytes without NUL, copied so the thread pool owns it.
static int take_dir(napi_env env, napi_callback_info info, struct listing *l) {
  napi_value argv[1];
  if (!envd_args(env, info, 1, argv, "readDirStat(dir: Buffer)")) return -1;
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "readDirStat(dir: Buffer)");
    return -1;
  }
  if (len == 0 || len >= KERNEL_PATH_MAX || memchr(data, 0, len)) {
    napi_throw(env, envd_errno_error(env, len == 0 ? ENOENT : len >= KERNEL_PATH_MAX ? ENAMETOOLONG : EINVAL, "open"));
    return -1;
  }
  l->dir = malloc(len + 1);
  if (!l->dir) {
    napi_throw(env, envd_errno_error(env, ENOMEM, "malloc"));
    return -1;
  }
  memcpy(l->dir, data, len);
  l->dir[len] = 0;
  l->dir_len = len;
  return 0;
}

static napi_value read_dir_stat(napi_env env, napi_callback_info info) {
  struct listing l = {0};
  if (take_dir(env, info, &l) < 0) return NULL;
  read_listing(&l);
  napi_value result = NULL;
  if (l.err) napi_throw(env, envd_errno_error(env, l.err, l.syscall));
  else result = listing_value(env, &l);
  listing_free(&l);
  return result;
}

struct job {
  struct listing l;
  napi_async_work work;
  napi_deferred deferred;
};

static void job_execute(napi_env env, void *data) {
  (void)env;
  read_listing(&((struct job *)data)->l);
}

static void job_complete(napi_env env, napi_status status, void *data) {
  struct job *j = data;
  if (status != napi_ok) napi_reject_deferred(env, j->deferred, envd_errno_error(env, ECANCELED, "readDirStat"));
  else if (j->l.err) napi_reject_deferred(env, j->deferred, envd_errno_error(env, j->l.err, j->l.syscall));
  else napi_resolve_deferred(env, j->deferred, listing_value(env, &j->l));
  napi_delete_async_work(env, j->work);
  listing_free(&j->l);
  free(j);
}

static napi_value read_dir_stat_async(napi_env env, napi_callback_info info) {
  struct job *j = calloc(1, sizeof *j);
  if (!j) {
    napi_throw(env, envd_errno_error(env, ENOMEM, "malloc"));
    return NULL;
  }
  if (take_dir(env, info, &j->l) < 0) {
    free(j);
    return NULL;
  }
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "envd:readDirStat", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, job_execute, job_complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

napi_value envd_init_dirstat(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"readDirStat", NULL, read_dir_stat, NULL, NULL, NULL, napi_default, NULL},
      {"readDirStatAsync", NULL, read_dir_stat_async, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
