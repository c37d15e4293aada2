#!/usr/bin/env bash
# From an image folder and a TorchScript model to ONNX files: installs
# dependencies, builds, writes the example folder out/example_images/
# (PNG files of Fashion-MNIST in train/<class>/ and test/<class>/, the
# layout of a user's own JPEG or PNG data), trains the example TorchScript
# model if out/builtin_fashion_mnist.pt is absent, then runs
# `autoq run configs/folder_example.json`. Every exported point lands in
# runs/folder_example/front/<label>/ and uniform/<label>/ as model.onnx
# (QDQ, opset 13) + encodings.json beside model.pt, weights.bin and
# manifest.json. For your data: point dataset.spec at folder:YOUR_ROOT and
# model.path at your TorchScript file (see configs/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
./scripts/build.sh
if [ ! -d out/example_images/train ]; then
  build/tests/autoq_make_image_folder --out out/example_images --train 300 --test 100
fi
if [ ! -f out/builtin_fashion_mnist.pt ]; then
  build/client/autoq train-baseline --out out/builtin_fashion_mnist.pt --quiet
fi
build/client/autoq run configs/folder_example.json "$@"
echo "ONNX exports:"
find runs/folder_example -name model.onnx | sort
