#!/usr/bin/env bash
# The long fuzz run: every libFuzzer target of fuzz/ for at least 10^6
# executions (AddressSanitizer + UBSan), from the seeds and the corpus the
# earlier runs grew in build-fuzz/corpus/. Prints each target's
# executions, time, coverage (edges) and features; a crash stops with its
# input in build-fuzz/crashes/TARGET/ (add it as a regression test, fix,
# run again). Numbers go in bench/README.md.
#   bench/run_fuzz.sh [--runs 1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=1000000
if [ "${1:-}" = "--runs" ]; then runs=$2; fi
exec ./scripts/fuzz.sh --runs "$runs"
