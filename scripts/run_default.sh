#!/usr/bin/env bash
# The main job on the embedded default: installs dependencies, builds,
# trains the built-in CNN on Fashion-MNIST (first run only), shows its
# quantizable layers, then quantizes it to a mixed per-layer configuration
# with a short QAT fine-tune and reports accuracy, size and BOPs against
# float and uniform 8-bit.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
./scripts/build.sh
autoq=build/client/autoq
model=out/builtin_fashion_mnist.pt
if [ ! -f "$model" ]; then
  "$autoq" train-baseline --out "$model"
fi
"$autoq" inspect "$model" --input 1,28,28
echo
echo "== uniform 8-bit"
"$autoq" eval --model "$model" --data fashion-mnist --bits 8 --epochs 1
echo
echo "== mixed: 8-bit first and last layers, 4-bit elsewhere"
"$autoq" eval --model "$model" --data fashion-mnist --bits 8,4,4,4,4,4,4,4,4,4,4,8 --epochs 1
