#!/usr/bin/env bash
# Prepares this machine for `npm test`: the build is current and, when running
# as root, the `user` account the tests act as exists with home /home/user.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f native/build/Release/envd_native.node ] || [ ! -x native/build/Release/envd-launcher ]; then
  npm run --silent build:native >/dev/null
fi
npx tsc -p tsconfig.json
if [ "$(id -u)" = "0" ] && ! id user >/dev/null 2>&1; then
  useradd --create-home --home-dir /home/user --shell /bin/bash user
fi
