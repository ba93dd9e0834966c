#!/usr/bin/env bash
# Runs FILE.js in Windows node.exe under Wine 10, in a private network namespace, with the win32-x64 prebuild
# only (PREBUILDS_ONLY=1): the hook bench/run.js uses for its Windows section. Needs what test/windows/run.sh
# leaves behind (Wine 10, node.exe, prebuilds/win32-x64). The other arguments are passed through; Linux paths
# among them stay Linux paths (FILE.js itself is turned into its Z: path). Exits with node.exe's status.
# usage: bash test/windows/run-js.sh FILE.js [ARGS...]   (KA_WINDOWS_NODE_VERSION picks the node.exe)
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
file="$(realpath "$1")"
shift
version="${KA_WINDOWS_NODE_VERSION:-24.21.0}"
node_exe="$root/.cache/windows/node-$version/node.exe"
[ -s "$node_exe" ] || { echo "run-js: $node_exe is missing (npm run test:windows fetches it)" >&2; exit 1; }
[ -d "$root/prebuilds/win32-x64" ] || { echo "run-js: prebuilds/win32-x64 is missing (npm run build:windows)" >&2; exit 1; }
wine_bin="$(bash "$root/test/windows/install-wine10.sh")"

export PATH="$wine_bin:$PATH" WINEPREFIX="$root/.cache/windows/run-js-prefix" WINEDEBUG=-all WINEDLLOVERRIDES='mscoree,mshtml=' PREBUILDS_ONLY=1
unset DISPLAY WAYLAND_DISPLAY
# Wine's sockets are made by wineserver, so it must start inside the namespace and die with it.
exec unshare --net -- bash -c '
  set -euo pipefail
  ip link set lo up
  [ -f "$WINEPREFIX/system.reg" ] || wineprefix-init >/dev/null 2>&1
  status=0
  wine "$0" "Z:${1//\//\\}" "${@:2}" || status=$?
  wineserver -k 2>/dev/null || true
  exit "$status"
' "$node_exe" "$file" "$@"
