// File operations on descriptors: a path is resolved once into a directory descriptor (openat2, or a
// component-by-component O_PATH|O_NOFOLLOW walk where openat2 is missing or cannot follow an absolute
// symlink beneath a root), and every later step acts on that descriptor or on (dirfd, name). Nothing
// here looks a path up twice, so a symlink swapped in between a check and a use cannot redirect it.
//
// Descriptors are plain numbers owned by the JavaScript caller, who closes them (fs.closeSync).
// Errors throw with `code` set to the errno name, like node:fs.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <node_api.h>

#include "addon-util.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

/** Symlinks followed in one resolution, as Linux's MAXSYMLINKS. */
#define MAX_HOPS 40

static int openat2_missing = 0;

static int sys_openat2(int dirfd, const char *path, int flags, mode_t mode, unsigned long long resolve) {
  if (openat2_missing) {
    errno = ENOSYS;
    return -1;
  }
  struct open_how how = {.flags = (unsigned long long)flags | O_CLOEXEC, .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0, .resolve = resolve};
  int fd;
  do fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  while (fd < 0 && errno == EAGAIN);
  if (fd < 0 && errno == ENOSYS) openat2_missing = 1;
  return fd;
}

// ---- the walk --------------------------------------------------------------------------------

/** How a path is resolved: from `root` (the jail, or "/"), refusing escapes when `jail`. */
struct resolver {
  int root;
  bool jail;
  const char *root_path;  // the jail's real path: absolute symlink targets beneath it stay inside
  size_t root_len;
  int create_uid, create_gid;  // >= 0: missing directories are created, owned by them from birth
  mode_t create_mode;
};

struct dirstack {
  int *fd;
  size_t n, cap;
};

static void stack_clear(struct dirstack *s) {
  for (size_t i = 0; i < s->n; i++) close(s->fd[i]);
  s->n = 0;
}

static int stack_push(struct dirstack *s, int fd) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    int *grown = realloc(s->fd, cap * sizeof *grown);
    if (!grown) {
      close(fd);
      errno = ENOMEM;
      return -1;
    }
    s->fd = grown;
    s->cap = cap;
  }
  s->fd[s->n++] = fd;
  return 0;
}

static int stack_reset(struct dirstack *s, int root) {
  stack_clear(s);
  // No jail: absolute paths start at "/" (the caller passes AT_FDCWD for that).
  int fd = root == AT_FDCWD ? open("/", O_PATH | O_DIRECTORY | O_CLOEXEC) : fcntl(root, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return -1;
  return stack_push(s, fd);
}

/** Whether a directory descriptor holds nothing but "." and "..". */
static bool dir_is_empty(int fd) {
  char buf[512];
  long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
  if (n < 0) return false;
  for (long off = 0; off < n;) {
    struct dirent64 *e = (struct dirent64 *)(buf + off);
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) return false;
    off += e->d_reclen;
  }
  return true;
}

/**
 * mkdirat, then the new entry opened O_NOFOLLOW|O_DIRECTORY and, once fstat shows it is what this
 * process just made (a directory, owned by us, empty: not a symlink or another directory swapped in
 * since), fchown'ed on that descriptor. Returns the descriptor; -1 with EEXIST when the name was taken (by anyone, before or
 * after our mkdirat), so the caller treats it as an existing entry and never chowns it.
 */
