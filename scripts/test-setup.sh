#!/usr/bin/env bash
# Prepares this machine for `npm test`: the build is current and, when running
# as root, the `user` account the tests act as exists with home /home/user.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f native/build/Release/envd_native.node ] || [ ! -x native/build/Release/envd-launcher ]; then
  npm run --silent build:native >/dev/null
fi
npx tsc -p tsconfig.json
node scripts/build-terminal.mjs >/dev/null
# Debian packages some tests drive for real: Chromium (web terminal), tini (the image's PID 1),
# Prometheus' Python client parser, httpx and protobuf for the Python client. Installed once;
# skipped when present or when not root.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/tini ] || missing+=(tini)
[ -f /usr/lib/python3/dist-packages/prometheus_client/parser.py ] || missing+=(python3-prometheus-client)
# The Python client's dependencies (clients/python, test/python-client.test.ts).
[ -d /usr/lib/python3/dist-packages/httpx ] || missing+=(python3-httpx)
[ -d /usr/lib/python3/dist-packages/google/protobuf ] || missing+=(python3-protobuf)
if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "$(id -u)" = "0" ] && ! id user >/dev/null 2>&1; then
  useradd --create-home --home-dir /home/user --shell /bin/bash user
fi
