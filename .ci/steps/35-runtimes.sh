#!/usr/bin/env bash
# Bun and Deno from npm, at the versions pinned in test/runtimes/versions.json, unpacked into .cache/runtimes/
# (git-ignored) for test/runtimes.test.ts, which runs the contract under each. Idempotent: a runtime already
# unpacked and answering its version is kept. No install scripts run: the package's tarball is unpacked.
set -euo pipefail
cd "$(dirname "$0")/../.."

dir=.cache/runtimes
started=$(date +%s.%N)

# unpack NAME: the npm package pinned for NAME, to $dir/NAME-VERSION/NAME.
unpack() {
  local name=$1 package version inner
  read -r package version inner < <(node -p "const r = require('./test/runtimes/versions.json')['$name']; [r.package, r.version, r.binary].join(' ')")
  local target="$dir/$name-$version"
  if [ -x "$target/$name" ] && [ "$("$target/$name" --version 2>/dev/null | head -1 | grep -o '[0-9][0-9.]*' | head -1)" = "$version" ]; then
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
  echo "35-runtimes: installed $name $version from npm $package into $target"
}

unpack bun
unpack deno

bun_version=$(node -p "require('./test/runtimes/versions.json').bun.version")
deno_version=$(node -p "require('./test/runtimes/versions.json').deno.version")
echo "35-runtimes: bun $("$dir/bun-$bun_version/bun" --version), $("$dir/deno-$deno_version/deno" --version | head -1) ($(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f s", e - s }'))"