static int mkdir_owned(int dirfd, const char *name, mode_t mode, int uid, int gid) {
  if (mkdirat(dirfd, name, mode) < 0) return -1;
  int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    errno = EEXIST;
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || !dir_is_empty(fd)) {
    close(fd);
    errno = EEXIST;
    return -1;
  }
  if (fchown(fd, (uid_t)uid, (gid_t)gid) < 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

/** Reads the symlink `fd` (an O_PATH|O_NOFOLLOW descriptor) or (dirfd, name) into a malloc'd string. */
static char *read_link(int dirfd, const char *name) {
  char *buf = malloc(PATH_MAX + 1);
  if (!buf) {
    errno = ENOMEM;
    return NULL;
  }
  ssize_t n = readlinkat(dirfd, name, buf, PATH_MAX);
  if (n < 0) {
    free(buf);
    return NULL;
  }
  if (n >= PATH_MAX) {
    free(buf);
    errno = ENAMETOOLONG;
    return NULL;
  }
  buf[n] = 0;
  return buf;
}

/** `head` + "/" + `tail` in a new string (the rest of a walk after a symlink). */
static char *join_rest(const char *head, const char *tail) {
  size_t a = strlen(head), b = tail ? strlen(tail) : 0;
  if (a + b + 2 > PATH_MAX * 4) {
    errno = ENAMETOOLONG;
    return NULL;
  }
  char *s = malloc(a + b + 2);
  if (!s) {
    errno = ENOMEM;
    return NULL;
  }
  memcpy(s, head, a);
  s[a] = '/';
  if (b) memcpy(s + a + 1, tail, b);
  s[a + 1 + b] = 0;
  return s;
}

/**
 * Walks `path` from the resolver's root one component at a time (each opened O_PATH|O_NOFOLLOW
 * beneath the descriptor of the one before; symlinks read from the descriptor and their text walked
 * in turn; ".." pops the walk's own stack, so it never climbs above the root). Stops at the final
 * component: on success *dirfd is the directory holding it and *name (malloc'd) its name, which may
 * not exist. With `follow`, a final symlink is followed too, so *name is never a symlink then.
 */
static int walk(const struct resolver *r, const char *path, bool follow, int *dirfd, char **name) {
  struct dirstack st = {0};
  char *rest = strdup(path);
  char *last = NULL;
  char c[NAME_MAX + 1];
  int hops = 0, err = 0, retries = 0;
  if (!rest) return errno = ENOMEM, -1;
  if (stack_reset(&st, r->root) < 0) goto fail;
  const char *p = rest;
  for (;;) {
    if (*p == '/') {
      // An absolute symlink target: from the top again; in a jail only where it names something
      // beneath the jail's own path (the host's spelling, as clients give paths).
      if (r->jail && r->root_len > 1) {
        if (strncmp(p, r->root_path, r->root_len) != 0 || (p[r->root_len] != '/' && p[r->root_len] != 0)) {
          errno = EXDEV;
          goto fail;
        }
        p += r->root_len;
      }
      if (stack_reset(&st, r->root) < 0) goto fail;
      while (*p == '/') p++;
    }
    if (*p == 0) {
      last = strdup(".");  // the path names the directory on top of the stack itself
      break;
    }
    const char *end = strchrnul(p, '/');
    if ((size_t)(end - p) > NAME_MAX) {
      errno = ENAMETOOLONG;
      goto fail;
    }
    memcpy(c, p, (size_t)(end - p));
    c[end - p] = 0;
    const char *next = end;
    while (*next == '/') next++;
    bool final = *next == 0;
    if (strcmp(c, ".") == 0 || strcmp(c, "..") == 0) {
      if (c[1] == '.') {
        if (st.n > 1) close(st.fd[--st.n]);
        else if (r->jail) {
          errno = EXDEV;
          goto fail;
        }
      }
      if (final) {
        last = strdup(".");
        break;
      }
      p = next;
      continue;
    }
    int top = st.fd[st.n - 1];
    if (final && !follow) {
      last = strdup(c);
      break;
    }
    int fd = openat(top, c, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      if (final) {
        last = strdup(c);
        break;
      }
      if (r->create_uid < 0) goto fail;
      fd = mkdir_owned(top, c, r->create_mode, r->create_uid, r->create_gid);
      if (fd < 0 && errno == EEXIST && ++retries < 100) continue;  // someone else made it: look again
      if (fd < 0) goto fail;
    }
    if (fd < 0) goto fail;
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
      err = errno;
      close(fd);
      errno = err;
      goto fail;
    }
    if (S_ISLNK(sb.st_mode)) {
      if (++hops > MAX_HOPS) {
        close(fd);
        errno = ELOOP;
        goto fail;
      }
      char *target = read_link(fd, "");
      close(fd);
      if (!target) goto fail;
      char *joined = join_rest(target, final ? NULL : next);
      free(target);
      if (!joined) goto fail;
      free(rest);
      rest = joined;
      p = rest;
      continue;
    }
    if (final) {
      close(fd);
      last = strdup(c);
      break;
    }
    if (!S_ISDIR(sb.st_mode)) {
      close(fd);
      errno = ENOTDIR;
      goto fail;
    }
    if (stack_push(&st, fd) < 0) goto fail;
    p = next;
  }
  if (!last) {
    errno = ENOMEM;
    goto fail;
  }
  *dirfd = st.fd[--st.n];
  *name = last;
  stack_clear(&st);
  free(st.fd);
  free(rest);
  return 0;
fail:
  err = errno;
  stack_clear(&st);
  free(st.fd);
  free(rest);
  free(last);
  errno = err;
  return -1;
}

