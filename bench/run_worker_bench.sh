#!/usr/bin/env bash
# Worker time benchmark on the embedded default (configs/fashion_mnist.json):
# runs the whole job (`autoq run`: server, one local worker, client) into a
# fresh output folder and database and prints the worker's summary line:
# its wall time and the share of it spent inside training steps and
# validation passes (target >= 85 %), then every other phase (calibration,
# test passes, model preparation, exports, job setup, RPCs, waiting for
# tasks).
#
#   bench/run_worker_bench.sh [--before AUTOQ_BINARY] [--short] [CONFIG]
#
# --before runs the same job first with another build of `autoq` (e.g. one
# copied from an earlier commit) and prints both fractions, so that before
# and after are measured on the same machine in one session. --short runs
# one generation and no uniform comparison: the same task sizes (search and
# final recipes) in about a quarter of the time.
set -euo pipefail
cd "$(dirname "$0")/.."
before=""
short=0
while [ $# -gt 0 ]; do
  case "$1" in
    --before) before=$2; shift 2 ;;
    --short) short=1; shift ;;
    *) break ;;
  esac
done
config=${1:-configs/fashion_mnist.json}
[ -x build/client/autoq ] || ./scripts/build.sh
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
model=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['model']['path'])" "$config")
if [ ! -f "$model" ]; then
  mkdir -p "$(dirname "$model")"
  if [ -f build/fixtures/builtin_fashion_mnist.pt ]; then
    cp build/fixtures/builtin_fashion_mnist.pt "$model"
  else
    echo "training the baseline first (not timed)" >&2
    build/client/autoq train-baseline --out "$model" --seed 1 --quiet
  fi
fi

# run NAME BINARY: the job with a fresh output folder and database.
run() {
  /usr/bin/python3 - "$config" "$work/$1" "$short" <<'PY'
import json, os, sys
cfg = json.load(open(sys.argv[1]))
if sys.argv[3] == "1":
    cfg.setdefault("search", {})["generations"] = 1
    cfg.setdefault("final_front", {})["compare_uniform"] = False
os.makedirs(sys.argv[2], exist_ok=True)
cfg.setdefault("output", {})["dir"] = sys.argv[2] + "/out"
cfg["output"].pop("database", None)
json.dump(cfg, open(sys.argv[2] + "/job.json", "w"), indent=1)
PY
  local start end
  start=$(date +%s.%N)
  "$2" run "$work/$1/job.json" > "$work/$1/log"
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" -v n="$1" \
    'BEGIN { printf "%s: pipeline wall time %.1f s\n", n, e - s }'
  grep -E "^worker " "$work/$1/log" | sed "s/^/$1: /"
  grep -E "^evaluations: " "$work/$1/log" | sed "s/^/$1: /" || true
}

echo "== worker bench ($config)"
if [ -n "$before" ]; then run before "$before"; fi
run after build/client/autoq
echo
for n in before after; do
  [ -f "$work/$n/log" ] || continue
  grep -E "^worker " "$work/$n/log" |
    sed -E 's/.*training\+validation ([0-9.]+) s \(([0-9.]+)%\).*/\2/' |
    awk -v n="$n" '{ printf "%s: worker wall time in training+validation: %s %% (target >= 85 %%)\n", n, $1 }'
done
