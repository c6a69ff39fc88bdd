{
  "targets": [
    {
      "target_name": "envd_native",
      "sources": ["src/addon.c", "src/addon-util.c", "src/inotify.c", "src/xattr.c", "src/process.c", "src/dirstat.c", "src/spawn.c", "src/proctitle.c", "src/fsuser.c", "src/fdops.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "envd-launcher",
      "type": "executable",
      "sources": ["src/launcher.c", "src/launcher-limits.c", "src/launcher-mounts.c", "src/launcher-security.c", "src/launcher-userns.c", "src/launcher-confine.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      # Static: no dynamic loader to run at every command (0.49 -> 0.37 ms over a direct spawn).
      "ldflags": ["-static"]
    }
  ]
}
