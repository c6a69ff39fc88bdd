{
  "targets": [
    {
      "target_name": "envd_native",
      "sources": ["src/addon.c", "src/inotify.c", "src/xattr.c", "src/process.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "envd-launcher",
      "type": "executable",
      "sources": ["src/launcher.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
