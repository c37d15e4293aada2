#!/usr/bin/env bash
# How noisy is the search's score? The same configurations, scored by the
# default job's short QAT (one SGD epoch on 2,048 images, validation on
# 2,000, per-channel weights, 8-bit activations) with different QAT seeds
# and the same train/validation split. Prints, per configuration, the
# validation top-1 of every seed, its spread (max - min) and standard
# deviation. The search's `search.score_noise` should not be below the
# typical spread: differences smaller than it are not evidence.
#
#   bench/run_score_noise.sh [--seeds N] [--bits "4;3;8,8,6,7,4,7,5,7,5,4,3,4"]
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=5
configs="4;3;8,8,6,7,4,7,5,7,5,4,3,4"
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds=$2; shift 2 ;;
    --bits) configs=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "run_score_noise.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -x build/client/autoq ] || ./scripts/build.sh
model=out/builtin_fashion_mnist.pt
if [ ! -f "$model" ]; then
  mkdir -p out
  build/client/autoq train-baseline --out "$model" --seed 1 --quiet
fi
out=$(mktemp); trap 'rm -f "$out"' EXIT
IFS=';' read -r -a config_list <<< "$configs"
for bits in "${config_list[@]}"; do
  for seed in $(seq 1 "$seeds"); do
    build/client/autoq eval --model "$model" --data fashion-mnist \
      --bits "$bits" --scheme per-channel --epochs 1 --optimizer sgd \
      --lr 0.005 --train-subset 2048 --val-subset 2000 --seed "$seed" \
      --threads 2 --json >> "$out"
    echo >> "$out"
  done
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["bits"], []).append(r)
print("| bits | validation top-1 per QAT seed | spread (pp) | std (pp) | test spread (pp) |")
print("| --- | --- | ---: | ---: | ---: |")
for bits, rs in by.items():
    v = [r["best_val_top1"] for r in rs]
    t = [r["test_top1"] for r in rs]
    print(f"| {bits} | {', '.join(f'{x:.2f}' for x in v)} | {max(v) - min(v):.2f} | "
          f"{statistics.pstdev(v):.2f} | {max(t) - min(t):.2f} |")
PY
