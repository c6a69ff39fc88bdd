#!/bin/sh
# Rebuilds envd_ts/descriptors.binpb from the repository's .proto files (needs protoc).
set -e
cd "$(dirname "$0")/../../.."
protoc -I proto --include_imports --descriptor_set_out=clients/python/envd_ts/descriptors.binpb \
  proto/envdts/v1/process_ext.proto proto/envdts/v1/filesystem_ext.proto proto/envdts/v1/proxy.proto proto/envdts/v1/system.proto
