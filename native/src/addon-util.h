// Helpers the addon's modules share: errno errors shaped like Node's, and string arguments.
#ifndef ENVD_ADDON_UTIL_H
#define ENVD_ADDON_UTIL_H
#include <stdbool.h>
#include <node_api.h>

// An Error with .code the errno's name ("ENOENT") and message "<what>: <strerror>".
napi_value envd_errno_error(napi_env env, int err, const char *what);

// Throws envd_errno_error; returns NULL for `return envd_throw_errno(...)`.
napi_value envd_throw_errno(napi_env env, int err, const char *what);

// A string or Buffer argument as a malloc'd NUL-terminated string; NULL when it is neither, or
// holds a NUL byte (which C would silently cut at), or memory runs out. Nothing is thrown.
char *envd_string_arg(napi_env env, napi_value v);

// Reads exactly `n` arguments into argv; with fewer, throws a TypeError with `usage` and returns false.
bool envd_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *usage);

#endif
