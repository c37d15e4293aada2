#!/usr/bin/env bash
# Service load bench: an in-process autoq-server on loopback, 64 no-op
# workers (one channel each) and 100 WatchJob streams over 2 jobs of
# population 512 x 8 generations (~8 700 tasks). Prints tasks dispatched
# per second (target >= 500/s), lease latency percentiles and watch events
# per second, and exits non-zero if a task was lost or run twice, a
# completion was refused, or a watcher missed its job's end.
#
#   bench/run_service_bench.sh [service_load_bench flags]
#   e.g. --workers 64 --watchers 100 --jobs 2 --population 512
#        --generations 8, or --server HOST:PORT --client-token-file F
#        --worker-token-file F to load an external autoq-server.
#
# BUILD (default build) is the build folder; the fixture model comes from
# BUILD/fixtures (generate it with `ctest -R fixtures_models`).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
if [ ! -x "$build/bench/service_load_bench" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)" --target service_load_bench
fi
if [ ! -f "$build/fixtures/small_dscnn.pt" ]; then
  (cd "$build" && ctest -R fixtures_models --output-on-failure >/dev/null)
fi
AUTOQ_FIXTURES="$build/fixtures" exec "$build/bench/service_load_bench" "$@"
