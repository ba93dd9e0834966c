#!/usr/bin/env bash
# Windows: the addon cross-built with mingw-w64, run in real node.exe under Wine.
set -euo pipefail
bash scripts/windows/install-deps.sh
npm run test:windows
