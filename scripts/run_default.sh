#!/usr/bin/env bash
# The main job on the embedded default: installs dependencies, builds, and
# runs `autoq run configs/fashion_mnist.json`: the built-in CNN (trained on
# Fashion-MNIST first if out/builtin_fashion_mnist.pt is absent), an NSGA-II
# search over per-layer bit-widths with a short QAT per candidate, then the
# full fine-tune and export of the final Pareto front into
# runs/fashion_mnist/. Rerunning reuses every cached result.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
./scripts/build.sh
exec build/client/autoq run configs/fashion_mnist.json "$@"
