#!/usr/bin/env bash
# Wine 10 from Debian 13 (trixie), unpacked into .cache/wine10 without touching the system: Debian 12's
# Wine 8 cannot start node.exe 24 or 26 ("Fatal process out of memory: SegmentedTable"). Trixie's binaries
# need glibc >= 2.38, so trixie's libc6 comes along and patchelf points Wine's two executables at it.
# The packages come from the Debian mirror the system already uses, through a private apt configuration;
# trixie is never added to the system's sources. Prints the bin/ folder to put first on PATH.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="$root/.cache/wine10"
tree="$cache/root"
bin="$cache/bin"
stamp="$cache/installed"
packages=(wine wine64 libwine libc6 libgcc-s1 libunwind8 liblzma5 libz-mingw-w64)

# The stamp names the folder (patchelf wrote absolute paths) and this script's hash (a new script reinstalls).
stamp_value="$tree $(sha256sum "$0" | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_value" ] && "$bin/wine" --version >/dev/null 2>&1; then
  echo "install-wine10: $("$bin/wine" --version) in ${cache#"$root"/} (cached)" >&2
  echo "$bin"
  exit 0
fi

for tool in apt-get dpkg patchelf; do
  command -v "$tool" >/dev/null || { echo "install-wine10: $tool not found (test/windows/install-deps.sh installs it)" >&2; exit 1; }
done

mirror_of_system() {
  local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
  local uri
  uri="$(cat "${files[@]}" 2>/dev/null | awk '
    /^[[:space:]]*#/ { next }
    /^[[:space:]]*deb[[:space:]]/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; exit } }
    /^URIs:/ { print $2; exit }' | grep -E '/debian/?$' | head -n1 || true)"
  echo "${uri:-http://deb.debian.org/debian}"
}

mirror="$(mirror_of_system)"
apt_dir="$cache/apt"
rm -rf "$apt_dir" "$tree" "$bin" "$stamp"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/debs" "$tree" "$bin"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror%/} trixie main" > "$apt_dir/sources.list"
apt=(
  -o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=-
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::archives=$apt_dir/archives"
  -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o Debug::NoLocking=1
  -o APT::Sandbox::User=root -o Acquire::Languages=none
)
echo "install-wine10: trixie from $mirror into ${cache#"$root"/}" >&2
apt-get "${apt[@]}" -qq update >&2
(cd "$apt_dir/debs" && apt-get "${apt[@]}" -qq download "${packages[@]}" >&2)
for deb in "$apt_dir"/debs/*.deb; do dpkg -x "$deb" "$tree"; done

loader="$tree/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
for exe in "$tree/usr/lib/wine/wine64" "$tree/usr/lib/wine/wineserver64"; do
  patchelf --set-interpreter "$loader" --force-rpath --set-rpath "$tree/usr/lib/x86_64-linux-gnu" "$exe"
done
# Debian's wineserver is a script naming /usr/lib/wine/wineserver64; Wine looks for it beside wine64.
ln -sfn wineserver64 "$tree/usr/lib/wine/wineserver"
# Debian builds wineserver with DATADIR=/usr/share/wine, so it looks for its NLS files in share/wine/wine/nls.
ln -sfn . "$tree/usr/share/wine/wine"

for name in wine wineserver; do
  exe=wine64
  [ "$name" = wineserver ] && exe=wineserver64
  cat > "$bin/$name" <<EOF
#!/bin/sh
# Wine 10 from ${cache#"$root"/} (test/windows/install-wine10.sh). zlib1.dll, which Wine's user32 needs,
# comes from trixie's libz-mingw-w64. TMPDIR is unset because with it set (to anything) Wine 10.0 aborts at
# start with "free(): invalid pointer".
unset TMPDIR
export WINESYSTEMDLLPATH="$tree/usr/x86_64-w64-mingw32/lib"
exec "$tree/usr/lib/wine/$exe" "\$@"
EOF
  chmod +x "$bin/$name"
done
cat > "$bin/wineboot" <<EOF
#!/bin/sh
exec "$bin/wine" wineboot "\$@"
EOF
chmod +x "$bin/wineboot"

# A new prefix for $WINEPREFIX. zlib1.dll goes into its system32 first: services get their environment from
# the registry, not WINESYSTEMDLLPATH, and without it their user32 (so plugplay, ole32 users) fails to load.
cat > "$bin/wineprefix-init" <<EOF
#!/bin/sh
set -e
: "\${WINEPREFIX:?wineprefix-init: set WINEPREFIX}"
mkdir -p "\$WINEPREFIX/drive_c/windows/system32"
cp "$tree/usr/x86_64-w64-mingw32/lib/zlib1.dll" "\$WINEPREFIX/drive_c/windows/system32/"
"$bin/wine" wineboot -i
"$bin/wine" winecfg -v win10
EOF
chmod +x "$bin/wineprefix-init"

version="$("$bin/wine" --version)"
case "$version" in
  wine-10.*) ;;
  *) echo "install-wine10: expected Wine 10, got '$version'" >&2; exit 1 ;;
esac
echo "install-wine10: $version from $(cd "$apt_dir/debs" && ls | sed -E 's/_(amd64|all)\.deb$//' | tr '\n' ' ')" >&2
rm -rf "$apt_dir"
echo "$stamp_value" > "$stamp"
echo "$bin"