static unsigned long long resolve_flags(const struct resolver *r) {
  return RESOLVE_NO_MAGICLINKS | (r->jail ? RESOLVE_BENEATH : 0);
}

/** The path openat2 is given: beneath the root descriptor in a jail, absolute otherwise. */
static const char *relative_for_openat2(const char *path) {
  while (*path == '/') path++;
  return *path ? path : ".";
}

/**
 * resolve_parent: the directory holding the final component of `path`, and its name. One openat2 of
 * the parent in the usual case; the walk when openat2 is missing, refuses (an absolute symlink in a
 * jail, a missing directory to create) or the final component is a symlink to follow.
 */
static int resolve_parent(const struct resolver *r, const char *path, bool follow, int *dirfd, char **name) {
  // The kernel's limit for one path, kept though the walk could go further: envd's answers match.
  if (strlen(path) >= PATH_MAX) return errno = ENAMETOOLONG, -1;
  if (r->jail) path = relative_for_openat2(path);
  size_t len = strlen(path);
  while (len > 1 && path[len - 1] == '/') len--;
  const char *slash = memrchr(path, '/', len);
  const char *base = slash ? slash + 1 : path;
  size_t base_len = (size_t)(path + len - base);
  bool simple = base_len > 0 && !(base_len == 1 && base[0] == '.') && !(base_len == 2 && base[0] == '.' && base[1] == '.');
  if (simple) {
    char *dir = strndup(path, (size_t)(base - path));
    if (!dir) return errno = ENOMEM, -1;
    const char *dp = r->jail ? relative_for_openat2(dir) : (*dir ? dir : ".");
    int fd = sys_openat2(r->root, dp, O_PATH | O_DIRECTORY, 0, resolve_flags(r));
    free(dir);
    if (fd >= 0) {
      char *nm = strndup(base, base_len);
      if (!nm) {
        close(fd);
        return errno = ENOMEM, -1;
      }
      struct stat sb;
      if (!follow || fstatat(fd, nm, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(sb.st_mode)) {
        *dirfd = fd;
        *name = nm;
        return 0;
      }
      free(nm);
      close(fd);
    }
  }
  return walk(r, path, follow, dirfd, name);
}

/** Opens `path` itself: one openat2, or the walk and an openat of the final name. */
static int open_resolved(const struct resolver *r, const char *path, int flags, mode_t mode) {
  if (r->jail) path = relative_for_openat2(path);
  int fd = sys_openat2(r->root, path, flags, mode, resolve_flags(r));
  if (fd >= 0) return fd;
  if (errno != ENOSYS && errno != EXDEV && !(errno == ELOOP && !(flags & O_NOFOLLOW))) return -1;
  int dirfd;
  char *name;
  if (walk(r, path, !(flags & O_NOFOLLOW), &dirfd, &name) < 0) return -1;
  fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC, mode);
  int err = errno;
  close(dirfd);
  free(name);
  errno = err;
  return fd;
}

// ---- errors ----------------------------------------------------------------------------------

/** An Error shaped like node:fs's: message "ENOENT: no such file or directory, <what>", code the errno name. */
static napi_value fd_error(napi_env env, int err, const char *what) {
  const char *name = strerrorname_np(err);
  char text[256];
  snprintf(text, sizeof text, "%s", strerror(err));
  if (text[0] >= 'A' && text[0] <= 'Z' && !(text[1] >= 'A' && text[1] <= 'Z')) text[0] = (char)(text[0] - 'A' + 'a');
  char msg[512];
  snprintf(msg, sizeof msg, "%s: %s, %s", name ? name : "EUNKNOWN", text, what);
  napi_value code, message, error;
  napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  return error;
}

