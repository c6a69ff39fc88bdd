#include <node_api.h>
napi_value envd_init_inotify(napi_env env, napi_value exports) { return exports; }
