#!/usr/bin/env bash
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

bash "$here/install-deps.sh"
bash "$here/build.sh"
bash "$here/fetch-node.sh" ${KA_WINDOWS_NODE_VERSIONS:-20.20.2 22.23.3}

if [ ! -f "$root/dist/index.js" ]; then
  echo "test:windows: $root/dist/index.js is missing; run npm run build:ts first" >&2
  exit 1
fi

KA_OUTER_NETNS="$(readlink /proc/self/ns/net)" exec unshare --net -- node "$here/driver.js"
