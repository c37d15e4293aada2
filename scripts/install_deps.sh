#!/usr/bin/env bash
# Installs every build and run dependency of AutoQ from Debian 12's archive.
# Idempotent: packages already present are skipped without touching the network.
set -euo pipefail

PKGS=(
  build-essential cmake ccache pkg-config git
  libtorch-dev libopenblas0-openmp
  libpagmo-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libboost-dev libboost-system-dev libboost-serialization-dev libssl-dev openssl
  libsqlite3-dev zlib1g-dev nlohmann-json3-dev libjemalloc-dev libonnx-dev
  libjpeg-dev libpng-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  dataset-fashion-mnist
  python3 python3-torch python3-torchvision
  slurm-wlm munge python3-yaml
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js and npm run ONNX Runtime for the ONNX export tests. A machine
# that already has them (Debian's or another build) keeps its own.
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#PKGS[@]} packages present"
else
  echo "install_deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ONNX Runtime from the npm registry (not in Debian), pinned by
# tests/onnx/package-lock.json. --ignore-scripts: the CPU library ships in
# the package; its install script would only fetch CUDA providers.
ort_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/onnx"
if [ ! -f "$ort_dir/node_modules/onnxruntime-node/package.json" ]; then
  echo "install_deps: installing onnxruntime-node into tests/onnx"
  (cd "$ort_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
