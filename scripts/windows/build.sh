#!/usr/bin/env bash
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cxx=x86_64-w64-mingw32-g++
nm=x86_64-w64-mingw32-nm
dlltool=x86_64-w64-mingw32-dlltool
objdump=x86_64-w64-mingw32-objdump

for tool in "$cxx" "$nm" "$dlltool" "$objdump" node; do
  command -v "$tool" >/dev/null || { echo "build:windows: $tool not found (run test/windows/install-deps.sh)" >&2; exit 1; }
done

node_include="${NODE_INCLUDE_DIR:-$(node -p "require('path').join(process.execPath, '../../include/node')")}"
[ -f "$node_include/node_api.h" ] || node_include=/usr/include/node
[ -f "$node_include/uv/win.h" ] || { echo "build:windows: no Node headers with uv/win.h in $node_include" >&2; exit 1; }
addon_include="$(cd "$root" && node -p "require('node-addon-api').include_dir")"
case "$addon_include" in /*) ;; *) addon_include="$root/$addon_include" ;; esac

work="$root/.cache/windows/build"
out_dir="$root/prebuilds/win32-x64"
out="$out_dir/tcp-keepalive.napi.node"
rm -rf "$work"
mkdir -p "$work" "$out_dir"

flags=(
  -std=c++17 -O2 -Wall -Wextra -Werror
  -DNAPI_VERSION=8 -DNAPI_DISABLE_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED -DNAPI_HAS_THREADS=0
  -DWIN32_LEAN_AND_MEAN -DNOMINMAX
  -I"$node_include" -I"$addon_include"
)

objects=()
for source in addon keepalive_win; do
  "$cxx" "${flags[@]}" -c "$root/src-native/$source.cc" -o "$work/$source.o"
  objects+=("$work/$source.o")
done

{
  echo "LIBRARY node.exe"
  echo "EXPORTS"
  "$nm" -u "${objects[@]}" | awk '{print $NF}' | grep -E '^(napi_|node_api_|uv_)' | sort -u
} > "$work/node.def"
"$dlltool" -d "$work/node.def" -l "$work/libnode.a"

"$cxx" -shared -o "$out" "${objects[@]}" -L"$work" -lnode -lws2_32 -static-libstdc++ -static-libgcc -s

imports="$("$objdump" -p "$out" | awk '/DLL Name:/ {print $3}' | tr 'A-Z' 'a-z' | sort -u | tr '\n' ' ')"
for dll in $imports; do
  case "$dll" in
    node.exe|ws2_32.dll|kernel32.dll|msvcrt.dll|api-ms-win-crt-*.dll) ;;
    *) echo "build:windows: $out imports $dll, which a user's machine may lack" >&2; exit 1 ;;
  esac
done

echo "build:windows: $out ($(stat -c %s "$out") bytes; imports: $imports; $(grep -c -E '^(napi_|node_api_|uv_)' "$work/node.def") node.exe symbols)"