static napi_value fd_throw(napi_env env, int err, const char *what) {
  napi_throw(env, fd_error(env, err, what));
  return NULL;
}

// ---- arguments -------------------------------------------------------------------------------

static bool get_int(napi_env env, napi_value v, int *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a number");
    return false;
  }
  return true;
}

static bool get_bool(napi_env env, napi_value v, bool *out) {
  if (napi_get_value_bool(env, v, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a boolean");
    return false;
  }
  return true;
}

static char *get_str(napi_env env, napi_value v) {
  char *s = envd_string_arg(env, v);
  if (!s) napi_throw_type_error(env, NULL, "expected a path without NUL bytes");
  return s;
}

static napi_value num(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

static napi_value buffer_of(napi_env env, const char *s) {
  napi_value out;
  void *data;
  napi_create_buffer_copy(env, strlen(s), s, &data, &out);
  return out;
}

/** The resolver from (root, jail, rootPath, uid, gid) arguments. rootPath is kept until free_resolver. */
static bool get_resolver(napi_env env, napi_value *argv, struct resolver *r) {
  memset(r, 0, sizeof *r);
  r->create_uid = r->create_gid = -1;
  r->create_mode = 0755;
  if (!get_int(env, argv[0], &r->root) || !get_bool(env, argv[1], &r->jail)) return false;
  char *rp = get_str(env, argv[2]);
  if (!rp) return false;
  size_t n = strlen(rp);
  while (n > 1 && rp[n - 1] == '/') rp[--n] = 0;
  r->root_path = rp;
  r->root_len = n;
  return true;
}

static void free_resolver(struct resolver *r) { free((char *)r->root_path); }

// resolveParent(rootFd, jail, rootPath, path, follow, uid, gid) -> [dirfd, nameBuffer]
// uid >= 0: missing directories on the way are created (0755 before umask) owned by uid:gid from birth.
static napi_value js_resolve_parent(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!envd_args(env, info, 7, argv, "resolveParent(rootFd, jail, rootPath, path, follow, uid, gid)")) return NULL;
  struct resolver r;
  if (!get_resolver(env, argv, &r)) return NULL;
  bool follow;
  char *path = NULL;
  if (!get_bool(env, argv[4], &follow) || !get_int(env, argv[5], &r.create_uid) || !get_int(env, argv[6], &r.create_gid) || !(path = get_str(env, argv[3]))) {
    free_resolver(&r);
    return NULL;
  }
  int dirfd;
  char *name;
  int rc = resolve_parent(&r, path, follow, &dirfd, &name);
  int err = errno;
  free(path);
  free_resolver(&r);
  if (rc < 0) return fd_throw(env, err, "resolve");
  napi_value arr;
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, num(env, dirfd));
  napi_set_element(env, arr, 1, buffer_of(env, name));
  free(name);
  return arr;
}

// openResolved(rootFd, jail, rootPath, path, flags, mode) -> fd
static napi_value js_open_resolved(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!envd_args(env, info, 6, argv, "openResolved(rootFd, jail, rootPath, path, flags, mode)")) return NULL;
  struct resolver r;
  if (!get_resolver(env, argv, &r)) return NULL;
  int flags, mode;
  char *path = NULL;
  if (!get_int(env, argv[4], &flags) || !get_int(env, argv[5], &mode) || !(path = get_str(env, argv[3]))) {
    free_resolver(&r);
    return NULL;
  }
  int fd = open_resolved(&r, path, flags, (mode_t)mode);
  int err = errno;
  free(path);
  free_resolver(&r);
  if (fd < 0) return fd_throw(env, err, "open");
  return num(env, fd);
}

// openAt(dirfd, name, flags, mode) -> fd
static napi_value js_open_at(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!envd_args(env, info, 4, argv, "openAt(dirfd, name, flags, mode)")) return NULL;
  int dirfd, flags, mode;
  if (!get_int(env, argv[0], &dirfd) || !get_int(env, argv[2], &flags) || !get_int(env, argv[3], &mode)) return NULL;
  char *name = get_str(env, argv[1]);
  if (!name) return NULL;
  int fd = openat(dirfd, name, flags | O_CLOEXEC, (mode_t)mode);
  int err = errno;
  free(name);
  if (fd < 0) return fd_throw(env, err, "openat");
  return num(env, fd);
}

