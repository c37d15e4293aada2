#!/usr/bin/env bash
# Configures and builds AutoQ (Release, ccache) into $BUILD_DIR (default
# build/). Extra arguments go to CMake's configure step, e.g.
# `BUILD_DIR=build-core scripts/build.sh -DAUTOQ_CORE_ONLY=ON`. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
dir=${BUILD_DIR:-build}
# Paths relative to the checkout in ccache's keys: a fresh clone elsewhere
# reuses the objects an earlier build compiled.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR=1
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$dir" -j"$jobs"
