#!/usr/bin/env bash
# The unit tests under sanitizers:
#   1. ASan + UBSan (build-asan/): every test but the "heavy" ones (those that
#      train or run whole jobs: minutes each, and nothing they run is left
#      out of the unit tests);
#   2. TSan (build-tsan/): the tests of the server's concurrent core: its
#      store, the writer thread (group commit) and the task queue; with
#      --all also the event feed and the gRPC services (these link the
#      LibTorch half of the server: a build as long as the first).
# Prints the time of each part.
#   scripts/sanitize.sh [address|thread|both] [--all]   (default: both)
# Not part of the test command: the extra builds take the better part of
# an hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR=1
jobs=$(nproc)
which=${1:-both}
all=0
if [ "${2:-}" = "--all" ]; then all=1; fi
supp="$PWD/scripts/sanitizers"

run_address() {
  local start=$SECONDS
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release \
    -DAUTOQ_SANITIZE=address >/dev/null
  cmake --build build-asan -j"$jobs"
  local built=$SECONDS
  # Leaks: reported, and fatal, for AutoQ's own code; the suppressions
  # cover one-time allocations inside uninstrumented libraries.
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1" \
  LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    ctest --test-dir build-asan --output-on-failure --timeout 1800 \
    -j"$jobs" -LE heavy
  echo "sanitize: ASan+UBSan build $((built - start)) s, tests $((SECONDS - built)) s"
}

run_thread() {
  local start=$SECONDS
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Release \
    -DAUTOQ_SANITIZE=thread >/dev/null
  local tests=(server_store_test server_task_queue_test
               server_store_writer_test)
  local extra=()
  if [ "$all" = 1 ]; then
    tests+=(server_event_feed_test server_api_test)
    extra=(autoq-server)
  fi
  cmake --build build-tsan -j"$jobs" --target "${tests[@]}" "${extra[@]}"
  local built=$SECONDS
  local fixtures=build-tsan/fixtures
  /usr/bin/python3 tests/fixtures/gen_models.py "$fixtures" >/dev/null
  for t in "${tests[@]}"; do
    echo "== $t (TSan)"
    AUTOQ_FIXTURES="$PWD/$fixtures" \
    TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp" \
      "build-tsan/server/$t"
  done
  echo "sanitize: TSan build $((built - start)) s, tests $((SECONDS - built)) s"
}

case $which in
  address) run_address ;;
  thread) run_thread ;;
  both) run_address; run_thread ;;
  *) echo "usage: scripts/sanitize.sh [address|thread]" >&2; exit 2 ;;
esac
