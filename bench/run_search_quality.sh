#!/usr/bin/env bash
# Search-quality benchmark: does the guided search beat uniform bit-widths,
# and how many QAT evaluations does it need compared with plain NSGA-II?
#
# For each setting and search seed it runs `autoq run` with
#   (b) strategy nsga2    plain NSGA-II as the source thesis runs it:
#                         uniform initial population, unscreened offspring,
#                         the last population's front;
#   (c) strategy knapsack sensitivity + knapsack, no search (HAWQ-V3's recipe);
#   (d) strategy guided   this search: sensitivity seeds, surrogate-screened
#                         offspring, the archive's front in the region;
# at equal numbers of search evaluations (population x (generations + 1)),
# and (a) the uniform configurations. Every front gets the same final
# fine-tune and is judged on the test split. It prints, as medians over the
# seeds:
#   - the smallest size within 0.5 pp of float, as a share of uniform 8-bit;
#   - the hypervolume in the box (loss <= 2 pp x size <= uniform 8-bit),
#     relative to uniform's;
#   - whether (d) at half and a quarter of (b)'s evaluations reaches (b)'s
#     final hypervolume.
#
# Settings:
#   builtin  the built-in CNN, per-channel weights, 8-bit activations
#            (the default job's setting);
#   abits    the same model with activation bits searched too and BOPs as a
#            third objective (uniform = weights and activations at b bits),
#            where low-bit activations make uniform configurations costly.
#
# To fit about an hour on 2 cores, candidates get a cheaper short QAT than
# the default job (one epoch on 1,024 images, validation on 1,000); the
# final fine-tune is the default job's (2 epochs on 4,096 images). All runs
# of a setting share one result database, so a configuration is never
# trained twice, and a run with more generations resumes the shorter run of
# the same seed (the same first generations).
#
#   bench/run_search_quality.sh [--seeds N] [--settings builtin,abits]
#                               [--budgets 8,16,32] [--work DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=3
settings=builtin,abits
budgets=8,16,32
work=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds=$2; shift 2 ;;
    --settings) settings=$2; shift 2 ;;
    --budgets) budgets=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
    *) echo "run_search_quality.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -x build/client/autoq ] || ./scripts/build.sh
if [ -z "$work" ]; then work=$(mktemp -d); fi
mkdir -p "$work"
model=out/builtin_fashion_mnist.pt
if [ ! -f "$model" ]; then
  echo "training the baseline first (not timed)" >&2
  mkdir -p out
  build/client/autoq train-baseline --out "$model" --seed 1 --quiet
fi
echo "work folder: $work"
start=$(date +%s)