/** The stat fields the daemon uses, as numbers: dev, ino, mode, nlink, uid, gid, rdev, size, atime/mtime/ctime (ms). */
static napi_value stat_array(napi_env env, const struct stat *sb) {
  double v[] = {(double)sb->st_dev, (double)sb->st_ino, sb->st_mode, (double)sb->st_nlink, sb->st_uid, sb->st_gid, (double)sb->st_rdev, (double)sb->st_size,
                sb->st_atim.tv_sec * 1e3 + sb->st_atim.tv_nsec / 1e6, sb->st_mtim.tv_sec * 1e3 + sb->st_mtim.tv_nsec / 1e6,
                sb->st_ctim.tv_sec * 1e3 + sb->st_ctim.tv_nsec / 1e6};
  napi_value arr;
  napi_create_array_with_length(env, 11, &arr);
  for (uint32_t i = 0; i < 11; i++) napi_set_element(env, arr, i, num(env, v[i]));
  return arr;
}

// statAt(dirfd, name, follow) -> number[] (see stat_array), or null when the name does not exist
static napi_value js_stat_at(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!envd_args(env, info, 3, argv, "statAt(dirfd, name, follow)")) return NULL;
  int dirfd;
  bool follow;
  if (!get_int(env, argv[0], &dirfd) || !get_bool(env, argv[2], &follow)) return NULL;
  char *name = get_str(env, argv[1]);
  if (!name) return NULL;
  struct stat sb;
  int flags = (follow ? 0 : AT_SYMLINK_NOFOLLOW) | (*name ? 0 : AT_EMPTY_PATH);
  int rc = fstatat(dirfd, name, &sb, flags);
  int err = errno;
  free(name);
  if (rc < 0) {
    if (err == ENOENT) {
      napi_value nul;
      napi_get_null(env, &nul);
      return nul;
    }
    return fd_throw(env, err, "fstatat");
  }
  return stat_array(env, &sb);
}

// mkdirOwned(dirfd, name, mode, uid, gid) -> fd (O_PATH) of the new directory, owned by uid:gid
static napi_value js_mkdir_owned(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!envd_args(env, info, 5, argv, "mkdirOwned(dirfd, name, mode, uid, gid)")) return NULL;
  int dirfd, mode, uid, gid;
  if (!get_int(env, argv[0], &dirfd) || !get_int(env, argv[2], &mode) || !get_int(env, argv[3], &uid) || !get_int(env, argv[4], &gid)) return NULL;
  char *name = get_str(env, argv[1]);
  if (!name) return NULL;
  int fd = mkdir_owned(dirfd, name, (mode_t)mode, uid, gid);
  int err = errno;
  free(name);
  if (fd < 0) return fd_throw(env, err, "mkdirat");
  return num(env, fd);
}

// chownFd(fd, name, uid, gid, follow): fchownat; name "" means the descriptor itself (O_PATH ones too)
static napi_value js_chown_at(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!envd_args(env, info, 5, argv, "chownAt(fd, name, uid, gid, follow)")) return NULL;
  int fd, uid, gid;
  bool follow;
  if (!get_int(env, argv[0], &fd) || !get_int(env, argv[2], &uid) || !get_int(env, argv[3], &gid) || !get_bool(env, argv[4], &follow)) return NULL;
  char *name = get_str(env, argv[1]);
  if (!name) return NULL;
  int flags = (follow ? 0 : AT_SYMLINK_NOFOLLOW) | (*name ? 0 : AT_EMPTY_PATH);
  int rc = fchownat(fd, name, (uid_t)uid, (gid_t)gid, flags);
  int err = errno;
  free(name);
  if (rc < 0) return fd_throw(env, err, "fchownat");
  return NULL;
}

