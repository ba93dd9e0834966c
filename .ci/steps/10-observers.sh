#!/usr/bin/env bash
# The Linux observers most suites read the kernel through. A C compiler with the C library's headers builds
# test/support/sockopt-observer.c, which reads the socket options of another process's descriptor
# (test/contract.test.ts, test/lifecycle.test.ts, test/servers.test.ts, test/property.test.ts,
# test/channels.test.ts, test/default.test.ts, test/register.test.ts, test/drivers.test.ts,
# test/dead-after.test.ts); ip makes private network namespaces and nft drops a peer's packets in them
# (test/deadpeer.test.ts, test/dead-after.test.ts, test/tcp-info.test.ts, test/demo.test.ts); ss shows the
# keepalive timer (test/contract.test.ts, test/ss.test.ts, test/tcp-info.test.ts); strace watches the
# bad-argument check (test/native.test.ts). Idempotent: installs only what is missing.
set -euo pipefail

need=()
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v ss >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v cc >/dev/null 2>&1 || need+=(gcc)
# gcc only recommends the headers, and a bare debian:12 has none.
[ -e /usr/include/stdio.h ] || need+=(libc6-dev)
command -v strace >/dev/null 2>&1 || need+=(strace)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null
fi

for tool in nft ss ip cc strace; do
  command -v "$tool" >/dev/null || { echo "10-observers: $tool is missing" >&2; exit 1; }
done
echo "10-observers: nft, ss, ip, cc and strace ready"
