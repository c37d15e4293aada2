#!/usr/bin/env bash
# Prints the Debian packages that hold the shared libraries the given programs
# link directly (apt pulls in the rest), one per line. The Dockerfile installs
# these in the runtime image, which so has no compilers or headers.
#   deploy/docker/runtime-packages.sh build/server/autoq-server ...
set -eu
cache=$(ldconfig -p)
libs=$(for prog in "$@"; do objdump -p "$prog" | awk '$1 == "NEEDED" {print $2}'; done | sort -u)
for lib in $libs; do
  path=$(awk -v n="$lib" '$1 == n {print $NF}' <<<"$cache" | head -n 1)
  [ -n "$path" ] || { echo "runtime-packages: $lib not found" >&2; exit 1; }
  pkg=""
  # Debian 12 merged /lib into /usr/lib; dpkg knows each file under one name.
  for p in "$path" "$(readlink -f "$path")" "/usr$path" "${path#/usr}"; do
    pkg=$(dpkg-query -S "$p" 2>/dev/null | cut -d: -f1 | head -n 1 || true)
    [ -n "$pkg" ] && break
  done
  [ -n "$pkg" ] || { echo "runtime-packages: no package holds $path" >&2; exit 1; }
  echo "$pkg"
done | sort -u
