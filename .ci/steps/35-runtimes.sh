#!/usr/bin/env bash
# Bun and Deno from npm, pinned, into .cache/runtimes/ (git-ignored): test/runtimes.test.ts runs the contract
# under each. Idempotent: a runtime already unpacked and answering its version is kept.
set -euo pipefail
cd "$(dirname "$0")/../.."

BUN_VERSION=1.4.5
DENO_VERSION=2.9.6
dir=.cache/runtimes

# unpack NPM_PACKAGE VERSION BINARY_IN_PACKAGE NAME: the package's tarball from the registry, without running
# any install script, to $dir/NAME-VERSION/NAME.
unpack() {
  local package=$1 version=$2 inner=$3 name=$4
  local target="$dir/$name-$version"
  if [ -x "$target/$name" ] && "$target/$name" --version >/dev/null 2>&1; then
    echo "35-runtimes: $name $version already in $target"
    return
  fi
  local work
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent --no-audit --no-fund "$package@$version" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work"
  mkdir -p "$target"
  install -m 0755 "$work/package/$inner" "$target/$name.partial"
  mv -f "$target/$name.partial" "$target/$name"
  rm -rf "$work"
  "$target/$name" --version >/dev/null
  echo "35-runtimes: installed $name $version into $target"
}

unpack @oven/bun-linux-x64 "$BUN_VERSION" bin/bun bun
unpack @deno/linux-x64-glibc "$DENO_VERSION" deno deno

echo "35-runtimes: bun $("$dir/bun-$BUN_VERSION/bun" --version), $("$dir/deno-$DENO_VERSION/deno" --version | head -1)"