// chmodFd(fd, mode): the mode of the file a descriptor (O_PATH ones too) refers to
static napi_value js_chmod_fd(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!envd_args(env, info, 2, argv, "chmodFd(fd, mode)")) return NULL;
  int fd, mode;
  if (!get_int(env, argv[0], &fd) || !get_int(env, argv[1], &mode)) return NULL;
  if (fchmod(fd, (mode_t)mode) == 0) return NULL;
  if (errno != EBADF) return fd_throw(env, errno, "fchmod");
  // An O_PATH descriptor: fchmodat2 (Linux 6.6) takes it with AT_EMPTY_PATH; before that, the
  // descriptor's own /proc entry names exactly the inode it holds.
  if (syscall(SYS_fchmodat2, fd, "", (mode_t)mode, AT_EMPTY_PATH) == 0) return NULL;
  if (errno != ENOSYS && errno != EINVAL) return fd_throw(env, errno, "fchmodat2");
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  if (chmod(proc, (mode_t)mode) < 0) return fd_throw(env, errno, "chmod");
  return NULL;
}

// renameAt(olddirfd, oldname, newdirfd, newname, flags) — flags as renameat2 (RENAME_NOREPLACE = 1)
static napi_value js_rename_at(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!envd_args(env, info, 5, argv, "renameAt(olddirfd, oldname, newdirfd, newname, flags)")) return NULL;
  int od, nd, flags;
  if (!get_int(env, argv[0], &od) || !get_int(env, argv[2], &nd) || !get_int(env, argv[4], &flags)) return NULL;
  char *on = get_str(env, argv[1]);
  if (!on) return NULL;
  char *nn = get_str(env, argv[3]);
  if (!nn) {
    free(on);
    return NULL;
  }
  int rc = renameat2(od, on, nd, nn, (unsigned)flags);
  int err = errno;
  free(on);
  free(nn);
  if (rc < 0) return fd_throw(env, err, "renameat2");
  return NULL;
}

// unlinkAt(dirfd, name, flags) — AT_REMOVEDIR = 0x200
static napi_value js_unlink_at(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!envd_args(env, info, 3, argv, "unlinkAt(dirfd, name, flags)")) return NULL;
  int dirfd, flags;
  if (!get_int(env, argv[0], &dirfd) || !get_int(env, argv[2], &flags)) return NULL;
  char *name = get_str(env, argv[1]);
  if (!name) return NULL;
  int rc = unlinkat(dirfd, name, flags);
  int err = errno;
  free(name);
  if (rc < 0) return fd_throw(env, err, "unlinkat");
  return NULL;
}

// symlinkAt(target, dirfd, name)
static napi_value js_symlink_at(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!envd_args(env, info, 3, argv, "symlinkAt(target, dirfd, name)")) return NULL;
  int dirfd;
  if (!get_int(env, argv[1], &dirfd)) return NULL;
  char *target = get_str(env, argv[0]);
  if (!target) return NULL;
  char *name = get_str(env, argv[2]);
  if (!name) {
    free(target);
    return NULL;
  }
  int rc = symlinkat(target, dirfd, name);
  int err = errno;
  free(target);
  free(name);
  if (rc < 0) return fd_throw(env, err, "symlinkat");
  return NULL;
}

// readlinkAt(dirfd, name) -> Buffer ("" name: the O_PATH|O_NOFOLLOW descriptor of a symlink itself)
static napi_value js_readlink_at(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!envd_args(env, info, 2, argv, "readlinkAt(dirfd, name)")) return NULL;
  int dirfd;
  if (!get_int(env, argv[0], &dirfd)) return NULL;
  char *name = get_str(env, argv[1]);
  if (!name) return NULL;
  char *target = read_link(dirfd, name);
  int err = errno;
  free(name);
  if (!target) return fd_throw(env, err, "readlinkat");
  napi_value out = buffer_of(env, target);
  free(target);
  return out;
}

