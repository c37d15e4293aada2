#!/usr/bin/env bash
# Configures and builds AutoQ (Release, ccache) into build/. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
