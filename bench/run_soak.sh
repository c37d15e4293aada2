#!/usr/bin/env bash
# Chaos soak, long version (10-12 minutes on 2 cores): a real
# autoq-server, 8 no-op worker processes and 8 WatchJob streams run 20
# rounds of 3 jobs (population 512 x 8 generations, ~70 000 tasks) while
# workers are SIGKILLed (every ~5 s), the server is SIGKILLed and restarted
# (every ~30 s), workers holding a lease are SIGSTOPped past their lease
# (every ~10 s) and watch streams are dropped (every ~2 s). Prints the
# figures (tasks, faults by kind, recomputations, time) and exits non-zero
# if a promise of the service was broken (see tests/soak/soak.cc). The
# CTest test service_soak_short is `autoq_soak --short`.
#
#   bench/run_soak.sh [autoq_soak flags], e.g. --seed N --rounds 2 --keep
#
# BUILD (default build) is the build folder; the fixture model comes from
# BUILD/fixtures (generated here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
if [ ! -x "$build/tests/soak/autoq_soak" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)" --target autoq_soak autoq-server
fi
if [ ! -f "$build/fixtures/small_dscnn.pt" ]; then
  (cd "$build" && ctest -R fixtures_models --output-on-failure >/dev/null)
fi
AUTOQ_FIXTURES="$build/fixtures" exec "$build/tests/soak/autoq_soak" "$@"
