#!/usr/bin/env bash
# The test command: installs dependencies, builds, runs every test with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
./scripts/build.sh
# Tests run one at a time: each uses every core through LibTorch's pool.
ctest --test-dir build --output-on-failure --timeout 1200 "$@"
