#!/usr/bin/env bash
# The test command: installs dependencies, builds, runs every test with CTest,
# then builds the QAT core alone (-DAUTOQ_CORE_ONLY=ON, what a GPU node with
# only a CUDA LibTorch builds) and runs its tests, then runs each fuzz
# target of fuzz/ for a few seconds (AddressSanitizer + UBSan).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
./scripts/build.sh
# Tests that train or run whole jobs are RUN_SERIAL (they use every core
# through LibTorch's pool); the rest mostly wait, so they run side by side.
ctest --test-dir build --output-on-failure --timeout 1200 -j"$(nproc)" "$@"
BUILD_DIR=build-core ./scripts/build.sh -DAUTOQ_CORE_ONLY=ON
ctest --test-dir build-core --output-on-failure --timeout 1200 -j"$(nproc)" "$@"
./scripts/fuzz.sh --seconds 5
