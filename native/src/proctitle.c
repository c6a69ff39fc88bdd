// Hides a secret given on the command line or in the environment from /proc/<pid>/cmdline and
// /proc/<pid>/environ. The kernel shows those files straight from the strings exec put at the
// top of the stack; Node copied them at start and never reads them again, so they can be
// overwritten in place. Writing /proc/self/mem would do the same from JS, but kernels may refuse
// it (EIO), and process.title would also rename the process (comm) and drop every argument.
//
// JS API (exported on the addon object):
//   scrubProcessStrings(secret, variable): number  overwrites with '*' every argument equal to
//                                                 `secret`, the value of `--access-token=<secret>`,
//                                                 and the value of the environment entry
//                                                 `<variable>=...`; returns how many it overwrote.
//                                                 Throws Error with .code when /proc/self/stat
//                                                 cannot be read.
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>

#include "addon-util.h"

// Fields 48..51 of /proc/self/stat (Linux 3.5+): arg_start, arg_end, env_start, env_end.
static int read_areas(unsigned long areas[4]) {
  char buf[4096];
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  int err = errno;
  close(fd);
  if (n <= 0) return n < 0 ? err : EIO;
  buf[n] = 0;
  // The name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
  char *p = strrchr(buf, ')');
  if (p == NULL) return EIO;
  p++;
  for (int field = 3; field <= 51; field++) {
    while (*p == ' ') p++;
    if (*p == 0) return EIO;
    char *end;
    unsigned long v = strtoul(p, &end, 10);
    if (field >= 48) areas[field - 48] = v;
    p = end;
    while (*p != ' ' && *p != 0) p++;
  }
  return 0;
}

// Whether `name` (the part of an argument before '=') is one of the access-token flags.
static bool is_token_flag(const char *name, size_t len) {
  return (len == 14 && memcmp(name, "--access-token", 14) == 0) || (len == 13 && memcmp(name, "-access-token", 13) == 0);
}

// Arguments: one equal to the secret (the value after `--access-token`), or the value of
// `--access-token=<secret>`. Nothing else is touched: a short token must not mangle other words.
static size_t scrub_args(char *p, char *end, const char *secret) {
  size_t count = 0;
  while (p < end) {
    size_t len = strnlen(p, (size_t)(end - p));
    char *eq = memchr(p, '=', len);
    if (strcmp(p, secret) == 0) {
      memset(p, '*', len);
      count++;
    } else if (eq != NULL && is_token_flag(p, (size_t)(eq - p)) && strcmp(eq + 1, secret) == 0) {
      memset(eq + 1, '*', len - (size_t)(eq + 1 - p));
      count++;
    }
    p += len + 1;
  }
  return count;
}

// The environment: the value of `<name>=` only. Node reads variables straight from this memory,
// so touching any other entry would change what the daemon sees in it.
static size_t scrub_env(char *p, char *end, const char *name) {
  size_t count = 0;
  size_t name_len = strlen(name);
  while (p < end) {
    size_t len = strnlen(p, (size_t)(end - p));
    if (len > name_len && memcmp(p, name, name_len) == 0 && p[name_len] == '=') {
      memset(p + name_len + 1, '*', len - name_len - 1);
      count++;
    }
    p += len + 1;
  }
  return count;
}

static napi_value js_scrub(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!envd_args(env, info, 2, argv, "scrubProcessStrings(secret, variable)")) return NULL;
  char *secret = envd_string_arg(env, argv[0]);
  char *variable = envd_string_arg(env, argv[1]);
  if (secret == NULL || secret[0] == 0 || variable == NULL || variable[0] == 0) {
    free(secret);
    free(variable);
    napi_throw_type_error(env, NULL, "scrubProcessStrings(secret, variable): non-empty strings without NUL");
    return NULL;
  }
  unsigned long areas[4] = {0, 0, 0, 0};
  int err = read_areas(areas);
  if (err != 0) {
    free(secret);
    free(variable);
    return envd_throw_errno(env, err, "/proc/self/stat");
  }
  size_t count = 0;
  if (areas[0] && areas[1] > areas[0]) count += scrub_args((char *)areas[0], (char *)areas[1], secret);
  if (areas[2] && areas[3] > areas[2]) count += scrub_env((char *)areas[2], (char *)areas[3], variable);
  free(secret);
  free(variable);
  napi_value out;
  napi_create_uint32(env, (uint32_t)count, &out);
  return out;
}

napi_value envd_init_proctitle(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "scrubProcessStrings", NAPI_AUTO_LENGTH, js_scrub, NULL, &fn);
  napi_set_named_property(env, exports, "scrubProcessStrings", fn);
  return exports;
}
