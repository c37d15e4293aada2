#!/usr/bin/env bash
# Configures and builds AutoQ (Release, ccache) into build/. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
# Paths relative to the checkout in ccache's keys: a fresh clone elsewhere
# reuses the objects an earlier build compiled.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR=1
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
