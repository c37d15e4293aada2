#!/usr/bin/env bash
# QAT training-throughput benchmark: AutoQ (C++) against PyTorch's own QAT
# (torch.ao prepare_qat_fx, Python) on the same model, batches, batch size
# and threads, alternating the two processes so machine noise hits both.
#
#   bench/run_qat_bench.sh [--threads 2] [--batch 128] [--rounds 3] [--steps 30]
#
# Prints images/s of every variant (medians over rounds) and the ratios:
#   autoq QAT / PyTorch QAT         (target >= 1.5)
#   autoq QAT step / autoq float step  (target <= 1.25)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2; batch=128; rounds=3; steps=30
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2;;
    --batch) batch=$2; shift 2;;
    --rounds) rounds=$2; shift 2;;
    --steps) steps=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
[ -x build/bench/autoq_bench_qat ] || ./scripts/build.sh
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
model=$work/small_dscnn.pt
/usr/bin/python3 bench/pytorch_peer.py --save-model "$model" --save-only >/dev/null
for r in $(seq "$rounds"); do
  echo "round $r/$rounds" >&2
  build/bench/autoq_bench_qat --model "$model" --threads "$threads" --batch "$batch" \
    --steps "$steps" --warmup 8 --repeats 1 --data fashion-mnist > "$work/autoq_$r.json"
  for layout in contiguous channels-last; do
    /usr/bin/python3 bench/pytorch_peer.py --threads "$threads" --batch "$batch" \
      --steps "$steps" --warmup 5 --data fashion-mnist --variants float,qat \
      --memory-format "$layout" --out "$work/peer_${layout}_$r.json" >/dev/null
  done
done
/usr/bin/python3 - "$work" "$rounds" "$threads" "$batch" <<'PY'
import json, statistics, sys
work, rounds, threads, batch = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def med(files, key):
    vals = []
    for f in files:
        d = json.load(open(f))
        v = d.get(key, d.get("images_per_s", {}).get(key) if isinstance(d.get("images_per_s"), dict) else None)
        vals.append(float(v))
    return statistics.median(vals)
ours = [f"{work}/autoq_{r}.json" for r in range(1, rounds + 1)]
peer = {l: [f"{work}/peer_{l}_{r}.json" for r in range(1, rounds + 1)] for l in ("contiguous", "channels-last")}
rows = {k: med(ours, k) for k in json.load(open(ours[0])) if k.startswith(("autoq", "libtorch"))}
for l, files in peer.items():
    rows[f"pytorch_float ({l})"] = med(files, "float")
    rows[f"pytorch_qat ({l})"] = med(files, "qat")
print(f"threads {threads}, batch {batch}, medians of {rounds} rounds (images/s)")
for k, v in rows.items():
    print(f"  {k:36s} {v:8.1f}")
best_peer = max(rows["pytorch_qat (contiguous)"], rows["pytorch_qat (channels-last)"])
q = rows["autoq_qat_per_channel"]
print(f"autoq QAT (per-channel w8a8) / PyTorch QAT (best layout): {q / best_peer:.2f}  (target >= 1.5)")
print(f"autoq QAT step / autoq float step: {rows['autoq_float'] / q:.2f}  (target <= 1.25)")
print(f"autoq QAT per-tensor step / float step: {rows['autoq_float'] / rows['autoq_qat_per_tensor']:.2f}")
PY