// utimesAt(dirfd, name, atimeMs, mtimeMs, follow) ("" name: the descriptor itself)
static napi_value js_utimes_at(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!envd_args(env, info, 5, argv, "utimesAt(dirfd, name, atimeMs, mtimeMs, follow)")) return NULL;
  int dirfd;
  double at, mt;
  bool follow;
  if (!get_int(env, argv[0], &dirfd) || napi_get_value_double(env, argv[2], &at) != napi_ok || napi_get_value_double(env, argv[3], &mt) != napi_ok ||
      !get_bool(env, argv[4], &follow))
    return NULL;
  char *name = get_str(env, argv[1]);
  if (!name) return NULL;
  struct timespec ts[2];
  double ms[2] = {at, mt};
  for (int i = 0; i < 2; i++) {
    double sec = ms[i] / 1e3;
    ts[i].tv_sec = (time_t)sec;
    if ((double)ts[i].tv_sec > sec) ts[i].tv_sec--;
    ts[i].tv_nsec = (long)((ms[i] - (double)ts[i].tv_sec * 1e3) * 1e6);
    if (ts[i].tv_nsec < 0) ts[i].tv_nsec = 0;
    if (ts[i].tv_nsec > 999999999) ts[i].tv_nsec = 999999999;
  }
  int flags = (follow ? 0 : AT_SYMLINK_NOFOLLOW) | (*name ? 0 : AT_EMPTY_PATH);
  int rc = utimensat(dirfd, name, ts, flags);
  int err = errno;
  free(name);
  if (rc < 0) return fd_throw(env, err, "utimensat");
  return NULL;
}

// readDirFd(dirfd) -> Buffer[] of the names in a directory descriptor ("." and ".." left out)
static napi_value js_read_dir_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!envd_args(env, info, 1, argv, "readDirFd(dirfd)")) return NULL;
  int dirfd;
  if (!get_int(env, argv[0], &dirfd)) return NULL;
  int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fd_throw(env, errno, "openat");
  DIR *d = fdopendir(fd);
  if (!d) {
    int err = errno;
    close(fd);
    return fd_throw(env, err, "fdopendir");
  }
  napi_value arr;
  napi_create_array(env, &arr);
  uint32_t i = 0;
  struct dirent *e;
  errno = 0;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    napi_set_element(env, arr, i++, buffer_of(env, e->d_name));
    errno = 0;
  }
  int err = errno;
  closedir(d);
  if (err) return fd_throw(env, err, "readdir");
  return arr;
}

// ---- asynchronous variants: opens and renames that may wait on the disk ------------------------

enum async_op { OP_OPEN_AT, OP_OPEN_RESOLVED, OP_RENAME_AT };

struct async_req {
  napi_async_work work;
  napi_deferred deferred;
  enum async_op op;
  struct resolver r;
  int dirfd, dirfd2, flags, mode;
  char *a, *b;
  int result, err;
};

static void async_execute(napi_env env, void *data) {
  struct async_req *q = data;
  switch (q->op) {
    case OP_OPEN_AT:
      q->result = openat(q->dirfd, q->a, q->flags | O_CLOEXEC, (mode_t)q->mode);
      break;
    case OP_OPEN_RESOLVED:
      q->result = open_resolved(&q->r, q->a, q->flags, (mode_t)q->mode);
      break;
    case OP_RENAME_AT:
      q->result = renameat2(q->dirfd, q->a, q->dirfd2, q->b, (unsigned)q->flags);
      break;
  }
  q->err = errno;
}

static void async_complete(napi_env env, napi_status status, void *data) {
  struct async_req *q = data;
  if (q->result < 0) {
    const char *what = q->op == OP_RENAME_AT ? "renameat2" : "open";
    napi_reject_deferred(env, q->deferred, fd_error(env, q->err, what));
  } else if (q->op == OP_RENAME_AT) {
    napi_value undef;
    napi_get_undefined(env, &undef);
    napi_resolve_deferred(env, q->deferred, undef);
  } else {
    napi_resolve_deferred(env, q->deferred, num(env, q->result));
  }
  napi_delete_async_work(env, q->work);
  free(q->a);
  free(q->b);
  if (q->op == OP_OPEN_RESOLVED) free_resolver(&q->r);
  free(q);
}

static napi_value queue(napi_env env, struct async_req *q) {
  napi_value promise, name;
  napi_create_promise(env, &q->deferred, &promise);
  napi_create_string_utf8(env, "envd_fdops", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, async_execute, async_complete, q, &q->work);
  napi_queue_async_work(env, q->work);
  return promise;
}

