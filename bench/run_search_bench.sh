#!/usr/bin/env bash
# Search benchmark on the embedded default (configs/fashion_mnist.json):
# runs the whole job (search + final fine-tune + export) in a fresh output
# folder and database, then the identical job again, and prints
#   - the wall time of the whole pipeline        (target <= 600 s on 2 cores)
#   - the search's own overhead: search wall time outside QAT / search wall
#     time                                        (target <= 5 %)
#   - the cache hit rate of the rerun             (target 100 %)
#   - hypervolumes of the found front and of the uniform configurations
#     after the same final fine-tune (test split), and the found points
#     smaller than every uniform configuration at least as accurate.
#
#   bench/run_search_bench.sh [CONFIG]   (default configs/fashion_mnist.json)
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/fashion_mnist.json}
[ -x build/client/autoq ] || ./scripts/build.sh
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# Same job, fresh output folder and database.
/usr/bin/python3 - "$config" "$work" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg.setdefault("output", {})["dir"] = sys.argv[2] + "/out"
cfg["output"].pop("database", None)
json.dump(cfg, open(sys.argv[2] + "/job.json", "w"), indent=1)
PY
model=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['model']['path'])" "$config")
if [ ! -f "$model" ]; then
  echo "training the baseline first (not timed)" >&2
  build/client/autoq train-baseline --out "$model" --seed 1 --quiet
fi
start=$(date +%s.%N)
build/client/autoq run "$work/job.json" | tee "$work/first.log"
end=$(date +%s.%N)
build/client/autoq run "$work/job.json" --quiet > "$work/second.log"
echo
echo "== search bench ($config)"
awk -v s="$start" -v e="$end" 'BEGIN { printf "pipeline wall time: %.1f s (target <= 600 s)\n", e - s }'
grep -E "^time: " "$work/first.log" | sed 's/^/first run  /'
grep -E "^hypervolume" "$work/first.log"
grep -E "^smaller than every uniform" "$work/first.log"
grep -E "^evaluations: " "$work/first.log" | sed 's/^/first run  /'
grep -E "^evaluations: " "$work/second.log" | sed 's/^/rerun      /'
