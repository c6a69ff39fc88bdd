// Hides a secret given on the command line or in the environment from /proc/<pid>/cmdline and
// /proc/<pid>/environ. The kernel shows those files straight from the strings exec put at the
// top of the stack; Node copied them at start and never reads them again, so they can be
// overwritten in place. Writing /proc/self/mem would do the same from JS, but kernels may refuse
// it (EIO), and process.title would also rename the process (comm) and drop every argument.
//
// JS API (exported on the addon object):
//   scrubProcessStrings(secret: string): number   overwrites every occurrence of `secret` in the
//                                                 argument and environment areas with '*'; returns
//                                                 how many it overwrote. Throws Error with .code
//                                                 when /proc/self/stat cannot be read.
#define _GNU_SOURCE
#include <errno.h>
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

static size_t scrub_area(char *start, char *end, const char *secret, size_t len) {
  size_t count = 0;
  char *p = start;
  while (p < end && (size_t)(end - p) >= len) {
    char *hit = memmem(p, (size_t)(end - p), secret, len);
    if (hit == NULL) break;
    memset(hit, '*', len);
    p = hit + len;
    count++;
  }
  return count;
}

static napi_value js_scrub(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!envd_args(env, info, 1, argv, "scrubProcessStrings(secret)")) return NULL;
  char *secret = envd_string_arg(env, argv[0]);
  if (secret == NULL || secret[0] == 0) {
    free(secret);
    napi_throw_type_error(env, NULL, "scrubProcessStrings(secret): a non-empty string without NUL");
    return NULL;
  }
  unsigned long areas[4] = {0, 0, 0, 0};
  int err = read_areas(areas);
  if (err != 0) {
    free(secret);
    return envd_throw_errno(env, err, "/proc/self/stat");
  }
  size_t len = strlen(secret);
  size_t count = 0;
  if (areas[0] && areas[1] > areas[0]) count += scrub_area((char *)areas[0], (char *)areas[1], secret, len);
  if (areas[2] && areas[3] > areas[2]) count += scrub_area((char *)areas[2], (char *)areas[3], secret, len);
  free(secret);
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
