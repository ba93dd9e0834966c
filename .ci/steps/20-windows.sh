#!/usr/bin/env bash
# Windows: the addon cross-built with mingw-w64 and the portable contract run in real node.exe 22, 24 and 26
# under Wine 10 (Debian trixie's, unpacked into .cache/wine10 by test/windows/install-wine10.sh; the system
# keeps its own packages), then in this Linux Node; test/windows/run.sh.
set -euo pipefail
start=$SECONDS
bash test/windows/install-deps.sh
echo "20-windows: tools ready in $((SECONDS - start)) s"
npm run test:windows
echo "20-windows: $((SECONDS - start)) s in all"
