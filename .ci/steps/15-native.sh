#!/usr/bin/env bash
# Native layer (test/native.test.ts, and the MPTCP check of test/lifecycle.test.ts): mptcpize turns a Node
# process's TCP sockets into MPTCP ones for the MPTCP suite; strace (installed by 10-observers.sh) watches the
# bad-argument check; unshare/nsenter (util-linux) give each child its own network namespace. Idempotent:
# installs only what is missing.
set -euo pipefail

if ! command -v mptcpize >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mptcpize </dev/null
fi

for tool in mptcpize strace unshare nsenter ip; do
  command -v "$tool" >/dev/null || { echo "15-native: $tool is missing" >&2; exit 1; }
done
[ -e /proc/sys/net/mptcp/enabled ] || { echo "15-native: this kernel has no MPTCP (CONFIG_MPTCP), which test/native.test.ts needs" >&2; exit 1; }
echo "15-native: mptcpize, strace, unshare and nsenter ready; kernel $(uname -r), net.mptcp.enabled=$(cat /proc/sys/net/mptcp/enabled)"
