#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang, AddressSanitizer + UBSan)
# into build-fuzz/ and runs each one from its seed corpus:
#   scripts/fuzz.sh [--seconds N | --runs N] [--targets a,b]
# --seconds N: each target for N seconds (default 5, the test command's
# smoke run); --runs N: each for N executions (bench/run_fuzz.sh). Prints
# per target the executions, coverage (edges) and features libFuzzer
# reports; exits 1 naming the target on a crash, with its stack and input
# (base64; the input is kept in build-fuzz/crashes/TARGET/). The corpus
# grows in build-fuzz/corpus/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=5
runs=""
targets=fuzz_image_decode,fuzz_job_config,fuzz_artifact_name,fuzz_submit_stream,fuzz_completion,fuzz_idx_reader,fuzz_cifar_reader,fuzz_tensor_file
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
dir=build-fuzz
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR=1
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S fuzz -B "$dir" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "${launcher[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)" >/dev/null
"$dir/fuzz_make_seeds" "$dir/seeds"
# torch.save files for fuzz_tensor_file, by Debian's PyTorch (the fixtures'
# interpreter; AUTOQ_PYTHON overrides it).
mkdir -p "$dir/seeds/fuzz_tensor_file"
"${AUTOQ_PYTHON:-/usr/bin/python3}" - "$dir/seeds/fuzz_tensor_file" <<'PY'
import sys, torch
out = sys.argv[1]
torch.save({'images': torch.arange(2 * 1 * 3 * 3, dtype=torch.uint8).reshape(2, 1, 3, 3),
            'labels': torch.tensor([0, 2])}, out + '/uint8.pt')
torch.save({'images': torch.rand(3, 3, 2, 2), 'labels': torch.tensor([1, 0, 1])},
           out + '/float.pt')
PY
mkdir -p "$dir/seeds/fuzz_job_config"
cp configs/*.json fuzz/corpus/job_config/* "$dir/seeds/fuzz_job_config/"
"$dir/fuzz_make_proto_seeds" "$dir/seeds" configs/*.json
mkdir -p "$dir/seeds/fuzz_artifact_name"
cp fuzz/corpus/artifact_name/* "$dir/seeds/fuzz_artifact_name/"

# LibTorch 1.13's zip reader leaks its archive state (a few hundred bytes)
# when a torch.save file is malformed: not AutoQ's code, suppressed with
# the sanitizer run's list of uninstrumented libraries.
export LSAN_OPTIONS="suppressions=$PWD/scripts/sanitizers/lsan.supp:print_suppressions=0"
status=0
IFS=, read -r -a list <<< "$targets"
for t in "${list[@]}"; do
  corpus="$dir/corpus/$t"
  crashes="$dir/crashes/$t"
  mkdir -p "$corpus" "$crashes"
  # The smoke run starts from a fixed seed, so that the test command tries
  # the same mutations on every run; --runs (the long runs) a random one.
  limit=(-max_total_time="$seconds" -seed=1)
  if [ -n "$runs" ]; then limit=(-runs="$runs"); fi
  log="$dir/$t.log"
  start=$(date +%s)
  if "$dir/$t" "${limit[@]}" -max_len=65536 -rss_limit_mb=2048 \
       -timeout=10 -artifact_prefix="$crashes/" -print_final_stats=1 \
       "$corpus" "$dir/seeds/$t" >"$log" 2>&1; then
    stats=$(grep -E '^#[0-9]+.*DONE' "$log" | tail -1 || true)
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    echo "$t: ${execs:-?} executions in $(( $(date +%s) - start )) s; ${stats#*DONE   }"
  else
    echo "$t: CRASH (input in $crashes/, log $log):" >&2
    grep -E 'ERROR|SUMMARY|runtime error|deadly signal|^ +#[0-9]+ ' "$log" |
      head -25 >&2
    # The input, so that a crash in a CI log can be replayed elsewhere.
    for f in "$crashes"/*; do
      [ -f "$f" ] && echo "input $(basename "$f") (base64): $(head -c 4096 "$f" | base64 -w0)" >&2
    done
    status=1
  fi
done
exit $status