# One job spec per (setting, strategy, seed, budget), from the default.
job() {  # setting strategy seed evals -> path of the spec
  /usr/bin/python3 - "$work" "$@" <<'PY'
import json, sys
work, setting, strategy, seed, evals = sys.argv[1:6]
cfg = json.load(open("configs/fashion_mnist.json"))
s = cfg["search"]
s["seed"] = int(seed)
s["strategy"] = strategy
s["generations"] = max(0, int(evals) // s["population"] - 1)
s["qat"]["train_subset"] = 1024
cfg["dataset"]["val_subset"] = 1000
if setting == "abits":
    s["search_activation_bits"] = True
    s["bops_objective"] = True
name = f"{setting}_{strategy}_s{seed}_e{evals}"
cfg["name"] = name
cfg["output"] = {"dir": f"{work}/{name}", "database": f"{work}/{setting}.db"}
path = f"{work}/{name}.json"
json.dump(cfg, open(path, "w"), indent=1)
print(path)
PY
}

run() {  # spec
  local spec=$1 name
  name=$(basename "$spec" .json)
  local t0
  t0=$(date +%s)
  if ! build/client/autoq run "$spec" --quiet > "$work/$name.log" 2>&1; then
    echo "FAILED: $name (log: $work/$name.log)" >&2
    tail -5 "$work/$name.log" >&2
    exit 1
  fi
  echo "  $name: $(( $(date +%s) - t0 )) s"
}

IFS=, read -r -a setting_list <<< "$settings"
IFS=, read -r -a budget_list <<< "$budgets"
max_budget=${budget_list[${#budget_list[@]}-1]}
for setting in "${setting_list[@]}"; do
  echo "== setting $setting"
  run "$(job "$setting" knapsack 1 0)"
  for seed in $(seq 1 "$seeds"); do
    # Shortest first: a longer run resumes the shorter one's checkpoint.
    for evals in "${budget_list[@]}"; do
      run "$(job "$setting" guided "$seed" "$evals")"
    done
    # Plain NSGA-II at the two largest budgets.
    for evals in "${budget_list[@]:1}"; do
      run "$(job "$setting" nsga2 "$seed" "$evals")"
    done
  done
done
echo
echo "bench wall time: $(( $(date +%s) - start )) s"
/usr/bin/python3 - "$work" "$seeds" "$settings" "$budgets" <<'PY'
import json, os, statistics, sys
work, seeds, settings, budgets = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), [int(b) for b in sys.argv[4].split(",")]

def load(name):
    return json.load(open(os.path.join(work, name, "front.json")))

def metrics(report):
    c = report["comparison"]
    size8 = c["region"]["size_bytes"]
    hv_f, hv_u = c["region"]["front_hypervolume"], c["region"]["uniform_hypervolume"]
    small = c["smallest_within_0_5pp_of_float"]
    return {
        "front_share": small["front_size_bytes"] / size8 if small["front_size_bytes"] > 0 else None,
        "uniform_share": small["uniform_size_bytes"] / size8 if small["uniform_size_bytes"] > 0 else None,
        "hv": hv_f, "hv_uniform": hv_u,
        "inside": sum(1 for p in report["front"]
                      if report["float"]["test_top1"] - p["test_top1"] <= c["region"]["max_accuracy_drop"]),
        "points": len(report["front"]),
    }

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

def pct(v):
    return "-" if v is None else f"{100 * v:.0f} %"

def rel(hv, hv_u):
    return "-" if hv is None or hv_u <= 0 else f"{100 * (hv / hv_u - 1):+.1f} %"

for setting in settings:
    rows = []
    knap = metrics(load(f"{setting}_knapsack_s1_e0"))
    hv_u = knap["hv_uniform"]
    rows.append(("(a) uniform", "-", pct(knap["uniform_share"]), "+0.0 %", hv_u, "-"))
    rows.append(("(c) sensitivity + knapsack", "0", pct(knap["front_share"]),
                 rel(knap["hv"], hv_u), knap["hv"], f"{knap['inside']}/{knap['points']}"))
    results = {}
    for strategy, label, bs in (("nsga2", "(b) plain NSGA-II", budgets[1:]),
                                ("guided", "(d) this search", budgets)):
        for b in bs:
            ms = [metrics(load(f"{setting}_{strategy}_s{s}_e{b}")) for s in range(1, seeds + 1)]
            hv = med([m["hv"] for m in ms])
            results[(strategy, b)] = hv
            rows.append((label, str(b), pct(med([m["front_share"] for m in ms])),
                         rel(hv, hv_u), hv,
                         f"{sum(m['inside'] for m in ms)}/{sum(m['points'] for m in ms)}"))
    print(f"\n== {setting}: medians over {seeds} search seeds, test split after the same final fine-tune")
    print("| method | search evaluations | smallest within 0.5 pp of float (share of uniform 8-bit) | region hypervolume vs uniform | region hypervolume | final points inside the region |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.4f} | {r[5]} |")
    target = results[("nsga2", budgets[-1])]
    for b in budgets:
        got = results[("guided", b)]
        print(f"(d) with {b} evaluations ({b / budgets[-1]:.2f} of (b)'s {budgets[-1]}): "
              f"hypervolume {got:.4f} {'>=' if got >= target else '<'} (b)'s final {target:.4f}")
PY
