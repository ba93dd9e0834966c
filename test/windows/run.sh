#!/usr/bin/env bash
# npm run test:windows: the addon cross-built with mingw-w64, then this folder's contract run in real Windows
# node.exe builds under Wine 10 and, as a check that the same contract is live code, in this Linux Node, all in
# a private network namespace where driver.js answers for what only Linux can see (ss, nft, the descriptor).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
versions="${KA_WINDOWS_NODE_VERSIONS:-20.20.2 22.23.3 24.21.0 26.10.0}"

bash "$here/install-deps.sh"
wine_bin="$(bash "$here/install-wine10.sh")"
bash "$root/scripts/windows/build.sh"
# shellcheck disable=SC2086
bash "$here/fetch-node.sh" $versions

if [ ! -f "$root/dist/index.js" ]; then
  echo "test:windows: $root/dist/index.js is missing; run npm run build:ts first" >&2
  exit 1
fi

export PATH="$wine_bin:$PATH" KA_WINDOWS_NODE_VERSIONS="$versions"
KA_OUTER_NETNS="$(readlink /proc/self/ns/net)" exec unshare --net -- node "$here/driver.js"
