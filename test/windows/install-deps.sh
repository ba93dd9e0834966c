#!/usr/bin/env bash
# What the Windows build and its test under Wine need: mingw-w64 (cross-build), nftables, iproute2 and a C
# compiler (the Linux-side observers), patchelf (for Wine 10, which install-wine10.sh unpacks privately).
set -euo pipefail

packages=(g++-mingw-w64-x86-64 gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64 nftables iproute2 gcc libc6-dev patchelf)

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all present"
else
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

bash "$(dirname "$0")/install-wine10.sh" >/dev/null
