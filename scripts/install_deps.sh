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
  libsqlite3-dev zlib1g-dev nlohmann-json3-dev libjemalloc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
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

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install_deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
