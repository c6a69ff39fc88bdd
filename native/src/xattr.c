#include <node_api.h>
napi_value envd_init_xattr(napi_env env, napi_value exports) { return exports; }
