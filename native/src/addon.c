// envd_native: the few Linux calls Node has no API for (inotify, extended attributes, pipes, batched directory stats,
// hiding a secret from /proc/<pid>/cmdline, filesystem calls made as another user, descriptor-based file operations).
#include <node_api.h>

napi_value envd_init_inotify(napi_env env, napi_value exports);
napi_value envd_init_xattr(napi_env env, napi_value exports);
napi_value envd_init_process(napi_env env, napi_value exports);
napi_value envd_init_dirstat(napi_env env, napi_value exports);
napi_value envd_init_spawn(napi_env env, napi_value exports);
napi_value envd_init_proctitle(napi_env env, napi_value exports);
napi_value envd_init_fsuser(napi_env env, napi_value exports);
napi_value envd_init_fdops(napi_env env, napi_value exports);

static napi_value init(napi_env env, napi_value exports) {
  envd_init_inotify(env, exports);
  envd_init_xattr(env, exports);
  envd_init_process(env, exports);
  envd_init_dirstat(env, exports);
  envd_init_spawn(env, exports);
  envd_init_proctitle(env, exports);
  envd_init_fsuser(env, exports);
  envd_init_fdops(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