// openAtAsync(dirfd, name, flags, mode) -> Promise<fd>
static napi_value js_open_at_async(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!envd_args(env, info, 4, argv, "openAtAsync(dirfd, name, flags, mode)")) return NULL;
  struct async_req *q = calloc(1, sizeof *q);
  if (!q) return fd_throw(env, ENOMEM, "openat");
  q->op = OP_OPEN_AT;
  if (!get_int(env, argv[0], &q->dirfd) || !get_int(env, argv[2], &q->flags) || !get_int(env, argv[3], &q->mode) || !(q->a = get_str(env, argv[1]))) {
    free(q);
    return NULL;
  }
  return queue(env, q);
}

// openResolvedAsync(rootFd, jail, rootPath, path, flags, mode) -> Promise<fd>
static napi_value js_open_resolved_async(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!envd_args(env, info, 6, argv, "openResolvedAsync(rootFd, jail, rootPath, path, flags, mode)")) return NULL;
  struct async_req *q = calloc(1, sizeof *q);
  if (!q) return fd_throw(env, ENOMEM, "open");
  q->op = OP_OPEN_RESOLVED;
  if (!get_resolver(env, argv, &q->r)) {
    free(q);
    return NULL;
  }
  if (!get_int(env, argv[4], &q->flags) || !get_int(env, argv[5], &q->mode) || !(q->a = get_str(env, argv[3]))) {
    free_resolver(&q->r);
    free(q);
    return NULL;
  }
  return queue(env, q);
}

// renameAtAsync(olddirfd, oldname, newdirfd, newname, flags) -> Promise<void>
static napi_value js_rename_at_async(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!envd_args(env, info, 5, argv, "renameAtAsync(olddirfd, oldname, newdirfd, newname, flags)")) return NULL;
  struct async_req *q = calloc(1, sizeof *q);
  if (!q) return fd_throw(env, ENOMEM, "renameat2");
  q->op = OP_RENAME_AT;
  if (!get_int(env, argv[0], &q->dirfd) || !get_int(env, argv[2], &q->dirfd2) || !get_int(env, argv[4], &q->flags) || !(q->a = get_str(env, argv[1]))) {
    free(q);
    return NULL;
  }
  if (!(q->b = get_str(env, argv[3]))) {
    free(q->a);
    free(q);
    return NULL;
  }
  return queue(env, q);
}

napi_value envd_init_fdops(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"resolveParent", NULL, js_resolve_parent, NULL, NULL, NULL, napi_default, NULL},
      {"openResolved", NULL, js_open_resolved, NULL, NULL, NULL, napi_default, NULL},
      {"openResolvedAsync", NULL, js_open_resolved_async, NULL, NULL, NULL, napi_default, NULL},
      {"openAt", NULL, js_open_at, NULL, NULL, NULL, napi_default, NULL},
      {"openAtAsync", NULL, js_open_at_async, NULL, NULL, NULL, napi_default, NULL},
      {"statAt", NULL, js_stat_at, NULL, NULL, NULL, napi_default, NULL},
      {"mkdirOwned", NULL, js_mkdir_owned, NULL, NULL, NULL, napi_default, NULL},
      {"chownAt", NULL, js_chown_at, NULL, NULL, NULL, napi_default, NULL},
      {"chmodFd", NULL, js_chmod_fd, NULL, NULL, NULL, napi_default, NULL},
      {"renameAt", NULL, js_rename_at, NULL, NULL, NULL, napi_default, NULL},
      {"renameAtAsync", NULL, js_rename_at_async, NULL, NULL, NULL, napi_default, NULL},
      {"unlinkAt", NULL, js_unlink_at, NULL, NULL, NULL, napi_default, NULL},
      {"symlinkAt", NULL, js_symlink_at, NULL, NULL, NULL, napi_default, NULL},
      {"readlinkAt", NULL, js_readlink_at, NULL, NULL, NULL, napi_default, NULL},
      {"utimesAt", NULL, js_utimes_at, NULL, NULL, NULL, napi_default, NULL},
      {"readDirFd", NULL, js_read_dir_fd, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
